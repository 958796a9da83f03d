/**
 * What a CA certificate contains (RFC 5280): basicConstraints critical with pathLen,
 * keyUsage critical keyCertSign+cRLSign+digitalSignature (the CA may sign OCSP responses
 * itself), SKI by RFC 7093, AKI = issuer SKI, and for intermediates the AIA/CRL DP of the parent.
 */
import { encodeTbs } from './certificate.js';
import {
  authorityInfoAccess,
  authorityKeyIdentifier,
  basicConstraints,
  crlDistributionPoints,
  keyIdentifier,
  keyUsage,
  subjectKeyIdentifier,
} from './extensions.js';

export interface CaIssuer {
  nameDer: Buffer;
  keyId: Buffer;
  notAfter: Date;
  /** Public URLs of the issuer (AIA caIssuers, CRL, OCSP) — absent for self-signed roots. */
  urls?: { caIssuers: string; crl: string; ocsp: string };
}

export interface CaCertificateParams {
  serial: Buffer;
  subjectNameDer: Buffer;
  spkiDer: Buffer;
  notBefore: Date;
  validityDays: number;
  pathLen?: number;
  /** Extra extension DER, e.g. nameConstraints. */
  extraExtensions?: Buffer[];
  /** Omitted = self-signed. */
  issuer?: CaIssuer;
  /** DER of the signing key's AlgorithmIdentifier (the issuer's, or for a root its own). */
  signatureAlgorithmDer: Buffer;
}

/** The TBS and what its lint needs to know of it. Signed by ca/signing.ts, after the CA lint. */
export interface CaTbs {
  tbs: Buffer;
  notAfter: Date;
}

export const BACKDATE_MS = 60_000;

export function buildCaTbs(p: CaCertificateParams): CaTbs {
  const notBefore = new Date(Math.floor((p.notBefore.getTime() - BACKDATE_MS) / 1000) * 1000);
  let notAfter = new Date(Math.floor((p.notBefore.getTime() + p.validityDays * 86_400_000) / 1000) * 1000);
  if (p.issuer && notAfter > p.issuer.notAfter) notAfter = p.issuer.notAfter;
  const ski = keyIdentifier(p.spkiDer);
  const extensions = [
    basicConstraints(true, p.pathLen),
    keyUsage(['digitalSignature', 'keyCertSign', 'cRLSign']),
    subjectKeyIdentifier(ski),
    authorityKeyIdentifier(p.issuer?.keyId ?? ski),
  ];
  if (p.issuer?.urls) {
    extensions.push(authorityInfoAccess({ ocspUrl: p.issuer.urls.ocsp, caIssuersUrl: p.issuer.urls.caIssuers }));
    extensions.push(crlDistributionPoints(p.issuer.urls.crl));
  }
  extensions.push(...(p.extraExtensions ?? []));
  const tbs = encodeTbs({
    serial: p.serial,
    signatureAlgorithmDer: p.signatureAlgorithmDer,
    issuerNameDer: p.issuer?.nameDer ?? p.subjectNameDer,
    notBefore,
    notAfter,
    subjectNameDer: p.subjectNameDer,
    spkiDer: p.spkiDer,
    extensions,
  });
  return { tbs, notAfter };
}
