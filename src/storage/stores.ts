/**
 * Builds every store over one Database: the one place that knows which implementation serves
 * which consumer-declared interface (CaStores, ca/context.ts). Called by the composition root.
 */
import type { CaStores } from '../ca/context.js';
import type { Database } from './database.js';
import { createAcmeStore } from './acme-store.js';

export function createStores(db: Database): CaStores {
  return {
    acme: createAcmeStore(db),
  };
}
