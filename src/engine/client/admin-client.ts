/**
 * Consumption control for operators (RocketMQ MQAdminExt, the parts the engine offers): a group's
 * lag per queue, and resetting a group's offsets to a point in time. Lag is computed from
 * GET_MAX_OFFSET and QUERY_CONSUMER_OFFSET per queue; a reset goes through the broker
 * (INVOKE_BROKER_TO_RESET_OFFSET) so that it can tell the group's online consumers
 * (RESET_CONSUMER_CLIENT_OFFSET). docs/wire-formats.md has the fields.
 */
import { ErrorCode, RbError } from '../common/errors.js';
import { RequestCode, ResponseCode } from '../remoting/codes.js';
import { createRequest } from '../remoting/command.js';
import {
  maxOffsetOf,
  minOffsetOf,
  queryConsumerOffset,
  remoteError,
  searchOffset,
  updateConsumerOffset,
} from './broker-api.js';
import { ClientInstance, clientInstanceOptionsOf } from './client-instance.js';
import { decodeResetOffsetBody, type QueueOffset } from './reset-offset-body.js';
import { masterAddressOf, type MessageQueue, readQueuesOf, type TopicRouteData } from './route.js';
import type { Transport } from './transport.js';
import { decodeClusterInfo } from '../remoting/route-data.js';

export interface AdminClientOptions {
  nameServers: readonly string[];
  transport?: Transport;
  instanceName?: string;
  requestTimeoutMs?: number;
}

/** One queue's consumption progress (ConsumeStats' OffsetWrapper, with the lag worked out). */
export interface QueueLag {
  brokerName: string;
  queueId: number;
  /** One past the queue's last message. */
  brokerOffset: number;
  /** The group's committed offset, -1 when it has none. */
  consumerOffset: number;
  /** Messages not yet consumed: brokerOffset minus the committed offset (or the min offset). */
  lag: number;
}

/** One broker process as the NameServer lists it. */
export interface BrokerSummary {
  clusterName: string;
  brokerName: string;
  /** 0 for a master, > 0 for a slave. */
  brokerId: number;
  address: string;
}

/** Operator requests against the brokers of a cluster. */
export class AdminClient {
  private readonly instance: ClientInstance;
  private started = false;

  constructor(options: AdminClientOptions) {
    this.instance = new ClientInstance(clientInstanceOptionsOf(options));
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.instance.start();
  }

  async shutdown(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    await this.instance.shutdown();
  }

  /** Every topic the NameServer knows (GET_ALL_TOPIC_LIST_FROM_NAMESERVER), system topics included. */
  async fetchAllTopicList(): Promise<string[]> {
    this.checkStarted();
    const response = await this.instance.invokeNameServer(createRequest(RequestCode.GetAllTopicListFromNameServer));
    if (response.code !== ResponseCode.Success) throw remoteError('get all topic list', response);
    const parsed: unknown = JSON.parse(response.body?.toString('utf8') ?? '{}');
    const list = (parsed as { topicList?: unknown }).topicList;
    return Array.isArray(list) ? list.filter((topic): topic is string => typeof topic === 'string') : [];
  }

  /** Every broker registered with the NameServer (GET_BROKER_CLUSTER_INFO), sorted by name and id. */
  async brokers(): Promise<BrokerSummary[]> {
    this.checkStarted();
    const response = await this.instance.invokeNameServer(createRequest(RequestCode.GetBrokerClusterInfo));
    if (response.code !== ResponseCode.Success) throw remoteError('get broker cluster info', response);
    const info = decodeClusterInfo(response.body);
    const brokers: BrokerSummary[] = [];
    for (const data of Object.values(info.brokerAddrTable)) {
      for (const [id, address] of Object.entries(data.brokerAddrs)) {
        brokers.push({ clusterName: data.cluster, brokerName: data.brokerName, brokerId: Number(id), address });
      }
    }
    return brokers.sort((a, b) => a.brokerName.localeCompare(b.brokerName) || a.brokerId - b.brokerId);
  }

  /** A broker's runtime figures (GET_BROKER_RUNTIME_INFO): RocketMQ's KVTable as name -> text. */
  async brokerRuntimeInfo(brokerAddress: string): Promise<Record<string, string>> {
    this.checkStarted();
    const response = await this.instance.transport.invoke(
      brokerAddress,
      createRequest(RequestCode.GetBrokerRuntimeInfo),
      this.instance.requestTimeoutMs,
    );
    if (response.code !== ResponseCode.Success) throw remoteError('get broker runtime info', response);
    const parsed: unknown = JSON.parse(response.body?.toString('utf8') ?? '{}');
    const table = (parsed as { table?: unknown }).table;
    const result: Record<string, string> = {};
    if (table !== null && typeof table === 'object') {
      for (const [name, value] of Object.entries(table)) result[name] = String(value);
    }
    return result;
  }

  /** The group's lag on every readable queue of `topic`, sorted by broker and queue id. */
  async consumerLag(group: string, topic: string): Promise<QueueLag[]> {
    this.checkStarted();
    const queues = readQueuesOf(topic, await this.routeOf(topic));
    return Promise.all(
      queues.map(async (queue) => {
        const [brokerOffset, consumerOffset] = await Promise.all([
          maxOffsetOf(this.instance, queue),
          queryConsumerOffset(this.instance, group, queue),
        ]);
        const from = consumerOffset >= 0 ? consumerOffset : await minOffsetOf(this.instance, queue);
        return {
          brokerName: queue.brokerName,
          queueId: queue.queueId,
          brokerOffset,
          consumerOffset,
          lag: Math.max(0, brokerOffset - from),
        };
      }),
    );
  }

  /**
   * Moves the group's offsets on every queue of `topic` to the first message stored at or after
   * `timestampMs` (even backwards), and makes the group's online consumers restart from there.
   * Returns the new offsets. A broker that does not serve INVOKE_BROKER_TO_RESET_OFFSET gets the
   * offsets written directly (UPDATE_CONSUMER_OFFSET), which consumers online at that moment may
   * overwrite with their own.
   */
  async resetOffsetByTimestamp(group: string, topic: string, timestampMs: number): Promise<QueueOffset[]> {
    this.checkStarted();
    const route = await this.routeOf(topic);
    const queues = readQueuesOf(topic, route);
    const brokerNames = [...new Set(queues.map((queue) => queue.brokerName))].sort();
    const results = await Promise.all(
      brokerNames.map((brokerName) =>
        this.resetOnBroker(
          route,
          brokerName,
          group,
          topic,
          timestampMs,
          queues.filter((queue) => queue.brokerName === brokerName),
        ),
      ),
    );
    return results.flat();
  }

  private async resetOnBroker(
    route: TopicRouteData,
    brokerName: string,
    group: string,
    topic: string,
    timestampMs: number,
    queues: readonly MessageQueue[],
  ): Promise<QueueOffset[]> {
    const address = masterAddressOf(route, brokerName);
    if (address === undefined) throw new RbError(ErrorCode.NoRoute, `broker ${brokerName} has no master`);
    const response = await this.instance.invoke(
      address,
      createRequest(RequestCode.InvokeBrokerToResetOffset, {
        topic,
        group,
        timestamp: String(timestampMs),
        isForce: 'true',
        queueId: '-1',
      }),
    );
    if (response.code === ResponseCode.Success || response.code === ResponseCode.ConsumerNotOnline) {
      return decodeResetOffsetBody(response.body);
    }
    if (response.code !== ResponseCode.RequestCodeNotSupported) throw remoteError('reset offset', response);
    return Promise.all(
      queues.map(async (queue) => {
        const offset = await searchOffset(this.instance, queue, timestampMs);
        await updateConsumerOffset(this.instance, group, queue, offset);
        return { queue, offset };
      }),
    );
  }

  private async routeOf(topic: string): Promise<TopicRouteData> {
    const route = await this.instance.routeOf(topic, true);
    if (route === undefined) throw new RbError(ErrorCode.TopicNotExist, `topic ${topic} does not exist`);
    return route;
  }

  private checkStarted(): void {
    if (!this.started) throw new RbError(ErrorCode.ClientState, 'admin client is not started');
  }
}
