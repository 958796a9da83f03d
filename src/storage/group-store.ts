/** Key group rows (KeyGroup, KeyGroupMember, KeyGroupNode, KeyGroupEpoch, KeyGroupFreeLeaf) through Prisma (groups/service.ts GroupStore). */
import type { GroupChange, GroupStore, KeyGroupRecord, StoredNode } from '../groups/service.js';
import type { NodeRef } from '../groups/key-tree.js';
import type { CertificateRecord } from '../model/certificate.js';
import { CERTIFICATE_SELECT } from './certificate-row.js';
import { prismaOf, type PrismaTx, type StorageDatabase, type Tx } from './database.js';
import { pgTime, sqliteTime } from './db-time.js';

export class PrismaGroupStore implements GroupStore {
  constructor(private readonly db: StorageDatabase) {}

  private client(tx?: Tx): PrismaTx {
    return tx ? prismaOf(tx) : this.db.prisma;
  }

  async create(g: { id: string; name: string; profile: string | null; createdBy: string }, tx: Tx): Promise<void> {
    await prismaOf(tx).keyGroup.create({ data: g });
  }

  byName(name: string, tx?: Tx): Promise<KeyGroupRecord | null> {
    return this.client(tx).keyGroup.findUnique({ where: { name } });
  }

  get(id: string, tx?: Tx): Promise<KeyGroupRecord | null> {
    return this.client(tx).keyGroup.findUnique({ where: { id } });
  }

  list(): Promise<KeyGroupRecord[]> {
    return this.db.prisma.keyGroup.findMany({ orderBy: { name: 'asc' } });
  }

  async memberCounts(): Promise<Map<string, number>> {
    const rows = await this.db.prisma.keyGroupMember.groupBy({ by: ['groupId'], _count: { _all: true } });
    return new Map(rows.map((r) => [r.groupId, r._count._all]));
  }

  memberCount(groupId: string): Promise<number> {
    return this.db.prisma.keyGroupMember.count({ where: { groupId } });
  }

  async members(groupId: string, after: string, take: number): Promise<{ serial: string; leaf: number; joinedEpoch: number; joinedAt: Date }[]> {
    return this.db.prisma.keyGroupMember.findMany({
      where: { groupId, serial: { gt: after } },
      orderBy: { serial: 'asc' },
      take,
      select: { serial: true, leaf: true, joinedEpoch: true, joinedAt: true },
    });
  }

  member(groupId: string, serial: string, tx?: Tx): Promise<{ leaf: number; joinedEpoch: number } | null> {
    return this.client(tx).keyGroupMember.findUnique({ where: { groupId_serial: { groupId, serial } }, select: { leaf: true, joinedEpoch: true } });
  }

  async groupsOf(serial: string, tx: Tx): Promise<string[]> {
    return (await prismaOf(tx).keyGroupMember.findMany({ where: { serial }, select: { groupId: true }, orderBy: { groupId: 'asc' } })).map((m) => m.groupId);
  }

  async expiredMembers(now: Date, take: number): Promise<string[]> {
    // The times as each provider stores them (db-time.ts): ISO text on SQLite, UTC timestamps on PostgreSQL.
    const sql =
      this.db.provider === 'sqlite'
        ? 'SELECT DISTINCT m."serial" FROM "KeyGroupMember" m JOIN "Certificate" c ON c."serial" = m."serial" WHERE c."notAfter" <= ? LIMIT ?'
        : 'SELECT DISTINCT m."serial" FROM "KeyGroupMember" m JOIN "Certificate" c ON c."serial" = m."serial" WHERE c."notAfter" <= $1::timestamp LIMIT $2';
    const at = this.db.provider === 'sqlite' ? sqliteTime(now) : pgTime(now);
    const rows = await this.db.prisma.$queryRawUnsafe<{ serial: string }[]>(sql, at, take);
    return rows.map((r) => r.serial);
  }

  async lowestFreedLeaf(groupId: string, tx: Tx): Promise<number | null> {
    return (await prismaOf(tx).keyGroupFreeLeaf.findFirst({ where: { groupId }, orderBy: { leaf: 'asc' }, select: { leaf: true } }))?.leaf ?? null;
  }

  nodes(groupId: string, refs: NodeRef[], tx?: Tx): Promise<StoredNode[]> {
    if (refs.length === 0) return Promise.resolve([]);
    return this.client(tx).keyGroupNode.findMany({
      // The group in every OR term, so that each is one primary-key lookup (with it outside, SQLite scanned the group's nodes).
      where: { OR: refs.map((r) => ({ groupId, level: r.level, pos: r.pos })) },
      select: { level: true, pos: true, version: true, sealed: true },
    });
  }

  async epochsAfter(groupId: string, since: number, upTo: number): Promise<{ epoch: number; updates: Uint8Array }[]> {
    return this.db.prisma.keyGroupEpoch.findMany({
      where: { groupId, epoch: { gt: since, lte: upTo } },
      orderBy: { epoch: 'asc' },
      select: { epoch: true, updates: true },
    });
  }

  async membersIssuedBy(caId: string, tx: Tx): Promise<string[]> {
    const sql =
      this.db.provider === 'sqlite'
        ? 'SELECT DISTINCT m."serial" FROM "KeyGroupMember" m JOIN "Certificate" c ON c."serial" = m."serial" WHERE c."caId" = ?'
        : 'SELECT DISTINCT m."serial" FROM "KeyGroupMember" m JOIN "Certificate" c ON c."serial" = m."serial" WHERE c."caId" = $1';
    return (await prismaOf(tx).$queryRawUnsafe<{ serial: string }[]>(sql, caId)).map((r) => r.serial);
  }

  /** Certificate rows by serial, in chunks (a bulk add's eligibility). */
  async certificates(serials: string[], tx?: Tx): Promise<CertificateRecord[]> {
    const out: CertificateRecord[] = [];
    for (let i = 0; i < serials.length; i += 1000)
      out.push(...(await this.client(tx).certificate.findMany({ where: { serial: { in: serials.slice(i, i + 1000) } }, select: CERTIFICATE_SELECT })));
    return out;
  }

  /** The DER of certificates by serial, in chunks (building every welcome). */
  // The bulk reads of every welcome go through the driver (storage/hot-reads.ts).
  certificateDers(serials: string[]): Promise<Map<string, Uint8Array>> {
    return this.db.hotReads().certificateDers(serials);
  }

  /** Every member with its leaf, in leaf order (building every welcome). */
  allMembers(groupId: string): Promise<{ serial: string; leaf: number }[]> {
    return this.db.hotReads().groupMembers(groupId);
  }

  /** Every node of the tree. */
  allNodes(groupId: string): Promise<StoredNode[]> {
    return this.db.hotReads().groupNodes(groupId);
  }

  /** A whole tree for an empty group, in one transaction: its nodes, its members, epoch 1. */
  async seed(
    g: { groupId: string; height: number; nextLeaf: number; nodes: StoredNode[]; members: { serial: string; leaf: number }[]; updates: Buffer },
    tx: Tx,
  ): Promise<void> {
    const p = prismaOf(tx);
    for (let i = 0; i < g.nodes.length; i += 5000)
      await p.keyGroupNode.createMany({ data: g.nodes.slice(i, i + 5000).map((n) => ({ groupId: g.groupId, ...n, sealed: new Uint8Array(n.sealed) })) });
    for (let i = 0; i < g.members.length; i += 5000)
      await p.keyGroupMember.createMany({
        data: g.members.slice(i, i + 5000).map((m) => ({ groupId: g.groupId, serial: m.serial, leaf: m.leaf, joinedEpoch: 1 })),
      });
    const moved = await p.keyGroup.updateMany({ where: { id: g.groupId, epoch: 0 }, data: { epoch: 1, height: g.height, nextLeaf: g.nextLeaf } });
    if (moved.count !== 1) throw new Error(`key group ${g.groupId} was changed during its bulk add`);
    await p.keyGroupEpoch.create({
      data: { groupId: g.groupId, epoch: 1, change: 'join', serial: g.members[0]!.serial, cause: 'request', updates: new Uint8Array(g.updates) },
    });
  }

  /** One change, all of it in the caller's transaction: the tree's nodes, the member, the epoch and its record. */
  async apply(c: GroupChange, tx: Tx): Promise<void> {
    const p = prismaOf(tx);
    const touched = [...c.removed, ...c.nodes];
    if (touched.length) await p.keyGroupNode.deleteMany({ where: { OR: touched.map((n) => ({ groupId: c.groupId, level: n.level, pos: n.pos })) } });
    if (c.nodes.length) await p.keyGroupNode.createMany({ data: c.nodes.map((n) => ({ groupId: c.groupId, ...n, sealed: new Uint8Array(n.sealed) })) });
    if (c.change === 'join') {
      await p.keyGroupMember.create({ data: { groupId: c.groupId, serial: c.serial, leaf: c.leaf, joinedEpoch: c.epoch } });
      await p.keyGroupFreeLeaf.deleteMany({ where: { groupId: c.groupId, leaf: c.leaf } });
    } else {
      await p.keyGroupMember.delete({ where: { groupId_serial: { groupId: c.groupId, serial: c.serial } } });
      await p.keyGroupFreeLeaf.create({ data: { groupId: c.groupId, leaf: c.leaf } });
    }
    // The epoch moves by compare-and-set: of two writers that read the same epoch one fails.
    const moved = await p.keyGroup.updateMany({
      where: { id: c.groupId, epoch: c.epoch - 1 },
      data: { epoch: c.epoch, height: c.height, nextLeaf: c.nextLeaf },
    });
    if (moved.count !== 1) throw new Error(`key group ${c.groupId} moved past epoch ${c.epoch - 1} during this change`);
    await p.keyGroupEpoch.create({
      data: { groupId: c.groupId, epoch: c.epoch, change: c.change, serial: c.serial, cause: c.cause, updates: new Uint8Array(c.updates) },
    });
  }
}
