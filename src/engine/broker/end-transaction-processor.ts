/**
 * END_TRANSACTION (37), after RocketMQ's EndTransactionProcessor: a producer (usually oneway) commits
 * or rolls back a half message; `0` (unknown) leaves it to the check service. The outcome is applied
 * by the TransactionService; a oneway request gets no answer either way.
 */
import { createLogger } from '../common/logger.js';
import type { RemotingChannel } from '../remoting/channel.js';
import { ResponseCode } from '../remoting/codes.js';
import { createResponse, type RemotingCommand } from '../remoting/command.js';
import { RequestError } from './request-error.js';
import { HeaderReader } from './request-header.js';
import { TransactionType, type TransactionService } from './transaction-service.js';

const log = createLogger('end-transaction');

export class EndTransactionProcessor {
  constructor(private readonly transactions: TransactionService) {}

  async process(request: RemotingCommand, channel: RemotingChannel): Promise<RemotingCommand> {
    const reader = new HeaderReader(request.extFields as Readonly<Record<string, unknown>>);
    const producerGroup = reader.name('producerGroup');
    const tranStateTableOffset = reader.long('tranStateTableOffset');
    const commitLogOffset = reader.long('commitLogOffset');
    const commitOrRollback = reader.int('commitOrRollback');
    const fromTransactionCheck = reader.bool('fromTransactionCheck', false);
    if (
      commitOrRollback !== TransactionType.Commit &&
      commitOrRollback !== TransactionType.Rollback &&
      commitOrRollback !== TransactionType.Unknown
    ) {
      throw new RequestError(ResponseCode.SystemError, `commitOrRollback ${commitOrRollback} is not 0, 8 or 12`);
    }
    if (commitOrRollback === TransactionType.Unknown) {
      log.debug({ producerGroup, peer: channel.remoteAddress, fromTransactionCheck }, 'transaction state unknown');
      return createResponse(request, ResponseCode.Success);
    }
    const outcome = await this.transactions.end({
      producerGroup,
      tranStateTableOffset,
      commitLogOffset,
      commitOrRollback,
      fromTransactionCheck,
    });
    if (!outcome.ok) {
      log.warn({ producerGroup, commitLogOffset, peer: channel.remoteAddress }, outcome.remark);
      return createResponse(request, ResponseCode.SystemError, outcome.remark);
    }
    return createResponse(request, ResponseCode.Success);
  }
}
