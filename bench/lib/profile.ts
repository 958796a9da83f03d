/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`): top self-time functions, self time by
 * module (npm package, Signet source file, node internals), and inclusive time of the functions
 * that matter for Signet's hot paths.
 */
import { readFileSync } from 'node:fs';
import { fmt, table } from './util.js';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface Node {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

function moduleOf(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : '(native/builtin)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) {
    // Prisma's client runtime is split in many files; keep the engine part visible.
    if (nm[1] === '@prisma/client' && /query_compiler|wasm/.test(url)) return '@prisma/client (query compiler wasm)';
    return nm[1]!;
  }
  const own = /\/(dist|src)\/(.+)$/.exec(url);
  if (own && !url.startsWith('node:')) return `signet ${own[2]}`;
  if (url.startsWith('node:')) return url.replace(/^node:internal\//, 'node:').replace(/\/.*$/, '');
  if (url.startsWith('wasm://')) return 'wasm (Prisma query compiler)';
  return url;
}

const label = (c: CallFrame) =>
  `${c.functionName || '(anonymous)'} ${c.url ? c.url.replace(/^.*\/(node_modules|dist)\//, '$1/').replace(/^file:\/\//, '') + ':' + (c.lineNumber + 1) : ''}`.trim();

export interface ProfileSummary {
  totalMs: number;
  busyMs: number;
  text: string;
  topSelf: { fn: string; pct: number }[];
  modules: { module: string; pct: number }[];
  inclusive: { fn: string; pct: number }[];
}

/** `focus`: function names whose inclusive time (share of busy time) is reported. */
export function summariseProfile(file: string, focus: string[] = [], top = 25): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map<number, Node>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) byId.set(n.id, n);
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i]!;
    const dt = (p.timeDeltas[i + 1] ?? p.timeDeltas[i] ?? 0) / 1000; // ms; the delta after a sample is its duration
    self.set(id, (self.get(id) ?? 0) + dt);
  }
  let total = 0;
  let idle = 0;
  const selfByFn = new Map<string, number>();
  const selfByModule = new Map<string, number>();
  const inclusive = new Map<string, number>();
  for (const [id, ms] of self) {
    const n = byId.get(id)!;
    total += ms;
    if (n.callFrame.functionName === '(idle)') {
      idle += ms;
      continue;
    }
    const key = label(n.callFrame);
    selfByFn.set(key, (selfByFn.get(key) ?? 0) + ms);
    const mod = moduleOf(n.callFrame.url, n.callFrame.functionName);
    selfByModule.set(mod, (selfByModule.get(mod) ?? 0) + ms);
    if (focus.length) {
      const seen = new Set<string>();
      for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
        const fn = byId.get(cur)!.callFrame.functionName;
        if (focus.includes(fn) && !seen.has(fn)) {
          seen.add(fn);
          inclusive.set(fn, (inclusive.get(fn) ?? 0) + ms);
        }
      }
    }
  }
  const busy = total - idle;
  const pct = (ms: number) => (100 * ms) / Math.max(busy, 1e-9);
  const sorted = <K>(m: Map<K, number>) => [...m.entries()].sort((a, b) => b[1] - a[1]);
  const topSelf = sorted(selfByFn)
    .slice(0, top)
    .map(([fn, ms]) => ({ fn, pct: pct(ms) }));
  const modules = sorted(selfByModule)
    .slice(0, 20)
    .map(([module, ms]) => ({ module, pct: pct(ms) }));
  const inc = focus
    .map((fn) => ({ fn, pct: pct(inclusive.get(fn) ?? 0) }))
    .filter((x) => x.pct > 0)
    .sort((a, b) => b.pct - a.pct);
  const lines = [
    `profile ${file}: ${fmt(total)} ms sampled, ${fmt(busy)} ms busy (${fmt((100 * busy) / Math.max(total, 1), 0)}% of the main thread), ${fmt(idle)} ms idle`,
    '',
    'top self time (share of busy time):',
    table(
      ['function', 'self %'],
      topSelf.map((t) => [t.fn.slice(0, 110), t.pct.toFixed(1)]),
    ),
    '',
    'self time by module:',
    table(
      ['module', 'self %'],
      modules.map((m) => [m.module.slice(0, 110), m.pct.toFixed(1)]),
    ),
  ];
  if (inc.length)
    lines.push(
      '',
      'inclusive time of hot-path functions (share of busy time; nested calls overlap):',
      table(
        ['function', 'incl %'],
        inc.map((x) => [x.fn, x.pct.toFixed(1)]),
      ),
    );
  return { totalMs: total, busyMs: busy, text: lines.join('\n'), topSelf, modules, inclusive: inc };
}
