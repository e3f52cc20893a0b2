/**
 * The message store's public contract: what the broker may ask of it. The store owns the files under
 * its `storePath` (commitlog/, consumequeue/, index/, checkpoint, abort) and knows nothing about
 * requests, groups or protocols; it reports new messages upward through the listener it is handed
 * (RocketMQ MessageArrivingListener).
 */
import type { RbError } from '../common/errors.js';
import type { HostAddress, MessageToStore, StoredMessage } from '../common/message.js';
import type { TagFilter } from '../common/tag-expression.js';

export type FlushPolicy = 'async' | 'sync';

export interface MessageStoreConfig {
  /** Root directory of the store files. */
  storePath: string;
  /** Size of one CommitLog segment file (RocketMQ mappedFileSizeCommitLog, 1 GiB). */
  commitLogSegmentBytes: number;
  /** Units per ConsumeQueue file (RocketMQ 300,000 units of 20 bytes). */
  consumeQueueUnitsPerFile: number;
  /** async: acknowledge after the write reaches the OS; sync: after an fdatasync covering it. */
  flushPolicy: FlushPolicy;
  /** How often the async flusher calls fdatasync, and the checkpoint is written. */
  flushIntervalMs: number;
  /**
   * How often ConsumeQueues and the index are fdatasynced, off the event loop (RocketMQ
   * flushIntervalConsumeQueue, 1 s). The checkpoint claims them durable only up to the last such sync.
   * Default 1000.
   */
  consumeQueueFlushIntervalMs?: number;
  /** A sync put answers FlushDiskTimeout if its flush has not completed within this time. */
  syncFlushTimeoutMs: number;
  /** Largest body accepted (RocketMQ maxMessageSize, 4 MiB). */
  maxMessageBytes: number;
  /** Hash slots per index file (RocketMQ 5,000,000). */
  indexSlotsPerFile: number;
  /** Entries per index file (RocketMQ 20,000,000). */
  indexEntriesPerFile: number;
  /** Retention: CommitLog segments whose newest message is older than this are deleted (72 h). */
  fileReservedMs: number;
  /** Retention: above this fraction of the disk used, the oldest segments are deleted (0.75). */
  diskMaxUsedRatio: number;
  /** How often retention runs; 0 disables the timer (retention can still be run by hand). */
  retentionCheckIntervalMs: number;
  /** Verify CRCs when recovering records past the checkpoint. */
  checkCrcOnRecover: boolean;
  /** Recorded as the store host of every record and part of every offset message id. */
  storeHost: HostAddress;
}

export const defaultMessageStoreConfig: Omit<MessageStoreConfig, 'storePath'> = {
  commitLogSegmentBytes: 1024 * 1024 * 1024,
  consumeQueueUnitsPerFile: 300_000,
  flushPolicy: 'async',
  flushIntervalMs: 500,
  consumeQueueFlushIntervalMs: 1000,
  syncFlushTimeoutMs: 5000,
  maxMessageBytes: 4 * 1024 * 1024,
  indexSlotsPerFile: 5_000_000,
  indexEntriesPerFile: 20_000_000,
  fileReservedMs: 72 * 3600 * 1000,
  diskMaxUsedRatio: 0.75,
  retentionCheckIntervalMs: 10_000,
  checkCrcOnRecover: true,
  storeHost: { host: '127.0.0.1', port: 10911 },
};

/** Tiny files for tests (lavinmq: 512 KiB segments). */
export function testMessageStoreConfig(
  storePath: string,
  overrides: Partial<MessageStoreConfig> = {},
): MessageStoreConfig {
  return {
    ...defaultMessageStoreConfig,
    storePath,
    commitLogSegmentBytes: 64 * 1024,
    consumeQueueUnitsPerFile: 1000,
    indexSlotsPerFile: 1024,
    indexEntriesPerFile: 4096,
    flushIntervalMs: 50,
    consumeQueueFlushIntervalMs: 50,
    retentionCheckIntervalMs: 0,
    ...overrides,
  };
}

/** Outcome of a put (RocketMQ PutMessageStatus). Expected failures are values, not exceptions. */
export const PutStatus = {
  Ok: 'PUT_OK',
  FlushDiskTimeout: 'FLUSH_DISK_TIMEOUT',
  MessageIllegal: 'MESSAGE_ILLEGAL',
  PropertiesSizeExceeded: 'PROPERTIES_SIZE_EXCEEDED',
  /** The store is closed or turned read-only after a write error. */
  ServiceNotAvailable: 'SERVICE_NOT_AVAILABLE',
  UnknownError: 'UNKNOWN_ERROR',
} as const;
export type PutStatus = (typeof PutStatus)[keyof typeof PutStatus];

export interface PutResult {
  status: PutStatus;
  /** Set when status is not Ok. */
  error?: RbError;
  /** Where the (first) record starts in the CommitLog. */
  commitLogOffset: number;
  /** Queue offset of the (first) message. */
  queueOffset: number;
  /** Number of messages written (1, or the batch size). */
  messageCount: number;
  wroteBytes: number;
  storeTimestamp: number;
  /** Offset message id of each message written, in order. */
  msgIds: string[];
}

/** Outcome of a read (RocketMQ GetMessageStatus). */
export const GetStatus = {
  Found: 'FOUND',
  NoMatchedMessage: 'NO_MATCHED_MESSAGE',
  /** Units exist but the CommitLog bytes are gone (deleted by retention). */
  OffsetFoundNull: 'OFFSET_FOUND_NULL',
  OffsetOverflowBadly: 'OFFSET_OVERFLOW_BADLY',
  /** The requested offset equals the max offset: nothing new yet (long polling waits on this). */
  OffsetOverflowOne: 'OFFSET_OVERFLOW_ONE',
  OffsetTooSmall: 'OFFSET_TOO_SMALL',
  NoMatchedLogicQueue: 'NO_MATCHED_LOGIC_QUEUE',
  NoMessageInQueue: 'NO_MESSAGE_IN_QUEUE',
} as const;
export type GetStatus = (typeof GetStatus)[keyof typeof GetStatus];

export interface GetRequest {
  topic: string;
  queueId: number;
  queueOffset: number;
  maxMessages: number;
  /** Stop adding messages once this many bytes are gathered (at least one is returned). */
  maxTotalBytes?: number;
  filter: TagFilter;
}

export interface GetResult {
  status: GetStatus;
  /** The stored records, unchanged, in queue order (a pull response body is their concatenation). */
  records: Buffer[];
  /** Queue offset of each returned record. */
  queueOffsets: number[];
  /** Where the next read should start (past filtered-out units too). */
  nextBeginOffset: number;
  minOffset: number;
  maxOffset: number;
}

/** Called for every message once it is readable from its ConsumeQueue. */
export type MessageArrivedListener = (arrival: {
  topic: string;
  queueId: number;
  queueOffset: number;
  tagsCode: number;
  storeTimestamp: number;
}) => void;

export interface StoreStats {
  commitLogMinOffset: number;
  commitLogMaxOffset: number;
  /** Bytes known to be on disk (fdatasync done). */
  commitLogFlushedOffset: number;
  readOnly: boolean;
  putCount: number;
  putBytes: number;
}

export interface QueueId {
  topic: string;
  queueId: number;
}

/** Outcome of appending replicated CommitLog bytes on a replica (see MessageStore.appendReplicated). */
export type ReplicaAppendResult =
  { readonly ok: true; readonly commitLogMaxOffset: number } | { readonly ok: false; readonly reason: string };

export interface MessageStore {
  /** Opens the files and recovers (fast after a clean shutdown, CRC-checked after a crash). */
  start(): Promise<void>;
  /** Flushes everything, writes the checkpoint and removes the abort marker. */
  shutdown(): Promise<void>;
  /** Resolves under the flush policy; never rejects for expected failures (see PutStatus). */
  putMessage(message: MessageToStore): Promise<PutResult>;
  /** Writes the messages contiguously (same topic and queue), with one flush wait. */
  putMessages(messages: MessageToStore[]): Promise<PutResult>;
  getMessage(request: GetRequest): GetResult;
  /** The queue offset one past the last unit (0 for an unknown queue). */
  getMaxOffsetInQueue(topic: string, queueId: number): number;
  getMinOffsetInQueue(topic: string, queueId: number): number;
  /** The first queue offset whose message was stored at or after `timestampMs` (max offset if none). */
  getOffsetInQueueByTime(topic: string, queueId: number, timestampMs: number): number;
  /** The store timestamp of the message at a queue offset, or -1. */
  getMessageStoreTimestamp(topic: string, queueId: number, queueOffset: number): number;
  /** The record at a CommitLog offset, or undefined when there is none (bad offset, deleted). */
  lookMessageByOffset(commitLogOffset: number): StoredMessage | undefined;
  /** The raw record bytes at a CommitLog offset. */
  selectRecord(commitLogOffset: number): Buffer | undefined;
  /** Messages whose KEYS or UNIQ_KEY contain `key`, stored within [beginMs, endMs], newest first. */
  queryMessagesByKey(topic: string, key: string, maxCount: number, beginMs: number, endMs: number): StoredMessage[];
  /** Every (topic, queueId) that has a ConsumeQueue. */
  queues(): QueueId[];
  onMessageArrived(listener: MessageArrivedListener): void;
  /** Deletes expired segments now; returns how many CommitLog segments were removed. */
  runRetention(nowMs?: number): Promise<{ deletedSegments: number }>;
  stats(): StoreStats;
  /**
   * Replication, master side: the raw CommitLog bytes from `fromCommitLogOffset`, at most `maxBytes`,
   * never past the written bytes nor across a segment end (empty when there is nothing new yet);
   * undefined when the offset is outside [min offset, max offset].
   */
  readCommitLog(fromCommitLogOffset: number, maxBytes: number): Buffer | undefined;
  /**
   * Replication, replica side: appends a master's CommitLog byte stream. `commitLogOffset` continues
   * the stream (or restarts it at the CommitLog's max offset). Whole records are checked (boundaries,
   * CRCs, stored offsets, segment ends and blank records), written and dispatched as local puts are;
   * a record split across calls waits for its rest. A rejected chunk leaves the valid records before
   * it appended.
   */
  appendReplicated(commitLogOffset: number, data: Buffer): ReplicaAppendResult;
  /**
   * Replication, replica side (an old master rejoining under a new one): cuts the CommitLog so that
   * it ends at `commitLogOffset`, a record boundary within [min offset, max offset], drops the
   * ConsumeQueue units and index entries of the records cut and records the new end in the
   * checkpoint. Replica mode only; rejects with RbError otherwise.
   */
  truncateReplica(commitLogOffset: number): Promise<void>;
  /**
   * Replication, replica side (a log that shares nothing usable with its master, e.g. an empty store
   * joining a master whose oldest segments retention deleted): deletes every CommitLog segment,
   * ConsumeQueue and index file and restarts the empty log at `commitLogOffset`, a segment boundary.
   * Replica mode only; rejects with RbError otherwise.
   */
  resetReplica(commitLogOffset: number): Promise<void>;
  /** Replica role: puts answer ServiceNotAvailable (RocketMQ: the store is in slave mode). */
  setReplica(replica: boolean): void;
  isReplica(): boolean;
}
