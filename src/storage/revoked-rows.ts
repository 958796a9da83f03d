/**
 * Streams a CA's revoked certificates for CRL generation straight from the driver, in batches,
 * ordered by serial. A million rows through Prisma cost seconds of row mapping and a large
 * heap; here each batch is small arrays that the CRL encoder turns into bytes and drops.
 * SQLite iterates one statement on a read connection (a consistent WAL snapshot); PostgreSQL
 * fetches from a server-side cursor inside a read-only transaction.
 */
import Database from 'better-sqlite3';
import pg from 'pg';
import type { DatabaseTarget } from './database-url.js';
import { pgUtc } from './pg-time.js';

export interface RevokedRow { serial: string; revokedAt: Date | null; reason: string | null; invalidityDate: Date | null }

const SQL = `SELECT "serial", "revokedAt", "revocationReason", "invalidityDate" FROM "Certificate"
  WHERE "caId" = $1 AND "status" IN ('revoked', 'hold') AND "notAfter" > $2 ORDER BY "serial"`;

const date = (v: unknown): Date | null => (v === null || v === undefined ? null : v instanceof Date ? v : new Date(String(v)));

export async function* streamRevoked(target: DatabaseTarget, caId: string, notAfterAfter: Date, batchSize = 10_000): AsyncGenerator<RevokedRow[]> {
  if (target.provider === 'sqlite') {
    const db = new Database(target.location, { readonly: true });
    try {
      // Prisma's SQLite adapter stores DateTime as ISO text with an explicit +00:00 offset, which sorts as time.
      const stmt = db.prepare(SQL.replace('$1', '?').replace('$2', '?')).raw();
      let batch: RevokedRow[] = [];
      for (const r of stmt.iterate(caId, notAfterAfter.toISOString().replace('Z', '+00:00')) as Iterable<unknown[]>) {
        batch.push({ serial: r[0] as string, revokedAt: date(r[1]), reason: (r[2] as string | null) ?? null, invalidityDate: date(r[3]) });
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
    await client.query(`DECLARE revoked NO SCROLL CURSOR FOR ${SQL}`, [caId, notAfterAfter.toISOString().replace('Z', '')]);
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
