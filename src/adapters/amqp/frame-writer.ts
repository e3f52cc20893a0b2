/**
 * Outbound frames: method frames, content header frames, and message bodies split into body frames
 * of at most frame_max - 8 payload bytes (spec 4.2.6.2). Returns Buffers ready for socket.write
 * (cork/uncork or writev); no sockets here.
 *
 * Frames are assembled in one module-level scratch writer (single-threaded and synchronous, so
 * never shared by two calls at once) and copied out once at their exact size. A large body is not
 * copied: encodeContentCommand returns views of it between small framing buffers, as ws's Sender
 * keeps payloads out of its header buffers. Such a body must stay unchanged until written.
 */
import { FRAME_END, FRAME_HEADER_BYTES, FRAME_MIN_SIZE_BYTES, FRAME_OVERHEAD_BYTES, FrameType } from './constants.js';
import { PayloadWriter } from './codec.js';
import { writeContentHeaderPayload, type BasicProperties } from './content-header.js';
import { AmqpEncodeError } from './errors.js';
import { writeMethodPayload, type AmqpMethod } from './methods.js';
import { invariant } from '../../engine/common/assert.js';

/** Bodies up to this size are copied in with their frames: one buffer beats several small writes. */
export const INLINE_BODY_MAX_BYTES = 32 * 1024;
/** The scratch buffer is dropped after use when it grew past this, so one huge table is not kept. */
const SCRATCH_KEEP_MAX_BYTES = 1024 * 1024;

/** A heartbeat frame: type 8, channel 0, empty payload (spec 4.2.7). */
export const HEARTBEAT_FRAME: Buffer = Buffer.from([FrameType.Heartbeat, 0, 0, 0, 0, 0, 0, FRAME_END]);
const FRAME_END_ONLY: Buffer = Buffer.from([FRAME_END]);

let scratch = new PayloadWriter(Buffer.allocUnsafe(64 * 1024));

/** Largest body-frame payload under a negotiated frame_max. */
export function maxBodyFramePayloadBytes(frameMaxBytes: number): number {
  checkFrameMax(frameMaxBytes);
  return frameMaxBytes - FRAME_OVERHEAD_BYTES;
}

/**
 * One method frame. With `frameMaxBytes`, a frame larger than it is refused with AmqpEncodeError
 * (a method cannot be split). Short strings over 255 bytes are refused the same way.
 */
export function encodeMethodFrame(channelId: number, method: AmqpMethod, frameMaxBytes?: number): Buffer {
  const w = beginScratch();
  const start = openFrame(w, channelId);
  writeMethodPayload(w, method);
  closeFrame(w, start, FrameType.Method, channelId, frameMaxBytes);
  return takeScratch(w);
}

/** One content header frame for a body of `bodySizeBytes`. */
export function encodeContentHeaderFrame(
  channelId: number,
  bodySizeBytes: number,
  properties: BasicProperties,
  frameMaxBytes?: number,
): Buffer {
  const w = beginScratch();
  const start = openFrame(w, channelId);
  writeContentHeaderPayload(w, bodySizeBytes, properties);
  closeFrame(w, start, FrameType.Header, channelId, frameMaxBytes);
  return takeScratch(w);
}

/** Body frames for `body`, each payload at most frameMaxBytes - 8; none for an empty body. */
export function encodeBodyFrames(channelId: number, body: Uint8Array, frameMaxBytes: number): Buffer[] {
  const maxPayloadBytes = maxBodyFramePayloadBytes(frameMaxBytes);
  checkChannelId(channelId);
  const frames: Buffer[] = [];
  for (let at = 0; at < body.length; at += maxPayloadBytes) {
    const size = Math.min(maxPayloadBytes, body.length - at);
    const frame = Buffer.allocUnsafe(size + FRAME_OVERHEAD_BYTES);
    writeFrameHeader(frame, 0, FrameType.Body, channelId, size);
    frame.set(body.subarray(at, at + size), FRAME_HEADER_BYTES);
    frame[FRAME_HEADER_BYTES + size] = FRAME_END;
    frames.push(frame);
  }
  return frames;
}

/**
 * A whole content-carrying command (basic.deliver, basic.get-ok, basic.return): method frame,
 * content header frame, body frames. A body up to INLINE_BODY_MAX_BYTES comes back as one Buffer;
 * a larger one as framing buffers around views of `body` (not copied). Throws AmqpEncodeError when
 * the method or header frame alone exceeds frameMaxBytes.
 */
export function encodeContentCommand(
  channelId: number,
  method: AmqpMethod,
  properties: BasicProperties,
  body: Uint8Array,
  frameMaxBytes: number,
): Buffer[] {
  const maxPayloadBytes = maxBodyFramePayloadBytes(frameMaxBytes);
  const w = beginScratch();
  const methodStart = openFrame(w, channelId);
  writeMethodPayload(w, method);
  closeFrame(w, methodStart, FrameType.Method, channelId, frameMaxBytes);
  const headerStart = openFrame(w, channelId);
  writeContentHeaderPayload(w, body.length, properties);
  closeFrame(w, headerStart, FrameType.Header, channelId, frameMaxBytes);
  if (body.length <= INLINE_BODY_MAX_BYTES) {
    w.ensure(body.length + Math.ceil(body.length / maxPayloadBytes) * FRAME_OVERHEAD_BYTES);
    for (let at = 0; at < body.length; at += maxPayloadBytes) {
      const size = Math.min(maxPayloadBytes, body.length - at);
      writeFrameHeader(w.buf, w.offsetBytes, FrameType.Body, channelId, size);
      w.buf.set(body.subarray(at, at + size), w.offsetBytes + FRAME_HEADER_BYTES);
      w.buf[w.offsetBytes + FRAME_HEADER_BYTES + size] = FRAME_END;
      w.offsetBytes += size + FRAME_OVERHEAD_BYTES;
    }
    return [takeScratch(w)];
  }
  // Large body: [method + header + first body-frame header] [body view] [end + next header] ... [end]
  const firstSize = Math.min(maxPayloadBytes, body.length);
  w.ensure(FRAME_HEADER_BYTES);
  writeFrameHeader(w.buf, w.offsetBytes, FrameType.Body, channelId, firstSize);
  w.offsetBytes += FRAME_HEADER_BYTES;
  const parts: Buffer[] = [takeScratch(w)];
  for (let at = 0; at < body.length; at += maxPayloadBytes) {
    const size = Math.min(maxPayloadBytes, body.length - at);
    parts.push(viewOf(body, at, at + size));
    const nextAt = at + size;
    if (nextAt >= body.length) {
      parts.push(FRAME_END_ONLY);
    } else {
      const glue = Buffer.allocUnsafe(1 + FRAME_HEADER_BYTES);
      glue[0] = FRAME_END;
      writeFrameHeader(glue, 1, FrameType.Body, channelId, Math.min(maxPayloadBytes, body.length - nextAt));
      parts.push(glue);
    }
  }
  return parts;
}

function viewOf(body: Uint8Array, start: number, end: number): Buffer {
  return Buffer.from(body.buffer, body.byteOffset + start, end - start);
}

/** Every encode starts here, so a throw halfway through an earlier encode leaves nothing behind. */
function beginScratch(): PayloadWriter {
  scratch.offsetBytes = 0;
  return scratch;
}

function takeScratch(w: PayloadWriter): Buffer {
  const out = Buffer.allocUnsafe(w.offsetBytes);
  w.buf.copy(out, 0, 0, w.offsetBytes);
  w.offsetBytes = 0;
  if (w.buf.length > SCRATCH_KEEP_MAX_BYTES) scratch = new PayloadWriter(Buffer.allocUnsafe(64 * 1024));
  return out;
}

/** Start a frame at the writer's position: room for the header, filled in by closeFrame. */
function openFrame(w: PayloadWriter, channelId: number): number {
  checkChannelId(channelId);
  return w.reserve(FRAME_HEADER_BYTES);
}

/** Fill in the header of the frame opened at `start`, append frame-end, check frameMaxBytes. */
function closeFrame(w: PayloadWriter, start: number, type: FrameType, channelId: number, frameMaxBytes?: number): void {
  const size = w.offsetBytes - start - FRAME_HEADER_BYTES;
  if (frameMaxBytes !== undefined && size + FRAME_OVERHEAD_BYTES > frameMaxBytes) {
    throw new AmqpEncodeError(
      `frame of type ${type} needs ${size + FRAME_OVERHEAD_BYTES} bytes; frame_max is ${frameMaxBytes}`,
    );
  }
  writeFrameHeader(w.buf, start, type, channelId, size);
  w.u8(FRAME_END);
}

function writeFrameHeader(buf: Buffer, at: number, type: FrameType, channelId: number, size: number): void {
  buf[at] = type;
  buf.writeUInt16BE(channelId, at + 1);
  buf.writeUInt32BE(size, at + 3);
}

function checkChannelId(channelId: number): void {
  invariant(Number.isInteger(channelId) && channelId >= 0 && channelId <= 0xffff, `bad channel id ${channelId}`);
}

function checkFrameMax(frameMaxBytes: number): void {
  invariant(
    Number.isInteger(frameMaxBytes) && frameMaxBytes >= FRAME_MIN_SIZE_BYTES && frameMaxBytes <= 0xffffffff,
    `frameMaxBytes must be an integer in [${FRAME_MIN_SIZE_BYTES}, 2^32-1], got ${frameMaxBytes}`,
  );
}
