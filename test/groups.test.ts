/**
 * Key groups (issue #18) against a real `signet serve`, checked with openssl, which nobody on
 * the project wrote: 8 members with P-256 and RSA keys only this test holds read their welcomes
 * with `openssl cms -decrypt` and hold the same group key; after one is revoked, every other
 * member recovers the new group key from the signed rekey message using only keys it already
 * had (`openssl cms -verify`, then `-decrypt -secretkey` per node), the revoked member's keys
 * open none of it, a member added later opens no earlier epoch; bad requests change nothing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { api, signet, startServer, type RunningServer } from './helpers/cli.js';
import { createTestEnv, onPostgres, type TestEnv } from './helpers/env.js';
import { openssl, TempDir } from './helpers/openssl.js';
import { sql } from './helpers/sql.js';
import { int, kids, openWithKek, readGroupKeys, rootOf, str, tlv } from './helpers/group-messages.js';
import pino from 'pino';
import { loadConfig } from '../src/config/config.js';
import { openSignet } from '../src/runtime/open.js';
import { createServices } from '../src/runtime/services.js';

interface Update {
  epoch: number;
  node: string;
  version: number;
  envelope: Buffer;
}
function readRekey(der: Buffer): { group: string; since: number; epoch: number; updates: Update[] } {
  const [group, since, epoch, list] = kids(tlv(der));
  return {
    group: str(group!),
    since: int(since!),
    epoch: int(epoch!),
    updates: kids(list!).map((u) => {
      const [e, node, version, envelope] = kids(u);
      return { epoch: int(e!), node: str(node!), version: int(version!), envelope: Buffer.from(envelope!.whole) };
    }),
  };
}

const childrenOf = (node: string) => {
  const [l, p] = node.split('.').map(Number) as [number, number];
  return [`${l - 1}.${2 * p}`, `${l - 1}.${2 * p + 1}`];
};

describe('key groups with openssl', () => {
  let env: TestEnv;
  let server: RunningServer;
  const tmp = new TempDir();
  let rootFile: string;
  let n = 0;

  interface Member {
    name: string;
    key: string;
    cert: string;
    serial: string;
    keys: Map<string, { version: number; key: Buffer }>;
  }

  async function member(kind: 'ec' | 'rsa', profile = 'group-member'): Promise<Omit<Member, 'keys'>> {
    const name = `m${++n}`;
    const key = tmp.file(`${name}.key`);
    const newkey = kind === 'ec' ? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'] : ['-newkey', 'rsa:2048'];
    const req = openssl([
      'req',
      '-new',
      ...newkey,
      '-nodes',
      '-keyout',
      key,
      '-subj',
      `/CN=${name}.group.test`,
      '-addext',
      `subjectAltName=DNS:${name}.group.test`,
    ]);
    assert.equal(req.status, 0, req.stderr);
    const issued = await api(server, 'POST', '/api/v1/certificates', { csr: req.stdout, profile });
    assert.equal(issued.status, 201, issued.text);
    return { name, key, cert: tmp.file(`${name}.crt`, issued.json.certificate), serial: issued.json.serial };
  }

  async function welcome(group: string, m: Omit<Member, 'keys'>): Promise<ReturnType<typeof readGroupKeys>> {
    const r = await fetch(`${server.url}/api/v1/groups/${group}/members/${m.serial}/welcome`, { headers: { authorization: `Bearer ${server.token}` } });
    assert.equal(r.status, 200, await r.clone().text());
    assert.equal(r.headers.get('content-type'), 'application/pkcs7-mime');
    const file = tmp.file(`${m.name}-welcome-${++n}.der`, Buffer.from(await r.arrayBuffer()));
    const out = tmp.file(`${m.name}-keys-${n}.der`);
    const d = openssl(['cms', '-decrypt', '-inform', 'DER', '-in', file, '-inkey', m.key, '-recip', m.cert, '-out', out]);
    assert.equal(d.status, 0, `${m.name} cannot open its welcome: ${d.stderr}`);
    return readGroupKeys(readFileSync(out));
  }

  async function rekey(group: string, since: number): Promise<{ der: Buffer; file: string }> {
    const r = await fetch(`${server.url}/api/v1/groups/${group}/rekey?since=${since}`, { headers: { authorization: `Bearer ${server.token}` } });
    assert.equal(r.status, 200, await r.clone().text());
    const der = Buffer.from(await r.arrayBuffer());
    return { der, file: tmp.file(`rekey-${++n}.der`, der) };
  }

  const openWith = (envelope: Buffer, keyId: string, key: Buffer) => openWithKek(tmp, envelope, keyId, key);

  /** A member applies the updates with what it holds, bottom-up, as a member would. */
  function apply(group: string, keys: Map<string, { version: number; key: Buffer }>, updates: Update[]): number {
    let opened = 0;
    for (const u of updates) {
      for (const child of childrenOf(u.node)) {
        const held = keys.get(child);
        if (!held) continue;
        const plain = openWith(u.envelope, `${group}/${child}/${held.version}`, held.key);
        if (plain) {
          assert.equal(plain.length, 32);
          keys.set(u.node, { version: u.version, key: plain });
          opened++;
          break;
        }
      }
    }
    return opened;
  }

  before(async () => {
    env = await createTestEnv();
    server = await startServer(env.env);
    const cas = JSON.parse(signet(['ca', 'list', '--json'], env.env).stdout) as { id: string; parentId: string | null }[];
    const root = cas.find((c) => !c.parentId)!;
    const der = Buffer.from(await (await fetch(`${server.url}/pki/${root.id}.crt`)).arrayBuffer());
    const pem = openssl(['x509', '-inform', 'DER', '-outform', 'PEM'], der);
    assert.equal(pem.status, 0, pem.stderr);
    rootFile = tmp.file('root.pem', pem.stdout);
  });
  after(async () => {
    await server?.stop();
    await env?.cleanup();
    tmp.remove();
  });

  test('8 members (P-256 and RSA) share the group key; a revocation re-keys in ≤ 2⌈log2 n⌉+1 wraps that only the others can open; a later member opens no earlier epoch', async () => {
    const made = await api(server, 'POST', '/api/v1/groups', { name: 'media' });
    assert.equal(made.status, 201, made.text);
    assert.equal(made.json.profile, 'group-member');
    const members: Member[] = [];
    for (let i = 0; i < 8; i++) {
      const m = await member(i % 2 ? 'rsa' : 'ec');
      const added = await api(server, 'POST', '/api/v1/groups/media/members', { serial: m.serial });
      assert.equal(added.status, 201, added.text);
      assert.equal(added.json.epoch, i + 1);
      members.push({ ...m, keys: new Map() });
    }
    for (const m of members) {
      const w = await welcome('media', m);
      assert.equal(w.group, 'media');
      assert.equal(w.epoch, 8);
      assert.equal(w.keys.size, 4, 'a leaf and three ancestors in a tree of 8');
      m.keys = w.keys;
    }
    const groupKey = rootOf(members[0]!.keys).key;
    for (const m of members) assert.ok(rootOf(m.keys).key.equals(groupKey), `${m.name} holds the group key`);

    // Member 3 (index 2) is revoked: it leaves in the revocation's transaction.
    const gone = members[2]!;
    const revoked = await api(server, 'POST', `/api/v1/certificates/${gone.serial}/revoke`, { reason: 'keyCompromise' });
    assert.equal(revoked.status, 200, revoked.text);
    const shown = await api(server, 'GET', '/api/v1/groups/media');
    assert.equal(shown.json.epoch, 9);
    assert.equal(shown.json.members, 7);
    assert.ok(!shown.json.memberList.some((x: { serial: string }) => x.serial === gone.serial));

    const msg = await rekey('media', 8);
    const content = tmp.file(`rekey-content-${++n}.der`);
    const v = openssl(['cms', '-verify', '-inform', 'DER', '-in', msg.file, '-CAfile', rootFile, '-out', content]);
    assert.equal(v.status, 0, `openssl cms -verify: ${v.stderr}`);
    const tampered = Buffer.from(msg.der);
    tampered[tampered.length - 40]! ^= 0x01;
    const bad = openssl(['cms', '-verify', '-inform', 'DER', '-in', tmp.file(`tampered-${++n}.der`, tampered), '-CAfile', rootFile, '-out', '/dev/null']);
    assert.notEqual(bad.status, 0, 'a changed byte fails verification');

    const r = readRekey(readFileSync(content));
    assert.equal(r.group, 'media');
    assert.equal(r.since, 8);
    assert.equal(r.epoch, 9);
    assert.ok(r.updates.every((u) => u.epoch === 9));
    // The recipient infos of the leave, as openssl prints them: ≤ 2⌈log2 8⌉ + 1.
    let recipients = 0;
    for (const u of r.updates) {
      const p = openssl(['cms', '-cmsout', '-print', '-inform', 'DER', '-in', tmp.file(`u-${++n}.der`, u.envelope)]);
      assert.equal(p.status, 0, p.stderr);
      recipients += (p.stdout.match(/d\.kekri:/g) ?? []).length;
    }
    assert.ok(recipients >= 1 && recipients <= 2 * 3 + 1, `${recipients} recipient infos`);

    // The revoked member's keys open none of the new wrappings.
    for (const u of r.updates)
      for (const [node, k] of gone.keys)
        assert.equal(openWith(u.envelope, `media/${node}/${k.version}`, k.key), null, `the revoked member opens ${u.node} with ${node}`);
    // Every other member reaches one new group key from what it held.
    const remaining = members.filter((m) => m !== gone);
    for (const m of remaining) assert.ok(apply('media', m.keys, r.updates) >= 1, `${m.name} opened an update`);
    const newKey = rootOf(remaining[0]!.keys);
    assert.equal(newKey.version, 9);
    assert.ok(!newKey.key.equals(groupKey), 'the group key changed');
    for (const m of remaining) assert.ok(rootOf(m.keys).key.equals(newKey.key), `${m.name} holds the new group key`);
    // ...which is what a fresh welcome says too.
    assert.ok(rootOf((await welcome('media', remaining[0]!)).keys).key.equals(newKey.key));

    // A member added now opens no earlier epoch.
    const late = await member('ec');
    const added = await api(server, 'POST', '/api/v1/groups/media/members', { serial: late.serial });
    assert.equal(added.status, 201, added.text);
    assert.equal(added.json.leaf, 2, 'the freed leaf is reused');
    const lw = await welcome('media', late);
    for (const [, k] of lw.keys) assert.ok(k.version === 10, 'every key on its path is new');
    for (const u of r.updates)
      for (const [node, k] of lw.keys) assert.equal(openWith(u.envelope, `media/${node}/${k.version}`, k.key), null, `the late member opens epoch ${u.epoch}`);
    // The others follow it in: the join's update opens for the members whose subtree changed, and all agree.
    const joined = await rekey('media', 9);
    const jc = tmp.file(`join-${++n}.der`);
    assert.equal(openssl(['cms', '-verify', '-inform', 'DER', '-in', joined.file, '-CAfile', rootFile, '-out', jc]).status, 0);
    for (const m of remaining) apply('media', m.keys, readRekey(readFileSync(jc)).updates);
    for (const m of remaining) assert.ok(rootOf(m.keys).key.equals(rootOf(lw.keys).key), `${m.name} follows the join`);

    // The gauges and the change timings.
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(metrics, /^signet_group_members\{group="media"\} 8$/m);
    assert.match(metrics, /^signet_group_epoch\{group="media"\} 10$/m);
    assert.match(metrics, /^signet_group_rekey_duration_seconds_count\{change="leave"\} [1-9]/m);
    assert.match(metrics, /^signet_group_rekey_duration_seconds_count\{change="join"\} (9|[1-9]\d+)$/m);

    // No node key in clear in the database (SQLite: the file itself; PostgreSQL: every row's bytes).
    const clear = [...lw.keys.values(), ...gone.keys.values(), ...[...remaining[0]!.keys.values()]].map((k) => k.key);
    if (!onPostgres) {
      const db = Buffer.concat([
        readFileSync(join(env.dataDir, 'signet.db')),
        ...['-wal'].map((s) => readFileSync(join(env.dataDir, `signet.db${s}`), { flag: 'a+' })),
      ]);
      for (const k of clear) assert.equal(db.indexOf(k), -1, 'a node key is stored in clear');
    }
    const rows = await sql(env, 'SELECT sealed FROM "KeyGroupNode"');
    for (const row of rows) for (const k of clear) assert.equal(Buffer.from(row.sealed as Uint8Array).indexOf(k), -1);
  });

  test('refusals: ineligible, revoked, foreign, wrong profile, non-member, since in the future, no groups scope, another group; nothing changes', async () => {
    // 'media' is the first test's; made here too when this test runs alone.
    assert.ok([201, 409].includes((await api(server, 'POST', '/api/v1/groups', { name: 'media' })).status));
    assert.equal((await api(server, 'POST', '/api/v1/groups', { name: 'fleet' })).status, 201);
    assert.equal((await api(server, 'POST', '/api/v1/groups', { name: 'clients', profile: 'client' })).status, 201);
    const state = async () =>
      JSON.stringify(
        await sql(env, 'SELECT g.name, g.epoch, (SELECT COUNT(*) FROM "KeyGroupMember" m WHERE m."groupId" = g.id) AS n FROM "KeyGroup" g ORDER BY g.name'),
      );
    const before = await state();
    const refused = async (method: string, path: string, body: unknown, status: number, detail: RegExp, token = server.token) => {
      const r = await api({ url: server.url, token }, method, path, body);
      assert.equal(r.status, status, `${method} ${path}: ${r.text}`);
      assert.equal(r.headers.get('content-type'), 'application/problem+json; charset=utf-8');
      assert.match(r.json.detail, detail);
      assert.equal(await state(), before, `${method} ${path} changed nothing`);
    };
    const ok = await member('ec');
    const revoked = await member('ec');
    assert.equal((await api(server, 'POST', `/api/v1/certificates/${revoked.serial}/revoke`, { reason: 'superseded' })).status, 200);
    await refused('POST', '/api/v1/groups/fleet/members', { serial: revoked.serial }, 409, /is revoked: only a good certificate can join/);
    await refused('POST', '/api/v1/groups/fleet/members', { serial: 'abcdef0123456789' }, 404, /is not a certificate Signet issued/);
    const server_ = await member('ec', 'server');
    await refused(
      'POST',
      '/api/v1/groups/fleet/members',
      { serial: server_.serial },
      400,
      /takes certificates of profile group-member; .* is of profile server/,
    );
    // An Ed25519 client certificate: its key cannot receive keys.
    const edKey = tmp.file('ed.key');
    const edReq = openssl(['req', '-new', '-newkey', 'ed25519', '-nodes', '-keyout', edKey, '-subj', '/CN=ed.group.test']);
    const ed = await api(server, 'POST', '/api/v1/certificates', { csr: edReq.stdout, profile: 'client' });
    assert.equal(ed.status, 201, ed.text);
    await refused('POST', '/api/v1/groups/clients/members', { serial: ed.json.serial }, 400, /cannot receive group keys: .*Ed25519/);
    // A client certificate of an ECDSA key whose keyUsage is digitalSignature only.
    const plain = await member('ec', 'client');
    await refused('POST', '/api/v1/groups/clients/members', { serial: plain.serial }, 400, /keyUsage does not allow keyAgreement/);
    await refused('DELETE', `/api/v1/groups/fleet/members/${ok.serial}`, undefined, 404, /is not a member of key group fleet/);
    await refused('POST', '/api/v1/groups/nope/members', { serial: ok.serial }, 404, /key group "nope" does not exist/);
    await refused('POST', '/api/v1/groups', { name: 'Bad_Name' }, 400, /^name: must be 1–63 lower-case/);
    await refused('POST', '/api/v1/groups', { name: 'fleet' }, 409, /key group fleet already exists/);
    await refused('GET', '/api/v1/groups/fleet/rekey?since=5', undefined, 400, /since 5 is in the future: key group fleet is at epoch 0/);
    await refused('GET', '/api/v1/groups/fleet/rekey?since=-1', undefined, 400, /^since: must be an epoch/);
    await refused('GET', '/api/v1/groups/fleet/rekey', undefined, 400, /^since: required: the epoch whose keys the member holds/);
    // Tokens: no groups scope; limited to another group; a limited token reads its own.
    const reader = await api(server, 'POST', '/api/v1/tokens', { name: 'reader', scopes: ['read'] });
    await refused('GET', '/api/v1/groups/fleet', undefined, 403, /lacks the 'groups' scope/, reader.json.token);
    const media = await api(server, 'POST', '/api/v1/tokens', { name: 'media only', scopes: ['groups'], groups: ['media'] });
    assert.equal(media.status, 201, media.text);
    await refused('GET', '/api/v1/groups/fleet', undefined, 403, /may not read key group fleet \(allowed: media\)/, media.json.token);
    await refused('GET', '/api/v1/groups/fleet/rekey?since=0', undefined, 403, /may not read key group fleet/, media.json.token);
    // Nor can it tell whether a group outside its list exists.
    await refused('GET', '/api/v1/groups/no-such-group', undefined, 403, /may not read key group no-such-group \(allowed: media\)/, media.json.token);
    await refused('GET', '/api/v1/groups/grp_0123456789abcdef', undefined, 403, /may not read key group grp_0123456789abcdef/, media.json.token);
    await refused('POST', '/api/v1/groups/media/members', { serial: ok.serial }, 403, /lacks the 'admin' scope/, media.json.token);
    const list = await api({ url: server.url, token: media.json.token }, 'GET', '/api/v1/groups');
    assert.deepEqual(
      list.json.items.map((g: { name: string }) => g.name),
      ['media'],
    );
    const badLimit = await api(server, 'POST', '/api/v1/tokens', { name: 'x', scopes: ['read'], groups: ['media'] });
    assert.equal(badLimit.status, 400);
    assert.match(badLimit.json.detail, /a group limit needs the 'groups' scope/);
  });

  test('a hold and an expiry remove the member too, with their cause in the audit trail', async () => {
    assert.equal((await api(server, 'POST', '/api/v1/groups', { name: 'leavers' })).status, 201);
    const held = await member('ec');
    const expiring = await member('rsa');
    const stays = await member('ec');
    for (const m of [held, expiring, stays]) assert.equal((await api(server, 'POST', '/api/v1/groups/leavers/members', { serial: m.serial })).status, 201);
    assert.equal((await api(server, 'POST', `/api/v1/certificates/${held.serial}/revoke`, { reason: 'certificateHold' })).status, 200);
    // Expired: its notAfter moved into the past in the database, then the sweep serve runs every minute.
    await sql(env, 'UPDATE "Certificate" SET "notAfter" = ? WHERE serial = ?', [
      onPostgres ? '2020-01-01 00:00:00' : '2020-01-01T00:00:00.000+00:00',
      expiring.serial,
    ]);
    const ctx = await openSignet(loadConfig(env.env), pino({ level: 'silent' }));
    try {
      const { groups } = createServices(ctx, loadConfig(env.env));
      assert.equal(await groups.sweepExpired(), 1);
      assert.equal(await groups.sweepExpired(), 0, 'nothing left to sweep');
    } finally {
      await ctx.db.close();
    }
    const g = await api(server, 'GET', '/api/v1/groups/leavers');
    assert.equal(g.json.epoch, 5);
    assert.deepEqual(
      g.json.memberList.map((m: { serial: string }) => m.serial),
      [stays.serial],
    );
    const events = await sql(env, `SELECT actor, details FROM "AuditEvent" WHERE action = 'group.member_removed' AND target = ? ORDER BY seq`, [g.json.id]);
    assert.deepEqual(
      events.map((e) => [JSON.parse(e.details as string).serial, JSON.parse(e.details as string).cause]),
      [
        [held.serial, 'hold'],
        [expiring.serial, 'expiry'],
      ],
    );
    assert.match(String(events[0]!.actor), /^token:/, "the hold was the admin token's");
    assert.equal(events[1]!.actor, 'system:group-expiry');
  });

  test("a revoked CA's certificates leave their groups with the CA's revocation, and cannot join", async () => {
    const cas = JSON.parse(signet(['ca', 'list', '--json'], env.env).stdout) as { id: string; parentId: string | null }[];
    const made = await api(server, 'POST', '/api/v1/cas', { parentId: cas.find((c) => !c.parentId)!.id, subject: 'CN=Doomed Group CA,O=Signet' });
    assert.equal(made.status, 201, made.text);
    assert.equal((await api(server, 'POST', '/api/v1/groups', { name: 'doomed' })).status, 201);
    const fromDoomed = async (name: string) => {
      const key = tmp.file(`${name}.key`);
      const req = openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-subj', `/CN=${name}.group.test`]);
      const r = await api(server, 'POST', '/api/v1/certificates', { csr: req.stdout, profile: 'group-member', caId: made.json.id });
      assert.equal(r.status, 201, r.text);
      return r.json.serial as string;
    };
    const a = await fromDoomed('doomed-a');
    const b = await fromDoomed('doomed-b');
    const other = await member('ec');
    for (const s of [a, other.serial]) assert.equal((await api(server, 'POST', '/api/v1/groups/doomed/members', { serial: s })).status, 201);
    assert.equal((await api(server, 'POST', `/api/v1/cas/${made.json.id}/revoke`, { reason: 'keyCompromise' })).status, 200);
    const g = await api(server, 'GET', '/api/v1/groups/doomed');
    assert.equal(g.json.epoch, 3, 'the CA revocation was a leave');
    assert.deepEqual(
      g.json.memberList.map((m: { serial: string }) => m.serial),
      [other.serial],
    );
    const late = await api(server, 'POST', '/api/v1/groups/doomed/members', { serial: b });
    assert.equal(late.status, 409, late.text);
    assert.match(late.json.detail, new RegExp(`was issued by CA ${made.json.id}, which is revoked`));
  });

  test('CLI: create, add, show, welcome, remove, rekey; --help explains', async () => {
    const h = signet(['group', '--help'], env.env);
    assert.equal(h.status, 0);
    assert.match(h.stdout, /create.*list.*show.*add.*remove.*welcome.*rekey/s);
    assert.equal(signet(['group', 'create', 'cli-group'], env.env).status, 0);
    const m = await member('rsa');
    const add = signet(['group', 'add', 'cli-group', m.serial, '--json'], env.env);
    assert.equal(add.status, 0, add.stderr);
    assert.equal(JSON.parse(add.stdout).epoch, 1);
    const out = tmp.file('cli-welcome.der');
    const w = signet(['group', 'welcome', 'cli-group', m.serial, '--out', out], env.env);
    assert.equal(w.status, 0, w.stderr);
    const d = openssl(['cms', '-decrypt', '-inform', 'DER', '-in', out, '-inkey', m.key, '-recip', m.cert, '-out', tmp.file('cli-keys.der')]);
    assert.equal(d.status, 0, d.stderr);
    const show = signet(['group', 'show', 'cli-group', '--json'], env.env);
    assert.equal(JSON.parse(show.stdout).members, 1);
    const rm = signet(['group', 'remove', 'cli-group', m.serial], env.env);
    assert.equal(rm.status, 0, rm.stderr);
    assert.match(rm.stdout, /epoch 2/);
    const rk = signet(['group', 'rekey', 'cli-group', '--since', '1', '--out', tmp.file('cli-rekey.der')], env.env);
    assert.equal(rk.status, 0, rk.stderr);
    // A fleet at once: several serials fill an empty group as one epoch; --all-to writes every welcome.
    assert.equal(signet(['group', 'create', 'bulk'], env.env).status, 0);
    const fleet = [];
    for (let i = 0; i < 5; i++) fleet.push(await member(i % 2 ? 'rsa' : 'ec'));
    const bulk = signet(['group', 'add', 'bulk', ...fleet.map((f) => f.serial), '--json'], env.env);
    assert.equal(bulk.status, 0, bulk.stderr);
    assert.equal(JSON.parse(bulk.stdout).epoch, 1);
    assert.equal(JSON.parse(bulk.stdout).group.treeHeight, 3);
    // DIR already holds a symlink planted at one member's file name and a world-readable file at
    // another's: both are replaced (the symlink's target untouched), every file ends up 0600.
    const dir = join(tmp.path, 'welcomes');
    mkdirSync(dir, { mode: 0o700 });
    const victim = tmp.file('victim', 'not a welcome');
    chmodSync(victim, 0o644);
    symlinkSync(victim, join(dir, `${fleet[0]!.serial}.der`));
    writeFileSync(join(dir, `${fleet[1]!.serial}.der`), 'old', { mode: 0o644 });
    const all = signet(['group', 'welcome', 'bulk', '--all-to', dir], env.env);
    assert.equal(all.status, 0, all.stderr);
    assert.match(all.stderr, /wrote 5 welcomes/);
    assert.equal(readFileSync(victim, 'utf8'), 'not a welcome', 'a symlink in DIR is replaced, not followed');
    for (const f of fleet) {
      const st = lstatSync(join(dir, `${f.serial}.der`));
      assert.ok(st.isFile(), `${f.serial}.der is a file of its own`);
      assert.equal(st.mode & 0o777, 0o600, `${f.serial}.der is 0600`);
    }
    assert.deepEqual(
      readdirSync(dir).filter((n) => !n.endsWith('.der')),
      [],
      'no temporary file is left',
    );
    const roots = fleet.map((f) => {
      const out = tmp.file(`bulk-${f.serial}.der`);
      const d = openssl(['cms', '-decrypt', '-inform', 'DER', '-in', join(dir, `${f.serial}.der`), '-inkey', f.key, '-recip', f.cert, '-out', out]);
      assert.equal(d.status, 0, d.stderr);
      return rootOf(readGroupKeys(readFileSync(out)).keys).key.toString('hex');
    });
    assert.equal(new Set(roots).size, 1, 'the whole fleet holds one group key');
    const again = signet(['group', 'add', 'bulk', (await member('ec')).serial, (await member('ec')).serial], env.env);
    assert.equal(again.status, 2);
    assert.match(again.stderr, /key group bulk is not empty: add members to it one at a time/);

    const bad = signet(['group', 'rekey', 'cli-group', '--since', 'x'], env.env);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--since "x" is not an epoch/);
  });
});
