/**
 * SQLite behind Prisma: which connection a query runs on.
 *
 * Prisma's better-sqlite3 adapter serialises interactive transactions on a connection with a
 * mutex, but a query made outside a transaction runs on the same connection at once — inside
 * whatever transaction is open there. With one connection, a plain read could open that
 * transaction's read snapshot before its first write (which then failed SQLITE_BUSY at once,
 * without waiting, when another connection had committed meanwhile: 503s on bursts of
 * revocations), saw rows not yet committed, and a plain write became part of a transaction
 * that might roll back. With two ordinary connections, a plain write on the second busy-waited
 * on the event loop for the lock the first held across an await: a 10 s deadlock.
 *
 * So, two connections and a rule:
 * - reads (find*, count, aggregate, groupBy, $queryRaw) run on a read-only connection: under
 *   WAL they never wait for a writer and only ever see committed rows;
 * - a write made outside a transaction runs as a transaction of its own on the writer, so it
 *   takes the adapter's mutex and waits its turn behind an open transaction instead of
 *   joining it or spinning on its lock;
 * - `$transaction` (interactive) runs on the writer. The batch form is not supported: its
 *   elements would already be running (use the interactive form).
 */
import type { Db } from './database.js';

const READS = new Set(['findUnique', 'findUniqueOrThrow', 'findFirst', 'findFirstOrThrow', 'findMany', 'count', 'aggregate', 'groupBy']);
const RAW_READS = new Set(['$queryRaw', '$queryRawUnsafe']);
const RAW_WRITES = new Set(['$executeRaw', '$executeRawUnsafe']);
/** As Database.transaction's: a write waits this long for the transactions queued before it. */
const WRITE_OPTIONS = { maxWait: 30_000, timeout: 30_000 };

type AnyFn = (...args: unknown[]) => unknown;
type Bag = Record<string | symbol, unknown>;

export function routeSqliteQueries(reader: Db, writer: Db): Db {
  const inOwnTransaction = (run: (tx: Bag) => unknown) => writer.$transaction(async (tx) => run(tx as unknown as Bag), WRITE_OPTIONS);
  const models = new Map<string, object>();
  const modelProxy = (name: string, delegate: object): object =>
    new Proxy(delegate, {
      get(target, op) {
        const own = Reflect.get(target, op) as unknown;
        if (typeof op !== 'string' || typeof own !== 'function') return own;
        if (READS.has(op)) {
          const read = (reader as unknown as Record<string, Bag>)[name]![op] as AnyFn;
          return (...args: unknown[]) => read.apply((reader as unknown as Record<string, Bag>)[name], args);
        }
        return (...args: unknown[]) => inOwnTransaction((tx) => ((tx[name] as Bag)[op] as AnyFn).apply(tx[name], args));
      },
    });
  return new Proxy(writer, {
    get(target, prop) {
      if (typeof prop === 'string') {
        if (RAW_READS.has(prop)) return ((reader as unknown as Bag)[prop] as AnyFn).bind(reader);
        if (RAW_WRITES.has(prop)) return (...args: unknown[]) => inOwnTransaction((tx) => (tx[prop] as AnyFn).apply(tx, args));
        if (prop === '$transaction') {
          return (arg: unknown, options?: unknown) => {
            if (typeof arg !== 'function') throw new TypeError('SQLite: batch $transaction([...]) is not supported here; use the interactive form');
            return writer.$transaction(arg as Parameters<Db['$transaction']>[0], options as never);
          };
        }
      }
      const value = Reflect.get(target, prop) as unknown;
      if (typeof prop === 'string' && !prop.startsWith('$') && !prop.startsWith('_') && value !== null && typeof value === 'object') {
        let m = models.get(prop);
        if (!m) models.set(prop, (m = modelProxy(prop, value)));
        return m;
      }
      return typeof value === 'function' ? (value as AnyFn).bind(target) : value;
    },
  }) as Db;
}
