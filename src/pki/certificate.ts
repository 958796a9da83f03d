/**
 * Certificate assembly and inspection at the DER level. Assembly concatenates encoded parts
 * (fast, and byte-exact for names taken from the issuer certificate); inspection walks the
 * DER to pull out the exact bytes that chaining depends on.
 */
import { createHash, randomBytes } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate as AsnCertificate, type Extension as AsnExtension, BasicConstraints, KeyUsage } from '@peculiar/asn1-x509';
import { bitString, contextExplicit, readElement, readHeader, sequence, smallInteger, time, unsignedInteger } from './der.js';
import { checkDer } from './der-strict.js';
import { EXT, keyIdentifier } from './extensions.js';
import { derToPem } from './pem.js';
import type { Signer, TrustedKey } from './keys.js';
import { importSpki, type PublicKeyInfo } from './public-key.js';

/** 16 random bytes with the top bit cleared: positive, 127 bits of entropy, always 16 bytes of DER content. */
export function newSerial(random: (n: number) => Buffer = randomBytes): Buffer {
  const b = random(16);
  b[0] = (b[0]! & 0x7f) | 0x01; // keep it positive and non-zero in the first byte, so the encoding is exactly 16 bytes
  return b;
}

export const serialHex = (serial: Uint8Array): string => Buffer.from(serial).toString('hex');

export interface TbsParams {
  serial: Buffer;
  signatureAlgorithmDer: Buffer;
  issuerNameDer: Buffer;
  notBefore: Date;
  notAfter: Date;
  subjectNameDer: Buffer;
  spkiDer: Buffer;
  extensions: Buffer[];
}

export function encodeTbs(p: TbsParams): Buffer {
  return sequence(
    contextExplicit(0, smallInteger(2)),
    unsignedInteger(p.serial),
    p.signatureAlgorithmDer,
    p.issuerNameDer,
    sequence(time(p.notBefore), time(p.notAfter)),
    p.subjectNameDer,
    p.spkiDer,
    contextExplicit(3, sequence(...p.extensions)),
  );
}

/** Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }. */
export async function signTbs(tbs: Buffer, signer: Signer, algorithmDer: Buffer): Promise<Buffer> {
  return sequence(tbs, algorithmDer, bitString(await signer.sign(tbs)));
}

export const algorithmDer = (signer: Signer): Buffer => Buffer.from(AsnConvert.serialize(signer.algorithm));

/** Exact DER parts of a certificate, for chaining and indexing. */
export interface CertificateParts {
  der: Buffer;
  tbs: Buffer;
  serial: Buffer;
  issuerNameDer: Buffer;
  subjectNameDer: Buffer;
  spkiDer: Buffer;
  notBefore: Date;
  notAfter: Date;
  subjectKeyId: Buffer;
  fingerprint: string;
  isCa: boolean;
  pathLen?: number;
  /**
   * The subject public key, checked by public-key.ts on first use (a certificate from outside —
   * CA import, ACME revoke-cert — may carry any key); throws SignetError 'bad-key'.
   */
  readonly publicKey: TrustedKey;
  readonly publicKeyInfo: PublicKeyInfo;
  parsed: AsnCertificate;
}

export function inspectCertificate(input: Uint8Array): CertificateParts {
  const der = Buffer.from(input);
  const outer = readHeader(der, 0);
  if (outer.headerLength + outer.length !== der.length) throw new RangeError('trailing data after certificate');
  // Certificates also come from outside (CA import, ACME revokeCert): the whole encoding is held
  // to DER before the schema library reads it (its cost grows faster than some inputs).
  checkDer(der);
  const tbs = Buffer.from(readElement(der, outer.headerLength));
  const tbsHeader = readHeader(tbs, 0);
  let off = tbsHeader.headerLength;
  const next = () => {
    const el = readElement(tbs, off);
    off += el.length;
    return Buffer.from(el);
  };
  if (tbs[off] === 0xa0) next();
  const serialEl = next();
  next(); // signature algorithm
  const issuerNameDer = next();
  next(); // validity
  const subjectNameDer = next();
  const spkiDer = next();
  const parsed = AsnConvert.parse(der, AsnCertificate);
  const sh = readHeader(serialEl, 0);
  let serial = serialEl.subarray(sh.headerLength);
  if (serial.length > 1 && serial[0] === 0) serial = serial.subarray(1);
  const exts: AsnExtension[] = parsed.tbsCertificate.extensions ?? [];
  const skiExt = exts.find((e) => e.extnID === EXT.subjectKeyIdentifier);
  const skiValue = skiExt ? Buffer.from(skiExt.extnValue.buffer) : undefined;
  const bcExt = exts.find((e) => e.extnID === EXT.basicConstraints);
  const bc = bcExt ? AsnConvert.parse(bcExt.extnValue.buffer, BasicConstraints) : undefined;
  let key: PublicKeyInfo | undefined;
  const keyInfo = (): PublicKeyInfo => (key ??= importSpki(spkiDer));
  return {
    der,
    tbs,
    serial: Buffer.from(serial),
    issuerNameDer,
    subjectNameDer,
    spkiDer,
    notBefore: parsed.tbsCertificate.validity.notBefore.getTime(),
    notAfter: parsed.tbsCertificate.validity.notAfter.getTime(),
    // The SKI is an OCTET STRING inside extnValue; strip its header. Fall back to computing it.
    subjectKeyId: skiValue ? Buffer.from(readElement(skiValue, 0).subarray(readHeader(skiValue, 0).headerLength)) : keyIdentifier(spkiDer),
    fingerprint: createHash('sha256').update(der).digest('hex'),
    isCa: bc?.cA ?? false,
    pathLen: bc?.pathLenConstraint,
    get publicKeyInfo() {
      return keyInfo();
    },
    get publicKey() {
      return keyInfo().key;
    },
    parsed,
  };
}

/** RFC 5280 §4.1.1.2: the signature algorithm inside the TBS and the one outside are the same encoding. */
export const signatureAlgorithmsAgree = (c: CertificateParts): boolean =>
  Buffer.from(AsnConvert.serialize(c.parsed.tbsCertificate.signature)).equals(Buffer.from(AsnConvert.serialize(c.parsed.signatureAlgorithm)));

/** The keyUsage bits (asn1-x509's KeyUsageFlags), or undefined without the extension. */
export function keyUsageFlagsOf(c: CertificateParts): number | undefined {
  const ext = c.parsed.tbsCertificate.extensions?.find((e) => e.extnID === EXT.keyUsage);
  return ext ? AsnConvert.parse(ext.extnValue.buffer, KeyUsage).toNumber() : undefined;
}

export const toPem = (der: Uint8Array, label = 'CERTIFICATE'): string => derToPem(der, label);

export function fromPem(pem: string, label = 'CERTIFICATE'): Buffer[] {
  const re = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`, 'g');
  return [...pem.matchAll(re)].map((m) => Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
}
