/**
 * Issue 20, "how it is checked (not by Signet's own code)": one real `signet serve` (SQLite, or
 * PostgreSQL under test:pg) with an ML-DSA-87 root, an ML-DSA-65 intermediate and a pq-server
 * profile. A leaf issued over REST from a CSR this test builds itself, a CRL and OCSP answers
 * are checked by
 *  - @noble/post-quantum through test/support/pq-verifier.ts (structures parsed by @peculiar),
 *  - OpenSSL 3.5 inside node 24: X509Certificate#verify along the chain and a real TLS 1.3
 *    handshake trusting only the ML-DSA root, hostname checked;
 * and Debian's OpenSSL 3.0 CLI and Go 1.19's crypto/x509, which predate ML-DSA, are shown to
 * refuse it cleanly (non-zero exit, a message naming the problem, no crash), not skipped.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, generateKeyPairSync, type KeyObject, randomBytes, sign, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type Server } from 'node:tls';
import { CertID, OCSPRequest, Request, TBSRequest } from '@peculiar/asn1-ocsp';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import { AlgorithmIdentifier, Certificate, SubjectPublicKeyInfo } from '@peculiar/asn1-x509';
import { api, getUrl, startServer, type RunningServer } from './helpers/cli.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';
import { openssl, selfSignedCa, TempDir } from './helpers/openssl.js';
import { requireTool } from './helpers/tools.js';
import { pqCsr } from './helpers/pq-csr.js';
import { checkIssuedBy, parseCertificate, pemBlocks, PqVerifyError, signedPart, verifyChain, verifyCrl, verifyOcsp } from './support/pq-verifier.js';

const SLH_DSA_SHA2_128S = '2.16.840.1.101.3.4.3.20';
const POLL_DEADLINE_MS = 15_000;
const PROFILES = { 'pq-server': { keyTypes: ['ml-dsa'], requireSan: true, defaultValidityDays: 30, maxValidityDays: 90, extKeyUsage: ['serverAuth'] } };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const hexSerial = (s: string) => BigInt(`0x${s.replace(/[^0-9a-f]/gi, '')}`).toString(16);

/** An OCSP request for one serial of the given issuer (SHA-1 CertID, as most clients send). */
function ocspRequest(issuerPem: string, serialHexValue: string): Uint8Array {
  const issuer = parseCertificate(issuerPem).cert;
  const sha1 = (b: ArrayBuffer | Uint8Array) =>
    new OctetString(
      createHash('sha1')
        .update(new Uint8Array(b as ArrayBuffer))
        .digest(),
    );
  const serial = Buffer.from(serialHexValue.length % 2 ? `0${serialHexValue}` : serialHexValue, 'hex');
  const certId = new CertID({
    hashAlgorithm: new AlgorithmIdentifier({ algorithm: '1.3.14.3.2.26', parameters: null }),
    issuerNameHash: sha1(AsnConvert.serialize(issuer.tbsCertificate.subject)),
    issuerKeyHash: sha1(issuer.tbsCertificate.subjectPublicKeyInfo.subjectPublicKey),
    serialNumber: new Uint8Array(serial[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), serial]) : serial).buffer,
  });
  return new Uint8Array(AsnConvert.serialize(new OCSPRequest({ tbsRequest: new TBSRequest({ requestList: [new Request({ reqCert: certId })] }) })));
}

async function postOcsp(url: string, body: Uint8Array): Promise<Uint8Array> {
  const res = await fetch(`${url}/ocsp`, { method: 'POST', headers: { 'content-type': 'application/ocsp-request' }, body: new Uint8Array(body) });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'application/ocsp-response');
  return new Uint8Array(await res.arrayBuffer());
}

/** Re-signs a certificate's TBS (after `edit`) with `key`, for the verifier's own negative cases. */
function resign(der: Uint8Array, key: KeyObject, edit: (c: Certificate) => void): Uint8Array {
  const cert = AsnConvert.parse(der, Certificate);
  edit(cert);
  cert.signatureValue = new Uint8Array(sign(null, Buffer.from(AsnConvert.serialize(cert.tbsCertificate)), key)).buffer;
  return new Uint8Array(AsnConvert.serialize(cert));
}

/** A copy of `der` (unsigned changes only) with its SubjectPublicKeyInfo replaced. */
function withKey(der: Uint8Array, spkiDer: Buffer, params?: ArrayBuffer | null): Certificate {
  const cert = AsnConvert.parse(der, Certificate);
  cert.tbsCertificate.subjectPublicKeyInfo = AsnConvert.parse(spkiDer, SubjectPublicKeyInfo);
  if (params !== undefined) cert.tbsCertificate.subjectPublicKeyInfo.algorithm.parameters = params;
  return cert;
}

const NULL_PARAMS = new Uint8Array([0x05, 0x00]).buffer;

describe('post-quantum hierarchy checked by implementations nobody on the project wrote', () => {
  const tmp = new TempDir();
  let env: TestEnv;
  let server: RunningServer;
  let rootId: string;
  let intId: string;
  let rootPem: string;
  let intPem: string;
  let leafPem: string;
  /** The `chain` field of the issuance response: what a user deploys next to the leaf. */
  let leafChain: string;
  let leafKey: KeyObject;
  let leafSerial: string;
  let revokedSerial: string;
  let crlDer: Uint8Array;
  let ocspDer: Uint8Array;

  before(async () => {
    const profiles = tmp.file('profiles.json', JSON.stringify(PROFILES));
    env = await createTestEnv({
      SIGNET_ROOT_KEY: 'ml-dsa-87',
      SIGNET_INTERMEDIATE_KEY: 'ml-dsa-65',
      SIGNET_PROFILES_FILE: profiles,
      SIGNET_CRL_COALESCE_MS: '200',
    });
    server = await startServer(env.env);
    const cas = (await api(server, 'GET', '/api/v1/cas')).json.items as any[];
    rootId = cas.find((c) => c.parentId === null).id;
    intId = cas.find((c) => c.parentId === rootId).id;
    rootPem = (await api(server, 'GET', `/api/v1/cas/${rootId}`)).json.certificate;
    intPem = (await api(server, 'GET', `/api/v1/cas/${intId}`)).json.certificate;
    const issue = async (dns: string) => {
      const { pem: csrPem, privateKey: key } = pqCsr([dns]);
      const r = await api(server, 'POST', '/api/v1/certificates', { csr: csrPem, profile: 'pq-server' });
      assert.equal(r.status, 201, r.text);
      return { pem: r.json.certificate as string, chain: r.json.chain as string, serial: r.json.serial as string, key };
    };
    const leaf = await issue('localhost');
    leafPem = leaf.pem;
    leafChain = leaf.chain;
    leafKey = leaf.key;
    leafSerial = leaf.serial;
    const doomed = await issue('revoked.localhost');
    revokedSerial = doomed.serial;
    const rv = await api(server, 'POST', `/api/v1/certificates/${revokedSerial}/revoke`, { reason: 'keyCompromise' });
    assert.equal(rv.status, 200, rv.text);
  });
  after(async () => {
    await server?.stop();
    await env?.cleanup();
    tmp.remove();
  });

  describe('@noble/post-quantum (FIPS 204) with @peculiar parsing', () => {
    test('the REST-issued leaf chains to the ML-DSA-87 root: ML-DSA-65 leaf signature, ML-DSA-87 intermediate signature', () => {
      assert.deepEqual(verifyChain([leafPem, intPem], rootPem).schemes, ['ML-DSA-65', 'ML-DSA-87']);
      // The chain the issuance response carries is that intermediate.
      assert.deepEqual(
        pemBlocks(leafChain).map((d) => Buffer.from(d).toString('hex')),
        [Buffer.from(parseCertificate(intPem).der).toString('hex')],
      );
      // The root may close the chain as well; it is trusted, not re-counted.
      assert.deepEqual(verifyChain([leafPem, intPem, rootPem], rootPem).schemes, ['ML-DSA-65', 'ML-DSA-87']);
    });

    test("the intermediate's CRL, fetched over HTTP, is ML-DSA-65-signed and lists the revoked serial only", async () => {
      const deadline = Date.now() + POLL_DEADLINE_MS;
      for (;;) {
        const res = await getUrl(`${server.url}/pki/${intId}.crl`);
        assert.equal(res.status, 200);
        const crl = verifyCrl(new Uint8Array(await res.arrayBuffer()), intPem);
        assert.equal(crl.scheme, 'ML-DSA-65');
        assert.ok(!crl.revoked.has(hexSerial(leafSerial)));
        if (crl.revoked.has(hexSerial(revokedSerial))) {
          crlDer = crl.der;
          break;
        }
        if (Date.now() > deadline) assert.fail(`the CRL never listed ${revokedSerial}: ${[...crl.revoked]}`);
        await sleep(100);
      }
    });

    test("the root's CRL is ML-DSA-87-signed", async () => {
      const res = await getUrl(`${server.url}/pki/${rootId}.crl`);
      assert.equal(res.status, 200);
      const der = new Uint8Array(await res.arrayBuffer());
      assert.equal(verifyCrl(der, rootPem).scheme, 'ML-DSA-87');
      // Signed by the root, not the intermediate: checked against the intermediate it is refused.
      assert.throws(() => verifyCrl(der, intPem), /CRL: issuer name is not the CA subject/);
    });

    test('OCSP (request built here, POSTed): revoked, good and unknown answers, signatures verified with noble', async () => {
      const revoked = verifyOcsp(await postOcsp(server.url, ocspRequest(intPem, hexSerial(revokedSerial))), intPem);
      assert.equal(revoked.statuses.get(hexSerial(revokedSerial)), 'revoked');
      const good = verifyOcsp(await postOcsp(server.url, ocspRequest(intPem, hexSerial(leafSerial))), intPem);
      assert.equal(good.statuses.get(hexSerial(leafSerial)), 'good');
      // Signed by a delegated responder whose certificate the ML-DSA-65 intermediate issued, with an ML-DSA-65 key of its own.
      // A serial never issued: unknown, not good.
      const never = `7${randomBytes(15).toString('hex')}`;
      const unknown = verifyOcsp(await postOcsp(server.url, ocspRequest(intPem, never)), intPem);
      assert.equal(unknown.statuses.get(BigInt(`0x${never}`).toString(16)), 'unknown');
      for (const r of [good, revoked, unknown]) assert.deepEqual([r.scheme, r.signer], ['ML-DSA-65', 'delegated']);
      ocspDer = await postOcsp(server.url, ocspRequest(intPem, hexSerial(leafSerial)));
    });
  });

  describe('the verifier can fail', () => {
    test('a flipped byte in the TBS is refused', () => {
      const der = parseCertificate(leafPem).der.slice();
      // Inside the TBS: the last byte of the validity's notAfter time is well inside the signed part.
      const cert = AsnConvert.parse(der, Certificate);
      const notAfter = Buffer.from(cert.tbsCertificate.validity.notAfter.getTime().toISOString().slice(2, 4));
      const at = Buffer.from(der).indexOf(Buffer.concat([Buffer.from([0x17, 0x0d]), notAfter]));
      assert.ok(at > 0);
      der[at + 4] = der[at + 4]! ^ 0x01;
      assert.throws(
        () => verifyChain([der, intPem], rootPem),
        (e: Error) => e instanceof PqVerifyError && /leaf: ML-DSA-65 signature does not verify/.test(e.message),
      );
    });

    test('a flipped byte in a CRL or an OCSP response is refused', () => {
      // The last byte of the given part: in the CRL the end of its TBS (the CRL number extension).
      const flipEndOfTbs = (der: Uint8Array, part: Uint8Array) => {
        const copy = der.slice();
        const end = Buffer.from(der).indexOf(Buffer.from(part)) + part.length - 1;
        assert.ok(end >= part.length - 1);
        copy[end] = copy[end]! ^ 0x01;
        return copy;
      };
      assert.equal(verifyCrl(crlDer, intPem).scheme, 'ML-DSA-65');
      assert.throws(() => verifyCrl(flipEndOfTbs(crlDer, signedPart(crlDer)), intPem), /CRL: ML-DSA-65 signature does not verify/);
      assert.equal(verifyOcsp(ocspDer, intPem).statuses.get(hexSerial(leafSerial)), 'good');
      // In the OCSP response: the last byte of the certificate's serial in the signed single response.
      const serial = Buffer.from(hexSerial(leafSerial).padStart(2 * Math.ceil(hexSerial(leafSerial).length / 2), '0'), 'hex');
      const tampered = flipEndOfTbs(ocspDer, serial);
      assert.throws(() => verifyOcsp(tampered, intPem), /OCSP response: ML-DSA-65 signature does not verify/);
    });

    test('a wrong issuer is refused: by name, by key, by key of another ML-DSA level', () => {
      assert.throws(() => verifyChain([leafPem], rootPem), /leaf: issuer name is not the issuer's subject/);
      const leaf = parseCertificate(leafPem);
      const intDer = parseCertificate(intPem).der;
      const other65 = generateKeyPairSync('ml-dsa-65').publicKey.export({ type: 'spki', format: 'der' });
      assert.throws(() => checkIssuedBy(leaf, withKey(intDer, other65), 'leaf'), /leaf: ML-DSA-65 signature does not verify/);
      const other87 = generateKeyPairSync('ml-dsa-87').publicKey.export({ type: 'spki', format: 'der' });
      assert.throws(
        () => checkIssuedBy(leaf, withKey(intDer, other87), 'leaf'),
        /issuer key is 2\.16\.840\.1\.101\.3\.4\.3\.19, signature is 2\.16\.840\.1\.101\.3\.4\.3\.18/,
      );
    });

    test('the SLH-DSA-SHA2-128s branch: a certificate re-signed with an SLH-DSA key verifies, flipped or mislabelled it does not', () => {
      // Signet starts no SLH-DSA hierarchy here (its signing takes seconds); this keeps the branch honest.
      const { publicKey, privateKey } = generateKeyPairSync('slh-dsa-sha2-128s');
      const issuer = withKey(parseCertificate(intPem).der, publicKey.export({ type: 'spki', format: 'der' }));
      const slh = resign(parseCertificate(leafPem).der, privateKey, (c) => {
        c.tbsCertificate.signature = new AlgorithmIdentifier({ algorithm: SLH_DSA_SHA2_128S });
        c.signatureAlgorithm = new AlgorithmIdentifier({ algorithm: SLH_DSA_SHA2_128S });
      });
      assert.equal(checkIssuedBy(parseCertificate(slh), issuer, 'leaf'), 'SLH-DSA-SHA2-128s');
      const flipped = slh.slice();
      const tbs = signedPart(slh);
      flipped[tbs.byteOffset + tbs.length - 1] = flipped[tbs.byteOffset + tbs.length - 1]! ^ 0x01;
      assert.throws(() => checkIssuedBy(parseCertificate(flipped), issuer, 'leaf'), /leaf: SLH-DSA-SHA2-128s signature does not verify/);
      // The ML-DSA-65 leaf as Signet signed it, checked against the SLH-DSA key: the OIDs disagree.
      assert.throws(
        () => checkIssuedBy(parseCertificate(leafPem), issuer, 'leaf'),
        /issuer key is 2\.16\.840\.1\.101\.3\.4\.3\.20, signature is 2\.16\.840\.1\.101\.3\.4\.3\.18/,
      );
    });

    test('parameters present (NULL) in the signature algorithm or the issuer key are refused, although the signature is valid', () => {
      const { publicKey, privateKey } = generateKeyPairSync('ml-dsa-65');
      const spki = publicKey.export({ type: 'spki', format: 'der' });
      const intDer = parseCertificate(intPem).der;
      const leafDer = parseCertificate(leafPem).der;
      // Control: re-signed by our own key, which the issuer stand-in carries: accepted.
      const control = resign(leafDer, privateKey, () => {});
      assert.equal(checkIssuedBy(parseCertificate(control), withKey(intDer, spki), 'leaf'), 'ML-DSA-65');
      const nullSig = resign(leafDer, privateKey, (c) => {
        c.tbsCertificate.signature.parameters = NULL_PARAMS;
        c.signatureAlgorithm.parameters = NULL_PARAMS;
      });
      assert.throws(() => checkIssuedBy(parseCertificate(nullSig), withKey(intDer, spki), 'leaf'), /leaf TBS signature: parameters present/);
      assert.throws(
        () => checkIssuedBy(parseCertificate(control), withKey(intDer, spki, NULL_PARAMS), 'leaf'),
        /leaf issuer SubjectPublicKeyInfo: parameters present/,
      );
    });
  });

  describe('OpenSSL 3.5 inside node 24', () => {
    test('X509Certificate#verify along the chain, and not across it', () => {
      const [root, int, leaf] = [rootPem, intPem, leafPem].map((p) => new X509Certificate(p));
      assert.equal(root!.verify(root!.publicKey), true);
      assert.equal(int!.verify(root!.publicKey), true);
      assert.equal(leaf!.verify(int!.publicKey), true);
      assert.equal(leaf!.checkIssued(int!), true);
      assert.equal(leaf!.verify(root!.publicKey), false);
      assert.equal(leaf!.publicKey.asymmetricKeyType, 'ml-dsa-65');
      assert.equal(int!.publicKey.asymmetricKeyType, 'ml-dsa-65');
      assert.equal(root!.publicKey.asymmetricKeyType, 'ml-dsa-87');
      assert.equal(leaf!.checkHost('localhost'), 'localhost');
    });

    describe('a TLS 1.3 handshake with the ML-DSA-65 leaf', () => {
      let tlsServer: Server;
      let port: number;
      let classicalRoot: string;
      before(async () => {
        tlsServer = createServer({ key: leafKey.export({ type: 'pkcs8', format: 'pem' }), cert: leafPem + leafChain, minVersion: 'TLSv1.3' }, (s) =>
          s.end('pq hello\n'),
        );
        await new Promise<void>((r) => tlsServer.listen(0, '127.0.0.1', r));
        port = (tlsServer.address() as { port: number }).port;
        classicalRoot = selfSignedCa(tmp, 'classical-root', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], '/CN=Classical Root').cert;
      });
      after(() => new Promise<void>((r) => tlsServer.close(() => r())));

      const handshake = (servername: string, ca: string) =>
        new Promise<{ protocol: string | null; authorized: boolean; data: string; sigalg?: string }>((resolve, reject) => {
          const s = connect({ host: '127.0.0.1', port, servername, ca: [ca] }, () => {
            let data = '';
            s.on('data', (d) => {
              data += d;
            });
            s.on('end', () => resolve({ protocol: s.getProtocol(), authorized: s.authorized, data }));
          });
          s.on('error', reject);
        });

      test('trusting only the ML-DSA root, servername localhost: TLSv1.3, authorized', async () => {
        const r = await handshake('localhost', rootPem);
        assert.equal(r.protocol, 'TLSv1.3');
        assert.equal(r.authorized, true);
        assert.equal(r.data, 'pq hello\n');
      });

      test('a name not in the certificate: ERR_TLS_CERT_ALTNAME_INVALID', async () => {
        await assert.rejects(handshake('not-in-the-cert.example', rootPem), (e: NodeJS.ErrnoException) => e.code === 'ERR_TLS_CERT_ALTNAME_INVALID');
      });

      test('a client trusting only another (classical) root refuses', async () => {
        await assert.rejects(
          handshake('localhost', readFileSync(classicalRoot, 'utf8')),
          (e: NodeJS.ErrnoException) => e.code === 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
        );
      });
    });
  });

  /**
   * Debian's OpenSSL 3.0 CLI and Go 1.19's crypto/x509 predate ML-DSA (OpenSSL 3.5 and no Go
   * release of that era know its OIDs). These cases record exactly how they refuse: a non-zero
   * exit and a message naming the undecodable key / unimplemented algorithm, never a crash and
   * never a silent pass. The versions are asserted: a newer tool may read ML-DSA, and then these
   * expectations must be revisited rather than quietly hold or fail.
   */
  describe('tools that predate ML-DSA refuse it cleanly', () => {
    let files: { root: string; int: string; leaf: string; crl: string };
    before(() => {
      requireTool('openssl', 'openssl');
      requireTool('go', 'golang-go');
      files = {
        root: tmp.file('root.pem', rootPem),
        int: tmp.file('int.pem', intPem),
        leaf: tmp.file('leaf.pem', leafPem),
        crl: tmp.file('int.crl', Buffer.from(crlDer)),
      };
    });

    test('Debian OpenSSL 3.0: verify exits 2, unable to decode the ML-DSA keys', () => {
      assert.match(openssl(['version']).stdout, /^OpenSSL 3\.0\./, 'this case records OpenSSL 3.0; a newer CLI may read ML-DSA');
      for (const target of [files.leaf, files.root]) {
        const r = openssl(['verify', '-CAfile', files.root, '-untrusted', files.int, target]);
        assert.equal(r.status, 2, r.stdout + r.stderr);
        assert.doesNotMatch(r.stdout, /: OK/);
        // The root's key cannot be decoded, so it is not even recognised as self-signed, and no chain is built.
        assert.match(r.stderr, /error 20 at 0 depth lookup: unable to get local issuer certificate/);
        assert.match(r.stderr, /X509_PUBKEY_get0:decode error/);
        assert.match(r.stderr, /X509_self_signed:unable to get certs public key/);
      }
    });

    test('Debian OpenSSL 3.0: x509 -text prints the bare OIDs and "Unable to load Public Key"; -pubkey exits 1', () => {
      const text = openssl(['x509', '-noout', '-text', '-in', files.leaf]);
      // It still prints what it can (exit 0): the structure parses, only the key and signature are opaque to it.
      assert.equal(text.status, 0, text.stderr);
      assert.match(text.stdout, /Signature Algorithm: 2\.16\.840\.1\.101\.3\.4\.3\.18\n/);
      assert.match(text.stdout, /Public Key Algorithm: 2\.16\.840\.1\.101\.3\.4\.3\.18\n\s+Unable to load Public Key/);
      assert.match(text.stdout, /DNS:localhost/);
      assert.match(
        openssl(['x509', '-noout', '-text', '-in', files.root]).stdout,
        /Public Key Algorithm: 2\.16\.840\.1\.101\.3\.4\.3\.19\n\s+Unable to load Public Key/,
      );
      const pub = openssl(['x509', '-noout', '-pubkey', '-in', files.leaf]);
      assert.equal(pub.status, 1);
      assert.match(pub.stderr, /Error getting public key[\s\S]*X509_PUBKEY_get0:decode error/);
    });

    test('Debian OpenSSL 3.0: checking the ML-DSA-65 CRL exits 1 (issuer key undecodable); -text still lists the revoked serial', () => {
      const r = openssl(['crl', '-inform', 'DER', '-in', files.crl, '-CAfile', files.int, '-noout']);
      assert.notEqual(r.status, 0, r.stdout + r.stderr);
      assert.match(r.stderr, /^Error getting CRL issuer public key\n.*X509_PUBKEY_get0:decode error/);
      // Without the issuer it prints the CRL: the revoked serial is readable, the algorithm is only an OID to it.
      const text = openssl(['crl', '-inform', 'DER', '-in', files.crl, '-noout', '-text']);
      assert.equal(text.status, 0, text.stderr);
      assert.match(text.stdout, /Signature Algorithm: 2\.16\.840\.1\.101\.3\.4\.3\.18\n/);
      assert.match(
        text.stdout.replace(/:/g, '').toLowerCase(),
        new RegExp(`serial number ${hexSerial(revokedSerial).padStart(2 * Math.ceil(hexSerial(revokedSerial).length / 2), '0')}`),
      );
    });

    test('Go 1.19 crypto/x509: ParseCertificate accepts an unknown key, CheckSignatureFrom and Verify fail with "algorithm unimplemented"', () => {
      const version = spawnSync('go', ['version'], { encoding: 'utf8' }).stdout;
      assert.match(version, /go1\.19\./, 'this case records Go 1.19; a newer Go may differ');
      const r = runGo(GO_PROGRAM, [files.root, files.int, files.leaf]);
      assert.equal(r.signal, null);
      assert.equal(r.status, 1, r.output);
      assert.doesNotMatch(r.output, /panic|goroutine/);
      for (const name of ['root', 'intermediate', 'leaf'])
        assert.match(r.output, new RegExp(`^${name}: parsed; PublicKeyAlgorithm=Unknown SignatureAlgorithm=Unknown PublicKey=<nil>$`, 'm'));
      assert.match(r.output, /^leaf\.CheckSignatureFrom\(intermediate\): x509: cannot verify signature: algorithm unimplemented$/m);
      assert.match(
        r.output,
        /^leaf\.Verify: x509: certificate signed by unknown authority \(possibly because of "x509: cannot verify signature: algorithm unimplemented" while trying to verify candidate authority certificate "[^"]+"\)$/m,
      );
    });
  });
});

/** Go's view of ML-DSA certificates, step by step (stdlib only). Exit 0 only if Verify succeeds. */
const GO_PROGRAM = String.raw`package main

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
)

func known(unknown bool) string {
	if unknown {
		return "Unknown"
	}
	return "known"
}

func load(name, path string) *x509.Certificate {
	data, err := os.ReadFile(path)
	if err != nil {
		fmt.Printf("%s: read: %v\n", name, err)
		os.Exit(3)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		fmt.Printf("%s: no PEM block\n", name)
		os.Exit(3)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		fmt.Printf("%s: parse: %v\n", name, err)
		os.Exit(1)
	}
	fmt.Printf("%s: parsed; PublicKeyAlgorithm=%s SignatureAlgorithm=%s PublicKey=%T\n", name,
		known(cert.PublicKeyAlgorithm == x509.UnknownPublicKeyAlgorithm), known(cert.SignatureAlgorithm == x509.UnknownSignatureAlgorithm), cert.PublicKey)
	return cert
}

func main() {
	root := load("root", os.Args[1])
	inter := load("intermediate", os.Args[2])
	leaf := load("leaf", os.Args[3])
	fmt.Printf("leaf.CheckSignatureFrom(intermediate): %v\n", leaf.CheckSignatureFrom(inter))
	roots := x509.NewCertPool()
	roots.AddCert(root)
	inters := x509.NewCertPool()
	inters.AddCert(inter)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, DNSName: "localhost"}); err != nil {
		fmt.Printf("leaf.Verify: %v\n", err)
		os.Exit(1)
	}
	fmt.Println("leaf.Verify: OK")
}
`;

/**
 * Builds and runs a one-file Go program written to a temp dir now. GOPATH is that temp dir;
 * GOCACHE is the shared one under the system temp dir the strict verifiers also use when the home
 * is read-only (helpers/strict.ts), so a warm cache is reused; stdlib only, never a module proxy.
 */
function runGo(source: string, args: string[]): { status: number | null; signal: NodeJS.Signals | null; output: string } {
  const dir = mkdtempSync(join(tmpdir(), 'signet-pq-go-'));
  try {
    writeFileSync(join(dir, 'main.go'), source);
    const env = {
      ...process.env,
      GOPATH: join(dir, 'gopath'),
      GOCACHE: join(tmpdir(), 'signet-go-cache'),
      GOPROXY: 'off',
      GOTOOLCHAIN: 'local',
      GOENV: 'off',
      GOWORK: 'off',
      GOFLAGS: '',
    };
    const build = spawnSync('go', ['build', '-o', join(dir, 'pq'), join(dir, 'main.go')], { env, encoding: 'utf8', timeout: 600_000 });
    if (build.status !== 0) throw new Error(`go build failed: ${build.stderr}`);
    const r = spawnSync(join(dir, 'pq'), args, { encoding: 'utf8', timeout: 60_000 });
    return { status: r.status, signal: r.signal, output: `${r.stdout}${r.stderr}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
