/**
 * A NUL character (U+0000) in any client input is refused with a 400 problem naming where it
 * is, on both databases (PostgreSQL cannot store one in text, and answered 500 before; SQLite
 * stored it): URL paths and queries, JSON bodies of the API and of the bare issuance path, and
 * ACME's JWS protected header and payload. Also ACME's "crit" (RFC 7515 §4.1.11).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { api, startServer, type RunningServer } from './helpers/cli.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';
import { countRows } from './helpers/sql.js';

const b64u = (s: string) => Buffer.from(s).toString('base64url');

describe('NUL characters in client input', () => {
  let env: TestEnv;
  let server: RunningServer;
  before(async () => {
    env = await createTestEnv();
    server = await startServer(env.env);
  });
  after(async () => {
    await server?.stop();
    await env?.cleanup();
  });

  const expect400 = (r: { status: number; headers: Headers; json: any; text: string }, detail: RegExp) => {
    assert.equal(r.status, 400, r.text);
    assert.match(r.headers.get('content-type') ?? '', /^application\/problem\+json/);
    assert.match(r.json.detail, detail);
  };

  test('in a query parameter or a path segment of the API and /pki', async () => {
    for (const path of [
      '/api/v1/certificates?san=%00',
      '/api/v1/certificates?profile=a%00b',
      '/api/v1/audit?action=%00',
      '/api/v1/certificates/ab%00cd',
      '/pki/x%00.crt',
      '/api/v1/cas/%00',
    ]) {
      expect400(await api(server, 'GET', path), /the request URL contains a percent-encoded NUL character \(%00\)/);
    }
  });

  test('in a JSON body: an API route and the bare issuance path; nothing is stored', async () => {
    const tokens = await countRows(env, 'ApiToken');
    expect400(
      await api(server, 'POST', '/api/v1/tokens', { name: 'a\u0000b', scopes: ['read'] }),
      /the request body contains a NUL character \(U\+0000\) at name; no field accepts one/,
    );
    expect400(await api(server, 'POST', '/api/v1/tokens', { name: 'x', scopes: ['read', 're\u0000ad'] }), /at scopes\[1\]/);
    expect400(
      await api(server, 'POST', '/api/v1/certificates', { csr: 'MII\u0000', profile: 'server' }),
      /the request body contains a NUL character \(U\+0000\) at csr/,
    );
    expect400(
      await api(server, 'POST', '/api/v1/certificates', { csr: 'x', profile: 'server', 'a\u0000': 1 }),
      /a NUL character \(U\+0000\) at a key in the body/,
    );
    assert.equal(await countRows(env, 'ApiToken'), tokens, 'nothing stored');
  });

  test('a body nested far deeper than the stack is judged without overflowing it', async () => {
    const deep = '['.repeat(20_000) + '"\\u0000"' + ']'.repeat(20_000);
    const r = await api(server, 'POST', '/api/v1/tokens', `{"name":${deep}}`);
    expect400(r, /a NUL character \(U\+0000\) at name(\[0\])+/);
  });

  test('ACME: in a URL, a protected header (EAB kid) or a payload; and any "crit" header', async () => {
    const post = (path: string, jws: unknown) =>
      fetch(server.url + path, { method: 'POST', headers: { 'content-type': 'application/jose+json' }, body: JSON.stringify(jws) }).then(async (r) => ({
        status: r.status,
        type: r.headers.get('content-type'),
        json: (await r.json()) as any,
      }));
    const jws = (header: object, payload: string) => ({ protected: b64u(JSON.stringify(header)), payload: b64u(payload), signature: b64u('sig') });
    const url = `${server.url}/acme/new-account`;
    const cases: [string, unknown, RegExp][] = [
      ['/acme/order/a%00b', jws({ alg: 'ES256', kid: 'x', nonce: 'n', url }, ''), /the request URL contains a percent-encoded NUL/],
      [
        '/acme/new-account',
        jws({ alg: 'ES256', nonce: 'n', url, kid: 'eab-\u0000' }, '{}'),
        /the JWS protected header contains a NUL character \(U\+0000\) at kid/,
      ],
      [
        '/acme/new-account',
        jws({ alg: 'ES256', nonce: 'n', url, jwk: { kty: 'EC' } }, '{"contact":["mailto:a\\u0000@example.com"]}'),
        /the JWS payload contains a NUL character \(U\+0000\) at contact\[0\]/,
      ],
      [
        '/acme/new-account',
        jws({ alg: 'ES256', nonce: 'n', url, jwk: { kty: 'EC' }, crit: ['foo'], foo: 1 }, '{}'),
        /protected header has "crit", but no critical header parameter is understood here/,
      ],
    ];
    for (const [path, body, detail] of cases) {
      const r = await post(path, body);
      assert.equal(r.status, 400, JSON.stringify(r.json));
      assert.equal(r.json.type, 'urn:ietf:params:acme:error:malformed', JSON.stringify(r.json));
      assert.match(r.json.detail, detail);
    }
  });
});
