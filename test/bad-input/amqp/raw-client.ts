/**
 * A raw AMQP socket for bad-input tests: writes bytes as given, decodes what the server sends with
 * the protocol layer's decoder, and can run the handshake so a test starts from an open connection.
 */
import { connect, type Socket } from 'node:net';
import { FRAME_MIN_SIZE_BYTES, FrameType, PROTOCOL_HEADER } from '../../../src/adapters/amqp/constants.js';
import { FrameDecoder } from '../../../src/adapters/amqp/frame-decoder.js';
import { encodeMethodFrame } from '../../../src/adapters/amqp/frame-writer.js';
import { type AmqpMethod, decodeMethod } from '../../../src/adapters/amqp/methods.js';
import { eventually } from '../../helpers/eventually.js';

export interface Received {
  type: number;
  channelId: number;
  method?: AmqpMethod;
}

export class RawClient {
  readonly frames: Received[] = [];
  readonly raw: Buffer[] = [];
  ended = false;
  private readonly decoder: FrameDecoder;

  private constructor(readonly socket: Socket) {
    this.decoder = new FrameDecoder(
      {
        onProtocolHeader: () => undefined,
        onFrame: (type, channelId, payload) => {
          const frame: Received = { type, channelId };
          if (type === FrameType.Method) frame.method = decodeMethod(Buffer.from(payload));
          this.frames.push(frame);
          // Answer a server close at once, as a real client does.
          if (frame.method?.name === 'connection.close') this.send(0, { name: 'connection.close-ok' });
        },
      },
      { maxFrameBytes: 1024 * 1024, expectProtocolHeader: false },
    );
    socket.on('data', (chunk: Buffer) => {
      this.raw.push(chunk);
      try {
        this.decoder.push(chunk);
      } catch {
        // Not frames (e.g. the protocol header the server answers with): kept in `raw`.
      }
    });
    socket.on('close', () => (this.ended = true));
    socket.on('error', () => undefined);
  }

  static async open(port: number): Promise<RawClient> {
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawClient(socket);
  }

  /** Protocol header, start-ok (PLAIN guest), tune-ok, open: returns once open-ok arrived. */
  static async handshake(port: number, tune: { frameMax?: number; heartbeat?: number } = {}): Promise<RawClient> {
    const client = await RawClient.open(port);
    client.write(PROTOCOL_HEADER);
    await client.waitFor('connection.start');
    client.send(0, {
      name: 'connection.start-ok',
      clientProperties: {},
      mechanism: 'PLAIN',
      response: Buffer.from('\u0000guest\u0000guest'),
      locale: 'en_US',
    });
    const tuneFrame = await client.waitFor('connection.tune');
    const offered = tuneFrame.method as Extract<AmqpMethod, { name: 'connection.tune' }>;
    client.send(0, {
      name: 'connection.tune-ok',
      channelMax: offered.channelMax,
      frameMax: tune.frameMax ?? FRAME_MIN_SIZE_BYTES * 2,
      heartbeat: tune.heartbeat ?? 0,
    });
    client.send(0, { name: 'connection.open', virtualHost: '/', capabilities: '', insist: false });
    await client.waitFor('connection.open-ok');
    return client;
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  send(channelId: number, method: AmqpMethod): void {
    this.socket.write(encodeMethodFrame(channelId, method));
  }

  async openChannel(channelId: number): Promise<void> {
    this.send(channelId, { name: 'channel.open', outOfBand: '' });
    await this.waitFor('channel.open-ok', channelId);
  }

  /** Waits for a method frame by name (and channel), returning the first not yet waited for. */
  async waitFor(name: AmqpMethod['name'], channelId?: number, timeoutMs = 5000): Promise<Received> {
    return eventually(
      () => {
        const at = this.frames.findIndex(
          (f) => f.method?.name === name && (channelId === undefined || f.channelId === channelId),
        );
        if (at < 0)
          throw new Error(`no ${name} yet; got ${this.frames.map((f) => f.method?.name ?? f.type).join(',')}`);
        const [found] = this.frames.splice(at, 1);
        return found as Received;
      },
      { timeoutMs },
    );
  }

  /** The server's connection.close (reply code and text). */
  async connectionClose(): Promise<Extract<AmqpMethod, { name: 'connection.close' }>> {
    const frame = await this.waitFor('connection.close', 0);
    return frame.method as Extract<AmqpMethod, { name: 'connection.close' }>;
  }

  async channelClose(channelId: number): Promise<Extract<AmqpMethod, { name: 'channel.close' }>> {
    const frame = await this.waitFor('channel.close', channelId);
    return frame.method as Extract<AmqpMethod, { name: 'channel.close' }>;
  }

  async waitEnded(timeoutMs = 5000): Promise<void> {
    await eventually(() => this.ended, { timeoutMs });
  }

  destroy(): void {
    this.socket.destroy();
  }
}
