/** Enrollment credential rows (EnrollmentCredential) through Prisma (ca/enrollment-credentials.ts EnrollmentStore). */
import type { EnrollmentCredentialRecord, NewEnrollmentCredentialRecord } from '../model/enrollment.js';
import { prismaOf, type PrismaTx, type StorageDatabase, type Tx } from './database.js';

export class EnrollmentStore {
  constructor(private readonly db: StorageDatabase) {}

  private client(tx?: Tx): PrismaTx {
    return tx ? prismaOf(tx) : this.db.prisma;
  }

  async create(r: NewEnrollmentCredentialRecord, tx?: Tx): Promise<void> {
    await this.client(tx).enrollmentCredential.create({ data: { ...r, usesSpent: 0 } });
  }

  byHash(secretHash: string, tx?: Tx): Promise<EnrollmentCredentialRecord | null> {
    return this.client(tx).enrollmentCredential.findUnique({ where: { secretHash } });
  }

  get(id: string, tx?: Tx): Promise<EnrollmentCredentialRecord | null> {
    return this.client(tx).enrollmentCredential.findUnique({ where: { id } });
  }

  /** Every credential, oldest first. */
  listByCreation(): Promise<EnrollmentCredentialRecord[]> {
    return this.db.prisma.enrollmentCredential.findMany({ orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] });
  }

  /** Sets revokedAt, and the grant MAC that covers it when one is given. */
  async revoke(id: string, revokedAt: Date, grantMac: string | undefined, tx?: Tx): Promise<void> {
    await this.client(tx).enrollmentCredential.update({ where: { id }, data: { revokedAt, ...(grantMac !== undefined ? { grantMac } : {}) } });
  }

  /**
   * One conditional UPDATE: usesSpent goes from `from` to `from + uses` (with the MAC covering the
   * new count) only if the row still has `from` spent and is not revoked. False: another spender
   * or a revocation got there first.
   */
  async spend(id: string, from: number, grantMac: string, at: Date, tx?: Tx, uses = 1): Promise<boolean> {
    const r = await this.client(tx).enrollmentCredential.updateMany({
      where: { id, usesSpent: from, revokedAt: null },
      data: { usesSpent: from + uses, grantMac, lastUsedAt: at },
    });
    return r.count === 1;
  }
}
