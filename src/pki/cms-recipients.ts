/**
 * CMS EnvelopedData (RFC 5652 §6) for key groups: AES-256-CBC content under a fresh
 * content-encryption key (CEK), delivered to any mix of recipients. Pure: no I/O.
 *
 *   ktri  (RecipientInfo untagged SEQUENCE, version 0) — RSA 2048–8192 certificates:
 *         RSAES-OAEP, SHA-256 and MGF1-SHA-256 (RFC 4055 §3.1, RFC 8017), rid IssuerAndSerialNumber.
 *   kari  ([1], version 3) — ECDSA P-256 / P-384 certificates (RFC 5753 §3.1, RFC 5652 §6.2.2):
 *         ephemeral-static ECDH, originator [0] { [1] OriginatorPublicKey }, keyEncryptionAlgorithm
 *         dhSinglePass-stdDH-sha256kdf-scheme (P-256) or -sha384kdf-scheme (P-384) with parameter
 *         id-aes256-wrap; KEK = ANSI X9.63 KDF(Z, ECC-CMS-SharedInfo); CEK wrapped per RFC 3394;
 *         one RecipientEncryptedKey with rid IssuerAndSerialNumber.
 *   kekri ([2], version 4) — pre-shared AES-256 keys (RFC 5652 §6.2.3): kekid { keyIdentifier },
 *         id-aes256-wrap (RFC 3565 §2.3.2: parameters absent).
 *   ori   ([4] OtherRecipientInfo, oriType id-ori-kem) — ML-KEM-768 certificates: KEMRecipientInfo
 *         (RFC 9629 §3) as RFC 9936 §2.1 sets it for ML-KEM-768: version 0, rid IssuerAndSerialNumber,
 *         kem id-alg-ml-kem-768 (parameters absent), kemct the 1,088-byte ML-KEM ciphertext, kdf
 *         id-alg-hkdf-with-sha256 (parameters absent, RFC 8619), kekLength 32, no ukm, wrap
 *         id-aes256-wrap. KEK = HKDF-SHA-256(salt "", IKM ss, info DER CMSORIforKEMOtherInfo
 *         { wrap, kekLength }, L 32) (RFC 9629 §5, RFC 9936 §2.2.1).
 *
 * P-384 uses the SHA-384 KDF (RFC 5008 / RFC 6318 pair P-384 with SHA-384; openssl cms accepts
 * either, see test/pki-cms-recipients.test.ts). RecipientInfos is emitted in DER order (sorted
 * by encoding, X.690 §11.6), as Signet's strict reader expects of every SET OF.
 *
 * Speed: a certificate is read (strict DER, no schema parse) and its key checked once, by
 * prepareRecipient; envelop takes the prepared form (or prepares on the fly, ≈ 25 µs). The
 * ephemeral key is a KeyObject (generateKeyPairSync, point read as JWK — node's SPKI export
 * costs ~100 µs) with diffieHellman: createECDH measured within noise of it on both curves on
 * this (loaded, 2-core) machine, so one code path, on keys public-key.ts already checked.
 */
import {
  constants,
  createCipheriv,
  createHash,
  createSecretKey,
  diffieHellman,
  encapsulate,
  generateKeyPairSync,
  hkdfSync,
  publicEncrypt,
  randomBytes,
  type KeyObject,
} from 'node:crypto';
import { SignetError } from '../errors.js';
import type { CONTENT_CIPHERS } from './cms-enveloped.js';
import { CMS_OID, CmsError, derSetOf } from './cms-signed.js';
import { checkDer, DerError, readEl, readKids } from './der-strict.js';
import { bitString, contextExplicit, objectIdentifier, octetString, sequence, smallInteger, tlv } from './der.js';
import { OID } from './keys.js';
import { PQ_BY_NAME } from './post-quantum.js';
import { importSpki, type PublicKeyInfo } from './public-key.js';

export const RECIPIENT_OID = {
  rsaesOaep: '1.2.840.113549.1.1.7',
  mgf1: '1.2.840.113549.1.1.8',
  sha256: '2.16.840.1.101.3.4.2.1',
  sha256kdf: '1.3.132.1.11.1',
  sha384kdf: '1.3.132.1.11.2',
  aes256Wrap: '2.16.840.1.101.3.4.1.45',
  aes256Cbc: '2.16.840.1.101.3.4.1.42' satisfies keyof typeof CONTENT_CIPHERS,
  /** id-ori-kem (RFC 9629 §3): the OtherRecipientInfo type of a KEMRecipientInfo. */
  oriKem: '1.2.840.113549.1.9.16.13.3',
  /** id-alg-hkdf-with-sha256 (RFC 8619 §2). */
  hkdfSha256: '1.2.840.113549.1.9.16.3.28',
} as const;

/** Largest KEKIdentifier keyIdentifier accepted (an identifier, not a payload). */
export const MAX_KEK_ID_BYTES = 64;

export type RecipientKeyKind = 'rsa-oaep' | 'ecdh-p256' | 'ecdh-p384' | 'ml-kem-768';

export type GroupRecipient =
  /** RSA → KeyTransRecipientInfo (OAEP-SHA-256); EC P-256/P-384 → KeyAgreeRecipientInfo; ML-KEM-768 → KEMRecipientInfo. */
  | { kind: 'certificate'; certificateDer: Uint8Array }
  /** A 32-byte AES-256 key and its identifier (1–64 bytes) → KEKRecipientInfo. */
  | { kind: 'kek'; keyId: Uint8Array; key: Uint8Array };

const DER_NULL = Buffer.from([0x05, 0x00]);
const AES_WRAP_IV = Buffer.from('a6a6a6a6a6a6a6a6', 'hex');
/** AlgorithmIdentifier id-aes256-wrap, parameters absent (RFC 3565 §2.3.2). */
const AES256_WRAP_ALG = sequence(objectIdentifier(RECIPIENT_OID.aes256Wrap));
/** RSAES-OAEP-params { sha256Identifier, mgf1SHA256Identifier } with NULL hash parameters (RFC 4055 §2.1, §4.1). */
const OAEP_SHA256_ALG = (() => {
  const sha256 = sequence(objectIdentifier(RECIPIENT_OID.sha256), DER_NULL);
  const mgf1 = sequence(objectIdentifier(RECIPIENT_OID.mgf1), sha256);
  return sequence(objectIdentifier(RECIPIENT_OID.rsaesOaep), sequence(contextExplicit(0, sha256), contextExplicit(1, mgf1)));
})();
/**
 * ECC-CMS-SharedInfo (RFC 5753 §7.2) for a 256-bit KEK: { keyInfo id-aes256-wrap, entityUInfo
 * absent (no ukm is sent), suppPubInfo [2] EXPLICIT OCTET STRING (00 00 01 00) }.
 */
const SHARED_INFO = sequence(AES256_WRAP_ALG, contextExplicit(2, octetString(Buffer.from([0, 0, 1, 0]))));
const ORIGINATOR_KEY_ALG = sequence(objectIdentifier(OID.ecPublicKey)); // parameters absent, as openssl writes them
const COUNTER_1 = Buffer.from([0, 0, 0, 1]);

/** KEMRecipientInfo's fixed parts for ML-KEM-768 (RFC 9936 §2.1): kem, kdf, kekLength 32 (AES-256). */
const ML_KEM_768_ALG = sequence(objectIdentifier(PQ_BY_NAME.get('ml-kem-768')!.oid)); // id-alg-ml-kem-768, the key's own OID (RFC 9936 §3)
const HKDF_SHA256_ALG = sequence(objectIdentifier(RECIPIENT_OID.hkdfSha256));
const KEK_LENGTH = 32;
const ORI_KEM = objectIdentifier(RECIPIENT_OID.oriKem);
/** CMSORIforKEMOtherInfo { wrap id-aes256-wrap, kekLength 32 } (RFC 9629 §5, no ukm): HKDF's info. */
const KEM_OTHER_INFO = sequence(AES256_WRAP_ALG, smallInteger(KEK_LENGTH));
const NO_SALT = Buffer.alloc(0);

interface Curve {
  kind: 'ecdh-p256' | 'ecdh-p384';
  namedCurve: 'P-256' | 'P-384';
  kdfHash: 'sha256' | 'sha384';
  /** KeyEncryptionAlgorithmIdentifier: the KDF scheme with KeyWrapAlgorithm id-aes256-wrap. */
  algorithmDer: Buffer;
}
const CURVES: Record<'ecdh-p256' | 'ecdh-p384', Curve> = {
  'ecdh-p256': {
    kind: 'ecdh-p256',
    namedCurve: 'P-256',
    kdfHash: 'sha256',
    algorithmDer: sequence(objectIdentifier(RECIPIENT_OID.sha256kdf), AES256_WRAP_ALG),
  },
  'ecdh-p384': {
    kind: 'ecdh-p384',
    namedCurve: 'P-384',
    kdfHash: 'sha384',
    algorithmDer: sequence(objectIdentifier(RECIPIENT_OID.sha384kdf), AES256_WRAP_ALG),
  },
};

const brand = Symbol('PreparedRecipient');

/** A recipient checked once and reusable across envelopes (see prepareRecipient). */
export interface PreparedRecipient {
  readonly [brand]: true;
  readonly kind: RecipientKeyKind | 'kek';
  /** IssuerAndSerialNumber (certificates) or KEKIdentifier (KEKs), DER. */
  readonly idDer: Buffer;
  /** The certificate's public key, or the KEK as a secret KeyObject. */
  readonly key: KeyObject;
}

const unsupported = (why: string): never => {
  throw new CmsError('unsupported', why);
};
const invalid = (why: string): never => {
  throw new CmsError('malformed', why);
};
const USE = 'key groups deliver to RSA 2048–8192 (RSAES-OAEP), ECDSA P-256/P-384 (ECDH) or ML-KEM-768 (KEMRecipientInfo) certificates';

/**
 * The IssuerAndSerialNumber and SubjectPublicKeyInfo of a certificate, read with the strict
 * reader (the whole certificate held to DER first). Not inspectCertificate: its schema parse
 * costs ~10× the rest of preparing a recipient. The certificate is not verified here; which
 * certificates are members is the caller's to decide.
 */
function readCertificate(der: Uint8Array): { idDer: Buffer; spki: Uint8Array } {
  try {
    checkDer(der);
    const cert = readEl(der, 0, der.length);
    const [tbs, signatureAlgorithm, signature, ...rest] = cert.tag === 0x30 && cert.end === der.length ? readKids(der, cert) : [];
    if (tbs?.tag !== 0x30 || signatureAlgorithm?.tag !== 0x30 || signature?.tag !== 0x03 || rest.length) throw new DerError('not an X.509 Certificate', 0);
    const fields = readKids(der, tbs);
    const i = fields[0]?.tag === 0xa0 ? 1 : 0;
    const [serial, , issuer, , , spki] = fields.slice(i);
    if (serial?.tag !== 0x02 || issuer?.tag !== 0x30 || spki?.tag !== 0x30) throw new DerError('not an X.509 TBSCertificate', tbs.start);
    // IssuerAndSerialNumber from the certificate's own encodings (openssl compares them so).
    return { idDer: sequence(der.subarray(issuer.start, issuer.end), der.subarray(serial.start, serial.end)), spki: der.subarray(spki.start, spki.end) };
  } catch (e) {
    if (e instanceof DerError) return invalid(`the recipient certificate cannot be read: ${e.message}`);
    throw e;
  }
}

const EC_UNCOMPRESSED = Buffer.from([4]);

function certificateKey(certificateDer: Uint8Array): { kind: RecipientKeyKind; idDer: Buffer; key: KeyObject } {
  const { idDer, spki } = readCertificate(certificateDer);
  let info: PublicKeyInfo;
  try {
    info = importSpki(spki);
  } catch (e) {
    if (e instanceof SignetError) return unsupported(`the recipient certificate's key cannot receive a key: ${e.message}; ${USE}`);
    throw e;
  }
  let kind: RecipientKeyKind;
  if (info.family === 'rsa')
    kind = 'rsa-oaep'; // importSpki refuses RSA below 2048 bits, naming the size
  else if (info.algorithm === 'ecdsa-p256') kind = 'ecdh-p256';
  else if (info.algorithm === 'ecdsa-p384') kind = 'ecdh-p384';
  else if (info.algorithm === 'ml-kem-768')
    kind = 'ml-kem-768'; // importSpki names ML-KEM-512/1024 and refuses them
  else if (info.family === 'ml-dsa' || info.family === 'slh-dsa')
    return unsupported(
      `the recipient certificate has an ${PQ_BY_NAME.get(info.algorithm)?.label ?? info.algorithm} key, which only signs (no key encapsulation); ${USE}`,
    );
  else if (info.family === 'ed25519')
    return unsupported(`the recipient certificate has an Ed25519 key, which only signs (no key agreement or transport); ${USE}`);
  else return unsupported(`the recipient certificate has an ECDSA P-${info.bits} key; ${USE}`);
  return { kind, idDer, key: info.key };
}

/**
 * The kind of key delivery a certificate's key allows; throws CmsError('unsupported') naming the
 * key for any other (Ed25519, X25519, P-521, RSA below 2048 bits, DSA…), CmsError('malformed')
 * when it is not a certificate.
 */
export function recipientKeyKind(certificateDer: Uint8Array): RecipientKeyKind {
  return certificateKey(certificateDer).kind;
}

/** Checks and parses a recipient once (certificate parsed, key imported; KEK length checked), for many envelopes. */
export function prepareRecipient(r: GroupRecipient): PreparedRecipient {
  if (r.kind === 'certificate') return { [brand]: true, ...certificateKey(r.certificateDer) };
  if (r.kind !== 'kek') return invalid(`unknown recipient kind ${String((r as { kind: unknown }).kind)}`);
  if (r.key.length !== 32) invalid(`a KEK recipient's key must be 32 bytes (AES-256), not ${r.key.length}`);
  if (r.keyId.length === 0) invalid('a KEK recipient needs a non-empty key identifier');
  if (r.keyId.length > MAX_KEK_ID_BYTES) invalid(`a KEK recipient's key identifier is ${r.keyId.length} bytes; at most ${MAX_KEK_ID_BYTES}`);
  return { [brand]: true, kind: 'kek', idDer: sequence(octetString(r.keyId)), key: createSecretKey(r.key) };
}

const isPrepared = (r: GroupRecipient | PreparedRecipient): r is PreparedRecipient => (r as PreparedRecipient)[brand] === true;

/** RFC 3394 AES key wrap of the CEK under a 256-bit KEK. */
function aesWrap(kek: KeyObject | Buffer, cek: Buffer): Buffer {
  const c = createCipheriv('id-aes256-wrap', kek, AES_WRAP_IV);
  return Buffer.concat([c.update(cek), c.final()]);
}

function keyTrans(r: PreparedRecipient, cek: Buffer): Buffer {
  const encryptedKey = publicEncrypt({ key: r.key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, cek);
  return sequence(smallInteger(0), r.idDer, OAEP_SHA256_ALG, octetString(encryptedKey));
}

function keyAgree(r: PreparedRecipient, cek: Buffer): Buffer {
  const curve = CURVES[r.kind as 'ecdh-p256' | 'ecdh-p384'];
  // A fresh ephemeral key per envelope, dropped here.
  const eph = generateKeyPairSync('ec', { namedCurve: curve.namedCurve });
  const z = diffieHellman({ privateKey: eph.privateKey, publicKey: r.key });
  const jwk = eph.publicKey.export({ format: 'jwk' });
  const point = Buffer.concat([EC_UNCOMPRESSED, Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
  // ANSI X9.63 KDF (SEC 1 §3.6.1): Hash(Z ‖ counter ‖ SharedInfo), one block is ≥ 32 bytes.
  const digest = createHash(curve.kdfHash).update(z).update(COUNTER_1).update(SHARED_INFO).digest();
  const kek = digest.subarray(0, 32);
  z.fill(0);
  let wrapped: Buffer;
  try {
    wrapped = aesWrap(kek, cek);
  } finally {
    digest.fill(0);
  }
  const originator = contextExplicit(0, tlv(0xa1, ORIGINATOR_KEY_ALG, bitString(point)));
  const rek = sequence(r.idDer, octetString(wrapped));
  return tlv(0xa1, smallInteger(3), originator, curve.algorithmDer, sequence(rek));
}

/**
 * OtherRecipientInfo [4] { id-ori-kem, KEMRecipientInfo }: a fresh encapsulation per envelope
 * (RFC 9629 §7: never reuse the shared secret), the KEK derived by HKDF and dropped here.
 */
function kemRecipient(r: PreparedRecipient, cek: Buffer): Buffer {
  const { sharedKey, ciphertext } = encapsulate(r.key);
  const kek = Buffer.from(hkdfSync('sha256', sharedKey, NO_SALT, KEM_OTHER_INFO, KEK_LENGTH));
  sharedKey.fill(0);
  let wrapped: Buffer;
  try {
    wrapped = aesWrap(kek, cek);
  } finally {
    kek.fill(0);
  }
  const kemri = sequence(
    smallInteger(0),
    r.idDer,
    ML_KEM_768_ALG,
    octetString(ciphertext),
    HKDF_SHA256_ALG,
    smallInteger(KEK_LENGTH),
    AES256_WRAP_ALG,
    octetString(wrapped),
  );
  return tlv(0xa4, ORI_KEM, kemri);
}

function kekRecipient(r: PreparedRecipient, cek: Buffer): Buffer {
  return tlv(0xa2, smallInteger(4), r.idDer, AES256_WRAP_ALG, octetString(aesWrap(r.key, cek)));
}

const RECIPIENT_INFO: Record<PreparedRecipient['kind'], (r: PreparedRecipient, cek: Buffer) => Buffer> = {
  kek: kekRecipient,
  'rsa-oaep': keyTrans,
  'ecdh-p256': keyAgree,
  'ecdh-p384': keyAgree,
  'ml-kem-768': kemRecipient,
};

/**
 * A DER ContentInfo(EnvelopedData) of `content` (type id-data) for every recipient (at least
 * one): AES-256-CBC under a fresh CEK, which is zeroed before returning. Throws CmsError:
 * 'unsupported' for a certificate key that cannot receive, 'malformed' for a bad input.
 */
export function envelop(content: Uint8Array, recipients: readonly (GroupRecipient | PreparedRecipient)[]): Buffer {
  if (recipients.length === 0) invalid('an envelope needs at least one recipient');
  const prepared = recipients.map((r) => (isPrepared(r) ? r : prepareRecipient(r)));
  const secret = randomBytes(48);
  const cek = secret.subarray(0, 32);
  const iv = secret.subarray(32);
  try {
    const infos = prepared.map((r) => RECIPIENT_INFO[r.kind](r, cek));
    const c = createCipheriv('aes-256-cbc', cek, iv);
    const encrypted = Buffer.concat([c.update(content), c.final()]);
    // RFC 5652 §6.1 (no originatorInfo, no unprotectedAttrs): 3 if any RecipientInfo is ori,
    // else 0 if every one is version 0 (ktri only), else 2.
    const version = prepared.some((r) => r.kind === 'ml-kem-768') ? 3 : prepared.every((r) => r.kind === 'rsa-oaep') ? 0 : 2;
    const eci = sequence(objectIdentifier(CMS_OID.data), sequence(objectIdentifier(RECIPIENT_OID.aes256Cbc), octetString(iv)), tlv(0x80, encrypted));
    const env = sequence(smallInteger(version), derSetOf(infos), eci);
    return sequence(objectIdentifier(CMS_OID.envelopedData), contextExplicit(0, env));
  } finally {
    secret.fill(0);
  }
}
