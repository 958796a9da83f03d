/**
 * Issue 5, access control: a real `signet serve` (SQLite, or PostgreSQL under
 * SIGNET_TEST_POSTGRES) is probed with every kind of bad credential on every /api/v1 endpoint.
 * The endpoint list is checked against the route files, so a new route without a row in the
 * matrix fails here. Refusals must store nothing but their own `request.refused` audit event.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fetchAfterBlocking, ROOT, signet, startServer, type RunningServer } from './helpers/cli.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';
import { TempDir, csrMaker } from './helpers/openssl.js';
import { countRows, sql } from './helpers/sql.js';
import { rowMacs } from './helpers/integrity.js';

const SCOPES = ['issue', 'renew', 'revoke', 'read', 'groups', 'admin'] as const;
type Scope = (typeof SCOPES)[number];
const PROBLEM = 'application/problem+json; charset=utf-8';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Background work that may write audit events at any time; never part of a request's effects. */
const BACKGROUND_ACTIONS = new Set(['crl.signed', 'ocsp.responder.issued', 'ocsp.responses.signed']);

const tmp = new TempDir();
const makeCsr = csrMaker(tmp);

interface Reply {
  status: number;
  headers: Headers;
  text: string;
  json: any;
}

/** One request with exactly the Authorization header given (none when undefined). */
async function call(server: RunningServer, method: string, path: string, auth: string | undefined, body?: unknown): Promise<Reply> {
  const headers: Record<string, string> = {};
  if (auth !== undefined) headers.authorization = auth;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetchAfterBlocking(server.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

const bearer = (t: string) => `Bearer ${t}`;
const forgedToken = () => `sgt_${randomBytes(32).toString('base64url')}`;

async function auditHead(env: TestEnv): Promise<number> {
  const [r] = await sql(env, 'SELECT MAX(seq) AS m FROM "AuditEvent"');
  return Number(r.m ?? 0);
}
async function auditSince(
  env: TestEnv,
  seq: number,
): Promise<{ seq: number; actor: string; action: string; target: string | null; outcome: string; sourceIp: string | null; details: any }[]> {
  const rows = await sql(env, 'SELECT seq, actor, action, target, outcome, "sourceIp", details FROM "AuditEvent" WHERE seq > ? ORDER BY seq', [seq]);
  return rows.filter((r) => !BACKGROUND_ACTIONS.has(r.action)).map((r) => ({ ...r, seq: Number(r.seq), details: r.details ? JSON.parse(r.details) : null }));
}

// ---------------------------------------------------------------------------------------------
// The /api/v1 endpoints as read from the route files that app.ts mounts under /api/v1

function apiRoutesFromSource(): string[] {
  const app = readFileSync(join(ROOT, 'src/http/app.ts'), 'utf8');
  const mounted = [...app.matchAll(/\bapi\.use\((\w+Routes)\(/g)].map((m) => m[1]!);
  assert.ok(mounted.length >= 4, `found the routers app.ts mounts under /api/v1: ${mounted.join(', ')}`);
  const dir = join(ROOT, 'src/http/routes');
  const routes: string[] = [];
  for (const fn of mounted) {
    const file = readdirSync(dir).find((f) => f.endsWith('.ts') && new RegExp(`export function ${fn}\\(`).test(readFileSync(join(dir, f), 'utf8')));
    assert.ok(file, `the route file defining ${fn}`);
    const src = readFileSync(join(dir, file), 'utf8');
    for (const m of src.matchAll(/\br\.(get|post|put|patch|delete|all)\(\s*'([^']+)'/g)) routes.push(`${m[1]!.toUpperCase()} ${m[2]}`);
  }
  return routes.sort();
}

describe('access control: tokens, scopes and limits on every endpoint', { concurrency: false }, () => {
  let env: TestEnv;
  let server: RunningServer;
  let intId: string;
  let serial: string; // a good certificate every read/renew probe points at
  let holdSerial: string; // put on hold and released by the allowed probes
  const tokens: Record<string, { id: string; token: string }> = {};

  async function admin(method: string, path: string, body?: unknown) {
    return call(server, method, path, bearer(server.token), body);
  }
  async function newToken(body: Record<string, unknown>): Promise<{ id: string; token: string; json: any }> {
    const r = await admin('POST', '/api/v1/tokens', body);
    assert.equal(r.status, 201, r.text);
    return { id: r.json.id, token: r.json.token, json: r.json };
  }
  async function issueWith(token: string, san: string, profile = 'server'): Promise<Reply> {
    return call(server, 'POST', '/api/v1/certificates', bearer(token), { csr: makeCsr(san), profile });
  }

  /**
   * Every /api/v1 route, the scope it needs (null = public by design), a request that would
   * succeed or fail only for reasons other than authorisation, and its status with that scope.
   */
  interface Endpoint {
    route: string;
    path: () => string;
    scope: Scope | null;
    body?: () => unknown;
    allowed: number;
    /** Authenticated by the TLS client certificate it renews (mTLS), never by a token: test/mtls-renewal.test.ts. */
    clientCertificate?: true;
  }
  const ENDPOINTS: Endpoint[] = [
    { route: 'GET /cas', path: () => '/api/v1/cas', scope: 'read', allowed: 200 },
    { route: 'POST /cas', path: () => '/api/v1/cas', scope: 'admin', body: () => ({ parentId: 'root-doesnotexist', subject: 'CN=Matrix CA' }), allowed: 404 },
    { route: 'POST /cas/roots', path: () => '/api/v1/cas/roots', scope: 'admin', body: () => ({ subject: 'CN=Matrix Root', validityDays: 0 }), allowed: 400 },
    { route: 'GET /cas/:id', path: () => `/api/v1/cas/${intId}`, scope: 'read', allowed: 200 },
    { route: 'POST /cas/:id/revoke', path: () => '/api/v1/cas/int-doesnotexist/revoke', scope: 'admin', body: () => ({ reason: 'superseded' }), allowed: 404 },
    { route: 'POST /cas/:id/rotate', path: () => '/api/v1/cas/int-doesnotexist/rotate', scope: 'admin', body: () => ({}), allowed: 404 },
    { route: 'POST /cas/:id/renew', path: () => '/api/v1/cas/int-doesnotexist/renew', scope: 'admin', body: () => ({}), allowed: 404 },
    {
      route: 'POST /certificates',
      path: () => '/api/v1/certificates',
      scope: 'issue',
      body: () => ({ csr: makeCsr('DNS:matrix.example.test'), profile: 'server' }),
      allowed: 201,
    },
    { route: 'GET /certificates', path: () => '/api/v1/certificates', scope: 'read', allowed: 200 },
    { route: 'GET /certificates/:serial', path: () => `/api/v1/certificates/${serial}`, scope: 'read', allowed: 200 },
    { route: 'POST /certificates/:serial/renew', path: () => `/api/v1/certificates/${serial}/renew`, scope: 'renew', body: () => ({}), allowed: 201 },
    { route: 'POST /certificates/renew', path: () => '/api/v1/certificates/renew', scope: 'renew', body: () => ({}), allowed: 201, clientCertificate: true },
    {
      route: 'POST /certificates/:serial/revoke',
      path: () => `/api/v1/certificates/${holdSerial}/revoke`,
      scope: 'revoke',
      body: () => ({ reason: 'certificateHold' }),
      allowed: 200,
    },
    { route: 'POST /certificates/:serial/unhold', path: () => `/api/v1/certificates/${holdSerial}/unhold`, scope: 'revoke', body: () => ({}), allowed: 200 },
    { route: 'GET /certificates/:serial/status', path: () => `/api/v1/certificates/${serial}/status`, scope: null, allowed: 200 },
    { route: 'GET /profiles', path: () => '/api/v1/profiles', scope: 'read', allowed: 200 },
    { route: 'POST /tokens', path: () => '/api/v1/tokens', scope: 'admin', body: () => ({ name: 'made by the matrix', scopes: ['read'] }), allowed: 201 },
    { route: 'GET /tokens', path: () => '/api/v1/tokens', scope: 'admin', allowed: 200 },
    { route: 'DELETE /tokens/:id', path: () => '/api/v1/tokens/tok-doesnotexist', scope: 'admin', allowed: 404 },
    {
      route: 'POST /enrollment-credentials',
      path: () => '/api/v1/enrollment-credentials',
      scope: 'admin',
      body: () => ({ profile: 'server', nameSuffixes: ['matrix.example.test'] }),
      allowed: 201,
    },
    { route: 'GET /enrollment-credentials', path: () => '/api/v1/enrollment-credentials', scope: 'admin', allowed: 200 },
    {
      route: 'POST /enrollment-credentials/:id/revoke',
      path: () => '/api/v1/enrollment-credentials/enr_0000000000000000/revoke',
      scope: 'admin',
      body: () => ({}),
      allowed: 404,
    },
    { route: 'POST /groups', path: () => '/api/v1/groups', scope: 'admin', body: () => ({ name: `acl-${randomBytes(4).toString('hex')}` }), allowed: 201 },
    { route: 'GET /groups', path: () => '/api/v1/groups', scope: 'groups', allowed: 200 },
    { route: 'GET /groups/:id', path: () => '/api/v1/groups/doesnotexist', scope: 'groups', allowed: 404 },
    { route: 'POST /groups/:id/members', path: () => '/api/v1/groups/doesnotexist/members', scope: 'admin', body: () => ({ serial: serial }), allowed: 404 },
    { route: 'DELETE /groups/:id/members/:serial', path: () => `/api/v1/groups/doesnotexist/members/${serial}`, scope: 'admin', allowed: 404 },
    { route: 'GET /groups/:id/members/:serial/welcome', path: () => `/api/v1/groups/doesnotexist/members/${serial}/welcome`, scope: 'groups', allowed: 404 },
    { route: 'GET /groups/:id/rekey', path: () => '/api/v1/groups/doesnotexist/rekey?since=0', scope: 'groups', allowed: 404 },
    {
      route: 'POST /webhooks',
      path: () => '/api/v1/webhooks',
      scope: 'admin',
      body: () => ({ url: `http://127.0.0.1:9/acl-${randomBytes(4).toString('hex')}`, events: ['crl.published'] }),
      allowed: 201,
    },
    { route: 'GET /webhooks', path: () => '/api/v1/webhooks', scope: 'admin', allowed: 200 },
    { route: 'GET /webhooks/:id', path: () => '/api/v1/webhooks/wh_0000000000000000', scope: 'admin', allowed: 404 },
    { route: 'DELETE /webhooks/:id', path: () => '/api/v1/webhooks/wh_0000000000000000', scope: 'admin', allowed: 404 },
    {
      route: 'POST /webhooks/:id/deliveries/:delivery/retry',
      path: () => '/api/v1/webhooks/wh_0000000000000000/deliveries/dl_0000000000000000/retry',
      scope: 'admin',
      body: () => ({}),
      allowed: 404,
    },
    { route: 'GET /audit', path: () => '/api/v1/audit', scope: 'admin', allowed: 200 },
    { route: 'GET /audit/checkpoints', path: () => '/api/v1/audit/checkpoints', scope: 'admin', allowed: 200 },
    { route: 'GET /openapi.json', path: () => '/api/v1/openapi.json', scope: null, allowed: 200 },
  ];
  const method = (e: Endpoint) => e.route.split(' ')[0]!;
  const protectedEndpoints = ENDPOINTS.filter((e) => e.scope !== null && !e.clientCertificate);

  before(async () => {
    env = await createTestEnv();
    server = await startServer(env.env);
    const cas = (await admin('GET', '/api/v1/cas')).json.items as any[];
    intId = cas.find((c) => c.parentId !== null).id;
    for (const which of ['serial', 'hold'] as const) {
      const r = await issueWith(server.token, `DNS:${which}.example.test`);
      assert.equal(r.status, 201, r.text);
      if (which === 'serial') serial = r.json.serial;
      else holdSerial = r.json.serial;
    }
    for (const s of SCOPES) {
      tokens[`only-${s}`] = await newToken({ name: `only ${s}`, scopes: [s] });
      // Every scope but the one needed (and never admin, which implies all of them).
      tokens[`all-but-${s}`] = await newToken({ name: `all but ${s}`, scopes: SCOPES.filter((x) => x !== s && x !== 'admin') });
    }
  });
  after(async () => {
    await server?.stop();
    await env?.cleanup();
    tmp.remove();
  });

  test('the matrix lists every /api/v1 route in the route files', () => {
    assert.deepEqual(ENDPOINTS.map((e) => e.route).sort(), apiRoutesFromSource());
  });

  test('401 for missing, malformed, forged, truncated, expired and revoked tokens; 403 naming the scope; nothing stored', async () => {
    // An expiring admin token: it works, then it expires.
    // Six seconds: creating it and one call must fit inside, even on a loaded machine.
    const expiresAt = new Date(Date.now() + 6_000);
    const expiring = await newToken({ name: 'expires soon', scopes: ['admin'], expiresAt: expiresAt.toISOString() });
    assert.equal((await call(server, 'GET', '/api/v1/cas', bearer(expiring.token))).status, 200, 'works before it expires');
    // A revoked admin token: it works, it is revoked, it stops working at once.
    const doomed = await newToken({ name: 'revoked soon', scopes: ['admin'] });
    assert.equal((await call(server, 'GET', '/api/v1/cas', bearer(doomed.token))).status, 200, 'works before it is revoked');
    assert.equal((await admin('DELETE', `/api/v1/tokens/${doomed.id}`)).status, 204);
    const again = await admin('DELETE', `/api/v1/tokens/${doomed.id}`);
    assert.equal(again.status, 409, again.text);
    assert.match(again.json.detail, /already revoked/);
    while (Date.now() <= expiresAt.getTime() + 50) await sleep(50);

    const counts = async () => ({
      certificates: await countRows(env, 'Certificate'),
      cas: await countRows(env, 'CertificateAuthority'),
      tokens: await countRows(env, 'ApiToken'),
      hold: (await sql(env, 'SELECT status FROM "Certificate" WHERE serial = ?', [holdSerial]))[0].status,
    });
    const before = await counts();
    const head = await auditHead(env);

    const unauthorized: [string, string | undefined, RegExp][] = [
      ['no Authorization header', undefined, /^missing Authorization: Bearer <token> header$/],
      ['Basic scheme', 'Basic x', /^Authorization header must be "Bearer <token>"$/],
      ['Bearer without a token', 'Bearer', /^Authorization header must be "Bearer <token>"$/],
      ['Bearer with two tokens', `Bearer ${server.token} ${server.token}`, /^Authorization header must be "Bearer <token>"$/],
      ['not a Signet token', 'Bearer eyJhbGciOiJub25lIn0.e30.', /not a Signet API token/],
      ['forged token of the right length', bearer(forgedToken()), /^the bearer token is unknown$/],
      ['truncated admin token', bearer(server.token.slice(0, -1)), /^the bearer token is unknown$/],
      ['admin token with a flipped character', bearer(server.token.slice(0, -1) + (server.token.endsWith('A') ? 'B' : 'A')), /^the bearer token is unknown$/],
      ['admin token with a suffix', bearer(server.token + 'A'), /^the bearer token is unknown$/],
      ['expired token', bearer(expiring.token), /^the bearer token has expired$/],
      ['revoked token', bearer(doomed.token), /^the bearer token was revoked$/],
    ];
    let refusals = 0;
    for (const e of protectedEndpoints) {
      for (const [what, auth, detail] of unauthorized) {
        const r = await call(server, method(e), e.path(), auth, e.body?.());
        const where = `${e.route} with ${what}`;
        assert.equal(r.status, 401, `${where}: ${r.text}`);
        assert.equal(r.headers.get('content-type'), PROBLEM, where);
        assert.equal(r.json.type, 'https://signet.dev/problems/unauthorized', where);
        assert.equal(r.json.status, 401, where);
        assert.match(r.json.detail, detail, where);
        assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer realm="signet"/, `${where}: a 401 names the Bearer scheme`);
        // Anonymous: counted in memory and summarised per interval (audit-refusals.test.ts), no row each.
      }
      const wrong = tokens[`all-but-${e.scope}`]!;
      const r = await call(server, method(e), e.path(), bearer(wrong.token), e.body?.());
      assert.equal(r.status, 403, `${e.route} with a token lacking ${e.scope}: ${r.text}`);
      assert.equal(r.headers.get('content-type'), PROBLEM);
      assert.equal(r.json.type, 'https://signet.dev/problems/forbidden');
      assert.match(r.json.detail, new RegExp(`lacks the '${e.scope}' scope`), e.route);
      assert.equal(r.headers.get('www-authenticate'), null, 'a 403 does not ask for other credentials');
      refusals++;
    }
    assert.deepEqual(await counts(), before, 'no refused request stored anything');
    // Each refusal of a token is one request.refused event (outcome refused) and nothing else happened.
    const events = await auditSince(env, head);
    assert.equal(events.length, refusals, `one audit event per token refusal: ${JSON.stringify(events.filter((x) => x.action !== 'request.refused'))}`);
    for (const ev of events) {
      assert.equal(ev.action, 'request.refused');
      assert.equal(ev.outcome, 'refused');
    }
    assert.ok(
      events.some((ev) => ev.actor === `token:${tokens['all-but-admin']!.id}` && ev.details.status === 403),
      'a 403 names the token that was refused',
    );
    assert.ok(!events.some((ev) => ev.actor === 'anonymous'), 'no row per anonymous refusal');
  });

  test('renewal by client certificate takes no token: over plain HTTP every caller, even admin, gets 401 naming the HTTPS listener', async () => {
    const before = await countRows(env, 'Certificate');
    for (const e of ENDPOINTS.filter((x) => x.clientCertificate)) {
      for (const auth of [undefined, bearer(server.token), bearer(tokens['only-renew']!.token), 'Basic x']) {
        const r = await call(server, method(e), e.path(), auth, e.body?.());
        assert.equal(r.status, 401, `${e.route} (auth ${auth}): ${r.text}`);
        assert.equal(r.headers.get('content-type'), PROBLEM);
        assert.match(r.json.detail, /plain HTTP cannot carry: send it to the HTTPS listener/);
      }
    }
    assert.equal(await countRows(env, 'Certificate'), before, 'nothing issued');
  });

  test('a token with exactly the needed scope gets through; admin implies every scope; the status endpoint and the OpenAPI document are public', async () => {
    // Endpoint order matters: the hold is placed, then released, once per pass.
    for (const who of ['exact', 'only-admin']) {
      for (const e of protectedEndpoints) {
        const r = await call(server, method(e), e.path(), bearer(tokens[who === 'exact' ? `only-${e.scope}` : who]!.token), e.body?.());
        assert.equal(r.status, e.allowed, `${e.route} with token ${who}: ${r.text}`);
      }
    }
    for (const e of ENDPOINTS.filter((x) => x.scope === null)) {
      for (const auth of [undefined, bearer(forgedToken()), 'Basic x']) {
        const r = await call(server, method(e), e.path(), auth);
        assert.equal(r.status, e.allowed, `${e.route} is public (auth ${auth}): ${r.text}`);
        if (e.route === 'GET /certificates/:serial/status')
          assert.deepEqual(Object.keys(r.json).sort(), ['serial', 'status'], 'the public status says nothing more');
      }
    }
  });

  test('per-token profile limits: a client-only token cannot issue or renew server certificates (403)', async () => {
    const t = await newToken({ name: 'clients only', scopes: ['issue', 'renew'], profiles: ['client'] });
    const certsBefore = await countRows(env, 'Certificate');
    const refused = await issueWith(t.token, 'DNS:web.example.test', 'server');
    assert.equal(refused.status, 403, refused.text);
    assert.equal(refused.json.type, 'https://signet.dev/problems/forbidden');
    assert.equal(refused.json.detail, 'this token may not use profile server (allowed: client)');
    const renew = await call(server, 'POST', `/api/v1/certificates/${serial}/renew`, bearer(t.token), {});
    assert.equal(renew.status, 403, renew.text);
    assert.match(renew.json.detail, /may not use profile server/);
    assert.equal(await countRows(env, 'Certificate'), certsBefore, 'nothing issued');
    const ok = await issueWith(t.token, 'DNS:app.example.test', 'client');
    assert.equal(ok.status, 201, ok.text);
    assert.equal(ok.json.profile, 'client');
  });

  test('per-token name-suffix limits: names outside the suffixes are refused with a detail naming both', async () => {
    // A name outside the token's suffixes is the token's limit, not a bad name: 403, with a
    // detail naming the refused name and the token's suffixes.
    const t = await newToken({ name: 'team only', scopes: ['issue'], nameSuffixes: ['team.example'] });
    const certsBefore = await countRows(env, 'Certificate');
    for (const san of ['DNS:svc.other.example', 'DNS:evilteam.example', 'DNS:team.example.evil.test', 'DNS:a.team.example,DNS:b.other.example']) {
      const r = await issueWith(t.token, san);
      assert.equal(r.status, 403, `${san}: ${r.text}`);
      assert.equal(r.headers.get('content-type'), PROBLEM);
      const refusedName = san
        .split(',')
        .map((s) => s.slice(4))
        .find((n) => n !== 'a.team.example')!;
      assert.ok(r.json.detail.includes(`'${refusedName}'`), `${san}: the detail names ${refusedName}: ${r.json.detail}`);
      assert.match(r.json.detail, /this token may only request names under team\.example/, san);
    }
    const ip = await issueWith(t.token, 'IP:10.1.2.3');
    assert.equal(ip.status, 403, `an IP address is under no DNS suffix: ${ip.text}`);
    assert.match(ip.json.detail, /10\.1\.2\.3/);
    assert.equal(await countRows(env, 'Certificate'), certsBefore, 'nothing issued');
    for (const san of ['DNS:team.example', 'DNS:api.team.example', 'DNS:a.b.team.example']) {
      const r = await issueWith(t.token, san);
      assert.equal(r.status, 201, `${san}: ${r.text}`);
    }
  });

  test('the secret is shown once: only in the 201 of POST /api/v1/tokens; stored as its keyed hash (HMAC under the master key)', async () => {
    const created = await newToken({ name: 'shown once', scopes: ['read'], expiresAt: new Date(Date.now() + 86_400_000).toISOString() });
    assert.match(created.token, /^sgt_[A-Za-z0-9_-]{43}$/, '256 random bits, base64url');
    assert.deepEqual(Object.keys(created.json).sort(), ['expiresAt', 'groups', 'id', 'name', 'nameSuffixes', 'profiles', 'scopes', 'token']);
    const hash = rowMacs(env).tokenSecretHash(created.token);
    const unkeyed = createHash('sha256').update(created.token).digest('hex');
    assert.notEqual(hash, unkeyed);
    const list = await admin('GET', '/api/v1/tokens');
    assert.equal(list.status, 200);
    assert.ok(!list.text.includes(created.token) && !list.text.includes(hash) && !list.text.includes(server.token), 'no secret or hash in the list');
    for (const item of list.json.items) {
      assert.ok(!('token' in item) && !('secretHash' in item), JSON.stringify(item));
    }
    const mine = list.json.items.find((i: any) => i.id === created.id);
    assert.deepEqual(mine.scopes, ['read']);
    const audit = await admin('GET', '/api/v1/audit?limit=1000');
    assert.ok(!audit.text.includes(created.token) && !audit.text.includes(hash), 'the audit trail holds no secret');
    const rows = await sql(env, 'SELECT * FROM "ApiToken" WHERE id = ?', [created.id]);
    assert.equal(rows[0].secretHash, hash);
    assert.ok(!JSON.stringify(rows).includes(unkeyed), 'not the plain SHA-256: a database reader cannot test guesses offline');
    assert.ok(!JSON.stringify(rows).includes(created.token), 'the database holds the hash only');
    const cli = signet(['token', 'list', '--json'], env.env);
    assert.equal(cli.status, 0, cli.stderr);
    assert.ok(!cli.stdout.includes(created.token) && !cli.stdout.includes(hash) && !cli.stdout.includes('secretHash'));
  });

  test('lastUsedAt is recorded after a token is used', async () => {
    const t = await newToken({ name: 'used later', scopes: ['read'] });
    const lastUsed = async () => (await admin('GET', '/api/v1/tokens')).json.items.find((i: any) => i.id === t.id).lastUsedAt as string | null;
    assert.equal(await lastUsed(), null, 'never used yet');
    const used = new Date();
    assert.equal((await call(server, 'GET', '/api/v1/profiles', bearer(t.token))).status, 200);
    let seen: string | null = null;
    for (let i = 0; i < 100 && !seen; i++) {
      seen = await lastUsed();
      if (!seen) await sleep(100);
    }
    assert.ok(seen, 'lastUsedAt was set');
    assert.ok(new Date(seen).getTime() >= used.getTime() - 1000, `lastUsedAt ${seen} is the time of use`);
  });

  test('token creation is validated: 400 with a precise detail, nothing stored', async () => {
    const before = await countRows(env, 'ApiToken');
    const cases: [string, unknown, RegExp][] = [
      [
        'unknown scope',
        { name: 'x', scopes: ['superuser'] },
        /^scopes\.0: Invalid enum value\. Expected 'issue' \| 'renew' \| 'revoke' \| 'read' \| 'groups' \| 'admin', received 'superuser'$/,
      ],
      ['empty scopes', { name: 'x', scopes: [] }, /^scopes: must name at least one scope$/],
      ['no scopes', { name: 'x' }, /^scopes: Required$/],
      ['no name', { scopes: ['read'] }, /^name: Required$/],
      ['expiresAt in the past', { name: 'x', scopes: ['read'], expiresAt: new Date(Date.now() - 60_000).toISOString() }, /^expiresAt must be in the future$/],
      ['expiresAt not a date', { name: 'x', scopes: ['read'], expiresAt: 'tomorrow' }, /^expiresAt: must be an ISO 8601 date-time$/],
      ['unknown field', { name: 'x', scopes: ['read'], superuser: true }, /Unrecognized key\(s\) in object: 'superuser'/],
      ['empty profiles', { name: 'x', scopes: ['issue'], profiles: [] }, /^profiles: /],
      [
        'a profile that does not exist',
        { name: 'x', scopes: ['issue'], profiles: ['nonexistent'] },
        /^profiles: "nonexistent" is not a configured profile; configured: server, client, peer, group-member$/,
      ],
      [
        'a profile name in the wrong case',
        { name: 'x', scopes: ['issue'], profiles: ['client', 'SERVER', 'Peer'] },
        /^profiles: "SERVER", "Peer" are not configured profiles; configured: server, client, peer, group-member$/,
      ],
      [
        'expiresAt with a UTC offset of +25:00',
        { name: 'x', scopes: ['read'], expiresAt: '2030-01-01T00:00:00+25:00' },
        /^expiresAt: must be an ISO 8601 date-time; the UTC offset \+25:00 is not one \(at most ±23:59\)$/,
      ],
      [
        'expiresAt after 9999',
        { name: 'x', scopes: ['read'], expiresAt: '9999-12-31T23:59:59-01:00' },
        /^expiresAt: must be between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z$/,
      ],
      ['a name suffix that is no DNS name', { name: 'x', scopes: ['issue'], nameSuffixes: ['not a domain!'] }, /^nameSuffixes: .*not a domain!/],
      ['scopes not an array', { name: 'x', scopes: 'admin' }, /^scopes: Expected array, received string$/],
    ];
    for (const [what, body, detail] of cases) {
      const r = await admin('POST', '/api/v1/tokens', body);
      assert.equal(r.status, 400, `${what}: ${r.text}`);
      assert.equal(r.headers.get('content-type'), PROBLEM, what);
      assert.match(r.json.detail, detail, what);
    }
    assert.equal(await countRows(env, 'ApiToken'), before, 'no token was stored');
  });

  test('only admin manages tokens and reads the audit trail: a read token cannot create, list or revoke tokens', async () => {
    const read = tokens['only-read']!;
    const before = await countRows(env, 'ApiToken');
    const create = await call(server, 'POST', '/api/v1/tokens', bearer(read.token), { name: 'escalate', scopes: ['admin'] });
    assert.equal(create.status, 403, create.text);
    assert.equal(create.json.detail, "this token lacks the 'admin' scope (it has: read)");
    for (const [m, p] of [
      ['GET', '/api/v1/tokens'],
      ['DELETE', `/api/v1/tokens/${tokens['only-admin']!.id}`],
      ['GET', '/api/v1/audit'],
    ] as const) {
      const r = await call(server, m, p, bearer(read.token));
      assert.equal(r.status, 403, `${m} ${p}: ${r.text}`);
    }
    assert.equal(await countRows(env, 'ApiToken'), before);
    assert.equal((await call(server, 'GET', '/api/v1/cas', bearer(tokens['only-admin']!.token))).status, 200, 'the admin token was not revoked');
    // An issue-only token cannot widen its own rights either.
    const issue = await call(server, 'POST', '/api/v1/tokens', bearer(tokens['only-issue']!.token), { name: 'escalate', scopes: ['issue'] });
    assert.equal(issue.status, 403);
  });

  test('signet token create refuses a profile that is not configured', async () => {
    const before = await countRows(env, 'ApiToken');
    const r = signet(['token', 'create', '--name', 'typo', '--scopes', 'issue', '--profiles', 'sever'], env.env);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /profiles: "sever" is not a configured profile; configured: server, client, peer, group-member/);
    assert.equal(await countRows(env, 'ApiToken'), before);
  });

  test('signet token create|list|revoke work against the same store as the running server', async () => {
    const made = signet(
      ['token', 'create', '--name', 'from the CLI', '--scopes', 'read,issue', '--profiles', 'client', '--expires-in-days', '1', '--json'],
      env.env,
    );
    assert.equal(made.status, 0, made.stderr);
    const t = JSON.parse(made.stdout);
    assert.match(t.token, /^sgt_/);
    assert.deepEqual(t.scopes, ['read', 'issue']);
    assert.equal((await call(server, 'GET', '/api/v1/cas', bearer(t.token))).status, 200);
    const forbidden = await issueWith(t.token, 'DNS:cli.example.test', 'server');
    assert.equal(forbidden.status, 403, 'the --profiles limit applies');
    const listed = signet(['token', 'list'], env.env);
    assert.equal(listed.status, 0, listed.stderr);
    assert.match(listed.stdout, new RegExp(`${t.id}\\s+from the CLI\\s+read,issue\\s+active`));
    assert.ok(!listed.stdout.includes(t.token));
    const revoked = signet(['token', 'revoke', t.id], env.env);
    assert.equal(revoked.status, 0, revoked.stderr);
    const r = await call(server, 'GET', '/api/v1/cas', bearer(t.token));
    assert.equal(r.status, 401);
    assert.equal(r.json.detail, 'the bearer token was revoked');
    for (const [args, detail] of [
      [['--scopes', 'read,superuser'], /unknown scope superuser/],
      [['--scopes', ','], /--scopes must name at least one scope/],
      [['--scopes', 'issue', '--name-suffixes', 'not a domain!'], /nameSuffixes: .*not a domain!/],
      [['--scopes', 'read', '--expires-in-days', '-1'], /--expires-in-days must be a positive number/],
    ] as [string[], RegExp][]) {
      const bad = signet(['token', 'create', '--name', 'bad', ...args], env.env);
      assert.equal(bad.status, 2, `${args.join(' ')}: ${bad.stdout}${bad.stderr}`);
      assert.match(bad.stderr, detail);
    }
    const unknown = signet(['token', 'revoke', 'tok-nothere'], env.env);
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /token tok-nothere does not exist/);
  });

  test('tokens are compared in constant time (source check: timingSafeEqual on the hashes, no ===)', () => {
    // Timing measurements are flaky, so this checks the code path instead.
    const src = readFileSync(join(ROOT, 'src/ca/tokens.ts'), 'utf8');
    assert.match(src, /import \{[^}]*\btimingSafeEqual\b[^}]*\} from 'node:crypto'/);
    const start = src.indexOf('export async function authenticate');
    const auth = src.slice(start, src.indexOf('\nexport ', start + 1));
    assert.ok(auth.length > 100, 'found authenticate()');
    assert.match(auth, /timingSafeEqual\(Buffer\.from\(row\.secretHash, 'hex'\), Buffer\.from\(hash, 'hex'\)\)/);
    assert.match(
      auth,
      /tokenSecretHash\(presented\)[\s\S]*hashSecret\(presented\)/,
      'the presented secret is hashed (keyed, then plain for tokens made before keyed hashes) before any lookup',
    );
    assert.match(auth, /tokenIntact\(row, scheme\)/, 'the grant MAC is checked (constant time, in row-integrity.ts)');
    assert.match(readFileSync(join(ROOT, 'src/ca/row-integrity.ts'), 'utf8'), /timingSafeEqual\(Buffer\.from\(a\), Buffer\.from\(b\)\)/);
    assert.doesNotMatch(
      auth,
      /(secretHash|presented|hash)\s*[!=]==?\s*|[!=]==?\s*(row\.secretHash|presented|hash)\b/,
      'no variable-time comparison of secrets or hashes',
    );
    assert.match(src, /randomBytes\(32\)/, 'secrets have 256 random bits');
  });
});
