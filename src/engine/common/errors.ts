/**
 * The engine's error catalog. Every error a caller can see carries a stable `code`
 * (`RB_ERR_...`) so that the remoting layer and the front ends can map it to their own replies.
 */
export const ErrorCode = {
  TopicInvalid: 'RB_ERR_TOPIC_INVALID',
  MessageTooLarge: 'RB_ERR_MESSAGE_TOO_LARGE',
  MessageIllegal: 'RB_ERR_MESSAGE_ILLEGAL',
  PropertiesTooLarge: 'RB_ERR_PROPERTIES_TOO_LARGE',
  StoreReadOnly: 'RB_ERR_STORE_READ_ONLY',
  StoreClosed: 'RB_ERR_STORE_CLOSED',
  StoreWriteFailed: 'RB_ERR_STORE_WRITE_FAILED',
  FlushTimeout: 'RB_ERR_FLUSH_TIMEOUT',
  CorruptRecord: 'RB_ERR_CORRUPT_RECORD',
  ConfigInvalid: 'RB_ERR_CONFIG_INVALID',
  FrameInvalid: 'RB_ERR_FRAME_INVALID',
  FrameTooLarge: 'RB_ERR_FRAME_TOO_LARGE',
  RequestTimeout: 'RB_ERR_REQUEST_TIMEOUT',
  ConnectionClosed: 'RB_ERR_CONNECTION_CLOSED',
  RemoteError: 'RB_ERR_REMOTE',
  TopicNotExist: 'RB_ERR_TOPIC_NOT_EXIST',
  NoRoute: 'RB_ERR_NO_ROUTE',
  ClientState: 'RB_ERR_CLIENT_STATE',
  RequestHeaderInvalid: 'RB_ERR_REQUEST_HEADER_INVALID',
  SubscriptionInvalid: 'RB_ERR_SUBSCRIPTION_INVALID',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class RbError extends Error {
  override readonly name = 'RbError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isRbError(err: unknown, code?: ErrorCode): err is RbError {
  return err instanceof RbError && (code === undefined || err.code === code);
}
