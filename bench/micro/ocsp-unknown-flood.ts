/**
 * What a flood of OCSP requests for distinct never-issued serials (and for issuers Signet does
 * not hold) costs a running Signet, next to the same load on one known (cached) serial: responses per second, the server's CPU time
 * per response, and how many answers were signed (signet_ocsp_responses_total, when exposed)
 * or refused with tryLater.
 *
 *   node --import tsx bench/micro/ocsp-unknown-flood.ts [seconds=5] [concurrency=16]
 *
 * Starts its own `signet serve` (dist/, so `npm run build` first) on a temporary SQLite data
 * directory and removes it afterwards. Extra environment (e.g. SIGNET_OCSP_ON_DEMAND_PER_SECOND)
 * is passed through to the server.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeCertId, issuerHashes } from '../../src/pki/ocsp.js';
import { sequence } from '../../src/pki/der.js';
import { statCpuMicros } from '../lib/util.js';

const SECONDS = Number(process.argv[2] ?? 5);
const CONCURRENCY = Number(process.argv[3] ?? 16);
const ROOT = join(import.meta.dirname, '..', '..');

const dir = mkdtempSync(join(tmpdir(), 'signet-bench-ocsp-'));
const port = 20000 + Math.floor(Math.random() * 20000);
const env = { ...process.env, SIGNET_DATA_DIR: join(dir, 'data'), SIGNET_PORT: String(port), SIGNET_LOG_LEVEL: 'warn' };
// OCSP_FLOOD_CPU_PROF=<dir>: also write the server's V8 CPU profile there (see `npm run bench -- profile`).
const prof = process.env.OCSP_FLOOD_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.OCSP_FLOOD_CPU_PROF}`] : [];
const child = spawn(process.execPath, [...prof, join(ROOT, 'bin', 'signet.js'), 'serve'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
const base = `http://127.0.0.1:${port}`;

const cpuSeconds = (): number => statCpuMicros(`/proc/${child.pid}/stat`) / 1e6;

const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
function post(body: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${base}/ocsp`,
      { method: 'POST', agent, headers: { 'content-type': 'application/ocsp-request', 'content-length': body.length } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(Buffer.concat(chunks)));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function metric(name: string): Promise<string> {
  const text = await (await fetch(`${base}/metrics`)).text();
  return (
    text
      .split('\n')
      .filter((l) => l.startsWith(name))
      .join('; ') || '(not exposed)'
  );
}

async function flood(label: string, next: () => Buffer): Promise<void> {
  const before = cpuSeconds();
  const statuses = new Map<string, number>();
  let n = 0;
  const end = Date.now() + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (Date.now() < end) {
        const res = await post(next());
        // OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED, ... }: the status byte is at offset 4
        // for short-form lengths, 5 or 6 for long forms; find the ENUMERATED tag.
        const at = res.indexOf(0x0a);
        const s = ['successful', 'malformedRequest', 'internalError', 'tryLater', '4', 'sigRequired', 'unauthorized'][res[at + 2]!] ?? '?';
        statuses.set(s, (statuses.get(s) ?? 0) + 1);
        n++;
      }
    }),
  );
  const cpu = cpuSeconds() - before;
  console.log(
    `${label}: ${Math.round(n / SECONDS)} responses/s, server CPU ${((cpu / SECONDS) * 100).toFixed(0)}% of a core, ${((cpu / n) * 1e6).toFixed(0)} µs CPU per response; statuses ${JSON.stringify(Object.fromEntries(statuses))}`,
  );
}

try {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      if ((await fetch(`${base}/readyz`)).ok) break;
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline) throw new Error('signet serve did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  const token = readFileSync(join(dir, 'data', 'admin-token'), 'utf8').trim();
  const cas = (await (await fetch(`${base}/api/v1/cas`, { headers: { authorization: `Bearer ${token}` } })).json()) as {
    items: { id: string; parentId: string | null }[];
  };
  const int = cas.items.find((c) => c.parentId !== null)!;
  const h = issuerHashes(Buffer.from(await (await fetch(`${base}/pki/${int.id}.crt`)).arrayBuffer())).sha1;
  const ocspRequest = (serial: Buffer) =>
    sequence(sequence(sequence(sequence(encodeCertId({ hashAlgorithm: 'sha1', issuerNameHash: h.nameHash, issuerKeyHash: h.keyHash, serial })))));
  const known = ocspRequest(randomBytes(16)); // one serial, asked again and again: the cached case
  console.log(`Signet on ${base}; ${SECONDS} s per run, ${CONCURRENCY} concurrent keep-alive clients`);
  await flood('one repeated serial (cached)    ', () => known);
  await flood('distinct never-issued serials   ', () => ocspRequest(randomBytes(16)));
  const strangerRequest = () =>
    sequence(
      sequence(
        sequence(sequence(encodeCertId({ hashAlgorithm: 'sha1', issuerNameHash: randomBytes(20), issuerKeyHash: randomBytes(20), serial: randomBytes(16) }))),
      ),
    );
  await flood('issuers Signet does not hold     ', strangerRequest);
  console.log(`signatures: ${await metric('signet_ocsp_responses_total')}`);
} finally {
  agent.destroy();
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  rmSync(dir, { recursive: true, force: true });
}
