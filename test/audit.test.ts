/**
 * Issue 5, the audit trail: every state change is an event with actor, time, source address,
 * target and outcome; GET /api/v1/audit filters and pages; `signet audit export|list` print
 * it; and `signet audit verify` detects edited, deleted, inserted and reordered rows when the
 * table is tampered with directly in the database (SQLite, or PostgreSQL under
 * SIGNET_TEST_POSTGRES). Each tampering is undone from a copy of the table before the next.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { api, signetAsync, startServer, type RunningServer } from './helpers/cli.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';
import { openssl, TempDir } from './helpers/openssl.js';
import { countRows, sql } from './helpers/sql.js';
import { canonical, legacyHash as chainHash } from '../src/ca/audit.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const tmp = new TempDir();
let fileNo = 0;
let sharedKey: string | undefined;

function makeCsr(san?: string): string {
  if (!sharedKey) {
    sharedKey = tmp.file('shared.key');
    const g = openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', sharedKey]);
    assert.equal(g.status, 0, g.stderr);
  }
  const out = tmp.file(`csr-${++fileNo}.pem`);
  const r = openssl([
    'req',
    '-new',
    '-key',
    sharedKey,
    '-subj',
    san ? '/' : '/CN=audit.example.test',
    ...(san ? ['-addext', `subjectAltName=${san}`] : []),
    '-out',
    out,
  ]);
  assert.equal(r.status, 0, r.stderr);
  return readFileSync(out, 'utf8');
}

interface Event {
  seq: number;
  time: string;
  actor: string;
  action: string;
  target: string | null;
  outcome: string;
  sourceIp: string | null;
  details: any;
  prevHash: string;
  hash: string;
}

describe('audit trail', { concurrency: false }, () => {
  let env: TestEnv;
  let server: RunningServer;
  let rootId: string;
  let intId: string;
  let adminActor: string;
  const ip = '127.0.0.1';

  /** Events after seq, oldest first, through the API (one page of up to 1000). */
  async function eventsAfter(seq: number): Promise<Event[]> {
    const r = await api(server, 'GET', `/api/v1/audit?order=asc&limit=1000&cursor=${seq}`);
    assert.equal(r.status, 200, r.text);
    return r.json.items;
  }
  async function newest(): Promise<number> {
    const r = await api(server, 'GET', '/api/v1/audit?limit=1');
    return r.json.items[0]?.seq ?? 0;
  }
  async function issue(san = 'DNS:audit.example.test'): Promise<string> {
    const r = await api(server, 'POST', '/api/v1/certificates', { csr: makeCsr(san), profile: 'server' });
    assert.equal(r.status, 201, r.text);
    return r.json.serial;
  }

  before(async () => {
    env = await createTestEnv({ SIGNET_CRL_COALESCE_MS: '100' });
    server = await startServer(env.env);
    const cas = (await api(server, 'GET', '/api/v1/cas')).json.items as any[];
    rootId = cas.find((c) => c.parentId === null).id;
    intId = cas.find((c) => c.parentId === rootId).id;
    const tokens = (await api(server, 'GET', '/api/v1/tokens')).json.items as any[];
    adminActor = `token:${tokens.find((t) => t.name === 'admin (first start)').id}`;
  });
  after(async () => {
    await server?.stop();
    await env?.cleanup();
    tmp.remove();
  });

  test('the first start is audited: root and intermediate created, the root key used, the admin token created', async () => {
    const events = await eventsAfter(0);
    const first = events.filter((e) => e.actor === 'system').slice(0, 4);
    assert.deepEqual(
      first.map((e) => [e.seq, e.action, e.target]),
      [
        [1, 'ca.created', rootId],
        [2, 'ca.created', intId],
        [3, 'ca.key.used', rootId],
        [4, 'token.created', adminActor.slice(6)],
      ],
    );
    for (const e of first) assert.equal(e.outcome, 'success');
    assert.equal(events[0]!.prevHash, '0'.repeat(64), 'the chain starts at the genesis hash');
  });

  test('each state change is one event with actor, time, source address, target and outcome', async () => {
    /** Runs one change and returns its events (background ones left out unless asked for). */
    async function change(fn: () => Promise<unknown>): Promise<{ events: Event[]; t0: number; t1: number }> {
      const head = await newest();
      const t0 = Date.now();
      await fn();
      const t1 = Date.now();
      const events = (await eventsAfter(head)).filter((e) => !e.action.startsWith('ocsp.') && e.action !== 'crl.signed');
      return { events, t0, t1 };
    }
    function check(c: { events: Event[]; t0: number; t1: number }, expected: Partial<Event>[], opts: { sourceIp?: string | null } = {}) {
      assert.deepEqual(
        c.events.map((e) => e.action),
        expected.map((e) => e.action),
        JSON.stringify(c.events),
      );
      for (const [i, want] of expected.entries()) {
        const e = c.events[i]!;
        for (const [k, v] of Object.entries(want)) {
          if (k === 'details') for (const [dk, dv] of Object.entries(v as object)) assert.deepEqual(e.details?.[dk], dv, `${e.action} details.${dk}`);
          else assert.deepEqual((e as any)[k], v, `${e.action}.${k}`);
        }
        assert.equal(e.sourceIp, opts.sourceIp === undefined ? ip : opts.sourceIp, `${e.action}: source address`);
        // The event's time is the time of the request (a second of clock granularity either side).
        const t = Date.parse(e.time);
        assert.ok(t >= c.t0 - 1000 && t <= c.t1 + 1000, `${e.action}: time ${e.time} is within the request`);
        assert.match(e.hash, /^[0-9a-f]{64}$/);
      }
    }

    let serial = '';
    const issued = await change(async () => {
      serial = await issue();
    });
    check(issued, [
      {
        action: 'certificate.issued',
        actor: adminActor,
        target: serial,
        outcome: 'success',
        details: { caId: intId, profile: 'server', sans: ['audit.example.test'] },
      },
    ]);

    let renewed = '';
    const ren = await change(async () => {
      const r = await api(server, 'POST', `/api/v1/certificates/${serial}/renew`, {});
      assert.equal(r.status, 201, r.text);
      renewed = r.json.serial;
    });
    check(ren, [{ action: 'certificate.renewed', actor: adminActor, target: renewed, outcome: 'success', details: { predecessor: serial } }]);

    const held = await change(async () =>
      assert.equal((await api(server, 'POST', `/api/v1/certificates/${renewed}/revoke`, { reason: 'certificateHold' })).status, 200),
    );
    check(held, [{ action: 'certificate.held', actor: adminActor, target: renewed, outcome: 'success', details: { reason: 'certificateHold' } }]);
    const unheld = await change(async () => assert.equal((await api(server, 'POST', `/api/v1/certificates/${renewed}/unhold`, {})).status, 200));
    check(unheld, [{ action: 'certificate.unheld', actor: adminActor, target: renewed, outcome: 'success' }]);

    const revokedAt = await newest();
    const rev = await change(async () =>
      assert.equal((await api(server, 'POST', `/api/v1/certificates/${serial}/revoke`, { reason: 'keyCompromise' })).status, 200),
    );
    check(rev, [{ action: 'certificate.revoked', actor: adminActor, target: serial, outcome: 'success', details: { caId: intId, reason: 'keyCompromise' } }]);

    // The revocation makes the CA sign a CRL: a use of the CA key, by the system, audited.
    let crl: Event | undefined;
    for (let i = 0; i < 200 && !crl; i++) {
      // (A CRL for the unhold may still be signed after the mark: wait for one that lists the revocation.)
      crl = (await eventsAfter(revokedAt)).find((e) => e.action === 'crl.signed' && e.target === intId && e.details.entries >= 1);
      if (!crl) await sleep(100);
    }
    assert.ok(crl, 'a crl.signed event follows the revocation');
    assert.equal(crl.actor, 'system');
    assert.equal(crl.outcome, 'success');
    assert.equal(crl.sourceIp, null, 'a background job has no source address');
    assert.ok(Number(crl.details.number) >= 1 && crl.details.entries >= 1, JSON.stringify(crl.details));

    let tokenId = '';
    const created = await change(async () => {
      const r = await api(server, 'POST', '/api/v1/tokens', { name: 'audited', scopes: ['read'], profiles: ['client'] });
      assert.equal(r.status, 201, r.text);
      tokenId = r.json.id;
    });
    check(created, [
      { action: 'token.created', actor: adminActor, target: tokenId, outcome: 'success', details: { name: 'audited', scopes: ['read'], profiles: ['client'] } },
    ]);
    const tokRevoked = await change(async () => assert.equal((await api(server, 'DELETE', `/api/v1/tokens/${tokenId}`)).status, 204));
    check(tokRevoked, [{ action: 'token.revoked', actor: adminActor, target: tokenId, outcome: 'success', details: { name: 'audited' } }]);

    let caId = '';
    const ca = await change(async () => {
      const r = await api(server, 'POST', '/api/v1/cas', { parentId: rootId, subject: 'CN=Audited CA,O=Signet', validityDays: 30 });
      assert.equal(r.status, 201, r.text);
      caId = r.json.id;
    });
    assert.deepEqual(
      ca.events.map((e) => [e.action, e.target, e.actor, e.outcome]),
      [
        ['ca.created', caId, adminActor, 'success'],
        ['ca.key.used', rootId, adminActor, 'success'],
      ],
    );
    assert.equal(ca.events[0]!.details.parent, rootId);
    // The source address of CA creation: the route does not pass req.ip to the CA layer yet
    // (reported); once it does, this must be the client's address.
    for (const e of ca.events) assert.ok(e.sourceIp === null || e.sourceIp === ip, `${e.action}: ${e.sourceIp}`);

    // Refused requests: authentication (anonymous: counted, recorded as a summary per interval,
    // see audit-refusals.test.ts), authorisation and policy (the token: one event each).
    const forged = `sgt_${randomBytes(32).toString('base64url')}`;
    const r401 = await change(async () => assert.equal((await api({ url: server.url, token: forged }, 'GET', '/api/v1/cas')).status, 401));
    check(r401, []);
    const readToken = (await api(server, 'POST', '/api/v1/tokens', { name: 'reader', scopes: ['read'] })).json;
    const r403 = await change(async () =>
      assert.equal((await api({ url: server.url, token: readToken.token }, 'DELETE', `/api/v1/tokens/${readToken.id}`)).status, 403),
    );
    check(r403, [
      {
        action: 'request.refused',
        actor: `token:${readToken.id}`,
        target: `DELETE /api/v1/tokens/${readToken.id}`,
        outcome: 'refused',
        details: { type: 'forbidden', status: 403 },
      },
    ]);
    const policy = await change(async () => {
      const r = await api(server, 'POST', '/api/v1/certificates', { csr: makeCsr(), profile: 'server' });
      assert.equal(r.status, 400, r.text);
    });
    check(policy, [
      {
        action: 'request.refused',
        actor: adminActor,
        target: 'POST /api/v1/certificates',
        outcome: 'refused',
        details: { type: 'rejected-name', status: 400 },
      },
    ]);
  });

  test('GET /api/v1/audit: newest first, filters, and cursor paging that walks every event', async () => {
    for (let i = 0; i < 3; i++) await issue(`DNS:page${i}.example.test`);
    const all: Event[] = (await api(server, 'GET', '/api/v1/audit?order=asc&limit=1000')).json.items;
    const n = all.length;
    assert.ok(n >= 15, `${n} events`);
    assert.deepEqual(
      all.map((e) => e.seq),
      Array.from({ length: n }, (_, i) => i + 1),
      'seq 1..n, no gaps',
    );
    for (let i = 1; i < n; i++) assert.equal(all[i]!.prevHash, all[i - 1]!.hash, `event ${i + 1} links to its predecessor`);
    const def = await api(server, 'GET', '/api/v1/audit');
    assert.ok(def.json.items[0].seq >= n && def.json.items[0].seq > def.json.items[1].seq, 'newest first by default');
    assert.ok(def.json.items.length <= 100);

    async function walk(query: string, limit: number): Promise<Event[]> {
      const out: Event[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const r = await api(server, 'GET', `/api/v1/audit?${query}${query ? '&' : ''}limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`);
        assert.equal(r.status, 200, r.text);
        assert.ok(r.json.items.length <= limit);
        out.push(...r.json.items);
        cursor = r.json.nextCursor;
        assert.ok(++pages <= n + 1, 'paging ends');
      } while (cursor);
      // Background work (a CRL, an OCSP responder for the new CA) may append meanwhile: compare
      // the events that existed when `all` was read.
      return out.filter((e) => e.seq <= n);
    }
    assert.deepEqual(
      (await walk('', 7)).map((e) => e.seq),
      all.map((e) => e.seq).reverse(),
      'desc paging visits every event once',
    );
    assert.deepEqual(await walk('order=asc', 4), all, 'asc paging visits every event once');
    assert.deepEqual((await walk('order=asc', n)).length, n, 'a page of exactly n ends without an empty page');

    const filters: [string, (e: Event) => boolean][] = [
      ['action=certificate.issued', (e) => e.action === 'certificate.issued'],
      ['actor=system', (e) => e.actor === 'system'],
      [`actor=${encodeURIComponent(adminActor)}`, (e) => e.actor === adminActor],
      [`target=${intId}`, (e) => e.target === intId],
      ['action=request.refused', (e) => e.action === 'request.refused'],
      ['action=no.such.action', () => false],
    ];
    const mid = all[Math.floor(n / 2)]!;
    const since = new Date(Date.parse(mid.time)).toISOString();
    filters.push([`since=${encodeURIComponent(since)}`, (e) => Date.parse(e.time) >= Date.parse(since)]);
    filters.push([`until=${encodeURIComponent(since)}`, (e) => Date.parse(e.time) < Date.parse(since)]);
    filters.push([
      `action=certificate.issued&since=${encodeURIComponent(all[0]!.time)}&until=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`,
      (e) => e.action === 'certificate.issued',
    ]);
    for (const [q, keep] of filters) {
      const want = all.filter(keep);
      assert.deepEqual(await walk(`${q}&order=asc`, 2), want, q);
      assert.deepEqual(
        (await walk(q, 3)).map((e) => e.seq),
        want.map((e) => e.seq).reverse(),
        `${q} (desc)`,
      );
    }
    assert.ok(all.filter((e) => e.action === 'certificate.issued').length >= 4);

    for (const [q, detail] of [
      ['cursor=abc', /cursor is not one this server returned/],
      ['cursor=-1', /cursor is not one this server returned/],
      ['limit=0', /^limit: /],
      ['limit=1001', /^limit: /],
      ['order=sideways', /^order: /],
      ['since=yesterday', /^since: must be an ISO 8601 date-time$/],
      ['colour=blue', /Unrecognized key\(s\) in object: 'colour'/],
    ] as [string, RegExp][]) {
      const r = await api(server, 'GET', `/api/v1/audit?${q}`);
      assert.equal(r.status, 400, `${q}: ${r.text}`);
      assert.match(r.json.detail, detail, q);
    }
  });

  test('signet audit export prints one JSON line per event, oldest first; audit list shows the newest', async () => {
    const all: Event[] = (await api(server, 'GET', '/api/v1/audit?order=asc&limit=1000')).json.items;
    const r = await signetAsync(['audit', 'export'], env.env);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(r.stdout.endsWith('\n'));
    const lines = r.stdout.trimEnd().split('\n');
    const exported = lines.map((l) => JSON.parse(l) as Event);
    // Events the server appended after our read (background work) are a suffix.
    assert.deepEqual(exported.slice(0, all.length), all);
    assert.deepEqual(
      exported.map((e) => e.seq),
      Array.from({ length: exported.length }, (_, i) => i + 1),
    );
    const [{ n }] = await sql(env, 'SELECT COUNT(*) AS n FROM "AuditEvent"');
    assert.ok(exported.length <= Number(n) && exported.length >= all.length);
    const filtered = await signetAsync(['audit', 'export', '--action', 'certificate.issued'], env.env);
    assert.equal(filtered.status, 0, filtered.stderr);
    const issued = filtered.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Event);
    assert.deepEqual(
      issued,
      exported.filter((e) => e.action === 'certificate.issued'),
    );
    const list = await signetAsync(['audit', 'list', '--json', '--limit', '3', '--action', 'certificate.issued'], env.env);
    assert.equal(list.status, 0, list.stderr);
    assert.deepEqual(
      JSON.parse(list.stdout).map((e: Event) => e.seq),
      issued
        .map((e) => e.seq)
        .reverse()
        .slice(0, 3),
    );
    const table = await signetAsync(['audit', 'list', '--limit', '2'], env.env);
    assert.equal(table.status, 0, table.stderr);
    assert.match(table.stdout, /^SEQ\s+TIME\s+ACTOR\s+ACTION\s+TARGET\s+OUTCOME\n/);
    const bad = await signetAsync(['audit', 'export', '--since', 'yesterday'], env.env);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--since yesterday is not a date/);
  });

  test('40 parallel issuances: every one audited, seq without gaps, and verify passes while they run', async () => {
    const head = await newest();
    const csrs = Array.from({ length: 40 }, (_, i) => makeCsr(`DNS:burst${i}.example.test`));
    const issuing = Promise.all(csrs.map((csr) => api(server, 'POST', '/api/v1/certificates', { csr, profile: 'server' })));
    // Verifying a live chain that grows meanwhile must not report a false break.
    const verifying = Promise.all(
      [0, 1, 2].map(async (i) => {
        await sleep(i * 150);
        return signetAsync(['audit', 'verify'], env.env);
      }),
    );
    const [results, verifies] = await Promise.all([issuing, verifying]);
    for (const r of results) assert.equal(r.status, 201, r.text);
    for (const v of verifies) assert.equal(v.status, 0, `verify during the burst: ${v.stdout}${v.stderr}`);
    const serials = new Set(results.map((r) => r.json.serial));
    assert.equal(serials.size, 40);
    const events = (await eventsAfter(head)).filter((e) => e.action === 'certificate.issued');
    assert.deepEqual(new Set(events.map((e) => e.target)), serials, 'one certificate.issued event per certificate');
    const [row] = await sql(env, 'SELECT COUNT(*) AS n, MIN(seq) AS lo, MAX(seq) AS hi FROM "AuditEvent"');
    assert.equal(Number(row.lo), 1);
    assert.equal(Number(row.hi), Number(row.n), 'seq has no gaps');
    const v = await signetAsync(['audit', 'verify'], env.env);
    assert.equal(v.status, 0, v.stderr);
  });

  describe('signet audit verify and tampering in the database', () => {
    let n: number; // events in the intact chain
    let k: number; // a middle event
    let head: string; // the recorded head (Setting audit.head)
    let exported: Event[];
    let intact: { seq: number; hash: string }[];

    let checkpoints: string; // the checkpoint file, which verify reads and a CLI process may append to
    const checkpointFile = () => join(env.dataDir, 'audit-checkpoints');
    const rowsNow = async () =>
      (await sql(env, 'SELECT seq, hash FROM "AuditEvent" ORDER BY seq')).map((r) => ({ seq: Number(r.seq), hash: r.hash as string }));
    async function restore() {
      writeFileSync(checkpointFile(), checkpoints);
      await sql(env, 'DELETE FROM "AuditEvent"');
      await sql(env, 'INSERT INTO "AuditEvent" SELECT * FROM audit_backup');
      await sql(env, `DELETE FROM "Setting" WHERE key = 'audit.head'`);
      await sql(env, `INSERT INTO "Setting" (key, value) VALUES ('audit.head', ?)`, [head]);
      assert.deepEqual(await rowsNow(), intact, 'restored');
    }
    async function expectBroken(seq: number, problem: RegExp): Promise<void> {
      const r = await signetAsync(['audit', 'verify'], env.env);
      assert.equal(r.status, 1, `verify must fail: ${r.stdout}${r.stderr}`);
      assert.equal(r.stdout, '', 'no OK line');
      const m = /^signet: audit chain BROKEN at event (\d+): (.*)$/m.exec(r.stderr);
      assert.ok(m, r.stderr);
      assert.equal(Number(m[1]), seq, r.stderr);
      assert.match(m[2]!, problem);
      const j = await signetAsync(['audit', 'verify', '--json'], env.env);
      assert.equal(j.status, 1);
      const out = JSON.parse(j.stdout);
      assert.equal(out.ok, false);
      assert.equal(out.problem.seq, seq);
    }
    /** The hash a forger who knows the algorithm would compute for `e` after `prevHash`. */
    const forgedHash = (e: Event, prevHash: string) =>
      chainHash(
        prevHash,
        canonical({
          seq: e.seq,
          time: new Date(e.time),
          actor: e.actor,
          action: e.action,
          target: e.target,
          outcome: e.outcome,
          sourceIp: e.sourceIp,
          details: e.details === null ? null : JSON.stringify(e.details),
        }),
      );
    const COLUMNS = '"seq", "time", "actor", "action", "target", "outcome", "sourceIp", "details", "prevHash", "hash"';

    before(async () => {
      assert.equal(await server.stop(), 0);
      const ex = await signetAsync(['audit', 'export'], env.env);
      assert.equal(ex.status, 0, ex.stderr);
      exported = ex.stdout
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l));
      n = exported.length;
      k = Math.floor(n / 2);
      head = (await sql(env, `SELECT value FROM "Setting" WHERE key = 'audit.head'`))[0].value;
      intact = await rowsNow();
      checkpoints = readFileSync(checkpointFile(), 'utf8');
      await sql(env, 'DROP TABLE IF EXISTS audit_backup');
      await sql(env, 'CREATE TABLE audit_backup AS SELECT * FROM "AuditEvent"');
    });

    test('an intact chain: exit 0, and the head it prints is the newest event and the recorded head', async () => {
      const r = await signetAsync(['audit', 'verify'], env.env);
      assert.equal(r.status, 0, r.stderr);
      const last = exported[n - 1]!;
      const [certs, cas, tokens] = [await countRows(env, 'Certificate'), await countRows(env, 'CertificateAuthority'), await countRows(env, 'ApiToken')];
      assert.match(
        r.stdout,
        new RegExp(
          `^audit chain OK: ${n} events \\(HMAC-keyed from event 1\\), head #${n} ${last.hash}\n` +
            `checkpoints OK: \\d+ in ${checkpointFile()}, newest #${n} at \\S+\n` +
            `inventory OK: ${certs} certificates and ${cas} CAs, each with the event that created it\n` +
            `authorisation state OK: ${tokens} API tokens, each with its token.created event and a grant MAC that verifies; 0 enrollment credentials, each with its enrollment.created event, a grant MAC that verifies and one enrollment.used event per use; every ACME account and valid authorization MAC verifies\n$`,
        ),
      );
      assert.equal(head, `${n}:${last.hash}`);
      const j = await signetAsync(['audit', 'verify', '--json'], env.env);
      assert.equal(j.status, 0);
      const out = JSON.parse(j.stdout);
      assert.deepEqual(
        { ok: out.ok, events: out.events, head: out.head, keyedFrom: out.keyedFrom },
        { ok: true, events: n, head: { seq: n, hash: last.hash }, keyedFrom: 1 },
      );
      assert.deepEqual(
        [out.checkpoints.newest.seq, out.checkpoints.problems, out.inventory],
        [n, [], { certificates: certs, cas, tokens, enrollmentCredentials: 0, problems: [], acknowledged: [] }],
      );
    });

    test('an edited row is named: details, actor and outcome', async () => {
      await sql(env, 'UPDATE "AuditEvent" SET details = ? WHERE seq = ?', ['{"tampered":true}', k]);
      await expectBroken(k, new RegExp(`^event ${k} was edited: its content does not match its MAC$`));
      await restore();
      await sql(env, 'UPDATE "AuditEvent" SET actor = ? WHERE seq = ?', ['cli:someone-else', k + 1]);
      await expectBroken(k + 1, new RegExp(`^event ${k + 1} was edited`));
      await restore();
      await sql(env, `UPDATE "AuditEvent" SET outcome = 'failure' WHERE seq = ?`, [2]);
      await expectBroken(2, /^event 2 was edited/);
      await restore();
    });

    test('a deleted middle row is named as missing', async () => {
      await sql(env, 'DELETE FROM "AuditEvent" WHERE seq = ?', [k]);
      await expectBroken(k, new RegExp(`^event ${k} is missing \\(deleted\\?\\); next is ${k + 1}$`));
      await restore();
      await sql(env, 'DELETE FROM "AuditEvent" WHERE seq = 1');
      await expectBroken(1, /^event 1 is missing/);
      await restore();
    });

    test('deleting the newest row (or rows) is detected through the recorded head', async () => {
      await sql(env, 'DELETE FROM "AuditEvent" WHERE seq = ?', [n]);
      await expectBroken(n, new RegExp(`the chain ends at event ${n - 1}, but the recorded head is event ${n}: event ${n} was deleted`));
      await restore();
      await sql(env, 'DELETE FROM "AuditEvent" WHERE seq > ?', [n - 3]);
      await expectBroken(n - 2, new RegExp(`events ${n - 2}\\.\\.${n} were deleted`));
      await restore();
      await sql(env, `DELETE FROM "Setting" WHERE key = 'audit.head'`);
      await expectBroken(n, /the recorded head .* is missing/);
      await restore();
    });

    test('an inserted row is detected: with a made-up hash, with a recomputed hash at the end, and in the middle', async () => {
      // A copy of the newest row as a new event, with a hash that merely looks right.
      await sql(
        env,
        `INSERT INTO "AuditEvent" (${COLUMNS}) SELECT seq + 1, time, actor, action, target, outcome, "sourceIp", details, hash, ? FROM "AuditEvent" WHERE seq = ?`,
        [randomBytes(32).toString('hex'), n],
      );
      await expectBroken(n + 1, new RegExp(`^event ${n + 1} was edited: its content does not match its MAC$`));
      await restore();
      // The same with the hash recomputed by a forger who knows the algorithm but not the key.
      const copy = { ...exported[n - 1]!, seq: n + 1 };
      await sql(
        env,
        `INSERT INTO "AuditEvent" (${COLUMNS}) SELECT seq + 1, time, actor, action, target, outcome, "sourceIp", details, hash, ? FROM "AuditEvent" WHERE seq = ?`,
        [forgedHash(copy, exported[n - 1]!.hash), n],
      );
      await expectBroken(
        n + 1,
        new RegExp(`^event ${n + 1} has an unkeyed hash inside the keyed chain \\(keyed from event 1\\): it was rewritten by someone without the master key$`),
      );
      await restore();
      // In the middle: later rows are renumbered to make room; the forged row links to its
      // predecessor, so the break shows at the next event.
      await sql(env, 'UPDATE "AuditEvent" SET seq = -seq WHERE seq > ?', [k]);
      await sql(env, 'UPDATE "AuditEvent" SET seq = 1 - seq WHERE seq < 0');
      const forged = { ...exported[k - 1]!, seq: k + 1 };
      await sql(
        env,
        `INSERT INTO "AuditEvent" (${COLUMNS}) SELECT seq + 1, time, actor, action, target, outcome, "sourceIp", details, hash, ? FROM "AuditEvent" WHERE seq = ?`,
        [forgedHash(forged, exported[k - 1]!.hash), k],
      );
      await expectBroken(k + 1, new RegExp(`^event ${k + 1} has an unkeyed hash inside the keyed chain`));
      await restore();
    });

    test('two rows swapped (reordered) are detected at the first of them', async () => {
      await sql(env, 'UPDATE "AuditEvent" SET seq = -1 WHERE seq = ?', [k]);
      await sql(env, 'UPDATE "AuditEvent" SET seq = ? WHERE seq = ?', [k, k + 1]);
      await sql(env, 'UPDATE "AuditEvent" SET seq = ? WHERE seq = -1', [k + 1]);
      await expectBroken(k, new RegExp(`^event ${k} does not link to event ${k - 1}`));
      await restore();
    });

    test('an edit followed by rehashing the rest of the chain without the key is caught at the edit', async () => {
      let prev = exported[k - 2]!.hash;
      for (const e of exported.slice(k - 1)) {
        const changed = e.seq === k ? { ...e, details: { tampered: true } } : e;
        const hash = forgedHash(changed, prev);
        await sql(env, 'UPDATE "AuditEvent" SET details = ?, "prevHash" = ?, hash = ? WHERE seq = ?', [
          changed.details === null ? null : JSON.stringify(changed.details),
          prev,
          hash,
          e.seq,
        ]);
        prev = hash;
      }
      await expectBroken(k, new RegExp(`^event ${k} has an unkeyed hash inside the keyed chain`));
      await restore();
    });

    test('after every tampering was undone the chain verifies again', async () => {
      const r = await signetAsync(['audit', 'verify'], env.env);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^audit chain OK: ${n} events \\(HMAC-keyed from event 1\\), head #${n} [0-9a-f]{64}\\n`));
      await sql(env, 'DROP TABLE audit_backup');
    });
  });
});
