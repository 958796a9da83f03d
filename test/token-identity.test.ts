/**
 * Issue 12 item 8: one canonical identity per bearer token. The Authorization header is parsed
 * once (http/auth.ts) and that parse feeds the rate limit, authentication and the audit actor,
 * on the Express routes and on the bare issuance handler alike — so `bearer`, `BEARER` or two
 * spaces before the token are the same token with the same budget, and a tab is a malformed
 * header rather than a fresh budget.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { api, startServer, type RunningServer } from './helpers/cli.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';
import { TempDir, csrMaker } from './helpers/openssl.js';
import { sql } from './helpers/sql.js';
import { parseAuthorization } from '../src/http/auth.js';
import { hashSecret } from '../src/ca/tokens.js';

const TOKEN = 'sgt_abcDEF123-_x';

describe('parseAuthorization (RFC 7235 / RFC 6750)', () => {
  test('the scheme in any case, and one or more spaces, give the same token and identity', () => {
    for (const header of [`Bearer ${TOKEN}`, `bearer ${TOKEN}`, `BEARER ${TOKEN}`, `BeArEr ${TOKEN}`, `Bearer  ${TOKEN}`, `Bearer     ${TOKEN}`]) {
      assert.deepEqual(parseAuthorization(header), { kind: 'bearer', token: TOKEN, identity: hashSecret(TOKEN) }, JSON.stringify(header));
    }
    assert.deepEqual(
      parseAuthorization('Bearer abc/+.~_-=='),
      { kind: 'bearer', token: 'abc/+.~_-==', identity: hashSecret('abc/+.~_-==') },
      'b64token characters',
    );
  });

  test('anything else is malformed (or absent), never another identity', () => {
    for (const header of [
      `Bearer\t${TOKEN}`,
      `Bearer \t${TOKEN}`,
      `Bearer${TOKEN}`,
      'Bearer',
      `Basic ${TOKEN}`,
      `Bearer ${TOKEN} ${TOKEN}`,
      `Bearer ${TOKEN},x`,
      `Bearer ${TOKEN}\u00a0`,
      `Bearer\u00a0${TOKEN}`,
      `Bearer ${TOKEN}=x`,
      `Token ${TOKEN}`,
      `Bearer "${TOKEN}"`,
    ]) {
      assert.deepEqual(parseAuthorization(header), { kind: 'malformed' }, JSON.stringify(header));
    }
    assert.deepEqual(parseAuthorization(undefined), { kind: 'none' });
    assert.deepEqual(parseAuthorization(''), { kind: 'none' });
  });
});

describe('every spelling of one token shares one rate-limit budget, one authentication, one audit actor', () => {
  const LIMIT = 8;
  let env: TestEnv;
  let server: RunningServer;
  const tmp = new TempDir();
  const makeCsr = csrMaker(tmp);

  before(async () => {
    env = await createTestEnv({ SIGNET_RATE_LIMIT_PER_TOKEN: String(LIMIT), SIGNET_RATE_LIMIT_PER_ADDRESS: '0' });
    server = await startServer(env.env);
  });
  after(async () => {
    await server?.stop();
    await env?.cleanup();
    tmp.remove();
  });

  const newToken = async (scopes: string[]) => {
    const r = await api(server, 'POST', '/api/v1/tokens', { name: `t-${Math.random()}`, scopes });
    assert.equal(r.status, 201, r.text);
    return r.json as { id: string; token: string };
  };
  const spell = (token: string) => [`Bearer ${token}`, `bearer ${token}`, `BEARER ${token}`, `Bearer  ${token}`];

  test(`${LIMIT} requests in total across spellings and both request paths, then 429 for every spelling`, async () => {
    const { token } = await newToken(['issue', 'read']);
    const csr = makeCsr('DNS:spelling.example.com');
    const statuses: string[] = [];
    for (let i = 0; i < 2 * LIMIT; i++) {
      const authorization = spell(token)[i % 4]!;
      // Even: an Express route. Odd: POST /api/v1/certificates, served by the bare handler.
      const r =
        i % 2 === 0
          ? await api({ url: server.url, token }, 'GET', '/api/v1/cas', undefined, { authorization })
          : await api({ url: server.url, token }, 'POST', '/api/v1/certificates', { csr, profile: 'server' }, { authorization });
      statuses.push(`${JSON.stringify(authorization.slice(0, 8))}→${r.status}`);
      if (i < LIMIT) assert.ok(r.status === 200 || r.status === 201, `request ${i + 1} (${authorization.slice(0, 8)}…): ${r.text}`);
      else {
        assert.equal(r.status, 429, `request ${i + 1} with ${JSON.stringify(authorization.slice(0, 8))} must share the spent budget: ${statuses.join(' ')}`);
        assert.equal(r.json.detail, `too many requests from this token: at most ${LIMIT} per minute; retry after the Retry-After delay`);
      }
    }
  });

  test('a tab between scheme and token is a malformed header (401) on both paths, not a fresh budget', async () => {
    const { token } = await newToken(['issue', 'read']);
    const authorization = `Bearer\t${token}`;
    const viaExpress = await api({ url: server.url, token }, 'GET', '/api/v1/cas', undefined, { authorization });
    const viaIssue = await api(
      { url: server.url, token },
      'POST',
      '/api/v1/certificates',
      { csr: makeCsr('DNS:tab.example.com'), profile: 'server' },
      { authorization },
    );
    for (const r of [viaExpress, viaIssue]) {
      assert.equal(r.status, 401, r.text);
      assert.equal(r.json.detail, 'Authorization header must be "Bearer <token>"');
      assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer realm="signet"/);
    }
  });

  test('refusals under different spellings are audited with the same actor', async () => {
    const reader = await newToken(['read']);
    const csr = makeCsr('DNS:actor.example.com');
    const before = Number((await sql(env, `SELECT COUNT(*) AS n FROM "AuditEvent" WHERE actor = ?`, [`token:${reader.id}`]))[0].n);
    for (const authorization of spell(reader.token).slice(0, 3)) {
      const r = await api({ url: server.url, token: reader.token }, 'POST', '/api/v1/certificates', { csr, profile: 'server' }, { authorization });
      assert.equal(r.status, 403, r.text);
    }
    const refused = await sql(env, `SELECT actor FROM "AuditEvent" WHERE action = 'request.refused' AND actor = ?`, [`token:${reader.id}`]);
    assert.equal(refused.length - before, 3, 'three refusals, one actor');
  });
});
