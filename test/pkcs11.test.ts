/**
 * CA keys in a PKCS#11 token (SIGNET_KEY_STORE=pkcs11), on a real SoftHSM2 token made for this
 * run (helpers/softhsm.ts), checked with tools that are not Signet: pkcs11-tool lists the keys
 * and signs with them, openssl / Go / GnuTLS / NSS verify what the token signed. Start-up
 * failures (wrong PIN, no such token, no module, a library that is not PKCS#11, a key deleted
 * behind Signet's back) are one line and change nothing; at run time they are 503 problems.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, createPrivateKey, randomBytes, verify, X509Certificate } from 'node:crypto';
import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { softHsm } from './helpers/softhsm.js';
import { api, signet, startServer, type RunningServer } from './helpers/cli.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';
import { csrMaker, openssl, selfSignedCa, TempDir } from './helpers/openssl.js';
import { sql } from './helpers/sql.js';
import { assertStrictlyValid } from './helpers/strict.js';
import { loadConfig } from '../src/config/config.js';
import { bootstrapIfEmpty, openSignet } from '../src/runtime/open.js';
import { ecdsaRawToDer, parsePkcs11Uri, pkcs11Uri, type Pkcs11KeyStore } from '../src/keystore/pkcs11-key-store.js';
import { unseal } from '../src/keystore/sealed-key-store.js';
import { isSignetError } from '../src/errors.js';
import type { CaContext } from '../src/ca/context.js';

// First: SoftHSM2 reads SOFTHSM2_CONF once, when this process first initialises the module.
const hsm = softHsm();
const URI = /^pkcs11:token=[^;]+;id=(?:%[0-9a-f]{2}){16};object=signet-ca-[0-9a-f-]{36};type=private$/;
const idHex = (uri: string) => parsePkcs11Uri(uri).id.toString('hex');

/** pkcs11-tool's listing of one private key object, by CKA_ID. */
function objectListing(uri: string): string {
  const out = hsm.tool(['--list-objects', '--type', 'privkey']);
  const block = out.split(/(?=Private Key Object)/).find((b) => b.includes(`ID:         ${idHex(uri)}`));
  assert.ok(block, `no private key with ID ${idHex(uri)} in:\n${out}`);
  return block;
}

/**
 * "Nothing changed": sha256 of every file in the data directory but SQLite's -wal and -shm
 * (opening and closing the database resets them), and every row of the tables a start-up or a
 * CA could write.
 */
async function snapshot(env: TestEnv): Promise<Record<string, string>> {
  const dir = env.dataDir;
  const files = readdirSync(dir)
    .filter((f) => statSync(join(dir, f)).isFile() && !/-(wal|shm)$/.test(f))
    .map((f) => [
      f,
      createHash('sha256')
        .update(readFileSync(join(dir, f)))
        .digest('hex'),
    ]);
  const rows = [];
  for (const t of ['AuditEvent', 'KeyRecord', 'CertificateAuthority', 'Certificate', 'Setting', 'OcspResponder', 'Crl']) {
    const all = await sql(env, `SELECT * FROM "${t}"`);
    rows.push([
      t,
      createHash('sha256')
        .update(JSON.stringify(all, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)))
        .digest('hex'),
    ]);
  }
  return Object.fromEntries([...files, ...rows]);
}

const json = (r: { status: number | null; stdout: string; stderr: string }) => {
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
};

describe('pkcs11: URIs and signature encoding', () => {
  test('the URI round-trips the token label, the CKA_ID bytes and the label, percent-encoded (RFC 7512)', () => {
    const id = Buffer.from('00ff10a5', 'hex');
    const uri = pkcs11Uri('My Token;x', id, 'signet-ca-1');
    assert.equal(uri, 'pkcs11:token=My%20Token%3bx;id=%00%ff%10%a5;object=signet-ca-1;type=private');
    const back = parsePkcs11Uri(uri);
    assert.equal(back.token, 'My Token;x');
    assert.ok(back.id.equals(id));
    assert.equal(back.object, 'signet-ca-1');
  });

  test('only the exact URI form Signet writes is accepted: an extra attribute, a query, another encoding or bad percent-encoding is refused', () => {
    const uri = pkcs11Uri('signet-ca', Buffer.from('0102', 'hex'), 'signet-ca-1');
    for (const edited of [
      `${uri};x=1`,
      `${uri}?module-path=/tmp/evil.so`,
      `${uri}?pin-value=1234`,
      uri.replace('object=signet-ca-1', 'object=signet%2dca-1'),
      uri.replace('id=%01%02', 'id=%01%0'),
      uri.replace('object=signet-ca-1', 'object=%ff%fe'),
      uri.replace(';type=private', ''),
      'pkcs11:token=signet-ca;object=signet-ca-1;type=private',
      `pkcs11:${'x'.repeat(100_000)}`,
    ])
      assert.throws(() => parsePkcs11Uri(edited), /not a pkcs11: URI Signet wrote|not a pkcs11: URI/, edited.slice(0, 120));
    assert.equal(parsePkcs11Uri(uri).object, 'signet-ca-1');
  });

  test('a raw r||s becomes a DER Ecdsa-Sig-Value (leading zeros stripped, high bit padded)', () => {
    const r = Buffer.alloc(32, 0);
    r[31] = 1;
    const s = Buffer.alloc(32, 0xff);
    const der = ecdsaRawToDer(Buffer.concat([r, s]), 32);
    assert.equal(der.toString('hex'), `3026020101022100${'ff'.repeat(32)}`);
    assert.throws(() => ecdsaRawToDer(Buffer.alloc(63), 32), /63-byte ECDSA signature/);
  });
});

describe('CA keys generated in a SoftHSM2 token, used over HTTP', () => {
  let env: TestEnv;
  let server: RunningServer;
  const tmp = new TempDir();
  let root: { id: string; certificate: string };
  let int: { id: string; certificate: string };
  let keyIds: Record<string, string>;

  before(async () => {
    env = await createTestEnv({ ...hsm.env, SIGNET_CRL_COALESCE_MS: '0' });
    json(signet(['init', '--json'], env.env));
    server = await startServer(env.env);
    const cas = (await api(server, 'GET', '/api/v1/cas')).json.items as { id: string; parentId: string | null }[];
    const full = async (id: string) => (await api(server, 'GET', `/api/v1/cas/${id}`)).json;
    root = await full(cas.find((c) => c.parentId === null)!.id);
    int = await full(cas.find((c) => c.parentId !== null)!.id);
    keyIds = Object.fromEntries((await sql<{ id: string; keyId: string }>(env, 'SELECT id, "keyId" FROM "CertificateAuthority"')).map((r) => [r.id, r.keyId]));
  });
  after(async () => {
    await server?.stop();
    await env.cleanup();
    tmp.remove();
  });

  test('init generated both CA keys in the token: sensitive, never extractable, sign only; the database holds their pkcs11: URIs and no key', async () => {
    assert.equal(Object.keys(keyIds).length, 2);
    for (const uri of Object.values(keyIds)) {
      assert.match(uri, URI);
      assert.equal(parsePkcs11Uri(uri).token, hsm.label);
      const block = objectListing(uri);
      assert.match(block, /Access:\s+sensitive, always sensitive, never extractable, local/);
      assert.match(block, /Usage:\s+sign\n/);
      // GnuTLS's p11tool resolves the URI Signet recorded (RFC 7512) to exactly this object.
      const p11 = execFileSync('p11tool', ['--provider', hsm.module, '--list-privkeys', '--login', uri], {
        env: { ...process.env, GNUTLS_PIN: hsm.pin },
        encoding: 'utf8',
      });
      assert.equal((p11.match(/^Object \d+:/gm) ?? []).length, 1, p11);
      assert.match(p11, new RegExp(`Label: ${parsePkcs11Uri(uri).object}\n`));
      assert.match(p11, /Flags: .*CKA_NEVER_EXTRACTABLE; CKA_SENSITIVE;/);
    }
    const records = await sql<{ id: string; kekId: string; sealed: Uint8Array }>(env, 'SELECT id, "kekId", sealed FROM "KeyRecord"');
    for (const uri of Object.values(keyIds)) {
      const rec = records.find((r) => r.id === uri);
      assert.ok(rec, `no key record for ${uri}`);
      assert.equal(rec.kekId, 'pkcs11');
      assert.equal(Buffer.from(rec.sealed).length, 0);
    }
  });

  test('a signature made by pkcs11-tool with the intermediate key in the token verifies with the public key of the intermediate certificate', () => {
    const data = randomBytes(200);
    const dataFile = tmp.file('data.bin', data);
    const hashFile = tmp.file('data.sha256', createHash('sha256').update(data).digest());
    const sigFile = join(tmp.path, 'data.sig');
    hsm.tool([
      '--sign',
      '--mechanism',
      'ECDSA',
      '--id',
      idHex(keyIds[int.id]!),
      '--input-file',
      hashFile,
      '--output-file',
      sigFile,
      '--signature-format',
      'openssl',
    ]);
    const pub = tmp.file('int-pub.pem', new X509Certificate(int.certificate).publicKey.export({ format: 'pem', type: 'spki' }) as string);
    const r = openssl(['dgst', '-sha256', '-verify', pub, '-signature', sigFile, dataFile]);
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /Verified OK/);
    assert.ok(verify('sha256', data, new X509Certificate(int.certificate).publicKey, readFileSync(sigFile)));
  });

  test('a leaf issued over HTTP by the token-backed intermediate verifies with openssl, Go, GnuTLS and NSS; revoked, it is on a CRL the token signed and OCSP says so', async (t) => {
    const csr = csrMaker(tmp)('DNS:hsm.example.test');
    const issued = await api(server, 'POST', '/api/v1/certificates', { csr, profile: 'server' });
    assert.equal(issued.status, 201, issued.text);
    const leaf = tmp.file('leaf.pem', issued.json.certificate);
    const rootPem = tmp.file('root.pem', root.certificate);
    const chain = tmp.file('chain.pem', issued.json.chain);
    const v = openssl(['verify', '-CAfile', rootPem, '-untrusted', chain, leaf]);
    assert.equal(v.status, 0, v.stderr + v.stdout);
    assertStrictlyValid(t, {
      roots: [root.certificate],
      intermediates: [issued.json.chain],
      leaf: issued.json.certificate,
      dns: 'hsm.example.test',
      eku: 'server',
    });

    const rv = await api(server, 'POST', `/api/v1/certificates/${issued.json.serial}/revoke`, { reason: 'keyCompromise' });
    assert.equal(rv.status, 200, rv.text);
    const bundle = tmp.file('bundle.pem', root.certificate + int.certificate);
    let crlText = '';
    for (let i = 0; i < 100 && !crlText.includes(issued.json.serial.toUpperCase()); i++) {
      const der = Buffer.from(await (await fetch(`${server.url}/pki/${int.id}.crl`)).arrayBuffer());
      const crl = tmp.file('int.crl', der);
      const c = openssl(['crl', '-inform', 'DER', '-in', crl, '-CAfile', bundle, '-noout', '-text']);
      assert.equal(c.status, 0, c.stderr);
      assert.match(c.stderr + c.stdout, /verify OK/);
      crlText = c.stdout.toUpperCase().replace(/:/g, '');
      if (!crlText.includes(issued.json.serial.toUpperCase())) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(crlText.includes(issued.json.serial.toUpperCase()), 'the revoked serial is on the CRL');
    const intFile = tmp.file('int.pem', int.certificate);
    const o = openssl(['ocsp', '-issuer', intFile, '-cert', leaf, '-url', `${server.url}/ocsp`, '-CAfile', bundle, '-no_nonce']);
    assert.equal(o.status, 0, o.stderr);
    assert.match(o.stdout, /: revoked/);
    assert.match(o.stderr + o.stdout, /Response verify OK/);

    // The OCSP responder certificate was signed by the token; its own key is a sealed software key.
    const responders = await sql<{ keyId: string }>(env, 'SELECT "keyId" FROM "OcspResponder"');
    assert.ok(responders.length >= 1);
    for (const r of responders) {
      assert.doesNotMatch(r.keyId, /^pkcs11:/);
      const [rec] = await sql<{ kekId: string; sealed: Uint8Array }>(env, 'SELECT "kekId", sealed FROM "KeyRecord" WHERE id = ?', [r.keyId]);
      assert.notEqual(rec!.kekId, 'pkcs11');
      assert.ok(Buffer.from(rec!.sealed).length > 0);
    }
  });

  test('the audit trail records the pkcs11: URI of every key generated and used, and never the PIN', async () => {
    const events = await sql<{ action: string; details: string }>(env, 'SELECT action, details FROM "AuditEvent" ORDER BY seq');
    const withUri = (action: string) => events.filter((e) => e.action === action).map((e) => JSON.parse(e.details).keyUri as string | undefined);
    assert.deepEqual(withUri('ca.created').sort(), Object.values(keyIds).sort());
    assert.deepEqual(withUri('ca.key.used'), [keyIds[root.id]]);
    assert.ok(withUri('certificate.issued').length >= 1);
    for (const u of withUri('certificate.issued')) assert.equal(u, keyIds[int.id]);
    assert.ok(withUri('crl.signed').includes(keyIds[int.id]));
    assert.ok(withUri('ocsp.responder.issued').every((u) => u === keyIds[int.id]));
    for (const e of events) assert.ok(!e.details.includes(hsm.pin), `the PIN is in audit event ${e.action}`);
    assert.ok(!server.stdout().includes(hsm.pin) && !server.stderr().includes(hsm.pin));
    for (const f of readdirSync(env.dataDir)) assert.equal(readFileSync(join(env.dataDir, f)).indexOf(hsm.pin), -1, `the PIN is in ${f}`);
  });

  test('/readyz reports the token login', async () => {
    const r = await fetch(`${server.url}/readyz`);
    const body = await r.json();
    assert.equal(r.status, 200, JSON.stringify(body));
    assert.equal(body.checks.token, 'logged in');
  });

  test('create-intermediate puts RSA-3072, P-384, P-521 and Ed25519 keys in the token; each signs leaves that openssl verifies', async () => {
    const mechanisms = hsm.tool(['--list-mechanisms'], { login: false });
    for (const key of ['rsa-3072', 'ecdsa-p384', 'ecdsa-p521', 'ed25519']) {
      const made = signet(['ca', 'create-intermediate', '--parent', root.id, '--subject', `CN=HSM ${key},O=Signet`, '--key', key, '--json'], env.env);
      if (key === 'ed25519' && !/EDDSA/.test(mechanisms)) {
        assert.notEqual(made.status, 0);
        assert.match(made.stderr, /does not support Ed25519 \(CKM_EDDSA\)/);
        continue;
      }
      const row = json(made);
      const [ca] = await sql<{ keyId: string }>(env, 'SELECT "keyId" FROM "CertificateAuthority" WHERE id = ?', [row.id]);
      assert.match(ca!.keyId, URI);
      assert.match(objectListing(ca!.keyId), /never extractable/);
      const csr = csrMaker(tmp)(`DNS:${key}.example.test`);
      const issued = await api(server, 'POST', '/api/v1/certificates', { csr, profile: 'server', caId: row.id });
      assert.equal(issued.status, 201, issued.text);
      const v = openssl([
        'verify',
        '-CAfile',
        tmp.file('root.pem', root.certificate),
        '-untrusted',
        tmp.file(`chain-${key}.pem`, issued.json.chain),
        tmp.file(`leaf-${key}.pem`, issued.json.certificate),
      ]);
      assert.equal(v.status, 0, `${key}: ${v.stderr}${v.stdout}`);
    }
  });

  test('a CA key deleted from the token behind Signet’s back: issuing from it is a 503 problem, /readyz is 503, nothing is written and the server keeps serving', async () => {
    const made = json(
      signet(['ca', 'create-intermediate', '--parent', root.id, '--subject', 'CN=HSM doomed,O=Signet', '--key', 'ecdsa-p256', '--json'], env.env),
    );
    const [ca] = await sql<{ keyId: string }>(env, 'SELECT "keyId" FROM "CertificateAuthority" WHERE id = ?', [made.id]);
    const csr = csrMaker(tmp)('DNS:doomed.example.test');
    const first = await api(server, 'POST', '/api/v1/certificates', { csr, profile: 'server', caId: made.id });
    assert.equal(first.status, 201, first.text);
    hsm.tool(['--delete-object', '--type', 'privkey', '--id', idHex(ca!.keyId)]);
    const count = async () => Number((await sql<{ n: number }>(env, 'SELECT COUNT(*) AS n FROM "Certificate"'))[0]!.n);
    const before = await count();
    const r = await api(server, 'POST', '/api/v1/certificates', { csr, profile: 'server', caId: made.id });
    assert.equal(r.status, 503, r.text);
    assert.match(r.headers.get('content-type') ?? '', /application\/problem\+json/);
    assert.match(r.json.detail, /is (not|no longer) in PKCS#11 token/);
    assert.equal(await count(), before);
    const ready = await fetch(`${server.url}/readyz`);
    assert.equal(ready.status, 503);
    assert.match((await ready.json()).checks.token, /not in PKCS#11 token/);
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
    // The other CAs still sign.
    const ok = await api(server, 'POST', '/api/v1/certificates', { csr, profile: 'server', caId: int.id });
    assert.equal(ok.status, 201, ok.text);
  });

  test('a CA key object replaced behind Signet’s back (same CKA_ID and label, another key): its signature is checked, refused with a 503 problem, nothing is written', async () => {
    // Through the API: a CLI process would stop at start-up on the key the previous test deleted.
    const created = await api(server, 'POST', '/api/v1/cas', { parentId: root.id, subject: 'CN=HSM swapped,O=Signet', keyAlgorithm: 'ecdsa-p256' });
    assert.equal(created.status, 201, created.text);
    const made = created.json as { id: string };
    const [ca] = await sql<{ keyId: string }>(env, 'SELECT "keyId" FROM "CertificateAuthority" WHERE id = ?', [made.id]);
    const csr = csrMaker(tmp)('DNS:swapped.example.test');
    const first = await api(server, 'POST', '/api/v1/certificates', { csr, profile: 'server', caId: made.id });
    assert.equal(first.status, 201, first.text);
    const { object } = parsePkcs11Uri(ca!.keyId);
    hsm.tool(['--delete-object', '--type', 'privkey', '--id', idHex(ca!.keyId)]);
    // An attacker's key pair made in the same token under the same CKA_ID and label.
    hsm.tool(['--keypairgen', '--key-type', 'EC:prime256v1', '--id', idHex(ca!.keyId), '--label', object]);
    const count = async () => Number((await sql<{ n: number }>(env, 'SELECT COUNT(*) AS n FROM "Certificate"'))[0]!.n);
    const before = await count();
    // The first request may still hold the deleted object's handle ("no longer in the token");
    // the next looks the key up again, finds the attacker's, and its signature must not pass.
    const stale = await api(server, 'POST', '/api/v1/certificates', { csr, profile: 'server', caId: made.id });
    assert.equal(stale.status, 503, stale.text);
    const r = await api(server, 'POST', '/api/v1/certificates', { csr, profile: 'server', caId: made.id });
    assert.equal(r.status, 503, r.text);
    assert.match(r.headers.get('content-type') ?? '', /application\/problem\+json/);
    assert.match(r.json.detail, /does not verify with the public key Signet recorded/);
    assert.equal(await count(), before);
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
  });

  test('a CA key object replaced by a larger key (P-384 for P-256): 503 for that CA only; the failed signing session is not reused, every other CA keeps signing', async () => {
    const created = await api(server, 'POST', '/api/v1/cas', { parentId: root.id, subject: 'CN=HSM resized,O=Signet', keyAlgorithm: 'ecdsa-p256' });
    assert.equal(created.status, 201, created.text);
    const made = created.json as { id: string };
    const [ca] = await sql<{ keyId: string }>(env, 'SELECT "keyId" FROM "CertificateAuthority" WHERE id = ?', [made.id]);
    const csr = csrMaker(tmp)('DNS:resized.example.test');
    assert.equal((await api(server, 'POST', '/api/v1/certificates', { csr, profile: 'server', caId: made.id })).status, 201);
    hsm.tool(['--delete-object', '--type', 'privkey', '--id', idHex(ca!.keyId)]);
    hsm.tool(['--keypairgen', '--key-type', 'EC:secp384r1', '--id', idHex(ca!.keyId), '--label', parsePkcs11Uri(ca!.keyId).object]);
    // A 96-byte signature does not fit the 64 bytes a P-256 key gives: the token refuses
    // (CKR_BUFFER_TOO_SMALL) and leaves that session's signing operation active.
    for (let i = 0; i < 3; i++) {
      const r = await api(server, 'POST', '/api/v1/certificates', { csr, profile: 'server', caId: made.id });
      assert.equal(r.status, 503, r.text);
      assert.match(r.headers.get('content-type') ?? '', /application\/problem\+json/);
    }
    // More requests than the pool has sessions, concurrently: none may land on a poisoned session.
    const others = await Promise.all(Array.from({ length: 10 }, () => api(server, 'POST', '/api/v1/certificates', { csr, profile: 'server', caId: int.id })));
    for (const r of others) assert.equal(r.status, 201, r.text);
  });

  test('start-up with a key object missing, a wrong PIN, no such token, no module, or a library that is not PKCS#11: one precise line, non-zero exit, nothing changed', async () => {
    await server.stop();
    const pinFile = join(tmp.path, 'pin');
    writeFileSync(pinFile, `${hsm.pin}\n`, { mode: 0o644 });
    chmodSync(pinFile, 0o644);
    const cases: [string, Record<string, string>, RegExp][] = [
      // Earlier tests deleted one CA's key object and replaced two others' (another P-256 key, a
      // P-384 key): start-up stops at whichever it checks first.
      [
        'key object missing or replaced',
        {},
        /CA key pkcs11:token=.* is not in PKCS#11 token "signet-test-\d+" \(deleted, or another token\?\)|the signature PKCS#11 token "signet-test-\d+" made with CA key pkcs11:.* does not verify with the public key Signet recorded|PKCS#11 token "signet-test-\d+" refused an operation while signing with CA key pkcs11:.* \(CKR_BUFFER_TOO_SMALL\)/,
      ],
      ['wrong PIN', { SIGNET_PKCS11_PIN: 'not-the-pin-42' }, /the PIN for PKCS#11 token "signet-test-\d+" is wrong \(CKR_PIN_INCORRECT\)/],
      [
        'no such token',
        { SIGNET_PKCS11_TOKEN: 'no-such-token' },
        /no PKCS#11 token labelled "no-such-token" in .*libsofthsm2\.so \(tokens present: "signet-test-\d+"/,
      ],
      ['no module', { SIGNET_PKCS11_MODULE: '/nonexistent/libpkcs11.so' }, /SIGNET_PKCS11_MODULE \/nonexistent\/libpkcs11\.so does not exist/],
      [
        'not PKCS#11',
        { SIGNET_PKCS11_MODULE: '/usr/lib/x86_64-linux-gnu/libz.so.1' },
        /SIGNET_PKCS11_MODULE \/usr\/lib\/x86_64-linux-gnu\/libz\.so\.1 is not a PKCS#11 library/,
      ],
      ['PIN file readable by others', { SIGNET_PKCS11_PIN: '', SIGNET_PKCS11_PIN_FILE: pinFile }, /is readable by other users \(mode 644\); run chmod 600/],
      ['no module setting', { SIGNET_PKCS11_MODULE: '' }, /SIGNET_PKCS11_MODULE is required with SIGNET_KEY_STORE=pkcs11/],
    ];
    const before = await snapshot(env);
    for (const [name, change, message] of cases) {
      const r = signet(['ca', 'list'], { ...env.env, ...change });
      assert.notEqual(r.status, 0, `${name}: exit status`);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, `${name}: one line, got ${r.stderr}`);
      assert.match(lines[0]!, message, name);
      assert.ok(!r.stderr.includes(hsm.pin), `${name}: the PIN is printed`);
      assert.deepEqual(await snapshot(env), before, `${name}: the data directory or the database changed`);
    }
    // A store whose CA keys are in a token is not opened with software keys instead.
    const sealed = Object.fromEntries(Object.entries(env.env).filter(([k]) => !k.startsWith('SIGNET_PKCS11_') && k !== 'SIGNET_KEY_STORE'));
    const r = signet(['ca', 'list'], sealed);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /is kept in a PKCS#11 token: start Signet with SIGNET_KEY_STORE=pkcs11/);
  });
});

describe('signet ca move-key --to pkcs11', () => {
  let env: TestEnv;
  const tmp = new TempDir();
  before(async () => {
    env = await createTestEnv({ SIGNET_KEY_STORE: 'sealed' });
    json(signet(['init', '--json'], env.env));
    // On SQLite, a KeyRecord table that outgrew its first page while secure_delete was off (keys
    // made over the years): the split leaves the former cells, the sealed CA keys among them, in
    // the unused area of what becomes an interior page; deleting the fillers does not clear it.
    if (!env.databaseUrl) {
      for (let i = 0; i < 24; i++)
        await sql(env, 'INSERT INTO "KeyRecord" (id, algorithm, kekId, sealed, publicKeyDer) VALUES (?, ?, ?, ?, ?)', [
          `filler-${i}`,
          'ecdsa-p256',
          'filler',
          randomBytes(400),
          randomBytes(91),
        ]);
      await sql(env, `DELETE FROM "KeyRecord" WHERE id LIKE 'filler-%'`);
    }
  });
  after(async () => {
    await env.cleanup();
    tmp.remove();
  });

  test('moves a sealed CA key into the token (sensitive, non-extractable), deletes the sealed copy, audits it; no trace of the key remains in the database, data directory or a backup', async () => {
    const [ca] = await sql<{ id: string; keyId: string }>(env, 'SELECT id, "keyId" FROM "CertificateAuthority" WHERE "parentId" IS NOT NULL');
    const [rec] = await sql<{ sealed: Uint8Array }>(env, 'SELECT sealed FROM "KeyRecord" WHERE id = ?', [ca!.keyId]);
    const kek = Buffer.from(readFileSync(join(env.dataDir, 'master.key'), 'utf8').trim(), 'base64');
    const pkcs8 = unseal(kek, ca!.keyId, rec!.sealed);
    const d = Buffer.from((createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }).export({ format: 'jwk' }) as { d: string }).d, 'base64url');

    // The PIN from a private file this time (SIGNET_PKCS11_PIN_FILE, mode 0600).
    const pinFile = join(tmp.path, 'pin');
    writeFileSync(pinFile, `${hsm.pin}\n`, { mode: 0o600 });
    const { SIGNET_PKCS11_PIN: _pin, ...noPin } = hsm.env;
    const pk = { ...env.env, ...noPin, SIGNET_PKCS11_PIN_FILE: pinFile };
    const noStore = signet(['ca', 'move-key', ca!.id, '--to', 'pkcs11'], env.env);
    assert.notEqual(noStore.status, 0);
    assert.match(noStore.stderr, /needs SIGNET_KEY_STORE=pkcs11/);

    const moved = json(signet(['ca', 'move-key', ca!.id, '--to', 'pkcs11', '--json'], pk));
    assert.match(moved.keyUri, URI);
    const block = objectListing(moved.keyUri);
    assert.match(block, /Access:\s+sensitive/);
    assert.match(block, /Usage:\s+sign\n/);
    const [after] = await sql<{ keyId: string }>(env, 'SELECT "keyId" FROM "CertificateAuthority" WHERE id = ?', [ca!.id]);
    assert.equal(after!.keyId, moved.keyUri);
    assert.equal((await sql(env, 'SELECT id FROM "KeyRecord" WHERE id = ?', [ca!.keyId])).length, 0, 'the sealed copy is deleted');
    const [audit] = await sql<{ details: string }>(env, `SELECT details FROM "AuditEvent" WHERE action = 'ca.key.moved' AND target = ?`, [ca!.id]);
    assert.equal(JSON.parse(audit!.details).keyUri, moved.keyUri);

    // It signs through the token: a leaf from the CLI verifies.
    const out = join(tmp.path, 'moved.pem');
    json(
      signet(['issue', '--generate-key', 'ecdsa-p256', '--san', 'moved.example.test', '--key-out', join(tmp.path, 'moved.key'), '--out', out, '--json'], pk),
    );
    const [rootRow] = await sql<{ certificateDer: Uint8Array }>(env, 'SELECT "certificateDer" FROM "CertificateAuthority" WHERE "parentId" IS NULL');
    const rootPem = tmp.file('root.pem', new X509Certificate(Buffer.from(rootRow!.certificateDer)).toString());
    const v = openssl(['verify', '-CAfile', rootPem, '-untrusted', out, out]);
    assert.equal(v.status, 0, v.stderr + v.stdout);

    // Moving it again moves nothing and only scrubs (what a move whose scrub could not finish asks for).
    const again = signet(['ca', 'move-key', ca!.id, '--to', 'pkcs11'], pk);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /is already in the token \(pkcs11:.*\); nothing to move, the database files were scrubbed/);
    assert.equal((await sql(env, 'SELECT id FROM "CertificateAuthority" WHERE "keyId" = ?', [moved.keyUri])).length, 1);

    const backup = join(env.dataDir, 'after-move.backup');
    json(signet(['backup', backup, '--json'], pk));
    const dbRows = (await sql<Record<string, unknown>>(env, 'SELECT * FROM "KeyRecord"')).flatMap((r) =>
      Object.values(r).map((x) => (x instanceof Uint8Array ? Buffer.from(x) : Buffer.from(String(x)))),
    );
    const files = readdirSync(env.dataDir)
      .filter((f) => statSync(join(env.dataDir, f)).isFile())
      .map((f) => [f, readFileSync(join(env.dataDir, f))] as const);
    // The sealed copy too, in any file (the database's free space, its write-ahead log): with the
    // master key, which sits in the same directory, it would unseal to the CA key.
    const sealed = Buffer.from(rec!.sealed);
    for (const needle of [pkcs8, d, sealed, sealed.subarray(12, 44)])
      for (const [name, hay] of [...files, ...dbRows.map((b, i) => [`KeyRecord value ${i}`, b] as const)])
        assert.equal(
          hay.indexOf(needle),
          -1,
          `the moved key (${needle === pkcs8 ? 'PKCS#8' : needle === d ? 'private scalar' : 'sealed'}) is still in ${name}`,
        );
  });
});

describe('ca import and init with the pkcs11 store', () => {
  let env: TestEnv;
  const tmp = new TempDir();
  before(async () => {
    env = await createTestEnv({ ...hsm.env });
  });
  after(async () => {
    await env.cleanup();
    tmp.remove();
  });

  test('two tokens with the label Signet is given: refused at start-up (the PIN goes to neither), nothing created', () => {
    hsm.initToken('signet-twice');
    hsm.initToken('signet-twice');
    const r = signet(['init', '--json'], { ...env.env, SIGNET_PKCS11_TOKEN: 'signet-twice' });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /2 PKCS#11 tokens in .* are labelled "signet-twice" \(serial numbers .*\); give the token Signet uses a label of its own/);
    assert.deepEqual(readdirSync(env.dataDir), []);
  });

  test('a PIN file that is a directory, a FIFO or too large is refused with one line before the token sees a PIN', () => {
    const { SIGNET_PKCS11_PIN: _pin, ...noPin } = env.env;
    const dir = join(tmp.path, 'pin-dir');
    mkdirSync(dir, { mode: 0o700 });
    const fifo = join(tmp.path, 'pin-fifo');
    execFileSync('mkfifo', ['-m', '600', fifo]);
    const big = join(tmp.path, 'pin-big');
    writeFileSync(big, 'x'.repeat(1 << 20), { mode: 0o600 });
    for (const [file, why] of [
      [dir, /is not a regular file/],
      [fifo, /is not a regular file/],
      [big, /too large for a PIN file/],
      // A regular file that says it is empty and is not: the whole environment would be sent as a PIN.
      ['/proc/self/environ', /holds more than 1024 bytes|contains NUL bytes/],
    ] as const) {
      const r = signet(['init', '--json'], { ...noPin, SIGNET_PKCS11_PIN_FILE: file });
      assert.notEqual(r.status, 0, file);
      assert.match(r.stderr, why);
      assert.deepEqual(readdirSync(env.dataDir), []);
    }
  });

  test('init with an ML-DSA root key: refused with what to do (the token has no ML-DSA), no root created', async () => {
    // An environment of its own: the refusal leaves a database behind, which the next test must not see.
    const own = await createTestEnv({ ...hsm.env });
    try {
      const r = signet(['init', '--json'], { ...own.env, SIGNET_ROOT_KEY: 'ml-dsa-87', SIGNET_INTERMEDIATE_KEY: 'ml-dsa-65' });
      assert.notEqual(r.status, 0);
      assert.match(
        r.stderr,
        /cannot generate an ml-dsa-87 CA key in the PKCS#11 token: the token does not implement ML-DSA\/SLH-DSA \(PKCS#11 3\.2\); keep post-quantum CA keys in the sealed store/,
      );
      assert.deepEqual(await sql(own, 'SELECT id FROM "CertificateAuthority"'), []);
    } finally {
      await own.cleanup();
    }
  });

  test('init --offline-root is refused before anything is created: a key in the token never leaves it', () => {
    const r = signet(
      ['init', '--offline-root', join(tmp.path, 'root.key'), '--offline-root-passphrase-file', tmp.file('pass', 'correct horse battery staple\n')],
      env.env,
    );
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /CA keys never leave the token/);
    assert.deepEqual(readdirSync(env.dataDir), []);
  });

  test('ca import puts an openssl-made RSA CA key into the token (sensitive, non-extractable), and it signs an intermediate that openssl verifies', async () => {
    const { key, cert } = selfSignedCa(tmp, 'legacy', ['-newkey', 'rsa:2048'], '/CN=Legacy RSA Root');
    const row = json(signet(['ca', 'import', '--json', '--cert', cert, '--key', key], env.env));
    const [ca] = await sql<{ keyId: string }>(env, 'SELECT "keyId" FROM "CertificateAuthority" WHERE id = ?', [row.id]);
    assert.match(ca!.keyId, URI);
    const block = objectListing(ca!.keyId);
    assert.match(block, /Private Key Object; RSA/);
    assert.match(block, /Access:\s+sensitive/);
    assert.doesNotMatch(block, /(?<!never )extractable/);
    const [audit] = await sql<{ details: string }>(env, `SELECT details FROM "AuditEvent" WHERE action = 'ca.imported' AND target = ?`, [row.id]);
    assert.equal(JSON.parse(audit!.details).keyUri, ca!.keyId);
    // No trace of the imported key's private exponent in the database or the data directory.
    const d = Buffer.from((createPrivateKey(readFileSync(key)).export({ format: 'jwk' }) as { d: string }).d, 'base64url');
    for (const t of ['KeyRecord', 'CertificateAuthority', 'AuditEvent'])
      for (const r of await sql<Record<string, unknown>>(env, `SELECT * FROM "${t}"`))
        for (const v of Object.values(r)) assert.equal((v instanceof Uint8Array ? Buffer.from(v) : Buffer.from(String(v))).indexOf(d), -1, `in ${t}`);
    for (const f of readdirSync(env.dataDir).filter((f) => statSync(join(env.dataDir, f)).isFile()))
      assert.equal(readFileSync(join(env.dataDir, f)).indexOf(d), -1, `in ${f}`);

    const sub = json(
      signet(['ca', 'create-intermediate', '--parent', row.id, '--subject', 'CN=Under Legacy,O=Signet', '--validity-days', '20', '--json'], env.env),
    );
    const [subRow] = await sql<{ certificateDer: Uint8Array }>(env, 'SELECT "certificateDer" FROM "CertificateAuthority" WHERE id = ?', [sub.id]);
    const subPem = tmp.file('sub.pem', new X509Certificate(Buffer.from(subRow!.certificateDer)).toString());
    const v = openssl(['verify', '-CAfile', cert, subPem]);
    assert.equal(v.status, 0, v.stderr + v.stdout);

    // A backup holds the keys' URIs, not the keys; restored elsewhere (same master key, same
    // token) the CAs sign again through the token.
    const file = join(tmp.path, 'pkcs11.backup');
    json(signet(['backup', file, '--json'], env.env));
    assert.equal(readFileSync(file).indexOf(d), -1, 'the private exponent is in the backup');
    const other = await createTestEnv({ ...hsm.env });
    try {
      writeFileSync(join(other.dataDir, 'master.key'), readFileSync(join(env.dataDir, 'master.key')), { mode: 0o600 });
      const restored = signet(['restore', file], other.env);
      assert.equal(restored.status, 0, restored.stderr);
      const leaf = join(tmp.path, 'restored.pem');
      json(
        signet(
          [
            'issue',
            '--generate-key',
            'ecdsa-p256',
            '--san',
            'restored.example.test',
            '--ca',
            sub.id,
            '--key-out',
            join(tmp.path, 'r.key'),
            '--out',
            leaf,
            '--json',
          ],
          other.env,
        ),
      );
      const rv = openssl(['verify', '-CAfile', cert, '-untrusted', leaf, leaf]);
      assert.equal(rv.status, 0, rv.stderr + rv.stdout);
    } finally {
      await other.cleanup();
    }
  });
});

describe('ca import of Ed25519 and P-384 CA keys into the token', () => {
  let env: TestEnv;
  const tmp = new TempDir();
  before(async () => {
    env = await createTestEnv({ ...hsm.env });
  });
  after(async () => {
    await env.cleanup();
    tmp.remove();
  });

  for (const [name, newkey] of [
    ['ed25519', ['-newkey', 'ed25519']],
    ['ecdsa-p384', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384']],
  ] as const) {
    test(`an imported ${name} root signs, through the token, an intermediate that openssl verifies`, async () => {
      const { key, cert } = selfSignedCa(tmp, name, newkey, `/CN=Imported ${name}`);
      const row = json(signet(['ca', 'import', '--json', '--cert', cert, '--key', key], env.env));
      const [ca] = await sql<{ keyId: string }>(env, 'SELECT "keyId" FROM "CertificateAuthority" WHERE id = ?', [row.id]);
      assert.match(ca!.keyId, URI);
      assert.match(objectListing(ca!.keyId), /Access:\s+sensitive/);
      const sub = json(signet(['ca', 'create-intermediate', '--parent', row.id, '--subject', `CN=Under ${name}`, '--validity-days', '20', '--json'], env.env));
      const [subRow] = await sql<{ certificateDer: Uint8Array }>(env, 'SELECT "certificateDer" FROM "CertificateAuthority" WHERE id = ?', [sub.id]);
      const v = openssl(['verify', '-CAfile', cert, tmp.file(`sub-${name}.pem`, new X509Certificate(Buffer.from(subRow!.certificateDer)).toString())]);
      assert.equal(v.status, 0, v.stderr + v.stdout);
    });
  }
});

describe('the PIN in logs', () => {
  test('the PIN is redacted from log lines like the other secrets', async () => {
    const { createLogger } = await import('../src/observability/logger.js');
    const lines: string[] = [];
    const log = createLogger('info', { write: (l: string) => void lines.push(l) } as never);
    log.info({ SIGNET_PKCS11_PIN: hsm.pin, config: { SIGNET_PKCS11_PIN: hsm.pin }, pin: hsm.pin, token: { pin: hsm.pin } }, 'configuration');
    assert.equal(lines.length, 1);
    assert.ok(!lines[0]!.includes(hsm.pin), lines[0]);
    assert.match(lines[0]!, /\[redacted\]/);
  });
});

describe('a token session lost at run time', () => {
  let env: TestEnv;
  let ctx: CaContext;
  before(async () => {
    env = await createTestEnv({ ...hsm.env });
    const config = loadConfig(env.env);
    ctx = await openSignet(config, pino({ level: 'silent' }));
    await bootstrapIfEmpty(ctx, config);
  });
  after(async () => {
    await ctx?.db.close();
    await env.cleanup();
  });

  test('signatures in flight fail with 503 (unavailable), the session is re-opened and the next signature verifies; concurrent signatures use the session pool', async () => {
    const keys = ctx.keys as Pkcs11KeyStore;
    const [ca] = await sql<{ keyId: string }>(env, 'SELECT "keyId" FROM "CertificateAuthority" WHERE "parentId" IS NOT NULL');
    const signer = await keys.signer(ca!.keyId);
    const data = randomBytes(64);
    const check = (sig: Uint8Array) => verify('sha256', data, { key: signer.publicKey, dsaEncoding: 'der' }, sig);
    assert.ok(check(await signer.sign(data)));
    const sigs = await Promise.all(Array.from({ length: 64 }, () => signer.sign(data)));
    assert.ok(sigs.every(check));
    assert.equal(await keys.health([ca!.keyId]), 'logged in');

    // The token itself refuses to reveal the private value (CKR_ATTRIBUTE_SENSITIVE), even to the logged-in user.
    const p0 = keys.token.p;
    const s0 = p0.C_OpenSession(p0.C_GetSlotList(true).find((s) => p0.C_GetTokenInfo(s).label.trim() === hsm.label)!, 4);
    const { id: ckaId } = parsePkcs11Uri(ca!.keyId);
    p0.C_FindObjectsInit(s0, [
      { type: 0x0, value: 3 },
      { type: 0x102, value: ckaId },
    ]);
    const [handle] = p0.C_FindObjects(s0, 2);
    p0.C_FindObjectsFinal(s0);
    assert.ok(handle);
    assert.throws(() => p0.C_GetAttributeValue(s0, handle, [{ type: 0x11 }]), /CKR_ATTRIBUTE_SENSITIVE/);
    p0.C_CloseSession(s0);

    // The token drops every session of this application (as on a device reset), behind the store's back.
    const p = keys.token.p;
    const slot = p.C_GetSlotList(true).find((s) => p.C_GetTokenInfo(s).label.trim() === hsm.label)!;
    p.C_CloseAllSessions(slot);
    const lost = await signer.sign(data).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(isSignetError(lost), String(lost));
    assert.equal(lost.type, 'unavailable');
    assert.equal(lost.status, 503);
    assert.match(lost.detail, /lost its session while signing with CA key pkcs11:.*\(CKR_SESSION_HANDLE_INVALID\)/);
    assert.ok(check(await signer.sign(data)), 'signs again after the re-open');

    // /readyz sees a lost login, and re-opens it itself.
    p.C_CloseAllSessions(slot);
    assert.match(keys.token.loginState(), /session lost \(CKR_SESSION_HANDLE_INVALID\)/);
    assert.equal(await keys.health([ca!.keyId]), 'logged in');
    assert.ok(check(await signer.sign(data)));
  });

  test('/readyz checks of the CA keys are shared: a flood of probes makes one round of test signatures, not one per probe', async () => {
    const keys = ctx.keys as Pkcs11KeyStore;
    const ids = (await sql<{ keyId: string }>(env, 'SELECT "keyId" FROM "CertificateAuthority"')).map((r) => r.keyId);
    const p = keys.token.p;
    const original = p.C_SignAsync;
    let signatures = 0;
    p.C_SignAsync = ((...args: Parameters<typeof original>) => {
      signatures++;
      return original.apply(p, args);
    }) as typeof original;
    try {
      // A fresh key set: nothing checked for it yet.
      await keys.health([...ids].reverse());
      const first = signatures;
      assert.equal(first, ids.length, 'one test signature per CA key');
      const answers = await Promise.all(Array.from({ length: 50 }, () => keys.health([...ids].reverse())));
      for (let i = 0; i < 50; i++) answers.push(await keys.health([...ids].reverse()));
      assert.ok(answers.every((a) => a === 'logged in'));
      assert.equal(signatures, first, '100 more probes within the cache time made no test signature');
    } finally {
      p.C_SignAsync = original;
    }
  });

  test('over HTTP: a session lost under a request answers 503 application/problem+json, writes nothing, and the next request is issued', async () => {
    const { createServices } = await import('../src/runtime/services.js');
    const { createHandler } = await import('../src/http/app.js');
    const { createMetrics } = await import('../src/observability/metrics.js');
    const { createServer } = await import('node:http');
    const config = loadConfig(env.env);
    const services = createServices(ctx, config);
    const handler = createHandler(ctx, createMetrics(), {
      bodyLimit: config.SIGNET_BODY_LIMIT,
      trustProxy: config.SIGNET_TRUST_PROXY,
      rateLimitPerAddress: 0,
      rateLimitPerToken: 0,
      ...services,
    });
    const http = createServer(handler);
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    const tmp = new TempDir();
    try {
      const server = {
        url: `http://127.0.0.1:${(http.address() as { port: number }).port}`,
        token: readFileSync(join(env.dataDir, 'admin-token'), 'utf8').trim(),
      };
      const csr = csrMaker(tmp)('DNS:inflight.example.test');
      const count = async () => Number((await sql<{ n: number }>(env, 'SELECT COUNT(*) AS n FROM "Certificate"'))[0]!.n);
      assert.equal((await api(server, 'POST', '/api/v1/certificates', { csr, profile: 'server' })).status, 201);
      const keys = ctx.keys as Pkcs11KeyStore;
      const p = keys.token.p;
      p.C_CloseAllSessions(p.C_GetSlotList(true).find((s) => p.C_GetTokenInfo(s).label.trim() === hsm.label)!);
      const before = await count();
      const lost = await api(server, 'POST', '/api/v1/certificates', { csr, profile: 'server' });
      assert.equal(lost.status, 503, lost.text);
      assert.match(lost.headers.get('content-type') ?? '', /application\/problem\+json/);
      assert.match(lost.json.detail, /lost its session .*CKR_SESSION_HANDLE_INVALID.*nothing was signed or written/);
      assert.equal(await count(), before);
      const again = await api(server, 'POST', '/api/v1/certificates', { csr, profile: 'server' });
      assert.equal(again.status, 201, again.text);
      assert.equal(await count(), before + 1);
    } finally {
      await new Promise((r) => http.close(r));
      await services.ocsp.stop?.();
      tmp.remove();
    }
  });

  test('a PIN changed while Signet runs: the re-open is refused once, then never tried again (a token locks after a few wrong PINs)', async () => {
    const keys = ctx.keys as Pkcs11KeyStore;
    const [ca] = await sql<{ keyId: string }>(env, 'SELECT "keyId" FROM "CertificateAuthority" WHERE "parentId" IS NOT NULL');
    const signer = await keys.signer(ca!.keyId);
    const newPin = 'changed-Pin-55';
    const p = keys.token.p;
    const slot = p.C_GetSlotList(true).find((s) => p.C_GetTokenInfo(s).label.trim() === hsm.label)!;
    // Through this process's own view of the token (SoftHSM2 reads another process's change only at a restart).
    const admin = p.C_OpenSession(slot, 6);
    p.C_SetPIN(admin, hsm.pin, newPin);
    p.C_CloseAllSessions(slot); // every session gone: the login with them
    let restored = false;
    const restorePin = () => {
      const s = p.C_OpenSession(slot, 6);
      p.C_Login(s, 1, newPin);
      p.C_SetPIN(s, newPin, hsm.pin);
      p.C_CloseSession(s);
      restored = true;
    };
    try {
      const fail = (e: unknown) => e;
      const first = await signer.sign(Buffer.from('x')).then(() => null, fail);
      assert.ok(isSignetError(first) && first.status === 503, String(first));
      const second = await signer.sign(Buffer.from('x')).then(() => null, fail);
      assert.ok(isSignetError(second) && second.status === 503, String(second));
      assert.match(second.detail, /refused the PIN when Signet logged in again \(CKR_PIN_INCORRECT\); Signet does not retry/);
      // The configured PIN is right again, but Signet does not try it: a retry would have signed.
      restorePin();
      const third = await signer.sign(Buffer.from('x')).then(() => null, fail);
      assert.ok(isSignetError(third), 'signed after a refused PIN: Signet logged in again');
      assert.equal(third.detail, second.detail);
      assert.match(await keys.health([ca!.keyId]), /does not retry/);
    } finally {
      if (!restored) restorePin();
    }
  });
});
