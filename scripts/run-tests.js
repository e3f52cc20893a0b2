// Runs the compiled test files (dist/test/**/*.test.js) with node's test runner. Node 20 cannot take
// globs, and given a directory it would also run every helper and child script under test/ as a test.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

function testFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return testFiles(path);
    return entry.name.endsWith('.test.js') ? [path] : [];
  });
}

const roots = process.argv.slice(2);
const files = (roots.length > 0 ? roots : ['dist/test']).flatMap(testFiles).sort();
if (files.length === 0) {
  console.error('run-tests: no test files found; did the build run?');
  process.exit(1);
}
const result = spawnSync(process.execPath, ['--test', '--test-concurrency=2', ...files], { stdio: 'inherit' });
process.exit(result.status ?? 1);
