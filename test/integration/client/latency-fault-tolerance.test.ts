/**
 * The producer's table of broker addresses to avoid (RocketMQ LatencyFaultToleranceImpl), on a
 * clock the test moves by hand.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCode, RbError } from '../../../src/engine/common/errors.js';
import {
  DEFAULT_ISOLATION_MS,
  isUnreachable,
  LatencyFaultTolerance,
} from '../../../src/engine/client/latency-fault-tolerance.js';

function clock(): { now: () => number; advance: (ms: number) => void } {
  let nowMs = 1_000_000;
  return { now: () => nowMs, advance: (ms) => (nowMs += ms) };
}

describe('LatencyFaultTolerance', () => {
  it("maps latencies to RocketMQ's pause table", () => {
    const table = new LatencyFaultTolerance();
    assert.equal(table.notAvailableDuration(0), 0);
    assert.equal(table.notAvailableDuration(99), 0);
    assert.equal(table.notAvailableDuration(549), 0);
    assert.equal(table.notAvailableDuration(550), 30_000);
    assert.equal(table.notAvailableDuration(999), 30_000);
    assert.equal(table.notAvailableDuration(1000), 60_000);
    assert.equal(table.notAvailableDuration(2000), 120_000);
    assert.equal(table.notAvailableDuration(3000), 180_000);
    assert.equal(table.notAvailableDuration(15_000), 600_000);
    assert.equal(table.notAvailableDuration(1e9), 600_000);
  });

  it('isolates an unreachable address for isolationMs, then lets it be tried again', () => {
    const { now, advance } = clock();
    const table = new LatencyFaultTolerance({ isolationMs: 500, now });
    table.update('10.0.0.1:10911', 3, true);
    assert.equal(table.isAvailable('10.0.0.1:10911'), false);
    assert.equal(table.availableAt('10.0.0.1:10911'), now() + 500);
    assert.equal(table.isAvailable('10.0.0.2:10911'), true, 'other addresses are not affected');
    assert.deepEqual(table.unavailable(), ['10.0.0.1:10911']);
    advance(499);
    assert.equal(table.isAvailable('10.0.0.1:10911'), false);
    advance(1);
    assert.equal(table.isAvailable('10.0.0.1:10911'), true);
    assert.equal(table.availableAt('10.0.0.1:10911'), 0);
    assert.deepEqual(table.unavailable(), []);
  });

  it('defaults to a 30 s isolation', () => {
    const { now, advance } = clock();
    const table = new LatencyFaultTolerance({ now });
    table.update('a:1', 0, true);
    advance(DEFAULT_ISOLATION_MS - 1);
    assert.equal(table.isAvailable('a:1'), false);
    advance(1);
    assert.equal(table.isAvailable('a:1'), true);
  });

  it('pauses a slow address by its latency and clears it on a fast answer', () => {
    const { now, advance } = clock();
    const table = new LatencyFaultTolerance({ now });
    table.update('a:1', 1200, false);
    assert.equal(table.isAvailable('a:1'), false);
    advance(59_999);
    assert.equal(table.isAvailable('a:1'), false);
    table.update('a:1', 20, false);
    assert.equal(table.isAvailable('a:1'), true, 'a fast successful send clears the address');
    table.update('a:1', 0, true);
    table.update('a:1', 5, false);
    assert.equal(table.isAvailable('a:1'), true, 'also after an isolation');
  });

  it('takes its own table and rejects tables of different lengths', () => {
    const { now, advance } = clock();
    const table = new LatencyFaultTolerance({ latencyMaxMs: [10, 100], notAvailableDurationMs: [0, 200], now });
    table.update('a:1', 50, false);
    assert.equal(table.isAvailable('a:1'), true);
    table.update('a:1', 150, false);
    assert.equal(table.isAvailable('a:1'), false);
    advance(200);
    assert.equal(table.isAvailable('a:1'), true);
    assert.throws(() => new LatencyFaultTolerance({ latencyMaxMs: [1], notAvailableDurationMs: [1, 2] }), RangeError);
  });

  it('counts lost connections and timeouts as unreachable, refusals not', () => {
    assert.equal(isUnreachable(new RbError(ErrorCode.ConnectionClosed, 'x')), true);
    assert.equal(isUnreachable(new RbError(ErrorCode.RequestTimeout, 'x')), true);
    assert.equal(isUnreachable(new RbError(ErrorCode.RemoteError, 'x')), false);
    assert.equal(isUnreachable(new Error('x')), false);
  });
});
