/**
 * The client's side of the issue 4 wire formats that need no broker: receipt handles
 * (ExtraInfoUtil), ResetOffsetBody in fastjson and plain JSON, tag-expression validation at
 * subscribe time, delay options on sends, and the CommitLog offset inside an offset message id.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isRbError } from '../../../src/engine/common/errors.js';
import { MessageProperty } from '../../../src/engine/common/properties.js';
import {
  AdminClient,
  applyDelay,
  commitLogOffsetOf,
  decodeResetOffsetBody,
  formatReceiptHandle,
  parseReceiptHandle,
  PushConsumer,
  SimpleConsumer,
  validateSelector,
} from '../../../src/engine/client/index.js';

const NAMESRV = ['127.0.0.1:1'];

describe('client semantics formats', () => {
  it('writes a receipt handle as RocketMQ extraInfo and reads it back', () => {
    const handle = {
      ckStartOffset: 10,
      popTimeMs: 1_700_000_000_000,
      invisibleTimeMs: 30_000,
      reviveQueueId: 3,
      fromRetryTopic: true,
      brokerName: 'broker-a',
      queueId: 2,
      queueOffset: 17,
    };
    const text = formatReceiptHandle(handle);
    assert.equal(text, '10 1700000000000 30000 3 1 broker-a 2 17');
    assert.deepEqual(parseReceiptHandle(text), handle);
    for (const bad of ['', '1 2 3', '1 2 3 4 2 b 0 0', 'x 2 3 4 0 b 0 0']) {
      assert.throws(
        () => parseReceiptHandle(bad),
        (err) => isRbError(err, 'RB_ERR_MESSAGE_ILLEGAL'),
      );
    }
  });

  it('reads ResetOffsetBody with MessageQueue map keys (fastjson) and as a plain JSON list', () => {
    const fastjson = Buffer.from(
      '{"offsetTable":{{"brokerName":"b","queueId":0,"topic":"t"}:5,{"brokerName":"b","queueId":1,"topic":"t"}:0}}',
    );
    assert.deepEqual(decodeResetOffsetBody(fastjson), [
      { queue: { topic: 't', brokerName: 'b', queueId: 0 }, offset: 5 },
      { queue: { topic: 't', brokerName: 'b', queueId: 1 }, offset: 0 },
    ]);
    const plain = Buffer.from('{"offsetTable":[{"topic":"t","brokerName":"b","queueId":3,"offset":7}]}');
    assert.deepEqual(decodeResetOffsetBody(plain), [{ queue: { topic: 't', brokerName: 'b', queueId: 3 }, offset: 7 }]);
    assert.deepEqual(decodeResetOffsetBody(Buffer.from('{"offsetTable":{}}')), []);
    assert.throws(() => decodeResetOffsetBody(Buffer.from('garbage')));
  });

  it('rejects invalid tag expressions at subscribe time with RB_ERR_SUBSCRIPTION_INVALID', () => {
    const invalid = ['a || || b', '|| a', 'a ||', 'a b', 'a | b', 'order..created'];
    for (const expression of invalid) {
      assert.throws(
        () => validateSelector(expression),
        (err) => isRbError(err, 'RB_ERR_SUBSCRIPTION_INVALID'),
        expression,
      );
    }
    assert.throws(
      () => validateSelector({ type: 'SQL92', expression: 'a > 1' }),
      (err) => isRbError(err, 'RB_ERR_SUBSCRIPTION_INVALID') && /SQL92/.test(err.message),
    );
    for (const ok of ['*', '', 'a', 'a || b', ' a||b ', 'order.*', 'order.#.done || x']) validateSelector(ok);
    const simple = new SimpleConsumer({ group: 'g', nameServers: NAMESRV });
    assert.throws(
      () => simple.subscribe('T', 'a || || b'),
      (err) => isRbError(err, 'RB_ERR_SUBSCRIPTION_INVALID'),
    );
    const push = new PushConsumer({ group: 'g', nameServers: NAMESRV });
    assert.throws(
      () => push.subscribe('T', { type: 'SQL92', expression: 'a > 1' }, () => 'CONSUME_SUCCESS'),
      (err) => isRbError(err, 'RB_ERR_SUBSCRIPTION_INVALID'),
    );
    assert.ok(new AdminClient({ nameServers: NAMESRV }));
  });

  it('turns delay options into the DELAY and TIMER_DELIVER_MS properties and rejects bad ones', () => {
    const message = { topic: 'T', body: Buffer.from('x') };
    assert.equal(applyDelay(message, { delayLevel: 3 }).properties?.[MessageProperty.DelayTimeLevel], '3');
    assert.equal(applyDelay(message, { deliverAt: 1234 }).properties?.[MessageProperty.TimerDeliverMs], '1234');
    const before = Date.now();
    const viaDelay = Number(applyDelay(message, { delayMs: 500 }).properties?.[MessageProperty.TimerDeliverMs]);
    assert.ok(viaDelay >= before + 500 && viaDelay <= Date.now() + 500);
    assert.equal(applyDelay(message, {}), message);
    for (const bad of [{ delayLevel: 0 }, { delayLevel: 19 }, { delayLevel: 1.5 }, { delayLevel: 1, delayMs: 5 }]) {
      assert.throws(
        () => applyDelay(message, bad),
        (err) => isRbError(err, 'RB_ERR_MESSAGE_ILLEGAL'),
      );
    }
  });

  it('finds the CommitLog offset in the last 16 hex digits of an offset message id', () => {
    assert.equal(commitLogOffsetOf('7F00000100002A9F00000000000004D2'), 1234);
    assert.throws(() => commitLogOffsetOf('nothex'));
  });
});
