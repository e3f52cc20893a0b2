/**
 * The one HTTP listener (default port 8080): WebSocket upgrades routed by path (e.g. /mqtt, /ws) to
 * the front ends that register them, the dashboard at /dashboard (and at / unless an asset is served
 * there), its data at /api/overview, and Prometheus
 * metrics at /metrics. Unknown paths get 404; unknown upgrade paths are refused with 404 before any
 * WebSocket handshake.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Registry } from 'prom-client';
import type { AdminClient } from '../../engine/client/index.js';
import { createLogger } from '../../engine/common/logger.js';
import { DASHBOARD_HTML, type Listener, readOverview } from './dashboard.js';
import { createMetricsRegistry } from './metrics.js';

const log = createLogger('http');

export type UpgradeHandler = (request: IncomingMessage, socket: Duplex, head: Buffer) => void;

/** A page or script served as is, e.g. the WebSocket demo and browser client. */
export interface StaticAsset {
  contentType: string;
  body: string | Buffer;
}

export interface HttpServerOptions {
  host: string;
  port: number;
  /** Reads broker and topic data for the dashboard and /metrics. */
  admin: AdminClient;
  /** Every listener of the process, shown on the dashboard. */
  listeners: () => Listener[];
}

export class HttpServer {
  private readonly server: Server;
  private readonly upgrades = new Map<string, UpgradeHandler>();
  private readonly assets = new Map<string, StaticAsset>();
  private readonly metrics: Registry;

  constructor(private readonly options: HttpServerOptions) {
    this.metrics = createMetricsRegistry(options.admin);
    this.server = createServer((request, response) => {
      this.route(request, response).catch((err: unknown) => {
        log.warn({ err, url: request.url }, 'request failed');
        if (!response.headersSent) response.writeHead(500, { 'content-type': 'text/plain' });
        response.end('internal error\n');
      });
    });
    this.server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      const handler = this.upgrades.get(pathOf(request));
      if (handler === undefined) {
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      handler(request, socket, head);
    });
    this.server.on('clientError', (err, socket) => {
      log.debug({ err }, 'bad HTTP request');
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    });
  }

  /** Routes WebSocket upgrades for `path` (exact match, e.g. "/mqtt") to `handler`. */
  handleUpgrade(path: string, handler: UpgradeHandler): void {
    this.upgrades.set(path, handler);
  }

  /** Serves `asset` at `path` (exact match). */
  serveAsset(path: string, asset: StaticAsset): void {
    this.assets.set(path, asset);
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async route(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = pathOf(request);
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    const asset = this.assets.get(path);
    if (asset !== undefined) {
      response.writeHead(200, { 'content-type': asset.contentType }).end(asset.body);
    } else if (path === '/' || path === '/dashboard') {
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(DASHBOARD_HTML);
    } else if (path === '/api/overview') {
      const overview = await readOverview(this.options.admin, this.options.listeners());
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(overview));
    } else if (path === '/metrics') {
      const text = await this.metrics.metrics();
      response.writeHead(200, { 'content-type': this.metrics.contentType }).end(text);
    } else {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  }
}

function pathOf(request: IncomingMessage): string {
  const url = request.url ?? '/';
  const query = url.indexOf('?');
  return query < 0 ? url : url.slice(0, query);
}
