/**
 * Issue 17, EST (RFC 7030): a real `signet serve` with SIGNET_TLS=on, enrolled into by
 * strongSwan's `pki --estca` / `pki --est` (a client nobody on the project wrote), and by curl
 * for what strongSwan does not send; every refusal by sending the bad thing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { derToPem } from '../src/pki/pem.js';
import { freePort, signet, startServer, type RunningServer } from './helpers/cli.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';
import { openssl, selfSignedCa, TempDir } from './helpers/openssl.js';
import { sql } from './helpers/sql.js';

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
    tlsPort = await freePort();
    env = await createTestEnv({ SIGNET_TLS: 'on', SIGNET_TLS_PORT: String(tlsPort) });
    server = await startServer(env.env);
    base = `https://localhost:${tlsPort}`;
    const list = signet(['ca', 'list', '--json'], env.env);
    assert.equal(list.status, 0, list.stderr);
    const cas = JSON.parse(list.stdout) as { id: string; parentId: string | null }[];
    const rootId = cas.find((c) => c.parentId === null)!.id;
    const intId = cas.find((c) => c.parentId === rootId)!.id;
    const pem = async (id: string) => derToPem(Buffer.from(await (await fetch(`${server.url}/pki/${id}.crt`)).arrayBuffer()), 'CERTIFICATE');
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
    assert.match(unknown.json.detail, /no EST label "nosuch": the labels are the profiles \(server, client, peer\)/);
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
});
