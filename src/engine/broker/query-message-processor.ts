/**
 * QUERY_MESSAGE (12) and VIEW_MESSAGE_BY_ID (33), after RocketMQ's QueryMessageProcessor: both answer
 * with stored records unchanged, the way a pull does.
 */
import { topicNameProblem } from '../common/topic.js';
import { ResponseCode } from '../remoting/codes.js';
import { createResponse, type RemotingCommand } from '../remoting/command.js';
import type { BrokerContext } from './broker-context.js';
import { RequestError } from './request-error.js';
import { HeaderReader, stringFields } from './request-header.js';

/** MixAll.UNIQUE_MSG_QUERY_FLAG: the client asks for one message by its UNIQ_KEY. */
const UNIQUE_MSG_QUERY_FLAG = '_UNIQUE_KEY_QUERY';
/** RocketMQ defaultQueryMaxNum. */
const DEFAULT_QUERY_MAX_NUM = 32;

export class QueryMessageProcessor {
  constructor(private readonly ctx: BrokerContext) {}

  queryMessage(request: RemotingCommand): RemotingCommand {
    const reader = new HeaderReader(request.extFields as Readonly<Record<string, unknown>>);
    const topic = reader.string('topic');
    const problem = topicNameProblem(topic);
    if (problem !== undefined) throw new RequestError(ResponseCode.SystemError, problem);
    const key = reader.name('key');
    let maxNum = reader.int('maxNum');
    const beginMs = reader.long('beginTimestamp');
    const endMs = reader.long('endTimestamp');
    if (maxNum <= 0) throw new RequestError(ResponseCode.SystemError, `maxNum ${maxNum} must be positive`);
    if (reader.bool(UNIQUE_MSG_QUERY_FLAG, false)) maxNum = DEFAULT_QUERY_MAX_NUM;
    maxNum = Math.min(maxNum, DEFAULT_QUERY_MAX_NUM * 4);
    const messages = this.ctx.store.queryMessagesByKey(topic, key, maxNum, beginMs, endMs);
    const records: Buffer[] = [];
    let lastTimestamp = 0;
    for (const message of messages) {
      const record = this.ctx.store.selectRecord(message.commitLogOffset);
      if (record === undefined) continue;
      records.push(record);
      lastTimestamp = Math.max(lastTimestamp, message.storeTimestamp);
    }
    const fields = stringFields({
      indexLastUpdateTimestamp: lastTimestamp,
      indexLastUpdatePhyoffset: this.ctx.store.stats().commitLogMaxOffset,
    });
    if (records.length === 0) {
      return createResponse(
        request,
        ResponseCode.QueryNotFound,
        'can not find message, maybe time range not correct',
        fields,
      );
    }
    return createResponse(request, ResponseCode.Success, undefined, fields, Buffer.concat(records));
  }

  viewMessageById(request: RemotingCommand): RemotingCommand {
    const commitLogOffset = new HeaderReader(request.extFields as Readonly<Record<string, unknown>>).long('offset');
    const record = commitLogOffset < 0 ? undefined : this.ctx.store.selectRecord(commitLogOffset);
    if (record === undefined) {
      return createResponse(
        request,
        ResponseCode.SystemError,
        `can not find message by the offset, ${commitLogOffset}`,
      );
    }
    return createResponse(request, ResponseCode.Success, undefined, {}, record);
  }
}
