/**
 * The public URL — the base of the AIA, CRL distribution point and OCSP URLs written into
 * certificates — is one fact about the installation, kept in the database (Setting
 * `public.url`), so that the server and every CLI command write the same URLs whatever
 * environment each was started with.
 *
 * - The server (and `signet init`) records it: absent, it stores its own (SIGNET_PUBLIC_URL,
 *   else http://127.0.0.1:<SIGNET_PORT>). An explicitly set SIGNET_PUBLIC_URL that differs
 *   from the stored one replaces it, with a `settings.public-url.changed` audit event in the
 *   same transaction: moving the CA to a new name is a decision the operator states. A default
 *   (unset SIGNET_PUBLIC_URL) never overrides the stored value: a server merely started on
 *   another port keeps the URLs its certificates already name, and says so.
 * - CLI commands follow the stored value; an explicit SIGNET_PUBLIC_URL that differs is
 *   ignored with a warning. Before any server or init recorded one (a database from an
 *   earlier version), they use their own setting as before.
 */
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import type { Database } from '../storage/database.js';
import type { SettingStore } from '../storage/setting-store.js';
import { appendAudit } from './audit.js';

export const PUBLIC_URL_SETTING = 'public.url';

/** `record`: the server and `signet init`; `follow`: every other command, and cluster workers. */
export type PublicUrlRole = 'record' | 'follow';

export async function settlePublicUrl(db: Database, settings: SettingStore, config: Config, log: Logger, role: PublicUrlRole): Promise<string> {
  const own = config.publicUrl;
  const explicit = config.SIGNET_PUBLIC_URL !== undefined;
  const stored = (await settings.get(PUBLIC_URL_SETTING))?.value;
  if (stored === own) return own;
  if (role === 'follow') {
    if (stored === undefined) return own;
    if (explicit)
      log.warn(
        { publicUrl: stored, SIGNET_PUBLIC_URL: own },
        `SIGNET_PUBLIC_URL (${own}) differs from the public URL recorded in the database (${stored}); this command uses ${stored}. The server records a new one when it starts with SIGNET_PUBLIC_URL set`,
      );
    return stored;
  }
  if (stored === undefined) {
    // First start (or the first since this setting exists). Two processes starting together
    // may race here: the first row wins and both use it.
    await settings.insertIfAbsent(PUBLIC_URL_SETTING, own);
    return (await settings.get(PUBLIC_URL_SETTING))?.value ?? own;
  }
  if (!explicit) {
    log.warn(
      { publicUrl: stored, default: own },
      `SIGNET_PUBLIC_URL is not set: certificates keep naming the public URL recorded in the database, ${stored}, not ${own}; set SIGNET_PUBLIC_URL to change it`,
    );
    return stored;
  }
  await db.transaction(async (tx) => {
    const now = (await settings.get(PUBLIC_URL_SETTING, tx))?.value;
    if (now === own) return;
    await settings.put(PUBLIC_URL_SETTING, own, tx);
    await appendAudit(tx, { actor: 'system', action: 'settings.public-url.changed', target: PUBLIC_URL_SETTING, details: { from: now ?? null, to: own } });
  });
  log.warn({ from: stored, to: own }, `public URL changed from ${stored} to ${own} (SIGNET_PUBLIC_URL); certificates issued from now on name ${own}`);
  return own;
}
