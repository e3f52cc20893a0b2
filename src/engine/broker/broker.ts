/**
 * The broker (RocketMQ BrokerController): owns a message store, the topic, offset and group managers,
 * the request processors and the remoting server that feeds them, and keeps its routes registered
 * with the NameServers. The processors live in their own modules; this one wires them, starts and
 * stops things in order, and runs the housekeeping timers (registration, client channel expiry).
 * The consumer-semantics services (delay levels, timer messages, pop leases, transactions, queue
 * locks) are created here and started once the store is open; the store's arrival listener feeds
 * long polling, pops and the delay levels.
 */
import { join } from 'node:path';
import { formatHostAddress } from '../common/host-address.js';
import { invariant } from '../common/assert.js';
import { createLogger } from '../common/logger.js';
import type { HostAddress } from '../common/message.js';
import { ProcessorRegistry, type RemotingChannel } from '../remoting/channel.js';
import { RequestCode, ResponseCode } from '../remoting/codes.js';
import { createRequest, createResponse, markOneway, type RemotingCommand } from '../remoting/command.js';
import { RemotingClient } from '../remoting/tcp-client.js';
import { RemotingServer } from '../remoting/tcp-server.js';
import type { MessageStore } from '../store/api.js';
import { DefaultMessageStore } from '../store/message-store.js';
import { AdminBrokerProcessor } from './admin-broker-processor.js';
import {
  type BrokerConfig,
  type BrokerRole,
  brokerConfigDir,
  parseDelayLevels,
  validateBrokerConfig,
} from './broker-config.js';
import type { BrokerContext, BrokerCounters } from './broker-context.js';
import type { ClientChannelInfo } from './client-channel.js';
import { ClientManageProcessor } from './client-manage-processor.js';
import { ConsumerControlProcessor } from './consumer-control-processor.js';
import { ConsumerManageProcessor } from './consumer-manage-processor.js';
import { ConsumerManager } from './consumer-manager.js';
import { ConsumerOffsetManager } from './consumer-offset-manager.js';
import { ConsumerSendBackProcessor } from './consumer-send-back-processor.js';
import { EndTransactionProcessor } from './end-transaction-processor.js';
import { EpochCache, GET_BROKER_EPOCH_CACHE } from './ha/epoch-cache.js';
import { answerEpochCache, FailoverAgent } from './ha/failover-agent.js';
import { HaService } from './ha/ha-service.js';
import { GET_ALL_CONSUMER_OFFSET } from './ha/slave-synchronize.js';
import { LockBatchProcessor } from './lock-batch-processor.js';
import { NameServerRegistration } from './namesrv-registration.js';
import { PopMessageProcessor } from './pop-message-processor.js';
import { PopService } from './pop-service.js';
import { ProducerManager } from './producer-manager.js';
import { PullMessageProcessor } from './pull-message-processor.js';
import { PullRequestHoldService } from './pull-request-hold-service.js';
import { QueryMessageProcessor } from './query-message-processor.js';
import { RebalanceLockManager } from './rebalance-lock-manager.js';
import { RequestError } from './request-error.js';
import { ScheduleMessageService } from './schedule-message-service.js';
import { SendMessageProcessor } from './send-message-processor.js';
import { TimerMessageService } from './timer-message-service.js';
import { TransactionService } from './transaction-service.js';
import { PERM_READ_WRITE, TopicConfigManager } from './topic-config-manager.js';
import { SCHEDULE_TOPIC } from '../common/topic.js';

/** RocketMQ master renumbered the pop codes to shorts; served too for newer clients. */
const POP_MESSAGE_SHORT_CODE = 3442;
const ACK_MESSAGE_SHORT_CODE = 3443;
const CHANGE_INVISIBLE_TIME_SHORT_CODE = 3445;

type State = 'new' | 'starting' | 'running' | 'stopping' | 'stopped';

const log = createLogger('broker');

export class Broker {
  /** Request processors by code; the TCP server and the in-process transport both dispatch here. */
  readonly registry = new ProcessorRegistry();
  private readonly config: BrokerConfig;
  private readonly server: RemotingServer;
  private readonly client = new RemotingClient();
  private readonly topics: TopicConfigManager;
  private readonly offsets: ConsumerOffsetManager;
  private readonly consumers: ConsumerManager;
  private readonly producers = new ProducerManager();
  private readonly holdService: PullRequestHoldService;
  /** Delay levels (SCHEDULE_TOPIC_XXXX). */
  readonly schedule: ScheduleMessageService;
  /** Arbitrary delivery times. */
  readonly timer: TimerMessageService;
  /** Pop leases. */
  readonly pops: PopService;
  /** Half messages and their checks. */
  readonly transactions: TransactionService;
  private readonly locks: RebalanceLockManager;
  private popProcessor: PopMessageProcessor | undefined;
  private readonly registration: NameServerRegistration;
  /** Replication: master HA port and sync waits, or slave replication and offset sync. */
  readonly ha: HaService;
  /** Controller mode: the epoch history of this broker's log, and the agent that follows the controller. */
  readonly epochs: EpochCache;
  readonly failover: FailoverAgent | undefined;
  private readonly counters: BrokerCounters = { putMessages: 0, getMessages: 0, sendFailures: 0 };
  private readonly watchedChannels = new Set<string>();
  private messageStore: MessageStore | undefined;
  private storeHost: HostAddress | undefined;
  private state: State = 'new';
  private registerTimer: NodeJS.Timeout | undefined;
  private scanTimer: NodeJS.Timeout | undefined;
  private bootTimestampMs = Date.now();
  /** Transaction checks, timers and delayed delivery: they write, so they run on the master only. */
  private masterServicesRunning = false;

  constructor(config: BrokerConfig) {
    validateBrokerConfig(config);
    this.config = config;
    const configDir = brokerConfigDir(config);
    this.topics = new TopicConfigManager({
      configDir,
      brokerName: config.brokerName,
      clusterName: config.clusterName,
      autoCreateTopicEnable: config.autoCreateTopicEnable,
      defaultTopicQueueNums: config.defaultTopicQueueNums,
      onChange: () => {
        if (this.state === 'running') void this.registration.registerAll();
      },
    });
    this.offsets = new ConsumerOffsetManager(configDir);
    this.consumers = new ConsumerManager((group, members) => this.notifyConsumerIdsChanged(group, members));
    this.ha = new HaService({
      config,
      store: () => this.store,
      client: this.client,
      offsets: this.offsets,
      topics: this.topics,
    });
    this.epochs = new EpochCache(join(configDir, 'epochs.json'));
    if (config.controllerAddresses.length > 0) {
      this.failover = new FailoverAgent({
        config,
        client: this.client,
        ha: this.ha,
        store: () => this.store,
        epochs: this.epochs,
        addresses: () => ({
          brokerAddr: this.address,
          haServerAddr: this.ha.haServerAddress(config.announceHost, this.port),
        }),
        onRoleChanged: (role, brokerId) => this.onRoleChanged(role, brokerId),
      });
    }
    this.holdService = new PullRequestHoldService(
      (topic, queueId) => this.store.getMaxOffsetInQueue(topic, queueId),
      config.longPollingCheckIntervalMs,
      config.maxHeldPulls,
    );
    this.registration = new NameServerRegistration(
      this.client,
      config.namesrvAddresses,
      () => ({
        brokerName: config.brokerName,
        clusterName: config.clusterName,
        brokerId: this.brokerId,
        brokerAddr: this.address,
        haServerAddr: this.ha.haServerAddress(config.announceHost, this.port),
      }),
      () => this.topics.serializeWrapper(),
      config.registerTimeoutMs,
      (extFields) => this.ha.onRegistered(extFields),
    );
    const storeOf = (): MessageStore => this.store;
    this.schedule = new ScheduleMessageService(storeOf, configDir, parseDelayLevels(config.messageDelayLevel));
    // Rolled well within retention (a third of it, at most daily): see timer-message-service.ts.
    const timerRollAfterMs =
      config.timerRollAfterMs ?? Math.min(24 * 3_600_000, Math.floor(config.store.fileReservedMs / 3));
    this.timer = new TimerMessageService(storeOf, configDir, config.timerMaxDelayMs, timerRollAfterMs);
    this.pops = new PopService({
      store: storeOf,
      topics: this.topics,
      offsets: this.offsets,
      configDir,
      maxReconsumeTimes: config.maxReconsumeTimes,
      journalMaxBytes: config.popJournalMaxBytes,
      flushIntervalMs: config.store.flushIntervalMs,
    });
    this.transactions = new TransactionService({
      store: storeOf,
      producers: this.producers,
      checkIntervalMs: config.transactionCheckIntervalMs,
      timeoutMs: config.transactionTimeoutMs,
      checkMax: config.transactionCheckMax,
    });
    this.locks = new RebalanceLockManager(config.rebalanceLockMaxLiveTimeMs);
    this.server = new RemotingServer({ name: 'broker', host: config.host, port: config.port, registry: this.registry });
    this.registerProcessors();
  }

  /** The store; available once start() has resolved. */
  get store(): MessageStore {
    invariant(this.messageStore !== undefined, 'the broker store exists only after start()');
    return this.messageStore;
  }

  /** The id registered with NameServers: fixed, or (controller mode) 0 while master. */
  get brokerId(): number {
    return this.failover === undefined ? this.config.brokerId : (this.failover.brokerId ?? this.config.brokerId);
  }

  /** The actual listen port (after start). */
  get port(): number {
    return this.server.port;
  }

  /** announceHost:port, the address put into routes. */
  get address(): string {
    return formatHostAddress({ host: this.config.announceHost, port: this.server.port });
  }

  /** Number of pulls held by long polling now. */
  get heldPullCount(): number {
    return this.holdService.size;
  }

  /** Number of pops waiting for messages (long polling). */
  get heldPopCount(): number {
    return this.popProcessor?.waitingCount ?? 0;
  }

  async start(): Promise<void> {
    invariant(this.state === 'new', `broker cannot start from state ${this.state}`);
    this.state = 'starting';
    this.bootTimestampMs = Date.now();
    try {
      this.topics.load();
      this.offsets.load();
      await this.server.listen();
    } catch (err) {
      this.state = 'stopped';
      throw err;
    }
    this.storeHost = { host: this.config.announceHost, port: this.server.port };
    const store = new DefaultMessageStore({ ...this.config.store, storeHost: this.storeHost });
    store.onMessageArrived((arrival) => {
      this.holdService.notifyMessageArriving(arrival.topic, arrival.queueId, arrival.queueOffset, arrival.tagsCode);
      this.popProcessor?.notifyArrival(arrival.topic, arrival.tagsCode);
      if (arrival.topic === SCHEDULE_TOPIC) this.schedule.notifyArrival(arrival.queueId);
    });
    try {
      await store.start();
    } catch (err) {
      await this.server.close();
      this.state = 'stopped';
      throw err;
    }
    this.messageStore = store;
    try {
      await this.ha.start();
      this.pops.start();
      // A slave's store takes no local writes: delays, timers and transaction checks run on the master.
      if (!this.ha.isSlave) this.startMasterServices();
    } catch (err) {
      await this.ha.shutdown();
      await this.stopSemanticServices();
      await store.shutdown();
      await this.server.close();
      this.state = 'stopped';
      throw err;
    }
    this.holdService.start();
    this.offsets.start(this.config.consumerOffsetPersistIntervalMs);
    this.scanTimer = setInterval(() => this.scanExpiredChannels(), this.config.clientChannelScanIntervalMs);
    this.scanTimer.unref();
    this.state = 'running';
    if (this.config.namesrvAddresses.length > 0) {
      // Controller mode registers once it knows its role (onRoleChanged), with the id that goes with it.
      if (this.failover === undefined) await this.registration.registerAll();
      this.registerTimer = setInterval(() => {
        if (this.failover === undefined || this.failover.brokerId !== undefined) void this.registration.registerAll();
      }, this.config.registerIntervalMs);
      this.registerTimer.unref();
    }
    this.failover?.start();
    log.debug(
      `Broker ${this.config.brokerName} listening on ${formatHostAddress({ host: this.config.host, port: this.port })}`,
    );
  }

  /** Answers held pulls, leaves the NameServers, closes connections, persists offsets, closes the store. */
  async shutdown(): Promise<void> {
    if (this.state !== 'running') return;
    this.state = 'stopping';
    clearInterval(this.registerTimer);
    clearInterval(this.scanTimer);
    await this.failover?.shutdown();
    this.holdService.shutdown();
    this.popProcessor?.shutdown();
    // Let the woken pulls read (they run on setImmediate) before the store goes away.
    await new Promise<void>((resolve) => setImmediate(resolve));
    await this.registration.idle();
    if (this.config.namesrvAddresses.length > 0) await this.registration.unregisterAll();
    await this.server.close();
    await this.ha.shutdown();
    await this.client.close();
    await this.stopSemanticServices();
    await this.offsets.shutdown();
    await this.topics.persistAsync();
    await this.store.shutdown();
    this.state = 'stopped';
  }

  private startMasterServices(): void {
    if (this.masterServicesRunning) return;
    this.masterServicesRunning = true;
    this.transactions.start();
    this.timer.start();
    this.schedule.start();
  }

  private async stopMasterServices(): Promise<void> {
    if (!this.masterServicesRunning) return;
    this.masterServicesRunning = false;
    await this.schedule.shutdown();
    await this.timer.shutdown();
    await this.transactions.shutdown();
  }

  /** Controller mode: the controller made this broker master or slave (failover-agent.ts). */
  private async onRoleChanged(role: BrokerRole, brokerId: number): Promise<void> {
    if (this.state !== 'running') return;
    if (role === 'SLAVE') await this.stopMasterServices();
    else this.startMasterServices();
    log.info({ brokerName: this.config.brokerName, role, brokerId, address: this.address }, 'broker role changed');
    if (this.config.namesrvAddresses.length > 0) await this.registration.registerAll();
  }

  private async stopSemanticServices(): Promise<void> {
    await this.stopMasterServices();
    await this.pops.shutdown();
  }

  private context(): BrokerContext {
    const storeOf = (): MessageStore => this.store;
    const storeHostOf = (): HostAddress => {
      invariant(this.storeHost !== undefined, 'store host is known after listen');
      return this.storeHost;
    };
    const bootTimestampOf = (): number => this.bootTimestampMs;
    const brokerIdOf = (): number => this.brokerId;
    return {
      config: this.config,
      get store() {
        return storeOf();
      },
      topics: this.topics,
      offsets: this.offsets,
      consumers: this.consumers,
      producers: this.producers,
      counters: this.counters,
      get storeHost() {
        return storeHostOf();
      },
      brokerPermission: PERM_READ_WRITE,
      get brokerId() {
        return brokerIdOf();
      },
      get bootTimestampMs() {
        return bootTimestampOf();
      },
    };
  }

  private registerProcessors(): void {
    const ctx = this.context();
    const send = new SendMessageProcessor(ctx, {
      schedule: this.schedule,
      timer: this.timer,
      transactions: this.transactions,
      replication: this.ha,
    });
    const pop = new PopMessageProcessor(ctx, this.pops);
    this.popProcessor = pop;
    const endTransaction = new EndTransactionProcessor(this.transactions);
    const lockBatch = new LockBatchProcessor(this.locks);
    const control = new ConsumerControlProcessor(ctx, this.pops);
    const pull = new PullMessageProcessor(ctx, this.holdService, this.ha);
    const clients = new ClientManageProcessor(ctx, (channel) => this.watchChannel(channel));
    const consumers = new ConsumerManageProcessor(ctx);
    const admin = new AdminBrokerProcessor(ctx, this.ha);
    const query = new QueryMessageProcessor(ctx);
    const sendBack = new ConsumerSendBackProcessor(ctx, this.schedule);
    type Handler = (request: RemotingCommand, channel: RemotingChannel) => Promise<RemotingCommand> | RemotingCommand;
    const handlers: [number, Handler][] = [
      [RequestCode.SendMessage, (r, c) => send.process(r, c, 'v1')],
      [RequestCode.SendMessageV2, (r, c) => send.process(r, c, 'v2')],
      [RequestCode.SendBatchMessage, (r, c) => send.process(r, c, 'batch')],
      [RequestCode.ConsumerSendMsgBack, (r, c) => sendBack.process(r, c)],
      [RequestCode.PullMessage, (r, c) => pull.process(r, c, true)],
      [RequestCode.HeartBeat, (r, c) => clients.heartbeat(r, c)],
      [RequestCode.UnregisterClient, (r, c) => clients.unregisterClient(r, c)],
      [RequestCode.GetConsumerListByGroup, (r) => consumers.consumerList(r)],
      [RequestCode.QueryConsumerOffset, (r) => consumers.queryOffset(r)],
      [RequestCode.UpdateConsumerOffset, (r) => consumers.updateOffset(r)],
      [RequestCode.UpdateAndCreateTopic, (r) => admin.updateAndCreateTopic(r)],
      [RequestCode.GetAllTopicConfig, (r) => admin.allTopicConfig(r)],
      [RequestCode.GetBrokerRuntimeInfo, (r) => admin.runtimeInfo(r)],
      [RequestCode.SearchOffsetByTimestamp, (r) => admin.searchOffsetByTimestamp(r)],
      [RequestCode.GetMaxOffset, (r) => admin.maxOffset(r)],
      [RequestCode.GetMinOffset, (r) => admin.minOffset(r)],
      [RequestCode.GetEarliestMsgStoretime, (r) => admin.earliestMessageStoreTime(r)],
      [RequestCode.QueryMessage, (r) => query.queryMessage(r)],
      [RequestCode.ViewMessageById, (r) => query.viewMessageById(r)],
      [RequestCode.PopMessage, (r, c) => pop.pop(r, c)],
      [POP_MESSAGE_SHORT_CODE, (r, c) => pop.pop(r, c)],
      [RequestCode.AckMessage, (r) => pop.ack(r)],
      [ACK_MESSAGE_SHORT_CODE, (r) => pop.ack(r)],
      [RequestCode.BatchAckMessage, (r) => pop.batchAck(r)],
      [RequestCode.ChangeMessageInvisibleTime, (r) => pop.changeInvisibleTime(r)],
      [CHANGE_INVISIBLE_TIME_SHORT_CODE, (r) => pop.changeInvisibleTime(r)],
      [RequestCode.EndTransaction, (r, c) => endTransaction.process(r, c)],
      [RequestCode.LockBatchMq, (r) => lockBatch.lock(r)],
      [RequestCode.UnlockBatchMq, (r) => lockBatch.unlock(r)],
      [RequestCode.GetConsumeStats, (r) => control.consumeStats(r)],
      [RequestCode.InvokeBrokerToResetOffset, (r) => control.resetOffset(r)],
      [GET_ALL_CONSUMER_OFFSET, (r) => this.ha.answerAllOffsets(r)],
      [GET_BROKER_EPOCH_CACHE, (r) => answerEpochCache(r, this.epochs, this.store)],
    ];
    for (const [code, handler] of handlers) this.registry.register(code, (r, c) => this.guarded(handler, r, c));
  }

  /**
   * Runs a processor once the broker is running and turns a RequestError (the client's fault) into
   * the response it names. Anything else propagates to the registry, which answers SYSTEM_ERROR.
   */
  private async guarded(
    handler: (request: RemotingCommand, channel: RemotingChannel) => Promise<RemotingCommand> | RemotingCommand,
    request: RemotingCommand,
    channel: RemotingChannel,
  ): Promise<RemotingCommand> {
    if (this.state !== 'running') {
      return createResponse(
        request,
        ResponseCode.ServiceNotAvailable,
        `broker ${this.config.brokerName} is ${this.state}`,
      );
    }
    try {
      return await handler(request, channel);
    } catch (err) {
      if (!(err instanceof RequestError)) throw err;
      log.debug({ code: request.code, peer: channel.remoteAddress, responseCode: err.responseCode }, err.message);
      return createResponse(request, err.responseCode, err.message);
    }
  }

  private watchChannel(channel: RemotingChannel): void {
    if (this.watchedChannels.has(channel.id)) return;
    this.watchedChannels.add(channel.id);
    channel.onClose(() => {
      this.watchedChannels.delete(channel.id);
      this.consumers.removeChannel(channel);
      this.producers.removeChannel(channel);
    });
  }

  private scanExpiredChannels(): void {
    const olderThanMs = Date.now() - this.config.clientChannelExpiryMs;
    const expired = new Map<string, RemotingChannel>();
    for (const channel of [
      ...this.consumers.expiredChannels(olderThanMs),
      ...this.producers.expiredChannels(olderThanMs),
    ]) {
      expired.set(channel.id, channel);
    }
    for (const channel of expired.values()) {
      log.info({ peer: channel.remoteAddress }, 'client channel expired: no heartbeat');
      this.consumers.removeChannel(channel);
      this.producers.removeChannel(channel);
      channel.close('client channel expired');
    }
  }

  /** NOTIFY_CONSUMER_IDS_CHANGED (40), oneway, to every member of the group. */
  private notifyConsumerIdsChanged(group: string, members: ClientChannelInfo[]): void {
    for (const member of members) {
      if (member.channel.closed) continue;
      try {
        member.channel.invokeOneway(
          markOneway(createRequest(RequestCode.NotifyConsumerIdsChanged, { consumerGroup: group })),
        );
      } catch (err) {
        log.warn({ err, group, peer: member.channel.remoteAddress }, 'notifying a consumer failed');
      }
    }
  }
}
