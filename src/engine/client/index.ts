/**
 * The engine client's public API: producers and consumers that speak RocketMQ remoting to a
 * NameServer and brokers (ours or Apache RocketMQ), over TCP or in process.
 */
export { applyDelay, encodeBatch, MAX_DELAY_LEVEL, Producer } from './producer.js';
export type { ProducerOptions, SendOptions, SendResult, SendStatus } from './producer.js';
export { commitLogOffsetOf, TransactionProducer } from './transaction-producer.js';
export type {
  LocalTransactionExecutor,
  LocalTransactionState,
  TransactionCheckListener,
  TransactionProducerOptions,
  TransactionSendResult,
} from './transaction-producer.js';
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
export { SimpleConsumer } from './simple-consumer.js';
export type { ReceivedMessage, SimpleConsumerOptions } from './simple-consumer.js';
export { formatReceiptHandle, parseReceiptHandle } from './pop-api.js';
export type { ReceiptHandle } from './pop-api.js';
export { AdminClient } from './admin-client.js';
export type { AdminClientOptions, BrokerSummary, QueueLag } from './admin-client.js';
export { decodeResetOffsetBody } from './reset-offset-body.js';
export type { QueueOffset } from './reset-offset-body.js';
export { validateSelector } from './subscription.js';
export type { MessageSelector, SelectorInput } from './subscription.js';
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
