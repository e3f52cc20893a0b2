/**
 * The broker's HA role in one place (RocketMQ HAService as the BrokerController sees it): a master
 * listens for slaves (HaMaster) and, as SYNC_MASTER, makes sends wait for a slave; a slave puts its
 * store in replica mode, replicates the CommitLog (HaSlave) and syncs consumer offsets
 * (SlaveSynchronize). Master addresses come from the config or from the NameServer's REGISTER_BROKER
 * answer (masterAddr, haServerAddr). The broker wires this in; the parts do the work.
 */
import { formatHostAddress } from '../../common/host-address.js';
import { ResponseCode } from '../../remoting/codes.js';
import type { RemotingCommand } from '../../remoting/command.js';
import type { RemotingClient } from '../../remoting/tcp-client.js';
import type { MessageStore } from '../../store/api.js';
import { type BrokerConfig, type BrokerRole, effectiveBrokerRole } from '../broker-config.js';
import type { ConsumerOffsetManager } from '../consumer-offset-manager.js';
import type { TopicConfigManager } from '../topic-config-manager.js';
import { HaMaster } from './ha-master.js';
import { HaSlave } from './ha-slave.js';
import { answerAllOffsets, SlaveSynchronize } from './slave-synchronize.js';

export interface HaServiceOptions {
  config: BrokerConfig;
  store: () => MessageStore;
  client: RemotingClient;
  offsets: ConsumerOffsetManager;
  topics: TopicConfigManager;
}

export class HaService {
  private currentRole: BrokerRole;
  private haMaster: HaMaster | undefined;
  private haSlave: HaSlave | undefined;
  private sync: SlaveSynchronize | undefined;
  private learnedHaAddress: string | undefined;
  private learnedBrokerAddress: string | undefined;
  /** Controller mode: the master this broker was told to follow. */
  private following: { brokerAddr: string; haAddr: string } | undefined;

  constructor(private readonly options: HaServiceOptions) {
    // Controller mode starts as a replica taking no writes until the controller says otherwise.
    this.currentRole = options.config.controllerAddresses.length > 0 ? 'SLAVE' : effectiveBrokerRole(options.config);
  }

  get role(): BrokerRole {
    return this.currentRole;
  }

  get master(): HaMaster | undefined {
    return this.haMaster;
  }

  get slave(): HaSlave | undefined {
    return this.haSlave;
  }

  /** True on a SYNC_MASTER: sends wait for a slave (awaitReplication). */
  get syncReplication(): boolean {
    return this.currentRole === 'SYNC_MASTER';
  }

  get isSlave(): boolean {
    return this.currentRole === 'SLAVE';
  }

  /** The role this broker takes when it is (or is elected) master. */
  private get masterRole(): BrokerRole {
    return this.options.config.brokerRole === 'SYNC_MASTER' ? 'SYNC_MASTER' : 'ASYNC_MASTER';
  }

  /** After the store opened. Masters listen; slaves start replicating; controller mode waits for a role. */
  async start(): Promise<void> {
    const store = this.options.store();
    store.setReplica(this.isSlave);
    store.onMessageArrived(() => this.haMaster?.notifyNewData());
    if (this.options.config.controllerAddresses.length > 0) return;
    if (this.isSlave) this.startFollowing();
    else await this.startMaster();
  }

  async shutdown(): Promise<void> {
    await this.stopFollowing();
    await this.haMaster?.close();
    this.haMaster = undefined;
  }

  /** Controller mode: stop following, take writes, serve slaves. The caller recorded the epoch first. */
  async becomeMaster(): Promise<void> {
    await this.stopFollowing();
    this.following = undefined;
    this.options.store().setReplica(false);
    this.currentRole = this.masterRole;
    if (this.haMaster === undefined) await this.startMaster();
  }

  /**
   * Controller mode: take no more writes and stop serving or following anyone, so that the log can be
   * cut before following a new master.
   */
  async fence(): Promise<void> {
    this.options.store().setReplica(true);
    this.currentRole = 'SLAVE';
    await this.stopFollowing();
    await this.haMaster?.close();
    this.haMaster = undefined;
  }

  /** Controller mode: replicate from `brokerAddr` (remoting) / `haAddr` (HA port). Call fence() first. */
  follow(brokerAddr: string, haAddr: string): void {
    this.following = { brokerAddr, haAddr };
    this.currentRole = 'SLAVE';
    if (this.haSlave === undefined) this.startFollowing();
  }

  /** Controller mode: the master's HA address learned later (its port is known once it listens). */
  updateFollowedHaAddress(haAddr: string): void {
    if (this.following !== undefined) this.following = { ...this.following, haAddr };
  }

  get followedBrokerAddress(): string | undefined {
    return this.following?.brokerAddr;
  }

  private async startMaster(): Promise<void> {
    const { config } = this.options;
    const master = new HaMaster({
      host: config.host,
      port: config.haPort ?? (config.port === 0 ? 0 : config.port + 1),
      store: this.options.store,
      transferBatchBytes: config.haTransferBatchBytes,
      heartbeatIntervalMs: config.haHeartbeatIntervalMs,
      housekeepingMs: config.haHousekeepingMs,
      maxGapNotInSyncBytes: config.haMaxGapNotInSyncBytes,
    });
    await master.listen();
    this.haMaster = master;
  }

  private startFollowing(): void {
    const { config, store } = this.options;
    this.haSlave = new HaSlave({
      store,
      masterAddress: () => this.following?.haAddr ?? config.haMasterAddress ?? this.learnedHaAddress,
      heartbeatIntervalMs: config.haHeartbeatIntervalMs,
      housekeepingMs: config.haHousekeepingMs,
      reconnectIntervalMs: config.haReconnectIntervalMs,
      maxFrameBytes: config.haMaxFrameBytes,
      segmentBytes: config.store.commitLogSegmentBytes,
    });
    this.sync = new SlaveSynchronize({
      client: this.options.client,
      offsets: this.options.offsets,
      topics: this.options.topics,
      masterBrokerAddress: () =>
        this.following?.brokerAddr ?? config.haMasterBrokerAddress ?? this.learnedBrokerAddress,
      intervalMs: config.slaveSyncIntervalMs,
      timeoutMs: config.registerTimeoutMs,
    });
    this.haSlave.start();
    this.sync.start();
  }

  private async stopFollowing(): Promise<void> {
    const { haSlave, sync } = this;
    this.haSlave = undefined;
    this.sync = undefined;
    await sync?.shutdown();
    await haSlave?.shutdown();
  }

  /** The address put into REGISTER_BROKER's haServerAddr. */
  haServerAddress(announceHost: string, listenPort: number): string {
    const port = this.haMaster?.port ?? this.options.config.haPort ?? listenPort + 1;
    return formatHostAddress({ host: announceHost, port });
  }

  /** REGISTER_BROKER answer: a slave learns its master's remoting and HA addresses. */
  onRegistered(extFields: Readonly<Record<string, string>>): void {
    if (!this.isSlave) return;
    const masterAddr = extFields['masterAddr'];
    const haServerAddr = extFields['haServerAddr'];
    if (masterAddr !== undefined && masterAddr.length > 0) this.learnedBrokerAddress = masterAddr;
    if (haServerAddr !== undefined && haServerAddr.length > 0) this.learnedHaAddress = haServerAddr;
  }

  /** GET_ALL_CONSUMER_OFFSET, served by every broker (slaves of slaves are not a thing, but harmless). */
  answerAllOffsets(request: RemotingCommand): RemotingCommand {
    return answerAllOffsets(request, this.options.offsets);
  }

  /**
   * After a successful put on a SYNC_MASTER: the response code to answer with (RocketMQ
   * handleHA): SUCCESS once a slave has the bytes up to `endOffset`, SLAVE_NOT_AVAILABLE without a
   * usable slave, FLUSH_SLAVE_TIMEOUT after syncSlaveTimeoutMs. Other roles answer SUCCESS at once.
   */
  async awaitReplication(endOffset: number): Promise<number> {
    const master = this.haMaster;
    if (this.currentRole !== 'SYNC_MASTER' || master === undefined) return ResponseCode.Success;
    const outcome = await master.waitForSlave(endOffset, this.options.config.syncSlaveTimeoutMs);
    if (outcome === 'ok') return ResponseCode.Success;
    return outcome === 'timeout' ? ResponseCode.FlushSlaveTimeout : ResponseCode.SlaveNotAvailable;
  }
}
