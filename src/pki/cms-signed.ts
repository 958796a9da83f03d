/**
 * CMS SignedData (RFC 5652 §5) with signed attributes: read, verify one signer, build. Pure: no
 * I/O; signing goes through a Signer (the key store's), verification through node:crypto.
 *
 * Read with der-strict.ts (Signet's one DER reader: definite minimal lengths, single-byte tags)
 * after a whole-message checkDer, which also bounds the nesting depth before anything walks it.
 * CMS allows BER (RFC 5652 §1), but the SCEP clients measured here (micromdm scepclient,
 * strongSwan pki, openssl cms without -stream) send DER; an indefinite-length message is refused
 * as malformed rather than read by a second, laxer parser.
 *
 *   ContentInfo ::= SEQUENCE { contentType OID, content [0] EXPLICIT ANY }
 *   SignedData ::= SEQUENCE { version, digestAlgorithms SET, encapContentInfo
 *     SEQUENCE { eContentType OID, eContent [0] EXPLICIT OCTET STRING OPTIONAL },
 *     certificates [0] IMPLICIT SET OF Certificate OPTIONAL, crls [1] IMPLICIT OPTIONAL,
 *     signerInfos SET OF SignerInfo }
 *   SignerInfo ::= SEQUENCE { version, sid (IssuerAndSerialNumber | [0] SubjectKeyIdentifier),
 *     digestAlgorithm, signedAttrs [0] IMPLICIT SET OF Attribute OPTIONAL, signatureAlgorithm,
 *     signature OCTET STRING, unsignedAttrs [1] IMPLICIT OPTIONAL }
 */
import { createHash, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { checkDer, DerError, readEl, readKids, strictOid, type El } from './der-strict.js';
import { contextExplicit, objectIdentifier, octetString, sequence, set, smallInteger, tlv, unsignedInteger } from './der.js';
import type { Signer } from './keys.js';

export const CMS_OID = {
  data: '1.2.840.113549.1.7.1',
  signedData: '1.2.840.113549.1.7.2',
  envelopedData: '1.2.840.113549.1.7.3',
  contentType: '1.2.840.113549.1.9.3',
  messageDigest: '1.2.840.113549.1.9.4',
  signingTime: '1.2.840.113549.1.9.5',
} as const;

/** Why a CMS message was refused: it could not be read, uses an algorithm Signet does not, or does not verify. */
export class CmsError extends Error {
  constructor(
    readonly reason: 'malformed' | 'unsupported' | 'signature',
    message: string,
  ) {
    super(message);
    this.name = 'CmsError';
  }
}

/** Largest CMS message read: a SCEP request is a CSR, a certificate and some attributes. */
export const MAX_CMS_BYTES = 256 * 1024;

/** One element's view with its bytes, as the readers below hand it out. */
export interface SignerView {
  /** IssuerAndSerialNumber: the issuer Name (DER) and the serial's INTEGER content bytes. */
  issuerNameDer?: Buffer;
  serial?: Buffer;
  subjectKeyId?: Buffer;
  digestOid: string;
  /** The signed attributes as a DER SET (tag 0x31), what the signature covers; null without them. */
  signedAttrsDer: Buffer | null;
  /** attribute OID → its values (each a complete TLV). */
  attributes: Map<string, Buffer[]>;
  signatureOid: string;
  signature: Buffer;
}

export interface SignedDataView {
  eContentType: string;
  /** The encapsulated content's octets; null for a detached or degenerate message. */
  content: Buffer | null;
  certificates: Buffer[];
  crls: Buffer[];
  signers: SignerView[];
}

const malformed = (why: string): never => {
  throw new CmsError('malformed', why);
};

const slice = (buf: Buffer, e: El): Buffer => buf.subarray(e.start, e.end);
const body = (buf: Buffer, e: El): Buffer => buf.subarray(e.body, e.end);

function oidOf(buf: Buffer, e: El | undefined, what: string): string {
  const oid = e ? strictOid(buf, e) : null;
  if (oid === null) return malformed(`${what} is not an OBJECT IDENTIFIER`);
  return oid;
}

/**
 * The content of a ContentInfo of `expected` type: the element inside [0] EXPLICIT. Checks the
 * whole buffer is one DER element first (checkDer: DER rules and a depth limit).
 */
export function readContentInfo(der: Uint8Array, expected: string): { buf: Buffer; content: El } {
  const buf = Buffer.from(der.buffer, der.byteOffset, der.byteLength);
  if (buf.length > MAX_CMS_BYTES) malformed(`the CMS message is ${buf.length} bytes; at most ${MAX_CMS_BYTES} are read`);
  try {
    checkDer(buf);
    const top = readEl(buf, 0, buf.length);
    if (top.end !== buf.length) malformed('bytes follow the ContentInfo');
    if (top.tag !== 0x30) malformed('the ContentInfo is not a SEQUENCE');
    const [type, wrapped, ...rest] = readKids(buf, top);
    if (rest.length || !wrapped || wrapped.tag !== 0xa0) malformed('the ContentInfo has no [0] content');
    const ct = oidOf(buf, type, 'the contentType');
    if (ct !== expected) malformed(`the ContentInfo holds ${ct}, not ${expected}`);
    const inner = readKids(buf, wrapped!);
    if (inner.length !== 1) malformed('the ContentInfo content is not one element');
    return { buf, content: inner[0]! };
  } catch (e) {
    if (e instanceof DerError) return malformed(`not DER: ${e.message}`);
    throw e;
  }
}

function readAlgorithm(buf: Buffer, e: El | undefined, what: string): { oid: string; params: El | undefined } {
  if (e?.tag !== 0x30) return malformed(`${what} is not an AlgorithmIdentifier`);
  const [oid, params, ...rest] = readKids(buf, e);
  if (rest.length) malformed(`${what} has extra fields`);
  return { oid: oidOf(buf, oid, what), params };
}

/** Reads a ContentInfo holding SignedData. Throws CmsError('malformed') on anything unexpected. */
export function parseSignedData(der: Uint8Array): SignedDataView {
  const { buf, content } = readContentInfo(der, CMS_OID.signedData);
  try {
    if (content.tag !== 0x30) malformed('SignedData is not a SEQUENCE');
    const parts = readKids(buf, content);
    let i = 0;
    const version = parts[i++];
    if (version?.tag !== 0x02) malformed('SignedData has no version');
    const digests = parts[i++];
    if (digests?.tag !== 0x31) malformed('SignedData has no digestAlgorithms SET');
    const encap = parts[i++];
    if (encap?.tag !== 0x30) malformed('SignedData has no encapContentInfo');
    const [eType, eWrapped, ...eRest] = readKids(buf, encap!);
    if (eRest.length) malformed('encapContentInfo has extra fields');
    const eContentType = oidOf(buf, eType, 'eContentType');
    let eContent: Buffer | null = null;
    if (eWrapped) {
      if (eWrapped.tag !== 0xa0) malformed('eContent is not [0]');
      const os = readKids(buf, eWrapped);
      if (os.length !== 1 || os[0]!.tag !== 0x04) malformed('eContent is not one OCTET STRING');
      eContent = body(buf, os[0]!);
    }
    const certificates: Buffer[] = [];
    const crls: Buffer[] = [];
    if (parts[i]?.tag === 0xa0) for (const c of readKids(buf, parts[i++]!)) certificates.push(slice(buf, c));
    if (parts[i]?.tag === 0xa1) for (const c of readKids(buf, parts[i++]!)) crls.push(slice(buf, c));
    const infos = parts[i++];
    if (infos?.tag !== 0x31 || i !== parts.length) malformed('SignedData has no signerInfos SET at its end');
    const signers = readKids(buf, infos!).map((s) => readSignerInfo(buf, s));
    return { eContentType, content: eContent, certificates, crls, signers };
  } catch (e) {
    if (e instanceof DerError) return malformed(`not DER: ${e.message}`);
    throw e;
  }
}

function readSignerInfo(buf: Buffer, e: El): SignerView {
  if (e.tag !== 0x30) malformed('a SignerInfo is not a SEQUENCE');
  const parts = readKids(buf, e);
  let i = 0;
  if (parts[i++]?.tag !== 0x02) malformed('a SignerInfo has no version');
  const sid = parts[i++];
  const view: Partial<SignerView> = {};
  if (sid?.tag === 0x30) {
    const [issuer, serial, ...rest] = readKids(buf, sid);
    if (rest.length || !issuer || issuer.tag !== 0x30 || !serial || serial.tag !== 0x02) malformed('a SignerInfo sid is not an IssuerAndSerialNumber');
    view.issuerNameDer = slice(buf, issuer!);
    view.serial = body(buf, serial!);
  } else if (sid?.tag === 0x80) {
    view.subjectKeyId = body(buf, sid);
  } else malformed('a SignerInfo has no signer identifier');
  const digestOid = readAlgorithm(buf, parts[i++], 'the digestAlgorithm').oid;
  let signedAttrsDer: Buffer | null = null;
  const attributes = new Map<string, Buffer[]>();
  if (parts[i]?.tag === 0xa0) {
    const attrs = parts[i++]!;
    // The signature covers the attributes as a SET (RFC 5652 §5.4): the same bytes, tag 0x31.
    signedAttrsDer = Buffer.concat([Buffer.from([0x31]), buf.subarray(attrs.start + 1, attrs.end)]);
    for (const a of readKids(buf, attrs)) {
      if (a.tag !== 0x30) malformed('a signed attribute is not a SEQUENCE');
      const [type, values, ...rest] = readKids(buf, a);
      if (rest.length || !values || values.tag !== 0x31) malformed('a signed attribute has no SET of values');
      const oid = oidOf(buf, type, 'an attribute type');
      if (attributes.has(oid)) malformed(`the signed attribute ${oid} appears twice`);
      attributes.set(
        oid,
        readKids(buf, values!).map((v) => slice(buf, v)),
      );
    }
  }
  const signatureOid = readAlgorithm(buf, parts[i++], 'the signatureAlgorithm').oid;
  const sig = parts[i++];
  if (sig?.tag !== 0x04) malformed('a SignerInfo has no signature OCTET STRING');
  if (parts[i]?.tag === 0xa1) i++;
  if (i !== parts.length) malformed('a SignerInfo has extra fields');
  return { ...view, digestOid, signedAttrsDer, attributes, signatureOid, signature: body(buf, sig!) } as SignerView;
}

const DIGESTS: Record<string, string> = {
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
  '2.16.840.1.101.3.4.2.4': 'sha224',
};
export const DIGEST_OID = {
  sha1: '1.3.14.3.2.26',
  sha256: '2.16.840.1.101.3.4.2.1',
  sha384: '2.16.840.1.101.3.4.2.2',
  sha512: '2.16.840.1.101.3.4.2.3',
} as const;

/** Signature algorithm → [key family, hash or null when the digestAlgorithm decides]. */
const SIGNATURES: Record<string, ['rsa' | 'ec', string | null]> = {
  '1.2.840.113549.1.1.1': ['rsa', null], // rsaEncryption: the hash is the digestAlgorithm (RFC 3370 §3.2)
  '1.2.840.113549.1.1.5': ['rsa', 'sha1'],
  '1.2.840.113549.1.1.14': ['rsa', 'sha224'],
  '1.2.840.113549.1.1.11': ['rsa', 'sha256'],
  '1.2.840.113549.1.1.12': ['rsa', 'sha384'],
  '1.2.840.113549.1.1.13': ['rsa', 'sha512'],
  '1.2.840.10045.4.1': ['ec', 'sha1'],
  '1.2.840.10045.4.3.2': ['ec', 'sha256'],
  '1.2.840.10045.4.3.3': ['ec', 'sha384'],
  '1.2.840.10045.4.3.4': ['ec', 'sha512'],
};

/** The name node:crypto gives a digest OID; throws CmsError('unsupported'). */
export function digestName(oid: string): string {
  const d = DIGESTS[oid];
  if (!d) throw new CmsError('unsupported', `digest algorithm ${oid} is not supported (SHA-1 and SHA-2 are)`);
  return d;
}

/**
 * Checks one signer of `sd` with `publicKey`: signed attributes are required (SCEP carries its
 * fields in them), the messageDigest attribute must equal the digest of the content, and the
 * signature over the attributes must verify. Throws CmsError.
 */
export function verifySigner(sd: SignedDataView, signer: SignerView, publicKey: KeyObject): void {
  if (!signer.signedAttrsDer) throw new CmsError('malformed', 'the SignerInfo has no signed attributes');
  const hash = digestName(signer.digestOid);
  const alg = SIGNATURES[signer.signatureOid];
  if (!alg) throw new CmsError('unsupported', `signature algorithm ${signer.signatureOid} is not supported (RSA PKCS#1 v1.5 and ECDSA are)`);
  const [family, sigHash] = alg;
  const keyType = publicKey.asymmetricKeyType;
  if ((family === 'rsa' && keyType !== 'rsa') || (family === 'ec' && keyType !== 'ec'))
    throw new CmsError('signature', `a ${signer.signatureOid} signature cannot come from the signer certificate's ${keyType ?? 'unknown'} key`);
  const ct = signer.attributes.get(CMS_OID.contentType);
  if (ct?.length !== 1 || !ct[0]!.equals(objectIdentifier(sd.eContentType)))
    throw new CmsError('malformed', 'the contentType signed attribute is missing or does not match the content');
  const md = signer.attributes.get(CMS_OID.messageDigest);
  if (md?.length !== 1 || md[0]![0] !== 0x04) throw new CmsError('malformed', 'the messageDigest signed attribute is missing');
  const digest = createHash(hash)
    .update(sd.content ?? Buffer.alloc(0))
    .digest();
  if (!readOctets(md[0]!).equals(digest)) throw new CmsError('signature', 'the messageDigest attribute does not match the content');
  let ok = false;
  try {
    ok = cryptoVerify(sigHash ?? hash, signer.signedAttrsDer, family === 'ec' ? { key: publicKey, dsaEncoding: 'der' } : publicKey, signer.signature);
  } catch {
    ok = false;
  }
  if (!ok) throw new CmsError('signature', 'the signature over the signed attributes does not verify with the signer certificate');
}

/** The contents of a DER OCTET STRING TLV. */
export function readOctets(tlvBytes: Buffer): Buffer {
  try {
    const e = readEl(tlvBytes, 0, tlvBytes.length);
    if (e.tag !== 0x04 || e.end !== tlvBytes.length) throw new CmsError('malformed', 'not an OCTET STRING');
    return tlvBytes.subarray(e.body, e.end);
  } catch (e) {
    if (e instanceof DerError) throw new CmsError('malformed', `not DER: ${e.message}`);
    throw e;
  }
}

/** One Attribute ::= SEQUENCE { attrType, attrValues SET OF } from encoded values. */
export const attribute = (oid: string, ...values: Buffer[]): Buffer => sequence(objectIdentifier(oid), set(...values));

/** SET OF in DER order (X.690 §11.6): sorted by encoding. */
export function derSetOf(items: Buffer[]): Buffer {
  return set(...[...items].sort(Buffer.compare));
}

export interface SignedDataInput {
  eContentType: string;
  content: Buffer;
  /** Certificates to include (the signer's first). */
  certificates: Buffer[];
  signer: Signer;
  /** The signer certificate's issuer Name (DER) and serial (unsigned bytes), for the sid. */
  issuerNameDer: Buffer;
  serial: Buffer;
  /** Attributes to sign besides contentType and messageDigest (each a complete Attribute). */
  attributes: Buffer[];
  /** The digest over content and attributes; the Signer's own hash must match for RSA (sha256). */
  digest?: 'sha256';
  signingTime?: Date;
}

/** A DER ContentInfo holding a SignedData with one signer and signed attributes. */
export async function buildSignedData(p: SignedDataInput): Promise<Buffer> {
  const digestAlg = sequence(objectIdentifier(DIGEST_OID.sha256), Buffer.from([0x05, 0x00]));
  const digest = createHash('sha256').update(p.content).digest();
  const attrs = [
    attribute(CMS_OID.contentType, objectIdentifier(p.eContentType)),
    attribute(CMS_OID.messageDigest, octetString(digest)),
    ...(p.signingTime ? [attribute(CMS_OID.signingTime, utcTime(p.signingTime))] : []),
    ...p.attributes,
  ];
  const signedSet = derSetOf(attrs);
  const signature = await p.signer.sign(signedSet);
  const signerInfo = sequence(
    smallInteger(1),
    sequence(p.issuerNameDer, unsignedInteger(p.serial)),
    digestAlg,
    Buffer.concat([Buffer.from([0xa0]), signedSet.subarray(1)]),
    signatureAlgorithmFor(p.signer),
    octetString(signature),
  );
  const signedData = sequence(
    smallInteger(1),
    set(digestAlg),
    sequence(objectIdentifier(p.eContentType), contextExplicit(0, octetString(p.content))),
    tlv(0xa0, ...p.certificates),
    set(signerInfo),
  );
  return sequence(objectIdentifier(CMS_OID.signedData), contextExplicit(0, signedData));
}

/**
 * The SignerInfo signatureAlgorithm: for RSA, rsaEncryption with the digest given apart (RFC 3370
 * §3.2, the PKCS #7 v1.5 form), which every reader accepts — strongSwan's pkcs7 plugin accepts
 * nothing else ("only RSA digest encryption supported"); the same PKCS#1 v1.5 signature bytes.
 */
function signatureAlgorithmFor(signer: Signer): Buffer {
  if (signer.algorithm.algorithm === '1.2.840.113549.1.1.11') return sequence(objectIdentifier('1.2.840.113549.1.1.1'), Buffer.from([0x05, 0x00]));
  return Buffer.from(AsnConvert.serialize(signer.algorithm));
}

function utcTime(d: Date): Buffer {
  const pad = (n: number) => String(n).padStart(2, '0');
  const s = `${pad(d.getUTCFullYear() % 100)}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}Z`;
  return tlv(0x17, Buffer.from(s, 'ascii'));
}
