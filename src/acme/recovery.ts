/**
 * Work a dead process left half done. Finalize and challenge validation mark their row
 * `processing` (with the time they claimed it) and finish it themselves; if the process dies
 * in between, the row would stay `processing` for ever. A claim older than its bound — longer
 * than the work can take in a live process — is recovered, at start-up and whenever the row is
 * read:
 *
 * - an order: the certificate may have been committed just before the crash. It is looked up
 *   (same profile, the CSR's hash, the order's names, created after the claim, attached to no
 *   other order) and, if found, attached: the order becomes `valid`, nothing is issued twice.
 *   Otherwise nothing was issued and the order becomes `invalid` with a serverInternal problem.
 *   RFC 8555 §7.1.6 has no way back from `processing` to `ready`, and clients polling after
 *   finalize wait for `valid` or `invalid`; the account's authorizations stay valid, so a new
 *   order for the same names is ready at once.
 * - a challenge: `invalid` with a serverInternal problem (and so its authorization), never
 *   validated again automatically — a validation that killed its process must not run again
 *   at every start. It does not count towards the failed-validations limit.
 */
import { appendAudit } from '../ca/audit.js';
import type { CaContext } from '../ca/context.js';
import type { SanEntry } from '../pki/names.js';

/** A finalize is one HTTP request: issuance and the order update take seconds, never minutes. */
export const FINALIZE_STALE_MS = 5 * 60_000;

type Identifier = { type: 'dns' | 'ip'; value: string };
export interface ProcessingOrder {
  id: string;
  accountId: string;
  profile: string;
  status: string;
  identifiers: string;
  processingSince: Date | null;
  csrHash: string | null;
  createdAt: Date;
}

/** The problem of interrupted work; its `interrupted` member is INTERRUPTED_MARK (model/acme.ts). */
const problem = (detail: string) => JSON.stringify({ type: 'urn:ietf:params:acme:error:serverInternal', detail, status: 500, interrupted: true });

/** Whether a `processing` claim made at `since` (null: before claims were timed) is older than `staleMs`. */
export const isStale = (since: Date | null, now: Date, staleMs: number) => !since || now.getTime() - since.getTime() >= staleMs;

/**
 * A certificate committed for this order's finalize before its process died, if there is one.
 * With the CSR's hash (recorded by the claim), a certificate of the same profile and names,
 * created after the claim, from that very CSR, and not attached to another order. An order
 * claimed by a version that recorded no hash: the certificate must also have been issued to
 * this account (its audit event), and the match must be unambiguous — one such certificate,
 * and no other such order of the account for the same names — or nothing is attached.
 */
async function committedCertificate(ctx: CaContext, o: ProcessingOrder) {
  // Replicas' clocks differ a little: look from a minute before the claim.
  const since = new Date((o.processingSince ?? o.createdAt).getTime() - 60_000);
  const store = ctx.stores.acme;
  const rows = await store.certificatesCreatedSince(o.profile, since, o.csrHash);
  const want = new Set((JSON.parse(o.identifiers) as Identifier[]).map((i) => `${i.type}:${i.value}`));
  const found: typeof rows = [];
  for (const row of rows) {
    const got = new Set((JSON.parse(row.sans) as SanEntry[]).map((s) => `${s.type}:${s.value}`));
    if (got.size !== want.size || [...want].some((x) => !got.has(x))) continue;
    if (await store.countOrdersWithCertificate(row.serial)) continue;
    if (o.csrHash) return row;
    // The issuance's audit event, looked up by time (indexed) around the certificate's creation.
    const around = { from: new Date(row.createdAt.getTime() - 60_000), to: new Date(row.createdAt.getTime() + 60_000) };
    if (await store.countAuditEvents({ ...around, action: 'certificate.issued', target: row.serial, actor: `acme:${o.accountId}` })) found.push(row);
  }
  if (found.length !== 1) return null;
  // Rivals: the account's other claim-less orders for these names left processing, recovered already or not.
  const rivals = await store.countUnhashedInterruptedOrders(o.accountId, o.identifiers);
  return rivals === 1 ? found[0]! : null;
}

/** Recovers one stale `processing` order; returns its new status, or null if another process got there first. */
export async function recoverOrder(ctx: CaContext, o: ProcessingOrder): Promise<'valid' | 'invalid' | null> {
  const cert = await committedCertificate(ctx, o);
  const claim = { id: o.id, processingSince: o.processingSince };
  const store = ctx.stores.acme;
  return ctx.db.transaction(async (tx) => {
    if (cert) {
      const attached = await store.updateClaimedOrder(
        claim,
        { status: 'valid', certificateSerial: cert.serial, notBefore: cert.notBefore, notAfter: cert.notAfter, processingSince: null },
        tx,
      );
      if (!attached) return null;
      await appendAudit(tx, {
        actor: 'system',
        action: 'acme.order.recovered',
        target: o.id,
        details: { status: 'valid', serial: cert.serial, claimedAt: o.processingSince },
      });
      return 'valid';
    }
    const failed = await store.updateClaimedOrder(
      claim,
      {
        status: 'invalid',
        processingSince: null,
        error: problem(
          'finalization was interrupted (the server stopped) before a certificate was issued; place a new order for the same names (its authorizations are still valid)',
        ),
      },
      tx,
    );
    if (!failed) return null;
    await appendAudit(tx, {
      actor: 'system',
      action: 'acme.order.recovered',
      target: o.id,
      outcome: 'failure',
      details: { status: 'invalid', claimedAt: o.processingSince },
    });
    return 'invalid';
  });
}

export interface ProcessingChallenge {
  id: string;
  authorizationId: string;
  processingSince: Date | null;
}

/** Recovers one stale `processing` challenge: it and its authorization become invalid. */
export async function recoverChallenge(ctx: CaContext, c: ProcessingChallenge): Promise<boolean> {
  const store = ctx.stores.acme;
  return ctx.db.transaction(async (tx) => {
    const ended = await store.updateClaimedChallenge(
      c,
      { status: 'invalid', processingSince: null, error: problem('the validation was interrupted (the server stopped); place a new order to try again') },
      tx,
    );
    if (!ended) return false;
    await store.invalidatePendingAuthorization(c.authorizationId, tx);
    await appendAudit(tx, {
      actor: 'system',
      action: 'acme.challenge.recovered',
      target: c.id,
      outcome: 'failure',
      details: { authorization: c.authorizationId, claimedAt: c.processingSince },
    });
    return true;
  });
}
