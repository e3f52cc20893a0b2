/**
 * Queue locks for orderly consumers (MQClientAPIImpl.lockBatchMQ / unlockBatchMQ): a member locks its
 * queues at their broker so that only one member of the group consumes a queue at a time.
 */
import { RequestCode, ResponseCode } from '../remoting/codes.js';
import { createRequest } from '../remoting/command.js';
import { remoteError } from './broker-api.js';
import type { ClientInstance } from './client-instance.js';
import { type MessageQueue, queueKey } from './route.js';

function batchBody(group: string, clientId: string, queues: readonly MessageQueue[]): Buffer {
  return Buffer.from(
    JSON.stringify({
      consumerGroup: group,
      clientId,
      onlyThisBroker: false,
      mqSet: queues.map((queue) => ({ topic: queue.topic, brokerName: queue.brokerName, queueId: queue.queueId })),
    }),
  );
}

/** LOCK_BATCH_MQ: returns the keys (queueKey) of the queues this client now holds. */
export async function lockBatchMq(
  instance: ClientInstance,
  brokerAddress: string,
  group: string,
  queues: readonly MessageQueue[],
): Promise<Set<string>> {
  const response = await instance.invoke(
    brokerAddress,
    createRequest(RequestCode.LockBatchMq, {}, batchBody(group, instance.clientId, queues)),
  );
  if (response.code !== ResponseCode.Success) throw remoteError('lock queues', response);
  const locked = new Set<string>();
  if (response.body === undefined || response.body.length === 0) return locked;
  const parsed = JSON.parse(response.body.toString('utf8')) as { lockOKMQSet?: unknown };
  if (!Array.isArray(parsed.lockOKMQSet)) return locked;
  for (const entry of parsed.lockOKMQSet as unknown[]) {
    if (typeof entry !== 'object' || entry === null) continue;
    const record = entry as Record<string, unknown>;
    const queue = {
      topic: String(record['topic']),
      brokerName: String(record['brokerName']),
      queueId: Number(record['queueId']),
    };
    locked.add(queueKey(queue));
  }
  return locked;
}

/** UNLOCK_BATCH_MQ: gives the queues up so another member can lock them at once. */
export async function unlockBatchMq(
  instance: ClientInstance,
  brokerAddress: string,
  group: string,
  queues: readonly MessageQueue[],
): Promise<void> {
  const response = await instance.invoke(
    brokerAddress,
    createRequest(RequestCode.UnlockBatchMq, {}, batchBody(group, instance.clientId, queues)),
    1000,
  );
  if (response.code !== ResponseCode.Success) throw remoteError('unlock queues', response);
}
