/** The KeyRecord table for the sealed key store (keystore/sealed-key-store.ts KeyRecords). */
import type { SealedKeyRecord } from '../model/key.js';
import { bytes } from './bytes.js';
import { prismaOf, storageOf, type Database, type Tx } from './database.js';

export function keyRecordStore(database: Database) {
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
    async remove(id: string, tx?: Tx): Promise<void> {
      await (tx ? prismaOf(tx) : db.prisma).keyRecord.delete({ where: { id } });
    },
    async ids(): Promise<string[]> {
      return (await db.prisma.keyRecord.findMany({ select: { id: true } })).map((r) => r.id);
    },
  };
}
