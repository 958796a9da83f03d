/**
 * The API-token lookup that runs before every authenticated request, as one prepared
 * statement on the driver. Through Prisma it cost more than the rest of the request routing
 * (query compilation per call); revocation must still take effect at once, so it is not cached.
 */
import Database from 'better-sqlite3';
import pg from 'pg';
import type { DatabaseTarget } from './database-url.js';
import { pgUtc } from './pg-time.js';

export interface TokenRow {
  id: string; name: string; secretHash: string; scopes: string; profiles: string | null; nameSuffixes: string | null;
  expiresAt: Date | null; revokedAt: Date | null;
}

export interface TokenLookup { find(secretHash: string): Promise<TokenRow | null>; close(): Promise<void> }

const SQL = 'SELECT "id", "name", "secretHash", "scopes", "profiles", "nameSuffixes", "expiresAt", "revokedAt" FROM "ApiToken" WHERE "secretHash" = ';
const sqliteDate = (v: unknown): Date | null => (v === null || v === undefined ? null : new Date(String(v)));

export function openTokenLookup(target: DatabaseTarget): TokenLookup {
  if (target.provider === 'sqlite') {
    const db = new Database(target.location, { readonly: true });
    db.pragma('busy_timeout = 10000');
    const stmt = db.prepare(`${SQL}?`);
    return {
      async find(hash) {
        const r = stmt.get(hash) as (Omit<TokenRow, 'expiresAt' | 'revokedAt'> & { expiresAt: unknown; revokedAt: unknown }) | undefined;
        return r ? { ...r, expiresAt: sqliteDate(r.expiresAt), revokedAt: sqliteDate(r.revokedAt) } : null;
      },
      async close() { db.close(); },
    };
  }
  const pool = new pg.Pool({ connectionString: target.location, max: 4 });
  pool.on('error', () => undefined);
  return {
    async find(hash) {
      const { rows } = await pool.query({ text: `${SQL}$1`, values: [hash], name: 'signet-token-lookup' });
      const r = rows[0] as (Omit<TokenRow, 'expiresAt' | 'revokedAt'> & { expiresAt: unknown; revokedAt: unknown }) | undefined;
      return r ? { ...r, expiresAt: pgUtc(r.expiresAt), revokedAt: pgUtc(r.revokedAt) } : null;
    },
    async close() { await pool.end(); },
  };
}
