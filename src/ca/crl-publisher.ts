/**
 * CRL publication: per CA one unsharded CRL, one per shard with SIGNET_CRL_SHARDS > 1, and with
 * SIGNET_CRL_DELTAS a delta CRL beside each. Numbers come from an atomic increment on the CA row,
 * so they are strictly increasing across processes and shared by all of a CA's CRLs (gaps
 * allowed; a delta's number is above its base's); the served CRL of a scope is always its
 * highest-numbered one. Entries are streamed from the database in keyset-paginated batches and
 * encoded as they arrive (pki/crl), so a million revocations never exist as objects at once.
 * A revocation (heard on the status bus) schedules its shard's CRL — its delta, with deltas —
 * after a short coalescing delay; a timer re-signs at half-life.
 */
import { keyUriDetail } from '../keystore/key-store.js';
import { randomUUID } from 'node:crypto';
import { buildCrl, type CrlEntry, type RevocationReason } from '../pki/crl.js';
import { inspectCertificate, serialHex } from '../pki/certificate.js';
import type { Signer } from '../pki/keys.js';
import { SignetError } from '../errors.js';
import { withAdvisoryLock } from '../storage/advisory-lock.js';
import { auditBatch } from './audit.js';
import type { RevokedReader } from './crl-store.js';
import type { CrlScope } from '../model/crl.js';
import { crlUrl, type CaContext } from './context.js';
import type { StatusBus } from './status-bus.js';
import { auditedCaRevocations, idMatchesCertificate } from './issuers.js';
import { isPublishing } from '../model/ca.js';

export interface PublishedCrl {
  caId: string;
  number: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
  der: Buffer;
  entries: number;
}

export interface CrlOptions {
  validityHours: number;
  coalesceMs: number;
  /** SIGNET_CRL_SHARDS (default 1: one CRL per CA). */
  shards?: number;
  /** SIGNET_CRL_DELTAS (default off). */
  deltas?: boolean;
}

/** The full (unsharded) CRL: what /pki/<caId>.crl serves. */
const UNSHARDED: CrlScope = { shard: 0, delta: false };

/**
 * Rows per batch from the driver. Small on purpose: a batch lives across the awaits of the
 * stream, so 10,000-row batches were promoted out of V8's young generation and the heap grew
 * to ~160 MB between full collections (1M entries: 300 MB peak RSS); 1,000 rows die young
 * (~200 MB peak, and slightly faster).
 */
const BATCH = 1_000;
const KEEP = 5;
/** A delta CRL lists what changed since a little before its base was signed: a revocation
 * committed just after the base's snapshot but stamped before its thisUpdate is not lost (an
 * entry listed twice, in the base and the delta, is harmless). */
const DELTA_MARGIN_MS = 60_000;
/** A delta CRL is valid for an hour (or the full CRL's validity if shorter) and re-signed at
 * half-life, and within SIGNET_CRL_COALESCE_MS of a change. */
const DELTA_VALIDITY_MS = 3_600_000;

const scopeKey = (caId: string, s: CrlScope): string => `${caId}\n${s.shard}\n${s.delta ? 'delta' : 'full'}`;
const halfLife = (h: { thisUpdate: Date; nextUpdate: Date }): number => (h.thisUpdate.getTime() + h.nextUpdate.getTime()) / 2;

export class CrlPublisher {
  private readonly pending = new Map<string, NodeJS.Timeout>();
  private readonly served = new Map<string, { crl: PublishedCrl; checkedAt: number }>();
  private readonly running = new Map<string, Promise<PublishedCrl>>();
  private readonly first = new Map<string, Promise<PublishedCrl | null>>();
  private timer?: NodeJS.Timeout;
  private unsubscribe?: () => void;

  constructor(
    private readonly ctx: CaContext,
    private readonly bus: StatusBus,
    private readonly opts: CrlOptions,
  ) {}

  get deltas(): boolean {
    return this.opts.deltas === true;
  }

  /** Serving processes: re-sign each online CA's CRLs when missing or past half-life, check every
   * minute, and follow revocations. (The CLI publishes explicitly instead.) */
  async start(): Promise<void> {
    // A change made on this host (this process or another worker) schedules its shard's CRL (its
    // delta, with delta CRLs). A polled one does not: the poll does not say which CA, and
    // refreshDue() below catches any change newer than the newest CRL within a minute.
    this.unsubscribe = this.bus.subscribe(async (d) => {
      if (d.origin === 'replica' || d.change.kind !== 'certificate') return;
      const { caId, serial } = d.change;
      try {
        this.schedule(caId, await this.ctx.stores.crls.shardOf(serial));
      } catch (e) {
        this.ctx.log.error({ err: e, caId }, 'could not schedule a CRL; the minute check will publish it');
      }
    });
    await this.refreshDue();
    this.timer = setInterval(() => {
      this.refreshDue().catch((e) => this.ctx.log.error({ err: e }, 'CRL refresh failed'));
    }, 60_000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.unsubscribe?.();
    for (const t of this.pending.values()) clearTimeout(t);
    this.pending.clear();
  }

  /**
   * The shards a CA publishes: 0 (the unsharded CRL: child CAs, certificates issued without a
   * shard), 1..SIGNET_CRL_SHARDS when sharded, and every shard it has published before — so a
   * smaller SIGNET_CRL_SHARDS keeps the CRLs that earlier certificates name.
   */
  async shards(caId: string): Promise<number[]> {
    const n = this.opts.shards ?? 1;
    const set = new Set([0, ...(n > 1 ? Array.from({ length: n }, (_, i) => i + 1) : []), ...(await this.ctx.stores.crls.shardsInUse(caId))]);
    return [...set].sort((a, b) => a - b);
  }

  async refreshDue(): Promise<void> {
    const ids = await this.ctx.stores.crls.publishingCaIds();
    for (const id of ids) for (const shard of await this.shards(id)) await this.refreshShard(id, shard);
  }

  private async refreshShard(caId: string, shard: number): Promise<void> {
    const now = this.ctx.now().getTime();
    const full = await this.ctx.stores.crls.head(caId, { shard, delta: false });
    if (!full || now >= halfLife(full)) {
      await this.publish(caId, undefined, 'system', { shard, delta: false });
      return;
    }
    // SIGNET_CRL_DELTAS switched on or off since the full CRL was signed: its freshestCRL
    // extension is missing (OpenSSL then ignores deltas for certificates issued before) or
    // names deltas no longer published. A full CRL followed by a delta had deltas on.
    const newestDelta = await this.ctx.stores.crls.head(caId, { shard, delta: true });
    const fullHadDeltas = newestDelta !== null && newestDelta.number > full.number;
    if (fullHadDeltas !== this.deltas) {
      await this.publish(caId, undefined, 'system', { shard, delta: false });
      return;
    }
    // With deltas the delta follows changes; without, the full CRL does.
    const scope = { shard, delta: this.deltas };
    const last = scope.delta ? newestDelta : full;
    if (!last || last.number < full.number || now >= halfLife(last)) {
      await this.publish(caId, undefined, 'system', scope);
      return;
    }
    // A replica that died with a publication pending leaves a revocation newer than the newest
    // CRL; any replica catches it here (the margin covers commits later than their timestamp).
    const since = new Date(last.thisUpdate.getTime() - 5_000);
    const changed = await this.ctx.stores.crls.changedSince(caId, shard, since);
    if (changed && !this.pending.has(scopeKey(caId, scope))) await this.publish(caId, undefined, 'system', scope);
  }

  /** Coalesces bursts: one CRL per CA and shard per coalescing window (the delta, with delta CRLs). */
  schedule(caId: string, shard = 0): void {
    const scope = { shard, delta: this.deltas };
    const key = scopeKey(caId, scope);
    if (this.pending.has(key)) return;
    const t = setTimeout(() => {
      this.pending.delete(key);
      this.publish(caId, undefined, 'system', scope).catch((e) => this.ctx.log.error({ err: e, caId, shard }, 'scheduled CRL publication failed'));
    }, this.opts.coalesceMs);
    t.unref();
    this.pending.set(key, t);
  }

  /** After revocations made outside a server (the CLI): the CRL (or delta) of each shard they touched, now. */
  async publishFor(caId: string, serials: readonly string[], actor: string): Promise<PublishedCrl[]> {
    const shards = new Set<number>();
    for (const s of serials) shards.add(await this.ctx.stores.crls.shardOf(s));
    const out: PublishedCrl[] = [];
    for (const shard of [...shards].sort((a, b) => a - b)) out.push(await this.publish(caId, undefined, actor, { shard, delta: this.deltas }));
    return out;
  }

  /**
   * Builds, signs and stores a CRL now. `signer` is for offline CAs (key file at a ceremony):
   * they publish full CRLs only. With delta CRLs, a full CRL is followed by a delta naming it
   * (the previous delta's base is gone), and a delta without a full CRL to name publishes that first.
   */
  async publish(caId: string, signer?: Signer, actor = 'system', scope: CrlScope = UNSHARDED): Promise<PublishedCrl> {
    if (scope.delta && !signer && !(await this.ctx.stores.crls.head(caId, { shard: scope.shard, delta: false }))) {
      return this.publish(caId, undefined, actor, { shard: scope.shard, delta: false });
    }
    const key = scopeKey(caId, scope);
    // One build per scope at a time in this process; a second request waits for a fresh one.
    const prev = this.running.get(key);
    // Across replicas: one publisher per CA at a time under an advisory lock, held from number
    // allocation to commit, so a CA's CRLs (every shard, full and delta: one number sequence)
    // are stored in number order.
    const run = (prev ?? Promise.resolve())
      .catch(() => undefined)
      .then(() => withAdvisoryLock(this.ctx.db.target, `signet:crl:${caId}`, () => this.build(caId, signer, actor, scope)));
    this.running.set(key, run);
    let crl: PublishedCrl;
    try {
      crl = await run;
    } finally {
      if (this.running.get(key) === run) this.running.delete(key);
    }
    // No signer given: the CA's key is online (build refused otherwise), so it publishes deltas.
    if (this.deltas && !scope.delta && !signer) await this.publish(caId, undefined, actor, { shard: scope.shard, delta: true });
    return crl;
  }

  private async build(caId: string, signerIn: Signer | undefined, actor: string, scope: CrlScope): Promise<PublishedCrl> {
    const ca = await this.ctx.stores.cas.get(caId);
    if (!ca) throw new SignetError('not-found', `CA ${caId} does not exist`);
    let signer = signerIn;
    if (!signer) {
      if (!ca.keyId) throw new SignetError('conflict', `CA ${caId} is kept offline: sign its CRL with \`signet crl --ca ${caId} --key <file>\``);
      signer = await this.ctx.keys.signer(ca.keyId);
    }
    const parts = inspectCertificate(ca.certificateDer);
    if (signerIn && !signerIn.publicKey.export({ format: 'der', type: 'spki' }).equals(parts.spkiDer)) {
      throw new SignetError('bad-key', `the key given does not belong to CA ${caId}; nothing was signed`);
    }
    const { shard } = scope;
    const base = scope.delta ? await this.ctx.stores.crls.head(caId, { shard, delta: false }) : null;
    if (scope.delta && !base) throw new SignetError('internal', `CA ${caId} shard ${shard} has no full CRL for a delta to name`);
    const number = await this.ctx.stores.crls.nextNumber(caId);
    const thisUpdate = new Date(Math.floor(this.ctx.now().getTime() / 1000) * 1000);
    const validityMs = this.opts.validityHours * 3_600_000;
    const nextUpdate = new Date(thisUpdate.getTime() + (scope.delta ? Math.min(validityMs, DELTA_VALIDITY_MS) : validityMs));
    const publicUrl = this.ctx.config.publicUrl;
    let count = 0;
    const seen = () => {
      count++;
    };
    let der: Buffer;
    if (base) {
      der = await buildCrl({
        issuerNameDer: parts.subjectNameDer,
        issuerKeyId: parts.subjectKeyId,
        number,
        thisUpdate,
        nextUpdate,
        entries: await this.deltaEntries(caId, shard, new Date(base.thisUpdate.getTime() - DELTA_MARGIN_MS), thisUpdate, seen),
        // RFC 5280 §5.2.4: the same scope as its base, so the same issuingDistributionPoint.
        distributionPointUrl: crlUrl(publicUrl, caId, shard),
        deltaBaseNumber: base.number,
        signer,
      });
    } else {
      const revoked = await this.ctx.stores.crls.openRevoked(caId, shard, thisUpdate);
      try {
        der = await buildCrl({
          issuerNameDer: parts.subjectNameDer,
          issuerKeyId: parts.subjectKeyId,
          number,
          thisUpdate,
          nextUpdate,
          entries: this.entries(caId, shard, revoked, seen),
          distributionPointUrl: crlUrl(publicUrl, caId, shard),
          freshestCrlUrl: this.deltas && ca.keyId && !signerIn ? crlUrl(publicUrl, caId, shard, true) : undefined,
          signer,
          expectedEntries: revoked.count + 16,
        });
      } finally {
        await revoked.close();
      }
    }
    // No copy: with the exact size hint the encoder returns the CRL in place (a copy would double peak memory).
    const audit = {
      actor,
      action: 'crl.signed',
      target: caId,
      details: {
        number: number.toString(),
        entries: count,
        thisUpdate: thisUpdate.toISOString(),
        nextUpdate: nextUpdate.toISOString(),
        ...(shard > 0 ? { shard } : {}),
        ...(base ? { deltaBase: base.number.toString() } : {}),
        ...(signerIn ? {} : keyUriDetail(ca.keyId)),
      },
    };
    await this.ctx.stores.crls.write(
      { id: randomUUID(), caId, number, thisUpdate, nextUpdate, der, entries: count, keep: KEEP, shard, baseNumber: base?.number ?? null },
      (head) => auditBatch(this.ctx.db, head, [audit]),
    );
    const crl = { caId, number, thisUpdate, nextUpdate, der, entries: count };
    const key = scopeKey(caId, scope);
    const cur = this.served.get(key);
    if (!cur || cur.crl.number < number) this.served.set(key, { crl, checkedAt: this.ctx.now().getTime() });
    this.ctx.log.info({ caId, shard, delta: scope.delta, number: number.toString(), entries: count }, 'CRL published');
    return crl;
  }

  /**
   * A delta CRL's entries: leaves of the shard whose status changed since `since` — revoked or
   * held ones as in a full CRL, released holds as removeFromCRL (RFC 5280 §5.3.1) — and, in the
   * unsharded scope, child CAs revoked since.
   */
  private async deltaEntries(caId: string, shard: number, since: Date, now: Date, seen: () => void): Promise<CrlEntry[]> {
    const rows = await this.ctx.stores.crls.changes(caId, shard, since, now);
    const out: CrlEntry[] = rows.map((r) =>
      r.status === 'good'
        ? toEntry({ serial: r.serial, revokedAt: r.statusChangedAt, revocationReason: 'removeFromCRL', invalidityDate: null })
        : toEntry({ serial: r.serial, revokedAt: r.revokedAt, revocationReason: r.revocationReason, invalidityDate: r.invalidityDate }),
    );
    if (shard === 0) {
      for (const c of await this.ctx.stores.crls.revokedChildren(caId)) {
        if (c.revokedAt && c.revokedAt.getTime() >= since.getTime()) out.push(toEntry({ ...c, invalidityDate: null }));
      }
    }
    for (let i = 0; i < out.length; i++) seen();
    return out;
  }

  /** Revoked leaves of the CA's shard, then (unsharded scope) revoked child CAs; expired certificates leave the CRL. */
  private async *entries(caId: string, shard: number, revoked: RevokedReader, seen: () => void): AsyncGenerator<CrlEntry[]> {
    for await (const rows of revoked.batches(BATCH)) {
      yield rows.map((r) => {
        seen();
        return toEntry({ serial: r.serial, revokedAt: r.revokedAt, revocationReason: r.reason, invalidityDate: r.invalidityDate });
      });
    }
    // Child CAs name the unsharded CRL in their distribution point (shards are for leaves).
    if (shard > 0) return;
    const children = await this.ctx.stores.crls.revokedChildren(caId);
    // A CA revocation is anchored in the audit trail: a child whose row was flipped back to
    // active in the database stays on its parent's CRL (issuers.ts).
    for (const r of (await auditedCaRevocations(this.ctx.stores.cas)).filter((x) => x.parent === caId && !children.some((c) => c.id === x.id))) {
      const row = await this.ctx.stores.cas.get(r.id);
      let parts;
      try {
        parts = row ? inspectCertificate(row.certificateDer) : undefined;
      } catch {
        parts = undefined;
      }
      if (!row || !parts || !idMatchesCertificate(r.id, parts)) {
        this.ctx.log.error(
          { caId: r.id, parent: caId },
          "a CA revoked in the audit trail has no usable record (deleted or changed in the database): it cannot be listed on its parent's CRL",
        );
        continue;
      }
      this.ctx.log.error(
        { caId: r.id, status: row.status, revokedAtEvent: r.seq },
        'CA row says it is not revoked, but the audit trail recorded its revocation: the row was changed in the database; it stays on the CRL',
      );
      children.push({ id: r.id, serial: serialHex(parts.serial), revokedAt: r.time, revocationReason: r.reason });
    }
    if (children.length)
      yield children.map((c) => {
        seen();
        return toEntry({ ...c, invalidityDate: null });
      });
  }

  /**
   * The CRL to serve: the newest one of the scope, or for an online CA that has none yet (created
   * since the last refresh, by the API or another process, or a shard not yet signed) a first
   * one signed now, once for concurrent callers.
   */
  async current(caId: string, scope: CrlScope = UNSHARDED): Promise<PublishedCrl | null> {
    const crl = await this.latest(caId, scope);
    if (crl) return crl;
    const key = scopeKey(caId, scope);
    let first = this.first.get(key);
    if (!first) {
      first = (async () => {
        const ca = await this.ctx.stores.cas.get(caId);
        if (!ca?.keyId || !isPublishing(ca.status)) return null;
        const again = await this.latest(caId, scope);
        if (again) return again;
        await this.publish(caId, undefined, 'system', scope);
        return this.latest(caId, scope);
      })().finally(() => this.first.delete(key));
      this.first.set(key, first);
    }
    return first;
  }

  /** The newest CRL of a scope; other replicas' publications are picked up within seconds. */
  async latest(caId: string, scope: CrlScope = UNSHARDED): Promise<PublishedCrl | null> {
    const key = scopeKey(caId, scope);
    const cur = this.served.get(key);
    if (cur && this.ctx.now().getTime() - cur.checkedAt < 5_000) return cur.crl;
    const head = await this.ctx.stores.crls.head(caId, scope);
    if (!head) return null;
    if (cur && cur.crl.number === head.number) {
      cur.checkedAt = this.ctx.now().getTime();
      return cur.crl;
    }
    const crl = await this.ctx.stores.crls.get(caId, head.number);
    if (!crl) return null;
    if (crl.der.length === 0) return null; // its pieces pruned meanwhile
    this.served.set(key, { crl, checkedAt: this.ctx.now().getTime() });
    return crl;
  }
}

function toEntry(r: { serial: string; revokedAt: Date | null; revocationReason: string | null; invalidityDate: Date | null }): CrlEntry {
  return {
    serial: Buffer.from(r.serial.length % 2 ? '0' + r.serial : r.serial, 'hex'),
    revokedAt: r.revokedAt ?? new Date(0),
    reason: (r.revocationReason ?? undefined) as RevocationReason | undefined,
    invalidityDate: r.invalidityDate ?? undefined,
  };
}
