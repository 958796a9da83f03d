/**
 * The key tree of a group (RFC 2627 logical key hierarchy), as pure arithmetic: which nodes a
 * join or a leave re-keys, which keys each new key is wrapped under, which nodes lose their key.
 * No keys here, no storage: service.ts applies a plan inside a transaction.
 *
 * Nodes are addressed by (level, pos): level 0 holds the leaves (one per member), the root is at
 * level `height`, and node (l, p) has the children (l-1, 2p) and (l-1, 2p+1). A tree that is
 * full grows by one level: the old root (h, 0) becomes the left child of the new root (h+1, 0),
 * so no existing node changes its address (and no member its keys). A node holds a key exactly
 * when some member is below it; a member holds the keys of every node on its path.
 *
 * Join (backward secrecy): the joiner's leaf gets a fresh key and every node on its path a new
 * version, so it can read no earlier epoch. Leave (forward secrecy): the leaver's leaf loses its
 * key and every node on its path that still has members a new version; a node left with no
 * member loses its key. Each new key is wrapped under the current key of each child that has
 * members, bottom-up (a child on the path under its own new key) — except children whose only
 * member is the joiner, who gets its whole path in its welcome. That is at most two wraps per
 * level: 2·height, against n for re-wrapping the group key to every member.
 */

export interface NodeRef {
  level: number;
  pos: number;
}

/** "level.pos": how nodes are named in messages and key identifiers. */
export const nodeName = (n: NodeRef): string => `${n.level}.${n.pos}`;

export function parseNodeName(s: string): NodeRef | null {
  const m = /^(0|[1-9]\d{0,1})\.(0|[1-9]\d{0,15})$/.exec(s);
  if (!m) return null;
  const n = { level: Number(m[1]), pos: Number(m[2]) };
  return n.level <= MAX_HEIGHT && n.pos < 2 ** (MAX_HEIGHT - n.level) ? n : null;
}

/** 2^32 members at most: far beyond what a group holds, and positions stay exact numbers. */
export const MAX_HEIGHT = 32;

export const parentOf = (n: NodeRef): NodeRef => ({ level: n.level + 1, pos: n.pos >> 1 });
export const childrenOf = (n: NodeRef): [NodeRef, NodeRef] => [
  { level: n.level - 1, pos: n.pos * 2 },
  { level: n.level - 1, pos: n.pos * 2 + 1 },
];
export const sameNode = (a: NodeRef, b: NodeRef): boolean => a.level === b.level && a.pos === b.pos;

/** The nodes from a leaf up to the root of a tree of this height, leaf first. */
export function pathOf(leaf: number, height: number): NodeRef[] {
  const out: NodeRef[] = [];
  for (let level = 0; level <= height; level++) out.push({ level, pos: Math.floor(leaf / 2 ** level) });
  return out;
}

/** What the plans read of the tree as it is: its height and whether a node holds a key. */
export interface TreeView {
  height: number;
  has(n: NodeRef): boolean;
}

/** A new key for `node`, wrapped under each of `under` (children's keys: new ones if they are in `rekeyed` too). */
export interface Rekey {
  node: NodeRef;
  under: NodeRef[];
}

export interface Plan {
  height: number;
  /** The member's leaf (join: the one it gets; leave: the one it had). */
  leaf: number;
  /** Nodes that get a new key, bottom-up (join: the new leaf first, with nothing to wrap under). */
  rekeyed: Rekey[];
  /** Nodes that lose their key (leave: the leaf, and ancestors left with no member). */
  removed: NodeRef[];
}

/**
 * Joining at `freeLeaf`, the lowest leaf without a member (0 in an empty tree), or null when
 * every leaf is taken: the tree then grows a level and the joiner takes the first leaf of the
 * new half.
 */
export function planJoin(view: TreeView, freeLeaf: number | null): Plan {
  let height = view.height;
  let leaf: number;
  if (freeLeaf === null) {
    if (height >= MAX_HEIGHT) throw new RangeError(`a group holds at most 2^${MAX_HEIGHT} members`);
    leaf = 2 ** height;
    height++;
  } else {
    if (!Number.isSafeInteger(freeLeaf) || freeLeaf < 0 || freeLeaf >= 2 ** height || view.has({ level: 0, pos: freeLeaf }))
      throw new RangeError(`leaf ${freeLeaf} is not free`);
    leaf = freeLeaf;
  }
  const path = pathOf(leaf, height);
  // A node that held no key before the join has only the joiner below it now.
  const fresh = (n: NodeRef) => n.level > view.height || !view.has(n);
  const rekeyed: Rekey[] = path.map((node, i) => ({
    node,
    // The child on the path is wrapped under only if others are below it too; the sibling if it has members.
    under: i === 0 ? [] : childrenOf(node).filter((c) => (sameNode(c, path[i - 1]!) ? !fresh(c) : !fresh(c) && view.has(c))),
  }));
  return { height, leaf, rekeyed, removed: [] };
}

/** The member at `leaf` leaves. */
export function planLeave(view: TreeView, leaf: number): Plan {
  if (!view.has({ level: 0, pos: leaf })) throw new RangeError(`leaf ${leaf} holds no member`);
  const path = pathOf(leaf, view.height);
  const removed: NodeRef[] = [path[0]!];
  const rekeyed: Rekey[] = [];
  for (const node of path.slice(1)) {
    const holders = childrenOf(node).filter((c) => view.has(c) && !removed.some((r) => sameNode(r, c)));
    if (holders.length === 0) removed.push(node);
    else rekeyed.push({ node, under: holders });
  }
  return { height: view.height, leaf, rekeyed, removed };
}

/** How many key wraps a plan sends (the recipient infos of its rekey message). */
export const wrapsOf = (plan: Plan): number => plan.rekeyed.reduce((n, r) => n + r.under.length, 0);
