/**
 * Consumption control, after RocketMQ's AdminBrokerProcessor.getConsumeStats / resetOffset and
 * Broker2Client.resetOffset:
 * - GET_CONSUME_STATS (208), header consumerGroup, topic (optional: every topic the group has offsets
 *   for). Body ConsumeStats as fastjson writes it, MessageQueue objects as map keys:
 *   `{"consumeTps":0.0,"offsetTable":{{"brokerName":"b","queueId":0,"topic":"t"}:{"brokerOffset":5,"consumerOffset":3,"lastTimestamp":1700000000000,"pullOffset":3}}}`.
 * - INVOKE_BROKER_TO_RESET_OFFSET (222), header topic, group, timestamp (-1 = the max offset),
 *   isForce, optional queueId + offset (one queue to an exact offset). Per queue the offset found by
 *   time (when forced, or when it is behind the committed one) becomes the group's committed offset
 *   (and its pop offset), each online member gets RESET_CONSUMER_CLIENT_OFFSET (220) oneway with the
 *   ResetOffsetBody `{"offsetTable":{{"brokerName":"b","queueId":0,"topic":"t"}:5}}`, and the answer
 *   carries the same body; CONSUMER_NOT_ONLINE (206) when nobody is online (offsets are stored).
 */
import { createLogger } from '../common/logger.js';
import { RequestCode, ResponseCode } from '../remoting/codes.js';
import { createRequest, createResponse, markOneway, type RemotingCommand } from '../remoting/command.js';
import type { BrokerContext } from './broker-context.js';
import type { PopService } from './pop-service.js';
import { RequestError } from './request-error.js';
import { HeaderReader, stringFields } from './request-header.js';

const log = createLogger('consumer-control');

/** A MessageQueue as a fastjson map key (fields in fastjson's alphabetical order). */
function queueKeyJson(brokerName: string, queueId: number, topic: string): string {
  return `{"brokerName":${JSON.stringify(brokerName)},"queueId":${queueId},"topic":${JSON.stringify(topic)}}`;
}

export class ConsumerControlProcessor {
  constructor(
    private readonly ctx: BrokerContext,
    private readonly pops: PopService,
  ) {}

  consumeStats(request: RemotingCommand): RemotingCommand {
    const reader = new HeaderReader(request.extFields as Readonly<Record<string, unknown>>);
    const group = reader.name('consumerGroup');
    const onlyTopic = reader.optionalString('topic');
    const topics =
      onlyTopic !== undefined && onlyTopic.length > 0
        ? [onlyTopic]
        : [...new Set(this.ctx.offsets.offsetsOfGroup(group).map((entry) => entry.topic))];
    const { store } = this.ctx;
    const groupOnline = (this.ctx.consumers.group(group)?.subscriptions.size ?? 0) > 0;
    const entries: string[] = [];
    for (const topic of topics) {
      const config = this.ctx.topics.get(topic);
      if (config === undefined) continue;
      // RocketMQ skips topics an online group does not subscribe to.
      if (groupOnline && this.ctx.consumers.findSubscription(group, topic) === undefined && onlyTopic === undefined) {
        continue;
      }
      for (let queueId = 0; queueId < config.writeQueueNums; queueId++) {
        const brokerOffset = store.getMaxOffsetInQueue(topic, queueId);
        const consumerOffset = Math.max(0, this.ctx.offsets.query(group, topic, queueId));
        const lastTimestamp =
          consumerOffset > 0 ? Math.max(0, store.getMessageStoreTimestamp(topic, queueId, consumerOffset - 1)) : 0;
        const wrapper = JSON.stringify({ brokerOffset, consumerOffset, lastTimestamp, pullOffset: consumerOffset });
        entries.push(`${queueKeyJson(this.ctx.config.brokerName, queueId, topic)}:${wrapper}`);
      }
    }
    const body = `{"consumeTps":0.0,"offsetTable":{${entries.join(',')}}}`;
    return createResponse(request, ResponseCode.Success, undefined, {}, Buffer.from(body));
  }

  resetOffset(request: RemotingCommand): RemotingCommand {
    const reader = new HeaderReader(request.extFields as Readonly<Record<string, unknown>>);
    const topic = reader.string('topic');
    const group = reader.name('group');
    const timestampMs = reader.long('timestamp');
    const isForce = reader.bool('isForce', true);
    const onlyQueueId = reader.optionalInt('queueId') ?? -1;
    const exactOffset = reader.optionalLong('offset');
    const config = this.ctx.topics.get(topic);
    if (config === undefined) {
      throw new RequestError(
        ResponseCode.SystemError,
        `[reset-offset] reset offset failed, no topic in this broker. topic=${topic}`,
      );
    }
    const { store, offsets } = this.ctx;
    const table: [number, number][] = [];
    for (let queueId = 0; queueId < config.writeQueueNums; queueId++) {
      if (onlyQueueId >= 0 && queueId !== onlyQueueId) continue;
      const committed = offsets.query(group, topic, queueId);
      let target: number;
      if (onlyQueueId >= 0 && exactOffset !== undefined) target = exactOffset;
      else {
        target =
          timestampMs === -1
            ? store.getMaxOffsetInQueue(topic, queueId)
            : store.getOffsetInQueueByTime(topic, queueId, timestampMs);
        if (target < 0) target = 0;
        if (!isForce && committed >= 0 && target >= committed) target = committed;
      }
      offsets.commit(group, topic, queueId, target);
      this.pops.resetOffset(group, topic, queueId, target);
      table.push([queueId, target]);
    }
    const brokerName = this.ctx.config.brokerName;
    const body = Buffer.from(
      `{"offsetTable":{${table.map(([queueId, offset]) => `${queueKeyJson(brokerName, queueId, topic)}:${offset}`).join(',')}}}`,
    );
    const members = [...(this.ctx.consumers.group(group)?.channels.values() ?? [])].filter((m) => !m.channel.closed);
    if (members.length === 0) {
      return createResponse(
        request,
        ResponseCode.ConsumerNotOnline,
        `Consumer not online, so can not reset offset, Group: ${group} Topic: ${topic} Timestamp: ${timestampMs}`,
        {},
        body,
      );
    }
    for (const member of members) {
      try {
        const notice = createRequest(
          RequestCode.ResetConsumerClientOffset,
          stringFields({ topic, group, timestamp: timestampMs, isForce }),
          body,
        );
        member.channel.invokeOneway(markOneway(notice));
      } catch (err) {
        log.warn({ err, group, peer: member.channel.remoteAddress }, 'sending RESET_CONSUMER_CLIENT_OFFSET failed');
      }
    }
    return createResponse(request, ResponseCode.Success, undefined, {}, body);
  }
}
