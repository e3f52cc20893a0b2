import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { headersMatch, topicMatches } from '../../../src/adapters/amqp/definitions.js';
import { FieldTyped } from '../../../src/adapters/amqp/field-table.js';
import {
  AmqpProperty,
  DEFAULT_EXCHANGE_TOPIC,
  decodeName,
  encodeName,
  exchangeOfTopic,
  groupOfQueue,
  toAmqpContent,
  toEngineMessage,
  topicOfExchange,
} from '../../../src/adapters/amqp/mapping.js';
import { topicNameProblem } from '../../../src/engine/common/topic.js';

describe('AMQP name mapping', () => {
  it('keeps plain exchange names as topic names and encodes the rest reversibly into the topic alphabet', () => {
    assert.equal(topicOfExchange('orders'), 'orders');
    assert.equal(topicOfExchange('amq.topic'), 'amq%2Etopic');
    assert.equal(topicOfExchange(''), DEFAULT_EXCHANGE_TOPIC);
    for (const name of ['amq.topic', 'a b/c', 'logs.%41', 'ünïcode.ex', 'x|y', '100%']) {
      const topic = topicOfExchange(name);
      assert.equal(topicNameProblem(topic), undefined, `${name} -> ${topic} is a valid topic`);
      assert.equal(exchangeOfTopic(topic), name);
    }
    assert.equal(exchangeOfTopic(DEFAULT_EXCHANGE_TOPIC), '');
    assert.equal(decodeName(encodeName('%25')), '%25');
    assert.equal(groupOfQueue('tasks.high'), 'AMQP_QUEUE_tasks%2Ehigh');
  });
});

describe('AMQP message mapping', () => {
  it('round-trips every content property, typed headers and the routing key through an engine message', () => {
    const properties = {
      contentType: 'application/json',
      contentEncoding: 'gzip',
      headers: { count: 3, big: new FieldTyped('l', 2n ** 40n), flag: true, nested: { a: 'b' }, list: [1, 'x'] },
      deliveryMode: 2,
      priority: 5,
      correlationId: 'corr',
      replyTo: 'amq.rabbitmq.reply-to',
      expiration: '60000',
      messageId: 'mid-1',
      timestamp: 1_700_000_000,
      type: 'order.created',
      userId: 'guest',
      appId: 'shop',
      clusterId: 'c1',
    };
    const message = toEngineMessage({
      exchange: 'shop.events',
      routingKey: 'order.created',
      properties,
      body: Buffer.from('{}'),
    });
    assert.equal(message.topic, 'shop%2Eevents');
    assert.equal(message.tags, 'order.created');
    assert.deepEqual(message.keys, ['mid-1']);
    assert.equal(message.properties?.['count'], '3', 'plain header copy for other protocols');
    assert.equal(message.properties?.['nested'], undefined, 'tables are only in the exact copy');
    const back = toAmqpContent({
      topic: message.topic,
      tags: message.tags,
      properties: message.properties ?? {},
      body: message.body,
    });
    assert.equal(back.exchange, 'shop.events');
    assert.equal(back.routingKey, 'order.created');
    assert.deepEqual(back.body, Buffer.from('{}'));
    const { headers, ...rest } = back.properties;
    const { headers: sentHeaders, ...sentRest } = properties;
    assert.deepEqual(rest, sentRest);
    assert.equal(headers?.['count'], 3);
    assert.equal(headers?.['flag'], true);
    assert.deepEqual(headers?.['nested'], { a: 'b' });
    const big = headers?.['big'];
    assert.equal(Number(big instanceof FieldTyped ? big.value : big), 2 ** 40);
    assert.ok(sentHeaders);
  });

  it('stores an empty body as one byte with a marker and restores it empty', () => {
    const message = toEngineMessage({ exchange: '', routingKey: 'q', properties: {}, body: Buffer.alloc(0) });
    assert.equal(message.body.length, 1);
    assert.equal(message.properties?.[AmqpProperty.EmptyBody], '1');
    const back = toAmqpContent({
      topic: message.topic,
      tags: message.tags,
      properties: message.properties ?? {},
      body: message.body,
    });
    assert.equal(back.body.length, 0);
    assert.equal(back.exchange, '');
  });

  it('delivers a message from another protocol with its user properties as headers', () => {
    const back = toAmqpContent({
      topic: 'sensors',
      tags: 'room.1',
      properties: { unit: 'C' },
      body: Buffer.from('21'),
    });
    assert.deepEqual(back.properties.headers, { unit: 'C' });
    assert.equal(back.routingKey, 'room.1');
    const untagged = toAmqpContent({ topic: 'sensors', tags: undefined, properties: {}, body: Buffer.from('x') });
    assert.equal(untagged.routingKey, '');
    assert.equal(untagged.properties.headers, undefined);
  });
});

describe('AMQP binding matching', () => {
  it('matches topic patterns word by word', () => {
    const cases: [string, string, boolean][] = [
      ['*.error', 'kern.error', true],
      ['*.error', 'a.b.error', false],
      ['kern.#', 'kern', true],
      ['kern.#', 'kern.disk.full', true],
      ['#', '', true],
      ['#.end', 'a.b.end', true],
      ['a.*.c', 'a.c', false],
      ['*', '', true],
      ['a.#.b', 'a.b', true],
      ['exact', 'exact', true],
    ];
    for (const [pattern, key, expected] of cases)
      assert.equal(topicMatches(pattern, key), expected, `${pattern} vs ${key}`);
  });

  it('matches headers with x-match all and any, ignoring x- arguments', () => {
    assert.equal(headersMatch({ 'x-match': 'all', a: 1, b: 'x' }, { a: 1, b: 'x', c: 3 }), true);
    assert.equal(headersMatch({ 'x-match': 'all', a: 1, b: 'x' }, { a: 1 }), false);
    assert.equal(headersMatch({ 'x-match': 'any', a: 1, b: 'x' }, { b: 'x' }), true);
    assert.equal(headersMatch({ 'x-match': 'any', a: 1 }, undefined), false);
    assert.equal(headersMatch({ 'x-dead': 1 }, {}), true);
  });
});
