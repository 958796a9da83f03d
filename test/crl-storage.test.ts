/**
 * Large CRLs are stored in 1 MiB pieces (CrlChunk rows) rather than as one value, which the
 * driver and the database would each copy whole while writing it. Against real `signet`
 * processes on SQLite or PostgreSQL: a CRL of ~1.2 MB (25,000 revoked certificates, copied in
 * SQL from one real revoked row) is stored in pieces, served whole and byte-identical by a
 * fresh server, verified by openssl, and the pieces of pruned CRLs go with them.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { api, signet, startServer, type RunningServer } from './helpers/cli.js';
import { createTestEnv, onPostgres, type TestEnv } from './helpers/env.js';
import { csrMaker, openssl, TempDir } from './helpers/openssl.js';
import { sql } from './helpers/sql.js';
import { derToPem } from '../src/pki/pem.js';

const COPIES = 25_000;

describe('large CRLs stored in pieces', () => {
  let env: TestEnv;
  let server: RunningServer | undefined;
  const tmp = new TempDir();
  const makeCsr = csrMaker(tmp);
  let intId: string;

  before(async () => {
    env = await createTestEnv();
    server = await startServer(env.env);
    intId = (await api(server, 'GET', '/api/v1/cas')).json.items.find((c: any) => c.parentId !== null).id;
    const issued = await api(server, 'POST', '/api/v1/certificates', { csr: makeCsr('DNS:many.example.com'), profile: 'server' });
    assert.equal(issued.status, 201, issued.text);
    assert.equal((await api(server, 'POST', `/api/v1/certificates/${issued.json.serial}/revoke`, { reason: 'keyCompromise' })).status, 200);
    await server.stop();
    server = undefined;
    // 25,000 copies of the revoked row with their own serials and fingerprints.
    const cols: string[] = onPostgres
      ? (await sql(env, `SELECT column_name AS name FROM information_schema.columns WHERE table_name = 'Certificate' ORDER BY ordinal_position`)).map(
          (r: any) => r.name,
        )
      : (await sql(env, `SELECT name FROM pragma_table_info('Certificate')`)).map((r: any) => r.name);
    const hex = (width: number) => (onPostgres ? `lpad(to_hex(x), ${width}, '0')` : `printf('%0${width}x', x)`);
    const select = cols.map((c) => (c === 'serial' ? `'7a' || ${hex(30)}` : c === 'fingerprint' ? `'e' || ${hex(63)}` : `t."${c}"`)).join(', ');
    const from = onPostgres
      ? `generate_series(1, ${COPIES}) AS x`
      : `(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ${COPIES}) SELECT x FROM c)`;
    await sql(env, `INSERT INTO "Certificate" (${cols.map((c) => `"${c}"`).join(', ')}) SELECT ${select} FROM ${from}, "Certificate" t WHERE t.serial = ?`, [
      issued.json.serial,
    ]);
    // Revoked a minute ago: a server starting right after the CRL below must not count these
    // as changes newer than it (within its 5 s margin) and re-sign; it is to serve the stored one.
    const aMinuteAgo = new Date(Date.now() - 60_000).toISOString();
    await sql(env, `UPDATE "Certificate" SET "statusChangedAt" = ? WHERE "caId" = ?`, [
      onPostgres ? aMinuteAgo.replace('Z', '') : aMinuteAgo.replace('Z', '+00:00'),
      intId,
    ]);
  });
  after(async () => {
    await server?.stop();
    await env?.cleanup();
    tmp.remove();
  });

  test('a 1.2 MB CRL is written in pieces, served whole by a fresh server, and verifies', async () => {
    const out = tmp.file('big.crl');
    const r = signet(['crl', '--ca', intId, '--out', out], env.env);
    assert.equal(r.status, 0, r.stderr);
    const der = readFileSync(out);
    assert.ok(der.length > 1024 * 1024, `CRL is ${der.length} bytes`);
    const [row] = await sql(env, `SELECT "id", "chunks", length("der") AS n FROM "Crl" WHERE "caId" = ? ORDER BY "number" DESC LIMIT 1`, [intId]);
    assert.equal(Number(row.chunks), Math.ceil(der.length / (1024 * 1024)));
    assert.equal(Number(row.n), 0, 'the Crl row itself holds no DER');
    const pieces = await sql(env, `SELECT "idx", "data" FROM "CrlChunk" WHERE "crlId" = ? ORDER BY "idx"`, [row.id]);
    assert.deepEqual(
      pieces.map((p: any) => Number(p.idx)),
      [...Array(Number(row.chunks)).keys()],
    );
    assert.ok(Buffer.concat(pieces.map((p: any) => Buffer.from(p.data))).equals(der), 'the pieces are the CRL');

    server = await startServer(env.env);
    const served = Buffer.from(await (await fetch(`${server.url}/pki/${intId}.crl`)).arrayBuffer());
    assert.ok(served.equals(der), 'a fresh server serves the stored CRL byte for byte');
    const caDer = Buffer.from(await (await fetch(`${server.url}/pki/${intId}.crt`)).arrayBuffer());
    const chain = tmp.file('issuer.pem', derToPem(caDer, 'CERTIFICATE'));
    const crlFile = tmp.file('served.crl');
    writeFileSync(crlFile, served);
    const v = openssl(['crl', '-inform', 'DER', '-in', crlFile, '-noout', '-verify', '-CAfile', chain]);
    assert.match(v.stderr + v.stdout, /verify OK/);
    const textFile = tmp.file('served.txt');
    assert.equal(openssl(['crl', '-inform', 'DER', '-in', crlFile, '-text', '-out', textFile]).status, 0);
    const text = readFileSync(textFile, 'utf8');
    assert.equal((text.match(/Serial Number:/g) ?? []).length, COPIES + 1);
  });

  test('pruning old CRLs removes their pieces too', async () => {
    await server?.stop();
    server = undefined;
    for (let i = 0; i < 6; i++) assert.equal(signet(['crl', '--ca', intId, '--out', tmp.file(`again${i}.crl`)], env.env).status, 0);
    const crls = await sql(env, `SELECT "id", "chunks" FROM "Crl" WHERE "caId" = ?`, [intId]);
    assert.ok(crls.length <= 5, `${crls.length} CRLs kept`);
    const [{ n }] = await sql(env, `SELECT COUNT(*) AS n FROM "CrlChunk"`);
    assert.equal(
      Number(n),
      crls.reduce((a: number, c: any) => a + Number(c.chunks), 0),
      'no piece outlives its CRL',
    );
  });
});
