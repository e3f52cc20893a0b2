/** Store test helpers: a sample message and a store opened in a temp dir for the length of a test. */
import type { MessageToStore } from '../../src/engine/common/message.js';
import { type MessageStoreConfig, testMessageStoreConfig } from '../../src/engine/store/api.js';
import { DefaultMessageStore, type MessageStoreOptions } from '../../src/engine/store/message-store.js';
import { makeTempDir } from './temp-dir.js';

/** Message `sequence` of TopicA queue 0, tagged TagA, with keys `key-N` and unique key `UNIQ-N`. */
export function testMessage(sequence: number, overrides: Partial<MessageToStore> = {}): MessageToStore {
  return {
    topic: 'TopicA',
    queueId: 0,
    flag: 0,
    body: Buffer.from(`body-${sequence}-`.repeat(10)),
    properties: { TAGS: 'TagA', KEYS: `key-${sequence}`, UNIQ_KEY: `UNIQ-${sequence}` },
    sysFlag: 0,
    bornTimestamp: Date.now(),
    bornHost: { host: '127.0.0.1', port: 40000 },
    reconsumeTimes: 0,
    preparedTransactionOffset: 0,
    ...overrides,
  };
}

/** Runs `body` against a started store with testMessageStoreConfig(overrides); shuts it down and removes it after. */
export async function withStore(
  dirPrefix: string,
  overrides: Partial<MessageStoreConfig>,
  body: (store: DefaultMessageStore, config: MessageStoreConfig) => Promise<void>,
  options: MessageStoreOptions = {},
): Promise<void> {
  const { dir, cleanup } = await makeTempDir(dirPrefix);
  const config = testMessageStoreConfig(dir, overrides);
  const store = new DefaultMessageStore(config, options);
  try {
    await store.start();
    await body(store, config);
  } finally {
    await store.shutdown();
    await cleanup();
  }
}
