/**
 * What the authority layer needs from stored CAs, declared here by its consumers (hierarchy,
 * issuers, revocation, the CRL publisher, the OCSP service, the PKI and CA routes) and
 * implemented in storage/ca-store.ts.
 */
import type { CaCertificateRecord, CaRecord, CaRevocationEvent, NewCaCertificateRecord, NewCaRecord } from '../model/ca.js';
import type { Tx } from '../storage/database.js';

/** What the issuer index and readiness check need of an online, active CA. */
export type OnlineCa = Pick<CaRecord, 'id' | 'keyId' | 'parentId' | 'pathLen' | 'predecessorId' | 'createdAt'>;

export interface CaStore {
  get(id: string, tx?: Tx): Promise<CaRecord | null>;
  exists(id: string): Promise<boolean>;
  byFingerprint(fingerprint: string): Promise<CaRecord | null>;
  /** Every CA, oldest first. */
  list(): Promise<CaRecord[]>;
  /** Active CAs with an online key, oldest first; `intermediates`: only those with a parent. */
  onlineActive(opts?: { intermediates?: boolean }): Promise<OnlineCa[]>;
  insert(ca: NewCaRecord, tx?: Tx): Promise<CaRecord>;
  /** The key has left the online store: the CA is offline. */
  markOffline(id: string, tx?: Tx): Promise<void>;
  /** Points the CA at another copy of its key (`signet ca move-key`): only from the key it has now. */
  moveKey(id: string, from: string, to: string, tx: Tx): Promise<void>;
  markRevoked(id: string, at: Date, reason: string, tx?: Tx): Promise<void>;
  /** `ca.revoked` audit events, oldest first: of one CA, or of every CA. */
  revocationEvents(action: string, caId?: string): Promise<CaRevocationEvent[]>;

  // ---- succession (succession.ts, root-rollover.ts) ----
  /** The CA that replaced `id`, if any. */
  successorOf(id: string, tx?: Tx): Promise<CaRecord | null>;
  /** active → retiring, only from active (false if the CA was not active). */
  markRetiring(id: string, since: Date, overlapEndsAt: Date | null, tx: Tx): Promise<boolean>;
  /** retiring → retired, only from retiring. */
  markRetired(id: string, tx: Tx): Promise<boolean>;
  /** A new certificate for the same key (`signet ca renew`), only over the certificate with fingerprint `from`. */
  recertify(id: string, from: string, cert: Pick<CaRecord, 'certificateDer' | 'serial' | 'fingerprint' | 'notBefore' | 'notAfter'>, tx: Tx): Promise<void>;
  /** The latest end of validity among the certificates the CA signed (leaves, child CAs, cross-certificates). */
  lastNotAfterSigned(caId: string): Promise<Date | null>;
  /** Whether any certificate the CA signed (leaf, child CA, cross-certificate) is still unexpired at `now`. */
  hasUnexpiredCertificates(caId: string, now: Date): Promise<boolean>;
  /** Further certificates for CA keys: of `caId` (certifying its key) or signed by it; every one without a filter. */
  caCertificates(filter?: { caId?: string; issuerId?: string }): Promise<CaCertificateRecord[]>;
  caCertificate(id: string): Promise<CaCertificateRecord | null>;
  insertCaCertificate(c: NewCaCertificateRecord, tx: Tx): Promise<CaCertificateRecord>;
  /** One further certificate revoked on its own, only from good (false if it was not). */
  revokeCaCertificate(id: string, at: Date, reason: string, tx: Tx): Promise<boolean>;
  /** The further certificates of a revoked CA's key are revoked with it; returns them (serial and issuer). */
  revokeCaCertificates(caId: string, at: Date, reason: string, tx: Tx): Promise<{ serial: string; issuerId: string }[]>;
}
