/**
 * Attack round 2, finding 8: `signet token create --expires-in-days 1e9` exited 1 with a raw
 * database error quoting the row (its keyed secret hash and grant MAC). The expiry is judged
 * where tokens are made (ca/tokens.ts), for the CLI and the API alike: one line, exit 2.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { api, signet, startServer, type RunningServer } from './helpers/cli.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';

let env: TestEnv;
before(async () => {
  env = await createTestEnv();
  assert.equal(signet(['init'], env.env).status, 0);
});
after(async () => {
  await env?.cleanup();
});

test('an expiry past 9999 or not a number is a one-line refusal (exit 2) that quotes nothing stored', () => {
  for (const [days, detail] of [
    ['1e9', /expiresAt must be no later than 9999-12-31T23:59:59Z/],
    ['3000000', /no later than 9999/],
    ['Infinity', /--expires-in-days must be a positive number/],
    ['abc', /positive number/],
    ['0', /positive number/],
  ] as const) {
    const r = signet(['token', 'create', '--name', 'x', '--scopes', 'read', '--expires-in-days', days], env.env);
    assert.equal(r.status, 2, `${days}: ${r.stderr}`);
    assert.match(r.stderr, detail);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.doesNotMatch(r.stderr, /secretHash|grantMac|prisma|invocation/i);
  }
  assert.equal(signet(['token', 'create', '--name', 'ok', '--scopes', 'read', '--expires-in-days', '30'], env.env).status, 0);
});

test('the API refuses the same expiry with 400', async () => {
  let server: RunningServer | undefined;
  try {
    server = await startServer(env.env);
    const r = await api(server, 'POST', '/api/v1/tokens', { name: 'x', scopes: ['read'], expiresAt: '2020-01-01T00:00:00Z' });
    assert.equal(r.status, 400, r.text);
    assert.match(r.json.detail, /expiresAt must be in the future/);
  } finally {
    await server?.stop();
  }
});
