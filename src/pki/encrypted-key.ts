/**
 * Passphrase-encrypted private keys from outside (CA import over the API and the CLI, offline
 * CA key files): their key derivation is read and bounded *before* anything decrypts them.
 *
 * A PKCS#8 EncryptedPrivateKeyInfo names its own cost: PBKDF2 with 42 million iterations, or
 * scrypt with a huge N·r·p, is a valid key that takes node:crypto's synchronous
 * createPrivateKey many seconds (17 s was measured), with the event loop — every other
 * request, /healthz — stalled meanwhile. So:
 *   - PBKDF2 (PBES2), PBES1 and PKCS#12 PBE: at most MAX_PBKDF2_ITERATIONS iterations;
 *   - scrypt: N a power of two, N·r·p at most MAX_SCRYPT_WORK (8× OpenSSL's default);
 *   - any other encryption scheme or key derivation (which Signet cannot cost) is refused;
 * each refusal a 400 'bad-key' naming the parameter, the value and the limit.
 * Measured on the 2-core CI machine (node 20, OpenSSL 3.0): PBKDF2-HMAC-SHA256 1,000,000
 * iterations 0.4 s (SHA-512 0.65 s); scrypt N·r·p = 2^20 0.3–0.4 s — each cap about a second at
 * most. A PBES2 key with PBKDF2 or scrypt and AES-CBC (what OpenSSL 3, node's export and
 * `signet init --offline-root` write) is then decrypted off the event loop (the async
 * pbkdf2/scrypt of node's thread pool); other forms by createPrivateKey, within the caps.
 *
 * Traditional OpenSSL encryption ("Proc-Type: 4,ENCRYPTED") derives its key with one MD5
 * round and needs no bound.
 */
import { createDecipheriv, createPrivateKey, pbkdf2, scrypt, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { SignetError } from '../errors.js';
import { kids, positiveInteger, readEl, strictOid, type El } from './der-strict.js';

export const MAX_PBKDF2_ITERATIONS = 2_000_000;
/** OpenSSL's default for `openssl pkcs8 -scrypt` is N=16384, r=8, p=1 (N·r·p = 2^17). */
export const MAX_SCRYPT_WORK = 2 ** 20;

const OID = {
  pbes2: '1.2.840.113549.1.5.13',
  pbkdf2: '1.2.840.113549.1.5.12',
  scrypt: '1.3.6.1.4.1.11591.4.11',
} as const;
/** PBES1 (PKCS#5 v1.5) and PKCS#12 password-based encryption: params { salt, iterations }. */
const PBES1_PREFIXES = ['1.2.840.113549.1.5.', '1.2.840.113549.1.12.1.'];
const PBES1 = new Set(
  ['1', '3', '4', '6', '10', '11'].map((n) => `${PBES1_PREFIXES[0]}${n}`).concat(['1', '2', '3', '4', '5', '6'].map((n) => `${PBES1_PREFIXES[1]}${n}`)),
);
const PRF_HASH: Record<string, string> = {
  '1.2.840.113549.2.7': 'sha1',
  '1.2.840.113549.2.8': 'sha224',
  '1.2.840.113549.2.9': 'sha256',
  '1.2.840.113549.2.10': 'sha384',
  '1.2.840.113549.2.11': 'sha512',
};
const AES_CBC: Record<string, { cipher: string; keyLength: number }> = {
  '2.16.840.1.101.3.4.1.2': { cipher: 'aes-128-cbc', keyLength: 16 },
  '2.16.840.1.101.3.4.1.22': { cipher: 'aes-192-cbc', keyLength: 24 },
  '2.16.840.1.101.3.4.1.42': { cipher: 'aes-256-cbc', keyLength: 32 },
};

const refuse = (detail: string) => new SignetError('bad-key', detail);
const fmt = (n: number) => n.toLocaleString('en-US');

/** How an EncryptedPrivateKeyInfo derives its key, once its cost is known to be within the caps. */
type Kdf =
  | { kind: 'pbkdf2'; salt: Buffer; iterations: number; keyLength?: number; hash?: string }
  | { kind: 'scrypt'; salt: Buffer; N: number; r: number; p: number; keyLength?: number }
  | { kind: 'pbes1'; iterations: number };

interface Encrypted {
  kdf: Kdf;
  cipher?: { name: string; keyLength: number; iv: Buffer };
  data: Buffer;
}

function smallInt(buf: Buffer, e: El | undefined, what: string): number {
  const mag = e && positiveInteger(buf, e);
  if (!mag) throw refuse(`the encrypted private key's ${what} is not a positive DER INTEGER`);
  // Above 2^48 it is over every cap anyway; say so without building a huge number.
  if (mag.length > 6) return Number.MAX_SAFE_INTEGER;
  return mag.reduce((n, b) => n * 256 + b, 0);
}

/** The key derivation and cipher of an EncryptedPrivateKeyInfo (RFC 5958 §3, RFC 8018, RFC 7914); throws 'bad-key' for one Signet cannot cost or that costs too much. */
function readEncryptedPrivateKeyInfo(der: Buffer): Encrypted {
  let top: El[] | null;
  try {
    const outer = readEl(der, 0);
    if (outer.tag !== 0x30 || outer.end !== der.length) throw new Error();
    top = kids(der, outer);
  } catch {
    top = null;
  }
  if (top?.length !== 2 || top[0]!.tag !== 0x30 || top[1]!.tag !== 0x04)
    throw refuse('the encrypted private key is not a DER EncryptedPrivateKeyInfo (PKCS#8)');
  const alg = kids(der, top[0]!);
  const algOid = alg?.[0] ? strictOid(der, alg[0]) : null;
  if (!alg || algOid === null) throw refuse('the encrypted private key has a malformed encryptionAlgorithm');
  const data = der.subarray(top[1]!.body, top[1]!.end);
  const params = alg[1] && alg[1].tag === 0x30 ? kids(der, alg[1]) : null;

  if (PBES1.has(algOid)) {
    if (params?.length !== 2 || params[0]!.tag !== 0x04) throw refuse('the encrypted private key has malformed PBE parameters');
    const iterations = smallInt(der, params[1], 'iteration count');
    if (iterations > MAX_PBKDF2_ITERATIONS) throw tooManyIterations(iterations, `password-based encryption ${algOid}`);
    return { kdf: { kind: 'pbes1', iterations }, data };
  }
  if (algOid !== OID.pbes2) {
    throw refuse(
      `the private key is encrypted with ${algOid}, a scheme whose cost Signet cannot check; re-encrypt it with PBES2 (e.g. openssl pkcs8 -topk8 -v2 aes-256-cbc)`,
    );
  }
  if (params?.length !== 2 || params[0]!.tag !== 0x30 || params[1]!.tag !== 0x30) throw refuse('the encrypted private key has malformed PBES2 parameters');
  const kdfAlg = kids(der, params[0]!);
  const kdfOid = kdfAlg?.[0] ? strictOid(der, kdfAlg[0]) : null;
  const kdfParams = kdfAlg?.[1] && kdfAlg[1].tag === 0x30 ? kids(der, kdfAlg[1]) : null;
  if (!kdfAlg || kdfOid === null || kdfAlg.length !== 2 || !kdfParams) throw refuse('the encrypted private key has a malformed key derivation function');
  const salt = (e: El | undefined) => (e && e.tag === 0x04 ? Buffer.from(der.subarray(e.body, e.end)) : null);

  let kdf: Kdf;
  if (kdfOid === OID.pbkdf2) {
    // PBKDF2-params: salt, iterationCount, keyLength OPTIONAL, prf DEFAULT hmacWithSHA1.
    const s = salt(kdfParams[0]);
    if (!s) throw refuse("the encrypted private key's PBKDF2 salt is not an OCTET STRING (other salt sources are not supported)");
    const iterations = smallInt(der, kdfParams[1], 'PBKDF2 iteration count');
    if (iterations > MAX_PBKDF2_ITERATIONS) throw tooManyIterations(iterations, 'PBKDF2');
    let i = 2;
    let keyLength: number | undefined;
    if (kdfParams[i]?.tag === 0x02) keyLength = smallInt(der, kdfParams[i++], 'PBKDF2 key length');
    let hash: string | undefined = 'sha1';
    if (kdfParams[i]) {
      const prf = kdfParams[i]!.tag === 0x30 ? kids(der, kdfParams[i]!) : null;
      const prfOid = prf?.[0] ? strictOid(der, prf[0]) : null;
      hash = prfOid === null ? undefined : PRF_HASH[prfOid];
      i++;
    }
    if (i !== kdfParams.length) throw refuse('the encrypted private key has malformed PBKDF2 parameters');
    kdf = { kind: 'pbkdf2', salt: s, iterations, keyLength, hash };
  } else if (kdfOid === OID.scrypt) {
    // scrypt-params: salt, costParameter N, blockSize r, parallelizationParameter p, keyLength OPTIONAL.
    const s = salt(kdfParams[0]);
    if (!s || kdfParams.length < 4 || kdfParams.length > 5) throw refuse('the encrypted private key has malformed scrypt parameters');
    const N = smallInt(der, kdfParams[1], 'scrypt cost N');
    const r = smallInt(der, kdfParams[2], 'scrypt block size r');
    const p = smallInt(der, kdfParams[3], 'scrypt parallelization p');
    const keyLength = kdfParams[4] ? smallInt(der, kdfParams[4], 'scrypt key length') : undefined;
    if (N * r * p > MAX_SCRYPT_WORK) {
      const show = (n: number) => (n >= Number.MAX_SAFE_INTEGER ? 'more than 2^48' : fmt(n));
      throw refuse(
        `the private key's encryption derives its key with scrypt N = ${show(N)}, r = ${show(r)}, p = ${show(p)} (N·r·p ${N * r * p > 1e15 ? 'over 10^15' : `= ${fmt(N * r * p)}`}); Signet accepts N·r·p up to ${fmt(MAX_SCRYPT_WORK)} (8× OpenSSL's default N=16384, r=8, p=1; about half a second of CPU) — re-encrypt it with smaller parameters`,
      );
    }
    if (N < 2 || (N & (N - 1)) !== 0) throw refuse(`the encrypted private key's scrypt cost N = ${fmt(N)} is not a power of two`);
    kdf = { kind: 'scrypt', salt: s, N, r, p, keyLength };
  } else {
    throw refuse(
      `the private key's encryption derives its key with ${kdfOid}, whose cost Signet cannot check; re-encrypt it with PBKDF2 or scrypt (openssl pkcs8 -topk8 -v2 aes-256-cbc)`,
    );
  }
  const enc = kids(der, params[1]!);
  const encOid = enc?.[0] ? strictOid(der, enc[0]) : null;
  const aes = encOid === null ? undefined : AES_CBC[encOid];
  const iv = enc?.[1] && enc[1].tag === 0x04 ? Buffer.from(der.subarray(enc[1].body, enc[1].end)) : null;
  return { kdf, ...(aes && iv?.length === 16 && enc!.length === 2 ? { cipher: { name: aes.cipher, keyLength: aes.keyLength, iv } } : {}), data };
}

function tooManyIterations(n: number, what: string): SignetError {
  const shown = n >= Number.MAX_SAFE_INTEGER ? 'more than 2^48' : fmt(n);
  return refuse(
    `the private key's encryption derives its key with ${what} at ${shown} iterations; Signet accepts at most ${fmt(MAX_PBKDF2_ITERATIONS)} (about a second of CPU) — re-encrypt it with fewer (e.g. openssl pkcs8 -topk8 -v2 aes-256-cbc -iter 600000)`,
  );
}

/** The DER of each PEM block in the text (any label, RFC 1421 header lines skipped). */
function pemBodies(text: string): { label: string; der: Buffer }[] {
  const out: { label: string; der: Buffer }[] = [];
  const re = /-----BEGIN ([^\r\n-]*(?:-[^\r\n-]+)*)-----([\s\S]*?)-----END /g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const body = m[2]!
      .split(/\r?\n|\r/)
      .filter((l) => !l.includes(':'))
      .join('')
      .replace(/\s+/g, '');
    out.push({ label: m[1]!.trim(), der: Buffer.from(body, 'base64') });
  }
  return out;
}

const looksEncrypted = (der: Buffer): boolean => {
  try {
    const outer = readEl(der, 0);
    const top = outer.tag === 0x30 ? kids(der, outer) : null;
    const alg = top?.[0]?.tag === 0x30 ? kids(der, top[0]) : null;
    const oid = alg?.[0] ? strictOid(der, alg[0]) : null;
    return oid !== null && (oid === OID.pbes2 || PBES1.has(oid) || PBES1_PREFIXES.some((p) => oid.startsWith(p)));
  } catch {
    return false;
  }
};

/**
 * Throws 'bad-key' (400) if the PEM text holds a passphrase-encrypted PKCS#8 key whose key
 * derivation Signet cannot cost, or that costs more than the caps above. Cheap: reads only the
 * parameters.
 */
export function checkKeyEncryptionCost(pem: string): void {
  for (const b of pemBodies(pem)) {
    if (b.label === 'ENCRYPTED PRIVATE KEY' || looksEncrypted(b.der)) readEncryptedPrivateKeyInfo(b.der);
  }
}

const pbkdf2Async = promisify(pbkdf2);
const scryptAsync = promisify(scrypt) as (
  password: Buffer,
  salt: Buffer,
  keylen: number,
  options: { N: number; r: number; p: number; maxmem: number },
) => Promise<Buffer>;

/**
 * A private key from PEM text (PKCS#8, encrypted PKCS#8 or traditional), its encryption's cost
 * checked first (checkKeyEncryptionCost). The common PBES2 + PBKDF2/scrypt + AES-CBC form is
 * decrypted on node's thread pool, not on the event loop. Throws 'bad-key' for a refused cost;
 * any other failure (wrong passphrase, not a key) is the error node:crypto gives, for the caller
 * to word.
 */
export async function readPrivateKeyPem(pem: string, passphrase?: string): Promise<KeyObject> {
  checkKeyEncryptionCost(pem);
  const blocks = pemBodies(pem);
  if (passphrase !== undefined && blocks.length === 1 && blocks[0]!.label === 'ENCRYPTED PRIVATE KEY') {
    const e = readEncryptedPrivateKeyInfo(blocks[0]!.der);
    const c = e.cipher;
    const pass = Buffer.from(passphrase, 'utf8');
    let key: Buffer | undefined;
    if (c && e.kdf.kind === 'pbkdf2' && e.kdf.hash && (e.kdf.keyLength === undefined || e.kdf.keyLength === c.keyLength)) {
      key = await pbkdf2Async(pass, e.kdf.salt, e.kdf.iterations, c.keyLength, e.kdf.hash);
    } else if (c && e.kdf.kind === 'scrypt' && (e.kdf.keyLength === undefined || e.kdf.keyLength === c.keyLength)) {
      key = await scryptAsync(pass, e.kdf.salt, c.keyLength, { N: e.kdf.N, r: e.kdf.r, p: e.kdf.p, maxmem: 256 * MAX_SCRYPT_WORK });
    }
    if (key && c) {
      let plain: Buffer | undefined;
      try {
        const d = createDecipheriv(c.name, key, c.iv);
        plain = Buffer.concat([d.update(e.data), d.final()]);
        return createPrivateKey({ key: plain, format: 'der', type: 'pkcs8' });
      } finally {
        key.fill(0);
        plain?.fill(0);
      }
    }
  }
  return createPrivateKey({ key: pem, format: 'pem', ...(passphrase !== undefined ? { passphrase } : {}) });
}
