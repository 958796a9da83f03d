/**
 * Micro-benchmark: ns per lintLeafTbs call on a typical P-256 leaf TBS (what issuance lints),
 * this tree against an older revision of src/ (by default the last one with two copies of the
 * lint rules, one per parse path). The old src/ is extracted with `git archive` under tmp/ (git
 * ignores it) so both run in one process, on the same TBS, interleaved to share the noise.
 *
 *   node --import tsx bench/micro/lint.ts [revision] [iterations]
 */
import { execFileSync } from 'node:child_process';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { algorithmDer, newSerial } from '../../src/pki/certificate.js';
import { encodeName } from '../../src/pki/dn.js';
import { authorityInfoAccess, authorityKeyIdentifier, crlDistributionPoints, keyIdentifier } from '../../src/pki/extensions.js';
import { ownKey, signerFor } from '../../src/pki/keys.js';
import { buildLeafTbs } from '../../src/pki/leaf-template.js';
import * as current from '../../src/pki/lint.js';

/** The last commit whose lint spelled its rules twice (lintLeafTbsFast and lintLeafTbsFull). */
const TWO_COPIES = 'd71d637';
const rev = process.argv[2] ?? TWO_COPIES;
const N = Number(process.argv[3] ?? 20_000);
const DAY = 86_400_000;

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const oldDir = join(root, 'tmp', `bench-lint-${rev.replace(/[^\w.-]/g, '_')}`);
rmSync(oldDir, { recursive: true, force: true });
mkdirSync(oldDir, { recursive: true });
execFileSync('sh', ['-c', `git -C "${root}" archive "${rev}" src | tar -x -C "${oldDir}"`]);
const old = (await import(pathToFileURL(join(oldDir, 'src', 'pki', 'lint.ts')).href)) as typeof current;

const leafKey = ownKey(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
const caKey = ownKey(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
const caKeyId = keyIdentifier(createPublicKey(caKey).export({ format: 'der', type: 'spki' }));
const caName = encodeName([
  { type: '2.5.4.10', value: 'Bench' },
  { type: '2.5.4.3', value: 'Bench Issuing CA' },
]);
const sigAlg = algorithmDer(signerFor(caKey));
const spkiDer = createPublicKey(leafKey).export({ format: 'der', type: 'spki' });
const notBefore = new Date(Math.floor(Date.now() / 1000) * 1000);
const sans = [
  { type: 'dns' as const, value: 'www.example.com' },
  { type: 'dns' as const, value: 'example.com' },
];
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
const x: current.LintExpectations = {
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
if (current.lintLeafTbs(tbs, x).length || old.lintLeafTbs(tbs, x).length) throw new Error('bench TBS is not clean');

/**
 * CPU ns per call of `fn` over `n` calls. CPU time, not wall time: on a shared machine the
 * wall clock also counts the time other processes had the core.
 */
function run(fn: () => unknown, n: number): number {
  const t0 = process.cpuUsage();
  for (let i = 0; i < n; i++) fn();
  const t = process.cpuUsage(t0);
  return ((t.user + t.system) * 1000) / n;
}

const subjects: [string, () => unknown][] = [
  [`old (${rev}) lintLeafTbs`, () => old.lintLeafTbs(tbs, x)],
  ['new lintLeafTbs', () => current.lintLeafTbs(tbs, x)],
  [`old (${rev}) lintLeafTbsFull`, () => old.lintLeafTbsFull(tbs, x)],
  ['new lintLeafTbsFull', () => current.lintLeafTbsFull(tbs, x)],
];
for (const [label, fn] of subjects) run(fn, label.includes('Full') ? 200 : 5000); // warm-up: let both reach optimised code
// Five interleaved rounds, every other one in reverse order (so neither side always runs first);
// the best round of each is reported (the least disturbed by the rest of the machine).
const best = subjects.map(() => Infinity);
const fullN = Math.max(100, Math.floor(N / 50)); // the schema-based path is ~50× slower
for (let round = 0; round < 5; round++) {
  const order = subjects.map((_, i) => i);
  if (round % 2) order.reverse();
  for (const i of order) best[i] = Math.min(best[i]!, run(subjects[i]![1], subjects[i]![0].includes('Full') ? fullN : N));
}
console.log(`TBS ${tbs.length} bytes, ${N} calls (${fullN} for the full path) × 5 rounds, best round, CPU time, node ${process.version}`);
subjects.forEach(([label], i) => {
  console.log(`${label.padEnd(34)} ${best[i]!.toFixed(0).padStart(8)} ns/op`);
});
console.log(`lintLeafTbs new/old: ${(best[1]! / best[0]!).toFixed(2)}`);
rmSync(oldDir, { recursive: true, force: true });
