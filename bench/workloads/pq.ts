/**
 * pq: issue #20's performance rows. Two Signet instances in one run — classical (root ECDSA
 * P-384, issuing CA ECDSA P-256) and post-quantum (root ML-DSA-87, issuing CA ML-DSA-65) — and,
 * next to each other in one table: REST issuance (certificates/s, server CPU per certificate;
 * also P-256 CSRs on the ML-DSA CA, which separates the CA's signature from the CSR's
 * verification), OCSP responses/s (cached: wrk over pre-signed answers; uncached: the first ask
 * for each certificate, which signs), a CRL of 100,000 revoked entries signed by ML-DSA-87 next to
 * ECDSA P-384 (in process, bulk-inserted rows, as crl-shards), and the DER sizes.
 *
 * Debian's openssl 3.0 cannot read ML-DSA, so checks use node:crypto (OpenSSL 3.5) for both
 * hierarchies alike (bench/lib/pq.ts).
 */
import { X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { loadConfig } from '../../src/config/config.js';
import { bootstrapIfEmpty, openSignet } from '../../src/runtime/open.js';
import { createServices } from '../../src/runtime/services.js';
import { sqliteBulkInsert, sqliteTemplate } from '../lib/fixtures.js';
import { httpLoad, type LoadResult } from '../lib/load.js';
import { csrPool } from '../lib/pki.js';
import { checkOcspResponse, ocspRequestFor, pqCsrPool, verifyChain, verifyCrlSignature } from '../lib/pq.js';
import { summariseProfile } from '../lib/profile.js';
import { api, signetCas, startSignet, type SignetServer } from '../lib/signet.js';
import { runWrk, wrkScript, type WrkResult } from '../lib/wrk.js';
import {
  CONCURRENCY,
  ensureTools,
  envInt,
  fmt,
  max,
  median,
  min,
  newReport,
  pool,
  processTree,
  PROFILE,
  removeTemp,
  RUNS,
  SECONDS,
  statCpuMicros,
  tempDir,
  type WorkloadReport,
} from '../lib/util.js';

const PQ_PROFILES = {
  'pq-server': { keyTypes: ['ml-dsa'], requireSan: true, defaultValidityDays: 30, maxValidityDays: 90, extKeyUsage: ['serverAuth'] },
};

interface Instance {
  label: string;
  server: SignetServer;
  dir: string;
  root: X509Certificate;
  intermediate: X509Certificate;
  rootDer: Buffer;
  intermediateDer: Buffer;
}

interface IssueTarget {
  name: string;
  inst: Instance;
  profile: string;
  csrs: string[];
}

/** CPU time (µs) of a process and its workers, from /proc. */
const treeCpu = (pid: number): number => processTree(pid).reduce((t, p) => t + (statCpuMicros(`/proc/${p}/stat`) || 0), 0);

async function startInstance(label: string, parent: string, env: Record<string, string>, cpuProfDir?: string): Promise<Instance> {
  const dir = join(parent, label);
  const server = await startSignet(join(dir, 'data'), env, cpuProfDir ? { cpuProfDir } : {});
  const cas = await signetCas(server);
  const der = async (id: string) => Buffer.from(await (await fetch(`${server.url}/pki/${id}.crt`)).arrayBuffer());
  const rootDer = await der(cas.root.id);
  const intermediateDer = await der(cas.intermediate.id);
  return { label, server, dir, rootDer, intermediateDer, root: new X509Certificate(rootDer), intermediate: new X509Certificate(intermediateDer) };
}

const body = (csr: string, profile: string) => Buffer.from(JSON.stringify({ csr, profile }));

interface IssueRun {
  load: LoadResult;
  cpuMsPerCert: number;
}

async function issueRun(t: IssueTarget, conc: number, seconds: number, keep = 0): Promise<IssueRun> {
  const bodies = t.csrs.map((c) => body(c, t.profile));
  const cpu0 = treeCpu(t.inst.server.pid);
  const load = await httpLoad({
    port: t.inst.server.port,
    method: 'POST',
    next: (i) => ({ path: '/api/v1/certificates', body: bodies[i % bodies.length]! }),
    headers: { 'content-type': 'application/json', authorization: `Bearer ${t.inst.server.token}` },
    concurrency: conc,
    seconds,
    okStatus: [201],
    keepBodies: keep,
  });
  const cpu1 = treeCpu(t.inst.server.pid);
  return { load, cpuMsPerCert: (cpu1 - cpu0) / 1000 / Math.max(1, load.ok) };
}

/** Issues certificates over the API (revoking every 10th when asked); returns serials and PEMs. */
async function issueMany(
  inst: Instance,
  csrs: string[],
  profile: string,
  revokeEvery = 0,
): Promise<{ serial: string; certificate: string; revoked: boolean }[]> {
  return pool(csrs, 16, async (csr, i) => {
    const r = await api<{ serial: string; certificate: string }>(inst.server, 'POST', '/api/v1/certificates', { csr, profile });
    if (r.status !== 201) throw new Error(`${inst.label}: issue failed: ${JSON.stringify(r.json).slice(0, 300)}`);
    const revoked = revokeEvery > 0 && i % revokeEvery === revokeEvery - 1;
    if (revoked) {
      const rv = await api(inst.server, 'POST', `/api/v1/certificates/${r.json.serial}/revoke`, { reason: 'keyCompromise' });
      if (rv.status !== 200) throw new Error(`revoke failed: ${JSON.stringify(rv.json).slice(0, 300)}`);
    }
    return { ...r.json, revoked };
  });
}

async function ocspPost(port: number, req: Buffer): Promise<Buffer> {
  const r = await fetch(`http://127.0.0.1:${port}/ocsp`, {
    method: 'POST',
    headers: { 'content-type': 'application/ocsp-request' },
    body: new Uint8Array(req),
  });
  if (r.status !== 200) throw new Error(`OCSP HTTP ${r.status}`);
  return Buffer.from(await r.arrayBuffer());
}

/** In process, as crl-shards: a CA with `entries` revoked rows, its full CRL published `runs` times. */
async function crlRow(
  label: string,
  dir: string,
  rootKey: string,
  intKey: string,
  entries: number,
  runs: number,
  csr: string,
  profile: string,
): Promise<{ ms: number[]; bytes: number; entries: number; verified: boolean; insertMs: number }> {
  mkdirSync(dir, { recursive: true });
  const profilesFile = join(dir, 'profiles.json');
  writeFileSync(profilesFile, JSON.stringify(PQ_PROFILES));
  const env = {
    SIGNET_DATA_DIR: join(dir, label),
    SIGNET_LOG_LEVEL: 'warn',
    SIGNET_ROOT_KEY: rootKey,
    SIGNET_INTERMEDIATE_KEY: intKey,
    SIGNET_PROFILES_FILE: profilesFile,
  };
  const config = loadConfig(env);
  const ctx = await openSignet(config, pino({ level: 'warn' }));
  try {
    await bootstrapIfEmpty(ctx, config);
    const { issuance, crls } = createServices(ctx, config);
    const issued = await issuance.issue({ csr, profile }, { principal: { kind: 'system', actor: 'bench' } } as const);
    const dbFile = join(env.SIGNET_DATA_DIR, 'signet.db');
    const template = sqliteTemplate(dbFile, issued.serial);
    const insertMs = sqliteBulkInsert(dbFile, template, { count: entries, offset: 0, status: 'revoked', baseEpoch: Math.floor(Date.now() / 1000) - 60 });
    const issuerRec = await ctx.stores.cas.get(template.caId);
    const issuerDer = issuerRec ? Buffer.from(issuerRec.certificateDer) : undefined;
    const ms: number[] = [];
    let bytes = 0;
    let n = 0;
    let der: Buffer | undefined;
    // One untimed publish first: the two CAs run one after the other in this process, and the
    // second would otherwise find the CRL encoder already compiled by the JIT.
    await crls.publish(template.caId, undefined, 'bench', { shard: 0, delta: false });
    for (let r = 0; r < runs; r++) {
      const t0 = performance.now();
      const crl = await crls.publish(template.caId, undefined, 'bench', { shard: 0, delta: false });
      ms.push(performance.now() - t0);
      bytes = crl.der.length;
      n = crl.entries;
      der = crl.der;
      process.stderr.write(`pq: CRL ${label}: ${fmt(n)} entries, ${fmt(bytes)} bytes, ${fmt(ms.at(-1)!)} ms\n`);
    }
    const verified = !!issuerDer && !!der && verifyCrlSignature(der, new X509Certificate(issuerDer));
    return { ms, bytes, entries: n, verified, insertMs };
  } finally {
    await ctx.db.close();
  }
}

const medRange = (xs: number[], digits = 0) => `${fmt(median(xs), digits)} (${fmt(min(xs), digits)}–${fmt(max(xs), digits)})`;
const ratioOf = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}×` : '-');

export async function pqWorkload(): Promise<WorkloadReport> {
  await ensureTools({ wrk: 'wrk' });
  const seconds = SECONDS();
  const runs = RUNS();
  const concs = CONCURRENCY();
  const warm = Math.min(3, Math.max(1, seconds / 5));
  const ocspCerts = envInt('BENCH_OCSP_CERTS', 200);
  const uncached = envInt('BENCH_PQ_OCSP_UNCACHED', 1500);
  const crlEntries = envInt('BENCH_PQ_CRL_ENTRIES', 100_000);
  const threads = envInt('BENCH_WRK_THREADS', 1);
  const report = newReport('pq', {
    seconds,
    runs,
    concurrency: concs,
    warmupSeconds: warm,
    ocspCerts,
    ocspUncachedCerts: uncached,
    crlEntries,
    wrkThreads: threads,
    classical: 'root ecdsa-p384, issuing CA ecdsa-p256; CRL: ecdsa-p384 CA',
    postQuantum: 'root ml-dsa-87, issuing CA ml-dsa-65; CRL: ml-dsa-87 CA',
  });
  const load: number[] = [loadavg()[0]!];
  const sampler = setInterval(() => load.push(loadavg()[0]!), 15_000);
  const dir = tempDir('pq');
  const rows: (string | number)[][] = [];
  const data: Record<string, unknown> = {};
  try {
    const p256 = (await csrPool(2000)).csrs;
    const mldsa = await pqCsrPool('ml-dsa-65', 2000);
    const profilesFile = join(dir, 'profiles.json');
    writeFileSync(profilesFile, JSON.stringify(PQ_PROFILES));
    const classical = await startInstance('classical', dir, { SIGNET_ROOT_KEY: 'ecdsa-p384', SIGNET_INTERMEDIATE_KEY: 'ecdsa-p256' });
    const pq = await startInstance('pq', dir, { SIGNET_ROOT_KEY: 'ml-dsa-87', SIGNET_INTERMEDIATE_KEY: 'ml-dsa-65', SIGNET_PROFILES_FILE: profilesFile });
    report.commands.push(
      `[classical] ${classical.server.command.replaceAll(dir, '<dir>')}`,
      `[post-quantum] ${pq.server.command.replaceAll(dir, '<dir>')}   # <dir>/profiles.json = ${JSON.stringify(PQ_PROFILES)}`,
      'CSR pools: 2000 ECDSA P-256 CSRs from openssl req (bench/.cache/csrs-2000.json); 2000 ML-DSA-65 CSRs from node:crypto generateKeyPairSync + src/pki/csr-builder (bench/.cache/csrs-ml-dsa-65-2000.json)',
      'POST /api/v1/certificates {"csr": <PEM>, "profile": "server" | "pq-server"}, node:http keep-alive closed loop in the runner',
    );
    try {
      // ---- Issuance -----------------------------------------------------------------------
      const targets: IssueTarget[] = [
        { name: 'P-256 CA ← P-256 CSR', inst: classical, profile: 'server', csrs: p256 },
        { name: 'ML-DSA-65 CA ← ML-DSA-65 CSR', inst: pq, profile: 'pq-server', csrs: mldsa },
        { name: 'ML-DSA-65 CA ← P-256 CSR', inst: pq, profile: 'server', csrs: p256 },
      ];
      const leafDer: Record<string, number> = {};
      const replyBytes: Record<string, number> = {};
      for (const conc of concs) {
        const res = new Map<string, IssueRun[]>(targets.map((t) => [t.name, []]));
        const verified = new Map<string, string>();
        for (const t of targets) await issueRun(t, conc, warm);
        // Interleaved (A, B, C, A, B, C, …) so load from other work on the machine hits all alike.
        for (let r = 0; r < runs; r++) {
          for (const t of targets) {
            const x = await issueRun(t, conc, seconds, r === 0 ? 20 : 0);
            if (x.load.errors) process.stderr.write(`pq: ${t.name} c${conc}: ${x.load.errors} errors, first: ${x.load.firstError}\n`);
            process.stderr.write(
              `pq: issue ${t.name} c${conc} run ${r + 1}: ${fmt(x.load.rps)}/s, ${x.cpuMsPerCert.toFixed(2)} ms CPU/cert, p99 ${x.load.p99ms.toFixed(1)} ms\n`,
            );
            if (r === 0) {
              const pems = x.load.bodies.map((b) => (JSON.parse(b.body.toString()) as { certificate: string }).certificate);
              const ok = pems.filter((p) => verifyChain(p, t.inst.intermediate, t.inst.root)).length;
              verified.set(t.name, `${ok}/${pems.length}`);
              if (pems[0]) leafDer[t.name] = new X509Certificate(pems[0]).raw.length;
              if (x.load.bodies[0]) replyBytes[t.name] = x.load.bodies[0].body.length;
            }
            res.get(t.name)!.push(x);
          }
        }
        const base = median(res.get(targets[0]!.name)!.map((x) => x.load.rps));
        for (const t of targets) {
          const xs = res.get(t.name)!;
          const rps = median(xs.map((x) => x.load.rps));
          rows.push([
            `issue c${conc}: ${t.name}`,
            `${medRange(xs.map((x) => x.load.rps))} /s`,
            `${median(xs.map((x) => x.cpuMsPerCert)).toFixed(2)} ms CPU/cert; p50 ${median(xs.map((x) => x.load.p50ms)).toFixed(1)} p99 ${median(xs.map((x) => x.load.p99ms)).toFixed(1)} ms`,
            t === targets[0] ? '1.00×' : ratioOf(rps, base),
            `${xs.reduce((a, x) => a + x.load.errors, 0)} errors; chain verified ${verified.get(t.name)}`,
          ]);
          data[`issue c${conc} ${t.name}`] = xs.map((x) => ({
            rps: x.load.rps,
            cpuMsPerCert: x.cpuMsPerCert,
            p50ms: x.load.p50ms,
            p99ms: x.load.p99ms,
            errors: x.load.errors,
          }));
        }
      }

      // ---- OCSP ---------------------------------------------------------------------------
      const ocspInsts = [
        { inst: classical, csrs: p256, profile: 'server' },
        { inst: pq, csrs: mldsa, profile: 'pq-server' },
      ];
      const ocsp = new Map<string, { reqs: Buffer[]; leaves: { serial: string; revoked: boolean }[]; fresh: Buffer[]; respBytes: number; check: string }>();
      for (const o of ocspInsts) {
        const leaves = await issueMany(o.inst, o.csrs.slice(0, ocspCerts), o.profile, 10);
        const fresh = (await issueMany(o.inst, o.csrs.slice(ocspCerts, ocspCerts + uncached), o.profile)).map((l) =>
          ocspRequestFor(o.inst.intermediateDer, l.serial),
        );
        const reqs = leaves.map((l) => ocspRequestFor(o.inst.intermediateDer, l.serial));
        // The first ask also makes the delegated responder certificate: not part of any measurement.
        let respBytes = 0;
        let ok = 0;
        let first = '';
        let signer = '';
        for (let i = 0; i < reqs.length; i++) {
          const der = await ocspPost(o.inst.server.port, reqs[i]!);
          if (i < 20) {
            try {
              const c = checkOcspResponse(der, o.inst.intermediate);
              signer = c.signer;
              if (c.status === (leaves[i]!.revoked ? 'revoked' : 'good')) ok++;
              else first ||= `#${i}: ${c.status}`;
            } catch (e) {
              first ||= `#${i}: ${(e as Error).message}`;
            }
            if (!leaves[i]!.revoked) respBytes = der.length;
          }
        }
        ocsp.set(o.inst.label, { reqs, leaves, fresh, respBytes, check: `${ok}/20 checked (responder key ${signer})${first ? ' ' + first : ''}` });
      }
      // Uncached: the first ask for a certificate signs its response. `uncached` fresh certificates per CA, split over the runs.
      const per = Math.floor(uncached / runs);
      const conc0 = concs[0]!;
      const unc = new Map<string, number[]>();
      for (let r = 0; r < runs; r++) {
        for (const o of ocspInsts) {
          const batch = ocsp.get(o.inst.label)!.fresh.slice(r * per, (r + 1) * per);
          let next = 0;
          const t0 = performance.now();
          await pool(batch, conc0, async (req) => {
            next++;
            await ocspPost(o.inst.server.port, req);
          });
          const rps = next / ((performance.now() - t0) / 1000);
          unc.set(o.inst.label, [...(unc.get(o.inst.label) ?? []), rps]);
          process.stderr.write(`pq: OCSP uncached ${o.inst.label} run ${r + 1}: ${fmt(rps)}/s (${next} first asks at c${conc0})\n`);
        }
      }
      // Cached: wrk over the pre-signed answers, interleaved between the two instances.
      const cached = new Map<string, WrkResult[]>();
      for (const conc of concs) {
        const scripts = new Map(
          ocspInsts.map((o) => [
            o.inst.label,
            wrkScript(dir, `ocsp-${o.inst.label}`, {
              method: 'POST',
              contentType: 'application/ocsp-request',
              bodies: ocsp.get(o.inst.label)!.reqs,
              path: '/ocsp',
            }),
          ]),
        );
        for (const o of ocspInsts) await runWrk(`http://127.0.0.1:${o.inst.server.port}/ocsp`, scripts.get(o.inst.label)!, conc, warm, threads);
        for (let r = 0; r < runs; r++) {
          for (const o of ocspInsts) {
            const w = await runWrk(`http://127.0.0.1:${o.inst.server.port}/ocsp`, scripts.get(o.inst.label)!, conc, seconds, threads);
            if (r === 0 && conc === concs[0] && o.inst === classical)
              report.commands.push(`${w.command.replace(/-s \S+/, '-s <post.lua: cycles through the requests>')}`);
            process.stderr.write(`pq: OCSP cached ${o.inst.label} c${conc} run ${r + 1}: ${fmt(w.rps)}/s p99 ${w.p99ms.toFixed(2)} ms\n`);
            const k = `${o.inst.label} ${conc}`;
            cached.set(k, [...(cached.get(k) ?? []), w]);
          }
        }
        const c = cached.get(`classical ${conc}`)!;
        const q = cached.get(`pq ${conc}`)!;
        rows.push([
          `OCSP cached POST c${conc} (wrk)`,
          `${medRange(c.map((x) => x.rps))} /s; p99 ${median(c.map((x) => x.p99ms)).toFixed(2)} ms`,
          `${medRange(q.map((x) => x.rps))} /s; p99 ${median(q.map((x) => x.p99ms)).toFixed(2)} ms`,
          ratioOf(median(q.map((x) => x.rps)), median(c.map((x) => x.rps))),
          `${c.reduce((a, x) => a + x.errors, 0) + q.reduce((a, x) => a + x.errors, 0)} errors; ${ocspCerts} distinct requests`,
        ]);
        data[`ocsp cached c${conc}`] = { classical: c.map((x) => x.rps), pq: q.map((x) => x.rps) };
      }
      rows.push([
        `OCSP uncached (first ask, signs) c${conc0}`,
        `${medRange(unc.get('classical')!)} /s`,
        `${medRange(unc.get('pq')!)} /s`,
        ratioOf(median(unc.get('pq')!), median(unc.get('classical')!)),
        `${per} fresh certificates per run`,
      ]);
      rows.push([
        'OCSP response checks',
        ocsp.get('classical')!.check,
        ocsp.get('pq')!.check,
        '',
        'node:crypto: signature, responder certificate signed by the CA, status',
      ]);
      data.ocspUncached = Object.fromEntries(unc);

      // ---- Sizes --------------------------------------------------------------------------
      const sizeRow = (what: string, a: number, b: number, note = '') => rows.push([what, `${fmt(a)} B`, `${fmt(b)} B`, ratioOf(b, a), note]);
      sizeRow('root certificate (DER)', classical.rootDer.length, pq.rootDer.length, 'ECDSA P-384 vs ML-DSA-87');
      sizeRow('intermediate certificate (DER)', classical.intermediateDer.length, pq.intermediateDer.length, 'ECDSA P-256 vs ML-DSA-65, signed by the root');
      sizeRow(
        'leaf certificate (DER)',
        leafDer[targets[0]!.name] ?? NaN,
        leafDer[targets[1]!.name] ?? NaN,
        `P-256 key vs ML-DSA-65 key; a P-256 leaf from the ML-DSA-65 CA: ${fmt(leafDer[targets[2]!.name] ?? NaN)} B`,
      );
      sizeRow(
        'chain a TLS server sends (leaf + intermediate)',
        (leafDer[targets[0]!.name] ?? NaN) + classical.intermediateDer.length,
        (leafDer[targets[1]!.name] ?? NaN) + pq.intermediateDer.length,
      );
      sizeRow(
        'REST issuance reply (JSON: certificate and chain PEM)',
        replyBytes[targets[0]!.name] ?? NaN,
        replyBytes[targets[1]!.name] ?? NaN,
        `P-256 leaf from the ML-DSA-65 CA: ${fmt(replyBytes[targets[2]!.name] ?? NaN)} B`,
      );
      sizeRow('OCSP response (good, one CertID)', ocsp.get('classical')!.respBytes, ocsp.get('pq')!.respBytes, 'includes the delegated responder certificate');
    } finally {
      await classical.server.stop();
      await pq.server.stop();
    }

    // ---- CRL ----------------------------------------------------------------------------------
    const crlDir = join(dir, 'crl');
    // Every entry is a bulk-inserted row; the one issued certificate (the rows' template) is not revoked.
    const c = await crlRow('crl-ecdsa-p384', crlDir, 'ecdsa-p384', 'ecdsa-p384', crlEntries, runs, p256[0]!, 'server');
    const q = await crlRow('crl-ml-dsa-87', crlDir, 'ml-dsa-87', 'ml-dsa-87', crlEntries, runs, mldsa[0]!, 'pq-server');
    rows.push([
      `CRL ${fmt(crlEntries)} entries: build + sign + store (ms)`,
      `${medRange(c.ms)} ms (ECDSA P-384)`,
      `${medRange(q.ms)} ms (ML-DSA-87)`,
      ratioOf(median(q.ms), median(c.ms)),
      `in process, CrlPublisher.publish(); entries ${fmt(c.entries)} / ${fmt(q.entries)}; signature verified (node:crypto) ${c.verified} / ${q.verified}`,
    ]);
    rows.push([`CRL ${fmt(crlEntries)} entries (DER)`, `${fmt(c.bytes)} B`, `${fmt(q.bytes)} B`, ratioOf(q.bytes, c.bytes), `+${fmt(q.bytes - c.bytes)} B`]);
    data.crl = { ecdsaP384: c, mlDsa87: q };
    report.commands.push(
      `CRL: in process (src/runtime open + CrlPublisher.publish(caId, undefined, 'bench', {shard: 0, delta: false})), SIGNET_ROOT_KEY=SIGNET_INTERMEDIATE_KEY=ecdsa-p384 and =ml-dsa-87, ${fmt(crlEntries)} revoked rows bulk-inserted (bench/lib/fixtures.ts)`,
    );

    report.tables.push({
      title: `Post-quantum next to classical, one run (issuance: median (min–max) of ${runs} interleaved runs of ${seconds} s; OCSP cached: wrk ${threads} thread; CRL: median of ${runs})`,
      headers: ['measure', 'classical (P-384 root, P-256 CA)', 'post-quantum (ML-DSA-87 root, ML-DSA-65 CA)', 'PQ ÷ classical', 'notes'],
      rows: rows.map((r) =>
        r[0]!.toString().startsWith('issue')
          ? // issuance rows: classical row in the classical column, PQ rows in the PQ column
            r[0]!.toString().includes('P-256 CA ←')
            ? [r[0]!, `${r[1]}; ${r[2]}`, '', r[3]!, r[4]!]
            : [r[0]!, '', `${r[1]}; ${r[2]}`, r[3]!, r[4]!]
          : r,
      ),
    });
    report.notes.push(
      `load average (1 min) on the 2 cores, sampled every 15 s: ${load.map((l) => l.toFixed(1)).join(', ')} (${fmt(min(load), 1)}–${fmt(max(load), 1)}); other helpers' tests share the machine`,
      'Issuance ratios are each row against P-256 CA ← P-256 CSR at the same concurrency. "ML-DSA-65 CA ← P-256 CSR" signs with ML-DSA-65 but verifies an ECDSA CSR: its gap to the ML-DSA-65 CSR row is the cost of the ML-DSA CSR (parse, verify the proof of possession) and the larger leaf; its gap to the classical row is the CA signature.',
      'CPU/cert: utime+stime of the server process and its workers from /proc across the measured run, divided by certificates issued (the load generator runs in the bench process on the same cores and is not counted).',
      "OCSP: each response is signed by the CA's delegated responder, whose key follows the CA (src/ca/ocsp-service.ts responderKeyFor: ECDSA P-256 under the classical CA, ML-DSA-65 under the ML-DSA-65 CA), and carries the responder certificate: the post-quantum response holds two ML-DSA-65 signatures and a 1,952-byte key.",
      'CRL rows: copies of one real revoked-certificate row with unique serials; the DER of the stored certificate is never read for a CRL. Time includes reading the rows, encoding, signing, storing and the audit event.',
    );
  } finally {
    clearInterval(sampler);
    removeTemp(dir);
  }
  report.data = data;
  if (PROFILE()) report.profile = await profilePq(Math.max(...concs), seconds);
  return report;
}

/** One Signet process (SIGNET_WORKERS=1) under node --cpu-prof, ML-DSA-65 CSRs on the ML-DSA-65 CA. */
async function profilePq(conc: number, seconds: number): Promise<string> {
  const dir = tempDir('pq-prof');
  try {
    const profilesFile = join(dir, 'profiles.json');
    writeFileSync(profilesFile, JSON.stringify(PQ_PROFILES));
    const inst = await startInstance(
      'pq',
      dir,
      { SIGNET_ROOT_KEY: 'ml-dsa-87', SIGNET_INTERMEDIATE_KEY: 'ml-dsa-65', SIGNET_PROFILES_FILE: profilesFile, SIGNET_WORKERS: '1' },
      join(dir, 'prof'),
    );
    const csrs = await pqCsrPool('ml-dsa-65', 2000);
    const t: IssueTarget = { name: 'profile', inst, profile: 'pq-server', csrs };
    await issueRun(t, conc, 2);
    const x = await issueRun(t, conc, seconds);
    await inst.server.stop();
    const prof = inst.server.profiles()[0];
    if (!prof) return 'profile: no .cpuprofile was written';
    const keep = join(process.env.BENCH_PQ_PROFILE_OUT ?? dir, 'pq-issue.cpuprofile');
    if (process.env.BENCH_PQ_PROFILE_OUT) writeFileSync(keep, readFileSync(prof, 'utf8'));
    return `CPU profile: Signet (SIGNET_WORKERS=1) issuing ML-DSA-65 leaves from ML-DSA-65 CSRs on the ML-DSA-65 CA at c${conc} for ${seconds} s under node --cpu-prof (${fmt(x.load.rps)}/s while profiled)\n${summariseProfile(prof, ['issue', 'parseCsr', 'verifySignature', 'sign', 'signPrepared', 'prepareCertificate', 'lint', 'sqliteTransaction', 'appendAudit']).text}`;
  } finally {
    removeTemp(dir);
  }
}
