/**
 * DefaultMessageStore: the MessageStore of api.ts over a CommitLog, ConsumeQueues and an index
 * (RocketMQ DefaultMessageStore). It validates puts, hands them to the CommitLog, dispatches written
 * records (ConsumeQueue unit, index keys, arrival listeners), answers reads through the ConsumeQueues,
 * runs the periodic flush and checkpoint, recovery at start, and retention. It owns `<storePath>`:
 * commitlog/, consumequeue/, index/, checkpoint and the abort marker.
 *
 * Periodic flushes never block the event loop on a disk: the CommitLog's fdatasync (every
 * flushIntervalMs), the ConsumeQueues' and index's (every consumeQueueFlushIntervalMs, RocketMQ's
 * FlushConsumeQueueService) and the checkpoint's all run on libuv's thread pool. The checkpoint
 * records ConsumeQueues and the index as flushed only up to the last of their syncs that completed,
 * so that recovery re-dispatches whatever a crash may have lost. Start and shutdown flush synchronously.
 *
 * Visibility: a record is dispatched, and so readable, once its bytes are written to the segment file;
 * a put resolves after that (async policy) or after an fdatasync covering it (sync policy).
 *
 * Errors: a failed CommitLog write or fdatasync turns the store read-only until restart (NATS
 * mb.werr): later puts answer ServiceNotAvailable, reads keep working, and the abort marker stays so
 * that the next start verifies the tail.
 */
import { existsSync, mkdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InvariantError } from '../common/assert.js';
import { ErrorCode, isRbError, RbError } from '../common/errors.js';
import { isIPv6Host } from '../common/host-address.js';
import { createLogger, type Logger } from '../common/logger.js';
import {
  checkRecord,
  createOffsetMessageId,
  decodeRecord,
  MESSAGE_MAGIC_CODE,
  prepareRecord,
} from '../common/message-record.js';
import type { MessageToStore, StoredMessage } from '../common/message.js';
import { indexKeysOf, keysOf, MessageProperty } from '../common/properties.js';
import { matchesTag, mayMatchTagsCode, tagsCodeOf } from '../common/tag-expression.js';
import { topicNameProblem } from '../common/topic.js';
import {
  defaultMessageStoreConfig,
  type GetRequest,
  type GetResult,
  GetStatus,
  type MessageArrivedListener,
  type MessageStore,
  type MessageStoreConfig,
  type PutResult,
  PutStatus,
  type QueueId,
  type ReplicaAppendResult,
  type StoreStats,
} from './api.js';
import { fsyncDirectory } from '../common/atomic-file.js';
import { CheckpointFile, type CheckpointState } from './checkpoint.js';
import { type AppendItem, type AppendPlacement, CommitLog, type DispatchRequest } from './commit-log.js';
import { type ConsumeQueue, type ConsumeQueueUnit, ConsumeQueueTable } from './consume-queue.js';
import { type FileIo, nodeFileIo } from './file-io.js';
import { FlushService, type FlushWaiter, type WaiterOutcome } from './group-commit.js';
import { IndexService } from './index-service.js';
import { recordCommitLogOffset, recordProperties, recordStoreTimestamp } from './record-view.js';
import { recover, type RecoveryReport } from './recovery.js';
import { ReplicaStreamWriter } from './replication.js';
import { type DiskUsageProbe, runRetention, statfsDiskUsage } from './retention.js';

/** Seams for tests and embedding; everything has a production default. */
export interface MessageStoreOptions {
  /** CommitLog and checkpoint file I/O (inject FaultyFileIo to test write errors). */
  fileIo?: FileIo;
  /** Disk usage probe for retention (default: fs.statfs on storePath). */
  diskUsage?: DiskUsageProbe;
  logger?: Logger;
}

/** StoreStats plus counters that show batching at work. */
export interface DefaultStoreStats extends StoreStats {
  /** fdatasync calls on CommitLog segments since start. */
  fdatasyncCount: number;
  /** Write calls on CommitLog segments since start. */
  writeCount: number;
  /** CommitLog offset up to which records are dispatched to ConsumeQueues and the index. */
  dispatchedOffset: number;
}

/** RocketMQ bounds the units one getMessage scans (16,000 bytes of units) so that a filter cannot stall. */
const MIN_UNITS_SCANNED = 800;
/** Enough of a record to reach its store timestamp (IPv6 born host included). */
const TIMESTAMP_PREFIX_BYTES = 80;
/** Largest queue id a ConsumeQueue directory accepts. */
const MAX_QUEUE_ID = 999_999_999;
const TOPIC_CACHE_LIMIT = 10_000;
/** Two upper-case hex digits for each byte value. */
const HEX_PAIRS: readonly string[] = Array.from({ length: 256 }, (_, value) =>
  value.toString(16).toUpperCase().padStart(2, '0'),
);

function hexPair(byte: number): string {
  return HEX_PAIRS[byte] ?? '00';
}

type StoreState = 'new' | 'running' | 'closing' | 'closed';

/** A put between its append and its answer: the FlushService's waiter. */
interface PendingPut extends FlushWaiter {
  readonly placement: AppendPlacement;
  readonly items: readonly AppendItem[];
  readonly resolve: (result: PutResult) => void;
}

function failedPut(status: PutStatus, error: RbError): PutResult {
  return {
    status,
    error,
    commitLogOffset: -1,
    queueOffset: -1,
    messageCount: 0,
    wroteBytes: 0,
    storeTimestamp: 0,
    msgIds: [],
  };
}

/** Maps an append failure to its put status. */
function putStatusOf(err: RbError): PutStatus {
  switch (err.code) {
    case ErrorCode.PropertiesTooLarge:
      return PutStatus.PropertiesSizeExceeded;
    case ErrorCode.StoreReadOnly:
    case ErrorCode.StoreWriteFailed:
    case ErrorCode.StoreClosed:
      return PutStatus.ServiceNotAvailable;
    case ErrorCode.TopicInvalid:
    case ErrorCode.MessageTooLarge:
    case ErrorCode.MessageIllegal:
      return PutStatus.MessageIllegal;
    default:
      return PutStatus.UnknownError;
  }
}

export class DefaultMessageStore implements MessageStore {
  private readonly logger: Logger;
  private readonly io: FileIo;
  private readonly diskUsage: DiskUsageProbe;
  private readonly storeHostIsV6: boolean;
  /** An offset message id: the store host's hex prefix, then 16 hex digits rewritten per id. */
  /** createOffsetMessageId's store host part, the same for every id of this store. */
  private readonly msgIdHostPrefix: string;
  /** The high half of the offset msgIdHighPrefix ends with (-1: none yet). */
  private msgIdHigh = -1;
  private msgIdHighPrefix = '';
  private readonly commitLog: CommitLog;
  private readonly flushService: FlushService<PendingPut>;
  private readonly queueTable: ConsumeQueueTable;
  private readonly index: IndexService;
  private readonly checkpoint: CheckpointFile;
  private readonly listeners: MessageArrivedListener[] = [];
  private readonly topicProblems = new Map<string, string | undefined>();
  private state: StoreState = 'new';
  private readOnlyError: RbError | undefined;
  private dispatchedOffset = 0;
  private lastDispatchedTimestamp = 0;
  private lastFlushedTimestamp = 0;
  private flushTimer: NodeJS.Timeout | undefined;
  private retentionTimer: NodeJS.Timeout | undefined;
  private retentionRunning: Promise<number> | undefined;
  private periodicFlush: Promise<void> | undefined;
  private derivedFlushTimer: NodeJS.Timeout | undefined;
  /** The ConsumeQueue and index flush in progress, if any. */
  private derivedFlush: Promise<void> | undefined;
  /** CommitLog offset below which every record's ConsumeQueue unit and index keys are fdatasynced. */
  private derivedDurableOffset = 0;
  /** Store timestamp of the newest record below derivedDurableOffset. */
  private derivedDurableTimestamp = 0;
  private putCount = 0;
  private putBytes = 0;
  private replica = false;
  private readonly replicaWriter: ReplicaStreamWriter;
  /** What the last start() found and did. */
  lastRecovery: RecoveryReport | undefined;

  constructor(
    readonly config: MessageStoreConfig,
    options: MessageStoreOptions = {},
  ) {
    validateConfig(config);
    this.logger = options.logger ?? createLogger('message-store');
    this.io = options.fileIo ?? nodeFileIo;
    this.diskUsage = options.diskUsage ?? statfsDiskUsage;
    this.storeHostIsV6 = isIPv6Host(config.storeHost.host);
    this.msgIdHostPrefix = createOffsetMessageId(config.storeHost, 0).slice(0, -16);
    this.commitLog = new CommitLog({
      dir: join(config.storePath, 'commitlog'),
      segmentBytes: config.commitLogSegmentBytes,
      storeHost: config.storeHost,
      io: this.io,
      logger: this.logger,
      onWritten: (requests) => this.onWritten(requests),
      onWriteError: (err) => this.enterReadOnly(err, 'CommitLog write'),
    });
    // Replicated bytes come off the network: always CRC-checked, whatever recovery does.
    this.replicaWriter = new ReplicaStreamWriter(this.commitLog, true);
    this.flushService = new FlushService({
      policy: config.flushPolicy,
      commitLog: this.commitLog,
      syncFlushTimeoutMs: config.syncFlushTimeoutMs,
      complete: (put, outcome) => put.resolve(this.putResultOf(outcome, put.placement, put.items)),
      onFlushError: (err) => this.enterReadOnly(err, 'CommitLog fdatasync'),
    });
    this.queueTable = new ConsumeQueueTable({
      rootDir: join(config.storePath, 'consumequeue'),
      unitsPerFile: config.consumeQueueUnitsPerFile,
    });
    this.index = new IndexService({
      dir: join(config.storePath, 'index'),
      slotsPerFile: config.indexSlotsPerFile,
      entriesPerFile: config.indexEntriesPerFile,
    });
    mkdirSync(config.storePath, { recursive: true });
    this.checkpoint = new CheckpointFile(this.io, join(config.storePath, 'checkpoint'));
  }

  private get abortPath(): string {
    return join(this.config.storePath, 'abort');
  }

  async start(): Promise<void> {
    if (this.state !== 'new') throw new RbError(ErrorCode.StoreClosed, `store cannot start: it is ${this.state}`);
    const abortMarkerFound = existsSync(this.abortPath);
    const checkpoint = this.checkpoint.read();
    this.queueTable.load();
    this.index.load();
    this.commitLog.load();
    const report = recover({
      commitLog: this.commitLog,
      checkpoint,
      abortMarkerFound,
      verifyCrc: this.config.checkCrcOnRecover,
      logger: this.logger,
      truncateDerived: (endOffset) => {
        for (const queue of this.queueTable.all()) queue.truncateByCommitLogOffset(endOffset);
        this.index.truncateByCommitLogOffset(endOffset);
      },
      dispatch: (request) => this.dispatch(request),
    });
    this.lastRecovery = report;
    const minOffset = this.commitLog.minOffset();
    for (const queue of this.queueTable.all()) {
      queue.deleteExpired(minOffset);
      this.commitLog.setNextQueueOffset(queue.topic, queue.queueId, queue.maxQueueOffset());
    }
    this.index.deleteExpired(minOffset);
    this.dispatchedOffset = report.endOffset;
    const lastTimestamp = typeof checkpoint === 'string' ? 0 : checkpoint.physicMsgTimestamp;
    this.lastDispatchedTimestamp = lastTimestamp;
    this.lastFlushedTimestamp = lastTimestamp;
    this.writeCheckpoint();
    writeFileSync(this.abortPath, String(process.pid));
    fsyncDirectory(this.config.storePath);
    this.state = 'running';
    this.scheduleFlush();
    this.scheduleDerivedFlush();
    if (this.config.retentionCheckIntervalMs > 0) {
      this.retentionTimer = setInterval(() => {
        void this.runRetention().catch((err: unknown) => this.logger.error({ err }, 'retention failed'));
      }, this.config.retentionCheckIntervalMs);
      this.retentionTimer.unref();
    }
  }

  async shutdown(): Promise<void> {
    if (this.state !== 'running') return;
    this.state = 'closing';
    if (this.flushTimer !== undefined) clearTimeout(this.flushTimer);
    if (this.derivedFlushTimer !== undefined) clearTimeout(this.derivedFlushTimer);
    if (this.retentionTimer !== undefined) clearInterval(this.retentionTimer);
    await this.retentionRunning?.catch(() => 0);
    await this.periodicFlush;
    // The final synchronous flush below must not overlap an asynchronous one.
    await this.derivedFlush;
    try {
      this.commitLog.drainNow();
    } catch {
      // The write error turned the store read-only; it is logged there.
    }
    await this.flushService.flush();
    try {
      this.writeCheckpoint();
    } catch (err) {
      this.enterReadOnly(err, 'checkpoint write');
    }
    this.flushService.close();
    try {
      this.queueTable.closeAll();
      this.index.close();
    } finally {
      this.commitLog.close();
      this.checkpoint.close();
    }
    // After a write error the tail may be torn: keep the marker so that the next start verifies it.
    if (this.readOnlyError === undefined) {
      unlinkSync(this.abortPath);
      fsyncDirectory(this.config.storePath);
    }
    this.state = 'closed';
  }

  /**
   * Stops the way a killed process would, for crash tests: no flush, no checkpoint, the abort marker
   * stays, buffered records are dropped (their puts fail). ConsumeQueue and index files are left as
   * they are on disk, with their unflushed units lost.
   */
  halt(): void {
    if (this.state !== 'running') return;
    this.state = 'closed';
    if (this.flushTimer !== undefined) clearTimeout(this.flushTimer);
    if (this.derivedFlushTimer !== undefined) clearTimeout(this.derivedFlushTimer);
    if (this.retentionTimer !== undefined) clearInterval(this.retentionTimer);
    this.flushService.close();
    this.commitLog.close();
    this.checkpoint.close();
  }

  putMessage(message: MessageToStore): Promise<PutResult> {
    return this.put([message]);
  }

  putMessages(messages: MessageToStore[]): Promise<PutResult> {
    if (messages.length === 0) {
      return Promise.resolve(
        failedPut(PutStatus.MessageIllegal, new RbError(ErrorCode.MessageIllegal, 'empty message batch')),
      );
    }
    const first = messages[0];
    for (const message of messages) {
      if (message.topic !== first?.topic || message.queueId !== first.queueId) {
        return Promise.resolve(
          failedPut(
            PutStatus.MessageIllegal,
            new RbError(ErrorCode.MessageIllegal, 'every message of a batch must go to the same topic and queue'),
          ),
        );
      }
    }
    return this.put(messages);
  }

  private put(messages: readonly MessageToStore[]): Promise<PutResult> {
    if (this.state !== 'running') {
      return Promise.resolve(
        failedPut(PutStatus.ServiceNotAvailable, new RbError(ErrorCode.StoreClosed, `the store is ${this.state}`)),
      );
    }
    if (this.readOnlyError !== undefined) {
      return Promise.resolve(failedPut(PutStatus.ServiceNotAvailable, this.readOnlyRefusal()));
    }
    if (this.replica) {
      return Promise.resolve(
        failedPut(
          PutStatus.ServiceNotAvailable,
          new RbError(ErrorCode.StoreReadOnly, 'the store is a replica (slave mode): puts are forbidden'),
        ),
      );
    }
    let placement: AppendPlacement;
    let items: AppendItem[];
    try {
      // Exact-size arrays: a push onto [] would allocate 17 slots for the usual single put.
      const [first] = messages;
      items =
        messages.length === 1 && first !== undefined
          ? [this.prepare(first)]
          : messages.map((message) => this.prepare(message));
      placement = this.commitLog.append(items);
    } catch (err) {
      if (err instanceof InvariantError) throw err;
      const error = isRbError(err)
        ? err
        : new RbError(ErrorCode.MessageIllegal, `message cannot be stored: ${String(err)}`, { cause: err });
      return Promise.resolve(failedPut(putStatusOf(error), error));
    }
    this.putCount += messages.length;
    this.putBytes += placement.wroteBytes;
    return new Promise<PutResult>((resolve) => {
      this.flushService.wait({ endOffset: placement.endOffset, deadlineMs: 0, placement, items, resolve });
    });
  }

  private putResultOf(outcome: WaiterOutcome, placement: AppendPlacement, items: readonly AppendItem[]): PutResult {
    if (outcome === 'failed') {
      const error =
        this.readOnlyError ?? new RbError(ErrorCode.StoreClosed, 'the store closed before the put completed');
      return failedPut(PutStatus.ServiceNotAvailable, error);
    }
    let commitLogOffset = placement.commitLogOffset;
    const msgIds =
      items.length === 1
        ? [this.msgIdOf(commitLogOffset)]
        : items.map((item) => {
            const msgId = this.msgIdOf(commitLogOffset);
            commitLogOffset += item.prepared.totalSize;
            return msgId;
          });
    const result: PutResult = {
      status: outcome === 'ok' ? PutStatus.Ok : PutStatus.FlushDiskTimeout,
      commitLogOffset: placement.commitLogOffset,
      queueOffset: placement.queueOffset,
      messageCount: items.length,
      wroteBytes: placement.wroteBytes,
      storeTimestamp: placement.storeTimestamp,
      msgIds,
    };
    if (outcome === 'timeout') {
      result.error = new RbError(
        ErrorCode.FlushTimeout,
        `fdatasync did not complete within ${this.config.syncFlushTimeoutMs} ms`,
      );
    }
    return result;
  }

  /**
   * The offset message id (createOffsetMessageId): the store host's hex and the offset's 16
   * upper-case hex digits. The host and the offset's high half (which changes every 4 GiB) are
   * cached; the low half is four table lookups. Every stored message needs one, and concatenation
   * costs less than a Buffer#toString call.
   */
  private msgIdOf(commitLogOffset: number): string {
    const high = Math.floor(commitLogOffset / 4294967296);
    if (high !== this.msgIdHigh) {
      this.msgIdHigh = high;
      this.msgIdHighPrefix = this.msgIdHostPrefix + high.toString(16).toUpperCase().padStart(8, '0');
    }
    const low = commitLogOffset % 4294967296;
    return (
      this.msgIdHighPrefix +
      hexPair(low >>> 24) +
      hexPair((low >>> 16) & 255) +
      hexPair((low >>> 8) & 255) +
      hexPair(low & 255)
    );
  }

  /** Checks a message and encodes its variable parts; throws RbError for a message that cannot be stored. */
  private prepare(message: MessageToStore): AppendItem {
    let problem = this.topicProblems.get(message.topic);
    if (problem === undefined && !this.topicProblems.has(message.topic)) {
      problem = topicNameProblem(message.topic);
      if (this.topicProblems.size >= TOPIC_CACHE_LIMIT) this.topicProblems.clear();
      this.topicProblems.set(message.topic, problem);
    }
    if (problem !== undefined) throw new RbError(ErrorCode.TopicInvalid, problem);
    if (!Number.isInteger(message.queueId) || message.queueId < 0 || message.queueId > MAX_QUEUE_ID) {
      throw new RbError(ErrorCode.MessageIllegal, `queue id ${message.queueId} is not a valid queue id`);
    }
    if (!Buffer.isBuffer(message.body)) throw new RbError(ErrorCode.MessageIllegal, 'message body is not a Buffer');
    if (message.body.length > this.config.maxMessageBytes) {
      throw new RbError(
        ErrorCode.MessageTooLarge,
        `message body of ${message.body.length} bytes is larger than ${this.config.maxMessageBytes}`,
      );
    }
    const prepared = prepareRecord(message, this.storeHostIsV6);
    const properties = message.properties;
    return {
      prepared,
      tagsCode: tagsCodeOf(properties[MessageProperty.Tags]),
      indexKeys: indexKeysOf(properties),
    };
  }

  /** Written records: ConsumeQueue units, index keys, then listeners and waiting puts. */
  private onWritten(requests: DispatchRequest[]): void {
    try {
      for (const request of requests) this.dispatch(request);
    } catch (err) {
      this.enterReadOnly(err, 'dispatch to ConsumeQueue or index');
    }
    this.dispatchedOffset = this.commitLog.writtenOffset;
    const last = requests[requests.length - 1];
    if (last !== undefined) this.lastDispatchedTimestamp = last.storeTimestamp;
    this.flushService.onWritten();
    if (this.listeners.length === 0) return;
    for (const request of requests) {
      if (!request.inQueue) continue;
      const arrival = {
        topic: request.topic,
        queueId: request.queueId,
        queueOffset: request.queueOffset,
        tagsCode: request.tagsCode,
        storeTimestamp: request.storeTimestamp,
      };
      for (const listener of this.listeners) {
        try {
          listener(arrival);
        } catch (err) {
          this.logger.error({ err }, 'message arrival listener threw');
        }
      }
    }
  }

  /** Idempotent: a unit or index entry that already exists is skipped. */
  private dispatch(request: DispatchRequest): void {
    if (request.inQueue) {
      this.queueTable.getOrCreate(request.topic, request.queueId).putUnit({
        queueOffset: request.queueOffset,
        commitLogOffset: request.commitLogOffset,
        size: request.size,
        tagsCode: request.tagsCode,
      });
    }
    if (request.indexed) {
      for (const key of request.indexKeys) {
        this.index.put(request.topic, key, request.commitLogOffset, request.storeTimestamp);
      }
    }
  }

  private enterReadOnly(err: unknown, during: string): void {
    if (this.readOnlyError === undefined && this.state !== 'closed') {
      this.readOnlyError = new RbError(ErrorCode.StoreWriteFailed, `${during} failed: ${String(err)}`, { cause: err });
      this.logger.error({ err, during }, 'store turned read-only after a write error; restart to recover');
    }
    this.flushService.failFrom(this.commitLog.writtenOffset);
  }

  private readOnlyRefusal(): RbError {
    return new RbError(ErrorCode.StoreReadOnly, 'the store is read-only after a write error', {
      cause: this.readOnlyError,
    });
  }

  private scheduleFlush(): void {
    this.flushTimer = setTimeout(() => {
      this.periodicFlush = this.flushPeriodically().finally(() => {
        this.periodicFlush = undefined;
        if (this.state === 'running') this.scheduleFlush();
      });
    }, this.config.flushIntervalMs);
    this.flushTimer.unref();
  }

  /** CommitLog fdatasync, then the checkpoint, both on the thread pool. */
  private async flushPeriodically(): Promise<void> {
    const timestamp = this.lastDispatchedTimestamp;
    await this.flushService.flush();
    if (this.state === 'closed') return;
    this.lastFlushedTimestamp = timestamp;
    try {
      await this.checkpoint.writeAsync(this.checkpointState());
    } catch (err) {
      this.enterReadOnly(err, 'checkpoint write');
    }
  }

  private scheduleDerivedFlush(): void {
    const intervalMs = this.config.consumeQueueFlushIntervalMs ?? defaultMessageStoreConfig.consumeQueueFlushIntervalMs;
    this.derivedFlushTimer = setTimeout(() => {
      this.derivedFlush = this.flushDerived().finally(() => {
        this.derivedFlush = undefined;
        if (this.state === 'running') this.scheduleDerivedFlush();
      });
    }, intervalMs);
    this.derivedFlushTimer.unref();
  }

  /**
   * Writes the buffered ConsumeQueue units and index entries and fdatasyncs them on the thread pool;
   * once every sync completed, the checkpoint may claim the records dispatched before the start.
   * Stops early after halt(), so that a halted store writes nothing more.
   */
  private async flushDerived(): Promise<void> {
    const dispatchedOffset = this.dispatchedOffset;
    const timestamp = this.lastDispatchedTimestamp;
    const stopped = (): boolean => this.state === 'closed';
    try {
      await this.queueTable.flushAllAsync(stopped);
      if (stopped()) return;
      await this.index.flushAsync(stopped);
    } catch (err) {
      this.enterReadOnly(err, 'ConsumeQueue or index flush');
      return;
    }
    if (stopped()) return;
    this.derivedDurableOffset = dispatchedOffset;
    this.derivedDurableTimestamp = timestamp;
  }

  /** What is on disk: the CommitLog to its flushed offset, the derived files to their last sync. */
  private checkpointState(): CheckpointState {
    return {
      physicMsgTimestamp: this.lastFlushedTimestamp,
      logicsMsgTimestamp: this.derivedDurableTimestamp,
      indexMsgTimestamp: this.derivedDurableTimestamp,
      commitLogFlushedOffset: this.commitLog.flushedOffset,
      consumeQueueFlushedOffset: this.derivedDurableOffset,
      indexFlushedOffset: this.derivedDurableOffset,
    };
  }

  /** Flushes ConsumeQueues and the index synchronously, then records how far everything is on disk. */
  private writeCheckpoint(): void {
    const dispatchedOffset = this.dispatchedOffset;
    const timestamp = this.lastDispatchedTimestamp;
    this.queueTable.flushAll();
    this.index.flush();
    this.derivedDurableOffset = dispatchedOffset;
    this.derivedDurableTimestamp = timestamp;
    this.checkpoint.write(this.checkpointState());
  }

  getMessage(request: GetRequest): GetResult {
    const { topic, queueId, queueOffset } = request;
    const result: GetResult = {
      status: GetStatus.NoMessageInQueue,
      records: [],
      queueOffsets: [],
      nextBeginOffset: queueOffset,
      minOffset: 0,
      maxOffset: 0,
    };
    const queue = this.queueTable.get(topic, queueId);
    if (queue === undefined) {
      result.status = GetStatus.NoMatchedLogicQueue;
      result.nextBeginOffset = 0;
      return result;
    }
    const minOffset = queue.minQueueOffset();
    const maxOffset = queue.maxQueueOffset();
    result.minOffset = minOffset;
    result.maxOffset = maxOffset;
    if (maxOffset === 0) {
      result.status = GetStatus.NoMessageInQueue;
      result.nextBeginOffset = 0;
    } else if (queueOffset < minOffset) {
      result.status = GetStatus.OffsetTooSmall;
      result.nextBeginOffset = minOffset;
    } else if (queueOffset === maxOffset) {
      result.status = GetStatus.OffsetOverflowOne;
      result.nextBeginOffset = queueOffset;
    } else if (queueOffset > maxOffset) {
      result.status = GetStatus.OffsetOverflowBadly;
      result.nextBeginOffset = minOffset === 0 ? minOffset : maxOffset;
    } else {
      this.readUnits(queue, request, result);
    }
    return result;
  }

  private unitsToScan(request: GetRequest): number {
    return Math.max(MIN_UNITS_SCANNED, Math.max(1, Math.floor(request.maxMessages)));
  }

  /**
   * The scan of RocketMQ getMessage over the units from the requested offset, at most
   * unitsToScan(request) of them. Units are decoded a chunk at a time, the first chunk as many as
   * the messages wanted: decoding the whole scan budget up front made a pop of 32 from a backlog
   * decode 800 units.
   */
  private readUnits(queue: ConsumeQueue, request: GetRequest, result: GetResult): void {
    const { queueOffset, filter } = request;
    const maxMessages = Math.max(1, Math.floor(request.maxMessages));
    const budget = this.unitsToScan(request);
    let chunkSize = Math.min(budget, maxMessages);
    let units = getUnits(queue, queueOffset, chunkSize);
    if (units === undefined || units.length === 0) {
      const perFile = this.config.consumeQueueUnitsPerFile;
      result.status = GetStatus.OffsetFoundNull;
      result.nextBeginOffset = queueOffset + perFile - (queueOffset % perFile);
      return;
    }
    result.status = GetStatus.NoMatchedMessage;
    // The records this pull will likely return end near the end of its first maxMessages units.
    const lastLikely = units[Math.min(units.length, maxMessages) - 1];
    const windowEndOffset = lastLikely === undefined ? 0 : lastLikely.commitLogOffset + lastLikely.size;
    const segmentBytes = this.config.commitLogSegmentBytes;
    let nextSegmentStart = -1;
    let totalBytes = 0;
    let scanned = 0;
    let fetched = 0;
    scan: for (;;) {
      for (const unit of units) {
        if (nextSegmentStart >= 0 && unit.commitLogOffset < nextSegmentStart) {
          scanned++;
          continue;
        }
        const full =
          result.records.length > 0 &&
          (result.records.length >= maxMessages ||
            (request.maxTotalBytes !== undefined && totalBytes + unit.size > request.maxTotalBytes));
        if (full) break scan;
        scanned++;
        if (!mayMatchTagsCode(filter, unit.tagsCode)) continue;
        const record = this.commitLog.read(unit.commitLogOffset, unit.size, windowEndOffset);
        if (record === undefined) {
          // Retention removed the bytes: skip the rest of that segment.
          if (result.records.length === 0) result.status = GetStatus.OffsetFoundNull;
          nextSegmentStart = unit.commitLogOffset + segmentBytes - (unit.commitLogOffset % segmentBytes);
          continue;
        }
        if (!filter.matchesAll && !matchesTag(filter, recordProperties(record)[MessageProperty.Tags])) continue;
        result.records.push(record);
        result.queueOffsets.push(unit.queueOffset);
        totalBytes += record.length;
        result.status = GetStatus.Found;
        nextSegmentStart = -1;
      }
      fetched += units.length;
      // A short chunk is the end of what the queue holds; otherwise go on, in larger chunks.
      if (units.length < chunkSize || fetched >= budget) break;
      chunkSize = Math.min(budget - fetched, Math.max(64, chunkSize * 2));
      const more = getUnits(queue, queueOffset + fetched, chunkSize);
      if (more === undefined || more.length === 0) break;
      units = more;
    }
    result.nextBeginOffset = queueOffset + scanned;
  }

  getMaxOffsetInQueue(topic: string, queueId: number): number {
    return this.queueTable.get(topic, queueId)?.maxQueueOffset() ?? 0;
  }

  getMinOffsetInQueue(topic: string, queueId: number): number {
    return this.queueTable.get(topic, queueId)?.minQueueOffset() ?? 0;
  }

  getOffsetInQueueByTime(topic: string, queueId: number, timestampMs: number): number {
    const queue = this.queueTable.get(topic, queueId);
    if (queue === undefined) return 0;
    const maxOffset = queue.maxQueueOffset();
    let low = queue.minQueueOffset();
    // Units whose records retention removed count as older than any time.
    const minCommitLogOffset = this.commitLog.minOffset();
    let high = maxOffset;
    while (low < high) {
      const middle = Math.floor((low + high) / 2);
      const unit = getUnit(queue, middle);
      if (unit === undefined || unit.commitLogOffset < minCommitLogOffset) low = middle + 1;
      else high = middle;
    }
    high = maxOffset;
    while (low < high) {
      const middle = Math.floor((low + high) / 2);
      const storedAt = this.storeTimestampOf(getUnit(queue, middle));
      if (storedAt < timestampMs) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  getMessageStoreTimestamp(topic: string, queueId: number, queueOffset: number): number {
    const queue = this.queueTable.get(topic, queueId);
    if (queue === undefined) return -1;
    return this.storeTimestampOf(getUnit(queue, queueOffset));
  }

  /** The store timestamp of a unit's record, -1 when it is gone. */
  private storeTimestampOf(unit: ConsumeQueueUnit | undefined): number {
    if (unit === undefined) return -1;
    const prefix = this.commitLog.read(unit.commitLogOffset, Math.min(unit.size, TIMESTAMP_PREFIX_BYTES));
    return prefix === undefined ? -1 : recordStoreTimestamp(prefix);
  }

  lookMessageByOffset(commitLogOffset: number): StoredMessage | undefined {
    const record = this.selectRecord(commitLogOffset);
    return record === undefined ? undefined : decodeRecord(record);
  }

  selectRecord(commitLogOffset: number): Buffer | undefined {
    const header = this.commitLog.read(commitLogOffset, 8);
    if (header === undefined || header.readInt32BE(4) !== MESSAGE_MAGIC_CODE) return undefined;
    const size = header.readInt32BE(0);
    const record = this.commitLog.read(commitLogOffset, size);
    if (record === undefined) return undefined;
    const check = checkRecord(record, 0, size, true);
    if (check.kind !== 'message' || check.size !== size) return undefined;
    return recordCommitLogOffset(record) === commitLogOffset ? record : undefined;
  }

  queryMessagesByKey(topic: string, key: string, maxCount: number, beginMs: number, endMs: number): StoredMessage[] {
    const found: StoredMessage[] = [];
    if (!(maxCount > 0)) return found;
    // Index hits are hash matches: ask for extra candidates, keep those whose record really has the key.
    const candidates = this.index.query(topic, key, maxCount * 2 + 16, beginMs, endMs);
    const seen = new Set<number>();
    for (const commitLogOffset of candidates) {
      if (found.length >= maxCount) break;
      if (seen.has(commitLogOffset)) continue;
      seen.add(commitLogOffset);
      const message = this.lookMessageByOffset(commitLogOffset);
      if (message === undefined || message.topic !== topic) continue;
      if (message.storeTimestamp < beginMs || message.storeTimestamp > endMs) continue;
      const hasKey =
        keysOf(message.properties).includes(key) || message.properties[MessageProperty.UniqueClientMessageId] === key;
      if (hasKey) found.push(message);
    }
    return found;
  }

  queues(): QueueId[] {
    return this.queueTable.all().map((queue) => ({ topic: queue.topic, queueId: queue.queueId }));
  }

  onMessageArrived(listener: MessageArrivedListener): void {
    this.listeners.push(listener);
  }

  async runRetention(nowMs: number = Date.now()): Promise<{ deletedSegments: number }> {
    if (this.state !== 'running') return { deletedSegments: 0 };
    if (this.retentionRunning !== undefined) {
      await this.retentionRunning;
    }
    // Segments are deleted only once flushed (no fdatasync may hold their fd).
    await this.flushService.flush();
    this.retentionRunning = runRetention(
      {
        storePath: this.config.storePath,
        commitLog: this.commitLog,
        fileReservedMs: this.config.fileReservedMs,
        diskMaxUsedRatio: this.config.diskMaxUsedRatio,
        diskUsage: this.diskUsage,
        logger: this.logger,
        afterDelete: (commitLogMinOffset) => {
          for (const queue of this.queueTable.all()) queue.deleteExpired(commitLogMinOffset);
          this.index.deleteExpired(commitLogMinOffset);
        },
      },
      nowMs,
    );
    try {
      return { deletedSegments: await this.retentionRunning };
    } finally {
      this.retentionRunning = undefined;
    }
  }

  readCommitLog(fromCommitLogOffset: number, maxBytes: number): Buffer | undefined {
    if (this.state !== 'running' || !Number.isSafeInteger(fromCommitLogOffset)) return undefined;
    const log = this.commitLog;
    if (fromCommitLogOffset < log.minOffset() || fromCommitLogOffset > log.writtenOffset) return undefined;
    const segment = log.segmentAt(fromCommitLogOffset);
    const segmentEnd = segment?.endOffset ?? fromCommitLogOffset;
    const size = Math.min(
      Math.max(0, Math.floor(maxBytes)),
      log.writtenOffset - fromCommitLogOffset,
      segmentEnd - fromCommitLogOffset,
    );
    if (size <= 0) return Buffer.alloc(0);
    return log.read(fromCommitLogOffset, size);
  }

  appendReplicated(commitLogOffset: number, data: Buffer): ReplicaAppendResult {
    if (this.state !== 'running') return { ok: false, reason: `the store is ${this.state}` };
    if (!this.replica) return { ok: false, reason: 'the store is not a replica' };
    if (this.readOnlyError !== undefined) return { ok: false, reason: this.readOnlyError.message };
    try {
      return this.replicaWriter.append(commitLogOffset, data);
    } catch (err) {
      if (err instanceof InvariantError) throw err;
      this.replicaWriter.reset();
      return { ok: false, reason: `replicated append failed: ${String(err)}` };
    }
  }

  async truncateReplica(commitLogOffset: number): Promise<void> {
    await this.quiesceForReplicaRewrite('truncate');
    const log = this.commitLog;
    if (!Number.isSafeInteger(commitLogOffset) || commitLogOffset < log.minOffset()) {
      throw new RbError(
        ErrorCode.ConfigInvalid,
        `cannot truncate the CommitLog to ${commitLogOffset}: before its start`,
      );
    }
    if (commitLogOffset >= log.writtenOffset) return;
    const fromOffset = log.writtenOffset;
    const deletedSegments = log.truncateTo(commitLogOffset);
    for (const queue of this.queueTable.all()) {
      queue.truncateByCommitLogOffset(commitLogOffset);
      log.setNextQueueOffset(queue.topic, queue.queueId, queue.maxQueueOffset());
    }
    this.index.truncateByCommitLogOffset(commitLogOffset);
    this.afterReplicaRewrite(commitLogOffset);
    this.logger.warn({ fromOffset, toOffset: commitLogOffset, deletedSegments }, 'replica CommitLog truncated');
  }

  async resetReplica(commitLogOffset: number): Promise<void> {
    await this.quiesceForReplicaRewrite('reset');
    if (!Number.isSafeInteger(commitLogOffset) || commitLogOffset < 0) {
      throw new RbError(ErrorCode.ConfigInvalid, `cannot restart the CommitLog at ${commitLogOffset}`);
    }
    if (commitLogOffset % this.config.commitLogSegmentBytes !== 0) {
      throw new RbError(
        ErrorCode.ConfigInvalid,
        `cannot restart the CommitLog at ${commitLogOffset}: not a multiple of the segment size ${this.config.commitLogSegmentBytes} (do master and replica use the same segment size?)`,
      );
    }
    const fromOffsets = { min: this.commitLog.minOffset(), max: this.commitLog.writtenOffset };
    this.commitLog.resetTo(commitLogOffset);
    this.queueTable.deleteAll();
    // Index entries point at CommitLog offsets; every one is gone now.
    this.index.truncateByCommitLogOffset(0);
    this.afterReplicaRewrite(commitLogOffset);
    this.logger.warn({ from: fromOffsets, startOffset: commitLogOffset }, 'replica CommitLog restarted empty');
  }

  /** Lets writes and flushes in progress finish, so that files can be cut under nobody's feet. */
  private async quiesceForReplicaRewrite(what: string): Promise<void> {
    if (this.state !== 'running')
      throw new RbError(ErrorCode.StoreClosed, `cannot ${what}: the store is ${this.state}`);
    if (!this.replica)
      throw new RbError(ErrorCode.StoreReadOnly, `cannot ${what} the CommitLog of a store that is not a replica`);
    if (this.readOnlyError !== undefined) throw this.readOnlyRefusal();
    this.commitLog.drainNow();
    // What is written reaches the disk first: the cut moves the flushed offset along with the end.
    await this.flushService.flush();
    for (;;) {
      const busy = this.retentionRunning ?? this.periodicFlush ?? this.derivedFlush ?? this.flushService.inFlight;
      if (busy === undefined) break;
      await busy.catch(() => undefined);
    }
    if (this.state !== 'running')
      throw new RbError(ErrorCode.StoreClosed, `cannot ${what}: the store is ${this.state}`);
    if (this.readOnlyError !== undefined) throw this.readOnlyRefusal();
  }

  private afterReplicaRewrite(endOffset: number): void {
    this.replicaWriter.reset();
    this.dispatchedOffset = endOffset;
    this.derivedDurableOffset = Math.min(this.derivedDurableOffset, endOffset);
    this.writeCheckpoint();
  }

  setReplica(replica: boolean): void {
    this.replica = replica;
    this.replicaWriter.reset();
  }

  isReplica(): boolean {
    return this.replica;
  }

  stats(): DefaultStoreStats {
    return {
      commitLogMinOffset: this.commitLog.minOffset(),
      commitLogMaxOffset: this.commitLog.writtenOffset,
      commitLogFlushedOffset: this.commitLog.flushedOffset,
      readOnly: this.readOnlyError !== undefined,
      putCount: this.putCount,
      putBytes: this.putBytes,
      fdatasyncCount: this.flushService.fdatasyncCount,
      writeCount: this.commitLog.writeCount,
      dispatchedOffset: this.dispatchedOffset,
    };
  }
}

/** Units from a queue; undefined when its files cannot be read there. */
function getUnits(queue: ConsumeQueue, fromQueueOffset: number, maxUnits: number): ConsumeQueueUnit[] | undefined {
  try {
    return queue.getUnits(fromQueueOffset, maxUnits);
  } catch {
    return undefined;
  }
}

/** One unit, or undefined when the queue has none there (or cannot read it). */
function getUnit(queue: ConsumeQueue, queueOffset: number): ConsumeQueueUnit | undefined {
  return getUnits(queue, queueOffset, 1)?.[0];
}

function validateConfig(config: MessageStoreConfig): void {
  const problems: string[] = [];
  const positiveInteger = (name: keyof MessageStoreConfig): void => {
    const value = config[name];
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0)
      problems.push(`${name} must be a positive integer`);
  };
  positiveInteger('commitLogSegmentBytes');
  positiveInteger('consumeQueueUnitsPerFile');
  positiveInteger('flushIntervalMs');
  if (config.consumeQueueFlushIntervalMs !== undefined) positiveInteger('consumeQueueFlushIntervalMs');
  positiveInteger('syncFlushTimeoutMs');
  positiveInteger('maxMessageBytes');
  positiveInteger('indexSlotsPerFile');
  positiveInteger('indexEntriesPerFile');
  if (config.commitLogSegmentBytes < 4096) problems.push('commitLogSegmentBytes must be at least 4096');
  if (!(config.diskMaxUsedRatio > 0 && config.diskMaxUsedRatio <= 1))
    problems.push('diskMaxUsedRatio must be in (0, 1]');
  if (!(config.fileReservedMs >= 0)) problems.push('fileReservedMs must not be negative');
  if (!(config.retentionCheckIntervalMs >= 0)) problems.push('retentionCheckIntervalMs must not be negative');
  if (config.flushPolicy !== 'async' && config.flushPolicy !== 'sync')
    problems.push('flushPolicy must be async or sync');
  if (problems.length > 0) throw new RbError(ErrorCode.ConfigInvalid, `message store config: ${problems.join('; ')}`);
}
