/**
 * PKCS#10 CSR parsing (RFC 2986): structure, key policy and proof of possession. Pure.
 *
 * Order matters: DER first (checkCsrDer: strict DER by X.690's rules, one reader for both paths,
 * so every later step can trust offsets and encodings), then structure, then the key (checked
 * by public-key.ts before node:crypto sees it; an unsupported key cannot be used to verify
 * anything), then the signature over the
 * certificationRequestInfo bytes exactly as they were sent. Re-serialising the parsed object
 * would verify what we understood rather than what the requester signed.
 *
 * Names are returned, not judged: the caller applies names.ts (validateSan, checkAllowed,
 * validateCommonName) with the profile in hand.
 */
import { createHash } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { CertificationRequest } from '@peculiar/asn1-csr';
import { SignetError } from '../errors.js';
import { checkDer, checkSetOrder, DerError, el, kids, readEl, readKids, sameBytes, strictExtensions, strictOid, type El } from './der-strict.js';
import { OID, SIGNATURE_ALGORITHMS, verifySignature, type TrustedKey } from './keys.js';
import { importSpki, type PublicKeyInfo } from './public-key.js';
import { decodeBase64, looksLikePem, pemBlocks } from './pem.js';
import { isSanProblem, OTHER_GENERAL_NAME_FORMS, readSanList, type SanProblem } from './general-names.js';
import type { SanEntry } from './names.js';

/** Larger than any sane CSR (an RSA-8192 CSR with a few hundred SANs); stops pathological input early. */
export const MAX_CSR_BYTES = 64 * 1024;

export const CSR_PEM_LABELS = ['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST'] as const;

export interface ParsedCsr {
  der: Buffer;
  subject: { commonName?: string; dn: string; nameDer: Buffer };
  sans: SanEntry[];
  /** Checked by public-key.ts (importSpki). */
  publicKey: TrustedKey;
  spkiDer: Buffer;
  keyAlgorithm: string;
  requestedExtensions: string[];
  sha256: string;
}

const OID_EXTENSION_REQUEST = '1.2.840.113549.1.9.14';
const OID_SAN = '2.5.29.17';
const OID_CN = '2.5.4.3';

const badCsr = (detail: string) => new SignetError('bad-csr', detail);
const malformed = (why: string) => badCsr(`truncated or malformed DER: ${why}`);

/**
 * `attributeOrder: 'any'` accepts the request attributes in any order (a SCEP request: strongSwan's
 * `pki --scep` writes challengePassword after extensionRequest); every other DER rule holds.
 */
export function parseCsr(input: string | Uint8Array, opts: { attributeOrder?: 'der' | 'any' } = {}): ParsedCsr {
  const der = toDer(input);
  checkCsrDer(der, opts.attributeOrder === 'any');
  // The fast path handles the common well-formed request; anything else (including every
  // refusal) goes through the full parser, so error details and edge cases are unchanged.
  return parseDerFast(der) ?? parseDerFull(der);
}

/** The full (schema-based) parser. Same result as parseCsr; exported for the equivalence tests. */
export function parseCsrFull(input: string | Uint8Array): ParsedCsr {
  const der = toDer(input);
  checkCsrDer(der);
  return parseDerFull(der);
}

/** The fast path alone: null where parseCsr would defer to the full parser. For the equivalence tests. */
export function parseCsrFast(input: string | Uint8Array): ParsedCsr | null {
  const der = toDer(input);
  try {
    checkCsrDer(der);
  } catch {
    return null;
  }
  return parseDerFast(der);
}

function parseDerFull(der: Buffer): ParsedCsr {
  const parts = splitStructure(der);

  let csr: CertificationRequest;
  try {
    csr = AsnConvert.parse(der, CertificationRequest);
  } catch (e) {
    throw malformed((e as Error).message);
  }
  const info = csr.certificationRequestInfo;
  if (info.version !== 0) throw badCsr(`CSR version ${info.version} is not supported (PKCS#10 v1 is encoded as 0)`);

  const key = importSpki(parts.spki);
  const { key: publicKey, algorithm: keyAlgorithm } = key;

  const sigOid = csr.signatureAlgorithm.algorithm;
  checkSignatureAlgorithm(sigOid, parts.sigParams, key);
  if (!verifySignature(sigOid, publicKey, parts.info, parts.signature)) {
    throw badCsr('CSR signature does not verify (proof of possession failed)');
  }

  const subject = readSubject(parts.name);
  const { sans, requestedExtensions } = readExtensions(info.attributes ?? []);
  return result(der, subject, parts.name, sans, publicKey, parts.spki, keyAlgorithm, requestedExtensions);
}

function result(
  der: Buffer,
  subject: { commonName?: string; dn: string },
  name: Uint8Array,
  sans: SanEntry[],
  publicKey: TrustedKey,
  spki: Uint8Array,
  keyAlgorithm: string,
  requestedExtensions: string[],
): ParsedCsr {
  return {
    der,
    subject: { ...(subject.commonName === undefined ? {} : { commonName: subject.commonName }), dn: subject.dn, nameDer: Buffer.from(name) },
    sans,
    publicKey,
    spkiDer: Buffer.from(spki),
    keyAlgorithm,
    requestedExtensions,
    sha256: createHash('sha256').update(der).digest('hex'),
  };
}

// ---------------------------------------------------------------------------------------------
// Fast path: strict DER walk for the common case. Returns null (never throws) whenever the input
// is anything but plain, well-formed DER this path fully understands, or whenever any check
// would refuse it; parseDerFull then produces the result or the exact refusal.

const STRING_TAGS = new Set([0x0c, 0x13, 0x16]);

function parseDerFast(der: Buffer): ParsedCsr | null {
  try {
    const outer = el(der, 0, der.length);
    if (outer?.tag !== 0x30 || outer.end !== der.length) return null;
    const top = kids(der, outer);
    if (top?.length !== 3) return null;
    const [infoE, algE, sigE] = top as [El, El, El];
    if (infoE.tag !== 0x30 || algE.tag !== 0x30 || sigE.tag !== 0x03) return null;

    const infoParts = kids(der, infoE);
    if (!infoParts || infoParts.length < 3 || infoParts.length > 4) return null;
    const [verE, nameE, spkiE, attrsE] = infoParts as [El, El, El, El | undefined];
    if (!sameBytes(der, verE, [0x02, 0x01, 0x00])) return null;

    if (spkiE.tag !== 0x30) return null;

    // signatureAlgorithm and signature
    const sigAlgParts = kids(der, algE);
    if (!sigAlgParts || sigAlgParts.length < 1 || sigAlgParts.length > 2) return null;
    const sigOid = strictOid(der, sigAlgParts[0]!);
    if (sigOid === null || !SIGNATURE_ALGORITHMS[sigOid]) return null;
    const sp = sigAlgParts[1];
    if (sp && !sameBytes(der, sp, [0x05, 0x00])) return null;
    if (sigE.end - sigE.body < 1 || der[sigE.body] !== 0) return null;

    // subject: plain strings under known short names, at most one CN
    if (nameE.tag !== 0x30) return null;
    const rdns = kids(der, nameE);
    if (!rdns) return null;
    for (const rdn of rdns) {
      if (rdn.tag !== 0x31) return null;
      const atvs = kids(der, rdn);
      if (atvs?.length !== 1) return null;
      const atv = atvs[0]!;
      if (atv.tag !== 0x30) return null;
      const tv = kids(der, atv);
      if (tv?.length !== 2) return null;
      const type = strictOid(der, tv[0]!);
      if (type === null || !SHORT_NAMES[type] || !STRING_TAGS.has(tv[1]!.tag)) return null;
    }

    // attributes: none, or exactly one extensionRequest with one value
    let sans: SanEntry[] = [];
    const requestedExtensions: string[] = [];
    if (attrsE) {
      if (attrsE.tag !== 0xa0) return null;
      const attrs = kids(der, attrsE);
      if (!attrs || attrs.length > 1) return null;
      if (attrs.length === 1) {
        const a = attrs[0]!;
        if (a.tag !== 0x30) return null;
        const ap = kids(der, a);
        if (ap?.length !== 2 || strictOid(der, ap[0]!) !== OID_EXTENSION_REQUEST || ap[1]!.tag !== 0x31) return null;
        const values = kids(der, ap[1]!);
        if (values?.length !== 1 || values[0]!.tag !== 0x30) return null;
        const exts = strictExtensions(der, values[0]!);
        if (!exts) return null;
        for (const { id: oid, value } of exts) {
          if (requestedExtensions.includes(oid)) return null;
          requestedExtensions.push(oid);
          if (oid === OID_SAN) {
            const s = fastSans(der, value);
            if (!s) return null;
            sans = s;
          }
        }
      }
    }

    // The key, checked before node:crypto sees it. Ed25519 points are not decoded here (~100 µs
    // in BigInt): an undecodable key verifies no signature, and the full path then says why.
    const spki = der.subarray(spkiE.start, spkiE.end);
    const key = importSpki(spki, { decodeEd25519: false });
    const { key: publicKey, algorithm: keyAlgorithm } = key;
    checkSignatureAlgorithm(sigOid, sp ? der.subarray(sp.start, sp.end) : null, key);
    if (!verifySignature(sigOid, publicKey, der.subarray(infoE.start, infoE.end), der.subarray(sigE.body + 1, sigE.end))) return null;
    const name = der.subarray(nameE.start, nameE.end);
    const subject = readSubject(name);
    return result(der, subject, name, sans, publicKey, spki, keyAlgorithm, requestedExtensions);
  } catch {
    return null;
  }
}

/**
 * SAN entries when every one is of an issuable form; null otherwise, and a throw for non-DER
 * (parseDerFast's catch makes that null too). readSans then explains.
 */
function fastSans(buf: Uint8Array, octets: El): SanEntry[] | null {
  const items = readSanList(buf, octets.body, octets.end);
  if (items.length === 0 || items.some(isSanProblem)) return null;
  return items as SanEntry[];
}

// ---------------------------------------------------------------------------------------------
// Input forms

function toDer(input: string | Uint8Array): Buffer {
  let der: Buffer;
  if (typeof input !== 'string') {
    if (input.length === 0) throw badCsr('CSR is empty');
    // A request body may carry PEM or base64 text as bytes; DER always starts with SEQUENCE.
    if (input[0] === 0x30) der = Buffer.from(input);
    else if (isText(input)) return toDer(Buffer.from(input).toString('latin1'));
    else throw malformed(`expected a SEQUENCE (0x30) at offset 0, found 0x${input[0]!.toString(16).padStart(2, '0')}`);
  } else {
    const text = input.trim();
    if (text.length === 0) throw badCsr('CSR is empty');
    // Base64 is 4/3 the size of the DER, plus line breaks and armour; twice the limit is plenty.
    if (text.length > 2 * MAX_CSR_BYTES) throw badCsr(`CSR text is ${text.length} characters; the limit is ${2 * MAX_CSR_BYTES}`);
    if (looksLikePem(text)) der = fromPem(text);
    else {
      const decoded = decodeBase64(text);
      if (!decoded) throw badCsr('CSR is not valid base64 (expected a PEM CERTIFICATE REQUEST, base64 DER or DER bytes)');
      der = decoded;
    }
  }
  if (der.length > MAX_CSR_BYTES) throw badCsr(`CSR is ${der.length} bytes; the limit is ${MAX_CSR_BYTES}`);
  return der;
}

const isText = (b: Uint8Array): boolean => b.every((c) => c === 0x09 || c === 0x0a || c === 0x0d || (c >= 0x20 && c < 0x7f));

function fromPem(text: string): Buffer {
  const blocks = pemBlocks(text, 'bad-csr');
  if (blocks.length !== 1) throw badCsr(`expected one CERTIFICATE REQUEST PEM block, found ${blocks.length}`);
  const block = blocks[0]!;
  if (!(CSR_PEM_LABELS as readonly string[]).includes(block.label)) {
    throw badCsr(`PEM label '${block.label}' is not a certificate request (expected 'CERTIFICATE REQUEST')`);
  }
  return block.der;
}

// ---------------------------------------------------------------------------------------------
// DER structure

/**
 * The DER rules, for both parse paths, before anything reads the request: X.690 over the whole
 * CertificationRequest (der-strict.ts checkDer), then what only the schema can tell — the
 * attributes are an IMPLICIT SET OF (sorted), an Extension's critical flag is DEFAULT FALSE (DER
 * omits it), and each extnValue holds DER. Refusals name the rule and the offset.
 */
function checkCsrDer(der: Buffer, anyAttributeOrder = false): void {
  try {
    if (der[0] !== 0x30) throw new Error(`expected a SEQUENCE (0x30) at offset 0, found 0x${(der[0] ?? 0).toString(16).padStart(2, '0')}`);
    const outer = readEl(der, 0, der.length);
    if (outer.end < der.length) throw new Error(`${der.length - outer.end} trailing bytes after the CertificationRequest SEQUENCE`);
    checkDer(der, 0, der.length);
    checkExtensionRequestDer(der, outer, anyAttributeOrder);
  } catch (e) {
    if (e instanceof SignetError) throw e;
    throw malformed((e as Error).message);
  }
}

/** The schema-level DER rules of the attributes; silent on shapes the parsers will refuse anyway. */
function checkExtensionRequestDer(der: Buffer, outer: El, anyAttributeOrder: boolean): void {
  const info = readKids(der, outer)[0];
  if (info?.tag !== 0x30) return;
  // CertificationRequestInfo ::= SEQUENCE { version INTEGER, subject Name, subjectPKInfo
  // SEQUENCE, attributes [0] } (attributes absent is tolerated): refused here, before the schema
  // parser spends its time guessing which element was left out.
  const parts = readKids(der, info);
  const shape = parts.map((p) => p.tag.toString(16)).join(',');
  if (shape !== '2,30,30,a0' && shape !== '2,30,30')
    throw new DerError(`certificationRequestInfo is not SEQUENCE { INTEGER, Name, SubjectPublicKeyInfo, [0] attributes } (tags ${shape})`, info.start);
  const attrs = parts[3];
  if (attrs === undefined) return;
  if (!anyAttributeOrder) checkSetOrder(der, attrs);
  for (const attr of readKids(der, attrs)) {
    // Attribute ::= SEQUENCE { type OID, values SET }: exactly two elements, or a reader that takes
    // the first SET would pass over a second one nobody checked.
    const ap = attr.tag === 0x30 ? readKids(der, attr) : [];
    if (ap.length !== 2 || ap[0]!.tag !== 0x06 || ap[1]!.tag !== 0x31) {
      throw new DerError(`an attribute is not SEQUENCE { type OID, values SET } (${ap.length} elements)`, attr.start);
    }
    if (strictOid(der, ap[0]!) !== OID_EXTENSION_REQUEST) continue;
    for (const value of readKids(der, ap[1]!)) {
      // The value is Extensions, a SEQUENCE: the schema reader would take another tag for one.
      if (value.tag !== 0x30) throw new DerError(`the extensionRequest value has tag 0x${value.tag.toString(16)}, not a SEQUENCE of extensions`, value.start);
      for (const ext of readKids(der, value)) {
        const ep = ext.tag === 0x30 ? readKids(der, ext) : [];
        const id = ep[0] ? (strictOid(der, ep[0]) ?? '?') : '?';
        // Extension ::= SEQUENCE { extnID OID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }:
        // a reader that takes the first OCTET STRING would pass over anything after it unread.
        const shape = ep.map((e) => e.tag).join(',');
        if (shape !== '6,4' && shape !== '6,1,4')
          throw new DerError(`extension ${id} is not SEQUENCE { OID, [BOOLEAN], OCTET STRING } (${ep.length} elements)`, ext.start);
        const flag = ep.length === 3 ? ep[1]! : undefined;
        if (flag && flag.tag === 0x01 && der[flag.body] === 0x00) {
          throw new DerError(`extension ${id} encodes critical FALSE explicitly (DER omits a DEFAULT value)`, flag.start);
        }
        const extnValue = ep[ep.length - 1]!;
        try {
          // extnValue is the DER of exactly one value (RFC 5280 §4.1): not empty, nothing after it.
          if (extnValue.end === extnValue.body) throw new DerError('the value is empty', extnValue.start);
          const v = readEl(der, extnValue.body, extnValue.end);
          if (v.end !== extnValue.end) throw new DerError(`${extnValue.end - v.end} bytes after the extension's value`, v.end);
          checkDer(der, extnValue.body, extnValue.end);
        } catch (e) {
          if (e instanceof DerError)
            throw badCsr(`${id === OID_SAN ? 'subjectAltName extension' : `extension ${id}`} is malformed: its value is not DER: ${e.message}`);
          throw e;
        }
      }
    }
  }
}

/** The child elements of the element `el` (its own buffer); DER was checked by checkCsrDer. */
function children(el: Uint8Array): Uint8Array[] {
  return readKids(el, readEl(el, 0, el.length)).map((c) => el.subarray(c.start, c.end));
}

/** Slices the request into its signed and signature parts, exactly as encoded. */
function splitStructure(der: Buffer): { info: Uint8Array; name: Uint8Array; spki: Uint8Array; sigParams: Uint8Array | null; signature: Uint8Array } {
  try {
    const top = children(der);
    if (top.length !== 3) throw new Error(`CertificationRequest has ${top.length} elements, expected 3`);
    const [info, alg, sig] = top as [Uint8Array, Uint8Array, Uint8Array];
    if (info[0] !== 0x30 || alg[0] !== 0x30 || sig[0] !== 0x03) throw new Error('CertificationRequest elements have the wrong types');
    const infoParts = children(info);
    if (infoParts.length < 3 || infoParts.length > 4) throw new Error(`certificationRequestInfo has ${infoParts.length} elements, expected 3 or 4`);
    const [, name, spki] = infoParts as [Uint8Array, Uint8Array, Uint8Array];
    const sh = readEl(sig, 0, sig.length);
    if (sh.end - sh.body < 1 || sig[sh.body] !== 0) throw new Error('signature BIT STRING has unused bits');
    // Raw, because the schema library reads an explicit NULL and absent parameters alike.
    const algParts = children(alg);
    if (algParts.length < 1 || algParts.length > 2) throw new Error('signatureAlgorithm is malformed');
    return { info, name, spki, sigParams: algParts[1] ?? null, signature: sig.subarray(sh.body + 1) };
  } catch (e) {
    if (e instanceof SignetError) throw e;
    throw malformed((e as Error).message);
  }
}

/** The dotted text of the OBJECT IDENTIFIER element `el`. */
function oidOf(el: Uint8Array): string {
  const oid = strictOid(el, readEl(el, 0, el.length));
  if (oid === null) throw new Error('malformed OBJECT IDENTIFIER');
  return oid;
}

const contentOf = (el: Uint8Array): Uint8Array => el.subarray(readEl(el, 0, el.length).body);

// ---------------------------------------------------------------------------------------------
// Signature algorithm

const REFUSED_SIG_ALGS: Record<string, string> = {
  '1.2.840.113549.1.1.4': 'md5WithRSAEncryption',
  '1.2.840.113549.1.1.5': 'sha1WithRSAEncryption',
  '1.2.840.113549.1.1.14': 'sha224WithRSAEncryption',
  '1.2.840.10045.4.1': 'ecdsa-with-SHA1',
  '1.2.840.10045.4.3.1': 'ecdsa-with-SHA224',
  '1.2.840.113549.1.1.10': 'RSASSA-PSS',
  '1.2.840.10040.4.3': 'dsa-with-SHA1',
  '2.16.840.1.101.3.4.3.2': 'dsa-with-SHA256',
  [OID.ed448]: 'Ed448',
};

function checkSignatureAlgorithm(oid: string, p: Uint8Array | null, key: PublicKeyInfo): void {
  if (key.family === 'ml-kem') throw badCsr('an ML-KEM key cannot sign, so no CSR can prove its possession; ask for server-side key generation instead');
  const alg = SIGNATURE_ALGORITHMS[oid];
  if (!alg) {
    throw badCsr(
      `signature algorithm ${REFUSED_SIG_ALGS[oid] ? `${REFUSED_SIG_ALGS[oid]} (${oid})` : oid} is not supported; use ECDSA with SHA-2, RSA PKCS#1 v1.5 with SHA-2, Ed25519, ML-DSA or SLH-DSA-SHA2-128s`,
    );
  }
  // Without this an RSA signature labelled ecdsa-with-SHA256 would still verify in node, and an
  // ML-DSA-65 key could sign under the ML-DSA-44 label.
  if (alg.keyType !== key.key.asymmetricKeyType) throw badCsr(`signature algorithm ${alg.name} does not match the ${key.algorithm} public key`);
  const nullParams = p !== null && p.length === 2 && p[0] === 0x05 && p[1] === 0x00;
  // RFC 4055: RSA uses NULL (absent tolerated); RFC 5758 / RFC 8410 / RFC 9881: ECDSA, Ed25519 and ML-DSA have none.
  if (p && !(alg.keyType === 'rsa' && nullParams))
    throw badCsr(`signature algorithm ${alg.name} has unexpected parameters${alg.keyType === 'rsa' ? ' (only NULL)' : '; they must be absent'}`);
}

// ---------------------------------------------------------------------------------------------
// Subject

/** RFC 4514 short names; other attribute types are written as dotted OIDs with #hex values. */
const SHORT_NAMES: Record<string, string> = {
  '2.5.4.3': 'CN',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '2.5.4.6': 'C',
  '2.5.4.9': 'STREET',
  '0.9.2342.19200300.100.1.25': 'DC',
  '0.9.2342.19200300.100.1.1': 'UID',
};

/** Text of a directory string element, or null when it is not a string type. */
function directoryString(el: Uint8Array): string | null {
  const tag = el[0];
  const c = Buffer.from(contentOf(el));
  switch (tag) {
    case 0x0c:
      return new TextDecoder('utf-8', { fatal: true }).decode(c);
    case 0x12:
    case 0x13:
    case 0x16:
    case 0x1a:
      if (c.some((b) => b > 0x7f)) throw new Error('non-ASCII bytes in an ASCII string type');
      return c.toString('latin1');
    case 0x14:
      return c.toString('latin1'); // TeletexString: latin1 is how everyone reads it in practice.
    case 0x1e: {
      if (c.length % 2) throw new Error('BMPString of odd length');
      return new TextDecoder('utf-16be', { fatal: true }).decode(c);
    }
    case 0x1c: {
      if (c.length % 4) throw new Error('UniversalString length not a multiple of 4');
      let s = '';
      for (let i = 0; i < c.length; i += 4) s += String.fromCodePoint(c.readUInt32BE(i));
      return s;
    }
    default:
      return null;
  }
}

function escapeRfc4514(v: string): string {
  let out = '';
  for (let i = 0; i < v.length; i++) {
    const ch = v[i]!;
    const code = ch.charCodeAt(0);
    if ('\\"+,;<>'.includes(ch)) out += '\\' + ch;
    // Control characters as hex pairs keep the DN printable on one line.
    else if (code < 0x20 || code === 0x7f) out += '\\' + code.toString(16).padStart(2, '0');
    else if ((i === 0 && (ch === '#' || ch === ' ')) || (i === v.length - 1 && ch === ' ')) out += '\\' + ch;
    else out += ch;
  }
  return out;
}

function readSubject(nameDer: Uint8Array): { commonName?: string; dn: string } {
  try {
    if (nameDer[0] !== 0x30) throw new Error('subject is not a SEQUENCE');
    const rdns: string[] = [];
    const cns: string[] = [];
    for (const rdn of children(nameDer)) {
      if (rdn[0] !== 0x31) throw new Error('RDN is not a SET');
      const atvs: string[] = [];
      for (const atv of children(rdn)) {
        const parts = children(atv);
        if (atv[0] !== 0x30 || parts.length !== 2 || parts[0]![0] !== 0x06) throw new Error('malformed AttributeTypeAndValue');
        const oid = oidOf(parts[0]!);
        const value = parts[1]!;
        const text = directoryString(value);
        if (oid === OID_CN) {
          if (text === null) throw badCsr('subject commonName is not a string');
          cns.push(text);
        }
        const short = SHORT_NAMES[oid];
        // The attributes Signet names are DirectoryStrings (X.520; DC and UID IA5Strings); a
        // time or a number where a name belongs is not a name any verifier would read alike.
        if (short && text === null) throw badCsr(`subject ${short} is not a string (ASN.1 tag 0x${value[0]!.toString(16).padStart(2, '0')})`);
        atvs.push(short && text !== null ? `${short}=${escapeRfc4514(text)}` : `${oid}=#${Buffer.from(value).toString('hex')}`);
      }
      if (atvs.length === 0) throw new Error('empty RDN');
      rdns.push(atvs.join('+'));
    }
    // The CN is copied into the certificate and must equal one SAN; two CNs make that ambiguous.
    if (cns.length > 1) throw badCsr(`subject has ${cns.length} commonName attributes; at most one is allowed`);
    return { ...(cns.length ? { commonName: cns[0]! } : {}), dn: rdns.reverse().join(',') };
  } catch (e) {
    if (e instanceof SignetError) throw e;
    throw badCsr(`subject name is malformed: ${(e as Error).message}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Requested extensions

function readSans(extnValue: Uint8Array): SanEntry[] {
  let items: (SanEntry | SanProblem)[];
  try {
    items = readSanList(extnValue);
  } catch (e) {
    throw badCsr(`subjectAltName extension is malformed: ${(e as Error).message}`);
  }
  if (items.length === 0) throw badCsr('subjectAltName extension is empty');
  const bad = items.find(isSanProblem);
  if (bad) throw sanRefusal(bad);
  return items as SanEntry[];
}

/** The refusal for the first entry Signet cannot issue. */
function sanRefusal(p: SanProblem): SignetError {
  switch (p.problem) {
    case 'text':
      return badCsr(`subjectAltName ${p.form} is not valid IA5String text`);
    case 'ip-length':
      return badCsr(`subjectAltName iPAddress of ${p.length} bytes is neither IPv4 (4) nor IPv6 (16)`);
    case 'form': {
      const form = OTHER_GENERAL_NAME_FORMS[p.tag];
      if (form)
        return new SignetError(
          'rejected-name',
          `subjectAltName contains an entry of type ${form}; Signet issues only dNSName, iPAddress, rfc822Name and uniformResourceIdentifier SANs`,
        );
      return badCsr(`subjectAltName has an entry with unknown tag 0x${p.tag.toString(16)}`);
    }
  }
}

function readExtensions(attributes: { type: string; values: ArrayBuffer[] }[]): { sans: SanEntry[]; requestedExtensions: string[] } {
  const requested = attributes.filter((a) => a.type === OID_EXTENSION_REQUEST);
  if (requested.length === 0) return { sans: [], requestedExtensions: [] };
  if (requested.length > 1) throw badCsr(`CSR has ${requested.length} extensionRequest attributes; at most one is allowed`);
  const values = requested[0]!.values.length;
  if (values !== 1)
    throw badCsr(
      values === 0
        ? 'the extensionRequest attribute has no value (an empty SET); it must hold exactly one list of extensions'
        : `the extensionRequest attribute has ${values} values; it must hold exactly one list of extensions`,
    );
  // One read with the strict reader: the shapes were checked before (checkExtensionRequestDer),
  // and the schema parser loses precision on OID arcs past 2^53 (UUID arcs under 2.25 are legal).
  let exts: { id: string; value: Uint8Array }[];
  try {
    exts = children(new Uint8Array(requested[0]!.values[0]!)).map((ext) => {
      const parts = children(ext);
      return { id: oidOf(parts[0]!), value: contentOf(parts[parts.length - 1]!) };
    });
  } catch (e) {
    throw badCsr(`extensionRequest is malformed: ${(e as Error).message}`);
  }
  const oids: string[] = [];
  let sans: SanEntry[] = [];
  for (const { id, value } of exts) {
    if (oids.includes(id)) throw badCsr(`extension ${id} is requested more than once`);
    oids.push(id);
    if (id === OID_SAN) sans = readSans(value);
  }
  return { sans, requestedExtensions: oids };
}
