/**
 * Stored CAs: the consumers' CaStore (ca/ca-store.ts), through Prisma (CA rows are few and
 * cold; the hot OCSP status read that includes them is in hot-reads.ts).
 */
import type { CaStore } from '../ca/ca-store.js';
import { SignetError } from '../errors.js';
import type { CaCertificateRecord, CaRecord } from '../model/ca.js';
import { bytes } from './bytes.js';
import { prismaOf, type StorageDatabase, type Tx, type PrismaTx } from './database.js';

/** Prisma's select of a whole CA row: no relation is loaded. */
const CA_SELECT = {
  id: true,
  name: true,
  parentId: true,
  certificateDer: true,
  subject: true,
  serial: true,
  fingerprint: true,
  keyAlgorithm: true,
  keyId: true,
  status: true,
  pathLen: true,
  notBefore: true,
  notAfter: true,
  crlNumber: true,
  revokedAt: true,
  revocationReason: true,
  predecessorId: true,
  retiringSince: true,
  overlapEndsAt: true,
  createdAt: true,
} as const satisfies { [C in keyof CaRecord]: true };

const CA_CERT_SELECT = {
  id: true,
  caId: true,
  issuerId: true,
  kind: true,
  certificateDer: true,
  serial: true,
  fingerprint: true,
  notBefore: true,
  notAfter: true,
  status: true,
  revokedAt: true,
  revocationReason: true,
  createdAt: true,
} as const satisfies { [C in keyof CaCertificateRecord]: true };

const caCertRecord = <T extends { kind: string }>(r: T) => ({ ...r, kind: r.kind as CaCertificateRecord['kind'] });

export function caStore(db: StorageDatabase): CaStore {
  const client = (tx?: Tx): PrismaTx => (tx ? prismaOf(tx) : db.prisma);
  return {
    get: (id, tx) => client(tx).certificateAuthority.findUnique({ where: { id }, select: CA_SELECT }),
    async exists(id) {
      return (await db.prisma.certificateAuthority.count({ where: { id } })) > 0;
    },
    byFingerprint: (fingerprint) => db.prisma.certificateAuthority.findUnique({ where: { fingerprint }, select: CA_SELECT }),
    list: () => db.prisma.certificateAuthority.findMany({ orderBy: { createdAt: 'asc' }, select: CA_SELECT }),
    onlineActive: (opts) =>
      db.prisma.certificateAuthority.findMany({
        where: { status: 'active', keyId: { not: null }, ...(opts?.intermediates ? { parentId: { not: null } } : {}) },
        orderBy: { createdAt: 'asc' },
        select: { id: true, keyId: true, parentId: true, pathLen: true, predecessorId: true, createdAt: true },
      }),
    insert: (ca, tx) => client(tx).certificateAuthority.create({ data: { ...ca, certificateDer: bytes(ca.certificateDer) }, select: CA_SELECT }),
    async markOffline(id, tx) {
      await client(tx).certificateAuthority.update({ where: { id }, data: { keyId: null, status: 'offline' } });
    },
    async moveKey(id, from, to, tx) {
      const r = await client(tx).certificateAuthority.updateMany({ where: { id, keyId: from }, data: { keyId: to } });
      if (r.count !== 1) throw new SignetError('conflict', `CA ${id} no longer uses key ${from} (changed meanwhile); nothing was moved`);
    },
    async markRevoked(id, at, reason, tx) {
      await client(tx).certificateAuthority.update({ where: { id }, data: { status: 'revoked', revokedAt: at, revocationReason: reason } });
    },
    revocationEvents: (action, caId) =>
      db.prisma.auditEvent.findMany({
        where: { action, ...(caId !== undefined ? { target: caId } : {}) },
        select: { seq: true, time: true, target: true, details: true },
        orderBy: { seq: 'asc' },
        ...(caId !== undefined ? { take: 1 } : {}),
      }),
    successorOf: (id, tx) => client(tx).certificateAuthority.findUnique({ where: { predecessorId: id }, select: CA_SELECT }),
    async markRetiring(id, since, overlapEndsAt, tx) {
      const r = await client(tx).certificateAuthority.updateMany({
        where: { id, status: 'active' },
        data: { status: 'retiring', retiringSince: since, overlapEndsAt },
      });
      return r.count === 1;
    },
    async markRetired(id, tx) {
      const r = await client(tx).certificateAuthority.updateMany({ where: { id, status: 'retiring' }, data: { status: 'retired' } });
      return r.count === 1;
    },
    async recertify(id, from, cert, tx) {
      const r = await client(tx).certificateAuthority.updateMany({
        where: { id, fingerprint: from },
        data: { ...cert, certificateDer: bytes(cert.certificateDer) },
      });
      if (r.count !== 1) throw new SignetError('conflict', `CA ${id}'s certificate changed meanwhile; nothing was renewed (run the command again)`);
    },
    async lastNotAfterSigned(caId) {
      const [leaf, child, extra] = await Promise.all([
        db.prisma.certificate.aggregate({ where: { caId }, _max: { notAfter: true } }),
        db.prisma.certificateAuthority.aggregate({ where: { parentId: caId, id: { not: caId } }, _max: { notAfter: true } }),
        db.prisma.caCertificate.aggregate({ where: { issuerId: caId, caId: { not: caId } }, _max: { notAfter: true } }),
      ]);
      const ends = [leaf._max.notAfter, child._max.notAfter, extra._max.notAfter].filter((d): d is Date => d !== null);
      return ends.length ? new Date(Math.max(...ends.map((d) => d.getTime()))) : null;
    },
    async hasUnexpiredCertificates(caId, now) {
      const unexpired = { notAfter: { gt: now } };
      // Leaves, child CA certificates and cross- or superseded certificates it signed: each needs its CRL and OCSP.
      const [leaf, child, extra] = await Promise.all([
        db.prisma.certificate.findFirst({ where: { caId, ...unexpired }, select: { serial: true } }),
        db.prisma.certificateAuthority.findFirst({ where: { parentId: caId, id: { not: caId }, ...unexpired }, select: { id: true } }),
        db.prisma.caCertificate.findFirst({ where: { issuerId: caId, caId: { not: caId }, ...unexpired }, select: { id: true } }),
      ]);
      return leaf !== null || child !== null || extra !== null;
    },
    async caCertificates(filter = {}) {
      const rows = await db.prisma.caCertificate.findMany({ where: filter, orderBy: { createdAt: 'asc' }, select: CA_CERT_SELECT });
      return rows.map(caCertRecord);
    },
    async caCertificate(id) {
      const r = await db.prisma.caCertificate.findUnique({ where: { id }, select: CA_CERT_SELECT });
      return r ? caCertRecord(r) : null;
    },
    async insertCaCertificate(c, tx) {
      return caCertRecord(await client(tx).caCertificate.create({ data: { ...c, certificateDer: bytes(c.certificateDer) }, select: CA_CERT_SELECT }));
    },
    async revokeCaCertificate(id, at, reason, tx) {
      const r = await client(tx).caCertificate.updateMany({
        where: { id, status: 'good' },
        data: { status: 'revoked', revokedAt: at, revocationReason: reason },
      });
      return r.count === 1;
    },
    async revokeCaCertificates(caId, at, reason, tx) {
      const where = { caId, status: 'good' };
      const rows = await client(tx).caCertificate.findMany({ where, select: { serial: true, issuerId: true } });
      await client(tx).caCertificate.updateMany({ where, data: { status: 'revoked', revokedAt: at, revocationReason: reason } });
      return rows;
    },
  };
}
