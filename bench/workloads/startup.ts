/**
 * startup: time from spawning `node bin/signet.js serve` on an existing data dir (SQLite, already
 * bootstrapped) to the first 200 from /readyz (polled every 10 ms), and the process's RSS after
 * 3 s idle (VmRSS from /proc). Also the same with `cfssl serve` (time to accepting TCP) for scale.
 */
import { join } from 'node:path';
import { makePeerCa } from '../lib/pki.js';
import { summariseProfile } from '../lib/profile.js';
import { cleanEnv, signetEnv, startSignet } from '../lib/signet.js';
import {
  cmdline,
  daemon,
  envInt,
  fmt,
  freePort,
  max,
  median,
  min,
  newReport,
  PROFILE,
  removeTemp,
  ROOT,
  rssMb,
  treeRssMb,
  RUNS,
  SIGNET_BIN,
  sleep,
  tcpOpen,
  tempDir,
  waitFor,
  ensureTools,
  type WorkloadReport,
} from '../lib/util.js';
import { cfsslConfig } from './issue.js';

export async function startupWorkload(): Promise<WorkloadReport> {
  await ensureTools({ cfssl: 'golang-cfssl' });
  const runs = Math.max(RUNS(), envInt('BENCH_STARTUP_RUNS', 5));
  const idleMs = 3000;
  const report = newReport('startup', { runs, pollEveryMs: 10, idleMsBeforeRss: idleMs });
  const dir = tempDir('startup');
  const rows: (string | number)[][] = [];
  try {
    const dataDir = join(dir, 'data');
    const first = await startSignet(dataDir, { SIGNET_INTERMEDIATE_KEY: 'ecdsa-p256' });
    await first.stop();
    // The product's default (one process) carries the targets; the benchmarks' worker count
    // is shown too, with the RSS of the primary and every worker added up.
    const workerCounts = [...new Set(['1', process.env.BENCH_SIGNET_WORKERS ?? '2'])];
    for (const workers of workerCounts) {
      const times: number[] = [];
      const rss: number[] = [];
      for (let r = 0; r < runs; r++) {
        const port = await freePort();
        const env = signetEnv(dataDir, port, { SIGNET_WORKERS: workers });
        const t0 = performance.now();
        const d = daemon(process.execPath, [SIGNET_BIN, 'serve'], { cwd: ROOT, env: cleanEnv(env) });
        try {
          await waitFor(
            '/readyz',
            async () => {
              if (d.proc.exitCode !== null) throw new Error(d.log());
              const res = await fetch(`http://127.0.0.1:${port}/readyz`);
              await res.arrayBuffer();
              return res.status === 200;
            },
            60_000,
            10,
          );
          times.push(performance.now() - t0);
          await sleep(idleMs);
          rss.push(treeRssMb(d.proc.pid!));
          if (r === 0)
            report.commands.push(
              `${cmdline('node', ['bin/signet.js', 'serve'], { ...env, SIGNET_DATA_DIR: '<existing data dir>', SIGNET_PORT: '<port>' })}   # then GET /readyz every 10 ms until 200; VmRSS (process and workers) after ${idleMs} ms idle`,
            );
        } finally {
          await d.stop();
        }
        process.stderr.write(
          `startup: ${workers} worker(s), run ${r + 1}: ready in ${fmt(times[times.length - 1]!)} ms, idle RSS ${fmt(rss[rss.length - 1]!)} MB\n`,
        );
      }
      rows.push([
        `signet serve (SQLite, bootstrapped), SIGNET_WORKERS=${workers}`,
        runs,
        fmt(median(times)),
        fmt(min(times)),
        fmt(max(times)),
        fmt(median(rss)),
        fmt(min(rss)),
        fmt(max(rss)),
      ]);
      if (workers === '1') {
        report.targets.push({ name: 'startup: spawn → /readyz 200', target: '≤ 2,000 ms', value: `${fmt(median(times))} ms`, pass: median(times) <= 2000 });
        report.targets.push({ name: 'startup: idle RSS after start', target: '≤ 150 MB', value: `${fmt(median(rss))} MB`, pass: median(rss) <= 150 });
      }
    }

    // cfssl serve, for scale.
    const ca = await makePeerCa(join(dir, 'cfssl-ca'), 'ecdsa-p256');
    const cfg = cfsslConfig(dir, 'ecdsa-p256');
    const ct: number[] = [];
    const cr: number[] = [];
    for (let r = 0; r < runs; r++) {
      const port = await freePort();
      const args = ['serve', '-address', '127.0.0.1', '-port', String(port), '-ca', ca.cert, '-ca-key', ca.key, '-config', cfg, '-loglevel', '5'];
      const t0 = performance.now();
      const d = daemon('cfssl', args, { cwd: dir });
      try {
        await waitFor(
          'cfssl serve',
          async () => {
            if (d.proc.exitCode !== null) throw new Error(d.log());
            return tcpOpen(port);
          },
          30_000,
          10,
        );
        ct.push(performance.now() - t0);
        await sleep(idleMs);
        cr.push(rssMb(d.proc.pid!));
        if (r === 0) report.commands.push(`${cmdline('cfssl', args).split(dir).join('<dir>')}   # until the port accepts TCP`);
      } finally {
        await d.stop();
      }
    }
    rows.push(['cfssl serve (no db; TCP accept)', runs, fmt(median(ct)), fmt(min(ct)), fmt(max(ct)), fmt(median(cr)), fmt(min(cr)), fmt(max(cr))]);

    if (PROFILE()) {
      const s = await startSignet(dataDir, {}, { cpuProfDir: join(dir, 'prof') });
      await s.stop();
      const p = s.profiles()[0];
      if (p)
        report.profile =
          'CPU profile: signet serve start-up to /readyz (then SIGTERM) under node --cpu-prof\n' +
          summariseProfile(p, [
            'openSignet',
            'migrate',
            'openDatabase',
            'verifyAll',
            'createServices',
            'createApp',
            'bootstrapIfEmpty',
            'start',
            'loadIssuers',
            'refreshDue',
            'publishPendingCrls',
            'compileFunction',
            'loadESM',
            'import',
          ]).text;
    }
  } finally {
    removeTemp(dir);
  }
  report.tables.push({ title: `Start-up (median of ${runs} runs)`, headers: ['target', 'runs', 'ready ms', 'min', 'max', 'idle RSS MB', 'min', 'max'], rows });
  return report;
}
