/**
 * The http-01 validator's problem details name the URL it fetched with its port, for every
 * outcome — a wrong body as much as a wrong status or no connection — since the port is
 * configurable (SIGNET_ACME_HTTP_PORT) and is the first thing to check when validation fails.
 * A real HTTP server on loopback.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { validateHttp01 } from '../src/acme/validation.js';
import { isSignetError } from '../src/errors.js';
import { freePort } from './helpers/cli.js';

const token = 'tok-abc';
const path = `/.well-known/acme-challenge/${token}`;

async function detailOf(p: Promise<void>): Promise<{ acme?: string; detail: string }> {
  try {
    await p;
  } catch (e) {
    assert.ok(isSignetError(e), String(e));
    return { acme: e.acme, detail: e.detail };
  }
  assert.fail('validation passed');
}

test('http-01 problem details name the port for a wrong body, a wrong status and a refused connection', async () => {
  const server = createServer((req, res) => {
    if (req.url === path) res.end('not-the-key-authorization');
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const settings = { httpPort: port, tlsPort: 443, timeoutMs: 5000 };
  try {
    const wrong = await detailOf(validateHttp01('127.0.0.1', token, `${token}.thumb`, settings));
    assert.equal(wrong.acme, 'incorrectResponse');
    assert.equal(wrong.detail, `http-01: the response at http://127.0.0.1:${port}${path} is not the key authorization`);
    const missing = await detailOf(validateHttp01('127.0.0.1', 'other', 'other.thumb', settings));
    assert.equal(missing.detail, `http-01: GET http://127.0.0.1:${port}/.well-known/acme-challenge/other answered 404`);
  } finally {
    await new Promise((r) => server.close(r));
  }
  const closed = await freePort();
  const refused = await detailOf(validateHttp01('127.0.0.1', token, `${token}.thumb`, { ...settings, httpPort: closed }));
  assert.equal(refused.acme, 'connection');
  assert.match(refused.detail, new RegExp(`port ${closed}: ECONNREFUSED$`));
});
