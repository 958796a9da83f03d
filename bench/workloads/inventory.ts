/**
 * inventory: single-certificate status (GET /api/v1/certificates/{serial}/status), list pages
 * (GET /api/v1/certificates?limit=50, first page and a cursor deep in the table) and searches
 * (a name every row has, `san=_` that matches nothing, and `subject=%` — a scan that stops after
 * its 10,000 rows) with 100,000 and 1,000,000 certificates stored, on SQLite and on PostgreSQL.
 * Requests are sequential (one in flight) on a keep-alive connection, so each latency is the
 * server's cost of that query.
 */
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { csrPool } from '../lib/pki.js';
import { pgBulkInsert, pgTemplate, sqliteBulkInsert, sqliteTemplate, type TemplateRow } from '../lib/fixtures.js';
import { summariseProfile } from '../lib/profile.js';
import { api, signetEnv, startSignet, type SignetServer } from '../lib/signet.js';
import { cmdline, fmt, max, median, min, newReport, percentile, PROFILE, removeTemp, RUNS, selected, tempDir, type WorkloadReport } from '../lib/util.js';

const PG_ADMIN = process.env.BENCH_PG_ADMIN_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const PG_DB = 'signet_bench_inventory';

interface Series {
  backend: string;
  rows: number;
  query: string;
  runs: { median: number; p99: number; n: number }[];
  check: string;
}

function getter(port: number, token?: string) {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const get = (path: string) =>
    new Promise<{ ms: number; status: number; body: string }>((resolve, reject) => {
      const t0 = performance.now();
      const req = request({ host: '127.0.0.1', port, path, agent, timeout: 30_000, headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.once('end', () => resolve({ ms: performance.now() - t0, status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      });
      req.once('timeout', () => req.destroy(new Error('timeout')));
      req.once('error', reject);
      req.end();
    });
  return { get, close: () => agent.destroy() };
}

/** `runs` passes of up to n sequential requests (each pass also bounded to 30 s). */
async function measure(
  get: (p: string) => Promise<{ ms: number; status: number; body: string }>,
  paths: string[],
  n: number,
  runs: number,
  expect: (status: number, body: string) => boolean,
): Promise<{ median: number; p99: number; n: number }[]> {
  for (let i = 0; i < Math.min(50, n); i++) await get(paths[i % paths.length]!); // warm-up
  const out: { median: number; p99: number; n: number }[] = [];
  for (let r = 0; r < runs; r++) {
    const lat: number[] = [];
    const end = performance.now() + 30_000;
    for (let i = 0; i < n && performance.now() < end; i++) {
      const res = await get(paths[(r * n + i) % paths.length]!);
      if (!expect(res.status, res.body)) throw new Error(`unexpected answer HTTP ${res.status}: ${res.body.slice(0, 300)}`);
      lat.push(res.ms);
    }
    lat.sort((a, b) => a - b);
    out.push({ median: percentile(lat, 50), p99: percentile(lat, 99), n: lat.length });
  }
  return out;
}

interface Backend {
  name: string;
  /** The DNS name every fixture row carries (they are copies of one certificate). */
  dnsName: string;
  extraEnv: Record<string, string>;
  insert(count: number, offset: number): Promise<number>;
  sampleSerials(n: number): Promise<string[]>;
  /** (createdAt, serial) of the row at this offset in the list order (createdAt desc, serial desc). */
  rowAt(offset: number): Promise<{ createdAt: Date; serial: string }>;
  count(): Promise<number>;
  close(): Promise<void>;
}

function dnsNameOf(t: TemplateRow): string {
  const dns = (JSON.parse(t.sans) as { type: string; value: string }[]).find((n) => n.type === 'dns');
  if (!dns) throw new Error('the template certificate has no DNS name');
  return dns.value;
}

async function sqliteBackend(dataDir: string, templateSerial: string): Promise<Backend> {
  const file = join(dataDir, 'signet.db');
  const t = sqliteTemplate(file, templateSerial);
  const base = Math.floor(Date.now() / 1000) - 120;
  const ro = () => new Database(file, { readonly: true });
  return {
    name: 'SQLite',
    extraEnv: {},
    dnsName: dnsNameOf(t),
    insert: async (count, offset) => sqliteBulkInsert(file, t, { count, offset, status: 'good', baseEpoch: base }),
    sampleSerials: async (n) => {
      const db = ro();
      try {
        return (db.prepare('SELECT serial FROM "Certificate" ORDER BY random() LIMIT ?').all(n) as { serial: string }[]).map((r) => r.serial);
      } finally {
        db.close();
      }
    },
    rowAt: async (offset) => {
      const db = ro();
      try {
        const r = db.prepare('SELECT "createdAt", serial FROM "Certificate" ORDER BY "createdAt" DESC, serial DESC LIMIT 1 OFFSET ?').get(offset) as {
          createdAt: string;
          serial: string;
        };
        return { createdAt: new Date(r.createdAt), serial: r.serial };
      } finally {
        db.close();
      }
    },
    count: async () => {
      const db = ro();
      try {
        return (db.prepare('SELECT count(*) AS n FROM "Certificate"').get() as { n: number }).n;
      } finally {
        db.close();
      }
    },
    close: async () => undefined,
  };
}

async function pgBackend(url: string, templateSerial: string): Promise<Backend> {
  const t = await pgTemplate(url, templateSerial);
  const base = Math.floor(Date.now() / 1000) - 120;
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  return {
    name: 'PostgreSQL',
    extraEnv: { DATABASE_URL: url },
    dnsName: dnsNameOf(t),
    insert: (count, offset) => pgBulkInsert(url, t, { count, offset, status: 'good', baseEpoch: base }),
    sampleSerials: async (n) =>
      (await c.query('SELECT serial FROM "Certificate" ORDER BY random() LIMIT $1', [n])).rows.map((r: { serial: string }) => r.serial),
    rowAt: async (offset) => {
      const r = (await c.query('SELECT "createdAt", serial FROM "Certificate" ORDER BY "createdAt" DESC, serial DESC LIMIT 1 OFFSET $1', [offset])).rows[0] as {
        createdAt: Date;
        serial: string;
      };
      return r;
    },
    count: async () => Number((await c.query('SELECT count(*) AS n FROM "Certificate"')).rows[0].n),
    close: () => c.end(),
  };
}

async function resetPgDatabase(): Promise<string> {
  const c = new pg.Client({ connectionString: PG_ADMIN });
  await c.connect();
  try {
    await c.query(`DROP DATABASE IF EXISTS ${PG_DB} WITH (FORCE)`);
    await c.query(`CREATE DATABASE ${PG_DB}`);
  } finally {
    await c.end();
  }
  const u = new URL(PG_ADMIN);
  u.pathname = `/${PG_DB}`;
  return u.toString();
}

async function dropPgDatabase(): Promise<void> {
  const c = new pg.Client({ connectionString: PG_ADMIN });
  await c.connect();
  try {
    await c.query(`DROP DATABASE IF EXISTS ${PG_DB} WITH (FORCE)`);
  } finally {
    await c.end();
  }
}

export async function inventoryWorkload(): Promise<WorkloadReport> {
  const runs = RUNS();
  const sizes = (process.env.BENCH_INVENTORY_SIZES ?? '100000,1000000').split(',').map(Number);
  const nStatus = Number(process.env.BENCH_INVENTORY_REQUESTS ?? 2000);
  const nList = Math.max(50, Math.floor(nStatus / 10));
  const report = newReport('inventory', {
    runs,
    sizes,
    statusRequestsPerRun: nStatus,
    listRequestsPerRun: nList,
    pageLimit: 50,
    mode: 'sequential requests on one keep-alive connection; latency = request write to last byte',
  });
  const series: Series[] = [];
  const { csrs } = await csrPool(2000);
  let profile = '';
  for (const backendName of ['SQLite', 'PostgreSQL']) {
    if (!selected(backendName)) continue;
    const dir = tempDir(`inventory-${backendName.toLowerCase()}`);
    let backend: Backend | undefined;
    let server: SignetServer | undefined;
    try {
      const pgUrl = backendName === 'PostgreSQL' ? await resetPgDatabase() : undefined;
      const extra = { SIGNET_INTERMEDIATE_KEY: 'ecdsa-p256', ...(pgUrl ? { DATABASE_URL: pgUrl } : {}) };
      const dataDir = join(dir, 'data');
      server = await startSignet(dataDir, extra);
      const r = await api<{ serial: string }>(server, 'POST', '/api/v1/certificates', { csr: csrs[0], profile: 'server' });
      if (r.status !== 201) throw new Error(`issue failed: ${JSON.stringify(r.json)}`);
      await server.stop();
      server = undefined;
      backend = pgUrl ? await pgBackend(pgUrl, r.json.serial) : await sqliteBackend(dataDir, r.json.serial);
      report.commands.push(`[${backendName}] ${startSignetCommand(dataDir, extra)}`);
      let have = await backend.count();
      for (const size of sizes) {
        const add = size - have;
        if (add > 0) {
          process.stderr.write(`inventory: ${backendName}: inserting ${fmt(add)} rows\n`);
          const ms = await backend.insert(add, have);
          report.notes.push(`${backendName}: bulk INSERT of ${fmt(add)} rows (up to ${fmt(size)}) took ${fmt(ms / 1000, 1)} s`);
          have = size;
        }
        server = await startSignet(
          dataDir,
          extra,
          PROFILE() && size === sizes[sizes.length - 1] && backendName === 'SQLite' ? { cpuProfDir: join(dir, 'prof') } : {},
        );
        const serials = await backend.sampleSerials(Math.min(nStatus, 5000));
        const deep = await backend.rowAt(Math.floor(size * 0.9));
        const cursor = Buffer.from(JSON.stringify([deep.createdAt.toISOString(), deep.serial])).toString('base64url');
        const g = getter(server.port, server.token);
        const statusOk = (st: number, body: string) => st === 200 && body.includes('"status":"good"');
        const pageOk = (st: number, body: string) => st === 200 && (JSON.parse(body) as { items: unknown[] }).items.length === 50;
        const st = await measure(
          g.get,
          serials.map((s) => `/api/v1/certificates/${s}/status`),
          nStatus,
          runs,
          statusOk,
        );
        series.push({
          backend: backendName,
          rows: size,
          query: 'status GET /api/v1/certificates/{serial}/status (random serials)',
          runs: st,
          check: `${serials.length} distinct serials, all "good"`,
        });
        const first = await measure(g.get, ['/api/v1/certificates?limit=50'], nList, runs, pageOk);
        series.push({ backend: backendName, rows: size, query: 'list first page ?limit=50', runs: first, check: '50 items' });
        const dp = await measure(g.get, [`/api/v1/certificates?limit=50&cursor=${cursor}`], nList, runs, pageOk);
        series.push({
          backend: backendName,
          rows: size,
          query: `list page at row ${fmt(Math.floor(size * 0.9))} ?limit=50&cursor=…`,
          runs: dp,
          check: '50 items',
        });
        type Page = { items: unknown[]; nextCursor: string | null };
        const page = (body: string) => JSON.parse(body) as Page;
        const byName = await measure(
          g.get,
          [`/api/v1/certificates?limit=50&san=${encodeURIComponent(backend.dnsName)}`],
          nList,
          runs,
          (st, body) => st === 200 && page(body).items.length === 50,
        );
        series.push({ backend: backendName, rows: size, query: 'search by a name every row has ?san=<name>&limit=50', runs: byName, check: '50 items' });
        const literal = await measure(
          g.get,
          ['/api/v1/certificates?limit=50&san=_'],
          nList,
          runs,
          (st, body) => st === 200 && page(body).items.length === 0 && page(body).nextCursor === null,
        );
        series.push({ backend: backendName, rows: size, query: 'search that matches nothing ?san=_ (literal)', runs: literal, check: 'no items, no cursor' });
        const capped = await measure(
          g.get,
          ['/api/v1/certificates?limit=50&subject=%25'],
          Math.min(nList, 20),
          runs,
          (st, body) => st === 200 && page(body).items.length === 0 && page(body).nextCursor !== null,
        );
        series.push({
          backend: backendName,
          rows: size,
          query: 'scan that finds nothing ?subject=% (stops after 10,000 rows)',
          runs: capped,
          check: 'no items, a cursor',
        });
        g.close();
        await server.stop();
        if (PROFILE() && server.profiles()[0]) {
          profile =
            `CPU profile: Signet inventory queries on SQLite with ${fmt(size)} rows (status + list, sequential) under node --cpu-prof\n` +
            summariseProfile(server.profiles()[0]!, [
              'findUnique',
              'findMany',
              'listCertificates',
              'chunk',
              'requireAuth',
              'authenticate',
              'present',
              'json',
              'handle',
              'query',
              'queryRaw',
            ]).text;
        }
        server = undefined;
      }
    } finally {
      await server?.stop();
      await backend?.close();
      if (backendName === 'PostgreSQL') await dropPgDatabase().catch(() => undefined);
      removeTemp(dir);
    }
  }
  report.notes.push(
    'Fixture rows are bulk-INSERTed copies of one real certificate row (same DER and names, with the name-index rows issuance writes; unique 16-byte serials and fingerprints; status good; createdAt one second apart). The deep-page cursor is built from the row at 90% depth the way the server encodes cursors (base64url of [createdAt ISO, serial]).',
  );
  report.tables.push({
    title: `Inventory latency, ms (median over ${runs} runs of the per-run median and p99; min/max of the per-run medians)`,
    headers: ['backend', 'rows', 'query', 'requests/run', 'median ms', 'min', 'max', 'p99 ms', 'check'],
    rows: series.map((s) => [
      s.backend,
      fmt(s.rows),
      s.query,
      s.runs[0]?.n ?? 0,
      median(s.runs.map((r) => r.median)).toFixed(3),
      min(s.runs.map((r) => r.median)).toFixed(3),
      max(s.runs.map((r) => r.median)).toFixed(3),
      median(s.runs.map((r) => r.p99)).toFixed(3),
      s.check,
    ]),
  });
  const med = (s: Series | undefined) => (s ? median(s.runs.map((r) => r.median)) : NaN);
  const big = Math.max(...sizes);
  const small = Math.min(...sizes);
  for (const b of ['SQLite', 'PostgreSQL']) {
    const status = series.find((s) => s.backend === b && s.rows === big && s.query.startsWith('status'));
    if (status)
      report.targets.push({
        name: `inventory ${b}: status median at ${fmt(big)} rows`,
        target: '≤ 1.000 ms',
        value: `${med(status).toFixed(3)} ms`,
        pass: med(status) <= 1,
      });
    const f = series.find((s) => s.backend === b && s.rows === big && s.query.startsWith('list first'));
    const d = series.find((s) => s.backend === b && s.rows === big && s.query.startsWith('list page at'));
    const fs = series.find((s) => s.backend === b && s.rows === small && s.query.startsWith('list first'));
    if (f && d)
      report.targets.push({
        name: `inventory ${b}: deep page (90%) vs first page at ${fmt(big)} rows`,
        target: '≤ 1.5× (independent of depth)',
        value: `${(med(d) / med(f)).toFixed(2)}× (${med(d).toFixed(2)} vs ${med(f).toFixed(2)} ms)`,
        pass: med(d) <= 1.5 * med(f),
      });
    const n = series.find((s) => s.backend === b && s.rows === big && s.query.startsWith('search by a name'));
    if (n && f)
      report.targets.push({
        name: `inventory ${b}: name search page vs first page at ${fmt(big)} rows`,
        target: '≤ 1.5× (an index seek)',
        value: `${(med(n) / med(f)).toFixed(2)}× (${med(n).toFixed(2)} vs ${med(f).toFixed(2)} ms)`,
        pass: med(n) <= 1.5 * med(f),
      });
    const l = series.find((s) => s.backend === b && s.rows === big && s.query.startsWith('search that matches nothing'));
    if (l)
      report.targets.push({
        name: `inventory ${b}: san=_ at ${fmt(big)} rows`,
        target: '≤ 10 ms (was 57–71 s at 100,000 rows)',
        value: `${med(l).toFixed(2)} ms`,
        pass: med(l) <= 10,
      });
    if (f && fs && big !== small)
      report.targets.push({
        name: `inventory ${b}: first page at ${fmt(big)} vs ${fmt(small)} rows`,
        target: '≤ 1.5× (independent of table size)',
        value: `${(med(f) / med(fs)).toFixed(2)}× (${med(f).toFixed(2)} vs ${med(fs).toFixed(2)} ms)`,
        pass: med(f) <= 1.5 * med(fs),
      });
  }
  report.data = { series };
  if (profile) report.profile = profile;
  return report;
}

function startSignetCommand(dataDir: string, extra: Record<string, string>): string {
  return cmdline('node', ['bin/signet.js', 'serve'], signetEnv(dataDir, 0, extra)).replace('SIGNET_PORT=0', 'SIGNET_PORT=<free port>');
}
