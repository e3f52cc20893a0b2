import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import amqp from 'amqplib';
import { FrameType } from '../../../src/adapters/amqp/constants.js';
import { HEARTBEAT_FRAME } from '../../../src/adapters/amqp/frame-writer.js';
import { eventually } from '../../helpers/eventually.js';
import { startAmqp, type AmqpTestBed } from '../../integration/amqp/harness.js';
import { RawClient } from './raw-client.js';

describe('AMQP protocol state errors', () => {
  let bed: AmqpTestBed;
  before(async () => {
    bed = await startAmqp('in-process', { closeTimeoutMs: 1000 });
  });
  after(async () => {
    await bed.close();
  });

  it('closes the channel with 406 on an unknown delivery tag and keeps the connection', async () => {
    const connection = await amqp.connect(bed.url);
    const channel = await connection.createChannel();
    const closed = new Promise<Error & { code?: number }>((resolve) => channel.once('error', resolve));
    const fake = { fields: { deliveryTag: 99 }, properties: {}, content: Buffer.alloc(0) };
    channel.ack(fake as unknown as amqp.Message);
    const err = await closed;
    assert.equal(err.code, 406);
    assert.match(err.message, /unknown delivery tag 99/);
    const again = await connection.createChannel();
    await again.assertQueue('', { exclusive: true });
    await connection.close();
  });

  it('closes the connection with 530 when a consumer tag is reused on a channel', async () => {
    const client = await RawClient.handshake(bed.server.port);
    await client.openChannel(1);
    client.send(1, {
      name: 'queue.declare',
      queue: 'tag-reuse',
      passive: false,
      durable: false,
      exclusive: false,
      autoDelete: false,
      noWait: false,
      arguments: {},
    });
    await client.waitFor('queue.declare-ok', 1);
    const consume = {
      name: 'basic.consume' as const,
      queue: 'tag-reuse',
      consumerTag: 'same',
      noLocal: false,
      noAck: true,
      exclusive: false,
      noWait: false,
      arguments: {},
    };
    client.send(1, consume);
    await client.waitFor('basic.consume-ok', 1);
    client.send(1, consume);
    assert.equal((await client.connectionClose()).replyCode, 530);
    await client.waitEnded();
  });

  it('closes the connection with 503 for a connection method on a channel and a server-only method', async () => {
    const onChannel = await RawClient.handshake(bed.server.port);
    await onChannel.openChannel(1);
    onChannel.send(1, { name: 'connection.open', virtualHost: '/', capabilities: '', insist: false });
    assert.equal((await onChannel.connectionClose()).replyCode, 503);
    await onChannel.waitEnded();

    const serverOnly = await RawClient.handshake(bed.server.port);
    await serverOnly.openChannel(1);
    serverOnly.send(1, {
      name: 'basic.deliver',
      consumerTag: 't',
      deliveryTag: 1,
      redelivered: false,
      exchange: '',
      routingKey: 'k',
    });
    assert.equal((await serverOnly.connectionClose()).replyCode, 503);
    await serverOnly.waitEnded();
  });

  it('answers channel.flow and a second channel.open on an open channel is 504', async () => {
    const client = await RawClient.handshake(bed.server.port);
    await client.openChannel(2);
    client.send(2, { name: 'channel.flow', active: false });
    const flow = await client.waitFor('channel.flow-ok', 2);
    assert.deepEqual(flow.method, { name: 'channel.flow-ok', active: false });
    client.send(2, { name: 'channel.open', outOfBand: '' });
    assert.equal((await client.connectionClose()).replyCode, 504);
    await client.waitEnded();
  });

  it('sends heartbeats on an idle connection that negotiated them', async () => {
    const client = await RawClient.handshake(bed.server.port, { heartbeat: 1 });
    const beat = setInterval(() => client.write(HEARTBEAT_FRAME), 300);
    try {
      await eventually(() => client.frames.filter((frame) => frame.type === FrameType.Heartbeat).length >= 2, {
        timeoutMs: 5000,
      });
      assert.equal(client.ended, false);
    } finally {
      clearInterval(beat);
      client.destroy();
    }
  });

  it('closes every connection with 320 CONNECTION_FORCED when the server shuts down', async () => {
    const own = await startAmqp('in-process');
    try {
      const connection = await amqp.connect(own.url);
      const closed = new Promise<Error | undefined>((resolve) => connection.once('close', resolve));
      await own.server.close();
      const err = await closed;
      assert.match(String(err?.message), /320 \(CONNECTION-FORCED\).*server-shutdown/);
    } finally {
      await own.cluster.close();
    }
  });
});
