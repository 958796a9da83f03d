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
import { el, kids, strictExtensions, strictOid, type El } from './der-strict.js';
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

/** The checks on the extension list itself, shared by both lint paths: no repeats, no unknown critical one. */
function extensionListFindings(exts: readonly { id: string; critical: boolean }[]): string[] {
  const f: string[] = [];
  const seen = new Set<string>();
  for (const e of exts) {
    if (seen.has(e.id)) f.push(`extension ${e.id} appears twice`);
    seen.add(e.id);
    if (!KNOWN.has(e.id) && e.critical) f.push(`unknown critical extension ${e.id}`);
  }
  return f;
}

/**
 * Returns the findings; empty means the TBS may be signed.
 *
 * The fast path walks the DER directly. Whenever it meets anything it does not fully
 * understand, or finds any defect at all, the full schema-based lint decides, so findings
 * (and their wording) are exactly those of lintLeafTbsFull.
 */
export function lintLeafTbs(tbs: Buffer, x: LintExpectations): string[] {
  const fast = lintLeafTbsFast(tbs, x);
  return fast !== null && fast.length === 0 ? fast : lintLeafTbsFull(tbs, x);
}

/** The schema-based lint (parses the whole TBSCertificate with @peculiar/asn1-x509). */
export function lintLeafTbsFull(tbs: Buffer, x: LintExpectations): string[] {
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
  f.push(...extensionListFindings(exts.map((e) => ({ id: e.extnID, critical: e.critical }))));
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

// ---------------------------------------------------------------------------------------------
// Fast path: a strict DER walk. Returns null (never throws) for anything unusual.

/** The single element filling a whole buffer (an extnValue), or null. */
function only(buf: Uint8Array): El | null {
  const e = el(buf, 0, buf.length);
  return e && e.end === buf.length ? e : null;
}


const slice = (buf: Buffer, e: El): Buffer => buf.subarray(e.start, e.end);
const content = (buf: Buffer, e: El): Buffer => buf.subarray(e.body, e.end);

function digits(buf: Uint8Array, from: number, n: number): number {
  let v = 0;
  for (let i = from; i < from + n; i++) {
    const c = buf[i]! - 0x30;
    if (c < 0 || c > 9) return NaN;
    v = v * 10 + c;
  }
  return v;
}

/** UTCTime YYMMDDHHMMSSZ or GeneralizedTime YYYYMMDDHHMMSSZ, as epoch ms; null for other forms. */
function timeOf(buf: Uint8Array, e: El): number | null {
  const len = e.end - e.body;
  let year: number;
  let p = e.body;
  if (e.tag === 0x17 && len === 13) { const yy = digits(buf, p, 2); year = yy >= 50 ? 1900 + yy : 2000 + yy; p += 2; } else if (e.tag === 0x18 && len === 15) { year = digits(buf, p, 4); p += 4; } else return null;
  if (buf[e.end - 1] !== 0x5a) return null;
  const mo = digits(buf, p, 2); const d = digits(buf, p + 2, 2); const h = digits(buf, p + 4, 2); const mi = digits(buf, p + 6, 2); const s = digits(buf, p + 8, 2);
  if (!(year >= 0 && mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h <= 23 && mi <= 59 && s <= 59)) return null;
  const t = Date.UTC(year, mo - 1, d, h, mi, s);
  return new Date(t).getUTCDate() === d ? t : null;
}

const NAME_VALUE_TAGS = new Set([0x0c, 0x12, 0x13, 0x14, 0x16, 0x1a, 0x1c, 0x1e]);

/** Name: SEQUENCE OF SET OF SEQUENCE { OID, string }, all strict DER. */
function isName(buf: Uint8Array, e: El): boolean {
  const rdns = kids(buf, e);
  if (!rdns) return false;
  for (const rdn of rdns) {
    const atvs = rdn.tag === 0x31 ? kids(buf, rdn) : null;
    if (!atvs || atvs.length === 0) return false;
    for (const atv of atvs) {
      const tv = atv.tag === 0x30 ? kids(buf, atv) : null;
      if (!tv || tv.length !== 2 || strictOid(buf, tv[0]!) === null || !NAME_VALUE_TAGS.has(tv[1]!.tag)) return false;
    }
  }
  return true;
}

/** AlgorithmIdentifier: SEQUENCE { OID, NULL or OID parameters (optional) }. */
function isAlgorithm(buf: Uint8Array, e: El): boolean {
  const p = e.tag === 0x30 ? kids(buf, e) : null;
  if (!p || p.length < 1 || p.length > 2 || strictOid(buf, p[0]!) === null) return false;
  const q = p[1];
  return !q || (q.tag === 0x05 && q.end === q.body) || strictOid(buf, q) !== null;
}

/** SubjectPublicKeyInfo: SEQUENCE { AlgorithmIdentifier, BIT STRING with no unused bits }. */
function isSpki(buf: Uint8Array, e: El): boolean {
  const p = kids(buf, e);
  return !!p && p.length === 2 && isAlgorithm(buf, p[0]!) && p[1]!.tag === 0x03 && p[1]!.end > p[1]!.body && buf[p[1]!.body] === 0;
}

interface FastExt { id: string; critical: boolean; value: Buffer }

/** Same checks and wording as lintLeafTbsFull, or null when the TBS is not plain DER this walk reads. */
export function lintLeafTbsFast(tbs: Buffer, x: LintExpectations): string[] | null {
  try {
    const f: string[] = [];
    const outer = el(tbs, 0, tbs.length);
    if (!outer || outer.tag !== 0x30 || outer.end !== tbs.length) return null;
    const parts = kids(tbs, outer);
    if (!parts || parts.length !== 8) return null; // version, serial, sig, issuer, validity, subject, spki, [3] extensions
    const [verE, serialE, sigE, issuerE, validityE, subjectE, spkiE, extsE] = parts as [El, El, El, El, El, El, El, El];
    if (verE.tag !== 0xa0 || verE.end - verE.start !== 5 || tbs[verE.body] !== 0x02 || tbs[verE.body + 1] !== 0x01) return null;
    const version = tbs[verE.body + 2]!;
    if (version & 0x80) return null;
    if (version !== 2) f.push(`version is ${version + 1}, expected 3`);

    if (serialE.tag !== 0x02 || serialE.end === serialE.body) return null;
    const serial = content(tbs, serialE);
    if (serial[0]! & 0x80) f.push('serial number is negative');
    const serialLen = serial[0] === 0 ? serial.length - 1 : serial.length;
    if (serialLen > 20) f.push(`serial number is ${serialLen} bytes, more than 20`);
    if (serialLen < 9) f.push(`serial number is ${serialLen} bytes, fewer than the 64 random bits required`);

    if (sigE.tag !== 0x30 || issuerE.tag !== 0x30 || subjectE.tag !== 0x30 || spkiE.tag !== 0x30 || validityE.tag !== 0x30) return null;
    if (!isName(tbs, subjectE) || !isName(tbs, issuerE) || !isAlgorithm(tbs, sigE) || !isSpki(tbs, spkiE)) return null;
    if (!slice(tbs, sigE).equals(x.signatureAlgorithmDer)) f.push('signature algorithm differs from the issuer key\'s');
    if (!slice(tbs, issuerE).equals(x.issuerNameDer)) f.push('issuer name differs from the issuer certificate\'s subject');

    const validity = kids(tbs, validityE);
    if (!validity || validity.length !== 2) return null;
    const nb = timeOf(tbs, validity[0]!);
    const na = timeOf(tbs, validity[1]!);
    if (nb === null || na === null) return null;
    if (!(nb < na)) f.push('notBefore is not before notAfter');
    if (nb < x.issuerNotBefore.getTime()) f.push('notBefore precedes the issuer\'s notBefore');
    if (na > x.issuerNotAfter.getTime()) f.push('notAfter is past the issuer\'s notAfter');
    if (na - nb > x.maxValidityMs + 120_000) f.push('validity exceeds the profile maximum');
    if (!slice(tbs, spkiE).equals(x.spkiDer)) f.push('subject public key differs from the requested key');

    if (extsE.tag !== 0xa3) return null;
    const extsSeq = kids(tbs, extsE);
    if (!extsSeq || extsSeq.length !== 1 || extsSeq[0]!.tag !== 0x30) return null;
    const parsed = strictExtensions(tbs, extsSeq[0]!);
    if (!parsed) return null;
    const exts: FastExt[] = parsed.map((e) => ({ id: e.id, critical: e.critical, value: content(tbs, e.value) }));
    f.push(...extensionListFindings(exts));
    const get = (oid: string) => exts.find((e) => e.id === oid);

    const bc = get(EXT.basicConstraints);
    if (!bc) f.push('basicConstraints is missing');
    else {
      if (!bc.critical) f.push('basicConstraints is not critical');
      const seq = only(bc.value);
      const items = seq && seq.tag === 0x30 ? kids(bc.value, seq) : null;
      if (!items || items.length > 2) return null;
      let ca = false;
      let i = 0;
      if (items[0]?.tag === 0x01) {
        if (items[0].end - items[0].body !== 1 || bc.value[items[0].body] !== 0xff) return null;
        ca = true;
        i = 1;
      }
      if (items.length > i + 1 || (items[i] && items[i]!.tag !== 0x02)) return null;
      if (ca) f.push('leaf certificate has CA:TRUE');
    }

    const ku = get(EXT.keyUsage);
    if (!ku) f.push('keyUsage is missing');
    else {
      if (!ku.critical) f.push('keyUsage is not critical');
      const bits = only(ku.value);
      if (!bits || bits.tag !== 0x03 || bits.end - bits.body < 1 || bits.end - bits.body > 3) return null;
      const unused = ku.value[bits.body]!;
      if (unused > 7 || (unused && bits.end - bits.body === 1)) return null;
      const bytes = ku.value.subarray(bits.body + 1, bits.end);
      let flags = 0;
      for (let i = 0; i < bytes.length * 8 - unused; i++) if (bytes[i >> 3]! & (0x80 >> (i & 7))) flags |= 1 << i;
      if (flags & (KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign)) f.push('leaf keyUsage includes keyCertSign or cRLSign');
      if (!flags) f.push('keyUsage is empty');
    }

    const eku = get(EXT.extKeyUsage);
    const ekus: string[] = [];
    if (eku) {
      const seq = only(eku.value);
      const items = seq && seq.tag === 0x30 ? kids(eku.value, seq) : null;
      if (!items) return null;
      for (const it of items) {
        const o = strictOid(eku.value, it);
        if (o === null) return null;
        ekus.push(o);
      }
    }
    const want = x.extKeyUsage.map((k) => EKU[k as keyof typeof EKU] ?? k);
    if (ekus.length !== want.length || want.some((w) => !ekus.includes(w))) f.push(`extKeyUsage is ${ekus.join(',') || 'absent'}, profile requires ${want.join(',')}`);
    if (!get(EXT.subjectKeyIdentifier)) f.push('subjectKeyIdentifier is missing');

    const aki = get(EXT.authorityKeyIdentifier);
    if (!aki) f.push('authorityKeyIdentifier is missing');
    else {
      const seq = only(aki.value);
      const items = seq && seq.tag === 0x30 ? kids(aki.value, seq) : null;
      if (!items || items.length !== 1 || items[0]!.tag !== 0x80) return null; // keyIdentifier only
      if (!content(aki.value, items[0]!).equals(x.issuerKeyId)) f.push('authorityKeyIdentifier does not match the issuer\'s subjectKeyIdentifier');
    }
    if (!get(EXT.authorityInfoAccess)) f.push('authorityInfoAccess is missing');
    if (!get(EXT.crlDistributionPoints)) f.push('cRLDistributionPoints is missing');

    const subjectEmpty = subjectE.end === subjectE.body;
    const san = get(EXT.subjectAltName);
    if (x.requireSan && !san) f.push('subjectAltName is required by the profile but missing');
    if (subjectEmpty && !san) f.push('subject is empty and there is no subjectAltName');
    if (san) {
      if (subjectEmpty && !san.critical) f.push('subjectAltName must be critical when the subject is empty');
      const seq = only(san.value);
      if (!seq || seq.tag !== 0x30 || !kids(san.value, seq)) return null;
      const entries = readSanEntries(san.value);
      if (entries.length === 0) f.push('subjectAltName is empty');
      for (const entry of entries) {
        if (typeof entry === 'string') { f.push(entry); continue; }
        try { validateSan(entry); } catch (e) { f.push(`subjectAltName entry is malformed: ${(e as Error).message}`); }
      }
    }
    return f;
  } catch {
    return null;
  }
}
