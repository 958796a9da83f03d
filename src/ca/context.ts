import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import type { KeyStore } from '../keystore/key-store.js';
import type { Database } from '../storage/database.js';
import type { AuditLog } from './audit.js';
import type { CheckpointedLog } from './audit-checkpoints.js';
import type { AuditSearchStore } from './audit-query.js';
import type { VerifyStores } from './audit-verify.js';
import type { SealStores } from './row-seal.js';
import type { RevocationEvents, TokenStore } from './tokens.js';

/** The stores the authority layer uses (storage/stores.ts builds them), each typed by what its consumers declare. */
export interface CaStores {
  audit: AuditLog & CheckpointedLog & AuditSearchStore & VerifyStores['audit'] & SealStores['audit'] & RevocationEvents;
  tokens: TokenStore & VerifyStores['tokens'] & SealStores['tokens'];
  integrity: VerifyStores['integrity'] & SealStores['integrity'];
}

/** What the authority layer needs from the outside world; the clock is injectable for tests. */
export interface CaContext {
  db: Database;
  stores: CaStores;
  keys: KeyStore;
  config: Pick<Config, 'publicUrl'> & Partial<Config>;
  log: Logger;
  now: () => Date;
}

export const caUrls = (publicUrl: string, caId: string) => ({
  caIssuers: `${publicUrl}/pki/${caId}.crt`,
  crl: `${publicUrl}/pki/${caId}.crl`,
  ocsp: `${publicUrl}/ocsp`,
});
