/**
 * Issue 7, the ACME protocol (RFC 8555, RFC 8737 names, RFC 9773 renewal information) spoken
 * by hand: a small JWS client written here with node:crypto (ES256, ES384, RS256, EdDSA account
 * keys) against a real `signet serve` over HTTPS (SQLite, or PostgreSQL under test:pg).
 *
 * http-01 challenges are answered by an HTTP server this test runs on loopback; the test names
 * (*.signet.test) resolve only through the test DNS server (SIGNET_ACME_DNS_RESOLVER), so
 * nothing edits /etc/hosts. The server's `server` profile is limited to dnsSuffixes
 * ["signet.test"] by SIGNET_PROFILES_FILE; its HTTPS name is therefore 127.0.0.1 (an IP, which
 * that profile allows).
 *
 * Every refusal is checked for its ACME problem type, and for leaving nothing behind: the
 * certificate count is compared after each one, and the server still answers at the end.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac, sign as cryptoSign, X509Certificate } from 'node:crypto';
import { createServer as createTlsServer } from 'node:tls';
import { readFileSync } from 'node:fs';
import { signet } from './helpers/cli.js';
import { openssl } from './helpers/openssl.js';
import { countRows } from './helpers/sql.js';
import {
  type AcmeClient,
  ERR,
  ariCertId,
  assertProblem,
  b64u,
  makeJws,
  newKey,
  signWith,
  startStack,
  startWorld,
  stopStack,
  thumbprint,
  until,
  type Account,
  type Key,
  type Resp,
  type Stack,
  type World,
} from './helpers/acme.js';

// ---- the protocol ---------------------------------------------------------------------------------

describe('ACME protocol', () => {
  let w: World;
  let s: Stack;
  let acme: AcmeClient;
  let http01: World['http01'];
  let http01Requests: World['http01Requests'];
  let certCount = 0;

  /** Refusals must leave the certificate table as it was. */
  async function assertNothingIssued(): Promise<void> {
    assert.equal(await countRows(s.env, 'Certificate'), certCount, 'a refused request must not issue a certificate');
  }

  async function api(method: string, path: string, body?: unknown): Promise<Resp> {
    return acme.request(method, `https://127.0.0.1:${s.tlsPort}${path}`, body === undefined ? undefined : JSON.stringify(body), {
      authorization: `Bearer ${s.server.token}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    });
  }

  const csr = (names: string[], withKey?: Key) => w.csr(names, withKey);
  const newOrder = (acct: Account, names: string[], url?: string) => w.newOrder(acct, names, url);
  const authorize = (acct: Account, order: Resp) => w.authorize(acct, order);
  const pollOrder = (acct: Account, orderUrl: string, status: string) => w.pollOrder(acct, orderUrl, status);
  /** The whole flow: order, http-01, finalize, download; counted as issued. */
  async function issue(acct: Account, names: string[]) {
    const r = await w.issue(acct, names);
    certCount++;
    return r;
  }

  const certStatus = async (der: Buffer) => {
    const serial = new X509Certificate(der).serialNumber.toLowerCase();
    const r = await api('GET', `/api/v1/certificates/${serial}/status`);
    assert.equal(r.status, 200, r.text);
    return r.json.status as string;
  };

  before(async () => {
    w = await startWorld({ SIGNET_ACME_PROFILES: 'server,peer', SIGNET_ACME_ORDERS_PER_HOUR: '3', SIGNET_ACME_FAILED_VALIDATIONS_PER_HOUR: '2' });
    ({ s, acme, http01, http01Requests } = w);
    certCount = await countRows(s.env, 'Certificate');
  });

  after(async () => {
    await w?.stop();
  });

  test('directory, per-profile directory, and plain HTTP refusing ACME', async () => {
    const d = acme.dir;
    const b = acme.base;
    assert.deepEqual(
      { newNonce: d.newNonce, newAccount: d.newAccount, newOrder: d.newOrder, revokeCert: d.revokeCert, keyChange: d.keyChange, renewalInfo: d.renewalInfo },
      {
        newNonce: `${b}/new-nonce`,
        newAccount: `${b}/new-account`,
        newOrder: `${b}/new-order`,
        revokeCert: `${b}/revoke-cert`,
        keyChange: `${b}/key-change`,
        renewalInfo: `${b}/renewal-info`,
      },
    );
    assert.equal(d.meta.externalAccountRequired, false);
    assert.deepEqual(d.meta.profiles, { server: `${b}/directory`, peer: `${b}/peer/directory` });
    // Every other directory is a separate ACME server with all its resources under its own URL.
    const peer = await acme.directory('/peer/directory');
    assert.deepEqual(
      {
        newNonce: peer.newNonce,
        newAccount: peer.newAccount,
        newOrder: peer.newOrder,
        revokeCert: peer.revokeCert,
        keyChange: peer.keyChange,
        renewalInfo: peer.renewalInfo,
      },
      {
        newNonce: `${b}/peer/new-nonce`,
        newAccount: `${b}/peer/new-account`,
        newOrder: `${b}/peer/new-order`,
        revokeCert: `${b}/peer/revoke-cert`,
        keyChange: `${b}/peer/key-change`,
        renewalInfo: `${b}/peer/renewal-info`,
      },
    );
    assert.deepEqual(peer.meta.profiles, d.meta.profiles);
    // The first directory's document is also served under its profile name, unchanged.
    assert.deepEqual(await acme.directory('/server/directory'), d);
    const none = await acme.request('GET', `${b}/nope/directory`);
    assertProblem(none, 404, 'malformed');
    assert.match(none.json.detail, /no ACME directory for profile nope/);
    const plain = await fetch(`${s.server.url}/acme/directory`);
    assert.equal(plain.status, 403, 'with TLS on, ACME is only served over HTTPS');
  });

  test('newNonce answers HEAD and GET with fresh nonces', async () => {
    const head = await acme.request('HEAD', acme.dir.newNonce);
    const get = await acme.request('GET', acme.dir.newNonce);
    assert.equal(head.status, 200);
    assert.equal(get.status, 204);
    const a = head.headers['replay-nonce'];
    const c = get.headers['replay-nonce'];
    assert.match(String(a), /^[A-Za-z0-9_-]{16,}$/);
    assert.match(String(c), /^[A-Za-z0-9_-]{16,}$/);
    assert.notEqual(a, c);
    assert.equal(head.headers['cache-control'], 'no-store');
    assert.match(String(head.headers.link), /rel="index"/);
  });

  for (const alg of ['ES256', 'ES384', 'RS256', 'EdDSA'] as const) {
    test(`an ${alg} account registers, is found again, and obtains a certificate`, async () => {
      const key = newKey(alg);
      const acct = await acme.newAccount(key);
      const again = await acme.post(acme.dir.newAccount, { termsOfServiceAgreed: true }, key);
      assert.equal(again.status, 200, again.text);
      assert.equal(again.headers.location, acct.url);
      const self = await acme.post(acct.url, '', acct);
      assert.equal(self.status, 200, self.text);
      assert.deepEqual(self.json.contact, ['mailto:a@signet.test']);
      const name = `alg-${alg.toLowerCase()}.signet.test`;
      await issue(acct, [name]);
      // Signet's validator fetched the token from our responder, by name (resolved through the test DNS).
      assert.ok(
        http01Requests.some((r) => r.host.startsWith(name)),
        JSON.stringify(http01Requests),
      );
      assert.ok(w.dns.queries.some((q) => q.name === name && q.type === 'A'));
    });
  }

  test('an IP identifier (RFC 8738) is validated at the address: tls-alpn-01 (reverse-DNS SNI, iPAddress SAN) and http-01', async () => {
    const ip = '127.0.0.1';
    const acct = await acme.newAccount(newKey('ES256'));
    const order = await acme.post(acme.dir.newOrder, { identifiers: [{ type: 'ip', value: ip }] }, acct);
    assert.equal(order.status, 201, order.text);
    const authzUrl = order.json.authorizations[0];
    const a = await acme.post(authzUrl, '', acct);
    assert.deepEqual(a.json.identifier, { type: 'ip', value: ip });
    assert.deepEqual((a.json.challenges as any[]).map((c) => c.type).sort(), ['http-01', 'tls-alpn-01'], 'no dns-01 for an IP');
    const ch = (a.json.challenges as any[]).find((c) => c.type === 'tls-alpn-01');
    // The RFC 8737 challenge certificate: one iPAddress SAN and the critical acmeIdentifier
    // extension holding SHA-256 of the key authorization, served only for ALPN acme-tls/1.
    const digest = createHash('sha256')
      .update(`${ch.token}.${thumbprint(acct.key.jwk)}`)
      .digest('hex');
    const keyFile = w.tmp.file('alpn.key');
    const certFile = w.tmp.file('alpn.crt');
    const made = openssl([
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      '1',
      '-subj',
      '/CN=acme-tls-alpn-01',
      '-addext',
      `subjectAltName=IP:${ip}`,
      '-addext',
      `1.3.6.1.5.5.7.1.31=critical,DER:0420${digest}`,
    ]);
    assert.equal(made.status, 0, made.stderr);
    const sni: (string | false)[] = [];
    const alpn = createTlsServer({ key: readFileSync(keyFile), cert: readFileSync(certFile), ALPNProtocols: ['acme-tls/1'] }, (sock) => sock.end());
    alpn.on('secureConnection', (sock) => {
      sni.push((sock as unknown as { servername: string | false }).servername);
    });
    await new Promise<void>((resolve) => alpn.listen(w.alpnPort, '127.0.0.1', () => resolve()));
    try {
      const r = await acme.post(ch.url, {}, acct);
      assert.equal(r.status, 200, r.text);
      const done = await until(
        'authorization',
        () => acme.post(authzUrl, '', acct),
        (x) => x.json.status !== 'pending',
      );
      assert.equal(done.json.status, 'valid', done.text);
      assert.deepEqual(sni, ['1.0.0.127.in-addr.arpa']);
    } finally {
      await new Promise<void>((r) => alpn.close(() => r()));
    }
    await pollOrder(acct, order.headers.location!, 'ready');
    const fin = await acme.post(order.json.finalize, { csr: b64u(csr([ip]).der) }, acct);
    assert.equal(fin.status, 200, fin.text);
    const valid = await pollOrder(acct, order.headers.location!, 'valid');
    certCount++;
    const dl = await acme.post(valid.json.certificate, '', acct);
    assert.equal(new X509Certificate(dl.text).checkIP(ip), ip);
    // Another account proves the same address with http-01 (Host header: the address).
    const other = await acme.newAccount(newKey('ES256'));
    const o2 = await acme.post(acme.dir.newOrder, { identifiers: [{ type: 'ip', value: ip }] }, other);
    assert.equal(o2.status, 201, o2.text);
    const before = http01Requests.length;
    await authorize(other, o2);
    assert.ok(
      http01Requests.slice(before).some((q) => q.host === ip),
      JSON.stringify(http01Requests.slice(before)),
    );
    await assertNothingIssued();
  });

  test('a bad JWS signature is refused and creates nothing', async () => {
    const accounts = await countRows(s.env, 'AcmeAccount');
    const key = newKey('ES256');
    const flip = (input: Buffer) => {
      const sig = signWith('ES256', key.privateKey, input);
      sig[5]! ^= 0xff;
      return sig;
    };
    const r = await acme.post(acme.dir.newAccount, { termsOfServiceAgreed: true }, key, { sign: flip });
    assertProblem(r, [400, 401, 403], ['malformed', 'unauthorized']);
    // A DER-encoded ECDSA signature is not the JWS (r||s) form.
    const der = await acme.post(acme.dir.newAccount, { termsOfServiceAgreed: true }, key, { sign: (input) => cryptoSign('sha256', input, key.privateKey) });
    assertProblem(der, [400, 401, 403], ['malformed', 'unauthorized']);
    // Signed by another key than the account's (kid).
    const acct = await acme.newAccount(newKey('ES256'));
    const other = newKey('ES256');
    const orders = await countRows(s.env, 'AcmeOrder');
    const forged = await acme.post(acme.dir.newOrder, { identifiers: [{ type: 'dns', value: 'forged.signet.test' }] }, acct, {
      sign: (input) => signWith('ES256', other.privateKey, input),
    });
    assertProblem(forged, [400, 401, 403], ['malformed', 'unauthorized']);
    // Not a JWS at all.
    const junk = await acme.request('POST', acme.dir.newAccount, '{"protected":1}', { 'content-type': 'application/jose+json' });
    assertProblem(junk, 400, 'malformed');
    const notJson = await acme.request('POST', acme.dir.newAccount, '{not json', { 'content-type': 'application/jose+json' });
    assertProblem(notJson, 400, 'malformed');
    assert.equal(await countRows(s.env, 'AcmeAccount'), accounts + 1, 'only the one good account exists');
    assert.equal(await countRows(s.env, 'AcmeOrder'), orders);
    await assertNothingIssued();
  });

  test('nonces: replayed, unknown or missing → badNonce (with a fresh nonce to retry with)', async () => {
    const acct = await acme.newAccount(newKey('ES256'));
    const nonce = await acme.nonce();
    const ok = await acme.post(acct.url, '', acct, { nonce });
    assert.equal(ok.status, 200, ok.text);
    const replay = await acme.post(acct.url, '', acct, { nonce });
    assertProblem(replay, 400, 'badNonce');
    assert.match(String(replay.headers['replay-nonce']), /^[A-Za-z0-9_-]+$/, 'the error carries a nonce to retry with');
    const unknown = await acme.post(acct.url, '', acct, { nonce: b64u(Buffer.alloc(16, 7)) });
    assertProblem(unknown, 400, 'badNonce');
    const missing = await acme.post(acct.url, '', acct, { nonce: null });
    assertProblem(missing, 400, 'badNonce');
    // A replayed nonce on newAccount creates nothing either.
    const accounts = await countRows(s.env, 'AcmeAccount');
    const n1 = await acme.nonce();
    const created = await acme.post(acme.dir.newAccount, { termsOfServiceAgreed: true }, newKey('ES256'), { nonce: n1 });
    assert.equal(created.status, 201, created.text);
    const replayedNew = await acme.post(acme.dir.newAccount, { termsOfServiceAgreed: true }, newKey('ES256'), { nonce: n1 });
    assertProblem(replayedNew, 400, 'badNonce');
    assert.equal(await countRows(s.env, 'AcmeAccount'), accounts + 1);
    await assertNothingIssued();
  });

  test('a JWS whose url header is not the request URL → unauthorized', async () => {
    const acct = await acme.newAccount(newKey('ES256'));
    const r = await acme.post(acct.url, '', acct, { url: acme.dir.newOrder });
    assertProblem(r, 401, 'unauthorized');
    const orders = await countRows(s.env, 'AcmeOrder');
    const o = await acme.post(acme.dir.newOrder, { identifiers: [{ type: 'dns', value: 'url.signet.test' }] }, acct, { url: `${acme.base}/peer/new-order` });
    assertProblem(o, 401, 'unauthorized');
    assert.equal(await countRows(s.env, 'AcmeOrder'), orders);
    await assertNothingIssued();
  });

  test('unsupported algorithms (HS256, none, PS256, mismatched curve) → badSignatureAlgorithm', async () => {
    const accounts = await countRows(s.env, 'AcmeAccount');
    const ec = newKey('ES256');
    const rsa = newKey('RS256');
    const cases: [string, Resp][] = [
      [
        'HS256',
        await acme.post(acme.dir.newAccount, { termsOfServiceAgreed: true }, ec, {
          alg: 'HS256',
          sign: (input) => createHmac('sha256', Buffer.alloc(32, 1)).update(input).digest(),
        }),
      ],
      ['none', await acme.post(acme.dir.newAccount, { termsOfServiceAgreed: true }, ec, { alg: 'none', sign: () => Buffer.alloc(0) })],
      [
        'PS256',
        await acme.post(acme.dir.newAccount, { termsOfServiceAgreed: true }, rsa, {
          alg: 'PS256',
          sign: (input) => cryptoSign('sha256', input, { key: rsa.privateKey, padding: 6 /* RSA_PKCS1_PSS_PADDING */, saltLength: 32 }),
        }),
      ],
      [
        'ES384 with a P-256 key',
        await acme.post(acme.dir.newAccount, { termsOfServiceAgreed: true }, ec, {
          alg: 'ES384',
          sign: (input) => cryptoSign('sha384', input, { key: ec.privateKey, dsaEncoding: 'ieee-p1363' }),
        }),
      ],
    ];
    for (const [what, r] of cases) {
      assertProblem(r, 400, 'badSignatureAlgorithm');
      assert.ok(Array.isArray(r.json.algorithms) && r.json.algorithms.includes('ES256'), `${what}: the problem lists the accepted algorithms: ${r.text}`);
    }
    // On a kid-signed request too.
    const acct = await acme.newAccount(newKey('ES256'));
    const r = await acme.post(acct.url, '', acct, { alg: 'HS256', sign: (input) => createHmac('sha256', Buffer.alloc(32, 1)).update(input).digest() });
    assertProblem(r, 400, 'badSignatureAlgorithm');
    assert.equal(await countRows(s.env, 'AcmeAccount'), accounts + 1);
    await assertNothingIssued();
  });

  test('wrong content type → 415 malformed; an oversized payload → 413 malformed', async () => {
    const accounts = await countRows(s.env, 'AcmeAccount');
    const key = newKey('ES256');
    const json = await acme.post(acme.dir.newAccount, { termsOfServiceAgreed: true }, key, { contentType: 'application/json' });
    assertProblem(json, 415, 'malformed');
    const none = await acme.post(acme.dir.newAccount, { termsOfServiceAgreed: true }, key, { contentType: null });
    assertProblem(none, 415, 'malformed');
    const big = await acme.post(acme.dir.newAccount, { termsOfServiceAgreed: true, contact: ['mailto:a@signet.test'], padding: 'x'.repeat(70 * 1024) }, key);
    assertProblem(big, 413, 'malformed');
    assert.equal(await countRows(s.env, 'AcmeAccount'), accounts);
    await assertNothingIssued();
  });

  test('onlyReturnExisting: unknown key → accountDoesNotExist; known key → the account', async () => {
    const accounts = await countRows(s.env, 'AcmeAccount');
    const unknown = await acme.post(acme.dir.newAccount, { onlyReturnExisting: true }, newKey('ES256'));
    assertProblem(unknown, 400, 'accountDoesNotExist');
    assert.equal(await countRows(s.env, 'AcmeAccount'), accounts);
    const key = newKey('EdDSA');
    const acct = await acme.newAccount(key);
    const known = await acme.post(acme.dir.newAccount, { onlyReturnExisting: true }, key);
    assert.equal(known.status, 200, known.text);
    assert.equal(known.headers.location, acct.url);
  });

  test('contact update, with bad contacts refused', async () => {
    const acct = await acme.newAccount(newKey('ES256'));
    const r = await acme.post(acct.url, { contact: ['mailto:ops@signet.test', 'mailto:pki@signet.test'] }, acct);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.contact, ['mailto:ops@signet.test', 'mailto:pki@signet.test']);
    const back = await acme.post(acct.url, '', acct);
    assert.deepEqual(back.json.contact, ['mailto:ops@signet.test', 'mailto:pki@signet.test']);
    assertProblem(await acme.post(acct.url, { contact: ['tel:+15551234'] }, acct), 400, 'unsupportedContact');
    assertProblem(await acme.post(acct.url, { contact: ['mailto:a@signet.test,b@signet.test'] }, acct), 400, 'invalidContact');
    assert.deepEqual((await acme.post(acct.url, '', acct)).json.contact, ['mailto:ops@signet.test', 'mailto:pki@signet.test']);
    // Another account cannot change it.
    const other = await acme.newAccount(newKey('ES256'));
    const foreign = await acme.post(acct.url, { contact: [] }, other);
    assertProblem(foreign, [401, 403], 'unauthorized');
  });

  test('a deactivated account can do nothing more', async () => {
    const key = newKey('ES384');
    const acct = await acme.newAccount(key);
    const r = await acme.post(acct.url, { status: 'deactivated' }, acct);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.status, 'deactivated');
    const orders = await countRows(s.env, 'AcmeOrder');
    assertProblem(await acme.post(acct.url, '', acct), 401, 'unauthorized');
    assertProblem(await newOrder(acct, ['deactivated.signet.test']), 401, 'unauthorized');
    assertProblem(await acme.post(acme.dir.newAccount, { termsOfServiceAgreed: true }, key), 401, 'unauthorized');
    assertProblem(await acme.post(acct.url, { status: 'valid' }, acct), 401, 'unauthorized');
    assert.equal(await countRows(s.env, 'AcmeOrder'), orders);
    await assertNothingIssued();
  });

  test('key rollover: afterwards the old key fails and the new key works', async () => {
    const oldKey = newKey('ES256');
    const acct = await acme.newAccount(oldKey);
    const newK = newKey('ES256');
    const inner = (k: Key, payload: unknown) =>
      makeJws({ alg: k.alg, jwk: k.jwk, url: acme.dir.keyChange }, payload, (input) => signWith(k.alg, k.privateKey, input));
    // The inner JWS must be signed by the new key and name the old one.
    const wrongOld = await acme.post(acme.dir.keyChange, inner(newK, { account: acct.url, oldKey: newKey('ES256').jwk }), acct);
    assertProblem(wrongOld, 400, 'malformed');
    const r = await acme.post(acme.dir.keyChange, inner(newK, { account: acct.url, oldKey: oldKey.jwk }), acct);
    assert.equal(r.status, 200, r.text);
    // The old key (same algorithm, so only the key differs): its signature no longer verifies
    // for the account, and it finds no account.
    assertProblem(await acme.post(acct.url, '', acct), [400, 401, 403], ['malformed', 'unauthorized']);
    assertProblem(await acme.post(acme.dir.newAccount, { onlyReturnExisting: true }, oldKey), 400, 'accountDoesNotExist');
    // The new key is the account.
    const rolled: Account = { key: newK, url: acct.url };
    const self = await acme.post(acct.url, '', rolled);
    assert.equal(self.status, 200, self.text);
    const found = await acme.post(acme.dir.newAccount, { onlyReturnExisting: true }, newK);
    assert.equal(found.status, 200, found.text);
    assert.equal(found.headers.location, acct.url);
    // Rolling over to a key another account already uses → 409 naming that account.
    const taken = newKey('ES256');
    const owner = await acme.newAccount(taken);
    const clash = await acme.post(acme.dir.keyChange, inner(taken, { account: acct.url, oldKey: newK.jwk }), rolled);
    // RFC 8555 §7.3.5 names no problem type for this; Boulder (and Signet) use "conflict".
    assertProblem(clash, 409, ['conflict', 'malformed']);
    assert.equal(clash.headers.location, owner.url);
  });

  test('POST-as-GET on a challenge reads it; only "{}" starts validation', async () => {
    const acct = await acme.newAccount(newKey('ES256'));
    const order = await newOrder(acct, ['poll.signet.test']);
    assert.equal(order.status, 201, order.text);
    const authzUrl = order.json.authorizations[0];
    const ch = ((await acme.post(authzUrl, '', acct)).json.challenges as any[]).find((c) => c.type === 'http-01');
    const before = http01Requests.length;
    const read = await acme.post(ch.url, '', acct);
    assert.equal(read.status, 200, read.text);
    assert.equal(read.json.status, 'pending', 'reading a challenge must not start its validation');
    assert.equal(read.json.token, ch.token);
    // Nothing was fetched, so the client can still provision the response and then ask.
    assert.equal(http01Requests.slice(before).filter((q) => q.path.endsWith(ch.token)).length, 0);
    http01.set(ch.token, `${ch.token}.${thumbprint(acct.key.jwk)}`);
    const go = await acme.post(ch.url, {}, acct);
    assert.equal(go.status, 200, go.text);
    assert.ok(['processing', 'valid'].includes(go.json.status), go.text);
    const done = await until(
      'authorization',
      () => acme.post(authzUrl, '', acct),
      (x) => x.json.status !== 'pending',
    );
    assert.equal(done.json.status, 'valid', done.text);
    // Another account cannot read it.
    const other = await acme.newAccount(newKey('ES256'));
    assertProblem(await acme.post(ch.url, '', other), 403, 'unauthorized');
  });

  test('finalize before the order is ready → orderNotReady', async () => {
    const acct = await acme.newAccount(newKey('ES256'));
    const order = await newOrder(acct, ['early.signet.test']);
    assert.equal(order.status, 201, order.text);
    assert.equal(order.json.status, 'pending');
    const fin = await acme.post(order.json.finalize, { csr: b64u(csr(['early.signet.test']).der) }, acct);
    assertProblem(fin, 403, 'orderNotReady');
    await assertNothingIssued();
  });

  test('finalize with a malformed CSR or other names → badCSR, then the right CSR is issued', async () => {
    const acct = await acme.newAccount(newKey('ES256'));
    const names = ['final.signet.test', 'www.final.signet.test'];
    const order = await newOrder(acct, names);
    assert.equal(order.status, 201, order.text);
    await authorize(acct, order);
    await pollOrder(acct, order.headers.location!, 'ready');
    const good = csr(names).der;
    const tampered = Buffer.from(good);
    tampered[tampered.length - 10]! ^= 0xff; // inside the signature
    const bad: [string, unknown][] = [
      ['not base64url', { csr: 'not base64url!' }],
      ['not DER', { csr: b64u(Buffer.from('certainly not a CSR')) }],
      ['no csr', {}],
      ['bad signature', { csr: b64u(tampered) }],
      ['fewer names', { csr: b64u(csr([names[0]!]).der) }],
      ['other names', { csr: b64u(csr(['other.signet.test']).der) }],
      ['extra names', { csr: b64u(csr([...names, 'extra.signet.test']).der) }],
      ['the account key as certificate key', { csr: b64u(csr(names, acct.key).der) }],
    ];
    for (const [what, payload] of bad) {
      const r = await acme.post(order.json.finalize, payload, acct);
      assert.equal(r.json?.type, `${ERR}badCSR`, `${what}: ${r.text}`);
      assertProblem(r, 400, 'badCSR');
      await assertNothingIssued();
    }
    // The refusals left the order ready for the right CSR.
    assert.equal((await acme.post(order.headers.location!, '', acct)).json.status, 'ready');
    const fin = await acme.post(order.json.finalize, { csr: b64u(good) }, acct);
    assert.equal(fin.status, 200, fin.text);
    const valid = await pollOrder(acct, order.headers.location!, 'valid');
    certCount++;
    const dl = await acme.post(valid.json.certificate, '', acct);
    assert.equal(dl.status, 200);
    const x = new X509Certificate(dl.text);
    assert.match(x.subjectAltName!, /DNS:final\.signet\.test/);
    assert.match(x.subjectAltName!, /DNS:www\.final\.signet\.test/);
    await assertNothingIssued(); // exactly one more
  });

  test('identifiers outside the profile policy or malformed → rejectedIdentifier', async () => {
    const acct = await acme.newAccount(newKey('ES256'));
    const orders = await countRows(s.env, 'AcmeOrder');
    for (const value of ['other.example', '*.*.x', 'a..b', 'ok.signet.test.other.example']) {
      const r = await newOrder(acct, [value]);
      assertProblem(r, 400, 'rejectedIdentifier');
    }
    // One bad name spoils the order.
    assertProblem(await newOrder(acct, ['fine.signet.test', 'other.example']), 400, 'rejectedIdentifier');
    assertProblem(await acme.post(acme.dir.newOrder, { identifiers: [{ type: 'email', value: 'a@signet.test' }] }, acct), 400, 'unsupportedIdentifier');
    assertProblem(await acme.post(acme.dir.newOrder, { identifiers: [] }, acct), 400, 'malformed');
    assert.equal(await countRows(s.env, 'AcmeOrder'), orders);
    // Policy is per profile: the peer directory (no suffix list) takes the same name, from an
    // account of the peer directory.
    const peer = await acme.directory('/peer/directory');
    const peerAcct = await acme.newAccount(newKey('ES256'), {}, peer.newAccount);
    const r = await newOrder(peerAcct, ['other.example'], peer.newOrder);
    assert.equal(r.status, 201, r.text);
    await assertNothingIssued();
  });

  test('rate limit: the 4th order in an hour → rateLimited with Retry-After', async () => {
    const acct = await acme.newAccount(newKey('ES256'));
    for (let i = 1; i <= 3; i++) {
      const r = await newOrder(acct, [`rl${i}.signet.test`]);
      assert.equal(r.status, 201, r.text);
    }
    const orders = await countRows(s.env, 'AcmeOrder');
    const r = await newOrder(acct, ['rl4.signet.test']);
    assertProblem(r, 429, 'rateLimited');
    assert.match(String(r.headers['retry-after']), /^\d+$/);
    assert.ok(Number(r.headers['retry-after']) > 0);
    assert.equal(await countRows(s.env, 'AcmeOrder'), orders);
    // Another account is not affected.
    const other = await acme.newAccount(newKey('ES256'));
    assert.equal((await newOrder(other, ['rl4.signet.test'])).status, 201);
    await assertNothingIssued();
  });

  test('a wrong http-01 answer makes the challenge, authorization and order invalid; repeated failures → rateLimited', async () => {
    const acct = await acme.newAccount(newKey('ES256'));
    const attempt = async (name: string, body: string | undefined) => {
      const order = await newOrder(acct, [name]);
      assert.equal(order.status, 201, order.text);
      const authzUrl = order.json.authorizations[0];
      const a = await acme.post(authzUrl, '', acct);
      const ch = (a.json.challenges as any[]).find((c) => c.type === 'http-01');
      if (body !== undefined) http01.set(ch.token, body);
      const before = http01Requests.length;
      const r = await acme.post(ch.url, {}, acct);
      assert.equal(r.status, 200, r.text);
      const done = await until(
        'authorization',
        () => acme.post(authzUrl, '', acct),
        (x) => x.json.status !== 'pending',
      );
      assert.equal(done.json.status, 'invalid', done.text);
      const failed = (done.json.challenges as any[]).find((c) => c.type === 'http-01');
      assert.equal(failed.status, 'invalid');
      assert.ok(
        http01Requests.slice(before).some((q) => q.host.startsWith(name) && q.path.endsWith(ch.token)),
        'Signet asked our responder',
      );
      const o = await acme.post(order.headers.location!, '', acct);
      assert.equal(o.json.status, 'invalid', o.text);
      assert.ok(o.json.error?.type?.startsWith(ERR), o.text);
      assertProblem(await acme.post(order.json.finalize, { csr: b64u(csr([name]).der) }, acct), 403, 'orderNotReady');
      return failed.error;
    };
    // The responder serves the key authorization of another account (the wrong token's answer).
    const wrong = await attempt('wrong1.signet.test', `wrongtoken.${thumbprint(newKey('ES256').jwk)}`);
    assert.ok([`${ERR}incorrectResponse`, `${ERR}unauthorized`].includes(wrong.type), JSON.stringify(wrong));
    // No file at all (404).
    const missing = await attempt('wrong2.signet.test', undefined);
    assert.ok([`${ERR}incorrectResponse`, `${ERR}unauthorized`].includes(missing.type), JSON.stringify(missing));
    // SIGNET_ACME_FAILED_VALIDATIONS_PER_HOUR=2: a third order is refused.
    const orders = await countRows(s.env, 'AcmeOrder');
    const r = await newOrder(acct, ['wrong3.signet.test']);
    assertProblem(r, 429, 'rateLimited');
    assert.match(r.json.detail, /failed/);
    assert.ok(Number(r.headers['retry-after']) > 0);
    assert.equal(await countRows(s.env, 'AcmeOrder'), orders);
    await assertNothingIssued();
  });

  test('revocation: by the certificate key works, by an unrelated account is unauthorized', async () => {
    const acct = await acme.newAccount(newKey('ES256'));
    const cert = await issue(acct, ['revoke-me.signet.test']);
    const stranger = await acme.newAccount(newKey('ES256'));
    const byStranger = await acme.post(acme.dir.revokeCert, { certificate: b64u(cert.der) }, stranger);
    assertProblem(byStranger, [401, 403], 'unauthorized');
    assert.equal(await certStatus(cert.der), 'good');
    // certificateHold is not a reason an ACME client may ask for.
    assertProblem(await acme.post(acme.dir.revokeCert, { certificate: b64u(cert.der), reason: 6 }, acct), 400, 'badRevocationReason');
    // A key that is neither the certificate's nor an account's.
    const nobody = newKey('ES256');
    assertProblem(await acme.post(acme.dir.revokeCert, { certificate: b64u(cert.der) }, nobody), [401, 403], 'unauthorized');
    // Authorisation comes first: neither a stranger's account nor a random key learns which reasons would pass.
    assertProblem(await acme.post(acme.dir.revokeCert, { certificate: b64u(cert.der), reason: 6 }, stranger), [401, 403], 'unauthorized');
    assertProblem(await acme.post(acme.dir.revokeCert, { certificate: b64u(cert.der), reason: 6 }, nobody), [401, 403], 'unauthorized');
    assert.equal(await certStatus(cert.der), 'good');
    // Signed with the certificate's own key (jwk = the certificate's public key).
    const certKey: Key = { alg: 'ES256', privateKey: cert.key, publicKey: cert.key, jwk: cert.publicJwk };
    const r = await acme.post(acme.dir.revokeCert, { certificate: b64u(cert.der), reason: 1 }, certKey);
    assert.equal(r.status, 200, r.text);
    assert.equal(await certStatus(cert.der), 'revoked');
    assertProblem(await acme.post(acme.dir.revokeCert, { certificate: b64u(cert.der) }, acct), 400, 'alreadyRevoked');
    // The ordinary inventory shows it, revoked, with the reason.
    const inv = await api('GET', `/api/v1/certificates/${cert.serial}`);
    assert.equal(inv.status, 200, inv.text);
    assert.equal(inv.json.status, 'revoked');
    assert.equal(inv.json.revocationReason, 'keyCompromise');
  });

  test('renewalInfo: a window ahead for a good certificate, now once it is revoked', async () => {
    const acct = await acme.newAccount(newKey('ES256'));
    const cert = await issue(acct, ['ari.signet.test']);
    const url = `${acme.dir.renewalInfo}/${ariCertId(cert.der)}`;
    const r = await acme.request('GET', url);
    assert.equal(r.status, 200, r.text);
    assert.match(String(r.headers['retry-after']), /^\d+$/);
    const start = Date.parse(r.json.suggestedWindow.start);
    const end = Date.parse(r.json.suggestedWindow.end);
    assert.ok(start > Date.now(), `window starts in the future: ${r.text}`);
    assert.ok(end > start);
    assert.ok(end < Date.parse(new X509Certificate(cert.der).validTo));
    assertProblem(await acme.request('GET', `${acme.dir.renewalInfo}/AAAA.AAAA`), 404, 'malformed');
    assertProblem(await acme.request('GET', `${acme.dir.renewalInfo}/not-an-id`), 400, 'malformed');
    // An order may say which certificate it replaces (RFC 9773 §5), but only one issued here.
    const replacing = await acme.post(acme.dir.newOrder, { identifiers: [{ type: 'dns', value: 'ari.signet.test' }], replaces: ariCertId(cert.der) }, acct);
    assert.equal(replacing.status, 201, replacing.text);
    assertProblem(
      await acme.post(acme.dir.newOrder, { identifiers: [{ type: 'dns', value: 'ari.signet.test' }], replaces: 'AAAA.AAAA' }, acct),
      400,
      'malformed',
    );
    // Revoked by the account that ordered it → renew now.
    const rev = await acme.post(acme.dir.revokeCert, { certificate: b64u(cert.der) }, acct);
    assert.equal(rev.status, 200, rev.text);
    const now = await acme.request('GET', url);
    assert.equal(now.status, 200, now.text);
    assert.ok(Date.parse(now.json.suggestedWindow.start) <= Date.now(), now.text);
    assert.ok(Date.parse(now.json.suggestedWindow.end) <= Date.now() + 60_000, now.text);
  });

  test('renewalInfo moves to now for certificates under a revoked intermediate (runs last: it stops issuance)', async () => {
    const acct = await acme.newAccount(newKey('ES256'));
    const cert = await issue(acct, ['ari-ca.signet.test']);
    const url = `${acme.dir.renewalInfo}/${ariCertId(cert.der)}`;
    assert.ok(Date.parse((await acme.request('GET', url)).json.suggestedWindow.start) > Date.now());
    const revoked = await api('POST', `/api/v1/cas/${s.intId}/revoke`, { reason: 'superseded' });
    assert.equal(revoked.status, 200, revoked.text);
    const r = await acme.request('GET', url);
    assert.equal(r.status, 200, r.text);
    assert.ok(Date.parse(r.json.suggestedWindow.start) <= Date.now(), r.text);
    assert.ok(Date.parse(r.json.suggestedWindow.end) <= Date.now() + 60_000, r.text);
    // The certificate itself is still good: the issuer moved the window.
    assert.equal(await certStatus(cert.der), 'good');
  });

  test('after all that, the server still serves and issued exactly what was counted', async () => {
    assert.equal((await fetch(`${s.server.url}/readyz`)).status, 200);
    const d = await acme.request('GET', `${acme.base}/directory`);
    assert.equal(d.status, 200);
    await assertNothingIssued();
    const audit = await api('GET', '/api/v1/audit?action=acme.challenge.failed&limit=100');
    assert.equal(audit.status, 200, audit.text);
    assert.equal(audit.json.items.length, 2);
  });
});

// ---- External Account Binding ---------------------------------------------------------------------

describe('ACME External Account Binding (SIGNET_ACME_EAB_REQUIRED=all)', () => {
  let s: Stack;
  let acme: AcmeClient;

  const eabKey = (profile?: string): { kid: string; hmacKey: string } => {
    const r = signet(['acme', 'eab', 'create', '--json', ...(profile ? ['--profile', profile] : [])], s.env.env);
    assert.equal(r.status, 0, r.stderr);
    const k = JSON.parse(r.stdout) as { kid: string; hmacKey: string; profile: string };
    assert.match(k.hmacKey, /^[A-Za-z0-9_-]{43}$/);
    // Every key is bound to one directory; without --profile, the first (/acme/directory).
    assert.equal(k.profile, profile ?? 'server');
    return k;
  };
  const eab = (k: { kid: string; hmacKey: string }, accountKey: Key, url: string, macKey = Buffer.from(k.hmacKey, 'base64url')) =>
    makeJws({ alg: 'HS256', kid: k.kid, url }, accountKey.jwk, (input) => createHmac('sha256', macKey).update(input).digest());

  before(async () => {
    s = await startStack({ SIGNET_ACME_EAB_REQUIRED: 'all', SIGNET_ACME_PROFILES: 'server,peer' }, 'localhost,127.0.0.1');
    acme = s.acme;
  });
  after(async () => {
    await stopStack(s);
  });

  test('the directories say so, and newAccount without a binding → externalAccountRequired', async () => {
    assert.equal(acme.dir.meta.externalAccountRequired, true);
    assert.equal((await acme.directory('/peer/directory')).meta.externalAccountRequired, true);
    const r = await acme.post(acme.dir.newAccount, { termsOfServiceAgreed: true }, newKey('ES256'));
    assertProblem(r, 400, 'externalAccountRequired');
    assert.equal(await countRows(s.env, 'AcmeAccount'), 0);
  });

  test('a key from `signet acme eab create` registers one account, once', async () => {
    const k = eabKey();
    const key = newKey('ES256');
    // A wrong MAC is refused and does not use the key up.
    const forged = await acme.post(
      acme.dir.newAccount,
      { termsOfServiceAgreed: true, externalAccountBinding: eab(k, key, acme.dir.newAccount, Buffer.alloc(32, 9)) },
      key,
    );
    assertProblem(forged, [401, 403], 'unauthorized');
    assert.equal(await countRows(s.env, 'AcmeAccount'), 0);
    const acct = await acme.newAccount(key, { externalAccountBinding: eab(k, key, acme.dir.newAccount) });
    const self = await acme.post(acct.url, '', acct);
    assert.equal(self.status, 200);
    const order = await acme.post(acme.dir.newOrder, { identifiers: [{ type: 'dns', value: 'eab.signet.test' }] }, acct);
    assert.equal(order.status, 201, order.text);
    // The same EAB key for a second account key → unauthorized.
    const second = newKey('EdDSA');
    const reuse = await acme.post(acme.dir.newAccount, { termsOfServiceAgreed: true, externalAccountBinding: eab(k, second, acme.dir.newAccount) }, second);
    assertProblem(reuse, [401, 403], 'unauthorized');
    assert.match(reuse.json.detail, /was already used/);
    assert.equal(await countRows(s.env, 'AcmeAccount'), 1);
    // A binding over another key than the one signing the request is malformed.
    const third = newKey('ES256');
    const k2 = eabKey();
    const mismatch = await acme.post(
      acme.dir.newAccount,
      { termsOfServiceAgreed: true, externalAccountBinding: eab(k2, newKey('ES256'), acme.dir.newAccount) },
      third,
    );
    assertProblem(mismatch, 400, 'malformed');
    assert.equal(await countRows(s.env, 'AcmeAccount'), 1);
    const audit = await acme.request('GET', `https://127.0.0.1:${s.tlsPort}/api/v1/audit?action=acme.eab.created`, undefined, {
      authorization: `Bearer ${s.server.token}`,
    });
    assert.equal(audit.status, 200, audit.text);
    assert.deepEqual(audit.json.items.map((e: any) => e.target).sort(), [k.kid, k2.kid].sort());
  });

  test("a key made for one profile works only at that profile's directory", async () => {
    const k = eabKey('peer');
    const peer = await acme.directory('/peer/directory');
    const key = newKey('ES256');
    const wrongDir = await acme.post(acme.dir.newAccount, { termsOfServiceAgreed: true, externalAccountBinding: eab(k, key, acme.dir.newAccount) }, key);
    assertProblem(wrongDir, [401, 403], 'unauthorized');
    await acme.newAccount(key, { externalAccountBinding: eab(k, key, peer.newAccount) }, peer.newAccount);
    // A key made without --profile is for the first directory only (least privilege): the peer
    // directory refuses it, and the refusal does not use it up.
    const k2 = eabKey();
    const key2 = newKey('ES256');
    const atPeer = await acme.post(peer.newAccount, { termsOfServiceAgreed: true, externalAccountBinding: eab(k2, key2, peer.newAccount) }, key2);
    assertProblem(atPeer, [401, 403], 'unauthorized');
    assert.match(atPeer.json.detail, /for the server ACME directory, not peer/);
    await acme.newAccount(key2, { externalAccountBinding: eab(k2, key2, acme.dir.newAccount) });
    const bad = signet(['acme', 'eab', 'create', '--profile', 'nope'], s.env.env);
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /nope/);
  });
});
