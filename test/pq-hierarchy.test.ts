/**
 * Two hierarchies side by side (issue 20): the classical ECDSA root of `signet init` and an
 * ML-DSA-87 root made with `signet ca create-root`, with an ML-DSA-65 issuing CA under it that
 * the `pq-server` profile picks. Through the real interfaces: the CLI, REST, /pki, /ocsp and a
 * per-profile ACME directory. Signatures are checked by OpenSSL 3.5 through node:crypto
 * (X509Certificate#verify, crypto.verify), structures parsed with @peculiar; the requests are
 * built with @peculiar/asn1-csr + node:crypto (helpers/pq-csr.ts), not with Signet's code.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, randomBytes, sign, verify, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { AsnConvert } from '@peculiar/asn1-schema';
import { CertificateList } from '@peculiar/asn1-x509';
import { BasicOCSPResponse, OCSPResponse } from '@peculiar/asn1-ocsp';
import { fetchAfterBlocking, signet } from './helpers/cli.js';
import { b64u, newKey, startWorld, WORLD_SERVER_PROFILE, type World } from './helpers/acme.js';
import { openssl } from './helpers/openssl.js';
import { sql } from './helpers/sql.js';
import { ML_DSA_OID, pqCsr } from './helpers/pq-csr.js';
import { encodeCertId, issuerHashes } from '../src/pki/ocsp.js';
import { sequence } from '../src/pki/der.js';
import { derToPem } from '../src/pki/pem.js';

const profiles = (pqCaId?: string) => ({
  server: WORLD_SERVER_PROFILE,
  'pq-server': {
    keyTypes: ['ml-dsa'],
    requireSan: true,
    sanTypes: ['dns'],
    dnsSuffixes: ['signet.test'],
    defaultValidityDays: 90,
    maxValidityDays: 397,
    extKeyUsage: ['serverAuth'],
    ...(pqCaId ? { caIds: [pqCaId] } : {}),
  },
});

/** The bytes of the first element inside a DER SEQUENCE (the signed part of a CRL or OCSP response), as sent. */
function firstElement(der: Buffer): Buffer {
  const inner = (at: number) => {
    const b = der[at + 1]!;
    if (b < 0x80) return { header: 2, length: b };
    const n = b & 0x7f;
    return { header: 2 + n, length: der.subarray(at + 2, at + 2 + n).readUIntBE(0, n) };
  };
  const outer = inner(0);
  const first = inner(outer.header);
  return der.subarray(outer.header, outer.header + first.header + first.length);
}

const json = (r: { status: number | null; stdout: string; stderr: string }) => {
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
};

describe('an ML-DSA hierarchy beside the classical one', () => {
  let w: World;
  let env: Record<string, string>;
  let pqRoot: { id: string; certificate: string; keyAlgorithm: string };
  let pqInt: { id: string; cert: X509Certificate; der: Buffer };
  let pqLeaf: { serial: string; cert: X509Certificate };

  /** The REST API over the HTTPS listener (with TLS on, plain HTTP serves only /pki, /ocsp and health). */
  const rest = (method: string, path: string, body?: unknown) =>
    w.acme.request(method, `https://127.0.0.1:${w.s.tlsPort}${path}`, body === undefined ? undefined : JSON.stringify(body), {
      authorization: `Bearer ${w.s.server.token}`,
      'content-type': 'application/json',
    });

  before(async () => {
    w = await startWorld({ SIGNET_ACME_PROFILES: 'server,pq-server' }, profiles());
    env = w.s.env.env;
    pqRoot = json(signet(['ca', 'create-root', '--key', 'ml-dsa-87', '--subject', 'CN=Signet PQ Root,O=Test', '--json'], env));
    const id = json(
      signet(['ca', 'create-intermediate', '--parent', pqRoot.id, '--key', 'ml-dsa-65', '--subject', 'CN=Signet PQ Issuing CA,O=Test', '--json'], env),
    ).id;
    const der = Buffer.from(await (await fetchAfterBlocking(`${w.s.server.url}/pki/${id}.crt`)).arrayBuffer());
    pqInt = { id, der, cert: new X509Certificate(der) };
    // The profile names the new issuing CA: written now that its id is known, read at start.
    w.tmp.file('profiles.json', JSON.stringify(profiles(id)));
    await w.restart();
  });
  after(async () => {
    await w?.stop();
  });

  test('create-root: an ML-DSA-87 root beside the classical one, audited; ca root lists both; rollover-root asks which; a duplicate name is refused', async () => {
    const root = new X509Certificate(pqRoot.certificate);
    assert.equal(pqRoot.keyAlgorithm, 'ml-dsa-87');
    assert.equal(root.publicKey.asymmetricKeyType, 'ml-dsa-87');
    assert.ok(root.ca && root.verify(root.publicKey), 'self-signed with ML-DSA-87');
    assert.ok(pqInt.cert.checkIssued(root) && pqInt.cert.verify(root.publicKey), 'the ML-DSA-65 intermediate is signed by the ML-DSA-87 root');
    assert.equal(pqInt.cert.publicKey.asymmetricKeyType, 'ml-dsa-65');
    const events = await sql(w.s.env, 'SELECT actor, action, details FROM "AuditEvent" WHERE target = ? AND action = ?', [pqRoot.id, 'ca.created']);
    assert.equal(events.length, 1);
    assert.equal(events[0].actor, 'cli');
    const details = typeof events[0].details === 'string' ? JSON.parse(events[0].details) : events[0].details;
    assert.equal(details.role, 'root');
    assert.equal(details.keyAlgorithm, 'ml-dsa-87');

    // `ca root` (and --pem, the same rows as PEM) names every current root: a trust store gets both.
    const roots = json(signet(['ca', 'root', '--json'], env)) as { id: string; keyAlgorithm: string; pem: string }[];
    assert.deepEqual(roots.map((r) => `${r.id} ${r.keyAlgorithm}`).sort(), [`${w.s.rootId} ecdsa-p384`, `${pqRoot.id} ml-dsa-87`].sort());
    assert.equal(roots.find((r) => r.id === pqRoot.id)!.pem, pqRoot.certificate);
    const rollover = signet(['ca', 'rollover-root'], env);
    assert.notEqual(rollover.status, 0);
    assert.match(rollover.stderr, new RegExp(`there are several roots \\(.*${pqRoot.id}.*\\): name the one to roll over with --root`));
    // The same through REST (POST /api/v1/cas/roots): a second root of an existing CA's name is refused, nothing made.
    const again = await rest('POST', '/api/v1/cas/roots', { subject: 'CN=Signet PQ Root,O=Test', keyAlgorithm: 'ml-dsa-44' });
    assert.equal(again.status, 409, again.text);
    assert.equal(
      again.json.detail,
      `CA ${pqRoot.id} is named CN=Signet PQ Root,O=Test already (names are compared as RFC 5280 §7.1 does); give the new root a name of its own`,
    );
    // RFC 5280 §7.1 matching: another case and extra spaces name the same CA.
    const folded = await rest('POST', '/api/v1/cas/roots', { subject: 'CN=signet  pq root,O=test', keyAlgorithm: 'ml-dsa-44' });
    assert.equal(folded.status, 409, folded.text);
    // Three identical requests at once: one root, two 409s (the name is checked again inside the
    // transaction). SLH-DSA's ~1 s signature keeps all three past the first check together.
    const count = async () => (await sql(w.s.env, 'SELECT COUNT(*) AS n FROM "CertificateAuthority"'))[0].n;
    const before = Number(await count());
    const raced = await Promise.all(
      [1, 2, 3].map(() => rest('POST', '/api/v1/cas/roots', { subject: 'CN=Raced Root,O=Test', keyAlgorithm: 'slh-dsa-sha2-128s' })),
    );
    assert.deepEqual(raced.map((r) => r.status).sort(), [201, 409, 409], raced.map((r) => r.text).join('\n'));
    assert.equal(Number(await count()), before + 1);
    // The CLI meets the API's cap on a root's validity (the year 9999 is X.509's last).
    const long = signet(['ca', 'create-root', '--key', 'ml-dsa-44', '--subject', 'CN=Long Root,O=Test', '--validity-days', '2930000'], env);
    assert.notEqual(long.status, 0);
    assert.match(long.stderr, /a root's validity is at most 36500 days \(100 years\); 2930000 was asked/);
    assert.equal(Number(await count()), before + 1);
    // A lone UTF-16 surrogate is no text: a 400 naming it at the edge (it was a 500 from the driver).
    const surrogate = await rest('POST', '/api/v1/cas/roots', { subject: 'CN=\ud800', keyAlgorithm: 'ml-dsa-44' });
    assert.equal(surrogate.status, 400, surrogate.text);
    assert.match(surrogate.json.detail, /lone UTF-16 surrogate .* at subject; no field accepts one/);
  });

  test('post-quantum and classical CA keys do not mix: create-intermediate (CLI) and POST /api/v1/cas refuse with the key policy', async () => {
    const classicalUnderPq = signet(['ca', 'create-intermediate', '--parent', pqRoot.id, '--key', 'ecdsa-p256', '--subject', 'CN=Mixed 1'], env);
    assert.equal(classicalUnderPq.status, 2);
    assert.equal(
      classicalUnderPq.stderr.trim(),
      `signet: error: CA ${pqRoot.id}'s policy refuses the new CA key: a classical CA key (ecdsa-p256) is not allowed under a post-quantum parent (ml-dsa-87); use ml-dsa-44, ml-dsa-65 or ml-dsa-87`,
    );
    const pqUnderClassical = await rest('POST', '/api/v1/cas', { parentId: w.s.rootId, keyAlgorithm: 'ml-dsa-65', subject: 'CN=Mixed 2' });
    assert.equal(pqUnderClassical.status, 400, pqUnderClassical.text);
    assert.equal(
      pqUnderClassical.json.detail,
      `CA ${w.s.rootId}'s policy refuses the new CA key: a post-quantum CA key (ml-dsa-65) is allowed only under a post-quantum parent (this parent's key is ecdsa-p384): create an ML-DSA root with \`signet ca create-root --key ml-dsa-87\``,
    );
  });

  test('REST: pq-server issues an ML-DSA-65 CSR from the ML-DSA intermediate; ECDSA on pq-server and ML-DSA on server are refused; the default CA stays classical', async () => {
    const csr = pqCsr(['rest.signet.test']);
    const r = await rest('POST', '/api/v1/certificates', { csr: csr.pem, profile: 'pq-server' });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.caId, pqInt.id);
    const cert = new X509Certificate(r.json.certificate);
    assert.ok(cert.checkIssued(pqInt.cert) && cert.verify(pqInt.cert.publicKey), 'signed by the ML-DSA-65 intermediate (OpenSSL 3.5)');
    assert.ok(cert.publicKey.equals(csr.publicKey));
    assert.ok(cert.checkHost('rest.signet.test'));
    assert.equal(r.json.chain.trim(), pqInt.cert.toString().trim());
    pqLeaf = { serial: r.json.serial, cert };

    const ecdsa = await rest('POST', '/api/v1/certificates', { csr: derToPem(w.csr(['ec.signet.test']).der, 'CERTIFICATE REQUEST'), profile: 'pq-server' });
    assert.equal(ecdsa.status, 400, ecdsa.text);
    assert.equal(ecdsa.json.detail, 'profile pq-server does not accept ecdsa-p256 keys (allowed: ml-dsa)');
    const onServer = await rest('POST', '/api/v1/certificates', { csr: pqCsr(['classic.signet.test']).pem, profile: 'server' });
    assert.equal(onServer.status, 400, onServer.text);
    assert.equal(onServer.json.detail, 'profile server does not accept ml-dsa-65 keys (allowed: rsa, ecdsa, ed25519)');
    // A profile without caIds still issues from the classical intermediate: create-root changed no default.
    const classical = await rest('POST', '/api/v1/certificates', { csr: derToPem(w.csr(['ec.signet.test']).der, 'CERTIFICATE REQUEST'), profile: 'server' });
    assert.equal(classical.status, 201, classical.text);
    assert.equal(classical.json.caId, w.s.intId);
  });

  test("the ML-DSA CA's CRL and OCSP answers are signed with ML-DSA-65 (its delegated responder's key is ML-DSA-65 too)", async () => {
    assert.ok(pqLeaf, 'needs the REST test');
    const rv = await rest('POST', `/api/v1/certificates/${pqLeaf.serial}/revoke`, { reason: 'keyCompromise' });
    assert.ok(rv.status === 200 || rv.status === 204, rv.text);

    // The CRL: signed by the intermediate's ML-DSA-65 key, listing the revoked serial.
    let crlDer = Buffer.alloc(0);
    for (let i = 0; i < 50; i++) {
      const res = await fetchAfterBlocking(`${w.s.server.url}/pki/${pqInt.id}.crl`);
      assert.equal(res.status, 200);
      crlDer = Buffer.from(await res.arrayBuffer());
      const list = AsnConvert.parse(crlDer, CertificateList);
      if (list.tbsCertList.revokedCertificates?.some((e) => Buffer.from(e.userCertificate).toString('hex').replace(/^00/, '') === pqLeaf.serial)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const crl = AsnConvert.parse(crlDer, CertificateList);
    assert.equal(crl.signatureAlgorithm.algorithm, ML_DSA_OID['ml-dsa-65']);
    assert.equal(crl.signatureAlgorithm.parameters ?? null, null, 'parameters absent');
    assert.ok(
      crl.tbsCertList.revokedCertificates?.some((e) => Buffer.from(e.userCertificate).toString('hex').replace(/^00/, '') === pqLeaf.serial),
      'the CRL lists the revoked certificate',
    );
    assert.ok(verify(null, firstElement(crlDer), pqInt.cert.publicKey, Buffer.from(crl.signature)), 'CRL signature verifies with the intermediate key');

    // OCSP: a delegated responder certificate (ML-DSA-65, signed by the intermediate) signs the answer.
    const h = issuerHashes(pqInt.der).sha1;
    const req = sequence(
      sequence(
        sequence(
          sequence(encodeCertId({ hashAlgorithm: 'sha1', issuerNameHash: h.nameHash, issuerKeyHash: h.keyHash, serial: Buffer.from(pqLeaf.serial, 'hex') })),
        ),
      ),
    );
    const res = await fetchAfterBlocking(`${w.s.server.url}/ocsp`, {
      method: 'POST',
      headers: { 'content-type': 'application/ocsp-request' },
      body: new Uint8Array(req),
    });
    assert.equal(res.status, 200);
    const outer = AsnConvert.parse(Buffer.from(await res.arrayBuffer()), OCSPResponse);
    const basicDer = Buffer.from(outer.responseBytes!.response.buffer);
    const basic = AsnConvert.parse(basicDer, BasicOCSPResponse);
    assert.equal(basic.signatureAlgorithm.algorithm, ML_DSA_OID['ml-dsa-65']);
    const responder = new X509Certificate(Buffer.from(AsnConvert.serialize(basic.certs![0]!)));
    assert.equal(responder.publicKey.asymmetricKeyType, 'ml-dsa-65');
    assert.ok(responder.checkIssued(pqInt.cert) && responder.verify(pqInt.cert.publicKey), 'responder certificate signed by the ML-DSA intermediate');
    assert.ok(
      verify(null, firstElement(basicDer), responder.publicKey, Buffer.from(basic.signature)),
      'OCSP response signature verifies with the responder key',
    );
    const single = basic.tbsResponseData.responses[0]!;
    assert.ok(single.certStatus.revoked, 'revoked');
  });

  test('ACME: the pq-server directory issues for an ML-DSA-65 CSR (account key ES256) from the ML-DSA intermediate', async () => {
    const dir = await w.acme.directory('/pq-server/directory');
    const acct = await w.acme.newAccount(newKey('ES256'), {}, dir.newAccount);
    const names = ['acme.signet.test'];
    const order = await w.newOrder(acct, names, dir.newOrder);
    assert.equal(order.status, 201, order.text);
    await w.authorize(acct, order);
    await w.pollOrder(acct, order.headers.location!, 'ready');
    const csr = pqCsr(names);
    const fin = await w.acme.post(order.json.finalize, { csr: b64u(csr.der) }, acct);
    assert.equal(fin.status, 200, fin.text);
    const valid = await w.pollOrder(acct, order.headers.location!, 'valid');
    const dl = await w.acme.post(valid.json.certificate, '', acct);
    assert.equal(dl.status, 200, dl.text);
    const pems = dl.text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g)!;
    assert.equal(pems.length, 2);
    const leaf = new X509Certificate(pems[0]!);
    assert.ok(leaf.publicKey.equals(csr.publicKey));
    assert.ok(leaf.verify(pqInt.cert.publicKey) && new X509Certificate(pems[1]!).fingerprint256 === pqInt.cert.fingerprint256);
    // The same finalize with an ECDSA CSR is refused by the profile (badCSR).
    const order2 = await w.newOrder(acct, ['acme2.signet.test'], dir.newOrder);
    await w.authorize(acct, order2);
    await w.pollOrder(acct, order2.headers.location!, 'ready');
    const bad = await w.acme.post(order2.json.finalize, { csr: b64u(w.csr(['acme2.signet.test']).der) }, acct);
    assert.equal(bad.status, 400, bad.text);
    assert.equal(bad.json.type, 'urn:ietf:params:acme:error:badCSR');
  });

  test('server-side ML-DSA-65 key generation: PKCS#8 imports in node; Debian OpenSSL 3.0 reads the PKCS#12 certificates but not its key', () => {
    const dir = w.tmp.path;
    const pw = w.tmp.file('p12-pass', 'correct horse battery\n');
    const r = signet(
      [
        'issue',
        '--generate-key',
        'ml-dsa-65',
        '--san',
        'gen.signet.test',
        '--profile',
        'pq-server',
        '--key-out',
        `${dir}/gen.key`,
        '--p12',
        `${dir}/gen.p12`,
        '--p12-password-file',
        pw,
        '--out',
        `${dir}/gen.pem`,
      ],
      env,
    );
    assert.equal(r.status, 0, r.stderr);
    const key: KeyObject = createPrivateKey(readFileSync(`${dir}/gen.key`));
    assert.equal(key.asymmetricKeyType, 'ml-dsa-65');
    const cert = new X509Certificate(readFileSync(`${dir}/gen.pem`));
    const probe = randomBytes(32);
    assert.ok(verify(null, probe, cert.publicKey, sign(null, probe, key)), 'the key is the certificate key');
    assert.ok(cert.verify(pqInt.cert.publicKey));
    // OpenSSL 3.0 (no ML-DSA): the MAC and both encrypted bags open, the certificates print …
    const certsOnly = openssl(['pkcs12', '-in', `${dir}/gen.p12`, '-passin', 'pass:correct horse battery', '-nokeys']);
    assert.equal(certsOnly.status, 0, certsOnly.stderr);
    assert.equal(certsOnly.stdout.match(/-----BEGIN CERTIFICATE-----/g)?.length, 2, 'leaf and intermediate');
    // … the key bag decrypts, but its PKCS#8 names an algorithm 3.0 does not know: a clean refusal.
    const withKey = openssl(['pkcs12', '-in', `${dir}/gen.p12`, '-passin', 'pass:correct horse battery', '-nodes']);
    assert.notEqual(withKey.status, 0);
    assert.match(withKey.stderr, /unsupported private key algorithm[\s\S]*TYPE=2\.16\.840\.1\.101\.3\.4\.3\.18/);
    const pkey = openssl(['pkey', '-in', `${dir}/gen.key`, '-noout']);
    assert.notEqual(pkey.status, 0);
  });
});
