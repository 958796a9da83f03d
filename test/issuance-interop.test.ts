/**
 * Issue 3 interop: certificates Signet issues from `openssl req` CSRs are accepted by OpenSSL
 * (verify and a real TLS handshake) and by the strict verifiers (Go crypto/x509, GnuTLS, NSS).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { api, freePort, startServer, type RunningServer } from './helpers/cli.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';
import { openssl, TempDir } from './helpers/openssl.js';
import { assertStrictlyValid, verifyWithGnutls, verifyWithGo, verifyWithNss, type StrictVerifyOptions } from './helpers/strict.js';

const tmp = new TempDir();
let fileNo = 0;

function ossl(args: string[]): string {
  const r = openssl(args);
  assert.equal(r.status, 0, `openssl ${args.join(' ')} failed:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

type KeyType = 'rsa2048' | 'p256' | 'p384' | 'ed25519';
const KEYGEN: Record<KeyType, string[]> = {
  rsa2048: ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'],
  p256: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'],
  p384: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384'],
  ed25519: ['-algorithm', 'ED25519'],
};

/** A fresh key and a CSR for it, both made by the openssl CLI. */
function keyAndCsr(type: KeyType, subj: string, san: string): { keyPath: string; csr: string } {
  const n = ++fileNo;
  const keyPath = tmp.file(`key-${n}.pem`);
  const csrPath = tmp.file(`csr-${n}.pem`);
  ossl(['genpkey', ...KEYGEN[type], '-out', keyPath]);
  ossl(['req', '-new', '-key', keyPath, '-subj', subj, '-addext', `subjectAltName=${san}`, '-out', csrPath]);
  return { keyPath, csr: readFileSync(csrPath, 'utf8') };
}

/** Runs a command without blocking the event loop; a guard timeout kills a hung tool. */
function run(cmd: string, args: string[], input = ''): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => {
      output += d;
    });
    child.stderr.on('data', (d) => {
      output += d;
    });
    const guard = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(guard);
      resolve({ status, output });
    });
    child.stdin.end(input);
  });
}

/**
 * `openssl s_server` with an issued certificate and its chain, serving `connections` handshakes.
 * Resolves once it accepts connections; stop() kills it.
 */
async function startTlsServer(o: { cert: string; key: string; chain: string; connections: number }) {
  const port = await freePort();
  const child = spawn(
    'openssl',
    ['s_server', '-cert', o.cert, '-key', o.key, '-cert_chain', o.chain, '-accept', String(port), '-naccept', String(o.connections), '-www'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const guard = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`s_server did not start:\n${output}`));
    }, 60_000);
    const onData = (d: Buffer) => {
      output += d;
      if (output.includes('ACCEPT')) {
        clearTimeout(guard);
        resolve();
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('close', (code) => {
      clearTimeout(guard);
      reject(new Error(`s_server exited with ${code}:\n${output}`));
    });
  });
  return {
    port,
    output: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * NSS only learned Ed25519 certificates recently (the NSS 3.87 of Debian 12 cannot even import
 * one). Probed with a control certificate made by openssl itself, so a refusal of Signet's
 * certificate is attributed to NSS only when NSS refuses openssl's the same way.
 */
function nssImportsEd25519(): boolean {
  const dir = tmp.file(`nss-probe-${++fileNo}`);
  ossl(['req', '-x509', '-new', '-newkey', 'ed25519', '-nodes', '-keyout', `${dir}.key`, '-subj', '/CN=control', '-days', '1', '-out', `${dir}.pem`]);
  mkdirSync(dir);
  const init = spawnSync('certutil', ['-N', '-d', `sql:${dir}`, '--empty-password'], { encoding: 'utf8' });
  assert.equal(init.status, 0, init.stderr);
  return spawnSync('certutil', ['-A', '-d', `sql:${dir}`, '-n', 'control', '-t', ',,', '-a', '-i', `${dir}.pem`], { encoding: 'utf8' }).status === 0;
}

/** assertStrictlyValid, except that an NSS without Ed25519 support is held to the control's result. */
function assertStrictlyValidFor(t: import('node:test').TestContext, type: string, o: StrictVerifyOptions): void {
  if (type !== 'ed25519' || nssImportsEd25519()) {
    assertStrictlyValid(t, o);
    return;
  }
  for (const [name, v] of [
    ['go', verifyWithGo],
    ['gnutls', verifyWithGnutls],
  ] as const) {
    const r = v(o);
    assert.ok(r.ok, `${name} rejected:\n${r.output}`);
    t.diagnostic(`${name}: accepted`);
  }
  const nss = verifyWithNss(o);
  assert.equal(nss.ok, false);
  assert.match(nss.output, /certutil -A .* -n leaf [\s\S]*SEC_ERROR_ADDING_CERT/, 'NSS fails only where it fails for any Ed25519 certificate: importing it');
  t.diagnostic('nss: this NSS cannot import Ed25519 certificates (an openssl-made control fails the same way); Go and GnuTLS verified it');
}

describe('interop: certificates from openssl CSRs', () => {
  let env: TestEnv;
  let server: RunningServer;
  let rootPath: string;
  let rootPem: string;

  before(async () => {
    env = await createTestEnv();
    server = await startServer(env.env);
    const cas = (await api(server, 'GET', '/api/v1/cas')).json.items as any[];
    const root = cas.find((c) => c.parentId === null);
    // The root as a relying party fetches it: DER from the public PKI endpoint, converted by openssl.
    const res = await fetch(`${server.url}/pki/${root.id}.crt`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/pkix-cert');
    const der = Buffer.from(await res.arrayBuffer());
    assert.equal(createHash('sha256').update(der).digest('hex'), root.fingerprint);
    rootPath = tmp.file('root.pem');
    ossl(['x509', '-inform', 'DER', '-in', tmp.file('root.der', der), '-out', rootPath]);
    rootPem = readFileSync(rootPath, 'utf8');
  });
  after(async () => {
    await server?.stop();
    await env?.cleanup();
    tmp.remove();
  });

  async function issue(profile: string, type: KeyType, subj: string, san: string) {
    const { keyPath, csr } = keyAndCsr(type, subj, san);
    const r = await api(server, 'POST', '/api/v1/certificates', { csr, profile });
    assert.equal(r.status, 201, r.text);
    const n = ++fileNo;
    return {
      keyPath,
      leaf: r.json.certificate as string,
      chain: r.json.chain as string,
      leafPath: tmp.file(`leaf-${n}.pem`, r.json.certificate),
      chainPath: tmp.file(`chain-${n}.pem`, r.json.chain),
    };
  }

  const verify = (leafPath: string, chainPath: string, ...extra: string[]) =>
    openssl(['verify', '-x509_strict', ...extra, '-CAfile', rootPath, '-untrusted', chainPath, leafPath]);

  for (const type of ['rsa2048', 'p256', 'p384', 'ed25519'] as const) {
    test(`${type}: openssl verify, Go/GnuTLS/NSS, and a TLS handshake between s_server and s_client`, async (t) => {
      const name = `${type}.interop.localhost`;
      const c = await issue('server', type, `/CN=${name}`, `DNS:${name},IP:127.0.0.1`);

      const byName = verify(c.leafPath, c.chainPath, '-purpose', 'sslserver', '-verify_hostname', name);
      assert.equal(byName.status, 0, byName.stdout + byName.stderr);
      assert.match(byName.stdout, /: OK\n$/);
      const byIp = verify(c.leafPath, c.chainPath, '-purpose', 'sslserver', '-verify_ip', '127.0.0.1');
      assert.equal(byIp.status, 0, byIp.stdout + byIp.stderr);
      // The checks are real: another host name, or no chain, fails.
      const wrongName = verify(c.leafPath, c.chainPath, '-purpose', 'sslserver', '-verify_hostname', 'other.interop.localhost');
      assert.notEqual(wrongName.status, 0);
      assert.match(wrongName.stdout + wrongName.stderr, /hostname mismatch/);
      const noChain = openssl(['verify', '-x509_strict', '-CAfile', rootPath, c.leafPath]);
      assert.notEqual(noChain.status, 0);

      assertStrictlyValidFor(t, type, { roots: [rootPem], intermediates: [c.chain], leaf: c.leaf, dns: name, ip: '127.0.0.1', eku: 'server' });

      const tls = await startTlsServer({ cert: c.leafPath, key: c.keyPath, chain: c.chainPath, connections: 2 });
      try {
        const ok = await run('openssl', [
          's_client',
          '-connect',
          `127.0.0.1:${tls.port}`,
          '-servername',
          name,
          '-verify_return_error',
          '-verify_hostname',
          name,
          '-CAfile',
          rootPath,
        ]);
        assert.equal(ok.status, 0, ok.output);
        assert.match(ok.output, /Verify return code: 0 \(ok\)/);
        assert.match(ok.output, new RegExp(`Certificate chain\\n 0 s:CN ?= ?${name.replace(/\./g, '\\.')}\\n`));
        // The same server under a name the certificate does not carry: the client refuses.
        const bad = await run('openssl', [
          's_client',
          '-connect',
          `127.0.0.1:${tls.port}`,
          '-verify_return_error',
          '-verify_hostname',
          'other.interop.localhost',
          '-CAfile',
          rootPath,
        ]);
        assert.notEqual(bad.status, 0, bad.output);
        assert.match(bad.output, /Verify return code: 62 \(hostname mismatch\)|verify error:num=62:hostname mismatch/);
      } finally {
        await tls.stop();
      }
    });
  }

  test('profile client: verifies for sslclient (and strict verifiers, client EKU), not for sslserver', async (t) => {
    const c = await issue('client', 'p256', '/CN=svc-client.interop.localhost', 'DNS:svc-client.interop.localhost,email:svc@interop.localhost');
    const ok = verify(c.leafPath, c.chainPath, '-purpose', 'sslclient');
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /: OK\n$/);
    const asServer = verify(c.leafPath, c.chainPath, '-purpose', 'sslserver');
    assert.notEqual(asServer.status, 0, 'a clientAuth-only certificate is not a TLS server certificate');
    assert.match(asServer.stdout + asServer.stderr, /unsuitable certificate purpose/);
    assertStrictlyValid(t, { roots: [rootPem], intermediates: [c.chain], leaf: c.leaf, eku: 'client' });
  });

  test('profile peer: verifies for both sslserver and sslclient', async (t) => {
    const name = 'peer.interop.localhost';
    const c = await issue('peer', 'p384', `/CN=${name}`, `DNS:${name},IP:127.0.0.1`);
    for (const purpose of ['sslserver', 'sslclient']) {
      const r = verify(c.leafPath, c.chainPath, '-purpose', purpose, '-verify_hostname', name);
      assert.equal(r.status, 0, `${purpose}: ${r.stdout}${r.stderr}`);
    }
    assertStrictlyValid(t, { roots: [rootPem], intermediates: [c.chain], leaf: c.leaf, dns: name, eku: 'server' });
    assertStrictlyValid(t, { roots: [rootPem], intermediates: [c.chain], leaf: c.leaf, eku: 'client' });
  });
});
