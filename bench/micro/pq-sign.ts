/**
 * node:crypto (OpenSSL 3.5) CPU per operation for the signatures the pq workload compares: what
 * one ML-DSA-65 leaf signature and CSR verification cost next to P-256, and a 100,000-entry-sized
 * CRL (4.9 MB) signed with ML-DSA-87 next to P-384. No Signet code: the floor under the HTTP rows.
 *
 *   node --import tsx bench/micro/pq-sign.ts [iterations]
 */
import { generateKeyPairSync, randomBytes, sign, verify, type KeyObject } from 'node:crypto';

const n = Number(process.argv[2] ?? 300);
const tbs = randomBytes(1200); // about a leaf's TBSCertificate
const crl = randomBytes(4_900_000); // about a 100,000-entry CRL's TBSCertList

function row(label: string, fn: () => unknown, iterations: number): void {
  for (let i = 0; i < 5; i++) fn();
  const c0 = process.cpuUsage();
  for (let i = 0; i < iterations; i++) fn();
  const c = process.cpuUsage(c0);
  console.log(`${label.padEnd(28)} ${((c.user + c.system) / iterations / 1000).toFixed(3)} ms CPU/op`);
}

const ml65 = generateKeyPairSync('ml-dsa-65');
const ml87 = generateKeyPairSync('ml-dsa-87');
const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
const s = (h: string | null, d: Buffer, k: KeyObject) => sign(h, d, k);
row('ML-DSA-65 sign 1.2 KB', () => s(null, tbs, ml65.privateKey), n);
row('ECDSA P-256 sign 1.2 KB', () => s('sha256', tbs, p256.privateKey), n);
const sig65 = s(null, tbs, ml65.privateKey);
const sig256 = s('sha256', tbs, p256.privateKey);
row('ML-DSA-65 verify 1.2 KB', () => verify(null, tbs, ml65.publicKey, sig65), n);
row('ECDSA P-256 verify 1.2 KB', () => verify('sha256', tbs, p256.publicKey, sig256), n);
row('ML-DSA-87 sign 4.9 MB', () => s(null, crl, ml87.privateKey), Math.max(3, Math.floor(n / 30)));
row('ECDSA P-384 sign 4.9 MB', () => s('sha384', crl, p384.privateKey), Math.max(3, Math.floor(n / 30)));
