/**
 * AMQP benchmark (issue 6): amqplib against rocketbridge's AMQP front end (NameServer, broker and
 * AmqpServer in a child process, wired as `rocketbridge start` wires them) and, as the baseline in
 * the same run, against RabbitMQ from Debian (a throw-away node on a free loopback port, skipped with
 * a note when it does not start within 60 s). 1 KiB persistent messages to a durable queue.
 * Scenarios per server:
 *   publish   confirm channel, at most 1,000 unconfirmed; latency = publish call to its confirm
 *   consume   manual acks, prefetch 256, of what `publish` stored; latency = none (queue was full)
 *   both      a consumer (same settings) running while a second connection publishes as above;
 *             latency = publish call to delivery; loss and duplicates counted
 *   transient transient messages (deliveryMode 1) published without confirms while an auto-ack
 *             (noAck) consumer runs on a second connection; latency = publish call to delivery;
 *             loss and duplicates counted (the consumer gives up after STALL_MS without news once
 *             the publisher is done, so a lost message does not cost the whole cap)
 * A second baseline is the storage engine's own append rate (DefaultMessageStore.putMessage, 64 in
 * flight, async flush), which bounds what any front end on it can do.
 *
 * Options: --messages N (per scenario, default 50000), --seconds S (cap per scenario, default 40),
 * --no-rabbit (skip RabbitMQ), --only rocketbridge|rabbitmq, --flush sync|async (our broker's store
 * flush policy, default async; RabbitMQ fsyncs persistent messages before confirming them either way).
 */
import './bench-env.js';
import amqp from 'amqplib';
import {
  BODY_BYTES,
  bodyFor,
  CONFIRM_WINDOW,
  declare,
  publishConfirmedOn,
  startRabbit,
  startRocketbridge,
  type Target,
} from './amqp-bench-servers.js';
import { argument, type Measurement, printTable, progress, sleepMs, stringArgument, summarize } from './bench-util.js';
import { storeAppendRun } from './store-baseline.js';

const totalMessages = Math.floor(argument('messages', 50_000));
const capSeconds = argument('seconds', 40);
const only = stringArgument('only');
const withRabbit = !process.argv.includes('--no-rabbit') && only !== 'rocketbridge';
const withOurs = only !== 'rabbitmq';
const flushArgument = stringArgument('flush') ?? 'async';
if (flushArgument !== 'sync' && flushArgument !== 'async') throw new Error('--flush must be sync or async');
const flushPolicy: 'sync' | 'async' = flushArgument;

const PREFETCH = 256;
const WARMUP_MESSAGES = 2000;
const RABBIT_START_MS = 60_000;
/** The latency comparison: a fixed publish rate well below either server's limit. */
const PACED_RATE_PER_SEC = 2000;
const PACED_MESSAGES = Math.min(totalMessages, PACED_RATE_PER_SEC * 10);
/** How long an auto-ack consumer waits for news once the publisher is done before calling the rest lost. */
const STALL_MS = 5000;

// ---------------------------------------------------------------------------------------------
// Servers

// ---------------------------------------------------------------------------------------------
// Scenarios

interface Result {
  measurement: Measurement;
  note: string;
}

/** Publishes `count` messages with confirms, at most CONFIRM_WINDOW unconfirmed. */
async function publishConfirmed(
  url: string,
  queue: string,
  count: number,
  label: string,
  sentAtMs?: Float64Array,
  ratePerSec?: number,
): Promise<{ seconds: number; latenciesMs: number[]; confirmed: number; nacked: number }> {
  const connection = await amqp.connect(url);
  try {
    const channel = await connection.createConfirmChannel();
    const progressEvery = Math.max(1, Math.floor(count / 50));
    const result = await publishConfirmedOn(
      channel,
      queue,
      count,
      {
        ratePerSec,
        sentAtMs,
        deadlineMs: performance.now() + capSeconds * 1000,
        onPublished: (sent) => {
          if (sent % progressEvery === 0) progress(label, sent, count);
        },
      },
      capSeconds * 1000,
    );
    progress(label, count, count);
    await channel.close();
    return result;
  } finally {
    await connection.close().catch(() => undefined);
  }
}

/** Publishes `count` transient messages (deliveryMode 1) without confirms, waiting only for socket drain. */
async function publishTransient(
  url: string,
  queue: string,
  count: number,
  label: string,
  sentAtMs: Float64Array,
): Promise<{ seconds: number; sent: number }> {
  const connection = await amqp.connect(url);
  try {
    const channel = await connection.createChannel();
    const startMs = performance.now();
    const deadlineMs = startMs + capSeconds * 1000;
    const progressEvery = Math.max(1, Math.floor(count / 50));
    let sent = 0;
    for (; sent < count && performance.now() < deadlineMs; sent++) {
      sentAtMs[sent] = performance.now();
      const writable = channel.publish('', queue, bodyFor(sent), { deliveryMode: 1 });
      if (!writable) await new Promise<void>((resolve) => channel.once('drain', () => resolve()));
      if (sent % progressEvery === 0) progress(label, sent, count);
    }
    progress(label, count, count);
    const seconds = (performance.now() - startMs) / 1000;
    // closing the channel flushes what amqplib still buffers before the connection goes
    await channel.close();
    return { seconds, sent };
  } finally {
    await connection.close().catch(() => undefined);
  }
}

interface Consumed {
  unique: number;
  duplicates: number;
  firstMs: number;
  lastMs: number;
  latenciesMs: number[];
}

/**
 * Consumes with manual acks and prefetch (or, with `noAck`, auto-ack and no prefetch) until
 * `expected` distinct messages arrived or the cap; with `noAck`, also once nothing new arrived for
 * STALL_MS after `onStarted` resolved (nothing redelivers what an auto-ack consumer lost).
 */
async function consumeAcked(
  url: string,
  queue: string,
  expected: number,
  label: string,
  onStarted: () => Promise<void>,
  sentAtMs?: Float64Array,
  noAck = false,
): Promise<Consumed & { deliveries: Uint16Array }> {
  const connection = await amqp.connect(url);
  const deliveries = new Uint16Array(expected);
  const result: Consumed = { unique: 0, duplicates: 0, firstMs: 0, lastMs: 0, latenciesMs: [] };
  try {
    const channel = await connection.createChannel();
    if (!noAck) await channel.prefetch(PREFETCH);
    await channel.consume(
      queue,
      (message) => {
        if (message === null) return;
        const nowMs = performance.now();
        const sequence = message.content.readUInt32BE(0);
        if (!noAck) channel.ack(message);
        if (sequence >= expected) return;
        const seen = deliveries[sequence] ?? 0;
        deliveries[sequence] = seen + 1;
        if (seen > 0) {
          result.duplicates++;
          return;
        }
        if (result.unique === 0) result.firstMs = nowMs;
        result.unique++;
        result.lastMs = nowMs;
        if (sentAtMs !== undefined) result.latenciesMs.push(nowMs - (sentAtMs[sequence] ?? nowMs));
      },
      { noAck },
    );
    const startMs = performance.now();
    await onStarted();
    const deadlineMs = performance.now() + capSeconds * 1000;
    let lastUnique = result.unique;
    let lastNewsMs = performance.now();
    for (let waits = 0; result.unique < expected && performance.now() < deadlineMs && waits < 1e6; waits++) {
      progress(label, result.unique, expected);
      await sleepMs(20);
      if (result.unique !== lastUnique) {
        lastUnique = result.unique;
        lastNewsMs = performance.now();
      } else if (noAck && performance.now() - lastNewsMs > STALL_MS) {
        break;
      }
    }
    progress(label, expected, expected);
    if (result.firstMs === 0) result.firstMs = startMs;
    await channel.close();
    return { ...result, deliveries };
  } finally {
    await connection.close().catch(() => undefined);
  }
}

async function cpuDelta<T>(target: Target, body: () => Promise<T>): Promise<{ value: T; serverCpuMs?: number }> {
  const before = await target.cpuMs();
  const value = await body();
  const after = await target.cpuMs();
  return before === undefined || after === undefined ? { value } : { value, serverCpuMs: after - before };
}

function cpuNote(serverCpuMs: number | undefined, seconds: number, messages: number): string {
  if (serverCpuMs === undefined) return '';
  return `server ${((100 * serverCpuMs) / (seconds * 1000)).toFixed(0)}% of a core, ${((serverCpuMs * 1000) / Math.max(messages, 1)).toFixed(1)} µs/msg`;
}

interface TargetResults {
  publish: Result;
  consume: Result;
  both: Result;
  both2: Result;
  paced: Result;
  transient: Result;
}

async function runTarget(target: Target): Promise<TargetResults> {
  const runId = `${process.pid}-${Date.now()}`;
  const warm = `bench-warm-${runId}`;
  await declare(target.url, warm);
  await publishConfirmed(target.url, warm, WARMUP_MESSAGES, `${target.name} warm-up publish`);
  await consumeAcked(target.url, warm, WARMUP_MESSAGES, `${target.name} warm-up consume`, () => Promise.resolve());

  // publish, then consume what was published
  const queue = `bench-q-${runId}`;
  await declare(target.url, queue);
  const pub = await cpuDelta(target, () =>
    publishConfirmed(target.url, queue, totalMessages, `${target.name} publish`),
  );
  const publish: Result = {
    measurement: {
      scenario: `${target.name}: publish, confirms (window ${CONFIRM_WINDOW})`,
      messages: pub.value.confirmed,
      bytes: pub.value.confirmed * BODY_BYTES,
      seconds: pub.value.seconds,
      latenciesMs: pub.value.latenciesMs,
    },
    note: `nacked ${pub.value.nacked}; ${cpuNote(pub.serverCpuMs, pub.value.seconds, pub.value.confirmed)}`,
  };
  let consumeStartMs = 0;
  const con = await cpuDelta(target, () =>
    consumeAcked(target.url, queue, pub.value.confirmed, `${target.name} consume`, () => {
      consumeStartMs = performance.now();
      return Promise.resolve();
    }),
  );
  const consumeSeconds = Math.max(con.value.lastMs - consumeStartMs, 1) / 1000;
  const consume: Result = {
    measurement: {
      scenario: `${target.name}: consume, manual ack, prefetch ${PREFETCH}`,
      messages: con.value.unique,
      bytes: con.value.unique * BODY_BYTES,
      seconds: consumeSeconds,
    },
    note: `lost ${pub.value.confirmed - con.value.unique}, duplicates ${con.value.duplicates}; ${cpuNote(con.serverCpuMs, consumeSeconds, con.value.unique)}`,
  };

  const { both, both2 } = await publishWhileConsuming(target, `bench-live-${runId}`, totalMessages);
  // Two unmeasured seconds at the paced rate first: the flat-out rows above leave V8 optimizing the
  // one-message-at-a-time paths during the paced row's first second (see amqp-paced-bench.ts).
  await publishWhileConsuming(target, `bench-paced-warm-${runId}`, 2 * PACED_RATE_PER_SEC, PACED_RATE_PER_SEC);
  const paced = await publishWhileConsuming(target, `bench-paced-${runId}`, PACED_MESSAGES, PACED_RATE_PER_SEC);
  const transient = await transientWhileConsuming(target, `bench-transient-${runId}`, totalMessages);
  return { publish, consume, both, both2, paced: paced.both, transient };
}

/** Transient publishing without confirms while an auto-ack consumer runs on a second connection. */
async function transientWhileConsuming(target: Target, queue: string, totalMessages: number): Promise<Result> {
  await declare(target.url, queue);
  const sentAtMs = new Float64Array(totalMessages);
  let published: Awaited<ReturnType<typeof publishTransient>> | undefined;
  let publishStartMs = 0;
  const together = await cpuDelta(target, () =>
    consumeAcked(
      target.url,
      queue,
      totalMessages,
      `${target.name} transient publish + auto-ack consume`,
      async () => {
        publishStartMs = performance.now();
        published = await publishTransient(target.url, queue, totalMessages, `${target.name} publishing`, sentAtMs);
      },
      sentAtMs,
      true,
    ),
  );
  const sent = (published as NonNullable<typeof published>).sent;
  const publishSeconds = (published as NonNullable<typeof published>).seconds;
  const seconds = Math.max(together.value.lastMs - publishStartMs, 1) / 1000;
  return {
    measurement: {
      scenario: `${target.name}: transient, no confirms + auto-ack consume, end to end`,
      messages: together.value.unique,
      bytes: together.value.unique * BODY_BYTES,
      seconds,
      latenciesMs: together.value.latenciesMs,
    },
    note:
      `sent ${sent} (publisher ${(sent / Math.max(publishSeconds, 0.001)).toFixed(0)} msgs/s), ` +
      `lost ${Math.max(0, sent - together.value.unique)}, duplicates ${together.value.duplicates}; ` +
      cpuNote(together.serverCpuMs, seconds, together.value.unique),
  };
}

/** A consumer running while a second connection publishes (at `ratePerSec`, or as fast as confirms allow). */
async function publishWhileConsuming(
  target: Target,
  live: string,
  totalMessages: number,
  ratePerSec?: number,
): Promise<{ both: Result; both2: Result }> {
  const kind = ratePerSec === undefined ? 'publish+consume' : `publish at ${ratePerSec}/s + consume`;
  await declare(target.url, live);
  const sentAtMs = new Float64Array(totalMessages);
  let published: Awaited<ReturnType<typeof publishConfirmed>> | undefined;
  let publishStartMs = 0;
  const together = await cpuDelta(target, () =>
    consumeAcked(
      target.url,
      live,
      totalMessages,
      `${target.name} ${kind}`,
      async () => {
        publishStartMs = performance.now();
        published = await publishConfirmed(
          target.url,
          live,
          totalMessages,
          `${target.name} publishing`,
          sentAtMs,
          ratePerSec,
        );
      },
      sentAtMs,
    ),
  );
  const pubBoth = published as NonNullable<typeof published>;
  const seconds = Math.max(together.value.lastMs - publishStartMs, 1) / 1000;
  const lost = pubBoth.confirmed - together.value.unique;
  const both: Result = {
    measurement: {
      scenario: `${target.name}: ${kind}, end to end`,
      messages: together.value.unique,
      bytes: together.value.unique * BODY_BYTES,
      seconds,
      latenciesMs: together.value.latenciesMs,
    },
    note: `lost ${Math.max(0, lost)}, duplicates ${together.value.duplicates}; ${cpuNote(together.serverCpuMs, seconds, together.value.unique)}`,
  };
  const both2: Result = {
    measurement: {
      scenario: `${target.name}:   its publisher (confirm latency)`,
      messages: pubBoth.confirmed,
      bytes: pubBoth.confirmed * BODY_BYTES,
      seconds: pubBoth.seconds,
      latenciesMs: pubBoth.latenciesMs,
    },
    note: `nacked ${pubBoth.nacked}`,
  };
  return { both, both2 };
}

/** The store's own append rate for the same 1 KiB messages, 64 in flight, async flush. */
async function storeBaseline(): Promise<Measurement> {
  const run = await storeAppendRun({
    dirPrefix: 'rb-bench-amqp-store-',
    topic: 'AmqpBenchBaseline',
    tags: 'bench',
    body: bodyFor,
    count: totalMessages,
    inFlight: 64,
    capMs: capSeconds * 1000,
  });
  if (run.failures > 0) throw new Error(`store baseline: ${run.failures} failed puts`);
  return {
    scenario: 'store putMessage, 64 in flight (2nd baseline)',
    messages: run.messages,
    bytes: run.messages * BODY_BYTES,
    seconds: run.seconds,
    latenciesMs: run.latenciesMs,
  };
}

function rate(measurement: Measurement): number {
  return summarize(measurement).msgsPerSec;
}

async function main(): Promise<void> {
  console.log(
    `AMQP benchmark: amqplib, ${totalMessages} persistent messages of ${BODY_BYTES} B per scenario (cap ${capSeconds} s), ` +
      `durable queue, confirm window ${CONFIRM_WINDOW}, prefetch ${PREFETCH}, TCP on 127.0.0.1; MB/s counts bodies; ` +
      `rocketbridge broker flush ${flushPolicy} (RabbitMQ fsyncs persistent messages before confirming)`,
  );
  const store = withOurs ? await storeBaseline() : undefined;
  let rabbit: TargetResults | undefined;
  if (withRabbit) {
    const target = await startRabbit(RABBIT_START_MS);
    if (target !== undefined) {
      try {
        rabbit = await runTarget(target);
      } finally {
        await target.stop();
      }
    }
  }
  let ours: TargetResults | undefined;
  if (withOurs) {
    const target = await startRocketbridge(flushPolicy);
    try {
      ours = await runTarget(target);
    } finally {
      await target.stop();
    }
  }
  const rows: { measurement: Measurement; baseline?: Measurement }[] = [];
  const notes: string[] = [];
  if (store !== undefined) rows.push({ measurement: store });
  for (const key of ['publish', 'consume', 'both', 'both2', 'paced', 'transient'] as const) {
    const base = rabbit?.[key];
    if (base !== undefined) {
      rows.push({ measurement: base.measurement });
      notes.push(`${base.measurement.scenario.trim()}: ${base.note}`);
    }
    const mine = ours?.[key];
    if (mine !== undefined) {
      const row: { measurement: Measurement; baseline?: Measurement } = { measurement: mine.measurement };
      if (base !== undefined) row.baseline = base.measurement;
      rows.push(row);
      notes.push(`${mine.measurement.scenario.trim()}: ${mine.note}`);
    }
  }
  printTable(
    `AMQP, 1 KiB messages, persistent unless marked transient, broker flush ${flushPolicy} (ratio: rocketbridge vs RabbitMQ, same scenario)`,
    rows,
  );
  console.log(
    '\nLatency: publish = publish call to confirm; consume = none; publish+consume = publish call to delivery ' +
      '(flat out, the publisher outruns the consumer and this measures the backlog; the paced row shows latency); ' +
      'transient = publish call to auto-ack delivery, no confirms, also flat out.',
  );
  for (const note of notes) console.log(`  ${note}`);
  if (store !== undefined && ours !== undefined) {
    const storeRate = rate(store);
    console.log(
      `vs the store's append rate ${storeRate.toFixed(0)} msgs/s: publish ${((100 * rate(ours.publish.measurement)) / storeRate).toFixed(1)}%, ` +
        `consume ${((100 * rate(ours.consume.measurement)) / storeRate).toFixed(1)}%, ` +
        `publish+consume ${((100 * rate(ours.both.measurement)) / storeRate).toFixed(1)}%`,
    );
  }
  if (rabbit !== undefined && ours !== undefined) {
    const ratio = rate(ours.publish.measurement) / rate(rabbit.publish.measurement);
    console.log(
      `Target (issue 6): confirmed publish >= 2x RabbitMQ: ${ratio >= 2 ? 'yes' : 'no'} (${(100 * ratio).toFixed(1)}%)`,
    );
    const p99 = (result: Result): number => summarize(result.measurement).p99Ms;
    console.log(
      `Target (issue 6): p99 at ${PACED_RATE_PER_SEC} msgs/s no worse than RabbitMQ: ` +
        `${p99(ours.paced) <= p99(rabbit.paced) ? 'yes' : 'no'} (${p99(ours.paced).toFixed(1)} ms vs ${p99(rabbit.paced).toFixed(1)} ms)`,
    );
  }
}

await main();
