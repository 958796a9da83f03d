/**
 * The issuance commit, written straight to the driver. Profiling showed a Prisma interactive
 * transaction costing ~25 ms for the five statements of one commit (query compilation and the
 * transaction manager), against ~2 ms of fsync; issuance is the hot path, so this one write
 * uses prepared statements on its own connection. Everything else goes through Prisma.
 *
 * One call writes a batch: the certificates with their name-index keys (CertificateName, see
 * certificate-names.ts), then the audit rows that `buildAudit` derives from the chain head read
 * inside the same transaction (under the same lock), then the head. buildAudit checks that head
 * (ca/audit.ts) and throws to roll the whole batch back.
 */
import Database from 'better-sqlite3';
import pg from 'pg';
import type { DatabaseTarget } from './database-url.js';
import { AUDIT_LOCK_ID } from './advisory-lock.js';
import { pgTime, sqliteDate, sqliteTime } from './db-time.js';
import { chunkId, crlChunks, EMPTY } from './crl-chunks.js';
import { nameKeysOfStored } from './certificate-names.js';
import { startWalCheckpointer, type WalCheckpointer } from './wal-checkpointer.js';
import { ISSUED_COLUMNS, issuedValues } from './certificate-row.js';
import type { NewCertificateRecord } from '../model/certificate.js';
import type { NewCrlRecord } from '../model/crl.js';
import type { OutboxRecord } from '../model/webhook.js';
import type { EnrollmentCredentialRecord } from '../model/enrollment.js';
import { ENROLLMENT_SELECT, ENROLLMENT_SPEND, enrollmentFromPg, enrollmentFromSqlite } from './enrollment-row.js';

export interface AuditRecord {
  seq: number;
  time: Date;
  actor: string;
  action: string;
  target: string | null;
  outcome: string;
  sourceIp: string | null;
  details: string | null;
  prevHash: string;
  hash: string;
}

/** The newest event (in full: its MAC is checked before anything is chained to it) and the recorded head. */
export interface AuditHeadRecord {
  newest: AuditRecord | null;
  recorded: string | null;
}

/** `outbox`: the webhook events of the batch (ca/webhook-events.ts), written in the same transaction. */
export type BuildAudit = (head: AuditHeadRecord) => { rows: AuditRecord[]; headKey: string; headValue: string; outbox?: OutboxRecord[] };

/**
 * What a commit re-reads of each certificate under the write lock, before storing it: its
 * issuing CA's status and, for a renewal or rekey, its predecessor's (null: no such row).
 */
export interface IssuanceState {
  caStatus: string | null;
  predecessorStatus: string | null;
}
/** Throws to refuse a certificate whose state changed since it was signed (the batch rolls back). */
export type Recheck = (cert: NewCertificateRecord, state: IssuanceState) => void;

/** A credential's new spent count, written only if the row still has `from` spent and is not revoked. */
export interface CredentialSpent {
  id: string;
  from: number;
  usesSpent: number;
  grantMac: string;
  lastUsedAt: Date;
}

/**
 * The enrollment-credential uses a batch of certificates pays with (ca/enrollment-credentials.ts),
 * spent in the same transaction as the certificates: a use is spent exactly when its
 * certificate is stored. `settle` gets the rows read under the write lock and returns their new
 * state and the serials of the certificates their credentials cannot pay for, which are left
 * out of the batch (the rest commit); it runs before the certificates are written and before
 * buildAudit.
 */
export interface CredentialSpends {
  wanted: Map<string, number>;
  settle(rows: Map<string, EnrollmentCredentialRecord | null>): { spent: CredentialSpent[]; unpaid: ReadonlySet<string> };
}

export interface IssuanceWriter {
  /** `recheck` runs for each certificate inside the transaction, under the lock revocation takes too. */
  write(certs: NewCertificateRecord[], buildAudit: BuildAudit, recheck?: Recheck, spends?: CredentialSpends): Promise<void>;
  /** Stores a CRL (tens of MB for a large CA: kept off Prisma's per-value encoding), prunes old ones, audits. */
  writeCrl(crl: NewCrlRecord, buildAudit: BuildAudit): Promise<void>;
  close(): Promise<void>;
}

const AUDIT_COLUMNS = ['seq', 'time', 'actor', 'action', 'target', 'outcome', 'sourceIp', 'details', 'prevHash', 'hash'] as const;
/** Setting that records the chain head (ca/audit.ts HEAD_KEY). */
const AUDIT_HEAD_KEY = 'audit.head';
const quoted = (cols: readonly string[]) => cols.map((c) => `"${c}"`).join(', ');

/** PostgreSQL: one INSERT of several rows, numbered placeholders in row order (pass `rows.flat()`). */
function insertMany(table: string, cols: readonly string[], rows: unknown[][]): string {
  let n = 0;
  return `INSERT INTO "${table}" (${quoted(cols)}) VALUES ${rows.map((r) => `(${r.map(() => `$${++n}`).join(', ')})`).join(', ')}`;
}

/** A full CRL has no base number; a delta CRL has one. */
const scopeKind = (delta: boolean): string => (delta ? '"baseNumber" IS NOT NULL' : '"baseNumber" IS NULL');

export function openIssuanceWriter(target: DatabaseTarget): IssuanceWriter {
  return target.provider === 'sqlite' ? sqliteWriter(target.location, target.sqliteSynchronous ?? 'full') : postgresWriter(target.location);
}

function sqliteWriter(file: string, sync: 'full' | 'normal'): IssuanceWriter {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  // No busy_timeout: SQLite's busy handler sleeps on the event loop (1, 2, 5, 10… ms) while
  // another process (a second worker) commits, freezing every request of this one. The write
  // lock is retried below without blocking instead, and requests keep queueing for the batch.
  db.pragma('busy_timeout = 0');
  db.pragma(`synchronous = ${sync === 'normal' ? 'NORMAL' : 'FULL'}`);
  // Once this process issues, checkpoints run in their own thread (wal-checkpointer.ts), not
  // inside an issuance commit. A one-off writer (signet crl) keeps SQLite's auto-checkpoint
  // rather than pay for a thread.
  let checkpointer: WalCheckpointer | undefined;
  const checkpointInThread = () => {
    if (checkpointer) return;
    checkpointer = startWalCheckpointer(file, sync === 'normal' ? 'NORMAL' : 'FULL');
    db.pragma('wal_autocheckpoint = 0');
  };
  const insertCert = db.prepare(`INSERT INTO "Certificate" (${quoted(ISSUED_COLUMNS)}) VALUES (${ISSUED_COLUMNS.map(() => '?').join(', ')})`);
  const insertName = db.prepare('INSERT INTO "CertificateName" ("key", "serial", "createdAt") VALUES (?, ?, ?)');
  const insertAudit = db.prepare(`INSERT INTO "AuditEvent" (${quoted(AUDIT_COLUMNS)}) VALUES (${AUDIT_COLUMNS.map(() => '?').join(', ')})`);
  const insertOutbox = db.prepare('INSERT INTO "WebhookEvent" ("type", "payload", "createdAt") VALUES (?, ?, ?)');
  const newest = db.prepare(`SELECT ${quoted(AUDIT_COLUMNS)} FROM "AuditEvent" ORDER BY seq DESC LIMIT 1`);
  const recorded = db.prepare(`SELECT value FROM "Setting" WHERE key = '${AUDIT_HEAD_KEY}'`).pluck();
  const setHead = db.prepare('INSERT INTO "Setting" (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value');
  const appendAudit = (buildAudit: BuildAudit) => {
    const row = newest.get() as (Omit<AuditRecord, 'time'> & { time: string }) | undefined;
    const audit = buildAudit({ newest: row ? { ...row, time: sqliteDate(row.time)! } : null, recorded: (recorded.get() as string | undefined) ?? null });
    for (const a of audit.rows) insertAudit.run(a.seq, sqliteTime(a.time), a.actor, a.action, a.target, a.outcome, a.sourceIp, a.details, a.prevHash, a.hash);
    for (const o of audit.outbox ?? []) insertOutbox.run(o.type, o.payload, sqliteTime(o.createdAt));
    setHead.run(audit.headKey, audit.headValue);
  };
  const caStatus = db.prepare('SELECT status FROM "CertificateAuthority" WHERE id = ?').pluck();
  const certStatus = db.prepare('SELECT status FROM "Certificate" WHERE serial = ?').pluck();
  const credential = db.prepare(`${ENROLLMENT_SELECT} WHERE "id" = ?`);
  const spendCredential = db.prepare(ENROLLMENT_SPEND(() => '?'));
  /** Spends the batch's uses; returns the serials left unpaid (not to be stored). */
  const spend = (spends: CredentialSpends): ReadonlySet<string> => {
    const rows = new Map<string, EnrollmentCredentialRecord | null>();
    for (const id of spends.wanted.keys()) {
      const r = credential.get(id);
      rows.set(id, r ? enrollmentFromSqlite(r) : null);
    }
    const { spent, unpaid } = spends.settle(rows);
    for (const u of spent) if (spendCredential.run(u.usesSpent, u.grantMac, sqliteTime(u.lastUsedAt), u.from, u.id).changes !== 1) throw lostSpend(u.id);
    return unpaid;
  };
  const run = db.transaction((all: NewCertificateRecord[], buildAudit: BuildAudit, recheck?: Recheck, spends?: CredentialSpends) => {
    const unpaid = spends ? spend(spends) : undefined;
    const certs = unpaid?.size ? all.filter((c) => !unpaid.has(c.serial)) : all;
    if (!certs.length) return;
    // Under the write lock (BEGIN IMMEDIATE), which a revocation's transaction needs too: what
    // was revoked before this commit is seen here, and nothing is revoked until it ends.
    if (recheck)
      for (const c of certs) {
        recheck(c, {
          caStatus: (caStatus.get(c.caId) as string | undefined) ?? null,
          predecessorStatus: c.predecessorSerial ? ((certStatus.get(c.predecessorSerial) as string | undefined) ?? null) : null,
        });
      }
    for (const c of certs) {
      insertCert.run(...issuedValues(c, sqliteTime));
      for (const key of nameKeysOfStored(c.sans)) insertName.run(key, c.serial, sqliteTime(c.createdAt));
    }
    appendAudit(buildAudit);
  });
  const insertCrl = db.prepare(
    'INSERT INTO "Crl" ("id", "caId", "number", "thisUpdate", "nextUpdate", "der", "chunks", "entries", "createdAt", "shard", "baseNumber") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const insertChunk = db.prepare('INSERT INTO "CrlChunk" ("id", "crlId", "idx", "data") VALUES (?, ?, ?, ?)');
  // Per scope (shard, full or delta): all of a CA's CRLs share one number sequence.
  const pruneCutoff = (delta: boolean) =>
    db
      .prepare(`SELECT "number" FROM "Crl" WHERE "caId" = ? AND "shard" = ? AND ${scopeKind(delta)} ORDER BY "number" DESC LIMIT 1 OFFSET ?`)
      .pluck()
      .safeIntegers();
  const cutoff = { full: pruneCutoff(false), delta: pruneCutoff(true) };
  const pruneChunks = (delta: boolean) =>
    db.prepare(`DELETE FROM "CrlChunk" WHERE "crlId" IN (SELECT "id" FROM "Crl" WHERE "caId" = ? AND "shard" = ? AND ${scopeKind(delta)} AND "number" <= ?)`);
  const pruneCrl = (delta: boolean) => db.prepare(`DELETE FROM "Crl" WHERE "caId" = ? AND "shard" = ? AND ${scopeKind(delta)} AND "number" <= ?`);
  const prune = { full: [pruneChunks(false), pruneCrl(false)], delta: [pruneChunks(true), pruneCrl(true)] };
  const runCrl = db.transaction((c: NewCrlRecord, buildAudit: BuildAudit) => {
    const chunks = crlChunks(c.der);
    insertCrl.run(
      c.id,
      c.caId,
      c.number,
      sqliteTime(c.thisUpdate),
      sqliteTime(c.nextUpdate),
      chunks ? EMPTY : c.der,
      chunks?.length ?? 0,
      c.entries,
      sqliteTime(new Date()),
      c.shard,
      c.baseNumber,
    );
    chunks?.forEach((data, idx) => {
      insertChunk.run(chunkId(c.id, idx), c.id, idx, data);
    });
    const kind = c.baseNumber === null ? 'full' : 'delta';
    const last = cutoff[kind].get(c.caId, c.shard, c.keep) as bigint | undefined;
    if (last !== undefined) for (const stmt of prune[kind]) stmt.run(c.caId, c.shard, last);
    appendAudit(buildAudit);
  });
  return {
    // IMMEDIATE takes the write lock before the first read, so the head cannot move under us.
    async write(certs, buildAudit, recheck, spends) {
      checkpointInThread();
      await whenUnlocked(() => run.immediate(certs, buildAudit, recheck, spends));
    },
    async writeCrl(crl, buildAudit) {
      await whenUnlocked(() => runCrl.immediate(crl, buildAudit));
    },
    async close() {
      await checkpointer?.stop();
      db.close();
    },
  };
}

/** Under the write lock nothing else changes the row: this is a bug or a writer that took no lock. */
function lostSpend(id: string): Error {
  return new Error(`enrollment credential ${id} changed under the write lock while its use was being spent; nothing was stored`);
}

/** As long as the old busy_timeout: a lock held longer than this is a stuck process, not load. */
const LOCK_WAIT_MS = 10_000;

/**
 * Runs a write transaction, retrying while another connection holds SQLite's write lock.
 * A busy BEGIN IMMEDIATE has changed nothing, so retrying is safe; the waits yield to the
 * event loop (setImmediate first, then 1 ms timers) instead of sleeping in SQLite.
 */
async function whenUnlocked<T>(tx: () => T): Promise<T> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (let attempt = 0; ; attempt++) {
    try {
      return tx();
    } catch (e) {
      if ((e as { code?: string }).code !== 'SQLITE_BUSY' || Date.now() > deadline) throw e;
      await new Promise<void>((r) => (attempt < 3 ? setImmediate(r) : setTimeout(r, 1)));
    }
  }
}

function postgresWriter(url: string): IssuanceWriter {
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  const appendAudit = async (client: pg.PoolClient, buildAudit: BuildAudit) => {
    // One round trip: the recorded head, and the newest event if there is one. Its time as epoch
    // milliseconds (TIMESTAMP WITHOUT TIME ZONE holds UTC): exact, whatever the session's zone
    // or DateStyle, as the MAC over it must be.
    const h = await client.query<Omit<AuditRecord, 'time'> & { time: string | null; recorded: string | null }>(
      `SELECT (SELECT value FROM "Setting" WHERE key = '${AUDIT_HEAD_KEY}') AS recorded, e.* FROM (SELECT 1) AS one
       LEFT JOIN (SELECT ${quoted(AUDIT_COLUMNS.filter((c) => c !== 'time'))}, (extract(epoch FROM "time") * 1000)::bigint::text AS "time" FROM "AuditEvent" ORDER BY seq DESC LIMIT 1) AS e ON true`,
    );
    const { recorded: rec, ...row } = h.rows[0]!;
    const audit = buildAudit({ newest: row.seq === null ? null : { ...row, time: new Date(Number(row.time)) }, recorded: rec });
    const rows = audit.rows.map((a) => [a.seq, pgTime(a.time), a.actor, a.action, a.target, a.outcome, a.sourceIp, a.details, a.prevHash, a.hash]);
    await client.query(insertMany('AuditEvent', AUDIT_COLUMNS, rows), rows.flat());
    // The batch's webhook events: one more statement per commit, however many certificates.
    const outbox = (audit.outbox ?? []).map((o) => [o.type, o.payload, pgTime(o.createdAt)]);
    if (outbox.length) await client.query(insertMany('WebhookEvent', ['type', 'payload', 'createdAt'], outbox), outbox.flat());
    await client.query('INSERT INTO "Setting" (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value', [
      audit.headKey,
      audit.headValue,
    ]);
  };
  const inTransaction = async (fn: (client: pg.PoolClient) => Promise<void>) => {
    const client = await pool.connect();
    client.on('error', swallow);
    try {
      await client.query('BEGIN');
      await client.query(`SELECT pg_advisory_xact_lock(${AUDIT_LOCK_ID})`);
      await fn(client);
      await client.query('COMMIT');
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw e;
    } finally {
      client.off('error', swallow);
      client.release();
    }
  };
  // A dropped connection must fail the request in flight (503), not crash the process.
  pool.on('error', () => undefined);
  const swallow = () => undefined;
  return {
    async write(all, buildAudit, recheck, spends) {
      await inTransaction(async (client) => {
        let certs = all;
        if (spends) {
          // FOR UPDATE as well as the advisory lock: a writer that skipped the lock still waits.
          const { rows } = await client.query(`${ENROLLMENT_SELECT} WHERE "id" = ANY($1) FOR UPDATE`, [[...spends.wanted.keys()]]);
          const found = new Map(rows.map((r) => [(r as { id: string }).id, enrollmentFromPg(r)]));
          const { spent, unpaid } = spends.settle(new Map([...spends.wanted.keys()].map((id) => [id, found.get(id) ?? null])));
          for (const u of spent) {
            const r = await client.query(
              ENROLLMENT_SPEND((n) => `$${n}`),
              [u.usesSpent, u.grantMac, pgTime(u.lastUsedAt), u.from, u.id],
            );
            if (r.rowCount !== 1) throw lostSpend(u.id);
          }
          if (unpaid.size) certs = all.filter((c) => !unpaid.has(c.serial));
          if (!certs.length) return;
        }
        // After the advisory lock every revocation takes too (Database.transaction): a
        // revocation committed before this commit is seen here, and none commits during it.
        if (recheck) {
          const cas = new Map(
            (
              await client.query<{ id: string; status: string }>('SELECT id, status FROM "CertificateAuthority" WHERE id = ANY($1)', [
                [...new Set(certs.map((c) => c.caId))],
              ])
            ).rows.map((r) => [r.id, r.status]),
          );
          const preds = certs.flatMap((c) => (c.predecessorSerial ? [c.predecessorSerial] : []));
          const prev = new Map(
            preds.length
              ? (await client.query<{ serial: string; status: string }>('SELECT serial, status FROM "Certificate" WHERE serial = ANY($1)', [preds])).rows.map(
                  (r) => [r.serial, r.status],
                )
              : [],
          );
          for (const c of certs)
            recheck(c, { caStatus: cas.get(c.caId) ?? null, predecessorStatus: c.predecessorSerial ? (prev.get(c.predecessorSerial) ?? null) : null });
        }
        const rows = certs.map((c) => issuedValues(c, pgTime));
        await client.query(insertMany('Certificate', ISSUED_COLUMNS, rows), rows.flat());
        const names = certs.flatMap((c) => nameKeysOfStored(c.sans).map((key) => [key, c.serial, pgTime(c.createdAt)]));
        // A statement takes at most 65,535 parameters; a batch of certificates with many names can have more.
        for (let i = 0; i < names.length; i += 20_000) {
          const part = names.slice(i, i + 20_000);
          await client.query(insertMany('CertificateName', ['key', 'serial', 'createdAt'], part), part.flat());
        }
        await appendAudit(client, buildAudit);
      });
    },
    async writeCrl(c, buildAudit) {
      await inTransaction(async (client) => {
        const chunks = crlChunks(c.der);
        await client.query(
          'INSERT INTO "Crl" ("id", "caId", "number", "thisUpdate", "nextUpdate", "der", "chunks", "entries", "createdAt", "shard", "baseNumber") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)',
          [
            c.id,
            c.caId,
            c.number.toString(),
            pgTime(c.thisUpdate),
            pgTime(c.nextUpdate),
            chunks ? EMPTY : c.der,
            chunks?.length ?? 0,
            c.entries,
            pgTime(new Date()),
            c.shard,
            c.baseNumber?.toString() ?? null,
          ],
        );
        for (const [idx, data] of (chunks ?? []).entries()) {
          await client.query('INSERT INTO "CrlChunk" ("id", "crlId", "idx", "data") VALUES ($1, $2, $3, $4)', [chunkId(c.id, idx), c.id, idx, data]);
        }
        // Per scope (shard, full or delta): all of a CA's CRLs share one number sequence.
        const kind = scopeKind(c.baseNumber !== null);
        // Aliased apart from "number": ORDER BY an output column named number would sort the text.
        const cut = await client.query<{ n: string }>(
          `SELECT "number"::text AS n FROM "Crl" WHERE "caId" = $1 AND "shard" = $2 AND ${kind} ORDER BY "number" DESC LIMIT 1 OFFSET $3`,
          [c.caId, c.shard, c.keep],
        );
        const last = cut.rows[0]?.n;
        if (last !== undefined) {
          const args = [c.caId, c.shard, last];
          await client.query(
            `DELETE FROM "CrlChunk" WHERE "crlId" IN (SELECT "id" FROM "Crl" WHERE "caId" = $1 AND "shard" = $2 AND ${kind} AND "number" <= $3)`,
            args,
          );
          await client.query(`DELETE FROM "Crl" WHERE "caId" = $1 AND "shard" = $2 AND ${kind} AND "number" <= $3`, args);
        }
        await appendAudit(client, buildAudit);
      });
    },
    async close() {
      await pool.end();
    },
  };
}
