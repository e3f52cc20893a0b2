/**
 * Every way a remoting connection can end, named once (after NATS `ClosedState`) so that logs,
 * tests and monitoring speak of the same reasons.
 */
export const CloseReason = {
  /** The client ended the connection (seen from the server). */
  ClientClosed: 'client closed',
  /** The server ended the connection (seen from the client). */
  ServerClosed: 'server closed',
  /** Our side closed it on purpose (RemotingClient.close, an explicit channel.close). */
  LocalClose: 'closed locally',
  /** The peer sent bytes that are not a remoting frame. */
  ParseError: 'parse error',
  /** The peer announced a frame over maxFrameBytes. */
  FrameTooLarge: 'frame too large',
  /** Nothing was read or written for idleTimeoutMs. */
  Idle: 'idle',
  /** The server is shutting down. */
  ServerShutdown: 'server shutdown',
  /** The server already holds maxConnections connections. */
  MaxConnections: 'max connections',
  /** The peer does not read its responses fast enough and our write buffer passed its limit. */
  SlowPeer: 'slow peer',
  /** The socket failed (reset, broken pipe, ...). */
  SocketError: 'socket error',
  /** The NameServer stopped hearing from the broker on this connection. */
  BrokerExpired: 'broker expired',
} as const;

export type CloseReason = (typeof CloseReason)[keyof typeof CloseReason];
