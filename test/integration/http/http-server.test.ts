import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { HttpServer } from '../../../src/adapters/http/server.js';
import { AdminClient, Producer } from '../../../src/engine/client/index.js';
import { eventually } from '../../helpers/eventually.js';
import { startCluster, type TestCluster } from '../client/cluster.js';

async function get(
  port: number,
  path: string,
  method = 'GET',
): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () =>
        resolve({
          status: response.statusCode ?? 0,
          type: String(response.headers['content-type'] ?? ''),
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

describe('HTTP listener', () => {
  let cluster: TestCluster;
  let admin: AdminClient;
  let http: HttpServer;

  before(async () => {
    cluster = await startCluster();
    admin = new AdminClient({ nameServers: [cluster.namesrvAddress], ...cluster.clientTransport('in-process') });
    await admin.start();
    http = new HttpServer({
      host: '127.0.0.1',
      port: 0,
      admin,
      listeners: () => [{ protocol: 'RocketMQ NameServer', address: cluster.namesrvAddress }],
    });
    http.serveAsset('/hello.js', { contentType: 'text/javascript', body: 'export const hello = 1;' });
    http.handleUpgrade('/echo', (_request, socket) => socket.end('HTTP/1.1 418 Teapot\r\nContent-Length: 0\r\n\r\n'));
    await http.listen();
  });

  after(async () => {
    await http.close();
    await admin.shutdown();
    await cluster.close();
  });

  it('serves the dashboard page at /dashboard, and at / when no asset is served there', async () => {
    for (const path of ['/dashboard', '/']) {
      const page = await get(http.port, path);
      assert.equal(page.status, 200);
      assert.match(page.type, /text\/html/);
      assert.match(page.body, /<title>rocketbridge<\/title>/);
    }
  });

  it('reports brokers, listeners and user topics at /api/overview', async () => {
    const producer = new Producer({ group: 'http-test', nameServers: [cluster.namesrvAddress] });
    await producer.start();
    await producer.send({ topic: 'dashboard-topic', body: Buffer.from('x') });
    await producer.shutdown();
    const overview = await eventually(async () => {
      const response = await get(http.port, '/api/overview');
      const parsed = JSON.parse(response.body) as {
        brokers: { brokerName: string; runtime?: Record<string, string> }[];
        topics: string[];
        listeners: { protocol: string }[];
      };
      assert.ok(parsed.topics.includes('dashboard-topic'), `topics: ${parsed.topics.join(',')}`);
      return parsed;
    });
    assert.equal(overview.brokers.length, 1);
    assert.equal(overview.brokers[0]?.brokerName, cluster.broker.address ? 'broker-a' : '');
    assert.ok(Number(overview.brokers[0]?.runtime?.['putMessageTimesTotal']) >= 1);
    assert.ok(!overview.topics.some((topic) => topic.startsWith('%') || topic === 'TBW102'));
    assert.equal(overview.listeners[0]?.protocol, 'RocketMQ NameServer');
  });

  it('exposes Prometheus metrics with broker figures at /metrics', async () => {
    const metrics = await get(http.port, '/metrics');
    assert.equal(metrics.status, 200);
    assert.match(metrics.type, /text\/plain/);
    assert.match(metrics.body, /rocketbridge_broker_up\{cluster="DefaultCluster",broker="broker-a",broker_id="0"\} 1/);
    assert.match(metrics.body, /rocketbridge_broker_put_messages_total\{[^}]*\} \d+/);
    assert.match(metrics.body, /rocketbridge_process_resident_memory_bytes/);
  });

  it('serves registered assets with their content type', async () => {
    const asset = await get(http.port, '/hello.js');
    assert.equal(asset.status, 200);
    assert.equal(asset.type, 'text/javascript');
    assert.equal(asset.body, 'export const hello = 1;');
  });

  it('answers 404 for unknown paths and 405 for other methods', async () => {
    assert.equal((await get(http.port, '/nope')).status, 404);
    assert.equal((await get(http.port, '/', 'POST')).status, 405);
  });

  it('routes upgrades by path and refuses unknown upgrade paths', async () => {
    const answer = async (path: string): Promise<string> =>
      new Promise((resolve, reject) => {
        const socket = connect(http.port, '127.0.0.1', () => {
          socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`);
        });
        let text = '';
        socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
        socket.on('close', () => resolve(text));
        socket.on('error', reject);
      });
    assert.match(await answer('/echo'), /^HTTP\/1.1 418/);
    assert.match(await answer('/unknown'), /^HTTP\/1.1 404/);
  });
});
