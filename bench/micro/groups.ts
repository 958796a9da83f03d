/**
 * Key groups (issue #18), in process on a fresh SQLite Signet: a group of N members (default
 * 100,000; ECDSA P-256 group-member certificates issued by Signet), then
 *   - leave: K revocations of random members, each leaving the group in the revocation's
 *     transaction — server time of the group change (GroupService.observe: new path keys,
 *     their wraps, the write) and of the whole revocation, and the wraps of each;
 *   - join: K new members added one at a time — server time and wraps;
 *   - welcomes: every member's welcome built (GroupService.allWelcomes: one public-key wrap each);
 *   - the naive scheme in the same run: re-wrapping the group key to every member, what a
 *     leave costs without a key tree (N public-key wraps), measured for all N.
 *   - one welcome by the member's key: P-256 (ECDH) against ML-KEM-768 (KEMRecipientInfo), the
 *     same content, one thread (an ML-KEM-768 member certified by issueForGeneratedKey).
 * Setup (issuing N certificates, one bulk add) is timed apart and is not the figure.
 *
 *   node --import tsx bench/micro/groups.ts [members] [changes]
 *   BENCH_POSTGRES=postgresql://postgres@127.0.0.1:5432/test … (on a fresh PostgreSQL database,
 *   made next to the one named and dropped at the end; SQLite otherwise)
 *   BENCH_PROFILE_WELCOMES=welcomes.cpuprofile … (the main thread's profile of the welcome phase;
 *   summarise with `npm run bench -- profile welcomes.cpuprofile`)
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { loadConfig } from '../../src/config/config.js';
import { bootstrapIfEmpty, openSignet } from '../../src/runtime/open.js';
import { createServices } from '../../src/runtime/services.js';
import { buildCsr } from '../../src/pki/csr-builder.js';
import { generateKey, ownKey } from '../../src/pki/keys.js';
import { groupKeysDer } from '../../src/groups/messages.js';
import { envelop, prepareRecipient } from '../../src/pki/cms-recipients.js';
import type { ChangeTiming } from '../../src/groups/service.js';
import { storageOf } from '../../src/storage/database.js';

const N = Number(process.argv[2] ?? 100_000);
const K = Number(process.argv[3] ?? 20);
const dir = mkdtempSync(join(tmpdir(), 'signet-bench-groups-'));
const pgAdmin = process.env.BENCH_POSTGRES;
const pgDatabase = `signet_bench_groups_${process.pid}`;
const pgQuery = async (sql: string) => {
  const c = new pg.Client({ connectionString: pgAdmin });
  await c.connect();
  await c.query(sql);
  await c.end();
};
let databaseUrl: string | undefined;
if (pgAdmin) {
  await pgQuery(`CREATE DATABASE ${pgDatabase}`);
  const u = new URL(pgAdmin);
  u.pathname = `/${pgDatabase}`;
  databaseUrl = u.toString();
}
const config = loadConfig({ SIGNET_DATA_DIR: dir, SIGNET_LOG_LEVEL: 'warn', ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}) });
const ctx = await openSignet(config, pino({ level: 'warn' }));
await bootstrapIfEmpty(ctx, config);
const { groups, issuance, revocation } = createServices(ctx, config);
const operator = { principal: { kind: 'operator', actor: 'bench' } } as const;
const progress = (what: string, i: number, n: number) => {
  if (process.stderr.isTTY) process.stderr.write(`\r${what}: ${i}/${n}`);
};
const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]!;
const median = (xs: number[]) => pct(xs, 50);

// ---- Setup: N certificates (1,000 keys, each certified many times: a welcome is one wrap to the certificate's key whatever it is) ----
const keys = await Promise.all(
  Array.from({ length: Math.min(1000, N) }, async (_, i) => {
    const k = ownKey(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
    const name = `m${i}.group.bench`;
    return buildCsr(k, name, [{ type: 'dns', value: name }]);
  }),
);
const t0 = process.hrtime.bigint();
const serials: string[] = [];
let next = 0;
await Promise.all(
  Array.from({ length: 64 }, async () => {
    while (next < N) {
      const i = next++;
      serials.push((await issuance.issue({ csr: keys[i % keys.length]!, profile: 'group-member' }, operator)).serial);
      if (serials.length % 1000 === 0) progress('issuing member certificates', serials.length, N);
    }
  }),
);
const issueMs = ms(t0);
await groups.create({ name: 'bench' }, operator);
const t1 = process.hrtime.bigint();
const seeded = await groups.addMany('bench', serials, operator);
const seedMs = ms(t1);
process.stderr.write(
  `\rsetup: ${N} certificates in ${(issueMs / 1000).toFixed(1)} s, bulk add (tree of height ${seeded.group.treeHeight}) in ${(seedMs / 1000).toFixed(1)} s\n`,
);

// ---- Leave: K revocations ----
const timings: ChangeTiming[] = [];
groups.observe((e) => timings.push(e));
const revokeMs: number[] = [];
const leavers = new Set<string>();
while (leavers.size < Math.min(K, N - 1)) leavers.add(serials[Math.floor(Math.random() * serials.length)]!);
for (const s of leavers) {
  const t = process.hrtime.bigint();
  await revocation.revoke(s, { reason: 'keyCompromise' }, operator);
  revokeMs.push(ms(t));
}
const leaves = timings.filter((t) => t.change === 'leave');

// ---- Join: K new members ----
const joiners: string[] = [];
for (let i = 0; i < K; i++) joiners.push((await issuance.issue({ csr: keys[i % keys.length]!, profile: 'group-member' }, operator)).serial);
const addMs: number[] = [];
for (const s of joiners) {
  const t = process.hrtime.bigint();
  await groups.add('bench', s, operator);
  addMs.push(ms(t));
}
const joins = timings.filter((t) => t.change === 'join');

// ---- Every welcome (BENCH_PROFILE_WELCOMES=file.cpuprofile profiles the main thread over this phase alone) ----
const profiler = process.env.BENCH_PROFILE_WELCOMES ? new Session() : undefined;
if (profiler) {
  profiler.connect();
  await profiler.post('Profiler.enable');
  await profiler.post('Profiler.start');
}
const t2 = process.hrtime.bigint();
const cpu2 = process.cpuUsage(); // every thread of the process: the main one and the workers
let welcomes = 0;
let bytes = 0;
let firstMs = 0;
for await (const w of groups.allWelcomes('bench', operator)) {
  if (welcomes === 0) firstMs = ms(t2);
  welcomes++;
  bytes += w.der.length;
  if (welcomes % 5000 === 0) progress('welcomes', welcomes, N);
}
const welcomeMs = ms(t2);
const welcomeCpu = process.cpuUsage(cpu2);
if (profiler) {
  const { profile } = await profiler.post('Profiler.stop');
  writeFileSync(process.env.BENCH_PROFILE_WELCOMES!, JSON.stringify(profile));
  profiler.disconnect();
}

// ---- The naive scheme: the group key wrapped to every member's certificate ----
const groupKey = randomBytes(32);
const certs = new Map<string, Uint8Array>();
for (let i = 0; i < serials.length; i += 1000)
  for (const c of await storageOf(ctx.db).prisma.certificate.findMany({
    where: { serial: { in: serials.slice(i, i + 1000) } },
    select: { serial: true, der: true },
  }))
    certs.set(c.serial, c.der);
const t3 = process.hrtime.bigint();
const cpu3 = process.cpuUsage();
let naive = 0;
for (const der of certs.values()) {
  envelop(groupKey, [prepareRecipient({ kind: 'certificate', certificateDer: der })]);
  if (++naive % 5000 === 0) progress('naive re-wrap', naive, certs.size);
}
const naiveMs = ms(t3);
const naiveCpu = process.cpuUsage(cpu3);
process.stderr.write('\r');

// ---- One welcome by the member's key: P-256 (ECDH) vs ML-KEM-768 (KEMRecipientInfo), one thread ----
// The same GroupKeys content (a path of ⌈log2 N⌉+1 keys), the recipient prepared once, as the workers do.
const kemCert = await issuance.issueForGeneratedKey(
  {
    privateKey: generateKey('ml-kem-768').privateKey,
    commonName: 'kem.group.bench',
    sans: [{ type: 'dns', value: 'kem.group.bench' }],
    profile: 'group-member',
  },
  operator,
);
const pathKeys = Array.from({ length: Math.ceil(Math.log2(N)) + 1 }, (_, level) => ({ node: { level, pos: 0 }, version: 1, key: randomBytes(32) }));
const content = groupKeysDer('bench', 1, 0, pathKeys);
const byKey = [
  ['P-256 (ECDH, KeyAgreeRecipientInfo)', certs.values().next().value!],
  ['ML-KEM-768 (KEMRecipientInfo)', kemCert.der],
] as const;
const WELCOME_RUNS = 2000;
const perWelcome = byKey.map(([name, der]) => {
  const r = prepareRecipient({ kind: 'certificate', certificateDer: der });
  for (let i = 0; i < 100; i++) envelop(content, [r]); // warm-up
  const t = process.hrtime.bigint();
  let size = 0;
  for (let i = 0; i < WELCOME_RUNS; i++) size = envelop(content, [r]).length;
  return { name, us: (ms(t) * 1000) / WELCOME_RUNS, size };
});

const members = N - leavers.size + joiners.length;
const logN = Math.ceil(Math.log2(N));
console.log(
  `node ${process.version}; ${N} members (ECDSA P-256, group-member); ${K} leaves and ${K} joins; ${pgAdmin ? `PostgreSQL (${pgDatabase})` : `SQLite at ${dir}`}`,
);
console.log('');
console.log('| operation | median | p95 | max | key wraps (max) | target |');
console.log('| --- | ---: | ---: | ---: | ---: | --- |');
const row = (name: string, xs: number[], wraps: number | string, target: string) =>
  console.log(`| ${name} | ${median(xs).toFixed(2)} ms | ${pct(xs, 95).toFixed(2)} ms | ${Math.max(...xs).toFixed(2)} ms | ${wraps} | ${target} |`);
row(
  'leave: group change (server time)',
  leaves.map((t) => t.seconds * 1000),
  Math.max(...leaves.map((t) => t.wraps)),
  `≤ 10 ms, ≤ 2⌈log2 n⌉+1 = ${2 * logN + 1} wraps`,
);
row('leave: the whole revocation (its transaction)', revokeMs, '', '');
row(
  'join: group change (server time)',
  joins.map((t) => t.seconds * 1000),
  Math.max(...joins.map((t) => t.wraps)),
  '≤ 10 ms',
);
row('join: the whole add (its transaction)', addMs, '', '');
console.log('');
const cpuEach = (c: NodeJS.CpuUsage, n: number) => `${Math.round((c.user + c.system) / Math.max(1, n))} µs`;
console.log('| bulk work | count | time | per second | CPU per item (all threads) | target |');
console.log('| --- | ---: | ---: | ---: | ---: | --- |');
console.log(
  `| every welcome (path keys, one wrap to the certificate each, on worker threads; reading the tree and members first: ${(firstMs / 1000).toFixed(1)} s) | ${welcomes} | ${(welcomeMs / 1000).toFixed(1)} s | ${Math.round(welcomes / (welcomeMs / 1000))} | ${cpuEach(welcomeCpu, welcomes)} | ≥ 5,000/s (≤ 400 µs of CPU each on two cores) |`,
);
console.log(
  `| naive leave: the group key re-wrapped to every member (one thread) | ${naive} | ${(naiveMs / 1000).toFixed(1)} s | ${Math.round(naive / (naiveMs / 1000))} | ${cpuEach(naiveCpu, naive)} | (comparison) |`,
);
console.log('');
console.log(`| one welcome, by the member's key (one thread, ${WELCOME_RUNS} runs) | time each | bytes |`);
console.log('| --- | ---: | ---: |');
for (const w of perWelcome) console.log(`| ${w.name} | ${w.us.toFixed(0)} µs | ${w.size} |`);
console.log('');
console.log(
  `A leave with the key tree: ≤ ${Math.max(...leaves.map((t) => t.wraps))} wraps and ${median(leaves.map((t) => t.seconds * 1000)).toFixed(1)} ms; the naive scheme: ${naive} wraps and ${(naiveMs / 1000).toFixed(1)} s for the same group (${Math.round(naiveMs / median(leaves.map((t) => t.seconds * 1000)))}×). Welcome bytes: ${Math.round(bytes / Math.max(1, welcomes))} each; members now ${members}.`,
);
console.log(`setup (not the figure): ${N} certificates issued in ${(issueMs / 1000).toFixed(1)} s; bulk add in ${(seedMs / 1000).toFixed(1)} s`);
await ctx.db.close();
rmSync(dir, { recursive: true, force: true });
if (pgAdmin) await pgQuery(`DROP DATABASE IF EXISTS ${pgDatabase} WITH (FORCE)`);
