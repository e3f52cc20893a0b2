/**
 * PULL_MESSAGE (11), after RocketMQ's PullMessageProcessor: check the topic and queue, work out the
 * subscription (from the request, or the group's heartbeat), read from the store with the tag filter,
 * and map the store's GetStatus to the pull response codes. A pull that finds nothing and may be
 * suspended is handed to the PullRequestHoldService (long polling). A pull may also carry the group's
 * committed offset for the queue.
 */
import { totalmem } from 'node:os';
import { parseTagExpression, type TagFilter } from '../common/tag-expression.js';
import { topicNameProblem } from '../common/topic.js';
import type { RemotingChannel } from '../remoting/channel.js';
import { ResponseCode } from '../remoting/codes.js';
import { createResponse, type RemotingCommand } from '../remoting/command.js';
import { GetStatus, type GetResult } from '../store/api.js';
import { recordCommitLogOffset } from '../store/record-view.js';
import type { BrokerContext } from './broker-context.js';
import type { PullRequestHoldService } from './pull-request-hold-service.js';
import { RequestError } from './request-error.js';
import { HeaderReader, stringFields } from './request-header.js';
import { checkSubscription } from './subscription-check.js';
import { isReadable } from './topic-config-manager.js';

/** PullSysFlag.java bits. */
export const PullSysFlag = { CommitOffset: 0x1, Suspend: 0x2, Subscription: 0x4, ClassFilter: 0x8 } as const;

/** MixAll.MASTER_ID. */
const MASTER_ID = 0;
/** RocketMQ whichBrokerWhenConsumeSlowly: the first slave. */
const SLOW_CONSUMER_BROKER_ID = 1;

/** How far behind the log's end a read counts as slow (RocketMQ accessMessageInMemoryMaxRatio of RAM). */
function slaveReadBehindBytes(config: BrokerContext['config']): number {
  return config.slaveReadBehindBytes ?? Math.floor((totalmem() * config.accessMessageInMemoryMaxRatio) / 100);
}

export interface PullMessageHeader {
  consumerGroup: string;
  topic: string;
  queueId: number;
  queueOffset: number;
  maxMsgNums: number;
  sysFlag: number;
  commitOffset: number;
  suspendTimeoutMillis: number;
  subscription: string | undefined;
  /** Exact (see SubscriptionData.subVersion). */
  subVersion: bigint;
  expressionType: string;
}

export function decodePullHeader(extFields: Readonly<Record<string, unknown>>): PullMessageHeader {
  const header = new HeaderReader(extFields);
  return {
    consumerGroup: header.name('consumerGroup'),
    topic: header.string('topic'),
    queueId: header.int('queueId'),
    queueOffset: header.long('queueOffset'),
    maxMsgNums: header.int('maxMsgNums'),
    sysFlag: header.int('sysFlag'),
    commitOffset: header.long('commitOffset'),
    suspendTimeoutMillis: header.long('suspendTimeoutMillis'),
    subscription: header.optionalString('subscription'),
    subVersion: header.exactLong('subVersion'),
    expressionType: (header.optionalString('expressionType') ?? 'TAG').toUpperCase() || 'TAG',
  };
}

/** GetStatus -> pull response code (PullMessageProcessor's switch). */
export function responseCodeOfGetStatus(status: GetStatus, requestedQueueOffset: number): number {
  switch (status) {
    case GetStatus.Found:
      return ResponseCode.Success;
    case GetStatus.NoMatchedMessage:
      return ResponseCode.PullRetryImmediately;
    case GetStatus.NoMatchedLogicQueue:
    case GetStatus.NoMessageInQueue:
      // Asking for 0 of an empty queue is normal; anything else means the client's offset is stale.
      return requestedQueueOffset !== 0 ? ResponseCode.PullOffsetMoved : ResponseCode.PullNotFound;
    case GetStatus.OffsetFoundNull:
    case GetStatus.OffsetOverflowOne:
      return ResponseCode.PullNotFound;
    case GetStatus.OffsetOverflowBadly:
    case GetStatus.OffsetTooSmall:
      return ResponseCode.PullOffsetMoved;
    default:
      return ResponseCode.SystemError;
  }
}

export class PullMessageProcessor {
  constructor(
    private readonly ctx: BrokerContext,
    private readonly holdService: PullRequestHoldService,
    /** Replication state: whether this master has a slave to send slow consumers to. */
    private readonly replication?: { readonly master: { readonly slaveCount: number } | undefined },
  ) {}

  /** Serves a pull; `allowSuspend` is false when a held pull is re-run. */
  async process(request: RemotingCommand, channel: RemotingChannel, allowSuspend: boolean): Promise<RemotingCommand> {
    const header = decodePullHeader(request.extFields as Readonly<Record<string, unknown>>);
    const { config } = this.ctx;
    if (!isReadable(this.ctx.brokerPermission)) {
      throw new RequestError(
        ResponseCode.NoPermission,
        `the broker[${config.brokerName}] pulling message is forbidden`,
      );
    }
    const problem = topicNameProblem(header.topic);
    if (problem !== undefined) throw new RequestError(ResponseCode.SystemError, problem);
    const topicConfig = this.ctx.topics.get(header.topic);
    if (topicConfig === undefined) {
      throw new RequestError(ResponseCode.TopicNotExist, `topic[${header.topic}] not exist, apply first please!`);
    }
    if (!isReadable(topicConfig.perm)) {
      throw new RequestError(ResponseCode.NoPermission, `the topic[${header.topic}] pulling message is forbidden`);
    }
    if (header.queueId < 0 || header.queueId >= topicConfig.readQueueNums) {
      throw new RequestError(
        ResponseCode.SystemError,
        `queueId[${header.queueId}] is illegal, topic:[${header.topic}] topicConfig.readQueueNums:[${topicConfig.readQueueNums}] consumer:[${channel.remoteAddress}]`,
      );
    }
    if (header.queueOffset < 0)
      throw new RequestError(ResponseCode.SystemError, `queueOffset ${header.queueOffset} is negative`);
    if (header.maxMsgNums <= 0)
      throw new RequestError(ResponseCode.SystemError, `maxMsgNums ${header.maxMsgNums} must be positive`);
    const filter = this.subscriptionFilter(header);

    const result = this.ctx.store.getMessage({
      topic: header.topic,
      queueId: header.queueId,
      queueOffset: header.queueOffset,
      maxMessages: Math.min(header.maxMsgNums, config.pullMaxMessageCount),
      maxTotalBytes: config.pullMaxTotalBytes,
      filter,
    });
    const code = responseCodeOfGetStatus(result.status, header.queueOffset);

    if (code === ResponseCode.PullNotFound && allowSuspend && (header.sysFlag & PullSysFlag.Suspend) !== 0) {
      // The suspend flag with no time (the Go client v2.0.x sends suspendTimeoutMillis 0) is held until the
      // next periodic check, as RocketMQ's PullRequestHoldService does; answering at once makes it spin.
      const requestedMs =
        header.suspendTimeoutMillis > 0 ? header.suspendTimeoutMillis : config.longPollingCheckIntervalMs;
      const suspendMs = Math.min(requestedMs, config.longPollingMaxSuspendMs);
      this.commitIfAsked(header, allowSuspend);
      return new Promise<RemotingCommand>((resolve, reject) => {
        this.holdService.hold(
          {
            topic: header.topic,
            queueId: header.queueId,
            queueOffset: header.queueOffset,
            filter,
            wake: () => {
              this.process(request, channel, false).then(resolve, reject);
            },
          },
          suspendMs,
        );
      });
    }
    this.commitIfAsked(header, allowSuspend);
    return this.answer(request, code, result);
  }

  /**
   * The request's own subscription when it carries the subscription flag; otherwise the one the group
   * registered by heartbeat (push consumers send it only that way).
   */
  private subscriptionFilter(header: PullMessageHeader): TagFilter {
    if ((header.sysFlag & PullSysFlag.Subscription) !== 0) {
      checkSubscription(header.subscription, header.expressionType);
      return parseTagExpression(header.subscription);
    }
    const group = this.ctx.consumers.group(header.consumerGroup);
    if (group === undefined) {
      throw new RequestError(
        ResponseCode.SubscriptionNotExist,
        `the consumer's group info not exist, group: ${header.consumerGroup}; send a heartbeat first`,
      );
    }
    const subscription = group.subscriptions.get(header.topic);
    if (subscription === undefined) {
      throw new RequestError(
        ResponseCode.SubscriptionNotExist,
        `the consumer's subscription not exist, group: ${header.consumerGroup} topic: ${header.topic}`,
      );
    }
    if (subscription.subVersion < header.subVersion) {
      throw new RequestError(
        ResponseCode.SubscriptionNotLatest,
        `the consumer's subscription not latest, group: ${header.consumerGroup} topic: ${header.topic}`,
      );
    }
    if (subscription.expressionType !== 'TAG') {
      throw new RequestError(
        ResponseCode.SubscriptionParseFailed,
        `The broker does not support consumer to filter message by ${subscription.expressionType}`,
      );
    }
    return subscription.filter;
  }

  /** A pull may carry the offset the consumer has processed up to (RocketMQ: only on first run). */
  private commitIfAsked(header: PullMessageHeader, allowSuspend: boolean): void {
    if (!allowSuspend || (header.sysFlag & PullSysFlag.CommitOffset) === 0 || this.ctx.brokerId !== 0) return;
    if (header.commitOffset < 0) return;
    this.ctx.offsets.commit(header.consumerGroup, header.topic, header.queueId, header.commitOffset);
  }

  /**
   * RocketMQ's slave read (slaveReadEnable): a consumer reading further behind the log's end than
   * the page cache is likely to hold is sent to a slave (broker id 1), so that its disk reads do
   * not slow the master's writes; everyone else, and everyone on a slave, reads from the master.
   */
  private suggestedBrokerId(result: GetResult): number {
    const { config } = this.ctx;
    const first = result.records[0];
    if (!config.slaveReadEnable || first === undefined) return MASTER_ID;
    const behindBytes = this.ctx.store.stats().commitLogMaxOffset - recordCommitLogOffset(first);
    if (behindBytes <= slaveReadBehindBytes(config)) return MASTER_ID;
    // A master sends slow consumers away only when it has a slave to send them to.
    if (this.ctx.brokerId === MASTER_ID && (this.replication?.master?.slaveCount ?? 0) === 0) return MASTER_ID;
    return SLOW_CONSUMER_BROKER_ID;
  }

  private answer(request: RemotingCommand, code: number, result: GetResult): RemotingCommand {
    const fields = stringFields({
      suggestWhichBrokerId: this.suggestedBrokerId(result),
      nextBeginOffset: result.nextBeginOffset,
      minOffset: result.minOffset,
      maxOffset: result.maxOffset,
    });
    if (code === ResponseCode.Success) {
      this.ctx.counters.getMessages += result.records.length;
      return createResponse(request, code, result.status, fields, Buffer.concat(result.records));
    }
    return createResponse(request, code, result.status, fields);
  }
}
