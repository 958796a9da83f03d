/**
 * Migrations are applied exactly once even when processes start together, are recorded in
 * Prisma's format (so Prisma's own `migrate status` agrees), and the committed schemas match
 * prisma/models.prisma.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { BIN, ROOT } from './helpers/cli.js';
import { childEnv, createTestEnv, onPostgres, type TestEnv } from './helpers/env.js';
import { sql } from './helpers/sql.js';
import { enableWal, loadMigrations, migrate } from '../src/storage/migrate.js';
import { resolveDatabase } from '../src/storage/database-url.js';
import { nameKeys } from '../src/storage/certificate-names.js';

function run(args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [BIN, ...args], { env: childEnv(env) });
    let out = '';
    c.stdout.on('data', (d) => {
      out += d;
    });
    c.stderr.on('data', (d) => {
      out += d;
    });
    c.on('exit', (code) => resolve({ code, out }));
  });
}

describe('migrations', () => {
  let env: TestEnv;
  before(async () => {
    env = await createTestEnv();
  });
  after(async () => {
    await env.cleanup();
  });

  test('four processes migrating an empty database at once apply each migration once', async () => {
    const results = await Promise.all([1, 2, 3, 4].map(() => run(['migrate'], env.env)));
    for (const r of results) assert.equal(r.code, 0, r.out);
    assert.equal(results.filter((r) => /applied/.test(r.out)).length, 1, 'exactly one process applied the migrations');
    const rows = await sql(env, 'SELECT migration_name, finished_at FROM "_prisma_migrations"');
    const known = loadMigrations(onPostgres ? 'postgresql' : 'sqlite').map((m) => m.name);
    assert.deepEqual(rows.map((r: any) => r.migration_name).sort(), known);
    assert.ok(rows.every((r: any) => r.finished_at));
    const sums = new Map(loadMigrations(onPostgres ? 'postgresql' : 'sqlite').map((m) => [m.name, m.checksum]));
    for (const r of await sql(env, 'SELECT migration_name, checksum FROM "_prisma_migrations"'))
      assert.equal(r.checksum, sums.get(r.migration_name), 'Prisma-format checksum (SHA-256 of migration.sql)');
  });

  test('two servers starting together on an empty database create one hierarchy', async () => {
    const env2 = await createTestEnv();
    try {
      const results = await Promise.all([1, 2].map(() => run(['init', '--json'], env2.env)));
      assert.deepEqual(results.map((r) => r.code).sort(), [0, 2], results.map((r) => r.out).join('\n'));
      assert.match(results.find((r) => r.code === 2)!.out, /a CA hierarchy already exists/);
      const [row] = await sql(env2, 'SELECT COUNT(*) AS n FROM "CertificateAuthority"');
      assert.equal(Number(row.n), 2);
    } finally {
      await env2.cleanup();
    }
  });

  // Two processes switching a new file to WAL at the same moment: SQLite answers one of them
  // SQLITE_BUSY at once, without its busy handler (CI saw `init` fail so). Simulated with a
  // connection that has no busy handler while another holds the shared lock for 150 ms.
  if (!onPostgres)
    test('switching a new SQLite file to WAL waits out a concurrent lock instead of failing', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'signet-wal-'));
      const holder = new Database(join(dir, 'x.db'));
      const db = new Database(join(dir, 'x.db'), { timeout: 0 });
      try {
        holder.exec('CREATE TABLE t (x)');
        holder.exec('BEGIN');
        holder.prepare('SELECT * FROM t').all();
        assert.throws(() => db.pragma('journal_mode = WAL'), { code: 'SQLITE_BUSY' }, 'the lock is held: a bare switch fails');
        setTimeout(() => holder.exec('COMMIT'), 150);
        await enableWal(db);
        assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
      } finally {
        db.close();
        holder.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });

  // Prisma's Wasm engine cannot read the PostgreSQL catalogue (shared/design/offline-prisma.md),
  // so this cross-check exists on SQLite only; the checksum comparison above covers both.
  if (!onPostgres)
    test("prisma migrate status agrees with Signet's own record", () => {
      // On the test's Node, not the first `node` on PATH: prisma.config.ts loads the native driver.
      const r = spawnSync(process.execPath, [`${ROOT}/node_modules/prisma/build/index.js`, 'migrate', 'status'], {
        cwd: ROOT,
        encoding: 'utf8',
        env: { ...process.env, SIGNET_PRISMA_PROVIDER: 'sqlite', SIGNET_PRISMA_SQLITE_URL: `file:${env.dataDir}/signet.db` },
      });
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /Database schema is up to date!/);
    });

  test('upgrading indexes the names of the certificates issued before the name index existed', async () => {
    const env2 = await createTestEnv();
    try {
      const target = resolveDatabase(env2.databaseUrl, env2.dataDir);
      const all = loadMigrations(target.provider);
      const at = all.findIndex((m) => m.name.endsWith('_certificate_names'));
      assert.ok(at > 0, 'the certificate_names migration exists');
      const before = all.slice(0, at);
      await migrate(target, before);
      const t = '2026-01-01T00:00:00.000';
      await sql(
        env2,
        `INSERT INTO "CertificateAuthority" ("id","name","certificateDer","subject","serial","fingerprint","keyAlgorithm","status","notBefore","notAfter")
        VALUES ('int-1', 'Issuing', ?, 'CN=Issuing', '01', 'fp', 'ecdsa-p256', 'active', ?, ?)`,
        [Buffer.from([0x30, 0x00]), t, t],
      );
      const certs: { serial: string; sans: { type: string; value: string }[] }[] = [
        {
          serial: 'a1',
          sans: [
            { type: 'dns', value: 'www.old.example' },
            { type: 'ip', value: '10.0.0.1' },
          ],
        },
        {
          serial: 'a2',
          sans: [
            { type: 'email', value: 'ops@old.example' },
            { type: 'uri', value: 'spiffe://old.example/a' },
          ],
        },
        { serial: 'a3', sans: [] },
      ];
      for (const c of certs) {
        await sql(
          env2,
          `INSERT INTO "Certificate" ("serial","caId","profile","subject","sans","sanText","keyAlgorithm","notBefore","notAfter","der","fingerprint","createdAt")
          VALUES (?, 'int-1', 'server', '', ?, '', 'ecdsa-p256', ?, ?, ?, ?, ?)`,
          [c.serial, JSON.stringify(c.sans), t, t, Buffer.from([0x30, 0x00]), `fp-${c.serial}`, t],
        );
      }
      const r = await migrate(target);
      assert.ok(r.applied.includes(all[at]!.name), r.applied.join(', '));
      for (const c of certs) {
        const keys = (await sql(env2, 'SELECT "key" FROM "CertificateName" WHERE serial = ?', [c.serial])).map((k: any) => k.key).sort();
        assert.deepEqual(keys, nameKeys(c.sans).sort(), c.serial);
      }
      assert.deepEqual(nameKeys(certs[0]!.sans).sort(), ['.example', '.old.example', '.www.old.example', '10.0.0.1']);
    } finally {
      await env2.cleanup();
    }
  });

  test('the committed provider schemas are generated from prisma/models.prisma', () => {
    const r = spawnSync(process.execPath, [`${ROOT}/scripts/build-schemas.mjs`, '--check'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  });
});
