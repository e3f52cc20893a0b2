/**
 * Transport without sockets: `rocketbridge start` binds its NameServer and broker registries into an
 * InProcessNetwork, and an InProcessTransport hands requests for those addresses straight to the
 * registry's dispatch, with an in-process RemotingChannel standing in for the connection (no
 * encoding, no TCP). Requests the server sends back over that channel reach this transport's
 * registry. Addresses not bound in the network fall back to TCP.
 *
 * One transport looks like one connection per server to the broker, so clients that must be told
 * apart by the broker (members of one consumer group) each need their own transport.
 */
import { ErrorCode, RbError } from '../common/errors.js';
import { createLogger } from '../common/logger.js';
import { ProcessorRegistry, type RemotingChannel } from '../remoting/channel.js';
import { markOneway, type RemotingCommand } from '../remoting/command.js';
import { PendingRequests } from '../remoting/pending-requests.js';
import type { Transport } from './transport.js';
import { RemoteTransport } from './transport-remote.js';

const log = createLogger('client-in-process');

/** The registries reachable without TCP, by the address clients know them by ("host:port"). */
export class InProcessNetwork {
  private readonly bindings = new Map<string, ProcessorRegistry>();

  bind(address: string, registry: ProcessorRegistry): void {
    this.bindings.set(address, registry);
  }

  unbind(address: string): void {
    this.bindings.delete(address);
  }

  lookup(address: string): ProcessorRegistry | undefined {
    return this.bindings.get(address);
  }
}

let nextChannelNumber = 1;

/**
 * Copies a command so neither side can change what the other holds (no bytes are encoded). With
 * `shareBody` the body itself is handed over, not copied: see InProcessChannel's `shareRequestBodies`.
 */
function copyCommand(command: RemotingCommand, shareBody: boolean, oneway = false): RemotingCommand {
  const copy: RemotingCommand = {
    code: command.code,
    language: command.language,
    version: command.version,
    opaque: command.opaque,
    flag: command.flag,
    extFields: { ...command.extFields },
    serializeType: command.serializeType,
  };
  if (command.remark !== undefined) copy.remark = command.remark;
  if (command.body !== undefined) copy.body = shareBody ? command.body : Buffer.from(command.body);
  return oneway ? markOneway(copy) : copy;
}

/** One end of an in-process link; `deliver` runs a request at the other end's registry. */
class InProcessChannel implements RemotingChannel {
  readonly id: string;
  private isClosed = false;
  private readonly closeListeners: (() => void)[] = [];
  /** Requests waiting for their response, by a number of this channel's own. */
  private readonly pending = new PendingRequests((code) => `request ${code}`);
  private nextRequestNumber = 1;

  /**
   * `shareRequestBodies`: request bodies go to the other end as they are, which is what TCP does
   * with the bytes the caller hands over (the socket writes the caller's buffer). The client's
   * end does this: what a client sends is its own message data, and the broker reads a request
   * body and stores a copy of it, never writing to it. Responses, and the server's requests to a
   * client, are still copied: their bodies may be views into the store's buffers, which a client
   * (or a user's handler given a message body) must not be able to change.
   */
  constructor(
    readonly remoteAddress: string,
    private readonly deliver: (request: RemotingCommand) => Promise<RemotingCommand | undefined>,
    private readonly shareRequestBodies: boolean,
  ) {
    this.id = `inproc-${nextChannelNumber++}`;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  invoke(request: RemotingCommand, timeoutMs: number): Promise<RemotingCommand> {
    if (this.isClosed) {
      return Promise.reject(new RbError(ErrorCode.ConnectionClosed, `in-process channel ${this.id} is closed`));
    }
    return new Promise<RemotingCommand>((resolve, reject) => {
      const number = this.nextRequestNumber++;
      this.pending.add(number, request.code, timeoutMs, resolve, reject);
      this.deliver(copyCommand(request, this.shareRequestBodies)).then(
        (response) => {
          // Settled already when it timed out or the channel closed.
          if (this.pending.take(number) === undefined) return;
          if (response === undefined) {
            reject(new RbError(ErrorCode.RemoteError, `request ${request.code} got no response`));
          } else {
            resolve(copyCommand(response, false));
          }
        },
        (err: unknown) => {
          if (this.pending.take(number) !== undefined) reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
  }

  invokeOneway(request: RemotingCommand): void {
    if (this.isClosed) return;
    this.deliver(copyCommand(request, this.shareRequestBodies, true)).catch((err: unknown) => {
      log.warn({ err, code: request.code }, 'oneway in-process request failed');
    });
  }

  onClose(listener: () => void): void {
    if (this.isClosed) listener();
    else this.closeListeners.push(listener);
  }

  close(reason: string): void {
    if (this.isClosed) return;
    this.isClosed = true;
    log.debug({ channel: this.id, reason }, 'in-process channel closed');
    this.pending.rejectAll(
      (code) =>
        new RbError(ErrorCode.ConnectionClosed, `in-process channel ${this.id} closed with request ${code} in flight`),
    );
    for (const listener of this.closeListeners.splice(0)) {
      try {
        listener();
      } catch (err) {
        log.warn({ err }, 'channel close listener failed');
      }
    }
  }
}

/** The two channel ends of one client's link to one server. */
interface Link {
  /** What the server sees: requests it sends go to the client's registry. */
  serverSide: InProcessChannel;
  /** What the client's processors see: the server. */
  clientSide: InProcessChannel;
  /** The registry the link leads to; a server restarted under the same address binds a new one. */
  registry: ProcessorRegistry;
}

export interface InProcessTransportOptions {
  /** Used for addresses not bound in the network; a RemoteTransport sharing this registry by default. */
  fallback?: Transport;
}

let nextClientPort = 1;

/** A Transport that calls bound registries directly and everything else over TCP. */
export class InProcessTransport implements Transport {
  readonly registry = new ProcessorRegistry();
  private readonly links = new Map<string, Link>();
  private fallback: Transport | undefined;
  private readonly ownsFallback: boolean;
  private isClosed = false;
  /** The address the servers record for this client, e.g. as a message's born host. */
  readonly localAddress: string;

  constructor(
    private readonly network: InProcessNetwork,
    options: InProcessTransportOptions = {},
  ) {
    this.fallback = options.fallback;
    this.ownsFallback = options.fallback === undefined;
    this.localAddress = `127.0.0.1:${nextClientPort}`;
    nextClientPort = (nextClientPort % 65535) + 1;
  }

  invoke(address: string, request: RemotingCommand, timeoutMs: number): Promise<RemotingCommand> {
    // Not async: the channel's promise is returned as it is, without another promise around it.
    if (this.isClosed) return Promise.reject(this.closedError());
    const registry = this.network.lookup(address);
    if (registry === undefined) return this.fallbackTransport().invoke(address, request, timeoutMs);
    return this.linkTo(address, registry).clientSide.invoke(request, timeoutMs);
  }

  async invokeOneway(address: string, request: RemotingCommand): Promise<void> {
    this.checkOpen();
    const registry = this.network.lookup(address);
    if (registry === undefined) return this.fallbackTransport().invokeOneway(address, request);
    this.linkTo(address, registry).clientSide.invokeOneway(request);
  }

  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    for (const link of this.links.values()) {
      link.serverSide.close('client transport closed');
      link.clientSide.close('client transport closed');
    }
    this.links.clear();
    if (this.fallback !== undefined && this.ownsFallback) await this.fallback.close();
  }

  private checkOpen(): void {
    if (this.isClosed) throw this.closedError();
  }

  private closedError(): RbError {
    return new RbError(ErrorCode.ConnectionClosed, 'in-process transport is closed');
  }

  private fallbackTransport(): Transport {
    this.fallback ??= new RemoteTransport({ registry: this.registry });
    return this.fallback;
  }

  private linkTo(address: string, registry: ProcessorRegistry): Link {
    const existing = this.links.get(address);
    if (existing !== undefined && !existing.serverSide.closed && existing.registry === registry) return existing;
    // A link to a server that went away: the old server sees its client leave, like a dropped connection.
    existing?.serverSide.close('server replaced');
    // The server holds `serverSide`: what it invokes there runs in this transport's registry. The
    // client's requests go through `clientSide` and run in the server's registry.
    const serverSide: InProcessChannel = new InProcessChannel(
      this.localAddress,
      (request) => this.registry.dispatch(request, clientSide),
      false,
    );
    const clientSide: InProcessChannel = new InProcessChannel(
      address,
      (request) => registry.dispatch(request, serverSide),
      true,
    );
    const link: Link = { serverSide, clientSide, registry };
    // If the server closes its end (e.g. it shuts down), the next request opens a fresh link.
    serverSide.onClose(() => {
      if (this.links.get(address) === link) this.links.delete(address);
      clientSide.close('server closed the channel');
    });
    this.links.set(address, link);
    return link;
  }
}
