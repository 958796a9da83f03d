/**
 * Issue 12 item 6: each ACME directory is its own ACME server (RFC 8555 §7.3.4). With
 * SIGNET_ACME_PROFILES=server,peer and SIGNET_ACME_EAB_REQUIRED=peer, an account of one
 * directory is unknown at the other, acts only on its own directory's resources, and the
 * EAB-required directory cannot be entered without External Account Binding.
 *
 * The cross-directory matrix is generated from one table with a row per account-authenticated
 * endpoint of ACME_ENDPOINTS (src/acme/routes.ts); a test fails if an endpoint has no row. Each
 * case is run in both directions (server → peer, peer → server) and must be refused with
 * accountDoesNotExist (the other directory's URL) or unauthorized (the other directory's
 * resource) while the database — accounts, orders, authorizations, challenges, certificates,
 * EAB keys, used nonces, audit — and the http-01 responder see no change at all.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { signet } from './helpers/cli.js';
import { sql } from './helpers/sql.js';
import { ACME_ENDPOINTS, type AcmeEndpoint } from '../src/acme/routes.js';
import {
  ariCertId,
  assertProblem,
  b64u,
  makeJws,
  newKey,
  signWith,
  startWorld,
  type Account,
  type Key,
  type PostOptions,
  type Resp,
  type World,
} from './helpers/acme.js';

const NAME = 'shared.signet.test';

/** One directory with an account of its own and that account's resources in every state the endpoints need. */
interface Side {
  profile: string;
  /** The directory's base URL: https://…/acme or https://…/acme/peer. */
  base: string;
  dir: Record<string, any>;
  account: Account;
  accountId: string;
  /** A valid order whose certificate was issued for NAME (the same name on both sides). */
  cert: { der: Buffer; serial: string };
  /** An order that is ready (its authorization for NAME is valid) and can be finalized. */
  readyOrderId: string;
  /** A pending order for another name, with its pending authorization and http-01 challenge. */
  pendingOrderId: string;
  pendingAuthzId: string;
  pendingChallId: string;
}

const idOf = (url: string) => url.slice(url.lastIndexOf('/') + 1);

describe('ACME directories are separate servers (SIGNET_ACME_PROFILES=server,peer, EAB required at peer)', () => {
  let w: World;
  let server: Side;
  let peer: Side;

  const eabKey = (profile: string) => {
    const r = signet(['acme', 'eab', 'create', '--profile', profile, '--json'], w.s.env.env);
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as { kid: string; hmacKey: string };
  };
  const eab = (k: { kid: string; hmacKey: string }, key: Key, url: string) =>
    makeJws({ alg: 'HS256', kid: k.kid, url }, key.jwk, (input) => createHmac('sha256', Buffer.from(k.hmacKey, 'base64url')).update(input).digest());

  async function makeSide(profile: string, dir: Record<string, any>, withEab: boolean, n: number): Promise<Side> {
    const key = newKey('ES256');
    const account = await w.acme.newAccount(key, withEab ? { externalAccountBinding: eab(eabKey(profile), key, dir.newAccount) } : {}, dir.newAccount);
    const cert = await w.issue(account, [NAME], dir.newOrder);
    const ready = await w.newOrder(account, [NAME], dir.newOrder);
    assert.equal(ready.status, 201, ready.text);
    await w.pollOrder(account, ready.headers.location!, 'ready'); // its authorization for NAME is the valid one, reused
    const pending = await w.newOrder(account, [`pending${n}.signet.test`], dir.newOrder);
    assert.equal(pending.status, 201, pending.text);
    const authzUrl = pending.json.authorizations[0] as string;
    const authz = await w.acme.post(authzUrl, '', account);
    const chall = (authz.json.challenges as any[]).find((c) => c.type === 'http-01');
    return {
      profile,
      base: (dir.newAccount as string).replace(/\/new-account$/, ''),
      dir,
      account,
      accountId: idOf(account.url),
      cert,
      readyOrderId: idOf(ready.headers.location!),
      pendingOrderId: idOf(pending.headers.location!),
      pendingAuthzId: idOf(authzUrl),
      pendingChallId: idOf(chall.url),
    };
  }

  const usedNonces = async () => Number((await sql(w.s.env, 'SELECT COUNT(*) AS n FROM "AcmeNonce"'))[0].n);

  /** Everything a refused request could have changed (used nonces apart: see the matrix). */
  async function snapshot(): Promise<unknown> {
    const env = w.s.env;
    return {
      accounts: await sql(env, 'SELECT "id", "status", "contact", "jwk", "thumbprint", "profile" FROM "AcmeAccount" ORDER BY "id"'),
      orders: await sql(env, 'SELECT "id", "status", "certificateSerial", "error" FROM "AcmeOrder" ORDER BY "id"'),
      authorizations: await sql(env, 'SELECT "id", "status" FROM "AcmeAuthorization" ORDER BY "id"'),
      challenges: await sql(env, 'SELECT "id", "status" FROM "AcmeChallenge" ORDER BY "id"'),
      certificates: await sql(env, 'SELECT "serial", "status" FROM "Certificate" ORDER BY "serial"'),
      eabKeys: await sql(env, 'SELECT "id", "boundAccountId" FROM "AcmeEabKey" ORDER BY "id"'),
      audit: (await sql(env, 'SELECT COUNT(*) AS n FROM "AuditEvent"')).map((r: any) => Number(r.n)),
      http01Fetches: w.http01Requests.length,
    };
  }

  /**
   * One request of a case: `from` is the account making it, `at` the directory whose URL it is
   * sent to, `of` the side whose resources it names.
   */
  type Request = (from: Side, at: Side, of: Side) => { url: string; payload: unknown };
  interface Row {
    /** Variants of the request (e.g. read, update, deactivate). */
    variants: Record<string, Request>;
    /** Whether the endpoint names a resource (then "own directory, other side's resource" is a case too). */
    resource: boolean;
  }

  const keyChangeInner = (from: Side, url: string) => {
    const k = newKey('ES256');
    return makeJws({ alg: k.alg, jwk: k.jwk, url }, { account: from.account.url, oldKey: from.account.key.jwk }, (input) =>
      signWith(k.alg, k.privateKey, input),
    );
  };

  /** THE table: a row per account-authenticated endpoint. */
  const MATRIX: Record<Exclude<AcmeEndpoint, 'directory' | 'newNonce' | 'renewalInfo' | 'newAccount'>, Row> = {
    account: {
      resource: true,
      variants: {
        'POST-as-GET': (_f, at, of) => ({ url: `${at.base}/account/${of.accountId}`, payload: '' }),
        'contact update': (_f, at, of) => ({ url: `${at.base}/account/${of.accountId}`, payload: { contact: ['mailto:intruder@signet.test'] } }),
        deactivate: (_f, at, of) => ({ url: `${at.base}/account/${of.accountId}`, payload: { status: 'deactivated' } }),
      },
    },
    accountOrders: { resource: true, variants: { list: (_f, at, of) => ({ url: `${at.base}/account/${of.accountId}/orders`, payload: '' }) } },
    keyChange: { resource: false, variants: { rollover: (f, at) => ({ url: `${at.base}/key-change`, payload: keyChangeInner(f, `${at.base}/key-change`) }) } },
    newOrder: {
      resource: false,
      variants: { order: (_f, at) => ({ url: `${at.base}/new-order`, payload: { identifiers: [{ type: 'dns', value: 'intruder.signet.test' }] } }) },
    },
    order: { resource: true, variants: { 'POST-as-GET': (_f, at, of) => ({ url: `${at.base}/order/${of.pendingOrderId}`, payload: '' }) } },
    finalize: {
      resource: true,
      variants: { finalize: (_f, at, of) => ({ url: `${at.base}/order/${of.readyOrderId}/finalize`, payload: { csr: b64u(w.csr([NAME]).der) } }) },
    },
    authz: {
      resource: true,
      variants: {
        'POST-as-GET': (_f, at, of) => ({ url: `${at.base}/authz/${of.pendingAuthzId}`, payload: '' }),
        deactivate: (_f, at, of) => ({ url: `${at.base}/authz/${of.pendingAuthzId}`, payload: { status: 'deactivated' } }),
      },
    },
    challenge: {
      resource: true,
      variants: {
        'POST-as-GET': (_f, at, of) => ({ url: `${at.base}/chall/${of.pendingChallId}`, payload: '' }),
        respond: (_f, at, of) => ({ url: `${at.base}/chall/${of.pendingChallId}`, payload: {} }),
      },
    },
    certificate: { resource: true, variants: { download: (_f, at, of) => ({ url: `${at.base}/cert/${of.cert.serial}`, payload: '' }) } },
    revokeCert: {
      resource: true,
      variants: { 'with kid': (_f, at, of) => ({ url: `${at.base}/revoke-cert`, payload: { certificate: b64u(of.cert.der), reason: 1 } }) },
    },
  };

  before(async () => {
    w = await startWorld({ SIGNET_ACME_PROFILES: 'server,peer', SIGNET_ACME_EAB_REQUIRED: 'peer' });
    server = await makeSide('server', w.acme.dir, false, 1);
    peer = await makeSide('peer', await w.acme.directory('/peer/directory'), true, 2);
  });
  after(async () => {
    await w?.stop();
  });

  test('every account-authenticated ACME endpoint has a row in the matrix', () => {
    const signed = (Object.keys(ACME_ENDPOINTS) as AcmeEndpoint[]).filter((e) => ACME_ENDPOINTS[e].auth !== 'none');
    assert.deepEqual([...Object.keys(MATRIX), 'newAccount'].sort(), signed.sort(), 'add a row to MATRIX (or to the newAccount test) for the new endpoint');
  });

  test("the issue's scenario: an account of /acme/directory, made without EAB, gets nowhere at /acme/peer", async () => {
    const key = newKey('ES256');
    const acct = await w.acme.newAccount(key);
    const before = await snapshot();
    // newAccount at peer does not hand out the server account: peer wants EAB …
    assertProblem(await w.acme.post(peer.dir.newAccount, { termsOfServiceAgreed: true }, key), 400, 'externalAccountRequired');
    // … and has no account for this key.
    assertProblem(await w.acme.post(peer.dir.newAccount, { onlyReturnExisting: true }, key), 400, 'accountDoesNotExist');
    // Its kid is not an account there: no peer order, so no peer certificate.
    assertProblem(await w.newOrder(acct, ['bypass.signet.test'], peer.dir.newOrder), 400, 'accountDoesNotExist');
    // Not even with the kid spelled as a peer account URL.
    const forged = `${peer.base}/account/${idOf(acct.url)}`;
    assertProblem(
      await w.acme.post(peer.dir.newOrder, { identifiers: [{ type: 'dns', value: 'bypass.signet.test' }] }, acct, { kid: forged }),
      400,
      'accountDoesNotExist',
    );
    assert.deepEqual(await snapshot(), before);
    const peerCerts = await sql(w.s.env, 'SELECT "serial" FROM "Certificate" WHERE "profile" = ?', ['peer']);
    assert.deepEqual(
      peerCerts.map((r: any) => r.serial),
      [peer.cert.serial],
      "the only peer certificate is the EAB account's",
    );
  });

  for (const [endpoint, row] of Object.entries(MATRIX)) {
    for (const [variant, build] of Object.entries(row.variants)) {
      for (const [fromName, toName] of [
        ['server', 'peer'],
        ['peer', 'server'],
      ] as const) {
        test(`${endpoint} (${variant}): a ${fromName} account is refused at the ${toName} directory, and on the ${toName} directory's resources`, async () => {
          const from = fromName === 'server' ? server : peer;
          const to = fromName === 'server' ? peer : server;
          const before = await snapshot();
          const nonces = await usedNonces();
          const send = async (at: Side, of: Side, o: PostOptions = {}): Promise<Resp> => {
            const { url, payload } = build(from, at, of);
            return w.acme.post(url, payload, from.account, o);
          };
          const unknownHere = (r: Resp) => {
            assertProblem(r, 400, 'accountDoesNotExist');
            assert.match(r.json.detail, new RegExp(`no account exists at the ${to.profile} ACME directory|not an account URL of this ACME directory`));
          };
          // 1. At the other directory's URL, naming its own resources: its account does not exist there …
          unknownHere(await send(to, from));
          // … not even with its kid spelled as an account URL of that directory.
          unknownHere(await send(to, from, { kid: `${to.base}/account/${from.accountId}` }));
          // 2. At the other directory's URL, naming that directory's resources.
          if (row.resource) unknownHere(await send(to, to));
          // Refused before its nonce is spent: a request to another directory writes nothing at all.
          assert.equal(await usedNonces(), nonces);
          // 3. At its own directory's URL, naming the other directory's resources.
          if (row.resource) {
            const r = await send(from, to);
            assertProblem(r, 403, 'unauthorized');
            assert.match(
              r.json.detail,
              /belongs to another account|is not the account that signed this request|belongs to the \w+ directory and cannot act on/,
            );
          }
          assert.deepEqual(await snapshot(), before, 'a refused request changes nothing');
        });
      }
    }
  }

  test("newAccount: a key's account at one directory is not its account at the other", async () => {
    const before = await snapshot();
    for (const [from, to] of [
      [server, peer],
      [peer, server],
    ] as const) {
      const r = await w.acme.post(to.dir.newAccount, { onlyReturnExisting: true }, from.account.key);
      assertProblem(r, 400, 'accountDoesNotExist');
      assert.equal(r.headers.location, undefined);
    }
    // The EAB-required directory cannot be entered without EAB, whatever the key holds elsewhere.
    assertProblem(await w.acme.post(peer.dir.newAccount, { termsOfServiceAgreed: true }, server.account.key), 400, 'externalAccountRequired');
    // An EAB key made for the server directory does not open the peer directory either.
    const wrong = await w.acme.post(
      peer.dir.newAccount,
      { termsOfServiceAgreed: true, externalAccountBinding: eab(eabKey('server'), server.account.key, peer.dir.newAccount) },
      server.account.key,
    );
    assertProblem(wrong, [401, 403], 'unauthorized');
    const after = (await snapshot()) as { eabKeys: unknown[]; audit: number[] };
    const was = before as { eabKeys: unknown[]; audit: number[] };
    // The only change: the EAB key made above (unused) and its audit event.
    assert.deepEqual({ ...after, eabKeys: after.eabKeys.length, audit: after.audit[0] }, { ...was, eabKeys: was.eabKeys.length + 1, audit: was.audit[0]! + 1 });
  });

  test('the same key may hold a separate account at each directory (with EAB where required)', async () => {
    const key = newKey('EdDSA');
    const atServer = await w.acme.newAccount(key);
    const atPeer = await w.acme.newAccount(key, { externalAccountBinding: eab(eabKey('peer'), key, peer.dir.newAccount) }, peer.dir.newAccount);
    assert.notEqual(atPeer.url, atServer.url);
    assert.ok(atPeer.url.startsWith(`${peer.base}/account/`), atPeer.url);
    assert.ok(atServer.url.startsWith(`${server.base}/account/`), atServer.url);
    // Found again at each directory, each its own.
    const again = await w.acme.post(peer.dir.newAccount, { onlyReturnExisting: true }, key);
    assert.equal(again.headers.location, atPeer.url);
    assert.equal((await w.acme.post(server.dir.newAccount, { onlyReturnExisting: true }, key)).headers.location, atServer.url);
    // Each orders at its own directory only; orders lists are per account.
    const o = await w.newOrder(atPeer, ['both.signet.test'], peer.dir.newOrder);
    assert.equal(o.status, 201, o.text);
    assert.ok(o.headers.location!.startsWith(`${peer.base}/order/`));
    assert.deepEqual((await w.acme.post(`${atServer.url}/orders`, '', atServer)).json.orders, []);
    assert.deepEqual((await w.acme.post(`${atPeer.url}/orders`, '', atPeer)).json.orders, [o.headers.location]);
    assertProblem(await w.newOrder(atServer, ['both.signet.test'], peer.dir.newOrder), 400, 'accountDoesNotExist');
    // Deactivating one leaves the other.
    assert.equal((await w.acme.post(atServer.url, { status: 'deactivated' }, atServer)).json.status, 'deactivated');
    assert.equal((await w.acme.post(atPeer.url, '', atPeer)).json.status, 'valid');
  });

  test('a peer account may still name itself by the shared /acme/account/<id> URL it was given before directories had their own', async () => {
    const legacyKid = `${server.base}/account/${peer.accountId}`;
    const self = await w.acme.post(peer.account.url, '', peer.account, { kid: legacyKid });
    assert.equal(self.status, 200, self.text);
    assert.equal(self.headers.location, peer.account.url, "answered with its own directory's account URL");
    // The directory comes from the request URL, not from the kid: at the server directory it is still unknown.
    assertProblem(await w.acme.post(`${server.base}/account/${peer.accountId}`, '', peer.account, { kid: legacyKid }), 400, 'accountDoesNotExist');
  });

  test("renewalInfo: each directory answers for its own profile's certificates", async () => {
    for (const [own, other] of [
      [server, peer],
      [peer, server],
    ] as const) {
      const ok = await w.acme.request('GET', `${own.dir.renewalInfo}/${ariCertId(own.cert.der)}`);
      assert.equal(ok.status, 200, ok.text);
      assertProblem(await w.acme.request('GET', `${other.dir.renewalInfo}/${ariCertId(own.cert.der)}`), 404, 'malformed');
    }
  });

  test('afterwards both accounts still work at their own directories, and each certificate is good', async () => {
    for (const side of [server, peer]) {
      const r = await w.acme.post(side.account.url, '', side.account);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.status, 'valid');
      assert.deepEqual(r.json.contact, ['mailto:a@signet.test']);
      const order = await w.acme.post(`${side.base}/order/${side.pendingOrderId}`, '', side.account);
      assert.equal(order.json.status, 'pending', order.text);
      const chall = await w.acme.post(`${side.base}/chall/${side.pendingChallId}`, '', side.account);
      assert.equal(chall.json.status, 'pending', chall.text);
      const cert = await w.acme.post(`${side.base}/cert/${side.cert.serial}`, '', side.account);
      assert.equal(cert.status, 200, cert.text);
      const [row] = await sql(w.s.env, 'SELECT "status", "profile" FROM "Certificate" WHERE "serial" = ?', [side.cert.serial]);
      assert.deepEqual({ ...row }, { status: 'good', profile: side.profile });
    }
  });
});
