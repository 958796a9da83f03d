/**
 * Key groups: Signet as the group controller of a logical key hierarchy (RFC 2627). A group's
 * members are certificates Signet issued; each holds the AES-256 keys of its path in the group's
 * key tree (key-tree.ts), the root key being the group key. Signet makes every node key, keeps
 * it only sealed by the key store (sealSecret, bound to group, node and version), and delivers:
 *   - a welcome: the member's path keys (messages.ts GroupKeys) in a CMS EnvelopedData
 *     addressed to the member's certificate (RSA-OAEP or ECDH, pki/cms-recipients.ts);
 *   - a rekey message: the node updates of the epochs after `since` (GroupRekey), each new key
 *     enveloped under its children's keys (KEK recipients), signed by the group controller
 *     (controller.ts) as a CMS SignedData.
 * A join re-keys the joiner's path (it reads no earlier epoch); a leave — asked for, or the
 * member's certificate revoked, put on hold or expired — re-keys the leaver's path in the same
 * transaction as its cause (the revocation's, for a revocation), so no commit leaves a
 * revoked certificate able to read a newer epoch. Each change is one epoch, stored with its
 * updates (KeyGroupEpoch) in the transaction that changes the tree; a crash leaves the group at
 * the last committed epoch, whole.
 *
 * Who may do what is authorization.ts's (group.* operations; a token's group limit).
 */
import { randomBytes } from 'node:crypto';
import { SignetError } from '../errors.js';
import { appendAudit, appendAudits } from '../ca/audit.js';
import { actorOf, authorize, authorizeGroup, type Principal } from '../ca/authorization.js';
import { normalizeSerial } from '../ca/serial.js';
import type { CaContext } from '../ca/context.js';
import type { CertificateRecord } from '../model/certificate.js';
import type { Requester } from '../ca/issuance.js';
import { KeyUsageFlags } from '@peculiar/asn1-x509';
import { readElement, readHeader } from '../pki/der.js';
import { envelop, recipientKeyKind } from '../pki/cms-recipients.js';
import { CmsError } from '../pki/cms-signed.js';
import { readTbsViewFast, readTbsViewFull } from '../pki/tbs-view.js';
import type { Tx } from '../storage/database.js';
import { childrenOf, nodeName, pathOf, planJoin, planLeave, wrapsOf, type NodeRef, type Plan } from './key-tree.js';
import { groupKeysDer, kekIdOf, nodeUpdateDer, rekeyDer, type NodeKey } from './messages.js';
import type { GroupController } from './controller.js';
import { WelcomePool } from './welcome-pool.js';

export interface KeyGroupRecord {
  id: string;
  name: string;
  profile: string | null;
  epoch: number;
  height: number;
  nextLeaf: number;
  createdAt: Date;
  createdBy: string;
}

export interface StoredNode {
  level: number;
  pos: number;
  version: number;
  sealed: Uint8Array;
}

export type LeaveCause = 'request' | 'revocation' | 'hold' | 'expiry';

/** One epoch's change, written in one transaction (storage/group-store.ts apply). */
export interface GroupChange {
  groupId: string;
  epoch: number;
  height: number;
  nextLeaf: number;
  change: 'join' | 'leave';
  serial: string;
  leaf: number;
  cause: LeaveCause;
  /** Nodes with a new key (replacing any stored one). */
  nodes: StoredNode[];
  /** Nodes that lose their key. */
  removed: NodeRef[];
  /** The epoch's NodeUpdates, concatenated (messages.ts). */
  updates: Buffer;
}

/** The key group rows (storage/group-store.ts). */
export interface GroupStore {
  create(g: { id: string; name: string; profile: string | null; createdBy: string }, tx: Tx): Promise<void>;
  byName(name: string, tx?: Tx): Promise<KeyGroupRecord | null>;
  get(id: string, tx?: Tx): Promise<KeyGroupRecord | null>;
  list(): Promise<KeyGroupRecord[]>;
  memberCount(groupId: string): Promise<number>;
  /** Members per group id, every group in one read (lists, gauges). */
  memberCounts(): Promise<Map<string, number>>;
  members(groupId: string, after: string, take: number): Promise<{ serial: string; leaf: number; joinedEpoch: number; joinedAt: Date }[]>;
  member(groupId: string, serial: string, tx?: Tx): Promise<{ leaf: number; joinedEpoch: number } | null>;
  /** The groups a certificate is a member of. */
  groupsOf(serial: string, tx: Tx): Promise<string[]>;
  /** Members whose certificate's notAfter is at or before `now` (at most `take`). */
  expiredMembers(now: Date, take: number): Promise<string[]>;
  lowestFreedLeaf(groupId: string, tx: Tx): Promise<number | null>;
  nodes(groupId: string, refs: NodeRef[], tx?: Tx): Promise<StoredNode[]>;
  /** The epoch records after `since` up to and including `upTo`. */
  epochsAfter(groupId: string, since: number, upTo: number): Promise<{ epoch: number; updates: Uint8Array }[]>;
  /** Members whose certificates a CA issued (their CA revoked). */
  membersIssuedBy(caId: string, tx: Tx): Promise<string[]>;
  apply(c: GroupChange, tx: Tx): Promise<void>;
  certificates(serials: string[], tx?: Tx): Promise<CertificateRecord[]>;
  allMembers(groupId: string): Promise<{ serial: string; leaf: number }[]>;
  certificateDers(serials: string[]): Promise<Map<string, Uint8Array>>;
  allNodes(groupId: string): Promise<StoredNode[]>;
  seed(
    g: { groupId: string; height: number; nextLeaf: number; nodes: StoredNode[]; members: { serial: string; leaf: number }[]; updates: Buffer },
    tx: Tx,
  ): Promise<void>;
}

/** The certificates a member can be (the certificate rows, read in the change's transaction). */
export interface MemberCertificates {
  get(serial: string, tx?: Tx): Promise<CertificateRecord | null>;
}

export const GROUP_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;
export const GROUP_ID = /^grp_[0-9a-f]{16}$/;
/** The built-in profile members' certificates come from unless a group names another. */
export const GROUP_MEMBER_PROFILE = 'group-member';
/** How far behind a rekey message carries a member; further behind, it fetches its welcome again. */
export const MAX_REKEY_EPOCHS = 128;
/** The most certificates one bulk add takes. */
export const MAX_BULK_MEMBERS = 1_000_000;

export interface GroupView {
  id: string;
  name: string;
  profile: string;
  epoch: number;
  members: number;
  treeHeight: number;
  createdAt: Date;
  createdBy: string;
}

const KEY_BYTES = 32;

/** One change as the metrics see it: its kind, its server time, the key wraps its rekey message holds. */
export interface ChangeTiming {
  change: 'join' | 'leave';
  seconds: number;
  wraps: number;
}

export class GroupService {
  private readonly observers: ((e: ChangeTiming) => void)[] = [];

  /** Called after each change is written (its server time: keys, wraps and the write; metrics). */
  observe(fn: (e: ChangeTiming) => void): void {
    this.observers.push(fn);
  }

  /** Members and epoch per group, for the gauges (every group: an operator's view). */
  async gauges(): Promise<{ name: string; members: number; epoch: number }[]> {
    const counts = await this.store.memberCounts();
    return (await this.store.list()).map((g) => ({ name: g.name, epoch: g.epoch, members: counts.get(g.id) ?? 0 }));
  }

  constructor(
    private readonly ctx: CaContext,
    private readonly store: GroupStore,
    private readonly certificates: MemberCertificates,
    private readonly cas: { get(id: string, tx?: Tx): Promise<{ status: string } | null> },
    private readonly controller: GroupController,
    private readonly profiles: ReadonlyMap<string, unknown>,
  ) {}

  // ---- Reading ---------------------------------------------------------------------------------

  /** A group by id (grp_…) or name; 404 naming what was asked for. Checks `who` may see it. */
  private async find(ref: string, who: Principal, op: Parameters<typeof authorizeGroup>[1], tx?: Tx): Promise<KeyGroupRecord> {
    authorize(who, op);
    // A token limited to named groups learns nothing of others, not even whether they exist:
    // a name outside its list is refused before the lookup, an id it cannot read as if it were.
    if (GROUP_NAME.test(ref)) authorizeGroup(who, op, ref);
    const g = GROUP_ID.test(ref) ? await this.store.get(ref, tx) : GROUP_NAME.test(ref) ? await this.store.byName(ref, tx) : null;
    if (!g) {
      authorizeGroup(who, op, ref);
      throw new SignetError('not-found', `key group ${JSON.stringify(ref.slice(0, 80))} does not exist`);
    }
    authorizeGroup(who, op, g.name);
    return g;
  }

  /** `members` when the caller counted them already (a list counts all groups in one query). */
  private async view(g: KeyGroupRecord, members?: number): Promise<GroupView> {
    return {
      id: g.id,
      name: g.name,
      profile: g.profile ?? GROUP_MEMBER_PROFILE,
      epoch: g.epoch,
      members: members ?? (await this.store.memberCount(g.id)),
      treeHeight: g.height,
      createdAt: g.createdAt,
      createdBy: g.createdBy,
    };
  }

  async list(who: Requester): Promise<GroupView[]> {
    authorize(who.principal, 'group.read');
    const all = await this.store.list();
    const visible = all.filter((g) => {
      try {
        authorizeGroup(who.principal, 'group.read', g.name);
        return true;
      } catch {
        return false;
      }
    });
    const counts = await this.store.memberCounts();
    return Promise.all(visible.map((g) => this.view(g, counts.get(g.id) ?? 0)));
  }

  async show(ref: string, who: Requester): Promise<GroupView & { memberList: { serial: string; leaf: number; joinedEpoch: number; joinedAt: Date }[] }> {
    const g = await this.find(ref, who.principal, 'group.read');
    return { ...(await this.view(g)), memberList: await this.store.members(g.id, '', 1000) };
  }

  // ---- Changing --------------------------------------------------------------------------------

  async create(input: { name: string; profile?: string }, who: Requester): Promise<GroupView> {
    authorize(who.principal, 'group.create');
    if (!GROUP_NAME.test(input.name))
      throw new SignetError('bad-request', 'name: a key group name is 1–63 lower-case letters, digits and hyphens, starting with a letter or digit');
    const profile = input.profile ?? null;
    if (profile !== null && !this.profiles.has(profile))
      throw new SignetError(
        'bad-request',
        `profile: ${JSON.stringify(profile)} is not a configured profile; configured: ${[...this.profiles.keys()].join(', ')}`,
      );
    const id = `grp_${randomBytes(8).toString('hex')}`;
    await this.ctx.db.transaction(async (tx) => {
      if (await this.store.byName(input.name, tx)) throw new SignetError('conflict', `key group ${input.name} already exists`);
      await this.store.create({ id, name: input.name, profile, createdBy: actorOf(who.principal) }, tx);
      await appendAudit(tx, {
        actor: actorOf(who.principal),
        action: 'group.created',
        target: id,
        sourceIp: who.sourceIp,
        details: { name: input.name, profile: profile ?? GROUP_MEMBER_PROFILE },
      });
    });
    return this.view((await this.store.get(id))!);
  }

  /**
   * Adds many certificates at once to an empty group, as one epoch: the whole tree is made in
   * one transaction (a fleet onboarded at once; joining one by one would make n epochs). Every
   * certificate is held to the same rules as add; one that fails refuses the whole request.
   */
  async addMany(ref: string, serials: string[], who: Requester): Promise<{ group: GroupView; epoch: number; members: number }> {
    const unique = [...new Set(serials.map(normalizeSerial))];
    if (unique.length === 0) throw new SignetError('bad-request', 'serials: name at least one certificate');
    if (unique.length !== serials.length) throw new SignetError('bad-request', 'serials: a certificate is named more than once');
    if (unique.length > MAX_BULK_MEMBERS) throw new SignetError('bad-request', `serials: at most ${MAX_BULK_MEMBERS} certificates at once`);
    const out = await this.ctx.db.transaction(async (tx) => {
      const g = await this.find(ref, who.principal, 'group.member.add', tx);
      if (g.epoch !== 0 || (await this.store.memberCount(g.id)) !== 0)
        throw new SignetError('conflict', `key group ${g.name} is not empty: add members to it one at a time (each re-keys only its path)`);
      const found = new Map((await this.store.certificates(unique, tx)).map((c) => [c.serial, c]));
      const issuers = new Map<string, string | null>();
      for (const c of found.values()) if (!issuers.has(c.caId)) issuers.set(c.caId, await this.issuerStatus(c.caId, tx));
      for (const serial of unique) {
        const cert = found.get(serial) ?? null;
        this.checkEligible(g, serial, cert, cert ? (issuers.get(cert.caId) ?? null) : null);
      }
      let height = 0;
      while (2 ** height < unique.length) height++;
      const epoch = 1;
      // Every node with a member below it, bottom-up: leaves 0..n-1, then their ancestors.
      const nodes: StoredNode[] = [];
      for (let level = 0, count = unique.length; level <= height; level++, count = Math.ceil(count / 2))
        for (let pos = 0; pos < count; pos++) {
          const key = randomBytes(KEY_BYTES);
          nodes.push({ level, pos, version: epoch, sealed: this.seal(g.id, { level, pos }, epoch, key) });
          key.fill(0);
        }
      await this.store.seed(
        { groupId: g.id, height, nextLeaf: unique.length, nodes, members: unique.map((serial, leaf) => ({ serial, leaf })), updates: Buffer.alloc(0) },
        tx,
      );
      await appendAudit(tx, {
        actor: actorOf(who.principal),
        action: 'group.members_added',
        target: g.id,
        sourceIp: who.sourceIp,
        details: { group: g.name, members: unique.length, epoch, cause: 'request', first: unique[0], last: unique[unique.length - 1] },
      });
      return { g, epoch };
    });
    return { group: await this.view((await this.store.get(out.g.id))!), epoch: out.epoch, members: unique.length };
  }

  /** Adds a certificate as a member: its path re-keyed, one epoch. */
  async add(ref: string, serialIn: string, who: Requester): Promise<{ group: GroupView; epoch: number; leaf: number; wraps: number }> {
    const serial = normalizeSerial(serialIn);
    const out = await this.ctx.db.transaction(async (tx) => {
      const g = await this.find(ref, who.principal, 'group.member.add', tx);
      const cert = await this.certificates.get(serial, tx);
      this.checkEligible(g, serial, cert, cert ? await this.issuerStatus(cert.caId, tx) : null);
      if (await this.store.member(g.id, serial, tx)) throw new SignetError('conflict', `certificate ${serial} is already a member of key group ${g.name}`);
      const freed = await this.store.lowestFreedLeaf(g.id, tx);
      // The lowest leaf a member left, else the next never given out while the tree has room.
      const free = freed ?? (g.nextLeaf < 2 ** g.height ? g.nextLeaf : null);
      const view = await this.treeView(g, free ?? 2 ** g.height, g.height + (free === null ? 1 : 0), tx);
      const plan = planJoin(view, free);
      const nextLeaf = Math.max(g.nextLeaf, plan.leaf + 1);
      const change = await this.change(g, plan, view, 'join', serial, 'request', nextLeaf, tx);
      await this.audit(tx, g, change, plan, actorOf(who.principal), who.sourceIp);
      return { g, epoch: change.epoch, leaf: plan.leaf, wraps: wrapsOf(plan) };
    });
    return { group: await this.view((await this.store.get(out.g.id))!), epoch: out.epoch, leaf: out.leaf, wraps: out.wraps };
  }

  async remove(ref: string, serialIn: string, who: Requester): Promise<{ group: GroupView; epoch: number; wraps: number }> {
    const serial = normalizeSerial(serialIn);
    const out = await this.ctx.db.transaction(async (tx) => {
      const g = await this.find(ref, who.principal, 'group.member.remove', tx);
      const r = await this.leave(g, serial, 'request', actorOf(who.principal), who.sourceIp, tx);
      if (!r) throw new SignetError('not-found', `certificate ${serial} is not a member of key group ${g.name}`);
      return { g, ...r };
    });
    return { group: await this.view((await this.store.get(out.g.id))!), epoch: out.epoch, wraps: out.wraps };
  }

  /**
   * In the transaction of a certificate's revocation or hold (ca/revocation.ts), or of the expiry
   * sweep: the certificate leaves every group it is a member of.
   */
  async leaveAll(tx: Tx, serial: string, cause: Exclude<LeaveCause, 'request'>, actor: string): Promise<void> {
    for (const groupId of await this.store.groupsOf(serial, tx)) {
      const g = await this.store.get(groupId, tx);
      if (g) await this.leave(g, serial, cause, actor, undefined, tx);
    }
  }

  /**
   * Members whose certificates expired leave their groups (cause 'expiry'), one certificate per
   * transaction; returns how many certificates left. Run by serve every minute (watchGroupExpiry).
   */
  async sweepExpired(): Promise<number> {
    let left = 0;
    for (;;) {
      const serials = await this.store.expiredMembers(this.ctx.now(), 100);
      for (const serial of serials) {
        await this.ctx.db.transaction((tx) => this.leaveAll(tx, serial, 'expiry', 'system:group-expiry'));
        left++;
      }
      if (serials.length < 100) return left;
    }
  }

  private async leave(
    g: KeyGroupRecord,
    serial: string,
    cause: LeaveCause,
    actor: string,
    sourceIp: string | undefined,
    tx: Tx,
  ): Promise<{ epoch: number; wraps: number } | null> {
    const m = await this.store.member(g.id, serial, tx);
    if (!m) return null;
    const view = await this.treeView(g, m.leaf, g.height, tx);
    const plan = planLeave(view, m.leaf);
    const change = await this.change(g, plan, view, 'leave', serial, cause, g.nextLeaf, tx);
    await this.audit(tx, g, change, plan, actor, sourceIp);
    return { epoch: change.epoch, wraps: wrapsOf(plan) };
  }

  /** Eligible: a Signet certificate, good, within its validity, of the group's profile, with a key a welcome can be addressed to. */
  private checkEligible(g: KeyGroupRecord, serial: string, cert: CertificateRecord | null, issuerStatus: string | null): asserts cert is CertificateRecord {
    if (!cert) throw new SignetError('not-found', `certificate ${serial} is not a certificate Signet issued`);
    if (cert.status !== 'good')
      throw new SignetError(
        'conflict',
        `certificate ${serial} is ${cert.status === 'hold' ? 'on hold' : cert.status}: only a good certificate can join a key group`,
      );
    if (issuerStatus === 'revoked') throw new SignetError('conflict', `certificate ${serial} was issued by CA ${cert.caId}, which is revoked`);
    const now = this.ctx.now();
    if (cert.notAfter.getTime() <= now.getTime()) throw new SignetError('conflict', `certificate ${serial} expired at ${cert.notAfter.toISOString()}`);
    if (cert.notBefore.getTime() > now.getTime()) throw new SignetError('conflict', `certificate ${serial} is not valid until ${cert.notBefore.toISOString()}`);
    const profile = g.profile ?? GROUP_MEMBER_PROFILE;
    if (cert.profile !== profile)
      throw new SignetError('policy', `key group ${g.name} takes certificates of profile ${profile}; certificate ${serial} is of profile ${cert.profile}`);
    let kind: ReturnType<typeof recipientKeyKind>;
    try {
      kind = recipientKeyKind(cert.der);
    } catch (e) {
      if (e instanceof CmsError) throw new SignetError('bad-key', `certificate ${serial} cannot receive group keys: ${e.message}`);
      throw e;
    }
    // The key must be certified for delivering keys: keyAgreement (ECDH) or keyEncipherment (RSA,
    // and ML-KEM: RFC 9629 §3 asks a KEM recipient's keyUsage to assert keyEncipherment).
    // Signet's own stored certificate: its TBS read in place (the schema parser costs ~1 ms, and a bulk add checks thousands).
    const der = Buffer.from(cert.der);
    const tbs = Buffer.from(readElement(der, readHeader(der, 0).headerLength));
    const tbsView = readTbsViewFast(tbs) ?? readTbsViewFull(tbs);
    const flags = typeof tbsView === 'string' ? 0 : tbsView.keyUsageFlags;
    const usage = kind === 'rsa-oaep' || kind === 'ml-kem-768' ? 'keyEncipherment' : 'keyAgreement';
    if (flags !== undefined && !(flags & KeyUsageFlags[usage]))
      throw new SignetError(
        'bad-key',
        `certificate ${serial}'s keyUsage does not allow ${usage}, which receiving group keys needs (issue it under profile ${GROUP_MEMBER_PROFILE})`,
      );
  }

  private async issuerStatus(caId: string, tx: Tx): Promise<string | null> {
    return (await this.cas.get(caId, tx))?.status ?? null;
  }

  /** In the transaction of a CA's revocation: the members whose certificates it issued leave their groups. */
  async leaveAllIssuedBy(tx: Tx, caId: string, actor: string): Promise<void> {
    for (const serial of await this.store.membersIssuedBy(caId, tx)) await this.leaveAll(tx, serial, 'revocation', actor);
  }

  /** The stored nodes on a leaf's path and their children: all a plan reads. */
  private async treeView(g: KeyGroupRecord, leaf: number, height: number, tx: Tx) {
    const path = pathOf(leaf, height);
    const refs = [...path, ...path.flatMap((n) => (n.level > 0 ? childrenOf(n) : []))].filter((n) => n.level <= g.height);
    const stored = new Map((await this.store.nodes(g.id, refs, tx)).map((n) => [nodeName(n), n]));
    return {
      height: g.height,
      has: (n: NodeRef) => stored.has(nodeName(n)),
      stored,
    };
  }

  /** New keys for the plan's nodes, sealed; their updates enveloped under the children's keys; written. */
  private async change(
    g: KeyGroupRecord,
    plan: Plan,
    view: { stored: Map<string, StoredNode> },
    change: 'join' | 'leave',
    serial: string,
    cause: LeaveCause,
    nextLeaf: number,
    tx: Tx,
  ): Promise<GroupChange> {
    const started = performance.now();
    const epoch = g.epoch + 1;
    const fresh = new Map<string, Buffer>();
    const keyOf = (n: NodeRef): { key: Buffer; version: number } => {
      const mine = fresh.get(nodeName(n));
      if (mine) return { key: mine, version: epoch };
      const s = view.stored.get(nodeName(n));
      if (!s) throw new Error(`key group ${g.id}: node ${nodeName(n)} holds no key`);
      return { key: this.unseal(g.id, s), version: s.version };
    };
    const nodes: StoredNode[] = [];
    const updates: Buffer[] = [];
    for (const r of plan.rekeyed) {
      const key = randomBytes(KEY_BYTES);
      fresh.set(nodeName(r.node), key);
      nodes.push({ ...r.node, version: epoch, sealed: this.seal(g.id, r.node, epoch, key) });
      if (r.under.length) {
        const recipients = r.under.map((u) => {
          const k = keyOf(u);
          return { kind: 'kek' as const, keyId: kekIdOf(g.name, u, k.version), key: k.key };
        });
        updates.push(nodeUpdateDer(epoch, r.node, epoch, envelop(key, recipients)));
      }
    }
    const c: GroupChange = {
      groupId: g.id,
      epoch,
      height: plan.height,
      nextLeaf,
      change,
      serial,
      leaf: plan.leaf,
      cause,
      nodes,
      removed: plan.removed,
      updates: Buffer.concat(updates),
    };
    await this.store.apply(c, tx);
    for (const k of fresh.values()) k.fill(0);
    const seconds = (performance.now() - started) / 1000;
    for (const o of this.observers) o({ change, seconds, wraps: wrapsOf(plan) });
    return c;
  }

  private async audit(tx: Tx, g: KeyGroupRecord, c: GroupChange, plan: Plan, actor: string, sourceIp: string | undefined): Promise<void> {
    await appendAudits(tx, [
      {
        actor,
        action: c.change === 'join' ? 'group.member_added' : 'group.member_removed',
        target: g.id,
        sourceIp,
        details: { group: g.name, serial: c.serial, leaf: c.leaf, epoch: c.epoch, cause: c.cause },
      },
      {
        actor,
        action: 'group.epoch_advanced',
        target: g.id,
        details: { group: g.name, epoch: c.epoch, change: c.change, serial: c.serial, cause: c.cause, rekeyed: plan.rekeyed.length, wraps: wrapsOf(plan) },
      },
    ]);
  }

  // ---- Delivering ------------------------------------------------------------------------------

  /** The member's path keys as of the group's epoch, enveloped to its certificate (DER ContentInfo). */
  async welcome(ref: string, serialIn: string, who: Requester): Promise<{ der: Buffer; epoch: number }> {
    const serial = normalizeSerial(serialIn);
    // One transaction: the group, the member and its path read as one state, and the fetch audited.
    const got = await this.ctx.db.transaction(async (tx) => {
      const g = await this.find(ref, who.principal, 'group.welcome', tx);
      const m = await this.store.member(g.id, serial, tx);
      if (!m) throw new SignetError('not-found', `certificate ${serial} is not a member of key group ${g.name}`);
      const cert = await this.certificates.get(serial, tx);
      if (!cert) throw new SignetError('not-found', `certificate ${serial} is not a certificate Signet issued`);
      const path = pathOf(m.leaf, g.height);
      const stored = new Map((await this.store.nodes(g.id, path, tx)).map((n) => [nodeName(n), n]));
      const keys: NodeKey[] = path.map((n) => {
        const s = stored.get(nodeName(n));
        if (!s) throw new Error(`key group ${g.id}: node ${nodeName(n)} on member ${serial}'s path holds no key`);
        return { node: n, version: s.version, key: this.unseal(g.id, s) };
      });
      await appendAudit(tx, {
        actor: actorOf(who.principal),
        action: 'group.welcome_fetched',
        target: g.id,
        sourceIp: who.sourceIp,
        details: { group: g.name, serial, epoch: g.epoch },
      });
      return { g, m, cert, keys };
    });
    const { g, m, cert, keys } = got;
    const der = envelop(groupKeysDer(g.name, g.epoch, m.leaf, keys), [{ kind: 'certificate', certificateDer: cert.der }]);
    for (const k of keys) k.key.fill(0);
    return { der, epoch: g.epoch };
  }

  /**
   * Every member's welcome (after a suspected leak of the group's past, or to deliver to a fleet
   * at once), built from one read of the tree: each node key unsealed once, each welcome one
   * public-key wrap. Yields as it goes; audited once.
   */
  async *allWelcomes(ref: string, who: Requester): AsyncGenerator<{ serial: string; der: Buffer; epoch: number }> {
    const g = await this.find(ref, who.principal, 'group.welcome');
    const pool = new WelcomePool(); // its threads start while the tree is read
    const keys = new Map<string, Buffer>();
    try {
      const nodes = new Map((await this.store.allNodes(g.id)).map((n) => [nodeName(n), n]));
      const members = await this.store.allMembers(g.id);
      const current = await this.store.get(g.id);
      if (!current || current.epoch !== g.epoch) throw new SignetError('conflict', `key group ${g.name} changed while its welcomes were read; ask again`);
      await this.ctx.db.transaction((tx) =>
        appendAudit(tx, {
          actor: actorOf(who.principal),
          action: 'group.welcomes_built',
          target: g.id,
          sourceIp: who.sourceIp,
          details: { group: g.name, members: members.length, epoch: g.epoch },
        }),
      );
      const keyOf = (n: NodeRef): NodeKey => {
        const name = nodeName(n);
        const s = nodes.get(name);
        if (!s) throw new Error(`key group ${g.id}: node ${name} holds no key`);
        let k = keys.get(name);
        if (!k) keys.set(name, (k = this.unseal(g.id, s)));
        return { node: n, version: s.version, key: k };
      };
      // A few batches in flight ahead of what is yielded; each carries the node keys on its
      // members' paths (a batch of consecutive leaves shares all but the lowest levels).
      const BATCH = 256;
      const inFlight: { members: { serial: string }[]; envelopes: Promise<Buffer[]> }[] = [];
      const drain = async function* (until: number) {
        while (inFlight.length > until) {
          const b = inFlight.shift()!;
          const envelopes = await b.envelopes;
          for (const [j, m] of b.members.entries()) yield { serial: m.serial, der: envelopes[j]!, epoch: g.epoch };
        }
      };
      for (let i = 0; i < members.length; i += 5000) {
        const chunk = members.slice(i, i + 5000);
        const ders = await this.store.certificateDers(chunk.map((m) => m.serial));
        const present = chunk.filter((m) => ders.has(m.serial));
        for (let j = 0; j < present.length; j += BATCH) {
          const batch = present.slice(j, j + BATCH);
          const onPaths = new Map<string, NodeKey>();
          for (const m of batch) for (const n of pathOf(m.leaf, g.height)) if (!onPaths.has(nodeName(n))) onPaths.set(nodeName(n), keyOf(n));
          const envelopes = pool.build(
            { group: g.name, epoch: g.epoch, height: g.height },
            batch.map((m) => ({ leaf: m.leaf, certificateDer: ders.get(m.serial)! })),
            [...onPaths.values()],
          );
          envelopes.catch(() => undefined); // awaited in order below; a failure must not go unhandled meanwhile
          inFlight.push({ members: batch, envelopes });
          yield* drain(4 * 2);
        }
      }
      yield* drain(0);
    } finally {
      await pool.close();
      for (const k of keys.values()) k.fill(0);
    }
  }

  /** The node updates of the epochs after `since`, signed by the group controller (DER ContentInfo). */
  async rekey(ref: string, since: number, who: Requester): Promise<{ der: Buffer; epoch: number }> {
    const g = await this.find(ref, who.principal, 'group.rekey');
    if (!Number.isSafeInteger(since) || since < 0) throw new SignetError('bad-request', `since must be an epoch (a whole number ≥ 0), not ${since}`);
    if (since > g.epoch) throw new SignetError('bad-request', `since ${since} is in the future: key group ${g.name} is at epoch ${g.epoch}`);
    if (g.epoch - since > MAX_REKEY_EPOCHS)
      throw new SignetError(
        'conflict',
        `since ${since} is ${g.epoch - since} epochs behind key group ${g.name} (at most ${MAX_REKEY_EPOCHS} in one rekey message); fetch the member's welcome again`,
      );
    // Up to the epoch the message states: a change committed after the group was read is the next message's.
    const epochs = await this.store.epochsAfter(g.id, since, g.epoch);
    const content = rekeyDer(
      g.name,
      since,
      g.epoch,
      epochs.map((e) => e.updates),
    );
    return { der: await this.controller.sign(g.profile ?? GROUP_MEMBER_PROFILE, content), epoch: g.epoch };
  }

  // ---- Keys ------------------------------------------------------------------------------------

  private sealId(groupId: string, n: NodeRef, version: number): string {
    return `group ${groupId} node ${nodeName(n)} v${version}`;
  }

  private seal(groupId: string, n: NodeRef, version: number, key: Buffer): Uint8Array {
    return this.ctx.keys.sealSecret(this.sealId(groupId, n, version), key).sealed;
  }

  private unseal(groupId: string, s: StoredNode): Buffer {
    const key = this.ctx.keys.unsealSecret(this.sealId(groupId, s, s.version), s.sealed);
    if (!key || key.length !== KEY_BYTES) {
      this.ctx.log.error(
        { groupId, node: nodeName(s), version: s.version },
        'a key group node key does not unseal: changed in the database, or sealed under another master key',
      );
      throw new SignetError('internal', `key group ${groupId}: node key ${nodeName(s)} v${s.version} does not unseal (see the server log)`);
    }
    return key;
  }
}

/** Runs the expiry sweep now and every `everyMs`; returns its stop. */
export function watchGroupExpiry(
  groups: GroupService,
  log: { info: (o: object, m: string) => void; warn: (o: object, m: string) => void },
  everyMs = 60_000,
): () => void {
  const run = () =>
    groups.sweepExpired().then(
      (n) => {
        if (n) log.info({ certificates: n }, 'certificates that expired left their key groups');
      },
      (e: unknown) => log.warn({ err: e }, 'removing expired members from key groups failed; tried again within the minute'),
    );
  void run();
  const timer = setInterval(run, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
