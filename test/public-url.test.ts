/**
 * The public URL (base of the AIA, CRL and OCSP URLs in certificates) is recorded in the
 * database and is the one source for the server and the CLI (ca/public-url.ts): recorded by
 * `signet init` or the first server start, followed by CLI commands whatever their own
 * environment, replaced (and audited) only by a server started with SIGNET_PUBLIC_URL set.
 * Real CLI and server processes, SQLite or PostgreSQL (SIGNET_TEST_POSTGRES).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { api, freePort, signet, startServer } from './helpers/cli.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';
import { TempDir } from './helpers/openssl.js';
import { sql } from './helpers/sql.js';

const A = 'http://ca-a.example:8080';
const C = 'http://ca-c.example:8443';

describe('the public URL recorded in the database', () => {
  let env: TestEnv;
  const tmp = new TempDir();
  let n = 0;

  before(async () => {
    env = await createTestEnv();
  });
  after(async () => {
    await env.cleanup();
    tmp.remove();
  });

  const stored = async () => (await sql<{ value: string }>(env, `SELECT "value" FROM "Setting" WHERE "key" = ?`, ['public.url']))[0]?.value;
  const urlsOf = (pem: string) => {
    const f = tmp.file(`c${++n}.pem`, pem);
    return execFileSync('openssl', ['x509', '-in', f, '-noout', '-ext', 'authorityInfoAccess,crlDistributionPoints'], { encoding: 'utf8' });
  };
  /** Issues from the CLI with `extra` as its environment; the certificate's URLs and stderr. */
  const cliIssue = (extra: Record<string, string>) => {
    const out = join(tmp.path, `cli${++n}.pem`);
    const r = signet(['issue', '--generate-key', 'ecdsa-p256', '--san', `h${n}.example`, '--out', out, '--key-out', join(tmp.path, `cli${n}.key`)], {
      ...env.env,
      ...extra,
    });
    assert.equal(r.status, 0, r.stderr);
    return { urls: execFileSync('openssl', ['x509', '-in', out, '-noout', '-ext', 'authorityInfoAccess'], { encoding: 'utf8' }), stderr: r.stderr };
  };
  const changes = () => {
    const r = signet(['audit', 'list', '--action', 'settings.public-url.changed', '--json'], env.env);
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as { actor: string; target: string; details: { from: string; to: string } }[];
  };

  test('init records it; CLI commands use it whatever their own SIGNET_PORT or SIGNET_PUBLIC_URL', async () => {
    const r = signet(['init', '--json'], { ...env.env, SIGNET_PUBLIC_URL: `${A}/` });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(await stored(), A, 'recorded without the trailing slash');
    const other = cliIssue({ SIGNET_PORT: '9999' });
    assert.match(other.urls, /OCSP - URI:http:\/\/ca-a\.example:8080\/ocsp/, other.urls);
    assert.match(other.urls, /CA Issuers - URI:http:\/\/ca-a\.example:8080\/pki\/int-/, other.urls);
    assert.doesNotMatch(other.stderr, /public URL/, 'a default port is no reason to warn');
    const explicit = cliIssue({ SIGNET_PUBLIC_URL: 'http://elsewhere.example' });
    assert.match(explicit.urls, /OCSP - URI:http:\/\/ca-a\.example:8080\/ocsp/, explicit.urls);
    assert.match(
      explicit.stderr,
      /SIGNET_PUBLIC_URL \(http:\/\/elsewhere\.example\) differs from the public URL recorded in the database \(http:\/\/ca-a\.example:8080\)/,
    );
    assert.equal(await stored(), A, 'a CLI command never changes it');
    assert.deepEqual(changes(), []);
  });

  test('a server without SIGNET_PUBLIC_URL keeps the recorded one and says so; one with it set replaces it, audited once', async () => {
    const plain = await startServer({ ...env.env, SIGNET_PORT: String(await freePort()) });
    try {
      assert.match(plain.stdout(), /public URL http:\/\/ca-a\.example:8080\)/);
      assert.match(
        plain.stderr(),
        /SIGNET_PUBLIC_URL is not set: certificates keep naming the public URL recorded in the database, http:\/\/ca-a\.example:8080/,
      );
      const csrKey = tmp.file('k.pem', execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'], { encoding: 'utf8' }));
      const csr = execFileSync('openssl', ['req', '-new', '-key', csrKey, '-subj', '/CN=api.example', '-addext', 'subjectAltName=DNS:api.example'], {
        encoding: 'utf8',
      });
      const issued = await api(plain, 'POST', '/api/v1/certificates', { csr, profile: 'server' });
      assert.equal(issued.status, 201, issued.text);
      const urls = urlsOf(issued.json.certificate);
      assert.match(urls, /OCSP - URI:http:\/\/ca-a\.example:8080\/ocsp/, urls);
      assert.match(urls, /URI:http:\/\/ca-a\.example:8080\/pki\/int-[0-9a-f]+\.crl/, urls);
    } finally {
      await plain.stop();
    }
    assert.equal(await stored(), A);
    for (let i = 0; i < 2; i++) {
      const moved = await startServer({ ...env.env, SIGNET_PORT: String(await freePort()), SIGNET_PUBLIC_URL: C });
      try {
        assert.match(moved.stdout(), /public URL http:\/\/ca-c\.example:8443\)/);
        if (i === 0) assert.match(moved.stderr(), /public URL changed from http:\/\/ca-a\.example:8080 to http:\/\/ca-c\.example:8443/);
        else assert.doesNotMatch(moved.stderr(), /public URL changed/);
      } finally {
        await moved.stop();
      }
    }
    assert.equal(await stored(), C);
    const events = changes();
    assert.equal(events.length, 1, JSON.stringify(events));
    assert.equal(events[0]!.actor, 'system');
    assert.deepEqual(events[0]!.details, { from: A, to: C });
    // The CLI follows the new value, and the audit chain with the new event verifies.
    assert.match(cliIssue({}).urls, /OCSP - URI:http:\/\/ca-c\.example:8443\/ocsp/);
    const verify = signet(['audit', 'verify'], env.env);
    assert.equal(verify.status, 0, verify.stdout + verify.stderr);
  });
});
