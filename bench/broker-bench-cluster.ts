/**
 * The servers of the broker benchmark: a NameServer and a broker registered with it on 127.0.0.1
 * ports of the OS's choice, data in a directory the caller owns. Used in process (--in-process), by
 * the child process broker-bench-child.ts, and by mqtt-bench-child.ts (through the in-process
 * transport, hence the registries).
 */
import './bench-env.js';
import { Broker } from '../src/engine/broker/broker.js';
import { defaultBrokerConfig } from '../src/engine/broker/broker-config.js';
import { InProcessNetwork, InProcessTransport } from '../src/engine/client/transport-in-process.js';
import type { ProcessorRegistry } from '../src/engine/remoting/channel.js';
import { NameServer } from '../src/engine/namesrv/name-server.js';
import { defaultMessageStoreConfig, type FlushPolicy } from '../src/engine/store/api.js';

/** Servers started by {@link startBenchServers}. */
export type BenchServers = Awaited<ReturnType<typeof startBenchServers>>;

/**
 * A transport reaching both servers without sockets, as `rocketbridge start` wires a protocol front
 * end (MQTT, AMQP) to the engine in one process.
 */
export function inProcessTransport(servers: BenchServers): InProcessTransport {
  const network = new InProcessNetwork();
  network.bind(servers.namesrv, servers.registries.namesrv);
  network.bind(servers.broker, servers.registries.broker);
  return new InProcessTransport(network);
}

/**
 * Starts a NameServer and a broker registered with it on 127.0.0.1 ports of the OS's choice; the
 * store flushes asynchronously unless `options.flushPolicy` says otherwise.
 */
export async function startBenchServers(
  dataDir: string,
  options: { flushPolicy?: FlushPolicy } = {},
): Promise<{
  namesrv: string;
  broker: string;
  /** The servers' request handlers, for binding them to an in-process transport. */
  registries: { namesrv: ProcessorRegistry; broker: ProcessorRegistry };
  stop: () => Promise<void>;
}> {
  const nameServer = new NameServer({ host: '127.0.0.1', port: 0 });
  await nameServer.start();
  const broker = new Broker(
    defaultBrokerConfig(dataDir, {
      host: '127.0.0.1',
      port: 0,
      namesrvAddresses: [nameServer.address],
      store: {
        ...defaultMessageStoreConfig,
        storePath: dataDir,
        flushPolicy: options.flushPolicy ?? 'async',
        retentionCheckIntervalMs: 0,
      },
    }),
  );
  try {
    await broker.start();
  } catch (err) {
    await nameServer.shutdown();
    throw err;
  }
  return {
    namesrv: nameServer.address,
    broker: broker.address,
    registries: { namesrv: nameServer.registry, broker: broker.registry },
    stop: async () => {
      await broker.shutdown();
      await nameServer.shutdown();
    },
  };
}
