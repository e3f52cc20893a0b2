/**
 * The engine client's public API: producers and consumers that speak RocketMQ 4.x remoting to a
 * NameServer and brokers (ours or Apache RocketMQ), over TCP or in process.
 */
export { Producer, encodeBatch } from './producer.js';
export type { ProducerOptions, SendOptions, SendResult, SendStatus } from './producer.js';
export { PushConsumer } from './push-consumer.js';
export type {
  ConsumeFromWhere,
  ConsumeResult,
  MessageHandler,
  MessageModel,
  PushConsumerOptions,
} from './push-consumer.js';
export { PullConsumer } from './pull-consumer.js';
export type { PullConsumerOptions, PullOptions } from './pull-consumer.js';
export type { PullResult, PullStatus } from './broker-api.js';
export type { MessageExt } from './message-ext.js';
export { decodePulledMessages, SYSTEM_PROPERTY_NAMES, userPropertiesOf } from './message-ext.js';
export type { MessageQueue, TopicRouteData } from './route.js';
export { queueKey } from './route.js';
export { allocateAveragely } from './allocate.js';
export { createUniqueMessageId } from './message-id.js';
export type { Transport } from './transport.js';
export { RemoteTransport } from './transport-remote.js';
export type { RemoteTransportOptions } from './transport-remote.js';
export { InProcessNetwork, InProcessTransport } from './transport-in-process.js';
export type { InProcessTransportOptions } from './transport-in-process.js';
export type { Message } from '../common/message.js';
