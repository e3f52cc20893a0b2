/**
 * Reads a request's custom header (extFields) strictly, as RocketMQ's decodeCommandCustomHeader does:
 * a required field that is missing or not a number yields a RequestError that names it. Values may
 * arrive as strings (Java, Go) or as JSON numbers and booleans (ali-ons), so everything is read
 * through String().
 */
import { badHeader } from './request-error.js';

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const INTEGER_PATTERN = /^-?\d{1,19}$/;

function shown(value: string): string {
  return value.length > 64 ? `${value.slice(0, 64)}...` : value;
}

const DIGIT_0 = 0x30;
const MINUS = 0x2d;
/** Digits that always make a safe integer (< 2^53). */
const PLAIN_INTEGER_MAX_DIGITS = 15;

/**
 * The value of an optional minus and 1 to 15 digits, as Number() reads it, without the pattern test,
 * trim and parse that every int field of every request would otherwise cost; undefined for any
 * other text (checkedInt then reads it the general way).
 */
function plainInteger(text: string): number | undefined {
  const negative = text.charCodeAt(0) === MINUS;
  const start = negative ? 1 : 0;
  const digits = text.length - start;
  if (digits < 1 || digits > PLAIN_INTEGER_MAX_DIGITS) return undefined;
  let value = 0;
  for (let i = start; i < text.length; i++) {
    const digit = text.charCodeAt(i) - DIGIT_0;
    if (digit < 0 || digit > 9) return undefined;
    value = value * 10 + digit;
  }
  return negative ? -value : value;
}

export class HeaderReader {
  private readonly fields: Readonly<Record<string, unknown>>;
  private readonly aliases: Readonly<Record<string, string>> | undefined;

  /**
   * `aliases` maps a field name to a short name read in its place when present (the one-letter
   * names of SendMessageRequestHeaderV2), so such a header is read without copying it; errors still
   * name the field.
   */
  constructor(fields: Readonly<Record<string, unknown>> | undefined, aliases?: Readonly<Record<string, string>>) {
    this.fields = fields ?? {};
    this.aliases = aliases;
  }

  private raw(name: string): string | undefined {
    const alias = this.aliases?.[name];
    const aliased = alias === undefined ? undefined : this.fields[alias];
    return scalarField(name, aliased === undefined ? this.fields[name] : aliased);
  }

  has(name: string): boolean {
    return this.raw(name) !== undefined;
  }

  string(name: string): string {
    return requiredField(name, this.raw(name));
  }

  optionalString(name: string): string | undefined {
    return this.raw(name);
  }

  /** A non-empty string (group and topic names). */
  name(name: string): string {
    return nameField(name, this.raw(name));
  }

  int(name: string): number {
    return intField(name, this.raw(name));
  }

  optionalInt(name: string): number | undefined {
    return optionalIntField(name, this.raw(name));
  }

  long(name: string): number {
    return longField(name, this.raw(name));
  }

  optionalLong(name: string): number | undefined {
    const value = this.raw(name);
    return value === undefined || value === '' ? undefined : checkedInt(name, value, MIN_LONG, MAX_LONG);
  }

  /**
   * A Java long kept exact as a bigint: some values exceed 2^53 (the Go client's subVersion is a
   * time in nanoseconds).
   */
  exactLong(name: string): bigint {
    const value = this.string(name).trim();
    if (!INTEGER_PATTERN.test(value)) throw badHeader(`header field ${name} is not an integer: "${shown(value)}"`);
    const parsed = BigInt(value);
    if (parsed < INT64_MIN || parsed > INT64_MAX)
      throw badHeader(`header field ${name} is out of range: ${shown(value)}`);
    return parsed;
  }

  bool(name: string, defaultValue: boolean): boolean {
    return boolField(name, this.raw(name), defaultValue);
  }
}

/*
 * Field readers on a value already taken from the header, for hot processors (sends) that read
 * their fields by literal name: a HeaderReader's lookups by a variable name go megamorphic. Each
 * behaves as the HeaderReader method of the same name on that value; `name` is for errors only.
 */

/** The field as text: undefined when absent or null; numbers and booleans as String() writes them. */
export function scalarField(name: string, value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  throw badHeader(`header field ${name} is not a scalar value`);
}

export function requiredField(name: string, text: string | undefined): string {
  if (text === undefined) throw badHeader(`the custom field <${name}> is null`);
  return text;
}

/** A non-empty string (group and topic names). */
export function nameField(name: string, text: string | undefined): string {
  const value = requiredField(name, text);
  if (value.trim().length === 0) throw badHeader(`header field ${name} is empty`);
  return value;
}

export function intField(name: string, text: string | undefined): number {
  return checkedInt(name, requiredField(name, text), INT32_MIN, INT32_MAX);
}

export function optionalIntField(name: string, text: string | undefined): number | undefined {
  return text === undefined || text === '' ? undefined : checkedInt(name, text, INT32_MIN, INT32_MAX);
}

export function longField(name: string, text: string | undefined): number {
  return checkedInt(name, requiredField(name, text), MIN_LONG, MAX_LONG);
}

export function boolField(name: string, text: string | undefined, defaultValue: boolean): boolean {
  if (text === undefined || text === '') return defaultValue;
  if (text === 'true') return true;
  if (text === 'false') return false;
  throw badHeader(`header field ${name} is not a boolean: "${shown(text)}"`);
}

const MIN_LONG = Number.MIN_SAFE_INTEGER;
const MAX_LONG = Number.MAX_SAFE_INTEGER;

function checkedInt(name: string, value: string, min: number, max: number): number {
  const plain = plainInteger(value);
  if (plain !== undefined) {
    if (plain < min || plain > max) throw badHeader(`header field ${name} is out of range: ${shown(value)}`);
    return plain;
  }
  const text = value.trim();
  if (!INTEGER_PATTERN.test(text)) throw badHeader(`header field ${name} is not an integer: "${shown(value)}"`);
  const parsed = Number(text);
  if (!Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
    throw badHeader(`header field ${name} is out of range: ${shown(value)}`);
  }
  return parsed;
}

/** Response header values go on the wire as strings. */
export function stringFields(fields: Record<string, string | number | boolean>): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [name, value] of Object.entries(fields)) result[name] = String(value);
  return result;
}
