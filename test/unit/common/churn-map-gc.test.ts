import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';

/**
 * The reason ChurnMap exists (see churn-map.ts): after one full GC, a busy Map keeps promoting its
 * retired hash tables and their entries; a ChurnMap does not. Measured in a child process (it needs
 * --expose-gc) as the bytes scavenges move into the old generation while two live keys churn.
 */
function promotedBytesWhileChurning(kind: 'Map' | 'ChurnMap'): number {
  const script = `
    import { GCProfiler } from 'node:v8';
    import { ChurnMap } from './src/engine/common/churn-map.ts';
    const table = ${kind === 'Map' ? 'new Map()' : 'new ChurnMap()'};
    let key = 0;
    const churn = (rounds) => {
      for (let i = 0; i < rounds; i++) {
        table.set(key, { key, payload: new Array(20).fill(key) });
        if (table.size > 2) table.delete(key - 2);
        key++;
      }
    };
    churn(1000);
    globalThis.gc(); // a mark-compact, as the broker gets from time to time
    const profiler = new GCProfiler();
    profiler.start();
    churn(300000);
    let promoted = 0;
    for (const gc of profiler.stop().statistics) {
      if (gc.gcType !== 'Scavenge') continue;
      const old = (stats) => stats.heapSpaceStatistics.find((space) => space.spaceName === 'old_space').spaceUsedSize;
      promoted += Math.max(0, old(gc.afterGC) - old(gc.beforeGC));
    }
    console.log(promoted);
  `;
  const output = execFileSync(
    process.execPath,
    ['--expose-gc', '--single-threaded-gc', '--import', 'tsx', '--input-type=module', '-e', script],
    { encoding: 'utf8' },
  );
  return Number(output.trim());
}

describe('ChurnMap and the garbage collector', () => {
  it('promotes next to nothing while its keys churn, where a Map promotes megabytes', () => {
    const churnMapBytes = promotedBytesWhileChurning('ChurnMap');
    const mapBytes = promotedBytesWhileChurning('Map');
    assert.ok(churnMapBytes < 1_000_000, `ChurnMap promoted ${churnMapBytes} bytes`);
    assert.ok(mapBytes > 10 * churnMapBytes, `Map promoted ${mapBytes} bytes, ChurnMap ${churnMapBytes}`);
  });
});
