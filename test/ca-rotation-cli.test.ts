/**
 * CA rotation and renewal through the real CLI and the real server: the REST routes and their
 * refusals (problem+json, nothing stored), /readyz staying ready through a rotation, the CA
 * gauges on /metrics, `ca list`, and kill -9 at every step of a rotation (SIGNET_FAULT_AT, the
 * fault points in ca/fault-points.ts) followed by the command again: exactly one successor, no
 * orphan key, the audit trail verifies.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { FAULT_POINTS } from '../src/ca/fault-points.js';
import { api, BIN, getUrl, signet, signetAsync, startServer, type RunningServer } from './helpers/cli.js';
import { childEnv, createTestEnv, type TestEnv } from './helpers/env.js';
import { countRows, sql } from './helpers/sql.js';
import { newKeyCsr } from './helpers/openssl.js';

interface CaRow {
  id: string;
  parentId: string | null;
  status: string;
  predecessorId: string | null;
  successorId: string | null;
  notAfter: string;
}

const cas = (env: TestEnv): CaRow[] => {
  const r = signet(['ca', 'list', '--json'], env.env);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as CaRow[];
};
const activeIntermediate = (env: TestEnv) => cas(env).find((c) => c.parentId && c.status === 'active')!.id;

describe('ca rotate / renew over REST and the CLI', { concurrency: false }, () => {
  let env: TestEnv;
  let server: RunningServer;
  let rootId: string;
  let intId: string;
  before(async () => {
    env = await createTestEnv();
    server = await startServer(env.env);
    const all = cas(env);
    rootId = all.find((c) => !c.parentId)!.id;
    intId = all.find((c) => c.parentId)!.id;
  });
  after(async () => {
    await server?.stop();
    await env?.cleanup();
  });

  test('refusals are problem+json with a precise detail, and store nothing', async () => {
    const rows = await countRows(env, 'CertificateAuthority');
    const keys = await countRows(env, 'KeyRecord');
    const cases: [string, unknown, number, RegExp][] = [
      [rootId, {}, 400, /is a root: a root is replaced with `signet ca rollover-root`, not rotated/],
      ['int-0123456789', {}, 404, /CA int-0123456789 does not exist/],
      [intId, { overlapDays: 36_000 }, 400, /an overlap of 36000 days would end .*, after CA int-\w+ itself expires/],
      [intId, { keyAlgorithm: 'rsa-2048' }, 400, /policy refuses the new key of int-\w+: a rsa-2048 key \(112-bit security\) is weaker/],
      [intId, { keyAlgorithm: 'ed25519' }, 400, /Ed25519 CA key is allowed only under an Ed25519 parent/],
      [intId, { keyAlgorithm: 'dsa-1024' }, 400, /keyAlgorithm/],
      [intId, { overlapDays: 0 }, 400, /overlapDays/],
      [intId, { parentKey: 'x' }, 400, /parentKey/],
    ];
    for (const [id, body, status, detail] of cases) {
      const r = await api(server, 'POST', `/api/v1/cas/${id}/rotate`, body);
      assert.equal(r.status, status, `${id} ${JSON.stringify(body)}: ${r.text}`);
      assert.match(r.headers.get('content-type') ?? '', /application\/problem\+json/);
      assert.match(r.json.detail, detail);
    }
    const q = await api(server, 'POST', `/api/v1/cas/${intId}/rotate?now=1`, {});
    assert.equal(q.status, 400, q.text);
    assert.equal(await countRows(env, 'CertificateAuthority'), rows);
    assert.equal(await countRows(env, 'KeyRecord'), keys);
  });

  test('POST /cas/{id}/rotate: 201 with the successor, /readyz ready throughout, then 200 alreadyRotated', async () => {
    let polling = true;
    const seen: number[] = [];
    const poller = (async () => {
      while (polling) {
        seen.push((await fetch(`${server.url}/readyz`)).status);
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    const r = await api(server, 'POST', `/api/v1/cas/${intId}/rotate`, { overlapDays: 30 });
    polling = false;
    await poller;
    assert.equal(r.status, 201, r.text);
    assert.equal(r.headers.get('location'), `/api/v1/cas/${r.json.successor.id}`);
    assert.equal(r.json.predecessor.status, 'retiring');
    assert.ok(seen.length > 0 && seen.every((s) => s === 200), `readyz: ${seen.join(',')}`);
    const succ = new X509Certificate(r.json.successor.certificate);
    const pred = new X509Certificate((await api(server, 'GET', `/api/v1/cas/${intId}`)).json.certificate);
    assert.equal(succ.subject, pred.subject);
    const again = await api(server, 'POST', `/api/v1/cas/${intId}/rotate`, {});
    assert.equal(again.status, 200);
    assert.equal(again.json.alreadyRotated, true);
    assert.equal(again.json.successor.id, r.json.successor.id);
    // Issuance moved at once in the process that rotated.
    const csr = newKeyCsr('moved.example');
    const issued = await api(server, 'POST', '/api/v1/certificates', { csr, profile: 'server', caId: intId });
    assert.equal(issued.status, 201, issued.text);
    assert.equal(issued.json.caId, r.json.successor.id);
    // What the CA list and the CA record say.
    const listed = cas(env);
    assert.equal(listed.find((c) => c.id === intId)!.successorId, r.json.successor.id);
    assert.equal(listed.find((c) => c.id === r.json.successor.id)!.predecessorId, intId);
    const rec = await api(server, 'GET', `/api/v1/cas/${intId}`);
    assert.equal(rec.json.successorId, r.json.successor.id);
    assert.equal(rec.json.status, 'retiring');
    assert.ok(rec.json.overlapEndsAt);
  });

  test('/metrics: days to expiry and status of each CA', async () => {
    const text = await (await getUrl(`${server.url}/metrics`)).text();
    assert.match(text, new RegExp(`signet_ca_expiry_days\\{ca="${intId}",status="retiring"\\} \\d+(\\.\\d)?`));
    assert.match(text, new RegExp(`signet_ca_expiry_days\\{ca="${rootId}",status="active"\\} 36\\d\\d`));
    assert.match(text, new RegExp(`signet_ca_status\\{ca="${intId}",status="retiring"\\} 1`));
    assert.match(text, new RegExp(`signet_ca_status\\{ca="${intId}",status="active"\\} 0`));
  });

  test('POST /cas/{id}/renew re-certifies; the replaced certificate stays at /pki/<id>.crt', async () => {
    const id = activeIntermediate(env);
    const before = (await api(server, 'GET', `/api/v1/cas/${id}`)).json;
    const bad = await api(server, 'POST', `/api/v1/cas/${id}/renew`, { validityDays: 0 });
    assert.equal(bad.status, 400);
    const r = await api(server, 'POST', `/api/v1/cas/${id}/renew`, { validityDays: 400 });
    assert.equal(r.status, 201, r.text);
    assert.notEqual(r.json.serial, before.serial);
    const old = await getUrl(`${server.url}/pki/${r.json.supersededId}.crt`);
    assert.equal(old.status, 200);
    assert.equal(BigInt(`0x${new X509Certificate(Buffer.from(await old.arrayBuffer())).serialNumber}`), BigInt(`0x${before.serial}`));
    const listed = (await api(server, 'GET', `/api/v1/cas/${id}`)).json;
    assert.deepEqual(
      listed.caCertificates.map((c: { id: string; kind: string }) => [c.id, c.kind]),
      [[r.json.supersededId, 'superseded']],
    );
  });

  test('the CLI: --help explains, bad flags are refused', () => {
    const help = signet(['ca', 'rotate', '--help'], env.env);
    assert.equal(help.status, 0);
    assert.match(help.stdout, /--overlap-days <n>/);
    assert.match(help.stdout, /Run it again after an interruption/);
    const bad = signet(['ca', 'rotate', activeIntermediate(env), '--overlap-days', '3x'], env.env);
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /--overlap-days must be a positive whole number \(got "3x"\)/);
  });
});

describe('kill -9 at every step of a rotation, then the command again', { concurrency: false }, () => {
  let env: TestEnv;
  let server: RunningServer;
  before(async () => {
    env = await createTestEnv();
    server = await startServer(env.env);
  });
  after(async () => {
    await server?.stop();
    await env?.cleanup();
  });

  for (const point of FAULT_POINTS.rotate) {
    test(point, async () => {
      const id = activeIntermediate(env);
      const casBefore = await countRows(env, 'CertificateAuthority');
      const keysBefore = await countRows(env, 'KeyRecord');
      const killed = spawnSync(process.execPath, [BIN, 'ca', 'rotate', id], {
        env: childEnv({ ...env.env, SIGNET_FAULT_AT: point }),
        encoding: 'utf8',
        timeout: 120_000,
      });
      assert.equal(killed.signal, 'SIGKILL', `killed at ${point}: ${killed.stderr}`);
      const successors = await sql<{ id: string }>(env, 'SELECT "id" FROM "CertificateAuthority" WHERE "predecessorId" = ?', [id]);
      if (point === 'rotate:committed') {
        assert.equal(successors.length, 1, 'committed before the kill: the new state');
      } else {
        // Killed inside the transaction: the old state, to the row.
        assert.equal(successors.length, 0);
        assert.equal(await countRows(env, 'CertificateAuthority'), casBefore);
        assert.equal(await countRows(env, 'KeyRecord'), keysBefore, 'no orphan key');
        assert.equal(cas(env).find((c) => c.id === id)!.status, 'active');
      }
      assert.equal((await getUrl(`${server.url}/readyz`)).status, 200, 'the server stays ready');
      const again = await signetAsync(['ca', 'rotate', id, '--json'], env.env);
      assert.equal(again.status, 0, again.stderr);
      const out = JSON.parse(again.stdout);
      assert.equal(out.alreadyRotated, point === 'rotate:committed');
      const after = await sql<{ id: string }>(env, 'SELECT "id" FROM "CertificateAuthority" WHERE "predecessorId" = ?', [id]);
      assert.equal(after.length, 1, 'exactly one successor');
      assert.equal(after[0]!.id, out.successor.id);
      // Every key belongs to a CA or an OCSP responder: nothing orphaned by the kill.
      const orphans = await sql<{ id: string }>(
        env,
        'SELECT "id" FROM "KeyRecord" k WHERE NOT EXISTS (SELECT 1 FROM "CertificateAuthority" c WHERE c."keyId" = k."id") AND NOT EXISTS (SELECT 1 FROM "OcspResponder" o WHERE o."keyId" = k."id")',
      );
      assert.deepEqual(orphans, []);
      const verify = await signetAsync(['audit', 'verify'], env.env);
      assert.equal(verify.status, 0, verify.stdout + verify.stderr);
    });
  }
});
