import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Definitions } from '../../../src/adapters/amqp/definitions.js';

function topology(): Definitions {
  const definitions = new Definitions();
  for (const name of ['orders', 'pdfs', 'all']) {
    definitions.queues.set(name, { name, durable: true, exclusive: false, autoDelete: false, arguments: {} });
  }
  const bind = (source: string, destination: string, routingKey: string, args = {}): void => {
    definitions.addBinding({ source, destination, destinationKind: 'queue', routingKey, arguments: args });
  };
  bind('amq.direct', 'orders', 'order.new');
  bind('amq.headers', 'pdfs', '', { 'x-match': 'all', format: 'pdf' });
  bind('amq.fanout', 'all', '');
  return definitions;
}

describe('Definitions routing', () => {
  it('routes the default exchange by queue name without reading headers', () => {
    const definitions = topology();
    const headers = (): never => assert.fail('headers read for the default exchange');
    assert.equal(definitions.routesTo('', 'orders', headers, 'orders'), true);
    assert.equal(definitions.routesTo('', 'orders', headers, 'pdfs'), false);
    assert.equal(definitions.routesTo('', 'missing', headers, 'missing'), false);
    assert.deepEqual([...definitions.route('', 'orders')], ['orders']);
    assert.deepEqual([...definitions.route('', 'missing')], []);
  });

  it('reads a message’s headers only for a headers exchange, and at most once', () => {
    const definitions = topology();
    let reads = 0;
    const headers = (): { format: string } => {
      reads++;
      return { format: 'pdf' };
    };
    assert.equal(definitions.routesTo('amq.direct', 'order.new', headers, 'orders'), true);
    assert.equal(definitions.routesTo('amq.fanout', 'x', headers, 'all'), true);
    assert.equal(reads, 0);
    assert.equal(definitions.routesTo('amq.headers', '', headers, 'pdfs'), true);
    assert.equal(reads, 1);
    assert.equal(
      definitions.routesTo('amq.headers', '', () => ({ format: 'doc' }), 'pdfs'),
      false,
    );
  });
});
