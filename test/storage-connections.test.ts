/**
 * Which connection a query runs on (src/storage/sqlite-routing.ts; on PostgreSQL, the pool,
 * under SIGNET_TEST_POSTGRES). A write or read made outside a transaction must not become part
 * of a transaction that happens to be open at the time:
 *   - a plain write made while a transaction is open survives that transaction's rollback
 *     (on one shared SQLite connection it ran inside the transaction and was rolled back with it);
 *   - a plain read made while a transaction is open does not see its uncommitted rows;
 *   - a plain write does not wait for the open transaction's lock on the event loop (two plain
 *     SQLite connections deadlocked here for the 10 s busy timeout): it queues behind the
 *     transaction and completes as soon as it commits;
 *   - a burst of concurrent transactions, plain reads and plain writes all complete;
 *   - the audit head (newest event, recorded head) is read in one snapshot, so another process's
 *     commit between the two reads cannot pair them wrongly (a false integrity alarm at a CLI's
 *     start, found by the attack round).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import pino from 'pino';
import { loadConfig } from '../src/config/config.js';
import { openSignet } from '../src/runtime/open.js';
import type { CaContext } from '../src/ca/context.js';
import { appendAudit } from '../src/ca/audit.js';
import { createStores } from '../src/storage/stores.js';
import { createTestEnv, onPostgres, type TestEnv } from './helpers/env.js';
import { AUDIT_HEAD_KEY } from '../src/model/audit.js';

const ROLLBACK = new Error('roll back on purpose');

describe('plain queries and open transactions', () => {
  let env: TestEnv;
  let ctx: CaContext;
  let settings: ReturnType<typeof createStores>['settings'];
  before(async () => {
    env = await createTestEnv();
    ctx = await openSignet(loadConfig(env.env), pino({ level: 'silent' }));
    settings = createStores(ctx.db).settings;
  });
  after(async () => {
    await ctx?.db.close();
    await env?.cleanup();
  });

  /** Opens a transaction that appends one audit event and waits for `release` before rolling back. */
  function openTransaction(release: Promise<void>): { started: Promise<void>; done: Promise<unknown> } {
    let started!: () => void;
    const startedP = new Promise<void>((r) => {
      started = r;
    });
    const done = ctx.db
      .transaction(async (tx) => {
        await appendAudit(tx, { actor: 'test', action: 'test.uncommitted', target: randomBytes(4).toString('hex') });
        started();
        await release;
        throw ROLLBACK;
      })
      .catch((e: unknown) => {
        if (e !== ROLLBACK) throw e;
      });
    return { started: startedP, done };
  }

  test('a plain write made during an open transaction survives its rollback', async () => {
    let release!: () => void;
    const t = openTransaction(
      new Promise<void>((r) => {
        release = r;
      }),
    );
    await t.started;
    const key = `test-${randomBytes(6).toString('hex')}`;
    const write = settings.insertIfAbsent(key, 'kept');
    // The write may queue behind the transaction, but must not be stuck on the event loop.
    const tick = await Promise.race([new Promise<string>((r) => setTimeout(() => r('loop free'), 50)), write.then(() => 'written')]);
    assert.ok(['loop free', 'written'].includes(tick));
    release();
    await t.done;
    await write;
    assert.equal((await settings.get(key))?.value, 'kept', 'the plain write was rolled back with the transaction it was not part of');
  });

  test('a plain read made during an open transaction does not see its uncommitted rows', async () => {
    const before = await ctx.stores.audit.count();
    let release!: () => void;
    const t = openTransaction(
      new Promise<void>((r) => {
        release = r;
      }),
    );
    await t.started;
    const during = await ctx.stores.audit.count();
    release();
    await t.done;
    assert.equal(during, before, 'a read outside the transaction saw an event that was never committed');
    assert.equal(await ctx.stores.audit.count(), before);
  });

  test('a burst of transactions, plain reads and plain writes all complete', async () => {
    const started = Date.now();
    const work: Promise<unknown>[] = [];
    for (let i = 0; i < 20; i++) {
      work.push(ctx.db.transaction(async (tx) => appendAudit(tx, { actor: 'test', action: 'test.burst', target: String(i) })));
      work.push(ctx.stores.audit.count());
      work.push(settings.insertIfAbsent(`burst-${randomBytes(6).toString('hex')}`, String(i)));
    }
    const results = await Promise.allSettled(work);
    const failed = results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason));
    assert.deepEqual(failed, []);
    // Not a timing assertion on speed: a deadlock would show as the busy timeout (10 s).
    assert.ok(Date.now() - started < 9_000, `the burst took ${Date.now() - started} ms: something waited for a lock`);
  });

  // Another process appending (the server next to a CLI): a child with its own connection,
  // committing events and the head in one transaction each, as fast as it can.
  // SQLite only (the child writer speaks SQLite); on PostgreSQL the snapshot is REPEATABLE READ.
  if (!onPostgres)
    test('the audit head is read in one snapshot while another process appends', async () => {
      const file = join(env.dataDir, 'signet.db');
      const script = `
      const Database = require('better-sqlite3');
      const db = new Database(process.argv[1], { timeout: 5000 });
      let seq = db.prepare('SELECT MAX(seq) AS m FROM "AuditEvent"').get().m ?? 0;
      const ins = db.prepare('INSERT INTO "AuditEvent" (seq, time, actor, action, outcome, prevHash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)');
      const head = db.prepare('UPDATE "Setting" SET value = ? WHERE key = ?');
      const one = db.transaction(() => { seq++; ins.run(seq, new Date().toISOString().replace('Z', '+00:00'), 'test', 'test.child', 'success', 'x', 'y' + seq); head.run(seq + ':y' + seq, '${AUDIT_HEAD_KEY}'); });
      const until = Date.now() + 3000;
      while (Date.now() < until) one();
    `;
      const child = spawn(process.execPath, ['-e', script, file], { stdio: 'inherit' });
      const exited = new Promise((r) => child.once('exit', r));
      const mismatches: string[] = [];
      await new Promise((r) => setTimeout(r, 200));
      for (let i = 0; i < 300 && child.exitCode === null; i++) {
        const { newest, recorded } = await ctx.stores.audit.head();
        const seq = Number(recorded?.split(':')[0]);
        if (newest?.seq !== seq) mismatches.push(`newest ${newest?.seq} with recorded head ${recorded}`);
      }
      await exited;
      assert.deepEqual(mismatches.slice(0, 3), [], `${mismatches.length} reads paired a head with another event`);
    });
});
