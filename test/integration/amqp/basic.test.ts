import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import amqp from 'amqplib';
import { eventually } from '../../helpers/eventually.js';
import { startAmqp, type AmqpTestBed } from './harness.js';

describe('AMQP basic round trip', () => {
  let bed: AmqpTestBed;
  before(async () => {
    bed = await startAmqp('tcp');
  });
  after(async () => {
    await bed.close();
  });

  it('delivers a message published to the default exchange to a consumer of the queue, and takes its ack', async () => {
    const connection = await amqp.connect(bed.url);
    try {
      const channel = await connection.createChannel();
      const ok = await channel.assertQueue('work', { durable: true });
      assert.equal(ok.queue, 'work');
      const received: { body: string; contentType: string | undefined; header: unknown }[] = [];
      await channel.consume('work', (message) => {
        if (message === null) return;
        received.push({
          body: message.content.toString(),
          contentType: message.properties.contentType as string | undefined,
          header: message.properties.headers?.['x-n'],
        });
        channel.ack(message);
      });
      channel.sendToQueue('work', Buffer.from('hello'), { contentType: 'text/plain', headers: { 'x-n': 7 } });
      await eventually(() => received.length === 1, { timeoutMs: 8000 });
      assert.deepEqual(received[0], { body: 'hello', contentType: 'text/plain', header: 7 });
    } finally {
      await connection.close();
    }
  });
});
