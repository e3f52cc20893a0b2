/**
 * RocketMQ message properties: `name\u0001value\u0002` repeated (MessageDecoder.messageProperties2String).
 * Names used by the engine are in `MessageProperty`.
 */
export const NAME_VALUE_SEPARATOR = '\u0001';
export const PROPERTY_SEPARATOR = '\u0002';

export const MessageProperty = {
  Keys: 'KEYS',
  Tags: 'TAGS',
  WaitStoreMsgOk: 'WAIT',
  DelayTimeLevel: 'DELAY',
  RetryTopic: 'RETRY_TOPIC',
  RealTopic: 'REAL_TOPIC',
  RealQueueId: 'REAL_QID',
  TransactionPrepared: 'TRAN_MSG',
  ProducerGroup: 'PGROUP',
  MinOffset: 'MIN_OFFSET',
  MaxOffset: 'MAX_OFFSET',
  UniqueClientMessageId: 'UNIQ_KEY',
  ReconsumeTime: 'RECONSUME_TIME',
  MaxReconsumeTimes: 'MAX_RECONSUME_TIMES',
  ConsumeStartTime: 'CONSUME_START_TIME',
  OriginMessageId: 'ORIGIN_MESSAGE_ID',
  TimerDeliverMs: 'TIMER_DELIVER_MS',
  TimerDelaySec: 'TIMER_DELAY_SEC',
  /** RocketMQ 5's whole-record checksum property, appended last by the store. */
  RecordCrc32: '__CRC32#',
} as const;

export type Properties = Record<string, string>;

export function encodeProperties(properties: Properties): string {
  let text = '';
  for (const [name, value] of Object.entries(properties)) {
    text += name + NAME_VALUE_SEPARATOR + value + PROPERTY_SEPARATOR;
  }
  return text;
}

export function decodeProperties(text: string): Properties {
  const properties: Properties = {};
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf(PROPERTY_SEPARATOR, start);
    if (end < 0) end = text.length;
    const pair = text.slice(start, end);
    const split = pair.indexOf(NAME_VALUE_SEPARATOR);
    if (split > 0) properties[pair.slice(0, split)] = pair.slice(split + 1);
    start = end + 1;
  }
  return properties;
}

/** Keys are stored space-separated in the KEYS property. */
export const KEY_SEPARATOR = ' ';

export function keysOf(properties: Properties): string[] {
  const keys = properties[MessageProperty.Keys];
  return keys === undefined ? [] : keys.split(KEY_SEPARATOR).filter((key) => key.length > 0);
}
