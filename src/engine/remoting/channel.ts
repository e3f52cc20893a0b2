/**
 * The server side of a remoting conversation, independent of how bytes move: a TCP connection and
 * an in-process link both implement RemotingChannel, and both hand requests to a ProcessorRegistry.
 */
import { createLogger } from '../common/logger.js';
import type { RemotingCommand } from './command.js';
import { createResponse, isOneway } from './command.js';
import { ResponseCode } from './codes.js';

export interface RemotingChannel {
  /** Unique per connection for the life of the process. */
  readonly id: string;
  /** The peer as "ip:port". */
  readonly remoteAddress: string;
  readonly closed: boolean;
  /** Sends a request to the peer (e.g. broker -> consumer NOTIFY_CONSUMER_IDS_CHANGED) and waits for its response. */
  invoke(request: RemotingCommand, timeoutMs: number): Promise<RemotingCommand>;
  /** Sends a request that gets no response. */
  invokeOneway(request: RemotingCommand): void;
  onClose(listener: () => void): void;
  close(reason: string): void;
}

export type RequestProcessor = (
  request: RemotingCommand,
  channel: RemotingChannel,
) => Promise<RemotingCommand | undefined> | RemotingCommand | undefined;

const log = createLogger('remoting');

/** Request processors by request code (RocketMQ registerProcessor). */
export class ProcessorRegistry {
  private readonly processors = new Map<number, RequestProcessor>();

  register(code: number, processor: RequestProcessor): this {
    this.processors.set(code, processor);
    return this;
  }

  has(code: number): boolean {
    return this.processors.has(code);
  }

  /**
   * Runs the processor for the request's code. Always yields the response to send (undefined for a
   * oneway request): an unknown code answers REQUEST_CODE_NOT_SUPPORTED and a processor that throws
   * answers SYSTEM_ERROR, so a bad request never takes the connection or the process down.
   */
  async dispatch(request: RemotingCommand, channel: RemotingChannel): Promise<RemotingCommand | undefined> {
    const processor = this.processors.get(request.code);
    let response: RemotingCommand | undefined;
    if (processor === undefined) {
      response = createResponse(
        request,
        ResponseCode.RequestCodeNotSupported,
        `request code ${request.code} not supported`,
      );
    } else {
      try {
        response = await processor(request, channel);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        log.warn({ code: request.code, peer: channel.remoteAddress, err }, 'request processor failed');
        response = createResponse(request, ResponseCode.SystemError, message);
      }
    }
    return isOneway(request) ? undefined : response;
  }
}
