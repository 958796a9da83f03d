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
import { openDatabase } from '../storage/database.js';
import { resolveDatabase } from '../storage/database-url.js';
import { loadMigrations, migrate } from '../storage/migrate.js';
import { restoreRows, validateBackup, writeBackup } from '../storage/backup.js';
import { openSignet, prepareDataDir } from './open.js';

export async function backup(config: Config, log: Logger, file: string, onProgress?: (table: string, rows: number) => void) {
  const ctx = await openSignet(config, log);
  try {
    const migrations = (await ctx.db.prisma.$queryRawUnsafe<{ migration_name: string }[]>(
      'SELECT migration_name FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL ORDER BY migration_name')).map((r) => r.migration_name);
    const key = await ctx.db.prisma.keyRecord.findFirst({ select: { kekId: true } });
    const trailer = await writeBackup(ctx.db.prisma, file, { provider: ctx.db.provider, migrations, kekId: key?.kekId ?? null }, onProgress);
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
  if (!key) throw new SignetError('key-store', `the backup's CA keys are sealed under master key ${expected}: set SIGNET_MASTER_KEY, or copy that master.key into ${config.dataDir}, before restoring`);
  if (kekId(key) !== expected) throw new SignetError('key-store', `the backup's CA keys are sealed under master key ${expected}, but the master key given is ${kekId(key)}; nothing was restored`);
  return key;
}

export async function restore(config: Config, log: Logger, file: string, onProgress?: (rows: number, total: number) => void) {
  const v = await validateBackup(file);
  const target = resolveDatabase(config.DATABASE_URL, config.dataDir, config.SIGNET_SQLITE_SYNCHRONOUS);
  const known = new Set(loadMigrations(target.provider).map((m) => m.name));
  const unknown = v.header.migrations.filter((m) => !known.has(m));
  if (unknown.length) throw new SignetError('bad-request', `the backup comes from a newer Signet (migration ${unknown[0]} is unknown here); restore it with that version`);
  const kek = restoreKek(config, v.header.kekId);
  if (v.firstKey && kek) {
    try { unseal(kek, v.firstKey.id, v.firstKey.sealed); } catch {
      throw new SignetError('key-store', `the master key does not unseal the backup's key ${v.firstKey.id}: the backup is corrupted or from another installation; nothing was restored`);
    }
  }
  // Everything about the file is known good; only now touch the data directory and database.
  prepareDataDir(config.dataDir);
  await migrate(target);
  const db = await openDatabase(target);
  // The restored trail continues under this master key's chain key. No checkpoints are held
  // here: the backup.restored event is what accepts the checkpoints newer than the backup.
  const key = kek ?? resolveKek({ masterKey: config.SIGNET_MASTER_KEY, dataDir: config.dataDir, storeHasKeys: false }).key;
  bindAuditTrail(db, new AuditTrail(new SealedKeyStore(db.prisma, { key, id: kekId(key), source: 'file' }).deriveSecret(AUDIT_MAC_LABEL)));
  try {
    const existing = (await db.prisma.certificateAuthority.count()) + (await db.prisma.certificate.count()) + (await db.prisma.auditEvent.count());
    if (existing) throw new SignetError('conflict', 'restore needs an empty database: this one already holds a CA hierarchy or certificates');
    const total = Object.values(v.counts).reduce((a, b) => a + b, 0);
    const rows = await db.transaction(async (tx) => {
      const n = await restoreRows(tx, file, (done) => onProgress?.(done, total));
      await appendAudit(tx, { actor: 'cli', action: 'backup.restored', target: file, details: { createdAt: v.header.createdAt, provider: v.header.provider, counts: v.counts } });
      return n;
    }, { timeoutMs: 3_600_000 });
    log.info({ rows, file }, 'backup restored');
    return { rows, counts: v.counts, createdAt: v.header.createdAt };
  } finally {
    await db.close();
  }
}
