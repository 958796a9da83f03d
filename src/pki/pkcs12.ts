/**
 * PKCS#12 (RFC 7292) export of a private key with its certificate chain, for RSA, ECDSA and
 * Ed25519 keys. node-forge's PKCS#12 writer only handles RSA, so the file is assembled here from
 * @peculiar/asn1-pfx / asn1-pkcs8 structures and node:crypto. Pure: no I/O beyond the CSPRNG.
 *
 * Layout (what `openssl pkcs12 -export` produces with its OpenSSL 3 defaults):
 *
 *   PFX v3
 *     authSafe = data( AuthenticatedSafe [
 *       encryptedData( PBES2( SafeContents [ certBag(leaf) {localKeyId, friendlyName?},
 *                                            certBag(chain…) ] ) ),
 *       data( SafeContents [ pkcs8ShroudedKeyBag(PBES2(PrivateKeyInfo)) {localKeyId, friendlyName?} ] ),
 *     ] )
 *     macData = HMAC-SHA256 over the AuthenticatedSafe DER, key from the RFC 7292 Appendix B KDF
 *
 * PBES2 is PBKDF2-HMAC-SHA256 + AES-256-CBC with the password's UTF-8 bytes (as OpenSSL passes
 * them); the MAC key uses the PKCS#12 KDF with the password as a NUL-terminated BMPString.
 *
 * The key bag is encrypted here rather than with `KeyObject.export({ cipher, passphrase })`:
 * Node fixes that at 2048 PBKDF2 iterations and an 8-byte salt, and the key is the one thing in
 * the file that most needs the configured iteration count. The structure is the same
 * EncryptedPrivateKeyInfo Node would write.
 *
 * The small CMS wrappers (ContentInfo, EncryptedData) and PBES2 parameters use ./der.js:
 * their @peculiar classes live in @peculiar/asn1-cms, which Signet does not depend on directly.
 */
import { createCipheriv, createHash, createHmac, pbkdf2Sync, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import { CertBag, id_certBag, id_pkcs8ShroudedKeyBag, id_x509Certificate, MacData, PKCS12Attribute, SafeBag, SafeContents } from '@peculiar/asn1-pfx';
import { EncryptedData as Pkcs8EncryptedData, EncryptedPrivateKeyInfo } from '@peculiar/asn1-pkcs8';
import { DigestInfo } from '@peculiar/asn1-rsa';
import { AlgorithmIdentifier } from '@peculiar/asn1-x509';
import { SignetError } from '../errors.js';
import { contextExplicit, objectIdentifier, octetString, sequence, smallInteger, tlv } from './der.js';

export interface Pkcs12Options {
  privateKey: KeyObject;
  /** DER certificates: the leaf (matching privateKey) first, then its chain. */
  certificates: Buffer[];
  password: string;
  /** Stored as the friendlyName attribute of the key and leaf certificate bags. */
  friendlyName?: string;
  /**
   * Iteration count for PBKDF2 (both encrypted parts) and the MAC KDF. When omitted, PBKDF2
   * uses 100000 and the MAC uses 2048 (OpenSSL's PKCS12_DEFAULT_ITER).
   */
  iterations?: number;
}

const DEFAULT_PBKDF2_ITERATIONS = 100_000;
const DEFAULT_MAC_ITERATIONS = 2048;
const MAX_ITERATIONS = 10_000_000;
const SALT_LENGTH = 16;

const OIDS = {
  data: '1.2.840.113549.1.7.1',
  encryptedData: '1.2.840.113549.1.7.6',
  pbes2: '1.2.840.113549.1.5.13',
  pbkdf2: '1.2.840.113549.1.5.12',
  hmacWithSHA256: '1.2.840.113549.2.9',
  aes256Cbc: '2.16.840.1.101.3.4.1.42',
  sha256: '2.16.840.1.101.3.4.2.1',
  friendlyName: '1.2.840.113549.1.9.20',
  localKeyId: '1.2.840.113549.1.9.21',
} as const;

const DER_NULL = Buffer.from([0x05, 0x00]);

/** A copy in a plain ArrayBuffer, which is what @peculiar's ANY / BufferSource fields hold. */
const ab = (b: Uint8Array): ArrayBuffer => new Uint8Array(b).buffer;

// --- PKCS#12 key derivation (RFC 7292 Appendix B.2) ---------------------------------------------

/** Digest output size u and block size v, in bytes, for the hashes the PKCS#12 KDF is used with. */
const KDF_HASHES = {
  sha1: { u: 20, v: 64 },
  sha224: { u: 28, v: 64 },
  sha256: { u: 32, v: 64 },
  sha384: { u: 48, v: 128 },
  sha512: { u: 64, v: 128 },
} as const;
export type Pkcs12KdfHash = keyof typeof KDF_HASHES;

/** ID byte of the PKCS#12 KDF: 1 = encryption key, 2 = IV, 3 = MAC key. */
export type Pkcs12KdfId = 1 | 2 | 3;

/**
 * The password as the PKCS#12 KDF takes it: a BMPString (UTF-16BE; characters beyond the BMP as
 * surrogate pairs, as OpenSSL's OPENSSL_utf82uni does) followed by two zero bytes.
 */
export function pkcs12PasswordBytes(password: string): Buffer {
  return Buffer.from(`${password}\u0000`, 'utf16le').swap16();
}

/** Repeats `src` to fill a whole number of v-byte blocks (RFC 7292 B.2 steps 2 and 3). */
function repeatToBlocks(src: Uint8Array, v: number): Buffer {
  if (src.length === 0) return Buffer.alloc(0);
  const out = Buffer.alloc(v * Math.ceil(src.length / v));
  for (let i = 0; i < out.length; i++) out[i] = src[i % src.length]!;
  return out;
}

/**
 * The PKCS#12 KDF of RFC 7292 Appendix B.2. `passwordBytes` is the already-encoded password
 * (see pkcs12PasswordBytes); the result is the first `length` bytes of A_1 || A_2 || ….
 */
export function pkcs12Kdf(opts: {
  passwordBytes: Uint8Array;
  salt: Uint8Array;
  id: Pkcs12KdfId;
  iterations: number;
  length: number;
  hash?: Pkcs12KdfHash;
}): Buffer {
  const hash = opts.hash ?? 'sha256';
  const { u, v } = KDF_HASHES[hash];
  if (!Number.isSafeInteger(opts.iterations) || opts.iterations < 1) throw new RangeError('iterations must be a positive integer');
  if (!Number.isSafeInteger(opts.length) || opts.length < 0) throw new RangeError('length must be a non-negative integer');

  const D = Buffer.alloc(v, opts.id);
  // I = S || P, each the input repeated to a multiple of v bytes.
  const I = Buffer.concat([repeatToBlocks(opts.salt, v), repeatToBlocks(opts.passwordBytes, v)]);
  const c = Math.ceil(opts.length / u);
  const out = Buffer.alloc(c * u);
  const B = Buffer.alloc(v);

  for (let i = 0; i < c; i++) {
    // A_i = H^r(D || I)
    let A = createHash(hash).update(D).update(I).digest();
    for (let r = 1; r < opts.iterations; r++) A = createHash(hash).update(A).digest();
    A.copy(out, i * u);
    if (i === c - 1) break;

    // B = A_i repeated to v bytes; each v-byte block I_j of I becomes (I_j + B + 1) mod 2^(8v).
    for (let k = 0; k < v; k++) B[k] = A[k % u]!;
    for (let off = 0; off < I.length; off += v) {
      let carry = 1;
      for (let k = v - 1; k >= 0; k--) {
        carry += I[off + k]! + B[k]!;
        I[off + k] = carry & 0xff;
        carry >>>= 8;
      }
    }
  }
  return out.subarray(0, opts.length);
}

// --- PBES2 (RFC 8018): PBKDF2-HMAC-SHA256 + AES-256-CBC ----------------------------------------

/** Encrypts with fresh salt and IV; returns the PBES2 AlgorithmIdentifier DER and the ciphertext. */
function pbes2Encrypt(plaintext: Uint8Array, password: Buffer, iterations: number): { algorithm: Buffer; ciphertext: Buffer } {
  const salt = randomBytes(SALT_LENGTH);
  const iv = randomBytes(16);
  const key = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const cipher = createCipheriv('aes-256-cbc', key, iv);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  key.fill(0);

  // PBKDF2-params: salt, iterationCount, (keyLength omitted: implied by AES-256), prf.
  // prf must be written: its DEFAULT is hmacWithSHA1.
  const kdf = sequence(
    objectIdentifier(OIDS.pbkdf2),
    sequence(octetString(salt), smallInteger(iterations), sequence(objectIdentifier(OIDS.hmacWithSHA256), DER_NULL)),
  );
  const scheme = sequence(objectIdentifier(OIDS.aes256Cbc), octetString(iv));
  return { algorithm: sequence(objectIdentifier(OIDS.pbes2), sequence(kdf, scheme)), ciphertext };
}

// --- bags ---------------------------------------------------------------------------------------

function attribute(oid: string, valueDer: Buffer): PKCS12Attribute {
  // PKCS12Attribute's constructor drops its params (Object.assign without a target), so set fields.
  const attr = new PKCS12Attribute();
  attr.attrId = oid;
  attr.attrValues = [ab(valueDer)];
  return attr;
}

/** localKeyId and optional friendlyName, ordered by encoding as DER requires of a SET OF. */
function bagAttributes(localKeyId: Buffer, friendlyName: string | undefined): PKCS12Attribute[] {
  const attrs = [attribute(OIDS.localKeyId, octetString(localKeyId))];
  if (friendlyName !== undefined) {
    attrs.push(attribute(OIDS.friendlyName, tlv(0x1e, Buffer.from(friendlyName, 'utf16le').swap16()))); // BMPString
  }
  const encoded = attrs.map((a) => ({ a, der: Buffer.from(AsnConvert.serialize(a)) }));
  encoded.sort((x, y) => Buffer.compare(x.der, y.der));
  return encoded.map((e) => e.a);
}

/** ContentInfo { contentType, [0] EXPLICIT content }. */
const contentInfo = (type: string, content: Buffer): Buffer => sequence(objectIdentifier(type), contextExplicit(0, content));

// --- validation ---------------------------------------------------------------------------------

function checkIterations(n: number | undefined): void {
  if (n === undefined) return;
  if (!Number.isSafeInteger(n) || n < 1 || n > MAX_ITERATIONS) {
    throw new SignetError('bad-request', `PKCS#12 iteration count must be an integer from 1 to ${MAX_ITERATIONS}`);
  }
}

function checkText(what: string, s: string): void {
  if (s.includes('\u0000')) throw new SignetError('bad-request', `PKCS#12 ${what} must not contain NUL characters`);
  // A lone surrogate has no UTF-8 form, so the MAC (UTF-16) and PBES2 (UTF-8) would disagree.
  if (/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s)) {
    throw new SignetError('bad-request', `PKCS#12 ${what} is not well-formed Unicode`);
  }
}

// --- the PFX ------------------------------------------------------------------------------------

/** Builds a password-protected PKCS#12 file (DER) holding the private key and certificates. */
export function buildPkcs12(opts: Pkcs12Options): Buffer {
  const { privateKey, certificates, password, friendlyName } = opts;
  if (privateKey.type !== 'private') throw new SignetError('bad-key', 'PKCS#12 export needs a private key');
  if (certificates.length === 0) throw new SignetError('bad-request', 'PKCS#12 export needs at least the leaf certificate');
  if (password.length === 0) throw new SignetError('bad-request', 'PKCS#12 password must not be empty');
  checkText('password', password);
  if (friendlyName !== undefined) checkText('friendly name', friendlyName);
  checkIterations(opts.iterations);
  const pbkdf2Iterations = opts.iterations ?? DEFAULT_PBKDF2_ITERATIONS;
  const macIterations = opts.iterations ?? DEFAULT_MAC_ITERATIONS;

  const parsed = certificates.map((der, i) => {
    try {
      return new X509Certificate(der);
    } catch (e) {
      throw new SignetError('bad-request', `PKCS#12 certificate ${i} is not a DER X.509 certificate`, { cause: e });
    }
  });
  if (!parsed[0]!.checkPrivateKey(privateKey)) {
    throw new SignetError('bad-key', 'the private key does not match the first (leaf) certificate');
  }

  const passwordUtf8 = Buffer.from(password, 'utf8');
  const localKeyId = createHash('sha1').update(certificates[0]!).digest();
  const leafAttributes = bagAttributes(localKeyId, friendlyName);

  // Key: PrivateKeyInfo → PBES2 → EncryptedPrivateKeyInfo in a pkcs8ShroudedKeyBag.
  const keyInfo = privateKey.export({ format: 'der', type: 'pkcs8' });
  const keyEnc = pbes2Encrypt(keyInfo, passwordUtf8, pbkdf2Iterations);
  keyInfo.fill(0);
  const epki = new EncryptedPrivateKeyInfo({
    encryptionAlgorithm: AsnConvert.parse(keyEnc.algorithm, AlgorithmIdentifier),
    encryptedData: new Pkcs8EncryptedData(ab(keyEnc.ciphertext)),
  });
  const keyBag = new SafeBag({ bagId: id_pkcs8ShroudedKeyBag, bagValue: AsnConvert.serialize(epki), bagAttributes: leafAttributes });
  const keySafe = Buffer.from(AsnConvert.serialize(new SafeContents([keyBag])));

  // Certificates: certBags in a SafeContents, PBES2-encrypted as CMS EncryptedData.
  const certBags = certificates.map((der, i) => {
    const bag = new CertBag({ certId: id_x509Certificate, certValue: ab(octetString(der)) });
    return new SafeBag({
      bagId: id_certBag,
      bagValue: AsnConvert.serialize(bag),
      ...(i === 0 ? { bagAttributes: leafAttributes } : {}),
    });
  });
  const certSafe = Buffer.from(AsnConvert.serialize(new SafeContents(certBags)));
  const certEnc = pbes2Encrypt(certSafe, passwordUtf8, pbkdf2Iterations);
  // EncryptedData { version 0, EncryptedContentInfo { data, algorithm, [0] IMPLICIT OCTET STRING } }
  const encryptedData = sequence(smallInteger(0), sequence(objectIdentifier(OIDS.data), certEnc.algorithm, tlv(0x80, certEnc.ciphertext)));

  const authenticatedSafe = sequence(contentInfo(OIDS.encryptedData, encryptedData), contentInfo(OIDS.data, octetString(keySafe)));

  // MAC: HMAC-SHA256 over the AuthenticatedSafe, keyed by the PKCS#12 KDF (ID 3).
  const macSalt = randomBytes(SALT_LENGTH);
  const macKey = pkcs12Kdf({
    passwordBytes: pkcs12PasswordBytes(password),
    salt: macSalt,
    id: 3,
    iterations: macIterations,
    length: 32,
    hash: 'sha256',
  });
  const mac = createHmac('sha256', macKey).update(authenticatedSafe).digest();
  macKey.fill(0);

  const macData = new MacData({
    mac: new DigestInfo({
      digestAlgorithm: new AlgorithmIdentifier({ algorithm: OIDS.sha256, parameters: ab(DER_NULL) }),
      digest: new OctetString(ab(mac)),
    }),
    macSalt: new OctetString(ab(macSalt)),
    iterations: macIterations,
  });
  const macDataDer = Buffer.from(AsnConvert.serialize(macData));

  // PFX { version 3, authSafe, macData }. authSafe is an @peculiar/asn1-cms ContentInfo, so the
  // PFX class is not used: the DER is spliced together instead.
  return sequence(smallInteger(3), contentInfo(OIDS.data, octetString(authenticatedSafe)), macDataDer);
}
