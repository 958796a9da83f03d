/**
 * The to-be-signed certificate as the pre-issuance lint reads it: one plain view, built by one
 * of two readers, so the lint rules (lint.ts) are written once and run the same whatever read
 * the bytes.
 *
 * - readTbsViewFast walks the DER with the strict reader (der-strict.ts). It allocates little
 *   (issuance runs it on every certificate) and answers null for anything it does not fully
 *   understand.
 * - readTbsViewFull parses with @peculiar/asn1-x509 and builds the same view; it runs only when
 *   the walk answered null, and says why a TBS does not parse.
 *
 * The readers read; they judge nothing. A defect the lint must report (a wrong version, a
 * missing extension, a bad SAN entry) is in the view for a rule to find.
 */
import { AsnConvert } from '@peculiar/asn1-schema';
import { AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, TBSCertificate } from '@peculiar/asn1-x509';
import { readHeader } from './der.js';
import { el, kids, strictExtensions, strictOid, type El } from './der-strict.js';
import { EXT } from './extensions.js';
import { readSanList, type SanProblem } from './general-names.js';
import type { SanEntry } from './names.js';

export interface TbsView {
  /** Bytes after the TBSCertificate SEQUENCE (only the full reader admits any). */
  trailingBytes: boolean;
  /** As encoded: 2 is v3. */
  version: number;
  /** The serialNumber INTEGER's content octets (with any 0x00 sign byte). */
  serial: Uint8Array;
  /** DER of the signature AlgorithmIdentifier, the issuer and subject Names, and the subjectPublicKeyInfo. */
  signatureAlgorithm: Uint8Array;
  issuer: Uint8Array;
  subject: Uint8Array;
  spki: Uint8Array;
  /** Epoch milliseconds. */
  notBefore: number;
  notAfter: number;
  /** Every extension, in order. */
  extensions: ViewExtension[];
  /**
   * The values the rules read, of the first extension with that id; undefined when there is
   * none. Whether each is critical is in `extensions`.
   */
  basicConstraintsCa: boolean | undefined;
  keyUsageFlags: number | undefined;
  extKeyUsage: string[] | undefined;
  /** The keyIdentifier; null when the extension has none. */
  authorityKeyId: Uint8Array | null | undefined;
  subjectAltNames: (SanEntry | SanProblem)[] | undefined;
}

export interface ViewExtension {
  id: string;
  critical: boolean;
}

/** The view of the first extension with this id (the one whose value the view holds). */
export function extensionOf(v: TbsView, id: string): ViewExtension | undefined {
  for (const e of v.extensions) if (e.id === id) return e; // a loop, not find(): no closure per rule
  return undefined;
}

/** A Name with no RDNs: SEQUENCE {}. */
export const isEmptyName = (name: Uint8Array): boolean => name.length === 2;

// ---------------------------------------------------------------------------------------------
// Fast reader: a strict DER walk. Returns null (never throws) for anything unusual.

/** The view, or null when the TBS is not plain DER this walk reads (readTbsViewFull then decides). */
export function readTbsViewFast(tbs: Buffer): TbsView | null {
  try {
    return walk(tbs);
  } catch {
    return null;
  }
}

function walk(tbs: Buffer): TbsView | null {
  const outer = el(tbs, 0, tbs.length);
  if (outer?.tag !== 0x30 || outer.end !== tbs.length) return null;
  const parts = kids(tbs, outer);
  if (parts?.length !== 8) return null; // version, serial, sig, issuer, validity, subject, spki, [3] extensions
  const [verE, serialE, sigE, issuerE, validityE, subjectE, spkiE, extsE] = parts as [El, El, El, El, El, El, El, El];
  if (verE.tag !== 0xa0 || verE.end - verE.start !== 5 || tbs[verE.body] !== 0x02 || tbs[verE.body + 1] !== 0x01) return null;
  const version = tbs[verE.body + 2]!;
  if (version & 0x80) return null;
  if (serialE.tag !== 0x02 || serialE.end === serialE.body) return null;
  if (sigE.tag !== 0x30 || issuerE.tag !== 0x30 || subjectE.tag !== 0x30 || spkiE.tag !== 0x30 || validityE.tag !== 0x30) return null;
  if (!isName(tbs, subjectE) || !isName(tbs, issuerE) || !isAlgorithm(tbs, sigE) || !isSpki(tbs, spkiE)) return null;
  const validity = kids(tbs, validityE);
  if (validity?.length !== 2) return null;
  const notBefore = timeOf(tbs, validity[0]!);
  const notAfter = timeOf(tbs, validity[1]!);
  if (notBefore === null || notAfter === null) return null;

  if (extsE.tag !== 0xa3) return null;
  const extsSeq = kids(tbs, extsE);
  if (extsSeq?.length !== 1 || extsSeq[0]!.tag !== 0x30) return null;
  const exts = strictExtensions(tbs, extsSeq[0]!);
  if (!exts) return null;
  const value = (id: string): El | undefined => exts.find((e) => e.id === id)?.value;

  const bc = value(EXT.basicConstraints);
  const basicConstraintsCa = bc && basicConstraintsCaOf(tbs, bc);
  const ku = value(EXT.keyUsage);
  const keyUsageFlags = ku && keyUsageFlagsOf(tbs, ku);
  const eku = value(EXT.extKeyUsage);
  const extKeyUsage = eku && extKeyUsageOf(tbs, eku);
  const aki = value(EXT.authorityKeyIdentifier);
  const authorityKeyId = aki && authorityKeyIdOf(tbs, aki);
  const san = value(EXT.subjectAltName);
  // A SAN that is not strict DER throws here, and readTbsViewFast answers null.
  const subjectAltNames = san && readSanList(tbs, san.body, san.end);
  if (basicConstraintsCa === null || keyUsageFlags === null || extKeyUsage === null || authorityKeyId === null) return null;

  return {
    trailingBytes: false,
    version,
    serial: tbs.subarray(serialE.body, serialE.end),
    signatureAlgorithm: tbs.subarray(sigE.start, sigE.end),
    issuer: tbs.subarray(issuerE.start, issuerE.end),
    subject: tbs.subarray(subjectE.start, subjectE.end),
    spki: tbs.subarray(spkiE.start, spkiE.end),
    notBefore,
    notAfter,
    extensions: exts, // each also carries its value's El, which the rules do not read
    basicConstraintsCa,
    keyUsageFlags,
    extKeyUsage,
    authorityKeyId,
    subjectAltNames,
  };
}

/** The single element exactly filling the extnValue OCTET STRING `octets`, or null. */
function only(buf: Uint8Array, octets: El): El | null {
  const e = el(buf, octets.body, octets.end);
  return e && e.end === octets.end ? e : null;
}

/** BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER OPTIONAL }: cA, or null. */
function basicConstraintsCaOf(buf: Uint8Array, octets: El): boolean | null {
  const seq = only(buf, octets);
  const items = seq && seq.tag === 0x30 ? kids(buf, seq) : null;
  if (!items || items.length > 2) return null;
  let ca = false;
  let i = 0;
  if (items[0]?.tag === 0x01) {
    // DER omits the DEFAULT FALSE, so an encoded cA can only be TRUE (0xFF).
    if (items[0].end - items[0].body !== 1 || buf[items[0].body] !== 0xff) return null;
    ca = true;
    i = 1;
  }
  if (items.length > i + 1 || (items[i] && items[i]!.tag !== 0x02)) return null;
  return ca;
}

/** KeyUsage BIT STRING as KeyUsageFlags (bit n of the string is 1 << n), or null. */
function keyUsageFlagsOf(buf: Uint8Array, octets: El): number | null {
  const bits = only(buf, octets);
  if (bits?.tag !== 0x03 || bits.end - bits.body < 1 || bits.end - bits.body > 3) return null;
  const unused = buf[bits.body]!;
  if (unused > 7 || (unused && bits.end - bits.body === 1)) return null;
  const from = bits.body + 1;
  const count = (bits.end - from) * 8 - unused;
  let flags = 0;
  for (let i = 0; i < count; i++) if (buf[from + (i >> 3)]! & (0x80 >> (i & 7))) flags |= 1 << i;
  return flags;
}

/** ExtKeyUsageSyntax ::= SEQUENCE OF KeyPurposeId, as OID text, or null. */
function extKeyUsageOf(buf: Uint8Array, octets: El): string[] | null {
  const seq = only(buf, octets);
  const items = seq && seq.tag === 0x30 ? kids(buf, seq) : null;
  if (!items) return null;
  const out: string[] = [];
  for (const it of items) {
    const o = strictOid(buf, it);
    if (o === null) return null;
    out.push(o);
  }
  return out;
}

/** AuthorityKeyIdentifier holding only a keyIdentifier [0] (all Signet writes); null for any other shape. */
function authorityKeyIdOf(buf: Uint8Array, octets: El): Uint8Array | null {
  const seq = only(buf, octets);
  const items = seq && seq.tag === 0x30 ? kids(buf, seq) : null;
  if (items?.length !== 1 || items[0]!.tag !== 0x80) return null;
  return buf.subarray(items[0]!.body, items[0]!.end);
}

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
  if (e.tag === 0x17 && len === 13) {
    const yy = digits(buf, p, 2);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
    p += 2;
  } else if (e.tag === 0x18 && len === 15) {
    year = digits(buf, p, 4);
    p += 4;
  } else return null;
  if (buf[e.end - 1] !== 0x5a) return null;
  const mo = digits(buf, p, 2);
  const d = digits(buf, p + 2, 2);
  const h = digits(buf, p + 4, 2);
  const mi = digits(buf, p + 6, 2);
  const s = digits(buf, p + 8, 2);
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
      if (tv?.length !== 2 || strictOid(buf, tv[0]!) === null || !NAME_VALUE_TAGS.has(tv[1]!.tag)) return false;
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

// ---------------------------------------------------------------------------------------------
// Full reader: @peculiar/asn1-x509, for whatever the walk does not read.

/**
 * The view, or the one finding `TBS does not parse: …`. An extension value the schema cannot
 * parse throws, as it always has (such a TBS is a Signet bug well past what a finding can name).
 * Values are parsed in the order the rules read them, so the same one throws first.
 */
export function readTbsViewFull(tbs: Buffer): TbsView | string {
  let t: TBSCertificate;
  let trailingBytes: boolean;
  try {
    const h = readHeader(tbs, 0);
    trailingBytes = h.headerLength + h.length !== tbs.length;
    t = AsnConvert.parse(tbs, TBSCertificate);
  } catch (e) {
    return `TBS does not parse: ${(e as Error).message}`;
  }
  const exts = t.extensions ?? [];
  const value = (id: string): ArrayBuffer | undefined => exts.find((e) => e.extnID === id)?.extnValue.buffer;
  const bc = value(EXT.basicConstraints);
  const ku = value(EXT.keyUsage);
  const eku = value(EXT.extKeyUsage);
  const aki = value(EXT.authorityKeyIdentifier);
  const san = value(EXT.subjectAltName);
  const der = (o: object): Uint8Array => new Uint8Array(AsnConvert.serialize(o));
  return {
    trailingBytes,
    version: t.version,
    serial: new Uint8Array(t.serialNumber),
    signatureAlgorithm: der(t.signature),
    issuer: der(t.issuer),
    subject: der(t.subject),
    spki: der(t.subjectPublicKeyInfo),
    notBefore: t.validity.notBefore.getTime().getTime(),
    notAfter: t.validity.notAfter.getTime().getTime(),
    extensions: exts.map((e) => ({ id: e.extnID, critical: e.critical })),
    basicConstraintsCa: bc && AsnConvert.parse(bc, BasicConstraints).cA,
    keyUsageFlags: ku && AsnConvert.parse(ku, KeyUsage).toNumber(),
    extKeyUsage: eku && [...AsnConvert.parse(eku, ExtendedKeyUsage)],
    authorityKeyId: aki && keyIdOf(AsnConvert.parse(aki, AuthorityKeyIdentifier)),
    subjectAltNames: san && readSanList(new Uint8Array(san)),
  };
}

const keyIdOf = (aki: AuthorityKeyIdentifier): Uint8Array | null => (aki.keyIdentifier ? new Uint8Array(aki.keyIdentifier.buffer) : null);
