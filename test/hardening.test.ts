/**
 * Issue 5, hardening, against real `signet serve` processes (SQLite, or PostgreSQL under
 * SIGNET_TEST_POSTGRES): rate limits per token and per address that refuse a flood without
 * starving anyone else, security headers, header and body limits, slow clients cut off, and
 * no secret — API token, master key, passphrase, CA private key — in any log line or problem
 * response of a full scenario logged at trace level. No test asserts how long anything took.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { api, signet, startServer, type RunningServer } from './helpers/cli.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';
import { TempDir, csrMaker } from './helpers/openssl.js';
import { sql } from './helpers/sql.js';
import { unseal } from '../src/keystore/sealed-key-store.js';

const PROBLEM = 'application/problem+json; charset=utf-8';
const tmp = new TempDir();
after(() => tmp.remove());
const makeCsr = csrMaker(tmp);

const forgedToken = () => `sgt_${randomBytes(32).toString('base64url')}`;
const asServer = (server: RunningServer, token: string) => ({ url: server.url, token });

/** A request from a chosen local address (any of 127.0.0.0/8 reaches the loopback listener). */
function requestFrom(
  localAddress: string,
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { localAddress, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => {
        text += d;
      });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Writes raw bytes on a fresh connection and collects whatever comes back until the server closes it. */
function rawExchange(port: number, data: string): { socket: Socket; closed: Promise<string> } {
  const socket = connect({ port, host: '127.0.0.1' });
  let got = '';
  socket.setEncoding('utf8');
  socket.on('data', (d) => {
    got += d;
  });
  const closed = new Promise<string>((resolve) => {
    socket.on('close', () => resolve(got));
    socket.on('error', () => undefined); // a reset also counts as cut off
  });
  socket.on('connect', () => socket.write(data));
  return { socket, closed };
}

/** Resolves with the value, or rejects after `ms` naming what never happened (a bound, not an assertion on time). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      t = setTimeout(() => reject(new Error(`${what} did not happen`)), ms);
    }),
  ]).finally(() => clearTimeout(t));
}

function assertRateLimited(r: { status: number; headers: Headers; json: any; text: string }, identifier: 'token' | 'address', limit: number) {
  assert.equal(r.status, 429, r.text);
  assert.equal(r.headers.get('content-type'), PROBLEM);
  assert.equal(r.json.type, 'https://signet.dev/problems/rate-limited');
  assert.equal(r.json.status, 429);
  assert.equal(r.json.detail, `too many requests from this ${identifier}: at most ${limit} per minute; retry after the Retry-After delay`);
  const retry = r.headers.get('retry-after');
  assert.match(retry ?? '', /^\d+$/, 'Retry-After is a number of seconds');
  assert.ok(Number(retry) > 0 && Number(retry) <= 60, `Retry-After ${retry}`);
}

async function auditCount(env: TestEnv): Promise<number> {
  const [r] = await sql(env, `SELECT COUNT(*) AS n FROM "AuditEvent" WHERE action = 'request.refused'`);
  return Number(r.n);
}

describe('rate limits and HTTP hardening', { concurrency: false }, () => {
  let env: TestEnv;
  let server: RunningServer;
  let intId: string;
  // A client that sends headers and 10 of 100 body bytes, then nothing: opened first so the
  // server's request timeout runs while the other tests do.
  let slowBody: { socket: Socket; closed: Promise<string> };
  let slowHeaders: { socket: Socket; closed: Promise<string> };

  before(async () => {
    env = await createTestEnv({ SIGNET_RATE_LIMIT_PER_TOKEN: '30' });
    server = await startServer(env.env);
    intId = (await api(server, 'GET', '/api/v1/cas')).json.items.find((c: any) => c.parentId !== null).id;
    slowBody = rawExchange(
      server.port,
      `POST /api/v1/certificates HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${server.token}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"csr": "x`,
    );
    slowHeaders = rawExchange(server.port, 'GET /api/v1/cas HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
  });
  after(async () => {
    slowBody?.socket.destroy();
    slowHeaders?.socket.destroy();
    await server?.stop();
    await env?.cleanup();
  });

  test('a flood from one token gets 429 problems with Retry-After; another token on the same endpoint still gets 200', async () => {
    const flooder = (await api(server, 'POST', '/api/v1/tokens', { name: 'flooder', scopes: ['read'] })).json.token as string;
    const other = (await api(server, 'POST', '/api/v1/tokens', { name: 'bystander', scopes: ['read'] })).json.token as string;
    const refusedBefore = await auditCount(env);
    let ok = 0;
    let limited: Awaited<ReturnType<typeof api>> | undefined;
    for (let batch = 0; batch < 20 && !limited; batch++) {
      const replies = await Promise.all(Array.from({ length: 10 }, () => api(asServer(server, flooder), 'GET', '/api/v1/profiles')));
      for (const r of replies) {
        if (r.status === 200) ok++;
        else if (!limited) limited = r;
        else assert.equal(r.status, 429, r.text);
      }
    }
    assert.ok(limited, 'the flood was limited');
    assertRateLimited(limited, 'token', 30);
    assert.ok(ok >= 1 && ok <= 60, `${ok} requests got through before the limit (at most 30 a window)`);
    // Not starved: a second token on the same endpoint, and the admin token elsewhere.
    const bystander = await api(asServer(server, other), 'GET', '/api/v1/profiles');
    assert.equal(bystander.status, 200, bystander.text);
    assert.equal((await api(server, 'GET', '/api/v1/cas')).status, 200);
    // The limit is on the token, not the route, and is checked before any database work.
    const elsewhere = await api(asServer(server, flooder), 'GET', '/api/v1/cas');
    assertRateLimited(elsewhere, 'token', 30);
    assert.equal(await auditCount(env), refusedBefore, 'a flood costs no audit writes');
    // The public endpoints are not limited.
    assert.equal((await fetch(`${server.url}/healthz`, { headers: { authorization: `Bearer ${flooder}` } })).status, 200);
    assert.equal((await fetch(`${server.url}/pki/${intId}.crt`)).status, 200);
  });

  test('a per-address limit refuses a flood of forged tokens from one address; another address is served', async () => {
    const aenv = await createTestEnv({ SIGNET_RATE_LIMIT_PER_ADDRESS: '20' });
    const aserver = await startServer(aenv.env);
    try {
      let limited: Awaited<ReturnType<typeof api>> | undefined;
      let answered = 0;
      for (let batch = 0; batch < 20 && !limited; batch++) {
        // Every request with a different forged token: a per-token limit alone would not see a flood.
        const replies = await Promise.all(Array.from({ length: 10 }, () => api(asServer(aserver, forgedToken()), 'GET', '/api/v1/cas')));
        for (const r of replies) {
          if (r.status === 401) answered++;
          else if (!limited) limited = r;
          else assert.equal(r.status, 429, r.text);
        }
      }
      assert.ok(limited, 'the flood was limited');
      assertRateLimited(limited, 'address', 20);
      assert.ok(answered >= 1 && answered <= 40, `${answered} answered before the limit`);
      // The flooding address is limited even with a good token; another address is not.
      assertRateLimited(await api(aserver, 'GET', '/api/v1/cas'), 'address', 20);
      const fromElsewhere = await requestFrom('127.0.0.2', `${aserver.url}/api/v1/cas`, { authorization: `Bearer ${aserver.token}` });
      assert.equal(fromElsewhere.status, 200, fromElsewhere.text);
      assert.equal((await fetch(`${aserver.url}/healthz`)).status, 200, 'health is never limited');
    } finally {
      await aserver.stop();
      await aenv.cleanup();
    }
  });

  test('IPv6 clients are limited per /56 (behind a trusted proxy): rotating addresses inside it does not escape', async () => {
    const aenv = await createTestEnv({ SIGNET_RATE_LIMIT_PER_ADDRESS: '20', SIGNET_TRUST_PROXY: 'on' });
    const aserver = await startServer(aenv.env);
    try {
      assert.doesNotMatch(aserver.stdout() + aserver.stderr(), /ValidationError|ERR_ERL_/, 'no rate-limit configuration warning at start');
      const from = (ip: string) => api(aserver, 'GET', '/api/v1/cas', undefined, { 'x-forwarded-for': ip });
      const statuses: number[] = [];
      // 30 different addresses, all inside 2001:db8:0:ab00::/56.
      for (let i = 0; i < 30; i++) statuses.push((await from(`2001:db8:0:ab${i.toString(16).padStart(2, '0')}::${i + 1}`)).status);
      assert.equal(statuses.filter((s) => s === 200).length, 20, statuses.join(','));
      assert.ok(
        statuses.slice(20).every((s) => s === 429),
        statuses.join(','),
      );
      assert.equal((await from('2001:db8:1::1')).status, 200, 'another /56 keeps its own budget');
    } finally {
      await aserver.stop();
      await aenv.cleanup();
    }
  });

  test('security headers on successes, problems and public endpoints; no x-powered-by', async () => {
    const replies = [
      ['GET /healthz', await fetch(`${server.url}/healthz`)],
      ['GET /api/v1/cas', await fetch(`${server.url}/api/v1/cas`, { headers: { authorization: `Bearer ${server.token}` } })],
      ['401', await fetch(`${server.url}/api/v1/cas`)],
      ['404', await fetch(`${server.url}/no/such/route`)],
      [
        '400',
        await fetch(`${server.url}/api/v1/tokens`, {
          method: 'POST',
          headers: { authorization: `Bearer ${server.token}`, 'content-type': 'application/json' },
          body: '{',
        }),
      ],
      ['GET /pki', await fetch(`${server.url}/pki/${intId}.crt`)],
    ] as const;
    for (const [what, r] of replies) {
      assert.equal(r.headers.get('x-content-type-options'), 'nosniff', what);
      const csp = r.headers.get('content-security-policy') ?? '';
      assert.match(csp, /default-src 'none'/, `${what}: ${csp}`);
      assert.match(csp, /frame-ancestors 'none'/, what);
      assert.equal(r.headers.get('x-powered-by'), null, what);
      assert.ok(r.headers.get('referrer-policy'), what);
      await r.arrayBuffer();
    }
    const created = await api(server, 'POST', '/api/v1/tokens', { name: 'cache check', scopes: ['read'] });
    assert.equal(created.status, 201);
    assert.equal(created.headers.get('cache-control'), 'no-store', 'a response carrying a secret is never cached');
  });

  test('POST /api/v1/certificates answers the same through the bare handler and through Express', async () => {
    // A declared length takes the bare issuance handler; a chunked body of the same request is
    // left to Express. Both must issue, with the same status, headers and body shape.
    const body = JSON.stringify({ csr: makeCsr('DNS:same.example.com'), profile: 'server' });
    const post = (chunked: boolean) =>
      new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string }>((resolve, reject) => {
        const req = httpRequest(
          `${server.url}/api/v1/certificates`,
          {
            method: 'POST',
            headers: {
              authorization: `Bearer ${server.token}`,
              'content-type': 'application/json',
              ...(chunked ? {} : { 'content-length': String(Buffer.byteLength(body)) }),
            },
          },
          (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (d) => {
              text += d;
            });
            res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text }));
          },
        );
        req.on('error', reject);
        if (chunked) {
          req.write(body.slice(0, 50));
          req.end(body.slice(50));
        } else req.end(body);
      });
    const bare = await post(false);
    const viaExpress = await post(true);
    assert.equal(viaExpress.headers['transfer-encoding'], undefined, 'a response has a length either way');
    for (const r of [bare, viaExpress]) {
      assert.equal(r.status, 201, r.text);
      const json = JSON.parse(r.text);
      assert.deepEqual(Object.keys(json).sort(), ['caId', 'certificate', 'chain', 'notAfter', 'notBefore', 'profile', 'serial']);
      assert.equal(r.headers.location, `/api/v1/certificates/${json.serial}`);
      assert.equal(r.headers['content-type'], 'application/json; charset=utf-8');
    }
    const securityHeaders = (h: Record<string, string | string[] | undefined>) =>
      Object.fromEntries(
        Object.entries(h).filter(([k]) =>
          /^(content-security-policy|cross-origin-|origin-agent-cluster|referrer-policy|strict-transport-security|x-content-type-options|x-dns-prefetch-control|x-download-options|x-frame-options|x-permitted-cross-domain-policies|x-xss-protection|x-powered-by|ratelimit-policy)/.test(
            k,
          ),
        ),
      );
    assert.deepEqual(securityHeaders(bare.headers), securityHeaders(viaExpress.headers));
    assert.ok(bare.headers['content-security-policy'], 'helmet headers are present');
    for (const r of [bare, viaExpress]) assert.match(String(r.headers.ratelimit), /^limit=30, remaining=\d+, reset=\d+$/);
    // And a refusal: same problem document either way.
    const badBody = JSON.stringify({ csr: makeCsr('DNS:same.example.com'), profile: 'no-such-profile' });
    const refused = await api(server, 'POST', '/api/v1/certificates', badBody);
    assert.equal(refused.status, 400);
    assert.equal(refused.headers.get('content-type'), PROBLEM);
    assert.match(refused.json.detail, /^unknown profile "no-such-profile"; available: /);
    assert.equal(refused.json.instance, '/api/v1/certificates');
  });

  test('issuance and other API calls draw on one per-token budget, whichever handler serves them', async () => {
    const issuer = (await api(server, 'POST', '/api/v1/tokens', { name: 'budget', scopes: ['issue', 'read'] })).json.token as string;
    const csrBody = JSON.stringify({ csr: makeCsr('DNS:budget.example.com'), profile: 'server' });
    // 20 through Express, then issuance (the bare handler) until the limit of 30 bites.
    for (let i = 0; i < 20; i++) assert.equal((await api(asServer(server, issuer), 'GET', '/api/v1/profiles')).status, 200);
    let issued = 0;
    let limited: Awaited<ReturnType<typeof api>> | undefined;
    for (let i = 0; i < 15 && !limited; i++) {
      const r = await api(asServer(server, issuer), 'POST', '/api/v1/certificates', csrBody);
      if (r.status === 201) {
        issued++;
        assert.match(r.headers.get('ratelimit') ?? '', /^limit=30, remaining=\d+, reset=\d+$/);
      } else limited = r;
    }
    assert.equal(issued, 10, 'the budget of 30 had 10 left after 20 reads');
    assert.ok(limited, 'the 31st request was limited');
    assertRateLimited(limited, 'token', 30);
    // ... and the budget spent on issuance is gone for Express routes too.
    assertRateLimited(await api(asServer(server, issuer), 'GET', '/api/v1/profiles'), 'token', 30);
  });

  test('issuance records the client address, through a trusted proxy only when SIGNET_TRUST_PROXY is on', async () => {
    const body = (name: string) => JSON.stringify({ csr: makeCsr(`DNS:${name}.example.com`), profile: 'server' });
    const issuedFrom = async (env2: TestEnv, serial: string) =>
      (await sql(env2, `SELECT "sourceIp" FROM "AuditEvent" WHERE action = 'certificate.issued' AND target = ?`, [serial]))[0]?.sourceIp;
    // Not trusted (the default): X-Forwarded-For is ignored.
    const direct = await api(server, 'POST', '/api/v1/certificates', body('direct'), { 'x-forwarded-for': '203.0.113.7' });
    assert.equal(direct.status, 201, direct.text);
    assert.match(String(await issuedFrom(env, direct.json.serial)), /^(::ffff:)?127\.0\.0\.1$/);
    const penv = await createTestEnv({ SIGNET_TRUST_PROXY: 'on' });
    const pserver = await startServer(penv.env);
    try {
      const proxied = await api(pserver, 'POST', '/api/v1/certificates', body('proxied'), { 'x-forwarded-for': '203.0.113.7' });
      assert.equal(proxied.status, 201, proxied.text);
      assert.equal(await issuedFrom(penv, proxied.json.serial), '203.0.113.7');
    } finally {
      await pserver.stop();
      await penv.cleanup();
    }
  });

  test('/metrics counts issued and revoked certificates and refused requests, by label', async () => {
    const count = (text: string, name: string, labels: string) => {
      const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && labels.split(',').every((p) => l.includes(p)));
      return line ? Number(line.split(' ').pop()) : 0;
    };
    const before = await (await fetch(`${server.url}/metrics`)).text();
    const issued = await api(server, 'POST', '/api/v1/certificates', { csr: makeCsr('DNS:counted.example.com'), profile: 'server' });
    assert.equal(issued.status, 201, issued.text);
    assert.equal((await api(server, 'POST', `/api/v1/certificates/${issued.json.serial}/revoke`, { reason: 'superseded' })).status, 200);
    assert.equal((await api(asServer(server, forgedToken()), 'GET', '/api/v1/cas')).status, 401);
    assert.equal(
      (await api(asServer(server, forgedToken()), 'POST', '/api/v1/certificates', { csr: makeCsr('DNS:x.example.com'), profile: 'server' })).status,
      401,
    );
    const after = await (await fetch(`${server.url}/metrics`)).text();
    assert.equal(
      count(after, 'signet_certificates_issued_total', 'profile="server"') - count(before, 'signet_certificates_issued_total', 'profile="server"'),
      1,
    );
    assert.equal(
      count(after, 'signet_certificates_revoked_total', 'reason="superseded"') - count(before, 'signet_certificates_revoked_total', 'reason="superseded"'),
      1,
    );
    assert.equal(
      count(after, 'signet_refusals_total', 'type="unauthorized"') - count(before, 'signet_refusals_total', 'type="unauthorized"'),
      2,
      'both handlers count refusals',
    );
    assert.ok(count(after, 'signet_refusals_total', 'type="rate-limited"') >= 2, 'the earlier floods were counted');
  });

  test('headers over 16 KB are refused with 431, and the server keeps serving', async () => {
    for (const headers of [
      `X-Big: ${'a'.repeat(20 * 1024)}\r\n`,
      Array.from({ length: 300 }, (_, i) => `X-Many-${i}: ${'b'.repeat(60)}\r\n`).join(''),
      `Authorization: Bearer ${'sgt_'.padEnd(20 * 1024, 'c')}\r\n`,
    ]) {
      const { closed } = rawExchange(server.port, `GET /api/v1/cas HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers}\r\n`);
      const reply = await within(closed, 30_000, 'the server answering huge headers');
      assert.match(reply, /^HTTP\/1\.1 431 /, reply.slice(0, 200));
    }
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
    assert.equal((await api(server, 'GET', '/api/v1/cas')).status, 200);
  });

  test('a body over the limit is refused with 413 and stores nothing', async () => {
    const [{ n: before }] = await sql(env, 'SELECT COUNT(*) AS n FROM "Certificate"');
    const r = await api(server, 'POST', '/api/v1/certificates', { csr: 'A'.repeat(200_000), profile: 'server' });
    assert.equal(r.status, 413, r.text);
    assert.equal(r.headers.get('content-type'), PROBLEM);
    assert.match(r.json.detail, /request body exceeds the \d+ byte limit/);
    const [{ n: afterCount }] = await sql(env, 'SELECT COUNT(*) AS n FROM "Certificate"');
    assert.equal(Number(afterCount), Number(before));
    assert.equal((await api(server, 'GET', '/api/v1/cas')).status, 200);
  });

  test('slow clients (a body that never ends, headers that never end) are cut off; others are served meanwhile', async () => {
    const [{ n: before }] = await sql(env, `SELECT COUNT(*) AS n FROM "Certificate"`);
    // Served while both slow clients hold their connections open.
    for (let i = 0; i < 3; i++) {
      assert.equal((await api(server, 'GET', '/api/v1/cas')).status, 200);
      const issued = await api(server, 'POST', '/api/v1/certificates', { csr: makeCsr(`DNS:busy${i}.example.test`), profile: 'server' });
      assert.equal(issued.status, 201, issued.text);
    }
    // Eventually the server closes both; the bound only keeps a broken server from hanging the run.
    const [body, headers] = await within(Promise.all([slowBody.closed, slowHeaders.closed]), 150_000, 'the server cutting off slow clients');
    assert.ok(body === '' || /^HTTP\/1\.1 (408|400) /.test(body), `slow body got: ${body.slice(0, 200)}`);
    assert.ok(headers === '' || /^HTTP\/1\.1 (408|400) /.test(headers), `slow headers got: ${headers.slice(0, 200)}`);
    const [{ n }] = await sql(env, `SELECT COUNT(*) AS n FROM "Certificate"`);
    assert.equal(Number(n), Number(before) + 3, 'the cut-off request stored nothing');
    assert.equal((await api(server, 'GET', '/api/v1/cas')).status, 200, 'still serving');
  });
});

describe('no secrets in logs or problem responses', { concurrency: false }, () => {
  test('a full scenario at trace level: no token, master key, passphrase or CA private key in any log line or error', async () => {
    const env = await createTestEnv({ SIGNET_LOG_LEVEL: 'trace', SIGNET_CRL_COALESCE_MS: '100' });
    let server: RunningServer | undefined;
    try {
      // An offline root, initialised with a passphrase, in the same environment.
      const passphrase = `pp-${randomBytes(18).toString('base64url')}`;
      const ppFile = tmp.file('passphrase.txt', passphrase + '\n');
      const offlineFile = join(tmp.path, 'root-offline.pem');
      const init = signet(['init', '--offline-root', offlineFile, '--offline-root-passphrase-file', ppFile], env.env);
      assert.equal(init.status, 0, init.stderr);
      server = await startServer(env.env);
      const admin = server.token;

      /** Every response body of the scenario, with whether it is the one allowed to carry a secret. */
      const responses: { what: string; text: string; mayHoldSecret?: boolean }[] = [];
      const call = async (what: string, method: string, path: string, auth: string | undefined, body?: string, expect?: number) => {
        const headers: Record<string, string> = {};
        if (auth !== undefined) headers.authorization = auth;
        if (body !== undefined) headers['content-type'] = 'application/json';
        const res = await fetch(server!.url + path, { method, headers, body });
        const text = await res.text();
        if (expect !== undefined) assert.equal(res.status, expect, `${what}: ${text}`);
        responses.push({ what, text, mayHoldSecret: what === 'create token' });
        return text ? (JSON.parse(text) as any) : undefined;
      };
      const bearer = (t: string) => `Bearer ${t}`;

      const created = await call(
        'create token',
        'POST',
        '/api/v1/tokens',
        bearer(admin),
        JSON.stringify({ name: 'scenario', scopes: ['issue', 'renew', 'revoke', 'read'] }),
        201,
      );
      const secret = created.token as string;
      const cert = await call(
        'issue',
        'POST',
        '/api/v1/certificates',
        bearer(secret),
        JSON.stringify({ csr: makeCsr('DNS:scenario.example.test'), profile: 'server' }),
        201,
      );
      const renewed = await call('renew', 'POST', `/api/v1/certificates/${cert.serial}/renew`, bearer(secret), '{}', 201);
      await call('revoke', 'POST', `/api/v1/certificates/${renewed.serial}/revoke`, bearer(secret), JSON.stringify({ reason: 'keyCompromise' }), 200);
      const forged = forgedToken();
      await call('forged token', 'GET', '/api/v1/cas', bearer(forged), undefined, 401);
      const truncated = admin.slice(0, -2);
      await call('truncated admin token', 'GET', '/api/v1/tokens', bearer(truncated), undefined, 401);
      await call('token in a Basic header', 'GET', '/api/v1/cas', `Basic ${secret}`, undefined, 401);
      await call('two tokens', 'GET', '/api/v1/cas', `Bearer ${secret} ${admin}`, undefined, 401);
      await call('wrong scope', 'GET', '/api/v1/audit', bearer(secret), undefined, 403);
      await call('bad JSON', 'POST', '/api/v1/certificates', bearer(secret), `{"csr": "${secret}", "profile": `, 400);
      await call(
        'bad JSON holding a passphrase',
        'POST',
        '/api/v1/cas',
        bearer(admin),
        `{"certificate": "x", "privateKey": "y", "passphrase": "${passphrase}"`,
        400,
      );
      await call('not JSON at all', 'POST', '/api/v1/tokens', bearer(admin), `{${admin}}`, 400);
      await call('a bare token as the body', 'POST', '/api/v1/tokens', bearer(admin), admin, 400);
      await call('a token as a JSON value', 'POST', '/api/v1/tokens', bearer(admin), `{"name": ${secret}}`, 400);
      // A CA import whose key does not match: the key and its passphrase must not come back.
      const importKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
      const importPass = `imp-${randomBytes(18).toString('base64url')}`;
      const importPem = importKey.export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: importPass }) as string;
      const someCa = (await call('read CA', 'GET', '/api/v1/cas', bearer(admin), undefined, 200)).items[0];
      const caPem = (await call('read CA cert', 'GET', `/api/v1/cas/${someCa.id}`, bearer(admin), undefined, 200)).certificate;
      await call(
        'import with a wrong passphrase',
        'POST',
        '/api/v1/cas',
        bearer(admin),
        JSON.stringify({ certificate: caPem, privateKey: importPem, passphrase: `${importPass}-wrong` }),
        400,
      );
      await call(
        'import with a key that does not match',
        'POST',
        '/api/v1/cas',
        bearer(admin),
        JSON.stringify({ certificate: caPem, privateKey: importPem, passphrase: importPass }),
        400,
      );
      await call('revoke the token', 'DELETE', `/api/v1/tokens/${created.id}`, bearer(admin), undefined, 204);
      await call('revoked token', 'GET', '/api/v1/cas', bearer(secret), undefined, 401);
      await call('list tokens', 'GET', '/api/v1/tokens', bearer(admin), undefined, 200);
      await call('audit', 'GET', '/api/v1/audit?limit=1000', bearer(admin), undefined, 200);
      assert.equal(await server.stop(), 0);

      const logs = init.stdout + init.stderr + server.stdout() + server.stderr();
      // The grep is only meaningful if the scenario was logged in detail.
      // (Signet writes nothing below debug, so trace shows as debug lines.)
      assert.ok(/"level":20,/.test(logs), 'debug lines were written');
      assert.ok(/"url":"\/api\/v1\/certificates"/.test(logs), 'requests were logged');
      assert.ok(/the bearer token is unknown/.test(logs) && /request body is not valid JSON/.test(logs), 'refusals were logged');

      // The secrets, in every form they could leak in.
      const secrets: [string, string][] = [
        ['admin token', admin],
        ['created token', secret],
        ['forged token', forged],
        ['truncated admin token', truncated],
        ['created token without prefix', secret.slice(4)],
        ['admin token without prefix', admin.slice(4)],
        ['offline root passphrase', passphrase],
        ['import passphrase', importPass],
      ];
      const masterB64 = readFileSync(join(env.dataDir, 'master.key'), 'utf8').trim();
      const kek = Buffer.from(masterB64, 'base64');
      assert.equal(kek.length, 32);
      secrets.push(['master key (base64)', masterB64], ['master key (hex)', kek.toString('hex')], ['master key (base64url)', kek.toString('base64url')]);
      const keyForms = (what: string, key: KeyObject) => {
        const der = key.export({ format: 'der', type: 'pkcs8' });
        const b64 = der.toString('base64');
        const d = Buffer.from((key.export({ format: 'jwk' }) as { d: string }).d, 'base64url');
        secrets.push(
          [`${what} PKCS#8 (base64)`, b64],
          [`${what} PKCS#8 (hex)`, der.toString('hex')],
          [`${what} PKCS#8 (base64url)`, der.toString('base64url')],
          [`${what} PKCS#8 PEM line`, b64.slice(0, 64)],
          [`${what} private scalar (hex)`, d.toString('hex')],
          [`${what} private scalar (base64url)`, d.toString('base64url')],
        );
      };
      const records = await sql<{ id: string; sealed: Uint8Array }>(env, 'SELECT id, sealed FROM "KeyRecord"');
      assert.ok(records.length >= 1, 'the online intermediate key is in the store');
      for (const rec of records) keyForms(`key ${rec.id}`, createPrivateKey({ key: unseal(kek, rec.id, rec.sealed), format: 'der', type: 'pkcs8' }));
      keyForms('offline root key', createPrivateKey({ key: readFileSync(offlineFile, 'utf8'), format: 'pem', passphrase }));
      keyForms('imported key', importKey);
      secrets.push(['encrypted import key PEM', importPem.split('\n')[1]!]);

      for (const [what, value] of secrets) {
        assert.ok(value.length >= 16, `${what} is long enough to grep for`);
        assert.ok(!logs.includes(value), `${what} appears in the logs`);
        for (const r of responses) {
          if (r.mayHoldSecret && secret.includes(value)) continue; // the one place the secret is shown
          assert.ok(!r.text.includes(value), `${what} appears in the response to "${r.what}": ${r.text.slice(0, 300)}`);
        }
      }
      // A JSON syntax error quotes about ten characters of the body; no longer piece of a token
      // may come back or be logged.
      for (const [what, token] of [
        ['admin token', admin],
        ['created token', secret],
        ['forged token', forged],
      ] as const) {
        for (let i = 0; i + 12 <= token.length; i++) {
          const piece = token.slice(i, i + 12);
          assert.ok(!logs.includes(piece), `${what}: ${piece} appears in the logs`);
          for (const r of responses)
            if (!(r.mayHoldSecret && token === secret)) assert.ok(!r.text.includes(piece), `${what}: ${piece} appears in the response to "${r.what}"`);
        }
      }
      assert.ok(responses.find((r) => r.what === 'create token')!.text.includes(secret), 'the secret is shown once, at creation');
      const problems = responses.filter((r) => r.text.startsWith('{"type":"https://signet.dev/problems/'));
      assert.ok(problems.length >= 10, `${problems.length} problem responses were checked`);
    } finally {
      await server?.stop();
      await env.cleanup();
    }
  });
});
