import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeSendProperties } from '../../../src/engine/client/producer.js';
import type { Message } from '../../../src/engine/common/message.js';
import {
  decodeProperties,
  encodeProperties,
  KEY_SEPARATOR,
  MessageProperty,
  type Properties,
} from '../../../src/engine/common/properties.js';

/** What the producer sent before encodeSendProperties: a merged copy, then encodeProperties. */
function reference(message: Message, uniqueId: string): string {
  const properties: Properties = { ...message.properties };
  if (message.tags !== undefined && message.tags.length > 0) properties[MessageProperty.Tags] = message.tags;
  if (message.keys !== undefined && message.keys.length > 0) {
    properties[MessageProperty.Keys] = message.keys.join(KEY_SEPARATOR);
  }
  properties[MessageProperty.UniqueClientMessageId] ??= uniqueId;
  properties[MessageProperty.WaitStoreMsgOk] ??= 'true';
  return encodeProperties(properties);
}

const body = Buffer.from('x');

describe('encodeSendProperties', () => {
  const cases: Array<[string, Message]> = [
    ['no properties', { topic: 'T', body }],
    ['tags and keys', { topic: 'T', body, tags: 'TagA', keys: ['k1', 'k2'] }],
    ['empty tags and keys', { topic: 'T', body, tags: '', keys: [] }],
    ['own properties', { topic: 'T', body, tags: 'b.c', properties: { mqttTopic: 'a/b/c', 'x y': 'ü' } }],
    [
      'own TAGS and KEYS overridden in place',
      { topic: 'T', body, tags: 'New', keys: ['k'], properties: { KEYS: 'old', a: '1', TAGS: 'Old' } },
    ],
    ['own TAGS kept without tags', { topic: 'T', body, properties: { TAGS: 'Own', KEYS: 'own' } }],
    ['own UNIQ_KEY and WAIT kept', { topic: 'T', body, properties: { WAIT: 'false', UNIQ_KEY: 'ABC', z: 'z' } }],
    ['numeric names first', { topic: 'T', body, tags: 't', properties: { b: 'b', 2: 'two', 1: 'one' } }],
    ['transaction half', { topic: 'T', body, properties: { TRAN_MSG: 'true', PGROUP: 'g' } }],
  ];
  for (const [name, message] of cases) {
    it(`writes what the merged properties encode to: ${name}`, () => {
      const { text, uniqueId } = encodeSendProperties(message);
      assert.equal(text, reference(message, uniqueId));
      assert.equal(decodeProperties(text)[MessageProperty.UniqueClientMessageId], uniqueId);
    });
  }

  it('gives every message its own unique id unless it has one', () => {
    const a = encodeSendProperties({ topic: 'T', body });
    const b = encodeSendProperties({ topic: 'T', body });
    assert.notEqual(a.uniqueId, b.uniqueId);
    assert.match(a.uniqueId, /^[0-9A-F]{32}$/);
    assert.equal(encodeSendProperties({ topic: 'T', body, properties: { UNIQ_KEY: 'mine' } }).uniqueId, 'mine');
  });

  it('does not change the message', () => {
    const properties = { a: '1' };
    const message: Message = { topic: 'T', body, tags: 'x', properties };
    encodeSendProperties(message);
    assert.deepEqual(properties, { a: '1' });
  });
});
