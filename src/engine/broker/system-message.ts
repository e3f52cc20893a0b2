/**
 * Helpers for messages the broker re-stores itself (delayed, timer, retry, transaction commit): a
 * stored message becomes a new MessageToStore with its topic, queue and properties changed, and the
 * store's own record checksum property dropped (the store appends a fresh one).
 */
import type { MessageToStore, StoredMessage } from '../common/message.js';
import { MessageProperty, type Properties } from '../common/properties.js';
import type { TopicConfigManager } from './topic-config-manager.js';
import { PERM_READ_WRITE } from './topic-config-manager.js';

/** The properties of a stored message without the store-owned checksum. */
export function userProperties(message: StoredMessage): Properties {
  const properties = { ...message.properties };
  delete properties[MessageProperty.RecordCrc32];
  return properties;
}

/** A copy of a stored message bound for another topic and queue. */
export function restoreAs(
  message: StoredMessage,
  topic: string,
  queueId: number,
  properties: Properties,
  overrides: Partial<MessageToStore> = {},
): MessageToStore {
  return {
    topic,
    queueId,
    flag: message.flag,
    body: message.body,
    properties,
    sysFlag: message.sysFlag,
    bornTimestamp: message.bornTimestamp,
    bornHost: message.bornHost,
    reconsumeTimes: message.reconsumeTimes,
    preparedTransactionOffset: message.preparedTransactionOffset,
    ...overrides,
  };
}

/** RocketMQ KeyBuilder.buildPopRetryTopic: where a pop group's revived messages of `topic` go. */
export function popRetryTopicOf(group: string, topic: string): string {
  return `%RETRY%${group}_${topic}`;
}

/** Makes sure a broker-written topic with one queue exists (retry, DLQ). */
export function ensureInternalTopic(topics: TopicConfigManager, topic: string): void {
  topics.createInternal(topic, 1, PERM_READ_WRITE);
}
