/**
 * The rows `signet audit verify` holds against the trail, and that sealing at upgrade gives
 * MACs (src/ca/audit-verify.ts, src/ca/row-seal.ts): certificate serials and statuses, CA rows,
 * ACME accounts, authorizations and EAB keys, read in pages or counted, through Prisma. Only
 * the fields those checks cover are returned.
 */
import { prismaOf, type StorageDatabase, type Tx, type PrismaTx } from './database.js';

export interface SerialStatus {
  serial: string;
  status: string;
}
export interface CaRow {
  id: string;
  status: string;
  parentId: string | null;
  certificateDer: Uint8Array;
}
export interface AccountRow {
  id: string;
  profile: string;
  thumbprint: string;
  jwk: string;
  status: string;
  mac: string | null;
}
export interface AuthorizationRow {
  id: string;
  accountId: string;
  identifierType: string;
  identifierValue: string;
  wildcard: boolean;
  status: string;
  expires: Date;
  mac: string | null;
}
export interface EabKeyRow {
  id: string;
  profile: string | null;
  sealed: Uint8Array;
}

export class IntegrityStore {
  constructor(private readonly db: StorageDatabase) {}

  private client(tx?: Tx): PrismaTx {
    return tx ? prismaOf(tx) : this.db.prisma;
  }

  /** The next `take` certificate serials after `after`, in serial order. */
  async serialsAfter(after: string, take: number): Promise<string[]> {
    return (await this.db.prisma.certificate.findMany({ where: { serial: { gt: after } }, select: { serial: true }, orderBy: { serial: 'asc' }, take })).map(
      (c) => c.serial,
    );
  }

  /** Which of `serials` are stored. */
  async storedSerials(serials: string[]): Promise<string[]> {
    return (await this.db.prisma.certificate.findMany({ where: { serial: { in: serials } }, select: { serial: true } })).map((c) => c.serial);
  }

  statusesOf(serials: string[]): Promise<SerialStatus[]> {
    return this.db.prisma.certificate.findMany({ where: { serial: { in: serials } }, select: { serial: true, status: true } });
  }

  /** The next `take` certificates not 'good' after `after`, in serial order. */
  notGoodAfter(after: string, take: number): Promise<SerialStatus[]> {
    return this.db.prisma.certificate.findMany({
      where: { status: { not: 'good' }, serial: { gt: after } },
      select: { serial: true, status: true },
      orderBy: { serial: 'asc' },
      take,
    });
  }

  async caIds(): Promise<string[]> {
    return (await this.db.prisma.certificateAuthority.findMany({ select: { id: true } })).map((c) => c.id);
  }

  cas(): Promise<CaRow[]> {
    return this.db.prisma.certificateAuthority.findMany({ select: { id: true, status: true, parentId: true, certificateDer: true } });
  }

  accountsAfter(after: string, take: number): Promise<AccountRow[]> {
    return this.db.prisma.acmeAccount.findMany({ where: { id: { gt: after } }, orderBy: { id: 'asc' }, take });
  }

  validAuthorizationsAfter(after: string, take: number): Promise<AuthorizationRow[]> {
    return this.db.prisma.acmeAuthorization.findMany({ where: { status: 'valid', id: { gt: after } }, orderBy: { id: 'asc' }, take });
  }

  // ---- sealing at upgrade ----

  countUnsealedAccounts(): Promise<number> {
    return this.db.prisma.acmeAccount.count({ where: { mac: null } });
  }

  countUnsealedValidAuthorizations(): Promise<number> {
    return this.db.prisma.acmeAuthorization.count({ where: { status: 'valid', mac: null } });
  }

  countDirectoryEabKeys(): Promise<number> {
    return this.db.prisma.acmeEabKey.count({ where: { profile: { not: null } } });
  }

  unsealedAccounts(tx?: Tx): Promise<AccountRow[]> {
    return this.client(tx).acmeAccount.findMany({ where: { mac: null } });
  }

  async setAccountMac(id: string, mac: string, tx?: Tx): Promise<void> {
    await this.client(tx).acmeAccount.update({ where: { id }, data: { mac } });
  }

  /** Expires every valid authorization without a MAC; how many. */
  async expireUnsealedAuthorizations(tx?: Tx): Promise<number> {
    return (await this.client(tx).acmeAuthorization.updateMany({ where: { status: 'valid', mac: null }, data: { status: 'expired' } })).count;
  }

  /** EAB keys bound to a directory. */
  directoryEabKeys(tx?: Tx): Promise<EabKeyRow[]> {
    return this.client(tx).acmeEabKey.findMany({ where: { profile: { not: null } } });
  }

  async resealEabKey(id: string, sealed: Uint8Array, kekId: string, tx?: Tx): Promise<void> {
    await this.client(tx).acmeEabKey.update({ where: { id }, data: { sealed: new Uint8Array(sealed), kekId } });
  }
}
