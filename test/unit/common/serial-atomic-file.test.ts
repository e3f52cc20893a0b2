import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { SerialAtomicFile } from '../../../src/engine/common/atomic-file.js';

describe('SerialAtomicFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rb-serial-file-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('coalesces a burst of thread-pool writes into the latest content', async () => {
    const file = new SerialAtomicFile(join(dir, 'burst.json'));
    let state = 0;
    let renders = 0;
    const render = (): string => {
      renders++;
      return JSON.stringify({ state });
    };
    const writes: Promise<void>[] = [];
    for (let i = 1; i <= 50; i++) {
      state = i;
      writes.push(file.write(render));
    }
    await Promise.all(writes);
    assert.deepEqual(JSON.parse(readFileSync(file.path, 'utf8')), { state: 50 });
    assert.ok(renders < 50, `a burst is not written 50 times (${renders})`);
    assert.equal(file.busy, false);
  });

  it('never goes back to older content when sync and thread-pool writes mix', async () => {
    const file = new SerialAtomicFile(join(dir, 'mixed.json'));
    let state = 0;
    const render = (): string => JSON.stringify({ state });
    const pending: Promise<void>[] = [];
    for (let i = 1; i <= 40; i++) {
      state = i;
      if (i % 3 === 0) file.writeSync(render());
      else pending.push(file.write(render));
      // Let some thread-pool writes get past their fsync before the next sync write.
      if (i % 7 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all(pending);
    await file.idle();
    assert.deepEqual(JSON.parse(readFileSync(file.path, 'utf8')), { state: 40 });
    assert.equal(existsSync(`${file.path}.tmp.async`), false, 'a superseded temp file is removed');
  });

  it('flushed() waits for the write in flight and resolves at once when nothing is pending', async () => {
    const file = new SerialAtomicFile(join(dir, 'flushed.json'));
    await file.flushed();
    let written = false;
    void file.write(() => 'one').then(() => (written = true));
    await file.flushed();
    assert.equal(written, true);
    assert.equal(readFileSync(file.path, 'utf8'), 'one');
  });

  it('rejects the waiters of a write that fails', async () => {
    const blocker = join(dir, 'not-a-dir');
    new SerialAtomicFile(blocker).writeSync('x');
    const bad = new SerialAtomicFile(join(blocker, 'inner.json'));
    await assert.rejects(bad.write(() => 'y'));
    await bad.idle();
    assert.equal(bad.busy, false);
  });
});
