/**
 * What the OCSP service (ocsp-service.ts) needs from storage, implemented in
 * storage/ocsp-store.ts. The status lookup on a cache miss runs on the driver.
 */
import type { CaRecord, OcspResponderRecord } from '../model/ca.js';
import type { IssuedWithSerial } from '../model/certificate.js';
import type { Tx } from '../storage/database.js';

export interface OcspStore {
  /** Every CA, with what the issuer index needs. */
  issuers(): Promise<Pick<CaRecord, 'id' | 'certificateDer' | 'keyId'>[]>;
  /** Every certificate (leaf or CA) with this serial, with its issuer and status (hot). */
  issuedWithSerial(serial: string): Promise<IssuedWithSerial[]>;
  /** The CA whose certificate signed by `parentId` has this serial: a child CA, or the key of a cross- or superseded certificate. */
  childCaId(parentId: string, serial: string): Promise<string | null>;
  /** The CA that issued the leaf with this serial. */
  issuerOfLeaf(serial: string): Promise<string | null>;
  /** Serials whose status changed at or after `since` (at most `limit`). */
  statusChangedSince(since: Date, limit: number): Promise<string[]>;
  /** The responder certificate of the CA that expires last, if it is still valid at `now`. */
  currentResponder(caId: string, now: Date): Promise<OcspResponderRecord | null>;
  insertResponder(responder: OcspResponderRecord, tx?: Tx): Promise<void>;
}
