/**
 * The JSON protocol of the WebSocket front end (docs/websocket.md): the shapes of every frame, a
 * strict validator for what clients send (unknown fields and types are refused, so typos surface
 * at once), and the binary frame layout. Pure functions only; the session decides what to do.
 *
 * Binary frames (both directions) carry one message with a raw body:
 *
 *   offset 0   uint32 big-endian  headerBytes (N)
 *   offset 4   N bytes            the JSON header, UTF-8 (a `produce` without body fields, or a
 *                                 `message` without body fields)
 *   offset 4+N the rest           the body bytes
 */
import { topicNameProblem } from '../../engine/common/topic.js';
import { WsError, WsErrorCode } from './errors.js';

export type RequestId = string | number;

export interface HelloRequest {
  type: 'hello';
  requestId?: RequestId;
  token?: string;
  username?: string;
  password?: string;
}

export interface ProduceRequest {
  type: 'produce';
  requestId: RequestId;
  topic: string;
  tag?: string;
  keys?: string[];
  properties?: Record<string, string>;
  /** The body as text (stored as its UTF-8 bytes). */
  body?: string;
  /** The body as base64. */
  bodyBase64?: string;
  delayMs?: number;
  deliverAt?: number;
}

export type StartPosition = 'last' | 'first' | 'timestamp' | 'offset';
export type BodyEncoding = 'auto' | 'base64' | 'binary';

export interface SubscribeRequest {
  type: 'subscribe';
  requestId: RequestId;
  subscriptionId?: string;
  topic: string;
  /** Tag expression: `*`, `a || b`, or word patterns with `*` and `#`. Default `*`. */
  tag?: string;
  group?: string;
  from?: StartPosition;
  /** With from = timestamp: ms since the epoch. */
  timestamp?: number;
  /** With from = offset: the queue offset to start at on every queue of the topic. */
  offset?: number;
  credit?: number;
  ackTimeoutMs?: number;
  bodyEncoding?: BodyEncoding;
}

export interface CreditRequest {
  type: 'credit';
  requestId?: RequestId;
  subscriptionId: string;
  credit: number;
}

export interface AckRequest {
  type: 'ack';
  requestId?: RequestId;
  messageId: string;
}

export interface NackRequest {
  type: 'nack';
  requestId?: RequestId;
  messageId: string;
  delayMs?: number;
}

export interface UnsubscribeRequest {
  type: 'unsubscribe';
  requestId?: RequestId;
  subscriptionId: string;
}

export interface PingRequest {
  type: 'ping';
  requestId?: RequestId;
}

export type ClientFrame =
  | HelloRequest
  | ProduceRequest
  | SubscribeRequest
  | CreditRequest
  | AckRequest
  | NackRequest
  | UnsubscribeRequest
  | PingRequest;

/** A `message` frame without its body fields. */
export interface MessageHeader {
  type: 'message';
  subscriptionId: string;
  /** Receipt id for ack/nack, unique on the connection. */
  messageId: string;
  /** The engine's message id (RocketMQ UNIQ_KEY). */
  msgId: string;
  topic: string;
  tag?: string;
  keys: string[];
  properties: Record<string, string>;
  redelivered: boolean;
  reconsumeTimes: number;
  queueId: number;
  queueOffset: number;
  bornTimestamp: number;
  storeTimestamp: number;
}

export interface MessageFrame extends MessageHeader {
  body?: string;
  bodyBase64?: string;
}

/** Longest accepted requestId / subscriptionId / messageId / token texts. */
export const MAX_ID_CHARS = 128;
/** RocketMQ group names: letters, digits, `%`, `|`, `-`, `_`, at most 255 characters. */
const GROUP_PATTERN = /^[%|a-zA-Z0-9_-]{1,255}$/;
const SUBSCRIPTION_ID_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;
const BASE64_PATTERN = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** Characters RocketMQ's property encoding uses as separators, and other controls. */
// eslint-disable-next-line no-control-regex
const CONTROL_PATTERN = /[\u0000-\u001f\u007f]/;
/** RocketMQ's property separators: a value with one would split into other properties. */
// eslint-disable-next-line no-control-regex
const SEPARATOR_PATTERN = /[\u0001\u0002]/;
/** The latest deliverAt / longest delay accepted: RocketMQ timers reach about 40 days by default. */
export const MAX_DELAY_MS = 40 * 24 * 3600 * 1000;
export const MAX_KEYS = 64;

const FIELDS: Record<ClientFrame['type'], readonly string[]> = {
  hello: ['requestId', 'token', 'username', 'password'],
  produce: ['requestId', 'topic', 'tag', 'keys', 'properties', 'body', 'bodyBase64', 'delayMs', 'deliverAt'],
  subscribe: [
    'requestId',
    'subscriptionId',
    'topic',
    'tag',
    'group',
    'from',
    'timestamp',
    'offset',
    'credit',
    'ackTimeoutMs',
    'bodyEncoding',
  ],
  credit: ['requestId', 'subscriptionId', 'credit'],
  ack: ['requestId', 'messageId'],
  nack: ['requestId', 'messageId', 'delayMs'],
  unsubscribe: ['requestId', 'subscriptionId'],
  ping: ['requestId'],
};

function bad(message: string): WsError {
  return new WsError(WsErrorCode.BadRequest, message);
}

/** Reads fields off one parsed frame, throwing WsError(BadRequest) naming the field on a wrong type. */
class FieldReader {
  constructor(
    private readonly frame: Record<string, unknown>,
    private readonly type: string,
  ) {}

  has(name: string): boolean {
    return this.frame[name] !== undefined;
  }

  raw(name: string): unknown {
    return this.frame[name];
  }

  optionalString(name: string, maxChars: number): string | undefined {
    const value = this.frame[name];
    if (value === undefined) return undefined;
    if (typeof value !== 'string') throw bad(`${this.type}.${name} must be a string`);
    if (value.length > maxChars) throw bad(`${this.type}.${name} is longer than ${maxChars} characters`);
    return value;
  }

  string(name: string, maxChars: number): string {
    const value = this.optionalString(name, maxChars);
    if (value === undefined) throw bad(`${this.type}.${name} is required`);
    return value;
  }

  optionalInteger(name: string, min: number, max: number): number | undefined {
    const value = this.frame[name];
    if (value === undefined) return undefined;
    if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
      throw bad(`${this.type}.${name} must be an integer`);
    }
    if (value < min || value > max) throw bad(`${this.type}.${name} must be ${min}..${max}, not ${value}`);
    return value;
  }

  requestId(required: boolean): RequestId | undefined {
    const value = this.frame['requestId'];
    if (value === undefined) {
      if (required) throw bad(`${this.type}.requestId is required`);
      return undefined;
    }
    if (typeof value === 'string' && value.length > 0 && value.length <= MAX_ID_CHARS) return value;
    if (typeof value === 'number' && Number.isSafeInteger(value)) return value;
    throw bad(`${this.type}.requestId must be a non-empty string (at most ${MAX_ID_CHARS} characters) or an integer`);
  }
}

/** The requestId of a frame, if it has a usable one (for error replies to frames that fail validation). */
export function requestIdOf(frame: unknown): RequestId | undefined {
  if (frame === null || typeof frame !== 'object') return undefined;
  const value = (frame as Record<string, unknown>)['requestId'];
  if (typeof value === 'string' && value.length > 0 && value.length <= MAX_ID_CHARS) return value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return value;
  return undefined;
}

/** Parses a text frame's JSON; throws WsError(BadJson). */
export function parseJsonObject(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new WsError(WsErrorCode.BadJson, 'frame is not valid JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new WsError(WsErrorCode.BadJson, 'frame must be a JSON object');
  }
  return value as Record<string, unknown>;
}

/**
 * Validates a parsed frame. `binaryBody` says the body comes from a binary frame, so the JSON must
 * not carry one. Throws WsError (UnknownType, BadRequest, TopicInvalid).
 */
export function validateClientFrame(frame: Record<string, unknown>, binaryBody = false): ClientFrame {
  const type = frame['type'];
  if (typeof type !== 'string') throw bad('frame.type is required and must be a string');
  if (!Object.hasOwn(FIELDS, type)) {
    throw new WsError(WsErrorCode.UnknownType, `unknown frame type ${JSON.stringify(type.slice(0, 64))}`);
  }
  const kind = type as ClientFrame['type'];
  const allowed = FIELDS[kind];
  for (const name of Object.keys(frame)) {
    if (name !== 'type' && !allowed.includes(name)) throw bad(`${kind} has an unknown field ${JSON.stringify(name)}`);
  }
  if (binaryBody && kind !== 'produce') throw new WsError(WsErrorCode.BadFrame, 'binary frames carry produce only');
  const read = new FieldReader(frame, kind);
  switch (kind) {
    case 'hello':
      return validateHello(read);
    case 'produce':
      return validateProduce(read, frame, binaryBody);
    case 'subscribe':
      return validateSubscribe(read);
    case 'credit': {
      const request: CreditRequest = {
        type: 'credit',
        subscriptionId: subscriptionIdOf(read),
        credit: creditOf(frame['credit']),
      };
      return withRequestId(request, read.requestId(false));
    }
    case 'ack':
      return withRequestId<AckRequest>(
        { type: 'ack', messageId: read.string('messageId', MAX_ID_CHARS) },
        read.requestId(false),
      );
    case 'nack': {
      const request: NackRequest = { type: 'nack', messageId: read.string('messageId', MAX_ID_CHARS) };
      const delayMs = read.optionalInteger('delayMs', 0, MAX_DELAY_MS);
      if (delayMs !== undefined) request.delayMs = delayMs;
      return withRequestId(request, read.requestId(false));
    }
    case 'unsubscribe':
      return withRequestId<UnsubscribeRequest>(
        { type: 'unsubscribe', subscriptionId: subscriptionIdOf(read) },
        read.requestId(false),
      );
    case 'ping':
      return withRequestId<PingRequest>({ type: 'ping' }, read.requestId(false));
  }
}

function withRequestId<T extends { requestId?: RequestId }>(request: T, requestId: RequestId | undefined): T {
  if (requestId !== undefined) request.requestId = requestId;
  return request;
}

function subscriptionIdOf(read: FieldReader): string {
  const id = read.string('subscriptionId', 64);
  if (!SUBSCRIPTION_ID_PATTERN.test(id)) throw bad('subscriptionId must be 1..64 of A-Z a-z 0-9 _ . : -');
  return id;
}

/** Credit is checked apart from other integers: its errors have their own code. */
function creditOf(value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new WsError(WsErrorCode.CreditInvalid, `credit must be a whole number >= 0, not ${String(value)}`);
  }
  return value;
}

function validateHello(read: FieldReader): HelloRequest {
  const request: HelloRequest = { type: 'hello' };
  const token = read.optionalString('token', 1024);
  const username = read.optionalString('username', 256);
  const password = read.optionalString('password', 1024);
  if (token !== undefined && (username !== undefined || password !== undefined)) {
    throw bad('hello takes a token or a username and password, not both');
  }
  if ((username === undefined) !== (password === undefined)) throw bad('hello.username and hello.password go together');
  if (token !== undefined) request.token = token;
  if (username !== undefined) request.username = username;
  if (password !== undefined) request.password = password;
  return withRequestId(request, read.requestId(false));
}

function topicOf(read: FieldReader): string {
  const topic = read.string('topic', 256);
  const problem = topicNameProblem(topic);
  if (problem !== undefined) throw new WsError(WsErrorCode.TopicInvalid, problem);
  return topic;
}

function validateProduce(read: FieldReader, frame: Record<string, unknown>, binaryBody: boolean): ProduceRequest {
  const request: ProduceRequest = {
    type: 'produce',
    requestId: read.requestId(true) as RequestId,
    topic: topicOf(read),
  };
  const tag = read.optionalString('tag', 1024);
  if (tag !== undefined) {
    if (tag.length === 0 || CONTROL_PATTERN.test(tag) || /[*#]|\|\|/.test(tag) || tag.trim() !== tag) {
      throw bad('produce.tag must be non-empty, without control characters, `*`, `#`, `||` or outer spaces');
    }
    request.tag = tag;
  }
  const keys = frame['keys'];
  if (keys !== undefined) {
    if (!Array.isArray(keys) || keys.length > MAX_KEYS)
      throw bad(`produce.keys must be an array of at most ${MAX_KEYS} strings`);
    for (const key of keys) {
      if (
        typeof key !== 'string' ||
        key.length === 0 ||
        key.length > 1024 ||
        /\s/.test(key) ||
        CONTROL_PATTERN.test(key)
      ) {
        throw bad('produce.keys must be non-empty strings without whitespace or control characters');
      }
    }
    request.keys = keys as string[];
  }
  const properties = frame['properties'];
  if (properties !== undefined) {
    if (properties === null || typeof properties !== 'object' || Array.isArray(properties)) {
      throw bad('produce.properties must be an object of string values');
    }
    for (const [name, value] of Object.entries(properties)) {
      if (name.length === 0 || CONTROL_PATTERN.test(name))
        throw bad('property names must be non-empty, without control characters');
      if (typeof value !== 'string') throw bad(`property ${JSON.stringify(name)} must have a string value`);
      if (SEPARATOR_PATTERN.test(value)) throw bad(`property ${JSON.stringify(name)} contains \\u0001 or \\u0002`);
    }
    request.properties = properties as Record<string, string>;
  }
  const body = read.optionalString('body', Number.MAX_SAFE_INTEGER);
  const bodyBase64 = read.optionalString('bodyBase64', Number.MAX_SAFE_INTEGER);
  if (binaryBody) {
    if (body !== undefined || bodyBase64 !== undefined) {
      throw bad('a binary produce frame carries its body after the header, not in body/bodyBase64');
    }
  } else {
    if ((body === undefined) === (bodyBase64 === undefined))
      throw bad('produce needs exactly one of body and bodyBase64');
    if (body !== undefined) request.body = body;
    if (bodyBase64 !== undefined) {
      if (!BASE64_PATTERN.test(bodyBase64)) throw bad('produce.bodyBase64 is not valid base64');
      request.bodyBase64 = bodyBase64;
    }
  }
  const delayMs = read.optionalInteger('delayMs', 0, MAX_DELAY_MS);
  const deliverAt = read.optionalInteger('deliverAt', 0, Number.MAX_SAFE_INTEGER);
  if (delayMs !== undefined && deliverAt !== undefined) throw bad('produce takes delayMs or deliverAt, not both');
  if (deliverAt !== undefined && deliverAt > Date.now() + MAX_DELAY_MS) {
    throw bad(`produce.deliverAt is more than ${MAX_DELAY_MS} ms ahead`);
  }
  if (delayMs !== undefined) request.delayMs = delayMs;
  if (deliverAt !== undefined) request.deliverAt = deliverAt;
  return request;
}

const POSITIONS: readonly StartPosition[] = ['last', 'first', 'timestamp', 'offset'];
const ENCODINGS: readonly BodyEncoding[] = ['auto', 'base64', 'binary'];

function validateSubscribe(read: FieldReader): SubscribeRequest {
  const request: SubscribeRequest = {
    type: 'subscribe',
    requestId: read.requestId(true) as RequestId,
    topic: topicOf(read),
  };
  if (read.has('subscriptionId')) request.subscriptionId = subscriptionIdOf(read);
  const tag = read.optionalString('tag', 4096);
  if (tag !== undefined) {
    if (tag.trim().length === 0 || CONTROL_PATTERN.test(tag))
      throw bad('subscribe.tag must be a non-empty tag expression');
    request.tag = tag;
  }
  const group = read.optionalString('group', 255);
  if (group !== undefined) {
    if (!GROUP_PATTERN.test(group)) throw bad('subscribe.group must be 1..255 of A-Z a-z 0-9 % | - _');
    request.group = group;
  }
  const from = read.optionalString('from', 16);
  if (from !== undefined) {
    if (!POSITIONS.includes(from as StartPosition)) throw bad(`subscribe.from must be one of ${POSITIONS.join(', ')}`);
    request.from = from as StartPosition;
  }
  const timestamp = read.optionalInteger('timestamp', 0, Number.MAX_SAFE_INTEGER);
  const offset = read.optionalInteger('offset', 0, Number.MAX_SAFE_INTEGER);
  if ((request.from === 'timestamp') !== (timestamp !== undefined)) {
    throw bad('subscribe.timestamp goes with from = "timestamp", and only with it');
  }
  if ((request.from === 'offset') !== (offset !== undefined)) {
    throw bad('subscribe.offset goes with from = "offset", and only with it');
  }
  if (timestamp !== undefined) request.timestamp = timestamp;
  if (offset !== undefined) request.offset = offset;
  if (read.has('credit')) request.credit = creditOf(read.raw('credit'));
  const ackTimeoutMs = read.optionalInteger('ackTimeoutMs', 1000, 12 * 3600 * 1000);
  if (ackTimeoutMs !== undefined) request.ackTimeoutMs = ackTimeoutMs;
  const encoding = read.optionalString('bodyEncoding', 16);
  if (encoding !== undefined) {
    if (!ENCODINGS.includes(encoding as BodyEncoding))
      throw bad(`subscribe.bodyEncoding must be one of ${ENCODINGS.join(', ')}`);
    request.bodyEncoding = encoding as BodyEncoding;
  }
  return request;
}

/** Splits a binary frame into its JSON header and body; throws WsError(BadFrame). */
export function decodeBinaryFrame(frame: Buffer): { header: Record<string, unknown>; body: Buffer } {
  if (frame.length < 4) throw new WsError(WsErrorCode.BadFrame, 'binary frame shorter than its 4-byte header length');
  const headerBytes = frame.readUInt32BE(0);
  if (headerBytes === 0 || headerBytes > frame.length - 4) {
    throw new WsError(WsErrorCode.BadFrame, `binary frame header length ${headerBytes} does not fit the frame`);
  }
  let header: Record<string, unknown>;
  try {
    header = parseJsonObject(frame.toString('utf8', 4, 4 + headerBytes));
  } catch (err) {
    throw new WsError(WsErrorCode.BadFrame, `binary frame header: ${(err as Error).message}`);
  }
  return { header, body: frame.subarray(4 + headerBytes) };
}

/** Builds a binary frame: header length, JSON header, body. */
export function encodeBinaryFrame(header: object, body: Buffer): Buffer {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const frame = Buffer.allocUnsafe(4 + json.length + body.length);
  frame.writeUInt32BE(json.length, 0);
  json.copy(frame, 4);
  body.copy(frame, 4 + json.length);
  return frame;
}
