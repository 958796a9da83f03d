import type { ExpiryStore } from './expiry-alerts.js';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import type { KeyStore } from '../keystore/key-store.js';
import type { Database } from '../storage/database.js';
import type { AcmeStore } from '../acme/store.js';
import type { CaStore } from './ca-store.js';
import type { CertificateStore, RevocationStore } from './certificate-store.js';
import type { CrlStore } from './crl-store.js';
import type { OcspStore } from './ocsp-store.js';
import type { InventoryStore } from './inventory.js';
import type { AuditLog } from './audit.js';
import type { CheckpointedLog } from './audit-checkpoints.js';
import type { AuditSearchStore } from './audit-query.js';
import type { VerifyStores } from './audit-verify.js';
import type { SealStores } from './row-seal.js';
import type { RevocationEvents, TokenStore } from './tokens.js';
import type { EnrollmentStore } from './enrollment-credentials.js';

/** What the authority layer needs from the outside world; the clock is injectable for tests. */
export interface CaContext {
  db: Database;
  keys: KeyStore;
  config: Pick<Config, 'publicUrl'> & Partial<Config>;
  log: Logger;
  now: () => Date;
  /** Storage, as the interfaces its consumers declare (built by storage/stores.ts createStores). */
  stores: CaStores;
}

/** Every consumer-declared store, one field each. */
export interface CaStores {
  certificates: CertificateStore;
  revocations: RevocationStore;
  cas: CaStore;
  crls: CrlStore;
  ocsp: OcspStore;
  acme: AcmeStore;
  inventory: InventoryStore;
  audit: AuditLog & CheckpointedLog & AuditSearchStore & VerifyStores['audit'] & SealStores['audit'] & RevocationEvents;
  tokens: TokenStore & VerifyStores['tokens'] & SealStores['tokens'];
  enrollments: EnrollmentStore;
  integrity: VerifyStores['integrity'] & SealStores['integrity'];
  expiry: ExpiryStore;
}

/**
 * A CRL's URL: shard 0 is the CA's unsharded CRL (/pki/<caId>.crl), shard k /pki/<caId>.s<k>.crl
 * (a dot cannot occur in a CA id), and a delta CRL adds -delta before .crl.
 */
export const crlUrl = (publicUrl: string, caId: string, shard: number, delta = false): string =>
  `${publicUrl}/pki/${caId}${shard > 0 ? `.s${shard}` : ''}${delta ? '-delta' : ''}.crl`;

/** The CRL shard a new leaf goes into: null (the unsharded CRL) with one shard, else 1..shards
 * from the (random) serial, so shards fill evenly. Stored on the certificate row. */
export function crlShardFor(serial: Buffer, shards: number): number | null {
  if (shards <= 1) return null;
  return 1 + (serial.readUInt32BE(serial.length - 4) % shards);
}

export const caUrls = (publicUrl: string, caId: string) => ({
  caIssuers: `${publicUrl}/pki/${caId}.crt`,
  crl: `${publicUrl}/pki/${caId}.crl`,
  ocsp: `${publicUrl}/ocsp`,
});
