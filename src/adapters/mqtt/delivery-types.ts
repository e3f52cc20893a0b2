/**
 * The small slice of aedes' runtime objects the delivery paths touch: a client (id, clean flag,
 * its subscriptions) and the per-subscription deliver function aedes hands to `mq.on`.
 */
import type { Qos } from './mapping.js';

/** What aedes' per-subscription function accepts. */
export interface DeliveryPacket {
  cmd: 'publish';
  topic: string;
  payload: Buffer;
  qos: Qos;
  retain: boolean;
  dup: boolean;
  /** Set by the session path: its own dedupe domain, with brokerCounter as the delivery token. */
  brokerId?: string;
  brokerCounter?: number;
  clientId?: string;
}

/** aedes' deliver function for one subscription; the callback fires once the packet is written (or dropped). */
export type DeliverFn = (packet: DeliveryPacket, done: (err?: Error | null) => void) => void;

/** The parts of an aedes Client the front end reads. */
export interface AedesClientView {
  readonly id: string;
  readonly clean: boolean;
  readonly closed: boolean;
  readonly subscriptions: Record<string, { qos: number; func: DeliverFn } | undefined>;
}

export function minQos(a: number, b: number): Qos {
  const q = Math.min(a, b);
  return q <= 0 ? 0 : q === 1 ? 1 : 2;
}
