/**
 * `rocketbridge start`: everything in one process. A NameServer and a broker with data under
 * `--data`, both bound into one in-process network so that the front ends reach them without a TCP
 * hop, while the remoting ports stay open for RocketMQ clients.
 */
import type { CommandModule } from 'yargs';
import type { Listener } from '../adapters/http/dashboard.js';
import { Broker } from '../engine/broker/broker.js';
import { InProcessNetwork, InProcessTransport } from '../engine/client/transport-in-process.js';
import { createLogger } from '../engine/common/logger.js';
import { NameServer } from '../engine/namesrv/name-server.js';
import { type BrokerArgs, brokerConfigFromArgs, checkPort, withBrokerOptions } from './broker-options.js';
import { type FrontEndArgs, startFrontEnds, withFrontEndOptions } from './front-ends.js';
import { stopOnSignals } from './process-lifecycle.js';

const log = createLogger('start');

interface StartArgs extends BrokerArgs, FrontEndArgs {
  'namesrv-port': number;
  'broker-port': number;
}

export const startCommand: CommandModule<object, StartArgs> = {
  command: 'start',
  describe: 'Run NameServer, broker and every front end in one process',
  builder: (yargs) =>
    withFrontEndOptions(withBrokerOptions(yargs))
      .option('namesrv-port', { type: 'number', default: 9876, describe: 'NameServer TCP port' })
      .option('broker-port', { type: 'number', default: 10911, describe: 'Broker TCP port (remoting)' })
      .check((args) => {
        checkPort('namesrv-port', args['namesrv-port']);
        checkPort('broker-port', args['broker-port']);
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
    const listeners: Listener[] = [
      { protocol: 'RocketMQ NameServer', address: `${args.host}:${nameServer.port}` },
      { protocol: 'RocketMQ broker', address: `${args.host}:${broker.port}` },
    ];
    const frontEnds = await startFrontEnds(
      args,
      [nameServer.address],
      () => new InProcessTransport(network),
      listeners,
    );

    stopOnSignals(async () => {
      await frontEnds.close();
      await broker.shutdown();
      await nameServer.shutdown();
    });
  },
};
