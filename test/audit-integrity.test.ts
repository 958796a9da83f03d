/**
 * Issue 12 item 11: someone who can write to the database but does not hold the master key
 * cannot forge or truncate the audit trail undetected. The chain is keyed (HMAC-SHA256 under a
 * KEK-derived key); signed checkpoints outside the database (<data>/audit-checkpoints) pin its
 * head; `signet audit verify` checks the chain, the checkpoints, and every certificate and CA
 * against the event that created it; an append never overwrites a head that does not match.
 *
 * Each attack is made directly in the database (SQLite, or PostgreSQL under
 * SIGNET_TEST_POSTGRES) with what a forger without the key can compute, and undone from a
 * copy before the next.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, randomBytes, sign, verify, createPublicKey } from 'node:crypto';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { api, signet, signetAsync, startServer, type RunningServer } from './helpers/cli.js';
import { createTestEnv, onPostgres, type TestEnv } from './helpers/env.js';
import { csrMaker, openssl, TempDir } from './helpers/openssl.js';
import { countRows, sql } from './helpers/sql.js';
import { canonical, keyedHash, legacyHash } from '../src/ca/audit.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const tmp = new TempDir();
const makeCsr = csrMaker(tmp);

interface Event {
  seq: number;
  time: string;
  actor: string;
  action: string;
  target: string | null;
  outcome: string;
  sourceIp: string | null;
  details: any;
  prevHash: string;
  hash: string;
}
interface Payload {
  seq: number;
  hash: string;
  keyedFrom: number | null;
  time: string;
  writer: string;
}

describe('audit trail integrity against a database-only attacker', { concurrency: false }, () => {
  let env: TestEnv;
  let server: RunningServer | undefined;
  const checkpointFile = () => join(env.dataDir, 'audit-checkpoints');
  const payloads = (): Payload[] =>
    existsSync(checkpointFile())
      ? readFileSync(checkpointFile(), 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(Buffer.from(l.split('.')[1]!, 'base64url').toString()))
      : [];
  const headValue = async () => (await sql(env, `SELECT value FROM "Setting" WHERE key = 'audit.head'`))[0]?.value as string | undefined;
  const eventCount = () => countRows(env, 'AuditEvent');

  async function start(): Promise<RunningServer> {
    // A test that failed before its stop() leaves its server running: stop it, or this file never exits.
    if (server) await server.stop('SIGKILL').catch(() => undefined);
    return (server = await startServer(env.env));
  }
  async function stop(): Promise<void> {
    if (server) assert.equal(await server.stop(), 0, server.stderr());
    server = undefined;
  }
  async function exportEvents(): Promise<Event[]> {
    const r = await signetAsync(['audit', 'export'], env.env);
    assert.equal(r.status, 0, r.stderr);
    return r.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
  }
  async function verifyCli(): Promise<{ status: number | null; stdout: string; stderr: string; json: any }> {
    const r = await signetAsync(['audit', 'verify'], env.env);
    const j = await signetAsync(['audit', 'verify', '--json'], env.env);
    assert.equal(j.status, r.status, `text and JSON agree: ${r.stderr}`);
    return { ...r, json: JSON.parse(j.stdout) };
  }
  async function expectVerifyFails(): Promise<{ stderr: string; json: any }> {
    const r = await verifyCli();
    assert.equal(r.status, 1, `verify must fail: ${r.stdout}${r.stderr}`);
    assert.equal(r.stdout, '', 'no OK line');
    assert.equal(r.json.ok, false);
    return r;
  }
  const COLUMNS = '"seq", "time", "actor", "action", "target", "outcome", "sourceIp", "details", "prevHash", "hash"';
  const contentOf = (e: Event) => canonical({ ...e, time: new Date(e.time), details: e.details === null ? null : JSON.stringify(e.details) });
  /** Rewrites events (oldest first) with hashes `hashOf` computes from the new predecessor, and sets the head to the last. */
  async function rehash(events: Event[], prevHash: string, hashOf: (prev: string, content: string) => string): Promise<void> {
    let prev = prevHash;
    for (const e of events) {
      const hash = hashOf(prev, contentOf(e));
      await sql(env, 'UPDATE "AuditEvent" SET details = ?, "prevHash" = ?, hash = ? WHERE seq = ?', [
        e.details === null ? null : JSON.stringify(e.details),
        prev,
        hash,
        e.seq,
      ]);
      prev = hash;
    }
    await sql(env, `UPDATE "Setting" SET value = ? WHERE key = 'audit.head'`, [`${events[events.length - 1]!.seq}:${prev}`]);
  }

  // The intact state every test starts from (and is restored to).
  let intact: { head: string; checkpoints: string; events: number };
  async function snapshot(): Promise<void> {
    await sql(env, 'DROP TABLE IF EXISTS audit_backup');
    await sql(env, 'CREATE TABLE audit_backup AS SELECT * FROM "AuditEvent"');
    intact = {
      head: (await headValue())!,
      checkpoints: existsSync(checkpointFile()) ? readFileSync(checkpointFile(), 'utf8') : '',
      events: await eventCount(),
    };
  }
  async function restore(): Promise<void> {
    await stop();
    await sql(env, 'DELETE FROM "AuditEvent"');
    await sql(env, `INSERT INTO "AuditEvent" (${COLUMNS}) SELECT ${COLUMNS} FROM audit_backup`);
    await sql(env, `DELETE FROM "Setting" WHERE key = 'audit.head'`);
    await sql(env, `INSERT INTO "Setting" (key, value) VALUES ('audit.head', ?)`, [intact.head]);
    writeFileSync(checkpointFile(), intact.checkpoints);
    const r = await verifyCli();
    assert.equal(r.status, 0, `restored: ${r.stderr}`);
  }

  before(async () => {
    env = await createTestEnv({ SIGNET_AUDIT_INTERVAL_SECONDS: '1', SIGNET_CRL_COALESCE_MS: '100' });
    await start();
    for (let i = 0; i < 3; i++)
      assert.equal((await api(server!, 'POST', '/api/v1/certificates', { csr: makeCsr(`DNS:i${i}.integrity.test`), profile: 'server' })).status, 201);
    await sleep(300); // the CRL and OCSP work that follows
    await stop(); // the last checkpoint is written at shutdown
    await snapshot();
  });
  after(async () => {
    await server?.stop();
    await env?.cleanup();
    tmp.remove();
  });

  test('the intact trail: keyed from event 1, checkpoints pin its head, and every certificate has its event', async () => {
    const r = await verifyCli();
    assert.equal(r.status, 0, r.stderr);
    const cps = payloads();
    assert.ok(cps.length >= 1, 'checkpoints were written');
    const [seq, hash] = intact.head.split(':');
    assert.deepEqual([cps.at(-1)!.seq, cps.at(-1)!.hash, cps.at(-1)!.keyedFrom], [Number(seq), hash, 1], 'the newest checkpoint is the head');
    assert.deepEqual([r.json.keyedFrom, r.json.checkpoints.problems, r.json.inventory.problems, r.json.inventory.certificates], [1, [], [], 3]);
    assert.equal(statSync(checkpointFile()).mode & 0o777, 0o600, 'the checkpoint file is private');
    for (const e of await exportEvents()) assert.notEqual(legacyHash(e.prevHash, contentOf(e)), e.hash, `event ${e.seq} is not a plain SHA-256 link`);
  });

  test('every event and the head recomputed with plain SHA-256 (no key): verify fails', async () => {
    const events = await exportEvents();
    await rehash(events, '0'.repeat(64), legacyHash);
    const r = await expectVerifyFails();
    assert.match(r.stderr, /^signet: audit chain BROKEN at event 1: no event carries a valid MAC: the trail was rewritten by someone without the master key/m);
    assert.match(
      r.stderr,
      /^signet: audit checkpoint problem: checkpoint \S+:\d+ \(\S+\) says event \d+ is [0-9a-f]{16}…, but it is [0-9a-f]{16}…: the chain was rewritten from there$/m,
    );
    await restore();
  });

  test('one event edited and the rest of the chain and the head recomputed without the key: named at the edit', async () => {
    const events = await exportEvents();
    const k = Math.floor(events.length / 2);
    const edited = events.slice(k - 1).map((e) => (e.seq === k ? { ...e, details: { ...e.details, tampered: true } } : e));
    // Plain SHA-256, as the chain was before it was keyed…
    await rehash(edited, events[k - 2]!.hash, legacyHash);
    let r = await expectVerifyFails();
    assert.match(
      r.stderr,
      new RegExp(
        `^signet: audit chain BROKEN at event ${k}: event ${k} has an unkeyed hash inside the keyed chain \\(keyed from event 1\\): it was rewritten by someone without the master key$`,
        'm',
      ),
    );
    await restore();
    // …and HMAC under a key the forger made up.
    const guess = randomBytes(32);
    await rehash(edited, events[k - 2]!.hash, (prev, content) => keyedHash(guess, prev, content));
    r = await expectVerifyFails();
    assert.match(r.stderr, new RegExp(`^signet: audit chain BROKEN at event ${k}: event ${k} was edited: its content does not match its MAC$`, 'm'));
    await restore();
  });

  test('every event and the head deleted: verify fails on the checkpoints and on the certificates, and Signet records nothing', async () => {
    const certificates = await countRows(env, 'Certificate');
    const cas = await countRows(env, 'CertificateAuthority');
    await sql(env, 'DELETE FROM "AuditEvent"');
    await sql(env, `DELETE FROM "Setting" WHERE key = 'audit.head'`);
    const r = await expectVerifyFails();
    assert.doesNotMatch(r.stderr, /audit chain BROKEN/, 'an empty chain is a consistent chain: only what is outside it can tell');
    assert.match(
      r.stderr,
      new RegExp(
        `^signet: audit checkpoint problem: checkpoint \\S+:\\d+ \\(\\S+\\) is at event ${intact.events}, but the chain ends at event 0: events 1\\.\\.${intact.events} were deleted$`,
        'm',
      ),
    );
    assert.match(r.stderr, new RegExp(`^signet: audit inventory problem: ${certificates} of ${certificates} stored certificates have no issuance event`, 'm'));
    assert.match(r.stderr, new RegExp(`^signet: audit inventory problem: ${cas} of ${cas} CAs have no ca.created or ca.imported event`, 'm'));
    // A server started on it does not begin a new chain from event 1.
    const s = await start();
    const issued = await api(s, 'POST', '/api/v1/certificates', { csr: makeCsr('DNS:after-wipe.integrity.test'), profile: 'server' });
    assert.equal(issued.status, 503, issued.text);
    assert.match(
      issued.json.detail,
      /^the audit trail failed its integrity check, so nothing is recorded or changed until an operator runs `signet audit verify` and `signet audit recover`: /,
    );
    assert.equal(await eventCount(), 0);
    assert.equal(await countRows(env, 'Certificate'), certificates, 'nothing was issued');
    await restore();
  });

  test('a corrupted head: the next append is refused instead of overwriting it, verify names it, and recover lets Signet go on', async () => {
    const [seq] = intact.head.split(':');
    const corrupted = `${seq}:${'f'.repeat(64)}`;
    await sql(env, `UPDATE "Setting" SET value = ? WHERE key = 'audit.head'`, [corrupted]);
    const s = await start();
    const certificates = await countRows(env, 'Certificate');
    const issued = await api(s, 'POST', '/api/v1/certificates', { csr: makeCsr('DNS:corrupt-head.integrity.test'), profile: 'server' });
    assert.equal(issued.status, 503, issued.text);
    assert.match(issued.json.detail, new RegExp(`integrity check.*the recorded head is event ${seq} \\(ffffffffffffffff…\\) but the newest event is ${seq} `));
    const token = await api(s, 'POST', '/api/v1/tokens', { name: 'during', scopes: ['read'] });
    assert.equal(token.status, 503, 'every change is refused, not only issuance');
    assert.equal(await headValue(), corrupted, 'the head was not overwritten');
    assert.equal(await eventCount(), intact.events, 'no event was appended');
    assert.equal(await countRows(env, 'Certificate'), certificates, 'nothing was issued');
    assert.match(s.stderr(), /audit trail failed its integrity check/, 'the operator sees it in the log');

    const r = await expectVerifyFails();
    assert.match(r.stderr, new RegExp(`^signet: audit chain BROKEN at event ${seq}: event ${seq} is not the recorded head \\(hash f{64}\\)`, 'm'));
    const rec = await signetAsync(['audit', 'recover', '--reason', 'head overwritten in a test'], env.env);
    assert.equal(rec.status, 0, rec.stderr);
    assert.match(rec.stdout, new RegExp(`^recorded audit.recovered as event ${Number(seq) + 1}; Signet records changes again`));
    assert.doesNotMatch(rec.stderr, /still reported/, 'nothing left for verify to report');
    const again = await api(s, 'POST', '/api/v1/tokens', { name: 'after', scopes: ['read'] });
    assert.equal(again.status, 201, again.text);
    await stop();
    const ok = await verifyCli();
    assert.equal(ok.status, 0, ok.stderr);
    const recovered = (await exportEvents()).find((e) => e.action === 'audit.recovered')!;
    assert.equal(recovered.details.reason, 'head overwritten in a test');
    assert.equal(recovered.details.recordedHead, corrupted);
    assert.match(recovered.details.problems[0], /is not the recorded head/);
    await sql(env, 'DELETE FROM "ApiToken" WHERE name = ?', ['after']);
    await restore();
  });

  test('the newest events deleted and the head set to match: the checkpoints catch it (live at once), recover accepts it', async () => {
    const s = await start();
    for (const name of ['t1', 't2', 't3']) assert.equal((await api(s, 'POST', '/api/v1/tokens', { name, scopes: ['read'] })).status, 201);
    const head = (await headValue())!;
    const top = Number(head.split(':')[0]);
    // Written by the timer, while the server runs, once the head moved.
    for (let i = 0; i < 50 && payloads().at(-1)?.seq !== top; i++) await sleep(100);
    assert.equal(payloads().at(-1)?.seq, top, 'a checkpoint of the new head within the interval');
    const end = top - 3;
    const [{ hash }] = await sql(env, 'SELECT hash FROM "AuditEvent" WHERE seq = ?', [end]);
    await sql(env, 'DELETE FROM "AuditEvent" WHERE seq > ?', [end]);
    await sql(env, `UPDATE "Setting" SET value = ? WHERE key = 'audit.head'`, [`${end}:${hash}`]);
    const refused = await api(s, 'POST', '/api/v1/tokens', { name: 't4', scopes: ['read'] });
    assert.equal(refused.status, 503, refused.text);
    assert.match(refused.json.detail, new RegExp(`the newest event is ${end}, but this process checkpointed event ${top} `));
    assert.equal(await eventCount(), end);
    await stop();

    const r = await expectVerifyFails();
    assert.doesNotMatch(r.stderr, /audit chain BROKEN/, 'the chain itself is consistent: only the checkpoints can tell');
    assert.match(
      r.stderr,
      new RegExp(
        `^signet: audit checkpoint problem: checkpoint \\S+:\\d+ \\(\\S+\\) is at event ${top}, but the chain ends at event ${end}: events ${end + 1}\\.\\.${top} were deleted$`,
        'm',
      ),
    );
    const lost = (await sql(env, `SELECT id FROM "ApiToken" WHERE name IN ('t1', 't2', 't3') ORDER BY id`)).map((t: any) => t.id);
    assert.deepEqual(
      r.json.inventory.problems.map((p: any) => p.problem),
      [`3 of ${await countRows(env, 'ApiToken')} API tokens have no token.created event (inserted in the database?): ${lost.join(', ')}`],
      'no certificate lost its event; the three tokens whose creation events were deleted are named',
    );

    const rec = await signetAsync(['audit', 'recover', '--reason', 'three token events lost; confirmed with the token owners'], env.env);
    assert.equal(rec.status, 0, rec.stderr);
    const ok = await verifyCli();
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(
      ok.stderr,
      new RegExp(
        `^signet: note: checkpoint \\S+ \\(\\S+\\) is at event ${top}, but the chain ends at event ${end + 1}: events ${end + 2}\\.\\.${top} were deleted \\(accepted by audit.recovered at event ${end + 1}\\)$`,
        'm',
      ),
    );
    assert.ok(ok.json.checkpoints.acknowledged.length >= 1);
    const s2 = await start();
    assert.equal((await api(s2, 'POST', '/api/v1/tokens', { name: 't5', scopes: ['read'] })).status, 201, 'Signet records changes again');
    await sql(env, `DELETE FROM "ApiToken" WHERE name IN ('t1', 't2', 't3', 't5')`);
    await restore();
  });

  test('checkpoints verify with the published public key (openssl), and a forged one is refused', async () => {
    const s = await start();
    const anon = await api({ url: s.url, token: '' }, 'GET', '/api/v1/audit/checkpoints', undefined, { authorization: '' });
    assert.equal(anon.status, 401);
    const reader = (await api(s, 'POST', '/api/v1/tokens', { name: 'reader', scopes: ['read'] })).json;
    assert.equal((await api({ url: s.url, token: reader.token }, 'GET', '/api/v1/audit/checkpoints')).status, 403, 'the audit.read operation needs admin');
    assert.equal((await api(s, 'GET', '/api/v1/audit/checkpoints?limit=0')).status, 400);
    assert.equal((await api(s, 'GET', '/api/v1/audit/checkpoints?colour=blue')).status, 400);
    // Once the timer has checkpointed the head (the token just created moved it), nothing moves it.
    const top = Number((await headValue())!.split(':')[0]);
    for (let i = 0; i < 50 && payloads().at(-1)?.seq !== top; i++) await sleep(100);
    const r = await api(s, 'GET', '/api/v1/audit/checkpoints?limit=5');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers.get('cache-control'), 'no-store');
    assert.equal(r.json.algorithm, 'Ed25519');
    assert.ok(r.json.items.length >= 1 && r.json.items.length <= 5);
    const newest: Payload & { jws: string } = r.json.items[0];
    // The line of the file at the same sequence number (a refusal's audit event may already have
    // moved the head, and the timer written a later line, between the two reads).
    const lines = readFileSync(checkpointFile(), 'utf8').trimEnd().split('\n');
    const at = payloads().findIndex((p) => p.seq === newest.seq);
    assert.ok(at >= 0, `the file holds the checkpoint of event ${newest.seq}`);
    assert.deepEqual(newest, { ...payloads()[at], jws: lines[at] }, 'a line of the file, decoded');
    assert.ok(newest.seq >= top, 'the newest checkpoint the API shows is at least the head checkpointed above');
    const cli = signet(['audit', 'checkpoints', '--public-key'], env.env);
    assert.equal(cli.stdout, r.json.publicKey, 'the CLI prints the same public key');

    // An external party, with openssl and the published key only.
    const [h, p, sig] = (newest.jws as string).split('.');
    const pub = tmp.file('checkpoint-pub.pem', r.json.publicKey);
    const msg = tmp.file('checkpoint.msg', `${h}.${p}`);
    const sigFile = tmp.file('checkpoint.sig', Buffer.from(sig!, 'base64url'));
    const ok = openssl(['pkeyutl', '-verify', '-pubin', '-inkey', pub, '-rawin', '-in', msg, '-sigfile', sigFile]);
    assert.equal(ok.status, 0, ok.stderr + ok.stdout);
    assert.match(ok.stdout, /Signature Verified Successfully/);
    assert.equal(
      createHash('sha256')
        .update(createPublicKey(r.json.publicKey).export({ format: 'der', type: 'spki' }))
        .digest('hex')
        .slice(0, 16),
      r.json.keyId,
    );
    // The same payload with a higher seq, keeping the signature: openssl and Signet refuse it.
    const forgedPayload = Buffer.from(JSON.stringify({ ...newest, jws: undefined, seq: newest.seq + 1000 })).toString('base64url');
    const bad = openssl(['pkeyutl', '-verify', '-pubin', '-inkey', pub, '-rawin', '-in', tmp.file('forged.msg', `${h}.${forgedPayload}`), '-sigfile', sigFile]);
    assert.notEqual(bad.status, 0, 'openssl refuses the forged checkpoint');
    await stop();
    appendFileSync(checkpointFile(), `${h}.${forgedPayload}.${sig}\n`);
    let v = await expectVerifyFails();
    assert.match(v.stderr, /^signet: audit checkpoint problem: checkpoint \S+:\d+ is forged: its signature does not verify under the checkpoint key$/m);
    // Signed with a key of the forger's own, under the published key id.
    writeFileSync(checkpointFile(), intact.checkpoints);
    const forger = generateKeyPairSync('ed25519');
    const input = `${h}.${forgedPayload}`;
    appendFileSync(checkpointFile(), `${input}.${sign(null, Buffer.from(input), forger.privateKey).toString('base64url')}\n`);
    v = await expectVerifyFails();
    assert.match(v.stderr, /is forged: its signature does not verify under the checkpoint key$/m);
    assert.ok(verify(null, Buffer.from(input), forger.publicKey, sign(null, Buffer.from(input), forger.privateKey)));
    await sql(env, 'DELETE FROM "ApiToken" WHERE name = ?', ['reader']);
    await restore();
  });

  test('a trail from before keying (plain SHA-256) is keyed at the next start, and rewriting it back is caught', async () => {
    const events = await exportEvents();
    await rehash(events, '0'.repeat(64), legacyHash);
    rmSync(checkpointFile()); // as an installation from before checkpoints had none
    const s = await start();
    assert.equal((await api(s, 'POST', '/api/v1/tokens', { name: 'upgraded', scopes: ['read'] })).status, 201);
    await stop();
    const all = await exportEvents();
    const mark = all[events.length]!;
    assert.equal(mark.action, 'audit.chain.keyed', 'the first event after the legacy ones records where keying began');
    assert.equal(mark.details.legacyEvents, events.length);
    assert.equal(all.at(-1)!.action, 'token.created');
    const cps = payloads();
    assert.deepEqual(
      cps.map((p) => p.keyedFrom),
      cps.map((p) => (p.seq > events.length ? events.length + 1 : null)),
      'checkpoints pin where keying began (the first, of the legacy head, says not yet)',
    );
    assert.ok(
      cps.some((p) => p.seq === events.length + 1),
      'the keying event is checkpointed at once',
    );
    const r = await verifyCli();
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^audit chain OK: ${all.length} events \\(HMAC-keyed from event ${events.length + 1}\\)`));
    // Downgrade: the whole trail, keyed part included, rewritten as plain SHA-256 events.
    await rehash(all, '0'.repeat(64), legacyHash);
    const v = await expectVerifyFails();
    assert.match(v.stderr, /audit chain BROKEN at event 1: no event carries a valid MAC/);
    assert.match(v.stderr, /^signet: audit checkpoint problem: .* the chain was rewritten from there$/m);
    await sql(env, 'DELETE FROM "ApiToken" WHERE name = ?', ['upgraded']);
    await restore();
  });

  test('an older backup restored into the same data directory: the checkpoints after it are accepted by backup.restored', async () => {
    const file = join(tmp.path, 'older.sgb');
    const b = await signetAsync(['backup', file], env.env);
    assert.equal(b.status, 0, b.stderr);
    const s = await start();
    for (const name of ['later1', 'later2']) assert.equal((await api(s, 'POST', '/api/v1/tokens', { name, scopes: ['read'] })).status, 201);
    await stop();
    const lost = Number((await headValue())!.split(':')[0]);
    // The database is lost; the data directory (master key, checkpoints) is not.
    if (onPostgres) {
      await sql(env, 'DROP SCHEMA public CASCADE');
      await sql(env, 'CREATE SCHEMA public');
    } else for (const f of ['signet.db', 'signet.db-wal', 'signet.db-shm']) rmSync(join(env.dataDir, f), { force: true });
    const r = signet(['restore', file], env.env);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const v = await verifyCli();
    assert.equal(v.status, 0, v.stderr);
    assert.match(
      v.stderr,
      new RegExp(
        `^signet: note: checkpoint \\S+ \\(\\S+\\) (is at event ${lost}, but the chain ends|says event \\d+ is).*\\(accepted by backup.restored at event \\d+\\)$`,
        'm',
      ),
    );
    const s2 = await start();
    assert.equal((await api(s2, 'POST', '/api/v1/tokens', { name: 'after-restore', scopes: ['read'] })).status, 201);
    await stop();
    assert.equal((await verifyCli()).status, 0);
  });
});

describe('the window a database-only attacker has to delete new events undetected', () => {
  let env: TestEnv;
  let server: RunningServer | undefined;
  before(async () => {
    env = await createTestEnv({ SIGNET_AUDIT_INTERVAL_SECONDS: '3600' });
  });
  after(async () => {
    await server?.stop();
    await env?.cleanup();
  });

  test('a change is checkpointed about a second after it commits, however long the interval', async () => {
    server = await startServer(env.env);
    const file = join(env.dataDir, 'audit-checkpoints');
    const newestSeq = () =>
      existsSync(file)
        ? (JSON.parse(Buffer.from(readFileSync(file, 'utf8').trim().split('\n').at(-1)!.split('.')[1]!, 'base64url').toString()).seq as number)
        : 0;
    const headSeq = async () => Number(((await sql(env, `SELECT value FROM "Setting" WHERE key = 'audit.head'`))[0].value as string).split(':')[0]);
    const checkpointed = async (head: number) => {
      const t0 = Date.now();
      while (newestSeq() !== head && Date.now() - t0 < 5000) await sleep(100);
      assert.equal(newestSeq(), head, 'the new head was checkpointed while the server runs, not only at the hourly interval or shutdown');
    };
    // The first start's events (the hierarchy, the admin token) were chained after the checkpoint at start.
    await checkpointed(await headSeq());
    const before = newestSeq();
    assert.equal((await api(server, 'POST', '/api/v1/tokens', { name: 'soon', scopes: ['read'] })).status, 201);
    const head = await headSeq();
    assert.ok(head > before, 'the change appended events');
    await checkpointed(head);
    // Deleting the new events now is caught by the running process at the next append.
    const [{ hash }] = await sql(env, 'SELECT hash FROM "AuditEvent" WHERE seq = ?', [before]);
    await sql(env, 'DELETE FROM "AuditEvent" WHERE seq > ?', [before]);
    await sql(env, `UPDATE "Setting" SET value = ? WHERE key = 'audit.head'`, [`${before}:${hash}`]);
    const refused = await api(server, 'POST', '/api/v1/tokens', { name: 'after', scopes: ['read'] });
    assert.equal(refused.status, 503, refused.text);
    assert.match(refused.json.detail, new RegExp(`the newest event is ${before}, but this process checkpointed event ${head} `));
  });
});

describe('checkpoints under concurrent writers', () => {
  let env: TestEnv;
  let server: RunningServer | undefined;
  before(async () => {
    env = await createTestEnv({ SIGNET_WORKERS: '2', SIGNET_AUDIT_INTERVAL_SECONDS: '1' });
  });
  after(async () => {
    await server?.stop();
    await env?.cleanup();
  });

  test('no false tamper alarm while two workers and the CLI append (the head read between an event and its head update)', async () => {
    server = await startServer(env.env);
    const t0 = Date.now();
    let n = 0;
    const cli = (async () => {
      while (Date.now() - t0 < 6000) await signetAsync(['token', 'create', '--name', `cli${n++}`, '--scopes', 'read'], env.env);
    })();
    await Promise.all(
      Array.from({ length: 8 }, async (_, w) => {
        for (let i = 0; Date.now() - t0 < 6000; i++)
          assert.equal((await api(server!, 'POST', '/api/v1/tokens', { name: `w${w}-${i}`, scopes: ['read'] })).status, 201);
      }),
    );
    await cli;
    await sleep(1500); // the checkpoints after the last change
    const logs = server.stdout() + server.stderr();
    assert.doesNotMatch(logs, /audit head not checkpointed|audit trail tampered with/, 'no integrity alarm on an intact trail');
    assert.equal(await server.stop(), 0);
    server = undefined;
    const r = await signetAsync(['audit', 'verify'], env.env);
    assert.equal(r.status, 0, r.stderr);
  });
});
