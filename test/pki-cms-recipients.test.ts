/**
 * src/pki/cms-recipients.ts against openssl cms: what Signet envelops for RSA (RSAES-OAEP),
 * ECDH P-256/P-384 and AES-256 KEK recipients, alone and mixed, decrypts to exactly the content
 * with the right key and not with a wrong one; the structure openssl prints names the expected
 * algorithms; keys that cannot receive are refused with a CmsError naming them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { openssl, TempDir } from './helpers/openssl.js';
import { requireTool } from './helpers/tools.js';
import { CmsError } from '../src/pki/cms-signed.js';
import { checkDer } from '../src/pki/der-strict.js';
import { envelop, prepareRecipient, recipientKeyKind, type GroupRecipient } from '../src/pki/cms-recipients.js';

requireTool('openssl', 'openssl');
const tmp = new TempDir();
process.on('exit', () => tmp.remove());

interface Identity {
  key: string;
  cert: string;
  der: Uint8Array;
}

/** A key and self-signed certificate made by openssl req; `newkey` as openssl req takes it. */
function identity(name: string, newkey: string[]): Identity {
  const key = tmp.file(`${name}.key`);
  const cert = tmp.file(`${name}.pem`);
  const r = openssl(['req', '-x509', ...newkey, '-nodes', '-keyout', key, '-out', cert, '-subj', `/CN=${name}`, '-days', '2']);
  assert.equal(r.status, 0, r.stderr);
  return { key, cert, der: new Uint8Array(new X509Certificate(readFileSync(cert)).raw) };
}
const ec = (curve: string) => ['-newkey', 'ec', '-pkeyopt', `ec_paramgen_curve:${curve}`];

const p256 = identity('p256', ec('P-256'));
const p256other = identity('p256-other', ec('P-256'));
const p384 = identity('p384', ec('P-384'));
const rsa = identity('rsa2048', ['-newkey', 'rsa:2048']);
const certOf = (id: Identity): GroupRecipient => ({ kind: 'certificate', certificateDer: id.der });
const kek = (id: string, key: Buffer): GroupRecipient & { kind: 'kek' } => ({ kind: 'kek', keyId: Buffer.from(id, 'hex'), key });

let fileNo = 0;
/** Runs openssl cms -decrypt on `envelope` with `args`; the output bytes, or null when openssl fails. */
function decrypt(envelope: Buffer, args: string[]): Buffer | null {
  const n = fileNo++;
  const input = tmp.file(`env-${n}.der`, envelope);
  const out = tmp.file(`out-${n}.bin`);
  const r = openssl(['cms', '-decrypt', '-inform', 'DER', '-in', input, '-out', out, ...args]);
  return r.status === 0 ? readFileSync(out) : null;
}
const withCert = (id: Identity) => ['-inkey', id.key, '-recip', id.cert];
const withKek = (r: { keyId: Uint8Array; key: Uint8Array }) => [
  '-secretkey',
  Buffer.from(r.key).toString('hex'),
  '-secretkeyid',
  Buffer.from(r.keyId).toString('hex'),
];

function printed(envelope: Buffer): string {
  const r = openssl(['cms', '-cmsout', '-print', '-inform', 'DER', '-in', tmp.file(`print-${fileNo++}.der`, envelope)]);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

test('recipientKeyKind: RSA-2048 → rsa-oaep, P-256 → ecdh-p256, P-384 → ecdh-p384', () => {
  assert.equal(recipientKeyKind(rsa.der), 'rsa-oaep');
  assert.equal(recipientKeyKind(p256.der), 'ecdh-p256');
  assert.equal(recipientKeyKind(p384.der), 'ecdh-p384');
});

for (const [name, id] of [
  ['P-256', p256],
  ['P-384', p384],
  ['RSA-2048', rsa],
] as const) {
  test(`one ${name} certificate recipient: openssl cms -decrypt gives exactly the content (several lengths)`, () => {
    for (const length of [0, 1, 15, 16, 17, 1000]) {
      const content = randomBytes(length);
      const env = envelop(content, [certOf(id)]);
      checkDer(env); // DER throughout, SET OF sorted
      assert.deepEqual(decrypt(env, withCert(id)), content, `${name}, ${length} bytes`);
    }
  });
}

test('one KEK recipient: openssl cms -decrypt -secretkey/-secretkeyid gives exactly the content', () => {
  const r = kek('a1b2c3', randomBytes(32));
  const content = randomBytes(333);
  const env = envelop(content, [r]);
  checkDer(env);
  assert.deepEqual(decrypt(env, withKek(r)), content);
});

/** The asn1parse-style lines openssl prints for algorithm parameters, as "depth type[ :value]". */
const parameterDump = (print: string): string[] =>
  [...print.matchAll(/^\s+\d+:d=(\d+)\s+hl=\d+\s+l=\s*\d+\s+(?:cons|prim):\s+(.*?)\s*$/gm)].map((m) => `${m[1]} ${m[2]!.replace(/\s+:/, ' :')}`);

test('the structure openssl prints: recipient types, versions and algorithm names', () => {
  const r = printed(envelop(randomBytes(10), [certOf(rsa)]));
  assert.match(r, /d\.envelopedData: \n\s+version: 0\n/, 'ktri only: EnvelopedData version 0');
  assert.match(r, /d\.ktri: \n\s+version: 0\n\s+d\.issuerAndSerialNumber:/);
  assert.match(r, /algorithm: rsaesOaep \(1\.2\.840\.113549\.1\.1\.7\)/);
  // RSAES-OAEP-params: [0] sha256, [1] mgf1 with sha256 (NULL parameters, RFC 4055 §2.1), no [2] pSourceAlgorithm.
  assert.deepEqual(parameterDump(r), [
    '0 SEQUENCE',
    '1 cont [ 0 ]',
    '2 SEQUENCE',
    '3 OBJECT :sha256',
    '3 NULL',
    '1 cont [ 1 ]',
    '2 SEQUENCE',
    '3 OBJECT :mgf1',
    '3 SEQUENCE',
    '4 OBJECT :sha256',
    '4 NULL',
  ]);
  assert.match(r, /algorithm: aes-256-cbc \(2\.16\.840\.1\.101\.3\.4\.1\.42\)/);

  for (const [id, kdf] of [
    [p256, 'dhSinglePass-stdDH-sha256kdf-scheme (1.3.132.1.11.1)'],
    [p384, 'dhSinglePass-stdDH-sha384kdf-scheme (1.3.132.1.11.2)'],
  ] as const) {
    const k = printed(envelop(randomBytes(10), [certOf(id)]));
    assert.match(k, /d\.envelopedData: \n\s+version: 2\n/, 'kari: EnvelopedData version 2');
    assert.match(
      k,
      /d\.kari: \n\s+version: 3\n\s+d\.originatorKey: \n\s+algorithm: \n\s+algorithm: id-ecPublicKey \(1\.2\.840\.10045\.2\.1\)\n\s+parameter: <ABSENT>/,
    );
    assert.ok(k.includes(`algorithm: ${kdf}`), `kari with ${kdf}`);
    assert.deepEqual(parameterDump(k), ['0 SEQUENCE', '1 OBJECT :id-aes256-wrap'], 'KeyWrapAlgorithm id-aes256-wrap, parameters absent');
    assert.match(k, /ukm: <ABSENT>/);
    assert.match(k, /recipientEncryptedKeys:\n\s+d\.issuerAndSerialNumber: \n\s+issuer: CN=p(256|384)/);
    assert.match(k, /publicKey: {2}\(0 unused bits\)\n\s+0000 - 04 /, 'an uncompressed point');
  }

  const kk = printed(envelop(randomBytes(10), [kek('0badcafe', randomBytes(32))]));
  assert.match(kk, /d\.envelopedData: \n\s+version: 2\n/);
  assert.match(kk, /d\.kekri: \n\s+version: 4\n\s+kekid: \n\s+keyIdentifier: \n\s+0000 - 0b ad ca fe/);
  assert.match(kk, /algorithm: id-aes256-wrap \(2\.16\.840\.1\.101\.3\.4\.1\.45\)\n\s+parameter: <ABSENT>/);
});

test('a mixed envelope (P-256, RSA, two KEKs) decrypts for each recipient, RecipientInfos in DER order', () => {
  const k1 = kek('01', randomBytes(32));
  const k2 = kek('02', randomBytes(32));
  const content = randomBytes(4096);
  const env = envelop(content, [k2, certOf(p256), certOf(rsa), k1]);
  checkDer(env); // throws if the RecipientInfos SET OF is not sorted
  assert.deepEqual(decrypt(env, withCert(p256)), content, 'P-256');
  assert.deepEqual(decrypt(env, withCert(rsa)), content, 'RSA');
  assert.deepEqual(decrypt(env, withKek(k1)), content, 'KEK 1');
  assert.deepEqual(decrypt(env, withKek(k2)), content, 'KEK 2');
  const p = printed(env);
  assert.match(p, /d\.envelopedData: \n\s+version: 2\n/);
  // DER order sorts by encoding: ktri (0x30) before kari (0xa1) before kekri (0xa2).
  const order = [...p.matchAll(/d\.(ktri|kari|kekri): /g)].map((m) => m[1]);
  assert.deepEqual(order, ['ktri', 'kari', 'kekri', 'kekri']);
});

test('a wrong key does not decrypt: another P-256 key, another KEK under the same id', () => {
  const content = randomBytes(64);
  const env = envelop(content, [certOf(p256)]);
  assert.deepEqual(decrypt(env, withCert(p256)), content, 'the right key decrypts (control)');
  assert.equal(decrypt(env, ['-inkey', p256other.key, '-recip', p256.cert]), null, 'the wrong private key, the right rid');
  assert.equal(decrypt(env, ['-inkey', p256other.key]), null, 'the wrong private key, any recipient');
  assert.equal(decrypt(env, withCert(p256other)), null, 'another certificate');
  const right = kek('77', randomBytes(32));
  const kenv = envelop(content, [right]);
  assert.deepEqual(decrypt(kenv, withKek(right)), content, 'the right KEK decrypts (control)');
  assert.equal(decrypt(kenv, withKek({ keyId: right.keyId, key: randomBytes(32) })), null, 'same id, another key');
});

test('a prepared recipient is reusable; every envelope has a fresh ephemeral key and CEK', () => {
  const prepared = prepareRecipient(certOf(p256));
  const content = Buffer.from('the same content twice');
  const a = envelop(content, [prepared]);
  const b = envelop(content, [prepared]);
  assert.deepEqual(decrypt(a, withCert(p256)), content);
  assert.deepEqual(decrypt(b, withCert(p256)), content);
  const point = (env: Buffer) => /publicKey: {2}\(0 unused bits\)\n([\s\S]*?)\n\s+ukm:/.exec(printed(env))?.[1];
  assert.ok(point(a));
  assert.notEqual(point(a), point(b), 'ephemeral keys differ');
  assert.notDeepEqual(a.subarray(-32), b.subarray(-32), 'ciphertexts differ');
  const kp = prepareRecipient(kek('99', randomBytes(32)));
  assert.notDeepEqual(envelop(content, [kp]), envelop(content, [kp]), 'fresh CEK and IV per envelope');
});

const refused = (reason: CmsError['reason'], message: RegExp) => (e: unknown) =>
  e instanceof CmsError && e.reason === reason && message.test(e.message) ? true : assert.fail(`unexpected: ${String(e)}`);

test('certificates whose keys cannot receive are refused, naming the key', () => {
  const ed = identity('ed25519', ['-newkey', 'ed25519']);
  const p521 = identity('p521', ec('P-521'));
  const rsa1024 = identity('rsa1024', ['-newkey', 'rsa:1024']);
  for (const f of [recipientKeyKind, (der: Uint8Array) => envelop(Buffer.from('x'), [{ kind: 'certificate', certificateDer: der }])]) {
    assert.throws(() => f(ed.der), refused('unsupported', /Ed25519 key, which only signs/));
    assert.throws(() => f(p521.der), refused('unsupported', /ECDSA P-521 key; key groups deliver to RSA 2048–8192 .*, ECDSA P-256\/P-384 .* or ML-KEM-768/));
    assert.throws(() => f(rsa1024.der), refused('unsupported', /RSA key of 1024 bits is too weak/));
  }
  assert.throws(() => recipientKeyKind(Buffer.from('not a certificate')), refused('malformed', /cannot be read/));
});

test('bad KEK recipients and empty recipient lists are refused with what is wrong', () => {
  const content = Buffer.from('x');
  assert.throws(() => envelop(content, [kek('01', randomBytes(16))]), refused('malformed', /must be 32 bytes \(AES-256\), not 16/));
  assert.throws(() => envelop(content, [kek('01', randomBytes(33))]), refused('malformed', /not 33/));
  assert.throws(() => envelop(content, [kek('', randomBytes(32))]), refused('malformed', /non-empty key identifier/));
  assert.throws(() => envelop(content, [kek('ab'.repeat(65), randomBytes(32))]), refused('malformed', /65 bytes; at most 64/));
  assert.ok(envelop(content, [kek('ab'.repeat(64), randomBytes(32))]).length > 0, '64 bytes is allowed');
  assert.throws(() => envelop(content, []), refused('malformed', /at least one recipient/));
  // One bad recipient refuses the whole envelope, even among good ones.
  assert.throws(() => envelop(content, [certOf(p256), kek('01', randomBytes(16))]), refused('malformed', /not 16/));
});
