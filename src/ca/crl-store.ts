/**
 * What the CRL publisher (crl-publisher.ts) needs from storage, implemented in
 * storage/crl-store.ts. Reading the revoked entries and writing the CRL run on the driver.
 */
import type { RevokedChildCa } from '../model/ca.js';
import type { RevokedEntry } from '../model/certificate.js';
import type { CrlHead, CrlRecord, CrlScope, NewCrlRecord } from '../model/crl.js';
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

export interface StatusChangeRow {
  serial: string;
  status: string;
  revokedAt: Date | null;
  revocationReason: string | null;
  invalidityDate: Date | null;
  statusChangedAt: Date | null;
}

export interface CrlStore {
  /** CAs whose CRL this service keeps fresh: key online, active or retired. */
  publishingCaIds(): Promise<string[]>;
  /** The newest CRL of one scope (shard, full or delta). */
  head(caId: string, scope?: CrlScope): Promise<CrlHead | null>;
  /** Shards (k >= 1) the CA has published CRLs for: they stay published when SIGNET_CRL_SHARDS shrinks. */
  shardsInUse(caId: string): Promise<number[]>;
  get(caId: string, number: bigint): Promise<CrlRecord | null>;
  /** Whether a leaf of the CA in this shard changed status (or, for shard 0, a child CA was revoked) at or after `since`. */
  changedSince(caId: string, shard: number, since: Date): Promise<boolean>;
  /** The shard a certificate was issued into (0: none). */
  shardOf(serial: string): Promise<number>;
  /** The shard's leaves whose status changed at or after `since` and that expire after `notAfterAfter`: a delta CRL's rows. */
  changes(caId: string, shard: number, since: Date, notAfterAfter: Date): Promise<StatusChangeRow[]>;
  /** Allocates the CA's next CRL number (an atomic increment: strictly increasing across processes). */
  nextNumber(caId: string): Promise<bigint>;
  /** The CA's revoked and held leaves of one shard (0: without a shard) that expire after `notAfterAfter`, in serial order. */
  openRevoked(caId: string, shard: number, notAfterAfter: Date): Promise<RevokedReader>;
  /** Child CAs whose rows say they are revoked, and revoked cross- or superseded certificates this CA signed. */
  revokedChildren(caId: string): Promise<RevokedChildCa[]>;
  /** Stores the CRL, prunes the CA's older ones, and appends its audit rows, in one transaction. */
  write(crl: NewCrlRecord, buildAudit: BuildAudit): Promise<void>;
}
