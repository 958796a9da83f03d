/**
 * API tokens: 256 random bits shown once. The table stores a keyed hash of the secret
 * (HMAC-SHA256 under a key derived from the master key) and a MAC over the grant — id, hash,
 * scopes, profiles, name suffixes, expiry and revocation (row-integrity.ts) — checked at every
 * authentication, so someone who can write to the database but does not hold the master key
 * can neither insert a token for a secret of their choosing nor widen, extend or un-revoke one:
 * such a row is refused like an unknown token, and logged at error level. Tokens made before
 * keyed hashes keep their SHA-256 hash; they were sealed (given a grant MAC) once, at the first
 * start of the version that introduced MACs (row-seal.ts).
 *
 * A revocation is also anchored in the audit trail, which the database alone cannot rewrite:
 * a token with a `token.revoked` event never authenticates again, even if its row (and the MAC
 * it had before) is put back from an old copy of the database.
 *
 * Looking a token up by its hash and comparing the hashes with timingSafeEqual means the secret
 * never meets a variable-time comparison; the MAC is compared in constant time too.
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { SignetError } from '../errors.js';
import type { ApiTokenRecord, NewApiTokenRecord } from '../model/token.js';
import type { Tx } from '../storage/database.js';
import type { TokenRow } from '../storage/hot-reads.js';
import { appendAudit } from './audit.js';
import type { CaContext } from './context.js';
import { validateNamePolicy } from '../pki/names.js';
import { loadProfiles } from './profiles.js';
import { rowIntegrity, type SecretScheme } from './row-integrity.js';

export const SCOPES = ['issue', 'renew', 'revoke', 'read', 'groups', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];
export const TOKEN_PREFIX = 'sgt_';
export const TOKEN_REVOKED_ACTION = 'token.revoked';

/** The token rows this module reads and writes (storage/token-store.ts); lookup by hash is a hot read (Database.hotReads). */
export interface TokenStore {
  /** The hot path of every API request: the token row for a keyed secret hash (on the driver). */
  byHash(secretHash: string): Promise<TokenRow | null>;
  create(t: NewApiTokenRecord, tx?: Tx): Promise<void>;
  get(id: string, tx?: Tx): Promise<ApiTokenRecord | null>;
  /** Every token, oldest first. */
  listByCreation(): Promise<ApiTokenRecord[]>;
  /** Sets revokedAt, and the grant MAC that covers it when one is given. */
  revoke(id: string, revokedAt: Date, grantMac: string | undefined, tx?: Tx): Promise<void>;
  /** Last-used times, in one transaction. */
  recordUse(uses: [id: string, at: Date][]): Promise<void>;
}

/** The audited revocations (storage/audit-store.ts): seq and target of each event with `action` after `afterSeq`. */
export interface RevocationEvents {
  targetsOf(action: string, afterSeq: number): Promise<{ seq: number; target: string | null }[]>;
}

export interface TokenGrant {
  id: string;
  name: string;
  scopes: Scope[];
  profiles: string[] | null;
  nameSuffixes: string[] | null;
  /** The key groups a `groups` scope may read (null: every group). */
  groups: string[] | null;
  expiresAt: Date | null;
}

/**
 * A token's group limit is kept with its scopes, as `group:<name>` entries of the stored scope
 * list, so the grant MAC that covers the scopes covers it too (no column of its own).
 */
const GROUP_ENTRY = 'group:';
function splitScopes(stored: string): { scopes: Scope[]; groups: string[] | null } {
  const all = stored.split(',').filter(Boolean);
  const groups = all.filter((s) => s.startsWith(GROUP_ENTRY)).map((s) => s.slice(GROUP_ENTRY.length));
  return { scopes: all.filter((s) => !s.startsWith(GROUP_ENTRY)) as Scope[], groups: groups.length ? groups : null };
}
/** A key group name (as groups/service.ts GROUP_NAME). */
const GROUP_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

/**
 * SHA-256 of a presented secret: the identity rate limits and the audit use for a bearer token
 * (http/auth.ts), and the stored hash of tokens made before keyed hashes. Not the hash new
 * tokens are stored under (RowIntegrity.tokenSecretHash).
 */
export const hashSecret = (secret: string): string => createHash('sha256').update(secret).digest('hex');

/** The latest expiry a token can carry (what every date field of Signet can hold). */
const LATEST_EXPIRY = Date.UTC(9999, 11, 31, 23, 59, 59);

export interface NewToken {
  name: string;
  scopes: Scope[];
  profiles?: string[];
  nameSuffixes?: string[];
  /** Limits the `groups` scope to these key groups. */
  groups?: string[];
  expiresAt?: Date;
}

export async function createToken(ctx: CaContext, t: NewToken, actor: string, tx?: Tx, sourceIp?: string): Promise<TokenGrant & { token: string }> {
  // A suffix issuance could not apply would turn every later request with this token into a 500.
  try {
    validateNamePolicy({ dnsSuffixes: t.nameSuffixes, emailDomains: t.nameSuffixes });
  } catch (e) {
    throw new SignetError('bad-request', `nameSuffixes: ${(e as SignetError).detail.replace(/^name policy /, '')}`);
  }
  // A profile that does not exist (a typo, 'SERVER') would make a token that can do nothing,
  // or — once someone configures that name — more than its creator meant.
  if (t.profiles) {
    const configured = [...loadProfiles(ctx.config.SIGNET_PROFILES_FILE).keys()];
    const unknown = t.profiles.filter((p) => !configured.includes(p));
    if (unknown.length)
      throw new SignetError(
        'bad-request',
        `profiles: ${unknown.map((p) => JSON.stringify(p)).join(', ')} ${unknown.length === 1 ? 'is not a configured profile' : 'are not configured profiles'}; configured: ${configured.join(', ')}`,
      );
  }
  if (t.groups) {
    if (!t.scopes.includes('groups')) throw new SignetError('bad-request', "groups: a group limit needs the 'groups' scope");
    if (t.groups.length === 0 || t.groups.length > 100) throw new SignetError('bad-request', 'groups: name between 1 and 100 key groups');
    const bad = t.groups.find((g) => !GROUP_NAME.test(g));
    if (bad !== undefined)
      throw new SignetError('bad-request', `groups: ${JSON.stringify(bad.slice(0, 80))} is not a key group name (lower-case letters, digits and hyphens)`);
  }
  // Judged here, for the API and the CLI alike: a date the database cannot store was a raw
  // database error on the CLI.
  if (t.expiresAt) {
    const at = t.expiresAt.getTime();
    if (!Number.isFinite(at) || at > LATEST_EXPIRY) throw new SignetError('bad-request', 'expiresAt must be no later than 9999-12-31T23:59:59Z');
    if (at <= ctx.now().getTime()) throw new SignetError('bad-request', 'expiresAt must be in the future');
  }
  const secret = TOKEN_PREFIX + randomBytes(32).toString('base64url');
  const id = `tok-${randomUUID().slice(0, 8)}`;
  const macs = rowIntegrity(ctx.keys);
  const grant = {
    id,
    secretHash: macs.tokenSecretHash(secret),
    scopes: [...t.scopes, ...(t.groups ?? []).map((g) => GROUP_ENTRY + g)].join(','),
    profiles: t.profiles ? JSON.stringify(t.profiles) : null,
    nameSuffixes: t.nameSuffixes ? JSON.stringify(t.nameSuffixes) : null,
    // Stored with millisecond precision: MAC exactly what is stored.
    expiresAt: t.expiresAt ? new Date(t.expiresAt.getTime()) : null,
    revokedAt: null,
  };
  const write = async (x: Tx) => {
    await ctx.stores.tokens.create({ ...grant, name: t.name, grantMac: macs.tokenGrantMac(grant, 'hmac') }, x);
    await appendAudit(x, {
      actor,
      action: 'token.created',
      target: id,
      sourceIp,
      details: {
        name: t.name,
        scopes: t.scopes,
        profiles: t.profiles ?? null,
        nameSuffixes: t.nameSuffixes ?? null,
        groups: t.groups ?? null,
        expiresAt: t.expiresAt?.toISOString() ?? null,
      },
    });
  };
  if (tx) await write(tx);
  else await ctx.db.transaction(write);
  return {
    id,
    name: t.name,
    scopes: t.scopes,
    profiles: t.profiles ?? null,
    nameSuffixes: t.nameSuffixes ?? null,
    groups: t.groups ?? null,
    expiresAt: t.expiresAt ?? null,
    token: secret,
  };
}

/**
 * Last-used times are advisory: recording one per request would put a write (and an fsync) on
 * every read. They are gathered in memory and written at most every two seconds.
 */
const pendingUse = new WeakMap<CaContext, { ids: Map<string, Date>; timer?: NodeJS.Timeout }>();
function recordUse(ctx: CaContext, id: string, at: Date): void {
  let p = pendingUse.get(ctx);
  if (!p) pendingUse.set(ctx, (p = { ids: new Map() }));
  p.ids.set(id, at);
  if (p.timer) return;
  const state = p;
  state.timer = setTimeout(() => {
    const batch = [...state.ids.entries()];
    state.ids.clear();
    state.timer = undefined;
    ctx.stores.tokens.recordUse(batch).catch((e: unknown) => ctx.log.debug({ err: e }, 'could not record token last-used times'));
  }, 2000);
  state.timer.unref();
}

/**
 * Token ids with a `token.revoked` event in the audit trail, per database: a revocation the
 * rows alone cannot undo. Loaded at the first authentication, then refreshed in the background
 * (new events only) at most every REVOCATIONS_REFRESH_MS; a revocation made by this process is
 * added at once. Other processes' revocations take effect at once through the row (revokedAt,
 * under the MAC); this set is what still refuses the token if the row is later rolled back.
 */
const REVOCATIONS_REFRESH_MS = 5_000;
interface AuditedRevocations {
  ids: Set<string>;
  afterSeq: number;
  at: number;
  loading?: Promise<void>;
}
const revocations = new WeakMap<object, AuditedRevocations>();

async function auditedRevocations(ctx: CaContext): Promise<Set<string>> {
  let r = revocations.get(ctx.db);
  if (!r) revocations.set(ctx.db, (r = { ids: new Set(), afterSeq: 0, at: 0 }));
  const state = r;
  const refresh = () =>
    (state.loading ??= (async () => {
      const rows = await ctx.stores.audit.targetsOf(TOKEN_REVOKED_ACTION, state.afterSeq);
      for (const e of rows) if (e.target) state.ids.add(e.target);
      if (rows.length) state.afterSeq = rows[rows.length - 1]!.seq;
      state.at = ctx.now().getTime();
    })().finally(() => {
      state.loading = undefined;
    }));
  if (state.at === 0) await refresh();
  else if (ctx.now().getTime() - state.at > REVOCATIONS_REFRESH_MS)
    refresh().catch((e: unknown) => ctx.log.warn({ err: e }, 'could not refresh the audited token revocations'));
  return state.ids;
}

/** Resolves a presented secret to its grant, or throws 401 with a reason that reveals nothing useful. */
export async function authenticate(ctx: CaContext, presented: string): Promise<TokenGrant> {
  if (!presented.startsWith(TOKEN_PREFIX) || presented.length > 200) throw new SignetError('unauthorized', 'the bearer token is not a Signet API token');
  const macs = rowIntegrity(ctx.keys);
  const reads = { token: (hash: string) => ctx.stores.tokens.byHash(hash) };
  let scheme: SecretScheme = 'hmac';
  let hash = macs.tokenSecretHash(presented);
  let row = await reads.token(hash);
  if (!row) {
    // A token made before keyed hashes is stored under its SHA-256 (and sealed with that scheme).
    scheme = 'sha256';
    hash = hashSecret(presented);
    row = await reads.token(hash);
  }
  if (!row || !timingSafeEqual(Buffer.from(row.secretHash, 'hex'), Buffer.from(hash, 'hex')))
    throw new SignetError('unauthorized', 'the bearer token is unknown');
  if (!macs.tokenIntact(row, scheme)) {
    // Only the holder of this secret reaches this line: a row written without the master key.
    ctx.log.error(
      { tokenId: row.id },
      'API token row failed its integrity check (its grant MAC does not verify): it was inserted or changed in the database without the master key; refused',
    );
    throw new SignetError('unauthorized', 'the bearer token is unknown');
  }
  if (row.revokedAt) throw new SignetError('unauthorized', 'the bearer token was revoked');
  if ((await auditedRevocations(ctx)).has(row.id)) {
    ctx.log.error(
      { tokenId: row.id },
      'API token row says not revoked, but the audit trail recorded its revocation: the row was rolled back in the database; refused',
    );
    throw new SignetError('unauthorized', 'the bearer token was revoked');
  }
  const now = ctx.now();
  if (row.expiresAt && row.expiresAt <= now) throw new SignetError('unauthorized', 'the bearer token has expired');
  recordUse(ctx, row.id, now);
  return {
    id: row.id,
    name: row.name,
    ...splitScopes(row.scopes),
    profiles: row.profiles ? (JSON.parse(row.profiles) as string[]) : null,
    nameSuffixes: row.nameSuffixes ? (JSON.parse(row.nameSuffixes) as string[]) : null,
    expiresAt: row.expiresAt,
  };
}

export interface TokenSummary {
  id: string;
  name: string;
  scopes: string[];
  profiles: string[] | null;
  nameSuffixes: string[] | null;
  groups: string[] | null;
  expiresAt: Date | null;
  revokedAt: Date | null;
  lastUsedAt: Date | null;
  createdAt: Date;
}

export async function listTokens(ctx: CaContext): Promise<TokenSummary[]> {
  const rows = await ctx.stores.tokens.listByCreation();
  return rows.map(({ secretHash: _h, grantMac: _m, scopes, profiles, nameSuffixes, ...r }) => ({
    ...r,
    ...splitScopes(scopes),
    profiles: profiles ? (JSON.parse(profiles) as string[]) : null,
    nameSuffixes: nameSuffixes ? (JSON.parse(nameSuffixes) as string[]) : null,
  }));
}

export async function revokeToken(ctx: CaContext, id: string, actor: string, sourceIp?: string): Promise<void> {
  await ctx.db.transaction(async (tx) => {
    const row = await ctx.stores.tokens.get(id, tx);
    if (!row) throw new SignetError('not-found', `token ${id} does not exist`);
    if (row.revokedAt) throw new SignetError('conflict', `token ${id} is already revoked`);
    const revokedAt = ctx.now();
    // A row whose MAC does not verify keeps a MAC that does not verify: revoking must not bless it.
    const macs = rowIntegrity(ctx.keys);
    const scheme = macs.tokenSchemeOf(row);
    await ctx.stores.tokens.revoke(id, revokedAt, scheme ? macs.tokenGrantMac({ ...row, revokedAt }, scheme) : undefined, tx);
    await appendAudit(tx, { actor, action: TOKEN_REVOKED_ACTION, target: id, sourceIp, details: { name: row.name } });
  });
  revocations.get(ctx.db)?.ids.add(id);
}
