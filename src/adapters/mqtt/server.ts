/**
 * The MQTT 3.1/3.1.1 server: an aedes instance whose `mq` and `persistence` are the engine
 * (engine-mq.ts, persistence.ts), served on a TCP listener and, through `handleUpgrade`, over
 * WebSocket (path /mqtt, subprotocol `mqtt`) for whichever HTTP server mounts it. Owns the limits
 * (aedes' own, plus a packet size guard), authentication from configuration, the authorization
 * hooks where per-topic rules plug in, and the refusal of names and filters that cannot map onto
 * the engine. It talks to the engine only through the client API, so it runs embedded (in-process
 * transport) or as a gateway in front of remote brokers.
 */
import { timingSafeEqual } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Aedes, type AedesOptions, type Client } from 'aedes';
import { createWebSocketStream, WebSocketServer } from 'ws';
import { ErrorCode, RbError } from '../../engine/common/errors.js';
import { createLogger } from '../../engine/common/logger.js';
import { AdminClient, Producer, PullConsumer, RemoteTransport, type Transport } from '../../engine/client/index.js';
import type { AedesClientView } from './delivery-types.js';
import { EngineMq } from './engine-mq.js';
import { KeyedLog } from './keyed-log.js';
import { filterProblem, parseSharedFilter, publishTopicProblem, SHARE_PREFIX, toEngineAddress } from './mapping.js';
import { PacketSizeGuard } from './packet-guard.js';
import { EnginePersistence } from './persistence.js';
import { SessionManager, sessionGroupOf } from './sessions.js';
import { ShareManager } from './shared.js';
import { type FollowerOptions, isSystemTopic, TopicDirectory } from './topic-follower.js';

const log = createLogger('mqtt');

/** Engine topic of the retained-message table. */
export const RETAINED_TOPIC = 'RB_MQTT_RETAINED';
/** Engine topic of the persistent-session table. */
export const SESSIONS_TOPIC = 'RB_MQTT_SESSIONS';

/** CONNACK return codes of MQTT 3.1.1 (section 3.2.2.3). */
const ConnackCode = { BadUsernameOrPassword: 4, NotAuthorized: 5 } as const;

export interface MqttUser {
  username: string;
  password: string;
}

export interface MqttServerOptions {
  /** TCP port (default 1883; 0 picks one). */
  port?: number;
  host?: string;
  /** Client transport to the engine; a RemoteTransport (owned, closed on close) when omitted. */
  transport?: Transport;
  nameServers: readonly string[];
  /** Accepted username/password pairs. */
  users?: readonly MqttUser[];
  /** Connections without a username; default true when no users are configured, else false. */
  allowAnonymous?: boolean;
  /** Also serve MQTT over WebSocket on an own HTTP listener on this port (0 picks one); none when omitted. */
  wsPort?: number;
  /** WebSocket path (default /mqtt). */
  wsPath?: string;
  /** Largest MQTT packet accepted, bytes (default 1 MiB + headers); larger ones close the connection. */
  maxPacketBytes?: number;
  /** Connections held at once on the TCP listener (default 10,000). */
  maxConnections?: number;
  /** aedes: packets queued per client before CONNECT completes (default 42). */
  queueLimit?: number;
  /** aedes: longest client id (default 128; MQTT requires at least 23). */
  maxClientsIdLength?: number;
  /** aedes: $SYS heartbeat period (default 60 s). */
  heartbeatIntervalMs?: number;
  /** aedes: time a connection has to send CONNECT (default 30 s). */
  connectTimeoutMs?: number;
  /** aedes: deliveries in flight per mq listener (default 100). */
  concurrency?: number;
  /** How often the NameServer topic list is re-read for first-level wildcards (default 10 s). */
  topicRefreshIntervalMs?: number;
  /** Long-polling hold of engine reads (default 15 s). */
  pollSuspendMs?: number;
  /**
   * Retained messages and persistent sessions live in engine topics; entries not written for this
   * long are written again (default 24 h), checked every tableRefreshIntervalMs (default 1 h), so
   * CommitLog retention (72 h) never deletes the only copy (keyed-log.ts).
   */
  tableRefreshAfterMs?: number;
  tableRefreshIntervalMs?: number;
  /** Unacknowledged deliveries per persistent session before reading pauses (default 100). */
  maxInflightPerSession?: number;
  /** Lease of a shared-subscription message (default 30 s). */
  shareInvisibleTimeMs?: number;
  /** aedes broker id (default random). */
  id?: string;
}

/** Per-topic authorization hooks; the defaults allow everything that maps onto the engine. */
export interface MqttAuthorizer {
  canPublish?(client: Client | null, topic: string): boolean;
  canSubscribe?(client: Client, filter: string): boolean;
}

/** A running MQTT server. */
export interface MqttServer {
  readonly aedes: Aedes;
  /** The TCP port listened on. */
  readonly port: number;
  /** The WebSocket listener's port, when the server owns one. */
  readonly wsPort: number | undefined;
  /**
   * Routes an HTTP upgrade: takes `request.url` paths equal to the WebSocket path (answering with
   * the `mqtt` subprotocol) and returns true; returns false, touching nothing, for other paths.
   */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /** Connected clients and persistent sessions, for the admin API. */
  describe(): MqttServerView;
  /**
   * Messages waiting for a persistent session: what lies past its group's offsets on the engine
   * topics its filters cover (an upper bound: messages there that match no filter count too).
   */
  queuedMessages(clientId: string): Promise<number>;
  close(): Promise<void>;
}

export interface MqttServerView {
  connections: { clientId: string; clean: boolean; subscriptions: string[] }[];
  sessions: { clientId: string; subscriptions: { topic: string; qos: number }[]; connected: boolean }[];
}

function passwordMatches(expected: string, given: Buffer | undefined): boolean {
  if (given === undefined) return false;
  const wanted = Buffer.from(expected, 'utf8');
  return wanted.length === given.length && timingSafeEqual(wanted, given);
}

function authError(message: string, returnCode: number): Error & { returnCode: number } {
  return Object.assign(new Error(message), { returnCode });
}

/** Starts the MQTT server; resolves once it listens and the retained and session tables are loaded. */
export async function startMqttServer(
  options: MqttServerOptions,
  authorizer: MqttAuthorizer = {},
): Promise<MqttServer> {
  if (options.nameServers.length === 0) throw new RbError(ErrorCode.ConfigInvalid, 'MQTT server needs nameServers');
  const ownsTransport = options.transport === undefined;
  const transport = options.transport ?? new RemoteTransport();
  const nameServers = options.nameServers;
  const users = options.users ?? [];
  const allowAnonymous = options.allowAnonymous ?? users.length === 0;
  const maxPacketBytes = options.maxPacketBytes ?? 1024 * 1024 + 64 * 1024;
  const serverId = options.id ?? `mqtt-${process.pid}-${Date.now().toString(36)}`;
  const follower: FollowerOptions = {
    pollSuspendMs: options.pollSuspendMs ?? 15_000,
    retryDelayMs: 1000,
    pullBatchSize: 32,
  };

  const producer = new Producer({ group: 'mqtt-gateway', nameServers, transport });
  const admin = new AdminClient({ nameServers, transport });
  const readerGroup = `mqtt-reader-${serverId.replace(/[^A-Za-z0-9_-]/g, '_')}`.slice(0, 100);
  const reader = new PullConsumer({ group: readerGroup, nameServers, transport });
  await producer.start();
  await admin.start();
  await reader.start();
  const directory = new TopicDirectory(admin, options.topicRefreshIntervalMs ?? 10_000);
  const retained = new KeyedLog(producer, reader, RETAINED_TOPIC, follower);
  const sessionTable = new KeyedLog(producer, reader, SESSIONS_TOPIC, follower);
  await Promise.all([retained.start(), sessionTable.start(), directory.start()]);
  for (const table of [retained, sessionTable]) {
    table.keepFresh(options.tableRefreshIntervalMs ?? 3_600_000, options.tableRefreshAfterMs ?? 24 * 3_600_000);
  }
  const sessions = new SessionManager({
    nameServers,
    transport,
    directory,
    table: sessionTable,
    follower,
    maxInflightPerSession: options.maxInflightPerSession ?? 100,
    commitIntervalMs: 100,
  });
  const shares = new ShareManager({
    nameServers,
    transport,
    directory,
    invisibleTimeMs: options.shareInvisibleTimeMs ?? 30_000,
    awaitDurationMs: Math.min(follower.pollSuspendMs, 15_000),
    retryDelayMs: 500,
  });
  const mq = new EngineMq({ producer, fanoutConsumer: reader, directory, sessions, shares, follower });
  const persistence = new EnginePersistence(retained, sessions);

  // Publishers repeat their topic names: each name is checked once (bounded: names up to 256
  // characters, 10,000 of them, starting over when full).
  const publishProblems = new Map<string, string | undefined>();
  const publishProblemOf = (name: string): string | undefined => {
    if (name.length > 256) return publishProblem(name);
    let problem = publishProblems.get(name);
    if (problem === undefined && !publishProblems.has(name)) {
      problem = publishProblem(name);
      if (publishProblems.size >= 10_000) publishProblems.clear();
      publishProblems.set(name, problem);
    }
    return problem;
  };

  const aedesOptions: AedesOptions = {
    id: serverId,
    mq,
    persistence,
    concurrency: options.concurrency ?? 100,
    queueLimit: options.queueLimit ?? 42,
    maxClientsIdLength: options.maxClientsIdLength ?? 128,
    heartbeatInterval: options.heartbeatIntervalMs ?? 60_000,
    connectTimeout: options.connectTimeoutMs ?? 30_000,
    authenticate(client, username, password, done) {
      if (username === undefined || username === null) {
        if (allowAnonymous) return done(null, true);
        log.info({ clientId: client.id }, 'refused: anonymous connections are not allowed');
        return done(authError('anonymous not allowed', ConnackCode.NotAuthorized) as never, false);
      }
      const user = users.find((candidate) => candidate.username === username);
      if (user !== undefined && passwordMatches(user.password, password)) return done(null, true);
      log.info({ clientId: client.id, username }, 'refused: bad username or password');
      return done(authError('bad username or password', ConnackCode.BadUsernameOrPassword) as never, false);
    },
    authorizePublish(client, packet, done) {
      const problem = publishProblemOf(packet.topic);
      if (problem !== undefined) {
        log.info({ clientId: client?.id, topic: packet.topic, reason: problem }, 'publish refused; closing');
        return done(new Error(problem));
      }
      if (authorizer.canPublish !== undefined && !authorizer.canPublish(client, packet.topic)) {
        log.info({ clientId: client?.id, topic: packet.topic }, 'publish not authorized; closing');
        return done(new Error('not authorized'));
      }
      if (packet.qos !== 1) return done(null);
      mq.storeBeforeAck(packet, (retainedPacket) => persistence.storeRetained(retainedPacket)).then(
        () => done(null),
        (err: unknown) => {
          log.warn({ err, clientId: client?.id, topic: packet.topic }, 'QoS 1 publish not stored; closing');
          done(err instanceof Error ? err : new Error(String(err)));
        },
      );
    },
    authorizeSubscribe(client, subscription, done) {
      const problem = subscribeProblem(subscription.topic);
      if (problem !== undefined) {
        log.info({ clientId: client.id, filter: subscription.topic, reason: problem }, 'subscription refused (0x80)');
        return done(null, null);
      }
      if (authorizer.canSubscribe !== undefined && !authorizer.canSubscribe(client, subscription.topic)) {
        log.info({ clientId: client.id, filter: subscription.topic }, 'subscription not authorized (0x80)');
        return done(null, null);
      }
      mq.expectSubscription(client as unknown as AedesClientView, subscription.topic, subscription.qos);
      done(null, subscription);
    },
  };
  const aedes = await Aedes.createBroker(aedesOptions);
  aedes.on('clientError', (client: Client, err: Error) => {
    log.info({ clientId: client.id, reason: err.message }, 'client connection closed on error');
  });
  aedes.on('connectionError', (_client: Client, err: Error) => {
    log.info({ reason: err.message }, 'connection closed before CONNECT completed');
  });

  /** Hands a connection to aedes behind the packet size guard. */
  const accept = (conn: Duplex, request?: IncomingMessage): void => {
    const client = aedes.handle(conn, request) as unknown as { _parser: { parse(buf: Buffer): unknown } };
    const guard = new PacketSizeGuard(maxPacketBytes);
    const parse = client._parser.parse.bind(client._parser);
    client._parser.parse = (buf: Buffer) => {
      const verdict = guard.feed(buf);
      if (!verdict.ok) {
        log.info({ reason: verdict.reason }, 'connection closed: packet refused');
        conn.destroy();
        return undefined;
      }
      return parse(buf);
    };
  };

  const tcp: TcpServer = createTcpServer((socket: Socket) => {
    socket.setNoDelay(true);
    accept(socket);
  });
  tcp.maxConnections = options.maxConnections ?? 10_000;
  await new Promise<void>((resolve, reject) => {
    tcp.once('error', reject);
    tcp.listen(options.port ?? 1883, options.host ?? '0.0.0.0', () => {
      tcp.off('error', reject);
      resolve();
    });
  });
  const tcpAddress = tcp.address();
  const port = typeof tcpAddress === 'object' && tcpAddress !== null ? tcpAddress.port : 0;

  const wsPath = options.wsPath ?? '/mqtt';
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: maxPacketBytes,
    handleProtocols: (protocols) => (protocols.has('mqtt') ? 'mqtt' : false),
  });
  const handleUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer): boolean => {
    const path = (request.url ?? '').split('?')[0];
    if (path !== wsPath) return false;
    wss.handleUpgrade(request, socket, head, (ws) => {
      const stream = createWebSocketStream(ws);
      stream.on('error', () => stream.destroy());
      accept(stream, request);
    });
    return true;
  };

  let http: HttpServer | undefined;
  if (options.wsPort !== undefined) {
    const server = createHttpServer((_request, response) => {
      response.writeHead(404).end();
    });
    server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (!handleUpgrade(request, socket, head)) socket.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.wsPort, options.host ?? '0.0.0.0', () => {
        server.off('error', reject);
        resolve();
      });
    });
    http = server;
  }
  const httpAddress = http?.address();
  const wsPort = typeof httpAddress === 'object' && httpAddress !== null ? httpAddress.port : undefined;
  log.info({ port, wsPort, serverId }, 'MQTT server listening');

  let closing: Promise<void> | undefined;
  const close = async (): Promise<void> => {
    const tcpClosed = new Promise<void>((resolve) => tcp.close(() => resolve()));
    const httpClosed =
      http === undefined ? Promise.resolve() : new Promise<void>((resolve) => http?.close(() => resolve()));
    http?.closeAllConnections();
    for (const ws of wss.clients) ws.terminate();
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
    await Promise.all([sessions.close(), shares.close()]);
    retained.stop();
    sessionTable.stop();
    directory.stop();
    wss.close();
    await Promise.all([tcpClosed, httpClosed]);
    await reader.shutdown();
    await producer.shutdown();
    await admin.shutdown();
    if (ownsTransport) await transport.close();
    log.info({ port }, 'MQTT server closed');
  };

  return {
    aedes,
    port,
    wsPort,
    handleUpgrade,
    describe() {
      const clients = aedes as unknown as { clients: Record<string, AedesClientView> };
      const connections = Object.values(clients.clients).map((client) => ({
        clientId: client.id,
        clean: client.clean,
        subscriptions: Object.keys(client.subscriptions),
      }));
      return {
        connections,
        sessions: sessions.clientIds().map((clientId) => ({
          clientId,
          subscriptions: sessions.stored(clientId).map(({ topic, qos }) => ({ topic, qos })),
          connected: clients.clients[clientId] !== undefined,
        })),
      };
    },
    async queuedMessages(clientId) {
      const topics = new Set<string>();
      for (const { topic: filter } of sessions.stored(clientId)) {
        const first = filter.split('/')[0] as string;
        if (filter.startsWith(SHARE_PREFIX)) continue;
        if (first === '+' || first === '#') directory.known().forEach((topic) => topics.add(topic));
        else topics.add(toEngineAddress(first).topic);
      }
      let queued = 0;
      for (const topic of topics) {
        const lags = await admin.consumerLag(sessionGroupOf(clientId), topic).catch(() => []);
        queued += lags.reduce((sum, lag) => sum + lag.lag, 0);
      }
      return queued;
    },
    close() {
      closing ??= close();
      return closing;
    },
  };
}

/** Why a client may not publish to `name` (MQTT rules, then what the engine cannot take). */
function publishProblem(name: string): string | undefined {
  const problem = publishTopicProblem(name);
  if (problem !== undefined) return problem;
  const { topic } = toEngineAddress(name);
  if (isSystemTopic(topic)) return `topic ${topic} is reserved to the engine`;
  return undefined;
}

/** Why a filter cannot be subscribed (aedes already refused malformed ones by closing). */
function subscribeProblem(filter: string): string | undefined {
  if (filter.startsWith(SHARE_PREFIX)) {
    try {
      parseSharedFilter(filter);
      return undefined;
    } catch (err) {
      return (err as Error).message;
    }
  }
  if (filter.startsWith('$')) return undefined;
  const problem = filterProblem(filter);
  if (problem !== undefined) return problem;
  const first = filter.split('/')[0] as string;
  if (first !== '+' && first !== '#' && isSystemTopic(toEngineAddress(first).topic)) {
    return `topic ${first} is reserved to the engine`;
  }
  return undefined;
}
