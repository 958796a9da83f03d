/**
 * SQLite only: once a server issues, its WAL is checkpointed by a thread of its own (the
 * issuance writer's auto-checkpoint is off, so that copying the WAL into the database file
 * and fsyncing it never happens inside a request). Observable from outside: the database file
 * grows while the server runs — with no checkpointer at all, every new page would stay in the
 * WAL until shutdown. And a reader holding an old snapshot (a backup, a sqlite3 shell) holds up
 * no writer: the checkpointer used to wait for it with the write lock held, starving every
 * other writer for as long as the read lasted (503s after 10 s, the event loop frozen).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { api, startServer, type RunningServer } from './helpers/cli.js';
import { createTestEnv, onPostgres, type TestEnv } from './helpers/env.js';
import { csrMaker, TempDir } from './helpers/openssl.js';

if (!onPostgres)
  describe('SQLite WAL checkpoints in their own thread', () => {
    let env: TestEnv;
    let server: RunningServer;
    const tmp = new TempDir();
    const makeCsr = csrMaker(tmp);
    before(async () => {
      env = await createTestEnv();
      server = await startServer(env.env);
    });
    after(async () => {
      await server?.stop();
      await env?.cleanup();
      tmp.remove();
    });

    test('the database file takes the new pages while the server runs; the WAL stays bounded', async () => {
      const db = join(env.dataDir, 'signet.db');
      const before = statSync(db).size;
      const csrs = Array.from({ length: 20 }, (_, i) => makeCsr(`DNS:wal${i}.example.com`));
      // A hundred certificates: well under the 1,000 pages at which any connection (Prisma's too)
      // would checkpoint on commit, so only the thread can have moved them.
      for (let round = 0; round < 5; round++) {
        const replies = await Promise.all(csrs.map((csr) => api(server, 'POST', '/api/v1/certificates', { csr, profile: 'server' })));
        for (const r of replies) assert.equal(r.status, 201, r.text);
      }
      let grown = false;
      for (let i = 0; i < 100 && !grown; i++) {
        grown = statSync(db).size > before;
        if (!grown) await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(grown, `the database file stayed at ${before} bytes: nothing checkpointed the WAL`);
      const wal = statSync(`${db}-wal`).size;
      assert.ok(wal < 64 * 1024 * 1024, `WAL is ${wal} bytes`);
    });

    test('a reader holding an old snapshot does not stop the server or another process from writing', async () => {
      const file = join(env.dataDir, 'signet.db');
      const reader = new Database(file, { readonly: true });
      reader.exec('BEGIN');
      reader.prepare('SELECT count(*) FROM "Certificate"').get(); // the snapshot is taken here
      try {
        const slowest: number[] = [];
        // Writes after the snapshot give the checkpointer frames it cannot reset past the reader.
        for (let round = 0; round < 6; round++) {
          const t0 = Date.now();
          const replies = await Promise.all(
            Array.from({ length: 5 }, (_, i) =>
              api(server, 'POST', '/api/v1/certificates', { csr: makeCsr(`DNS:snap${round}-${i}.example.com`), profile: 'server' }),
            ),
          );
          for (const r of replies) assert.equal(r.status, 201, r.text);
          const serial = replies[0]!.json.serial as string;
          const revoked = await api(server, 'POST', `/api/v1/certificates/${serial}/revoke`, { reason: 'superseded' });
          assert.equal(revoked.status, 200, revoked.text);
          // An authenticated read: its token last-used write goes through the Prisma writer.
          assert.equal((await api(server, 'GET', '/api/v1/cas')).status, 200);
          slowest.push(Date.now() - t0);
          await new Promise((r) => setTimeout(r, 300));
        }
        // Another process's write (the CLI next to the server) gets the lock too.
        const outside = new Database(file, { timeout: 5000 });
        const t0 = Date.now();
        outside.exec('BEGIN IMMEDIATE');
        outside.exec('ROLLBACK');
        outside.close();
        const waited = Date.now() - t0;
        // The failure this guards against is a wait as long as the reader (here the whole test)
        // ending in SQLITE_BUSY or 503 after 10 s: the bounds are that, not a speed target.
        assert.ok(waited < 4000, `another process waited ${waited} ms for the write lock`);
        assert.ok(Math.max(...slowest) < 8000, `rounds took ${slowest.join(', ')} ms while a reader held a snapshot`);
      } finally {
        reader.exec('COMMIT');
        reader.close();
      }
    });
  });
