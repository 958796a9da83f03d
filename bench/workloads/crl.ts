/**
 * crl: time and peak RSS to produce the signed CRL of a CA with 100,000 and 1,000,000 revoked
 * certificates. Signet: `signet crl --ca <id> --out f` (wall time minus the median wall time of
 * `signet ca list --json`, i.e. the CLI's start-up, open and close), peers: `openssl ca -gencrl`
 * on an equivalent index.txt, `cfssl gencrl` on the same number of serials.
 */
import { createWriteStream, readdirSync, statSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import { csrPool, makePeerCa, opensslCaDir } from '../lib/pki.js';
import { sqliteBulkInsert, sqliteTemplate } from '../lib/fixtures.js';
import { api, cleanEnv, signetCas, startSignet } from '../lib/signet.js';
import {
  cmdline,
  ensureTools,
  fmt,
  max,
  median,
  min,
  must,
  newReport,
  PROFILE,
  ratio,
  removeTemp,
  ROOT,
  RUNS,
  run,
  selected,
  SIGNET_BIN,
  tempDir,
  timed,
  type WorkloadReport,
} from '../lib/util.js';
import { summariseProfile } from '../lib/profile.js';

const PUBLIC_URL = 'http://pki.bench.test';

interface Measure {
  wallMs: number;
  netMs: number;
  rssMb: number;
  bytes: number;
}
interface Row {
  target: string;
  entries: number;
  runs: Measure[];
  check: string;
}

const yymmdd = (d: Date) => d.toISOString().replace(/^\d\d(\d\d)-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d).*$/, '$1$2$3$4$5$6Z');

async function writeLines(file: string, count: number, line: (i: number) => string): Promise<void> {
  const ws = createWriteStream(file);
  let buf = '';
  for (let i = 0; i < count; i++) {
    buf += line(i);
    if (buf.length > 1 << 20) {
      if (!ws.write(buf)) await once(ws, 'drain');
      buf = '';
    }
  }
  ws.end(buf);
  await once(ws, 'finish');
}

const hex32 = (i: number) => `5B${i.toString(16).toUpperCase().padStart(6, '0')}${'A1B2C3D4E5F60718293A4B5C'}`;

export async function crlWorkload(): Promise<WorkloadReport> {
  await ensureTools({ cfssl: 'golang-cfssl', openssl: 'openssl', '/usr/bin/time': 'time' });
  const runs = RUNS();
  const sizes = (process.env.BENCH_CRL_SIZES ?? '100000,1000000').split(',').map(Number);
  const report = newReport('crl', {
    runs,
    sizes,
    keyType: 'ecdsa-p256',
    signetMeasure:
      'wall time of `signet crl --ca <id> --out f` minus the median wall time of `signet ca list --json` (CLI start, open database, close); peak RSS of the whole `signet crl` process',
  });
  const dir = tempDir('crl');
  const rows: Row[] = [];
  try {
    // Signet: a real hierarchy and two real certificates (one revoked), then bulk rows.
    const dataDir = join(dir, 'signet');
    // One public URL for the server that issues and the CLI that signs the CRL: the CRL's
    // issuingDistributionPoint must match the certificates' CRL distribution point.
    const s = await startSignet(dataDir, { SIGNET_INTERMEDIATE_KEY: 'ecdsa-p256', SIGNET_PUBLIC_URL: PUBLIC_URL });
    const { csrs } = await csrPool(2000);
    const cas = await signetCas(s);
    const issued: { serial: string; certificate: string }[] = [];
    for (const csr of csrs.slice(0, 2)) {
      const r = await api<{ serial: string; certificate: string }>(s, 'POST', '/api/v1/certificates', { csr, profile: 'server' });
      if (r.status !== 201) throw new Error(`issue failed ${JSON.stringify(r.json)}`);
      issued.push(r.json);
    }
    const rv = await api(s, 'POST', `/api/v1/certificates/${issued[1]!.serial}/revoke`, { reason: 'keyCompromise' });
    if (rv.status !== 200) throw new Error(`revoke failed ${JSON.stringify(rv.json)}`);
    await s.stop();
    const rootFile = join(dir, 'root.pem');
    const intFile = join(dir, 'int.pem');
    const goodLeaf = join(dir, 'good.pem');
    const revokedLeaf = join(dir, 'revoked.pem');
    writeFileSync(rootFile, cas.rootPem);
    writeFileSync(intFile, cas.intermediatePem);
    writeFileSync(join(dir, 'chain.pem'), cas.intermediatePem + cas.rootPem);
    writeFileSync(goodLeaf, issued[0]!.certificate);
    writeFileSync(revokedLeaf, issued[1]!.certificate);
    const dbFile = join(dataDir, 'signet.db');
    const template = sqliteTemplate(dbFile, issued[0]!.serial);
    const env = cleanEnv({ SIGNET_DATA_DIR: dataDir, SIGNET_LOG_LEVEL: 'warn', SIGNET_PUBLIC_URL: PUBLIC_URL });
    const caId = cas.intermediate.id;
    report.commands.push(
      `signet data dir: SIGNET_DATA_DIR=<dir> node bin/signet.js serve (first start: root ecdsa-p384 + intermediate ecdsa-p256), 2 certificates issued over the API, 1 revoked (keyCompromise)`,
    );
    report.notes.push(
      'Signet fixture: revoked rows are bulk-INSERTed into "Certificate" (one INSERT … SELECT over a recursive counter) as copies of one real certificate row — the stored DER is that certificate for every row; serials (16 bytes) and fingerprints are unique; status revoked, reason keyCompromise, revokedAt one second apart.',
    );

    const baseline: number[] = [];
    const signetCmd = ['crl', '--ca', caId, '--out', join(dir, 'signet.crl')];
    let inserted = 0;
    const base = Math.floor(Date.now() / 1000) - 60;
    for (const size of sizes) {
      // Peers' inputs.
      const entries = size;
      if (selected('signet')) {
        const add = entries - 1 - inserted; // the real revoked certificate is one entry
        if (add > 0) {
          const ms = sqliteBulkInsert(dbFile, template, { count: add, offset: inserted, status: 'revoked', baseEpoch: base });
          process.stderr.write(`crl: inserted ${fmt(add)} revoked rows into SQLite in ${fmt(ms / 1000, 1)} s\n`);
          inserted += add;
        }
        if (!baseline.length) {
          for (let r = 0; r < runs; r++) baseline.push((await timed(process.execPath, [SIGNET_BIN, 'ca', 'list', '--json'], { env, cwd: ROOT })).wallMs);
          report.commands.push(
            `baseline: ${cmdline('/usr/bin/time', ['-v', 'node', 'bin/signet.js', 'ca', 'list', '--json'])} → median ${fmt(median(baseline))} ms`,
          );
        }
        const ms: Measure[] = [];
        let check = '';
        for (let r = 0; r < runs; r++) {
          const t = await timed(process.execPath, [SIGNET_BIN, ...signetCmd], { env, cwd: ROOT, timeoutMs: 900_000 });
          const bytes = statSync(join(dir, 'signet.crl')).size;
          ms.push({ wallMs: t.wallMs, netMs: t.wallMs - median(baseline), rssMb: t.maxRssMb, bytes });
          process.stderr.write(`crl: signet ${fmt(entries)} run ${r + 1}: ${fmt(t.wallMs)} ms wall, ${fmt(t.maxRssMb)} MB — ${t.stdout.trim()}\n`);
          if (r === 0) check = await checkSignetCrl(dir, join(dir, 'signet.crl'), goodLeaf, revokedLeaf, rootFile, intFile, entries, t.stdout);
        }
        if (size === sizes[0])
          report.commands.push(
            `${cmdline('/usr/bin/time', ['-v', 'node', 'bin/signet.js', ...signetCmd.map((a) => a.replace(dir, '<dir>'))], { SIGNET_DATA_DIR: '<dir>/signet', SIGNET_PUBLIC_URL: PUBLIC_URL })}`,
          );
        rows.push({ target: 'signet crl (SQLite)', entries, runs: ms, check });
      }
      if (selected('openssl')) rows.push(await opensslGencrl(dir, entries, runs, report));
      if (selected('cfssl')) rows.push(await cfsslGencrl(dir, entries, runs, report));
    }
    if (PROFILE() && selected('signet')) {
      const profDir = join(dir, 'prof');
      await run(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${profDir}`, SIGNET_BIN, ...signetCmd], { env, cwd: ROOT, okCodes: [0], timeoutMs: 900_000 });
      const f = readdirSync(profDir).find((x) => x.endsWith('.cpuprofile'));
      if (f)
        report.profile =
          `CPU profile: signet crl with ${fmt(inserted + 1)} entries under node --cpu-prof\n` +
          summariseProfile(join(profDir, f), [
            'build',
            'buildCrl',
            'entries',
            'findMany',
            'toEntry',
            'encodeCrlEntry',
            'publish',
            'transaction',
            'openSignet',
            'migrate',
            'verifyAll',
            'count',
            'create',
            'sign',
          ]).text;
    }
  } finally {
    removeTemp(dir);
  }

  const med = (r: Row, k: keyof Measure) => median(r.runs.map((x) => x[k]));
  report.tables.push({
    title: `CRL generation (median of ${runs} runs; min/max of the time column)`,
    headers: ['target', 'entries', 'runs', 'time ms (median)', 'min ms', 'max ms', 'wall ms (median)', 'peak RSS MB', 'CRL bytes (DER)', 'checks'],
    rows: rows.map((r) => [
      r.target,
      fmt(r.entries),
      r.runs.length,
      fmt(med(r, 'netMs')),
      fmt(min(r.runs.map((x) => x.netMs))),
      fmt(max(r.runs.map((x) => x.netMs))),
      fmt(med(r, 'wallMs')),
      fmt(med(r, 'rssMb')),
      fmt(med(r, 'bytes')),
      r.check,
    ]),
  });
  const ratioRows: (string | number)[][] = [];
  for (const s of rows.filter((r) => r.target.startsWith('signet'))) {
    for (const p of rows.filter((r) => !r.target.startsWith('signet') && r.entries === s.entries)) {
      ratioRows.push([fmt(s.entries), p.target, ratio(med(p, 'netMs'), med(s, 'netMs')), `${fmt(med(s, 'rssMb'))} vs ${fmt(med(p, 'rssMb'))}`]);
    }
  }
  report.tables.push({
    title: 'Signet vs peer (time ratio = peer time ÷ Signet time; peak RSS MB Signet vs peer)',
    headers: ['entries', 'peer', 'peer time ÷ Signet time', 'RSS MB'],
    rows: ratioRows,
  });
  const s1m = rows.find((r) => r.target.startsWith('signet') && r.entries === 1_000_000);
  if (s1m) {
    report.targets.push({
      name: 'crl 1M: time to the signed CRL',
      target: '≤ 3,000 ms',
      value: `${fmt(med(s1m, 'netMs'))} ms (wall ${fmt(med(s1m, 'wallMs'))} ms incl. CLI start-up)`,
      pass: med(s1m, 'netMs') <= 3000,
    });
    report.targets.push({ name: 'crl 1M: peak RSS', target: '≤ 256 MB', value: `${fmt(med(s1m, 'rssMb'))} MB`, pass: med(s1m, 'rssMb') <= 256 });
    report.targets.push({
      name: 'crl 1M: accepted by openssl crl and openssl verify -crl_check',
      target: 'all checks ok',
      value: s1m.check,
      pass: /^ok/.test(s1m.check),
    });
  }
  report.notes.push(
    "openssl ca -gencrl and cfssl gencrl sign with an ECDSA P-256 CA like Signet's intermediate; cfssl gencrl takes decimal serials and writes base64 DER to stdout (no reason codes); openssl index.txt entries carry keyCompromise like Signet's.",
  );
  report.data = { rows };
  return report;
}

async function checkSignetCrl(
  dir: string,
  crl: string,
  good: string,
  revoked: string,
  root: string,
  int: string,
  entries: number,
  cliOut: string,
): Promise<string> {
  const problems: string[] = [];
  const c = await run('openssl', ['crl', '-inform', 'DER', '-in', crl, '-noout', '-CAfile', join(dir, 'chain.pem')]);
  if (c.code !== 0 || !/verify OK/.test(c.stdout + c.stderr)) problems.push(`openssl crl: ${(c.stdout + c.stderr).trim().slice(0, 200)}`);
  const pem = join(dir, 'signet-crl.pem');
  await must('openssl', ['crl', '-inform', 'DER', '-in', crl, '-out', pem]);
  const v1 = await run('openssl', ['verify', '-crl_check', '-extended_crl', '-CAfile', root, '-untrusted', int, '-CRLfile', pem, good]);
  if (v1.code !== 0) problems.push(`verify good leaf: ${(v1.stdout + v1.stderr).trim().slice(0, 200)}`);
  const v2 = await run('openssl', ['verify', '-crl_check', '-extended_crl', '-CAfile', root, '-untrusted', int, '-CRLfile', pem, revoked]);
  if (v2.code === 0 || !/certificate revoked/.test(v2.stdout + v2.stderr))
    problems.push(`verify revoked leaf: ${(v2.stdout + v2.stderr).trim().slice(0, 200)}`);
  const m = /(\d+) entries/.exec(cliOut);
  if (!m || Number(m[1]) !== entries) problems.push(`CLI reported ${m?.[1] ?? '?'} entries, expected ${entries}`);
  return problems.length
    ? problems.join('; ')
    : `ok: signature verified, ${fmt(entries)} entries, revoked leaf rejected / good leaf accepted by openssl verify -crl_check -extended_crl (Signet's CRL carries an issuingDistributionPoint, which OpenSSL only matches with -extended_crl)`;
}

async function opensslGencrl(dir: string, entries: number, runs: number, report: { commands: string[] }): Promise<Row> {
  const d = join(dir, `openssl-${entries}`);
  const ca = await makePeerCa(join(d, 'ca'), 'ecdsa-p256');
  const cnf = opensslCaDir(join(d, 'db'), ca);
  const exp = yymmdd(new Date(Date.now() + 90 * 86_400_000));
  const rev = yymmdd(new Date(Date.now() - 3_600_000));
  await writeLines(join(d, 'db', 'index.txt'), entries, (i) => `R\t${exp}\t${rev},keyCompromise\t${hex32(i)}\tunknown\t/CN=host${i}.bench.test\n`);
  const out = join(d, 'crl.pem');
  const args = ['ca', '-gencrl', '-config', cnf, '-out', out];
  const ms: Measure[] = [];
  let check = '';
  for (let r = 0; r < runs; r++) {
    const t = await timed('openssl', args, { timeoutMs: 900_000 });
    await must('openssl', ['crl', '-in', out, '-outform', 'DER', '-out', join(d, 'crl.der')]);
    ms.push({ wallMs: t.wallMs, netMs: t.wallMs, rssMb: t.maxRssMb, bytes: statSync(join(d, 'crl.der')).size });
    process.stderr.write(`crl: openssl ${fmt(entries)} run ${r + 1}: ${fmt(t.wallMs)} ms, ${fmt(t.maxRssMb)} MB\n`);
    if (r === 0) {
      const c = await run('openssl', ['crl', '-in', out, '-noout', '-CAfile', ca.cert]);
      check = /verify OK/.test(c.stdout + c.stderr) ? 'ok: signature verified' : `openssl crl: ${(c.stdout + c.stderr).trim().slice(0, 200)}`;
    }
  }
  if (entries === 1_000_000 || report.commands.every((c) => !c.includes('-gencrl')))
    report.commands.push(
      `${cmdline('/usr/bin/time', ['-v', 'openssl', ...args.map((a) => a.replace(d, '<dir>'))])}   # index.txt: ${fmt(entries)} lines "R <exp> <revdate>,keyCompromise <serial> unknown /CN=…"`,
    );
  removeTemp(d);
  return { target: 'openssl ca -gencrl', entries, runs: ms, check };
}

async function cfsslGencrl(dir: string, entries: number, runs: number, report: { commands: string[] }): Promise<Row> {
  const d = join(dir, `cfssl-${entries}`);
  const ca = await makePeerCa(join(d, 'ca'), 'ecdsa-p256');
  const serials = join(d, 'serials.txt');
  await writeLines(serials, entries, (i) => `${BigInt('0x' + hex32(i)).toString(10)}\n`);
  const args = ['gencrl', serials, ca.cert, ca.key];
  const ms: Measure[] = [];
  let check = '';
  for (let r = 0; r < runs; r++) {
    const t = await timed('cfssl', args, { timeoutMs: 900_000 });
    const der = Buffer.from(t.stdout.trim(), 'base64');
    writeFileSync(join(d, 'crl.der'), der);
    ms.push({ wallMs: t.wallMs, netMs: t.wallMs, rssMb: t.maxRssMb, bytes: der.length });
    process.stderr.write(`crl: cfssl ${fmt(entries)} run ${r + 1}: ${fmt(t.wallMs)} ms, ${fmt(t.maxRssMb)} MB\n`);
    if (r === 0) {
      const c = await run('openssl', ['crl', '-inform', 'DER', '-in', join(d, 'crl.der'), '-noout', '-CAfile', ca.cert]);
      check = /verify OK/.test(c.stdout + c.stderr) ? 'ok: signature verified' : `openssl crl: ${(c.stdout + c.stderr).trim().slice(0, 200)}`;
    }
  }
  if (report.commands.every((c) => !c.includes('cfssl gencrl')))
    report.commands.push(
      `${cmdline('/usr/bin/time', ['-v', 'cfssl', ...args.map((a) => a.replace(d, '<dir>'))])} > crl.b64   # serials.txt: N decimal serials`,
    );
  removeTemp(d);
  return { target: 'cfssl gencrl', entries, runs: ms, check };
}
