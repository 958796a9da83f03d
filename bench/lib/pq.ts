/**
 * Post-quantum bench helpers: an ML-DSA CSR pool made with node:crypto (Debian's OpenSSL 3.0
 * cannot make ML-DSA keys; Node 24's OpenSSL 3.5 can), OCSP requests built from the issuer's
 * certificate, and checks done with node:crypto (OpenSSL 3.5) rather than the openssl CLI, which
 * cannot read ML-DSA.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { X509Certificate, generateKeyPairSync, verify as cryptoVerify } from 'node:crypto';
import { join } from 'node:path';
import { AsnConvert } from '@peculiar/asn1-schema';
import { BasicOCSPResponse, OCSPResponse } from '@peculiar/asn1-ocsp';
import { buildCsr } from '../../src/pki/csr-builder.js';
import { readHeader, sequence } from '../../src/pki/der.js';
import { ownKey } from '../../src/pki/keys.js';
import { encodeCertId, issuerHashes } from '../../src/pki/ocsp.js';
import { derToPem } from '../../src/pki/pem.js';
import { CACHE_DIR } from './util.js';

/** N ML-DSA CSRs (CN = the single DNS SAN), cached in bench/.cache/csrs-<alg>-<n>.json. */
export async function pqCsrPool(alg: 'ml-dsa-44' | 'ml-dsa-65' | 'ml-dsa-87', n: number): Promise<string[]> {
  mkdirSync(CACHE_DIR, { recursive: true });
  const file = join(CACHE_DIR, `csrs-${alg}-${n}.json`);
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as string[];
  process.stderr.write(`bench: generating ${n} ${alg} CSRs with node:crypto (cached in ${file})\n`);
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const name = `pq${i}.bench.test`;
    const { privateKey } = generateKeyPairSync(alg as 'ml-dsa-65');
    out.push(derToPem(await buildCsr(ownKey(privateKey), name, [{ type: 'dns', value: name }]), 'CERTIFICATE REQUEST'));
  }
  writeFileSync(file, JSON.stringify(out));
  return out;
}

/** A single-CertID OCSP request (SHA-1 CertID, no nonce), as `openssl ocsp -no_nonce -reqout` makes. */
export function ocspRequestFor(issuerDer: Buffer, serialHex: string): Buffer {
  const h = issuerHashes(issuerDer).sha1;
  return sequence(
    sequence(
      sequence(sequence(encodeCertId({ hashAlgorithm: 'sha1', issuerNameHash: h.nameHash, issuerKeyHash: h.keyHash, serial: Buffer.from(serialHex, 'hex') }))),
    ),
  );
}

/** Leaf → intermediate → root with node:crypto (OpenSSL 3.5): signatures and issuer names. */
export function verifyChain(leafPem: string, intermediate: X509Certificate, root: X509Certificate): boolean {
  const leaf = new X509Certificate(leafPem);
  return leaf.checkIssued(intermediate) && leaf.verify(intermediate.publicKey) && intermediate.verify(root.publicKey) && root.verify(root.publicKey);
}

/**
 * An OCSP response checked without the openssl CLI: successful, signed by the responder
 * certificate it carries (or by the issuer), that certificate signed by the issuer, and the
 * single response's status. Returns the status ('good' | 'revoked' | 'unknown') or throws.
 */
export function checkOcspResponse(der: Buffer, issuer: X509Certificate): { status: string; signer: string } {
  const resp = AsnConvert.parse(der, OCSPResponse);
  if (resp.responseStatus !== 0 || !resp.responseBytes) throw new Error(`OCSP responseStatus ${resp.responseStatus}`);
  const basic = AsnConvert.parse(resp.responseBytes.response.buffer, BasicOCSPResponse);
  const tbs = Buffer.from(AsnConvert.serialize(basic.tbsResponseData));
  const sig = Buffer.from(basic.signature);
  const certs = (basic.certs ?? []).map((c) => new X509Certificate(Buffer.from(AsnConvert.serialize(c))));
  const signerCert = certs[0] ?? issuer;
  if (signerCert !== issuer && !signerCert.verify(issuer.publicKey)) throw new Error('responder certificate not signed by the issuer');
  const key = signerCert.publicKey;
  const alg = key.asymmetricKeyType === 'ec' ? 'sha256' : null;
  if (!cryptoVerify(alg, tbs, key, sig)) throw new Error('OCSP response signature does not verify');
  const single = basic.tbsResponseData.responses[0]!;
  const status = single.certStatus.good !== undefined ? 'good' : single.certStatus.revoked ? 'revoked' : 'unknown';
  return { status, signer: `${key.asymmetricKeyType}${key.asymmetricKeyType === 'ec' ? ' ' + (key.asymmetricKeyDetails?.namedCurve ?? '') : ''}` };
}

/** A CRL's signature checked with node:crypto against the issuer (TBS sliced from the DER, no parse of 100k entries). */
export function verifyCrlSignature(crlDer: Buffer, issuer: X509Certificate): boolean {
  const outer = readHeader(crlDer, 0);
  const tbsAt = outer.headerLength;
  const tbsH = readHeader(crlDer, tbsAt);
  const tbs = crlDer.subarray(tbsAt, tbsAt + tbsH.headerLength + tbsH.length);
  const algAt = tbsAt + tbsH.headerLength + tbsH.length;
  const algH = readHeader(crlDer, algAt);
  const sigAt = algAt + algH.headerLength + algH.length;
  const sigH = readHeader(crlDer, sigAt);
  const sig = crlDer.subarray(sigAt + sigH.headerLength + 1, sigAt + sigH.headerLength + sigH.length);
  const algId = crlDer.subarray(algAt, algAt + algH.headerLength + algH.length).toString('hex');
  // ecdsa-with-SHA256 / -SHA384 / -SHA512 (1.2.840.10045.4.3.2-4); ML-DSA is pure (no digest).
  const digest = algId.includes('2a8648ce3d040302')
    ? 'sha256'
    : algId.includes('2a8648ce3d040303')
      ? 'sha384'
      : algId.includes('2a8648ce3d040304')
        ? 'sha512'
        : null;
  return cryptoVerify(digest, tbs, issuer.publicKey, sig);
}
