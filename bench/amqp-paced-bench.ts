/**
 * The fixed-rate latency scenario of the AMQP benchmark (issue 6: "p99 latency no worse at a fixed
 * 2,000 msgs/s"), alone and repeated, so a latency fix can be checked in a minute rather than a full
 * amqp-bench run. Same shape as amqp-bench.ts's paced row: 1 KiB persistent messages to a durable
 * queue, a confirm channel publishing at a fixed rate (at most 1,000 unconfirmed) while a consumer
 * with manual acks and prefetch 256 runs on a second connection. Latency = publish call to delivery
 * (the figure) and, per row below it, publish call to confirm.
 *
 * The servers are started once; rounds alternate RabbitMQ and rocketbridge (a noisy machine then
 * hurts both sides alike), each round on a fresh queue, after an unpaced warm-up through each.
 *
 * Options: --seconds S per round (default 5), --rate R msgs/s (default 2000), --rounds N per server
 * (default 2), --warmup N (unpaced messages through each server first, default 20000: amqp-bench.ts
 * runs its paced row after ~150,000 others), --paced-warmup-seconds S (then S seconds at the round's
 * rate, unmeasured, default 2: V8 optimizes the one-message-at-a-time paths only once they are hot,
 * and right after an unpaced burst our first second at 2,000 msgs/s held a third to two thirds of a
 * round's deliveries over 2.5 ms while V8 logged ~250 optimizations), --pause-ms MS (idle time between warm-up and rounds),
 * --no-rabbit, --flush sync|async (our broker's store flush, default async), --server-node-args
 * 'A|B' (one rocketbridge server per `|`-separated set of node options, e.g. `|--max-semi-space-size=32`
 * for the default next to a GC setting), --cpu-prof DIR (V8 CPU profiles of our servers, written
 * there when they stop).
 */
import './bench-env.js';
import amqp from 'amqplib';
import {
  BODY_BYTES,
  CONFIRM_WINDOW,
  declare,
  publishConfirmedOn,
  startRabbit,
  startRocketbridge,
  type Target,
} from './amqp-bench-servers.js';
import { argument, type Measurement, printTable, sleepMs, stringArgument, summarize } from './bench-util.js';

const seconds = argument('seconds', 5);
const rate = argument('rate', 2000);
const rounds = Math.floor(argument('rounds', 2));
const withRabbit = !process.argv.includes('--no-rabbit');
const flushPolicy = stringArgument('flush') === 'sync' ? 'sync' : 'async';
const profileDir = stringArgument('cpu-prof');
/** One server per `|`-separated set of node options (e.g. GC flags), compared in the same rounds. */
const serverVariants = (stringArgument('server-node-args') ?? '').split('|').map((variant) =>
  variant
    .trim()
    .split(/\s+/)
    .filter((arg) => arg !== ''),
);

const PREFETCH = 256;
const warmupMessages = Math.floor(argument('warmup', 20_000));
const pacedWarmupMessages = Math.floor(argument('paced-warmup-seconds', 2) * rate);

/** One round: a consumer, then `count` confirmed publishes at `ratePerSec`; both latencies. */
async function pacedRound(
  url: string,
  queue: string,
  count: number,
  ratePerSec: number | undefined,
): Promise<{ deliveryMs: number[]; confirmMs: number[]; seconds: number; lost: number; duplicates: number }> {
  await declare(url, queue);
  const sentAtMs = new Float64Array(count);
  const seen = new Uint8Array(count);
  const deliveryMs: number[] = [];
  let unique = 0;
  let duplicates = 0;
  const consumerConnection = await amqp.connect(url);
  const publisherConnection = await amqp.connect(url);
  try {
    const consumer = await consumerConnection.createChannel();
    await consumer.prefetch(PREFETCH);
    await consumer.consume(
      queue,
      (message) => {
        if (message === null) return;
        const nowMs = performance.now();
        consumer.ack(message);
        const sequence = message.content.readUInt32BE(0);
        if (sequence >= count) return;
        if (seen[sequence] !== 0) {
          duplicates++;
          return;
        }
        seen[sequence] = 1;
        unique++;
        deliveryMs.push(nowMs - (sentAtMs[sequence] ?? nowMs));
      },
      { noAck: false },
    );
    const publisher = await publisherConnection.createConfirmChannel();
    const startMs = performance.now();
    const published = await publishConfirmedOn(publisher, queue, count, { ratePerSec, sentAtMs });
    for (let waits = 0; unique < count && waits < 1000; waits++) await sleepMs(10);
    const elapsed = (performance.now() - startMs) / 1000;
    await publisher.close();
    await consumer.close();
    return { deliveryMs, confirmMs: published.latenciesMs, seconds: elapsed, lost: count - unique, duplicates };
  } finally {
    await publisherConnection.close().catch(() => undefined);
    await consumerConnection.close().catch(() => undefined);
  }
}

async function main(): Promise<void> {
  const count = Math.floor(rate * seconds);
  console.log(
    `AMQP paced latency: ${count} persistent 1 KiB messages at ${rate} msgs/s per round, ${rounds} round(s) per server, ` +
      `confirm window ${CONFIRM_WINDOW}, prefetch ${PREFETCH}, our flush ${flushPolicy}`,
  );
  const targets: Target[] = [];
  try {
    if (withRabbit) {
      const rabbit = await startRabbit();
      if (rabbit !== undefined) targets.push(rabbit);
    }
    for (const nodeArgs of serverVariants) targets.push(await startRocketbridge(flushPolicy, { nodeArgs, profileDir }));
    for (const target of targets) {
      const warm = `paced-warm-${process.pid}`;
      await pacedRound(target.url, warm, warmupMessages, undefined);
      if (pacedWarmupMessages > 0) await pacedRound(target.url, warm, pacedWarmupMessages, rate);
    }
    await sleepMs(argument('pause-ms', 1));
    const rows: { measurement: Measurement; baseline?: Measurement }[] = [];
    const notes: string[] = [];
    for (let round = 0; round < rounds; round++) {
      let baseline: Measurement | undefined;
      for (const target of targets) {
        const cpuBefore = await target.cpuMs();
        const result = await pacedRound(target.url, `paced-${process.pid}-${round}`, count, rate);
        const cpuAfter = await target.cpuMs();
        const delivery: Measurement = {
          scenario: `${target.name} #${round + 1}: publish->delivery`,
          messages: count - result.lost,
          bytes: (count - result.lost) * BODY_BYTES,
          seconds: result.seconds,
          latenciesMs: result.deliveryMs,
        };
        const confirm: Measurement = {
          scenario: `${target.name} #${round + 1}:   publish->confirm`,
          messages: result.confirmMs.length,
          bytes: result.confirmMs.length * BODY_BYTES,
          seconds: result.seconds,
          latenciesMs: result.confirmMs,
        };
        rows.push(baseline === undefined ? { measurement: delivery } : { measurement: delivery, baseline });
        rows.push({ measurement: confirm });
        baseline ??= delivery;
        const cpu =
          cpuBefore === undefined || cpuAfter === undefined
            ? ''
            : `; server ${((100 * (cpuAfter - cpuBefore)) / (result.seconds * 1000)).toFixed(0)}% of a core, ` +
              `${(((cpuAfter - cpuBefore) * 1000) / count).toFixed(0)} µs/msg`;
        notes.push(`${delivery.scenario}: lost ${result.lost}, duplicates ${result.duplicates}${cpu}`);
        if (target.name !== 'RabbitMQ' && baseline !== delivery) {
          const ours = summarize(delivery).p99Ms;
          const theirs = summarize(baseline).p99Ms;
          notes.push(
            `  p99 ${ours.toFixed(1)} ms vs RabbitMQ ${theirs.toFixed(1)} ms: ${ours <= theirs ? 'no worse' : 'worse'}`,
          );
        }
      }
    }
    printTable(`AMQP at a fixed ${rate} msgs/s (ratio = throughput vs RabbitMQ in the same round)`, rows);
    for (const note of notes) console.log(`  ${note}`);
  } finally {
    for (const target of targets) await target.stop().catch(() => undefined);
  }
}

await main();
