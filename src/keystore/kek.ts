/**
 * The key-encryption key (KEK): from SIGNET_MASTER_KEY, or a 0600 file in the data directory
 * created on first start. Never invents a new KEK for a store that already holds sealed keys:
 * that would silently orphan the CA.
 */
import { createHmac } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, linkSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { SignetError } from '../errors.js';

export interface Kek {
  readonly key: Buffer;
  /** Public identifier of the KEK (not secret): lets start-up tell "wrong key" from "corrupt store". */
  readonly id: string;
  readonly source: 'environment' | 'file';
}

export const kekId = (key: Buffer): string => createHmac('sha256', key).update('signet kek id v1').digest('hex').slice(0, 16);

export function masterKeyPath(dataDir: string): string {
  return join(dataDir, 'master.key');
}

export function resolveKek(opts: { masterKey?: string; dataDir: string; storeHasKeys: boolean }): Kek {
  if (opts.masterKey) {
    const key = Buffer.from(opts.masterKey, 'base64');
    return { key, id: kekId(key), source: 'environment' };
  }
  const file = masterKeyPath(opts.dataDir);
  if (existsSync(file)) return readKeyFile(file);
  if (opts.storeHasKeys) {
    throw new SignetError('key-store', `the key store holds sealed CA keys but no master key was given: set SIGNET_MASTER_KEY or restore ${file}`);
  }
  const key = randomBytes(32);
  return createKeyFile(file, key) ? { key, id: kekId(key), source: 'file' } : readKeyFile(file);
}

function readKeyFile(file: string): Kek {
  const mode = statSync(file).mode & 0o777;
  if (mode & 0o077) {
    throw new SignetError('key-store', `${file} is readable by other users (mode ${mode.toString(8)}); run chmod 600 ${file}`);
  }
  const key = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64');
  if (key.length !== 32)
    throw new SignetError('key-store', `${file} does not hold a base64 32-byte master key (it is truncated or corrupted); restore it from your backup`);
  return { key, id: kekId(key), source: 'file' };
}

/**
 * Writes the key to a private temporary file, syncs it, then links it into place: the link
 * either appears whole or fails because another process starting at the same moment linked
 * its own first (false: use theirs). Readers never see a half-written key, and a kill at any
 * point leaves either no master.key or a complete one.
 */
function createKeyFile(file: string, key: Buffer): boolean {
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, key.toString('base64') + '\n');
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(tmp, file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  } finally {
    unlinkSync(tmp);
  }
  const dir = openSync(dirname(file), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
  return true;
}
