/**
 * The HEART_BEAT body (HeartbeatData.java, ProducerData, ConsumerData, SubscriptionData), parsed
 * leniently: Java clients send fastjson output, ali-ons JSON.stringify, the Go client encoding/json.
 * Anything malformed is a RequestError naming the field; unknown fields are ignored.
 */
import { ResponseCode } from '../remoting/codes.js';
import { parseTagExpression, type TagFilter } from '../common/tag-expression.js';
import { parseLenientJson } from './lenient-json.js';
import { RequestError } from './request-error.js';
import { tagExpressionProblem } from './subscription-check.js';

export interface SubscriptionData {
  topic: string;
  subString: string;
  tagsSet: string[];
  codeSet: number[];
  /** Exact: Java clients send milliseconds, the Go client nanoseconds (beyond 2^53). */
  subVersion: bigint;
  /** TAG or SQL92. */
  expressionType: string;
  classFilterMode: boolean;
  /** The parsed subString (ours, not on the wire). */
  filter: TagFilter;
}

export interface ConsumerData {
  groupName: string;
  /** CONSUME_ACTIVELY (pull) or CONSUME_PASSIVELY (push). */
  consumeType: string;
  /** CLUSTERING or BROADCASTING. */
  messageModel: string;
  consumeFromWhere: string;
  subscriptionDataSet: SubscriptionData[];
  unitMode: boolean;
}

export interface HeartbeatData {
  clientID: string;
  producerDataSet: { groupName: string }[];
  consumerDataSet: ConsumerData[];
}

function fail(message: string): RequestError {
  return new RequestError(ResponseCode.SystemError, `bad heartbeat body: ${message}`);
}

function asObject(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw fail(`${what} is not an object`);
  return value as Record<string, unknown>;
}

function asArray(value: unknown, what: string): unknown[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw fail(`${what} is not an array`);
  return value;
}

function asName(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.trim().length === 0) throw fail(`${what} is missing`);
  return value;
}

function asText(value: unknown, fallback: string): string {
  return typeof value === 'string' && value.length > 0 ? value : fallback;
}

/** Sets in fastjson and encoding/json output are arrays; the Go client may send null. */
function asList<T>(value: unknown, predicate: (item: unknown) => item is T): T[] {
  return Array.isArray(value) ? value.filter(predicate) : [];
}

/** subVersion arrives as a string (see quoteSubVersions) or a number; anything else counts as 0. */
function exactInteger(value: unknown): bigint {
  if (typeof value === 'string' && /^-?\d{1,19}$/.test(value)) return BigInt(value);
  if (typeof value === 'number' && Number.isFinite(value)) return BigInt(Math.trunc(value));
  return 0n;
}

/**
 * JSON.parse would round a nanosecond subVersion to a double, and a pull carrying the exact value
 * would then look newer than the heartbeat's forever; so the digits are turned into a string first.
 */
function quoteSubVersions(text: string): string {
  return text.replace(/([{,]\s*(?:"subVersion"|subVersion)\s*:\s*)(-?\d+)/g, '$1"$2"');
}

export function parseSubscriptionData(raw: unknown, what: string): SubscriptionData {
  const object = asObject(raw, what);
  const subString = asText(object['subString'], '*');
  const expressionType = asText(object['expressionType'], 'TAG').toUpperCase();
  const problem = expressionType === 'TAG' ? tagExpressionProblem(subString) : undefined;
  if (problem !== undefined) {
    throw new RequestError(
      ResponseCode.SubscriptionParseFailed,
      `parse the consumer's subscription failed: ${problem}`,
    );
  }
  return {
    topic: asName(object['topic'], `${what}.topic`),
    subString,
    tagsSet: asList(object['tagsSet'], (item): item is string => typeof item === 'string'),
    codeSet: asList(object['codeSet'], (item): item is number => typeof item === 'number'),
    subVersion: exactInteger(object['subVersion']),
    expressionType,
    classFilterMode: object['classFilterMode'] === true,
    filter: parseTagExpression(subString),
  };
}

export function parseHeartbeatData(body: Buffer | undefined): HeartbeatData {
  if (body === undefined || body.length === 0) throw fail('the body is empty');
  let parsed: unknown;
  try {
    parsed = parseLenientJson(quoteSubVersions(body.toString('utf8')));
  } catch {
    throw fail('the body is not JSON');
  }
  const object = asObject(parsed, 'the body');
  const clientID = asName(object['clientID'], 'clientID');
  const producerDataSet = asArray(object['producerDataSet'], 'producerDataSet').map((item, i) => ({
    groupName: asName(asObject(item, `producerDataSet[${i}]`)['groupName'], `producerDataSet[${i}].groupName`),
  }));
  const consumerDataSet = asArray(object['consumerDataSet'], 'consumerDataSet').map((item, i): ConsumerData => {
    const what = `consumerDataSet[${i}]`;
    const consumer = asObject(item, what);
    return {
      groupName: asName(consumer['groupName'], `${what}.groupName`),
      consumeType: asText(consumer['consumeType'], 'CONSUME_PASSIVELY'),
      messageModel: asText(consumer['messageModel'], 'CLUSTERING'),
      consumeFromWhere: asText(consumer['consumeFromWhere'], 'CONSUME_FROM_LAST_OFFSET'),
      subscriptionDataSet: asArray(consumer['subscriptionDataSet'], `${what}.subscriptionDataSet`).map((sub, j) =>
        parseSubscriptionData(sub, `${what}.subscriptionDataSet[${j}]`),
      ),
      unitMode: consumer['unitMode'] === true,
    };
  });
  return { clientID, producerDataSet, consumerDataSet };
}
