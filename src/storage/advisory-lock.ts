/**
 * A cross-process lock without a coordinator: a PostgreSQL session advisory lock on a
 * connection of its own, held for the duration of `fn`. On SQLite (one node) it only runs
 * `fn`; callers serialise within the process themselves.
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import type { DatabaseTarget } from './database-url.js';

/** The transaction-scoped lock that serialises audit-chain writers on PostgreSQL (database.ts, issuance-writer.ts). */
export const AUDIT_LOCK_ID = 0x41554454; // "AUDT"

/** A stable 63-bit key for a name, in PostgreSQL's bigint range. */
export const lockKey = (name: string): string => BigInt('0x' + createHash('sha256').update(name).digest('hex').slice(0, 15)).toString();

export async function withAdvisoryLock<T>(target: DatabaseTarget, name: string, fn: () => Promise<T>): Promise<T> {
  if (target.provider !== 'postgresql') return fn();
  const client = new pg.Client({ connectionString: target.location });
  client.on('error', () => undefined); // a dropped connection fails fn's caller, not the process
  await client.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1::bigint)', [lockKey(name)]);
    try {
      return await fn();
    } finally {
      await client.query('SELECT pg_advisory_unlock($1::bigint)', [lockKey(name)]).catch(() => undefined);
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Runs fn only if no other process holds the lock (PostgreSQL: pg_try_advisory_lock on a
 * connection of its own); returns undefined without running it otherwise. For periodic work
 * one replica is enough to do. On SQLite (one node) it only runs fn.
 */
export async function withTryAdvisoryLock<T>(target: DatabaseTarget, name: string, fn: () => Promise<T>): Promise<T | undefined> {
  if (target.provider !== 'postgresql') return fn();
  const client = new pg.Client({ connectionString: target.location });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const got = (await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS locked', [lockKey(name)])).rows[0]?.locked;
    if (!got) return undefined;
    try {
      return await fn();
    } finally {
      await client.query('SELECT pg_advisory_unlock($1::bigint)', [lockKey(name)]).catch(() => undefined);
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}
