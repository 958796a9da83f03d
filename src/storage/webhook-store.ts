/** Webhooks, their outbox (WebhookEvent) and deliveries through Prisma (ca/webhooks.ts WebhookStore). */
import type { WebhookStore } from '../ca/webhooks.js';
import type { OutboxEvent, WebhookDeliveryRecord, WebhookRecord } from '../model/webhook.js';
import { prismaOf, type PrismaTx, type StorageDatabase, type Tx } from './database.js';

export class PrismaWebhookStore implements WebhookStore {
  constructor(private readonly db: StorageDatabase) {}

  private client(tx?: Tx): PrismaTx {
    return tx ? prismaOf(tx) : this.db.prisma;
  }

  async create(w: Omit<WebhookRecord, 'attempts' | 'nextAttemptAt' | 'lastError' | 'leaseOwner' | 'leaseUntil'>, tx: Tx): Promise<void> {
    await prismaOf(tx).webhook.create({ data: { ...w, sealed: Buffer.from(w.sealed) } });
  }

  get(id: string, tx?: Tx): Promise<WebhookRecord | null> {
    return this.client(tx).webhook.findUnique({ where: { id } });
  }

  byUrlAndEvents(url: string, events: string, tx: Tx): Promise<WebhookRecord | null> {
    return prismaOf(tx).webhook.findUnique({ where: { url_events: { url, events } } });
  }

  list(): Promise<WebhookRecord[]> {
    return this.db.prisma.webhook.findMany({ orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] });
  }

  async remove(id: string, tx: Tx): Promise<boolean> {
    await prismaOf(tx).webhookDelivery.deleteMany({ where: { webhookId: id } });
    return (await prismaOf(tx).webhook.deleteMany({ where: { id } })).count === 1;
  }

  async newestEventId(tx: Tx): Promise<number> {
    return (await prismaOf(tx).webhookEvent.aggregate({ _max: { id: true } }))._max.id ?? 0;
  }

  async claim(id: string, owner: string, now: Date, until: Date): Promise<boolean> {
    const r = await this.db.prisma.webhook.updateMany({
      where: { id, OR: [{ leaseUntil: null }, { leaseUntil: { lt: now } }, { leaseOwner: owner }] },
      data: { leaseOwner: owner, leaseUntil: until },
    });
    return r.count === 1;
  }

  async update(
    id: string,
    owner: string,
    data: Partial<Pick<WebhookRecord, 'cursor' | 'attempts' | 'nextAttemptAt' | 'lastError' | 'leaseOwner' | 'leaseUntil'>>,
  ): Promise<boolean> {
    return (await this.db.prisma.webhook.updateMany({ where: { id, leaseOwner: owner }, data })).count === 1;
  }

  eventsAfter(cursor: number, take: number): Promise<OutboxEvent[]> {
    return this.db.prisma.webhookEvent.findMany({ where: { id: { gt: cursor } }, orderBy: { id: 'asc' }, take });
  }

  async addDelivery(d: WebhookDeliveryRecord): Promise<void> {
    await this.db.prisma.webhookDelivery.create({ data: d });
  }

  async updateDelivery(id: string, data: Pick<WebhookDeliveryRecord, 'status' | 'attempts' | 'lastError' | 'updatedAt'>): Promise<void> {
    await this.db.prisma.webhookDelivery.updateMany({ where: { id }, data });
  }

  deliveries(webhookId: string, take: number, status?: string): Promise<WebhookDeliveryRecord[]> {
    return this.db.prisma.webhookDelivery.findMany({
      where: { webhookId, ...(status ? { status } : {}) },
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      take,
    });
  }

  async deadLetterCounts(): Promise<Map<string, number>> {
    const rows = await this.db.prisma.webhookDelivery.groupBy({ by: ['webhookId'], where: { status: 'dead' }, _count: { _all: true } });
    return new Map(rows.map((r) => [r.webhookId, r._count._all]));
  }

  async requestRetry(webhookId: string, deliveryId: string, now: Date, tx: Tx): Promise<WebhookDeliveryRecord | null> {
    const d = await prismaOf(tx).webhookDelivery.findFirst({ where: { id: deliveryId, webhookId } });
    if (d?.status !== 'dead') return d;
    await prismaOf(tx).webhookDelivery.update({ where: { id: deliveryId }, data: { status: 'retrying', updatedAt: now } });
    return { ...d, status: 'retrying', updatedAt: now };
  }

  backlog(cursor: number): Promise<number> {
    return this.db.prisma.webhookEvent.count({ where: { id: { gt: cursor } } });
  }

  async prune(deliveredBefore: Date): Promise<number> {
    // Read the cursors and the newest event first: a webhook registered after this read starts
    // at an event at least this new, so it never needs a row deleted here.
    const newest = (await this.db.prisma.webhookEvent.aggregate({ _max: { id: true } }))._max.id ?? 0;
    const lowest = (await this.db.prisma.webhook.aggregate({ _min: { cursor: true } }))._min.cursor;
    const upTo = Math.min(newest, lowest ?? newest);
    const gone = await this.db.prisma.webhookEvent.deleteMany({ where: { id: { lte: upTo } } });
    await this.db.prisma.webhookDelivery.deleteMany({ where: { status: 'delivered', updatedAt: { lt: deliveredBefore } } });
    return gone.count;
  }
}
