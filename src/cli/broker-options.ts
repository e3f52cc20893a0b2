/**
 * Broker options shared by `rocketbridge broker` and `rocketbridge start`: declared once here, each
 * with its default and help text, and turned into a BrokerConfig by brokerConfigFromArgs.
 */
import { resolve } from 'node:path';
import type { Argv } from 'yargs';
import { type BrokerConfig, defaultBrokerConfig, validateBrokerConfig } from '../engine/broker/broker-config.js';

export interface BrokerArgs {
  'broker-name': string;
  host: string;
  'announce-host': string;
  data: string;
  flush: string;
  'auto-create-topics': boolean;
}

export function withBrokerOptions<T>(yargs: Argv<T>): Argv<T & BrokerArgs> {
  return yargs
    .option('broker-name', { type: 'string', default: 'broker-a', describe: 'Broker name in routes' })
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
    }) as Argv<T & BrokerArgs>;
}

/** Throws with the flag's name unless `port` is a TCP port number. */
export function checkPort(flag: string, port: number): void {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`--${flag} must be an integer from 0 to 65535, got ${port}`);
  }
}

export function brokerConfigFromArgs(
  args: BrokerArgs,
  placement: { port: number; namesrvAddresses: string[]; brokerId?: number; clusterName?: string },
): BrokerConfig {
  const config = defaultBrokerConfig(resolve(args.data));
  config.brokerName = args['broker-name'];
  config.host = args.host;
  config.announceHost = args['announce-host'];
  config.autoCreateTopicEnable = args['auto-create-topics'];
  config.store.flushPolicy = args.flush === 'sync' ? 'sync' : 'async';
  config.port = placement.port;
  config.namesrvAddresses = placement.namesrvAddresses;
  if (placement.brokerId !== undefined) config.brokerId = placement.brokerId;
  if (placement.clusterName !== undefined) config.clusterName = placement.clusterName;
  validateBrokerConfig(config);
  return config;
}
