/**
 * `rocketbridge gateway` as its own process in front of a cluster: MQTT and AMQP round trips pass
 * through it, and messages land in the cluster's broker.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import amqp from 'amqplib';
import mqtt from 'mqtt';
import { PullConsumer } from '../../../src/engine/client/index.js';
import { eventually } from '../../helpers/eventually.js';
import { startCluster, type TestCluster } from '../client/cluster.js';

const here = fileURLToPath(import.meta.url);
const extension = here.endsWith('.ts') ? 'ts' : 'js';
const mainPath = fileURLToPath(new URL(`../../../src/cli/main.${extension}`, import.meta.url));

/** Starts the gateway on free ports and reads the ports it logged. */
async function startGateway(namesrv: string): Promise<{ child: ChildProcess; ports: Record<string, number> }> {
  const child = spawn(
    process.execPath,
    [
      ...process.execArgv,
      mainPath,
      'gateway',
      '--namesrv',
      namesrv,
      '--host',
      '127.0.0.1',
      '--mqtt-port',
      '0',
      '--amqp-port',
      '0',
      '--http-port',
      '0',
    ],
    { env: { ...process.env, RB_LOG_LEVEL: 'info', RB_LOG_FORMAT: 'json' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const ports: Record<string, number> = {};
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
    for (const match of output.matchAll(/"msg":"(MQTT|AMQP|HTTP) listening on [^:"]+:(\d+)/g)) {
      ports[match[1] ?? ''] = Number(match[2]);
    }
  });
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  await eventually(() => Object.keys(ports).length === 3, { timeoutMs: 20_000 }).catch((err: unknown) => {
    child.kill('SIGKILL');
    throw new Error(`gateway did not start: ${output}`, { cause: err });
  });
  return { child, ports };
}

describe('rocketbridge gateway', () => {
  let cluster: TestCluster;
  let gateway: { child: ChildProcess; ports: Record<string, number> };

  before(async () => {
    cluster = await startCluster();
    gateway = await startGateway(cluster.namesrvAddress);
  });

  after(async () => {
    const exited = new Promise((resolve) => gateway.child.once('exit', resolve));
    gateway.child.kill('SIGTERM');
    await exited;
    await cluster.close();
  });

  it('passes an MQTT round trip and stores the message in the cluster', async () => {
    const url = `mqtt://127.0.0.1:${gateway.ports['MQTT']}`;
    const subscriber = await mqtt.connectAsync(url, { clientId: 'gw-sub' });
    const publisher = await mqtt.connectAsync(url, { clientId: 'gw-pub' });
    try {
      const received: string[] = [];
      subscriber.on('message', (topic, payload) => received.push(`${topic}=${payload.toString()}`));
      await subscriber.subscribeAsync('gwsensors/+/temp', { qos: 1 });
      await publisher.publishAsync('gwsensors/attic/temp', '17', { qos: 1 });
      await eventually(() => assert.deepEqual(received, ['gwsensors/attic/temp=17']), { timeoutMs: 10_000 });
    } finally {
      await subscriber.endAsync();
      await publisher.endAsync();
    }
    const consumer = new PullConsumer({ group: 'gw-check', nameServers: [cluster.namesrvAddress] });
    await consumer.start();
    try {
      const queues = await consumer.fetchQueues('gwsensors');
      const bodies: string[] = [];
      for (const queue of queues) {
        const result = await consumer.pull(queue, 'attic.temp', 0, 32);
        bodies.push(...result.messages.map((message) => message.body.toString()));
      }
      assert.deepEqual(bodies, ['17']);
    } finally {
      await consumer.shutdown();
    }
  });

  it('passes an AMQP round trip', async () => {
    const connection = await amqp.connect(`amqp://guest:guest@127.0.0.1:${gateway.ports['AMQP']}`);
    try {
      const channel = await connection.createConfirmChannel();
      await channel.assertExchange('gw-orders', 'direct', { durable: true });
      const { queue } = await channel.assertQueue('gw-billing', { durable: true });
      await channel.bindQueue(queue, 'gw-orders', 'created');
      const received: string[] = [];
      await channel.consume(queue, (message) => {
        if (message === null) return;
        received.push(`${message.fields.routingKey}=${message.content.toString()}`);
        channel.ack(message);
      });
      channel.publish('gw-orders', 'created', Buffer.from('order-1'));
      channel.publish('gw-orders', 'deleted', Buffer.from('order-2'));
      await channel.waitForConfirms();
      await eventually(() => assert.deepEqual(received, ['created=order-1']), { timeoutMs: 10_000 });
    } finally {
      await connection.close();
    }
  });
});
