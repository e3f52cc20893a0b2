/**
 * The broker's options (RocketMQ BrokerConfig plus the MessageStoreConfig it owns). Each option has a
 * default and a unit; the CLI (src/cli/broker-command.ts) maps flags onto it and `validateBrokerConfig`
 * rejects nonsense at startup with a clear message.
 */
import { join } from 'node:path';
import { ErrorCode, RbError } from '../common/errors.js';
import { type MessageStoreConfig, defaultMessageStoreConfig, testMessageStoreConfig } from '../store/api.js';

export interface BrokerConfig {
  /** Names the broker in routes; master and slaves of one broker share it. */
  brokerName: string;
  clusterName: string;
  /** 0 = master, > 0 = slave. */
  brokerId: number;
  /** Interface the remoting server listens on. */
  host: string;
  /** Remoting port; 0 picks a free port (tests). */
  port: number;
  /** The IP put into NameServer routes and offset message ids (clients connect to it). */
  announceHost: string;
  /** NameServers as "host:port"; the broker registers with each. */
  namesrvAddresses: string[];
  /** Create a topic on the first send to it (RocketMQ autoCreateTopicEnable). */
  autoCreateTopicEnable: boolean;
  /** Queue count of auto-created topics and of the TBW102 template (RocketMQ producer default 4). */
  defaultTopicQueueNums: number;
  /** How often the broker re-registers with every NameServer. */
  registerIntervalMs: number;
  /** NameServer requests time out after this. */
  registerTimeoutMs: number;
  /** Cap on the suspendTimeoutMillis a pull asks for. */
  longPollingMaxSuspendMs: number;
  /** Most pulls held by long polling at once; past it a pull is answered at once (PULL_NOT_FOUND). */
  maxHeldPulls: number;
  /** How often held pulls are re-checked against the queues' max offsets (RocketMQ: 5 s). */
  longPollingCheckIntervalMs: number;
  /** Most messages one pull returns (RocketMQ maxTransferCountOnMessageInMemory). */
  pullMaxMessageCount: number;
  /** Most bytes one pull returns, at least one message (RocketMQ maxTransferBytesOnMessageInMemory). */
  pullMaxTotalBytes: number;
  /** How often consumer offsets are written to config/consumerOffset.json. */
  consumerOffsetPersistIntervalMs: number;
  /** A client channel not heard from (heartbeat) for this long is dropped. */
  clientChannelExpiryMs: number;
  /** How often client channels are scanned for expiry (RocketMQ: 10 s). */
  clientChannelScanIntervalMs: number;
  /** Most messages one SEND_BATCH_MESSAGE may carry. */
  maxBatchMessageCount: number;
  /** Reconsume attempts before a message goes to %DLQ%<group> (RocketMQ: 16). */
  maxReconsumeTimes: number;
  /** RocketMQ messageDelayLevel: delay of level 1..N, space-separated, units ms s m h d. */
  messageDelayLevel: string;
  /** Farthest TIMER_DELIVER_MS / TIMER_DELAY_SEC ahead of now a send may ask for (RocketMQ timerMaxDelaySec). */
  timerMaxDelayMs: number;
  /**
   * A timer message waiting longer than this is stored again (RocketMQ rolls too), so CommitLog
   * retention never deletes it first; default a third of store.fileReservedMs, at most a day.
   */
  timerRollAfterMs?: number;
  /** A queue lock (LOCK_BATCH_MQ) not renewed for this long is free (RocketMQ rebalance.lockMaxLiveTime). */
  rebalanceLockMaxLiveTimeMs: number;
  /** How often half messages are checked back with their producers (RocketMQ transactionCheckInterval). */
  transactionCheckIntervalMs: number;
  /** A half message younger than this is not checked yet (RocketMQ transactionTimeOut). */
  transactionTimeoutMs: number;
  /** Checks before an unresolved half message is discarded (RocketMQ transactionCheckMax). */
  transactionCheckMax: number;
  /** The pop state journal is compacted into its snapshot once it grows past this many bytes. */
  popJournalMaxBytes: number;
  /**
   * RocketMQ brokerRole. ASYNC_MASTER answers sends once stored locally; SYNC_MASTER once a slave has
   * the bytes too (SLAVE_NOT_AVAILABLE / FLUSH_SLAVE_TIMEOUT otherwise). A broker with brokerId > 0 is
   * a SLAVE whatever this says.
   */
  brokerRole: BrokerRole;
  /** HA port the master listens on for slaves; undefined = remoting port + 1 (RocketMQ 10912); 0 picks one. */
  haPort?: number;
  /** Slave: the master's HA address "host:port"; undefined = learned from the NameServer registration. */
  haMasterAddress?: string;
  /** Slave: the master's remoting address (offset sync); undefined = learned from the NameServer. */
  haMasterBrokerAddress?: string;
  /** Slave reports its offset, and an idle master sends an empty frame, this often (RocketMQ 5 s). */
  haHeartbeatIntervalMs: number;
  /** An HA connection silent for this long is closed (RocketMQ haHousekeepingInterval 20 s). */
  haHousekeepingMs: number;
  /** A slave reconnects to its master after this. */
  haReconnectIntervalMs: number;
  /** Most CommitLog bytes in one HA frame (RocketMQ haTransferBatchSize 32 KiB). */
  haTransferBatchBytes: number;
  /** A slave closes a connection whose frame announces more than this. */
  haMaxFrameBytes: number;
  /** A sync master counts a slave this far behind as unavailable (RocketMQ haMaxGapNotInSync 256 MiB). */
  haMaxGapNotInSyncBytes: number;
  /** A sync master answers FLUSH_SLAVE_TIMEOUT when no slave has a record after this (RocketMQ 5 s). */
  syncSlaveTimeoutMs: number;
  /** Slave: how often consumer offsets are fetched from the master (RocketMQ SlaveSynchronize, 10 s). */
  slaveSyncIntervalMs: number;
  /**
   * Controller mode (automatic failover): NameServers running the controller role, "host:port". The
   * controller decides which broker of the group is master; brokerRole then only chooses sync or async
   * replication for whichever broker is master. Empty: roles are fixed by brokerId.
   */
  controllerAddresses: string[];
  /**
   * RocketMQ slaveReadEnable: pull responses send consumers reading far behind the log's end (see
   * accessMessageInMemoryMaxRatio) to a slave, and back to the master once they caught up.
   */
  slaveReadEnable: boolean;
  /** Percent of RAM: a read further behind the log's end than this counts as slow (RocketMQ 40). */
  accessMessageInMemoryMaxRatio: number;
  /** Overrides accessMessageInMemoryMaxRatio with a byte count (tests). */
  slaveReadBehindBytes?: number;
  /** Controller mode: how often the broker reports to the controller and learns its role. */
  controllerHeartbeatIntervalMs: number;
  store: MessageStoreConfig;
}

export type BrokerRole = 'ASYNC_MASTER' | 'SYNC_MASTER' | 'SLAVE';

/** The role in effect: brokerId > 0 makes a slave. */
export function effectiveBrokerRole(config: BrokerConfig): BrokerRole {
  return config.brokerId > 0 ? 'SLAVE' : config.brokerRole;
}

/** RocketMQ's default delay levels 1..18. */
export const DEFAULT_MESSAGE_DELAY_LEVEL = '1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h';

const DELAY_UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses messageDelayLevel into the delay in ms of each level (index 0 = level 1). */
export function parseDelayLevels(text: string): number[] {
  const levels: number[] = [];
  for (const word of text.trim().split(/\s+/)) {
    const match = /^(\d+)(ms|s|m|h|d)$/.exec(word);
    const unitMs = match?.[2] === undefined ? undefined : DELAY_UNIT_MS[match[2]];
    if (match === null || unitMs === undefined) {
      throw new RbError(ErrorCode.ConfigInvalid, `messageDelayLevel entry "${word}" is not <number><ms|s|m|h|d>`);
    }
    levels.push(Number(match[1]) * unitMs);
  }
  if (levels.length === 0 || levels.length > 64) {
    throw new RbError(ErrorCode.ConfigInvalid, 'messageDelayLevel must list 1..64 delays');
  }
  return levels;
}

/** Production defaults, data under `dataDir`. */
export function defaultBrokerConfig(dataDir: string, overrides: Partial<BrokerConfig> = {}): BrokerConfig {
  return {
    brokerName: 'broker-a',
    clusterName: 'DefaultCluster',
    brokerId: 0,
    host: '0.0.0.0',
    port: 10911,
    announceHost: '127.0.0.1',
    namesrvAddresses: [],
    autoCreateTopicEnable: true,
    defaultTopicQueueNums: 4,
    registerIntervalMs: 30_000,
    registerTimeoutMs: 3000,
    longPollingMaxSuspendMs: 30_000,
    longPollingCheckIntervalMs: 5000,
    maxHeldPulls: 100_000,
    pullMaxMessageCount: 32,
    pullMaxTotalBytes: 256 * 1024,
    consumerOffsetPersistIntervalMs: 5000,
    clientChannelExpiryMs: 120_000,
    clientChannelScanIntervalMs: 10_000,
    maxBatchMessageCount: 1024,
    maxReconsumeTimes: 16,
    messageDelayLevel: DEFAULT_MESSAGE_DELAY_LEVEL,
    timerMaxDelayMs: 7 * 86_400_000,
    rebalanceLockMaxLiveTimeMs: 60_000,
    transactionCheckIntervalMs: 60_000,
    transactionTimeoutMs: 6000,
    transactionCheckMax: 15,
    popJournalMaxBytes: 16 * 1024 * 1024,
    brokerRole: 'ASYNC_MASTER',
    haHeartbeatIntervalMs: 5000,
    haHousekeepingMs: 20_000,
    haReconnectIntervalMs: 5000,
    haTransferBatchBytes: 32 * 1024,
    haMaxFrameBytes: 16 * 1024 * 1024,
    haMaxGapNotInSyncBytes: 256 * 1024 * 1024,
    syncSlaveTimeoutMs: 5000,
    slaveSyncIntervalMs: 10_000,
    controllerAddresses: [],
    controllerHeartbeatIntervalMs: 1000,
    slaveReadEnable: false,
    accessMessageInMemoryMaxRatio: 40,
    store: { ...defaultMessageStoreConfig, storePath: dataDir },
    ...overrides,
  };
}

/** Tests: port 0 on 127.0.0.1, tiny store files, fast timers. */
export function testBrokerConfig(dir: string, overrides: Partial<BrokerConfig> = {}): BrokerConfig {
  return defaultBrokerConfig(dir, {
    host: '127.0.0.1',
    port: 0,
    registerIntervalMs: 1000,
    consumerOffsetPersistIntervalMs: 200,
    longPollingCheckIntervalMs: 1000,
    clientChannelScanIntervalMs: 1000,
    haHeartbeatIntervalMs: 200,
    haHousekeepingMs: 3000,
    haReconnectIntervalMs: 200,
    syncSlaveTimeoutMs: 2000,
    slaveSyncIntervalMs: 200,
    controllerHeartbeatIntervalMs: 200,
    store: testMessageStoreConfig(dir),
    ...overrides,
  });
}

/** Where the broker's JSON config files (topics, offsets) live. */
export function brokerConfigDir(config: BrokerConfig): string {
  return join(config.store.storePath, 'config');
}

/** Throws RbError(ConfigInvalid) naming the first bad option. */
export function validateBrokerConfig(config: BrokerConfig): void {
  const problems: string[] = [];
  if (!/^[\w.-]+$/.test(config.brokerName))
    problems.push(`brokerName "${config.brokerName}" must be letters, digits, _ . -`);
  if (!/^[\w.-]+$/.test(config.clusterName)) {
    problems.push(`clusterName "${config.clusterName}" must be letters, digits, _ . -`);
  }
  if (!Number.isInteger(config.brokerId) || config.brokerId < 0) problems.push('brokerId must be an integer >= 0');
  if (!Number.isInteger(config.port) || config.port < 0 || config.port > 65535) problems.push('port must be 0..65535');
  if (config.announceHost.length === 0) problems.push('announceHost must not be empty');
  for (const address of config.namesrvAddresses) {
    if (!/^.+:\d{1,5}$/.test(address)) problems.push(`NameServer address "${address}" is not host:port`);
  }
  const positive: (keyof BrokerConfig)[] = [
    'defaultTopicQueueNums',
    'registerIntervalMs',
    'registerTimeoutMs',
    'longPollingMaxSuspendMs',
    'longPollingCheckIntervalMs',
    'maxHeldPulls',
    'pullMaxMessageCount',
    'pullMaxTotalBytes',
    'consumerOffsetPersistIntervalMs',
    'clientChannelExpiryMs',
    'clientChannelScanIntervalMs',
    'maxBatchMessageCount',
    'timerMaxDelayMs',
    'rebalanceLockMaxLiveTimeMs',
    'transactionCheckIntervalMs',
    'popJournalMaxBytes',
    'haHeartbeatIntervalMs',
    'haHousekeepingMs',
    'haReconnectIntervalMs',
    'haTransferBatchBytes',
    'haMaxFrameBytes',
    'haMaxGapNotInSyncBytes',
    'syncSlaveTimeoutMs',
    'slaveSyncIntervalMs',
    'controllerHeartbeatIntervalMs',
  ];
  for (const name of positive) {
    const value = config[name];
    if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0)
      problems.push(`${name} must be a positive integer`);
  }
  if (config.defaultTopicQueueNums > 1024) problems.push('defaultTopicQueueNums must be at most 1024');
  if (
    config.timerRollAfterMs !== undefined &&
    (!Number.isInteger(config.timerRollAfterMs) || config.timerRollAfterMs <= 0)
  ) {
    problems.push('timerRollAfterMs must be a positive integer');
  }
  if (!Number.isInteger(config.maxReconsumeTimes) || config.maxReconsumeTimes < 0) {
    problems.push('maxReconsumeTimes must be an integer >= 0');
  }
  if (!Number.isInteger(config.transactionTimeoutMs) || config.transactionTimeoutMs < 0) {
    problems.push('transactionTimeoutMs must be an integer >= 0');
  }
  if (!Number.isInteger(config.transactionCheckMax) || config.transactionCheckMax < 0) {
    problems.push('transactionCheckMax must be an integer >= 0');
  }
  if (!['ASYNC_MASTER', 'SYNC_MASTER', 'SLAVE'].includes(config.brokerRole)) {
    problems.push('brokerRole must be ASYNC_MASTER, SYNC_MASTER or SLAVE');
  }
  if (config.brokerRole === 'SLAVE' && config.brokerId === 0) problems.push('a SLAVE needs a brokerId > 0');
  if (config.haPort !== undefined && (!Number.isInteger(config.haPort) || config.haPort < 0 || config.haPort > 65535)) {
    problems.push('haPort must be 0..65535');
  }
  for (const address of config.controllerAddresses) {
    if (!/^.+:\d{1,5}$/.test(address)) problems.push(`controller address "${address}" is not host:port`);
  }
  for (const address of [config.haMasterAddress, config.haMasterBrokerAddress]) {
    if (address !== undefined && !/^.+:\d{1,5}$/.test(address))
      problems.push(`master address "${address}" is not host:port`);
  }
  try {
    parseDelayLevels(config.messageDelayLevel);
  } catch (err) {
    problems.push((err as Error).message);
  }
  if (problems.length > 0) throw new RbError(ErrorCode.ConfigInvalid, `invalid broker config: ${problems.join('; ')}`);
}
