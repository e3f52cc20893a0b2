/**
 * `rocketbridge start`: everything in one process. A NameServer and a broker with data under
 * `--data`, both bound into one in-process network so that the front ends reach them without a TCP
 * hop, while the remoting ports stay open for RocketMQ clients; the HTTP listener serves the
 * dashboard and /metrics.
 */
import type { CommandModule } from 'yargs';
import { Broker } from '../engine/broker/broker.js';
import { AmqpServer } from '../adapters/amqp/server.js';
import { HttpServer } from '../adapters/http/server.js';
import { startMqttServer } from '../adapters/mqtt/server.js';
import { createWebSocketHandler, webSocketAssets } from '../adapters/websocket/index.js';
import type { Listener } from '../adapters/http/dashboard.js';
import { AdminClient } from '../engine/client/admin-client.js';
import { InProcessNetwork, InProcessTransport } from '../engine/client/transport-in-process.js';
import { createLogger } from '../engine/common/logger.js';
import { NameServer } from '../engine/namesrv/name-server.js';
import { type BrokerArgs, brokerConfigFromArgs, checkPort, withBrokerOptions } from './broker-options.js';
import { stopOnSignals } from './process-lifecycle.js';

const log = createLogger('start');

interface StartArgs extends BrokerArgs {
  'namesrv-port': number;
  'broker-port': number;
  'http-port': number;
  'amqp-port': number;
  'amqp-user': string[];
  'mqtt-port': number;
  'mqtt-user': string[];
}

export const startCommand: CommandModule<object, StartArgs> = {
  command: 'start',
  describe: 'Run NameServer, broker and every front end in one process',
  builder: (yargs) =>
    withBrokerOptions(yargs)
      .option('namesrv-port', { type: 'number', default: 9876, describe: 'NameServer TCP port' })
      .option('broker-port', { type: 'number', default: 10911, describe: 'Broker TCP port (remoting)' })
      .option('http-port', {
        type: 'number',
        default: 8080,
        describe: 'HTTP port: dashboard at /, Prometheus metrics at /metrics, WebSocket upgrades',
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
        checkPort('mqtt-port', args['mqtt-port']);
        for (const user of args['mqtt-user']) {
          if (!user.includes(':')) throw new Error(`--mqtt-user must be name:password, got "${user}"`);
        }
        checkPort('amqp-port', args['amqp-port']);
        for (const user of args['amqp-user']) {
          if (!user.includes(':')) throw new Error(`--amqp-user must be name:password, got "${user}"`);
        }
        checkPort('namesrv-port', args['namesrv-port']);
        checkPort('broker-port', args['broker-port']);
        checkPort('http-port', args['http-port']);
        return true;
      }),
  handler: async (args) => {
    const nameServer = new NameServer({ host: args.host, port: args['namesrv-port'] });
    await nameServer.start();
    log.info(`NameServer listening on ${args.host}:${nameServer.port}`);

    const config = brokerConfigFromArgs(args, {
      port: args['broker-port'],
      namesrvAddresses: [`${args['announce-host']}:${nameServer.port}`],
    });
    const broker = new Broker(config);
    await broker.start();
    log.info(
      `Broker ${config.brokerName} listening on ${args.host}:${broker.port} (data in ${config.store.storePath})`,
    );

    const network = new InProcessNetwork();
    network.bind(nameServer.address, nameServer.registry);
    network.bind(broker.address, broker.registry);
    const nameServers = [nameServer.address];

    const listeners: Listener[] = [
      { protocol: 'RocketMQ NameServer', address: `${args.host}:${nameServer.port}` },
      { protocol: 'RocketMQ broker', address: `${args.host}:${broker.port}` },
    ];
    const amqp = new AmqpServer({
      host: args.host,
      port: args['amqp-port'],
      nameServers,
      transport: new InProcessTransport(network),
      users: args['amqp-user'].map(parseUser),
    });
    await amqp.listen();
    listeners.push({ protocol: 'AMQP 0-9-1', address: `${args.host}:${amqp.port}` });
    log.info(`AMQP listening on ${args.host}:${amqp.port}`);

    const mqtt = await startMqttServer({
      host: args.host,
      port: args['mqtt-port'],
      nameServers,
      transport: new InProcessTransport(network),
      users: args['mqtt-user'].map(parseUser),
    });
    listeners.push({ protocol: 'MQTT 3.1.1', address: `${args.host}:${mqtt.port}` });
    log.info(`MQTT listening on ${args.host}:${mqtt.port}`);

    const admin = new AdminClient({ nameServers, transport: new InProcessTransport(network) });
    await admin.start();
    const http = new HttpServer({ host: args.host, port: args['http-port'], admin, listeners: () => listeners });
    http.handleUpgrade('/mqtt', (request, socket, head) => mqtt.handleUpgrade(request, socket, head));
    const webSocket = createWebSocketHandler({ nameServers, transport: new InProcessTransport(network) });
    http.handleUpgrade('/ws', (request, socket, head) => webSocket.handleUpgrade(request, socket, head));
    for (const [path, asset] of webSocketAssets()) http.serveAsset(path, asset);
    await http.listen();
    listeners.push({ protocol: 'MQTT over WebSocket', address: `ws://${args.host}:${http.port}/mqtt` });
    listeners.push({ protocol: 'WebSocket API (demo at /demo)', address: `ws://${args.host}:${http.port}/ws` });
    listeners.push({ protocol: 'HTTP (dashboard, /metrics)', address: `${args.host}:${http.port}` });
    log.info(
      `HTTP listening on ${args.host}:${http.port}: dashboard at /, metrics at /metrics, MQTT at /mqtt, WebSocket API at /ws, demo at /demo`,
    );

    stopOnSignals(async () => {
      await http.close();
      await webSocket.close();
      await amqp.close();
      await mqtt.close();
      await admin.shutdown();
      await broker.shutdown();
      await nameServer.shutdown();
    });
  },
};

/** "name:password" -> a user; the colon was checked by the option validation. */
function parseUser(text: string): { username: string; password: string } {
  const colon = text.indexOf(':');
  return { username: text.slice(0, colon), password: text.slice(colon + 1) };
}
