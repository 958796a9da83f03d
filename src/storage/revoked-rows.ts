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
import type { RevokedEntry } from '../model/certificate.js';

export type RevokedRow = RevokedEntry;

/** One shard's rows ($3, last: SQLite binds ? in textual order); shard 0, the unsharded CRL, is "crlShard" IS NULL. */
const SHARDED_SQL = `SELECT "serial", "revokedAt", "revocationReason", "invalidityDate" FROM "Certificate"
  WHERE "caId" = $1 AND "status" IN ('revoked', 'hold') AND "notAfter" > $2 AND "crlShard" = $3 ORDER BY "serial"`;
const UNSHARDED_SQL = SHARDED_SQL.replace('"crlShard" = $3', '"crlShard" IS NULL');

const sqliteSql = (sql: string) =>
  sql.replace('FROM "Certificate"', 'FROM "Certificate" INDEXED BY "Certificate_crl_idx"').replace('$1', '?').replace('$2', '?').replace('$3', '?');

/**
 * A CA's revoked and held certificates, read on one connection inside one read transaction:
 * `count` (which sizes the CRL encoder's buffer) and the rows `batches` yields come from the
 * same snapshot. `close` ends the transaction and the connection; call it in a finally.
 */
export interface RevokedReader {
  count: number;
  batches(batchSize: number): AsyncGenerator<RevokedRow[]>;
  close(): Promise<void>;
}

const countSql = (sql: string) =>
  sql.replace('SELECT "serial", "revokedAt", "revocationReason", "invalidityDate"', 'SELECT COUNT(*) AS n').replace(' ORDER BY "serial"', '');

/** The CRL of shard `shard` (0: the unsharded CRL, certificates without a shard). */
export async function openRevoked(target: DatabaseTarget, caId: string, shard: number, notAfterAfter: Date): Promise<RevokedReader> {
  const SQL = shard > 0 ? SHARDED_SQL : UNSHARDED_SQL;
  const COUNT_SQL = countSql(SQL);
  const extra = shard > 0 ? [shard] : [];
  if (target.provider === 'sqlite') {
    const db = new Database(target.location, { readonly: true });
    try {
      db.exec('BEGIN'); // a read transaction: one WAL snapshot for the count and the rows
      // Prisma's SQLite adapter stores DateTime as ISO text with an explicit +00:00 offset, which sorts as time.
      const after = sqliteTime(notAfterAfter);
      const count = Number((db.prepare(sqliteSql(COUNT_SQL)).get(caId, after, ...extra) as { n: number }).n);
      // SQLite's planner, without statistics, prefers the (caId, status) index and a sort.
      const stmt = db.prepare(sqliteSql(SQL)).raw();
      return {
        count,
        async *batches(batchSize) {
          let batch: RevokedRow[] = [];
          for (const r of stmt.iterate(caId, after, ...extra) as Iterable<unknown[]>) {
            batch.push({ serial: r[0] as string, revokedAt: sqliteDate(r[1]), reason: (r[2] as string | null) ?? null, invalidityDate: sqliteDate(r[3]) });
            if (batch.length >= batchSize) {
              yield batch;
              batch = [];
            }
          }
          if (batch.length) yield batch;
        },
        async close() {
          db.close();
        },
      };
    } catch (e) {
      db.close();
      throw e;
    }
  }
  const client = new pg.Client({ connectionString: target.location });
  client.on('error', () => undefined);
  await client.connect();
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const after = pgTime(notAfterAfter);
    const count = Number((await client.query<{ n: string }>(COUNT_SQL, [caId, after, ...extra])).rows[0]!.n);
    await client.query(`DECLARE revoked NO SCROLL CURSOR FOR ${SQL}`, [caId, after, ...extra]);
    return {
      count,
      async *batches(batchSize) {
        for (;;) {
          const { rows } = await client.query({ text: `FETCH ${batchSize} FROM revoked`, rowMode: 'array' });
          if (!rows.length) break;
          // TIMESTAMP(3) without time zone holds UTC: read it back as UTC, whatever the session zone.
          yield (rows as unknown[][]).map((r) => ({
            serial: r[0] as string,
            revokedAt: pgUtc(r[1]),
            reason: (r[2] as string | null) ?? null,
            invalidityDate: pgUtc(r[3]),
          }));
        }
      },
      async close() {
        await client.query('COMMIT').catch(() => undefined);
        await client.end().catch(() => undefined);
      },
    };
  } catch (e) {
    await client.end().catch(() => undefined);
    throw e;
  }
}
