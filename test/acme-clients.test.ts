/**
 * Issue 7, ACME with real clients: a real `signet serve` with SIGNET_TLS=on (SQLite, or
 * PostgreSQL under test:pg) and the ACME clients people run, unchanged — lego (Debian package)
 * and certbot — talking to https://localhost:<port>/acme/directory and trusting Signet's root
 * the way they would any private CA (LEGO_CA_CERTIFICATES, REQUESTS_CA_BUNDLE).
 *
 * Name resolution: the test names (*.signet.test) resolve only through a small authoritative
 * DNS server the test runs on 127.0.0.1 (test/helpers/dns-server.ts); Signet's validator is
 * pointed at it with SIGNET_ACME_DNS_RESOLVER, lego's dns-01 check with --dns.resolvers. lego
 * and certbot never resolve the names for http-01/tls-alpn-01 (they only listen), so nothing
 * here edits /etc/hosts.
 *
 * Covered: lego http-01 obtain → renew → revoke, then `openssl ocsp` says revoked; lego
 * tls-alpn-01; lego dns-01 (exec provider → the test DNS server, including a wildcard); lego with
 * External Account Binding at a profile directory that requires it (key from `signet acme eab
 * create`), where the account lego holds for the first directory does not exist; certbot standalone obtain and `renew --force-renewal`. Each certificate verifies with `openssl verify`
 * against the root, appears in the inventory API, and the audit trail shows the acme.* events.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { freePort, signet, startServer, type RunningServer } from './helpers/cli.js';
import { childEnv, createTestEnv, type TestEnv } from './helpers/env.js';
import { openssl, TempDir } from './helpers/openssl.js';
import { startDnsServer, type TestDnsServer } from './helpers/dns-server.js';
import { derToPem } from '../src/pki/pem.js';

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a client asynchronously: this process hosts the DNS server and its control endpoint,
 * which the client (and Signet) must be able to reach while it runs.
 */
function run(cmd: string, args: string[], env: Record<string, string>, timeoutMs = 120_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

const show = (r: Run) => `exit ${r.status}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
const fingerprintHex = (pem: string) => new X509Certificate(pem).fingerprint256.replace(/:/g, '').toLowerCase();

describe('ACME with real clients (lego, certbot)', () => {
  let env: TestEnv;
  let server: RunningServer;
  let dns: TestDnsServer;
  const tmp = new TempDir();
  let tlsPort: number;
  let http01Port: number;
  let alpnPort: number;
  let directory: string;
  let rootPem: string;
  let rootFile: string;
  let intFile: string;
  let chainFile: string;
  let intId: string;

  /** GET on the HTTPS API with the admin token, trusting only Signet's root. */
  function apiGet(path: string): Promise<{ status: number; json: any; text: string }> {
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        {
          host: '127.0.0.1',
          servername: 'localhost',
          port: tlsPort,
          path,
          method: 'GET',
          ca: rootPem,
          headers: { authorization: `Bearer ${server.token}`, host: `localhost:${tlsPort}` },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => {
            text += c;
          });
          res.on('end', () => {
            let json: any;
            try {
              json = JSON.parse(text);
            } catch {
              json = undefined;
            }
            resolve({ status: res.statusCode!, json, text });
          });
        },
      );
      req.on('error', (e) => reject(new Error(`GET ${path}: ${e.message}; server stderr: ${server.stderr()}`)));
      req.end();
    });
  }

  async function auditEvents(action: string): Promise<any[]> {
    const r = await apiGet(`/api/v1/audit?action=${encodeURIComponent(action)}&limit=1000`);
    assert.equal(r.status, 200, r.text);
    return r.json.items;
  }

  /** The certificate is in the inventory (by fingerprint) as an ordinary certificate. */
  async function inventoryEntry(name: string, pem: string): Promise<any> {
    const r = await apiGet(`/api/v1/certificates?san=${encodeURIComponent(name)}&limit=500`);
    assert.equal(r.status, 200, r.text);
    const fp = fingerprintHex(pem);
    const entry = r.json.items.find((c: any) => c.fingerprintSha256 === fp);
    assert.ok(entry, `certificate for ${name} (${fp}) is not in GET /api/v1/certificates: ${r.text}`);
    return entry;
  }

  /** openssl verify against the root only, with the served chain as untrusted intermediates. */
  function verifyChain(certFile: string, untrusted: string): void {
    const v = openssl(['verify', '-CAfile', rootFile, '-untrusted', untrusted, '-purpose', 'sslserver', certFile]);
    assert.equal(v.status, 0, `openssl verify ${certFile}: ${v.stdout}${v.stderr}`);
    assert.match(v.stdout, /: OK/);
  }

  function ocspStatus(certFile: string): string {
    const r = openssl(['ocsp', '-issuer', intFile, '-cert', certFile, '-url', `${server.url}/ocsp`, '-CAfile', chainFile]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr + r.stdout, /Response verify OK/);
    const m = new RegExp(`${certFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: (\\w+)`).exec(r.stdout);
    assert.ok(m, r.stdout);
    return m[1]!;
  }

  const legoEnv = () => ({ LEGO_CA_CERTIFICATES: rootFile, HOME: tmp.path });
  const lego = (path: string, name: string | string[], challenge: string[], command: string[], extraEnv: Record<string, string> = {}, server = directory) =>
    run(
      'lego',
      [
        '--server',
        server,
        '--email',
        'a@signet.test',
        '--accept-tos',
        '--path',
        path,
        ...[name].flat().flatMap((d) => ['--domains', d]),
        ...challenge,
        ...command,
      ],
      { ...legoEnv(), ...extraEnv },
    );
  const legoFiles = (path: string, name: string) => {
    const base = join(path, 'certificates', name.replace(/^\*/, '_'));
    return { crt: `${base}.crt`, issuer: `${base}.issuer.crt`, key: `${base}.key` };
  };

  /** The account URL lego stored in <path>/accounts/<server>/<email>/account.json; `directory` is '' or '/<profile>'. */
  function legoAccountUrl(path: string, directory = ''): string {
    const servers = readdirSync(join(path, 'accounts'));
    assert.equal(servers.length, 1, servers.join(', '));
    const account = JSON.parse(readFileSync(join(path, 'accounts', servers[0]!, 'a@signet.test', 'account.json'), 'utf8')) as { registration: { uri: string } };
    assert.match(account.registration.uri, new RegExp(`^https://localhost:${tlsPort}/acme${directory}/account/`));
    return account.registration.uri;
  }

  before(async () => {
    dns = await startDnsServer({ zones: ['signet.test'] });
    [tlsPort, http01Port, alpnPort] = [await freePort(), await freePort(), await freePort()];
    env = await createTestEnv({
      SIGNET_TLS: 'on',
      SIGNET_TLS_PORT: String(tlsPort),
      SIGNET_ACME_HTTP_PORT: String(http01Port),
      SIGNET_ACME_TLS_PORT: String(alpnPort),
      SIGNET_ACME_DNS_RESOLVER: dns.address,
      SIGNET_ACME_VALIDATION_TIMEOUT_MS: '5000',
      // A second directory, /acme/peer/directory, that needs External Account Binding.
      SIGNET_ACME_PROFILES: 'server,peer',
      SIGNET_ACME_EAB_REQUIRED: 'peer',
    });
    server = await startServer(env.env);
    directory = `https://localhost:${tlsPort}/acme/directory`;
    // The root and the issuing CA, fetched the way a relying party would: ids from the CLI,
    // certificates from the public (plain HTTP) AIA endpoint.
    const list = signet(['ca', 'list', '--json'], env.env);
    assert.equal(list.status, 0, list.stderr);
    const cas = JSON.parse(list.stdout) as { id: string; parentId: string | null }[];
    const rootId = cas.find((c) => c.parentId === null)!.id;
    intId = cas.find((c) => c.parentId === rootId)!.id;
    const fetchPem = async (id: string) => {
      const res = await fetch(`${server.url}/pki/${id}.crt`);
      assert.equal(res.status, 200);
      return derToPem(Buffer.from(await res.arrayBuffer()), 'CERTIFICATE');
    };
    rootPem = await fetchPem(rootId);
    const intPem = await fetchPem(intId);
    rootFile = tmp.file('root.pem', rootPem);
    intFile = tmp.file('int.pem', intPem);
    chainFile = tmp.file('chain.pem', rootPem + intPem);
    // With TLS on, plain HTTP no longer serves ACME; the HTTPS listener does, with a certificate
    // that chains to the root.
    assert.equal((await fetch(`${server.url}/acme/directory`)).status, 403);
    const d = await apiGet('/acme/directory');
    assert.equal(d.status, 200, d.text);
    assert.equal(d.json.newOrder, `https://localhost:${tlsPort}/acme/new-order`);
  });

  after(async () => {
    await server?.stop();
    await dns?.close();
    await env?.cleanup();
    tmp.remove();
  });

  test('lego http-01: obtain, renew, revoke; OCSP then says revoked', async () => {
    const name = 'lego-http.signet.test';
    const path = join(tmp.path, 'lego-http');
    const challenge = ['--http', '--http.port', `127.0.0.1:${http01Port}`];
    const obtained = await lego(path, name, challenge, ['run']);
    assert.equal(obtained.status, 0, show(obtained));
    const f = legoFiles(path, name);
    const first = readFileSync(f.crt, 'utf8');
    verifyChain(f.crt, f.issuer);
    const firstCert = new X509Certificate(first);
    assert.match(firstCert.subjectAltName ?? '', /DNS:lego-http\.signet\.test/);
    const firstEntry = await inventoryEntry(name, first);
    assert.equal(firstEntry.profile, 'server');
    assert.equal(firstEntry.status, 'good');
    assert.equal(ocspStatus(f.crt), 'good');
    const firstFile = tmp.file('lego-http-first.crt', first);

    // renew --days beyond the certificate's life: renews now, without lego's random sleep.
    const renewed = await lego(path, name, challenge, ['renew', '--days', '3650', '--no-random-sleep']);
    assert.equal(renewed.status, 0, show(renewed));
    const second = readFileSync(f.crt, 'utf8');
    assert.notEqual(fingerprintHex(second), fingerprintHex(first), 'renew must produce a new certificate');
    verifyChain(f.crt, f.issuer);
    const secondCert = new X509Certificate(second);
    assert.notEqual(secondCert.serialNumber, firstCert.serialNumber);
    await inventoryEntry(name, second);

    // revoke (by the account that ordered it); --keep leaves the files for openssl below.
    const revoked = await lego(path, name, challenge, ['revoke', '--keep']);
    assert.equal(revoked.status, 0, show(revoked));
    const entry = await inventoryEntry(name, second);
    assert.equal(entry.status, 'revoked');
    assert.equal(ocspStatus(f.crt), 'revoked');
    // The earlier certificate is untouched.
    assert.equal(ocspStatus(firstFile), 'good');

    // The audit trail tells the story, with the ACME account as actor.
    const accountUrl = legoAccountUrl(path);
    const accountId = accountUrl.slice(accountUrl.lastIndexOf('/') + 1);
    const actor = `acme:${accountId}`;
    const created = (await auditEvents('acme.account.created')).filter((e) => e.target === accountId);
    assert.equal(created.length, 1);
    assert.deepEqual(created[0].details.contact, ['mailto:a@signet.test']);
    const orders = (await auditEvents('acme.order.created')).filter((e) => e.actor === actor && e.details.identifiers.includes(name));
    assert.ok(orders.length >= 2, `two orders for ${name}: ${JSON.stringify(orders)}`);
    const validated = (await auditEvents('acme.challenge.validated')).filter((e) => e.actor === actor && e.details.identifier === name);
    assert.ok(
      validated.some((e) => e.details.type === 'http-01'),
      JSON.stringify(validated),
    );
    const issued = (await auditEvents('certificate.issued')).filter((e) => e.actor === actor);
    const serials = issued.map((e) => e.target);
    assert.ok(serials.includes(firstEntry.serial) && serials.includes(entry.serial), JSON.stringify(issued));
    const revokedEvents = (await auditEvents('certificate.revoked')).filter((e) => e.target === entry.serial);
    assert.equal(revokedEvents.length, 1);
    assert.equal(revokedEvents[0].actor, actor);
  });

  test('lego tls-alpn-01', async () => {
    const name = 'lego-alpn.signet.test';
    const path = join(tmp.path, 'lego-alpn');
    const r = await lego(path, name, ['--tls', '--tls.port', `127.0.0.1:${alpnPort}`], ['run']);
    assert.equal(r.status, 0, show(r));
    const f = legoFiles(path, name);
    verifyChain(f.crt, f.issuer);
    await inventoryEntry(name, readFileSync(f.crt, 'utf8'));
    const validated = (await auditEvents('acme.challenge.validated')).filter((e) => e.details.identifier === name);
    assert.deepEqual(
      validated.map((e) => e.details.type),
      ['tls-alpn-01'],
    );
  });

  test('lego dns-01 through the exec provider and the test DNS server (with a wildcard)', async () => {
    const name = 'lego-dns.signet.test';
    const path = join(tmp.path, 'lego-dns');
    // lego's exec provider runs this script with `present|cleanup <fqdn> <value>`; it tells the
    // test DNS server to add or remove the TXT record over its loopback control endpoint.
    const hook = tmp.file(
      'dns-hook.mjs',
      `#!${process.execPath}
const [action, name, value] = process.argv.slice(2);
const res = await fetch(${JSON.stringify(`${dns.controlUrl}/txt`)}, { method: action === 'present' ? 'POST' : 'DELETE', body: JSON.stringify({ name, value }) });
if (!res.ok) { console.error('DNS control endpoint answered', res.status); process.exit(1); }
`,
    );
    chmodSync(hook, 0o755);
    const queriesBefore = dns.queries.length;
    const r = await lego(path, [name, `*.${name}`], ['--dns', 'exec', '--dns.resolvers', dns.address, '--dns.disable-cp'], ['run'], {
      EXEC_PATH: hook,
      EXEC_PROPAGATION_TIMEOUT: '30',
      EXEC_POLLING_INTERVAL: '1',
      EXEC_SEQUENCE_INTERVAL: '1',
    });
    assert.equal(r.status, 0, show(r));
    const f = legoFiles(path, name);
    verifyChain(f.crt, f.issuer);
    const cert = new X509Certificate(readFileSync(f.crt, 'utf8'));
    assert.match(cert.subjectAltName ?? '', /DNS:\*\.lego-dns\.signet\.test/);
    assert.match(cert.subjectAltName ?? '', /DNS:lego-dns\.signet\.test/);
    await inventoryEntry(name, readFileSync(f.crt, 'utf8'));
    // Signet really looked the TXT record up at the test DNS server, and lego cleaned up after.
    const txtQueries = dns.queries.slice(queriesBefore).filter((q) => q.type === 'TXT' && q.name === `_acme-challenge.${name}`);
    assert.ok(txtQueries.length >= 2, JSON.stringify(dns.queries.slice(queriesBefore)));
    assert.deepEqual(dns.txt(`_acme-challenge.${name}`), []);
    const validated = (await auditEvents('acme.challenge.validated')).filter((e) => e.details.identifier === name);
    assert.ok(validated.length >= 1 && validated.every((e) => e.details.type === 'dns-01'), JSON.stringify(validated));
  });

  test("lego with External Account Binding (a key from `signet acme eab create`) at the peer profile's directory", async () => {
    const name = 'lego-eab.signet.test';
    const peerDirectory = `https://localhost:${tlsPort}/acme/peer/directory`;
    const challenge = ['--http', '--http.port', `127.0.0.1:${http01Port}`];
    const refused = await lego(join(tmp.path, 'lego-no-eab'), name, challenge, ['run'], {}, peerDirectory);
    assert.notEqual(refused.status, 0, show(refused));
    // lego reads meta.externalAccountRequired from the directory and stops before registering.
    assert.match(refused.stdout + refused.stderr, /requires External Account Binding|externalAccountRequired/);
    const created = signet(['acme', 'eab', 'create', '--profile', 'peer', '--json'], env.env);
    assert.equal(created.status, 0, created.stderr);
    const { kid, hmacKey } = JSON.parse(created.stdout) as { kid: string; hmacKey: string };
    // Each directory is its own ACME server, but lego keeps accounts per host: with the --path
    // of the server directory's account, lego presents that account here, which does not exist.
    const shared = await lego(join(tmp.path, 'lego-http'), name, [...challenge, '--eab', '--kid', kid, '--hmac', hmacKey], ['run'], {}, peerDirectory);
    assert.notEqual(shared.status, 0, show(shared));
    assert.match(shared.stdout + shared.stderr, /accountDoesNotExist/);
    const path = join(tmp.path, 'lego-eab');
    const r = await lego(path, name, [...challenge, '--eab', '--kid', kid, '--hmac', hmacKey], ['run'], {}, peerDirectory);
    assert.equal(r.status, 0, show(r));
    const f = legoFiles(path, name);
    verifyChain(f.crt, f.issuer);
    const entry = await inventoryEntry(name, readFileSync(f.crt, 'utf8'));
    assert.equal(entry.profile, 'peer');
    const accountUrl = legoAccountUrl(path, '/peer');
    const account = (await auditEvents('acme.account.created')).find((e) => accountUrl.endsWith(`/${e.target}`));
    assert.equal(account?.details.eabKeyId, kid);
    assert.equal(account?.details.profile, 'peer');
  });

  test('certbot standalone: certonly, then renew --force-renewal gives a new certificate', async () => {
    const name = 'certbot.signet.test';
    const dirs = ['--config-dir', join(tmp.path, 'cb-config'), '--work-dir', join(tmp.path, 'cb-work'), '--logs-dir', join(tmp.path, 'cb-logs')];
    const cbEnv = { REQUESTS_CA_BUNDLE: rootFile, HOME: tmp.path };
    const obtained = await run(
      'certbot',
      [
        'certonly',
        '--standalone',
        '--non-interactive',
        '--agree-tos',
        '-m',
        'a@signet.test',
        '--server',
        directory,
        '-d',
        name,
        '--http-01-port',
        String(http01Port),
        '--http-01-address',
        '127.0.0.1',
        ...dirs,
      ],
      cbEnv,
    );
    assert.equal(obtained.status, 0, show(obtained));
    const live = join(tmp.path, 'cb-config', 'live', name);
    const first = readFileSync(join(live, 'cert.pem'), 'utf8');
    verifyChain(join(live, 'cert.pem'), join(live, 'chain.pem'));
    await inventoryEntry(name, first);

    // certbot renew sleeps up to 8 minutes when stdin is not a terminal, unless told not to.
    const renewed = await run('certbot', ['renew', '--force-renewal', '--no-random-sleep-on-renew', '--non-interactive', ...dirs], cbEnv);
    assert.equal(renewed.status, 0, show(renewed));
    const second = readFileSync(join(live, 'cert.pem'), 'utf8');
    assert.notEqual(fingerprintHex(second), fingerprintHex(first), 'certbot renew must install a new certificate');
    verifyChain(join(live, 'cert.pem'), join(live, 'chain.pem'));
    const entry = await inventoryEntry(name, second);
    assert.equal(entry.status, 'good');
    assert.ok(existsSync(join(live, 'fullchain.pem')));
    const orders = (await auditEvents('acme.order.created')).filter((e) => e.details.identifiers.includes(name));
    assert.equal(orders.length, 2);
  });
});
