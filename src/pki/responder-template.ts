/**
 * The delegated OCSP responder certificate (RFC 6960 §4.2.2.2): issued by the CA it answers
 * for, id-kp-OCSPSigning, id-pkix-ocsp-nocheck (so clients need not check its own status),
 * short-lived and rotated instead.
 */
import { encodeTbs } from './certificate.js';
import { encodeName } from './dn.js';
import { authorityKeyIdentifier, basicConstraints, EKU, extKeyUsage, keyIdentifier, keyUsage, ocspNoCheck, subjectKeyIdentifier } from './extensions.js';

/** The TBS; signed by ca/signing.ts, after the responder lint. */
export function buildResponderTbs(p: {
  serial: Buffer;
  commonName: string;
  spkiDer: Buffer;
  notBefore: Date;
  notAfter: Date;
  issuer: { nameDer: Buffer; keyId: Buffer };
  signatureAlgorithmDer: Buffer;
}): Buffer {
  return encodeTbs({
    serial: p.serial,
    signatureAlgorithmDer: p.signatureAlgorithmDer,
    issuerNameDer: p.issuer.nameDer,
    notBefore: p.notBefore,
    notAfter: p.notAfter,
    subjectNameDer: encodeName([{ type: '2.5.4.3', value: p.commonName }]),
    spkiDer: p.spkiDer,
    extensions: [
      basicConstraints(false),
      keyUsage(['digitalSignature']),
      extKeyUsage([EKU.ocspSigning]),
      ocspNoCheck(),
      subjectKeyIdentifier(keyIdentifier(p.spkiDer)),
      authorityKeyIdentifier(p.issuer.keyId),
    ],
  });
}
