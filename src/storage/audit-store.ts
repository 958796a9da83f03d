/**
 * The audit trail's rows (AuditEvent) and its recorded head (Setting audit.head), through
 * Prisma. Methods that take a `tx` run in the caller's transaction (StorageDatabase.transaction),
 * so an event commits with the change it records; without one they read the last committed
 * state. The issuance hot path appends through its own driver-level writer (issuance-writer.ts).
 */
import { AUDIT_HEAD_KEY, headValue, type AuditRecord, type AuditSearch, type ChainHead } from '../model/audit.js';
import type { OutboxRecord } from '../model/webhook.js';
import { prismaOf, type StorageDatabase, type Tx, type PrismaTx } from './database.js';

export class AuditStore {
  constructor(private readonly db: StorageDatabase) {}

  private client(tx?: Tx): PrismaTx {
    return tx ? prismaOf(tx) : this.db.prisma;
  }

  /**
   * The newest event and the recorded head, read in one snapshot: read apart, a writer committing
   * between the two reads paired a new head with the event before it, a false integrity alarm.
   */
  async head(tx?: Tx): Promise<ChainHead> {
    const read = async (c: PrismaTx): Promise<ChainHead> => {
      const newest = await c.auditEvent.findFirst({ orderBy: { seq: 'desc' } });
      const recorded = (await c.setting.findUnique({ where: { key: AUDIT_HEAD_KEY } }))?.value ?? null;
      return { newest, recorded };
    };
    return tx ? read(prismaOf(tx)) : this.db.snapshot(read);
  }

  /** Writes chained events and moves the recorded head to the last of them. */
  async append(rows: AuditRecord[], tx: Tx, outbox?: OutboxRecord[]): Promise<void> {
    if (!rows.length) return;
    await prismaOf(tx).auditEvent.createMany({ data: rows });
    if (outbox?.length) await prismaOf(tx).webhookEvent.createMany({ data: outbox });
    const value = headValue(rows[rows.length - 1]!);
    await prismaOf(tx).setting.upsert({ where: { key: AUDIT_HEAD_KEY }, create: { key: AUDIT_HEAD_KEY, value }, update: { value } });
  }

  newest(): Promise<AuditRecord | null> {
    return this.db.prisma.auditEvent.findFirst({ orderBy: { seq: 'desc' } });
  }

  at(seq: number): Promise<AuditRecord | null> {
    return this.db.prisma.auditEvent.findUnique({ where: { seq } });
  }

  async hashAt(seq: number): Promise<string | null> {
    return (await this.db.prisma.auditEvent.findUnique({ where: { seq }, select: { hash: true } }))?.hash ?? null;
  }

  /** The recorded head's value (Setting audit.head), or null. */
  async recordedHead(): Promise<string | null> {
    return (await this.db.prisma.setting.findUnique({ where: { key: AUDIT_HEAD_KEY } }))?.value ?? null;
  }

  /** Whether the trail holds any event. */
  async any(): Promise<boolean> {
    return (await this.db.prisma.auditEvent.findFirst({ select: { seq: true } })) !== null;
  }

  /** Events, or those after `afterSeq`, counted. */
  count(afterSeq?: number, tx?: Tx): Promise<number> {
    return this.client(tx).auditEvent.count(afterSeq === undefined ? undefined : { where: { seq: { gt: afterSeq } } });
  }

  /** The next `take` events after `afterSeq`, in chain order. */
  page(afterSeq: number, take: number): Promise<AuditRecord[]> {
    return this.db.prisma.auditEvent.findMany({ where: { seq: { gt: afterSeq } }, orderBy: { seq: 'asc' }, take });
  }

  /** The first `take` events with `action`, oldest first. */
  withAction(action: string, take: number, tx?: Tx): Promise<AuditRecord[]> {
    return this.client(tx).auditEvent.findMany({ where: { action }, orderBy: { seq: 'asc' }, take });
  }

  /** The newest `take` events with one of `actions` later than `time`, newest first. */
  withActionsSince(actions: readonly string[], time: Date, take: number): Promise<AuditRecord[]> {
    return this.db.prisma.auditEvent.findMany({ where: { action: { in: [...actions] }, time: { gt: time } }, orderBy: { seq: 'desc' }, take });
  }

  /** seq and target of every event with `action` after `afterSeq`, in chain order. */
  targetsOf(action: string, afterSeq: number): Promise<{ seq: number; target: string | null }[]> {
    return this.db.prisma.auditEvent.findMany({ where: { action, seq: { gt: afterSeq } }, select: { seq: true, target: true }, orderBy: { seq: 'asc' } });
  }

  search(s: AuditSearch): Promise<AuditRecord[]> {
    return this.db.prisma.auditEvent.findMany({
      where: {
        ...(s.action ? { action: s.action } : {}),
        ...(s.actor ? { actor: s.actor } : {}),
        ...(s.target ? { target: s.target } : {}),
        ...(s.since || s.until ? { time: { ...(s.since ? { gte: s.since } : {}), ...(s.until ? { lt: s.until } : {}) } } : {}),
        ...(s.after !== undefined ? { seq: s.order === 'desc' ? { lt: s.after } : { gt: s.after } } : {}),
      },
      orderBy: { seq: s.order },
      take: s.take,
    });
  }
}
