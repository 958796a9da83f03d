/**
 * Micro-benchmark (issue #17): where an EST simpleenroll's time goes next to a REST issuance, in
 * process (no HTTP, no TLS). Opens a fresh SQLite Signet, makes one enrollment credential
 * (1,000,000 uses), then times: authenticateEnrollment; spendEnrollmentUse one at a time and at
 * concurrency C; Issuance.issue at concurrency C (what REST does after authentication) and
 * EstService.simpleenroll at concurrency C (the same issue, plus the spend before signing):
 * wall time per certificate and process CPU per certificate.
 *
 *   node --import tsx bench/micro/enroll.ts [certificates] [concurrency]
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { loadConfig } from '../../src/config/config.js';
import { bootstrapIfEmpty, openSignet } from '../../src/runtime/open.js';
import { createServices } from '../../src/runtime/services.js';
import { buildCsr } from '../../src/pki/csr-builder.js';
import { derToPem } from '../../src/pki/pem.js';
import { ownKey } from '../../src/pki/keys.js';
import { authenticateEnrollment, createEnrollmentCredential, spendEnrollmentUse } from '../../src/ca/enrollment-credentials.js';
import { EstService } from '../../src/est/service.js';
import { appendAudit } from '../../src/ca/audit.js';

const N = Number(process.argv[2] ?? 1000);
const C = Number(process.argv[3] ?? 16);
const dir = mkdtempSync(join(tmpdir(), 'signet-micro-enroll-'));
const config = loadConfig({ SIGNET_DATA_DIR: dir, SIGNET_LOG_LEVEL: 'warn' });
const log = pino({ level: 'warn' });
const ctx = await openSignet(config, log);
await bootstrapIfEmpty(ctx, config);
const { issuance } = createServices(ctx, config);
const est = new EstService(ctx, issuance);

const ders = await Promise.all(
  Array.from({ length: 500 }, async (_, i) => {
    const k = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const name = `host${i}.bench.test`;
    return buildCsr(ownKey(k), name, [{ type: 'dns', value: name }]);
  }),
);
const pems = ders.map((d) => derToPem(d, 'CERTIFICATE REQUEST'));
const made = await createEnrollmentCredential(ctx, { protocol: 'est', profile: 'server', uses: 1_000_000, expiresAt: null }, { actor: 'bench' });
const auth = () => authenticateEnrollment(ctx, made.secret, { protocol: 'est', id: made.id });
const who = await auth();
const system = { principal: { kind: 'system', actor: 'bench' } } as const;

const measure = async (label: string, n: number, conc: number, f: (i: number) => Promise<unknown>) => {
  for (let i = 0; i < Math.min(100, n); i++) await f(i); // warm-up
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  let next = 0;
  await Promise.all(
    Array.from({ length: conc }, async () => {
      while (next < n) await f(next++);
    }),
  );
  const wallUs = Number(process.hrtime.bigint() - t0) / 1000 / n;
  const cpu = process.cpuUsage(cpu0);
  const cpuUs = (cpu.user + cpu.system) / n;
  console.log(
    `${label.padEnd(52)} c${String(conc).padEnd(3)} ${wallUs.toFixed(0).padStart(7)} µs wall  ${cpuUs.toFixed(0).padStart(7)} µs CPU  ${(1e6 / wallUs).toFixed(0).padStart(6)}/s`,
  );
};

console.log(`node ${process.version}; ${N} operations per line; SQLite at ${dir}`);
await measure('authenticateEnrollment', N, 1, () => auth());
await measure('spendEnrollmentUse', N, 1, () => spendEnrollmentUse(ctx, who));
// Its parts (each what spendEnrollmentUse does once per use):
await measure('  ctx.db.transaction(nothing)', N, 1, () => ctx.db.transaction(async () => undefined));
await measure('  enrollments.get (Prisma)', N, 1, () => ctx.stores.enrollments.get(made.id));
await measure('  audit.targetsOf(enrollment.used, last) (Prisma)', N, 1, () => ctx.stores.audit.targetsOf('enrollment.used', 1e12));
await measure('  ctx.db.transaction(appendAudit)', N, 1, () =>
  ctx.db.transaction((tx) => appendAudit(tx, { actor: 'bench', action: 'bench.noop', target: made.id, details: { use: 1 } })),
);
await measure('spendEnrollmentUse', N, C, () => spendEnrollmentUse(ctx, who));
await measure('Issuance.issue (REST after auth)', N, C, (i) => issuance.issue({ csr: pems[i % pems.length]!, profile: 'server' }, system));
await measure('EstService.simpleenroll (issue + spend)', N, C, (i) => est.simpleenroll(ders[i % ders.length]!, who, '127.0.0.1'));
await measure('Issuance.issue (REST after auth), again', N, C, (i) => issuance.issue({ csr: pems[i % pems.length]!, profile: 'server' }, system));
await measure('EstService.simpleenroll, again', N, C, (i) => est.simpleenroll(ders[i % ders.length]!, who, '127.0.0.1'));

// What a driver-level spend would cost (the proposed fix; not Signet code): on the same SQLite
// file, synchronous=FULL, one better-sqlite3 transaction doing what spendEnrollmentUse's does —
// read the row, compare-and-set usesSpent, read the audit head, insert an event row, upsert the
// head — into scratch tables (BenchEvent, a Setting key of its own), so Signet's chain is not touched.
// One spend per transaction, then K spends per transaction (a group commit of spends).
{
  const Database = (await import('better-sqlite3')).default;
  const db = new Database(join(dir, 'signet.db'));
  db.pragma('busy_timeout = 5000');
  db.pragma('synchronous = FULL');
  db.exec(
    'CREATE TABLE IF NOT EXISTS "BenchEvent" (seq INTEGER PRIMARY KEY, time TEXT, actor TEXT, action TEXT, target TEXT, details TEXT, prevHash TEXT, hash TEXT)',
  );
  const row = db.prepare('SELECT "usesSpent", "usesAllowed", "revokedAt" FROM "EnrollmentCredential" WHERE id = ?');
  const cas = db.prepare('UPDATE "EnrollmentCredential" SET "usesSpent" = ?, "lastUsedAt" = ? WHERE id = ? AND "usesSpent" = ? AND "revokedAt" IS NULL');
  const head = db.prepare('SELECT seq, hash FROM "BenchEvent" ORDER BY seq DESC LIMIT 1');
  const ins = db.prepare('INSERT INTO "BenchEvent" (seq, time, actor, action, target, details, prevHash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
  const up = db.prepare(`INSERT INTO "Setting" (key, value) VALUES ('bench.head', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`);
  const { createHash } = await import('node:crypto');
  const spendK = db.transaction((k: number) => {
    const r = row.get(made.id) as { usesSpent: number; usesAllowed: number };
    const n = Math.min(k, r.usesAllowed - r.usesSpent);
    if (cas.run(r.usesSpent + n, Date.now(), made.id, r.usesSpent).changes !== 1) throw new Error('lost');
    let h = head.get() as { seq: number; hash: string } | undefined;
    for (let j = 0; j < n; j++) {
      const details = JSON.stringify({ protocol: 'est', profile: 'server', use: r.usesSpent + j + 1 });
      const hash = createHash('sha256')
        .update(`${h?.hash ?? ''}${details}`)
        .digest('hex');
      ins.run((h?.seq ?? 0) + 1, new Date().toISOString(), `enroll:${made.id}`, 'enrollment.used', made.id, details, h?.hash ?? '', hash);
      h = { seq: (h?.seq ?? 0) + 1, hash };
    }
    up.run(h!.hash);
  });
  for (const k of [1, 16]) {
    const tx = Math.max(1, Math.floor(N / k));
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < tx; i++) spendK(k);
    const wallUs = Number(process.hrtime.bigint() - t0) / 1000 / (tx * k);
    const c = process.cpuUsage(cpu0);
    const cpuUs = (c.user + c.system) / (tx * k);
    console.log(
      `${`driver-level spend, ${k} per transaction (sketch)`.padEnd(52)} c1   ${wallUs.toFixed(0).padStart(7)} µs wall  ${cpuUs.toFixed(0).padStart(7)} µs CPU  ${(1e6 / wallUs).toFixed(0).padStart(6)}/s`,
    );
  }
  db.close();
}

await ctx.db.close();
rmSync(dir, { recursive: true, force: true });
