/**
 * The server side of the broker benchmark, run as a child process so that the NameServer and broker
 * get a core of their own while the benchmark process drives the clients on the other. Owns only
 * the servers' lifetime and a line protocol on stdin/stdout:
 *   started      -> `READY {"namesrv": "...", "broker": "..."}`
 *   `cpu`        -> `CPU {"userMs": n, "systemMs": n}` (this process's CPU time so far)
 *   `stop` / EOF -> shuts down, removes the data dir, prints `STOPPED` and exits.
 */
import './bench-env.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { startBenchServers } from './broker-bench-cluster.js';

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'rb-bench-broker-'));
  const servers = await startBenchServers(dataDir);
  process.stdout.write(`READY ${JSON.stringify({ namesrv: servers.namesrv, broker: servers.broker })}\n`);
  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    try {
      await servers.stop();
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
    // stdout is a pipe, written synchronously on Linux; a --cpu-prof child still writes its profile.
    process.stdout.write('STOPPED\n');
    process.exit(0);
  };
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const command = line.trim();
    if (command === 'cpu') {
      const usage = process.cpuUsage();
      process.stdout.write(`CPU ${JSON.stringify({ userMs: usage.user / 1000, systemMs: usage.system / 1000 })}\n`);
    } else if (command === 'stop') {
      void stop();
    }
  });
  lines.on('close', () => void stop());
}

await main();
