/**
 * The aedes persistence of the MQTT front end. What must survive lives in the engine: retained
 * messages in the RB_MQTT_RETAINED table and persistent-session subscriptions in RB_MQTT_SESSIONS
 * (keyed-log.ts), offline queues as session consumer groups (sessions.ts). aedes' own offline
 * queue is therefore never used (`subscriptionsByTopic` answers nothing, `outgoingStream` is
 * empty); `outgoingUpdate` / `outgoingClearMessageId` serve only as the client-acknowledgement
 * signal for session deliveries. In-flight inbound QoS 2 packets and wills stay in memory: they
 * belong to one connection on one server (a will is published when that connection ends).
 */
import { Readable } from 'node:stream';
import type { AedesClientView } from './delivery-types.js';
import { isStoredInEngine } from './engine-mq.js';
import type { KeyedLog } from './keyed-log.js';
import { matchesFilter, MqttProperty, qosOfMessage, SHARE_PREFIX } from './mapping.js';
import { SESSION_BROKER_ID, type SessionManager } from './sessions.js';

interface ClientRef {
  id: string;
}

interface AnyPacket {
  properties?: unknown;
  cmd?: string;
  topic?: string;
  payload?: Buffer;
  qos?: number;
  retain?: boolean;
  messageId?: number;
  brokerId?: string;
  brokerCounter?: number;
  [name: string]: unknown;
}

/** An aedes persistence backed by the engine for retained messages and sessions. */
export class EnginePersistence {
  private readonly incoming = new Map<string, Map<number, AnyPacket>>();
  private readonly wills = new Map<string, AnyPacket>();
  private brokerId = '';

  constructor(
    private readonly retained: KeyedLog,
    private readonly sessions: SessionManager,
  ) {}

  async setup(broker: { id: string }): Promise<void> {
    this.brokerId = broker.id;
  }

  // Retained messages [MQTT-3.3.1-5..-11]

  async storeRetained(packet: {
    topic?: string;
    payload?: Buffer | string;
    qos?: number;
    properties?: unknown;
  }): Promise<void> {
    if (isStoredInEngine(packet)) return;
    const topic = packet.topic ?? '';
    const payload =
      typeof packet.payload === 'string' ? Buffer.from(packet.payload) : (packet.payload ?? Buffer.alloc(0));
    if (payload.length === 0 && this.retained.get(topic) === undefined) return;
    await this.retained.put(topic, payload, {
      [MqttProperty.Topic]: topic,
      [MqttProperty.Qos]: String(packet.qos ?? 0),
    });
  }

  createRetainedStreamCombi(patterns: string[]): Readable {
    const filters = patterns.filter((pattern) => !pattern.startsWith(SHARE_PREFIX));
    const packets: AnyPacket[] = [];
    for (const entry of this.retained.values()) {
      if (!filters.some((filter) => matchesFilter(filter, entry.key))) continue;
      packets.push({
        cmd: 'publish',
        topic: entry.key,
        payload: entry.body,
        qos: qosOfMessage(entry.properties),
        retain: true,
      });
    }
    return Readable.from(packets);
  }

  createRetainedStream(pattern: string): Readable {
    return this.createRetainedStreamCombi([pattern]);
  }

  // Subscriptions of persistent sessions

  async addSubscriptions(client: AedesClientView, subs: { topic: string; qos: number }[]): Promise<void> {
    await this.sessions.storeSubscriptions(client, subs);
  }

  async removeSubscriptions(client: ClientRef, topics: string[]): Promise<void> {
    await this.sessions.removeSubscriptions(client.id, topics);
  }

  async subscriptionsByClient(client: ClientRef): Promise<{ topic: string; qos: number }[]> {
    return this.sessions.stored(client.id).map((sub) => ({ topic: sub.topic, qos: sub.qos }));
  }

  async cleanSubscriptions(client: ClientRef): Promise<void> {
    await this.sessions.clean(client.id);
  }

  /** Offline delivery is the session groups' job, not aedes' enqueue-at-publish. */
  async subscriptionsByTopic(): Promise<never[]> {
    return [];
  }

  async countOffline(): Promise<{ subsCount: number; clientsCount: number }> {
    const ids = this.sessions.clientIds();
    const subsCount = ids.reduce((sum, id) => sum + this.sessions.stored(id).length, 0);
    return { subsCount, clientsCount: ids.length };
  }

  getClientList(topic: string): Readable {
    return Readable.from(
      this.sessions.clientIds().filter((id) => this.sessions.stored(id).some((sub) => sub.topic === topic)),
    );
  }

  // Outgoing: only the acknowledgement signal of session deliveries

  async outgoingEnqueue(): Promise<void> {}

  async outgoingEnqueueCombi(): Promise<void> {}

  async outgoingUpdate(client: ClientRef, packet: AnyPacket): Promise<void> {
    if (packet.messageId === undefined) return;
    if (packet.cmd === 'publish' && packet.brokerId === SESSION_BROKER_ID && packet.brokerCounter !== undefined) {
      this.sessions.bindMessageId(client.id, packet.messageId, packet.brokerCounter);
    } else if (packet.cmd === 'pubrel') {
      // PUBREC: the client owns the QoS 2 message now [MQTT-4.3.3].
      this.sessions.acked(client.id, packet.messageId);
    }
  }

  async outgoingClearMessageId(client: ClientRef, packet: AnyPacket): Promise<undefined> {
    if (packet.messageId !== undefined) this.sessions.acked(client.id, packet.messageId);
    return undefined;
  }

  outgoingStream(): Readable {
    return Readable.from([]);
  }

  // Inbound QoS 2 in flight (per connection)

  async incomingStorePacket(client: ClientRef, packet: AnyPacket): Promise<void> {
    let store = this.incoming.get(client.id);
    if (store === undefined) {
      store = new Map();
      this.incoming.set(client.id, store);
    }
    store.set(packet.messageId ?? 0, { ...packet });
  }

  async incomingGetPacket(client: ClientRef, packet: AnyPacket): Promise<AnyPacket> {
    const found = this.incoming.get(client.id)?.get(packet.messageId ?? 0);
    if (found === undefined) throw new Error('no such packet');
    return found;
  }

  async incomingDelPacket(client: ClientRef, packet: AnyPacket): Promise<void> {
    const store = this.incoming.get(client.id);
    if (store?.delete(packet.messageId ?? 0) !== true) throw new Error('no such packet');
    if (store.size === 0) this.incoming.delete(client.id);
  }

  async cleanIncoming(client: ClientRef): Promise<void> {
    this.incoming.delete(client.id);
  }

  // Wills

  async putWill(client: ClientRef, packet: AnyPacket): Promise<void> {
    packet.brokerId = this.brokerId;
    packet['clientId'] = client.id;
    this.wills.set(client.id, packet);
  }

  async getWill(client: ClientRef): Promise<AnyPacket | undefined> {
    return this.wills.get(client.id);
  }

  async delWill(client: ClientRef): Promise<AnyPacket | undefined> {
    const will = this.wills.get(client.id);
    this.wills.delete(client.id);
    return will;
  }

  streamWill(brokers: Record<string, number> = {}): Readable {
    return Readable.from([...this.wills.values()].filter((will) => brokers[will.brokerId ?? ''] === undefined));
  }

  async destroy(): Promise<void> {
    this.incoming.clear();
    this.wills.clear();
  }
}
