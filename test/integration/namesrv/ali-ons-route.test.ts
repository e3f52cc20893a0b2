import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, describe, it } from 'node:test';
import { NameServer } from '../../../src/engine/namesrv/name-server.js';
import { RequestCode, ResponseCode } from '../../../src/engine/remoting/codes.js';
import { createRequest } from '../../../src/engine/remoting/command.js';
import { RemotingClient } from '../../../src/engine/remoting/tcp-client.js';

/** The part of ali-ons' MQClientAPI (a real RocketMQ Node client) this test drives. */
interface AliOnsClientApi {
  ready(): Promise<void>;
  close(): Promise<void>;
  getDefaultTopicRouteInfoFromNameServer(
    topic: string,
    timeoutMs: number,
  ): Promise<{
    queueDatas: Array<{ brokerName: string; writeQueueNums: number; perm: number }>;
    brokerDatas: Array<{ brokerName: string; brokerAddrs: Record<string, string> }>;
  }>;
}

const require = createRequire(import.meta.url);
const MQClientAPI = require('ali-ons/lib/mq_client_api.js') as new (
  options: Record<string, unknown>,
) => AliOnsClientApi;
const quietLogger = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined };

let nameServer: NameServer;
let broker: RemotingClient;
let aliOns: AliOnsClientApi;

before(async () => {
  nameServer = new NameServer({ host: '127.0.0.1', port: 0 });
  await nameServer.start();
  broker = new RemotingClient();
  const topicConfigTable = {
    AliTopic: { topicName: 'AliTopic', readQueueNums: 4, writeQueueNums: 4, perm: 6, topicSysFlag: 0, order: false },
  };
  const body = Buffer.from(
    JSON.stringify({ topicConfigSerializeWrapper: { topicConfigTable, dataVersion: { timestamp: 1, counter: 1 } } }),
  );
  for (const [brokerId, addr] of [
    ['0', '127.0.0.1:10911'],
    ['1', '127.0.0.1:10921'],
  ] as const) {
    const request = createRequest(
      RequestCode.RegisterBroker,
      { brokerName: 'broker-a', brokerAddr: addr, clusterName: 'DefaultCluster', haServerAddr: '', brokerId },
      body,
    );
    assert.equal((await broker.invoke(nameServer.address, request, 5000)).code, ResponseCode.Success);
  }
  aliOns = new MQClientAPI({ nameSrv: nameServer.address, httpclient: {}, logger: quietLogger, responseTimeout: 5000 });
  await aliOns.ready();
});

after(async () => {
  await aliOns.close();
  await broker.close();
  await nameServer.shutdown();
});

describe('ali-ons against the NameServer', () => {
  it('reads a topic route with master and slave addresses', async () => {
    const route = await aliOns.getDefaultTopicRouteInfoFromNameServer('AliTopic', 5000);
    assert.equal(route.queueDatas[0]?.brokerName, 'broker-a');
    assert.equal(route.queueDatas[0]?.writeQueueNums, 4);
    assert.equal(route.brokerDatas[0]?.brokerAddrs['0'], '127.0.0.1:10911');
    assert.equal(route.brokerDatas[0]?.brokerAddrs['1'], '127.0.0.1:10921');
  });

  it('gets an error for a topic no broker has', async () => {
    await assert.rejects(aliOns.getDefaultTopicRouteInfoFromNameServer('Missing', 5000), /No topic route info/);
  });
});
