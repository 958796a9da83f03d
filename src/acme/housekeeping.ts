/**
 * ACME housekeeping: deletes ACME state nobody can use any more, so that what anonymous
 * clients create (orders, authorizations, challenges) does not pile up for ever.
 *
 * Deleted, after SIGNET_ACME_RETENTION_DAYS (the retention):
 * - orders that never led to a certificate (certificateSerial null, not `processing`) whose
 *   expiry is older than the retention. An expired order is `invalid` on its next read anyway.
 * - authorizations, with their challenges, whose expiry is older than the retention and than
 *   the order lifetime. Every order referring to such an authorization has itself expired by
 *   then (an order's own authorizations expire with it or later; one it reuses had over an
 *   hour left when the order was made), so no live order ever loses one of its authorizations
 *   and an order's status can never be computed from a partial set.
 * Kept: orders with a certificate (certificate download, revocation by the ordering account,
 * and crash recovery look them up by serial), orders being finalized, accounts (few: their
 * creation is limited per address, address-limits.ts), and every audit event, which records
 * each order and validation. Used nonces are purged by nonces.ts.
 *
 * One process runs it: the CRL publisher (worker 1 in a cluster), and among PostgreSQL replicas
 * the one holding a try-lock, at start and then every hour. Deletion goes in small batches, each
 * its own transaction, so neither the event loop nor the database is held for long; each run
 * that deleted something appends one audit event with the counts.
 */
import { appendAudit } from '../ca/audit.js';
import type { CaContext } from '../ca/context.js';
import { withTryAdvisoryLock } from '../storage/advisory-lock.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const BATCH = 500;
export const HOUSEKEEPING_EVERY_MS = HOUR;

export interface HousekeepingSettings {
  retentionDays: number;
  orderLifetimeHours: number;
}
export interface HousekeepingResult {
  orders: number;
  authorizations: number;
  challenges: number;
}

const yieldToEventLoop = () => new Promise<void>((r) => setImmediate(r));

/** One pass; returns what it deleted. Safe to run anywhere at any time (idempotent, batch by batch). */
export async function acmeHousekeeping(ctx: CaContext, s: HousekeepingSettings): Promise<HousekeepingResult> {
  const now = ctx.now().getTime();
  const orderCutoff = new Date(now - s.retentionDays * DAY);
  const authzCutoff = new Date(now - Math.max(s.retentionDays * DAY, s.orderLifetimeHours * HOUR));
  const store = ctx.stores.acme;
  const done: HousekeepingResult = { orders: 0, authorizations: 0, challenges: 0 };
  for (;;) {
    const ids = await store.expiredAuthorizationIds(authzCutoff, BATCH);
    if (ids.length === 0) break;
    const deleted = await store.deleteAuthorizationsWithChallenges(ids);
    done.challenges += deleted.challenges;
    done.authorizations += deleted.authorizations;
    await yieldToEventLoop();
    if (ids.length < BATCH) break;
  }
  for (;;) {
    const ids = await store.expiredUnissuedOrderIds(orderCutoff, BATCH);
    if (ids.length === 0) break;
    // Re-checked in the delete: an order that got its certificate meanwhile stays.
    done.orders += await store.deleteUnissuedOrders(ids);
    await yieldToEventLoop();
    if (ids.length < BATCH) break;
  }
  if (done.orders || done.authorizations || done.challenges) {
    await ctx.db.transaction((tx) =>
      appendAudit(tx, {
        actor: 'system',
        action: 'acme.housekeeping',
        target: 'acme',
        details: {
          ...done,
          retentionDays: s.retentionDays,
          ordersExpiredBefore: orderCutoff.toISOString(),
          authorizationsExpiredBefore: authzCutoff.toISOString(),
        },
      }),
    );
  }
  return done;
}

/** Runs housekeeping at start and then every hour, in the one process that should. */
export class AcmeHousekeeper {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;

  constructor(
    private readonly ctx: CaContext,
    private readonly settings: HousekeepingSettings,
  ) {}

  start(): void {
    const run = () => {
      this.running ??= withTryAdvisoryLock(this.ctx.db.target, 'signet:acme-housekeeping', () => acmeHousekeeping(this.ctx, this.settings))
        .then((r) => {
          if (r && (r.orders || r.authorizations || r.challenges))
            this.ctx.log.info(r, 'ACME housekeeping deleted expired orders, authorizations and challenges');
        })
        .catch((e: unknown) => this.ctx.log.warn({ err: e }, 'ACME housekeeping failed; it runs again within the hour'))
        .finally(() => {
          this.running = undefined;
        });
    };
    run();
    this.timer = setInterval(run, HOUSEKEEPING_EVERY_MS);
    this.timer.unref();
  }

  /** Stops the schedule and waits for a pass in progress (the database is closed after). */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }
}
