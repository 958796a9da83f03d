/**
 * The certificate commands of the CLI, end to end with real processes and real openssl:
 * issue (from openssl CSRs, PEM and DER, and with keys generated here, as PKCS#12 too),
 * the refusals, list/status/show, renew, revoke (one, bulk, all from a CA), unhold, crl,
 * and the CRL of an offline root signed with its key file.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { signet, type CliResult } from './helpers/cli.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';
import { openssl, TempDir } from './helpers/openssl.js';
import { countRows, sql } from './helpers/sql.js';

// ---- helpers ---------------------------------------------------------------

function ok(r: CliResult): string {
  assert.equal(r.status, 0, `expected exit 0, got ${r.status}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout;
}

const json = (r: CliResult): any => JSON.parse(ok(r));

/** A refusal: non-zero exit, nothing on stdout, exactly one `signet: error: …` line on stderr. */
function refused(r: CliResult, pattern: RegExp, status = 2): void {
  assert.equal(r.status, status, `expected exit ${status}, got ${r.status}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  assert.equal(r.stdout, '', 'nothing on stdout');
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0]!, /^signet: error: \S/);
  assert.match(lines[0]!, pattern);
}

function osslOk(args: string[], input?: string | Buffer): string {
  const r = openssl(args, input);
  assert.equal(r.status, 0, `openssl ${args.join(' ')} failed:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

const countPem = (text: string, label = 'CERTIFICATE') => (text.match(new RegExp(`-----BEGIN ${label}-----`, 'g')) ?? []).length;

async function cas(env: TestEnv): Promise<{ rootId: string; intId: string; list: any[] }> {
  const list = json(signet(['ca', 'list', '--json'], env.env));
  const root = list.find((c: any) => c.parentId === null);
  const int = list.find((c: any) => c.parentId === root.id);
  return { rootId: root.id, intId: int.id, list };
}

/** A CA certificate as PEM, from the database through `openssl x509`. */
async function caPem(env: TestEnv, tmp: TempDir, caId: string): Promise<string> {
  const [row] = await sql(env, 'SELECT "certificateDer" AS der FROM "CertificateAuthority" WHERE id = ?', [caId]);
  assert.ok(row, `CA ${caId} in the database`);
  const der = tmp.file(`${caId}.der`, Buffer.from(row.der));
  const pem = tmp.file(`${caId}.pem`);
  osslOk(['x509', '-inform', 'DER', '-in', der, '-out', pem]);
  return pem;
}

/** `openssl req` with a fresh key: EC P-256 or RSA-2048, PEM or DER. */
function opensslCsr(tmp: TempDir, base: string, o: { alg: 'ec' | 'rsa'; cn: string; sans: string[]; der?: boolean }): { key: string; csr: string } {
  const key = tmp.file(`${base}.key`);
  const csr = tmp.file(`${base}.${o.der ? 'der' : 'csr'}`);
  const newkey = o.alg === 'ec' ? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'] : ['-newkey', 'rsa:2048'];
  osslOk([
    'req',
    '-new',
    ...newkey,
    '-nodes',
    '-keyout',
    key,
    '-out',
    csr,
    '-subj',
    `/CN=${o.cn}`,
    '-addext',
    `subjectAltName=${o.sans.map((s) => `DNS:${s}`).join(',')}`,
    ...(o.der ? ['-outform', 'DER'] : []),
  ]);
  return { key, csr };
}

/** Serial as openssl prints it (upper-case hex). */
const opensslSerial = (certFile: string) =>
  osslOk(['x509', '-in', certFile, '-noout', '-serial'])
    .trim()
    .replace(/^serial=/, '');

const pubFromCert = (certFile: string) => osslOk(['x509', '-in', certFile, '-noout', '-pubkey']);
const pubFromKey = (keyFile: string) => osslOk(['pkey', '-in', keyFile, '-pubout']);

// ---- issuance --------------------------------------------------------------

describe('signet issue', () => {
  let env: TestEnv;
  const tmp = new TempDir();
  let rootPem: string;
  let intId: string;
  let sharedCsr: string;

  before(async () => {
    env = await createTestEnv();
    ok(signet(['init'], env.env));
    const ids = await cas(env);
    intId = ids.intId;
    rootPem = await caPem(env, tmp, ids.rootId);
    sharedCsr = opensslCsr(tmp, 'shared', { alg: 'ec', cn: 'shared.example.test', sans: ['shared.example.test'] }).csr;
  });
  after(async () => {
    await env.cleanup();
    tmp.remove();
  });

  test('from an EC P-256 CSR made by openssl req: certificate and chain files that openssl verify accepts for sslserver', async () => {
    const { csr } = opensslCsr(tmp, 'ec', { alg: 'ec', cn: 'www.example.test', sans: ['www.example.test', 'api.example.test'] });
    const cert = tmp.file('ec-cert.pem');
    const chain = tmp.file('ec-chain.pem');
    const before = await countRows(env, 'Certificate');
    const out = ok(signet(['issue', '--csr', csr, '--profile', 'server', '--out', cert, '--chain-out', chain], env.env));
    const serial = opensslSerial(cert).toLowerCase();
    assert.match(out, new RegExp(`^issued ${serial} \\(server, by ${intId}\\)`));
    assert.equal(await countRows(env, 'Certificate'), before + 1);
    assert.equal(countPem(readFileSync(cert, 'utf8')), 1, 'with --chain-out, --out holds the certificate alone');
    assert.equal(countPem(readFileSync(chain, 'utf8')), 1, 'the chain is the intermediate, not the root');
    assert.notEqual(readFileSync(chain, 'utf8').trim(), readFileSync(rootPem, 'utf8').trim());
    for (const name of ['www.example.test', 'api.example.test']) {
      const v = openssl(['verify', '-purpose', 'sslserver', '-verify_hostname', name, '-CAfile', rootPem, '-untrusted', chain, cert]);
      assert.equal(v.status, 0, v.stdout + v.stderr);
      assert.match(v.stdout, /: OK$/m);
    }
    const wrongName = openssl(['verify', '-purpose', 'sslserver', '-verify_hostname', 'other.example.test', '-CAfile', rootPem, '-untrusted', chain, cert]);
    assert.notEqual(wrongName.status, 0, 'a name not in the SANs does not verify');
    const [row] = await sql(env, 'SELECT profile, "caId" FROM "Certificate" WHERE serial = ?', [serial]);
    assert.deepEqual({ ...row }, { profile: 'server', caId: intId });
  });

  test('from an RSA-2048 CSR in DER form (openssl req -outform DER)', () => {
    const { csr, key } = opensslCsr(tmp, 'rsa', { alg: 'rsa', cn: 'rsa.example.test', sans: ['rsa.example.test'], der: true });
    assert.notEqual(readFileSync(csr)[0], 0x2d, 'the CSR file is binary DER, not PEM');
    const cert = tmp.file('rsa-cert.pem');
    const chain = tmp.file('rsa-chain.pem');
    ok(signet(['issue', '--csr', csr, '--profile', 'server', '--out', cert, '--chain-out', chain], env.env));
    assert.equal(
      osslOk(['verify', '-purpose', 'sslserver', '-verify_hostname', 'rsa.example.test', '-CAfile', rootPem, '-untrusted', chain, cert]).trim(),
      `${cert}: OK`,
    );
    assert.equal(pubFromCert(cert), pubFromKey(key), "the certificate carries the CSR's key");
  });

  test('--out without --chain-out writes the certificate followed by the chain', () => {
    const both = tmp.file('both.pem');
    ok(signet(['issue', '--csr', sharedCsr, '--out', both], env.env));
    const text = readFileSync(both, 'utf8');
    assert.equal(countPem(text), 2);
    assert.equal(
      osslOk(['verify', '-purpose', 'sslserver', '-verify_hostname', 'shared.example.test', '-CAfile', rootPem, '-untrusted', both, both]).trim(),
      `${both}: OK`,
    );
  });

  test('--json prints serial, certificate, chain, notBefore, notAfter, profile and caId, and no DER', async () => {
    const j = json(signet(['issue', '--csr', sharedCsr, '--json', '--validity-days', '30'], env.env));
    assert.deepEqual(Object.keys(j).sort(), ['caId', 'certificate', 'chain', 'notAfter', 'notBefore', 'profile', 'serial']);
    assert.equal(j.der, undefined);
    assert.match(j.serial, /^[0-9a-f]{32}$/);
    assert.match(j.certificate, /^-----BEGIN CERTIFICATE-----\n[\s\S]+\n-----END CERTIFICATE-----\n$/);
    assert.equal(countPem(j.certificate), 1);
    assert.equal(countPem(j.chain), 1);
    assert.equal(j.profile, 'server');
    assert.equal(j.caId, intId);
    const nb = new Date(j.notBefore);
    const na = new Date(j.notAfter);
    assert.ok(!Number.isNaN(nb.getTime()) && !Number.isNaN(na.getTime()));
    const span = na.getTime() - nb.getTime();
    assert.ok(
      span >= 30 * 86_400_000 && span <= 30 * 86_400_000 + 60_000,
      `--validity-days 30 from now, notBefore backdated at most a minute (span ${span} ms)`,
    );
    const f = tmp.file('json-cert.pem', j.certificate);
    assert.equal(opensslSerial(f).toLowerCase(), j.serial);
    const [row] = await sql(env, 'SELECT der FROM "Certificate" WHERE serial = ?', [j.serial]);
    const pemBody = j.certificate.replace(/-----[^-]+-----|\s/g, '');
    assert.equal(Buffer.from(row.der).toString('base64'), pemBody, 'the stored DER is the certificate returned');
  });

  for (const alg of ['ecdsa-p256', 'rsa-2048', 'ed25519'] as const) {
    test(`--generate-key ${alg}: key (0600) matching the certificate, and a PKCS#12 openssl opens with the password only`, () => {
      const name = `${alg}.gen.example.test`;
      const key = tmp.file(`${alg}-gen.key`);
      const cert = tmp.file(`${alg}-gen.pem`);
      const p12 = tmp.file(`${alg}-gen.p12`);
      const pw = tmp.file(`${alg}-pw.txt`, 'p12 secret for tests\n');
      if (alg === 'ecdsa-p256') {
        // An existing, world-readable file must not keep its mode once a private key is written into it.
        writeFileSync(key, 'old');
        chmodSync(key, 0o644);
      }
      const out = ok(
        signet(
          [
            'issue',
            '--generate-key',
            alg,
            '--san',
            name,
            'alt.' + name,
            '--cn',
            name,
            '--key-out',
            key,
            '--out',
            cert,
            '--p12',
            p12,
            '--p12-password-file',
            pw,
          ],
          env.env,
        ),
      );
      assert.match(out, /^issued [0-9a-f]{32} /);
      assert.equal(statSync(key).mode & 0o777, 0o600, 'key file mode');
      assert.equal(statSync(p12).mode & 0o777, 0o600, 'PKCS#12 file mode');
      assert.match(readFileSync(key, 'utf8'), /^-----BEGIN PRIVATE KEY-----\n/);
      assert.equal(pubFromKey(key), pubFromCert(cert), 'the key matches the certificate');
      const text = osslOk(['x509', '-in', cert, '-noout', '-subject', '-ext', 'subjectAltName']);
      assert.match(text, new RegExp(`CN ?= ?${name.replace(/\./g, '\\.')}`));
      assert.match(text, new RegExp(`DNS:${name.replace(/\./g, '\\.')}, DNS:alt\\.${name.replace(/\./g, '\\.')}`));
      assert.equal(osslOk(['verify', '-purpose', 'sslserver', '-verify_hostname', name, '-CAfile', rootPem, '-untrusted', cert, cert]).trim(), `${cert}: OK`);

      const info = openssl(['pkcs12', '-in', p12, '-passin', `file:${pw}`, '-nodes', '-info']);
      assert.equal(info.status, 0, info.stderr);
      assert.equal(countPem(info.stdout, 'PRIVATE KEY'), 1, 'the key is in the PKCS#12');
      assert.equal(countPem(info.stdout), 2, 'the certificate and its chain are in the PKCS#12');
      assert.equal(osslOk(['pkey', '-pubout'], info.stdout), pubFromKey(key), 'the PKCS#12 key is the written key');
      assert.ok(info.stdout.includes(readFileSync(cert, 'utf8').split('-----END CERTIFICATE-----')[0]!.trim()), 'the PKCS#12 holds the issued certificate');
      const wrong = openssl(['pkcs12', '-in', p12, '-passin', 'pass:not the password', '-nodes', '-info']);
      assert.notEqual(wrong.status, 0, 'a wrong password does not open it');
      assert.equal(countPem(wrong.stdout, 'PRIVATE KEY'), 0);
    });
  }

  test('refusals: one clear line on stderr, non-zero exit, nothing stored', async () => {
    const key = tmp.file('refused.key');
    const garbage = tmp.file('garbage.csr', Buffer.from('3082ffff00deadbeef' + 'ab'.repeat(60), 'hex'));
    const certPem = tmp.file('not-a-csr.pem', readFileSync(rootPem));
    const truncated = tmp.file(
      'truncated.der',
      readFileSync(opensslCsr(tmp, 'trunc', { alg: 'ec', cn: 't.example.test', sans: ['t.example.test'], der: true }).csr).subarray(0, 60),
    );
    const before = await countRows(env, 'Certificate');
    const audited = await countRows(env, 'AuditEvent');
    const cases: [string[], RegExp][] = [
      [['--csr', sharedCsr, '--generate-key', 'ecdsa-p256', '--key-out', key], /exactly one of --csr <file> or --generate-key/],
      [[], /exactly one of --csr <file> or --generate-key/],
      [['--generate-key', 'ecdsa-p256', '--san', 'nokey.example.test'], /--generate-key needs --key-out <file> and\/or --p12 <file>/],
      [['--csr', sharedCsr, '--key-out', key], /--key-out and --p12 only apply with --generate-key/],
      [['--csr', sharedCsr, '--p12', tmp.file('refused.p12')], /--key-out and --p12 only apply with --generate-key/],
      [['--csr', sharedCsr, '--san', 'extra.example.test'], /--san and --cn only apply with --generate-key/],
      [['--generate-key', 'ecdsa-p256', '--san', 'Bad_Name', '--key-out', key], /DNS name 'Bad_Name' must be lower-case/],
      [['--generate-key', 'ecdsa-p256', '--san', 'bad_name', '--key-out', key], /label 'bad_name' .*contains '_'/],
      [['--generate-key', 'ecdsa-p256', '--key-out', key], /requires at least one subjectAltName/],
      [['--generate-key', 'ecdsa-p256', '--san', 'a.example.test', '--cn', 'b.example.test', '--key-out', key], /b\.example\.test/],
      [['--generate-key', 'ecdsa-p256', '--san', 'a.example.test', '--key-out', tmp.file('missing-dir/k.pem')], /cannot write --key-out .*does not exist/],
      [['--csr', sharedCsr, '--profile', 'nope'], /unknown profile "nope"; available: .*server/],
      [['--csr', sharedCsr, '--validity-days', '0'], /validityDays must be a whole number of at least 1 \(got 0\)/],
      [['--csr', sharedCsr, '--validity-days', 'soon'], /validityDays must be a whole number/],
      [['--csr', sharedCsr, '--validity-days', '5000'], /exceeds profile server's maximum of 397/],
      [['--csr', garbage], /malformed DER/],
      [['--csr', truncated], /truncated/],
      [['--csr', certPem], /PEM label 'CERTIFICATE' is not a certificate request/],
    ];
    for (const [args, pattern] of cases) {
      const r = signet(['issue', ...args], env.env);
      try {
        refused(r, pattern);
      } catch (e) {
        (e as Error).message = `signet issue ${args.join(' ')}: ${(e as Error).message}`;
        throw e;
      }
    }
    assert.ok(!existsSync(key), 'no key file is left behind by a refused --generate-key');
    // commander's own refusal of an unknown algorithm.
    const alg = signet(['issue', '--generate-key', 'rsa-1024', '--key-out', key], env.env);
    assert.notEqual(alg.status, 0);
    assert.match(alg.stderr, /argument 'rsa-1024' is invalid\. Allowed choices are ecdsa-p256/);
    assert.equal(await countRows(env, 'Certificate'), before, 'nothing stored');
    assert.equal(await countRows(env, 'AuditEvent'), audited, 'nothing audited');
  });

  test('--help of issue, revoke and list names their options', () => {
    const help = (cmd: string) => ok(signet([cmd, '--help'], env.env));
    const issue = help('issue');
    for (const opt of [
      '--csr <file>',
      '--generate-key <algorithm>',
      '--san <name...>',
      '--cn <name>',
      '--profile <name>',
      '--validity-days <n>',
      '--ca <caId>',
      '--out <file>',
      '--chain-out <file>',
      '--key-out <file>',
      '--p12 <file>',
      '--p12-password-file <file>',
      '--json',
    ]) {
      assert.ok(issue.includes(opt), `issue --help mentions ${opt}`);
    }
    assert.match(issue, /ecdsa-p256/, 'the key algorithms are listed');
    const revoke = help('revoke');
    for (const opt of ['--reason <reason>', '--invalidity-date <date>', '--serials-file <file>', '--all-from-ca <caId>', '--json'])
      assert.ok(revoke.includes(opt), `revoke --help mentions ${opt}`);
    assert.match(revoke, /keyCompromise/);
    const list = help('list');
    for (const opt of [
      '--status <status>',
      '--profile <name>',
      '--san <name>',
      '--subject <text>',
      '--expires-before <date>',
      '--limit <n>',
      '--cursor <cursor>',
      '--json',
    ])
      assert.ok(list.includes(opt), `list --help mentions ${opt}`);
  });
});

// ---- inventory, status, renewal, revocation, CRLs --------------------------

describe('signet list, status, show, renew, revoke, unhold and crl', () => {
  let env: TestEnv;
  const tmp = new TempDir();
  let rootPem: string;
  let intId: string;
  let int2Id: string;
  let intPem: string;
  let csrA: string;
  let csrB: string;
  const issued: { serial: string; certificate: string; profile: string; caId: string }[] = [];

  const issue = (csr: string, extra: string[] = []) => {
    const j = json(signet(['issue', '--csr', csr, '--json', ...extra], env.env));
    issued.push(j);
    return j as { serial: string; certificate: string; chain: string; profile: string; caId: string };
  };
  const statusLine = (serial: string) => ok(signet(['status', serial], env.env));
  const listJson = (args: string[] = []) => json(signet(['list', '--json', ...args], env.env));

  before(async () => {
    env = await createTestEnv();
    ok(signet(['init'], env.env));
    const ids = await cas(env);
    intId = ids.intId;
    rootPem = await caPem(env, tmp, ids.rootId);
    intPem = await caPem(env, tmp, intId);
    int2Id = json(signet(['ca', 'create-intermediate', '--json', '--parent', ids.rootId, '--subject', 'CN=Second Issuing CA,O=Test'], env.env)).id;
    csrA = opensslCsr(tmp, 'a', { alg: 'ec', cn: 'alpha.inv.test', sans: ['alpha.inv.test', 'www.alpha.inv.test'] }).csr;
    csrB = opensslCsr(tmp, 'b', { alg: 'rsa', cn: 'beta.inv.test', sans: ['beta.inv.test'] }).csr;
    issue(csrA);
    issue(csrB);
    issue(csrA, ['--profile', 'client']);
  });
  after(async () => {
    await env.cleanup();
    tmp.remove();
  });

  test('list: a table with a header line and one row per certificate, newest first', () => {
    const lines = ok(signet(['list'], env.env))
      .trimEnd()
      .split('\n');
    assert.match(lines[0]!, /^SERIAL\s+STATUS\s+PROFILE\s+NOTAFTER\s+NAMES$/);
    assert.equal(lines.length, 1 + issued.length);
    const rows = lines.slice(1);
    assert.deepEqual(
      rows.map((l) => l.split(/\s+/)[0]),
      issued.map((c) => c.serial).reverse(),
    );
    const alpha = rows.find((l) => l.startsWith(issued[0]!.serial))!;
    assert.match(alpha, /\sgood\s+server\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s+alpha\.inv\.test,www\.alpha\.inv\.test$/);
    assert.match(rows[0]!, /\sgood\s+client\s/);
  });

  test('list --json has items and nextCursor; --limit 1 with --cursor walks every certificate once', () => {
    const all = listJson();
    assert.equal(all.nextCursor, null);
    assert.deepEqual(
      all.items.map((i: any) => i.serial),
      issued.map((c) => c.serial).reverse(),
    );
    const first = all.items[0];
    for (const k of ['serial', 'caId', 'profile', 'subject', 'sans', 'notBefore', 'notAfter', 'fingerprintSha256', 'status'])
      assert.ok(k in first, `item has ${k}`);
    assert.deepEqual(all.items.find((i: any) => i.serial === issued[1]!.serial).sans, [{ type: 'dns', value: 'beta.inv.test' }]);

    const walked: string[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 20; page++) {
      const p: any = listJson(['--limit', '1', ...(cursor ? ['--cursor', cursor] : [])]);
      assert.ok(p.items.length <= 1);
      walked.push(...p.items.map((i: any) => i.serial));
      cursor = p.nextCursor;
      if (!cursor) break;
    }
    assert.equal(cursor, null, 'the walk ends');
    assert.deepEqual(
      walked,
      all.items.map((i: any) => i.serial),
      'every certificate once, in order',
    );

    const table = ok(signet(['list', '--limit', '1'], env.env));
    assert.match(table, /\n\(more: --cursor \S+\)\n$/);
  });

  test('list filters: --status, --profile, --san, --expires-before; bad values are refused', () => {
    assert.deepEqual(listJson(['--status', 'revoked']).items, []);
    assert.equal(listJson(['--status', 'good']).items.length, issued.length);
    assert.deepEqual(
      listJson(['--profile', 'client']).items.map((i: any) => i.serial),
      [issued[2]!.serial],
    );
    assert.deepEqual(
      listJson(['--san', 'beta.inv.test']).items.map((i: any) => i.serial),
      [issued[1]!.serial],
    );
    assert.deepEqual(
      listJson(['--san', 'www.alpha.inv.test'])
        .items.map((i: any) => i.serial)
        .sort(),
      [issued[0]!.serial, issued[2]!.serial].sort(),
    );
    assert.deepEqual(
      listJson(['--san', 'inv.test']).items.map((i: any) => i.serial),
      issued.map((c) => c.serial).reverse(),
      'a domain: every name under it',
    );
    assert.deepEqual(listJson(['--san', 'beta.inv']).items, [], 'names, not substrings');
    assert.deepEqual(listJson(['--san', 'nothing-like-this']).items, []);
    assert.deepEqual(
      listJson(['--subject', 'BETA.inv']).items.map((i: any) => i.serial),
      [issued[1]!.serial],
    );
    assert.deepEqual(listJson(['--expires-before', '2000-01-01']).items, []);
    assert.equal(listJson(['--expires-before', '2999-01-01']).items.length, issued.length);
    assert.deepEqual(listJson(['--ca', int2Id]).items, []);
    const emptyTable = ok(signet(['list', '--expires-before', '2000-01-01'], env.env))
      .trimEnd()
      .split('\n');
    assert.equal(emptyTable.length, 1, 'only the header');
    refused(signet(['list', '--expires-before', 'nonsense'], env.env), /--expires-before nonsense is not a date/);
    refused(signet(['list', '--cursor', 'not-a-cursor'], env.env), /cursor is not one this server returned/);
    refused(signet(['list', '--limit', '0'], env.env), /--limit must be a whole number from 1 to 500/);
    const badStatus = signet(['list', '--status', 'sideways'], env.env);
    assert.notEqual(badStatus.status, 0);
    assert.match(badStatus.stderr, /argument 'sideways' is invalid/);
  });

  test('status and show; show --pem is the issued certificate; unknown serials exit 2 with "does not exist"', async () => {
    const c = issued[0]!;
    assert.equal(statusLine(c.serial), `${c.serial} good\n`);
    assert.equal(statusLine(c.serial.toUpperCase().replace(/(..)(?!$)/g, '$1:')), `${c.serial} good\n`, 'serials with colons and upper case are accepted');
    assert.deepEqual(json(signet(['status', c.serial, '--json'], env.env)), { serial: c.serial, status: 'good', revokedAt: null, reason: null });

    const show = ok(signet(['show', c.serial], env.env));
    const fields = Object.fromEntries(
      show
        .trimEnd()
        .split('\n')
        .map((l) => {
          const m = /^(\S+)\s+(.*)$/.exec(l)!;
          return [m[1], m[2]];
        }),
    );
    const der = Buffer.from(c.certificate.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    assert.equal(fields.serial, c.serial);
    assert.equal(fields.caId, intId);
    assert.equal(fields.profile, 'server');
    assert.equal(fields.subject, 'CN=alpha.inv.test');
    assert.equal(fields.status, 'good');
    assert.equal(fields.keyAlgorithm, 'ecdsa-p256');
    assert.equal(fields.sans, 'dns:alpha.inv.test, dns:www.alpha.inv.test');
    assert.equal(fields.fingerprintSha256, createHash('sha256').update(der).digest('hex'));
    assert.match(fields.notAfter!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

    assert.equal(ok(signet(['show', c.serial, '--pem'], env.env)), c.certificate);
    const sj = json(signet(['show', c.serial, '--json'], env.env));
    assert.equal(sj.certificate, c.certificate);
    assert.equal(sj.status, 'good');

    refused(signet(['status', 'deadbeef'], env.env), /certificate deadbeef does not exist/);
    refused(signet(['show', 'deadbeef'], env.env), /certificate deadbeef does not exist/);
    refused(signet(['show', 'deadbeef', '--pem'], env.env), /does not exist/);
    refused(signet(['status', 'not-hex'], env.env), /is not a hexadecimal serial number/);
  });

  test('renew: a new serial with the same SANs, linked to its predecessor; a revoked certificate is not renewed', async () => {
    const old = issued[1]!;
    const before = await countRows(env, 'Certificate');
    const out = tmp.file('renewed.pem');
    const chain = tmp.file('renewed-chain.pem');
    const j = json(signet(['renew', old.serial, '--json', '--out', out, '--chain-out', chain], env.env));
    assert.notEqual(j.serial, old.serial);
    assert.equal(j.predecessor, old.serial);
    assert.equal(j.profile, old.profile);
    assert.equal(j.caId, old.caId);
    assert.equal(readFileSync(out, 'utf8'), j.certificate);
    const oldFile = tmp.file('renew-old.pem', old.certificate);
    const sanOf = (f: string) => osslOk(['x509', '-in', f, '-noout', '-ext', 'subjectAltName']);
    assert.equal(sanOf(out), sanOf(oldFile));
    assert.equal(pubFromCert(out), pubFromCert(oldFile), 'a renewal without a CSR keeps the key');
    assert.equal(
      osslOk(['verify', '-purpose', 'sslserver', '-verify_hostname', 'beta.inv.test', '-CAfile', rootPem, '-untrusted', chain, out]).trim(),
      `${out}: OK`,
    );
    assert.equal(json(signet(['show', j.serial, '--json'], env.env)).predecessorSerial, old.serial);
    assert.equal(await countRows(env, 'Certificate'), before + 1);
    issued.push({ ...j });

    // Rekey with a new key, the CSR in DER form.
    const rekey = opensslCsr(tmp, 'rekey', { alg: 'ec', cn: 'beta.inv.test', sans: ['beta.inv.test'], der: true });
    const rk = json(signet(['renew', j.serial, '--csr', rekey.csr, '--json'], env.env));
    assert.equal(pubFromCert(tmp.file('rekeyed.pem', rk.certificate)), pubFromKey(rekey.key), 'the rekeyed certificate carries the new key');
    issued.push({ ...rk });

    const victim = issue(csrB);
    ok(signet(['revoke', victim.serial, '--reason', 'keyCompromise'], env.env));
    const n = await countRows(env, 'Certificate');
    refused(signet(['renew', victim.serial], env.env), new RegExp(`certificate ${victim.serial} is revoked and cannot be renewed`));
    refused(signet(['renew', 'deadbeef'], env.env), /does not exist/);
    assert.equal(await countRows(env, 'Certificate'), n, 'nothing stored');
  });

  test('revoke with a reason: status says revoked with the reason; revoking twice is a conflict', async () => {
    const c = issue(csrA);
    const r = ok(signet(['revoke', c.serial, '--reason', 'keyCompromise'], env.env));
    assert.match(r, /^revoked 1 certificate\(s\)\n {2}CRL \d+ for /);
    assert.match(statusLine(c.serial), new RegExp(`^${c.serial} revoked since \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z \\(keyCompromise\\)\\n$`));
    const sj = json(signet(['status', c.serial, '--json'], env.env));
    assert.equal(sj.status, 'revoked');
    assert.equal(sj.reason, 'keyCompromise');
    assert.ok(!Number.isNaN(new Date(sj.revokedAt).getTime()));
    assert.ok(listJson(['--status', 'revoked']).items.some((i: any) => i.serial === c.serial));
    assert.ok(!listJson(['--status', 'good']).items.some((i: any) => i.serial === c.serial));
    const events = await countRows(env, 'AuditEvent');
    refused(signet(['revoke', c.serial, '--reason', 'superseded'], env.env), /is already revoked \(keyCompromise\)/);
    refused(signet(['revoke', 'deadbeef', '--reason', 'superseded'], env.env), /certificate deadbeef does not exist/);
    refused(signet(['revoke', '--reason', 'superseded'], env.env), /nothing to revoke/);
    refused(
      signet(['revoke', issued[0]!.serial, '--reason', 'keyCompromise', '--invalidity-date', 'yesterday-ish'], env.env),
      /--invalidity-date yesterday-ish is not a date/,
    );
    const badReason = signet(['revoke', issued[0]!.serial, '--reason', 'becauseISaidSo'], env.env);
    assert.notEqual(badReason.status, 0);
    assert.match(badReason.stderr, /argument 'becauseISaidSo' is invalid/);
    const noReason = signet(['revoke', issued[0]!.serial], env.env);
    assert.notEqual(noReason.status, 0);
    assert.match(noReason.stderr, /--reason <reason>' not specified/);
    assert.equal(await countRows(env, 'AuditEvent'), events, 'refusals change nothing');
    assert.equal(statusLine(issued[0]!.serial), `${issued[0]!.serial} good\n`);
  });

  test('unhold releases a certificateHold; nothing else is released', () => {
    const c = issue(csrA);
    ok(signet(['revoke', c.serial, '--reason', 'certificateHold'], env.env));
    assert.match(statusLine(c.serial), new RegExp(`^${c.serial} hold since .*\\(certificateHold\\)\\n$`));
    assert.ok(listJson(['--status', 'hold']).items.some((i: any) => i.serial === c.serial));
    assert.equal(ok(signet(['unhold', c.serial], env.env)), `${c.serial} is good again\n`);
    assert.equal(statusLine(c.serial), `${c.serial} good\n`);
    refused(signet(['unhold', c.serial], env.env), /is not on hold \(it is good\)/);
    const revoked = listJson(['--status', 'revoked']).items[0].serial;
    refused(signet(['unhold', revoked], env.env), /is not on hold \(it is revoked\)/);
    assert.match(statusLine(revoked), / revoked since /);
  });

  test('bulk revoke from a serials file: every serial revoked, one CRL per CA reported', async () => {
    const mine = [issue(csrA), issue(csrB), issue(csrA), issue(csrA, ['--ca', int2Id]), issue(csrB, ['--ca', int2Id])];
    assert.deepEqual(
      mine.map((c) => c.caId),
      [intId, intId, intId, int2Id, int2Id],
    );
    const file = tmp.file('serials.txt', `# five to go\n${mine.map((c) => c.serial).join('\n')}\n\n`);
    const crlsBefore = await countRows(env, 'Crl');
    const r = signet(['revoke', '--serials-file', file, '--reason', 'superseded', '--json'], env.env);
    const j = json(r);
    assert.doesNotMatch(r.stderr, /error/i);
    assert.deepEqual(
      j.revoked.map((x: any) => x.serial),
      mine.map((c) => c.serial),
    );
    assert.ok(j.revoked.every((x: any) => x.status === 'revoked' && x.reason === 'superseded'));
    assert.deepEqual(j.failed, []);
    assert.deepEqual(j.crls.map((c: any) => c.caId).sort(), [intId, int2Id].sort(), 'one CRL per CA');
    for (const c of j.crls) {
      assert.match(c.number, /^\d+$/);
      assert.ok(c.entries >= (c.caId === int2Id ? 2 : 3));
    }
    assert.equal(await countRows(env, 'Crl'), crlsBefore + 2);
    for (const c of mine) assert.match(statusLine(c.serial), /revoked since .* \(superseded\)/);
  });

  test('revoke --all-from-ca revokes the rest of that CA and nothing of another', () => {
    const other = issue(csrA, ['--ca', int2Id]);
    const good = listJson(['--status', 'good', '--ca', intId]).items.map((i: any) => i.serial);
    assert.ok(good.length >= 3);
    const j = json(signet(['revoke', '--all-from-ca', intId, '--reason', 'cessationOfOperation', '--json'], env.env));
    assert.deepEqual(j.revoked.map((x: any) => x.serial).sort(), good.sort());
    assert.deepEqual(j.failed, []);
    assert.deepEqual(
      j.crls.map((c: any) => c.caId),
      [intId],
    );
    assert.deepEqual(listJson(['--status', 'good', '--ca', intId]).items, []);
    for (const s of good) assert.match(statusLine(s), /\(cessationOfOperation\)\n$/);
    assert.equal(statusLine(other.serial), `${other.serial} good\n`);
    refused(signet(['revoke', '--all-from-ca', 'no-such-ca', '--reason', 'cessationOfOperation'], env.env), /CA no-such-ca does not exist/);
  });

  test('a serials file with one unknown serial: the good ones are revoked, the bad one listed as failed, exit 2', () => {
    const good = [issue(csrA, ['--ca', int2Id]), issue(csrB, ['--ca', int2Id])];
    const unknown = '0badc0ffee0badc0ffee0badc0ffee00';
    const file = tmp.file('mixed.txt', [good[0]!.serial, unknown, good[1]!.serial].join('\n'));
    const r = signet(['revoke', '--serials-file', file, '--reason', 'affiliationChanged', '--json'], env.env);
    assert.equal(r.status, 2, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.deepEqual(
      j.revoked.map((x: any) => x.serial),
      good.map((c) => c.serial),
    );
    assert.equal(j.failed.length, 1);
    assert.equal(j.failed[0].serial, unknown);
    assert.match(j.failed[0].error, /does not exist/);
    assert.deepEqual(
      j.crls.map((c: any) => c.caId),
      [int2Id],
    );
    for (const c of good) assert.match(statusLine(c.serial), /\(affiliationChanged\)\n$/);
    // The text form says the same.
    const again = [issue(csrA, ['--ca', int2Id])];
    const t = signet(['revoke', again[0]!.serial, unknown, '--reason', 'superseded'], env.env);
    assert.equal(t.status, 2);
    assert.match(t.stdout, /^revoked 1 certificate\(s\), 1 failed\n/);
    assert.match(t.stdout, new RegExp(`\\n {2}${unknown}: certificate ${unknown} does not exist\\n`));
  });

  test('crl --out writes a DER CRL openssl parses, listing the revoked serials; --pem; numbers increase', async () => {
    const der = tmp.file('int.crl');
    const first = json(signet(['crl', '--out', der, '--json'], env.env));
    assert.equal(first.caId, intId, 'the default issuing CA');
    assert.equal(first.out, der);
    const text = osslOk(['crl', '-inform', 'DER', '-in', der, '-noout', '-text']);
    assert.match(text, new RegExp(`X509v3 CRL Number: *\\n *${first.number}\\n`));
    const revoked = listJson(['--status', 'revoked', '--ca', intId, '--limit', '500']).items.map((i: any) => i.serial);
    assert.ok(revoked.length >= 5);
    const listed = [...text.matchAll(/Serial Number: ([0-9A-F]+)/g)].map((m) => m[1]!.toLowerCase());
    assert.deepEqual(listed.sort(), revoked.sort(), 'exactly the revoked certificates of this CA');
    assert.equal(first.entries, revoked.length);
    assert.match(text, /Key Compromise/);
    assert.match(text, /Cessation Of Operation/);
    const sig = openssl(['crl', '-inform', 'DER', '-in', der, '-noout', '-CAfile', intPem, '-verify']);
    assert.equal(sig.status, 0, sig.stderr);
    assert.match(sig.stdout + sig.stderr, /verify OK/);

    const pem = tmp.file('int.crl.pem');
    const second = json(signet(['crl', '--out', pem, '--pem', '--json'], env.env));
    assert.ok(BigInt(second.number) > BigInt(first.number), `CRL number ${second.number} > ${first.number}`);
    assert.match(readFileSync(pem, 'utf8'), /^-----BEGIN X509 CRL-----\n[\s\S]+-----END X509 CRL-----\n$/);
    assert.match(osslOk(['crl', '-in', pem, '-noout', '-text']), new RegExp(`X509v3 CRL Number: *\\n *${second.number}\\n`));

    // A relying party using the CRL rejects a revoked certificate and accepts a good one.
    const revokedCert = tmp.file('revoked-leaf.pem', ok(signet(['show', revoked[0]!, '--pem'], env.env)));
    const crlCheck = (cert: string) => openssl(['verify', '-crl_check', '-CRLfile', pem, '-CAfile', rootPem, '-untrusted', intPem, cert]);
    const bad = crlCheck(revokedCert);
    assert.notEqual(bad.status, 0);
    assert.match(bad.stdout + bad.stderr, /certificate revoked/);
    const fresh = issue(csrA);
    const freshFile = tmp.file('fresh-leaf.pem', fresh.certificate);
    const third = tmp.file('int3.crl.pem');
    ok(signet(['crl', '--out', third, '--pem'], env.env));
    const good = openssl(['verify', '-crl_check', '-CRLfile', third, '-CAfile', rootPem, '-untrusted', intPem, freshFile]);
    assert.equal(good.status, 0, good.stdout + good.stderr);

    const text2 = ok(signet(['crl', '--ca', int2Id], env.env));
    assert.match(text2, new RegExp(`^CRL \\d+ for ${int2Id}: \\d+ entries, next update \\S+Z\\n$`));
    refused(signet(['crl', '--ca', 'no-such-ca'], env.env), /CA no-such-ca does not exist/);
  });
});

// ---- an offline root ---------------------------------------------------------

describe('signet crl for an offline root', () => {
  let env: TestEnv;
  const tmp = new TempDir();
  let rootId: string;
  let rootPem: string;
  const passphrase = 'correct horse battery staple';

  before(async () => {
    // An exported offline root is the sealed store's (a key in a PKCS#11 token never leaves it).
    env = await createTestEnv({ SIGNET_KEY_STORE: 'sealed' });
  });
  after(async () => {
    await env.cleanup();
    tmp.remove();
  });

  test('init --offline-root, then crl --ca <root> needs the key file and works with it', async () => {
    const keyFile = tmp.file('root.key');
    const pw = tmp.file('pw.txt', `${passphrase}\n`);
    ok(signet(['init', '--offline-root', keyFile, '--offline-root-passphrase-file', pw], env.env));
    const ids = await cas(env);
    rootId = ids.rootId;
    assert.equal(ids.list.find((c: any) => c.id === rootId).status, 'offline');
    rootPem = await caPem(env, tmp, rootId);

    refused(signet(['crl', '--ca', rootId], env.env), new RegExp(`CA ${rootId} is kept offline`));
    refused(
      signet(['crl', '--ca', rootId, '--key', keyFile, '--key-passphrase-file', tmp.file('wrong.txt', 'not the passphrase at all')], env.env),
      /could not decrypt .*wrong passphrase/,
    );
    // Another key that decrypts fine is not the root's key: no CRL may be signed with it.
    const otherKey = tmp.file('other.key');
    osslOk(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384', '-aes-256-cbc', '-pass', `file:${pw}`, '-out', otherKey]);
    refused(signet(['crl', '--ca', rootId, '--key', otherKey, '--key-passphrase-file', pw, '--out', tmp.file('other.crl')], env.env), /does not match CA/);
    assert.equal(await countRows(env, 'Crl', 'WHERE "caId" = ?', [rootId]), 0, 'no CRL stored for the root so far');

    const out = tmp.file('root.crl');
    const j = json(signet(['crl', '--ca', rootId, '--key', keyFile, '--key-passphrase-file', pw, '--out', out, '--json'], env.env));
    assert.equal(j.caId, rootId);
    assert.equal(j.entries, 0);
    const v = openssl(['crl', '-inform', 'DER', '-in', out, '-noout', '-CAfile', rootPem, '-verify']);
    assert.equal(v.status, 0, v.stderr);
    assert.match(v.stdout + v.stderr, /verify OK/);
    assert.match(osslOk(['crl', '-inform', 'DER', '-in', out, '-noout', '-issuer']), /Signet Root CA/);
    assert.equal(await countRows(env, 'Crl', 'WHERE "caId" = ?', [rootId]), 1);
    // The root stays offline; the intermediate's CRL needs no key file.
    assert.equal((await cas(env)).list.find((c: any) => c.id === rootId).status, 'offline');
    ok(signet(['crl', '--ca', ids.intId], env.env));
  });
});
