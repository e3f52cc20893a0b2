/**
 * `rocketbridge gateway` as its own process in front of a cluster: MQTT and AMQP round trips pass
 * through it, and messages land in the cluster's broker.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import amqp from 'amqplib';
import mqtt from 'mqtt';
import { PullConsumer } from '../../../src/engine/client/index.js';
import { type CliProcess, startCli } from '../../helpers/cli-process.js';
import { eventually } from '../../helpers/eventually.js';
import { startCluster, type TestCluster } from '../client/cluster.js';

const LISTENING = /"msg":"(MQTT|AMQP|HTTP) listening on [^:"]+:(\d+)/g;

/** Starts the gateway on free ports and reads the ports it logged. */
async function startGateway(namesrv: string): Promise<{ process: CliProcess; ports: Record<string, number> }> {
  const args = ['gateway', '--namesrv', namesrv, '--host', '127.0.0.1'];
  args.push('--mqtt-port', '0', '--amqp-port', '0', '--http-port', '0');
  const started = await startCli(args, /listening on/);
  await eventually(() => [...started.output().matchAll(LISTENING)].length >= 3, { timeoutMs: 20_000 });
  const ports: Record<string, number> = {};
  for (const match of started.output().matchAll(LISTENING)) ports[match[1] ?? ''] = Number(match[2]);
  return { process: started, ports };
}

describe('rocketbridge gateway', () => {
  let cluster: TestCluster;
  let gateway: { process: CliProcess; ports: Record<string, number> };

  before(async () => {
    cluster = await startCluster();
    gateway = await startGateway(cluster.namesrvAddress);
  });

  after(async () => {
    await gateway.process.stop('SIGTERM');
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
