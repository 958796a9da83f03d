/**
 * Stored certificates: the consumers' CertificateStore and RevocationStore (ca/certificate-store.ts).
 * The status read and the issuance commit run on the driver (hot-reads.ts, issuance-writer.ts);
 * the rest through Prisma. Rows are mapped once, by the certificate's declaration (certificate-row.ts).
 */
import type { CertificateStore, RevocationStore } from '../ca/certificate-store.js';
import type { CertificateRecord } from '../model/certificate.js';
import { CERTIFICATE_SELECT } from './certificate-row.js';
import { prismaOf, type StorageDatabase, type Tx, type PrismaTx } from './database.js';

export function certificateStore(db: StorageDatabase): CertificateStore & RevocationStore {
  const client = (tx?: Tx): PrismaTx => (tx ? prismaOf(tx) : db.prisma);
  const get = async (serial: string, tx?: Tx): Promise<CertificateRecord | null> =>
    client(tx).certificate.findUnique({ where: { serial }, select: CERTIFICATE_SELECT });
  return {
    get,
    status: (serial) => db.hotReads().certificateStatus(serial),
    insertIssued: (certs, buildAudit, recheck, spends) => db.issuanceWriter().write(certs, buildAudit, recheck, spends),
    async unrevokedSerials(caId) {
      const rows = await db.prisma.certificate.findMany({ where: { caId, status: { in: ['good', 'hold'] } }, select: { serial: true } });
      return rows.map((r) => r.serial);
    },
    async setRevoked(serial, from, change, tx) {
      // The status guard makes a concurrent second change a no-op, which the caller reports.
      const updated = await client(tx).certificate.updateMany({ where: { serial, status: from }, data: change });
      return updated.count === 1;
    },
    async releaseHold(serial, at, tx) {
      await client(tx).certificate.update({
        where: { serial },
        data: { status: 'good', revokedAt: null, revocationReason: null, invalidityDate: null, statusChangedAt: at },
      });
    },
  };
}
