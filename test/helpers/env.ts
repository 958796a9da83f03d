/**
 * Test environments: a fresh data directory, and — when SIGNET_TEST_POSTGRES is set (npm run
 * test:pg, and the second CI pass) — a fresh PostgreSQL database per environment, dropped at the end.
 * With SIGNET_TEST_PKCS11=1 (the CI's third, tagged pass: npm run test:pkcs11) every environment
 * keeps its CA keys in this process's throw-away SoftHSM2 token (helpers/softhsm.ts), unless the
 * test chooses a key store itself (SIGNET_KEY_STORE in `extra`).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { pkcs11Pass, softHsm } from './softhsm.js';

export const PG_ADMIN_URL = process.env.SIGNET_TEST_POSTGRES;
export const onPostgres = Boolean(PG_ADMIN_URL);

export interface TestEnv {
  dataDir: string;
  databaseUrl?: string;
  env: Record<string, string>;
  cleanup(): Promise<void>;
}

function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

export async function createTestEnv(extra: Record<string, string> = {}): Promise<TestEnv> {
  const dataDir = mkdtempSync(join(tmpdir(), 'signet-test-'));
  let databaseUrl: string | undefined;
  let dbName: string | undefined;
  if (PG_ADMIN_URL) {
    dbName = `signet_t_${randomBytes(6).toString('hex')}`;
    const c = new pg.Client({ connectionString: PG_ADMIN_URL });
    await c.connect();
    await c.query(`CREATE DATABASE ${dbName}`);
    await c.end();
    databaseUrl = withDatabase(PG_ADMIN_URL, dbName);
  }
  const hsm = pkcs11Pass && extra.SIGNET_KEY_STORE === undefined ? softHsm().env : {};
  const env: Record<string, string> = {
    SIGNET_DATA_DIR: dataDir,
    SIGNET_LOG_LEVEL: 'warn',
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
    ...hsm,
    ...extra,
  };
  return {
    dataDir,
    databaseUrl,
    env,
    async cleanup() {
      rmSync(dataDir, { recursive: true, force: true });
      if (dbName && PG_ADMIN_URL) {
        const c = new pg.Client({ connectionString: PG_ADMIN_URL });
        await c.connect();
        await c.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
        await c.end();
      }
    },
  };
}

/** Environment for child processes: the parent's, minus anything Signet-specific that could leak in. */
export function childEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SIGNET_') && k !== 'DATABASE_URL'));
  return { ...base, ...env };
}
