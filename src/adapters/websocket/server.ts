/**
 * The WebSocket front end's server side: accepts upgrades handed over by the HTTP listener (mounted
 * at /ws), enforces connection-level limits (ws maxPayload -> close 1009, maxConnections -> 1013),
 * runs heartbeats (WebSocket pings; a connection silent for two intervals is dropped), and owns the
 * engine clients every session shares: one Producer, and per subscription a SimpleConsumer whose
 * group's start position it prepares. The protocol itself lives in session.ts.
 *
 * Start positions (`from`): they apply to queues where the group has no consume position yet, which
 * is always the case for the private group of a subscription without `group`. A named group that
 * already consumed continues where it left off. Positions are committed before `subscribed` is
 * answered, so a message produced after `subscribed` is never skipped by `last`. A topic that does
 * not exist yet is read from its first message once it appears.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import {
  type MessageQueue,
  Producer,
  PullConsumer,
  RemoteTransport,
  SimpleConsumer,
  type Transport,
} from '../../engine/client/index.js';
import { ErrorCode, isRbError } from '../../engine/common/errors.js';
import { createLogger } from '../../engine/common/logger.js';
import { CloseCode } from './errors.js';
import type { HelloRequest, StartPosition } from './protocol.js';
import { Session, type SessionContext, type SessionLimits } from './session.js';

const log = createLogger('websocket');

export interface WebSocketUser {
  username: string;
  password: string;
}

export interface WebSocketHandlerOptions {
  /** Client transport to the engine; a RemoteTransport (owned, closed on close) when omitted. */
  transport?: Transport;
  nameServers: readonly string[];
  /** Username/password pairs accepted in `hello`. */
  users?: readonly WebSocketUser[];
  /** Tokens accepted in `hello`. */
  tokens?: readonly string[];
  /** Whether `hello` without credentials is accepted; default true when no users or tokens are configured. */
  allowAnonymous?: boolean;
  /** Largest WebSocket message accepted (ws maxPayload); larger ones close the connection with 1009. Default 8 MiB. */
  maxPayloadBytes?: number;
  /** Default 10,000; connections over it are closed with 1013. */
  maxConnections?: number;
  /** Default 64. */
  maxSubscriptionsPerConnection?: number;
  /** Delivered but unsettled messages per subscription (default 1,000), whatever the credit. */
  maxInFlightPerSubscription?: number;
  /** Largest credit a subscription may hold (default 10,000). */
  maxCreditPerSubscription?: number;
  /** Produces awaiting the broker per connection before reading pauses (default 256). */
  maxInFlightProducesPerConnection?: number;
  /** Malformed frames tolerated per connection before it is closed with 1002 (default 10). */
  maxProtocolErrors?: number;
  /** Ping interval (default 30 s); a connection that answers nothing for two intervals is dropped. */
  heartbeatIntervalMs?: number;
  /** Time a new connection has to send `hello` (default 10 s), else it is closed with 1008. */
  helloTimeoutMs?: number;
  /** Lease of a delivered message when the subscription gives no ackTimeoutMs (default 30 s). */
  defaultAckTimeoutMs?: number;
  /** Long-polling time of each subscription's receive (default 5 s); bounds how long closing waits. */
  pollMs?: number;
  /** Shown in `welcome`. */
  serverName?: string;
}

export interface WebSocketHandler {
  /** Accepts an upgrade (mount with `httpServer.handleUpgrade('/ws', handler.handleUpgrade)`). */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Open connections. */
  readonly connectionCount: number;
  /** Closes every connection (1001), hands unsettled messages back, and stops the engine clients. */
  close(): Promise<void>;
}

interface Connection {
  ws: WebSocket;
  session: Session;
  alive: boolean;
  remote: string;
  closeReason: string | undefined;
  closed: Promise<void>;
}

const PRODUCER_GROUP = 'WS_GATEWAY_PRODUCER';

/** Creates the handler; it connects to the engine lazily, on the first produce or subscribe. */
export function createWebSocketHandler(options: WebSocketHandlerOptions): WebSocketHandler {
  const ownsTransport = options.transport === undefined;
  const transport = options.transport ?? new RemoteTransport();
  const nameServers = options.nameServers;
  const limits: SessionLimits = {
    maxPayloadBytes: options.maxPayloadBytes ?? 8 * 1024 * 1024,
    maxSubscriptions: options.maxSubscriptionsPerConnection ?? 64,
    maxInFlightPerSubscription: options.maxInFlightPerSubscription ?? 1000,
    maxCreditPerSubscription: options.maxCreditPerSubscription ?? 10_000,
    maxInFlightProduces: options.maxInFlightProducesPerConnection ?? 256,
    maxProtocolErrors: options.maxProtocolErrors ?? 10,
    defaultAckTimeoutMs: options.defaultAckTimeoutMs ?? 30_000,
    heartbeatIntervalMs: options.heartbeatIntervalMs ?? 30_000,
  };
  const maxConnections = options.maxConnections ?? 10_000;
  const helloTimeoutMs = options.helloTimeoutMs ?? 10_000;
  const pollMs = options.pollMs ?? 5000;
  const serverName = options.serverName ?? 'rocketbridge';
  const authenticate = createAuthenticator(options);

  const wss = new WebSocketServer({ noServer: true, maxPayload: limits.maxPayloadBytes, clientTracking: false });
  const connections = new Set<Connection>();
  /** Sessions of closed connections still handing messages back; close() waits for them. */
  const cleanups = new Set<Promise<void>>();
  let closed = false;

  let producerStart: Promise<Producer> | undefined;
  const producer = new Producer({ group: PRODUCER_GROUP, nameServers, transport });
  const startProducer = (): Promise<Producer> => {
    producerStart ??= producer.start().then(
      () => producer,
      (err: unknown) => {
        producerStart = undefined;
        throw err;
      },
    );
    return producerStart;
  };

  const openConsumer: SessionContext['openConsumer'] = async (request) => {
    await prepareStartPosition(transport, nameServers, request);
    const consumer = new SimpleConsumer({
      group: request.group,
      nameServers,
      transport,
      consumeFromWhere: 'FIRST_OFFSET',
      invisibleTimeMs: request.ackTimeoutMs,
      awaitDurationMs: pollMs,
    });
    consumer.subscribe(request.topic, request.tag);
    await consumer.start();
    return consumer;
  };

  const ticker = setInterval(() => {
    const now = Date.now();
    for (const connection of connections) connection.session.sweep(now);
  }, 1000);
  ticker.unref();
  const heartbeat = setInterval(() => {
    for (const connection of connections) {
      if (!connection.alive) {
        connection.closeReason = 'heartbeat timeout';
        connection.ws.terminate();
        continue;
      }
      connection.alive = false;
      connection.ws.ping();
    }
  }, limits.heartbeatIntervalMs);
  heartbeat.unref();

  const accept = (ws: WebSocket, request: IncomingMessage): void => {
    const remote = `${request.socket.remoteAddress ?? '?'}:${request.socket.remotePort ?? '?'}`;
    if (closed || connections.size >= maxConnections) {
      log.warn({ remote, connections: connections.size }, 'connection refused: at maxConnections or closing');
      ws.close(CloseCode.TryAgainLater, 'server busy');
      return;
    }
    const sessionId = randomBytes(8).toString('hex');
    const connectionLog = log.child({ sessionId, remote });
    let resolveClosed: () => void = () => undefined;
    const connection: Connection = {
      ws,
      alive: true,
      remote,
      closeReason: undefined,
      closed: new Promise<void>((resolve) => (resolveClosed = resolve)),
      session: undefined as unknown as Session,
    };
    const context: SessionContext = {
      sessionId,
      serverName,
      limits,
      log: connectionLog,
      send: (frame) => {
        if (ws.readyState !== WebSocket.OPEN) return false;
        ws.send(frame);
        return true;
      },
      close: (code, reason) => {
        if (connection.closeReason === undefined) connection.closeReason = reason;
        if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close(code, reason);
      },
      pauseReading: () => ws.pause(),
      resumeReading: () => ws.resume(),
      authenticate,
      producer: startProducer,
      openConsumer,
    };
    connection.session = new Session(context);
    connections.add(connection);
    const helloTimer = setTimeout(() => {
      if (!connection.session.isOpen) context.close(CloseCode.PolicyViolation, 'no hello in time');
    }, helloTimeoutMs);
    helloTimer.unref();

    ws.on('message', (data: Buffer, isBinary: boolean) => {
      connection.alive = true;
      connection.session.onFrame(data, isBinary);
    });
    ws.on('pong', () => {
      connection.alive = true;
    });
    ws.on('error', (err: Error & { code?: string }) => {
      // ws has already sent the close frame (1009 for oversize, 1002/1007 for bad framing).
      connection.closeReason ??= `${err.code ?? 'error'}: ${err.message}`;
    });
    ws.on('close', (code: number) => {
      clearTimeout(helloTimer);
      connections.delete(connection);
      const reason = connection.closeReason ?? 'closed by client';
      if (code === CloseCode.Normal || code === CloseCode.GoingAway || code === 1005) {
        connectionLog.debug({ code, reason }, 'connection closed');
      } else {
        connectionLog.info({ code, reason }, 'connection closed');
      }
      const cleanup = connection.session.onClosed().finally(() => {
        cleanups.delete(cleanup);
        resolveClosed();
      });
      cleanups.add(cleanup);
    });
  };

  return {
    handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
      if (closed) {
        socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      wss.handleUpgrade(request, socket, head, (ws) => accept(ws, request));
    },
    get connectionCount(): number {
      return connections.size;
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      clearInterval(ticker);
      clearInterval(heartbeat);
      const all = [...connections];
      for (const connection of all) {
        connection.closeReason ??= 'server closing';
        connection.ws.close(CloseCode.GoingAway, 'server closing');
      }
      // A peer that does not answer the close handshake is cut off; its session still cleans up.
      const deadline = setTimeout(() => {
        for (const connection of all) connection.ws.terminate();
      }, 2000);
      await Promise.allSettled(all.map((connection) => connection.closed));
      clearTimeout(deadline);
      await Promise.allSettled([...cleanups]);
      wss.close();
      if (producerStart !== undefined) await producer.shutdown().catch(() => undefined);
      if (ownsTransport) await transport.close();
    },
  };
}

/** Accepts configured users and tokens; anonymous hellos per allowAnonymous. */
function createAuthenticator(options: WebSocketHandlerOptions): (hello: HelloRequest) => string | undefined {
  const users = options.users ?? [];
  const tokens = (options.tokens ?? []).map(digest);
  const allowAnonymous = options.allowAnonymous ?? (users.length === 0 && tokens.length === 0);
  return (hello) => {
    if (hello.token !== undefined) {
      const given = digest(hello.token);
      return tokens.some((token) => timingSafeEqual(token, given)) ? 'token' : undefined;
    }
    if (hello.username !== undefined) {
      const password = digest(hello.password ?? '');
      const user = users.find((each) => each.username === hello.username);
      if (user === undefined) return undefined;
      return timingSafeEqual(digest(user.password), password) ? user.username : undefined;
    }
    return allowAnonymous ? 'anonymous' : undefined;
  };
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/**
 * Commits the group's start position on every queue of the topic where it has none (every queue,
 * for a private group), so the subscription's pops begin there. A topic without a route is left
 * alone: the consumer reads it from its first message once it exists.
 */
async function prepareStartPosition(
  transport: Transport,
  nameServers: readonly string[],
  request: {
    group: string;
    privateGroup: boolean;
    topic: string;
    from: StartPosition;
    timestamp: number | undefined;
    offset: number | undefined;
  },
): Promise<void> {
  if (request.from === 'first' && request.privateGroup) return;
  const offsets = new PullConsumer({ group: request.group, nameServers, transport });
  await offsets.start();
  try {
    let queues: MessageQueue[];
    try {
      queues = await offsets.fetchQueues(request.topic);
    } catch (err) {
      if (isRbError(err, ErrorCode.TopicNotExist) || isRbError(err, ErrorCode.NoRoute)) return;
      throw err;
    }
    await Promise.all(
      queues.map(async (queue) => {
        if (!request.privateGroup && (await hasPosition(offsets, queue))) return;
        await offsets.updateOffset(queue, await startOffsetOf(offsets, queue, request));
      }),
    );
  } finally {
    await offsets.shutdown();
  }
}

/**
 * Whether the group has a consume position on the queue. The broker answers 0, not "not found", for
 * a group without one when the queue still starts at 0 (RocketMQ queryConsumerOffset), so 0 there
 * counts as no position; a pop group that already read the queue keeps its broker-side pop state,
 * which takes precedence over a committed offset anyway.
 */
async function hasPosition(offsets: PullConsumer, queue: MessageQueue): Promise<boolean> {
  const committed = await offsets.fetchOffset(queue);
  if (committed > 0) return true;
  if (committed < 0) return false;
  return (await offsets.minOffset(queue)) > 0;
}

async function startOffsetOf(
  offsets: PullConsumer,
  queue: MessageQueue,
  request: { from: StartPosition; timestamp: number | undefined; offset: number | undefined },
): Promise<number> {
  switch (request.from) {
    case 'first':
      return offsets.minOffset(queue);
    case 'last':
      return offsets.maxOffset(queue);
    case 'timestamp':
      return offsets.searchOffset(queue, request.timestamp ?? 0);
    case 'offset': {
      const [min, max] = await Promise.all([offsets.minOffset(queue), offsets.maxOffset(queue)]);
      return Math.min(max, Math.max(min, request.offset ?? 0));
    }
  }
}
