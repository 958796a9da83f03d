/**
 * Micro-benchmark: what the HTTP edge (src/http/edge.ts) adds to a bare handler's request.
 *
 * 1. In process, no socket: Edge.begin + Exchange.completed (request/latency metrics, the log
 *    level check) per request, at log level warn as in production.
 * 2. Over loopback: one node:http server answering a fixed 300-byte body three ways, alternated
 *    in rounds under wrk (Debian's `wrk`, one thread, keep-alive): `raw` (writeHead + end, what
 *    the OCSP handler did before the edge), `document` (Edge.send with helmet's headers: metrics,
 *    log check, a dozen header lines) and `binary` (Edge.send with the binary set, as OCSP
 *    answers now). Requests/s is what both sides of a 2-core machine manage, so compare the
 *    columns of one run, not runs.
 *
 *   node --import tsx bench/micro/edge.ts [seconds per round] [concurrency]
 */
import { createServer, type IncomingMessage } from 'node:http';
import { execFile } from 'node:child_process';
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

// 2. Over loopback, driven by wrk (a separate process: the node client in this process used to
//    cost more than the server and hid the difference).
type Mode = 'raw' | 'document' | 'binary';
const MODES: Mode[] = ['raw', 'document', 'binary'];
const server = createServer((req, res) => {
  const mode = (req.url ?? '').slice(1) as Mode;
  if (mode === 'raw') {
    res.writeHead(200, { 'content-type': 'application/ocsp-response', 'content-length': body.length, 'cache-control': 'no-store' });
    res.end(body);
  } else {
    const x = edge.begin(req, '/ocsp');
    edge.send(x, res, 200, ['content-type', 'application/ocsp-response', 'cache-control', 'no-store'], body, mode === 'binary' ? 'binary' : 'document');
  }
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const port = (server.address() as AddressInfo).port;

const wrk = (mode: Mode) =>
  new Promise<number>((resolve, reject) => {
    execFile('wrk', ['-t1', `-c${CONCURRENCY}`, `-d${SECONDS}s`, `http://127.0.0.1:${port}/${mode}`], (err, stdout) => {
      if (err) return reject(err);
      const m = /Requests\/sec:\s+([\d.]+)/.exec(stdout);
      if (!m) return reject(new Error(`wrk said: ${stdout}`));
      resolve(Number(m[1]));
    });
  });

const results: Record<Mode, number[]> = { raw: [], document: [], binary: [] };
await wrk('raw'); // warm-up
for (let i = 0; i < ROUNDS; i++) for (const m of MODES) results[m].push(await wrk(m));
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
const label: Record<Mode, string> = { raw: 'raw (writeHead + end)', document: 'edge, helmet headers', binary: 'edge, binary headers' };
for (const m of MODES) {
  console.log(
    `wrk c${CONCURRENCY} ${label[m].padEnd(22)} median ${Math.round(median(results[m])).toLocaleString('en')} req/s  (runs ${results[m].map((v) => Math.round(v).toLocaleString('en')).join(', ')})`,
  );
}
server.close();
