/**
 * API token rows (ApiToken) through Prisma. Authentication's lookup by secret hash is a hot
 * path and reads through the driver (hot-reads.ts); everything else is here.
 */
import type { ApiTokenRecord, NewApiTokenRecord } from '../model/token.js';
import { prismaOf, type StorageDatabase, type Tx, type PrismaTx } from './database.js';

export class TokenStore {
  constructor(private readonly db: StorageDatabase) {}

  byHash(secretHash: string) {
    return this.db.hotReads().token(secretHash);
  }

  private client(tx?: Tx): PrismaTx {
    return tx ? prismaOf(tx) : this.db.prisma;
  }

  async create(t: NewApiTokenRecord, tx?: Tx): Promise<void> {
    await this.client(tx).apiToken.create({ data: t });
  }

  get(id: string, tx?: Tx): Promise<ApiTokenRecord | null> {
    return this.client(tx).apiToken.findUnique({ where: { id } });
  }

  /** Every token, oldest first. */
  listByCreation(): Promise<ApiTokenRecord[]> {
    return this.db.prisma.apiToken.findMany({ orderBy: { createdAt: 'asc' } });
  }

  /** Every token, by id. */
  listById(): Promise<ApiTokenRecord[]> {
    return this.db.prisma.apiToken.findMany({ orderBy: { id: 'asc' } });
  }

  /** Sets revokedAt, and the grant MAC that covers it when one is given. */
  async revoke(id: string, revokedAt: Date, grantMac: string | undefined, tx?: Tx): Promise<void> {
    await this.client(tx).apiToken.update({ where: { id }, data: { revokedAt, ...(grantMac !== undefined ? { grantMac } : {}) } });
  }

  /** Last-used times, in one transaction; a token deleted meanwhile is skipped. */
  async recordUse(uses: [id: string, at: Date][]): Promise<void> {
    await this.db.prisma.$transaction(async (tx) => {
      for (const [id, at] of uses) await tx.apiToken.updateMany({ where: { id }, data: { lastUsedAt: at } });
    });
  }

  /** Tokens without a grant MAC (made before MACs), counted. */
  countUnsealed(): Promise<number> {
    return this.db.prisma.apiToken.count({ where: { grantMac: null } });
  }

  unsealed(tx?: Tx): Promise<ApiTokenRecord[]> {
    return this.client(tx).apiToken.findMany({ where: { grantMac: null } });
  }

  async setGrantMac(id: string, grantMac: string, tx?: Tx): Promise<void> {
    await this.client(tx).apiToken.update({ where: { id }, data: { grantMac } });
  }
}
