/**
 * API tokens: 256 random bits shown once, stored as SHA-256. Looking a token up by its hash
 * and comparing the hashes with timingSafeEqual means the secret never meets a
 * variable-time comparison.
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { SignetError } from '../errors.js';
import type { Tx } from '../storage/database.js';
import { appendAudit } from './audit.js';
import type { CaContext } from './context.js';
import { validateNamePolicy } from '../pki/names.js';
import { loadProfiles } from './profiles.js';

export const SCOPES = ['issue', 'renew', 'revoke', 'read', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];
export const TOKEN_PREFIX = 'sgt_';

export interface TokenGrant {
  id: string; name: string; scopes: Scope[]; profiles: string[] | null; nameSuffixes: string[] | null; expiresAt: Date | null;
}

export const hashSecret = (secret: string): string => createHash('sha256').update(secret).digest('hex');

export interface NewToken { name: string; scopes: Scope[]; profiles?: string[]; nameSuffixes?: string[]; expiresAt?: Date }

export async function createToken(ctx: CaContext, t: NewToken, actor: string, tx?: Tx, sourceIp?: string): Promise<TokenGrant & { token: string }> {
  // A suffix issuance could not apply would turn every later request with this token into a 500.
  try { validateNamePolicy({ dnsSuffixes: t.nameSuffixes, emailDomains: t.nameSuffixes }); } catch (e) {
    throw new SignetError('bad-request', `nameSuffixes: ${(e as SignetError).detail.replace(/^name policy /, '')}`);
  }
  // A profile that does not exist (a typo, 'SERVER') would make a token that can do nothing,
  // or — once someone configures that name — more than its creator meant.
  if (t.profiles) {
    const configured = [...loadProfiles(ctx.config.SIGNET_PROFILES_FILE).keys()];
    const unknown = t.profiles.filter((p) => !configured.includes(p));
    if (unknown.length) throw new SignetError('bad-request', `profiles: ${unknown.map((p) => JSON.stringify(p)).join(', ')} ${unknown.length === 1 ? 'is not a configured profile' : 'are not configured profiles'}; configured: ${configured.join(', ')}`);
  }
  const secret = TOKEN_PREFIX + randomBytes(32).toString('base64url');
  const id = `tok-${randomUUID().slice(0, 8)}`;
  const write = async (x: Tx) => {
    await x.apiToken.create({
      data: {
        id, name: t.name, secretHash: hashSecret(secret), scopes: t.scopes.join(','),
        profiles: t.profiles ? JSON.stringify(t.profiles) : null, nameSuffixes: t.nameSuffixes ? JSON.stringify(t.nameSuffixes) : null,
        expiresAt: t.expiresAt ?? null,
      },
    });
    await appendAudit(x, { actor, action: 'token.created', target: id, sourceIp, details: { name: t.name, scopes: t.scopes, profiles: t.profiles ?? null, nameSuffixes: t.nameSuffixes ?? null, expiresAt: t.expiresAt?.toISOString() ?? null } });
  };
  if (tx) await write(tx); else await ctx.db.transaction(write);
  return { id, name: t.name, scopes: t.scopes, profiles: t.profiles ?? null, nameSuffixes: t.nameSuffixes ?? null, expiresAt: t.expiresAt ?? null, token: secret };
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
    ctx.db.prisma.$transaction(batch.map(([tokenId, t]) => ctx.db.prisma.apiToken.updateMany({ where: { id: tokenId }, data: { lastUsedAt: t } })))
      .catch((e: unknown) => ctx.log.debug({ err: e }, 'could not record token last-used times'));
  }, 2000);
  state.timer.unref();
}

/** Resolves a presented secret to its grant, or throws 401 with a reason that reveals nothing useful. */
export async function authenticate(ctx: CaContext, presented: string): Promise<TokenGrant> {
  if (!presented.startsWith(TOKEN_PREFIX) || presented.length > 200) throw new SignetError('unauthorized', 'the bearer token is not a Signet API token');
  const hash = hashSecret(presented);
  const row = await ctx.db.hotReads().token(hash);
  if (!row || !timingSafeEqual(Buffer.from(row.secretHash, 'hex'), Buffer.from(hash, 'hex'))) throw new SignetError('unauthorized', 'the bearer token is unknown');
  if (row.revokedAt) throw new SignetError('unauthorized', 'the bearer token was revoked');
  const now = ctx.now();
  if (row.expiresAt && row.expiresAt <= now) throw new SignetError('unauthorized', 'the bearer token has expired');
  recordUse(ctx, row.id, now);
  return {
    id: row.id, name: row.name, scopes: row.scopes.split(',').filter(Boolean) as Scope[],
    profiles: row.profiles ? (JSON.parse(row.profiles) as string[]) : null,
    nameSuffixes: row.nameSuffixes ? (JSON.parse(row.nameSuffixes) as string[]) : null, expiresAt: row.expiresAt,
  };
}

export interface TokenSummary {
  id: string; name: string; scopes: string[]; profiles: string[] | null; nameSuffixes: string[] | null;
  expiresAt: Date | null; revokedAt: Date | null; lastUsedAt: Date | null; createdAt: Date;
}

export async function listTokens(ctx: CaContext): Promise<TokenSummary[]> {
  const rows = await ctx.db.prisma.apiToken.findMany({ orderBy: { createdAt: 'asc' } });
  return rows.map(({ secretHash: _h, scopes, profiles, nameSuffixes, ...r }) => ({
    ...r, scopes: scopes.split(',').filter(Boolean), profiles: profiles ? (JSON.parse(profiles) as string[]) : null,
    nameSuffixes: nameSuffixes ? (JSON.parse(nameSuffixes) as string[]) : null,
  }));
}

export async function revokeToken(ctx: CaContext, id: string, actor: string, sourceIp?: string): Promise<void> {
  await ctx.db.transaction(async (tx) => {
    const row = await tx.apiToken.findUnique({ where: { id } });
    if (!row) throw new SignetError('not-found', `token ${id} does not exist`);
    if (row.revokedAt) throw new SignetError('conflict', `token ${id} is already revoked`);
    await tx.apiToken.update({ where: { id }, data: { revokedAt: ctx.now() } });
    await appendAudit(tx, { actor, action: 'token.revoked', target: id, sourceIp, details: { name: row.name } });
  });
}
