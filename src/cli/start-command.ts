/**
 * `rocketbridge start`: everything in one process. A NameServer and a broker with data under
 * `--data`, both bound into one in-process network so that the front ends reach them without a TCP
 * hop, while the remoting ports stay open for RocketMQ clients.
 */
import { resolve } from 'node:path';
import type { CommandModule } from 'yargs';
import { defaultBrokerConfig } from '../engine/broker/broker-config.js';
import { Broker } from '../engine/broker/broker.js';
import { createLogger } from '../engine/common/logger.js';
import { InProcessNetwork } from '../engine/client/transport-in-process.js';
import { NameServer } from '../engine/namesrv/name-server.js';
import { stopOnSignals } from './process-lifecycle.js';

const log = createLogger('start');

interface StartArgs {
  data: string;
  host: string;
  'announce-host': string;
  'namesrv-port': number;
  'broker-port': number;
  'broker-name': string;
  flush: string;
  'auto-create-topics': boolean;
}

export const startCommand: CommandModule<object, StartArgs> = {
  command: 'start',
  describe: 'Run NameServer, broker and every front end in one process',
  builder: (yargs) =>
    yargs
      .option('data', { type: 'string', default: './data', describe: 'Directory for all stored data' })
      .option('host', { type: 'string', default: '0.0.0.0', describe: 'Address every listener binds' })
      .option('announce-host', {
        type: 'string',
        default: '127.0.0.1',
        describe: 'IP address the broker publishes in topic routes (clients connect to it)',
      })
      .option('namesrv-port', { type: 'number', default: 9876, describe: 'NameServer TCP port' })
      .option('broker-port', { type: 'number', default: 10911, describe: 'Broker TCP port (remoting)' })
      .option('broker-name', { type: 'string', default: 'broker-a', describe: 'Broker name in routes' })
      .option('flush', {
        type: 'string',
        choices: ['async', 'sync'],
        default: 'async',
        describe: 'async: acknowledge after the OS has the bytes; sync: after fdatasync (group commit)',
      })
      .option('auto-create-topics', {
        type: 'boolean',
        default: true,
        describe: 'Create a topic on its first send (disable with --no-auto-create-topics)',
      })
      .check((args) => {
        for (const name of ['namesrv-port', 'broker-port'] as const) {
          const port = args[name];
          if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--${name} must be 0-65535`);
        }
        return true;
      }),
  handler: async (args) => {
    const dataDir = resolve(args.data);
    const nameServer = new NameServer({ host: args.host, port: args['namesrv-port'] });
    await nameServer.start();
    log.info(`NameServer listening on ${args.host}:${nameServer.address.split(':').pop()}`);

    const config = defaultBrokerConfig(dataDir);
    config.host = args.host;
    config.port = args['broker-port'];
    config.announceHost = args['announce-host'];
    config.brokerName = args['broker-name'];
    config.autoCreateTopicEnable = args['auto-create-topics'];
    config.namesrvAddresses = [`${args['announce-host']}:${nameServer.address.split(':').pop()}`];
    config.store.flushPolicy = args.flush === 'sync' ? 'sync' : 'async';
    const broker = new Broker(config);
    await broker.start();
    log.info(
      `Broker ${config.brokerName} listening on ${args.host}:${broker.address.split(':').pop()} (data in ${dataDir})`,
    );

    const network = new InProcessNetwork();
    network.bind(nameServer.address, nameServer.registry);
    network.bind(broker.address, broker.registry);

    stopOnSignals(async () => {
      await broker.shutdown();
      await nameServer.shutdown();
    });
  },
};
