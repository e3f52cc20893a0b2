/**
 * Test harness for the MQTT front end: a real NameServer and broker (client/cluster.ts), an MQTT
 * server on an ephemeral port talking to them over TCP, and helpers around the `mqtt` client.
 */
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { type MqttServer, type MqttServerOptions, startMqttServer } from '../../../src/adapters/mqtt/server.js';
import { restartablePort } from '../../helpers/ports.js';
import { startCluster, type TestCluster, type TransportKind } from '../client/cluster.js';

export interface MqttHarness {
  cluster: TestCluster;
  server: MqttServer;
  url: string;
  /** Connects a client and waits for CONNACK. */
  connect(options?: IClientOptions): Promise<MqttClient>;
  /** Closes the MQTT server and starts a new one on the same engine (same port). */
  restartServer(): Promise<void>;
  close(): Promise<void>;
}

export const FAST_SERVER_OPTIONS: Partial<MqttServerOptions> = {
  pollSuspendMs: 1000,
  topicRefreshIntervalMs: 300,
  heartbeatIntervalMs: 60_000,
};

/** Starts a cluster and an MQTT server reaching it over TCP, or in process (`kind`). */
export async function startMqttHarness(
  overrides: Partial<MqttServerOptions> = {},
  kind: TransportKind = 'tcp',
): Promise<MqttHarness> {
  const cluster = await startCluster();
  const clients = new Set<MqttClient>();
  const mqttPort = await restartablePort();
  const serverOptions = (): MqttServerOptions => ({
    port: mqttPort,
    host: '127.0.0.1',
    nameServers: [cluster.namesrvAddress],
    ...cluster.clientTransport(kind),
    ...FAST_SERVER_OPTIONS,
    ...overrides,
  });
  let server = await startMqttServer(serverOptions());
  const harness: MqttHarness = {
    cluster,
    server,
    url: `mqtt://127.0.0.1:${server.port}`,
    async connect(options = {}) {
      const client = mqtt.connect(harness.url, { reconnectPeriod: 0, connectTimeout: 5000, ...options });
      clients.add(client);
      await new Promise<void>((resolve, reject) => {
        client.once('connect', () => resolve());
        client.once('error', reject);
        client.once('close', () => reject(new Error('closed before CONNACK')));
      });
      return client;
    },
    async restartServer() {
      await server.close();
      server = await startMqttServer(serverOptions());
      harness.server = server;
    },
    async close() {
      await Promise.all([...clients].map((client) => client.endAsync(true).catch(() => undefined)));
      await server.close();
      await cluster.close();
    },
  };
  return harness;
}

/** Collects messages a client receives. */
export function collect(client: MqttClient): { topic: string; payload: string; qos: number; retain: boolean }[] {
  const received: { topic: string; payload: string; qos: number; retain: boolean }[] = [];
  client.on('message', (topic, payload, packet) => {
    received.push({ topic, payload: payload.toString('utf8'), qos: packet.qos, retain: packet.retain });
  });
  return received;
}
