/**
 * The inventory's reads, in bounded chunks, on the drivers.
 *
 * One call examines at most `size` rows of one index, walked newest first from a keyset
 * position on (createdAt, serial): the (createdAt, serial) index for the whole inventory, the
 * (profile, createdAt, serial) index for one profile, or the name index (CertificateName) for
 * one search key. Of those rows it returns the certificates that meet the row conditions, and
 * where the walk stopped. The caller (ca/inventory.ts) strings chunks together, yields to the
 * event loop between them and stops after a total; so no statement — and, on SQLite, whose
 * driver is synchronous, no stretch of the event loop — costs more than one chunk, whatever
 * the query and the table size.
 *
 * PostgreSQL: the connections carry a statement_timeout as a second line of defence.
 */
import Database from 'better-sqlite3';
import pg from 'pg';
import { SignetError } from '../errors.js';
import type { DatabaseTarget } from './database-url.js';
import { pgTime, pgUtc, sqliteDate, sqliteTime } from './db-time.js';
import type { CertificateSummary } from '../model/certificate.js';
import { SUMMARY_COLUMNS, SUMMARY_DATE_COLUMNS } from './certificate-row.js';

export interface Position {
  createdAt: Date;
  serial: string;
}

export type InventoryRow = CertificateSummary;

/** The index a chunk walks. */
export type Walk = { by: 'all' } | { by: 'profile'; profile: string } | { by: 'name'; key: string };

/** Conditions on the certificate row; all must hold. */
export interface RowConditions {
  status?: 'good' | 'expired' | 'revoked' | 'hold';
  /** The certificate's profile is one of these. */
  profiles?: string[];
  caId?: string;
  expiresBefore?: Date;
}

export interface Chunk {
  /** The certificates of the chunk that meet the conditions, newest first. */
  rows: InventoryRow[];
  /** Rows of the index examined: fewer than asked means the walk reached the end. */
  examined: number;
  /** The last position examined (where the next chunk starts); null when nothing was. */
  last: Position | null;
}

export interface InventoryReads {
  chunk(walk: Walk, conditions: RowConditions, now: Date, after: Position | undefined, size: number): Promise<Chunk>;
  close(): Promise<void>;
}

/** PostgreSQL: no inventory statement may run longer than this (a chunk takes milliseconds). */
export const INVENTORY_STATEMENT_TIMEOUT_MS = 5_000;

const COLUMNS = SUMMARY_COLUMNS;
const DATES = SUMMARY_DATE_COLUMNS;

interface Dialect {
  sqlite: boolean;
  time(d: Date): string;
  date(v: unknown): Date | null;
}

/**
 * One statement: the chunk of the walked index (a LIMITed subquery, so the walk itself is
 * bounded), LEFT JOINed to the certificate rows that meet the conditions. Every examined
 * position comes back (k_*), with the certificate's columns only where it qualifies.
 */
function chunkSql(d: Dialect, walk: Walk, c: RowConditions, now: Date, after: Position | undefined, size: number): { text: string; values: unknown[] } {
  const values: unknown[] = [];
  const p = (v: unknown) => {
    values.push(v);
    return d.sqlite ? '?' : `$${values.length}`;
  };
  const where: string[] = [];
  const table = walk.by === 'name' ? '"CertificateName"' : '"Certificate"';
  if (walk.by === 'name') where.push(`"key" = ${p(walk.key)}`);
  if (walk.by === 'profile') where.push(`"profile" = ${p(walk.profile)}`);
  if (after) {
    // The redundant createdAt <= bound gives the planner a range on the index to seek, so a
    // chunk deep in the table costs what the first one does.
    const t = d.time(after.createdAt);
    where.push(`"createdAt" <= ${p(t)} AND ("createdAt" < ${p(t)} OR ("createdAt" = ${p(t)} AND "serial" < ${p(after.serial)}))`);
  }
  const walked = `SELECT "serial", "createdAt" FROM ${table}${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY "createdAt" DESC, "serial" DESC LIMIT ${p(size)}`;
  const on = ['c."serial" = k."serial"'];
  if (c.status === 'good') on.push(`c."status" = 'good' AND c."notAfter" > ${p(d.time(now))}`);
  else if (c.status === 'expired') on.push(`c."status" = 'good' AND c."notAfter" <= ${p(d.time(now))}`);
  else if (c.status) on.push(`c."status" = ${p(c.status)}`);
  // One parameter for the whole list keeps the statement text (and SQLite's prepared statement) the same.
  if (c.profiles)
    on.push(d.sqlite ? `c."profile" IN (SELECT value FROM json_each(${p(JSON.stringify(c.profiles))}))` : `c."profile" = ANY(${p(c.profiles)}::text[])`);
  if (c.caId) on.push(`c."caId" = ${p(c.caId)}`);
  if (c.expiresBefore) on.push(`c."notAfter" < ${p(d.time(c.expiresBefore))}`);
  const text = `SELECT k."serial" AS "k_serial", k."createdAt" AS "k_createdAt", ${COLUMNS.map((col) => `c."${col}"`).join(', ')}
    FROM (${walked}) k LEFT JOIN "Certificate" c ON ${on.join(' AND ')}
    ORDER BY k."createdAt" DESC, k."serial" DESC`;
  return { text, values };
}

type Raw = Record<string, unknown> & { k_serial: string; k_createdAt: unknown; caId: string | null };

function toChunk(d: Dialect, raw: Raw[]): Chunk {
  const rows: InventoryRow[] = [];
  for (const r of raw) {
    if (r.caId === null) continue;
    const row = { ...r } as Record<string, unknown>;
    delete row.k_serial;
    delete row.k_createdAt;
    for (const f of DATES) row[f] = d.date(r[f]);
    rows.push(row as unknown as InventoryRow);
  }
  const end = raw[raw.length - 1];
  return { rows, examined: raw.length, last: end ? { createdAt: d.date(end.k_createdAt)!, serial: end.k_serial } : null };
}

export function openInventoryReads(target: DatabaseTarget): InventoryReads {
  if (target.provider === 'sqlite') {
    const db = new Database(target.location, { readonly: true });
    // A reader under WAL is not blocked by writers; SQLite's busy handler would sleep on the event loop.
    db.pragma('busy_timeout = 100');
    const d: Dialect = { sqlite: true, time: sqliteTime, date: sqliteDate };
    const statements = new Map<string, Database.Statement>();
    return {
      async chunk(walk, c, now, after, size) {
        const { text, values } = chunkSql(d, walk, c, now, after, size);
        let stmt = statements.get(text);
        if (!stmt) statements.set(text, (stmt = db.prepare(text)));
        return toChunk(d, stmt.all(...values) as Raw[]);
      },
      async close() {
        db.close();
      },
    };
  }
  // Lists are few next to OCSP and issuance: two connections, opened on the first list.
  const pool = new pg.Pool({ connectionString: target.location, max: 2, statement_timeout: INVENTORY_STATEMENT_TIMEOUT_MS });
  pool.on('error', () => undefined);
  const d: Dialect = { sqlite: false, time: pgTime, date: pgUtc };
  return {
    async chunk(walk, c, now, after, size) {
      const { text, values } = chunkSql(d, walk, c, now, after, size);
      try {
        return toChunk(d, (await pool.query(text, values)).rows as Raw[]);
      } catch (e) {
        if ((e as { code?: string }).code === '57014') {
          throw new SignetError(
            'unavailable',
            `the inventory query ran longer than ${INVENTORY_STATEMENT_TIMEOUT_MS / 1000} s and was cancelled; try again, or narrow the search`,
            { cause: e },
          );
        }
        throw e;
      }
    },
    async close() {
      await pool.end();
    },
  };
}
