/**
 * A consumer's subscription to one topic: the selector (tag expression), its validation at subscribe
 * time, the parsed filter and the heartbeat form.
 */
import { ErrorCode, RbError } from '../common/errors.js';
import { javaStringHashCode } from '../common/java-hash.js';
import { matchesTag, parseTagExpression, SUBSCRIBE_ALL, type TagFilter } from '../common/tag-expression.js';
import type { SubscriptionData } from './client-instance.js';
import type { MessageExt } from './message-ext.js';

/** RocketMQ's MessageSelector: only TAG expressions are served; SQL92 is rejected at subscribe. */
export interface MessageSelector {
  type: 'TAG' | 'SQL92';
  expression: string;
}

/** What subscribe accepts: a tag expression, or a selector object. */
export type SelectorInput = string | MessageSelector | undefined;

export interface Subscription {
  topic: string;
  expression: string;
  filter: TagFilter;
  /** Version of the subscription (RocketMQ uses the time it was made). */
  subVersion: number;
}

const WHITESPACE = /\s/;

/**
 * Checks a selector and returns its tag expression (trimmed; empty means `*`). Rejects what the
 * broker could not evaluate or would silently read differently: other expression types, empty
 * alternatives (`a || || b`, a leading or trailing `||`), alternatives with spaces and lone `|`.
 */
export function validateSelector(selector: SelectorInput): string {
  const { type, expression } =
    typeof selector === 'object' ? selector : { type: 'TAG' as const, expression: selector ?? '' };
  if (type !== 'TAG') {
    throw new RbError(ErrorCode.SubscriptionInvalid, `expression type ${String(type)} is not supported; use TAG`);
  }
  if (typeof expression !== 'string') {
    throw new RbError(ErrorCode.SubscriptionInvalid, 'the tag expression must be a string');
  }
  const text = expression.trim();
  if (text.length === 0 || text === SUBSCRIBE_ALL) return text;
  const alternatives = text.split('||').map((part) => part.trim());
  for (const part of alternatives) {
    if (part.length === 0) {
      throw new RbError(ErrorCode.SubscriptionInvalid, `tag expression "${text}" has an empty alternative`);
    }
    if (WHITESPACE.test(part)) {
      throw new RbError(ErrorCode.SubscriptionInvalid, `tag "${part}" in "${text}" contains whitespace`);
    }
    if (part.includes('|')) {
      throw new RbError(
        ErrorCode.SubscriptionInvalid,
        `tag "${part}" in "${text}" contains "|"; alternatives use "||"`,
      );
    }
    if (part.split('.').some((word) => word.length === 0)) {
      throw new RbError(ErrorCode.SubscriptionInvalid, `tag "${part}" in "${text}" has an empty word`);
    }
  }
  return text;
}

export function createSubscription(topic: string, selector: SelectorInput): Subscription {
  const filter = parseTagExpression(validateSelector(selector));
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
