/** The KeyRecord table for the sealed key store (keystore/sealed-key-store.ts KeyRecords). */
import Database from 'better-sqlite3';
import type { SealedKeyRecord } from '../model/key.js';
import { bytes } from './bytes.js';
import { prismaOf, storageOf, type Database as SignetDatabase, type Tx } from './database.js';

export function keyRecordStore(database: SignetDatabase) {
  const db = storageOf(database);
  return {
    async insert(rec: SealedKeyRecord, tx?: Tx): Promise<void> {
      await (tx ? prismaOf(tx) : db.prisma).keyRecord.create({
        data: { id: rec.id, algorithm: rec.algorithm, kekId: rec.kekId, sealed: bytes(rec.sealed), publicKeyDer: bytes(rec.publicKeyDer) },
      });
    },
    async find(id: string): Promise<SealedKeyRecord | null> {
      const r = await db.prisma.keyRecord.findUnique({ where: { id }, select: { id: true, algorithm: true, kekId: true, sealed: true, publicKeyDer: true } });
      return r ? { ...r, sealed: new Uint8Array(r.sealed), publicKeyDer: new Uint8Array(r.publicKeyDer) } : null;
    },
    /**
     * Deletes a key record. On SQLite the writer connection turns secure_delete on first, so the
     * deleted row's bytes (a sealed CA key, readable by anyone who also has the master key) are
     * overwritten with zeros in the page rather than left in its free space; scrub() then
     * clears the copies the write-ahead log still holds.
     */
    async remove(id: string, tx?: Tx): Promise<void> {
      const run = async (client: ReturnType<typeof prismaOf>) => {
        if (db.provider === 'sqlite') await client.$queryRawUnsafe('PRAGMA secure_delete = ON');
        await client.keyRecord.delete({ where: { id } });
      };
      if (tx) await run(prismaOf(tx));
      else await db.transaction(async (t) => run(prismaOf(t)));
    },
    /**
     * After a committed remove(): clears what the storage files still hold of removed records.
     * SQLite: a TRUNCATE checkpoint (earlier frames of the log hold the row as it was), retried
     * while another connection's read holds the log. PostgreSQL: VACUUM FULL rewrites the table
     * without its dead rows (its write-ahead log and base backups keep them until they are
     * recycled: README, security model). Returns what could not be done, or null.
     */
    async scrub(): Promise<string | null> {
      if (db.provider === 'postgresql') {
        await db.prisma.$executeRawUnsafe('VACUUM FULL "KeyRecord"');
        return null;
      }
      const conn = new Database(db.target.location);
      try {
        conn.pragma('busy_timeout = 2000');
        for (let attempt = 0; attempt < 10; attempt++) {
          const [r] = conn.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[];
          if (r && r.busy === 0) return null;
          await new Promise((done) => setTimeout(done, 200));
        }
        return `the SQLite write-ahead log (${db.target.location}-wal) could not be truncated while other connections read; it is overwritten as Signet writes, or run this again when the server is idle`;
      } finally {
        conn.close();
      }
    },
    async ids(): Promise<string[]> {
      return (await db.prisma.keyRecord.findMany({ select: { id: true } })).map((r) => r.id);
    },
  };
}
