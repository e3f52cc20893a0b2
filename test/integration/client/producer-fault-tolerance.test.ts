/**
 * The producer keeps sending while one of two broker groups is gone. A stopped broker is tried once,
 * then left out (its address isolated, its route fetched again). A hung broker that is still in the
 * route (reached through a TCP relay that stops answering; the real broker keeps heartbeating to the
 * NameServer) costs one send timeout per isolation period, not one every other send, and is used
 * again once it answers.
 */
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket, connect } from 'node:net';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { testBrokerConfig } from '../../../src/engine/broker/broker-config.js';
import { Broker } from '../../../src/engine/broker/broker.js';
import { Producer } from '../../../src/engine/client/producer.js';
import { NameServer } from '../../../src/engine/namesrv/name-server.js';
import { ProcessorRegistry } from '../../../src/engine/remoting/channel.js';
import { ResponseCode } from '../../../src/engine/remoting/codes.js';
import { RemotingClient } from '../../../src/engine/remoting/tcp-client.js';
import { eventually } from '../../helpers/eventually.js';
import { makeTempDir } from '../../helpers/temp-dir.js';
import { createTopicRequest } from '../broker/broker-harness.js';

const TOPIC = 'FaultTopic';
const SEND_TIMEOUT_MS = 400;
const ISOLATION_MS = 2000;

/**
 * A TCP relay from `listenHost:port` to `target`. After `hang()` it keeps every connection open and
 * accepts new ones but passes nothing on, as a hung host would: requests time out.
 */
class Relay {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private hanging = false;

  constructor(private readonly target: { host: string; port: number }) {
    this.server = createServer((client) => this.accept(client));
  }

  listen(host: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => resolve());
    });
  }

  hang(): void {
    this.hanging = true;
  }

  /** Relays again; connections from before are closed, bytes were lost on them. */
  resume(): void {
    this.hanging = false;
    for (const socket of this.sockets) socket.destroy();
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  }

  private accept(client: Socket): void {
    this.track(client);
    const upstream = connect(this.target);
    this.track(upstream);
    client.on('data', (chunk: Buffer) => {
      if (!this.hanging) upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!this.hanging) client.write(chunk);
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  }
}

describe('producer with one of two broker groups gone', () => {
  let nameServer: NameServer;
  let brokerA: Broker;
  let brokerB: Broker;
  /** brokerB as clients see it: 127.0.0.2 relayed to its real 127.0.0.1 listener. */
  let relay: Relay;
  let admin: RemotingClient;
  let cleanup: () => Promise<void>;
  let producer: Producer;

  beforeEach(async () => {
    const temp = await makeTempDir('rb-fault-');
    cleanup = temp.cleanup;
    nameServer = new NameServer({ host: '127.0.0.1', port: 0 });
    await nameServer.start();
    const common = { namesrvAddresses: [nameServer.address], haPort: 0 };
    brokerA = new Broker(testBrokerConfig(`${temp.dir}/a`, { ...common, brokerName: 'broker-a' }));
    await brokerA.start();
    // Listens on 127.0.0.1 but announces 127.0.0.2, where the relay stands in front of it.
    brokerB = new Broker(
      testBrokerConfig(`${temp.dir}/b`, { ...common, brokerName: 'broker-b', announceHost: '127.0.0.2' }),
    );
    await brokerB.start();
    relay = new Relay({ host: '127.0.0.1', port: brokerB.port });
    await relay.listen('127.0.0.2', brokerB.port);
    admin = new RemotingClient({ registry: new ProcessorRegistry() });
    for (const address of [brokerA.address, `127.0.0.1:${brokerB.port}`]) {
      const created = await admin.invoke(address, createTopicRequest(TOPIC, 4), 5000);
      assert.equal(created.code, ResponseCode.Success, created.remark);
    }
    await eventually(() => assert.equal(nameServer.routes.pickupTopicRouteData(TOPIC)?.queueDatas.length, 2));
    producer = new Producer({
      group: 'FaultProducer',
      nameServers: [nameServer.address],
      sendTimeoutMs: SEND_TIMEOUT_MS,
      faultIsolationMs: ISOLATION_MS,
      // Only the failure path may refresh the route in these tests.
      routeRefreshIntervalMs: 600_000,
    });
    await producer.start();
  });

  afterEach(async () => {
    await producer.shutdown();
    await admin.close();
    await relay.close();
    await brokerB.shutdown();
    await brokerA.shutdown();
    await nameServer.shutdown();
    await cleanup();
  });

  /** Sends `count` messages one after another; the broker name and latency of each. */
  async function sendMany(count: number): Promise<{ broker: string; latencyMs: number }[]> {
    const results: { broker: string; latencyMs: number }[] = [];
    for (let i = 0; i < count; i++) {
      const startedMs = Date.now();
      const result = await producer.send({ topic: TOPIC, body: Buffer.from(`message ${i}`) });
      assert.equal(result.status, 'SEND_OK');
      results.push({ broker: result.messageQueue.brokerName, latencyMs: Date.now() - startedMs });
    }
    return results;
  }

  function brokersOf(results: readonly { broker: string }[]): Set<string> {
    return new Set(results.map((result) => result.broker));
  }

  it('uses both broker groups while both answer', async () => {
    assert.deepEqual(brokersOf(await sendMany(20)), new Set(['broker-a', 'broker-b']));
    assert.deepEqual(producer.avoidedBrokerAddresses(), []);
  });

  it('a stopped broker is tried once, then sends go to the other one at full speed', async () => {
    await sendMany(8);
    await brokerB.shutdown();
    await relay.close();
    const startedMs = Date.now();
    const results = await sendMany(100);
    const elapsedMs = Date.now() - startedMs;
    assert.deepEqual(brokersOf(results), new Set(['broker-a']));
    // Refused connections fail fast; no send may wait for a timeout.
    for (const { latencyMs } of results) assert.ok(latencyMs < SEND_TIMEOUT_MS, `a send took ${latencyMs} ms`);
    assert.ok(elapsedMs < 5000, `100 sends took ${elapsedMs} ms`);
    // The failure fetched the route again: broker-b is out of it, not merely avoided.
    const queues = await producer.fetchPublishQueues(TOPIC);
    assert.deepEqual(new Set(queues.map((queue) => queue.brokerName)), new Set(['broker-a']));
  });

  it('a hung broker still in the route costs one timeout per isolation period, then is used again', async () => {
    await sendMany(8);
    relay.hang();
    const startedMs = Date.now();
    const results = await sendMany(100);
    const elapsedMs = Date.now() - startedMs;
    assert.deepEqual(brokersOf(results), new Set(['broker-a']));
    const slow = results.filter(({ latencyMs }) => latencyMs >= SEND_TIMEOUT_MS).length;
    // Without isolation about half the sends would wait out a timeout on broker-b.
    assert.ok(slow >= 1, 'broker-b was tried');
    assert.ok(slow <= 1 + Math.floor(elapsedMs / ISOLATION_MS), `${slow} sends waited for broker-b in ${elapsedMs} ms`);
    assert.ok(
      producer.avoidedBrokerAddresses().includes(brokerB.address) || elapsedMs >= ISOLATION_MS,
      'broker-b is avoided',
    );
    // The NameServer still lists broker-b (it heartbeats): the isolation is what kept sends away.
    assert.deepEqual(
      new Set(nameServer.routes.pickupTopicRouteData(TOPIC)?.brokerDatas.map((broker) => broker.brokerName)),
      new Set(['broker-a', 'broker-b']),
    );

    relay.resume();
    // Once the isolation ends, broker-b is tried again, answers, and is back in the rotation.
    // (Every assert.ok has a message: without one, node parses the source to make one, for seconds.)
    await eventually(async () => assert.ok(brokersOf(await sendMany(4)).has('broker-b'), 'broker-b used again'), {
      timeoutMs: ISOLATION_MS * 3,
      intervalMs: 100,
    });
    assert.deepEqual(brokersOf(await sendMany(20)), new Set(['broker-a', 'broker-b']));
    assert.deepEqual(producer.avoidedBrokerAddresses(), []);
  });
});
