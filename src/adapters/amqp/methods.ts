/**
 * Typed AMQP 0-9-1 methods: decode a method frame payload (class id, method id, arguments) into a
 * plain object and encode one back, for every method of the connection, channel, exchange, queue,
 * basic, confirm and tx classes that a RabbitMQ-compatible server receives or sends.
 *
 * Field names are the spec's argument names in camelCase (no-wait -> noWait). Reserved arguments
 * that carry nothing (ticket) are skipped on decode and written as zero; reserved strings that
 * clients still fill in (connection.open capabilities, channel.open out-of-band ...) are kept.
 * Consecutive bit arguments share one octet, first bit in the least significant position, and a
 * non-bit argument ends the octet (spec 4.2.5.2).
 *
 * Decoding errors: an unknown class or method -> NOT_IMPLEMENTED 540; a method the server only
 * sends, received from a client -> COMMAND_INVALID 503 (decodeClientMethod); truncated or
 * trailing argument bytes -> SYNTAX_ERROR 502. Frames and content headers live elsewhere.
 */
import {
  BasicMethodId,
  ChannelMethodId,
  ClassId,
  ConfirmMethodId,
  ConnectionMethodId,
  ExchangeMethodId,
  QueueMethodId,
  TxMethodId,
  methodKey,
} from './constants.js';
import { PayloadReader, type PayloadWriter } from './codec.js';
import { AmqpProtocolError } from './errors.js';
import { readTable, writeTable, type FieldTable } from './field-table.js';
import { ReplyCode } from './reply-codes.js';

// ---------------------------------------------------------------------------------------------
// Method shapes

export interface ConnectionStart {
  name: 'connection.start';
  versionMajor: number;
  versionMinor: number;
  serverProperties: FieldTable;
  /** Space-separated SASL mechanisms, e.g. "PLAIN AMQPLAIN". */
  mechanisms: string;
  locales: string;
}
export interface ConnectionStartOk {
  name: 'connection.start-ok';
  clientProperties: FieldTable;
  mechanism: string;
  /** SASL response bytes (PLAIN: "\0user\0password"). */
  response: Buffer;
  locale: string;
}
export interface ConnectionSecure {
  name: 'connection.secure';
  challenge: Buffer;
}
export interface ConnectionSecureOk {
  name: 'connection.secure-ok';
  response: Buffer;
}
/** channelMax in channels, frameMax in bytes (0 = no limit), heartbeat in seconds (0 = off). */
export interface ConnectionTune {
  name: 'connection.tune';
  channelMax: number;
  frameMax: number;
  heartbeat: number;
}
export interface ConnectionTuneOk {
  name: 'connection.tune-ok';
  channelMax: number;
  frameMax: number;
  heartbeat: number;
}
export interface ConnectionOpen {
  name: 'connection.open';
  virtualHost: string;
  capabilities: string;
  insist: boolean;
}
export interface ConnectionOpenOk {
  name: 'connection.open-ok';
  knownHosts: string;
}
export interface ConnectionClose {
  name: 'connection.close';
  replyCode: number;
  replyText: string;
  classId: number;
  methodId: number;
}
export interface ConnectionCloseOk {
  name: 'connection.close-ok';
}
export interface ConnectionBlocked {
  name: 'connection.blocked';
  reason: string;
}
export interface ConnectionUnblocked {
  name: 'connection.unblocked';
}
export interface ChannelOpen {
  name: 'channel.open';
  outOfBand: string;
}
export interface ChannelOpenOk {
  name: 'channel.open-ok';
  channelId: string;
}
export interface ChannelFlow {
  name: 'channel.flow';
  active: boolean;
}
export interface ChannelFlowOk {
  name: 'channel.flow-ok';
  active: boolean;
}
export interface ChannelClose {
  name: 'channel.close';
  replyCode: number;
  replyText: string;
  classId: number;
  methodId: number;
}
export interface ChannelCloseOk {
  name: 'channel.close-ok';
}
export interface ExchangeDeclare {
  name: 'exchange.declare';
  exchange: string;
  type: string;
  passive: boolean;
  durable: boolean;
  autoDelete: boolean;
  internal: boolean;
  noWait: boolean;
  arguments: FieldTable;
}
export interface ExchangeDeclareOk {
  name: 'exchange.declare-ok';
}
export interface ExchangeDelete {
  name: 'exchange.delete';
  exchange: string;
  ifUnused: boolean;
  noWait: boolean;
}
export interface ExchangeDeleteOk {
  name: 'exchange.delete-ok';
}
export interface ExchangeBind {
  name: 'exchange.bind';
  destination: string;
  source: string;
  routingKey: string;
  noWait: boolean;
  arguments: FieldTable;
}
export interface ExchangeBindOk {
  name: 'exchange.bind-ok';
}
export interface ExchangeUnbind {
  name: 'exchange.unbind';
  destination: string;
  source: string;
  routingKey: string;
  noWait: boolean;
  arguments: FieldTable;
}
export interface ExchangeUnbindOk {
  name: 'exchange.unbind-ok';
}
export interface QueueDeclare {
  name: 'queue.declare';
  queue: string;
  passive: boolean;
  durable: boolean;
  exclusive: boolean;
  autoDelete: boolean;
  noWait: boolean;
  arguments: FieldTable;
}
export interface QueueDeclareOk {
  name: 'queue.declare-ok';
  queue: string;
  messageCount: number;
  consumerCount: number;
}
export interface QueueBind {
  name: 'queue.bind';
  queue: string;
  exchange: string;
  routingKey: string;
  noWait: boolean;
  arguments: FieldTable;
}
export interface QueueBindOk {
  name: 'queue.bind-ok';
}
export interface QueuePurge {
  name: 'queue.purge';
  queue: string;
  noWait: boolean;
}
export interface QueuePurgeOk {
  name: 'queue.purge-ok';
  messageCount: number;
}
export interface QueueDelete {
  name: 'queue.delete';
  queue: string;
  ifUnused: boolean;
  ifEmpty: boolean;
  noWait: boolean;
}
export interface QueueDeleteOk {
  name: 'queue.delete-ok';
  messageCount: number;
}
export interface QueueUnbind {
  name: 'queue.unbind';
  queue: string;
  exchange: string;
  routingKey: string;
  arguments: FieldTable;
}
export interface QueueUnbindOk {
  name: 'queue.unbind-ok';
}
/** prefetchSize in bytes (RabbitMQ refuses non-zero), prefetchCount in messages. */
export interface BasicQos {
  name: 'basic.qos';
  prefetchSize: number;
  prefetchCount: number;
  global: boolean;
}
export interface BasicQosOk {
  name: 'basic.qos-ok';
}
export interface BasicConsume {
  name: 'basic.consume';
  queue: string;
  consumerTag: string;
  noLocal: boolean;
  noAck: boolean;
  exclusive: boolean;
  noWait: boolean;
  arguments: FieldTable;
}
export interface BasicConsumeOk {
  name: 'basic.consume-ok';
  consumerTag: string;
}
export interface BasicCancel {
  name: 'basic.cancel';
  consumerTag: string;
  noWait: boolean;
}
export interface BasicCancelOk {
  name: 'basic.cancel-ok';
  consumerTag: string;
}
export interface BasicPublish {
  name: 'basic.publish';
  exchange: string;
  routingKey: string;
  mandatory: boolean;
  immediate: boolean;
}
export interface BasicReturn {
  name: 'basic.return';
  replyCode: number;
  replyText: string;
  exchange: string;
  routingKey: string;
}
export interface BasicDeliver {
  name: 'basic.deliver';
  consumerTag: string;
  deliveryTag: number;
  redelivered: boolean;
  exchange: string;
  routingKey: string;
}
export interface BasicGet {
  name: 'basic.get';
  queue: string;
  noAck: boolean;
}
export interface BasicGetOk {
  name: 'basic.get-ok';
  deliveryTag: number;
  redelivered: boolean;
  exchange: string;
  routingKey: string;
  messageCount: number;
}
export interface BasicGetEmpty {
  name: 'basic.get-empty';
  clusterId: string;
}
export interface BasicAck {
  name: 'basic.ack';
  deliveryTag: number;
  multiple: boolean;
}
export interface BasicReject {
  name: 'basic.reject';
  deliveryTag: number;
  requeue: boolean;
}
export interface BasicRecoverAsync {
  name: 'basic.recover-async';
  requeue: boolean;
}
export interface BasicRecover {
  name: 'basic.recover';
  requeue: boolean;
}
export interface BasicRecoverOk {
  name: 'basic.recover-ok';
}
export interface BasicNack {
  name: 'basic.nack';
  deliveryTag: number;
  multiple: boolean;
  requeue: boolean;
}
export interface ConfirmSelect {
  name: 'confirm.select';
  noWait: boolean;
}
export interface ConfirmSelectOk {
  name: 'confirm.select-ok';
}
export interface TxSelect {
  name: 'tx.select';
}
export interface TxSelectOk {
  name: 'tx.select-ok';
}
export interface TxCommit {
  name: 'tx.commit';
}
export interface TxCommitOk {
  name: 'tx.commit-ok';
}
export interface TxRollback {
  name: 'tx.rollback';
}
export interface TxRollbackOk {
  name: 'tx.rollback-ok';
}

export type AmqpMethod =
  | ConnectionStart
  | ConnectionStartOk
  | ConnectionSecure
  | ConnectionSecureOk
  | ConnectionTune
  | ConnectionTuneOk
  | ConnectionOpen
  | ConnectionOpenOk
  | ConnectionClose
  | ConnectionCloseOk
  | ConnectionBlocked
  | ConnectionUnblocked
  | ChannelOpen
  | ChannelOpenOk
  | ChannelFlow
  | ChannelFlowOk
  | ChannelClose
  | ChannelCloseOk
  | ExchangeDeclare
  | ExchangeDeclareOk
  | ExchangeDelete
  | ExchangeDeleteOk
  | ExchangeBind
  | ExchangeBindOk
  | ExchangeUnbind
  | ExchangeUnbindOk
  | QueueDeclare
  | QueueDeclareOk
  | QueueBind
  | QueueBindOk
  | QueuePurge
  | QueuePurgeOk
  | QueueDelete
  | QueueDeleteOk
  | QueueUnbind
  | QueueUnbindOk
  | BasicQos
  | BasicQosOk
  | BasicConsume
  | BasicConsumeOk
  | BasicCancel
  | BasicCancelOk
  | BasicPublish
  | BasicReturn
  | BasicDeliver
  | BasicGet
  | BasicGetOk
  | BasicGetEmpty
  | BasicAck
  | BasicReject
  | BasicRecoverAsync
  | BasicRecover
  | BasicRecoverOk
  | BasicNack
  | ConfirmSelect
  | ConfirmSelectOk
  | TxSelect
  | TxSelectOk
  | TxCommit
  | TxCommitOk
  | TxRollback
  | TxRollbackOk;

export type MethodName = AmqpMethod['name'];
/** The method object for one name, e.g. MethodOf<'basic.publish'>. */
export type MethodOf<N extends MethodName> = Extract<AmqpMethod, { name: N }>;

// ---------------------------------------------------------------------------------------------
// Metadata

/** Who may send a method (spec chassis: server / client; RabbitMQ lets both send ack, nack, cancel). */
export type MethodSender = 'client' | 'server' | 'both';

export interface MethodInfo {
  readonly name: MethodName;
  readonly classId: number;
  readonly methodId: number;
  readonly sender: MethodSender;
  /** Followed by a content header and body frames (basic.publish, return, deliver, get-ok). */
  readonly hasContent: boolean;
}

const C = ClassId;
const INFO_LIST: readonly MethodInfo[] = [
  info('connection.start', C.Connection, ConnectionMethodId.Start, 'server'),
  info('connection.start-ok', C.Connection, ConnectionMethodId.StartOk, 'client'),
  info('connection.secure', C.Connection, ConnectionMethodId.Secure, 'server'),
  info('connection.secure-ok', C.Connection, ConnectionMethodId.SecureOk, 'client'),
  info('connection.tune', C.Connection, ConnectionMethodId.Tune, 'server'),
  info('connection.tune-ok', C.Connection, ConnectionMethodId.TuneOk, 'client'),
  info('connection.open', C.Connection, ConnectionMethodId.Open, 'client'),
  info('connection.open-ok', C.Connection, ConnectionMethodId.OpenOk, 'server'),
  info('connection.close', C.Connection, ConnectionMethodId.Close, 'both'),
  info('connection.close-ok', C.Connection, ConnectionMethodId.CloseOk, 'both'),
  info('connection.blocked', C.Connection, ConnectionMethodId.Blocked, 'server'),
  info('connection.unblocked', C.Connection, ConnectionMethodId.Unblocked, 'server'),
  info('channel.open', C.Channel, ChannelMethodId.Open, 'client'),
  info('channel.open-ok', C.Channel, ChannelMethodId.OpenOk, 'server'),
  info('channel.flow', C.Channel, ChannelMethodId.Flow, 'both'),
  info('channel.flow-ok', C.Channel, ChannelMethodId.FlowOk, 'both'),
  info('channel.close', C.Channel, ChannelMethodId.Close, 'both'),
  info('channel.close-ok', C.Channel, ChannelMethodId.CloseOk, 'both'),
  info('exchange.declare', C.Exchange, ExchangeMethodId.Declare, 'client'),
  info('exchange.declare-ok', C.Exchange, ExchangeMethodId.DeclareOk, 'server'),
  info('exchange.delete', C.Exchange, ExchangeMethodId.Delete, 'client'),
  info('exchange.delete-ok', C.Exchange, ExchangeMethodId.DeleteOk, 'server'),
  info('exchange.bind', C.Exchange, ExchangeMethodId.Bind, 'client'),
  info('exchange.bind-ok', C.Exchange, ExchangeMethodId.BindOk, 'server'),
  info('exchange.unbind', C.Exchange, ExchangeMethodId.Unbind, 'client'),
  info('exchange.unbind-ok', C.Exchange, ExchangeMethodId.UnbindOk, 'server'),
  info('queue.declare', C.Queue, QueueMethodId.Declare, 'client'),
  info('queue.declare-ok', C.Queue, QueueMethodId.DeclareOk, 'server'),
  info('queue.bind', C.Queue, QueueMethodId.Bind, 'client'),
  info('queue.bind-ok', C.Queue, QueueMethodId.BindOk, 'server'),
  info('queue.purge', C.Queue, QueueMethodId.Purge, 'client'),
  info('queue.purge-ok', C.Queue, QueueMethodId.PurgeOk, 'server'),
  info('queue.delete', C.Queue, QueueMethodId.Delete, 'client'),
  info('queue.delete-ok', C.Queue, QueueMethodId.DeleteOk, 'server'),
  info('queue.unbind', C.Queue, QueueMethodId.Unbind, 'client'),
  info('queue.unbind-ok', C.Queue, QueueMethodId.UnbindOk, 'server'),
  info('basic.qos', C.Basic, BasicMethodId.Qos, 'client'),
  info('basic.qos-ok', C.Basic, BasicMethodId.QosOk, 'server'),
  info('basic.consume', C.Basic, BasicMethodId.Consume, 'client'),
  info('basic.consume-ok', C.Basic, BasicMethodId.ConsumeOk, 'server'),
  info('basic.cancel', C.Basic, BasicMethodId.Cancel, 'both'),
  info('basic.cancel-ok', C.Basic, BasicMethodId.CancelOk, 'both'),
  info('basic.publish', C.Basic, BasicMethodId.Publish, 'client', true),
  info('basic.return', C.Basic, BasicMethodId.Return, 'server', true),
  info('basic.deliver', C.Basic, BasicMethodId.Deliver, 'server', true),
  info('basic.get', C.Basic, BasicMethodId.Get, 'client'),
  info('basic.get-ok', C.Basic, BasicMethodId.GetOk, 'server', true),
  info('basic.get-empty', C.Basic, BasicMethodId.GetEmpty, 'server'),
  info('basic.ack', C.Basic, BasicMethodId.Ack, 'both'),
  info('basic.reject', C.Basic, BasicMethodId.Reject, 'client'),
  info('basic.recover-async', C.Basic, BasicMethodId.RecoverAsync, 'client'),
  info('basic.recover', C.Basic, BasicMethodId.Recover, 'client'),
  info('basic.recover-ok', C.Basic, BasicMethodId.RecoverOk, 'server'),
  info('basic.nack', C.Basic, BasicMethodId.Nack, 'both'),
  info('confirm.select', C.Confirm, ConfirmMethodId.Select, 'client'),
  info('confirm.select-ok', C.Confirm, ConfirmMethodId.SelectOk, 'server'),
  info('tx.select', C.Tx, TxMethodId.Select, 'client'),
  info('tx.select-ok', C.Tx, TxMethodId.SelectOk, 'server'),
  info('tx.commit', C.Tx, TxMethodId.Commit, 'client'),
  info('tx.commit-ok', C.Tx, TxMethodId.CommitOk, 'server'),
  info('tx.rollback', C.Tx, TxMethodId.Rollback, 'client'),
  info('tx.rollback-ok', C.Tx, TxMethodId.RollbackOk, 'server'),
];

function info(
  name: MethodName,
  classId: number,
  methodId: number,
  sender: MethodSender,
  hasContent = false,
): MethodInfo {
  return { name, classId, methodId, sender, hasContent };
}

const INFO_BY_NAME = new Map<string, MethodInfo>(INFO_LIST.map((entry) => [entry.name, entry]));
const INFO_BY_KEY = new Map<number, MethodInfo>(
  INFO_LIST.map((entry) => [methodKey(entry.classId, entry.methodId), entry]),
);

/** Every method this module codes, with ids, sender and whether content follows. */
export function allMethods(): readonly MethodInfo[] {
  return INFO_LIST;
}

/** Ids and traits of a method by name. */
export function methodInfo(name: MethodName): MethodInfo {
  const found = INFO_BY_NAME.get(name);
  if (found === undefined) throw new TypeError(`unknown AMQP method ${name}`);
  return found;
}

/** Ids and traits of a (class, method) pair, or undefined when this module does not know it. */
export function methodInfoById(classId: number, methodId: number): MethodInfo | undefined {
  return INFO_BY_KEY.get(methodKey(classId, methodId));
}

// ---------------------------------------------------------------------------------------------
// Decoding

function bit(bits: number, index: number): boolean {
  return (bits & (1 << index)) !== 0;
}

/**
 * Decode a method frame payload. Throws AmqpProtocolError: NOT_IMPLEMENTED for an unknown class or
 * method, SYNTAX_ERROR for truncated or trailing argument bytes, FRAME_ERROR when the payload is
 * too short to hold the class and method ids.
 */
export function decodeMethod(payload: Buffer): AmqpMethod {
  if (payload.length < 4) {
    throw new AmqpProtocolError(
      ReplyCode.FrameError,
      `method frame payload of ${payload.length} bytes has no method id`,
    );
  }
  const reader = new PayloadReader(payload, 4, payload.length);
  const classId = payload.readUInt16BE(0);
  const methodId = payload.readUInt16BE(2);
  reader.classId = classId;
  reader.methodId = methodId;
  let method: AmqpMethod | undefined;
  switch (classId) {
    case ClassId.Basic:
      method = decodeBasic(reader, methodId);
      break;
    case ClassId.Connection:
      method = decodeConnection(reader, methodId);
      break;
    case ClassId.Channel:
      method = decodeChannel(reader, methodId);
      break;
    case ClassId.Exchange:
      method = decodeExchange(reader, methodId);
      break;
    case ClassId.Queue:
      method = decodeQueue(reader, methodId);
      break;
    case ClassId.Confirm:
      method = decodeConfirm(reader, methodId);
      break;
    case ClassId.Tx:
      method = decodeTx(reader, methodId);
      break;
    default:
      method = undefined;
  }
  if (method === undefined) {
    throw new AmqpProtocolError(ReplyCode.NotImplemented, `unknown method class ${classId} method ${methodId}`, {
      classId,
      methodId,
    });
  }
  reader.done(method.name);
  return method;
}

/**
 * decodeMethod, refusing with COMMAND_INVALID 503 a method only servers send (connection.start,
 * basic.deliver ...), as RabbitMQ refuses methods it does not implement on its side.
 */
export function decodeClientMethod(payload: Buffer): AmqpMethod {
  const method = decodeMethod(payload);
  const found = INFO_BY_NAME.get(method.name);
  if (found !== undefined && found.sender === 'server') {
    throw new AmqpProtocolError(ReplyCode.CommandInvalid, `${method.name} is sent by servers only`, {
      classId: found.classId,
      methodId: found.methodId,
    });
  }
  return method;
}

function decodeBasic(r: PayloadReader, methodId: number): AmqpMethod | undefined {
  switch (methodId) {
    case BasicMethodId.Publish: {
      r.skip(2, 'ticket');
      const exchange = r.shortString();
      const routingKey = r.shortString();
      const bits = r.u8();
      return { name: 'basic.publish', exchange, routingKey, mandatory: bit(bits, 0), immediate: bit(bits, 1) };
    }
    case BasicMethodId.Ack: {
      const deliveryTag = r.u64();
      return { name: 'basic.ack', deliveryTag, multiple: bit(r.u8(), 0) };
    }
    case BasicMethodId.Nack: {
      const deliveryTag = r.u64();
      const bits = r.u8();
      return { name: 'basic.nack', deliveryTag, multiple: bit(bits, 0), requeue: bit(bits, 1) };
    }
    case BasicMethodId.Reject: {
      const deliveryTag = r.u64();
      return { name: 'basic.reject', deliveryTag, requeue: bit(r.u8(), 0) };
    }
    case BasicMethodId.Deliver: {
      const consumerTag = r.shortString();
      const deliveryTag = r.u64();
      const redelivered = bit(r.u8(), 0);
      const exchange = r.shortString();
      const routingKey = r.shortString();
      return { name: 'basic.deliver', consumerTag, deliveryTag, redelivered, exchange, routingKey };
    }
    case BasicMethodId.Qos: {
      const prefetchSize = r.u32();
      const prefetchCount = r.u16();
      return { name: 'basic.qos', prefetchSize, prefetchCount, global: bit(r.u8(), 0) };
    }
    case BasicMethodId.QosOk:
      return { name: 'basic.qos-ok' };
    case BasicMethodId.Consume: {
      r.skip(2, 'ticket');
      const queue = r.shortString();
      const consumerTag = r.shortString();
      const bits = r.u8();
      const args = readTable(r);
      return {
        name: 'basic.consume',
        queue,
        consumerTag,
        noLocal: bit(bits, 0),
        noAck: bit(bits, 1),
        exclusive: bit(bits, 2),
        noWait: bit(bits, 3),
        arguments: args,
      };
    }
    case BasicMethodId.ConsumeOk:
      return { name: 'basic.consume-ok', consumerTag: r.shortString() };
    case BasicMethodId.Cancel: {
      const consumerTag = r.shortString();
      return { name: 'basic.cancel', consumerTag, noWait: bit(r.u8(), 0) };
    }
    case BasicMethodId.CancelOk:
      return { name: 'basic.cancel-ok', consumerTag: r.shortString() };
    case BasicMethodId.Return: {
      const replyCode = r.u16();
      const replyText = r.shortString();
      const exchange = r.shortString();
      return { name: 'basic.return', replyCode, replyText, exchange, routingKey: r.shortString() };
    }
    case BasicMethodId.Get: {
      r.skip(2, 'ticket');
      const queue = r.shortString();
      return { name: 'basic.get', queue, noAck: bit(r.u8(), 0) };
    }
    case BasicMethodId.GetOk: {
      const deliveryTag = r.u64();
      const redelivered = bit(r.u8(), 0);
      const exchange = r.shortString();
      const routingKey = r.shortString();
      return { name: 'basic.get-ok', deliveryTag, redelivered, exchange, routingKey, messageCount: r.u32() };
    }
    case BasicMethodId.GetEmpty:
      return { name: 'basic.get-empty', clusterId: r.shortString() };
    case BasicMethodId.RecoverAsync:
      return { name: 'basic.recover-async', requeue: bit(r.u8(), 0) };
    case BasicMethodId.Recover:
      return { name: 'basic.recover', requeue: bit(r.u8(), 0) };
    case BasicMethodId.RecoverOk:
      return { name: 'basic.recover-ok' };
    default:
      return undefined;
  }
}

function decodeConnection(r: PayloadReader, methodId: number): AmqpMethod | undefined {
  switch (methodId) {
    case ConnectionMethodId.Start: {
      const versionMajor = r.u8();
      const versionMinor = r.u8();
      const serverProperties = readTable(r);
      const mechanisms = r.longString();
      const locales = r.longString();
      return { name: 'connection.start', versionMajor, versionMinor, serverProperties, mechanisms, locales };
    }
    case ConnectionMethodId.StartOk: {
      const clientProperties = readTable(r);
      const mechanism = r.shortString();
      const response = r.longStringBytes();
      return { name: 'connection.start-ok', clientProperties, mechanism, response, locale: r.shortString() };
    }
    case ConnectionMethodId.Secure:
      return { name: 'connection.secure', challenge: r.longStringBytes() };
    case ConnectionMethodId.SecureOk:
      return { name: 'connection.secure-ok', response: r.longStringBytes() };
    case ConnectionMethodId.Tune:
    case ConnectionMethodId.TuneOk: {
      const channelMax = r.u16();
      const frameMax = r.u32();
      const heartbeat = r.u16();
      const name = methodId === ConnectionMethodId.Tune ? 'connection.tune' : 'connection.tune-ok';
      return { name, channelMax, frameMax, heartbeat };
    }
    case ConnectionMethodId.Open: {
      const virtualHost = r.shortString();
      const capabilities = r.shortString();
      return { name: 'connection.open', virtualHost, capabilities, insist: bit(r.u8(), 0) };
    }
    case ConnectionMethodId.OpenOk:
      return { name: 'connection.open-ok', knownHosts: r.shortString() };
    case ConnectionMethodId.Close: {
      const replyCode = r.u16();
      const replyText = r.shortString();
      const classId = r.u16();
      return { name: 'connection.close', replyCode, replyText, classId, methodId: r.u16() };
    }
    case ConnectionMethodId.CloseOk:
      return { name: 'connection.close-ok' };
    case ConnectionMethodId.Blocked:
      return { name: 'connection.blocked', reason: r.shortString() };
    case ConnectionMethodId.Unblocked:
      return { name: 'connection.unblocked' };
    default:
      return undefined;
  }
}

function decodeChannel(r: PayloadReader, methodId: number): AmqpMethod | undefined {
  switch (methodId) {
    case ChannelMethodId.Open:
      return { name: 'channel.open', outOfBand: r.shortString() };
    case ChannelMethodId.OpenOk:
      return { name: 'channel.open-ok', channelId: r.longString() };
    case ChannelMethodId.Flow:
      return { name: 'channel.flow', active: bit(r.u8(), 0) };
    case ChannelMethodId.FlowOk:
      return { name: 'channel.flow-ok', active: bit(r.u8(), 0) };
    case ChannelMethodId.Close: {
      const replyCode = r.u16();
      const replyText = r.shortString();
      const classId = r.u16();
      return { name: 'channel.close', replyCode, replyText, classId, methodId: r.u16() };
    }
    case ChannelMethodId.CloseOk:
      return { name: 'channel.close-ok' };
    default:
      return undefined;
  }
}

function decodeExchange(r: PayloadReader, methodId: number): AmqpMethod | undefined {
  switch (methodId) {
    case ExchangeMethodId.Declare: {
      r.skip(2, 'ticket');
      const exchange = r.shortString();
      const type = r.shortString();
      const bits = r.u8();
      return {
        name: 'exchange.declare',
        exchange,
        type,
        passive: bit(bits, 0),
        durable: bit(bits, 1),
        autoDelete: bit(bits, 2),
        internal: bit(bits, 3),
        noWait: bit(bits, 4),
        arguments: readTable(r),
      };
    }
    case ExchangeMethodId.DeclareOk:
      return { name: 'exchange.declare-ok' };
    case ExchangeMethodId.Delete: {
      r.skip(2, 'ticket');
      const exchange = r.shortString();
      const bits = r.u8();
      return { name: 'exchange.delete', exchange, ifUnused: bit(bits, 0), noWait: bit(bits, 1) };
    }
    case ExchangeMethodId.DeleteOk:
      return { name: 'exchange.delete-ok' };
    case ExchangeMethodId.Bind:
    case ExchangeMethodId.Unbind: {
      r.skip(2, 'ticket');
      const destination = r.shortString();
      const source = r.shortString();
      const routingKey = r.shortString();
      const noWait = bit(r.u8(), 0);
      const name = methodId === ExchangeMethodId.Bind ? 'exchange.bind' : 'exchange.unbind';
      return { name, destination, source, routingKey, noWait, arguments: readTable(r) };
    }
    case ExchangeMethodId.BindOk:
      return { name: 'exchange.bind-ok' };
    case ExchangeMethodId.UnbindOk:
      return { name: 'exchange.unbind-ok' };
    default:
      return undefined;
  }
}

function decodeQueue(r: PayloadReader, methodId: number): AmqpMethod | undefined {
  switch (methodId) {
    case QueueMethodId.Declare: {
      r.skip(2, 'ticket');
      const queue = r.shortString();
      const bits = r.u8();
      return {
        name: 'queue.declare',
        queue,
        passive: bit(bits, 0),
        durable: bit(bits, 1),
        exclusive: bit(bits, 2),
        autoDelete: bit(bits, 3),
        noWait: bit(bits, 4),
        arguments: readTable(r),
      };
    }
    case QueueMethodId.DeclareOk: {
      const queue = r.shortString();
      const messageCount = r.u32();
      return { name: 'queue.declare-ok', queue, messageCount, consumerCount: r.u32() };
    }
    case QueueMethodId.Bind: {
      r.skip(2, 'ticket');
      const queue = r.shortString();
      const exchange = r.shortString();
      const routingKey = r.shortString();
      const noWait = bit(r.u8(), 0);
      return { name: 'queue.bind', queue, exchange, routingKey, noWait, arguments: readTable(r) };
    }
    case QueueMethodId.BindOk:
      return { name: 'queue.bind-ok' };
    case QueueMethodId.Purge: {
      r.skip(2, 'ticket');
      const queue = r.shortString();
      return { name: 'queue.purge', queue, noWait: bit(r.u8(), 0) };
    }
    case QueueMethodId.PurgeOk:
      return { name: 'queue.purge-ok', messageCount: r.u32() };
    case QueueMethodId.Delete: {
      r.skip(2, 'ticket');
      const queue = r.shortString();
      const bits = r.u8();
      return { name: 'queue.delete', queue, ifUnused: bit(bits, 0), ifEmpty: bit(bits, 1), noWait: bit(bits, 2) };
    }
    case QueueMethodId.DeleteOk:
      return { name: 'queue.delete-ok', messageCount: r.u32() };
    case QueueMethodId.Unbind: {
      r.skip(2, 'ticket');
      const queue = r.shortString();
      const exchange = r.shortString();
      const routingKey = r.shortString();
      return { name: 'queue.unbind', queue, exchange, routingKey, arguments: readTable(r) };
    }
    case QueueMethodId.UnbindOk:
      return { name: 'queue.unbind-ok' };
    default:
      return undefined;
  }
}

function decodeConfirm(r: PayloadReader, methodId: number): AmqpMethod | undefined {
  switch (methodId) {
    case ConfirmMethodId.Select:
      return { name: 'confirm.select', noWait: bit(r.u8(), 0) };
    case ConfirmMethodId.SelectOk:
      return { name: 'confirm.select-ok' };
    default:
      return undefined;
  }
}

function decodeTx(_r: PayloadReader, methodId: number): AmqpMethod | undefined {
  switch (methodId) {
    case TxMethodId.Select:
      return { name: 'tx.select' };
    case TxMethodId.SelectOk:
      return { name: 'tx.select-ok' };
    case TxMethodId.Commit:
      return { name: 'tx.commit' };
    case TxMethodId.CommitOk:
      return { name: 'tx.commit-ok' };
    case TxMethodId.Rollback:
      return { name: 'tx.rollback' };
    case TxMethodId.RollbackOk:
      return { name: 'tx.rollback-ok' };
    default:
      return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Encoding

/** Pack up to five consecutive bit arguments into one octet, first argument in bit 0. */
function bits(b0: boolean, b1 = false, b2 = false, b3 = false, b4 = false): number {
  return (b0 ? 1 : 0) | (b1 ? 2 : 0) | (b2 ? 4 : 0) | (b3 ? 8 : 0) | (b4 ? 16 : 0);
}

/**
 * Append a method payload (class id, method id, arguments) to the writer. Throws AmqpEncodeError
 * for a short string over 255 bytes or a table value it cannot encode.
 */
export function writeMethodPayload(w: PayloadWriter, method: AmqpMethod): void {
  const found = INFO_BY_NAME.get(method.name);
  if (found === undefined) throw new TypeError(`unknown AMQP method ${String(method.name)}`);
  w.u16(found.classId);
  w.u16(found.methodId);
  writeArguments(w, method);
}

function writeArguments(w: PayloadWriter, m: AmqpMethod): void {
  switch (m.name) {
    case 'basic.deliver':
      w.shortString(m.consumerTag, 'consumerTag');
      w.u64(m.deliveryTag);
      w.u8(bits(m.redelivered));
      w.shortString(m.exchange, 'exchange');
      w.shortString(m.routingKey, 'routingKey');
      return;
    case 'basic.ack':
      w.u64(m.deliveryTag);
      w.u8(bits(m.multiple));
      return;
    case 'basic.nack':
      w.u64(m.deliveryTag);
      w.u8(bits(m.multiple, m.requeue));
      return;
    case 'basic.publish':
      w.u16(0);
      w.shortString(m.exchange, 'exchange');
      w.shortString(m.routingKey, 'routingKey');
      w.u8(bits(m.mandatory, m.immediate));
      return;
    case 'basic.get-ok':
      w.u64(m.deliveryTag);
      w.u8(bits(m.redelivered));
      w.shortString(m.exchange, 'exchange');
      w.shortString(m.routingKey, 'routingKey');
      w.u32(m.messageCount);
      return;
    case 'basic.return':
      w.u16(m.replyCode);
      w.shortString(m.replyText, 'replyText');
      w.shortString(m.exchange, 'exchange');
      w.shortString(m.routingKey, 'routingKey');
      return;
    case 'basic.reject':
      w.u64(m.deliveryTag);
      w.u8(bits(m.requeue));
      return;
    case 'basic.qos':
      w.u32(m.prefetchSize);
      w.u16(m.prefetchCount);
      w.u8(bits(m.global));
      return;
    case 'basic.consume':
      w.u16(0);
      w.shortString(m.queue, 'queue');
      w.shortString(m.consumerTag, 'consumerTag');
      w.u8(bits(m.noLocal, m.noAck, m.exclusive, m.noWait));
      writeTable(w, m.arguments);
      return;
    case 'basic.consume-ok':
    case 'basic.cancel-ok':
      w.shortString(m.consumerTag, 'consumerTag');
      return;
    case 'basic.cancel':
      w.shortString(m.consumerTag, 'consumerTag');
      w.u8(bits(m.noWait));
      return;
    case 'basic.get':
      w.u16(0);
      w.shortString(m.queue, 'queue');
      w.u8(bits(m.noAck));
      return;
    case 'basic.get-empty':
      w.shortString(m.clusterId, 'clusterId');
      return;
    case 'basic.recover-async':
    case 'basic.recover':
      w.u8(bits(m.requeue));
      return;
    case 'connection.start':
      w.u8(m.versionMajor);
      w.u8(m.versionMinor);
      writeTable(w, m.serverProperties);
      w.longString(m.mechanisms);
      w.longString(m.locales);
      return;
    case 'connection.start-ok':
      writeTable(w, m.clientProperties);
      w.shortString(m.mechanism, 'mechanism');
      w.longString(m.response);
      w.shortString(m.locale, 'locale');
      return;
    case 'connection.secure':
      w.longString(m.challenge);
      return;
    case 'connection.secure-ok':
      w.longString(m.response);
      return;
    case 'connection.tune':
    case 'connection.tune-ok':
      w.u16(m.channelMax);
      w.u32(m.frameMax);
      w.u16(m.heartbeat);
      return;
    case 'connection.open':
      w.shortString(m.virtualHost, 'virtualHost');
      w.shortString(m.capabilities, 'capabilities');
      w.u8(bits(m.insist));
      return;
    case 'connection.open-ok':
      w.shortString(m.knownHosts, 'knownHosts');
      return;
    case 'connection.close':
    case 'channel.close':
      w.u16(m.replyCode);
      w.shortString(m.replyText, 'replyText');
      w.u16(m.classId);
      w.u16(m.methodId);
      return;
    case 'connection.blocked':
      w.shortString(m.reason, 'reason');
      return;
    case 'channel.open':
      w.shortString(m.outOfBand, 'outOfBand');
      return;
    case 'channel.open-ok':
      w.longString(m.channelId);
      return;
    case 'channel.flow':
    case 'channel.flow-ok':
      w.u8(bits(m.active));
      return;
    case 'exchange.declare':
      w.u16(0);
      w.shortString(m.exchange, 'exchange');
      w.shortString(m.type, 'type');
      w.u8(bits(m.passive, m.durable, m.autoDelete, m.internal, m.noWait));
      writeTable(w, m.arguments);
      return;
    case 'exchange.delete':
      w.u16(0);
      w.shortString(m.exchange, 'exchange');
      w.u8(bits(m.ifUnused, m.noWait));
      return;
    case 'exchange.bind':
    case 'exchange.unbind':
      w.u16(0);
      w.shortString(m.destination, 'destination');
      w.shortString(m.source, 'source');
      w.shortString(m.routingKey, 'routingKey');
      w.u8(bits(m.noWait));
      writeTable(w, m.arguments);
      return;
    case 'queue.declare':
      w.u16(0);
      w.shortString(m.queue, 'queue');
      w.u8(bits(m.passive, m.durable, m.exclusive, m.autoDelete, m.noWait));
      writeTable(w, m.arguments);
      return;
    case 'queue.declare-ok':
      w.shortString(m.queue, 'queue');
      w.u32(m.messageCount);
      w.u32(m.consumerCount);
      return;
    case 'queue.bind':
      w.u16(0);
      w.shortString(m.queue, 'queue');
      w.shortString(m.exchange, 'exchange');
      w.shortString(m.routingKey, 'routingKey');
      w.u8(bits(m.noWait));
      writeTable(w, m.arguments);
      return;
    case 'queue.purge':
      w.u16(0);
      w.shortString(m.queue, 'queue');
      w.u8(bits(m.noWait));
      return;
    case 'queue.purge-ok':
    case 'queue.delete-ok':
      w.u32(m.messageCount);
      return;
    case 'queue.delete':
      w.u16(0);
      w.shortString(m.queue, 'queue');
      w.u8(bits(m.ifUnused, m.ifEmpty, m.noWait));
      return;
    case 'queue.unbind':
      w.u16(0);
      w.shortString(m.queue, 'queue');
      w.shortString(m.exchange, 'exchange');
      w.shortString(m.routingKey, 'routingKey');
      writeTable(w, m.arguments);
      return;
    case 'confirm.select':
      w.u8(bits(m.noWait));
      return;
    // Methods without arguments.
    case 'connection.close-ok':
    case 'connection.unblocked':
    case 'channel.close-ok':
    case 'exchange.declare-ok':
    case 'exchange.delete-ok':
    case 'exchange.bind-ok':
    case 'exchange.unbind-ok':
    case 'queue.bind-ok':
    case 'queue.unbind-ok':
    case 'basic.qos-ok':
    case 'basic.recover-ok':
    case 'confirm.select-ok':
    case 'tx.select':
    case 'tx.select-ok':
    case 'tx.commit':
    case 'tx.commit-ok':
    case 'tx.rollback':
    case 'tx.rollback-ok':
      return;
  }
}
