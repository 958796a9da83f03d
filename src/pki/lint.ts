/**
 * Pre-issuance lint: re-reads the to-be-signed certificate exactly as encoded and checks it
 * against RFC 5280 and the profile before any CA signature exists. A finding is a Signet bug
 * (the template should never produce it), so the caller records it and issues nothing.
 */
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsageFlags, TBSCertificate,
} from '@peculiar/asn1-x509';
import { readElement, readHeader } from './der.js';
import { EKU, EXT } from './extensions.js';
import { formatIp, validateSan, type SanEntry } from './names.js';

export interface LintExpectations {
  issuerNameDer: Buffer;
  issuerKeyId: Buffer;
  issuerNotBefore: Date;
  issuerNotAfter: Date;
  signatureAlgorithmDer: Buffer;
  extKeyUsage: string[];
  requireSan: boolean;
  maxValidityMs: number;
  /** The subjectPublicKeyInfo the requester proved possession of. */
  spkiDer: Buffer;
}

const KNOWN = new Set<string>([EXT.basicConstraints, EXT.keyUsage, EXT.extKeyUsage, EXT.subjectKeyIdentifier, EXT.authorityKeyIdentifier,
  EXT.subjectAltName, EXT.authorityInfoAccess, EXT.crlDistributionPoints, EXT.ocspNoCheck]);

/** Returns the findings; empty means the TBS may be signed. */
export function lintLeafTbs(tbs: Buffer, x: LintExpectations): string[] {
  const f: string[] = [];
  let t: TBSCertificate;
  try {
    const h = readHeader(tbs, 0);
    if (h.headerLength + h.length !== tbs.length) f.push('TBS has trailing bytes');
    t = AsnConvert.parse(tbs, TBSCertificate);
  } catch (e) {
    return [`TBS does not parse: ${(e as Error).message}`];
  }
  if (t.version !== 2) f.push(`version is ${t.version + 1}, expected 3`);
  const serial = Buffer.from(t.serialNumber);
  if (serial[0]! & 0x80) f.push('serial number is negative');
  const serialLen = serial[0] === 0 ? serial.length - 1 : serial.length;
  if (serialLen > 20) f.push(`serial number is ${serialLen} bytes, more than 20`);
  if (serialLen < 9) f.push(`serial number is ${serialLen} bytes, fewer than the 64 random bits required`);
  if (!Buffer.from(AsnConvert.serialize(t.signature)).equals(x.signatureAlgorithmDer)) f.push('signature algorithm differs from the issuer key\'s');
  if (!Buffer.from(AsnConvert.serialize(t.issuer)).equals(x.issuerNameDer)) f.push('issuer name differs from the issuer certificate\'s subject');
  const nb = t.validity.notBefore.getTime();
  const na = t.validity.notAfter.getTime();
  if (!(nb < na)) f.push('notBefore is not before notAfter');
  if (nb < x.issuerNotBefore) f.push('notBefore precedes the issuer\'s notBefore');
  if (na > x.issuerNotAfter) f.push('notAfter is past the issuer\'s notAfter');
  if (na.getTime() - nb.getTime() > x.maxValidityMs + 120_000) f.push('validity exceeds the profile maximum');
  // The key was parsed and proven when the CSR was checked; here it must be those exact bytes.
  if (!Buffer.from(AsnConvert.serialize(t.subjectPublicKeyInfo)).equals(x.spkiDer)) f.push('subject public key differs from the requested key');

  const exts = t.extensions ?? [];
  const seen = new Set<string>();
  for (const e of exts) {
    if (seen.has(e.extnID)) f.push(`extension ${e.extnID} appears twice`);
    seen.add(e.extnID);
    if (!KNOWN.has(e.extnID) && e.critical) f.push(`unknown critical extension ${e.extnID}`);
  }
  const get = (oid: string) => exts.find((e) => e.extnID === oid);
  const bc = get(EXT.basicConstraints);
  if (!bc) f.push('basicConstraints is missing');
  else {
    if (!bc.critical) f.push('basicConstraints is not critical');
    if (AsnConvert.parse(bc.extnValue.buffer, BasicConstraints).cA) f.push('leaf certificate has CA:TRUE');
  }
  const ku = get(EXT.keyUsage);
  if (!ku) f.push('keyUsage is missing');
  else {
    if (!ku.critical) f.push('keyUsage is not critical');
    const flags = AsnConvert.parse(ku.extnValue.buffer, KeyUsage).toNumber();
    if (flags & (KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign)) f.push('leaf keyUsage includes keyCertSign or cRLSign');
    if (!flags) f.push('keyUsage is empty');
  }
  const eku = get(EXT.extKeyUsage);
  const ekus = eku ? [...AsnConvert.parse(eku.extnValue.buffer, ExtendedKeyUsage)] : [];
  const want = x.extKeyUsage.map((k) => EKU[k as keyof typeof EKU] ?? k);
  if (ekus.length !== want.length || want.some((w) => !ekus.includes(w))) f.push(`extKeyUsage is ${ekus.join(',') || 'absent'}, profile requires ${want.join(',')}`);
  if (!get(EXT.subjectKeyIdentifier)) f.push('subjectKeyIdentifier is missing');
  const aki = get(EXT.authorityKeyIdentifier);
  if (!aki) f.push('authorityKeyIdentifier is missing');
  else {
    const kid = AsnConvert.parse(aki.extnValue.buffer, AuthorityKeyIdentifier).keyIdentifier;
    if (!kid || !Buffer.from(kid.buffer).equals(x.issuerKeyId)) f.push('authorityKeyIdentifier does not match the issuer\'s subjectKeyIdentifier');
  }
  if (!get(EXT.authorityInfoAccess)) f.push('authorityInfoAccess is missing');
  if (!get(EXT.crlDistributionPoints)) f.push('cRLDistributionPoints is missing');

  const subjectEmpty = t.subject.length === 0;
  const san = get(EXT.subjectAltName);
  if (x.requireSan && !san) f.push('subjectAltName is required by the profile but missing');
  if (subjectEmpty && !san) f.push('subject is empty and there is no subjectAltName');
  if (san) {
    if (subjectEmpty && !san.critical) f.push('subjectAltName must be critical when the subject is empty');
    const entries = readSanEntries(Buffer.from(san.extnValue.buffer));
    if (entries.length === 0) f.push('subjectAltName is empty');
    for (const entry of entries) {
      if (typeof entry === 'string') { f.push(entry); continue; }
      try { validateSan(entry); } catch (e) { f.push(`subjectAltName entry is malformed: ${(e as Error).message}`); }
    }
  }
  return f;
}

/** GeneralNames read straight from the DER (asn1-x509 would turn iPAddress bytes into text). */
export function readSanEntries(der: Buffer): (SanEntry | string)[] {
  const out: (SanEntry | string)[] = [];
  const outer = readHeader(der, 0);
  for (let off = outer.headerLength; off < outer.headerLength + outer.length;) {
    const el = readElement(der, off);
    const body = Buffer.from(el.subarray(readHeader(el, 0).headerLength));
    switch (el[0]) {
      case 0x81: out.push({ type: 'email', value: body.toString('latin1') }); break;
      case 0x82: out.push({ type: 'dns', value: body.toString('latin1') }); break;
      case 0x86: out.push({ type: 'uri', value: body.toString('latin1') }); break;
      case 0x87: out.push(body.length === 4 || body.length === 16 ? { type: 'ip', value: formatIp(body) } : `iPAddress of ${body.length} bytes`); break;
      default: out.push(`unsupported GeneralName tag 0x${el[0]!.toString(16)}`);
    }
    off += el.length;
  }
  return out;
}
