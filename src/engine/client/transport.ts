/**
 * The seam between the client library and the servers it talks to. The client speaks RocketMQ
 * remoting commands; how they travel (TCP, or a direct call into an in-process NameServer/broker)
 * is the transport's business. Front ends depend on the client API only, never on the transport.
 */
import type { ProcessorRegistry } from '../remoting/channel.js';
import type { RemotingCommand } from '../remoting/command.js';

export interface Transport {
  /** Sends a request to "host:port" and resolves with its response; rejects with RbError on timeout or a lost link. */
  invoke(address: string, request: RemotingCommand, timeoutMs: number): Promise<RemotingCommand>;
  /** Sends a request that gets no response. */
  invokeOneway(address: string, request: RemotingCommand): Promise<void>;
  /**
   * Requests the servers send to this client: NOTIFY_CONSUMER_IDS_CHANGED, CHECK_TRANSACTION_STATE,
   * GET_CONSUMER_RUNNING_INFO. The client instances using the transport register their handlers here.
   */
  readonly registry: ProcessorRegistry;
  /** Closes every link; requests in flight reject. */
  close(): Promise<void>;
}
