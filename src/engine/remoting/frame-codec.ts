/**
 * RocketMQ remoting frames: bytes <-> RemotingCommand, with no sockets involved. Owns the frame
 * layout, the JSON header, the incremental decoder and its limits; the binary header lives in
 * binary-header.ts and connections in tcp-channel.ts.
 *
 * Frame layout (RemotingCommand.encode / NettyDecoder):
 *   length      int32 BE, bytes after this field (header-length word + header + body)
 *   headerWord  int32 BE, high byte = serialization type (0 JSON, 1 ROCKETMQ), low 24 bits = header length
 *   header      JSON object or binary header
 *   body        the rest
 * maxFrameBytes counts the whole frame including its length field, as Netty's
 * LengthFieldBasedFrameDecoder(frameMaxLength, 0, 4, 0, 4) does.
 */
import { DEFAULT_MAX_FRAME_BYTES } from '../common/limits.js';
import { invariant, InvariantError } from '../common/assert.js';
import type { RemotingCommand } from './command.js';
import { SerializeType } from './codes.js';
import { type CommandHeader, decodeBinaryHeader, encodeBinaryHeader } from './binary-header.js';
import { FrameError, FrameErrorReason } from './frame-error.js';

export { FrameError, FrameErrorReason } from './frame-error.js';

/** Length field + header-length word. */
const PREFIX_BYTES = 8;
const MAX_HEADER_BYTES = 0xffffff;

/** A number as JSON.stringify writes it (non-finite numbers become null). */
function jsonNumber(value: number): string {
  return Number.isFinite(value) ? String(value) : 'null';
}

/**
 * The JSON header text, built directly rather than through an intermediate object: the same bytes
 * JSON.stringify would write for {code, language, version, opaque, flag, remark?, extFields,
 * serializeTypeCurrentRPC}, at a fraction of the cost on the send path.
 */
function jsonHeaderText(command: RemotingCommand): string {
  let text =
    `{"code":${jsonNumber(command.code)},"language":${JSON.stringify(command.language)}` +
    `,"version":${jsonNumber(command.version)},"opaque":${jsonNumber(command.opaque)},"flag":${jsonNumber(command.flag)}`;
  if (command.remark !== undefined) text += `,"remark":${JSON.stringify(command.remark)}`;
  return `${text},"extFields":${JSON.stringify(command.extFields)},"serializeTypeCurrentRPC":"JSON"}`;
}

/** Writes the length field and the header-length word in front of a header at PREFIX_BYTES. */
function writePrefix(prefix: Buffer, serializeType: number, headerBytes: number, bodyBytes: number): void {
  // Not invariant(): its message would be formatted on every frame.
  if (headerBytes > MAX_HEADER_BYTES) {
    throw new InvariantError(`remoting header of ${headerBytes} bytes does not fit 24 bits`);
  }
  prefix.writeInt32BE(4 + headerBytes + bodyBytes, 0);
  prefix.writeUInt32BE(((serializeType & 0xff) << 24) | headerBytes, 4);
}

/**
 * Encodes a command as [prefix + header, body?] so that a socket can write the body without
 * copying it (two writes under cork become one writev).
 */
export function encodeCommandParts(command: RemotingCommand): Buffer[] {
  const bodyBytes = command.body?.length ?? 0;
  let prefix: Buffer;
  if (command.serializeType === SerializeType.RocketMq) {
    prefix = encodeBinaryHeader(command, PREFIX_BYTES);
    writePrefix(prefix, command.serializeType, prefix.length - PREFIX_BYTES, bodyBytes);
  } else {
    // The header text goes straight into the frame buffer: no intermediate Buffer and no copy.
    const text = jsonHeaderText(command);
    const headerBytes = Buffer.byteLength(text, 'utf8');
    prefix = Buffer.allocUnsafe(PREFIX_BYTES + headerBytes);
    prefix.write(text, PREFIX_BYTES, 'utf8');
    writePrefix(prefix, command.serializeType, headerBytes, bodyBytes);
  }
  return command.body !== undefined && bodyBytes > 0 ? [prefix, command.body] : [prefix];
}

/** Encodes a command as one frame buffer (length field included). */
export function encodeCommand(command: RemotingCommand): Buffer {
  const parts = encodeCommandParts(command);
  return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
}

function coerceFieldValue(value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  return JSON.stringify(value);
}

function requireInteger(header: Record<string, unknown>, name: string, fallback?: number): number {
  const value = header[name];
  if (value === undefined || value === null) {
    if (fallback !== undefined) return fallback;
    throw new FrameError(FrameErrorReason.InvalidHeaderField, `JSON header has no "${name}"`);
  }
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new FrameError(FrameErrorReason.InvalidHeaderField, `JSON header "${name}" is not an integer`);
  }
  return value;
}

/**
 * Makes every extFields value a string, in place: the object is the one JSON.parse just built, so it
 * is ours, and its keys (even "__proto__") are own data properties that cannot touch a prototype.
 * Java peers send only strings, so the common case only looks at each value once.
 */
function stringExtFields(fields: Record<string, unknown>): Record<string, string> {
  for (const key in fields) {
    const value = fields[key];
    if (typeof value === 'string') continue;
    const text = coerceFieldValue(value);
    if (text === undefined) delete fields[key];
    else fields[key] = text;
  }
  return fields as Record<string, string>;
}

/** Parses a JSON header; unknown fields are ignored and extFields values are coerced to strings. */
export function decodeJsonHeader(bytes: Buffer): CommandHeader {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new FrameError(FrameErrorReason.InvalidJsonHeader, err instanceof Error ? err.message : String(err));
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new FrameError(
      FrameErrorReason.HeaderNotObject,
      `JSON header is ${Array.isArray(parsed) ? 'an array' : typeof parsed}`,
    );
  }
  const raw = parsed as Record<string, unknown>;
  const extFields = raw['extFields'];
  let fields: Record<string, string>;
  if (typeof extFields === 'object' && extFields !== null && !Array.isArray(extFields)) {
    fields = stringExtFields(extFields as Record<string, unknown>);
  } else if (extFields === undefined || extFields === null) {
    fields = {};
  } else {
    throw new FrameError(FrameErrorReason.InvalidHeaderField, 'JSON header "extFields" is not an object');
  }
  const language = raw['language'];
  const header: CommandHeader = {
    code: requireInteger(raw, 'code'),
    language: typeof language === 'string' ? language : 'OTHER',
    version: requireInteger(raw, 'version', 0),
    opaque: requireInteger(raw, 'opaque'),
    flag: requireInteger(raw, 'flag', 0),
    extFields: fields,
  };
  const remark = raw['remark'];
  if (typeof remark === 'string') header.remark = remark;
  else if (remark !== undefined && remark !== null) {
    throw new FrameError(FrameErrorReason.InvalidHeaderField, 'JSON header "remark" is not a string');
  }
  return header;
}

/**
 * Decodes the bytes after the length field (header-length word, header, body). The body is a view
 * into `frameBody`, not a copy.
 */
export function decodeCommandBody(frameBody: Buffer): RemotingCommand {
  if (frameBody.length < 4) {
    throw new FrameError(FrameErrorReason.LengthTooSmall, `frame of ${frameBody.length} bytes has no header length`);
  }
  const headerWord = frameBody.readUInt32BE(0);
  const serializeType = headerWord >>> 24;
  const headerBytes = headerWord & 0xffffff;
  if (headerBytes > frameBody.length - 4) {
    throw new FrameError(
      FrameErrorReason.HeaderLengthTooLarge,
      `header length ${headerBytes} > ${frameBody.length - 4} bytes left in the frame`,
    );
  }
  const headerView = frameBody.subarray(4, 4 + headerBytes);
  let header: CommandHeader;
  if (serializeType === SerializeType.Json) header = decodeJsonHeader(headerView);
  else if (serializeType === SerializeType.RocketMq) header = decodeBinaryHeader(headerView);
  else throw new FrameError(FrameErrorReason.UnknownSerializeType, `serialization type ${serializeType}`);
  // The header object becomes the command: one more property on an object we just made, no copy.
  const command = header as RemotingCommand;
  command.serializeType = serializeType;
  if (frameBody.length > 4 + headerBytes) command.body = frameBody.subarray(4 + headerBytes);
  return command;
}

/** Checks a frame's announced length (the int32 after which `length` bytes follow). */
function checkAnnouncedLength(length: number, maxFrameBytes: number): void {
  if (length < 0) throw new FrameError(FrameErrorReason.NegativeLength, `announced length ${length}`);
  if (length < 4) throw new FrameError(FrameErrorReason.LengthTooSmall, `announced length ${length} < 4`);
  if (length + 4 > maxFrameBytes) {
    throw new FrameError(FrameErrorReason.FrameTooLarge, `announced ${length + 4} bytes > limit ${maxFrameBytes}`);
  }
}

/** Decodes one whole frame, length field included (a convenience for tests and tools). */
export function decodeFrame(frame: Buffer, maxFrameBytes = DEFAULT_MAX_FRAME_BYTES): RemotingCommand {
  if (frame.length < 4) throw new FrameError(FrameErrorReason.LengthTooSmall, `frame of ${frame.length} bytes`);
  const length = frame.readInt32BE(0);
  checkAnnouncedLength(length, maxFrameBytes);
  if (length !== frame.length - 4) {
    throw new FrameError(FrameErrorReason.LengthTooSmall, `announced length ${length}, got ${frame.length - 4} bytes`);
  }
  return decodeCommandBody(frame.subarray(4));
}

/**
 * Incremental frame decoder over a byte stream. Whole frames inside one chunk are decoded in place
 * (bodies are views into the chunk); only a frame that spans chunks is copied, once. The announced
 * length is checked against maxFrameBytes before any of the frame is buffered, so a peer cannot
 * make us hold more than one frame's worth of bytes. After a FrameError the stream is unusable:
 * the caller closes the connection.
 */
export class FrameDecoder {
  private readonly maxFrameBytes: number;
  /** Bytes of the incomplete frame at the end of the stream, in arrival order. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Full size (with length field) of the pending frame once its length field is known. */
  private pendingFrameBytes = -1;
  private failed: FrameError | undefined;

  constructor(options: { maxFrameBytes?: number } = {}) {
    this.maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    invariant(this.maxFrameBytes >= PREFIX_BYTES, 'maxFrameBytes must allow at least an empty frame');
  }

  /** Bytes held for an incomplete frame. */
  get bufferedBytes(): number {
    return this.pendingBytes;
  }

  /**
   * Feeds a chunk; calls `onCommand` for each complete frame in order. Throws FrameError on the
   * first bad frame (commands before it in the same chunk have been delivered already).
   */
  push(chunk: Buffer, onCommand: (command: RemotingCommand) => void): void {
    if (this.failed !== undefined) throw this.failed;
    try {
      this.consume(chunk, onCommand);
    } catch (err) {
      if (err instanceof FrameError) {
        this.failed = err;
        this.pending = [];
        this.pendingBytes = 0;
      }
      throw err;
    }
  }

  private consume(chunk: Buffer, onCommand: (command: RemotingCommand) => void): void {
    let at = 0;
    if (this.pendingBytes > 0) {
      at = this.completePending(chunk, onCommand);
      if (at < 0) return;
    }
    // Whole frames inside this chunk: decode in place.
    while (chunk.length - at >= 4) {
      const length = chunk.readInt32BE(at);
      checkAnnouncedLength(length, this.maxFrameBytes);
      if (chunk.length - at - 4 < length) break;
      onCommand(decodeCommandBody(chunk.subarray(at + 4, at + 4 + length)));
      at += 4 + length;
    }
    if (at < chunk.length) this.hold(chunk.subarray(at));
  }

  private hold(part: Buffer): void {
    this.pending.push(part);
    this.pendingBytes += part.length;
    if (this.pendingFrameBytes < 0 && this.pendingBytes >= 4) {
      const length = this.readPendingLength();
      checkAnnouncedLength(length, this.maxFrameBytes);
      this.pendingFrameBytes = length + 4;
    }
  }

  /** Returns the offset in `chunk` after the completed frame, or -1 if the chunk was all held. */
  private completePending(chunk: Buffer, onCommand: (command: RemotingCommand) => void): number {
    if (this.pendingFrameBytes < 0) {
      // The length field itself spans chunks: take just enough to read it.
      const needed = 4 - this.pendingBytes;
      if (chunk.length < needed) {
        this.hold(chunk);
        return -1;
      }
      this.hold(chunk.subarray(0, needed));
      return this.completePendingFrom(chunk, needed, onCommand);
    }
    return this.completePendingFrom(chunk, 0, onCommand);
  }

  private completePendingFrom(chunk: Buffer, from: number, onCommand: (command: RemotingCommand) => void): number {
    const missing = this.pendingFrameBytes - this.pendingBytes;
    if (chunk.length - from < missing) {
      if (chunk.length > from) this.hold(chunk.subarray(from));
      return -1;
    }
    const frame = Buffer.allocUnsafe(this.pendingFrameBytes);
    let written = 0;
    for (const part of this.pending) written += part.copy(frame, written);
    chunk.copy(frame, written, from, from + missing);
    this.pending = [];
    this.pendingBytes = 0;
    this.pendingFrameBytes = -1;
    onCommand(decodeCommandBody(frame.subarray(4)));
    return from + missing;
  }

  private readPendingLength(): number {
    const lengthBytes = Buffer.allocUnsafe(4);
    let filled = 0;
    for (const part of this.pending) {
      filled += part.copy(lengthBytes, filled, 0, Math.min(part.length, 4 - filled));
      if (filled === 4) break;
    }
    return lengthBytes.readInt32BE(0);
  }
}
