/**
 * LOCK_BATCH_MQ (41) and UNLOCK_BATCH_MQ (42), after AdminBrokerProcessor.lockBatchMQ/unlockBatchMQ.
 * Body (LockBatchRequestBody / UnlockBatchRequestBody):
 * `{"consumerGroup":"g","clientId":"c","onlyThisBroker":false,"mqSet":[{"topic":"t","brokerName":"b","queueId":0}]}`;
 * the lock answer's body (LockBatchResponseBody) is `{"lockOKMQSet":[...]}`: the queues the client
 * holds now. This broker has no replicas to ask, so onlyThisBroker makes no difference.
 */
import { ResponseCode } from '../remoting/codes.js';
import { createResponse, type RemotingCommand } from '../remoting/command.js';
import { parseLenientJson } from './lenient-json.js';
import type { LockQueue, RebalanceLockManager } from './rebalance-lock-manager.js';
import { RequestError } from './request-error.js';

const MAX_QUEUES_PER_REQUEST = 4096;

interface LockBody {
  consumerGroup: string;
  clientId: string;
  mqSet: LockQueue[];
}

function fail(message: string): RequestError {
  return new RequestError(ResponseCode.SystemError, `bad lock batch body: ${message}`);
}

export function parseLockBody(body: Buffer | undefined): LockBody {
  if (body === undefined || body.length === 0) throw fail('missing');
  let raw: unknown;
  try {
    raw = parseLenientJson(body.toString('utf8'));
  } catch (err) {
    throw fail((err as Error).message);
  }
  if (typeof raw !== 'object' || raw === null) throw fail('not an object');
  const object = raw as Record<string, unknown>;
  const group = object['consumerGroup'];
  const clientId = object['clientId'];
  if (typeof group !== 'string' || group.length === 0) throw fail('consumerGroup is missing');
  if (typeof clientId !== 'string' || clientId.length === 0) throw fail('clientId is missing');
  const set = object['mqSet'] ?? [];
  if (!Array.isArray(set)) throw fail('mqSet is not an array');
  if (set.length > MAX_QUEUES_PER_REQUEST) throw fail(`mqSet holds more than ${MAX_QUEUES_PER_REQUEST} queues`);
  const mqSet = set.map((item: unknown, index): LockQueue => {
    const queue = item as Record<string, unknown> | null;
    const topic = queue?.['topic'];
    const brokerName = queue?.['brokerName'];
    const queueId = queue?.['queueId'];
    if (typeof topic !== 'string' || typeof brokerName !== 'string' || !Number.isInteger(queueId)) {
      throw fail(`mqSet[${index}] is not {topic, brokerName, queueId}`);
    }
    return { topic, brokerName, queueId: queueId as number };
  });
  return { consumerGroup: group, clientId, mqSet };
}

export class LockBatchProcessor {
  constructor(private readonly locks: RebalanceLockManager) {}

  lock(request: RemotingCommand): RemotingCommand {
    const body = parseLockBody(request.body);
    const locked = this.locks.tryLockBatch(body.consumerGroup, body.mqSet, body.clientId);
    const lockOKMQSet = locked.map(({ topic, brokerName, queueId }) => ({ topic, brokerName, queueId }));
    return createResponse(request, ResponseCode.Success, undefined, {}, Buffer.from(JSON.stringify({ lockOKMQSet })));
  }

  unlock(request: RemotingCommand): RemotingCommand {
    const body = parseLockBody(request.body);
    this.locks.unlockBatch(body.consumerGroup, body.mqSet, body.clientId);
    return createResponse(request, ResponseCode.Success);
  }
}
