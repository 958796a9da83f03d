/**
 * Micro-benchmark: CPU per certificate of a served Signet, by process, without a profiler —
 * the server's own CPU time (/proc/<pid>/stat, primary and workers) and the load generator's,
 * over one closed-loop run of POST /api/v1/certificates. Compare with bench/micro/issue.ts
 * (the same issuance in process, no HTTP) to see what serving adds.
 *
 *   node --import tsx bench/micro/served-cpu.ts [workers] [concurrency] [seconds]
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { httpLoad } from '../lib/load.js';
import { csrPool } from '../lib/pki.js';
import { startSignet } from '../lib/signet.js';
import { processTree, removeTemp, statCpuMicros, tempDir } from '../lib/util.js';

const workers = process.argv[2] ?? '1';
const conc = Number(process.argv[3] ?? 64);
const seconds = Number(process.argv[4] ?? 5);
/** CPU of a process and each live descendant, in µs, by pid. */
const treeCpu = (pid: number): Map<number, number> =>
  new Map(
    processTree(pid)
      .map((p) => [p, statCpuMicros(`/proc/${p}/stat`)] as const)
      .filter(([, t]) => !Number.isNaN(t)),
  );

/** CPU by thread name (comm) of one process, in µs. */
function threadCpu(pid: number): Map<string, number> {
  const m = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const stat = `/proc/${pid}/task/${tid}/stat`;
    const t = statCpuMicros(stat);
    if (Number.isNaN(t)) continue;
    const raw = readFileSync(stat, 'utf8');
    const name = raw.slice(raw.indexOf('(') + 1, raw.lastIndexOf(')'));
    m.set(name, (m.get(name) ?? 0) + t);
  }
  return m;
}

const { csrs: all } = await csrPool(2000);
const csrs = all.slice(0, Number(process.env.POOL ?? all.length));
const dir = tempDir('served-cpu');
const s = await startSignet(join(dir, 'data'), {
  SIGNET_INTERMEDIATE_KEY: 'ecdsa-p256',
  SIGNET_WORKERS: workers,
  ...(process.env.SERVER_NODE_OPTIONS ? { NODE_OPTIONS: process.env.SERVER_NODE_OPTIONS } : {}),
});
try {
  const bodies = csrs.map((csr) => Buffer.from(JSON.stringify({ csr, profile: 'server' })));
  const base = {
    port: s.port,
    method: 'POST' as const,
    next: (i: number) => ({ path: '/api/v1/certificates', body: bodies[i % bodies.length]! }),
    headers: { 'content-type': 'application/json', authorization: `Bearer ${s.token}` },
    concurrency: conc,
    okStatus: [201],
  };
  await httpLoad({ ...base, seconds: 2 });
  const server0 = treeCpu(s.pid);
  const threads0 = threadCpu(s.pid);
  const self0 = process.cpuUsage();
  // PERF=<file>: Linux perf samples the server during the measured run (start it with
  // SERVER_NODE_OPTIONS=--perf-basic-prof so JIT frames have names).
  const perf = process.env.PERF
    ? spawn('perf', ['record', '-F', '999', '-g', '-p', String(s.pid), '-o', process.env.PERF, '--', 'sleep', String(seconds)], { stdio: 'ignore' })
    : null;
  const r = await httpLoad({ ...base, seconds });
  if (perf) await new Promise((done) => perf.once('exit', done));
  const server1 = treeCpu(s.pid);
  const threads1 = threadCpu(s.pid);
  const byPid = [...server1].map(([p, t]) => [p, t - (server0.get(p) ?? 0)] as const);
  const server = byPid.reduce((a, [, t]) => a + t, 0);
  const self = process.cpuUsage(self0);
  const per = (us: number) => (us / r.ok).toFixed(0).padStart(5);
  console.log(`workers ${workers}, concurrency ${conc}: ${Math.round(r.rps)}/s, ${r.errors} errors`);
  console.log(`CPU per certificate: server ${per(server)} µs, load generator ${per(self.user + self.system)} µs`);
  const th = [...threads1]
    .map(([n, t]) => [n, t - (threads0.get(n) ?? 0)] as const)
    .filter(([, t]) => t > 0)
    .sort((a, b) => b[1] - a[1]);
  console.log(`  by thread of the first server process: ${th.map(([n, t]) => `${n} ${per(t).trim()} µs`).join(', ')}`);
  console.log(`  by server process: ${byPid.map(([p, t]) => `${p === s.pid ? 'primary' : p} ${per(t).trim()} µs`).join(', ')}`);
} finally {
  await s.stop();
  removeTemp(dir);
}
