/**
 * EnrollmentCredential rows as the driver-level code reads and writes them (hot-reads.ts, the
 * spend inside the issuance commit in issuance-writer.ts), in the forms Prisma uses.
 */
import type { EnrollmentCredentialRecord } from '../model/enrollment.js';
import { pgUtc, sqliteDate } from './db-time.js';

const COLUMNS = [
  'id',
  'protocol',
  'profile',
  'nameSuffixes',
  'usesAllowed',
  'usesSpent',
  'expiresAt',
  'secretHash',
  'grantMac',
  'createdAt',
  'createdBy',
  'revokedAt',
  'lastUsedAt',
] as const;

export const ENROLLMENT_SELECT = `SELECT ${COLUMNS.map((c) => `"${c}"`).join(', ')} FROM "EnrollmentCredential"`;

/** The spend's compare-and-set: from `usesSpent` = $4 (and not revoked) to $1, with the MAC over the new count. */
export const ENROLLMENT_SPEND = (p: (n: number) => string) =>
  `UPDATE "EnrollmentCredential" SET "usesSpent" = ${p(1)}, "grantMac" = ${p(2)}, "lastUsedAt" = ${p(3)} WHERE "usesSpent" = ${p(4)} AND "revokedAt" IS NULL AND "id" = ${p(5)}`;

type Raw = Omit<EnrollmentCredentialRecord, 'expiresAt' | 'createdAt' | 'revokedAt' | 'lastUsedAt'> &
  Record<'expiresAt' | 'createdAt' | 'revokedAt' | 'lastUsedAt', unknown>;

function fromRaw(r: Raw, date: (v: unknown) => Date | null): EnrollmentCredentialRecord {
  return {
    ...r,
    usesAllowed: Number(r.usesAllowed),
    usesSpent: Number(r.usesSpent),
    expiresAt: date(r.expiresAt),
    createdAt: date(r.createdAt)!,
    revokedAt: date(r.revokedAt),
    lastUsedAt: date(r.lastUsedAt),
  };
}

export const enrollmentFromSqlite = (r: unknown): EnrollmentCredentialRecord => fromRaw(r as Raw, sqliteDate);
export const enrollmentFromPg = (r: unknown): EnrollmentCredentialRecord => fromRaw(r as Raw, pgUtc);
