/**
 * Issue 12 item 12 (refusals): an unauthenticated request costs no durable write. Refusals of
 * anonymous requests (no token, or one that is malformed, unknown, expired or revoked) are
 * counted in memory per (source address, reason) and recorded as one request.refused.summary
 * event per interval and at shutdown, with a cap on distinct pairs; a refusal of a request with
 * a valid token (a missing right, a policy refusal) is still its own request.refused event.
 * Both request paths (Express, and the bare issuance handler) behave the same.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { api, startServer, type RunningServer } from './helpers/cli.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';
import { csrMaker, TempDir } from './helpers/openssl.js';
import { sql } from './helpers/sql.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const tmp = new TempDir();
const makeCsr = csrMaker(tmp);

interface Summary {
  seq: number;
  actor: string;
  action: string;
  outcome: string;
  sourceIp: string | null;
  details: {
    from: string;
    to: string;
    total: number;
    unitemised: number;
    refusals: { sourceIp: string | null; type: string; status: number; detail: string; count: number; first: string; last: string; targets: string[] }[];
  };
}

describe('refused requests in the audit trail', { concurrency: false }, () => {
  let env: TestEnv;
  let server: RunningServer | undefined;

  const refusalEvents = async (after: number) =>
    (
      await sql(
        env,
        `SELECT seq, actor, action, outcome, "sourceIp", details FROM "AuditEvent" WHERE seq > ? AND action LIKE 'request.refused%' ORDER BY seq`,
        [after],
      )
    ).map((r) => ({ ...r, seq: Number(r.seq), details: JSON.parse(r.details) })) as Summary[];
  const head = async () => Number((await sql(env, 'SELECT MAX(seq) AS n FROM "AuditEvent"'))[0].n);
  const anonymous = (s: RunningServer, method: string, path: string, authorization: string | undefined, headers: Record<string, string> = {}, body?: unknown) =>
    api({ url: s.url, token: '' }, method, path, body, { authorization: authorization ?? '', ...headers });

  before(async () => {
    env = await createTestEnv({ SIGNET_TRUST_PROXY: 'on' });
    server = await startServer(env.env);
  });
  after(async () => {
    await server?.stop();
    await env?.cleanup();
    tmp.remove();
  });

  test('200 anonymous 401s write no row while they happen, and a handful of summary rows carry their counts', async () => {
    const s = server!;
    const mark = await head();
    const unknown = `Bearer sgt_${randomBytes(32).toString('base64url')}`;
    const csr = makeCsr('DNS:anon.refusals.test');
    const sent: Promise<{ status: number }>[] = [];
    for (let i = 0; i < 100; i++) sent.push(anonymous(s, 'GET', '/api/v1/cas', undefined));
    // The bare issuance handler, then Express, with a token that is not one.
    for (let i = 0; i < 50; i++)
      sent.push(anonymous(s, 'POST', '/api/v1/certificates', unknown, { 'content-type': 'application/json' }, { csr, profile: 'server' }));
    for (let i = 0; i < 50; i++) sent.push(anonymous(s, 'GET', '/api/v1/tokens', 'Basic x'));
    for (const r of await Promise.all(sent)) assert.equal(r.status, 401);
    assert.deepEqual(await refusalEvents(mark), [], 'no row per anonymous refusal');

    // A refusal with a valid token is its own event at once: a missing right (403), and a
    // policy refusal through the bare issuance handler (400).
    const reader = (await api(s, 'POST', '/api/v1/tokens', { name: 'reader', scopes: ['read'] })).json;
    const m2 = await head();
    const forbidden = await api({ url: s.url, token: reader.token }, 'DELETE', `/api/v1/tokens/${reader.id}`);
    assert.equal(forbidden.status, 403, forbidden.text);
    const policy = await api(s, 'POST', '/api/v1/certificates', { csr: makeCsr('DNS:bad_name!.example'), profile: 'server' });
    assert.equal(policy.status, 400, policy.text);
    const own = await refusalEvents(m2);
    assert.deepEqual(
      own.map((e) => [e.action, e.actor, e.outcome, (e.details as unknown as { type: string }).type]),
      [
        ['request.refused', `token:${reader.id}`, 'refused', 'forbidden'],
        ['request.refused', own[1]?.actor, 'refused', policy.json.type.split('/').pop()],
      ],
    );
    assert.match(own[1]!.actor, /^token:tok-/);

    assert.equal(await server!.stop(), 0);
    server = undefined;
    const summaries = (await refusalEvents(mark)).filter((e) => e.action === 'request.refused.summary');
    assert.ok(summaries.length >= 1 && summaries.length <= 3, `a handful of summary rows: ${summaries.length}`);
    const total = summaries.reduce((n, e) => n + e.details.total, 0);
    assert.equal(total, 200, 'every anonymous refusal is counted');
    for (const e of summaries) {
      assert.deepEqual([e.actor, e.outcome, e.details.unitemised], ['anonymous', 'refused', 0]);
      assert.ok(Date.parse(e.details.from) <= Date.parse(e.details.to));
    }
    const byReason = new Map<string, { count: number; targets: Set<string>; ips: Set<string | null> }>();
    for (const r of summaries.flatMap((e) => e.details.refusals)) {
      const k = `${r.status} ${r.type} ${r.detail}`;
      const cur = byReason.get(k) ?? { count: 0, targets: new Set(), ips: new Set() };
      cur.count += r.count;
      for (const t of r.targets) cur.targets.add(t);
      cur.ips.add(r.sourceIp);
      byReason.set(k, cur);
    }
    const want: [string, number, string][] = [
      ['401 unauthorized missing Authorization: Bearer <token> header', 100, 'GET /api/v1/cas'],
      ['401 unauthorized the bearer token is unknown', 50, 'POST /api/v1/certificates'],
      ['401 unauthorized Authorization header must be "Bearer <token>"', 50, 'GET /api/v1/tokens'],
    ];
    assert.deepEqual([...byReason.keys()].sort(), want.map((w) => w[0]).sort(), JSON.stringify([...byReason.keys()]));
    for (const [k, count, target] of want) {
      const got = byReason.get(k)!;
      assert.equal(got.count, count, k);
      assert.deepEqual([...got.targets], [target], k);
      assert.equal(got.ips.size, 1);
      assert.match(String([...got.ips][0]), /127\.0\.0\.1$/);
    }
    assert.ok(!JSON.stringify(summaries).includes(unknown.slice(7)), 'the presented token is not recorded');
  });

  test('distinct (address, reason) pairs are capped: the rest are counted, not itemised', async () => {
    const s = (server = await startServer(env.env));
    const mark = await head();
    const sent: Promise<{ status: number }>[] = [];
    for (let i = 0; i < 150; i++) sent.push(anonymous(s, 'GET', '/api/v1/cas', undefined, { 'x-forwarded-for': `198.51.100.${i}` }));
    for (const r of await Promise.all(sent)) assert.equal(r.status, 401);
    assert.equal(await s.stop(), 0);
    server = undefined;
    const [summary, ...rest] = await refusalEvents(mark);
    assert.equal(rest.length, 0);
    assert.equal(summary!.details.total, 150);
    assert.equal(summary!.details.refusals.length, 100, 'at most 100 pairs itemised');
    assert.equal(summary!.details.unitemised, 50);
    assert.equal(summary!.details.refusals.reduce((n, r) => n + r.count, 0) + summary!.details.unitemised, 150);
    assert.ok(summary!.details.refusals.every((r) => r.sourceIp?.startsWith('198.51.100.') && r.count === 1));
  });

  test('the summary is written every interval while the server runs', async () => {
    const s = (server = await startServer({ ...env.env, SIGNET_AUDIT_INTERVAL_SECONDS: '1' }));
    const mark = await head();
    for (let i = 0; i < 10; i++) assert.equal((await anonymous(s, 'GET', '/api/v1/cas', 'Bearer nope', { 'x-forwarded-for': '203.0.113.9' })).status, 401);
    let found: Summary[] = [];
    for (let i = 0; i < 50 && !found.length; i++) {
      await sleep(100);
      found = await refusalEvents(mark);
    }
    assert.equal(found.length, 1, 'written without a shutdown');
    assert.equal(found[0]!.details.total, 10);
    assert.equal(found[0]!.sourceIp, '203.0.113.9', "one source: it is the event's source address");
    assert.equal(await s.stop(), 0);
    server = undefined;
    assert.equal((await refusalEvents(mark)).length, 1, 'nothing more to write at shutdown');
  });
});
