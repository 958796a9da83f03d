/** Setting rows: small key/value facts about this installation. */
import type { SettingRecord } from '../model/setting.js';
import { prismaOf, type StorageDatabase, type Tx } from './database.js';

export class SettingStore {
  constructor(private readonly db: StorageDatabase) {}

  get(key: string, tx?: Tx): Promise<SettingRecord | null> {
    return (tx ? prismaOf(tx) : this.db.prisma).setting.findUnique({ where: { key } });
  }

  /** Writes the row, replacing any value (the SCEP RA's current certificate after a renewal). */
  async put(key: string, value: string, tx?: Tx): Promise<void> {
    await (tx ? prismaOf(tx) : this.db.prisma)
      .$executeRaw`INSERT INTO "Setting" ("key", "value") VALUES (${key}, ${value}) ON CONFLICT ("key") DO UPDATE SET "value" = ${value}`;
  }

  /** Inserts the row unless the key exists already (the first writer wins; never overwrites). */
  async insertIfAbsent(key: string, value: string, tx?: Tx): Promise<void> {
    await (tx ? prismaOf(tx) : this.db.prisma).$executeRaw`INSERT INTO "Setting" ("key", "value") VALUES (${key}, ${value}) ON CONFLICT ("key") DO NOTHING`;
  }
}
