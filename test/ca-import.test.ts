/**
 * Importing a CA (`POST /api/v1/cas {certificate, privateKey, passphrase?}`) over a real
 * `signet serve` (SQLite, or PostgreSQL under SIGNET_TEST_POSTGRES), with CAs made by the real
 * openssl CLI:
 *  - a certificate that names itself as its issuer is a root whatever its signature says:
 *    one whose self-signature is broken is refused at import, and a stored one never signs a
 *    leaf (trust stores do not check a trust anchor's self-signature, so its leaves would verify);
 *  - a CA made less than a minute ago issues at once (the leaf's backdating stops at the
 *    issuer's notBefore instead of failing the lint with a 500).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { api, startServer, type RunningServer } from './helpers/cli.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';
import { openssl, TempDir, csrMaker } from './helpers/openssl.js';
import { countRows, sql } from './helpers/sql.js';
import { buildCaTbs } from '../src/pki/ca-template.js';
import { algorithmDer, newSerial, signTbs } from '../src/pki/certificate.js';
import { dnToDer } from '../src/pki/dn.js';
import { generateKey, signerFor } from '../src/pki/keys.js';
import { pbkdf2Key, scryptKeyClaiming } from './helpers/encrypted-key.js';

const tmp = new TempDir();
after(() => tmp.remove());
const PROBLEM = 'application/problem+json; charset=utf-8';
let n = 0;

function ossl(args: string[]): string {
  const r = openssl(args);
  assert.equal(r.status, 0, `openssl ${args.join(' ')}:\n${r.stderr}`);
  return r.stdout;
}

/** A self-signed P-256 CA (issuer = subject, CA:TRUE, keyCertSign, SKI) and its PKCS#8 key. */
function selfSignedCa(cn: string): { cert: string; key: string; certFile: string; keyFile: string } {
  const keyFile = tmp.file(`ca-${++n}.key`);
  const certFile = tmp.file(`ca-${n}.pem`);
  ossl([
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
    '-subj',
    `/CN=${cn}`,
    '-days',
    '30',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
    '-addext',
    'subjectKeyIdentifier=hash',
  ]);
  return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8'), certFile, keyFile };
}

/** An intermediate signed by `parent` just now (notBefore = now, as openssl sets it). */
function intermediateUnder(parent: { certFile: string; keyFile: string }, cn: string): { cert: string; key: string; certFile: string } {
  const keyFile = tmp.file(`int-${++n}.key`);
  const csr = tmp.file(`int-${n}.csr`);
  const certFile = tmp.file(`int-${n}.pem`);
  ossl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-out', csr, '-subj', `/CN=${cn}`]);
  const ext = tmp.file(
    `int-${n}.ext`,
    'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign,digitalSignature\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n',
  );
  ossl(['x509', '-req', '-in', csr, '-CA', parent.certFile, '-CAkey', parent.keyFile, '-CAcreateserial', '-days', '20', '-extfile', ext, '-out', certFile]);
  return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8'), certFile };
}

/** A self-signed root made a day ago (so the leaf's backdating is not what refuses it), and its PKCS#8 key. */
async function dayOldRoot(cn: string): Promise<{ cert: string; key: string }> {
  const { privateKey, publicKey } = generateKey('ecdsa-p256');
  const signer = signerFor(privateKey);
  const { tbs } = buildCaTbs({
    serial: newSerial(),
    subjectNameDer: dnToDer(`CN=${cn}`),
    spkiDer: publicKey.export({ format: 'der', type: 'spki' }),
    notBefore: new Date(Date.now() - 86_400_000),
    validityDays: 30,
    signatureAlgorithmDer: algorithmDer(signer),
  });
  const der = await signTbs(tbs, signer, algorithmDer(signer));
  return { cert: pemOf(der), key: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString() };
}

const derOf = (pem: string) => Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
const pemOf = (der: Buffer) =>
  `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END CERTIFICATE-----\n`;
/** The same certificate with the last byte of its signature flipped (an ECDSA signature stays valid DER). */
const brokenSignature = (pem: string): Buffer => {
  const d = Buffer.from(derOf(pem));
  d[d.length - 1]! ^= 0x01;
  return d;
};

describe('importing a CA', { concurrency: false }, () => {
  let env: TestEnv;
  let server: RunningServer;
  let issueOnly: { url: string; token: string };
  const csrFor = csrMaker(tmp);

  before(async () => {
    env = await createTestEnv();
    server = await startServer(env.env);
    const t = await api(server, 'POST', '/api/v1/tokens', { name: 'issue only', scopes: ['issue'] });
    assert.equal(t.status, 201, t.text);
    issueOnly = { url: server.url, token: t.json.token };
  });
  after(async () => {
    await server?.stop();
    await env?.cleanup();
  });

  test('a self-issued CA certificate whose self-signature is broken is refused (400), storing nothing', async () => {
    const ca = selfSignedCa('Broken Root');
    const broken = brokenSignature(ca.cert);
    assert.equal(new X509Certificate(broken).verify(new X509Certificate(broken).publicKey), false, 'the fixture really has a broken signature');
    const before = await countRows(env, 'CertificateAuthority');
    const r = await api(server, 'POST', '/api/v1/cas', { certificate: pemOf(broken), privateKey: ca.key });
    assert.equal(r.status, 400, r.text);
    assert.equal(r.headers.get('content-type'), PROBLEM);
    assert.equal(
      r.json.detail,
      'the certificate names itself as its issuer (CN=Broken Root), but its signature does not verify with its own key nor with any known CA of that name; a root whose self-signature is broken is refused',
    );
    assert.equal(await countRows(env, 'CertificateAuthority'), before, 'nothing stored');
    // The intact certificate imports as a root, and a root never signs a leaf.
    const ok = await api(server, 'POST', '/api/v1/cas', { certificate: ca.cert, privateKey: ca.key });
    assert.equal(ok.status, 201, ok.text);
    assert.match(ok.json.id, /^root-[0-9a-f]{10}$/);
    assert.equal(ok.json.parentId, null);
    const leaf = await api(issueOnly, 'POST', '/api/v1/certificates', { csr: csrFor('DNS:www.bank.example'), profile: 'server', caId: ok.json.id });
    assert.equal(leaf.status, 400, leaf.text);
    assert.match(leaf.json.detail, new RegExp(`^CA ${ok.json.id} is a root CA: a root signs only intermediate CAs, never end-entity certificates; `));
  });

  test('a stored root whose self-signature is broken (imported before the fix) is still a root: it never signs a leaf', async () => {
    const ca = await dayOldRoot('Legacy Broken Root');
    const ok = await api(server, 'POST', '/api/v1/cas', { certificate: ca.cert, privateKey: ca.key });
    assert.equal(ok.status, 201, ok.text);
    // What an import before the fix stored: the certificate with its broken signature, no parent.
    await sql(env, 'UPDATE "CertificateAuthority" SET "certificateDer" = ? WHERE id = ?', [brokenSignature(ca.cert), ok.json.id]);
    const certsBefore = await countRows(env, 'Certificate');
    const leaf = await api(issueOnly, 'POST', '/api/v1/certificates', { csr: csrFor('DNS:www.bank.example'), profile: 'server', caId: ok.json.id });
    assert.equal(leaf.status, 400, leaf.text);
    assert.match(leaf.json.detail, new RegExp(`^CA ${ok.json.id} is a root CA: a root signs only intermediate CAs, never end-entity certificates; `));
    assert.equal(await countRows(env, 'Certificate'), certsBefore, 'nothing signed');
  });

  test('an intermediate made seconds ago (external: its root unknown) issues at once; the leaf starts no earlier than its issuer', async () => {
    const root = selfSignedCa('Outside Root');
    const int = intermediateUnder(root, 'Fresh Issuing CA');
    const r = await api(server, 'POST', '/api/v1/cas', { certificate: int.cert, privateKey: int.key });
    assert.equal(r.status, 201, r.text);
    assert.match(r.json.id, /^ext-[0-9a-f]{10}$/);
    assert.equal(r.json.parentId, null);
    const issuerNotBefore = new Date(new X509Certificate(int.cert).validFrom).getTime();
    assert.ok(Date.now() - issuerNotBefore < 55_000, 'the intermediate is less than a minute old');
    const leaf = await api(issueOnly, 'POST', '/api/v1/certificates', { csr: csrFor('DNS:fresh.example'), profile: 'server', caId: r.json.id });
    assert.equal(leaf.status, 201, leaf.text);
    assert.equal(leaf.json.caId, r.json.id);
    assert.equal(new Date(leaf.json.notBefore).getTime(), issuerNotBefore, "backdating stops at the issuer's notBefore");
    const v = openssl(['verify', '-x509_strict', '-CAfile', root.certFile, '-untrusted', int.certFile, tmp.file('fresh-leaf.pem', leaf.json.certificate)]);
    assert.equal(v.status, 0, v.stdout + v.stderr);
    // With its root imported too, the next intermediate is matched to it (int-…).
    const rootRow = await api(server, 'POST', '/api/v1/cas', { certificate: root.cert, privateKey: root.key });
    assert.equal(rootRow.status, 201, rootRow.text);
    const second = intermediateUnder(root, 'Second Fresh Issuing CA');
    const s = await api(server, 'POST', '/api/v1/cas', { certificate: second.cert, privateKey: second.key });
    assert.equal(s.status, 201, s.text);
    assert.match(s.json.id, /^int-/);
    assert.equal(s.json.parentId, rootRow.json.id);
  });

  /** The slowest /healthz answer while `work` runs (polled every 20 ms). */
  async function worstHealthz<T>(work: Promise<T>): Promise<{ result: T; worst: number }> {
    let done = false;
    let worst = 0;
    const poll = (async () => {
      while (!done) {
        const t = performance.now();
        assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
        worst = Math.max(worst, performance.now() - t);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const result = await work.finally(() => {
      done = true;
    });
    await poll;
    return { result, worst };
  }

  test('an encrypted key whose key derivation costs too much is refused at once (400 naming the limit); the service keeps answering', async () => {
    const ca = selfSignedCa('Costly Key CA');
    const key = createPrivateKey(ca.key);
    const before = await countRows(env, 'CertificateAuthority');
    const cases: [string, string, RegExp][] = [
      [
        'PBKDF2 patched to 42 million iterations',
        pbkdf2Key(key, 'x', 42_000_000, 1000),
        /^the private key's encryption derives its key with PBKDF2 at 42,000,000 iterations; Signet accepts at most 2,000,000 \(about a second of CPU\)/,
      ],
      [
        'scrypt N = 2^22',
        scryptKeyClaiming(2 ** 22, 8, 1),
        /^the private key's encryption derives its key with scrypt N = 4,194,304, r = 8, p = 1 .*; Signet accepts N·r·p up to 1,048,576/,
      ],
    ];
    for (const [what, pem, detail] of cases) {
      const t = performance.now();
      const { result: r, worst } = await worstHealthz(api(server, 'POST', '/api/v1/cas', { certificate: ca.cert, privateKey: pem, passphrase: 'x' }));
      assert.equal(r.status, 400, `${what}: ${r.text}`);
      assert.equal(r.headers.get('content-type'), PROBLEM);
      assert.match(r.json.detail, detail, what);
      assert.ok(performance.now() - t < 3000, `${what}: answered in ${(performance.now() - t).toFixed(0)} ms`);
      assert.ok(worst < 1000, `${what}: /healthz answered within ${worst.toFixed(0)} ms meanwhile`);
    }
    assert.equal(await countRows(env, 'CertificateAuthority'), before, 'nothing stored');
    // A real encryption within the caps imports, decrypted off the event loop.
    const { result: ok, worst } = await worstHealthz(
      api(server, 'POST', '/api/v1/cas', {
        certificate: ca.cert,
        privateKey: pbkdf2Key(key, 'a long enough passphrase', 1_000_000),
        passphrase: 'a long enough passphrase',
      }),
    );
    assert.equal(ok.status, 201, ok.text);
    assert.match(ok.json.id, /^root-/);
    assert.ok(worst < 300, `/healthz answered within ${worst.toFixed(0)} ms while a 1,000,000-iteration key was decrypted`);
  });
});
