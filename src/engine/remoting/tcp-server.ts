/**
 * The remoting TCP server (NettyRemotingServer): accepts connections, wraps each in a TcpChannel
 * that feeds requests to the ProcessorRegistry, enforces maxConnections, and closes every
 * connection with a named reason on shutdown. Request semantics belong to the registry's owner.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { formatHostAddress } from '../common/host-address.js';
import { DEFAULT_MAX_FRAME_BYTES } from '../common/limits.js';
import { createLogger, type Logger } from '../common/logger.js';
import type { ProcessorRegistry, RemotingChannel } from './channel.js';
import { CloseReason } from './close-reason.js';
import { TcpChannel } from './tcp-channel.js';

/** RocketMQ's serverChannelMaxIdleTimeSeconds (120 s). */
export const DEFAULT_SERVER_IDLE_TIMEOUT_MS = 120_000;
/** Connections one server accepts before refusing more. */
export const DEFAULT_MAX_CONNECTIONS = 10_000;

export interface RemotingServerOptions {
  /** Names the server in logs ("namesrv", "broker"). */
  name: string;
  host: string;
  /** 0 picks a free port; read it back from `port` after listen(). */
  port: number;
  registry: ProcessorRegistry;
  maxFrameBytes?: number;
  maxConnections?: number;
  /** Close a connection after this long without traffic; 0 disables. */
  idleTimeoutMs?: number;
  /** Drop a peer that leaves more than this unread in our write buffer. */
  maxWriteBufferBytes?: number;
  /** Yield the event loop after handing this many bytes of one connection's requests to processors. */
  maxReadBytesPerTurn?: number;
}

/** A remoting server on one TCP port. */
export class RemotingServer {
  private readonly options: RemotingServerOptions;
  private readonly log: Logger;
  private readonly channels = new Set<TcpChannel>();
  private readonly closedListeners: Array<(channel: RemotingChannel) => void> = [];
  private server: Server | undefined;
  private listeningPort = -1;
  private stopping = false;

  constructor(options: RemotingServerOptions) {
    this.options = options;
    this.log = createLogger(`remoting-server:${options.name}`);
  }

  /** Starts listening; rejects if the port cannot be bound. */
  listen(): Promise<void> {
    if (this.server !== undefined) return Promise.reject(new Error(`${this.options.name} server already listening`));
    const server = createServer((socket) => this.accept(socket));
    this.server = server;
    return new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => {
        this.server = undefined;
        reject(err);
      };
      server.once('error', onError);
      server.listen({ host: this.options.host, port: this.options.port }, () => {
        server.off('error', onError);
        server.on('error', (err) => this.log.error({ err }, 'server socket error'));
        const address = server.address();
        this.listeningPort = typeof address === 'object' && address !== null ? address.port : this.options.port;
        this.log.debug({ host: this.options.host, port: this.listeningPort }, 'listening');
        resolve();
      });
    });
  }

  /** The bound port (the real one when the options asked for 0). */
  get port(): number {
    return this.listeningPort;
  }

  /** The listening address as "host:port" (the configured host, e.g. 0.0.0.0). */
  get localAddress(): string {
    return formatHostAddress({ host: this.options.host, port: this.listeningPort });
  }

  /** Open connections. */
  get connectionCount(): number {
    return this.channels.size;
  }

  onChannelClosed(listener: (channel: RemotingChannel) => void): void {
    this.closedListeners.push(listener);
  }

  /** Stops accepting, closes every connection (reason "server shutdown") and waits for them to end. */
  async close(): Promise<void> {
    const server = this.server;
    if (server === undefined || this.stopping) return;
    this.stopping = true;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const channel of this.channels) channel.close(CloseReason.ServerShutdown);
    await closed;
    this.server = undefined;
    this.stopping = false;
  }

  private accept(socket: Socket): void {
    const maxConnections = this.options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    if (this.stopping) {
      socket.destroy();
      return;
    }
    if (this.channels.size >= maxConnections) {
      this.log.warn(
        { peer: `${socket.remoteAddress}:${socket.remotePort}`, reason: CloseReason.MaxConnections, maxConnections },
        'refusing connection',
      );
      socket.destroy();
      return;
    }
    const channel = new TcpChannel({
      socket,
      registry: this.options.registry,
      maxFrameBytes: this.options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
      idleTimeoutMs: this.options.idleTimeoutMs ?? DEFAULT_SERVER_IDLE_TIMEOUT_MS,
      peerClosedReason: CloseReason.ClientClosed,
      log: this.log,
      ...(this.options.maxWriteBufferBytes !== undefined
        ? { maxWriteBufferBytes: this.options.maxWriteBufferBytes }
        : {}),
      ...(this.options.maxReadBytesPerTurn !== undefined
        ? { maxReadBytesPerTurn: this.options.maxReadBytesPerTurn }
        : {}),
    });
    this.channels.add(channel);
    channel.onClose(() => {
      this.channels.delete(channel);
      for (const listener of this.closedListeners) {
        try {
          listener(channel);
        } catch (err) {
          this.log.error({ err }, 'channel-closed listener failed');
        }
      }
    });
  }
}
