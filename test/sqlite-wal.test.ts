/**
 * SQLite only: once a server issues, its WAL is checkpointed by a thread of its own (the
 * issuance writer's auto-checkpoint is off, so that copying the WAL into the database file
 * and fsyncing it never happens inside a request). Observable from outside: the database file
 * grows while the server runs — with no checkpointer at all, every new page would stay in the
 * WAL until shutdown.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
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
  });
