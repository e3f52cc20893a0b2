import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ConsumeMessage } from 'amqplib';
import { amqpConnectionForSuite, collectBodies } from '../../helpers/amqp-server.js';
import { eventually } from '../../helpers/eventually.js';

describe('AMQP routing', () => {
  const connection = amqpConnectionForSuite('in-process');

  it('routes a direct exchange by exact routing key', async () => {
    const channel = await connection().createChannel();
    await channel.assertExchange('orders', 'direct', { durable: false });
    const { queue: paid } = await channel.assertQueue('', { exclusive: true });
    const { queue: shipped } = await channel.assertQueue('', { exclusive: true });
    await channel.bindQueue(paid, 'orders', 'paid');
    await channel.bindQueue(shipped, 'orders', 'shipped');
    const paidBodies = await collectBodies(channel, paid);
    const shippedBodies = await collectBodies(channel, shipped);
    channel.publish('orders', 'paid', Buffer.from('p1'));
    channel.publish('orders', 'shipped', Buffer.from('s1'));
    channel.publish('orders', 'paid.extra', Buffer.from('none'));
    channel.publish('orders', 'paid', Buffer.from('p2'));
    await eventually(() => paidBodies.length === 2 && shippedBodies.length === 1, { timeoutMs: 8000 });
    assert.deepEqual(paidBodies, ['p1', 'p2']);
    assert.deepEqual(shippedBodies, ['s1']);
    await channel.close();
  });

  it('routes a topic exchange with * and # word patterns', async () => {
    const channel = await connection().createChannel();
    await channel.assertExchange('logs', 'topic', { durable: false });
    const { queue: errors } = await channel.assertQueue('', { exclusive: true });
    const { queue: kern } = await channel.assertQueue('', { exclusive: true });
    await channel.bindQueue(errors, 'logs', '*.error');
    await channel.bindQueue(kern, 'logs', 'kern.#');
    const errorBodies = await collectBodies(channel, errors);
    const kernBodies = await collectBodies(channel, kern);
    for (const key of ['kern.error', 'app.error', 'kern', 'kern.disk.full', 'app.info', 'a.b.error']) {
      channel.publish('logs', key, Buffer.from(key));
    }
    await eventually(() => errorBodies.length === 2 && kernBodies.length === 3, { timeoutMs: 8000 });
    assert.deepEqual(errorBodies.sort(), ['app.error', 'kern.error']);
    assert.deepEqual(kernBodies.sort(), ['kern', 'kern.disk.full', 'kern.error']);
    await channel.close();
  });

  it('copies a fanout publish to every bound queue', async () => {
    const channel = await connection().createChannel();
    await channel.assertExchange('broadcast', 'fanout', { durable: false });
    const { queue: a } = await channel.assertQueue('', { exclusive: true });
    const { queue: b } = await channel.assertQueue('', { exclusive: true });
    await channel.bindQueue(a, 'broadcast', '');
    await channel.bindQueue(b, 'broadcast', 'ignored');
    const aBodies = await collectBodies(channel, a);
    const bBodies = await collectBodies(channel, b);
    channel.publish('broadcast', 'anything', Buffer.from('m1'));
    channel.publish('broadcast', '', Buffer.from('m2'));
    await eventually(() => aBodies.length === 2 && bBodies.length === 2, { timeoutMs: 8000 });
    assert.deepEqual([...aBodies].sort(), ['m1', 'm2']);
    assert.deepEqual([...bBodies].sort(), ['m1', 'm2']);
    await channel.close();
  });

  it('matches a headers exchange on all or any of the binding headers', async () => {
    const channel = await connection().createChannel();
    const { queue: all } = await channel.assertQueue('', { exclusive: true });
    const { queue: any } = await channel.assertQueue('', { exclusive: true });
    await channel.bindQueue(all, 'amq.headers', '', { 'x-match': 'all', format: 'pdf', type: 'report' });
    await channel.bindQueue(any, 'amq.match', '', { 'x-match': 'any', format: 'pdf', type: 'report' });
    const allBodies = await collectBodies(channel, all);
    const anyBodies = await collectBodies(channel, any);
    channel.publish('amq.headers', '', Buffer.from('both'), { headers: { format: 'pdf', type: 'report' } });
    channel.publish('amq.headers', '', Buffer.from('one'), { headers: { format: 'pdf', type: 'log' } });
    channel.publish('amq.match', '', Buffer.from('other-exchange'), { headers: { format: 'pdf' } });
    await eventually(() => allBodies.length === 1 && anyBodies.length === 1, { timeoutMs: 8000 });
    assert.deepEqual(allBodies, ['both']);
    assert.deepEqual(anyBodies, ['other-exchange']);
    await channel.close();
  });

  it('follows exchange-to-exchange bindings', async () => {
    const channel = await connection().createChannel();
    await channel.assertExchange('upstream', 'topic', { durable: false });
    await channel.assertExchange('downstream', 'fanout', { durable: false });
    await channel.bindExchange('downstream', 'upstream', 'eu.#');
    const { queue } = await channel.assertQueue('', { exclusive: true });
    await channel.bindQueue(queue, 'downstream', '');
    const bodies = await collectBodies(channel, queue);
    channel.publish('upstream', 'eu.fr', Buffer.from('fr'));
    channel.publish('upstream', 'us.ny', Buffer.from('ny'));
    channel.publish('upstream', 'eu', Buffer.from('eu'));
    await eventually(() => bodies.length === 2, { timeoutMs: 8000 });
    assert.deepEqual([...bodies].sort(), ['eu', 'fr']);
    await channel.close();
  });

  it('returns an unroutable mandatory publish with 312 NO_ROUTE', async () => {
    const channel = await connection().createConfirmChannel();
    await channel.assertExchange('nowhere', 'direct', { durable: false });
    const returned = new Promise<ConsumeMessage>((resolve) => channel.once('return', resolve));
    channel.publish('nowhere', 'missing', Buffer.from('lost'), { mandatory: true });
    await channel.waitForConfirms();
    const message = await returned;
    const fields = message.fields as unknown as { replyCode: number; replyText: string };
    assert.equal(fields.replyCode, 312);
    assert.equal(fields.replyText, 'NO_ROUTE');
    assert.equal(message.fields.routingKey, 'missing');
    assert.equal(message.content.toString(), 'lost');
    await channel.close();
  });

  it('closes the channel with 404 when publishing to a missing exchange', async () => {
    const channel = await connection().createChannel();
    const closed = new Promise<Error>((resolve) => channel.once('error', resolve));
    channel.publish('no-such-exchange', 'k', Buffer.from('x'));
    const err = (await closed) as Error & { code?: number };
    assert.equal(err.code, 404);
    assert.match(err.message, /NOT_FOUND/);
  });

  it('answers a passive declare of a missing queue with 404 and a redeclare with a different type with 406', async () => {
    const channel = await connection().createChannel();
    channel.on('error', () => undefined);
    await assert.rejects(channel.checkQueue('does-not-exist'), (err: Error & { code?: number }) => err.code === 404);
    const second = await connection().createChannel();
    second.on('error', () => undefined);
    await second.assertExchange('typed', 'direct', { durable: false });
    await assert.rejects(
      second.assertExchange('typed', 'topic', { durable: false }),
      (err: Error & { code?: number }) => err.code === 406,
    );
    const third = await connection().createChannel();
    third.on('error', () => undefined);
    await assert.rejects(
      third.assertExchange('amq.custom', 'topic'),
      (err: Error & { code?: number }) => err.code === 403,
    );
  });
});
