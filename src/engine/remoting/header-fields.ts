/**
 * Typed reads of a request's extFields (RocketMQ's CommandCustomHeader decoding). On the wire every
 * value is a string; these helpers parse them the way Java's header classes do and throw a
 * HeaderFieldError that names the field, which `answerHeaderErrors` turns into the SYSTEM_ERROR
 * response RocketMQ sends for a RemotingCommandException ("the custom field <x> is null").
 */
import { ErrorCode, RbError } from '../common/errors.js';
import { createLogger } from '../common/logger.js';
import type { RequestProcessor } from './channel.js';
import { ResponseCode } from './codes.js';
import { createResponse, type RemotingCommand } from './command.js';

/** A required header field is missing or a field does not parse as its type. */
export class HeaderFieldError extends RbError {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(ErrorCode.RequestHeaderInvalid, message);
  }
}

type FieldSource = RemotingCommand | Record<string, string>;

function rawField(source: FieldSource, name: string): string | undefined {
  const fields = 'extFields' in source && typeof source.extFields === 'object' ? source.extFields : source;
  const value = Object.prototype.hasOwnProperty.call(fields, name)
    ? (fields as Record<string, unknown>)[name]
    : undefined;
  return typeof value === 'string' ? value : undefined;
}

function missing(name: string): never {
  throw new HeaderFieldError(name, `missing required header field "${name}"`);
}

const INTEGER_TEXT = /^[+-]?\d+$/;

function parseInteger(name: string, text: string, min: number, max: number, kind: string): number {
  const trimmed = text.trim();
  const value = INTEGER_TEXT.test(trimmed) ? Number(trimmed) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new HeaderFieldError(name, `header field "${name}" is not ${kind}: "${text.slice(0, 64)}"`);
  }
  return value;
}

const INT32 = { min: -0x80000000, max: 0x7fffffff };

/** A required string field; an empty string counts as present. */
export function requiredString(source: FieldSource, name: string): string {
  return rawField(source, name) ?? missing(name);
}

export function optionalString(source: FieldSource, name: string): string | undefined {
  return rawField(source, name);
}

/** A required Java int (32-bit signed). */
export function requiredInt(source: FieldSource, name: string): number {
  return parseInteger(name, requiredString(source, name), INT32.min, INT32.max, 'a 32-bit integer');
}

export function optionalInt(source: FieldSource, name: string): number | undefined;
export function optionalInt(source: FieldSource, name: string, defaultValue: number): number;
export function optionalInt(source: FieldSource, name: string, defaultValue?: number): number | undefined {
  const text = rawField(source, name);
  if (text === undefined || text === '') return defaultValue;
  return parseInteger(name, text, INT32.min, INT32.max, 'a 32-bit integer');
}

/** A required Java long, limited to the safe-integer range of a JS number (2^53). */
export function requiredLong(source: FieldSource, name: string): number {
  return parseInteger(
    name,
    requiredString(source, name),
    Number.MIN_SAFE_INTEGER,
    Number.MAX_SAFE_INTEGER,
    'an integer',
  );
}

export function optionalLong(source: FieldSource, name: string): number | undefined;
export function optionalLong(source: FieldSource, name: string, defaultValue: number): number;
export function optionalLong(source: FieldSource, name: string, defaultValue?: number): number | undefined {
  const text = rawField(source, name);
  if (text === undefined || text === '') return defaultValue;
  return parseInteger(name, text, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, 'an integer');
}

function parseBoolean(name: string, text: string): boolean {
  const lower = text.trim().toLowerCase();
  if (lower === 'true') return true;
  if (lower === 'false') return false;
  throw new HeaderFieldError(name, `header field "${name}" is not true or false: "${text.slice(0, 64)}"`);
}

export function requiredBoolean(source: FieldSource, name: string): boolean {
  return parseBoolean(name, requiredString(source, name));
}

export function optionalBoolean(source: FieldSource, name: string): boolean | undefined;
export function optionalBoolean(source: FieldSource, name: string, defaultValue: boolean): boolean;
export function optionalBoolean(source: FieldSource, name: string, defaultValue?: boolean): boolean | undefined {
  const text = rawField(source, name);
  if (text === undefined || text === '') return defaultValue;
  return parseBoolean(name, text);
}

const log = createLogger('remoting');

/**
 * Wraps a processor so that a HeaderFieldError becomes a SYSTEM_ERROR response whose remark names
 * the field, logged at debug: a client's malformed header is its problem, not a server fault.
 */
export function answerHeaderErrors(processor: RequestProcessor): RequestProcessor {
  return async (request, channel) => {
    try {
      return await processor(request, channel);
    } catch (err) {
      if (!(err instanceof HeaderFieldError)) throw err;
      log.debug({ code: request.code, peer: channel.remoteAddress, field: err.field }, err.message);
      return createResponse(request, ResponseCode.SystemError, err.message);
    }
  };
}
