/**
 * HA test harness: a NameServer, a master broker and (optionally) a slave broker of the same broker
 * name, all on 127.0.0.1 port 0 in temp directories of one process, plus a RemotingClient to talk to
 * them. The slave learns its master's addresses from the NameServer, as in a real cluster.
 */
import { type BrokerConfig, testBrokerConfig } from '../../../src/engine/broker/broker-config.js';
import { Broker } from '../../../src/engine/broker/broker.js';
import { NameServer } from '../../../src/engine/namesrv/name-server.js';
import { ProcessorRegistry } from '../../../src/engine/remoting/channel.js';
import { RequestCode } from '../../../src/engine/remoting/codes.js';
import { createRequest, type RemotingCommand } from '../../../src/engine/remoting/command.js';
import { RemotingClient } from '../../../src/engine/remoting/tcp-client.js';
import { makeTempDir } from '../../helpers/temp-dir.js';

export const REQUEST_TIMEOUT_MS = 5000;

export interface HaCluster {
  nameServer: NameServer;
  master: Broker;
  /** The running slave, if any. */
  slave: Broker | undefined;
  client: RemotingClient;
  /** Starts a slave on the slave directory (the same one each time). */
  startSlave(overrides?: Partial<BrokerConfig>): Promise<Broker>;
  stopSlave(): Promise<void>;
  call(broker: Broker, request: RemotingCommand): Promise<RemotingCommand>;
  close(): Promise<void>;
}

export async function startCluster(masterOverrides: Partial<BrokerConfig> = {}, withSlave = true): Promise<HaCluster> {
  const { dir, cleanup } = await makeTempDir('rb-ha-');
  const nameServer = new NameServer({ host: '127.0.0.1', port: 0 });
  await nameServer.start();
  const master = new Broker(
    testBrokerConfig(`${dir}/master`, { namesrvAddresses: [nameServer.address], ...masterOverrides }),
  );
  await master.start();
  const client = new RemotingClient({ registry: new ProcessorRegistry() });
  let slave: Broker | undefined;
  const cluster: HaCluster = {
    nameServer,
    master,
    get slave() {
      return slave;
    },
    client,
    startSlave: async (overrides = {}) => {
      const started = new Broker(
        testBrokerConfig(`${dir}/slave`, { namesrvAddresses: [nameServer.address], brokerId: 1, ...overrides }),
      );
      await started.start();
      slave = started;
      return started;
    },
    stopSlave: async () => {
      await slave?.shutdown();
      slave = undefined;
    },
    call: (broker, request) => client.invoke(broker.address, request, REQUEST_TIMEOUT_MS),
    close: async () => {
      await client.close();
      await slave?.shutdown();
      await master.shutdown();
      await nameServer.shutdown();
      await cleanup();
    },
  };
  if (withSlave) await cluster.startSlave();
  return cluster;
}

export function updateOffsetRequest(group: string, topic: string, queueId: number, offset: number): RemotingCommand {
  return createRequest(RequestCode.UpdateConsumerOffset, {
    consumerGroup: group,
    topic,
    queueId: String(queueId),
    commitOffset: String(offset),
  });
}

export function queryOffsetRequest(group: string, topic: string, queueId: number): RemotingCommand {
  return createRequest(RequestCode.QueryConsumerOffset, { consumerGroup: group, topic, queueId: String(queueId) });
}
