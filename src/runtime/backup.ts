/**
 * `signet backup` and `signet restore`: the database (with its sealed keys) to one file and
 * back. Restore validates everything before it creates anything, and only ever fills an
 * empty database.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import { SignetError } from '../errors.js';
import { appendAudit, AUDIT_MAC_LABEL, AuditTrail, bindAuditTrail } from '../ca/audit.js';
import { kekId, masterKeyPath, resolveKek } from '../keystore/kek.js';
import { SealedKeyStore, unseal } from '../keystore/sealed-key-store.js';
import { openDatabase, type Tx } from '../storage/database.js';
import { resolveDatabase } from '../storage/database-url.js';
import { loadMigrations, migrate } from '../storage/migrate.js';
import { validateBackup, type BackupTrailer } from '../storage/backup.js';
import { createStores } from '../storage/stores.js';
import type { Holdings } from './data-dir.js';
import { openSignet, prepareDataDir } from './open.js';
import { keyRecordStore } from '../storage/key-record-store.js';

/** The database side of backup and restore (storage/backup-store.ts). */
export interface BackupStore {
  /** The names of the migrations applied, in order. */
  appliedMigrations(): Promise<string[]>;
  /** The master key id the CA keys are sealed under, or null without keys. */
  keysKekId(): Promise<string | null>;
  /** Every backed-up table to `file`, from one snapshot. */
  write(file: string, header: { migrations: string[]; kekId: string | null }, onProgress?: (table: string, rows: number) => void): Promise<BackupTrailer>;
  /** A validated file's rows into the empty database, in the caller's transaction; how many. */
  restore(file: string, onProgress: ((rows: number) => void) | undefined, tx: Tx): Promise<number>;
}

export async function backup(config: Config, log: Logger, file: string, onProgress?: (table: string, rows: number) => void) {
  const ctx = await openSignet(config, log);
  try {
    const store: BackupStore = createStores(ctx.db).backup;
    const migrations = await store.appliedMigrations();
    const trailer = await store.write(file, { migrations, kekId: await store.keysKekId() }, onProgress);
    await ctx.db.transaction((tx) => appendAudit(tx, { actor: 'cli', action: 'backup.created', target: file, details: { counts: trailer.counts } }));
    return trailer;
  } finally {
    await ctx.db.close();
  }
}

/** The master key for a restore: given explicitly, never created (a new one could not unseal anything). */
function restoreKek(config: Config, expected: string | null): Buffer | null {
  let key: Buffer | null = null;
  if (config.SIGNET_MASTER_KEY) key = Buffer.from(config.SIGNET_MASTER_KEY, 'base64');
  else if (existsSync(masterKeyPath(config.dataDir))) key = Buffer.from(readFileSync(masterKeyPath(config.dataDir), 'utf8').trim(), 'base64');
  if (!expected) return key;
  if (!key)
    throw new SignetError(
      'key-store',
      `the backup's CA keys are sealed under master key ${expected}: set SIGNET_MASTER_KEY, or copy that master.key into ${config.dataDir}, before restoring`,
    );
  if (kekId(key) !== expected)
    throw new SignetError(
      'key-store',
      `the backup's CA keys are sealed under master key ${expected}, but the master key given is ${kekId(key)}; nothing was restored`,
    );
  return key;
}

export async function restore(config: Config, log: Logger, file: string, onProgress?: (rows: number, total: number) => void) {
  const v = await validateBackup(file);
  const target = resolveDatabase(config.DATABASE_URL, config.dataDir, config.SIGNET_SQLITE_SYNCHRONOUS);
  const known = new Set(loadMigrations(target.provider).map((m) => m.name));
  const unknown = v.header.migrations.filter((m) => !known.has(m));
  if (unknown.length)
    throw new SignetError('bad-request', `the backup comes from a newer Signet (migration ${unknown[0]} is unknown here); restore it with that version`);
  const kek = restoreKek(config, v.header.kekId);
  if (v.firstKey && kek) {
    try {
      unseal(kek, v.firstKey.id, v.firstKey.sealed);
    } catch {
      throw new SignetError(
        'key-store',
        `the master key does not unseal the backup's key ${v.firstKey.id}: the backup is corrupted or from another installation; nothing was restored`,
      );
    }
  }
  // Everything about the file is known good; only now touch the data directory and database.
  prepareDataDir(config.dataDir);
  await migrate(target);
  const db = await openDatabase(target);
  const stores = createStores(db);
  const store: BackupStore = stores.backup;
  const holdings: Holdings = stores.installation;
  // The restored trail continues under this master key's chain key. No checkpoints are held
  // here: the backup.restored event is what accepts the checkpoints newer than the backup.
  const key = kek ?? resolveKek({ masterKey: config.SIGNET_MASTER_KEY, dataDir: config.dataDir, storeHasKeys: false }).key;
  bindAuditTrail(
    db,
    new AuditTrail(new SealedKeyStore(keyRecordStore(db), { key, id: kekId(key), source: 'file' }).deriveSecret(AUDIT_MAC_LABEL)),
    stores.audit,
  );
  try {
    const existing = (await holdings.count('cas')) + (await holdings.count('certificates')) + (await holdings.count('events'));
    if (existing) throw new SignetError('conflict', 'restore needs an empty database: this one already holds a CA hierarchy or certificates');
    const total = Object.values(v.counts).reduce((a, b) => a + b, 0);
    const rows = await db.transaction(
      async (tx) => {
        const n = await store.restore(file, (done) => onProgress?.(done, total), tx);
        await appendAudit(tx, {
          actor: 'cli',
          action: 'backup.restored',
          target: file,
          details: { createdAt: v.header.createdAt, provider: v.header.provider, counts: v.counts },
        });
        return n;
      },
      { timeoutMs: 3_600_000 },
    );
    log.info({ rows, file }, 'backup restored');
    return { rows, counts: v.counts, createdAt: v.header.createdAt };
  } finally {
    await db.close();
  }
}
