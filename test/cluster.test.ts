/**
 * SIGNET_WORKERS=2: two HTTP worker processes share the port. Issuance works through both,
 * a revocation made through one is reported by OCSP from every worker (relayed, not polled),
 * only one worker publishes CRLs (numbers stay in order), and SIGTERM stops them all.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { api, signet, startServer, type RunningServer } from './helpers/cli.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';
import { csrMaker, openssl, TempDir } from './helpers/openssl.js';
import { sql } from './helpers/sql.js';

describe('several worker processes (SIGNET_WORKERS=2)', () => {
  let env: TestEnv;
  let server: RunningServer;
  const tmp = new TempDir();
  const makeCsr = csrMaker(tmp);

  before(async () => {
    env = await createTestEnv({ SIGNET_WORKERS: '2', SIGNET_CRL_COALESCE_MS: '200', SIGNET_OCSP_POLL_MS: '60000' });
    server = await startServer(env.env);
  });
  after(async () => {
    await server?.stop();
    await env?.cleanup();
    tmp.remove();
  });

  test('prints one serving line for the whole cluster', async () => {
    for (let i = 0; i < 100 && !/with 2 workers/.test(server.stdout()); i++) await new Promise((r) => setTimeout(r, 100));
    assert.match(server.stdout(), /Signet is serving on http:\/\/127\.0\.0\.1:\d+ with 2 workers/);
    assert.equal((server.stdout().match(/initialised a new CA hierarchy/g) ?? []).length, 1);
  });

  test('/readyz is 200 only once every worker has started; requests right after it all succeed', async () => {
    const r = await fetch(`${server.url}/readyz`);
    const body = (await r.json()) as { status: string; checks: Record<string, string> };
    assert.equal(r.status, 200);
    assert.equal(body.checks.cluster, 'all workers started');
    // A fresh cluster: the first burst after the first 200 reaches both workers (new
    // connections are dealt round-robin) and none may meet a worker that is still starting.
    const fresh = await createTestEnv({ SIGNET_WORKERS: '2' });
    const s2 = await startServer(fresh.env);
    try {
      const burst = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          api(s2, 'POST', '/api/v1/certificates', { csr: makeCsr(`DNS:first${i}.cluster.test`), profile: 'server' }, { connection: 'close' }),
        ),
      );
      for (const b of burst) assert.equal(b.status, 201, b.text);
    } finally {
      await s2.stop();
      await fresh.cleanup();
    }
  });

  test('concurrent issuance through both workers: unique serials, one audit chain', async () => {
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => api(server, 'POST', '/api/v1/certificates', { csr: makeCsr(`DNS:w${i}.cluster.test`), profile: 'server' })),
    );
    for (const r of results) assert.equal(r.status, 201, r.text);
    assert.equal(new Set(results.map((r) => r.json.serial)).size, 40);
    const v = signet(['audit', 'verify'], env.env);
    assert.equal(v.status, 0, v.stderr);
  });

  test("a revocation is reported by OCSP from every worker, and lands on the one CRL publisher's CRL", async () => {
    const issued = await api(server, 'POST', '/api/v1/certificates', { csr: makeCsr('DNS:revoked.cluster.test'), profile: 'server' });
    assert.equal(issued.status, 201, issued.text);
    const leaf = tmp.file('leaf.pem', issued.json.certificate);
    const chain = tmp.file('chain.pem', issued.json.chain);
    const cas = (await api(server, 'GET', '/api/v1/cas')).json.items;
    const root = cas.find((c: any) => c.parentId === null);
    const bundle = tmp.file('bundle.pem', (await api(server, 'GET', `/api/v1/cas/${root.id}`)).json.certificate + issued.json.chain);
    const ask = () => openssl(['ocsp', '-issuer', chain, '-cert', leaf, '-url', `${server.url}/ocsp`, '-CAfile', bundle, '-no_nonce']).stdout;
    // Warm both workers' caches with "good" (round-robin spreads the connections).
    for (let i = 0; i < 6; i++) assert.match(ask(), /leaf.pem: good/);
    const r = await api(server, 'POST', `/api/v1/certificates/${issued.json.serial}/revoke`, { reason: 'keyCompromise' });
    assert.equal(r.status, 200, r.text);
    // OCSP polling is disabled (60 s) in this test: only the relay can refresh the other worker.
    let streak = 0;
    for (let i = 0; i < 100 && streak < 8; i++) {
      streak = /leaf.pem: revoked/.test(ask()) ? streak + 1 : 0;
      if (streak === 0) await new Promise((res) => setTimeout(res, 100));
    }
    assert.equal(streak, 8, 'eight queries in a row, spread over both workers, report revoked');
    let listed = false;
    for (let i = 0; i < 50 && !listed; i++) {
      const crl = await fetch(`${server.url}/pki/${issued.json.caId}.crl`);
      const text = openssl(['crl', '-inform', 'DER', '-noout', '-text'], Buffer.from(await crl.arrayBuffer())).stdout;
      listed = text.toUpperCase().includes(issued.json.serial.toUpperCase());
      if (!listed) await new Promise((res) => setTimeout(res, 200));
    }
    assert.ok(listed, 'the revoked serial is on the CRL');
    const numbers = (await sql<{ number: string | number }>(env, 'SELECT number FROM "Crl" WHERE "caId" = ? ORDER BY "createdAt"', [issued.json.caId])).map(
      (x) => Number(x.number),
    );
    assert.deepEqual(
      numbers,
      [...numbers].sort((a, b) => a - b),
      'CRLs stored in number order',
    );
  });

  test('SIGTERM stops the primary and its workers with exit code 0', async () => {
    assert.equal(await server.stop('SIGTERM'), 0);
    const res = await fetch(`${server.url}/healthz`).then(
      () => 'answered',
      () => 'refused',
    );
    assert.equal(res, 'refused');
  });
});
