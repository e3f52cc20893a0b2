/** A consumer's subscription to one topic: tag expression, parsed filter and the heartbeat form. */
import { javaStringHashCode } from '../common/java-hash.js';
import { matchesTag, parseTagExpression, type TagFilter } from '../common/tag-expression.js';
import type { SubscriptionData } from './client-instance.js';
import type { MessageExt } from './message-ext.js';

export interface Subscription {
  topic: string;
  expression: string;
  filter: TagFilter;
  /** Version of the subscription (RocketMQ uses the time it was made). */
  subVersion: number;
}

export function createSubscription(topic: string, tagExpression: string | undefined): Subscription {
  const filter = parseTagExpression(tagExpression);
  return { topic, expression: filter.expression, filter, subVersion: Date.now() };
}

/** SubscriptionData for heartbeats (FilterAPI.buildSubscriptionData). */
export function subscriptionData(subscription: Subscription): SubscriptionData {
  const tags = subscription.filter.matchesAll
    ? []
    : subscription.expression
        .split('||')
        .map((tag) => tag.trim())
        .filter((tag) => tag.length > 0);
  return {
    topic: subscription.topic,
    subString: subscription.expression,
    tagsSet: tags,
    codeSet: tags.map((tag) => javaStringHashCode(tag)),
    subVersion: subscription.subVersion,
    expressionType: 'TAG',
    classFilterMode: false,
  };
}

/** The client-side tag check after a pull (the broker only compares tag hash codes). */
export function matchesSubscription(subscription: Subscription, message: MessageExt): boolean {
  return matchesTag(subscription.filter, message.tags);
}
