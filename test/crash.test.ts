/**
 * Issue 6, crash safety: a real `signet serve` (SQLite, or PostgreSQL under test:pg) is killed
 * with SIGKILL in the middle of sustained concurrent issuance and revocation, twice. After each
 * restart — with no manual repair — every certificate a client received is stored with the same
 * DER, every acknowledged revocation is stored, no serial is used twice, every stored change has
 * its audit event, the chain verifies, and the service issues again.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { api, signet, startServer, type RunningServer } from './helpers/cli.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';
import { newKeyCsr, openssl, TempDir } from './helpers/openssl.js';
import { sql } from './helpers/sql.js';
import { pemToDer } from '../src/pki/pem.js';

const WORKERS = 12;
const KILL_AFTER = 150;
const ROUNDS = 2;
const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('SIGKILL during sustained issuance and revocation', () => {
  let env: TestEnv;
  let server: RunningServer;
  const tmp = new TempDir();
  let csrPem: string;
  /** What clients actually received: 201 bodies and 200 revocation answers. */
  const received = new Map<string, Buffer>();
  const revoked = new Set<string>();

  before(async () => {
    env = await createTestEnv({ SIGNET_CRL_COALESCE_MS: '100' });
    server = await startServer(env.env);
    env.env.SIGNET_PORT = String(server.port); // restarts come back on the same address
    csrPem = newKeyCsr('crash.example.test', tmp.file('leaf.key'));
  });
  after(async () => {
    await server?.stop('SIGKILL');
    await env?.cleanup();
    tmp.remove();
  });

  /**
   * Workers issue (and every fifth request revoke) until the server dies under them: each keeps
   * sending until one of its own requests goes unanswered, so the kill always lands amid load
   * (when the workers stopped at the kill decision instead, a test process slower than the
   * server could have read every answer already and the kill hit an idle server).
   */
  async function loadUntilKilled(): Promise<{ ok: number; failedAfterKill: number }> {
    let ok = 0;
    let failedAfterKill = 0;
    let killed = false;
    let killing: Promise<unknown> | undefined;
    const serials = [...received.keys()].filter((s) => !revoked.has(s));
    /** A request that got no answer: only acceptable once the server has been killed. */
    const send = async (method: string, path: string, body: unknown, w: number) => {
      try {
        return await api(server, method, path, body);
      } catch (e) {
        if (!killed)
          throw new Error(
            `worker ${w}: ${method} ${path} got no answer before the kill: ${(e as Error).message}; server alive: ${isAlive(server.pid)}; server stderr: ${server.stderr().slice(-3000)}`,
            { cause: e },
          );
        failedAfterKill++;
        return undefined;
      }
    };
    const worker = async (w: number) => {
      for (let i = 0; ; i++) {
        if (i % 5 === 4 && serials.length) {
          const serial = serials.pop()!;
          const r = await send('POST', `/api/v1/certificates/${serial}/revoke`, { reason: 'keyCompromise' }, w);
          if (!r) return;
          assert.equal(r.status, 200, r.text);
          revoked.add(serial);
        } else {
          const r = await send('POST', '/api/v1/certificates', { csr: csrPem, profile: 'server' }, w);
          if (!r) return;
          assert.equal(r.status, 201, r.text);
          received.set(r.json.serial, pemToDer(r.json.certificate, ['CERTIFICATE']).der);
          serials.unshift(r.json.serial);
          if (++ok >= KILL_AFTER && !killing) {
            killed = true;
            killing = server.stop('SIGKILL');
          }
        }
      }
    };
    await Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));
    await killing;
    return { ok, failedAfterKill };
  }

  /** Acknowledged revocations the served CRL does not list (polled: publication is asynchronous). */
  async function missingFromCrl(): Promise<string[]> {
    const cas = (await api(server, 'GET', '/api/v1/cas')).json.items as any[];
    const intId = cas.find((c) => c.parentId !== null).id;
    const deadline = Date.now() + 15_000;
    for (;;) {
      const res = await fetch(`${server.url}/pki/${intId}.crl`);
      assert.equal(res.status, 200);
      const text = openssl([
        'crl',
        '-inform',
        'DER',
        '-in',
        tmp.file(`crl-${Math.random()}.der`, Buffer.from(await res.arrayBuffer())),
        '-noout',
        '-text',
      ]).stdout;
      const listed = new Set([...text.matchAll(/Serial Number: ([0-9A-F]+)/g)].map((m) => m[1]!.toLowerCase().replace(/^0+/, '')));
      const missing = [...revoked].filter((s) => !listed.has(s.replace(/^0+/, '')));
      if (!missing.length || Date.now() > deadline) return missing;
      await sleep(250);
    }
  }

  async function checkConsistent(label: string) {
    const rows = await sql<{ serial: string; der: Uint8Array; status: string }>(env, 'SELECT serial, der, status FROM "Certificate"');
    const stored = new Map(rows.map((r) => [r.serial, r]));
    assert.equal(stored.size, rows.length, `${label}: no serial twice`);
    for (const [serial, der] of received) {
      const row = stored.get(serial);
      assert.ok(row, `${label}: certificate ${serial} was returned to a client but is not stored`);
      assert.ok(Buffer.from(row.der).equals(der), `${label}: stored DER of ${serial} differs from what the client received`);
    }
    for (const serial of revoked) assert.equal(stored.get(serial)?.status, 'revoked', `${label}: acknowledged revocation of ${serial} was lost`);
    // Every stored change committed together with its audit event (a crash cannot split them).
    const count = async (q: string) => Number((await sql(env, q))[0].n);
    assert.equal(
      await count(`SELECT COUNT(*) AS n FROM "AuditEvent" WHERE action = 'certificate.issued'`),
      rows.length,
      `${label}: one audit event per stored certificate`,
    );
    assert.equal(
      await count(`SELECT COUNT(*) AS n FROM "AuditEvent" WHERE action = 'certificate.revoked'`),
      rows.filter((r) => r.status === 'revoked').length,
      `${label}: one audit event per stored revocation`,
    );
    const seq = (await sql(env, 'SELECT COUNT(*) AS n, MIN(seq) AS lo, MAX(seq) AS hi FROM "AuditEvent"'))[0];
    assert.equal(Number(seq.lo), 1);
    assert.equal(Number(seq.hi), Number(seq.n), `${label}: audit seq has no gaps`);
    const v = signet(['audit', 'verify'], env.env);
    assert.equal(v.status, 0, `${label}: ${v.stdout}${v.stderr}`);
  }

  for (let round = 1; round <= ROUNDS; round++) {
    test(`kill ${round}: every received certificate survives, restart needs no repair, issuance continues`, async () => {
      const { ok, failedAfterKill } = await loadUntilKilled();
      assert.ok(ok >= KILL_AFTER);
      assert.equal(failedAfterKill, WORKERS, 'every worker was sending when the server died');
      // Restart on the same data directory / database, with nothing done in between.
      server = await startServer(env.env);
      const ready = await (await fetch(server.url + '/readyz')).json();
      assert.deepEqual(ready.checks, { database: 'ok', keys: 'unlocked' });
      await checkConsistent(`after kill ${round}`);
      // A revocation acknowledged just before the kill had its CRL publication still pending:
      // the restarted server must publish it by itself, before any new revocation.
      assert.deepEqual(await missingFromCrl(), [], `after kill ${round}: acknowledged revocations missing from the served CRL`);

      const r = await api(server, 'POST', '/api/v1/certificates', { csr: csrPem, profile: 'server' });
      assert.equal(r.status, 201, r.text);
      assert.ok(!received.has(r.json.serial), 'a new serial');
      received.set(r.json.serial, pemToDer(r.json.certificate, ['CERTIFICATE']).der);
      const rev = await api(server, 'POST', `/api/v1/certificates/${r.json.serial}/revoke`, { reason: 'superseded' });
      assert.equal(rev.status, 200, rev.text);
      revoked.add(r.json.serial);
      await checkConsistent(`after restart ${round}`);
    });
  }

  test('the CRL served at the end lists every acknowledged revocation', async () => {
    assert.deepEqual(await missingFromCrl(), []);
  });
});
