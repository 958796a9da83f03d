/**
 * Issue 17, enrollment credentials: made at the CLI and over REST, listed and revoked; and
 * authenticateEnrollment / spendEnrollmentUse in-process against the same database the server
 * uses. Every refusal is made by sending the bad thing (an unknown secret, a wrong id, a revoked,
 * expired or spent credential, the wrong protocol or profile, a row restored after revocation or
 * tampered with in SQL), is audited as enrollment.refused and spends nothing. Two processes
 * spending a one-time credential at once: exactly one wins. The secret never appears in the
 * logs, the audit trail or a list.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { api, signet, startServer, type RunningServer } from './helpers/cli.js';
import { childEnv, createTestEnv, type TestEnv } from './helpers/env.js';
import { sql } from './helpers/sql.js';
import { enroller } from './helpers/enroll-as.js';
import { loadConfig } from '../src/config/config.js';
import { openSignet } from '../src/runtime/open.js';
import type { CaContext } from '../src/ca/context.js';
import { authorizeCertificate } from '../src/ca/authorization.js';
import { authenticateEnrollment, createEnrollmentCredential, listEnrollmentCredentials, revokeEnrollmentCredential } from '../src/ca/enrollment-credentials.js';
import { SignetError } from '../src/errors.js';

const PROBLEM = 'application/problem+json; charset=utf-8';
const ACTOR = { actor: 'test' };

describe('enrollment credentials', () => {
  let env: TestEnv;
  let server: RunningServer;
  let ctx: CaContext;
  /** Enrolls one certificate as the principal: the issuance commit spends the use. */
  let enroll: ReturnType<typeof enroller>;
  /** Every secret made here: none may appear in logs, the audit trail or a list. */
  const secrets: string[] = [];

  const open = () => openSignet(loadConfig(env.env), pino({ level: 'silent' }));
  async function make(c: Partial<Parameters<typeof createEnrollmentCredential>[1]> = {}) {
    const made = await createEnrollmentCredential(ctx, { protocol: 'est', profile: 'server', ...c }, ACTOR);
    secrets.push(made.secret);
    return made;
  }
  const certificates = async () => Number((await sql(env, `SELECT COUNT(*) AS n FROM "Certificate"`))[0]!.n);
  const row = async (id: string) => (await sql(env, `SELECT * FROM "EnrollmentCredential" WHERE id = ?`, [id]))[0]!;
  const events = async (action: string, target: string) =>
    (await sql(env, `SELECT actor, details FROM "AuditEvent" WHERE action = ? AND target = ? ORDER BY seq`, [action, target])).map((e) => ({
      actor: e.actor as string,
      details: JSON.parse(e.details as string) as Record<string, unknown>,
    }));
  /** Asserts a 401 with this detail, an enrollment.refused event with this reason, and nothing spent. */
  /** `audit` null: a secret that names no credential, counted by the HTTP layer's summary instead of its own event. */
  async function refused(attempt: () => Promise<unknown>, detail: RegExp, audit: { target: string; reason: string; actor?: string } | null): Promise<void> {
    const spentBefore = (await sql(env, `SELECT COALESCE(SUM("usesSpent"), 0) AS n FROM "EnrollmentCredential"`))[0]!.n;
    const usedBefore = (await sql(env, `SELECT COUNT(*) AS n FROM "AuditEvent" WHERE action = 'enrollment.used'`))[0]!.n;
    const allBefore = (await sql(env, `SELECT COUNT(*) AS n FROM "AuditEvent" WHERE action = 'enrollment.refused'`))[0]!.n;
    const refusalsBefore = audit ? (await events('enrollment.refused', audit.target)).length : 0;
    await assert.rejects(attempt(), (e: unknown) => {
      assert.ok(e instanceof SignetError, String(e));
      assert.equal(e.status, 401);
      assert.equal(e.type, 'unauthorized');
      assert.match(e.detail, detail);
      return true;
    });
    if (audit) {
      const refusals = await events('enrollment.refused', audit.target);
      assert.equal(refusals.length, refusalsBefore + 1, 'the refusal is audited');
      const last = refusals.at(-1)!;
      assert.equal(last.details.reason, audit.reason);
      assert.equal(last.actor, audit.actor ?? `enroll:${audit.target}`);
    } else {
      assert.equal((await sql(env, `SELECT COUNT(*) AS n FROM "AuditEvent" WHERE action = 'enrollment.refused'`))[0]!.n, allBefore, 'no event of its own');
    }
    assert.equal((await sql(env, `SELECT COALESCE(SUM("usesSpent"), 0) AS n FROM "EnrollmentCredential"`))[0]!.n, spentBefore, 'no use spent');
    assert.equal((await sql(env, `SELECT COUNT(*) AS n FROM "AuditEvent" WHERE action = 'enrollment.used'`))[0]!.n, usedBefore, 'no use audited');
  }

  before(async () => {
    env = await createTestEnv();
    server = await startServer(env.env);
    ctx = await open();
    enroll = enroller(env.env);
  });
  after(async () => {
    await ctx?.db.close();
    await server?.stop();
    await env?.cleanup();
  });

  test('CLI: create prints the id and secret once (and the --userpass form for EST), list shows no secret, revoke stops it', async () => {
    const made = signet(['enroll', 'create', '--profile', 'server', '--names', 'gw1.corp.example,gw2.corp.example', '--json'], env.env);
    assert.equal(made.status, 0, made.stderr);
    const j = JSON.parse(made.stdout);
    secrets.push(j.secret);
    assert.match(j.id, /^enr_[0-9a-f]{16}$/);
    assert.match(j.secret, /^[A-Za-z0-9_-]{32}$/, '192 bits, base64url');
    assert.equal(j.userpass, `${j.id}:${j.secret}`);
    assert.equal(j.credential.protocol, 'est');
    assert.equal(j.credential.usesAllowed, 1);
    assert.equal(j.credential.status, 'active');
    assert.deepEqual(j.credential.nameSuffixes, ['gw1.corp.example', 'gw2.corp.example']);
    const days = (Date.parse(j.credential.expiresAt) - Date.now()) / 86_400_000;
    assert.ok(days > 6.9 && days <= 7, `expires in 7 days by default (${days})`);
    assert.equal(j.credential.createdBy, `cli:${userInfo().username}`);

    const text = signet(['enroll', 'create', '--profile', 'client', '--protocol', 'scep', '--uses', '5', '--expires-in', 'never'], env.env);
    assert.equal(text.status, 0, text.stderr);
    const secret = /challenge password: (\S+)/.exec(text.stdout)?.[1];
    assert.ok(secret, text.stdout);
    secrets.push(secret);
    assert.match(text.stdout, /SCEP, profile client, 5 uses, never expires/);
    assert.doesNotMatch(text.stdout, /userpass/, 'no EST form for a SCEP credential');

    const list = signet(['enroll', 'list', '--json'], env.env);
    assert.equal(list.status, 0, list.stderr);
    const items = JSON.parse(list.stdout) as Record<string, unknown>[];
    const mine = items.find((i) => i.id === j.id)!;
    assert.ok(mine);
    assert.equal(mine.secret, undefined);
    assert.equal(mine.secretHash, undefined);
    assert.equal(mine.grantMac, undefined);
    const table = signet(['enroll', 'list'], env.env);
    assert.match(table.stdout, new RegExp(`${j.id}\\s+est\\s+server\\s+gw1.corp.example,gw2.corp.example\\s+0/1\\s+active`));

    const revoked = signet(['enroll', 'revoke', j.id], env.env);
    assert.equal(revoked.status, 0, revoked.stderr);
    assert.equal(revoked.stdout, `enrollment credential ${j.id} revoked\n`);
    assert.equal(JSON.parse(signet(['enroll', 'list', '--json'], env.env).stdout).find((i: { id: string }) => i.id === j.id).status, 'revoked');
    const again = signet(['enroll', 'revoke', j.id], env.env);
    assert.equal(again.status, 2);
    assert.match(again.stderr, new RegExp(`enrollment credential ${j.id} is already revoked`));
  });

  test('CLI: bad input is refused with a precise message and nothing is stored; --help explains', async () => {
    const count = async () => Number((await sql(env, `SELECT COUNT(*) AS n FROM "EnrollmentCredential"`))[0]!.n);
    const before = await count();
    const cases: [string[], RegExp][] = [
      [['--profile', 'nope'], /profile "nope" is not a configured profile; configured: .*server.*client/],
      [['--profile', 'server', '--protocol', 'cmp'], /--protocol must be est or scep, not "cmp"/],
      [['--profile', 'server', '--uses', '0'], /uses must be a whole number from 1 to 1000000, not 0/],
      [['--profile', 'server', '--uses', '-3'], /--uses must be a positive whole number/],
      [['--profile', 'server', '--expires-in', '3x'], /--expires-in "3x" is not a duration/],
      [['--profile', 'server', '--names', 'bad..example'], /^signet: error: nameSuffixes: DNS suffix/],
      [['--profile', 'server', '--names', ','], /--names must name at least one suffix/],
    ];
    for (const [args, message] of cases) {
      const r = signet(['enroll', 'create', ...args], env.env);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, message, args.join(' '));
    }
    assert.equal(await count(), before, 'nothing stored');
    const help = signet(['enroll', 'create', '--help'], env.env);
    assert.match(help.stdout, /--expires-in <duration>[\s\S]*\(default:\s+"7d"\)/);
    assert.match(help.stdout, /--userpass <id>:<secret>/);
    assert.match(help.stdout, /SCEP: the secret is the challenge password/);
  });

  test('REST: create (secret once, no-store), list without secrets, revoke; bad bodies are 400 problems and store nothing', async () => {
    const made = await api(server, 'POST', '/api/v1/enrollment-credentials', {
      protocol: 'scep',
      profile: 'client',
      nameSuffixes: ['devices.corp.example'],
      uses: 3,
      expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
    });
    assert.equal(made.status, 201, made.text);
    assert.equal(made.headers.get('cache-control'), 'no-store');
    secrets.push(made.json.secret);
    assert.equal(made.json.credential.protocol, 'scep');
    assert.equal(made.json.credential.usesAllowed, 3);
    assert.equal(made.json.credential.createdBy, `token:${(await sql(env, `SELECT id FROM "ApiToken" LIMIT 1`))[0]!.id}`);
    const created = await events('enrollment.created', made.json.id);
    assert.equal(created.length, 1);
    assert.deepEqual(created[0]!.details.nameSuffixes, ['devices.corp.example']);

    const list = await api(server, 'GET', '/api/v1/enrollment-credentials');
    assert.equal(list.status, 200);
    const item = list.json.items.find((i: { id: string }) => i.id === made.json.id);
    assert.deepEqual(Object.keys(item).sort(), [
      'createdAt',
      'createdBy',
      'expiresAt',
      'id',
      'lastUsedAt',
      'nameSuffixes',
      'profile',
      'protocol',
      'revokedAt',
      'status',
      'usesAllowed',
      'usesSpent',
    ]);

    const count = async () => Number((await sql(env, `SELECT COUNT(*) AS n FROM "EnrollmentCredential"`))[0]!.n);
    const before = await count();
    const bad: [unknown, RegExp][] = [
      [{ profile: 'server', secret: 'mine' }, /Unrecognized key\(s\) in object: 'secret'/],
      [{ profile: 'nope' }, /^profile "nope" is not a configured profile; configured: /],
      [{ profile: 'server', protocol: 'cmp' }, /^protocol: /],
      [{ profile: 'server', uses: 0 }, /^uses: /],
      [{ profile: 'server', uses: 1.5 }, /^uses: /],
      [{ profile: 'server', nameSuffixes: [] }, /^nameSuffixes: /],
      [{ profile: 'server', nameSuffixes: ['-bad.example'] }, /^nameSuffixes: DNS suffix/],
      [{ profile: 'server', expiresAt: '2001-01-01T00:00:00Z' }, /^expiresAt must be in the future$/],
      [{}, /^profile: /],
    ];
    for (const [body, detail] of bad) {
      const r = await api(server, 'POST', '/api/v1/enrollment-credentials', body);
      assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
      assert.equal(r.headers.get('content-type'), PROBLEM);
      assert.match(r.json.detail, detail, JSON.stringify(body));
    }
    assert.equal(await count(), before, 'nothing stored');

    const revoked = await api(server, 'POST', `/api/v1/enrollment-credentials/${made.json.id}/revoke`, {});
    assert.equal(revoked.status, 200, revoked.text);
    assert.equal(revoked.json.status, 'revoked');
    assert.equal((await events('enrollment.revoked', made.json.id)).length, 1);
    const twice = await api(server, 'POST', `/api/v1/enrollment-credentials/${made.json.id}/revoke`, {});
    assert.equal(twice.status, 409);
    assert.match(twice.json.detail, /is already revoked/);
    const missing = await api(server, 'POST', '/api/v1/enrollment-credentials/enr_0000000000000000/revoke', {});
    assert.equal(missing.status, 404);
    assert.equal(missing.json.detail, 'enrollment credential enr_0000000000000000 does not exist');
    const malformed = await api(server, 'POST', '/api/v1/enrollment-credentials/tok-1/revoke', {});
    assert.equal(malformed.status, 400);
    assert.match(malformed.json.detail, /^id: must be an enrollment credential id/);

    // A token without the admin scope can do none of it.
    const reader = await api(server, 'POST', '/api/v1/tokens', { name: 'reader', scopes: ['read', 'issue'] });
    const as = { url: server.url, token: reader.json.token };
    assert.equal((await api(as, 'GET', '/api/v1/enrollment-credentials')).status, 403);
    assert.equal((await api(as, 'POST', '/api/v1/enrollment-credentials', { profile: 'server' })).status, 403);
    assert.equal(await count(), before);
  });

  test('authenticate: the right secret gives the enrollment principal, spends nothing; spending one use makes a one-time credential used', async () => {
    const m = await make({ nameSuffixes: ['gw.corp.example'], profile: 'server' });
    for (let i = 0; i < 2; i++) {
      const p = await authenticateEnrollment(ctx, m.secret, { protocol: 'est', id: m.id, profile: 'server' });
      assert.deepEqual(p, { kind: 'enrollment', credentialId: m.id, protocol: 'est', profile: 'server', nameSuffixes: ['gw.corp.example'] });
    }
    // Without the optional expectations (SCEP has no user name; a path without a profile).
    const p = await authenticateEnrollment(ctx, m.secret, { protocol: 'est' });
    assert.equal((await row(m.id)).usesSpent, 0, 'authenticating spends nothing');
    // What the principal may do stays authorization.ts's decision.
    authorizeCertificate(p, 'certificate.issue', { profile: 'server', sans: [{ type: 'dns', value: 'a.gw.corp.example' }] });
    assert.throws(() => authorizeCertificate(p, 'certificate.issue', { profile: 'server', sans: [{ type: 'dns', value: 'evil.example' }] }), /outside them/);

    await enroll(ctx, p);
    const r = await row(m.id);
    assert.equal(Number(r.usesSpent), 1);
    assert.ok(r.lastUsedAt, 'last use recorded');
    const used = await events('enrollment.used', m.id);
    assert.equal(used.length, 1);
    assert.equal(used[0]!.actor, `enroll:${m.id}`);
    assert.equal((await listEnrollmentCredentials(ctx)).find((c) => c.id === m.id)!.status, 'used');

    await refused(() => authenticateEnrollment(ctx, m.secret, { protocol: 'est', id: m.id }), new RegExp(`^enrollment credential ${m.id} was already used$`), {
      target: m.id,
      reason: 'exhausted',
    });
    await assert.rejects(enroll(ctx, p), new RegExp(`enrollment credential ${m.id} was already used`));
    assert.equal(Number((await row(m.id)).usesSpent), 1);

    // Three uses: three spends, then none left.
    const three = await make({ uses: 3 });
    const p3 = await authenticateEnrollment(ctx, three.secret, { protocol: 'est' });
    for (let i = 0; i < 3; i++) await enroll(ctx, p3);
    await refused(() => authenticateEnrollment(ctx, three.secret, { protocol: 'est' }), /has no uses left \(3 of 3 used\)/, {
      target: three.id,
      reason: 'exhausted',
    });
    // Repeating a refused request does not write an event each time: one per credential and
    // reason a minute (the repeats are counted with the anonymous refusals by the adapters).
    for (let i = 0; i < 5; i++)
      await assert.rejects(authenticateEnrollment(ctx, three.secret, { protocol: 'est' }), (e: unknown) => e instanceof SignetError && e.cause === undefined);
    assert.equal((await events('enrollment.refused', three.id)).length, 1);
  });

  test('refusals: unknown, wrong id, revoked, expired, wrong protocol, wrong profile — each 401, audited, nothing spent', async () => {
    const m = await make({ profile: 'server', uses: 2, expiresAt: new Date(Date.now() + 3_600_000) });
    const unknown = /^unknown enrollment credential, or wrong secret$/;
    // Unknown secret: nobody to name, no event of its own (the EST/SCEP routes tally it).
    await refused(() => authenticateEnrollment(ctx, 'A'.repeat(32), { protocol: 'est', id: m.id }), unknown, null);
    await refused(() => authenticateEnrollment(ctx, '', { protocol: 'est', id: m.id }), unknown, null);
    await refused(() => authenticateEnrollment(ctx, m.secret.slice(0, -1), { protocol: 'est', id: m.id }), unknown, null);
    // The right secret under another credential's id answers exactly as an unknown secret.
    const other = await make();
    await refused(() => authenticateEnrollment(ctx, m.secret, { protocol: 'est', id: other.id }), unknown, { target: m.id, reason: 'wrong id' });
    // (the same refusal again within the minute: counted, not written again)
    await refused(() => authenticateEnrollment(ctx, m.secret, { protocol: 'est', id: 'enr_0000000000000000' }), unknown, null);
    await refused(() => authenticateEnrollment(ctx, m.secret, { protocol: 'scep' }), new RegExp(`^enrollment credential ${m.id} is for EST, not SCEP$`), {
      target: m.id,
      reason: 'wrong protocol',
    });
    await refused(
      () => authenticateEnrollment(ctx, m.secret, { protocol: 'est', id: m.id, profile: 'client' }),
      new RegExp(`^enrollment credential ${m.id} is for profile server, not client$`),
      { target: m.id, reason: 'wrong profile' },
    );
    const later = { ...ctx, now: () => new Date(Date.now() + 2 * 3_600_000) };
    await refused(() => authenticateEnrollment(later, m.secret, { protocol: 'est', id: m.id }), new RegExp(`^enrollment credential ${m.id} expired at `), {
      target: m.id,
      reason: 'expired',
    });
    const p = await authenticateEnrollment(ctx, m.secret, { protocol: 'est', id: m.id });
    const stored = await certificates();
    await assert.rejects(enroll(later, p), /expired at/, 'an expired credential spends nothing either');
    await revokeEnrollmentCredential(ctx, m.id, ACTOR);
    await refused(() => authenticateEnrollment(ctx, m.secret, { protocol: 'est', id: m.id }), new RegExp(`^enrollment credential ${m.id} was revoked$`), {
      target: m.id,
      reason: 'revoked',
    });
    await assert.rejects(enroll(ctx, p), /was revoked/, 'a principal authenticated before the revocation cannot spend after it');
    assert.equal(Number((await row(m.id)).usesSpent), 0);
    assert.equal(await certificates(), stored, 'and no certificate was stored for either');
    const refusal = await events('enrollment.refused', m.id);
    assert.ok(refusal.every((e) => !JSON.stringify(e).includes(m.secret)));
  });

  test('the database alone cannot widen, refill, mint or un-revoke a credential', async () => {
    const unknown = /^unknown enrollment credential, or wrong secret$/;
    // Widened: names lifted, more uses, a later expiry, another profile or protocol → refused.
    const tamperings: [string, unknown[]][] = [
      [`UPDATE "EnrollmentCredential" SET "nameSuffixes" = NULL WHERE id = ?`, []],
      [`UPDATE "EnrollmentCredential" SET "nameSuffixes" = '["example"]' WHERE id = ?`, []],
      [`UPDATE "EnrollmentCredential" SET "usesAllowed" = 100 WHERE id = ?`, []],
      [`UPDATE "EnrollmentCredential" SET "expiresAt" = NULL WHERE id = ?`, []],
      [`UPDATE "EnrollmentCredential" SET profile = 'client' WHERE id = ?`, []],
      [`UPDATE "EnrollmentCredential" SET protocol = 'scep' WHERE id = ?`, []],
    ];
    for (const [statement] of tamperings) {
      const m = await make({ nameSuffixes: ['a.corp.example'], expiresAt: new Date(Date.now() + 3_600_000) });
      await sql(env, statement, [m.id]);
      const protocol = statement.includes("'scep'") ? 'scep' : 'est';
      await refused(() => authenticateEnrollment(ctx, m.secret, { protocol }), unknown, { target: m.id, reason: 'integrity' });
    }

    // Refilled: a spent one-time credential's count set back to 0 → its MAC no longer verifies.
    const spent = await make();
    await enroll(ctx, await authenticateEnrollment(ctx, spent.secret, { protocol: 'est' }));
    await sql(env, `UPDATE "EnrollmentCredential" SET "usesSpent" = 0 WHERE id = ?`, [spent.id]);
    await refused(() => authenticateEnrollment(ctx, spent.secret, { protocol: 'est' }), unknown, { target: spent.id, reason: 'integrity' });

    // Refilled by rollback: the row and MAC from before the spend put back → the audit trail still counts the use.
    const rolled = await make();
    const before = await row(rolled.id);
    await enroll(ctx, await authenticateEnrollment(ctx, rolled.secret, { protocol: 'est' }));
    await sql(env, `UPDATE "EnrollmentCredential" SET "usesSpent" = 0, "grantMac" = ?, "lastUsedAt" = NULL WHERE id = ?`, [before.grantMac, rolled.id]);
    const fresh = await open(); // another process: nothing remembered, only the database and its audit trail
    try {
      await refused(
        () => authenticateEnrollment(fresh, rolled.secret, { protocol: 'est' }),
        new RegExp(`^enrollment credential ${rolled.id} was already used$`),
        {
          target: rolled.id,
          reason: 'exhausted',
        },
      );
    } finally {
      await fresh.db.close();
    }

    // Un-revoked by rollback: revokedAt cleared and the old MAC restored → the audit trail still says revoked.
    const revoked = await make();
    const old = await row(revoked.id);
    await revokeEnrollmentCredential(ctx, revoked.id, ACTOR);
    await sql(env, `UPDATE "EnrollmentCredential" SET "revokedAt" = NULL, "grantMac" = ? WHERE id = ?`, [old.grantMac, revoked.id]);
    const other = await open();
    try {
      await refused(() => authenticateEnrollment(other, revoked.secret, { protocol: 'est' }), new RegExp(`^enrollment credential ${revoked.id} was revoked$`), {
        target: revoked.id,
        reason: 'revoked',
      });
    } finally {
      await other.db.close();
    }

    // Minted: a row inserted for a secret of the inserter's choosing, copying a real row's MAC → unknown.
    const real = await make();
    const r = await row(real.id);
    const { createHmac } = await import('node:crypto');
    const guessedHash = createHmac('sha256', 'no master key').update('chosen-secret').digest('hex');
    await sql(
      env,
      `INSERT INTO "EnrollmentCredential" (id, protocol, profile, "nameSuffixes", "usesAllowed", "usesSpent", "expiresAt", "secretHash", "grantMac", "createdAt", "createdBy") VALUES (?, 'est', 'server', NULL, 1, 0, NULL, ?, ?, ?, 'mallory')`,
      ['enr_1111111111111111', guessedHash, r.grantMac, r.createdAt],
    );
    // (its keyed hash cannot match: without the master key the inserter's hash names no secret)
    await refused(() => authenticateEnrollment(ctx, 'chosen-secret', { protocol: 'est', id: 'enr_1111111111111111' }), unknown, null);
    // Revoking a tampered row does not bless it.
    await sql(env, `UPDATE "EnrollmentCredential" SET "usesAllowed" = 9 WHERE id = ?`, [real.id]);
    await revokeEnrollmentCredential(ctx, real.id, ACTOR);
    await sql(env, `UPDATE "EnrollmentCredential" SET "revokedAt" = NULL WHERE id = ?`, [real.id]);
    await assert.rejects(authenticateEnrollment(ctx, real.secret, { protocol: 'est' }), { message: 'unknown enrollment credential, or wrong secret' });

    // `signet audit verify` names each of them, by what was done to it.
    const verify = signet(['audit', 'verify', '--json'], env.env);
    assert.equal(verify.status, 1, verify.stderr);
    const problems = (JSON.parse(verify.stdout) as { inventory: { problems: { problem: string }[] } }).inventory.problems.map((p) => p.problem);
    const problem = (what: RegExp) => problems.find((p) => what.test(p)) ?? assert.fail(`no problem ${what} in ${JSON.stringify(problems)}`);
    assert.match(problem(/enrollment credentials have no enrollment\.created event/), /enr_1111111111111111/);
    const badMac = problem(/enrollment credentials fail their grant MAC/);
    for (const id of [spent.id, real.id, 'enr_1111111111111111']) assert.ok(badMac.includes(id), `${id} in ${badMac}`);
    const unrevoked = problem(/enrollment credentials were revoked \(enrollment\.revoked event\) but their rows say not/);
    for (const id of [revoked.id, real.id]) assert.ok(unrevoked.includes(id), `${id} in ${unrevoked}`);
    const rolledBack = problem(/enrollment credentials have fewer uses spent than their enrollment\.used events/);
    for (const id of [rolled.id, spent.id]) assert.ok(rolledBack.includes(`${id} (0 spent, 1 events)`), `${id} in ${rolledBack}`);
    assert.ok(!problems.some((p) => /more uses spent than/.test(p)), JSON.stringify(problems));
  });

  test('two processes spending a one-time credential at once: exactly one wins, the other gets 401 already used', async () => {
    const once = [await make(), await make(), await make()];
    const three = await make({ uses: 3 });
    // Two real processes, each with its own database connections, released at the same instant
    // once both have authenticated.
    type Result = string | { status: number; detail: string };
    const spender = (spends: { secret: string; times: number }[]) => {
      const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'helpers', 'enrollment-spender.ts'), JSON.stringify({ spends })], {
        env: childEnv(env.env),
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      let markReady: () => void;
      const ready = new Promise<void>((r) => (markReady = r));
      child.stdout.on('data', (d) => {
        out += d;
        if (out.startsWith('ready\n')) markReady();
      });
      child.stderr.on('data', (d) => (err += d));
      const done = new Promise<Result[]>((resolve, reject) =>
        child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.slice('ready\n'.length))) : reject(new Error(`spender exited ${code}: ${err}`)))),
      );
      return { ready: Promise.race([ready, done.then(() => undefined)]), go: () => child.stdin.end('go\n'), done };
    };
    // Each process spends every one-time credential once; the three-use one 3 + 2 times.
    const first = spender([...once.map((m) => ({ secret: m.secret, times: 1 })), { secret: three.secret, times: 3 }]);
    const second = spender([...once.map((m) => ({ secret: m.secret, times: 1 })), { secret: three.secret, times: 2 }]);
    await Promise.all([first.ready, second.ready]);
    first.go();
    second.go();
    const [a, b] = await Promise.all([first.done, second.done]);
    for (const [i, m] of once.entries()) {
      const pair = [a[i], b[i]];
      assert.equal(pair.filter((r) => r === 'spent').length, 1, `${m.id}: ${JSON.stringify(pair)}`);
      assert.deepEqual(
        pair.find((r) => r !== 'spent'),
        { status: 401, detail: `enrollment credential ${m.id} was already used` },
      );
      assert.equal(Number((await row(m.id)).usesSpent), 1);
      assert.equal((await events('enrollment.used', m.id)).length, 1);
    }
    const threes = [...a.slice(3), ...b.slice(3)];
    assert.equal(threes.filter((r) => r === 'spent').length, 3, JSON.stringify(threes));
    for (const r of threes.filter((x) => x !== 'spent'))
      assert.deepEqual(r, { status: 401, detail: `enrollment credential ${three.id} has no uses left (3 of 3 used)` });
    assert.equal(Number((await row(three.id)).usesSpent), 3);
    assert.deepEqual(
      (await events('enrollment.used', three.id)).map((e) => e.details.use),
      [1, 2, 3],
    );
  });

  test('a use is spent in its certificate’s commit: a certificate not stored spends nothing; of concurrent enrollments with the last use one is stored', async () => {
    // Concurrent enrollments with a one-time credential in one process: they share a commit,
    // which the credential refuses; retried one by one, the first is stored, the other refused.
    const once = await make();
    const p = await authenticateEnrollment(ctx, once.secret, { protocol: 'est' });
    // A bystander in the same commit: another credential's enrollments are stored all the same.
    const other = await make({ uses: 2 });
    const po = await authenticateEnrollment(ctx, other.secret, { protocol: 'est' });
    const before = await certificates();
    const [a, b, ...bystanders] = await Promise.allSettled([enroll(ctx, p), enroll(ctx, p), enroll(ctx, po), enroll(ctx, po)]);
    assert.deepEqual(
      bystanders.map((r) => r.status),
      ['fulfilled', 'fulfilled'],
    );
    assert.equal(Number((await row(other.id)).usesSpent), 2);
    const both = [a!, b!];
    assert.equal(both.filter((r) => r.status === 'fulfilled').length, 1, JSON.stringify(both.map((r) => r.status)));
    const lost = both.find((r) => r.status === 'rejected')!.reason as SignetError;
    assert.equal(lost.status, 401);
    assert.equal(lost.detail, `enrollment credential ${once.id} was already used`);
    assert.equal(await certificates(), before + 3, 'one certificate of the one-time credential stored (the other’s signature discarded), and the bystanders’');
    const used = await events('enrollment.used', once.id);
    assert.equal(used.length, 1);
    const winner = both.find((r) => r.status === 'fulfilled')!.value;
    assert.equal(used[0]!.details.serial, winner.serial, 'the use names the certificate it paid for');
    assert.equal(Number((await row(once.id)).usesSpent), 1);

    // A certificate refused at its commit (its CA revoked since this process signed with it, as
    // another process would) rolls its use back with it.
    const m = await make({ uses: 2 });
    const pm = await authenticateEnrollment(ctx, m.secret, { protocol: 'est' });
    const first = await enroll(ctx, pm); // the issuing CA is now cached as active
    assert.equal(Number((await row(m.id)).usesSpent), 1);
    const status = (await sql(env, `SELECT status FROM "CertificateAuthority" WHERE id = ?`, [first.caId]))[0]!.status;
    await sql(env, `UPDATE "CertificateAuthority" SET status = 'revoked' WHERE id = ?`, [first.caId]);
    try {
      await assert.rejects(enroll(ctx, pm), (e: unknown) => e instanceof SignetError && e.status === 409 && /was revoked while certificate/.test(e.detail));
    } finally {
      await sql(env, `UPDATE "CertificateAuthority" SET status = ? WHERE id = ?`, [status, first.caId]);
    }
    assert.equal(Number((await row(m.id)).usesSpent), 1, 'the refused certificate spent nothing');
    assert.equal((await events('enrollment.used', m.id)).length, 1);
    await enroll(ctx, pm);
    assert.equal(Number((await row(m.id)).usesSpent), 2);
  });

  test('no secret appears in the server’s logs, the audit trail, or any list', async () => {
    assert.ok(secrets.length >= 10, `${secrets.length} secrets made`);
    const audit = JSON.stringify(await sql(env, `SELECT * FROM "AuditEvent"`));
    const rows = JSON.stringify(await sql(env, `SELECT * FROM "EnrollmentCredential"`));
    const listed = JSON.stringify((await api(server, 'GET', '/api/v1/enrollment-credentials')).json);
    const cli = signet(['enroll', 'list', '--json'], env.env).stdout + signet(['enroll', 'list'], env.env).stdout;
    const logs = server.stdout() + server.stderr();
    for (const s of secrets) {
      for (const [where, text] of Object.entries({ audit, rows, listed, cli, logs })) assert.ok(!text.includes(s), `a secret appears in ${where}`);
    }
  });
});
