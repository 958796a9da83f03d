/**
 * Streams a CA's revoked certificates for CRL generation straight from the driver, in batches,
 * ordered by serial. A million rows through Prisma cost seconds of row mapping and a large
 * heap; here each batch is small arrays that the CRL encoder turns into bytes and drops.
 * SQLite iterates one statement on a read connection (a consistent WAL snapshot); PostgreSQL
 * fetches from a server-side cursor inside a read-only transaction. Both read the partial
 * index "Certificate_crl_idx" (see the *_crl_index migrations), in serial order.
 */
import Database from 'better-sqlite3';
import pg from 'pg';
import type { DatabaseTarget } from './database-url.js';
import { pgTime, pgUtc, sqliteDate, sqliteTime } from './db-time.js';

export interface RevokedRow { serial: string; revokedAt: Date | null; reason: string | null; invalidityDate: Date | null }

const SQL = `SELECT "serial", "revokedAt", "revocationReason", "invalidityDate" FROM "Certificate"
  WHERE "caId" = $1 AND "status" IN ('revoked', 'hold') AND "notAfter" > $2 ORDER BY "serial"`;

const sqliteSql = (sql: string) => sql.replace('FROM "Certificate"', 'FROM "Certificate" INDEXED BY "Certificate_crl_idx"').replace('$1', '?').replace('$2', '?');

/** How many entries streamRevoked will yield (sizes the CRL encoder's buffer), from the same index. */
export async function countRevoked(target: DatabaseTarget, caId: string, notAfterAfter: Date): Promise<number> {
  const sql = SQL.replace('SELECT "serial", "revokedAt", "revocationReason", "invalidityDate"', 'SELECT COUNT(*) AS n').replace(' ORDER BY "serial"', '');
  if (target.provider === 'sqlite') {
    const db = new Database(target.location, { readonly: true });
    try { return Number((db.prepare(sqliteSql(sql)).get(caId, sqliteTime(notAfterAfter)) as { n: number }).n); } finally { db.close(); }
  }
  const client = new pg.Client({ connectionString: target.location });
  client.on('error', () => undefined);
  await client.connect();
  try { return Number((await client.query<{ n: string }>(sql, [caId, pgTime(notAfterAfter)])).rows[0]!.n); } finally { await client.end().catch(() => undefined); }
}


export async function* streamRevoked(target: DatabaseTarget, caId: string, notAfterAfter: Date, batchSize = 10_000): AsyncGenerator<RevokedRow[]> {
  if (target.provider === 'sqlite') {
    const db = new Database(target.location, { readonly: true });
    try {
      // Prisma's SQLite adapter stores DateTime as ISO text with an explicit +00:00 offset, which sorts as time.
      // SQLite's planner, without statistics, prefers the (caId, status) index and a sort.
      const stmt = db.prepare(sqliteSql(SQL)).raw();
      let batch: RevokedRow[] = [];
      for (const r of stmt.iterate(caId, sqliteTime(notAfterAfter)) as Iterable<unknown[]>) {
        batch.push({ serial: r[0] as string, revokedAt: sqliteDate(r[1]), reason: (r[2] as string | null) ?? null, invalidityDate: sqliteDate(r[3]) });
        if (batch.length >= batchSize) { yield batch; batch = []; }
      }
      if (batch.length) yield batch;
    } finally {
      db.close();
    }
    return;
  }
  const client = new pg.Client({ connectionString: target.location });
  client.on('error', () => undefined);
  await client.connect();
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    await client.query(`DECLARE revoked NO SCROLL CURSOR FOR ${SQL}`, [caId, pgTime(notAfterAfter)]);
    for (;;) {
      const { rows } = await client.query({ text: `FETCH ${batchSize} FROM revoked`, rowMode: 'array' });
      if (!rows.length) break;
      // TIMESTAMP(3) without time zone holds UTC: read it back as UTC, whatever the session zone.
      yield (rows as unknown[][]).map((r) => ({ serial: r[0] as string, revokedAt: pgUtc(r[1]), reason: (r[2] as string | null) ?? null, invalidityDate: pgUtc(r[3]) }));
    }
    await client.query('COMMIT');
  } finally {
    await client.end().catch(() => undefined);
  }
}
