/**
 * crl-shards: issue #19 item 5. A CA with BENCH_CRL_SHARD_ENTRIES (default 1,000,000) revoked
 * certificates, signed once as one unsharded CRL and then, after the same rows are spread over
 * SIGNET_CRL_SHARDS=4 shards, as four shard CRLs: each shard's size against the full CRL's and
 * the time to re-sign one shard (what a revocation costs). In process (the publisher a server
 * runs), SQLite, ECDSA P-256 intermediate. Rows are bulk-inserted, not issued.
 */
import { loadavg } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pino from 'pino';
import { loadConfig } from '../../src/config/config.js';
import { bootstrapIfEmpty, openSignet } from '../../src/runtime/open.js';
import { createServices } from '../../src/runtime/services.js';
import { buildCsr } from '../../src/pki/csr-builder.js';
import { derToPem } from '../../src/pki/pem.js';
import { ownKey } from '../../src/pki/keys.js';
import { generateKeyPairSync } from 'node:crypto';
import { sqliteBulkInsert, sqliteTemplate } from '../lib/fixtures.js';
import { fmt, max, median, min, newReport, removeTemp, RUNS, tempDir, type WorkloadReport } from '../lib/util.js';

const SHARDS = 4;

export async function crlShardsWorkload(): Promise<WorkloadReport> {
  const entries = Number(process.env.BENCH_CRL_SHARD_ENTRIES ?? 1_000_000);
  const runs = RUNS();
  const report = newReport('crl-shards', { entries, shards: SHARDS, runs, keyType: 'ecdsa-p256', database: 'sqlite' });
  const dir = tempDir('crl-shards');
  const loadBefore = loadavg()[0]!;
  try {
    const env = { SIGNET_DATA_DIR: dir, SIGNET_LOG_LEVEL: 'warn', SIGNET_INTERMEDIATE_KEY: 'ecdsa-p256', SIGNET_CRL_SHARDS: String(SHARDS) };
    const config = loadConfig(env);
    const ctx = await openSignet(config, pino({ level: 'warn' }));
    await bootstrapIfEmpty(ctx, config);
    const { issuance, crls } = createServices(ctx, config);
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const csr = derToPem(await buildCsr(ownKey(key), 'host.bench.test', [{ type: 'dns', value: 'host.bench.test' }]), 'CERTIFICATE REQUEST');
    const issued = await issuance.issue({ csr, profile: 'server' }, { principal: { kind: 'system', actor: 'bench' } } as const);
    const dbFile = join(dir, 'signet.db');
    const template = sqliteTemplate(dbFile, issued.serial);
    const caId = template.caId;
    const ms = sqliteBulkInsert(dbFile, template, { count: entries, offset: 0, status: 'revoked', baseEpoch: Math.floor(Date.now() / 1000) - 60 });
    process.stderr.write(`crl-shards: inserted ${fmt(entries)} revoked rows in ${fmt(ms / 1000, 1)} s\n`);

    const measure = async (shard: number): Promise<{ ms: number[]; bytes: number; entries: number }> => {
      const times: number[] = [];
      let bytes = 0;
      let n = 0;
      for (let r = 0; r < runs; r++) {
        const t0 = performance.now();
        const crl = await crls.publish(caId, undefined, 'bench', { shard, delta: false });
        times.push(performance.now() - t0);
        bytes = crl.der.length;
        n = crl.entries;
      }
      process.stderr.write(`crl-shards: shard ${shard}: ${fmt(n)} entries, ${fmt(bytes)} bytes, ${times.map((t) => fmt(t)).join(' / ')} ms\n`);
      return { ms: times, bytes, entries: n };
    };
    // 1. Unsharded: every row without a shard (as before sharding).
    const full = await measure(0);
    // 2. The same rows spread over the shards, as issuance would have (here by rowid).
    const db = new Database(dbFile);
    db.prepare(`UPDATE "Certificate" SET "crlShard" = 1 + ("rowid" % ${SHARDS}) WHERE "caId" = ? AND "status" = 'revoked'`).run(caId);
    db.close();
    const rows: (string | number)[][] = [
      ['unsharded /pki/<caId>.crl', fmt(full.entries), fmt(full.bytes), '1.000', fmt(median(full.ms)), fmt(min(full.ms)), fmt(max(full.ms))],
    ];
    const shardResults = [];
    for (let k = 1; k <= SHARDS; k++) {
      const s = await measure(k);
      shardResults.push(s);
      rows.push([
        `shard ${k} /pki/<caId>.s${k}.crl`,
        fmt(s.entries),
        fmt(s.bytes),
        (s.bytes / full.bytes).toFixed(3),
        fmt(median(s.ms)),
        fmt(min(s.ms)),
        fmt(max(s.ms)),
      ]);
    }
    await ctx.db.close();
    report.tables.push({
      title: `CRL by shard, ${fmt(entries)} revoked certificates, ${SHARDS} shards (re-sign time: median of ${runs})`,
      headers: ['CRL', 'entries', 'bytes (DER)', 'size ÷ full', 're-sign ms (median)', 'min ms', 'max ms'],
      rows,
    });
    const worstSize = Math.max(...shardResults.map((s) => s.bytes / full.bytes));
    const worstMs = Math.max(...shardResults.map((s) => median(s.ms)));
    report.targets.push({ name: 'each shard ≤ 1/3 of the full CRL', target: '≤ 0.333', value: worstSize.toFixed(3), pass: worstSize <= 1 / 3 });
    report.targets.push({
      name: 'a shard re-signed (one revocation)',
      target: '≤ 1,000 ms',
      value: `${fmt(worstMs)} ms (slowest shard, median)`,
      pass: worstMs <= 1000,
    });
    report.notes.push(
      `load average (1 min) ${loadBefore.toFixed(1)} at the start, ${loadavg()[0]!.toFixed(1)} at the end (2 cores): other work on the machine slows every row alike`,
    );
    report.commands.push(`BENCH_NO_BUILD=1 BENCH_CRL_SHARD_ENTRIES=${entries} npm run bench -- crl-shards`);
    report.notes.push(
      "In process: CrlPublisher.publish() for one scope (read the shard's rows from the partial index, encode, sign, store in chunks, audit), timed from the call to the commit. Rows: copies of one real certificate row with unique serials (bench/lib/fixtures.ts), spread over the shards by rowid.",
    );
  } finally {
    removeTemp(dir);
  }
  return report;
}
