/**
 * Issue 2 end to end: a real `signet serve` on a fresh data directory (SQLite, or PostgreSQL
 * under test:pg) bootstraps a hierarchy whose certificates openssl verifies, serves the
 * skeleton endpoints with problem+json errors, and never writes a CA key in clear.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { api, startServer, type RunningServer } from './helpers/cli.js';
import { createTestEnv, onPostgres, type TestEnv } from './helpers/env.js';
import { openssl, TempDir } from './helpers/openssl.js';
import { unseal } from '../src/keystore/sealed-key-store.js';

describe('first start', () => {
  let env: TestEnv;
  let server: RunningServer;
  const tmp = new TempDir();
  let cas: any[];

  before(async () => {
    env = await createTestEnv();
    server = await startServer(env.env);
    cas = (await api(server, 'GET', '/api/v1/cas')).json.items;
  });
  after(async () => {
    await server?.stop();
    await env?.cleanup();
    tmp.remove();
  });

  test('prints the root fingerprint and the token path, never the token', () => {
    assert.match(server.stdout(), /root SHA-256 fingerprint: ([0-9A-F]{2}:){31}[0-9A-F]{2}/);
    assert.match(server.stdout(), /admin API token written to: .*admin-token \(mode 0600\)/);
    assert.ok(!server.stdout().includes(server.token) && !server.stderr().includes(server.token));
    assert.equal(statSync(join(env.dataDir, 'admin-token')).mode & 0o777, 0o600);
  });

  test('healthz, readyz and metrics answer', async () => {
    assert.equal((await fetch(server.url + '/healthz')).status, 200);
    const ready = await fetch(server.url + '/readyz');
    assert.equal(ready.status, 200);
    assert.deepEqual((await ready.json()).checks, { database: 'ok', keys: 'unlocked' });
    const metrics = await (await fetch(server.url + '/metrics')).text();
    assert.match(metrics, /signet_http_requests_total/);
    assert.match(metrics, /process_resident_memory_bytes/);
  });

  test('a root and an issuing intermediate that openssl verifies, with RFC 5280 CA extensions', async () => {
    assert.equal(cas.length, 2);
    const root = cas.find((c) => c.parentId === null);
    const int = cas.find((c) => c.parentId === root.id);
    assert.ok(root && int);
    assert.equal(root.keyAlgorithm, 'ecdsa-p384');
    assert.equal(int.keyAlgorithm, 'ecdsa-p256');
    const rootDetail = (await api(server, 'GET', `/api/v1/cas/${root.id}`)).json;
    const intDetail = (await api(server, 'GET', `/api/v1/cas/${int.id}`)).json;
    const rootPem = tmp.file('root.pem', rootDetail.certificate);
    const intPem = tmp.file('int.pem', intDetail.certificate);
    const v = openssl(['verify', '-x509_strict', '-CAfile', rootPem, intPem]);
    assert.equal(v.status, 0, v.stderr);
    assert.match(v.stdout, /int.pem: OK/);

    const text = openssl(['x509', '-in', intPem, '-noout', '-text']).stdout;
    assert.match(text, /Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
    assert.match(text, /Key Usage: critical\s+Digital Signature, Certificate Sign, CRL Sign/);
    assert.match(text, /Subject Key Identifier/);
    assert.equal(intDetail.authorityKeyId, rootDetail.subjectKeyId, 'AKI of the intermediate is the root SKI');
    assert.match(text, new RegExp(`CA Issuers - URI:${server.url}/pki/${root.id}.crt`));
    assert.match(text, new RegExp(`URI:${server.url}/pki/${root.id}.crl`));
    const rootText = openssl(['x509', '-in', rootPem, '-noout', '-text']).stdout;
    assert.match(rootText, /Basic Constraints: critical\s+CA:TRUE\n/);
    // Names are UTF8String; serials are 16 bytes and positive.
    const asn1 = openssl(['asn1parse', '-in', intPem]).stdout;
    assert.match(asn1, /UTF8STRING\s+:Signet Issuing CA 1/);
    assert.equal(int.serial.length, 32);
    assert.ok(parseInt(int.serial[0], 16) < 8, 'serial is positive (high bit clear)');
    assert.ok(new Date(int.notAfter) <= new Date(root.notAfter), 'intermediate never outlives the root');
    assert.ok(Date.now() - new Date(int.notBefore).getTime() <= 2 * 60_000, 'notBefore backdated at most a minute');
  });

  test('GET /pki/{caId}.crt serves the DER issuer certificate', async () => {
    const int = cas.find((c) => c.parentId !== null);
    const res = await fetch(`${server.url}/pki/${int.id}.crt`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/pkix-cert');
    const der = tmp.file('int.der', Buffer.from(await res.arrayBuffer()));
    const fp = openssl(['x509', '-inform', 'DER', '-in', der, '-noout', '-fingerprint', '-sha256']).stdout;
    assert.equal(fp.split('=')[1]!.trim().replace(/:/g, '').toLowerCase(), int.fingerprint);
  });

  test('errors are problem+json: unknown route, unknown CA, no token, malformed JSON, wrong content type', async () => {
    const cases: [string, string, unknown, Record<string, string>, number, RegExp][] = [
      ['GET', '/no/such/thing', undefined, {}, 404, /no route for GET/],
      ['GET', '/api/v1/cas/int-doesnotexist', undefined, {}, 404, /CA int-doesnotexist does not exist/],
      ['GET', '/pki/nothere.crt', undefined, {}, 404, /CA nothere does not exist/],
      ['POST', '/api/v1/cas', '{"parentId": ', {}, 400, /not valid JSON/],
      ['POST', '/api/v1/cas', 'parentId=x', { 'content-type': 'application/x-www-form-urlencoded' }, 415, /Content-Type must be application\/json/],
      ['POST', '/api/v1/cas', { parentId: 'x' }, {}, 400, /subject: Required/],
    ];
    for (const [method, path, body, headers, status, detail] of cases) {
      const r = await api(server, method, path, body, headers);
      assert.equal(r.status, status, `${method} ${path}: ${r.text}`);
      assert.equal(r.headers.get('content-type'), 'application/problem+json; charset=utf-8');
      assert.equal(r.json.status, status);
      assert.match(r.json.detail, detail);
      assert.ok(r.json.type && r.json.title);
    }
    const anon = await fetch(server.url + '/api/v1/cas');
    assert.equal(anon.status, 401);
    assert.equal((await anon.json()).detail, 'missing Authorization: Bearer <token> header');
    const big = await api(server, 'POST', '/api/v1/cas', JSON.stringify({ subject: 'x'.repeat(200_000) }));
    assert.equal(big.status, 413);
    assert.equal((await fetch(server.url + '/healthz')).status, 200, 'still serving');
  });

  test('POST /api/v1/cas creates an intermediate under the root, with name constraints', async () => {
    const root = cas.find((c) => c.parentId === null);
    const r = await api(server, 'POST', '/api/v1/cas', {
      parentId: root.id,
      subject: 'CN=Team CA,O=Signet',
      keyAlgorithm: 'rsa-2048',
      validityDays: 30,
      nameConstraints: { permittedDns: ['team.example'] },
    });
    assert.equal(r.status, 201, r.text);
    const pem = tmp.file('team.pem', r.json.certificate);
    const rootPem = tmp.file('root2.pem', (await api(server, 'GET', `/api/v1/cas/${root.id}`)).json.certificate);
    assert.equal(openssl(['verify', '-CAfile', rootPem, pem]).status, 0);
    assert.match(openssl(['x509', '-in', pem, '-noout', '-text']).stdout, /Name Constraints: critical\s+Permitted:\s+DNS:team.example/);
    const bad = await api(server, 'POST', '/api/v1/cas', { parentId: 'root-nope', subject: 'CN=x' });
    assert.equal(bad.status, 404);
  });

  test('no CA private key is stored in clear anywhere in the data directory or database', async () => {
    const kek = Buffer.from(readFileSync(join(env.dataDir, 'master.key'), 'utf8').trim(), 'base64');
    let records: { id: string; sealed: Uint8Array }[];
    let dbBytes: Buffer[];
    if (onPostgres) {
      const c = new pg.Client({ connectionString: env.databaseUrl });
      await c.connect();
      records = (await c.query('SELECT id, sealed FROM "KeyRecord"')).rows;
      const tables = (await c.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`)).rows.map((r) => r.table_name as string);
      dbBytes = [];
      for (const t of tables)
        for (const row of (await c.query(`SELECT * FROM "${t}"`)).rows)
          for (const v of Object.values(row)) dbBytes.push(Buffer.isBuffer(v) ? v : Buffer.from(String(v)));
      await c.end();
    } else {
      const db = new Database(join(env.dataDir, 'signet.db'), { readonly: true });
      records = db.prepare('SELECT id, sealed FROM KeyRecord').all() as typeof records;
      db.close();
      dbBytes = [];
    }
    assert.ok(records.length >= 2);
    const files = readdirSync(env.dataDir).map((f) => readFileSync(join(env.dataDir, f)));
    for (const rec of records) {
      const pkcs8 = unseal(kek, rec.id, rec.sealed);
      // The PKCS#8 DER, and the private scalar alone (JWK d), in case it were stored some other way.
      const d = Buffer.from((createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }).export({ format: 'jwk' }) as { d: string }).d, 'base64url');
      assert.ok(d.length >= 32);
      for (const needle of [pkcs8, d]) {
        for (const hay of [...files, ...dbBytes]) assert.equal(hay.indexOf(needle), -1, `key ${rec.id} found in clear`);
      }
    }
  });

  test('a restart keeps the same hierarchy and token', async () => {
    await server.stop();
    server = await startServer(env.env);
    const again = (await api(server, 'GET', '/api/v1/cas')).json.items;
    assert.deepEqual(
      again.slice(0, 2).map((c: any) => c.fingerprint),
      cas.map((c) => c.fingerprint),
    );
    assert.doesNotMatch(server.stdout(), /initialised a new CA hierarchy/);
  });

  test('SIGTERM shuts down gracefully with exit code 0', async () => {
    assert.equal(await server.stop('SIGTERM'), 0);
  });
});
