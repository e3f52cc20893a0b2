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
  readonly role: BrokerRole;
  readonly master: HaMaster | undefined;
  readonly slave: HaSlave | undefined;
  readonly synchronize: SlaveSynchronize | undefined;
  private learnedHaAddress: string | undefined;
  private learnedBrokerAddress: string | undefined;

  constructor(private readonly options: HaServiceOptions) {
    const { config } = options;
    this.role = effectiveBrokerRole(config);
    if (this.role === 'SLAVE') {
      this.slave = new HaSlave({
        store: options.store,
        masterAddress: () => config.haMasterAddress ?? this.learnedHaAddress,
        heartbeatIntervalMs: config.haHeartbeatIntervalMs,
        housekeepingMs: config.haHousekeepingMs,
        reconnectIntervalMs: config.haReconnectIntervalMs,
        maxFrameBytes: config.haMaxFrameBytes,
      });
      this.synchronize = new SlaveSynchronize({
        client: options.client,
        offsets: options.offsets,
        topics: options.topics,
        masterBrokerAddress: () => config.haMasterBrokerAddress ?? this.learnedBrokerAddress,
        intervalMs: config.slaveSyncIntervalMs,
        timeoutMs: config.registerTimeoutMs,
      });
    } else {
      this.master = new HaMaster({
        host: config.host,
        port: config.haPort ?? (config.port === 0 ? 0 : config.port + 1),
        store: options.store,
        transferBatchBytes: config.haTransferBatchBytes,
        heartbeatIntervalMs: config.haHeartbeatIntervalMs,
        housekeepingMs: config.haHousekeepingMs,
        maxGapNotInSyncBytes: config.haMaxGapNotInSyncBytes,
      });
    }
  }

  /** True on a SYNC_MASTER: sends wait for a slave (awaitReplication). */
  get syncReplication(): boolean {
    return this.role === 'SYNC_MASTER';
  }

  get isSlave(): boolean {
    return this.role === 'SLAVE';
  }

  /** Before the store opens: nothing. After: call start(). Masters listen; slaves start replicating. */
  async start(): Promise<void> {
    const store = this.options.store();
    store.setReplica(this.isSlave);
    if (this.master !== undefined) {
      await this.master.listen();
      store.onMessageArrived(() => this.master?.notifyNewData());
    }
    this.slave?.start();
    this.synchronize?.start();
  }

  async shutdown(): Promise<void> {
    await this.synchronize?.shutdown();
    await this.slave?.shutdown();
    await this.master?.close();
  }

  /** The address put into REGISTER_BROKER's haServerAddr. */
  haServerAddress(announceHost: string, listenPort: number): string {
    const port = this.master?.port ?? this.options.config.haPort ?? listenPort + 1;
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
    if (this.role !== 'SYNC_MASTER' || this.master === undefined) return ResponseCode.Success;
    const outcome = await this.master.waitForSlave(endOffset, this.options.config.syncSlaveTimeoutMs);
    if (outcome === 'ok') return ResponseCode.Success;
    return outcome === 'timeout' ? ResponseCode.FlushSlaveTimeout : ResponseCode.SlaveNotAvailable;
  }
}
