/**
 * One AMQP channel of a connection: runs its methods in arrival order (an async method holds the
 * frames after it), assembles published content (method, header, bodies), tracks deliveries and
 * acks, consumers and prefetch (per consumer and per channel), publisher confirms and flow.
 * Errors it raises are AmqpProtocolError; the connection decides between channel.close and
 * connection.close by their scope. After a channel.close the channel discards every frame until
 * the peer's channel.close-ok.
 */
import { randomBytes } from 'node:crypto';
import { ChurnMap } from '../../engine/common/churn-map.js';
import { createLogger } from '../../engine/common/logger.js';
import { FrameType } from './constants.js';
import { type BasicProperties, decodeContentHeader } from './content-header.js';
import { ConfirmCoalescer } from './confirms.js';
import { AmqpProtocolError } from './errors.js';
import { encodeContentCommand, encodeMethodFrame } from './frame-writer.js';
import { toAmqpContent } from './mapping.js';
import { type AmqpMethod, decodeClientMethod, methodInfo, type MethodName } from './methods.js';
import type { QueueMessage } from './queue-backend.js';
import { ReplyCode } from './reply-codes.js';
import type { Consumer, ConsumerChannel, QueueRuntime, Vhost } from './vhost.js';

const log = createLogger('amqp-channel');

/** What a channel needs from its connection. */
export interface ChannelHost {
  readonly id: number;
  readonly vhost: Vhost;
  readonly frameMaxBytes: number;
  readonly maxMessageBytes: number;
  /** False while the socket's buffer is full: hold deliveries. */
  readonly writable: boolean;
  write(frames: readonly Buffer[]): void;
  /** Runs `callback` just before this turn's frames go out (it may write more). */
  beforeFlush(callback: () => void): void;
  /** Publish back-pressure: the connection stops reading while too many stores are outstanding. */
  storeStarted(): void;
  storeFinished(): void;
  /** A basic.publish arrived: while publishers are blocked (connection.blocked) the connection stops reading. */
  publishArrived(): void;
  /** Call once when the socket drains. */
  onDrain(listener: () => void): void;
  /** The channel failed with an error of connection scope. */
  connectionError(err: AmqpProtocolError): void;
  /** The channel is gone (close-ok exchanged): the id may be reused. */
  channelGone(channelId: number): void;
}

interface Frame {
  type: number;
  payload: Buffer;
}

interface PendingPublish {
  method: Extract<AmqpMethod, { name: 'basic.publish' }>;
  properties: BasicProperties | undefined;
  bodySizeBytes: number;
  parts: Buffer[];
  receivedBytes: number;
}

interface Unacked {
  message: QueueMessage;
  queue: QueueRuntime;
  consumer: Consumer | undefined;
}

/** RabbitMQ's direct reply-to pseudo-queue. */
export const DIRECT_REPLY_TO = 'amq.rabbitmq.reply-to';

function ids(name: MethodName): { classId: number; methodId: number } {
  const info = methodInfo(name);
  return { classId: info.classId, methodId: info.methodId };
}

export class Channel implements ConsumerChannel {
  private state: 'open' | 'closing' | 'closed' = 'open';
  private readonly frames: Frame[] = [];
  private busy = false;
  private pending: PendingPublish | undefined;
  private readonly consumers = new Map<string, Consumer>();
  /** By delivery tag; a ChurnMap because an entry comes and goes per delivery (see churn-map.ts). */
  private readonly unacked = new ChurnMap<number, Unacked>();
  private deliveryTag = 0;
  private channelPrefetch = 0;
  private consumerPrefetch = 0;
  private flowActive = true;
  private confirmMode = false;
  private publishSeq = 0;
  private readonly confirms = new ConfirmCoalescer();
  private confirmsQueued = false;
  private waitingForDrain = false;
  /** Direct reply-to: the consumer tag on amq.rabbitmq.reply-to and the routing key replies use. */
  private replyConsumerTag: string | undefined;
  private replyToken: string | undefined;

  constructor(
    readonly id: number,
    private readonly host: ChannelHost,
  ) {}

  get connectionId(): number {
    return this.host.id;
  }

  get isClosing(): boolean {
    return this.state !== 'open';
  }

  /** A frame for this channel. Methods run in order; an async one holds the rest. */
  push(type: number, payload: Buffer): void {
    if (this.state === 'closed') return;
    if (this.busy) {
      this.frames.push({ type, payload });
      return;
    }
    this.run({ type, payload });
  }

  private run(frame: Frame): void {
    let result: Promise<void> | undefined;
    try {
      result = this.handle(frame);
    } catch (err) {
      this.fail(err);
      return;
    }
    if (result === undefined) return;
    this.busy = true;
    result.then(
      () => this.resume(),
      (err: unknown) => {
        this.fail(err);
        this.resume();
      },
    );
  }

  private resume(): void {
    this.busy = false;
    for (let guard = 0; this.frames.length > 0 && !this.busy && guard < 1_000_000; guard++) {
      this.run(this.frames.shift() as Frame);
    }
  }

  private fail(err: unknown): void {
    const error =
      err instanceof AmqpProtocolError
        ? err
        : new AmqpProtocolError(ReplyCode.InternalError, err instanceof Error ? err.message : String(err), {
            scope: 'connection',
            cause: err,
          });
    if (!(err instanceof AmqpProtocolError)) log.error({ err, channel: this.id }, 'channel method failed');
    if (error.closesConnection) this.host.connectionError(error);
    else this.closeWithError(error);
  }

  /** Sends channel.close for a soft error and waits for close-ok, discarding everything else. */
  closeWithError(err: AmqpProtocolError): void {
    if (this.state !== 'open') return;
    this.state = 'closing';
    this.frames.length = 0;
    this.pending = undefined;
    this.send({
      name: 'channel.close',
      replyCode: err.replyCode,
      replyText: err.replyText,
      classId: err.classId,
      methodId: err.methodId,
    });
    this.teardown();
  }

  private handle(frame: Frame): Promise<void> | undefined {
    if (this.state === 'closing') return this.handleWhileClosing(frame);
    if (frame.type === FrameType.Method) {
      // Decoded here so a decode error closes the right scope; the connection checked the basics.
      const method = decodeForChannel(frame.payload);
      if (this.pending !== undefined) {
        throw new AmqpProtocolError(
          ReplyCode.UnexpectedFrame,
          `expected content header for basic.publish, got ${method.name} on channel ${this.id}`,
          { ...ids(method.name), scope: 'connection' },
        );
      }
      return this.handleMethod(method);
    }
    if (frame.type === FrameType.Header) return this.handleHeader(frame.payload);
    return this.handleBody(frame.payload);
  }

  private handleWhileClosing(frame: Frame): undefined {
    if (frame.type !== FrameType.Method) return undefined;
    let method: AmqpMethod;
    try {
      method = decodeForChannel(frame.payload);
    } catch {
      return undefined;
    }
    if (method.name === 'channel.close-ok') this.gone();
    else if (method.name === 'channel.close') {
      // Both sides closed at once: answer and finish.
      this.send({ name: 'channel.close-ok' });
      this.gone();
    }
    return undefined;
  }

  private gone(): void {
    this.state = 'closed';
    this.host.channelGone(this.id);
  }

  private send(method: AmqpMethod): void {
    this.write([encodeMethodFrame(this.id, method)]);
  }

  /** Every frame of this channel goes out here: confirms settled earlier go first, in order. */
  private write(frames: readonly Buffer[]): void {
    if (this.confirms.pending) this.sendConfirms();
    this.host.write(frames);
  }

  /** A publish settled: its confirm goes out with the others of this turn (see confirms.ts). */
  private confirm(seq: number, acked: boolean): void {
    this.confirms.settle(seq, acked);
    if (!this.confirmsQueued) {
      this.confirmsQueued = true;
      this.host.beforeFlush(this.sendConfirms);
    }
  }

  private readonly sendConfirms = (): void => {
    this.confirmsQueued = false;
    if (this.state !== 'open') {
      this.confirms.drain(); // closing or closed: no more frames from this channel but the close
      return;
    }
    const frames = this.confirms.drain().map((method) => encodeMethodFrame(this.id, method));
    if (frames.length > 0) this.host.write(frames);
  };

  // --- content --------------------------------------------------------------------------

  private handleHeader(payload: Buffer): Promise<void> | undefined {
    const pending = this.pending;
    if (pending === undefined || pending.properties !== undefined) {
      throw new AmqpProtocolError(ReplyCode.UnexpectedFrame, `unexpected content header on channel ${this.id}`, {
        scope: 'connection',
      });
    }
    const header = decodeContentHeader(payload);
    if (header.bodySizeBytes > this.host.maxMessageBytes) {
      this.pending = undefined;
      throw new AmqpProtocolError(
        ReplyCode.PreconditionFailed,
        `message size ${header.bodySizeBytes} is larger than configured max size ${this.host.maxMessageBytes}`,
        ids('basic.publish'),
      );
    }
    pending.properties = header.properties;
    pending.bodySizeBytes = header.bodySizeBytes;
    if (header.bodySizeBytes === 0) return this.completePublish(pending);
    return undefined;
  }

  private handleBody(payload: Buffer): Promise<void> | undefined {
    const pending = this.pending;
    if (pending?.properties === undefined) {
      throw new AmqpProtocolError(ReplyCode.UnexpectedFrame, `unexpected content body on channel ${this.id}`, {
        scope: 'connection',
      });
    }
    pending.receivedBytes += payload.length;
    if (pending.receivedBytes > pending.bodySizeBytes) {
      throw new AmqpProtocolError(
        ReplyCode.FrameError,
        `content body of ${pending.receivedBytes} bytes exceeds the declared ${pending.bodySizeBytes}`,
        { scope: 'connection' },
      );
    }
    pending.parts.push(payload);
    if (pending.receivedBytes === pending.bodySizeBytes) return this.completePublish(pending);
    return undefined;
  }

  private completePublish(pending: PendingPublish): undefined {
    this.pending = undefined;
    const { method } = pending;
    const properties = pending.properties ?? {};
    const body = pending.parts.length === 1 ? (pending.parts[0] as Buffer) : Buffer.concat(pending.parts);
    const { classId, methodId } = ids('basic.publish');
    const seq = this.confirmMode ? ++this.publishSeq : 0;
    if (properties.replyTo === DIRECT_REPLY_TO) {
      if (this.replyToken === undefined) {
        throw new AmqpProtocolError(ReplyCode.PreconditionFailed, 'fast reply consumer does not exist', {
          classId,
          methodId,
        });
      }
      properties.replyTo = this.replyToken;
    }
    if (method.exchange === '' && method.routingKey.startsWith(`${DIRECT_REPLY_TO}.`)) {
      // Direct reply-to: straight to the requesting channel, never through the engine (as RabbitMQ).
      const target = this.host.vhost.replyChannel(method.routingKey);
      if (target !== undefined) target.deliverReply(method.routingKey, properties, body);
      else if (method.mandatory) this.returnUnroutable(method, properties, body);
      if (seq > 0) this.confirm(seq, true);
      return undefined;
    }
    const vhost = this.host.vhost;
    const queues = vhost.routeOf(method.exchange, method.routingKey, properties, classId, methodId);
    if (queues.size === 0 && (method.mandatory || method.exchange === '')) {
      if (method.mandatory) this.returnUnroutable(method, properties, body);
      if (seq > 0) this.confirm(seq, true);
      return undefined;
    }
    // x-overflow reject-publish: full queues refuse it, the publisher learns by basic.nack (RabbitMQ:
    // one refusing queue is enough for a nack; the others still get the message).
    const admission = vhost.admit(queues, body.length);
    const rejected = admission !== undefined && admission.rejected.length > 0;
    if (rejected) {
      vhost.deadLetterRejected(admission, {
        exchange: method.exchange,
        routingKey: method.routingKey,
        properties,
        body,
      });
    }
    const accepted = admission?.accepted ?? queues;
    if (rejected && accepted.size === 0 && method.exchange === '') {
      if (seq > 0) this.confirm(seq, false);
      return undefined;
    }
    const stored = vhost.store(method.exchange, method.routingKey, properties, body, accepted, admission);
    this.host.storeStarted();
    void stored.finally(() => this.host.storeFinished()).catch(() => undefined);
    stored.then(
      () => {
        if (seq > 0 && this.state === 'open') this.confirm(seq, !rejected);
      },
      (err: unknown) => {
        log.warn({ err, exchange: method.exchange }, 'publish could not be stored');
        if (seq > 0 && this.state === 'open') this.confirm(seq, false);
      },
    );
    return undefined;
  }

  private returnUnroutable(
    method: Extract<AmqpMethod, { name: 'basic.publish' }>,
    properties: BasicProperties,
    body: Buffer,
  ): void {
    this.write(
      encodeContentCommand(
        this.id,
        {
          name: 'basic.return',
          replyCode: ReplyCode.NoRoute,
          replyText: 'NO_ROUTE',
          exchange: method.exchange,
          routingKey: method.routingKey,
        },
        properties,
        body,
        this.host.frameMaxBytes,
      ),
    );
  }

  /** A direct reply-to response for this channel's reply consumer (auto-ack). */
  deliverReply(routingKey: string, properties: BasicProperties, body: Buffer): void {
    if (this.state !== 'open' || this.replyConsumerTag === undefined) return;
    this.write(
      encodeContentCommand(
        this.id,
        {
          name: 'basic.deliver',
          consumerTag: this.replyConsumerTag,
          deliveryTag: ++this.deliveryTag,
          redelivered: false,
          exchange: '',
          routingKey,
        },
        properties,
        body,
        this.host.frameMaxBytes,
      ),
    );
  }

  // --- methods --------------------------------------------------------------------------

  private handleMethod(method: AmqpMethod): Promise<void> | undefined {
    const vhost = this.host.vhost;
    const connectionId = this.host.id;
    const { classId, methodId } = ids(method.name);
    switch (method.name) {
      case 'channel.open':
        throw new AmqpProtocolError(ReplyCode.ChannelError, `channel ${this.id} is already open`, {
          classId,
          methodId,
          scope: 'connection',
        });
      case 'channel.close':
        this.state = 'closed';
        this.teardown();
        this.send({ name: 'channel.close-ok' });
        this.host.channelGone(this.id);
        return undefined;
      case 'channel.close-ok':
        return undefined;
      case 'channel.flow':
        this.flowActive = method.active;
        this.send({ name: 'channel.flow-ok', active: method.active });
        if (method.active) this.redispatch();
        return undefined;
      case 'channel.flow-ok':
        return undefined;
      case 'exchange.declare':
        return vhost.declareExchange(method, classId, methodId).then(() => {
          if (!method.noWait) this.send({ name: 'exchange.declare-ok' });
        });
      case 'exchange.delete':
        return vhost.deleteExchange(method.exchange, method.ifUnused, classId, methodId).then(() => {
          if (!method.noWait) this.send({ name: 'exchange.delete-ok' });
        });
      case 'exchange.bind':
      case 'exchange.unbind': {
        const binding = {
          source: method.source,
          destination: method.destination,
          destinationKind: 'exchange' as const,
          routingKey: method.routingKey,
          arguments: method.arguments,
        };
        const done =
          method.name === 'exchange.bind'
            ? vhost.bind(binding, connectionId, classId, methodId)
            : vhost.unbind(binding, connectionId, classId, methodId);
        return done.then(() => {
          if (!method.noWait)
            this.send({ name: method.name === 'exchange.bind' ? 'exchange.bind-ok' : 'exchange.unbind-ok' });
        });
      }
      case 'queue.declare':
        return vhost.declareQueue(method, connectionId, classId, methodId).then((ok) => {
          if (!method.noWait) this.send({ name: 'queue.declare-ok', ...ok });
        });
      case 'queue.bind':
      case 'queue.unbind': {
        const binding = {
          source: method.exchange,
          destination: method.queue,
          destinationKind: 'queue' as const,
          routingKey: method.routingKey,
          arguments: method.arguments,
        };
        if (method.name === 'queue.bind') {
          const noWait = method.noWait;
          return vhost.bind(binding, connectionId, classId, methodId).then(() => {
            if (!noWait) this.send({ name: 'queue.bind-ok' });
          });
        }
        return vhost.unbind(binding, connectionId, classId, methodId).then(() => {
          this.send({ name: 'queue.unbind-ok' });
        });
      }
      case 'queue.purge':
        return vhost.purgeQueue(method.queue, connectionId, classId, methodId).then((messageCount) => {
          if (!method.noWait) this.send({ name: 'queue.purge-ok', messageCount });
        });
      case 'queue.delete':
        return vhost
          .deleteQueue(method.queue, method.ifUnused, method.ifEmpty, connectionId, classId, methodId)
          .then((messageCount) => {
            if (!method.noWait) this.send({ name: 'queue.delete-ok', messageCount });
          });
      case 'basic.qos':
        if (method.global) this.channelPrefetch = method.prefetchCount;
        else this.consumerPrefetch = method.prefetchCount;
        this.send({ name: 'basic.qos-ok' });
        this.redispatch();
        return undefined;
      case 'basic.consume':
        this.consume(method, classId, methodId);
        return undefined;
      case 'basic.cancel': {
        if (method.consumerTag === this.replyConsumerTag) this.dropReplyConsumer();
        const consumer = this.consumers.get(method.consumerTag);
        if (consumer !== undefined) {
          this.consumers.delete(method.consumerTag);
          consumer.queue.removeConsumer(consumer);
        }
        if (!method.noWait) this.send({ name: 'basic.cancel-ok', consumerTag: method.consumerTag });
        return undefined;
      }
      case 'basic.publish':
        this.pending = { method, properties: undefined, bodySizeBytes: 0, parts: [], receivedBytes: 0 };
        this.host.publishArrived();
        return undefined;
      case 'basic.get':
        return this.get(method.queue, method.noAck, classId, methodId);
      case 'basic.ack':
        this.settle(method.deliveryTag, method.multiple, 'ack', classId, methodId);
        return undefined;
      case 'basic.nack':
        this.settle(method.deliveryTag, method.multiple, method.requeue ? 'requeue' : 'drop', classId, methodId);
        return undefined;
      case 'basic.reject':
        this.settle(method.deliveryTag, false, method.requeue ? 'requeue' : 'drop', classId, methodId);
        return undefined;
      case 'basic.recover':
      case 'basic.recover-async':
        // RabbitMQ requeues whatever `requeue` says; so do we.
        this.settle(0, true, 'requeue', classId, methodId);
        if (method.name === 'basic.recover') this.send({ name: 'basic.recover-ok' });
        return undefined;
      case 'confirm.select':
        this.confirmMode = true;
        if (!method.noWait) this.send({ name: 'confirm.select-ok' });
        return undefined;
      case 'tx.select':
      case 'tx.commit':
      case 'tx.rollback':
        throw new AmqpProtocolError(
          ReplyCode.NotImplemented,
          'transactions (tx.*) are not implemented; use publisher confirms',
          {
            classId,
            methodId,
            scope: 'channel',
          },
        );
      default:
        throw new AmqpProtocolError(ReplyCode.CommandInvalid, `${method.name} is not valid on channel ${this.id}`, {
          classId,
          methodId,
          scope: 'connection',
        });
    }
  }

  private consume(method: Extract<AmqpMethod, { name: 'basic.consume' }>, classId: number, methodId: number): void {
    if (method.queue === DIRECT_REPLY_TO) {
      this.consumeReplies(method, classId, methodId);
      return;
    }
    const queue = this.host.vhost.requireQueue(method.queue, this.host.id, classId, methodId);
    const tag = method.consumerTag === '' ? `amq.ctag-${randomBytes(16).toString('base64url')}` : method.consumerTag;
    if (this.consumers.has(tag)) {
      throw new AmqpProtocolError(ReplyCode.NotAllowed, `attempt to reuse consumer tag '${tag}'`, {
        classId,
        methodId,
        scope: 'connection',
      });
    }
    if (queue.consumers.some((each) => each.exclusive) || (method.exclusive && queue.consumers.length > 0)) {
      throw new AmqpProtocolError(ReplyCode.AccessRefused, `queue '${queue.name}' in vhost '/' in exclusive use`, {
        classId,
        methodId,
      });
    }
    const consumer: Consumer = {
      tag,
      queue,
      noAck: method.noAck,
      exclusive: method.exclusive,
      channel: this,
      unacked: 0,
      prefetchCount: this.consumerPrefetch,
    };
    this.consumers.set(tag, consumer);
    if (!method.noWait) this.send({ name: 'basic.consume-ok', consumerTag: tag });
    queue.addConsumer(consumer);
  }

  /** basic.consume on the pseudo-queue amq.rabbitmq.reply-to (RabbitMQ direct reply-to). */
  private consumeReplies(
    method: Extract<AmqpMethod, { name: 'basic.consume' }>,
    classId: number,
    methodId: number,
  ): void {
    if (!method.noAck) {
      throw new AmqpProtocolError(ReplyCode.PreconditionFailed, 'reply consumer cannot acknowledge', {
        classId,
        methodId,
      });
    }
    if (this.replyConsumerTag !== undefined) {
      throw new AmqpProtocolError(ReplyCode.PreconditionFailed, 'reply consumer already set', { classId, methodId });
    }
    const tag = method.consumerTag === '' ? `amq.ctag-${randomBytes(16).toString('base64url')}` : method.consumerTag;
    this.replyConsumerTag = tag;
    this.replyToken = `${DIRECT_REPLY_TO}.${randomBytes(18).toString('base64url')}`;
    this.host.vhost.registerReplyChannel(this.replyToken, this);
    if (!method.noWait) this.send({ name: 'basic.consume-ok', consumerTag: tag });
  }

  private async get(queueName: string, noAck: boolean, classId: number, methodId: number): Promise<void> {
    const vhost = this.host.vhost;
    const queue = vhost.requireQueue(queueName, this.host.id, classId, methodId);
    await vhost.storesSettled();
    queue.touch();
    let message = queue.receiveLive();
    if (message === undefined) {
      await queue.backend.messageCount();
      message = queue.receiveLive();
    }
    if (this.state !== 'open') {
      if (message !== undefined) queue.backend.nack(message.id, true);
      return;
    }
    if (message === undefined) {
      this.send({ name: 'basic.get-empty', clusterId: '' });
      return;
    }
    // An exact count needs the fetching to have caught up with the queue's end.
    const messageCount = await queue.backend.messageCount();
    if (this.state !== 'open') {
      queue.backend.nack(message.id, true);
      return;
    }
    const tag = ++this.deliveryTag;
    if (noAck) queue.backend.ack(message.id);
    else this.unacked.set(tag, { message, queue, consumer: undefined });
    const content = toAmqpContent(message.message);
    this.write(
      encodeContentCommand(
        this.id,
        {
          name: 'basic.get-ok',
          deliveryTag: tag,
          redelivered: message.redelivered,
          exchange: content.exchange,
          routingKey: content.routingKey,
          messageCount,
        },
        content.properties,
        content.body,
        this.host.frameMaxBytes,
      ),
    );
  }

  /** ack / requeue / drop one delivery, or every one up to `tag` (0 = all) when `multiple`. */
  private settle(
    tag: number,
    multiple: boolean,
    how: 'ack' | 'requeue' | 'drop',
    classId: number,
    methodId: number,
  ): void {
    let tags: number[];
    if (multiple) {
      tags = this.unacked
        .keyStrings()
        .map(Number)
        .filter((each) => tag === 0 || each <= tag);
    } else {
      if (!this.unacked.has(tag)) {
        throw new AmqpProtocolError(ReplyCode.PreconditionFailed, `unknown delivery tag ${tag}`, { classId, methodId });
      }
      tags = [tag];
    }
    const queues = new Set<QueueRuntime>();
    for (const each of tags) {
      const entry = this.unacked.get(each) as Unacked;
      this.unacked.delete(each);
      if (entry.consumer !== undefined) entry.consumer.unacked--;
      if (how === 'ack') entry.queue.backend.ack(entry.message.id);
      else if (how === 'requeue') entry.queue.backend.nack(entry.message.id, true);
      else entry.queue.discard(entry.message, 'rejected');
      queues.add(entry.queue);
    }
    for (const queue of queues) queue.scheduleDispatch();
    if (this.channelPrefetch > 0) this.redispatch();
  }

  // --- consumers ------------------------------------------------------------------------

  canDeliver(consumer: Consumer): boolean {
    if (this.state !== 'open' || !this.flowActive || !this.consumers.has(consumer.tag)) return false;
    if (!this.host.writable) {
      if (!this.waitingForDrain) {
        this.waitingForDrain = true;
        this.host.onDrain(() => {
          this.waitingForDrain = false;
          this.redispatch();
        });
      }
      return false;
    }
    if (consumer.noAck) return true;
    if (consumer.prefetchCount > 0 && consumer.unacked >= consumer.prefetchCount) return false;
    if (this.channelPrefetch > 0 && this.unacked.size >= this.channelPrefetch) return false;
    return true;
  }

  deliver(consumer: Consumer, message: QueueMessage): void {
    const tag = ++this.deliveryTag;
    if (consumer.noAck) consumer.queue.backend.ack(message.id);
    else {
      this.unacked.set(tag, { message, queue: consumer.queue, consumer });
      consumer.unacked++;
    }
    const content = toAmqpContent(message.message);
    this.write(
      encodeContentCommand(
        this.id,
        {
          name: 'basic.deliver',
          consumerTag: consumer.tag,
          deliveryTag: tag,
          redelivered: message.redelivered,
          exchange: content.exchange,
          routingKey: content.routingKey,
        },
        content.properties,
        content.body,
        this.host.frameMaxBytes,
      ),
    );
  }

  cancelledByServer(consumer: Consumer): void {
    if (!this.consumers.delete(consumer.tag)) return;
    consumer.queue.removeConsumer(consumer);
    if (this.state === 'open') this.send({ name: 'basic.cancel', consumerTag: consumer.tag, noWait: true });
  }

  private redispatch(): void {
    const queues = new Set<QueueRuntime>();
    for (const consumer of this.consumers.values()) queues.add(consumer.queue);
    for (const queue of queues) queue.scheduleDispatch();
  }

  /** Drops consumers and requeues every unacked delivery (channel or connection closed). */
  private dropReplyConsumer(): void {
    if (this.replyToken !== undefined) this.host.vhost.unregisterReplyChannel(this.replyToken);
    this.replyToken = undefined;
    this.replyConsumerTag = undefined;
  }

  teardown(): void {
    this.dropReplyConsumer();
    for (const consumer of this.consumers.values()) consumer.queue.removeConsumer(consumer);
    this.consumers.clear();
    const queues = new Set<QueueRuntime>();
    for (const entry of this.unacked.values()) {
      entry.queue.backend.nack(entry.message.id, true);
      queues.add(entry.queue);
    }
    this.unacked.clear();
    for (const queue of queues) queue.scheduleDispatch();
  }
}

/** Methods arriving on a channel: classes other than connection. */
function decodeForChannel(payload: Buffer): AmqpMethod {
  const method = decodeClientMethod(payload);
  if (method.name.startsWith('connection.')) {
    throw new AmqpProtocolError(ReplyCode.CommandInvalid, `${method.name} is only valid on channel 0`, {
      ...ids(method.name),
      scope: 'connection',
    });
  }
  return method;
}
