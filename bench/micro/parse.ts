/**
 * Micro-benchmark: µs per call of parseCsr and lintLeafTbs on a P-256 CSR, the full
 * (schema-based) implementations against the fast DER-walking ones.
 *
 *   node --import tsx bench/micro/parse.ts [iterations]
 */
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { algorithmDer, newSerial } from '../../src/pki/certificate.js';
import { buildCsr } from '../../src/pki/csr-builder.js';
import { parseCsr, parseCsrFull } from '../../src/pki/csr.js';
import { encodeName } from '../../src/pki/dn.js';
import { authorityInfoAccess, authorityKeyIdentifier, crlDistributionPoints, keyIdentifier } from '../../src/pki/extensions.js';
import { ownKey, signerFor } from '../../src/pki/keys.js';
import { buildLeafTbs } from '../../src/pki/leaf-template.js';
import { lintLeafTbs, lintLeafTbsFull, type LintExpectations } from '../../src/pki/lint.js';
import { derToPem } from '../../src/pki/pem.js';

const N = Number(process.argv[2] ?? 5000);
const DAY = 86_400_000;

const leafKey = ownKey(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
const sans = [
  { type: 'dns' as const, value: 'www.example.com' },
  { type: 'dns' as const, value: 'example.com' },
];
const csrPem = derToPem(await buildCsr(leafKey, 'www.example.com', sans), 'CERTIFICATE REQUEST');

const caKey = ownKey(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
const caKeyId = keyIdentifier(createPublicKey(caKey).export({ format: 'der', type: 'spki' }));
const caName = encodeName([
  { type: '2.5.4.10', value: 'Bench' },
  { type: '2.5.4.3', value: 'Bench Issuing CA' },
]);
const sigAlg = algorithmDer(signerFor(caKey));
const spkiDer = createPublicKey(leafKey).export({ format: 'der', type: 'spki' });
const notBefore = new Date(Math.floor(Date.now() / 1000) * 1000);
const tbs = buildLeafTbs(
  {
    nameDer: caName,
    signatureAlgorithmDer: sigAlg,
    fixedExtensions: [
      authorityKeyIdentifier(caKeyId),
      authorityInfoAccess({ ocspUrl: 'http://ocsp.example.test/' }),
      crlDistributionPoints('http://ca.example.test/ca.crl'),
    ],
  },
  {
    serial: newSerial(),
    notBefore,
    notAfter: new Date(notBefore.getTime() + 90 * DAY),
    commonName: 'www.example.com',
    sans,
    spkiDer,
    keyUsage: ['digitalSignature'],
    extKeyUsage: ['serverAuth'],
  },
);
const x: LintExpectations = {
  issuerNameDer: caName,
  issuerKeyId: caKeyId,
  issuerNotBefore: new Date(0),
  issuerNotAfter: new Date(Date.now() + 3650 * DAY),
  signatureAlgorithmDer: sigAlg,
  extKeyUsage: ['serverAuth'],
  requireSan: true,
  maxValidityMs: 397 * DAY,
  spkiDer,
};
if (lintLeafTbs(tbs, x).length || lintLeafTbsFull(tbs, x).length) throw new Error('bench TBS is not clean');

function time(label: string, fn: () => unknown): number {
  for (let i = 0; i < Math.min(N, 1000); i++) fn(); // warm-up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) fn();
  const us = Number(process.hrtime.bigint() - t0) / 1000 / N;
  console.log(`${label.padEnd(34)} ${us.toFixed(1).padStart(8)} µs/call`);
  return us;
}

console.log(`${N} iterations, node ${process.version}`);
const a = time('parseCsr     old (parseCsrFull)', () => parseCsrFull(csrPem));
const b = time('parseCsr     new (fast path)', () => parseCsr(csrPem));
const c = time('lintLeafTbs  old (lintLeafTbsFull)', () => lintLeafTbsFull(tbs, x));
const d = time('lintLeafTbs  new (fast path)', () => lintLeafTbs(tbs, x));
console.log(`parseCsr ${(a / b).toFixed(1)}x faster, lintLeafTbs ${(c / d).toFixed(1)}x faster`);
