/**
 * The stores of one Database: what the composition root (src/runtime/open.ts) hands to the
 * code above storage, each typed there by the interfaces its consumers declare.
 */
import { AuditStore } from './audit-store.js';
import { BackupStore } from './backup-store.js';
import type { Database } from './database.js';
import { InstallationStore } from './installation-store.js';
import { IntegrityStore } from './integrity-store.js';
import { SettingStore } from './setting-store.js';
import { TokenStore } from './token-store.js';

export function createStores(db: Database) {
  return {
    audit: new AuditStore(db),
    tokens: new TokenStore(db),
    settings: new SettingStore(db),
    integrity: new IntegrityStore(db),
    installation: new InstallationStore(db),
    backup: new BackupStore(db),
  };
}
