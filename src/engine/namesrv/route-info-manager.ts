/**
 * The NameServer's route table (RocketMQ RouteInfoManager): which brokers exist, in which clusters,
 * which topics each master serves, and when each broker was last heard from. Pure bookkeeping over
 * in-memory maps; requests and timers belong to processors.ts and name-server.ts.
 *
 * Semantics kept from RocketMQ 4.x:
 * - A topic's queues come from master registrations; a master's topic set is refreshed when its
 *   dataVersion changes or on its first registration (a slave's topic configs are ignored).
 * - A broker address that re-registers under another brokerId replaces its old entry (slave -> master).
 * - A broker is removed with its routes when its connection closes or it is silent for brokerExpiryMs;
 *   a broker name disappears, and its queues with it, only when its last address goes.
 * - A slave's registration answers the master's address and HA address.
 */
import type { Logger } from '../common/logger.js';
import type { RemotingChannel } from '../remoting/channel.js';
import { CloseReason } from '../remoting/close-reason.js';
import {
  MASTER_ID,
  type BrokerData,
  type ClusterInfo,
  type DataVersion,
  type QueueData,
  type TopicConfig,
  type TopicRouteData,
  setOwn,
} from '../remoting/route-data.js';

/** RocketMQ's BROKER_CHANNEL_EXPIRED_TIME (2 minutes). */
export const DEFAULT_BROKER_EXPIRY_MS = 120_000;

export interface BrokerRegistration {
  clusterName: string;
  brokerAddr: string;
  brokerName: string;
  brokerId: number;
  haServerAddr: string;
  topicConfigs: TopicConfig[];
  dataVersion: DataVersion;
  filterServerList: string[];
  /** The connection the registration came on; its close unregisters the broker at once. */
  channel?: RemotingChannel;
}

export interface RegisterBrokerResult {
  /** For a slave: the master's HA address. */
  haServerAddr?: string;
  /** For a slave: the master's address. */
  masterAddr?: string;
}

interface BrokerLiveInfo {
  lastUpdateMs: number;
  dataVersion: DataVersion;
  channel: RemotingChannel | undefined;
  haServerAddr: string;
}

interface BrokerEntry {
  cluster: string;
  brokerName: string;
  /** brokerId -> "ip:port" */
  brokerAddrs: Map<number, string>;
}

function toBrokerData(entry: BrokerEntry): BrokerData {
  const brokerAddrs: Record<string, string> = {};
  for (const [id, addr] of [...entry.brokerAddrs].sort((a, b) => a[0] - b[0])) brokerAddrs[String(id)] = addr;
  return { cluster: entry.cluster, brokerName: entry.brokerName, brokerAddrs };
}

function sameQueueData(a: QueueData, b: QueueData): boolean {
  return (
    a.readQueueNums === b.readQueueNums &&
    a.writeQueueNums === b.writeQueueNums &&
    a.perm === b.perm &&
    a.topicSysFlag === b.topicSysFlag
  );
}

/** The in-memory route table of one NameServer. */
export class RouteInfoManager {
  private readonly brokerExpiryMs: number;
  private readonly log: Logger;
  /** topic -> brokerName -> queue data */
  private readonly topicQueueTable = new Map<string, Map<string, QueueData>>();
  private readonly brokerAddrTable = new Map<string, BrokerEntry>();
  /** cluster -> broker names */
  private readonly clusterAddrTable = new Map<string, Set<string>>();
  /** brokerAddr -> liveness */
  private readonly brokerLiveTable = new Map<string, BrokerLiveInfo>();
  private readonly filterServerTable = new Map<string, string[]>();
  private readonly watchedChannels = new WeakSet<RemotingChannel>();

  constructor(options: { brokerExpiryMs?: number; log: Logger }) {
    this.brokerExpiryMs = options.brokerExpiryMs ?? DEFAULT_BROKER_EXPIRY_MS;
    this.log = options.log;
  }

  /** Records a broker's registration (also its heartbeat) and returns what a slave needs. */
  registerBroker(registration: BrokerRegistration, nowMs = Date.now()): RegisterBrokerResult {
    const { clusterName, brokerAddr, brokerName, brokerId } = registration;
    let names = this.clusterAddrTable.get(clusterName);
    if (names === undefined) {
      names = new Set();
      this.clusterAddrTable.set(clusterName, names);
    }
    names.add(brokerName);

    let entry = this.brokerAddrTable.get(brokerName);
    if (entry === undefined) {
      entry = { cluster: clusterName, brokerName, brokerAddrs: new Map() };
      this.brokerAddrTable.set(brokerName, entry);
    }
    // The same address under another id is a slave switched to master (or back): drop the old id.
    for (const [id, addr] of entry.brokerAddrs) {
      if (addr === brokerAddr && id !== brokerId) entry.brokerAddrs.delete(id);
    }
    const registerFirst = entry.brokerAddrs.get(brokerId) === undefined;
    entry.brokerAddrs.set(brokerId, brokerAddr);

    const previous = this.brokerLiveTable.get(brokerAddr);
    if (brokerId === MASTER_ID) {
      const changed =
        previous === undefined ||
        previous.dataVersion.timestamp !== registration.dataVersion.timestamp ||
        previous.dataVersion.counter !== registration.dataVersion.counter;
      if (changed || registerFirst) {
        for (const config of registration.topicConfigs) this.updateQueueData(brokerName, config);
      }
    }

    this.brokerLiveTable.set(brokerAddr, {
      lastUpdateMs: nowMs,
      dataVersion: { ...registration.dataVersion },
      channel: registration.channel,
      haServerAddr: registration.haServerAddr,
    });
    if (previous === undefined) {
      this.log.info({ clusterName, brokerName, brokerId, brokerAddr }, 'new broker registered');
    }
    if (registration.filterServerList.length > 0)
      this.filterServerTable.set(brokerAddr, [...registration.filterServerList]);
    else this.filterServerTable.delete(brokerAddr);
    if (registration.channel !== undefined) this.watchChannel(registration.channel);

    const result: RegisterBrokerResult = {};
    if (brokerId !== MASTER_ID) {
      const masterAddr = entry.brokerAddrs.get(MASTER_ID);
      if (masterAddr !== undefined) {
        const masterLive = this.brokerLiveTable.get(masterAddr);
        if (masterLive !== undefined) {
          result.haServerAddr = masterLive.haServerAddr;
          result.masterAddr = masterAddr;
        }
      }
    }
    return result;
  }

  /** UNREGISTER_BROKER: removes one broker id; the name and its queues go with its last address. */
  unregisterBroker(clusterName: string, brokerAddr: string, brokerName: string, brokerId: number): void {
    this.brokerLiveTable.delete(brokerAddr);
    this.filterServerTable.delete(brokerAddr);
    const entry = this.brokerAddrTable.get(brokerName);
    let removeBrokerName = false;
    if (entry !== undefined) {
      entry.brokerAddrs.delete(brokerId);
      if (entry.brokerAddrs.size === 0) {
        this.brokerAddrTable.delete(brokerName);
        removeBrokerName = true;
      }
    }
    this.log.info({ clusterName, brokerName, brokerId, brokerAddr }, 'broker unregistered');
    if (removeBrokerName) {
      const names = this.clusterAddrTable.get(clusterName);
      names?.delete(brokerName);
      if (names !== undefined && names.size === 0) this.clusterAddrTable.delete(clusterName);
      this.removeTopicsOfBroker(brokerName);
    }
  }

  /** The route of a topic, or undefined when no live broker serves it. */
  pickupTopicRouteData(topic: string): TopicRouteData | undefined {
    const queues = this.topicQueueTable.get(topic);
    if (queues === undefined || queues.size === 0) return undefined;
    const route: TopicRouteData = { queueDatas: [], brokerDatas: [], filterServerTable: {} };
    for (const brokerName of [...queues.keys()].sort()) {
      route.queueDatas.push({ ...(queues.get(brokerName) as QueueData) });
      const entry = this.brokerAddrTable.get(brokerName);
      if (entry === undefined) continue;
      route.brokerDatas.push(toBrokerData(entry));
      for (const addr of entry.brokerAddrs.values()) {
        const filters = this.filterServerTable.get(addr);
        if (filters !== undefined) route.filterServerTable[addr] = [...filters];
      }
    }
    return route.brokerDatas.length > 0 ? route : undefined;
  }

  getClusterInfo(): ClusterInfo {
    const info: ClusterInfo = { brokerAddrTable: {}, clusterAddrTable: {} };
    for (const [name, entry] of [...this.brokerAddrTable].sort((a, b) => a[0].localeCompare(b[0]))) {
      setOwn(info.brokerAddrTable, name, toBrokerData(entry));
    }
    for (const [cluster, names] of this.clusterAddrTable) setOwn(info.clusterAddrTable, cluster, [...names].sort());
    return info;
  }

  getTopicList(): string[] {
    return [...this.topicQueueTable.keys()].sort();
  }

  /**
   * DELETE_TOPIC_IN_NAMESRV: forgets a topic, or only its queues on the brokers of `clusterName`.
   * Returns whether anything was removed.
   */
  deleteTopic(topic: string, clusterName?: string): boolean {
    const queues = this.topicQueueTable.get(topic);
    if (queues === undefined) return false;
    if (clusterName === undefined || clusterName === '') {
      this.topicQueueTable.delete(topic);
      return true;
    }
    const names = this.clusterAddrTable.get(clusterName);
    let removed = false;
    for (const name of names ?? []) removed = queues.delete(name) || removed;
    if (queues.size === 0) this.topicQueueTable.delete(topic);
    return removed;
  }

  /** Removes brokers not heard from within brokerExpiryMs and closes their connections. */
  scanNotActiveBrokers(nowMs = Date.now()): string[] {
    const expired: string[] = [];
    for (const [addr, live] of this.brokerLiveTable) {
      if (live.lastUpdateMs + this.brokerExpiryMs >= nowMs) continue;
      expired.push(addr);
      this.log.warn({ brokerAddr: addr, silentMs: nowMs - live.lastUpdateMs }, 'broker expired; removing its routes');
      this.brokerLiveTable.delete(addr);
      this.removeBrokerAddr(addr);
      live.channel?.close(CloseReason.BrokerExpired);
    }
    return expired;
  }

  /** A connection closed: every broker that registered on it is removed at once. */
  onChannelClosed(channel: RemotingChannel): void {
    for (const [addr, live] of this.brokerLiveTable) {
      if (live.channel !== channel) continue;
      this.log.info({ brokerAddr: addr, channel: channel.id }, 'broker connection closed; removing its routes');
      this.brokerLiveTable.delete(addr);
      this.removeBrokerAddr(addr);
    }
  }

  /** Addresses of live brokers (for tests and monitoring). */
  liveBrokerAddrs(): string[] {
    return [...this.brokerLiveTable.keys()].sort();
  }

  private watchChannel(channel: RemotingChannel): void {
    if (this.watchedChannels.has(channel)) return;
    this.watchedChannels.add(channel);
    channel.onClose(() => this.onChannelClosed(channel));
  }

  private updateQueueData(brokerName: string, config: TopicConfig): void {
    const queueData: QueueData = {
      brokerName,
      readQueueNums: config.readQueueNums,
      writeQueueNums: config.writeQueueNums,
      perm: config.perm,
      topicSysFlag: config.topicSysFlag,
    };
    let queues = this.topicQueueTable.get(config.topicName);
    if (queues === undefined) {
      queues = new Map();
      this.topicQueueTable.set(config.topicName, queues);
    }
    const existing = queues.get(brokerName);
    if (existing === undefined || !sameQueueData(existing, queueData)) {
      this.log.debug(
        { topic: config.topicName, queueData },
        existing === undefined ? 'new topic queues' : 'topic queues changed',
      );
      queues.set(brokerName, queueData);
    }
  }

  /** RocketMQ onChannelDestroy for one address (live and filter entries already dropped or not). */
  private removeBrokerAddr(brokerAddr: string): void {
    this.filterServerTable.delete(brokerAddr);
    for (const [brokerName, entry] of this.brokerAddrTable) {
      let found = false;
      for (const [id, addr] of entry.brokerAddrs) {
        if (addr === brokerAddr) {
          entry.brokerAddrs.delete(id);
          found = true;
        }
      }
      if (!found || entry.brokerAddrs.size > 0) continue;
      this.brokerAddrTable.delete(brokerName);
      const names = this.clusterAddrTable.get(entry.cluster);
      names?.delete(brokerName);
      if (names !== undefined && names.size === 0) this.clusterAddrTable.delete(entry.cluster);
      this.removeTopicsOfBroker(brokerName);
    }
  }

  private removeTopicsOfBroker(brokerName: string): void {
    for (const [topic, queues] of this.topicQueueTable) {
      if (queues.delete(brokerName) && queues.size === 0) {
        this.topicQueueTable.delete(topic);
        this.log.info({ topic }, 'topic has no brokers left; route removed');
      }
    }
  }
}
