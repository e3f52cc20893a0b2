/**
 * Errors of the AMQP protocol layer. AmqpProtocolError is what bad input from a peer becomes: it
 * carries the reply code to answer with, the class/method ids of the offending method (0 when none)
 * and whether the answer is connection.close or channel.close. AmqpEncodeError is a value this
 * server cannot put on the wire (a short string over 255 bytes, an unsupported table value); it
 * is our own data's fault, not the peer's, so it carries no reply code.
 */
import { PROTOCOL_HEADER } from './constants.js';
import { ReplyCode, replyCodeInfo, type ReplyScope } from './reply-codes.js';

/** Reply texts are short strings: at most 255 bytes (spec 4.2.5.3). */
const MAX_REPLY_TEXT_BYTES = 255;

export interface AmqpProtocolErrorOptions {
  /** Class of the method that caused the error, 0 when the error is not about a method. */
  readonly classId?: number;
  readonly methodId?: number;
  /** Override the scope implied by the reply code, e.g. 403 during connection.open closes the connection. */
  readonly scope?: 'channel' | 'connection';
  readonly cause?: unknown;
}

/**
 * A protocol violation by the peer, or a refusal the protocol expresses with a reply code.
 * `scope` says what to close: `connection` -> send connection.close on channel 0, `channel` ->
 * send channel.close on the channel the offending frame arrived on.
 */
export class AmqpProtocolError extends Error {
  override readonly name: string = 'AmqpProtocolError';
  readonly replyCode: ReplyCode;
  readonly classId: number;
  readonly methodId: number;
  readonly scope: 'channel' | 'connection';

  constructor(replyCode: ReplyCode, message: string, options: AmqpProtocolErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.replyCode = replyCode;
    this.classId = options.classId ?? 0;
    this.methodId = options.methodId ?? 0;
    this.scope = options.scope ?? scopeOf(replyCode);
  }

  /** True when the connection must be closed (hard error), false when only the channel is. */
  get closesConnection(): boolean {
    return this.scope === 'connection';
  }

  /** RabbitMQ-style reply text, e.g. "FRAME_ERROR - bad frame end octet 0", cut to 255 bytes. */
  get replyText(): string {
    const name = replyCodeInfo(this.replyCode)?.name ?? String(this.replyCode);
    return truncateUtf8(`${name} - ${this.message}`, MAX_REPLY_TEXT_BYTES);
  }

  /** The same error with the ids of the method it concerns (decoders learn them late). */
  withMethod(classId: number, methodId: number): AmqpProtocolError {
    if (this.classId === classId && this.methodId === methodId) return this;
    return new AmqpProtocolError(this.replyCode, this.message, { classId, methodId, scope: this.scope, cause: this });
  }
}

/**
 * The first octets did not read "AMQP 0 0 9 1". Spec 4.2.2: the server answers with the protocol
 * header it does support (`reply`) and closes the socket; no connection.close is sent because no
 * connection exists yet.
 */
export class ProtocolHeaderMismatchError extends AmqpProtocolError {
  override readonly name = 'ProtocolHeaderMismatchError';
  /** Bytes to write back before closing: the header of the protocol we speak. */
  readonly reply: Buffer = PROTOCOL_HEADER;

  constructor(readonly received: Buffer) {
    super(ReplyCode.FrameError, `bad protocol header ${received.toString('hex')}; expected AMQP 0-9-1`, {
      scope: 'connection',
    });
  }
}

/** A value this server cannot encode (our data, not the peer's): the caller decides what to do. */
export class AmqpEncodeError extends Error {
  override readonly name = 'AmqpEncodeError';
  readonly code = 'RB_ERR_AMQP_ENCODE';
}

function scopeOf(code: ReplyCode): 'channel' | 'connection' {
  const scope: ReplyScope | undefined = replyCodeInfo(code)?.scope;
  return scope === 'channel' ? 'channel' : 'connection';
}

/** Cut a string to at most maxBytes of UTF-8 without splitting a character. */
export function truncateUtf8(text: string, maxBytes: number): string {
  if (text.length <= maxBytes && Buffer.byteLength(text, 'utf8') <= maxBytes) return text;
  const bytes = Buffer.from(text, 'utf8');
  let end = maxBytes;
  // Step back over continuation bytes (10xxxxxx) so the cut lands on a character boundary.
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--;
  return bytes.toString('utf8', 0, end);
}
