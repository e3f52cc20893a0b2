import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isRbError } from '../../../src/engine/common/errors.js';
import { createRequest } from '../../../src/engine/remoting/command.js';
import {
  HeaderFieldError,
  optionalBoolean,
  optionalInt,
  requiredInt,
  requiredLong,
  requiredString,
} from '../../../src/engine/remoting/header-fields.js';
import {
  decodeClusterInfo,
  decodeRegisterBrokerBody,
  decodeTopicRouteData,
  encodeClusterInfo,
  encodeTopicRouteData,
  jsonStyleFor,
  parseFastJson,
  type TopicRouteData,
} from '../../../src/engine/remoting/route-data.js';

const route: TopicRouteData = {
  queueDatas: [{ brokerName: 'b1', readQueueNums: 4, writeQueueNums: 4, perm: 6, topicSysFlag: 0 }],
  brokerDatas: [{ cluster: 'c', brokerName: 'b1', brokerAddrs: { '0': '10.0.0.1:10911', '1': '10.0.0.2:10911' } }],
  filterServerTable: {},
};

describe('route bodies', () => {
  it('emits compact standard JSON for Java clients', () => {
    const text = encodeTopicRouteData(route, jsonStyleFor('JAVA')).toString();
    assert.equal(
      text,
      '{"brokerDatas":[{"brokerAddrs":{"0":"10.0.0.1:10911","1":"10.0.0.2:10911"},"brokerName":"b1","cluster":"c"}],' +
        '"filterServerTable":{},"queueDatas":[{"brokerName":"b1","perm":6,"readQueueNums":4,"topicSynFlag":0,' +
        '"topicSysFlag":0,"writeQueueNums":4}]}',
    );
    assert.deepEqual(JSON.parse(text).brokerDatas[0].brokerAddrs, route.brokerDatas[0]?.brokerAddrs);
  });

  it('emits fastjson bare broker id keys for Go clients, which split brokerAddrs on "," and ":"', () => {
    const text = encodeTopicRouteData(route, jsonStyleFor('GO')).toString();
    assert.ok(text.includes('"brokerAddrs":{0:"10.0.0.1:10911",1:"10.0.0.2:10911"}'), text);
    // What the Go client does with the raw brokerAddrs text:
    const raw = /"brokerAddrs":(\{[^}]*\})/.exec(text)?.[1] ?? '';
    const ids = raw
      .slice(1, -1)
      .split(',')
      .map((entry) => Number.parseInt(entry.slice(0, entry.indexOf(':')), 10));
    assert.deepEqual(ids, [0, 1]);
  });

  it('decodes both styles back to the same route', () => {
    assert.deepEqual(decodeTopicRouteData(encodeTopicRouteData(route, { bareBrokerIdKeys: true })), route);
    assert.deepEqual(decodeTopicRouteData(encodeTopicRouteData(route)), route);
    const info = { brokerAddrTable: { b1: route.brokerDatas[0]! }, clusterAddrTable: { c: ['b1'] } };
    assert.deepEqual(decodeClusterInfo(encodeClusterInfo(info, { bareBrokerIdKeys: true })), info);
  });

  it('quotes bare numeric keys only outside string literals', () => {
    assert.deepEqual(parseFastJson('{"a":"{0:1,2:3}", 5 :[1,2], "b":{-1:"x"}}'), {
      a: '{0:1,2:3}',
      '5': [1, 2],
      b: { '-1': 'x' },
    });
  });

  it('reads a Java broker registration body and rejects malformed topic configs', () => {
    const body = Buffer.from(
      JSON.stringify({
        filterServerList: [],
        topicConfigSerializeWrapper: {
          dataVersion: { counter: 3, timestamp: 1700000000000, stateVersion: 0 },
          topicConfigTable: {
            TopicTest: {
              order: false,
              perm: 6,
              readQueueNums: 4,
              topicFilterType: 'SINGLE_TAG',
              topicName: 'TopicTest',
              topicSysFlag: 0,
              writeQueueNums: 4,
            },
          },
        },
      }),
    );
    const decoded = decodeRegisterBrokerBody(body);
    assert.deepEqual(decoded.topicConfigSerializeWrapper.dataVersion, { counter: 3, timestamp: 1700000000000 });
    assert.equal(decoded.topicConfigSerializeWrapper.topicConfigTable['TopicTest']?.writeQueueNums, 4);
    assert.deepEqual(decodeRegisterBrokerBody(undefined).topicConfigSerializeWrapper.topicConfigTable, {});
    for (const bad of [
      'not json',
      '[]',
      '{"topicConfigSerializeWrapper":{"topicConfigTable":{"t":{"readQueueNums":"4","writeQueueNums":4}}}}',
      '{"topicConfigSerializeWrapper":{"topicConfigTable":{"t":{"readQueueNums":4,"writeQueueNums":4,"perm":9}}}}',
      '{"topicConfigSerializeWrapper":7}',
    ]) {
      assert.throws(
        () => decodeRegisterBrokerBody(Buffer.from(bad)),
        (err) => isRbError(err),
        bad,
      );
    }
  });
});

describe('header fields', () => {
  const request = createRequest(11, {
    topic: 'T',
    queueId: '3',
    offset: '9007199254740991',
    big: '2147483648',
    flag: 'TRUE',
    junk: '12abc',
  });

  it('parses required and optional fields by type', () => {
    assert.equal(requiredString(request, 'topic'), 'T');
    assert.equal(requiredInt(request, 'queueId'), 3);
    assert.equal(requiredLong(request, 'offset'), Number.MAX_SAFE_INTEGER);
    assert.equal(optionalBoolean(request, 'flag', false), true);
    assert.equal(optionalInt(request, 'absent', 16), 16);
    assert.equal(optionalInt(request, 'absent'), undefined);
  });

  it('names the field that is missing or malformed', () => {
    const cases: Array<[() => unknown, string]> = [
      [() => requiredString(request, 'consumerGroup'), 'consumerGroup'],
      [() => requiredInt(request, 'big'), 'big'],
      [() => requiredInt(request, 'junk'), 'junk'],
      [() => optionalBoolean(request, 'topic'), 'topic'],
      [() => requiredString(request, 'toString'), 'toString'],
    ];
    for (const [fn, field] of cases) {
      assert.throws(
        fn,
        (err: unknown) => err instanceof HeaderFieldError && err.field === field && err.message.includes(field),
      );
    }
  });
});
