/**
 * The browser client module (plain JS) driven from Node with `ws` standing in for the browser's
 * WebSocket: request/answer, subscribe with auto credit, binary bodies, and resubscribe after a
 * lost connection.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { WebSocket } from 'ws';
import { browserClientFilePath } from '../../../src/adapters/websocket/web-assets.js';
import { eventually } from '../../helpers/eventually.js';
import { startWsHarness, type WsHarness } from './ws-harness.js';

interface BrowserMessage {
  subscriptionId: string;
  redelivered: boolean;
  text(): string;
  bytes(): Uint8Array;
  ack(): void;
}

interface BrowserClient {
  isOpen: boolean;
  socket: WebSocket;
  connect(): Promise<Record<string, unknown>>;
  produce(message: Record<string, unknown>): Promise<Record<string, unknown>>;
  subscribe(options: Record<string, unknown>, handler: (message: BrowserMessage) => void): Promise<unknown>;
  on(event: string, listener: (value: unknown) => void): BrowserClient;
  close(): void;
}

type ClientModule = {
  RocketBridgeClient: new (url: string, options?: Record<string, unknown>) => BrowserClient;
};

describe('browser client module', () => {
  let harness: WsHarness;
  let module: ClientModule;
  before(async () => {
    (globalThis as Record<string, unknown>)['WebSocket'] ??= WebSocket;
    harness = await startWsHarness();
    module = (await import(pathToFileURL(browserClientFilePath()).href)) as ClientModule;
  });
  after(async () => {
    await harness.close();
  });

  it('produces text and bytes, and receives them with auto credit beyond the first window', async () => {
    const client = new module.RocketBridgeClient(harness.url, { reconnect: false });
    const welcome = await client.connect();
    assert.equal(welcome['type'], 'welcome');
    await client.produce({ topic: 'BcTopic', body: 'create' });
    const received: BrowserMessage[] = [];
    await client.subscribe({ topic: 'BcTopic', tag: 'x', credit: 4 }, (message) => {
      received.push(message);
      message.ack();
    });
    for (let i = 0; i < 10; i++) await client.produce({ topic: 'BcTopic', tag: 'x', body: `m${i}` });
    const produced = await client.produce({ topic: 'BcTopic', tag: 'x', body: new Uint8Array([0, 255, 1]) });
    assert.equal(typeof produced['msgId'], 'string');
    await eventually(() => received.length === 11, { timeoutMs: 10_000 });
    assert.deepEqual([...(received[10] as BrowserMessage).bytes()], [0, 255, 1]);
    assert.deepEqual(
      received
        .slice(0, 10)
        .map((message) => message.text())
        .sort(),
      Array.from({ length: 10 }, (_, i) => `m${i}`).sort(),
    );
    client.close();
  });

  it('reconnects after a lost connection and resubscribes, receiving unacked messages again', async () => {
    const client = new module.RocketBridgeClient(harness.url, { minReconnectDelayMs: 50 });
    let opens = 0;
    client.on('open', () => opens++);
    await client.connect();
    await client.produce({ topic: 'BcReconnect', body: 'create' });
    const received: BrowserMessage[] = [];
    await client.subscribe({ topic: 'BcReconnect', group: 'bc_reconnect', credit: 10 }, (message) => {
      received.push(message);
    });
    await client.produce({ topic: 'BcReconnect', body: 'keep me' });
    await eventually(() => received.length === 1, { timeoutMs: 10_000 });
    client.socket.terminate();
    await eventually(() => opens === 2 && client.isOpen, { timeoutMs: 10_000 });
    await eventually(() => received.length === 2, { timeoutMs: 10_000 });
    const again = received[1] as BrowserMessage;
    assert.equal(again.text(), 'keep me');
    assert.equal(again.redelivered, true);
    again.ack();
    await client.produce({ topic: 'BcReconnect', body: 'after' });
    await eventually(() => received.some((message) => message.text() === 'after'), { timeoutMs: 10_000 });
    client.close();
  });
});
