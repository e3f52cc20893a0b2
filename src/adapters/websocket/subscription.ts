/**
 * One WebSocket subscription: a SimpleConsumer (RocketMQ 5 pop) in the subscription's group, the
 * credit the client granted, and the messages delivered but not yet settled. The broker keeps
 * leases, acks and redelivery; this class only asks it for as many messages as the credit allows,
 * so nothing is buffered here beyond what the client asked for.
 *
 * Invariants: a receive asks for at most min(credit, maxInFlight - inFlight, 32) messages, and
 * credit only grows while a receive is out, so credit never goes below zero; every delivered
 * message is in `inFlight` until it is acked, nacked, its lease ends, or the subscription closes
 * (then it is handed back to the group with invisible time 0, so another member gets it at once).
 */
import { isRbError, ErrorCode } from '../../engine/common/errors.js';
import { invariant } from '../../engine/common/assert.js';
import type { ReceivedMessage, SimpleConsumer } from '../../engine/client/index.js';
import { createLogger } from '../../engine/common/logger.js';
import { WsError, WsErrorCode } from './errors.js';

const log = createLogger('ws-subscription');

/** RocketMQ caps one pop at 32 messages. */
const MAX_PER_RECEIVE = 32;
const MIN_RETRY_MS = 100;
const MAX_RETRY_MS = 2000;

export interface SubscriptionOptions {
  id: string;
  topic: string;
  group: string;
  consumer: SimpleConsumer;
  /** Lease of each delivered message; an unsettled message is redelivered after it. */
  ackTimeoutMs: number;
  maxInFlight: number;
  initialCredit: number;
  deliver: (message: ReceivedMessage, messageId: string) => void;
  /** A receive failed for a reason other than a topic that does not exist yet; called once per failure streak. */
  onReceiveError: (err: unknown) => void;
}

export class Subscription {
  readonly id: string;
  readonly topic: string;
  readonly group: string;
  private creditLeft: number;
  private readonly inFlight = new Map<string, ReceivedMessage>();
  private active = true;
  private nextSeq = 1;
  private wake: (() => void) | undefined;
  private loopDone: Promise<void> = Promise.resolve();
  private closing: Promise<void> | undefined;

  constructor(private readonly options: SubscriptionOptions) {
    this.id = options.id;
    this.topic = options.topic;
    this.group = options.group;
    this.creditLeft = options.initialCredit;
  }

  get credit(): number {
    return this.creditLeft;
  }

  get inFlightCount(): number {
    return this.inFlight.size;
  }

  start(): void {
    this.loopDone = this.loop().catch((err: unknown) => {
      log.error({ err, subscription: this.id, group: this.group }, 'subscription loop stopped');
    });
  }

  /** Adds credit; the caller has checked the total against the limit. */
  grant(credit: number): void {
    this.creditLeft += credit;
    this.poke();
  }

  /** Acknowledges a delivered message for good. Throws WsError(UnknownMessage) for an id not outstanding. */
  async ack(messageId: string): Promise<void> {
    const message = this.take(messageId);
    await this.options.consumer.ack(message);
  }

  /** Hands a delivered message back to the group, visible again after `delayMs`. */
  async nack(messageId: string, delayMs: number): Promise<void> {
    const message = this.take(messageId);
    await this.options.consumer.nack(message, delayMs);
  }

  /** Forgets messages whose lease ended: the broker redelivers them, maybe here under a new id. */
  sweepExpiredLeases(nowMs: number): void {
    let freed = false;
    for (const [messageId, message] of this.inFlight) {
      if (message.invisibleUntilMs <= nowMs) {
        this.inFlight.delete(messageId);
        freed = true;
      }
    }
    if (freed) this.poke();
  }

  /**
   * Stops receiving, waits for a receive in flight, hands every unsettled message back to the group
   * (invisible time 0) and shuts the consumer down. Safe to call twice.
   */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.active = false;
    this.poke();
    await this.loopDone;
    const held = [...this.inFlight.values()];
    this.inFlight.clear();
    const results = await Promise.allSettled(held.map((message) => this.options.consumer.nack(message, 0)));
    const failures = results.filter((result) => result.status === 'rejected');
    if (failures.length > 0) {
      log.warn(
        { err: failures[0]?.reason, subscription: this.id, group: this.group, failed: failures.length },
        'could not hand back some messages; their leases will run out',
      );
    }
    await this.options.consumer.shutdown();
  }

  private take(messageId: string): ReceivedMessage {
    const message = this.inFlight.get(messageId);
    if (message === undefined) {
      throw new WsError(
        WsErrorCode.UnknownMessage,
        `message ${messageId} is not outstanding (already settled, lease over, or never delivered)`,
      );
    }
    this.inFlight.delete(messageId);
    this.poke();
    return message;
  }

  private poke(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private waitForPoke(timeoutMs?: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = timeoutMs === undefined ? undefined : setTimeout(() => this.poke(), timeoutMs);
      this.wake = () => {
        if (timer !== undefined) clearTimeout(timer);
        resolve();
      };
    });
  }

  private async loop(): Promise<void> {
    let retryMs = 0;
    let reported = false;
    while (this.active) {
      const want = Math.min(this.creditLeft, this.options.maxInFlight - this.inFlight.size, MAX_PER_RECEIVE);
      if (want <= 0) {
        await this.waitForPoke();
        continue;
      }
      let received: ReceivedMessage[];
      try {
        received = await this.options.consumer.receive(want, this.options.ackTimeoutMs);
        retryMs = 0;
        reported = false;
      } catch (err) {
        if (!this.active) break;
        // A topic nobody has written yet has no route: wait for it quietly.
        const expected = isRbError(err, ErrorCode.NoRoute) || isRbError(err, ErrorCode.TopicNotExist);
        if (!expected && !reported) {
          reported = true;
          log.warn({ err, subscription: this.id, group: this.group }, 'receive failed; retrying');
          this.options.onReceiveError(err);
        }
        retryMs = Math.min(MAX_RETRY_MS, Math.max(MIN_RETRY_MS, retryMs * 2));
        await this.waitForPoke(retryMs);
        continue;
      }
      invariant(received.length <= want, 'the broker returned more messages than asked for');
      if (!this.active) {
        // Closed during the long poll: these were never delivered; close() hands them back.
        for (const message of received) this.inFlight.set(`returned#${this.nextSeq++}`, message);
        break;
      }
      for (const message of received) {
        this.creditLeft--;
        const messageId = `${this.id}#${this.nextSeq++}`;
        this.inFlight.set(messageId, message);
        this.options.deliver(message, messageId);
      }
      invariant(this.creditLeft >= 0, 'credit went below zero');
    }
  }
}
