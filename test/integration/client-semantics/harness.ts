/**
 * Harness for the consumer-semantics suites: the client test cluster (real NameServer and broker over
 * TCP) with broker options passed through by name, so the suites can already ask for the options
 * docs/wire-formats.md names (messageDelayLevel, transactionCheckIntervalMs, ...) before the broker
 * has them; topics created with a given queue count; and a raw remoting client for the requests the
 * client library does not make.
 */
import type { BrokerConfig } from '../../../src/engine/broker/broker-config.js';
import { ErrorCode, RbError } from '../../../src/engine/common/errors.js';
import { ProcessorRegistry } from '../../../src/engine/remoting/channel.js';
import { RequestCode, ResponseCode } from '../../../src/engine/remoting/codes.js';
import { createRequest, type RemotingCommand } from '../../../src/engine/remoting/command.js';
import { RemotingClient } from '../../../src/engine/remoting/tcp-client.js';
import { eventually } from '../../helpers/eventually.js';
import { startCluster, type TestCluster } from '../client/cluster.js';

/** Short delay levels for tests (RocketMQ's format; 18 levels). */
export const TEST_DELAY_LEVELS = '200ms 400ms 600ms 800ms 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s';

/** Broker options the suites set; unknown ones are ignored by a broker that lacks them. */
export const FAST_BROKER: Record<string, unknown> = {
  messageDelayLevel: TEST_DELAY_LEVELS,
  rebalanceLockMaxLiveTimeMs: 3000,
  transactionCheckIntervalMs: 300,
  transactionTimeoutMs: 300,
  transactionCheckMax: 15,
};

export interface SemanticsCluster extends TestCluster {
  /** Sends a request to the broker over a raw remoting client. */
  call(request: RemotingCommand, timeoutMs?: number): Promise<RemotingCommand>;
  /** Creates a topic with `queueNums` read and write queues and waits until its route is served. */
  createTopic(topic: string, queueNums?: number): Promise<void>;
}

export async function startSemanticsCluster(overrides: Record<string, unknown> = {}): Promise<SemanticsCluster> {
  const cluster = await startCluster({ ...FAST_BROKER, ...overrides } as Partial<BrokerConfig>);
  const raw = new RemotingClient({ registry: new ProcessorRegistry() });
  const call = (request: RemotingCommand, timeoutMs = 5000): Promise<RemotingCommand> =>
    raw.invoke(cluster.broker.address, request, timeoutMs);
  const close = cluster.close.bind(cluster);
  return Object.assign(cluster, {
    call,
    async createTopic(topic: string, queueNums = 4): Promise<void> {
      const response = await call(
        createRequest(RequestCode.UpdateAndCreateTopic, {
          topic,
          defaultTopic: 'TBW102',
          readQueueNums: String(queueNums),
          writeQueueNums: String(queueNums),
          perm: '6',
          topicFilterType: 'SINGLE_TAG',
          topicSysFlag: '0',
          order: 'false',
        }),
      );
      if (response.code !== ResponseCode.Success) {
        throw new RbError(ErrorCode.RemoteError, `create topic ${topic}: ${response.code} ${response.remark ?? ''}`);
      }
      await eventually(
        async () => {
          const route = await raw.invoke(
            cluster.namesrvAddress,
            createRequest(RequestCode.GetRouteInfoByTopic, { topic }),
            2000,
          );
          return route.code === ResponseCode.Success;
        },
        { timeoutMs: 5000, intervalMs: 50 },
      );
    },
    async close(): Promise<void> {
      await raw.close();
      await close();
    },
  });
}
