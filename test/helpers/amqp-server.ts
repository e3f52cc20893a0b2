/**
 * The fixture most AMQP suites share: a test bed (NameServer, broker and AmqpServer, see
 * test/integration/amqp/harness.ts) and one amqplib connection to it, opened before the suite's
 * tests and closed after them.
 */
import { after, before } from 'node:test';
import amqp, { type Channel, type ChannelModel, type ConsumeMessage } from 'amqplib';
import { type AmqpTestBed, startAmqp } from '../integration/amqp/harness.js';
import type { TransportKind } from '../integration/client/cluster.js';

/**
 * Registers the calling suite's before/after hooks (call it inside `describe`) and returns a getter
 * for the connection: it exists once `before` has run, so tests call the getter, not the hook time.
 */
export function amqpConnectionForSuite(kind: TransportKind = 'in-process'): () => ChannelModel {
  let bed: AmqpTestBed;
  let connection: ChannelModel;
  before(async () => {
    bed = await startAmqp(kind);
    connection = await amqp.connect(bed.url);
  });
  after(async () => {
    await connection.close();
    await bed.close();
  });
  return () => connection;
}

/** Consumes `queue` with auto-ack and returns the array its bodies (as strings) are pushed to as they arrive. */
export async function collectBodies(channel: Channel, queue: string): Promise<string[]> {
  const bodies: string[] = [];
  await channel.consume(
    queue,
    (message: ConsumeMessage | null) => {
      if (message !== null) bodies.push(message.content.toString());
    },
    { noAck: true },
  );
  return bodies;
}
