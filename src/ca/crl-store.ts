/**
 * What the CRL publisher (crl-publisher.ts) needs from storage, implemented in
 * storage/crl-store.ts. Reading the revoked entries and writing the CRL run on the driver.
 */
import type { RevokedChildCa } from '../model/ca.js';
import type { RevokedEntry } from '../model/certificate.js';
import type { CrlHead, CrlRecord, NewCrlRecord } from '../model/crl.js';
import type { BuildAudit } from '../storage/issuance-writer.js';

/**
 * A CA's revoked and held certificates, read inside one read transaction: `count` (which sizes
 * the CRL encoder's buffer) and the rows `batches` yields come from the same snapshot. `close`
 * ends the transaction; call it in a finally.
 */
export interface RevokedReader {
  count: number;
  batches(batchSize: number): AsyncGenerator<RevokedEntry[]>;
  close(): Promise<void>;
}

export interface CrlStore {
  /** CAs whose CRL this service keeps fresh: key online, active or retired. */
  publishingCaIds(): Promise<string[]>;
  head(caId: string): Promise<CrlHead | null>;
  get(caId: string, number: bigint): Promise<CrlRecord | null>;
  /** Whether a leaf of the CA changed status, or a child CA was revoked, at or after `since`. */
  changedSince(caId: string, since: Date): Promise<boolean>;
  /** Allocates the CA's next CRL number (an atomic increment: strictly increasing across processes). */
  nextNumber(caId: string): Promise<bigint>;
  /** The CA's revoked and held leaves that expire after `notAfterAfter`, in serial order. */
  openRevoked(caId: string, notAfterAfter: Date): Promise<RevokedReader>;
  /** Child CAs whose rows say they are revoked, and revoked cross- or superseded certificates this CA signed. */
  revokedChildren(caId: string): Promise<RevokedChildCa[]>;
  /** Stores the CRL, prunes the CA's older ones, and appends its audit rows, in one transaction. */
  write(crl: NewCrlRecord, buildAudit: BuildAudit): Promise<void>;
}
