/**
 * The CMS pieces SCEP stands on (src/pki/cms-signed.ts, cms-enveloped.ts, scep-message.ts,
 * des.ts), each checked against openssl: what openssl encrypts and signs Signet reads, what
 * Signet encrypts and signs openssl reads; tampered and hostile inputs are refused with a
 * CmsError, quickly, never with another exception. And KeyStore.decrypt in the sealed store.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants, createPrivateKey, generateKeyPairSync, privateDecrypt, randomBytes, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import pino from 'pino';
import { openssl, TempDir } from './helpers/openssl.js';
import { createTestEnv } from './helpers/env.js';
import { softHsm } from './helpers/softhsm.js';
import { desCbcDecrypt, desCbcEncrypt } from '../src/pki/des.js';
import { CmsError, buildSignedData, parseSignedData, verifySigner } from '../src/pki/cms-signed.js';
import { decryptEnveloped, encryptEnveloped, MAX_DES_BYTES, parseEnvelopedData, type RsaPadding } from '../src/pki/cms-enveloped.js';
import { buildCertRep, certificateIds, challengePasswordOf, parsePkiMessage, SCEP_OID } from '../src/pki/scep-message.js';
import { signerFor, ownKey } from '../src/pki/keys.js';
import { inspectCertificate } from '../src/pki/certificate.js';
import { certsOnlyCms } from '../src/pki/cms-certs-only.js';
import { loadConfig } from '../src/config/config.js';
import { bootstrapIfEmpty, openSignet } from '../src/runtime/open.js';
import { createServices } from '../src/runtime/services.js';
import { ScepRa } from '../src/scep/ra.js';
import { SettingStore } from '../src/storage/setting-store.js';
import { storageOf } from '../src/storage/database.js';
import { sql } from './helpers/sql.js';

const tmp = new TempDir();
process.on('exit', () => tmp.remove());

/** An RSA key and self-signed certificate made by openssl. */
function rsaIdentity(name: string): { key: string; cert: string; der: Buffer } {
  const key = tmp.file(`${name}.key`);
  const cert = tmp.file(`${name}.pem`);
  const r = openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-subj', `/CN=${name}`, '-days', '2']);
  assert.equal(r.status, 0, r.stderr);
  return { key, cert, der: Buffer.from(new X509Certificate(readFileSync(cert)).raw) };
}

const nodeUnwrap = (keyFile: string) => async (encryptedKey: Buffer, padding: RsaPadding) =>
  privateDecrypt(
    padding.scheme === 'pkcs1'
      ? { key: createPrivateKey(readFileSync(keyFile)), padding: constants.RSA_PKCS1_PADDING }
      : { key: createPrivateKey(readFileSync(keyFile)), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: padding.hash },
    encryptedKey,
  );

test('DES-CBC: what openssl (legacy provider) encrypts decrypts, and the reverse', () => {
  const key = randomBytes(8);
  const iv = randomBytes(8);
  for (const len of [0, 1, 7, 8, 9, 100]) {
    const plain = randomBytes(len);
    const input = tmp.file(`des-${len}.bin`, plain);
    const r = openssl([
      'enc',
      '-des-cbc',
      '-K',
      key.toString('hex'),
      '-iv',
      iv.toString('hex'),
      '-in',
      input,
      '-out',
      tmp.file(`des-${len}.enc`),
      '-provider',
      'legacy',
      '-provider',
      'default',
    ]);
    assert.equal(r.status, 0, r.stderr);
    const ct = readFileSync(tmp.file(`des-${len}.enc`));
    assert.deepEqual(desCbcDecrypt(key, iv, ct), plain);
    assert.deepEqual(desCbcEncrypt(key, iv, plain), ct);
  }
  assert.throws(() => desCbcDecrypt(key, iv, Buffer.alloc(12)), /whole number of blocks/);
});

test('EnvelopedData from openssl cms -encrypt (AES-128/256-CBC, DES-EDE3, RSA-OAEP) decrypts; tampering is refused', async () => {
  const ra = rsaIdentity('ra');
  const other = rsaIdentity('other');
  const plain = randomBytes(700);
  const input = tmp.file('plain.bin', plain);
  const cases: [string, string[]][] = [
    ['aes-256-cbc', ['-aes-256-cbc']],
    ['aes-128-cbc', ['-aes-128-cbc']],
    ['des-ede3-cbc', ['-des3']],
    ['oaep', ['-aes-256-cbc', '-keyopt', 'rsa_padding_mode:oaep']],
  ];
  for (const [label, args] of cases) {
    const out = tmp.file(`env-${label}.der`);
    const r = openssl(['cms', '-encrypt', '-binary', '-in', input, '-outform', 'DER', '-out', out, '-recip', ra.cert, ...args]);
    assert.equal(r.status, 0, r.stderr);
    const env = parseEnvelopedData(readFileSync(out));
    const ids = certificateIds(ra.der);
    const ours = (x: { issuerNameDer?: Buffer; serial?: Buffer }) => Boolean(x.issuerNameDer?.equals(ids.issuer) && x.serial?.equals(ids.serial));
    assert.deepEqual(await decryptEnveloped(env, ours, nodeUnwrap(ra.key)), plain, label);
    if (label === 'oaep') assert.deepEqual(env.recipients[0]!.padding, { scheme: 'oaep', hash: 'sha1' });
    // Not for us: refused as malformed (no recipient), not attempted with our key.
    const otherIds = certificateIds(other.der);
    await assert.rejects(
      decryptEnveloped(env, (x) => Boolean(x.serial?.equals(otherIds.serial)), nodeUnwrap(ra.key)),
      (e: unknown) => e instanceof CmsError && /not encrypted to this server/.test(e.message),
    );
    // A flipped byte in the ciphertext or in the wrapped key: a CmsError, never another exception.
    const bytes = readFileSync(out);
    for (const at of [bytes.length - 5, bytes.indexOf(env.recipients[0]!.encryptedKey) + 10]) {
      const bad = Buffer.from(bytes);
      bad[at]! ^= 0x55;
      const e = await decryptEnveloped(parseEnvelopedData(bad), ours, nodeUnwrap(ra.key)).then(
        (v) => v,
        (err: unknown) => err,
      );
      // CBC may decrypt a tampered last block to valid padding by chance (1 in 256): then it is not the plaintext.
      if (Buffer.isBuffer(e)) assert.notDeepEqual(e, plain);
      else assert.ok(e instanceof CmsError, String(e));
    }
  }
});

test('EnvelopedData encrypted by Signet decrypts with openssl cms -decrypt', () => {
  const client = rsaIdentity('client');
  const parts = inspectCertificate(client.der);
  const plain = certsOnlyCms([client.der]);
  for (const cipher of ['aes-256-cbc', 'aes-128-cbc', 'des-ede3-cbc'] as const) {
    const env = encryptEnveloped(plain, { issuerNameDer: parts.issuerNameDer, serial: parts.serial, publicKey: parts.publicKey }, cipher);
    const file = tmp.file(`ours-${cipher}.der`, env);
    const r = openssl([
      'cms',
      '-decrypt',
      '-inform',
      'DER',
      '-in',
      file,
      '-recip',
      client.cert,
      '-inkey',
      client.key,
      '-binary',
      '-out',
      tmp.file(`ours-${cipher}.out`),
    ]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(readFileSync(tmp.file(`ours-${cipher}.out`)), plain);
  }
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  assert.throws(
    () => encryptEnveloped(plain, { issuerNameDer: parts.issuerNameDer, serial: parts.serial, publicKey: ec.publicKey }),
    (e: unknown) => e instanceof CmsError && e.reason === 'unsupported',
  );
});

test('SignedData: openssl cms -sign verifies here, Signet-signed verifies in openssl; a changed byte is refused', async () => {
  const signer = rsaIdentity('signer');
  const content = randomBytes(300);
  const input = tmp.file('content.bin', content);
  for (const md of ['sha1', 'sha256', 'sha512']) {
    const out = tmp.file(`signed-${md}.der`);
    const r = openssl([
      'cms',
      '-sign',
      '-binary',
      '-nodetach',
      '-md',
      md,
      '-in',
      input,
      '-signer',
      signer.cert,
      '-inkey',
      signer.key,
      '-outform',
      'DER',
      '-out',
      out,
    ]);
    assert.equal(r.status, 0, r.stderr);
    const sd = parseSignedData(readFileSync(out));
    assert.deepEqual(sd.content, content);
    const key = new X509Certificate(readFileSync(signer.cert)).publicKey;
    verifySigner(sd, sd.signers[0]!, key);
    // A changed content byte: the messageDigest no longer matches.
    const bytes = readFileSync(out);
    const at = bytes.indexOf(content) + 3;
    const bad = Buffer.from(bytes);
    bad[at]! ^= 1;
    const sdBad = parseSignedData(bad);
    assert.throws(
      () => verifySigner(sdBad, sdBad.signers[0]!, key),
      (e: unknown) => e instanceof CmsError && e.reason === 'signature',
    );
  }
  // Signet signs with a key of its own; openssl verifies (the signer certificate is in the message).
  const key = ownKey(createPrivateKey(readFileSync(signer.key)));
  const parts = inspectCertificate(signer.der);
  const der = await buildSignedData({
    eContentType: '1.2.840.113549.1.7.1',
    content,
    certificates: [signer.der],
    signer: signerFor(key),
    issuerNameDer: parts.issuerNameDer,
    serial: parts.serial,
    attributes: [],
    signingTime: new Date(),
  });
  const file = tmp.file('ours-signed.der', der);
  const v = openssl(['cms', '-verify', '-inform', 'DER', '-in', file, '-noverify', '-binary', '-out', tmp.file('ours-signed.out')]);
  assert.equal(v.status, 0, v.stderr);
  assert.deepEqual(readFileSync(tmp.file('ours-signed.out')), content);
});

test('CertRep: signed by the RA with the SCEP attributes, read back by Signet and openssl', async () => {
  const ra = rsaIdentity('ra-rep');
  const parts = inspectCertificate(ra.der);
  const key = ownKey(createPrivateKey(readFileSync(ra.key)));
  const nonce = randomBytes(16);
  const rep = await buildCertRep({
    transactionId: 'tx-1',
    recipientNonce: nonce,
    senderNonce: randomBytes(16),
    signer: signerFor(key),
    signerCertificate: ra.der,
    status: { kind: 'failure', failInfo: 'badMessageCheck', text: 'tampered' },
  });
  const msg = parsePkiMessage(rep);
  assert.equal(msg.messageType, 3);
  assert.equal(msg.transactionId, 'tx-1');
  assert.deepEqual(msg.signerCertificate, ra.der);
  verifySigner(msg.signed, msg.signer, parts.publicKey);
  const attr = (oid: string) => msg.signer.attributes.get(oid)![0]!.subarray(2).toString('latin1');
  assert.equal(attr(SCEP_OID.pkiStatus), '2');
  assert.equal(attr(SCEP_OID.failInfo), '1');
  assert.ok(msg.signer.attributes.get(SCEP_OID.recipientNonce)![0]!.subarray(2).equals(nonce));
  const file = tmp.file('certrep.der', rep);
  assert.equal(openssl(['cms', '-verify', '-inform', 'DER', '-in', file, '-noverify', '-out', '/dev/null']).status, 0);
});

test('challengePassword is read from the CSR openssl writes; none without one', () => {
  const key = tmp.file('csr.key');
  const cnf = tmp.file('csr.cnf', '[req]\ndistinguished_name=dn\nattributes=attrs\nprompt=no\n[dn]\nCN=dev1\n[attrs]\nchallengePassword=s3cr3t-ch4llenge\n');
  const out = tmp.file('csr.der');
  assert.equal(openssl(['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-config', cnf, '-outform', 'DER', '-out', out]).status, 0);
  assert.equal(challengePasswordOf(readFileSync(out)), 's3cr3t-ch4llenge');
  const plain = tmp.file('csr2.der');
  assert.equal(openssl(['req', '-new', '-key', key, '-subj', '/CN=dev1', '-outform', 'DER', '-out', plain]).status, 0);
  assert.equal(challengePasswordOf(readFileSync(plain)), null);
});

test('hostile input: truncated, deeply nested, indefinite-length and garbage messages are CmsErrors, quickly', () => {
  const deep = (n: number) => {
    let b = Buffer.from([0x05, 0x00]);
    for (let i = 0; i < n; i++) {
      const len = Buffer.alloc(4);
      len.writeUInt32BE(b.length);
      b = Buffer.concat([Buffer.from([0x30, 0x84]), len, b]);
    }
    return b;
  };
  const inputs: Buffer[] = [
    Buffer.alloc(0),
    Buffer.from([0x30]),
    Buffer.from([0x30, 0x80, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02, 0x00, 0x00]),
    randomBytes(5000),
    deep(5000),
    Buffer.concat([Buffer.from([0x30, 0x84, 0x7f, 0xff, 0xff, 0xff]), randomBytes(100)]),
  ];
  for (const input of inputs) {
    const t0 = performance.now();
    assert.throws(
      () => parsePkiMessage(input),
      (e: unknown) => e instanceof CmsError,
    );
    assert.throws(
      () => parseEnvelopedData(input),
      (e: unknown) => e instanceof CmsError,
    );
    assert.ok(performance.now() - t0 < 200, `took ${performance.now() - t0} ms`);
  }
});

test('KeyStore.decrypt (sealed store): an RA key decrypts PKCS#1 v1.5 and OAEP; a tampered v1.5 ciphertext gives no error but not the key (implicit rejection)', async () => {
  const env = await createTestEnv({ SIGNET_KEY_STORE: 'sealed' });
  const ctx = await openSignet(loadConfig(env.env), pino({ level: 'silent' }));
  try {
    const key = await ctx.keys.generate('rsa-2048', undefined, 'ra');
    const secret = randomBytes(32);
    const { publicEncrypt } = await import('node:crypto');
    const v15 = publicEncrypt({ key: key.publicKey, padding: constants.RSA_PKCS1_PADDING }, secret);
    assert.deepEqual(await ctx.keys.decrypt(key.id, v15, { scheme: 'pkcs1' }), secret);
    for (const hash of ['sha1', 'sha256'] as const) {
      const oaep = publicEncrypt({ key: key.publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash }, secret);
      assert.deepEqual(await ctx.keys.decrypt(key.id, oaep, { scheme: 'oaep', hash }), secret);
    }
    const bad = Buffer.from(v15);
    bad[10]! ^= 1;
    const out = await ctx.keys.decrypt(key.id, bad, { scheme: 'pkcs1' });
    assert.notDeepEqual(out, secret);
    // A CA-style EC key cannot decrypt.
    const ec = await ctx.keys.generate('ecdsa-p256');
    await assert.rejects(ctx.keys.decrypt(ec.id, v15, { scheme: 'pkcs1' }), /not an RSA key/);
  } finally {
    await ctx.db.close();
    await env.cleanup();
  }
});

test('KeyStore.decrypt (PKCS#11, SoftHSM2): the RA key is a token key that may decrypt (CKM_RSA_PKCS, CKM_RSA_PKCS_OAEP), sensitive and never extractable', async () => {
  const hsm = softHsm();
  const env = await createTestEnv({ ...hsm.env });
  const ctx = await openSignet(loadConfig(env.env), pino({ level: 'silent' }));
  try {
    const key = await ctx.keys.generate('rsa-2048', undefined, 'ra');
    assert.match(key.id, /^pkcs11:/);
    const secret = randomBytes(32);
    const { publicEncrypt } = await import('node:crypto');
    const v15 = publicEncrypt({ key: key.publicKey, padding: constants.RSA_PKCS1_PADDING }, secret);
    assert.deepEqual(await ctx.keys.decrypt(key.id, v15, { scheme: 'pkcs1' }), secret);
    const oaep = publicEncrypt({ key: key.publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING }, secret);
    assert.deepEqual(await ctx.keys.decrypt(key.id, oaep, { scheme: 'oaep', hash: 'sha1' }), secret);
    // SoftHSM2 2.6 implements OAEP with SHA-1 only: SHA-256 is the token's refusal, a SignetError, not a crash.
    const oaep256 = publicEncrypt({ key: key.publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, secret);
    await assert.rejects(ctx.keys.decrypt(key.id, oaep256, { scheme: 'oaep', hash: 'sha256' }), /PKCS#11 token .* refused/);
    // SoftHSM has no implicit rejection: a bad padding is an error, which cms-enveloped.ts answers as any bad key.
    const bad = Buffer.from(v15);
    bad[10]! ^= 1;
    const out = await ctx.keys.decrypt(key.id, bad, { scheme: 'pkcs1' }).then(
      (v) => v,
      (e: unknown) => e,
    );
    assert.ok(!(Buffer.isBuffer(out) && out.equals(secret)));
    // The object as the token reports it (pkcs11-tool, not Signet): decrypt allowed, sensitive, never extractable.
    const listing = hsm.tool(['--list-objects', '--type', 'privkey']);
    const block = listing.split(/\n(?=Private Key Object)/).find((b) => b.includes('decrypt'));
    assert.ok(block, listing);
    assert.match(block, /Access:\s+sensitive, always sensitive, never extractable, local/);
    // A CA key in the same token still cannot decrypt.
    const ca = await ctx.keys.generate('rsa-2048');
    await assert.rejects(ctx.keys.decrypt(ca.id, v15, { scheme: 'pkcs1' }));
  } finally {
    await ctx.db.close();
    await env.cleanup();
  }
});

test('the SCEP RA: one key per issuing CA even when two replicas race for it; its certificate is re-issued for the same key at two-thirds of its life', async () => {
  const env = await createTestEnv();
  let now = Date.now();
  const config = loadConfig(env.env);
  const ctx = await openSignet(config, pino({ level: 'silent' }), { now: () => new Date(now) });
  try {
    await bootstrapIfEmpty(ctx, config);
    const services = createServices(ctx, config);
    const settings = new SettingStore(storageOf(ctx.db));
    const a = new ScepRa(ctx, services.issuance, settings);
    const b = new ScepRa(ctx, services.issuance, settings);
    const [ra1, rb1] = await Promise.all([a.forProfile('client'), b.forProfile('client')]);
    assert.equal(ra1.keyId, rb1.keyId, 'both replicas use the recorded key');
    // The replica that lost the race removed the key it made: one RSA key in the store (the CA keys are ECDSA).
    const rsaKeys = async () => Number((await sql<{ n: number }>(env, `SELECT COUNT(*) AS n FROM "KeyRecord" WHERE algorithm = 'rsa-2048'`))[0]!.n);
    assert.equal(await rsaKeys(), 1);
    assert.equal(await a.forProfile('client'), ra1, 'cached while not due');
    const life = ra1.certificate.notAfter.getTime() - ra1.certificate.notBefore.getTime();
    now = ra1.certificate.notBefore.getTime() + (life * 2) / 3 + 60_000;
    const ra2 = await a.forProfile('client');
    assert.equal(ra2.keyId, ra1.keyId);
    assert.ok(ra2.certificate.spkiDer.equals(ra1.certificate.spkiDer), 'same key');
    assert.ok(!ra2.certificate.serial.equals(ra1.certificate.serial), 'a new certificate');
    // Another replica reads the renewed certificate from the Setting row, without issuing again.
    const c = new ScepRa(ctx, services.issuance, settings);
    assert.ok((await c.forProfile('client')).certificate.serial.equals(ra2.certificate.serial));
    assert.equal(await rsaKeys(), 1, 'no key made for the renewal');
    const events = await sql<{ n: number }>(env, `SELECT COUNT(*) AS n FROM "AuditEvent" WHERE action = 'scep.ra.key_generated'`);
    assert.equal(Number(events[0]!.n), 1);
  } finally {
    await ctx.db.close();
    await env.cleanup();
  }
});

test('a DES-CBC envelope larger than MAX_DES_BYTES (2 KiB) is refused before the slow software DES runs', async () => {
  const ra = rsaIdentity('ra-des');
  const input = tmp.file('des-big.bin', randomBytes(MAX_DES_BYTES + 64));
  const out = tmp.file('des-big.der');
  const r = openssl([
    'cms',
    '-encrypt',
    '-binary',
    '-des',
    '-in',
    input,
    '-outform',
    'DER',
    '-out',
    out,
    '-recip',
    ra.cert,
    '-provider',
    'legacy',
    '-provider',
    'default',
  ]);
  assert.equal(r.status, 0, r.stderr);
  const env = parseEnvelopedData(readFileSync(out));
  assert.equal(env.cipher, 'des-cbc');
  await assert.rejects(
    decryptEnveloped(env, () => true, nodeUnwrap(ra.key)),
    (e: unknown) => e instanceof CmsError && /at most 2048/.test(e.message),
  );
  // A small one (what micromdm sends) decrypts.
  const small = tmp.file('des-small.bin', randomBytes(900));
  const out2 = tmp.file('des-small.der');
  assert.equal(
    openssl([
      'cms',
      '-encrypt',
      '-binary',
      '-des',
      '-in',
      small,
      '-outform',
      'DER',
      '-out',
      out2,
      '-recip',
      ra.cert,
      '-provider',
      'legacy',
      '-provider',
      'default',
    ]).status,
    0,
  );
  assert.deepEqual(await decryptEnveloped(parseEnvelopedData(readFileSync(out2)), () => true, nodeUnwrap(ra.key)), readFileSync(small));
});

test('no padding oracle: every envelope that does not decrypt (random wrapped key, PKCS#1 wrap of the wrong length, a conformant wrap of the right length, an unwrap that fails, bad content padding) gives the same error and text', async () => {
  const ra = rsaIdentity('oracle-ra');
  const parts = inspectCertificate(ra.der);
  const plain = randomBytes(300);
  const good = encryptEnveloped(plain, { issuerNameDer: parts.issuerNameDer, serial: parts.serial, publicKey: parts.publicKey }, 'aes-256-cbc');
  const wrapped = parseEnvelopedData(good).recipients[0]!.encryptedKey;
  const withKey = (k: Buffer) => {
    assert.equal(k.length, wrapped.length);
    const b = Buffer.from(good);
    k.copy(b, b.indexOf(wrapped));
    return parseEnvelopedData(b);
  };
  const { publicEncrypt } = await import('node:crypto');
  const wrap = (k: Buffer) => publicEncrypt({ key: parts.publicKey, padding: constants.RSA_PKCS1_PADDING }, k);
  const ours = () => true;
  const unwrap = nodeUnwrap(ra.key);
  const badContent = Buffer.from(good);
  badContent[badContent.length - 1]! ^= 0x01; // the last CBC block: the padding breaks (or, 1 in 256, garbage)
  const cases: [string, Promise<Buffer>][] = [
    ['random encryptedKey', decryptEnveloped(withKey(randomBytes(wrapped.length)), ours, unwrap)],
    ['PKCS#1 wrap of a 16-byte key for AES-256', decryptEnveloped(withKey(wrap(randomBytes(16))), ours, unwrap)],
    ['PKCS#1 wrap of a 32-byte wrong key', decryptEnveloped(withKey(wrap(randomBytes(32))), ours, unwrap)],
    [
      'unwrap fails (a token: CKR_ENCRYPTED_DATA_INVALID)',
      decryptEnveloped(parseEnvelopedData(good), ours, () => Promise.reject(new Error('CKR_ENCRYPTED_DATA_INVALID'))),
    ],
    ['content padding', decryptEnveloped(parseEnvelopedData(badContent), ours, unwrap)],
  ];
  const answers = new Set<string>();
  for (const [label, p] of cases) {
    const e = await p.then(
      (v) => v,
      (err: unknown) => err,
    );
    if (Buffer.isBuffer(e) && label === 'content padding') continue; // valid padding by chance: not the plaintext, checked elsewhere
    assert.ok(e instanceof CmsError, `${label}: ${String(e)}`);
    assert.equal(e.reason, 'signature', label);
    answers.add(e.message);
  }
  assert.equal(answers.size, 1, [...answers].join(' | '));
  assert.deepEqual(await decryptEnveloped(parseEnvelopedData(good), ours, unwrap), plain);
});
