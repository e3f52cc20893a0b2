/**
 * JSON frames <-> the engine's canonical message (design.md section 3). Topic and tag are explicit
 * in JSON, so they map one to one; keys map to RocketMQ KEYS; `properties` are user properties.
 *
 * Reserved names: RocketMQ system properties (KEYS, TAGS, UNIQ_KEY, DELAY, ...) may not be set as
 * user properties, and the `ws.` namespace belongs to this front end: `ws.empty` = `1` marks an
 * empty body (the engine refuses empty bodies, so one placeholder byte is stored). Other protocols'
 * namespaces (`mqtt.`, `amqp.`) pass through both ways; their empty-body markers `mqtt.empty` and
 * `amqp.empty-body` are honoured on delivery.
 *
 * Bodies: `body` is text stored as UTF-8; `bodyBase64` and binary frames carry any bytes. On
 * delivery with bodyEncoding `auto`, a body that is valid UTF-8 is sent as `body` (lossless: the
 * text encodes back to the same bytes), anything else as `bodyBase64`.
 */
import type { Message, MessageExt, SendOptions } from '../../engine/client/index.js';
import { SYSTEM_PROPERTY_NAMES } from '../../engine/client/index.js';
import { WsError, WsErrorCode } from './errors.js';
import type { BodyEncoding, MessageFrame, MessageHeader, ProduceRequest } from './protocol.js';

/** The reserved property namespace of the WebSocket front end. */
export const WS_PROPERTY_PREFIX = 'ws.';

export const WsProperty = {
  /** `1` when the produced body was empty (one placeholder byte is stored). */
  Empty: 'ws.empty',
} as const;

/** The MQTT and AMQP front ends' empty-body markers, honoured so their empty bodies arrive empty. */
const FOREIGN_EMPTY_MARKERS: ReadonlySet<string> = new Set(['mqtt.empty', 'amqp.empty-body']);
const EMPTY_PLACEHOLDER = Buffer.from([0]);

/** The body bytes of a JSON produce request (binary frames pass theirs directly). */
export function bodyOfRequest(request: ProduceRequest): Buffer {
  if (request.bodyBase64 !== undefined) return Buffer.from(request.bodyBase64, 'base64');
  return Buffer.from(request.body ?? '', 'utf8');
}

/** The engine message and send options of a produce request. Throws WsError(BadRequest) on reserved names. */
export function engineMessageOf(request: ProduceRequest, body: Buffer): { message: Message; options: SendOptions } {
  const properties: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.properties ?? {})) {
    if (SYSTEM_PROPERTY_NAMES.has(name)) {
      throw new WsError(WsErrorCode.BadRequest, `property ${JSON.stringify(name)} is reserved by RocketMQ`);
    }
    if (name.startsWith(WS_PROPERTY_PREFIX)) {
      throw new WsError(WsErrorCode.BadRequest, `property ${JSON.stringify(name)} is in the reserved ws. namespace`);
    }
    properties[name] = value;
  }
  let stored = body;
  if (body.length === 0) {
    stored = EMPTY_PLACEHOLDER;
    properties[WsProperty.Empty] = '1';
  }
  const message: Message = { topic: request.topic, body: stored, properties };
  if (request.tag !== undefined) message.tags = request.tag;
  if (request.keys !== undefined && request.keys.length > 0) message.keys = request.keys;
  const options: SendOptions = {};
  if (request.delayMs !== undefined && request.delayMs > 0) options.delayMs = request.delayMs;
  if (request.deliverAt !== undefined) options.deliverAt = request.deliverAt;
  return { message, options };
}

/** What a subscriber gets: the header fields and the body bytes as produced. */
export function messageHeaderOf(
  message: MessageExt,
  subscriptionId: string,
  messageId: string,
): { header: MessageHeader; body: Buffer } {
  const properties: Record<string, string> = {};
  let empty = false;
  for (const [name, value] of Object.entries(message.properties)) {
    if (name.startsWith(WS_PROPERTY_PREFIX)) {
      if (name === WsProperty.Empty && value === '1') empty = true;
      continue;
    }
    if (FOREIGN_EMPTY_MARKERS.has(name) && value === '1') empty = true;
    properties[name] = value;
  }
  const header: MessageHeader = {
    type: 'message',
    subscriptionId,
    messageId,
    msgId: message.msgId,
    topic: message.topic,
    keys: [...message.keys],
    properties,
    redelivered: message.reconsumeTimes > 0,
    reconsumeTimes: message.reconsumeTimes,
    queueId: message.queueId,
    queueOffset: message.queueOffset,
    bornTimestamp: message.bornTimestamp,
    storeTimestamp: message.storeTimestamp,
  };
  if (message.tags !== undefined) header.tag = message.tags;
  return { header, body: empty ? Buffer.alloc(0) : message.body };
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The body as text when it is valid UTF-8 (so the text encodes back to the same bytes), else undefined. */
export function textOf(body: Buffer): string | undefined {
  try {
    return strictUtf8.decode(body);
  } catch {
    return undefined;
  }
}

/** A JSON `message` frame with the body as `body` (valid UTF-8 under `auto`) or `bodyBase64`. */
export function messageFrameOf(
  header: MessageHeader,
  body: Buffer,
  encoding: Exclude<BodyEncoding, 'binary'>,
): MessageFrame {
  const text = encoding === 'auto' ? textOf(body) : undefined;
  return text !== undefined ? { ...header, body: text } : { ...header, bodyBase64: body.toString('base64') };
}
