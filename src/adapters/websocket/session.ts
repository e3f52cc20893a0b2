/**
 * The per-connection state machine of the WebSocket front end: `hello` first (authentication), then
 * produce / subscribe / credit / ack / nack / unsubscribe / ping in any order. Owns the connection's
 * subscriptions and its limits (subscriptions, produces in flight, protocol errors); the server owns
 * the socket, heartbeats and the engine clients shared by every connection.
 *
 * Bad input is answered with an `error` frame and the connection stays up, until more than
 * maxProtocolErrors malformed frames close it with 1002; requests before `hello` and failed
 * authentication close it with 1008.
 */
import type { Producer, ReceivedMessage, SimpleConsumer } from '../../engine/client/index.js';
import { validateSelector } from '../../engine/client/index.js';
import type { Logger } from '../../engine/common/logger.js';
import { CloseCode, WsError, WsErrorCode, wsCodeOf } from './errors.js';
import { bodyOfRequest, engineMessageOf, messageFrameOf, messageHeaderOf } from './mapping.js';
import {
  type AckRequest,
  type BodyEncoding,
  type ClientFrame,
  type CreditRequest,
  decodeBinaryFrame,
  encodeBinaryFrame,
  type HelloRequest,
  type NackRequest,
  parseJsonObject,
  type ProduceRequest,
  type RequestId,
  requestIdOf,
  type StartPosition,
  type SubscribeRequest,
  type UnsubscribeRequest,
  validateClientFrame,
} from './protocol.js';
import { Subscription } from './subscription.js';

/** Limits of one connection (server options, resolved). */
export interface SessionLimits {
  maxPayloadBytes: number;
  maxSubscriptions: number;
  maxInFlightPerSubscription: number;
  maxCreditPerSubscription: number;
  maxInFlightProduces: number;
  maxProtocolErrors: number;
  defaultAckTimeoutMs: number;
  heartbeatIntervalMs: number;
}

/** What a session needs from the server: the socket's send side and the shared engine clients. */
export interface SessionContext {
  sessionId: string;
  serverName: string;
  limits: SessionLimits;
  log: Logger;
  /** Sends a text or binary frame; false when the socket is gone. */
  send(frame: string | Buffer): boolean;
  /** Closes the socket with a code and a reason (logged by the server). */
  close(code: number, reason: string): void;
  /** Stops / resumes reading from the socket (produce back-pressure). */
  pauseReading(): void;
  resumeReading(): void;
  /** Checks credentials; resolves with a principal name, or undefined when refused. */
  authenticate(hello: HelloRequest): string | undefined;
  producer(): Promise<Producer>;
  /** A started consumer in `group` with the group's start position prepared (see server.ts). */
  openConsumer(request: {
    group: string;
    privateGroup: boolean;
    topic: string;
    tag: string;
    from: StartPosition;
    timestamp: number | undefined;
    offset: number | undefined;
    ackTimeoutMs: number;
  }): Promise<SimpleConsumer>;
}

/** The prefix of per-connection groups; clients may not name a group with it. */
export const PRIVATE_GROUP_PREFIX = 'WS_PRIVATE_';

type State = 'awaiting-hello' | 'open' | 'closed';

/** A subscription being set up: its id is taken, and credit granted meanwhile is kept. */
interface Pending {
  credit: number;
  cancelled: boolean;
}

export class Session {
  private state: State = 'awaiting-hello';
  private readonly subscriptions = new Map<string, Subscription>();
  private readonly pending = new Map<string, Pending>();
  private readonly encodings = new Map<string, BodyEncoding>();
  private readonly closing: Promise<void>[] = [];
  private producesInFlight = 0;
  private paused = false;
  private protocolErrors = 0;
  private nextSubscription = 1;
  private nextPrivateGroup = 1;
  /** Who authenticated (username, "token" or "anonymous"). */
  principal: string | undefined;

  constructor(private readonly context: SessionContext) {}

  get isOpen(): boolean {
    return this.state === 'open';
  }

  get subscriptionCount(): number {
    return this.subscriptions.size + this.pending.size;
  }

  /** Handles one WebSocket data frame. Never throws: every failure becomes an error frame or a close. */
  onFrame(data: Buffer, isBinary: boolean): void {
    if (this.state === 'closed') return;
    let frame: ClientFrame;
    let binaryBody: Buffer | undefined;
    let raw: Record<string, unknown> | undefined;
    try {
      if (isBinary) {
        const decoded = decodeBinaryFrame(data);
        raw = decoded.header;
        binaryBody = decoded.body;
      } else {
        raw = parseJsonObject(data.toString('utf8'));
      }
      frame = validateClientFrame(raw, isBinary);
    } catch (err) {
      this.protocolError(err, requestIdOf(raw));
      return;
    }
    if (this.state === 'awaiting-hello' && frame.type !== 'hello' && frame.type !== 'ping') {
      this.sendError(WsErrorCode.NotAuthenticated, `send hello before ${frame.type}`, frame.requestId);
      this.context.close(CloseCode.PolicyViolation, `${frame.type} before hello`);
      return;
    }
    switch (frame.type) {
      case 'hello':
        this.onHello(frame);
        break;
      case 'ping':
        this.sendJson(frame.requestId === undefined ? { type: 'pong' } : { type: 'pong', requestId: frame.requestId });
        break;
      case 'produce':
        this.onProduce(frame, binaryBody);
        break;
      case 'subscribe':
        void this.onSubscribe(frame);
        break;
      case 'credit':
        this.onCredit(frame);
        break;
      case 'ack':
      case 'nack':
        void this.onSettle(frame);
        break;
      case 'unsubscribe':
        this.onUnsubscribe(frame);
        break;
    }
  }

  /** Forgets messages whose lease ran out (called about once a second by the server). */
  sweep(nowMs: number): void {
    for (const subscription of this.subscriptions.values()) subscription.sweepExpiredLeases(nowMs);
  }

  /**
   * The socket is gone: close every subscription, handing unsettled messages back to their groups.
   * Resolves when that is done.
   */
  async onClosed(): Promise<void> {
    if (this.state !== 'closed') {
      this.state = 'closed';
      for (const pending of this.pending.values()) pending.cancelled = true;
      for (const subscription of this.subscriptions.values()) this.closing.push(subscription.close());
      this.subscriptions.clear();
    }
    await Promise.allSettled(this.closing);
  }

  // ---------------------------------------------------------------------------------------------

  private onHello(hello: HelloRequest): void {
    if (this.state === 'open') {
      this.sendError(WsErrorCode.AlreadyAuthenticated, 'hello was already accepted', hello.requestId);
      return;
    }
    const principal = this.context.authenticate(hello);
    if (principal === undefined) {
      this.sendError(WsErrorCode.AuthFailed, 'authentication failed', hello.requestId);
      this.context.close(CloseCode.PolicyViolation, 'authentication failed');
      return;
    }
    this.principal = principal;
    this.state = 'open';
    const { limits } = this.context;
    const welcome: Record<string, unknown> = {
      type: 'welcome',
      sessionId: this.context.sessionId,
      server: this.context.serverName,
      heartbeatIntervalMs: limits.heartbeatIntervalMs,
      limits: {
        maxPayloadBytes: limits.maxPayloadBytes,
        maxSubscriptions: limits.maxSubscriptions,
        maxInFlightPerSubscription: limits.maxInFlightPerSubscription,
        maxCreditPerSubscription: limits.maxCreditPerSubscription,
      },
    };
    if (hello.requestId !== undefined) welcome['requestId'] = hello.requestId;
    this.sendJson(welcome);
  }

  private onProduce(request: ProduceRequest, binaryBody: Buffer | undefined): void {
    let built: ReturnType<typeof engineMessageOf>;
    try {
      built = engineMessageOf(request, binaryBody ?? bodyOfRequest(request));
    } catch (err) {
      this.sendError(wsCodeOf(err), (err as Error).message, request.requestId);
      return;
    }
    this.producesInFlight++;
    if (this.producesInFlight >= this.context.limits.maxInFlightProduces && !this.paused) {
      this.paused = true;
      this.context.pauseReading();
    }
    void this.context
      .producer()
      .then((producer) => producer.send(built.message, built.options))
      .then(
        (result) =>
          this.sendJson({
            type: 'produced',
            requestId: request.requestId,
            msgId: result.msgId,
            status: result.status,
            brokerName: result.messageQueue.brokerName,
            queueId: result.messageQueue.queueId,
            queueOffset: result.queueOffset,
          }),
        (err: unknown) => {
          this.context.log.debug({ err, topic: request.topic }, 'produce failed');
          this.sendError(wsCodeOf(err), `produce failed: ${(err as Error).message}`, request.requestId);
        },
      )
      .finally(() => {
        this.producesInFlight--;
        if (this.paused && this.producesInFlight < this.context.limits.maxInFlightProduces) {
          this.paused = false;
          if (this.state !== 'closed') this.context.resumeReading();
        }
      });
  }

  private async onSubscribe(request: SubscribeRequest): Promise<void> {
    const { limits } = this.context;
    const requestId = request.requestId;
    let id = request.subscriptionId;
    if (id === undefined) {
      do id = `s${this.nextSubscription++}`;
      while (this.subscriptions.has(id) || this.pending.has(id));
    }
    if (this.subscriptions.has(id) || this.pending.has(id)) {
      this.sendError(WsErrorCode.DuplicateSubscription, `subscription ${id} already exists`, requestId, {
        subscriptionId: id,
      });
      return;
    }
    if (this.subscriptionCount >= limits.maxSubscriptions) {
      this.sendError(
        WsErrorCode.TooManySubscriptions,
        `at most ${limits.maxSubscriptions} subscriptions per connection`,
        requestId,
      );
      return;
    }
    const credit = request.credit ?? 0;
    if (credit > limits.maxCreditPerSubscription) {
      this.sendError(WsErrorCode.CreditInvalid, `credit must be at most ${limits.maxCreditPerSubscription}`, requestId);
      return;
    }
    const tag = request.tag ?? '*';
    try {
      validateSelector(tag);
    } catch (err) {
      this.sendError(WsErrorCode.SubscriptionInvalid, (err as Error).message, requestId);
      return;
    }
    if (request.group?.startsWith(PRIVATE_GROUP_PREFIX) === true) {
      this.sendError(
        WsErrorCode.BadRequest,
        `group names starting with ${PRIVATE_GROUP_PREFIX} are reserved`,
        requestId,
      );
      return;
    }
    const privateGroup = request.group === undefined;
    const group = request.group ?? `${PRIVATE_GROUP_PREFIX}${this.context.sessionId}_${this.nextPrivateGroup++}`;
    const pending: Pending = { credit, cancelled: false };
    this.pending.set(id, pending);
    const ackTimeoutMs = request.ackTimeoutMs ?? limits.defaultAckTimeoutMs;
    let consumer: SimpleConsumer;
    try {
      consumer = await this.context.openConsumer({
        group,
        privateGroup,
        topic: request.topic,
        tag,
        from: request.from ?? 'last',
        timestamp: request.timestamp,
        offset: request.offset,
        ackTimeoutMs,
      });
    } catch (err) {
      this.pending.delete(id);
      this.context.log.warn({ err, topic: request.topic, group }, 'subscribe failed');
      this.sendError(wsCodeOf(err), `subscribe failed: ${(err as Error).message}`, requestId, { subscriptionId: id });
      return;
    }
    this.pending.delete(id);
    if (pending.cancelled || this.state === 'closed') {
      await consumer.shutdown().catch(() => undefined);
      return;
    }
    const encoding = request.bodyEncoding ?? 'auto';
    const subscriptionId = id;
    const subscription = new Subscription({
      id: subscriptionId,
      topic: request.topic,
      group,
      consumer,
      ackTimeoutMs,
      maxInFlight: limits.maxInFlightPerSubscription,
      initialCredit: pending.credit,
      deliver: (message, messageId) => this.deliver(subscriptionId, encoding, message, messageId),
      onReceiveError: (err) =>
        this.sendError(wsCodeOf(err), `receiving failed, retrying: ${(err as Error).message}`, undefined, {
          subscriptionId,
        }),
    });
    this.subscriptions.set(subscriptionId, subscription);
    this.encodings.set(subscriptionId, encoding);
    const reply: Record<string, unknown> = {
      type: 'subscribed',
      requestId,
      subscriptionId,
      topic: request.topic,
      tag,
      credit: pending.credit,
      ackTimeoutMs,
    };
    if (!privateGroup) reply['group'] = group;
    this.sendJson(reply);
    subscription.start();
  }

  private deliver(subscriptionId: string, encoding: BodyEncoding, message: ReceivedMessage, messageId: string): void {
    const { header, body } = messageHeaderOf(message, subscriptionId, messageId);
    if (encoding === 'binary') this.context.send(encodeBinaryFrame(header, body));
    else this.sendJson(messageFrameOf(header, body, encoding));
  }

  private onCredit(request: CreditRequest): void {
    const max = this.context.limits.maxCreditPerSubscription;
    const subscription = this.subscriptions.get(request.subscriptionId);
    const pending = this.pending.get(request.subscriptionId);
    const current = subscription?.credit ?? pending?.credit;
    if (current === undefined) {
      this.sendError(WsErrorCode.UnknownSubscription, `no subscription ${request.subscriptionId}`, request.requestId, {
        subscriptionId: request.subscriptionId,
      });
      return;
    }
    if (current + request.credit > max) {
      this.sendError(
        WsErrorCode.CreditInvalid,
        `credit ${current} + ${request.credit} would exceed maxCreditPerSubscription ${max}; credit unchanged`,
        request.requestId,
        { subscriptionId: request.subscriptionId },
      );
      return;
    }
    if (subscription !== undefined) subscription.grant(request.credit);
    else if (pending !== undefined) pending.credit += request.credit;
    if (request.requestId !== undefined) {
      this.sendJson({
        type: 'credited',
        requestId: request.requestId,
        subscriptionId: request.subscriptionId,
        credit: current + request.credit,
      });
    }
  }

  private async onSettle(request: AckRequest | NackRequest): Promise<void> {
    const hash = request.messageId.lastIndexOf('#');
    const subscription = hash > 0 ? this.subscriptions.get(request.messageId.slice(0, hash)) : undefined;
    try {
      if (subscription === undefined) {
        throw new WsError(
          WsErrorCode.UnknownMessage,
          `message ${request.messageId} is not outstanding on this connection`,
        );
      }
      if (request.type === 'ack') await subscription.ack(request.messageId);
      else await subscription.nack(request.messageId, request.delayMs ?? 0);
    } catch (err) {
      if (!(err instanceof WsError))
        this.context.log.warn({ err, messageId: request.messageId }, `${request.type} failed`);
      this.sendError(wsCodeOf(err), (err as Error).message, request.requestId, { messageId: request.messageId });
      return;
    }
    if (request.requestId !== undefined) {
      this.sendJson({
        type: request.type === 'ack' ? 'acked' : 'nacked',
        requestId: request.requestId,
        messageId: request.messageId,
      });
    }
  }

  private onUnsubscribe(request: UnsubscribeRequest): void {
    const id = request.subscriptionId;
    const subscription = this.subscriptions.get(id);
    const pending = this.pending.get(id);
    if (subscription === undefined && pending === undefined) {
      this.sendError(WsErrorCode.UnknownSubscription, `no subscription ${id}`, request.requestId, {
        subscriptionId: id,
      });
      return;
    }
    if (pending !== undefined) {
      pending.cancelled = true;
      this.pending.delete(id);
    }
    if (subscription !== undefined) {
      this.subscriptions.delete(id);
      this.encodings.delete(id);
      const closing = subscription.close().catch((err: unknown) => {
        this.context.log.warn({ err, subscription: id }, 'closing a subscription failed');
      });
      this.closing.push(closing);
    }
    const reply: Record<string, unknown> = { type: 'unsubscribed', subscriptionId: id };
    if (request.requestId !== undefined) reply['requestId'] = request.requestId;
    this.sendJson(reply);
  }

  private protocolError(err: unknown, requestId: RequestId | undefined): void {
    const code = wsCodeOf(err);
    const message = err instanceof Error ? err.message : String(err);
    this.sendError(code, message, requestId);
    // Only garbage counts toward the limit; a well-formed request with a bad field is just refused.
    if (code !== WsErrorCode.BadJson && code !== WsErrorCode.BadFrame && code !== WsErrorCode.UnknownType) return;
    this.protocolErrors++;
    if (this.protocolErrors > this.context.limits.maxProtocolErrors) {
      this.context.close(CloseCode.ProtocolError, `more than ${this.context.limits.maxProtocolErrors} protocol errors`);
    }
  }

  private sendError(
    code: WsErrorCode,
    message: string,
    requestId: RequestId | undefined,
    extra: Record<string, string> = {},
  ): void {
    const frame: Record<string, unknown> = { type: 'error', code, message, ...extra };
    if (requestId !== undefined) frame['requestId'] = requestId;
    this.sendJson(frame);
  }

  private sendJson(frame: object): void {
    if (this.state === 'closed') return;
    this.context.send(JSON.stringify(frame));
  }
}
