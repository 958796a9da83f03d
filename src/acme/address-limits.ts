/**
 * ACME limits per client address, across accounts. Per-account limits (service.ts) are escaped
 * by making another account, and without External Account Binding an account costs one
 * request; so new accounts, and new orders over all accounts, are also counted per client
 * address (addressKey: IPv4, or the IPv6 /56) over a sliding hour.
 *
 * The count is of durable rows (AcmeAccount.sourceKey, AcmeOrder.sourceKey), so it holds over
 * every worker and replica and across restarts. It is taken inside the transaction that inserts
 * the row, and Signet's transactions are serialised (SQLite's write lock; on PostgreSQL the
 * audit chain's advisory lock), so concurrent requests cannot overshoot the limit.
 */
import { SignetError } from '../errors.js';
import type { Tx } from '../storage/database.js';
import type { AcmeReads, AddressLimited } from './store.js';

const HOUR = 3_600_000;

/**
 * Refuses (rateLimited, Retry-After until the oldest counted row leaves the hour) when `key`
 * has made `limit` rows of `what` in the last hour. A limit of 0 is no limit. `tx` is the
 * transaction that inserts the row.
 */
export async function enforceAddressLimit(
  store: Pick<AcmeReads, 'countCreatedFrom' | 'firstCreatedFrom'>,
  what: AddressLimited,
  key: string,
  limit: number,
  now: Date,
  tx: Tx,
): Promise<void> {
  if (limit <= 0) return;
  const since = new Date(now.getTime() - HOUR);
  // Accounts bound by an External Account Binding key are not counted (see the store).
  const count = await store.countCreatedFrom(what, key, since, tx);
  if (count < limit) return;
  const oldest = await store.firstCreatedFrom(what, key, since, tx);
  const retryAfter = Math.max(1, Math.ceil(((oldest?.getTime() ?? now.getTime()) + HOUR - now.getTime()) / 1000));
  const setting = what === 'accounts' ? 'SIGNET_ACME_ACCOUNTS_PER_HOUR' : 'SIGNET_ACME_ORDERS_PER_ADDRESS_PER_HOUR';
  throw new SignetError(
    'rate-limited',
    `this client address created ${count} ACME ${what === 'accounts' ? 'accounts' : 'orders'} in the last hour (limit ${limit} per address, ${setting}); retry after ${retryAfter} s`,
    { acme: 'rateLimited', status: 429, extra: { retryAfter } },
  );
}
