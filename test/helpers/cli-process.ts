/**
 * Runs `rocketbridge <command>` as a child process (the same runtime and loader as the test), waits
 * for a line of its JSON log, and kills it with the signal a test asks for (SIGKILL for crashes).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { SERVER_NODE_FLAGS } from '../../src/cli/server-node-flags.js';
import { eventually } from './eventually.js';

const here = fileURLToPath(import.meta.url);
const extension = here.endsWith('.ts') ? 'ts' : 'js';
const mainPath = fileURLToPath(new URL(`../../src/cli/main.${extension}`, import.meta.url));

export interface CliProcess {
  readonly child: ChildProcess;
  /** Everything it printed so far. */
  output(): string;
  /** Sends `signal` and resolves once the process has exited. */
  stop(signal: NodeJS.Signals): Promise<void>;
}

/** Starts the CLI with `args`; resolves once its output matches `ready` (rejects with the output if not). */
export async function startCli(args: string[], ready: RegExp, timeoutMs = 20_000): Promise<CliProcess> {
  // With the node options the `rocketbridge` command runs with.
  const child = spawn(process.execPath, [...process.execArgv, ...SERVER_NODE_FLAGS, mainPath, ...args], {
    env: { ...process.env, RB_LOG_LEVEL: 'info', RB_LOG_FORMAT: 'json' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const process_: CliProcess = {
    child,
    output: () => output,
    stop: async (signal) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
  await eventually(
    () => {
      if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}`);
      return ready.test(output);
    },
    { timeoutMs, intervalMs: 50 },
  ).catch(async (err: unknown) => {
    await process_.stop('SIGKILL');
    throw new Error(`rocketbridge ${args.join(' ')} did not become ready: ${output.slice(-4000)}`, { cause: err });
  });
  return process_;
}
