/**
 * OCSP (RFC 6960, with the RFC 5019 lightweight profile and RFC 8954 nonces): request
 * parsing, response encoding, and the CertID hashes of an issuer. Pure: no I/O, no clock.
 *
 * Hot path design (product.md: "a status check costs no signature"):
 *  - `parseOcspRequest` is a strict DER walker over the request bytes (a few µs), not an
 *    @peculiar/asn1-ocsp object parse (≈ 55 µs per request measured here, which alone would
 *    cap one core below the bare-HTTP ceiling). The tests check it against
 *    @peculiar/asn1-ocsp's schema on real OpenSSL requests.
 *  - Responses are assembled from already-encoded parts with der.ts. A response for one
 *    CertID without a nonce is plain cacheable bytes: pre-sign it with `encodeCertId` (SHA-1,
 *    the RFC 5019 CertID) + `encodeSingleResponse` + `buildBasicOcspResponse`, and serve it
 *    for every request whose `certIdDer` equals the pre-signed CertID.
 *  - Nonces: RFC 5019 §2.2 lets a responder ignore the nonce, and pre-signed responses cannot
 *    carry one. The parser returns it; the recommended policy is to serve the cached response
 *    without a nonce when one exists (clients such as `openssl ocsp` then only warn "no nonce
 *    in response"), and to echo the nonce only in responses signed on demand. The caller decides.
 */
import { createHash } from 'node:crypto';
import { SignetError } from '../errors.js';
import type { Signer } from './keys.js';
import { checkDer, DerError, readEl, strictOid, type El } from './der-strict.js';
import { AsnConvert } from '@peculiar/asn1-schema';
import { GeneralName } from '@peculiar/asn1-x509';
import { Signature } from '@peculiar/asn1-ocsp';
import { REASON_CODES, signatureAlgorithmDer, type RevocationReason } from './crl.js';
import { bitString, contextExplicit, enumerated, generalizedTime, objectIdentifier, octetString, sequence, tlv, unsignedInteger } from './der.js';

export type OcspHashAlgorithm = 'sha1' | 'sha256' | 'sha384' | 'sha512';

export interface OcspCertIdRequest {
  hashAlgorithm: OcspHashAlgorithm;
  issuerNameHash: Buffer;
  issuerKeyHash: Buffer;
  /** Unsigned big-endian, leading zero bytes stripped (at least one byte). */
  serial: Buffer;
  /** The CertID exactly as the client encoded it; a response must echo these bytes. */
  certIdDer: Buffer;
}

export interface ParsedOcspRequest {
  requests: OcspCertIdRequest[];
  /** The RFC 8954 nonce value (1..32 bytes): the extnValue's inner OCTET STRING contents. */
  nonce?: Buffer;
}

/** The request is not a well-formed OCSP request: answer `malformedRequest`. */
export class OcspMalformed extends Error {
  constructor(detail: string) {
    super(`malformed OCSP request: ${detail}`);
    this.name = 'OcspMalformed';
  }
}

/**
 * A well-formed request with a CertID hashed with an algorithm Signet does not compute (not
 * SHA-1/SHA-2). Such a CertID cannot name any issuer we serve, so the responder is not
 * authoritative for it: answer `unauthorized` (RFC 5019 §2.2.3; RFC 6960 §2.3), the same as
 * for an issuer we do not know. Thrown only after the whole message parsed cleanly, so a
 * garbled message is still `OcspMalformed`. `oid` is for logs and metrics.
 */
export class OcspUnknownHashAlgorithm extends Error {
  readonly oid: string;
  constructor(oid: string) {
    super(`OCSP CertID uses an unsupported hash algorithm ${oid}`);
    this.name = 'OcspUnknownHashAlgorithm';
    this.oid = oid;
  }
}

/** Requests per OCSP message; more is `malformedRequest` (RFC 5019 clients send one). */
export const MAX_OCSP_REQUESTS = 32;
/** The largest OCSP request accepted, in bytes (the HTTP body limit is the same). */
export const MAX_OCSP_REQUEST_BYTES = 8 * 1024;
/** RFC 8954 §2.1: a nonce is 1..32 octets; anything else is rejected as malformed. */
export const MAX_NONCE_LENGTH = 32;

const HASH_OIDS: Record<OcspHashAlgorithm, string> = {
  sha1: '1.3.14.3.2.26',
  sha256: '2.16.840.1.101.3.4.2.1',
  sha384: '2.16.840.1.101.3.4.2.2',
  sha512: '2.16.840.1.101.3.4.2.3',
};
const HASH_LENGTHS: Record<OcspHashAlgorithm, number> = { sha1: 20, sha256: 32, sha384: 48, sha512: 64 };
const OID_NONCE = '1.3.6.1.5.5.7.48.1.2';
const OID_OCSP_BASIC = '1.3.6.1.5.5.7.48.1.1';

/** OID content bytes (latin1 string) → hash name, for lookup without decoding. */
const HASH_BY_OID_BYTES = new Map<string, OcspHashAlgorithm>(
  (Object.keys(HASH_OIDS) as OcspHashAlgorithm[]).map((h) => [objectIdentifier(HASH_OIDS[h]).subarray(2).toString('latin1'), h]),
);
const NONCE_OID_BYTES = objectIdentifier(OID_NONCE).subarray(2).toString('latin1');

// ---------------------------------------------------------------------------------------------
// Elements are read by Signet's one DER reader (der-strict.ts); a rule it finds broken is an
// OcspMalformed naming the part of the message.

function malformed(detail: string): never {
  throw new OcspMalformed(detail);
}

function readElement(buf: Buffer, offset: number, limit: number, what: string): El {
  try {
    return readEl(buf, offset, limit);
  } catch (e) {
    if (e instanceof DerError) malformed(`${what}: ${e.rule}`);
    throw e;
  }
}

function expect(buf: Buffer, offset: number, limit: number, tag: number, what: string): El {
  const el = readElement(buf, offset, limit, what);
  if (el.tag !== tag) malformed(`${what}: expected tag 0x${tag.toString(16)}, found 0x${el.tag.toString(16)}`);
  return el;
}

/** The dotted text of an OBJECT IDENTIFIER element (checkDer has already held it to DER). */
function oidText(buf: Buffer, el: El, what: string): string {
  return strictOid(buf, el) ?? malformed(`bad OBJECT IDENTIFIER in ${what}`);
}

/**
 * The parts this parser skips (rare: only signed requests carry them) are still checked against
 * their schema, after checkDer has bounded what the schema library can be made to do.
 */
function schemaCheck(der: Uint8Array, schema: new () => object, what: string): void {
  try {
    AsnConvert.parse(der, schema);
  } catch {
    malformed(`${what} does not match its ASN.1 structure`);
  }
}

/** Cheap, allocation-free guard where only the OID's bytes are compared (checkDer has already applied the full rules). */
function checkOid(buf: Buffer, el: El, what: string): void {
  if (el.end === el.body || buf[el.end - 1]! & 0x80 || buf[el.body] === 0x80) malformed(`bad OBJECT IDENTIFIER in ${what}`);
}

interface RawExtension {
  oidKey: string;
  oid: string;
  critical: boolean;
  value: El; // the extnValue OCTET STRING
}

/** Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension, inside an [n] EXPLICIT wrapper. */
function readExtensions(buf: Buffer, wrapper: El, what: string): RawExtension[] {
  const seq = expect(buf, wrapper.body, wrapper.end, 0x30, what);
  if (seq.end !== wrapper.end) malformed(`unexpected data after ${what}`);
  if (seq.body === seq.end) malformed(`empty ${what}`);
  const out: RawExtension[] = [];
  const seen = new Set<string>();
  for (let p = seq.body; p < seq.end; ) {
    const ext = expect(buf, p, seq.end, 0x30, `extension in ${what}`);
    const oidEl = expect(buf, ext.body, ext.end, 0x06, `extension OID in ${what}`);
    const oid = oidText(buf, oidEl, what);
    let q = oidEl.end;
    let critical = false;
    let el = readElement(buf, q, ext.end, `extension in ${what}`);
    if (el.tag === 0x01) {
      if (el.end - el.body !== 1 || buf[el.body] !== 0xff) malformed(`critical in ${what} must be absent or TRUE (DER omits the default FALSE)`);
      critical = true;
      q = el.end;
      el = readElement(buf, q, ext.end, `extension in ${what}`);
    }
    if (el.tag !== 0x04 || el.end !== ext.end) malformed(`bad extension in ${what}`);
    const oidKey = buf.toString('latin1', oidEl.body, oidEl.end);
    if (seen.has(oidKey)) malformed(`duplicate extension in ${what}`);
    seen.add(oidKey);
    out.push({ oidKey, oid, critical, value: el });
    p = ext.end;
  }
  return out;
}

interface ParsedCertId extends Omit<OcspCertIdRequest, 'hashAlgorithm'> {
  hashAlgorithm: OcspHashAlgorithm | undefined;
  hashOid: string;
}

function readCertId(buf: Buffer, certId: El): ParsedCertId {
  const alg = expect(buf, certId.body, certId.end, 0x30, 'CertID hashAlgorithm');
  const oidEl = expect(buf, alg.body, alg.end, 0x06, 'CertID hashAlgorithm');
  checkOid(buf, oidEl, 'CertID hashAlgorithm');
  if (oidEl.end < alg.end) {
    // Parameters: absent or NULL (OpenSSL, Go and NSS send NULL).
    const params = readElement(buf, oidEl.end, alg.end, 'CertID hashAlgorithm parameters');
    if (params.tag !== 0x05 || params.body !== params.end || params.end !== alg.end) {
      malformed('CertID hashAlgorithm parameters must be absent or NULL');
    }
  }
  const nameHash = expect(buf, alg.end, certId.end, 0x04, 'CertID issuerNameHash');
  const keyHash = expect(buf, nameHash.end, certId.end, 0x04, 'CertID issuerKeyHash');
  const serial = expect(buf, keyHash.end, certId.end, 0x02, 'CertID serialNumber');
  if (serial.end !== certId.end) malformed('unexpected data in CertID');
  const sl = serial.end - serial.body;
  if (sl === 0) malformed('empty CertID serialNumber');
  if (sl > 1) {
    const b0 = buf[serial.body]!;
    const b1 = buf[serial.body + 1]!;
    if ((b0 === 0 && !(b1 & 0x80)) || (b0 === 0xff && b1 & 0x80)) malformed('non-minimal CertID serialNumber');
  }
  // A negative serial (no certificate Signet issues has one) is kept as its raw bytes and
  // simply matches nothing.
  let s = serial.body;
  while (s < serial.end - 1 && buf[s] === 0) s++;

  const hashAlgorithm = HASH_BY_OID_BYTES.get(buf.toString('latin1', oidEl.body, oidEl.end));
  if (hashAlgorithm) {
    const n = HASH_LENGTHS[hashAlgorithm];
    if (nameHash.end - nameHash.body !== n || keyHash.end - keyHash.body !== n) {
      malformed(`CertID hash lengths do not match ${hashAlgorithm}`);
    }
  }
  return {
    hashAlgorithm,
    hashOid: hashAlgorithm ? HASH_OIDS[hashAlgorithm] : oidText(buf, oidEl, 'CertID hashAlgorithm'),
    issuerNameHash: Buffer.from(buf.subarray(nameHash.body, nameHash.end)),
    issuerKeyHash: Buffer.from(buf.subarray(keyHash.body, keyHash.end)),
    serial: Buffer.from(buf.subarray(s, serial.end)),
    certIdDer: Buffer.from(buf.subarray(certId.start, certId.end)),
  };
}

/**
 * Parses a DER OCSPRequest (RFC 6960 §4.1.1).
 *
 * Throws `OcspMalformed` for anything that is not exactly one well-formed DER OCSPRequest:
 * garbage, truncation, trailing bytes, no requests, more than `maxRequests` (default 32),
 * duplicate extensions, an unsupported critical extension, a nonce outside 1..32 octets or not
 * wrapped in an OCTET STRING (RFC 8954). Throws `OcspUnknownHashAlgorithm` for a well-formed
 * request whose CertID uses a hash other than SHA-1/SHA-256/SHA-384/SHA-512 (→ `unauthorized`).
 * A request signature (optionalSignature) and requestorName are accepted and ignored:
 * status is public information, so Signet does not authenticate requestors.
 */
export function parseOcspRequest(der: Uint8Array, options: { maxRequests?: number } = {}): ParsedOcspRequest {
  if (!(der instanceof Uint8Array)) malformed('not bytes');
  const buf = Buffer.isBuffer(der) ? der : Buffer.from(der.buffer, der.byteOffset, der.byteLength);
  const maxRequests = options.maxRequests ?? MAX_OCSP_REQUESTS;
  // What HTTP accepts too (http/ocsp-handler.ts): a bigger request is never legitimate (32
  // requests with a nonce fit in 3 KB), and the ignored optionalSignature's certificates go
  // through the schema parser, whose cost grows with their size (131 KB took 0.4 s).
  if (buf.length > MAX_OCSP_REQUEST_BYTES) malformed(`larger than ${MAX_OCSP_REQUEST_BYTES} bytes`);

  // The whole request, the parts this parser skips (requestorName, optionalSignature) too, is
  // held to the same DER rules as a CSR by the one strict reader, before anything reads it.
  try {
    checkDer(buf);
  } catch (e) {
    if (e instanceof DerError) malformed(`${e.rule} at offset ${e.offset}`);
    throw e;
  }
  const outer = expect(buf, 0, buf.length, 0x30, 'OCSPRequest');
  if (outer.end !== buf.length) malformed('trailing bytes after the OCSPRequest');
  const tbs = expect(buf, outer.body, outer.end, 0x30, 'TBSRequest');
  if (tbs.end !== outer.end) {
    const sig = expect(buf, tbs.end, outer.end, 0xa0, 'optionalSignature');
    if (sig.end !== outer.end) malformed('unexpected data after optionalSignature');
    // Ignored, but it must be a Signature: SEQUENCE { AlgorithmIdentifier, BIT STRING, [0] certs OPTIONAL }.
    const signature = expect(buf, sig.body, sig.end, 0x30, 'optionalSignature');
    if (signature.end !== sig.end) malformed('unexpected data in optionalSignature');
    const alg = expect(buf, signature.body, signature.end, 0x30, 'optionalSignature signatureAlgorithm');
    const bits = expect(buf, alg.end, signature.end, 0x03, 'optionalSignature signature');
    if (bits.end !== signature.end) {
      const certs = expect(buf, bits.end, signature.end, 0xa0, 'optionalSignature certs');
      if (certs.end !== signature.end) malformed('unexpected data in optionalSignature');
    }
    const oid = expect(buf, alg.body, alg.end, 0x06, 'optionalSignature signatureAlgorithm');
    checkOid(buf, oid, 'optionalSignature signatureAlgorithm');
    schemaCheck(buf.subarray(signature.start, signature.end), Signature, 'optionalSignature');
  }

  let el = readElement(buf, tbs.body, tbs.end, 'TBSRequest');
  if (el.tag === 0xa0) {
    const v = expect(buf, el.body, el.end, 0x02, 'version');
    if (v.end !== el.end || v.end - v.body !== 1 || buf[v.body] !== 0) malformed('unsupported version');
    // v1 is the DEFAULT, and DER never encodes a DEFAULT value (X.690 §11.5).
    malformed('version v1 is encoded explicitly; DER omits a DEFAULT value');
  }
  if (el.tag === 0xa1) {
    // requestorName [1] EXPLICIT GeneralName: unused, but exactly one GeneralName (a context tag).
    const name = readElement(buf, el.body, el.end, 'requestorName');
    if (name.end !== el.end || (name.tag & 0xc0) !== 0x80) malformed('requestorName must hold exactly one GeneralName');
    schemaCheck(buf.subarray(name.start, name.end), GeneralName, 'requestorName');
    el = readElement(buf, el.end, tbs.end, 'TBSRequest');
  }
  if (el.tag !== 0x30) malformed('missing requestList');

  const certIds: ParsedCertId[] = [];
  for (let p = el.body; p < el.end; ) {
    if (certIds.length >= maxRequests) malformed(`more than ${maxRequests} requests in one message`);
    const request = expect(buf, p, el.end, 0x30, 'Request');
    const certId = expect(buf, request.body, request.end, 0x30, 'CertID');
    if (certId.end !== request.end) {
      const exts = expect(buf, certId.end, request.end, 0xa0, 'singleRequestExtensions');
      if (exts.end !== request.end) malformed('unexpected data in Request');
      for (const ext of readExtensions(buf, exts, 'singleRequestExtensions')) {
        if (ext.critical) malformed(`unsupported critical extension ${ext.oid}`);
      }
    }
    certIds.push(readCertId(buf, certId));
    p = request.end;
  }
  if (certIds.length === 0) malformed('no requests');

  let nonce: Buffer | undefined;
  if (el.end !== tbs.end) {
    const exts = expect(buf, el.end, tbs.end, 0xa2, 'requestExtensions');
    if (exts.end !== tbs.end) malformed('unexpected data in TBSRequest');
    for (const ext of readExtensions(buf, exts, 'requestExtensions')) {
      if (ext.oidKey === NONCE_OID_BYTES) {
        // RFC 8954: extnValue is the DER of Nonce ::= OCTET STRING (SIZE(1..32)).
        const inner = readElement(buf, ext.value.body, ext.value.end, 'nonce');
        if (inner.tag !== 0x04 || inner.end !== ext.value.end) malformed('nonce is not an OCTET STRING');
        const n = inner.end - inner.body;
        if (n < 1 || n > MAX_NONCE_LENGTH) malformed(`nonce of ${n} octets (RFC 8954 allows 1 to ${MAX_NONCE_LENGTH})`);
        nonce = Buffer.from(buf.subarray(inner.body, inner.end));
      } else if (ext.critical) {
        malformed(`unsupported critical extension ${ext.oid}`);
      }
    }
  }

  const requests: OcspCertIdRequest[] = [];
  for (const c of certIds) {
    if (!c.hashAlgorithm) throw new OcspUnknownHashAlgorithm(c.hashOid);
    requests.push({
      hashAlgorithm: c.hashAlgorithm,
      issuerNameHash: c.issuerNameHash,
      issuerKeyHash: c.issuerKeyHash,
      serial: c.serial,
      certIdDer: c.certIdDer,
    });
  }
  return nonce ? { requests, nonce } : { requests };
}

// ---------------------------------------------------------------------------------------------
// Responses.

export type OcspErrorStatus = 'malformedRequest' | 'internalError' | 'tryLater' | 'sigRequired' | 'unauthorized';

const ERROR_CODES: Record<OcspErrorStatus, number> = {
  malformedRequest: 1,
  internalError: 2,
  tryLater: 3,
  sigRequired: 5,
  unauthorized: 6,
};

/** OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED } — 5 constant bytes, no signature. */
export function encodeOcspErrorResponse(status: OcspErrorStatus): Buffer {
  const code = ERROR_CODES[status];
  if (code === undefined || !Object.hasOwn(ERROR_CODES, status)) throw new SignetError('internal', `unknown OCSP error status ${String(status)}`);
  return Buffer.from([0x30, 0x03, 0x0a, 0x01, code]);
}

export type OcspCertStatus = { kind: 'good' } | { kind: 'revoked'; revokedAt: Date; reason?: RevocationReason } | { kind: 'unknown' };

/**
 * DER CertID, for pre-signing responses without a request. hashAlgorithm parameters are NULL,
 * as OpenSSL, Go and NSS encode them (clients compare the CertID they sent field by field).
 */
export function encodeCertId(params: { hashAlgorithm: OcspHashAlgorithm; issuerNameHash: Buffer; issuerKeyHash: Buffer; serial: Buffer }): Buffer {
  const oid = HASH_OIDS[params.hashAlgorithm];
  if (!oid) throw new SignetError('internal', `unknown OCSP hash algorithm ${String(params.hashAlgorithm)}`);
  return sequence(
    sequence(objectIdentifier(oid), Buffer.from([0x05, 0x00])),
    octetString(params.issuerNameHash),
    octetString(params.issuerKeyHash),
    unsignedInteger(params.serial),
  );
}

function checkDate(d: Date, what: string): void {
  if (!(d instanceof Date) || !Number.isFinite(d.getTime())) throw new SignetError('internal', `invalid ${what}`);
}

/**
 * SingleResponse ::= SEQUENCE { certID, certStatus, thisUpdate, nextUpdate [0] EXPLICIT }.
 * nextUpdate is required (RFC 5019 §2.2.4). A `revoked` status with reason `unspecified` (or
 * none) omits revocationReason, matching the CRL entry.
 */
export function encodeSingleResponse(params: { certIdDer: Buffer; status: OcspCertStatus; thisUpdate: Date; nextUpdate: Date }): Buffer {
  const { certIdDer, status, thisUpdate, nextUpdate } = params;
  checkDate(thisUpdate, 'thisUpdate');
  checkDate(nextUpdate, 'nextUpdate');
  if (nextUpdate.getTime() <= thisUpdate.getTime()) throw new SignetError('internal', 'nextUpdate must be later than thisUpdate');
  if (!(certIdDer instanceof Uint8Array) || certIdDer[0] !== 0x30) throw new SignetError('internal', 'certIdDer is not a CertID');
  let certStatus: Buffer;
  switch (status.kind) {
    case 'good':
      certStatus = Buffer.from([0x80, 0x00]);
      break;
    case 'unknown':
      certStatus = Buffer.from([0x82, 0x00]);
      break;
    case 'revoked': {
      checkDate(status.revokedAt, 'revokedAt');
      const code = status.reason === undefined ? 0 : REASON_CODES[status.reason];
      if (code === undefined || (status.reason !== undefined && !Object.hasOwn(REASON_CODES, status.reason))) {
        throw new SignetError('internal', `unknown revocation reason ${String(status.reason)}`);
      }
      const parts = [generalizedTime(status.revokedAt)];
      if (code !== 0) parts.push(contextExplicit(0, enumerated(code)));
      certStatus = tlv(0xa1, ...parts);
      break;
    }
    default:
      throw new SignetError('internal', 'unknown OCSP certificate status');
  }
  return sequence(certIdDer, certStatus, generalizedTime(thisUpdate), contextExplicit(0, generalizedTime(nextUpdate)));
}

/**
 * The complete, signed OCSPResponse: successful, id-pkix-ocsp-basic, ResponderID byKey,
 * responses in the given order, the nonce echoed (RFC 8954) when given, certs [0] with the
 * responder certificate when given (omit it only when the CA signs for itself).
 * `responderKeyHash` is SHA-1 over the responder certificate's subjectPublicKey BIT STRING
 * value (= `issuerHashes(responderCertDer).sha1.keyHash`).
 */
export async function buildBasicOcspResponse(params: {
  responderKeyHash: Buffer;
  producedAt: Date;
  singleResponses: Buffer[];
  nonce?: Buffer;
  signer: Signer;
  responderCertDer?: Buffer;
}): Promise<Buffer> {
  const { responderKeyHash, producedAt, singleResponses, nonce, signer, responderCertDer } = params;
  if (!(responderKeyHash instanceof Uint8Array) || responderKeyHash.length !== 20)
    throw new SignetError('internal', 'responderKeyHash must be a 20-byte SHA-1');
  checkDate(producedAt, 'producedAt');
  if (singleResponses.length === 0) throw new SignetError('internal', 'an OCSP response needs at least one SingleResponse');
  const tbsParts = [
    contextExplicit(2, octetString(responderKeyHash)), // ResponderID byKey [2] EXPLICIT KeyHash
    generalizedTime(producedAt),
    sequence(...singleResponses),
  ];
  if (nonce !== undefined) {
    if (nonce.length < 1 || nonce.length > MAX_NONCE_LENGTH) throw new SignetError('internal', 'nonce must be 1..32 octets');
    tbsParts.push(contextExplicit(1, sequence(sequence(objectIdentifier(OID_NONCE), octetString(octetString(nonce))))));
  }
  const tbs = sequence(...tbsParts);
  const basicParts = [tbs, signatureAlgorithmDer(signer), bitString(await signer.sign(tbs))];
  if (responderCertDer !== undefined) basicParts.push(contextExplicit(0, sequence(responderCertDer)));
  const basic = sequence(...basicParts);
  return sequence(enumerated(0), contextExplicit(0, sequence(objectIdentifier(OID_OCSP_BASIC), octetString(basic))));
}

// ---------------------------------------------------------------------------------------------
// Issuer CertID hashes.

export interface CertIdHashes {
  nameHash: Buffer;
  keyHash: Buffer;
}

/**
 * CertID lookup keys for a CA, for every hash a request may use: nameHash over the CA's
 * subject Name DER exactly as encoded in its certificate, keyHash over its subjectPublicKey
 * BIT STRING value (without the unused-bits byte). The `sha1` keyHash of a responder
 * certificate is also its ResponderID byKey.
 */
export function issuerHashes(caCertDer: Buffer): Record<OcspHashAlgorithm, CertIdHashes> {
  let subject: Buffer;
  let key: Buffer;
  try {
    const buf = caCertDer;
    const cert = expect(buf, 0, buf.length, 0x30, 'Certificate');
    if (cert.end !== buf.length) malformed('trailing bytes');
    const tbs = expect(buf, cert.body, cert.end, 0x30, 'TBSCertificate');
    let el = readElement(buf, tbs.body, tbs.end, 'TBSCertificate');
    if (el.tag === 0xa0) el = readElement(buf, el.end, tbs.end, 'TBSCertificate'); // version
    if (el.tag !== 0x02) malformed('serialNumber');
    const signature = expect(buf, el.end, tbs.end, 0x30, 'signature');
    const issuer = expect(buf, signature.end, tbs.end, 0x30, 'issuer');
    const validity = expect(buf, issuer.end, tbs.end, 0x30, 'validity');
    const subj = expect(buf, validity.end, tbs.end, 0x30, 'subject');
    const spki = expect(buf, subj.end, tbs.end, 0x30, 'subjectPublicKeyInfo');
    const algorithm = expect(buf, spki.body, spki.end, 0x30, 'algorithm');
    const bits = expect(buf, algorithm.end, spki.end, 0x03, 'subjectPublicKey');
    if (bits.end !== spki.end || bits.body === bits.end || buf[bits.body] !== 0) malformed('subjectPublicKey');
    subject = buf.subarray(subj.start, subj.end);
    key = buf.subarray(bits.body + 1, bits.end);
  } catch (e) {
    if (e instanceof OcspMalformed) throw new SignetError('bad-request', 'not a DER X.509 certificate', { cause: e });
    throw e;
  }
  const out = {} as Record<OcspHashAlgorithm, CertIdHashes>;
  for (const h of Object.keys(HASH_OIDS) as OcspHashAlgorithm[]) {
    out[h] = { nameHash: createHash(h).update(subject).digest(), keyHash: createHash(h).update(key).digest() };
  }
  return out;
}
