/**
 * CONSUMER_SEND_MSG_BACK (36), after RocketMQ's SendMessageProcessor.consumerSendMsgBack: a consumer
 * that failed to process a message asks the broker to redeliver it. The broker re-stores the original
 * record's message in %RETRY%<group> with reconsumeTimes + 1, remembering the original topic
 * (RETRY_TOPIC) and message id (ORIGIN_MESSAGE_ID); after maxReconsumeTimes, or when the consumer
 * asks with a negative delay level, it goes to %DLQ%<group> instead.
 * A retry waits for a delay level (RocketMQ: 3 + reconsumeTimes when the consumer sends 0, capped at
 * the highest level) through the ScheduleMessageService; a DLQ message is stored at once.
 */
import type { MessageToStore } from '../common/message.js';
import { MessageProperty } from '../common/properties.js';
import { dlqTopicOf, retryTopicOf, topicNameProblem } from '../common/topic.js';
import type { RemotingChannel } from '../remoting/channel.js';
import { ResponseCode } from '../remoting/codes.js';
import { createResponse, type RemotingCommand } from '../remoting/command.js';
import { PutStatus } from '../store/api.js';
import type { BrokerContext } from './broker-context.js';
import { RequestError } from './request-error.js';
import { HeaderReader } from './request-header.js';
import type { ScheduleMessageService } from './schedule-message-service.js';
import { responseCodeOfPutStatus } from './send-message-processor.js';
import { PERM_READ_WRITE, isWriteable } from './topic-config-manager.js';

/** RocketMQ subscriptionGroupConfig.retryQueueNums and DLQ_NUMS_PER_GROUP. */
const RETRY_QUEUE_NUMS = 1;
const DLQ_QUEUE_NUMS = 1;

export class ConsumerSendBackProcessor {
  constructor(
    private readonly ctx: BrokerContext,
    private readonly schedule: ScheduleMessageService,
  ) {}

  async process(request: RemotingCommand, _channel: RemotingChannel): Promise<RemotingCommand> {
    const reader = new HeaderReader(request.extFields as Readonly<Record<string, unknown>>);
    const commitLogOffset = reader.long('offset');
    const group = reader.name('group');
    const delayLevel = reader.int('delayLevel');
    const originMsgId = reader.optionalString('originMsgId');
    const maxReconsumeTimes = reader.optionalInt('maxReconsumeTimes') ?? this.ctx.config.maxReconsumeTimes;
    const groupProblem = topicNameProblem(retryTopicOf(group));
    if (groupProblem !== undefined) {
      throw new RequestError(
        ResponseCode.SystemError,
        `consumer group "${group}" is not a valid name: ${groupProblem}`,
      );
    }
    if (!isWriteable(this.ctx.brokerPermission)) {
      throw new RequestError(
        ResponseCode.NoPermission,
        `the broker[${this.ctx.config.brokerName}] sending message is forbidden`,
      );
    }
    const original = commitLogOffset < 0 ? undefined : this.ctx.store.lookMessageByOffset(commitLogOffset);
    if (original === undefined) {
      throw new RequestError(ResponseCode.SystemError, `look message by offset failed, ${commitLogOffset}`);
    }

    const properties = { ...original.properties };
    delete properties[MessageProperty.RecordCrc32];
    if (properties[MessageProperty.RetryTopic] === undefined) properties[MessageProperty.RetryTopic] = original.topic;
    const existingOrigin = properties[MessageProperty.OriginMessageId];
    properties[MessageProperty.OriginMessageId] =
      existingOrigin !== undefined && existingOrigin.length > 0
        ? existingOrigin
        : originMsgId !== undefined && originMsgId.length > 0
          ? originMsgId
          : original.msgId;

    let topic = retryTopicOf(group);
    let queueNums = RETRY_QUEUE_NUMS;
    const toDlq = original.reconsumeTimes >= maxReconsumeTimes || delayLevel < 0;
    if (toDlq) {
      topic = dlqTopicOf(group);
      queueNums = DLQ_QUEUE_NUMS;
    }
    delete properties[MessageProperty.DelayTimeLevel];
    await this.ctx.topics.ensureInternal(topic, queueNums, PERM_READ_WRITE);

    const message: MessageToStore = {
      topic,
      queueId: 0,
      flag: original.flag,
      body: original.body,
      properties,
      sysFlag: original.sysFlag,
      bornTimestamp: original.bornTimestamp,
      bornHost: original.bornHost,
      reconsumeTimes: original.reconsumeTimes + 1,
      preparedTransactionOffset: 0,
    };
    const level = delayLevel === 0 ? 3 + original.reconsumeTimes : delayLevel;
    const result = await this.ctx.store.putMessage(toDlq ? message : this.schedule.divert(message, level));
    if (result.status !== PutStatus.Ok) {
      return createResponse(request, responseCodeOfPutStatus(result.status), result.error?.message ?? result.status);
    }
    this.ctx.counters.putMessages += 1;
    return createResponse(request, ResponseCode.Success);
  }
}
