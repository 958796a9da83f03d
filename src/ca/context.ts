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

export const caUrls = (publicUrl: string, caId: string) => ({
  caIssuers: `${publicUrl}/pki/${caId}.crt`,
  crl: `${publicUrl}/pki/${caId}.crl`,
  ocsp: `${publicUrl}/ocsp`,
});
