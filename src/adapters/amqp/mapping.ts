/**
 * How AMQP names and messages map onto the engine's canonical message (design.md section 3).
 *
 * Names. An exchange is a topic and a queue is a consumer group. RocketMQ names allow only
 * letters, digits, `%`, `-`, `_` and `|`, so other characters (AMQP names often hold `.`) are
 * written as `%XX` (upper-case hex of each UTF-8 byte); `%` itself becomes `%25`. An exchange made
 * only of allowed characters keeps its name: exchange `orders` is topic `orders`. The default
 * exchange `""` is topic `AMQP_DEFAULT%` (a trailing lone `%` is never produced by the encoding,
 * so no declared exchange can collide with it). Queue `q` is group `AMQP_QUEUE_` + encoded `q`.
 *
 * Messages. The routing key is the tag (an empty key means no tag); the body is the body. Every
 * content-header property travels as a message property in the reserved `amqp.` namespace:
 *
 *   amqp.content-type  amqp.content-encoding  amqp.delivery-mode  amqp.priority
 *   amqp.correlation-id  amqp.reply-to  amqp.expiration  amqp.message-id  amqp.timestamp (seconds)
 *   amqp.type  amqp.user-id  amqp.app-id  amqp.cluster-id
 *   amqp.headers     the headers table, exact (base64 of its AMQP encoding), for AMQP consumers
 *   amqp.empty-body  "1" when the AMQP body was empty (the engine refuses empty bodies, so one
 *                    zero byte is stored instead and dropped again on delivery)
 *   amqp.rejected-by queues that refused the publish (x-overflow reject-publish); not delivered
 *
 * Headers are also copied one by one as plain properties when the value is a string, number or
 * boolean and the name is neither reserved (`amqp.` prefix, RocketMQ system names) nor contains
 * the property separators, so MQTT 5, WebSocket and RocketMQ consumers see them. A message that
 * did not come from AMQP (no `amqp.headers`) is delivered with its user properties as headers.
 * The message-id also becomes the message key, so RocketMQ tools can look it up.
 */
import type { Message, MessageExt } from '../../engine/client/index.js';
import { SYSTEM_PROPERTY_NAMES } from '../../engine/client/index.js';
import type { Properties } from '../../engine/common/properties.js';
import type { BasicProperties } from './content-header.js';
import { encodeFieldTable, readFieldTable, type FieldTable, type FieldValue, FieldTyped } from './field-table.js';

/** Prefix of every property name the AMQP front end reserves. */
export const AMQP_PROPERTY_PREFIX = 'amqp.';

export const AmqpProperty = {
  ContentType: 'amqp.content-type',
  ContentEncoding: 'amqp.content-encoding',
  Headers: 'amqp.headers',
  DeliveryMode: 'amqp.delivery-mode',
  Priority: 'amqp.priority',
  CorrelationId: 'amqp.correlation-id',
  ReplyTo: 'amqp.reply-to',
  Expiration: 'amqp.expiration',
  MessageId: 'amqp.message-id',
  Timestamp: 'amqp.timestamp',
  Type: 'amqp.type',
  UserId: 'amqp.user-id',
  AppId: 'amqp.app-id',
  ClusterId: 'amqp.cluster-id',
  EmptyBody: 'amqp.empty-body',
  /**
   * Queues (encoded names, comma-separated) that refused the message under x-overflow
   * reject-publish: they skip it, other queues bound to the exchange receive it.
   */
  RejectedBy: 'amqp.rejected-by',
} as const;

/** The topic of the default exchange `""`. */
export const DEFAULT_EXCHANGE_TOPIC = 'AMQP_DEFAULT%';
/** Prefix of the consumer group that backs a queue. */
export const QUEUE_GROUP_PREFIX = 'AMQP_QUEUE_';

const PLAIN_NAME = /^[a-zA-Z0-9_-]*$/;
const SAFE_BYTE = /[a-zA-Z0-9_-]/;

/** Encode an AMQP name into RocketMQ's topic/group alphabet (see the module comment). */
export function encodeName(name: string): string {
  if (PLAIN_NAME.test(name)) return name;
  let out = '';
  for (const byte of Buffer.from(name, 'utf8')) {
    const char = String.fromCharCode(byte);
    out += byte < 0x80 && SAFE_BYTE.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Inverse of encodeName; a name that is not a valid encoding comes back unchanged. */
export function decodeName(encoded: string): string {
  if (!encoded.includes('%')) return encoded;
  const bytes: number[] = [];
  for (let i = 0; i < encoded.length; i++) {
    const char = encoded[i] as string;
    const hex = encoded.slice(i + 1, i + 3);
    if (char === '%' && /^[0-9A-F]{2}$/.test(hex)) {
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(char, 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

export function topicOfExchange(exchange: string): string {
  return exchange === '' ? DEFAULT_EXCHANGE_TOPIC : encodeName(exchange);
}

export function exchangeOfTopic(topic: string): string {
  return topic === DEFAULT_EXCHANGE_TOPIC ? '' : decodeName(topic);
}

export function groupOfQueue(queue: string): string {
  return QUEUE_GROUP_PREFIX + encodeName(queue);
}

/** What basic.publish produced: exchange, routing key, content properties and body. */
export interface AmqpContent {
  exchange: string;
  routingKey: string;
  properties: BasicProperties;
  body: Buffer;
}

const STRING_FIELDS: readonly [keyof BasicProperties, string][] = [
  ['contentType', AmqpProperty.ContentType],
  ['contentEncoding', AmqpProperty.ContentEncoding],
  ['correlationId', AmqpProperty.CorrelationId],
  ['replyTo', AmqpProperty.ReplyTo],
  ['expiration', AmqpProperty.Expiration],
  ['messageId', AmqpProperty.MessageId],
  ['type', AmqpProperty.Type],
  ['userId', AmqpProperty.UserId],
  ['appId', AmqpProperty.AppId],
  ['clusterId', AmqpProperty.ClusterId],
];
const NUMBER_FIELDS: readonly [keyof BasicProperties, string][] = [
  ['deliveryMode', AmqpProperty.DeliveryMode],
  ['priority', AmqpProperty.Priority],
  ['timestamp', AmqpProperty.Timestamp],
];

/** A property name or value must not hold RocketMQ's separators (\u0001, \u0002). */
function storable(text: string): boolean {
  return !text.includes('\u0001') && !text.includes('\u0002');
}

/** A header copied as a plain property for other protocols, or undefined when it cannot be. */
function plainHeaderValue(value: FieldValue): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (value instanceof FieldTyped) return String(value.value);
  return undefined;
}

function isReservedName(name: string): boolean {
  return name.startsWith(AMQP_PROPERTY_PREFIX) || SYSTEM_PROPERTY_NAMES.has(name);
}

/** The engine message for an AMQP publish. */
export function toEngineMessage(content: AmqpContent): Message {
  const properties: Properties = {};
  const p = content.properties;
  for (const [field, name] of STRING_FIELDS) {
    const value = p[field];
    if (typeof value === 'string' && storable(value)) properties[name] = value;
  }
  for (const [field, name] of NUMBER_FIELDS) {
    const value = p[field];
    if (typeof value === 'number') properties[name] = String(value);
  }
  if (p.headers !== undefined) {
    properties[AmqpProperty.Headers] = encodeFieldTable(p.headers).toString('base64');
    for (const [name, value] of Object.entries(p.headers)) {
      const text = plainHeaderValue(value);
      if (text !== undefined && name.length > 0 && !isReservedName(name) && storable(name) && storable(text)) {
        properties[name] = text;
      }
    }
  }
  let body = content.body;
  if (body.length === 0) {
    properties[AmqpProperty.EmptyBody] = '1';
    body = Buffer.alloc(1);
  }
  const message: Message = { topic: topicOfExchange(content.exchange), body, properties };
  if (content.routingKey.length > 0) message.tags = content.routingKey;
  if (p.messageId !== undefined && p.messageId.length > 0 && !/\s/.test(p.messageId)) message.keys = [p.messageId];
  return message;
}

/** Headers of a stored message: the exact AMQP table, or the user properties for foreign messages. */
export function headersOf(message: Pick<MessageExt, 'properties'>): FieldTable | undefined {
  const encoded = message.properties[AmqpProperty.Headers];
  if (encoded !== undefined) {
    try {
      return readFieldTable(Buffer.from(encoded, 'base64'), 0).value;
    } catch {
      // A damaged copy: fall back to the plain properties below.
    }
  }
  const headers: FieldTable = {};
  let any = false;
  for (const [name, value] of Object.entries(message.properties)) {
    if (name.startsWith(AMQP_PROPERTY_PREFIX)) continue;
    headers[name] = value;
    any = true;
  }
  return any ? headers : undefined;
}

/**
 * Empty-body markers of every front end (ours, MQTT `mqtt.empty`, WebSocket `ws.empty`): each stores
 * one placeholder byte for an empty body, so an empty body from any of them arrives empty.
 */
const EMPTY_MARKERS = [AmqpProperty.EmptyBody, 'mqtt.empty', 'ws.empty'] as const;

/** Content properties, routing key, exchange and body for delivering a stored message to AMQP. */
export function toAmqpContent(message: Pick<MessageExt, 'topic' | 'tags' | 'properties' | 'body'>): AmqpContent {
  const props = message.properties;
  const properties: BasicProperties = {};
  for (const [field, name] of STRING_FIELDS) {
    const value = props[name];
    if (value !== undefined) (properties as Record<string, unknown>)[field] = value;
  }
  for (const [field, name] of NUMBER_FIELDS) {
    const value = props[name];
    if (value === undefined) continue;
    const number = Number(value);
    if (Number.isSafeInteger(number) && number >= 0) (properties as Record<string, unknown>)[field] = number;
  }
  const headers = headersOf(message);
  if (headers !== undefined) properties.headers = headers;
  const body = EMPTY_MARKERS.some((name) => props[name] === '1') ? Buffer.alloc(0) : message.body;
  return { exchange: exchangeOfTopic(message.topic), routingKey: message.tags ?? '', properties, body };
}
