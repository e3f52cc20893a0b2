/**
 * The AMQP 0-9-1 server: a TCP listener (embedded next to the broker, or a separate gateway that
 * reaches the engine over a client Transport), the connection limit, and shutdown. Owns the Vhost
 * (topology, queues, publishing) and hands each accepted socket to an AmqpConnection.
 *
 * Close reasons, logged and sent as connection.close where a connection exists:
 *   'connection-limit'  more than maxConnections: the socket is closed before the handshake
 *   'server-shutdown'   close(): every connection gets 320 CONNECTION_FORCED
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { Transport } from '../../engine/client/index.js';
import { createLogger } from '../../engine/common/logger.js';
import { AmqpConnection, type AmqpUser, type ConnectionConfig } from './connection.js';
import { ReplyCode } from './reply-codes.js';
import { type QueueBackendFactory, Vhost } from './vhost.js';

const log = createLogger('amqp-server');

export const AmqpCloseReason = {
  ConnectionLimit: 'connection-limit',
  ServerShutdown: 'server-shutdown',
} as const;
export type AmqpCloseReason = (typeof AmqpCloseReason)[keyof typeof AmqpCloseReason];

export interface AmqpServerOptions {
  host?: string;
  /** 5672 by default; 0 picks a free port. */
  port?: number;
  /** NameServer addresses of the engine. */
  nameServers: readonly string[];
  /** How the engine client reaches the servers (in-process when embedded); TCP when omitted. */
  transport?: Transport;
  /** Users allowed to log in; default guest/guest as RabbitMQ. */
  users?: readonly AmqpUser[];
  /** Accept any credentials. */
  allowAnonymous?: boolean;
  maxConnections?: number;
  /** Largest frame offered in connection.tune (default 131072, RabbitMQ's). */
  frameMaxBytes?: number;
  channelMax?: number;
  /** Heartbeat offered in connection.tune, seconds (default 60). */
  heartbeatSec?: number;
  /** Largest message body accepted (default 4 MiB, the engine producer's limit). */
  maxMessageBytes?: number;
  closeTimeoutMs?: number;
  handshakeTimeoutMs?: number;
  /** 'pop' (SimpleConsumer, default) or 'pull' (PullConsumer); see vhost.ts. */
  queueBackend?: 'pop' | 'pull';
  backendFactory?: QueueBackendFactory;
  /**
   * Publisher flow control: connection.blocked once this many publishes (all connections) wait to
   * be stored (default 20,000), or their bytes exceed backlogHighWaterBytes (default 256 MiB).
   */
  backlogHighWaterMessages?: number;
  backlogHighWaterBytes?: number;
  /** connection.blocked while the process RSS is above this; off by default. */
  memoryHighWaterBytes?: number;
  /** How often a store or memory alarm is re-checked (default 1000 ms). */
  flowCheckIntervalMs?: number;
  /** How often changed durable definitions are snapshotted into their log (default 10 min; vhost.ts). */
  definitionsSnapshotIntervalMs?: number;
}

/** An AMQP 0-9-1 listener backed by the engine. */
export class AmqpServer {
  private readonly server: Server;
  private readonly vhost: Vhost;
  private readonly connections = new Set<AmqpConnection>();
  private readonly config: ConnectionConfig;
  private nextConnectionId = 1;
  private listening = false;

  constructor(private readonly options: AmqpServerOptions) {
    const vhostOptions: ConstructorParameters<typeof Vhost>[0] = { nameServers: options.nameServers };
    if (options.transport !== undefined) vhostOptions.transport = options.transport;
    if (options.backendFactory !== undefined) vhostOptions.backendFactory = options.backendFactory;
    if (options.queueBackend !== undefined) vhostOptions.queueBackend = options.queueBackend;
    for (const key of [
      'backlogHighWaterMessages',
      'backlogHighWaterBytes',
      'memoryHighWaterBytes',
      'flowCheckIntervalMs',
      'definitionsSnapshotIntervalMs',
    ] as const) {
      const value = options[key];
      if (value !== undefined) vhostOptions[key] = value;
    }
    this.vhost = new Vhost(vhostOptions);
    this.config = {
      users: options.users ?? [{ username: 'guest', password: 'guest' }],
      allowAnonymous: options.allowAnonymous ?? false,
      frameMaxBytes: options.frameMaxBytes ?? 131_072,
      channelMax: options.channelMax ?? 2047,
      heartbeatSec: options.heartbeatSec ?? 60,
      maxMessageBytes: options.maxMessageBytes ?? 4 * 1024 * 1024,
      closeTimeoutMs: options.closeTimeoutMs ?? 3000,
      handshakeTimeoutMs: options.handshakeTimeoutMs ?? 10_000,
      productVersion: '0.1.0',
    };
    this.server = createServer((socket) => this.accept(socket));
  }

  /** Replays the durable definitions, then listens. */
  async listen(): Promise<void> {
    await this.vhost.start();
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port ?? 5672, this.options.host ?? '0.0.0.0', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.server.on('error', (err) => log.error({ err }, 'AMQP listener error'));
    this.listening = true;
    log.info({ port: this.port }, 'AMQP server listening');
  }

  get port(): number {
    const address = this.server.address();
    return typeof address === 'object' && address !== null ? address.port : 0;
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  private accept(socket: Socket): void {
    const limit = this.options.maxConnections;
    if (limit !== undefined && this.connections.size >= limit) {
      log.warn({ reason: AmqpCloseReason.ConnectionLimit, limit }, 'refusing an AMQP connection');
      socket.destroy();
      return;
    }
    const connection = new AmqpConnection(this.nextConnectionId++, socket, this.vhost, this.config);
    this.connections.add(connection);
    void connection.closed.then(() => this.connections.delete(connection));
  }

  /** Stops listening, closes every connection with 320 CONNECTION_FORCED, stops the queues. */
  async close(): Promise<void> {
    if (this.listening) {
      this.listening = false;
      const closing = new Promise<void>((resolve) => this.server.close(() => resolve()));
      for (const connection of this.connections) {
        connection.closeWith(ReplyCode.ConnectionForced, `CONNECTION_FORCED - ${AmqpCloseReason.ServerShutdown}`);
      }
      await Promise.all([...this.connections].map((connection) => connection.closed));
      await closing;
    }
    await this.vhost.stop();
  }
}
