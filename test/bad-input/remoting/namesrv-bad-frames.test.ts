import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { NameServer } from '../../../src/engine/namesrv/name-server.js';
import type { RemotingChannel } from '../../../src/engine/remoting/channel.js';
import { CloseReason } from '../../../src/engine/remoting/close-reason.js';
import { RequestCode, ResponseCode } from '../../../src/engine/remoting/codes.js';
import { createRequest, type RemotingCommand } from '../../../src/engine/remoting/command.js';
import { encodeCommand, FrameDecoder } from '../../../src/engine/remoting/frame-codec.js';
import type { TcpChannel } from '../../../src/engine/remoting/tcp-channel.js';
import { RemotingClient } from '../../../src/engine/remoting/tcp-client.js';
import { eventually } from '../../helpers/eventually.js';

const MAX_FRAME_BYTES = 64 * 1024;

/** A raw TCP peer: writes any bytes, collects the frames it gets back, notices when it is closed. */
class RawPeer {
  readonly responses: RemotingCommand[] = [];
  closed = false;
  private readonly decoder = new FrameDecoder();

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.decoder.push(chunk, (command) => this.responses.push(command)));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
    });
  }

  static open(port: number): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port }, () => resolve(new RawPeer(socket)));
      socket.once('error', reject);
    });
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

function frame(serializeType: number, header: Buffer | string, body: Buffer = Buffer.alloc(0)): Buffer {
  const headerBytes = Buffer.from(header);
  const out = Buffer.alloc(8 + headerBytes.length + body.length);
  out.writeInt32BE(4 + headerBytes.length + body.length, 0);
  out.writeUInt32BE(((serializeType << 24) | headerBytes.length) >>> 0, 4);
  headerBytes.copy(out, 8);
  body.copy(out, 8 + headerBytes.length);
  return out;
}

function int32(value: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeInt32BE(value, 0);
  return out;
}

let nameServer: NameServer;
let client: RemotingClient;
const closeReasons: Array<string | undefined> = [];
const peers: RawPeer[] = [];

before(async () => {
  nameServer = new NameServer({ host: '127.0.0.1', port: 0, maxFrameBytes: MAX_FRAME_BYTES });
  await nameServer.start();
  nameServer.onChannelClosed((channel: RemotingChannel) => closeReasons.push((channel as TcpChannel).closeReason));
  client = new RemotingClient();
  // A registered broker gives "a fresh client still gets a route" something to find.
  const body = Buffer.from(
    JSON.stringify({
      topicConfigSerializeWrapper: {
        topicConfigTable: { Alive: { topicName: 'Alive', readQueueNums: 1, writeQueueNums: 1, perm: 6 } },
        dataVersion: { timestamp: 1, counter: 1 },
      },
      filterServerList: [],
    }),
  );
  const registration = createRequest(
    RequestCode.RegisterBroker,
    { brokerName: 'b', brokerAddr: '10.0.0.1:10911', clusterName: 'c', haServerAddr: '', brokerId: '0' },
    body,
  );
  assert.equal((await client.invoke(nameServer.address, registration, 5000)).code, ResponseCode.Success);
});

after(async () => {
  for (const peer of peers) peer.destroy();
  await client.close();
  await nameServer.shutdown();
});

async function openPeer(): Promise<RawPeer> {
  const peer = await RawPeer.open(nameServer.port);
  peers.push(peer);
  return peer;
}

async function assertStillServing(): Promise<void> {
  const fresh = new RemotingClient();
  try {
    const response = await fresh.invoke(
      nameServer.address,
      createRequest(RequestCode.GetRouteInfoByTopic, { topic: 'Alive' }),
      5000,
    );
    assert.equal(response.code, ResponseCode.Success);
  } finally {
    await fresh.close();
  }
}

/** Sends bytes that break the protocol and expects the server to close that connection only. */
async function expectClosed(bytes: Buffer[], reason: string): Promise<void> {
  const reasonsBefore = closeReasons.length;
  const peer = await openPeer();
  for (const part of bytes) peer.write(part);
  await eventually(() => peer.closed, { timeoutMs: 3000 });
  await eventually(() => closeReasons.length > reasonsBefore, { timeoutMs: 3000 });
  assert.equal(closeReasons.at(-1), reason);
  await assertStillServing();
}

describe('NameServer facing bad remoting input', () => {
  it('closes a connection that announces a frame length too small to hold a header', async () => {
    await expectClosed([int32(2), Buffer.alloc(2)], CloseReason.ParseError);
  });

  it('closes a connection that announces a negative frame length', async () => {
    await expectClosed([int32(-5)], CloseReason.ParseError);
  });

  it('closes a connection that announces a frame over maxFrameBytes before receiving it', async () => {
    await expectClosed([int32(MAX_FRAME_BYTES * 100)], CloseReason.FrameTooLarge);
  });

  it('closes a connection that sends text instead of frames', async () => {
    await expectClosed([Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')], CloseReason.FrameTooLarge);
  });

  it('closes a connection whose JSON header does not parse', async () => {
    await expectClosed([frame(0, '{"code":105,"opaque":')], CloseReason.ParseError);
  });

  it('closes a connection whose header is JSON but not an object', async () => {
    await expectClosed([frame(0, '[105]')], CloseReason.ParseError);
  });

  it('closes a connection whose header has no code', async () => {
    await expectClosed([frame(0, '{"opaque":1,"flag":0}')], CloseReason.ParseError);
  });

  it('closes a connection whose header length is larger than the frame', async () => {
    const bytes = frame(0, '{"code":105,"opaque":1,"flag":0}');
    bytes.writeUInt32BE(500, 4);
    await expectClosed([bytes], CloseReason.ParseError);
  });

  it('closes a connection that names an unknown serialization type', async () => {
    await expectClosed([frame(7, '{"code":105,"opaque":1,"flag":0}')], CloseReason.ParseError);
  });

  it('closes a connection whose binary header lengths overrun the header', async () => {
    await expectClosed([frame(1, Buffer.alloc(25, 0xff))], CloseReason.ParseError);
  });

  it('forgets a truncated frame when the client closes mid-frame', async () => {
    const reasonsBefore = closeReasons.length;
    const peer = await openPeer();
    const whole = encodeCommand(createRequest(RequestCode.GetRouteInfoByTopic, { topic: 'Alive' }));
    peer.write(whole.subarray(0, whole.length - 3));
    peer.end();
    await eventually(() => peer.closed && closeReasons.length > reasonsBefore, { timeoutMs: 3000 });
    assert.equal(closeReasons.at(-1), CloseReason.ClientClosed);
    assert.deepEqual(peer.responses, []);
    await assertStillServing();
  });

  it('answers an unknown request code with REQUEST_CODE_NOT_SUPPORTED and keeps the connection', async () => {
    const peer = await openPeer();
    const unknown = createRequest(4242);
    peer.write(encodeCommand(unknown));
    await eventually(() => peer.responses.length === 1);
    assert.equal(peer.responses[0]?.code, ResponseCode.RequestCodeNotSupported);
    assert.equal(peer.responses[0]?.opaque, unknown.opaque);
    peer.write(encodeCommand(createRequest(RequestCode.GetRouteInfoByTopic, { topic: 'Alive' })));
    await eventually(() => peer.responses.length === 2);
    assert.equal(peer.responses[1]?.code, ResponseCode.Success);
    assert.equal(peer.closed, false);
  });

  it('answers a request missing a required header field with an error naming the field', async () => {
    const peer = await openPeer();
    peer.write(encodeCommand(createRequest(RequestCode.GetRouteInfoByTopic, {})));
    peer.write(encodeCommand(createRequest(RequestCode.RegisterBroker, { brokerName: 'x', clusterName: 'c' })));
    peer.write(
      encodeCommand(
        createRequest(RequestCode.RegisterBroker, {
          brokerName: 'x',
          clusterName: 'c',
          brokerAddr: '10.0.0.3:10911',
          brokerId: 'zero',
        }),
      ),
    );
    await eventually(() => peer.responses.length === 3);
    for (const response of peer.responses) assert.equal(response.code, ResponseCode.SystemError);
    assert.match(peer.responses[0]?.remark ?? '', /"topic"/);
    assert.match(peer.responses[1]?.remark ?? '', /"brokerAddr"/);
    assert.match(peer.responses[2]?.remark ?? '', /"brokerId"/);
    assert.equal(peer.closed, false);
    await assertStillServing();
  });

  it('answers a registration with a malformed body with an error and registers nothing', async () => {
    const peer = await openPeer();
    const request = createRequest(
      RequestCode.RegisterBroker,
      { brokerName: 'bad', clusterName: 'c', brokerAddr: '10.0.0.4:10911', brokerId: '0' },
      Buffer.from('{"topicConfigSerializeWrapper":{"topicConfigTable":{"T":{"readQueueNums":"x"}}}}'),
    );
    peer.write(encodeCommand(request));
    await eventually(() => peer.responses.length === 1);
    assert.equal(peer.responses[0]?.code, ResponseCode.SystemError);
    assert.match(peer.responses[0]?.remark ?? '', /readQueueNums/);
    assert.ok(!nameServer.routes.liveBrokerAddrs().includes('10.0.0.4:10911'));
  });

  it('keeps other connections working while one sends garbage', async () => {
    const good = await openPeer();
    const bad = await openPeer();
    bad.write(int32(-1));
    good.write(encodeCommand(createRequest(RequestCode.GetRouteInfoByTopic, { topic: 'Alive' })));
    await eventually(() => bad.closed && good.responses.length === 1);
    assert.equal(good.responses[0]?.code, ResponseCode.Success);
    assert.equal(good.closed, false);
  });
});
