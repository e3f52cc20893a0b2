/**
 * The client's pieces that need no broker: queue allocation, process-queue offsets, the local offset
 * file, unique ids, batch encoding and the in-process transport's request/response and
 * server-to-client paths.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isRbError } from '../../../src/engine/common/errors.js';
import { allocateAveragely } from '../../../src/engine/client/allocate.js';
import { createUniqueMessageId } from '../../../src/engine/client/message-id.js';
import { LocalOffsetStore } from '../../../src/engine/client/offset-store.js';
import { ProcessQueue } from '../../../src/engine/client/process-queue.js';
import { encodeBatch } from '../../../src/engine/client/producer.js';
import { queueKey, type MessageQueue } from '../../../src/engine/client/route.js';
import { InProcessNetwork, InProcessTransport } from '../../../src/engine/client/transport-in-process.js';
import type { MessageExt } from '../../../src/engine/client/message-ext.js';
import { ProcessorRegistry, type RemotingChannel } from '../../../src/engine/remoting/channel.js';
import { RequestCode, ResponseCode } from '../../../src/engine/remoting/codes.js';
import { createRequest, createResponse } from '../../../src/engine/remoting/command.js';
import { makeTempDir } from '../../helpers/temp-dir.js';
import { eventually } from '../../helpers/eventually.js';

function queues(count: number, brokers = ['b1']): MessageQueue[] {
  return brokers.flatMap((brokerName) =>
    Array.from({ length: count }, (_, queueId) => ({ topic: 't', brokerName, queueId })),
  );
}

function fakeMessage(queueOffset: number): MessageExt {
  return { queueOffset } as MessageExt;
}

describe('allocateAveragely', () => {
  it('gives every queue to exactly one member, in contiguous shares that differ by at most one', () => {
    for (let members = 1; members <= 7; members++) {
      for (let queueCount = 1; queueCount <= 17; queueCount++) {
        const all = queues(queueCount);
        const ids = Array.from({ length: members }, (_, i) => `10.0.0.1@${i}`);
        const shares = ids.map((id) => allocateAveragely(id, [...ids].reverse(), [...all].reverse()));
        const owned = shares.flat().map(queueKey);
        if (queueCount >= members) {
          assert.equal(owned.length, queueCount);
          assert.equal(new Set(owned).size, queueCount);
          const sizes = shares.map((share) => share.length);
          assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1);
        } else {
          assert.deepEqual(new Set(owned).size, queueCount);
        }
      }
    }
  });

  it('matches RocketMQ for 8 queues over 3 members: 3, 3, 2', () => {
    const all = queues(8);
    const ids = ['a', 'b', 'c'];
    assert.deepEqual(
      ids.map((id) => allocateAveragely(id, ids, all).map((q) => q.queueId)),
      [
        [0, 1, 2],
        [3, 4, 5],
        [6, 7],
      ],
    );
  });

  it('gives nothing to a client that is not in the member list yet', () => {
    assert.deepEqual(allocateAveragely('x', ['a', 'b'], queues(4)), []);
  });
});

describe('ProcessQueue', () => {
  it('commits the smallest unfinished offset, then one past the largest when all are done', () => {
    const pq = new ProcessQueue({ topic: 't', brokerName: 'b', queueId: 0 }, 10);
    pq.put([10, 11, 12, 13].map(fakeMessage));
    assert.equal(pq.remove([fakeMessage(12)]), 10);
    assert.equal(pq.remove([fakeMessage(10)]), 11);
    assert.equal(pq.remove([fakeMessage(11), fakeMessage(13)]), 14);
    assert.equal(pq.count, 0);
  });

  it('finds the smallest unfinished offset through thousands of out-of-order finishes', () => {
    let seed = 3;
    const random = (): number => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31);
    const pq = new ProcessQueue({ topic: 't', brokerName: 'b', queueId: 0 }, 0);
    const unfinished = new Set<number>();
    let next = 0;
    for (let round = 0; round < 3_000; round++) {
      const batch = Array.from({ length: random() % 8 }, () => fakeMessage(next++));
      pq.put(batch);
      for (const message of batch) unfinished.add(message.queueOffset);
      // Finish a few at random, the oldest one only now and then, so a long tail builds up.
      const candidates = [...unfinished];
      const finished = candidates.filter(
        (offset) => random() % 3 === 0 && (offset !== Math.min(...candidates) || random() % 50 === 0),
      );
      const committable = pq.remove(finished.map(fakeMessage));
      for (const offset of finished) unfinished.delete(offset);
      // -1 until anything was pulled.
      const expected = next === 0 ? -1 : unfinished.size === 0 ? next : Math.min(...unfinished);
      assert.equal(committable, expected, `round ${round}`);
      assert.equal(pq.first()?.queueOffset, unfinished.size === 0 ? undefined : Math.min(...unfinished));
      assert.equal(pq.count, unfinished.size);
    }
  });

  it('wakes a waiter when it is dropped', async () => {
    const pq = new ProcessQueue({ topic: 't', brokerName: 'b', queueId: 0 }, 0);
    const started = Date.now();
    const waiting = pq.waitForSpace(10_000);
    pq.drop();
    await waiting;
    assert.ok(Date.now() - started < 1000);
  });
});

describe('LocalOffsetStore', () => {
  it('writes offsets to a JSON file and reads them back after a restart', async () => {
    const { dir, cleanup } = await makeTempDir();
    try {
      const queue = { topic: 't', brokerName: 'b1', queueId: 3 };
      const store = new LocalOffsetStore(dir, 'g');
      await store.load();
      assert.equal(await store.readStored(queue), -1);
      store.update(queue, 42, true);
      store.update(queue, 41, true);
      await store.persistAll();
      assert.match(readFileSync(join(dir, 'g', 'offsets.json'), 'utf8'), /"queueOffset": 42/);
      const reopened = new LocalOffsetStore(dir, 'g');
      await reopened.load();
      assert.equal(await reopened.readStored(queue), 42);
    } finally {
      await cleanup();
    }
  });
});

describe('unique message ids', () => {
  it('are 32 upper-case hex characters and differ from one message to the next', () => {
    const ids = new Set(Array.from({ length: 1000 }, () => createUniqueMessageId()));
    assert.equal(ids.size, 1000);
    for (const id of ids) assert.match(id, /^[0-9A-F]{32}$/);
  });
});

describe('encodeBatch', () => {
  it('lays out each message as totalSize, magic, bodyCRC, flag, body and properties', () => {
    const bytes = encodeBatch([
      { body: Buffer.from('ab'), flag: 7, properties: 'K\u0001V\u0002' },
      { body: Buffer.from('xyz'), flag: 0, properties: '' },
    ]);
    const first = 4 + 4 + 4 + 4 + 4 + 2 + 2 + 4;
    assert.equal(bytes.readInt32BE(0), first);
    assert.equal(bytes.readInt32BE(4), 0);
    assert.equal(bytes.readInt32BE(12), 7);
    assert.equal(bytes.readInt32BE(16), 2);
    assert.equal(bytes.toString('utf8', 20, 22), 'ab');
    assert.equal(bytes.readUInt16BE(22), 4);
    assert.equal(bytes.readInt32BE(first), 4 + 4 + 4 + 4 + 4 + 3 + 2);
    assert.equal(bytes.length, first + 25);
  });
});

describe('InProcessTransport', () => {
  it('hands requests to the bound registry and server requests back to the client registry', async () => {
    const network = new InProcessNetwork();
    const server = new ProcessorRegistry();
    let serverChannel: RemotingChannel | undefined;
    let closedSeen = false;
    server.register(RequestCode.HeartBeat, (request, channel) => {
      serverChannel = channel;
      channel.onClose(() => {
        closedSeen = true;
      });
      return createResponse(request, ResponseCode.Success, undefined, { echo: request.extFields['x'] ?? '' });
    });
    network.bind('10.9.9.9:10911', server);
    const transport = new InProcessTransport(network);
    let notified = '';
    transport.registry.register(RequestCode.NotifyConsumerIdsChanged, (request) => {
      notified = request.extFields['consumerGroup'] ?? '';
      return createResponse(request, ResponseCode.Success);
    });
    const response = await transport.invoke('10.9.9.9:10911', createRequest(RequestCode.HeartBeat, { x: 'hi' }), 1000);
    assert.equal(response.extFields['echo'], 'hi');
    assert.ok(serverChannel !== undefined);
    const back = await serverChannel.invoke(
      createRequest(RequestCode.NotifyConsumerIdsChanged, { consumerGroup: 'g1' }),
      1000,
    );
    assert.equal(back.code, ResponseCode.Success);
    assert.equal(notified, 'g1');
    await transport.close();
    assert.equal(closedSeen, true);
  });

  it('rejects a request in flight when the transport closes', async () => {
    const network = new InProcessNetwork();
    const server = new ProcessorRegistry();
    server.register(RequestCode.PullMessage, () => new Promise(() => undefined));
    network.bind('10.9.9.9:1', server);
    const transport = new InProcessTransport(network);
    const pending = transport.invoke('10.9.9.9:1', createRequest(RequestCode.PullMessage), 10_000);
    await transport.close();
    await assert.rejects(pending, (err) => isRbError(err));
  });

  it('times out a request the server never answers', async () => {
    const network = new InProcessNetwork();
    const server = new ProcessorRegistry();
    server.register(RequestCode.PullMessage, () => new Promise(() => undefined));
    network.bind('10.9.9.9:2', server);
    const transport = new InProcessTransport(network);
    try {
      await assert.rejects(transport.invoke('10.9.9.9:2', createRequest(RequestCode.PullMessage), 50), (err) =>
        isRbError(err),
      );
    } finally {
      await transport.close();
    }
  });

  it('falls back to TCP for an address that is not bound', async () => {
    const transport = new InProcessTransport(new InProcessNetwork());
    try {
      await assert.rejects(transport.invoke('127.0.0.1:1', createRequest(RequestCode.HeartBeat), 500), (err) =>
        isRbError(err),
      );
    } finally {
      await transport.close();
    }
    await eventually(() => true);
  });
});
