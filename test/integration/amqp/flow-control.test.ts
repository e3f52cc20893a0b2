/**
 * connection.blocked / connection.unblocked with amqplib (which announces the capability): a
 * publish backlog over the configured high-water mark blocks publishers until it drains, and a
 * broker store that refuses writes (a real write fault: the store turns read-only) blocks them until
 * the broker writes again. Nothing is lost on the way: every publish is confirmed or nacked.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import amqp, { type ChannelModel } from 'amqplib';
import { nodeFileIo } from '../../../src/engine/store/file-io.js';
import { eventually } from '../../helpers/eventually.js';
import { startAmqp, type AmqpTestBed } from './harness.js';

interface FlowEvents {
  blocked: string[];
  unblocked: number;
}

function watch(connection: ChannelModel): FlowEvents {
  const events: FlowEvents = { blocked: [], unblocked: 0 };
  connection.on('blocked', (reason: string) => events.blocked.push(reason));
  connection.on('unblocked', () => events.unblocked++);
  return events;
}

describe('AMQP connection.blocked on a publish backlog', () => {
  let bed: AmqpTestBed;
  before(async () => {
    bed = await startAmqp('in-process', { backlogHighWaterMessages: 20 });
  });
  after(async () => {
    await bed.close();
  });

  it('blocks publishers over the high-water mark and unblocks them once the backlog drains', async () => {
    const publisher = await amqp.connect(bed.url);
    const bystander = await amqp.connect(bed.url);
    const events = watch(publisher);
    const bystanderEvents = watch(bystander);
    const channel = await publisher.createConfirmChannel();
    const { queue } = await channel.assertQueue('', { exclusive: true });
    const count = 500;
    for (let i = 0; i < count; i++) channel.sendToQueue(queue, Buffer.alloc(256, i % 256));
    await channel.waitForConfirms();
    // Blocked at least once, and unblocked as often (the backlog may cross the mark several times).
    await eventually(() => events.blocked.length > 0 && events.unblocked === events.blocked.length, {
      timeoutMs: 5000,
    });
    assert.ok(events.blocked.every((reason) => reason === 'publish backlog over the high-water mark'));
    // Every connection that asked to be told is told, publishing or not.
    await eventually(() => bystanderEvents.unblocked === events.unblocked, { timeoutMs: 5000 });
    assert.equal(bystanderEvents.blocked.length, events.blocked.length);
    await eventually(async () => (await channel.checkQueue(queue)).messageCount === count, { timeoutMs: 10_000 });
    await bystander.close();
    await publisher.close();
  });
});

describe('AMQP connection.blocked while the store refuses writes', () => {
  let bed: AmqpTestBed;
  const writeSync = nodeFileIo.writeSync;
  before(async () => {
    bed = await startAmqp('tcp', { flowCheckIntervalMs: 200 });
  });
  afterEach(() => {
    nodeFileIo.writeSync = writeSync;
  });
  after(async () => {
    await bed.close();
  });

  it('nacks the refused publish, blocks publishers, and unblocks once the restarted broker writes', async () => {
    const connection = await amqp.connect(bed.url);
    connection.on('error', () => undefined);
    const events = watch(connection);
    const channel = await connection.createConfirmChannel();
    const { queue } = await channel.assertQueue('flow-store', { durable: true });
    channel.sendToQueue(queue, Buffer.from('before'));
    await channel.waitForConfirms();

    // A full disk, as the store sees it: every write fails with ENOSPC and the store turns read-only.
    nodeFileIo.writeSync = () => {
      const err: NodeJS.ErrnoException = new Error('ENOSPC: injected by the flow-control test');
      err.code = 'ENOSPC';
      throw err;
    };
    const outcome = await new Promise<'ack' | 'nack'>((resolve) =>
      channel.sendToQueue(queue, Buffer.from('refused'), {}, (err: unknown) =>
        resolve(err === null || err === undefined ? 'ack' : 'nack'),
      ),
    );
    assert.equal(outcome, 'nack');
    await eventually(() => events.blocked.length === 1, { timeoutMs: 5000 });
    assert.match(events.blocked[0] ?? '', /low on disk/);
    // Still blocked a while later: the store stays read-only until the broker restarts.
    await new Promise((resolve) => setTimeout(resolve, 600));
    assert.equal(events.unblocked, 0);

    nodeFileIo.writeSync = writeSync;
    await bed.cluster.restartBroker();
    await eventually(() => events.unblocked === 1, { timeoutMs: 15_000 });

    await eventually(
      async () => {
        const probe = await connection.createConfirmChannel();
        probe.on('error', () => undefined);
        probe.sendToQueue(queue, Buffer.from('after'));
        await probe.waitForConfirms();
        await probe.close();
      },
      { timeoutMs: 15_000 },
    );
    await connection.close();
  });
});

describe('AMQP connection.blocked over the memory high-water mark', () => {
  let bed: AmqpTestBed;
  before(async () => {
    // Any process is over 1 byte: the memory alarm is on from the first check.
    bed = await startAmqp('in-process', { memoryHighWaterBytes: 1, flowCheckIntervalMs: 50 });
  });
  after(async () => {
    await bed.close();
  });

  it('announces an alarm that is already on right after open, and stops reading a publishing connection', async () => {
    await new Promise((resolve) => setTimeout(resolve, 200));
    const connection = await amqp.connect(bed.url);
    const events = watch(connection);
    const channel = await connection.createConfirmChannel();
    const { queue } = await channel.assertQueue('', { exclusive: true });
    // The blocked frame follows open-ok at once, before amqplib hands out the ChannelModel whose
    // 'blocked' event we could listen to; amqplib records it on the underlying connection.
    const inner = (connection as unknown as { connection: { blocked: boolean } }).connection;
    await eventually(() => inner.blocked || events.blocked.length > 0, { timeoutMs: 5000 });
    channel.sendToQueue(queue, Buffer.from('held'));
    // The publish is read (it is what tells the server the connection publishes); what arrives
    // after it is not: a queue.declare sent a moment later stays unanswered while blocked.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const declared = channel.checkQueue(queue).then(() => true);
    const answered = await Promise.race([declared, new Promise((resolve) => setTimeout(() => resolve(false), 500))]);
    assert.equal(answered, false);
    // amqplib closes a blocked connection without waiting for close-ok.
    await connection.close();
  });
});
