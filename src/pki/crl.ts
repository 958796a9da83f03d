/**
 * RFC 5280 v2 CRL encoding. Pure: no I/O, no clock, no database.
 *
 * Built for large CRLs (the target is 1,000,000 entries in a few seconds and well under
 * 256 MB): entries arrive as an (async) iterable of entries or of entry batches, each entry
 * is written straight into large byte slabs as it arrives, and only those bytes are kept.
 * At the end the slabs are copied once into the final buffer, the TBSCertList is signed in
 * place with `await signer.sign` (so any Signer works: Ed25519, an HSM or a remote KMS), and
 * the signature is appended. Peak memory is about twice the CRL size (slabs + output), or
 * about once with the `expectedEntries` hint (entries written in place, no copy).
 *
 * `encodeCrlEntry` is the readable reference encoder (der.ts helpers); the bulk path writes
 * the same bytes without intermediate Buffers, and the tests check the two agree.
 */
import { AsnConvert } from '@peculiar/asn1-schema';
import { SignetError } from '../errors.js';
import type { Signer } from './keys.js';
import {
  booleanTrue,
  contextExplicit,
  encodeLength,
  enumerated,
  generalizedTime,
  objectIdentifier,
  octetString,
  readHeader,
  sequence,
  smallInteger,
  time,
  tlv,
  unsignedInteger,
} from './der.js';

/** RFC 5280 §5.3.1 CRLReason names, in code order (code 7 is unused). */
export const REVOCATION_REASONS = [
  'unspecified',
  'keyCompromise',
  'caCompromise',
  'affiliationChanged',
  'superseded',
  'cessationOfOperation',
  'certificateHold',
  'removeFromCRL',
  'privilegeWithdrawn',
  'aACompromise',
] as const;
export type RevocationReason = (typeof REVOCATION_REASONS)[number];

/** CRLReason ::= ENUMERATED codes (RFC 5280 §5.3.1). */
export const REASON_CODES: Readonly<Record<RevocationReason, number>> = Object.freeze({
  unspecified: 0,
  keyCompromise: 1,
  caCompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  certificateHold: 6,
  // 7 is not used
  removeFromCRL: 8,
  privilegeWithdrawn: 9,
  aACompromise: 10,
});

export const isRevocationReason = (value: unknown): value is RevocationReason => typeof value === 'string' && Object.hasOwn(REASON_CODES, value);

/** The reason name for a CRLReason code, or undefined for 7 and unknown codes. */
export function reasonFromCode(code: number): RevocationReason | undefined {
  return REVOCATION_REASONS.find((r) => REASON_CODES[r] === code);
}

export interface CrlEntry {
  /** Certificate serial number, unsigned big-endian (leading zeros allowed, stripped on encoding). */
  serial: Buffer;
  revokedAt: Date;
  /** `unspecified` (or absent) omits the reasonCode extension, as RFC 5280 §5.3.1 recommends. */
  reason?: RevocationReason;
  invalidityDate?: Date;
}

/** Entries one by one, or in batches (arrays), synchronously or asynchronously. */
export type CrlEntrySource = Iterable<CrlEntry | readonly CrlEntry[]> | AsyncIterable<CrlEntry | readonly CrlEntry[]>;

export interface BuildCrlParams {
  /** The issuer's subject Name, DER, exactly as in the issuer certificate. */
  issuerNameDer: Buffer;
  /** authorityKeyIdentifier keyIdentifier = the issuer's subjectKeyIdentifier. */
  issuerKeyId: Buffer;
  /** cRLNumber: non-negative, at most 20 octets, monotonic per issuer (the caller's job). */
  number: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
  entries: CrlEntrySource;
  /** When given: a critical issuingDistributionPoint with this fullName URI. Certificates in
   * scope must carry the same URI in their CRL distribution points (strict verifiers, OpenSSL
   * included, check the match). */
  distributionPointUrl?: string;
  /** A delta CRL (RFC 5280 §5.2.4): the critical deltaCRLIndicator naming this base CRL number,
   * which must be below `number`. Entries may then carry `removeFromCRL`. */
  deltaBaseNumber?: bigint;
  /** freshestCRL (RFC 5280 §5.2.6, non-critical): where the delta CRLs for this (complete) CRL are. */
  freshestCrlUrl?: string;
  signer: Signer;
  /**
   * Optional size hint, e.g. from a COUNT(*) just before streaming. With it the CRL is written
   * in place (peak memory ≈ 1× the CRL instead of ≈ 2×: slabs + final copy). A wrong hint is
   * harmless: too low falls back to the copy, too high only reserves address space (the result
   * is then a view into a larger, partly uncommitted allocation).
   */
  expectedEntries?: number;
}

const OID_AKI = '2.5.29.35';
const OID_CRL_NUMBER = '2.5.29.20';
const OID_IDP = '2.5.29.28';
const OID_DELTA_CRL_INDICATOR = '2.5.29.27';
const OID_FRESHEST_CRL = '2.5.29.46';
const OID_REASON_CODE = '2.5.29.21';
const OID_INVALIDITY_DATE = '2.5.29.24';

function fail(detail: string): never {
  throw new SignetError('internal', detail);
}

const algorithmDerCache = new WeakMap<Signer, Buffer>();

/** DER of the signer's AlgorithmIdentifier, cached per Signer. */
export function signatureAlgorithmDer(signer: Signer): Buffer {
  let der = algorithmDerCache.get(signer);
  if (!der) {
    der = Buffer.from(AsnConvert.serialize(signer.algorithm));
    algorithmDerCache.set(signer, der);
  }
  return der;
}

function reasonCode(reason: RevocationReason | undefined): number {
  if (reason === undefined) return 0;
  const code = REASON_CODES[reason];
  if (code === undefined || !Object.hasOwn(REASON_CODES, reason)) fail(`unknown revocation reason ${String(reason)}`);
  return code;
}

function checkEntry(e: CrlEntry): void {
  if (!(e.serial instanceof Uint8Array) || e.serial.length === 0) fail('CRL entry without a serial number');
  if (!(e.revokedAt instanceof Date) || !Number.isFinite(e.revokedAt.getTime())) fail('CRL entry with an invalid revocation date');
  if (e.invalidityDate !== undefined && (!(e.invalidityDate instanceof Date) || !Number.isFinite(e.invalidityDate.getTime()))) {
    fail('CRL entry with an invalid invalidityDate');
  }
}

/**
 * DER of one revokedCertificates element:
 * SEQUENCE { userCertificate INTEGER, revocationDate Time, crlEntryExtensions Extensions OPTIONAL }
 * with reasonCode (non-critical, omitted for `unspecified`) and invalidityDate (GeneralizedTime).
 */
export function encodeCrlEntry(e: CrlEntry): Buffer {
  checkEntry(e);
  const code = reasonCode(e.reason);
  const extensions: Buffer[] = [];
  if (code !== 0) extensions.push(sequence(objectIdentifier(OID_REASON_CODE), octetString(enumerated(code))));
  if (e.invalidityDate) extensions.push(sequence(objectIdentifier(OID_INVALIDITY_DATE), octetString(generalizedTime(e.invalidityDate))));
  const parts = [unsignedInteger(e.serial), time(e.revokedAt)];
  if (extensions.length > 0) parts.push(sequence(...extensions));
  return sequence(...parts);
}

// ---------------------------------------------------------------------------------------------
// Bulk writer: the same bytes as encodeCrlEntry, written in place.

/** 30 0a 06 03 55 1d 15 04 03 0a 01 <code>: the reasonCode extension minus its last byte. */
const REASON_EXT_PREFIX = Buffer.from([0x30, 0x0a, 0x06, 0x03, 0x55, 0x1d, 0x15, 0x04, 0x03, 0x0a, 0x01]);
/** 30 18 06 03 55 1d 18 04 11: the invalidityDate extension up to its GeneralizedTime. */
const INVALIDITY_EXT_PREFIX = Buffer.from([0x30, 0x18, 0x06, 0x03, 0x55, 0x1d, 0x18, 0x04, 0x11]);
const REASON_EXT_LENGTH = REASON_EXT_PREFIX.length + 1; // 12
const INVALIDITY_EXT_LENGTH = INVALIDITY_EXT_PREFIX.length + 17; // 26

const MIN_SLAB = 64 * 1024;
const MAX_SLAB = 4 * 1024 * 1024;

/**
 * Entry bytes go into slabs. Optionally the first "slab" is an arena: one buffer sized from
 * the caller's entry-count hint, with room left in front (headers, fixed TBS fields) and
 * behind (extensions, signature), so a CRL that fits is finished in place with no copy.
 * Memory for a large Buffer is committed by the OS only when written, so an over-estimate
 * costs address space, not RSS.
 */
class SlabWriter {
  readonly chunks: Buffer[] = [];
  total = 0;
  buf: Buffer;
  pos: number;
  /** Where the current, not yet flushed chunk begins in buf. */
  private chunkStart: number;
  /** Entries may be written up to here (the arena keeps its tail free). */
  private limit: number;
  private slabSize = MIN_SLAB;
  /** True while every entry so far is contiguous in the arena. */
  inArena: boolean;

  constructor(arena?: { buf: Buffer; start: number; limit: number }) {
    this.buf = arena ? arena.buf : Buffer.allocUnsafeSlow(MIN_SLAB);
    this.pos = this.chunkStart = arena ? arena.start : 0;
    this.limit = arena ? arena.limit : this.buf.length;
    this.inArena = arena !== undefined;
  }

  /** Makes room for n contiguous bytes at this.pos. */
  reserve(n: number): void {
    if (this.pos + n <= this.limit) return;
    this.flush();
    this.inArena = false;
    this.slabSize = Math.min(this.slabSize * 2, MAX_SLAB);
    this.buf = Buffer.allocUnsafeSlow(Math.max(n, this.slabSize));
    this.pos = this.chunkStart = 0;
    this.limit = this.buf.length;
  }

  flush(): void {
    if (this.pos === this.chunkStart) return;
    this.chunks.push(this.buf.subarray(this.chunkStart, this.pos));
    this.total += this.pos - this.chunkStart;
    this.chunkStart = this.pos;
  }
}

const lengthOfLength = (n: number): number => (n < 0x80 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : n < 0x1000000 ? 4 : 5);

function writeLength(buf: Buffer, p: number, n: number): number {
  if (n < 0x80) {
    buf[p] = n;
    return p + 1;
  }
  const k = lengthOfLength(n) - 1;
  buf[p++] = 0x80 | k;
  for (let i = k - 1; i >= 0; i--) buf[p++] = Math.floor(n / 2 ** (8 * i)) & 0xff;
  return p;
}

function write2(buf: Buffer, p: number, v: number): void {
  buf[p] = 0x30 + ((v / 10) | 0);
  buf[p + 1] = 0x30 + (v % 10);
}

/** Writes UTCTime (1950..2049) or GeneralizedTime, like der.time / der.generalizedTime. */
function writeTime(buf: Buffer, p: number, d: Date, generalized: boolean): number {
  const y = d.getUTCFullYear();
  if (!generalized && y >= 1950 && y < 2050) {
    buf[p++] = 0x17;
    buf[p++] = 13;
    write2(buf, p, y % 100);
    p += 2;
  } else {
    if (y < 0 || y > 9999) fail(`date ${d.toISOString()} cannot be encoded as GeneralizedTime`);
    buf[p++] = 0x18;
    buf[p++] = 15;
    write2(buf, p, (y / 100) | 0);
    write2(buf, p + 2, y % 100);
    p += 4;
  }
  write2(buf, p, d.getUTCMonth() + 1);
  write2(buf, p + 2, d.getUTCDate());
  write2(buf, p + 4, d.getUTCHours());
  write2(buf, p + 6, d.getUTCMinutes());
  write2(buf, p + 8, d.getUTCSeconds());
  buf[p + 10] = 0x5a; // Z
  return p + 11;
}

const timeLength = (d: Date): number => {
  const y = d.getUTCFullYear();
  return y >= 1950 && y < 2050 ? 15 : 17;
};

function writeEntry(w: SlabWriter, e: CrlEntry): void {
  checkEntry(e);
  const serial = e.serial;
  let s = 0;
  while (s < serial.length - 1 && serial[s] === 0) s++;
  const pad = serial[s]! & 0x80 ? 1 : 0;
  const intLen = serial.length - s + pad;
  const intTlv = 1 + lengthOfLength(intLen) + intLen;
  const code = reasonCode(e.reason);
  const extLen = (code !== 0 ? REASON_EXT_LENGTH : 0) + (e.invalidityDate ? INVALIDITY_EXT_LENGTH : 0);
  const content = intTlv + timeLength(e.revokedAt) + (extLen > 0 ? 2 + extLen : 0);
  const total = 1 + lengthOfLength(content) + content;

  w.reserve(total);
  const buf = w.buf;
  let p = w.pos;
  buf[p++] = 0x30;
  p = writeLength(buf, p, content);
  buf[p++] = 0x02;
  p = writeLength(buf, p, intLen);
  if (pad) buf[p++] = 0;
  p += serial.copy(buf, p, s);
  p = writeTime(buf, p, e.revokedAt, false);
  if (extLen > 0) {
    buf[p++] = 0x30;
    buf[p++] = extLen; // at most 38
    if (code !== 0) {
      p += REASON_EXT_PREFIX.copy(buf, p);
      buf[p++] = code;
    }
    if (e.invalidityDate) {
      p += INVALIDITY_EXT_PREFIX.copy(buf, p);
      p = writeTime(buf, p, e.invalidityDate, true);
    }
  }
  w.pos = p;
}

function writeItem(w: SlabWriter, item: CrlEntry | readonly CrlEntry[]): void {
  if (Array.isArray(item)) {
    for (const e of item as readonly CrlEntry[]) writeEntry(w, e);
  } else {
    writeEntry(w, item as CrlEntry);
  }
}

function isAsyncIterable<T>(x: unknown): x is AsyncIterable<T> {
  return x != null && typeof (x as AsyncIterable<T>)[Symbol.asyncIterator] === 'function';
}

const header = (tag: number, length: number): Buffer => Buffer.concat([Buffer.from([tag]), encodeLength(length)]);

const VERSION_V2 = Buffer.from([0x02, 0x01, 0x01]);
/** Room for the outer SEQUENCE header in front of the TBS (tag + up to 5 length bytes). */
const OUTER_HEADER_ROOM = 6;
/** Room after the TBS for the signature; enough for RSA-8192. Larger signatures fall back to a copy. */
const SIGNATURE_ROOM = 1100;

/**
 * Builds and signs a v2 CRL. Resolves to the CertificateList DER.
 *
 * TBSCertList: version v2, signature, issuer, thisUpdate, nextUpdate (UTCTime before 2050),
 * revokedCertificates (omitted when empty, RFC 5280 §5.1.2.6), and crlExtensions:
 * authorityKeyIdentifier (keyIdentifier), cRLNumber, and issuingDistributionPoint (critical,
 * fullName URI) when `distributionPointUrl` is given; deltaCRLIndicator (critical) for a delta
 * CRL, freshestCRL for a complete CRL that has deltas.
 */
export async function buildCrl(params: BuildCrlParams): Promise<Buffer> {
  const { issuerNameDer, issuerKeyId, number, thisUpdate, nextUpdate, entries, distributionPointUrl, deltaBaseNumber, freshestCrlUrl, signer } = params;

  try {
    const h = readHeader(issuerNameDer, 0);
    if (h.tag !== 0x30 || h.headerLength + h.length !== issuerNameDer.length) throw new Error('not one SEQUENCE');
  } catch {
    fail('issuerNameDer is not a DER Name');
  }
  if (!(issuerKeyId instanceof Uint8Array) || issuerKeyId.length === 0) fail('issuerKeyId is empty');
  if (typeof number !== 'bigint' || number < 0n || number >= 1n << 159n) fail('cRLNumber must be a non-negative integer of at most 20 octets');
  if (!Number.isFinite(thisUpdate.getTime()) || !Number.isFinite(nextUpdate.getTime())) fail('invalid thisUpdate or nextUpdate');
  if (nextUpdate.getTime() <= thisUpdate.getTime()) fail('nextUpdate must be later than thisUpdate');
  if (distributionPointUrl !== undefined && !/^[\x21-\x7e]+$/.test(distributionPointUrl)) {
    fail('distributionPointUrl must be a non-empty ASCII URI without spaces');
  }
  if (freshestCrlUrl !== undefined && !/^[\x21-\x7e]+$/.test(freshestCrlUrl)) fail('freshestCrlUrl must be a non-empty ASCII URI without spaces');
  if (deltaBaseNumber !== undefined) {
    // RFC 5280 §5.2.4: the delta's own number is greater than its base's; a delta CRL never
    // carries freshestCRL (that extension points from a complete CRL to its deltas).
    if (typeof deltaBaseNumber !== 'bigint' || deltaBaseNumber < 0n || deltaBaseNumber >= number) fail('deltaBaseNumber must be below the delta CRL number');
    if (freshestCrlUrl !== undefined) fail('a delta CRL does not carry freshestCRL');
  }

  // 1. Everything but the entries is known up front.
  const sigAlg = signatureAlgorithmDer(signer);
  const prefix = Buffer.concat([VERSION_V2, sigAlg, issuerNameDer, time(thisUpdate), time(nextUpdate)]);
  const extensions = [
    sequence(objectIdentifier(OID_AKI), octetString(sequence(tlv(0x80, issuerKeyId)))),
    sequence(objectIdentifier(OID_CRL_NUMBER), octetString(smallInteger(number))),
  ];
  if (distributionPointUrl !== undefined) {
    // IssuingDistributionPoint ::= SEQUENCE { distributionPoint [0] DistributionPointName, ... }
    // DistributionPointName ::= CHOICE { fullName [0] IMPLICIT GeneralNames, ... }; URI = [6] IA5String.
    const uri = tlv(0x86, Buffer.from(distributionPointUrl, 'ascii'));
    const idp = sequence(tlv(0xa0, tlv(0xa0, uri)));
    extensions.push(sequence(objectIdentifier(OID_IDP), booleanTrue, octetString(idp)));
  }
  if (deltaBaseNumber !== undefined) {
    // BaseCRLNumber ::= CRLNumber; the extension is critical (RFC 5280 §5.2.4).
    extensions.push(sequence(objectIdentifier(OID_DELTA_CRL_INDICATOR), booleanTrue, octetString(smallInteger(deltaBaseNumber))));
  }
  if (freshestCrlUrl !== undefined) {
    // FreshestCRL ::= CRLDistributionPoints: SEQUENCE OF DistributionPoint { [0] { fullName [0] { URI } } }.
    const dp = sequence(tlv(0xa0, tlv(0xa0, tlv(0x86, Buffer.from(freshestCrlUrl, 'ascii')))));
    extensions.push(sequence(objectIdentifier(OID_FRESHEST_CRL), octetString(sequence(dp))));
  }
  const crlExtensions = contextExplicit(0, sequence(...extensions));
  // Layout: [outer header][TBS header][prefix][revokedCertificates header][entries][crlExtensions][sigAlg][signature]
  const front = OUTER_HEADER_ROOM + MAX_HEADER + prefix.length + MAX_HEADER;
  const tail = crlExtensions.length + sigAlg.length + SIGNATURE_ROOM;

  // 2. Entries, straight into an arena (with a size hint) and/or slabs.
  const w = new SlabWriter(allocateArena(params.expectedEntries, front, tail));
  if (isAsyncIterable<CrlEntry | readonly CrlEntry[]>(entries)) {
    for await (const item of entries) writeItem(w, item);
  } else {
    for (const item of entries) writeItem(w, item);
  }
  w.flush();
  const revokedLength = w.total;
  const revokedHeader = revokedLength > 0 ? header(0x30, revokedLength) : EMPTY;
  const tbsContentLength = prefix.length + revokedHeader.length + revokedLength + crlExtensions.length;
  const tbsHeader = header(0x30, tbsContentLength);
  const tbsLength = tbsHeader.length + tbsContentLength;

  // 3. The TBS, contiguous, with room for the outer header before it and the signature after.
  let out: Buffer;
  let tbsStart: number;
  let p: number;
  if (w.inArena && revokedLength > 0) {
    // In place: the entries already sit in the arena at `front`; write the rest around them.
    out = w.buf;
    const entriesStart = front;
    tbsStart = entriesStart - revokedHeader.length - prefix.length - tbsHeader.length;
    p = tbsStart;
    p += tbsHeader.copy(out, p);
    p += prefix.copy(out, p);
    p += revokedHeader.copy(out, p);
    p += revokedLength;
  } else {
    out = Buffer.allocUnsafe(OUTER_HEADER_ROOM + tbsLength + sigAlg.length + SIGNATURE_ROOM);
    tbsStart = OUTER_HEADER_ROOM;
    p = tbsStart;
    p += tbsHeader.copy(out, p);
    p += prefix.copy(out, p);
    p += revokedHeader.copy(out, p);
    for (let i = 0; i < w.chunks.length; i++) {
      p += w.chunks[i]!.copy(out, p);
      w.chunks[i] = EMPTY; // let the slab go as soon as it is copied
    }
  }
  p += crlExtensions.copy(out, p);
  const tbsEnd = p;
  if (tbsEnd - tbsStart !== tbsLength) fail('CRL length mismatch (bug)');

  // 4. Sign the TBS where it lies and append the signature.
  const signature = await signer.sign(out.subarray(tbsStart, tbsEnd));
  const sigBitString = Buffer.concat([header(0x03, signature.length + 1), Buffer.from([0]), signature]);
  const outerHeader = header(0x30, tbsLength + sigAlg.length + sigBitString.length);
  if (sigAlg.length + sigBitString.length > out.length - tbsEnd || outerHeader.length > tbsStart) {
    return Buffer.concat([outerHeader, out.subarray(tbsStart, tbsEnd), sigAlg, sigBitString]);
  }
  p += sigAlg.copy(out, p);
  p += sigBitString.copy(out, p);
  const start = tbsStart - outerHeader.length;
  outerHeader.copy(out, start);
  return out.subarray(start, p);
}

/** Upper bound of one entry with a serial of at most 20 octets and both entry extensions. */
const MAX_TYPICAL_ENTRY = 2 + 23 + 17 + 2 + REASON_EXT_LENGTH + INVALIDITY_EXT_LENGTH; // 82
const MAX_HEADER = 6;
const MAX_ARENA = 1024 * 1024 * 1024;

function allocateArena(expectedEntries: number | undefined, front: number, tail: number): { buf: Buffer; start: number; limit: number } | undefined {
  if (expectedEntries === undefined || !Number.isFinite(expectedEntries) || expectedEntries <= 0) return undefined;
  const size = front + Math.ceil(expectedEntries) * MAX_TYPICAL_ENTRY + tail;
  if (size > MAX_ARENA) return undefined;
  try {
    const buf = Buffer.allocUnsafeSlow(size);
    return { buf, start: front, limit: size - tail };
  } catch {
    return undefined; // no address space: the slab path still works
  }
}

const EMPTY = Buffer.alloc(0);
