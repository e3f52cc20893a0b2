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

/** Encodes the binary header. Codes and versions wider than 16 bits are truncated, as Java does. */
export function encodeBinaryHeader(header: CommandHeader): Buffer {
  const remark = header.remark !== undefined && header.remark.length > 0 ? Buffer.from(header.remark, 'utf8') : null;
  const pairs: Array<[Buffer, Buffer]> = [];
  let extBytes = 0;
  for (const [key, value] of Object.entries(header.extFields)) {
    const keyBytes = Buffer.from(key, 'utf8');
    const valueBytes = Buffer.from(value, 'utf8');
    pairs.push([keyBytes, valueBytes]);
    extBytes += 2 + keyBytes.length + 4 + valueBytes.length;
  }
  const out = Buffer.allocUnsafe(FIXED_BYTES + (remark?.length ?? 0) + extBytes);
  let at = 0;
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
  while (at < end) {
    if (end - at < 2) fail('extFields entry truncated before its key length');
    const keyBytes = bytes.readInt16BE(at);
    at += 2;
    if (keyBytes < 0 || keyBytes > end - at - 4) fail(`extFields key length ${keyBytes} exceeds the header`);
    const key = bytes.toString('utf8', at, at + keyBytes);
    at += keyBytes;
    const valueBytes = bytes.readInt32BE(at);
    at += 4;
    if (valueBytes < 0 || valueBytes > end - at) fail(`extFields value length ${valueBytes} exceeds the header`);
    setExtField(header.extFields, key, bytes.toString('utf8', at, at + valueBytes));
    at += valueBytes;
  }
  return header;
}
