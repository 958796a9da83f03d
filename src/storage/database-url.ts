import { isAbsolute, resolve } from 'node:path';
import { SignetError } from '../errors.js';

export type Provider = 'sqlite' | 'postgresql';
export interface DatabaseTarget {
  provider: Provider;
  /** SQLite: absolute file path. PostgreSQL: the connection string. */
  location: string;
  /** SQLite only: FULL syncs the WAL on every commit (survives power loss); NORMAL survives a process crash. */
  sqliteSynchronous?: 'full' | 'normal';
}

/** Chooses the database from DATABASE_URL (postgresql://… or file:…) or the data directory default. */
export function resolveDatabase(databaseUrl: string | undefined, dataDir: string, sqliteSynchronous: 'full' | 'normal' = 'full'): DatabaseTarget {
  if (!databaseUrl) return { provider: 'sqlite', location: resolve(dataDir, 'signet.db'), sqliteSynchronous };
  if (/^postgres(ql)?:\/\//.test(databaseUrl)) return { provider: 'postgresql', location: databaseUrl };
  if (databaseUrl.startsWith('file:')) {
    const path = databaseUrl.slice(5).replace(/^\/\//, '');
    return { provider: 'sqlite', location: isAbsolute(path) ? path : resolve(dataDir, '..', path), sqliteSynchronous };
  }
  throw new SignetError('configuration', 'DATABASE_URL must start with postgresql:// or file: (got an unsupported scheme)');
}

/** The URL with any password masked, for logs and errors. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
}
