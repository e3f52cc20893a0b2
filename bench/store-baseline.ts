/**
 * The storage engine's own append rate, measured in the benchmark's process as the baseline that
 * bounds any front end on it (broker-bench.ts, amqp-bench.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultMessageStoreConfig } from '../src/engine/store/api.js';
import { DefaultMessageStore } from '../src/engine/store/message-store.js';
import { ownCpuMs } from './bench-process.js';
import { closedLoop, type LoopResult } from './bench-util.js';

/** Options of {@link storeAppendRun}. */
export interface StoreAppendOptions {
  /** Prefix of the temporary store directory (removed afterwards). */
  dirPrefix: string;
  topic: string;
  /** The TAGS property; UNIQ_KEY follows, then `extraProperties` (what the front end's producer sends). */
  tags: string;
  extraProperties?: Record<string, string>;
  body: (sequence: number) => Buffer;
  count: number;
  inFlight: number;
  capMs: number;
  /** Puts before the measured ones, not counted. */
  warmupMessages?: number;
}

/**
 * The storage engine's own append rate, the baseline that bounds any front end on it: a fresh
 * DefaultMessageStore (async flush, no retention checks) in a temp dir, `count` putMessage calls
 * with `inFlight` in flight. `clientCpuMs` is this process's CPU over the measured puts.
 */
export async function storeAppendRun(options: StoreAppendOptions): Promise<LoopResult & { clientCpuMs: number }> {
  const dir = mkdtempSync(join(tmpdir(), options.dirPrefix));
  const store = new DefaultMessageStore({
    ...defaultMessageStoreConfig,
    storePath: dir,
    flushPolicy: 'async',
    retentionCheckIntervalMs: 0,
  });
  await store.start();
  try {
    const bornHost = { host: '127.0.0.1', port: 50000 };
    const put = async (sequence: number): Promise<number> => {
      const result = await store.putMessage({
        topic: options.topic,
        queueId: sequence % 4,
        flag: 0,
        body: options.body(sequence),
        properties: {
          TAGS: options.tags,
          UNIQ_KEY: `7F000001${sequence.toString(16).padStart(24, '0')}`,
          ...options.extraProperties,
        },
        sysFlag: 0,
        bornTimestamp: Date.now(),
        bornHost,
        reconsumeTimes: 0,
        preparedTransactionOffset: 0,
      });
      if (result.status !== 'PUT_OK') throw new Error(`put failed: ${result.status}`);
      return 1;
    };
    if (options.warmupMessages !== undefined) {
      await closedLoop('baseline warm-up', options.warmupMessages, options.inFlight, put, options.capMs);
    }
    const cpu0 = ownCpuMs();
    const run = await closedLoop('store baseline', options.count, options.inFlight, put, options.capMs);
    return { ...run, clientCpuMs: ownCpuMs() - cpu0 };
  } finally {
    await store.shutdown();
    rmSync(dir, { recursive: true, force: true });
  }
}
