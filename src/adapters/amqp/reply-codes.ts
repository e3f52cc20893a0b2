/**
 * AMQP 0-9-1 reply codes (spec "constants": soft errors close a channel, hard errors close the
 * connection). Owns the numbers, their names and their scope; errors.ts builds errors from them.
 */

export const ReplyCode = {
  ReplySuccess: 200,
  ContentTooLarge: 311,
  NoRoute: 312,
  NoConsumers: 313,
  ConnectionForced: 320,
  InvalidPath: 402,
  AccessRefused: 403,
  NotFound: 404,
  ResourceLocked: 405,
  PreconditionFailed: 406,
  FrameError: 501,
  SyntaxError: 502,
  CommandInvalid: 503,
  ChannelError: 504,
  UnexpectedFrame: 505,
  ResourceError: 506,
  NotAllowed: 530,
  NotImplemented: 540,
  InternalError: 541,
} as const;
export type ReplyCode = (typeof ReplyCode)[keyof typeof ReplyCode];

/**
 * What a reply code closes when sent as an error: `channel` (soft error, channel.close),
 * `connection` (hard error, connection.close), or `none` for 200, which reports success.
 */
export type ReplyScope = 'channel' | 'connection' | 'none';

export interface ReplyCodeInfo {
  readonly code: ReplyCode;
  /** The spec's name in RabbitMQ's spelling, used as the prefix of reply texts ("NOT_FOUND - ..."). */
  readonly name: string;
  readonly scope: ReplyScope;
}

const INFOS: readonly ReplyCodeInfo[] = [
  { code: 200, name: 'REPLY_SUCCESS', scope: 'none' },
  { code: 311, name: 'CONTENT_TOO_LARGE', scope: 'channel' },
  { code: 312, name: 'NO_ROUTE', scope: 'channel' },
  { code: 313, name: 'NO_CONSUMERS', scope: 'channel' },
  { code: 320, name: 'CONNECTION_FORCED', scope: 'connection' },
  { code: 402, name: 'INVALID_PATH', scope: 'connection' },
  { code: 403, name: 'ACCESS_REFUSED', scope: 'channel' },
  { code: 404, name: 'NOT_FOUND', scope: 'channel' },
  { code: 405, name: 'RESOURCE_LOCKED', scope: 'channel' },
  { code: 406, name: 'PRECONDITION_FAILED', scope: 'channel' },
  { code: 501, name: 'FRAME_ERROR', scope: 'connection' },
  { code: 502, name: 'SYNTAX_ERROR', scope: 'connection' },
  { code: 503, name: 'COMMAND_INVALID', scope: 'connection' },
  { code: 504, name: 'CHANNEL_ERROR', scope: 'connection' },
  { code: 505, name: 'UNEXPECTED_FRAME', scope: 'connection' },
  { code: 506, name: 'RESOURCE_ERROR', scope: 'connection' },
  { code: 530, name: 'NOT_ALLOWED', scope: 'connection' },
  { code: 540, name: 'NOT_IMPLEMENTED', scope: 'connection' },
  { code: 541, name: 'INTERNAL_ERROR', scope: 'connection' },
];

const BY_CODE = new Map<number, ReplyCodeInfo>(INFOS.map((info) => [info.code, info]));

/** Every reply code with its name and scope, in numeric order. */
export function allReplyCodes(): readonly ReplyCodeInfo[] {
  return INFOS;
}

/** Name and scope of a reply code, or undefined for a number the spec does not define. */
export function replyCodeInfo(code: number): ReplyCodeInfo | undefined {
  return BY_CODE.get(code);
}

/** True when the code is a hard error: the peer must close the whole connection. */
export function isConnectionError(code: number): boolean {
  return BY_CODE.get(code)?.scope === 'connection';
}
