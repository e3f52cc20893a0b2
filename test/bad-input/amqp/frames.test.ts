import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import amqp from 'amqplib';
import { PROTOCOL_HEADER } from '../../../src/adapters/amqp/constants.js';
import { encodeContentHeaderFrame, encodeMethodFrame } from '../../../src/adapters/amqp/frame-writer.js';
import { startAmqp, type AmqpTestBed } from '../../integration/amqp/harness.js';
import { RawClient } from './raw-client.js';

function frame(type: number, channelId: number, payload: Buffer, end = 0xce): Buffer {
  const out = Buffer.alloc(8 + payload.length);
  out[0] = type;
  out.writeUInt16BE(channelId, 1);
  out.writeUInt32BE(payload.length, 3);
  payload.copy(out, 7);
  out[7 + payload.length] = end;
  return out;
}

describe('AMQP server under bad input', () => {
  let bed: AmqpTestBed;
  before(async () => {
    bed = await startAmqp('in-process', { heartbeatSec: 0, closeTimeoutMs: 1000, handshakeTimeoutMs: 2000 });
  });
  after(async () => {
    await bed.close();
  });

  /** The server still serves a normal client. */
  async function stillServes(): Promise<void> {
    const connection = await amqp.connect(bed.url);
    const channel = await connection.createChannel();
    await channel.assertQueue('', { exclusive: true });
    await connection.close();
  }

  it('answers a wrong protocol header with AMQP 0-9-1 and closes the socket', async () => {
    const client = await RawClient.open(bed.server.port);
    client.write(Buffer.from('AMQP\u0001\u0001\u0000\u000a'));
    await client.waitEnded();
    assert.deepEqual(Buffer.concat(client.raw), PROTOCOL_HEADER);
    const http = await RawClient.open(bed.server.port);
    http.write(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
    await http.waitEnded();
    assert.deepEqual(Buffer.concat(http.raw), PROTOCOL_HEADER);
    await stillServes();
  });

  it('closes with 501 FRAME_ERROR on an unknown frame type, a bad frame-end octet and an oversize frame', async () => {
    const unknownType = await RawClient.handshake(bed.server.port);
    unknownType.write(frame(7, 0, Buffer.alloc(4)));
    assert.equal((await unknownType.connectionClose()).replyCode, 501);
    await unknownType.waitEnded();

    const badEnd = await RawClient.handshake(bed.server.port);
    badEnd.write(frame(1, 0, Buffer.from([0, 10, 0, 51]), 0x00));
    assert.equal((await badEnd.connectionClose()).replyCode, 501);
    await badEnd.waitEnded();

    const oversize = await RawClient.handshake(bed.server.port, { frameMax: 4096 });
    const big = Buffer.alloc(8);
    big[0] = 3;
    big.writeUInt16BE(1, 1);
    big.writeUInt32BE(1_000_000, 3);
    oversize.write(big);
    const close = await oversize.connectionClose();
    assert.equal(close.replyCode, 501);
    await oversize.waitEnded();
    await stillServes();
  });

  it('closes with 504 CHANNEL_ERROR for a method on a channel that is not open or was closed', async () => {
    const client = await RawClient.handshake(bed.server.port);
    client.send(3, {
      name: 'queue.declare',
      queue: 'x',
      passive: false,
      durable: false,
      exclusive: false,
      autoDelete: false,
      noWait: false,
      arguments: {},
    });
    assert.equal((await client.connectionClose()).replyCode, 504);
    await client.waitEnded();

    const closed = await RawClient.handshake(bed.server.port);
    await closed.openChannel(1);
    closed.send(1, { name: 'channel.close', replyCode: 200, replyText: 'bye', classId: 0, methodId: 0 });
    await closed.waitFor('channel.close-ok', 1);
    closed.send(1, { name: 'basic.qos', prefetchSize: 0, prefetchCount: 1, global: false });
    assert.equal((await closed.connectionClose()).replyCode, 504);
    await closed.waitEnded();
    await stillServes();
  });

  it('closes with 505 UNEXPECTED_FRAME for content out of order', async () => {
    const headerFirst = await RawClient.handshake(bed.server.port);
    await headerFirst.openChannel(1);
    headerFirst.write(encodeContentHeaderFrame(1, 3, {}));
    assert.equal((await headerFirst.connectionClose()).replyCode, 505);
    await headerFirst.waitEnded();

    const methodInside = await RawClient.handshake(bed.server.port);
    await methodInside.openChannel(1);
    methodInside.send(1, { name: 'basic.publish', exchange: '', routingKey: 'q', mandatory: false, immediate: false });
    methodInside.send(1, { name: 'basic.qos', prefetchSize: 0, prefetchCount: 1, global: false });
    assert.equal((await methodInside.connectionClose()).replyCode, 505);
    await methodInside.waitEnded();

    const bodyFirst = await RawClient.handshake(bed.server.port);
    await bodyFirst.openChannel(1);
    bodyFirst.write(frame(3, 1, Buffer.from('body')));
    assert.equal((await bodyFirst.connectionClose()).replyCode, 505);
    await bodyFirst.waitEnded();
    await stillServes();
  });

  it('closes with 540 NOT_IMPLEMENTED for an unknown class or method and 502 for truncated arguments', async () => {
    const unknown = await RawClient.handshake(bed.server.port);
    await unknown.openChannel(1);
    unknown.write(frame(1, 1, Buffer.from([0, 99, 0, 1])));
    const close = await unknown.connectionClose();
    assert.equal(close.replyCode, 540);
    assert.equal(close.classId, 99);
    await unknown.waitEnded();

    const truncated = await RawClient.handshake(bed.server.port);
    await truncated.openChannel(1);
    truncated.write(frame(1, 1, Buffer.from([0, 50, 0, 10, 0, 0, 20])));
    assert.equal((await truncated.connectionClose()).replyCode, 502);
    await truncated.waitEnded();
    await stillServes();
  });

  it('discards frames on a closed channel until close-ok, then the channel can be reopened', async () => {
    const client = await RawClient.handshake(bed.server.port);
    await client.openChannel(1);
    client.send(1, {
      name: 'queue.declare',
      queue: 'missing-queue',
      passive: true,
      durable: false,
      exclusive: false,
      autoDelete: false,
      noWait: false,
      arguments: {},
    });
    const close = await client.channelClose(1);
    assert.equal(close.replyCode, 404);
    // Ignored: the server waits for close-ok.
    client.send(1, {
      name: 'queue.declare',
      queue: 'q',
      passive: false,
      durable: false,
      exclusive: true,
      autoDelete: false,
      noWait: false,
      arguments: {},
    });
    client.write(frame(3, 1, Buffer.from('stray body')));
    client.send(1, { name: 'channel.close-ok' });
    await client.openChannel(1);
    assert.equal(client.frames.filter((f) => f.method?.name === 'queue.declare-ok').length, 0);
    client.send(0, { name: 'connection.close', replyCode: 200, replyText: 'bye', classId: 0, methodId: 0 });
    await client.waitFor('connection.close-ok', 0);
    await client.waitEnded();
  });

  it('refuses bad credentials with 403 and an unknown vhost with 530', async () => {
    await assert.rejects(amqp.connect(`amqp://guest:wrong@127.0.0.1:${bed.server.port}`), /ACCESS_REFUSED|403/);
    await assert.rejects(amqp.connect(`amqp://guest:guest@127.0.0.1:${bed.server.port}/other`));
    const raw = await RawClient.open(bed.server.port);
    raw.write(PROTOCOL_HEADER);
    await raw.waitFor('connection.start');
    raw.send(0, {
      name: 'connection.start-ok',
      clientProperties: {},
      mechanism: 'PLAIN',
      response: Buffer.from('\u0000guest\u0000guest'),
      locale: 'en_US',
    });
    await raw.waitFor('connection.tune');
    raw.send(0, { name: 'connection.tune-ok', channelMax: 0, frameMax: 4096, heartbeat: 0 });
    raw.send(0, { name: 'connection.open', virtualHost: 'other', capabilities: '', insist: false });
    const close = await raw.connectionClose();
    assert.equal(close.replyCode, 530);
    await raw.waitEnded();
    const amqplain = await amqp.connect({
      protocol: 'amqp',
      hostname: '127.0.0.1',
      port: bed.server.port,
      credentials: amqp.credentials.amqplain('guest', 'guest'),
    });
    await amqplain.close();
  });

  it('answers methods out of the handshake order with 503 COMMAND_INVALID', async () => {
    const client = await RawClient.open(bed.server.port);
    client.write(PROTOCOL_HEADER);
    await client.waitFor('connection.start');
    client.send(0, {
      name: 'connection.start-ok',
      clientProperties: {},
      mechanism: 'PLAIN',
      response: Buffer.from('\u0000guest\u0000guest'),
      locale: 'en_US',
    });
    await client.waitFor('connection.tune');
    client.send(0, { name: 'connection.open', virtualHost: '/', capabilities: '', insist: false });
    assert.equal((await client.connectionClose()).replyCode, 503);
    await client.waitEnded();
  });

  it('survives random bytes after the handshake and keeps serving', async () => {
    for (let round = 0; round < 15; round++) {
      const client = await RawClient.handshake(bed.server.port);
      await client.openChannel(1);
      client.write(randomBytes(1 + Math.floor(Math.random() * 600)));
      client.write(encodeMethodFrame(1, { name: 'basic.qos', prefetchSize: 0, prefetchCount: 1, global: false }));
      client.destroy();
    }
    await stillServes();
  });

  it('drops a connection that stops sending heartbeats', async () => {
    const client = await RawClient.handshake(bed.server.port, { heartbeat: 1 });
    await client.waitEnded(6000);
  });

  it('refuses connections over maxConnections and drops a socket that never finishes the handshake', async () => {
    const limited = await startAmqp('in-process', { maxConnections: 1, handshakeTimeoutMs: 500 });
    try {
      const first = await amqp.connect(limited.url);
      await assert.rejects(amqp.connect(limited.url));
      await first.close();
      const silent = await RawClient.open(limited.server.port);
      await silent.waitEnded(3000);
    } finally {
      await limited.close();
    }
  });
});
