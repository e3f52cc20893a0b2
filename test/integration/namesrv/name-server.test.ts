import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { NameServer, type NameServerOptions } from '../../../src/engine/namesrv/name-server.js';
import { RequestCode, ResponseCode } from '../../../src/engine/remoting/codes.js';
import { createRequest, type RemotingCommand } from '../../../src/engine/remoting/command.js';
import {
  decodeClusterInfo,
  decodeTopicList,
  decodeTopicRouteData,
  type TopicRouteData,
} from '../../../src/engine/remoting/route-data.js';
import { RemotingClient } from '../../../src/engine/remoting/tcp-client.js';
import { eventually } from '../../helpers/eventually.js';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startNameServer(options: Partial<NameServerOptions> = {}): Promise<NameServer> {
  const nameServer = new NameServer({ host: '127.0.0.1', port: 0, ...options });
  await nameServer.start();
  cleanups.push(() => nameServer.shutdown());
  return nameServer;
}

function newClient(): RemotingClient {
  const client = new RemotingClient();
  cleanups.push(() => client.close());
  return client;
}

interface BrokerSpec {
  cluster: string;
  name: string;
  addr: string;
  id: number;
  topics: Record<string, { queues: number; perm?: number }>;
  counter?: number;
}

/** A REGISTER_BROKER request as a Java broker sends it (fastjson body, header fields as strings). */
function registerRequest(spec: BrokerSpec): RemotingCommand {
  const topicConfigTable: Record<string, unknown> = {};
  for (const [topic, config] of Object.entries(spec.topics)) {
    topicConfigTable[topic] = {
      order: false,
      perm: config.perm ?? 6,
      readQueueNums: config.queues,
      topicFilterType: 'SINGLE_TAG',
      topicName: topic,
      topicSysFlag: 0,
      writeQueueNums: config.queues,
    };
  }
  const body = Buffer.from(
    JSON.stringify({
      filterServerList: [],
      topicConfigSerializeWrapper: {
        dataVersion: { counter: spec.counter ?? 1, timestamp: 1_700_000_000_000 },
        topicConfigTable,
      },
    }),
  );
  return createRequest(
    RequestCode.RegisterBroker,
    {
      brokerName: spec.name,
      brokerAddr: spec.addr,
      clusterName: spec.cluster,
      haServerAddr: spec.addr.replace(/:(\d+)$/, (_, port: string) => `:${Number(port) + 1}`),
      brokerId: String(spec.id),
      compressed: 'false',
    },
    body,
  );
}

async function register(client: RemotingClient, nameServer: NameServer, spec: BrokerSpec): Promise<RemotingCommand> {
  const response = await client.invoke(nameServer.address, registerRequest(spec), 5000);
  assert.equal(response.code, ResponseCode.Success, response.remark);
  return response;
}

async function route(client: RemotingClient, nameServer: NameServer, topic: string): Promise<RemotingCommand> {
  return client.invoke(nameServer.address, createRequest(RequestCode.GetRouteInfoByTopic, { topic }), 5000);
}

async function routeData(client: RemotingClient, nameServer: NameServer, topic: string): Promise<TopicRouteData> {
  const response = await route(client, nameServer, topic);
  assert.equal(response.code, ResponseCode.Success, response.remark);
  return decodeTopicRouteData(response.body);
}

const brokerA: BrokerSpec = {
  cluster: 'DefaultCluster',
  name: 'broker-a',
  addr: '10.0.0.1:10911',
  id: 0,
  topics: { TopicTest: { queues: 4 }, OnlyOnA: { queues: 2 } },
};
const brokerB: BrokerSpec = {
  cluster: 'DefaultCluster',
  name: 'broker-b',
  addr: '10.0.0.2:10911',
  id: 0,
  topics: { TopicTest: { queues: 8, perm: 4 } },
};

describe('NameServer', () => {
  it('serves a topic route built from the registrations of every broker that has the topic', async () => {
    const nameServer = await startNameServer();
    const client = newClient();
    await register(client, nameServer, brokerA);
    await register(client, nameServer, brokerB);

    const response = await route(client, nameServer, 'TopicTest');
    assert.equal(response.code, ResponseCode.Success);
    assert.ok(!/\s/.test(response.body?.toString() ?? ' '), 'route JSON is compact');
    const data = decodeTopicRouteData(response.body);
    assert.deepEqual(data.queueDatas, [
      { brokerName: 'broker-a', readQueueNums: 4, writeQueueNums: 4, perm: 6, topicSysFlag: 0 },
      { brokerName: 'broker-b', readQueueNums: 8, writeQueueNums: 8, perm: 4, topicSysFlag: 0 },
    ]);
    assert.deepEqual(data.brokerDatas, [
      { cluster: 'DefaultCluster', brokerName: 'broker-a', brokerAddrs: { '0': '10.0.0.1:10911' } },
      { cluster: 'DefaultCluster', brokerName: 'broker-b', brokerAddrs: { '0': '10.0.0.2:10911' } },
    ]);
    const onlyA = await routeData(client, nameServer, 'OnlyOnA');
    assert.deepEqual(
      onlyA.brokerDatas.map((broker) => broker.brokerName),
      ['broker-a'],
    );
  });

  it('answers TOPIC_NOT_EXIST with RocketMQ remark for a topic no broker has', async () => {
    const nameServer = await startNameServer();
    const response = await route(newClient(), nameServer, 'Nowhere');
    assert.equal(response.code, ResponseCode.TopicNotExist);
    assert.equal(response.remark, 'No topic route info in name server for the topic: Nowhere');
  });

  it('lists clusters, brokers and topics', async () => {
    const nameServer = await startNameServer();
    const client = newClient();
    await register(client, nameServer, brokerA);
    await register(client, nameServer, { ...brokerB, cluster: 'OtherCluster' });
    const cluster = await client.invoke(nameServer.address, createRequest(RequestCode.GetBrokerClusterInfo), 5000);
    assert.equal(cluster.code, ResponseCode.Success);
    assert.deepEqual(decodeClusterInfo(cluster.body), {
      brokerAddrTable: {
        'broker-a': { cluster: 'DefaultCluster', brokerName: 'broker-a', brokerAddrs: { '0': '10.0.0.1:10911' } },
        'broker-b': { cluster: 'OtherCluster', brokerName: 'broker-b', brokerAddrs: { '0': '10.0.0.2:10911' } },
      },
      clusterAddrTable: { DefaultCluster: ['broker-a'], OtherCluster: ['broker-b'] },
    });
    const topics = await client.invoke(
      nameServer.address,
      createRequest(RequestCode.GetAllTopicListFromNameServer),
      5000,
    );
    assert.deepEqual(decodeTopicList(topics.body), ['OnlyOnA', 'TopicTest']);
  });

  it('tells a slave its master address and HA address, and lists both in the route', async () => {
    const nameServer = await startNameServer();
    const client = newClient();
    await register(client, nameServer, brokerA);
    const slave = await register(client, nameServer, { ...brokerA, addr: '10.0.0.9:10911', id: 1 });
    assert.equal(slave.extFields['masterAddr'], '10.0.0.1:10911');
    assert.equal(slave.extFields['haServerAddr'], '10.0.0.1:10912');
    const data = await routeData(client, nameServer, 'TopicTest');
    assert.deepEqual(data.brokerDatas[0]?.brokerAddrs, { '0': '10.0.0.1:10911', '1': '10.0.0.9:10911' });
  });

  it('keeps a topic routed to the slave when the master goes away', async () => {
    const nameServer = await startNameServer();
    const master = new RemotingClient();
    const slave = newClient();
    await register(master, nameServer, brokerA);
    await register(slave, nameServer, { ...brokerA, addr: '10.0.0.9:10911', id: 1 });
    await master.close();
    await eventually(() => nameServer.routes.liveBrokerAddrs().length === 1);
    const data = await routeData(slave, nameServer, 'TopicTest');
    assert.deepEqual(data.brokerDatas[0]?.brokerAddrs, { '1': '10.0.0.9:10911' });
    assert.equal(data.queueDatas[0]?.brokerName, 'broker-a');
  });

  it('moves an address that re-registers under another broker id', async () => {
    const nameServer = await startNameServer();
    const client = newClient();
    await register(client, nameServer, { ...brokerA, addr: '10.0.0.9:10911', id: 1 });
    await register(client, nameServer, { ...brokerA, addr: '10.0.0.9:10911', id: 0 });
    const data = await routeData(client, nameServer, 'TopicTest');
    assert.deepEqual(data.brokerDatas[0]?.brokerAddrs, { '0': '10.0.0.9:10911' });
  });

  it('writes bare broker id keys for a Go client, as RocketMQ does', async () => {
    const nameServer = await startNameServer();
    const client = newClient();
    await register(client, nameServer, brokerA);
    const request = { ...createRequest(RequestCode.GetRouteInfoByTopic, { topic: 'TopicTest' }), language: 'GO' };
    const response = await client.invoke(nameServer.address, request, 5000);
    assert.match(response.body?.toString() ?? '', /"brokerAddrs":\{0:"10\.0\.0\.1:10911"\}/);
  });

  it('refreshes a master topic set when its dataVersion changes', async () => {
    const nameServer = await startNameServer();
    const client = newClient();
    await register(client, nameServer, brokerA);
    await register(client, nameServer, {
      ...brokerA,
      topics: { ...brokerA.topics, NewTopic: { queues: 1 } },
      counter: 2,
    });
    assert.equal((await routeData(client, nameServer, 'NewTopic')).queueDatas[0]?.writeQueueNums, 1);
  });

  it('removes a broker and its routes on UNREGISTER_BROKER', async () => {
    const nameServer = await startNameServer();
    const client = newClient();
    await register(client, nameServer, brokerA);
    await register(client, nameServer, brokerB);
    const response = await client.invoke(
      nameServer.address,
      createRequest(RequestCode.UnregisterBroker, {
        brokerName: 'broker-a',
        brokerAddr: '10.0.0.1:10911',
        clusterName: 'DefaultCluster',
        brokerId: '0',
      }),
      5000,
    );
    assert.equal(response.code, ResponseCode.Success);
    assert.equal((await route(client, nameServer, 'OnlyOnA')).code, ResponseCode.TopicNotExist);
    const data = await routeData(client, nameServer, 'TopicTest');
    assert.deepEqual(
      data.brokerDatas.map((broker) => broker.brokerName),
      ['broker-b'],
    );
  });

  it('removes a broker at once when its connection closes', async () => {
    const nameServer = await startNameServer();
    const brokerConnection = new RemotingClient();
    await register(brokerConnection, nameServer, brokerA);
    const reader = newClient();
    assert.equal((await route(reader, nameServer, 'TopicTest')).code, ResponseCode.Success);
    await brokerConnection.close();
    await eventually(async () => (await route(reader, nameServer, 'TopicTest')).code === ResponseCode.TopicNotExist);
    assert.deepEqual(nameServer.routes.liveBrokerAddrs(), []);
  });

  it('expires a broker that stops registering and keeps the one that goes on', async () => {
    const nameServer = await startNameServer({ brokerExpiryMs: 300, scanIntervalMs: 50 });
    const silent = newClient();
    const alive = newClient();
    await register(silent, nameServer, brokerA);
    await register(alive, nameServer, brokerB);
    const heartbeat = setInterval(() => {
      void register(alive, nameServer, brokerB).catch(() => undefined);
    }, 50);
    try {
      await eventually(async () => (await route(alive, nameServer, 'OnlyOnA')).code === ResponseCode.TopicNotExist, {
        timeoutMs: 3000,
      });
      const data = await routeData(alive, nameServer, 'TopicTest');
      assert.deepEqual(
        data.brokerDatas.map((broker) => broker.brokerName),
        ['broker-b'],
      );
      assert.deepEqual(nameServer.routes.liveBrokerAddrs(), ['10.0.0.2:10911']);
    } finally {
      clearInterval(heartbeat);
    }
  });

  it('deletes a topic on DELETE_TOPIC_IN_NAMESRV', async () => {
    const nameServer = await startNameServer();
    const client = newClient();
    await register(client, nameServer, brokerA);
    const response = await client.invoke(
      nameServer.address,
      createRequest(RequestCode.DeleteTopicInNamesrv, { topic: 'OnlyOnA' }),
      5000,
    );
    assert.equal(response.code, ResponseCode.Success);
    assert.equal((await route(client, nameServer, 'OnlyOnA')).code, ResponseCode.TopicNotExist);
    assert.equal((await route(client, nameServer, 'TopicTest')).code, ResponseCode.Success);
  });

  it('answers GET_KV_CONFIG with QUERY_NOT_FOUND until a value is put', async () => {
    const nameServer = await startNameServer();
    const client = newClient();
    const get = createRequest(RequestCode.GetKvConfig, { namespace: 'ORDER_TOPIC_CONFIG', key: 'T' });
    assert.equal((await client.invoke(nameServer.address, get, 5000)).code, ResponseCode.QueryNotFound);
    const put = createRequest(100, { namespace: 'ORDER_TOPIC_CONFIG', key: 'T', value: 'broker-a:4' });
    assert.equal((await client.invoke(nameServer.address, put, 5000)).code, ResponseCode.Success);
    const found = await client.invoke(nameServer.address, { ...get, opaque: get.opaque + 100_000 }, 5000);
    assert.equal(found.code, ResponseCode.Success);
    assert.equal(found.extFields['value'], 'broker-a:4');
  });

  it('refuses a compressed registration with a remark that says why', async () => {
    const nameServer = await startNameServer();
    const request = registerRequest(brokerA);
    request.extFields['compressed'] = 'true';
    const response = await newClient().invoke(nameServer.address, request, 5000);
    assert.equal(response.code, ResponseCode.SystemError);
    assert.match(response.remark ?? '', /compressed/);
    assert.deepEqual(nameServer.routes.liveBrokerAddrs(), []);
  });

  it('refuses a registration whose body does not match its bodyCrc32', async () => {
    const nameServer = await startNameServer();
    const request = registerRequest(brokerA);
    request.extFields['bodyCrc32'] = '12345';
    const response = await newClient().invoke(nameServer.address, request, 5000);
    assert.equal(response.code, ResponseCode.SystemError);
    assert.equal(response.remark, 'crc32 not match');
  });

  it('runs independent NameServers that each learn from the broker registering with them', async () => {
    const first = await startNameServer();
    const second = await startNameServer();
    const client = newClient();
    await register(client, first, brokerA);
    assert.equal((await route(client, second, 'TopicTest')).code, ResponseCode.TopicNotExist);
    await register(client, second, brokerA);
    assert.deepEqual(await routeData(client, second, 'TopicTest'), await routeData(client, first, 'TopicTest'));
  });
});
