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
import type { Tx } from '../storage/database.js';

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
  const row = {
    seq: (head?.seq ?? 0) + 1,
    time: input.time ?? new Date(),
    actor: input.actor,
    action: input.action,
    target: input.target ?? null,
    outcome: input.outcome ?? 'success',
    sourceIp: input.sourceIp ?? null,
    details: input.details ? JSON.stringify(input.details) : null,
  };
  const prevHash = head?.hash ?? GENESIS_HASH;
  const hash = chainHash(prevHash, canonical(row));
  await tx.auditEvent.create({ data: { ...row, prevHash, hash } });
  return { ...row, prevHash, hash };
}

export interface ChainProblem { seq: number; problem: string }

/** Walks rows in seq order and reports the first break; rows may be streamed in pages. */
export class ChainVerifier {
  private expectedSeq = 1;
  private prevHash = GENESIS_HASH;
  count = 0;

  check(row: AuditRow): ChainProblem | null {
    this.count++;
    if (row.seq !== this.expectedSeq) {
      return { seq: row.seq, problem: row.seq > this.expectedSeq ? `event ${this.expectedSeq} is missing (deleted?); next is ${row.seq}` : `event ${row.seq} is out of order` };
    }
    if (row.prevHash !== this.prevHash) return { seq: row.seq, problem: `event ${row.seq} does not link to event ${row.seq - 1} (inserted, deleted or reordered)` };
    if (chainHash(row.prevHash, canonical(row)) !== row.hash) return { seq: row.seq, problem: `event ${row.seq} was edited: its content does not match its hash` };
    this.prevHash = row.hash;
    this.expectedSeq++;
    return null;
  }
}
