/**
 * Test harness for the broker suites: a real NameServer and Broker on 127.0.0.1 port 0 in a temp
 * directory, a RemotingClient talking to them over TCP, and builders for the requests the suites send.
 */
import { type BrokerConfig, testBrokerConfig } from '../../../src/engine/broker/broker-config.js';
import { Broker } from '../../../src/engine/broker/broker.js';
import { encodeProperties, type Properties } from '../../../src/engine/common/properties.js';
import { ProcessorRegistry } from '../../../src/engine/remoting/channel.js';
import { RequestCode } from '../../../src/engine/remoting/codes.js';
import { createRequest, type RemotingCommand } from '../../../src/engine/remoting/command.js';
import { RemotingClient } from '../../../src/engine/remoting/tcp-client.js';
import { NameServer } from '../../../src/engine/namesrv/name-server.js';
import { makeTempDir } from '../../helpers/temp-dir.js';

export const REQUEST_TIMEOUT_MS = 5000;

export interface BrokerHarness {
  dir: string;
  nameServer: NameServer;
  broker: Broker;
  client: RemotingClient;
  /** Sends a request to the broker. */
  call(request: RemotingCommand, timeoutMs?: number): Promise<RemotingCommand>;
  /** Stops the broker and starts a new one on the same directory (and port 0 again). */
  restart(overrides?: Partial<BrokerConfig>): Promise<void>;
  close(): Promise<void>;
}

export async function startHarness(overrides: Partial<BrokerConfig> = {}): Promise<BrokerHarness> {
  const { dir, cleanup } = await makeTempDir('rb-broker-');
  const nameServer = new NameServer({ host: '127.0.0.1', port: 0 });
  await nameServer.start();
  const configFor = (more: Partial<BrokerConfig>): BrokerConfig =>
    testBrokerConfig(dir, { namesrvAddresses: [nameServer.address], ...overrides, ...more });
  let broker = new Broker(configFor({}));
  await broker.start();
  const client = new RemotingClient({ registry: new ProcessorRegistry() });
  const harness: BrokerHarness = {
    dir,
    nameServer,
    get broker() {
      return broker;
    },
    client,
    call: (request, timeoutMs = REQUEST_TIMEOUT_MS) => client.invoke(broker.address, request, timeoutMs),
    restart: async (more = {}) => {
      await broker.shutdown();
      broker = new Broker(configFor(more));
      await broker.start();
    },
    close: async () => {
      await client.close();
      await broker.shutdown();
      await nameServer.shutdown();
      await cleanup();
    },
  };
  return harness;
}

export interface SendOptions {
  tags?: string;
  keys?: string;
  queueId?: number;
  properties?: Properties;
  producerGroup?: string;
  defaultTopic?: string;
}

function sendProperties(options: SendOptions): string {
  const properties: Properties = { ...options.properties };
  if (options.tags !== undefined) properties['TAGS'] = options.tags;
  if (options.keys !== undefined) properties['KEYS'] = options.keys;
  properties['WAIT'] = 'true';
  return encodeProperties(properties);
}

/** SEND_MESSAGE_V2 with the abbreviated header, as the Java client and ali-ons send it. */
export function sendV2Request(topic: string, body: Buffer, options: SendOptions = {}): RemotingCommand {
  return createRequest(
    RequestCode.SendMessageV2,
    {
      a: options.producerGroup ?? 'test-producer',
      b: topic,
      c: options.defaultTopic ?? 'TBW102',
      d: '4',
      e: String(options.queueId ?? -1),
      f: '0',
      g: String(Date.now()),
      h: '0',
      i: sendProperties(options),
      j: '0',
      k: 'false',
    },
    body,
  );
}

/** SEND_MESSAGE with long header names, as the Go client sends it. */
export function sendV1Request(topic: string, body: Buffer, options: SendOptions = {}): RemotingCommand {
  return createRequest(
    RequestCode.SendMessage,
    {
      producerGroup: options.producerGroup ?? 'test-producer',
      topic,
      defaultTopic: options.defaultTopic ?? 'TBW102',
      defaultTopicQueueNums: '4',
      queueId: String(options.queueId ?? -1),
      sysFlag: '0',
      bornTimestamp: String(Date.now()),
      flag: '0',
      properties: sendProperties(options),
      reconsumeTimes: '0',
      unitMode: 'false',
    },
    body,
  );
}

/** One message of a batch body in MessageDecoder.encodeMessage's layout. */
export function encodeBatchEntry(body: Buffer, properties: Properties, flag = 0): Buffer {
  const propertiesBytes = Buffer.from(encodeProperties(properties), 'utf8');
  const totalSize = 4 + 4 + 4 + 4 + 4 + body.length + 2 + propertiesBytes.length;
  const entry = Buffer.alloc(totalSize);
  let at = entry.writeInt32BE(totalSize, 0);
  at = entry.writeInt32BE(0, at);
  at = entry.writeInt32BE(0, at);
  at = entry.writeInt32BE(flag, at);
  at = entry.writeInt32BE(body.length, at);
  at += body.copy(entry, at);
  at = entry.writeUInt16BE(propertiesBytes.length, at);
  propertiesBytes.copy(entry, at);
  return entry;
}

export function sendBatchRequest(topic: string, entries: Buffer[], queueId = -1): RemotingCommand {
  const request = sendV2Request(topic, Buffer.concat(entries), { queueId });
  request.code = RequestCode.SendBatchMessage;
  request.extFields['m'] = 'true';
  return request;
}

export interface PullOptions {
  group?: string;
  queueOffset?: number;
  maxMsgNums?: number;
  /** PullSysFlag bits; default: subscription flag only. */
  sysFlag?: number;
  subscription?: string;
  suspendTimeoutMillis?: number;
  commitOffset?: number;
  subVersion?: string;
}

export function pullRequest(topic: string, queueId: number, options: PullOptions = {}): RemotingCommand {
  const fields: Record<string, string> = {
    consumerGroup: options.group ?? 'test-consumer',
    topic,
    queueId: String(queueId),
    queueOffset: String(options.queueOffset ?? 0),
    maxMsgNums: String(options.maxMsgNums ?? 32),
    sysFlag: String(options.sysFlag ?? 4),
    commitOffset: String(options.commitOffset ?? 0),
    suspendTimeoutMillis: String(options.suspendTimeoutMillis ?? 0),
    subVersion: options.subVersion ?? '0',
    expressionType: 'TAG',
  };
  if (options.subscription !== undefined) fields['subscription'] = options.subscription;
  else fields['subscription'] = '*';
  return createRequest(RequestCode.PullMessage, fields);
}

export function createTopicRequest(topic: string, queueNums: number, perm = 6): RemotingCommand {
  return createRequest(RequestCode.UpdateAndCreateTopic, {
    topic,
    defaultTopic: 'TBW102',
    readQueueNums: String(queueNums),
    writeQueueNums: String(queueNums),
    perm: String(perm),
    topicFilterType: 'SINGLE_TAG',
    topicSysFlag: '0',
    order: 'false',
  });
}

/** HEART_BEAT for one consumer group subscribed to one topic; subVersion as JSON number text. */
export function heartbeatRequest(
  clientID: string,
  group: string,
  topic: string,
  subString = '*',
  subVersion = String(Date.now()),
): RemotingCommand {
  const body = {
    clientID,
    producerDataSet: [{ groupName: 'CLIENT_INNER_PRODUCER' }],
    consumerDataSet: [
      {
        groupName: group,
        consumeType: 'CONSUME_PASSIVELY',
        messageModel: 'CLUSTERING',
        consumeFromWhere: 'CONSUME_FROM_LAST_OFFSET',
        subscriptionDataSet: [
          {
            topic,
            subString,
            tagsSet: [],
            codeSet: [],
            subVersion: -1,
            expressionType: 'TAG',
            classFilterMode: false,
          },
        ],
        unitMode: false,
      },
    ],
  };
  // Written by hand so that a nanosecond subVersion (the Go client's) reaches the broker exactly.
  const text = JSON.stringify(body).replace('"subVersion":-1', `"subVersion":${subVersion}`);
  return createRequest(RequestCode.HeartBeat, {}, Buffer.from(text));
}

export function remarkOf(response: RemotingCommand): string {
  return response.remark ?? '';
}
