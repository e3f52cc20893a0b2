/**
 * `rocketbridge broker`: runs a standalone broker that registers with the given NameServers, until
 * SIGINT/SIGTERM. Every flag maps onto one BrokerConfig option (src/engine/broker/broker-config.ts).
 */
import type { CommandModule } from 'yargs';
import { validateBrokerConfig } from '../engine/broker/broker-config.js';
import { Broker } from '../engine/broker/broker.js';
import { createLogger } from '../engine/common/logger.js';
import { type BrokerArgs, brokerConfigFromArgs, checkPort, withBrokerOptions } from './broker-options.js';
import { stopOnSignals } from './process-lifecycle.js';

interface BrokerCommandArgs extends BrokerArgs {
  namesrv: string[];
  'broker-id': number;
  cluster: string;
  port: number;
  role: string;
  'ha-port': number | undefined;
  'ha-master': string | undefined;
  controller: string[];
  'controller-heartbeat-ms': number;
  'slave-read': boolean;
}

/** "--namesrv a:1 --namesrv b:2" and "--namesrv 'a:1;b:2'" both give [a:1, b:2]. */
export function parseNamesrvList(values: readonly string[]): string[] {
  return values
    .flatMap((value) => value.split(';'))
    .map((address) => address.trim())
    .filter((address) => address.length > 0);
}

export const brokerCommand: CommandModule<object, BrokerCommandArgs> = {
  command: 'broker',
  describe: 'Run a broker: stores messages and serves RocketMQ producers and consumers',
  builder: (yargs) =>
    withBrokerOptions(yargs)
      .option('namesrv', {
        type: 'string',
        array: true,
        default: [] as string[],
        describe: 'NameServer address host:port to register with; repeat the flag or separate with ;',
      })
      .option('broker-id', { type: 'number', default: 0, describe: '0 for a master, > 0 for a slave' })
      .option('host', { type: 'string', default: '0.0.0.0', describe: 'Address to listen on' })
      .option('cluster', { type: 'string', default: 'DefaultCluster', describe: 'Cluster the broker belongs to' })
      .option('port', {
        type: 'number',
        default: 10911,
        describe: 'TCP port for RocketMQ remoting (RocketMQ default 10911)',
      })
      .option('role', {
        type: 'string',
        choices: ['ASYNC_MASTER', 'SYNC_MASTER', 'SLAVE'],
        default: 'ASYNC_MASTER',
        describe:
          'Replication role: SYNC_MASTER answers a send only once a slave has it; a broker id > 0 is always a SLAVE',
      })
      .option('ha-port', {
        type: 'number',
        describe: 'Replication (HA) port a master listens on for its slaves (default: --port + 1)',
      })
      .option('ha-master', {
        type: 'string',
        describe: "A slave's master HA address host:port (default: learned from the NameServer)",
      })
      .option('controller', {
        type: 'string',
        array: true,
        default: [] as string[],
        describe:
          'Automatic failover: NameServer(s) running the controller (namesrv --controller); the controller then picks the master of the group and --role only says SYNC or ASYNC replication',
      })
      .option('slave-read', {
        type: 'boolean',
        default: false,
        describe:
          'Send consumers reading far behind the log end (40% of RAM) to a slave (RocketMQ slaveReadEnable); set it on master and slaves',
      })
      .option('controller-heartbeat-ms', {
        type: 'number',
        default: 1000,
        describe: 'Controller mode: how often to report to the controller',
      })
      .check((args) => {
        checkPort('port', args.port);
        if (!Number.isInteger(args['controller-heartbeat-ms']) || args['controller-heartbeat-ms'] <= 0) {
          throw new Error(
            `--controller-heartbeat-ms must be a positive integer, got ${args['controller-heartbeat-ms']}`,
          );
        }
        if (args['ha-port'] !== undefined) checkPort('ha-port', args['ha-port']);
        if (!Number.isInteger(args['broker-id']) || args['broker-id'] < 0) {
          throw new Error(`--broker-id must be an integer >= 0, got ${args['broker-id']}`);
        }
        return true;
      }),
  handler: async (args) => {
    const log = createLogger('cli');
    const config = brokerConfigFromArgs(args, {
      port: args.port,
      namesrvAddresses: parseNamesrvList(args.namesrv),
      brokerId: args['broker-id'],
      clusterName: args.cluster,
    });
    config.slaveReadEnable = args['slave-read'];
    config.controllerAddresses = parseNamesrvList(args.controller);
    config.controllerHeartbeatIntervalMs = args['controller-heartbeat-ms'];
    if (config.controllerAddresses.length > 0) {
      // Any broker of the group may become master: the role names the replication mode it then uses.
      config.brokerRole = args.role === 'SYNC_MASTER' ? 'SYNC_MASTER' : 'ASYNC_MASTER';
    } else {
      config.brokerRole = args['broker-id'] > 0 ? 'SLAVE' : (args.role as typeof config.brokerRole);
    }
    if (args['ha-port'] !== undefined) config.haPort = args['ha-port'];
    if (args['ha-master'] !== undefined) config.haMasterAddress = args['ha-master'];
    validateBrokerConfig(config);
    const broker = new Broker(config);
    await broker.start();
    log.info(`Broker ${config.brokerName} listening on ${args.host}:${broker.port}`);
    stopOnSignals(() => broker.shutdown());
  },
};
