/**
 * Revocation: revoke, place on hold, release a hold. Each change commits with its audit event,
 * then is published on the status bus (ca/status-bus.ts): relying parties see it through the
 * OCSP cache (refreshed at once) and the next CRL (scheduled, bursts coalesced).
 */
import { SignetError } from '../errors.js';
import type { Tx } from '../storage/database.js';
import { REVOCATION_REASONS, type RevocationReason } from '../pki/crl.js';
import { appendAudit } from './audit.js';
import type { CaContext } from './context.js';
import type { CaEvents } from './events.js';
import type { StatusBus } from './status-bus.js';
import type { Requester } from './issuance.js';
import { normalizeSerial } from './serial.js';
import { isRootCertificate, notIssuedByReason } from './ca-chain-check.js';
import { inspectCertificate } from '../pki/certificate.js';
import { actorOf, authorize, authorizeCertificate, type Operation } from './authorization.js';
import type { SanEntry } from '../pki/names.js';
import type { Profile } from './profiles.js';
import type { StoredStatus } from '../model/certificate.js';
import type { CaCertificateRecord } from '../model/ca.js';

export const REVOKE_REASONS: readonly RevocationReason[] = REVOCATION_REASONS.filter((r) => r !== 'removeFromCRL');

/** Reasons whose invalidityDate is when a key was compromised, which may predate the certificate. */
const KEY_COMPROMISE: ReadonlySet<RevocationReason> = new Set(['keyCompromise', 'caCompromise', 'aACompromise']);

export interface RevokeRequest {
  reason: RevocationReason;
  invalidityDate?: Date;
  caId?: string;
}

/**
 * Work that must commit with a certificate's revocation or hold, or not at all (a key group's
 * leave: groups/service.ts), run inside its transaction after the status change is written.
 */
export type StatusChangeHook = (tx: Tx, change: { serial: string; status: 'revoked' | 'hold'; actor: string }) => Promise<void>;

export class Revocation {
  private readonly hooks: StatusChangeHook[] = [];

  /** Registers work to run in every revocation's and hold's transaction. */
  onStatusChange(hook: StatusChangeHook): void {
    this.hooks.push(hook);
  }

  private readonly caHooks: ((tx: Tx, change: { caId: string; actor: string }) => Promise<void>)[] = [];

  /** Registers work to run in every CA revocation's transaction (its certificates are no longer good for anything). */
  onCaRevoked(hook: (tx: Tx, change: { caId: string; actor: string }) => Promise<void>): void {
    this.caHooks.push(hook);
  }

  /** `profiles`: for the host-less URI schemes a certificate's profile opts in to, which a token's name limit honours. */
  constructor(
    private readonly ctx: CaContext,
    private readonly status: StatusBus,
    private readonly events: CaEvents,
    private readonly profiles: ReadonlyMap<string, Pick<Profile, 'hostlessUriSchemes'>>,
  ) {}

  /** The caller's limits on one stored certificate (403 naming the limit). */
  private authorizeOn(who: Requester, op: Operation, cert: { serial: string; profile: string; sans: string; commonName: string | null }): void {
    authorizeCertificate(
      who.principal,
      op,
      { serial: cert.serial, profile: cert.profile, sans: JSON.parse(cert.sans) as SanEntry[], commonName: cert.commonName },
      this.profiles.get(cert.profile)?.hostlessUriSchemes,
    );
  }

  async revoke(serialIn: string, req: RevokeRequest, who: Requester) {
    authorize(who.principal, 'certificate.revoke');
    const serial = normalizeSerial(serialIn);
    if (!(REVOCATION_REASONS as readonly string[]).includes(req.reason)) {
      throw new SignetError('bad-request', `reason ${JSON.stringify(req.reason)} is not an RFC 5280 reason; use one of ${REVOKE_REASONS.join(', ')}`);
    }
    if (req.reason === 'removeFromCRL')
      throw new SignetError(
        'bad-request',
        'removeFromCRL is not a revocation reason: Signet writes it in delta CRLs itself when a hold is released; to release a hold use the unhold operation',
      );
    const now = this.ctx.now();
    if (req.invalidityDate && req.invalidityDate.getTime() > now.getTime() + 60_000) {
      throw new SignetError(
        'bad-request',
        `invalidityDate ${req.invalidityDate.toISOString()} is in the future; it is when the key was (or is suspected to have been) compromised`,
      );
    }
    const result = await this.ctx.db.transaction(async (tx) => {
      const cert = await this.ctx.stores.revocations.get(serial, tx);
      if (cert) this.authorizeOn(who, 'certificate.revoke', cert);
      if (!cert || (req.caId && cert.caId !== req.caId)) {
        throw new SignetError(
          'not-found',
          req.caId && cert ? `certificate ${serial} was not issued by CA ${req.caId}` : `certificate ${serial} does not exist`,
        );
      }
      // RFC 5280 §5.3.2: "the date on which it is known or suspected that the private key was
      // compromised or that the certificate otherwise became invalid". A key can be compromised
      // before the certificate exists (a renewal keeps its key), so for a key compromise only
      // the schema's floor (1970) applies; for any other reason it is when the certificate
      // stopped being valid, which cannot be before it started.
      if (req.invalidityDate && !KEY_COMPROMISE.has(req.reason) && req.invalidityDate.getTime() < cert.notBefore.getTime()) {
        throw new SignetError(
          'bad-request',
          `invalidityDate ${req.invalidityDate.toISOString()} is before certificate ${serial} became valid (notBefore ${cert.notBefore.toISOString()}); only a key compromise (keyCompromise, caCompromise, aACompromise) can predate the certificate`,
        );
      }
      if (cert.status === 'revoked') throw new SignetError('conflict', `certificate ${serial} is already revoked (${cert.revocationReason})`);
      if (cert.status === 'hold' && req.reason === 'certificateHold') throw new SignetError('conflict', `certificate ${serial} is already on hold`);
      const status = req.reason === 'certificateHold' ? 'hold' : 'revoked';
      // The status guard makes a concurrent second revoke a no-op that we report as a conflict.
      const updated = await this.ctx.stores.revocations.setRevoked(
        serial,
        cert.status as StoredStatus,
        { status, revokedAt: now, revocationReason: req.reason, invalidityDate: req.invalidityDate ?? null, statusChangedAt: now },
        tx,
      );
      if (!updated) throw new SignetError('conflict', `certificate ${serial} changed concurrently; retry`);
      await appendAudit(tx, {
        actor: actorOf(who.principal),
        action: status === 'hold' ? 'certificate.held' : 'certificate.revoked',
        target: serial,
        sourceIp: who.sourceIp,
        details: { caId: cert.caId, reason: req.reason, invalidityDate: req.invalidityDate?.toISOString() ?? null },
      });
      for (const hook of this.hooks) await hook(tx, { serial, status, actor: actorOf(who.principal) });
      return { serial, caId: cert.caId, status, revokedAt: now, reason: req.reason };
    });
    this.status.publish({ kind: 'certificate', caId: result.caId, serial });
    this.events.emit('certificateRevoked', { caId: result.caId, reason: result.reason });
    return result;
  }

  async unhold(serialIn: string, who: Requester) {
    authorize(who.principal, 'certificate.unhold');
    const serial = normalizeSerial(serialIn);
    const now = this.ctx.now();
    const result = await this.ctx.db.transaction(async (tx) => {
      const cert = await this.ctx.stores.revocations.get(serial, tx);
      if (!cert) throw new SignetError('not-found', `certificate ${serial} does not exist`);
      this.authorizeOn(who, 'certificate.unhold', cert);
      if (cert.status !== 'hold')
        throw new SignetError('conflict', `certificate ${serial} is not on hold (it is ${cert.status}); only certificateHold can be released`);
      await this.ctx.stores.revocations.releaseHold(serial, now, tx);
      await appendAudit(tx, {
        actor: actorOf(who.principal),
        action: 'certificate.unheld',
        target: serial,
        sourceIp: who.sourceIp,
        details: { caId: cert.caId },
      });
      return { serial, caId: cert.caId, status: 'good' as const };
    });
    this.status.publish({ kind: 'certificate', caId: result.caId, serial });
    return result;
  }

  /**
   * A CA's status or certificate changed without a revocation (rotation, renewal): the issuer
   * index and OCSP of this process and its cluster workers reload it now; other replicas within
   * the issuer cache's 15 s.
   */
  caChanged(caId: string): void {
    this.status.publish({ kind: 'ca', caId });
  }

  /**
   * Revokes one further certificate for a CA's key (a cross-certificate: say the new root's key
   * is suspected, and relying parties that trust only the old root must stop reaching it): it
   * lands on its issuer's CRL, OCSP says revoked, and chains stop offering it. The CA itself is
   * not revoked (a root cannot be; an intermediate is revoked by its own id).
   */
  private async revokeCaCertificate(c: CaCertificateRecord, reason: RevocationReason, who: Requester, now: Date) {
    await this.ctx.db.transaction(async (tx) => {
      if (!(await this.ctx.stores.cas.revokeCaCertificate(c.id, now, reason, tx)))
        throw new SignetError('conflict', `CA certificate ${c.id} is already revoked`);
      await appendAudit(tx, {
        actor: actorOf(who.principal),
        action: 'ca.certificate.revoked',
        target: c.id,
        sourceIp: who.sourceIp,
        details: { caId: c.caId, issuerId: c.issuerId, kind: c.kind, serial: c.serial, reason },
      });
    });
    this.status.publish({ kind: 'certificate', caId: c.issuerId, serial: c.serial });
    // The chains served with the leaves of the CAs under it drop it.
    for (const child of (await this.ctx.stores.cas.list()).filter((x) => x.parentId === c.caId)) this.status.publish({ kind: 'ca', caId: child.id });
    return { id: c.id, status: 'revoked', revokedAt: now, reason };
  }

  /** Revokes an intermediate CA certificate: it lands on its parent's CRL, and the CA stops issuing. */
  async revokeCa(caId: string, reason: RevocationReason, who: Requester) {
    authorize(who.principal, 'ca.revoke');
    if (!REVOKE_REASONS.includes(reason) || reason === 'certificateHold')
      throw new SignetError(
        'bad-request',
        `reason ${reason} cannot be used for a CA; use one of ${REVOKE_REASONS.filter((r) => r !== 'certificateHold').join(', ')}`,
      );
    const now = this.ctx.now();
    // A cross-certificate (x-…) or a certificate replaced by a renewal (s-…) is revoked on its own.
    const further = await this.ctx.stores.cas.caCertificate(caId);
    if (further) return this.revokeCaCertificate(further, reason, who, now);
    let extra: { serial: string; issuerId: string }[] = [];
    const ca = await this.ctx.db.transaction(async (tx) => {
      const row = await this.ctx.stores.cas.get(caId, tx);
      if (!row) throw new SignetError('not-found', `CA ${caId} does not exist`);
      // Root-ness and the parent whose CRL lists it come from the certificates, not from parentId.
      const parent = row.parentId ? await this.ctx.stores.cas.get(row.parentId, tx) : null;
      const parts = inspectCertificate(row.certificateDer);
      const parentParts = parent ? inspectCertificate(parent.certificateDer) : null;
      if (isRootCertificate(parts, parentParts)) throw new SignetError('conflict', `CA ${caId} is a root: a root cannot be revoked, only distrusted`);
      if (!parent || !parentParts) throw new SignetError('conflict', `CA ${caId} was not issued by a CA Signet manages: revoke it at its issuer`);
      const why = notIssuedByReason(parts, parentParts);
      if (why)
        throw new SignetError(
          'conflict',
          `CA ${caId}'s record names CA ${parent.id} as its parent, but ${why}: its record was changed in the database (run \`signet audit verify\`)`,
        );
      if (row.status === 'revoked') throw new SignetError('conflict', `CA ${caId} is already revoked`);
      await this.ctx.stores.cas.markRevoked(caId, now, reason, tx);
      // Its key is what is revoked: cross- and superseded certificates of the same key go too.
      extra = await this.ctx.stores.cas.revokeCaCertificates(caId, now, reason, tx);
      await appendAudit(tx, {
        actor: actorOf(who.principal),
        action: 'ca.revoked',
        target: caId,
        sourceIp: who.sourceIp,
        details: { parent: row.parentId, reason },
      });
      for (const hook of this.caHooks) await hook(tx, { caId, actor: actorOf(who.principal) });
      return row;
    });
    this.status.publish({ kind: 'ca', caId });
    this.status.publish({ kind: 'certificate', caId: ca.parentId!, serial: ca.serial });
    // Cached OCSP answers for them are re-signed too, not left "good" until they expire.
    for (const x of extra) this.status.publish({ kind: 'certificate', caId: x.issuerId, serial: x.serial });
    return { id: caId, status: 'revoked', revokedAt: now, reason };
  }
}
