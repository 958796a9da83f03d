/**
 * The to-be-signed leaf certificate: every extension decided here from the profile, the issuer
 * and the validated names. Only the public key and (validated) names come from the request.
 */
import { encodeTbs } from './certificate.js';
import { encodeName } from './dn.js';
import { sequence, tlv } from './der.js';
import { EKU, EXT, extension, extKeyUsage, keyIdentifier, keyUsage, subjectKeyIdentifier, basicConstraints, type KeyUsageName } from './extensions.js';
import { validateIp, type SanEntry } from './names.js';

export interface LeafIssuer {
  nameDer: Buffer;
  signatureAlgorithmDer: Buffer;
  /** Pre-encoded extensions that are the same for every leaf of this issuer: AKI, AIA. */
  fixedExtensions: Buffer[];
  /** Pre-encoded CRL extensions by shard (index 0: the unsharded CRL): cRLDistributionPoints,
   * and freshestCRL when delta CRLs are published. */
  crlExtensions?: Buffer[][];
}

export interface LeafParams {
  serial: Buffer;
  notBefore: Date;
  notAfter: Date;
  commonName?: string;
  sans: SanEntry[];
  spkiDer: Buffer;
  keyUsage: KeyUsageName[];
  extKeyUsage: (keyof typeof EKU)[];
  /** The certificate's CRL shard (null: unsharded): picks issuer.crlExtensions. */
  crlShard?: number | null;
}

/** SubjectAltName value: GeneralNames with IMPLICIT context tags (RFC 5280 §4.2.1.6). */
export function encodeSan(sans: SanEntry[]): Buffer {
  return sequence(
    ...sans.map((s) => {
      switch (s.type) {
        case 'email':
          return tlv(0x81, Buffer.from(s.value, 'ascii'));
        case 'dns':
          return tlv(0x82, Buffer.from(s.value, 'ascii'));
        case 'uri':
          return tlv(0x86, Buffer.from(s.value, 'ascii'));
        case 'ip':
          return tlv(0x87, validateIp(s.value));
        default:
          throw new Error(`unknown SAN type ${(s as { type: string }).type}`); // unreachable: SanEntry is closed
      }
    }),
  );
}

export function buildLeafTbs(issuer: LeafIssuer, p: LeafParams): Buffer {
  const subject = encodeName(p.commonName ? [{ type: '2.5.4.3', value: p.commonName }] : []);
  const extensions = [
    basicConstraints(false),
    keyUsage(p.keyUsage),
    extKeyUsage(p.extKeyUsage.map((k) => EKU[k])),
    subjectKeyIdentifier(keyIdentifier(p.spkiDer)),
    ...issuer.fixedExtensions,
    ...(issuer.crlExtensions?.[p.crlShard ?? 0] ?? []),
  ];
  // RFC 5280 §4.2.1.6: with an empty subject the SAN extension must be critical.
  if (p.sans.length) extensions.push(extension(EXT.subjectAltName, !p.commonName, encodeSan(p.sans)));
  return encodeTbs({
    serial: p.serial,
    signatureAlgorithmDer: issuer.signatureAlgorithmDer,
    issuerNameDer: issuer.nameDer,
    notBefore: p.notBefore,
    notAfter: p.notAfter,
    subjectNameDer: subject,
    spkiDer: p.spkiDer,
    extensions,
  });
}
