/**
 * Issue 19, item 1: expiry alerts that are not noise, on SQLite (or PostgreSQL under
 * SIGNET_TEST_POSTGRES). A real HTTP server on loopback over a context whose clock the test
 * moves (ca/clock.ts); the expiry sweep is run as the server runs it each minute, and /metrics,
 * GET /api/v1/certificates?atRisk=true and `signet list --at-risk` (the real CLI, on the real
 * clock: the test's clock starts 100 days in the past so "now" lines up) are read after it.
 *
 * - a certificate in its alert window disappears from the gauge, the REST list and the CLI once
 *   it is renewed (REST renew), rekeyed (REST renew with a CSR) or re-issued for the same names,
 *   and each alert is reported once (takeNewlyAtRisk, through the sweep);
 * - a revoked certificate is not at risk, and not in the time-left histogram;
 * - a fleet of 24-hour certificates renewed at about two thirds of their life, swept every hour
 *   for three days, never shows up; the one that stops renewing does, once;
 * - a profile's alertDays moves the window; bad alertDays are refused at load;
 * - a CA within 90 days of its end is at risk (kind `ca`, signet_cas_at_risk).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { api, signet, startServer } from './helpers/cli.js';
import pg from 'pg';
import { createTestEnv, onPostgres, type TestEnv } from './helpers/env.js';
import { csrMaker, TempDir } from './helpers/openssl.js';
import { sql } from './helpers/sql.js';
import { loadConfig } from '../src/config/config.js';
import { bootstrapIfEmpty, openSignet } from '../src/runtime/open.js';
import { createServices } from '../src/runtime/services.js';
import { createHandler } from '../src/http/app.js';
import { createMetrics } from '../src/observability/metrics.js';
import { snapshotReader, sweepExpiry, type AtRisk } from '../src/ca/expiry-alerts.js';
import { loadProfiles } from '../src/ca/profiles.js';
import type { CaContext } from '../src/ca/context.js';

const DAY = 86_400_000;
const HOUR = 3_600_000;

const PROFILES = {
  daily: { description: '24-hour certificates', sanTypes: ['dns'], defaultValidityDays: 1, maxValidityDays: 1, extKeyUsage: ['serverAuth'] },
  alerted: { sanTypes: ['dns'], defaultValidityDays: 30, maxValidityDays: 90, extKeyUsage: ['serverAuth'], alertDays: 5 },
};

describe('expiry alerts', { concurrency: false }, () => {
  const tmp = new TempDir();
  let env: TestEnv;
  let ctx: CaContext;
  let http: Server;
  let server: { url: string; token: string };
  let intId: string;
  const T0 = Date.now() - 100 * DAY;
  const clock = { now: T0 };
  let csr: (san: string) => string;

  before(async () => {
    const profilesFile = join(tmp.path, 'profiles.json');
    writeFileSync(profilesFile, JSON.stringify(PROFILES));
    env = await createTestEnv({ SIGNET_PROFILES_FILE: profilesFile });
    const config = loadConfig(env.env);
    ctx = await openSignet(config, pino({ level: 'silent' }), { now: () => new Date(clock.now) });
    await bootstrapIfEmpty(ctx, config);
    const services = createServices(ctx, config);
    const metrics = createMetrics();
    metrics.watchExpiry(snapshotReader(ctx, 0));
    http = createServer(
      createHandler(ctx, metrics, {
        bodyLimit: config.SIGNET_BODY_LIMIT,
        trustProxy: config.SIGNET_TRUST_PROXY,
        rateLimitPerAddress: 0,
        rateLimitPerToken: 0,
        ...services,
      }),
    );
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    server = { url: `http://127.0.0.1:${(http.address() as { port: number }).port}`, token: readFileSync(join(env.dataDir, 'admin-token'), 'utf8').trim() };
    const [int] = await sql<{ id: string }>(env, 'SELECT "id" FROM "CertificateAuthority" WHERE "parentId" IS NOT NULL AND "parentId" <> "id"');
    intId = int!.id;
    csr = csrMaker(tmp);
  });
  after(async () => {
    await new Promise<void>((r) => http?.close(() => r()));
    await ctx?.db.close();
    await env?.cleanup();
    tmp.remove();
  });

  async function issue(profile: string, name: string): Promise<string> {
    const r = await api(server, 'POST', '/api/v1/certificates', { csr: csr(`DNS:${name}`), profile });
    assert.equal(r.status, 201, r.text);
    return r.json.serial as string;
  }
  async function renew(serial: string, body: object = {}): Promise<string> {
    const r = await api(server, 'POST', `/api/v1/certificates/${serial}/renew`, body);
    assert.equal(r.status, 201, r.text);
    return r.json.serial as string;
  }
  async function scrape(): Promise<string> {
    const r = await fetch(`${server.url}/metrics`);
    assert.equal(r.status, 200);
    return r.text();
  }
  /** The value of one series, or undefined when absent. */
  function series(text: string, name: string, labels: string): number | undefined {
    const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}} `) || (labels === '' && l.startsWith(`${name} `)));
    return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  async function restAtRisk(query = ''): Promise<AtRisk[]> {
    const r = await api(server, 'GET', `/api/v1/certificates?atRisk=true&limit=500${query}`);
    assert.equal(r.status, 200, r.text);
    return r.json.items;
  }
  function cliAtRisk(): { kind: string; id: string; serial?: string; caId: string }[] {
    const r = signet(['list', '--at-risk', '--json', '--limit', '500'], env.env);
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout).items;
  }
  const serialsOf = (items: { kind: string; serial?: string }[]) => new Set(items.filter((i) => i.kind === 'certificate').map((i) => i.serial!));

  test('profiles: alertDays must be positive and less than maxValidityDays', () => {
    const file = (p: object) => {
      const f = join(tmp.path, `p-${Math.random()}.json`);
      writeFileSync(f, JSON.stringify({ x: { defaultValidityDays: 30, maxValidityDays: 90, extKeyUsage: ['serverAuth'], ...p } }));
      return f;
    };
    assert.equal(loadProfiles(file({ alertDays: 0.25 })).get('x')!.alertDays, 0.25);
    assert.throws(() => loadProfiles(file({ alertDays: 90 })), /profile x: alertDays: alertDays must be less than maxValidityDays/);
    assert.throws(() => loadProfiles(file({ alertDays: 0 })), /profile x: alertDays: must be positive/);
    assert.throws(() => loadProfiles(file({ alertDays: -3 })), /profile x: alertDays: must be positive/);
    assert.throws(() => loadProfiles(file({ alertDays: 'soon' })), /profile x: alertDays:/);
  });

  test('renewal, rekey and re-issue for the same names take a certificate out of the gauge, the REST list and the CLI; a revoked one never is at risk; each alert is reported once', async () => {
    clock.now = T0 + 30 * DAY;
    const a = await issue('server', 'a.alerts.test');
    const b = await issue('server', 'b.alerts.test');
    const c = await issue('server', 'c.alerts.test');
    const revoked = await issue('server', 'r.alerts.test');
    const fresh = await issue('server', 'fresh.alerts.test');
    // 50 of 90 days: before the last third (at 60 days).
    clock.now = T0 + 80 * DAY;
    let sweep = await sweepExpiry(ctx);
    assert.deepEqual(sweep.newlyAtRisk, []);
    assert.equal(series(await scrape(), 'signet_certificates_at_risk', `profile="server",ca="${intId}"`), undefined);
    assert.equal((await api(server, 'POST', `/api/v1/certificates/${revoked}/revoke`, { reason: 'superseded' })).status, 200);
    // 70 of 90 days: in the last third. The fresh one was issued again (same names) right before.
    clock.now = T0 + 100 * DAY;
    // The certificate issued at the real "now" for the same names as `fresh`.
    const fresh2 = await issue('server', 'fresh.alerts.test');
    sweep = await sweepExpiry(ctx);
    const newly = serialsOf(sweep.newlyAtRisk);
    assert.deepEqual([...newly].sort(), [a, b, c].sort(), 'at risk: the three not renewed; not the revoked one, not the re-issued one');
    assert.equal(series(await scrape(), 'signet_certificates_at_risk', `profile="server",ca="${intId}"`), 3);
    assert.deepEqual([...serialsOf(await restAtRisk())].sort(), [a, b, c].sort());
    const item = (await restAtRisk()).find((i) => i.kind === 'certificate' && i.serial === a)!;
    assert.ok(Math.abs(new Date(item.alertFrom).getTime() - (T0 + 30 * DAY + 60 * DAY)) < 10 * 60_000, 'the window opens at two thirds of the life');
    // The CLI reads the same database on the real clock (about T0 + 100 days).
    assert.deepEqual([...serialsOf(cliAtRisk())].sort(), [a, b, c].sort());
    // Reported once: the next sweep finds them at risk still, and reports nothing.
    sweep = await sweepExpiry(ctx);
    assert.deepEqual(sweep.newlyAtRisk, []);

    // The real renewal paths: renew (same key), rekey (a CSR for the same names), a new certificate for the same names.
    const a2 = await renew(a);
    const b2 = await renew(b, { csr: csr('DNS:b.alerts.test') });
    await issue('server', 'c.alerts.test');
    // Renewals keep the names, so the same-names rule finds them too: the lineage read on its own.
    assert.deepEqual([...(await ctx.stores.expiry.renewed([a, b, c, fresh], new Date(clock.now)))].sort(), [a, b].sort());
    assert.deepEqual([...(await ctx.stores.expiry.replacedByAcme([a, b, c], new Date(clock.now)))], []);
    sweep = await sweepExpiry(ctx);
    assert.deepEqual(sweep.newlyAtRisk, [], 'the successors are not at risk');
    const metrics = await scrape();
    assert.equal(series(metrics, 'signet_certificates_at_risk', `profile="server",ca="${intId}"`), undefined);
    assert.deepEqual(serialsOf(await restAtRisk()), new Set());
    assert.deepEqual(serialsOf(cliAtRisk()), new Set());
    assert.ok(![a, b, c, a2, b2, fresh, fresh2].some((s) => serialsOf(sweep.newlyAtRisk).has(s)));

    // The time-left histogram: every good, unexpired certificate once, revoked ones not.
    // Nothing has expired yet at this point: every good certificate counts.
    const good = Number((await sql<{ n: number }>(env, `SELECT COUNT(*) AS n FROM "Certificate" WHERE "status" = 'good'`))[0]!.n);
    assert.equal(good, 8);
    assert.equal(series(metrics, 'signet_certificate_expiry_seconds_count', ''), good);
    assert.equal(series(metrics, 'signet_certificate_expiry_seconds_bucket', 'le="+Inf"'), good);
    // a, b, c and the first `fresh` (20 days left) are below 30 days and above 14; the four issued now, below 90.
    assert.equal(series(metrics, 'signet_certificate_expiry_seconds_bucket', `le="${14 * 86400}"`), 0);
    assert.equal(series(metrics, 'signet_certificate_expiry_seconds_bucket', `le="${30 * 86400}"`), 4);
    assert.equal(series(metrics, 'signet_certificate_expiry_seconds_bucket', `le="${90 * 86400}"`), 8);
    const sum = series(metrics, 'signet_certificate_expiry_seconds_sum', '')!;
    assert.ok(Math.abs(sum - (4 * 20 + 4 * 90) * 86400) < 8 * 3600, `sum ${sum}`);

    // The REST filter refuses what it does not combine with, precisely.
    const bad = await api(server, 'GET', '/api/v1/certificates?atRisk=true&status=good');
    assert.equal(bad.status, 400);
    assert.match(bad.json.detail, /atRisk=true combines with profile, caId, cursor and limit only, not status/);
  });

  test('24-hour certificates renewed at about two thirds of their life, swept every hour for three days, never show up; the one that stops renewing does, once', async () => {
    clock.now = T0 + 100 * DAY + HOUR;
    let fleet = await Promise.all(['d1', 'd2', 'd3'].map((n) => issue('daily', `${n}.daily.test`)));
    const life = new Map<string, { notBefore: number; notAfter: number }>();
    const remember = async (s: string) => {
      const r = await api(server, 'GET', `/api/v1/certificates/${s}`);
      life.set(s, { notBefore: new Date(r.json.notBefore).getTime(), notAfter: new Date(r.json.notAfter).getTime() });
    };
    for (const s of fleet) await remember(s);
    const stopped = fleet[2]!;
    let renewals = 0;
    for (let step = 0; step < 72; step++) {
      clock.now += HOUR;
      fleet = await Promise.all(
        fleet.map(async (s) => {
          const l = life.get(s)!;
          // step renews at two thirds; certbot when a third is left: a little before the window opens.
          if (s === stopped || clock.now < l.notBefore + 0.66 * (l.notAfter - l.notBefore)) return s;
          const next = await renew(s);
          renewals++;
          await remember(next);
          return next;
        }),
      );
      const sweep = await sweepExpiry(ctx);
      const daily = sweep.newlyAtRisk.filter((a) => a.kind === 'certificate' && a.profile === 'daily');
      const metric = series(await scrape(), 'signet_certificates_at_risk', `profile="daily",ca="${intId}"`);
      const l = life.get(stopped)!;
      if (clock.now < l.notBefore + ((l.notAfter - l.notBefore) * 2) / 3) {
        assert.equal(metric, undefined, `hour ${step}: nothing at risk`);
        assert.deepEqual(daily, []);
      } else if (clock.now < l.notAfter) {
        assert.equal(metric, 1, `hour ${step}: the certificate that stopped renewing is at risk`);
        assert.deepEqual(
          daily.map((a) => a.id),
          clock.now - HOUR < l.notBefore + ((l.notAfter - l.notBefore) * 2) / 3 ? [stopped] : [],
          'reported once, when it came at risk',
        );
      } else {
        assert.equal(metric, undefined, `hour ${step}: expired, no longer at risk (gone)`);
      }
    }
    assert.ok(renewals >= 8, `the two renewing certificates renewed (${renewals} renewals)`);
  });

  test("a profile's alertDays moves the window: not at risk in the last third, at risk in the last days", async () => {
    clock.now = T0 + 104 * DAY;
    const s = await issue('alerted', 'x.alerted.test');
    clock.now += 22 * DAY; // 8 days left: in the last third, not in the last 5 days
    assert.ok(!serialsOf(await restAtRisk('&profile=alerted')).has(s));
    clock.now += 4 * DAY; // 4 days left
    const items = await restAtRisk('&profile=alerted');
    assert.ok(serialsOf(items).has(s));
    assert.ok(
      items.every((i) => i.kind === 'certificate'),
      'a profile filter lists no CA',
    );
  });

  test("the sweep's reads are index ranges, not scans of the certificate table", async () => {
    // The statements the sweep runs (storage/expiry-store.ts), planned by the database itself.
    const reads = [
      {
        sql: `SELECT "serial" FROM "Certificate" WHERE "profile" = 'server' AND "notAfter" > ? AND "notAfter" <= ? AND "status" = 'good'`,
        index: 'Certificate_(profile_)?status_notAfter_idx',
      },
      { sql: `SELECT COUNT(*) FROM "Certificate" WHERE "status" = 'good' AND "notAfter" > ?`, index: 'Certificate_status_notAfter_idx' },
      { sql: `SELECT "replaces", "status" FROM "AcmeOrder" WHERE "replaces" IN (?, ?)`, index: 'AcmeOrder_replaces_idx' },
    ];
    for (const r of reads) {
      if (onPostgres) {
        // A table this small is cheapest to scan: with scans priced out, the plan shows the index serves the statement.
        let i = 0;
        const text = r.sql.replace(/\?/g, () => `$${++i}`);
        const c = new pg.Client({ connectionString: env.databaseUrl });
        await c.connect();
        try {
          await c.query('SET enable_seqscan = off');
          const params = r.sql.includes('IN (') ? ['a', 'b'] : r.sql.includes('<=') ? ['2026-01-01', '2027-01-01'] : ['2026-01-01'];
          const plan = (await c.query(`EXPLAIN ${text}`, params)).rows.map((x) => x['QUERY PLAN']).join('\n');
          assert.match(plan, new RegExp(r.index), plan);
        } finally {
          await c.end();
        }
      } else {
        const plan = (
          await sql<{ detail: string }>(env, `EXPLAIN QUERY PLAN ${r.sql}`, r.sql.includes('IN (') ? ['a', 'b'] : r.sql.includes('<=') ? ['a', 'b'] : ['a'])
        )
          .map((x) => x.detail)
          .join('\n');
        assert.match(plan, new RegExp(`USING (COVERING )?INDEX ${r.index} `), plan);
        assert.doesNotMatch(plan, /SCAN "?Certificate"?(\s|$)/, plan);
      }
    }
  });

  test('a CA within 90 days of its end is at risk (kind ca), a CA further away is not', async () => {
    const end = (await ctx.stores.cas.get(intId))!.notAfter.getTime();
    clock.now = end - 100 * DAY;
    assert.ok(!(await restAtRisk()).some((i) => i.kind === 'ca' && i.caId === intId));
    clock.now = end - 30 * DAY;
    const items = await restAtRisk();
    const ca = items.find((i) => i.kind === 'ca' && i.caId === intId);
    assert.ok(ca, JSON.stringify(items));
    assert.ok(Math.abs(ca.secondsLeft - 30 * 86400) < 60);
    await sweepExpiry(ctx);
    assert.equal(series(await scrape(), 'signet_cas_at_risk', `ca="${intId}"`), 1);
  });

  test('`signet serve` sweeps at start and every process reads the result: the metrics are on /metrics of the real server', async () => {
    // The snapshot the in-process sweeps left (on the test's clock) goes: what /metrics shows next is the server's.
    await sql(env, `DELETE FROM "Setting" WHERE "key" = 'expiry.snapshot'`);
    const real = await startServer(env.env);
    try {
      let text = '';
      // The first sweep runs as the server starts; until it saved its result the histogram has no samples.
      for (let i = 0; i < 100 && !/^signet_certificate_expiry_seconds_count \d+$/m.test(text); i++) {
        await new Promise((r) => setTimeout(r, 100));
        text = await (await fetch(`${real.url}/metrics`)).text();
      }
      assert.match(text, /^# TYPE signet_certificates_at_risk gauge$/m);
      assert.match(text, /^# TYPE signet_cas_at_risk gauge$/m);
      assert.match(text, /^# TYPE signet_certificate_expiry_seconds histogram$/m);
      const good = Number(
        (
          await sql<{ n: number }>(env, `SELECT COUNT(*) AS n FROM "Certificate" WHERE "status" = 'good' AND "notAfter" > ?`, [
            onPostgres ? new Date() : new Date().toISOString().replace('Z', '+00:00'),
          ])
        )[0]!.n,
      );
      assert.match(text, new RegExp(`^signet_certificate_expiry_seconds_count ${good}$`, 'm'), text);
      assert.match(text, /^signet_certificate_expiry_seconds_bucket\{le="3600"\} \d+$/m);
      // On the real clock the CA is years from its end.
      assert.doesNotMatch(text, /^signet_cas_at_risk\{/m);
    } finally {
      assert.equal(await real.stop(), 0);
    }
  });
});
