import Database from 'better-sqlite3';
import pg from 'pg';
import { join } from 'node:path';
import type { TestEnv } from './env.js';

/** Runs raw SQL against a test environment's database (SQLite file or PostgreSQL), for tampering and checks. */
export async function sql<T = any>(env: TestEnv, query: string, params: unknown[] = []): Promise<T[]> {
  if (env.databaseUrl) {
    const c = new pg.Client({ connectionString: env.databaseUrl });
    await c.connect();
    try {
      let i = 0;
      return (
        await c.query(
          query.replace(/\?/g, () => `$${++i}`),
          params,
        )
      ).rows as T[];
    } finally {
      await c.end();
    }
  }
  const db = new Database(join(env.dataDir, 'signet.db'));
  try {
    const stmt = db.prepare(query);
    if (stmt.reader) return stmt.all(...params) as T[];
    stmt.run(...params);
    return [];
  } finally {
    db.close();
  }
}

/** Rows of a table, optionally filtered (`where` is SQL with ? parameters). */
export async function countRows(env: TestEnv, table: string, where = '', params: unknown[] = []): Promise<number> {
  const [row] = await sql<{ n: number | string }>(env, `SELECT COUNT(*) AS n FROM "${table}" ${where}`, params);
  return Number(row!.n);
}
