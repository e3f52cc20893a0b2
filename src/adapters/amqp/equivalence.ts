/**
 * Redeclare equivalence, as RabbitMQ checks it (rabbit_misc:assert_args_equivalence): declaring an
 * existing queue or exchange must repeat its properties and the arguments that change behaviour;
 * any difference is a 406 PRECONDITION_FAILED channel error with RabbitMQ's reply text, e.g.
 *
 *   inequivalent arg 'durable' for queue 'q' in vhost '/': received 'true' but current is 'false'
 *   inequivalent arg 'x-message-ttl' for queue 'q' in vhost '/': received the value '2000' of type
 *   'short' but current is the value '1000' of type 'short'
 *
 * Arguments outside the checked lists (client-specific ones) are ignored, as RabbitMQ does. Numbers
 * of any integer width are equal when their values are (RabbitMQ compares type classes, and our
 * durable definitions keep values, not wire tags).
 */
import { comparable } from './definitions.js';
import { FieldDecimal, FieldTyped, type FieldTable, type FieldValue } from './field-table.js';

/** Queue arguments RabbitMQ compares on redeclare. */
export const QUEUE_EQUIVALENCE_ARGUMENTS: readonly string[] = [
  'x-expires',
  'x-message-ttl',
  'x-max-length',
  'x-max-length-bytes',
  'x-max-priority',
  'x-overflow',
  'x-dead-letter-exchange',
  'x-dead-letter-routing-key',
  'x-queue-mode',
  'x-queue-type',
  'x-single-active-consumer',
  'x-queue-master-locator',
  'x-queue-leader-locator',
  'x-delivery-limit',
  'x-max-age',
];

/** Exchange arguments RabbitMQ compares on redeclare. */
export const EXCHANGE_EQUIVALENCE_ARGUMENTS: readonly string[] = ['alternate-exchange'];

/** Argument values equal to leaving the argument out. */
const DEFAULTS: Readonly<Record<string, string>> = { 'x-queue-type': 'classic' };

const TAG_NAMES: Readonly<Record<string, string>> = {
  b: 'byte',
  B: 'unsignedbyte',
  s: 'short',
  u: 'unsignedshort',
  I: 'signedint',
  i: 'unsignedint',
  l: 'long',
  f: 'float',
  d: 'double',
  T: 'timestamp',
};

/** RabbitMQ's field type name of a decoded value. */
export function fieldTypeName(value: FieldValue): string {
  if (value instanceof FieldTyped) return TAG_NAMES[value.type] ?? 'long';
  if (value instanceof FieldDecimal) return 'decimal';
  if (value === null || value === undefined) return 'void';
  if (typeof value === 'boolean') return 'bool';
  if (typeof value === 'string' || Buffer.isBuffer(value) || value instanceof Uint8Array) return 'longstr';
  if (typeof value === 'bigint') return 'long';
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) return 'double';
    if (value >= -128 && value < 128) return 'byte';
    if (value >= -0x8000 && value < 0x8000) return 'short';
    if (value >= -0x80000000 && value < 0x80000000) return 'signedint';
    return 'long';
  }
  if (value instanceof Date) return 'timestamp';
  if (Array.isArray(value)) return 'array';
  return 'table';
}

function typeClass(value: FieldValue): string {
  const name = fieldTypeName(value);
  if (['byte', 'unsignedbyte', 'short', 'unsignedshort', 'signedint', 'unsignedint', 'long'].includes(name)) {
    return 'int';
  }
  if (name === 'float' || name === 'double') return 'float';
  return name;
}

function present(table: FieldTable, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(table, key) && table[key] !== undefined;
}

function same(key: string, current: FieldTable, received: FieldTable): boolean {
  const has = present(current, key);
  const gets = present(received, key);
  const fallback = DEFAULTS[key];
  if (!has && !gets) return true;
  if (!has || !gets) {
    const value = has ? current[key] : received[key];
    return fallback !== undefined && comparable(value) === fallback;
  }
  const a = current[key];
  const b = received[key];
  return typeClass(a) === typeClass(b) && comparable(a) === comparable(b);
}

function describe(table: FieldTable, key: string): string {
  if (!present(table, key)) return 'none';
  const value = table[key];
  return `the value '${comparable(value)}' of type '${fieldTypeName(value)}'`;
}

/**
 * The first difference between a declared object's properties and arguments and a redeclare's, as
 * RabbitMQ's reply text (without the "PRECONDITION_FAILED - " prefix), or undefined when equivalent.
 */
export function inequivalence(
  kind: 'queue' | 'exchange',
  name: string,
  vhost: string,
  fields: readonly (readonly [field: string, current: string | boolean, received: string | boolean])[],
  argumentKeys: readonly string[],
  current: FieldTable,
  received: FieldTable,
): string | undefined {
  const where = `for ${kind} '${name}' in vhost '${vhost}'`;
  for (const [field, a, b] of fields) {
    if (a !== b) return `inequivalent arg '${field}' ${where}: received '${String(b)}' but current is '${String(a)}'`;
  }
  for (const key of argumentKeys) {
    if (!same(key, current, received)) {
      return `inequivalent arg '${key}' ${where}: received ${describe(received, key)} but current is ${describe(current, key)}`;
    }
  }
  return undefined;
}
