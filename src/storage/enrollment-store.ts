/**
 * Enrollment credential rows (EnrollmentCredential) through Prisma (ca/enrollment-credentials.ts
 * EnrollmentStore). The lookup by secret hash before every enrollment reads through the driver
 * (hot-reads.ts), and uses are spent in the issuance commit (issuance-writer.ts).
 */
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

  byHash(secretHash: string): Promise<EnrollmentCredentialRecord | null> {
    return this.db.hotReads().enrollmentCredential(secretHash);
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
}
