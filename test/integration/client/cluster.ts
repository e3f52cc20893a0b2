/**
 * Test harness: a real NameServer and broker on 127.0.0.1 ephemeral ports, temp data dirs, and the
 * two client transports (TCP, and in-process with both servers bound into one InProcessNetwork).
 */
import { Broker } from '../../../src/engine/broker/broker.js';
import { type BrokerConfig, testBrokerConfig } from '../../../src/engine/broker/broker-config.js';
import { NameServer } from '../../../src/engine/namesrv/name-server.js';
import { InProcessNetwork, InProcessTransport } from '../../../src/engine/client/transport-in-process.js';
import type { Transport } from '../../../src/engine/client/transport.js';
import { restartablePort } from '../../helpers/ports.js';
import { makeTempDir } from '../../helpers/temp-dir.js';

export type TransportKind = 'tcp' | 'in-process';
export const TRANSPORT_KINDS: readonly TransportKind[] = ['tcp', 'in-process'];

export interface TestCluster {
  nameServer: NameServer;
  broker: Broker;
  namesrvAddress: string;
  network: InProcessNetwork;
  /** Options to spread into a client's options: a fresh in-process transport, or none (TCP). */
  clientTransport(kind: TransportKind): { transport?: Transport };
  /** Stops the broker and starts a new one on the same port and data dir. */
  restartBroker(): Promise<void>;
  close(): Promise<void>;
}

export async function startCluster(overrides: Partial<BrokerConfig> = {}): Promise<TestCluster> {
  const { dir, cleanup } = await makeTempDir('rb-client-');
  const nameServer = new NameServer({ host: '127.0.0.1', port: 0 });
  await nameServer.start();
  const namesrvAddress = nameServer.address;
  const network = new InProcessNetwork();
  network.bind(namesrvAddress, nameServer.registry);
  // restartBroker listens on the same port again: take one below the ephemeral range (helpers/ports.ts).
  const config = testBrokerConfig(dir, {
    namesrvAddresses: [namesrvAddress],
    port: await restartablePort(),
    haPort: 0,
    ...overrides,
  });
  let broker = new Broker(config);
  await broker.start();
  network.bind(broker.address, broker.registry);
  const transports: Transport[] = [];

  const cluster: TestCluster = {
    nameServer,
    broker,
    namesrvAddress,
    network,
    clientTransport(kind) {
      if (kind === 'tcp') return {};
      const transport = new InProcessTransport(network);
      transports.push(transport);
      return { transport };
    },
    async restartBroker() {
      network.unbind(broker.address);
      await broker.shutdown();
      broker = new Broker(config);
      await broker.start();
      network.bind(broker.address, broker.registry);
      cluster.broker = broker;
    },
    async close() {
      await Promise.all(transports.map((transport) => transport.close()));
      await broker.shutdown();
      await nameServer.shutdown();
      await cleanup();
    },
  };
  return cluster;
}
