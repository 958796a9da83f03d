/**
 * The audit trail: one chained event per state change or CA key use, appended inside the
 * transaction of the change it records. Each event stores its predecessor's hash and a MAC of
 * (predecessor hash || canonical content), so editing, deleting, inserting or reordering a row
 * breaks the chain at a place `signet audit verify` can name.
 *
 * The MAC is HMAC-SHA256 under a key derived from the KEK (KeyStore.deriveSecret('audit chain
 * v1')): someone who can write to the database but does not hold the master key cannot compute
 * a valid event, so cannot forge, edit-and-rehash or re-chain the trail. Trails written before
 * the chain was keyed hold plain SHA-256 events ("legacy"): they stay verifiable; the first
 * keyed append after them writes an `audit.chain.keyed` event, and every event from there on
 * is keyed. The signed checkpoints kept outside the database (audit-checkpoints.ts) pin both
 * the head and where keying began, so neither truncating the trail nor rewriting it all as
 * legacy events goes unnoticed.
 *
 * The MAC key and the store the events go to (an AuditLog) reach appendAudit(tx, input)
 * without a parameter: openSignet binds them to the Database once (bindAuditTrail), and the
 * transaction client is traced back to its Database (databaseOf). So the ~20 callers of
 * appendAudit stay as they are, and a Database opened without a key store cannot append at all
 * (it could only write events nobody can verify).
 *
 * Before appending, every writer checks the chain it extends: the newest event must carry a
 * valid MAC (or be a legacy event of a trail not keyed yet) and must be the recorded head
 * (Setting audit.head), and must not be older than the newest checkpoint this process made.
 * If not, the append is refused (503): Signet records nothing on a trail that may have been
 * tampered with, until an operator has looked (`signet audit verify`) and recorded that they
 * did (`signet audit recover`). A corrupted head is never silently overwritten.
 *
 * Concurrency: appends are serialised by the database (SQLite's single writer; a transaction
 * advisory lock on PostgreSQL, taken in Database.transaction), so seq is gap-free and the chain
 * has one head.
 */
import { systemClock, type Clock } from './clock.js';
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { SignetError } from '../errors.js';
import { AUDIT_HEAD_KEY, headValue, type AuditRecord, type ChainHead } from '../model/audit.js';
import { databaseOf, type Database, type Tx } from '../storage/database.js';
import type { OutboxRecord } from '../model/webhook.js';
import { outboxOf } from './webhook-events.js';

export type { ChainHead } from '../model/audit.js';
export type AuditRow = AuditRecord;

export const GENESIS_HASH = '0'.repeat(64);
export const HEAD_KEY = AUDIT_HEAD_KEY;
/** The KEK-derived secret's label for the chain's MAC key. */
export const AUDIT_MAC_LABEL = 'audit chain v1';
/** The event that starts the keyed part of a trail that began unkeyed. */
export const KEYED_ACTION = 'audit.chain.keyed';
/** Events by which an operator holding the master key accepts a known break (see audit-verify.ts). */
export const RECOVERY_ACTIONS: readonly string[] = ['audit.recovered', 'backup.restored'];

export interface AuditInput {
  actor: string;
  action: string;
  target?: string | null;
  outcome?: 'success' | 'failure' | 'refused';
  sourceIp?: string | null;
  details?: Record<string, unknown> | null;
  time?: Date;
}

/** Where the chain is kept (storage/audit-store.ts): its head, read and moved in the append's transaction. */
export interface AuditLog {
  /** The newest event and the recorded head (Setting audit.head). */
  head(tx?: Tx): Promise<ChainHead>;
  /** Writes chained rows and moves the recorded head to the last of them; `outbox`: the webhook events they are (webhook-events.ts), in the same transaction. */
  append(rows: AuditRow[], tx: Tx, outbox?: OutboxRecord[]): Promise<void>;
}

/** The exact bytes hashed for an event: a JSON array with a fixed field order. */
export function canonical(e: Omit<AuditRow, 'hash' | 'prevHash'>): string {
  return JSON.stringify([e.seq, e.time.toISOString(), e.actor, e.action, e.target, e.outcome, e.sourceIp, e.details]);
}

/** The unkeyed (legacy) link: SHA-256(prevHash "\n" content). Anyone can compute it. */
export function legacyHash(prevHash: string, content: string): string {
  return createHash('sha256').update(prevHash).update('\n').update(content).digest('hex');
}

/** The keyed link: HMAC-SHA256 under the chain key, domain-separated from the legacy hash. */
export function keyedHash(key: Buffer, prevHash: string, content: string): string {
  return createHmac('sha256', key).update('signet audit v2\n').update(prevHash).update('\n').update(content).digest('hex');
}

const sameHex = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

/**
 * One database's audit chain: its MAC key, and what this process knows about the chain from
 * outside the database (the checkpoints it wrote or trusted), which the database cannot undo.
 */
export class AuditTrail {
  /** The trail is known to be keyed: a keyed event was seen, or a checkpoint says so. */
  keyed = false;
  /** The newest checkpoint this process wrote or trusted; the chain may not fall behind it. */
  pinned: { seq: number; hash: string; time: Date } | null = null;
  /** Why appends are refused (set when a check outside the append found the chain altered). */
  tainted: string | null = null;
  /** Called whenever events are chained (the checkpointer pins them soon after they commit). */
  onChained: (() => void) | null = null;
  /** `now`: the time given to events that bring none (ca/clock.ts). */
  constructor(
    private readonly macKey: Buffer,
    readonly now: Clock = systemClock,
  ) {}

  mac(prevHash: string, content: string): string {
    return keyedHash(this.macKey, prevHash, content);
  }

  /** Whether `row` carries a valid MAC (constant-time comparison). */
  isKeyed(row: AuditRow): boolean {
    return sameHex(this.mac(row.prevHash, canonical(row)), row.hash);
  }

  /**
   * Where the next event goes, after checking the chain it extends; throws (503, nothing
   * written) if the newest event is not the recorded head, carries no valid MAC, or is older
   * than what this process has already checkpointed.
   */
  next(head: ChainHead): { seq: number; prevHash: string; startKeying: boolean } {
    if (this.tainted) throw refused(this.tainted);
    const { newest, recorded } = head;
    const recordedHead = parseHead(recorded);
    if (!newest) {
      if (recordedHead) throw refused(`the trail is empty, but the recorded head is event ${recordedHead.seq}: its events were deleted`);
      if (this.pinned) throw refused(`the trail is empty, but this process checkpointed event ${this.pinned.seq}: its events were deleted`);
      this.keyed = true;
      return { seq: 1, prevHash: GENESIS_HASH, startKeying: false };
    }
    if (!recordedHead) throw refused(`the recorded head (setting ${HEAD_KEY}) is missing, while the newest event is ${newest.seq}`);
    if (recordedHead.seq !== newest.seq || recordedHead.hash !== newest.hash) {
      throw refused(
        `the recorded head is event ${recordedHead.seq} (${recordedHead.hash.slice(0, 16)}…) but the newest event is ${newest.seq} (${newest.hash.slice(0, 16)}…): events were deleted or inserted, or the head was altered`,
      );
    }
    if (this.pinned && (newest.seq < this.pinned.seq || (newest.seq === this.pinned.seq && newest.hash !== this.pinned.hash))) {
      throw refused(
        `the newest event is ${newest.seq}, but this process checkpointed event ${this.pinned.seq} (${this.pinned.hash.slice(0, 16)}…): the newest events were deleted or rewritten`,
      );
    }
    let startKeying = false;
    if (this.isKeyed(newest)) this.keyed = true;
    else if (!this.keyed && legacyHash(newest.prevHash, canonical(newest)) === newest.hash) startKeying = true;
    else throw refused(`the newest event ${newest.seq} does not carry a valid MAC: it was edited, or written by someone without the master key`);
    return { seq: newest.seq + 1, prevHash: newest.hash, startKeying };
  }

  /**
   * The chained rows for inputs appended after `head`, checked first (see next()). `unchecked`
   * is for `signet audit recover` only: it links after whatever the newest event is, so that an
   * operator holding the master key can record that they saw a break and let Signet go on.
   */
  chain(head: ChainHead, inputs: AuditInput[], opts: { unchecked?: boolean } = {}): AuditRow[] {
    const start = opts.unchecked ? { seq: (head.newest?.seq ?? 0) + 1, prevHash: head.newest?.hash ?? GENESIS_HASH, startKeying: false } : this.next(head);
    let seq = start.seq - 1;
    let prevHash = start.prevHash;
    const all = start.startKeying
      ? [
          {
            actor: 'system',
            action: KEYED_ACTION,
            details: { mac: 'HMAC-SHA256', key: `HKDF(KEK, "${AUDIT_MAC_LABEL}")`, legacyEvents: start.seq - 1 },
          } as AuditInput,
          ...inputs,
        ]
      : inputs;
    const rows: AuditRow[] = [];
    for (const input of all) {
      const row = {
        seq: ++seq,
        // Stored times have millisecond precision; MAC exactly what is stored.
        time: input.time ?? this.now(),
        actor: input.actor,
        action: input.action,
        target: input.target ?? null,
        outcome: input.outcome ?? 'success',
        sourceIp: input.sourceIp ?? null,
        details: input.details ? JSON.stringify(input.details) : null,
      };
      const hash = this.mac(prevHash, canonical(row));
      rows.push({ ...row, prevHash, hash });
      prevHash = hash;
    }
    if (rows.length) this.onChained?.();
    return rows;
  }
}

function refused(why: string): SignetError {
  return new SignetError(
    'unavailable',
    `the audit trail failed its integrity check, so nothing is recorded or changed until an operator runs \`signet audit verify\` and \`signet audit recover\`: ${why}`,
  );
}

export function parseHead(value: string | null | undefined): { seq: number; hash: string } | null {
  if (value === null || value === undefined) return null;
  const [seq, hash] = value.split(':');
  return { seq: Number(seq), hash: hash ?? '' };
}

const trails = new WeakMap<Database, { trail: AuditTrail; log: AuditLog }>();

/** Makes `trail` the audit chain of `db`, kept in `log`: every later append through db is keyed with it. */
export function bindAuditTrail(db: Database, trail: AuditTrail, log: AuditLog): AuditTrail {
  trails.set(db, { trail, log });
  return trail;
}

function boundTo(db: Database): { trail: AuditTrail; log: AuditLog } {
  const t = trails.get(db);
  if (!t) throw new SignetError('internal', 'the audit chain key is not set for this database (it is bound when Signet opens its key store)');
  return t;
}

export function auditTrailOf(db: Database): AuditTrail {
  return boundTo(db).trail;
}

export async function appendAudit(tx: Tx, input: AuditInput): Promise<AuditRow> {
  return (await appendAudits(tx, [input]))[0]!;
}

/** Several events in one append (one read of the head, one write): a change that records more than one thing. */
export async function appendAudits(tx: Tx, inputs: AuditInput[]): Promise<AuditRow[]> {
  const db = databaseOf(tx);
  if (!db) throw new SignetError('internal', 'appendAudit needs a transaction from Database.transaction');
  const { trail, log } = boundTo(db);
  const rows = trail.chain(await log.head(tx), inputs);
  await log.append(rows, tx, outboxOf(rows));
  return rows;
}

/**
 * Events appended after `head`, chained, with the head record to store alongside them: what
 * the driver-level writer (issuance-writer.ts) asks for inside its transaction.
 */
export function auditBatch(
  db: Database,
  head: ChainHead,
  inputs: AuditInput[],
): { rows: AuditRow[]; headKey: string; headValue: string; outbox: OutboxRecord[] } {
  const rows = auditTrailOf(db).chain(head, inputs);
  return { rows, headKey: HEAD_KEY, headValue: headValue(rows[rows.length - 1]!), outbox: outboxOf(rows) };
}
