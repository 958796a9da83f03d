/**
 * Issue 12 item 13 (ACME part): work a dead process left `processing` is recovered, at start-up
 * and when read. The states a crash leaves are written into the database directly, then a
 * server is started (or the row read):
 * - an order whose certificate was committed just before the crash becomes `valid` with that
 *   certificate attached, found by the CSR hash recorded at the claim — or, for an order left
 *   by a version that did not record it, by names, profile, time and the issuing account;
 *   nothing is issued twice, and another order's certificate is never taken;
 * - an order with no certificate becomes `invalid` (serverInternal), and a new order for the
 *   same names is ready at once (its authorizations are still valid);
 * - a challenge becomes `invalid` (and its authorization, and so its order), without counting
 *   as the account's failed validation;
 * - a fresh claim (a live process may still be working) is left alone until it is stale.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { onPostgres } from './helpers/env.js';
import { countRows, sql } from './helpers/sql.js';
import { ERR, assertProblem, b64u, newKey, startWorld, type Account, type World } from './helpers/acme.js';
import { pgTime, sqliteTime } from '../src/storage/db-time.js';

const MINUTE = 60_000;

describe('ACME recovery of work left processing by a dead process', () => {
  let w: World;
  let acct: Account;
  const dbTime = (d: Date) => (onPostgres ? pgTime(d) : sqliteTime(d));
  const ago = (ms: number) => dbTime(new Date(Date.now() - ms));
  const idOf = (url: string) => url.slice(url.lastIndexOf('/') + 1);
  const orderRow = async (id: string) => (await sql(w.s.env, 'SELECT "status", "certificateSerial", "error" FROM "AcmeOrder" WHERE "id" = ?', [id]))[0];
  const read = (url: string) => w.acme.post(url, '', acct);
  /** Certificates for the test's names (a restart also issues the server its own TLS certificate). */
  const acmeCerts = () => countRows(w.s.env, 'Certificate', 'WHERE "sanText" LIKE ?', ['%signet.test%']);

  /** An order taken through finalize, then put back to how a crash between commit and order update leaves it. */
  async function crashedAfterCommit(name: string): Promise<{ orderUrl: string; serial: string }> {
    const { orderUrl, serial } = await w.issue(acct, [name]);
    await sql(w.s.env, 'UPDATE "AcmeOrder" SET "status" = \'processing\', "certificateSerial" = NULL, "notBefore" = NULL, "notAfter" = NULL WHERE "id" = ?', [
      idOf(orderUrl),
    ]);
    return { orderUrl, serial };
  }
  /** A ready order, put into `processing` as a finalize that died before issuing leaves it. */
  async function crashedBeforeCommit(name: string): Promise<string> {
    const order = await w.newOrder(acct, [name]);
    assert.equal(order.status, 201, order.text);
    await w.authorize(acct, order);
    await w.pollOrder(acct, order.headers.location!, 'ready');
    await sql(w.s.env, 'UPDATE "AcmeOrder" SET "status" = \'processing\' WHERE "id" = ?', [idOf(order.headers.location!)]);
    return order.headers.location!;
  }
  /** A pending order whose http-01 challenge is left `processing`. */
  async function challengeLeftProcessing(name: string, claimedAgoMs: number): Promise<{ orderUrl: string; authzUrl: string; challUrl: string }> {
    const order = await w.newOrder(acct, [name]);
    assert.equal(order.status, 201, order.text);
    const authzUrl = order.json.authorizations[0] as string;
    const ch = ((await read(authzUrl)).json.challenges as any[]).find((c) => c.type === 'http-01');
    await sql(w.s.env, 'UPDATE "AcmeChallenge" SET "status" = \'processing\', "processingSince" = ? WHERE "id" = ?', [ago(claimedAgoMs), idOf(ch.url)]);
    return { orderUrl: order.headers.location!, authzUrl, challUrl: ch.url };
  }

  before(async () => {
    w = await startWorld({ SIGNET_ACME_FAILED_VALIDATIONS_PER_HOUR: '1', SIGNET_ACME_VALIDATION_ATTEMPTS: '1', SIGNET_ACME_VALIDATION_TIMEOUT_MS: '3000' });
    acct = await w.acme.newAccount(newKey('ES256'));
  });
  after(async () => {
    await w?.stop();
  });

  test('an order left processing by a version that recorded no claim: its committed certificate is attached at start-up', async () => {
    const { orderUrl, serial } = await crashedAfterCommit('legacy.signet.test');
    // As that version left it: no claim time, no CSR hash.
    await sql(w.s.env, 'UPDATE "AcmeOrder" SET "processingSince" = NULL, "csrHash" = NULL WHERE "id" = ?', [idOf(orderUrl)]);
    // Another order for the same names whose finalize (of another CSR) never committed: the
    // certificate above is not its, and a REST certificate for these names is nobody's order.
    const other = await crashedBeforeCommit('legacy.signet.test');
    await sql(w.s.env, 'UPDATE "AcmeOrder" SET "processingSince" = ?, "csrHash" = ? WHERE "id" = ?', [
      ago(10 * MINUTE),
      randomBytes(32).toString('hex'),
      idOf(other),
    ]);
    // Two legacy orders of the account for the same names and one certificate: whose it is
    // cannot be told, so neither takes it.
    const twin1 = await crashedAfterCommit('twin.signet.test');
    const twin2 = await crashedBeforeCommit('twin.signet.test');
    await sql(w.s.env, 'UPDATE "AcmeOrder" SET "processingSince" = NULL, "csrHash" = NULL WHERE "id" IN (?, ?)', [idOf(twin1.orderUrl), idOf(twin2)]);
    const rest = await w.acme.request(
      'POST',
      `https://127.0.0.1:${w.s.tlsPort}/api/v1/certificates`,
      JSON.stringify({ csr: w.csr(['legacy.signet.test']).der.toString('base64'), profile: 'server' }),
      { authorization: `Bearer ${w.s.server.token}`, 'content-type': 'application/json' },
    );
    assert.equal(rest.status, 201, rest.text);
    const certs = await acmeCerts();
    await w.restart();
    assert.deepEqual({ ...(await orderRow(idOf(orderUrl))) }, { status: 'valid', certificateSerial: serial, error: null });
    const o = await read(orderUrl);
    assert.equal(o.json.status, 'valid', o.text);
    const dl = await w.acme.post(o.json.certificate, '', acct);
    assert.equal(dl.status, 200, dl.text);
    for (const id of [other, twin1.orderUrl, twin2].map(idOf)) {
      const row = await orderRow(id);
      assert.equal(row.status, 'invalid', id);
      assert.equal(row.certificateSerial, null, id);
    }
    assert.equal(await acmeCerts(), certs, 'recovery issues nothing');
  });

  test('at start-up: a committed certificate is attached by its CSR hash, an uncommitted finalize fails its order, a processing challenge fails; fresh claims are left alone', async () => {
    const committed = await crashedAfterCommit('committed.signet.test');
    await sql(w.s.env, 'UPDATE "AcmeOrder" SET "processingSince" = ? WHERE "id" = ?', [ago(10 * MINUTE), idOf(committed.orderUrl)]);
    const lost = await crashedBeforeCommit('lost.signet.test');
    await sql(w.s.env, 'UPDATE "AcmeOrder" SET "processingSince" = ?, "csrHash" = ? WHERE "id" = ?', [
      ago(10 * MINUTE),
      randomBytes(32).toString('hex'),
      idOf(lost),
    ]);
    const fresh = await crashedBeforeCommit('fresh.signet.test');
    await sql(w.s.env, 'UPDATE "AcmeOrder" SET "processingSince" = ?, "csrHash" = ? WHERE "id" = ?', [ago(0), randomBytes(32).toString('hex'), idOf(fresh)]);
    const chall = await challengeLeftProcessing('chall.signet.test', 60 * MINUTE);
    const freshChall = await challengeLeftProcessing('fresh-chall.signet.test', 0);
    const certs = await acmeCerts();
    const audit = await countRows(w.s.env, 'AuditEvent', 'WHERE "action" IN (?, ?)', ['acme.order.recovered', 'acme.challenge.recovered']);

    await w.restart();

    // The committed certificate is attached; nothing was issued again.
    const c = await read(committed.orderUrl);
    assert.equal(c.json.status, 'valid', c.text);
    assert.ok(c.json.certificate.endsWith(`/cert/${committed.serial}`), c.text);
    assert.equal(await acmeCerts(), certs);
    // No certificate: invalid, with a problem saying what happened and what to do.
    const l = await read(lost);
    assert.equal(l.json.status, 'invalid', l.text);
    assert.equal(l.json.error.type, `${ERR}serverInternal`);
    assert.match(l.json.error.detail, /interrupted.*place a new order/);
    assertProblem(await w.acme.post(l.json.finalize, { csr: b64u(w.csr(['lost.signet.test']).der) }, acct), 403, 'orderNotReady');
    // A new order for the same names is ready at once and is issued.
    const again = await w.issue(acct, ['lost.signet.test']);
    assert.ok(again.serial);
    // The challenge, its authorization and its order are invalid …
    const ch = await w.acme.post(chall.challUrl, '', acct);
    assert.equal(ch.json.status, 'invalid', ch.text);
    assert.equal(ch.json.error.type, `${ERR}serverInternal`);
    assert.equal((await read(chall.authzUrl)).json.status, 'invalid');
    assert.equal((await read(chall.orderUrl)).json.status, 'invalid');
    // … without counting as the account's failed validation (the limit here is 1).
    const next = await w.newOrder(acct, ['after-recovery.signet.test']);
    assert.equal(next.status, 201, next.text);
    // Fresh claims: a live process may still be working on them.
    assert.equal((await orderRow(idOf(fresh))).status, 'processing');
    assert.equal((await read(fresh)).json.status, 'processing');
    assert.equal((await w.acme.post(freshChall.challUrl, '', acct)).json.status, 'processing');
    const events = await countRows(w.s.env, 'AuditEvent', 'WHERE "action" IN (?, ?)', ['acme.order.recovered', 'acme.challenge.recovered']);
    assert.equal(events, audit + 3, 'each recovery is audited');

    // Once stale, they are recovered when read, by the running server.
    await sql(w.s.env, 'UPDATE "AcmeOrder" SET "processingSince" = ? WHERE "id" = ?', [ago(10 * MINUTE), idOf(fresh)]);
    const f = await read(fresh);
    assert.equal(f.json.status, 'invalid', f.text);
    assert.match(f.json.error.detail, /interrupted/);
    await sql(w.s.env, 'UPDATE "AcmeChallenge" SET "processingSince" = ? WHERE "id" = ?', [ago(60 * MINUTE), idOf(freshChall.challUrl)]);
    const a = await read(freshChall.authzUrl);
    assert.equal(a.json.status, 'invalid', a.text);
    assert.equal((a.json.challenges as any[]).find((x) => x.url === freshChall.challUrl).status, 'invalid');
  });
});
