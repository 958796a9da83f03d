/**
 * The row MACs of a test environment's Signet (src/ca/row-integrity.ts), computed from the
 * master key in its data directory: what only a holder of the master key can compute. Tests use
 * it to find rows by their keyed hash, and to show that what an attacker without the key writes
 * does not verify.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { kekId } from '../../src/keystore/kek.js';
import { SealedKeyStore } from '../../src/keystore/sealed-key-store.js';
import { RowIntegrity } from '../../src/ca/row-integrity.js';
import type { TestEnv } from './env.js';

export function masterKey(env: Pick<TestEnv, 'dataDir'>): Buffer {
  return Buffer.from(readFileSync(join(env.dataDir, 'master.key'), 'utf8').trim(), 'base64');
}

export function rowMacs(env: Pick<TestEnv, 'dataDir'>): RowIntegrity {
  const key = masterKey(env);
  // deriveSecret needs only the key; no database is opened.
  const store = new SealedKeyStore(undefined as never, { key, id: kekId(key), source: 'file' });
  return new RowIntegrity(store);
}
