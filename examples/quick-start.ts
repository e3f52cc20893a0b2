/**
 * Quick start, shaped like rocketmq-client-go's examples: a producer sends to topic `test` with
 * SendSync, and a push consumer in group `testGroup` reads it from the first offset. Run it against
 * `rocketbridge start` (NameServer at 127.0.0.1:9876):
 *
 *   node --import tsx examples/quick-start.ts
 */
import { Producer, PushConsumer } from '../src/engine/client/index.js';

const nameServers = [process.env['NAMESRV_ADDR'] ?? '127.0.0.1:9876'];
const count = 10;

const producer = new Producer({ group: 'testGroup', nameServers, retryTimesWhenSendFailed: 2 });
await producer.start();
for (let i = 0; i < count; i++) {
  const result = await producer.send({ topic: 'test', body: Buffer.from(`Hello RocketMQ Go Client! ${i}`) });
  console.log(
    `send message success: result=${result.status} msgId=${result.msgId} queue=${result.messageQueue.queueId} offset=${result.queueOffset}`,
  );
}
await producer.shutdown();

let received = 0;
let resolveAll = (): void => undefined;
let rejectAll = (_err: Error): void => undefined;
const allReceived = new Promise<void>((resolve, reject) => {
  resolveAll = resolve;
  rejectAll = reject;
});
const consumer = new PushConsumer({ group: 'testGroup', nameServers, consumeFromWhere: 'FIRST_OFFSET' });
consumer.subscribe('test', '*', (messages) => {
  for (const message of messages) {
    console.log(`subscribe callback: msgId=${message.msgId} body=${message.body.toString()}`);
    received++;
  }
  if (received >= count) resolveAll();
  return 'CONSUME_SUCCESS';
});
await consumer.start();
const timeout = setTimeout(() => rejectAll(new Error(`only ${received} of ${count} messages arrived`)), 30_000);
try {
  await allReceived;
} finally {
  clearTimeout(timeout);
  await consumer.shutdown();
}
