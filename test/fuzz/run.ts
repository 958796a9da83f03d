/**
 * npm run fuzz -- <target|all> [seconds] [--seed N]   fuzz longer (default 60 s); new failing
 *                                                     inputs are saved to test/fuzz/corpus/<target>/
 * npm run fuzz -- <target> --replay FILE              run one input in this process (an abort aborts)
 * npm run fuzz -- --list                              the targets
 *
 * Exit code 1 when anything failed. The inputs saved to the corpus are replayed by `npm test`
 * from then on, so a failure stays a failing test until it is fixed.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CODEC_EXT, loadTarget, TARGETS, type TargetName } from './targets/index.js';
import { CORPUS_DIR, formatFailure, fuzzTarget } from './lib/supervise.js';
import { SLOW_MS } from './lib/worker.js';
import { underTest } from './lib/target.js';

async function main(argv: string[]): Promise<number> {
  const flag = (k: string) => {
    const i = argv.indexOf(`--${k}`);
    return i < 0 ? undefined : argv[i + 1];
  };
  const positional = argv.filter((a, i) => !a.startsWith('--') && !argv[i - 1]?.startsWith('--'));
  if (argv.includes('--list') || positional.length === 0) {
    for (const name of TARGETS) process.stdout.write(`${name.padEnd(14)} ${(await loadTarget(name)).about}\n`);
    if (positional.length === 0 && !argv.includes('--list'))
      process.stdout.write('\nusage: npm run fuzz -- <target|all> [seconds] [--seed N] | <target> --replay FILE\n');
    return 0;
  }
  const [which, secondsText] = positional as [string, string | undefined];
  const replay = flag('replay');
  if (replay) {
    const target = await loadTarget(which);
    await target.setup?.();
    const input = target.codec.decode(readFileSync(replay));
    try {
      const t0 = performance.now();
      underTest.ms = 0;
      await target.check(input);
      const ms = underTest.ms > 0 ? underTest.ms : performance.now() - t0;
      if (ms > SLOW_MS) throw new Error(`one input took ${Math.round(ms)} ms (limit ${SLOW_MS} ms)`);
      process.stdout.write(`${which}: the property holds for ${replay} (${ms.toFixed(1)} ms)\n`);
      return 0;
    } catch (e) {
      process.stdout.write(
        `${which}: FAILS for ${replay}:\n${e instanceof Error ? `${e.stack}${e.cause instanceof Error ? `\ncaused by: ${e.cause.stack}` : ''}` : String(e)}\n`,
      );
      return 1;
    }
  }
  const names = (which === 'all' ? [...TARGETS] : [which]) as TargetName[];
  for (const n of names) if (!(TARGETS as readonly string[]).includes(n)) throw new Error(`unknown fuzz target '${n}'; targets: ${TARGETS.join(', ')}`);
  const seconds = Number(secondsText ?? 60);
  const seed = flag('seed') === undefined ? undefined : Number(flag('seed'));
  let failed = 0;
  for (const name of names) {
    const report = await fuzzTarget(name, CODEC_EXT[name], {
      seconds,
      seed,
      saveTo: join(CORPUS_DIR, name),
      log: (l) => process.stdout.write(`  ${l}\n`),
    });
    process.stdout.write(
      `${name}: ${report.runs} inputs in ${(report.ms / 1000).toFixed(1)} s, ${report.workers} worker process(es), seed ${report.seed}: ${report.failures.length ? `${report.failures.length} FAILURE(S)` : 'no failure'}\n`,
    );
    report.failures.forEach((f, i) => {
      process.stdout.write(`${formatFailure(name, f, report.saved[i])}\n\n`);
    });
    failed += report.failures.length;
  }
  return failed ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(2);
  },
);
