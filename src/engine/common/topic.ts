import { ErrorCode, RbError } from './errors.js';
import { TOPIC_MAX_LENGTH } from './limits.js';

/** RocketMQ's topic rule: letters, digits, `%`, `-`, `_`, `|`, 1 to 127 characters. */
const TOPIC_PATTERN = /^[%|a-zA-Z0-9_-]+$/;

/** Returns a reason the topic name is invalid, or undefined when it is fine. */
export function topicNameProblem(topic: string): string | undefined {
  if (topic.length === 0) return 'topic name is empty';
  if (topic.length > TOPIC_MAX_LENGTH) return `topic name is longer than ${TOPIC_MAX_LENGTH} characters`;
  if (!TOPIC_PATTERN.test(topic)) return `topic name "${topic}" may only contain letters, digits, %, -, _ and |`;
  return undefined;
}

export function validateTopicName(topic: string): void {
  const problem = topicNameProblem(topic);
  if (problem !== undefined) throw new RbError(ErrorCode.TopicInvalid, problem);
}

/** System topics that clients may not send to directly. */
export const SCHEDULE_TOPIC = 'SCHEDULE_TOPIC_XXXX';
export const TRANS_HALF_TOPIC = 'RMQ_SYS_TRANS_HALF_TOPIC';
export const TRANS_OP_HALF_TOPIC = 'RMQ_SYS_TRANS_OP_HALF_TOPIC';
export const RETRY_GROUP_TOPIC_PREFIX = '%RETRY%';
export const DLQ_GROUP_TOPIC_PREFIX = '%DLQ%';
/** The topic producers name as template when they ask the broker to auto-create a topic. */
export const AUTO_CREATE_TOPIC_KEY_TOPIC = 'TBW102';

export function retryTopicOf(group: string): string {
  return RETRY_GROUP_TOPIC_PREFIX + group;
}
export function dlqTopicOf(group: string): string {
  return DLQ_GROUP_TOPIC_PREFIX + group;
}
