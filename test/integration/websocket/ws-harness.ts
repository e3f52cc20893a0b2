/**
 * Test harness for the WebSocket front end: a real NameServer and broker (test/integration/client
 * cluster), the HTTP listener on 127.0.0.1 port 0 with the handler mounted at /ws, and a small `ws`
 * client that matches replies to requestIds and collects pushed messages.
 */
import { WebSocket } from 'ws';
import { HttpServer } from '../../../src/adapters/http/server.js';
import {
  createWebSocketHandler,
  type WebSocketHandler,
  type WebSocketHandlerOptions,
} from '../../../src/adapters/websocket/server.js';
import { AdminClient } from '../../../src/engine/client/index.js';
import { startCluster, type TestCluster } from '../client/cluster.js';
import { eventually } from '../../helpers/eventually.js';

export interface WsHarness {
  cluster: TestCluster;
  http: HttpServer;
  handler: WebSocketHandler;
  url: string;
  /** Client options for engine clients in tests (own in-process transport). */
  engine(): { nameServers: string[]; transport: NonNullable<ReturnType<TestCluster['clientTransport']>['transport']> };
  connect(options?: { hello?: Record<string, unknown> | false }): Promise<WsTestClient>;
  close(): Promise<void>;
}

export type Frame = Record<string, unknown> & { type: string };

export async function startWsHarness(options: Partial<WebSocketHandlerOptions> = {}): Promise<WsHarness> {
  const cluster = await startCluster();
  const nameServers = [cluster.namesrvAddress];
  const admin = new AdminClient({ nameServers, ...cluster.clientTransport('in-process') });
  await admin.start();
  const http = new HttpServer({ host: '127.0.0.1', port: 0, admin, listeners: () => [] });
  const { transport } = cluster.clientTransport('in-process');
  const handler = createWebSocketHandler({ nameServers, pollMs: 500, ...(transport ? { transport } : {}), ...options });
  http.handleUpgrade('/ws', handler.handleUpgrade);
  await http.listen();
  const url = `ws://127.0.0.1:${http.port}/ws`;
  const clients: WsTestClient[] = [];
  return {
    cluster,
    http,
    handler,
    url,
    engine() {
      const own = cluster.clientTransport('in-process').transport;
      if (own === undefined) throw new Error('no in-process transport');
      return { nameServers, transport: own };
    },
    async connect({ hello = {} } = {}) {
      const client = await WsTestClient.open(url);
      clients.push(client);
      if (hello !== false) {
        const welcome = await client.request({ type: 'hello', ...hello });
        if (welcome.type !== 'welcome') throw new Error(`hello answered ${JSON.stringify(welcome)}`);
      }
      return client;
    },
    async close() {
      for (const client of clients) client.ws.terminate();
      await handler.close();
      await http.close();
      await admin.shutdown();
      await cluster.close();
    },
  };
}

let nextRequestId = 1;

/** A `ws` client speaking the JSON protocol, recording every frame it receives. */
export class WsTestClient {
  readonly frames: Frame[] = [];
  readonly binaryFrames: Buffer[] = [];
  closeCode: number | undefined;
  closeReason = '';

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) this.binaryFrames.push(data);
      else this.frames.push(JSON.parse(data.toString('utf8')) as Frame);
    });
    ws.on('close', (code: number, reason: Buffer) => {
      this.closeCode = code;
      this.closeReason = reason.toString('utf8');
    });
    ws.on('error', () => undefined);
  }

  static async open(url: string): Promise<WsTestClient> {
    const ws = new WebSocket(url);
    const client = new WsTestClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return client;
  }

  send(frame: object | string | Buffer): void {
    if (Buffer.isBuffer(frame)) this.ws.send(frame, { binary: true });
    else this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** Sends a frame with a fresh requestId and waits for the frame answering it. */
  async request(frame: Record<string, unknown>, timeoutMs = 8000): Promise<Frame> {
    const requestId = frame['requestId'] ?? `r${nextRequestId++}`;
    this.send({ ...frame, requestId });
    return this.waitFor((each) => each['requestId'] === requestId, timeoutMs);
  }

  /** Waits for a received frame matching `match` (already received ones count). */
  async waitFor(match: (frame: Frame) => boolean, timeoutMs = 8000): Promise<Frame> {
    return eventually(
      () => {
        const found = this.frames.find(match);
        if (found === undefined) throw new Error('no matching frame yet');
        return found;
      },
      { timeoutMs, intervalMs: 10 },
    );
  }

  messages(subscriptionId?: string): Frame[] {
    return this.frames.filter(
      (frame) =>
        frame.type === 'message' && (subscriptionId === undefined || frame['subscriptionId'] === subscriptionId),
    );
  }

  errors(): Frame[] {
    return this.frames.filter((frame) => frame.type === 'error');
  }

  async closed(timeoutMs = 5000): Promise<number> {
    await eventually(() => this.closeCode !== undefined, { timeoutMs, intervalMs: 10 });
    return this.closeCode as number;
  }

  async end(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    const done = new Promise<void>((resolve) => this.ws.once('close', () => resolve()));
    this.ws.close(1000);
    await done;
  }
}

/** Encodes a binary produce frame: uint32 header length, JSON header, body. */
export function binaryFrame(header: object, body: Buffer): Buffer {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32BE(json.length, 0);
  return Buffer.concat([length, json, body]);
}

/** Splits a binary message frame. */
export function splitBinaryFrame(frame: Buffer): { header: Frame; body: Buffer } {
  const headerBytes = frame.readUInt32BE(0);
  return {
    header: JSON.parse(frame.toString('utf8', 4, 4 + headerBytes)) as Frame,
    body: frame.subarray(4 + headerBytes),
  };
}
