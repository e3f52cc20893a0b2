/**
 * The one error type the frame decoder throws: a stable RbError code plus a named reason, so the
 * connection that fed the bytes can log why and close itself, and nothing else is affected.
 */
import { ErrorCode, RbError } from '../common/errors.js';

export const FrameErrorReason = {
  FrameTooLarge: 'frame too large',
  NegativeLength: 'negative frame length',
  LengthTooSmall: 'frame length too small',
  HeaderLengthTooLarge: 'header length larger than frame',
  UnknownSerializeType: 'unknown serialization type',
  InvalidJsonHeader: 'invalid JSON header',
  HeaderNotObject: 'header not an object',
  InvalidHeaderField: 'invalid header field',
  InvalidBinaryHeader: 'invalid binary header',
} as const;

export type FrameErrorReason = (typeof FrameErrorReason)[keyof typeof FrameErrorReason];

/** A malformed or over-limit remoting frame; `reason` names the rule it broke. */
export class FrameError extends RbError {
  constructor(
    readonly reason: FrameErrorReason,
    detail: string,
  ) {
    super(
      reason === FrameErrorReason.FrameTooLarge ? ErrorCode.FrameTooLarge : ErrorCode.FrameInvalid,
      `${reason}: ${detail}`,
    );
  }
}
