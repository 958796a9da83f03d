/**
 * enroll (issue #17): EST simpleenroll next to REST issuance, both over TLS on the same Signet
 * (SIGNET_TLS=on, SQLite WAL, storage and audit on), with the same ECDSA P-256 CSR pool and the
 * same concurrency levels, alternating REST and EST runs so drift on a shared machine hits both.
 *
 * - REST: POST /api/v1/certificates {"csr": <PEM>, "profile": "server"}, Bearer admin token.
 * - EST:  POST /.well-known/est/simpleenroll, Content-Type: application/pkcs10, base64 DER CSR,
 *         HTTP Basic with one enrollment credential (signet enroll create --profile server
 *         --uses 1000000 --expires-in never --json; no --names, so the same names as REST).
 * Each over keep-alive connections, and over a new TCP + TLS connection per request (no TLS
 * session resumption), as a fleet of devices enrolling once each would arrive.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { httpLoad, type LoadOptions, type LoadResult } from '../lib/load.js';
import { csrPool, verifyLeaves } from '../lib/pki.js';
import { summariseProfile } from '../lib/profile.js';
import { cleanEnv, signetEnv, startSignet, type SignetServer } from '../lib/signet.js';
import {
  CONCURRENCY,
  fmt,
  freePort,
  max,
  median,
  min,
  must,
  newReport,
  PROFILE,
  removeTemp,
  run,
  ROOT,
  RUNS,
  SECONDS,
  selected,
  SIGNET_BIN,
  tempDir,
  type WorkloadReport,
} from '../lib/util.js';
import { derToPem } from '../../src/pki/pem.js';

type Api = 'rest' | 'est';
type Conn = 'keep-alive' | 'new TLS conn/request';

interface Row {
  api: Api;
  conn: Conn;
  conc: number;
  runs: LoadResult[];
  verified: string;
}

interface Setup {
  s: SignetServer;
  tlsPort: number;
  rootPem: string;
  rootFile: string;
  intFile: string;
  credential: { id: string; secret: string };
  dir: string;
}

const EST_PATH = '/.well-known/est/simpleenroll';
const REST_PATH = '/api/v1/certificates';

function pemBody(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
}

/** A Signet with the HTTPS listener, its root and issuing CA in PEM, and one EST credential. */
async function setup(label: string, extra: Record<string, string> = {}, cpuProfDir?: string): Promise<Setup> {
  const dir = tempDir(`enroll-${label}`);
  const dataDir = join(dir, 'data');
  const tlsPort = await freePort();
  const env = { SIGNET_TLS: 'on', SIGNET_TLS_PORT: String(tlsPort), SIGNET_INTERMEDIATE_KEY: 'ecdsa-p256', ...extra };
  const s = await startSignet(dataDir, env, cpuProfDir ? { cpuProfDir } : {});
  // /api/v1 is HTTPS-only now: the CAs come from the CLI on the same data dir, their certificates from /pki/ (plain HTTP).
  const cliEnv = cleanEnv(signetEnv(dataDir, s.port, env));
  const cas = JSON.parse((await must(process.execPath, [SIGNET_BIN, 'ca', 'list', '--json'], { cwd: ROOT, env: cliEnv })).stdout) as
    | { id: string; parentId: string | null; status: string }[]
    | { items: { id: string; parentId: string | null; status: string }[] };
  const items = Array.isArray(cas) ? cas : cas.items;
  const root = items.find((c) => !c.parentId);
  const int = items.find((c) => c.parentId && c.status === 'active');
  if (!root || !int) throw new Error(`unexpected signet ca list --json: ${JSON.stringify(cas).slice(0, 400)}`);
  const pem = async (id: string) => derToPem(Buffer.from(await (await fetch(`${s.url}/pki/${id}.crt`)).arrayBuffer()), 'CERTIFICATE');
  const rootPem = await pem(root.id);
  const rootFile = join(dir, 'root.pem');
  const intFile = join(dir, 'int.pem');
  writeFileSync(rootFile, rootPem);
  writeFileSync(intFile, await pem(int.id));
  const made = JSON.parse(
    (
      await must(process.execPath, [SIGNET_BIN, 'enroll', 'create', '--profile', 'server', '--uses', '1000000', '--expires-in', 'never', '--json'], {
        cwd: ROOT,
        env: cliEnv,
      })
    ).stdout,
  ) as { id: string; secret: string };
  return { s, tlsPort, rootPem, rootFile, intFile, credential: { id: made.id, secret: made.secret }, dir };
}

function loadOptions(t: Setup, api: Api, conn: Conn, conc: number, csrs: string[], seconds: number): LoadOptions {
  const restBodies = csrs.map((csr) => Buffer.from(JSON.stringify({ csr, profile: 'server' })));
  const estBodies = csrs.map((csr) => Buffer.from(pemBody(csr).toString('base64')));
  const bodies = api === 'rest' ? restBodies : estBodies;
  const path = api === 'rest' ? REST_PATH : EST_PATH;
  const headers =
    api === 'rest'
      ? { 'content-type': 'application/json', authorization: `Bearer ${t.s.token}` }
      : {
          'content-type': 'application/pkcs10',
          authorization: `Basic ${Buffer.from(`${t.credential.id}:${t.credential.secret}`).toString('base64')}`,
        };
  return {
    port: t.tlsPort,
    method: 'POST',
    next: (i) => ({ path, body: bodies[i % bodies.length]! }),
    headers,
    concurrency: conc,
    seconds,
    okStatus: [api === 'rest' ? 201 : 200],
    tls: { ca: t.rootPem, newConnection: conn !== 'keep-alive' },
  };
}

/** The leaf of a base64 certs-only CMS (EST reply), via openssl pkcs7 -print_certs (first certificate). */
async function estLeaf(body: Buffer, dir: string, i: number): Promise<string> {
  const f = join(dir, `est-${i}.p7`);
  writeFileSync(f, Buffer.from(body.toString('latin1').replace(/\s+/g, ''), 'base64'));
  const r = await run('openssl', ['pkcs7', '-inform', 'DER', '-in', f, '-print_certs']);
  const first = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(r.stdout);
  if (r.code !== 0 || !first) throw new Error(`openssl pkcs7 -print_certs failed on an EST reply: ${r.stderr.slice(0, 300)}`);
  return first[0] + '\n';
}

async function verify(t: Setup, api: Api, bodies: Buffer[]): Promise<string> {
  try {
    const pems =
      api === 'rest'
        ? bodies.map((b) => (JSON.parse(b.toString()) as { certificate: string }).certificate)
        : await Promise.all(bodies.map((b, i) => estLeaf(b, t.dir, i)));
    const v = await verifyLeaves(pems, t.rootFile, t.intFile, t.dir);
    return `${v.ok}/${v.total}${v.firstFailure ? ' ' + v.firstFailure : ''}`;
  } catch (e) {
    return `0/${bodies.length} ${(e as Error).message}`;
  }
}

const ROW_NAME = (api: Api, conn: Conn) => `${api === 'rest' ? 'REST /api/v1/certificates' : 'EST simpleenroll'} (${conn})`;

export async function enrollWorkload(): Promise<WorkloadReport> {
  const seconds = SECONDS();
  const runs = RUNS();
  const concs = CONCURRENCY();
  const warm = Math.min(3, Math.max(1, seconds / 5));
  const conns: Conn[] = (process.env.BENCH_ENROLL_CONNS ?? 'keep-alive,new')
    .split(',')
    .map((c) => (c.trim() === 'new' ? 'new TLS conn/request' : 'keep-alive'));
  const report = newReport('enroll', {
    seconds,
    runs,
    concurrency: concs,
    warmupSeconds: warm,
    csrPool: 2000,
    csrKey: 'ecdsa-p256',
    connections: conns,
    loadGenerator: 'node:https Agent (keep-alive, or no keep-alive and no TLS session cache), closed loop, in the runner process; REST and EST runs alternate',
  });
  const { csrs } = await csrPool(2000);
  const t = await setup('signet');
  const rows: Row[] = [];
  try {
    report.commands.push(
      `CSR pool: 2000 × openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=hostN.bench.test -addext subjectAltName=DNS:hostN.bench.test (cached in bench/.cache/csrs-2000.json)`,
      t.s.command,
      'signet ca list --json; GET http://127.0.0.1:<port>/pki/<rootId>.crt and /pki/<intermediateId>.crt (the root is the TLS trust anchor)',
      'signet enroll create --profile server --uses 1000000 --expires-in never --json',
      `[REST] POST https://127.0.0.1:<SIGNET_TLS_PORT>${REST_PATH} {"csr": <PEM>, "profile": "server"} with Authorization: Bearer <data>/admin-token → 201 JSON`,
      `[EST] POST https://127.0.0.1:<SIGNET_TLS_PORT>${EST_PATH} Content-Type: application/pkcs10, body base64(DER CSR), Authorization: Basic base64(<id>:<secret>) → 200 base64 certs-only CMS`,
      'verify: REST .certificate and EST openssl pkcs7 -inform DER -print_certs (first cert) → openssl verify -x509_strict -purpose sslserver -CAfile root.pem -untrusted int.pem',
    );
    for (const conn of conns) {
      for (const conc of concs) {
        const apis = (['rest', 'est'] as Api[]).filter((a) => selected(ROW_NAME(a, conn)));
        if (!apis.length) continue;
        const cur = new Map<Api, Row>();
        for (const api of apis) {
          const row: Row = { api, conn, conc, runs: [], verified: '' };
          cur.set(api, row);
          rows.push(row);
          await httpLoad(loadOptions(t, api, conn, conc, csrs, warm));
        }
        // Paired, alternating: REST, EST, REST, EST, … (the order flips every run).
        for (let r = 0; r < runs; r++) {
          const order = r % 2 === 0 ? apis : [...apis].reverse();
          for (const api of order) {
            const row = cur.get(api)!;
            const res = await httpLoad({ ...loadOptions(t, api, conn, conc, csrs, seconds), keepBodies: r === 0 ? 20 : 0 });
            if (res.errors) process.stderr.write(`enroll: ${api} ${conn} c${conc}: ${res.errors} errors, first: ${res.firstError}\n`);
            if (r === 0)
              row.verified = await verify(
                t,
                api,
                res.bodies.map((b) => b.body),
              );
            row.runs.push(res);
            process.stderr.write(
              `enroll: ${ROW_NAME(api, conn)} c${conc} run ${r + 1}: ${fmt(res.rps)}/s p50 ${res.p50ms.toFixed(1)} p99 ${res.p99ms.toFixed(1)} ms\n`,
            );
          }
        }
      }
    }
  } finally {
    await t.s.stop();
    removeTemp(t.dir);
  }

  const med = (r: Row) => median(r.runs.map((x) => x.rps));
  report.tables.push({
    title: `Issuance over TLS, REST vs EST simpleenroll (certificates/s; median of ${runs} alternating runs of ${seconds} s each, after a ${warm} s warm-up; latency ms = medians of per-run p50/p99)`,
    headers: ['target', 'conc', 'runs', 'median/s', 'min/s', 'max/s', 'p50 ms', 'p99 ms', 'EST/REST', 'errors', 'openssl verify (sample)'],
    rows: rows.map((r) => {
      const rps = r.runs.map((x) => x.rps);
      const rest = rows.find((x) => x.api === 'rest' && x.conn === r.conn && x.conc === r.conc);
      return [
        ROW_NAME(r.api, r.conn),
        r.conc,
        r.runs.length,
        fmt(median(rps)),
        fmt(min(rps)),
        fmt(max(rps)),
        median(r.runs.map((x) => x.p50ms)).toFixed(2),
        median(r.runs.map((x) => x.p99ms)).toFixed(2),
        r.api === 'est' && rest ? (med(r) / med(rest)).toFixed(2) : '',
        r.runs.reduce((a, x) => a + x.errors, 0),
        r.verified,
      ];
    }),
  });
  for (const r of rows.filter((x) => x.api === 'est')) {
    const rest = rows.find((x) => x.api === 'rest' && x.conn === r.conn && x.conc === r.conc);
    if (!rest) continue;
    // Per pair of adjacent runs as well: the ratio drift cannot move.
    const paired = r.runs.map((x, i) => x.rps / (rest.runs[i]?.rps ?? NaN));
    const ratio = med(r) / med(rest);
    report.targets.push({
      name: `enroll ${r.conn} c${r.conc}: EST simpleenroll within 30 % of REST issuance over TLS`,
      target: '≥ 0.70',
      value: `${ratio.toFixed(2)} (${fmt(med(r))}/s vs ${fmt(med(rest))}/s; per pair ${paired.map((p) => p.toFixed(2)).join(', ')})`,
      pass: ratio >= 0.7,
    });
  }
  report.notes.push(
    'One Signet (SIGNET_TLS=on, SQLite WAL, synchronous=FULL, workers as BENCH_SIGNET_WORKERS) serves both; REST and EST runs alternate (REST first on odd runs, EST first on even ones).',
    'Both store the certificate and its audit event before answering (group commit); EST also spends one use of the enrollment credential in that same commit (the row re-read under the write lock, a conditional UPDATE of the spent count, an enrollment.used audit event per use).',
    '"new TLS conn/request": an https.Agent without keep-alive and with maxCachedSessions 0, so each request pays a TCP connect and a full TLS 1.3 handshake (no resumption).',
    'The load generator runs in the benchmark process on the same 2 cores as the server.',
  );
  report.data = {
    rows: rows.map((r) => ({
      api: r.api,
      conn: r.conn,
      conc: r.conc,
      verified: r.verified,
      runs: r.runs.map((x) => ({ rps: x.rps, p50ms: x.p50ms, p99ms: x.p99ms, ok: x.ok, errors: x.errors, seconds: x.seconds })),
    })),
  };
  if (PROFILE()) report.profile = await profileEnroll(csrs, seconds);
  return report;
}

const FOCUS = [
  'simpleenroll',
  'enrollmentOf',
  'authenticateEnrollment',
  'credentialSpends',
  'settle',
  'enrollmentIntact',
  'enrollmentSecretHash',
  'enrollmentGrantMac',
  'unusable',
  'byHash',
  'spend',
  'appendAudit',
  'transaction',
  'decodeBase64Body',
  'certsOnly',
  'certsOnlyCms',
  'sendBase64',
  'auditEstRefusals',
  'issue',
  'sign',
  'store',
  'commit',
  'parseCsr',
  'requireAuth',
  'authenticate',
  'jsonParser',
  'onStreamRead',
  'processTicksAndRejections',
  'TLSSocket',
];

/** One Signet process (SIGNET_WORKERS=1) under node --cpu-prof: REST then EST, each on a server of its own. */
async function profileEnroll(csrs: string[], seconds: number): Promise<string> {
  const conc = Math.max(...CONCURRENCY());
  const out: string[] = [];
  for (const api of ['rest', 'est'] as Api[]) {
    const prof = tempDir(`enroll-prof-${api}`);
    const t = await setup(`profile-${api}`, { SIGNET_WORKERS: '1' }, join(prof, 'cpu'));
    let res: LoadResult;
    try {
      res = await httpLoad(loadOptions(t, api, 'keep-alive', conc, csrs, seconds));
    } finally {
      await t.s.stop();
      removeTemp(t.dir);
    }
    const file = t.s.profiles()[0];
    out.push(
      file
        ? `CPU profile: ${ROW_NAME(api, 'keep-alive')} at c${conc} for ${seconds} s, one process under node --cpu-prof (${fmt(res.rps)}/s while profiled)\n${summariseProfile(file, FOCUS).text}`
        : `CPU profile (${api}): no .cpuprofile was written`,
    );
    removeTemp(prof);
  }
  return out.join('\n\n');
}
