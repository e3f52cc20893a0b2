/**
 * Child process of store-crash.test.ts: opens the store with the sync flush policy and appends until
 * it is killed, printing one line per acknowledged put:
 *
 *   ack <queueId> <queueOffset> <crashId> <sha256 of the body>
 *
 * Arguments: storePath seed round.
 */
import { createHash } from 'node:crypto';
import type { MessageToStore } from '../../src/engine/common/message.js';
import { PutStatus, testMessageStoreConfig } from '../../src/engine/store/api.js';
import { DefaultMessageStore } from '../../src/engine/store/message-store.js';
import { seededRandom } from '../helpers/seed.js';

const [storePath = '', seedText = '0', roundText = '0'] = process.argv.slice(2);
const round = Number(roundText);
const random = seededRandom(Number(seedText) * 31 + round);
const QUEUES = 4;
const APPENDERS = 8;

function nextMessage(sequence: number): MessageToStore {
  const size = 1 + Math.floor(random() * 3000);
  const body = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) body[i] = Math.floor(random() * 256);
  const crashId = `${round}-${sequence}`;
  return {
    topic: 'CrashTopic',
    queueId: sequence % QUEUES,
    flag: 0,
    body,
    properties: { TAGS: `tag${sequence % 3}`, KEYS: `k-${crashId}`, UNIQ_KEY: crashId, CRASH_ID: crashId },
    sysFlag: 0,
    bornTimestamp: Date.now(),
    bornHost: { host: '127.0.0.1', port: 40000 },
    reconsumeTimes: 0,
    preparedTransactionOffset: 0,
  };
}

const store = new DefaultMessageStore(
  testMessageStoreConfig(storePath, { flushPolicy: 'sync', consumeQueueUnitsPerFile: 50, flushIntervalMs: 20 }),
);
await store.start();
process.stdout.write('ready\n');
let sequence = 0;
async function appender(): Promise<void> {
  // Runs until the parent kills the process (bounded by a generous count all the same).
  while (sequence < 1_000_000) {
    const message = nextMessage(sequence++);
    const result = await store.putMessage(message);
    if (result.status !== PutStatus.Ok) {
      process.stderr.write(`put failed: ${result.status} ${result.error?.message ?? ''}\n`);
      process.exit(2);
    }
    const digest = createHash('sha256').update(message.body).digest('hex');
    process.stdout.write(`ack ${message.queueId} ${result.queueOffset} ${message.properties['CRASH_ID']} ${digest}\n`);
  }
}
await Promise.all(Array.from({ length: APPENDERS }, appender));
