/**
 * Group commit for issuance. Each certificate is still returned only after its own row and
 * audit event are committed, but concurrent issuances share one transaction: one lock, one
 * read of the audit head, one insert per table, one fsync. While a batch commits, the next
 * one gathers, so batches grow exactly when load does and a lone request waits for nobody.
 *
 * If a batch fails (say one row violates a unique index), its items are retried one by one,
 * so one bad item fails alone.
 *
 * A certificate is signed before it is stored, and a revocation may commit in between: the
 * commit re-reads, under the same write serialisation revocation uses, whether the issuing CA
 * was revoked and whether a renewal's predecessor is still good, and stores nothing (409, the
 * signature discarded) if not. So no certificate is recorded after its CA's or its
 * predecessor's revocation (attack round 2, finding B). Likewise a certificate signed by a CA
 * that was replaced by a successor meanwhile (a rotation committed by another process, whose
 * issuer cache had not heard of it yet) is not stored: IssuerReplaced tells issuance to sign
 * it again with the successor, so no certificate from a retiring CA is recorded after the
 * rotation committed, in any process.
 *
 * An enrollment pays for its certificate with a use of its credential in the same transaction
 * (enrollment-credentials.ts credentialSpends): the use is spent exactly when the certificate
 * is stored; a certificate its credential cannot pay for (no uses left, revoked meanwhile) is
 * left out of the batch and refused, and the rest of the batch commits.
 */
import type { Database } from '../storage/database.js';
import type { NewCertificateRecord } from '../model/certificate.js';
import { auditBatch, type AuditInput } from './audit.js';
import type { CertificateStore } from './certificate-store.js';
import { SignetError } from '../errors.js';
import { faultPoint } from './fault-points.js';
import type { CredentialSpends, IssuanceState } from '../storage/issuance-writer.js';
import type { CredentialUse } from './enrollment-credentials.js';

/** The spends of a batch's credential uses, their audit events and the certificates left unpaid (enrollment-credentials.ts credentialSpends). */
export type SpendsFor = (uses: CredentialUse[]) => { spends: CredentialSpends; audits: AuditInput[]; refusals: Map<string, Error> };

interface Item {
  row: NewCertificateRecord;
  audit: AuditInput;
  /** The stored enrollment credential this certificate spends a use of. */
  credentialId?: string;
  resolve: () => void;
  reject: (e: unknown) => void;
}

export class CommitQueue {
  private queue: Item[] = [];
  private running = false;

  /** `db`: the audit chain's (auditBatch); the rows go through `store`, on the driver. */
  constructor(
    private readonly db: Database,
    private readonly store: Pick<CertificateStore, 'insertIssued'>,
    private readonly spendsFor: SpendsFor,
    private readonly maxBatch = 200,
  ) {}

  commit(row: NewCertificateRecord, audit: AuditInput, credentialId?: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ row, audit, ...(credentialId ? { credentialId } : {}), resolve, reject });
      if (!this.running) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length) {
        // One turn of the event loop first: requests already read from their sockets reach the
        // queue and share this commit, instead of each paying for its own.
        await new Promise<void>((r) => setImmediate(r));
        const batch = this.queue.splice(0, this.maxBatch);
        try {
          const unpaid = await this.write(batch);
          for (const i of batch) {
            const refused = unpaid?.get(i.row.serial);
            if (refused) i.reject(refused);
            else i.resolve();
          }
        } catch (e) {
          if (batch.length === 1) {
            batch[0]!.reject(e);
            continue;
          }
          for (const i of batch) {
            try {
              const refused = (await this.write([i]))?.get(i.row.serial);
              if (refused) i.reject(refused);
              else i.resolve();
            } catch (err) {
              i.reject(err);
            }
          }
        }
      }
    } finally {
      this.running = false;
    }
  }

  /** Writes a batch; returns the refusals of the certificates their credentials could not pay for (not stored). */
  private async write(batch: Item[]): Promise<Map<string, Error> | undefined> {
    const uses = batch.flatMap((b) => (b.credentialId ? [{ credentialId: b.credentialId, serial: b.row.serial }] : []));
    // The spends are settled in the transaction before the certificates are written and the audit built.
    const paid = uses.length ? this.spendsFor(uses) : undefined;
    await this.store.insertIssued(
      batch.map((b) => b.row),
      (head) => {
        const audits = batch.filter((b) => !paid?.refusals.has(b.row.serial)).map((b) => b.audit);
        return auditBatch(this.db, head, paid ? [...audits, ...paid.audits] : audits);
      },
      stillIssuable,
      paid?.spends,
    );
    faultPoint('issue:committed');
    return paid?.refusals;
  }
}

/** The certificate's CA was replaced by a successor after it signed: sign again (issuance.ts). */
export class IssuerReplaced extends SignetError {
  constructor(
    readonly caId: string,
    serial: string,
  ) {
    super(
      'conflict',
      `CA ${caId} was replaced by its successor while certificate ${serial} was being issued; nothing was stored (the signature was discarded); ask again`,
    );
  }
}

/** Refuses a signed certificate whose CA or predecessor was revoked (or held), or whose CA was replaced, since it was signed. */
export function stillIssuable(c: NewCertificateRecord, s: IssuanceState): void {
  if (s.caStatus === 'revoked') {
    throw new SignetError(
      'conflict',
      `CA ${c.caId} was revoked while certificate ${c.serial} was being issued; nothing was stored (the signature was discarded)`,
    );
  }
  if (s.caStatus === 'retiring' || s.caStatus === 'retired') throw new IssuerReplaced(c.caId, c.serial);
  if (c.predecessorSerial && s.predecessorStatus !== 'good') {
    const now = s.predecessorStatus === 'hold' ? 'put on hold' : s.predecessorStatus === null ? 'deleted' : s.predecessorStatus;
    throw new SignetError(
      'conflict',
      `certificate ${c.predecessorSerial} was ${now} while it was being renewed; nothing was stored (the signature was discarded); issue a new certificate`,
    );
  }
}
