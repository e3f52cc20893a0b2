/**
 * The demo page in headless Debian chromium (driven by playwright-core): it connects, subscribes,
 * shows a message sent by the engine Producer, and publishes one the engine SimpleConsumer
 * receives. A screenshot goes to test-output/websocket-demo.png.
 *
 * The harness's HttpServer (the listener `rocketbridge start` runs) serves the page and the browser
 * client through serveAsset(webSocketAssets()), as src/cli/front-ends.ts mounts them, and hands /ws
 * upgrades to the WebSocket handler.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { webSocketAssets } from '../../../src/adapters/websocket/web-assets.js';
import { Producer, type ReceivedMessage, SimpleConsumer } from '../../../src/engine/client/index.js';
import { eventually } from '../../helpers/eventually.js';
import { startWsHarness, type WsHarness } from './ws-harness.js';

const CHROMIUM = '/usr/bin/chromium';

describe('WebSocket demo page in chromium', () => {
  let harness: WsHarness;
  let browser: Browser;
  before(async () => {
    harness = await startWsHarness();
    for (const [path, asset] of webSocketAssets()) harness.http.serveAsset(path, asset);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-features=LocalNetworkAccessChecks',
      ],
    });
  });
  after(async () => {
    await browser?.close();
    await harness.close();
  });

  it('connects, shows a message from the engine, and publishes one the engine receives', async () => {
    const origin = `http://127.0.0.1:${harness.http.port}`;
    const page = await browser.newPage();
    const producer = new Producer({ group: 'browser_test_producer', ...harness.engine() });
    await producer.start();
    await producer.send({ topic: 'BrowserTopic', tags: 'warm', body: Buffer.from('create') });

    await page.goto(`${origin}/demo`);
    await page.locator('#status.up').waitFor({ timeout: 10_000 });
    await page.fill('#sub-topic', 'BrowserTopic');
    await page.fill('#sub-tag', 'web');
    await page.click('#subscribe');
    await page.locator('#sub-state[data-ready="true"]').waitFor({ timeout: 10_000 });

    await producer.send({
      topic: 'BrowserTopic',
      tags: 'web',
      properties: { from: 'engine' },
      body: Buffer.from('to the browser'),
    });
    await page.locator('tr.message', { hasText: 'to the browser' }).waitFor({ timeout: 10_000 });

    const consumer = new SimpleConsumer({
      group: 'browser_test_reader',
      ...harness.engine(),
      awaitDurationMs: 200,
      consumeFromWhere: 'FIRST_OFFSET',
    });
    consumer.subscribe('BrowserTopic', 'from-page');
    await consumer.start();
    await page.fill('#pub-topic', 'BrowserTopic');
    await page.fill('#pub-tag', 'from-page');
    await page.fill('#pub-body', 'hello from chromium');
    await page.click('#publish');
    await page.locator('#pub-state', { hasText: 'stored:' }).waitFor({ timeout: 10_000 });
    const got: ReceivedMessage[] = [];
    await eventually(
      async () => {
        got.push(...(await consumer.receive(8)));
        return got.some((message) => message.body.toString() === 'hello from chromium');
      },
      { timeoutMs: 10_000, intervalMs: 50 },
    );
    const published = got.find((message) => message.body.toString() === 'hello from chromium') as ReceivedMessage;
    assert.equal(published.tags, 'from-page');
    assert.deepEqual(published.properties, { source: 'demo' });
    for (const message of got) await consumer.ack(message);

    mkdirSync('test-output', { recursive: true });
    await page.screenshot({ path: 'test-output/websocket-demo.png', fullPage: true });
    await consumer.shutdown();
    await producer.shutdown();
    await page.close();
  });
});
