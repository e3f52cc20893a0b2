/**
 * The protocol front ends (MQTT, AMQP, WebSocket API, HTTP dashboard and metrics), declared once and
 * started the same way by `rocketbridge start` (in-process transport to the local engine) and by
 * `rocketbridge gateway` (TCP to a remote cluster).
 */
import type { Argv } from 'yargs';
import { AmqpServer } from '../adapters/amqp/server.js';
import type { Listener } from '../adapters/http/dashboard.js';
import { HttpServer } from '../adapters/http/server.js';
import { startMqttServer } from '../adapters/mqtt/server.js';
import { createWebSocketHandler, DEMO_URL_PATH, webSocketAssets } from '../adapters/websocket/index.js';
import { AdminClient } from '../engine/client/admin-client.js';
import type { Transport } from '../engine/client/transport.js';
import { createLogger } from '../engine/common/logger.js';
import { checkPort } from './broker-options.js';

const log = createLogger('front-ends');

export interface FrontEndArgs {
  host: string;
  'http-port': number;
  'amqp-port': number;
  'amqp-user': string[];
  'mqtt-port': number;
  'mqtt-user': string[];
}

export function withFrontEndOptions<T>(yargs: Argv<T>): Argv<T & FrontEndArgs> {
  return yargs
    .option('host', { type: 'string', default: '0.0.0.0', describe: 'Address every listener binds' })
    .option('http-port', {
      type: 'number',
      default: 8080,
      describe: 'HTTP port: demo at /, dashboard at /dashboard, WebSocket API at /ws, MQTT at /mqtt, /metrics',
    })
    .option('amqp-port', { type: 'number', default: 5672, describe: 'AMQP 0-9-1 TCP port' })
    .option('amqp-user', {
      type: 'string',
      array: true,
      default: ['guest:guest'],
      describe: 'AMQP user as name:password; repeat for more users',
    })
    .option('mqtt-port', {
      type: 'number',
      default: 1883,
      describe: 'MQTT TCP port (also at ws://host:http-port/mqtt)',
    })
    .option('mqtt-user', {
      type: 'string',
      array: true,
      default: [] as string[],
      describe: 'MQTT user as name:password; repeat for more; without any, anonymous clients are allowed',
    })
    .check((args) => {
      for (const flag of ['http-port', 'amqp-port', 'mqtt-port'] as const) checkPort(flag, args[flag]);
      for (const flag of ['amqp-user', 'mqtt-user'] as const) {
        for (const user of args[flag]) {
          if (!user.includes(':')) throw new Error(`--${flag} must be name:password, got "${user}"`);
        }
      }
      return true;
    }) as Argv<T & FrontEndArgs>;
}

export interface FrontEnds {
  close(): Promise<void>;
}

/**
 * Starts every front end against the engine reached through `nameServers`. `newTransport` gives each
 * front end its own client transport (one transport is one client connection to the broker).
 * `listeners` already holds the process's other listeners and gains the front ends' own.
 */
export async function startFrontEnds(
  args: FrontEndArgs,
  nameServers: string[],
  newTransport: () => Transport,
  listeners: Listener[],
): Promise<FrontEnds> {
  const amqp = new AmqpServer({
    host: args.host,
    port: args['amqp-port'],
    nameServers,
    transport: newTransport(),
    users: args['amqp-user'].map(parseUser),
  });
  await amqp.listen();
  listeners.push({ protocol: 'AMQP 0-9-1', address: `${args.host}:${amqp.port}` });
  log.info(`AMQP listening on ${args.host}:${amqp.port}`);

  const mqtt = await startMqttServer({
    host: args.host,
    port: args['mqtt-port'],
    nameServers,
    transport: newTransport(),
    users: args['mqtt-user'].map(parseUser),
  });
  listeners.push({ protocol: 'MQTT 3.1.1', address: `${args.host}:${mqtt.port}` });
  log.info(`MQTT listening on ${args.host}:${mqtt.port}`);

  const admin = new AdminClient({ nameServers, transport: newTransport() });
  await admin.start();
  const http = new HttpServer({ host: args.host, port: args['http-port'], admin, listeners: () => listeners });
  http.handleUpgrade('/mqtt', (request, socket, head) => mqtt.handleUpgrade(request, socket, head));
  const webSocket = createWebSocketHandler({ nameServers, transport: newTransport() });
  http.handleUpgrade('/ws', (request, socket, head) => webSocket.handleUpgrade(request, socket, head));
  for (const [path, asset] of webSocketAssets()) http.serveAsset(path, asset);
  // The first page a visitor sees is the live demo; operators find the dashboard one link away.
  const demo = webSocketAssets().get(DEMO_URL_PATH);
  if (demo !== undefined) http.serveAsset('/', demo);
  await http.listen();
  const httpAddress = `${args.host}:${http.port}`;
  listeners.push({ protocol: 'MQTT over WebSocket', address: `ws://${httpAddress}/mqtt` });
  listeners.push({ protocol: 'WebSocket API (demo at /demo)', address: `ws://${httpAddress}/ws` });
  listeners.push({ protocol: 'HTTP (dashboard, /metrics)', address: httpAddress });
  log.info(`HTTP listening on ${httpAddress}: demo at /, dashboard at /dashboard, WebSocket API at /ws, MQTT at /mqtt`);

  return {
    async close() {
      await http.close();
      await webSocket.close();
      await amqp.close();
      await mqtt.close();
      await admin.shutdown();
    },
  };
}

/** "name:password" -> a user; the colon was checked by the option validation. */
function parseUser(text: string): { username: string; password: string } {
  const colon = text.indexOf(':');
  return { username: text.slice(0, colon), password: text.slice(colon + 1) };
}
