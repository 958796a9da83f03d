import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import type { Logger } from 'pino';
import { loadConfig, type Config } from '../config/config.js';
import { SignetError, isSignetError } from '../errors.js';
import { createLogger } from '../observability/logger.js';
import { openSignet } from '../runtime/open.js';
import type { CaContext } from '../ca/context.js';

export interface CliEnv {
  config: Config;
  log: Logger;
}

export function cliEnv(): CliEnv {
  const config = loadConfig();
  // The CLI logs only warnings by default: its output is for people and scripts.
  const log = createLogger(process.env.SIGNET_LOG_LEVEL ?? 'warn');
  return { config, log };
}

/** Opens Signet for one CLI command and always closes the database afterwards. */
export async function withSignet<T>(fn: (ctx: CaContext, env: CliEnv) => Promise<T>): Promise<T> {
  const env = cliEnv();
  const ctx = await openSignet(env.config, env.log);
  try {
    return await fn(ctx, env);
  } finally {
    await ctx.db.close();
  }
}

/** One clear line on stderr and a non-zero exit; stack traces only with SIGNET_DEBUG=1. */
export function fail(e: unknown): never {
  const err = e as { message?: string; code?: string; name?: string; clientVersion?: string };
  // A database client's message quotes the statement's values (token hashes and MACs among
  // them): never printed; the operator asks for it with SIGNET_DEBUG.
  const fromDatabase = !isSignetError(e) && (err?.name?.startsWith('Prisma') || err?.clientVersion !== undefined);
  const msg = isSignetError(e)
    ? e.detail
    : fromDatabase
      ? `the database refused the operation (${err.code ?? err.name}); nothing was changed. Run again with SIGNET_DEBUG=1 to see the database's message`
      : err?.message?.trim() || err?.code || err?.name || String(e);
  process.stderr.write(`signet: error: ${msg}\n`);
  if (process.env.SIGNET_DEBUG && e instanceof Error && e.stack) process.stderr.write(e.stack + '\n');
  process.exit(isSignetError(e) && e.status < 500 ? 2 : 1);
}

/** Reads a secret from a file, or asks for it on the terminal without echo. */
export async function readSecret(file: string | undefined, prompt: string): Promise<string> {
  if (file) return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  if (!process.stdin.isTTY)
    throw new SignetError('bad-request', `${prompt.replace(/:\s*$/, '')} is needed: pass it with a --*-file option (no terminal to ask on)`);
  const muted = new Writable({ write: (_c, _e, cb) => cb() });
  const rl = createInterface({ input: process.stdin, output: muted, terminal: true });
  process.stderr.write(prompt);
  const answer = await new Promise<string>((resolve) => rl.question('', resolve));
  rl.close();
  process.stderr.write('\n');
  return answer;
}

export const printJson = (v: unknown) => process.stdout.write(JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x), 2) + '\n');

/** A plain fixed-width table, for people; --json gives the data for scripts. */
export function printTable(rows: Record<string, unknown>[], columns: string[]): void {
  const cell = (v: unknown) => (v instanceof Date ? v.toISOString().slice(0, 19) + 'Z' : v === null || v === undefined ? '-' : String(v));
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) =>
    vals
      .map((v, i) => v.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  process.stdout.write(line(columns.map((c) => c.toUpperCase())) + '\n');
  for (const r of rows) process.stdout.write(line(columns.map((c) => cell(r[c]))) + '\n');
}
