/**
 * A test-only verifier for post-quantum certificates, CRLs and OCSP responses built from code
 * nobody on the project wrote: structures parsed by @peculiar/asn1-x509 / asn1-ocsp, signatures
 * checked by @noble/post-quantum (FIPS 204 ML-DSA, FIPS 205 SLH-DSA). It imports nothing from
 * src/ on purpose: a bug shared by Signet's signer and Signet's own checks cannot hide here.
 *
 * Rules (RFC 9881 for ML-DSA, RFC 9909 for SLH-DSA): the signature algorithm is the bare OID
 * with parameters absent; the issuer's SubjectPublicKeyInfo carries the same OID, also without
 * parameters; pure mode with an empty context. The bytes checked are the TBS exactly as received
 * (sliced out of the DER, never re-encoded), so any flipped byte is caught.
 */
import { createHash } from 'node:crypto';
import { ml_dsa44, ml_dsa65, ml_dsa87 } from '@noble/post-quantum/ml-dsa.js';
import { slh_dsa_sha2_128s } from '@noble/post-quantum/slh-dsa.js';
import { BasicOCSPResponse, OCSPResponse, OCSPResponseStatus, id_pkix_ocsp_basic } from '@peculiar/asn1-ocsp';
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  type AlgorithmIdentifier,
  BasicConstraints,
  Certificate,
  CertificateList,
  ExtendedKeyUsage,
  KeyUsage,
  KeyUsageFlags,
  type Name,
  id_ce_basicConstraints,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
} from '@peculiar/asn1-x509';

type Verify = (sig: Uint8Array, msg: Uint8Array, publicKey: Uint8Array) => boolean;

/** Signature OID → the independent implementation that checks it. */
export const PQ_SCHEMES: ReadonlyMap<string, { label: string; verify: Verify }> = new Map([
  ['2.16.840.1.101.3.4.3.17', { label: 'ML-DSA-44', verify: (s, m, k) => ml_dsa44.verify(s, m, k) }],
  ['2.16.840.1.101.3.4.3.18', { label: 'ML-DSA-65', verify: (s, m, k) => ml_dsa65.verify(s, m, k) }],
  ['2.16.840.1.101.3.4.3.19', { label: 'ML-DSA-87', verify: (s, m, k) => ml_dsa87.verify(s, m, k) }],
  ['2.16.840.1.101.3.4.3.20', { label: 'SLH-DSA-SHA2-128s', verify: (s, m, k) => slh_dsa_sha2_128s.verify(s, m, k) }],
]);

const ID_KP_OCSP_SIGNING = '1.3.6.1.5.5.7.3.9';

export class PqVerifyError extends Error {}

const fail = (msg: string): never => {
  throw new PqVerifyError(msg);
};

/** DER → PEM-free bytes: accepts PEM text or DER. */
export function derOf(input: string | Uint8Array): Uint8Array {
  if (typeof input !== 'string') return new Uint8Array(input);
  const m = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/.exec(input);
  if (!m) fail('not PEM');
  return new Uint8Array(Buffer.from(m![2]!.replace(/\s+/g, ''), 'base64'));
}

/** All PEM blocks of one label, as DER. */
export function pemBlocks(text: string, label = 'CERTIFICATE'): Uint8Array[] {
  const re = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`, 'g');
  return [...text.matchAll(re)].map((m) => new Uint8Array(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64')));
}

/** One DER TLV at `at`: where its content starts and where it ends. Definite lengths only (DER). */
function tlv(der: Uint8Array, at: number): { start: number; content: number; end: number } {
  if (at + 2 > der.length) fail('truncated DER');
  let p = at + 1;
  const first = der[p++]!;
  let len = first;
  if (first & 0x80) {
    const n = first & 0x7f;
    if (n === 0 || n > 4) fail('unsupported DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[p++]!;
  }
  const end = p + len;
  if (end > der.length) fail('truncated DER');
  return { start: at, content: p, end };
}

/** The first element of the outer SEQUENCE, byte for byte: the signed TBS part of a Certificate, CRL or BasicOCSPResponse. */
export function signedPart(der: Uint8Array): Uint8Array {
  const outer = tlv(der, 0);
  if (der[0] !== 0x30 || outer.end !== der.length) fail('not one DER SEQUENCE');
  const first = tlv(der, outer.content);
  return der.subarray(first.start, first.end);
}

const sameBytes = (a: ArrayBuffer | Uint8Array, b: ArrayBuffer | Uint8Array) => Buffer.from(a as ArrayBuffer).equals(Buffer.from(b as ArrayBuffer));
const nameDer = (n: Name) => new Uint8Array(AsnConvert.serialize(n));

function paramsAbsent(alg: AlgorithmIdentifier, what: string): void {
  if (alg.parameters !== undefined) fail(`${what}: parameters present (must be absent for ${alg.algorithm})`);
}

/**
 * Checks that `signature` over `tbs` was made by the key in `issuer`: the scheme is picked by the
 * signature's OID and the issuer key's OID must be the same, with parameters absent in both.
 */
export function checkSignature(tbs: Uint8Array, outerAlg: AlgorithmIdentifier, signature: ArrayBuffer, issuer: Certificate, what: string): string {
  const spki = issuer.tbsCertificate.subjectPublicKeyInfo;
  const scheme =
    PQ_SCHEMES.get(outerAlg.algorithm) ?? fail(`${what}: signature algorithm ${outerAlg.algorithm} is not a post-quantum scheme this verifier knows`);
  paramsAbsent(outerAlg, `${what} signatureAlgorithm`);
  paramsAbsent(spki.algorithm, `${what} issuer SubjectPublicKeyInfo`);
  if (spki.algorithm.algorithm !== outerAlg.algorithm) fail(`${what}: issuer key is ${spki.algorithm.algorithm}, signature is ${outerAlg.algorithm}`);
  if (!scheme.verify(new Uint8Array(signature), tbs, new Uint8Array(spki.subjectPublicKey))) fail(`${what}: ${scheme.label} signature does not verify`);
  return scheme.label;
}

export function parseCertificate(input: string | Uint8Array): { cert: Certificate; der: Uint8Array } {
  const der = derOf(input);
  return { cert: AsnConvert.parse(der, Certificate), der };
}

function extension<T>(cert: Certificate, oid: string, type: new () => T): { value: T; critical: boolean } | undefined {
  const ext = cert.tbsCertificate.extensions?.find((e) => e.extnID === oid);
  return ext ? { value: AsnConvert.parse(ext.extnValue, type), critical: ext.critical } : undefined;
}

const isCa = (c: Certificate) => extension(c, id_ce_basicConstraints, BasicConstraints)?.value.cA === true;
const keyUsage = (c: Certificate) => extension(c, id_ce_keyUsage, KeyUsage)?.value;

function checkValidity(c: Certificate, what: string, now: Date): void {
  const v = c.tbsCertificate.validity;
  if (now < v.notBefore.getTime()) fail(`${what}: not valid before ${v.notBefore.getTime().toISOString()}`);
  if (now > v.notAfter.getTime()) fail(`${what}: expired ${v.notAfter.getTime().toISOString()}`);
}

/** One certificate checked against its issuer: name chaining, the inner and outer algorithm agree, signature. */
export function checkIssuedBy(child: { cert: Certificate; der: Uint8Array }, issuer: Certificate, what: string): string {
  if (!sameBytes(nameDer(child.cert.tbsCertificate.issuer), nameDer(issuer.tbsCertificate.subject))) fail(`${what}: issuer name is not the issuer's subject`);
  const inner = child.cert.tbsCertificate.signature;
  const outer = child.cert.signatureAlgorithm;
  if (inner.algorithm !== outer.algorithm || !sameBytes(AsnConvert.serialize(inner), AsnConvert.serialize(outer)))
    fail(`${what}: TBS signature algorithm differs from the outer one`);
  paramsAbsent(inner, `${what} TBS signature`);
  return checkSignature(signedPart(child.der), outer, child.cert.signatureValue, issuer, what);
}

function requireIssuerCa(c: Certificate, what: string, usage: KeyUsageFlags, usageName: string): void {
  if (!isCa(c)) fail(`${what}: not a CA (basicConstraints cA is not TRUE)`);
  const ku = keyUsage(c);
  if (!ku || !(ku.toNumber() & usage)) fail(`${what}: keyUsage lacks ${usageName}`);
}

export interface ChainResult {
  /** Signature scheme of each link, leaf first. */
  schemes: string[];
}

/**
 * A chain check up to one trusted root: `chain` is leaf first, then intermediates (the root may
 * close it or not). Each issuer's name is the child's issuer, its key verifies the child's signature,
 * every certificate is valid now, issuers are CAs with keyCertSign, the leaf is not a CA, the
 * root verifies itself.
 */
export function verifyChain(chain: (string | Uint8Array)[], trustedRoot: string | Uint8Array, now = new Date()): ChainResult {
  if (chain.length === 0) fail('empty chain');
  const root = parseCertificate(trustedRoot);
  const certs = chain.map((c) => parseCertificate(c)).filter((c, i) => i === 0 || !sameBytes(c.der, root.der));
  const leaf = certs[0]!;
  if (isCa(leaf.cert)) fail('leaf: is a CA certificate');
  const schemes: string[] = [];
  for (let i = 0; i < certs.length; i++) {
    const what = i === 0 ? 'leaf' : `intermediate ${i}`;
    const issuer = certs[i + 1] ?? root;
    const issuerWhat = certs[i + 1] ? `intermediate ${i + 1}` : 'root';
    checkValidity(certs[i]!.cert, what, now);
    requireIssuerCa(issuer.cert, issuerWhat, KeyUsageFlags.keyCertSign, 'keyCertSign');
    schemes.push(checkIssuedBy(certs[i]!, issuer.cert, what));
  }
  checkValidity(root.cert, 'root', now);
  checkIssuedBy(root, root.cert, 'root (self-signed)');
  return { schemes };
}

export interface CrlResult {
  scheme: string;
  der: Uint8Array;
  thisUpdate: Date;
  nextUpdate?: Date;
  /** Revoked serials (hex, lower case, no leading zeros). */
  revoked: Set<string>;
}

const serialHex = (b: ArrayBuffer | Uint8Array) => BigInt(`0x${Buffer.from(b as ArrayBuffer).toString('hex') || '0'}`).toString(16);

/** A CRL checked against its issuer: name, cRLSign, algorithm agreement, signature. */
export function verifyCrl(input: string | Uint8Array, issuer: string | Uint8Array): CrlResult {
  const der = derOf(input);
  const crl = AsnConvert.parse(der, CertificateList);
  const ca = parseCertificate(issuer).cert;
  if (!sameBytes(nameDer(crl.tbsCertList.issuer), nameDer(ca.tbsCertificate.subject))) fail('CRL: issuer name is not the CA subject');
  requireIssuerCa(ca, 'CRL issuer', KeyUsageFlags.cRLSign, 'cRLSign');
  const inner = crl.tbsCertList.signature;
  if (!sameBytes(AsnConvert.serialize(inner), AsnConvert.serialize(crl.signatureAlgorithm))) fail('CRL: TBS signature algorithm differs from the outer one');
  const scheme = checkSignature(signedPart(der), crl.signatureAlgorithm, crl.signature, ca, 'CRL');
  return {
    scheme,
    der,
    thisUpdate: crl.tbsCertList.thisUpdate.getTime(),
    nextUpdate: crl.tbsCertList.nextUpdate?.getTime(),
    revoked: new Set((crl.tbsCertList.revokedCertificates ?? []).map((r) => serialHex(r.userCertificate))),
  };
}

export interface OcspResult {
  scheme: string;
  /** Whether the CA signed it itself or a delegated responder certificate (checked against the CA) did. */
  signer: 'ca' | 'delegated';
  statuses: Map<string, 'good' | 'revoked' | 'unknown'>;
}

/**
 * An OCSP response checked against the issuing CA: status successful, basic response, the signer
 * is the CA or a responder certificate the CA issued with id-kp-OCSPSigning (verified with the
 * CA's key), the responderID names the signer, and the signature over tbsResponseData verifies.
 */
export function verifyOcsp(input: Uint8Array, issuer: string | Uint8Array, now = new Date()): OcspResult {
  const resp = AsnConvert.parse(input, OCSPResponse);
  if (resp.responseStatus !== OCSPResponseStatus.successful) fail(`OCSP: status ${OCSPResponseStatus[resp.responseStatus]}`);
  const bytes = resp.responseBytes ?? fail('OCSP: no responseBytes');
  if (bytes.responseType !== id_pkix_ocsp_basic) fail(`OCSP: response type ${bytes.responseType}`);
  const der = new Uint8Array(bytes.response.buffer);
  const basic = AsnConvert.parse(der, BasicOCSPResponse);
  const ca = parseCertificate(issuer);
  let signer = ca;
  let kind: OcspResult['signer'] = 'ca';
  const embedded = basic.certs ?? [];
  if (embedded.length > 0) {
    const responder = { cert: embedded[0]!, der: new Uint8Array(AsnConvert.serialize(embedded[0]!)) };
    if (!sameBytes(responder.der, ca.der)) {
      checkIssuedBy(responder, ca.cert, 'OCSP responder certificate');
      checkValidity(responder.cert, 'OCSP responder certificate', now);
      const eku = extension(responder.cert, id_ce_extKeyUsage, ExtendedKeyUsage)?.value ?? [];
      if (!eku.includes(ID_KP_OCSP_SIGNING)) fail('OCSP responder certificate: no id-kp-OCSPSigning');
      signer = responder;
      kind = 'delegated';
    }
  }
  const rid = basic.tbsResponseData.responderID;
  const spkiBits = new Uint8Array(signer.cert.tbsCertificate.subjectPublicKeyInfo.subjectPublicKey);
  const byKeyOk = rid.byKey && sameBytes(rid.byKey.buffer, createHash('sha1').update(spkiBits).digest());
  const byNameOk = rid.byName && sameBytes(nameDer(rid.byName), nameDer(signer.cert.tbsCertificate.subject));
  if (!byKeyOk && !byNameOk) fail('OCSP: responderID does not name the signer');
  const scheme = checkSignature(signedPart(der), basic.signatureAlgorithm, basic.signature, signer.cert, 'OCSP response');
  const statuses = new Map<string, 'good' | 'revoked' | 'unknown'>();
  for (const r of basic.tbsResponseData.responses) {
    const s = r.certStatus;
    statuses.set(serialHex(r.certID.serialNumber), s.revoked ? 'revoked' : s.good === null ? 'good' : 'unknown');
  }
  return { scheme, signer: kind, statuses };
}
