/**
 * Issue 12 item 12 (ACME half): anonymous requests cost no durable writes. Replay nonces are
 * stateless (time + random under an HMAC key derived from the master key); only a nonce whose
 * JWS verified is recorded, as used, until it expires. Checked here:
 * - the nonce format and its checks, with a clock held by the test (no I/O at all);
 * - floods of HEAD/GET newNonce, 404s and garbage POSTs insert no row anywhere;
 * - a nonce is spent only by a request whose signature verified;
 * - two `signet serve` processes on one database (SQLite file, or PostgreSQL under test:pg):
 *   each accepts the other's nonces, a nonce used at one is refused at the other, the refusal
 *   carries a fresh nonce, and expired records are purged.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Agent } from 'node:https';
import { startServer, freePort, type RunningServer } from './helpers/cli.js';
import { onPostgres } from './helpers/env.js';
import { sql } from './helpers/sql.js';
import { AcmeClient, assertProblem, newKey, signWith, startWorld, type Account, type World } from './helpers/acme.js';
import { Nonces, NONCE_LIFETIME_MS, type UsedNonceStore } from '../src/acme/nonces.js';
import { pgTime, pgUtc, sqliteDate, sqliteTime } from '../src/storage/db-time.js';

const NO_IO: UsedNonceStore = {
  record: () => {
    throw new Error('minting or checking a nonce must not touch storage');
  },
  purge: () => {
    throw new Error('minting or checking a nonce must not touch storage');
  },
};

describe('ACME nonces: format and checks (no I/O)', () => {
  let now = new Date('2026-06-01T12:00:00Z');
  const clock = () => now;
  const key = randomBytes(32);
  const nonces = new Nonces(key, NO_IO, clock);
  const badNonce = (f: () => unknown, detail: RegExp) => assert.throws(f, (e: any) => e.acme === 'badNonce' && e.status === 400 && detail.test(e.detail));

  test('a fresh nonce checks, and is good for NONCE_LIFETIME_MS', () => {
    now = new Date('2026-06-01T12:00:00Z');
    const n = nonces.mint();
    assert.match(n, /^[A-Za-z0-9_-]{40,}$/);
    assert.notEqual(nonces.mint(), n);
    assert.deepEqual(nonces.check(n), { value: n, expiresAt: new Date(now.getTime() + NONCE_LIFETIME_MS) });
    now = new Date(now.getTime() + NONCE_LIFETIME_MS - 1000);
    nonces.check(n);
    now = new Date(now.getTime() + 1000);
    badNonce(() => nonces.check(n), /expired/);
  });

  test('a nonce from a clock slightly ahead is accepted, one from the future is not', () => {
    now = new Date('2026-06-01T12:00:30Z');
    const ahead = nonces.mint();
    now = new Date('2026-06-01T12:00:00Z');
    nonces.check(ahead);
    now = new Date('2026-06-01T12:05:00Z');
    const future = nonces.mint();
    now = new Date('2026-06-01T12:00:00Z');
    badNonce(() => nonces.check(future), /future/);
  });

  test('nonces of another key, tampered, or malformed are refused', () => {
    now = new Date('2026-06-01T12:00:00Z');
    badNonce(() => nonces.check(new Nonces(randomBytes(32), NO_IO, clock).mint()), /not issued by this server/);
    const raw = Buffer.from(nonces.mint(), 'base64url');
    for (const i of [0, 2, 8, raw.length - 1]) {
      const t = Buffer.from(raw);
      t[i]! ^= 0x01;
      badNonce(() => nonces.check(t.toString('base64url')), /not issued by this server/);
    }
    badNonce(() => nonces.check(undefined), /no nonce/);
    badNonce(() => nonces.check(''), /no nonce/);
    badNonce(() => nonces.check(42), /no nonce/);
    badNonce(() => nonces.check('not base64url!'), /not issued by this server/);
    badNonce(() => nonces.check(raw.subarray(0, raw.length - 1).toString('base64url')), /not issued by this server/);
    badNonce(() => nonces.check(Buffer.concat([raw, Buffer.from([0])]).toString('base64url')), /not issued by this server/);
  });

  test('only the canonical spelling of a nonce is accepted: every one-character variant is refused', () => {
    now = new Date('2026-06-01T12:00:00Z');
    const n = nonces.mint();
    nonces.check(n);
    // A lenient base64url decoder drops a 45th character and ignores padding and stray bytes,
    // so each of these decoded to the same nonce while being a different text (and record key).
    for (const v of oneCharacterVariants(n)) badNonce(() => nonces.check(v), /not issued by this server/);
  });
});

/** Every text one character longer than n (appended or prepended), or with one character changed. */
function oneCharacterVariants(n: string): string[] {
  const extra = [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_', '=', '.', ' ', '+', '/', '%', '\n', '\u0000', 'é'];
  const out = new Set<string>();
  for (const c of extra) {
    out.add(n + c);
    out.add(c + n);
  }
  for (const i of [0, 21, n.length - 1]) for (const c of extra) out.add(n.slice(0, i) + c + n.slice(i + 1));
  out.delete(n);
  return [...out];
}

describe('ACME nonces on the server', () => {
  let w: World;
  let second: RunningServer | undefined;
  let secondAgent: Agent | undefined;
  let secondTlsPort = 0;

  /** Rows in every table: anonymous requests must not change any count. */
  async function rowCounts(): Promise<Record<string, number>> {
    const tables = [
      'AcmeNonce',
      'AcmeAccount',
      'AcmeOrder',
      'AcmeAuthorization',
      'AcmeChallenge',
      'AcmeEabKey',
      'AuditEvent',
      'Certificate',
      'Setting',
      'ApiToken',
    ];
    const out: Record<string, number> = {};
    for (const t of tables) out[t] = Number((await sql(w.s.env, `SELECT COUNT(*) AS n FROM "${t}"`))[0].n);
    return out;
  }
  const dbTime = (d: Date) => (onPostgres ? pgTime(d) : sqliteTime(d));

  before(async () => {
    w = await startWorld({ SIGNET_ACME_PROFILES: 'server,peer' });
  });
  after(async () => {
    secondAgent?.destroy();
    await second?.stop();
    await w?.stop();
  });

  test('floods of newNonce, 404s and garbage POSTs write nothing, and each answer carries a nonce', async () => {
    const acme = w.acme;
    const peer = await acme.directory('/peer/directory');
    const acct = await acme.newAccount(newKey('ES256'));
    const before = await rowCounts();
    const key = newKey('ES256');
    const requests: (() => Promise<{ status: number; headers: Record<string, unknown> }>)[] = [
      () => acme.request('HEAD', acme.dir.newNonce),
      () => acme.request('GET', acme.dir.newNonce),
      () => acme.request('HEAD', peer.newNonce),
      () => acme.request('GET', `${acme.base}/nope`),
      () => acme.request('GET', `${acme.base}/nope/directory`),
      () =>
        acme.request('POST', `${acme.base}/order/${randomBytes(12).toString('base64url')}`, '{"protected":"e30","payload":"","signature":""}', {
          'content-type': 'application/jose+json',
        }),
      () => acme.request('POST', acme.dir.newAccount, '{not json', { 'content-type': 'application/jose+json' }),
      () => acme.request('POST', acme.dir.newAccount, '{"a":1}', { 'content-type': 'application/json' }),
      // A good nonce on a JWS whose signature does not verify (jwk), or whose kid is nobody's.
      () =>
        acme.post(acme.dir.newAccount, { termsOfServiceAgreed: true }, key, {
          sign: (input) => {
            const s = signWith('ES256', key.privateKey, input);
            s[3]! ^= 1;
            return s;
          },
        }),
      () =>
        acme.post(acme.dir.newOrder, { identifiers: [{ type: 'dns', value: 'x.signet.test' }] }, key, {
          kid: `${acme.base}/account/${randomBytes(12).toString('base64url')}`,
        }),
      // A real account's kid, signed by another key.
      () => acme.post(acct.url, '', acct, { sign: (input) => signWith('ES256', key.privateKey, input) }),
      // Garbage and forged nonces, on otherwise good requests.
      () => acme.post(acct.url, '', acct, { nonce: randomBytes(33).toString('base64url') }),
      () => acme.post(acct.url, '', acct, { nonce: 'x' }),
    ];
    for (let round = 0; round < 10; round++) {
      const answers = await Promise.all(requests.map((r) => r()));
      for (const a of answers) {
        assert.ok(a.status === 200 || a.status === 204 || a.status >= 400, String(a.status));
        assert.match(String(a.headers['replay-nonce']), /^[A-Za-z0-9_-]{16,}$/, 'every ACME answer carries a fresh nonce');
      }
    }
    assert.deepEqual(await rowCounts(), before, `${requests.length * 10} anonymous or failed requests inserted rows`);
  });

  test('a nonce is spent only by a request whose signature verified', async () => {
    const acme = w.acme;
    const acct = await acme.newAccount(newKey('ES256'));
    const other = newKey('ES256');
    const nonce = await acme.nonce();
    const forged = await acme.post(acct.url, '', acct, { nonce, sign: (input) => signWith('ES256', other.privateKey, input) });
    assertProblem(forged, [400, 401, 403], ['malformed', 'unauthorized']);
    const good = await acme.post(acct.url, '', acct, { nonce });
    assert.equal(good.status, 200, good.text);
    assertProblem(await acme.post(acct.url, '', acct, { nonce }), 400, 'badNonce');
    const [row] = await sql(w.s.env, 'SELECT "expiresAt" FROM "AcmeNonce" WHERE "value" = ?', [nonce]);
    assert.ok(row, 'the used nonce is recorded');
    const expires = (onPostgres ? pgUtc(row.expiresAt) : sqliteDate(row.expiresAt))!.getTime();
    assert.ok(Math.abs(expires - (Date.now() + NONCE_LIFETIME_MS)) < 120_000, `the record lives as long as the nonce: ${String(row.expiresAt)}`);
  });

  test('two servers on one database: nonces work at either, a nonce used at one is refused at the other, expired records are purged', async () => {
    const a = w.acme;
    // An expired record (as a replica leaves them) and one still live.
    const stale = randomBytes(33).toString('base64url');
    const live = randomBytes(33).toString('base64url');
    await sql(w.s.env, 'INSERT INTO "AcmeNonce" ("value", "expiresAt") VALUES (?, ?), (?, ?)', [
      stale,
      dbTime(new Date(Date.now() - 3_600_000)),
      live,
      dbTime(new Date(Date.now() + 600_000)),
    ]);
    const tlsPort = await freePort();
    second = await startServer({ ...w.s.env.env, SIGNET_TLS_PORT: String(tlsPort) });
    secondTlsPort = tlsPort;
    secondAgent = new Agent({ ca: w.s.rootPem, keepAlive: true });
    const b = new AcmeClient(`https://127.0.0.1:${tlsPort}/acme`, secondAgent);
    await b.directory();
    const acct = await a.newAccount(newKey('ES256'));
    // The same account, as the second server names it (replicas behind one name share URLs).
    const atB: Account = { key: acct.key, url: acct.url.replace(a.base, b.base) };
    // A nonce from the first server works at the second …
    const fromA = await a.nonce();
    const used = await b.post(atB.url, '', atB, { nonce: fromA });
    assert.equal(used.status, 200, used.text);
    // … and is then refused at the first, with a fresh nonce that works there.
    const replay = await a.post(acct.url, '', acct, { nonce: fromA });
    assertProblem(replay, 400, 'badNonce');
    assert.match(replay.json.detail, /already used/);
    const fresh = String(replay.headers['replay-nonce']);
    assert.equal((await a.post(acct.url, '', acct, { nonce: fresh })).status, 200);
    // The other way round, concurrently: the same nonce sent to both at once is accepted once.
    const fromB = await b.nonce();
    const both = await Promise.all([a.post(acct.url, '', acct, { nonce: fromB }), b.post(atB.url, '', atB, { nonce: fromB })]);
    assert.deepEqual(both.map((r) => r.status).sort(), [200, 400], both.map((r) => r.text).join('\n'));
    // The second server's first spent nonce purged the expired record, not the live one.
    const left = (await sql(w.s.env, 'SELECT "value" FROM "AcmeNonce" WHERE "value" IN (?, ?)', [stale, live])).map((r: any) => r.value);
    assert.deepEqual(left, [live]);
  });

  test('a used nonce cannot be used again under another spelling, at either server', async () => {
    assert.ok(second && secondAgent, 'the second server of the previous test is running');
    const a = w.acme;
    const b = new AcmeClient(`https://127.0.0.1:${secondTlsPort}/acme`, secondAgent);
    await b.directory();
    a.nonces.length = 0; // the previous test spent nonces this client had queued
    const acct = await a.newAccount(newKey('ES256'));
    const atB: Account = { key: acct.key, url: acct.url.replace(a.base, b.base) };
    const n = await a.nonce();
    assert.equal((await a.post(acct.url, '', acct, { nonce: n })).status, 200);
    assertProblem(await a.post(acct.url, '', acct, { nonce: n }), 400, 'badNonce');
    const variants = oneCharacterVariants(n);
    const answers = await Promise.all(variants.flatMap((v) => [a.post(acct.url, '', acct, { nonce: v }), b.post(atB.url, '', atB, { nonce: v })]));
    const accepted = answers.map((r, i) => [variants[i >> 1], i % 2 ? 'B' : 'A', r.status] as const).filter(([, , status]) => status !== 400);
    assert.deepEqual(accepted, [], 'one-character variants of a used nonce were accepted');
    for (const r of answers) assertProblem(r, 400, 'badNonce');
    // Only the one spelling was recorded.
    const texts = [n, ...variants.filter((v) => !v.includes('\u0000'))]; // PostgreSQL text holds no NUL
    const recorded = await sql(w.s.env, `SELECT "value" FROM "AcmeNonce" WHERE "value" IN (${texts.map(() => '?').join(', ')})`, texts);
    assert.deepEqual(
      recorded.map((r: any) => r.value),
      [n],
    );
  });
});
