/**
 * HEART_BEAT (34) and UNREGISTER_CLIENT (35), after RocketMQ's ClientManageProcessor: a heartbeat
 * registers the client's channel in each producer and consumer group it names, with the consumers'
 * subscriptions, and creates each consumer group's %RETRY% topic (one queue).
 */
import { createLogger } from '../common/logger.js';
import { retryTopicOf, topicNameProblem } from '../common/topic.js';
import type { RemotingChannel } from '../remoting/channel.js';
import { ResponseCode } from '../remoting/codes.js';
import { createResponse, type RemotingCommand } from '../remoting/command.js';
import type { BrokerContext } from './broker-context.js';
import type { ClientChannelInfo } from './client-channel.js';
import { parseHeartbeatData } from './heartbeat-data.js';
import { HeaderReader } from './request-header.js';
import { PERM_READ_WRITE } from './topic-config-manager.js';

/** RocketMQ subscriptionGroupConfig.retryQueueNums. */
const RETRY_QUEUE_NUMS = 1;

const log = createLogger('client-manage');

export class ClientManageProcessor {
  constructor(
    private readonly ctx: BrokerContext,
    /** Called once per channel the first time it registers, so the broker can watch it close. */
    private readonly watchChannel: (channel: RemotingChannel) => void,
  ) {}

  async heartbeat(request: RemotingCommand, channel: RemotingChannel): Promise<RemotingCommand> {
    const data = parseHeartbeatData(request.body);
    const info = (): ClientChannelInfo => ({
      channel,
      clientId: data.clientID,
      language: request.language,
      version: request.version,
      lastUpdateMs: Date.now(),
    });
    this.watchChannel(channel);
    // The retry topics enter the table (and the groups register) at once, in request order; the
    // answer waits until topics.json is durable, as it did when the write was synchronous.
    const durable: Promise<unknown>[] = [];
    for (const consumer of data.consumerDataSet) {
      const retryTopic = retryTopicOf(consumer.groupName);
      // Group names follow the topic rule (RocketMQ Validators.checkGroup); a group that breaks it
      // still joins, but gets no retry topic, since that name could not be routed or stored.
      const problem = topicNameProblem(retryTopic);
      if (problem === undefined)
        durable.push(this.ctx.topics.ensureInternal(retryTopic, RETRY_QUEUE_NUMS, PERM_READ_WRITE));
      else log.debug({ group: consumer.groupName, problem }, 'no retry topic for a badly named group');
      this.ctx.consumers.register(consumer, info());
    }
    for (const producer of data.producerDataSet) this.ctx.producers.register(producer.groupName, info());
    await Promise.all(durable);
    return createResponse(request, ResponseCode.Success);
  }

  unregisterClient(request: RemotingCommand, channel: RemotingChannel): RemotingCommand {
    const header = new HeaderReader(request.extFields as Readonly<Record<string, unknown>>);
    header.name('clientID');
    const producerGroup = header.optionalString('producerGroup');
    const consumerGroup = header.optionalString('consumerGroup');
    if (producerGroup !== undefined && producerGroup.length > 0) this.ctx.producers.unregister(producerGroup, channel);
    if (consumerGroup !== undefined && consumerGroup.length > 0) this.ctx.consumers.unregister(consumerGroup, channel);
    return createResponse(request, ResponseCode.Success);
  }
}
