/**
 * A NameServer process part (RocketMQ NamesrvController): the route table, its processors, the
 * remoting server they listen on, and the timer that expires silent brokers. Several NameServers
 * run independently; brokers register with each of them.
 */
import { formatHostAddress } from '../common/host-address.js';
import { createLogger } from '../common/logger.js';
import { ProcessorRegistry, type RemotingChannel } from '../remoting/channel.js';
import { RemotingServer } from '../remoting/tcp-server.js';
import { KvConfigStore } from './kv-config.js';
import { ReplicaController } from './replica-controller.js';
import { registerNamesrvProcessors } from './processors.js';
import { DEFAULT_BROKER_EXPIRY_MS, RouteInfoManager } from './route-info-manager.js';

export interface NameServerOptions {
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  /** Remove a broker not heard from for this long (RocketMQ: 120 s). */
  brokerExpiryMs?: number;
  /** How often to look for expired brokers; default a quarter of brokerExpiryMs, at most 5 s. */
  scanIntervalMs?: number;
  maxFrameBytes?: number;
  maxConnections?: number;
  /** Close connections idle this long (RocketMQ: 120 s); 0 disables. */
  idleTimeoutMs?: number;
  /** Run the failover controller for master/slave broker groups here (replica-controller.ts). */
  controller?: { dataDir: string; heartbeatTimeoutMs?: number };
}

/** A controller-mode master silent this long is replaced (a closed connection replaces it at once). */
export const DEFAULT_CONTROLLER_HEARTBEAT_TIMEOUT_MS = 6000;

/** The NameServer: broker registry and topic routes over remoting. */
export class NameServer {
  /** Request processors by code; the in-process transport dispatches here without TCP. */
  readonly registry = new ProcessorRegistry();
  readonly routes: RouteInfoManager;
  readonly kv = new KvConfigStore();
  /** The failover controller, when this NameServer runs one. */
  readonly controller: ReplicaController | undefined;
  private readonly options: NameServerOptions;
  private readonly server: RemotingServer;
  private readonly scanIntervalMs: number;
  private readonly log = createLogger('namesrv');
  private scanTimer: NodeJS.Timeout | undefined;

  constructor(options: NameServerOptions) {
    this.options = options;
    const brokerExpiryMs = options.brokerExpiryMs ?? DEFAULT_BROKER_EXPIRY_MS;
    if (!Number.isInteger(brokerExpiryMs) || brokerExpiryMs <= 0) {
      throw new Error(`brokerExpiryMs must be a positive integer, got ${brokerExpiryMs}`);
    }
    this.scanIntervalMs = options.scanIntervalMs ?? Math.min(5000, Math.max(10, Math.floor(brokerExpiryMs / 4)));
    this.routes = new RouteInfoManager({ brokerExpiryMs, log: this.log });
    registerNamesrvProcessors(this.registry, { routes: this.routes, kv: this.kv, log: this.log });
    if (options.controller !== undefined) {
      this.controller = new ReplicaController({
        dataDir: options.controller.dataDir,
        heartbeatTimeoutMs: options.controller.heartbeatTimeoutMs ?? DEFAULT_CONTROLLER_HEARTBEAT_TIMEOUT_MS,
        log: this.log.child({ role: 'controller' }),
      });
      this.controller.registerProcessors(this.registry);
    }
    this.server = new RemotingServer({
      name: 'namesrv',
      host: options.host,
      port: options.port,
      registry: this.registry,
      ...(options.maxFrameBytes !== undefined ? { maxFrameBytes: options.maxFrameBytes } : {}),
      ...(options.maxConnections !== undefined ? { maxConnections: options.maxConnections } : {}),
      ...(options.idleTimeoutMs !== undefined ? { idleTimeoutMs: options.idleTimeoutMs } : {}),
    });
  }

  async start(): Promise<void> {
    await this.server.listen();
    this.scanTimer = setInterval(() => this.routes.scanNotActiveBrokers(), this.scanIntervalMs);
    this.controller?.start();
    this.log.info({ address: this.address, controller: this.controller !== undefined }, 'NameServer started');
  }

  async shutdown(): Promise<void> {
    if (this.scanTimer !== undefined) clearInterval(this.scanTimer);
    this.scanTimer = undefined;
    this.controller?.shutdown();
    await this.server.close();
  }

  /** Called with each connection that ends (its `closeReason` says why, see close-reason.ts). */
  onChannelClosed(listener: (channel: RemotingChannel) => void): void {
    this.server.onChannelClosed(listener);
  }

  /** The bound port (after start). */
  get port(): number {
    return this.server.port;
  }

  /**
   * "host:port" to give brokers and clients; a wildcard listen host (0.0.0.0, ::) is reported as
   * 127.0.0.1, the address that reaches it from this machine.
   */
  get address(): string {
    const host =
      this.options.host === '0.0.0.0' || this.options.host === '::' || this.options.host === ''
        ? '127.0.0.1'
        : this.options.host;
    return formatHostAddress({ host, port: this.server.port });
  }
}
