import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import amqp, { type ChannelModel, type ConsumeMessage } from 'amqplib';
import amqpCallback from 'amqplib/callback_api';
import { eventually } from '../../helpers/eventually.js';
import { startAmqp, type AmqpTestBed } from './harness.js';

for (const queueBackend of ['pop', 'pull'] as const) {
  describe(`AMQP consuming, acks and confirms (${queueBackend} queues)`, () => {
    let bed: AmqpTestBed;
    let connection: ChannelModel;
    before(async () => {
      bed = await startAmqp(queueBackend === 'pop' ? 'tcp' : 'in-process', { queueBackend });
      connection = await amqp.connect(bed.url);
    });
    after(async () => {
      await connection.close();
      await bed.close();
    });

    it('never has more unacked deliveries on a consumer than its prefetch', async () => {
      const channel = await connection.createChannel();
      const { queue } = await channel.assertQueue('', { exclusive: true });
      await channel.prefetch(3);
      const held: ConsumeMessage[] = [];
      await channel.consume(queue, (message) => {
        if (message !== null) held.push(message);
      });
      for (let i = 0; i < 10; i++) channel.sendToQueue(queue, Buffer.from(`m${i}`));
      await eventually(() => held.length === 3, { timeoutMs: 8000 });
      // Nothing more arrives while all three are unacked.
      const ok = await channel.checkQueue(queue);
      assert.equal(held.length, 3);
      assert.equal(ok.messageCount, 7);
      channel.ack(held[2] as ConsumeMessage, true);
      await eventually(() => held.length === 6, { timeoutMs: 8000 });
      channel.ackAll();
      await eventually(() => held.length === 9, { timeoutMs: 8000 });
      channel.ackAll();
      await eventually(() => held.length === 10, { timeoutMs: 8000 });
      assert.deepEqual(
        held.map((m) => m.content.toString()),
        Array.from({ length: 10 }, (_, i) => `m${i}`),
      );
      channel.ackAll();
      await channel.close();
    });

    it('shares a work queue between consumers within a per-channel prefetch', async () => {
      const channel = await connection.createChannel();
      const { queue } = await channel.assertQueue('', { exclusive: true });
      await channel.prefetch(2, true);
      const byConsumer = new Map<string, number>();
      const tags: string[] = [];
      for (let c = 0; c < 2; c++) {
        const { consumerTag } = await channel.consume(queue, (message) => {
          if (message === null) return;
          byConsumer.set(message.fields.consumerTag, (byConsumer.get(message.fields.consumerTag) ?? 0) + 1);
          channel.ack(message);
        });
        tags.push(consumerTag);
      }
      for (let i = 0; i < 20; i++) channel.sendToQueue(queue, Buffer.from(String(i)));
      await eventually(() => [...byConsumer.values()].reduce((a, b) => a + b, 0) === 20, { timeoutMs: 8000 });
      for (const tag of tags) assert.ok((byConsumer.get(tag) ?? 0) > 0, `consumer ${tag} got work`);
      await channel.close();
    });

    it('redelivers a nacked message with redelivered set, and drops a rejected one without requeue', async () => {
      const channel = await connection.createChannel();
      const { queue } = await channel.assertQueue('', { exclusive: true });
      const seen: { body: string; redelivered: boolean }[] = [];
      await channel.consume(queue, (message) => {
        if (message === null) return;
        const body = message.content.toString();
        seen.push({ body, redelivered: message.fields.redelivered });
        if (body === 'retry' && !message.fields.redelivered) channel.nack(message, false, true);
        else if (body === 'drop') channel.reject(message, false);
        else channel.ack(message);
      });
      channel.sendToQueue(queue, Buffer.from('retry'));
      channel.sendToQueue(queue, Buffer.from('drop'));
      await eventually(() => seen.length === 3, { timeoutMs: 8000 });
      assert.deepEqual(
        seen.filter((s) => s.body === 'retry'),
        [
          { body: 'retry', redelivered: false },
          { body: 'retry', redelivered: true },
        ],
      );
      const ok = await channel.checkQueue(queue);
      assert.equal(ok.messageCount, 0);
      assert.equal(seen.filter((s) => s.body === 'drop').length, 1);
      await channel.close();
    });

    it('answers basic.get with get-ok and then get-empty, and reports counts in declare-ok', async () => {
      const channel = await connection.createChannel();
      const { queue } = await channel.assertQueue('', { exclusive: true });
      channel.sendToQueue(queue, Buffer.from('one'), { messageId: 'id-1', correlationId: 'c-1', replyTo: 'back' });
      channel.sendToQueue(queue, Buffer.from('two'));
      const first = await channel.get(queue);
      assert.ok(first !== false);
      assert.equal(first.content.toString(), 'one');
      assert.equal(first.properties.messageId, 'id-1');
      assert.equal(first.properties.correlationId, 'c-1');
      assert.equal(first.properties.replyTo, 'back');
      assert.equal(first.fields.messageCount, 1);
      const second = await channel.get(queue, { noAck: true });
      assert.ok(second !== false);
      assert.equal(second.content.toString(), 'two');
      assert.equal(await channel.get(queue), false);
      channel.nack(first, false, true);
      const again = await channel.get(queue, { noAck: true });
      assert.ok(again !== false);
      assert.equal(again.content.toString(), 'one');
      assert.equal(again.fields.redelivered, true);
      await channel.consume(queue, () => undefined);
      const counts = await channel.checkQueue(queue);
      assert.equal(counts.consumerCount, 1);
      await channel.close();
    });

    it('requeues every unacked delivery on basic.recover and when the channel closes', async () => {
      const channel = await connection.createChannel();
      const { queue } = await channel.assertQueue('shared-recover', { durable: false });
      await channel.purgeQueue(queue);
      channel.sendToQueue(queue, Buffer.from('a'));
      const got = await eventually(
        async () => {
          const message = await channel.get(queue);
          assert.ok(message !== false);
          return message;
        },
        { timeoutMs: 8000 },
      );
      assert.equal(got.fields.redelivered, false);
      await channel.recover();
      const again = await channel.get(queue);
      assert.ok(again !== false);
      assert.equal(again.fields.redelivered, true);
      await channel.close();
      const other = await connection.createChannel();
      const third = await other.get(queue, { noAck: true });
      assert.ok(third !== false);
      assert.equal(third.content.toString(), 'a');
      assert.equal(third.fields.redelivered, true);
      await other.deleteQueue(queue);
      await other.close();
    });

    it('redelivers unacked messages to another connection when the consuming connection dies', async () => {
      const channel = await connection.createChannel();
      await channel.assertQueue('survivor', { durable: false });
      const doomed = await amqp.connect(bed.url);
      const doomedChannel = await doomed.createChannel();
      const got: ConsumeMessage[] = [];
      await doomedChannel.consume('survivor', (message) => {
        if (message !== null) got.push(message);
      });
      channel.sendToQueue('survivor', Buffer.from('precious'));
      await eventually(() => got.length === 1, { timeoutMs: 8000 });
      await doomed.close();
      const message = await eventually(
        async () => {
          const each = await channel.get('survivor', { noAck: true });
          assert.ok(each !== false);
          return each;
        },
        { timeoutMs: 8000 },
      );
      assert.equal(message.content.toString(), 'precious');
      assert.equal(message.fields.redelivered, true);
      await channel.deleteQueue('survivor');
      await channel.close();
    });

    it('confirms every publish after the engine stored it', async () => {
      const channel = await connection.createConfirmChannel();
      const { queue } = await channel.assertQueue('', { exclusive: true });
      const acked: number[] = [];
      for (let i = 0; i < 50; i++) {
        channel.sendToQueue(queue, Buffer.from(`c${i}`), { persistent: true }, (err) => {
          if (err === null || err === undefined) acked.push(i);
        });
      }
      await channel.waitForConfirms();
      assert.equal(acked.length, 50);
      const ok = await channel.checkQueue(queue);
      assert.equal(ok.messageCount, 50);
      await channel.close();
    });

    it('closes the channel with 540 NOT_IMPLEMENTED on tx.select', async () => {
      const channel = await connection.createChannel();
      const closed = new Promise<Error & { code?: number }>((resolve) => channel.once('error', resolve));
      // amqplib has no tx API; send the method through its low-level RPC.
      const rpc = channel as unknown as { rpc(method: number, fields: object, expect: number): Promise<unknown> };
      await assert.rejects(rpc.rpc(5898250, {}, 5898251), (err: Error & { code?: number }) => err.code === 540);
      const err = await closed;
      assert.equal(err.code, 540);
      assert.match(err.message, /not implemented/);
    });

    it('works with the callback API', async () => {
      const url = bed.url;
      const bodies = await new Promise<string[]>((resolve, reject) => {
        amqpCallback.connect(url, (err, conn) => {
          if (err !== null) return reject(err);
          conn.createChannel((err2, channel) => {
            if (err2 !== null) return reject(err2);
            channel.assertQueue('', { exclusive: true }, (err3, ok) => {
              if (err3 !== null) return reject(err3);
              const out: string[] = [];
              channel.consume(ok.queue, (message) => {
                if (message === null) return;
                out.push(message.content.toString());
                channel.ack(message);
                if (out.length === 2) conn.close(() => resolve(out));
              });
              channel.sendToQueue(ok.queue, Buffer.from('cb1'));
              channel.sendToQueue(ok.queue, Buffer.from('cb2'));
            });
          });
        });
      });
      assert.deepEqual(bodies, ['cb1', 'cb2']);
    });
  });
}
