/**
 * The npm RocketMQ client `ali-ons` (CommonJS, untyped) as the tests use it: the types of the parts
 * they touch, client options pointed at a test NameServer, and closing its process-wide producer.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** A message as an ali-ons consumer hands it over. */
export interface OnsReceivedMessage {
  msgId: string;
  topic: string;
  tags: string;
  keys: string | undefined;
  body: Buffer;
  reconsumeTimes: number;
  queueId: number;
  properties: Record<string, string>;
}

/** A message built with `new Ons.Message(...)` for sending. */
export interface OnsOutgoingMessage {
  keys: string[];
  properties: Record<string, string>;
  delayTimeLevel: number;
  shardingKey: string;
}

export interface OnsClient {
  ready(): Promise<void>;
  close(): Promise<void>;
  on(event: 'error', listener: (err: Error) => void): void;
}
export interface OnsProducer extends OnsClient {
  send(
    message: OnsOutgoingMessage,
  ): Promise<{ sendStatus: string; msgId: string; messageQueue: { queueId: number | string } }>;
}
export interface OnsConsumer extends OnsClient {
  subscribe(topic: string, expression: string, handler: (message: OnsReceivedMessage) => Promise<void>): void;
}
interface OnsModule {
  Producer: new (options: Record<string, unknown>) => OnsProducer;
  Consumer: new (options: Record<string, unknown>) => OnsConsumer;
  Message: new (topic: string, tags: string, body: string | Buffer) => OnsOutgoingMessage;
}

export const Ons = require('ali-ons') as OnsModule;
const OnsProducerClass = require('ali-ons/lib/producer/mq_producer') as { defaultProducer?: OnsClient };

/** Silences ali-ons' console logger; failures still reach the tests through assertions. */
const quietLogger = { info() {}, warn() {}, error() {}, debug() {} };

/** Options every ali-ons client in a test shares (add producerGroup or consumerGroup). */
export function onsOptions(namesrvAddress: string): Record<string, unknown> {
  return {
    // ali-ons requires an HTTP client, used only to look up NameServers when nameSrv is not given.
    httpclient: {},
    nameSrv: namesrvAddress,
    accessKeyId: 'dummy',
    accessKeySecret: 'dummy',
    logger: quietLogger,
    // ali-ons' scheduled loops end only after their current sleep: keep every interval short so
    // that the process can exit soon after close().
    rebalanceInterval: 1000,
    pollNameServerInteval: 1000,
    heartbeatBrokerInterval: 1000,
    persistConsumerOffsetInterval: 500,
    brokerSuspendMaxTimeMillis: 2000,
    consumerTimeoutMillisWhenSuspend: 5000,
  };
}

/** ali-ons keeps one producer per process that nothing closes; close it so the test process can exit. */
export async function closeOnsDefaultProducer(): Promise<void> {
  await OnsProducerClass.defaultProducer?.close();
}
