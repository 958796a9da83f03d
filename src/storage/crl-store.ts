/**
 * Stored CRLs: the CRL publisher's CrlStore (ca/crl-store.ts). The revoked entries are streamed
 * from the driver (revoked-rows.ts) and a CRL is written there too (issuance-writer.ts, in
 * pieces when large: crl-chunks.ts); the small reads go through Prisma.
 */
import type { CrlStore } from '../ca/crl-store.js';
import type { StorageDatabase } from './database.js';
import { openRevoked } from './revoked-rows.js';
import { PUBLISHING_STATUSES } from '../model/ca.js';

export function crlStore(db: StorageDatabase): CrlStore {
  const prisma = db.prisma;
  return {
    async publishingCaIds() {
      const rows = await prisma.certificateAuthority.findMany({
        where: { keyId: { not: null }, status: { in: [...PUBLISHING_STATUSES] } },
        select: { id: true },
      });
      return rows.map((r) => r.id);
    },
    head: (caId, scope = { shard: 0, delta: false }) =>
      prisma.crl.findFirst({
        where: { caId, shard: scope.shard, baseNumber: scope.delta ? { not: null } : null },
        orderBy: { number: 'desc' },
        select: { number: true, thisUpdate: true, nextUpdate: true },
      }),
    async shardsInUse(caId) {
      const rows = await prisma.crl.findMany({ where: { caId, shard: { gt: 0 } }, distinct: ['shard'], select: { shard: true } });
      return rows.map((r) => r.shard);
    },
    async get(caId, number) {
      const row = await prisma.crl.findFirst({ where: { caId, number } });
      if (!row) return null;
      // Stored whole, or in pieces in order of idx (crl-chunks.ts).
      let der = Buffer.from(row.der);
      if (row.chunks !== 0) {
        const parts = await prisma.crlChunk.findMany({ where: { crlId: row.id }, orderBy: { idx: 'asc' }, select: { data: true } });
        der = Buffer.concat(parts.map((c) => c.data));
      }
      return { caId: row.caId, number: row.number, thisUpdate: row.thisUpdate, nextUpdate: row.nextUpdate, der, entries: row.entries };
    },
    async changedSince(caId, shard, since) {
      return Boolean(
        (await prisma.certificate.findFirst({
          where: { caId, crlShard: shard > 0 ? shard : null, statusChangedAt: { gte: since } },
          select: { serial: true },
        })) ??
          (shard === 0 ? await prisma.certificateAuthority.findFirst({ where: { parentId: caId, revokedAt: { gte: since } }, select: { id: true } }) : null),
      );
    },
    async shardOf(serial) {
      return (await prisma.certificate.findUnique({ where: { serial }, select: { crlShard: true } }))?.crlShard ?? 0;
    },
    async changes(caId, shard, since, notAfterAfter) {
      // Few rows (what changed since the last full CRL): through Prisma, in serial order.
      return prisma.certificate.findMany({
        where: { caId, crlShard: shard > 0 ? shard : null, statusChangedAt: { gte: since }, notAfter: { gt: notAfterAfter } },
        orderBy: { serial: 'asc' },
        select: { serial: true, status: true, revokedAt: true, revocationReason: true, invalidityDate: true, statusChangedAt: true },
      });
    },
    async nextNumber(caId) {
      const { crlNumber } = await prisma.certificateAuthority.update({
        where: { id: caId },
        data: { crlNumber: { increment: 1 } },
        select: { crlNumber: true },
      });
      return crlNumber;
    },
    openRevoked: (caId, shard, notAfterAfter) => openRevoked(db.target, caId, shard, notAfterAfter),
    async revokedChildren(caId) {
      const select = { id: true, serial: true, revokedAt: true, revocationReason: true } as const;
      // Child CAs, and the further certificates this CA signed for CA keys (cross-certificates,
      // superseded CA certificates), once revoked.
      const [cas, extra] = await Promise.all([
        prisma.certificateAuthority.findMany({ where: { parentId: caId, status: 'revoked' }, select }),
        prisma.caCertificate.findMany({ where: { issuerId: caId, status: 'revoked' }, select }),
      ]);
      return [...cas, ...extra];
    },
    write: (crl, buildAudit) => db.issuanceWriter().writeCrl(crl, buildAudit),
  };
}
