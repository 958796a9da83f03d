/**
 * Runs a fuzz target in child processes, so that an abort (a native assertion, a segfault, an
 * out-of-memory) or a hang is a reported failure with its input, not a dead test runner.
 *
 * The worker writes each input to a file before running it. When the worker dies, the
 * supervisor reads that file, records the failure (with the native message and JavaScript stack
 * from stderr), adds the input to the worker's skip list and starts a new worker with the time
 * that is left, so one crashing input does not hide the rest of the run.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FailureRecord } from './worker.js';
export { CORPUS_DIR, FUZZ_DIR } from './paths.js';

const WORKER = join(import.meta.dirname, 'worker-main.ts');

/** No input written for this long while the worker is alive: it hangs. */
const HANG_MS = Number(process.env.SIGNET_FUZZ_HANG_MS ?? 15_000);
const MAX_RESTARTS = 12;

export interface FuzzReport {
  target: string;
  seconds: number;
  runs: number;
  ms: number;
  workers: number;
  failures: FailureRecord[];
  /** Where the failing inputs were written. */
  saved: string[];
  seed: number;
}

export interface FuzzOptions {
  /** Exploration time after the seed corpus; 0 replays the corpus only. */
  seconds: number;
  seed?: number;
  /** Directory for failing inputs (npm run fuzz: the target's corpus directory). */
  saveTo?: string;
  /** Progress lines (npm run fuzz prints them). */
  log?: (line: string) => void;
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

export async function fuzzTarget(target: string, ext: string, options: FuzzOptions): Promise<FuzzReport> {
  const work = mkdtempSync(join(tmpdir(), `signet-fuzz-${target}-`));
  const results = join(work, 'results.jsonl');
  const knownFile = join(work, 'known.txt');
  const skipFile = join(work, 'skip.txt');
  const lastFile = join(work, 'last-input');
  writeFileSync(results, '');
  writeFileSync(knownFile, '');
  writeFileSync(skipFile, '');
  const seed = options.seed ?? Math.floor(Math.random() * 2 ** 31);
  const started = Date.now();
  const budget = options.seconds * 1000;
  const failures: FailureRecord[] = [];
  let runs = 0;
  let workers = 0;

  let seedsDone = false;
  let nextSeed = 0;
  const readResults = (): { records: FailureRecord[]; done?: { runs: number }; progress: number } => {
    const out: FailureRecord[] = [];
    let done: { runs: number } | undefined;
    let progress = 0;
    for (const line of readFileSync(results, 'utf8').split('\n')) {
      if (!line) continue;
      const x = JSON.parse(line) as FailureRecord | { done: true; runs: number } | { progress: number } | { seedsDone: true } | { seed: number };
      if ('seedsDone' in x) seedsDone = true;
      else if ('seed' in x) nextSeed = x.seed + 1;
      else if ('done' in x) done = x;
      else if ('progress' in x) progress = x.progress;
      else out.push(x);
    }
    return { records: out, done, progress };
  };

  for (let attempt = 0; attempt <= MAX_RESTARTS; attempt++) {
    const left = Math.max(0, budget - (Date.now() - started));
    // The whole seed corpus is replayed whatever the time budget; exploration only while time is left.
    if (attempt > 0 && left < 1000 && seedsDone) break;
    writeFileSync(results, '');
    rmSync(lastFile, { force: true });
    workers++;
    const firstSeed = nextSeed;
    const workerSeed = (seed + attempt * 7919) % 2 ** 31;
    const outcome = await runChild(
      [
        target,
        '--ms',
        String(left),
        '--seed',
        String(workerSeed),
        '--last',
        lastFile,
        '--results',
        results,
        '--known',
        knownFile,
        '--skip',
        skipFile,
        '--from-seed',
        String(nextSeed),
      ],
      lastFile,
      budget + 60_000 + HANG_MS,
    );
    const { records, done, progress } = readResults();
    for (const r of records) {
      failures.push(r);
      appendFileSync(knownFile, r.signature + '\n');
      options.log?.(`${target}: ${r.kind}: ${r.signature}`);
    }
    if (done) {
      runs += done.runs;
      break;
    }
    runs += Math.max(progress, nextSeed - firstSeed);
    // The worker died or hung: the input it was running is the culprit.
    const input = existsSync(lastFile) ? readFileSync(lastFile) : Buffer.alloc(0);
    const kind: FailureRecord['kind'] = outcome.hung ? 'hang' : 'abort';
    const native = nativeMessage(outcome.stderr);
    const signature = `${kind} | ${outcome.hung ? `no progress for ${HANG_MS} ms` : native.head} ${native.frame ? `| ${native.frame}` : ''}`.trim();
    appendFileSync(skipFile, sha(input) + '\n');
    if (!failures.some((f) => f.signature === signature)) {
      const rec: FailureRecord = {
        kind,
        signature,
        message: outcome.hung
          ? `the worker made no progress for ${HANG_MS} ms on one input and was killed`
          : `the worker process died (${outcome.signal ?? `exit code ${outcome.code}`}): ${native.head}`,
        stack: native.stack || outcome.stderr.slice(-4000),
        input: input.toString('base64'),
        inputSha256: sha(input),
        phase: 'supervisor',
      };
      failures.push(rec);
      appendFileSync(knownFile, signature + '\n');
      options.log?.(`${target}: ${kind}: ${signature}`);
    }
    if (outcome.code === 3) break; // the harness itself failed (e.g. a target did not load): do not loop
  }

  const saved: string[] = [];
  const dir = options.saveTo ?? join(work, 'failing');
  for (const f of failures) {
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `found-${f.inputSha256.slice(0, 12)}.${ext}`);
    if (!existsSync(file)) writeFileSync(file, Buffer.from(f.input, 'base64'));
    saved.push(file);
  }
  if (!failures.length) rmSync(work, { recursive: true, force: true });
  return { target, seconds: options.seconds, runs, ms: Date.now() - started, workers, failures, saved, seed };
}

interface ChildOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  hung: boolean;
}

function runChild(args: string[], lastFile: string, hardLimitMs: number): Promise<ChildOutcome> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--max-old-space-size=1024', WORKER, ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    let stderr = '';
    let hung = false;
    const spawned = Date.now();
    child.stderr.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString('utf8')).slice(-64 * 1024);
    });
    const timer = setInterval(() => {
      let lastWrite = spawned;
      try {
        lastWrite = Math.max(spawned, statSync(lastFile).mtimeMs);
      } catch {
        /* no input yet */
      }
      if (Date.now() - lastWrite > HANG_MS || Date.now() - spawned > hardLimitMs) {
        hung = true;
        child.kill('SIGKILL');
      }
    }, 500);
    child.on('exit', (code, signal) => {
      clearInterval(timer);
      // Let the stderr pipe drain (the native stack trace comes last).
      setTimeout(() => resolve({ code, signal, stderr, hung }), 50);
    });
  });
}

/** The native failure line and the JavaScript stack node prints when it aborts. */
function nativeMessage(stderr: string): { head: string; frame?: string; stack: string } {
  const lines = stderr.split('\n');
  const head =
    lines
      .find((l) => /Assertion failed|FATAL ERROR|Fatal error|Segmentation fault|heap out of memory|Check failed/.test(l))
      ?.replace(/^\s*#\s*/, '')
      .trim() ?? (lines.filter(Boolean).slice(-1)[0] ?? 'no message').trim();
  const js = stderr.indexOf('----- JavaScript stack trace -----');
  const stack = js >= 0 ? stderr.slice(Math.max(0, stderr.lastIndexOf('\n', Math.max(0, stderr.indexOf(head) - 1))), js + 2000) : stderr.slice(-3000);
  const frame =
    js >= 0
      ? stderr
          .slice(js)
          .split('\n')
          .find((l) => /\/src\//.test(l))
          ?.replace(/^\s*\d+:\s*/, '')
          .replace(/\(.*\/src\//, '(src/')
          .replace(/:\d+:\d+\)$/, ')')
      : undefined;
  return { head: head.slice(0, 200), frame, stack };
}

/** A failure as a paragraph a person can act on. */
export function formatFailure(target: string, f: FailureRecord, file?: string): string {
  const input = Buffer.from(f.input, 'base64');
  const shown =
    input.length <= 600 ? `base64 ${f.input}` : `${input.length} bytes (see the file), starting base64 ${input.subarray(0, 120).toString('base64')}…`;
  return [
    `[${target}] ${f.kind.toUpperCase()}: ${f.message.split('\n')[0]}`,
    `  signature: ${f.signature}`,
    `  input (${input.length} bytes): ${shown}`,
    ...(f.seedName ? [`  from the seed corpus: ${f.seedName}`] : []),
    ...(f.fcSeed !== undefined ? [`  fast-check seed ${f.fcSeed}, path ${f.fcPath ?? '-'}`] : []),
    ...(file ? [`  saved: ${file}`, `  replay: npm run fuzz -- ${target} --replay ${file}`] : []),
    ...(f.stack ? [`  stack:\n    ${f.stack.split('\n').slice(0, 14).join('\n    ')}`] : []),
  ].join('\n');
}
