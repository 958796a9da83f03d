/**
 * Anonymous ACME clients cannot create durable rows without bound (issue 12 follow-up F8).
 * Without External Account Binding every fresh key is an account, and per-account limits are
 * escaped by making more accounts; so:
 * - new accounts are limited per client address (IPv6 per /56), over every directory, with
 *   `rateLimited` and Retry-After, storing nothing; EAB accounts are not counted;
 * - new orders are limited per client address over all its accounts;
 * - housekeeping deletes expired orders without a certificate, and expired authorizations with
 *   their challenges, after the retention, keeping orders that led to a certificate; an order
 *   never reads `ready` with an authorization gone.
 * Against real `signet serve` processes behind a trusted proxy (X-Forwarded-For chooses the
 * client address), on SQLite or on PostgreSQL under SIGNET_TEST_POSTGRES.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { signet } from './helpers/cli.js';
import { onPostgres } from './helpers/env.js';
import { countRows, sql } from './helpers/sql.js';
import { assertProblem, b64u, makeJws, newKey, startWorld, until, type Account, type Key, type Resp, type World } from './helpers/acme.js';
import { pgTime, sqliteTime } from '../src/storage/db-time.js';

const from = (address: string) => ({ headers: { 'x-forwarded-for': address } });
const dbTime = (d: Date) => (onPostgres ? pgTime(d) : sqliteTime(d));
const DAY = 86_400_000;

function assertRetryAfterAboutAnHour(r: Resp): void {
  const retry = Number(r.headers['retry-after']);
  assert.ok(retry > 3000 && retry <= 3600, `Retry-After ${String(r.headers['retry-after'])}`);
}

describe('ACME limits per client address', () => {
  let w: World;
  let dirs: Record<'server' | 'peer' | 'client', Record<string, any>>;

  before(async () => {
    w = await startWorld({
      SIGNET_ACME_PROFILES: 'server,peer,client',
      SIGNET_ACME_EAB_REQUIRED: 'peer',
      SIGNET_TRUST_PROXY: 'on',
      SIGNET_ACME_ACCOUNTS_PER_HOUR: '3',
      SIGNET_ACME_ORDERS_PER_ADDRESS_PER_HOUR: '4',
    });
    dirs = { server: w.acme.dir, peer: await w.acme.directory('/peer/directory'), client: await w.acme.directory('/client/directory') };
  });
  after(async () => {
    await w?.stop();
  });

  const register = (key: Key, address: string, dir: Record<string, any> = dirs.server, payload: Record<string, unknown> = {}) =>
    w.acme.post(dir.newAccount, { termsOfServiceAgreed: true, ...payload }, key, from(address));
  const eab = (profile: string, key: Key, url: string) => {
    const r = signet(['acme', 'eab', 'create', '--profile', profile, '--json'], w.s.env.env);
    assert.equal(r.status, 0, r.stderr);
    const k = JSON.parse(r.stdout) as { kid: string; hmacKey: string };
    return makeJws({ alg: 'HS256', kid: k.kid, url }, key.jwk, (input) => createHmac('sha256', Buffer.from(k.hmacKey, 'base64url')).update(input).digest());
  };
  const tableCounts = async () => ({
    accounts: await countRows(w.s.env, 'AcmeAccount'),
    orders: await countRows(w.s.env, 'AcmeOrder'),
    authorizations: await countRows(w.s.env, 'AcmeAuthorization'),
    challenges: await countRows(w.s.env, 'AcmeChallenge'),
    audit: await countRows(w.s.env, 'AuditEvent'),
  });

  test('new accounts per address, over every directory: rateLimited with Retry-After, nothing stored', async () => {
    const address = '198.51.100.10';
    const first = newKey('ES256');
    const made: Resp[] = [];
    made.push(await register(first, address, dirs.server));
    made.push(await register(newKey('ES256'), address, dirs.client));
    made.push(await register(newKey('ES384'), address, dirs.server));
    for (const r of made) assert.equal(r.status, 201, r.text);
    const rows = await sql(w.s.env, 'SELECT "id", "sourceKey" FROM "AcmeAccount" WHERE "sourceKey" = ?', [address]);
    assert.equal(rows.length, 3);
    const audited = await sql(
      w.s.env,
      `SELECT "sourceIp" FROM "AuditEvent" WHERE action = 'acme.account.created' AND target IN (?, ?, ?)`,
      rows.map((x: any) => x.id),
    );
    assert.deepEqual(
      audited.map((x: any) => x.sourceIp),
      [address, address, address],
      'the address the proxy appended is recorded',
    );

    const before = await tableCounts();
    for (const dir of [dirs.server, dirs.client]) {
      const refused = await register(newKey('ES256'), address, dir);
      assertProblem(refused, 429, 'rateLimited');
      assert.match(refused.json.detail, /3 ACME accounts in the last hour \(limit 3 per address, SIGNET_ACME_ACCOUNTS_PER_HOUR\)/);
      assertRetryAfterAboutAnHour(refused);
      // A spoofed address in front of what the proxy appended changes nothing.
      assertProblem(await register(newKey('ES256'), `203.0.113.1, ${address}`, dir), 429, 'rateLimited');
    }
    assert.deepEqual(await tableCounts(), before, 'a refused newAccount stores nothing');

    // An existing account is found, not created: never limited.
    assert.equal((await register(first, address)).status, 200);
    assert.equal((await register(first, address, dirs.server, { onlyReturnExisting: true })).status, 200);
    // Accounts made with an operator's EAB key are not counted, and do not count.
    const bound = newKey('ES256');
    const withEab = await register(bound, address, dirs.peer, { externalAccountBinding: eab('peer', bound, dirs.peer.newAccount) });
    assert.equal(withEab.status, 201, withEab.text);
    // Another address has its own budget.
    assert.equal((await register(newKey('ES256'), '198.51.100.11')).status, 201);
  });

  test('IPv6 clients are counted per /56: rotating addresses inside it does not escape', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await register(newKey('ES256'), `2001:db8:0:ab${(i * 16).toString(16).padStart(2, '0')}::${i + 1}`)).status);
    assert.deepEqual(statuses, [201, 201, 201, 429, 429]);
    assert.equal((await register(newKey('ES256'), '2001:db8:0:ac00::1')).status, 201, 'another /56');
  });

  test('concurrent registrations from one address cannot overshoot the limit', async () => {
    const answers = await Promise.all(Array.from({ length: 10 }, () => register(newKey('ES256'), '198.51.100.30')));
    assert.deepEqual(answers.map((r) => r.status).sort(), [201, 201, 201, ...Array(7).fill(429)], answers.map((r) => r.text).join('\n'));
    assert.equal(await countRows(w.s.env, 'AcmeAccount', 'WHERE "sourceKey" = ?', ['198.51.100.30']), 3);
  });

  test('new orders per address, over all its accounts; another address is not affected', async () => {
    const address = '198.51.100.20';
    const accounts: Account[] = [];
    for (let i = 0; i < 2; i++) {
      const key = newKey('ES256');
      const r = await register(key, address);
      assert.equal(r.status, 201, r.text);
      accounts.push({ key, url: r.headers.location! });
    }
    const order = (acct: Account, name: string, addr = address) =>
      w.acme.post(
        dirs.server.newOrder,
        {
          identifiers: [
            { type: 'dns', value: name },
            { type: 'dns', value: `www.${name}` },
          ],
        },
        acct,
        from(addr),
      );
    for (let i = 0; i < 4; i++) {
      const r = await order(accounts[i % 2]!, `o${i}.limits.signet.test`);
      assert.equal(r.status, 201, r.text);
    }
    const before = await tableCounts();
    for (const acct of accounts) {
      const refused = await order(acct, 'over.limits.signet.test');
      assertProblem(refused, 429, 'rateLimited');
      assert.match(refused.json.detail, /4 ACME orders in the last hour \(limit 4 per address, SIGNET_ACME_ORDERS_PER_ADDRESS_PER_HOUR\)/);
      assertRetryAfterAboutAnHour(refused);
    }
    assert.deepEqual(await tableCounts(), before, 'a refused newOrder creates no order, authorization, challenge or audit event');
    // The same account from another address: that address's budget.
    assert.equal((await order(accounts[0]!, 'elsewhere.limits.signet.test', '198.51.100.21')).status, 201);
  });
});

describe('ACME housekeeping', () => {
  let w: World;
  before(async () => {
    w = await startWorld({ SIGNET_ACME_RETENTION_DAYS: '2' });
  });
  after(async () => {
    await w?.stop();
  });

  const idOf = (url: string) => url.slice(url.lastIndexOf('/') + 1);
  const exists = async (table: string, id: string) => (await countRows(w.s.env, table, 'WHERE "id" = ?', [id])) === 1;
  const challengesOf = (authzId: string) => countRows(w.s.env, 'AcmeChallenge', 'WHERE "authorizationId" = ?', [authzId]);
  const backdate = (table: string, id: string, daysAgo: number) =>
    sql(w.s.env, `UPDATE "${table}" SET "expires" = ? WHERE "id" = ?`, [dbTime(new Date(Date.now() - daysAgo * DAY)), id]);

  test('deletes expired orders without a certificate and expired authorizations with their challenges; keeps the rest', async () => {
    const acct = await w.acme.newAccount(newKey('ES256'));
    const pending = async (name: string) => {
      const r = await w.newOrder(acct, [name]);
      assert.equal(r.status, 201, r.text);
      return {
        orderId: idOf(r.headers.location!),
        authzId: idOf(r.json.authorizations[0]),
        authzUrl: r.json.authorizations[0] as string,
        orderUrl: r.headers.location!,
      };
    };
    // Expired three days ago (retention 2): deleted, and its authorization (expired ten days
    // ago, beyond the retention and the 7-day order lifetime) with its challenges.
    const old = await pending('old.house.signet.test');
    await backdate('AcmeOrder', old.orderId, 3);
    await backdate('AcmeAuthorization', old.authzId, 10);
    // Deactivated, long expired: deleted.
    const deactivated = await pending('deactivated.house.signet.test');
    assert.equal((await w.acme.post(deactivated.authzUrl, { status: 'deactivated' }, acct)).json.status, 'deactivated');
    await backdate('AcmeOrder', deactivated.orderId, 3);
    await backdate('AcmeAuthorization', deactivated.authzId, 8);
    // Expired one day ago: within the retention, kept.
    const recent = await pending('recent.house.signet.test');
    await backdate('AcmeOrder', recent.orderId, 1);
    await backdate('AcmeAuthorization', recent.authzId, 1);
    // Expired beyond the retention but not beyond the order lifetime: the authorization is kept.
    const young = await pending('young.house.signet.test');
    await backdate('AcmeAuthorization', young.authzId, 5);
    // Live: kept.
    const live = await pending('live.house.signet.test');
    // Led to a certificate, long expired: the order stays (download, revocation), its authorization goes.
    const cert = await w.issue(acct, ['cert.house.signet.test']);
    const certOrder = await w.acme.post(cert.orderUrl, '', acct);
    const certAuthzId = idOf(certOrder.json.authorizations[0]);
    await backdate('AcmeOrder', idOf(cert.orderUrl), 30);
    await backdate('AcmeAuthorization', certAuthzId, 30);
    // A live order whose authorization is gone (possible after SIGNET_ACME_ORDER_LIFETIME_HOURS
    // was lowered) must not become ready on what is left: its authorization is valid and long expired.
    const orphan = await w.newOrder(acct, ['orphan.house.signet.test']);
    await w.authorize(acct, orphan);
    const orphanAuthzId = idOf(orphan.json.authorizations[0]);
    await backdate('AcmeAuthorization', orphanAuthzId, 10);

    assert.equal(await challengesOf(old.authzId), 3);
    await w.restart(); // housekeeping runs at start (then hourly) in the CRL-publishing process
    await until(
      'housekeeping',
      () => exists('AcmeOrder', old.orderId),
      (present) => !present,
    );
    await until(
      'housekeeping audit event',
      () => countRows(w.s.env, 'AuditEvent', `WHERE action = 'acme.housekeeping'`),
      (n) => n === 1,
    );

    const state = {
      old: [await exists('AcmeOrder', old.orderId), await exists('AcmeAuthorization', old.authzId), await challengesOf(old.authzId)],
      deactivated: [
        await exists('AcmeOrder', deactivated.orderId),
        await exists('AcmeAuthorization', deactivated.authzId),
        await challengesOf(deactivated.authzId),
      ],
      recent: [await exists('AcmeOrder', recent.orderId), await exists('AcmeAuthorization', recent.authzId), await challengesOf(recent.authzId)],
      young: [await exists('AcmeOrder', young.orderId), await exists('AcmeAuthorization', young.authzId), await challengesOf(young.authzId)],
      live: [await exists('AcmeOrder', live.orderId), await exists('AcmeAuthorization', live.authzId), await challengesOf(live.authzId)],
      cert: [await exists('AcmeOrder', idOf(cert.orderUrl)), await exists('AcmeAuthorization', certAuthzId), await challengesOf(certAuthzId)],
      orphan: [await exists('AcmeOrder', idOf(orphan.headers.location!)), await exists('AcmeAuthorization', orphanAuthzId), await challengesOf(orphanAuthzId)],
    };
    assert.deepEqual(state, {
      old: [false, false, 0],
      deactivated: [false, false, 0],
      recent: [true, true, 3],
      young: [true, true, 3],
      live: [true, true, 3],
      cert: [true, false, 0],
      orphan: [true, false, 0],
    });
    const [event] = await sql(w.s.env, `SELECT actor, details FROM "AuditEvent" WHERE action = 'acme.housekeeping'`);
    assert.equal(event.actor, 'system');
    assert.deepEqual((({ orders, authorizations, challenges }) => ({ orders, authorizations, challenges }))(JSON.parse(event.details)), {
      orders: 2,
      authorizations: 4,
      challenges: 12,
    });

    // What is kept still works: the certificate downloads, and its account can revoke it.
    const dl = await w.acme.post(certOrder.json.certificate, '', acct);
    assert.equal(dl.status, 200, dl.text);
    assert.equal((await w.acme.post(w.acme.dir.revokeCert, { certificate: b64u(cert.der) }, acct)).status, 200);
    // The order that lost its authorization is invalid, never ready.
    const o = await w.acme.post(orphan.headers.location!, '', acct);
    assert.equal(o.json.status, 'invalid', o.text);
    assert.equal((await w.acme.post(live.orderUrl, '', acct)).json.status, 'pending');
  });
});
