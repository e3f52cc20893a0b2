/**
 * Malformed HA input ends that HA connection with a named reason and nothing else: a fake slave
 * talking to a real master, and a fake master talking to a real slave.
 */
import assert from 'node:assert/strict';
import { connect, createServer, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { testBrokerConfig } from '../../../src/engine/broker/broker-config.js';
import { Broker } from '../../../src/engine/broker/broker.js';
import { encodeReport, encodeTransferHeader } from '../../../src/engine/broker/ha/ha-codec.js';
import type { HaConnectionClosed } from '../../../src/engine/broker/ha/ha-master.js';
import { ResponseCode } from '../../../src/engine/remoting/codes.js';
import { eventually } from '../../helpers/eventually.js';
import { makeTempDir } from '../../helpers/temp-dir.js';
import { sendV2Request } from '../broker/broker-harness.js';
import { startCluster } from './ha-harness.js';

function closed(socket: Socket): Promise<void> {
  return new Promise((resolve) => socket.once('close', () => resolve()));
}

describe('malformed HA input', () => {
  it('closes a fake slave whose reports are past the log, go backwards or are out of range', async () => {
    const cluster = await startCluster({}, false);
    try {
      const master = cluster.master.ha.master;
      assert.ok(master !== undefined);
      const reasons: HaConnectionClosed[] = [];
      master.onConnectionClosed((info) => reasons.push(info));
      const response = await cluster.call(cluster.master, sendV2Request('BadTopic', Buffer.from('x'), { queueId: 0 }));
      assert.equal(response.code, ResponseCode.Success);
      const maxOffset = cluster.master.store.stats().commitLogMaxOffset;
      const outOfRange = Buffer.alloc(8, 0xff);
      const cases: [Buffer, RegExp][] = [
        [encodeReport(maxOffset + 1), /past this master's max offset/],
        [Buffer.concat([encodeReport(maxOffset), encodeReport(0)]), /went back/],
        [outOfRange, /malformed report/],
      ];
      for (const [bytes, reason] of cases) {
        const socket = connect({ host: '127.0.0.1', port: master.port });
        socket.on('data', () => {});
        socket.on('error', () => {});
        const ended = closed(socket);
        socket.write(bytes);
        await ended;
        await eventually(() => reasons.some((r) => reason.test(r.reason)));
      }
      // The master still serves: a send succeeds.
      const after = await cluster.call(cluster.master, sendV2Request('BadTopic', Buffer.from('y'), { queueId: 0 }));
      assert.equal(after.code, ResponseCode.Success);
    } finally {
      await cluster.close();
    }
  });

  it('closes a connection to a fake master that sends oversize, corrupt or misplaced frames', async () => {
    const { dir, cleanup } = await makeTempDir('rb-ha-bad-');
    const badMagicRecord = Buffer.alloc(64);
    badMagicRecord.writeInt32BE(64, 0);
    badMagicRecord.writeInt32BE(0x12345678, 4);
    const badFrames = [
      encodeTransferHeader(0, 64 * 1024 * 1024),
      Buffer.concat([encodeTransferHeader(0, 64), Buffer.alloc(64, 0x5a)]),
      Buffer.concat([encodeTransferHeader(0, 64), badMagicRecord]),
      Buffer.concat([encodeTransferHeader(12_345, 16), Buffer.alloc(16, 1)]),
    ];
    const expected = [
      /malformed frame: frame of 67108864 bytes/,
      /record of \d+ bytes at 0 crosses the segment end/,
      /corrupt record at 0: bad magic code/,
      /chunk at CommitLog offset 12345/,
    ];
    let connections = 0;
    const sockets = new Set<Socket>();
    const fakeMaster = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => {});
      socket.on('close', () => sockets.delete(socket));
      const frame = badFrames[connections++ % badFrames.length];
      // Wait for the slave's first report, then misbehave.
      socket.once('data', () => socket.write(frame ?? Buffer.alloc(0)));
    });
    await new Promise<void>((resolve) => fakeMaster.listen(0, '127.0.0.1', resolve));
    const address = fakeMaster.address();
    assert.ok(typeof address === 'object' && address !== null);
    const slave = new Broker(
      testBrokerConfig(dir, {
        brokerId: 1,
        haMasterAddress: `127.0.0.1:${address.port}`,
        haMaxFrameBytes: 1024 * 1024,
      }),
    );
    await slave.start();
    try {
      const reasons: HaConnectionClosed[] = [];
      slave.ha.slave?.onConnectionClosed((info) => reasons.push(info));
      await eventually(() => expected.every((pattern) => reasons.some((r) => pattern.test(r.reason))), {
        timeoutMs: 10_000,
      });
      assert.equal(slave.store.stats().commitLogMaxOffset, 0, 'nothing of the bad frames was stored');
    } finally {
      await slave.shutdown();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => fakeMaster.close(() => resolve()));
      await cleanup();
    }
  });
});
