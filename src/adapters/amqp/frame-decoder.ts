/**
 * Incremental AMQP 0-9-1 frame decoder for the server side of a connection: bytes in, frames out,
 * no sockets. Owns the protocol-header check at connection start (spec 4.2.2), frame boundaries
 * (spec 4.2.3: type octet, channel short, size long, payload, frame-end 206) and the frame-size
 * limit. It does not look inside payloads: methods.ts and content-header.ts do, and the
 * connection layer checks frame order (method, header, bodies) and channel numbers.
 *
 *   0      1         3             7                  7+size
 *   | type | channel | size        | payload ...      | 0xCE |
 *
 * Limits are checked from the 7 header octets, before anything is buffered: a size over
 * maxFrameBytes - 8 (frame_max counts the 8 octets of framing) or an unknown frame type is a
 * FRAME_ERROR at once, so a hostile size never causes an allocation.
 *
 * Memory: a frame that sits whole inside one pushed chunk is handed out as a subarray of that
 * chunk (no copy); only a frame spanning chunks is copied, into a buffer of exactly its size.
 * Payloads therefore share memory with the caller's chunk: copy one to keep it long after.
 */
import {
  FRAME_END,
  FRAME_HEADER_BYTES,
  FRAME_MIN_SIZE_BYTES,
  FRAME_OVERHEAD_BYTES,
  FrameType,
  PROTOCOL_HEADER,
} from './constants.js';
import { AmqpProtocolError, ProtocolHeaderMismatchError } from './errors.js';
import { ReplyCode } from './reply-codes.js';
import { invariant } from '../../engine/common/assert.js';

/** Receives what the decoder finds. A throw from a handler ends the push: discard the decoder then. */
export interface FrameHandler {
  /** The 8 octets "AMQP 0 0 9 1" arrived: the server may now send connection.start. */
  onProtocolHeader(): void;
  /** One complete frame. `payload` is valid until the chunk it came from is reused by the caller. */
  onFrame(type: FrameType, channelId: number, payload: Buffer): void;
}

export interface FrameDecoderOptions {
  /**
   * Largest whole frame accepted, framing included (the negotiated frame_max). Before
   * connection.tune-ok use FRAME_MIN_SIZE_BYTES (4096), as RabbitMQ does.
   */
  maxFrameBytes: number;
  /** Expect the protocol header first (a server connection); false to start at frames. */
  expectProtocolHeader?: boolean;
}

const enum State {
  ProtocolHeader,
  FrameHeader,
  FramePayload,
  Failed,
}

export class FrameDecoder {
  private state: State;
  private maxPayloadBytes = 0;
  private maxFrameBytesValue = 0;
  /** Header octets of the frame (or protocol header) being assembled across chunks. */
  private readonly headerScratch = Buffer.alloc(PROTOCOL_HEADER.length);
  private headerFilledBytes = 0;
  private frameType: FrameType = FrameType.Method;
  private frameChannelId = 0;
  /** Copy of a frame spanning chunks: payload plus the frame-end octet. */
  private partial: Buffer | undefined;
  private partialFilledBytes = 0;
  private failure: AmqpProtocolError | undefined;

  constructor(
    private readonly handler: FrameHandler,
    options: FrameDecoderOptions,
  ) {
    this.setMaxFrameBytes(options.maxFrameBytes);
    this.state = options.expectProtocolHeader === false ? State.FrameHeader : State.ProtocolHeader;
  }

  /** The frame-size limit in force, framing included. */
  get maxFrameBytes(): number {
    return this.maxFrameBytesValue;
  }

  /** Apply a newly negotiated frame_max (after connection.tune-ok); applies from the next frame. */
  setMaxFrameBytes(maxFrameBytes: number): void {
    invariant(
      Number.isInteger(maxFrameBytes) && maxFrameBytes >= FRAME_MIN_SIZE_BYTES && maxFrameBytes <= 0xffffffff,
      `maxFrameBytes must be an integer in [${FRAME_MIN_SIZE_BYTES}, 2^32-1], got ${maxFrameBytes}`,
    );
    this.maxFrameBytesValue = maxFrameBytes;
    this.maxPayloadBytes = maxFrameBytes - FRAME_OVERHEAD_BYTES;
  }

  /** Bytes held for an incomplete frame (header octets plus any partial payload copy). */
  get bufferedBytes(): number {
    return this.headerFilledBytes + (this.partial === undefined ? 0 : this.partialFilledBytes);
  }

  /**
   * Feed bytes as they arrive. Calls the handler for each complete frame; throws
   * ProtocolHeaderMismatchError for a wrong protocol header and AmqpProtocolError FRAME_ERROR for a
   * bad frame. After any throw (the decoder's or a handler's) the decoder is failed and every later
   * push throws again.
   */
  push(chunk: Buffer): void {
    if (this.failure !== undefined) throw this.failure;
    try {
      this.consume(chunk);
    } catch (err) {
      if (this.state !== State.Failed) {
        // A handler threw mid-chunk: the rest of the chunk is lost, so no later byte can be framed.
        this.state = State.Failed;
        this.partial = undefined;
        this.failure =
          err instanceof AmqpProtocolError
            ? err
            : new AmqpProtocolError(ReplyCode.InternalError, 'frame handler failed', { cause: err });
      }
      throw err;
    }
  }

  private consume(chunk: Buffer): void {
    let position = 0;
    const length = chunk.length;
    if (this.state === State.ProtocolHeader) {
      position = this.consumeProtocolHeader(chunk);
      if (this.state === State.ProtocolHeader) return;
      this.handler.onProtocolHeader();
    }
    while (position < length) {
      if (this.state === State.FrameHeader) {
        if (this.headerFilledBytes === 0 && length - position >= FRAME_HEADER_BYTES) {
          // Fast path: the whole 7-octet header is in this chunk.
          const type = chunk[position] as number;
          const channelId = chunk.readUInt16BE(position + 1);
          const size = chunk.readUInt32BE(position + 3);
          this.checkFrameHeader(type, channelId, size);
          const endAt = position + FRAME_HEADER_BYTES + size;
          if (endAt < length) {
            // The whole frame is here: hand out a view, no copy.
            const frameEnd = chunk[endAt] as number;
            if (frameEnd !== FRAME_END) this.fail(badFrameEnd(frameEnd, type, channelId, size));
            const payload = chunk.subarray(position + FRAME_HEADER_BYTES, endAt);
            position = endAt + 1;
            this.handler.onFrame(type as FrameType, channelId, payload);
            continue;
          }
          position += FRAME_HEADER_BYTES;
          this.beginPartial(type, channelId, size);
          continue;
        }
        // Slow path: the header is split across chunks (maybe across more than two).
        const take = Math.min(FRAME_HEADER_BYTES - this.headerFilledBytes, length - position);
        chunk.copy(this.headerScratch, this.headerFilledBytes, position, position + take);
        this.headerFilledBytes += take;
        position += take;
        if (this.headerFilledBytes < FRAME_HEADER_BYTES) return;
        this.headerFilledBytes = 0;
        const type = this.headerScratch[0] as number;
        const channelId = this.headerScratch.readUInt16BE(1);
        const size = this.headerScratch.readUInt32BE(3);
        this.checkFrameHeader(type, channelId, size);
        this.beginPartial(type, channelId, size);
      } else {
        position = this.consumePartial(chunk, position);
      }
    }
  }

  /** Returns the position after the header octets taken from this chunk. */
  private consumeProtocolHeader(chunk: Buffer): number {
    const expected = PROTOCOL_HEADER.length;
    let position = 0;
    while (position < chunk.length && this.headerFilledBytes < expected) {
      const byte = chunk[position] as number;
      this.headerScratch[this.headerFilledBytes++] = byte;
      position++;
      // Answer at the first wrong octet: an HTTP or TLS client learns at once, without waiting.
      if (byte !== PROTOCOL_HEADER[this.headerFilledBytes - 1]) {
        const received = Buffer.from(this.headerScratch.subarray(0, this.headerFilledBytes));
        this.fail(new ProtocolHeaderMismatchError(received));
      }
    }
    if (this.headerFilledBytes === expected) {
      this.headerFilledBytes = 0;
      this.state = State.FrameHeader;
    }
    return position;
  }

  private checkFrameHeader(type: number, channelId: number, size: number): void {
    if (size > this.maxPayloadBytes) {
      this.fail(
        new AmqpProtocolError(
          ReplyCode.FrameError,
          `frame of type ${type} on channel ${channelId} has a ${size}-byte payload; ` +
            `negotiated frame_max ${this.maxFrameBytesValue} allows ${this.maxPayloadBytes}`,
        ),
      );
    }
    if (
      type !== FrameType.Method &&
      type !== FrameType.Header &&
      type !== FrameType.Body &&
      type !== FrameType.Heartbeat
    ) {
      this.fail(new AmqpProtocolError(ReplyCode.FrameError, `unknown frame type ${type} on channel ${channelId}`));
    }
  }

  private beginPartial(type: number, channelId: number, size: number): void {
    this.frameType = type as FrameType;
    this.frameChannelId = channelId;
    // Exactly this frame's size, already checked against maxFrameBytes; a fresh buffer per frame so
    // payloads handed out earlier are never overwritten.
    this.partial = Buffer.allocUnsafe(size + 1);
    this.partialFilledBytes = 0;
    this.state = State.FramePayload;
  }

  private consumePartial(chunk: Buffer, position: number): number {
    const partial = this.partial;
    invariant(partial !== undefined, 'payload state without a partial buffer');
    const take = Math.min(partial.length - this.partialFilledBytes, chunk.length - position);
    chunk.copy(partial, this.partialFilledBytes, position, position + take);
    this.partialFilledBytes += take;
    position += take;
    if (this.partialFilledBytes < partial.length) return position;
    const size = partial.length - 1;
    const frameEnd = partial[size] as number;
    if (frameEnd !== FRAME_END) this.fail(badFrameEnd(frameEnd, this.frameType, this.frameChannelId, size));
    this.partial = undefined;
    this.partialFilledBytes = 0;
    this.state = State.FrameHeader;
    this.handler.onFrame(this.frameType, this.frameChannelId, partial.subarray(0, size));
    return position;
  }

  private fail(error: AmqpProtocolError): never {
    this.state = State.Failed;
    this.failure = error;
    this.partial = undefined;
    throw error;
  }
}

function badFrameEnd(octet: number, type: number, channelId: number, size: number): AmqpProtocolError {
  return new AmqpProtocolError(
    ReplyCode.FrameError,
    `frame-end octet is ${octet}, expected ${FRAME_END} (frame type ${type}, channel ${channelId}, size ${size})`,
  );
}
