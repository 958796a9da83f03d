/**
 * Root rollover (issue 16 part 2, RFC 4210 §4.4): `signet ca rollover-root` against a real
 * server. A leaf of the new intermediate verifies with only the old root trusted and with only
 * the new root trusted, in openssl, Go, GnuTLS and NSS; a leaf from before still verifies; the
 * old root answers for its cross-certificate by OCSP; bad input changes nothing; a re-run
 * changes nothing; an offline old root signs with its key file.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { api, BIN, freePort, getUrl, signet, startServer, type RunningServer } from './helpers/cli.js';
import { childEnv, createTestEnv, type TestEnv } from './helpers/env.js';
import { csrMaker, openssl, TempDir } from './helpers/openssl.js';
import { countRows, sql } from './helpers/sql.js';
import { FAULT_POINTS } from '../src/ca/fault-points.js';
import { verifiers, type StrictVerifier } from './helpers/strict.js';
import { newKey, startWorld, type Account, type World } from './helpers/acme.js';

const pemOf = (der: Buffer) =>
  `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`;
const splitPems = (s: string) => s.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g)!.map((p) => p.trim() + '\n');

/**
 * Rows that a rollover writes: none of them may change when it is refused or run again. CA audit
 * events only (a running server audits its CRL and OCSP signing meanwhile); key rows only without
 * a server (it may make a delegated OCSP responder key meanwhile).
 */
async function counts(env: TestEnv, withKeys = false) {
  return {
    cas: await countRows(env, 'CertificateAuthority'),
    caCerts: await countRows(env, 'CaCertificate'),
    caAudit: await countRows(env, 'AuditEvent', "WHERE action LIKE 'ca.%'"),
    keys: withKeys ? await countRows(env, 'KeyRecord') : null,
    statuses: (await sql(env, 'SELECT id, status FROM "CertificateAuthority" ORDER BY id')).map((r: any) => `${r.id}:${r.status}`).join(' '),
  };
}

async function fetchPem(server: RunningServer, id: string): Promise<string> {
  const r = await getUrl(`${server.url}/pki/${id}.crt`);
  assert.equal(r.status, 200, `/pki/${id}.crt`);
  assert.equal(r.headers.get('content-type'), 'application/pkix-cert');
  return pemOf(Buffer.from(await r.arrayBuffer()));
}

describe('signet ca rollover-root (online root)', () => {
  let env: TestEnv;
  let server: RunningServer;
  const tmp = new TempDir();
  const csr = csrMaker(tmp);
  let oldRootId: string;
  let oldIntId: string;
  let oldRootPem: string;
  let oldIntPem: string;
  let preLeaf: { serial: string; certificate: string; chain: string };
  let out: any;

  before(async () => {
    // The CLI writes the URLs into the certificates it signs: the server's own port, so they resolve.
    env = await createTestEnv({ SIGNET_PORT: String(await freePort()) });
    server = await startServer(env.env);
    const cas = JSON.parse(signet(['ca', 'list', '--json'], env.env).stdout);
    oldRootId = cas.find((c: any) => c.parentId === null).id;
    oldIntId = cas.find((c: any) => c.parentId === oldRootId).id;
    oldRootPem = await fetchPem(server, oldRootId);
    oldIntPem = await fetchPem(server, oldIntId);
    const r = await api(server, 'POST', '/api/v1/certificates', { csr: csr('DNS:before.example.test'), profile: 'server' });
    assert.equal(r.status, 201, r.text);
    preLeaf = r.json;
  });
  after(async () => {
    await server?.stop();
    await env.cleanup();
    tmp.remove();
  });

  test('bad input is refused with a precise error and changes nothing', async () => {
    const start = await counts(env);
    const cases: [string[], number, RegExp][] = [
      [['--root', 'root-0000000000'], 2, /CA root-0000000000 does not exist/],
      [['--root', oldIntId], 2, new RegExp(`CA ${oldIntId} is not a root: an intermediate is replaced with \`signet ca rotate`)],
      [['--intermediate-key', 'rsa-2048'], 2, /refuses the new intermediate's key: a rsa-2048 key \(112-bit security\) is weaker/],
      [['--intermediate-key', 'ed25519'], 2, /Ed25519 CA key is allowed only under an Ed25519 parent/],
      [['--key', 'rsa-2048'], 2, new RegExp(`root ${oldRootId} refuses to certify the new root's key`)],
      [['--subject', 'CN=Signet Root CA,O=Signet'], 2, /the new root's subject must differ from the old root's/],
      [['--overlap-days', '100000'], 2, /after intermediate .* itself expires/],
      [['--validity-days', 'x'], 2, /--validity-days must be a positive whole number/],
    ];
    for (const [args, status, detail] of cases) {
      const r = signet(['ca', 'rollover-root', ...args], env.env);
      assert.equal(r.status, status, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, detail, args.join(' '));
      assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
    }
    assert.deepEqual(await counts(env), start);
  });

  test('--help explains the command', () => {
    const h = signet(['ca', 'rollover-root', '--help'], env.env);
    assert.equal(h.status, 0);
    for (const s of ['--root <caId>', '--parent-key <file>', '--intermediate-key', '--overlap-days', 'NewWithOld', 'OldWithNew', 'R<n+1>'])
      assert.ok(h.stdout.includes(s), s);
  });

  test('rollover creates a new root, both cross-certificates and a successor intermediate, all audited', async () => {
    const r = signet(['ca', 'rollover-root', '--json', '--overlap-days', '30'], env.env);
    assert.equal(r.status, 0, r.stderr);
    out = JSON.parse(r.stdout);
    assert.equal(out.alreadyDone, false);
    assert.equal(out.oldRoot.id, oldRootId);
    assert.equal(out.oldRoot.status, 'retiring');
    assert.equal(out.newRoot.subject, 'CN=Signet Root CA R2,O=Signet');
    assert.equal(out.oldIntermediate.id, oldIntId);
    assert.equal(out.oldIntermediate.status, 'retiring');
    const [nwo, own] = out.crossCertificates;
    assert.deepEqual([nwo.kind, nwo.caId, nwo.issuerId], ['NewWithOld', out.newRoot.id, oldRootId]);
    assert.deepEqual([own.kind, own.caId, own.issuerId], ['OldWithNew', oldRootId, out.newRoot.id]);
    assert.match(nwo.id, /^x-[0-9a-f]{16}$/);
    assert.equal(nwo.url, `${server.url}/pki/${nwo.id}.crt`);
    const rows = await sql(env, 'SELECT id, "parentId", "predecessorId", status FROM "CertificateAuthority"');
    const byId = new Map(rows.map((x: any) => [x.id, x]));
    assert.equal(byId.get(out.newRoot.id).predecessorId, oldRootId);
    assert.equal(byId.get(out.newRoot.id).parentId, null);
    assert.equal(byId.get(out.newIntermediate.id).parentId, out.newRoot.id);
    assert.equal(byId.get(out.newIntermediate.id).predecessorId, oldIntId);
    assert.equal(byId.get(out.newIntermediate.id).status, 'active');
    const actions = (await sql(env, 'SELECT action FROM "AuditEvent" ORDER BY seq')).map((e: any) => e.action);
    for (const a of ['ca.key.generated', 'ca.created', 'ca.cross-certified', 'ca.key.used', 'ca.status.changed', 'ca.issuance.moved'])
      assert.ok(actions.includes(a), a);
    assert.equal(actions.filter((a: string) => a === 'ca.cross-certified').length, 2);
    // `signet ca root` now names the new root as the one to trust; the old one by --id.
    const current = signet(['ca', 'root', '--json'], env.env);
    assert.equal(current.status, 0, current.stderr);
    assert.deepEqual(
      JSON.parse(current.stdout).map((c: any) => c.id),
      [out.newRoot.id],
    );
    assert.equal(signet(['ca', 'root', '--id', oldRootId, '--pem'], env.env).stdout, oldRootPem);
    const v = signet(['audit', 'verify'], env.env);
    assert.equal(v.status, 0, v.stderr + v.stdout);
    // The CA's API lists its cross-certificates; the certificates are served at their URLs.
    const ca = await api(server, 'GET', `/api/v1/cas/${out.newRoot.id}`);
    assert.equal(ca.json.predecessorId, oldRootId);
    assert.deepEqual(ca.json.caCertificates.map((x: any) => x.id).sort(), [nwo.id, own.id].sort());
    const text = openssl(['x509', '-noout', '-subject', '-issuer', '-ext', 'authorityInfoAccess,crlDistributionPoints'], await fetchPem(server, nwo.id)).stdout;
    assert.match(text, /subject=O = Signet, CN = Signet Root CA R2\n/);
    assert.match(text, /issuer=O = Signet, CN = Signet Root CA\n/);
    assert.ok(text.includes(`/pki/${oldRootId}.crl`) && text.includes(`/pki/${oldRootId}.crt`), text);
  });

  test('a leaf of the new intermediate verifies with only the old root and with only the new root trusted: openssl, Go, GnuTLS, NSS', async (t) => {
    const r = await api(server, 'POST', '/api/v1/certificates', { csr: csr('DNS:after.example.test'), profile: 'server', caId: out.newIntermediate.id });
    assert.equal(r.status, 201, r.text);
    const chain = splitPems(r.json.chain);
    const newIntPem = await fetchPem(server, out.newIntermediate.id);
    const nwoPem = await fetchPem(server, out.crossCertificates[0].id);
    // Served chain: the intermediate, then the cross-certificate to the old root.
    assert.deepEqual(chain, [newIntPem, nwoPem]);
    const newRootPem = await fetchPem(server, out.newRoot.id);
    const leaf = tmp.file('after.pem', r.json.certificate);
    const untrusted = tmp.file('after-chain.pem', r.json.chain);
    for (const [name, root] of [
      ['old root', oldRootPem],
      ['new root', newRootPem],
    ] as const) {
      const rootFile = tmp.file(`${name.replace(' ', '-')}.pem`, root);
      const o = openssl(['verify', '-x509_strict', '-purpose', 'sslserver', '-CAfile', rootFile, '-untrusted', untrusted, leaf]);
      assert.equal(o.status, 0, `openssl, ${name}: ${o.stdout}${o.stderr}`);
      for (const v of Object.keys(verifiers) as StrictVerifier[]) {
        const res = verifiers[v]({ roots: [root], intermediates: chain, leaf: r.json.certificate, dns: 'after.example.test' });
        assert.ok(res.ok, `${v} with only the ${name} trusted rejected:\n${res.output}`);
        t.diagnostic(`${v}, only the ${name} trusted: accepted`);
      }
    }
    // Without the cross-certificate, a client that trusts only the old root finds no path (the check is real).
    const oldOnly = tmp.file('old-only.pem', oldRootPem);
    assert.notEqual(openssl(['verify', '-x509_strict', '-CAfile', oldOnly, '-untrusted', tmp.file('int-only.pem', newIntPem), leaf]).status, 0);
  });

  test('issuance that names no CA moves to the new intermediate at once (the server learns it at commit, not after its 15 s issuer cache)', async () => {
    const r = await api(server, 'POST', '/api/v1/certificates', { csr: csr('DNS:default0.example.test'), profile: 'server' });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.caId, out.newIntermediate.id);
    assert.equal(splitPems(r.json.chain).length, 2, 'new intermediate and NewWithOld');
  });

  test('a leaf from before the rollover still verifies with the old root, and with only the new root through OldWithNew', async () => {
    const leaf = tmp.file('before.pem', preLeaf.certificate);
    assert.deepEqual(splitPems(preLeaf.chain), [oldIntPem]);
    const rootFile = tmp.file('old-root-2.pem', oldRootPem);
    const o = openssl(['verify', '-x509_strict', '-CAfile', rootFile, '-untrusted', tmp.file('before-chain.pem', preLeaf.chain), leaf]);
    assert.equal(o.status, 0, o.stdout + o.stderr);
    const ownPem = await fetchPem(server, out.crossCertificates[1].id);
    const newRootFile = tmp.file('new-root-2.pem', await fetchPem(server, out.newRoot.id));
    const n = openssl(['verify', '-x509_strict', '-CAfile', newRootFile, '-untrusted', tmp.file('before-cross.pem', oldIntPem + ownPem), leaf]);
    assert.equal(n.status, 0, n.stdout + n.stderr);
    for (const v of Object.keys(verifiers) as StrictVerifier[]) {
      const res = verifiers[v]({ roots: [oldRootPem], intermediates: [oldIntPem], leaf: preLeaf.certificate, dns: 'before.example.test' });
      assert.ok(res.ok, `${v}: ${res.output}`);
    }
    const st = await api(server, 'GET', `/api/v1/certificates/${preLeaf.serial}/status`);
    assert.equal(st.json.status, 'good');
  });

  test("the old root answers OCSP good for NewWithOld and serves its CRL; the new root's for OldWithNew", async () => {
    const pairs = [
      [oldRootId, out.crossCertificates[0].id],
      [out.newRoot.id, out.crossCertificates[1].id],
    ];
    for (const [issuer, cross] of pairs) {
      const issuerFile = tmp.file(`${issuer}.pem`, await fetchPem(server, issuer));
      const crossFile = tmp.file(`${cross}.pem`, await fetchPem(server, cross));
      const r = openssl(['ocsp', '-issuer', issuerFile, '-cert', crossFile, '-url', `${server.url}/ocsp`, '-CAfile', issuerFile]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /: good\n/, r.stdout + r.stderr);
      assert.match(r.stderr + r.stdout, /Response verify OK/);
      const crl = await getUrl(`${server.url}/pki/${issuer}.crl`);
      assert.equal(crl.status, 200, `${issuer}.crl`);
      const crlFile = tmp.file(`${issuer}.crl`, Buffer.from(await crl.arrayBuffer()));
      const c = openssl(['crl', '-inform', 'DER', '-in', crlFile, '-noout', '-CAfile', issuerFile]);
      assert.equal(c.status, 0, c.stderr);
      assert.match(c.stderr + c.stdout, /verify OK/);
    }
  });

  test('running it again reports the same rollover and changes nothing; exactly one new root', async () => {
    const start = await counts(env);
    const again = signet(['ca', 'rollover-root', '--json'], env.env);
    assert.equal(again.status, 0, again.stderr);
    const r = JSON.parse(again.stdout);
    assert.equal(r.alreadyDone, true);
    assert.equal(r.newRoot.id, out.newRoot.id);
    assert.equal(r.newIntermediate.id, out.newIntermediate.id);
    assert.deepEqual(
      r.crossCertificates.map((x: any) => x.id),
      out.crossCertificates.map((x: any) => x.id),
    );
    const text = signet(['ca', 'rollover-root', '--root', oldRootId], env.env);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /was already rolled over; nothing changed/);
    assert.deepEqual(await counts(env), start);
    assert.equal(await countRows(env, 'CertificateAuthority', 'WHERE "predecessorId" = ?', [oldRootId]), 1);
    assert.equal(await countRows(env, 'CertificateAuthority', 'WHERE "parentId" IS NULL'), 2);
  });
});

describe('signet ca rollover-root (offline old root)', () => {
  let env: TestEnv;
  const tmp = new TempDir();
  const keyFile = () => join(tmp.path, 'root-key.pem');
  const passFile = () => tmp.file('pass.txt', 'correct horse battery staple\n');
  let rootId: string;

  before(async () => {
    // An offline root is a sealed key exported to a file (`--offline-root` is refused for a key in a token).
    env = await createTestEnv({ SIGNET_KEY_STORE: 'sealed' });
    const r = signet(['init', '--json', '--offline-root', keyFile(), '--offline-root-passphrase-file', passFile()], env.env);
    assert.equal(r.status, 0, r.stderr);
    rootId = JSON.parse(r.stdout).rootId;
  });
  after(async () => {
    await env.cleanup();
    tmp.remove();
  });

  test('without its key file, with a wrong passphrase or a wrong key: refused, nothing changed', async () => {
    const start = await counts(env, true);
    const without = signet(['ca', 'rollover-root'], env.env);
    assert.equal(without.status, 2, without.stderr);
    assert.match(without.stderr, new RegExp(`root ${rootId} is kept offline: pass its key file \\(--parent-key\\)`));
    const badPass = signet(['ca', 'rollover-root', '--parent-key', keyFile(), '--parent-key-passphrase-file', tmp.file('bad.txt', 'nope')], env.env);
    assert.equal(badPass.status, 2, badPass.stderr);
    assert.match(badPass.stderr, /could not decrypt .*wrong passphrase/);
    const otherKey = tmp.file('other.pem');
    assert.equal(
      openssl([
        'genpkey',
        '-algorithm',
        'EC',
        '-pkeyopt',
        'ec_paramgen_curve:P-384',
        '-aes-256-cbc',
        '-pass',
        'pass:correct horse battery staple',
        '-out',
        otherKey,
      ]).status,
      0,
    );
    const wrong = signet(['ca', 'rollover-root', '--parent-key', otherKey, '--parent-key-passphrase-file', passFile()], env.env);
    assert.equal(wrong.status, 2, wrong.stderr);
    assert.match(wrong.stderr, new RegExp(`the key given for offline CA ${rootId} does not match its certificate`));
    assert.deepEqual(await counts(env, true), start);
  });

  test('with its key file: rolled over, the old root stays offline, its cross-certificate verifies', async () => {
    const keysBefore = await countRows(env, 'KeyRecord');
    const r = signet(
      ['ca', 'rollover-root', '--json', '--subject', 'CN=Acme Root 2026,O=Acme', '--parent-key', keyFile(), '--parent-key-passphrase-file', passFile()],
      env.env,
    );
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.oldRoot.status, 'offline');
    // Two keys, no more: the new root's and the new intermediate's.
    assert.equal(await countRows(env, 'KeyRecord'), keysBefore + 2);
    assert.equal(out.newRoot.subject, 'CN=Acme Root 2026,O=Acme');
    const [row] = await sql(env, 'SELECT "certificateDer" FROM "CaCertificate" WHERE id = ?', [out.crossCertificates[0].id]);
    const [oldRoot] = await sql(env, 'SELECT "certificateDer" FROM "CertificateAuthority" WHERE id = ?', [rootId]);
    const rootFile = tmp.file('old-root.pem', pemOf(Buffer.from(oldRoot.certificateDer)));
    const crossFile = tmp.file('nwo.pem', pemOf(Buffer.from(row.certificateDer)));
    const v = openssl(['verify', '-x509_strict', '-CAfile', rootFile, crossFile]);
    assert.equal(v.status, 0, v.stdout + v.stderr);
    const again = signet(['ca', 'rollover-root', '--json'], env.env);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(JSON.parse(again.stdout).alreadyDone, true);
    const audit = signet(['audit', 'verify'], env.env);
    assert.equal(audit.status, 0, audit.stderr + audit.stdout);
  });
});

describe('ACME after a root rollover', () => {
  let w: World;
  let acct: Account;

  before(async () => {
    w = await startWorld();
    acct = await w.acme.newAccount(newKey('ES256'));
  });
  after(async () => {
    await w?.stop();
  });

  test('the certificate chain is leaf, new intermediate, NewWithOld; both roots verify it (openssl, Go, GnuTLS, NSS)', async () => {
    const r = signet(['ca', 'rollover-root', '--json'], w.s.env.env);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    // A restart: no issuer cached from before the rollover (they expire within 15 s anyway).
    await w.restart();
    const names = ['rolled.signet.test'];
    const order = await w.newOrder(acct, names);
    assert.equal(order.status, 201, order.text);
    await w.authorize(acct, order);
    await w.pollOrder(acct, order.headers.location!, 'ready');
    const fin = await w.acme.post(order.json.finalize, { csr: Buffer.from(w.csr(names).der).toString('base64url') }, acct);
    assert.equal(fin.status, 200, fin.text);
    const valid = await w.pollOrder(acct, order.headers.location!, 'valid');
    const dl = await w.acme.post(valid.json.certificate, '', acct);
    assert.equal(dl.status, 200, dl.text);
    const [leaf, ...chain] = splitPems(dl.text);
    assert.equal(chain.length, 2, dl.text);
    const pkiPem = async (id: string) => pemOf(Buffer.from(await (await getUrl(`${w.s.server.url}/pki/${id}.crt`)).arrayBuffer()));
    assert.equal(chain[0], await pkiPem(out.newIntermediate.id));
    assert.equal(chain[1], await pkiPem(out.crossCertificates[0].id));
    const newRootPem = await pkiPem(out.newRoot.id);
    for (const [name, root] of [
      ['old root', w.s.rootPem],
      ['new root', newRootPem],
    ] as const) {
      const o = openssl([
        'verify',
        '-x509_strict',
        '-CAfile',
        w.tmp.file(`${name.replace(' ', '-')}.pem`, root),
        '-untrusted',
        w.tmp.file('acme-chain.pem', chain.join('')),
        w.tmp.file('acme-leaf.pem', leaf!),
      ]);
      assert.equal(o.status, 0, `openssl, ${name}: ${o.stdout}${o.stderr}`);
      for (const v of Object.keys(verifiers) as StrictVerifier[]) {
        const res = verifiers[v]({ roots: [root], intermediates: chain, leaf: leaf!, dns: names[0] });
        assert.ok(res.ok, `${v} with only the ${name} trusted rejected:\n${res.output}`);
      }
    }
  });
});

describe('kill -9 at every step of a rollover, then the command again', { concurrency: false }, () => {
  let env: TestEnv;
  before(async () => {
    env = await createTestEnv();
    const r = signet(['init', '--json'], env.env);
    assert.equal(r.status, 0, r.stderr);
  });
  after(() => env.cleanup());

  const state = async () => ({
    cas: await countRows(env, 'CertificateAuthority'),
    caCerts: await countRows(env, 'CaCertificate'),
    keys: await countRows(env, 'KeyRecord'),
  });

  // Each step rolls the newest root over (R1 → R2 → R3 …), killed at one fault point (ca/fault-points.ts).
  for (const point of FAULT_POINTS.rollover) {
    test(point, async () => {
      const [newest] = await sql<{ id: string }>(
        env,
        'SELECT "id" FROM "CertificateAuthority" r WHERE "parentId" IS NULL AND NOT EXISTS (SELECT 1 FROM "CertificateAuthority" s WHERE s."predecessorId" = r."id")',
      );
      const before = await state();
      const killed = spawnSync(process.execPath, [BIN, 'ca', 'rollover-root', '--root', newest!.id], {
        env: childEnv({ ...env.env, SIGNET_FAULT_AT: point }),
        encoding: 'utf8',
        timeout: 120_000,
      });
      assert.equal(killed.signal, 'SIGKILL', `killed at ${point}: ${killed.stderr}`);
      const newState = { cas: before.cas + 2, caCerts: before.caCerts + 2, keys: before.keys + 2 };
      assert.deepEqual(await state(), point === 'rollover:committed' ? newState : before, 'the old state or, once committed, the new one');
      const again = signet(['ca', 'rollover-root', '--root', newest!.id, '--json'], env.env);
      assert.equal(again.status, 0, again.stderr);
      assert.equal(JSON.parse(again.stdout).alreadyDone, point === 'rollover:committed');
      assert.deepEqual(await state(), newState);
      assert.equal(await countRows(env, 'CertificateAuthority', 'WHERE "predecessorId" = ?', [newest!.id]), 1, 'exactly one new root');
      const orphans = await sql(
        env,
        'SELECT "id" FROM "KeyRecord" k WHERE NOT EXISTS (SELECT 1 FROM "CertificateAuthority" c WHERE c."keyId" = k."id") AND NOT EXISTS (SELECT 1 FROM "OcspResponder" o WHERE o."keyId" = k."id")',
      );
      assert.deepEqual(orphans, [], 'no orphan key');
      const v = signet(['audit', 'verify'], env.env);
      assert.equal(v.status, 0, v.stderr + v.stdout);
    });
  }
});
