/**
 * The master side of HA (RocketMQ HAService + HAConnection): listens on the HA port, reads each
 * slave's offset reports, streams CommitLog bytes from where the slave stands, and tracks the highest
 * offset any slave has confirmed so that a SYNC_MASTER can answer a send once a slave has it
 * (RocketMQ GroupTransferService). A malformed report or a slave ahead of this log ends that
 * connection with a named reason; the store and the other connections are untouched.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { createLogger } from '../../common/logger.js';
import type { MessageStore } from '../../store/api.js';
import { encodeTransferHeader, ReportDecoder } from './ha-codec.js';

const log = createLogger('ha-master');

export interface HaMasterOptions {
  host: string;
  port: number;
  store: () => MessageStore;
  transferBatchBytes: number;
  heartbeatIntervalMs: number;
  housekeepingMs: number;
  maxGapNotInSyncBytes: number;
}

/** What a sync master's wait for its slaves came to. */
export type SlaveAckOutcome = 'ok' | 'timeout' | 'no-slave';

/** Why an HA connection was closed, for logs and tests. */
export interface HaConnectionClosed {
  peer: string;
  reason: string;
}

interface AckWaiter {
  endOffset: number;
  resolve: (outcome: SlaveAckOutcome) => void;
  timer: NodeJS.Timeout;
}

class SlaveConnection {
  /** The slave's last reported max offset; -1 until the first report. */
  ackedOffset = -1;
  /** Next CommitLog offset to send; set by the first report. */
  private nextTransferOffset = -1;
  private lastReadMs = Date.now();
  private lastWriteMs = Date.now();
  private readonly decoder = new ReportDecoder();
  private writing = false;
  closed = false;

  constructor(
    readonly socket: Socket,
    readonly peer: string,
    private readonly master: HaMaster,
    private readonly options: HaMasterOptions,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.close(`socket error: ${err.message}`));
    socket.on('close', () => this.close('slave closed the connection'));
    socket.on('drain', () => this.transfer());
  }

  private onData(chunk: Buffer): void {
    this.lastReadMs = Date.now();
    const outcome = this.decoder.push(chunk);
    for (const offset of outcome.items) {
      if (!this.onReport(offset)) return;
    }
    if ('error' in outcome) this.close(`malformed report: ${outcome.error}`);
  }

  /** False when the report closed the connection. */
  private onReport(offset: number): boolean {
    const store = this.options.store();
    const maxOffset = store.stats().commitLogMaxOffset;
    if (offset > maxOffset) {
      this.close(`slave reports offset ${offset}, past this master's max offset ${maxOffset}`);
      return false;
    }
    if (offset < this.ackedOffset) {
      this.close(`slave report went back from ${this.ackedOffset} to ${offset}`);
      return false;
    }
    if (this.nextTransferOffset < 0) {
      const minOffset = store.stats().commitLogMinOffset;
      if (offset < minOffset && offset !== 0) {
        this.close(`slave stands at ${offset}, before this master's oldest byte ${minOffset}`);
        return false;
      }
      this.nextTransferOffset = Math.max(offset, minOffset);
      log.info({ peer: this.peer, fromOffset: this.nextTransferOffset }, 'slave connected; streaming the CommitLog');
    }
    this.ackedOffset = offset;
    this.master.onAck(offset);
    this.transfer();
    return true;
  }

  /** Sends what the log has past nextTransferOffset until the socket pushes back. */
  transfer(): void {
    if (this.closed || this.writing || this.nextTransferOffset < 0) return;
    this.writing = true;
    try {
      const store = this.options.store();
      for (let frames = 0; frames < 1024; frames++) {
        const data = store.readCommitLog(this.nextTransferOffset, this.options.transferBatchBytes);
        if (data === undefined) {
          this.close(`CommitLog offset ${this.nextTransferOffset} is no longer readable on the master`);
          return;
        }
        if (data.length === 0) return;
        this.socket.write(encodeTransferHeader(this.nextTransferOffset, data.length));
        const more = this.socket.write(data);
        this.master.transferredBytes += data.length;
        this.lastWriteMs = Date.now();
        this.nextTransferOffset += data.length;
        if (!more) return;
      }
      setImmediate(() => this.transfer());
    } finally {
      this.writing = false;
    }
  }

  /** Heartbeat and housekeeping tick. */
  tick(nowMs: number): void {
    if (nowMs - this.lastReadMs > this.options.housekeepingMs) {
      this.close(`no report from the slave for ${nowMs - this.lastReadMs} ms`);
      return;
    }
    this.transfer();
    if (this.nextTransferOffset >= 0 && nowMs - this.lastWriteMs >= this.options.heartbeatIntervalMs) {
      this.socket.write(encodeTransferHeader(this.nextTransferOffset, 0));
      this.lastWriteMs = nowMs;
    }
  }

  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
    this.master.onClosed(this, reason);
  }
}

export class HaMaster {
  private readonly server: Server;
  private readonly connections = new Set<SlaveConnection>();
  private readonly waiters: AckWaiter[] = [];
  private readonly closeListeners: ((closed: HaConnectionClosed) => void)[] = [];
  private tickTimer: NodeJS.Timeout | undefined;
  private kickScheduled = false;
  /** CommitLog bytes streamed to slaves since start. */
  transferredBytes = 0;

  constructor(private readonly options: HaMasterOptions) {
    this.server = createServer((socket) => this.accept(socket));
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.server.on('error', (err) => log.error({ err }, 'HA server error'));
    const tickMs = Math.max(10, Math.min(this.options.heartbeatIntervalMs, 1000));
    this.tickTimer = setInterval(() => this.tick(), tickMs);
    this.tickTimer.unref();
  }

  /** The actual HA port (after listen). */
  get port(): number {
    const address = this.server.address();
    return typeof address === 'object' && address !== null ? address.port : 0;
  }

  /** Slaves that have reported at least once. */
  get slaveCount(): number {
    let count = 0;
    for (const connection of this.connections) if (connection.ackedOffset >= 0) count++;
    return count;
  }

  /** The largest offset a connected slave has confirmed (-1 with none). */
  get slaveAckedOffset(): number {
    let max = -1;
    for (const connection of this.connections) max = Math.max(max, connection.ackedOffset);
    return max;
  }

  onConnectionClosed(listener: (closed: HaConnectionClosed) => void): void {
    this.closeListeners.push(listener);
  }

  /** New bytes in the log: stream them on a later turn (coalesced). */
  notifyNewData(): void {
    if (this.kickScheduled) return;
    this.kickScheduled = true;
    setImmediate(() => {
      this.kickScheduled = false;
      for (const connection of this.connections) connection.transfer();
    });
  }

  /**
   * SYNC_MASTER: resolves 'ok' once a slave confirmed `endOffset`, 'timeout' after `timeoutMs`, and
   * 'no-slave' at once when no slave is connected or the nearest is too far behind (RocketMQ isSlaveOK).
   */
  waitForSlave(endOffset: number, timeoutMs: number): Promise<SlaveAckOutcome> {
    const acked = this.slaveAckedOffset;
    if (acked < 0 || endOffset - acked > this.options.maxGapNotInSyncBytes) return Promise.resolve('no-slave');
    if (acked >= endOffset) return Promise.resolve('ok');
    this.notifyNewData();
    return new Promise<SlaveAckOutcome>((resolve) => {
      const waiter: AckWaiter = {
        endOffset,
        resolve,
        timer: setTimeout(() => {
          const at = this.waiters.indexOf(waiter);
          if (at >= 0) this.waiters.splice(at, 1);
          resolve('timeout');
        }, timeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  /** @internal A slave confirmed `offset`. */
  onAck(offset: number): void {
    if (this.waiters.length === 0) return;
    let kept = 0;
    for (const waiter of this.waiters) {
      if (waiter.endOffset <= offset) {
        clearTimeout(waiter.timer);
        waiter.resolve('ok');
      } else {
        this.waiters[kept++] = waiter;
      }
    }
    this.waiters.length = kept;
  }

  /** @internal */
  onClosed(connection: SlaveConnection, reason: string): void {
    this.connections.delete(connection);
    log.warn({ peer: connection.peer, reason }, 'HA connection closed');
    for (const listener of this.closeListeners) listener({ peer: connection.peer, reason });
  }

  private accept(socket: Socket): void {
    const peer = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
    this.connections.add(new SlaveConnection(socket, peer, this, this.options));
  }

  private tick(): void {
    const nowMs = Date.now();
    for (const connection of [...this.connections]) connection.tick(nowMs);
  }

  async close(): Promise<void> {
    clearInterval(this.tickTimer);
    for (const connection of [...this.connections]) connection.close('master shutting down');
    for (const waiter of this.waiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.resolve('no-slave');
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
