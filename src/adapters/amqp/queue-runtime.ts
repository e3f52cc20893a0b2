/**
 * A queue at run time: its backend, its consumers (round-robin dispatch within each channel's
 * prefetch limits), and the RabbitMQ queue arguments that act on messages: x-message-ttl and the
 * per-message `expiration` (expired messages are never delivered), x-max-length and
 * x-max-length-bytes with x-overflow (drop-head: the oldest ready messages are dropped past them;
 * reject-publish / reject-publish-dlx: a publish that would not fit is refused, see admit()),
 * dead-lettering of rejected, expired and dropped messages to x-dead-letter-exchange (with
 * x-dead-letter-routing-key), and x-expires (the queue is deleted after that long without
 * consumers or use). Ages count from the publish time (bornTimestamp).
 *
 * Lengths count ready messages only (as RabbitMQ): those this gateway has fetched, plus, for
 * reject-publish, those admitted at publish time and not fetched yet. The fetch-ahead limit is
 * raised to x-max-length (up to MAX_READY_LIMIT) so the whole queue is counted.
 */
import type { MessageExt } from '../../engine/client/index.js';
import { createLogger } from '../../engine/common/logger.js';
import type { QueueDef } from './definitions.js';
import type { FieldValue } from './field-table.js';
import { FieldTyped } from './field-table.js';
import { AmqpProperty } from './mapping.js';
import { bodyBytesOf, type QueueBackend, type QueueMessage } from './queue-backend.js';

const log = createLogger('amqp-queue-runtime');

/** How often TTL and max-length are enforced on messages waiting in a queue. */
const SWEEP_INTERVAL_MS = 100;
/** Dispatches per turn, so one busy queue cannot starve the event loop. */
const DISPATCH_BOUND = 10_000;
/** The most messages a queue fetches ahead to enforce x-max-length on; larger limits count this many. */
export const MAX_READY_LIMIT = 100_000;
/**
 * An admitted publish not seen in the backend after this long is no longer counted (another
 * gateway took it, or it was stored somewhere this one does not read).
 */
const ADMITTED_GRACE_MS = 10_000;

export type OverflowMode = 'drop-head' | 'reject-publish' | 'reject-publish-dlx';
export const OVERFLOW_MODES: ReadonlySet<string> = new Set(['drop-head', 'reject-publish', 'reject-publish-dlx']);

export type DeadLetterReason = 'rejected' | 'expired' | 'maxlen';

/** What a queue needs from the channel a consumer lives on. */
export interface ConsumerChannel {
  readonly connectionId: number;
  /** Whether the consumer may take one more message now (prefetch, flow, socket back-pressure). */
  canDeliver(consumer: Consumer): boolean;
  deliver(consumer: Consumer, message: QueueMessage): void;
  /** The queue went away: tell the client (basic.cancel) and forget the consumer. */
  cancelledByServer(consumer: Consumer): void;
}

export interface Consumer {
  readonly tag: string;
  readonly queue: QueueRuntime;
  readonly noAck: boolean;
  readonly exclusive: boolean;
  readonly channel: ConsumerChannel;
  /** Deliveries not yet acked (for per-consumer prefetch). */
  unacked: number;
  /** Per-consumer prefetch count, 0 = unlimited. */
  prefetchCount: number;
}

/** What the runtime asks of the vhost. */
export interface QueueHost {
  /** Republishes a message to the queue's dead-letter exchange; resolves once stored. */
  deadLetter(queue: QueueRuntime, message: MessageExt, reason: DeadLetterReason): Promise<void>;
  /** The queue should go (auto-delete after the last consumer, or x-expires). */
  expire(queue: QueueRuntime, why: string): void;
}

/** A non-negative integer queue argument, or undefined when absent or not one. */
export function numberArgument(value: FieldValue): number | undefined {
  const raw = value instanceof FieldTyped ? Number(value.value) : typeof value === 'bigint' ? Number(value) : value;
  if (typeof raw === 'number' && Number.isFinite(raw) && raw >= 0) return Math.floor(raw);
  if (typeof raw === 'string' && /^\d+$/.test(raw)) return Number(raw);
  return undefined;
}

function stringArgument(value: FieldValue): string | undefined {
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  return undefined;
}

/** The queue arguments this server acts on, parsed; undefined = not set. */
export interface QueuePolicy {
  messageTtlMs: number | undefined;
  maxLength: number | undefined;
  maxLengthBytes: number | undefined;
  overflow: OverflowMode;
  deadLetterExchange: string | undefined;
  deadLetterRoutingKey: string | undefined;
  expiresMs: number | undefined;
}

export function policyOf(def: QueueDef): QueuePolicy {
  const args = def.arguments;
  return {
    messageTtlMs: numberArgument(args['x-message-ttl']),
    maxLength: numberArgument(args['x-max-length']),
    maxLengthBytes: numberArgument(args['x-max-length-bytes']),
    overflow: overflowOf(args['x-overflow']),
    deadLetterExchange: stringArgument(args['x-dead-letter-exchange']),
    deadLetterRoutingKey: stringArgument(args['x-dead-letter-routing-key']),
    expiresMs: numberArgument(args['x-expires']),
  };
}

function overflowOf(value: FieldValue): OverflowMode {
  const text = stringArgument(value);
  return text !== undefined && OVERFLOW_MODES.has(text) ? (text as OverflowMode) : 'drop-head';
}

/** Names of arguments that must be numbers, for declare-time checks. */
export const NUMERIC_QUEUE_ARGUMENTS: readonly string[] = [
  'x-message-ttl',
  'x-max-length',
  'x-max-length-bytes',
  'x-expires',
];

/** How many messages a queue with this policy should fetch ahead (undefined: the backend's default). */
export function readyLimitOf(policy: QueuePolicy): number | undefined {
  if (policy.maxLength === undefined) return undefined;
  return Math.min(MAX_READY_LIMIT, Math.max(1000, policy.maxLength + 64));
}

export class QueueRuntime {
  readonly consumers: Consumer[] = [];
  readonly policy: QueuePolicy;
  private roundRobin = 0;
  private dispatchScheduled = false;
  private dispatchQueued = false;
  private hadConsumer = false;
  private sweepTimer: NodeJS.Timeout | undefined;
  private expiresTimer: NodeJS.Timeout | undefined;
  /** reject-publish: publishes admitted (by unique id) and not fetched yet, with their body bytes. */
  private readonly admitted = new Map<string, { bytes: number; atMs: number }>();
  private admittedBytes = 0;
  deleted = false;

  constructor(
    readonly def: QueueDef,
    readonly backend: QueueBackend,
    readonly ownerConnectionId: number | undefined,
    private readonly host: QueueHost,
  ) {
    this.policy = policyOf(def);
    backend.onReady(() => this.dispatchSoon());
    this.sweepTimer = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
    this.touch();
    this.updateDemand();
  }

  get name(): string {
    return this.def.name;
  }

  /** Use of the queue (consume, get, declare): restarts the x-expires clock. */
  touch(): void {
    if (this.policy.expiresMs === undefined || this.deleted) return;
    if (this.expiresTimer !== undefined) clearTimeout(this.expiresTimer);
    this.expiresTimer = setTimeout(() => {
      this.expiresTimer = undefined;
      if (this.consumers.length === 0) this.host.expire(this, 'x-expires');
      else this.touch();
    }, this.policy.expiresMs);
  }

  stop(): void {
    this.deleted = true;
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer);
    if (this.expiresTimer !== undefined) clearTimeout(this.expiresTimer);
    this.sweepTimer = undefined;
    this.expiresTimer = undefined;
  }

  /** Fetch ahead only with consumers here, or TTL/max-length to enforce on waiting messages. */
  private updateDemand(): void {
    const policyNeedsMessages =
      this.policy.messageTtlMs !== undefined ||
      this.policy.maxLength !== undefined ||
      this.policy.maxLengthBytes !== undefined;
    this.backend.setDemand(this.consumers.length > 0 || policyNeedsMessages);
  }

  /** Whether x-overflow makes this queue refuse publishes that do not fit (rather than drop the head). */
  get rejectsPublishes(): boolean {
    const { maxLength, maxLengthBytes, overflow } = this.policy;
    return overflow !== 'drop-head' && (maxLength !== undefined || maxLengthBytes !== undefined);
  }

  /**
   * reject-publish: whether a publish of `bytes` body bytes fits (RabbitMQ: length + 1 over
   * x-max-length, or ready bytes + its bytes over x-max-length-bytes, does not). A message that
   * fits is counted from now on, until the backend fetches it (arrived) or the store fails (forget).
   */
  admit(id: string, bytes: number): boolean {
    if (!this.rejectsPublishes) return true;
    const { maxLength, maxLengthBytes } = this.policy;
    if (maxLength !== undefined && this.backend.readyCount() + this.admitted.size + 1 > maxLength) return false;
    if (maxLengthBytes !== undefined && this.backend.readyBytes() + this.admittedBytes + bytes > maxLengthBytes) {
      return false;
    }
    this.admitted.set(id, { bytes, atMs: Date.now() });
    this.admittedBytes += bytes;
    return true;
  }

  /** An admitted publish reached the backend (or was never stored): stop counting it here. */
  forget(id: string | undefined): void {
    if (id === undefined) return;
    const entry = this.admitted.get(id);
    if (entry === undefined) return;
    this.admitted.delete(id);
    this.admittedBytes -= entry.bytes;
  }

  addConsumer(consumer: Consumer): void {
    this.consumers.push(consumer);
    this.updateDemand();
    this.hadConsumer = true;
    this.touch();
    this.scheduleDispatch();
  }

  removeConsumer(consumer: Consumer): void {
    const at = this.consumers.indexOf(consumer);
    if (at >= 0) this.consumers.splice(at, 1);
    this.updateDemand();
    if (this.consumers.length === 0) {
      this.touch();
      if (this.hadConsumer && this.def.autoDelete) this.host.expire(this, 'auto-delete');
    }
  }

  /** When a message stops being deliverable (ms since the epoch), or undefined for never. */
  private expiresAtMs(message: QueueMessage): number | undefined {
    const born = message.message.bornTimestamp;
    let at: number | undefined;
    if (this.policy.messageTtlMs !== undefined) at = born + this.policy.messageTtlMs;
    const expiration = message.message.properties[AmqpProperty.Expiration];
    if (expiration !== undefined && /^\d+$/.test(expiration)) {
      const own = born + Number(expiration);
      at = at === undefined ? own : Math.min(at, own);
    }
    return at;
  }

  private isExpired(message: QueueMessage, nowMs: number): boolean {
    const at = this.expiresAtMs(message);
    return at !== undefined && at <= nowMs;
  }

  /** The next deliverable message, dead-lettering expired ones on the way. */
  receiveLive(): QueueMessage | undefined {
    const now = Date.now();
    for (let i = 0; i < DISPATCH_BOUND; i++) {
      const [message] = this.backend.receive(1);
      if (message === undefined) return undefined;
      if (!this.isExpired(message, now)) return message;
      this.discard(message, 'expired');
    }
    return undefined;
  }

  /**
   * A message taken from the backend that will not be delivered again: dead-lettered when the
   * queue has a dead-letter exchange (acked once republished; requeued if that fails), else acked.
   */
  discard(message: QueueMessage, reason: DeadLetterReason): void {
    if (this.policy.deadLetterExchange === undefined) {
      this.backend.ack(message.id);
      return;
    }
    this.host.deadLetter(this, message.message, reason).then(
      () => this.backend.ack(message.id),
      (err: unknown) => {
        log.warn({ err, queue: this.name, reason }, 'dead-lettering failed; message requeued');
        this.backend.nack(message.id, true);
      },
    );
  }

  /** Enforces TTL and max-length on waiting messages. */
  private sweep(): void {
    if (this.deleted) return;
    const now = Date.now();
    const hasPerMessageTtl = (m: QueueMessage): boolean => m.message.properties[AmqpProperty.Expiration] !== undefined;
    for (const message of this.backend.takeWhere(
      (m) => (this.policy.messageTtlMs !== undefined || hasPerMessageTtl(m)) && this.isExpired(m, now),
      1000,
    )) {
      this.discard(message, 'expired');
    }
    for (const [id, entry] of this.admitted) {
      if (now - entry.atMs < ADMITTED_GRACE_MS) break; // insertion order is age order
      this.forget(id);
    }
    // reject-publish never drops what it admitted, even when requeues push the queue past its limit.
    if (this.policy.overflow !== 'drop-head') return;
    const maxLength = this.policy.maxLength;
    if (maxLength !== undefined) {
      const excess = this.backend.readyCount() - maxLength;
      if (excess > 0) for (const message of this.backend.receive(excess)) this.discard(message, 'maxlen');
    }
    const maxBytes = this.policy.maxLengthBytes;
    if (maxBytes !== undefined) {
      let bytes = this.backend.readyBytes();
      for (let guard = 0; bytes > maxBytes && guard < DISPATCH_BOUND; guard++) {
        const [oldest] = this.backend.receive(1);
        if (oldest === undefined) break;
        bytes -= bodyBytesOf(oldest.message);
        this.discard(oldest, 'maxlen');
      }
    }
  }

  /** Dispatch on the next turn: many acks or readies in one turn cost one pass. */
  scheduleDispatch(): void {
    if (this.dispatchScheduled || this.deleted) return;
    this.dispatchScheduled = true;
    setImmediate(() => {
      this.dispatchScheduled = false;
      this.dispatch();
    });
  }

  /**
   * Messages became ready (a fetched batch, a requeue): deliver them once the current callback is
   * done rather than on the next turn. A fetch result arrives in a promise reaction, so a next-turn
   * dispatch (and the socket write it leads to) waited for a whole event-loop iteration, every
   * socket read and store callback in it included: under load a large part of the p99 from publish
   * to delivery. A batch still costs one pass: the microtask runs after take() has added all of it.
   */
  private dispatchSoon(): void {
    if (this.dispatchQueued || this.deleted) return;
    this.dispatchQueued = true;
    queueMicrotask(() => {
      this.dispatchQueued = false;
      if (!this.deleted) this.dispatch();
    });
  }

  private dispatch(): void {
    if (this.policy.maxLength !== undefined || this.policy.maxLengthBytes !== undefined) this.sweep();
    for (let delivered = 0; this.consumers.length > 0; delivered++) {
      if (delivered >= DISPATCH_BOUND) {
        this.scheduleDispatch();
        return;
      }
      let chosen: Consumer | undefined;
      for (let tried = 0; tried < this.consumers.length; tried++) {
        const candidate = this.consumers[(this.roundRobin + tried) % this.consumers.length] as Consumer;
        if (candidate.channel.canDeliver(candidate)) {
          chosen = candidate;
          this.roundRobin = (this.roundRobin + tried + 1) % this.consumers.length;
          break;
        }
      }
      if (chosen === undefined) return;
      const message = this.receiveLive();
      if (message === undefined) return;
      chosen.channel.deliver(chosen, message);
    }
  }
}
