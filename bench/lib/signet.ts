/**
 * Starting and talking to a Signet server for the benchmarks: `node bin/signet.js serve` on a
 * loopback port with rate limits off and warn-level logs, optionally under `node --cpu-prof`.
 */
import { readFileSync, readdirSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { cmdline, daemon, freePort, ROOT, SIGNET_BIN, waitFor, type Daemon } from './util.js';
import { derToPem } from '../../src/pki/pem.js';

export interface SignetServer {
  port: number;
  url: string;
  token: string;
  dataDir: string;
  pid: number;
  command: string;
  daemon: Daemon;
  stop(): Promise<void>;
  /** The .cpuprofile written on stop (when started with cpuProfDir). */
  profiles(): string[];
}

export function signetEnv(dataDir: string, port: number, extra: Record<string, string> = {}): Record<string, string> {
  return {
    SIGNET_DATA_DIR: dataDir,
    SIGNET_PORT: String(port),
    SIGNET_HOST: '127.0.0.1',
    SIGNET_LOG_LEVEL: 'warn',
    SIGNET_RATE_LIMIT_PER_ADDRESS: '0',
    SIGNET_RATE_LIMIT_PER_TOKEN: '0',
    // Both cores, as a 2-core deployment would run it (the server's own default is 1 worker).
    SIGNET_WORKERS: process.env.BENCH_SIGNET_WORKERS ?? '2',
    ...extra,
  };
}

/** Environment for Signet children: the runner's, minus anything that would point Signet elsewhere. */
export function cleanEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SIGNET_') && k !== 'DATABASE_URL' && k !== 'NODE_OPTIONS') base[k] = v;
  return { ...base, ...env };
}

export async function startSignet(
  dataDir: string,
  extra: Record<string, string> = {},
  opts: { cpuProfDir?: string; readyTimeoutMs?: number } = {},
): Promise<SignetServer> {
  const port = await freePort();
  const env = signetEnv(dataDir, port, extra);
  const nodeArgs = opts.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${opts.cpuProfDir}`] : [];
  if (opts.cpuProfDir) mkdirSync(opts.cpuProfDir, { recursive: true });
  const args = [...nodeArgs, SIGNET_BIN, 'serve'];
  const d = daemon(process.execPath, args, { cwd: ROOT, env: cleanEnv(env) });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitFor(
      'Signet /readyz',
      async () => {
        if (d.proc.exitCode !== null) throw new Error(`signet serve exited ${d.proc.exitCode}: ${d.log()}`);
        const r = await fetch(`${url}/readyz`);
        await r.arrayBuffer();
        return r.status === 200;
      },
      opts.readyTimeoutMs ?? 120_000,
      25,
    );
  } catch (e) {
    await d.stop();
    throw new Error(`${(e as Error).message}\n${d.log().slice(-2000)}`);
  }
  const token = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
  return {
    port,
    url,
    token,
    dataDir,
    pid: d.proc.pid!,
    daemon: d,
    command: cmdline('node', [...nodeArgs, 'bin/signet.js', 'serve'], env),
    stop: () => d.stop(15_000),
    profiles: () =>
      opts.cpuProfDir
        ? readdirSync(opts.cpuProfDir)
            .filter((f) => f.endsWith('.cpuprofile'))
            .map((f) => join(opts.cpuProfDir!, f))
        : [],
  };
}

export async function api<T>(s: { url: string; token: string }, method: string, path: string, body?: unknown): Promise<{ status: number; json: T }> {
  const r = await fetch(`${s.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${s.token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: r.status, json: json as T };
}

export interface CaInfo {
  id: string;
  name?: string;
  parentId: string | null;
  status: string;
  keyAlgorithm: string;
}

/** The root and the default issuing intermediate, with their certificates in PEM. */
export async function signetCas(s: { url: string; token: string }): Promise<{ root: CaInfo; intermediate: CaInfo; rootPem: string; intermediatePem: string }> {
  const r = await api<{ items?: CaInfo[] } | CaInfo[]>(s, 'GET', '/api/v1/cas');
  const items = Array.isArray(r.json) ? r.json : (r.json.items ?? []);
  const root = items.find((c) => !c.parentId);
  const intermediate = items.find((c) => c.parentId && c.status === 'active');
  if (!root || !intermediate) throw new Error(`unexpected /api/v1/cas answer: ${JSON.stringify(r.json).slice(0, 500)}`);
  const pem = async (id: string) => {
    const der = Buffer.from(await (await fetch(`${s.url}/pki/${id}.crt`)).arrayBuffer());
    return derToPem(der, 'CERTIFICATE');
  };
  return { root, intermediate, rootPem: await pem(root.id), intermediatePem: await pem(intermediate.id) };
}
