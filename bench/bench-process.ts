/**
 * Process plumbing shared by the benchmarks that run their servers in a child process: spawning a
 * sibling script, the line protocol between parent and child (stdout lines `READY {...}`, `CPU
 * {...}`, `GC`, `STOPPED`; stdin commands `cpu`, `gc`, `stop`), and reading a process's CPU time and
 * memory from /proc. Servers get a core of their own this way on a 2-core machine, and every
 * benchmark speaks the same protocol so a child can be driven by any of them.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { SERVER_NODE_FLAGS } from '../src/cli/server-node-flags.js';

/** Lines of the protocol a child prints on its own schedule; kept until someone waits for them. */
const PROTOCOL_LINE = /^(READY|CPU|GC|STOPPED)/;
/** Linux's USER_HZ: the unit of utime/stime in /proc/<pid>/stat. */
const CLOCK_TICKS_PER_SEC = 100;

/** Waits for the next line from a child starting with `prefix`, rejecting after `timeoutMs` or on exit. */
export type NextLine = (prefix: string, timeoutMs: number) => Promise<string>;

/**
 * Reads the child's stdout for its whole life (so it never blocks on a full pipe): a line starting
 * with a prefix someone waits for resolves that waiter; protocol lines nobody waits for yet are kept
 * for a later waiter; anything else is echoed with a `[server]` tag.
 */
export function childLines(child: ChildProcess): NextLine {
  const waiters: { prefix: string; resolve: (line: string) => void }[] = [];
  const buffered: string[] = [];
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  lines.on('line', (line) => {
    const at = waiters.findIndex((waiter) => line.startsWith(waiter.prefix));
    if (at >= 0) waiters.splice(at, 1)[0]?.resolve(line);
    else if (PROTOCOL_LINE.test(line)) buffered.push(line);
    else console.log(`[server] ${line}`);
  });
  return (prefix, timeoutMs) => {
    const earlier = buffered.findIndex((line) => line.startsWith(prefix));
    if (earlier >= 0) return Promise.resolve(buffered.splice(earlier, 1)[0] as string);
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server child: no ${prefix} within ${timeoutMs} ms`)), timeoutMs);
      const onExit = (): void => reject(new Error(`server child exited before ${prefix}`));
      child.once('exit', onExit);
      waiters.push({
        prefix,
        resolve: (line) => {
          clearTimeout(timer);
          child.off('exit', onExit);
          resolve(line);
        },
      });
    });
  };
}

/** `--cpu-prof` node options writing a V8 CPU profile into `dir`, or none when `dir` is undefined. */
export function cpuProfArgs(dir: string | undefined): string[] {
  return dir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', dir];
}

/** Options of {@link startBenchChild}. */
export interface BenchChildOptions {
  /** `import.meta.url` of the calling benchmark: the child script lives next to it. */
  fromUrl: string;
  /** The child script's name without extension, e.g. `broker-bench-child`. */
  script: string;
  /** Node options added after this process's own `process.execArgv` (e.g. `--expose-gc`, {@link cpuProfArgs}). */
  nodeArgs?: string[];
  /**
   * True for a rocketbridge server: it runs with the node options `rocketbridge` itself runs with
   * (SERVER_NODE_FLAGS), before `nodeArgs`. False for a baseline such as standalone aedes.
   */
  rocketbridgeServer: boolean;
  /** Arguments after the script path. */
  args?: string[];
  /** How long the child may take to print `READY`. */
  readyTimeoutMs: number;
}

/** A running benchmark child that has printed `READY`. */
export interface BenchChild<Ready> {
  /** The JSON that followed `READY `. */
  ready: Ready;
  pid: number;
  /** Its CPU time (user + system) so far, as the child reports it (`cpu` -> `CPU {...}`). */
  cpuMs(): Promise<number>;
  /** A full GC in the child (needs `--expose-gc` in {@link BenchChildOptions.nodeArgs}). */
  gc(): Promise<void>;
  /**
   * Like {@link gc}, resolving with the JSON the child printed after `GC ` (see the `gcReport`
   * argument of {@link serveBenchChild}), or undefined when it printed a bare `GC`.
   */
  gcReport(): Promise<unknown>;
  /** Asks the child to stop and waits for it to exit (killed if it does not say `STOPPED` in 30 s). */
  stop(): Promise<void>;
}

/**
 * Spawns the sibling script with the current file's extension (.ts under tsx, .js once compiled to
 * dist/) under the same node and node options, and waits for its `READY` line.
 */
export async function startBenchChild<Ready>(options: BenchChildOptions): Promise<BenchChild<Ready>> {
  const childPath = fileURLToPath(
    new URL(`./${options.script}${extname(fileURLToPath(options.fromUrl))}`, options.fromUrl),
  );
  const child = spawn(
    process.execPath,
    [
      ...process.execArgv,
      ...(options.rocketbridgeServer ? SERVER_NODE_FLAGS : []),
      ...(options.nodeArgs ?? []),
      childPath,
      ...(options.args ?? []),
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const nextLine = childLines(child);
  const ready = JSON.parse((await nextLine('READY ', options.readyTimeoutMs)).slice('READY '.length)) as Ready;
  return {
    ready,
    pid: child.pid as number,
    async cpuMs() {
      child.stdin?.write('cpu\n');
      const usage = JSON.parse((await nextLine('CPU ', 10_000)).slice('CPU '.length)) as {
        userMs: number;
        systemMs: number;
      };
      return usage.userMs + usage.systemMs;
    },
    async gc() {
      child.stdin?.write('gc\n');
      await nextLine('GC', 10_000);
    },
    async gcReport() {
      child.stdin?.write('gc\n');
      const report = (await nextLine('GC', 10_000)).slice('GC'.length).trim();
      return report === '' ? undefined : (JSON.parse(report) as unknown);
    },
    async stop() {
      const stopped = nextLine('STOPPED', 30_000).catch(() => child.kill('SIGKILL'));
      child.stdin?.write('stop\n');
      await stopped;
      if (child.exitCode === null) await new Promise((resolve) => child.once('exit', resolve));
    },
  };
}

/**
 * The child side of the protocol: prints `READY <ready as JSON>`, then answers `cpu` with this
 * process's CPU time (`CPU {"userMs": n, "systemMs": n}`) and `gc` with a full collection (when
 * node runs with --expose-gc) and `GC` (followed by ` <gcReport() as JSON>` when `gcReport` is
 * given, e.g. the heap in use after the collection); on `stop` or end of stdin runs `stop` once,
 * prints `STOPPED` and exits.
 */
export function serveBenchChild(ready: unknown, stop: () => Promise<void>, gcReport?: () => unknown): void {
  process.stdout.write(`READY ${JSON.stringify(ready)}\n`);
  let stopping = false;
  const stopOnce = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    await stop();
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
    } else if (command === 'gc') {
      (globalThis as { gc?: () => void }).gc?.();
      process.stdout.write(gcReport === undefined ? 'GC\n' : `GC ${JSON.stringify(gcReport())}\n`);
    } else if (command === 'stop') {
      void stopOnce();
    }
  });
  lines.on('close', () => void stopOnce());
}

/** CPU time (user + system) this process has used so far, in ms. */
export function ownCpuMs(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}

/** CPU time (user + system) a process has used so far, in ms, from /proc/<pid>/stat. */
export function processCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After the command name: state is field 3, utime field 14, stime field 15 (1-based, man proc).
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1000) / CLOCK_TICKS_PER_SEC;
}

/** A process's resident set size in KiB (VmRSS from /proc/<pid>/status; NaN if absent). */
export function processRssKiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+) kB/m.exec(status);
  return match === null ? Number.NaN : Number(match[1]);
}

/** How many file descriptors a process has open (entries of /proc/<pid>/fd). */
export function openFdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}
