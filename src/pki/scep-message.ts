/**
 * SCEP pkiMessage (RFC 8894 §3.2): the signed attributes that carry the protocol, the request
 * contents by message type, and the CertRep reply. Pure: the signer and the envelope
 * decryption are passed in.
 */
import { CMS_OID, CmsError, attribute, buildSignedData, parseSignedData, readOctets, type SignedDataView, type SignerView } from './cms-signed.js';
import { DerError, readEl, readKids } from './der-strict.js';
import { contextExplicit, objectIdentifier, octetString, sequence, set, smallInteger, tlv } from './der.js';
import type { Signer } from './keys.js';

export const SCEP_OID = {
  messageType: '2.16.840.1.113733.1.9.2',
  pkiStatus: '2.16.840.1.113733.1.9.3',
  failInfo: '2.16.840.1.113733.1.9.4',
  senderNonce: '2.16.840.1.113733.1.9.5',
  recipientNonce: '2.16.840.1.113733.1.9.6',
  transactionID: '2.16.840.1.113733.1.9.7',
  failInfoText: '1.3.6.1.5.5.7.24.1',
} as const;

export const MESSAGE_TYPE = {
  CertRep: 3,
  RenewalReq: 17,
  PKCSReq: 19,
  CertPoll: 20,
  GetCert: 21,
  GetCRL: 22,
} as const;
export type MessageTypeName = keyof typeof MESSAGE_TYPE;

/** RFC 8894 §3.2.1.4.5 failInfo values. */
export const FAIL_INFO = { badAlg: 0, badMessageCheck: 1, badRequest: 2, badTime: 3, badCertId: 4 } as const;
export type FailInfo = keyof typeof FAIL_INFO;

export interface PkiMessage {
  signed: SignedDataView;
  signer: SignerView;
  messageType: number;
  transactionId: string;
  senderNonce: Buffer;
  /** The signer certificate (DER) from the SignedData certificates, matched by the sid. */
  signerCertificate: Buffer | null;
  /** The encapsulated content: a ContentInfo holding EnvelopedData (empty for none). */
  envelope: Buffer | null;
}

const printable = (s: string) => tlv(0x13, Buffer.from(s, 'ascii'));

/** A single-valued string attribute (PrintableString, also accepted as UTF8String or IA5String). */
function stringAttr(signer: SignerView, oid: string, what: string): string {
  const v = signer.attributes.get(oid);
  if (v?.length !== 1) throw new CmsError('malformed', `the ${what} attribute is missing`);
  try {
    const e = readEl(v[0]!, 0, v[0]!.length);
    if (![0x13, 0x0c, 0x16].includes(e.tag)) throw new CmsError('malformed', `the ${what} attribute is not a string`);
    const s = v[0]!.subarray(e.body, e.end).toString('latin1');
    if (!/^[\x20-\x7e]{1,128}$/.test(s)) throw new CmsError('malformed', `the ${what} attribute is empty, too long or not printable`);
    return s;
  } catch (e) {
    if (e instanceof DerError) throw new CmsError('malformed', `the ${what} attribute is not DER`);
    throw e;
  }
}

/**
 * Reads a pkiMessage: the SignedData, its one signer, the SCEP attributes and the signer
 * certificate it carries. Does not verify the signature (the caller picks the key to verify
 * with: the certificate in the message, checked against what it claims). Throws CmsError.
 */
export function parsePkiMessage(der: Uint8Array): PkiMessage {
  const signed = parseSignedData(der);
  if (signed.signers.length !== 1) throw new CmsError('malformed', `a pkiMessage has one signer; this one has ${signed.signers.length}`);
  if (signed.eContentType !== CMS_OID.data) throw new CmsError('malformed', 'a pkiMessage encapsulates id-data');
  const signer = signed.signers[0]!;
  const typeText = stringAttr(signer, SCEP_OID.messageType, 'messageType');
  if (!/^\d{1,3}$/.test(typeText)) throw new CmsError('malformed', 'the messageType attribute is not a number');
  const transactionId = stringAttr(signer, SCEP_OID.transactionID, 'transactionID');
  const nonce = signer.attributes.get(SCEP_OID.senderNonce);
  if (nonce?.length !== 1) throw new CmsError('malformed', 'the senderNonce attribute is missing');
  const senderNonce = readOctets(nonce[0]!);
  if (senderNonce.length !== 16) throw new CmsError('malformed', `the senderNonce is ${senderNonce.length} bytes; RFC 8894 makes it 16`);
  return {
    signed,
    signer,
    messageType: Number(typeText),
    transactionId,
    senderNonce,
    signerCertificate: findSignerCertificate(signed.certificates, signer),
    envelope: signed.content?.length ? signed.content : null,
  };
}

/** The certificate among `certs` whose issuer and serial (or key id) the signer names. */
function findSignerCertificate(certs: Buffer[], signer: SignerView): Buffer | null {
  for (const c of certs) {
    try {
      const ids = certificateIds(c);
      if (signer.issuerNameDer && signer.serial && ids.issuer.equals(signer.issuerNameDer) && ids.serial.equals(signer.serial)) return c;
    } catch {
      // A certificate that does not parse is simply not the signer's.
    }
  }
  return null;
}

/** Issuer Name DER and serial INTEGER content bytes of a certificate, read structurally. */
export function certificateIds(cert: Buffer): { issuer: Buffer; serial: Buffer; subject: Buffer } {
  const top = readEl(cert, 0, cert.length);
  const [tbs] = readKids(cert, top);
  const f = readKids(cert, tbs!);
  const off = f[0]!.tag === 0xa0 ? 1 : 0;
  const serial = f[off]!;
  const issuer = f[off + 2]!;
  const subject = f[off + 4]!;
  return {
    serial: cert.subarray(serial.body, serial.end),
    issuer: cert.subarray(issuer.start, issuer.end),
    subject: cert.subarray(subject.start, subject.end),
  };
}

/** IssuerAndSerialNumber (GetCert, GetCRL) or IssuerAndSubject (CertPoll): two elements, read raw. */
export function readIssuerAnd(content: Buffer): { issuer: Buffer; second: Buffer; secondIsInteger: boolean } {
  try {
    const top = readEl(content, 0, content.length);
    if (top.tag !== 0x30 || top.end !== content.length) throw new CmsError('malformed', 'the request content is not one SEQUENCE');
    const [issuer, second, ...rest] = readKids(content, top);
    if (rest.length || issuer?.tag !== 0x30 || !second) throw new CmsError('malformed', 'the request content is not (issuer, serial or subject)');
    return {
      issuer: content.subarray(issuer.start, issuer.end),
      second: second.tag === 0x02 ? content.subarray(second.body, second.end) : content.subarray(second.start, second.end),
      secondIsInteger: second.tag === 0x02,
    };
  } catch (e) {
    if (e instanceof DerError) throw new CmsError('malformed', `the request content is not DER: ${e.message}`);
    throw e;
  }
}

export interface CertRepInput {
  transactionId: string;
  /** The request's senderNonce, echoed as recipientNonce. */
  recipientNonce: Buffer;
  senderNonce: Buffer;
  signer: Signer;
  signerCertificate: Buffer;
  /** Extra certificates for the SignedData (e.g. the issuing CA). */
  certificates?: Buffer[];
  status: { kind: 'success'; envelope: Buffer } | { kind: 'failure'; failInfo: FailInfo; text?: string };
  signingTime?: Date;
}

/**
 * CertRep (RFC 8894 §3.3.2): SignedData signed by the RA with transactionID, messageType 3,
 * pkiStatus, senderNonce, recipientNonce (and failInfo / failInfoText on failure); the
 * content is the EnvelopedData of the reply for SUCCESS and empty for FAILURE.
 */
export async function buildCertRep(p: CertRepInput): Promise<Buffer> {
  const ids = certificateIds(p.signerCertificate);
  const attrs = [
    attribute(SCEP_OID.transactionID, printable(p.transactionId)),
    attribute(SCEP_OID.messageType, printable(String(MESSAGE_TYPE.CertRep))),
    attribute(SCEP_OID.senderNonce, octetString(p.senderNonce)),
    attribute(SCEP_OID.recipientNonce, octetString(p.recipientNonce)),
  ];
  if (p.status.kind === 'success') attrs.push(attribute(SCEP_OID.pkiStatus, printable('0')));
  else {
    attrs.push(attribute(SCEP_OID.pkiStatus, printable('2')), attribute(SCEP_OID.failInfo, printable(String(FAIL_INFO[p.status.failInfo]))));
    if (p.status.text) attrs.push(attribute(SCEP_OID.failInfoText, tlv(0x0c, Buffer.from(p.status.text.slice(0, 500), 'utf8'))));
  }
  return buildSignedData({
    eContentType: CMS_OID.data,
    content: p.status.kind === 'success' ? p.status.envelope : Buffer.alloc(0),
    certificates: [p.signerCertificate, ...(p.certificates ?? [])],
    signer: p.signer,
    issuerNameDer: ids.issuer,
    serial: ids.serial,
    attributes: attrs,
    signingTime: p.signingTime,
  });
}

/** A degenerate SignedData (no signers) holding CRLs: the GetCRL reply's inner content. */
export function crlsOnlyCms(crls: Uint8Array[]): Buffer {
  const signedData = sequence(smallInteger(1), set(), sequence(objectIdentifier(CMS_OID.data)), tlv(0xa1, ...crls), set());
  return sequence(objectIdentifier(CMS_OID.signedData), contextExplicit(0, signedData));
}

const OID_CHALLENGE_PASSWORD = '1.2.840.113549.1.9.7';

/**
 * The challengePassword attribute of a PKCS#10 request (RFC 2985 §5.4.1: a DirectoryString),
 * read structurally; null when there is none. The CSR itself is parsed and verified by csr.ts
 * when it is issued; this only finds the secret. Throws CmsError on a malformed attribute.
 */
export function challengePasswordOf(csr: Buffer): string | null {
  try {
    const top = readEl(csr, 0, csr.length);
    const [info] = readKids(csr, top);
    if (info?.tag !== 0x30) return null;
    const fields = readKids(csr, info);
    const attrs = fields[3];
    if (attrs?.tag !== 0xa0) return null;
    for (const a of readKids(csr, attrs)) {
      const [type, values] = readKids(csr, a);
      if (type?.tag !== 0x06 || csr.subarray(type.start, type.end).compare(objectIdentifier(OID_CHALLENGE_PASSWORD)) !== 0) continue;
      const vs = values && values.tag === 0x31 ? readKids(csr, values) : [];
      if (vs.length !== 1 || ![0x0c, 0x13, 0x14, 0x16, 0x1e].includes(vs[0]!.tag))
        throw new CmsError('malformed', 'the challengePassword attribute is not one string');
      const v = vs[0]!;
      const raw = csr.subarray(v.body, v.end);
      if (v.tag === 0x1e && raw.length % 2) throw new CmsError('malformed', 'the challengePassword BMPString has an odd length');
      return v.tag === 0x1e ? Buffer.from(raw).swap16().toString('utf16le') : raw.toString('utf8');
    }
    return null;
  } catch (e) {
    if (e instanceof DerError) throw new CmsError('malformed', `the CSR is not DER: ${e.message}`);
    throw e;
  }
}
