/**
 * Request-level failures of the broker's processors. A processor throws RequestError for anything the
 * client got wrong (a missing header field, an unknown topic); the broker turns it into a remoting
 * response with the RocketMQ ResponseCode and the remark, and nothing stored changes.
 */
import { ResponseCode } from '../remoting/codes.js';

export class RequestError extends Error {
  override readonly name = 'RequestError';
  constructor(
    /** The RocketMQ ResponseCode to answer with. */
    readonly responseCode: number,
    message: string,
  ) {
    super(message);
  }
}

/** RocketMQ answers header decoding problems with SYSTEM_ERROR (RemotingCommandException). */
export function badHeader(message: string): RequestError {
  return new RequestError(ResponseCode.SystemError, message);
}
