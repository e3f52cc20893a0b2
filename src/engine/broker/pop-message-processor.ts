/**
 * POP_MESSAGE (200050), ACK_MESSAGE (200051), BATCH_ACK_MESSAGE (200151) and
 * CHANGE_MESSAGE_INVISIBLETIME (200053), after RocketMQ's PopMessageProcessor, AckMessageProcessor
 * and ChangeInvisibleTimeProcessor, over the PopService's state. A batch ack's body is RocketMQ's
 * BatchAckMessageRequestBody `{"brokerName", "acks": [BatchAck]}`, a BatchAck being
 * `{c: group, t: topic, r: "1" for the group's pop retry topic, so: startOffset, q: queueId,
 * rq: reviveQid, pt: popTime, it: invisibleTime, b: base64 of java.util.BitSet.toByteArray()}` where
 * bit i names queue offset so + i; like RocketMQ it answers SUCCESS and skips leases it does not hold
 * (we add `ackedNum`, how many leases ended). A pop that finds nothing waits up to its pollTime for an arrival on the topic
 * or the group's pop retry topic (the store's arrival listener, as pull long polling does).
 * The receipt handle (extraInfo) is ExtraInfoUtil's:
 * `ckStartOffset popTime invisibleTime reviveQid t brokerName queueId queueOffset` (t: 1 = retry topic);
 * ack and change check its popTime against the lease, so an old handle stops working.
 */
import { ChurnMap } from '../common/churn-map.js';
import { mayMatchTagsCode, parseTagExpression, type TagFilter } from '../common/tag-expression.js';
import { RETRY_GROUP_TOPIC_PREFIX, topicNameProblem } from '../common/topic.js';
import type { RemotingChannel } from '../remoting/channel.js';
import { ResponseCode } from '../remoting/codes.js';
import { createResponse, type RemotingCommand } from '../remoting/command.js';
import type { BrokerContext } from './broker-context.js';
import type { PopResult, PopService } from './pop-service.js';
import { RequestError } from './request-error.js';
import { HeaderReader, stringFields } from './request-header.js';
import { parseLenientJson } from './lenient-json.js';
import { checkSubscription } from './subscription-check.js';
import { popRetryTopicOf } from './system-message.js';
import { isReadable } from './topic-config-manager.js';

/** Bounds on one batch ack: BatchAck entries, and bitset bytes per entry (8 offsets a byte). */
const MAX_BATCH_ACKS = 1024;
const MAX_BITSET_BYTES = 8192;

/** One BatchAck of a BATCH_ACK_MESSAGE body, decoded. */
export interface BatchAckEntry {
  group: string;
  topic: string;
  retry: boolean;
  queueId: number;
  popTime: number;
  queueOffsets: number[];
}

function badBatch(message: string): RequestError {
  return new RequestError(ResponseCode.SystemError, `bad batch ack body: ${message}`);
}

function field(entry: Record<string, unknown>, short: string, long: string): unknown {
  return entry[short] ?? entry[long];
}

function integerField(entry: Record<string, unknown>, short: string, long: string): number {
  const raw = field(entry, short, long);
  const value = typeof raw === 'string' ? Number(raw) : raw;
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw badBatch(`${short} is not an integer`);
  return value;
}

/** Decodes a BatchAckMessageRequestBody (see the module comment); throws RequestError on bad input. */
export function parseBatchAckBody(body: Buffer | undefined): BatchAckEntry[] {
  if (body === undefined || body.length === 0) return [];
  let raw: unknown;
  try {
    raw = parseLenientJson(body.toString('utf8'));
  } catch {
    throw badBatch('not JSON');
  }
  if (typeof raw !== 'object' || raw === null) throw badBatch('not an object');
  const acks = (raw as Record<string, unknown>)['acks'];
  if (acks === undefined || acks === null) return [];
  if (!Array.isArray(acks)) throw badBatch('acks is not a list');
  if (acks.length > MAX_BATCH_ACKS) throw badBatch(`more than ${MAX_BATCH_ACKS} acks`);
  return acks.map((item: unknown) => {
    if (typeof item !== 'object' || item === null) throw badBatch('an ack is not an object');
    const entry = item as Record<string, unknown>;
    const group = field(entry, 'c', 'consumerGroup');
    const topic = field(entry, 't', 'topic');
    const bits = field(entry, 'b', 'bitSet');
    if (typeof group !== 'string' || group.trim().length === 0) throw badBatch('c (consumerGroup) missing');
    if (typeof topic !== 'string' || topic.length === 0) throw badBatch('t (topic) missing');
    if (typeof bits !== 'string') throw badBatch('b (bitSet) is not a base64 string');
    const bytes = Buffer.from(bits, 'base64');
    if (bytes.length > MAX_BITSET_BYTES) throw badBatch(`bitset longer than ${MAX_BITSET_BYTES} bytes`);
    const startOffset = integerField(entry, 'so', 'startOffset');
    const queueOffsets: number[] = [];
    for (let byte = 0; byte < bytes.length; byte++) {
      const value = bytes[byte] as number;
      if (value === 0) continue;
      for (let bit = 0; bit < 8; bit++) if ((value & (1 << bit)) !== 0) queueOffsets.push(startOffset + byte * 8 + bit);
    }
    const retry = field(entry, 'r', 'retry');
    return {
      group,
      topic,
      retry: retry === '1' || retry === 1 || retry === true,
      queueId: integerField(entry, 'q', 'queueId'),
      popTime: integerField(entry, 'pt', 'popTime'),
      queueOffsets,
    };
  });
}

/** RocketMQ's limit on messages per pop. */
const MAX_POP_MESSAGES = 32;
/** The revive queue id we report; revival is not queue-based here. */
const REVIVE_QID = 0;

interface Waiter {
  readonly id: number;
  readonly topics: readonly string[];
  /** Only arrivals whose tag may match wake the pop (thousands of groups can wait on one topic). */
  readonly filter: TagFilter;
  readonly wake: () => void;
}

/** The popTime of a receipt handle (ExtraInfoUtil field 1). */
export function popTimeOfExtraInfo(extraInfo: string): number {
  const fields = extraInfo.trim().split(' ');
  const popTime = Number(fields[1]);
  if (fields.length < 7 || !Number.isSafeInteger(popTime)) {
    throw new RequestError(ResponseCode.SystemError, `extraInfo "${extraInfo.slice(0, 100)}" is not a receipt handle`);
  }
  return popTime;
}

export class PopMessageProcessor {
  /** By id; ChurnMaps because a waiter comes and goes per pop (see churn-map.ts for why not a Set). */
  private readonly waiters = new ChurnMap<number, Waiter>();
  /** The same waiters by watched topic, so an arrival looks only at the pops of its topic. */
  private readonly waitersByTopic = new ChurnMap<string, ChurnMap<number, Waiter>>();
  private nextWaiterId = 1;
  private stopped = false;

  constructor(
    private readonly ctx: BrokerContext,
    private readonly pops: PopService,
  ) {}

  /** The store's arrival listener: wakes pops waiting on the topic whose filter may match the tag. */
  notifyArrival(topic: string, tagsCode: number): void {
    const waiting = this.waitersByTopic.get(topic);
    if (waiting === undefined) return;
    for (const waiter of waiting.values()) if (mayMatchTagsCode(waiter.filter, tagsCode)) waiter.wake();
  }

  /** Answers every waiting pop. */
  shutdown(): void {
    this.stopped = true;
    for (const waiter of this.waiters.values()) waiter.wake();
  }

  get waitingCount(): number {
    return this.waiters.size;
  }

  async pop(request: RemotingCommand, channel: RemotingChannel): Promise<RemotingCommand> {
    const reader = new HeaderReader(request.extFields as Readonly<Record<string, unknown>>);
    const group = reader.name('consumerGroup');
    const topic = reader.string('topic');
    const queueId = reader.int('queueId');
    const maxMsgNums = reader.int('maxMsgNums');
    const invisibleTimeMs = reader.long('invisibleTime');
    const pollTimeMs = reader.optionalLong('pollTime') ?? 0;
    const initMode = reader.optionalInt('initMode') ?? 0;
    const expType = reader.optionalString('expType') ?? 'TAG';
    const exp = reader.optionalString('exp') ?? '*';
    if (reader.bool('order', false)) {
      throw new RequestError(ResponseCode.MessageIllegal, 'orderly pop is not supported by this broker');
    }
    const problem = topicNameProblem(topic);
    if (problem !== undefined) throw new RequestError(ResponseCode.SystemError, problem);
    if (maxMsgNums <= 0 || maxMsgNums > MAX_POP_MESSAGES) {
      throw new RequestError(
        ResponseCode.MessageIllegal,
        `the broker restrict the max pop message num to 1..${MAX_POP_MESSAGES}, got ${maxMsgNums}`,
      );
    }
    if (invisibleTimeMs <= 0) throw new RequestError(ResponseCode.MessageIllegal, 'invisibleTime must be positive');
    checkSubscription(exp, expType);
    if (!isReadable(this.ctx.brokerPermission)) {
      throw new RequestError(ResponseCode.NoPermission, `the broker[${this.ctx.config.brokerName}] pop is forbidden`);
    }
    const topicConfig = this.ctx.topics.get(topic);
    if (topicConfig === undefined) {
      throw new RequestError(ResponseCode.TopicNotExist, `topic[${topic}] not exist, apply first please!`);
    }
    if (!isReadable(topicConfig.perm)) {
      throw new RequestError(ResponseCode.NoPermission, `the topic[${topic}] peeking message is forbidden`);
    }
    if (queueId >= topicConfig.readQueueNums) {
      throw new RequestError(
        ResponseCode.SystemError,
        `queueId[${queueId}] is illegal, topic:[${topic}] topicConfig.readQueueNums:[${topicConfig.readQueueNums}] consumer:[${channel.remoteAddress}]`,
      );
    }
    const filter = parseTagExpression(exp);
    const waitMs = Math.max(0, Math.min(pollTimeMs, this.ctx.config.longPollingMaxSuspendMs));
    const deadline = Date.now() + waitMs;
    const watched = [topic, popRetryTopicOf(group, topic)];
    for (;;) {
      const result = this.pops.pop({
        group,
        topic,
        queueId,
        maxMessages: maxMsgNums,
        invisibleTimeMs,
        filter,
        initMode,
      });
      if (result.records.length > 0) return this.found(request, result);
      const remainingMs = deadline - Date.now();
      if (waitMs === 0) {
        return createResponse(request, ResponseCode.PullNotFound, 'no message', this.emptyHeader(result));
      }
      if (remainingMs <= 0 || this.stopped || channel.closed) {
        return createResponse(request, ResponseCode.PollingTimeout, 'polling timeout', this.emptyHeader(result));
      }
      if (this.waiters.size >= this.ctx.config.maxHeldPulls) {
        return createResponse(request, ResponseCode.PollingFull, 'too many pops waiting');
      }
      await this.waitForArrival(watched, filter, remainingMs);
    }
  }

  ack(request: RemotingCommand): RemotingCommand {
    const reader = new HeaderReader(request.extFields as Readonly<Record<string, unknown>>);
    const group = reader.name('consumerGroup');
    const topic = reader.string('topic');
    const queueId = reader.int('queueId');
    const queueOffset = reader.long('offset');
    const popTime = popTimeOfExtraInfo(reader.string('extraInfo'));
    if (!this.pops.ack(group, topic, queueId, queueOffset, popTime)) {
      return createResponse(
        request,
        ResponseCode.NoMessage,
        `no lease of ${topic}:${queueId}@${queueOffset} for group ${group} with this receipt handle (acked, expired or replaced)`,
      );
    }
    return createResponse(request, ResponseCode.Success);
  }

  /** BATCH_ACK_MESSAGE: ends every lease the body names; the ones not held are skipped. */
  batchAck(request: RemotingCommand): RemotingCommand {
    let acked = 0;
    for (const entry of parseBatchAckBody(request.body)) {
      const topic =
        entry.retry && !entry.topic.startsWith(RETRY_GROUP_TOPIC_PREFIX)
          ? popRetryTopicOf(entry.group, entry.topic)
          : entry.topic;
      const acks = entry.queueOffsets.map((queueOffset) => ({ queueOffset, popTime: entry.popTime }));
      acked += this.pops.ackMany(entry.group, topic, entry.queueId, acks);
    }
    return createResponse(request, ResponseCode.Success, undefined, stringFields({ ackedNum: acked }));
  }

  changeInvisibleTime(request: RemotingCommand): RemotingCommand {
    const reader = new HeaderReader(request.extFields as Readonly<Record<string, unknown>>);
    const group = reader.name('consumerGroup');
    const topic = reader.string('topic');
    const queueId = reader.int('queueId');
    const queueOffset = reader.long('offset');
    const invisibleTimeMs = reader.long('invisibleTime');
    const popTime = popTimeOfExtraInfo(reader.string('extraInfo'));
    if (invisibleTimeMs < 0) throw new RequestError(ResponseCode.MessageIllegal, 'invisibleTime must not be negative');
    const changed = this.pops.changeInvisibleTime(group, topic, queueId, queueOffset, popTime, invisibleTimeMs);
    if (changed === undefined) {
      return createResponse(
        request,
        ResponseCode.NoMessage,
        `no lease of ${topic}:${queueId}@${queueOffset} for group ${group} with this receipt handle (acked, expired or replaced)`,
      );
    }
    return createResponse(
      request,
      ResponseCode.Success,
      undefined,
      stringFields({ popTime: changed.popTime, invisibleTime: changed.invisibleTimeMs, reviveQid: REVIVE_QID }),
    );
  }

  private emptyHeader(result: PopResult): Record<string, string> {
    return stringFields({
      popTime: result.popTime,
      invisibleTime: result.invisibleTimeMs,
      reviveQid: REVIVE_QID,
      restNum: result.restNum,
    });
  }

  private found(request: RemotingCommand, result: PopResult): RemotingCommand {
    this.ctx.counters.getMessages += result.records.length;
    const mark = (retry: boolean): string => (retry ? '1' : '0');
    const startOffsetInfo = result.queues.map((q) => `${mark(q.retry)} ${q.queueId} ${q.startOffset}`).join(';');
    const msgOffsetInfo = result.queues
      .map((q) => `${mark(q.retry)} ${q.queueId} ${q.queueOffsets.join(',')}`)
      .join(';');
    const fields = stringFields({
      popTime: result.popTime,
      invisibleTime: result.invisibleTimeMs,
      reviveQid: REVIVE_QID,
      restNum: result.restNum,
      startOffsetInfo,
      msgOffsetInfo,
    });
    return createResponse(request, ResponseCode.Success, 'FOUND', fields, Buffer.concat(result.records));
  }

  private waitForArrival(topics: readonly string[], filter: TagFilter, timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const waiter: Waiter = {
        id: this.nextWaiterId++,
        topics,
        filter,
        wake: () => {
          if (!this.waiters.delete(waiter.id)) return;
          for (const topic of topics) {
            const waiting = this.waitersByTopic.get(topic);
            waiting?.delete(waiter.id);
            if (waiting?.size === 0) this.waitersByTopic.delete(topic);
          }
          clearTimeout(timer);
          // Re-pop outside the store's put path that may have called us.
          setImmediate(resolve);
        },
      };
      const timer = setTimeout(() => waiter.wake(), timeoutMs);
      this.waiters.set(waiter.id, waiter);
      for (const topic of topics) {
        let waiting = this.waitersByTopic.get(topic);
        if (waiting === undefined) {
          waiting = new ChurnMap();
          this.waitersByTopic.set(topic, waiting);
        }
        waiting.set(waiter.id, waiter);
      }
    });
  }
}
