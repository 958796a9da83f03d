/**
 * Applies the committed Prisma migrations, offline, exactly once, even when several processes
 * start together. Prisma's own `migrate deploy` needs a native engine on PostgreSQL (see
 * shared/design/offline-prisma.md), so Signet applies the same migration.sql files itself and
 * records them in `_prisma_migrations` in Prisma's format, so `prisma migrate status` agrees.
 *
 * Exclusion: SQLite takes the write lock (BEGIN IMMEDIATE) for the whole run; PostgreSQL holds a
 * session advisory lock. Each migration and its record commit together, so a crash leaves
 * either both or neither.
 */
import { createHash, randomUUID } from 'node:crypto';
import { closeSync, constants, openSync, readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { SignetError } from '../errors.js';
import type { DatabaseTarget } from './database-url.js';
import { MIGRATIONS_DIR } from './paths.js';
import { isDatabaseUnavailable } from './unavailable.js';

export interface Migration {
  name: string;
  sql: string;
  checksum: string;
}
export interface MigrationResult {
  applied: string[];
  alreadyApplied: string[];
}

const MIGRATION_LOCK_ID = 0x5349474e; // "SIGN"

export function loadMigrations(provider: DatabaseTarget['provider'], dir = MIGRATIONS_DIR(provider)): Migration[] {
  if (!existsSync(dir)) throw new SignetError('internal', `migrations folder ${dir} is missing from this installation`);
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort()
    .map((name) => {
      const sql = readFileSync(join(dir, name, 'migration.sql'), 'utf8');
      return { name, sql, checksum: createHash('sha256').update(sql).digest('hex') };
    });
}

interface AppliedRow {
  migration_name: string;
  checksum: string;
  finished_at: unknown;
  rolled_back_at: unknown;
}

/** Decides what to apply; refuses a database that is ahead of, or diverged from, this code. */
export function plan(known: Migration[], applied: AppliedRow[]): Migration[] {
  const byName = new Map(known.map((m) => [m.name, m]));
  for (const row of applied) {
    if (row.rolled_back_at) continue;
    const m = byName.get(row.migration_name);
    if (!m) {
      throw new SignetError(
        'configuration',
        `the database has migration ${row.migration_name}, which this version of Signet does not know: the database is ahead of the code; run a newer Signet or restore a matching backup`,
      );
    }
    if (!row.finished_at) {
      throw new SignetError(
        'configuration',
        `migration ${row.migration_name} started but never finished; restore the database from a backup or repair it before starting Signet`,
      );
    }
    if (m.checksum !== row.checksum) {
      throw new SignetError(
        'configuration',
        `migration ${row.migration_name} in the database differs from the one shipped with this Signet (checksum mismatch); the installation is inconsistent`,
      );
    }
  }
  const done = new Set(applied.filter((r) => !r.rolled_back_at).map((r) => r.migration_name));
  return known.filter((m) => !done.has(m.name));
}

const SQLITE_TABLE = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
  "id" TEXT PRIMARY KEY NOT NULL, "checksum" TEXT NOT NULL, "finished_at" DATETIME,
  "migration_name" TEXT NOT NULL, "logs" TEXT, "rolled_back_at" DATETIME,
  "started_at" DATETIME NOT NULL DEFAULT current_timestamp, "applied_steps_count" INTEGER UNSIGNED NOT NULL DEFAULT 0)`;

const PG_TABLE = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
  "id" VARCHAR(36) PRIMARY KEY NOT NULL, "checksum" VARCHAR(64) NOT NULL, "finished_at" TIMESTAMPTZ,
  "migration_name" VARCHAR(255) NOT NULL, "logs" TEXT, "rolled_back_at" TIMESTAMPTZ,
  "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(), "applied_steps_count" INTEGER NOT NULL DEFAULT 0)`;

export async function migrate(target: DatabaseTarget, migrations = loadMigrations(target.provider)): Promise<MigrationResult> {
  return target.provider === 'sqlite' ? migrateSqlite(target.location, migrations) : migratePostgres(target.location, migrations);
}

/**
 * Switching a new file to WAL needs its exclusive lock, and when two processes ask at the same
 * moment SQLite answers one of them SQLITE_BUSY at once instead of consulting the busy handler
 * (deadlock avoidance: both hold the shared lock). Retried for as long as the busy timeout.
 */
export async function enableWal(db: Database.Database, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 5; ; delay = Math.min(delay * 2, 200)) {
    try {
      db.pragma('journal_mode = WAL');
      return;
    } catch (e) {
      if ((e as { code?: string }).code !== 'SQLITE_BUSY' || Date.now() + delay > deadline) throw e;
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/**
 * Creates a new database file private to this user (0600; SQLite's own default is 0644) before
 * SQLite opens it. SQLite gives the -wal and -shm files it creates the main file's mode. An
 * existing file is left as it is (start-up warns when it is readable by others).
 */
export function createPrivateDatabaseFile(file: string): void {
  try {
    closeSync(openSync(file, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o600));
  } catch (e) {
    // EEXIST: already there. ENOENT (no such directory): SQLite's own open reports it.
    if (!['EEXIST', 'ENOENT'].includes((e as NodeJS.ErrnoException).code ?? '')) throw e;
  }
}

async function migrateSqlite(file: string, migrations: Migration[]): Promise<MigrationResult> {
  createPrivateDatabaseFile(file);
  const db = new Database(file);
  try {
    await enableWal(db);
    db.pragma('busy_timeout = 10000');
    db.exec('BEGIN IMMEDIATE');
    try {
      db.exec(SQLITE_TABLE);
      const applied = db.prepare('SELECT migration_name, checksum, finished_at, rolled_back_at FROM _prisma_migrations').all() as AppliedRow[];
      const todo = plan(migrations, applied);
      const insert = db.prepare(
        'INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, started_at, applied_steps_count) VALUES (?, ?, ?, ?, ?, 1)',
      );
      for (const m of todo) {
        const started = new Date().toISOString();
        db.exec(m.sql);
        insert.run(randomUUID(), m.checksum, new Date().toISOString(), m.name, started);
      }
      db.exec('COMMIT');
      return { applied: todo.map((m) => m.name), alreadyApplied: applied.map((r) => r.migration_name) };
    } catch (e) {
      if (db.inTransaction) db.exec('ROLLBACK');
      throw e;
    }
  } finally {
    db.close();
  }
}

async function migratePostgres(url: string, migrations: Migration[]): Promise<MigrationResult> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined); // surfaces as a failed query instead of crashing the process
  await client.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_ID]);
    try {
      await client.query(PG_TABLE);
      const { rows } = await client.query<AppliedRow>('SELECT migration_name, checksum, finished_at, rolled_back_at FROM _prisma_migrations');
      const todo = plan(migrations, rows);
      for (const m of todo) {
        const started = new Date();
        await client.query('BEGIN');
        try {
          await client.query(m.sql);
          await client.query(
            'INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, started_at, applied_steps_count) VALUES ($1, $2, now(), $3, $4, 1)',
            [randomUUID(), m.checksum, m.name, started],
          );
          await client.query('COMMIT');
        } catch (e) {
          await client.query('ROLLBACK').catch(() => undefined);
          if (isDatabaseUnavailable(e)) throw e; // lost connection: the caller retries
          throw new SignetError('internal', `migration ${m.name} failed and was rolled back: ${(e as Error).message}`, { cause: e });
        }
      }
      return { applied: todo.map((m) => m.name), alreadyApplied: rows.map((r) => r.migration_name) };
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_ID]).catch(() => undefined);
    }
  } finally {
    await client.end();
  }
}
