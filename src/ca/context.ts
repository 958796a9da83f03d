import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import type { KeyStore } from '../keystore/key-store.js';
import type { Database } from '../storage/database.js';
import type { CaStore } from './ca-store.js';
import type { CertificateStore, RevocationStore } from './certificate-store.js';
import type { CrlStore } from './crl-store.js';
import type { OcspStore } from './ocsp-store.js';

/** The stores the authority layer reads and writes through (built by storage/stores.ts createStores). */
export interface CaStores {
  certificates: CertificateStore;
  revocations: RevocationStore;
  cas: CaStore;
  crls: CrlStore;
  ocsp: OcspStore;
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
