/**
 * Builds every store over one StorageDatabase: the one place that knows which implementation serves
 * which consumer-declared interface (CaStores, ca/context.ts), plus the stores only the
 * composition root and the CLI use (settings, installation counts, backup).
 */
import type { CaStores } from '../ca/context.js';
import type { InventoryStore } from '../ca/inventory.js';
import { storageOf, type Database } from './database.js';
import { createAcmeStore } from './acme-store.js';
import { AuditStore } from './audit-store.js';
import { BackupStore } from './backup-store.js';
import { caStore } from './ca-store.js';
import { certificateStore } from './certificate-store.js';
import { crlStore } from './crl-store.js';
import { InstallationStore } from './installation-store.js';
import { IntegrityStore } from './integrity-store.js';
import { ocspStore } from './ocsp-store.js';
import { SettingStore } from './setting-store.js';
import { TokenStore } from './token-store.js';
import { EnrollmentStore } from './enrollment-store.js';
import { expiryStore } from './expiry-store.js';

export function createStores(database: Database) {
  const db = storageOf(database);
  const certificates = certificateStore(db);
  const stores = {
    certificates,
    revocations: certificates,
    cas: caStore(db),
    crls: crlStore(db),
    ocsp: ocspStore(db),
    acme: createAcmeStore(db),
    inventory: { chunk: (...a: Parameters<InventoryStore['chunk']>) => db.inventoryReads().chunk(...a) },
    audit: new AuditStore(db),
    tokens: new TokenStore(db),
    enrollments: new EnrollmentStore(db),
    integrity: new IntegrityStore(db),
    expiry: expiryStore(db),
    settings: new SettingStore(db),
    installation: new InstallationStore(db),
    backup: new BackupStore(db),
  };
  const forTheAuthority: CaStores = stores; // every consumer-declared interface is served
  void forTheAuthority;
  return stores;
}
