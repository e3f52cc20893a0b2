/**
 * `rocketbridge broker`: runs a standalone broker that registers with the given NameServers, until
 * SIGINT/SIGTERM. Every flag maps onto one BrokerConfig option (src/engine/broker/broker-config.ts).
 */
import { resolve } from 'node:path';
import type { CommandModule } from 'yargs';
import { defaultBrokerConfig, validateBrokerConfig } from '../engine/broker/broker-config.js';
import { Broker } from '../engine/broker/broker.js';
import { createLogger } from '../engine/common/logger.js';
import { stopOnSignals } from './process-lifecycle.js';

interface BrokerArgs {
  namesrv: string[];
  'broker-name': string;
  'broker-id': number;
  cluster: string;
  host: string;
  port: number;
  'announce-host': string;
  data: string;
  flush: string;
  'auto-create-topics': boolean;
}

/** "--namesrv a:1 --namesrv b:2" and "--namesrv 'a:1;b:2'" both give [a:1, b:2]. */
export function parseNamesrvList(values: readonly string[]): string[] {
  return values
    .flatMap((value) => value.split(';'))
    .map((address) => address.trim())
    .filter((address) => address.length > 0);
}

export const brokerCommand: CommandModule<object, BrokerArgs> = {
  command: 'broker',
  describe: 'Run a broker: stores messages and serves RocketMQ producers and consumers',
  builder: (yargs) =>
    yargs
      .option('namesrv', {
        type: 'string',
        array: true,
        default: [] as string[],
        describe: 'NameServer address host:port to register with; repeat the flag or separate with ;',
      })
      .option('broker-name', { type: 'string', default: 'broker-a', describe: 'Broker name in routes' })
      .option('broker-id', { type: 'number', default: 0, describe: '0 for a master, > 0 for a slave' })
      .option('cluster', { type: 'string', default: 'DefaultCluster', describe: 'Cluster the broker belongs to' })
      .option('host', { type: 'string', default: '0.0.0.0', describe: 'Address to listen on' })
      .option('port', {
        type: 'number',
        default: 10911,
        describe: 'TCP port for RocketMQ remoting (RocketMQ default 10911)',
      })
      .option('announce-host', {
        type: 'string',
        default: '127.0.0.1',
        describe: 'IP address the broker publishes in topic routes and message ids (clients connect to it)',
      })
      .option('data', {
        type: 'string',
        default: './data',
        describe: 'Directory for the commit log, queues and config',
      })
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
        if (!Number.isInteger(args.port) || args.port < 0 || args.port > 65535) {
          throw new Error(`--port must be an integer from 0 to 65535, got ${args.port}`);
        }
        if (!Number.isInteger(args['broker-id']) || args['broker-id'] < 0) {
          throw new Error(`--broker-id must be an integer >= 0, got ${args['broker-id']}`);
        }
        return true;
      }),
  handler: async (args) => {
    const log = createLogger('cli');
    const config = defaultBrokerConfig(resolve(args.data));
    config.brokerName = args['broker-name'];
    config.brokerId = args['broker-id'];
    config.clusterName = args.cluster;
    config.host = args.host;
    config.port = args.port;
    config.announceHost = args['announce-host'];
    config.namesrvAddresses = parseNamesrvList(args.namesrv);
    config.autoCreateTopicEnable = args['auto-create-topics'];
    config.store.flushPolicy = args.flush === 'sync' ? 'sync' : 'async';
    validateBrokerConfig(config);
    const broker = new Broker(config);
    await broker.start();
    log.info(`Broker ${config.brokerName} listening on ${args.host}:${broker.port}`);
    stopOnSignals(() => broker.shutdown());
  },
};
