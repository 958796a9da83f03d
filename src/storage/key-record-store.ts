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
     * SQLite keeps old bytes in more places than the deleted row: a page that split while
     * secure_delete was off keeps its former cells in its unused area, and earlier frames of the
     * write-ahead log hold pages as they were. So the table is rebuilt (its rows kept in a TEMP
     * table in memory, the table dropped with secure_delete on, which zeroes every page it
     * frees, then recreated from its own schema text and refilled), the pages already on the
     * free list are overwritten with zeros, then a TRUNCATE checkpoint
     * empties the log, retried while another connection's read holds it. PostgreSQL: VACUUM FULL
     * rewrites the table without its dead rows (its WAL and base backups keep them until they
     * are recycled: README, security model). Returns what could not be done, or null.
     */
    async scrub(): Promise<string | null> {
      if (db.provider === 'postgresql') {
        // PostgreSQL skips VACUUM of a table the role does not own, with only a server-side warning.
        const [own] = await db.prisma.$queryRawUnsafe<{ owner: boolean }[]>(
          `SELECT pg_catalog.pg_get_userbyid(c.relowner) = current_user AS owner FROM pg_catalog.pg_class c WHERE c.oid = '"KeyRecord"'::regclass`,
        );
        if (!own?.owner)
          return `the database role does not own the "KeyRecord" table, so VACUUM FULL cannot rewrite it: its dead rows keep the removed key's sealed bytes until a VACUUM FULL "KeyRecord" by the table's owner`;
        await db.prisma.$executeRawUnsafe('VACUUM FULL "KeyRecord"');
        return null;
      }
      const conn = new Database(db.target.location);
      try {
        conn.pragma('busy_timeout = 5000');
        conn.pragma('secure_delete = ON');
        conn.pragma('temp_store = MEMORY');
        conn.pragma('foreign_keys = OFF'); // nothing references KeyRecord; the drop must not cascade anyway
        const schema = conn.prepare(`SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'KeyRecord'`).pluck().get() as string;
        const indexes = conn
          .prepare(`SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'KeyRecord' AND sql IS NOT NULL`)
          .pluck()
          .all() as string[];
        conn
          .transaction(() => {
            conn.exec('CREATE TEMP TABLE "KeyRecord_kept" AS SELECT * FROM main."KeyRecord"');
            conn.exec('DROP TABLE main."KeyRecord"');
            conn.exec(schema);
            for (const sql of indexes) conn.exec(sql);
            conn.exec('INSERT INTO main."KeyRecord" SELECT * FROM temp."KeyRecord_kept"');
            conn.exec('DROP TABLE temp."KeyRecord_kept"');
            // Pages freed before, while secure_delete was off (a table's pages merged after
            // deletes), sit on the free list as they were: take every one of them for zeros, then
            // free them again. SQLite allocates from the free list before it grows the file.
            const free = conn.pragma('freelist_count', { simple: true }) as number;
            if (free > 0) {
              const pageSize = conn.pragma('page_size', { simple: true }) as number;
              conn.exec('CREATE TABLE "signet_free_page_wipe" (b BLOB)');
              const fill = conn.prepare('INSERT INTO "signet_free_page_wipe" (b) VALUES (zeroblob(?))');
              const CHUNK = 16 << 20;
              for (let left = free * pageSize; left > 0; left -= CHUNK) fill.run(Math.min(CHUNK, left));
              conn.exec('DROP TABLE "signet_free_page_wipe"');
            }
          })
          .immediate();
        for (let attempt = 0; attempt < 10; attempt++) {
          const [r] = conn.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[];
          if (r && r.busy === 0) return null;
          await new Promise((done) => setTimeout(done, 200));
        }
        return `another process held a read of ${db.target.location} for 2 s, so its write-ahead log could not be checkpointed and truncated: until it is, ${db.target.location} and its -wal file still hold the removed key's sealed bytes; stop the Signet servers and run \`signet ca move-key <caId> --to pkcs11\` again (it finds the key moved and only scrubs)`;
      } finally {
        conn.close();
      }
    },
    async ids(): Promise<string[]> {
      return (await db.prisma.keyRecord.findMany({ select: { id: true } })).map((r) => r.id);
    },
  };
}
