/**
 * What the data directory says about the database next to it.
 *
 * On a first start the files appear in a fixed order: the migrations commit, then
 * master.key is created (after a marker row saying so is committed), then the hierarchy and
 * admin token commit, and only then is admin-token written. So:
 *   - master.key or admin-token next to a database WITHOUT Signet's tables means the database
 *     was lost, truncated or replaced — never a first start, not even an interrupted one;
 *   - a database with the tables but no CA is an interrupted first start only if it has the
 *     marker for the master.key in use, no sealed keys, and there is no admin-token.
 * Anything else refuses to start, saying how to restore or to re-initialise on purpose,
 * instead of founding a new CA over the remains of the old one. Files are always read before
 * the database, so a first start racing in another process is never mistaken for a loss.
 */
import { closeSync, existsSync, fsyncSync, openSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import { SignetError } from '../errors.js';
import { masterKeyPath } from '../keystore/kek.js';
import { CHECKPOINT_FILE } from '../ca/audit-checkpoints.js';
import type { SettingRecord } from '../model/setting.js';
import type { Tx } from '../storage/database.js';
import type { DatabaseTarget } from '../storage/database-url.js';
import { redactUrl } from '../storage/database-url.js';
import { hasSignetSchema } from '../storage/schema-probe.js';

export const ADMIN_TOKEN_FILE = 'admin-token';
/** Setting row committed just before Signet creates <data>/master.key for this database. */
export const MASTER_KEY_MARKER = 'datadir.masterKeyFile';

const RECOVER =
  'restore the database from a backup (signet restore <file>; see docs/deployment.md, "Backup and restore"), ' +
  'or start a new CA on purpose with `signet init --force`, which moves master.key, admin-token and audit-checkpoints aside (renamed with a timestamp, never deleted)';

/** The Setting rows these checks read and write (storage/setting-store.ts). */
export interface MarkerSettings {
  get(key: string, tx?: Tx): Promise<SettingRecord | null>;
  /** Inserts the row unless the key exists already. */
  insertIfAbsent(key: string, value: string): Promise<void>;
}

/** What these checks count in the database (storage/installation-store.ts). */
export interface Holdings {
  count(what: 'cas' | 'keys' | 'certificates' | 'events', tx?: Tx): Promise<number>;
}

const describeDb = (t: DatabaseTarget) => (t.provider === 'sqlite' ? `the SQLite database ${t.location}` : `the PostgreSQL database ${redactUrl(t.location)}`);

/** The files in the data directory that only an existing CA leaves behind. */
export function remainsOf(config: Config): string[] {
  const found: string[] = [];
  if (existsSync(masterKeyPath(config.dataDir))) found.push('master.key');
  if (existsSync(join(config.dataDir, ADMIN_TOKEN_FILE))) found.push(ADMIN_TOKEN_FILE);
  if (existsSync(join(config.dataDir, CHECKPOINT_FILE))) found.push(CHECKPOINT_FILE);
  return found;
}

/** Before migrating: refuses a database without Signet's tables next to the remains of a CA. */
export async function refuseLostDatabase(config: Config, target: DatabaseTarget): Promise<void> {
  const remains = remainsOf(config); // first: see the header
  if (!remains.length || (await hasSignetSchema(target))) return;
  throw new SignetError(
    'configuration',
    `${describeDb(target)} has no Signet tables (it is empty, missing or was replaced), but ${config.dataDir} holds ${remains.length > 1 ? `${remains.slice(0, -1).join(', ')} and ${remains[remains.length - 1]}` : remains[0]} of an existing CA; ` +
      `Signet will not start a new CA over it: ${RECOVER}`,
  );
}

/**
 * Notes in the database that Signet is about to create master.key for it, when it is: a
 * master.key without this marker next to a CA-less database was not made for that database.
 */
export async function markMasterKeyCreation(settings: MarkerSettings, config: Config, storeHasKeys: boolean): Promise<void> {
  if (storeHasKeys || config.SIGNET_MASTER_KEY || existsSync(masterKeyPath(config.dataDir))) return;
  await settings.insertIfAbsent(MASTER_KEY_MARKER, `created ${new Date().toISOString()}`);
}

/**
 * Inside the bootstrap transaction, once it has seen no CA: refuses what an interrupted first
 * start cannot explain. Runs under the write lock, so a bootstrap committed by another process
 * is seen as a CA before any of its files could be.
 */
export async function refuseBootstrapOverRemains(stores: { installation: Holdings; settings: MarkerSettings }, tx: Tx, config: Config): Promise<void> {
  const where = config.dataDir;
  if (existsSync(join(where, ADMIN_TOKEN_FILE))) {
    throw new SignetError(
      'configuration',
      `the database holds no CA, but ${join(where, ADMIN_TOKEN_FILE)} was written for one: the database was emptied or replaced; ${RECOVER}`,
    );
  }
  // What only a CA that existed leaves in the database: a new hierarchy founded over it would
  // inherit certificates, history and keys it never issued (and hide that the CAs were deleted).
  const keys = await stores.installation.count('keys', tx);
  const certificates = await stores.installation.count('certificates', tx);
  const events = await stores.installation.count('events', tx);
  const found = [keys && `${keys} sealed key(s)`, certificates && `${certificates} certificate(s)`, events && `${events} audit event(s)`].filter(Boolean);
  if (found.length) {
    throw new SignetError(
      'configuration',
      `the database holds ${found.join(', ')} but no CA: it is damaged (its CAs were deleted); restore it from a backup (signet restore <file> into an empty database; see docs/deployment.md) — Signet will not found a new CA over it`,
    );
  }
  if (!config.SIGNET_MASTER_KEY && existsSync(masterKeyPath(where)) && !(await stores.settings.get(MASTER_KEY_MARKER, tx))) {
    throw new SignetError(
      'configuration',
      `the database holds no CA and was not initialised with ${masterKeyPath(where)} (it comes from another or an earlier database); ${RECOVER}. ` +
        'To bring your own master key to a first start, set SIGNET_MASTER_KEY instead of placing master.key',
    );
  }
  // Checked after the database: opening the audit trail writes a checkpoint of what it holds.
  if (existsSync(join(where, CHECKPOINT_FILE))) {
    throw new SignetError(
      'configuration',
      `the database holds no CA, but ${join(where, CHECKPOINT_FILE)} pins the audit trail of one: the database was emptied or replaced; ${RECOVER}`,
    );
  }
}

/**
 * `signet init --force`: renames master.key, admin-token and audit-checkpoints to <name>.replaced-<timestamp>,
 * after checking that the database holds no CA (those files would be all that opens it). On
 * SQLite, a -wal/-shm left without its main file goes aside too: SQLite would replay it into
 * the new database. Returns what was moved, as [from, to] paths.
 */
export async function setAsideForReinit(
  config: Config,
  target: DatabaseTarget,
  countCas: () => Promise<{ cas: number; keys: number }>,
): Promise<[string, string][]> {
  if (await hasSignetSchema(target)) {
    const { cas, keys } = await countCas();
    if (cas || keys) {
      throw new SignetError(
        'conflict',
        `${describeDb(target)} holds ${cas ? `a CA hierarchy (${cas} CA(s))` : `${keys} sealed key(s)`}: --force only replaces the remains of a lost database; ` +
          'to start a second CA, use another SIGNET_DATA_DIR and database',
      );
    }
  }
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  // The old audit checkpoints too: they pin the old chain, which a new CA's chain would contradict.
  const candidates = [masterKeyPath(config.dataDir), join(config.dataDir, ADMIN_TOKEN_FILE), join(config.dataDir, CHECKPOINT_FILE)];
  if (target.provider === 'sqlite' && (!existsSync(target.location) || statSync(target.location).size === 0)) {
    candidates.push(`${target.location}-wal`, `${target.location}-shm`);
  }
  const moved: [string, string][] = [];
  for (const from of candidates.filter((f) => existsSync(f))) {
    let to = `${from}.replaced-${stamp}`;
    for (let n = 2; existsSync(to); n++) to = `${from}.replaced-${stamp}-${n}`;
    renameSync(from, to);
    moved.push([from, to]);
  }
  if (moved.length) syncDir(config.dataDir);
  return moved;
}

function syncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Warns (structured log and one stderr line) when other users can reach the data directory or
 * read the SQLite files: they hold the sealed keys, the admin token and the audit trail.
 */
export function warnIfDataDirExposed(config: Config, target: DatabaseTarget, log: Logger): void {
  const exposed: { path: string; mode: string }[] = [];
  const check = (path: string) => {
    if (!existsSync(path)) return;
    const mode = statSync(path).mode & 0o777;
    if (mode & 0o077) exposed.push({ path, mode: mode.toString(8).padStart(4, '0') });
  };
  check(config.dataDir);
  if (target.provider === 'sqlite') for (const f of ['', '-wal', '-shm']) check(target.location + f);
  if (!exposed.length) return;
  log.warn({ exposed }, 'the data directory or database files are accessible to other users');
  process.stderr.write(
    `signet: warning: accessible to other users: ${exposed.map((e) => `${e.path} (mode ${e.mode})`).join(', ')}; ` +
      `run chmod 700 ${config.dataDir}${target.provider === 'sqlite' ? ` and chmod 600 ${target.location}*` : ''}\n`,
  );
}
