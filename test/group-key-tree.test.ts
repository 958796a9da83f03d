/**
 * The key tree's plans (src/groups/key-tree.ts), checked by simulation: members who know only
 * the keys they were given or could unwrap must all reach the current group key after every
 * join and leave; a leaver must reach none of the keys made after it left; a joiner none made
 * before it joined; and a leave costs at most two wraps per level.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nodeName, parseNodeName, pathOf, planJoin, planLeave, wrapsOf, type NodeRef, type Plan } from '../src/groups/key-tree.js';

/** A tree of keys as versions ("level.pos" → version), and what each member has learned. */
class Sim {
  height = 0;
  version = 0;
  keys = new Map<string, number>();
  leaves = new Map<string, number>(); // member → leaf
  known = new Map<string, Set<string>>(); // member → "node@version"
  view = () => ({ height: this.height, has: (n: NodeRef) => this.keys.has(nodeName(n)) });

  freeLeaf(): number | null {
    for (let p = 0; p < 2 ** this.height; p++) if (!this.keys.has(`0.${p}`)) return p;
    return null;
  }

  apply(plan: Plan): { wraps: [from: string, to: string][] } {
    this.version++;
    this.height = plan.height;
    for (const n of plan.removed) this.keys.delete(nodeName(n));
    const wraps: [string, string][] = [];
    for (const r of plan.rekeyed) {
      this.keys.set(nodeName(r.node), this.version);
      for (const u of r.under) {
        const v = this.keys.get(nodeName(u));
        assert.ok(v !== undefined, `wrapped under ${nodeName(u)}, which holds no key`);
        wraps.push([`${nodeName(u)}@${v}`, `${nodeName(r.node)}@${this.version}`]);
      }
    }
    return { wraps };
  }

  /** Every holder (members, and leavers kept in `gone`) opens the wraps whose key it holds, bottom-up. */
  deliver(wraps: [from: string, to: string][], holders: Iterable<Set<string>>): void {
    for (const k of holders) for (const [from, to] of wraps) if (k.has(from)) k.add(to);
  }

  join(m: string, gone: Map<string, Set<string>>): Plan {
    const plan = planJoin(this.view(), this.freeLeaf());
    const { wraps } = this.apply(plan);
    this.deliver(wraps, [...this.known.values(), ...gone.values()]);
    this.leaves.set(m, plan.leaf);
    // The welcome: the joiner's whole path, as it is now.
    this.known.set(m, new Set(pathOf(plan.leaf, this.height).map((n) => `${nodeName(n)}@${this.keys.get(nodeName(n))}`)));
    return plan;
  }

  leave(m: string, gone: Map<string, Set<string>>): Plan {
    const plan = planLeave(this.view(), this.leaves.get(m)!);
    this.leaves.delete(m);
    gone.set(m, this.known.get(m)!);
    this.known.delete(m);
    const { wraps } = this.apply(plan);
    this.deliver(wraps, [...this.known.values(), ...gone.values()]);
    return plan;
  }

  root(): string {
    return `${this.height}.0@${this.keys.get(`${this.height}.0`)}`;
  }
}

test('random joins and leaves: every member reaches the group key, leavers and joiners only their epochs, ≤ 2 wraps a level', () => {
  let seed = 12345;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const sim = new Sim();
  const gone = new Map<string, Set<string>>(); // leaver → what it knew when it left
  let next = 0;
  for (let step = 0; step < 600; step++) {
    const members = [...sim.leaves.keys()];
    if (members.length === 0 || rand() < 0.6) {
      const m = `m${next++}`;
      const before = new Set([...sim.keys.entries()].map(([n, v]) => `${n}@${v}`));
      sim.join(m, gone);
      for (const k of sim.known.get(m)!) assert.ok(!before.has(k), `${m} joined and got ${k}, a key of an earlier epoch`);
    } else {
      const m = members[Math.floor(rand() * members.length)]!;
      const plan = sim.leave(m, gone);
      assert.ok(wrapsOf(plan) <= 2 * sim.height, `leave wraps ${wrapsOf(plan)} > 2·height ${sim.height}`);
    }
    if (sim.leaves.size) {
      const root = sim.root();
      for (const [m, k] of sim.known) assert.ok(k.has(root), `step ${step}: ${m} cannot reach the group key ${root}`);
    }
    // What a leaver knew, plus every wrap it could open since: never a current key.
    for (const [m, k] of gone) {
      for (const [node, v] of sim.keys) assert.ok(!k.has(`${node}@${v}`), `${m} left but still holds ${node}@${v}`);
    }
  }
  assert.ok(next > 300);
});

test('a join into a full tree grows it one level without moving anyone; the first member alone is the whole tree', () => {
  const sim = new Sim();
  const gone = new Map<string, Set<string>>();
  const first = sim.join('a', gone);
  assert.deepEqual(first, { height: 0, leaf: 0, rekeyed: [{ node: { level: 0, pos: 0 }, under: [] }], removed: [] });
  const second = sim.join('b', gone);
  assert.equal(second.height, 1);
  assert.equal(second.leaf, 1);
  // The new root is wrapped under a's leaf key only: b's side holds only b.
  assert.deepEqual(
    second.rekeyed.map((r) => [nodeName(r.node), r.under.map(nodeName)]),
    [
      ['0.1', []],
      ['1.0', ['0.0']],
    ],
  );
  sim.join('c', gone);
  const d = sim.join('d', gone);
  assert.equal(d.height, 2);
  const e = sim.join('e', gone);
  assert.equal(e.height, 3);
  assert.equal(e.leaf, 4);
  assert.deepEqual(
    e.rekeyed.map((r) => [nodeName(r.node), r.under.map(nodeName)]),
    [
      ['0.4', []],
      ['1.2', []],
      ['2.1', []],
      ['3.0', ['2.0']],
    ],
  );
  // a leaves: its leaf is dropped, its path re-keyed under the remaining children.
  const leave = planLeave(sim.view(), 0);
  assert.deepEqual(leave.removed.map(nodeName), ['0.0']);
  assert.deepEqual(
    leave.rekeyed.map((r) => [nodeName(r.node), r.under.map(nodeName)]),
    [
      ['1.0', ['0.1']],
      ['2.0', ['1.0', '1.1']],
      ['3.0', ['2.0', '2.1']],
    ],
  );
  // The freed leaf is the next joiner's.
  sim.leave('a', gone);
  assert.equal(planJoin(sim.view(), sim.freeLeaf()).leaf, 0);
});

test('bad plans are refused; node names parse strictly', () => {
  const sim = new Sim();
  sim.join('a', new Map());
  assert.throws(() => planJoin(sim.view(), 0), /leaf 0 is not free/);
  assert.throws(() => planLeave(sim.view(), 3), /leaf 3 holds no member/);
  assert.deepEqual(parseNodeName('3.5'), { level: 3, pos: 5 });
  for (const bad of ['', '3', '03.1', '1.01', '-1.0', '1.0.0', '33.0', '31.2', 'a.b']) assert.equal(parseNodeName(bad), null, bad);
});
