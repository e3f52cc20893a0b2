/**
 * Dependencies point inward (style-anchors.md section 2, rule 1): this test reads every import in
 * src/ and fails on one that points outward, e.g. the engine importing an adapter.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
// Works from test/unit/architecture (tsx) and dist/test/unit/architecture (compiled): find the repo root.
const repoRoot = here.includes(`${join('dist', 'test')}`) ? resolve(here, '../../../..') : resolve(here, '../../..');
const srcRoot = join(repoRoot, 'src');

/** Which folders each folder may import from (besides itself and node built-ins / packages). */
const allowed: Record<string, string[]> = {
  'engine/common': [],
  'engine/store': ['engine/common'],
  'engine/remoting': ['engine/common'],
  'engine/namesrv': ['engine/common', 'engine/remoting'],
  'engine/broker': ['engine/common', 'engine/store', 'engine/remoting'],
  'engine/client': ['engine/common', 'engine/remoting'],
  'adapters/mqtt': ['engine/client', 'engine/common'],
  'adapters/amqp': ['engine/client', 'engine/common'],
  'adapters/websocket': ['engine/client', 'engine/common'],
  'adapters/http': ['engine/client', 'engine/common', 'adapters/mqtt', 'adapters/websocket'],
  cli: ['*'],
};

function folderOf(file: string): string {
  const parts = relative(srcRoot, file).split('/');
  return parts[0] === 'cli' ? 'cli' : `${parts[0]}/${parts[1]}`;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

const IMPORT_PATTERN = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+'(\.[^']+)'/g;

describe('import direction', () => {
  it('no module imports a layer it may not depend on', () => {
    const violations: string[] = [];
    const files = sourceFiles(srcRoot);
    assert.ok(files.length > 5, 'source files found');
    for (const file of files) {
      const from = folderOf(file);
      const rules = allowed[from];
      assert.ok(rules !== undefined, `folder ${from} has no import rule; add one`);
      if (rules.includes('*')) continue;
      const text = readFileSync(file, 'utf8');
      for (const match of text.matchAll(IMPORT_PATTERN)) {
        const target = folderOf(resolve(dirname(file), match[1] ?? ''));
        if (target === from || rules.includes(target)) continue;
        // The in-process transport alone may reach the broker and NameServer entry points.
        if (from === 'engine/client' && file.endsWith('transport-in-process.ts')) continue;
        violations.push(`${relative(repoRoot, file)} imports ${match[1]} (${target})`);
      }
    }
    assert.deepEqual(violations, []);
  });
});
