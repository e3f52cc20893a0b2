/**
 * AMQP 0-9-1 wire constants: the protocol header, frame types, frame-end octet, frame sizes, and the
 * class and method ids of every method the server handles (AMQP 0-9-1 spec, section 4.2 and the
 * class reference; RabbitMQ's extensions connection.blocked/unblocked, exchange.bind/unbind and
 * confirm.*). Reply codes live in reply-codes.ts; method layouts in methods.ts.
 */

/** "AMQP" 0 0 9 1: the 8 octets a client sends first (spec 4.2.2). */
export const PROTOCOL_HEADER: Buffer = Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1]);

/** Frame type octet (spec 4.2.3). RabbitMQ writes 8 for heartbeats (the spec's XML says 8 too). */
export const FrameType = {
  Method: 1,
  Header: 2,
  Body: 3,
  Heartbeat: 8,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

/** The octet that ends every frame; anything else is a FRAME_ERROR (spec 4.2.3). */
export const FRAME_END = 206;
/** type (1) + channel (2) + payload size (4). */
export const FRAME_HEADER_BYTES = 7;
/** Header plus frame-end: frame_max counts these, so a payload holds at most frame_max - 8 bytes. */
export const FRAME_OVERHEAD_BYTES = 8;
/** Smallest frame_max a peer may negotiate; also the limit before connection.tune-ok (spec 4.2.3). */
export const FRAME_MIN_SIZE_BYTES = 4096;
/** Content header payload before the property flags: class-id 2, weight 2, body-size 8. */
export const CONTENT_HEADER_PREFIX_BYTES = 12;

export const ClassId = {
  Connection: 10,
  Channel: 20,
  Access: 30,
  Exchange: 40,
  Queue: 50,
  Basic: 60,
  Confirm: 85,
  Tx: 90,
} as const;
export type ClassId = (typeof ClassId)[keyof typeof ClassId];

export const ConnectionMethodId = {
  Start: 10,
  StartOk: 11,
  Secure: 20,
  SecureOk: 21,
  Tune: 30,
  TuneOk: 31,
  Open: 40,
  OpenOk: 41,
  Close: 50,
  CloseOk: 51,
  Blocked: 60,
  Unblocked: 61,
} as const;

export const ChannelMethodId = {
  Open: 10,
  OpenOk: 11,
  Flow: 20,
  FlowOk: 21,
  Close: 40,
  CloseOk: 41,
} as const;

export const ExchangeMethodId = {
  Declare: 10,
  DeclareOk: 11,
  Delete: 20,
  DeleteOk: 21,
  Bind: 30,
  BindOk: 31,
  Unbind: 40,
  /** 51, not 41: RabbitMQ's extension skips a number here, and every client follows it. */
  UnbindOk: 51,
} as const;

export const QueueMethodId = {
  Declare: 10,
  DeclareOk: 11,
  Bind: 20,
  BindOk: 21,
  Purge: 30,
  PurgeOk: 31,
  Delete: 40,
  DeleteOk: 41,
  Unbind: 50,
  UnbindOk: 51,
} as const;

export const BasicMethodId = {
  Qos: 10,
  QosOk: 11,
  Consume: 20,
  ConsumeOk: 21,
  Cancel: 30,
  CancelOk: 31,
  Publish: 40,
  Return: 50,
  Deliver: 60,
  Get: 70,
  GetOk: 71,
  GetEmpty: 72,
  Ack: 80,
  Reject: 90,
  RecoverAsync: 100,
  Recover: 110,
  RecoverOk: 111,
  Nack: 120,
} as const;

export const ConfirmMethodId = {
  Select: 10,
  SelectOk: 11,
} as const;

export const TxMethodId = {
  Select: 10,
  SelectOk: 11,
  Commit: 20,
  CommitOk: 21,
  Rollback: 30,
  RollbackOk: 31,
} as const;

/** One number for a (class, method) pair, as the first 4 octets of a method payload read as uint32. */
export function methodKey(classId: number, methodId: number): number {
  return ((classId << 16) | methodId) >>> 0;
}
