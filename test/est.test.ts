/**
 * Issue 17, EST (RFC 7030): a real `signet serve` with SIGNET_TLS=on, enrolled into by
 * strongSwan's `pki --estca` / `pki --est` (a client nobody on the project wrote), and by curl
 * for what strongSwan does not send; every refusal by sending the bad thing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadDeviceTrust } from '../src/ca/device-certificates.js';
import { SignetError } from '../src/errors.js';
import { derToPem } from '../src/pki/pem.js';
import { freePort, getUrl, signet, startServer, type RunningServer } from './helpers/cli.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';
import { newKeyCsr, openssl, selfSignedCa, TempDir } from './helpers/openssl.js';
import { sql } from './helpers/sql.js';
import { requireTool } from './helpers/tools.js';

const PKI = process.env.SIGNET_TEST_STRONGSWAN_PKI ?? '/usr/bin/pki';

interface Run {
  status: number | null;
  stdout: Buffer;
  stderr: string;
}

function run(cmd: string, args: string[], input?: Buffer): Run {
  const r = spawnSync(cmd, args, { input, timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.toString() };
}

describe('EST (RFC 7030) with strongSwan pki and curl', () => {
  const tmp = new TempDir();
  let env: TestEnv;
  let server: RunningServer;
  let tlsPort: number;
  let base: string;
  let rootFile: string;
  let intFile: string;

  /** An EST enrollment credential made with the CLI, as an operator would. */
  function credential(profile: string, ...options: string[]): { id: string; secret: string } {
    const r = signet(['enroll', 'create', '--profile', profile, ...options, '--json'], env.env);
    assert.equal(r.status, 0, r.stderr);
    const made = JSON.parse(r.stdout) as { id: string; secret: string };
    return { id: made.id, secret: made.secret };
  }

  /** curl against the HTTPS listener, trusting Signet's root; returns status, headers and body. */
  function curl(path: string, opts: { method?: string; body?: string; type?: string; user?: string; cert?: string; key?: string } = {}) {
    const args = ['-sS', '--cacert', rootFile, '-o', '-', '-D', tmp.file('headers'), '-w', '%{http_code}', '-X', opts.method ?? 'GET'];
    if (opts.body !== undefined) args.push('--data-binary', '@-');
    if (opts.type) args.push('-H', `Content-Type: ${opts.type}`);
    if (opts.user) args.push('-u', opts.user);
    if (opts.cert) args.push('--cert', opts.cert, '--key', opts.key!);
    const r = run('curl', [...args, `${base}${path}`], opts.body === undefined ? undefined : Buffer.from(opts.body));
    const out = r.stdout.toString();
    const status = Number(out.slice(-3));
    const text = out.slice(0, -3);
    const headers = readFileSync(join(tmp.path, 'headers'), 'utf8');
    return { status, text, headers, json: /application\/problem\+json/.test(headers) ? JSON.parse(text) : undefined, stderr: r.stderr };
  }

  /** A P-256 key and a PKCS#10 request made by strongSwan's pki, as files. */
  function pkiRequest(name: string, dn: string, sans: string[]): { key: string; req: string } {
    const key = tmp.file(`${name}.key`);
    const gen = run(PKI, ['--gen', '--type', 'ecdsa', '--size', '256', '--outform', 'pem']);
    assert.equal(gen.status, 0, gen.stderr);
    tmp.file(`${name}.key`, gen.stdout);
    const req = run(PKI, ['--req', '--in', key, '--type', 'ecdsa', '--dn', dn, ...sans.flatMap((s) => ['--san', s]), '--outform', 'der']);
    assert.equal(req.status, 0, req.stderr);
    return { key, req: tmp.file(`${name}.req`, req.stdout) };
  }

  const certCount = async () => Number((await sql(env, 'SELECT COUNT(*) AS n FROM "Certificate"'))[0].n);

  before(async () => {
    requireTool(PKI, 'strongswan-pki libstrongswan-extra-plugins');
    requireTool('curl', 'curl');
    tlsPort = await freePort();
    env = await createTestEnv({ SIGNET_TLS: 'on', SIGNET_TLS_PORT: String(tlsPort) });
    server = await startServer(env.env);
    base = `https://localhost:${tlsPort}`;
    const list = signet(['ca', 'list', '--json'], env.env);
    assert.equal(list.status, 0, list.stderr);
    const cas = JSON.parse(list.stdout) as { id: string; parentId: string | null }[];
    const rootId = cas.find((c) => c.parentId === null)!.id;
    const intId = cas.find((c) => c.parentId === rootId)!.id;
    const pem = async (id: string) => derToPem(Buffer.from(await (await getUrl(`${server.url}/pki/${id}.crt`)).arrayBuffer()), 'CERTIFICATE');
    rootFile = tmp.file('root.pem', await pem(rootId));
    intFile = tmp.file('int.pem', await pem(intId));
  });

  after(async () => {
    await server?.stop();
    await env?.cleanup();
    tmp.remove();
  });

  test('pki --estca fetches the CA certificates: the issuing CA and the root', () => {
    const r = run(PKI, ['--estca', '--url', base, '--cacert', rootFile, '--caout', tmp.file('estca.pem'), '--outform', 'pem', '--force']);
    assert.equal(r.status, 0, r.stderr);
    // --caout is a template: the root as given, each CA below it as <name>-<n>.pem.
    assert.match(r.stderr, /Root CA cert is trusted/);
    assert.match(r.stderr, /Sub CA cert is trusted/);
    const subjects = ['estca.pem', 'estca-1.pem'].map((f) => new X509Certificate(readFileSync(join(tmp.path, f))).subject);
    const want = [new X509Certificate(readFileSync(intFile)).subject, new X509Certificate(readFileSync(rootFile)).subject];
    assert.deepEqual([...subjects].sort(), [...want].sort());
  });

  test('cacerts and csrattrs by curl: base64 on one line, read by openssl', () => {
    const ca = curl('/.well-known/est/cacerts');
    assert.equal(ca.status, 200, ca.text);
    assert.match(ca.headers, /content-type: application\/pkcs7-mime; smime-type=certs-only/i);
    assert.match(ca.headers, /content-transfer-encoding: base64/i);
    assert.doesNotMatch(ca.text, /\s/, 'one line of base64');
    const p7 = openssl(['pkcs7', '-inform', 'DER', '-print_certs', '-noout'], Buffer.from(ca.text, 'base64'));
    assert.equal(p7.status, 0, p7.stderr);
    assert.equal([...p7.stdout.matchAll(/^subject=/gm)].length, 2);

    const attrs = curl('/.well-known/est/server/csrattrs');
    assert.equal(attrs.status, 200, attrs.text);
    assert.match(attrs.headers, /content-type: application\/csrattrs/i);
    const parsed = openssl(['asn1parse', '-inform', 'DER'], Buffer.from(attrs.text, 'base64'));
    assert.equal(parsed.status, 0, parsed.stderr);
    assert.match(parsed.stdout, /Extension Request/, 'the server profile requires names');
    assert.match(parsed.stdout, /ecdsa-with-SHA256/);
    assert.equal(curl('/.well-known/est/csrattrs').status, 204, 'no label, no profile to ask');
    const unknown = curl('/.well-known/est/nosuch/cacerts');
    assert.equal(unknown.status, 404);
    assert.match(unknown.json.detail, /no EST label "nosuch": the labels are the profiles \(server, client, peer, group-member\)/);
  });

  test('pki --est enrolls with a one-time credential; the chain verifies; the credential is then spent', async () => {
    const cred = credential('server', '--names', 'est.signet.test');
    const { req } = pkiRequest('dev1', 'C=CH, O=Devices, CN=dev1.est.signet.test', ['dev1.est.signet.test']);
    const r = run(PKI, ['--est', '--url', base, '--cacert', rootFile, '--in', req, '--userpass', `${cred.id}:${cred.secret}`, '--outform', 'pem']);
    assert.equal(r.status, 0, r.stderr);
    const certFile = tmp.file('dev1.pem', r.stdout);
    const cert = new X509Certificate(r.stdout);
    assert.equal(cert.subject, 'CN=dev1.est.signet.test');
    assert.equal(cert.subjectAltName, 'DNS:dev1.est.signet.test');
    const v = openssl(['verify', '-x509_strict', '-CAfile', rootFile, '-untrusted', intFile, '-purpose', 'sslserver', certFile]);
    assert.equal(v.status, 0, v.stdout + v.stderr);

    const before = await certCount();
    const again = run(PKI, ['--est', '--url', base, '--cacert', rootFile, '--in', req, '--userpass', `${cred.id}:${cred.secret}`]);
    assert.notEqual(again.status, 0, 'a one-time credential enrolls once');
    const spent = curl('/.well-known/est/simpleenroll', {
      method: 'POST',
      type: 'application/pkcs10',
      body: readFileSync(req).toString('base64'),
      user: `${cred.id}:${cred.secret}`,
    });
    assert.equal(spent.status, 401, spent.text);
    assert.match(spent.headers, /www-authenticate: Basic realm="signet-est"/i);
    assert.equal(await certCount(), before, 'nothing stored');
  });

  test('pki --est --cert/--key re-enrolls over mTLS with a new key: same names, linked to its predecessor', async () => {
    const cred = credential('server', '--names', 'est.signet.test');
    const first = pkiRequest('dev2', 'CN=dev2.est.signet.test', ['dev2.est.signet.test']);
    const got = run(PKI, ['--est', '--url', base, '--cacert', rootFile, '--in', first.req, '--userpass', `${cred.id}:${cred.secret}`, '--outform', 'pem']);
    assert.equal(got.status, 0, got.stderr);
    const oldFile = tmp.file('dev2.pem', got.stdout);
    const old = new X509Certificate(got.stdout);
    const next = pkiRequest('dev2b', 'CN=dev2.est.signet.test', ['dev2.est.signet.test']);
    const r = run(PKI, ['--est', '--url', base, '--cacert', rootFile, '--in', next.req, '--cert', oldFile, '--key', first.key, '--outform', 'pem']);
    assert.equal(r.status, 0, r.stderr);
    const renewed = new X509Certificate(r.stdout);
    assert.notEqual(renewed.serialNumber, old.serialNumber);
    assert.equal(renewed.subjectAltName, 'DNS:dev2.est.signet.test');
    const nextKey = run('openssl', ['pkey', '-in', next.key, '-pubout']).stdout.toString();
    assert.equal(renewed.publicKey.export({ type: 'spki', format: 'pem' }), nextKey, 'the new key of the request');
    const [row] = await sql(env, 'SELECT "predecessorSerial" FROM "Certificate" WHERE serial = ?', [renewed.serialNumber.toLowerCase()]);
    assert.equal(row.predecessorSerial, old.serialNumber.toLowerCase());
    const v = openssl(['verify', '-x509_strict', '-CAfile', rootFile, '-untrusted', intFile, tmp.file('dev2b.pem', r.stdout)]);
    assert.equal(v.status, 0, v.stdout + v.stderr);
  });

  test('serverkeygen: Signet makes the key; the multipart reply holds the PKCS#8 key and its certificate', async () => {
    const cred = credential('server', '--names', 'est.signet.test');
    const { req } = pkiRequest('dev3', 'CN=dev3.est.signet.test', ['dev3.est.signet.test']);
    const r = curl('/.well-known/est/serverkeygen', {
      method: 'POST',
      type: 'application/pkcs10',
      body: readFileSync(req).toString('base64'),
      user: `${cred.id}:${cred.secret}`,
    });
    assert.equal(r.status, 200, r.text);
    const boundary = /content-type: multipart\/mixed; boundary=([^\s;]+)/i.exec(r.headers)?.[1];
    assert.ok(boundary, r.headers);
    assert.match(r.headers, /cache-control: no-store/i);
    const parts = r.text
      .split(`--${boundary}`)
      .slice(1, -1)
      .map((p) => {
        const [head, body] = p.split('\r\n\r\n');
        return { type: /Content-Type: ([^\r\n]+)/.exec(head!)![1], der: Buffer.from(body!.trim(), 'base64') };
      });
    assert.deepEqual(
      parts.map((p) => p.type),
      ['application/pkcs8', 'application/pkcs7-mime; smime-type=certs-only'],
    );
    const keyPem = openssl(['pkey', '-inform', 'DER', '-outform', 'PEM'], parts[0]!.der);
    assert.equal(keyPem.status, 0, keyPem.stderr);
    const certs = openssl(['pkcs7', '-inform', 'DER', '-print_certs'], parts[1]!.der);
    assert.equal(certs.status, 0, certs.stderr);
    const leaf = new X509Certificate(certs.stdout.slice(certs.stdout.indexOf('-----BEGIN CERTIFICATE-----')));
    assert.equal(leaf.subjectAltName, 'DNS:dev3.est.signet.test');
    assert.ok(leaf.checkPrivateKey(createPrivateKey(keyPem.stdout)), "the key Signet made is the certificate's");
  });

  test('refusals: problem documents, nothing stored, the credential not spent', async () => {
    const cred = credential('server', '--names', 'est.signet.test');
    const user = `${cred.id}:${cred.secret}`;
    const good = readFileSync(pkiRequest('dev4', 'CN=dev4.est.signet.test', ['dev4.est.signet.test']).req).toString('base64');
    const outside = readFileSync(pkiRequest('evil', 'CN=www.evil.example', ['www.evil.example']).req).toString('base64');
    const withEmail = openssl([
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      '/dev/null',
      '-subj',
      '/CN=dev4.est.signet.test',
      '-addext',
      'subjectAltName=DNS:dev4.est.signet.test,email:a@est.signet.test',
    ]);
    assert.equal(withEmail.status, 0, withEmail.stderr);
    const emailCsr = withEmail.stdout.replace(/-----[A-Z ]+-----|\s/g, '');
    const before = await certCount();
    const cases: [string, ReturnType<typeof curl>, number, RegExp][] = [
      [
        'serverkeygen for names the profile refuses (checked before a key is made)',
        curl('/.well-known/est/serverkeygen', { method: 'POST', type: 'application/pkcs10', body: emailCsr, user }),
        400,
        /profile server does not allow email subjectAltNames/,
      ],
      [
        'no credentials',
        curl('/.well-known/est/simpleenroll', { method: 'POST', type: 'application/pkcs10', body: good }),
        401,
        /needs an enrollment credential as HTTP Basic/,
      ],
      [
        'a wrong secret',
        curl('/.well-known/est/simpleenroll', { method: 'POST', type: 'application/pkcs10', body: good, user: `${cred.id}:nope` }),
        401,
        /unknown enrollment credential, or wrong secret/,
      ],
      [
        'names outside the credential',
        curl('/.well-known/est/simpleenroll', { method: 'POST', type: 'application/pkcs10', body: outside, user }),
        403,
        /allows names under est\.signet\.test only; name 'www\.evil\.example' is outside them/,
      ],
      [
        "another profile's label",
        curl('/.well-known/est/client/simpleenroll', { method: 'POST', type: 'application/pkcs10', body: good, user }),
        401,
        /is for profile server, not client/,
      ],
      [
        'PEM, not base64 DER',
        curl('/.well-known/est/simpleenroll', { method: 'POST', type: 'application/pkcs10', body: '-----BEGIN CERTIFICATE REQUEST-----', user }),
        400,
        /is not base64/,
      ],
      [
        'a body that is not a CSR',
        curl('/.well-known/est/simpleenroll', { method: 'POST', type: 'application/pkcs10', body: Buffer.from('hello').toString('base64'), user }),
        400,
        /DER|CSR/,
      ],
      [
        'the wrong content type',
        curl('/.well-known/est/simpleenroll', { method: 'POST', type: 'application/json', body: good, user }),
        415,
        /application\/pkcs10/,
      ],
      [
        'an unknown operation',
        curl('/.well-known/est/fullcmc', { method: 'POST', type: 'application/pkcs10', body: good, user }),
        404,
        /the operations are cacerts, csrattrs, simpleenroll, simplereenroll and serverkeygen/,
      ],
      [
        're-enrollment without a client certificate',
        curl('/.well-known/est/simplereenroll', { method: 'POST', type: 'application/pkcs10', body: good }),
        401,
        /present it as the TLS client certificate/,
      ],
    ];
    for (const [what, r, status, detail] of cases) {
      assert.equal(r.status, status, `${what}: ${r.text}`);
      assert.match(r.headers, /content-type: application\/problem\+json/i, what);
      assert.match(r.json.detail, detail, what);
    }
    assert.equal(await certCount(), before, 'nothing stored');
    // The refusals of an authenticated credential are its own events (the profile's names, the
    // credential's names, the bad CSR);
    // the anonymous ones are counted into the interval's summary.
    const refused = await sql(env, `SELECT details FROM "AuditEvent" WHERE action = 'request.refused' AND actor = ? ORDER BY seq`, [`enroll:${cred.id}`]);
    assert.deepEqual(
      refused.map((e: { details: string }) => JSON.parse(e.details).type),
      ['rejected-name', 'forbidden', 'bad-csr'],
    );
    // Plain HTTP: the listener that serves only the public PKI endpoints.
    const plain = await getUrl(`${server.url}/.well-known/est/cacerts`);
    assert.equal(plain.status, 403);
    assert.match((await plain.json()).detail, /served over plain HTTP; use https:/);
    // Nothing was spent: the credential still enrolls once.
    const ok = curl('/.well-known/est/simpleenroll', { method: 'POST', type: 'application/pkcs10', body: good, user });
    assert.equal(ok.status, 200, ok.text);
  });

  test('re-enrollment refusals: a foreign certificate, a revoked one, another subject', async () => {
    const cred = credential('server', '--names', 'est.signet.test', '--uses', '2');
    const dev = pkiRequest('dev5', 'CN=dev5.est.signet.test', ['dev5.est.signet.test']);
    const got = run(PKI, ['--est', '--url', base, '--cacert', rootFile, '--in', dev.req, '--userpass', `${cred.id}:${cred.secret}`, '--outform', 'pem']);
    assert.equal(got.status, 0, got.stderr);
    const certFile = tmp.file('dev5.pem', got.stdout);
    const serial = new X509Certificate(got.stdout).serialNumber.toLowerCase();
    const body = readFileSync(dev.req).toString('base64');
    const other = readFileSync(pkiRequest('dev6', 'CN=dev6.est.signet.test', ['dev6.est.signet.test']).req).toString('base64');
    const foreign = selfSignedCa(tmp, 'foreign', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], '/CN=dev5.est.signet.test');
    const before = await certCount();
    const another = curl('/.well-known/est/simplereenroll', { method: 'POST', type: 'application/pkcs10', body: other, cert: certFile, key: dev.key });
    assert.equal(another.status, 400, another.text);
    assert.match(another.json.detail, /repeats the certificate's subject .*"dev5\.est\.signet\.test".*"dev6\.est\.signet\.test"/);
    // The same key with other names: the names of a re-enrollment are the certificate's (RFC 7030 §4.2.2).
    const sameKey = openssl(['req', '-new', '-key', dev.key, '-subj', '/CN=dev5.est.signet.test', '-addext', 'subjectAltName=DNS:evil.example']);
    assert.equal(sameKey.status, 0, sameKey.stderr);
    const renamed = curl('/.well-known/est/simplereenroll', {
      method: 'POST',
      type: 'application/pkcs10',
      body: sameKey.stdout.replace(/-----[A-Z ]+-----|\s/g, ''),
      cert: certFile,
      key: dev.key,
    });
    assert.equal(renamed.status, 400, renamed.text);
    assert.match(renamed.json.detail, /keeps the certificate's names \(dev5\.est\.signet\.test\); the CSR asks for evil\.example/);
    const alien = curl('/.well-known/est/simplereenroll', { method: 'POST', type: 'application/pkcs10', body, cert: foreign.cert, key: foreign.key });
    assert.equal(alien.status, 401, alien.text);
    const revoke = signet(['revoke', serial, '--reason', 'keyCompromise'], env.env);
    assert.equal(revoke.status, 0, revoke.stderr);
    const revoked = curl('/.well-known/est/simplereenroll', { method: 'POST', type: 'application/pkcs10', body, cert: certFile, key: dev.key });
    assert.equal(revoked.status, 401, revoked.text);
    assert.match(revoked.json.detail, /revoked/);
    assert.equal(await certCount(), before, 'nothing stored');
  });

  test("after all of it, signet audit verify holds every credential's spent uses to its enrollment.used events", () => {
    const v = signet(['audit', 'verify'], env.env);
    assert.equal(v.status, 0, v.stderr);
    const n = Number(/(\d+) enrollment credentials, each with its enrollment\.created event/.exec(v.stdout)?.[1]);
    assert.ok(n >= 5, v.stdout);
  });
});

describe('EST first enrollment with a certificate from a CA trusted for it (SIGNET_EST_CLIENT_CAS)', () => {
  const tmp = new TempDir();
  let env: TestEnv;
  let server: RunningServer;
  let base: string;
  let rootFile: string;
  const maker = selfSignedCa(tmp, 'maker', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], '/O=Maker/CN=Maker Device CA');
  const other = selfSignedCa(tmp, 'other', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], '/O=Maker/CN=Maker Device CA');

  /** A device certificate (and key) issued by `ca` with the given extendedKeyUsage. */
  function deviceCert(name: string, ca: { cert: string; key: string }, eku = 'clientAuth'): { cert: string; key: string } {
    const key = tmp.file(`${name}.key`);
    const csr = openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-subj', `/CN=${name}`]);
    assert.equal(csr.status, 0, csr.stderr);
    const ext = tmp.file(`${name}.ext`, `extendedKeyUsage=${eku}\nbasicConstraints=critical,CA:FALSE\n`);
    const cert = tmp.file(`${name}.pem`);
    const x = openssl(['x509', '-req', '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-days', '30', '-extfile', ext, '-out', cert], csr.stdout);
    assert.equal(x.status, 0, x.stderr);
    return { cert, key };
  }

  function enroll(path: string, device: { cert: string; key: string } | null, csr: string) {
    const args = ['-sS', '--cacert', rootFile, '-o', '-', '-w', '%{http_code}', '-X', 'POST', '-H', 'Content-Type: application/pkcs10', '--data-binary', '@-'];
    if (device) args.push('--cert', device.cert, '--key', device.key);
    const r = run('curl', [...args, `${base}${path}`], Buffer.from(csr));
    const out = r.stdout.toString();
    const text = out.slice(0, -3);
    return { status: Number(out.slice(-3)), text, json: text.startsWith('{') ? JSON.parse(text) : undefined };
  }

  /** The base64 DER body of a CSR for `name` (PEM's body is exactly that). */
  const csrFor = (name: string) => newKeyCsr(name).replace(/-----[A-Z ]+-----|\s/g, '');

  before(async () => {
    const tlsPort = await freePort();
    env = await createTestEnv({
      SIGNET_TLS: 'on',
      SIGNET_TLS_PORT: String(tlsPort),
      SIGNET_EST_CLIENT_CAS: maker.cert,
      SIGNET_EST_CLIENT_PROFILE: 'client',
      SIGNET_EST_CLIENT_NAMES: 'devices.signet.test',
    });
    server = await startServer(env.env);
    base = `https://localhost:${tlsPort}`;
    const cas = JSON.parse(signet(['ca', 'list', '--json'], env.env).stdout) as { id: string; parentId: string | null }[];
    const rootId = cas.find((c) => c.parentId === null)!.id;
    rootFile = tmp.file('root.pem', derToPem(Buffer.from(await (await getUrl(`${server.url}/pki/${rootId}.crt`)).arrayBuffer()), 'CERTIFICATE'));
  });

  after(async () => {
    await server?.stop();
    await env?.cleanup();
    tmp.remove();
  });

  test('the setting is checked at start: the profile it needs, CA certificates only', () => {
    const has = (n: string) => n === 'client';
    const refused = (settings: Parameters<typeof loadDeviceTrust>[0], detail: RegExp) =>
      assert.throws(
        () => loadDeviceTrust(settings, has),
        (e: unknown) => e instanceof SignetError && e.type === 'configuration' && detail.test(e.detail),
      );
    refused({ file: maker.cert }, /needs SIGNET_EST_CLIENT_PROFILE/);
    refused({ file: maker.cert, profile: 'nosuch' }, /no profile named nosuch/);
    refused({ profile: 'client' }, /apply to SIGNET_EST_CLIENT_CAS, which is not set/);
    refused({ file: deviceCert('not-a-ca', maker).cert, profile: 'client' }, /is not a CA certificate/);
    refused({ file: maker.key, profile: 'client' }, /is a PRIVATE KEY, not a CERTIFICATE/);
    refused({ file: join(tmp.path, 'missing.pem'), profile: 'client' }, /could not be read/);
    const trust = loadDeviceTrust({ file: maker.cert, profile: 'client', names: ' Devices.Signet.Test ,' }, has);
    assert.deepEqual(trust?.nameSuffixes, ['devices.signet.test']);
    assert.equal(loadDeviceTrust({}, has), null);
  });

  test("a maker's device certificate enrolls under the configured profile and names; the audit names the device certificate", async () => {
    const device = deviceCert('d1.devices.signet.test', maker);
    const r = enroll('/.well-known/est/simpleenroll', device, csrFor('d1.devices.signet.test'));
    assert.equal(r.status, 200, r.text);
    const p7 = openssl(['pkcs7', '-inform', 'DER', '-print_certs'], Buffer.from(r.text, 'base64'));
    const leaf = new X509Certificate(p7.stdout.slice(p7.stdout.indexOf('-----BEGIN CERTIFICATE-----')));
    assert.equal(leaf.subjectAltName, 'DNS:d1.devices.signet.test');
    assert.match(leaf.keyUsage?.join(',') ?? '', /1\.3\.6\.1\.5\.5\.7\.3\.2/, 'the client profile');
    const fp = createHash('sha256')
      .update(new X509Certificate(readFileSync(device.cert)).raw)
      .digest('hex')
      .slice(0, 16);
    const [issued] = await sql(env, `SELECT actor FROM "AuditEvent" WHERE action = 'certificate.issued' AND target = ?`, [leaf.serialNumber.toLowerCase()]);
    assert.equal(issued.actor, `enroll:tls:${fp}`);
    // Not one-time: the device can enroll again (its CA, not a credential, is the right).
    assert.equal(enroll('/.well-known/est/simpleenroll', device, csrFor('d1.devices.signet.test')).status, 200);
  });

  test('refused: another CA with the same name, a server-only certificate, names outside the limit, another profile, no certificate', async () => {
    const before = Number((await sql(env, 'SELECT COUNT(*) AS n FROM "Certificate"'))[0].n);
    const cases: [string, ReturnType<typeof enroll>, number, RegExp][] = [
      [
        'a CA of the same name',
        enroll('/.well-known/est/simpleenroll', deviceCert('d2.devices.signet.test', other), csrFor('d2.devices.signet.test')),
        401,
        /nor issued by a CA trusted for enrollment/,
      ],
      [
        'serverAuth only',
        enroll('/.well-known/est/simpleenroll', deviceCert('d3.devices.signet.test', maker, 'serverAuth'), csrFor('d3.devices.signet.test')),
        401,
        /lacks clientAuth/,
      ],
      [
        'names outside',
        enroll('/.well-known/est/simpleenroll', deviceCert('d4.devices.signet.test', maker), csrFor('www.evil.example')),
        403,
        /allows names under devices\.signet\.test only/,
      ],
      [
        'another profile',
        enroll('/.well-known/est/server/simpleenroll', deviceCert('d5.devices.signet.test', maker), csrFor('d5.devices.signet.test')),
        403,
        /enroll under profile client, not server/,
      ],
      ['no certificate', enroll('/.well-known/est/simpleenroll', null, csrFor('d6.devices.signet.test')), 401, /enrollment credential as HTTP Basic/],
    ];
    for (const [what, r, status, detail] of cases) {
      assert.equal(r.status, status, `${what}: ${r.text}`);
      assert.match(r.json.detail, detail, what);
    }
    assert.equal(Number((await sql(env, 'SELECT COUNT(*) AS n FROM "Certificate"'))[0].n), before, 'nothing stored');
  });
});
