/**
 * The key-encryption key (KEK): from SIGNET_MASTER_KEY, or a 0600 file in the data directory
 * created on first start. Never invents a new KEK for a store that already holds sealed keys:
 * that would silently orphan the CA.
 */
import { createHmac } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { SignetError } from '../errors.js';

export interface Kek {
  readonly key: Buffer;
  /** Public identifier of the KEK (not secret): lets start-up tell "wrong key" from "corrupt store". */
  readonly id: string;
  readonly source: 'environment' | 'file';
}

export const kekId = (key: Buffer): string => createHmac('sha256', key).update('signet kek id v1').digest('hex').slice(0, 16);

export function masterKeyPath(dataDir: string): string { return join(dataDir, 'master.key'); }

export function resolveKek(opts: { masterKey?: string; dataDir: string; storeHasKeys: boolean }): Kek {
  if (opts.masterKey) {
    const key = Buffer.from(opts.masterKey, 'base64');
    return { key, id: kekId(key), source: 'environment' };
  }
  const file = masterKeyPath(opts.dataDir);
  if (existsSync(file)) {
    const mode = statSync(file).mode & 0o777;
    if (mode & 0o077) {
      throw new SignetError('key-store', `${file} is readable by other users (mode ${mode.toString(8)}); run chmod 600 ${file}`);
    }
    const key = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64');
    if (key.length !== 32) throw new SignetError('key-store', `${file} does not hold a base64 32-byte master key (it is truncated or corrupted); restore it from your backup`);
    return { key, id: kekId(key), source: 'file' };
  }
  if (opts.storeHasKeys) {
    throw new SignetError('key-store',
      `the key store holds sealed CA keys but no master key was given: set SIGNET_MASTER_KEY or restore ${file}`);
  }
  const key = randomBytes(32);
  writeFileSync(file, key.toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
  return { key, id: kekId(key), source: 'file' };
}
