/**
 * Every way start-up can find the world wrong stops it with one precise line and touches
 * nothing: bad settings, wrong or missing master key, a corrupted key store, an unusable data
 * directory, a database ahead of the code.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, writeFileSync, rmSync, renameSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { ROOT, signet } from './helpers/cli.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';
import { sql } from './helpers/sql.js';

const oneLine = (s: string) => s.trim().split('\n').length === 1;

describe('configuration is validated before anything happens', () => {
  let env: TestEnv;
  before(async () => {
    env = await createTestEnv();
  });
  after(async () => {
    await env.cleanup();
  });
  const cases: [string, string, RegExp][] = [
    ['SIGNET_PORT', 'eighty', /^signet: error: SIGNET_PORT is invalid: Expected number/],
    ['SIGNET_PORT', '70000', /^signet: error: SIGNET_PORT is invalid: Number must be less than or equal to 65535/],
    ['SIGNET_MASTER_KEY', 'c2hvcnQ=', /SIGNET_MASTER_KEY is invalid: must be base64 of exactly 32 bytes/],
    ['SIGNET_ROOT_KEY', 'dsa-1024', /SIGNET_ROOT_KEY is invalid: Invalid enum value. Expected 'ecdsa-p256' \| /],
    ['SIGNET_PUBLIC_URL', 'ftp://x', /SIGNET_PUBLIC_URL is invalid: must be an http:\/\/ or https:\/\/ URL/],
    ['SIGNET_LOG_LEVEL', 'loud', /SIGNET_LOG_LEVEL is invalid/],
    ['DATABASE_URL', 'mysql://x', /DATABASE_URL must start with postgresql:\/\/ or file:/],
  ];
  test('SIGNET_TLS_PORT equal to SIGNET_PORT is refused', () => {
    const r = signet(['migrate'], { ...env.env, SIGNET_TLS: 'on', SIGNET_PORT: '8443', SIGNET_TLS_PORT: '8443' });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /SIGNET_TLS_PORT and SIGNET_PORT are both 8443: the HTTPS listener needs a port of its own/);
    assert.ok(oneLine(r.stderr), r.stderr);
  });
  for (const [name, value, message] of cases) {
    test(`${name}=${value} is refused`, () => {
      const r = signet(['migrate'], { ...env.env, [name]: value });
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, message);
      assert.ok(oneLine(r.stderr), r.stderr);
    });
  }
  test('a config file mirrors the variables, and unknown keys in it are refused', () => {
    const file = join(env.dataDir, '..', `signet-cfg-${randomBytes(4).toString('hex')}.json`);
    writeFileSync(file, JSON.stringify({ SIGNET_PORT: 'nope' }));
    assert.match(signet(['migrate'], { ...env.env, SIGNET_CONFIG_FILE: file }).stderr, /SIGNET_PORT is invalid/);
    writeFileSync(file, JSON.stringify({ SIGNET_PROT: 8080 }));
    assert.match(signet(['migrate'], { ...env.env, SIGNET_CONFIG_FILE: file }).stderr, /unknown setting SIGNET_PROT/);
    rmSync(file);
  });
});

describe('key store and data directory faults', () => {
  let env: TestEnv;
  before(async () => {
    env = await createTestEnv();
    const r = signet(['init', '--json'], env.env);
    assert.equal(r.status, 0, r.stderr);
  });
  after(async () => {
    await env.cleanup();
  });

  const listOk = () => signet(['ca', 'list', '--json'], env.env);

  test('the store opens with its own master key', () => {
    const r = listOk();
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).length, 2);
  });

  test('a wrong SIGNET_MASTER_KEY is refused, naming both key ids, and creates nothing', async () => {
    const before = await sql(env, 'SELECT COUNT(*) AS n FROM "KeyRecord"');
    const r = signet(['ca', 'list'], { ...env.env, SIGNET_MASTER_KEY: randomBytes(32).toString('base64') });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /was sealed under master key [0-9a-f]{16}, but the master key in use is [0-9a-f]{16}/);
    assert.ok(oneLine(r.stderr));
    assert.deepEqual(await sql(env, 'SELECT COUNT(*) AS n FROM "KeyRecord"'), before);
  });

  test('a missing master key file with sealed keys present is refused, never replaced', () => {
    const file = join(env.dataDir, 'master.key');
    renameSync(file, file + '.bak');
    try {
      const r = listOk();
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /the key store holds sealed CA keys but no master key was given: set SIGNET_MASTER_KEY or restore .*master.key/);
      assert.throws(() => readFileSync(file), 'no new master key was created');
    } finally {
      renameSync(file + '.bak', file);
    }
  });

  test('a master key file readable by others, or truncated, is refused', () => {
    const file = join(env.dataDir, 'master.key');
    const original = readFileSync(file);
    chmodSync(file, 0o644);
    assert.match(listOk().stderr, /is readable by other users \(mode 644\); run chmod 600/);
    chmodSync(file, 0o600);
    writeFileSync(file, original.subarray(0, 20));
    assert.match(listOk().stderr, /does not hold a base64 32-byte master key \(it is truncated or corrupted\)/);
    writeFileSync(file, original);
    assert.equal(listOk().status, 0);
  });

  // CI once saw the second of two `init`s read master.key while the first was still writing it.
  test('processes creating the master key at the same moment all end up with the same whole key', async () => {
    const kek = join(ROOT, 'dist', 'keystore', 'kek.js');
    const resolveIn = (dir: string) =>
      new Promise<string>((resolve) => {
        const code = `import(${JSON.stringify(kek)}).then((m) => process.stdout.write(m.resolveKek({ dataDir: ${JSON.stringify(dir)}, storeHasKeys: false }).id), (e) => process.stdout.write('ERR ' + e.message))`;
        const c = spawn(process.execPath, ['-e', code]);
        let out = '';
        c.stdout.on('data', (d) => {
          out += d;
        });
        c.stderr.on('data', (d) => {
          out += d;
        });
        c.on('exit', () => resolve(out));
      });
    for (let round = 0; round < 8; round++) {
      const dir = mkdtempSync(join(tmpdir(), 'signet-kek-'));
      try {
        const ids = await Promise.all(Array.from({ length: 6 }, () => resolveIn(dir)));
        assert.ok(
          ids.every((id) => /^[0-9a-f]{16}$/.test(id)),
          ids.join('\n'),
        );
        assert.equal(new Set(ids).size, 1, `one key for all: ${ids.join(', ')}`);
        assert.deepEqual(readdirSync(dir), ['master.key'], 'no temporary file is left behind');
        assert.equal(statSync(join(dir, 'master.key')).mode & 0o777, 0o600);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  });

  test('a corrupted or truncated sealed key is reported precisely', async () => {
    const [rec] = await sql<{ id: string; sealed: Uint8Array }>(env, 'SELECT id, sealed FROM "KeyRecord" LIMIT 1');
    const original = Buffer.from(rec!.sealed);
    const flipped = Buffer.from(original);
    flipped[20]! ^= 0x01;
    await sql(env, 'UPDATE "KeyRecord" SET sealed = ? WHERE id = ?', [flipped, rec!.id]);
    let r = listOk();
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, new RegExp(`CA key ${rec!.id} could not be unsealed: the key store record is corrupted or truncated`));
    await sql(env, 'UPDATE "KeyRecord" SET sealed = ? WHERE id = ?', [original.subarray(0, 10), rec!.id]);
    r = listOk();
    assert.match(r.stderr, /could not be unsealed/);
    await sql(env, 'UPDATE "KeyRecord" SET sealed = ? WHERE id = ?', [original, rec!.id]);
    assert.equal(listOk().status, 0);
  });

  test('a data directory that is a file is refused', () => {
    const file = join(env.dataDir, 'not-a-dir');
    writeFileSync(file, 'x');
    const r = signet(['migrate'], { ...env.env, SIGNET_DATA_DIR: file });
    assert.match(r.stderr, /SIGNET_DATA_DIR .* exists but is not a directory/);
  });

  test('a database ahead of the code is refused and left alone', async () => {
    await sql(
      env,
      `INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, started_at, applied_steps_count) VALUES ('future', 'x', CURRENT_TIMESTAMP, '29991231000000_from_the_future', CURRENT_TIMESTAMP, 1)`,
    );
    try {
      const r = signet(['ca', 'list'], env.env);
      assert.notEqual(r.status, 0);
      assert.match(
        r.stderr,
        /the database has migration 29991231000000_from_the_future, which this version of Signet does not know: the database is ahead of the code/,
      );
    } finally {
      await sql(env, `DELETE FROM "_prisma_migrations" WHERE id = 'future'`);
    }
  });
});
