/**
 * A broker's side of automatic failover (controller mode; the controller is
 * namesrv/replica-controller.ts). Every controllerHeartbeatIntervalMs it reports its address,
 * configured id, CommitLog max offset and epoch, and applies the role in the answer:
 *
 *   - elected master: stop following, record the epoch and the offset where its writes begin
 *     (persisted before any write), take writes, serve slaves on the HA port;
 *   - told to follow another master: take no writes (fence), ask that master for its epoch history,
 *     cut the local log back to where the histories agree (an old master's writes that no slave got
 *     are dropped: with sync replication none of them was acknowledged), adopt the history, follow.
 *
 * A broker that cannot reach the controller keeps its role; a master that comes back after a crash
 * starts fenced and learns its role before it takes a write.
 */
import { createLogger } from '../../common/logger.js';
import { ResponseCode } from '../../remoting/codes.js';
import { createRequest, createResponse, type RemotingCommand } from '../../remoting/command.js';
import type { RemotingClient } from '../../remoting/tcp-client.js';
import type { MessageStore } from '../../store/api.js';
import type { BrokerConfig, BrokerRole } from '../broker-config.js';
import {
  type EpochCache,
  type EpochCacheBody,
  GET_BROKER_EPOCH_CACHE,
  lastConsistentOffset,
  sanitizeEpochs,
} from './epoch-cache.js';
import type { HaService } from './ha-service.js';

const log = createLogger('failover');

/** CONTROLLER_HEARTBEAT (namesrv/replica-controller.ts ControllerRequestCode.Heartbeat). */
const CONTROLLER_HEARTBEAT = 1003;

export interface FailoverAgentOptions {
  config: BrokerConfig;
  client: RemotingClient;
  ha: HaService;
  store: () => MessageStore;
  epochs: EpochCache;
  /** This broker's remoting and HA addresses as put into routes. */
  addresses: () => { brokerAddr: string; haServerAddr: string };
  /** After every role change: start or stop master-only services, re-register with NameServers. */
  onRoleChanged: (role: BrokerRole, brokerId: number) => Promise<void>;
}

interface Assignment {
  epoch: number;
  masterAddr: string;
  masterHaAddr: string;
  brokerId: number;
}

export class FailoverAgent {
  /** The epoch this broker follows or leads (0 until it learned one). */
  private epoch: number;
  private assignedBrokerId: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private stopped = false;
  private lastProblem = '';

  constructor(private readonly options: FailoverAgentOptions) {
    this.epoch = options.epochs.lastEpoch;
  }

  /** The broker id to register with (undefined until the controller answered once). */
  get brokerId(): number | undefined {
    return this.assignedBrokerId;
  }

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.options.config.controllerHeartbeatIntervalMs);
    this.timer.unref();
    void this.tick();
  }

  async shutdown(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.ticking;
  }

  /** One heartbeat and whatever role change it asks for; never overlaps itself. */
  tick(): Promise<void> {
    if (this.ticking !== undefined || this.stopped) return this.ticking ?? Promise.resolve();
    this.ticking = this.heartbeatAndApply()
      .catch((err: unknown) => this.problem(`role change failed: ${err instanceof Error ? err.message : String(err)}`))
      .finally(() => {
        this.ticking = undefined;
      });
    return this.ticking;
  }

  private async heartbeatAndApply(): Promise<void> {
    const assignment = await this.heartbeat();
    if (assignment === undefined || this.stopped) return;
    await this.apply(assignment);
  }

  private async heartbeat(): Promise<Assignment | undefined> {
    const { config, client } = this.options;
    const { brokerAddr, haServerAddr } = this.options.addresses();
    const header = {
      clusterName: config.clusterName,
      brokerName: config.brokerName,
      brokerAddr,
      haServerAddr,
      replicaId: String(config.brokerId),
      maxOffset: String(this.options.store().stats().commitLogMaxOffset),
      epoch: String(this.epoch),
    };
    for (const address of config.controllerAddresses) {
      let response: RemotingCommand;
      try {
        response = await client.invoke(
          address,
          createRequest(CONTROLLER_HEARTBEAT, { ...header }),
          config.registerTimeoutMs,
        );
      } catch (err) {
        this.problem(`controller ${address} unreachable: ${err instanceof Error ? err.message : String(err)}`);
        continue;
      }
      if (response.code !== ResponseCode.Success) {
        this.problem(`controller ${address} answered ${response.code}: ${response.remark ?? ''}`);
        continue;
      }
      const fields = response.extFields;
      const epoch = Number(fields['epoch']);
      const brokerId = Number(fields['brokerId']);
      if (!Number.isSafeInteger(epoch) || !Number.isSafeInteger(brokerId)) {
        this.problem(`controller ${address} answered without epoch or brokerId`);
        continue;
      }
      return { epoch, brokerId, masterAddr: fields['masterAddr'] ?? '', masterHaAddr: fields['masterHaAddr'] ?? '' };
    }
    return undefined;
  }

  private async apply(assignment: Assignment): Promise<void> {
    const { ha } = this.options;
    const { brokerAddr } = this.options.addresses();
    if (assignment.masterAddr === '') return;
    if (assignment.masterAddr === brokerAddr) {
      if (!ha.isSlave && this.epoch === assignment.epoch) return;
      await this.becomeMaster(assignment);
      return;
    }
    if (ha.isSlave && ha.followedBrokerAddress === assignment.masterAddr && this.epoch === assignment.epoch) {
      if (assignment.masterHaAddr !== '') ha.updateFollowedHaAddress(assignment.masterHaAddr);
      if (this.assignedBrokerId !== assignment.brokerId) await this.changed('SLAVE', assignment.brokerId);
      return;
    }
    await this.follow(assignment);
  }

  private async becomeMaster(assignment: Assignment): Promise<void> {
    const { ha, epochs } = this.options;
    if (!ha.isSlave) {
      // Re-elected while master (the controller lost and regained it): same log, a new epoch.
      epochs.append(assignment.epoch, this.options.store().stats().commitLogMaxOffset);
      this.epoch = assignment.epoch;
      await this.changed(ha.role, 0);
      return;
    }
    // Whatever was replicated is final now; the new epoch's writes start after it.
    await ha.fence();
    const startOffset = this.options.store().stats().commitLogMaxOffset;
    epochs.append(assignment.epoch, startOffset);
    this.epoch = assignment.epoch;
    await ha.becomeMaster();
    log.warn({ epoch: assignment.epoch, startOffset, role: ha.role }, 'elected master; taking writes');
    await this.changed(ha.role, 0);
    // Report the HA port now listening at once, so slaves need not wait a heartbeat to connect.
    setImmediate(() => void this.tick());
  }

  private async follow(assignment: Assignment): Promise<void> {
    const { ha, epochs, store } = this.options;
    const wasMaster = !ha.isSlave;
    const master = await this.masterEpochs(assignment.masterAddr);
    if (master === undefined) return;
    // The elected master has not taken its role yet: its history does not show the epoch.
    if ((master.epochs[master.epochs.length - 1]?.epoch ?? 0) < assignment.epoch) return;
    await ha.fence();
    const stats = store().stats();
    const localMax = stats.commitLogMaxOffset;
    const consistent = lastConsistentOffset(epochs.all(), localMax, master.epochs, master.maxOffset);
    if (stats.commitLogMinOffset === localMax && localMax < master.minOffset) {
      // An empty log that would start before the master's oldest byte: start where the master's log does.
      await store().resetReplica(master.minOffset);
      log.warn({ startOffset: master.minOffset }, 'empty replica log restarted at the master log start');
    } else if (consistent < localMax) {
      if (consistent < stats.commitLogMinOffset) {
        throw new Error(
          `the log diverges from master ${assignment.masterAddr} at ${consistent}, before its oldest byte ${stats.commitLogMinOffset}; empty this broker's store to rejoin`,
        );
      }
      await store().truncateReplica(consistent);
      log.warn(
        { fromOffset: localMax, toOffset: consistent, master: assignment.masterAddr },
        'log cut back to agree with the new master',
      );
    }
    epochs.replaceWith(master.epochs);
    this.epoch = assignment.epoch;
    ha.follow(assignment.masterAddr, assignment.masterHaAddr);
    log.warn(
      { master: assignment.masterAddr, epoch: assignment.epoch, brokerId: assignment.brokerId, wasMaster },
      'following master',
    );
    await this.changed('SLAVE', assignment.brokerId);
  }

  private async masterEpochs(masterAddr: string): Promise<EpochCacheBody | undefined> {
    const { client, config } = this.options;
    try {
      const response = await client.invoke(
        masterAddr,
        createRequest(GET_BROKER_EPOCH_CACHE, {}),
        config.registerTimeoutMs,
      );
      if (response.code !== ResponseCode.Success || response.body === undefined) {
        this.problem(`master ${masterAddr} refused its epoch history: ${response.code} ${response.remark ?? ''}`);
        return undefined;
      }
      const parsed = JSON.parse(response.body.toString('utf8')) as Partial<Record<keyof EpochCacheBody, unknown>>;
      const epochs = sanitizeEpochs(parsed.epochs);
      const { minOffset, maxOffset } = parsed;
      if (epochs === undefined || !Number.isSafeInteger(minOffset) || !Number.isSafeInteger(maxOffset)) {
        this.problem(`master ${masterAddr} sent a malformed epoch history`);
        return undefined;
      }
      return { epochs, minOffset: minOffset as number, maxOffset: maxOffset as number };
    } catch (err) {
      this.problem(`master ${masterAddr} unreachable: ${err instanceof Error ? err.message : String(err)}`);
      return undefined;
    }
  }

  private async changed(role: BrokerRole, brokerId: number): Promise<void> {
    this.assignedBrokerId = brokerId;
    this.lastProblem = '';
    await this.options.onRoleChanged(role, brokerId);
  }

  /** Logs a problem once until it changes or a role change succeeds (heartbeats retry every interval). */
  private problem(reason: string): void {
    if (reason === this.lastProblem) return;
    this.lastProblem = reason;
    log.warn({ reason }, 'failover agent');
  }
}

/** GET_BROKER_EPOCH_CACHE, answered by every broker in controller mode. */
export function answerEpochCache(request: RemotingCommand, epochs: EpochCache, store: MessageStore): RemotingCommand {
  const stats = store.stats();
  const body: EpochCacheBody = {
    epochs: epochs.all(),
    minOffset: stats.commitLogMinOffset,
    maxOffset: stats.commitLogMaxOffset,
  };
  return createResponse(request, ResponseCode.Success, undefined, {}, Buffer.from(JSON.stringify(body)));
}
