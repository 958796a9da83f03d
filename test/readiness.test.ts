/**
 * A first start: /readyz answers 200 only once the hierarchy exists and data/admin-token is
 * written — so a script that waits for /readyz (as the README's quick start does) can read the
 * token. Polled from the moment the process is spawned, on a real `signet serve` (SQLite, or
 * PostgreSQL under SIGNET_TEST_POSTGRES). /healthz may answer 200 earlier (liveness); whether a
 * poll lands in that window depends on the machine's speed, so it is not asserted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, freePort } from './helpers/cli.js';
import { childEnv, createTestEnv } from './helpers/env.js';

const status = (url: string) =>
  fetch(url).then(
    (r) => r.status,
    () => 0,
  );

test('on a first start /readyz answers 200 only once data/admin-token is written', { timeout: 120_000 }, async () => {
  const env = await createTestEnv();
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const tokenFile = join(env.dataDir, 'admin-token');
  const child = spawn(process.execPath, [BIN, 'serve'], { env: childEnv({ ...env.env, SIGNET_PORT: String(port) }), stdio: 'ignore' });
  const exited = new Promise((r) => child.on('exit', r));
  try {
    for (const deadline = Date.now() + 90_000; ; ) {
      assert.ok(Date.now() < deadline, 'not ready within 90 s');
      assert.equal(child.exitCode, null, 'signet serve exited');
      const ready = await status(`${base}/readyz`);
      if (ready === 200) {
        assert.ok(existsSync(tokenFile), 'ready with the token written');
        // Written before the process could answer ready: visible now, complete.
        assert.match(readFileSync(tokenFile, 'utf8'), /^\S{20,}\n$/);
        break;
      }
      assert.ok(ready === 0 || ready === 503, `/readyz answered ${ready}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.equal(await status(`${base}/healthz`), 200);
  } finally {
    child.kill('SIGTERM');
    await exited;
    await env.cleanup();
  }
});
