/**
 * What the authority layer needs from stored certificates, declared here by its consumers
 * (issuance, inventory, the CLI's bulk revocation; revocation.ts for RevocationStore) and
 * implemented in storage/certificate-store.ts. Hot methods run on the driver, the rest through
 * the ORM; callers cannot tell.
 */
import type { CertificateRecord, CertificateStatusRecord, NewCertificateRecord, RevocationChange, StoredStatus } from '../model/certificate.js';
import type { Tx } from '../storage/database.js';
import type { BuildAudit, CredentialSpends, Recheck } from '../storage/issuance-writer.js';

export interface CertificateStore {
  /** One certificate, all of it; null when there is none. */
  get(serial: string): Promise<CertificateRecord | null>;
  /** Public status of one certificate (hot: relying parties poll it). */
  status(serial: string): Promise<CertificateStatusRecord | null>;
  /**
   * Commits issued certificates with the audit rows `buildAudit` derives from the chain head,
   * in one transaction, before returning (the group commit of ca/commit-queue.ts). `recheck`
   * runs for each certificate inside it, under the serialisation revocation uses, and throws to
   * store nothing.
   */
  insertIssued(certs: NewCertificateRecord[], buildAudit: BuildAudit, recheck?: Recheck, spends?: CredentialSpends): Promise<void>;
  /** Serials of a CA's certificates that are good or on hold (what "revoke all" revokes). */
  unrevokedSerials(caId: string): Promise<string[]>;
}

/** Revocation's writes, each inside the transaction that records its audit event. */
export interface RevocationStore {
  get(serial: string, tx?: Tx): Promise<CertificateRecord | null>;
  /** Writes `change` if the certificate is still `from` (a concurrent change makes it false). */
  setRevoked(serial: string, from: StoredStatus, change: RevocationChange, tx?: Tx): Promise<boolean>;
  /** Back to good, with no revocation state. */
  releaseHold(serial: string, at: Date, tx?: Tx): Promise<void>;
}
