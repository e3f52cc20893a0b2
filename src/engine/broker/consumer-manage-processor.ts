/**
 * GET_CONSUMER_LIST_BY_GROUP (38), QUERY_CONSUMER_OFFSET (14) and UPDATE_CONSUMER_OFFSET (15), after
 * RocketMQ's ConsumerManageProcessor.
 */
import { topicNameProblem } from '../common/topic.js';
import { ResponseCode } from '../remoting/codes.js';
import { createResponse, type RemotingCommand } from '../remoting/command.js';
import type { BrokerContext } from './broker-context.js';
import { RequestError } from './request-error.js';
import { HeaderReader, stringFields } from './request-header.js';

function readQueueHeader(request: RemotingCommand): {
  header: HeaderReader;
  group: string;
  topic: string;
  queueId: number;
} {
  const header = new HeaderReader(request.extFields as Readonly<Record<string, unknown>>);
  const group = header.name('consumerGroup');
  const topic = header.string('topic');
  const problem = topicNameProblem(topic);
  if (problem !== undefined) throw new RequestError(ResponseCode.SystemError, problem);
  const queueId = header.int('queueId');
  if (queueId < 0) throw new RequestError(ResponseCode.SystemError, `queueId ${queueId} is negative`);
  return { header, group, topic, queueId };
}

export class ConsumerManageProcessor {
  constructor(private readonly ctx: BrokerContext) {}

  consumerList(request: RemotingCommand): RemotingCommand {
    const group = new HeaderReader(request.extFields as Readonly<Record<string, unknown>>).name('consumerGroup');
    const clientIds = this.ctx.consumers.group(group)?.clientIds() ?? [];
    if (clientIds.length === 0) {
      return createResponse(request, ResponseCode.SystemError, `no consumer for this group, ${group}`);
    }
    const body = Buffer.from(JSON.stringify({ consumerIdList: clientIds }));
    return createResponse(request, ResponseCode.Success, undefined, {}, body);
  }

  /**
   * The group's committed offset. With none, RocketMQ answers 0 while the queue still starts at 0 (a
   * new group then reads the queue from the beginning) and QUERY_NOT_FOUND once its head was deleted.
   */
  queryOffset(request: RemotingCommand): RemotingCommand {
    const { group, topic, queueId } = readQueueHeader(request);
    let offset = this.ctx.offsets.query(group, topic, queueId);
    if (offset < 0) {
      const minOffset = this.ctx.store.getMinOffsetInQueue(topic, queueId);
      if (minOffset > 0) {
        return createResponse(
          request,
          ResponseCode.QueryNotFound,
          'Not found, V3_0_6_SNAPSHOT maybe this group consumer boot first',
        );
      }
      offset = 0;
    }
    return createResponse(request, ResponseCode.Success, undefined, stringFields({ offset }));
  }

  updateOffset(request: RemotingCommand): RemotingCommand {
    const { header, group, topic, queueId } = readQueueHeader(request);
    const commitOffset = header.long('commitOffset');
    if (commitOffset < 0) throw new RequestError(ResponseCode.SystemError, `commitOffset ${commitOffset} is negative`);
    this.ctx.offsets.commit(group, topic, queueId, commitOffset);
    return createResponse(request, ResponseCode.Success);
  }
}
