/**
 * Redeclare equivalence with amqplib: declaring an existing queue or exchange with other properties
 * or behaviour arguments is a 406 PRECONDITION_FAILED that closes only the channel, with
 * RabbitMQ's reply text; passive declares of missing objects are 404; the connection keeps working.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import amqp, { type Channel, type ChannelModel } from 'amqplib';
import { startAmqp, type AmqpTestBed } from './harness.js';

type AmqpError = Error & { code?: number };

describe('AMQP redeclare equivalence', () => {
  let bed: AmqpTestBed;
  let connection: ChannelModel;
  let connectionClosed = false;
  before(async () => {
    bed = await startAmqp('in-process');
    connection = await amqp.connect(bed.url);
    connection.on('close', () => (connectionClosed = true));
  });
  after(async () => {
    await connection.close();
    await bed.close();
  });

  /** A channel whose server close is expected: resolves with the error it was closed with. */
  async function expectChannelError(
    code: number,
    text: string | RegExp,
    act: (channel: Channel) => Promise<unknown>,
  ): Promise<void> {
    const channel = await connection.createChannel();
    const closed = new Promise<void>((resolve) => channel.once('close', () => resolve()));
    channel.on('error', () => undefined);
    await assert.rejects(act(channel), (err: AmqpError) => {
      assert.equal(err.code, code, err.message);
      if (typeof text === 'string') assert.ok(err.message.includes(text), err.message);
      else assert.match(err.message, text);
      return true;
    });
    await closed;
  }

  it('refuses a queue redeclared with other durable / exclusive / auto-delete flags', async () => {
    const channel = await connection.createChannel();
    await channel.assertQueue('eq-flags', { durable: false });
    await expectChannelError(
      406,
      "PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'eq-flags' in vhost '/': received 'true' but current is 'false'",
      (probe) => probe.assertQueue('eq-flags', { durable: true }),
    );
    await expectChannelError(
      406,
      "inequivalent arg 'auto_delete' for queue 'eq-flags' in vhost '/': received 'true' but current is 'false'",
      (probe) => probe.assertQueue('eq-flags', { durable: false, autoDelete: true }),
    );
    // The same declaration again is fine, and so is a passive one with any flags.
    const ok = await channel.assertQueue('eq-flags', { durable: false });
    assert.equal(ok.queue, 'eq-flags');
    await channel.checkQueue('eq-flags');
    await channel.close();
  });

  it('refuses a queue redeclared with other behaviour arguments and ignores unknown ones', async () => {
    const channel = await connection.createChannel();
    await channel.assertQueue('eq-args', {
      durable: false,
      arguments: { 'x-message-ttl': 1000, 'x-max-length': 10, 'x-dead-letter-exchange': 'dlx', 'x-custom': 'a' },
    });
    const same = { 'x-message-ttl': 1000, 'x-max-length': 10, 'x-dead-letter-exchange': 'dlx' };
    await expectChannelError(
      406,
      "inequivalent arg 'x-message-ttl' for queue 'eq-args' in vhost '/': received the value '2000' of type 'short' but current is the value '1000' of type 'short'",
      (probe) => probe.assertQueue('eq-args', { durable: false, arguments: { ...same, 'x-message-ttl': 2000 } }),
    );
    await expectChannelError(
      406,
      "inequivalent arg 'x-max-length' for queue 'eq-args' in vhost '/': received none but current is the value '10' of type 'byte'",
      (probe) =>
        probe.assertQueue('eq-args', {
          durable: false,
          arguments: { 'x-message-ttl': 1000, 'x-dead-letter-exchange': 'dlx' },
        }),
    );
    await expectChannelError(
      406,
      "inequivalent arg 'x-dead-letter-exchange' for queue 'eq-args' in vhost '/': received the value 'other' of type 'longstr' but current is the value 'dlx' of type 'longstr'",
      (probe) =>
        probe.assertQueue('eq-args', { durable: false, arguments: { ...same, 'x-dead-letter-exchange': 'other' } }),
    );
    await expectChannelError(
      406,
      "inequivalent arg 'x-overflow' for queue 'eq-args' in vhost '/': received the value 'reject-publish' of type 'longstr' but current is none",
      (probe) =>
        probe.assertQueue('eq-args', { durable: false, arguments: { ...same, 'x-overflow': 'reject-publish' } }),
    );
    // x-custom is not a behaviour argument (RabbitMQ ignores it on redeclare), x-queue-type classic is the default.
    await channel.assertQueue('eq-args', {
      durable: false,
      arguments: { ...same, 'x-custom': 'b', 'x-queue-type': 'classic' },
    });
    await channel.close();
  });

  it('refuses an exchange redeclared with another type, flags or alternate-exchange', async () => {
    const channel = await connection.createChannel();
    await channel.assertExchange('eq-exchange', 'direct', { durable: false });
    await expectChannelError(
      406,
      "PRECONDITION_FAILED - inequivalent arg 'type' for exchange 'eq-exchange' in vhost '/': received 'fanout' but current is 'direct'",
      (probe) => probe.assertExchange('eq-exchange', 'fanout', { durable: false }),
    );
    await expectChannelError(
      406,
      "inequivalent arg 'durable' for exchange 'eq-exchange' in vhost '/': received 'true' but current is 'false'",
      (probe) => probe.assertExchange('eq-exchange', 'direct', { durable: true }),
    );
    await expectChannelError(
      406,
      "inequivalent arg 'alternate-exchange' for exchange 'eq-exchange' in vhost '/': received the value 'ae' of type 'longstr' but current is none",
      (probe) => probe.assertExchange('eq-exchange', 'direct', { durable: false, alternateExchange: 'ae' }),
    );
    await channel.assertExchange('eq-exchange', 'direct', { durable: false });
    await channel.checkExchange('eq-exchange');
    await channel.close();
  });

  it('answers passive declares of missing queues and exchanges with 404', async () => {
    await expectChannelError(404, "NOT_FOUND - no queue 'nowhere' in vhost '/'", (probe) =>
      probe.checkQueue('nowhere'),
    );
    await expectChannelError(404, "NOT_FOUND - no exchange 'nowhere-x' in vhost '/'", (probe) =>
      probe.checkExchange('nowhere-x'),
    );
  });

  it('refuses an unknown x-overflow with 406', async () => {
    await expectChannelError(406, /invalid arg 'x-overflow' for queue 'bad-overflow'/, (probe) =>
      probe.assertQueue('bad-overflow', { arguments: { 'x-overflow': 'explode' } }),
    );
  });

  it('keeps the connection open through all of that', async () => {
    assert.equal(connectionClosed, false);
    const channel = await connection.createConfirmChannel();
    const { queue } = await channel.assertQueue('', { exclusive: true });
    channel.sendToQueue(queue, Buffer.from('still here'));
    await channel.waitForConfirms();
    const { messageCount } = await channel.checkQueue(queue);
    assert.equal(messageCount, 1);
    await channel.close();
  });
});
