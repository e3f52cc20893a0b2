/**
 * Cross-protocol routing, end to end: one embedded stack (NameServer, broker, MQTT, AMQP, HTTP with
 * the WebSocket API at /ws, front ends on one in-process network as `rocketbridge start` wires
 * them) and five clients: our Producer/PushConsumer, ali-ons, MQTT.js, amqplib and ws. Every sender
 * sends one `eu.red` and one `eu.blue` message with a binary (non-UTF-8) body and user properties
 * to its own topic; every receiver has a red and a blue subscription on all five topics. Each of
 * the 25 sender x receiver cells checks body, tag, properties (where both sides carry them), keys
 * and message id, and that the other colour's subscription did not get the message. The matrix is
 * printed before the assertions so a failure shows every cell at once.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import amqp, { type ChannelModel, type ConsumeMessage } from 'amqplib';
import mqtt, { type MqttClient } from 'mqtt';
import { AmqpServer } from '../../../src/adapters/amqp/server.js';
import { HttpServer } from '../../../src/adapters/http/server.js';
import type { MqttServer } from '../../../src/adapters/mqtt/server.js';
import { Producer, PushConsumer, type MessageExt } from '../../../src/engine/client/index.js';
import { eventually } from '../../helpers/eventually.js';
import { closeOnsDefaultProducer, Ons, type OnsConsumer, onsOptions } from '../../helpers/ali-ons.js';
import type { TestCluster } from '../client/cluster.js';
import { type EmbeddedStack, startEmbeddedStack } from './stack.js';
import { WsTestClient, type Frame } from '../websocket/ws-harness.js';

const KINDS = ['client', 'ons', 'mqtt', 'amqp', 'ws'] as const;
type Kind = (typeof KINDS)[number];
const COLOURS = ['red', 'blue'] as const;
type Colour = (typeof COLOURS)[number];

const topicOf = (sender: Kind): string => `XP_${sender}`;
const tagOf = (colour: Colour): string => `eu.${colour}`;
/** Starts with bytes that are not valid UTF-8 (0xff, a lone continuation byte, a truncated sequence). */
const bodyOf = (sender: Kind, colour: Colour): Buffer =>
  Buffer.concat([Buffer.from([0xff, 0x00, 0xfe, 0x80, 0xc3, 0x28]), Buffer.from(`${colour} from ${sender}`)]);
const propertiesOf = (sender: Kind, colour: Colour): Record<string, string> => ({
  colour,
  sender,
  note: 'grüße ✓',
});
const keyOf = (sender: Kind): string => `key-${sender}`;

/** What one receiver saw of one message, in the receiver's own terms mapped back to engine terms. */
interface Seen {
  topic: string;
  tag: string | undefined;
  body: Buffer;
  /** undefined when the receiving protocol has no place for properties (MQTT 3.1.1). */
  properties: Record<string, string> | undefined;
  /** undefined when the receiving protocol does not show keys. */
  keys: string[] | undefined;
  /** undefined when the receiving protocol does not show the engine message id. */
  msgId: string | undefined;
  /** The MQTT name as delivered (MQTT receiver only). */
  mqttName?: string;
}

/** The 20-second budget of one wait; the whole file stays well under 40 s. */
const WAIT_MS = 20_000;

describe('cross-protocol routing matrix', () => {
  let cluster: TestCluster;
  let stack: EmbeddedStack | undefined;
  let mqttServer: MqttServer;
  let amqpServer: AmqpServer;
  let http: HttpServer;
  const seen = new Map<string, Seen[]>(); // `${receiver}/${colour}` -> messages
  const sentIds = new Map<Kind, string>(); // sender -> msgId of its red message, where the sender learns it
  const onsErrors: Error[] = [];
  const closers: (() => Promise<unknown>)[] = [];

  const record = (receiver: Kind, colour: Colour, message: Seen): void => {
    const key = `${receiver}/${colour}`;
    const list = seen.get(key) ?? [];
    list.push(message);
    seen.set(key, list);
  };

  before(async () => {
    stack = await startEmbeddedStack();
    ({ cluster, mqttServer, amqpServer, http } = stack);
  });

  after(async () => {
    // Clients first (reverse order of creation), then the servers, then the engine.
    for (const close of closers.reverse()) await close().catch(() => undefined);
    await closeOnsDefaultProducer();
    await stack?.close();
  });

  it('delivers every sender x receiver pair with body, tag, properties and ids, and never to the other tag', async (t) => {
    const nameServers = [cluster.namesrvAddress];
    const topics = KINDS.map(topicOf);

    // Topics exist before anyone subscribes: ali-ons does not create them, and AMQP binds to exchanges.
    const producer = new Producer({ group: 'xp-producer', nameServers });
    await producer.start();
    closers.push(() => producer.shutdown());
    for (const topic of topics) await producer.send({ topic, tags: 'init', body: Buffer.from('create') });
    await eventually(
      async () => {
        for (const topic of topics) if ((await producer.fetchPublishQueues(topic)).length === 0) return false;
        return true;
      },
      { timeoutMs: 5000 },
    );

    // --- receivers: a red and a blue subscription per protocol, on every topic ---
    for (const colour of COLOURS) {
      const consumer = new PushConsumer({
        group: `xp-client-${colour}`,
        nameServers,
        consumeFromWhere: 'FIRST_OFFSET',
        rebalanceIntervalMs: 300,
        suspendTimeoutMs: 1000,
        pullRetryDelayMs: 200,
        shutdownTimeoutMs: 200,
      });
      for (const topic of topics) {
        consumer.subscribe(topic, tagOf(colour), (messages: MessageExt[]) => {
          for (const message of messages) {
            record('client', colour, {
              topic: message.topic,
              tag: message.tags,
              body: message.body,
              properties: message.properties,
              keys: message.keys,
              msgId: message.msgId,
            });
          }
          return 'CONSUME_SUCCESS';
        });
      }
      await consumer.start();
      closers.push(() => consumer.shutdown());
    }

    const onsCommon = onsOptions(cluster.namesrvAddress);
    const onsConsumers: OnsConsumer[] = [];
    for (const colour of COLOURS) {
      const consumer = new Ons.Consumer({
        ...onsCommon,
        consumerGroup: `xp-ons-${colour}`,
        instanceName: `xp-${colour}`,
        consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET',
      });
      consumer.on('error', (err) => onsErrors.push(err));
      for (const topic of topics) {
        consumer.subscribe(topic, tagOf(colour), async (message) => {
          record('ons', colour, {
            topic: message.topic,
            tag: message.tags,
            body: message.body,
            properties: message.properties,
            keys: message.keys === undefined ? [] : message.keys.split(' '),
            // ali-ons' msgId is the offset id; the producer's unique id (what RocketMQ's Java
            // client reports as msgId) is the UNIQ_KEY property, absent for ali-ons' own sends.
            msgId: message.properties['UNIQ_KEY'] ?? message.msgId,
          });
        });
      }
      onsConsumers.push(consumer);
      closers.push(() => consumer.close());
    }

    const mqttUrl = `mqtt://127.0.0.1:${mqttServer.port}`;
    const connectMqtt = async (clientId: string): Promise<MqttClient> => {
      const client = mqtt.connect(mqttUrl, { clientId, reconnectPeriod: 0, connectTimeout: 5000 });
      closers.push(() => client.endAsync(true));
      await new Promise<void>((resolve, reject) => {
        client.once('connect', () => resolve());
        client.once('error', reject);
      });
      return client;
    };
    for (const colour of COLOURS) {
      const client = await connectMqtt(`xp-mqtt-${colour}`);
      client.on('message', (name, payload) => {
        const [topic = '', ...levels] = name.split('/');
        record('mqtt', colour, {
          topic,
          tag: levels.length === 0 ? undefined : levels.join('.'),
          body: Buffer.from(payload),
          properties: undefined,
          keys: undefined,
          msgId: undefined,
          mqttName: name,
        });
      });
      // A topic level wildcard for red, the exact name for blue: both map to tag expressions.
      const filter = colour === 'red' ? '+/red' : 'eu/blue';
      await client.subscribeAsync(
        topics.map((topic) => `${topic}/${filter}`),
        { qos: 1 },
      );
    }

    const amqpConnection: ChannelModel = await amqp.connect(`amqp://guest:guest@127.0.0.1:${amqpServer.port}`);
    closers.push(() => amqpConnection.close());
    const amqpChannel = await amqpConnection.createConfirmChannel();
    for (const topic of topics) await amqpChannel.assertExchange(topic, 'topic', { durable: true });
    for (const colour of COLOURS) {
      const { queue } = await amqpChannel.assertQueue(`xp-amqp-${colour}`, { durable: true });
      // Routing patterns: `*` (one word) for red, `#` (any words) for blue.
      const pattern = colour === 'red' ? '*.red' : '#.blue';
      for (const topic of topics) await amqpChannel.bindQueue(queue, topic, pattern);
      await amqpChannel.consume(
        queue,
        (message: ConsumeMessage | null) => {
          if (message === null) return;
          const headers: Record<string, string> = {};
          for (const [name, value] of Object.entries(message.properties.headers ?? {})) headers[name] = String(value);
          record('amqp', colour, {
            topic: message.fields.exchange,
            tag: message.fields.routingKey,
            body: message.content,
            properties: headers,
            keys: message.properties.messageId === undefined ? [] : [String(message.properties.messageId)],
            msgId: undefined,
          });
        },
        { noAck: true },
      );
    }

    const ws = await WsTestClient.open(`ws://127.0.0.1:${http.port}/ws`);
    closers.push(() => ws.end());
    assert.equal((await ws.request({ type: 'hello' })).type, 'welcome');
    const wsSubscription = new Map<string, Colour>();
    for (const colour of COLOURS) {
      for (const topic of topics) {
        const subscriptionId = `${colour}-${topic}`;
        wsSubscription.set(subscriptionId, colour);
        const answer = await ws.request({
          type: 'subscribe',
          subscriptionId,
          topic,
          tag: tagOf(colour),
          from: 'first',
          credit: 100,
        });
        assert.equal(answer.type, 'subscribed', JSON.stringify(answer));
      }
    }
    ws.ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) return;
      const frame = JSON.parse(data.toString('utf8')) as Frame;
      if (frame.type !== 'message') return;
      const colour = wsSubscription.get(String(frame['subscriptionId']));
      if (colour === undefined) return;
      ws.send({ type: 'ack', messageId: frame['messageId'] });
      record('ws', colour, {
        topic: String(frame['topic']),
        tag: frame['tag'] as string | undefined,
        body:
          typeof frame['bodyBase64'] === 'string'
            ? Buffer.from(frame['bodyBase64'], 'base64')
            : Buffer.from(String(frame['body']), 'utf8'),
        properties: frame['properties'] as Record<string, string>,
        keys: frame['keys'] as string[],
        msgId: String(frame['msgId']),
      });
    });

    await Promise.all(onsConsumers.map((consumer) => consumer.ready()));

    // --- senders: red first, then blue, each to its own topic ---
    const onsProducer = new Ons.Producer({ ...onsCommon, producerGroup: 'xp-ons-producer' });
    onsProducer.on('error', (err) => onsErrors.push(err));
    closers.push(() => onsProducer.close());
    await onsProducer.ready();
    const mqttSender = await connectMqtt('xp-mqtt-sender');
    const amqpSendChannel = await amqpConnection.createConfirmChannel();

    for (const colour of COLOURS) {
      const client = await producer.send({
        topic: topicOf('client'),
        tags: tagOf(colour),
        keys: [keyOf('client')],
        properties: propertiesOf('client', colour),
        body: bodyOf('client', colour),
      });
      if (colour === 'red') sentIds.set('client', client.msgId);

      const onsMessage = new Ons.Message(topicOf('ons'), tagOf(colour), bodyOf('ons', colour));
      onsMessage.keys = [keyOf('ons')];
      Object.assign(onsMessage.properties, propertiesOf('ons', colour));
      const ons = await onsProducer.send(onsMessage);
      assert.equal(ons.sendStatus, 'SEND_OK');
      if (colour === 'red') sentIds.set('ons', ons.msgId);

      await mqttSender.publishAsync(`${topicOf('mqtt')}/eu/${colour}`, bodyOf('mqtt', colour), { qos: 1 });

      amqpSendChannel.publish(topicOf('amqp'), tagOf(colour), bodyOf('amqp', colour), {
        headers: propertiesOf('amqp', colour),
        messageId: keyOf('amqp'),
        contentType: 'application/octet-stream',
      });
      await amqpSendChannel.waitForConfirms();

      const produced = await ws.request({
        type: 'produce',
        topic: topicOf('ws'),
        tag: tagOf(colour),
        keys: [keyOf('ws')],
        properties: propertiesOf('ws', colour),
        bodyBase64: bodyOf('ws', colour).toString('base64'),
      });
      assert.equal(produced.type, 'produced', JSON.stringify(produced));
      if (colour === 'red') sentIds.set('ws', String(produced['msgId']));
    }

    // --- wait until every subscription has its 5 messages ---
    const arrived = (receiver: Kind, colour: Colour, sender: Kind): Seen[] =>
      (seen.get(`${receiver}/${colour}`) ?? []).filter((message) => message.topic === topicOf(sender));
    const pending = (): string[] => {
      const missing: string[] = [];
      for (const receiver of KINDS) {
        for (const colour of COLOURS) {
          for (const sender of KINDS) {
            if (arrived(receiver, colour, sender).length === 0) missing.push(`${sender}->${receiver}/${colour}`);
          }
        }
      }
      return missing;
    };
    await eventually(() => pending().length === 0, { timeoutMs: WAIT_MS, intervalMs: 50 }).catch(() => undefined);

    // --- judge every cell ---
    const cells = new Map<string, string[]>();
    for (const sender of KINDS) {
      for (const receiver of KINDS) {
        cells.set(`${sender}->${receiver}`, judge(sender, receiver, arrived, sentIds));
      }
    }
    // The same message has one id whichever receiver shows it.
    for (const sender of KINDS) {
      const ids = new Set(
        KINDS.flatMap((receiver) => arrived(receiver, 'red', sender))
          .map((message) => message.msgId)
          .filter((id) => id !== undefined),
      );
      if (ids.size > 1) cells.get(`${sender}->client`)?.push(`msgIds differ across receivers: ${[...ids].join(', ')}`);
    }
    for (const line of formatMatrix(cells)) t.diagnostic(line);
    // One subtest per cell, so the report counts the 25 pairs.
    for (const [cell, problems] of cells) {
      await t.test(`${cell.replace('->', ' to ')} keeps body, tag, properties and ids`, () => {
        assert.deepEqual(problems, []);
      });
    }

    const failures = [...cells].filter(([, problems]) => problems.length > 0);
    assert.deepEqual(
      failures.map(([cell, problems]) => `${cell}: ${problems.join('; ')}`),
      [],
    );
    const unexpected = onsErrors.map((err) => err.message).filter((message) => !message.includes('%RETRY%'));
    assert.deepEqual(unexpected, []);
  });

  it('delivers an empty body from MQTT, AMQP or WebSocket empty over MQTT, AMQP and WebSocket', async () => {
    // The engine refuses empty bodies, so each front end stores one placeholder byte and a marker
    // (mqtt.empty, amqp.empty-body, ws.empty); every front end must honour every marker.
    const senders = ['mqtt', 'amqp', 'ws'] as const;
    const topics = senders.map((sender) => `XE_${sender}`);
    const tag = 'eu.void';
    const markers = { mqtt: 'mqtt.empty', amqp: 'amqp.empty-body', ws: 'ws.empty' } as const;
    const nameServers = [cluster.namesrvAddress];
    const producer = new Producer({ group: 'xe-producer', nameServers });
    await producer.start();
    closers.push(() => producer.shutdown());
    for (const topic of topics) await producer.send({ topic, tags: 'init', body: Buffer.from('create') });
    await eventually(
      async () => {
        for (const topic of topics) if ((await producer.fetchPublishQueues(topic)).length === 0) return false;
        return true;
      },
      { timeoutMs: 5000 },
    );
    const got: { receiver: string; topic: string; body: Buffer; properties?: Record<string, string> }[] = [];

    const consumer = new PushConsumer({
      group: 'xe-client',
      nameServers,
      consumeFromWhere: 'FIRST_OFFSET',
      rebalanceIntervalMs: 300,
      suspendTimeoutMs: 1000,
      pullRetryDelayMs: 200,
      shutdownTimeoutMs: 200,
    });
    for (const topic of topics) {
      consumer.subscribe(topic, tag, (messages: MessageExt[]) => {
        for (const message of messages) {
          got.push({ receiver: 'client', topic: message.topic, body: message.body, properties: message.properties });
        }
        return 'CONSUME_SUCCESS';
      });
    }
    await consumer.start();
    closers.push(() => consumer.shutdown());

    const mqttUrl = `mqtt://127.0.0.1:${mqttServer.port}`;
    const mqttClient = await mqtt.connectAsync(mqttUrl, { clientId: 'xe-mqtt', reconnectPeriod: 0 });
    closers.push(() => mqttClient.endAsync(true));
    mqttClient.on('message', (name, payload) => {
      got.push({ receiver: 'mqtt', topic: name.split('/')[0] ?? '', body: Buffer.from(payload) });
    });
    await mqttClient.subscribeAsync(
      topics.map((topic) => `${topic}/eu/void`),
      { qos: 1 },
    );

    const connection = await amqp.connect(`amqp://guest:guest@127.0.0.1:${amqpServer.port}`);
    closers.push(() => connection.close());
    const channel = await connection.createConfirmChannel();
    const { queue } = await channel.assertQueue('xe-amqp', { durable: true });
    for (const topic of topics) {
      await channel.assertExchange(topic, 'topic', { durable: true });
      await channel.bindQueue(queue, topic, tag);
    }
    await channel.consume(
      queue,
      (message) => {
        if (message !== null) got.push({ receiver: 'amqp', topic: message.fields.exchange, body: message.content });
      },
      { noAck: true },
    );

    const ws = await WsTestClient.open(`ws://127.0.0.1:${http.port}/ws`);
    closers.push(() => ws.end());
    await ws.request({ type: 'hello' });
    for (const topic of topics) {
      const answer = await ws.request({ type: 'subscribe', topic, tag, from: 'first', credit: 10 });
      assert.equal(answer.type, 'subscribed', JSON.stringify(answer));
    }

    await mqttClient.publishAsync(`XE_mqtt/eu/void`, Buffer.alloc(0), { qos: 1 });
    channel.publish('XE_amqp', tag, Buffer.alloc(0));
    await channel.waitForConfirms();
    assert.equal((await ws.request({ type: 'produce', topic: 'XE_ws', tag, body: '' })).type, 'produced');

    const wsBodies = (): { topic: string; body: Buffer }[] =>
      ws.messages().map((frame) => ({
        topic: String(frame['topic']),
        body:
          typeof frame['bodyBase64'] === 'string'
            ? Buffer.from(frame['bodyBase64'], 'base64')
            : Buffer.from(String(frame['body']), 'utf8'),
      }));
    await eventually(() => got.length === 9 && wsBodies().length === 3, { timeoutMs: WAIT_MS, intervalMs: 50 }).catch(
      () => undefined,
    );
    const view = [
      ...got.map((each) => `${each.topic.slice(3)}->${each.receiver}:${each.body.toString('hex')}`),
      ...wsBodies().map((each) => `${each.topic.slice(3)}->ws:${each.body.toString('hex')}`),
    ].sort();
    const expected: string[] = [];
    for (const sender of senders) {
      expected.push(`${sender}->amqp:`, `${sender}->client:00`, `${sender}->mqtt:`, `${sender}->ws:`);
    }
    assert.deepEqual(view, expected.sort());
    // RocketMQ receivers see the placeholder byte and the sender's marker.
    for (const sender of senders) {
      const native = got.find((each) => each.receiver === 'client' && each.topic === `XE_${sender}`);
      assert.equal(native?.properties?.[markers[sender]], '1');
    }
  });
});

/** Problems of one sender -> receiver cell (empty = the cell passed). */
function judge(
  sender: Kind,
  receiver: Kind,
  arrived: (receiver: Kind, colour: Colour, sender: Kind) => Seen[],
  sentIds: Map<Kind, string>,
): string[] {
  const problems: string[] = [];
  for (const colour of COLOURS) {
    const got = arrived(receiver, colour, sender);
    const mine = got.filter((message) => message.tag === tagOf(colour));
    if (mine.length !== 1) problems.push(`${colour}: ${mine.length} ${tagOf(colour)} messages, expected 1`);
    const wrong = got.filter((message) => message.tag !== tagOf(colour));
    if (wrong.length > 0) problems.push(`${colour} subscription got tags ${wrong.map((m) => m.tag).join(',')}`);
    const message = mine[0];
    if (message === undefined) continue;
    if (!message.body.equals(bodyOf(sender, colour))) {
      problems.push(`${colour} body ${message.body.toString('hex')} != ${bodyOf(sender, colour).toString('hex')}`);
    }
    if (message.body.toString('hex').startsWith('ff00fe80c328') === false) problems.push('binary prefix lost');
    if (receiver === 'mqtt' && message.mqttName !== `${topicOf(sender)}/eu/${colour}`) {
      problems.push(`MQTT name ${message.mqttName ?? '?'}`);
    }
    if (message.properties !== undefined) {
      // MQTT 3.1.1 publishes carry no user properties; the MQTT name and QoS travel as mqtt.*.
      const expected: Record<string, string> =
        sender === 'mqtt'
          ? { 'mqtt.topic': `${topicOf(sender)}/eu/${colour}`, 'mqtt.qos': '1' }
          : propertiesOf(sender, colour);
      for (const [name, value] of Object.entries(expected)) {
        if (message.properties[name] !== value) {
          problems.push(`${colour} property ${name}=${JSON.stringify(message.properties[name])}`);
        }
      }
    }
    if (message.keys !== undefined && sender !== 'mqtt') {
      // An AMQP receiver shows keys only as the message-id an AMQP sender set.
      const showsKey = receiver !== 'amqp' || sender === 'amqp';
      if (showsKey && !message.keys.includes(keyOf(sender))) problems.push(`keys ${JSON.stringify(message.keys)}`);
    }
    const sentId = sentIds.get(sender);
    if (colour === 'red' && sentId !== undefined && message.msgId !== undefined && message.msgId !== sentId) {
      problems.push(`msgId ${message.msgId} != sent ${sentId}`);
    }
  }
  return problems;
}

/** The matrix as lines of text, for the test output (TAP diagnostics). */
function formatMatrix(cells: Map<string, string[]>): string[] {
  const width = 8;
  const pad = (text: string): string => text.padEnd(width);
  const lines = [`${pad('from/to')}${KINDS.map(pad).join('')}`];
  for (const sender of KINDS) {
    lines.push(
      pad(sender) + KINDS.map((receiver) => pad(cells.get(`${sender}->${receiver}`)?.length ? 'FAIL' : 'ok')).join(''),
    );
  }
  return ['cross-protocol matrix, sender (row) x receiver (column), red and blue per cell:', ...lines];
}
