/**
 * OCSP against real OpenSSL: requests made by `openssl ocsp -reqout`, parsed by
 * src/pki/ocsp.ts (and cross-checked with @peculiar/asn1-ocsp), responses built and signed
 * here, then judged by `openssl ocsp -respin … -resp_text`. One throwaway CA per key
 * algorithm, with a delegated responder certificate (OCSPSigning + noCheck).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AsnConvert } from '@peculiar/asn1-schema';
import { OCSPRequest, OCSPResponse, BasicOCSPResponse } from '@peculiar/asn1-ocsp';
import { ownKey, signerFor, type Signer } from '../src/pki/keys.js';
import { booleanTrue, contextExplicit, objectIdentifier, octetString, sequence, tlv, unsignedInteger } from '../src/pki/der.js';
import { SignetError } from '../src/errors.js';
import {
  buildBasicOcspResponse,
  encodeCertId,
  encodeOcspErrorResponse,
  encodeSingleResponse,
  issuerHashes,
  MAX_OCSP_REQUESTS,
  OcspMalformed,
  OcspUnknownHashAlgorithm,
  parseOcspRequest,
  type OcspCertStatus,
  type OcspErrorStatus,
  type ParsedOcspRequest,
} from '../src/pki/ocsp.js';

// --- helpers ----------------------------------------------------------------------------------

function openssl(cwd: string, args: string[]): { status: number; out: string } {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  if (r.error) throw r.error;
  return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

function opensslOk(cwd: string, args: string[]): string {
  const r = openssl(cwd, args);
  assert.equal(r.status, 0, `openssl ${args.join(' ')} failed:\n${r.out}`);
  return r.out;
}

const CONFIG = `
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[leaf_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:leaf.test
authorityKeyIdentifier = keyid
authorityInfoAccess = OCSP;URI:http://ocsp.test/
[responder_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = OCSPSigning
authorityKeyIdentifier = keyid
1.3.6.1.5.5.7.48.1.5 = DER:05:00
`;

const KEYGEN: Record<string, string[]> = {
  'ecdsa-p256': ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'],
  'rsa-2048': ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'],
  ed25519: ['-algorithm', 'ED25519'],
};

const SERIALS = {
  good: '8f1e2d3c4b5a69788796a5b4c3d2e1f0', // high bit set
  revoked: '0123456789abcdef',
  other: '7e57',
};

interface TestCa {
  dir: string;
  caDer: Buffer;
  caSigner: Signer;
  responderDer: Buffer;
  responderSigner: Signer;
  /** The good leaf's key and certificate: an ordinary certificate without OCSPSigning. */
  leafSigner: Signer;
  leafDer: Buffer;
}

const derOf = (dir: string, file: string) => Buffer.from(new X509Certificate(readFileSync(join(dir, file))).raw);
const signerOf = (dir: string, file: string) => signerFor(ownKey(createPrivateKey(readFileSync(join(dir, file)))));

function makeCa(alg: string): TestCa {
  const dir = mkdtempSync(join(tmpdir(), `signet-ocsp-${alg}-`));
  const run = (...args: string[]) => opensslOk(dir, args);
  writeFileSync(join(dir, 'openssl.cnf'), CONFIG);
  run('genpkey', ...KEYGEN[alg]!, '-out', 'ca.key');
  run(
    'req',
    '-x509',
    '-config',
    'openssl.cnf',
    '-key',
    'ca.key',
    '-subj',
    `/O=Signet Tests/CN=OCSP Test CA ${alg}`,
    '-days',
    '30',
    '-extensions',
    'ca_ext',
    '-out',
    'ca.pem',
  );
  const issue = (name: string, keyAlg: string, serialHex: string, ext: string) => {
    run('genpkey', ...KEYGEN[keyAlg]!, '-out', `${name}.key`);
    run('req', '-new', '-config', 'openssl.cnf', '-key', `${name}.key`, '-subj', `/CN=${name}.test`, '-out', `${name}.csr`);
    run(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-set_serial',
      `0x${serialHex}`,
      '-days',
      '10',
      '-extfile',
      'openssl.cnf',
      '-extensions',
      ext,
      '-out',
      `${name}.pem`,
    );
  };
  issue('responder', alg, '0badcafe', 'responder_ext');
  issue('good', 'ecdsa-p256', SERIALS.good, 'leaf_ext');
  issue('revoked', 'ecdsa-p256', SERIALS.revoked, 'leaf_ext');
  issue('other', 'ecdsa-p256', SERIALS.other, 'leaf_ext');
  return {
    dir,
    caDer: derOf(dir, 'ca.pem'),
    caSigner: signerOf(dir, 'ca.key'),
    responderDer: derOf(dir, 'responder.pem'),
    responderSigner: signerOf(dir, 'responder.key'),
    leafSigner: signerOf(dir, 'good.key'),
    leafDer: derOf(dir, 'good.pem'),
  };
}

const MINUTE = 60_000;
const DAY = 86_400_000;

function respond(
  parsed: ParsedOcspRequest,
  statuses: OcspCertStatus[],
  responder: { keyHash: Buffer; signer: Signer; certDer?: Buffer },
  nonceChoice: Buffer | 'echo' | 'omit' = 'echo',
): Promise<Buffer> {
  const now = Date.now();
  const nonce = nonceChoice === 'echo' ? parsed.nonce : nonceChoice === 'omit' ? undefined : nonceChoice;
  return buildBasicOcspResponse({
    responderKeyHash: responder.keyHash,
    producedAt: new Date(now),
    singleResponses: parsed.requests.map((r, i) =>
      encodeSingleResponse({
        certIdDer: r.certIdDer,
        status: statuses[i]!,
        thisUpdate: new Date(now - MINUTE),
        nextUpdate: new Date(now + DAY),
      }),
    ),
    ...(nonce ? { nonce } : {}),
    signer: responder.signer,
    ...(responder.certDer ? { responderCertDer: responder.certDer } : {}),
  });
}

/** The same request parsed by @peculiar/asn1-ocsp must give the same fields. */
function crossCheck(der: Buffer, parsed: ParsedOcspRequest): void {
  const req = AsnConvert.parse(der, OCSPRequest);
  assert.equal(req.tbsRequest.requestList.length, parsed.requests.length);
  req.tbsRequest.requestList.forEach((r, i) => {
    const mine = parsed.requests[i]!;
    assert.equal(Buffer.from(r.reqCert.issuerNameHash.buffer).toString('hex'), mine.issuerNameHash.toString('hex'));
    assert.equal(Buffer.from(r.reqCert.issuerKeyHash.buffer).toString('hex'), mine.issuerKeyHash.toString('hex'));
    assert.equal(BigInt('0x' + Buffer.from(r.reqCert.serialNumber).toString('hex')), BigInt('0x' + mine.serial.toString('hex')));
    assert.ok(Buffer.from(AsnConvert.serialize(r.reqCert)).equals(mine.certIdDer));
  });
  const nonceExt = req.tbsRequest.requestExtensions?.find((e) => e.extnID === '1.3.6.1.5.5.7.48.1.2');
  if (nonceExt) {
    // extnValue = DER OCTET STRING { nonce }
    const inner = Buffer.from(nonceExt.extnValue.buffer);
    assert.equal(inner.subarray(2).toString('hex'), parsed.nonce?.toString('hex'));
  } else {
    assert.equal(parsed.nonce, undefined);
  }
}

// --- against OpenSSL --------------------------------------------------------------------------

for (const alg of ['ecdsa-p256', 'rsa-2048', 'ed25519']) {
  describe(`OCSP with an ${alg} CA, checked by openssl`, () => {
    let ca: TestCa;
    let dir: string;
    let delegated: { keyHash: Buffer; signer: Signer; certDer: Buffer };
    const read = (f: string) => readFileSync(join(dir, f));
    const parseFile = (f: string) => {
      const der = read(f);
      const parsed = parseOcspRequest(der);
      crossCheck(der, parsed);
      return parsed;
    };

    before(() => {
      ca = makeCa(alg);
      dir = ca.dir;
      delegated = { keyHash: issuerHashes(ca.responderDer).sha1.keyHash, signer: ca.responderSigner, certDer: ca.responderDer };
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    test('SHA-1 request with a nonce → good, signed by the delegated responder, nonce echoed', async () => {
      opensslOk(dir, ['ocsp', '-issuer', 'ca.pem', '-cert', 'good.pem', '-reqout', 'req.der']);
      const parsed = parseFile('req.der');
      assert.equal(parsed.requests.length, 1);
      const [r] = parsed.requests;
      assert.equal(r!.hashAlgorithm, 'sha1');
      assert.equal(r!.serial.toString('hex'), SERIALS.good);
      const hashes = issuerHashes(ca.caDer).sha1;
      assert.ok(r!.issuerNameHash.equals(hashes.nameHash), 'issuerNameHash matches issuerHashes()');
      assert.ok(r!.issuerKeyHash.equals(hashes.keyHash), 'issuerKeyHash matches issuerHashes()');
      assert.equal(parsed.nonce?.length, 16);
      // A pre-signed response's CertID (built without the request) is byte-identical.
      assert.ok(
        encodeCertId({ hashAlgorithm: 'sha1', issuerNameHash: hashes.nameHash, issuerKeyHash: hashes.keyHash, serial: r!.serial }).equals(r!.certIdDer),
      );

      writeFileSync(join(dir, 'resp.der'), await respond(parsed, [{ kind: 'good' }], delegated));
      const text = opensslOk(dir, ['ocsp', '-reqin', 'req.der', '-respin', 'resp.der', '-CAfile', 'ca.pem', '-resp_text']);
      assert.match(text, /Response verify OK/);
      assert.match(text, /OCSP Response Status: successful \(0x0\)/);
      assert.match(text, /Response Type: Basic OCSP Response/);
      assert.match(text, /Responder Id: [0-9A-F]{40}/);
      assert.match(text, /Cert Status: good/);
      assert.match(text, /OCSP Nonce:/);
      assert.doesNotMatch(text, /Nonce Verify error|no nonce in response/i);
      const summary = opensslOk(dir, ['ocsp', '-respin', 'resp.der', '-issuer', 'ca.pem', '-cert', 'good.pem', '-CAfile', 'ca.pem', '-no_nonce']);
      assert.match(summary, /good\.pem: good/);
      assert.match(summary, /This Update: .*\n\s*Next Update: /);
    });

    test('SHA-256 CertID → revoked with reason keyCompromise', async () => {
      opensslOk(dir, ['ocsp', '-sha256', '-issuer', 'ca.pem', '-cert', 'revoked.pem', '-reqout', 'req256.der']);
      const parsed = parseFile('req256.der');
      const [r] = parsed.requests;
      assert.equal(r!.hashAlgorithm, 'sha256');
      assert.equal(r!.serial.toString('hex'), SERIALS.revoked);
      assert.ok(r!.issuerNameHash.equals(issuerHashes(ca.caDer).sha256.nameHash));
      assert.ok(r!.issuerKeyHash.equals(issuerHashes(ca.caDer).sha256.keyHash));

      const revokedAt = new Date(Date.UTC(2025, 0, 2, 3, 4, 5));
      writeFileSync(join(dir, 'resp.der'), await respond(parsed, [{ kind: 'revoked', revokedAt, reason: 'keyCompromise' }], delegated));
      const text = opensslOk(dir, ['ocsp', '-reqin', 'req256.der', '-respin', 'resp.der', '-CAfile', 'ca.pem', '-resp_text']);
      assert.match(text, /Response verify OK/);
      assert.match(text, /Hash Algorithm: sha256/);
      assert.match(text, /Cert Status: revoked\s*\n\s*Revocation Time: Jan\s+2 03:04:05 2025 GMT\s*\n\s*Revocation Reason: keyCompromise \(0x1\)/);
      assert.doesNotMatch(text, /Nonce Verify error|no nonce in response/i);
      const summary = opensslOk(dir, ['ocsp', '-respin', 'resp.der', '-sha256', '-issuer', 'ca.pem', '-cert', 'revoked.pem', '-CAfile', 'ca.pem', '-no_nonce']);
      assert.match(summary, /revoked\.pem: revoked/);
      assert.match(summary, /Reason: keyCompromise/);
    });

    test('several certificates, no nonce → good / revoked (unspecified: no reason) / unknown, in order', async () => {
      opensslOk(dir, ['ocsp', '-no_nonce', '-issuer', 'ca.pem', '-cert', 'good.pem', '-cert', 'revoked.pem', '-cert', 'other.pem', '-reqout', 'multi.der']);
      const parsed = parseFile('multi.der');
      assert.equal(parsed.nonce, undefined);
      assert.deepEqual(
        parsed.requests.map((r) => r.serial.toString('hex')),
        [SERIALS.good, SERIALS.revoked, SERIALS.other],
      );
      writeFileSync(
        join(dir, 'resp.der'),
        await respond(
          parsed,
          [{ kind: 'good' }, { kind: 'revoked', revokedAt: new Date(Date.now() - DAY), reason: 'unspecified' }, { kind: 'unknown' }],
          delegated,
        ),
      );
      const text = opensslOk(dir, ['ocsp', '-reqin', 'multi.der', '-respin', 'resp.der', '-CAfile', 'ca.pem', '-resp_text']);
      assert.match(text, /Response verify OK/);
      assert.equal(text.match(/Cert Status:/g)?.length, 3);
      assert.doesNotMatch(text, /Revocation Reason/);
      assert.doesNotMatch(text, /OCSP Nonce/);
      const summary = opensslOk(dir, [
        'ocsp',
        '-respin',
        'resp.der',
        '-issuer',
        'ca.pem',
        '-cert',
        'good.pem',
        '-cert',
        'revoked.pem',
        '-cert',
        'other.pem',
        '-CAfile',
        'ca.pem',
        '-no_nonce',
      ]);
      assert.match(summary, /good\.pem: good[\s\S]*revoked\.pem: revoked[\s\S]*other\.pem: unknown/);
    });

    test('the CA signing for itself, and a responder certificate supplied out of band (-VAfile)', async () => {
      opensslOk(dir, ['ocsp', '-issuer', 'ca.pem', '-cert', 'good.pem', '-reqout', 'req.der']);
      const parsed = parseFile('req.der');
      const byCa = await respond(parsed, [{ kind: 'good' }], { keyHash: issuerHashes(ca.caDer).sha1.keyHash, signer: ca.caSigner });
      writeFileSync(join(dir, 'resp.der'), byCa);
      assert.match(
        opensslOk(dir, ['ocsp', '-reqin', 'req.der', '-respin', 'resp.der', '-CAfile', 'ca.pem', '-VAfile', 'ca.pem', '-resp_text']),
        /Response verify OK/,
      );
      assert.match(opensslOk(dir, ['ocsp', '-reqin', 'req.der', '-respin', 'resp.der', '-CAfile', 'ca.pem', '-verify_other', 'ca.pem']), /Response verify OK/);

      const noCert = await respond(parsed, [{ kind: 'good' }], { keyHash: delegated.keyHash, signer: delegated.signer });
      writeFileSync(join(dir, 'resp.der'), noCert);
      assert.match(opensslOk(dir, ['ocsp', '-reqin', 'req.der', '-respin', 'resp.der', '-CAfile', 'ca.pem', '-VAfile', 'responder.pem']), /Response verify OK/);
    });

    test('a pre-signed response without the nonce is accepted with a warning; a wrong nonce is caught', async () => {
      opensslOk(dir, ['ocsp', '-issuer', 'ca.pem', '-cert', 'good.pem', '-reqout', 'req.der']);
      const parsed = parseFile('req.der');
      const preSigned = await respond(parsed, [{ kind: 'good' }], delegated, 'omit');
      writeFileSync(join(dir, 'resp.der'), preSigned);
      const ignored = opensslOk(dir, ['ocsp', '-reqin', 'req.der', '-respin', 'resp.der', '-CAfile', 'ca.pem']);
      assert.match(ignored, /WARNING: no nonce in response/);
      assert.match(ignored, /Response verify OK/);

      writeFileSync(join(dir, 'resp.der'), await respond(parsed, [{ kind: 'good' }], delegated, randomBytes(16)));
      assert.match(openssl(dir, ['ocsp', '-reqin', 'req.der', '-respin', 'resp.der', '-CAfile', 'ca.pem']).out, /Nonce Verify error/);
    });

    test('negative controls: a tampered signature and a signer without OCSPSigning are refused by openssl', async () => {
      opensslOk(dir, ['ocsp', '-no_nonce', '-issuer', 'ca.pem', '-cert', 'good.pem', '-reqout', 'req.der']);
      const parsed = parseFile('req.der');
      const resp = await respond(parsed, [{ kind: 'good' }], delegated);
      const basic = AsnConvert.parse(Buffer.from(AsnConvert.parse(resp, OCSPResponse).responseBytes!.response.buffer), BasicOCSPResponse);
      const sig = Buffer.from(basic.signature);
      const at = resp.indexOf(sig);
      assert.ok(at > 0);
      const tampered = Buffer.from(resp);
      tampered[at + 10]! ^= 0x01;
      writeFileSync(join(dir, 'resp.der'), tampered);
      const bad = openssl(dir, ['ocsp', '-reqin', 'req.der', '-respin', 'resp.der', '-CAfile', 'ca.pem']);
      assert.doesNotMatch(bad.out, /Response verify OK/);
      assert.match(bad.out, /Response Verify Failure/);

      const byLeaf = await respond(parsed, [{ kind: 'good' }], { keyHash: issuerHashes(ca.leafDer).sha1.keyHash, signer: ca.leafSigner, certDer: ca.leafDer });
      writeFileSync(join(dir, 'resp.der'), byLeaf);
      const refused = openssl(dir, ['ocsp', '-reqin', 'req.der', '-respin', 'resp.der', '-CAfile', 'ca.pem']);
      assert.doesNotMatch(refused.out, /Response verify OK/);
    });
  });
}

// --- error responses and encoders -------------------------------------------------------------

describe('OCSP error responses and encoders', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'signet-ocsp-err-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('error responses are the constant 5 bytes and openssl reads them', () => {
    const codes: Record<OcspErrorStatus, number> = { malformedRequest: 1, internalError: 2, tryLater: 3, sigRequired: 5, unauthorized: 6 };
    for (const [status, code] of Object.entries(codes) as [OcspErrorStatus, number][]) {
      const der = encodeOcspErrorResponse(status);
      assert.equal(der.toString('hex'), `30030a010${code}`);
      writeFileSync(join(dir, 'err.der'), der);
      const out = openssl(dir, ['ocsp', '-respin', 'err.der', '-resp_text', '-noverify']).out;
      assert.match(out, new RegExp(`Responder Error: ${status.toLowerCase()} \\(${code}\\)`));
    }
    assert.throws(() => encodeOcspErrorResponse('successful' as OcspErrorStatus), SignetError);
  });

  test('encodeSingleResponse: exact status encodings', () => {
    const certIdDer = encodeCertId({
      hashAlgorithm: 'sha1',
      issuerNameHash: Buffer.alloc(20, 1),
      issuerKeyHash: Buffer.alloc(20, 2),
      serial: Buffer.from([0, 0x80]),
    });
    const thisUpdate = new Date(Date.UTC(2025, 0, 1));
    const nextUpdate = new Date(Date.UTC(2025, 0, 2));
    const times = Buffer.concat([Buffer.from('180f', 'hex'), Buffer.from('20250101000000Z'), Buffer.from('a011180f', 'hex'), Buffer.from('20250102000000Z')]);
    const single = (status: OcspCertStatus) => encodeSingleResponse({ certIdDer, status, thisUpdate, nextUpdate });
    const body = (statusHex: string) => {
      const content = Buffer.concat([certIdDer, Buffer.from(statusHex, 'hex'), times]);
      return Buffer.concat([Buffer.from([0x30, content.length]), content]).toString('hex');
    };
    assert.equal(single({ kind: 'good' }).toString('hex'), body('8000'));
    assert.equal(single({ kind: 'unknown' }).toString('hex'), body('8200'));
    const rt = Buffer.concat([Buffer.from('180f', 'hex'), Buffer.from('20241231235959Z')]).toString('hex');
    const revokedAt = new Date(Date.UTC(2024, 11, 31, 23, 59, 59));
    assert.equal(single({ kind: 'revoked', revokedAt, reason: 'superseded' }).toString('hex'), body(`a116${rt}a0030a0104`));
    assert.equal(single({ kind: 'revoked', revokedAt, reason: 'unspecified' }).toString('hex'), body(`a111${rt}`));
    assert.equal(single({ kind: 'revoked', revokedAt }).toString('hex'), body(`a111${rt}`));
    assert.throws(() => encodeSingleResponse({ certIdDer, status: { kind: 'good' }, thisUpdate: nextUpdate, nextUpdate: thisUpdate }), SignetError);
    assert.throws(() => single({ kind: 'revoked', revokedAt, reason: 'nope' as 'superseded' }), SignetError);
  });

  test('issuerHashes refuses what is not a certificate', () => {
    assert.throws(() => issuerHashes(Buffer.from('300300', 'hex')), SignetError);
    assert.throws(() => issuerHashes(randomBytes(64)), SignetError);
  });
});

// --- malformed requests -----------------------------------------------------------------------

describe('parseOcspRequest rejects malformed requests', () => {
  const NULL = Buffer.from([0x05, 0x00]);
  const SHA1 = '1.3.14.3.2.26';
  const NONCE = '1.3.6.1.5.5.7.48.1.2';
  const certId = (o: { oid?: string; params?: Buffer | null; nameHash?: Buffer; keyHash?: Buffer; serialTlv?: Buffer } = {}) =>
    sequence(
      sequence(objectIdentifier(o.oid ?? SHA1), ...(o.params === null ? [] : [o.params ?? NULL])),
      octetString(o.nameHash ?? Buffer.alloc(20, 0xaa)),
      octetString(o.keyHash ?? Buffer.alloc(20, 0xbb)),
      o.serialTlv ?? unsignedInteger(Buffer.from('00c0ffee', 'hex')),
    );
  const ext = (oid: string, value: Buffer, critical = false) => sequence(objectIdentifier(oid), ...(critical ? [booleanTrue] : []), octetString(value));
  const request = (o: { certIds?: Buffer[]; requests?: Buffer[]; exts?: Buffer[]; before?: Buffer[]; after?: Buffer[] } = {}) =>
    sequence(
      sequence(
        ...(o.before ?? []),
        sequence(...(o.requests ?? (o.certIds ?? [certId()]).map((c) => sequence(c)))),
        ...(o.exts ? [contextExplicit(2, sequence(...o.exts))] : []),
      ),
      ...(o.after ?? []),
    );
  const nonceExt = (n: Buffer) => ext(NONCE, octetString(n));
  const malformed = (der: Uint8Array, what: string) => assert.throws(() => parseOcspRequest(der), OcspMalformed, what);

  test('hand-built baseline parses, with the expected fields', () => {
    const parsed = parseOcspRequest(request({ exts: [nonceExt(Buffer.alloc(32, 7))] }));
    assert.equal(parsed.requests.length, 1);
    assert.equal(parsed.requests[0]!.serial.toString('hex'), 'c0ffee');
    assert.equal(parsed.nonce?.toString('hex'), '07'.repeat(32));
    // as a plain Uint8Array (not a Buffer), too
    const u8 = new Uint8Array(request());
    assert.equal(parseOcspRequest(u8).requests[0]!.hashAlgorithm, 'sha1');
  });

  test('garbage, empty, truncated, trailing bytes', () => {
    const good = request({ exts: [nonceExt(randomBytes(16))] });
    malformed(Buffer.alloc(0), 'empty');
    malformed(Buffer.from('30'), 'one byte');
    malformed(Buffer.from('hello, world'), 'text');
    for (let i = 0; i < 500; i++) {
      const junk = randomBytes(1 + (i % 200));
      assert.throws(
        () => parseOcspRequest(junk),
        (e: unknown) => e instanceof OcspMalformed || e instanceof OcspUnknownHashAlgorithm,
      );
    }
    for (let n = 0; n < good.length; n++) malformed(good.subarray(0, n), `truncated to ${n}`);
    malformed(Buffer.concat([good, Buffer.from([0])]), 'one trailing byte');
    malformed(Buffer.concat([good, Buffer.from('3000', 'hex')]), 'a trailing element');
    malformed(Buffer.concat([good, good]), 'two requests back to back');
  });

  test('BER and non-DER encodings', () => {
    const good = request();
    const indefinite = Buffer.concat([Buffer.from([0x30, 0x80]), good.subarray(2), Buffer.from([0, 0])]);
    malformed(indefinite, 'indefinite length');
    const nonMinimal = Buffer.concat([Buffer.from([0x30, 0x81, good[1]!]), good.subarray(2)]);
    malformed(nonMinimal, 'non-minimal length');
    malformed(request({ certIds: [certId({ serialTlv: Buffer.from('0203000001', 'hex') })] }), 'non-minimal INTEGER');
    malformed(request({ certIds: [certId({ serialTlv: Buffer.from('0200', 'hex') })] }), 'empty INTEGER');
    malformed(request({ certIds: [certId({ params: Buffer.from('0401ff', 'hex') })] }), 'hash parameters not NULL');
    malformed(request({ certIds: [certId({ nameHash: Buffer.alloc(19) })] }), 'SHA-1 name hash of 19 bytes');
    malformed(request({ certIds: [certId({ keyHash: Buffer.alloc(32) })] }), 'SHA-1 key hash of 32 bytes');
    malformed(request({ before: [contextExplicit(0, Buffer.from('020101', 'hex'))] }), 'version 2');
    malformed(sequence(Buffer.from('0500', 'hex')), 'not a TBSRequest');
  });

  test('request count: none and too many are malformed; the limit itself is fine', () => {
    malformed(request({ certIds: [] }), 'no requests');
    const many = (n: number) => request({ certIds: Array.from({ length: n }, () => certId()) });
    assert.equal(parseOcspRequest(many(MAX_OCSP_REQUESTS)).requests.length, MAX_OCSP_REQUESTS);
    malformed(many(MAX_OCSP_REQUESTS + 1), 'too many requests');
    assert.throws(() => parseOcspRequest(many(3), { maxRequests: 2 }), OcspMalformed);
  });

  test('nonce rules (RFC 8954): 1..32 octets inside an OCTET STRING, at most one', () => {
    assert.equal(parseOcspRequest(request({ exts: [nonceExt(Buffer.from([9]))] })).nonce?.toString('hex'), '09');
    assert.equal(parseOcspRequest(request({ exts: [nonceExt(Buffer.alloc(32))] })).nonce?.length, 32);
    malformed(request({ exts: [nonceExt(Buffer.alloc(0))] }), 'empty nonce');
    malformed(request({ exts: [nonceExt(Buffer.alloc(33))] }), '33-byte nonce');
    malformed(request({ exts: [ext(NONCE, randomBytes(16).fill(0x30, 0, 1))] }), 'raw nonce, not an OCTET STRING');
    malformed(request({ exts: [nonceExt(Buffer.alloc(8)), nonceExt(Buffer.alloc(8))] }), 'two nonces');
    assert.equal(parseOcspRequest(request({ exts: [ext(NONCE, octetString(Buffer.alloc(16, 1)), true)] })).nonce?.length, 16, 'a critical nonce is understood');
  });

  test('extensions: unknown non-critical ignored, unknown critical refused, empty list refused', () => {
    assert.equal(parseOcspRequest(request({ exts: [ext('1.3.6.1.5.5.7.48.1.4', sequence(objectIdentifier('1.3.6.1.5.5.7.48.1.1')))] })).nonce, undefined);
    malformed(request({ exts: [ext('1.2.3.4', Buffer.from('0500', 'hex'), true)] }), 'unknown critical request extension');
    malformed(
      request({ requests: [sequence(certId(), contextExplicit(0, sequence(ext('1.2.3.4', Buffer.from('0500', 'hex'), true))))] }),
      'unknown critical single-request extension',
    );
    assert.equal(
      parseOcspRequest(request({ requests: [sequence(certId(), contextExplicit(0, sequence(ext('1.2.3.4', Buffer.from('0500', 'hex')))))] })).requests.length,
      1,
    );
    malformed(request({ requests: [sequence(certId(), contextExplicit(0, sequence()))] }), 'empty singleRequestExtensions');
    malformed(request({ exts: [] }), 'empty requestExtensions');
  });

  test('the DEFAULT version v1 encoded explicitly is not DER: malformed', () => {
    const v1 = contextExplicit(0, Buffer.from('020100', 'hex'));
    assert.throws(
      () => parseOcspRequest(request({ before: [v1] })),
      (e: unknown) => e instanceof OcspMalformed && /version v1 is encoded explicitly; DER omits a DEFAULT value/.test(e.message),
    );
    malformed(
      request({ before: [v1, contextExplicit(1, tlv(0x82, Buffer.from('client.test')))], exts: [nonceExt(Buffer.alloc(4, 1))] }),
      'explicit v1 with a requestorName',
    );
  });

  test('accepted and ignored: requestorName, optionalSignature; absent hash parameters', () => {
    const requestor = contextExplicit(1, tlv(0x82, Buffer.from('client.test')));
    const signature = contextExplicit(0, sequence(sequence(objectIdentifier('1.2.840.10045.4.3.2')), Buffer.from('03020000', 'hex')));
    const parsed = parseOcspRequest(request({ before: [requestor], after: [signature], exts: [nonceExt(Buffer.alloc(4, 1))] }));
    assert.equal(parsed.requests.length, 1);
    assert.equal(parsed.nonce?.toString('hex'), '01010101');
    const noParams = certId({ params: null });
    const p2 = parseOcspRequest(request({ certIds: [noParams] }));
    assert.ok(p2.requests[0]!.certIdDer.equals(noParams), 'certIdDer is echoed exactly, even without NULL parameters');
  });

  test('an unknown hash algorithm is OcspUnknownHashAlgorithm (→ unauthorized), unless the message is also malformed', () => {
    const md5 = certId({ oid: '1.2.840.113549.2.5', nameHash: Buffer.alloc(16), keyHash: Buffer.alloc(16) });
    assert.throws(
      () => parseOcspRequest(request({ certIds: [md5] })),
      (e: unknown) => e instanceof OcspUnknownHashAlgorithm && e.oid === '1.2.840.113549.2.5',
    );
    assert.throws(() => parseOcspRequest(request({ certIds: [certId(), md5] })), OcspUnknownHashAlgorithm);
    const whole = request({ certIds: [md5] });
    malformed(whole.subarray(0, whole.length - 1), 'truncated message with an md5 CertID');
    malformed(request({ certIds: [md5], exts: [nonceExt(Buffer.alloc(40))] }), 'md5 CertID and a bad nonce');
    for (const [h, n] of [
      ['2.16.840.1.101.3.4.2.1', 32],
      ['2.16.840.1.101.3.4.2.2', 48],
      ['2.16.840.1.101.3.4.2.3', 64],
    ] as const) {
      assert.ok(parseOcspRequest(request({ certIds: [certId({ oid: h, nameHash: Buffer.alloc(n), keyHash: Buffer.alloc(n) })] })).requests[0]);
    }
  });

  test('a negative serial is passed through (it matches nothing), zero is one byte', () => {
    assert.equal(parseOcspRequest(request({ certIds: [certId({ serialTlv: Buffer.from('0201ff', 'hex') })] })).requests[0]!.serial.toString('hex'), 'ff');
    assert.equal(parseOcspRequest(request({ certIds: [certId({ serialTlv: Buffer.from('020100', 'hex') })] })).requests[0]!.serial.toString('hex'), '00');
  });

  test('mutation fuzz: only typed errors, and whatever parses agrees with @peculiar/asn1-ocsp', () => {
    const base = request({
      certIds: [certId(), certId({ oid: '2.16.840.1.101.3.4.2.1', nameHash: Buffer.alloc(32, 1), keyHash: Buffer.alloc(32, 2) })],
      exts: [nonceExt(Buffer.alloc(16, 5))],
    });
    let parsedCount = 0;
    for (let i = 0; i < 3000; i++) {
      const m = Buffer.from(base);
      const flips = 1 + (i % 3);
      for (let k = 0; k < flips; k++) m[(Math.random() * m.length) | 0] = (Math.random() * 256) | 0;
      let parsed: ParsedOcspRequest;
      try {
        parsed = parseOcspRequest(m);
      } catch (e) {
        assert.ok(e instanceof OcspMalformed || e instanceof OcspUnknownHashAlgorithm, `unexpected ${String(e)}`);
        continue;
      }
      parsedCount++;
      crossCheck(m, parsed);
    }
    assert.ok(parsedCount > 0);
  });
});
