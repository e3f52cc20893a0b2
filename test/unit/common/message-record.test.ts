import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MessageToStore } from '../../../src/engine/common/message.js';
import {
  checkRecord,
  createOffsetMessageId,
  decodeRecord,
  encodeRecord,
  parseOffsetMessageId,
  prepareRecord,
  writeBlankRecord,
} from '../../../src/engine/common/message-record.js';
import { decodeProperties, encodeProperties } from '../../../src/engine/common/properties.js';
import { topicNameProblem } from '../../../src/engine/common/topic.js';
import { isRbError } from '../../../src/engine/common/errors.js';
import { seededRandom, testSeed } from '../../helpers/seed.js';

function sampleMessage(overrides: Partial<MessageToStore> = {}): MessageToStore {
  return {
    topic: 'orders',
    queueId: 3,
    flag: 7,
    body: Buffer.from('hello, record'),
    properties: { TAGS: 'TagA', KEYS: 'k1 k2', UNIQ_KEY: 'ABC', custom: 'v\u00e9' },
    sysFlag: 0,
    bornTimestamp: 1_700_000_000_123,
    bornHost: { host: '10.1.2.3', port: 55000 },
    reconsumeTimes: 2,
    preparedTransactionOffset: 0,
    ...overrides,
  };
}
const placement = {
  queueOffset: 42,
  commitLogOffset: 2 ** 40 + 5,
  storeTimestamp: 1_700_000_000_456,
  storeHost: { host: '127.0.0.1', port: 10911 },
};

describe('properties codec', () => {
  it('round-trips names and values', () => {
    const properties = { a: '1', KEYS: 'x y', empty: '' };
    assert.deepEqual(decodeProperties(encodeProperties(properties)), properties);
  });
  it('ignores pairs without a separator', () => {
    assert.deepEqual(decodeProperties('garbage\u0002a\u00011\u0002'), { a: '1' });
  });
});

describe('message record codec', () => {
  it('round-trips every field', () => {
    const message = sampleMessage();
    const bytes = encodeRecord(prepareRecord(message, false), placement);
    const decoded = decodeRecord(bytes);
    assert.equal(decoded.storeSize, bytes.length);
    assert.equal(decoded.topic, message.topic);
    assert.equal(decoded.queueId, 3);
    assert.equal(decoded.flag, 7);
    assert.equal(decoded.queueOffset, 42);
    assert.equal(decoded.commitLogOffset, placement.commitLogOffset);
    assert.equal(decoded.bornTimestamp, message.bornTimestamp);
    assert.equal(decoded.storeTimestamp, placement.storeTimestamp);
    assert.deepEqual(decoded.bornHost, message.bornHost);
    assert.deepEqual(decoded.storeHost, placement.storeHost);
    assert.equal(decoded.reconsumeTimes, 2);
    assert.deepEqual(decoded.body, message.body);
    assert.equal(decoded.properties['custom'], 'v\u00e9');
    assert.equal(decoded.properties['TAGS'], 'TagA');
    assert.match(decoded.properties['__CRC32#'] ?? '', /^\d{10}$/);
    assert.equal(decoded.msgId, createOffsetMessageId(placement.storeHost, placement.commitLogOffset));
  });
  it('records IPv6 hosts with their sysFlag bits', () => {
    const bytes = encodeRecord(prepareRecord(sampleMessage({ bornHost: { host: '::1', port: 1 } }), true), {
      ...placement,
      storeHost: { host: 'fe80::1', port: 2 },
    });
    const decoded = decodeRecord(bytes);
    assert.equal(decoded.bornHost.host, '0:0:0:0:0:0:0:1');
    assert.equal(decoded.storeHost.host, 'fe80:0:0:0:0:0:0:1');
    assert.equal(decoded.sysFlag & 0x30, 0x30);
  });
  it('parses the offset message id back to host and offset', () => {
    const id = createOffsetMessageId({ host: '127.0.0.1', port: 10911 }, 123456789);
    assert.equal(id.length, 32);
    assert.deepEqual(parseOffsetMessageId(id), {
      storeHost: { host: '127.0.0.1', port: 10911 },
      commitLogOffset: 123456789,
    });
    assert.equal(parseOffsetMessageId('not hex'), undefined);
  });
  it('detects a flipped bit anywhere in the record', () => {
    const seed = testSeed();
    const random = seededRandom(seed);
    const bytes = encodeRecord(prepareRecord(sampleMessage(), false), placement);
    assert.equal(checkRecord(bytes, 0, bytes.length, true).kind, 'message');
    for (let round = 0; round < 200; round++) {
      const damaged = Buffer.from(bytes);
      const at = Math.floor(random() * damaged.length);
      damaged[at] = (damaged[at] ?? 0) ^ (1 << Math.floor(random() * 8));
      const check = checkRecord(damaged, 0, damaged.length, true);
      assert.notEqual(check.kind, 'message', `seed ${seed}: flip at byte ${at} went unnoticed`);
    }
  });
  it('reports a cut record as incomplete and garbage as corrupt', () => {
    const bytes = encodeRecord(prepareRecord(sampleMessage(), false), placement);
    for (let cut = 0; cut < bytes.length; cut++) {
      const check = checkRecord(bytes.subarray(0, cut), 0, cut, true);
      assert.equal(check.kind, 'incomplete', `cut at ${cut}`);
    }
    assert.equal(checkRecord(Buffer.alloc(64), 0, 64, true).kind, 'corrupt');
    assert.throws(
      () => decodeRecord(Buffer.alloc(64)),
      (err) => isRbError(err, 'RB_ERR_CORRUPT_RECORD'),
    );
  });
  it('reads a blank end-of-segment record', () => {
    const segmentTail = Buffer.alloc(100);
    writeBlankRecord(segmentTail, 0, 100);
    assert.deepEqual(checkRecord(segmentTail, 0, 100, true), { kind: 'blank', size: 100 });
  });
  it('refuses properties longer than 32767 bytes', () => {
    const huge = sampleMessage({ properties: { big: 'x'.repeat(40000) } });
    assert.throws(
      () => prepareRecord(huge, false),
      (err) => isRbError(err, 'RB_ERR_PROPERTIES_TOO_LARGE'),
    );
  });
});

describe('topic names', () => {
  it('follow RocketMQ rules', () => {
    assert.equal(topicNameProblem('orders-2024_%RETRY%|x'), undefined);
    assert.match(topicNameProblem('') ?? '', /empty/);
    assert.match(topicNameProblem('a'.repeat(128)) ?? '', /127/);
    assert.match(topicNameProblem('a/b') ?? '', /may only contain/);
    assert.match(topicNameProblem('a b') ?? '', /may only contain/);
  });
});
