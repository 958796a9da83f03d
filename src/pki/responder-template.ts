/**
 * The delegated OCSP responder certificate (RFC 6960 §4.2.2.2): issued by the CA it answers
 * for, id-kp-OCSPSigning, id-pkix-ocsp-nocheck (so clients need not check its own status),
 * short-lived and rotated instead.
 */
import { algorithmDer, encodeTbs, signTbs } from './certificate.js';
import { encodeName } from './dn.js';
import { authorityKeyIdentifier, basicConstraints, EKU, extKeyUsage, keyIdentifier, keyUsage, ocspNoCheck, subjectKeyIdentifier } from './extensions.js';
import type { Signer } from './keys.js';

export async function buildResponderCertificate(p: {
  serial: Buffer; commonName: string; spkiDer: Buffer; notBefore: Date; notAfter: Date;
  issuer: { nameDer: Buffer; keyId: Buffer; signer: Signer };
}): Promise<Buffer> {
  const alg = algorithmDer(p.issuer.signer);
  const tbs = encodeTbs({
    serial: p.serial, signatureAlgorithmDer: alg, issuerNameDer: p.issuer.nameDer, notBefore: p.notBefore, notAfter: p.notAfter,
    subjectNameDer: encodeName([{ type: '2.5.4.3', value: p.commonName }]), spkiDer: p.spkiDer,
    extensions: [
      basicConstraints(false), keyUsage(['digitalSignature']), extKeyUsage([EKU.ocspSigning]), ocspNoCheck(),
      subjectKeyIdentifier(keyIdentifier(p.spkiDer)), authorityKeyIdentifier(p.issuer.keyId),
    ],
  });
  return signTbs(tbs, p.issuer.signer, alg);
}
