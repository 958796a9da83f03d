/**
 * CMS EnvelopedData (RFC 5652 §6) with key-transport recipients (RSA PKCS#1 v1.5, RSAES-OAEP):
 * read and decrypt, encrypt to one certificate. Pure: the private key operation is a callback
 * (the key store's decrypt), never a key.
 *
 *   EnvelopedData ::= SEQUENCE { version, originatorInfo [0] IMPLICIT OPTIONAL,
 *     recipientInfos SET OF RecipientInfo, encryptedContentInfo SEQUENCE { contentType,
 *     contentEncryptionAlgorithm, encryptedContent [0] IMPLICIT OCTET STRING OPTIONAL },
 *     unprotectedAttrs [1] IMPLICIT OPTIONAL }
 *   KeyTransRecipientInfo ::= SEQUENCE { version 0|2, rid (IssuerAndSerialNumber |
 *     [0] SubjectKeyIdentifier), keyEncryptionAlgorithm, encryptedKey OCTET STRING }
 *
 * Content ciphers: AES-128/192/256-CBC, DES-EDE3-CBC (node:crypto), and single DES-CBC for
 * decryption only (des.ts: micromdm's scepclient 2.1 sends nothing else).
 */
import { constants, createCipheriv, createDecipheriv, publicEncrypt, randomBytes, type KeyObject } from 'node:crypto';
import { CMS_OID, CmsError, readContentInfo } from './cms-signed.js';
import { DerError, readKids, strictOid, type El } from './der-strict.js';
import { contextExplicit, objectIdentifier, octetString, sequence, set, smallInteger, tlv, unsignedInteger } from './der.js';
import { desCbcDecrypt } from './des.js';

/** How the content-encryption key was wrapped, as the key store's decrypt takes it. */
export type RsaPadding = { scheme: 'pkcs1' } | { scheme: 'oaep'; hash: 'sha1' | 'sha256' | 'sha384' | 'sha512' };

export const CONTENT_CIPHERS = {
  '2.16.840.1.101.3.4.1.2': { name: 'aes-128-cbc', keyLength: 16 },
  '2.16.840.1.101.3.4.1.22': { name: 'aes-192-cbc', keyLength: 24 },
  '2.16.840.1.101.3.4.1.42': { name: 'aes-256-cbc', keyLength: 32 },
  '1.2.840.113549.3.7': { name: 'des-ede3-cbc', keyLength: 24 },
  '1.3.14.3.2.7': { name: 'des-cbc', keyLength: 8 },
} as const satisfies Record<string, { name: string; keyLength: number }>;
export type ContentCipher = (typeof CONTENT_CIPHERS)[keyof typeof CONTENT_CIPHERS]['name'];
const CIPHER_OID = Object.fromEntries(Object.entries(CONTENT_CIPHERS).map(([oid, c]) => [c.name, oid])) as Record<ContentCipher, string>;

const RSA_ENCRYPTION = '1.2.840.113549.1.1.1';
/**
 * Largest single-DES content decrypted. des.ts runs on the event loop at about 10 ms per KiB,
 * and anyone can send a DES envelope before any challenge is checked: 2 KiB bounds one message
 * to about 20 ms. micromdm's requests (the one client that uses DES) are about 1 KiB.
 */
export const MAX_DES_BYTES = 2 * 1024;
const RSAES_OAEP = '1.2.840.113549.1.1.7';
const OAEP_HASHES: Record<string, 'sha1' | 'sha256' | 'sha384' | 'sha512'> = {
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};

export interface KeyTransRecipient {
  issuerNameDer?: Buffer;
  serial?: Buffer;
  subjectKeyId?: Buffer;
  padding: RsaPadding;
  encryptedKey: Buffer;
}

export interface EnvelopedView {
  recipients: KeyTransRecipient[];
  /** Recipients Signet cannot use (key agreement, KEK, password): their CHOICE tags. */
  otherRecipients: number;
  contentType: string;
  cipherOid: string;
  cipher: ContentCipher | null;
  iv: Buffer | null;
  encryptedContent: Buffer;
}

const malformed = (why: string): never => {
  throw new CmsError('malformed', why);
};

/** Reads a ContentInfo holding EnvelopedData; throws CmsError('malformed'). */
export function parseEnvelopedData(der: Uint8Array): EnvelopedView {
  const { buf, content } = readContentInfo(der, CMS_OID.envelopedData);
  try {
    if (content.tag !== 0x30) malformed('EnvelopedData is not a SEQUENCE');
    const parts = readKids(buf, content);
    let i = 0;
    if (parts[i++]?.tag !== 0x02) malformed('EnvelopedData has no version');
    if (parts[i]?.tag === 0xa0) i++; // originatorInfo: certificates Signet does not need
    const infos = parts[i++];
    if (infos?.tag !== 0x31) malformed('EnvelopedData has no recipientInfos SET');
    const recipients: KeyTransRecipient[] = [];
    let otherRecipients = 0;
    for (const r of readKids(buf, infos!)) {
      if (r.tag !== 0x30) {
        otherRecipients++;
        continue;
      }
      recipients.push(readKeyTrans(buf, r));
    }
    const eci = parts[i++];
    if (eci?.tag !== 0x30) malformed('EnvelopedData has no encryptedContentInfo');
    if (parts[i]?.tag === 0xa1) i++;
    if (i !== parts.length) malformed('EnvelopedData has extra fields');
    const [type, alg, enc, ...rest] = readKids(buf, eci!);
    if (rest.length) malformed('encryptedContentInfo has extra fields');
    const contentType = strictOid(buf, type!) ?? malformed('encryptedContentInfo has no contentType');
    if (alg?.tag !== 0x30) malformed('encryptedContentInfo has no contentEncryptionAlgorithm');
    const [algOid, params] = readKids(buf, alg!);
    const cipherOid = (algOid && strictOid(buf, algOid)) ?? malformed('the contentEncryptionAlgorithm has no OID');
    const cipher = (CONTENT_CIPHERS as Record<string, { name: ContentCipher }>)[cipherOid]?.name ?? null;
    const iv = params?.tag === 0x04 ? buf.subarray(params.body, params.end) : null;
    let encryptedContent: Buffer;
    if (!enc) encryptedContent = malformed('the encrypted content is absent (detached)');
    else if (enc.tag === 0x80) encryptedContent = buf.subarray(enc.body, enc.end);
    else if (enc.tag === 0xa0) {
      // The constructed form (Go's pkcs7 writes it): OCTET STRING segments, concatenated.
      const segments = readKids(buf, enc);
      if (segments.some((s) => s.tag !== 0x04)) malformed('the constructed encrypted content holds something other than OCTET STRINGs');
      encryptedContent = Buffer.concat(segments.map((s) => buf.subarray(s.body, s.end)));
    } else encryptedContent = malformed('the encrypted content is not [0]');
    return { recipients, otherRecipients, contentType, cipherOid, cipher, iv, encryptedContent };
  } catch (e) {
    if (e instanceof DerError) return malformed(`not DER: ${e.message}`);
    throw e;
  }
}

function readKeyTrans(buf: Buffer, r: El): KeyTransRecipient {
  const [version, rid, alg, key, ...rest] = readKids(buf, r);
  if (rest.length || version?.tag !== 0x02 || !rid || !alg || alg.tag !== 0x30 || key?.tag !== 0x04) malformed('a KeyTransRecipientInfo is malformed');
  const out: Partial<KeyTransRecipient> = { encryptedKey: buf.subarray(key!.body, key!.end) };
  if (rid!.tag === 0x30) {
    const [issuer, serial, ...more] = readKids(buf, rid!);
    if (more.length || issuer?.tag !== 0x30 || serial?.tag !== 0x02) malformed('a recipient IssuerAndSerialNumber is malformed');
    out.issuerNameDer = buf.subarray(issuer!.start, issuer!.end);
    out.serial = buf.subarray(serial!.body, serial!.end);
  } else if (rid!.tag === 0x80) out.subjectKeyId = buf.subarray(rid!.body, rid!.end);
  else malformed('a recipient identifier is neither IssuerAndSerialNumber nor SubjectKeyIdentifier');
  const [algOid, params] = readKids(buf, alg!);
  const oid = (algOid && strictOid(buf, algOid)) ?? malformed('a keyEncryptionAlgorithm has no OID');
  if (oid === RSA_ENCRYPTION) out.padding = { scheme: 'pkcs1' };
  else if (oid === RSAES_OAEP) out.padding = { scheme: 'oaep', hash: oaepHash(buf, params) };
  else throw new CmsError('unsupported', `key encryption algorithm ${oid} is not supported (RSA PKCS#1 v1.5 and RSAES-OAEP are)`);
  return out as KeyTransRecipient;
}

/** RSAES-OAEP-params (RFC 4055 §4.1): the hash, which must also be MGF1's; absent means SHA-1. */
function oaepHash(buf: Buffer, params: El | undefined): 'sha1' | 'sha256' | 'sha384' | 'sha512' {
  if (!params || params.tag === 0x05) return 'sha1';
  if (params.tag !== 0x30) return malformed('RSAES-OAEP parameters are not a SEQUENCE');
  let hash: 'sha1' | 'sha256' | 'sha384' | 'sha512' = 'sha1';
  let mgfHash: string = 'sha1';
  for (const f of readKids(buf, params)) {
    if (f.tag === 0xa0) {
      const [alg] = readKids(buf, f);
      const [oid] = alg?.tag === 0x30 ? readKids(buf, alg) : [];
      const h = oid ? OAEP_HASHES[strictOid(buf, oid) ?? ''] : undefined;
      if (!h) throw new CmsError('unsupported', 'the RSAES-OAEP hash is not supported (SHA-1 and SHA-2 are)');
      hash = h;
    } else if (f.tag === 0xa1) {
      const [alg] = readKids(buf, f);
      const [, inner] = alg?.tag === 0x30 ? readKids(buf, alg) : [];
      const [oid] = inner?.tag === 0x30 ? readKids(buf, inner) : [];
      mgfHash = (oid && OAEP_HASHES[strictOid(buf, oid) ?? '']) || 'unknown';
    } else if (f.tag === 0xa2) {
      throw new CmsError('unsupported', 'RSAES-OAEP with a label (pSourceAlgorithm) is not supported');
    }
  }
  if (mgfHash !== hash) throw new CmsError('unsupported', 'RSAES-OAEP with an MGF1 hash other than its own hash is not supported');
  return hash;
}

/**
 * Decrypts the content for the recipient `ours` picks (the RA certificate's IssuerAndSerial or
 * key id): `unwrap` is the key store's RSA decrypt. Every failure is a CmsError; every failure
 * to decrypt (the key unwrap, its length, the content, its padding) is the same 'signature'-class
 * error with the same text (ENVELOPE_DOES_NOT_DECRYPT), never a crash.
 */
export async function decryptEnveloped(
  env: EnvelopedView,
  ours: (r: KeyTransRecipient) => boolean,
  unwrap: (encryptedKey: Buffer, padding: RsaPadding) => Promise<Buffer>,
): Promise<Buffer> {
  const recipient = env.recipients.find(ours);
  if (!recipient)
    throw new CmsError(
      'malformed',
      env.recipients.length || env.otherRecipients
        ? 'the envelope is not encrypted to this server’s RA certificate (fetch GetCACert again)'
        : 'the envelope has no recipients',
    );
  if (!env.cipher) throw new CmsError('unsupported', `content encryption algorithm ${env.cipherOid} is not supported (AES-CBC, DES-EDE3-CBC, DES-CBC are)`);
  const spec = Object.values(CONTENT_CIPHERS).find((c) => c.name === env.cipher)!;
  // The software DES runs at ≈ 0.3 MB/s on the event loop: a request's CSR needs a few KB.
  if (spec.name === 'des-cbc' && env.encryptedContent.length > MAX_DES_BYTES)
    throw new CmsError('malformed', `a DES-CBC envelope of ${env.encryptedContent.length} bytes; at most ${MAX_DES_BYTES} are decrypted with single DES`);
  if (!env.iv || env.iv.length !== (spec.name.startsWith('aes') ? 16 : 8))
    throw new CmsError('malformed', `the ${spec.name} IV is missing or has the wrong length`);
  // Every way the envelope fails to decrypt — the wrapped key does not unwrap, unwraps to a key
  // of the wrong length (PKCS#1 v1.5 implicit rejection gives random bytes of random length), or
  // the content does not decrypt or its padding is wrong — is one CmsError with one text, and
  // takes one path: a key that cannot be right is replaced by a random one of the cipher's length
  // and the content is decrypted all the same, so neither the answer nor the work done tells a
  // sender which step failed (no padding oracle on the RA key).
  let unwrapped: Buffer | null = null;
  try {
    unwrapped = await unwrap(recipient.encryptedKey, recipient.padding);
  } catch {
    unwrapped = null;
  }
  const good = unwrapped !== null && unwrapped.length === spec.keyLength;
  const key = good ? unwrapped! : randomBytes(spec.keyLength);
  try {
    let content: Buffer;
    if (spec.name === 'des-cbc') content = desCbcDecrypt(key, env.iv, env.encryptedContent);
    else {
      const d = createDecipheriv(spec.name, key, env.iv);
      content = Buffer.concat([d.update(env.encryptedContent), d.final()]);
    }
    if (good) return content;
  } catch {
    // the same refusal as below
  } finally {
    key.fill(0);
    unwrapped?.fill(0);
  }
  throw new CmsError('signature', ENVELOPE_DOES_NOT_DECRYPT);
}

/** The one answer to every envelope that does not decrypt (see decryptEnveloped). */
export const ENVELOPE_DOES_NOT_DECRYPT = 'the envelope does not decrypt with the RA key (tampered, or not encrypted to this RA)';

/**
 * A DER ContentInfo holding EnvelopedData: `content` (of type id-data) encrypted with a fresh
 * key under `cipher`, the key wrapped with RSA PKCS#1 v1.5 to one recipient certificate.
 */
export function encryptEnveloped(
  content: Buffer,
  recipient: { issuerNameDer: Buffer; serial: Buffer; publicKey: KeyObject },
  cipher: Exclude<ContentCipher, 'des-cbc'> = 'aes-256-cbc',
): Buffer {
  if (recipient.publicKey.asymmetricKeyType !== 'rsa')
    throw new CmsError(
      'unsupported',
      `the reply can only be encrypted to an RSA certificate (key transport); the requester's key is ${recipient.publicKey.asymmetricKeyType}`,
    );
  const spec = Object.values(CONTENT_CIPHERS).find((c) => c.name === cipher)!;
  const key = randomBytes(spec.keyLength);
  const iv = randomBytes(cipher.startsWith('aes') ? 16 : 8);
  const c = createCipheriv(cipher, key, iv);
  const encrypted = Buffer.concat([c.update(content), c.final()]);
  const wrapped = publicEncrypt({ key: recipient.publicKey, padding: constants.RSA_PKCS1_PADDING }, key);
  key.fill(0);
  const ktri = sequence(
    smallInteger(0),
    sequence(recipient.issuerNameDer, unsignedInteger(recipient.serial)),
    sequence(objectIdentifier(RSA_ENCRYPTION), Buffer.from([0x05, 0x00])),
    octetString(wrapped),
  );
  const eci = sequence(objectIdentifier(CMS_OID.data), sequence(objectIdentifier(CIPHER_OID[cipher]), octetString(iv)), tlv(0x80, encrypted));
  const env = sequence(smallInteger(0), set(ktri), eci);
  return sequence(objectIdentifier(CMS_OID.envelopedData), contextExplicit(0, env));
}
