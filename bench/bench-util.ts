/**
 * Shared helpers for benchmarks: latency percentiles, table printing and a progress line.
 * Every benchmark prints its figures next to a baseline measured in the same run.
 */
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

function fixed(value: number, digits: number): string {
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

/** A one-line progress indicator on stderr for long runs. */
export function progress(label: string, done: number, total: number): void {
  if (!process.stderr.isTTY) return;
  process.stderr.write(`\r${label}: ${((100 * done) / total).toFixed(0)}%   `);
  if (done >= total) process.stderr.write('\n');
}
