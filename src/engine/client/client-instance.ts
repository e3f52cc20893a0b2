/**
 * One client's link to the cluster (RocketMQ MQClientInstance): its client id, the NameServer list
 * (any one will do; switch on failure), the topic route cache (refreshed periodically and on demand),
 * heartbeats to every known broker, unregistering on shutdown, and the requests brokers send to the
 * client (NOTIFY_CONSUMER_IDS_CHANGED, GET_CONSUMER_RUNNING_INFO, CHECK_TRANSACTION_STATE).
 * Producers and consumers each own one instance; the instance owns its transport unless handed one.
 */
import { ErrorCode, RbError } from '../common/errors.js';
import { createLogger } from '../common/logger.js';
import { MessageProperty } from '../common/properties.js';
import type { ProcessorRegistry, RemotingChannel } from '../remoting/channel.js';
import { RequestCode, ResponseCode } from '../remoting/codes.js';
import { createRequest, createResponse, type RemotingCommand } from '../remoting/command.js';
import { decodePulledMessages, type MessageExt } from './message-ext.js';
import { localIPv4 } from './message-id.js';
import { decodeResetOffsetBody } from './reset-offset-body.js';
import {
  adminAddressOf,
  type BrokerAddrs,
  type BrokerData,
  decodeTopicRouteData,
  type MessageQueue,
  queueKey,
  subscribeAddressOf,
  type TopicRouteData,
} from './route.js';
import type { Transport } from './transport.js';
import { RemoteTransport } from './transport-remote.js';

const log = createLogger('client');

/** SubscriptionData as heartbeats carry it. */
export interface SubscriptionData {
  topic: string;
  subString: string;
  tagsSet: string[];
  codeSet: number[];
  subVersion: number;
  expressionType: 'TAG';
  classFilterMode: false;
}

/** ConsumerData of a heartbeat. */
export interface ConsumerData {
  groupName: string;
  consumeType: 'CONSUME_ACTIVELY' | 'CONSUME_PASSIVELY' | 'CONSUME_POP';
  messageModel: 'CLUSTERING' | 'BROADCASTING';
  consumeFromWhere: string;
  subscriptionDataSet: SubscriptionData[];
  unitMode: false;
}

/** What a consumer registers with its instance. */
export interface ConsumerHandle {
  readonly group: string;
  heartbeatData(): ConsumerData;
  /** The broker says the group's members changed: rebalance soon. */
  onConsumerIdsChanged(): void;
  /** Properties reported for GET_CONSUMER_RUNNING_INFO. */
  runningInfo(): Record<string, unknown>;
  /** RESET_CONSUMER_CLIENT_OFFSET: restart the listed queues of `topic` from the given offsets. */
  resetOffset?(topic: string, offsets: readonly { queue: MessageQueue; offset: number }[]): Promise<void>;
}

/** Answers a broker's CHECK_TRANSACTION_STATE for one producer group (the TransactionProducer). */
export type TransactionChecker = (
  header: Record<string, string>,
  message: MessageExt,
  channel: RemotingChannel,
) => Promise<void>;

export interface ClientInstanceOptions {
  nameServers: readonly string[];
  /** Shared transport; when omitted the instance creates a RemoteTransport and closes it on shutdown. */
  transport?: Transport;
  /** Part of the client id; a process-unique counter by default, so clients in one process differ. */
  instanceName?: string;
  requestTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  routeRefreshIntervalMs?: number;
  /** After a broker of a topic failed, its route is fetched again at most this often (ms; default 200). */
  failureRouteRefreshIntervalMs?: number;
}

/** The ClientInstance options found in a producer's or consumer's own options; absent ones stay absent. */
export function clientInstanceOptionsOf(options: ClientInstanceOptions): ClientInstanceOptions {
  const picked: ClientInstanceOptions = { nameServers: options.nameServers };
  if (options.transport !== undefined) picked.transport = options.transport;
  if (options.instanceName !== undefined) picked.instanceName = options.instanceName;
  if (options.requestTimeoutMs !== undefined) picked.requestTimeoutMs = options.requestTimeoutMs;
  if (options.heartbeatIntervalMs !== undefined) picked.heartbeatIntervalMs = options.heartbeatIntervalMs;
  if (options.routeRefreshIntervalMs !== undefined) picked.routeRefreshIntervalMs = options.routeRefreshIntervalMs;
  if (options.failureRouteRefreshIntervalMs !== undefined) {
    picked.failureRouteRefreshIntervalMs = options.failureRouteRefreshIntervalMs;
  }
  return picked;
}

let instanceCounter = 0;
const instancesByRegistry = new WeakMap<ProcessorRegistry, Set<ClientInstance>>();

/** Registers the server-to-client processors once per registry, fanning out to the instances using it. */
function attach(registry: ProcessorRegistry, instance: ClientInstance): void {
  let instances = instancesByRegistry.get(registry);
  if (instances === undefined) {
    const set = new Set<ClientInstance>();
    instances = set;
    instancesByRegistry.set(registry, set);
    registry.register(RequestCode.NotifyConsumerIdsChanged, (request) => {
      const group = request.extFields['consumerGroup'] ?? '';
      for (const each of set) each.notifyConsumerIdsChanged(group);
      return createResponse(request, ResponseCode.Success);
    });
    registry.register(RequestCode.GetConsumerRunningInfo, (request) => {
      const group = request.extFields['consumerGroup'] ?? '';
      const clientId = request.extFields['clientId'];
      for (const each of set) {
        if (clientId !== undefined && each.clientId !== clientId) continue;
        const info = each.consumerRunningInfo(group);
        if (info !== undefined) {
          return createResponse(request, ResponseCode.Success, undefined, {}, Buffer.from(JSON.stringify(info)));
        }
      }
      return createResponse(request, ResponseCode.SystemError, `no consumer of group ${group} here`);
    });
    registry.register(RequestCode.CheckTransactionState, (request, channel) => {
      const message = request.body === undefined ? undefined : decodePulledMessages(request.body, '')[0];
      const group = message?.allProperties[MessageProperty.ProducerGroup];
      if (message === undefined || group === undefined) {
        log.warn({ fields: request.extFields }, 'CHECK_TRANSACTION_STATE without a half message or its group');
        return createResponse(request, ResponseCode.SystemError, 'no half message in the check');
      }
      for (const each of set) {
        const checker = each.transactionChecker(group);
        if (checker === undefined) continue;
        // Answered by a later END_TRANSACTION, as RocketMQ does; the check itself is acknowledged now.
        checker({ ...request.extFields }, message, channel).catch((err: unknown) => {
          log.warn({ err, group }, 'transaction check failed; the broker will check again');
        });
        return createResponse(request, ResponseCode.Success);
      }
      log.debug({ group }, 'CHECK_TRANSACTION_STATE for a group without a transaction producer here');
      return createResponse(request, ResponseCode.SystemError, `no transaction producer of group ${group}`);
    });
    registry.register(RequestCode.ResetConsumerClientOffset, async (request) => {
      const topic = request.extFields['topic'] ?? '';
      const group = request.extFields['group'] ?? '';
      let offsets: { queue: MessageQueue; offset: number }[];
      try {
        offsets = decodeResetOffsetBody(request.body);
      } catch (err) {
        log.warn({ err, group, topic }, 'RESET_CONSUMER_CLIENT_OFFSET with an unreadable body');
        return createResponse(request, ResponseCode.SystemError, 'unreadable reset offset body');
      }
      for (const each of set) await each.resetConsumerOffset(group, topic, offsets);
      return createResponse(request, ResponseCode.Success);
    });
  }
  instances.add(instance);
}

function detach(registry: ProcessorRegistry, instance: ClientInstance): void {
  instancesByRegistry.get(registry)?.delete(instance);
}

/** Shared state and periodic work of one client (MQClientInstance). */
export class ClientInstance {
  readonly clientId: string;
  readonly transport: Transport;
  readonly requestTimeoutMs: number;
  private readonly ownsTransport: boolean;
  private readonly nameServers: readonly string[];
  private nameServerIndex = 0;
  private readonly routes = new Map<string, TopicRouteData>();
  private readonly inflightRoutes = new Map<string, Promise<TopicRouteData | undefined>>();
  /**
   * Addresses by broker name as the most recently fetched route gave them (RocketMQ brokerAddrTable):
   * after a failover the newest route wins over older routes of other topics.
   */
  private readonly brokerAddrTable = new Map<string, BrokerAddrs>();
  /** Per queue, the broker id the last pull response suggested (RocketMQ pullFromWhichNodeTable). */
  private readonly pullFromWhichNode = new Map<string, number>();
  /** When each topic's route was last fetched because one of its brokers failed. */
  private readonly failureRefreshAtMs = new Map<string, number>();
  private readonly failureRouteRefreshIntervalMs: number;
  private readonly producerGroups = new Set<string>();
  private readonly consumers = new Map<string, ConsumerHandle>();
  private readonly transactionCheckers = new Map<string, TransactionChecker>();
  private readonly heartbeatIntervalMs: number;
  private readonly routeRefreshIntervalMs: number;
  private timers: NodeJS.Timeout[] = [];
  private started = false;

  constructor(options: ClientInstanceOptions) {
    if (options.nameServers.length === 0) throw new RbError(ErrorCode.ConfigInvalid, 'nameServers is empty');
    this.nameServers = [...options.nameServers];
    this.nameServerIndex = Math.floor(Math.random() * this.nameServers.length);
    this.ownsTransport = options.transport === undefined;
    this.transport = options.transport ?? new RemoteTransport();
    this.requestTimeoutMs = options.requestTimeoutMs ?? 3000;
    this.heartbeatIntervalMs = options.heartbeatIntervalMs ?? 30_000;
    this.routeRefreshIntervalMs = options.routeRefreshIntervalMs ?? 30_000;
    this.failureRouteRefreshIntervalMs = options.failureRouteRefreshIntervalMs ?? 200;
    const instanceName = options.instanceName ?? String(++instanceCounter);
    this.clientId = `${localIPv4()}@${process.pid}@${instanceName}`;
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    attach(this.transport.registry, this);
    this.timers.push(
      setInterval(() => void this.refreshAllRoutes(), this.routeRefreshIntervalMs).unref(),
      setInterval(() => void this.sendHeartbeatToAllBrokers(), this.heartbeatIntervalMs).unref(),
    );
  }

  /** Unregisters from every broker, stops the timers and closes an owned transport. */
  async shutdown(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    await this.unregisterFromAllBrokers();
    detach(this.transport.registry, this);
    if (this.ownsTransport) await this.transport.close();
  }

  addProducer(group: string): void {
    this.producerGroups.add(group);
  }

  removeProducer(group: string): void {
    this.producerGroups.delete(group);
  }

  addConsumer(handle: ConsumerHandle): void {
    if (this.consumers.has(handle.group)) {
      throw new RbError(ErrorCode.ClientState, `consumer group ${handle.group} is already registered on this client`);
    }
    this.consumers.set(handle.group, handle);
  }

  removeConsumer(group: string): void {
    this.consumers.delete(group);
  }

  setTransactionChecker(group: string, checker: TransactionChecker | undefined): void {
    if (checker === undefined) this.transactionCheckers.delete(group);
    else this.transactionCheckers.set(group, checker);
  }

  /** @internal Called by the shared registry processor. */
  transactionChecker(group: string): TransactionChecker | undefined {
    return this.transactionCheckers.get(group);
  }

  /** @internal Called by the shared registry processor. */
  async resetConsumerOffset(
    group: string,
    topic: string,
    offsets: readonly { queue: MessageQueue; offset: number }[],
  ): Promise<void> {
    const consumer = this.consumers.get(group);
    if (consumer?.resetOffset === undefined) return;
    try {
      await consumer.resetOffset(topic, offsets);
    } catch (err) {
      log.warn({ err, group, topic }, 'resetting consumer offsets failed');
    }
  }

  /** @internal Called by the shared registry processor. */
  notifyConsumerIdsChanged(group: string): void {
    this.consumers.get(group)?.onConsumerIdsChanged();
  }

  /** @internal Called by the shared registry processor. */
  consumerRunningInfo(group: string): Record<string, unknown> | undefined {
    return this.consumers.get(group)?.runningInfo();
  }

  /** Sends a request to a broker (or any address). */
  invoke(address: string, request: RemotingCommand, timeoutMs = this.requestTimeoutMs): Promise<RemotingCommand> {
    return this.transport.invoke(address, request, timeoutMs);
  }

  /** Tries the NameServers in turn, starting with the one that last worked. */
  async invokeNameServer(request: RemotingCommand, timeoutMs = this.requestTimeoutMs): Promise<RemotingCommand> {
    let lastError: unknown;
    for (let attempt = 0; attempt < this.nameServers.length; attempt++) {
      const address = this.nameServers[this.nameServerIndex % this.nameServers.length] as string;
      try {
        // A fresh opaque per attempt: a late answer to the previous try must not be taken for this one.
        return await this.transport.invoke(address, { ...request, opaque: createRequest(0).opaque }, timeoutMs);
      } catch (err) {
        lastError = err;
        log.debug({ err, address }, 'NameServer request failed; trying the next one');
        this.nameServerIndex = (this.nameServerIndex + 1) % this.nameServers.length;
      }
    }
    throw new RbError(ErrorCode.NoRoute, `no NameServer answered (${this.nameServers.join(', ')})`, {
      cause: lastError,
    });
  }

  /** Asks a NameServer for the topic's route; undefined when the topic does not exist. */
  async fetchRoute(topic: string): Promise<TopicRouteData | undefined> {
    const response = await this.invokeNameServer(createRequest(RequestCode.GetRouteInfoByTopic, { topic }));
    if (response.code === ResponseCode.TopicNotExist) return undefined;
    if (response.code !== ResponseCode.Success) {
      throw new RbError(ErrorCode.RemoteError, `route of ${topic}: code ${response.code} ${response.remark ?? ''}`);
    }
    return decodeTopicRouteData(response.body);
  }

  /**
   * The cached route of a topic, fetched when missing or when `refresh` is set. Concurrent callers
   * share one request. Undefined when the topic does not exist.
   */
  /** The cached route of a topic, without fetching (the producer's send path, which must not await). */
  cachedRoute(topic: string): TopicRouteData | undefined {
    return this.routes.get(topic);
  }

  async routeOf(topic: string, refresh = false): Promise<TopicRouteData | undefined> {
    const cached = this.routes.get(topic);
    if (cached !== undefined && !refresh) return cached;
    let inflight = this.inflightRoutes.get(topic);
    if (inflight === undefined) {
      inflight = this.fetchRoute(topic).then(
        (route) => {
          this.inflightRoutes.delete(topic);
          const known = this.knownBrokerAddresses();
          const previous = this.routes.get(topic);
          if (route !== undefined) {
            this.routes.set(topic, route);
            for (const broker of route.brokerDatas) this.brokerAddrTable.set(broker.brokerName, broker.brokerAddrs);
          } else {
            this.routes.delete(topic);
          }
          if (previous !== undefined) this.forgetGoneBrokers(previous, route);
          // A broker we have not met yet learns about us at once, not 30 s later.
          if (route !== undefined && this.started && this.hasNewBroker(route, known)) {
            void this.sendHeartbeatToAllBrokers();
          }
          return route;
        },
        (err: unknown) => {
          this.inflightRoutes.delete(topic);
          throw err;
        },
      );
      this.inflightRoutes.set(topic, inflight);
    }
    return inflight;
  }

  /** Forgets a cached route so the next use fetches it again. */
  dropRoute(topic: string): void {
    this.routes.delete(topic);
  }

  /**
   * Fetches the topic's route again because one of its brokers could not be reached, so a failover
   * (another address now master, a dead master gone) is seen before the periodic refresh. At most
   * once per failureRouteRefreshIntervalMs per topic: a dead broker fails every request sent to it.
   * Never rejects.
   */
  async refreshRouteAfterFailure(topic: string): Promise<void> {
    const now = Date.now();
    const last = this.failureRefreshAtMs.get(topic);
    if (last !== undefined && now - last < this.failureRouteRefreshIntervalMs) return;
    this.failureRefreshAtMs.set(topic, now);
    try {
      await this.routeOf(topic, true);
    } catch (err) {
      log.debug({ err, topic }, 'route refresh after a broker failure failed');
    }
  }

  /** The master address of a broker, from the most recently fetched route naming it. */
  brokerAddress(brokerName: string): string | undefined {
    return this.brokerAddrTable.get(brokerName)?.['0'];
  }

  /** The addresses of the broker holding `queue`, fetching its topic's route when none is known. */
  private async brokerAddrsOf(queue: MessageQueue): Promise<BrokerAddrs | undefined> {
    const known = this.brokerAddrTable.get(queue.brokerName);
    if (known !== undefined && Object.keys(known).length > 0) return known;
    await this.routeOf(queue.topic, true);
    return this.brokerAddrTable.get(queue.brokerName);
  }

  /**
   * Where offsets of `queue` are queried and committed (RocketMQ findBrokerAddressInAdmin): the
   * master, else a slave, which keeps the offsets synced from its master.
   */
  async adminAddressOf(queue: MessageQueue): Promise<string> {
    const addrs = await this.brokerAddrsOf(queue);
    const address = addrs === undefined ? undefined : adminAddressOf(addrs);
    if (address === undefined) throw new RbError(ErrorCode.NoRoute, `broker ${queue.brokerName} has no known address`);
    return address;
  }

  /**
   * Where to pull `queue` from (RocketMQ findBrokerAddressInSubscribe): the broker id the last pull
   * response suggested if the route has it, else the master, else a slave.
   */
  async pullAddressOf(queue: MessageQueue): Promise<string> {
    const addrs = await this.brokerAddrsOf(queue);
    const found =
      addrs === undefined ? undefined : subscribeAddressOf(addrs, this.pullFromWhichNode.get(queueKey(queue)) ?? 0);
    if (found === undefined) throw new RbError(ErrorCode.NoRoute, `broker ${queue.brokerName} has no known address`);
    return found.address;
  }

  /** A pull response's suggestWhichBrokerId, used for the queue's next pull; undefined forgets it. */
  suggestPullBroker(queue: MessageQueue, brokerId: number | undefined): void {
    if (brokerId === undefined || brokerId === 0) this.pullFromWhichNode.delete(queueKey(queue));
    else this.pullFromWhichNode.set(queueKey(queue), brokerId);
  }

  /** The master address of the broker holding `queue`, refreshing its topic's route if needed. */
  async brokerAddressOf(queue: MessageQueue): Promise<string> {
    let address = this.brokerAddress(queue.brokerName);
    if (address === undefined) {
      await this.routeOf(queue.topic, true);
      address = this.brokerAddress(queue.brokerName);
    }
    if (address === undefined) throw new RbError(ErrorCode.NoRoute, `broker ${queue.brokerName} has no known master`);
    return address;
  }

  /** Refreshes every cached route (RocketMQ updateTopicRouteInfoFromNameServer). */
  async refreshAllRoutes(): Promise<void> {
    for (const topic of [...this.routes.keys()]) {
      try {
        await this.routeOf(topic, true);
      } catch (err) {
        log.debug({ err, topic }, 'route refresh failed');
      }
    }
  }

  /** Heartbeat to the master of every broker in the cached routes. */
  async sendHeartbeatToAllBrokers(): Promise<void> {
    const addresses = this.knownBrokerAddresses();
    if (addresses.size === 0 || (this.producerGroups.size === 0 && this.consumers.size === 0)) return;
    const body = Buffer.from(JSON.stringify(this.heartbeatData()));
    await Promise.all(
      [...addresses].map(async (address) => {
        try {
          const response = await this.invoke(address, createRequest(RequestCode.HeartBeat, {}, body));
          if (response.code !== ResponseCode.Success) {
            log.warn({ address, code: response.code, remark: response.remark }, 'heartbeat refused');
          }
        } catch (err) {
          log.debug({ err, address }, 'heartbeat failed');
        }
      }),
    );
  }

  heartbeatData(): {
    clientID: string;
    producerDataSet: { groupName: string }[];
    consumerDataSet: ConsumerData[];
  } {
    return {
      clientID: this.clientId,
      producerDataSet: [...this.producerGroups].map((groupName) => ({ groupName })),
      consumerDataSet: [...this.consumers.values()].map((consumer) => consumer.heartbeatData()),
    };
  }

  /** Drops the addresses of broker names that left `previous` and that no cached route names any more. */
  private forgetGoneBrokers(previous: TopicRouteData, current: TopicRouteData | undefined): void {
    for (const broker of previous.brokerDatas) {
      const name = broker.brokerName;
      if (current?.brokerDatas.some((each) => each.brokerName === name) === true) continue;
      const named = [...this.routes.values()].some((route) =>
        route.brokerDatas.some((each) => each.brokerName === name),
      );
      if (!named) this.brokerAddrTable.delete(name);
    }
  }

  /**
   * The brokers this client heartbeats to: masters, and slaves too when it has consumers, which may
   * pull from a slave once the master is gone (MQClientInstance.sendHeartbeatToAllBroker).
   */
  private heartbeatAddressesOf(broker: BrokerData): string[] {
    if (this.consumers.size > 0) return Object.values(broker.brokerAddrs);
    const master = broker.brokerAddrs['0'];
    return master === undefined ? [] : [master];
  }

  private knownBrokerAddresses(): Set<string> {
    const addresses = new Set<string>();
    for (const route of this.routes.values()) {
      for (const broker of route.brokerDatas) {
        for (const address of this.heartbeatAddressesOf(broker)) addresses.add(address);
      }
    }
    return addresses;
  }

  private hasNewBroker(route: TopicRouteData, known: Set<string>): boolean {
    return route.brokerDatas.some((broker) => this.heartbeatAddressesOf(broker).some((address) => !known.has(address)));
  }

  private async unregisterFromAllBrokers(): Promise<void> {
    const addresses = this.knownBrokerAddresses();
    const groups: { producerGroup?: string; consumerGroup?: string }[] = [
      ...[...this.producerGroups].map((producerGroup) => ({ producerGroup })),
      ...[...this.consumers.keys()].map((consumerGroup) => ({ consumerGroup })),
    ];
    await Promise.all(
      [...addresses].flatMap((address) =>
        groups.map(async (group) => {
          const fields: Record<string, string> = { clientID: this.clientId };
          if (group.producerGroup !== undefined) fields['producerGroup'] = group.producerGroup;
          if (group.consumerGroup !== undefined) fields['consumerGroup'] = group.consumerGroup;
          try {
            await this.invoke(address, createRequest(RequestCode.UnregisterClient, fields), 1000);
          } catch (err) {
            log.debug({ err, address }, 'unregister failed');
          }
        }),
      ),
    );
  }
}
