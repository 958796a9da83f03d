/**
 * ocsp: `openssl ocsp -reqout`-built requests (no nonce, SHA-1 CertID, one certificate each)
 * POSTed and sent as GET with wrk at 16 and 64 connections, Signet against the `openssl ocsp`
 * responder (-multi 2) and `cfssl ocspserve` (pre-signed responses from its certdb).
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { csrPool, makePeerCa, opensslCaDir, type PeerCa } from '../lib/pki.js';
import { summariseProfile } from '../lib/profile.js';
import { api, signetCas, startSignet } from '../lib/signet.js';
import { runWrk, wrkScript, type WrkResult } from '../lib/wrk.js';
import {
  cmdline,
  CONCURRENCY,
  daemon,
  ensureTools,
  fmt,
  freePort,
  max,
  median,
  min,
  must,
  newReport,
  pool,
  PROFILE,
  ratio,
  removeTemp,
  run,
  RUNS,
  SECONDS,
  selected,
  sleep,
  tcpOpen,
  tempDir,
  waitFor,
  envInt,
  type WorkloadReport,
} from '../lib/util.js';
import { startCfssl } from './issue.js';

interface Leaf {
  file: string;
  revoked: boolean;
}
interface OcspTarget {
  name: string;
  /** Drive with HTTP/1.0 requests (see wrkScript). */
  http10?: boolean;
  /** GET is not usable with this peer (reason). */
  noGet?: string;
  /** Fresh responder before each load run (sets port). */
  restart?: () => Promise<void>;
  port: number;
  postPath: string;
  getPrefix: string;
  leaves: Leaf[];
  issuerFile: string;
  /** -CAfile and -verify_other for openssl ocsp -respin. */
  caFile: string;
  otherFile?: string;
  commands: string[];
  stop(): Promise<void>;
  dir: string;
}

/**
 * One HTTP/1.0 request on its own connection, read until the server closes it. Every responder
 * here serves this (OpenSSL 3.0's responder stalls on HTTP/1.1 clients, see lib/wrk.ts).
 */
function oneShot(port: number, method: 'GET' | 'POST', path: string, body?: Buffer): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    sock.setTimeout(10_000, () => sock.destroy(new Error(`no answer from 127.0.0.1:${port} in 10 s`)));
    sock.once('connect', () => {
      const head = `${method} ${path} HTTP/1.0\r\nHost: 127.0.0.1\r\n${body ? `Content-Type: application/ocsp-request\r\nContent-Length: ${body.length}\r\n` : ''}\r\n`;
      sock.write(body ? Buffer.concat([Buffer.from(head), body]) : Buffer.from(head));
    });
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.once('error', reject);
    sock.once('close', () => {
      const all = Buffer.concat(chunks);
      const sep = all.indexOf('\r\n\r\n');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(all.subarray(0, Math.max(sep, 0)).toString('latin1'));
      if (sep < 0 || !m) {
        reject(new Error(`malformed HTTP answer from 127.0.0.1:${port}`));
        return;
      }
      resolve({ status: Number(m[1]), body: all.subarray(sep + 4) });
    });
  });
}

async function buildRequests(t: OcspTarget): Promise<Buffer[]> {
  const dir = join(t.dir, 'req');
  mkdirSync(dir, { recursive: true });
  return pool(t.leaves, 4, async (leaf, i) => {
    const out = join(dir, `${i}.der`);
    await must('openssl', ['ocsp', '-issuer', t.issuerFile, '-cert', leaf.file, '-no_nonce', '-reqout', out]);
    return readFileSync(out);
  });
}

/** Fetches a sample of responses over POST and GET and checks them with `openssl ocsp -respin`. */
async function verifySample(t: OcspTarget, reqs: Buffer[], n = 20): Promise<string> {
  let ok = 0;
  let first: string | undefined;
  const idx = Array.from({ length: n }, (_, k) => Math.floor((k * reqs.length) / n));
  await pool(idx, 4, async (i, k) => {
    const get = k % 2 === 1 && !t.noGet;
    const r = get
      ? await oneShot(t.port, 'GET', `${t.getPrefix}${encodeURIComponent(reqs[i]!.toString('base64'))}`)
      : await oneShot(t.port, 'POST', t.postPath, reqs[i]!);
    const der = r.body;
    const f = join(t.dir, `resp-${i}.der`);
    writeFileSync(f, der);
    const leaf = t.leaves[i]!;
    const v = await run('openssl', [
      'ocsp',
      '-respin',
      f,
      '-issuer',
      t.issuerFile,
      '-cert',
      leaf.file,
      '-CAfile',
      t.caFile,
      ...(t.otherFile ? ['-verify_other', t.otherFile] : []),
      '-no_nonce',
    ]);
    const text = v.stdout + v.stderr;
    const want = leaf.revoked ? ': revoked' : ': good';
    if (r.status === 200 && /Response verify OK/.test(text) && text.includes(want)) ok++;
    else first ??= `HTTP ${r.status} ${get ? 'GET' : 'POST'}: ${text.trim().slice(0, 300)}`;
  });
  return `${ok}/${n}${first ? ' ' + first : ''}`;
}

async function signetOcsp(n: number, cpuProf = false): Promise<OcspTarget & { profiles(): string[]; stopServer(): Promise<void> }> {
  const dir = tempDir('ocsp-signet');
  const s = await startSignet(join(dir, 'data'), { SIGNET_INTERMEDIATE_KEY: 'ecdsa-p256' }, cpuProf ? { cpuProfDir: join(dir, 'prof') } : {});
  const { csrs } = await csrPool(2000);
  const cas = await signetCas(s);
  const rootFile = join(dir, 'root.pem');
  const intFile = join(dir, 'int.pem');
  writeFileSync(rootFile, cas.rootPem);
  writeFileSync(intFile, cas.intermediatePem);
  const leaves = await pool(csrs.slice(0, n), 8, async (csr, i) => {
    const r = await api<{ serial: string; certificate: string }>(s, 'POST', '/api/v1/certificates', { csr, profile: 'server' });
    if (r.status !== 201) throw new Error(`issue failed: ${JSON.stringify(r.json).slice(0, 300)}`);
    const file = join(dir, `leaf-${i}.pem`);
    writeFileSync(file, r.json.certificate);
    const revoked = i % 10 === 9;
    if (revoked) {
      const rv = await api(s, 'POST', `/api/v1/certificates/${r.json.serial}/revoke`, { reason: 'keyCompromise' });
      if (rv.status !== 200) throw new Error(`revoke failed: ${JSON.stringify(rv.json).slice(0, 300)}`);
    }
    return { file, revoked };
  });
  return {
    name: 'signet',
    port: s.port,
    postPath: '/ocsp',
    getPrefix: '/ocsp/',
    leaves,
    issuerFile: intFile,
    caFile: rootFile,
    otherFile: intFile,
    dir,
    commands: [
      s.command,
      `${n} certificates issued over the API, every 10th revoked (keyCompromise); responder: Signet's delegated responder (pre-signed cache)`,
    ],
    stop: async () => {
      await s.stop();
      removeTemp(dir);
    },
    stopServer: () => s.stop(),
    profiles: () => s.profiles(),
  };
}

async function opensslOcsp(n: number): Promise<OcspTarget> {
  const dir = tempDir('ocsp-openssl');
  const ca: PeerCa = await makePeerCa(join(dir, 'ca'), 'ecdsa-p256');
  const cnf = opensslCaDir(join(dir, 'db'), ca, { days: 90 });
  const { csrs } = await csrPool(2000);
  const leaves: Leaf[] = [];
  for (let i = 0; i < n; i++) {
    const csrFile = join(dir, `leaf-${i}.csr`);
    const file = join(dir, `leaf-${i}.pem`);
    writeFileSync(csrFile, csrs[i]!);
    await must('openssl', ['ca', '-batch', '-config', cnf, '-in', csrFile, '-out', file, '-notext']);
    const revoked = i % 10 === 9;
    if (revoked) await must('openssl', ['ca', '-config', cnf, '-revoke', file, '-crl_reason', 'keyCompromise']);
    leaves.push({ file, revoked });
  }
  const argsFor = (port: number) => [
    'ocsp',
    '-index',
    join(dir, 'db', 'index.txt'),
    '-port',
    String(port),
    '-rsigner',
    ca.responderCert,
    '-rkey',
    ca.responderKey,
    '-CA',
    ca.cert,
    '-multi',
    '2',
    '-nmin',
    '240',
    '-ignore_err',
  ];
  const start = async () => {
    const port = await freePort();
    const d = daemon('openssl', argsFor(port), { cwd: dir, ownGroup: true });
    // Not a TCP probe: a worker that accepts a connection closed without a request spins on it for good.
    await waitFor(
      'openssl ocsp responder',
      async () => {
        if (d.proc.exitCode !== null) throw new Error(d.log());
        return d.log().includes('ACCEPT');
      },
      30_000,
    );
    await sleep(200);
    return { port, d };
  };
  let cur = await start();
  const t: OcspTarget = {
    name: 'openssl ocsp -multi 2',
    port: cur.port,
    http10: true,
    postPath: '/',
    getPrefix: '/',
    leaves,
    issuerFile: ca.cert,
    caFile: ca.cert,
    dir,
    commands: [
      cmdline('openssl', argsFor(0)).replace(' -port 0 ', ' -port <port> '),
      `${n} certificates from openssl ca (index.txt), every 10th revoked with openssl ca -revoke -crl_reason keyCompromise; delegated ECDSA P-256 responder certificate`,
    ],
    restart: async () => {
      await cur.d.stop();
      cur = await start();
      t.port = cur.port;
    },
    stop: async () => {
      await cur.d.stop();
      removeTemp(dir);
    },
  };
  return t;
}

async function cfsslOcsp(n: number): Promise<OcspTarget> {
  const dir = tempDir('ocsp-cfssl');
  const ca = await makePeerCa(join(dir, 'ca'), 'ecdsa-p256');
  const c = await startCfssl(dir, ca, true);
  const { csrs } = await csrPool(2000);
  const leaves = await pool(csrs.slice(0, n), 8, async (csr, i) => {
    const r = await fetch(`http://127.0.0.1:${c.port}/api/v1/cfssl/sign`, { method: 'POST', body: JSON.stringify({ certificate_request: csr }) });
    const j = (await r.json()) as { result?: { certificate?: string } };
    if (!j.result?.certificate) throw new Error(`cfssl sign failed: ${JSON.stringify(j).slice(0, 300)}`);
    const file = join(dir, `leaf-${i}.pem`);
    writeFileSync(file, j.result.certificate);
    return { file, revoked: false };
  });
  await c.d.stop();
  const refresh = [
    'ocsprefresh',
    '-db-config',
    c.dbConfig!,
    '-ca',
    ca.cert,
    '-responder',
    ca.responderCert,
    '-responder-key',
    ca.responderKey,
    '-loglevel',
    '5',
  ];
  await must('cfssl', refresh, { cwd: dir });
  const dump = await must('cfssl', ['ocspdump', '-db-config', c.dbConfig!, '-loglevel', '5'], { cwd: dir });
  const responses = join(dir, 'responses');
  writeFileSync(responses, dump.stdout);
  const port = await freePort();
  const args = ['ocspserve', '-address', '127.0.0.1', '-port', String(port), '-responses', responses, '-loglevel', '5'];
  const d = daemon('cfssl', args, { cwd: dir });
  await waitFor(
    'cfssl ocspserve',
    async () => {
      if (d.proc.exitCode !== null) throw new Error(d.log());
      return tcpOpen(port);
    },
    30_000,
  );
  return {
    name: 'cfssl ocspserve',
    port,
    noGet:
      'cfssl 1.2.0 (2016) ocspserve: GET decodes the path with url.QueryUnescape, turning "+" of base64 into a space; requests whose base64 holds "+" get 400',
    postPath: '/',
    getPrefix: '/',
    leaves,
    issuerFile: ca.cert,
    caFile: ca.cert,
    dir,
    commands: [
      c.command + '   # to issue the certificates into the certdb',
      cmdline('cfssl', refresh),
      cmdline('cfssl', ['ocspdump', '-db-config', c.dbConfig!]) + ' > responses',
      cmdline('cfssl', args),
      `${n} certificates issued by cfssl serve into its certdb (none revoked: statuses do not change the cost of serving a pre-signed response)`,
    ],
    stop: async () => {
      await d.stop();
      removeTemp(dir);
    },
  };
}

interface Row {
  target: string;
  method: string;
  conc: number;
  runs: WrkResult[];
  verified: string;
}

export async function ocspWorkload(): Promise<WorkloadReport> {
  await ensureTools({ wrk: 'wrk', cfssl: 'golang-cfssl', openssl: 'openssl' });
  const seconds = SECONDS();
  const runs = RUNS();
  const concs = CONCURRENCY();
  const n = envInt('BENCH_OCSP_CERTS', 200);
  const threads = envInt('BENCH_WRK_THREADS', 1);
  const warm = Math.min(3, Math.max(1, seconds / 5));
  const report = newReport('ocsp', {
    seconds,
    runs,
    connections: concs,
    certificates: n,
    wrkThreads: threads,
    warmupSeconds: warm,
    request: 'openssl ocsp -issuer <ca> -cert <leaf> -no_nonce -reqout (SHA-1 CertID, 1 cert)',
  });
  const rows: Row[] = [];
  const factories = [
    { name: 'signet', make: () => signetOcsp(n) },
    { name: 'openssl ocsp -multi 2', make: () => opensslOcsp(n) },
    { name: 'cfssl ocspserve', make: () => cfsslOcsp(n) },
  ];
  for (const f of factories) {
    if (!selected(f.name)) continue;
    process.stderr.write(`ocsp: ${f.name}\n`);
    const t = await f.make();
    try {
      report.commands.push(...t.commands.map((c) => `[${t.name}] ${c}`));
      const reqs = await buildRequests(t);
      report.commands.push(
        `[${t.name}] ${cmdline('openssl', ['ocsp', '-issuer', t.issuerFile, '-cert', '<leaf.pem>', '-no_nonce', '-reqout', '<i>.der'])}   # × ${reqs.length}`,
      );
      // Warm the responder over every request once, then check a sample with openssl.
      for (const r of reqs) await oneShot(t.port, 'POST', t.postPath, r);
      const verified = await verifySample(t, reqs);
      const post = wrkScript(t.dir, 'post', { method: 'POST', contentType: 'application/ocsp-request', bodies: reqs, path: t.postPath, http10: t.http10 });
      const get = wrkScript(t.dir, 'get', { method: 'GET', paths: reqs.map((r) => t.getPrefix + encodeURIComponent(r.toString('base64'))), http10: t.http10 });
      if (t.noGet) report.notes.push(`${t.name}: GET not measured: ${t.noGet}`);
      if (t.http10)
        report.notes.push(
          `${t.name}: driven with HTTP/1.0 requests, one connection per request: OpenSSL 3.0's responder stops serving HTTP/1.1 keep-alive clients (its worker spins on the closed socket), so wrk's default requests get no answers; and a worker whose client closed a connection mid-request (as wrk does at its deadline) spins on the closed socket for good, so the responder is restarted before every run`,
        );
      for (const [method, script] of (t.noGet
        ? [['POST', post]]
        : [
            ['POST', post],
            ['GET', get],
          ]) as ['POST' | 'GET', string][]) {
        for (const conc of concs) {
          const url = () => `http://127.0.0.1:${t.port}${method === 'POST' ? t.postPath : '/'}`;
          await t.restart?.();
          await runWrk(url(), script, conc, warm, threads);
          const rs: WrkResult[] = [];
          for (let r = 0; r < runs; r++) {
            await t.restart?.();
            const res = await runWrk(url(), script, conc, seconds, threads);
            if (r === 0 && conc === concs[0])
              report.commands.push(`[${t.name}] ${res.command.replace(script, `<${method.toLowerCase()}.lua: cycles through the ${reqs.length} requests>`)}`);
            if (res.errors) process.stderr.write(`ocsp: ${t.name} ${method} c${conc}: errors ${JSON.stringify(res.detail)}\n`);
            process.stderr.write(`ocsp: ${t.name} ${method} c${conc} run ${r + 1}: ${fmt(res.rps)}/s p99 ${res.p99ms.toFixed(2)} ms\n`);
            rs.push(res);
          }
          rows.push({ target: t.name, method, conc, runs: rs, verified });
        }
      }
    } finally {
      await t.stop();
    }
  }
  const med = (r: Row) => median(r.runs.map((x) => x.rps));
  const p99 = (r: Row) => median(r.runs.map((x) => x.p99ms));
  report.tables.push({
    title: `OCSP responses/s (median of ${runs} wrk runs of ${seconds} s; ${threads} wrk thread(s); ${n} distinct requests cycled) and latency (ms; medians of per-run wrk percentiles)`,
    headers: ['target', 'method', 'conns', 'runs', 'median/s', 'min/s', 'max/s', 'p50 ms', 'p99 ms', 'errors', 'openssl ocsp -respin (sample)'],
    rows: rows.map((r) => [
      r.target,
      r.method,
      r.conc,
      r.runs.length,
      fmt(med(r)),
      fmt(min(r.runs.map((x) => x.rps))),
      fmt(max(r.runs.map((x) => x.rps))),
      median(r.runs.map((x) => x.p50ms)).toFixed(2),
      p99(r).toFixed(2),
      r.runs.reduce((a, x) => a + x.errors, 0),
      r.verified,
    ]),
  });
  const ratioRows: (string | number)[][] = [];
  for (const s of rows.filter((r) => r.target === 'signet')) {
    for (const p of rows.filter((r) => r.target !== 'signet' && r.method === s.method && r.conc === s.conc)) {
      ratioRows.push([`signet ${s.method}`, s.conc, p.target, ratio(med(s), med(p)), `${p99(s).toFixed(2)} vs ${p99(p).toFixed(2)}`]);
    }
  }
  report.tables.push({ title: 'Signet ÷ peer (responses/s; p99 ms Signet vs peer)', headers: ['signet', 'conns', 'peer', 'ratio', 'p99 ms'], rows: ratioRows });
  for (const s of rows.filter((r) => r.target === 'signet')) {
    const o = rows.find((r) => r.target === 'openssl ocsp -multi 2' && r.method === s.method && r.conc === s.conc);
    if (o)
      report.targets.push({
        name: `ocsp ${s.method} c${s.conc}: Signet ≥ 3× openssl responder`,
        target: '≥ 3.00×',
        value: `${ratio(med(s), med(o))} (${fmt(med(s))}/s vs ${fmt(med(o))}/s)`,
        pass: med(s) >= 3 * med(o),
      });
    report.targets.push({ name: `ocsp ${s.method} c${s.conc}: Signet p99 ≤ 5 ms`, target: '≤ 5.00 ms', value: `${p99(s).toFixed(2)} ms`, pass: p99(s) <= 5 });
  }
  report.notes.push(
    'wrk runs on the same 2 cores as the responder; the openssl responder signs every response (-multi 2 = two worker processes), Signet and cfssl serve pre-signed responses.',
    'Requests carry no nonce (as browsers and TLS stapling send them); Signet answers single-certificate requests from its cache.',
  );
  report.data = {
    rows: rows.map((r) => ({
      target: r.target,
      method: r.method,
      conc: r.conc,
      verified: r.verified,
      runs: r.runs.map((x) => ({ rps: x.rps, p50ms: x.p50ms, p99ms: x.p99ms, errors: x.errors })),
    })),
  };
  if (PROFILE() && selected('signet')) report.profile = await profileOcsp(n, seconds, Math.max(...concs), threads);
  return report;
}

async function profileOcsp(n: number, seconds: number, conc: number, threads: number): Promise<string> {
  const t = await signetOcsp(n, true);
  try {
    const reqs = await buildRequests(t);
    for (const r of reqs) await (await fetch(`http://127.0.0.1:${t.port}/ocsp`, { method: 'POST', body: new Uint8Array(r) })).arrayBuffer();
    const script = wrkScript(t.dir, 'post', { method: 'POST', contentType: 'application/ocsp-request', bodies: reqs, path: '/ocsp' });
    const res = await runWrk(`http://127.0.0.1:${t.port}/ocsp`, script, conc, seconds, threads);
    await t.stopServer();
    const prof = t.profiles()[0];
    if (!prof) return 'profile: no .cpuprofile was written';
    const sum = summariseProfile(prof, [
      'respond',
      'parseOcspRequest',
      'send',
      'readBody',
      'writeHead',
      'end',
      'parserOnHeadersComplete',
      'parserOnIncoming',
      'emit',
      'createHash',
      'run',
    ]);
    return `CPU profile: Signet OCSP POST at c${conc} for ${seconds} s under node --cpu-prof (${fmt(res.rps)}/s while profiled)\n${sum.text}`;
  } finally {
    await t.stop();
  }
}
