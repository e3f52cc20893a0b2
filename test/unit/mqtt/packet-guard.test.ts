import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PacketSizeGuard } from '../../../src/adapters/mqtt/packet-guard.js';

const CONNECT = Buffer.from([0x10, 0x0d, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x3c, 0x00, 0x01, 0x61]);
const PUBLISH = Buffer.concat([Buffer.from([0x30, 0x83, 0x01, 0x00, 0x01, 0x74]), Buffer.alloc(128)]);
const PINGREQ = Buffer.from([0xc0, 0x00]);
const STREAM = Buffer.concat([CONNECT, PUBLISH, PINGREQ, PUBLISH]);

function feedSplit(guard: PacketSizeGuard, bytes: Buffer, at: number): boolean {
  return guard.feed(bytes.subarray(0, at)).ok && guard.feed(bytes.subarray(at)).ok;
}

describe('MQTT packet size guard', () => {
  it('accepts a valid packet stream split at every byte boundary', () => {
    for (let at = 0; at <= STREAM.length; at++) {
      assert.ok(feedSplit(new PacketSizeGuard(1024), STREAM, at), `split at ${at}`);
    }
  });

  it('refuses a packet over the limit wherever the stream is split', () => {
    for (let at = 0; at <= STREAM.length; at++) {
      assert.equal(feedSplit(new PacketSizeGuard(100), STREAM, at), false, `split at ${at}`);
    }
  });

  it('refuses a Remaining Length of more than four bytes', () => {
    const guard = new PacketSizeGuard(1 << 30);
    assert.ok(guard.feed(CONNECT).ok);
    assert.equal(guard.feed(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01])).ok, false);
  });

  it('refuses a first packet other than CONNECT and the reserved packet types', () => {
    assert.equal(new PacketSizeGuard(1024).feed(PINGREQ).ok, false);
    const guard = new PacketSizeGuard(1024);
    assert.ok(guard.feed(CONNECT).ok);
    assert.equal(guard.feed(Buffer.from([0xf0, 0x00])).ok, false);
  });

  it('survives seeded random bytes after CONNECT without throwing', () => {
    let seed = Number(process.env['SEED'] ?? 12345);
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    for (let round = 0; round < 200; round++) {
      const guard = new PacketSizeGuard(4096);
      guard.feed(CONNECT);
      const bytes = Buffer.from(Array.from({ length: 64 }, () => Math.floor(random() * 256)));
      const verdict = guard.feed(bytes);
      assert.equal(typeof verdict.ok, 'boolean', `seed ${process.env['SEED'] ?? 12345} round ${round}`);
    }
  });
});
