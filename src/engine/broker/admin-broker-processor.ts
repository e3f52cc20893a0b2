/**
 * Administrative and offset lookup requests, after RocketMQ's AdminBrokerProcessor:
 * UPDATE_AND_CREATE_TOPIC (17), GET_ALL_TOPIC_CONFIG (21), GET_BROKER_RUNTIME_INFO (28),
 * SEARCH_OFFSET_BY_TIMESTAMP (29), GET_MAX_OFFSET (30), GET_MIN_OFFSET (31) and
 * GET_EARLIEST_MSG_STORETIME (32).
 */
import { topicNameProblem } from '../common/topic.js';
import { ResponseCode } from '../remoting/codes.js';
import { OUR_VERSION, createResponse, type RemotingCommand } from '../remoting/command.js';
import type { BrokerRole } from './broker-config.js';
import type { BrokerContext } from './broker-context.js';
import { RequestError } from './request-error.js';
import { HeaderReader, stringFields } from './request-header.js';
import { PERM_READ_WRITE, type TopicConfig } from './topic-config-manager.js';

/** RocketMQ's limit on queues per topic (a sanity bound on admin input). */
const MAX_QUEUE_NUMS = 1024;
const BROKER_VERSION_DESC = 'V4_9_4';

function header(request: RemotingCommand): HeaderReader {
  return new HeaderReader(request.extFields as Readonly<Record<string, unknown>>);
}

function queueOf(request: RemotingCommand): { reader: HeaderReader; topic: string; queueId: number } {
  const reader = header(request);
  const topic = reader.string('topic');
  const problem = topicNameProblem(topic);
  if (problem !== undefined) throw new RequestError(ResponseCode.SystemError, problem);
  const queueId = reader.int('queueId');
  if (queueId < 0) throw new RequestError(ResponseCode.SystemError, `queueId ${queueId} is negative`);
  return { reader, topic, queueId };
}

function runtimeText(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  const days = Math.floor(seconds / 86400);
  const hours = Math.floor((seconds % 86400) / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  return `[ ${days} days, ${hours} hours, ${minutes} minutes, ${seconds % 60} seconds ]`;
}

/**
 * What runtime info tells about replication (the broker's HaService fits): the role in effect (it
 * changes on failover) and, on a master, how many slaves report and the furthest offset one
 * confirmed, so `rocketbridge admin cluster` can show connected slaves and unconfirmed bytes as the
 * master itself sees them.
 */
export interface ReplicationStatus {
  readonly role?: BrokerRole | undefined;
  readonly master?: { readonly slaveCount: number; readonly slaveAckedOffset: number } | undefined;
}

export class AdminBrokerProcessor {
  constructor(
    private readonly ctx: BrokerContext,
    private readonly replication?: ReplicationStatus,
  ) {}

  async updateAndCreateTopic(request: RemotingCommand): Promise<RemotingCommand> {
    const reader = header(request);
    const topic = reader.string('topic');
    const problem = topicNameProblem(topic);
    if (problem !== undefined) throw new RequestError(ResponseCode.SystemError, problem);
    if (topic === this.ctx.config.clusterName || topic === this.ctx.config.brokerName) {
      throw new RequestError(ResponseCode.SystemError, `the topic[${topic}] is conflict with system reserved words.`);
    }
    const readQueueNums = reader.int('readQueueNums');
    const writeQueueNums = reader.int('writeQueueNums');
    for (const [name, value] of [
      ['readQueueNums', readQueueNums],
      ['writeQueueNums', writeQueueNums],
    ] as const) {
      if (value < 0 || value > MAX_QUEUE_NUMS) {
        throw new RequestError(ResponseCode.SystemError, `${name} ${value} is outside 0..${MAX_QUEUE_NUMS}`);
      }
    }
    const perm = reader.optionalInt('perm') ?? PERM_READ_WRITE;
    if (perm < 0 || perm > 15)
      throw new RequestError(ResponseCode.SystemError, `perm ${perm} is not a permission mask`);
    const filterType = reader.optionalString('topicFilterType') ?? 'SINGLE_TAG';
    if (filterType !== 'SINGLE_TAG' && filterType !== 'MULTI_TAG') {
      throw new RequestError(
        ResponseCode.SystemError,
        `topicFilterType "${filterType}" is not SINGLE_TAG or MULTI_TAG`,
      );
    }
    const config: TopicConfig = {
      topicName: topic,
      readQueueNums,
      writeQueueNums,
      perm,
      topicFilterType: filterType,
      topicSysFlag: reader.optionalInt('topicSysFlag') ?? 0,
      order: reader.bool('order', false),
    };
    await this.ctx.topics.update(config);
    return createResponse(request, ResponseCode.Success);
  }

  allTopicConfig(request: RemotingCommand): RemotingCommand {
    const body = Buffer.from(JSON.stringify(this.ctx.topics.serializeWrapper()));
    return createResponse(request, ResponseCode.Success, undefined, {}, body);
  }

  runtimeInfo(request: RemotingCommand): RemotingCommand {
    const stats = this.ctx.store.stats();
    const now = Date.now();
    const master = this.replication?.master;
    const table = stringFields({
      brokerVersionDesc: BROKER_VERSION_DESC,
      brokerVersion: OUR_VERSION,
      msgPutTotalTodayNow: this.ctx.counters.putMessages,
      msgGetTotalTodayNow: this.ctx.counters.getMessages,
      sendFailedTotal: this.ctx.counters.sendFailures,
      putMessageTimesTotal: stats.putCount,
      putMessageSizeTotal: stats.putBytes,
      commitLogMinOffset: stats.commitLogMinOffset,
      commitLogMaxOffset: stats.commitLogMaxOffset,
      commitLogFlushedOffset: stats.commitLogFlushedOffset,
      storeReadOnly: stats.readOnly,
      bootTimestamp: this.ctx.bootTimestampMs,
      runtime: runtimeText(now - this.ctx.bootTimestampMs),
      brokerName: this.ctx.config.brokerName,
      clusterName: this.ctx.config.clusterName,
      brokerId: this.ctx.brokerId,
      consumerGroupCount: this.ctx.consumers.groupNames().length,
      producerGroupCount: this.ctx.producers.groupNames().length,
      topicCount: this.ctx.topics.all().length,
      brokerRole: this.replication?.role ?? this.roleFromId(),
      // Only a master has slaves to count; absent keys let readers tell "not reported" from zero.
      ...(master === undefined ? {} : { haSlaveCount: master.slaveCount, haSlaveAckedOffset: master.slaveAckedOffset }),
    });
    const body = Buffer.from(JSON.stringify({ table }));
    return createResponse(request, ResponseCode.Success, undefined, {}, body);
  }

  /** Without replication status: the registered id tells master from slave, the config sync from async. */
  private roleFromId(): BrokerRole {
    if (this.ctx.brokerId > 0) return 'SLAVE';
    return this.ctx.config.brokerRole === 'SYNC_MASTER' ? 'SYNC_MASTER' : 'ASYNC_MASTER';
  }

  searchOffsetByTimestamp(request: RemotingCommand): RemotingCommand {
    const { reader, topic, queueId } = queueOf(request);
    const timestampMs = reader.long('timestamp');
    const offset = this.ctx.store.getOffsetInQueueByTime(topic, queueId, timestampMs);
    return createResponse(request, ResponseCode.Success, undefined, stringFields({ offset }));
  }

  maxOffset(request: RemotingCommand): RemotingCommand {
    const { topic, queueId } = queueOf(request);
    const offset = this.ctx.store.getMaxOffsetInQueue(topic, queueId);
    return createResponse(request, ResponseCode.Success, undefined, stringFields({ offset }));
  }

  minOffset(request: RemotingCommand): RemotingCommand {
    const { topic, queueId } = queueOf(request);
    const offset = this.ctx.store.getMinOffsetInQueue(topic, queueId);
    return createResponse(request, ResponseCode.Success, undefined, stringFields({ offset }));
  }

  earliestMessageStoreTime(request: RemotingCommand): RemotingCommand {
    const { topic, queueId } = queueOf(request);
    const minOffset = this.ctx.store.getMinOffsetInQueue(topic, queueId);
    const timestamp = this.ctx.store.getMessageStoreTimestamp(topic, queueId, minOffset);
    return createResponse(request, ResponseCode.Success, undefined, stringFields({ timestamp }));
  }
}
