/**
 * What an installation's database holds, counted: the start-up, `signet init --force` and
 * restore checks that refuse to found a new CA over the remains of one (src/runtime/data-dir.ts,
 * open.ts, backup.ts; src/cli/main.ts).
 */
import { prismaOf, type StorageDatabase, type Tx } from './database.js';

export type Holding = 'cas' | 'keys' | 'certificates' | 'events';

export class InstallationStore {
  constructor(private readonly db: StorageDatabase) {}

  /** Rows of one kind; in the caller's transaction when given one. */
  count(what: Holding, tx?: Tx): Promise<number> {
    const c = tx ? prismaOf(tx) : this.db.prisma;
    switch (what) {
      case 'cas':
        return c.certificateAuthority.count();
      case 'keys':
        return c.keyRecord.count();
      case 'certificates':
        return c.certificate.count();
      case 'events':
        return c.auditEvent.count();
    }
  }
}
