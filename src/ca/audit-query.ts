import { SignetError } from '../errors.js';
import type { CaContext } from './context.js';

export interface AuditFilter { action?: string; actor?: string; target?: string; since?: Date; until?: Date; cursor?: string; limit?: number; order?: 'asc' | 'desc' }

export function presentAudit(r: { seq: number; time: Date; actor: string; action: string; target: string | null; outcome: string; sourceIp: string | null; details: string | null; prevHash: string; hash: string }) {
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
  const rows = await ctx.db.prisma.auditEvent.findMany({
    where: {
      ...(f.action ? { action: f.action } : {}), ...(f.actor ? { actor: f.actor } : {}), ...(f.target ? { target: f.target } : {}),
      ...(f.since || f.until ? { time: { ...(f.since ? { gte: f.since } : {}), ...(f.until ? { lt: f.until } : {}) } } : {}),
      ...(after !== undefined ? { seq: order === 'desc' ? { lt: after } : { gt: after } } : {}),
    },
    orderBy: { seq: order }, take: limit + 1,
  });
  const page = rows.slice(0, limit);
  return { items: page.map(presentAudit), nextCursor: rows.length > limit ? String(page[page.length - 1]!.seq) : null };
}
