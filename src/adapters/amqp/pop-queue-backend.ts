/**
 * QueueBackend on the engine's SimpleConsumer (RocketMQ 5 pop): the broker leases each message to
 * the queue's consumer group and keeps acks and redelivery, so several gateway processes may serve
 * one queue. Per subscribed topic, one long-polling consumer fetches ahead (up to readyLimit) and a
 * second, non-waiting one drains on demand for exact counts (basic.get, declare-ok, purge).
 *
 * Leases: messages held here (ready, or delivered and unacked) have their lease renewed before it
 * runs out; a requeue (nack, recover, lost AMQP connection) stays local with `redelivered` set; on
 * stop every held lease is ended (invisible time 0) so the broker offers it again at once with its
 * reconsume count raised, which becomes `redelivered` after a restart. A crash leaves leases to run
 * out (leaseMs) before redelivery. A new binding starts at the topic's current end: the group's
 * offsets are committed at the end before the binding is answered, and topics that do not exist
 * yet are read from their first message (consumeFromWhere FIRST_OFFSET).
 *
 * Throughput: acks go to the broker together, those of up to ACK_FLUSH_DELAY_MS as one
 * BATCH_ACK_MESSAGE per topic (the broker journals them in one record before answering, so an acked
 * message stays acked across a restart; stop() sends what is still waiting); while pops come back
 * full, up to FETCHES_IN_FLIGHT receives run at once so a prefetch of hundreds is kept fed 32
 * messages (one pop) at a time.
 */
import { PullConsumer, type ReceivedMessage, SimpleConsumer, type Transport } from '../../engine/client/index.js';
import { ChurnSet } from '../../engine/common/churn-map.js';
import { ErrorCode, isRbError } from '../../engine/common/errors.js';
import { createLogger } from '../../engine/common/logger.js';
import { type QueueBackend, type QueueMessage, ReadyListBackend } from './queue-backend.js';

const log = createLogger('amqp-pop-queue');

export interface PopQueueBackendOptions {
  group: string;
  nameServers: readonly string[];
  transport?: Transport;
  accepts: (message: ReceivedMessage) => boolean;
  /** Tag expression to pop a topic with (the broker filters by it); '*' when omitted. */
  expressionFor?: (topic: string) => string;
  readyLimit?: number;
  /** Long polling time of the fetching consumer (default 1000 ms). */
  pollMs?: number;
  retryMs?: number;
  /** Lease of a held message, renewed while held (default 30 s). */
  leaseMs?: number;
}

interface TopicLoop {
  topic: string;
  active: boolean;
  fetcher: SimpleConsumer;
  drainer: SimpleConsumer;
  /** Wakes the fetch workers sleeping after a failed receive or waiting for a backlog. */
  readonly wakers: ChurnSet<() => void>;
  /** The fetcher's receives in flight, so stop can wait for what they lease. */
  readonly current: ChurnSet<Promise<unknown>>;
  /** Messages asked for by those receives, counted against readyLimit. */
  reserved: number;
  /** The last receive came back full: more are waiting, so the extra fetch workers run. */
  backlog: boolean;
}

interface Entry extends QueueMessage {
  readonly message: ReceivedMessage;
  readonly loop: TopicLoop;
  renewing: Promise<void> | undefined;
}

const BATCH = 32;
/**
 * How long an AMQP ack may wait to travel to the broker with later ones. Ending a lease is not on
 * any client's path (prefetch counts in the channel, and the lease keeps the message from everyone
 * else meanwhile), but each BATCH_ACK_MESSAGE costs the broker a journal write and a request on the
 * one event loop that also carries publishes and deliveries: per event-loop turn that was one batch
 * per one or two messages at a steady 2,000 msgs/s. A crash in this window redelivers those
 * messages (at least once, as a crash before the turn's end did).
 */
const ACK_FLUSH_DELAY_MS = 10;
/** Acks sent at once without waiting for the delay (a batch's body stays small). */
const ACK_BATCH_MAX = 256;
/**
 * Receives in flight per topic: one pop carries at most 32 messages (RocketMQ's limit), so a
 * prefetch of hundreds needs several pops under way to keep consumers fed.
 */
const FETCHES_IN_FLIGHT = 4;

export class PopQueueBackend extends ReadyListBackend<Entry> implements QueueBackend {
  private readonly topics = new Map<string, TopicLoop>();
  private readonly pollMs: number;
  private readonly retryMs: number;
  private readonly leaseMs: number;
  private readonly offsets: PullConsumer;
  private nextId = 1;
  private running = false;
  private renewTimer: NodeJS.Timeout | undefined;
  /** Without demand (no consumers here) the fetchers rest, leaving messages to other gateways. */
  private demand = false;
  private demandWaiters: (() => void)[] = [];
  private readonly sleepers = new ChurnSet<{ timer: NodeJS.Timeout; resolve: () => void }>();
  private readonly settling = new ChurnSet<Promise<void>>();
  /** Acks waiting to go to the broker together (BATCH_ACK_MESSAGE per fetcher), see ACK_FLUSH_DELAY_MS. */
  private pendingAcks: Entry[] = [];
  private ackFlushTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: PopQueueBackendOptions) {
    super(options.readyLimit);
    this.pollMs = options.pollMs ?? 1000;
    this.retryMs = options.retryMs ?? 500;
    this.leaseMs = options.leaseMs ?? 30_000;
    this.offsets = new PullConsumer(this.clientOptions());
  }

  private clientOptions(): { group: string; nameServers: readonly string[]; transport?: Transport } {
    const options: { group: string; nameServers: readonly string[]; transport?: Transport } = {
      group: this.options.group,
      nameServers: this.options.nameServers,
    };
    if (this.options.transport !== undefined) options.transport = this.options.transport;
    return options;
  }

  async start(): Promise<void> {
    await this.offsets.start();
    this.running = true;
    const everyMs = Math.max(50, Math.floor(this.leaseMs / 3));
    this.renewTimer = setInterval(() => this.renewLeases(), everyMs);
  }

  async setTopics(topics: ReadonlySet<string>, fromEnd: ReadonlySet<string>): Promise<void> {
    for (const [topic, loop] of this.topics) {
      if (topics.has(topic)) continue;
      this.topics.delete(topic);
      loop.active = false;
      wakeLoop(loop);
      for (const wake of this.demandWaiters.splice(0)) wake();
      for (let i = this.ready.length - 1; i >= 0; i--) {
        const entry = this.ready[i] as Entry;
        if (entry.loop === loop) {
          this.ready.splice(i, 1);
          this.release(entry, 'drop');
        }
      }
      void this.closeLoopLater(loop);
    }
    const opening: Promise<void>[] = [];
    for (const topic of topics) {
      if (this.topics.has(topic)) continue;
      opening.push(this.openTopic(topic, fromEnd.has(topic)));
    }
    await Promise.all(opening);
  }

  async purge(): Promise<number> {
    await this.catchUp();
    const dropped = this.ready.splice(0, this.ready.length);
    for (const entry of dropped) this.release(entry, 'drop');
    this.wakeDrainWaiters();
    return dropped.length;
  }

  setDemand(demand: boolean): void {
    if (this.demand === demand) return;
    this.demand = demand;
    if (demand) {
      const waiters = this.demandWaiters;
      this.demandWaiters = [];
      for (const wake of waiters) wake();
    }
  }

  topicWritten(topic: string): void {
    const loop = this.topics.get(topic);
    if (loop !== undefined) wakeLoop(loop);
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    if (this.renewTimer !== undefined) clearInterval(this.renewTimer);
    this.renewTimer = undefined;
    for (const sleeper of this.sleepers) {
      clearTimeout(sleeper.timer);
      sleeper.resolve();
    }
    this.sleepers.clear();
    this.wakeDrainWaiters();
    this.demand = true;
    for (const wake of this.demandWaiters.splice(0)) wake();
    // Hand every held lease back, so a restart (or another gateway) gets them at once.
    const held = [...this.ready.splice(0, this.ready.length), ...this.unacked.values()];
    this.unacked.clear();
    this.flushAcks();
    await Promise.allSettled(held.map((entry) => this.settleWithBroker(entry, 'return')));
    const loops = [...this.topics.values()];
    this.topics.clear();
    for (const loop of loops) {
      loop.active = false;
      wakeLoop(loop);
    }
    // A long poll in flight may still lease messages: wait for it, hand those back too.
    await Promise.allSettled(loops.flatMap((loop) => [...loop.current]));
    await Promise.allSettled([...this.settling]);
    await Promise.allSettled(loops.flatMap((loop) => [loop.fetcher.shutdown(), loop.drainer.shutdown()]));
    await this.offsets.shutdown();
  }

  // ---------------------------------------------------------------------------------------------

  protected stillRead(entry: Entry): boolean {
    return entry.loop.active;
  }

  /** Ack (drop) or end the lease (return) in the broker, after any renewal in flight. */
  protected release(entry: Entry, how: 'drop' | 'return'): void {
    if (how === 'drop' && entry.renewing === undefined) {
      // Coalesced: an AMQP client acks message by message (or `multiple`), many in one socket read.
      this.pendingAcks.push(entry);
      if (this.pendingAcks.length >= ACK_BATCH_MAX) this.flushAcks();
      else this.ackFlushTimer ??= setTimeout(() => this.flushAcks(), ACK_FLUSH_DELAY_MS);
      return;
    }
    this.track(this.settleWithBroker(entry, how), how);
  }

  private track(work: Promise<void>, how: 'drop' | 'return'): void {
    const settling = work.catch((err: unknown) =>
      log.warn({ err, group: this.options.group, how }, 'could not settle a message with the broker'),
    );
    this.settling.add(settling);
    void settling.finally(() => this.settling.delete(settling));
  }

  /** Sends the waiting acks: one batch per topic loop (its fetcher holds the leases). */
  private flushAcks(): void {
    if (this.ackFlushTimer !== undefined) clearTimeout(this.ackFlushTimer);
    this.ackFlushTimer = undefined;
    const entries = this.pendingAcks;
    if (entries.length === 0) return;
    this.pendingAcks = [];
    const byLoop = new Map<TopicLoop, Entry[]>();
    for (const entry of entries) {
      const list = byLoop.get(entry.loop);
      if (list === undefined) byLoop.set(entry.loop, [entry]);
      else list.push(entry);
    }
    for (const [loop, list] of byLoop) {
      this.track(
        loop.fetcher.ackMany(list.map((entry) => entry.message)).then(
          (acked) => {
            // The broker skips leases it no longer holds (run out and revived): those come back.
            if (acked < list.length) {
              log.warn({ group: this.options.group, asked: list.length, acked }, 'some acks found no lease');
            }
          },
          // A broker without BATCH_ACK_MESSAGE: one ACK_MESSAGE each.
          async (err: unknown) => {
            log.debug({ err, group: this.options.group }, 'batch ack failed; acking one by one');
            await Promise.all(list.map((entry) => this.settleWithBroker(entry, 'drop')));
          },
        ),
        'drop',
      );
    }
  }

  private async settleWithBroker(entry: Entry, how: 'drop' | 'return'): Promise<void> {
    if (entry.renewing !== undefined) await entry.renewing.catch(() => undefined);
    const consumer = entry.loop.fetcher;
    if (how === 'drop') await consumer.ack(entry.message);
    else await consumer.nack(entry.message, 0);
  }

  private renewLeases(): void {
    const soonMs = Date.now() + this.leaseMs / 2;
    for (const entry of [...this.ready, ...this.unacked.values()]) {
      if (entry.renewing !== undefined || entry.message.invisibleUntilMs > soonMs) continue;
      entry.renewing = entry.loop.fetcher
        .changeInvisibleTime(entry.message, this.leaseMs)
        .then(() => undefined)
        .catch((err: unknown) => log.warn({ err, group: this.options.group }, 'lease renewal failed'))
        .finally(() => {
          entry.renewing = undefined;
        });
    }
  }

  private newConsumer(topic: string, awaitDurationMs: number): SimpleConsumer {
    const consumer = new SimpleConsumer({
      ...this.clientOptions(),
      invisibleTimeMs: this.leaseMs,
      awaitDurationMs,
      consumeFromWhere: 'FIRST_OFFSET',
    });
    consumer.subscribe(topic, this.options.expressionFor?.(topic) ?? '*');
    return consumer;
  }

  private async openTopic(topic: string, fromEnd: boolean): Promise<void> {
    if (fromEnd) await this.commitEnd(topic);
    const loop: TopicLoop = {
      topic,
      active: true,
      fetcher: this.newConsumer(topic, this.pollMs),
      drainer: this.newConsumer(topic, 0),
      // ChurnSets: members come and go per receive (see churn-map.ts for why not a Set).
      wakers: new ChurnSet(),
      current: new ChurnSet(),
      reserved: 0,
      backlog: false,
    };
    this.topics.set(topic, loop);
    await loop.fetcher.start();
    await loop.drainer.start();
    for (let worker = 0; worker < FETCHES_IN_FLIGHT; worker++) void this.fetchLoop(loop, worker);
  }

  /** Moves the group to the end of each queue of an existing topic. */
  private async commitEnd(topic: string): Promise<void> {
    let queues;
    try {
      queues = await this.offsets.fetchQueues(topic);
    } catch (err) {
      if (isRbError(err, ErrorCode.TopicNotExist)) return;
      throw err;
    }
    await Promise.all(
      queues.map(async (queue) => this.offsets.updateOffset(queue, await this.offsets.maxOffset(queue))),
    );
  }

  private take(loop: TopicLoop, messages: readonly ReceivedMessage[]): number {
    let added = 0;
    for (const message of messages) {
      const entry: Entry = {
        id: this.nextId++,
        message,
        redelivered: message.reconsumeTimes > 0,
        loop,
        renewing: undefined,
      };
      if (!loop.active || !this.running || !this.options.accepts(message)) {
        this.release(entry, loop.active && this.running ? 'drop' : 'return');
        continue;
      }
      this.ready.push(entry);
      added++;
    }
    if (added > 0) this.emitReady();
    return added;
  }

  /**
   * Worker 0 always receives (long polling when idle); the others only while there is a backlog, so
   * an idle queue has one pop waiting in the broker rather than one per worker.
   */
  private async fetchLoop(loop: TopicLoop, worker: number): Promise<void> {
    for (let round = 0; loop.active && this.running && round < Number.MAX_SAFE_INTEGER; round++) {
      if (worker > 0 && !loop.backlog) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            loop.wakers.delete(done);
            resolve();
          };
          loop.wakers.add(done);
        });
        continue;
      }
      if (this.ready.length + loop.reserved >= this.readyLimit) {
        await this.waitForRoom();
        continue;
      }
      if (!this.demand) {
        await new Promise<void>((resolve) => this.demandWaiters.push(resolve));
        continue;
      }
      try {
        const room = Math.max(1, Math.min(BATCH, this.readyLimit - this.ready.length - loop.reserved));
        const receiving = loop.fetcher.receive(room);
        loop.current.add(receiving);
        loop.reserved += room;
        try {
          const got = await receiving;
          this.take(loop, got);
          loop.backlog = got.length >= room;
          if (loop.backlog) wakeLoop(loop);
        } finally {
          loop.current.delete(receiving);
          loop.reserved -= room;
        }
      } catch (err) {
        if (!loop.active || !this.running) return;
        if (!isRbError(err, ErrorCode.NoRoute)) {
          log.debug({ err, topic: loop.topic, group: this.options.group }, 'receive failed; retrying');
        }
        await this.sleep(loop, this.retryMs);
      }
    }
  }

  /** Takes every message available right now (bounded by readyLimit) with non-waiting pops. */
  protected async catchUp(): Promise<void> {
    await Promise.all(
      [...this.topics.values()].map(async (loop) => {
        for (let pulls = 0; pulls < 1000 && loop.active && this.ready.length < this.readyLimit; pulls++) {
          let got: ReceivedMessage[];
          try {
            got = await loop.drainer.receive(BATCH);
          } catch {
            return;
          }
          if (got.length === 0) return;
          this.take(loop, got);
        }
      }),
    );
  }

  private sleep(loop: TopicLoop, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const sleeper = {
        timer: setTimeout(() => done(), ms),
        resolve: () => done(),
      };
      const done = (): void => {
        clearTimeout(sleeper.timer);
        this.sleepers.delete(sleeper);
        loop.wakers.delete(done);
        resolve();
      };
      this.sleepers.add(sleeper);
      loop.wakers.add(done);
    });
  }

  private async closeLoopLater(loop: TopicLoop): Promise<void> {
    await Promise.allSettled([...loop.current]);
    this.flushAcks();
    // Deliveries of this topic still unacked settle through its fetcher: keep it until they are done.
    for (
      let waits = 0;
      waits < 600 && this.running && [...this.unacked.values()].some((e) => e.loop === loop);
      waits++
    ) {
      await new Promise<void>((resolve) => {
        const sleeper = { timer: setTimeout(() => finish(), 100), resolve: () => finish() };
        const finish = (): void => {
          clearTimeout(sleeper.timer);
          this.sleepers.delete(sleeper);
          resolve();
        };
        this.sleepers.add(sleeper);
      });
    }
    await Promise.allSettled([...this.settling]);
    await Promise.allSettled([loop.fetcher.shutdown(), loop.drainer.shutdown()]);
  }
}

function wakeLoop(loop: TopicLoop): void {
  for (const wake of [...loop.wakers]) wake();
}
