/** An API token row (ApiToken). The secret itself is never stored, only its hash. */
export interface ApiTokenRecord {
  id: string;
  name: string;
  secretHash: string;
  /** Comma-separated scopes. */
  scopes: string;
  /** JSON array of profile names, or null for any. */
  profiles: string | null;
  /** JSON array of name suffixes, or null for any. */
  nameSuffixes: string | null;
  expiresAt: Date | null;
  revokedAt: Date | null;
  lastUsedAt: Date | null;
  createdAt: Date;
  /** The grant MAC (src/ca/row-integrity.ts); null only on rows made before MACs and not sealed. */
  grantMac: string | null;
}

/** What creating a token stores (lastUsedAt and createdAt are the database's). */
export type NewApiTokenRecord = Omit<ApiTokenRecord, 'lastUsedAt' | 'createdAt'>;
