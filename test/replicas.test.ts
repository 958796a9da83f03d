/**
 * Issue 6, replicas: three `signet serve` processes started together on one fresh, empty
 * PostgreSQL database. Migrations run once, one hierarchy is created, 3 × 300 concurrent
 * issuances through all replicas give unique serials that are all stored with the DER the
 * client received, the audit chain is one gap-free chain that verifies, a revocation made on
 * one replica reaches OCSP on the others, and CRL numbers only go up and are served everywhere.
 *
 * Always PostgreSQL: this file creates (and drops) its own database, so the SQLite CI pass
 * proves replicas as well.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { BIN, ROOT, freePort, signet } from './helpers/cli.js';
import { childEnv } from './helpers/env.js';
import { newKeyCsr, openssl, TempDir } from './helpers/openssl.js';

const ADMIN_URL = process.env.SIGNET_TEST_POSTGRES ?? 'postgresql://postgres@127.0.0.1:5432/test';
const REPLICAS = 3;
const PER_REPLICA = 300;
const IN_FLIGHT = 16;
const POLL_DEADLINE_MS = 15_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

interface Replica {
  url: string;
  port: number;
  dataDir: string;
  child: ChildProcess;
  out: () => string;
  err: () => string;
  exited: Promise<number | null>;
}

/** Starts `signet serve` without waiting: replicas must race each other on the empty database. */
function spawnReplica(env: Record<string, string>, port: number): Replica {
  const child = spawn(process.execPath, [BIN, 'serve'], { env: childEnv({ ...env, SIGNET_PORT: String(port) }), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => {
    out += d;
  });
  child.stderr!.on('data', (d) => {
    err += d;
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { url: `http://127.0.0.1:${port}`, port, dataDir: env.SIGNET_DATA_DIR!, child, out: () => out, err: () => err, exited };
}

async function waitReady(r: Replica): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (r.child.exitCode !== null) throw new Error(`replica on ${r.port} exited with ${r.child.exitCode}: ${r.err() || r.out()}`);
    try {
      if ((await fetch(`${r.url}/readyz`)).ok) return;
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline) throw new Error(`replica on ${r.port} did not become ready: ${r.err()}`);
    await sleep(100);
  }
}

/** Runs tasks with at most `limit` in flight. */
async function pool<T>(count: number, limit: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, count) }, async () => {
      while (next < count) {
        const i = next++;
        results[i] = await task(i);
      }
    }),
  );
  return results;
}

describe('replicas on one PostgreSQL', () => {
  const dbName = `signet_r_${randomBytes(6).toString('hex')}`;
  const databaseUrl = withDatabase(ADMIN_URL, dbName);
  const masterKey = randomBytes(32).toString('base64');
  const tmp = new TempDir();
  const replicas: Replica[] = [];
  let token: string;
  let db: pg.Client;
  let rootId: string;
  let intId: string;
  let bundlePem: string;
  let intPem: string;
  let csrPem: string;
  const issued: { serial: string; certificate: string; replica: number }[] = [];

  const auth = () => ({ authorization: `Bearer ${token}` });
  async function call(r: Replica, method: string, path: string, body?: unknown) {
    const res = await fetch(r.url + path, {
      method,
      headers: { ...auth(), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let json: any;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, text, json };
  }
  const baseEnv = (dataDir: string, publicPort: number): Record<string, string> => ({
    SIGNET_DATA_DIR: dataDir,
    DATABASE_URL: databaseUrl,
    SIGNET_MASTER_KEY: masterKey,
    SIGNET_LOG_LEVEL: 'warn',
    SIGNET_PUBLIC_URL: `http://127.0.0.1:${publicPort}`,
    SIGNET_OCSP_POLL_MS: '500',
    SIGNET_CRL_COALESCE_MS: '200',
  });

  before(async () => {
    const admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${dbName}`);
    await admin.end();
    db = new pg.Client({ connectionString: databaseUrl });
    await db.connect();

    const ports: number[] = [];
    while (ports.length < REPLICAS) {
      const p = await freePort();
      if (!ports.includes(p)) ports.push(p);
    }
    // All at once, on the same empty database.
    for (const port of ports) replicas.push(spawnReplica(baseEnv(mkdtempSync(join(tmpdir(), 'signet-replica-')), ports[0]!), port));
    await Promise.all(replicas.map(waitReady));

    const withToken = replicas.filter((r) => existsSync(join(r.dataDir, 'admin-token')));
    assert.equal(withToken.length, 1, 'exactly one replica created the hierarchy and wrote the admin token');
    token = readFileSync(join(withToken[0]!.dataDir, 'admin-token'), 'utf8').trim();

    const cas = (await call(replicas[0]!, 'GET', '/api/v1/cas')).json.items as any[];
    rootId = cas.find((c) => c.parentId === null).id;
    intId = cas.find((c) => c.parentId === rootId).id;
    const rootCert = (await call(replicas[1]!, 'GET', `/api/v1/cas/${rootId}`)).json.certificate as string;
    const intCert = (await call(replicas[2]!, 'GET', `/api/v1/cas/${intId}`)).json.certificate as string;
    intPem = tmp.file('int.pem', intCert);
    bundlePem = tmp.file('bundle.pem', rootCert + intCert);
    csrPem = newKeyCsr('replica.example.test', tmp.file('leaf.key'));
  });

  after(async () => {
    for (const r of replicas) if (r.child.exitCode === null) r.child.kill('SIGTERM');
    await Promise.all(replicas.map((r) => Promise.race([r.exited, sleep(10_000)])));
    for (const r of replicas) {
      if (r.child.exitCode === null) r.child.kill('SIGKILL');
      rmSync(r.dataDir, { recursive: true, force: true });
    }
    await db?.end();
    const admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.end();
    tmp.remove();
  });

  test('replicas started together apply each migration once and create one hierarchy', async () => {
    const shipped = readdirSync(join(ROOT, 'prisma', 'postgresql', 'migrations'), { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .sort();
    const rows = (await db.query('SELECT migration_name, finished_at FROM "_prisma_migrations" ORDER BY migration_name')).rows;
    assert.deepEqual(
      rows.map((r) => r.migration_name),
      shipped,
      'one row per migration',
    );
    assert.ok(rows.every((r) => r.finished_at !== null));
    const cas = (await db.query('SELECT id, "parentId" FROM "CertificateAuthority"')).rows;
    assert.equal(cas.length, 2, 'one root and one intermediate, not one per replica');
    assert.equal(Number((await db.query('SELECT COUNT(*) AS n FROM "ApiToken"')).rows[0].n), 1, 'one admin token');
    for (const r of replicas) {
      const ready = await (await fetch(`${r.url}/readyz`)).json();
      assert.deepEqual(ready.checks, { database: 'ok', keys: 'unlocked' });
    }
    // Any replica serves what another created.
    for (const r of replicas) assert.equal((await call(r, 'GET', `/api/v1/cas/${intId}`)).status, 200);
  });

  test(`${REPLICAS} × ${PER_REPLICA} concurrent issuances: all stored, serials unique, one audit chain`, async () => {
    const failures: string[] = [];
    await Promise.all(
      replicas.map((r, ri) =>
        pool(PER_REPLICA, IN_FLIGHT, async () => {
          const res = await call(r, 'POST', '/api/v1/certificates', { csr: csrPem, profile: 'server' });
          if (res.status !== 201) {
            failures.push(`${r.port}: ${res.status} ${res.text}`);
            return;
          }
          issued.push({ serial: res.json.serial, certificate: res.json.certificate, replica: ri });
        }),
      ),
    );
    assert.deepEqual(failures.slice(0, 5), [], `${failures.length} issuance requests failed`);
    assert.equal(issued.length, REPLICAS * PER_REPLICA);
    assert.equal(new Set(issued.map((c) => c.serial)).size, issued.length, 'serials are unique');

    const stored = new Map<string, Buffer>();
    for (const row of (await db.query('SELECT serial, der FROM "Certificate"')).rows) stored.set(row.serial, row.der);
    assert.equal(stored.size, issued.length, 'exactly the returned certificates are stored');
    for (const c of issued) {
      const der = stored.get(c.serial);
      assert.ok(der, `certificate ${c.serial} was returned but is not stored`);
      const b64 = c.certificate.replace(/-----(BEGIN|END) CERTIFICATE-----|\s/g, '');
      assert.ok(Buffer.from(b64, 'base64').equals(der), `stored DER of ${c.serial} differs from what the client received`);
    }

    const seq = (await db.query('SELECT COUNT(*)::int AS n, MIN(seq) AS lo, MAX(seq) AS hi, COUNT(DISTINCT seq)::int AS d FROM "AuditEvent"')).rows[0];
    assert.equal(seq.lo, 1);
    assert.equal(seq.hi, seq.n, 'audit seq has no gaps');
    assert.equal(seq.d, seq.n);
    const issuedEvents = Number((await db.query(`SELECT COUNT(*) AS n FROM "AuditEvent" WHERE action = 'certificate.issued'`)).rows[0].n);
    assert.equal(issuedEvents, issued.length, 'one audit event per certificate');
    const v = signet(['audit', 'verify'], baseEnv(replicas[0]!.dataDir, replicas[0]!.port));
    assert.equal(v.status, 0, v.stdout + v.stderr);
  });

  test('a revocation on replica 1 is reported by OCSP on replicas 2 and 3', async () => {
    assert.ok(issued.length > 0);
    const victim = issued[0]!;
    const certPem = tmp.file('victim.pem', victim.certificate);
    const ocsp = (r: Replica) => {
      const o = openssl(['ocsp', '-issuer', intPem, '-cert', certPem, '-url', `${r.url}/ocsp`, '-CAfile', bundlePem]);
      assert.match(o.stdout + o.stderr, /Response verify OK/, o.stdout + o.stderr);
      return o.stdout;
    };
    // Warm every replica's cache with a `good` answer first: the others must notice the change.
    for (const r of replicas) assert.match(ocsp(r), /victim\.pem: good/);
    const rev = await call(replicas[0]!, 'POST', `/api/v1/certificates/${victim.serial}/revoke`, { reason: 'keyCompromise' });
    assert.equal(rev.status, 200, rev.text);
    assert.match(ocsp(replicas[0]!), /victim\.pem: revoked/, 'the revoking replica answers at once');
    for (const r of replicas.slice(1)) {
      const deadline = Date.now() + POLL_DEADLINE_MS;
      let out = ocsp(r);
      while (!/victim\.pem: revoked/.test(out) && Date.now() < deadline) {
        await sleep(200);
        out = ocsp(r);
      }
      assert.match(out, /victim\.pem: revoked\n[\s\S]*Reason: keyCompromise/, `replica on ${r.port} still answers: ${out}`);
    }
  });

  test('CRLs published from different replicas have unique, increasing numbers; every replica serves the newest', async () => {
    // Revocations on each replica, some at the same moment, each schedules a CRL there.
    const victims = issued.slice(1, 10);
    for (let i = 0; i < 3; i++) {
      await Promise.all(
        replicas.map(async (r, ri) => {
          const v = victims[i * REPLICAS + ri]!;
          const res = await call(r, 'POST', `/api/v1/certificates/${v.serial}/revoke`, { reason: 'superseded' });
          assert.equal(res.status, 200, res.text);
        }),
      );
      await sleep(400); // past the coalescing delay, so each round publishes
    }
    const revoked = new Set([issued[0]!.serial, ...victims.map((v) => v.serial)]);

    // Wait until all scheduled publications have landed: the newest CRL lists every revocation.
    const newest = async () => (await db.query('SELECT number, der FROM "Crl" WHERE "caId" = $1 ORDER BY number DESC LIMIT 1', [intId])).rows[0];
    const entriesOf = (der: Buffer) => {
      const text = openssl(['crl', '-inform', 'DER', '-in', tmp.file(`crl-${Math.random()}.der`, der), '-noout', '-text']).stdout;
      return new Set([...text.matchAll(/Serial Number: ([0-9A-F]+)/g)].map((m) => m[1]!.toLowerCase().replace(/^0+/, '')));
    };
    const norm = (s: string) => s.replace(/^0+/, '');
    let deadline = Date.now() + POLL_DEADLINE_MS;
    let head = await newest();
    while ([...revoked].some((s) => !entriesOf(head.der).has(norm(s))) && Date.now() < deadline) {
      await sleep(250);
      head = await newest();
    }
    assert.ok(
      [...revoked].every((s) => entriesOf(head.der).has(norm(s))),
      'the newest CRL lists every revocation',
    );

    const rows = (await db.query('SELECT number, "createdAt", "thisUpdate" FROM "Crl" WHERE "caId" = $1 ORDER BY "createdAt", number', [intId])).rows;
    const numbers = rows.map((r) => BigInt(r.number));
    assert.ok(numbers.length >= 2, `several CRLs were published (${numbers.length})`);
    assert.equal(new Set(numbers.map(String)).size, numbers.length, 'CRL numbers are unique');
    for (let i = 1; i < numbers.length; i++) assert.ok(numbers[i]! > numbers[i - 1]!, `CRL numbers increase in publication order: ${numbers.join(', ')}`);
    const caCounter = BigInt((await db.query('SELECT "crlNumber" FROM "CertificateAuthority" WHERE id = $1', [intId])).rows[0].crlNumber);
    assert.ok(caCounter >= numbers[numbers.length - 1]!, 'the CA counter is at least the highest CRL number');

    // Every replica serves the newest CRL (others pick it up within seconds). A publication
    // still scheduled on another replica may land meanwhile, so "newest" is at least the one
    // read above, and whatever a replica serves must list every revocation.
    const max = BigInt(head.number);
    for (const r of replicas) {
      deadline = Date.now() + POLL_DEADLINE_MS;
      let served = -1n;
      let der = Buffer.alloc(0);
      for (;;) {
        const res = await fetch(`${r.url}/pki/${intId}.crl`);
        assert.equal(res.status, 200);
        der = Buffer.from(await res.arrayBuffer());
        const text = openssl(['crl', '-inform', 'DER', '-in', tmp.file(`served-${r.port}-${Math.random()}.der`, der), '-noout', '-text']).stdout;
        served = BigInt(/X509v3 CRL Number:\s*\n\s*(\S+)/.exec(text)![1]!);
        if (served >= max || Date.now() > deadline) break;
        await sleep(250);
      }
      assert.ok(served >= max, `replica on ${r.port} serves CRL ${served}, the newest is ${max}`);
      const listed = entriesOf(der);
      assert.ok(
        [...revoked].every((s) => listed.has(norm(s))),
        `the CRL ${served} served by ${r.port} lists every revocation`,
      );
    }
  });
});
