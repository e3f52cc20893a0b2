/**
 * The transactional producer (RocketMQ TransactionMQProducer): sends a half message (TRAN_MSG, PGROUP,
 * prepared sysFlag) that consumers cannot see, runs the caller's local transaction, then tells the
 * broker to commit or roll back with a oneway END_TRANSACTION. When the outcome was unknown (or the
 * END_TRANSACTION got lost) the broker asks a producer of the group with CHECK_TRANSACTION_STATE; the
 * check listener answers and END_TRANSACTION goes back over the same connection.
 */
import { ErrorCode, RbError } from '../common/errors.js';
import { createLogger } from '../common/logger.js';
import { MessageSysFlag, type Message } from '../common/message.js';
import { MessageProperty } from '../common/properties.js';
import type { RemotingChannel } from '../remoting/channel.js';
import { RequestCode } from '../remoting/codes.js';
import { createRequest, markOneway } from '../remoting/command.js';
import type { MessageExt } from './message-ext.js';
import { Producer, type ProducerOptions, type SendResult } from './producer.js';

const log = createLogger('transaction-producer');

export type LocalTransactionState = 'COMMIT' | 'ROLLBACK' | 'UNKNOWN';

/** Answers the broker's question about a half message whose outcome it does not know. */
export type TransactionCheckListener = (message: MessageExt) => Promise<LocalTransactionState> | LocalTransactionState;

/** Runs the local transaction after the half message is stored. */
export type LocalTransactionExecutor = (message: Message) => Promise<LocalTransactionState> | LocalTransactionState;

export interface TransactionProducerOptions extends ProducerOptions {
  checkListener: TransactionCheckListener;
}

export interface TransactionSendResult extends SendResult {
  /** What the local transaction decided (ROLLBACK when the half message was not stored cleanly). */
  localTransactionState: LocalTransactionState;
}

/** END_TRANSACTION's commitOrRollback values (MessageSysFlag transaction types). */
const COMMIT_OR_ROLLBACK: Record<LocalTransactionState, number> = {
  COMMIT: MessageSysFlag.TransactionCommitType,
  ROLLBACK: MessageSysFlag.TransactionRollbackType,
  UNKNOWN: MessageSysFlag.TransactionNotType,
};

const STATES: ReadonlySet<string> = new Set(['COMMIT', 'ROLLBACK', 'UNKNOWN']);

/** The CommitLog offset in an offset message id: its last 16 hex digits. */
export function commitLogOffsetOf(offsetMsgId: string): number {
  const hex = offsetMsgId.slice(-16);
  if (!/^[0-9A-Fa-f]{16}$/.test(hex)) throw new RbError(ErrorCode.RemoteError, `bad offset msgId ${offsetMsgId}`);
  return Number(BigInt(`0x${hex}`));
}

function checkState(state: unknown, what: string): LocalTransactionState {
  if (typeof state === 'string' && STATES.has(state)) return state as LocalTransactionState;
  log.warn({ state, what }, 'transaction callback gave no COMMIT/ROLLBACK/UNKNOWN; treating it as UNKNOWN');
  return 'UNKNOWN';
}

/** A producer whose messages become visible only when their local transaction commits. */
export class TransactionProducer extends Producer {
  private readonly checkListener: TransactionCheckListener;

  constructor(options: TransactionProducerOptions) {
    super(options);
    this.checkListener = options.checkListener;
  }

  override async start(): Promise<void> {
    await super.start();
    this.instance.setTransactionChecker(this.group, (header, message, channel) =>
      this.answerCheck(header, message, channel),
    );
  }

  override async shutdown(): Promise<void> {
    this.instance.setTransactionChecker(this.group, undefined);
    await super.shutdown();
  }

  /**
   * Sends `message` as a half message, runs `executeLocal`, and commits or rolls back accordingly.
   * A local transaction that throws or answers UNKNOWN leaves the decision to the broker's check-back.
   */
  async sendMessageInTransaction(
    message: Message,
    executeLocal: LocalTransactionExecutor,
  ): Promise<TransactionSendResult> {
    const properties = { ...message.properties };
    // Delays do not apply to transactional messages (DefaultMQProducerImpl.sendMessageInTransaction).
    delete properties[MessageProperty.DelayTimeLevel];
    delete properties[MessageProperty.TimerDeliverMs];
    properties[MessageProperty.TransactionPrepared] = 'true';
    properties[MessageProperty.ProducerGroup] = this.group;
    const half: Message = { ...message, properties };
    const result = await this.send(half);
    let state: LocalTransactionState = 'ROLLBACK';
    let remark: string | undefined;
    if (result.status === 'SEND_OK') {
      try {
        state = checkState(await executeLocal(message), 'executeLocal');
      } catch (err) {
        state = 'UNKNOWN';
        remark = `local transaction failed: ${err instanceof Error ? err.message : String(err)}`;
        log.warn({ err, msgId: result.msgId }, 'local transaction threw; the broker will check back');
      }
    }
    try {
      await this.endTransaction(result, state, remark);
    } catch (err) {
      // The broker still checks back, so the outcome is not lost.
      log.warn({ err, msgId: result.msgId }, 'END_TRANSACTION could not be sent');
    }
    return { ...result, localTransactionState: state };
  }

  private async endTransaction(
    result: SendResult,
    state: LocalTransactionState,
    remark: string | undefined,
  ): Promise<void> {
    const address = await this.instance.brokerAddressOf(result.messageQueue);
    const request = createRequest(RequestCode.EndTransaction, {
      producerGroup: this.group,
      tranStateTableOffset: String(result.queueOffset),
      commitLogOffset: String(commitLogOffsetOf(result.offsetMsgId)),
      commitOrRollback: String(COMMIT_OR_ROLLBACK[state]),
      fromTransactionCheck: 'false',
      msgId: result.msgId,
      transactionId: result.transactionId ?? result.msgId,
    });
    if (remark !== undefined) request.remark = remark;
    await this.instance.transport.invokeOneway(address, markOneway(request));
  }

  /** CHECK_TRANSACTION_STATE: ask the listener, answer with END_TRANSACTION on the broker's connection. */
  private async answerCheck(
    header: Record<string, string>,
    message: MessageExt,
    channel: RemotingChannel,
  ): Promise<void> {
    const realTopic = message.allProperties[MessageProperty.RealTopic];
    if (realTopic !== undefined) message.topic = realTopic;
    const uniqueId = message.allProperties[MessageProperty.UniqueClientMessageId] ?? message.msgId;
    let state: LocalTransactionState;
    let remark: string | undefined;
    try {
      state = checkState(await this.checkListener(message), 'checkListener');
    } catch (err) {
      state = 'UNKNOWN';
      remark = `check listener failed: ${err instanceof Error ? err.message : String(err)}`;
    }
    const field = (name: string): string | undefined => {
      const value = header[name];
      return value === undefined || value.length === 0 ? undefined : value;
    };
    const request = createRequest(RequestCode.EndTransaction, {
      producerGroup: this.group,
      tranStateTableOffset: field('tranStateTableOffset') ?? String(message.queueOffset),
      commitLogOffset: field('commitLogOffset') ?? String(message.commitLogOffset),
      commitOrRollback: String(COMMIT_OR_ROLLBACK[state]),
      fromTransactionCheck: 'true',
      msgId: field('msgId') ?? uniqueId,
      transactionId: field('transactionId') ?? uniqueId,
    });
    if (remark !== undefined) request.remark = remark;
    channel.invokeOneway(markOneway(request));
  }
}
