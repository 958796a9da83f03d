/**
 * Composition root: configuration → data directory → migrations → database → key store.
 * Every failure here stops start-up with one precise line and changes nothing on disk
 * except what a first start creates.
 */
import { accessSync, constants, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import { SignetError, isSignetError } from '../errors.js';
import { resolveKek } from '../keystore/kek.js';
import { SealedKeyStore } from '../keystore/sealed-key-store.js';
import { isPkcs11Uri, Pkcs11KeyStore } from '../keystore/pkcs11-key-store.js';
import { Pkcs11Token, readPin } from '../keystore/pkcs11-token.js';
import type { KeyStore } from '../keystore/key-store.js';
import { openAuditTrail } from '../ca/audit-checkpoints.js';
import { systemClock, type Clock } from '../ca/clock.js';
import type { CaContext } from '../ca/context.js';
import { createHierarchyTx, listCas } from '../ca/hierarchy.js';
import { createToken } from '../ca/tokens.js';
import { markSealedAtBootstrap, sealAtUpgrade } from '../ca/row-seal.js';
import { openDatabase } from '../storage/database.js';
import { createStores } from '../storage/stores.js';
import { redactUrl, resolveDatabase } from '../storage/database-url.js';
import { migrate } from '../storage/migrate.js';
import { isDatabaseUnavailable } from '../storage/unavailable.js';
import { fingerprintColons } from '../pki/fingerprint.js';
import { ADMIN_TOKEN_FILE, markMasterKeyCreation, refuseBootstrapOverRemains, refuseLostDatabase, warnIfDataDirExposed } from './data-dir.js';
import { keyRecordStore } from '../storage/key-record-store.js';
import { settlePublicUrl, type PublicUrlRole } from '../ca/public-url.js';

export { ADMIN_TOKEN_FILE } from './data-dir.js';

export function prepareDataDir(dir: string): void {
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw new SignetError('configuration', `SIGNET_DATA_DIR ${dir} exists but is not a directory`);
    try {
      accessSync(dir, constants.R_OK | constants.W_OK | constants.X_OK);
    } catch {
      throw new SignetError('configuration', `SIGNET_DATA_DIR ${dir} is not readable and writable by this user`);
    }
  } else {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
    } catch (e) {
      throw new SignetError('configuration', `SIGNET_DATA_DIR ${dir} could not be created: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
}

/** `now`: the clock of the CA and its audit trail (tests inject one; ca/clock.ts). */
export interface OpenOptions {
  migrate?: boolean;
  now?: Clock;
  /** Whether this process records the public URL (the server, `signet init`) or follows the stored one (ca/public-url.ts); default follow. */
  publicUrl?: PublicUrlRole;
}

/**
 * The PKCS#11 token, when SIGNET_KEY_STORE=pkcs11: opened before anything touches the database
 * or the data directory, so a missing module, an absent token or a wrong PIN stops start-up
 * with one line and changes nothing.
 */
export function openToken(config: Config): Pkcs11Token | null {
  if (config.SIGNET_KEY_STORE !== 'pkcs11') return null;
  const pin = readPin({ pin: config.SIGNET_PKCS11_PIN, pinFile: config.SIGNET_PKCS11_PIN_FILE });
  return Pkcs11Token.open({ module: config.SIGNET_PKCS11_MODULE!, label: config.SIGNET_PKCS11_TOKEN!, pin });
}

export async function openSignet(config: Config, log: Logger, opts: OpenOptions = {}): Promise<CaContext> {
  const token = openToken(config);
  try {
    return await openWithToken(config, log, opts, token);
  } catch (e) {
    // Not opened: its sessions are closed (openWhenReachable would otherwise pile one up per retry).
    token?.close();
    throw e;
  }
}

async function openWithToken(config: Config, log: Logger, opts: OpenOptions, token: Pkcs11Token | null): Promise<CaContext> {
  prepareDataDir(config.dataDir);
  const target = resolveDatabase(config.DATABASE_URL, config.dataDir, config.SIGNET_SQLITE_SYNCHRONOUS);
  if (opts.migrate !== false) {
    let result;
    try {
      await refuseLostDatabase(config, target);
      result = await migrate(target);
    } catch (e) {
      if (e instanceof SignetError) throw e;
      throw new SignetError(
        isDatabaseUnavailable(e) ? 'unavailable' : 'internal',
        `database ${target.provider === 'sqlite' ? target.location : redactUrl(target.location)} is not reachable: ${(e as Error).message}`,
        { cause: e },
      );
    }
    if (result.applied.length) log.info({ applied: result.applied, provider: target.provider }, 'database migrations applied');
  }
  const db = await openDatabase(target).catch((e: unknown) => {
    throw new SignetError(
      isDatabaseUnavailable(e) ? 'unavailable' : 'internal',
      `database ${target.provider === 'sqlite' ? target.location : redactUrl(target.location)} is not reachable: ${(e as Error).message}`,
      { cause: e },
    );
  });
  try {
    const stores = createStores(db);
    const storeHasKeys = (await stores.installation.count('keys')) > 0;
    await markMasterKeyCreation(stores.settings, config, storeHasKeys);
    const kek = resolveKek({ masterKey: config.SIGNET_MASTER_KEY, dataDir: config.dataDir, storeHasKeys });
    const records = keyRecordStore(db);
    let keys: KeyStore;
    if (token) {
      // Secrets and OCSP responder keys stay sealed under the KEK; CA keys live in the token.
      const sealed = new SealedKeyStore({ ...records, ids: async () => (await records.ids()).filter((id) => !isPkcs11Uri(id)) }, kek);
      keys = new Pkcs11KeyStore(token, records, sealed);
    } else keys = new SealedKeyStore(records, kek);
    const n = await keys.verifyAll();
    log.debug({ keys: n, kekId: kek.id, kekSource: kek.source, keyStore: config.SIGNET_KEY_STORE }, 'key store unlocked');
    if (token) {
      const soft = (await stores.cas.onlineActive()).filter((c) => !isPkcs11Uri(c.keyId!)).map((c) => c.id);
      if (soft.length)
        log.warn(
          { cas: soft, token: config.SIGNET_PKCS11_TOKEN },
          `CA keys still sealed in software (${soft.join(', ')}): move each into the token with \`signet ca move-key <caId> --to pkcs11\``,
        );
    }
    // The audit chain's MAC key is bound to this Database here, once, so every appendAudit(tx, …)
    // finds it; the checkpointer checks the chain against this data directory's checkpoints.
    const now = opts.now ?? systemClock;
    await openAuditTrail(db, stores.audit, keys, config.dataDir, log, config.SIGNET_AUDIT_INTERVAL_SECONDS * 1000, now);
    // The URLs written into certificates come from the database, for server and CLI alike.
    const publicUrl = await settlePublicUrl(db, stores.settings, config, log, opts.publicUrl ?? 'follow');
    const ctx: CaContext = { db, stores, keys, config: publicUrl === config.publicUrl ? config : { ...config, publicUrl }, log, now };
    // Once per database: MACs for the token and ACME rows of the version before (ca/row-seal.ts).
    await sealAtUpgrade(ctx);
    return ctx;
  } catch (e) {
    await db.close().catch(() => undefined);
    // Lost between migrating and unlocking the keys: still worth waiting for (serve retries 'unavailable').
    if (!(e instanceof SignetError) && isDatabaseUnavailable(e)) {
      throw new SignetError(
        'unavailable',
        `database ${target.provider === 'sqlite' ? target.location : redactUrl(target.location)} is not reachable: ${(e as Error).message}`,
        { cause: e },
      );
    }
    throw e;
  }
}

/**
 * openSignet, retried with backoff (0.5 s doubling to 30 s) while the database is unreachable:
 * only that is worth waiting for; anything else (wrong master key, corrupt store, database
 * ahead of the code) needs a person and is thrown at once.
 */
export async function openWhenReachable(
  config: Config,
  log: Logger,
  opts: OpenOptions & { onUnavailable?: (detail: string, attempt: number) => void } = {},
): Promise<CaContext> {
  // Once per service start: the process that migrates (single process or cluster primary).
  if (opts.migrate !== false) {
    prepareDataDir(config.dataDir);
    warnIfDataDirExposed(config, resolveDatabase(config.DATABASE_URL, config.dataDir, config.SIGNET_SQLITE_SYNCHRONOUS), log);
  }
  for (let attempt = 1, delay = 500; ; attempt++, delay = Math.min(delay * 2, 30_000)) {
    try {
      return await openSignet(config, log, opts);
    } catch (e) {
      if (!isSignetError(e) || e.type !== 'unavailable') throw e;
      opts.onUnavailable?.(e.detail, attempt);
      log.warn({ attempt, retryInMs: delay, detail: e.detail }, 'database unreachable; retrying');
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/** Tells the operator about a hierarchy created at start-up: the fingerprint, and where (never what) the admin token is. */
export function announceBootstrap(boot: { created: boolean; rootFingerprint?: string; tokenFile?: string }): void {
  if (boot.created)
    process.stdout.write(
      `Signet initialised a new CA hierarchy.\n  root SHA-256 fingerprint: ${boot.rootFingerprint}\n  admin API token written to: ${boot.tokenFile} (mode 0600)\n`,
    );
}

/** First start: root + issuing intermediate + admin token. Idempotent: does nothing once a CA exists. */
export async function bootstrapIfEmpty(ctx: CaContext, config: Config): Promise<{ created: boolean; rootFingerprint?: string; tokenFile?: string }> {
  if ((await listCas(ctx)).length) return { created: false };
  // The emptiness check runs again inside the transaction, which holds the database's write
  // lock (SQLite) or the advisory lock (PostgreSQL): two processes starting together on an
  // empty database create one hierarchy, not two.
  const stores = createStores(ctx.db);
  const made = await ctx.db.transaction(async (tx) => {
    if (await stores.installation.count('cas', tx)) return null;
    await refuseBootstrapOverRemains(stores, tx, config);
    const h = await createHierarchyTx(
      ctx,
      tx,
      { subject: config.SIGNET_ROOT_SUBJECT, keyAlgorithm: config.SIGNET_ROOT_KEY, validityDays: config.SIGNET_ROOT_VALIDITY_DAYS },
      {
        subject: config.SIGNET_INTERMEDIATE_SUBJECT,
        keyAlgorithm: config.SIGNET_INTERMEDIATE_KEY,
        validityDays: config.SIGNET_INTERMEDIATE_VALIDITY_DAYS,
        pathLen: 0,
      },
    );
    const t = await createToken(ctx, { name: 'admin (first start)', scopes: ['admin'] }, 'system', tx);
    // A new installation is sealed from its first start: a row without a MAC never counts here.
    await markSealedAtBootstrap(ctx, tx);
    return { root: h.root, token: t };
  });
  if (!made) return { created: false };
  const { root, token } = made;
  const tokenFile = join(config.dataDir, ADMIN_TOKEN_FILE);
  // 'wx': an existing admin-token is never overwritten (refuseBootstrapOverRemains has refused it already).
  writeFileSync(tokenFile, token.token + '\n', { mode: 0o600, flag: 'wx' });
  return { created: true, rootFingerprint: fingerprintColons(root.fingerprint), tokenFile };
}
