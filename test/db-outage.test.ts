/**
 * Issue 6, PostgreSQL outages: a TCP proxy (node:net) sits between `signet serve` and
 * PostgreSQL, so the test can take the database away and bring it back. Down at start: alive,
 * not ready, every API call a 503 problem with Retry-After, and ready by itself once the
 * database appears. Down while serving (connections cut, in-flight requests included): 503s,
 * nothing half-written, and issuance resumes without a restart.
 *
 * Always PostgreSQL: this file creates (and drops) its own database, so the SQLite CI pass
 * proves it as well.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { BIN, freePort, signet } from './helpers/cli.js';
import { childEnv } from './helpers/env.js';
import { newKeyCsr, TempDir } from './helpers/openssl.js';

const ADMIN_URL = process.env.SIGNET_TEST_POSTGRES ?? 'postgresql://postgres@127.0.0.1:5432/test';
const DEADLINE_MS = 45_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A TCP forwarder that can be stopped (refusing connections, cutting open ones) and restarted on the same port. */
class DbProxy {
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  constructor(
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {}

  async up(): Promise<void> {
    const server = createServer((client) => {
      const upstream = connect(this.target.port, this.target.host);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.server = server;
  }

  async down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  get connections(): number {
    return this.sockets.size;
  }
}

describe('PostgreSQL outages', () => {
  const dbName = `signet_o_${randomBytes(6).toString('hex')}`;
  const admin = new URL(ADMIN_URL);
  const direct = (() => {
    const u = new URL(ADMIN_URL);
    u.pathname = `/${dbName}`;
    return u.toString();
  })();
  const tmp = new TempDir();
  const dataDir = mkdtempSync(join(tmpdir(), 'signet-outage-'));
  let proxy: DbProxy;
  let child: ChildProcess;
  let exited: Promise<number | null>;
  let _out = '';
  let err = '';
  let url: string;
  let token = '';
  let env: Record<string, string>;
  let csrPem: string;
  let db: pg.Client;

  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(url + path, {
      method,
      signal: AbortSignal.timeout(60_000),
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    }).catch(async (e: Error) => {
      await Promise.race([exited, sleep(500)]);
      throw new Error(
        `${method} ${path} got no answer (${e.message}; ${(e.cause as Error | undefined)?.message ?? ''}); signet serve exit code ${child.exitCode}; stderr:\n${err.slice(-4000)}`,
        { cause: e },
      );
    });
    const text = await res.text();
    let json: any;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json };
  };
  const issue = () => call('POST', '/api/v1/certificates', { csr: csrPem, profile: 'server' });
  const assertUnavailable = (r: Awaited<ReturnType<typeof call>>, what: string) => {
    assert.equal(r.status, 503, `${what}: ${r.status} ${r.text}`);
    assert.match(r.headers.get('content-type') ?? '', /^application\/problem\+json/, what);
    assert.ok(Number(r.headers.get('retry-after')) > 0, `${what}: Retry-After`);
    assert.equal(r.json.status, 503);
    assert.ok(r.json.type && r.json.title && r.json.detail, `${what}: a complete problem document`);
  };
  // One statement, one snapshot: the CRL publisher may append an audit event (crl.published)
  // between two separate reads, which would look like a gap in seq.
  const counts = async () => {
    const row = (
      await db.query(`SELECT (SELECT COUNT(*) FROM "Certificate") AS certificates,
        (SELECT COUNT(*) FROM "AuditEvent" WHERE action = 'certificate.issued') AS "issuedEvents",
        (SELECT COUNT(*) FROM "AuditEvent") AS events,
        (SELECT COALESCE(MAX(seq), 0) FROM "AuditEvent") AS "maxSeq"`)
    ).rows[0];
    return { certificates: Number(row.certificates), issuedEvents: Number(row.issuedEvents), events: Number(row.events), maxSeq: Number(row.maxSeq) };
  };

  before(async () => {
    const c = new pg.Client({ connectionString: ADMIN_URL });
    await c.connect();
    await c.query(`CREATE DATABASE ${dbName}`);
    await c.end();
    db = new pg.Client({ connectionString: direct });
    await db.connect();
    proxy = new DbProxy(await freePort(), { host: admin.hostname, port: Number(admin.port || 5432) });
    const viaProxy = new URL(ADMIN_URL);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    viaProxy.pathname = `/${dbName}`;
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    env = {
      SIGNET_DATA_DIR: dataDir,
      DATABASE_URL: viaProxy.toString(),
      SIGNET_MASTER_KEY: randomBytes(32).toString('base64'),
      SIGNET_LOG_LEVEL: 'warn',
      SIGNET_PORT: String(port),
    };
    csrPem = newKeyCsr('outage.example.test', tmp.file('leaf.key'));
  });

  after(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(10_000)]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    await proxy?.down();
    await db?.end();
    const c = new pg.Client({ connectionString: ADMIN_URL });
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await c.end();
    rmSync(dataDir, { recursive: true, force: true });
    tmp.remove();
  });

  test('database down at start: alive, not ready, API 503; ready by itself once it is reachable', async () => {
    child = spawn(process.execPath, [BIN, 'serve'], { env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d) => {
      _out += d;
    });
    child.stderr!.on('data', (d) => {
      err += d;
    });
    exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
    let deadline = Date.now() + DEADLINE_MS;
    for (;;) {
      assert.equal(child.exitCode, null, `signet serve exited: ${err}`);
      try {
        if ((await fetch(`${url}/healthz`)).ok) break;
      } catch {
        /* not listening yet */
      }
      assert.ok(Date.now() < deadline, 'signet serve never answered /healthz');
      await sleep(100);
    }
    const ready = await fetch(`${url}/readyz`);
    assert.equal(ready.status, 503);
    const body = await ready.json();
    assert.equal(body.status, 'not ready');
    assert.match(body.checks.database, /\S/, 'readiness says why');
    assertUnavailable(await call('GET', '/api/v1/cas'), 'GET /api/v1/cas while starting');
    assertUnavailable(await issue(), 'issuance while starting');
    const ocsp = await fetch(`${url}/ocsp`, { method: 'POST', headers: { 'content-type': 'application/ocsp-request' }, body: new Uint8Array([0x30, 0x00]) });
    assert.equal(ocsp.status, 503, 'OCSP while starting');
    // Still waiting, not dead, and it said so.
    for (const until = Date.now() + DEADLINE_MS; !/waiting for the database/.test(err) && Date.now() < until; ) await sleep(100);
    assert.equal(child.exitCode, null);
    assert.match(err, /waiting for the database/);
    assert.equal((await fetch(`${url}/healthz`)).status, 200);

    await proxy.up();
    deadline = Date.now() + DEADLINE_MS;
    while (!(await fetch(`${url}/readyz`)).ok) {
      assert.equal(child.exitCode, null, `signet serve exited: ${err}`);
      assert.ok(Date.now() < deadline, 'never became ready after the database came back');
      await sleep(200);
    }
    token = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
    assert.equal((await call('GET', '/api/v1/cas')).json.items.length, 2);
    const r = await issue();
    assert.equal(r.status, 201, r.text);
  });

  test('database lost while serving: 503 and nothing half-written; issuance resumes without a restart', async () => {
    assert.ok(token, 'the server is serving');
    const issued = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const r = await issue();
      assert.equal(r.status, 201, r.text);
      issued.add(r.json.serial);
    }
    assert.ok(proxy.connections > 0, 'the server holds connections through the proxy');

    // Cut the database while requests are in flight: each answers 201 (committed) or 503.
    let stop = false;
    const statuses: number[] = [];
    const load = Promise.all(
      Array.from({ length: 8 }, async () => {
        while (!stop) {
          const r = await issue();
          statuses.push(r.status);
          if (r.status === 201) issued.add(r.json.serial);
          else assertUnavailable(r, 'issuance during the cut');
          if (r.status !== 201) await sleep(50);
        }
      }),
    );
    while (statuses.length < 10) await sleep(10);
    await proxy.down();
    const cutAt = statuses.length;
    let deadline = Date.now() + DEADLINE_MS;
    while (statuses.slice(cutAt).filter((s) => s === 503).length < 8 && Date.now() < deadline) await sleep(50);
    stop = true;
    await load;
    assert.ok(statuses.slice(cutAt).includes(503), `requests after the cut were refused: ${statuses.slice(cutAt).join(',')}`);

    // While it is down: liveness yes, readiness no, every kind of change a 503.
    assert.equal((await fetch(`${url}/healthz`)).status, 200);
    const ready = await fetch(`${url}/readyz`);
    assert.equal(ready.status, 503);
    assert.match((await ready.json()).checks.database, /unreachable/);
    assertUnavailable(await issue(), 'issuance while the database is down');
    assertUnavailable(
      await call('POST', `/api/v1/certificates/${[...issued][0]}/revoke`, { reason: 'keyCompromise' }),
      'revocation while the database is down',
    );
    assertUnavailable(await call('GET', '/api/v1/cas'), 'listing while the database is down');

    // Nothing partial: exactly the acknowledged certificates (and any whose commit raced the cut)
    // are stored, each with its audit event, and the chain is intact.
    const mid = await counts();
    assert.equal(mid.certificates, mid.issuedEvents, 'every stored certificate has its audit event');
    assert.equal(mid.maxSeq, mid.events, 'audit seq has no gaps');
    const stored = new Set((await db.query('SELECT serial FROM "Certificate"')).rows.map((r) => r.serial as string));
    for (const s of issued) assert.ok(stored.has(s), `acknowledged certificate ${s} is stored`);
    assert.equal((await db.query(`SELECT COUNT(*) AS n FROM "Certificate" WHERE status <> 'good'`)).rows[0].n, '0', 'the refused revocation changed nothing');

    // Back: the same process recovers by itself.
    const pid = child.pid;
    await proxy.up();
    deadline = Date.now() + DEADLINE_MS;
    let r = await issue();
    while (r.status !== 201 && Date.now() < deadline) {
      assertUnavailable(r, 'issuance while reconnecting');
      await sleep(250);
      r = await issue();
    }
    assert.equal(r.status, 201, r.text);
    issued.add(r.json.serial);
    for (let i = 0; i < 5; i++) {
      const again = await issue();
      assert.equal(again.status, 201, again.text);
      issued.add(again.json.serial);
    }
    const rev = await call('POST', `/api/v1/certificates/${r.json.serial}/revoke`, { reason: 'keyCompromise' });
    assert.equal(rev.status, 200, rev.text);
    assert.equal((await fetch(`${url}/readyz`)).status, 200);
    assert.equal(child.pid, pid);
    assert.equal(child.exitCode, null, 'no restart');

    const end = await counts();
    assert.equal(end.certificates, end.issuedEvents);
    assert.equal(end.maxSeq, end.events);
    const v = signet(['audit', 'verify'], { ...env, DATABASE_URL: direct, SIGNET_DATA_DIR: join(dataDir, 'cli') });
    assert.equal(v.status, 0, v.stdout + v.stderr);
  });
});
