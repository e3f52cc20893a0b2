/**
 * The slave side of HA (RocketMQ HAClient): connects to the master's HA address, reports its max
 * CommitLog offset at once, after every batch of frames it applied and on a heartbeat timer, and hands
 * received bytes to the store (MessageStore.appendReplicated), which checks and dispatches them. A
 * malformed frame, bytes the store rejects, or a silent master end the connection with a named reason;
 * the slave reconnects after haReconnectIntervalMs and resumes from its own max offset.
 */
import { connect, type Socket } from 'node:net';
import { createLogger } from '../../common/logger.js';
import type { MessageStore } from '../../store/api.js';
import { encodeReport, TransferDecoder } from './ha-codec.js';
import type { HaConnectionClosed } from './ha-master.js';

const log = createLogger('ha-slave');

export interface HaSlaveOptions {
  store: () => MessageStore;
  /** The master's HA address "host:port", or undefined while unknown. */
  masterAddress: () => string | undefined;
  heartbeatIntervalMs: number;
  housekeepingMs: number;
  reconnectIntervalMs: number;
  maxFrameBytes: number;
  /** CommitLog segment size: a log can only restart at a segment boundary. */
  segmentBytes: number;
}

export class HaSlave {
  private socket: Socket | undefined;
  private connectedTo: string | undefined;
  private decoder: TransferDecoder;
  private lastReadMs = 0;
  private lastReportedOffset = -1;
  private lastReportMs = 0;
  private timer: NodeJS.Timeout | undefined;
  private nextConnectMs = 0;
  private stopped = false;
  /** An empty log being restarted at the master's first offset; no connection meanwhile. */
  private resetting: Promise<void> | undefined;
  private readonly closeListeners: ((closed: HaConnectionClosed) => void)[] = [];

  constructor(private readonly options: HaSlaveOptions) {
    this.decoder = new TransferDecoder(options.maxFrameBytes);
  }

  start(): void {
    const tickMs = Math.max(10, Math.min(this.options.heartbeatIntervalMs, this.options.reconnectIntervalMs));
    this.timer = setInterval(() => this.tick(), tickMs);
    this.timer.unref();
    this.tick();
  }

  /** True while connected to a master. */
  get connected(): boolean {
    return this.socket !== undefined && this.connectedTo !== undefined;
  }

  onConnectionClosed(listener: (closed: HaConnectionClosed) => void): void {
    this.closeListeners.push(listener);
  }

  private tick(): void {
    if (this.stopped) return;
    const nowMs = Date.now();
    if (this.socket === undefined) {
      if (this.resetting !== undefined) return;
      const address = this.options.masterAddress();
      // Port 0: a master (controller mode, haPort 0) that has not reported where it listens yet.
      if (address !== undefined && !address.endsWith(':0') && nowMs >= this.nextConnectMs) this.connect(address);
      return;
    }
    if (this.connectedTo === undefined) return;
    if (nowMs - this.lastReadMs > this.options.housekeepingMs) {
      this.close(`nothing from the master for ${nowMs - this.lastReadMs} ms`);
      return;
    }
    if (nowMs - this.lastReportMs >= this.options.heartbeatIntervalMs) this.report(true);
  }

  private connect(address: string): void {
    const at = address.lastIndexOf(':');
    const host = address.slice(0, at);
    const port = Number(address.slice(at + 1));
    const socket = connect({ host, port });
    this.socket = socket;
    this.decoder = new TransferDecoder(this.options.maxFrameBytes);
    socket.setNoDelay(true);
    socket.on('connect', () => {
      if (this.socket !== socket) return;
      this.connectedTo = address;
      this.lastReadMs = Date.now();
      log.info({ master: address }, 'connected to the master HA port');
      this.report(true);
    });
    socket.on('data', (chunk: Buffer) => {
      if (this.socket === socket) this.onData(chunk);
    });
    socket.on('error', (err) => {
      if (this.socket === socket) this.close(`socket error: ${err.message}`);
    });
    socket.on('close', () => {
      if (this.socket === socket) this.close('master closed the connection');
    });
  }

  private onData(chunk: Buffer): void {
    this.lastReadMs = Date.now();
    const outcome = this.decoder.push(chunk);
    const store = this.options.store();
    for (const frame of outcome.items) {
      if (frame.data.length === 0) continue;
      if (this.restartEmptyLogAt(frame.commitLogOffset)) return;
      const result = store.appendReplicated(frame.commitLogOffset, frame.data);
      if (!result.ok) {
        this.report(false);
        this.close(`replicated bytes rejected: ${result.reason}`);
        return;
      }
    }
    if ('error' in outcome) {
      this.report(false);
      this.close(`malformed frame: ${outcome.error}`);
      return;
    }
    this.report(false);
  }

  /**
   * An empty replica joining a master whose oldest segments retention deleted: the master streams
   * from its first offset, past this log's end. The empty log restarts there (a segment boundary);
   * the connection is dropped meanwhile and resumes from the new end. True when that started.
   */
  private restartEmptyLogAt(frameOffset: number): boolean {
    const store = this.options.store();
    const { commitLogMinOffset, commitLogMaxOffset } = store.stats();
    if (frameOffset <= commitLogMaxOffset || commitLogMinOffset !== commitLogMaxOffset) return false;
    if (frameOffset % this.options.segmentBytes !== 0) return false;
    this.close(`the master's log starts at ${frameOffset}; restarting the empty log there`);
    this.resetting = store
      .resetReplica(frameOffset)
      .catch((err: unknown) => log.error({ err, startOffset: frameOffset }, 'cannot restart the empty replica log'))
      .finally(() => {
        this.resetting = undefined;
        this.nextConnectMs = 0;
      });
    return true;
  }

  /** Sends the store's max offset when it moved (or always, for a heartbeat). */
  private report(always: boolean): void {
    const socket = this.socket;
    if (socket === undefined || this.connectedTo === undefined || socket.destroyed) return;
    const offset = this.options.store().stats().commitLogMaxOffset;
    if (!always && offset === this.lastReportedOffset) return;
    socket.write(encodeReport(offset));
    this.lastReportedOffset = offset;
    this.lastReportMs = Date.now();
  }

  private close(reason: string): void {
    const socket = this.socket;
    if (socket === undefined) return;
    const peer = this.connectedTo ?? this.options.masterAddress() ?? '?';
    this.socket = undefined;
    this.connectedTo = undefined;
    this.lastReportedOffset = -1;
    this.nextConnectMs = Date.now() + this.options.reconnectIntervalMs;
    socket.destroy();
    if (!this.stopped) log.warn({ master: peer, reason }, 'HA connection closed');
    for (const listener of this.closeListeners) listener({ peer, reason });
  }

  async shutdown(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.close('slave shutting down');
    await this.resetting;
  }
}
