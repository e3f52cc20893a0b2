/**
 * What clients derive from topic routes (TopicRouteData, whose JSON form remoting/route-data.ts owns):
 * the write queues a producer picks from, the read queues a consumer is allocated, and broker
 * addresses by name.
 */
import { Perm, type TopicRouteData } from '../remoting/route-data.js';

export { decodeTopicRouteData, Perm } from '../remoting/route-data.js';
export type { BrokerData, QueueData, TopicRouteData } from '../remoting/route-data.js';

/** A queue of a topic on one broker. */
export interface MessageQueue {
  topic: string;
  brokerName: string;
  queueId: number;
}

export function queueKey(queue: MessageQueue): string {
  return `${queue.topic}@${queue.brokerName}@${queue.queueId}`;
}

/** RocketMQ MessageQueue.compareTo: topic, broker name, queue id. */
export function compareQueues(a: MessageQueue, b: MessageQueue): number {
  if (a.topic !== b.topic) return a.topic < b.topic ? -1 : 1;
  if (a.brokerName !== b.brokerName) return a.brokerName < b.brokerName ? -1 : 1;
  return a.queueId - b.queueId;
}

export function masterAddressOf(route: TopicRouteData, brokerName: string): string | undefined {
  return route.brokerDatas.find((broker) => broker.brokerName === brokerName)?.brokerAddrs['0'];
}

/** The queues a producer may write to: brokers sorted by name, each with a master (TopicPublishInfo). */
export function writeQueuesOf(topic: string, route: TopicRouteData): MessageQueue[] {
  const queues: MessageQueue[] = [];
  const sorted = [...route.queueDatas].sort((a, b) =>
    a.brokerName < b.brokerName ? -1 : a.brokerName > b.brokerName ? 1 : 0,
  );
  for (const data of sorted) {
    if ((data.perm & Perm.Write) === 0) continue;
    if (masterAddressOf(route, data.brokerName) === undefined) continue;
    for (let queueId = 0; queueId < data.writeQueueNums; queueId++) {
      queues.push({ topic, brokerName: data.brokerName, queueId });
    }
  }
  return queues;
}

/** writeQueuesOf per route object and topic: a producer needs them on every send, routes change rarely. */
const writeQueuesCache = new WeakMap<TopicRouteData, Map<string, readonly MessageQueue[]>>();

/**
 * writeQueuesOf, computed once per route object (a route is replaced, never changed, when it is
 * refreshed). The array is shared: callers must not modify it.
 */
export function cachedWriteQueuesOf(topic: string, route: TopicRouteData): readonly MessageQueue[] {
  let byTopic = writeQueuesCache.get(route);
  if (byTopic === undefined) {
    byTopic = new Map();
    writeQueuesCache.set(route, byTopic);
  }
  let queues = byTopic.get(topic);
  if (queues === undefined) {
    queues = writeQueuesOf(topic, route);
    byTopic.set(topic, queues);
  }
  return queues;
}

/** The queues a consumer may read (subscribe info), sorted. */
export function readQueuesOf(topic: string, route: TopicRouteData): MessageQueue[] {
  const queues: MessageQueue[] = [];
  for (const data of route.queueDatas) {
    if ((data.perm & Perm.Read) === 0) continue;
    for (let queueId = 0; queueId < data.readQueueNums; queueId++) {
      queues.push({ topic, brokerName: data.brokerName, queueId });
    }
  }
  return queues.sort(compareQueues);
}

/** brokerId -> address of one broker name, as BrokerData.brokerAddrs holds them ("0" is the master). */
export type BrokerAddrs = Readonly<Record<string, string>>;

/** The slave with the smallest broker id, for when the master is gone. */
function firstSlaveOf(addrs: BrokerAddrs): { address: string; brokerId: number } | undefined {
  let best: { address: string; brokerId: number } | undefined;
  for (const [id, address] of Object.entries(addrs)) {
    const brokerId = Number(id);
    if (!Number.isInteger(brokerId) || brokerId === 0) continue;
    if (best === undefined || brokerId < best.brokerId) best = { address, brokerId };
  }
  return best;
}

/**
 * RocketMQ findBrokerAddressInSubscribe: the address of `brokerId` when the route has it, else the
 * master, else any slave (a broker name whose master is down is still read from its slave).
 */
export function subscribeAddressOf(
  addrs: BrokerAddrs,
  brokerId: number,
): { address: string; brokerId: number } | undefined {
  const wanted = addrs[String(brokerId)];
  if (wanted !== undefined) return { address: wanted, brokerId };
  const master = addrs['0'];
  if (master !== undefined) return { address: master, brokerId: 0 };
  return firstSlaveOf(addrs);
}

/** RocketMQ findBrokerAddressInAdmin: the master, else any slave (offset queries and commits). */
export function adminAddressOf(addrs: BrokerAddrs): string | undefined {
  return addrs['0'] ?? firstSlaveOf(addrs)?.address;
}
