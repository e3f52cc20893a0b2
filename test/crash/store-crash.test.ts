/**
 * Crash test: a child process appends with the sync flush policy and is SIGKILLed at seeded random
 * moments, several rounds in a row. After each kill the store recovers, and every acknowledged append
 * must be readable byte for byte, in queue order, with no duplicates; the next round appends on.
 * A failing run prints its seed; `SEED=... node --test ...` replays the kill points.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { decodeRecord } from '../../src/engine/common/message-record.js';
import { parseTagExpression } from '../../src/engine/common/tag-expression.js';
import { testMessageStoreConfig } from '../../src/engine/store/api.js';
import { DefaultMessageStore } from '../../src/engine/store/message-store.js';
import { seededRandom, testSeed } from '../helpers/seed.js';
import { makeTempDir } from '../helpers/temp-dir.js';

const extension = fileURLToPath(import.meta.url).endsWith('.ts') ? '.ts' : '.js';
const childPath = fileURLToPath(new URL(`./store-crash-child${extension}`, import.meta.url));
const ROUNDS = 5;
const QUEUES = 4;
const ROUND_TIMEOUT_MS = 10_000;

interface Ack {
  queueId: number;
  queueOffset: number;
  crashId: string;
  digest: string;
}

/** Runs one child until it has acknowledged `killAfterAcks` puts, then SIGKILLs it. */
function runChild(storePath: string, seed: number, round: number, killAfterAcks: number): Promise<Ack[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, childPath, storePath, String(seed), String(round)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const acks: Ack[] = [];
    let pending = '';
    let stderr = '';
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, ROUND_TIMEOUT_MS);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        const [kind, queueId, queueOffset, crashId, digest] = line.split(' ');
        if (kind !== 'ack' || digest === undefined || crashId === undefined) continue;
        acks.push({ queueId: Number(queueId), queueOffset: Number(queueOffset), crashId, digest });
      }
      if (!killed && acks.length >= killAfterAcks) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal !== 'SIGKILL') reject(new Error(`child exited with ${code}: ${stderr}`));
      else resolve(acks);
    });
  });
}

/** Recovers the store and checks every acknowledged append; returns the max queue offsets. */
async function verify(storePath: string, acks: readonly Ack[]): Promise<number[]> {
  const store = new DefaultMessageStore(testMessageStoreConfig(storePath, { consumeQueueUnitsPerFile: 50 }));
  await store.start();
  try {
    const seen = new Map<string, { queueId: number; queueOffset: number; digest: string }>();
    const maxOffsets: number[] = [];
    for (let queueId = 0; queueId < QUEUES; queueId++) {
      let expected = store.getMinOffsetInQueue('CrashTopic', queueId);
      assert.equal(expected, 0);
      const maxOffset = store.getMaxOffsetInQueue('CrashTopic', queueId);
      maxOffsets.push(maxOffset);
      for (let pulls = 0; pulls < 100_000 && expected < maxOffset; pulls++) {
        const got = store.getMessage({
          topic: 'CrashTopic',
          queueId,
          queueOffset: expected,
          maxMessages: 32,
          filter: parseTagExpression('*'),
        });
        assert.equal(got.status, 'FOUND', `queue ${queueId} at ${expected}`);
        for (const [i, record] of got.records.entries()) {
          const message = decodeRecord(record);
          assert.equal(got.queueOffsets[i], expected, 'queue offsets are consecutive');
          assert.equal(message.queueOffset, expected);
          assert.equal(message.queueId, queueId);
          const crashId = message.properties['CRASH_ID'] ?? '';
          assert.equal(seen.has(crashId), false, `message ${crashId} stored twice`);
          seen.set(crashId, {
            queueId,
            queueOffset: expected,
            digest: createHash('sha256').update(message.body).digest('hex'),
          });
          expected++;
        }
      }
      assert.equal(expected, maxOffset);
    }
    for (const ack of acks) {
      const stored = seen.get(ack.crashId);
      assert.ok(stored, `acknowledged message ${ack.crashId} is missing`);
      assert.deepEqual(stored, { queueId: ack.queueId, queueOffset: ack.queueOffset, digest: ack.digest });
    }
    return maxOffsets;
  } finally {
    await store.shutdown();
  }
}

describe('store crash recovery', () => {
  it('keeps every acknowledged sync append across repeated SIGKILLs', async () => {
    const seed = testSeed();
    console.error(`store crash test seed: ${seed}`);
    const random = seededRandom(seed);
    const { dir, cleanup } = await makeTempDir('rb-store-crash-');
    try {
      const acks: Ack[] = [];
      let previousMax = [0, 0, 0, 0];
      for (let round = 1; round <= ROUNDS; round++) {
        const killAfterAcks = 50 + Math.floor(random() * 600);
        const roundAcks = await runChild(dir, seed, round, killAfterAcks);
        assert.ok(roundAcks.length >= killAfterAcks, `round ${round}: only ${roundAcks.length} acks (seed ${seed})`);
        for (const ack of roundAcks) {
          assert.ok(ack.queueOffset >= (previousMax[ack.queueId] ?? 0), 'appends continue after the last round');
        }
        acks.push(...roundAcks);
        previousMax = await verify(dir, acks);
      }
    } finally {
      await cleanup();
    }
  });
});
