import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { childEnv } from './env.js';

export const ROOT = join(import.meta.dirname, '..', '..');
export const BIN = join(ROOT, 'bin', 'signet.js');

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * When this process last came back from a blocking `signet …` call. While it was blocked, a
 * server may have closed an idle keep-alive connection (after 5 s) without this process seeing
 * the FIN yet; the next fetch then reuses the dead socket ("other side closed"). api() retries
 * that one failure once, only right after such a call.
 */
let blockedUntil = 0;

export function signet(args: string[], env: Record<string, string>, input?: string): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], { env: childEnv(env), encoding: 'utf8', input, timeout: 120_000 });
  // However short the call, a keep-alive socket idle for 5 s may have been closed meanwhile.
  blockedUntil = Date.now();
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A fetch failure on a socket the server had closed while this process was blocked (see blockedUntil). */
const staleSocket = (e: unknown) =>
  Date.now() - blockedUntil < 2000 &&
  /other side closed|socket hang up|ECONNRESET/.test(
    `${(e as Error).message} ${((e as Error).cause as Error | undefined)?.message ?? ''} ${((e as { cause?: { code?: string } }).cause)?.code ?? ''}`,
  );

/** The server closed the connection before any answer ("other side closed"): it did not take the request. */
const closedBeforeAnswer = (e: unknown) => /other side closed/.test(`${((e as Error).cause as Error | undefined)?.message ?? ''}`);

/** `signet …` without blocking the event loop, so requests in flight keep going meanwhile. */
export function signetAsync(args: string[], env: Record<string, string>): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** A port free now and not handed out before in this process (two asked in a row may otherwise be the same). */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => {
        const a = s.address();
        const p = typeof a === 'object' && a ? a.port : 0;
        s.close(() => resolve(p));
      });
      s.on('error', reject);
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}
const handedOut = new Set<number>();

export interface RunningServer {
  url: string;
  port: number;
  token: string;
  stdout: () => string;
  stderr: () => string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  pid: number;
}

/** Starts `signet serve` as a real child process and waits until /healthz answers. */
export async function startServer(env: Record<string, string>): Promise<RunningServer> {
  const port = Number(env.SIGNET_PORT ?? (await freePort()));
  const child = spawn(process.execPath, [BIN, 'serve'], { env: childEnv({ ...env, SIGNET_PORT: String(port) }), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  child.stderr.on('data', (d) => {
    err += d;
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`signet serve exited with ${child.exitCode}: ${err || out}`);
    try {
      const r = await fetch(`${url}/readyz`);
      if (r.ok) break;
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`signet serve did not become healthy: ${err}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const token = readFileSync(join(env.SIGNET_DATA_DIR!, 'admin-token'), 'utf8').trim();
  return {
    url,
    port,
    token,
    pid: child.pid!,
    stdout: () => out,
    stderr: () => err,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
}

/**
 * A GET of a public URL (PKI files), retried once if the keep-alive socket it reused had been
 * closed by the server while this process was blocked (a CLI or verifier run): GETs are safe to repeat.
 */
export async function getUrl(url: string): Promise<Response> {
  return fetch(url).catch((e: unknown) => {
    if (/other side closed|socket hang up|ECONNRESET/.test(`${(e as Error).message} ${((e as Error).cause as Error | undefined)?.message ?? ''}`))
      return fetch(url);
    throw e;
  });
}

/**
 * fetch, retried once if it failed on a keep-alive socket the server had closed before answering
 * (while this process was blocked in a CLI call or openssl, or as the idle timeout struck).
 */
export function fetchAfterBlocking(url: string, init?: RequestInit): Promise<Response> {
  return fetch(url, init).catch((e: unknown) => {
    if (staleSocket(e) || closedBeforeAnswer(e)) {
      blockedUntil = 0;
      return fetch(url, init);
    }
    throw e;
  });
}

export async function api(server: { url: string; token: string }, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetchAfterBlocking(server.url + path, {
    method,
    headers: { authorization: `Bearer ${server.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}
