/**
 * amqplib's own client-side codec as an independent reference for our server-side one. Its package
 * `exports` hides lib/, so the files are required by absolute path next to the resolved entry.
 * Also holds the sample methods and properties the codec tests share, and converters between
 * amqplib's value conventions ('!' typed values, `nowait`, longstr Buffers) and ours.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { FieldDecimal, FieldTyped, type FieldTable, type FieldValue } from '../../../src/adapters/amqp/field-table.js';
import type { AmqpMethod, MethodName } from '../../../src/adapters/amqp/methods.js';
import type { BasicProperties } from '../../../src/adapters/amqp/content-header.js';

const require = createRequire(import.meta.url);
const amqplibDir = dirname(require.resolve('amqplib'));

type Fields = Record<string, unknown>;

interface AmqplibDefs {
  decode(id: number, args: Buffer): Fields;
  encodeMethod(id: number, channel: number, fields: Fields): Buffer;
  encodeProperties(id: number, channel: number, size: number, fields: Fields): Buffer;
  [name: string]: unknown;
}
interface AmqplibFrame {
  parseFrame(bin: Buffer, max: number): { type: number; channel: number; size: number; payload: Buffer } | false;
  decodeFrame(frame: unknown): { id?: number; channel: number; size?: number; fields?: Fields; content?: Buffer };
  makeBodyFrame(channel: number, payload: Buffer): Buffer;
  HEARTBEAT_BUF: Buffer;
}
interface AmqplibCodec {
  encodeTable(buffer: Buffer, value: Fields, offset: number): number;
  decodeFields(slice: Buffer): Fields;
}

export const amqplibDefs = require(join(amqplibDir, 'lib', 'defs.js')) as AmqplibDefs;
export const amqplibFrame = require(join(amqplibDir, 'lib', 'frame.js')) as AmqplibFrame;
export const amqplibCodec = require(join(amqplibDir, 'lib', 'codec.js')) as AmqplibCodec;

/** amqplib's numeric id for one of our method names: 'basic.get-ok' -> defs.BasicGetOk. */
export function amqplibMethodId(name: MethodName): number {
  const key = name
    .split(/[.-]/)
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join('');
  const id = amqplibDefs[key];
  if (typeof id !== 'number') throw new Error(`amqplib has no method ${key}`);
  return id;
}

/** Fields of ours that amqplib names differently or decodes as Buffers. */
const LONGSTR_TEXT_FIELDS = new Set(['mechanisms', 'locales', 'channelId']);

/** Our method object -> amqplib's fields object (for amqplib.encodeMethod). */
export function toAmqplibFields(method: AmqpMethod): Fields {
  const fields: Fields = {};
  for (const [key, value] of Object.entries(method)) {
    if (key === 'name') continue;
    if (LONGSTR_TEXT_FIELDS.has(key) && typeof value === 'string') fields[key] = Buffer.from(value);
    else fields[key === 'noWait' ? 'nowait' : key] = toAmqplibValue(value as FieldValue);
  }
  return fields;
}

/** amqplib's decoded fields -> our method shape (without `name`), for comparison. */
export function fromAmqplibFields(fields: Fields): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) {
    if (key === 'ticket') continue;
    if (LONGSTR_TEXT_FIELDS.has(key) && Buffer.isBuffer(value)) out[key] = value.toString('utf8');
    else out[key === 'nowait' ? 'noWait' : key] = fromAmqplibValue(value);
  }
  return out;
}

export function methodFields(method: AmqpMethod): Record<string, unknown> {
  const { name: _name, ...rest } = method;
  return rest;
}

const TYPE_NAMES: Record<string, string> = {
  b: 'int8',
  B: 'uint8',
  s: 'int16',
  u: 'uint16',
  I: 'int32',
  i: 'uint32',
  l: 'int64',
  f: 'float',
  d: 'double',
  T: 'timestamp',
};

export function toAmqplibValue(value: FieldValue): unknown {
  if (value instanceof FieldTyped) return { '!': TYPE_NAMES[value.type], value: Number(value.value) };
  if (value instanceof FieldDecimal) return { '!': 'decimal', value: { places: value.scale, digits: value.value } };
  if (Buffer.isBuffer(value) || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((item) => toAmqplibValue(item as FieldValue));
  const out: Fields = {};
  for (const [key, item] of Object.entries(value as FieldTable)) out[key] = toAmqplibValue(item);
  return out;
}

export function fromAmqplibValue(value: unknown): unknown {
  if (Buffer.isBuffer(value) || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(fromAmqplibValue);
  const record = value as Fields;
  if (record['!'] === 'timestamp') return new FieldTyped('T', record['value'] as number);
  if (record['!'] === 'decimal') {
    const decimal = record['value'] as { places: number; digits: number };
    return new FieldDecimal(decimal.places, decimal.digits);
  }
  const out: Fields = {};
  for (const [key, item] of Object.entries(record)) out[key] = fromAmqplibValue(item);
  return out;
}

/** Drop undefined-valued keys (amqplib and we differ on absent properties). */
export function defined(props: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(props).filter(([, value]) => value !== undefined));
}

/**
 * A table with every type both sides can carry with the same meaning. amqplib picks b/s/I/l for
 * integers by size and decodes all of them to numbers, so plain numbers compare equal either way.
 */
export function sampleTable(): FieldTable {
  return {
    string: 'caf\u00e9 \u4e2d',
    empty: '',
    yes: true,
    no: false,
    int8: -5,
    int16: 1000,
    int32: -70000,
    int64: 2 ** 40 + 3,
    double: 2.75,
    void: null,
    bytes: Buffer.from([0, 1, 254, 255]),
    timestamp: new FieldTyped('T', 1700000000),
    decimal: new FieldDecimal(2, 12345),
    typedFloat: new FieldTyped('f', 1.5),
    typedUint8: new FieldTyped('B', 200),
    typedUint16: new FieldTyped('u', 60000),
    typedUint32: new FieldTyped('i', 4000000000),
    array: ['a', 1, true, null, [2, 'b'], { nested: 'x' }],
    nested: { inner: { deep: 42, list: [] }, emptyTable: {} },
  };
}

/** The same table as our decoder returns it (typed numbers come back as plain numbers). */
export function sampleTableDecoded(): FieldTable {
  return {
    ...sampleTable(),
    typedFloat: 1.5,
    typedUint8: 200,
    typedUint16: 60000,
    typedUint32: 4000000000,
  };
}

export function sampleProperties(): BasicProperties {
  return {
    contentType: 'application/json',
    contentEncoding: 'gzip',
    headers: { 'x-retry': 3, source: 'mqtt', flags: [true, 'x'] },
    deliveryMode: 2,
    priority: 7,
    correlationId: 'corr-1',
    replyTo: 'amq.rabbitmq.reply-to',
    expiration: '60000',
    messageId: 'msg-\u00e9-1',
    timestamp: 1700000123,
    type: 'order.created',
    userId: 'guest',
    appId: 'rocketbridge-test',
    clusterId: 'c1',
  };
}

/** One instance of every method, with non-default values so a swapped or dropped field shows. */
export function sampleMethods(): AmqpMethod[] {
  const table = sampleTable();
  return [
    {
      name: 'connection.start',
      versionMajor: 0,
      versionMinor: 9,
      serverProperties: { product: 'rocketbridge', capabilities: { publisher_confirms: true, 'basic.nack': true } },
      mechanisms: 'PLAIN AMQPLAIN',
      locales: 'en_US',
    },
    {
      name: 'connection.start-ok',
      clientProperties: { product: 'test', platform: 'node', capabilities: { consumer_cancel_notify: true } },
      mechanism: 'PLAIN',
      response: Buffer.from('\u0000guest\u0000guest'),
      locale: 'en_US',
    },
    { name: 'connection.secure', challenge: Buffer.from([1, 2, 3]) },
    { name: 'connection.secure-ok', response: Buffer.from('answer') },
    { name: 'connection.tune', channelMax: 2047, frameMax: 131072, heartbeat: 60 },
    { name: 'connection.tune-ok', channelMax: 100, frameMax: 65536, heartbeat: 30 },
    { name: 'connection.open', virtualHost: '/prod', capabilities: '', insist: true },
    { name: 'connection.open-ok', knownHosts: '' },
    { name: 'connection.close', replyCode: 320, replyText: 'CONNECTION_FORCED - shutdown', classId: 0, methodId: 0 },
    { name: 'connection.close-ok' },
    { name: 'connection.blocked', reason: 'low on disk' },
    { name: 'connection.unblocked' },
    { name: 'channel.open', outOfBand: '' },
    { name: 'channel.open-ok', channelId: '' },
    { name: 'channel.flow', active: true },
    { name: 'channel.flow-ok', active: false },
    { name: 'channel.close', replyCode: 404, replyText: "NOT_FOUND - no queue 'q'", classId: 50, methodId: 10 },
    { name: 'channel.close-ok' },
    {
      name: 'exchange.declare',
      exchange: 'orders',
      type: 'topic',
      passive: false,
      durable: true,
      autoDelete: false,
      internal: true,
      noWait: true,
      arguments: { 'alternate-exchange': 'ae' },
    },
    { name: 'exchange.declare-ok' },
    { name: 'exchange.delete', exchange: 'orders', ifUnused: true, noWait: false },
    { name: 'exchange.delete-ok' },
    { name: 'exchange.bind', destination: 'd', source: 's', routingKey: 'a.*', noWait: true, arguments: {} },
    { name: 'exchange.bind-ok' },
    { name: 'exchange.unbind', destination: 'd', source: 's', routingKey: 'a.#', noWait: false, arguments: { k: 1 } },
    { name: 'exchange.unbind-ok' },
    {
      name: 'queue.declare',
      queue: 'q1',
      passive: true,
      durable: false,
      exclusive: true,
      autoDelete: false,
      noWait: true,
      arguments: table,
    },
    { name: 'queue.declare-ok', queue: 'amq.gen-abc', messageCount: 12, consumerCount: 3 },
    { name: 'queue.bind', queue: 'q1', exchange: 'orders', routingKey: 'eu.#', noWait: false, arguments: { x: 'y' } },
    { name: 'queue.bind-ok' },
    { name: 'queue.purge', queue: 'q1', noWait: true },
    { name: 'queue.purge-ok', messageCount: 99 },
    { name: 'queue.delete', queue: 'q1', ifUnused: false, ifEmpty: true, noWait: true },
    { name: 'queue.delete-ok', messageCount: 4294967295 },
    { name: 'queue.unbind', queue: 'q1', exchange: 'orders', routingKey: 'eu.#', arguments: {} },
    { name: 'queue.unbind-ok' },
    { name: 'basic.qos', prefetchSize: 0, prefetchCount: 250, global: true },
    { name: 'basic.qos-ok' },
    {
      name: 'basic.consume',
      queue: 'q1',
      consumerTag: 'ctag-1',
      noLocal: false,
      noAck: true,
      exclusive: false,
      noWait: true,
      arguments: { 'x-priority': 5 },
    },
    { name: 'basic.consume-ok', consumerTag: 'ctag-1' },
    { name: 'basic.cancel', consumerTag: 'ctag-1', noWait: true },
    { name: 'basic.cancel-ok', consumerTag: 'ctag-1' },
    { name: 'basic.publish', exchange: 'orders', routingKey: 'eu.de.created', mandatory: true, immediate: false },
    { name: 'basic.return', replyCode: 312, replyText: 'NO_ROUTE', exchange: 'orders', routingKey: 'nowhere' },
    {
      name: 'basic.deliver',
      consumerTag: 'ctag-1',
      deliveryTag: 2 ** 40 + 17,
      redelivered: true,
      exchange: 'orders',
      routingKey: 'eu.de.created',
    },
    { name: 'basic.get', queue: 'q1', noAck: true },
    { name: 'basic.get-ok', deliveryTag: 5, redelivered: false, exchange: '', routingKey: 'q1', messageCount: 8 },
    { name: 'basic.get-empty', clusterId: '' },
    { name: 'basic.ack', deliveryTag: 77, multiple: true },
    { name: 'basic.reject', deliveryTag: 78, requeue: false },
    { name: 'basic.recover-async', requeue: true },
    { name: 'basic.recover', requeue: true },
    { name: 'basic.recover-ok' },
    { name: 'basic.nack', deliveryTag: 79, multiple: true, requeue: false },
    { name: 'confirm.select', noWait: false },
    { name: 'confirm.select-ok' },
    { name: 'tx.select' },
    { name: 'tx.select-ok' },
    { name: 'tx.commit' },
    { name: 'tx.commit-ok' },
    { name: 'tx.rollback' },
    { name: 'tx.rollback-ok' },
  ];
}

/** What our decoder returns for a sample method (tables come back with typed numbers untyped). */
export function decodedForm(method: AmqpMethod): AmqpMethod {
  if (method.name === 'queue.declare') return { ...method, arguments: sampleTableDecoded() };
  return method;
}
