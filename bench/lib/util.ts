/**
 * Shared plumbing for the benchmark suite: child processes that are always cleaned up, temp
 * dirs, timing, statistics, tables, results files and peer installation.
 *
 * Everything here talks to loopback only. Every child is started in its own process group and
 * killed (group-wide) when the workload ends or the runner exits.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, totalmem, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const ROOT = resolve(BENCH_DIR, '..');
export const CACHE_DIR = join(BENCH_DIR, '.cache');
export const RESULTS_DIR = join(BENCH_DIR, 'results');
export const SIGNET_BIN = join(ROOT, 'bin', 'signet.js');

// ---------------------------------------------------------------------------------------------
// Settings from the environment.

export function envInt(name: string, def: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number (got ${v})`);
  return n;
}
export const SECONDS = () => envInt('BENCH_SECONDS', 20);
export const RUNS = () => Math.max(3, Math.floor(envInt('BENCH_RUNS', 3)));
export const CONCURRENCY = (): number[] =>
  (process.env.BENCH_CONCURRENCY ?? '16,64')
    .split(',')
    .map((s) => Number(s.trim()))
    .filter((n) => n > 0);
/** BENCH_TARGETS: a regular expression that selects targets (rows) by name. */
export function selected(name: string): boolean {
  const re = process.env.BENCH_TARGETS;
  return !re || new RegExp(re).test(name);
}
export const PROFILE = () => process.env.BENCH_PROFILE === '1';

// ---------------------------------------------------------------------------------------------
// Cleanup registry.

const children = new Set<ChildProcess>();
const tempDirs = new Set<string>();

function killGroup(p: ChildProcess, sig: NodeJS.Signals): void {
  if (p.pid === undefined) return;
  try {
    process.kill(-p.pid, sig);
  } catch {
    try {
      p.kill(sig);
    } catch {
      /* gone */
    }
  }
}

/** Kills every child still running (its whole process group) and removes temp dirs. */
export function cleanupAll(): void {
  for (const p of children) {
    if (p.exitCode === null && p.signalCode === null) killGroup(p, 'SIGKILL');
  }
  children.clear();
  if (process.env.BENCH_KEEP !== '1') for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  tempDirs.clear();
}
let hooked = false;
export function installCleanupHooks(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', cleanupAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
    process.on(sig, () => {
      cleanupAll();
      process.exit(130);
    });
}

export function tempDir(label: string): string {
  const base = process.env.BENCH_TMP ?? tmpdir();
  mkdirSync(base, { recursive: true });
  const d = mkdtempSync(join(base, `signet-bench-${label}-`));
  tempDirs.add(d);
  return d;
}
export function removeTemp(d: string): void {
  if (process.env.BENCH_KEEP !== '1') rmSync(d, { recursive: true, force: true });
  tempDirs.delete(d);
}

export interface Daemon {
  proc: ChildProcess;
  log: () => string;
  /** SIGTERM to the group, then SIGKILL after graceMs. Resolves when the leader exited. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Starts a long-running child in its own process group; output goes to a capped buffer.
 * `ownGroup`: the program makes its own process group (openssl ocsp -multi calls setpgid(0,0),
 * which fails in a new session), so it is not started detached.
 */
export function daemon(cmd: string, args: string[], opts: SpawnOptions & { ownGroup?: boolean } = {}): Daemon {
  const { ownGroup, ...spawnOpts } = opts;
  const proc = spawn(cmd, args, { ...spawnOpts, detached: !ownGroup, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(proc);
  let out = '';
  const keep = (b: Buffer) => {
    out += b.toString();
    if (out.length > 64_000) out = out.slice(-32_000);
  };
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  return {
    proc,
    log: () => out,
    async stop(graceMs = 10_000) {
      if (proc.exitCode === null && proc.signalCode === null) {
        killGroup(proc, 'SIGTERM');
        const t = setTimeout(() => killGroup(proc, 'SIGKILL'), graceMs);
        await exited;
        clearTimeout(t);
        killGroup(proc, 'SIGKILL'); // forked helpers (openssl ocsp -multi) that outlived the leader
      }
      children.delete(proc);
    },
  };
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs a command to completion (bounded by timeoutMs), capturing output and wall time. */
export function run(
  cmd: string,
  args: string[],
  opts: SpawnOptions & { input?: string | Buffer; timeoutMs?: number; okCodes?: number[] } = {},
): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const t0 = performance.now();
    const p = spawn(cmd, args, { ...opts, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
    children.add(p);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    p.stdout!.on('data', (b: Buffer) => out.push(b));
    p.stderr!.on('data', (b: Buffer) => err.push(b));
    const timer = setTimeout(() => killGroup(p, 'SIGKILL'), opts.timeoutMs ?? 600_000);
    p.once('error', (e) => {
      clearTimeout(timer);
      children.delete(p);
      reject(e);
    });
    p.once('close', (code) => {
      clearTimeout(timer);
      children.delete(p);
      const r = { code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), ms: performance.now() - t0 };
      if (opts.okCodes && !opts.okCodes.includes(code ?? -1)) {
        reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${r.stderr.trim().slice(0, 2000) || r.stdout.trim().slice(0, 2000)}`));
      } else resolvePromise(r);
    });
    if (opts.input !== undefined) p.stdin!.end(opts.input);
    else p.stdin!.end();
  });
}
/** Runs and requires exit code 0. */
export const must = (cmd: string, args: string[], opts: Parameters<typeof run>[2] = {}) => run(cmd, args, { okCodes: [0], ...opts });

/** Runs under /usr/bin/time -v: wall time and peak RSS (kB → MB) of the command. */
export async function timed(cmd: string, args: string[], opts: Parameters<typeof run>[2] = {}): Promise<RunResult & { wallMs: number; maxRssMb: number }> {
  const r = await run('/usr/bin/time', ['-v', cmd, ...args], opts);
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr);
  if (!rss) throw new Error(`/usr/bin/time output not understood: ${r.stderr.slice(-500)}`);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${r.stderr.trim().slice(0, 1500)}`);
  return { ...r, wallMs: r.ms, maxRssMb: Number(rss[1]) / 1024 };
}

/** Runs async tasks with at most `limit` in flight. */
export async function pool<T, R>(items: T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!, i);
      }
    }),
  );
  return out;
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolvePromise(port));
    });
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `probe` until it returns true or timeoutMs passes. */
export async function waitFor(what: string, probe: () => Promise<boolean>, timeoutMs = 60_000, everyMs = 50): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await probe()) return;
    } catch {
      /* not yet */
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Is a TCP port on loopback accepting connections? */
export async function tcpOpen(port: number): Promise<boolean> {
  const { connect } = await import('node:net');
  return new Promise((r) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      r(true);
    });
    s.once('error', () => r(false));
  });
}

// ---------------------------------------------------------------------------------------------
// Peers.

/** Installs Debian packages for missing binaries (apt-get, loopback-free: the package mirror only). */
export async function ensureTools(tools: Record<string, string>): Promise<void> {
  const missing = Object.entries(tools)
    .filter(([bin]) => spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0)
    .map(([, pkg]) => pkg);
  if (!missing.length) return;
  const pkgs = [...new Set(missing)];
  process.stderr.write(`bench: installing ${pkgs.join(' ')} from Debian\n`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  await must('apt-get', ['update', '-qq'], { env, timeoutMs: 300_000 });
  await must('apt-get', ['install', '-y', '-qq', ...pkgs], { env, timeoutMs: 600_000 });
}

export function versions(): Record<string, string> {
  const v = (cmd: string, args: string[]) => {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    return (r.stdout || r.stderr || '').split('\n')[0]?.trim() ?? '';
  };
  return {
    node: process.version,
    openssl: v('openssl', ['version']),
    cfssl: v('cfssl', ['version']).replace(/\s+/g, ' '),
    wrk: v('wrk', ['--version']),
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: String(cpus().length),
    memoryGiB: (totalmem() / 2 ** 30).toFixed(1),
  };
}

// ---------------------------------------------------------------------------------------------
// Statistics and output.

export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (!sorted.length) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
export const min = (xs: number[]) => Math.min(...xs);
export const max = (xs: number[]) => Math.max(...xs);

export function fmt(n: number, digits = 0): string {
  if (!Number.isFinite(n)) return '-';
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}
export const ratio = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}×` : '-');

export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = rows.map((r) => r.map((c) => String(c)));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const line = (vals: string[]) => '| ' + vals.map((v, i) => (i === 0 ? v.padEnd(widths[i]!) : v.padStart(widths[i]!))).join(' | ') + ' |';
  return [line(headers), '|' + widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':')).join('|') + '|', ...cells.map(line)].join('\n');
}

export interface Target {
  name: string;
  target: string;
  value: string;
  pass: boolean;
}
export function targetLine(t: Target): string {
  return `  [${t.pass ? 'PASS' : 'MISS'}] ${t.name}: ${t.value} (target ${t.target})`;
}

export interface WorkloadReport {
  workload: string;
  date: string;
  machine: Record<string, string>;
  params: Record<string, unknown>;
  commands: string[];
  notes: string[];
  tables: { title: string; headers: string[]; rows: (string | number)[][] }[];
  targets: Target[];
  data?: unknown;
  profile?: string;
}

export function printReport(r: WorkloadReport): void {
  const out: string[] = [];
  out.push('', `== ${r.workload} == (${r.date})`);
  out.push(`machine: ${r.machine.cores} cores ${r.machine.cpu}, ${r.machine.memoryGiB} GiB; ${r.machine.node}; ${r.machine.openssl}; cfssl ${r.machine.cfssl}`);
  out.push(`params: ${JSON.stringify(r.params)}`);
  for (const t of r.tables) out.push('', t.title, table(t.headers, t.rows));
  if (r.targets.length) {
    out.push('', 'targets:');
    for (const t of r.targets) out.push(targetLine(t));
  }
  if (r.notes.length) {
    out.push('', 'notes:');
    for (const n of r.notes) out.push(`  - ${n}`);
  }
  out.push('', 'commands:');
  for (const c of r.commands) out.push(`  $ ${c}`);
  if (r.profile) out.push('', r.profile);
  process.stdout.write(out.join('\n') + '\n');
}

/**
 * bench/results/<workload>.json is the full run the README quotes; a run narrowed with
 * BENCH_TARGETS goes to <workload>.partial.json (not committed) instead of replacing it.
 */
export function writeReport(r: WorkloadReport): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = join(RESULTS_DIR, process.env.BENCH_TARGETS ? `${r.workload}.partial.json` : `${r.workload}.json`);
  writeFileSync(file, JSON.stringify(r, null, 2) + '\n');
  return file;
}

export function newReport(workload: string, params: Record<string, unknown>): WorkloadReport {
  return { workload, date: new Date().toISOString(), machine: versions(), params, commands: [], notes: [], tables: [], targets: [] };
}

/** Quotes a command line for the report. */
export function cmdline(cmd: string, args: string[], env: Record<string, string> = {}): string {
  const q = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
  return [...Object.entries(env).map(([k, v]) => `${k}=${q(v)}`), q(cmd), ...args.map(q)].join(' ');
}

/** A process and its live descendants (a cluster primary and its workers), the process first. */
export function processTree(pid: number): number[] {
  const all = [pid];
  for (let i = 0; i < all.length; i++) {
    try {
      for (const tid of readdirSync(`/proc/${all[i]}/task`))
        all.push(...readFileSync(`/proc/${all[i]}/task/${tid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
    } catch {
      /* gone */
    }
  }
  return all;
}

/** VmRSS of a process and all its descendants (a cluster primary and its workers), in MB. */
export function treeRssMb(pid: number): number {
  return processTree(pid).reduce((total, p) => total + rssMb(p), 0);
}

/**
 * CPU time (utime + stime) from a /proc stat file — `/proc/<pid>/stat` for a process,
 * `/proc/<pid>/task/<tid>/stat` for one thread — in µs; NaN once it is gone.
 */
export function statCpuMicros(statFile: string): number {
  try {
    const f = readFileSync(statFile, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1e6) / 100; // clock ticks, USER_HZ = 100
  } catch {
    return NaN;
  }
}

export function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}
