/**
 * Broker benchmark (issue 3): 1 KiB messages over real TCP on 127.0.0.1 through our Producer and
 * PushConsumer against a NameServer and a broker, by default in a child process (so on 2 cores the
 * servers get one core and the clients the other; --in-process runs everything in this process).
 * Scenarios: single sends with 64 in flight; batches of 32 (Producer.sendBatch) with 4 batches in
 * flight; a push consumer consuming while the producer sends (consume rate vs produce rate,
 * end-to-end latency from the send call to the handler, loss and duplicates). The baseline, measured
 * in the same run, is the storage engine's own append rate (DefaultMessageStore.putMessage of the
 * same messages, 64 in flight, async flush), so the ratio shows what the protocol costs.
 *
 * Options: --messages N (per scenario, default 200000), --seconds S (cap per scenario, default 50),
 * --in-process, --scenarios single,batch,consume (a subset, for profiling; the baseline always
 * runs), --server-cpu-prof DIR (the child writes a V8 CPU profile into DIR).
 */
import './bench-env.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Message } from '../src/engine/common/message.js';
import { Producer } from '../src/engine/client/producer.js';
import { PushConsumer } from '../src/engine/client/push-consumer.js';
import { cpuProfArgs, ownCpuMs, startBenchChild } from './bench-process.js';
import { storeAppendRun } from './store-baseline.js';
import {
  argument,
  closedLoop,
  type LoopResult,
  type Measurement,
  printTable,
  progress,
  sleepMs,
  stringArgument,
  summarize,
} from './bench-util.js';
import { startBenchServers } from './broker-bench-cluster.js';

const totalMessages = Math.floor(argument('messages', 200_000));
const capSeconds = argument('seconds', 50);
const capMs = capSeconds * 1000;
const inProcess = process.argv.includes('--in-process');
const serverCpuProfDir = stringArgument('server-cpu-prof');
const scenarios = new Set((stringArgument('scenarios') ?? 'single,batch,consume').split(','));

const BODY_BYTES = 1024;
const SENDS_IN_FLIGHT = 64;
const BATCH_SIZE = 32;
const BATCHES_IN_FLIGHT = 4;
const WARMUP_MESSAGES = 2000;
/** Marks warm-up messages in the consume scenario (a real sequence number never gets this high). */
const WARMUP_SEQUENCE = 0xffffffff;
const TARGET_SINGLE_PER_SEC = 50_000;
const TARGET_BATCH_PER_SEC = 200_000;

/** A 1 KiB body whose first 4 bytes carry the sequence number. */
function bodyFor(sequence: number): Buffer {
  const body = Buffer.alloc(BODY_BYTES, sequence % 251);
  body.writeUInt32BE(sequence, 0);
  return body;
}

function messageFor(topic: string, sequence: number): Message {
  return { topic, body: bodyFor(sequence), tags: 'TagA' };
}

interface Servers {
  namesrv: string;
  broker: string;
  where: string;
  /** CPU time the servers' process has used so far (0 in process: it is ours). */
  cpuMs(): Promise<number>;
  stop(): Promise<void>;
}

async function startChildServers(): Promise<Servers> {
  const child = await startBenchChild<{ namesrv: string; broker: string }>({
    fromUrl: import.meta.url,
    script: 'broker-bench-child',
    rocketbridgeServer: true,
    nodeArgs: cpuProfArgs(serverCpuProfDir),
    readyTimeoutMs: 30_000,
  });
  return {
    ...child.ready,
    where: `servers in a child process (pid ${child.pid})`,
    cpuMs: () => child.cpuMs(),
    stop: () => child.stop(),
  };
}

async function startInProcessServers(): Promise<Servers> {
  const dataDir = mkdtempSync(join(tmpdir(), 'rb-bench-broker-'));
  const servers = await startBenchServers(dataDir);
  return {
    namesrv: servers.namesrv,
    broker: servers.broker,
    where: 'servers in the benchmark process',
    cpuMs: () => Promise.resolve(0),
    async stop() {
      await servers.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

interface ScenarioResult {
  measurement: Measurement;
  failures: number;
  clientCpuMs: number;
  serverCpuMs: number;
}

/** A scenario's figures from its loop, with the CPU used by the client and the servers. */
function scenarioResult(scenario: string, run: LoopResult, clientCpuMs: number, serverCpuMs: number): ScenarioResult {
  return {
    measurement: {
      scenario,
      messages: run.messages,
      bytes: run.messages * BODY_BYTES,
      seconds: run.seconds,
      latenciesMs: run.latenciesMs,
    },
    failures: run.failures,
    clientCpuMs,
    serverCpuMs,
  };
}

async function measured<T>(servers: Servers, run: () => Promise<T>): Promise<T & { cpu: [number, number] }> {
  const client0 = ownCpuMs();
  const server0 = await servers.cpuMs();
  const result = await run();
  const server1 = await servers.cpuMs();
  return { ...result, cpu: [ownCpuMs() - client0, server1 - server0] };
}

/** Baseline: the store's own append rate for the same messages, 64 appenders, async flush. */
async function storeBaseline(): Promise<ScenarioResult> {
  const run = await storeAppendRun({
    dirPrefix: 'rb-bench-baseline-',
    topic: 'BenchBaseline',
    // What our producer sends for a single message.
    tags: 'TagA',
    extraProperties: { WAIT: 'true' },
    body: bodyFor,
    count: totalMessages,
    inFlight: SENDS_IN_FLIGHT,
    capMs,
    warmupMessages: WARMUP_MESSAGES,
  });
  return scenarioResult(`store putMessage, ${SENDS_IN_FLIGHT} in flight (baseline)`, run, run.clientCpuMs, 0);
}

async function singleSends(servers: Servers, producer: Producer): Promise<ScenarioResult> {
  const topic = 'BenchSingle';
  const send = async (sequence: number): Promise<number> => {
    await producer.send(messageFor(topic, sequence));
    return 1;
  };
  await closedLoop('single sends warm-up', WARMUP_MESSAGES, SENDS_IN_FLIGHT, send, capMs);
  const run = await measured(servers, () => closedLoop('single sends', totalMessages, SENDS_IN_FLIGHT, send, capMs));
  return scenarioResult(`Producer.send, ${SENDS_IN_FLIGHT} in flight`, run, run.cpu[0], run.cpu[1]);
}

async function batchSends(servers: Servers, producer: Producer): Promise<ScenarioResult> {
  const topic = 'BenchBatch';
  const sendBatch = async (batchIndex: number): Promise<number> => {
    const messages = Array.from({ length: BATCH_SIZE }, (_, i) => messageFor(topic, batchIndex * BATCH_SIZE + i));
    await producer.sendBatch(messages);
    return BATCH_SIZE;
  };
  await closedLoop('batch warm-up', WARMUP_MESSAGES / BATCH_SIZE, BATCHES_IN_FLIGHT, sendBatch, capMs);
  const batches = Math.ceil(totalMessages / BATCH_SIZE);
  const run = await measured(servers, () => closedLoop('batch sends', batches, BATCHES_IN_FLIGHT, sendBatch, capMs));
  return scenarioResult(
    `Producer.sendBatch of ${BATCH_SIZE}, ${BATCHES_IN_FLIGHT} in flight`,
    run,
    run.cpu[0],
    run.cpu[1],
  );
}

interface ConsumeResult {
  produce: ScenarioResult;
  consume: Measurement;
  lost: number;
  duplicates: number;
  drainSeconds: number;
}

/** A push consumer consuming while the producer sends; latency runs from the send call to the handler. */
async function consumeWhileProducing(servers: Servers, producer: Producer): Promise<ConsumeResult> {
  const topic = 'BenchConsume';
  const sentAtMs = new Float64Array(totalMessages);
  const deliveries = new Uint16Array(totalMessages);
  const endToEndMs: number[] = [];
  let warmupDelivered = 0;
  let unique = 0;
  let duplicates = 0;
  let lastDeliveryMs = 0;
  const consumer = new PushConsumer({
    group: 'bench-consumer',
    nameServers: [servers.namesrv],
    consumeFromWhere: 'FIRST_OFFSET',
    rebalanceIntervalMs: 500,
    routeRefreshIntervalMs: 500,
  });
  consumer.subscribe(topic, '*', (messages) => {
    const nowMs = performance.now();
    for (const message of messages) {
      const sequence = message.body.readUInt32BE(0);
      if (sequence === WARMUP_SEQUENCE) {
        warmupDelivered++;
        continue;
      }
      if (sequence >= totalMessages) continue;
      const seen = deliveries[sequence] ?? 0;
      deliveries[sequence] = seen + 1;
      if (seen === 0) {
        unique++;
        endToEndMs.push(nowMs - (sentAtMs[sequence] ?? nowMs));
        lastDeliveryMs = nowMs;
      } else {
        duplicates++;
      }
    }
    return 'CONSUME_SUCCESS';
  });
  // Warm up: create the topic (round robin reaches every queue), then wait until the consumer owns
  // every queue, which shows as every warm-up message delivered.
  const warmup = 16;
  for (let i = 0; i < warmup; i++) await producer.send({ topic, body: bodyFor(WARMUP_SEQUENCE), tags: 'TagA' });
  await consumer.start();
  const warmupDeadlineMs = performance.now() + 30_000;
  while (warmupDelivered < warmup && performance.now() < warmupDeadlineMs) await sleepMs(50);
  if (warmupDelivered < warmup) throw new Error(`consumer got ${warmupDelivered}/${warmup} warm-up messages in 30 s`);

  const sentOk = new Uint8Array(totalMessages);
  let produceStartMs = 0;
  const result = await measured(servers, async () => {
    produceStartMs = performance.now();
    const produce = async (sequence: number): Promise<number> => {
      sentAtMs[sequence] = performance.now();
      await producer.send(messageFor(topic, sequence));
      sentOk[sequence] = 1;
      return 1;
    };
    const run = await closedLoop('produce while consuming', totalMessages, SENDS_IN_FLIGHT, produce, capMs);
    // Wait for the consumer to drain what was sent, within the cap.
    const drainStartMs = performance.now();
    const drainDeadlineMs = drainStartMs + capMs;
    while (unique < run.messages && performance.now() < drainDeadlineMs) {
      progress('consumer draining', unique, run.messages);
      await sleepMs(20);
    }
    return { ...run, drainSeconds: (performance.now() - drainStartMs) / 1000 };
  });
  await consumer.shutdown();
  let lost = 0;
  for (let sequence = 0; sequence < totalMessages; sequence++) {
    if (sentOk[sequence] === 1 && deliveries[sequence] === 0) lost++;
  }
  return {
    produce: scenarioResult(
      `Producer.send, ${SENDS_IN_FLIGHT} in flight, with consumer`,
      result,
      result.cpu[0],
      result.cpu[1],
    ),
    consume: {
      scenario: '  PushConsumer (ratio: vs the producer)',
      messages: unique,
      bytes: unique * BODY_BYTES,
      seconds: Math.max(lastDeliveryMs - produceStartMs, 1) / 1000,
      latenciesMs: endToEndMs,
    },
    lost,
    duplicates,
    drainSeconds: result.drainSeconds,
  };
}

function percentOf(value: number, reference: number): string {
  return `${((100 * value) / reference).toFixed(1)}%`;
}

function cpuLine(name: string, result: ScenarioResult, separateServer: boolean): string {
  const seconds = result.measurement.seconds;
  const client = `client ${(result.clientCpuMs / 1000).toFixed(1)} s CPU (${percentOf(result.clientCpuMs, seconds * 1000)} of a core)`;
  const server = separateServer
    ? `, servers ${(result.serverCpuMs / 1000).toFixed(1)} s CPU (${percentOf(result.serverCpuMs, seconds * 1000)} of a core)`
    : '';
  const micros = ((result.clientCpuMs + result.serverCpuMs) * 1000) / Math.max(result.measurement.messages, 1);
  return `  ${name}: ${client}${server}; ${micros.toFixed(1)} µs CPU per message`;
}

/** Prints the table, loss/duplicate counts, CPU use and the targets. */
function report(
  baseline: ScenarioResult,
  single: ScenarioResult | undefined,
  batch: ScenarioResult | undefined,
  consume: ConsumeResult | undefined,
  where: string,
): void {
  const rows: { measurement: Measurement; baseline?: Measurement }[] = [{ measurement: baseline.measurement }];
  for (const result of [single, batch, consume?.produce]) {
    if (result !== undefined) rows.push({ measurement: result.measurement, baseline: baseline.measurement });
  }
  if (consume !== undefined) rows.push({ measurement: consume.consume, baseline: consume.produce.measurement });
  printTable(`1 KiB messages over TCP (${where})`, rows);
  console.log(
    `\nLatency: sends = call to answer; batches = per batch of ${BATCH_SIZE}; consumer = send call to handler.`,
  );
  if (consume !== undefined) {
    const produceRate = summarize(consume.produce.measurement).msgsPerSec;
    const consumeRate = summarize(consume.consume).msgsPerSec;
    console.log(
      `Consume: ${consume.consume.messages} of ${consume.produce.measurement.messages} delivered, ` +
        `lost ${consume.lost}, duplicates ${consume.duplicates}; consume rate ${consumeRate.toFixed(0)} msgs/s = ` +
        `${percentOf(consumeRate, produceRate)} of the produce rate ${produceRate.toFixed(0)} msgs/s ` +
        `(drained ${consume.drainSeconds.toFixed(2)} s after the last send)`,
    );
  }
  const failures = (single?.failures ?? 0) + (batch?.failures ?? 0) + (consume?.produce.failures ?? 0);
  if (failures > 0) console.log(`Failed sends: ${failures} (see stderr)`);
  console.log('CPU:');
  console.log(cpuLine('store baseline', baseline, false));
  if (single !== undefined) console.log(cpuLine('single sends', single, !inProcess));
  if (batch !== undefined) console.log(cpuLine('batches', batch, !inProcess));
  if (consume !== undefined) console.log(cpuLine('consume while producing', consume.produce, !inProcess));
  console.log('Targets (issue 3):');
  if (single !== undefined) {
    const rate = summarize(single.measurement).msgsPerSec;
    console.log(
      `  single sends ${rate.toFixed(0)} msgs/s vs ${TARGET_SINGLE_PER_SEC}: ${percentOf(rate, TARGET_SINGLE_PER_SEC)}`,
    );
  }
  if (batch !== undefined) {
    const rate = summarize(batch.measurement).msgsPerSec;
    console.log(
      `  batched ${rate.toFixed(0)} msgs/s vs ${TARGET_BATCH_PER_SEC}: ${percentOf(rate, TARGET_BATCH_PER_SEC)}`,
    );
  }
  if (consume !== undefined) {
    const produceRate = summarize(consume.produce.measurement).msgsPerSec;
    const consumeRate = summarize(consume.consume).msgsPerSec;
    console.log(
      `  consumer within 10% of producer: ${consumeRate >= 0.9 * produceRate ? 'yes' : 'no'} ` +
        `(${percentOf(consumeRate, produceRate)})`,
    );
  }
}

async function main(): Promise<void> {
  const servers = inProcess ? await startInProcessServers() : await startChildServers();
  console.log(
    `Broker benchmark: ${totalMessages} messages of ${BODY_BYTES} B per scenario (cap ${capSeconds} s), ` +
      `TCP on 127.0.0.1, ${servers.where}; MB/s counts message bodies`,
  );
  let producer: Producer | undefined;
  try {
    const baseline = await storeBaseline();
    producer = new Producer({ group: 'bench-producer', nameServers: [servers.namesrv] });
    await producer.start();
    const single = scenarios.has('single') ? await singleSends(servers, producer) : undefined;
    const batch = scenarios.has('batch') ? await batchSends(servers, producer) : undefined;
    const consume = scenarios.has('consume') ? await consumeWhileProducing(servers, producer) : undefined;
    report(baseline, single, batch, consume, servers.where);
  } finally {
    await producer?.shutdown();
    await servers.stop();
  }
}

await main();
