/**
 * The servers the AMQP benchmarks compare (amqp-bench.ts, amqp-paced-bench.ts): rocketbridge's AMQP
 * front end in a child process (amqp-bench-child.ts) and a throw-away RabbitMQ node from Debian's
 * rabbitmq-server, plus the message bodies both send.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import { cpuProfArgs, processCpuMs, startBenchChild } from './bench-process.js';
import { sleepMs } from './bench-util.js';

export const BODY_BYTES = 1024;
/** Unconfirmed publishes a confirm-channel publisher keeps in flight (the window). */
export const CONFIRM_WINDOW = 1000;

/** A 1 KiB body carrying its sequence number in the first 4 bytes. */
export function bodyFor(sequence: number): Buffer {
  const body = Buffer.alloc(BODY_BYTES, sequence % 251);
  body.writeUInt32BE(sequence, 0);
  return body;
}

export interface Target {
  name: string;
  url: string;
  /** CPU ms the server has used so far, when it can be read. */
  cpuMs(): Promise<number | undefined>;
  stop(): Promise<void>;
}

/** Our AMQP front end and broker in a child process; `nodeArgs` and `profileDir` for experiments. */
export async function startRocketbridge(
  flushPolicy: 'sync' | 'async',
  options: { nodeArgs?: string[]; profileDir?: string | undefined } = {},
): Promise<Target> {
  const nodeArgs = options.nodeArgs ?? [];
  const child = await startBenchChild<{ amqpPort: number }>({
    fromUrl: import.meta.url,
    script: 'amqp-bench-child',
    rocketbridgeServer: true,
    args: ['--flush', flushPolicy],
    nodeArgs: [...cpuProfArgs(options.profileDir), ...nodeArgs],
    readyTimeoutMs: 30_000,
  });
  return {
    name: nodeArgs.length === 0 ? 'rocketbridge' : `rocketbridge ${nodeArgs.join(' ')}`,
    url: `amqp://guest:guest@127.0.0.1:${child.ready.amqpPort}`,
    cpuMs: () => child.cpuMs(),
    stop: () => child.stop(),
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { env, timeout: timeoutMs }, (err, stdout, stderr) =>
      err === null ? resolve(stdout) : reject(new Error(`${command} ${args.join(' ')}: ${err.message} ${stderr}`)),
    );
  });
}

/** CPU ms of the Erlang VMs started with RABBITMQ_NODENAME=`node` (the name is not on the command line). */
function cpuMsOfRabbit(node: string): number | undefined {
  let total: number | undefined;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() !== 'beam.smp') continue;
      if (!readFileSync(`/proc/${entry}/environ`, 'utf8').includes(`RABBITMQ_NODENAME=${node}\u0000`)) continue;
      total = (total ?? 0) + processCpuMs(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return total;
}

/** A throw-away RabbitMQ node; undefined (with a printed note) when it cannot start within `startTimeoutMs`. */
export async function startRabbit(startTimeoutMs = 60_000): Promise<Target | undefined> {
  const base = mkdtempSync(join(tmpdir(), 'rb-bench-rabbit-'));
  // rabbitmq-server drops to the rabbitmq user when started as root: it must be able to write here.
  const mnesia = join(base, 'mnesia');
  const logs = join(base, 'log');
  mkdirSync(mnesia);
  mkdirSync(logs);
  for (const dir of [base, mnesia, logs]) {
    try {
      chmodSync(dir, 0o777);
    } catch {
      // not fatal: a non-root run owns the dirs
    }
  }
  const plugins = join(base, 'enabled_plugins');
  writeFileSync(plugins, '[].\n', { mode: 0o644 });
  const port = await freePort();
  const node = `rbbench${process.pid}-${port}@localhost`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    RABBITMQ_MNESIA_BASE: mnesia,
    RABBITMQ_LOG_BASE: logs,
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(await freePort()),
    RABBITMQ_NODENAME: node,
    RABBITMQ_ENABLED_PLUGINS_FILE: plugins,
    RABBITMQ_PID_FILE: join(base, 'rabbit.pid'),
  };
  let child: ChildProcess;
  try {
    child = spawn('rabbitmq-server', [], { env, stdio: 'ignore' });
  } catch (err) {
    console.log(`RabbitMQ baseline skipped: cannot run rabbitmq-server (${String(err)})`);
    rmSync(base, { recursive: true, force: true });
    return undefined;
  }
  let exited = false;
  child.once('error', () => (exited = true));
  child.once('exit', () => (exited = true));
  const url = `amqp://guest:guest@127.0.0.1:${port}`;
  const stop = async (): Promise<void> => {
    await run('rabbitmqctl', ['-n', node, 'stop'], env, 30_000).catch(() => undefined);
    if (!exited) child.kill('SIGTERM');
    rmSync(base, { recursive: true, force: true });
  };
  const deadlineMs = performance.now() + startTimeoutMs;
  while (performance.now() < deadlineMs && !exited) {
    try {
      const connection = await amqp.connect(url);
      await connection.close();
      const version = await run('rabbitmqctl', ['-n', node, 'version'], env, 10_000).catch(() => '?');
      return { name: `RabbitMQ ${version.trim()}`, url, cpuMs: () => Promise.resolve(cpuMsOfRabbit(node)), stop };
    } catch {
      await sleepMs(500);
    }
  }
  console.log(`RabbitMQ baseline skipped: the node did not accept connections within ${startTimeoutMs / 1000} s`);
  await stop();
  return undefined;
}

/** Declares a durable queue on a short-lived connection. */
export async function declare(url: string, queue: string): Promise<void> {
  const connection = await amqp.connect(url);
  try {
    const channel = await connection.createChannel();
    await channel.assertQueue(queue, { durable: true });
    await channel.close();
  } finally {
    await connection.close();
  }
}

/** Options of {@link publishConfirmedOn}. */
export interface ConfirmedPublishOptions {
  /** Publish at this rate (msgs/s) instead of as fast as the window allows. */
  ratePerSec?: number | undefined;
  /** Filled with each message's publish time (performance.now()), indexed by sequence. */
  sentAtMs?: Float64Array | undefined;
  /** Stop publishing at this performance.now() time. */
  deadlineMs?: number;
  /** Called after each publish with the number published so far. */
  onPublished?: (sent: number) => void;
}

/**
 * Publishes `count` persistent 1 KiB messages (bodyFor) to `queue` through the default exchange on
 * a confirm channel, at most CONFIRM_WINDOW unconfirmed, and waits (up to `drainWaitMs`) for the
 * last confirms. Latency = publish call to its confirm.
 */
export async function publishConfirmedOn(
  channel: amqp.ConfirmChannel,
  queue: string,
  count: number,
  options: ConfirmedPublishOptions = {},
  drainWaitMs = 10_000,
): Promise<{ seconds: number; latenciesMs: number[]; confirmed: number; nacked: number }> {
  const { ratePerSec, sentAtMs, deadlineMs = Infinity, onPublished } = options;
  const latenciesMs: number[] = [];
  let inFlight = 0;
  let confirmed = 0;
  let nacked = 0;
  let wake: (() => void) | undefined;
  const startMs = performance.now();
  for (let sent = 0; sent < count && performance.now() < deadlineMs; sent++) {
    while (inFlight >= CONFIRM_WINDOW) await new Promise<void>((resolve) => (wake = resolve));
    if (ratePerSec !== undefined) {
      const aheadMs = startMs + (sent * 1000) / ratePerSec - performance.now();
      if (aheadMs > 1) await sleepMs(aheadMs);
    }
    inFlight++;
    const publishedMs = performance.now();
    if (sentAtMs !== undefined) sentAtMs[sent] = publishedMs;
    const writable = channel.publish('', queue, bodyFor(sent), { persistent: true }, (err) => {
      inFlight--;
      if (err === null || err === undefined) {
        confirmed++;
        latenciesMs.push(performance.now() - publishedMs);
      } else {
        nacked++;
      }
      const resume = wake;
      wake = undefined;
      resume?.();
    });
    if (!writable) await new Promise<void>((resolve) => channel.once('drain', () => resolve()));
    onPublished?.(sent);
  }
  for (let waits = 0; inFlight > 0 && waits < drainWaitMs / 10; waits++) await sleepMs(10);
  return { seconds: (performance.now() - startMs) / 1000, latenciesMs, confirmed, nacked };
}
