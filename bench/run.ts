/**
 * Signet benchmark suite. `npm run bench` runs every workload; `npm run bench -- <name> [...]`
 * runs the named ones (issue, ocsp, crl, crl-shards, inventory, startup, enroll, pq). `npm run bench -- profile <file>`
 * summarises a .cpuprofile. See bench/README.md for the settings (BENCH_SECONDS, BENCH_RUNS, …).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { summariseProfile } from './lib/profile.js';
import { cleanupAll, installCleanupHooks, printReport, ROOT, writeReport, type WorkloadReport } from './lib/util.js';

const WORKLOADS: Record<string, () => Promise<WorkloadReport>> = {
  issue: async () => (await import('./workloads/issue.js')).issueWorkload(),
  ocsp: async () => (await import('./workloads/ocsp.js')).ocspWorkload(),
  crl: async () => (await import('./workloads/crl.js')).crlWorkload(),
  'crl-shards': async () => (await import('./workloads/crl-shards.js')).crlShardsWorkload(),
  inventory: async () => (await import('./workloads/inventory.js')).inventoryWorkload(),
  startup: async () => (await import('./workloads/startup.js')).startupWorkload(),
  enroll: async () => (await import('./workloads/enroll.js')).enrollWorkload(),
  pq: async () => (await import('./workloads/pq.js')).pqWorkload(),
};

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  if (args[0] === 'profile') {
    for (const f of args.slice(1)) process.stdout.write(summariseProfile(f, (process.env.BENCH_FOCUS ?? '').split(',').filter(Boolean)).text + '\n');
    return 0;
  }
  const names = args.length ? args : Object.keys(WORKLOADS);
  const unknown = names.filter((n) => !(n in WORKLOADS));
  if (unknown.length) {
    process.stderr.write(`bench: unknown workload ${unknown.join(', ')}; choose from ${Object.keys(WORKLOADS).join(', ')} (or: profile <file.cpuprofile>)\n`);
    return 2;
  }
  installCleanupHooks();
  // Benchmark what the source says now: build unless told not to (BENCH_NO_BUILD=1).
  if (process.env.BENCH_NO_BUILD !== '1' || !existsSync(join(ROOT, 'dist', 'cli', 'main.js'))) {
    process.stderr.write('bench: npm run build\n');
    const b = spawnSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
    if (b.status !== 0) {
      process.stderr.write('bench: build failed\n');
      return 1;
    }
  }
  let failed = 0;
  for (const name of names) {
    const t0 = Date.now();
    try {
      const report = await WORKLOADS[name]!();
      printReport(report);
      const file = writeReport(report);
      process.stdout.write(`\n(${name}: ${((Date.now() - t0) / 1000).toFixed(0)} s; results in ${file})\n`);
    } catch (e) {
      failed++;
      process.stderr.write(`bench: ${name} failed: ${(e as Error).stack ?? String(e)}\n`);
    } finally {
      cleanupAll();
    }
  }
  return failed ? 1 : 0;
}

main().then(
  (code) => {
    cleanupAll();
    process.exit(code);
  },
  (e: unknown) => {
    process.stderr.write(`bench: ${(e as Error).stack ?? String(e)}\n`);
    cleanupAll();
    process.exit(1);
  },
);
