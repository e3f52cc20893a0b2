import type { Properties } from './properties.js';

/** Message sysFlag bits (MessageSysFlag.java). */
export const MessageSysFlag = {
  Compressed: 0x1,
  MultiTags: 0x2,
  TransactionNotType: 0x0,
  TransactionPreparedType: 0x4,
  TransactionCommitType: 0x8,
  TransactionRollbackType: 0xc,
  BornHostV6: 0x10,
  StoreHostV6: 0x20,
} as const;

export function transactionTypeOf(sysFlag: number): number {
  return sysFlag & MessageSysFlag.TransactionRollbackType;
}

/** An IP address and port, as recorded for the born (producer) and store (broker) hosts. */
export interface HostAddress {
  readonly host: string;
  readonly port: number;
}

/** What a producer hands to the engine. `tags` and `keys` live in the properties on the wire. */
export interface Message {
  topic: string;
  body: Buffer;
  tags?: string;
  keys?: readonly string[];
  /** User and system properties (name -> value). */
  properties?: Properties;
  /** RocketMQ's opaque user flag. */
  flag?: number;
}

/** A message as the store appends it: everything but what the store assigns. */
export interface MessageToStore {
  topic: string;
  queueId: number;
  flag: number;
  body: Buffer;
  /** Every property, including TAGS, KEYS and UNIQ_KEY. */
  properties: Properties;
  sysFlag: number;
  bornTimestamp: number;
  bornHost: HostAddress;
  reconsumeTimes: number;
  preparedTransactionOffset: number;
}

/** A stored message record decoded (RocketMQ MessageExt). */
export interface StoredMessage extends MessageToStore {
  storeSize: number;
  bodyCrc: number;
  queueOffset: number;
  commitLogOffset: number;
  storeTimestamp: number;
  storeHost: HostAddress;
  /** The offset message id: store host + CommitLog offset in hex. */
  msgId: string;
}

export function tagsOfProperties(properties: Properties): string | undefined {
  const tags = properties['TAGS'];
  return tags === undefined || tags.length === 0 ? undefined : tags;
}
