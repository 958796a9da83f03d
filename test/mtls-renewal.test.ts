/**
 * Issue 17, renewal with the current certificate (mTLS), step-ca's `step ca renew` model: a
 * real `signet serve` with SIGNET_TLS=on (SQLite, or PostgreSQL under SIGNET_TEST_POSTGRES),
 * driven by the real curl CLI presenting the certificate and its key:
 *   curl --cacert root.pem --cert leaf.pem --key leaf.key -X POST https://…/api/v1/certificates/renew
 * It renews (same names, new serial, predecessor linked, a chain openssl verifies), rekeys with
 * a CSR for the same names, and refuses — 401 problem, nothing stored, audited — every
 * certificate that is not a stored, valid, unrevoked Signet end-entity certificate of a profile
 * that allows it: none, another CA's (even with the same serial and subject), a re-signed copy,
 * a row written into the database without a CA key, revoked, on hold, expired, not yet valid,
 * of a profile with renewWithClientCertificate false, a CA certificate. Plain HTTP carries no
 * client certificate and is refused too. With the listener asking for a certificate, ACME and
 * the token API keep working without one.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate, createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, signet, startServer, type RunningServer } from './helpers/cli.js';
import { createTestEnv, onPostgres, type TestEnv } from './helpers/env.js';
import { requireTool } from './helpers/tools.js';
import { openssl, selfSignedCa, TempDir } from './helpers/openssl.js';
import { countRows, sql } from './helpers/sql.js';
import { buildCaTbs } from '../src/pki/ca-template.js';
import { renewedResponse } from '../src/http/routes/certificates.js';
import { algorithmDer, inspectCertificate, newSerial, serialHex, signTbs, toPem } from '../src/pki/certificate.js';
import { dnToDer } from '../src/pki/dn.js';
import { generateKey, signerFor, type Signer } from '../src/pki/keys.js';
import { buildLeafTbs } from '../src/pki/leaf-template.js';
import { pgTime, sqliteTime } from '../src/storage/db-time.js';

const tmp = new TempDir();
after(() => tmp.remove());
const PROBLEM = 'application/problem+json; charset=utf-8';
const DAY = 86_400_000;
let n = 0;

interface Reply {
  status: number;
  contentType: string;
  text: string;
  json: any;
}

function ossl(args: string[]): string {
  const r = openssl(args);
  assert.equal(r.status, 0, `openssl ${args.join(' ')}:\n${r.stderr}`);
  return r.stdout;
}

/** A P-256 key (file) and a CSR for CN=`cn` with these DNS names (default: cn). */
function keyAndCsr(cn: string, dns: string[] = [cn], keyFile = tmp.file(`k-${++n}.key`)): { keyFile: string; csr: string } {
  const csr = ossl([
    'req',
    '-new',
    ...(readFileSafe(keyFile) ? ['-key', keyFile] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile]),
    '-subj',
    `/CN=${cn}`,
    '-addext',
    `subjectAltName=${dns.map((d) => `DNS:${d}`).join(',')}`,
  ]);
  return { keyFile, csr };
}

function readFileSafe(f: string): string | null {
  try {
    return readFileSync(f, 'utf8');
  } catch {
    return null;
  }
}

const derOf = (pem: string) => Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');

describe('renewal with the current certificate (mTLS) over a real HTTPS listener, with curl', { concurrency: false }, () => {
  let env: TestEnv;
  let server: RunningServer;
  let https: string;
  let rootFile: string;
  let chainFile: string;
  let intId: string;
  /** Details of the anonymous refusals, to be found in the summary written at shutdown. */
  const anonymousDetails: string[] = [];

  /** One request with the real curl: over HTTPS trusting Signet's root, optionally with a client certificate, a token, a JSON body. */
  function curl(url: string, o: { method?: string; cert?: string; key?: string; token?: string; body?: unknown } = {}): Reply {
    const out = tmp.file(`reply-${++n}`);
    const args = ['-sS', '--cacert', rootFile, '-o', out, '-w', '%{http_code}\n%{content_type}', '-X', o.method ?? 'GET'];
    if (o.cert) args.push('--cert', o.cert, '--key', o.key!);
    if (o.token) args.push('-H', `authorization: Bearer ${o.token}`);
    if (o.body !== undefined) args.push('-H', 'content-type: application/json', '--data-binary', `@${tmp.file(`body-${n}.json`, JSON.stringify(o.body))}`);
    args.push(url);
    const r = spawnSync('curl', args, { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, `curl ${args.join(' ')}: ${r.stderr}`);
    const [status, contentType] = r.stdout.split('\n');
    const text = readFileSync(out, 'utf8');
    let json: any;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: Number(status), contentType: contentType ?? '', text, json };
  }
  const renew = (cert: string, key: string, body?: unknown) => curl(`${https}/api/v1/certificates/renew`, { method: 'POST', cert, key, body });
  const admin = (method: string, path: string, body?: unknown) => curl(https + path, { method, token: server.token, body });

  /** Issues with the admin token over HTTPS; the certificate (leaf only) and its key as files. */
  function issue(profile: string, cn: string): { serial: string; certFile: string; keyFile: string; pem: string } {
    const { keyFile, csr } = keyAndCsr(cn);
    const r = admin('POST', '/api/v1/certificates', { csr, profile });
    assert.equal(r.status, 201, r.text);
    const certFile = tmp.file(`c-${++n}.pem`, r.json.certificate);
    return { serial: r.json.serial, certFile, keyFile, pem: r.json.certificate };
  }

  async function lastEvent(action: string): Promise<{ seq: number; actor: string; target: string | null; outcome: string; details: any } | undefined> {
    const [r] = await sql(env, 'SELECT seq, actor, target, outcome, details FROM "AuditEvent" WHERE action = ? ORDER BY seq DESC LIMIT 1', [action]);
    return r ? { ...r, seq: Number(r.seq), details: r.details ? JSON.parse(r.details) : null } : undefined;
  }
  const headSeq = async () => Number((await sql(env, 'SELECT MAX(seq) AS s FROM "AuditEvent"'))[0].s ?? 0);

  /**
   * Presents a certificate that must be refused: 401 problem naming the reason, nothing stored.
   * A certificate whose bytes are a stored one's is refused with one certificate.renew.refused
   * event with that reason (actor holder:<serial> once its signature verified); any other is an
   * anonymous refusal: no row, only the count in the summary (checked at the end).
   */
  async function refused(cert: string, key: string, detail: RegExp, audit: { reason: string; actor: string; target: string } | 'anonymous') {
    const certs = await countRows(env, 'Certificate');
    const seq = await headSeq();
    const r = renew(cert, key);
    assert.equal(r.status, 401, r.text);
    assert.equal(r.contentType, PROBLEM);
    assert.equal(r.json.type, 'https://signet.dev/problems/unauthorized');
    assert.match(r.json.detail, detail);
    assert.equal(await countRows(env, 'Certificate'), certs, 'nothing issued');
    if (audit === 'anonymous') {
      const rows = await sql(env, 'SELECT action FROM "AuditEvent" WHERE seq > ? AND action IN (?, ?, ?)', [
        seq,
        'certificate.renew.refused',
        'request.refused',
        'certificate.renewed',
      ]);
      assert.deepEqual(rows, [], 'an anonymous refusal writes no row');
      anonymousDetails.push(r.json.detail);
      return;
    }
    const ev = await lastEvent('certificate.renew.refused');
    assert.ok(ev && ev.seq > seq, 'the refusal is audited');
    assert.equal(ev.outcome, 'refused');
    assert.equal(ev.details.reason, audit.reason);
    assert.equal(ev.details.detail, r.json.detail);
    assert.equal(ev.actor, audit.actor);
    assert.equal(ev.target, audit.target);
    assert.equal(
      ev.details.fingerprint,
      createHash('sha256')
        .update(derOf(readFileSync(cert, 'utf8')))
        .digest('hex'),
    );
    const renewed = await sql(env, 'SELECT COUNT(*) AS c FROM "AuditEvent" WHERE seq > ? AND action IN (?, ?)', [
      seq,
      'certificate.renewed',
      'certificate.rekeyed',
    ]);
    assert.equal(Number(renewed[0].c), 0);
  }

  /** A root imported with a key this test holds: a Signet CA whose certificates this test can make. */
  let own: { id: string; signer: Signer; nameDer: Buffer; certFile: string; keyFile: string };
  /** A certificate signed by `own`, with these dates, stored as if Signet had issued it (profile server). */
  async function storedByOwnCa(cn: string, notBefore: Date, notAfter: Date): Promise<{ serial: string; certFile: string; keyFile: string }> {
    const { privateKey, publicKey } = generateKey('ecdsa-p256');
    const serial = newSerial();
    const tbs = buildLeafTbs(
      { nameDer: own.nameDer, signatureAlgorithmDer: algorithmDer(own.signer), fixedExtensions: [] },
      {
        serial,
        notBefore,
        notAfter,
        commonName: cn,
        sans: [{ type: 'dns', value: cn }],
        spkiDer: publicKey.export({ format: 'der', type: 'spki' }),
        keyUsage: ['digitalSignature'],
        extKeyUsage: ['serverAuth'],
      },
    );
    const der = await signTbs(tbs, own.signer, algorithmDer(own.signer));
    await insertRow(der, own.id, 'server');
    return {
      serial: serialHex(serial),
      certFile: tmp.file(`own-${++n}.pem`, toPem(der)),
      keyFile: tmp.file(`own-${n}.key`, privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()),
    };
  }
  /** Writes a certificate row for `der` (its other columns copied from an issued row), as a database writer could. */
  let template: string;
  async function insertRow(der: Buffer, caId: string, profile: string): Promise<void> {
    const p = inspectCertificate(der);
    const t = (d: Date) => (onPostgres ? pgTime(d) : sqliteTime(d));
    const copied = ['subject', 'commonName', 'sans', 'sanText', 'keyAlgorithm', 'csrHash', 'tokenId', 'status', 'createdAt'];
    await sql(
      env,
      `INSERT INTO "Certificate" (serial, "caId", profile, der, fingerprint, "notBefore", "notAfter", ${copied.map((c) => `"${c}"`).join(', ')})
       SELECT ?, ?, ?, ?, ?, ?, ?, ${copied.map((c) => `t."${c}"`).join(', ')} FROM "Certificate" t WHERE t.serial = ?`,
      [serialHex(p.serial), caId, profile, der, p.fingerprint, t(p.notBefore), t(p.notAfter), template],
    );
  }

  before(async () => {
    requireTool('curl', 'curl');
    const tlsPort = await freePort();
    env = await createTestEnv({ SIGNET_TLS: 'on', SIGNET_TLS_PORT: String(tlsPort), SIGNET_TLS_NAMES: '127.0.0.1,localhost' });
    const profiles = {
      // A client profile whose certificates renew only with a token.
      'token-only': { description: 'no renewal by certificate', sanTypes: ['dns'], defaultValidityDays: 30, maxValidityDays: 90, extKeyUsage: ['clientAuth'] },
    };
    const file = join(env.dataDir, 'profiles.json');
    writeFileSync(file, JSON.stringify(profiles));
    env.env.SIGNET_PROFILES_FILE = file;
    server = await startServer(env.env);
    https = `https://127.0.0.1:${tlsPort}`;
    const cas = JSON.parse(signet(['ca', 'list', '--json'], env.env).stdout) as { id: string; parentId: string | null }[];
    const rootId = cas.find((c) => c.parentId === null)!.id;
    intId = cas.find((c) => c.parentId === rootId)!.id;
    const pem = async (id: string) => toPem(Buffer.from(await (await fetch(`${server.url}/pki/${id}.crt`)).arrayBuffer()));
    rootFile = tmp.file('root.pem', await pem(rootId));
    chainFile = tmp.file('chain.pem', await pem(intId));
    // A CA whose key this test holds, imported into Signet.
    const { privateKey, publicKey } = generateKey('ecdsa-p256');
    const signer = signerFor(privateKey);
    const { tbs } = buildCaTbs({
      serial: newSerial(),
      subjectNameDer: dnToDer('CN=Imported Test Root'),
      spkiDer: publicKey.export({ format: 'der', type: 'spki' }),
      notBefore: new Date(Date.now() - 30 * DAY),
      validityDays: 3650,
      signatureAlgorithmDer: algorithmDer(signer),
    });
    const caDer = await signTbs(tbs, signer, algorithmDer(signer));
    const keyPem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    const imported = admin('POST', '/api/v1/cas', { certificate: toPem(caDer), privateKey: keyPem });
    assert.equal(imported.status, 201, imported.text);
    own = {
      id: imported.json.id,
      signer,
      nameDer: inspectCertificate(caDer).subjectNameDer,
      certFile: tmp.file('own-ca.pem', toPem(caDer)),
      keyFile: tmp.file('own-ca.key', keyPem),
    };
    template = issue('server', 'template.example').serial;
  });
  after(async () => {
    await server?.stop();
    await env?.cleanup();
  });

  test('the HTTPS listener asks for a client certificate without naming CAs; ACME and the token API work without one', () => {
    const s = spawnSync('openssl', ['s_client', '-connect', https.slice('https://'.length), '-CAfile', rootFile], {
      input: '',
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.match(s.stdout, /No client certificate CA names sent/, s.stdout + s.stderr);
    assert.match(s.stdout, /Verify return code: 0 \(ok\)/);
    const dir = curl(`${https}/acme/directory`);
    assert.equal(dir.status, 200, dir.text);
    assert.match(dir.json.newOrder, /^https:\/\/.+\/acme\/new-order$/);
    const cas = admin('GET', '/api/v1/cas');
    assert.equal(cas.status, 200, cas.text);
    assert.ok(cas.json.items.length >= 3);
    // A client certificate on a token route changes nothing: the token decides.
    const c = issue('server', 'bystander.example');
    const withCert = curl(`${https}/api/v1/cas`, { token: server.token, cert: c.certFile, key: c.keyFile });
    assert.equal(withCert.status, 200, withCert.text);
    const noToken = curl(`${https}/api/v1/cas`, { cert: c.certFile, key: c.keyFile });
    assert.equal(noToken.status, 401, 'a client certificate is no token');
    assert.match(noToken.json.detail, /missing Authorization: Bearer <token> header/);
  });

  test('renews: new serial and validity, same names and key, predecessor linked, audited as the holder; the chain verifies', async () => {
    const old = issue('server', 'svc.example');
    // curl sends the chain too when the file holds it: the leaf is what counts.
    const withChain = tmp.file('svc-chain.pem', old.pem + readFileSync(chainFile, 'utf8'));
    const r = renew(withChain, old.keyFile);
    assert.equal(r.status, 201, r.text);
    assert.equal(r.contentType, 'application/json; charset=utf-8');
    assert.notEqual(r.json.serial, old.serial);
    assert.equal(r.json.predecessorSerial, old.serial);
    assert.equal(r.json.profile, 'server');
    assert.equal(r.json.caId, intId);
    // The body is what the OpenAPI document promises (its schema, strict: no field more or less).
    renewedResponse.parse(r.json);
    const before = new X509Certificate(old.pem);
    const after = new X509Certificate(r.json.certificate);
    assert.equal(after.subject, before.subject);
    assert.equal(after.subjectAltName, 'DNS:svc.example');
    assert.ok(after.publicKey.equals(before.publicKey), 'no CSR: the same key');
    assert.ok(new Date(after.validTo) >= new Date(before.validTo));
    const stored = admin('GET', `/api/v1/certificates/${r.json.serial}`);
    assert.equal(stored.status, 200, stored.text);
    assert.equal(stored.json.predecessorSerial, old.serial);
    const newFile = tmp.file('svc-renewed.pem', r.json.certificate);
    const v = openssl(['verify', '-CAfile', rootFile, '-untrusted', tmp.file('svc-chain-only.pem', r.json.chain), '-purpose', 'sslserver', newFile]);
    assert.equal(v.status, 0, v.stdout + v.stderr);
    assert.match(v.stdout, /: OK/);
    const ev = await lastEvent('certificate.renewed');
    assert.equal(ev!.actor, `holder:${old.serial}`);
    assert.equal(ev!.target, r.json.serial);
    assert.equal(ev!.details.predecessor, old.serial);
    // The renewed certificate renews in turn; the old one still may (it is still valid and unrevoked).
    const again = renew(newFile, old.keyFile);
    assert.equal(again.status, 201, again.text);
    assert.equal(again.json.predecessorSerial, r.json.serial);
  });

  test('rekeys with a CSR for the same names; a CSR for other names or a malformed body is refused, nothing stored', async () => {
    const old = issue('peer', 'node.example');
    const fresh = keyAndCsr('node.example');
    const r = renew(old.certFile, old.keyFile, { csr: fresh.csr });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.predecessorSerial, old.serial);
    const cert = new X509Certificate(r.json.certificate);
    assert.equal(cert.subjectAltName, 'DNS:node.example');
    assert.ok(cert.checkPrivateKey((await import('node:crypto')).createPrivateKey(readFileSync(fresh.keyFile))), 'the new key');
    assert.equal((await lastEvent('certificate.rekeyed'))!.actor, `holder:${old.serial}`);

    const certs = await countRows(env, 'Certificate');
    const other = keyAndCsr('node.example', ['node.example', 'evil.example']);
    const bad = renew(old.certFile, old.keyFile, { csr: other.csr });
    assert.equal(bad.status, 400, bad.text);
    assert.equal(bad.contentType, PROBLEM);
    assert.match(bad.json.detail, /^a rekey keeps the certificate's names \(node\.example\); the CSR asks for node\.example, evil\.example/);
    const ev = await lastEvent('request.refused');
    assert.equal(ev!.actor, `holder:${old.serial}`, 'the holder, authenticated, is named in the refusal');
    assert.equal(ev!.details.type, 'bad-csr');
    for (const [body, detail] of [
      [{ csr: fresh.csr, profile: 'client' }, /^request body: Unrecognized key/],
      [{ csr: '' }, /^csr: /],
      [{ csr: 'not a csr' }, /^truncated or malformed DER/],
    ] as const) {
      const x = renew(old.certFile, old.keyFile, body);
      assert.equal(x.status, 400, x.text);
      assert.equal(x.contentType, PROBLEM);
      assert.match(x.json.detail, detail);
    }
    const query = curl(`${https}/api/v1/certificates/renew?serial=${old.serial}`, { method: 'POST', cert: old.certFile, key: old.keyFile });
    assert.equal(query.status, 400, query.text);
    assert.match(query.json.detail, /Unrecognized key\(s\) in object: 'serial'/);
    assert.equal(await countRows(env, 'Certificate'), certs, 'nothing stored');
  });

  test('refused without a client certificate, and over plain HTTP: 401/403 problems naming what to do, nothing stored', async () => {
    const certs = await countRows(env, 'Certificate');
    const seq = await headSeq();
    const none = curl(`${https}/api/v1/certificates/renew`, { method: 'POST' });
    assert.equal(none.status, 401, none.text);
    assert.equal(none.contentType, PROBLEM);
    assert.match(none.json.detail, /^no client certificate was presented: .*curl --cert cert\.pem --key key\.pem/);
    // A token does not stand in for the certificate.
    const token = curl(`${https}/api/v1/certificates/renew`, { method: 'POST', token: server.token });
    assert.equal(token.status, 401, token.text);
    assert.match(token.json.detail, /^no client certificate was presented/);
    // Plain HTTP serves only the public PKI endpoints once TLS is on: it points at the HTTPS URL.
    const c = issue('server', 'plain.example');
    const plain = spawnSync(
      'curl',
      ['-sS', '-w', '\n%{http_code}\n%{content_type}', '-X', 'POST', '--cert', c.certFile, '--key', c.keyFile, `${server.url}/api/v1/certificates/renew`],
      {
        encoding: 'utf8',
      },
    );
    const [body, status, type] = plain.stdout.split('\n');
    assert.equal(Number(status), 403, plain.stdout);
    assert.equal(type, PROBLEM);
    assert.match(
      JSON.parse(body!).detail,
      /^only the public PKI endpoints, OCSP and health are served over plain HTTP; use https:\/\/127\.0\.0\.1:\d+\/api\/v1\/certificates\/renew$/,
    );
    assert.equal(await countRows(env, 'Certificate'), certs + 1, 'only the fixture was issued');
    // Anonymous refusals cost no row each; they are counted (request.refused.summary, below).
    const rows = await sql(env, 'SELECT COUNT(*) AS c FROM "AuditEvent" WHERE seq > ? AND action IN (?, ?)', [
      seq,
      'certificate.renew.refused',
      'certificate.renewed',
    ]);
    assert.equal(Number(rows[0].c), 0);
  });

  test("refused: another CA's certificate with the same serial and subject, a re-signed copy, an unknown serial", async () => {
    const genuine = issue('server', 'twin.example');
    const foreign = selfSignedCa(tmp, 'foreign', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], '/CN=Foreign CA');
    const forge = (serial: string) => {
      const { keyFile, csr } = keyAndCsr('twin.example');
      const ext = tmp.file(
        `ext-${++n}.cnf`,
        'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:twin.example\n',
      );
      const certFile = tmp.file(`forged-${n}.pem`);
      ossl([
        'x509',
        '-req',
        '-in',
        tmp.file(`forged-${n}.csr`, csr),
        '-CA',
        foreign.cert,
        '-CAkey',
        foreign.key,
        '-set_serial',
        `0x${serial}`,
        '-days',
        '30',
        '-extfile',
        ext,
        '-out',
        certFile,
      ]);
      return { certFile, keyFile };
    };
    const twin = forge(genuine.serial);
    const twinCert = new X509Certificate(readFileSync(twin.certFile));
    assert.equal(twinCert.serialNumber.toLowerCase().replace(/^0+/, ''), genuine.serial.replace(/^0+/, ''), 'the same serial');
    assert.equal(twinCert.subject, new X509Certificate(genuine.pem).subject, 'the same subject');
    await refused(
      twin.certFile,
      twin.keyFile,
      new RegExp(`^the client certificate \\(serial ${genuine.serial}\\) is not the certificate Signet issued with that serial: its bytes differ`),
      'anonymous',
    );
    // Signet's own certificate, its to-be-signed part signed again by another key: not the stored bytes.
    const parts = inspectCertificate(derOf(genuine.pem));
    const other = signerFor(generateKey('ecdsa-p256').privateKey);
    const copy = await signTbs(parts.tbs, other, algorithmDer(other));
    const copyFile = tmp.file('resigned.pem', toPem(copy));
    await refused(copyFile, genuine.keyFile, /is not the certificate Signet issued with that serial: its bytes differ/, 'anonymous');
    const stranger = forge('7e57');
    await refused(stranger.certFile, stranger.keyFile, /^the client certificate \(serial 7e57\) is not a certificate Signet issued$/, 'anonymous');
    // And the genuine one still renews.
    assert.equal(renew(genuine.certFile, genuine.keyFile).status, 201);
  });

  test('refused: a row written into the database for a certificate its CA did not sign', async () => {
    const foreign = selfSignedCa(tmp, 'writer', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], '/CN=Writer CA');
    const { keyFile, csr } = keyAndCsr('planted.example');
    const ext = tmp.file('planted.cnf', 'basicConstraints=CA:FALSE\nsubjectAltName=DNS:planted.example\nextendedKeyUsage=serverAuth\n');
    const certFile = tmp.file('planted.pem');
    ossl([
      'x509',
      '-req',
      '-in',
      tmp.file('planted.csr', csr),
      '-CA',
      foreign.cert,
      '-CAkey',
      foreign.key,
      '-set_serial',
      '0x5eed',
      '-days',
      '30',
      '-extfile',
      ext,
      '-out',
      certFile,
    ]);
    await insertRow(derOf(readFileSync(certFile, 'utf8')), intId, 'server');
    await refused(certFile, keyFile, new RegExp(`^the client certificate 5eed does not verify under the key of CA ${intId}`), {
      reason: 'bad-signature',
      actor: 'anonymous',
      target: '5eed',
    });
  });

  test('refused: revoked, on hold (and renewing again once released)', async () => {
    const revoked = issue('client', 'gone.example');
    assert.equal(admin('POST', `/api/v1/certificates/${revoked.serial}/revoke`, { reason: 'keyCompromise' }).status, 200);
    await refused(
      revoked.certFile,
      revoked.keyFile,
      new RegExp(`^the client certificate ${revoked.serial} is revoked \\(keyCompromise\\) and cannot renew itself$`),
      {
        reason: 'revoked',
        actor: `holder:${revoked.serial}`,
        target: revoked.serial,
      },
    );
    const held = issue('client', 'held.example');
    assert.equal(admin('POST', `/api/v1/certificates/${held.serial}/revoke`, { reason: 'certificateHold' }).status, 200);
    await refused(held.certFile, held.keyFile, /is on hold and cannot renew itself until it is released$/, {
      reason: 'hold',
      actor: `holder:${held.serial}`,
      target: held.serial,
    });
    assert.equal(admin('POST', `/api/v1/certificates/${held.serial}/unhold`, {}).status, 200);
    assert.equal(renew(held.certFile, held.keyFile).status, 201, 'released: it renews');
  });

  test('refused: expired, not yet valid (certificates of an imported Signet CA, stored as issued)', async () => {
    const expired = await storedByOwnCa('old.example', new Date(Date.now() - 40 * DAY), new Date(Date.now() - 10 * DAY));
    await refused(
      expired.certFile,
      expired.keyFile,
      new RegExp(`^the client certificate ${expired.serial} expired at .*; an expired certificate cannot renew itself, issue a new one$`),
      {
        reason: 'expired',
        actor: `holder:${expired.serial}`,
        target: expired.serial,
      },
    );
    const early = await storedByOwnCa('early.example', new Date(Date.now() + 2 * DAY), new Date(Date.now() + 30 * DAY));
    await refused(early.certFile, early.keyFile, new RegExp(`^the client certificate ${early.serial} is not valid until `), {
      reason: 'not-yet-valid',
      actor: `holder:${early.serial}`,
      target: early.serial,
    });
    // The fixture is sound: the same CA's current certificate passes authentication (and is then
    // refused by issuance, as a root never signs leaves — a 409, not a 401).
    const current = await storedByOwnCa('now.example', new Date(Date.now() - DAY), new Date(Date.now() + 30 * DAY));
    const r = renew(current.certFile, current.keyFile);
    assert.equal(r.status, 409, r.text);
    assert.match(r.json.detail, /root CA/);
  });

  test('refused: a certificate of a profile with renewWithClientCertificate false; a CA certificate', async () => {
    const c = issue('token-only', 'badge.example');
    await refused(
      c.certFile,
      c.keyFile,
      /^profile token-only does not allow renewal with the current certificate \(renewWithClientCertificate is false\); renew [0-9a-f]+ with an API token$/,
      {
        reason: 'profile-disallows',
        actor: `holder:${c.serial}`,
        target: c.serial,
      },
    );
    // The token route still renews it.
    assert.equal(admin('POST', `/api/v1/certificates/${c.serial}/renew`, {}).status, 201);
    const caSerial = serialHex(inspectCertificate(derOf(readFileSync(own.certFile, 'utf8'))).serial);
    await refused(
      own.certFile,
      own.keyFile,
      new RegExp(`^the client certificate \\(serial ${caSerial}\\) is a CA certificate; only an end-entity certificate Signet issued renews itself$`),
      'anonymous',
    );
  });

  test('the profiles say which renew by certificate', () => {
    const r = admin('GET', '/api/v1/profiles');
    assert.equal(r.status, 200, r.text);
    const by = Object.fromEntries((r.json.items as { name: string; renewWithClientCertificate: boolean }[]).map((p) => [p.name, p.renewWithClientCertificate]));
    assert.deepEqual(by, { server: true, client: true, peer: true, 'group-member': true, 'token-only': false });
  });

  test('the anonymous refusals (no certificate, plain HTTP, certificates Signet did not store) are counted in the summary written at shutdown; the process never crashed', async () => {
    assert.equal(await server.stop(), 0, server.stderr());
    const rows = await sql(env, 'SELECT details FROM "AuditEvent" WHERE action = ?', ['request.refused.summary']);
    const refusals = rows.flatMap((r) => JSON.parse(r.details).refusals as { detail: string; targets: string[]; count: number }[]);
    const noCertificate = refusals.filter(
      (x) => /^no client certificate was presented/.test(x.detail) && x.targets.includes('POST /api/v1/certificates/renew'),
    );
    assert.ok(noCertificate.reduce((sum, x) => sum + x.count, 0) >= 2, JSON.stringify(refusals));
    assert.ok(
      refusals.some((x) => /^only the public PKI endpoints/.test(x.detail) && x.targets.includes('POST /api/v1/certificates/renew')),
      JSON.stringify(refusals),
    );
    assert.ok(anonymousDetails.length >= 4);
    for (const d of anonymousDetails)
      assert.ok(
        refusals.some((x) => x.detail === d.slice(0, 200) && x.targets.includes('POST /api/v1/certificates/renew')),
        `${d} is in the summary: ${JSON.stringify(refusals)}`,
      );
  });
});
