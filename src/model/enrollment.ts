/** An enrollment credential row (EnrollmentCredential). The secret itself is never stored, only its keyed hash. */
export interface EnrollmentCredentialRecord {
  id: string;
  /** 'est' | 'scep' */
  protocol: string;
  profile: string;
  /** JSON array of name suffixes, or null for the profile's own rules. */
  nameSuffixes: string | null;
  usesAllowed: number;
  usesSpent: number;
  expiresAt: Date | null;
  secretHash: string;
  /** The grant MAC (src/ca/row-integrity.ts enrollmentGrantMac). */
  grantMac: string;
  createdAt: Date;
  createdBy: string;
  revokedAt: Date | null;
  lastUsedAt: Date | null;
}

/** What creating a credential stores (createdAt is the database's). */
export type NewEnrollmentCredentialRecord = Omit<EnrollmentCredentialRecord, 'createdAt' | 'lastUsedAt' | 'revokedAt' | 'usesSpent'>;
