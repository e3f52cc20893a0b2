/**
 * The demo page in headless Debian chromium (playwright-core) against the stack `rocketbridge start`
 * runs: the real HttpServer serves /demo and the browser client script (serveAsset) and hands /ws to
 * the WebSocket handler; MQTT and AMQP servers share the in-process engine. The page shows a message
 * an MQTT.js client publishes, and publishes one that an amqplib consumer receives. A screenshot goes
 * to test-output/cross-protocol-demo.png.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import amqp, { type ConsumeMessage } from 'amqplib';
import mqtt from 'mqtt';
import { chromium, type Browser } from 'playwright-core';
import { AmqpServer } from '../../../src/adapters/amqp/server.js';
import { HttpServer } from '../../../src/adapters/http/server.js';
import type { MqttServer } from '../../../src/adapters/mqtt/server.js';
import { BROWSER_CLIENT_URL_PATH } from '../../../src/adapters/websocket/index.js';
import { eventually } from '../../helpers/eventually.js';
import { type EmbeddedStack, startEmbeddedStack } from './stack.js';

const CHROMIUM = '/usr/bin/chromium';
const TOPIC = 'BrowserGateway';

describe('demo page in chromium between MQTT and AMQP clients', () => {
  let stack: EmbeddedStack | undefined;
  let mqttServer: MqttServer;
  let amqpServer: AmqpServer;
  let http: HttpServer;
  let browser: Browser | undefined;

  before(async () => {
    stack = await startEmbeddedStack({ serveWebAssets: true });
    ({ mqttServer, amqpServer, http } = stack);
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
    await stack?.close();
  });

  it('shows a message an MQTT client published and publishes one an AMQP consumer receives', async () => {
    const origin = `http://127.0.0.1:${http.port}`;
    const page = await (browser as Browser).newPage();
    const scriptStatuses: number[] = [];
    page.on('response', (response) => {
      if (new URL(response.url()).pathname === BROWSER_CLIENT_URL_PATH) scriptStatuses.push(response.status());
    });
    const mqttClient = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttServer.port}`, {
      clientId: 'browser-gateway-sender',
      reconnectPeriod: 0,
      connectTimeout: 5000,
    });
    const amqpConnection = await amqp.connect(`amqp://guest:guest@127.0.0.1:${amqpServer.port}`);
    try {
      // The AMQP side first: exchange = topic, a queue bound with the tag the page will publish.
      const channel = await amqpConnection.createChannel();
      await channel.assertExchange(TOPIC, 'topic', { durable: true });
      const { queue } = await channel.assertQueue('', { exclusive: true });
      await channel.bindQueue(queue, TOPIC, 'from-page.#');
      const got: ConsumeMessage[] = [];
      await channel.consume(queue, (message) => (message === null ? undefined : got.push(message)), { noAck: true });

      await page.goto(`${origin}/demo`);
      await page.locator('#status.up').waitFor({ timeout: 10_000 });
      assert.deepEqual(scriptStatuses, [200]);
      await page.fill('#sub-topic', TOPIC);
      await page.fill('#sub-tag', '*.temp');
      await page.click('#subscribe');
      await page.locator('#sub-state[data-ready="true"]').waitFor({ timeout: 10_000 });

      // MQTT name BrowserGateway/kitchen/temp = topic BrowserGateway, tag kitchen.temp; the tag
      // expression *.temp matches it, and not the garage/humidity one.
      await mqttClient.publishAsync(`${TOPIC}/garage/humidity`, 'not for the page', { qos: 1 });
      await mqttClient.publishAsync(`${TOPIC}/kitchen/temp`, '21.5 from mqtt', { qos: 1 });
      const row = page.locator('tr.message', { hasText: '21.5 from mqtt' });
      await row.waitFor({ timeout: 10_000 });
      const cells = await row.locator('td').allTextContents();
      assert.equal(cells[1], TOPIC);
      assert.equal(cells[2], 'kitchen.temp');
      assert.deepEqual(JSON.parse(cells[4] ?? '{}'), { 'mqtt.topic': `${TOPIC}/kitchen/temp`, 'mqtt.qos': '1' });
      assert.equal(await page.locator('tr.message').count(), 1);

      await page.fill('#pub-topic', TOPIC);
      await page.fill('#pub-tag', 'from-page.chromium');
      await page.fill('#pub-body', 'hello from chromium');
      await page.click('#publish');
      await page.locator('#pub-state', { hasText: 'stored:' }).waitFor({ timeout: 10_000 });
      await eventually(() => got.length === 1, { timeoutMs: 10_000, intervalMs: 50 });
      const message = got[0] as ConsumeMessage;
      assert.equal(message.content.toString('utf8'), 'hello from chromium');
      assert.equal(message.fields.exchange, TOPIC);
      assert.equal(message.fields.routingKey, 'from-page.chromium');
      assert.deepEqual(message.properties.headers, { source: 'demo' });

      mkdirSync('test-output', { recursive: true });
      await page.screenshot({ path: 'test-output/cross-protocol-demo.png', fullPage: true });
    } finally {
      await page.close();
      await mqttClient.endAsync(true);
      await amqpConnection.close();
    }
  });
});
