/** The HA wire codec: reports and transfer frames, fed whole, split at every byte and mutated at random. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  encodeReport,
  encodeTransferHeader,
  ReportDecoder,
  type TransferFrame,
  TransferDecoder,
} from '../../../src/engine/broker/ha/ha-codec.js';
import { seededRandom, testSeed } from '../../helpers/seed.js';

function frames(): Buffer {
  return Buffer.concat([
    encodeTransferHeader(0, 5),
    Buffer.from('hello'),
    encodeTransferHeader(5, 0),
    encodeTransferHeader(5, 300),
    Buffer.alloc(300, 7),
  ]);
}

function decodeAll(decoder: TransferDecoder, parts: Buffer[]): { frames: TransferFrame[]; error?: string } {
  const decoded: TransferFrame[] = [];
  for (const part of parts) {
    const outcome = decoder.push(part);
    for (const frame of outcome.items)
      decoded.push({ commitLogOffset: frame.commitLogOffset, data: Buffer.from(frame.data) });
    if ('error' in outcome) return { frames: decoded, error: outcome.error };
  }
  return { frames: decoded };
}

describe('HA codec', () => {
  it('decodes transfer frames split at every byte boundary', () => {
    const bytes = frames();
    for (let split = 0; split <= bytes.length; split++) {
      const result = decodeAll(new TransferDecoder(1024), [bytes.subarray(0, split), bytes.subarray(split)]);
      assert.equal(result.error, undefined);
      assert.deepEqual(
        result.frames.map((f) => [f.commitLogOffset, f.data.length]),
        [
          [0, 5],
          [5, 0],
          [5, 300],
        ],
      );
      assert.equal(result.frames[0]?.data.toString(), 'hello');
    }
  });

  it('decodes transfer frames fed one byte at a time', () => {
    const bytes = frames();
    const parts = [...bytes].map((b) => Buffer.from([b]));
    assert.equal(decodeAll(new TransferDecoder(1024), parts).frames.length, 3);
  });

  it('rejects a frame larger than the limit before its data arrives', () => {
    const result = decodeAll(new TransferDecoder(100), [encodeTransferHeader(0, 101)]);
    assert.match(result.error ?? '', /frame of 101 bytes \(limit 100\)/);
  });

  it('rejects a negative size and an out-of-range offset', () => {
    const negative = encodeTransferHeader(0, 0);
    negative.writeInt32BE(-1, 8);
    assert.match(decodeAll(new TransferDecoder(100), [negative]).error ?? '', /frame of -1 bytes/);
    assert.match(decodeAll(new TransferDecoder(100), [Buffer.alloc(12, 0xff)]).error ?? '', /out of range/);
  });

  it('decodes reports split anywhere and rejects an out-of-range one', () => {
    const bytes = Buffer.concat([encodeReport(0), encodeReport(123_456_789), encodeReport(2 ** 40)]);
    for (let split = 0; split <= bytes.length; split++) {
      const decoder = new ReportDecoder();
      const first = decoder.push(bytes.subarray(0, split));
      const second = decoder.push(bytes.subarray(split));
      assert.deepEqual([...first.items, ...second.items], [0, 123_456_789, 2 ** 40]);
    }
    const outcome = new ReportDecoder().push(Buffer.alloc(8, 0xff));
    assert.ok('error' in outcome);
  });

  it('never throws on seeded random mutations of valid frames', () => {
    const seed = testSeed();
    const random = seededRandom(seed);
    const valid = frames();
    for (let round = 0; round < 500; round++) {
      const mutated = Buffer.from(valid);
      const flips = 1 + Math.floor(random() * 4);
      for (let i = 0; i < flips; i++) {
        const at = Math.floor(random() * mutated.length);
        mutated.writeUInt8(Math.floor(random() * 256), at);
      }
      const split = Math.floor(random() * mutated.length);
      assert.doesNotThrow(
        () => decodeAll(new TransferDecoder(1024), [mutated.subarray(0, split), mutated.subarray(split)]),
        `seed ${seed} round ${round}`,
      );
    }
  });
});
