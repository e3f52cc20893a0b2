/**
 * Bad input on raw TCP against the MQTT server: each class gets the answer MQTT 3.1.1 defines
 * (CONNACK refusal, SUBACK failure, or closing the connection), the server stays up, and what the
 * engine stores is untouched.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { PullConsumer } from '../../../src/engine/client/index.js';
import { eventually } from '../../helpers/eventually.js';
import { collect, type MqttHarness, startMqttHarness } from '../../integration/mqtt/mqtt-harness.js';

function remainingLength(length: number): Buffer {
  const bytes: number[] = [];
  let value = length;
  do {
    let byte = value % 128;
    value = Math.floor(value / 128);
    if (value > 0) byte |= 0x80;
    bytes.push(byte);
  } while (value > 0);
  return Buffer.from(bytes);
}

function str(text: string): Buffer {
  const body = Buffer.from(text, 'utf8');
  const length = Buffer.alloc(2);
  length.writeUInt16BE(body.length);
  return Buffer.concat([length, body]);
}

function packet(firstByte: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([firstByte]), remainingLength(body.length), body]);
}

function connectPacket(clientId: string, level = 4): Buffer {
  return packet(0x10, Buffer.concat([str('MQTT'), Buffer.from([level, 0x02, 0x00, 0x3c]), str(clientId)]));
}

function publishPacket(topic: string, payload: string, firstByte = 0x30): Buffer {
  const qos = (firstByte >> 1) & 0x03;
  const id = qos > 0 ? Buffer.from([0x00, 0x01]) : Buffer.alloc(0);
  return packet(firstByte, Buffer.concat([str(topic), id, Buffer.from(payload)]));
}

function subscribePacket(filter: string, qos = 1): Buffer {
  return packet(0x82, Buffer.concat([Buffer.from([0x00, 0x07]), str(filter), Buffer.from([qos])]));
}

interface Raw {
  socket: Socket;
  received: () => Buffer;
  closed: Promise<void>;
}

async function raw(port: number): Promise<Raw> {
  const socket = connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return { socket, received: () => Buffer.concat(chunks), closed };
}

/** Connects with a valid CONNECT and waits for CONNACK 0. */
async function connected(port: number, clientId: string): Promise<Raw> {
  const session = await raw(port);
  session.socket.write(connectPacket(clientId));
  await eventually(() => session.received().length >= 4);
  assert.deepEqual([...session.received().subarray(0, 4)], [0x20, 0x02, 0x00, 0x00]);
  return session;
}

async function closesWithin(session: Raw, timeoutMs = 5000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error('connection was not closed')), timeoutMs);
  });
  try {
    await Promise.race([session.closed, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

describe('MQTT server facing bad input', () => {
  let harness: MqttHarness;
  let pull: PullConsumer;

  before(async () => {
    harness = await startMqttHarness({ maxPacketBytes: 64 * 1024 });
    const publisher = await harness.connect();
    await publisher.publishAsync('keep/me', 'stored before', { qos: 1, retain: true });
    await publisher.endAsync();
    pull = new PullConsumer({ group: 'bad-input-check', nameServers: [harness.cluster.namesrvAddress] });
    await pull.start();
  });

  after(async () => {
    // The server is still up and the stored retained message is intact.
    const client = await harness.connect();
    const received = collect(client);
    await client.subscribeAsync('keep/#', { qos: 1 });
    await eventually(() => received.length === 1);
    assert.deepEqual(received[0], { topic: 'keep/me', payload: 'stored before', qos: 1, retain: true });
    await client.endAsync();
    await pull.shutdown();
    await harness.close();
  });

  async function storedCount(topic: string): Promise<number> {
    const queues = await pull.fetchQueues(topic).catch(() => []);
    let count = 0;
    for (const queue of queues) count += (await pull.maxOffset(queue)) - (await pull.minOffset(queue));
    return count;
  }

  it('closes a connection whose first packet is not CONNECT [MQTT-3.1.0-1]', async () => {
    const session = await raw(harness.server.port);
    session.socket.write(publishPacket('early/x', 'before connect'));
    await closesWithin(session);
    assert.equal(await storedCount('early'), 0);
  });

  it('closes a connection that sends garbage bytes', async () => {
    const session = await raw(harness.server.port);
    session.socket.write(Buffer.from([0x00, 0xff, 0x13, 0x37, 0xde, 0xad, 0xbe, 0xef]));
    await closesWithin(session);
  });

  it('closes a connection with a malformed Remaining Length [MQTT-2.2.3]', async () => {
    const session = await connected(harness.server.port, 'bad-length');
    session.socket.write(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x7f]));
    await closesWithin(session);
  });

  it('closes a connection announcing a packet over maxPacketBytes before reading its body', async () => {
    const session = await connected(harness.server.port, 'oversize');
    session.socket.write(Buffer.concat([Buffer.from([0x30]), remainingLength(200 * 1024 * 1024)]));
    await closesWithin(session);
  });

  it('closes a connection that publishes to a topic with a wildcard [MQTT-3.3.2-2]', async () => {
    const session = await connected(harness.server.port, 'wild-pub');
    session.socket.write(publishPacket('wildpub/+/x', 'nope'));
    await closesWithin(session);
    assert.equal(await storedCount('wildpub'), 0);
  });

  it('closes a connection that publishes with QoS 3 [MQTT-3.3.1-4]', async () => {
    const session = await connected(harness.server.port, 'qos3');
    session.socket.write(publishPacket('qosthree/x', 'nope', 0x36));
    await closesWithin(session);
    assert.equal(await storedCount('qosthree'), 0);
  });

  it('closes a connection that subscribes with a malformed filter [MQTT-4.7.1-2]', async () => {
    const session = await connected(harness.server.port, 'bad-filter');
    session.socket.write(subscribePacket('a/#/b'));
    await closesWithin(session);
  });

  it('answers SUBACK 0x80 for a filter that cannot map onto an engine topic and keeps the connection', async () => {
    const session = await connected(harness.server.port, 'unmappable');
    session.socket.write(subscribePacket('é'.repeat(40) + '/x'));
    await eventually(() => session.received().length >= 4 + 5);
    assert.deepEqual([...session.received().subarray(4, 9)], [0x90, 0x03, 0x00, 0x07, 0x80]);
    session.socket.write(Buffer.from([0xc0, 0x00]));
    await eventually(() => session.received().length >= 11);
    assert.deepEqual([...session.received().subarray(9, 11)], [0xd0, 0x00]);
    session.socket.destroy();
  });

  it('closes a connection that publishes to a reserved engine topic', async () => {
    const session = await connected(harness.server.port, 'reserved');
    session.socket.write(publishPacket('RB_MQTT_RETAINED/x', 'overwrite'));
    await closesWithin(session);
  });

  it('refuses an unsupported protocol level with CONNACK 1 [MQTT-3.1.2-2]', async () => {
    const session = await raw(harness.server.port);
    session.socket.write(connectPacket('level9', 9));
    await closesWithin(session);
    const answer = session.received();
    if (answer.length > 0) assert.deepEqual([...answer.subarray(0, 4)], [0x20, 0x02, 0x00, 0x01]);
  });
});
