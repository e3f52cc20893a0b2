/**
 * The ROCKETMQ binary header (serialization type 1), as RocketMQSerializable writes it. Owns only
 * the header bytes; the frame around them belongs to frame-codec.ts.
 *
 * Layout, big-endian:
 *   code        int16 (Java casts the int code to short)
 *   language    int8  (LanguageCode ordinal, see LANGUAGE_CODES)
 *   version     int16
 *   opaque      int32
 *   flag        int32
 *   remark      int32 byte length + UTF-8 bytes (length 0 = no remark)
 *   extFields   int32 byte length of what follows, then repeated
 *               (int16 key length + UTF-8 key, int32 value length + UTF-8 value)
 */
import { LANGUAGE_CODES } from './codes.js';
import { FrameError, FrameErrorReason } from './frame-error.js';

/** The header fields of a RemotingCommand (everything but body and serializeType). */
export interface CommandHeader {
  code: number;
  language: string;
  version: number;
  opaque: number;
  flag: number;
  remark?: string;
  extFields: Record<string, string>;
}

/** Fixed part: code 2 + language 1 + version 2 + opaque 4 + flag 4 + remark length 4 + ext length 4. */
const FIXED_BYTES = 21;
const OTHER_LANGUAGE = LANGUAGE_CODES.indexOf('OTHER');

function languageOrdinal(language: string): number {
  const ordinal = (LANGUAGE_CODES as readonly string[]).indexOf(language);
  return ordinal >= 0 ? ordinal : OTHER_LANGUAGE;
}

/** Encodes headers up to this size in one pass through a shared scratch buffer. */
const SCRATCH_BYTES = 64 * 1024;
const scratch = Buffer.allocUnsafe(SCRATCH_BYTES);
/** Strings of one ASCII byte, the usual shape of SEND_MESSAGE_V2 field names ("a".."n"). */
const ONE_BYTE_STRINGS: readonly string[] = Array.from({ length: 0x80 }, (_, code) => String.fromCharCode(code));

/** Strings up to this length are tried as ASCII in a loop: cheaper than a call into Buffer#write. */
const ASCII_LOOP_MAX_CHARS = 64;

/** Writes an ASCII string's bytes at `at` and returns their count, or -1 (nothing usable) if it is not ASCII. */
function writeScratchAscii(text: string, at: number): number {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code >= 0x80) return -1;
    scratch[at + i] = code;
  }
  return text.length;
}

/**
 * Writes a UTF-8 string into the scratch buffer at `at` and its length before it (int16 or int32);
 * returns the position after it, or -1 when the scratch buffer might be too small.
 */
function writeScratchString(text: string, at: number, lengthBytes: 2 | 4): number {
  if (at + lengthBytes + 3 * text.length > SCRATCH_BYTES) return -1;
  let bytes = text.length <= ASCII_LOOP_MAX_CHARS ? writeScratchAscii(text, at + lengthBytes) : -1;
  if (bytes < 0) bytes = text.length === 0 ? 0 : scratch.write(text, at + lengthBytes, 'utf8');
  if (lengthBytes === 2) scratch.writeInt16BE(bytes, at);
  else scratch.writeInt32BE(bytes, at);
  return at + lengthBytes + bytes;
}

/** One pass into the scratch buffer; returns the header's length, or -1 if it does not fit there. */
function encodeIntoScratch(header: CommandHeader): number {
  let at = 0;
  at = scratch.writeInt16BE((header.code << 16) >> 16, at);
  at = scratch.writeUInt8(languageOrdinal(header.language), at);
  at = scratch.writeInt16BE((header.version << 16) >> 16, at);
  at = scratch.writeInt32BE(header.opaque | 0, at);
  at = scratch.writeInt32BE(header.flag | 0, at);
  at = writeScratchString(header.remark ?? '', at, 4);
  const extLengthAt = at;
  at += 4;
  const fields = header.extFields;
  for (const key in fields) {
    if (at >= 0) at = writeScratchString(key, at, 2);
    if (at >= 0) at = writeScratchString(fields[key] as string, at, 4);
    if (at < 0) return -1;
  }
  scratch.writeInt32BE(at - extLengthAt - 4, extLengthAt);
  return at;
}

/** The general path, for headers too large for the scratch buffer. */
function encodeLarge(header: CommandHeader, reserveBytes: number): Buffer {
  const remark = header.remark !== undefined && header.remark.length > 0 ? Buffer.from(header.remark, 'utf8') : null;
  const pairs: Array<[Buffer, Buffer]> = [];
  let extBytes = 0;
  for (const [key, value] of Object.entries(header.extFields)) {
    const keyBytes = Buffer.from(key, 'utf8');
    const valueBytes = Buffer.from(value, 'utf8');
    pairs.push([keyBytes, valueBytes]);
    extBytes += 2 + keyBytes.length + 4 + valueBytes.length;
  }
  const out = Buffer.allocUnsafe(reserveBytes + FIXED_BYTES + (remark?.length ?? 0) + extBytes);
  let at = reserveBytes;
  at = out.writeInt16BE((header.code << 16) >> 16, at);
  at = out.writeUInt8(languageOrdinal(header.language), at);
  at = out.writeInt16BE((header.version << 16) >> 16, at);
  at = out.writeInt32BE(header.opaque | 0, at);
  at = out.writeInt32BE(header.flag | 0, at);
  at = out.writeInt32BE(remark?.length ?? 0, at);
  if (remark !== null) at += remark.copy(out, at);
  at = out.writeInt32BE(extBytes, at);
  for (const [keyBytes, valueBytes] of pairs) {
    at = out.writeInt16BE(keyBytes.length, at);
    at += keyBytes.copy(out, at);
    at = out.writeInt32BE(valueBytes.length, at);
    at += valueBytes.copy(out, at);
  }
  return out;
}

/**
 * Encodes the binary header after `reserveBytes` bytes left for the caller (the frame prefix), so
 * the frame needs no second copy. Codes and versions wider than 16 bits are truncated, as Java does.
 */
export function encodeBinaryHeader(header: CommandHeader, reserveBytes = 0): Buffer {
  const headerBytes = encodeIntoScratch(header);
  if (headerBytes < 0) return encodeLarge(header, reserveBytes);
  const out = Buffer.allocUnsafe(reserveBytes + headerBytes);
  scratch.copy(out, reserveBytes, 0, headerBytes);
  return out;
}

/**
 * Stores a header field as an own property even when its name is "__proto__", so a peer cannot
 * swap the object's prototype through a field name.
 */
export function setExtField(fields: Record<string, string>, key: string, value: string): void {
  if (key === '__proto__') {
    Object.defineProperty(fields, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    fields[key] = value;
  }
}

/** Whether bytes[from, to) are all below 0x80 (then latin1 and UTF-8 decode them alike). */
function isAscii(bytes: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if ((bytes[i] as number) >= 0x80) return false;
  return true;
}

function fail(detail: string): never {
  throw new FrameError(FrameErrorReason.InvalidBinaryHeader, detail);
}

/** Decodes a binary header; every length is checked against the bytes that remain. */
export function decodeBinaryHeader(bytes: Buffer): CommandHeader {
  if (bytes.length < FIXED_BYTES) fail(`header is ${bytes.length} bytes, at least ${FIXED_BYTES} expected`);
  let at = 0;
  const code = bytes.readInt16BE(at);
  at += 2;
  const languageByte = bytes.readUInt8(at);
  at += 1;
  const version = bytes.readInt16BE(at);
  at += 2;
  const opaque = bytes.readInt32BE(at);
  at += 4;
  const flag = bytes.readInt32BE(at);
  at += 4;
  const remarkBytes = bytes.readInt32BE(at);
  at += 4;
  if (remarkBytes < 0 || remarkBytes > bytes.length - at - 4) fail(`remark length ${remarkBytes} exceeds the header`);
  const header: CommandHeader = {
    code,
    language: LANGUAGE_CODES[languageByte] ?? 'OTHER',
    version,
    opaque,
    flag,
    extFields: {},
  };
  if (remarkBytes > 0) header.remark = bytes.toString('utf8', at, at + remarkBytes);
  at += remarkBytes;
  const extBytes = bytes.readInt32BE(at);
  at += 4;
  if (extBytes < 0 || extBytes !== bytes.length - at) {
    fail(`extFields length ${extBytes} does not match the ${bytes.length - at} bytes left in the header`);
  }
  const end = at + extBytes;
  // Header fields are ASCII in practice: then one latin1 string of the whole region gives every key
  // and value as a slice (one call into Buffer#toString per header instead of one per field).
  const ascii = isAscii(bytes, at, end) ? bytes.toString('latin1', at, end) : undefined;
  const asciiStart = at;
  while (at < end) {
    if (end - at < 2) fail('extFields entry truncated before its key length');
    const keyBytes = bytes.readInt16BE(at);
    at += 2;
    if (keyBytes < 0 || keyBytes > end - at - 4) fail(`extFields key length ${keyBytes} exceeds the header`);
    const firstByte = bytes[at] as number;
    const key =
      keyBytes === 1 && firstByte < 0x80
        ? (ONE_BYTE_STRINGS[firstByte] as string)
        : ascii !== undefined
          ? ascii.slice(at - asciiStart, at - asciiStart + keyBytes)
          : bytes.toString('utf8', at, at + keyBytes);
    at += keyBytes;
    const valueBytes = bytes.readInt32BE(at);
    at += 4;
    if (valueBytes < 0 || valueBytes > end - at) fail(`extFields value length ${valueBytes} exceeds the header`);
    const value =
      ascii !== undefined
        ? ascii.slice(at - asciiStart, at - asciiStart + valueBytes)
        : bytes.toString('utf8', at, at + valueBytes);
    setExtField(header.extFields, key, value);
    at += valueBytes;
  }
  return header;
}
