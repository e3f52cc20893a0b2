/**
 * Automatic failover for master/slave broker groups: the job RocketMQ 5 gives its controller, run
 * here as a role of one NameServer (`rocketbridge namesrv --controller`).
 *
 * Brokers in controller mode send CONTROLLER_HEARTBEAT every controllerHeartbeatIntervalMs with their
 * address, configured id, CommitLog max offset and the epoch they follow; the answer tells each one
 * its role: the master's address for the group and the epoch, and the broker id to register with the
 * NameServers (0 for the master). The controller elects a master when a group has none or its master
 * is gone (its connection closed, or silent for heartbeatTimeoutMs):
 *   - at bootstrap (epoch 0) only the configured master (broker id 0) is elected, or after a grace
 *     period anyone, so that a slave starting first does not win with an empty log;
 *   - later, among live members that follow the current epoch, the one with the largest CommitLog
 *     offset (with sync replication it holds every acknowledged message), ties to the lower id.
 * Each election increments the group's epoch; brokers fence on it: an old master that comes back
 * learns the new master and epoch, cuts its log back to where the epochs diverge and follows as a
 * slave (broker/ha/failover-agent.ts). Epochs and masters are persisted so a controller restart does
 * not reuse an epoch.
 */
import { join } from 'node:path';
import { readJsonFile, writeFileAtomic } from '../common/atomic-file.js';
import type { Logger } from '../common/logger.js';
import type { ProcessorRegistry, RemotingChannel, RequestProcessor } from '../remoting/channel.js';
import { ResponseCode } from '../remoting/codes.js';
import { createResponse } from '../remoting/command.js';
import { requiredAddress, requiredName } from './processors.js';
import { answerHeaderErrors, HeaderFieldError, optionalString, requiredLong } from '../remoting/header-fields.js';

/** Request codes of the controller role (in RocketMQ 5's controller range; bodies are ours). */
export const ControllerRequestCode = {
  /** Broker -> controller: liveness, offset and epoch; the answer assigns the role. */
  Heartbeat: 1003,
  /** Admin -> controller: every group's epoch, master and members (JSON body). */
  GetReplicaInfo: 1004,
} as const;

export interface ReplicaControllerOptions {
  /** Where controller.json keeps epochs and masters. */
  dataDir: string;
  /** A master silent this long is replaced (its closed connection replaces it at once). */
  heartbeatTimeoutMs: number;
  log: Logger;
}

export interface ReplicaMember {
  brokerAddr: string;
  haServerAddr: string;
  /** The broker id it was configured with: identifies it within the group. */
  replicaId: number;
  maxOffset: number;
  /** The epoch the broker follows (it learned it from this controller). */
  epoch: number;
  lastSeenMs: number;
  channel: RemotingChannel | undefined;
}

export interface ReplicaGroup {
  clusterName: string;
  brokerName: string;
  epoch: number;
  masterAddr: string | undefined;
  /** When the group was first heard of (bootstrap grace). */
  firstSeenMs: number;
  members: Map<string, ReplicaMember>;
}

/** What a broker is told to be. */
export interface RoleAssignment {
  epoch: number;
  /** '' while the group has no master. */
  masterAddr: string;
  masterHaAddr: string;
  /** The id to register with the NameServers: 0 for the master. */
  brokerId: number;
}

interface PersistedGroup {
  clusterName: string;
  brokerName: string;
  epoch: number;
  masterAddr?: string;
}

export class ReplicaController {
  private readonly groups = new Map<string, ReplicaGroup>();
  private readonly file: string;
  private scanTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: ReplicaControllerOptions) {
    this.file = join(options.dataDir, 'controller.json');
    const persisted = readJsonFile<{ groups?: PersistedGroup[] }>(this.file);
    for (const group of persisted?.groups ?? []) {
      this.groups.set(groupKey(group.clusterName, group.brokerName), {
        clusterName: group.clusterName,
        brokerName: group.brokerName,
        epoch: group.epoch,
        masterAddr: group.masterAddr,
        firstSeenMs: Date.now(),
        members: new Map(),
      });
    }
  }

  start(): void {
    const scanMs = Math.max(10, Math.floor(this.options.heartbeatTimeoutMs / 4));
    this.scanTimer = setInterval(() => this.scan(), scanMs);
    this.scanTimer.unref();
  }

  shutdown(): void {
    clearInterval(this.scanTimer);
  }

  registerProcessors(registry: ProcessorRegistry): void {
    registry.register(ControllerRequestCode.Heartbeat, answerHeaderErrors(this.heartbeatProcessor()));
    registry.register(ControllerRequestCode.GetReplicaInfo, (request) =>
      createResponse(request, ResponseCode.Success, undefined, {}, Buffer.from(JSON.stringify(this.describe()))),
    );
  }

  /** Records a heartbeat, elects if needed, and says what the broker is. */
  heartbeat(
    identity: { clusterName: string; brokerName: string },
    member: Omit<ReplicaMember, 'lastSeenMs' | 'channel'>,
    channel: RemotingChannel | undefined,
    nowMs = Date.now(),
  ): RoleAssignment {
    const key = groupKey(identity.clusterName, identity.brokerName);
    let group = this.groups.get(key);
    if (group === undefined) {
      group = { ...identity, epoch: 0, masterAddr: undefined, firstSeenMs: nowMs, members: new Map() };
      this.groups.set(key, group);
    }
    // A member is its address: a broker restarted on the same address replaces its old entry.
    const known = group.members.get(member.brokerAddr);
    if (known === undefined) {
      this.options.log.info({ group: key, ...member }, 'replica joined the controller');
    }
    group.members.set(member.brokerAddr, { ...member, lastSeenMs: nowMs, channel });
    if (channel !== undefined && known?.channel !== channel) channel.onClose(() => this.onChannelClosed(channel));
    this.electIfNeeded(group, nowMs);
    return this.assignmentOf(group, member.brokerAddr);
  }

  /** Groups as admin tools show them. */
  describe(nowMs = Date.now()): {
    groups: Array<{
      clusterName: string;
      brokerName: string;
      epoch: number;
      masterAddr: string;
      members: Array<{
        brokerAddr: string;
        replicaId: number;
        maxOffset: number;
        epoch: number;
        alive: boolean;
        silentMs: number;
      }>;
    }>;
  } {
    return {
      groups: [...this.groups.values()].map((group) => ({
        clusterName: group.clusterName,
        brokerName: group.brokerName,
        epoch: group.epoch,
        masterAddr: group.masterAddr ?? '',
        members: [...group.members.values()].map((member) => ({
          brokerAddr: member.brokerAddr,
          replicaId: member.replicaId,
          maxOffset: member.maxOffset,
          epoch: member.epoch,
          alive: this.isAlive(member, nowMs),
          silentMs: nowMs - member.lastSeenMs,
        })),
      })),
    };
  }

  /** Looks for masters gone silent. */
  scan(nowMs = Date.now()): void {
    for (const group of this.groups.values()) this.electIfNeeded(group, nowMs);
  }

  private onChannelClosed(channel: RemotingChannel): void {
    const nowMs = Date.now();
    for (const group of this.groups.values()) {
      let lost = false;
      for (const member of group.members.values()) {
        if (member.channel !== channel) continue;
        member.channel = undefined;
        member.lastSeenMs = 0;
        lost = true;
        this.options.log.warn({ brokerName: group.brokerName, brokerAddr: member.brokerAddr }, 'replica disconnected');
      }
      if (lost) this.electIfNeeded(group, nowMs);
    }
  }

  private isAlive(member: ReplicaMember, nowMs: number): boolean {
    return nowMs - member.lastSeenMs <= this.options.heartbeatTimeoutMs;
  }

  private electIfNeeded(group: ReplicaGroup, nowMs: number): void {
    const master = group.masterAddr === undefined ? undefined : group.members.get(group.masterAddr);
    if (master !== undefined && this.isAlive(master, nowMs)) return;
    // A master this controller has not heard from since it (re)started: give it one timeout to report.
    if (
      master === undefined &&
      group.masterAddr !== undefined &&
      nowMs - group.firstSeenMs < this.options.heartbeatTimeoutMs
    ) {
      return;
    }
    const live = [...group.members.values()].filter((member) => this.isAlive(member, nowMs));
    let candidates: ReplicaMember[];
    if (group.epoch === 0) {
      const configuredMaster = live.filter((member) => member.replicaId === 0);
      const graceOver = nowMs - group.firstSeenMs >= 2 * this.options.heartbeatTimeoutMs;
      candidates = configuredMaster.length > 0 || !graceOver ? configuredMaster : live;
    } else {
      candidates = live.filter((member) => member.epoch === group.epoch);
    }
    const best = candidates.sort((a, b) => b.maxOffset - a.maxOffset || a.replicaId - b.replicaId)[0];
    if (best === undefined) {
      if (group.masterAddr !== undefined) {
        this.options.log.error(
          { brokerName: group.brokerName, oldMaster: group.masterAddr, epoch: group.epoch },
          'master lost and no replica of the current epoch is alive to take over',
        );
        group.masterAddr = undefined;
        this.persist();
      }
      return;
    }
    const previous = group.masterAddr;
    group.epoch += 1;
    group.masterAddr = best.brokerAddr;
    this.persist();
    this.options.log.warn(
      {
        brokerName: group.brokerName,
        epoch: group.epoch,
        master: best.brokerAddr,
        previous,
        maxOffset: best.maxOffset,
      },
      'elected a master',
    );
  }

  private assignmentOf(group: ReplicaGroup, brokerAddr: string): RoleAssignment {
    const master = group.masterAddr === undefined ? undefined : group.members.get(group.masterAddr);
    const replicaId = group.members.get(brokerAddr)?.replicaId ?? 1;
    // The configured master serving as a slave takes the id the promoted slave left free.
    const slaveId = replicaId !== 0 ? replicaId : master !== undefined && master.replicaId !== 0 ? master.replicaId : 1;
    return {
      epoch: group.epoch,
      masterAddr: group.masterAddr ?? '',
      masterHaAddr: master?.haServerAddr ?? '',
      brokerId: group.masterAddr === brokerAddr ? 0 : slaveId,
    };
  }

  private persist(): void {
    const groups: PersistedGroup[] = [...this.groups.values()].map((group) => ({
      clusterName: group.clusterName,
      brokerName: group.brokerName,
      epoch: group.epoch,
      ...(group.masterAddr !== undefined ? { masterAddr: group.masterAddr } : {}),
    }));
    try {
      writeFileAtomic(this.file, JSON.stringify({ groups }, null, 2));
    } catch (err) {
      this.options.log.error({ err, file: this.file }, 'cannot persist controller state');
    }
  }

  private heartbeatProcessor(): RequestProcessor {
    return (request, channel) => {
      const clusterName = requiredName(request, 'clusterName');
      const brokerName = requiredName(request, 'brokerName');
      const brokerAddr = requiredAddress(request, 'brokerAddr');
      const haServerAddr = optionalString(request, 'haServerAddr') ?? '';
      const replicaId = requiredLong(request, 'replicaId');
      const maxOffset = requiredLong(request, 'maxOffset');
      const epoch = requiredLong(request, 'epoch');
      if (replicaId < 0 || maxOffset < 0 || epoch < 0) {
        throw new HeaderFieldError('replicaId', 'replicaId, maxOffset and epoch must not be negative');
      }
      const assignment = this.heartbeat(
        { clusterName, brokerName },
        { brokerAddr, haServerAddr, replicaId, maxOffset, epoch },
        channel,
      );
      return createResponse(request, ResponseCode.Success, undefined, {
        epoch: String(assignment.epoch),
        masterAddr: assignment.masterAddr,
        masterHaAddr: assignment.masterHaAddr,
        brokerId: String(assignment.brokerId),
      });
    };
  }
}

function groupKey(clusterName: string, brokerName: string): string {
  return `${clusterName}/${brokerName}`;
}
