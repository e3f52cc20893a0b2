/**
 * The WebSocket front end's error catalog: the stable `code` of every `error` frame, the WebSocket
 * close codes it uses, and the mapping from engine errors (RbError codes) to frame codes. Clients
 * may switch on these codes; they never change meaning.
 */
import { ErrorCode, isRbError } from '../../engine/common/errors.js';

/** Codes of `{type: "error"}` frames (docs/websocket.md lists what each means). */
export const WsErrorCode = {
  /** A text frame that is not JSON, or JSON that is not an object. */
  BadJson: 'RB_WS_BAD_JSON',
  /** A binary frame whose header length or header is malformed. */
  BadFrame: 'RB_WS_BAD_FRAME',
  /** A `type` the server does not know. */
  UnknownType: 'RB_WS_UNKNOWN_TYPE',
  /** A missing, unknown or ill-typed field; the message names it. */
  BadRequest: 'RB_WS_BAD_REQUEST',
  /** A request other than `hello`/`ping` before `hello`. */
  NotAuthenticated: 'RB_WS_NOT_AUTHENTICATED',
  /** Wrong credentials, or anonymous access when it is not allowed. */
  AuthFailed: 'RB_WS_AUTH_FAILED',
  /** A second `hello` on one connection. */
  AlreadyAuthenticated: 'RB_WS_ALREADY_AUTHENTICATED',
  /** The topic name is not a valid RocketMQ topic name. */
  TopicInvalid: 'RB_WS_TOPIC_INVALID',
  /** The tag expression does not parse. */
  SubscriptionInvalid: 'RB_WS_SUBSCRIPTION_INVALID',
  /** The body or properties are over the engine's limits. */
  MessageTooLarge: 'RB_WS_MESSAGE_TOO_LARGE',
  /** The engine refused the message as built (e.g. bad delay). */
  MessageIllegal: 'RB_WS_MESSAGE_ILLEGAL',
  /** The connection already has `maxSubscriptions` subscriptions. */
  TooManySubscriptions: 'RB_WS_TOO_MANY_SUBSCRIPTIONS',
  /** A subscriptionId already in use on this connection. */
  DuplicateSubscription: 'RB_WS_DUPLICATE_SUBSCRIPTION',
  /** A subscriptionId this connection does not have. */
  UnknownSubscription: 'RB_WS_UNKNOWN_SUBSCRIPTION',
  /** An ack/nack for a messageId not outstanding on this connection (already settled, lease over, or never sent). */
  UnknownMessage: 'RB_WS_UNKNOWN_MESSAGE',
  /** A credit grant that is negative, fractional, or would exceed maxCreditPerSubscription. */
  CreditInvalid: 'RB_WS_CREDIT_INVALID',
  /** The broker could not be reached or refused the request; the request may be retried. */
  Unavailable: 'RB_WS_UNAVAILABLE',
  /** Anything else (logged on the server with details). */
  Internal: 'RB_WS_INTERNAL',
} as const;

export type WsErrorCode = (typeof WsErrorCode)[keyof typeof WsErrorCode];

/** WebSocket close codes used (RFC 6455 section 7.4.1). */
export const CloseCode = {
  Normal: 1000,
  GoingAway: 1001,
  /** Too many protocol errors on one connection. */
  ProtocolError: 1002,
  /** Authentication failed, `hello` missing or late, or requests before `hello`. */
  PolicyViolation: 1008,
  /** A frame over maxPayloadBytes (ws closes with this code itself). */
  MessageTooBig: 1009,
  /** The server is at maxConnections. */
  TryAgainLater: 1013,
} as const;

/** An error to report to the client as an `error` frame. */
export class WsError extends Error {
  override readonly name = 'WsError';
  constructor(
    readonly code: WsErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** The frame code for an error thrown by the engine client. */
export function wsCodeOf(err: unknown): WsErrorCode {
  if (err instanceof WsError) return err.code;
  if (!isRbError(err)) return WsErrorCode.Internal;
  switch (err.code) {
    case ErrorCode.TopicInvalid:
      return WsErrorCode.TopicInvalid;
    case ErrorCode.SubscriptionInvalid:
      return WsErrorCode.SubscriptionInvalid;
    case ErrorCode.MessageTooLarge:
    case ErrorCode.PropertiesTooLarge:
      return WsErrorCode.MessageTooLarge;
    case ErrorCode.MessageIllegal:
      return WsErrorCode.MessageIllegal;
    case ErrorCode.RequestTimeout:
    case ErrorCode.ConnectionClosed:
    case ErrorCode.RemoteError:
    case ErrorCode.NoRoute:
    case ErrorCode.TopicNotExist:
    case ErrorCode.FlushTimeout:
    case ErrorCode.StoreReadOnly:
    case ErrorCode.StoreClosed:
    case ErrorCode.StoreWriteFailed:
      return WsErrorCode.Unavailable;
    default:
      return WsErrorCode.Internal;
  }
}
