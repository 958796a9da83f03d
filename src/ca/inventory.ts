/**
 * The certificate inventory: filtered, cursor-paginated listing and single-certificate status.
 *
 * Pages are keyset-paginated on (createdAt, serial), newest first, so a page costs the same at
 * any depth. A list request walks one index in bounded chunks (storage/inventory-reads.ts): the
 * name index for `san`, the profile index when one profile applies, otherwise the whole
 * inventory. Each chunk examines at most CHUNK_ROWS rows, the event loop gets a turn between
 * chunks, and a request stops after MAX_EXAMINED rows: it answers with what it found (possibly
 * fewer than `limit` items, even none) and a nextCursor to continue from where it stopped.
 * nextCursor null is the only "end of results".
 */
import { SignetError } from '../errors.js';
import { toPem } from '../pki/certificate.js';
import type { SanEntry } from '../pki/names.js';
import { searchKey } from '../storage/certificate-names.js';
import type { InventoryReads, InventoryRow, Position, RowConditions, Walk } from '../storage/inventory-reads.js';

/** The inventory's one read: rows in bounded chunks on the driver (storage/inventory-reads.ts). */
export type InventoryStore = Pick<InventoryReads, 'chunk'>;
import { isVisible, type Visibility } from './authorization.js';
import type { CaContext } from './context.js';
import { normalizeSerial } from './serial.js';
import { configuredProfiles } from './profiles.js';
import { findAtRisk } from './expiry-alerts.js';

export type CertStatus = 'good' | 'revoked' | 'expired' | 'hold';

export interface InventoryFilter {
  status?: CertStatus;
  profile?: string;
  /** Substring of the subject, literal, case-insensitive. */
  subject?: string;
  /** A name (and everything under it) or an exact IP address, email address or URI: see searchKey(). */
  san?: string;
  caId?: string;
  expiresBefore?: Date;
  cursor?: string;
  limit?: number;
}

/** Rows one statement examines at most (about 2 ms of the event loop on SQLite). */
export const CHUNK_ROWS = 250;
/** Rows one request examines at most before it answers with what it found and a nextCursor. */
export const MAX_EXAMINED = 10_000;

type Row = InventoryRow;

export function statusOf(row: { status: string; notAfter: Date }, now: Date): CertStatus {
  if (row.status === 'revoked') return 'revoked';
  if (row.status === 'hold') return 'hold';
  return row.notAfter <= now ? 'expired' : 'good';
}

export function present(row: Row, now: Date) {
  return {
    serial: row.serial,
    caId: row.caId,
    profile: row.profile,
    subject: row.subject,
    commonName: row.commonName,
    sans: JSON.parse(row.sans) as { type: string; value: string }[],
    keyAlgorithm: row.keyAlgorithm,
    notBefore: row.notBefore,
    notAfter: row.notAfter,
    fingerprintSha256: row.fingerprint,
    status: statusOf(row, now),
    revokedAt: row.revokedAt,
    revocationReason: row.revocationReason,
    invalidityDate: row.invalidityDate,
    predecessorSerial: row.predecessorSerial,
    createdAt: row.createdAt,
    tokenId: row.tokenId,
  };
}

const encodeCursor = (r: Position) => Buffer.from(JSON.stringify([r.createdAt.toISOString(), r.serial])).toString('base64url');
function decodeCursor(c: string): Position {
  try {
    const [t, s] = JSON.parse(Buffer.from(c, 'base64url').toString()) as [string, string];
    const createdAt = new Date(t);
    if (Number.isNaN(createdAt.getTime()) || typeof s !== 'string') throw new Error();
    return { createdAt, serial: normalizeSerial(s) };
  } catch {
    throw new SignetError('bad-request', 'cursor is not one this server returned');
  }
}

/** Each profile's hostlessUriSchemes, which the name-suffix rule consults. */
function hostlessUriSchemesOf(ctx: CaContext): (profile: string) => readonly string[] | undefined {
  const profiles = configuredProfiles(ctx);
  return (profile) => profiles.get(profile)?.hostlessUriSchemes;
}

/**
 * A cheap test every certificate isVisible admits under these suffixes passes: each DNS name
 * ends with one suffix's text. It only spares isVisible (which builds an error for each name it
 * refuses, ~20 µs) the rows it would refuse anyway; isVisible decides every row that passes.
 */
function dnsUnderSuffixText(suffixes: string[]): (sans: SanEntry[]) => boolean {
  const texts = suffixes.map((s) => s.toLowerCase().replace(/^\./, ''));
  return (sans) => sans.every((s) => s.type !== 'dns' || texts.some((t) => s.value.toLowerCase().endsWith(t)));
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * One page of the certificates `visible` lets the caller see, newest first. Profile limits
 * narrow in SQL; name-suffix limits by isVisible (the rule authorizeCertificate applies) on each
 * row of the bounded walk, like the subject filter.
 */
export async function listCertificates(ctx: CaContext, f: InventoryFilter, visible: Visibility) {
  const now = ctx.now();
  const limit = Math.min(Math.max(f.limit ?? 50, 1), 500);
  let profiles = f.profile ? [f.profile] : undefined;
  if (visible.profiles) profiles = (profiles ?? visible.profiles).filter((p) => visible.profiles!.includes(p));
  if (profiles?.length === 0) return { items: [], nextCursor: null };
  const walk: Walk = f.san ? { by: 'name', key: searchKey(f.san) } : profiles?.length === 1 ? { by: 'profile', profile: profiles[0]! } : { by: 'all' };
  const conditions: RowConditions = {
    status: f.status,
    profiles: walk.by === 'profile' ? undefined : profiles,
    caId: f.caId || undefined,
    expiresBefore: f.expiresBefore,
  };
  const subjectQ = f.subject ? f.subject.toLowerCase() : undefined;
  const suffixes = visible.nameSuffixes;
  const schemes = suffixes ? hostlessUriSchemesOf(ctx) : undefined;
  const underSuffixText = suffixes ? dnsUnderSuffixText(suffixes) : undefined;
  const keep = (r: Row) => {
    if (subjectQ && !r.subject.toLowerCase().includes(subjectQ)) return false;
    if (!suffixes) return true;
    const sans = JSON.parse(r.sans) as SanEntry[];
    return underSuffixText!(sans) && isVisible(visible, { profile: r.profile, sans, commonName: r.commonName }, schemes!(r.profile));
  };
  // Without any condition every examined row is an item: limit + 1 rows tell whether there is a
  // next page. With conditions, chunks start at that size and grow (most searches that match
  // often are done in the first one).
  const filtered = Boolean(subjectQ || suffixes || conditions.status || conditions.profiles || conditions.caId || conditions.expiresBefore);
  const reads = ctx.stores.inventory;
  const found: Row[] = [];
  let from = f.cursor ? decodeCursor(f.cursor) : undefined;
  let examined = 0;
  for (let grow = limit + 1; ; grow *= 4) {
    const size = Math.min(CHUNK_ROWS, filtered ? grow : limit + 1 - found.length);
    const chunk = await reads.chunk(walk, conditions, now, from, size);
    examined += chunk.examined;
    for (const r of chunk.rows) if (keep(r) && found.push(r) > limit) break;
    if (found.length > limit) {
      const page = found.slice(0, limit);
      return { items: page.map((r) => present(r, now)), nextCursor: encodeCursor(page[limit - 1]!) };
    }
    const end = chunk.examined < size;
    // A full page of a filtered walk stops here (one more match could be far away): the next
    // page may then be empty. An unfiltered walk reads the one row more.
    if (end || examined >= MAX_EXAMINED || (filtered && found.length === limit)) {
      return { items: found.map((r) => present(r, now)), nextCursor: end || !chunk.last ? null : encodeCursor(chunk.last) };
    }
    from = chunk.last!;
    await nextTurn();
  }
}

export async function getCertificate(ctx: CaContext, serial: string) {
  const row = await ctx.stores.certificates.get(normalizeSerial(serial));
  if (!row) throw new SignetError('not-found', `certificate ${serial} does not exist`);
  return { ...present(row, ctx.now()), certificate: toPem(row.der) };
}

/** Public status of one certificate (no secrets in it), read on the driver: relying parties and dashboards poll it. */
export async function certificateStatus(ctx: CaContext, serial: string) {
  const row = await ctx.stores.certificates.status(serial);
  if (!row) throw new SignetError('not-found', `certificate ${serial} does not exist`);
  const status = statusOf(row, ctx.now());
  return { serial, status, ...(row.revokedAt && status !== 'good' && status !== 'expired' ? { revokedAt: row.revokedAt, reason: row.revocationReason } : {}) };
}

export interface AtRiskFilter {
  profile?: string;
  caId?: string;
  cursor?: string;
  limit?: number;
}

/**
 * The certificates at risk of expiring without a successor (ca/expiry-alerts.ts), computed now,
 * soonest end first, that `visible` lets the caller see; CAs at risk (kind `ca`) only for a
 * caller without profile or name limits, and without a profile filter. Paginated on (notAfter, id).
 */
export async function listAtRisk(ctx: CaContext, f: AtRiskFilter, visible: Visibility) {
  const now = ctx.now();
  const limit = Math.min(Math.max(f.limit ?? 50, 1), 500);
  const after = f.cursor ? decodeAtRiskCursor(f.cursor) : undefined;
  const schemes = hostlessUriSchemesOf(ctx);
  const unlimited = !visible.profiles && !visible.nameSuffixes;
  const items = (await findAtRisk(ctx, now)).filter((a) => {
    if (f.caId && a.caId !== f.caId) return false;
    if (after && (a.notAfter.getTime() < after.notAfter || (a.notAfter.getTime() === after.notAfter && a.id <= after.id))) return false;
    if (a.kind === 'ca') return unlimited && !f.profile;
    if (f.profile && a.profile !== f.profile) return false;
    return isVisible(visible, { profile: a.profile, sans: a.sans, commonName: a.commonName }, schemes(a.profile));
  });
  const page = items.slice(0, limit);
  const last = page[page.length - 1];
  return {
    items: page,
    nextCursor: items.length > limit && last ? Buffer.from(JSON.stringify([last.notAfter.toISOString(), last.id])).toString('base64url') : null,
  };
}

/** An at-risk page's cursor: the last item's (notAfter, alert id). */
function decodeAtRiskCursor(c: string): { notAfter: number; id: string } {
  try {
    const [t, id] = JSON.parse(Buffer.from(c, 'base64url').toString()) as [string, string];
    const notAfter = new Date(t).getTime();
    if (Number.isNaN(notAfter) || typeof id !== 'string' || id.length > 200) throw new Error();
    return { notAfter, id };
  } catch {
    throw new SignetError('bad-request', 'cursor is not one this server returned for atRisk=true');
  }
}
