/**
 * Sealing at upgrade: the first start of the version that introduced row MACs (row-integrity.ts)
 * finds API tokens and ACME accounts without a MAC — made by the version before — and seals
 * them (computes their MAC), trusting the rows as they are at that moment; it records one
 * `integrity.sealed` audit event saying how many. After that event, a row without a valid MAC
 * is never sealed again and never grants anything: it was written without the master key.
 *
 * ACME authorizations that were valid at upgrade are not sealed but expired: an authorization
 * is cheap to win again (clients re-validate on their next order), and expiring them means
 * that one set valid in the database before the upgrade gets nothing either. EAB keys bound
 * to a directory are re-sealed with the directory in their additional data (eabSealId).
 *
 * The one-time condition is the audit trail, not a setting the database could forget: sealing
 * happens only while the trail holds no keyed `integrity.sealed` event *and* the whole chain
 * verifies up to its recorded head (and its checkpoints, which the checkpointer checked at
 * start: a trail that fell behind them refuses the append). So deleting the event — to get
 * rows inserted later sealed at the next start — breaks the chain, and nothing is sealed.
 * A database whose trail is empty seals nothing: a fresh one gets its event when the first
 * start creates the hierarchy (bootstrapIfEmpty), and rows next to an empty trail were not
 * made by Signet.
 */
import { auditTrailOf, appendAudit, parseHead, type AuditInput, type AuditRow, type AuditTrail } from './audit.js';
import { ChainVerifier } from './audit-verify.js';
import type { CaContext } from './context.js';
import { eabSealId, rowIntegrity, type AccountFields, type TokenGrantFields } from './row-integrity.js';
import type { Tx } from '../storage/database.js';

export const SEALED_ACTION = 'integrity.sealed';
/** Which row MACs the event stands for; a later version adding MACs to other rows would seal under a new version. */
export const SEAL_VERSION = 1;

export type SealOutcome =
  | { state: 'sealed-before'; unsealed: Unsealed }
  | { state: 'sealed-now'; counts: SealCounts }
  | { state: 'deferred' }
  | { state: 'refused'; why: string };

export interface Unsealed {
  apiTokens: number;
  acmeAccounts: number;
  acmeAuthorizations: number;
}
export interface SealCounts {
  apiTokens: number;
  acmeAccounts: number;
  acmeAuthorizationsExpired: number;
  eabKeysResealed: number;
}

/** What sealing reads and writes: the trail, and the rows it gives MACs to (storage/*-store.ts). */
export interface SealStores {
  audit: {
    /** The first `take` events with `action`, oldest first. */
    withAction(action: string, take: number, tx?: Tx): Promise<AuditRow[]>;
    any(): Promise<boolean>;
    /** Events after `afterSeq`, counted. */
    count(afterSeq?: number): Promise<number>;
    /** The next `take` events after `afterSeq`, in chain order. */
    page(afterSeq: number, take: number): Promise<AuditRow[]>;
    recordedHead(): Promise<string | null>;
  };
  tokens: {
    countUnsealed(): Promise<number>;
    unsealed(tx?: Tx): Promise<(TokenGrantFields & { grantMac: string | null })[]>;
    setGrantMac(id: string, grantMac: string, tx?: Tx): Promise<void>;
  };
  integrity: {
    countUnsealedAccounts(): Promise<number>;
    countUnsealedValidAuthorizations(): Promise<number>;
    countDirectoryEabKeys(): Promise<number>;
    unsealedAccounts(tx?: Tx): Promise<AccountFields[]>;
    setAccountMac(id: string, mac: string, tx?: Tx): Promise<void>;
    /** Expires every valid authorization without a MAC; how many. */
    expireUnsealedAuthorizations(tx?: Tx): Promise<number>;
    /** EAB keys bound to a directory. */
    directoryEabKeys(tx?: Tx): Promise<{ id: string; profile: string | null; sealed: Uint8Array }[]>;
    resealEabKey(id: string, sealed: Uint8Array, kekId: string, tx?: Tx): Promise<void>;
  };
}

/** Whether the trail holds a genuine (keyed) integrity.sealed event of this version. */
async function sealedBefore(stores: SealStores, trail: AuditTrail, tx?: Tx): Promise<boolean> {
  const events = await stores.audit.withAction(SEALED_ACTION, 20, tx);
  // Keyed: only a holder of the master key wrote it, so its details are Signet's JSON.
  return events.some((e) => trail.isKeyed(e) && (JSON.parse(e.details ?? '{}') as { version?: number }).version === SEAL_VERSION);
}

async function unsealedRows(stores: SealStores): Promise<Unsealed> {
  return {
    apiTokens: await stores.tokens.countUnsealed(),
    acmeAccounts: await stores.integrity.countUnsealedAccounts(),
    acmeAuthorizations: await stores.integrity.countUnsealedValidAuthorizations(),
  };
}

/** The chain from event 1 to the recorded head, each link and MAC checked; the first problem, or null. */
async function chainProblem(audit: SealStores['audit'], trail: AuditTrail): Promise<string | null> {
  const v = new ChainVerifier(trail);
  let last: { seq: number; hash: string } | null = null;
  for (;;) {
    const after: number = last?.seq ?? 0;
    const rows: AuditRow[] = await audit.page(after, 5000);
    for (const row of rows) {
      const p = v.check(row);
      if (p) return `event ${p.seq}: ${p.problem}`;
      last = row;
    }
    if (rows.length === 5000) continue;
    const recorded = parseHead(await audit.recordedHead());
    if (!last) return recorded ? `the trail is empty but the recorded head is event ${recorded.seq}` : null;
    // Another process appended while we walked: walk on to its events.
    if (recorded && recorded.seq > last.seq && (await audit.count(last.seq))) continue;
    if (!recorded || recorded.seq !== last.seq || recorded.hash !== last.hash) return `the chain ends at event ${last.seq}, which is not the recorded head`;
    return null;
  }
}

/** The audit event that marks the sealing (also written by the first start of a new installation). */
export function sealedEvent(counts: SealCounts, tokenIds: string[] = []): AuditInput {
  return {
    actor: 'system',
    action: SEALED_ACTION,
    details: { version: SEAL_VERSION, ...counts, tokens: tokenIds.slice(0, 100), moreTokens: Math.max(0, tokenIds.length - 100) },
  };
}

/** In the bootstrap transaction of a new installation: the sealing event, unless the trail has one. */
export async function markSealedAtBootstrap(ctx: CaContext, tx: Tx): Promise<void> {
  if (await sealedBefore(ctx.stores, auditTrailOf(ctx.db), tx)) return;
  await appendAudit(tx, sealedEvent({ apiTokens: 0, acmeAccounts: 0, acmeAuthorizationsExpired: 0, eabKeysResealed: 0 }));
}

/**
 * Runs at every open (cheap once sealed: one indexed read); seals at most once per database.
 * Failures are logged, never fatal: rows left unsealed are refused until a start that can seal.
 */
export async function sealAtUpgrade(ctx: CaContext): Promise<SealOutcome> {
  const stores = ctx.stores;
  const trail = auditTrailOf(ctx.db);
  if (await sealedBefore(stores, trail)) {
    const unsealed = await unsealedRows(stores);
    const n = unsealed.apiTokens + unsealed.acmeAccounts + unsealed.acmeAuthorizations;
    if (n)
      ctx.log.error(
        { unsealed },
        `${n} authorisation rows carry no MAC although this database was sealed: they were inserted or changed without the master key, and are refused (run \`signet audit verify\`)`,
      );
    return { state: 'sealed-before', unsealed };
  }
  const pending = await unsealedRows(stores);
  const work = pending.apiTokens + pending.acmeAccounts + pending.acmeAuthorizations + (await stores.integrity.countDirectoryEabKeys());
  if (!(await stores.audit.any())) {
    if (!work) return { state: 'deferred' };
    const why = 'the database holds tokens or ACME state but no audit trail: they were not made by Signet';
    ctx.log.error({ pending }, `authorisation rows not sealed: ${why}`);
    return { state: 'refused', why };
  }
  const problem = await chainProblem(stores.audit, trail);
  if (problem) {
    const why = `the audit trail does not verify (${problem}), so it cannot show that these rows predate sealing`;
    ctx.log.error({ pending }, `authorisation rows not sealed: ${why}; they are refused until \`signet audit verify\` passes and Signet starts again`);
    return { state: 'refused', why };
  }
  const macs = rowIntegrity(ctx.keys);
  try {
    const counts = await ctx.db.transaction(async (tx) => {
      if (await sealedBefore(stores, trail, tx)) return null; // another process sealed meanwhile
      const tokens = await stores.tokens.unsealed(tx);
      // Every token made before MACs was stored under the SHA-256 of its secret.
      for (const t of tokens) await stores.tokens.setGrantMac(t.id, macs.tokenGrantMac(t, 'sha256'), tx);
      const accounts = await stores.integrity.unsealedAccounts(tx);
      for (const a of accounts) await stores.integrity.setAccountMac(a.id, macs.accountMac(a), tx);
      const expired = await stores.integrity.expireUnsealedAuthorizations(tx);
      let eabKeysResealed = 0;
      for (const k of await stores.integrity.directoryEabKeys(tx)) {
        if (ctx.keys.unsealSecret(eabSealId(k.id, k.profile!), k.sealed)) continue;
        const secret = ctx.keys.unsealSecret(k.id, k.sealed);
        if (!secret) {
          ctx.log.error({ eabKey: k.id }, 'ACME EAB key does not unseal under this master key; left as it is (it cannot be used)');
          continue;
        }
        const { sealed, kekId } = ctx.keys.sealSecret(eabSealId(k.id, k.profile!), secret);
        secret.fill(0);
        await stores.integrity.resealEabKey(k.id, sealed, kekId, tx);
        eabKeysResealed++;
      }
      const c: SealCounts = { apiTokens: tokens.length, acmeAccounts: accounts.length, acmeAuthorizationsExpired: expired, eabKeysResealed };
      await appendAudit(
        tx,
        sealedEvent(
          c,
          tokens.map((t) => t.id),
        ),
      );
      return c;
    });
    if (!counts) return { state: 'sealed-before', unsealed: await unsealedRows(stores) };
    ctx.log.info(
      { ...counts },
      'sealed the authorisation rows of the previous version (API tokens, ACME accounts) with MACs; valid ACME authorizations of that version were expired',
    );
    return { state: 'sealed-now', counts };
  } catch (e) {
    const why = (e as Error).message;
    ctx.log.error({ err: e }, 'authorisation rows not sealed; they are refused until a start that can seal them');
    return { state: 'refused', why };
  }
}
