/**
 * Issue 12 item 13: OCSP requests for serials Signet never issued cost a signature each, and
 * anyone can make up new ones. A flood of them signs no more than the per-process budget
 * (SIGNET_OCSP_ON_DEMAND_PER_SECOND), answers the rest with the unsigned tryLater, serves
 * repeats from a cache, and never holds back the answers for issued certificates. Every answer
 * stays a valid OCSP response (openssl parses it). Signatures are counted by the
 * signet_ocsp_responses_total metric. Requests naming issuers Signet does not hold reload the
 * issuer index at most once a second. Real server, SQLite or PostgreSQL.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { api, signet, startServer, type RunningServer } from './helpers/cli.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';
import { openssl, TempDir, csrMaker } from './helpers/openssl.js';
import { encodeCertId, issuerHashes, type CertIdHashes } from '../src/pki/ocsp.js';
import { sequence } from '../src/pki/der.js';
import { BoundedLru, TokenBucket } from '../src/ca/bounded-lru.js';

const BUDGET = 5; // signatures a second, and the burst
const TRY_LATER = Buffer.from([0x30, 0x03, 0x0a, 0x01, 0x03]);

/** OCSPRequest { tbsRequest { requestList { Request { reqCert } … } } }, no nonce. */
const ocspRequest = (h: CertIdHashes, serials: Buffer[]) =>
  sequence(
    sequence(
      sequence(...serials.map((serial) => sequence(encodeCertId({ hashAlgorithm: 'sha1', issuerNameHash: h.nameHash, issuerKeyHash: h.keyHash, serial })))),
    ),
  );

describe('a flood of never-issued serials signs no more than the on-demand budget', () => {
  let env: TestEnv;
  let server: RunningServer;
  const tmp = new TempDir();
  const makeCsr = csrMaker(tmp);
  let hashes: CertIdHashes;
  let intPem: string;
  let bundlePem: string;
  const issued: Record<'good' | 'revoked', { serial: string; pem: string }> = {} as never;
  let signedSerials: Buffer[] = [];

  const post = async (body: Buffer) => {
    const res = await fetch(`${server.url}/ocsp`, { method: 'POST', headers: { 'content-type': 'application/ocsp-request' }, body: new Uint8Array(body) });
    return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
  };
  const outcomes = async () => {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    const n = (o: string) => Number(new RegExp(`^signet_ocsp_responses_total\\{outcome="${o}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
    return { cached: n('cached'), signed: n('signed'), tryLater: n('try-later') };
  };
  const opensslText = (der: Buffer) => {
    const r = openssl(['ocsp', '-respin', tmp.file(`resp-${randomBytes(4).toString('hex')}.der`, der), '-resp_text', '-noverify']);
    return r.stdout + r.stderr;
  };

  before(async () => {
    // No status poll during the test: it re-signs a just-revoked certificate's answer in the
    // background (for other replicas' sake), which would blur the signature counts below.
    env = await createTestEnv({ SIGNET_OCSP_ON_DEMAND_PER_SECOND: String(BUDGET), SIGNET_OCSP_POLL_MS: '60000' });
    server = await startServer(env.env);
    const cas = (await api(server, 'GET', '/api/v1/cas')).json.items as { id: string; parentId: string | null }[];
    const root = cas.find((c) => c.parentId === null)!;
    const int = cas.find((c) => c.parentId === root.id)!;
    hashes = issuerHashes(Buffer.from(await (await fetch(`${server.url}/pki/${int.id}.crt`)).arrayBuffer())).sha1;
    intPem = tmp.file('int.pem', (await api(server, 'GET', `/api/v1/cas/${int.id}`)).json.certificate);
    bundlePem = tmp.file('bundle.pem', (await api(server, 'GET', `/api/v1/cas/${root.id}`)).json.certificate + readFileSync(intPem, 'utf8'));
    for (const kind of ['good', 'revoked'] as const) {
      const r = await api(server, 'POST', '/api/v1/certificates', { csr: makeCsr(`DNS:${kind}.flood.example.com`), profile: 'server' });
      assert.equal(r.status, 201, r.text);
      issued[kind] = { serial: r.json.serial, pem: tmp.file(`${kind}.pem`, r.json.certificate) };
    }
    assert.equal((await api(server, 'POST', `/api/v1/certificates/${issued.revoked.serial}/revoke`, { reason: 'keyCompromise' })).status, 200);
    // The revocation re-signs that certificate's answer just after it returns: let it land.
    for (let i = 0; i < 100 && (await outcomes()).signed < 1; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal((await outcomes()).signed, 1, "the revoked certificate's answer was pre-signed");
  });
  after(async () => {
    await server?.stop();
    await env?.cleanup();
    tmp.remove();
  });

  test('60 distinct unknown serials at once: at most the budget is signed, the rest get tryLater', async () => {
    const before = await outcomes();
    const serials = Array.from({ length: 60 }, () => randomBytes(16));
    const started = Date.now();
    const replies = await Promise.all(serials.map((s) => post(ocspRequest(hashes, [s]))));
    const seconds = (Date.now() - started) / 1000;
    const allowed = BUDGET + Math.ceil(BUDGET * seconds);
    const signed = replies.map((r, i) => ({ r, serial: serials[i]! })).filter(({ r }) => !r.body.equals(TRY_LATER));
    for (const r of replies) assert.equal(r.status, 200);
    assert.ok(signed.length >= 1 && signed.length <= allowed, `${signed.length} signed in ${seconds} s (budget ${BUDGET}/s → at most ${allowed})`);
    assert.equal(replies.filter((r) => r.body.equals(TRY_LATER)).length, 60 - signed.length, 'every other answer is tryLater');
    const after = await outcomes();
    assert.equal(after.signed - before.signed, signed.length, 'the metric counts exactly the signatures made');
    assert.equal(after.tryLater - before.tryLater, 60 - signed.length);
    // Both kinds of answer are valid OCSP for openssl.
    assert.match(opensslText(signed[0]!.r.body), /Cert Status: unknown/);
    assert.match(opensslText(replies.find((r) => r.body.equals(TRY_LATER))!.body), /Responder Error: trylater \(3\)/);
    signedSerials = signed.map((x) => x.serial);
  });

  test('with the budget spent, issued certificates are still answered good / revoked, signed and verified', () => {
    // Neither certificate's GET-able answer was asked for before: these are signed now, budget or not.
    for (const [kind, status] of [
      ['good', /: good\n/],
      ['revoked', /: revoked\n[\s\S]*Reason: keyCompromise/],
    ] as const) {
      const r = openssl(['ocsp', '-issuer', intPem, '-cert', issued[kind].pem, '-no_nonce', '-url', `${server.url}/ocsp`, '-CAfile', bundlePem, '-resp_text']);
      const out = r.stdout + r.stderr;
      assert.equal(r.status, 0, out);
      assert.match(out, /Response verify OK/);
      assert.match(out, status);
    }
  });

  test('an unknown serial asked again is answered from the cache, without a signature', async () => {
    const before = await outcomes();
    for (const serial of signedSerials) {
      const r = await post(ocspRequest(hashes, [serial]));
      assert.ok(!r.body.equals(TRY_LATER), 'a cached unknown answer does not need the budget');
      assert.match(opensslText(r.body), /Cert Status: unknown/);
    }
    const after = await outcomes();
    assert.equal(after.signed, before.signed, 'no new signature');
    assert.equal(after.cached - before.cached, signedSerials.length);
  });

  test('requests with several CertIDs are signed on demand too, so they draw on the same budget', async () => {
    const before = await outcomes();
    const started = Date.now();
    const replies = await Promise.all(Array.from({ length: 30 }, () => post(ocspRequest(hashes, [Buffer.from(issued.good.serial, 'hex'), randomBytes(16)]))));
    const allowed = BUDGET + Math.ceil((BUDGET * (Date.now() - started)) / 1000);
    const signed = replies.filter((r) => !r.body.equals(TRY_LATER)).length;
    assert.ok(signed <= allowed, `${signed} multi-CertID responses signed (at most ${allowed})`);
    assert.ok(signed < 30, 'the flood was held back');
    assert.equal((await outcomes()).signed - before.signed, signed);
  });

  test('made-up issuers cost at most one index reload a second: sequential requests each wait for it', async () => {
    const stranger = () => ocspRequest({ nameHash: randomBytes(20), keyHash: randomBytes(20) }, [randomBytes(16)]);
    const UNAUTHORIZED = Buffer.from([0x30, 0x03, 0x0a, 0x01, 0x06]);
    await post(stranger()); // lines the next reload up one interval from now
    const started = Date.now();
    for (let i = 0; i < 3; i++) assert.ok((await post(stranger())).body.equals(UNAUTHORIZED));
    const seconds = (Date.now() - started) / 1000;
    assert.ok(seconds >= 2.5, `three misses answered in ${seconds} s: the issuer index was reloaded for each at once`);
  });

  test('a CA created by another process is still found on its first OCSP request', async () => {
    const cas = (await api(server, 'GET', '/api/v1/cas')).json.items as { id: string; parentId: string | null }[];
    const root = cas.find((c) => c.parentId === null)!;
    const made = signet(['ca', 'create-intermediate', '--parent', root.id, '--subject', 'CN=Flood Test CA 2,O=Signet', '--json'], env.env);
    assert.equal(made.status, 0, made.stderr);
    const id = JSON.parse(made.stdout).id as string;
    const h = issuerHashes(Buffer.from(await (await fetch(`${server.url}/pki/${id}.crt`)).arrayBuffer())).sha1;
    await new Promise((r) => setTimeout(r, 1100)); // the budget refills for the unknown answer below
    const r = await post(ocspRequest(h, [randomBytes(16)]));
    assert.match(opensslText(r.body), /Cert Status: unknown/, 'answered for the new CA, not unauthorized');
  });

  test('the budget refills: a second later unknown serials are signed again', async () => {
    await new Promise((r) => setTimeout(r, 1200));
    const r = await post(ocspRequest(hashes, [randomBytes(16)]));
    assert.ok(!r.body.equals(TRY_LATER));
    assert.match(opensslText(r.body), /Cert Status: unknown/);
  });
});

describe('BoundedLru and TokenBucket', () => {
  test('the LRU keeps the most recently used entries and reports evictions', () => {
    const evicted: string[] = [];
    const lru = new BoundedLru<string, number>(2, (k) => evicted.push(k));
    lru.set('a', 1);
    lru.set('b', 2);
    assert.equal(lru.get('a'), 1); // a is now the most recent
    lru.set('c', 3);
    assert.deepEqual(evicted, ['b']);
    assert.equal(lru.get('b'), undefined);
    assert.equal(lru.size, 2);
    assert.throws(() => new BoundedLru(0), RangeError);
  });

  test('the bucket gives its burst, then its rate, on the clock it is given', () => {
    let now = 0;
    const b = new TokenBucket(2, 3, () => now);
    assert.deepEqual([b.take(), b.take(), b.take(), b.take()], [true, true, true, false]);
    now += 499;
    assert.equal(b.take(), false, 'not a whole token yet');
    now += 1;
    assert.equal(b.take(), true, 'one token after 500 ms at 2/s');
    now += 60_000;
    assert.deepEqual([b.take(), b.take(), b.take(), b.take()], [true, true, true, false], 'never more than the burst saved');
  });
});
