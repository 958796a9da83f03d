/**
 * `signet backup` and `signet restore` against the database: what the backup header records
 * (the applied migrations, the master key the CA keys are sealed under), streaming every table
 * to the file (backup.ts), and inserting a validated file's rows in the caller's transaction.
 */
import { restoreRows, writeBackup, type BackupHeader, type BackupTrailer } from './backup.js';
import type { StorageDatabase, Tx } from './database.js';
import { PKCS11_KEK_ID } from '../model/key.js';

export class BackupStore {
  constructor(private readonly db: StorageDatabase) {}

  /** The names of the migrations applied (finished, not rolled back), in order. */
  async appliedMigrations(): Promise<string[]> {
    const rows = await this.db.prisma.$queryRawUnsafe<{ migration_name: string }[]>(
      'SELECT migration_name FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL ORDER BY migration_name',
    );
    return rows.map((r) => r.migration_name);
  }

  /** The master key id of a sealed key (they are all sealed under one), or null without keys (keys in a PKCS#11 token seal nothing). */
  async keysKekId(): Promise<string | null> {
    return (await this.db.prisma.keyRecord.findFirst({ where: { kekId: { not: PKCS11_KEK_ID } }, select: { kekId: true } }))?.kekId ?? null;
  }

  /** Every backed-up table to `file`, from one snapshot. */
  write(
    file: string,
    header: Omit<BackupHeader, 'format' | 'version' | 'createdAt' | 'provider'>,
    onProgress?: (table: string, rows: number) => void,
  ): Promise<BackupTrailer> {
    return writeBackup(this.db.reader, file, { provider: this.db.provider, ...header }, onProgress);
  }

  /** A validated file's rows into the (empty) database, in the caller's transaction; how many. */
  restore(file: string, onProgress: ((rows: number) => void) | undefined, tx: Tx): Promise<number> {
    return restoreRows(tx, file, onProgress);
  }
}
