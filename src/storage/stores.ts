/** The stores the authority layer is given (ca/context.ts CaStores), built once over a Database. */
import type { CaStores } from '../ca/context.js';
import type { Database } from './database.js';
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
  };
}
