/**
 * The ACME server's storage (acme/store.ts declares what it needs), over Prisma for both
 * providers: ACME has no hot path that needed driver SQL. Each ACME table's rows become model
 * records in one function per table below; nothing else here shapes an ACME row.
 *
 * The statements are the ones the ACME code issued itself before they moved here: the same
 * filters, order, limits and selected columns, and the same connection — the transaction
 * client when a `tx` is given, else the shared client (on SQLite the reading connection, see
 * storage/database.ts) — so locking and transaction boundaries are unchanged.
 */
import type { AcmeStore, AddressLimited, Claim } from '../acme/store.js';
import {
  INTERRUPTED_MARK,
  type AcmeAccountRecord,
  type AcmeAuthorizationRecord,
  type AcmeChallengeRecord,
  type AcmeEabKeyRecord,
  type AcmeOrderRecord,
} from '../model/acme.js';
import { prismaOf, type StorageDatabase, type Tx, type PrismaTx } from './database.js';
import type { AcmeAccount, AcmeAuthorization, AcmeChallenge, AcmeEabKey, AcmeOrder } from './generated/sqlite/client.js';

// ---- one row mapping per table ------------------------------------------------------------------

const toAccount = (r: AcmeAccount): AcmeAccountRecord => ({
  id: r.id,
  thumbprint: r.thumbprint,
  jwk: r.jwk,
  status: r.status,
  contact: r.contact,
  profile: r.profile,
  eabKeyId: r.eabKeyId,
  sourceKey: r.sourceKey,
  createdAt: r.createdAt,
  mac: r.mac,
});

const toOrder = (r: AcmeOrder): AcmeOrderRecord => ({
  id: r.id,
  accountId: r.accountId,
  profile: r.profile,
  status: r.status,
  expires: r.expires,
  identifiers: r.identifiers,
  authorizations: r.authorizations,
  notBefore: r.notBefore,
  notAfter: r.notAfter,
  error: r.error,
  certificateSerial: r.certificateSerial,
  replaces: r.replaces,
  processingSince: r.processingSince,
  csrHash: r.csrHash,
  sourceKey: r.sourceKey,
  createdAt: r.createdAt,
});

const toAuthorization = (r: AcmeAuthorization): AcmeAuthorizationRecord => ({
  id: r.id,
  accountId: r.accountId,
  identifierType: r.identifierType,
  identifierValue: r.identifierValue,
  wildcard: r.wildcard,
  status: r.status,
  expires: r.expires,
  createdAt: r.createdAt,
  mac: r.mac,
});

const toChallenge = (r: AcmeChallenge): AcmeChallengeRecord => ({
  id: r.id,
  authorizationId: r.authorizationId,
  type: r.type,
  token: r.token,
  status: r.status,
  validated: r.validated,
  error: r.error,
  processingSince: r.processingSince,
  createdAt: r.createdAt,
});

const toEabKey = (r: AcmeEabKey): AcmeEabKeyRecord => ({
  id: r.id,
  sealed: r.sealed,
  kekId: r.kekId,
  profile: r.profile,
  boundAccountId: r.boundAccountId,
  createdAt: r.createdAt,
});

const maybe = <R, T>(r: R | null, map: (r: R) => T): T | null => (r ? map(r) : null);

// ---- shared filters -----------------------------------------------------------------------------

/** Prisma's code for a unique constraint that refused a write. */
const isUniqueViolation = (e: unknown) => (e as { code?: unknown })?.code === 'P2002';

/** `processing` rows whose claim is older than `claimedBefore`, or was never timed. */
const staleClaims = (claimedBefore: Date) => ({ status: 'processing', OR: [{ processingSince: null }, { processingSince: { lte: claimedBefore } }] });

/** A processing row still under the claim it was given. */
const underClaim = (c: Claim) => ({ id: c.id, status: 'processing', processingSince: c.processingSince });

/** An order with no certificate that is not being finalized: one housekeeping may delete once expired. */
const unissued = { certificateSerial: null, status: { not: 'processing' } };

export function createAcmeStore(db: StorageDatabase): AcmeStore {
  const client = (tx?: Tx): PrismaTx => (tx ? prismaOf(tx) : db.prisma);
  const recentFrom = (what: AddressLimited, sourceKey: string, since: Date) =>
    // Accounts bound by an External Account Binding key are the operator's to hand out: not counted.
    what === 'accounts' ? { sourceKey, createdAt: { gt: since }, eabKeyId: null } : { sourceKey, createdAt: { gt: since } };

  return {
    // ---- accounts and EAB keys ----

    account: async (id) => maybe(await db.prisma.acmeAccount.findUnique({ where: { id } }), toAccount),
    accountByKey: async (profile, thumbprint) =>
      maybe(await db.prisma.acmeAccount.findUnique({ where: { profile_thumbprint: { profile, thumbprint } } }), toAccount),
    eabKey: async (id) => maybe(await db.prisma.acmeEabKey.findUnique({ where: { id } }), toEabKey),
    createAccount: async (a, tx) => toAccount(await client(tx).acmeAccount.create({ data: a })),
    updateAccount: async (id, change, tx) => toAccount(await client(tx).acmeAccount.update({ where: { id }, data: change })),
    async bindEabKey(id, accountId, tx) {
      return (await client(tx).acmeEabKey.updateMany({ where: { id, boundAccountId: null }, data: { boundAccountId: accountId } })).count === 1;
    },
    // A copy in a plain ArrayBuffer: what Prisma's Bytes takes (a Buffer may sit in a shared pool).
    async createEabKey(key, tx) {
      await client(tx).acmeEabKey.create({ data: { ...key, sealed: new Uint8Array(key.sealed) } });
    },

    // ---- per-address limits (counted where the row is inserted) ----

    async countCreatedFrom(what, sourceKey, since, tx) {
      const where = recentFrom(what, sourceKey, since);
      return what === 'accounts' ? client(tx).acmeAccount.count({ where }) : client(tx).acmeOrder.count({ where });
    },
    async firstCreatedFrom(what, sourceKey, since, tx) {
      const where = recentFrom(what, sourceKey, since);
      const oldest =
        what === 'accounts'
          ? await client(tx).acmeAccount.findFirst({ where, orderBy: { createdAt: 'asc' }, select: { createdAt: true } })
          : await client(tx).acmeOrder.findFirst({ where, orderBy: { createdAt: 'asc' }, select: { createdAt: true } });
      return oldest?.createdAt ?? null;
    },

    // ---- nonces ----

    async recordUsedNonce(value, expiresAt) {
      try {
        await db.prisma.acmeNonce.create({ data: { value, expiresAt } });
        return true;
      } catch (e) {
        if (isUniqueViolation(e)) return false;
        throw e;
      }
    },
    purgeUsedNonces: async (before) => (await db.prisma.acmeNonce.deleteMany({ where: { expiresAt: { lt: before } } })).count,
    isDuplicate: isUniqueViolation,

    // ---- orders ----

    order: async (id) => maybe(await db.prisma.acmeOrder.findUnique({ where: { id } }), toOrder),
    liveOrderIds: (accountId, profile) =>
      db.prisma.acmeOrder.findMany({
        where: { accountId, profile, status: { in: ['pending', 'ready', 'processing', 'valid'] } },
        orderBy: { createdAt: 'desc' },
        take: 1000,
        select: { id: true },
      }),
    orderByCertificate: async (serial) =>
      maybe(await db.prisma.acmeOrder.findFirst({ where: { certificateSerial: serial }, orderBy: { createdAt: 'asc' } }), toOrder),
    // An undefined accountId is no condition at all (Prisma leaves it out of the statement).
    countOrdersWithCertificate: (serial, accountId) => db.prisma.acmeOrder.count({ where: { certificateSerial: serial, accountId } }),
    countOrdersSince: (accountId, since) => db.prisma.acmeOrder.count({ where: { accountId, createdAt: { gt: since } } }),
    countUnhashedInterruptedOrders: (accountId, identifiers) =>
      db.prisma.acmeOrder.count({
        where: { accountId, csrHash: null, identifiers, OR: [{ status: 'processing' }, { status: 'invalid', error: { contains: INTERRUPTED_MARK } }] },
      }),
    staleOrders: async (claimedBefore, limit) => (await db.prisma.acmeOrder.findMany({ where: staleClaims(claimedBefore), take: limit })).map(toOrder),
    expiredUnissuedOrderIds: async (before, limit) =>
      (await db.prisma.acmeOrder.findMany({ where: { expires: { lt: before }, ...unissued }, select: { id: true }, take: limit })).map((o) => o.id),
    createOrder: async (o, tx) => toOrder(await client(tx).acmeOrder.create({ data: o })),
    updateOrder: async (id, change) => toOrder(await db.prisma.acmeOrder.update({ where: { id }, data: change })),
    async invalidateReadyOrder(id, error) {
      await db.prisma.acmeOrder.updateMany({ where: { id, status: 'ready' }, data: { status: 'invalid', error } });
    },
    async claimReadyOrder(id, since, csrHash) {
      return (
        (await db.prisma.acmeOrder.updateMany({ where: { id, status: 'ready' }, data: { status: 'processing', processingSince: since, csrHash } })).count === 1
      );
    },
    updateClaimedOrder: async (claim, change, tx) => (await client(tx).acmeOrder.updateMany({ where: underClaim(claim), data: change })).count === 1,
    // Re-checked in the delete: an order that got its certificate meanwhile stays.
    deleteUnissuedOrders: async (ids) => (await db.prisma.acmeOrder.deleteMany({ where: { id: { in: ids }, ...unissued } })).count,

    // ---- authorizations ----

    authorizationsByIds: async (ids) => (await db.prisma.acmeAuthorization.findMany({ where: { id: { in: ids } } })).map(toAuthorization),
    async authorizationWithChallenges(id) {
      const r = await db.prisma.acmeAuthorization.findUnique({ where: { id }, include: { challenges: true } });
      return r ? { ...toAuthorization(r), challenges: r.challenges.map(toChallenge) } : null;
    },
    countPendingAuthorizations: (accountId, unexpiredAt) =>
      db.prisma.acmeAuthorization.count({ where: { accountId, status: 'pending', expires: { gt: unexpiredAt } } }),
    validAuthorizations: async (accountId, identifierValues, now) =>
      (
        await db.prisma.acmeAuthorization.findMany({ where: { accountId, status: 'valid', identifierValue: { in: identifierValues }, expires: { gt: now } } })
      ).map(toAuthorization),
    reusableAuthorizations: async (accountId, identifierType, identifierValue, wildcard, expiresAfter, tx) =>
      (
        await client(tx).acmeAuthorization.findMany({
          where: { accountId, identifierType, identifierValue, wildcard, status: { in: ['valid', 'pending'] }, expires: { gt: expiresAfter } },
          orderBy: { createdAt: 'desc' },
          take: 10,
        })
      ).map(toAuthorization),
    expiredAuthorizationIds: async (before, limit) =>
      (await db.prisma.acmeAuthorization.findMany({ where: { expires: { lt: before } }, select: { id: true }, take: limit })).map((a) => a.id),
    async createAuthorization(a, tx) {
      await client(tx).acmeAuthorization.create({ data: a });
    },
    async updateAuthorization(id, change, tx) {
      await client(tx).acmeAuthorization.update({ where: { id }, data: change });
    },
    async deactivateAuthorizationsOf(accountId, tx) {
      await client(tx).acmeAuthorization.updateMany({ where: { accountId, status: { in: ['pending', 'valid'] } }, data: { status: 'deactivated' } });
    },
    async invalidatePendingAuthorization(id, tx) {
      await client(tx).acmeAuthorization.updateMany({ where: { id, status: 'pending' }, data: { status: 'invalid' } });
    },
    async deleteAuthorizationsWithChallenges(ids) {
      const [challenges, authorizations] = await db.prisma.$transaction(async (tx) => [
        await tx.acmeChallenge.deleteMany({ where: { authorizationId: { in: ids } } }),
        await tx.acmeAuthorization.deleteMany({ where: { id: { in: ids } } }),
      ]);
      return { authorizations: authorizations.count, challenges: challenges.count };
    },

    // ---- challenges ----

    async challengeWithAuthorization(id) {
      const r = await db.prisma.acmeChallenge.findUnique({ where: { id }, include: { authorization: true } });
      return r ? { ...toChallenge(r), authorization: toAuthorization(r.authorization) } : null;
    },
    // A validation the server interrupted (recovery.ts) is not the client's failure.
    countFailedValidationsSince: (accountId, since) =>
      db.prisma.acmeChallenge.count({
        where: {
          status: 'invalid',
          createdAt: { gt: since },
          authorization: { accountId },
          OR: [{ error: null }, { NOT: { error: { contains: INTERRUPTED_MARK } } }],
        },
      }),
    staleChallenges: async (claimedBefore, limit) =>
      (await db.prisma.acmeChallenge.findMany({ where: staleClaims(claimedBefore), take: limit })).map(toChallenge),
    async createChallenge(c, tx) {
      await client(tx).acmeChallenge.create({ data: c });
    },
    async claimPendingChallenge(id, since) {
      return (
        (await db.prisma.acmeChallenge.updateMany({ where: { id, status: 'pending' }, data: { status: 'processing', processingSince: since } })).count === 1
      );
    },
    updateClaimedChallenge: async (claim, change, tx) => (await client(tx).acmeChallenge.updateMany({ where: underClaim(claim), data: change })).count === 1,

    // ---- what ACME reads of certificates, CAs and the audit trail ----

    certificateForChain: (serial) => db.prisma.certificate.findUnique({ where: { serial }, select: { der: true, caId: true } }),
    caForChain: (id) => db.prisma.certificateAuthority.findUnique({ where: { id }, select: { certificateDer: true, parentId: true } }),
    certificateForRevocation: (serial) =>
      db.prisma.certificate.findUnique({ where: { serial }, select: { der: true, status: true, sans: true, profile: true } }),
    certificateForRenewal: (serial) =>
      db.prisma.certificate.findUnique({
        where: { serial },
        select: { serial: true, der: true, notBefore: true, notAfter: true, status: true, caId: true, profile: true },
      }),
    caSuccession: (id) => db.prisma.certificateAuthority.findUnique({ where: { id }, select: { status: true, retiringSince: true, overlapEndsAt: true } }),
    certificatesCreatedSince: (profile, since, csrHash) =>
      db.prisma.certificate.findMany({
        where: { profile, createdAt: { gte: since }, ...(csrHash ? { csrHash } : {}) },
        select: { serial: true, sans: true, notBefore: true, notAfter: true, createdAt: true },
        orderBy: { createdAt: 'asc' },
        take: 1000,
      }),
    countAuditEvents: (q) => db.prisma.auditEvent.count({ where: { time: { gte: q.from, lte: q.to }, action: q.action, target: q.target, actor: q.actor } }),
  };
}
