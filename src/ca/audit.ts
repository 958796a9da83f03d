/**
 * The audit trail: one hash-chained event per state change or CA key use, appended inside the
 * transaction of the change it records. Each event stores its predecessor's hash and the hash
 * of (predecessor hash || canonical content), so editing, deleting, inserting or reordering a
 * row breaks the chain at a place `signet audit verify` can name.
 *
 * Concurrency: appends are serialised by the database (SQLite's single writer; a transaction
 * advisory lock on PostgreSQL, taken in Database.transaction), so seq is gap-free and the chain
 * has one head.
 */
import { createHash } from 'node:crypto';
import type { Db, Tx } from '../storage/database.js';

export const GENESIS_HASH = '0'.repeat(64);

export interface AuditInput {
  actor: string;
  action: string;
  target?: string | null;
  outcome?: 'success' | 'failure' | 'refused';
  sourceIp?: string | null;
  details?: Record<string, unknown> | null;
  time?: Date;
}

export interface AuditRow {
  seq: number; time: Date; actor: string; action: string; target: string | null; outcome: string;
  sourceIp: string | null; details: string | null; prevHash: string; hash: string;
}

/** The exact bytes hashed for an event: a JSON array with a fixed field order. */
export function canonical(e: Omit<AuditRow, 'hash' | 'prevHash'>): string {
  return JSON.stringify([e.seq, e.time.toISOString(), e.actor, e.action, e.target, e.outcome, e.sourceIp, e.details]);
}

export function chainHash(prevHash: string, content: string): string {
  return createHash('sha256').update(prevHash).update('\n').update(content).digest('hex');
}

export async function appendAudit(tx: Tx, input: AuditInput): Promise<AuditRow> {
  const head = await tx.auditEvent.findFirst({ orderBy: { seq: 'desc' }, select: { seq: true, hash: true } });
  const { rows: [row], headKey, headValue } = auditBatch(head, [input]);
  await tx.auditEvent.create({ data: row! });
  // The head is kept outside the table too, so deleting the newest events is also detected.
  await tx.setting.upsert({ where: { key: headKey }, create: { key: headKey, value: headValue }, update: { value: headValue } });
  return row!;
}

/**
 * Events appended after `head`, chained, with the head record to store alongside them: what
 * the driver-level writer (issuance-writer.ts) asks for inside its transaction.
 */
export function auditBatch(head: { seq: number; hash: string } | null, inputs: AuditInput[]): { rows: AuditRow[]; headKey: string; headValue: string } {
  const rows = chainRows(head, inputs);
  const last = rows[rows.length - 1]!;
  return { rows, headKey: HEAD_KEY, headValue: `${last.seq}:${last.hash}` };
}

/** The chained rows for inputs appended after `head` (pure; also used by the driver-level writer). */
export function chainRows(head: { seq: number; hash: string } | null, inputs: AuditInput[]): AuditRow[] {
  let seq = head?.seq ?? 0;
  let prevHash = head?.hash ?? GENESIS_HASH;
  const rows: AuditRow[] = [];
  for (const input of inputs) {
    const row = {
      seq: ++seq,
      time: input.time ?? new Date(),
      actor: input.actor,
      action: input.action,
      target: input.target ?? null,
      outcome: input.outcome ?? 'success',
      sourceIp: input.sourceIp ?? null,
      details: input.details ? JSON.stringify(input.details) : null,
    };
    // Stored times have millisecond precision; hash exactly what is stored.
    const hash = chainHash(prevHash, canonical(row));
    rows.push({ ...row, prevHash, hash });
    prevHash = hash;
  }
  return rows;
}

export const HEAD_KEY = 'audit.head';

export interface ChainProblem { seq: number; problem: string }

export interface VerifyResult { ok: boolean; events: number; head: { seq: number; hash: string } | null; problem?: ChainProblem }

const PAGE = 5000;

function parseHead(value: string | undefined): { seq: number; hash: string } | null {
  if (value === undefined) return null;
  const [seq, hash] = value.split(':');
  return { seq: Number(seq), hash: hash ?? '' };
}

/**
 * Walks the whole chain in pages (bounded memory) and checks it against the recorded head.
 * An append commits its event and the head together, so a recorded head beyond the walked
 * chain means either events appended while we walked (a live server: walk on to them) or
 * deleted newest events; a chain beyond the recorded head means events inserted after it.
 */
export async function verifyChain(db: Db, onProgress?: (done: number, total: number) => void): Promise<VerifyResult> {
  const total = await db.auditEvent.count();
  const v = new ChainVerifier();
  let last: AuditRow | undefined;
  for (;;) {
    const rows = await db.auditEvent.findMany({ where: { seq: { gt: last?.seq ?? 0 } }, orderBy: { seq: 'asc' }, take: PAGE });
    for (const row of rows) {
      const problem = v.check(row);
      if (problem) return { ok: false, events: v.count, head: null, problem };
      last = row;
    }
    onProgress?.(v.count, Math.max(total, v.count));
    if (rows.length === PAGE) continue;
    const recorded = parseHead((await db.setting.findUnique({ where: { key: HEAD_KEY } }))?.value);
    const head = last ? { seq: last.seq, hash: last.hash } : null;
    const end = head?.seq ?? 0;
    if (recorded && recorded.seq > end) {
      if (await db.auditEvent.count({ where: { seq: { gt: end } } })) continue; // appended meanwhile
      return { ok: false, events: v.count, head, problem: { seq: end + 1, problem: `the chain ends at event ${end}, but the recorded head is event ${recorded.seq}: event${recorded.seq > end + 1 ? `s ${end + 1}..${recorded.seq} were` : ` ${end + 1} was`} deleted (or the head was altered)` } };
    }
    if (!recorded) {
      if (!head) return { ok: true, events: 0, head: null };
      return { ok: false, events: v.count, head, problem: { seq: head.seq, problem: `the recorded head (setting ${HEAD_KEY}) is missing: it was deleted` } };
    }
    if (recorded.seq < end) {
      return { ok: false, events: v.count, head, problem: { seq: recorded.seq + 1, problem: `event ${recorded.seq + 1} comes after the recorded head (event ${recorded.seq}): events ${recorded.seq + 1}..${end} were inserted` } };
    }
    if (recorded.hash !== head!.hash) {
      return { ok: false, events: v.count, head, problem: { seq: end, problem: `event ${end} is not the recorded head (hash ${recorded.hash}): the chain was rewritten and rehashed, or the head was altered` } };
    }
    return { ok: true, events: v.count, head };
  }
}

/** Walks rows in seq order and reports the first break; rows may be streamed in pages. */
export class ChainVerifier {
  private expectedSeq = 1;
  private prevHash = GENESIS_HASH;
  count = 0;

  check(row: AuditRow): ChainProblem | null {
    this.count++;
    if (row.seq !== this.expectedSeq) {
      // A gap names the first missing event: that is the one deleted.
      return row.seq > this.expectedSeq
        ? { seq: this.expectedSeq, problem: `event ${this.expectedSeq} is missing (deleted?); next is ${row.seq}` }
        : { seq: row.seq, problem: `event ${row.seq} is out of order` };
    }
    if (row.prevHash !== this.prevHash) return { seq: row.seq, problem: `event ${row.seq} does not link to event ${row.seq - 1} (inserted, deleted or reordered)` };
    if (chainHash(row.prevHash, canonical(row)) !== row.hash) return { seq: row.seq, problem: `event ${row.seq} was edited: its content does not match its hash` };
    this.prevHash = row.hash;
    this.expectedSeq++;
    return null;
  }
}
