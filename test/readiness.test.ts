/**
 * A first start: /healthz answers 200 as soon as the port is open, /readyz only once the
 * hierarchy exists and data/admin-token is written — so a script that waits for /readyz (as
 * the README's quick start does) can read the token. Polled from the moment the process is
 * spawned, on a real `signet serve` (SQLite, or PostgreSQL under SIGNET_TEST_POSTGRES).
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

test('on a first start /readyz answers 200 only once data/admin-token is written, /healthz before', { timeout: 120_000 }, async () => {
  const env = await createTestEnv();
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const tokenFile = join(env.dataDir, 'admin-token');
  const child = spawn(process.execPath, [BIN, 'serve'], { env: childEnv({ ...env.env, SIGNET_PORT: String(port) }), stdio: 'ignore' });
  const exited = new Promise((r) => child.on('exit', r));
  try {
    let healthyBeforeReady = false;
    for (const deadline = Date.now() + 90_000; ; ) {
      assert.ok(Date.now() < deadline, 'not ready within 90 s');
      assert.equal(child.exitCode, null, 'signet serve exited');
      // The token file's presence is read before /readyz is asked: a 200 seen after an absent
      // file would only mean it appeared in between.
      const had = existsSync(tokenFile) && readFileSync(tokenFile, 'utf8').trim().length > 0;
      const [ready, healthy] = await Promise.all([status(`${base}/readyz`), status(`${base}/healthz`)]);
      if (ready === 200) {
        // Written before the process could answer ready: visible now, complete.
        assert.match(readFileSync(tokenFile, 'utf8'), /^\S{20,}\n$/);
        break;
      }
      assert.ok(ready === 0 || ready === 503, `/readyz answered ${ready}`);
      if (healthy === 200 && !had) healthyBeforeReady = true;
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.ok(healthyBeforeReady, '/healthz answered 200 while the token did not exist yet (what /readyz is for)');
  } finally {
    child.kill('SIGTERM');
    await exited;
    await env.cleanup();
  }
});
