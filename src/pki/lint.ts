/**
 * Pre-issuance lint: re-reads the to-be-signed certificate exactly as encoded and checks it
 * against RFC 5280 and the profile before any CA signature exists. A finding is a Signet bug
 * (the template should never produce it), so the caller records it and issues nothing.
 *
 * One list of rules per kind of certificate (LEAF_RULES; CA_RULES and RESPONDER_RULES for the
 * CA and OCSP responder certificates Signet signs) over one view of the TBS (tbs-view.ts). The
 * view comes from a strict DER walk, or, when the walk cannot read the TBS, from the schema
 * parser; the rules do not know which, so a rule added to a list runs on every such signature.
 */
import { KeyUsageFlags } from '@peculiar/asn1-x509';
import { el, kids, strictOid } from './der-strict.js';
import { EKU, EXT } from './extensions.js';
import { flagsBeyondKey } from './key-usage.js';
import { OID } from './keys.js';
import { PQ_BY_OID } from './post-quantum.js';
import type { KeyFamily } from './public-key.js';
import { isSanProblem, readSanList, type SanProblem } from './general-names.js';
import { validateSan, type SanEntry } from './names.js';
import { extensionOf, isEmptyName, readTbsViewFast, readTbsViewFull, type TbsView } from './tbs-view.js';

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

/**
 * What a CA certificate must say. A root is its own issuer: its subject, its own key identifier
 * and its own notAfter. `subordinate`: issued under a parent, so it carries the parent's AIA and
 * CRL distribution point.
 */
export interface CaLintExpectations {
  issuerNameDer: Buffer;
  issuerKeyId: Buffer;
  issuerNotAfter: Date;
  signatureAlgorithmDer: Buffer;
  maxValidityMs: number;
  spkiDer: Buffer;
  subordinate: boolean;
}

/** What a delegated OCSP responder certificate must say (RFC 6960 §4.2.2.2). */
export interface ResponderLintExpectations {
  issuerNameDer: Buffer;
  issuerKeyId: Buffer;
  issuerNotAfter: Date;
  signatureAlgorithmDer: Buffer;
  maxValidityMs: number;
  spkiDer: Buffer;
  /** Always ['ocspSigning']; a field so that the leaf's extKeyUsage rule reads it. */
  extKeyUsage: string[];
}

/** A rule appends its findings (none when the TBS passes it) to `f`. */
export type LintRule<X = LintExpectations> = (v: TbsView, x: X, f: string[]) => void;

/**
 * Returns the findings; empty means the TBS may be signed. What issuance calls: the DER walk
 * reads the TBS, the schema parser only when the walk cannot.
 */
export function lintLeafTbs(tbs: Buffer, x: LintExpectations): string[] {
  return lintView(readTbsViewFast(tbs) ?? readTbsViewFull(tbs), x);
}

/** The rules over the schema parser's view. Same findings as lintLeafTbs; for tests and benchmarks. */
export function lintLeafTbsFull(tbs: Buffer, x: LintExpectations): string[] {
  return lintView(readTbsViewFull(tbs), x);
}

/** The rules over the DER walk's view; null where the walk cannot read the TBS. For tests. */
export function lintLeafTbsFast(tbs: Buffer, x: LintExpectations): string[] | null {
  const v = readTbsViewFast(tbs);
  return v && lintView(v, x);
}

/** The findings of every rule, in list order; a TBS that does not parse has that one finding. */
export function lintView(v: TbsView | string, x: LintExpectations): string[] {
  return runRules(LEAF_RULES, v, x);
}

/** A CA certificate's TBS against CA_RULES. */
export function lintCaTbs(tbs: Buffer, x: CaLintExpectations): string[] {
  return runRules(CA_RULES, readTbsViewFast(tbs) ?? readTbsViewFull(tbs), x);
}

/** An OCSP responder certificate's TBS against RESPONDER_RULES. */
export function lintResponderTbs(tbs: Buffer, x: ResponderLintExpectations): string[] {
  return runRules(RESPONDER_RULES, readTbsViewFast(tbs) ?? readTbsViewFull(tbs), x);
}

function runRules<X>(rules: readonly LintRule<X>[], v: TbsView | string, x: X): string[] {
  if (typeof v === 'string') return [v];
  const f: string[] = [];
  for (const rule of rules) rule(v, x, f);
  return f;
}

/** The expectations every kind of certificate has; the rules below read no more than they need. */
type Common = Pick<LintExpectations, 'issuerNameDer' | 'issuerKeyId' | 'issuerNotAfter' | 'signatureAlgorithmDer' | 'maxValidityMs' | 'spkiDer'>;

/** Byte equality of two encodings. */
const same = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && Buffer.compare(a, b) === 0;

// ---------------------------------------------------------------------------------------------
// The rules, in the order their findings are reported.

function noTrailingBytes(v: TbsView, _x: unknown, f: string[]): void {
  if (v.trailingBytes) f.push('TBS has trailing bytes');
}

function versionIs3(v: TbsView, _x: unknown, f: string[]): void {
  if (v.version !== 2) f.push(`version is ${v.version + 1}, expected 3`);
}

function serialIsPositive(v: TbsView, _x: unknown, f: string[]): void {
  if (v.serial[0]! & 0x80) f.push('serial number is negative');
}

/** The serial's length without its sign byte. */
const serialLength = (v: TbsView): number => (v.serial[0] === 0 ? v.serial.length - 1 : v.serial.length);

function serialAtMost20Bytes(v: TbsView, _x: unknown, f: string[]): void {
  const n = serialLength(v);
  if (n > 20) f.push(`serial number is ${n} bytes, more than 20`);
}

function serialHas64RandomBits(v: TbsView, _x: unknown, f: string[]): void {
  const n = serialLength(v);
  if (n < 9) f.push(`serial number is ${n} bytes, fewer than the 64 random bits required`);
}

function signatureAlgorithmIsIssuerKeys(v: TbsView, x: Pick<Common, 'signatureAlgorithmDer'>, f: string[]): void {
  if (!same(v.signatureAlgorithm, x.signatureAlgorithmDer)) f.push("signature algorithm differs from the issuer key's");
}

function issuerIsIssuerSubject(v: TbsView, x: Pick<Common, 'issuerNameDer'>, f: string[]): void {
  if (!same(v.issuer, x.issuerNameDer)) f.push("issuer name differs from the issuer certificate's subject");
}

function notBeforeBeforeNotAfter(v: TbsView, _x: unknown, f: string[]): void {
  if (!(v.notBefore < v.notAfter)) f.push('notBefore is not before notAfter');
}

function notBeforeWithinIssuer(v: TbsView, x: LintExpectations, f: string[]): void {
  if (v.notBefore < x.issuerNotBefore.getTime()) f.push("notBefore precedes the issuer's notBefore");
}

function notAfterWithinIssuer(v: TbsView, x: Pick<Common, 'issuerNotAfter'>, f: string[]): void {
  if (v.notAfter > x.issuerNotAfter.getTime()) f.push("notAfter is past the issuer's notAfter");
}

function validityWithinProfile(v: TbsView, x: Pick<Common, 'maxValidityMs'>, f: string[]): void {
  // Two minutes of slack: notBefore is backdated a little for clock skew.
  if (v.notAfter - v.notBefore > x.maxValidityMs + 120_000) f.push('validity exceeds the profile maximum');
}

function keyIsRequestedKey(v: TbsView, x: Pick<Common, 'spkiDer'>, f: string[]): void {
  // The key was parsed and proven when the CSR was checked; here it must be those exact bytes.
  if (!same(v.spki, x.spkiDer)) f.push('subject public key differs from the requested key');
}

const KNOWN = new Set<string>([
  EXT.basicConstraints,
  EXT.keyUsage,
  EXT.extKeyUsage,
  EXT.subjectKeyIdentifier,
  EXT.authorityKeyIdentifier,
  EXT.subjectAltName,
  EXT.authorityInfoAccess,
  EXT.crlDistributionPoints,
  EXT.ocspNoCheck,
]);

/** One rule, not two: its findings are reported extension by extension, in the TBS's order. */
function onceAndKnownIfCritical(known: ReadonlySet<string>, v: TbsView, f: string[]): void {
  const seen = new Set<string>();
  for (const e of v.extensions) {
    if (seen.has(e.id)) f.push(`extension ${e.id} appears twice`);
    seen.add(e.id);
    if (!known.has(e.id) && e.critical) f.push(`unknown critical extension ${e.id}`);
  }
}

function extensionsOnceAndKnownIfCritical(v: TbsView, _x: unknown, f: string[]): void {
  onceAndKnownIfCritical(KNOWN, v, f);
}

function basicConstraintsPresent(v: TbsView, _x: unknown, f: string[]): void {
  if (!extensionOf(v, EXT.basicConstraints)) f.push('basicConstraints is missing');
}

function basicConstraintsCritical(v: TbsView, _x: unknown, f: string[]): void {
  if (extensionOf(v, EXT.basicConstraints)?.critical === false) f.push('basicConstraints is not critical');
}

function leafIsNotCa(v: TbsView, _x: unknown, f: string[]): void {
  if (v.basicConstraintsCa) f.push('leaf certificate has CA:TRUE');
}

function keyUsagePresent(v: TbsView, _x: unknown, f: string[]): void {
  if (!extensionOf(v, EXT.keyUsage)) f.push('keyUsage is missing');
}

function keyUsageCritical(v: TbsView, _x: unknown, f: string[]): void {
  if (extensionOf(v, EXT.keyUsage)?.critical === false) f.push('keyUsage is not critical');
}

function keyUsageNotForCas(v: TbsView, _x: unknown, f: string[]): void {
  if ((v.keyUsageFlags ?? 0) & (KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign)) f.push('leaf keyUsage includes keyCertSign or cRLSign');
}

/** An AlgorithmIdentifier's OID and whether it carries parameters; null when it is not one. */
function algorithmOf(der: Uint8Array): { oid: string; hasParameters: boolean } | null {
  const seq = el(der, 0, der.length);
  const parts = seq && seq.tag === 0x30 ? kids(der, seq) : null;
  const oid = parts?.[0] ? strictOid(der, parts[0]) : null;
  return oid === null ? null : { oid, hasParameters: parts!.length > 1 };
}

/** The SubjectPublicKeyInfo's AlgorithmIdentifier. */
function spkiAlgorithm(spki: Uint8Array): { oid: string; hasParameters: boolean } | null {
  const seq = el(spki, 0, spki.length);
  const alg = seq && seq.tag === 0x30 ? kids(spki, seq)?.[0] : undefined;
  return alg ? algorithmOf(spki.subarray(alg.start, alg.end)) : null;
}

const CLASSICAL_FAMILY: Record<string, KeyFamily> = { [OID.ecPublicKey]: 'ecdsa', [OID.rsaEncryption]: 'rsa', [OID.ed25519]: 'ed25519' };

/** keyUsage asks only what the key can do (key-usage.ts): an ML-DSA key never enciphers, an ML-KEM key only enciphers keys. */
function keyUsageSuitsKey(v: TbsView, _x: unknown, f: string[]): void {
  const alg = spkiAlgorithm(v.spki);
  const family = alg ? (CLASSICAL_FAMILY[alg.oid] ?? PQ_BY_OID.get(alg.oid)?.family) : undefined;
  if (!family || v.keyUsageFlags === undefined) return;
  const beyond = flagsBeyondKey(family, v.keyUsageFlags);
  if (beyond.length) f.push(`keyUsage ${beyond.join(', ')} is not allowed for ${PQ_BY_OID.get(alg!.oid)?.label ?? family} keys`);
}

/** RFC 9881 §2 / RFC 9909 / RFC 9935: a post-quantum AlgorithmIdentifier has no parameters, in the key and in the signature. */
function postQuantumParametersAbsent(v: TbsView, _x: unknown, f: string[]): void {
  for (const [what, alg] of [
    ['subject public key', spkiAlgorithm(v.spki)],
    ['signature', algorithmOf(v.signatureAlgorithm)],
  ] as const) {
    const pq = alg && PQ_BY_OID.get(alg.oid);
    if (pq && alg.hasParameters) f.push(`${what} algorithm ${pq.label} has parameters; they must be absent`);
  }
}

function keyUsageNotEmpty(v: TbsView, _x: unknown, f: string[]): void {
  if (v.keyUsageFlags !== undefined && !v.keyUsageFlags) f.push('keyUsage is empty');
}

function extKeyUsageIsProfiles(v: TbsView, x: Pick<LintExpectations, 'extKeyUsage'>, f: string[]): void {
  const ekus = v.extKeyUsage ?? [];
  const want = x.extKeyUsage.map((k) => EKU[k as keyof typeof EKU] ?? k);
  if (ekus.length !== want.length || want.some((w) => !ekus.includes(w)))
    f.push(`extKeyUsage is ${ekus.join(',') || 'absent'}, profile requires ${want.join(',')}`);
}

function subjectKeyIdentifierPresent(v: TbsView, _x: unknown, f: string[]): void {
  if (!extensionOf(v, EXT.subjectKeyIdentifier)) f.push('subjectKeyIdentifier is missing');
}

function authorityKeyIdentifierPresent(v: TbsView, _x: unknown, f: string[]): void {
  if (v.authorityKeyId === undefined) f.push('authorityKeyIdentifier is missing');
}

function authorityKeyIdentifierIsIssuers(v: TbsView, x: Pick<Common, 'issuerKeyId'>, f: string[]): void {
  if (v.authorityKeyId === undefined) return;
  if (v.authorityKeyId === null || !same(v.authorityKeyId, x.issuerKeyId)) f.push("authorityKeyIdentifier does not match the issuer's subjectKeyIdentifier");
}

function authorityInfoAccessPresent(v: TbsView, _x: unknown, f: string[]): void {
  if (!extensionOf(v, EXT.authorityInfoAccess)) f.push('authorityInfoAccess is missing');
}

function crlDistributionPointsPresent(v: TbsView, _x: unknown, f: string[]): void {
  if (!extensionOf(v, EXT.crlDistributionPoints)) f.push('cRLDistributionPoints is missing');
}

function sanPresentWhenRequired(v: TbsView, x: LintExpectations, f: string[]): void {
  if (x.requireSan && !v.subjectAltNames) f.push('subjectAltName is required by the profile but missing');
}

function sanPresentWhenSubjectEmpty(v: TbsView, _x: unknown, f: string[]): void {
  if (isEmptyName(v.subject) && !v.subjectAltNames) f.push('subject is empty and there is no subjectAltName');
}

function sanCriticalWhenSubjectEmpty(v: TbsView, _x: unknown, f: string[]): void {
  if (isEmptyName(v.subject) && extensionOf(v, EXT.subjectAltName)?.critical === false) f.push('subjectAltName must be critical when the subject is empty');
}

function sanNotEmpty(v: TbsView, _x: unknown, f: string[]): void {
  if (v.subjectAltNames?.length === 0) f.push('subjectAltName is empty');
}

function sanEntriesWellFormed(v: TbsView, _x: unknown, f: string[]): void {
  for (const entry of v.subjectAltNames ?? []) {
    if (isSanProblem(entry)) {
      f.push(sanFinding(entry));
      continue;
    }
    try {
      validateSan(entry);
    } catch (e) {
      f.push(`subjectAltName entry is malformed: ${(e as Error).message}`);
    }
  }
}

/**
 * Every rule, in the order their findings are reported. The only list: lintLeafTbs runs it
 * whichever reader built the view.
 */
export const LEAF_RULES: readonly LintRule[] = [
  noTrailingBytes,
  versionIs3,
  serialIsPositive,
  serialAtMost20Bytes,
  serialHas64RandomBits,
  signatureAlgorithmIsIssuerKeys,
  issuerIsIssuerSubject,
  notBeforeBeforeNotAfter,
  notBeforeWithinIssuer,
  notAfterWithinIssuer,
  validityWithinProfile,
  keyIsRequestedKey,
  extensionsOnceAndKnownIfCritical,
  basicConstraintsPresent,
  basicConstraintsCritical,
  leafIsNotCa,
  keyUsagePresent,
  keyUsageCritical,
  keyUsageNotForCas,
  keyUsageNotEmpty,
  keyUsageSuitsKey,
  postQuantumParametersAbsent,
  extKeyUsageIsProfiles,
  subjectKeyIdentifierPresent,
  authorityKeyIdentifierPresent,
  authorityKeyIdentifierIsIssuers,
  authorityInfoAccessPresent,
  crlDistributionPointsPresent,
  sanPresentWhenRequired,
  sanPresentWhenSubjectEmpty,
  sanCriticalWhenSubjectEmpty,
  sanNotEmpty,
  sanEntriesWellFormed,
];

// ---------------------------------------------------------------------------------------------
// CA and OCSP responder certificates: the rules above that apply to them, and their own.

/** Extensions a CA certificate may mark critical: the leaf's, and nameConstraints. */
const KNOWN_FOR_CA = new Set<string>([...KNOWN, EXT.nameConstraints]);

function caExtensionsOnceAndKnownIfCritical(v: TbsView, _x: unknown, f: string[]): void {
  onceAndKnownIfCritical(KNOWN_FOR_CA, v, f);
}

function subjectNotEmpty(v: TbsView, _x: unknown, f: string[]): void {
  // RFC 5280 §4.1.2.6: a CA's subject is what its children name as their issuer.
  if (isEmptyName(v.subject)) f.push('subject is empty');
}

function caIsCa(v: TbsView, _x: unknown, f: string[]): void {
  if (v.basicConstraintsCa !== true) f.push('CA certificate lacks CA:TRUE');
}

function keyUsageSignsCertificatesAndCrls(v: TbsView, _x: unknown, f: string[]): void {
  const need = KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign;
  if (((v.keyUsageFlags ?? 0) & need) !== need) f.push('CA keyUsage lacks keyCertSign or cRLSign');
}

function caHasNoExtKeyUsage(v: TbsView, _x: unknown, f: string[]): void {
  if (v.extKeyUsage !== undefined) f.push('CA certificate has extKeyUsage');
}

/** A subordinate CA points to its parent's OCSP and CRL like a leaf does; a root has nothing to point to. */
function issuerPointersWhenSubordinate(v: TbsView, x: Pick<CaLintExpectations, 'subordinate'>, f: string[]): void {
  const aia = extensionOf(v, EXT.authorityInfoAccess) !== undefined;
  const cdp = extensionOf(v, EXT.crlDistributionPoints) !== undefined;
  if (x.subordinate && !aia) f.push('authorityInfoAccess is missing');
  if (x.subordinate && !cdp) f.push('cRLDistributionPoints is missing');
  if (!x.subordinate && (aia || cdp)) f.push('self-signed CA certificate carries authorityInfoAccess or cRLDistributionPoints');
}

function ocspNoCheckPresent(v: TbsView, _x: unknown, f: string[]): void {
  // RFC 6960 §4.2.2.2.1: without it a client would have to check the responder's own status.
  if (!extensionOf(v, EXT.ocspNoCheck)) f.push('id-pkix-ocsp-nocheck is missing');
}

function noSubjectAltName(v: TbsView, _x: unknown, f: string[]): void {
  if (extensionOf(v, EXT.subjectAltName)) f.push('certificate has a subjectAltName it should not');
}

/** The structural rules CA and responder certificates share (their subject must not be empty). */
const CA_SIGNED_STRUCTURE = [
  noTrailingBytes,
  versionIs3,
  serialIsPositive,
  serialAtMost20Bytes,
  serialHas64RandomBits,
  signatureAlgorithmIsIssuerKeys,
  issuerIsIssuerSubject,
  subjectNotEmpty,
  notBeforeBeforeNotAfter,
  notAfterWithinIssuer,
  validityWithinProfile,
  keyIsRequestedKey,
] as const;

/**
 * A CA certificate (root or intermediate) as ca-template.ts makes it. Not checked against the
 * issuer's notBefore: a CA certificate is backdated a minute, and a parent made (or imported)
 * less than a minute ago still signs.
 */
export const CA_RULES: readonly LintRule<CaLintExpectations>[] = [
  ...CA_SIGNED_STRUCTURE,
  caExtensionsOnceAndKnownIfCritical,
  basicConstraintsPresent,
  basicConstraintsCritical,
  caIsCa,
  keyUsagePresent,
  keyUsageCritical,
  keyUsageSignsCertificatesAndCrls,
  keyUsageSuitsKey,
  postQuantumParametersAbsent,
  caHasNoExtKeyUsage,
  subjectKeyIdentifierPresent,
  authorityKeyIdentifierPresent,
  authorityKeyIdentifierIsIssuers,
  issuerPointersWhenSubordinate,
  noSubjectAltName,
];

/**
 * A delegated OCSP responder certificate as responder-template.ts makes it: an end-entity
 * certificate for OCSPSigning only, with ocsp-nocheck. Not checked against the issuer's
 * notBefore, for the same reason as CA_RULES.
 */
export const RESPONDER_RULES: readonly LintRule<ResponderLintExpectations>[] = [
  ...CA_SIGNED_STRUCTURE,
  extensionsOnceAndKnownIfCritical,
  basicConstraintsPresent,
  basicConstraintsCritical,
  leafIsNotCa,
  keyUsagePresent,
  keyUsageCritical,
  keyUsageNotForCas,
  keyUsageNotEmpty,
  keyUsageSuitsKey,
  postQuantumParametersAbsent,
  extKeyUsageIsProfiles,
  ocspNoCheckPresent,
  subjectKeyIdentifierPresent,
  authorityKeyIdentifierPresent,
  authorityKeyIdentifierIsIssuers,
  noSubjectAltName,
];

// ---------------------------------------------------------------------------------------------
// SAN entries as findings

/** A GeneralName Signet does not issue, as a lint finding. */
function sanFinding(p: SanProblem): string {
  switch (p.problem) {
    case 'ip-length':
      return `iPAddress of ${p.length} bytes`;
    case 'form':
      return `unsupported GeneralName tag 0x${p.tag.toString(16)}`;
    case 'text':
      return `subjectAltName entry is malformed: ${p.form} is not valid IA5String text`;
  }
}

/**
 * A subjectAltName extnValue's entries (general-names.ts), each an issuable SAN or the finding
 * naming why it is not one. Throws when the value is not one strict-DER GeneralNames SEQUENCE.
 */
export function readSanEntries(der: Uint8Array): (SanEntry | string)[] {
  return readSanList(der).map((e) => (isSanProblem(e) ? sanFinding(e) : e));
}
