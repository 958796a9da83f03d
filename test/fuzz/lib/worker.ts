/**
 * One fuzzing process (started by supervise.ts, never by hand): replays the seed corpus, then
 * explores with fast-check until its time is up. Before each input it writes the input to
 * `--last` so that, if the process aborts or hangs, the supervisor knows which input did it.
 * Each new failure (one per signature: kind + error + first src/ frame) is shrunk by fast-check
 * and appended to `--results` as a JSON line at once, so a later abort loses nothing.
 *
 *   node --import tsx test/fuzz/lib/worker-main.ts <target> --ms N --seed N --last FILE --results FILE
 *        [--known FILE] [--skip FILE] [--from-seed N] [--no-seeds]
 */
import { appendFileSync, closeSync, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import fc from 'fast-check';
import { loadTarget } from '../targets/index.js';
import { describeError, threadCpuMs, underTest, Violation, type Target } from './target.js';

export interface FailureRecord {
  kind: 'violation' | 'exception' | 'slow' | 'abort' | 'hang';
  signature: string;
  message: string;
  stack?: string;
  /** The failing input, base64 of its corpus encoding (bytes, or JSON text). */
  input: string;
  inputSha256: string;
  phase: 'seed' | 'explore' | 'supervisor';
  seedName?: string;
  fcSeed?: number;
  fcPath?: string;
  ms?: number;
}

/** A single input slower than this is a failure: hostile bytes must not buy seconds of CPU. */
export const SLOW_MS = Number(process.env.SIGNET_FUZZ_SLOW_MS ?? 250);

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A stable name for a failure: kind, error type, message without numbers/quoted values, first frame in src/. */
export function signatureOf(kind: string, e: unknown): string {
  const err = e instanceof Violation && e.cause instanceof Error ? e.cause : e;
  const head = e instanceof Violation ? (e.key ?? e.message) : describeError(err);
  const normalized = head
    .replace(/'[^']*'/g, "'…'")
    .replace(/0x[0-9a-f]+|\d+/gi, 'N')
    .slice(0, 160);
  const frame =
    err instanceof Error
      ? (err.stack ?? '')
          .split('\n')
          .find((l) => /\/src\//.test(l))
          ?.trim()
          .replace(/:\d+:\d+\)?$/, '')
      : undefined;
  return `${kind} | ${normalized}${frame ? ` | ${frame.replace(/^at /, '').replace(/\(.*\/src\//, '(src/')}` : ''}`;
}

function fullStack(e: unknown): string | undefined {
  if (!(e instanceof Error)) return undefined;
  let s = e.stack ?? String(e);
  if (e.cause instanceof Error) s += `\ncaused by: ${e.cause.stack ?? e.cause.message}`;
  return s;
}

export async function runWorker(argv: string[]): Promise<void> {
  const name = argv[0]!;
  const opt = (k: string) => {
    const i = argv.indexOf(`--${k}`);
    return i < 0 ? undefined : argv[i + 1];
  };
  const ms = Number(opt('ms') ?? 10_000);
  let fcSeed = Number(opt('seed') ?? Date.now() % 2 ** 31);
  const lastPath = opt('last')!;
  const resultsPath = opt('results')!;
  const known = new Set<string>(opt('known') ? readLines(opt('known')!) : []);
  const skip = new Set<string>(opt('skip') ? readLines(opt('skip')!) : []);
  const started = performance.now();
  const deadline = started + ms;

  const target = (await loadTarget(name)) as Target<unknown>;
  await target.setup?.();
  const last = openSync(lastPath, 'w');
  let runs = 0;

  const record = (r: FailureRecord) => appendFileSync(resultsPath, JSON.stringify(r) + '\n');

  /** Runs one input; returns the failure (not yet filtered by `known`) or null. */
  type Failed = { kind: FailureRecord['kind']; error: unknown; bytes: Buffer; ms: number };
  let phase: FailureRecord['phase'] = 'seed';
  const noteSlow = (f: Failed) => {
    const r = toRecord(f, phase, { fcSeed });
    if (known.has(r.signature)) return;
    known.add(r.signature);
    record(r);
  };
  const runOne = async (input: unknown): Promise<Failed | null> => {
    const bytes = target.codec.encode(input);
    if (skip.size && skip.has(sha(bytes))) return null;
    writeSync(last, bytes, 0, bytes.length, 0);
    ftruncateSync(last, bytes.length);
    if (++runs % 1000 === 0) appendFileSync(resultsPath, JSON.stringify({ progress: runs }) + '\n');
    const t0 = threadCpuMs();
    underTest.ms = 0;
    const elapsed = () => (underTest.ms > 0 ? underTest.ms : threadCpuMs() - t0);
    try {
      await target.check(input);
    } catch (e) {
      const ms = elapsed();
      // A broken property does not hide that the input was also slow.
      if (ms > SLOW_MS)
        noteSlow({ kind: 'slow', error: new Violation(`one input took ${Math.round(ms)} ms (limit ${SLOW_MS} ms), and it also broke a property`), bytes, ms });
      return { kind: e instanceof Violation ? 'violation' : 'exception', error: e, bytes, ms };
    }
    let took = elapsed();
    if (took > SLOW_MS) {
      // Once more, so a garbage-collection pause or a busy machine is not taken for a slow input.
      writeSync(last, bytes, 0, bytes.length, 0); // also tells the supervisor this process is alive
      const t1 = threadCpuMs();
      underTest.ms = 0;
      try {
        await target.check(input);
      } catch {
        /* judged above */
      }
      took = Math.min(took, underTest.ms > 0 ? underTest.ms : threadCpuMs() - t1);
    }
    if (took > SLOW_MS) return { kind: 'slow', error: new Violation(`one input took ${Math.round(took)} ms (limit ${SLOW_MS} ms)`), bytes, ms: took };
    return null;
  };

  const toRecord = (f: Failed, phase: FailureRecord['phase'], extra: Partial<FailureRecord>): FailureRecord => ({
    kind: f.kind,
    signature: signatureOf(f.kind, f.error),
    message: f.error instanceof Error ? f.error.message : String(f.error),
    stack: fullStack(f.error),
    input: f.bytes.toString('base64'),
    inputSha256: sha(f.bytes),
    phase,
    ms: Math.round(f.ms),
    ...extra,
  });

  // 1. The seed corpus, every entry once.
  const seeds = target.seeds();
  if (!argv.includes('--no-seeds')) {
    // After a restart, the seeds that an earlier worker already ran are not run again.
    const from = Number(opt('from-seed') ?? 0);
    for (const [i, s] of seeds.entries()) {
      if (i < from) continue;
      appendFileSync(resultsPath, JSON.stringify({ seed: i }) + '\n');
      const f = await runOne(s.input);
      if (!f) continue;
      const r = toRecord(f, 'seed', { seedName: s.name });
      if (known.has(r.signature)) continue;
      known.add(r.signature);
      record(r);
    }
  }

  appendFileSync(resultsPath, JSON.stringify({ seedsDone: true }) + '\n');
  phase = 'explore';

  // 2. Exploration until the deadline; after each new failure, on with a new seed, ignoring the
  //    failures already reported so that one bug does not hide the next.
  const arb = target.arbitrary(seeds);
  for (let round = 0; round < 50; round++) {
    const left = deadline - performance.now();
    if (left < 50) break;
    let details: fc.RunDetails<[unknown]>;
    try {
      details = await fc.check(
        fc.asyncProperty(arb, async (input) => {
          // Past the deadline every input passes, which also ends a shrink that is still going.
          if (performance.now() > deadline) return;
          const f = await runOne(input);
          if (!f || known.has(signatureOf(f.kind, f.error))) return;
          if (f.kind === 'slow') {
            // Not shrunk: every shrink step would cost as long again.
            const r = toRecord(f, 'explore', { fcSeed });
            known.add(r.signature);
            record(r);
            return;
          }
          throw f.error instanceof Error ? f.error : new Error(String(f.error));
        }),
        { seed: fcSeed, numRuns: 2 ** 31 - 1, interruptAfterTimeLimit: Math.floor(left), markInterruptAsFailure: false, endOnFailure: false },
      );
    } catch (e) {
      // A generator (harness) bug, not a finding about Signet: report it as such and stop.
      record({
        kind: 'exception',
        signature: `harness | ${describeError(e)}`,
        message: `the fuzz harness itself failed: ${describeError(e)}`,
        stack: fullStack(e),
        input: '',
        inputSha256: '',
        phase: 'explore',
        fcSeed,
      });
      break;
    }
    if (!details.failed || !details.counterexample) break;
    const input = details.counterexample[0];
    const again = await runOne(input);
    if (again) {
      const r = toRecord(again, 'explore', { fcSeed, fcPath: details.counterexamplePath ?? undefined });
      if (!known.has(r.signature)) record(r);
      known.add(r.signature);
    }
    fcSeed = (fcSeed * 1103515245 + 12345) % 2 ** 31;
  }
  closeSync(last);
  appendFileSync(resultsPath, JSON.stringify({ done: true, runs, ms: Math.round(performance.now() - started) }) + '\n');
}

function readLines(path: string): string[] {
  try {
    return readFileSync(path, 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
}
