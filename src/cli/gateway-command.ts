/**
 * `rocketbridge gateway`: the front ends alone (MQTT, AMQP, WebSocket API, dashboard and metrics) in
 * their own process, in front of a cluster reached through its NameServers over TCP. Several
 * gateways can run side by side: their state (sessions, queues, retained messages, definitions)
 * lives in the brokers.
 */
import type { CommandModule } from 'yargs';
import type { Listener } from '../adapters/http/dashboard.js';
import { RemoteTransport } from '../engine/client/transport-remote.js';
import { parseNamesrvList } from './broker-command.js';
import { type FrontEndArgs, startFrontEnds, withFrontEndOptions } from './front-ends.js';
import { stopOnSignals } from './process-lifecycle.js';

interface GatewayArgs extends FrontEndArgs {
  namesrv: string[];
}

export const gatewayCommand: CommandModule<object, GatewayArgs> = {
  command: 'gateway',
  describe: 'Run the protocol front ends against a remote cluster',
  builder: (yargs) =>
    withFrontEndOptions(yargs)
      .option('namesrv', {
        type: 'string',
        array: true,
        demandOption: true,
        describe: 'NameServer address host:port of the cluster; repeat the flag or separate with ;',
      })
      .check((args) => {
        if (parseNamesrvList(args.namesrv).length === 0) throw new Error('--namesrv needs at least one host:port');
        return true;
      }),
  handler: async (args) => {
    const nameServers = parseNamesrvList(args.namesrv);
    const listeners: Listener[] = [];
    const frontEnds = await startFrontEnds(args, nameServers, () => new RemoteTransport(), listeners);
    stopOnSignals(() => frontEnds.close());
  },
};
