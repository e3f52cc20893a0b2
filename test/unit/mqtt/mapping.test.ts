import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseTagExpression, matchesTag } from '../../../src/engine/common/tag-expression.js';
import { topicNameProblem } from '../../../src/engine/common/topic.js';
import {
  escapeTopicLevel,
  filterProblem,
  matchesFilter,
  MqttProperty,
  mqttNameOf,
  mqttNameOfMessage,
  parseSharedFilter,
  publishTopicProblem,
  qosOfMessage,
  toEngineAddress,
  toEngineFilter,
  unescapeTopicLevel,
} from '../../../src/adapters/mqtt/mapping.js';

const NAMES = [
  'a',
  'a/b',
  'a/b/c',
  'sensors/room 1/temp.c',
  'déjà/vu/ü',
  '/leading',
  'trailing/',
  'a//b',
  'x%y/50%/*',
  'pipe|topic/p|q',
  'dots.in.first/level.two',
  'emoji😀/😀',
];

describe('MQTT topic mapping', () => {
  it('maps a/b/c to topic a and tag b.c', () => {
    assert.deepEqual(toEngineAddress('a/b/c'), { topic: 'a', tag: 'b.c' });
    assert.deepEqual(toEngineAddress('a'), { topic: 'a', tag: undefined });
  });

  it('produces engine topic names RocketMQ accepts for every first level', () => {
    for (const name of NAMES) {
      const { topic } = toEngineAddress(name);
      assert.equal(topicNameProblem(topic), undefined, `${name} -> ${topic}`);
    }
  });

  it('round-trips names whose levels need no escaping through topic and tag', () => {
    for (const name of ['a', 'a/b', 'a/b/c', 'déjà/vu', 'a/b c/d']) {
      const { topic, tag } = toEngineAddress(name);
      assert.equal(mqttNameOf(topic, tag), name);
    }
  });

  it('round-trips every name through topic, tag and the kept property', () => {
    for (const name of NAMES) {
      const { topic, tag } = toEngineAddress(name);
      assert.equal(mqttNameOfMessage(topic, tag, { [MqttProperty.Topic]: name }), name, name);
    }
  });

  it('round-trips escaped first levels and tag words without the property', () => {
    for (const name of ['x%y/50%/*', 'pipe|topic/p|q', 'dots.in.first/level.two', '/leading', 'emoji😀/😀', 'a//b']) {
      const { topic, tag } = toEngineAddress(name);
      assert.equal(mqttNameOf(topic, tag), name, name);
    }
  });

  it('delivers a foreign message as topic/tag-words, or the topic alone without tag', () => {
    assert.equal(mqttNameOf('orders', 'eu.paid'), 'orders/eu/paid');
    assert.equal(mqttNameOf('orders', undefined), 'orders');
    assert.equal(mqttNameOf('orders', ''), 'orders');
  });

  it('escapes wildcards and NUL that a foreign tag would put into an MQTT name', () => {
    assert.equal(mqttNameOf('t', 'a+b.#'), 't/a%2Bb/%23');
    assert.equal(publishTopicProblem(mqttNameOf('t', 'a+b.#')), undefined);
  });

  it('leaves foreign topic names with a lone % as they are', () => {
    assert.equal(unescapeTopicLevel('%RETRY%group'), '%RETRY%group');
    assert.equal(unescapeTopicLevel('100%'), '100%');
  });

  it('ignores a mqtt.topic property that points at another engine topic', () => {
    assert.equal(mqttNameOfMessage('a', 'b', { [MqttProperty.Topic]: 'other/x' }), 'a/b');
  });

  it('reads the publisher QoS, defaulting foreign messages to 1', () => {
    assert.equal(qosOfMessage({ [MqttProperty.Qos]: '2' }), 2);
    assert.equal(qosOfMessage({ [MqttProperty.Qos]: '0' }), 0);
    assert.equal(qosOfMessage({}), 1);
  });

  it('refuses first levels that escape to more than 127 characters', () => {
    assert.throws(() => escapeTopicLevel('é'.repeat(30)), { code: 'RB_ERR_TOPIC_INVALID' });
    assert.match(publishTopicProblem('é'.repeat(30) + '/x') ?? '', /127/);
  });

  it('refuses wildcards, control characters, empty and $ names in publish topics', () => {
    assert.ok(publishTopicProblem('a/+') !== undefined);
    assert.ok(publishTopicProblem('a/#') !== undefined);
    assert.ok(publishTopicProblem('') !== undefined);
    assert.ok(publishTopicProblem('a\u0001b') !== undefined);
    assert.ok(publishTopicProblem('$SYS/x') !== undefined);
    assert.equal(publishTopicProblem('a/b'), undefined);
  });

  it('validates filters as MQTT 4.7.1 says', () => {
    for (const ok of ['#', '+', 'a/#', 'a/+/c', '+/+', '/+', 'a//b']) assert.equal(filterProblem(ok), undefined, ok);
    for (const bad of ['', 'a/#/b', 'a#', 'a/b+', 'a/+b/c', 'a\u0000'])
      assert.notEqual(filterProblem(bad), undefined, bad);
  });

  it('maps filters to topic and tag expression', () => {
    assert.deepEqual(toEngineFilter('a/+/c'), { topic: 'a', tagExpression: '*.c' });
    assert.deepEqual(toEngineFilter('a/#'), { topic: 'a', tagExpression: '*' });
    assert.deepEqual(toEngineFilter('a/b/#'), { topic: 'a', tagExpression: 'b.#' });
    assert.deepEqual(toEngineFilter('a/b'), { topic: 'a', tagExpression: 'b' });
    assert.deepEqual(toEngineFilter('+/x'), { topic: undefined, tagExpression: 'x' });
    assert.deepEqual(toEngineFilter('#'), { topic: undefined, tagExpression: '*' });
    assert.deepEqual(toEngineFilter('a//b'), { topic: 'a', tagExpression: '*' });
  });

  it('builds tag expressions that match at least what the MQTT filter matches', () => {
    const filters = ['a/+/c', 'a/#', 'a/b/#', 'a/b', 'a/+', 'a/x.y/+'];
    const names = ['a', 'a/b', 'a/b/c', 'a/q/c', 'a/b/c/d', 'a/x.y/z', 'a/x.y', 'b/b/c'];
    for (const filter of filters) {
      const engine = toEngineFilter(filter);
      const tagFilter = parseTagExpression(engine.tagExpression);
      for (const name of names) {
        if (!matchesFilter(filter, name)) continue;
        const address = toEngineAddress(name);
        assert.equal(address.topic, engine.topic);
        assert.ok(
          tagFilter.matchesAll || matchesTag(tagFilter, address.tag),
          `${filter} matches ${name} but ${engine.tagExpression} misses ${String(address.tag)}`,
        );
      }
    }
  });

  it('matches names against filters with + and #, and keeps $ names from leading wildcards', () => {
    assert.ok(matchesFilter('a/+/c', 'a/b/c'));
    assert.ok(!matchesFilter('a/+/c', 'a/b/d'));
    assert.ok(matchesFilter('a/#', 'a'));
    assert.ok(matchesFilter('a/#', 'a/b/c'));
    assert.ok(matchesFilter('#', 'x'));
    assert.ok(!matchesFilter('#', '$SYS/x'));
    assert.ok(!matchesFilter('+/x', '$SYS/x'));
    assert.ok(matchesFilter('+', ''));
    assert.ok(!matchesFilter('a/b', 'a/b/c'));
  });

  it('parses shared subscriptions and refuses malformed ones', () => {
    assert.deepEqual(parseSharedFilter('$share/g1/a/+'), { group: 'g1', filter: 'a/+' });
    assert.equal(parseSharedFilter('a/b'), undefined);
    assert.throws(() => parseSharedFilter('$share//a'), { code: 'RB_ERR_SUBSCRIPTION_INVALID' });
    assert.throws(() => parseSharedFilter('$share/g'), { code: 'RB_ERR_SUBSCRIPTION_INVALID' });
    assert.throws(() => parseSharedFilter('$share/g/a/#/b'), { code: 'RB_ERR_SUBSCRIPTION_INVALID' });
  });
});
