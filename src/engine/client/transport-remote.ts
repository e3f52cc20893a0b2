/**
 * Transport over TCP: RocketMQ remoting frames through the shared RemotingClient, one connection per
 * server address, reconnecting on demand.
 */
import { ProcessorRegistry } from '../remoting/channel.js';
import type { RemotingCommand } from '../remoting/command.js';
import { RemotingClient } from '../remoting/tcp-client.js';
import type { Transport } from './transport.js';

export interface RemoteTransportOptions {
  /** Handles requests the servers send; a fresh registry when omitted. */
  registry?: ProcessorRegistry;
  connectTimeoutMs?: number;
  maxFrameBytes?: number;
}

/** A Transport that reaches every address over TCP. */
export class RemoteTransport implements Transport {
  readonly registry: ProcessorRegistry;
  private readonly client: RemotingClient;

  constructor(options: RemoteTransportOptions = {}) {
    this.registry = options.registry ?? new ProcessorRegistry();
    const clientOptions: { registry: ProcessorRegistry; connectTimeoutMs?: number; maxFrameBytes?: number } = {
      registry: this.registry,
    };
    if (options.connectTimeoutMs !== undefined) clientOptions.connectTimeoutMs = options.connectTimeoutMs;
    if (options.maxFrameBytes !== undefined) clientOptions.maxFrameBytes = options.maxFrameBytes;
    this.client = new RemotingClient(clientOptions);
  }

  invoke(address: string, request: RemotingCommand, timeoutMs: number): Promise<RemotingCommand> {
    return this.client.invoke(address, request, timeoutMs);
  }

  invokeOneway(address: string, request: RemotingCommand): Promise<void> {
    return this.client.invokeOneway(address, request);
  }

  close(): Promise<void> {
    return this.client.close();
  }
}
