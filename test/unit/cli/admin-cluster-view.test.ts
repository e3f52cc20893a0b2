/**
 * The rules behind `rocketbridge admin cluster`'s rows, for the cases a live cluster rarely shows:
 * a master that does not answer, a master reporting its HA connections or not, brokers without a
 * role key, and --namesrv parsing.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  buildClusterView,
  parseNamesrvArg,
  renderClusterTable,
  type RuntimeAnswer,
} from '../../../src/cli/admin-command.js';
import type { BrokerSummary } from '../../../src/engine/client/admin-client.js';

const NS = ['127.0.0.1:9876'];

function broker(brokerName: string, brokerId: number, port: number): BrokerSummary {
  return { clusterName: 'c1', brokerName, brokerId, address: `127.0.0.1:${port}` };
}

function info(fields: Record<string, string | number>): RuntimeAnswer {
  return { info: Object.fromEntries(Object.entries(fields).map(([key, value]) => [key, String(value)])) };
}

describe('admin cluster view', () => {
  it('uses the master-reported HA figures when present', () => {
    const view = buildClusterView(
      NS,
      [broker('a', 0, 1), broker('a', 1, 2)],
      [
        info({
          brokerRole: 'SYNC_MASTER',
          commitLogMinOffset: 0,
          commitLogMaxOffset: 1000,
          haSlaveCount: 1,
          haSlaveAckedOffset: 900,
        }),
        info({ brokerRole: 'SLAVE', commitLogMinOffset: 0, commitLogMaxOffset: 850 }),
      ],
    );
    const [master, slave] = view.brokers;
    assert.equal(master?.role, 'SYNC_MASTER');
    assert.equal(master?.slaveCount, 1);
    assert.equal(master?.unconfirmedBytes, 100);
    assert.equal(master?.replicationFrom, 'master');
    assert.equal(slave?.lagBytes, 150);
    assert.equal(slave?.replicationFrom, null);
  });

  it('gives null unconfirmed bytes when the master has no confirming slave', () => {
    const view = buildClusterView(
      NS,
      [broker('a', 0, 1)],
      [info({ brokerRole: 'ASYNC_MASTER', commitLogMaxOffset: 10, haSlaveCount: 0, haSlaveAckedOffset: -1 })],
    );
    assert.equal(view.brokers[0]?.slaveCount, 0);
    assert.equal(view.brokers[0]?.unconfirmedBytes, null);
    assert.match(renderClusterTable(view), /ASYNC_MASTER .* 0 slaves\n$/);
  });

  it('works the master figures out from reachable slaves when the master does not report them', () => {
    const view = buildClusterView(
      NS,
      [broker('a', 0, 1), broker('a', 1, 2), broker('a', 2, 3), broker('b', 1, 4)],
      [
        info({ commitLogMaxOffset: 1000 }),
        info({ commitLogMaxOffset: 700 }),
        { error: 'connect ECONNREFUSED' },
        info({ commitLogMaxOffset: 5 }),
      ],
    );
    const [master, slave1, slave2, orphan] = view.brokers;
    // No brokerRole key: the id decides.
    assert.equal(master?.role, 'MASTER');
    assert.equal(master?.replicationFrom, 'slaves');
    assert.equal(master?.slaveCount, 1);
    assert.equal(master?.unconfirmedBytes, 300);
    assert.equal(slave1?.role, 'SLAVE');
    assert.equal(slave1?.lagBytes, 300);
    assert.equal(slave2?.reachable, false);
    assert.equal(slave2?.error, 'connect ECONNREFUSED');
    assert.equal(slave2?.lagBytes, null);
    // A slave whose master is not registered: lag unknown, not zero.
    assert.equal(orphan?.lagBytes, null);
    const table = renderClusterTable(view);
    assert.match(table, /1 slave, 300 B unconfirmed\*/);
    assert.match(table, /UNREACHABLE .*unreachable: connect ECONNREFUSED/);
    assert.match(table, /master unknown/);
    assert.match(table, /^\* worked out from the slaves/m);
  });

  it('leaves a slave lag unknown when its master does not answer, and never negative', () => {
    const down = buildClusterView(
      NS,
      [broker('a', 0, 1), broker('a', 1, 2)],
      [{ error: 'timeout' }, info({ commitLogMaxOffset: 7 })],
    );
    assert.equal(down.brokers[1]?.lagBytes, null);
    const ahead = buildClusterView(
      NS,
      [broker('a', 0, 1), broker('a', 1, 2)],
      [info({ commitLogMaxOffset: 5 }), info({ commitLogMaxOffset: 7 })],
    );
    assert.equal(ahead.brokers[1]?.lagBytes, 0);
  });

  it('sorts rows by cluster, broker name and id, and says so when there are no brokers', () => {
    const view = buildClusterView(
      NS,
      [broker('b', 0, 1), broker('a', 1, 2), broker('a', 0, 3)],
      [info({}), info({}), info({})],
    );
    assert.deepEqual(
      view.brokers.map((row) => `${row.brokerName}/${row.brokerId}`),
      ['a/0', 'a/1', 'b/0'],
    );
    assert.equal(renderClusterTable(buildClusterView(NS, [], [])), 'No brokers registered with 127.0.0.1:9876.\n');
  });

  it('parses --namesrv lists and names the first bad entry', () => {
    assert.deepEqual(parseNamesrvArg(['a:1;b:2', ' c:3 ']), ['a:1', 'b:2', 'c:3']);
    assert.deepEqual(parseNamesrvArg(['[::1]:9876']), ['[::1]:9876']);
    assert.throws(() => parseNamesrvArg([';']), /needs at least one host:port/);
    assert.throws(() => parseNamesrvArg(['a:1;nope']), /"nope" is not host:port/);
    assert.throws(() => parseNamesrvArg(['a:0']), /"a:0" is not host:port with a port/);
    assert.throws(() => parseNamesrvArg(['a:']), /"a:" is not host:port/);
    assert.throws(() => parseNamesrvArg([':9876']), /":9876" is not host:port/);
  });
});
