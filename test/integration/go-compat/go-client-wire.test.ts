/**
 * Wire conformance with github.com/apache/rocketmq-client-go/v2's quick start (SendSync to topic
 * "test"; a push consumer in group "testGroup" from the first offset). Go is not available here, so the
 * test replays the requests the Go client builds (language GO, version 317, its header field names and
 * string values, its HeartbeatData JSON with a nanosecond subVersion) against a real NameServer and
 * Broker over TCP, and reads every answer the way the Go code reads it (go-decode.ts). The audit behind
 * it is docs/go-client-compat.md.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { testBrokerConfig } from '../../../src/engine/broker/broker-config.js';
import { Broker } from '../../../src/engine/broker/broker.js';
import { parseHostAddress } from '../../../src/engine/common/host-address.js';
import { NameServer } from '../../../src/engine/namesrv/name-server.js';
import { ProcessorRegistry } from '../../../src/engine/remoting/channel.js';
import { RequestCode, ResponseCode } from '../../../src/engine/remoting/codes.js';
import type { RemotingCommand } from '../../../src/engine/remoting/command.js';
import { RemotingClient } from '../../../src/engine/remoting/tcp-client.js';
import { eventually } from '../../helpers/eventually.js';
import { makeTempDir } from '../../helpers/temp-dir.js';
import {
  type GoMessageQueue,
  goBuildSysFlag,
  goCreateUniqId,
  goDecodeJsonHeader,
  goDecodeMessages,
  goDecodeRoute,
  goHeartbeatBody,
  goJsonFrame,
  goMarshalProperties,
  goParseInt,
  goPublishQueues,
  goPullHeader,
  goPullResult,
  goRequest,
  goSubscribeQueues,
  goUnmarshalMsgId,
} from './go-decode.js';

const TIMEOUT_MS = 5000;
const TOPIC = 'test';
const GROUP = 'testGroup';
const RETRY_TOPIC = `%RETRY%${GROUP}`;
const PRODUCER_GROUP = 'DEFAULT_PRODUCER';
const PRODUCER_ID = '127.0.0.1@4242';
const CONSUMER_ID = '127.0.0.1@4243';
/** internal/mq_version: the Go pull consumer refuses TAG filtering from brokers older than V4_1_0. */
const GO_V4_1_0 = 265;
const CHECK_INTERVAL_MS = 400;

/** internal/request.go SendMessageRequestHeader.Encode: the long names and Go's fixed TBW102/4. */
function goSendHeader(queue: GoMessageQueue, properties: string): Record<string, string> {
  return {
    producerGroup: PRODUCER_GROUP,
    topic: queue.topic,
    queueId: String(queue.queueId),
    sysFlag: '0',
    bornTimestamp: String(Date.now()),
    flag: '0',
    reconsumeTimes: '0',
    unitMode: 'false',
    maxReconsumeTimes: '0',
    defaultTopic: 'TBW102',
    defaultTopicQueueNums: '4',
    batch: 'false',
    properties,
  };
}

/** Reads one whole response frame off a raw socket. */
function readFrame(socket: Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length >= 4 && buffered.length >= 4 + buffered.readInt32BE(0)) {
        socket.off('data', onData);
        socket.off('error', reject);
        resolve(buffered.subarray(4, 4 + buffered.readInt32BE(0)));
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
  });
}

describe('rocketmq-client-go v2 quick start against a real NameServer and Broker', () => {
  let cleanup: () => Promise<void>;
  let nameServer: NameServer;
  let broker: Broker;
  let producer: RemotingClient;
  let consumer: RemotingClient;
  const notifications: RemotingCommand[] = [];
  const sent: { queue: GoMessageQueue; uniqKey: string; offsetMsgId: string; queueOffset: number }[] = [];
  let subscribeQueues: GoMessageQueue[] = [];

  before(async () => {
    const temp = await makeTempDir('rb-go-compat-');
    cleanup = temp.cleanup;
    nameServer = new NameServer({ host: '127.0.0.1', port: 0 });
    await nameServer.start();
    broker = new Broker(
      testBrokerConfig(temp.dir, {
        namesrvAddresses: [nameServer.address],
        registerIntervalMs: 200,
        longPollingCheckIntervalMs: CHECK_INTERVAL_MS,
      }),
    );
    await broker.start();
    producer = new RemotingClient();
    // client.go registers NOTIFY_CONSUMER_IDS_CHANGED and answers nothing (returns nil).
    const registry = new ProcessorRegistry().register(RequestCode.NotifyConsumerIdsChanged, (request) => {
      notifications.push(request);
      return undefined;
    });
    consumer = new RemotingClient({ registry });
  });

  after(async () => {
    await producer.close();
    await consumer.close();
    await broker.shutdown();
    await nameServer.shutdown();
    await cleanup();
  });

  const routeOf = (client: RemotingClient, topic: string): Promise<RemotingCommand> =>
    client.invoke(nameServer.address, goRequest(RequestCode.GetRouteInfoByTopic, { topic }), TIMEOUT_MS);

  it('answers a byte-exact Go route request with a header Go can decode and TOPIC_NOT_EXIST for an unknown topic', async () => {
    const { host, port } = parseHostAddress(nameServer.address);
    const socket = connect({ host, port });
    try {
      await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
      const reply = readFrame(socket);
      socket.write(goJsonFrame(RequestCode.GetRouteInfoByTopic, 1, { topic: TOPIC }));
      const frame = await reply;
      const headerWord = frame.readUInt32BE(0);
      assert.equal(headerWord >>> 24, 0, 'a JSON request is answered in JSON');
      const header = goDecodeJsonHeader(frame.subarray(4, 4 + (headerWord & 0xffffff)));
      assert.equal(header.opaque, 1);
      assert.equal(header.flag & 1, 1, 'marked as a response');
      // route.go: ResTopicNotExist -> ErrTopicNotExist, which sends the producer to TBW102.
      assert.equal(header.code, ResponseCode.TopicNotExist);
    } finally {
      socket.destroy();
    }
  });

  it('routes TBW102 so the Go producer can build publish queues for a topic that does not exist yet', async () => {
    const response = await routeOf(producer, 'TBW102');
    assert.equal(response.code, ResponseCode.Success);
    assert.ok(response.body !== undefined);
    // The Go client reads brokerAddrs by splitting raw text: ids must stay bare numbers.
    assert.match(response.body.toString('utf8'), /"brokerAddrs":\{0:"127\.0\.0\.1:\d+"\}/);
    const route = goDecodeRoute(response.body);
    assert.equal(route.brokerDatas[0]?.brokerAddresses.get(0), broker.address);
    // UpdateTopicRouteInfoWithDefault(topic, "TBW102", 4) caps the queues to 4.
    const queues = goPublishQueues(TOPIC, route, 4);
    assert.equal(queues.length, 4);
    assert.ok(queues.every((q) => q.brokerName === 'broker-a'));
  });

  it('registers the Go producer by heartbeat with a broker version the Go client accepts', async () => {
    const body = goHeartbeatBody({ clientId: PRODUCER_ID, producerGroups: [PRODUCER_GROUP] });
    const response = await producer.invoke(broker.address, goRequest(RequestCode.HeartBeat, {}, body), TIMEOUT_MS);
    assert.equal(response.code, ResponseCode.Success);
    assert.ok(response.version >= GO_V4_1_0 && response.version <= 32767, `version ${response.version} fits int16`);
  });

  it('accepts SendSync (code 10, v1 header) to an unknown topic and answers msgId, queueId and queueOffset as Go parses them', async () => {
    const tbw = await routeOf(producer, 'TBW102');
    assert.ok(tbw.body !== undefined);
    const queues = goPublishQueues(TOPIC, goDecodeRoute(tbw.body), 4);
    for (let i = 0; i < 3; i++) {
      const queue = queues[i % queues.length] as GoMessageQueue;
      const uniqKey = goCreateUniqId(i);
      const properties = goMarshalProperties({ UNIQ_KEY: uniqKey });
      const request = goRequest(
        RequestCode.SendMessage,
        goSendHeader(queue, properties),
        Buffer.from(`Hello RocketMQ Go Client! ${i}`),
      );
      const response = await producer.invoke(broker.address, request, TIMEOUT_MS);
      // client.go ProcessSendResponse: 0 is SendOK; 10/11/12 still parse; anything else is an error.
      assert.equal(response.code, ResponseCode.Success, response.remark);
      assert.equal(goParseInt(response.extFields['queueId']), queue.queueId);
      const queueOffset = goParseInt(response.extFields['queueOffset']);
      const offsetMsgId = response.extFields['msgId'] ?? '';
      const id = goUnmarshalMsgId(offsetMsgId);
      assert.equal(`${id.addr}:${id.port}`, broker.address);
      assert.equal(response.extFields['MSG_REGION'], 'DefaultRegion');
      assert.ok(['true', 'false'].includes(response.extFields['TRACE_ON'] ?? ''));
      sent.push({ queue, uniqKey, offsetMsgId, queueOffset });
    }
    assert.deepEqual(
      sent.map((s) => s.queueOffset),
      [0, 0, 0],
      'three queues, first message each',
    );
  });

  it('routes the auto-created topic to the Go consumer once the broker re-registers', async () => {
    const response = await eventually(
      async () => {
        const r = await routeOf(consumer, TOPIC);
        assert.equal(r.code, ResponseCode.Success);
        return r;
      },
      { timeoutMs: TIMEOUT_MS },
    );
    assert.ok(response.body !== undefined);
    const route = goDecodeRoute(response.body);
    subscribeQueues = goSubscribeQueues(TOPIC, route);
    assert.equal(subscribeQueues.length, 4);
    assert.equal(route.brokerDatas[0]?.cluster, 'DefaultCluster');
  });

  it('registers the Go push consumer from its heartbeat with a nanosecond subVersion and creates its retry topic', async () => {
    const body = goHeartbeatBody({
      clientId: CONSUMER_ID,
      producerGroups: [],
      consumer: {
        group: GROUP,
        topics: [TOPIC, RETRY_TOPIC],
        subVersionNs: BigInt(Date.now()) * 1_000_000n + 123_457n,
        consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET',
      },
    });
    const response = await consumer.invoke(broker.address, goRequest(RequestCode.HeartBeat, {}, body), TIMEOUT_MS);
    assert.equal(response.code, ResponseCode.Success, response.remark);
    const retry = await eventually(
      async () => {
        const r = await routeOf(consumer, RETRY_TOPIC);
        assert.equal(r.code, ResponseCode.Success);
        return r;
      },
      { timeoutMs: TIMEOUT_MS },
    );
    assert.ok(retry.body !== undefined);
    assert.equal(goSubscribeQueues(RETRY_TOPIC, goDecodeRoute(retry.body)).length, 1);
  });

  it('lists the group members in consumerIdList for the Go rebalance', async () => {
    const response = await consumer.invoke(
      broker.address,
      goRequest(RequestCode.GetConsumerListByGroup, { consumerGroup: GROUP }),
      TIMEOUT_MS,
    );
    assert.equal(response.code, ResponseCode.Success);
    const list = (JSON.parse(response.body?.toString('utf8') ?? '{}') as { consumerIdList?: unknown }).consumerIdList;
    assert.deepEqual(list, [CONSUMER_ID]);
  });

  it('answers QUERY_CONSUMER_OFFSET for a new group so ConsumeFromFirstOffset starts at 0', async () => {
    for (const queue of subscribeQueues) {
      const response = await consumer.invoke(
        broker.address,
        goRequest(RequestCode.QueryConsumerOffset, {
          consumerGroup: GROUP,
          topic: queue.topic,
          queueId: String(queue.queueId),
        }),
        TIMEOUT_MS,
      );
      // offset_store.go: success -> ParseInt(offset); QUERY_NOT_FOUND -> -1 -> computePullFromWhere gives 0.
      const lastOffset = response.code === ResponseCode.Success ? goParseInt(response.extFields['offset']) : -1;
      assert.ok(response.code === ResponseCode.Success || response.code === ResponseCode.QueryNotFound);
      const nextOffset = lastOffset >= 0 ? lastOffset : 0;
      assert.equal(nextOffset, 0);
    }
  });

  it('serves the Go push consumer pull (suspend flag, subVersion 0, no subscription) with records DecodeMessage reads', async () => {
    for (const message of sent) {
      const request = goRequest(
        RequestCode.PullMessage,
        goPullHeader({
          group: GROUP,
          queue: message.queue,
          queueOffset: 0,
          sysFlag: goBuildSysFlag(false, true, false, false),
          commitOffset: 0,
          suspendTimeoutMillis: '20000',
        }),
      );
      const result = goPullResult(await consumer.invoke(broker.address, request, 30_000));
      assert.equal(result.status, 'FOUND');
      assert.equal(result.nextBeginOffset, 1);
      assert.equal(result.minOffset, 0);
      assert.equal(result.maxOffset, 1);
      assert.equal(result.suggestWhichBrokerId, 0);
      assert.ok(result.body !== undefined);
      const [decoded, ...rest] = goDecodeMessages(result.body);
      assert.equal(rest.length, 0);
      assert.ok(decoded !== undefined);
      assert.equal(decoded.topic, TOPIC);
      assert.equal(decoded.queueId, message.queue.queueId);
      assert.equal(decoded.queueOffset, 0n);
      assert.equal(decoded.msgId, message.uniqKey, 'MsgId comes from UNIQ_KEY');
      assert.equal(decoded.offsetMsgId, message.offsetMsgId, 'OffsetMsgId matches the send response msgId');
      assert.equal(decoded.storeHost, broker.address);
      assert.match(decoded.body.toString('utf8'), /^Hello RocketMQ Go Client! \d$/);
      assert.equal(decoded.sysFlag & 1, 0, 'not compressed');
    }
  });

  it('holds a pull that asks to suspend for 0 ms (Go v2.0.x) until the periodic check instead of answering at once', async () => {
    const queue = sent[0]?.queue as GoMessageQueue;
    const startedMs = Date.now();
    const response = await consumer.invoke(
      broker.address,
      goRequest(
        RequestCode.PullMessage,
        goPullHeader({
          group: GROUP,
          queue,
          queueOffset: 1,
          sysFlag: goBuildSysFlag(false, true, false, false),
          commitOffset: 0,
          suspendTimeoutMillis: '0',
        }),
      ),
      TIMEOUT_MS,
    );
    const heldMs = Date.now() - startedMs;
    const result = goPullResult(response);
    assert.equal(result.status, 'NO_NEW_MSG');
    assert.equal(result.nextBeginOffset, 1);
    assert.ok(heldMs >= CHECK_INTERVAL_MS / 2, `held ${heldMs} ms`);
  });

  it('wakes a held 20 s pull when the Go producer sends to its queue', async () => {
    const queue = sent[0]?.queue as GoMessageQueue;
    const pull = consumer.invoke(
      broker.address,
      goRequest(
        RequestCode.PullMessage,
        goPullHeader({
          group: GROUP,
          queue,
          queueOffset: 1,
          sysFlag: goBuildSysFlag(true, true, false, false),
          commitOffset: 1,
          suspendTimeoutMillis: '20000',
        }),
      ),
      30_000,
    );
    await eventually(() => broker.heldPullCount === 1, { timeoutMs: TIMEOUT_MS });
    const uniqKey = goCreateUniqId(99);
    const send = await producer.invoke(
      broker.address,
      goRequest(
        RequestCode.SendMessage,
        goSendHeader(queue, goMarshalProperties({ UNIQ_KEY: uniqKey })),
        Buffer.from('late'),
      ),
      TIMEOUT_MS,
    );
    assert.equal(send.code, ResponseCode.Success);
    const result = goPullResult(await pull);
    assert.equal(result.status, 'FOUND');
    assert.ok(result.body !== undefined);
    assert.equal(goDecodeMessages(result.body)[0]?.msgId, uniqKey);
  });

  it('stores offsets from the pull commit flag and from UPDATE_CONSUMER_OFFSET (sent without the oneway bit)', async () => {
    const queue = sent[1]?.queue as GoMessageQueue;
    const update = await consumer.invoke(
      broker.address,
      goRequest(RequestCode.UpdateConsumerOffset, {
        consumerGroup: GROUP,
        topic: queue.topic,
        queueId: String(queue.queueId),
        commitOffset: '1',
      }),
      TIMEOUT_MS,
    );
    assert.equal(update.code, ResponseCode.Success);
    for (const [q, expected] of [
      [queue, 1],
      [sent[0]?.queue as GoMessageQueue, 1],
    ] as const) {
      const response = await consumer.invoke(
        broker.address,
        goRequest(RequestCode.QueryConsumerOffset, {
          consumerGroup: GROUP,
          topic: q.topic,
          queueId: String(q.queueId),
        }),
        TIMEOUT_MS,
      );
      assert.equal(response.code, ResponseCode.Success);
      assert.equal(goParseInt(response.extFields['offset']), expected);
    }
  });

  it('answers GET_MAX_OFFSET and SEARCH_OFFSET_BY_TIMESTAMP with the offset field Go parses', async () => {
    const queue = sent[2]?.queue as GoMessageQueue;
    const max = await consumer.invoke(
      broker.address,
      goRequest(RequestCode.GetMaxOffset, { topic: queue.topic, queueId: String(queue.queueId) }),
      TIMEOUT_MS,
    );
    assert.equal(max.code, ResponseCode.Success);
    assert.equal(goParseInt(max.extFields['offset']), 1);
    const search = await consumer.invoke(
      broker.address,
      goRequest(RequestCode.SearchOffsetByTimestamp, {
        topic: queue.topic,
        queueId: String(queue.queueId),
        timestamp: String(Date.now() + 60_000),
      }),
      TIMEOUT_MS,
    );
    assert.equal(search.code, ResponseCode.Success);
    assert.ok(/^\d+$/.test(search.extFields['offset'] ?? ''));
  });

  it('notifies the Go consumer (oneway NOTIFY_CONSUMER_IDS_CHANGED) when another member joins the group', async () => {
    const other = new RemotingClient();
    try {
      const body = goHeartbeatBody({
        clientId: '127.0.0.1@5555',
        producerGroups: [],
        consumer: {
          group: GROUP,
          topics: [TOPIC],
          subVersionNs: BigInt(Date.now()) * 1_000_000n,
          consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET',
        },
      });
      const response = await other.invoke(broker.address, goRequest(RequestCode.HeartBeat, {}, body), TIMEOUT_MS);
      assert.equal(response.code, ResponseCode.Success);
      const notice = await eventually(
        () => {
          const last = notifications.at(-1);
          assert.ok(last !== undefined, 'no notification yet');
          return last;
        },
        { timeoutMs: TIMEOUT_MS },
      );
      assert.equal(notice.extFields['consumerGroup'], GROUP);
      assert.equal(notice.flag & 2, 2, 'oneway: the Go handler returns nil and sends no response');
    } finally {
      await other.close();
    }
  });
  it('answers a byte-exact Go pull frame with a header whose extFields are all strings, as jsoniter requires', async () => {
    const queue = sent[2]?.queue as GoMessageQueue;
    const { host, port } = parseHostAddress(broker.address);
    const socket = connect({ host, port });
    try {
      await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
      const reply = readFrame(socket);
      const header = goPullHeader({
        group: GROUP,
        queue,
        queueOffset: 0,
        sysFlag: goBuildSysFlag(false, true, false, false),
        commitOffset: 0,
        suspendTimeoutMillis: '20000',
      });
      socket.write(goJsonFrame(RequestCode.PullMessage, 7, header));
      const frame = await reply;
      const headerBytes = frame.readUInt32BE(0) & 0xffffff;
      const decoded = goDecodeJsonHeader(frame.subarray(4, 4 + headerBytes));
      assert.equal(decoded.opaque, 7);
      assert.equal(decoded.code, ResponseCode.Success);
      assert.equal(goParseInt(decoded.extFields['nextBeginOffset']), 1);
      assert.equal(goDecodeMessages(frame.subarray(4 + headerBytes))[0]?.msgId, sent[2]?.uniqKey);
    } finally {
      socket.destroy();
    }
  });
});
