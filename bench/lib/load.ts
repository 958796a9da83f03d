/**
 * A closed-loop HTTP load generator on node:http with a keep-alive Agent: `concurrency` workers,
 * each sending its next request when the previous answer has been read, until the deadline.
 * Latency is measured per request from write to the last byte of the response.
 * Requests in flight at the deadline finish (each bounded by a 30 s timeout); nothing new starts.
 */
import { Agent, request } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { percentile } from './util.js';

export interface LoadOptions {
  port: number;
  method: 'GET' | 'POST';
  /** Path (and body) of the i-th request. */
  next: (i: number) => { path: string; body?: Buffer };
  headers?: Record<string, string>;
  concurrency: number;
  seconds: number;
  okStatus: number[];
  /** How many successful response bodies to keep (for verification). */
  keepBodies?: number;
  /**
   * HTTPS instead of HTTP, trusting `ca` (PEM) for the server's certificate. `newConnection`:
   * no keep-alive and no TLS session cache, so every request pays a full TCP + TLS handshake
   * (as devices that each enroll once would); otherwise connections are kept alive as over HTTP.
   */
  tls?: { ca: string; newConnection?: boolean };
}

export interface LoadResult {
  requests: number;
  ok: number;
  errors: number;
  statuses: Record<string, number>;
  seconds: number;
  rps: number;
  p50ms: number;
  p99ms: number;
  meanMs: number;
  bodies: { i: number; body: Buffer }[];
  firstError?: string;
}

export async function httpLoad(o: LoadOptions): Promise<LoadResult> {
  const agent = o.tls
    ? new HttpsAgent({
        ca: o.tls.ca,
        keepAlive: !o.tls.newConnection,
        maxSockets: o.concurrency,
        maxFreeSockets: o.concurrency,
        ...(o.tls.newConnection ? { maxCachedSessions: 0 } : {}),
      })
    : new Agent({ keepAlive: true, maxSockets: o.concurrency, maxFreeSockets: o.concurrency });
  const send = o.tls ? httpsRequest : request;
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  const bodies: { i: number; body: Buffer }[] = [];
  let seq = 0;
  let ok = 0;
  let errors = 0;
  let firstError: string | undefined;
  const start = performance.now();
  const deadline = start + o.seconds * 1000;
  let lastEnd = start;

  const one = (i: number) =>
    new Promise<void>((resolve) => {
      const { path, body } = o.next(i);
      const t0 = performance.now();
      const headers: Record<string, string | number> = { ...o.headers };
      if (body) headers['content-length'] = body.length;
      const req = send({ host: '127.0.0.1', port: o.port, method: o.method, path, agent, headers, timeout: 30_000 }, (res) => {
        const keep = (o.keepBodies ?? 0) > bodies.length;
        const chunks: Buffer[] = [];
        if (keep) res.on('data', (c: Buffer) => chunks.push(c));
        else res.resume();
        res.once('end', () => {
          const t1 = performance.now();
          lastEnd = t1;
          const code = res.statusCode ?? 0;
          statuses[code] = (statuses[code] ?? 0) + 1;
          if (o.okStatus.includes(code)) {
            ok++;
            latencies.push(t1 - t0);
            if (keep && bodies.length < (o.keepBodies ?? 0)) bodies.push({ i, body: Buffer.concat(chunks) });
          } else {
            errors++;
            if (!firstError) firstError = `HTTP ${code}${keep ? ': ' + Buffer.concat(chunks).toString().slice(0, 300) : ''}`;
          }
          resolve();
        });
        res.once('error', (e) => {
          errors++;
          firstError ??= e.message;
          resolve();
        });
      });
      req.once('timeout', () => req.destroy(new Error('request timed out after 30 s')));
      req.once('error', (e) => {
        errors++;
        statuses.neterr = (statuses.neterr ?? 0) + 1;
        firstError ??= e.message;
        resolve();
      });
      req.end(body);
    });

  await Promise.all(
    Array.from({ length: o.concurrency }, async () => {
      while (performance.now() < deadline) await one(seq++);
    }),
  );
  agent.destroy();
  const seconds = (lastEnd - start) / 1000;
  latencies.sort((a, b) => a - b);
  const meanMs = latencies.reduce((a, b) => a + b, 0) / Math.max(1, latencies.length);
  return {
    requests: ok + errors,
    ok,
    errors,
    statuses,
    seconds,
    rps: ok / seconds,
    p50ms: percentile(latencies, 50),
    p99ms: percentile(latencies, 99),
    meanMs,
    bodies,
    firstError,
  };
}
