/**
 * What the authority layer needs from stored CAs, declared here by its consumers (hierarchy,
 * issuers, revocation, the CRL publisher, the OCSP service, the PKI and CA routes) and
 * implemented in storage/ca-store.ts.
 */
import type { CaRecord, CaRevocationEvent, NewCaRecord } from '../model/ca.js';
import type { Tx } from '../storage/database.js';

/** What the issuer index and readiness check need of an online, active CA. */
export type OnlineCa = Pick<CaRecord, 'id' | 'keyId' | 'parentId' | 'pathLen'>;

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
}
