import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SERVER_NODE_FLAGS } from '../../../src/cli/server-node-flags.js';

const root = fileURLToPath(new URL('../../../', import.meta.url)).replace(/dist\/$/, '');

describe('the node options a server runs with', () => {
  it('are the same in the rocketbridge shebang, npm start and SERVER_NODE_FLAGS', () => {
    const shebang = readFileSync(`${root}src/cli/main.ts`, 'utf8').split('\n')[0];
    assert.equal(shebang, `#!/usr/bin/env -S node ${SERVER_NODE_FLAGS.join(' ')}`);
    const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as { scripts: Record<string, string> };
    assert.equal(pkg.scripts['start'], `node ${SERVER_NODE_FLAGS.join(' ')} dist/src/cli/main.js start`);
  });

  it('are accepted by this node', () => {
    const out = execFileSync(process.execPath, [...SERVER_NODE_FLAGS, '-e', 'process.stdout.write("ok")'], {
      encoding: 'utf8',
    });
    assert.equal(out, 'ok');
  });
});
