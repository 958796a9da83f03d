/**
 * Fuzzing in CI (issue 12, "the class, not only the instance"): every target in test/fuzz/
 * replays its seed corpus and then explores with fast-check for a bounded time, each in child
 * processes (test/fuzz/lib/supervise.ts), so a crash of node itself, a hang or an input slower
 * than SIGNET_FUZZ_SLOW_MS (250 ms) is a failing test with its input, not a dead runner.
 *
 * Time: SIGNET_FUZZ_SECONDS of exploration per target (default 8), two targets at a time (the
 * machine has two cores; the test runner itself is idle meanwhile). The targets do not touch a
 * database, so the PostgreSQL pass (SIGNET_TEST_POSTGRES set) replays the corpus only — every
 * committed case still runs there — and the random exploration runs once, in the SQLite pass.
 * The seed of every run is printed; a failure prints the input (base64) and where it was saved,
 * and `npm run fuzz -- <target> --replay <file>` reproduces it.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CODEC_EXT, TARGETS, type TargetName } from './fuzz/targets/index.js';
import { formatFailure, fuzzTarget, type FuzzReport } from './fuzz/lib/supervise.js';

const onPostgres = Boolean(process.env.SIGNET_TEST_POSTGRES);
const SECONDS = onPostgres ? 0 : Number(process.env.SIGNET_FUZZ_SECONDS ?? 8);
const PARALLEL = 2;

/** Runs at most `n` of the jobs at once, in order. */
function pool(n: number): <T>(job: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async (job) => {
    if (active >= n) await new Promise<void>((r) => waiting.push(r));
    active++;
    try {
      return await job();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}

// Every target starts as soon as a slot is free; each test awaits its own report.
const limit = pool(PARALLEL);
const reports = new Map<TargetName, Promise<FuzzReport>>(TARGETS.map((name) => [name, limit(() => fuzzTarget(name, CODEC_EXT[name], { seconds: SECONDS }))]));

describe(`fuzz targets (${SECONDS ? `${SECONDS} s of exploration each after the seed corpus` : 'seed corpus replay only: the PostgreSQL pass'})`, () => {
  for (const name of TARGETS) {
    test(`${name}: no crash, hang, slow input or broken property`, { timeout: (SECONDS + 120) * 1000 }, async (t) => {
      const report = await reports.get(name)!;
      t.diagnostic(`${name}: ${report.runs} inputs in ${(report.ms / 1000).toFixed(1)} s, ${report.workers} worker process(es), seed ${report.seed}`);
      const text = report.failures.map((f, i) => formatFailure(name, f, report.saved[i])).join('\n\n');
      assert.equal(report.failures.length, 0, `${report.failures.length} failure(s) in fuzz target ${name} (seed ${report.seed}):\n\n${text}`);
    });
  }
});
