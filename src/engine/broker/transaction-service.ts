/**
 * Transactional messages (RocketMQ TransactionalMessageServiceImpl, EndTransactionProcessor's core
 * and TransactionalMessageCheckService). A send with TRAN_MSG=true is stored as a half message in
 * RMQ_SYS_TRANS_HALF_TOPIC queue 0 (transaction type cleared, destination in REAL_TOPIC / REAL_QID),
 * where no consumer reads it. END_TRANSACTION commit re-stores it into its real topic and queue
 * (commit type, REAL_* removed); commit and rollback both write an op record to
 * RMQ_SYS_TRANS_OP_HALF_TOPIC queue 0 (tag `d`, body = the half's queue offset) that marks it done.
 *
 * Checks: every transactionCheckIntervalMs, each unresolved half older than transactionTimeoutMs is
 * re-stored at the end of the half queue with TRANSACTION_CHECK_TIMES + 1 and
 * TRAN_PREPARED_QUEUE_OFFSET = the original's queue offset (so the count survives restarts, as in
 * RocketMQ), then CHECK_TRANSACTION_STATE goes oneway to a live producer channel of its PGROUP. After
 * transactionCheckMax checks it is discarded (op record + log line).
 *
 * State is rebuilt at start from the two topics alone: every op record names a resolved half; the
 * latest copy of each other half is pending. An END_TRANSACTION may name the original or any copy.
 */
import { createLogger } from '../common/logger.js';
import { MessageSysFlag, type MessageToStore, type StoredMessage } from '../common/message.js';
import { decodeRecord, encodeRecord, prepareRecord } from '../common/message-record.js';
import { MessageProperty } from '../common/properties.js';
import { parseTagExpression } from '../common/tag-expression.js';
import { TRANS_HALF_TOPIC, TRANS_OP_HALF_TOPIC } from '../common/topic.js';
import { RequestCode } from '../remoting/codes.js';
import { createRequest, markOneway } from '../remoting/command.js';
import { GetStatus, PutStatus, type MessageStore } from '../store/api.js';
import type { ProducerManager } from './producer-manager.js';
import { stringFields } from './request-header.js';
import { restoreAs, userProperties } from './system-message.js';

const log = createLogger('transaction');
const ALL = parseTagExpression('*');
const SCAN_BATCH = 256;
/** TransactionalMessageUtil.REMOVETAG. */
const REMOVE_TAG = 'd';
/** MessageConst names not in common/properties.ts. */
export const PROPERTY_TRANSACTION_CHECK_TIMES = 'TRANSACTION_CHECK_TIMES';
export const PROPERTY_TRANSACTION_PREPARED_QUEUE_OFFSET = 'TRAN_PREPARED_QUEUE_OFFSET';

/** END_TRANSACTION commitOrRollback values (MessageSysFlag transaction types). */
export const TransactionType = { Unknown: 0, Commit: 8, Rollback: 12 } as const;

interface PendingHalf {
  /** Queue offset of the original half message: the transaction's key. */
  readonly key: number;
  /** The latest copy (or the original). */
  queueOffset: number;
  commitLogOffset: number;
  bornTimestamp: number;
  checkTimes: number;
  producerGroup: string;
  /** A commit, rollback or check is in progress. */
  busy: boolean;
}

export interface EndTransactionRequest {
  producerGroup: string;
  tranStateTableOffset: number;
  commitLogOffset: number;
  commitOrRollback: number;
  fromTransactionCheck: boolean;
}

export type EndOutcome = { ok: true } | { ok: false; remark: string; code: 'not-found' | 'mismatch' | 'store' };

export interface TransactionServiceOptions {
  store: () => MessageStore;
  producers: ProducerManager;
  checkIntervalMs: number;
  timeoutMs: number;
  checkMax: number;
}

function isHalfTransaction(properties: Readonly<Record<string, string>>): boolean {
  return properties[MessageProperty.TransactionPrepared] === 'true';
}

export class TransactionService {
  private readonly pending = new Map<number, PendingHalf>();
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;
  private stopped = true;

  constructor(private readonly options: TransactionServiceOptions) {}

  /** Unresolved half messages. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /** True when a send is a half message (TRAN_MSG=true). */
  static isHalf(properties: Readonly<Record<string, string>>): boolean {
    return isHalfTransaction(properties);
  }

  /** Rewrites a half message into the half topic (TransactionalMessageBridge.parseHalfMessageInner). */
  divert(message: MessageToStore): MessageToStore {
    return {
      ...message,
      topic: TRANS_HALF_TOPIC,
      queueId: 0,
      sysFlag: message.sysFlag & ~MessageSysFlag.TransactionRollbackType,
      properties: {
        ...message.properties,
        [MessageProperty.RealTopic]: message.topic,
        [MessageProperty.RealQueueId]: String(message.queueId),
      },
    };
  }

  /** After a half message was stored. */
  track(message: MessageToStore, queueOffset: number, commitLogOffset: number): void {
    if (this.pending.has(queueOffset)) return;
    this.pending.set(queueOffset, {
      key: queueOffset,
      queueOffset,
      commitLogOffset,
      bornTimestamp: message.bornTimestamp,
      checkTimes: 0,
      producerGroup: message.properties[MessageProperty.ProducerGroup] ?? '',
      busy: false,
    });
  }

  /** Rebuilds the pending set from the op and half topics, then starts the check timer. */
  start(): void {
    const resolved = new Set<number>();
    this.scan(TRANS_OP_HALF_TOPIC, (message) => {
      for (const word of message.body.toString('utf8').split(',')) {
        const key = Number(word);
        if (word.length > 0 && Number.isSafeInteger(key)) resolved.add(key);
      }
    });
    this.scan(TRANS_HALF_TOPIC, (message) => {
      const key = keyOfHalf(message);
      if (resolved.has(key)) return;
      const existing = this.pending.get(key);
      if (existing !== undefined && existing.queueOffset > message.queueOffset) return;
      this.pending.set(key, {
        key,
        queueOffset: message.queueOffset,
        commitLogOffset: message.commitLogOffset,
        bornTimestamp: message.bornTimestamp,
        checkTimes: Number(message.properties[PROPERTY_TRANSACTION_CHECK_TIMES] ?? 0) || 0,
        producerGroup: message.properties[MessageProperty.ProducerGroup] ?? '',
        busy: false,
      });
    });
    if (this.pending.size > 0) log.info({ pending: this.pending.size }, 'unresolved half messages after start');
    this.stopped = false;
    this.timer = setInterval(() => {
      if (this.checking === undefined) {
        this.checking = this.checkAll().finally(() => {
          this.checking = undefined;
        });
      }
    }, this.options.checkIntervalMs);
    this.timer.unref();
  }

  async shutdown(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.checking;
    this.pending.clear();
  }

  /** END_TRANSACTION: commit or roll back the half message the request names. */
  async end(request: EndTransactionRequest): Promise<EndOutcome> {
    const store = this.options.store();
    const half = request.commitLogOffset >= 0 ? store.lookMessageByOffset(request.commitLogOffset) : undefined;
    if (half === undefined || half.topic !== TRANS_HALF_TOPIC) {
      return { ok: false, code: 'not-found', remark: 'Find prepared transaction message failed' };
    }
    if (half.properties[MessageProperty.ProducerGroup] !== request.producerGroup) {
      return { ok: false, code: 'mismatch', remark: 'The producer group wrong' };
    }
    if (half.queueOffset !== request.tranStateTableOffset) {
      return { ok: false, code: 'mismatch', remark: 'The transaction state table offset wrong' };
    }
    const key = keyOfHalf(half);
    const entry = this.pending.get(key);
    if (entry === undefined || entry.busy) {
      return { ok: false, code: 'not-found', remark: 'the transaction is already resolved or being resolved' };
    }
    entry.busy = true;
    try {
      if (request.commitOrRollback === TransactionType.Commit) {
        const committed = committedMessage(half);
        if (committed === undefined) {
          log.warn({ key }, 'half message without REAL_TOPIC/REAL_QID: discarded');
        } else {
          const put = await store.putMessage(committed);
          if (put.status !== PutStatus.Ok && put.status !== PutStatus.FlushDiskTimeout) {
            return { ok: false, code: 'store', remark: `storing the committed message failed: ${put.status}` };
          }
        }
      }
      if (!(await this.writeOp(key))) return { ok: false, code: 'store', remark: 'writing the op record failed' };
      this.pending.delete(key);
      return { ok: true };
    } finally {
      entry.busy = false;
    }
  }

  /** One check round (exposed for tests through the timer only). */
  private async checkAll(): Promise<void> {
    const now = Date.now();
    for (const entry of [...this.pending.values()]) {
      if (this.stopped) return;
      if (entry.busy || now - entry.bornTimestamp < this.options.timeoutMs) continue;
      entry.busy = true;
      try {
        if (entry.checkTimes >= this.options.checkMax) {
          if (await this.writeOp(entry.key)) {
            this.pending.delete(entry.key);
            log.warn(
              { key: entry.key, producerGroup: entry.producerGroup, checkTimes: entry.checkTimes },
              'half message checked transactionCheckMax times without an answer: discarded',
            );
          }
          continue;
        }
        await this.checkOne(entry);
      } catch (err) {
        log.error({ err, key: entry.key }, 'checking a half message failed');
      } finally {
        entry.busy = false;
      }
    }
  }

  private async checkOne(entry: PendingHalf): Promise<void> {
    const store = this.options.store();
    const current = store.lookMessageByOffset(entry.commitLogOffset);
    if (current === undefined) {
      log.warn({ key: entry.key }, 'half message is gone (retention): dropped');
      this.pending.delete(entry.key);
      return;
    }
    const properties = userProperties(current);
    properties[PROPERTY_TRANSACTION_CHECK_TIMES] = String(entry.checkTimes + 1);
    properties[PROPERTY_TRANSACTION_PREPARED_QUEUE_OFFSET] = String(entry.key);
    const put = await store.putMessage(restoreAs(current, TRANS_HALF_TOPIC, 0, properties));
    if (put.status !== PutStatus.Ok && put.status !== PutStatus.FlushDiskTimeout) {
      log.warn({ key: entry.key, status: put.status }, 'renewing a half message failed; checking later');
      return;
    }
    entry.queueOffset = put.queueOffset;
    entry.commitLogOffset = put.commitLogOffset;
    entry.checkTimes += 1;
    const producer = this.options.producers.anyChannel(entry.producerGroup);
    if (producer === undefined) {
      log.debug({ key: entry.key, producerGroup: entry.producerGroup }, 'no live producer to check a half message');
      return;
    }
    const copy = store.lookMessageByOffset(put.commitLogOffset);
    const record = copy === undefined ? undefined : checkBodyOf(copy);
    const uniqueKey = properties[MessageProperty.UniqueClientMessageId] ?? '';
    const check = createRequest(
      RequestCode.CheckTransactionState,
      stringFields({
        tranStateTableOffset: put.queueOffset,
        commitLogOffset: put.commitLogOffset,
        msgId: uniqueKey,
        transactionId: uniqueKey,
        offsetMsgId: put.msgIds[0] ?? '',
      }),
      record,
    );
    try {
      producer.channel.invokeOneway(markOneway(check));
    } catch (err) {
      log.warn({ err, producerGroup: entry.producerGroup }, 'sending CHECK_TRANSACTION_STATE failed');
    }
  }

  private async writeOp(key: number): Promise<boolean> {
    const op: MessageToStore = {
      topic: TRANS_OP_HALF_TOPIC,
      queueId: 0,
      flag: 0,
      body: Buffer.from(String(key)),
      properties: { [MessageProperty.Tags]: REMOVE_TAG, [MessageProperty.WaitStoreMsgOk]: 'false' },
      sysFlag: 0,
      bornTimestamp: Date.now(),
      bornHost: { host: '127.0.0.1', port: 0 },
      reconsumeTimes: 0,
      preparedTransactionOffset: 0,
    };
    const put = await this.options.store().putMessage(op);
    return put.status === PutStatus.Ok || put.status === PutStatus.FlushDiskTimeout;
  }

  private scan(topic: string, visit: (message: StoredMessage) => void): void {
    const store = this.options.store();
    let queueOffset = store.getMinOffsetInQueue(topic, 0);
    for (;;) {
      const result = store.getMessage({ topic, queueId: 0, queueOffset, maxMessages: SCAN_BATCH, filter: ALL });
      if (result.status !== GetStatus.Found) return;
      for (const record of result.records) visit(decodeRecord(record, 0, { copyBody: true }));
      queueOffset = result.nextBeginOffset;
    }
  }
}

/** The transaction's key: the original half's queue offset (copies name it in a property). */
function keyOfHalf(message: StoredMessage): number {
  const named = Number(message.properties[PROPERTY_TRANSACTION_PREPARED_QUEUE_OFFSET]);
  return Number.isSafeInteger(named) && message.properties[PROPERTY_TRANSACTION_PREPARED_QUEUE_OFFSET] !== undefined
    ? named
    : message.queueOffset;
}

/**
 * The CHECK_TRANSACTION_STATE body, as AbstractTransactionalMessageCheckListener.sendCheckMessage
 * builds it: the half record re-encoded with its real topic and queue (REAL_* properties kept), its
 * queue and CommitLog offsets those of the half copy the check names.
 */
function checkBodyOf(half: StoredMessage): Buffer | undefined {
  const topic = half.properties[MessageProperty.RealTopic];
  const queueId = Number(half.properties[MessageProperty.RealQueueId]);
  if (topic === undefined || !Number.isInteger(queueId)) return undefined;
  const prepared = prepareRecord(
    restoreAs(half, topic, queueId, userProperties(half)),
    half.storeHost.host.includes(':'),
  );
  return encodeRecord(prepared, {
    queueOffset: half.queueOffset,
    commitLogOffset: half.commitLogOffset,
    storeTimestamp: half.storeTimestamp,
    storeHost: half.storeHost,
  });
}

/** EndTransactionProcessor.endMessageTransaction: the half message bound for its real queue. */
function committedMessage(half: StoredMessage): MessageToStore | undefined {
  const properties = userProperties(half);
  const topic = properties[MessageProperty.RealTopic];
  const queueId = Number(properties[MessageProperty.RealQueueId]);
  if (topic === undefined || !Number.isInteger(queueId)) return undefined;
  delete properties[MessageProperty.RealTopic];
  delete properties[MessageProperty.RealQueueId];
  delete properties[PROPERTY_TRANSACTION_CHECK_TIMES];
  delete properties[PROPERTY_TRANSACTION_PREPARED_QUEUE_OFFSET];
  return restoreAs(half, topic, queueId, properties, {
    sysFlag: (half.sysFlag & ~MessageSysFlag.TransactionRollbackType) | MessageSysFlag.TransactionCommitType,
    preparedTransactionOffset: half.commitLogOffset,
  });
}
