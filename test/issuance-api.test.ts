/**
 * Issue 3 over HTTP: a real `signet serve` (SQLite, or PostgreSQL under SIGNET_TEST_POSTGRES)
 * issues, refuses, renews and lists certificates. Every refusal is checked to be a precise
 * problem+json, to store nothing and to leave the service answering.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { api, startServer, type RunningServer } from './helpers/cli.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';
import { openssl, TempDir } from './helpers/openssl.js';
import { countRows, sql } from './helpers/sql.js';
import { rowMacs } from './helpers/integrity.js';
import { loadProfiles } from '../src/ca/profiles.js';
import { throwsProblem } from './helpers/problems.js';

// ---------------------------------------------------------------------------------------------
// Helpers: CSRs made by the real openssl CLI, fixtures, database checks

const tmp = new TempDir();
after(() => tmp.remove());
let fileNo = 0;

function ossl(args: string[], input?: string): string {
  const r = openssl(args, input);
  assert.equal(r.status, 0, `openssl ${args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout;
}

type KeyType = 'p256' | 'p384' | 'rsa2048' | 'ed25519';
const KEYGEN: Record<KeyType, string[]> = {
  p256: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'],
  p384: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384'],
  rsa2048: ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'],
  ed25519: ['-algorithm', 'ED25519'],
};

function newKey(type: KeyType = 'p256'): string {
  const path = tmp.file(`key-${++fileNo}.pem`);
  ossl(['genpkey', ...KEYGEN[type], '-out', path]);
  return path;
}

let sharedKey: string | undefined;
/** A PEM CSR from `openssl req -new`; san is the subjectAltName value, e.g. "DNS:a.example,IP:10.0.0.1". */
function makeCsr(o: { san?: string; subj?: string; key?: string } = {}): string {
  const key = o.key ?? (sharedKey ??= newKey());
  const out = tmp.file(`csr-${++fileNo}.pem`);
  ossl(['req', '-new', '-key', key, '-subj', o.subj ?? '/', ...(o.san ? ['-addext', `subjectAltName=${o.san}`] : []), '-out', out]);
  return readFileSync(out, 'utf8');
}

function csrDer(pem: string): Buffer {
  const inp = tmp.file(`der-in-${++fileNo}.pem`, pem);
  const out = tmp.file(`der-out-${fileNo}.der`);
  ossl(['req', '-in', inp, '-outform', 'DER', '-out', out]);
  return readFileSync(out);
}

const fixture = (name: string): Buffer => readFileSync(new URL(`../certs-fixtures/${name}`, import.meta.url));
const fixturePem = (name: string): string => fixture(name).toString('utf8');

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const pemBody = (pem: string): Buffer => Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
const spkiOf = (pem: string): Buffer => new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' });

/** `openssl x509 -text` of a PEM certificate. */
function certText(pem: string): string {
  return ossl(['x509', '-noout', '-text', '-in', tmp.file(`cert-${++fileNo}.pem`, pem)]);
}

/** Names of the extensions in `openssl x509 -text` output, with their criticality. */
function extensionNames(text: string): string[] {
  const section = text.split('X509v3 extensions:')[1]!.split('Signature Algorithm:')[0]!;
  return [...section.matchAll(/^ {12}(\S[^:\n]*): ?(critical)? *$/gm)].map((m) => `${m[1]}${m[2] ? ' critical' : ''}`).sort();
}

async function auditHead(env: TestEnv): Promise<number> {
  const [row] = await sql<{ s: number | string | null }>(env, 'SELECT MAX(seq) AS s FROM "AuditEvent"');
  return Number(row?.s ?? 0);
}

/**
 * Nothing was signed: since `sinceSeq` the audit trail gained no certificate event, only (if
 * Signet audits that kind of refusal) a request.refused event carrying the problem's detail.
 */
async function assertNothingSigned(env: TestEnv, sinceSeq: number, detail: string): Promise<void> {
  const events = await sql(env, 'SELECT action, outcome, details FROM "AuditEvent" WHERE seq > ? ORDER BY seq', [sinceSeq]);
  for (const e of events) {
    assert.equal(e.action, 'request.refused', `unexpected audit event ${e.action} after a refused request`);
    assert.equal(e.outcome, 'refused');
    assert.equal(JSON.parse(e.details).detail, detail.slice(0, 500));
  }
}

async function certRow(env: TestEnv, serial: string) {
  const [row] = await sql(env, 'SELECT * FROM "Certificate" WHERE serial = ?', [serial]);
  return row as Record<string, any> | undefined;
}

async function assertStillServing(server: RunningServer): Promise<void> {
  const r = await fetch(`${server.url}/healthz`);
  assert.equal(r.status, 200, 'the service still answers /healthz');
}

const PROBLEM = 'application/problem+json; charset=utf-8';

function assertProblem(r: Awaited<ReturnType<typeof api>>, status: number, detail: RegExp): void {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.text}`);
  assert.equal(r.headers.get('content-type'), PROBLEM);
  assert.equal(r.json?.status, status);
  assert.ok(typeof r.json.type === 'string' && r.json.type.length > 0, 'problem has a type');
  assert.ok(typeof r.json.title === 'string' && r.json.title.length > 0, 'problem has a title');
  assert.match(r.json.detail, detail);
}

const DAY = 86_400_000;

/** Extra profiles: an allow-listed one and one with a long maximum, to reach past the issuer. */
function profilesFile(): string {
  return tmp.file(
    'profiles.json',
    JSON.stringify({
      internal: {
        description: 'internal names only',
        requireSan: true,
        sanTypes: ['dns', 'ip'],
        dnsSuffixes: ['corp.example'],
        ipRanges: ['10.0.0.0/8'],
        defaultValidityDays: 30,
        maxValidityDays: 90,
        extKeyUsage: ['serverAuth'],
        maxSans: 3,
      },
      long: { description: 'long-lived', requireSan: true, defaultValidityDays: 90, maxValidityDays: 3650, extKeyUsage: ['serverAuth'] },
    }),
  );
}

async function hierarchy(server: RunningServer) {
  const cas = (await api(server, 'GET', '/api/v1/cas')).json.items as any[];
  const root = cas.find((c) => c.parentId === null);
  const int = cas.find((c) => c.parentId === root.id);
  const rootDetail = (await api(server, 'GET', `/api/v1/cas/${root.id}`)).json;
  const intDetail = (await api(server, 'GET', `/api/v1/cas/${int.id}`)).json;
  return { root: rootDetail, int: intDetail };
}

// ---------------------------------------------------------------------------------------------

describe('issuing certificates', () => {
  let env: TestEnv;
  let server: RunningServer;
  let ca: Awaited<ReturnType<typeof hierarchy>>;
  let adminTokenId: string;
  const PUBLIC_URL = 'http://pki.signet.test:8080';

  before(async () => {
    env = await createTestEnv({ SIGNET_PROFILES_FILE: profilesFile(), SIGNET_PUBLIC_URL: PUBLIC_URL });
    server = await startServer(env.env);
    ca = await hierarchy(server);
    const [tok] = await sql(env, 'SELECT id FROM "ApiToken" WHERE "secretHash" = ?', [rowMacs(env).tokenSecretHash(server.token)]);
    adminTokenId = tok.id;
  });
  after(async () => {
    await server?.stop();
    await env?.cleanup();
  });

  const encodings: [string, (pem: string) => string][] = [
    ['PEM CERTIFICATE REQUEST', (pem) => pem],
    ['PEM NEW CERTIFICATE REQUEST', (pem) => pem.replace(/-----(BEGIN|END) CERTIFICATE REQUEST-----/g, '-----$1 NEW CERTIFICATE REQUEST-----')],
    ['base64 DER', (pem) => csrDer(pem).toString('base64')],
  ];
  for (const [label, encode] of encodings) {
    test(`a ${label} CSR for profile server: 201 with the certificate, the intermediate as chain, stored with its audit event`, async () => {
      const name = `${label.toLowerCase().replace(/[^a-z0-9]+/g, '-')}.example.com`;
      const pem = makeCsr({ subj: `/CN=${name}`, san: `DNS:${name},IP:10.1.2.3` });
      const csr = encode(pem);
      const before = Date.now();
      const r = await api(server, 'POST', '/api/v1/certificates', { csr, profile: 'server' });
      assert.equal(r.status, 201, r.text);
      assert.match(r.headers.get('content-type')!, /^application\/json/);
      assert.deepEqual(Object.keys(r.json).sort(), ['caId', 'certificate', 'chain', 'notAfter', 'notBefore', 'profile', 'serial']);
      const { serial, certificate, chain, profile, caId } = r.json;
      assert.match(serial, /^[0-7][0-9a-f]{31}$/, '16 random bytes, positive');
      assert.equal(r.headers.get('location'), `/api/v1/certificates/${serial}`);
      assert.equal(profile, 'server');
      assert.equal(caId, ca.int.id);

      // chain = the issuer up to, not including, the root: here exactly the intermediate.
      assert.equal((chain.match(/-----BEGIN CERTIFICATE-----/g) ?? []).length, 1);
      assert.equal(chain.trim(), ca.int.certificate.trim());

      const x = new X509Certificate(certificate);
      const issuer = new X509Certificate(ca.int.certificate);
      assert.equal(x.serialNumber.toLowerCase(), serial);
      assert.ok(x.checkIssued(issuer) && x.verify(issuer.publicKey), 'signed by the intermediate');
      assert.equal(x.ca, false);
      assert.equal(x.subject, `CN=${name}`);
      assert.equal(x.subjectAltName, `DNS:${name}, IP Address:10.1.2.3`);
      assert.ok(spkiOf(certificate).equals(csrPublicKey(pem)), 'the CSR key is certified');
      assert.equal(new Date(r.json.notBefore).getTime(), new Date(x.validFrom).getTime());
      assert.equal(new Date(r.json.notAfter).getTime(), new Date(x.validTo).getTime());
      assert.ok(new Date(r.json.notBefore).getTime() <= before);

      // AIA, CRL DP from SIGNET_PUBLIC_URL; AKI = the intermediate's SKI.
      const text = certText(certificate);
      assert.match(text, new RegExp(`OCSP - URI:${PUBLIC_URL}/ocsp`));
      assert.match(text, new RegExp(`CA Issuers - URI:${PUBLIC_URL}/pki/${ca.int.id}\\.crt`));
      assert.match(text, new RegExp(`URI:${PUBLIC_URL}/pki/${ca.int.id}\\.crl`));
      const aki = ca.int.subjectKeyId.toUpperCase().match(/../g).join(':');
      assert.match(text, new RegExp(`Authority Key Identifier: *\\n\\s+(keyid:)?${aki}`));

      // Stored with everything the history needs, in the same transaction as its audit event.
      const row = await certRow(env, serial);
      assert.ok(row, 'the certificate is stored');
      const der = Buffer.from(row.der);
      assert.ok(der.equals(pemBody(certificate)), 'stored DER is the returned certificate');
      assert.equal(row.fingerprint, sha256(der));
      assert.equal(row.csrHash, sha256(csrDer(pem)));
      assert.equal(row.tokenId, adminTokenId);
      assert.equal(row.profile, 'server');
      assert.equal(row.caId, ca.int.id);
      assert.equal(row.status, 'good');
      assert.equal(row.subject, `CN=${name}`);
      assert.deepEqual(JSON.parse(row.sans), [
        { type: 'dns', value: name },
        { type: 'ip', value: '10.1.2.3' },
      ]);
      const events = await sql(env, 'SELECT * FROM "AuditEvent" WHERE action = ? AND target = ?', ['certificate.issued', serial]);
      assert.equal(events.length, 1);
      assert.equal(events[0].actor, `token:${adminTokenId}`);
      assert.equal(JSON.parse(events[0].details).fingerprint, row.fingerprint);
    });
  }

  test('a CSR asking for CA:TRUE and keyCertSign still gets a leaf: only the profile decides the extensions', async () => {
    const r = await api(server, 'POST', '/api/v1/certificates', { csr: fixturePem('csr-ca-true-requested.pem'), profile: 'server' });
    assert.equal(r.status, 201, r.text);
    const text = certText(r.json.certificate);
    assert.match(text, /X509v3 Basic Constraints: critical\n\s+CA:FALSE\n/);
    assert.match(text, /X509v3 Key Usage: critical\n\s+Digital Signature\n/, 'an ECDSA leaf: digitalSignature only');
    assert.doesNotMatch(text, /Certificate Sign|CRL Sign/);
    assert.match(text, /X509v3 Extended Key Usage: *\n\s+TLS Web Server Authentication\n/, 'only the profile EKU');
    // Exactly the extensions Signet decides; nothing the CSR asked for leaked in.
    assert.deepEqual(extensionNames(text), [
      'Authority Information Access',
      'X509v3 Authority Key Identifier',
      'X509v3 Basic Constraints critical',
      'X509v3 CRL Distribution Points',
      'X509v3 Extended Key Usage',
      'X509v3 Key Usage critical',
      'X509v3 Subject Alternative Name',
      'X509v3 Subject Key Identifier',
    ]);
    // The subject is the CN only: O=Mallory from the request is not copied.
    assert.match(text, /Subject: CN *= *evil\.example\.com\n/);
    assert.doesNotMatch(text, /Mallory/);
    assert.equal(new X509Certificate(r.json.certificate).ca, false);
  });

  test('validity: default 90 days; validityDays 30 gives now+30d; notBefore backdated at most a minute', async () => {
    for (const [validityDays, days] of [
      [undefined, 90],
      [30, 30],
      [1, 1],
      [397, 397],
    ] as const) {
      const t0 = Date.now();
      const r = await api(server, 'POST', '/api/v1/certificates', {
        csr: makeCsr({ san: 'DNS:validity.example.com' }),
        profile: 'server',
        ...(validityDays ? { validityDays } : {}),
      });
      const t1 = Date.now();
      assert.equal(r.status, 201, r.text);
      const nb = new Date(r.json.notBefore).getTime();
      const na = new Date(r.json.notAfter).getTime();
      // Signet truncates both to whole seconds (DER UTCTime/GeneralizedTime carry no fractions).
      assert.ok(nb >= Math.floor((t0 - 60_000) / 1000) * 1000 && nb <= t1, `notBefore ${r.json.notBefore} is at most a minute before the request`);
      assert.ok(nb <= t0, 'notBefore is backdated, not in the future');
      assert.ok(na >= Math.floor((t0 + days * DAY) / 1000) * 1000 && na <= t1 + days * DAY, `notAfter ${r.json.notAfter} ≈ now + ${days}d`);
      const x = new X509Certificate(r.json.certificate);
      assert.equal(new Date(x.validTo).getTime(), na);
    }
  });

  test('a profile with a large maximum is still clamped to the issuer when validityDays is not given', async () => {
    // Profile long: default 90 (inside the issuer), max 3650 (past it). 1000 days is allowed when inside the issuer.
    const r = await api(server, 'POST', '/api/v1/certificates', { csr: makeCsr({ san: 'DNS:long.example.com' }), profile: 'long', validityDays: 1000 });
    assert.equal(r.status, 201, r.text);
    assert.ok(new Date(r.json.notAfter) <= new Date(ca.int.notAfter));
  });

  test('profile allow-list: names inside it are issued', async () => {
    const r = await api(server, 'POST', '/api/v1/certificates', {
      csr: makeCsr({ san: 'DNS:db.corp.example,DNS:corp.example,IP:10.20.30.40' }),
      profile: 'internal',
    });
    assert.equal(r.status, 201, r.text);
    assert.equal(new Date(r.json.notAfter).getTime() - new Date(r.json.notBefore).getTime() <= 30 * DAY + 61_000, true, 'profile default 30 days');
  });

  // -------------------------------------------------------------------------------------------
  // Bad input: one test each. 4xx problem+json with a precise detail, nothing stored, still serving.

  type Body = unknown | (() => unknown);
  interface BadCase {
    name: string;
    body: Body;
    status: number;
    detail: RegExp;
    headers?: Record<string, string>;
  }
  const issue =
    (csr: () => string, extra: Record<string, unknown> = {}) =>
    () => ({ csr: csr(), profile: 'server', ...extra });
  const fx = (name: string) => () => fixturePem(name);
  const nameCsr = (dns: string) => () => makeCsr({ san: `DNS:${dns}` });
  const manySans = (n: number) => Array.from({ length: n }, (_, i) => `DNS:n${i}.many.example`).join(',');
  const L63 = 'a'.repeat(63);
  const NAME_254 = `${L63}.${L63}.${L63}.${'b'.repeat(60)}.x`;
  assert.equal(NAME_254.length, 254);

  const cases: BadCase[] = [
    // Not a CSR at all.
    {
      name: 'garbage text',
      body: issue(fx('csr-garbage.txt')),
      status: 400,
      detail: /^CSR is not valid base64 \(expected a PEM CERTIFICATE REQUEST, base64 DER or DER bytes\)$/,
    },
    { name: 'empty csr field', body: { csr: '', profile: 'server' }, status: 400, detail: /^csr: must not be empty$/ },
    {
      name: 'a certificate (base64 DER) instead of a CSR',
      body: () => ({ csr: pemBody(ca.int.certificate).toString('base64'), profile: 'server' }),
      status: 400,
      // A certificate's tbsCertificate starts with [0] version and has 7 or more elements.
      detail:
        /^truncated or malformed DER: certificationRequestInfo is not SEQUENCE \{ INTEGER, Name, SubjectPublicKeyInfo, \[0\] attributes \} \(tags a0,2,30,30,30,30,30(,a3)?\) at offset 4$/,
    },
    {
      name: 'truncated DER',
      body: issue(() => fixture('csr-truncated.der').toString('base64')),
      status: 400,
      detail: /^truncated or malformed DER: truncated DER/,
    },
    {
      name: 'DER with trailing bytes',
      body: issue(() => fixture('csr-trailing-bytes.der').toString('base64')),
      status: 400,
      detail: /^truncated or malformed DER: 2 trailing bytes after the CertificationRequest SEQUENCE$/,
    },
    {
      name: 'PEM with the wrong label (CERTIFICATE)',
      body: issue(fx('csr-wrong-label-certificate.pem')),
      status: 400,
      detail: /^PEM label 'CERTIFICATE' is not a certificate request \(expected 'CERTIFICATE REQUEST'\)$/,
    },
    {
      name: 'two PEM blocks',
      body: issue(() => makeCsr({ san: 'DNS:a.example.com' }) + makeCsr({ san: 'DNS:b.example.com' })),
      status: 400,
      detail: /^expected one CERTIFICATE REQUEST PEM block, found 2$/,
    },
    // Proof of possession and keys.
    {
      name: 'signature does not verify',
      body: issue(fx('csr-bad-signature.pem')),
      status: 400,
      detail: /^CSR signature does not verify \(proof of possession failed\)$/,
    },
    {
      name: 'SHA-1 signature',
      body: issue(fx('csr-sha1-signature.pem')),
      status: 400,
      detail: /^signature algorithm sha1WithRSAEncryption \(1\.2\.840\.113549\.1\.1\.5\) is not supported/,
    },
    { name: 'RSA 1024', body: issue(fx('csr-rsa-1024-weak.pem')), status: 400, detail: /^RSA key of 1024 bits is too weak; use 2048 to 8192 bits$/ },
    {
      name: 'RSA 8704',
      body: issue(fx('csr-rsa-8704-too-large.pem')),
      status: 400,
      detail: /^RSA key of 8704 bits is too large; Signet accepts 2048 to 8192 bits$/,
    },
    {
      name: 'DSA',
      body: issue(fx('csr-dsa.pem')),
      status: 400,
      detail: /^DSA keys are not supported; use RSA 2048–8192, ECDSA P-256\/P-384\/P-521, Ed25519, ML-DSA-44\/65\/87 or SLH-DSA-SHA2-128s$/,
    },
    { name: 'secp256k1', body: issue(fx('csr-secp256k1.pem')), status: 400, detail: /^ECDSA curve secp256k1 is not supported; use P-256, P-384 or P-521$/ },
    {
      name: 'brainpoolP256r1',
      body: issue(fx('csr-brainpoolp256r1.pem')),
      status: 400,
      detail: /^ECDSA curve brainpoolP256r1 is not supported; use P-256, P-384 or P-521$/,
    },
    { name: 'Ed448', body: issue(fx('csr-ed448.pem')), status: 400, detail: /^Ed448 keys are not supported; use RSA 2048–8192/ },
    // Names: outside the profile allow-list.
    {
      name: 'DNS name outside the profile allow-list',
      body: () => ({ csr: makeCsr({ san: 'DNS:www.example.com' }), profile: 'internal' }),
      status: 400,
      detail: /^DNS name 'www\.example\.com' is not allowed by this profile; allowed DNS suffixes: corp\.example$/,
    },
    {
      name: 'DNS name that only ends in the allowed suffix text',
      body: () => ({ csr: makeCsr({ san: 'DNS:evilcorp.example' }), profile: 'internal' }),
      status: 400,
      detail: /^DNS name 'evilcorp\.example' is not allowed by this profile; allowed DNS suffixes: corp\.example$/,
    },
    {
      name: 'IP address outside the profile allow-list',
      body: () => ({ csr: makeCsr({ san: 'DNS:a.corp.example,IP:192.168.1.1' }), profile: 'internal' }),
      status: 400,
      detail: /^IP address '192\.168\.1\.1' is not allowed by this profile; allowed IP ranges: 10\.0\.0\.0\/8$/,
    },
    {
      name: 'email SAN on server',
      body: issue(fx('csr-ec-p256.pem')),
      status: 400,
      detail: /^profile server does not allow email subjectAltNames \(allowed: dns, ip\)$/,
    },
    {
      name: 'otherName SAN',
      body: () => ({ csr: fixturePem('csr-san-othername.pem'), profile: 'client' }),
      status: 400,
      detail: /^subjectAltName contains an entry of type otherName; Signet issues only dNSName, iPAddress, rfc822Name and uniformResourceIdentifier SANs$/,
    },
    // Names: malformed. openssl encodes each of these as written, so they reach the server unchanged.
    {
      name: 'wildcard not the whole leftmost label: *.*.x',
      body: issue(nameCsr('*.*.x')),
      status: 400,
      detail: /^DNS name '\*\.\*\.x': a wildcard is only allowed as the whole leftmost label \('\*\.example\.com'\); '\*' is not allowed$/,
    },
    {
      name: 'partial wildcard label: w*.example.com',
      body: issue(nameCsr('w*.example.com')),
      status: 400,
      detail: /^DNS name 'w\*\.example\.com': a wildcard is only allowed as the whole leftmost label/,
    },
    { name: 'empty label: a..b', body: issue(nameCsr('a..b')), status: 400, detail: /^DNS name 'a\.\.b' has an empty label$/ },
    { name: 'leading hyphen: -a.x', body: issue(nameCsr('-a.x')), status: 400, detail: /^label '-a' in DNS name '-a\.x' starts with a hyphen$/ },
    {
      name: 'trailing dot',
      body: issue(nameCsr('www.example.com.')),
      status: 400,
      detail: /^DNS name 'www\.example\.com\.' has a trailing dot; write it without one \('www\.example\.com'\)$/,
    },
    {
      name: 'upper-case DNS name',
      body: issue(fx('csr-uppercase-dns-san.pem')),
      status: 400,
      detail: /^DNS name 'WWW\.Example\.com' must be lower-case: use 'www\.example\.com'$/,
    },
    {
      name: '64-character label',
      body: issue(nameCsr(`${'a'.repeat(64)}.example.com`)),
      status: 400,
      detail: /^label 'a{20}…' in DNS name 'a{64}\.example\.com' is 64 characters long; the limit is 63$/,
    },
    { name: '254-character name', body: issue(nameCsr(NAME_254)), status: 400, detail: /^DNS name 'a{63}\.a{36}…' is 254 characters long; the limit is 253$/ },
    {
      name: 'IP address in a DNS SAN',
      body: issue(fx('csr-ip-in-dns-san.pem')),
      status: 400,
      detail: /^DNS name '10\.0\.0\.1' is an IP address; put IP addresses in an iPAddress SAN$/,
    },
    {
      name: 'unicode name not in A-label form',
      body: issue(nameCsr('bücher.example')),
      status: 400,
      detail: /^DNS name 'bücher\.example' contains non-ASCII characters; internationalized names must be written as A-labels: use 'xn--bcher-kva\.example'$/,
    },
    {
      name: 'CN that is not among the SANs',
      body: issue(fx('csr-cn-not-in-san.pem')),
      status: 400,
      detail: /^subject commonName 'other\.example\.com' is not one of the subjectAltNames \(www\.example\.com\); add it as a SAN or omit the CN$/,
    },
    {
      name: 'no SAN on profile server',
      body: issue(fx('csr-no-san.pem')),
      status: 400,
      detail: /^profile server requires at least one subjectAltName; the CSR has none$/,
    },
    // Names: how many, and each once (issue 12 #13).
    {
      name: 'the same DNS name twice',
      body: issue(() => makeCsr({ san: 'DNS:a.example.com,DNS:b.example.com,DNS:a.example.com' })),
      status: 400,
      detail: /^subjectAltName DNS name 'a\.example\.com' appears more than once; list each name once$/,
    },
    {
      name: '300 identical DNS names',
      body: issue(() => makeCsr({ san: Array(300).fill('DNS:same.example.com').join(',') })),
      status: 400,
      detail: /^the CSR has 300 subjectAltNames; profile server allows at most 100$/,
    },
    {
      name: 'the same IP address in two spellings',
      body: issue(() => makeCsr({ san: 'IP:2001:db8::1,IP:2001:0db8:0:0:0:0:0:1' })),
      status: 400,
      detail: /^subjectAltName IP address '2001:db8::1' appears more than once; list each name once$/,
    },
    {
      name: 'the same IPv4 address twice',
      body: issue(() => makeCsr({ san: 'DNS:a.example.com,IP:10.1.2.3,IP:10.1.2.3' })),
      status: 400,
      detail: /^subjectAltName IP address '10\.1\.2\.3' appears more than once/,
    },
    {
      name: '101 SANs (the default maxSans is 100)',
      body: issue(() => makeCsr({ san: manySans(101) })),
      status: 400,
      detail: /^the CSR has 101 subjectAltNames; profile server allows at most 100$/,
    },
    {
      name: '4 SANs on a profile with maxSans 3',
      body: () => ({ csr: makeCsr({ san: 'DNS:a.corp.example,DNS:b.corp.example,DNS:c.corp.example,DNS:d.corp.example' }), profile: 'internal' }),
      status: 400,
      detail: /^the CSR has 4 subjectAltNames; profile internal allows at most 3$/,
    },
    // Profile, CA and validity.
    {
      name: 'unknown profile',
      body: () => ({ csr: makeCsr({ san: 'DNS:a.example.com' }), profile: 'nope' }),
      status: 400,
      detail: /^unknown profile "nope"; available: server, client, peer, group-member, internal, long$/,
    },
    {
      name: 'unknown CA',
      body: issue(() => makeCsr({ san: 'DNS:a.example.com' }), { caId: 'int-0000000000' }),
      status: 404,
      detail: /^CA int-0000000000 does not exist$/,
    },
    {
      name: 'validityDays 0',
      body: issue(() => makeCsr({ san: 'DNS:a.example.com' }), { validityDays: 0 }),
      status: 400,
      detail: /^validityDays must be a whole number of at least 1 \(got 0\)$/,
    },
    {
      name: 'validityDays -1',
      body: issue(() => makeCsr({ san: 'DNS:a.example.com' }), { validityDays: -1 }),
      status: 400,
      detail: /^validityDays must be a whole number of at least 1 \(got -1\)$/,
    },
    {
      name: 'validityDays 1.5',
      body: issue(() => makeCsr({ san: 'DNS:a.example.com' }), { validityDays: 1.5 }),
      status: 400,
      detail: /^validityDays must be a whole number of at least 1 \(got 1\.5\)$/,
    },
    {
      name: 'validityDays as a string',
      body: issue(() => makeCsr({ san: 'DNS:a.example.com' }), { validityDays: '30' }),
      status: 400,
      detail: /^validityDays: Expected number, received string$/,
    },
    {
      name: 'validityDays above the profile maximum (400 > 397 for server)',
      body: issue(() => makeCsr({ san: 'DNS:a.example.com' }), { validityDays: 400 }),
      status: 400,
      detail: /^validityDays 400 exceeds profile server's maximum of 397$/,
    },
    {
      name: 'validityDays past the issuer (3000 days, profile max 3650, intermediate 5 years)',
      body: () => ({ csr: makeCsr({ san: 'DNS:a.example.com' }), profile: 'long', validityDays: 3000 }),
      status: 400,
      detail: /^validityDays 3000 would end after the issuing CA int-[0-9a-f]{10} expires \(\d{4}-\d\d-\d\dT[0-9:.]+Z\)$/,
    },
    // The request itself.
    {
      name: 'body over the size limit',
      body: () => JSON.stringify({ csr: 'A'.repeat(70_000), profile: 'server' }),
      status: 413,
      detail: /^request body exceeds the 65536 byte limit$/,
    },
    {
      name: 'wrong content type',
      body: () => `csr=${encodeURIComponent(makeCsr({ san: 'DNS:a.example.com' }))}&profile=server`,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      status: 415,
      detail: /^Content-Type must be application\/json \(got application\/x-www-form-urlencoded\)$/,
    },
    { name: 'malformed JSON', body: '{"csr": "x", "profile": ', status: 400, detail: /^request body is not valid JSON/ },
    { name: 'JSON that is not an object', body: '["csr"]', status: 400, detail: /^request body: Expected object, received array$/ },
    {
      name: 'unknown JSON field',
      body: issue(() => makeCsr({ san: 'DNS:a.example.com' }), { keyUsage: ['keyCertSign'] }),
      status: 400,
      detail: /^request body: Unrecognized key\(s\) in object: 'keyUsage'$/,
    },
    { name: 'missing profile', body: () => ({ csr: makeCsr({ san: 'DNS:a.example.com' }) }), status: 400, detail: /^profile: Required$/ },
  ];

  for (const c of cases) {
    test(`refused: ${c.name}`, async () => {
      const certsBefore = await countRows(env, 'Certificate');
      const auditBefore = await auditHead(env);
      const body = typeof c.body === 'function' ? (c.body as () => unknown)() : c.body;
      const r = await api(server, 'POST', '/api/v1/certificates', body, c.headers);
      assertProblem(r, c.status, c.detail);
      assert.equal(await countRows(env, 'Certificate'), certsBefore, 'no certificate stored');
      await assertNothingSigned(env, auditBefore, r.json.detail);
      await assertStillServing(server);
    });
  }

  test('exactly maxSans distinct names are issued (100 on server, 3 on internal)', async () => {
    const r = await api(server, 'POST', '/api/v1/certificates', { csr: makeCsr({ san: manySans(100) }), profile: 'server' });
    assert.equal(r.status, 201, r.text.slice(0, 300));
    assert.equal(new X509Certificate(r.json.certificate).subjectAltName!.split(', ').length, 100);
    const three = await api(server, 'POST', '/api/v1/certificates', {
      csr: makeCsr({ san: 'DNS:a.corp.example,DNS:b.corp.example,IP:10.0.0.3' }),
      profile: 'internal',
    });
    assert.equal(three.status, 201, three.text);
  });

  test('after all the bad input the service still issues', async () => {
    const r = await api(server, 'POST', '/api/v1/certificates', { csr: makeCsr({ san: 'DNS:after.example.com' }), profile: 'server' });
    assert.equal(r.status, 201, r.text);
  });
});

// ---------------------------------------------------------------------------------------------

describe('name constraints on an intermediate', () => {
  let env: TestEnv;
  let server: RunningServer;
  let team: { id: string; certificate: string };
  let rootPem: string;

  before(async () => {
    env = await createTestEnv();
    server = await startServer(env.env);
    const { root } = await hierarchy(server);
    rootPem = root.certificate;
    const r = await api(server, 'POST', '/api/v1/cas', {
      parentId: root.id,
      subject: 'CN=Team Issuing CA,O=Signet',
      nameConstraints: { permittedDns: ['team.example'] },
    });
    assert.equal(r.status, 201, r.text);
    team = r.json;
  });
  after(async () => {
    await server?.stop();
    await env?.cleanup();
  });

  test('a name inside the permitted subtree is issued by the constrained CA', async () => {
    const r = await api(server, 'POST', '/api/v1/certificates', {
      csr: makeCsr({ subj: '/CN=a.team.example', san: 'DNS:a.team.example,DNS:team.example' }),
      profile: 'server',
      caId: team.id,
    });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.caId, team.id);
    assert.equal(r.json.chain.trim(), team.certificate.trim(), 'chain is the constrained intermediate');
    const v = openssl([
      'verify',
      '-x509_strict',
      '-purpose',
      'sslserver',
      '-CAfile',
      tmp.file('nc-root.pem', rootPem),
      '-untrusted',
      tmp.file('nc-chain.pem', r.json.chain),
      tmp.file('nc-leaf.pem', r.json.certificate),
    ]);
    assert.equal(v.status, 0, v.stdout + v.stderr);
  });

  const refused: [string, string, RegExp][] = [
    [
      'a name outside the permitted subtree',
      'DNS:evil.example',
      /^DNS name 'evil\.example' is outside the issuing CA's permitted name constraints \(team\.example\)$/,
    ],
    [
      'one bad name among good ones',
      'DNS:a.team.example,DNS:b.evil.example',
      /^DNS name 'b\.evil\.example' is outside the issuing CA's permitted name constraints \(team\.example\)$/,
    ],
    ['a name that merely ends in the same text', 'DNS:notteam.example', /^DNS name 'notteam\.example' is outside the issuing CA's permitted name constraints/],
  ];
  for (const [what, san, detail] of refused) {
    test(`refused before signing: ${what}`, async () => {
      const certsBefore = await countRows(env, 'Certificate');
      const auditBefore = await auditHead(env);
      const r = await api(server, 'POST', '/api/v1/certificates', { csr: makeCsr({ san }), profile: 'server', caId: team.id });
      assertProblem(r, 400, detail);
      assert.equal(await countRows(env, 'Certificate'), certsBefore, 'nothing stored');
      await assertNothingSigned(env, auditBefore, r.json.detail);
      await assertStillServing(server);
    });
  }

  test('the unconstrained default intermediate still issues evil.example', async () => {
    const r = await api(server, 'POST', '/api/v1/certificates', { csr: makeCsr({ san: 'DNS:evil.example' }), profile: 'server' });
    assert.equal(r.status, 201, r.text);
    assert.notEqual(r.json.caId, team.id);
  });
});

// ---------------------------------------------------------------------------------------------

describe('renewal', () => {
  let env: TestEnv;
  let server: RunningServer;
  let original: any;
  let originalKey: string;
  const SAN = 'DNS:svc.renew.example,DNS:alt.renew.example,IP:10.9.9.9';

  before(async () => {
    env = await createTestEnv();
    server = await startServer(env.env);
    originalKey = newKey();
    const r = await api(server, 'POST', '/api/v1/certificates', {
      csr: makeCsr({ key: originalKey, subj: '/CN=svc.renew.example', san: SAN }),
      profile: 'server',
      validityDays: 30,
    });
    assert.equal(r.status, 201, r.text);
    original = r.json;
  });
  after(async () => {
    await server?.stop();
    await env?.cleanup();
  });

  const sameNames = (a: string, b: string) => {
    const x = new X509Certificate(a);
    const y = new X509Certificate(b);
    assert.equal(y.subject, x.subject);
    assert.equal(y.subjectAltName, x.subjectAltName);
  };

  test('renew without a CSR: 201, new serial and validity, same names and key, linked to its predecessor', async () => {
    const r = await api(server, 'POST', `/api/v1/certificates/${original.serial}/renew`, {});
    assert.equal(r.status, 201, r.text);
    assert.notEqual(r.json.serial, original.serial);
    assert.match(r.json.serial, /^[0-7][0-9a-f]{31}$/);
    assert.equal(r.json.predecessorSerial, original.serial);
    assert.equal(r.json.profile, 'server');
    assert.equal(r.json.caId, original.caId);
    sameNames(original.certificate, r.json.certificate);
    assert.equal(new X509Certificate(r.json.certificate).subject, 'CN=svc.renew.example');
    assert.ok(spkiOf(r.json.certificate).equals(spkiOf(original.certificate)), 'same public key');
    // New validity from the profile default (90 days), not the original 30.
    assert.ok(new Date(r.json.notAfter).getTime() - new Date(r.json.notBefore).getTime() > 89 * DAY);
    const detail = await api(server, 'GET', `/api/v1/certificates/${r.json.serial}`);
    assert.equal(detail.status, 200);
    assert.equal(detail.json.predecessorSerial, original.serial);
    assert.equal(detail.json.status, 'good');
    const events = await sql(env, 'SELECT * FROM "AuditEvent" WHERE action = ? AND target = ?', ['certificate.renewed', r.json.serial]);
    assert.equal(events.length, 1);
    assert.equal(JSON.parse(events[0].details).predecessor, original.serial);
  });

  test('renew accepts the serial with colons and in upper case, and reports the canonical predecessor', async () => {
    const colons = original.serial.toUpperCase().match(/../g).join(':');
    const r = await api(server, 'POST', `/api/v1/certificates/${colons}/renew`, {});
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.predecessorSerial, original.serial);
    assert.equal((await api(server, 'GET', `/api/v1/certificates/${r.json.serial}`)).json.predecessorSerial, original.serial);
  });

  test('renew with a new CSR (rekey): a different key, the same names', async () => {
    const r = await api(server, 'POST', `/api/v1/certificates/${original.serial}/renew`, {
      csr: makeCsr({ key: newKey('rsa2048'), subj: '/CN=svc.renew.example', san: SAN }),
    });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.predecessorSerial, original.serial);
    sameNames(original.certificate, r.json.certificate);
    assert.ok(!spkiOf(r.json.certificate).equals(spkiOf(original.certificate)), 'a new public key');
    assert.equal(new X509Certificate(r.json.certificate).publicKey.asymmetricKeyType, 'rsa');
    const row = await certRow(env, r.json.serial);
    assert.equal(row!.predecessorSerial, original.serial);
    assert.equal(row!.keyAlgorithm, 'rsa-2048');
    assert.match(row!.csrHash, /^[0-9a-f]{64}$/);
    const events = await sql(env, 'SELECT action FROM "AuditEvent" WHERE target = ?', [r.json.serial]);
    assert.deepEqual(
      events.map((e) => e.action),
      ['certificate.rekeyed'],
    );
  });

  test('a rekey CSR with the same names in another order is accepted', async () => {
    const r = await api(server, 'POST', `/api/v1/certificates/${original.serial}/renew`, {
      csr: makeCsr({ key: newKey(), san: 'IP:10.9.9.9,DNS:alt.renew.example,DNS:svc.renew.example' }),
    });
    assert.equal(r.status, 201, r.text);
    sameNames(original.certificate, r.json.certificate);
  });

  const refusedRenewals: [string, () => { serial: string; body: unknown }, number, RegExp][] = [
    [
      'a rekey CSR asking for different names',
      () => ({ serial: original.serial, body: { csr: makeCsr({ key: newKey(), san: 'DNS:svc.renew.example,DNS:other.example' }) } }),
      400,
      /^a rekey keeps the certificate's names \(svc\.renew\.example, alt\.renew\.example, 10\.9\.9\.9\); the CSR asks for svc\.renew\.example, other\.example — issue a new certificate for different names$/,
    ],
    [
      'a rekey CSR with a weak key',
      () => ({ serial: original.serial, body: { csr: fixturePem('csr-rsa-1024-weak.pem') } }),
      400,
      /^RSA key of 1024 bits is too weak/,
    ],
    [
      'a rekey CSR whose signature does not verify',
      () => ({ serial: original.serial, body: { csr: fixturePem('csr-bad-signature.pem') } }),
      400,
      /^CSR signature does not verify \(proof of possession failed\)$/,
    ],
    [
      'an unknown serial',
      () => ({ serial: '0123456789abcdef0123456789abcdef', body: {} }),
      404,
      /^certificate 0123456789abcdef0123456789abcdef does not exist$/,
    ],
    ['a serial that is not hexadecimal', () => ({ serial: 'not-a-serial', body: {} }), 400, /^serial "not-a-serial" is not a hexadecimal serial number$/],
    [
      'an unknown body field',
      () => ({ serial: original.serial, body: { csr: undefined, validityDays: 10 } }),
      400,
      /^request body: Unrecognized key\(s\) in object: 'validityDays'$/,
    ],
  ];
  for (const [what, make, status, detail] of refusedRenewals) {
    test(`renewal refused: ${what}`, async () => {
      const certsBefore = await countRows(env, 'Certificate');
      const auditBefore = await auditHead(env);
      const { serial, body } = make();
      const r = await api(server, 'POST', `/api/v1/certificates/${serial}/renew`, body);
      assertProblem(r, status, detail);
      assert.equal(await countRows(env, 'Certificate'), certsBefore, 'nothing stored');
      await assertNothingSigned(env, auditBefore, r.json.detail);
      await assertStillServing(server);
    });
  }

  test('renewing a revoked certificate is refused with 409', async () => {
    // Revocation is not built yet: mark the row revoked directly.
    const r0 = await api(server, 'POST', '/api/v1/certificates', { csr: makeCsr({ san: 'DNS:revoked.renew.example' }), profile: 'server' });
    assert.equal(r0.status, 201, r0.text);
    await sql(env, `UPDATE "Certificate" SET status = 'revoked' WHERE serial = ?`, [r0.json.serial]);
    const certsBefore = await countRows(env, 'Certificate');
    for (const body of [{}, { csr: makeCsr({ key: newKey(), san: 'DNS:revoked.renew.example' }) }]) {
      const r = await api(server, 'POST', `/api/v1/certificates/${r0.json.serial}/renew`, body);
      assertProblem(r, 409, new RegExp(`^certificate ${r0.json.serial} is revoked and cannot be renewed; issue a new one$`));
    }
    assert.equal(await countRows(env, 'Certificate'), certsBefore, 'nothing stored');
    assert.equal((await api(server, 'GET', `/api/v1/certificates/${r0.json.serial}`)).json.status, 'revoked');
  });
});

// ---------------------------------------------------------------------------------------------

describe('inventory', () => {
  let env: TestEnv;
  let server: RunningServer;
  const issued: Record<string, any> = {};

  const get = (query: string) => api(server, 'GET', `/api/v1/certificates${query}`);
  const serialsOf = (r: Awaited<ReturnType<typeof api>>): string[] => {
    assert.equal(r.status, 200, r.text);
    return r.json.items.map((i: any) => i.serial).sort();
  };
  const serials = (...names: string[]) => names.map((n) => issued[n].serial).sort();

  before(async () => {
    env = await createTestEnv();
    server = await startServer(env.env);
    const plan: [string, string, string, number | undefined][] = [
      ['web1', 'server', 'DNS:web1.inv.example,IP:10.0.0.11', 30],
      ['web2', 'server', 'DNS:web2.inv.example', 30],
      ['api', 'server', 'DNS:api.inv.example,DNS:*.api.inv.example', undefined],
      ['alice', 'client', 'email:alice_ops@inv.example,DNS:alice.inv.example', undefined],
      ['bob', 'client', 'URI:spiffe://inv.example/bob', 60],
      ['peer', 'peer', 'DNS:peer.inv.example,IP:10.9.8.7', undefined],
    ];
    for (const [name, profile, san, validityDays] of plan) {
      const cn = san.startsWith('DNS:') ? san.slice(4).split(',')[0] : undefined;
      const r = await api(server, 'POST', '/api/v1/certificates', {
        csr: makeCsr({ san, ...(cn ? { subj: `/CN=${cn}` } : {}) }),
        profile,
        ...(validityDays ? { validityDays } : {}),
      });
      assert.equal(r.status, 201, `${name}: ${r.text}`);
      issued[name] = r.json;
    }
  });
  after(async () => {
    await server?.stop();
    await env?.cleanup();
  });

  test('lists every certificate, newest first', async () => {
    const r = await get('');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.nextCursor, null);
    assert.deepEqual(
      r.json.items.map((i: any) => i.serial),
      ['peer', 'bob', 'alice', 'api', 'web2', 'web1'].map((n) => issued[n].serial),
    );
  });

  test('filters: profile, status, san (names and domains), subject substring, expiresBefore, and combinations', async () => {
    assert.deepEqual(serialsOf(await get('?profile=client')), serials('alice', 'bob'));
    assert.deepEqual(serialsOf(await get('?profile=peer')), serials('peer'));
    assert.deepEqual(serialsOf(await get('?profile=nope')), []);
    assert.deepEqual(serialsOf(await get('?status=good')), serials('web1', 'web2', 'api', 'alice', 'bob', 'peer'));
    assert.deepEqual(serialsOf(await get('?status=revoked')), []);
    assert.deepEqual(serialsOf(await get('?status=expired')), []);
    // san: a name and every name under it (DNS names, email domains, URI hosts); an IP address,
    // email address or URI exactly; letters without case. Names, not substrings.
    assert.deepEqual(serialsOf(await get('?san=web2.inv.example')), serials('web2'));
    assert.deepEqual(serialsOf(await get('?san=WEB2.INV.EXAMPLE')), serials('web2'));
    assert.deepEqual(serialsOf(await get('?san=api.inv.example')), serials('api'));
    assert.deepEqual(serialsOf(await get('?san=*.api.inv.example')), serials('api'), 'the wildcard name itself');
    assert.deepEqual(serialsOf(await get('?san=*.inv.example')), [], 'no certificate names that wildcard');
    const everyone = serials('web1', 'web2', 'api', 'alice', 'bob', 'peer');
    assert.deepEqual(serialsOf(await get('?san=inv.example')), everyone, "DNS names, alice's email domain and bob's URI host are under inv.example");
    assert.deepEqual(serialsOf(await get('?san=.inv.example')), everyone);
    assert.deepEqual(serialsOf(await get('?san=example')), everyone);
    assert.deepEqual(serialsOf(await get('?san=10.9.8.7')), serials('peer'));
    assert.deepEqual(serialsOf(await get('?san=10.9.8')), []);
    assert.deepEqual(serialsOf(await get('?san=alice_ops%40inv.example')), serials('alice'));
    assert.deepEqual(serialsOf(await get('?san=ALICE_OPS%40INV.EXAMPLE')), serials('alice'));
    assert.deepEqual(serialsOf(await get('?san=spiffe%3A%2F%2Finv.example%2Fbob')), serials('bob'));
    assert.deepEqual(serialsOf(await get('?san=spiffe%3A%2F%2F')), []);
    assert.deepEqual(serialsOf(await get('?san=web')), []);
    assert.deepEqual(serialsOf(await get('?san=nothing-like-this')), []);
    // Subject substring.
    assert.deepEqual(serialsOf(await get('?subject=CN%3Dweb')), serials('web1', 'web2'));
    assert.deepEqual(serialsOf(await get('?subject=peer.inv')), serials('peer'));
    // expiresBefore: the 30-day certificates, then also the 60-day one.
    const in45 = new Date(Date.now() + 45 * DAY).toISOString();
    const in75 = new Date(Date.now() + 75 * DAY).toISOString();
    assert.deepEqual(serialsOf(await get(`?expiresBefore=${in45}`)), serials('web1', 'web2'));
    assert.deepEqual(serialsOf(await get(`?expiresBefore=${in75}`)), serials('web1', 'web2', 'bob'));
    assert.deepEqual(serialsOf(await get(`?expiresBefore=${new Date(Date.now() - DAY).toISOString()}`)), []);
    // Combined.
    assert.deepEqual(serialsOf(await get(`?profile=server&san=inv.example&expiresBefore=${in45}`)), serials('web1', 'web2'));
    assert.deepEqual(serialsOf(await get('?profile=client&san=inv.example')), serials('alice', 'bob'));
    assert.deepEqual(serialsOf(await get('?profile=client&san=web1.inv.example')), []);
    assert.deepEqual(serialsOf(await get('?status=good&subject=web&san=inv.example')), serials('web1', 'web2'));
    assert.deepEqual(serialsOf(await get(`?caId=${issued.web1.caId}&san=peer.inv.example`)), serials('peer'));
    assert.deepEqual(serialsOf(await get('?caId=int-0000000000&san=peer.inv.example')), []);
  });

  test('san and subject searches are literal: LIKE wildcards % and _ match only themselves', async () => {
    assert.deepEqual(serialsOf(await get('?san=%25')), [], "no name is '%'");
    assert.deepEqual(serialsOf(await get('?san=_')), [], "no name is '_' (it only appears inside alice_ops@inv.example)");
    assert.deepEqual(serialsOf(await get('?san=%25.example')), []);
    assert.deepEqual(serialsOf(await get('?san=web_.inv.example')), [], "'web_' is not 'web1'");
    assert.deepEqual(serialsOf(await get('?san=alice%25%40inv.example')), []);
    assert.deepEqual(serialsOf(await get('?san=alice_ops%40inv.exampl_')), []);
    assert.deepEqual(serialsOf(await get('?subject=%25')), []);
    assert.deepEqual(serialsOf(await get('?subject=CN%3D_')), []);
    assert.deepEqual(serialsOf(await get('?san=%5C')), [], 'a backslash is no name');
  });

  test('subject search gives the same answer on every database: case-insensitive', async () => {
    assert.deepEqual(serialsOf(await get('?subject=cn%3Dweb')), serials('web1', 'web2'));
    assert.deepEqual(serialsOf(await get('?subject=API.INV')), serials('api'));
  });

  test('status follows the stored state: a revoked certificate is listed as revoked', async () => {
    await sql(env, `UPDATE "Certificate" SET status = 'revoked' WHERE serial = ?`, [issued.web2.serial]);
    try {
      assert.deepEqual(serialsOf(await get('?status=revoked')), serials('web2'));
      assert.deepEqual(serialsOf(await get('?status=good')), serials('web1', 'api', 'alice', 'bob', 'peer'));
      assert.equal((await api(server, 'GET', `/api/v1/certificates/${issued.web2.serial}`)).json.status, 'revoked');
    } finally {
      await sql(env, `UPDATE "Certificate" SET status = 'good' WHERE serial = ?`, [issued.web2.serial]);
    }
  });

  async function walk(query: string, limit: number): Promise<{ serials: string[]; pages: number }> {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const r = await get(`?${query}${query ? '&' : ''}limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      assert.equal(r.status, 200, r.text);
      assert.ok(r.json.items.length <= limit);
      seen.push(...r.json.items.map((i: any) => i.serial));
      cursor = r.json.nextCursor;
      pages++;
      assert.ok(pages <= 20, 'pagination terminates');
    } while (cursor);
    return { serials: seen, pages };
  }

  test('cursor pagination with limit=2 walks every item exactly once', async () => {
    const all = await walk('', 2);
    assert.equal(all.pages, 3);
    assert.equal(new Set(all.serials).size, all.serials.length, 'no item twice');
    assert.deepEqual(
      [...all.serials].sort(),
      Object.values(issued)
        .map((c) => c.serial)
        .sort(),
      'every item',
    );
    assert.deepEqual(
      all.serials,
      (await get('')).json.items.map((i: any) => i.serial),
      'same order as one big page',
    );
    const servers = await walk('profile=server', 2);
    assert.deepEqual([...servers.serials].sort(), serials('web1', 'web2', 'api'));
    assert.equal(servers.pages, 2);
    const odd = await walk('', 4);
    assert.deepEqual(
      [...odd.serials].sort(),
      Object.values(issued)
        .map((c) => c.serial)
        .sort(),
    );
    const narrowed = await walk('san=inv.example', 1);
    assert.deepEqual([...narrowed.serials].sort(), serials('web1', 'web2', 'api', 'alice', 'bob', 'peer'));
    assert.equal(narrowed.pages, 6);
    // A filter applied to the rows walked (the subject) pages exactly too.
    const bySubject = await walk('subject=inv', 2);
    assert.deepEqual(bySubject, { serials: ['peer', 'api', 'web2', 'web1'].map((n) => issued[n].serial), pages: 2 });
  });

  const badQueries: [string, string, RegExp][] = [
    ['a cursor this server never returned', '?cursor=not-a-cursor', /^cursor is not one this server returned$/],
    [
      'a well-formed cursor with a bad serial',
      `?cursor=${Buffer.from(JSON.stringify([new Date().toISOString(), 'zz'])).toString('base64url')}`,
      /^cursor is not one this server returned$/,
    ],
    ['limit 0', '?limit=0', /^limit: must be at least 1$/],
    ['limit 501', '?limit=501', /^limit: must be at most 500 \(the largest page\)$/],
    ['an unknown status', '?status=bogus', /^status: Invalid enum value\. Expected 'good' \| 'revoked' \| 'expired' \| 'hold', received 'bogus'$/],
    ['expiresBefore that is not a date', '?expiresBefore=tomorrow', /^expiresBefore: must be an ISO 8601 date-time$/],
    ['an unknown query parameter', '?color=red', /^query: Unrecognized key\(s\) in object: 'color'$/],
    ['a san that is only a dot', '?san=.', /^san must be a name, a domain, an IP address, an email address or a URI \(it is empty\)$/],
  ];
  for (const [what, query, detail] of badQueries) {
    test(`list refused: ${what}`, async () => {
      assertProblem(await get(query), 400, detail);
    });
  }

  test('GET /certificates/{serial}: parsed fields and status good', async () => {
    const c = issued.web1;
    const r = await api(server, 'GET', `/api/v1/certificates/${c.serial}`);
    assert.equal(r.status, 200, r.text);
    const d = r.json;
    assert.equal(d.serial, c.serial);
    assert.equal(d.caId, c.caId);
    assert.equal(d.profile, 'server');
    assert.equal(d.subject, 'CN=web1.inv.example');
    assert.equal(d.commonName, 'web1.inv.example');
    assert.deepEqual(d.sans, [
      { type: 'dns', value: 'web1.inv.example' },
      { type: 'ip', value: '10.0.0.11' },
    ]);
    assert.equal(d.keyAlgorithm, 'ecdsa-p256');
    assert.equal(d.notBefore, c.notBefore);
    assert.equal(d.notAfter, c.notAfter);
    assert.equal(d.status, 'good');
    assert.equal(d.fingerprintSha256, sha256(pemBody(c.certificate)));
    assert.equal(d.certificate.trim(), c.certificate.trim());
    assert.equal(d.predecessorSerial, null);
    assert.equal(d.revokedAt, null);
    // The same certificate under its colon-separated, upper-case serial.
    const colons = c.serial.toUpperCase().match(/../g).join(':');
    assert.equal((await api(server, 'GET', `/api/v1/certificates/${colons}`)).json.serial, c.serial);
  });

  test('GET /certificates/{serial}: unknown serial 404, non-hex serial 400', async () => {
    assertProblem(
      await api(server, 'GET', '/api/v1/certificates/0abcdef0123456789abcdef012345678'),
      404,
      /^certificate 0abcdef0123456789abcdef012345678 does not exist$/,
    );
    assertProblem(await api(server, 'GET', '/api/v1/certificates/xyz'), 400, /^serial "xyz" is not a hexadecimal serial number$/);
    assertProblem(await api(server, 'GET', `/api/v1/certificates/${'a'.repeat(65)}`), 400, /is not a hexadecimal serial number$/);
  });

  test('GET /profiles lists the built-ins server, client, peer and group-member', async () => {
    const r = await api(server, 'GET', '/api/v1/profiles');
    assert.equal(r.status, 200, r.text);
    const byName = Object.fromEntries(r.json.items.map((p: any) => [p.name, p]));
    assert.deepEqual(Object.keys(byName).sort(), ['client', 'group-member', 'peer', 'server']);
    assert.deepEqual(byName['group-member'].keyUsageByFamily, {
      rsa: ['digitalSignature', 'keyEncipherment'],
      ecdsa: ['digitalSignature', 'keyAgreement'],
      'ml-kem': ['keyEncipherment'],
    });
    assert.deepEqual(byName['group-member'].keyTypes, ['rsa', 'ecdsa', 'ml-kem']);
    assert.deepEqual(byName.server.extKeyUsage, ['serverAuth']);
    assert.equal(byName.server.requireSan, true);
    assert.deepEqual(byName.client.extKeyUsage, ['clientAuth']);
    assert.deepEqual(byName.peer.extKeyUsage, ['serverAuth', 'clientAuth']);
    for (const p of r.json.items) assert.ok(p.defaultValidityDays <= p.maxValidityDays);
  });

  test('reads need a token', async () => {
    const r = await fetch(`${server.url}/api/v1/certificates`);
    assert.equal(r.status, 401);
    assert.equal(r.headers.get('content-type'), PROBLEM);
  });
});

/** The SubjectPublicKeyInfo DER of a PEM CSR, as openssl reads it. */
function csrPublicKey(pem: string): Buffer {
  const out = tmp.file(`pub-${++fileNo}.der`);
  ossl(['req', '-in', tmp.file(`pub-in-${fileNo}.pem`, pem), '-noout', '-pubkey', '-out', tmp.file(`pub-${fileNo}.pem`)]);
  ossl(['pkey', '-pubin', '-in', tmp.file(`pub-${fileNo}.pem`), '-outform', 'DER', '-out', out]);
  return readFileSync(out);
}

// ---------------------------------------------------------------------------------------------

describe('profile configuration: CA lists and SAN limits', () => {
  const load = (profile: Record<string, unknown>) =>
    loadProfiles(
      tmp.file(`p-${++fileNo}.json`, JSON.stringify({ x: { defaultValidityDays: 30, maxValidityDays: 90, extKeyUsage: ['serverAuth'], ...profile } })),
    );

  test('defaults: maxSans 100, no CA list (any issuing CA)', () => {
    const p = load({}).get('x')!;
    assert.equal(p.maxSans, 100);
    assert.equal(p.caIds, undefined);
  });

  test('caId is the one-element shorthand of caIds', () => {
    assert.deepEqual(load({ caId: 'int-0123456789' }).get('x')!.caIds, ['int-0123456789']);
    assert.deepEqual(load({ caIds: ['int-a', 'int-b'] }).get('x')!.caIds, ['int-a', 'int-b']);
  });

  test('refused at load: both caId and caIds, an empty or repeating list, a malformed id, maxSans out of range', () => {
    throwsProblem(() => load({ caId: 'int-a', caIds: ['int-b'] }), 'configuration', /^profile x: value: give either caId or caIds, not both$/);
    throwsProblem(() => load({ caIds: [] }), 'configuration', /^profile x: caIds: /);
    throwsProblem(() => load({ caIds: ['int-a', 'int-a'] }), 'configuration', /^profile x: caIds: must not name a CA twice$/);
    throwsProblem(() => load({ caIds: ['Int A'] }), 'configuration', /^profile x: caIds\.0: must be a CA id/);
    throwsProblem(() => load({ maxSans: 0 }), 'configuration', /^profile x: maxSans: /);
    throwsProblem(() => load({ maxSans: 1001 }), 'configuration', /^profile x: maxSans: /);
  });
});
