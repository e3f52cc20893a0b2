/**
 * One remoting TCP connection, used by both the server (one per accepted socket) and the client
 * (one per broker/NameServer address). Owns framing on the socket, write coalescing, requests in
 * flight matched by opaque, idle and write-buffer limits, and the named reason the connection ended.
 * What a request means is left to the ProcessorRegistry it is given.
 */
import type { Socket } from 'node:net';
import { ErrorCode, RbError } from '../common/errors.js';
import { formatHostAddress, normalizeHost } from '../common/host-address.js';
import type { Logger } from '../common/logger.js';
import type { ProcessorRegistry, RemotingChannel } from './channel.js';
import { CloseReason } from './close-reason.js';
import { isResponse, markOneway, type RemotingCommand } from './command.js';
import { encodeCommandParts, FrameDecoder, FrameError, FrameErrorReason } from './frame-codec.js';
import { PendingRequests } from './pending-requests.js';

/** The write buffer a peer may leave unread before we drop it (it is not reading its responses). */
export const DEFAULT_MAX_WRITE_BUFFER_BYTES = 64 * 1024 * 1024;
/**
 * Bytes of requests one connection may hand to processors before it yields the event loop
 * (setImmediate) and reads on. The yield lets other connections in, and lets work already started
 * finish (the store writes on setImmediate), so responses to the first requests leave while the
 * peer is still sending: client and server work at the same time instead of taking turns.
 */
export const DEFAULT_MAX_READ_BYTES_PER_TURN = 32 * 1024;

export interface TcpChannelOptions {
  socket: Socket;
  /** Handles requests the peer sends us. */
  registry: ProcessorRegistry;
  maxFrameBytes: number;
  /** Close after this long without reads or writes; 0 disables. */
  idleTimeoutMs: number;
  maxWriteBufferBytes?: number;
  /** Yield the event loop after handing this many read bytes to processors (default 32 KiB). */
  maxReadBytesPerTurn?: number;
  /** The reason recorded when the peer ends the connection (client closed / server closed). */
  peerClosedReason: string;
  log: Logger;
}

let nextChannelNumber = 1;

function socketAddress(host: string | undefined, port: number | undefined): string {
  if (host === undefined || port === undefined) return 'unknown:0';
  return formatHostAddress({ host: normalizeHost(host), port });
}

/** A RemotingChannel over a net.Socket. */
export class TcpChannel implements RemotingChannel {
  readonly id: string;
  readonly remoteAddress: string;
  /** Our end of the connection as "ip:port" (for a server, the address the peer reached). */
  readonly localAddress: string;
  private readonly socket: Socket;
  private readonly registry: ProcessorRegistry;
  private readonly decoder: FrameDecoder;
  private readonly maxWriteBufferBytes: number;
  private readonly peerClosedReason: string;
  private readonly log: Logger;
  /** Requests we sent that wait for their response, by opaque. */
  private readonly pending: PendingRequests;
  private readonly closeListeners: Array<() => void> = [];
  private readonly maxReadBytesPerTurn: number;
  private corked = false;
  private readBytesThisTurn = 0;
  private reason: string | undefined;
  private finished = false;

  constructor(options: TcpChannelOptions) {
    this.socket = options.socket;
    this.registry = options.registry;
    this.decoder = new FrameDecoder({ maxFrameBytes: options.maxFrameBytes });
    this.maxWriteBufferBytes = options.maxWriteBufferBytes ?? DEFAULT_MAX_WRITE_BUFFER_BYTES;
    this.maxReadBytesPerTurn = options.maxReadBytesPerTurn ?? DEFAULT_MAX_READ_BYTES_PER_TURN;
    this.peerClosedReason = options.peerClosedReason;
    this.remoteAddress = socketAddress(this.socket.remoteAddress, this.socket.remotePort);
    this.pending = new PendingRequests((code) => `request code ${code} to ${this.remoteAddress}`);
    this.localAddress = socketAddress(this.socket.localAddress, this.socket.localPort);
    this.id = `tcp-${nextChannelNumber++}-${this.remoteAddress}`;
    this.log = options.log.child({ channel: this.id });

    this.socket.setNoDelay(true);
    if (options.idleTimeoutMs > 0) {
      this.socket.setTimeout(options.idleTimeoutMs, () => this.close(CloseReason.Idle));
    }
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('error', (err: NodeJS.ErrnoException) => {
      if (this.reason === undefined) {
        this.reason = CloseReason.SocketError;
        this.log.debug({ err: err.code ?? err.message }, 'socket error');
      }
    });
    this.socket.on('close', () => this.finish());
    // The peer half-closed: remoting has no half-open use, so end our side too.
    this.socket.on('end', () => {
      if (this.reason === undefined) this.reason = this.peerClosedReason;
      this.socket.destroy();
    });
    if (this.socket.destroyed) {
      this.reason = CloseReason.SocketError;
      queueMicrotask(() => this.finish());
    }
  }

  get closed(): boolean {
    return this.reason !== undefined || this.finished;
  }

  /** Why the connection ended, once it has. */
  get closeReason(): string | undefined {
    return this.reason;
  }

  /** Requests we sent that still wait for a response. */
  get inflightCount(): number {
    return this.pending.size;
  }

  invoke(request: RemotingCommand, timeoutMs: number): Promise<RemotingCommand> {
    if (this.closed) {
      return Promise.reject(this.closedError());
    }
    return new Promise<RemotingCommand>((resolve, reject) => {
      const opaque = request.opaque;
      this.pending.add(opaque, request.code, timeoutMs, resolve, reject);
      let sent: boolean;
      try {
        sent = this.send(request);
      } catch (err) {
        this.pending.take(opaque);
        reject(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      if (!sent) {
        this.pending.take(opaque);
        reject(this.closedError());
      }
    });
  }

  invokeOneway(request: RemotingCommand): void {
    this.send(markOneway(request));
  }

  /**
   * Writes a command. Writes made in the same tick are corked together and leave as one writev.
   * Returns false when the channel is closed (the command is dropped); throws only if the command
   * cannot be encoded (a header over 16 MiB).
   */
  send(command: RemotingCommand): boolean {
    if (this.closed) return false;
    const parts = encodeCommandParts(command);
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    for (const part of parts) this.socket.write(part);
    if (this.socket.writableLength > this.maxWriteBufferBytes) {
      this.log.warn({ bufferedBytes: this.socket.writableLength }, 'peer is not reading; closing');
      this.close(CloseReason.SlowPeer);
      return false;
    }
    return true;
  }

  onClose(listener: () => void): void {
    if (this.finished) queueMicrotask(listener);
    else this.closeListeners.push(listener);
  }

  close(reason: string): void {
    if (this.reason === undefined) this.reason = reason;
    if (!this.socket.destroyed) this.socket.destroy();
  }

  private closedError(): RbError {
    return new RbError(
      ErrorCode.ConnectionClosed,
      `connection to ${this.remoteAddress} closed (${this.reason ?? this.peerClosedReason})`,
    );
  }

  private readonly handleCommand = (command: RemotingCommand): void => this.onCommand(command);

  private readonly resumeReading = (): void => {
    this.readBytesThisTurn = 0;
    if (!this.closed) this.socket.resume();
  };

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    try {
      this.decoder.push(chunk, this.handleCommand);
    } catch (err) {
      if (!(err instanceof FrameError)) throw err;
      const reason = err.reason === FrameErrorReason.FrameTooLarge ? CloseReason.FrameTooLarge : CloseReason.ParseError;
      this.log.warn(
        { peer: this.remoteAddress, reason, detail: err.message },
        'bad remoting frame; closing connection',
      );
      this.close(reason);
      return;
    }
    this.readBytesThisTurn += chunk.length;
    if (this.readBytesThisTurn >= this.maxReadBytesPerTurn && !this.closed) {
      // Scheduled after the requests' own work (a store write is a setImmediate queued while they
      // ran), so their responses leave before we read on. Paused, the socket buffers at most one
      // more chunk and then stops reading.
      this.socket.pause();
      setImmediate(this.resumeReading);
    }
  }

  private onCommand(command: RemotingCommand): void {
    if (this.closed) return;
    if (isResponse(command)) {
      const waiting = this.pending.take(command.opaque);
      if (waiting === undefined) {
        this.log.debug({ opaque: command.opaque, code: command.code }, 'response for no pending request (late?)');
        return;
      }
      waiting.resolve(command);
      return;
    }
    // Each request runs on its own: a slow one (a long-polling pull) never delays the next.
    this.registry.dispatch(command, this).then(
      (response) => {
        if (response === undefined) return;
        try {
          this.send(response);
        } catch (err) {
          this.log.error({ err, code: command.code }, 'response could not be encoded');
        }
      },
      (err: unknown) => this.log.error({ err, code: command.code }, 'request dispatch failed'),
    );
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.reason === undefined) this.reason = this.peerClosedReason;
    this.log.debug({ peer: this.remoteAddress, reason: this.reason }, 'connection closed');
    const error = this.closedError();
    this.pending.rejectAll(() => error);
    for (const listener of this.closeListeners.splice(0)) {
      try {
        listener();
      } catch (err) {
        this.log.error({ err }, 'close listener failed');
      }
    }
  }
}
