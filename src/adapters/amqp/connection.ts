/**
 * One AMQP 0-9-1 client connection: protocol header, the handshake (start/start-ok with PLAIN or
 * AMQPLAIN, tune/tune-ok, open on vhost "/"), channel 0 (close both ways), heartbeats and dead-peer
 * detection, channel numbers and frame routing to Channel objects, and turning protocol errors into
 * connection.close with the spec's reply code. Bad input never throws out of here: it becomes a
 * close, and the socket is destroyed if the peer does not answer it.
 *
 * Flow control (RabbitMQ's connection.blocked extension): while the vhost's FlowControl has an
 * alarm on, a client that announced the `connection.blocked` capability is told so, and once the
 * connection publishes it is no longer read (consumers on non-publishing connections keep acking,
 * which is what drains a backlog) until the alarm clears and connection.unblocked is sent. Missed
 * heartbeats are not held against a connection while it is not being read.
 */
import type { Socket } from 'node:net';
import { createLogger } from '../../engine/common/logger.js';
import { Channel, type ChannelHost } from './channel.js';
import type { FlowListener } from './flow-control.js';
import { FRAME_MIN_SIZE_BYTES, FrameType } from './constants.js';
import { AmqpProtocolError, ProtocolHeaderMismatchError } from './errors.js';
import { type FieldTable, readFieldTable } from './field-table.js';
import { FrameDecoder, type FrameHandler } from './frame-decoder.js';
import { encodeMethodFrame, HEARTBEAT_FRAME } from './frame-writer.js';
import { type AmqpMethod, decodeClientMethod, methodInfo } from './methods.js';
import { ReplyCode } from './reply-codes.js';
import { VHOST, type Vhost } from './vhost.js';

const log = createLogger('amqp-connection');

export interface AmqpUser {
  username: string;
  password: string;
}

/** Connection limits and credentials (server.ts fills in the defaults). */
export interface ConnectionConfig {
  users: readonly AmqpUser[];
  /** Accept any credentials (development only). */
  allowAnonymous: boolean;
  frameMaxBytes: number;
  channelMax: number;
  /** Heartbeat the server proposes, in seconds (0 = none). */
  heartbeatSec: number;
  maxMessageBytes: number;
  /** How long to wait for the peer's close-ok (and for the handshake) before dropping the socket. */
  closeTimeoutMs: number;
  handshakeTimeoutMs: number;
  productVersion: string;
}

/**
 * Publishes not yet stored by the engine, per connection, before the socket stops being read (it
 * resumes at half). A few send batches in flight keep the broker busy; more only queue in memory,
 * long enough to be promoted by the scavenger (one every ~25 ms under load) and collected by
 * mark-compacts. Measured with a transient publisher outrunning an auto-ack consumer: 5,000 spent
 * 1.1 s of a 2.5 s run in scavenges and delivered 19-21k msgs/s; 400 spent 0.3 s and delivered
 * 27-28k msgs/s, with confirmed-publish throughput unchanged (46k vs 55k msgs/s, within noise).
 */
const MAX_STORES_IN_FLIGHT = 512;
/**
 * Frames written in one turn go out in one socket write at the end of the turn (a syscall per
 * delivery or confirm was the largest cost of consuming); past this many bytes they go at once.
 * Not sooner (process.nextTick after each callback): that made 10% more writes at a steady 2,000
 * msgs/s, and a loopback write costs ~60 µs of CPU on the one event loop everything shares, so the
 * confirm gained what the next publish's store lost.
 */
const FLUSH_AT_BYTES = 256 * 1024;

type State = 'header' | 'start-ok' | 'tune-ok' | 'open-wait' | 'open' | 'closing' | 'closed';

export const SERVER_CAPABILITIES: FieldTable = {
  publisher_confirms: true,
  'basic.nack': true,
  consumer_cancel_notify: true,
  exchange_exchange_bindings: true,
  per_consumer_qos: true,
  'connection.blocked': true,
  authentication_failure_close: true,
};

export class AmqpConnection implements FrameHandler, ChannelHost, FlowListener {
  private state: State = 'header';
  private readonly decoder: FrameDecoder;
  private readonly channels = new Map<number, Channel>();
  private negotiatedFrameMax = FRAME_MIN_SIZE_BYTES;
  private negotiatedChannelMax = 0;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private closeTimer: NodeJS.Timeout | undefined;
  private lastReceivedAtMs = Date.now();
  private sentSinceTick = false;
  private drainListeners: (() => void)[] = [];
  private readonly closedPromise: Promise<void>;
  private resolveClosed!: () => void;
  private cleanedUp = false;
  private storesInFlight = 0;
  private readingPaused = false;
  /** Reading stopped because too many of this connection's stores are outstanding. */
  private pausedByStores = false;
  /** Reading stopped because the connection published while publishers are blocked. */
  private pausedByFlow = false;
  /** The vhost's blocked reason while an alarm is on. */
  private flowBlockedReason: string | undefined;
  /** The client announced the connection.blocked capability in start-ok. */
  private acceptsBlocked = false;
  /** connection.blocked was sent and connection.unblocked is owed. */
  private sentBlocked = false;
  private pendingFrames: Buffer[] = [];
  /** Channels' last words before this turn's write (their coalesced publisher confirms). */
  private beforeFlushCallbacks: (() => void)[] = [];
  private pendingBytes = 0;
  private flushScheduled = false;
  username = '';

  constructor(
    readonly id: number,
    private readonly socket: Socket,
    readonly vhost: Vhost,
    private readonly config: ConnectionConfig,
  ) {
    this.closedPromise = new Promise((resolve) => (this.resolveClosed = resolve));
    this.decoder = new FrameDecoder(this, { maxFrameBytes: FRAME_MIN_SIZE_BYTES });
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => log.debug({ err, connection: id }, 'socket error'));
    socket.on('close', () => this.cleanup());
    socket.on('drain', () => {
      const listeners = this.drainListeners;
      this.drainListeners = [];
      for (const listener of listeners) listener();
    });
    this.closeTimer = setTimeout(() => {
      if (this.state !== 'open') {
        log.info({ connection: id, state: this.state }, 'handshake timed out; dropping the socket');
        this.socket.destroy();
      }
    }, config.handshakeTimeoutMs);
  }

  get frameMaxBytes(): number {
    return this.negotiatedFrameMax;
  }

  get maxMessageBytes(): number {
    return this.config.maxMessageBytes;
  }

  get writable(): boolean {
    return !this.socket.writableNeedDrain;
  }

  /** Resolves when the socket is gone and cleanup ran. */
  get closed(): Promise<void> {
    return this.closedPromise;
  }

  /** Queues frames for this turn's socket write (see FLUSH_AT_BYTES); order is kept. */
  write(frames: readonly Buffer[]): void {
    if (this.state === 'closed' || this.socket.destroyed) return;
    this.sentSinceTick = true;
    for (const frame of frames) {
      this.pendingFrames.push(frame);
      this.pendingBytes += frame.length;
    }
    if (this.pendingBytes >= FLUSH_AT_BYTES) {
      this.flushFrames();
    } else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flushFrames());
    }
  }

  beforeFlush(callback: () => void): void {
    this.beforeFlushCallbacks.push(callback);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flushFrames());
    }
  }

  private flushFrames(): void {
    if (this.beforeFlushCallbacks.length > 0) {
      // Their frames join this write; flushScheduled stays set meanwhile so none schedules another.
      this.flushScheduled = true;
      const callbacks = this.beforeFlushCallbacks;
      this.beforeFlushCallbacks = [];
      for (const callback of callbacks) callback();
    }
    this.flushScheduled = false;
    if (this.pendingFrames.length === 0) return;
    const frames = this.pendingFrames;
    this.pendingFrames = [];
    this.pendingBytes = 0;
    if (this.socket.destroyed) return;
    this.socket.write(frames.length === 1 ? (frames[0] as Buffer) : Buffer.concat(frames));
  }

  /** Ends the socket after the frames still queued (a close method is usually among them). */
  private endSocket(last?: Buffer): void {
    this.flushFrames();
    if (last === undefined) this.socket.end();
    else this.socket.end(last);
  }

  storeStarted(): void {
    this.storesInFlight++;
    if (this.storesInFlight >= MAX_STORES_IN_FLIGHT && !this.pausedByStores) {
      this.pausedByStores = true;
      this.updateReading();
    }
  }

  storeFinished(): void {
    this.storesInFlight--;
    if (this.pausedByStores && this.storesInFlight <= MAX_STORES_IN_FLIGHT / 2) {
      this.pausedByStores = false;
      this.updateReading();
    }
  }

  publishArrived(): void {
    if (this.flowBlockedReason !== undefined && !this.pausedByFlow) {
      this.pausedByFlow = true;
      this.updateReading();
    }
  }

  /** The vhost's alarms changed: tell the client (if it asked to be told) and hold or release reading. */
  flowChanged(blockedReason: string | undefined): void {
    if (this.state !== 'open') return;
    this.flowBlockedReason = blockedReason;
    if (blockedReason !== undefined) {
      if (this.acceptsBlocked && !this.sentBlocked) {
        this.sentBlocked = true;
        this.write([encodeMethodFrame(0, { name: 'connection.blocked', reason: blockedReason })]);
      }
      return;
    }
    if (this.sentBlocked) {
      this.sentBlocked = false;
      this.write([encodeMethodFrame(0, { name: 'connection.unblocked' })]);
    }
    if (this.pausedByFlow) {
      this.pausedByFlow = false;
      this.updateReading();
    }
  }

  private updateReading(): void {
    const pause = this.pausedByStores || this.pausedByFlow;
    if (pause && !this.readingPaused) {
      this.readingPaused = true;
      this.socket.pause();
    } else if (!pause && this.readingPaused && this.state === 'open') {
      this.readingPaused = false;
      // The client's heartbeats waited in the socket: do not count the pause as silence.
      this.lastReceivedAtMs = Date.now();
      this.socket.resume();
    }
  }

  onDrain(listener: () => void): void {
    this.drainListeners.push(listener);
  }

  channelGone(channelId: number): void {
    this.channels.delete(channelId);
  }

  connectionError(err: AmqpProtocolError): void {
    this.closeWith(err.replyCode, err.replyText, err.classId, err.methodId);
  }

  /** Server-initiated close: connection.close, then wait (bounded) for close-ok. */
  closeWith(replyCode: number, replyText: string, classId = 0, methodId = 0): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    const beforeTune = this.state === 'header' || this.state === 'start-ok';
    this.state = 'closing';
    log.info({ connection: this.id, replyCode, replyText }, 'closing connection');
    if (this.readingPaused) {
      // Only close and close-ok matter now: read them, or a blocked peer's close-ok would go unseen.
      this.readingPaused = false;
      this.socket.resume();
    }
    for (const channel of this.channels.values()) channel.teardown();
    this.channels.clear();
    this.write([encodeMethodFrame(0, { name: 'connection.close', replyCode, replyText, classId, methodId })]);
    if (beforeTune) {
      this.endSocket();
      return;
    }
    if (this.closeTimer !== undefined) clearTimeout(this.closeTimer);
    this.closeTimer = setTimeout(() => this.socket.destroy(), this.config.closeTimeoutMs);
  }

  // --- input ----------------------------------------------------------------------------

  private onData(chunk: Buffer): void {
    this.lastReceivedAtMs = Date.now();
    if (this.state === 'closed') return;
    try {
      this.decoder.push(chunk);
    } catch (err) {
      if (err instanceof ProtocolHeaderMismatchError) {
        log.info({ connection: this.id, received: err.received.toString('hex') }, 'wrong protocol header');
        this.endSocket(err.reply);
        this.state = 'closed';
        return;
      }
      this.handleError(err, 0);
      // The byte stream cannot be trusted after a framing error: stop reading it.
      // Its close-ok could not be read either, so end the socket once the close is written.
      if (err instanceof AmqpProtocolError && err.replyCode === ReplyCode.FrameError) {
        this.socket.pause();
        this.endSocket();
      }
    }
  }

  private handleError(err: unknown, channelId: number): void {
    if (err instanceof AmqpProtocolError) {
      const channel = this.channels.get(channelId);
      if (!err.closesConnection && channel !== undefined) channel.closeWithError(err);
      else this.connectionError(err.closesConnection ? err : withConnectionScope(err));
      return;
    }
    log.error({ err, connection: this.id }, 'unexpected failure handling a frame');
    this.closeWith(ReplyCode.InternalError, 'INTERNAL_ERROR');
  }

  onProtocolHeader(): void {
    if (this.state !== 'header') return;
    this.state = 'start-ok';
    this.write([
      encodeMethodFrame(0, {
        name: 'connection.start',
        versionMajor: 0,
        versionMinor: 9,
        serverProperties: {
          product: 'rocketbridge',
          version: this.config.productVersion,
          platform: `Node.js ${process.version}`,
          information: 'RocketMQ-compatible engine, AMQP 0-9-1 front end',
          capabilities: SERVER_CAPABILITIES,
        },
        mechanisms: 'PLAIN AMQPLAIN',
        locales: 'en_US',
      }),
    ]);
  }

  onFrame(type: FrameType, channelId: number, payload: Buffer): void {
    try {
      this.routeFrame(type, channelId, payload);
    } catch (err) {
      this.handleError(err, channelId);
    }
  }

  private routeFrame(type: FrameType, channelId: number, payload: Buffer): void {
    if (this.state === 'closing') {
      this.whileClosing(type, channelId, payload);
      return;
    }
    if (this.state === 'closed') return;
    if (type === FrameType.Heartbeat) {
      if (channelId !== 0) {
        throw new AmqpProtocolError(ReplyCode.FrameError, `heartbeat frame on channel ${channelId}`);
      }
      return;
    }
    if (channelId === 0) {
      if (type !== FrameType.Method) {
        throw new AmqpProtocolError(ReplyCode.UnexpectedFrame, `content frame of type ${type} on channel 0`);
      }
      this.connectionMethod(decodeClientMethod(payload));
      return;
    }
    if (this.state !== 'open') {
      throw new AmqpProtocolError(ReplyCode.ChannelError, `frame on channel ${channelId} before connection.open`);
    }
    if (channelId > this.negotiatedChannelMax) {
      throw new AmqpProtocolError(
        ReplyCode.ChannelError,
        `channel ${channelId} is above the negotiated channel-max ${this.negotiatedChannelMax}`,
      );
    }
    const channel = this.channels.get(channelId);
    if (channel !== undefined) {
      channel.push(type, payload);
      return;
    }
    if (type !== FrameType.Method) {
      throw new AmqpProtocolError(ReplyCode.ChannelError, `content frame on channel ${channelId}, which is not open`);
    }
    const method = decodeClientMethod(payload);
    if (method.name !== 'channel.open') {
      const info = methodInfo(method.name);
      throw new AmqpProtocolError(
        ReplyCode.ChannelError,
        `expected 'channel.open' on channel ${channelId}, got ${method.name}`,
        {
          classId: info.classId,
          methodId: info.methodId,
          scope: 'connection',
        },
      );
    }
    this.channels.set(channelId, new Channel(channelId, this));
    this.write([encodeMethodFrame(channelId, { name: 'channel.open-ok', channelId: '' })]);
  }

  private whileClosing(type: FrameType, channelId: number, payload: Buffer): void {
    if (type !== FrameType.Method || channelId !== 0) return;
    let method: AmqpMethod;
    try {
      method = decodeClientMethod(payload);
    } catch {
      return;
    }
    if (method.name === 'connection.close-ok') this.endSocket();
    else if (method.name === 'connection.close') {
      this.write([encodeMethodFrame(0, { name: 'connection.close-ok' })]);
      this.endSocket();
    }
  }

  private expect(method: AmqpMethod, name: AmqpMethod['name']): void {
    if (method.name !== name) {
      const info = methodInfo(method.name);
      throw new AmqpProtocolError(ReplyCode.CommandInvalid, `expected ${name}, got ${method.name}`, {
        classId: info.classId,
        methodId: info.methodId,
        scope: 'connection',
      });
    }
  }

  private connectionMethod(method: AmqpMethod): void {
    switch (this.state) {
      case 'start-ok':
        this.expect(method, 'connection.start-ok');
        this.startOk(method as Extract<AmqpMethod, { name: 'connection.start-ok' }>);
        return;
      case 'tune-ok':
        this.expect(method, 'connection.tune-ok');
        this.tuneOk(method as Extract<AmqpMethod, { name: 'connection.tune-ok' }>);
        return;
      case 'open-wait':
        this.expect(method, 'connection.open');
        this.open(method as Extract<AmqpMethod, { name: 'connection.open' }>);
        return;
      default:
        break;
    }
    if (method.name === 'connection.close') {
      log.debug({ connection: this.id, replyCode: method.replyCode }, 'client closed the connection');
      this.state = 'closing';
      for (const channel of this.channels.values()) channel.teardown();
      this.channels.clear();
      this.write([encodeMethodFrame(0, { name: 'connection.close-ok' })]);
      this.endSocket();
      return;
    }
    if (method.name === 'connection.blocked' || method.name === 'connection.unblocked') return;
    const info = methodInfo(method.name);
    throw new AmqpProtocolError(ReplyCode.CommandInvalid, `${method.name} is not valid on an open connection`, {
      classId: info.classId,
      methodId: info.methodId,
      scope: 'connection',
    });
  }

  private startOk(m: Extract<AmqpMethod, { name: 'connection.start-ok' }>): void {
    const credentials = parseCredentials(m.mechanism, m.response);
    const info = methodInfo('connection.start-ok');
    if (credentials === undefined) {
      throw new AmqpProtocolError(ReplyCode.AccessRefused, `unsupported or malformed mechanism ${m.mechanism}`, {
        classId: info.classId,
        methodId: info.methodId,
        scope: 'connection',
      });
    }
    const ok =
      this.config.allowAnonymous ||
      this.config.users.some(
        (user) => user.username === credentials.username && user.password === credentials.password,
      );
    if (!ok) {
      log.info({ connection: this.id, user: credentials.username }, 'authentication failed');
      // authentication_failure_close: a 403 connection.close the client can report.
      this.state = 'tune-ok';
      throw new AmqpProtocolError(
        ReplyCode.AccessRefused,
        `ACCESS_REFUSED - Login was refused using authentication mechanism ${m.mechanism}`,
        { classId: info.classId, methodId: info.methodId, scope: 'connection' },
      );
    }
    this.username = credentials.username;
    const capabilities = m.clientProperties['capabilities'];
    this.acceptsBlocked =
      typeof capabilities === 'object' &&
      capabilities !== null &&
      (capabilities as FieldTable)['connection.blocked'] === true;
    this.state = 'tune-ok';
    this.write([
      encodeMethodFrame(0, {
        name: 'connection.tune',
        channelMax: this.config.channelMax,
        frameMax: this.config.frameMaxBytes,
        heartbeat: this.config.heartbeatSec,
      }),
    ]);
  }

  private tuneOk(m: Extract<AmqpMethod, { name: 'connection.tune-ok' }>): void {
    const info = methodInfo('connection.tune-ok');
    const frameMax = m.frameMax === 0 ? this.config.frameMaxBytes : m.frameMax;
    if (frameMax < FRAME_MIN_SIZE_BYTES || frameMax > this.config.frameMaxBytes) {
      throw new AmqpProtocolError(
        ReplyCode.NotAllowed,
        `frame_max=${m.frameMax} outside [${FRAME_MIN_SIZE_BYTES}, ${this.config.frameMaxBytes}]`,
        { classId: info.classId, methodId: info.methodId, scope: 'connection' },
      );
    }
    const channelMax = m.channelMax === 0 ? this.config.channelMax : m.channelMax;
    if (channelMax > this.config.channelMax) {
      throw new AmqpProtocolError(
        ReplyCode.NotAllowed,
        `channel_max=${m.channelMax} > ${this.config.channelMax} max channels`,
        { classId: info.classId, methodId: info.methodId, scope: 'connection' },
      );
    }
    this.negotiatedFrameMax = frameMax;
    this.negotiatedChannelMax = channelMax;
    this.decoder.setMaxFrameBytes(frameMax);
    if (m.heartbeat > 0) this.startHeartbeat(m.heartbeat);
    this.state = 'open-wait';
  }

  private open(m: Extract<AmqpMethod, { name: 'connection.open' }>): void {
    if (m.virtualHost !== VHOST) {
      const info = methodInfo('connection.open');
      throw new AmqpProtocolError(ReplyCode.NotAllowed, `vhost '${m.virtualHost}' not found`, {
        classId: info.classId,
        methodId: info.methodId,
        scope: 'connection',
      });
    }
    this.state = 'open';
    if (this.closeTimer !== undefined) clearTimeout(this.closeTimer);
    this.closeTimer = undefined;
    this.write([encodeMethodFrame(0, { name: 'connection.open-ok', knownHosts: '' })]);
    this.vhost.flow.subscribe(this);
    // An alarm already on is announced right after open, as RabbitMQ does.
    const reason = this.vhost.flow.blockedReason;
    if (reason !== undefined) this.flowChanged(reason);
  }

  private startHeartbeat(heartbeatSec: number): void {
    const intervalMs = Math.max(100, (heartbeatSec * 1000) / 2);
    this.heartbeatTimer = setInterval(() => {
      if (this.readingPaused) this.lastReceivedAtMs = Date.now();
      else if (Date.now() - this.lastReceivedAtMs > heartbeatSec * 2000) {
        log.info({ connection: this.id, heartbeatSec }, 'missed heartbeats from the client; closing the socket');
        this.socket.destroy();
        return;
      }
      if (!this.sentSinceTick) this.write([HEARTBEAT_FRAME]);
      this.sentSinceTick = false;
    }, intervalMs);
  }

  private cleanup(): void {
    if (this.cleanedUp) return;
    this.cleanedUp = true;
    this.state = 'closed';
    this.vhost.flow.unsubscribe(this);
    if (this.heartbeatTimer !== undefined) clearInterval(this.heartbeatTimer);
    if (this.closeTimer !== undefined) clearTimeout(this.closeTimer);
    this.heartbeatTimer = undefined;
    this.closeTimer = undefined;
    for (const channel of this.channels.values()) channel.teardown();
    this.channels.clear();
    this.drainListeners = [];
    this.vhost
      .connectionClosed(this.id)
      .catch((err: unknown) => log.warn({ err, connection: this.id }, 'exclusive queue cleanup failed'))
      .finally(() => this.resolveClosed());
  }
}

function withConnectionScope(err: AmqpProtocolError): AmqpProtocolError {
  return new AmqpProtocolError(err.replyCode, err.message, {
    classId: err.classId,
    methodId: err.methodId,
    scope: 'connection',
  });
}

/** PLAIN: "\0user\0password"; AMQPLAIN: a field table body (no length prefix) with LOGIN and PASSWORD. */
export function parseCredentials(mechanism: string, response: Buffer): AmqpUser | undefined {
  if (mechanism === 'PLAIN') {
    const parts = response.toString('utf8').split('\u0000');
    if (parts.length !== 3) return undefined;
    return { username: parts[1] as string, password: parts[2] as string };
  }
  if (mechanism === 'AMQPLAIN') {
    try {
      const framed = Buffer.alloc(4 + response.length);
      framed.writeUInt32BE(response.length, 0);
      response.copy(framed, 4);
      const table = readFieldTable(framed, 0).value;
      const login = table['LOGIN'];
      const password = table['PASSWORD'];
      if (typeof login !== 'string' || typeof password !== 'string') return undefined;
      return { username: login, password };
    } catch {
      return undefined;
    }
  }
  return undefined;
}
