/**
 * Micro-benchmark: what the webhook outbox costs the issuance group commit (issue #19). The
 * same driver-level writer (storage/issuance-writer.ts) commits batches of certificates with
 * their audit events, alternately without outbox rows (as before webhooks) and with them (one
 * `certificate.issued` event per certificate, built by outboxOf from the audit rows, one extra
 * multi-row INSERT on PostgreSQL, one prepared insert per row on SQLite), in the same process
 * on the same database, in alternating order, so load on the machine hits both arms alike.
 *
 *   node --import tsx bench/micro/webhook-outbox.ts [batches per arm and round]
 *   BENCH_PG_URL=postgresql://postgres@127.0.0.1:5432/postgres …   (also PostgreSQL, in a scratch database)
 *
 * Prints µs per certificate for batch sizes 1 and 32 (SQLite synchronous=FULL as served): wall
 * time, which the fsync dominates and a loaded machine makes noisy, and this process's CPU time,
 * which is what the outbox adds (building the rows, binding and running the insert).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { AuditTrail, HEAD_KEY, type AuditInput } from '../../src/ca/audit.js';
import { outboxOf } from '../../src/ca/webhook-events.js';
import { headValue } from '../../src/model/audit.js';
import type { NewCertificateRecord } from '../../src/model/certificate.js';
import type { DatabaseTarget } from '../../src/storage/database-url.js';
import { openIssuanceWriter, type BuildAudit } from '../../src/storage/issuance-writer.js';
import { migrate } from '../../src/storage/migrate.js';

const BATCHES = Number(process.argv[2] ?? 200);
const ROUNDS = 4;
const trail = new AuditTrail(randomBytes(32));

function cert(): NewCertificateRecord {
  const serial = randomBytes(16).toString('hex');
  const now = new Date();
  return {
    serial,
    caId: 'bench-ca',
    profile: 'server',
    subject: 'CN=bench.example',
    commonName: 'bench.example',
    sans: JSON.stringify([{ type: 'dns', value: 'bench.example' }]),
    sanText: 'bench.example',
    keyAlgorithm: 'ecdsa-p256',
    notBefore: now,
    notAfter: new Date(now.getTime() + 86_400_000),
    der: randomBytes(600),
    fingerprint: randomBytes(32).toString('hex'),
    csrHash: null,
    tokenId: null,
    predecessorSerial: null,
    createdAt: now,
    crlShard: null,
  };
}

const build =
  (certs: NewCertificateRecord[], withOutbox: boolean): BuildAudit =>
  (head) => {
    const inputs: AuditInput[] = certs.map((c) => ({
      actor: 'token:bench',
      action: 'certificate.issued',
      target: c.serial,
      details: { caId: c.caId, profile: c.profile, sans: ['bench.example'], fingerprint: c.fingerprint, predecessor: null },
    }));
    const rows = trail.chain(head, inputs);
    return { rows, headKey: HEAD_KEY, headValue: headValue(rows[rows.length - 1]!), ...(withOutbox ? { outbox: outboxOf(rows) } : {}) };
  };

async function measure(target: DatabaseTarget, label: string): Promise<void> {
  const writer = openIssuanceWriter(target);
  for (const size of [1, 32]) {
    const sums = { without: 0, with: 0 };
    const cpu = { without: 0, with: 0 };
    for (let round = 0; round < ROUNDS; round++) {
      // ABBA: neither arm always runs on the bigger database and the longer WAL.
      for (const arm of round % 2 ? (['with', 'without'] as const) : (['without', 'with'] as const)) {
        const t0 = process.hrtime.bigint();
        const c0 = process.cpuUsage();
        for (let b = 0; b < BATCHES; b++) {
          const certs = Array.from({ length: size }, cert);
          await writer.write(certs, build(certs, arm === 'with'));
        }
        sums[arm] += Number(process.hrtime.bigint() - t0) / 1000;
        const c = process.cpuUsage(c0);
        cpu[arm] += c.user + c.system;
      }
    }
    const per = (us: number) => us / (ROUNDS * BATCHES * size);
    process.stdout.write(
      `${label} batch ${String(size).padStart(2)}: wall without outbox ${per(sums.without).toFixed(1)} µs/cert, with ${per(sums.with).toFixed(1)} (${(((sums.with - sums.without) / sums.without) * 100).toFixed(1)}%); ` +
        `CPU of this process without ${per(cpu.without).toFixed(1)} µs/cert, with ${per(cpu.with).toFixed(1)} (+${(per(cpu.with) - per(cpu.without)).toFixed(1)} µs)\n`,
    );
  }
  await writer.close();
}

const dir = mkdtempSync(join(tmpdir(), 'signet-outbox-bench-'));
try {
  const file = join(dir, 'signet.db');
  const sqlite: DatabaseTarget = { provider: 'sqlite', location: file, sqliteSynchronous: 'full' };
  await migrate(sqlite);
  const db = new Database(file);
  db.prepare(
    `INSERT INTO "CertificateAuthority" (id, name, "certificateDer", subject, serial, fingerprint, "keyAlgorithm", status, "notBefore", "notAfter") VALUES ('bench-ca', 'bench', x'00', 'CN=b', '01', 'fp', 'ecdsa-p256', 'active', 0, 0)`,
  ).run();
  db.close();
  await measure(sqlite, 'sqlite    ');
  const pgUrl = process.env.BENCH_PG_URL;
  if (pgUrl) {
    const name = `signet_outbox_bench_${randomBytes(4).toString('hex')}`;
    const admin = new pg.Client({ connectionString: pgUrl });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    const u = new URL(pgUrl);
    u.pathname = `/${name}`;
    const target: DatabaseTarget = { provider: 'postgresql', location: u.toString() };
    try {
      await migrate(target);
      const c = new pg.Client({ connectionString: target.location });
      await c.connect();
      await c.query(
        `INSERT INTO "CertificateAuthority" (id, name, "certificateDer", subject, serial, fingerprint, "keyAlgorithm", status, "notBefore", "notAfter") VALUES ('bench-ca', 'bench', '\\x00', 'CN=b', '01', 'fp', 'ecdsa-p256', 'active', now(), now())`,
      );
      await c.end();
      await measure(target, 'postgresql');
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
