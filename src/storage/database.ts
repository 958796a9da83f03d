/**
 * Opens the Prisma client for the configured database. Both generated clients (one per
 * provider, see scripts/build-schemas.mjs) come from the same models, so the rest of Signet
 * uses the SQLite client's types for either.
 */
import { PrismaBetterSQLite3 } from '@prisma/adapter-better-sqlite3';
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient as SqliteClient } from './generated/sqlite/client.js';
import { PrismaClient as PostgresClient } from './generated/postgresql/client.js';
import type { DatabaseTarget, Provider } from './database-url.js';
import { openIssuanceWriter, type IssuanceWriter } from './issuance-writer.js';
import { openHotReads, type HotReads } from './hot-reads.js';
import { createPrivateDatabaseFile } from './migrate.js';
import { openInventoryReads, type InventoryReads } from './inventory-reads.js';
import { AUDIT_LOCK_ID } from './advisory-lock.js';
import { routeSqliteQueries } from './sqlite-routing.js';

export { AUDIT_LOCK_ID };

export type Db = InstanceType<typeof SqliteClient>;
/** A client or an interactive-transaction client: what the stores use inside storage/. */
export type PrismaTx = Omit<Db, '$connect' | '$disconnect' | '$on' | '$transaction' | '$extends'>;

declare const TRANSACTION: unique symbol;
/**
 * A transaction as the layers above storage see it: a handle to pass back to a store method,
 * nothing to query with. Only storage/ opens it (prismaOf).
 */
export interface Tx {
  readonly [TRANSACTION]: 'pass me to a store';
}
/** Inside storage/: the Prisma client behind a transaction handle. */
export const prismaOf = (tx: Tx): PrismaTx => tx as unknown as PrismaTx;

/** The database as the layers above storage see it: transactions, health, lifecycle. */
export interface Database {
  readonly provider: Provider;
  readonly target: DatabaseTarget;
  /** Runs fn in one transaction that also serialises audit-chain writers (see ca/audit). */
  transaction<T>(fn: (tx: Tx) => Promise<T>, opts?: { timeoutMs?: number }): Promise<T>;
  ping(): Promise<void>;
  /** Runs fn at close, before the connections go, latest registered first (last writes: refusal summaries, then the audit checkpoint). */
  beforeClose(fn: () => Promise<void>): void;
  close(): Promise<void>;
}

/** What storage/ itself reaches through a Database: the clients and the driver-level paths. */
export interface StorageDatabase extends Database {
  /** The driver-level writer for the issuance hot path (opened on first use). */
  issuanceWriter(): IssuanceWriter;
  /** Driver-level reads for hot paths: token lookup, certificate status (opened on first use). */
  hotReads(): HotReads;
  /** Driver-level inventory reads in bounded chunks (opened on first use). */
  inventoryReads(): InventoryReads;
  /**
   * The Prisma client. On SQLite, plain reads run on a read-only connection and a plain write
   * runs as a transaction of its own on the writer (sqlite-routing.ts); on PostgreSQL, the pool.
   */
  readonly prisma: Db;
  /** A client whose interactive transactions are read snapshots that hold up no writer (backups). */
  readonly reader: Db;
  /** Runs reads in one snapshot (SQLite: a read transaction; PostgreSQL: REPEATABLE READ), holding up no writer. */
  snapshot<T>(fn: (client: PrismaTx) => Promise<T>): Promise<T>;
}

/**
 * The transaction options that make reads one snapshot: PostgreSQL needs REPEATABLE READ; a
 * SQLite read transaction under WAL already is one. (The SQLite client's types only know
 * 'Serializable'; the PostgreSQL client accepts this level.)
 */
export function snapshotIsolation(provider: string): { isolationLevel?: 'Serializable' } {
  return provider === 'postgresql' ? ({ isolationLevel: 'RepeatableRead' } as unknown as { isolationLevel: 'Serializable' }) : {};
}

/** Inside storage/: the clients behind a Database (every Database comes from openDatabase). */
export const storageOf = (db: Database): StorageDatabase => db as StorageDatabase;

const owners = new WeakMap<object, Database>();

/**
 * The Database a transaction (from Database.transaction) belongs to. Code that is handed only
 * a tx (the audit chain, whose MAC key is bound to the Database) finds its state here.
 */
export function databaseOf(client: Tx): Database | undefined {
  return owners.get(client);
}

async function openSqlite(file: string, sync: 'full' | 'normal', readonly = false): Promise<Db> {
  const client = new SqliteClient({ adapter: new PrismaBetterSQLite3({ url: file, timeout: 10000, readonly }) });
  // WAL lets readers (OCSP, inventory) run while a writer commits; the busy timeout makes a
  // second process (the CLI next to a running server) wait for the write lock instead of failing.
  if (!readonly) await client.$queryRawUnsafe('PRAGMA journal_mode = WAL');
  await client.$queryRawUnsafe('PRAGMA busy_timeout = 10000');
  await client.$queryRawUnsafe(`PRAGMA synchronous = ${sync === 'normal' ? 'NORMAL' : 'FULL'}`);
  return client;
}

export async function openDatabase(target: DatabaseTarget): Promise<Database> {
  let prisma: Db;
  let writer: Db;
  let reader: Db;
  if (target.provider === 'sqlite') {
    createPrivateDatabaseFile(target.location); // normally migrate() has created it already
    // Two connections, a read-only one for plain reads and the writer for every write, routed
    // by sqlite-routing.ts (which says why one connection, or two without the routing, failed).
    writer = await openSqlite(target.location, target.sqliteSynchronous ?? 'full');
    reader = await openSqlite(target.location, target.sqliteSynchronous ?? 'full', true);
    prisma = routeSqliteQueries(reader, writer);
  } else {
    const adapter = new PrismaPg({ connectionString: target.location, max: 10 });
    prisma = new PostgresClient({ adapter }) as unknown as Db;
    writer = prisma;
    reader = prisma;
  }
  const provider = target.provider;
  let issuance: IssuanceWriter | undefined;
  let reads: HotReads | undefined;
  let inventory: InventoryReads | undefined;
  const closing: (() => Promise<void>)[] = [];
  const db: StorageDatabase = {
    provider,
    target,
    issuanceWriter: () => (issuance ??= openIssuanceWriter(target)),
    hotReads: () => (reads ??= openHotReads(target)),
    inventoryReads: () => (inventory ??= openInventoryReads(target)),
    prisma,
    reader,
    snapshot(fn) {
      return reader.$transaction((client) => fn(client), snapshotIsolation(provider));
    },
    async transaction(fn, opts) {
      return writer.$transaction(
        async (tx) => {
          // SQLite transactions are serialised by its write lock; PostgreSQL needs an explicit
          // lock so that concurrent audit appends see each other's chain head.
          if (provider === 'postgresql') await tx.$executeRawUnsafe(`SELECT pg_advisory_xact_lock(${AUDIT_LOCK_ID})`);
          // SQLite: Prisma opens a deferred transaction. A write as the first statement takes the
          // write lock up front (waiting on busy_timeout), like BEGIN IMMEDIATE; otherwise two
          // processes that both read first deadlock on the upgrade and one fails with SQLITE_BUSY.
          else await tx.$executeRawUnsafe(`UPDATE "Setting" SET value = value WHERE key = '__write_lock'`);
          owners.set(tx, db);
          return fn(tx as unknown as Tx);
        },
        { timeout: opts?.timeoutMs ?? 30000, maxWait: 30000 },
      );
    },
    async ping() {
      await prisma.$queryRawUnsafe('SELECT 1');
    },
    beforeClose(fn) {
      closing.push(fn);
    },
    async close() {
      for (const fn of closing.splice(0).reverse()) await fn().catch(() => undefined); // last registered first; each logs its own failure
      await issuance?.close();
      await reads?.close();
      await inventory?.close();
      await writer.$disconnect();
      if (reader !== writer) await reader.$disconnect();
    },
  };
  return db;
}
