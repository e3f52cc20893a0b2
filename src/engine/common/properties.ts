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
  const length = text.length;
  let start = 0;
  // The first name/value separator at or after `start`; kept while it lies beyond the current pair,
  // so that the text is scanned once however many pairs lack one.
  let split = -1;
  while (start < length) {
    let end = text.indexOf(PROPERTY_SEPARATOR, start);
    if (end < 0) end = length;
    if (split < start) {
      split = text.indexOf(NAME_VALUE_SEPARATOR, start);
      if (split < 0) split = length;
    }
    // Name and value are cut from the text directly (no string for the pair); a pair without a
    // separator, or with an empty name, is skipped.
    if (split > start && split < end) properties[text.slice(start, split)] = text.slice(split + 1, end);
    start = end + 1;
  }
  return properties;
}

/** Keys are stored space-separated in the KEYS property. */
export const KEY_SEPARATOR = ' ';

export function keysOf(properties: Properties): string[] {
  const text = properties[MessageProperty.Keys];
  if (text === undefined || text.length === 0) return [];
  // Runs for every stored message: the usual single key gets an exact one-element array, and the
  // general case one pass without split/filter.
  if (!text.includes(KEY_SEPARATOR)) return [text];
  const keys: string[] = [];
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf(KEY_SEPARATOR, start);
    if (end < 0) end = text.length;
    if (end > start) keys.push(text.slice(start, end));
    start = end + 1;
  }
  return keys;
}

/** The keys a message is indexed under: its KEYS, then its UNIQ_KEY when present. */
export function indexKeysOf(properties: Properties): string[] {
  const keys = keysOf(properties);
  const uniqueKey = properties[MessageProperty.UniqueClientMessageId];
  if (uniqueKey === undefined || uniqueKey.length === 0) return keys;
  // Array literals of exact size: a push onto a small array would grow it to 17 slots.
  if (keys.length === 0) return [uniqueKey];
  if (keys.length === 1) return [keys[0] ?? '', uniqueKey];
  keys.push(uniqueKey);
  return keys;
}
