/**
 * The broker requests consumers make (RocketMQ MQClientAPIImpl, consumer half): pull, consumer
 * offsets, queue min/max offsets, search by time, group members and sending a message back for
 * retry. Each turns a remoting response into a value or an RbError with the broker's code.
 */
import { ErrorCode, RbError } from '../common/errors.js';
import { RequestCode, ResponseCode } from '../remoting/codes.js';
import { createRequest, type RemotingCommand } from '../remoting/command.js';
import type { ClientInstance } from './client-instance.js';
import { isUnreachable } from './latency-fault-tolerance.js';
import { decodePulledMessages, type MessageExt } from './message-ext.js';
import type { MessageQueue } from './route.js';

/** Pull flags (PullSysFlag). */
export const PullSysFlag = { CommitOffset: 1, Suspend: 2, Subscription: 4, ClassFilter: 8 } as const;

export type PullStatus = 'FOUND' | 'NO_NEW_MSG' | 'NO_MATCHED_MSG' | 'OFFSET_ILLEGAL';

export interface PullResult {
  status: PullStatus;
  /** The queue offset to pull from next. */
  nextBeginOffset: number;
  minOffset: number;
  maxOffset: number;
  /** Messages of a FOUND result (not yet filtered by tag on the client). */
  messages: MessageExt[];
}

export interface PullRequest {
  group: string;
  queue: MessageQueue;
  queueOffset: number;
  maxNums: number;
  /** The offset to commit with this pull; omitted or negative for none. */
  commitOffset?: number;
  /** How long the broker may hold the request waiting for messages; 0 for no long polling. */
  suspendMs: number;
  subscription: string;
  subVersion: number;
}

export function remoteError(what: string, response: RemotingCommand): RbError {
  return new RbError(ErrorCode.RemoteError, `${what}: code ${response.code} ${response.remark ?? ''}`.trim());
}

function numberField(response: RemotingCommand, name: string, what: string): number {
  const text = response.extFields[name];
  const value = text === undefined ? NaN : Number(text);
  if (!Number.isFinite(value)) throw new RbError(ErrorCode.RemoteError, `${what}: response lacks ${name}`);
  return value;
}

function queueFields(queue: MessageQueue): Record<string, string> {
  return { topic: queue.topic, queueId: String(queue.queueId) };
}

/**
 * PULL_MESSAGE with long polling; the request timeout covers the broker's suspend time. Pulls go to
 * the broker id the previous response suggested, else the master, else a slave; a broker that cannot
 * be reached makes the topic's route be fetched again soon, so a failover is followed.
 */
export async function pullMessage(instance: ClientInstance, pull: PullRequest): Promise<PullResult> {
  const address = await instance.pullAddressOf(pull.queue);
  const commit = pull.commitOffset !== undefined && pull.commitOffset >= 0;
  let sysFlag = PullSysFlag.Subscription;
  if (commit) sysFlag |= PullSysFlag.CommitOffset;
  if (pull.suspendMs > 0) sysFlag |= PullSysFlag.Suspend;
  const request = createRequest(RequestCode.PullMessage, {
    consumerGroup: pull.group,
    ...queueFields(pull.queue),
    queueOffset: String(pull.queueOffset),
    maxMsgNums: String(pull.maxNums),
    sysFlag: String(sysFlag),
    commitOffset: String(commit ? pull.commitOffset : 0),
    suspendTimeoutMillis: String(pull.suspendMs),
    subscription: pull.subscription,
    subVersion: String(pull.subVersion),
    expressionType: 'TAG',
  });
  let response: RemotingCommand;
  try {
    response = await instance.invoke(address, request, pull.suspendMs + instance.requestTimeoutMs);
  } catch (err) {
    if (isUnreachable(err)) {
      instance.suggestPullBroker(pull.queue, undefined);
      void instance.refreshRouteAfterFailure(pull.queue.topic);
    }
    throw err;
  }
  const suggested = Number(response.extFields['suggestWhichBrokerId']);
  instance.suggestPullBroker(pull.queue, Number.isInteger(suggested) && suggested >= 0 ? suggested : undefined);
  let status: PullStatus;
  switch (response.code) {
    case ResponseCode.Success:
      status = 'FOUND';
      break;
    case ResponseCode.PullNotFound:
      status = 'NO_NEW_MSG';
      break;
    case ResponseCode.PullRetryImmediately:
      status = 'NO_MATCHED_MSG';
      break;
    case ResponseCode.PullOffsetMoved:
      status = 'OFFSET_ILLEGAL';
      break;
    default:
      throw remoteError(`pull ${pull.queue.topic}/${pull.queue.queueId}`, response);
  }
  const what = 'pull';
  return {
    status,
    nextBeginOffset: numberField(response, 'nextBeginOffset', what),
    minOffset: numberField(response, 'minOffset', what),
    maxOffset: numberField(response, 'maxOffset', what),
    messages:
      status === 'FOUND' && response.body !== undefined && response.body.length > 0
        ? decodePulledMessages(response.body, pull.queue.brokerName)
        : [],
  };
}

/** QUERY_CONSUMER_OFFSET: the group's committed offset, or -1 when it has none (QUERY_NOT_FOUND). */
export async function queryConsumerOffset(
  instance: ClientInstance,
  group: string,
  queue: MessageQueue,
): Promise<number> {
  const address = await instance.adminAddressOf(queue);
  const response = await instance.invoke(
    address,
    createRequest(RequestCode.QueryConsumerOffset, { consumerGroup: group, ...queueFields(queue) }),
  );
  if (response.code === ResponseCode.QueryNotFound) return -1;
  if (response.code !== ResponseCode.Success) throw remoteError('query consumer offset', response);
  return numberField(response, 'offset', 'query consumer offset');
}

/** UPDATE_CONSUMER_OFFSET. */
export async function updateConsumerOffset(
  instance: ClientInstance,
  group: string,
  queue: MessageQueue,
  queueOffset: number,
): Promise<void> {
  const address = await instance.adminAddressOf(queue);
  const response = await instance.invoke(
    address,
    createRequest(RequestCode.UpdateConsumerOffset, {
      consumerGroup: group,
      ...queueFields(queue),
      commitOffset: String(queueOffset),
    }),
  );
  if (response.code !== ResponseCode.Success) throw remoteError('update consumer offset', response);
}

async function offsetRequest(
  instance: ClientInstance,
  code: number,
  queue: MessageQueue,
  extra: Record<string, string> = {},
): Promise<number> {
  const address = await instance.adminAddressOf(queue);
  const response = await instance.invoke(address, createRequest(code, { ...queueFields(queue), ...extra }));
  if (response.code !== ResponseCode.Success) throw remoteError(`offset request ${code}`, response);
  return numberField(response, 'offset', `offset request ${code}`);
}

/** GET_MAX_OFFSET: the queue offset one past the last message. */
export function maxOffsetOf(instance: ClientInstance, queue: MessageQueue): Promise<number> {
  return offsetRequest(instance, RequestCode.GetMaxOffset, queue);
}

/** GET_MIN_OFFSET: the smallest queue offset still stored. */
export function minOffsetOf(instance: ClientInstance, queue: MessageQueue): Promise<number> {
  return offsetRequest(instance, RequestCode.GetMinOffset, queue);
}

/** SEARCH_OFFSET_BY_TIMESTAMP: the first queue offset stored at or after `timestampMs`. */
export function searchOffset(instance: ClientInstance, queue: MessageQueue, timestampMs: number): Promise<number> {
  return offsetRequest(instance, RequestCode.SearchOffsetByTimestamp, queue, { timestamp: String(timestampMs) });
}

/** GET_CONSUMER_LIST_BY_GROUP from one broker: the client ids of the group's members. */
export async function consumerIdsOf(instance: ClientInstance, brokerAddress: string, group: string): Promise<string[]> {
  const response = await instance.invoke(
    brokerAddress,
    createRequest(RequestCode.GetConsumerListByGroup, { consumerGroup: group }),
  );
  if (response.code !== ResponseCode.Success) throw remoteError('consumer list', response);
  if (response.body === undefined) return [];
  const parsed = JSON.parse(response.body.toString('utf8')) as { consumerIdList?: unknown };
  return Array.isArray(parsed.consumerIdList) ? parsed.consumerIdList.map(String) : [];
}

/** CONSUMER_SEND_MSG_BACK: the broker re-sends the message through %RETRY%<group> with a delay. */
export async function sendMessageBack(
  instance: ClientInstance,
  group: string,
  message: MessageExt,
  maxReconsumeTimes: number,
  delayLevel = 0,
): Promise<void> {
  const address = instance.brokerAddress(message.brokerName);
  if (address === undefined) throw new RbError(ErrorCode.NoRoute, `broker ${message.brokerName} unknown`);
  const response = await instance.invoke(
    address,
    createRequest(RequestCode.ConsumerSendMsgBack, {
      offset: String(message.commitLogOffset),
      group,
      delayLevel: String(delayLevel),
      originMsgId: message.msgId,
      originTopic: message.topic,
      unitMode: 'false',
      maxReconsumeTimes: String(maxReconsumeTimes),
    }),
  );
  if (response.code !== ResponseCode.Success) throw remoteError('send message back', response);
}
