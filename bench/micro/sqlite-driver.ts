/**
 * Micro-benchmark: better-sqlite3 12 against Node 24's built-in node:sqlite, on Signet's own
 * schema (every SQLite migration applied) and Signet's two hot statements: the issuance group
 * commit (per certificate: its row, two name-index rows, one audit event; then the audit head,
 * in one BEGIN IMMEDIATE transaction, WAL, synchronous=FULL as served) and the status read by
 * serial that OCSP and the inventory make. Issue 14 asks to switch to node:sqlite only if it
 * removes the native build without costing speed; this measures the speed half.
 *
 *   node --import tsx bench/micro/sqlite-driver.ts [certificates per driver]
 *
 * Prints wall and CPU µs per certificate for batch sizes 1, 8 and 32 (a batch is one fsync),
 * and µs per status read. The two drivers run in turn on fresh files in the same process.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import Database from 'better-sqlite3';
import { loadMigrations } from '../../src/storage/migrate.js';

const N = Number(process.argv[2] ?? 4000);
const dir = mkdtempSync(join(tmpdir(), 'signet-sqlite-driver-'));

/** The statements both drivers expose in the same shape (node:sqlite's StatementSync and better-sqlite3's Statement). */
interface Stmt {
  run(...v: unknown[]): unknown;
  get(...v: unknown[]): unknown;
}
interface Driver {
  name: string;
  exec(sql: string): void;
  prepare(sql: string): Stmt;
  close(): void;
}

function betterSqlite(file: string): Driver {
  const db = new Database(file);
  return { name: 'better-sqlite3 12', exec: (s) => db.exec(s), prepare: (s) => db.prepare(s) as unknown as Stmt, close: () => db.close() };
}
function nodeSqlite(file: string): Driver {
  const db = new DatabaseSync(file);
  return {
    name: 'node:sqlite (Node ' + process.versions.node + ')',
    exec: (s) => db.exec(s),
    prepare: (s) => db.prepare(s) as unknown as Stmt,
    close: () => db.close(),
  };
}

const CERT_COLS = [
  'serial',
  'caId',
  'profile',
  'subject',
  'commonName',
  'sans',
  'sanText',
  'keyAlgorithm',
  'notBefore',
  'notAfter',
  'der',
  'fingerprint',
  'csrHash',
  'tokenId',
  'createdAt',
];
const AUDIT_COLS = ['seq', 'time', 'actor', 'action', 'target', 'outcome', 'sourceIp', 'details', 'prevHash', 'hash'];
const q = (cols: string[]) => cols.map((c) => `"${c}"`).join(', ');
const marks = (cols: string[]) => cols.map(() => '?').join(', ');
const der = randomBytes(620);

function measure(open: (file: string) => Driver): void {
  const file = join(dir, `${Math.random().toString(36).slice(2)}.db`);
  const db = open(file);
  db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;');
  for (const m of loadMigrations('sqlite')) db.exec(m.sql);
  // The migrations turn foreign keys on; the benchmark has no CA row to point at.
  db.exec('PRAGMA foreign_keys = OFF');
  const insertCert = db.prepare(`INSERT INTO "Certificate" (${q(CERT_COLS)}) VALUES (${marks(CERT_COLS)})`);
  const insertName = db.prepare('INSERT INTO "CertificateName" ("key", "serial", "createdAt") VALUES (?, ?, ?)');
  const insertAudit = db.prepare(`INSERT INTO "AuditEvent" (${q(AUDIT_COLS)}) VALUES (${marks(AUDIT_COLS)})`);
  const newest = db.prepare(`SELECT ${q(AUDIT_COLS)} FROM "AuditEvent" ORDER BY seq DESC LIMIT 1`);
  const setHead = db.prepare('INSERT INTO "Setting" (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value');
  const status = db.prepare('SELECT status, revokedAt, revocationReason FROM "Certificate" WHERE serial = ?');
  let seq = 0;
  let prevHash = '0'.repeat(64);
  const serials: string[] = [];
  const commit = (batch: number) => {
    db.exec('BEGIN IMMEDIATE');
    newest.get();
    for (let i = 0; i < batch; i++) {
      const serial = randomBytes(16).toString('hex');
      serials.push(serial);
      const now = new Date().toISOString();
      insertCert.run(
        serial,
        'ca',
        'server',
        `CN=host${seq}.example`,
        `host${seq}.example`,
        `["dns:host${seq}.example"]`,
        `host${seq}.example`,
        'ec-p256',
        now,
        now,
        der,
        serial,
        null,
        'token',
        now,
      );
      insertName.run(`dns:host${seq}.example`, serial, now);
      insertName.run(`dns:example`, serial, now);
      seq++;
      insertAudit.run(
        seq,
        now,
        'token:bench',
        'certificate.issue',
        serial,
        'success',
        '127.0.0.1',
        '{"profile":"server"}',
        prevHash,
        (prevHash = randomBytes(32).toString('hex')),
      );
    }
    setHead.run('audit.head', `${seq}:${'b'.repeat(64)}`);
    db.exec('COMMIT');
  };
  const line: string[] = [db.name.padEnd(28)];
  for (const batch of [1, 8, 32]) {
    for (let i = 0; i < 20; i++) commit(batch);
    const rounds = Math.max(1, Math.floor(N / batch / (batch === 1 ? 4 : 1)));
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < rounds; i++) commit(batch);
    const wall = Number(process.hrtime.bigint() - t0) / 1000 / (rounds * batch);
    const cpu = process.cpuUsage(cpu0);
    line.push(`${wall.toFixed(1).padStart(8)} / ${((cpu.user + cpu.system) / (rounds * batch)).toFixed(1).padStart(6)}`);
  }
  const reads = 50_000;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < reads; i++) status.get(serials[(i * 7919) % serials.length]);
  line.push(((Number(process.hrtime.bigint() - t0) / 1000 / reads).toFixed(2) + ' µs').padStart(10));
  db.close();
  console.log(line.join('  '));
}

console.log(
  `${'driver'.padEnd(28)}  ${'batch 1 wall/cpu µs'.padStart(17)}  ${'batch 8'.padStart(17)}  ${'batch 32'.padStart(17)}  ${'status read'.padStart(10)}`,
);
try {
  for (let round = 0; round < 2; round++) {
    measure(betterSqlite);
    measure(nodeSqlite);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
