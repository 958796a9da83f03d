/**
 * What a fuzz target is, and the oracle every target shares: a parser given hostile input
 * returns, or throws a SignetError whose status is 4xx. Anything else — another exception
 * type, a 5xx SignetError, a result that breaks a target's property — is a `Violation`.
 */
import type fc from 'fast-check';
import { SignetError } from '../../../src/errors.js';

export interface Codec<T> {
  /** File extension in the corpus: raw DER bytes, or a JSON document. */
  ext: 'der' | 'json';
  encode(input: T): Buffer;
  decode(bytes: Buffer): T;
}

export interface Seed<T> {
  name: string;
  input: T;
}

export interface Target<T> {
  name: string;
  /** One line for `npm run fuzz -- --list` and the report. */
  about: string;
  codec: Codec<T>;
  /** Once per worker process (key generation and the like). */
  setup?(): Promise<void> | void;
  /** The seed corpus: committed files under test/fuzz/corpus/<name>/ plus generated seeds. */
  seeds(): Seed<T>[];
  /** Structure-aware generator (mutating the seeds and building valid inputs). */
  arbitrary(seeds: Seed<T>[]): fc.Arbitrary<T>;
  /** The property: returns when it holds, throws when it does not. */
  check(input: T): void | Promise<void>;
}

/** A broken property (as opposed to the parser under test throwing something unexpected). */
export class Violation extends Error {
  /** Groups failures with one cause (e.g. "parseCsr threw TypeError") for de-duplication; the message by default. */
  readonly key?: string;
  constructor(message: string, options?: { cause?: unknown; key?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'Violation';
    this.key = options?.key;
  }
}

/**
 * Time spent in the code under test for the current input (outcome() and timed() add to it), so
 * the per-input time bound judges Signet and not the oracle (schema parsers are much slower).
 * The worker resets it before each input; when a target never uses these, the whole check counts.
 */
export const underTest = { ms: 0 };

/**
 * The CPU this thread has used, in ms: "slow" means work done, not time waited, so a machine
 * busy with other test files (CI runs two at a time) does not make an input look slow.
 */
export function threadCpuMs(): number {
  const u = process.threadCpuUsage();
  return (u.user + u.system) / 1000;
}

export function timed<R>(fn: () => R): R {
  const t0 = threadCpuMs();
  try {
    return fn();
  } finally {
    underTest.ms += threadCpuMs() - t0;
  }
}

export async function timedAsync<R>(fn: () => Promise<R>): Promise<R> {
  const t0 = threadCpuMs();
  try {
    return await fn();
  } finally {
    underTest.ms += threadCpuMs() - t0;
  }
}

export type Outcome<R> = { ok: true; value: R } | { ok: false; error: SignetError };

/**
 * Runs `fn`: its result, or the SignetError (4xx) it threw. Any other throw is a Violation that
 * names `what` and keeps the original error (and its stack) as the cause.
 */
export function outcome<R>(what: string, fn: () => R): Outcome<R> {
  try {
    return { ok: true, value: timed(fn) };
  } catch (e) {
    if (e instanceof SignetError) {
      if (e.status >= 400 && e.status < 500) return { ok: false, error: e };
      throw new Violation(`${what} answered ${e.status} (${e.type}: ${e.detail}); hostile input must be a 4xx`, {
        cause: e,
        key: `${what} answered ${e.status} ${e.type}`,
      });
    }
    throw new Violation(`${what} threw ${describeError(e)} instead of a SignetError`, {
      cause: e,
      key: `${what} threw ${e instanceof Error ? e.name : typeof e}`,
    });
  }
}

export function describeError(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message.split('\n')[0]!.slice(0, 300)}`;
  return `a non-Error value ${String(e).slice(0, 100)}`;
}

export function assertThat(cond: unknown, message: string): asserts cond {
  if (!cond) throw new Violation(message);
}

export const bytesCodec: Codec<Buffer> = {
  ext: 'der',
  encode: (b) => b,
  decode: (b) => b,
};

/** JSON with Buffers as {"$hex": "..."} so byte fields survive the corpus. */
export function jsonCodec<T>(): Codec<T> {
  return {
    ext: 'json',
    encode: (x) =>
      Buffer.from(
        JSON.stringify(
          x,
          (_k, v: unknown) => {
            if (v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer' && Array.isArray((v as { data?: unknown }).data)) {
              return { $hex: Buffer.from((v as { data: number[] }).data).toString('hex') };
            }
            return v;
          },
          1,
        ),
      ),
    decode: (b) =>
      JSON.parse(b.toString('utf8'), (_k, v: unknown) =>
        v && typeof v === 'object' && typeof (v as { $hex?: unknown }).$hex === 'string' ? Buffer.from((v as { $hex: string }).$hex, 'hex') : v,
      ) as T,
  };
}
