/**
 * CRL publication, one CRL per CA. Numbers come from an atomic increment on the CA row, so
 * they are strictly increasing across processes (gaps allowed); the served CRL is always the
 * highest-numbered one. Entries are streamed from the database in keyset-paginated batches and
 * encoded as they arrive (pki/crl), so a million revocations never exist as objects at once.
 * A revocation (heard on the status bus) schedules a CRL after a short coalescing delay; a timer
 * re-signs at half-life.
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
import { caUrls, type CaContext } from './context.js';
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
}

/**
 * Rows per batch from the driver. Small on purpose: a batch lives across the awaits of the
 * stream, so 10,000-row batches were promoted out of V8's young generation and the heap grew
 * to ~160 MB between full collections (1M entries: 300 MB peak RSS); 1,000 rows die young
 * (~200 MB peak, and slightly faster).
 */
const BATCH = 1_000;
const KEEP = 5;

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

  /** Serving processes: re-sign each online CA's CRL when missing or past half-life, check every
   * minute, and follow revocations. (The CLI publishes explicitly instead.) */
  async start(): Promise<void> {
    // A change made on this host (this process or another worker) schedules its CA's CRL. A
    // polled one does not: the poll does not say which CA, and refreshDue() below catches any
    // change newer than the newest CRL within a minute.
    this.unsubscribe = this.bus.subscribe((d) => {
      if (d.origin !== 'replica' && d.change.kind === 'certificate') this.schedule(d.change.caId);
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

  async refreshDue(): Promise<void> {
    const ids = await this.ctx.stores.crls.publishingCaIds();
    const now = this.ctx.now().getTime();
    for (const id of ids) {
      const last = await this.ctx.stores.crls.head(id);
      if (!last || now >= (last.thisUpdate.getTime() + last.nextUpdate.getTime()) / 2) {
        await this.publish(id);
        continue;
      }
      // A replica that died with a publication pending leaves a revocation newer than the newest
      // CRL; any replica catches it here (the margin covers commits later than their timestamp).
      const since = new Date(last.thisUpdate.getTime() - 5_000);
      const changed = await this.ctx.stores.crls.changedSince(id, since);
      if (changed && !this.pending.has(id)) await this.publish(id);
    }
  }

  /** Coalesces bursts: one CRL per CA per coalescing window. */
  schedule(caId: string): void {
    if (this.pending.has(caId)) return;
    const t = setTimeout(() => {
      this.pending.delete(caId);
      this.publish(caId).catch((e) => this.ctx.log.error({ err: e, caId }, 'scheduled CRL publication failed'));
    }, this.opts.coalesceMs);
    t.unref();
    this.pending.set(caId, t);
  }

  /** Builds, signs and stores a CRL now. `signer` is for offline CAs (key file at a ceremony). */
  async publish(caId: string, signer?: Signer, actor = 'system'): Promise<PublishedCrl> {
    // One build per CA at a time in this process; a second request waits for a fresh one.
    const prev = this.running.get(caId);
    // Across replicas: one publisher per CA at a time under an advisory lock, held from number
    // allocation to commit, so CRLs are stored in number order.
    const run = (prev ?? Promise.resolve())
      .catch(() => undefined)
      .then(() => withAdvisoryLock(this.ctx.db.target, `signet:crl:${caId}`, () => this.build(caId, signer, actor)));
    this.running.set(caId, run);
    try {
      return await run;
    } finally {
      if (this.running.get(caId) === run) this.running.delete(caId);
    }
  }

  private async build(caId: string, signerIn: Signer | undefined, actor: string): Promise<PublishedCrl> {
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
    const number = await this.ctx.stores.crls.nextNumber(caId);
    const thisUpdate = new Date(Math.floor(this.ctx.now().getTime() / 1000) * 1000);
    const nextUpdate = new Date(thisUpdate.getTime() + this.opts.validityHours * 3_600_000);
    let count = 0;
    const revoked = await this.ctx.stores.crls.openRevoked(caId, thisUpdate);
    let der: Buffer;
    try {
      der = await buildCrl({
        issuerNameDer: parts.subjectNameDer,
        issuerKeyId: parts.subjectKeyId,
        number,
        thisUpdate,
        nextUpdate,
        entries: this.entries(caId, revoked, () => {
          count++;
        }),
        distributionPointUrl: caUrls(this.ctx.config.publicUrl, caId).crl,
        signer,
        expectedEntries: revoked.count + 16,
      });
    } finally {
      await revoked.close();
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
        ...(signerIn ? {} : keyUriDetail(ca.keyId)),
      },
    };
    await this.ctx.stores.crls.write({ id: randomUUID(), caId, number, thisUpdate, nextUpdate, der, entries: count, keep: KEEP }, (head) =>
      auditBatch(this.ctx.db, head, [audit]),
    );
    const crl = { caId, number, thisUpdate, nextUpdate, der, entries: count };
    const cur = this.served.get(caId);
    if (!cur || cur.crl.number < number) this.served.set(caId, { crl, checkedAt: this.ctx.now().getTime() });
    this.ctx.log.info({ caId, number: number.toString(), entries: count }, 'CRL published');
    return crl;
  }

  /** Revoked leaves of the CA, then revoked child CAs; expired certificates leave the CRL. */
  private async *entries(caId: string, revoked: RevokedReader, seen: () => void): AsyncGenerator<CrlEntry[]> {
    for await (const rows of revoked.batches(BATCH)) {
      yield rows.map((r) => {
        seen();
        return toEntry({ serial: r.serial, revokedAt: r.revokedAt, revocationReason: r.reason, invalidityDate: r.invalidityDate });
      });
    }
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
   * The CRL to serve: the newest one, or for an online CA that has none yet (created since the
   * last refresh, by the API or another process) a first one signed now, once for concurrent callers.
   */
  async current(caId: string): Promise<PublishedCrl | null> {
    const crl = await this.latest(caId);
    if (crl) return crl;
    let first = this.first.get(caId);
    if (!first) {
      first = (async () => {
        const ca = await this.ctx.stores.cas.get(caId);
        if (!ca?.keyId || !isPublishing(ca.status)) return null;
        return (await this.latest(caId)) ?? this.publish(caId);
      })().finally(() => this.first.delete(caId));
      this.first.set(caId, first);
    }
    return first;
  }

  /** The newest CRL for a CA; other replicas' publications are picked up within seconds. */
  async latest(caId: string): Promise<PublishedCrl | null> {
    const cur = this.served.get(caId);
    if (cur && this.ctx.now().getTime() - cur.checkedAt < 5_000) return cur.crl;
    const head = await this.ctx.stores.crls.head(caId);
    if (!head) return null;
    if (cur && cur.crl.number === head.number) {
      cur.checkedAt = this.ctx.now().getTime();
      return cur.crl;
    }
    const crl = await this.ctx.stores.crls.get(caId, head.number);
    if (!crl) return null;
    if (crl.der.length === 0) return null; // its pieces pruned meanwhile
    this.served.set(caId, { crl, checkedAt: this.ctx.now().getTime() });
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
