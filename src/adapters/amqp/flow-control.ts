/**
 * Publisher flow control for the vhost, RabbitMQ's resource alarms in small: while an alarm is on,
 * every connection that announced the `connection.blocked` capability is sent connection.blocked,
 * and a connection that publishes stops being read until connection.unblocked.
 *
 * Alarms:
 *   'store'   the broker's store refused a write (ServiceNotAvailable after a disk error, or
 *             SystemBusy). The engine has no push signal for this, so after a refusal the broker
 *             runtime info (storeReadOnly) is polled until every master writes again.
 *   'backlog' publishes handed to the engine and not yet stored (unconfirmed) are over the
 *             high-water mark in messages or bytes; cleared at half the mark, so it does not flap.
 *   'memory'  the process RSS is over memoryHighWaterBytes (off unless configured).
 */
import { AdminClient, type Transport } from '../../engine/client/index.js';
import { createLogger } from '../../engine/common/logger.js';

const log = createLogger('amqp-flow');

export type AlarmKind = 'store' | 'backlog' | 'memory';

/** Reply texts of connection.blocked, one per alarm (RabbitMQ sends e.g. "low on disk"). */
const REASONS: Readonly<Record<AlarmKind, string>> = {
  store: 'low on disk: the store refuses writes',
  backlog: 'publish backlog over the high-water mark',
  memory: 'low on memory',
};

export interface FlowControlOptions {
  nameServers: readonly string[];
  transport: Transport;
  /** Unconfirmed publishes (vhost-wide) that turn the backlog alarm on; default 20,000. */
  backlogHighWaterMessages?: number;
  /** Their bytes; default 256 MiB. */
  backlogHighWaterBytes?: number;
  /** Process RSS that turns the memory alarm on; unset = no memory alarm. */
  memoryHighWaterBytes?: number;
  /** How often the store and memory alarms are re-checked while on; default 1000 ms. */
  checkIntervalMs?: number;
}

/** One party told about alarms: a connection. */
export interface FlowListener {
  flowChanged(blockedReason: string | undefined): void;
}

/**
 * RocketMQ response codes of a refused write (SYSTEM_BUSY, SERVICE_NOT_AVAILABLE): wire values,
 * spelled out here because adapters may not import the remoting layer.
 */
const REFUSAL_CODES: ReadonlySet<unknown> = new Set([2, 14]);

/** Whether a failed store is the broker refusing writes (rather than e.g. a timeout or no route). */
export function isWriteRefusal(err: unknown): boolean {
  for (let at: unknown = err, depth = 0; at instanceof Error && depth < 8; at = at.cause, depth++) {
    const code = (at as { responseCode?: unknown }).responseCode;
    if (REFUSAL_CODES.has(code)) return true;
  }
  return false;
}

export class FlowControl {
  private readonly alarms = new Set<AlarmKind>();
  private readonly listeners = new Set<FlowListener>();
  private readonly highWaterMessages: number;
  private readonly highWaterBytes: number;
  private readonly checkIntervalMs: number;
  private admin: AdminClient | undefined;
  private storeTimer: NodeJS.Timeout | undefined;
  private memoryTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private backlogMessages = 0;
  private backlogBytes = 0;

  constructor(private readonly options: FlowControlOptions) {
    this.highWaterMessages = options.backlogHighWaterMessages ?? 20_000;
    this.highWaterBytes = options.backlogHighWaterBytes ?? 256 * 1024 * 1024;
    this.checkIntervalMs = options.checkIntervalMs ?? 1000;
  }

  start(): void {
    const limit = this.options.memoryHighWaterBytes;
    if (limit !== undefined) {
      this.memoryTimer = setInterval(() => this.set('memory', process.memoryUsage.rss() > limit), this.checkIntervalMs);
      this.memoryTimer.unref();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.storeTimer !== undefined) clearTimeout(this.storeTimer);
    if (this.memoryTimer !== undefined) clearInterval(this.memoryTimer);
    this.storeTimer = undefined;
    this.memoryTimer = undefined;
    this.listeners.clear();
    const admin = this.admin;
    this.admin = undefined;
    await admin?.shutdown();
  }

  /** The reason of the first alarm that is on, or undefined when publishing may go ahead. */
  get blockedReason(): string | undefined {
    for (const kind of this.alarms) return REASONS[kind];
    return undefined;
  }

  get alarmsOn(): readonly AlarmKind[] {
    return [...this.alarms];
  }

  subscribe(listener: FlowListener): void {
    this.listeners.add(listener);
  }

  unsubscribe(listener: FlowListener): void {
    this.listeners.delete(listener);
  }

  /** A publish went to the engine (`+1`) or settled (`-1`). */
  backlog(deltaMessages: number, deltaBytes: number): void {
    this.backlogMessages += deltaMessages;
    this.backlogBytes += deltaBytes;
    if (this.alarms.has('backlog')) {
      if (this.backlogMessages <= this.highWaterMessages / 2 && this.backlogBytes <= this.highWaterBytes / 2) {
        this.set('backlog', false);
      }
    } else if (this.backlogMessages > this.highWaterMessages || this.backlogBytes > this.highWaterBytes) {
      this.set('backlog', true);
    }
  }

  /** A store failed: if the broker refused the write, block publishers until it writes again. */
  storeFailed(err: unknown): void {
    if (this.stopped || !isWriteRefusal(err) || this.alarms.has('store')) return;
    log.warn({ err }, 'the broker refuses writes; blocking AMQP publishers');
    this.set('store', true);
    this.scheduleStoreCheck();
  }

  private scheduleStoreCheck(): void {
    if (this.stopped) return;
    this.storeTimer = setTimeout(() => {
      this.storeTimer = undefined;
      void this.checkStore().then((writable) => {
        if (writable) {
          log.info('the broker writes again; unblocking AMQP publishers');
          this.set('store', false);
        } else {
          this.scheduleStoreCheck();
        }
      });
    }, this.checkIntervalMs);
  }

  /** True when every master answers its runtime info with storeReadOnly false. */
  private async checkStore(): Promise<boolean> {
    try {
      if (this.admin === undefined) {
        const admin = new AdminClient({ nameServers: this.options.nameServers, transport: this.options.transport });
        await admin.start();
        if (this.stopped) {
          await admin.shutdown();
          return false;
        }
        this.admin = admin;
      }
      const admin = this.admin;
      const masters = (await admin.brokers()).filter((broker) => broker.brokerId === 0);
      if (masters.length === 0) return false;
      const infos = await Promise.all(masters.map((broker) => admin.brokerRuntimeInfo(broker.address)));
      return infos.every((info) => info['storeReadOnly'] !== 'true');
    } catch (err) {
      log.debug({ err }, 'broker runtime info unavailable; publishers stay blocked');
      return false;
    }
  }

  private set(kind: AlarmKind, on: boolean): void {
    if (this.alarms.has(kind) === on) return;
    const before = this.blockedReason;
    if (on) this.alarms.add(kind);
    else this.alarms.delete(kind);
    const after = this.blockedReason;
    if ((before === undefined) === (after === undefined)) return;
    log.info({ alarm: kind, on }, after === undefined ? 'AMQP publishers unblocked' : 'AMQP publishers blocked');
    for (const listener of [...this.listeners]) listener.flowChanged(after);
  }
}
