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
    const value = aliased === undefined ? this.fields[name] : aliased;
    if (value === undefined || value === null) return undefined;
    if (typeof value === 'string') return value;
    if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
    throw badHeader(`header field ${name} is not a scalar value`);
  }

  has(name: string): boolean {
    return this.raw(name) !== undefined;
  }

  string(name: string): string {
    const value = this.raw(name);
    if (value === undefined) throw badHeader(`the custom field <${name}> is null`);
    return value;
  }

  optionalString(name: string): string | undefined {
    return this.raw(name);
  }

  /** A non-empty string (group and topic names). */
  name(name: string): string {
    const value = this.string(name);
    if (value.trim().length === 0) throw badHeader(`header field ${name} is empty`);
    return value;
  }

  int(name: string): number {
    return this.checkedInt(name, this.string(name), INT32_MIN, INT32_MAX);
  }

  optionalInt(name: string): number | undefined {
    const value = this.raw(name);
    return value === undefined || value === '' ? undefined : this.checkedInt(name, value, INT32_MIN, INT32_MAX);
  }

  long(name: string): number {
    return this.checkedInt(name, this.string(name), Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  }

  optionalLong(name: string): number | undefined {
    const value = this.raw(name);
    return value === undefined || value === ''
      ? undefined
      : this.checkedInt(name, value, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
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
    const value = this.raw(name);
    if (value === undefined || value === '') return defaultValue;
    if (value === 'true') return true;
    if (value === 'false') return false;
    throw badHeader(`header field ${name} is not a boolean: "${shown(value)}"`);
  }

  private checkedInt(name: string, value: string, min: number, max: number): number {
    const text = value.trim();
    if (!INTEGER_PATTERN.test(text)) throw badHeader(`header field ${name} is not an integer: "${shown(value)}"`);
    const parsed = Number(text);
    if (!Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
      throw badHeader(`header field ${name} is out of range: ${shown(value)}`);
    }
    return parsed;
  }
}

/** Response header values go on the wire as strings. */
export function stringFields(fields: Record<string, string | number | boolean>): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [name, value] of Object.entries(fields)) result[name] = String(value);
  return result;
}
