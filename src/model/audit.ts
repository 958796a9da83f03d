/**
 * The audit trail as the code sees it: one chained event per row of AuditEvent, and the
 * recorded head (the Setting row `audit.head`, "<seq>:<hash>") kept next to it so that deleting
 * the newest events is detected too. What the chain means is src/ca/audit.ts; this is the shape.
 */
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

/** What a writer reads before appending: the newest event and the recorded head's value. */
export interface ChainHead {
  newest: AuditRecord | null;
  recorded: string | null;
}

/** The Setting row that records the chain's head. */
export const AUDIT_HEAD_KEY = 'audit.head';

/** The recorded head's value for the event `e`. */
export const headValue = (e: Pick<AuditRecord, 'seq' | 'hash'>): string => `${e.seq}:${e.hash}`;

/** A page of the trail for the audit API and CLI: equality filters, a time window, a seq cursor. */
export interface AuditSearch {
  action?: string;
  actor?: string;
  target?: string;
  since?: Date;
  until?: Date;
  /** The last seq seen: the page starts after it in `order`. */
  after?: number;
  order: 'asc' | 'desc';
  take: number;
}
