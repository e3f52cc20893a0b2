/**
 * Test harness for the AMQP front end: a real NameServer and broker (test/integration/client/cluster.ts)
 * plus an AmqpServer on 127.0.0.1:0 reaching them over TCP or in process, and amqplib URLs for it.
 */
import { AmqpServer, type AmqpServerOptions } from '../../../src/adapters/amqp/server.js';
import { startCluster, type TestCluster, type TransportKind } from '../client/cluster.js';

export interface AmqpTestBed {
  cluster: TestCluster;
  server: AmqpServer;
  url: string;
  /** Closes the AMQP server and starts a new one on the same engine (definitions must be replayed). */
  restartServer(): Promise<void>;
  close(): Promise<void>;
}

export async function startAmqp(
  kind: TransportKind = 'tcp',
  overrides: Partial<AmqpServerOptions> = {},
): Promise<AmqpTestBed> {
  const cluster = await startCluster();
  const make = (): AmqpServer =>
    new AmqpServer({
      host: '127.0.0.1',
      port: 0,
      nameServers: [cluster.namesrvAddress],
      ...cluster.clientTransport(kind),
      ...overrides,
    });
  let server = make();
  await server.listen();
  const bed: AmqpTestBed = {
    cluster,
    server,
    url: `amqp://guest:guest@127.0.0.1:${server.port}`,
    async restartServer() {
      await server.close();
      server = make();
      await server.listen();
      bed.server = server;
      bed.url = `amqp://guest:guest@127.0.0.1:${server.port}`;
    },
    async close() {
      await server.close();
      await cluster.close();
    },
  };
  return bed;
}
