/**
 * The AMQP topology of the one virtual host: exchanges, queues and bindings (queue and
 * exchange-to-exchange), the built-in exchanges, and routing (which queues a publish reaches).
 * Pure in-memory state and rules; persistence of the durable part is definitions-log.ts, the
 * protocol checks (passive, equivalence, access) live in vhost.ts.
 */
import type { FieldTable, FieldValue } from './field-table.js';
import { FieldTyped } from './field-table.js';

export type ExchangeType = 'direct' | 'topic' | 'fanout' | 'headers';
export const EXCHANGE_TYPES: ReadonlySet<string> = new Set(['direct', 'topic', 'fanout', 'headers']);

export interface ExchangeDef {
  name: string;
  type: ExchangeType;
  durable: boolean;
  autoDelete: boolean;
  internal: boolean;
  arguments: FieldTable;
}

export interface QueueDef {
  name: string;
  durable: boolean;
  exclusive: boolean;
  autoDelete: boolean;
  arguments: FieldTable;
}

export interface BindingDef {
  /** The exchange messages come from. */
  source: string;
  /** A queue name, or an exchange name for exchange-to-exchange bindings. */
  destination: string;
  destinationKind: 'queue' | 'exchange';
  routingKey: string;
  arguments: FieldTable;
}

/** The default exchange and the `amq.` names: the vhost's own, never declared by clients nor stored. */
export function isReservedExchangeName(name: string): boolean {
  return name === '' || name.startsWith('amq.');
}

/** Exchanges every vhost has (RabbitMQ's defaults); they cannot be deleted or redeclared differently. */
export const BUILT_IN_EXCHANGES: readonly ExchangeDef[] = [
  { name: '', type: 'direct', durable: true, autoDelete: false, internal: false, arguments: {} },
  { name: 'amq.direct', type: 'direct', durable: true, autoDelete: false, internal: false, arguments: {} },
  { name: 'amq.topic', type: 'topic', durable: true, autoDelete: false, internal: false, arguments: {} },
  { name: 'amq.fanout', type: 'fanout', durable: true, autoDelete: false, internal: false, arguments: {} },
  { name: 'amq.headers', type: 'headers', durable: true, autoDelete: false, internal: false, arguments: {} },
  { name: 'amq.match', type: 'headers', durable: true, autoDelete: false, internal: false, arguments: {} },
];

/** Exchange-to-exchange chains are followed at most this deep (cycles are cut by a visited set too). */
const MAX_ROUTING_HOPS = 16;

export function bindingKey(binding: BindingDef): string {
  return JSON.stringify([
    binding.source,
    binding.destinationKind,
    binding.destination,
    binding.routingKey,
    stableArguments(binding.arguments),
  ]);
}

function stableArguments(table: FieldTable): [string, string][] {
  return Object.keys(table)
    .sort()
    .map((key) => [key, comparable(table[key])]);
}

/** A field value as a string for comparisons (headers matching, binding identity). */
export function comparable(value: FieldValue): string {
  if (value instanceof FieldTyped) return String(value.value);
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  if (value instanceof Uint8Array) return Buffer.from(value).toString('utf8');
  if (value === null || value === undefined) return '';
  if (typeof value === 'object')
    return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v));
  return String(value);
}

/** AMQP topic matching: words split on `.`, `*` is one word, `#` zero or more. */
export function topicMatches(pattern: string, routingKey: string): boolean {
  const p = pattern.split('.');
  const w = routingKey.split('.');
  const memo = new Map<number, boolean>();
  const go = (i: number, j: number): boolean => {
    const key = i * (w.length + 1) + j;
    const cached = memo.get(key);
    if (cached !== undefined) return cached;
    let result: boolean;
    if (i === p.length) result = j === w.length;
    else if (p[i] === '#') result = go(i + 1, j) || (j < w.length && go(i, j + 1));
    else result = j < w.length && (p[i] === '*' || p[i] === w[j]) && go(i + 1, j + 1);
    memo.set(key, result);
    return result;
  };
  return go(0, 0);
}

/** Headers exchange matching (x-match all|any, RabbitMQ's all-with-x/any-with-x). */
export function headersMatch(bindingArguments: FieldTable, headers: FieldTable | undefined): boolean {
  const mode = comparable(bindingArguments['x-match'] ?? 'all');
  const withX = mode.endsWith('-with-x');
  const all = mode.startsWith('all');
  const message = headers ?? {};
  let matched = 0;
  let total = 0;
  for (const [name, expected] of Object.entries(bindingArguments)) {
    if (name === 'x-match' || (!withX && name.startsWith('x-'))) continue;
    total++;
    if (!(name in message)) continue;
    const actual = message[name];
    // A void binding value matches the mere presence of the header.
    if (expected === null || expected === undefined || comparable(actual) === comparable(expected)) matched++;
  }
  if (total === 0) return all;
  return all ? matched === total : matched > 0;
}

function bindingMatches(type: ExchangeType, binding: BindingDef, routingKey: string, headers?: FieldTable): boolean {
  switch (type) {
    case 'fanout':
      return true;
    case 'direct':
      return binding.routingKey === routingKey;
    case 'topic':
      return topicMatches(binding.routingKey, routingKey);
    case 'headers':
      return headersMatch(binding.arguments, headers);
  }
}

/** The topology. Names are unique per kind; the default exchange is `""`. */
export class Definitions {
  readonly exchanges = new Map<string, ExchangeDef>();
  readonly queues = new Map<string, QueueDef>();
  private readonly bindings = new Map<string, BindingDef>();

  constructor() {
    for (const exchange of BUILT_IN_EXCHANGES) this.exchanges.set(exchange.name, exchange);
  }

  addBinding(binding: BindingDef): boolean {
    const key = bindingKey(binding);
    if (this.bindings.has(key)) return false;
    this.bindings.set(key, binding);
    return true;
  }

  removeBinding(binding: BindingDef): boolean {
    return this.bindings.delete(bindingKey(binding));
  }

  hasBinding(binding: BindingDef): boolean {
    return this.bindings.has(bindingKey(binding));
  }

  allBindings(): BindingDef[] {
    return [...this.bindings.values()];
  }

  bindingsFrom(source: string): BindingDef[] {
    return this.allBindings().filter((binding) => binding.source === source);
  }

  bindingsTo(kind: 'queue' | 'exchange', destination: string): BindingDef[] {
    return this.allBindings().filter((b) => b.destinationKind === kind && b.destination === destination);
  }

  /** Drops a queue and every binding to it; returns the bindings removed. */
  deleteQueue(name: string): BindingDef[] {
    this.queues.delete(name);
    const removed = this.bindingsTo('queue', name);
    for (const binding of removed) this.removeBinding(binding);
    return removed;
  }

  /** Drops an exchange and every binding from or to it; returns the bindings removed. */
  deleteExchange(name: string): BindingDef[] {
    this.exchanges.delete(name);
    const removed = this.allBindings().filter(
      (b) => b.source === name || (b.destinationKind === 'exchange' && b.destination === name),
    );
    for (const binding of removed) this.removeBinding(binding);
    return removed;
  }

  /** Queue names a publish to `exchange` with `routingKey` and `headers` reaches. */
  route(exchange: string, routingKey: string, headers?: FieldTable | (() => FieldTable | undefined)): Set<string> {
    const queues = new Set<string>();
    if (exchange === '') {
      // The default exchange routes to the queue named by the key: no walk (the common publish).
      if (this.exchanges.has('') && this.queues.has(routingKey)) queues.add(routingKey);
      return queues;
    }
    // Headers are read only if a headers exchange is on the way (a consumer's copy decodes them).
    let headerTable: FieldTable | undefined;
    let headersRead = false;
    const headersNow = (): FieldTable | undefined => {
      if (!headersRead) headerTable = typeof headers === 'function' ? headers() : headers;
      headersRead = true;
      return headerTable;
    };
    const visited = new Set<string>();
    const walk = (name: string, hops: number): void => {
      if (visited.has(name) || hops > MAX_ROUTING_HOPS) return;
      visited.add(name);
      const def = this.exchanges.get(name);
      if (def === undefined) return;
      if (name === '') {
        if (this.queues.has(routingKey)) queues.add(routingKey);
        return;
      }
      for (const binding of this.bindingsFrom(name)) {
        if (!bindingMatches(def.type, binding, routingKey, def.type === 'headers' ? headersNow() : undefined)) continue;
        if (binding.destinationKind === 'queue') {
          if (this.queues.has(binding.destination)) queues.add(binding.destination);
        } else {
          walk(binding.destination, hops + 1);
        }
      }
    };
    walk(exchange, 0);
    return queues;
  }

  /** Whether route() would include `queue`; a consumer's check of each message it fetched. */
  routesTo(exchange: string, routingKey: string, headers: () => FieldTable | undefined, queue: string): boolean {
    if (exchange === '') return routingKey === queue && this.exchanges.has('') && this.queues.has(queue);
    return this.route(exchange, routingKey, headers).has(queue);
  }

  /**
   * The exchanges whose messages can reach `queue` (through any chain of exchange bindings), plus
   * the default exchange: these are the topics the queue's consumer group subscribes to.
   */
  sourceExchangesOf(queue: string): Set<string> {
    const sources = new Set<string>(['']);
    const pending = this.bindingsTo('queue', queue).map((binding) => binding.source);
    for (let guard = 0; pending.length > 0 && guard < 10_000; guard++) {
      const exchange = pending.pop() as string;
      if (sources.has(exchange)) continue;
      sources.add(exchange);
      for (const binding of this.bindingsTo('exchange', exchange)) pending.push(binding.source);
    }
    return sources;
  }
}
