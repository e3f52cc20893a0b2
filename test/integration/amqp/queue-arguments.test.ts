import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ChannelModel, GetMessage } from 'amqplib';
import { amqpConnectionForSuite, collectBodies } from '../../helpers/amqp-server.js';
import { eventually } from '../../helpers/eventually.js';

type Death = { count: number; reason: string; queue: string; exchange: string; 'routing-keys': string[] };

describe('AMQP queue purge, delete and queue arguments', () => {
  const connection = amqpConnectionForSuite('in-process');

  async function getOne(
    channel: Awaited<ReturnType<ChannelModel['createChannel']>>,
    queue: string,
  ): Promise<GetMessage> {
    return eventually(
      async () => {
        const message = await channel.get(queue, { noAck: true });
        assert.ok(message !== false, `a message in ${queue}`);
        return message;
      },
      { timeoutMs: 8000 },
    );
  }

  it('purges ready messages and reports how many', async () => {
    const channel = await connection().createConfirmChannel();
    const { queue } = await channel.assertQueue('', { exclusive: true });
    for (let i = 0; i < 4; i++) channel.sendToQueue(queue, Buffer.from(String(i)));
    await channel.waitForConfirms();
    const { messageCount } = await channel.purgeQueue(queue);
    assert.equal(messageCount, 4);
    assert.equal(await channel.get(queue), false);
    await channel.close();
  });

  it('refuses delete if-unused with a consumer and if-empty with messages, and cancels consumers of a deleted queue', async () => {
    const channel = await connection().createConfirmChannel();
    await channel.assertQueue('doomed', { durable: false });
    let cancelled = false;
    await channel.consume('doomed', (message) => {
      if (message === null) cancelled = true;
    });
    const probe = await connection().createChannel();
    probe.on('error', () => undefined);
    await assert.rejects(
      probe.deleteQueue('doomed', { ifUnused: true }),
      (err: Error & { code?: number }) => err.code === 406,
    );
    const other = await connection().createConfirmChannel();
    await other.assertQueue('full', { durable: false });
    other.sendToQueue('full', Buffer.from('x'));
    await other.waitForConfirms();
    const probe2 = await connection().createChannel();
    probe2.on('error', () => undefined);
    await assert.rejects(
      probe2.deleteQueue('full', { ifEmpty: true }),
      (err: Error & { code?: number }) => err.code === 406,
    );
    const { messageCount } = await other.deleteQueue('full');
    assert.equal(messageCount, 1);
    await other.deleteQueue('doomed');
    await eventually(() => cancelled, { timeoutMs: 5000 });
    await channel.close();
    await other.close();
  });

  it('dead-letters a rejected message to x-dead-letter-exchange with the x-dead-letter-routing-key and x-death', async () => {
    const channel = await connection().createChannel();
    await channel.assertExchange('dlx', 'direct', { durable: false });
    const { queue: parking } = await channel.assertQueue('', { exclusive: true });
    await channel.bindQueue(parking, 'dlx', 'parked');
    const { queue: work } = await channel.assertQueue('', {
      exclusive: true,
      arguments: { 'x-dead-letter-exchange': 'dlx', 'x-dead-letter-routing-key': 'parked' },
    });
    channel.sendToQueue(work, Buffer.from('bad'), { headers: { attempt: 1 } });
    const message = await eventually(
      async () => {
        const each = await channel.get(work);
        assert.ok(each !== false);
        return each;
      },
      { timeoutMs: 8000 },
    );
    channel.reject(message, false);
    const dead = await getOne(channel, parking);
    assert.equal(dead.content.toString(), 'bad');
    assert.equal(dead.fields.routingKey, 'parked');
    const deaths = dead.properties.headers?.['x-death'] as Death[];
    assert.equal(deaths.length, 1);
    assert.equal(deaths[0]?.reason, 'rejected');
    assert.equal(deaths[0]?.queue, work);
    assert.equal(Number(deaths[0]?.count), 1);
    assert.deepEqual(deaths[0]?.['routing-keys'], [work]);
    assert.equal(dead.properties.headers?.['attempt'], 1);
    assert.equal(dead.properties.headers?.['x-first-death-reason'], 'rejected');
    await channel.close();
  });

  it('expires messages after x-message-ttl or their expiration and dead-letters them', async () => {
    const channel = await connection().createChannel();
    const { queue: expired } = await channel.assertQueue('', { exclusive: true });
    const { queue: delay } = await channel.assertQueue('', {
      exclusive: true,
      arguments: { 'x-message-ttl': 200, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': expired },
    });
    const { queue: plain } = await channel.assertQueue('', { exclusive: true });
    channel.sendToQueue(delay, Buffer.from('later'));
    channel.sendToQueue(plain, Buffer.from('short-lived'), { expiration: '100' });
    channel.sendToQueue(plain, Buffer.from('kept'));
    const dead = await getOne(channel, expired);
    assert.equal(dead.content.toString(), 'later');
    assert.equal((dead.properties.headers?.['x-death'] as Death[])[0]?.reason, 'expired');
    assert.equal(await channel.get(delay), false);
    await eventually(async () => (await channel.checkQueue(plain)).messageCount === 1, { timeoutMs: 5000 });
    const kept = await getOne(channel, plain);
    assert.equal(kept.content.toString(), 'kept');
    await channel.close();
  });

  it('keeps at most x-max-length ready messages, dropping the oldest', async () => {
    const channel = await connection().createConfirmChannel();
    const { queue } = await channel.assertQueue('', { exclusive: true, arguments: { 'x-max-length': 2 } });
    for (let i = 1; i <= 5; i++) channel.sendToQueue(queue, Buffer.from(`m${i}`));
    await channel.waitForConfirms();
    await eventually(async () => (await channel.checkQueue(queue)).messageCount === 2, { timeoutMs: 5000 });
    const bodies = await collectBodies(channel, queue);
    await eventually(() => bodies.length === 2, { timeoutMs: 5000 });
    assert.deepEqual(bodies, ['m4', 'm5']);
    await channel.close();
  });

  it('deletes a queue unused for x-expires and refuses a non-numeric argument with 406', async () => {
    const channel = await connection().createChannel();
    channel.on('error', () => undefined);
    await channel.assertQueue('short-lived-queue', { arguments: { 'x-expires': 300 } });
    await eventually(
      async () => {
        const probe = await connection().createChannel();
        probe.on('error', () => undefined);
        await assert.rejects(
          probe.checkQueue('short-lived-queue'),
          (err: Error & { code?: number }) => err.code === 404,
        );
      },
      { timeoutMs: 5000 },
    );
    await assert.rejects(
      channel.assertQueue('bad-args', { arguments: { 'x-message-ttl': 'soon' } }),
      (err: Error & { code?: number }) => err.code === 406,
    );
  });
});
