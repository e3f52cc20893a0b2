/**
 * Validation of tag expressions a client subscribes with (issue 4, docs/wire-formats.md): `*` or
 * empty, `a || b || c` of tags or word patterns. Rejected, with SUBSCRIPTION_PARSE_FAILED and a
 * remark naming the problem: an empty alternative (`a || || b`, a leading or trailing `||`), an
 * alternative containing whitespace, and a single `|`.
 */
import { ResponseCode } from '../remoting/codes.js';
import { RequestError } from './request-error.js';

/** A reason the expression is invalid, or undefined when it is fine. */
export function tagExpressionProblem(expression: string | undefined): string | undefined {
  const text = (expression ?? '').trim();
  if (text.length === 0 || text === '*') return undefined;
  const parts = text.split('||');
  for (const [index, raw] of parts.entries()) {
    const part = raw.trim();
    if (part.length === 0) return `tag expression "${text}" has an empty alternative at position ${index + 1}`;
    if (part.includes('|')) return `tag expression "${text}": a single "|" is not an operator (use "||")`;
    if (/\s/.test(part)) return `tag expression "${text}": alternative "${part}" contains whitespace`;
  }
  return undefined;
}

/** Throws SUBSCRIPTION_PARSE_FAILED for an invalid expression or an expression type other than TAG. */
export function checkSubscription(expression: string | undefined, expressionType = 'TAG'): void {
  if (expressionType.toUpperCase() !== 'TAG') {
    throw new RequestError(
      ResponseCode.SubscriptionParseFailed,
      `The broker does not support consumer to filter message by ${expressionType}`,
    );
  }
  const problem = tagExpressionProblem(expression);
  if (problem !== undefined) {
    throw new RequestError(
      ResponseCode.SubscriptionParseFailed,
      `parse the consumer's subscription failed: ${problem}`,
    );
  }
}
