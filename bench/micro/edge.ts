/**
 * Micro-benchmark: what the HTTP edge (src/http/edge.ts) adds to a bare handler's request.
 *
 * 1. In process, no socket: Edge.begin + Exchange.completed (request/latency metrics, the log
 *    level check) per request, at log level warn as in production.
 * 2. Over loopback: one node:http server answering a fixed 300-byte body two ways, alternated
 *    in rounds: `raw` (writeHead + end, what the OCSP handler did before the edge) and `edge`
 *    (Edge.begin + Edge.send: security headers, metrics, log check). Keep-alive clients in this
 *    process; requests/s is what both sides of a 2-core machine manage, so compare the two
 *    columns of one run, not runs.
 *
 *   node --import tsx bench/micro/edge.ts [seconds per round] [concurrency]
 */
import { createServer, request, Agent, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { Edge } from '../../src/http/edge.js';
import { createMetrics } from '../../src/observability/metrics.js';

const SECONDS = Number(process.argv[2] ?? 3);
const CONCURRENCY = Number(process.argv[3] ?? 16);
const ROUNDS = 3;

const edge = new Edge({ log: pino({ level: 'warn' }), metrics: createMetrics() });
const body = Buffer.alloc(300, 0x30);

// 1. Bookkeeping alone.
{
  const req = { method: 'POST', url: '/ocsp', headers: {} } as IncomingMessage;
  const n = 500_000;
  for (let i = 0; i < 50_000; i++) edge.begin(req, '/ocsp').completed(200);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) edge.begin(req, '/ocsp').completed(200);
  console.log(`Edge.begin + completed (metrics, log check)   ${(Number(process.hrtime.bigint() - t0) / 1000 / n).toFixed(2)} µs`);
}

// 2. Over loopback.
let mode: 'raw' | 'edge' = 'raw';
const server = createServer((req, res) => {
  if (mode === 'raw') {
    res.writeHead(200, { 'content-type': 'application/ocsp-response', 'content-length': body.length, 'cache-control': 'no-store' });
    res.end(body);
  } else {
    const x = edge.begin(req, '/ocsp');
    edge.send(x, res, 200, ['content-type', 'application/ocsp-response', 'cache-control', 'no-store'], body);
  }
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const port = (server.address() as AddressInfo).port;
const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });

const one = () => new Promise<void>((resolve, reject) => {
  const req = request({ host: '127.0.0.1', port, path: '/ocsp', method: 'POST', agent, headers: { 'content-type': 'application/ocsp-request', 'content-length': 0 } }, (res) => { res.resume(); res.on('end', resolve); });
  req.on('error', reject);
  req.end();
});
async function round(): Promise<number> {
  const until = Date.now() + SECONDS * 1000;
  let done = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => { while (Date.now() < until) { await one(); done++; } }));
  return done / SECONDS;
}

const results: Record<string, number[]> = { raw: [], edge: [] };
mode = 'raw'; await round(); // warm-up
for (let i = 0; i < ROUNDS; i++) {
  for (const m of ['raw', 'edge'] as const) { mode = m; results[m]!.push(await round()); }
}
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
for (const m of ['raw', 'edge'] as const) {
  console.log(`loopback ${m.padEnd(5)} c${CONCURRENCY}: median ${Math.round(median(results[m]!)).toLocaleString('en')} req/s  (runs ${results[m]!.map((v) => Math.round(v).toLocaleString('en')).join(', ')})`);
}
agent.destroy();
server.close();
