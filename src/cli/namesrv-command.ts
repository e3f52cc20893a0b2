/**
 * `rocketbridge namesrv`: runs a standalone NameServer until SIGINT/SIGTERM.
 */
import type { CommandModule } from 'yargs';
import { createLogger } from '../engine/common/logger.js';
import { DEFAULT_CONTROLLER_HEARTBEAT_TIMEOUT_MS, NameServer } from '../engine/namesrv/name-server.js';
import { stopOnSignals } from './process-lifecycle.js';

interface NamesrvArgs {
  host: string;
  port: number;
  'broker-expiry-ms': number;
  controller: boolean;
  'controller-dir': string;
  'controller-timeout-ms': number;
}

export const namesrvCommand: CommandModule<object, NamesrvArgs> = {
  command: 'namesrv',
  describe: 'Run a NameServer: brokers register with it and clients read topic routes from it',
  builder: (yargs) =>
    yargs
      .option('host', {
        type: 'string',
        default: '0.0.0.0',
        describe: 'Address to listen on',
      })
      .option('port', {
        type: 'number',
        default: 9876,
        describe: 'TCP port for RocketMQ remoting (RocketMQ default 9876)',
      })
      .option('broker-expiry-ms', {
        type: 'number',
        default: 120_000,
        describe: 'Remove a broker and its routes after this many milliseconds without a registration',
      })
      .option('controller', {
        type: 'boolean',
        default: false,
        describe: 'Also run the failover controller: elects a master for broker groups started with --controller',
      })
      .option('controller-dir', {
        type: 'string',
        default: './data/controller',
        describe: 'Where the controller keeps epochs and masters',
      })
      .option('controller-timeout-ms', {
        type: 'number',
        default: DEFAULT_CONTROLLER_HEARTBEAT_TIMEOUT_MS,
        describe: 'Replace a master silent this long (a closed connection replaces it at once)',
      })
      .check((args) => {
        if (!Number.isInteger(args['controller-timeout-ms']) || args['controller-timeout-ms'] <= 0) {
          throw new Error(`--controller-timeout-ms must be a positive integer, got ${args['controller-timeout-ms']}`);
        }
        if (!Number.isInteger(args.port) || args.port < 0 || args.port > 65535) {
          throw new Error(`--port must be an integer from 0 to 65535, got ${args.port}`);
        }
        if (!Number.isInteger(args['broker-expiry-ms']) || args['broker-expiry-ms'] <= 0) {
          throw new Error(`--broker-expiry-ms must be a positive integer, got ${args['broker-expiry-ms']}`);
        }
        return true;
      }),
  handler: async (args) => {
    const log = createLogger('cli');
    const nameServer = new NameServer({
      host: args.host,
      port: args.port,
      brokerExpiryMs: args['broker-expiry-ms'],
      ...(args.controller
        ? { controller: { dataDir: args['controller-dir'], heartbeatTimeoutMs: args['controller-timeout-ms'] } }
        : {}),
    });
    await nameServer.start();
    log.info(
      `NameServer listening on ${args.host}:${nameServer.port}${args.controller ? ` (failover controller, state in ${args['controller-dir']})` : ''}`,
    );
    stopOnSignals(() => nameServer.shutdown());
  },
};
