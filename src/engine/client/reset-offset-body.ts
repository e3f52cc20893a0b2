/**
 * ResetOffsetBody, the body of RESET_CONSUMER_CLIENT_OFFSET and of the broker's answer to
 * INVOKE_BROKER_TO_RESET_OFFSET. RocketMQ writes it with fastjson, whose maps keyed by MessageQueue
 * put the queue object itself where JSON wants a string key:
 * `{"offsetTable":{{"brokerName":"b","queueId":0,"topic":"t"}:5}}`. Both that form and the plain
 * JSON list `{"offsetTable":[{"topic":"t","brokerName":"b","queueId":0,"offset":5}]}` are read.
 */
import { ErrorCode, RbError } from '../common/errors.js';
import type { MessageQueue } from './route.js';

export interface QueueOffset {
  queue: MessageQueue;
  offset: number;
}

function toQueue(value: unknown): MessageQueue | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const record = value as Record<string, unknown>;
  const topic = record['topic'];
  const brokerName = record['brokerName'];
  const queueId = Number(record['queueId']);
  if (typeof topic !== 'string' || typeof brokerName !== 'string' || !Number.isInteger(queueId)) return undefined;
  return { topic, brokerName, queueId };
}

/** A queue object used as a map key, followed by `: <offset>`. */
const FASTJSON_ENTRY = /(\{[^{}]*\})\s*:\s*(-?\d+)/g;

export function decodeResetOffsetBody(body: Buffer | undefined): QueueOffset[] {
  if (body === undefined || body.length === 0) return [];
  const text = body.toString('utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text) as unknown;
  } catch {
    parsed = undefined;
  }
  if (parsed !== undefined) {
    const table = (parsed as { offsetTable?: unknown }).offsetTable;
    if (typeof table === 'object' && table !== null && !Array.isArray(table) && Object.keys(table).length === 0) {
      return [];
    }
    if (!Array.isArray(table)) throw new RbError(ErrorCode.RemoteError, 'reset offset body has no offsetTable list');
    return table.flatMap((entry: unknown) => {
      const queue = toQueue(entry);
      const offset = Number((entry as Record<string, unknown>)['offset']);
      return queue !== undefined && Number.isSafeInteger(offset) ? [{ queue, offset }] : [];
    });
  }
  const entries: QueueOffset[] = [];
  for (const match of text.matchAll(FASTJSON_ENTRY)) {
    let key: unknown;
    try {
      key = JSON.parse(match[1] as string) as unknown;
    } catch {
      continue;
    }
    const queue = toQueue(key);
    const offset = Number(match[2]);
    if (queue !== undefined && Number.isSafeInteger(offset)) entries.push({ queue, offset });
  }
  if (entries.length === 0) {
    throw new RbError(ErrorCode.RemoteError, 'reset offset body is neither JSON nor fastjson');
  }
  return entries;
}
