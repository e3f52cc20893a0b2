import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { ErrorCode, isRbError } from '../../../src/engine/common/errors.js';
import { ProcessorRegistry, type RemotingChannel } from '../../../src/engine/remoting/channel.js';
import { CloseReason } from '../../../src/engine/remoting/close-reason.js';
import { ResponseCode, SerializeType } from '../../../src/engine/remoting/codes.js';
import { createRequest, createResponse, markOneway } from '../../../src/engine/remoting/command.js';
import type { TcpChannel } from '../../../src/engine/remoting/tcp-channel.js';
import { RemotingClient } from '../../../src/engine/remoting/tcp-client.js';
import { RemotingServer } from '../../../src/engine/remoting/tcp-server.js';
import { eventually } from '../../helpers/eventually.js';
import { restartablePort } from '../../helpers/ports.js';

const ECHO = 1;
const SLOW = 2;
const CAPTURE = 3;
const NOTIFY = 40;

interface Harness {
  server: RemotingServer;
  address: string;
  channels: RemotingChannel[];
  releaseSlow: () => void;
}

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function echoRegistry(channels: RemotingChannel[]): { registry: ProcessorRegistry; releaseSlow: () => void } {
  const waiting: Array<() => void> = [];
  const registry = new ProcessorRegistry()
    .register(ECHO, async (request) => {
      const delayMs = Number(request.extFields['delayMs'] ?? '0');
      if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
      return createResponse(
        request,
        ResponseCode.Success,
        undefined,
        { echo: request.extFields['n'] ?? '' },
        request.body,
      );
    })
    .register(SLOW, async (request) => {
      await new Promise<void>((resolve) => waiting.push(resolve));
      return createResponse(request, ResponseCode.Success, 'slow done');
    })
    .register(CAPTURE, (request, channel) => {
      channels.push(channel);
      return createResponse(request, ResponseCode.Success);
    });
  return { registry, releaseSlow: () => waiting.splice(0).forEach((resolve) => resolve()) };
}

async function startServer(
  options: { port?: number; maxConnections?: number; idleTimeoutMs?: number; maxReadBytesPerTurn?: number } = {},
): Promise<Harness> {
  const channels: RemotingChannel[] = [];
  const { registry, releaseSlow } = echoRegistry(channels);
  const server = new RemotingServer({ name: 'test', host: '127.0.0.1', port: options.port ?? 0, registry, ...options });
  await server.listen();
  cleanups.push(async () => {
    releaseSlow();
    await server.close();
  });
  return { server, address: `127.0.0.1:${server.port}`, channels, releaseSlow };
}

function newClient(registry?: ProcessorRegistry): RemotingClient {
  const client = new RemotingClient(
    registry !== undefined ? { registry, connectTimeoutMs: 1000 } : { connectTimeoutMs: 1000 },
  );
  cleanups.push(() => client.close());
  return client;
}

describe('remoting TCP client and server', () => {
  it('matches concurrent responses to their requests by opaque over one connection', async () => {
    const { server, address } = await startServer();
    const client = newClient();
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, n) =>
        client.invoke(address, createRequest(ECHO, { n: String(n), delayMs: String((n * 7) % 20) }), 5000),
      ),
    );
    assert.deepEqual(
      results.map((response) => response.extFields['echo']),
      Array.from({ length: 50 }, (_, n) => String(n)),
    );
    assert.equal(server.connectionCount, 1);
  });

  it('answers every request of a burst when the server yields after each few bytes it reads', async () => {
    const { address } = await startServer({ maxReadBytesPerTurn: 1 });
    const client = newClient();
    const body = Buffer.alloc(3000, 7);
    const results = await Promise.all(
      Array.from({ length: 300 }, (_, n) => client.invoke(address, createRequest(ECHO, { n: String(n) }, body), 5000)),
    );
    assert.deepEqual(
      results.map((response) => response.extFields['echo']),
      Array.from({ length: 300 }, (_, n) => String(n)),
    );
    assert.ok(results.every((response) => response.body?.equals(body)));
  });

  it('answers a fast request while a slow one on the same connection still waits', async () => {
    const { address, releaseSlow } = await startServer();
    const client = newClient();
    const slow = client.invoke(address, createRequest(SLOW), 5000);
    const fast = await client.invoke(address, createRequest(ECHO, { n: 'fast' }), 5000);
    assert.equal(fast.extFields['echo'], 'fast');
    releaseSlow();
    assert.equal((await slow).remark, 'slow done');
  });

  it('rejects with RequestTimeout when no response comes in time and keeps the connection usable', async () => {
    const { address, server } = await startServer();
    const client = newClient();
    await assert.rejects(client.invoke(address, createRequest(SLOW), 100), (err) =>
      isRbError(err, ErrorCode.RequestTimeout),
    );
    const response = await client.invoke(address, createRequest(ECHO, { n: 'after' }), 5000);
    assert.equal(response.extFields['echo'], 'after');
    assert.equal(server.connectionCount, 1);
  });

  it('answers a binary (ROCKETMQ) request in the binary serialization', async () => {
    const { address } = await startServer();
    const client = newClient();
    const request = {
      ...createRequest(ECHO, { n: 'bin' }, Buffer.from('payload')),
      serializeType: SerializeType.RocketMq,
    };
    const response = await client.invoke(address, request, 5000);
    assert.equal(response.serializeType, SerializeType.RocketMq);
    assert.equal(response.extFields['echo'], 'bin');
    assert.equal(response.body?.toString(), 'payload');
  });

  it('answers an unknown request code with REQUEST_CODE_NOT_SUPPORTED', async () => {
    const { address } = await startServer();
    const response = await newClient().invoke(address, createRequest(9999), 5000);
    assert.equal(response.code, ResponseCode.RequestCodeNotSupported);
  });

  it('fails requests in flight with ConnectionClosed when the server goes away', async () => {
    const { address, server } = await startServer();
    const client = newClient();
    const pending = client.invoke(address, createRequest(SLOW), 5000);
    await eventually(() => server.connectionCount === 1);
    await server.close();
    await assert.rejects(pending, (err) => isRbError(err, ErrorCode.ConnectionClosed));
  });

  it('reconnects on the next request after the server restarts', async () => {
    const port = await restartablePort();
    const first = await startServer({ port });
    const client = newClient();
    assert.equal((await client.invoke(first.address, createRequest(ECHO, { n: '1' }), 5000)).extFields['echo'], '1');
    await first.server.close();
    const second = await startServer({ port });
    const response = await eventually(() => client.invoke(second.address, createRequest(ECHO, { n: '2' }), 1000), {
      timeoutMs: 5000,
    });
    assert.equal(response.extFields['echo'], '2');
  });

  it('fails with ConnectionClosed when nothing listens at the address', async () => {
    const { server } = await startServer();
    const port = server.port;
    await server.close();
    const client = newClient();
    await assert.rejects(client.invoke(`127.0.0.1:${port}`, createRequest(ECHO), 2000), (err) =>
      isRbError(err, ErrorCode.ConnectionClosed),
    );
    await assert.rejects(client.invoke('no-port', createRequest(ECHO), 2000), (err) =>
      isRbError(err, ErrorCode.ConnectionClosed),
    );
  });

  it('lets the server send a request to the client and get the answer', async () => {
    const { address, channels } = await startServer();
    const notified: string[] = [];
    const clientRegistry = new ProcessorRegistry().register(NOTIFY, (request) => {
      notified.push(request.extFields['consumerGroup'] ?? '');
      return createResponse(request, ResponseCode.Success, 'seen');
    });
    const client = newClient(clientRegistry);
    await client.invoke(address, createRequest(CAPTURE), 5000);
    const channel = channels[0];
    assert.ok(channel !== undefined);
    assert.match(channel.remoteAddress, /^127\.0\.0\.1:\d+$/);
    const answer = await channel.invoke(createRequest(NOTIFY, { consumerGroup: 'g1' }), 5000);
    assert.equal(answer.remark, 'seen');
    channel.invokeOneway(createRequest(NOTIFY, { consumerGroup: 'g2' }));
    await eventually(() => notified.length === 2);
    assert.deepEqual(notified, ['g1', 'g2']);
    // A code the client does not handle is answered, not dropped.
    const unsupported = await channel.invoke(createRequest(307), 5000);
    assert.equal(unsupported.code, ResponseCode.RequestCodeNotSupported);
  });

  it('sends a oneway request without waiting for an answer', async () => {
    const { address, channels } = await startServer();
    const client = newClient();
    await client.invokeOneway(address, markOneway(createRequest(CAPTURE)));
    await eventually(() => channels.length === 1);
  });

  it('refuses connections beyond maxConnections and keeps serving the others', async () => {
    const { address, server } = await startServer({ maxConnections: 1 });
    const first = newClient();
    await first.invoke(address, createRequest(ECHO), 5000);
    const second = newClient();
    await assert.rejects(second.invoke(address, createRequest(ECHO), 2000), (err) =>
      isRbError(err, ErrorCode.ConnectionClosed),
    );
    assert.equal((await first.invoke(address, createRequest(ECHO, { n: 'still' }), 5000)).extFields['echo'], 'still');
    assert.equal(server.connectionCount, 1);
  });

  it('closes an idle connection with the reason "idle"', async () => {
    const { address, server } = await startServer({ idleTimeoutMs: 100 });
    const reasons: Array<string | undefined> = [];
    server.onChannelClosed((channel) => reasons.push((channel as TcpChannel).closeReason));
    await newClient().invoke(address, createRequest(ECHO), 5000);
    await eventually(() => reasons.length === 1, { timeoutMs: 3000 });
    assert.deepEqual(reasons, [CloseReason.Idle]);
  });

  it('fails requests in flight and later requests once the client is closed', async () => {
    const { address } = await startServer();
    const client = new RemotingClient();
    const pending = client.invoke(address, createRequest(SLOW), 5000);
    await client.invoke(address, createRequest(ECHO), 5000);
    await client.close();
    await assert.rejects(pending, (err) => isRbError(err, ErrorCode.ConnectionClosed));
    await assert.rejects(client.invoke(address, createRequest(ECHO), 1000), (err) =>
      isRbError(err, ErrorCode.ConnectionClosed),
    );
  });
});
