/**
 * issue: ECDSA P-256 CSRs → leaf certificates over HTTP, Signet (storage + audit on, SQLite WAL)
 * against `cfssl serve` with and without its SQLite certdb (WAL) and `openssl ca` per certificate.
 */
import { readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { httpLoad, type LoadResult } from '../lib/load.js';
import { csrPool, makePeerCa, opensslCaDir, verifyLeaves, type KeyType, type PeerCa } from '../lib/pki.js';
import { summariseProfile } from '../lib/profile.js';
import { signetCas, startSignet } from '../lib/signet.js';
import {
  BENCH_DIR,
  cmdline,
  CONCURRENCY,
  daemon,
  ensureTools,
  fmt,
  freePort,
  max,
  median,
  min,
  newReport,
  percentile,
  PROFILE,
  ratio,
  removeTemp,
  run,
  ROOT,
  RUNS,
  SECONDS,
  selected,
  tcpOpen,
  tempDir,
  waitFor,
  type Daemon,
  type WorkloadReport,
} from '../lib/util.js';

interface Row {
  target: string;
  keyType: KeyType;
  conc: string;
  runs: LoadResult[];
  verified: string;
}

interface HttpTarget {
  name: string;
  keyType: KeyType;
  port: number;
  path: string;
  headers: Record<string, string>;
  bodies: Buffer[];
  okStatus: number[];
  commands: string[];
  /** Verifies kept response bodies with openssl; returns "ok/total". */
  verify(bodies: Buffer[]): Promise<string>;
  stop(): Promise<void>;
  pid: number;
}

const CFSSL_SCHEMA = `CREATE TABLE certificates (
  serial_number            blob NOT NULL,
  authority_key_identifier blob NOT NULL,
  ca_label                 blob,
  status                   blob NOT NULL,
  reason                   int,
  expiry                   timestamp,
  revoked_at               timestamp,
  pem                      blob NOT NULL,
  PRIMARY KEY(serial_number, authority_key_identifier)
);
CREATE TABLE ocsp_responses (
  serial_number            blob NOT NULL,
  authority_key_identifier blob NOT NULL,
  body                     blob NOT NULL,
  expiry                   timestamp,
  PRIMARY KEY(serial_number, authority_key_identifier)
);`;

/** cfssl's certdb (the schema of the packaged cfssl's certdb/sqlite migration), in WAL mode. */
export function makeCfsslDb(file: string): string {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.exec(CFSSL_SCHEMA);
  db.close();
  const cfg = file.replace(/\.db$/, '') + '-db.json';
  writeFileSync(cfg, JSON.stringify({ driver: 'sqlite3', data_source: file }));
  return cfg;
}

export function cfsslConfig(dir: string, keyType: KeyType): string {
  const usages = ['digital signature', 'server auth', ...(keyType === 'rsa-2048' ? ['key encipherment'] : [])];
  const f = join(dir, 'cfssl-config.json');
  writeFileSync(f, JSON.stringify({ signing: { default: { expiry: '2160h', usages } } }));
  return f;
}

export async function startCfssl(dir: string, ca: PeerCa, withDb: boolean): Promise<{ port: number; d: Daemon; command: string; dbConfig?: string }> {
  const port = await freePort();
  const cfg = cfsslConfig(dir, ca.keyType);
  const dbConfig = withDb ? makeCfsslDb(join(dir, 'certdb.db')) : undefined;
  const args = [
    'serve',
    '-address',
    '127.0.0.1',
    '-port',
    String(port),
    '-ca',
    ca.cert,
    '-ca-key',
    ca.key,
    '-config',
    cfg,
    '-loglevel',
    '5',
    ...(dbConfig ? ['-db-config', dbConfig] : []),
  ];
  const d = daemon('cfssl', args, { cwd: dir });
  await waitFor(
    'cfssl serve',
    async () => {
      if (d.proc.exitCode !== null) throw new Error(d.log());
      return tcpOpen(port);
    },
    30_000,
  );
  return { port, d, dbConfig, command: cmdline('cfssl', args) };
}

function pemOf(body: Buffer, pick: (j: Record<string, unknown>) => unknown): string {
  const j = JSON.parse(body.toString()) as Record<string, unknown>;
  const v = pick(j);
  if (typeof v !== 'string') throw new Error(`no certificate in ${body.toString().slice(0, 200)}`);
  return v;
}

/**
 * A throw-away SoftHSM2 token in `dir` (its own SOFTHSM2_CONF and token directory) and the
 * settings that put Signet's CA keys in it: the HSM-backed rows.
 */
async function softHsmEnv(dir: string): Promise<{ env: Record<string, string>; command: string }> {
  const tokens = join(dir, 'tokens');
  mkdirSync(tokens, { recursive: true });
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  const args = ['--init-token', '--free', '--label', 'signet-bench', '--so-pin', 'bench-so-pin', '--pin', 'bench-pin'];
  await run('softhsm2-util', args, { env: { ...process.env, SOFTHSM2_CONF: conf } });
  return {
    env: {
      SOFTHSM2_CONF: conf,
      SIGNET_KEY_STORE: 'pkcs11',
      SIGNET_PKCS11_MODULE: '/usr/lib/softhsm/libsofthsm2.so',
      SIGNET_PKCS11_TOKEN: 'signet-bench',
      SIGNET_PKCS11_PIN: 'bench-pin',
    },
    command: `SOFTHSM2_CONF=<dir>/softhsm2.conf softhsm2-util ${args.join(' ')}`,
  };
}

async function signetTarget(keyType: KeyType, csrs: string[], opts: { pkcs11?: boolean } = {}): Promise<HttpTarget> {
  const dir = tempDir(`issue-signet-${opts.pkcs11 ? 'pkcs11-' : ''}${keyType}`);
  const hsm = opts.pkcs11 ? await softHsmEnv(dir) : undefined;
  const s = await startSignet(join(dir, 'data'), { SIGNET_INTERMEDIATE_KEY: keyType, ...hsm?.env });
  const cas = await signetCas(s);
  const rootFile = join(dir, 'root.pem');
  const intFile = join(dir, 'int.pem');
  writeFileSync(rootFile, cas.rootPem);
  writeFileSync(intFile, cas.intermediatePem);
  return {
    name: `signet ${opts.pkcs11 ? 'pkcs11 ' : ''}${keyType}`,
    keyType,
    port: s.port,
    path: '/api/v1/certificates',
    pid: s.pid,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${s.token}` },
    bodies: csrs.map((csr) => Buffer.from(JSON.stringify({ csr, profile: 'server' }))),
    okStatus: [201],
    commands: [
      ...(hsm ? [hsm.command] : []),
      s.command,
      `POST /api/v1/certificates {"csr": <PEM>, "profile": "server"} with Authorization: Bearer <data>/admin-token`,
    ],
    verify: async (bodies) => {
      const v = await verifyLeaves(
        bodies.map((b) => pemOf(b, (j) => j.certificate)),
        rootFile,
        intFile,
        dir,
      );
      return `${v.ok}/${v.total}${v.firstFailure ? ' ' + v.firstFailure : ''}`;
    },
    stop: async () => {
      await s.stop();
      removeTemp(dir);
    },
  };
}

async function cfsslTarget(keyType: KeyType, withDb: boolean, csrs: string[]): Promise<HttpTarget> {
  const dir = tempDir(`issue-cfssl-${keyType}`);
  const ca = await makePeerCa(join(dir, 'ca'), keyType);
  const c = await startCfssl(dir, ca, withDb);
  return {
    name: `cfssl ${withDb ? 'certdb' : 'no-db'} ${keyType}`,
    keyType,
    port: c.port,
    path: '/api/v1/cfssl/sign',
    pid: c.d.proc.pid!,
    headers: { 'content-type': 'application/json' },
    bodies: csrs.map((csr) => Buffer.from(JSON.stringify({ certificate_request: csr }))),
    okStatus: [200],
    commands: [
      c.command,
      ...(withDb
        ? [
            `certdb: SQLite file with cfssl's certdb schema (certificates, ocsp_responses), PRAGMA journal_mode=WAL; ${c.dbConfig} = {"driver":"sqlite3","data_source":…}`,
          ]
        : []),
      'POST /api/v1/cfssl/sign {"certificate_request": <PEM>}',
    ],
    verify: async (bodies) => {
      const v = await verifyLeaves(
        bodies.map((b) => pemOf(b, (j) => (j.result as { certificate?: string } | undefined)?.certificate)),
        ca.cert,
        undefined,
        dir,
      );
      let stored = '';
      if (withDb) {
        const db = new Database(join(dir, 'certdb.db'), { readonly: true });
        stored = `; certdb rows ${(db.prepare('SELECT count(*) AS n FROM certificates').get() as { n: number }).n}`;
        db.close();
      }
      return `${v.ok}/${v.total}${v.firstFailure ? ' ' + v.firstFailure : ''}${stored}`;
    },
    stop: async () => {
      await c.d.stop();
      removeTemp(dir);
    },
  };
}

/** `openssl ca` per certificate: `procs` workers, each with its own CA directory (index.txt is not safe to share). */
async function opensslCaRun(
  keyType: KeyType,
  procs: number,
  seconds: number,
  csrs: string[],
  report: WorkloadReport,
  verify: boolean,
): Promise<{ result: LoadResult; verified: string }> {
  const dir = tempDir(`issue-openssl-${keyType}`);
  try {
    const ca = await makePeerCa(join(dir, 'ca'), keyType);
    const csrDir = join(dir, 'csrs');
    mkdirSync(csrDir);
    const files = csrs.slice(0, 500).map((c, i) => {
      const f = join(csrDir, `${i}.csr`);
      writeFileSync(f, c);
      return f;
    });
    const cnfs = Array.from({ length: procs }, (_, w) => opensslCaDir(join(dir, `w${w}`), ca));
    const lat: number[] = [];
    let ok = 0;
    let errors = 0;
    let seq = 0;
    let firstError: string | undefined;
    const start = performance.now();
    const deadline = start + seconds * 1000;
    let lastEnd = start;
    await Promise.all(
      cnfs.map(async (cnf, w) => {
        while (performance.now() < deadline) {
          const i = seq++;
          const out = join(dir, `w${w}`, 'out.pem');
          const r = await run('openssl', ['ca', '-batch', '-config', cnf, '-in', files[i % files.length]!, '-out', out, '-notext'], { timeoutMs: 30_000 });
          lastEnd = performance.now();
          if (r.code === 0) {
            ok++;
            lat.push(r.ms);
          } else {
            errors++;
            firstError ??= r.stderr.slice(0, 300);
          }
        }
      }),
    );
    lat.sort((a, b) => a - b);
    const secs = (lastEnd - start) / 1000;
    const result: LoadResult = {
      requests: ok + errors,
      ok,
      errors,
      statuses: { exit0: ok, failed: errors },
      seconds: secs,
      rps: ok / secs,
      p50ms: percentile(lat, 50),
      p99ms: percentile(lat, 99),
      meanMs: lat.reduce((a, b) => a + b, 0) / Math.max(1, lat.length),
      bodies: [],
      firstError,
    };
    let verified = '';
    if (verify) {
      const nd = join(dir, 'w0', 'newcerts');
      const pems = readdirSync(nd)
        .slice(0, 20)
        .map((f) => readFileSync(join(nd, f), 'utf8'));
      const v = await verifyLeaves(pems, ca.cert, undefined, dir);
      verified = `${v.ok}/${v.total}${v.firstFailure ? ' ' + v.firstFailure : ''}`;
      report.commands.push(
        cmdline('openssl', ['ca', '-batch', '-config', '<dir>/ca.cnf', '-in', '<csr>', '-out', '<dir>/out.pem', '-notext']) +
          `   # ${procs} process(es) in a loop for ${seconds} s, each with its own CA dir (rand_serial, copy_extensions=copy, index.txt)`,
      );
    }
    return { result, verified };
  } finally {
    removeTemp(dir);
  }
}

function summarise(rows: Row[]): (string | number)[][] {
  return rows.map((r) => {
    const rps = r.runs.map((x) => x.rps);
    return [
      r.target,
      r.conc,
      r.runs.length,
      fmt(median(rps)),
      fmt(min(rps)),
      fmt(max(rps)),
      median(r.runs.map((x) => x.p50ms)).toFixed(2),
      median(r.runs.map((x) => x.p99ms)).toFixed(2),
      r.runs.reduce((a, x) => a + x.errors, 0),
      r.verified,
    ];
  });
}

/**
 * No CA at all (bench/servers/http-floor.mjs): the answers/s node:http and this load generator
 * allow on these cores when a request costs nothing but its framing. Not a peer; a ceiling.
 */
async function floorTarget(csrs: string[]): Promise<HttpTarget> {
  const port = await freePort();
  const workers = process.env.BENCH_SIGNET_WORKERS ?? '2';
  const d = daemon(process.execPath, [join(BENCH_DIR, 'servers', 'http-floor.mjs'), String(port), workers], { cwd: ROOT });
  await waitFor('http-floor', () => tcpOpen(port), 30_000, 25);
  return {
    name: 'node:http floor (no CA work)',
    keyType: 'ecdsa-p256',
    port,
    path: '/api/v1/certificates',
    pid: d.proc.pid!,
    headers: { 'content-type': 'application/json' },
    bodies: csrs.map((csr) => Buffer.from(JSON.stringify({ csr, profile: 'server' }))),
    okStatus: [201],
    commands: [`node bench/servers/http-floor.mjs ${port} ${workers}   (reads and parses the JSON body, answers a fixed 2.7 KB 201)`],
    verify: async (bodies) => `n/a (${bodies.length} fixed answers)`,
    stop: () => d.stop(),
  };
}

export async function issueWorkload(): Promise<WorkloadReport> {
  await ensureTools({ cfssl: 'golang-cfssl', openssl: 'openssl', 'softhsm2-util': 'softhsm2' });
  const seconds = SECONDS();
  const runs = RUNS();
  const concs = CONCURRENCY();
  const warm = Math.min(3, Math.max(1, seconds / 5));
  const procs = Number(process.env.BENCH_OPENSSL_PROCS ?? cpus().length);
  const report = newReport('issue', {
    seconds,
    runs,
    concurrency: concs,
    warmupSeconds: warm,
    opensslProcs: procs,
    csrPool: 2000,
    csrKey: 'ecdsa-p256',
    loadGenerator: 'node:http keep-alive Agent, closed loop, in the runner process',
  });
  const { csrs } = await csrPool(2000);
  report.commands.push(
    `CSR pool: 2000 × openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=hostN.bench.test -addext subjectAltName=DNS:hostN.bench.test (cached in bench/.cache/csrs-2000.json)`,
  );
  const rows: Row[] = [];

  const keyTypes: KeyType[] = ['ecdsa-p256', 'rsa-2048', 'ed25519'];
  const factories: { name: string; make: () => Promise<HttpTarget> }[] = [];
  for (const k of keyTypes) factories.push({ name: `signet ${k}`, make: () => signetTarget(k, csrs) });
  // The same with the CA keys in a SoftHSM2 token (SIGNET_KEY_STORE=pkcs11): every leaf signed by the token.
  factories.push({ name: 'signet pkcs11 ecdsa-p256', make: () => signetTarget('ecdsa-p256', csrs, { pkcs11: true }) });
  factories.push({ name: 'node:http floor (no CA work)', make: () => floorTarget(csrs) });
  for (const k of ['ecdsa-p256', 'rsa-2048'] as KeyType[]) {
    factories.push({ name: `cfssl no-db ${k}`, make: () => cfsslTarget(k, false, csrs) });
    factories.push({ name: `cfssl certdb ${k}`, make: () => cfsslTarget(k, true, csrs) });
  }
  for (const f of factories) {
    if (!selected(f.name)) continue;
    process.stderr.write(`issue: ${f.name}\n`);
    const t = await f.make();
    try {
      report.commands.push(...t.commands.map((c) => `[${t.name}] ${c}`));
      for (const conc of concs) {
        const next = (i: number) => ({ path: t.path, body: t.bodies[i % t.bodies.length]! });
        const base = { port: t.port, method: 'POST' as const, next, headers: t.headers, concurrency: conc, okStatus: t.okStatus };
        await httpLoad({ ...base, seconds: warm });
        const rs: LoadResult[] = [];
        let verified = '';
        for (let r = 0; r < runs; r++) {
          const res = await httpLoad({ ...base, seconds, keepBodies: r === 0 ? 20 : 0 });
          if (res.errors) process.stderr.write(`issue: ${t.name} c${conc}: ${res.errors} errors, first: ${res.firstError}\n`);
          if (r === 0) verified = await t.verify(res.bodies.map((b) => b.body));
          rs.push(res);
          process.stderr.write(`issue: ${t.name} c${conc} run ${r + 1}: ${fmt(res.rps)}/s p99 ${res.p99ms.toFixed(1)} ms\n`);
        }
        rows.push({ target: t.name, keyType: t.keyType, conc: String(conc), runs: rs, verified });
      }
    } finally {
      await t.stop();
    }
  }
  for (const k of ['ecdsa-p256'] as KeyType[]) {
    for (const [label, n] of [
      [`openssl ca sequential ${k}`, 1],
      [`openssl ca ${procs} procs ${k}`, procs],
    ] as const) {
      if (!selected(label)) continue;
      process.stderr.write(`issue: ${label}\n`);
      const rs: LoadResult[] = [];
      let verified = '';
      for (let r = 0; r < runs; r++) {
        const { result, verified: v } = await opensslCaRun(k, n, seconds, csrs, report, r === 0);
        if (r === 0) verified = v;
        rs.push(result);
        process.stderr.write(`issue: ${label} run ${r + 1}: ${fmt(result.rps)}/s\n`);
      }
      rows.push({ target: label, keyType: k, conc: `${n} proc`, runs: rs, verified });
    }
  }

  report.tables.push({
    title: `Issuance throughput (certificates/s; median of ${runs} runs of ${seconds} s each, after a ${warm} s warm-up) and latency (ms; medians of per-run p50/p99)`,
    headers: ['target', 'conc', 'runs', 'median/s', 'min/s', 'max/s', 'p50 ms', 'p99 ms', 'errors', 'openssl verify (sample)'],
    rows: summarise(rows),
  });

  // Ratios of each Signet row to each peer with the same key type (same concurrency for HTTP peers).
  const med = (r: Row) => median(r.runs.map((x) => x.rps));
  const p99 = (r: Row) => median(r.runs.map((x) => x.p99ms));
  const ratioRows: (string | number)[][] = [];
  for (const s of rows.filter((r) => r.target.startsWith('signet') && !r.target.startsWith('signet pkcs11'))) {
    for (const p of rows.filter((r) => !r.target.startsWith('signet') && r.keyType === s.keyType && (r.conc === s.conc || r.conc.endsWith('proc')))) {
      ratioRows.push([s.target, s.conc, p.target, p.conc, ratio(med(s), med(p)), `${p99(s).toFixed(1)} vs ${p99(p).toFixed(1)}`]);
    }
  }
  report.tables.push({
    title: 'Signet ÷ peer (throughput ratio; p99 ms Signet vs peer)',
    headers: ['signet', 'conc', 'peer', 'peer conc', 'ratio', 'p99 ms'],
    rows: ratioRows,
  });

  const hsmRows: (string | number)[][] = [];
  for (const h of rows.filter((r) => r.target.startsWith('signet pkcs11'))) {
    const sealed = rows.find((r) => r.target === `signet ${h.keyType}` && r.conc === h.conc);
    if (sealed)
      hsmRows.push([
        h.target,
        h.conc,
        ratio(med(h), med(sealed)),
        `${fmt(med(h))}/s vs ${fmt(med(sealed))}/s`,
        `${p99(h).toFixed(1)} vs ${p99(sealed).toFixed(1)}`,
      ]);
  }
  if (hsmRows.length)
    report.tables.push({
      title: 'CA key in a SoftHSM2 token ÷ sealed software key (same workload)',
      headers: ['signet', 'conc', 'ratio', 'throughput', 'p99 ms (pkcs11 vs sealed)'],
      rows: hsmRows,
    });

  for (const conc of concs.map(String)) {
    const s = rows.find((r) => r.target === 'signet ecdsa-p256' && r.conc === conc);
    const db = rows.find((r) => r.target === 'cfssl certdb ecdsa-p256' && r.conc === conc);
    const nodb = rows.find((r) => r.target === 'cfssl no-db ecdsa-p256' && r.conc === conc);
    if (s && db) {
      report.targets.push({
        name: `issue c${conc}: Signet ≥ 2× cfssl-with-certdb`,
        target: '≥ 2.00×',
        value: `${ratio(med(s), med(db))} (${fmt(med(s))}/s vs ${fmt(med(db))}/s)`,
        pass: med(s) >= 2 * med(db),
      });
      report.targets.push({
        name: `issue c${conc}: Signet p99 ≤ cfssl-with-certdb p99`,
        target: `≤ ${p99(db).toFixed(1)} ms`,
        value: `${p99(s).toFixed(1)} ms`,
        pass: p99(s) <= p99(db),
      });
    }
    if (s && nodb) {
      report.targets.push({
        name: `issue c${conc}: Signet ≥ 1× cfssl-without-db`,
        target: '≥ 1.00×',
        value: `${ratio(med(s), med(nodb))} (${fmt(med(s))}/s vs ${fmt(med(nodb))}/s)`,
        pass: med(s) >= med(nodb),
      });
      report.targets.push({
        name: `issue c${conc}: Signet p99 ≤ cfssl-without-db p99`,
        target: `≤ ${p99(nodb).toFixed(1)} ms`,
        value: `${p99(s).toFixed(1)} ms`,
        pass: p99(s) <= p99(nodb),
      });
    }
  }
  report.notes.push(
    'Signet stores every certificate and its hash-chained audit event (SQLite WAL, synchronous=FULL) before answering 201; cfssl certdb stores the certificate row (go-sqlite3, WAL, default synchronous).',
    "The load generator runs in the benchmark process on the same 2 cores as the server (so does every peer's).",
    'openssl ca rows are whole-process costs (spawn, key load, index.txt rewrite per certificate); parallel workers each use their own CA directory and index.txt.',
    'cfssl (Debian golang-cfssl, a 2016 snapshot) does not support Ed25519 CA keys: Signet ed25519 has no peer row.',
  );
  report.data = {
    rows: rows.map((r) => ({
      target: r.target,
      keyType: r.keyType,
      conc: r.conc,
      verified: r.verified,
      runs: r.runs.map((x) => ({ rps: x.rps, p50ms: x.p50ms, p99ms: x.p99ms, ok: x.ok, errors: x.errors, seconds: x.seconds })),
    })),
  };

  if (PROFILE()) report.profile = await profileIssue(csrs, seconds);
  return report;
}

/** Signet ecdsa-p256 at the highest concurrency under node --cpu-prof, summarised. */
async function profileIssue(csrs: string[], seconds: number): Promise<string> {
  const dir = tempDir('issue-profile');
  const conc = Math.max(...CONCURRENCY());
  // One process: the profile is about the cost of a request (with workers, the primary's profile is idle).
  const s = await startSignet(join(dir, 'data'), { SIGNET_INTERMEDIATE_KEY: 'ecdsa-p256', SIGNET_WORKERS: '1' }, { cpuProfDir: join(dir, 'prof') });
  try {
    const bodies = csrs.map((csr) => Buffer.from(JSON.stringify({ csr, profile: 'server' })));
    const res = await httpLoad({
      port: s.port,
      method: 'POST',
      next: (i) => ({ path: '/api/v1/certificates', body: bodies[i % bodies.length]! }),
      headers: { 'content-type': 'application/json', authorization: `Bearer ${s.token}` },
      concurrency: conc,
      seconds,
      okStatus: [201],
    });
    await s.stop();
    const prof = s.profiles()[0];
    if (!prof) return 'profile: no .cpuprofile was written';
    const sum = summariseProfile(prof, [
      'run',
      'readBody',
      'parseJson',
      'finish',
      'processImmediate',
      'onStreamRead',
      'parserOnHeadersComplete',
      'parserOnIncoming',
      'processTicksAndRejections',
      'drain',
      'write',
      'issue',
      'sign',
      'store',
      'signTbs',
      'parseCsr',
      'buildLeafTbs',
      'lintLeafTbs',
      'appendAudit',
      'transaction',
      'inspectCertificate',
      'requireAuth',
      'authenticate',
      'jsonParser',
      'checkAllowed',
      'validateCommonName',
      'createPublicKey',
      'verifySignature',
      'toPem',
      'nameToString',
      'newSerial',
      'describeKey',
      '$transaction',
      'executeRaw',
      'queryRaw',
    ]);
    return `CPU profile: Signet ecdsa-p256 issue at c${conc} for ${seconds} s under node --cpu-prof (${fmt(res.rps)}/s while profiled)\n${sum.text}`;
  } finally {
    await s.stop();
    removeTemp(dir);
  }
}
