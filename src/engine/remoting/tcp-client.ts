/**
 * The remoting TCP client (NettyRemotingClient): one connection per "host:port", shared by every
 * request to that address, connected on first use and again on the next request after it closes.
 * Requests the server sends us (NOTIFY_CONSUMER_IDS_CHANGED, CHECK_TRANSACTION_STATE, ...) go to
 * the registry we are given. Which address to call is the caller's business.
 */
import { connect } from 'node:net';
import { ErrorCode, RbError } from '../common/errors.js';
import { parseHostAddress } from '../common/host-address.js';
import { DEFAULT_MAX_FRAME_BYTES } from '../common/limits.js';
import { createLogger } from '../common/logger.js';
import { ProcessorRegistry } from './channel.js';
import { CloseReason } from './close-reason.js';
import { markOneway, type RemotingCommand } from './command.js';
import { TcpChannel } from './tcp-channel.js';

/** RocketMQ's connectTimeoutMillis (3 s). */
export const DEFAULT_CONNECT_TIMEOUT_MS = 3000;

export interface RemotingClientOptions {
  /** Handles requests servers send to this client; unknown codes get REQUEST_CODE_NOT_SUPPORTED. */
  registry?: ProcessorRegistry;
  connectTimeoutMs?: number;
  maxFrameBytes?: number;
  /** Close a connection after this long without traffic; 0 (the default) keeps it open. */
  idleTimeoutMs?: number;
}

/** A remoting client holding one connection per server address. */
export class RemotingClient {
  private readonly registry: ProcessorRegistry;
  private readonly connectTimeoutMs: number;
  private readonly maxFrameBytes: number;
  private readonly idleTimeoutMs: number;
  private readonly log = createLogger('remoting-client');
  private readonly channels = new Map<string, TcpChannel>();
  private readonly connecting = new Map<string, Promise<TcpChannel>>();
  private readonly abortConnects = new Set<(err: Error) => void>();
  private closed = false;

  constructor(options: RemotingClientOptions = {}) {
    this.registry = options.registry ?? new ProcessorRegistry();
    this.connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 0;
  }

  /**
   * Sends a request and waits for its response. `timeoutMs` covers connecting too. Rejects with
   * RbError RequestTimeout when no response arrives in time and ConnectionClosed when the connection
   * cannot be made or drops while the request waits.
   */
  async invoke(address: string, request: RemotingCommand, timeoutMs: number): Promise<RemotingCommand> {
    const startedMs = Date.now();
    const channel = await this.channelFor(address, Math.min(this.connectTimeoutMs, timeoutMs));
    const remainingMs = timeoutMs - (Date.now() - startedMs);
    if (remainingMs <= 0) {
      throw new RbError(
        ErrorCode.RequestTimeout,
        `request code ${request.code} to ${address} timed out while connecting`,
      );
    }
    return channel.invoke(request, remainingMs);
  }

  /** Sends a request that gets no response; resolves once it is queued on the connection. */
  async invokeOneway(address: string, request: RemotingCommand): Promise<void> {
    const channel = await this.channelFor(address, this.connectTimeoutMs);
    if (!channel.send(markOneway(request))) {
      throw new RbError(ErrorCode.ConnectionClosed, `connection to ${address} closed before the request was sent`);
    }
  }

  /** Closes the connection to one address (the next request reconnects). */
  closeConnection(address: string): void {
    this.channels.get(address)?.close(CloseReason.LocalClose);
  }

  /** Closes every connection, fails requests in flight with ConnectionClosed and stops reconnecting. */
  async close(): Promise<void> {
    this.closed = true;
    const error = new RbError(ErrorCode.ConnectionClosed, 'remoting client closed');
    for (const abort of this.abortConnects) abort(error);
    this.abortConnects.clear();
    const ended = [...this.channels.values()].map(
      (channel) => new Promise<void>((resolve) => channel.onClose(() => resolve())),
    );
    for (const channel of this.channels.values()) channel.close(CloseReason.LocalClose);
    await Promise.all(ended);
    this.channels.clear();
  }

  private channelFor(address: string, connectTimeoutMs: number): Promise<TcpChannel> {
    if (this.closed) return Promise.reject(new RbError(ErrorCode.ConnectionClosed, 'remoting client closed'));
    const existing = this.channels.get(address);
    if (existing !== undefined && !existing.closed) return Promise.resolve(existing);
    const inProgress = this.connecting.get(address);
    if (inProgress !== undefined) return inProgress;
    const attempt = this.connect(address, connectTimeoutMs).finally(() => this.connecting.delete(address));
    this.connecting.set(address, attempt);
    return attempt;
  }

  private connect(address: string, connectTimeoutMs: number): Promise<TcpChannel> {
    let host: string;
    let port: number;
    try {
      ({ host, port } = parseHostAddress(address));
    } catch (err) {
      return Promise.reject(
        new RbError(ErrorCode.ConnectionClosed, `cannot connect to "${address}": ${(err as Error).message}`),
      );
    }
    return new Promise<TcpChannel>((resolve, reject) => {
      const socket = connect({ host, port });
      const fail = (err: Error): void => {
        clearTimeout(timer);
        this.abortConnects.delete(fail);
        socket.destroy();
        reject(err);
      };
      const timer = setTimeout(
        () =>
          fail(new RbError(ErrorCode.ConnectionClosed, `connect to ${address} timed out after ${connectTimeoutMs} ms`)),
        connectTimeoutMs,
      );
      this.abortConnects.add(fail);
      socket.once('error', (err: NodeJS.ErrnoException) =>
        fail(new RbError(ErrorCode.ConnectionClosed, `connect to ${address} failed: ${err.code ?? err.message}`)),
      );
      socket.once('connect', () => {
        clearTimeout(timer);
        this.abortConnects.delete(fail);
        socket.removeAllListeners('error');
        if (this.closed) {
          socket.destroy();
          reject(new RbError(ErrorCode.ConnectionClosed, 'remoting client closed'));
          return;
        }
        const channel = new TcpChannel({
          socket,
          registry: this.registry,
          maxFrameBytes: this.maxFrameBytes,
          idleTimeoutMs: this.idleTimeoutMs,
          peerClosedReason: CloseReason.ServerClosed,
          log: this.log,
        });
        this.channels.set(address, channel);
        channel.onClose(() => {
          if (this.channels.get(address) === channel) this.channels.delete(address);
        });
        resolve(channel);
      });
    });
  }
}
