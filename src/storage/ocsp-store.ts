/**
 * What the OCSP service reads and writes (ca/ocsp-store.ts). The status lookup on a cache miss
 * is a prepared statement on the driver (hot-reads.ts); the rest goes through Prisma.
 */
import type { OcspStore } from '../ca/ocsp-store.js';
import { bytes } from './bytes.js';
import { prismaOf, type StorageDatabase, type Tx } from './database.js';

export function ocspStore(db: StorageDatabase): OcspStore {
  const prisma = db.prisma;
  return {
    issuers: () => prisma.certificateAuthority.findMany({ select: { id: true, certificateDer: true, keyId: true } }),
    issuedWithSerial: (serial) => db.hotReads().issuedWithSerial(serial),
    async childCaId(parentId, serial) {
      const own = await prisma.certificateAuthority.findFirst({ where: { serial, parentId }, select: { id: true } });
      if (own) return own.id;
      // A cross- or superseded certificate speaks for the CA whose key it certifies.
      return (await prisma.caCertificate.findFirst({ where: { serial, issuerId: parentId }, select: { caId: true } }))?.caId ?? null;
    },
    async issuerOfLeaf(serial) {
      return (await prisma.certificate.findUnique({ where: { serial }, select: { caId: true } }))?.caId ?? null;
    },
    async statusChangedSince(since, limit) {
      const rows = await prisma.certificate.findMany({ where: { statusChangedAt: { gte: since } }, select: { serial: true }, take: limit });
      return rows.map((r) => r.serial);
    },
    currentResponder: (caId, now) =>
      prisma.ocspResponder.findFirst({
        where: { caId, notAfter: { gt: now } },
        orderBy: { notAfter: 'desc' },
        select: { id: true, caId: true, certificateDer: true, keyId: true, notBefore: true, notAfter: true },
      }),
    async insertResponder(r, tx?: Tx) {
      await (tx ? prismaOf(tx) : prisma).ocspResponder.create({ data: { ...r, certificateDer: bytes(r.certificateDer) } });
    },
  };
}
