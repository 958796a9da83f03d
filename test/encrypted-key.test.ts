/**
 * pki/encrypted-key.ts: an encrypted private key's key derivation is costed before anything
 * decrypts it (finding F11: PBKDF2 patched to 42 million iterations stalled the event loop for
 * 17 s), and the common forms decrypt off the event loop. Keys made by the real openssl CLI.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { checkKeyEncryptionCost, MAX_PBKDF2_ITERATIONS, MAX_SCRYPT_WORK, readPrivateKeyPem } from '../src/pki/encrypted-key.js';
import { SignetError } from '../src/errors.js';
import { openssl, TempDir } from './helpers/openssl.js';
import { keyUnder, pbes2WithKdf, pbkdf2Key, scryptKeyClaiming } from './helpers/encrypted-key.js';
import { throwsProblem } from './helpers/problems.js';

const tmp = new TempDir();
after(() => tmp.remove());
const PASS = 'correct horse battery staple';
const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const plainFile = tmp.file('plain.pem', privateKey.export({ format: 'pem', type: 'pkcs8' }));
const same = (k: KeyObject) => k.export({ format: 'der', type: 'pkcs8' }).equals(privateKey.export({ format: 'der', type: 'pkcs8' }));
let n = 0;

function osslKey(args: string[]): string {
  const out = tmp.file(`enc-${++n}.pem`);
  const r = openssl([...args, '-in', plainFile, '-passout', `pass:${PASS}`, '-out', out]);
  assert.equal(r.status, 0, r.stderr);
  return readFileSync(out, 'utf8');
}

test('keys as openssl writes them are read, with the right passphrase only', async () => {
  const cases: [string, string][] = [
    ['PBES2 PBKDF2-SHA256 AES-256-CBC (the default)', osslKey(['pkcs8', '-topk8', '-v2', 'aes-256-cbc'])],
    ['PBES2 PBKDF2-SHA512 AES-128-CBC, 600,000 iterations', osslKey(['pkcs8', '-topk8', '-v2', 'aes-128-cbc', '-v2prf', 'hmacWithSHA512', '-iter', '600000'])],
    ["PBES2 scrypt AES-256-CBC (OpenSSL's defaults)", osslKey(['pkcs8', '-topk8', '-scrypt'])],
    ['PBES2 PBKDF2 3DES (read by node:crypto, within the caps)', osslKey(['pkcs8', '-topk8', '-v2', 'des3'])],
    ['PBES1 / PKCS#12 PBE-SHA1-3DES', osslKey(['pkcs8', '-topk8', '-v1', 'PBE-SHA1-3DES'])],
    ['traditional "Proc-Type: 4,ENCRYPTED"', osslKey(['ec', '-aes256'])],
    ["Signet's own builder at exactly the cap", pbkdf2Key(privateKey, PASS, MAX_PBKDF2_ITERATIONS)],
  ];
  for (const [what, pem] of cases) {
    assert.doesNotThrow(() => checkKeyEncryptionCost(pem), what);
    assert.ok(same(await readPrivateKeyPem(pem, PASS)), what);
    await assert.rejects(
      readPrivateKeyPem(pem, 'wrong passphrase'),
      (e: unknown) => !(e instanceof SignetError),
      `${what}: a wrong passphrase is node's error, for the caller to word`,
    );
  }
  // Unencrypted keys pass through.
  assert.ok(same(await readPrivateKeyPem(readFileSync(plainFile, 'utf8'))));
});

test('a key derivation above the caps is refused before any decryption, naming the parameter and the limit', async () => {
  const over: [string, string, string][] = [
    [
      'PBKDF2 at 42 million iterations (the finding)',
      pbkdf2Key(privateKey, PASS, 42_000_000, 1000),
      "the private key's encryption derives its key with PBKDF2 at 42,000,000 iterations; Signet accepts at most 2,000,000 (about a second of CPU) — re-encrypt it with fewer (e.g. openssl pkcs8 -topk8 -v2 aes-256-cbc -iter 600000)",
    ],
    ['PBKDF2 one over the cap', pbkdf2Key(privateKey, PASS, MAX_PBKDF2_ITERATIONS + 1, 1000), 'PBKDF2 at 2,000,001 iterations'],
    ['PBKDF2 with a 2^53 iteration count', pbkdf2Key(privateKey, PASS, Number.MAX_SAFE_INTEGER, 1000), 'PBKDF2 at more than 2^48 iterations'],
    [
      'scrypt N = 2^20, r = 8 (64× the default)',
      scryptKeyClaiming(2 ** 20, 8, 1),
      'scrypt N = 1,048,576, r = 8, p = 1 (N·r·p = 8,388,608); Signet accepts N·r·p up to 1,048,576',
    ],
    ['scrypt p = 1000', scryptKeyClaiming(16384, 8, 1000), 'p = 1,000'],
    ['scrypt N not a power of two', scryptKeyClaiming(12345, 8, 1), 'N = 12,345 is not a power of two'],
    [
      'PBES1 at 42 million iterations',
      keyUnder('1.2.840.113549.1.5.10', 42_000_000),
      'password-based encryption 1.2.840.113549.1.5.10 at 42,000,000 iterations',
    ],
    ['PKCS#12 PBE at 42 million iterations', keyUnder('1.2.840.113549.1.12.1.3', 42_000_000), 'at 42,000,000 iterations'],
    ['an encryption scheme Signet cannot cost', keyUnder('1.2.3.4', 1), 'encrypted with 1.2.3.4, a scheme whose cost Signet cannot check'],
    ['a key derivation Signet cannot cost', pbes2WithKdf('1.2.3.4'), 'derives its key with 1.2.3.4, whose cost Signet cannot check'],
    ['not DER at all', '-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n', 'not a DER EncryptedPrivateKeyInfo'],
  ];
  for (const [what, pem, detail] of over) {
    const t = Date.now();
    throwsProblem(() => checkKeyEncryptionCost(pem), 'bad-key', detail);
    await assert.rejects(readPrivateKeyPem(pem, PASS), (e: unknown) => e instanceof SignetError && e.type === 'bad-key' && e.detail.includes(detail), what);
    assert.ok(Date.now() - t < 500, `${what}: refused at once (${Date.now() - t} ms)`);
  }
  // The same structure under another PEM label is checked too (node reads only ENCRYPTED PRIVATE KEY, but nothing relies on that).
  throwsProblem(
    () => checkKeyEncryptionCost(pbkdf2Key(privateKey, PASS, 42_000_000, 1000).replace(/ENCRYPTED PRIVATE KEY/g, 'PRIVATE KEY')),
    'bad-key',
    '42,000,000 iterations',
  );
  assert.equal(MAX_SCRYPT_WORK, 2 ** 20);
});

test('the common form decrypts on the thread pool: the event loop keeps turning meanwhile', async () => {
  const pem = pbkdf2Key(privateKey, PASS, 1_500_000);
  let worst = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last);
    last = now;
  }, 5);
  const t = performance.now();
  const k = await readPrivateKeyPem(pem, PASS);
  const took = performance.now() - t;
  clearInterval(timer);
  assert.ok(same(k));
  assert.ok(took > 100, `1.5 M iterations take a while (${took.toFixed(0)} ms)`);
  assert.ok(worst < Math.max(100, took / 4), `the longest event-loop turn was ${worst.toFixed(0)} ms of ${took.toFixed(0)} ms`);
  // node:crypto's own reading of the same key agrees.
  assert.ok(same(createPrivateKey({ key: pem, format: 'pem', passphrase: PASS })));
});
