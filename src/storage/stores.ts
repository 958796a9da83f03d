/**
 * Builds every store over one Database: the one place that knows which implementation serves
 * which consumer-declared interface (CaStores, ca/context.ts). Called by the composition root.
 */
import type { CaStores } from '../ca/context.js';
import type { Database } from './database.js';
import { createAcmeStore } from './acme-store.js';
import { caStore } from './ca-store.js';
import { certificateStore } from './certificate-store.js';
import { crlStore } from './crl-store.js';
import { ocspStore } from './ocsp-store.js';

export function createStores(db: Database): CaStores {
  const certificates = certificateStore(db);
  return {
    certificates,
    revocations: certificates,
    cas: caStore(db),
    crls: crlStore(db),
    ocsp: ocspStore(db),
    acme: createAcmeStore(db),
  };
}
