/**
 * Issue 6, backup and restore (SQLite, or PostgreSQL under test:pg): `signet backup` while the
 * server issues in the background; `signet restore` into a fresh data directory / database with
 * the same master key brings the same CA back (OCSP still answers `good` for a certificate
 * issued before the backup, the audit chain verifies, issuance continues with new serials and
 * CRL numbers keep going up). Every refusal — truncated, corrupted or foreign file, wrong or
 * missing master key, a database that already has a CA — leaves the target untouched. A SQLite
 * backup restores into PostgreSQL (or SQLite again when PostgreSQL is not configured).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { api, signet, signetAsync, startServer, type RunningServer } from './helpers/cli.js';
import { createTestEnv, onPostgres, type TestEnv } from './helpers/env.js';
import { newKeyCsr, openssl, TempDir } from './helpers/openssl.js';
import { sql } from './helpers/sql.js';
import { kekId } from '../src/keystore/kek.js';
import { NOT_BACKED_UP } from '../src/storage/backup.js';

const POLL_DEADLINE_MS = 15_000;
const BULK = 520;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The CLI without blocking the event loop, so background requests keep flowing meanwhile. */

/** The backup file as documented: gzip'd JSON lines — header, {t, r} rows, trailer. */
function readBackup(file: string) {
  const lines = gunzipSync(readFileSync(file))
    .toString('utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const rows = (t: string) => lines.filter((l) => l.t === t).map((l) => l.r);
  return { header: lines[0], trailer: lines[lines.length - 1], rows };
}
const big = (v: any) => BigInt(typeof v === 'object' && v && '$bigint' in v ? v.$bigint : v);

/** Nothing created: the data directory is still empty and the database has no tables. */
async function assertUntouched(env: TestEnv, label: string) {
  assert.deepEqual(readdirSync(env.dataDir), [], `${label}: the data directory was touched`);
  if (env.databaseUrl) {
    const tables = await sql(env, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`);
    assert.deepEqual(tables, [], `${label}: tables were created in the target database`);
  }
}

describe('backup and restore', () => {
  const tmp = new TempDir();
  const envs: TestEnv[] = [];
  const servers: RunningServer[] = [];
  let source: TestEnv;
  let server: RunningServer;
  let backupFile: string;
  let masterKey: string;
  let csrPem: string;
  let rootPem: string;
  let intPem: string;
  let intId: string;
  const before_: { serial: string; pem: string }[] = [];

  const fresh = async (extra: Record<string, string> = {}) => {
    const e = await createTestEnv(extra);
    envs.push(e);
    return e;
  };
  const start = async (env: Record<string, string>) => {
    const s = await startServer(env);
    servers.push(s);
    return s;
  };
  const issue = async (s: RunningServer) => {
    const r = await api(s, 'POST', '/api/v1/certificates', { csr: csrPem, profile: 'server' });
    assert.equal(r.status, 201, r.text);
    return { serial: r.json.serial as string, pem: tmp.file(`${r.json.serial}.pem`, r.json.certificate) };
  };
  const ocsp = (s: RunningServer, certPem: string) => {
    const o = openssl([
      'ocsp',
      '-issuer',
      intPem,
      '-cert',
      certPem,
      '-url',
      `${s.url}/ocsp`,
      '-CAfile',
      tmp.file('bundle.pem', readFileSync(rootPem, 'utf8') + readFileSync(intPem, 'utf8')),
    ]);
    assert.match(o.stdout + o.stderr, /Response verify OK/, o.stdout + o.stderr);
    return o.stdout;
  };
  const crlNumber = async (s: RunningServer) => {
    const res = await fetch(`${s.url}/pki/${intId}.crl`);
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
    return BigInt(/X509v3 CRL Number:\s*\n\s*(\S+)/.exec(text)![1]!);
  };
  /** A restored installation keeps its API tokens (hashes): the operator's token still works. */
  const adoptToken = (from: TestEnv, to: TestEnv) => copyFileSync(join(from.dataDir, 'admin-token'), join(to.dataDir, 'admin-token'));

  before(async () => {
    source = await fresh({ SIGNET_CRL_COALESCE_MS: '100' });
    server = await start(source.env);
    masterKey = readFileSync(join(source.dataDir, 'master.key'), 'utf8').trim();
    csrPem = newKeyCsr('backup.example.test', tmp.file('leaf.key'));
    const cas = (await api(server, 'GET', '/api/v1/cas')).json.items as any[];
    const root = cas.find((c) => c.parentId === null);
    intId = cas.find((c) => c.parentId === root.id).id;
    rootPem = tmp.file('root.pem', (await api(server, 'GET', `/api/v1/cas/${root.id}`)).json.certificate);
    intPem = tmp.file('int.pem', (await api(server, 'GET', `/api/v1/cas/${intId}`)).json.certificate);
    for (let i = 0; i < 4; i++) before_.push(await issue(server));
    const rev = await api(server, 'POST', `/api/v1/certificates/${before_[3]!.serial}/revoke`, { reason: 'keyCompromise' });
    assert.equal(rev.status, 200, rev.text);
    // More certificates than restore inserts in one batch (500): the tables must still go in parents first.
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next++ < BULK) await issue(server);
      }),
    );
    // Let the revocation's CRL land, so the backup holds CRLs beyond the first.
    const deadline = Date.now() + POLL_DEADLINE_MS;
    while ((await crlNumber(server)) < 2n && Date.now() < deadline) await sleep(100);
    assert.ok((await crlNumber(server)) >= 2n, "the revocation's CRL was published");

    // Back up while the server keeps issuing and revoking.
    let stop = false;
    const background: string[] = [];
    const load = Promise.all(
      Array.from({ length: 4 }, async (_, w) => {
        for (let i = 0; !stop; i++) {
          const c = await issue(server);
          background.push(c.serial);
          if (i % 4 === w % 4) assert.equal((await api(server, 'POST', `/api/v1/certificates/${c.serial}/revoke`, { reason: 'superseded' })).status, 200);
        }
      }),
    );
    while (background.length < 10) await sleep(20);
    backupFile = join(tmp.path, 'signet.sgb');
    const atStart = background.length;
    const b = await signetAsync(['backup', backupFile], source.env);
    const atEnd = background.length;
    stop = true;
    await load;
    assert.equal(b.status, 0, b.stdout + b.stderr);
    assert.match(b.stdout, /backup written to .*signet\.sgb/);
    assert.ok(atEnd > atStart, 'issuance went on while the backup was taken');
  });

  after(async () => {
    for (const s of servers) await s.stop();
    for (const e of envs) await e.cleanup();
    tmp.remove();
  });

  test('the backup is a consistent snapshot with the sealed keys and no master key', () => {
    const { header, trailer, rows } = readBackup(backupFile);
    assert.equal(header.format, 'signet-backup');
    assert.equal(header.provider, onPostgres ? 'postgresql' : 'sqlite');
    assert.equal(header.kekId, kekId(Buffer.from(masterKey, 'base64')));
    assert.equal(trailer.end, true);
    const certs = rows('Certificate');
    assert.equal(trailer.counts.Certificate, certs.length);
    assert.ok(certs.length > BULK);
    for (const c of before_)
      assert.ok(
        certs.some((r: any) => r.serial === c.serial),
        `certificate ${c.serial} issued before the backup is in it`,
      );
    // Snapshot: every issued-certificate event has its certificate, and vice versa.
    const issuedEvents = rows('AuditEvent')
      .filter((e: any) => e.action === 'certificate.issued')
      .map((e: any) => e.target)
      .sort();
    assert.deepEqual(issuedEvents, certs.map((r: any) => r.serial).sort());
    const revokedEvents = rows('AuditEvent').filter((e: any) => e.action === 'certificate.revoked').length;
    assert.equal(revokedEvents, certs.filter((r: any) => r.status === 'revoked').length);
    assert.ok(rows('KeyRecord').length >= 2);
    const raw = gunzipSync(readFileSync(backupFile));
    assert.ok(!raw.includes(masterKey), 'the master key is not in the backup');
  });

  test('every table is in the backup, or deliberately left out', async () => {
    const tables = onPostgres
      ? (await sql(source, `SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public'`)).map((t) => t.name as string)
      : (await sql(source, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`)).map((t) => t.name as string);
    const { trailer } = readBackup(backupFile);
    const missing = tables.filter((t) => !(t in trailer.counts) && !(NOT_BACKED_UP as readonly string[]).includes(t));
    assert.deepEqual(missing, [], 'tables a restore would silently lose');
  });

  test('restore into a fresh data directory brings the same CA back', async () => {
    const target = await fresh({ SIGNET_CRL_COALESCE_MS: '100' });
    copyFileSync(join(source.dataDir, 'master.key'), join(target.dataDir, 'master.key'));
    const r = signet(['restore', backupFile], target.env);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /restored \d+ rows from a backup made /);
    const { rows } = readBackup(backupFile);
    const restoredSerials = new Set(rows('Certificate').map((c: any) => c.serial as string));
    const stored = await sql(target, 'SELECT serial FROM "Certificate"');
    assert.equal(stored.length, restoredSerials.size);
    assert.equal(
      Number((await sql(target, 'SELECT COUNT(*) AS n FROM "AuditEvent"'))[0].n),
      rows('AuditEvent').length + 1,
      'one backup.restored event appended',
    );

    // The name index (CertificateName) is derived data, not in the backup: restore rebuilt it,
    // key for key what the source holds for the same certificates.
    const nameKeysOf = async (e: TestEnv) =>
      (await sql(e, 'SELECT "key", serial FROM "CertificateName"'))
        .filter((k: any) => restoredSerials.has(k.serial))
        .map((k: any) => `${k.key} ${k.serial}`)
        .sort();
    const rebuilt = await nameKeysOf(target);
    assert.ok(rebuilt.length >= restoredSerials.size, 'every restored certificate has its names');
    assert.deepEqual(rebuilt, await nameKeysOf(source));

    adoptToken(source, target);
    const restored = await start(target.env);
    const found = await api(restored, 'GET', '/api/v1/certificates?san=example.test&limit=500');
    assert.equal(found.status, 200, found.text);
    assert.equal(found.json.items.length, Math.min(500, restoredSerials.size), 'a name search finds the restored certificates');
    assert.ok(found.json.items.every((c: any) => restoredSerials.has(c.serial)));
    assert.match(ocsp(restored, before_[0]!.pem), /: good/, 'a certificate issued before the backup is good');
    assert.match(ocsp(restored, before_[3]!.pem), /: revoked\n[\s\S]*Reason: keyCompromise/, 'a revocation before the backup is kept');

    const v = signet(['audit', 'verify'], target.env);
    assert.equal(v.status, 0, v.stdout + v.stderr);
    assert.equal(Number((await sql(target, `SELECT COUNT(*) AS n FROM "AuditEvent" WHERE action = 'backup.restored'`))[0].n), 1);

    const fresh1 = await issue(restored);
    assert.ok(!restoredSerials.has(fresh1.serial), 'a new serial, unlike every restored one');
    assert.match(ocsp(restored, fresh1.pem), /: good/);

    // CRL numbers continue above everything in the backup.
    const backupMax = rows('Crl')
      .filter((c: any) => c.caId === intId)
      .reduce((m: bigint, c: any) => (big(c.number) > m ? big(c.number) : m), 0n);
    const counter = big(rows('CertificateAuthority').find((c: any) => c.id === intId).crlNumber);
    assert.ok(backupMax >= 2n);
    const rev = await api(restored, 'POST', `/api/v1/certificates/${fresh1.serial}/revoke`, { reason: 'superseded' });
    assert.equal(rev.status, 200, rev.text);
    const deadline = Date.now() + POLL_DEADLINE_MS;
    let n = await crlNumber(restored);
    while (n <= counter && Date.now() < deadline) {
      await sleep(100);
      n = await crlNumber(restored);
    }
    assert.ok(n > counter && n > backupMax, `the CRL served after the restore (${n}) is numbered above the backup's (${backupMax}, counter ${counter})`);
    assert.equal((await signetAsync(['audit', 'verify'], target.env)).status, 0);
  });

  test('refuses a truncated backup file, leaving the target untouched', async () => {
    const data = readFileSync(backupFile);
    for (const [label, bytes] of [
      ['last 40 bytes cut', data.subarray(0, data.length - 40)],
      ['cut in half', data.subarray(0, data.length >> 1)],
      ['gzip trailer cut', data.subarray(0, data.length - 4)],
    ] as const) {
      const target = await fresh({ SIGNET_MASTER_KEY: masterKey });
      const file = tmp.file(`truncated-${label.replace(/ /g, '-')}.sgb`, bytes);
      const r = signet(['restore', file], target.env);
      assert.notEqual(r.status, 0, `${label}: ${r.stdout}`);
      assert.match(r.stderr, /truncated|corrupted/, label);
      assert.match(r.stderr, new RegExp(file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), `${label}: names the file`);
      await assertUntouched(target, label);
    }
  });

  test('refuses a corrupted backup file, leaving the target untouched', async () => {
    const data = Buffer.from(readFileSync(backupFile));
    const mid = data.length >> 1;
    for (let i = 0; i < 8; i++) data[mid + i] = data[mid + i]! ^ 0x5a;
    const target = await fresh({ SIGNET_MASTER_KEY: masterKey });
    const r = signet(['restore', tmp.file('corrupted.sgb', data)], target.env);
    assert.notEqual(r.status, 0, r.stdout);
    assert.match(r.stderr, /corrupted/);
    await assertUntouched(target, 'corrupted');
  });

  test('refuses files that are not Signet backups, leaving the target untouched', async () => {
    const files = {
      text: tmp.file('notes.txt', 'this is not a backup\n'),
      json: tmp.file('other.gz', gzipSync('{"format":"something-else","version":1}\n{"end":true,"counts":{}}\n')),
      empty: tmp.file('empty.gz', gzipSync('')),
      missing: join(tmp.path, 'no-such-file.sgb'),
    };
    for (const [label, file] of Object.entries(files)) {
      const target = await fresh({ SIGNET_MASTER_KEY: masterKey });
      const r = signet(['restore', file], target.env);
      assert.notEqual(r.status, 0, `${label}: ${r.stdout}`);
      assert.match(r.stderr, /not a Signet backup|is empty|does not exist/, `${label}: ${r.stderr}`);
      await assertUntouched(target, label);
    }
  });

  test('refuses a different master key, naming both key ids, and a missing one', async () => {
    const wrong = randomBytes(32);
    const target = await fresh({ SIGNET_MASTER_KEY: wrong.toString('base64') });
    const r = signet(['restore', backupFile], target.env);
    assert.notEqual(r.status, 0, r.stdout);
    assert.ok(r.stderr.includes(kekId(Buffer.from(masterKey, 'base64'))), `names the backup's key id: ${r.stderr}`);
    assert.ok(r.stderr.includes(kekId(wrong)), `names the given key id: ${r.stderr}`);
    await assertUntouched(target, 'wrong master key');

    // A wrong master.key file in the data directory is refused the same way, and left alone.
    const withFile = await fresh();
    writeFileSync(join(withFile.dataDir, 'master.key'), wrong.toString('base64') + '\n', { mode: 0o600 });
    const f = signet(['restore', backupFile], withFile.env);
    assert.notEqual(f.status, 0);
    assert.ok(f.stderr.includes(kekId(wrong)) && f.stderr.includes(kekId(Buffer.from(masterKey, 'base64'))), f.stderr);
    assert.deepEqual(readdirSync(withFile.dataDir), ['master.key']);

    const none = await fresh();
    const n = signet(['restore', backupFile], none.env);
    assert.notEqual(n.status, 0, n.stdout);
    assert.match(n.stderr, /SIGNET_MASTER_KEY|master\.key/);
    assert.ok(n.stderr.includes(kekId(Buffer.from(masterKey, 'base64'))), 'says which key is needed');
    await assertUntouched(none, 'no master key'); // and no new master.key was made up
  });

  test('refuses to restore into a database that already has a CA, changing nothing', async () => {
    const target = await fresh({ SIGNET_MASTER_KEY: masterKey });
    const s = await start(target.env);
    await issue(s);
    await s.stop();
    const counts = async () =>
      (
        await Promise.all(
          ['CertificateAuthority', 'Certificate', 'AuditEvent', 'KeyRecord', 'Crl', 'ApiToken'].map(async (t) =>
            Number((await sql(target, `SELECT COUNT(*) AS n FROM "${t}"`))[0].n),
          ),
        )
      ).join(',');
    const head = async () => (await sql(target, 'SELECT hash FROM "AuditEvent" ORDER BY seq DESC LIMIT 1'))[0].hash;
    const before = [await counts(), await head()];
    const r = signet(['restore', backupFile], target.env);
    assert.notEqual(r.status, 0, r.stdout);
    assert.match(r.stderr, /empty database/);
    assert.deepEqual([await counts(), await head()], before);
    assert.equal(signet(['audit', 'verify'], target.env).status, 0);
  });

  test(`a SQLite backup restores into ${onPostgres ? 'PostgreSQL' : 'a new SQLite data directory'}`, async () => {
    const key = randomBytes(32).toString('base64');
    const made = await fresh({ SIGNET_MASTER_KEY: key });
    // Always SQLite, even under test:pg: the environment's database is simply not used.
    const { DATABASE_URL: _unused, ...sqliteEnv } = made.env;
    const lite: TestEnv = { ...made, databaseUrl: undefined, env: sqliteEnv };
    const s = await start(lite.env);
    const good = await issue(s);
    const gone = await issue(s);
    assert.equal((await api(s, 'POST', `/api/v1/certificates/${gone.serial}/revoke`, { reason: 'cessationOfOperation' })).status, 200);
    const file = join(tmp.path, 'lite.sgb');
    const b = await signetAsync(['backup', file], lite.env);
    assert.equal(b.status, 0, b.stderr);
    await s.stop();
    assert.equal(readBackup(file).header.provider, 'sqlite');

    const target = await fresh({ SIGNET_MASTER_KEY: key });
    assert.equal(Boolean(target.databaseUrl), onPostgres);
    const r = signet(['restore', file], target.env);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    if (onPostgres) assert.ok(!existsSync(join(target.dataDir, 'signet.db')), 'restored into PostgreSQL, not a SQLite file');
    adoptToken(lite, target);
    const moved = await start(target.env);
    // The restored CA is not the source's hierarchy: its OCSP answers verify against it.
    const cas = (await api(moved, 'GET', '/api/v1/cas')).json.items as any[];
    const int = cas.find((c) => c.parentId !== null);
    const root = cas.find((c) => c.parentId === null);
    const bundle = tmp.file(
      'lite-bundle.pem',
      (await api(moved, 'GET', `/api/v1/cas/${root.id}`)).json.certificate + (await api(moved, 'GET', `/api/v1/cas/${int.id}`)).json.certificate,
    );
    const liteInt = tmp.file('lite-int.pem', (await api(moved, 'GET', `/api/v1/cas/${int.id}`)).json.certificate);
    const check = (pem: string) => openssl(['ocsp', '-issuer', liteInt, '-cert', pem, '-url', `${moved.url}/ocsp`, '-CAfile', bundle]).stdout;
    assert.match(check(good.pem), /: good/);
    assert.match(check(gone.pem), /: revoked/);
    assert.equal(signet(['audit', 'verify'], target.env).status, 0);
    const next = await issue(moved);
    assert.ok(next.serial !== good.serial && next.serial !== gone.serial);
  });
});
