/**
 * The CA hierarchy from the CLI: an offline root, intermediates signed with the offline key,
 * importing an existing CA made by openssl, and listing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { signet } from './helpers/cli.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';
import { openssl, selfSignedCa, TempDir } from './helpers/openssl.js';
import { sql } from './helpers/sql.js';
import { pbkdf2Key } from './helpers/encrypted-key.js';
import { createPrivateKey } from 'node:crypto';

describe('signet init --offline-root and ca commands', () => {
  let env: TestEnv;
  const tmp = new TempDir();
  let rootId: string;
  const keyFile = () => join(tmp.path, 'root-key.pem');
  const passFile = () => tmp.file('pass.txt', 'correct horse battery staple\n');

  before(async () => {
    env = await createTestEnv();
  });
  after(async () => {
    await env.cleanup();
    tmp.remove();
  });

  test('init with RSA root and Ed25519 intermediate, root exported encrypted and removed from the store', async () => {
    const r = signet(
      [
        'init',
        '--json',
        '--root-key',
        'rsa-3072',
        '--intermediate-key',
        'ed25519',
        '--root-subject',
        'CN=Acme Root,O=Acme,C=DE',
        '--offline-root',
        keyFile(),
        '--offline-root-passphrase-file',
        passFile(),
      ],
      env.env,
    );
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    rootId = out.rootId;
    assert.equal(statSync(keyFile()).mode & 0o777, 0o600);
    const pem = readFileSync(keyFile(), 'utf8');
    assert.match(pem, /^-----BEGIN ENCRYPTED PRIVATE KEY-----/);
    // openssl can open it with the passphrase, and only with it.
    assert.equal(openssl(['pkey', '-in', keyFile(), '-passin', 'pass:correct horse battery staple', '-noout']).status, 0);
    assert.notEqual(openssl(['pkey', '-in', keyFile(), '-passin', 'pass:wrong', '-noout']).status, 0);
    const [ca] = await sql(env, 'SELECT status, "keyId" FROM "CertificateAuthority" WHERE id = ?', [rootId]);
    assert.equal(ca.status, 'offline');
    assert.equal(ca.keyId, null);
    const events = await sql(env, `SELECT action FROM "AuditEvent" WHERE target = ? ORDER BY seq`, [rootId]);
    assert.ok(events.some((e: any) => e.action === 'ca.key.offline'));
    const list = JSON.parse(signet(['ca', 'list', '--json'], env.env).stdout);
    assert.equal(list.find((c: any) => c.id === rootId).status, 'offline');
    assert.match(list.find((c: any) => c.id === rootId).subject, /^CN=Acme Root,O=Acme,C=DE$/);
  });

  test('ca root prints the root to trust, an offline one included: --pem is the certificate, the table its fingerprint', () => {
    const pem = signet(['ca', 'root', '--pem'], env.env);
    assert.equal(pem.status, 0, pem.stderr);
    assert.match(pem.stdout, /^-----BEGIN CERTIFICATE-----\n[\s\S]+\n-----END CERTIFICATE-----\n$/);
    const root = JSON.parse(signet(['ca', 'list', '--json'], env.env).stdout).find((c: any) => c.id === rootId);
    const fp = openssl(['x509', '-noout', '-fingerprint', '-sha256'], pem.stdout).stdout;
    assert.equal(fp.trim().split('=')[1]!.replaceAll(':', '').toLowerCase(), root.fingerprint);
    const table = signet(['ca', 'root'], env.env);
    assert.equal(table.status, 0, table.stderr);
    assert.match(table.stdout, new RegExp(`^${rootId}\\s+offline\\s`, 'm'));
    assert.ok(table.stdout.includes(fp.trim().split('=')[1]!), table.stdout);
    assert.equal(signet(['ca', 'root', '--id', rootId, '--pem'], env.env).stdout, pem.stdout);
    const unknown = signet(['ca', 'root', '--id', 'root-0000000000'], env.env);
    assert.equal(unknown.status, 2, unknown.stderr);
    assert.match(unknown.stderr, /^signet: error: no root CA root-0000000000; `signet ca list` shows the CAs/);
  });

  test('an intermediate under an offline root needs its key file, and works with it', () => {
    const without = signet(['ca', 'create-intermediate', '--parent', rootId, '--subject', 'CN=Second Issuing CA'], env.env);
    assert.equal(without.status, 2, 'a refusal (409), not a failure');
    assert.match(without.stderr, /is kept offline: pass its key file \(--parent-key\)/);
    const wrong = signet(
      [
        'ca',
        'create-intermediate',
        '--parent',
        rootId,
        '--subject',
        'CN=Second Issuing CA',
        '--parent-key',
        keyFile(),
        '--parent-key-passphrase-file',
        tmp.file('bad.txt', 'nope'),
      ],
      env.env,
    );
    assert.match(wrong.stderr, /could not decrypt .*wrong passphrase/);
    const ok = signet(
      [
        'ca',
        'create-intermediate',
        '--json',
        '--parent',
        rootId,
        '--subject',
        'CN=Second Issuing CA',
        '--key',
        'ecdsa-p384',
        '--parent-key',
        keyFile(),
        '--parent-key-passphrase-file',
        passFile(),
      ],
      env.env,
    );
    assert.equal(ok.status, 0, ok.stderr);
    const row = JSON.parse(ok.stdout);
    assert.equal(row.parentId, rootId);
    assert.equal(row.keyAlgorithm, 'ecdsa-p384');
  });

  test('ca import brings in an openssl-made CA, matching its parent when known', () => {
    const { key, cert } = selfSignedCa(tmp, 'ext', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], '/CN=Legacy CA');
    const r = signet(['ca', 'import', '--json', '--cert', cert, '--key', key], env.env);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).parentId, null);
    const again = signet(['ca', 'import', '--cert', cert, '--key', key], env.env);
    assert.equal(again.status, 2);
    assert.match(again.stderr, /is already managed by Signet/);
    const otherKey = tmp.file('other.key');
    openssl(['genpkey', '-algorithm', 'ed25519', '-out', otherKey]);
    assert.match(signet(['ca', 'import', '--cert', cert, '--key', otherKey], env.env).stderr, /the private key does not match the certificate/);
    const leafKey = tmp.file('leaf.key');
    const leaf = tmp.file('leaf.pem');
    openssl([
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      leafKey,
      '-out',
      leaf,
      '-subj',
      '/CN=not a ca',
      '-days',
      '1',
      '-addext',
      'basicConstraints=critical,CA:FALSE',
    ]);
    assert.match(signet(['ca', 'import', '--cert', leaf, '--key', leafKey], env.env).stderr, /not a CA certificate/);
  });

  test('an encrypted key file whose key derivation costs too much is refused at once: ca import, --parent-key, crl --key', () => {
    // Any key will do (the cost is refused before decryption): the openssl-made CA key of the test above, re-encrypted.
    const costly = (file: string) =>
      tmp.file(file, pbkdf2Key(createPrivateKey(readFileSync(join(tmp.path, 'ext.key'), 'utf8')), 'correct horse battery staple', 42_000_000, 1000));
    const detail = /the private key's encryption derives its key with PBKDF2 at 42,000,000 iterations; Signet accepts at most 2,000,000/;
    const runs = [
      ['ca', 'import', '--cert', join(tmp.path, 'ext.pem'), '--key', costly('costly-import.key'), '--key-passphrase-file', passFile()],
      [
        'ca',
        'create-intermediate',
        '--parent',
        rootId,
        '--subject',
        'CN=Never Made',
        '--parent-key',
        costly('costly-parent.key'),
        '--parent-key-passphrase-file',
        passFile(),
      ],
      ['crl', '--ca', rootId, '--key', costly('costly-crl.key'), '--key-passphrase-file', passFile()],
    ];
    for (const args of runs) {
      const t = Date.now();
      const r = signet(args, env.env);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, detail, args.join(' '));
      assert.ok(Date.now() - t < 10_000, `${args.slice(0, 2).join(' ')} answered in ${Date.now() - t} ms`);
    }
  });

  test('--help explains each command', () => {
    const top = signet(['--help'], env.env);
    assert.equal(top.status, 0);
    for (const cmd of ['serve', 'migrate', 'init', 'ca']) assert.match(top.stdout, new RegExp(`\\b${cmd}\\b`));
    assert.match(signet(['ca', 'create-intermediate', '--help'], env.env).stdout, /--parent <caId>/);
    const bad = signet(['ca', 'frobnicate'], env.env);
    assert.notEqual(bad.status, 0);
    assert.ok(!existsSync(join(env.dataDir, 'frobnicate')));
  });
});
