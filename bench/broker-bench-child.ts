/**
 * The server side of the broker benchmark, run as a child process so that the NameServer and broker
 * get a core of their own while the benchmark process drives the clients on the other. Owns only
 * the servers' lifetime and a line protocol on stdin/stdout:
 *   started      -> `READY {"namesrv": "...", "broker": "..."}`
 *   `cpu`        -> `CPU {"userMs": n, "systemMs": n}` (this process's CPU time so far)
 *   `gc`         -> a full collection when run with --expose-gc, then `GC`
 *   `stop` / EOF -> shuts down, removes the data dir, prints `STOPPED` and exits.
 */
import './bench-env.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveBenchChild } from './bench-process.js';
import { startBenchServers } from './broker-bench-cluster.js';

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'rb-bench-broker-'));
  const servers = await startBenchServers(dataDir);
  serveBenchChild({ namesrv: servers.namesrv, broker: servers.broker }, async () => {
    try {
      await servers.stop();
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
}

await main();
