import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import amqp, { type Channel, type ChannelModel } from 'amqplib';
import { AmqpServer } from '../../../src/adapters/amqp/server.js';
import { eventually } from '../../helpers/eventually.js';
import { startAmqp, type AmqpTestBed } from './harness.js';

/** An RPC server on `queue` that answers "echo:<body>" to the request's reply-to with its correlation id. */
async function serveEcho(channel: Channel, queue: string): Promise<void> {
  await channel.assertQueue(queue, { durable: false });
  await channel.consume(queue, (message) => {
    if (message === null) return;
    channel.sendToQueue(message.properties.replyTo as string, Buffer.from(`echo:${message.content.toString()}`), {
      correlationId: message.properties.correlationId as string,
    });
    channel.ack(message);
  });
}

describe('AMQP request/reply', () => {
  let bed: AmqpTestBed;
  let connection: ChannelModel;
  before(async () => {
    bed = await startAmqp('tcp');
    connection = await amqp.connect(bed.url);
    await serveEcho(await connection.createChannel(), 'rpc-echo');
  });
  after(async () => {
    await connection.close();
    await bed.close();
  });

  it('answers through an exclusive reply queue with the correlation id', async () => {
    const client = await amqp.connect(bed.url);
    const channel = await client.createChannel();
    const { queue: replies } = await channel.assertQueue('', { exclusive: true });
    const answers = new Map<string, string>();
    await channel.consume(
      replies,
      (message) => {
        if (message !== null) answers.set(message.properties.correlationId as string, message.content.toString());
      },
      { noAck: true },
    );
    channel.sendToQueue('rpc-echo', Buffer.from('a'), { replyTo: replies, correlationId: 'c1' });
    channel.sendToQueue('rpc-echo', Buffer.from('b'), { replyTo: replies, correlationId: 'c2' });
    await eventually(() => answers.size === 2, { timeoutMs: 8000 });
    assert.deepEqual(Object.fromEntries(answers), { c1: 'echo:a', c2: 'echo:b' });
    await client.close();
  });

  it('answers through amq.rabbitmq.reply-to (direct reply-to)', async () => {
    const client = await amqp.connect(bed.url);
    const channel = await client.createChannel();
    const answers: { id: string; body: string }[] = [];
    await channel.consume(
      'amq.rabbitmq.reply-to',
      (message) => {
        if (message !== null)
          answers.push({ id: message.properties.correlationId as string, body: message.content.toString() });
      },
      { noAck: true },
    );
    channel.sendToQueue('rpc-echo', Buffer.from('direct'), { replyTo: 'amq.rabbitmq.reply-to', correlationId: 'd1' });
    await eventually(() => answers.length === 1, { timeoutMs: 8000 });
    assert.deepEqual(answers, [{ id: 'd1', body: 'echo:direct' }]);
    await client.close();
  });

  it('refuses a direct reply-to publish without a reply consumer with 406', async () => {
    const client = await amqp.connect(bed.url);
    const channel = await client.createChannel();
    const closed = new Promise<Error & { code?: number }>((resolve) => channel.once('error', resolve));
    channel.sendToQueue('rpc-echo', Buffer.from('x'), { replyTo: 'amq.rabbitmq.reply-to' });
    assert.equal((await closed).code, 406);
    await client.close();
  });

  it('lets two gateway processes share one queue, each message delivered once', async () => {
    const setup = await connection.createConfirmChannel();
    await setup.assertQueue('shared-work', { durable: true });
    const second = new AmqpServer({ host: '127.0.0.1', port: 0, nameServers: [bed.cluster.namesrvAddress] });
    await second.listen();
    const other = await amqp.connect(`amqp://guest:guest@127.0.0.1:${second.port}`);
    try {
      const seen: string[] = [];
      for (const conn of [connection, other]) {
        const channel = await conn.createChannel();
        await channel.prefetch(5);
        await channel.consume('shared-work', (message) => {
          if (message === null) return;
          seen.push(message.content.toString());
          channel.ack(message);
        });
      }
      for (let i = 0; i < 40; i++) setup.sendToQueue('shared-work', Buffer.from(`w${i}`));
      await setup.waitForConfirms();
      await eventually(() => seen.length >= 40, { timeoutMs: 10_000 });
      assert.equal(new Set(seen).size, 40);
      assert.equal(seen.length, 40);
      // Topology declared through one gateway later reaches the other through the definitions log.
      await setup.assertExchange('late.exchange', 'fanout', { durable: true });
      await setup.assertQueue('late-queue', { durable: true });
      await setup.bindQueue('late-queue', 'late.exchange', '');
      const otherChannel = await other.createChannel();
      otherChannel.on('error', () => undefined);
      await eventually(
        async () => {
          const probe = await other.createChannel();
          probe.on('error', () => undefined);
          await probe.checkQueue('late-queue');
          await probe.close();
        },
        { timeoutMs: 8000 },
      );
      otherChannel.publish('late.exchange', '', Buffer.from('via-second'));
      const routed = await eventually(
        async () => {
          const message = await setup.get('late-queue', { noAck: true });
          assert.ok(message !== false);
          return message;
        },
        { timeoutMs: 8000 },
      );
      assert.equal(routed.content.toString(), 'via-second');
    } finally {
      await other.close();
      await second.close();
    }
  });
});
