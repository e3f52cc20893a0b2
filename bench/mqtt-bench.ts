/**
 * MQTT benchmark (issue 5): MQTT.js clients, 1 KiB payloads, against three servers in the same run:
 * rocketbridge (NameServer + broker + MQTT front end in one child process, in-process transport,
 * async flush, every message stored in the engine), a standalone in-memory aedes (child process),
 * and mosquitto when its binary is installed (started on a free loopback port with a temp config).
 * Servers run in their own processes, so on 2 cores the server gets one core and the clients the
 * other. aedes is the baseline: every rate is printed next to it as a ratio.
 *
 * Scenarios (publish to receive, per server):
 *   q0-one / q1-one: QoS 0 / QoS 1, one publisher to one subscriber on the exact topic;
 *   q0-fan / q1-fan: one publisher to 10 subscribers on a wildcard filter (`x/+`);
 *   idle: --connections idle MQTT connections opened from raw sockets (CONNECT, read CONNACK,
 *         keep-alive 0) and held, memory per connection = server RSS growth / connections.
 * The publisher keeps --window messages outstanding (published and not yet received by every
 * subscriber), so the rate is the end-to-end rate and latency (publish call to receipt, per
 * delivery) is not inflated by an unbounded backlog. Lost and duplicate deliveries are counted per
 * subscriber; a window that makes no progress for 2 s is given up (those messages count as lost).
 *
 * Options: --messages N (per scenario, default 20000), --seconds S (cap per scenario, default 30),
 * --connections N (default 10000), --window N (default 100), --scenarios q0-one,q0-fan,q1-one,
 * q1-fan,idle (a subset), --servers rocketbridge,aedes,mosquitto (a subset), --server-cpu-prof DIR
 * (the rocketbridge child writes a V8 CPU profile into DIR).
 */
import './bench-env.js';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MqttClient } from 'mqtt';
import { cpuProfArgs, openFdCount, ownCpuMs, processCpuMs, processRssKiB, startBenchChild } from './bench-process.js';
import {
  argument,
  fixed,
  heldConnectionsCells,
  heldConnectionsHeader,
  type HeldConnections,
  type HeldConnectionsLayout,
  kibPerConnection,
  openInBatches,
  percentile,
  progress,
  sleepMs,
  stringArgument,
} from './bench-util.js';

const totalMessages = Math.floor(argument('messages', 20_000));
const capSeconds = argument('seconds', 30);
const idleConnections = Math.floor(argument('connections', 10_000));
const windowSize = Math.floor(argument('window', 100));
const serverCpuProfDir = stringArgument('server-cpu-prof');
const scenarios = new Set((stringArgument('scenarios') ?? 'q0-one,q0-fan,q1-one,q1-fan,idle').split(','));
const serverKinds = (stringArgument('servers') ?? 'rocketbridge,aedes,mosquitto').split(',');

const PAYLOAD_BYTES = 1024;
const FANOUT_SUBSCRIBERS = 10;
const WARMUP_MESSAGES = 1000;
/** A window with no completed message for this long is given up: its messages count as lost. */
const STALL_MS = 2000;
const CONNECT_BATCH = 500;
const CONNECT_TIMEOUT_MS = 10_000;
const TARGET_IDLE_KIB = 50;
const BASELINE = 'aedes';

interface ScenarioSpec {
  id: string;
  title: string;
  qos: 0 | 1;
  subscribers: number;
}

const SPECS: ScenarioSpec[] = [
  { id: 'q0-one', title: 'QoS 0, 1 pub -> 1 sub', qos: 0, subscribers: 1 },
  { id: 'q0-fan', title: `QoS 0, 1 pub -> ${FANOUT_SUBSCRIBERS} subs (x/+)`, qos: 0, subscribers: FANOUT_SUBSCRIBERS },
  { id: 'q1-one', title: 'QoS 1, 1 pub -> 1 sub', qos: 1, subscribers: 1 },
  { id: 'q1-fan', title: `QoS 1, 1 pub -> ${FANOUT_SUBSCRIBERS} subs (x/+)`, qos: 1, subscribers: FANOUT_SUBSCRIBERS },
];

// ---------------------------------------------------------------------------------------------
// Servers under test

interface ServerUnderTest {
  name: string;
  port: number;
  pid: number;
  /** A full GC in the server (node children only), so RSS is read after garbage is gone. */
  gc(): Promise<void>;
  stop(): Promise<void>;
}

async function startNodeServer(kind: 'rocketbridge' | 'aedes'): Promise<ServerUnderTest> {
  const child = await startBenchChild<{ port: number }>({
    fromUrl: import.meta.url,
    script: 'mqtt-bench-child',
    rocketbridgeServer: kind === 'rocketbridge',
    nodeArgs: ['--expose-gc', ...cpuProfArgs(kind === 'rocketbridge' ? serverCpuProfDir : undefined)],
    args: [kind],
    readyTimeoutMs: 60_000,
  });
  return {
    name: kind,
    port: child.ready.port,
    pid: child.pid,
    gc: () => child.gc(),
    stop: () => child.stop(),
  };
}

function findMosquitto(): string | undefined {
  return ['/usr/sbin/mosquitto', '/usr/local/sbin/mosquitto', '/usr/bin/mosquitto'].find((path) => existsSync(path));
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return typeof address === 'object' && address !== null ? address.port : 0;
}

/** Resolves once a TCP connection to the port succeeds, polling for up to `timeoutMs`. */
async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadlineMs = performance.now() + timeoutMs;
  while (performance.now() < deadlineMs) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = netConnect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleepMs(50);
  }
  throw new Error(`nothing listening on 127.0.0.1:${port} after ${timeoutMs} ms`);
}

async function startMosquitto(binary: string): Promise<ServerUnderTest> {
  const dir = mkdtempSync(join(tmpdir(), 'rb-bench-mosquitto-'));
  const port = await freePort();
  const configPath = join(dir, 'mosquitto.conf');
  // Defaults otherwise (max_inflight_messages 20, max_queued_messages 1000 per client).
  writeFileSync(
    configPath,
    [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      'persistence false',
      'max_connections -1',
      'log_dest stderr',
      'log_type error',
      '',
    ].join('\n'),
  );
  const child = spawn(binary, ['-c', configPath], { stdio: ['ignore', 'ignore', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await waitForPort(port, 10_000);
  } catch (err) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    name: 'mosquitto',
    port,
    pid: child.pid as number,
    gc: () => Promise.resolve(),
    async stop() {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Throughput scenarios

interface ScenarioResult {
  spec: ScenarioSpec;
  server: string;
  /** Messages published (QoS 1: and acknowledged). */
  published: number;
  publishFailures: number;
  /** Messages received by every subscriber. */
  completed: number;
  /** Distinct deliveries over all subscribers. */
  deliveries: number;
  lost: number;
  duplicates: number;
  seconds: number;
  sortedLatenciesMs: number[];
  serverCpuMs: number;
  clientCpuMs: number;
  error?: string;
}

/** One timed run of publishes; the first 8 payload bytes carry the sequence and the run's tag. */
interface Run {
  tag: number;
  count: number;
  subscribers: number;
  next: number;
  sentAtMs: Float64Array;
  publishedOk: Uint8Array;
  receivedBy: Uint8Array[];
  receipts: Uint8Array;
  abandoned: Uint8Array;
  outstanding: number;
  lowestOpen: number;
  completed: number;
  deliveries: number;
  duplicates: number;
  publishFailures: number;
  latenciesMs: number[];
  lastCompletionMs: number;
  wake: (() => void) | undefined;
}

function newRun(tag: number, count: number, subscribers: number): Run {
  return {
    tag,
    count,
    subscribers,
    next: 0,
    sentAtMs: new Float64Array(count),
    publishedOk: new Uint8Array(count),
    receivedBy: Array.from({ length: subscribers }, () => new Uint8Array(count)),
    receipts: new Uint8Array(count),
    abandoned: new Uint8Array(count),
    outstanding: 0,
    lowestOpen: 0,
    completed: 0,
    deliveries: 0,
    duplicates: 0,
    publishFailures: 0,
    latenciesMs: [],
    lastCompletionMs: 0,
    wake: undefined,
  };
}

function payloadFor(tag: number, sequence: number): Buffer {
  const payload = Buffer.alloc(PAYLOAD_BYTES, sequence % 251);
  payload.writeUInt32BE(sequence, 0);
  payload.writeUInt32BE(tag, 4);
  return payload;
}

/** Records a delivery to subscriber `index`; completes the message once every subscriber has it. */
function onDelivery(run: Run | undefined, index: number, payload: Buffer): void {
  if (run === undefined || payload.length < 8 || payload.readUInt32BE(4) !== run.tag) return;
  const sequence = payload.readUInt32BE(0);
  const seen = run.receivedBy[index];
  if (seen === undefined || sequence >= run.count) return;
  const nowMs = performance.now();
  if (seen[sequence] !== 0) {
    run.duplicates++;
    return;
  }
  seen[sequence] = 1;
  run.deliveries++;
  run.latenciesMs.push(nowMs - (run.sentAtMs[sequence] ?? nowMs));
  const receipts = (run.receipts[sequence] ?? 0) + 1;
  run.receipts[sequence] = receipts;
  if (receipts === run.subscribers) {
    run.completed++;
    run.lastCompletionMs = nowMs;
    if (run.abandoned[sequence] === 0) {
      run.outstanding--;
      const wake = run.wake;
      run.wake = undefined;
      wake?.();
    }
  }
}

/** Waits until a message completes (true) or `timeoutMs` passes (false). */
function waitForProgress(run: Run, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      run.wake = undefined;
      resolve(false);
    }, timeoutMs);
    run.wake = () => {
      clearTimeout(timer);
      resolve(true);
    };
  });
}

/** Gives up the open messages of a stalled window: they stay lost unless they arrive later. */
function abandonOpen(run: Run): void {
  for (let sequence = run.lowestOpen; sequence < run.next; sequence++) {
    if ((run.receipts[sequence] ?? 0) < run.subscribers && run.abandoned[sequence] === 0) {
      run.abandoned[sequence] = 1;
      run.outstanding--;
    }
  }
  run.lowestOpen = run.next;
}

/** Publishes `run.count` messages keeping `windowSize` outstanding, then drains; bounded by the cap. */
async function windowed(run: Run, label: string, publish: (sequence: number) => void): Promise<number> {
  const startMs = performance.now();
  const deadlineMs = startMs + capSeconds * 1000;
  const progressEvery = Math.max(1, Math.floor(run.count / 50));
  while (run.next < run.count && performance.now() < deadlineMs) {
    if (run.outstanding >= windowSize) {
      if (!(await waitForProgress(run, STALL_MS))) abandonOpen(run);
      continue;
    }
    const sequence = run.next++;
    run.sentAtMs[sequence] = performance.now();
    run.outstanding++;
    publish(sequence);
    if (sequence % progressEvery === 0) progress(label, sequence, run.count);
  }
  progress(label, run.count, run.count);
  while (run.outstanding > 0 && performance.now() < deadlineMs + STALL_MS) {
    if (!(await waitForProgress(run, STALL_MS))) abandonOpen(run);
  }
  return ((run.lastCompletionMs > 0 ? run.lastCompletionMs : performance.now()) - startMs) / 1000;
}

/**
 * An MQTT.js client on a socket with Nagle off: MQTT.js leaves it on, and small PUBACKs held back
 * against delayed ACKs on loopback add tens of milliseconds that would hide the servers' own costs.
 */
async function connectClient(port: number, clientId: string): Promise<MqttClient> {
  const client = new MqttClient(
    () => {
      const socket = netConnect(port, '127.0.0.1');
      socket.setNoDelay(true);
      return socket;
    },
    { clientId, clean: true, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10_000, keepalive: 60 },
  );
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
    client.once('close', () => reject(new Error(`${clientId}: closed before CONNACK`)));
  });
  client.removeAllListeners('error');
  client.on('error', (err) => console.error(`${clientId}: ${err.message}`));
  return client;
}

async function runScenario(server: ServerUnderTest, spec: ScenarioSpec): Promise<ScenarioResult> {
  // The first level is the engine topic on rocketbridge: one per scenario.
  const base = `mqttbench${spec.id.replace('-', '')}`;
  const topic = `${base}/data`;
  const filter = spec.subscribers === 1 ? topic : `${base}/+`;
  const clients: MqttClient[] = [];
  let current: Run | undefined;
  try {
    for (let i = 0; i < spec.subscribers; i++) {
      const subscriber = await connectClient(server.port, `${base}-sub-${i}`);
      clients.push(subscriber);
      subscriber.on('message', (_topic, payload) => onDelivery(current, i, payload));
      const granted = await subscriber.subscribeAsync(filter, { qos: spec.qos });
      if (granted[0]?.qos !== spec.qos) throw new Error(`subscription to ${filter} granted ${granted[0]?.qos}`);
    }
    const publisher = await connectClient(server.port, `${base}-pub`);
    clients.push(publisher);
    const publish = (run: Run, sequence: number): void => {
      publisher.publish(topic, payloadFor(run.tag, sequence), { qos: spec.qos }, (err) => {
        if (err !== undefined && err !== null) run.publishFailures++;
        else run.publishedOk[sequence] = 1;
      });
    };

    // Warm-up: until every subscriber receives (on rocketbridge the first publish creates the
    // topic and the readers find it), then a short windowed run.
    const probe = newRun(1, 300, spec.subscribers);
    current = probe;
    const probeDeadlineMs = performance.now() + 30_000;
    while (probe.completed === 0 && probe.next < probe.count && performance.now() < probeDeadlineMs) {
      const sequence = probe.next++;
      publish(probe, sequence);
      await sleepMs(100);
    }
    if (probe.completed === 0) throw new Error('no subscriber received a warm-up message within 30 s');
    const warmup = newRun(2, WARMUP_MESSAGES, spec.subscribers);
    current = warmup;
    await windowed(warmup, `${server.name} ${spec.id} warm-up`, (sequence) => publish(warmup, sequence));

    const run = newRun(3, totalMessages, spec.subscribers);
    current = run;
    const client0 = ownCpuMs();
    const server0 = processCpuMs(server.pid);
    const seconds = await windowed(run, `${server.name} ${spec.id}`, (sequence) => publish(run, sequence));
    const serverCpuMs = processCpuMs(server.pid) - server0;
    const clientCpu = ownCpuMs() - client0;
    // A moment for late QoS 1 acknowledgements and stragglers to be counted.
    await sleepMs(200);
    let published = 0;
    let lost = 0;
    for (let sequence = 0; sequence < run.next; sequence++) {
      const ok = spec.qos === 0 || run.publishedOk[sequence] === 1;
      if (!ok) continue;
      published++;
      for (const seen of run.receivedBy) if (seen[sequence] === 0) lost++;
    }
    return {
      spec,
      server: server.name,
      published,
      publishFailures: run.publishFailures,
      completed: run.completed,
      deliveries: run.deliveries,
      lost,
      duplicates: run.duplicates,
      seconds,
      sortedLatenciesMs: run.latenciesMs.sort((a, b) => a - b),
      serverCpuMs,
      clientCpuMs: clientCpu,
    };
  } catch (err) {
    return {
      spec,
      server: server.name,
      published: 0,
      publishFailures: 0,
      completed: 0,
      deliveries: 0,
      lost: 0,
      duplicates: 0,
      seconds: Number.NaN,
      sortedLatenciesMs: [],
      serverCpuMs: 0,
      clientCpuMs: 0,
      error: err instanceof Error ? err.message : String(err),
    };
  } finally {
    current = undefined;
    await Promise.all(clients.map((client) => client.endAsync(true).catch(() => undefined)));
  }
}

// ---------------------------------------------------------------------------------------------
// Idle connections

interface IdleResult extends HeldConnections {
  opened: number;
}

/** CONNECT, MQTT 3.1.1, clean session, keep-alive 0 (the server never times it out). */
function connectPacket(clientId: string): Buffer {
  const id = Buffer.from(clientId, 'utf8');
  const variableAndPayload = Buffer.concat([
    Buffer.from([0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x00]),
    Buffer.from([id.length >> 8, id.length & 0xff]),
    id,
  ]);
  // Remaining length < 128: one byte.
  return Buffer.concat([Buffer.from([0x10, variableAndPayload.length]), variableAndPayload]);
}

/** Opens one raw MQTT connection; resolves with the socket once CONNACK 0 arrives. */
function openIdle(port: number, clientId: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(port, '127.0.0.1');
    let received = Buffer.alloc(0);
    const fail = (reason: string): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(new Error(reason));
    };
    const timer = setTimeout(() => fail('no CONNACK in time'), CONNECT_TIMEOUT_MS);
    socket.once('connect', () => socket.write(connectPacket(clientId)));
    socket.on('error', (err) => fail(err.message));
    socket.once('close', () => fail('closed before CONNACK'));
    const onData = (chunk: Buffer): void => {
      received = Buffer.concat([received, chunk]);
      if (received.length < 4) return;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.removeAllListeners('close');
      socket.removeAllListeners('error');
      socket.on('error', () => undefined);
      if (received[0] !== 0x20 || received[3] !== 0) return fail(`CONNACK ${received.subarray(0, 4).toString('hex')}`);
      resolve(socket);
    };
    socket.on('data', onData);
  });
}

async function idleScenario(server: ServerUnderTest): Promise<IdleResult> {
  await sleepMs(500);
  await server.gc();
  const rssBeforeKiB = processRssKiB(server.pid);
  const fdsBefore = openFdCount(server.pid);
  let closed = 0;
  const opened = await openInBatches(
    `${server.name} idle connections`,
    idleConnections,
    CONNECT_BATCH,
    capSeconds,
    async (index) => {
      const socket = await openIdle(server.port, `idle-${index}`);
      socket.once('close', () => closed++);
      return socket;
    },
  );
  const sockets = opened.opened.filter((socket): socket is Socket => socket !== undefined);
  const { failures, firstFailure } = opened;
  const connectSeconds = opened.seconds;
  // Let the server settle (timers, lazily allocated buffers), then collect garbage and read RSS.
  await sleepMs(2000);
  await server.gc();
  const rssWithKiB = processRssKiB(server.pid);
  const held = sockets.length - closed;
  const serverFds = openFdCount(server.pid) - fdsBefore;
  if (serverFds < held) console.log(`  note: ${server.name} holds ${serverFds} new descriptors for ${held} sockets`);
  for (const socket of sockets) socket.destroy();
  // Wait (bounded) until the server has closed its side, so later scenarios start clean.
  const closeDeadlineMs = performance.now() + 20_000;
  while (openFdCount(server.pid) > fdsBefore + 10 && performance.now() < closeDeadlineMs) await sleepMs(100);
  const result: IdleResult = {
    server: server.name,
    opened: sockets.length,
    held,
    failures,
    connectSeconds,
    rssBeforeKiB,
    rssWithKiB,
  };
  if (firstFailure !== undefined) result.firstFailure = firstFailure;
  return result;
}

// ---------------------------------------------------------------------------------------------
// Report

function rateOf(result: ScenarioResult): number {
  return result.completed / result.seconds;
}

function printThroughput(results: ScenarioResult[]): void {
  console.log(
    `\nThroughput, ${PAYLOAD_BYTES} B payloads, ${windowSize} messages outstanding; msgs/s = messages received by ` +
      'every subscriber per second; latency = publish call to receipt, per delivery; CPU in % of a core; ' +
      'srv µs/msg = server CPU per message (less sensitive to other load on the machine than msgs/s)',
  );
  const header = [
    'scenario'.padEnd(28),
    'server'.padEnd(13),
    'msgs/s'.padStart(8),
    'deliv/s'.padStart(8),
    'p50 ms'.padStart(7),
    'p99 ms'.padStart(7),
    'lost'.padStart(6),
    'dup'.padStart(5),
    'srv CPU'.padStart(8),
    'cli CPU'.padStart(8),
    'srv µs/msg'.padStart(10),
    'vs aedes'.padStart(9),
  ];
  console.log(header.join(' '));
  for (const spec of SPECS) {
    const rows = results.filter((result) => result.spec.id === spec.id);
    const baseline = rows.find((result) => result.server === BASELINE && result.error === undefined);
    for (const result of rows) {
      const name = result === rows[0] ? spec.title : '';
      if (result.error !== undefined) {
        console.log(`${name.padEnd(28)} ${result.server.padEnd(13)} failed: ${result.error}`);
        continue;
      }
      const ratio = baseline === undefined ? '' : `${fixed((100 * rateOf(result)) / rateOf(baseline), 1)}%`;
      console.log(
        [
          name.padEnd(28),
          result.server.padEnd(13),
          fixed(rateOf(result), 0).padStart(8),
          fixed(result.deliveries / result.seconds, 0).padStart(8),
          fixed(percentile(result.sortedLatenciesMs, 0.5), 2).padStart(7),
          fixed(percentile(result.sortedLatenciesMs, 0.99), 2).padStart(7),
          String(result.lost).padStart(6),
          String(result.duplicates).padStart(5),
          `${fixed((100 * result.serverCpuMs) / (1000 * result.seconds), 0)}%`.padStart(8),
          `${fixed((100 * result.clientCpuMs) / (1000 * result.seconds), 0)}%`.padStart(8),
          fixed((1000 * result.serverCpuMs) / Math.max(result.completed, 1), 0).padStart(10),
          ratio.padStart(9),
        ].join(' '),
      );
      if (result.published < totalMessages || result.publishFailures > 0) {
        console.log(
          `${''.padEnd(28)} ${''.padEnd(13)} published ${result.published} of ${totalMessages}` +
            ` (${result.publishFailures} publish failures; cap ${capSeconds} s)`,
        );
      }
    }
  }
}

const IDLE_LAYOUT: HeldConnectionsLayout = {
  serverWidth: 13,
  heldWidth: 7,
  connectDigits: 1,
  kibDigits: 2,
  ratioTitle: 'vs aedes',
  ratioDigits: 1,
};

function printIdle(results: IdleResult[]): void {
  console.log(
    `\nIdle connections (${idleConnections} raw MQTT connections, keep-alive 0; server RSS from /proc, after a GC in node servers)`,
  );
  console.log(heldConnectionsHeader(IDLE_LAYOUT).join(' '));
  const baseline = results.find((result) => result.server === BASELINE);
  for (const result of results) {
    console.log(heldConnectionsCells(result, baseline, IDLE_LAYOUT).join(' '));
    if (result.firstFailure !== undefined) console.log(`  ${result.server}: first failure: ${result.firstFailure}`);
    if (result.firstFailure?.includes('EMFILE') === true) {
      console.log('  note: out of file descriptors; raise the limit (ulimit -n 65536) and run again');
    }
  }
}

function printTargets(results: ScenarioResult[], idle: IdleResult[]): void {
  console.log('\nTargets (issue 5):');
  const find = (id: string, server: string): ScenarioResult | undefined =>
    results.find((result) => result.spec.id === id && result.server === server && result.error === undefined);
  for (const [id, what] of [
    ['q1-one', 'QoS 1 (every message persisted) at no less than aedes'],
    ['q0-fan', `QoS 0 fan-out to ${FANOUT_SUBSCRIBERS} at no less than aedes`],
    ['q1-fan', `QoS 1 fan-out to ${FANOUT_SUBSCRIBERS} at no less than aedes`],
  ] as const) {
    const ours = find(id, 'rocketbridge');
    const theirs = find(id, BASELINE);
    if (ours === undefined || theirs === undefined) continue;
    const percent = (100 * rateOf(ours)) / rateOf(theirs);
    console.log(
      `  ${what}: ${fixed(rateOf(ours), 0)} vs ${fixed(rateOf(theirs), 0)} msgs/s = ${fixed(percent, 1)}% ` +
        `(${percent >= 100 ? 'met' : 'not met'})`,
    );
  }
  const ours = idle.find((result) => result.server === 'rocketbridge');
  if (ours !== undefined) {
    const kib = kibPerConnection(ours);
    console.log(
      `  ${idleConnections} idle connections under ${TARGET_IDLE_KIB} KiB each: ${ours.held} held, ` +
        `${fixed(kib, 2)} KiB each = ${fixed((100 * kib) / TARGET_IDLE_KIB, 1)}% of the target ` +
        `(${ours.held === idleConnections && kib < TARGET_IDLE_KIB ? 'met' : 'not met'})`,
    );
  }
}

async function main(): Promise<void> {
  const mosquittoBinary = findMosquitto();
  console.log(
    `MQTT benchmark: ${totalMessages} messages of ${PAYLOAD_BYTES} B per scenario (cap ${capSeconds} s), ` +
      `MQTT.js clients in this process, each server in its own process on 127.0.0.1; baseline: standalone ` +
      `in-memory aedes`,
  );
  const throughput: ScenarioResult[] = [];
  const idle: IdleResult[] = [];
  for (const kind of serverKinds) {
    let server: ServerUnderTest;
    if (kind === 'mosquitto') {
      if (mosquittoBinary === undefined) {
        console.log('mosquitto: not installed (apt-get install mosquitto); skipped');
        continue;
      }
      server = await startMosquitto(mosquittoBinary);
    } else if (kind === 'rocketbridge' || kind === 'aedes') {
      server = await startNodeServer(kind);
    } else {
      throw new Error(`unknown server ${kind}`);
    }
    try {
      if (scenarios.has('idle')) idle.push(await idleScenario(server));
      for (const spec of SPECS) {
        if (scenarios.has(spec.id)) throughput.push(await runScenario(server, spec));
      }
    } finally {
      await server.stop();
    }
  }
  if (throughput.length > 0) printThroughput(throughput);
  if (idle.length > 0) printIdle(idle);
  printTargets(throughput, idle);
}

await main();
