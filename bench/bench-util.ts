/**
 * Shared helpers for benchmarks: command-line options, latency percentiles, table printing, a
 * progress line and the closed loop that keeps a fixed number of operations in flight. Every
 * benchmark prints its figures next to a baseline measured in the same run.
 */
/** The value after `--name` on the command line, or undefined when the option is absent. */
export function stringArgument(name: string): string | undefined {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? process.argv[at + 1] : undefined;
}

/** The number after `--name`, or `fallback`; unchecked (0 may mean "skip", as in --soak-gib 0). */
export function numberArgument(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
}

/** The positive number after `--name`, or `fallback`; throws on anything else. */
export function argument(name: string, fallback: number): number {
  const value = numberArgument(name, fallback);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number`);
  return value;
}

export function sleepMs(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** What {@link closedLoop} carried, how long it took and how each operation went. */
export interface LoopResult {
  /** Sum of what the operations returned (messages carried). */
  messages: number;
  seconds: number;
  /** Per successful operation, from its call to its settlement. */
  latenciesMs: number[];
  failures: number;
}

/**
 * Runs `workers` loops that each call `operation` with the next index until `count` operations have
 * been started or `capMs` has passed, so at most `workers` are in flight. `operation` returns how
 * many messages it carried; failures are counted and the first is logged.
 */
export async function closedLoop(
  label: string,
  count: number,
  workers: number,
  operation: (index: number) => Promise<number>,
  capMs = Number.POSITIVE_INFINITY,
): Promise<LoopResult> {
  const latenciesMs: number[] = [];
  let next = 0;
  let messages = 0;
  let failures = 0;
  let firstError: unknown;
  const startMs = performance.now();
  const deadlineMs = startMs + capMs;
  const progressEvery = Math.max(1, Math.floor(count / 50));
  async function worker(): Promise<void> {
    while (next < count && performance.now() < deadlineMs) {
      const index = next++;
      const opStartMs = performance.now();
      try {
        // Not `messages += await ...`: that would read `messages` before the await and lose updates.
        const carried = await operation(index);
        messages += carried;
        latenciesMs.push(performance.now() - opStartMs);
      } catch (err) {
        failures++;
        firstError ??= err;
      }
      if (index % progressEvery === 0) progress(label, index, count);
    }
  }
  await Promise.all(Array.from({ length: workers }, worker));
  progress(label, count, count);
  if (firstError !== undefined) console.error(`${label}: ${failures} failed operations; first:`, firstError);
  return { messages, seconds: (performance.now() - startMs) / 1000, latenciesMs, failures };
}

export interface Measurement {
  scenario: string;
  messages: number;
  bytes: number;
  seconds: number;
  latenciesMs?: number[];
}

export function percentile(sortedMs: number[], fraction: number): number {
  if (sortedMs.length === 0) return Number.NaN;
  const index = Math.min(sortedMs.length - 1, Math.floor(fraction * sortedMs.length));
  return sortedMs[index] ?? Number.NaN;
}

export function summarize(measurement: Measurement): {
  msgsPerSec: number;
  mbPerSec: number;
  p50Ms: number;
  p99Ms: number;
} {
  const sorted = [...(measurement.latenciesMs ?? [])].sort((a, b) => a - b);
  return {
    msgsPerSec: measurement.messages / measurement.seconds,
    mbPerSec: measurement.bytes / measurement.seconds / (1024 * 1024),
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
  };
}

/** `value` with `digits` decimals, or `-` when it is not a finite number (a rate of an empty run). */
export function fixed(value: number, digits: number): string {
  return Number.isFinite(value) ? value.toFixed(digits) : '-';
}

/** Prints rows of `scenario | msgs/s | MB/s | p50 | p99 | ratio` where ratio compares MB/s to the baseline row. */
export function printTable(title: string, rows: { measurement: Measurement; baseline?: Measurement }[]): void {
  console.log(`\n${title}`);
  console.log(
    [
      'scenario'.padEnd(44),
      'msgs/s'.padStart(11),
      'MB/s'.padStart(9),
      'p50 ms'.padStart(8),
      'p99 ms'.padStart(8),
      'vs baseline'.padStart(12),
    ].join(' '),
  );
  for (const { measurement, baseline } of rows) {
    const s = summarize(measurement);
    const ratio = baseline === undefined ? '' : `${fixed((100 * s.mbPerSec) / summarize(baseline).mbPerSec, 1)}%`;
    console.log(
      [
        measurement.scenario.padEnd(44),
        fixed(s.msgsPerSec, 0).padStart(11),
        fixed(s.mbPerSec, 1).padStart(9),
        fixed(s.p50Ms, 3).padStart(8),
        fixed(s.p99Ms, 3).padStart(8),
        ratio.padStart(12),
      ].join(' '),
    );
  }
}

/**
 * Opens `total` connections `batchSize` at a time with `open(index)`, with a progress line, and
 * times it. Connecting gets at least a minute whatever --seconds (`capSeconds`) says. `opened` has
 * one slot per attempt, undefined where it failed.
 */
export async function openInBatches<T>(
  label: string,
  total: number,
  batchSize: number,
  capSeconds: number,
  open: (index: number) => Promise<T>,
): Promise<{ opened: (T | undefined)[]; failures: number; firstFailure?: string; seconds: number }> {
  const opened: (T | undefined)[] = [];
  let failures = 0;
  let firstFailure: string | undefined;
  const startMs = performance.now();
  const deadlineMs = startMs + Math.max(capSeconds, 60) * 1000;
  for (let first = 0; first < total && performance.now() < deadlineMs; first += batchSize) {
    const batch = Math.min(batchSize, total - first);
    const outcomes = await Promise.allSettled(Array.from({ length: batch }, (_, i) => open(first + i)));
    for (const outcome of outcomes) {
      if (outcome.status === 'fulfilled') {
        opened.push(outcome.value);
      } else {
        opened.push(undefined);
        failures++;
        firstFailure ??= (outcome.reason as Error).message;
      }
    }
    progress(label, first + batch, total);
  }
  const result = { opened, failures, seconds: (performance.now() - startMs) / 1000 };
  return firstFailure === undefined ? result : { ...result, firstFailure };
}

/** What a benchmark holding many connections measured of a server's memory. */
export interface HeldConnections {
  server: string;
  held: number;
  failures: number;
  firstFailure?: string;
  connectSeconds: number;
  rssBeforeKiB: number;
  rssWithKiB: number;
}

/** Server RSS growth per held connection, in KiB. */
export function kibPerConnection(result: HeldConnections): number {
  return (result.rssWithKiB - result.rssBeforeKiB) / Math.max(result.held, 1);
}

/** Widths and decimals of the held-connections columns, which each benchmark keeps as it printed them. */
export interface HeldConnectionsLayout {
  serverWidth: number;
  heldWidth: number;
  connectDigits: number;
  kibDigits: number;
  /** Title of the ratio column (KiB/conn vs the baseline's), e.g. `vs aedes`. */
  ratioTitle: string;
  ratioDigits: number;
}

/** Header cells `server | held | failed | connect s | RSS before MiB | RSS with MiB | KiB/conn | vs ...`. */
export function heldConnectionsHeader(layout: HeldConnectionsLayout): string[] {
  return [
    'server'.padEnd(layout.serverWidth),
    'held'.padStart(layout.heldWidth),
    'failed'.padStart(7),
    'connect s'.padStart(10),
    'RSS before MiB'.padStart(15),
    'RSS with MiB'.padStart(13),
    'KiB/conn'.padStart(9),
    layout.ratioTitle.padStart(layout.ratioTitle.length + 1),
  ];
}

/** The cells under {@link heldConnectionsHeader}; the ratio is empty without a baseline. */
export function heldConnectionsCells(
  result: HeldConnections,
  baseline: HeldConnections | undefined,
  layout: HeldConnectionsLayout,
): string[] {
  const ratio =
    baseline === undefined
      ? ''
      : `${fixed((100 * kibPerConnection(result)) / kibPerConnection(baseline), layout.ratioDigits)}%`;
  return [
    result.server.padEnd(layout.serverWidth),
    String(result.held).padStart(layout.heldWidth),
    String(result.failures).padStart(7),
    fixed(result.connectSeconds, layout.connectDigits).padStart(10),
    fixed(result.rssBeforeKiB / 1024, 1).padStart(15),
    fixed(result.rssWithKiB / 1024, 1).padStart(13),
    fixed(kibPerConnection(result), layout.kibDigits).padStart(9),
    ratio.padStart(layout.ratioTitle.length + 1),
  ];
}

/** A one-line progress indicator on stderr for long runs. */
export function progress(label: string, done: number, total: number): void {
  if (!process.stderr.isTTY) return;
  process.stderr.write(`\r${label}: ${((100 * done) / total).toFixed(0)}%   `);
  if (done >= total) process.stderr.write('\n');
}
