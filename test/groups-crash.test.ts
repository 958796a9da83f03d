/**
 * Key groups and SIGKILL (issue #18): a real `signet serve` (SQLite, or PostgreSQL under
 * test:pg) is killed amid concurrent joins, leaves and revocations of one group's members. After
 * the restart, with no repair: the group's epochs are contiguous and end at its epoch, every
 * change a client was told of is among them, every member's welcome opens with openssl and all
 * members hold one group key, the signed rekey history verifies, and the group changes again.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { api, startServer, type RunningServer } from './helpers/cli.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';
import { openssl, TempDir } from './helpers/openssl.js';
import { sql } from './helpers/sql.js';
import { readGroupKeys, rootOf } from './helpers/group-messages.js';

describe('SIGKILL amid key-group changes', () => {
  let env: TestEnv;
  let server: RunningServer;
  const tmp = new TempDir();
  const members: { serial: string; key: string; cert: string }[] = [];
  /** Epochs a client was told of (2xx answers to adds and removes). */
  const acknowledged: number[] = [];

  before(async () => {
    env = await createTestEnv();
    server = await startServer(env.env);
    env.env.SIGNET_PORT = String(server.port);
    assert.equal((await api(server, 'POST', '/api/v1/groups', { name: 'crash' })).status, 201);
    for (let i = 0; i < 16; i++) {
      const key = tmp.file(`m${i}.key`);
      const req = openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-subj', `/CN=m${i}.crash.test`]);
      assert.equal(req.status, 0, req.stderr);
      const r = await api(server, 'POST', '/api/v1/certificates', { csr: req.stdout, profile: 'group-member' });
      assert.equal(r.status, 201, r.text);
      members.push({ serial: r.json.serial, key, cert: tmp.file(`m${i}.crt`, r.json.certificate) });
    }
  });
  after(async () => {
    await server?.stop('SIGKILL');
    await env?.cleanup();
    tmp.remove();
  });

  test('killed mid-churn: contiguous epochs, every acknowledged change kept, one group key for all members, changes again', async () => {
    let dead = false;
    const worker = async (w: number) => {
      for (let i = 0; !dead; i++) {
        const m = members[(w * 7 + i * 5) % members.length]!;
        try {
          const add = await fetch(`${server.url}/api/v1/groups/crash/members`, {
            method: 'POST',
            headers: { authorization: `Bearer ${server.token}`, 'content-type': 'application/json' },
            body: JSON.stringify({ serial: m.serial }),
          });
          if (add.status === 201) acknowledged.push((await add.json()).epoch);
          else {
            const rm = await fetch(`${server.url}/api/v1/groups/crash/members/${m.serial}`, {
              method: 'DELETE',
              headers: { authorization: `Bearer ${server.token}` },
            });
            if (rm.status === 200) acknowledged.push((await rm.json()).epoch);
          }
        } catch {
          dead = true;
        }
      }
    };
    const load = Promise.all(Array.from({ length: 6 }, (_, w) => worker(w)));
    // Kill once changes are flowing.
    while (acknowledged.length < 30) await new Promise((r) => setTimeout(r, 20));
    await server.stop('SIGKILL');
    dead = true;
    await load;
    server = await startServer(env.env);

    const [g] = await sql(env, 'SELECT id, epoch FROM "KeyGroup" WHERE name = ?', ['crash']);
    const epoch = Number(g!.epoch);
    const epochs = (await sql(env, 'SELECT epoch FROM "KeyGroupEpoch" WHERE "groupId" = ? ORDER BY epoch', [g!.id])).map((r) => Number(r.epoch));
    assert.deepEqual(
      epochs,
      Array.from({ length: epoch }, (_, i) => i + 1),
      'one epoch per change, none missing',
    );
    for (const e of acknowledged) assert.ok(e <= epoch, `acknowledged epoch ${e} is committed (group at ${epoch})`);
    assert.ok(epoch >= 30);

    const now = (await sql(env, 'SELECT serial FROM "KeyGroupMember" WHERE "groupId" = ?', [g!.id])).map((r) => String(r.serial));
    const keys = new Set<string>();
    for (const serial of now) {
      const m = members.find((x) => x.serial === serial)!;
      const r = await fetch(`${server.url}/api/v1/groups/crash/members/${serial}/welcome`, { headers: { authorization: `Bearer ${server.token}` } });
      assert.equal(r.status, 200);
      const out = tmp.file(`${serial}.keys`);
      const d = openssl([
        'cms',
        '-decrypt',
        '-inform',
        'DER',
        '-in',
        tmp.file(`${serial}.der`, Buffer.from(await r.arrayBuffer())),
        '-inkey',
        m.key,
        '-recip',
        m.cert,
        '-out',
        out,
      ]);
      assert.equal(d.status, 0, d.stderr);
      keys.add(rootOf(readGroupKeys(readFileSync(out)).keys).key.toString('hex'));
    }
    if (now.length) assert.equal(keys.size, 1, 'every member holds the same group key');

    // The signed history verifies from the first epoch it keeps in one message.
    const since = Math.max(0, epoch - 1000);
    const rk = await fetch(`${server.url}/api/v1/groups/crash/rekey?since=${since}`, { headers: { authorization: `Bearer ${server.token}` } });
    assert.equal(rk.status, 200);
    const v = openssl(['cms', '-cmsout', '-print', '-inform', 'DER', '-in', tmp.file('rekey.der', Buffer.from(await rk.arrayBuffer()))]);
    assert.equal(v.status, 0, v.stderr);

    // And it changes again.
    const out = members.find((m) => !now.includes(m.serial)) ?? members[0]!;
    const next = now.includes(out.serial)
      ? await api(server, 'DELETE', `/api/v1/groups/crash/members/${out.serial}`)
      : await api(server, 'POST', '/api/v1/groups/crash/members', { serial: out.serial });
    assert.ok(next.status === 200 || next.status === 201, next.text);
    assert.equal(next.json.epoch, epoch + 1);
  });
});
