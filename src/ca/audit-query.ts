import { SignetError } from '../errors.js';
import type { AuditRecord, AuditSearch } from '../model/audit.js';
import type { CaContext } from './context.js';

export interface AuditFilter {
  action?: string;
  actor?: string;
  target?: string;
  since?: Date;
  until?: Date;
  cursor?: string;
  limit?: number;
  order?: 'asc' | 'desc';
}

/** What listing the trail reads (storage/audit-store.ts). */
export interface AuditSearchStore {
  search(s: AuditSearch): Promise<AuditRecord[]>;
}

export function presentAudit(r: AuditRecord) {
  return { ...r, details: r.details ? (JSON.parse(r.details) as unknown) : null };
}

/** Newest first by default; the cursor is the last seq seen. */
export async function listAudit(ctx: CaContext, f: AuditFilter) {
  const limit = Math.min(Math.max(f.limit ?? 100, 1), 1000);
  const order = f.order ?? 'desc';
  let after: number | undefined;
  if (f.cursor !== undefined) {
    after = Number(f.cursor);
    if (!Number.isInteger(after) || after < 0) throw new SignetError('bad-request', 'cursor is not one this server returned');
  }
  const rows = await ctx.stores.audit.search({
    action: f.action,
    actor: f.actor,
    target: f.target,
    since: f.since,
    until: f.until,
    after,
    order,
    take: limit + 1,
  });
  const page = rows.slice(0, limit);
  return { items: page.map(presentAudit), nextCursor: rows.length > limit ? String(page[page.length - 1]!.seq) : null };
}
