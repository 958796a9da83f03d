/**
 * Issue 12 item 7 and the data-directory part of item 13: a data directory that has held a CA
 * (master.key, admin-token) next to a database that lost it never starts a new CA silently —
 * start-up refuses and says how to restore or to re-initialise on purpose (`signet init
 * --force`, which keeps the old files) — while a first start, even one killed half-way,
 * still comes up without repair. And the files are private: the SQLite database is created
 * 0600 (its -wal/-shm follow), and a group/world-accessible data directory is warned about.
 * SQLite, or PostgreSQL under SIGNET_TEST_POSTGRES ("lost" there = dropped and created empty).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { api, BIN, freePort, signet, startServer } from './helpers/cli.js';
import { childEnv, createTestEnv, onPostgres, PG_ADMIN_URL, type TestEnv } from './helpers/env.js';
import { sql } from './helpers/sql.js';

const LOST =
  /has no Signet tables \(it is empty, missing or was replaced\), but .* holds (master\.key|admin-token|audit-checkpoints)((, | and )(admin-token|audit-checkpoints))* of an existing CA; Signet will not start a new CA over it: restore the database from a backup \(signet restore <file>; see docs\/deployment\.md, "Backup and restore"\), or start a new CA on purpose with `signet init --force`, which moves master\.key, admin-token and audit-checkpoints aside \(renamed with a timestamp, never deleted\)/;

/** A port for `serve` runs that should never get to listen for long. */
let port = 0;
before(async () => {
  port = await freePort();
});

/** `signet …` with a short timeout: a server that wrongly starts is killed and seen as status null. */
function run(args: string[], env: Record<string, string>, timeout = 30_000) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    env: childEnv({ ...env, SIGNET_PORT: String(port) }),
    encoding: 'utf8',
    timeout,
    killSignal: 'SIGKILL',
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** One line for the operator (structured JSON log lines, which go to log collectors, aside). */
const oneLine = (s: string) =>
  s
    .trim()
    .split('\n')
    .filter((l) => !l.startsWith('{"level"')).length === 1;

/** The database as if lost: SQLite truncated (`: > signet.db`) or deleted; PostgreSQL dropped and created empty. */
async function loseDatabase(env: TestEnv, how: 'truncate' | 'delete'): Promise<void> {
  if (env.databaseUrl) {
    const name = new URL(env.databaseUrl).pathname.slice(1);
    const c = new pg.Client({ connectionString: PG_ADMIN_URL });
    await c.connect();
    try {
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.query(`CREATE DATABASE ${name}`);
    } finally {
      await c.end();
    }
    return;
  }
  const db = join(env.dataDir, 'signet.db');
  for (const f of ['-wal', '-shm']) rmSync(db + f, { force: true });
  if (how === 'truncate') writeFileSync(db, '');
  else rmSync(db);
}

/** Whether the database has any table (SQLite: a missing file has none, and must stay missing). */
async function tableCount(env: TestEnv): Promise<number> {
  if (env.databaseUrl) return Number((await sql(env, `SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = 'public'`))[0].n);
  if (!existsSync(join(env.dataDir, 'signet.db'))) return -1;
  return Number((await sql(env, `SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table'`))[0].n);
}

/** Signet's tables put into an empty database by something other than a Signet start (here: `signet migrate` from a clean data directory). */
async function migrateElsewhere(env: TestEnv): Promise<void> {
  const clean = mkdtempSync(join(tmpdir(), 'signet-clean-'));
  try {
    const r = signet(['migrate'], { ...env.env, SIGNET_DATA_DIR: clean });
    assert.equal(r.status, 0, r.stderr);
    if (!env.databaseUrl) copyFileSync(join(clean, 'signet.db'), join(env.dataDir, 'signet.db'));
  } finally {
    rmSync(clean, { recursive: true, force: true });
  }
}

describe('a data directory whose database was lost refuses to start a new CA', () => {
  let env: TestEnv;
  let masterKey: string;
  let adminToken: string;
  let rootId: string;
  let backupFile: string;

  before(async () => {
    env = await createTestEnv();
    const init = signet(['init', '--json'], env.env);
    assert.equal(init.status, 0, init.stderr);
    rootId = JSON.parse(init.stdout).rootId;
    masterKey = readFileSync(join(env.dataDir, 'master.key'), 'utf8');
    adminToken = readFileSync(join(env.dataDir, 'admin-token'), 'utf8');
    backupFile = join(env.dataDir, '..', `${rootId}.sgb`);
    assert.equal(signet(['backup', backupFile], env.env).status, 0);
  });
  after(async () => {
    rmSync(backupFile, { force: true });
    await env.cleanup();
  });

  const assertRemainsUntouched = () => {
    assert.equal(readFileSync(join(env.dataDir, 'master.key'), 'utf8'), masterKey, 'master.key untouched');
    assert.equal(readFileSync(join(env.dataDir, 'admin-token'), 'utf8'), adminToken, 'admin-token never overwritten');
  };

  for (const how of onPostgres ? (['truncate'] as const) : (['truncate', 'delete'] as const)) {
    test(`${onPostgres ? 'an emptied PostgreSQL database' : how === 'truncate' ? 'a truncated signet.db' : 'a deleted signet.db'}: serve, init, migrate and other commands refuse, changing nothing`, async () => {
      await loseDatabase(env, how);
      const tablesBefore = await tableCount(env);
      for (const args of [['serve'], ['init'], ['migrate'], ['ca', 'list']]) {
        const r = run(args, env.env);
        assert.notEqual(r.status, 0, `signet ${args.join(' ')} must refuse (status ${r.status}): ${r.stdout}${r.stderr}`);
        assert.doesNotMatch(r.stdout, /initialised a new CA hierarchy/);
        assert.match(r.stderr, LOST, `signet ${args.join(' ')}`);
        assert.ok(oneLine(r.stderr), r.stderr);
        assertRemainsUntouched();
        assert.equal(await tableCount(env), tablesBefore, 'no table was created');
      }
    });
  }

  test('only a master.key left (admin-token moved away by the operator): refused as well', async () => {
    await loseDatabase(env, 'truncate');
    const token = join(env.dataDir, 'admin-token');
    rmSync(token);
    try {
      const r = run(['serve'], env.env);
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, LOST);
      assert.match(r.stderr, /holds master\.key( and audit-checkpoints)? of an existing CA/);
    } finally {
      writeFileSync(token, adminToken, { mode: 0o600 });
    }
  });

  test('tables created by hand in the lost database (no CA): still refused, the admin-token never overwritten', async () => {
    await loseDatabase(env, 'truncate');
    await migrateElsewhere(env);
    let r = run(['serve'], env.env);
    assert.notEqual(r.status, 0, r.stdout);
    assert.match(
      r.stderr,
      /the database holds no CA, but .*admin-token was written for one: the database was emptied or replaced; restore the database from a backup .*signet init --force/,
    );
    assertRemainsUntouched();
    // Without the admin-token, the master.key alone gives it away: it was not created for this database.
    const token = join(env.dataDir, 'admin-token');
    rmSync(token);
    try {
      r = run(['serve'], env.env);
      assert.notEqual(r.status, 0, r.stdout);
      assert.match(
        r.stderr,
        /the database holds no CA and was not initialised with .*master\.key \(it comes from another or an earlier database\); restore the database from a backup .*set SIGNET_MASTER_KEY instead of placing master\.key/,
      );
      assert.ok(oneLine(r.stderr), r.stderr);
      assert.equal(Number((await sql(env, 'SELECT COUNT(*) AS n FROM "CertificateAuthority"'))[0].n), 0, 'no CA was created');
    } finally {
      writeFileSync(token, adminToken, { mode: 0o600 });
    }
  });

  test('the way back: signet restore into the lost database brings the same CA and token back', async () => {
    await loseDatabase(env, 'truncate');
    const r = signet(['restore', backupFile], env.env);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const server = await startServer(env.env);
    try {
      const cas = (await api(server, 'GET', '/api/v1/cas')).json.items as { id: string }[];
      assert.ok(
        cas.some((c) => c.id === rootId),
        'the original root is back',
      );
      assert.doesNotMatch(server.stdout(), /initialised a new CA hierarchy/);
    } finally {
      await server.stop();
    }
    assertRemainsUntouched();
  });

  test('init --force is refused while the database holds a CA, and moves nothing', () => {
    const before = readdirSync(env.dataDir).sort();
    const r = signet(['init', '--force'], env.env);
    assert.notEqual(r.status, 0);
    assert.match(
      r.stderr,
      /holds a CA hierarchy \(2 CA\(s\)\): --force only replaces the remains of a lost database; to start a second CA, use another SIGNET_DATA_DIR and database/,
    );
    assert.deepEqual(readdirSync(env.dataDir).sort(), before);
    assertRemainsUntouched();
  });

  test('init --force on a lost database moves master.key, admin-token and audit-checkpoints aside (kept, renamed) and starts a new CA', async () => {
    await loseDatabase(env, 'truncate');
    const r = signet(['init', '--force'], env.env);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const moved = [...r.stdout.matchAll(/^moved (\S+) aside to (\S+)$/gm)].map((m): [string, string] => [m[1]!, m[2]!]);
    assert.deepEqual(moved.map(([from]) => from).sort(), [
      join(env.dataDir, 'admin-token'),
      join(env.dataDir, 'audit-checkpoints'),
      join(env.dataDir, 'master.key'),
    ]);
    for (const [from, to] of moved) {
      assert.match(to, new RegExp(`^${from.replace(/[.]/g, '\\.')}\\.replaced-\\d{4}-\\d\\d-\\d\\dT\\d\\d-\\d\\d-\\d\\d-\\d{3}Z$`));
      if (!from.endsWith('audit-checkpoints'))
        assert.equal(readFileSync(to, 'utf8'), from.endsWith('master.key') ? masterKey : adminToken, 'the old file is kept, unchanged');
      assert.equal(statSync(to).mode & 0o777, 0o600);
    }
    assert.notEqual(readFileSync(join(env.dataDir, 'master.key'), 'utf8'), masterKey, 'a new master key');
    const server = await startServer(env.env);
    try {
      assert.notEqual(server.token, adminToken.trim());
      const cas = (await api(server, 'GET', '/api/v1/cas')).json.items as { id: string }[];
      assert.equal(cas.length, 2);
      assert.ok(!cas.some((c) => c.id === rootId), 'a new hierarchy');
      assert.equal((await api({ url: server.url, token: adminToken.trim() }, 'GET', '/api/v1/cas')).status, 401, 'the old token opens nothing');
    } finally {
      await server.stop();
    }
  });
});

describe('a database holding sealed keys, history or checkpoints but no CA is damaged, not new', () => {
  const envs: TestEnv[] = [];
  after(async () => {
    for (const e of envs) await e.cleanup();
  });
  /** An initialised CA whose CertificateAuthority rows were then deleted from the database. */
  const withCasDeleted = async () => {
    const env = await createTestEnv();
    envs.push(env);
    assert.equal(signet(['init'], env.env).status, 0);
    await sql(env, 'DELETE FROM "Crl"');
    await sql(env, 'DELETE FROM "CertificateAuthority" WHERE "parentId" IS NOT NULL');
    await sql(env, 'DELETE FROM "CertificateAuthority"');
    rmSync(join(env.dataDir, 'admin-token')); // so that only what is left can tell
    return env;
  };
  const refusedWith = async (env: TestEnv, detail: RegExp) => {
    const r = run(['serve'], env.env);
    assert.notEqual(r.status, 0, r.stdout);
    assert.match(r.stderr, detail);
    assert.equal(Number((await sql(env, 'SELECT COUNT(*) AS n FROM "CertificateAuthority"'))[0].n), 0, 'no CA was created');
    assert.ok(!existsSync(join(env.dataDir, 'admin-token')), 'no admin token was written');
  };

  test('start-up refuses to found a hierarchy next to orphaned sealed keys', async () => {
    const env = await withCasDeleted();
    rmSync(join(env.dataDir, 'audit-checkpoints'));
    const keys = Number((await sql(env, 'SELECT COUNT(*) AS n FROM "KeyRecord"'))[0].n);
    assert.ok(keys > 0);
    await refusedWith(
      env,
      new RegExp(
        `the database holds ${keys} sealed key\\(s\\), \\d+ audit event\\(s\\) but no CA: it is damaged \\(its CAs were deleted\\); restore it from a backup`,
      ),
    );
  });

  test('nor over the audit trail of deleted CAs (keys deleted too)', async () => {
    const env = await withCasDeleted();
    rmSync(join(env.dataDir, 'audit-checkpoints'));
    await sql(env, 'DELETE FROM "KeyRecord"');
    await refusedWith(env, /the database holds \d+ audit event\(s\) but no CA: it is damaged \(its CAs were deleted\); restore it from a backup/);
  });

  test('nor next to the audit checkpoints of a trail that was emptied', async () => {
    const env = await withCasDeleted();
    assert.ok(existsSync(join(env.dataDir, 'audit-checkpoints')));
    await sql(env, 'DELETE FROM "KeyRecord"');
    await sql(env, 'DELETE FROM "AuditEvent"');
    await sql(env, `DELETE FROM "Setting" WHERE "key" = 'audit.head'`);
    await refusedWith(
      env,
      /the database holds no CA, but .*audit-checkpoints pins the audit trail of one: the database was emptied or replaced; restore the database from a backup .*signet init --force/,
    );
  });
});

describe('a first start interrupted at any point restarts without repair', () => {
  const envs: TestEnv[] = [];
  after(async () => {
    for (const e of envs) await e.cleanup();
  });
  const fresh = async () => {
    const e = await createTestEnv();
    envs.push(e);
    return e;
  };

  const startsWithOneHierarchy = async (env: TestEnv) => {
    const server = await startServer(env.env);
    try {
      assert.match(server.stdout(), /Signet initialised a new CA hierarchy/);
      assert.equal((await api(server, 'GET', '/api/v1/cas')).json.items.length, 2);
    } finally {
      await server.stop();
    }
  };

  test('killed after migrating, before the master key existed', async () => {
    const env = await fresh();
    assert.equal(signet(['migrate'], env.env).status, 0);
    assert.ok(!existsSync(join(env.dataDir, 'master.key')));
    await startsWithOneHierarchy(env);
  });

  test('killed after the master key was created, before the hierarchy committed', async () => {
    const env = await fresh();
    // Opening without bootstrapping (any CLI command) leaves exactly that state.
    assert.equal(signet(['ca', 'list', '--json'], env.env).status, 0);
    const key = readFileSync(join(env.dataDir, 'master.key'), 'utf8');
    assert.ok(!existsSync(join(env.dataDir, 'admin-token')));
    await startsWithOneHierarchy(env);
    assert.equal(readFileSync(join(env.dataDir, 'master.key'), 'utf8'), key, 'the master key made for this database is used');
  });

  test('killed after noting the master key in the database, before the file was linked', async () => {
    const env = await fresh();
    assert.equal(signet(['migrate'], env.env).status, 0);
    await sql(env, `INSERT INTO "Setting" ("key", "value") VALUES ('datadir.masterKeyFile', 'created earlier')`);
    await startsWithOneHierarchy(env);
  });

  test('SIGKILLed at random moments of a first start: the next start serves one hierarchy', async () => {
    for (const delay of [100, 400, 900, 1600]) {
      const env = await fresh();
      const port = await freePort();
      const child = spawn(process.execPath, [BIN, 'serve'], { env: childEnv({ ...env.env, SIGNET_PORT: String(port) }), stdio: 'ignore' });
      await new Promise((r) => setTimeout(r, delay));
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      // The admin token is written just after the hierarchy commits: a kill in between leaves a
      // CA and no token file (documented; `signet token create --scopes admin` makes another).
      const second = spawn(process.execPath, [BIN, 'serve'], { env: childEnv({ ...env.env, SIGNET_PORT: String(port) }), stdio: ['ignore', 'pipe', 'pipe'] });
      let err = '';
      second.stderr.on('data', (d) => {
        err += d;
      });
      try {
        const deadline = Date.now() + 60_000;
        for (;;) {
          assert.equal(second.exitCode, null, `restart after a kill at ${delay} ms failed: ${err}`);
          try {
            if ((await fetch(`http://127.0.0.1:${port}/readyz`)).ok) break;
          } catch {
            /* not yet */
          }
          assert.ok(Date.now() < deadline, `not ready after a kill at ${delay} ms: ${err}`);
          await new Promise((r) => setTimeout(r, 100));
        }
        assert.equal(Number((await sql(env, 'SELECT COUNT(*) AS n FROM "CertificateAuthority"'))[0].n), 2, `one hierarchy after a kill at ${delay} ms`);
      } finally {
        second.kill('SIGTERM');
        await new Promise((r) => second.once('exit', r));
      }
    }
  });
});

describe('data directory and database file modes', () => {
  const envs: TestEnv[] = [];
  after(async () => {
    for (const e of envs) await e.cleanup();
  });

  test('a new data directory is 0700, the SQLite database and its -wal/-shm 0600, and nothing is warned', async () => {
    const env = await createTestEnv();
    envs.push(env);
    const dataDir = join(env.dataDir, 'new');
    const server = await startServer({ ...env.env, SIGNET_DATA_DIR: dataDir });
    try {
      assert.equal(statSync(dataDir).mode & 0o777, 0o700);
      if (!onPostgres) {
        const db = join(dataDir, 'signet.db');
        for (const f of [db, `${db}-wal`, `${db}-shm`]) {
          assert.ok(existsSync(f), `${f} exists while the server runs`);
          assert.equal((statSync(f).mode & 0o777).toString(8), '600', f);
        }
      }
      assert.doesNotMatch(server.stderr(), /warning|accessible to other users/);
    } finally {
      await server.stop();
    }
  });

  test('a group/world-accessible data directory is warned about at start: one structured log line and one stderr line', async () => {
    const env = await createTestEnv();
    envs.push(env);
    chmodSync(env.dataDir, 0o755);
    const server = await startServer(env.env);
    try {
      const lines = server.stderr().split('\n');
      const plain = lines.filter((l) => l.startsWith('signet: warning:'));
      assert.equal(plain.length, 1, server.stderr());
      assert.match(
        plain[0]!,
        new RegExp(`accessible to other users: ${env.dataDir.replace(/[.]/g, '\\.')} \\(mode 0755\\).*; run chmod 700 ${env.dataDir.replace(/[.]/g, '\\.')}`),
      );
      const structured = lines
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l))
        .filter((l) => l.msg === 'the data directory or database files are accessible to other users');
      assert.equal(structured.length, 1, server.stderr());
      assert.equal(structured[0].level, 40, 'warn level');
      assert.deepEqual(structured[0].exposed[0], { path: env.dataDir, mode: '0755' });
      if (!onPostgres)
        assert.equal((statSync(join(env.dataDir, 'signet.db')).mode & 0o777).toString(8), '600', 'the database is private even in a shared directory');
    } finally {
      await server.stop();
    }
  });

  if (!onPostgres)
    test('an existing database file readable by others is named in the warning', async () => {
      const env = await createTestEnv();
      envs.push(env);
      assert.equal(signet(['migrate'], env.env).status, 0);
      chmodSync(join(env.dataDir, 'signet.db'), 0o644);
      const server = await startServer(env.env);
      try {
        assert.match(
          server.stderr(),
          new RegExp(`signet: warning: accessible to other users: ${join(env.dataDir, 'signet.db').replace(/[.]/g, '\\.')} \\(mode 0644\\)`),
        );
      } finally {
        await server.stop();
      }
    });
});
