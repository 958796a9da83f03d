/**
 * The certificate inventory: filtered, cursor-paginated listing and single-certificate status.
 * Pages are keyset-paginated on (createdAt, serial), so a page costs the same at any depth.
 */
import { SignetError } from '../errors.js';
import { toPem } from '../pki/certificate.js';
import type { CaContext } from './context.js';
import { normalizeSerial } from './serial.js';

export type CertStatus = 'good' | 'revoked' | 'expired' | 'hold';

export interface InventoryFilter {
  status?: CertStatus;
  profile?: string;
  subject?: string;
  san?: string;
  caId?: string;
  expiresBefore?: Date;
  cursor?: string;
  limit?: number;
}

type Row = {
  serial: string; caId: string; profile: string; subject: string; commonName: string | null; sans: string; keyAlgorithm: string;
  notBefore: Date; notAfter: Date; fingerprint: string; status: string; revokedAt: Date | null; revocationReason: string | null;
  invalidityDate: Date | null; predecessorSerial: string | null; createdAt: Date; tokenId: string | null;
};

export function statusOf(row: { status: string; notAfter: Date }, now: Date): CertStatus {
  if (row.status === 'revoked') return 'revoked';
  if (row.status === 'hold') return 'hold';
  return row.notAfter <= now ? 'expired' : 'good';
}

export function present(row: Row, now: Date) {
  return {
    serial: row.serial, caId: row.caId, profile: row.profile, subject: row.subject, commonName: row.commonName,
    sans: JSON.parse(row.sans) as { type: string; value: string }[], keyAlgorithm: row.keyAlgorithm,
    notBefore: row.notBefore, notAfter: row.notAfter, fingerprintSha256: row.fingerprint, status: statusOf(row, now),
    revokedAt: row.revokedAt, revocationReason: row.revocationReason, invalidityDate: row.invalidityDate,
    predecessorSerial: row.predecessorSerial, createdAt: row.createdAt, tokenId: row.tokenId,
  };
}

const encodeCursor = (r: { createdAt: Date; serial: string }) => Buffer.from(JSON.stringify([r.createdAt.toISOString(), r.serial])).toString('base64url');
function decodeCursor(c: string): { createdAt: Date; serial: string } {
  try {
    const [t, s] = JSON.parse(Buffer.from(c, 'base64url').toString()) as [string, string];
    const createdAt = new Date(t);
    if (Number.isNaN(createdAt.getTime()) || typeof s !== 'string') throw new Error();
    return { createdAt, serial: normalizeSerial(s) };
  } catch {
    throw new SignetError('bad-request', 'cursor is not one this server returned');
  }
}

const SELECT = {
  serial: true, caId: true, profile: true, subject: true, commonName: true, sans: true, keyAlgorithm: true, notBefore: true, notAfter: true,
  fingerprint: true, status: true, revokedAt: true, revocationReason: true, invalidityDate: true, predecessorSerial: true, createdAt: true, tokenId: true,
} as const;

export async function listCertificates(ctx: CaContext, f: InventoryFilter) {
  const now = ctx.now();
  const limit = Math.min(Math.max(f.limit ?? 50, 1), 500);
  const and: object[] = [];
  if (f.status === 'good') and.push({ status: 'good', notAfter: { gt: now } });
  else if (f.status === 'expired') and.push({ status: 'good', notAfter: { lte: now } });
  else if (f.status) and.push({ status: f.status });
  if (f.profile) and.push({ profile: f.profile });
  if (f.caId) and.push({ caId: f.caId });
  const subjectQ = f.subject ? f.subject.toLowerCase() : undefined;
  const sanQ = f.san ? f.san.toLowerCase() : undefined;
  if (subjectQ) and.push({ subject: substring(ctx, subjectQ) });
  if (sanQ) and.push({ sanText: substring(ctx, sanQ) });
  if (f.expiresBefore) and.push({ notAfter: { lt: f.expiresBefore } });
  // The redundant createdAt <= bound gives the planner a range on the (createdAt, serial) index
  // to seek, so a page deep in the table costs what the first one does.
  const after = (c: { createdAt: Date; serial: string }) => ({ createdAt: { lte: c.createdAt }, OR: [{ createdAt: { lt: c.createdAt } }, { createdAt: c.createdAt, serial: { lt: c.serial } }] });
  // The database narrows; the exact literal, case-insensitive substring test is made here (see substring()).
  const matches = (r: { subject: string; sanText: string }) => (!subjectQ || r.subject.toLowerCase().includes(subjectQ)) && (!sanQ || r.sanText.includes(sanQ));
  const found: (Row & { sanText: string })[] = [];
  let from = f.cursor ? decodeCursor(f.cursor) : undefined;
  for (;;) {
    const rows = await ctx.db.prisma.certificate.findMany({
      where: { AND: from ? [...and, after(from)] : and }, orderBy: [{ createdAt: 'desc' }, { serial: 'desc' }], take: limit + 1, select: { ...SELECT, sanText: true },
    });
    for (const r of rows) if (matches(r) && found.push(r) > limit) break;
    if (found.length > limit || rows.length <= limit) break;
    from = rows[rows.length - 1]!;
  }
  const page = found.slice(0, limit);
  return { items: page.map((r) => present(r, now)), nextCursor: found.length > limit ? encodeCursor(page[page.length - 1]!) : null };
}

/**
 * A substring filter the database can apply. Prisma sends `contains` to LIKE without escaping
 * % and _ (prisma/prisma#19506); PostgreSQL's LIKE is case-sensitive and takes backslash
 * escapes, SQLite's ignores ASCII case and has no escape character. So PostgreSQL gets an
 * escaped ILIKE, SQLite the plain LIKE, which every literal match also satisfies, and
 * listCertificates drops the rows that only matched a wildcard.
 */
function substring(ctx: CaContext, q: string): object {
  return ctx.db.provider === 'postgresql' ? { contains: q.replace(/[\\%_]/g, '\\$&'), mode: 'insensitive' } : { contains: q };
}

export async function getCertificate(ctx: CaContext, serial: string) {
  const row = await ctx.db.prisma.certificate.findUnique({ where: { serial: normalizeSerial(serial) }, select: { ...SELECT, der: true } });
  if (!row) throw new SignetError('not-found', `certificate ${serial} does not exist`);
  return { ...present(row, ctx.now()), certificate: toPem(row.der) };
}

/** Public status of one certificate (no secrets in it), read on the driver: relying parties and dashboards poll it. */
export async function certificateStatus(ctx: CaContext, serial: string) {
  const row = await ctx.db.hotReads().certificateStatus(serial);
  if (!row) throw new SignetError('not-found', `certificate ${serial} does not exist`);
  const status = statusOf(row, ctx.now());
  return { serial, status, ...(row.revokedAt && status !== 'good' && status !== 'expired' ? { revokedAt: row.revokedAt, reason: row.revocationReason } : {}) };
}
