/**
 * Whether a database already holds Signet's schema (at least one finished migration), read
 * without creating or changing anything: a missing SQLite file stays missing.
 */
import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { DatabaseTarget } from './database-url.js';

const FINISHED = 'SELECT 1 FROM "_prisma_migrations" WHERE "finished_at" IS NOT NULL AND "rolled_back_at" IS NULL LIMIT 1';

export async function hasSignetSchema(target: DatabaseTarget): Promise<boolean> {
  if (target.provider === 'sqlite') {
    if (!existsSync(target.location)) return false;
    // Read-write but read-only in effect: a read-only open of a WAL database fails when its -shm
    // file does not exist (it is removed at a clean close).
    const db = new Database(target.location, { fileMustExist: true });
    try {
      db.pragma('busy_timeout = 10000');
      if (!db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_prisma_migrations'`).get()) return false;
      return db.prepare(FINISHED).get() !== undefined;
    } finally {
      db.close();
    }
  }
  const client = new pg.Client({ connectionString: target.location });
  client.on('error', () => undefined); // surfaces as a failed query instead of crashing the process
  await client.connect();
  try {
    const { rows } = await client.query<{ present: boolean }>(`SELECT to_regclass('"_prisma_migrations"') IS NOT NULL AS present`);
    if (!rows[0]?.present) return false;
    return (await client.query(FINISHED)).rowCount! > 0;
  } finally {
    await client.end().catch(() => undefined);
  }
}
