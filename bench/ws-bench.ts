/**
 * WebSocket API benchmark (issue 7): `ws` clients in this process, 1 KiB bodies, against
 * rocketbridge in a child process (NameServer + broker + HTTP listener with the WebSocket handler
 * at /ws over the in-process transport, as `rocketbridge start` wires them, without MQTT/AMQP).
 * On 2 cores the server gets one core and the clients the other.
 *
 * Scenarios (bodies travel in binary frames both ways, see docs/websocket.md):
 *   produce:   one connection, 256 produces in flight; msgs/s and latency from the produce frame
 *              to its `produced` answer. Baseline: our engine Producer.send over TCP to the same
 *              broker, 256 in flight, measured in the same run; the ratio is the WebSocket cost.
 *   subscribe: one connection subscribed with credit 1,000 (topped up as messages arrive, every
 *              message acked) while the engine Producer sends over TCP, 256 in flight; consume
 *              msgs/s and latency from the send call to the `message` frame; lost/duplicates.
 *              Compared to the same Producer baseline (a subscriber cannot outrun the producer).
 *   fan-in:    --connections connections, each subscribed to its own tag (a private group each);
 *              then one message per tag through the engine Producer, each delivered to its
 *              connection. Connect+subscribe time, delivery p50/p99, and server memory per
 *              connection (VmRSS from /proc/<pid>/status after a GC, (with - before) / count).
 *              Baseline: a plain `ws` echo server in a child process holding as many connections.
 *
 * Server and client CPU per message (from the child's process.cpuUsage and ours) are printed
 * under the throughput table: on a loaded machine they move less than msgs/s.
 *
 * Options: --messages N (per throughput scenario, default 50000), --connections N (default 1000),
 * --seconds S (cap per scenario, default 30).
 */
import './bench-env.js';
import { WebSocket } from 'ws';
import { Producer } from '../src/engine/client/producer.js';
import { ownCpuMs, processRssKiB, startBenchChild } from './bench-process.js';
import {
  argument,
  closedLoop,
  fixed,
  heldConnectionsCells,
  heldConnectionsHeader,
  type HeldConnections,
  type HeldConnectionsLayout,
  type Measurement,
  openInBatches,
  percentile,
  printTable,
  progress,
  sleepMs,
} from './bench-util.js';

const totalMessages = Math.floor(argument('messages', 50_000));
const connectionCount = Math.floor(argument('connections', 1000));
const capSeconds = argument('seconds', 30);
const capMs = capSeconds * 1000;

const BODY_BYTES = 1024;
const IN_FLIGHT = 256;
const CREDIT = 1000;
/** Credit is granted back in steps of this many received messages. */
const CREDIT_STEP = 250;
const WARMUP_MESSAGES = 2000;
const CONNECT_BATCH = 100;
const OPEN_TIMEOUT_MS = 10_000;
/** Marks warm-up bodies (a real sequence number never gets this high). */
const WARMUP_SEQUENCE = 0xffffffff;

// ---------------------------------------------------------------------------------------------
// Servers in child processes

/** A server child (bench-process.ts protocol) with what ws-bench reads from its READY and GC lines. */
interface ChildServer {
  pid: number;
  port: number;
  namesrv: string | undefined;
  /** A full GC in the child; resolves with its V8 heap in use afterwards. */
  gc(): Promise<number>;
  cpuMs(): Promise<number>;
  stop(): Promise<void>;
}

async function startChild(kind: 'rocketbridge' | 'echo'): Promise<ChildServer> {
  const child = await startBenchChild<{ port: number; namesrv?: string }>({
    fromUrl: import.meta.url,
    script: 'ws-bench-child',
    rocketbridgeServer: kind === 'rocketbridge',
    nodeArgs: ['--expose-gc'],
    args: [kind],
    readyTimeoutMs: 60_000,
  });
  return {
    pid: child.pid,
    port: child.ready.port,
    namesrv: child.ready.namesrv,
    async gc() {
      return ((await child.gcReport()) as { heapUsedBytes: number }).heapUsedBytes;
    },
    cpuMs: () => child.cpuMs(),
    stop: () => child.stop(),
  };
}

// ---------------------------------------------------------------------------------------------
// A minimal client of the JSON protocol

type Frame = Record<string, unknown> & { type: string };

/** One `ws` connection: answers matched by requestId, binary `message` frames to `onMessage`. */
class BenchClient {
  private readonly pending = new Map<
    string | number,
    { resolve: (frame: Frame) => void; reject: (err: Error) => void }
  >();
  onMessage: (header: Frame, body: Buffer) => void = () => undefined;
  private nextId = 1;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) {
        const headerBytes = data.readUInt32BE(0);
        const header = JSON.parse(data.toString('utf8', 4, 4 + headerBytes)) as Frame;
        this.onMessage(header, data.subarray(4 + headerBytes));
        return;
      }
      const frame = JSON.parse(data.toString('utf8')) as Frame;
      const requestId = frame['requestId'] as string | number | undefined;
      const waiter = requestId === undefined ? undefined : this.pending.get(requestId);
      if (waiter === undefined) {
        if (frame.type === 'error') console.error(`unexpected error frame: ${JSON.stringify(frame)}`);
        return;
      }
      this.pending.delete(requestId as string | number);
      if (frame.type === 'error') waiter.reject(new Error(`${String(frame['code'])}: ${String(frame['message'])}`));
      else waiter.resolve(frame);
    });
    ws.on('close', () => {
      for (const waiter of this.pending.values()) waiter.reject(new Error('connection closed'));
      this.pending.clear();
    });
    ws.on('error', () => undefined);
  }

  static async open(url: string): Promise<BenchClient> {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    const client = new BenchClient(ws);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('open timed out')), OPEN_TIMEOUT_MS);
      ws.once('open', () => {
        clearTimeout(timer);
        resolve();
      });
      ws.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    return client;
  }

  /** Sends `frame` (JSON, or binary with `body`) with a fresh requestId; resolves with its answer. */
  request(frame: Record<string, unknown>, body?: Buffer): Promise<Frame> {
    const requestId = this.nextId++;
    const promise = new Promise<Frame>((resolve, reject) => this.pending.set(requestId, { resolve, reject }));
    const json = JSON.stringify({ ...frame, requestId });
    if (body === undefined) {
      this.ws.send(json);
    } else {
      const header = Buffer.from(json, 'utf8');
      const length = Buffer.alloc(4);
      length.writeUInt32BE(header.length, 0);
      this.ws.send(Buffer.concat([length, header, body]), { binary: true });
    }
    return promise;
  }

  send(frame: Record<string, unknown>): void {
    this.ws.send(JSON.stringify(frame));
  }

  close(): void {
    this.ws.terminate();
  }
}

async function hello(url: string): Promise<BenchClient> {
  const client = await BenchClient.open(url);
  const welcome = await client.request({ type: 'hello' });
  if (welcome.type !== 'welcome') throw new Error(`hello answered ${JSON.stringify(welcome)}`);
  return client;
}

// ---------------------------------------------------------------------------------------------
// Helpers

/** A 1 KiB body whose first 4 bytes carry the sequence number. */
function bodyFor(sequence: number): Buffer {
  const body = Buffer.alloc(BODY_BYTES, sequence % 251);
  body.writeUInt32BE(sequence, 0);
  return body;
}

/** CPU time used by the server child and by this process between start and stop. */
interface CpuUse {
  serverMs: number;
  clientMs: number;
}

async function metered<T>(server: ChildServer, run: () => Promise<T>): Promise<T & { cpu: CpuUse }> {
  const server0 = await server.cpuMs();
  const client0 = ownCpuMs();
  const result = await run();
  const clientMs = ownCpuMs() - client0;
  return { ...result, cpu: { serverMs: (await server.cpuMs()) - server0, clientMs } };
}

// ---------------------------------------------------------------------------------------------
// (a) produce

async function producerBaseline(server: ChildServer, producer: Producer): Promise<Metered> {
  const topic = 'WsBenchBaseline';
  const send = async (sequence: number): Promise<number> => {
    await producer.send({ topic, tags: 'TagA', body: bodyFor(sequence) });
    return 1;
  };
  await closedLoop('Producer warm-up', WARMUP_MESSAGES, IN_FLIGHT, send, capMs);
  const run = await metered(server, () => closedLoop('Producer.send over TCP', totalMessages, IN_FLIGHT, send, capMs));
  return {
    cpu: run.cpu,
    scenario: `Producer.send TCP, ${IN_FLIGHT} in flight (baseline)`,
    messages: run.messages,
    bytes: run.messages * BODY_BYTES,
    seconds: run.seconds,
    latenciesMs: run.latenciesMs,
  };
}

async function wsProduce(server: ChildServer): Promise<Metered> {
  const client = await hello(`ws://127.0.0.1:${server.port}/ws`);
  try {
    const produce = async (sequence: number): Promise<number> => {
      const answer = await client.request({ type: 'produce', topic: 'WsBenchProduce', tag: 'TagA' }, bodyFor(sequence));
      if (answer.type !== 'produced') throw new Error(`produce answered ${JSON.stringify(answer)}`);
      return 1;
    };
    await closedLoop('ws produce warm-up', WARMUP_MESSAGES, IN_FLIGHT, produce, capMs);
    const run = await metered(server, () => closedLoop('ws produce', totalMessages, IN_FLIGHT, produce, capMs));
    return {
      cpu: run.cpu,
      scenario: `ws produce, ${IN_FLIGHT} in flight`,
      messages: run.messages,
      bytes: run.messages * BODY_BYTES,
      seconds: run.seconds,
      latenciesMs: run.latenciesMs,
    };
  } finally {
    client.close();
  }
}

// ---------------------------------------------------------------------------------------------
// (b) subscribe with credit while the Producer sends

/** A measurement with the CPU it took. */
type Metered = Measurement & { cpu: CpuUse };

interface ConsumeResult {
  produced: Measurement;
  consumed: Metered;
  lost: number;
  duplicates: number;
}

async function wsSubscribe(server: ChildServer, producer: Producer): Promise<ConsumeResult> {
  const topic = 'WsBenchConsume';
  // Create the topic first so the subscription starts at its end.
  for (let i = 0; i < 8; i++) await producer.send({ topic, tags: 'TagA', body: bodyFor(WARMUP_SEQUENCE) });
  const client = await hello(`ws://127.0.0.1:${server.port}/ws`);
  const sentAtMs = new Float64Array(totalMessages);
  const deliveries = new Uint16Array(totalMessages);
  const latenciesMs: number[] = [];
  let warmupDelivered = 0;
  let unique = 0;
  let duplicates = 0;
  let lastDeliveryMs = 0;
  let sinceGrant = 0;
  client.onMessage = (header, body) => {
    const nowMs = performance.now();
    client.send({ type: 'ack', messageId: header['messageId'] });
    if (++sinceGrant >= CREDIT_STEP) {
      client.send({ type: 'credit', subscriptionId: 'bench', credit: sinceGrant });
      sinceGrant = 0;
    }
    const sequence = body.readUInt32BE(0);
    if (sequence === WARMUP_SEQUENCE) {
      warmupDelivered++;
      return;
    }
    if (sequence >= totalMessages) return;
    const seen = deliveries[sequence] ?? 0;
    deliveries[sequence] = seen + 1;
    if (seen > 0) {
      duplicates++;
      return;
    }
    unique++;
    lastDeliveryMs = nowMs;
    latenciesMs.push(nowMs - (sentAtMs[sequence] ?? nowMs));
  };
  try {
    const subscribed = await client.request({
      type: 'subscribe',
      subscriptionId: 'bench',
      topic,
      credit: CREDIT,
      bodyEncoding: 'binary',
    });
    if (subscribed.type !== 'subscribed') throw new Error(`subscribe answered ${JSON.stringify(subscribed)}`);
    // Warm up: messages after `subscribed` arrive (every queue is being read).
    const warmup = 64;
    for (let i = 0; i < warmup; i++) await producer.send({ topic, tags: 'TagA', body: bodyFor(WARMUP_SEQUENCE) });
    const warmupDeadlineMs = performance.now() + 30_000;
    while (warmupDelivered < warmup && performance.now() < warmupDeadlineMs) await sleepMs(20);
    if (warmupDelivered < warmup) throw new Error(`subscriber got ${warmupDelivered}/${warmup} warm-up messages`);

    const sentOk = new Uint8Array(totalMessages);
    const startMs = performance.now();
    const run = await metered(server, async () => {
      const sent = await closedLoop(
        'produce while a ws subscriber consumes',
        totalMessages,
        IN_FLIGHT,
        async (sequence) => {
          sentAtMs[sequence] = performance.now();
          await producer.send({ topic, tags: 'TagA', body: bodyFor(sequence) });
          sentOk[sequence] = 1;
          return 1;
        },
        capMs,
      );
      const drainDeadlineMs = performance.now() + capMs;
      while (unique < sent.messages && performance.now() < drainDeadlineMs) {
        progress('ws subscriber draining', unique, sent.messages);
        await sleepMs(20);
      }
      return sent;
    });
    let lost = 0;
    for (let sequence = 0; sequence < totalMessages; sequence++) {
      if (sentOk[sequence] === 1 && deliveries[sequence] === 0) lost++;
    }
    return {
      produced: {
        scenario: `Producer.send TCP, ${IN_FLIGHT} in flight, ws reading`,
        messages: run.messages,
        bytes: run.messages * BODY_BYTES,
        seconds: run.seconds,
        latenciesMs: run.latenciesMs,
      },
      consumed: {
        cpu: run.cpu,
        scenario: `ws subscribe, credit ${CREDIT} (send->message)`,
        messages: unique,
        bytes: unique * BODY_BYTES,
        seconds: Math.max(lastDeliveryMs - startMs, 1) / 1000,
        latenciesMs,
      },
      lost,
      duplicates,
    };
  } finally {
    client.close();
  }
}

// ---------------------------------------------------------------------------------------------
// (c) many connections, one tag each

interface ConnectionsResult extends HeldConnections {
  heapBeforeBytes: number;
  heapWithBytes: number;
  /** Server CPU while the one message per tag was sent and delivered. */
  deliveryServerCpuMs?: number;
  delivered?: number;
  deliverySeconds?: number;
  latenciesMs?: number[];
}

/** Opens `connectionCount` connections in batches with `open(index)`; times it. */
async function openMany<T>(
  label: string,
  open: (index: number) => Promise<T>,
): Promise<{ opened: (T | undefined)[]; failures: number; firstFailure?: string; seconds: number }> {
  // Like the MQTT benchmark: connecting gets at least a minute whatever --seconds says.
  return openInBatches(label, connectionCount, CONNECT_BATCH, capSeconds, open);
}

/** Server RSS (KiB) and V8 heap in use (bytes) after things settle and a full GC. */
async function settledMemory(server: ChildServer): Promise<{ rssKiB: number; heapBytes: number }> {
  await sleepMs(1000);
  const heapBytes = await server.gc();
  return { rssKiB: processRssKiB(server.pid), heapBytes };
}

async function manyConnections(server: ChildServer, producer: Producer): Promise<ConnectionsResult> {
  const topic = 'WsBenchTags';
  const url = `ws://127.0.0.1:${server.port}/ws`;
  await producer.send({ topic, tags: 'warm', body: bodyFor(WARMUP_SEQUENCE) });
  // One connection through the whole path first, so lazily loaded code is not counted per connection.
  const probe = await hello(url);
  await probe.request({ type: 'subscribe', topic, tag: 'probe', credit: 1 });
  probe.close();
  const before = await settledMemory(server);
  const receivedAtMs = new Float64Array(connectionCount);
  let delivered = 0;
  const opened = await openMany('ws connect+subscribe', async (index) => {
    const client = await hello(url);
    client.onMessage = (header, body) => {
      if (body.readUInt32BE(0) !== index || receivedAtMs[index] !== 0) return;
      receivedAtMs[index] = performance.now();
      delivered++;
      client.send({ type: 'ack', messageId: header['messageId'] });
    };
    const subscribed = await client.request({
      type: 'subscribe',
      subscriptionId: 'own',
      topic,
      tag: `t${index}`,
      credit: 10,
      bodyEncoding: 'binary',
    });
    if (subscribed.type !== 'subscribed') throw new Error(`subscribe answered ${JSON.stringify(subscribed)}`);
    return client;
  });
  const clients = opened.opened;
  const withAll = await settledMemory(server);
  const held = clients.filter((client) => client !== undefined).length;

  // One message per tag through the engine Producer; latency from the send call to the frame.
  const sentAtMs = new Float64Array(connectionCount);
  const sendStartMs = performance.now();
  const delivery = await metered(server, async () => {
    await closedLoop(
      'one message per tag',
      connectionCount,
      IN_FLIGHT,
      async (index) => {
        sentAtMs[index] = performance.now();
        await producer.send({ topic, tags: `t${index}`, body: bodyFor(index) });
        return 1;
      },
      capMs,
    );
    const deadlineMs = performance.now() + capMs;
    while (delivered < held && performance.now() < deadlineMs) {
      progress('deliveries', delivered, held);
      await sleepMs(20);
    }
    return {};
  });
  const latenciesMs: number[] = [];
  let lastMs = sendStartMs;
  for (let index = 0; index < connectionCount; index++) {
    const at = receivedAtMs[index] ?? 0;
    if (at === 0) continue;
    latenciesMs.push(at - (sentAtMs[index] ?? at));
    lastMs = Math.max(lastMs, at);
  }
  for (const client of clients) client?.close();
  const result: ConnectionsResult = {
    server: 'rocketbridge (subscribed)',
    held,
    failures: opened.failures,
    connectSeconds: opened.seconds,
    rssBeforeKiB: before.rssKiB,
    rssWithKiB: withAll.rssKiB,
    heapBeforeBytes: before.heapBytes,
    heapWithBytes: withAll.heapBytes,
    deliveryServerCpuMs: delivery.cpu.serverMs,
    delivered,
    deliverySeconds: (lastMs - sendStartMs) / 1000,
    latenciesMs: latenciesMs.sort((a, b) => a - b),
  };
  if (opened.firstFailure !== undefined) result.firstFailure = opened.firstFailure;
  return result;
}

/** Baseline: a plain `ws` echo server holding as many connections, each having echoed one frame. */
async function echoConnections(): Promise<ConnectionsResult> {
  const server = await startChild('echo');
  try {
    const url = `ws://127.0.0.1:${server.port}/`;
    const before = await settledMemory(server);
    const opened = await openMany('echo connect', async () => {
      const ws = new WebSocket(url, { perMessageDeflate: false });
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('echo timed out')), OPEN_TIMEOUT_MS);
        ws.once('open', () => ws.send(JSON.stringify({ type: 'hello' })));
        ws.once('message', () => {
          clearTimeout(timer);
          resolve();
        });
        ws.once('error', (err) => {
          clearTimeout(timer);
          reject(err);
        });
      });
      ws.on('error', () => undefined);
      return ws;
    });
    const withAll = await settledMemory(server);
    for (const ws of opened.opened) ws?.terminate();
    const result: ConnectionsResult = {
      server: 'ws echo server (baseline)',
      held: opened.opened.filter((ws) => ws !== undefined).length,
      failures: opened.failures,
      connectSeconds: opened.seconds,
      rssBeforeKiB: before.rssKiB,
      rssWithKiB: withAll.rssKiB,
      heapBeforeBytes: before.heapBytes,
      heapWithBytes: withAll.heapBytes,
    };
    if (opened.firstFailure !== undefined) result.firstFailure = opened.firstFailure;
    return result;
  } finally {
    await server.stop();
  }
}

const CONNECTIONS_LAYOUT: HeldConnectionsLayout = {
  serverWidth: 28,
  heldWidth: 6,
  connectDigits: 2,
  kibDigits: 1,
  ratioTitle: 'vs echo',
  ratioDigits: 0,
};

function heapKibPerConnection(result: ConnectionsResult): number {
  return (result.heapWithBytes - result.heapBeforeBytes) / 1024 / Math.max(result.held, 1);
}

function printConnections(results: ConnectionsResult[]): void {
  console.log(
    `\n${connectionCount} concurrent connections, each subscribed to its own tag (private group), one message per ` +
      'tag from the engine Producer; server RSS from /proc after a GC; delivery = send call to message frame',
  );
  console.log(
    [
      ...heldConnectionsHeader(CONNECTIONS_LAYOUT),
      'heap KiB/conn'.padStart(14),
      'vs echo'.padStart(8),
      'delivered'.padStart(10),
      'p50 ms'.padStart(8),
      'p99 ms'.padStart(8),
    ].join(' '),
  );
  const baseline = results.find((result) => result.delivered === undefined);
  for (const result of results) {
    const heapRatio =
      baseline === undefined
        ? ''
        : `${fixed((100 * heapKibPerConnection(result)) / heapKibPerConnection(baseline), 0)}%`;
    const latencies = result.latenciesMs ?? [];
    console.log(
      [
        ...heldConnectionsCells(result, baseline, CONNECTIONS_LAYOUT),
        fixed(heapKibPerConnection(result), 1).padStart(14),
        heapRatio.padStart(8),
        (result.delivered === undefined ? '' : `${result.delivered}/${result.held}`).padStart(10),
        (result.delivered === undefined ? '' : fixed(percentile(latencies, 0.5), 1)).padStart(8),
        (result.delivered === undefined ? '' : fixed(percentile(latencies, 0.99), 1)).padStart(8),
      ].join(' '),
    );
    if (result.firstFailure !== undefined) console.log(`  first failure: ${result.firstFailure}`);
    if (result.deliveryServerCpuMs !== undefined && result.delivered !== undefined) {
      console.log(
        `  server CPU while the ${result.delivered} messages were sent and delivered: ` +
          `${fixed(result.deliveryServerCpuMs, 0)} ms = ${fixed((1000 * result.deliveryServerCpuMs) / Math.max(result.delivered, 1), 0)} µs per message`,
      );
    }
  }
}

async function main(): Promise<void> {
  console.log(
    `WebSocket benchmark: ${totalMessages} messages of ${BODY_BYTES} B per throughput scenario, ` +
      `${connectionCount} connections (cap ${capSeconds} s each); ws clients in this process, ` +
      'rocketbridge (NameServer + broker + HTTP /ws, in-process transport) in a child process',
  );
  const server = await startChild('rocketbridge');
  const producer = new Producer({ group: 'ws_bench_producer', nameServers: [server.namesrv as string] });
  let baseline: Metered;
  let produce: Metered;
  let consume: ConsumeResult;
  const connections: ConnectionsResult[] = [];
  try {
    await producer.start();
    baseline = await producerBaseline(server, producer);
    produce = await wsProduce(server);
    consume = await wsSubscribe(server, producer);
    connections.push(await manyConnections(server, producer));
  } finally {
    await producer.shutdown();
    await server.stop();
  }
  connections.push(await echoConnections());

  printTable('Throughput, 1 KiB bodies (vs baseline = Producer.send over TCP to the same broker)', [
    { measurement: baseline },
    { measurement: produce, baseline },
    { measurement: consume.produced, baseline },
    { measurement: consume.consumed, baseline },
  ]);
  console.log(`  ws subscriber: ${consume.lost} lost, ${consume.duplicates} duplicates`);
  console.log(
    '  CPU per message in µs (server = the child: broker, plus the WebSocket front end for ws rows; less ' +
      'sensitive to other load on the machine than msgs/s):',
  );
  const baselineServerUs = (1000 * baseline.cpu.serverMs) / Math.max(baseline.messages, 1);
  for (const row of [baseline, produce, consume.consumed]) {
    const serverUs = (1000 * row.cpu.serverMs) / Math.max(row.messages, 1);
    const clientUs = (1000 * row.cpu.clientMs) / Math.max(row.messages, 1);
    const ratio = row === baseline ? '' : ` = ${fixed((100 * serverUs) / baselineServerUs, 0)}% of the baseline's`;
    console.log(
      `    ${row.scenario.padEnd(44)} server ${fixed(serverUs, 0).padStart(5)}, client ${fixed(clientUs, 0).padStart(5)}${ratio}`,
    );
  }
  printConnections(connections);
}

await main();
