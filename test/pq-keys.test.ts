/**
 * Post-quantum keys in the PKI core: SubjectPublicKeyInfo checks (RFC 9881 / RFC 9935: bare OID,
 * exact length), CSR proof of possession under the key's own OID, the signer's algorithm
 * identifier, private keys checked against their certificate, and the key-usage table; then an
 * offline ML-DSA-87 root whose encrypted key file signs an intermediate from the CLI.
 * Signatures are checked with @noble/post-quantum, not with Signet's own verifier.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ml_dsa44, ml_dsa65, ml_dsa87 } from '@noble/post-quantum/ml-dsa.js';
import { AsnConvert } from '@peculiar/asn1-schema';
import { AlgorithmIdentifier, SubjectPublicKeyInfo } from '@peculiar/asn1-x509';
import { SignetError } from '../src/errors.js';
import { encodeTbs } from '../src/pki/certificate.js';
import { bitString, objectIdentifier, sequence } from '../src/pki/der.js';
import { encodeName } from '../src/pki/dn.js';
import { authorityKeyIdentifier, basicConstraints, keyIdentifier, keyUsage, subjectKeyIdentifier } from '../src/pki/extensions.js';
import { parseCsr } from '../src/pki/csr.js';
import { flagsBeyondKey, usagesBeyondKey } from '../src/pki/key-usage.js';
import { ownKey, signerFor, verifySignature } from '../src/pki/keys.js';
import { importSpki } from '../src/pki/public-key.js';
import { checkPrivateKey } from '../src/pki/private-key.js';
import { signet } from './helpers/cli.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';
import { TempDir } from './helpers/openssl.js';
import { pqCsr } from './helpers/pq-csr.js';

const OIDS = { 'ml-dsa-44': '2.16.840.1.101.3.4.3.17', 'ml-dsa-65': '2.16.840.1.101.3.4.3.18', 'ml-dsa-87': '2.16.840.1.101.3.4.3.19' } as const;
const NOBLE = { 'ml-dsa-44': ml_dsa44, 'ml-dsa-65': ml_dsa65, 'ml-dsa-87': ml_dsa87 } as const;
type Level = keyof typeof OIDS;

const pair = (type: string) => generateKeyPairSync(type as 'ed25519');
const spkiOf = (k: KeyObject) => k.export({ format: 'der', type: 'spki' });
/** An SPKI with the given algorithm OID, optional parameters and raw key bytes. */
const spki = (oid: string, key: Uint8Array, parameters?: ArrayBuffer) =>
  Buffer.from(
    AsnConvert.serialize(
      new SubjectPublicKeyInfo({ algorithm: new AlgorithmIdentifier({ algorithm: oid, parameters }), subjectPublicKey: new Uint8Array(key).buffer }),
    ),
  );
const rawKey = (der: Buffer) => der.subarray(der.length - (der.length > 2000 ? 2592 : der.length > 1500 ? 1952 : 1312));
const NULL = new Uint8Array([5, 0]).buffer;

const refused = (fn: () => unknown, detail: RegExp) =>
  assert.throws(fn, (e: unknown) => e instanceof SignetError && detail.test(e.detail), `expected a refusal matching ${detail}`);

describe('post-quantum public keys and CSRs', () => {
  const keys = Object.fromEntries((Object.keys(OIDS) as Level[]).map((l) => [l, pair(l)])) as Record<Level, ReturnType<typeof pair>>;

  test('each ML-DSA level imports as itself; the strength is its NIST category', () => {
    for (const [level, bits] of [
      ['ml-dsa-44', 128],
      ['ml-dsa-65', 192],
      ['ml-dsa-87', 256],
    ] as const) {
      const info = importSpki(spkiOf(keys[level].publicKey));
      assert.equal(info.algorithm, level);
      assert.equal(info.family, 'ml-dsa');
      assert.equal(info.bits, bits);
    }
    assert.equal(importSpki(spkiOf(pair('ml-kem-768').publicKey)).family, 'ml-kem');
    assert.equal(importSpki(spkiOf(pair('slh-dsa-sha2-128s').publicKey)).algorithm, 'slh-dsa-sha2-128s');
  });

  test('refused SPKIs: parameters present, truncated, another level under this OID, ML-KEM-512', () => {
    const k65 = rawKey(spkiOf(keys['ml-dsa-65'].publicKey));
    refused(() => importSpki(spki(OIDS['ml-dsa-65'], k65, NULL)), /^ML-DSA-65 key has algorithm parameters; they must be absent \(RFC 9881\)$/);
    refused(
      () => importSpki(spki(OIDS['ml-dsa-65'], k65.subarray(0, 1000))),
      /^public key could not be decoded: an ML-DSA-65 public key is 1952 bytes, found 1000$/,
    );
    refused(() => importSpki(spki(OIDS['ml-dsa-44'], k65)), /^the key is 1952 bytes, an ML-DSA-65 key, but its OID says ML-DSA-44 \(1312 bytes\)$/);
    refused(() => importSpki(spki('2.16.840.1.101.3.4.4.1', new Uint8Array(800))), /^ML-KEM-512 keys are not supported; use ML-KEM-768$/);
  });

  test('a CSR proves possession under its own level only; a wrong signature, parameters, or an ML-KEM key are refused', () => {
    const k = keys['ml-dsa-65'];
    const names = ['pq.example.test'];
    assert.equal(parseCsr(pqCsr(names, { pair: k }).der).keyAlgorithm, 'ml-dsa-65');
    refused(() => parseCsr(pqCsr(names, { pair: k, flipSignature: true }).der), /signature/i);
    refused(
      () => parseCsr(pqCsr(names, { pair: k, signatureOid: OIDS['ml-dsa-44'] }).der),
      /^signature algorithm ML-DSA-44 does not match the ml-dsa-65 public key$/,
    );
    refused(
      () => parseCsr(pqCsr(names, { pair: k, signatureParamsNull: true }).der),
      /^signature algorithm ML-DSA-65 has unexpected parameters; they must be absent$/,
    );
    const kem = AsnConvert.parse(spkiOf(pair('ml-kem-768').publicKey), SubjectPublicKeyInfo);
    refused(
      () => parseCsr(pqCsr(names, { pair: k, spki: (s) => Object.assign(s, { algorithm: kem.algorithm, subjectPublicKey: kem.subjectPublicKey }) }).der),
      /^an ML-KEM key cannot sign, so no CSR can prove its possession/,
    );
  });

  test("Signet's signer names the level with absent parameters, and noble verifies what it signs", async () => {
    for (const level of Object.keys(OIDS) as Level[]) {
      const s = signerFor(ownKey(keys[level].privateKey));
      assert.equal(s.algorithm.algorithm, OIDS[level]);
      assert.equal(s.algorithm.parameters, undefined);
      const msg = Buffer.from(`to be signed by ${level}`);
      const sig = await s.sign(msg);
      assert.ok(NOBLE[level].verify(sig, msg, rawKey(spkiOf(keys[level].publicKey))), level);
      assert.equal(NOBLE[level].verify(sig, Buffer.from('another message'), rawKey(spkiOf(keys[level].publicKey))), false);
    }
    refused(() => signerFor(ownKey(pair('ml-kem-768').privateKey)), /^a ml-kem-768 key cannot sign; it is a key-encapsulation key$/);
  });

  test('a signature verifies only under the label of its own key: an ML-DSA signature labelled Ed25519, or another level, is no signature', () => {
    const k = keys['ml-dsa-65'];
    const msg = Buffer.from('relabelled');
    const sig = sign(null, msg, k.privateKey);
    const pub = ownKey(k.publicKey);
    assert.equal(verifySignature(OIDS['ml-dsa-65'], pub, msg, sig), true);
    assert.equal(verifySignature('1.3.101.112', pub, msg, sig), false);
    assert.equal(verifySignature(OIDS['ml-dsa-44'], pub, msg, sig), false);
    assert.equal(verifySignature('1.2.840.10045.4.3.2', pub, msg, sig), false);
  });

  test('an SLH-DSA signature (~0.5 s of CPU) is made off the event loop: timers keep firing meanwhile', async () => {
    const s = signerFor(ownKey(pair('slh-dsa-sha2-128s').privateKey));
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const t0 = performance.now();
    const sig = await s.sign(Buffer.from('a CRL'));
    const ms = performance.now() - t0;
    clearInterval(timer);
    assert.equal(sig.length, 7856);
    // On the calling thread there would be no tick at all until the signature is done.
    assert.ok(ticks >= Math.min(10, ms / 20), `${ticks} timer ticks during a ${Math.round(ms)} ms signature`);
  });

  test('a private key is checked against its certificate key: another key or another level is refused', () => {
    const k = keys['ml-dsa-65'];
    const cert = { info: importSpki(spkiOf(k.publicKey)), spkiDer: spkiOf(k.publicKey) };
    // The PKCS#8 seed form node writes, read back as an imported key would be.
    const reread = createPrivateKey({ key: k.privateKey.export({ format: 'der', type: 'pkcs8' }), format: 'der', type: 'pkcs8' });
    assert.equal(checkPrivateKey(reread, cert), reread);
    refused(
      () => checkPrivateKey(pair('ml-dsa-65').privateKey, cert),
      /^the private key does not match the certificate \(its public key is not the certificate's\)$/,
    );
    refused(
      () => checkPrivateKey(keys['ml-dsa-87'].privateKey, cert),
      /^the private key does not match the certificate: it is an ml-dsa-87 key, the certificate's is ml-dsa-65$/,
    );
  });

  test('key usage per family: ML-DSA signs (and certifies), ML-KEM only enciphers keys', () => {
    assert.deepEqual(usagesBeyondKey('ml-dsa', ['digitalSignature', 'keyCertSign', 'cRLSign', 'nonRepudiation']), []);
    assert.deepEqual(usagesBeyondKey('ml-dsa', ['digitalSignature', 'keyEncipherment', 'keyAgreement', 'dataEncipherment']), [
      'keyEncipherment',
      'keyAgreement',
      'dataEncipherment',
    ]);
    assert.deepEqual(usagesBeyondKey('ml-kem', ['keyEncipherment']), []);
    assert.deepEqual(usagesBeyondKey('ml-kem', ['digitalSignature', 'keyEncipherment']), ['digitalSignature']);
    // @peculiar/asn1-x509's KeyUsageFlags: digitalSignature 1, keyEncipherment 4, keyCertSign 32.
    assert.deepEqual(flagsBeyondKey('slh-dsa', 1 | 4 | 32), ['keyEncipherment']);
  });
});

describe('an offline ML-DSA-87 root signs an ML-DSA-65 intermediate from its encrypted key file', () => {
  let env: TestEnv;
  const tmp = new TempDir();
  before(async () => {
    env = await createTestEnv();
  });
  after(async () => {
    await env.cleanup();
    tmp.remove();
  });

  test('SLH-DSA is for roots: an SLH-DSA-SHA2-128s root with an ML-DSA-65 intermediate is made; an SLH-DSA intermediate is refused', async () => {
    const own = await createTestEnv();
    try {
      const refusedInit = signet(['init', '--json', '--root-key', 'ml-dsa-87', '--intermediate-key', 'slh-dsa-sha2-128s'], own.env);
      assert.notEqual(refusedInit.status, 0);
      assert.match(
        refusedInit.stderr,
        /an slh-dsa-sha2-128s key is for roots only \(each signature takes about half a second of CPU\); give an issuing CA ml-dsa-44, ml-dsa-65 or ml-dsa-87/,
      );
      const made = signet(['init', '--json', '--root-key', 'slh-dsa-sha2-128s', '--intermediate-key', 'ml-dsa-65'], own.env);
      assert.equal(made.status, 0, made.stderr);
    } finally {
      await own.cleanup();
    }
  });

  test('init --offline-root with ml-dsa-87; create-intermediate --key ml-dsa-65 --parent-key; a classical child or another key file is refused', () => {
    const keyFile = join(tmp.path, 'root.key');
    const pass = tmp.file('pass', 'correct horse battery staple\n');
    const init = signet(
      ['init', '--json', '--root-key', 'ml-dsa-87', '--intermediate-key', 'ml-dsa-65', '--offline-root', keyFile, '--offline-root-passphrase-file', pass],
      env.env,
    );
    assert.equal(init.status, 0, init.stderr);
    const rootId = JSON.parse(init.stdout).rootId as string;
    assert.match(readFileSync(keyFile, 'utf8'), /^-----BEGIN ENCRYPTED PRIVATE KEY-----/);
    const child = (key: string, file = keyFile) =>
      signet(
        [
          'ca',
          'create-intermediate',
          '--parent',
          rootId,
          '--subject',
          `CN=PQ ${key},O=Signet`,
          '--key',
          key,
          '--parent-key',
          file,
          '--parent-key-passphrase-file',
          pass,
          '--json',
        ],
        env.env,
      );
    const made = child('ml-dsa-65');
    assert.equal(made.status, 0, made.stderr);
    assert.equal(JSON.parse(made.stdout).keyAlgorithm, 'ml-dsa-65');
    const classical = child('ecdsa-p256');
    assert.notEqual(classical.status, 0);
    assert.match(classical.stderr, /a classical CA key \(ecdsa-p256\) is not allowed under a post-quantum parent \(ml-dsa-87\)/);
  });
});

/**
 * A CA certificate made outside Signet (as another tool would), signed by `issuer` (itself when
 * absent) under the label `sigOid`; `outerOid` relabels only the outer signatureAlgorithm.
 */
function outsideCa(
  cn: string,
  subject: KeyObject,
  sigOid: string,
  opts: { issuer?: { cn: string; key: KeyObject; spki: Buffer }; outerOid?: string; usages?: Parameters<typeof keyUsage>[0]; hash?: string } = {},
): Buffer {
  const spkiDer = spkiOf(createPublicKey(subject));
  const issuer = opts.issuer ?? { cn, key: subject, spki: spkiDer };
  const tbs = encodeTbs({
    serial: Buffer.from('7a0123456789abcdef0123456789abcd', 'hex'),
    signatureAlgorithmDer: sequence(objectIdentifier(sigOid)),
    issuerNameDer: encodeName([{ type: '2.5.4.3', value: issuer.cn }]),
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 365 * 86_400_000),
    subjectNameDer: encodeName([{ type: '2.5.4.3', value: cn }]),
    spkiDer,
    extensions: [
      basicConstraints(true),
      keyUsage(opts.usages ?? ['keyCertSign', 'cRLSign']),
      subjectKeyIdentifier(keyIdentifier(spkiDer)),
      authorityKeyIdentifier(keyIdentifier(issuer.spki)),
    ],
  });
  const signature = opts.hash ? sign(opts.hash, tbs, { key: issuer.key, dsaEncoding: 'der' }) : sign(null, tbs, issuer.key);
  return sequence(tbs, sequence(objectIdentifier(opts.outerOid ?? sigOid)), bitString(signature));
}

describe('ca import of CAs made elsewhere meets the same rules as the CAs Signet makes', () => {
  let env: TestEnv;
  const tmp = new TempDir();
  before(async () => {
    env = await createTestEnv();
    assert.equal(signet(['init', '--json'], env.env).status, 0);
  });
  after(async () => {
    await env.cleanup();
    tmp.remove();
  });

  test('an ML-DSA-87 root imports; a classical CA under it, a relabelled root and an ML-DSA root asking keyEncipherment are refused, nothing stored', () => {
    const pemOf = (der: Buffer, label = 'CERTIFICATE') =>
      `-----BEGIN ${label}-----\n${der.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END ${label}-----\n`;
    const keyPem = (k: KeyObject) => k.export({ format: 'pem', type: 'pkcs8' }) as string;
    const importCa = (name: string, der: Buffer, key: KeyObject) =>
      signet(['ca', 'import', '--cert', tmp.file(`${name}.pem`, pemOf(der)), '--key', tmp.file(`${name}.key`, keyPem(key))], env.env);
    const count = () => JSON.parse(signet(['ca', 'list', '--json'], env.env).stdout).length as number;

    const root = pair('ml-dsa-87');
    const ok = importCa('pq-root', outsideCa('Outside ML-DSA Root', root.privateKey, OIDS['ml-dsa-87']), root.privateKey);
    assert.equal(ok.status, 0, ok.stderr);
    const before = count();

    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const underPq = importCa(
      'ec-under-pq',
      outsideCa('Outside EC under ML-DSA', ec.privateKey, OIDS['ml-dsa-87'], {
        issuer: { cn: 'Outside ML-DSA Root', key: root.privateKey, spki: spkiOf(root.publicKey) },
      }),
      ec.privateKey,
    );
    assert.notEqual(underPq.status, 0);
    assert.match(
      underPq.stderr,
      /policy refuses the imported CA key: a classical CA key \(ecdsa-p256\) is not allowed under a post-quantum parent \(ml-dsa-87\)/,
    );

    const k65 = pair('ml-dsa-65');
    const relabelled = importCa('relabelled', outsideCa('Outside Relabelled', k65.privateKey, OIDS['ml-dsa-65'], { outerOid: '1.3.101.112' }), k65.privateKey);
    assert.notEqual(relabelled.status, 0);
    assert.match(relabelled.stderr, /signatureAlgorithm differs from the signature named in its TBS \(RFC 5280 §4\.1\.1\.2\)/);
    const labelledEd = importCa('labelled-ed25519', outsideCa('Outside Ed25519 Label', k65.privateKey, '1.3.101.112'), k65.privateKey);
    assert.notEqual(labelledEd.status, 0);
    assert.match(labelledEd.stderr, /a root whose self-signature is broken is refused/);

    const enciphering = importCa(
      'enciphering',
      outsideCa('Outside Enciphering', k65.privateKey, OIDS['ml-dsa-65'], { usages: ['keyCertSign', 'cRLSign', 'keyEncipherment'] }),
      k65.privateKey,
    );
    assert.notEqual(enciphering.status, 0);
    assert.match(enciphering.stderr, /keyUsage asks for keyEncipherment, which ml-dsa-65 keys cannot do/);
    assert.equal(count(), before);
  });
});
