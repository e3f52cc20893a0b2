/**
 * The servers of the broker benchmark: a NameServer and a broker registered with it on 127.0.0.1
 * ports of the OS's choice, data in a directory the caller owns. Used in process (--in-process) and
 * by the child process broker-bench-child.ts.
 */
import './bench-env.js';
import { Broker } from '../src/engine/broker/broker.js';
import { defaultBrokerConfig } from '../src/engine/broker/broker-config.js';
import { NameServer } from '../src/engine/namesrv/name-server.js';
import { defaultMessageStoreConfig } from '../src/engine/store/api.js';

/** Starts a NameServer and a broker registered with it on 127.0.0.1 ports of the OS's choice. */
export async function startBenchServers(
  dataDir: string,
): Promise<{ namesrv: string; broker: string; stop: () => Promise<void> }> {
  const nameServer = new NameServer({ host: '127.0.0.1', port: 0 });
  await nameServer.start();
  const broker = new Broker(
    defaultBrokerConfig(dataDir, {
      host: '127.0.0.1',
      port: 0,
      namesrvAddresses: [nameServer.address],
      store: { ...defaultMessageStoreConfig, storePath: dataDir, flushPolicy: 'async', retentionCheckIntervalMs: 0 },
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
    stop: async () => {
      await broker.shutdown();
      await nameServer.shutdown();
    },
  };
}
