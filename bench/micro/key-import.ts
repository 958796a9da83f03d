/**
 * Micro-benchmark: node:crypto's per-CSR costs for a P-256 key — every way node offers to turn
 * a CSR's public key into something crypto.verify accepts, the verify itself, and the CA's
 * signature — next to `openssl speed` (the same OpenSSL, no node in between). A distinct key
 * per iteration, as in issuance (no cache can help: each CSR brings a new key).
 *
 *   node --import tsx bench/micro/key-import.ts [iterations]
 */
import { spawnSync } from 'node:child_process';
import { createPublicKey, generateKeyPairSync, sign, verify, webcrypto, type KeyObject } from 'node:crypto';
import { checkSpki, importSpki } from '../../src/pki/public-key.js';

const N = Number(process.argv[2] ?? 3000);
const KEYS = 500;
const pairs = Array.from({ length: KEYS }, () => generateKeyPairSync('ec', { namedCurve: 'P-256' }));
const message = Buffer.alloc(300, 7);
const jwks = pairs.map((p) => p.publicKey.export({ format: 'jwk' }));
const spkis = pairs.map((p) => p.publicKey.export({ format: 'der', type: 'spki' }));
const raws = spkis.map((d) => d.subarray(d.length - 65));
const sigs = pairs.map((p) => sign('sha256', message, p.privateKey));
const imported = jwks.map((k) => createPublicKey({ key: k, format: 'jwk' }));
const ca = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;

async function time(label: string, f: (i: number) => unknown): Promise<void> {
  for (let i = 0; i < 300; i++) await f(i % KEYS);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) await f(i % KEYS);
  const us = Number(process.hrtime.bigint() - t0) / 1000 / N;
  console.log(`${label.padEnd(58)} ${us.toFixed(1).padStart(7)} µs`);
}

await time('createPublicKey, JWK', (i) => createPublicKey({ key: jwks[i]!, format: 'jwk' }));
// Signet's own checks before node sees the key (public-key.ts): strict SPKI parse, x, y < p, y² = x³ − 3x + b in BigInt.
await time('importSpki (checks + JWK import, what parseCsr uses)', (i) => importSpki(spkis[i]!));
await time("  of which Signet's own checks (checkSpki)", (i) => checkSpki(spkis[i]!));
await time('createPublicKey, DER SubjectPublicKeyInfo', (i) => createPublicKey({ key: spkis[i]!, format: 'der', type: 'spki' }));
await time('subtle.importKey raw (async)', (i) => webcrypto.subtle.importKey('raw', raws[i]!, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['verify']));
await time('verify ECDSA-SHA256 (key imported and used before)', (i) => verify('sha256', message, imported[i]! as KeyObject, sigs[i]!));
await time('JWK import + verify, a new KeyObject each time (parseCsr)', (i) =>
  verify('sha256', message, createPublicKey({ key: jwks[i]!, format: 'jwk' }), sigs[i]!),
);
await time('sign ECDSA-SHA256, the CA key (cached KeyObject)', () => sign('sha256', message, ca));

const speed = spawnSync('openssl', ['speed', '-seconds', '2', 'ecdsap256'], { encoding: 'utf8' });
const line = speed.stdout.split('\n').find((l) => /nistp256/.test(l));
if (line) {
  const [signPerS, verifyPerS] = line.trim().split(/\s+/).slice(-2).map(Number);
  console.log(`${'openssl speed ecdsap256: sign'.padEnd(58)} ${(1e6 / signPerS!).toFixed(1).padStart(7)} µs`);
  console.log(`${'openssl speed ecdsap256: verify'.padEnd(58)} ${(1e6 / verifyPerS!).toFixed(1).padStart(7)} µs`);
}
