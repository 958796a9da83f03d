/**
 * Issue 13, one HTTP edge: the three request paths — Express (POST /api/v1/tokens), the bare
 * issuance handler (POST /api/v1/certificates) and the bare OCSP handler — keep one contract,
 * because one module (src/http/edge.ts) implements it. The same kinds of request (success,
 * 400 bad JSON, 401 without and with a bad token, 413, 429, and for OCSP its own 400 and a
 * 404) are sent to each against a real `signet serve` logging at debug (SQLite, or PostgreSQL
 * under SIGNET_TEST_POSTGRES), and every answer must carry: helmet's security headers (an OCSP
 * answer, binary and never rendered, only nosniff); for a problem the problem+json document with WWW-Authenticate on a 401 and Retry-After on a 429;
 * exactly one `request completed` log line naming the request id, method, URL and status at
 * the level its status calls for, plus one `request refused` line for a problem; one more
 * request and latency observation in /metrics, and one more refusal for a problem.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { api, startServer, type RunningServer } from './helpers/cli.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';
import { TempDir, csrMaker } from './helpers/openssl.js';
import { securityHeaders } from '../src/http/security-headers.js';
import { encodeCertId, issuerHashes } from '../src/pki/ocsp.js';
import { sequence } from '../src/pki/der.js';

const PROBLEM = 'application/problem+json; charset=utf-8';
const LIMIT = 20; // per token per minute
const tmp = new TempDir();
after(() => tmp.remove());
const makeCsr = csrMaker(tmp);

interface LogLine {
  level: number;
  msg: string;
  req?: { id?: string; method?: string; url?: string };
  res?: { statusCode?: number };
  responseTime?: unknown;
  problem?: string;
}

interface Case {
  path: 'express' | 'bare issuance' | 'ocsp';
  kind: string;
  method: 'GET' | 'POST';
  url: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array<ArrayBuffer>;
  status: number;
  /** The problem type, when the answer is a problem document. */
  problem?: string;
  wwwAuthenticate?: string;
}

describe('one HTTP edge: Express, the bare issuance handler and OCSP answer to one contract', { concurrency: false }, () => {
  let env: TestEnv;
  let server: RunningServer;
  let ocspRequest: Buffer;
  const cases: Case[] = [];

  const lines = (): LogLine[] =>
    server
      .stderr()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as LogLine);
  const scrape = async () => (await fetch(`${server.url}/metrics`)).text();
  /** Sum of a metric's samples whose labels include all of `labels`, leaving out the /metrics scrapes themselves. */
  const sample = (text: string, name: string, labels: string[]) =>
    text
      .split('\n')
      .filter((l) => l.startsWith(`${name}{`) && !l.includes('route="/metrics"') && labels.every((p) => l.includes(p)))
      .reduce((n, l) => n + Number(l.split(' ').pop()), 0);
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const json = { 'content-type': 'application/json' };
  const forged = () => `sgt_${randomBytes(32).toString('base64url')}`;

  /** A token whose per-token budget is spent, through the path under test (the limit counts on every path). */
  async function spentToken(spend: (token: string) => Promise<Response>): Promise<string> {
    const token = (await api(server, 'POST', '/api/v1/tokens', { name: `spent ${randomBytes(3).toString('hex')}`, scopes: ['issue', 'read'] })).json
      .token as string;
    for (let i = 0; i <= LIMIT; i++) {
      const r = await spend(token);
      await r.arrayBuffer();
      if (r.status === 429) return token;
    }
    throw new Error('the token was never limited');
  }

  before(async () => {
    env = await createTestEnv({ SIGNET_LOG_LEVEL: 'debug', SIGNET_RATE_LIMIT_PER_TOKEN: String(LIMIT), SIGNET_RATE_LIMIT_PER_ADDRESS: '0' });
    server = await startServer(env.env);
    const admin = server.token;
    const big = JSON.stringify({ name: 'x'.repeat(70 * 1024) }); // over the 64 KiB default body limit

    const expressSpent = await spentToken((t) => fetch(`${server.url}/api/v1/profiles`, { headers: bearer(t) }));
    const tokens = '/api/v1/tokens';
    cases.push(
      {
        path: 'express',
        kind: 'success',
        method: 'POST',
        url: tokens,
        headers: { ...bearer(admin), ...json },
        body: JSON.stringify({ name: 'edge', scopes: ['read'] }),
        status: 201,
      },
      {
        path: 'express',
        kind: '400 bad JSON',
        method: 'POST',
        url: tokens,
        headers: { ...bearer(admin), ...json },
        body: '{',
        status: 400,
        problem: 'bad-request',
      },
      {
        path: 'express',
        kind: '401 no token',
        method: 'POST',
        url: tokens,
        headers: json,
        body: '{}',
        status: 401,
        problem: 'unauthorized',
        wwwAuthenticate: 'Bearer realm="signet"',
      },
      {
        path: 'express',
        kind: '401 bad token',
        method: 'POST',
        url: tokens,
        headers: { ...bearer(forged()), ...json },
        body: '{}',
        status: 401,
        problem: 'unauthorized',
        wwwAuthenticate: 'Bearer realm="signet", error="invalid_token"',
      },
      {
        path: 'express',
        kind: '413 too large',
        method: 'POST',
        url: tokens,
        headers: { ...bearer(admin), ...json },
        body: big,
        status: 413,
        problem: 'payload-too-large',
      },
      {
        path: 'express',
        kind: '429',
        method: 'POST',
        url: tokens,
        headers: { ...bearer(expressSpent), ...json },
        body: '{}',
        status: 429,
        problem: 'rate-limited',
      },
    );

    // The bare handler takes a declared length, application/json and a Bearer header (fetch
    // declares the length of a string body); what it leaves to Express is marked so.
    const certs = '/api/v1/certificates';
    const bareSpent = await spentToken((t) => fetch(`${server.url}${certs}`, { method: 'POST', headers: { ...bearer(t), ...json }, body: '{' }));
    cases.push(
      {
        path: 'bare issuance',
        kind: 'success',
        method: 'POST',
        url: certs,
        headers: { ...bearer(admin), ...json },
        body: JSON.stringify({ csr: makeCsr('DNS:edge.example.com'), profile: 'server' }),
        status: 201,
      },
      {
        path: 'bare issuance',
        kind: '400 bad JSON',
        method: 'POST',
        url: certs,
        headers: { ...bearer(admin), ...json },
        body: '{',
        status: 400,
        problem: 'bad-request',
      },
      {
        path: 'bare issuance',
        kind: '401 no token (left to Express)',
        method: 'POST',
        url: certs,
        headers: json,
        body: '{}',
        status: 401,
        problem: 'unauthorized',
        wwwAuthenticate: 'Bearer realm="signet"',
      },
      {
        path: 'bare issuance',
        kind: '401 bad token',
        method: 'POST',
        url: certs,
        headers: { ...bearer(forged()), ...json },
        body: '{}',
        status: 401,
        problem: 'unauthorized',
        wwwAuthenticate: 'Bearer realm="signet", error="invalid_token"',
      },
      {
        path: 'bare issuance',
        kind: '413 too large (declared: left to Express)',
        method: 'POST',
        url: certs,
        headers: { ...bearer(admin), ...json },
        body: big,
        status: 413,
        problem: 'payload-too-large',
      },
      {
        path: 'bare issuance',
        kind: '429',
        method: 'POST',
        url: certs,
        headers: { ...bearer(bareSpent), ...json },
        body: '{',
        status: 429,
        problem: 'rate-limited',
      },
    );

    // OCSP has no tokens and no rate limit: its success, its own 400 (an OCSP malformedRequest
    // answer, not a problem), 413 and 404 problems.
    const cas = (await api(server, 'GET', '/api/v1/cas')).json.items as { id: string; parentId: string | null }[];
    const int = cas.find((c) => c.parentId !== null)!;
    const hashes = issuerHashes(Buffer.from(await (await fetch(`${server.url}/pki/${int.id}.crt`)).arrayBuffer())).sha1;
    const issued = await api(server, 'POST', certs, { csr: makeCsr('DNS:ocsp-edge.example.com'), profile: 'server' });
    assert.equal(issued.status, 201, issued.text);
    const request = sequence(
      sequence(
        sequence(
          sequence(
            encodeCertId({
              hashAlgorithm: 'sha1',
              issuerNameHash: hashes.nameHash,
              issuerKeyHash: hashes.keyHash,
              serial: Buffer.from(issued.json.serial, 'hex'),
            }),
          ),
        ),
      ),
    );
    ocspRequest = request;
    const ocspType = { 'content-type': 'application/ocsp-request' };
    cases.push(
      { path: 'ocsp', kind: 'success (POST)', method: 'POST', url: '/ocsp', headers: ocspType, body: new Uint8Array(request), status: 200 },
      { path: 'ocsp', kind: 'success (GET)', method: 'GET', url: `/ocsp/${encodeURIComponent(request.toString('base64'))}`, status: 200 },
      { path: 'ocsp', kind: '400 malformed request', method: 'GET', url: '/ocsp/!!!', status: 400 },
      {
        path: 'ocsp',
        kind: '413 too large',
        method: 'POST',
        url: '/ocsp',
        headers: ocspType,
        body: new Uint8Array(9 * 1024),
        status: 413,
        problem: 'payload-too-large',
      },
      { path: 'ocsp', kind: '404', method: 'GET', url: '/ocspx', status: 404, problem: 'not-found' },
    );
  });
  after(async () => {
    await server?.stop();
    await env?.cleanup();
  });

  const expectedSecurity = Object.entries(securityHeaders());

  test('the three paths are exercised with every kind of request', () => {
    for (const path of ['express', 'bare issuance', 'ocsp']) assert.ok(cases.filter((c) => c.path === path).length >= 5, path);
  });

  for (const kindOf of ['success', '400', '401', '413', '429', '404']) {
    test(`${kindOf}: same headers, log lines and metrics on every path`, async (t) => {
      const mine = cases.filter((c) => c.kind.startsWith(kindOf));
      assert.ok(mine.length > 0);
      for (const c of mine) {
        await t.test(`${c.path}: ${c.kind}`, async () => {
          const what = `${c.path} ${c.kind}`;
          const id = `edge-${randomBytes(6).toString('hex')}`;
          const before = await scrape();
          const r = await fetch(`${server.url}${c.url}`, { method: c.method, headers: { ...c.headers, 'x-request-id': id }, body: c.body });
          const text = await r.text();
          assert.equal(r.status, c.status, `${what}: ${text}`);

          // Headers.
          if (c.path === 'ocsp' && !c.problem) {
            // An OCSP answer (binary, never rendered): nosniff, none of helmet's document headers.
            assert.equal(r.headers.get('content-type'), 'application/ocsp-response', what);
            for (const [k, v] of expectedSecurity) assert.equal(r.headers.get(k), k === 'x-content-type-options' ? v : null, `${what}: ${k}`);
          } else {
            for (const [k, v] of expectedSecurity) assert.equal(r.headers.get(k), v, `${what}: ${k}`);
          }
          assert.equal(r.headers.get('x-powered-by'), null, what);
          assert.ok(r.headers.get('content-length'), `${what}: a length`);
          if (c.problem) {
            assert.equal(r.headers.get('content-type'), PROBLEM, what);
            const doc = JSON.parse(text);
            assert.equal(doc.type, `https://signet.dev/problems/${c.problem}`, what);
            assert.equal(doc.status, c.status, what);
            assert.equal(typeof doc.title, 'string', what);
            assert.equal(typeof doc.detail, 'string', what);
            assert.equal(typeof doc.instance, 'string', what);
          }
          assert.equal(r.headers.get('www-authenticate'), c.wwwAuthenticate ?? null, `${what}: WWW-Authenticate`);
          assert.equal(r.headers.get('retry-after'), c.status === 429 ? '60' : null, `${what}: Retry-After`);

          // Log lines, found by the request id the client sent.
          const deadline = Date.now() + 10_000;
          let mineLines: LogLine[] = [];
          for (;;) {
            mineLines = lines().filter((l) => l.req?.id === id);
            if (mineLines.some((l) => l.msg === 'request completed')) break;
            assert.ok(Date.now() < deadline, `${what}: no request log line; got ${JSON.stringify(mineLines)}`);
            await new Promise((res) => setTimeout(res, 50));
          }
          const completed = mineLines.filter((l) => l.msg === 'request completed');
          assert.equal(completed.length, 1, `${what}: one request line`);
          const line = completed[0]!;
          assert.deepEqual(line.req, { id, method: c.method, url: c.url }, what);
          assert.deepEqual(line.res, { statusCode: c.status }, what);
          assert.equal(typeof line.responseTime, 'number', what);
          assert.equal(line.level, c.status >= 400 ? 30 : 20, `${what}: info for 4xx, debug for success`);
          const refused = mineLines.filter((l) => l.msg === 'request refused');
          assert.deepEqual(
            refused.map((l) => [l.level, l.problem]),
            c.problem ? [[30, c.problem]] : [],
            `${what}: refusal line`,
          );
          assert.ok(!mineLines.some((l) => l.level >= 50), `${what}: nothing at error level`);

          // Metrics.
          const after = await scrape();
          const delta = (name: string, labels: string[]) => sample(after, name, labels) - sample(before, name, labels);
          assert.equal(delta('signet_http_requests_total', [`method="${c.method}"`, `status="${c.status}"`]), 1, `${what}: counted`);
          assert.equal(delta('signet_http_request_duration_seconds_count', [`method="${c.method}"`]), 1, `${what}: timed`);
          const refusals = delta('signet_refusals_total', []);
          assert.equal(refusals, c.problem ? 1 : 0, `${what}: refusals`);
          if (c.problem) assert.equal(delta('signet_refusals_total', [`type="${c.problem}"`]), 1, `${what}: by type`);
        });
      }
    });
  }

  test('OCSP: a query string is ignored, HEAD is GET without a body, a wrong method is 405 with Allow', async () => {
    const b64 = encodeURIComponent(ocspRequest.toString('base64'));
    const withQuery = await fetch(`${server.url}/ocsp/${b64}?cache-buster=1`);
    assert.equal(withQuery.status, 200);
    assert.equal(withQuery.headers.get('content-type'), 'application/ocsp-response');
    const body = Buffer.from(await withQuery.arrayBuffer());
    assert.equal(body[0], 0x30, 'an OCSP response');
    const head = await fetch(`${server.url}/ocsp/${b64}`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-type'), 'application/ocsp-response');
    assert.equal((await head.arrayBuffer()).byteLength, 0, 'no body on HEAD');
    for (const [method, url, allow] of [
      ['PUT', '/ocsp', 'POST'],
      ['GET', '/ocsp', 'POST'],
      ['DELETE', `/ocsp/${b64}`, 'GET, HEAD'],
      ['OPTIONS', '/ocsp/', 'GET, HEAD, POST'],
    ] as const) {
      const r = await fetch(`${server.url}${url}`, { method });
      assert.equal(r.status, 405, `${method} ${url}`);
      assert.equal(r.headers.get('allow'), allow, `${method} ${url}`);
      assert.equal(r.headers.get('content-type'), PROBLEM, `${method} ${url}`);
      for (const [k, v] of expectedSecurity) assert.equal(r.headers.get(k), v, `${method} ${url}: ${k}`);
      await r.arrayBuffer();
    }
  });

  test("refusals by node's HTTP parser are problem documents with the security headers", async () => {
    const raw = (text: string) =>
      new Promise<string>((resolve, reject) => {
        const socket = connect(Number(new URL(server.url).port), '127.0.0.1', () => socket.end(text));
        let out = '';
        socket.on('data', (d) => {
          out += d;
        });
        socket.on('end', () => resolve(out));
        socket.on('error', reject);
      });
    for (const [what, text, status] of [
      ['headers over 16 KiB', `GET /ocsp/${'A'.repeat(17 * 1024)} HTTP/1.1\r\nHost: x\r\n\r\n`, 431],
      ['a bad Content-Length', 'POST /ocsp HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n', 400],
    ] as const) {
      const reply = await raw(text);
      const [head, body] = reply.split('\r\n\r\n');
      const lines = head!.split('\r\n');
      assert.match(lines[0]!, new RegExp(`^HTTP/1\\.1 ${status} `), what);
      const headers = new Map(lines.slice(1).map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      assert.equal(headers.get('content-type'), PROBLEM, what);
      for (const [k, v] of expectedSecurity) assert.equal(headers.get(k), v, `${what}: ${k}`);
      assert.equal(JSON.parse(body!).status, status, what);
    }
  });

  test('metric route labels name the route, not the URL', async () => {
    const text = await scrape();
    for (const route of ['/tokens', '/certificates', '/ocsp', '/ocsp/:request']) {
      assert.ok(sample(text, 'signet_http_requests_total', [`route="${route}"`]) > 0, route);
    }
    assert.doesNotMatch(text, /route="\/ocsp\/[A-Za-z0-9%]/, 'no OCSP request in a label');
  });
});
