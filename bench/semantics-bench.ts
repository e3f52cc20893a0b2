/**
 * Consumer-semantics benchmark (issue 4) over real TCP on 127.0.0.1 against a NameServer and a
 * broker, by default in a child process (broker-bench-child.ts, default broker options; --in-process
 * runs everything here). Two parts, each next to a baseline measured in the same run:
 *
 * (a) pop: the same stored 1 KiB messages consumed twice, first by one offset-based PushConsumer
 *     (the baseline), then by 4 SimpleConsumers of another group that receive up to 32 at a time and
 *     ack each message (msgs/s from the consumers' start to the last delivery or ack; p50/p99 of the
 *     ack call).
 * (b) delayed messages: N messages with delivery times (deliverAt, TIMER_DELIVER_MS) spread over S
 *     seconds, starting a lead time after the first send, consumed by a PushConsumer; lateness =
 *     delivery (handler call, wall clock) minus due time, p50/p99/max, plus early deliveries, loss
 *     and duplicates. Baseline: immediate messages sent every 50 ms during the same window through the
 *     same consumer (latency = handler call minus send call), i.e. what delivery costs without the
 *     timer.
 *
 * Options: --messages N (part a and part b, default 100000), --spread-seconds S (default 60),
 * --lead-seconds L (delay between the first send and the earliest due time, default 5), --seconds C
 * (cap per consumption run in part a, and for the drain after the last due time in b; default 120),
 * --scenarios pop,delay (a subset), --in-process.
 */
import './bench-env.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Producer } from '../src/engine/client/producer.js';
import { PushConsumer } from '../src/engine/client/push-consumer.js';
import { type ReceivedMessage, SimpleConsumer } from '../src/engine/client/simple-consumer.js';
import { startBenchChild } from './bench-process.js';
import {
  argument,
  closedLoop,
  type Measurement,
  percentile,
  printTable,
  progress,
  sleepMs,
  stringArgument,
} from './bench-util.js';
import { startBenchServers } from './broker-bench-cluster.js';

const totalMessages = Math.floor(argument('messages', 100_000));
const spreadMs = argument('spread-seconds', 60) * 1000;
const leadMs = argument('lead-seconds', 5) * 1000;
const capMs = argument('seconds', 120) * 1000;
const inProcess = process.argv.includes('--in-process');
const scenarios = new Set((stringArgument('scenarios') ?? 'pop,delay').split(','));

const POP_BODY_BYTES = 1024;
const DELAY_BODY_BYTES = 128;
const SIMPLE_CONSUMERS = 4;
/** RocketMQ caps one pop at 32 messages. */
const RECEIVE_BATCH = 32;
const SEND_BATCH = 32;
const BATCHES_IN_FLIGHT = 4;
const SENDS_IN_FLIGHT = 64;
/** Due times of neighbouring sends are shuffled within this many slots, so the timer sees them out of order. */
const DUE_JITTER_SLOTS = 1000;
const BASELINE_INTERVAL_MS = 50;
/** Marks warm-up messages (a real sequence number never gets this high). */
const WARMUP_SEQUENCE = 0xffffffff;
const KIND_DELAYED = 0;
const KIND_IMMEDIATE = 1;

interface Servers {
  namesrv: string;
  where: string;
  stop(): Promise<void>;
}

/** The broker benchmark's server child (default broker options): its own core on a 2-core machine. */
async function startChildServers(): Promise<Servers> {
  const child = await startBenchChild<{ namesrv: string }>({
    fromUrl: import.meta.url,
    script: 'broker-bench-child',
    rocketbridgeServer: true,
    readyTimeoutMs: 30_000,
  });
  return {
    namesrv: child.ready.namesrv,
    where: `servers in a child process (pid ${child.pid})`,
    stop: () => child.stop(),
  };
}

async function startInProcessServers(): Promise<Servers> {
  const dataDir = mkdtempSync(join(tmpdir(), 'rb-bench-semantics-'));
  const servers = await startBenchServers(dataDir);
  return {
    namesrv: servers.namesrv,
    where: 'servers in the benchmark process',
    async stop() {
      await servers.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Runs `workers` loops over indexes 0..count-1; returns the failures (the first is logged). */
async function inParallel(
  label: string,
  count: number,
  workers: number,
  operation: (index: number) => Promise<void>,
): Promise<number> {
  const run = await closedLoop(label, count, workers, async (index) => {
    await operation(index);
    return 1;
  });
  return run.failures;
}

/** Polls `done` every 20 ms until it is true or `timeoutMs` passes, showing progress. */
async function waitFor(label: string, done: () => number, total: number, timeoutMs: number): Promise<void> {
  const deadlineMs = performance.now() + timeoutMs;
  while (done() < total && performance.now() < deadlineMs) {
    progress(label, done(), total);
    await sleepMs(20);
  }
  progress(label, Math.min(done(), total), total);
}

function popBody(sequence: number): Buffer {
  const body = Buffer.alloc(POP_BODY_BYTES, sequence % 251);
  body.writeUInt32BE(sequence, 0);
  return body;
}

interface PopResult {
  push: Measurement;
  pop: Measurement;
  pushLost: number;
  pushDuplicates: number;
  popLost: number;
  popDuplicates: number;
  ackFailures: number;
  sendFailures: number;
}

/** Part (a): the baseline PushConsumer, then 4 SimpleConsumers, over the same stored messages. */
async function popVersusPush(servers: Servers, producer: Producer): Promise<PopResult> {
  const topic = 'BenchPop';
  const batches = Math.ceil(totalMessages / SEND_BATCH);
  console.error(`(a) storing ${totalMessages} messages in ${topic}`);
  const sendFailures = await inParallel('storing', batches, BATCHES_IN_FLIGHT, async (batchIndex) => {
    const first = batchIndex * SEND_BATCH;
    const count = Math.min(SEND_BATCH, totalMessages - first);
    await producer.sendBatch(Array.from({ length: count }, (_, i) => ({ topic, body: popBody(first + i) })));
  });

  // Baseline: offset-based consumption (pull + offset commits) by one PushConsumer.
  const pushSeen = new Uint16Array(totalMessages);
  let pushUnique = 0;
  let pushDuplicates = 0;
  let pushLastMs = 0;
  const push = new PushConsumer({
    group: 'bench-push',
    nameServers: [servers.namesrv],
    consumeFromWhere: 'FIRST_OFFSET',
  });
  push.subscribe(topic, '*', (messages) => {
    for (const message of messages) {
      const sequence = message.body.readUInt32BE(0);
      if (sequence >= totalMessages) continue;
      const seen = pushSeen[sequence] ?? 0;
      pushSeen[sequence] = seen + 1;
      if (seen === 0) pushUnique++;
      else pushDuplicates++;
    }
    pushLastMs = performance.now();
    return 'CONSUME_SUCCESS';
  });
  const pushStartMs = performance.now();
  await push.start();
  await waitFor('PushConsumer (baseline)', () => pushUnique, totalMessages, capMs);
  await push.shutdown();

  // Pop: 4 SimpleConsumers of one group; each receives up to 32 and acks them concurrently.
  const popSeen = new Uint16Array(totalMessages);
  const ackLatenciesMs: number[] = [];
  let popUnique = 0;
  let popDuplicates = 0;
  let popLastMs = 0;
  let ackFailures = 0;
  let firstAckError: unknown;
  const members = Array.from({ length: SIMPLE_CONSUMERS }, () => {
    const member = new SimpleConsumer({
      group: 'bench-pop',
      nameServers: [servers.namesrv],
      consumeFromWhere: 'FIRST_OFFSET',
      // Long enough that no lease runs out during the run: a redelivery here would be a bug.
      invisibleTimeMs: 300_000,
      awaitDurationMs: 200,
    });
    member.subscribe(topic, '*');
    return member;
  });
  const ackOne = async (member: SimpleConsumer, message: ReceivedMessage): Promise<void> => {
    const startMs = performance.now();
    try {
      await member.ack(message);
    } catch (err) {
      ackFailures++;
      firstAckError ??= err;
      return;
    }
    const nowMs = performance.now();
    ackLatenciesMs.push(nowMs - startMs);
    const sequence = message.body.readUInt32BE(0);
    if (sequence >= totalMessages) return;
    const seen = popSeen[sequence] ?? 0;
    popSeen[sequence] = seen + 1;
    if (seen === 0) popUnique++;
    else popDuplicates++;
    popLastMs = nowMs;
  };
  const popStartMs = performance.now();
  const popDeadlineMs = popStartMs + capMs;
  for (const member of members) await member.start();
  const progressTimer = setInterval(() => progress('SimpleConsumers', popUnique, totalMessages), 200);
  try {
    await Promise.all(
      members.map(async (member) => {
        while (popUnique < totalMessages && performance.now() < popDeadlineMs) {
          const messages = await member.receive(RECEIVE_BATCH);
          await Promise.all(messages.map((message) => ackOne(member, message)));
        }
      }),
    );
  } finally {
    clearInterval(progressTimer);
    progress('SimpleConsumers', popUnique, totalMessages);
    for (const member of members) await member.shutdown();
  }
  if (firstAckError !== undefined) console.error(`acks: ${ackFailures} failed; first:`, firstAckError);

  return {
    push: {
      scenario: 'PushConsumer, offsets (baseline)',
      messages: pushUnique,
      bytes: pushUnique * POP_BODY_BYTES,
      seconds: Math.max(pushLastMs - pushStartMs, 1) / 1000,
    },
    pop: {
      scenario: `${SIMPLE_CONSUMERS} SimpleConsumers, receive ${RECEIVE_BATCH} + ack each`,
      messages: popUnique,
      bytes: popUnique * POP_BODY_BYTES,
      seconds: Math.max(popLastMs - popStartMs, 1) / 1000,
      latenciesMs: ackLatenciesMs,
    },
    pushLost: totalMessages - pushUnique,
    pushDuplicates,
    popLost: totalMessages - popUnique,
    popDuplicates,
    ackFailures,
    sendFailures,
  };
}

interface LatencyFigures {
  count: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  minMs: number;
}

function figures(valuesMs: number[]): LatencyFigures {
  const sorted = [...valuesMs].sort((a, b) => a - b);
  return {
    count: sorted.length,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    maxMs: sorted[sorted.length - 1] ?? Number.NaN,
    minMs: sorted[0] ?? Number.NaN,
  };
}

interface DelayResult {
  lateness: LatencyFigures;
  quietLateness: LatencyFigures;
  baseline: LatencyFigures;
  early: number;
  lost: number;
  duplicates: number;
  sentAfterDue: number;
  sendFailures: number;
  sendSeconds: number;
  baselineLost: number;
}

function delayBody(kind: number, sequence: number): Buffer {
  const body = Buffer.alloc(DELAY_BODY_BYTES, 0);
  body.writeUInt8(kind, 0);
  body.writeUInt32BE(sequence, 1);
  return body;
}

/** Part (b): delivery-time precision of N timer messages spread over the window. */
async function delayedPrecision(servers: Servers, producer: Producer): Promise<DelayResult> {
  const topic = 'BenchDelay';
  const dueAtMs = new Float64Array(totalMessages);
  const deliveries = new Uint16Array(totalMessages);
  const latenessMs: number[] = [];
  /** Lateness of the messages due after the last send was answered: the timer without send load. */
  const quietLatenessMs: number[] = [];
  let sendEndMs = Infinity;
  let unique = 0;
  let duplicates = 0;
  let early = 0;
  let warmupDelivered = 0;
  const baselineSentAtMs: number[] = [];
  const baselineLatencyMs: number[] = [];
  const consumer = new PushConsumer({
    group: 'bench-delay',
    nameServers: [servers.namesrv],
    consumeFromWhere: 'FIRST_OFFSET',
    rebalanceIntervalMs: 500,
    routeRefreshIntervalMs: 500,
  });
  consumer.subscribe(topic, '*', (messages) => {
    const nowMs = Date.now();
    for (const message of messages) {
      const kind = message.body.readUInt8(0);
      const sequence = message.body.readUInt32BE(1);
      if (sequence === WARMUP_SEQUENCE) {
        warmupDelivered++;
      } else if (kind === KIND_IMMEDIATE) {
        const sentAtMs = baselineSentAtMs[sequence];
        if (sentAtMs !== undefined) baselineLatencyMs.push(nowMs - sentAtMs);
      } else if (sequence < totalMessages) {
        const seen = deliveries[sequence] ?? 0;
        deliveries[sequence] = seen + 1;
        if (seen > 0) {
          duplicates++;
          continue;
        }
        unique++;
        const lateMs = nowMs - (dueAtMs[sequence] ?? nowMs);
        if (lateMs < 0) early++;
        latenessMs.push(lateMs);
        if ((dueAtMs[sequence] ?? 0) > sendEndMs) quietLatenessMs.push(lateMs);
      }
    }
    return 'CONSUME_SUCCESS';
  });
  // Warm up: create the topic (round robin reaches every queue), then wait until the consumer owns
  // every queue, which shows as every warm-up message delivered.
  const warmup = 16;
  for (let i = 0; i < warmup; i++) await producer.send({ topic, body: delayBody(KIND_IMMEDIATE, WARMUP_SEQUENCE) });
  await consumer.start();
  await waitFor('delay consumer warm-up', () => warmupDelivered, warmup, 30_000);
  if (warmupDelivered < warmup) throw new Error(`consumer got ${warmupDelivered}/${warmup} warm-up messages`);

  // Due times rise with the sequence number, shuffled among neighbours (DUE_JITTER_SLOTS).
  const firstDueMs = Date.now() + leadMs;
  const jitterSlots = Math.min(DUE_JITTER_SLOTS, totalMessages);
  for (let sequence = 0; sequence < totalMessages; sequence++) {
    const slot = sequence + Math.random() * jitterSlots;
    dueAtMs[sequence] = Math.round(firstDueMs + (spreadMs * slot) / (totalMessages + jitterSlots));
  }
  const lastDueMs = firstDueMs + spreadMs;

  // The baseline runs from the first send until the last due time: immediate sends, paced.
  let baselineRunning = true;
  let baselineFailures = 0;
  const baselineLoop = (async () => {
    while (baselineRunning && Date.now() < lastDueMs) {
      const sequence = baselineSentAtMs.length;
      baselineSentAtMs.push(Date.now());
      try {
        await producer.send({ topic, body: delayBody(KIND_IMMEDIATE, sequence) });
      } catch {
        baselineFailures++;
      }
      await sleepMs(BASELINE_INTERVAL_MS);
    }
  })();

  console.error(
    `(b) sending ${totalMessages} timer messages due over ${spreadMs / 1000} s, the first ${leadMs / 1000} s from now`,
  );
  let sentAfterDue = 0;
  const sendStartMs = performance.now();
  const sendFailures = await inParallel('sending timer messages', totalMessages, SENDS_IN_FLIGHT, async (sequence) => {
    const deliverAt = dueAtMs[sequence] ?? 0;
    await producer.send({ topic, body: delayBody(KIND_DELAYED, sequence) }, { deliverAt });
    if (Date.now() >= deliverAt) sentAfterDue++;
  });
  const sendSeconds = (performance.now() - sendStartMs) / 1000;
  sendEndMs = Date.now();
  const expected = totalMessages - sendFailures;
  console.error(`(b) sent in ${sendSeconds.toFixed(1)} s; waiting for the window to pass`);
  await waitFor('timer messages delivered', () => unique, expected, Math.max(0, lastDueMs - Date.now()) + capMs);
  baselineRunning = false;
  await baselineLoop;
  // Give the last baseline messages a moment (bounded) to arrive before counting them lost.
  await waitFor('baseline drain', () => baselineLatencyMs.length, baselineSentAtMs.length - baselineFailures, 5000);
  await consumer.shutdown();
  let lost = 0;
  for (let sequence = 0; sequence < totalMessages; sequence++) if (deliveries[sequence] === 0) lost++;
  return {
    lateness: figures(latenessMs),
    quietLateness: figures(quietLatenessMs),
    baseline: figures(baselineLatencyMs),
    early,
    lost: lost - sendFailures,
    duplicates,
    sentAfterDue,
    sendFailures,
    sendSeconds,
    baselineLost: baselineSentAtMs.length - baselineFailures - baselineLatencyMs.length,
  };
}

function ms(value: number): string {
  return Number.isFinite(value) ? value.toFixed(1) : '-';
}

function reportPop(result: PopResult, where: string): void {
  printTable(`(a) pop vs offsets, ${totalMessages} messages of ${POP_BODY_BYTES} B (${where})`, [
    { measurement: result.push },
    { measurement: result.pop, baseline: result.push },
  ]);
  console.log('Latency: pop = ack call to answer (the baseline commits offsets in the background).');
  console.log(
    `PushConsumer: lost ${result.pushLost}, duplicates ${result.pushDuplicates}; ` +
      `SimpleConsumers: lost ${result.popLost}, duplicates ${result.popDuplicates}, failed acks ${result.ackFailures}` +
      (result.sendFailures > 0 ? `; failed batch sends ${result.sendFailures}` : ''),
  );
}

function reportDelay(result: DelayResult, where: string): void {
  console.log(
    `\n(b) timer messages (deliverAt): ${totalMessages} due over ${spreadMs / 1000} s (${where}); ` +
      `sent in ${result.sendSeconds.toFixed(1)} s`,
  );
  console.log(
    ['scenario'.padEnd(44), 'count', 'p50 ms', 'p99 ms', 'max ms', 'min ms']
      .map((text, i) => (i === 0 ? text : text.padStart(9)))
      .join(' '),
  );
  const row = (name: string, values: LatencyFigures): string =>
    [
      name.padEnd(44),
      String(values.count).padStart(9),
      ms(values.p50Ms).padStart(9),
      ms(values.p99Ms).padStart(9),
      ms(values.maxMs).padStart(9),
      ms(values.minMs).padStart(9),
    ].join(' ');
  console.log(row(`immediate sends every ${BASELINE_INTERVAL_MS} ms (baseline)`, result.baseline));
  console.log(row('timer messages: lateness = delivery - due', result.lateness));
  console.log(row('  of which due after the last send', result.quietLateness));
  console.log(
    `Timer messages: lost ${result.lost}, duplicates ${result.duplicates}, delivered early ${result.early}, ` +
      `sent after their due time ${result.sentAfterDue}, failed sends ${result.sendFailures}; ` +
      `baseline lost ${result.baselineLost}`,
  );
  console.log('Latency: baseline = send call to handler; timer = handler call (wall clock) minus due time.');
}

async function main(): Promise<void> {
  const servers = inProcess ? await startInProcessServers() : await startChildServers();
  console.log(`Semantics benchmark: TCP on 127.0.0.1, ${servers.where}`);
  let producer: Producer | undefined;
  try {
    producer = new Producer({ group: 'bench-semantics-producer', nameServers: [servers.namesrv] });
    await producer.start();
    if (scenarios.has('pop')) reportPop(await popVersusPush(servers, producer), servers.where);
    if (scenarios.has('delay')) reportDelay(await delayedPrecision(servers, producer), servers.where);
  } finally {
    await producer?.shutdown();
    await servers.stop();
  }
}

await main();
