import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { SignetError } from '../src/errors.js';
import { bitString, contextExplicit, objectIdentifier, octetString, sequence, set, smallInteger, tlv } from '../src/pki/der.js';
import { OID } from '../src/pki/keys.js';
import { parseCsr, type ParsedCsr } from '../src/pki/csr.js';
import { checkAllowed, validateCommonName, validateSan } from '../src/pki/names.js';
import { derToPem, pemToDer } from '../src/pki/pem.js';
import { throwsProblem } from './helpers/problems.js';

const fixturePath = (name: string) => new URL(`../certs-fixtures/${name}`, import.meta.url);
const fixture = (name: string): string => readFileSync(fixturePath(name), 'utf8');
const fixtureBytes = (name: string): Buffer => readFileSync(fixturePath(name));
const derOf = (name: string): Buffer => pemToDer(fixture(name), ['CERTIFICATE REQUEST']).der;

const FULL_SANS = [
  { type: 'dns', value: 'www.example.com' },
  { type: 'dns', value: 'example.com' },
  { type: 'ip', value: '10.0.0.1' },
  { type: 'ip', value: '2001:db8::1' }, // written as 2001:DB8:0:0:0:0:0:1 in the openssl config
  { type: 'email', value: 'ops@example.com' },
  { type: 'uri', value: 'https://www.example.com/' },
];

test('accepted keys parse, verify and describe themselves', () => {
  const cases: [string, string][] = [
    ['csr-rsa-2048.pem', 'rsa-2048'],
    ['csr-rsa-8192-max.pem', 'rsa-8192'],
    ['csr-ec-p256.pem', 'ecdsa-p256'],
    ['csr-ec-p384.pem', 'ecdsa-p384'],
    ['csr-ec-p521.pem', 'ecdsa-p521'],
    ['csr-ed25519.pem', 'ed25519'],
  ];
  for (const [file, alg] of cases) {
    const csr = parseCsr(fixture(file));
    assert.equal(csr.keyAlgorithm, alg, file);
    assert.deepEqual(csr.sans, FULL_SANS, file);
    assert.equal(csr.subject.commonName, 'www.example.com');
    assert.equal(csr.subject.dn, 'CN=www.example.com');
    assert.deepEqual(csr.requestedExtensions, ['2.5.29.17']);
    assertConsistent(csr, derOf(file));
    // The names in these requests pass the name rules end to end.
    checkAllowed(csr.sans, { dnsSuffixes: ['example.com'], ipRanges: ['10.0.0.0/8', '2001:db8::/32'], emailDomains: ['example.com'] });
    validateCommonName(csr.subject.commonName, csr.sans);
  }
});

function assertConsistent(csr: ParsedCsr, der: Buffer): void {
  assert.ok(csr.der.equals(der));
  assert.equal(csr.sha256, createHash('sha256').update(der).digest('hex'));
  assert.ok(csr.spkiDer.equals(csr.publicKey.export({ type: 'spki', format: 'der' })));
  assert.ok(der.includes(csr.subject.nameDer));
  assert.equal(csr.subject.nameDer[0], 0x30);
}

test('refused keys name the key', () => {
  const cases: [string, ...string[]][] = [
    ['csr-rsa-1024-weak.pem', 'RSA key of 1024 bits is too weak', '2048 to 8192'],
    ['csr-rsa-8704-too-large.pem', 'RSA key of 8704 bits is too large'],
    ['csr-rsa-2052-odd-size.pem', '2052 bits is not a multiple of 8'],
    ['csr-secp256k1.pem', 'ECDSA curve secp256k1 is not supported; use P-256, P-384 or P-521'],
    ['csr-brainpoolp256r1.pem', 'ECDSA curve brainpoolP256r1 is not supported'],
    ['csr-ec-explicit-params.pem', 'explicit curve parameters'],
    ['csr-ed448.pem', 'Ed448 keys are not supported'],
    ['csr-dsa.pem', 'DSA keys are not supported'],
    ['csr-rsa-pss-key.pem', 'RSASSA-PSS keys are not supported'],
  ];
  for (const [file, ...details] of cases) throwsProblem(() => parseCsr(fixture(file)), 'bad-key', ...details);
});

test('malformed and unverifiable requests are bad-csr with a precise detail', () => {
  const cases: [string | Buffer, ...(string | RegExp)[]][] = [
    [fixture('csr-bad-signature.pem'), 'CSR signature does not verify (proof of possession failed)'],
    [fixture('csr-sha1-signature.pem'), 'sha1WithRSAEncryption', 'not supported'],
    [fixture('csr-wrong-label-certificate.pem'), "PEM label 'CERTIFICATE' is not a certificate request"],
    [fixture('csr-garbage.txt'), 'not valid base64'],
    [fixtureBytes('csr-garbage.txt'), 'not valid base64'],
    [fixtureBytes('csr-truncated.der'), /^truncated or malformed DER: /],
    [fixtureBytes('csr-trailing-bytes.der'), 'truncated or malformed DER: 2 trailing bytes'],
    [fixture('csr-two-common-names.pem'), '2 commonName attributes'],
    ['', 'CSR is empty'],
    [Buffer.alloc(0), 'CSR is empty'],
    ['   \n', 'CSR is empty'],
    [Buffer.from([0xff, 0x00, 0x12]), 'truncated or malformed DER: expected a SEQUENCE (0x30) at offset 0, found 0xff'],
    [Buffer.from([0x30, 0x00]), 'truncated or malformed DER: CertificationRequest has 0 elements'],
    [Buffer.from([0x30, 0x80, 0x00, 0x00]), 'truncated or malformed DER'], // BER indefinite length
    ['MIIB', /^truncated or malformed DER/], // decodes, but to a truncated header
    ['not base64 at all!', 'not valid base64'],
    ['-----BEGIN CERTIFICATE REQUEST-----\n!!!!\n-----END CERTIFICATE REQUEST-----\n', 'not valid base64'],
    ['-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n', 'no END line'],
    ['-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE-----\n', 'does not match'],
    [fixture('csr-ec-p256.pem') + fixture('csr-ec-p384.pem'), 'found 2'],
    [Buffer.alloc(70_000, 0x30), 'limit is 65536'],
  ];
  for (const [input, ...details] of cases) throwsProblem(() => parseCsr(input), 'bad-csr', ...details);
});

test('truncation at any point is refused, never crashes', () => {
  const der = derOf('csr-rsa-2048.pem');
  for (let n = 1; n < der.length; n += 7) {
    throwsProblem(() => parseCsr(der.subarray(0, n)), 'bad-csr');
  }
});

test('every accepted input form gives the same request', () => {
  const pem = fixture('csr-ec-p256.pem');
  const der = derOf('csr-ec-p256.pem');
  const forms: [string, string | Uint8Array][] = [
    ['PEM', pem],
    ['PEM with CRLF and explanatory text', `Subject: www.example.com\r\n${pem.replace(/\n/g, '\r\n')}trailing words\r\n`],
    ['NEW CERTIFICATE REQUEST label', pem.replace(/CERTIFICATE REQUEST/g, 'NEW CERTIFICATE REQUEST')],
    ['re-wrapped PEM', derToPem(der, 'CERTIFICATE REQUEST')],
    ['base64 DER', der.toString('base64')],
    ['base64 DER with line breaks', der.toString('base64').replace(/(.{60})/g, '$1\n')],
    ['base64url DER, unpadded (ACME)', der.toString('base64url')],
    ['DER Buffer', der],
    ['DER Uint8Array', new Uint8Array(der)],
    ['PEM as bytes', Buffer.from(pem)],
  ];
  for (const [label, input] of forms) {
    const csr = parseCsr(input);
    assert.ok(csr.der.equals(der), label);
    assert.equal(csr.keyAlgorithm, 'ecdsa-p256', label);
  }
});

test('requested extensions other than SAN are listed, not honoured', () => {
  const csr = parseCsr(fixture('csr-ca-true-requested.pem'));
  assert.deepEqual(csr.requestedExtensions.sort(), ['2.5.29.15', '2.5.29.17', '2.5.29.19']);
  assert.deepEqual(csr.sans, [{ type: 'dns', value: 'evil.example.com' }]);
  assert.equal(csr.subject.dn, 'O=Mallory,CN=evil.example.com');
});

test('requests whose names the policy must refuse still parse', () => {
  const noSan = parseCsr(fixture('csr-no-san.pem'));
  assert.deepEqual(noSan.sans, []);
  assert.deepEqual(noSan.requestedExtensions, []);
  throwsProblem(() => validateCommonName(noSan.subject.commonName, noSan.sans), 'rejected-name', 'not one of the subjectAltNames');

  const ipInDns = parseCsr(fixture('csr-ip-in-dns-san.pem'));
  assert.deepEqual(ipInDns.sans, [{ type: 'dns', value: '10.0.0.1' }]);
  assert.equal(ipInDns.subject.dn, '');
  assert.equal(ipInDns.subject.commonName, undefined);
  throwsProblem(() => checkAllowed(ipInDns.sans, {}), 'rejected-name', 'iPAddress SAN');

  const upper = parseCsr(fixture('csr-uppercase-dns-san.pem'));
  throwsProblem(() => checkAllowed(upper.sans, {}), 'rejected-name', "'www.example.com'", 'lower-case');

  const cn = parseCsr(fixture('csr-cn-not-in-san.pem'));
  throwsProblem(() => validateCommonName(cn.subject.commonName, cn.sans), 'rejected-name', "'other.example.com'");
});

test('SAN forms Signet does not issue are refused by name', () => {
  throwsProblem(() => parseCsr(fixture('csr-san-othername.pem')), 'rejected-name', 'otherName');
});

test('subject DN is rendered as RFC 4514', () => {
  const csr = parseCsr(fixture('csr-dn-needs-escaping.pem'));
  // serialNumber has no RFC 4514 short name, so it appears as OID=#hex of its DER value; the
  // multi-valued RDN keeps its DER (sorted) order, which is what openssl encoded.
  assert.equal(csr.subject.dn, '2.5.4.5=#13023432+CN=www.example.com,OU=R\\+D,O=Acme\\, Inc.,C=US');
  assert.equal(csr.subject.commonName, 'www.example.com');
});

// ---------------------------------------------------------------------------------------------
// Hand-built requests for defects openssl will not produce.

interface Build {
  key?: { privateKey: KeyObject; publicKey: KeyObject };
  subject?: Buffer;
  extensions?: Buffer[];
  sigOid?: string;
  sigParams?: Buffer;
  version?: number;
  spki?: Buffer;
  signWith?: (data: Buffer) => Buffer;
}

const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });

const cnName = (cn: string) => sequence(set(sequence(objectIdentifier('2.5.4.3'), tlv(0x0c, Buffer.from(cn)))));
const ext = (oid: string, value: Buffer) => sequence(objectIdentifier(oid), octetString(value));
const san = (...names: Buffer[]) => ext('2.5.29.17', sequence(...names));

function buildCsr(b: Build = {}): Buffer {
  const key = b.key ?? p256;
  const attrs = b.extensions ? contextExplicit(0, sequence(objectIdentifier('1.2.840.113549.1.9.14'), set(sequence(...b.extensions)))) : tlv(0xa0);
  const info = sequence(
    smallInteger(b.version ?? 0),
    b.subject ?? cnName('www.example.com'),
    b.spki ?? key.publicKey.export({ type: 'spki', format: 'der' }),
    attrs,
  );
  const isEc = key.publicKey.asymmetricKeyType === 'ec';
  const sig = b.signWith ? b.signWith(info) : sign('sha256', info, isEc ? { key: key.privateKey, dsaEncoding: 'der' } : key.privateKey);
  const alg = sequence(
    objectIdentifier(b.sigOid ?? (isEc ? OID.ecdsaSha256 : OID.sha256WithRSA)),
    ...(b.sigParams ? [b.sigParams] : isEc ? [] : [Buffer.from([5, 0])]),
  );
  return sequence(info, alg, bitString(sig));
}

test('hand-built requests: the builder itself makes valid CSRs', () => {
  const csr = parseCsr(buildCsr({ extensions: [san(tlv(0x82, Buffer.from('a.example.com')))] }));
  assert.deepEqual(csr.sans, [{ type: 'dns', value: 'a.example.com' }]);
  assert.equal(parseCsr(buildCsr({ key: rsa })).keyAlgorithm, 'rsa-2048');
});

/** The RSA key's SPKI with another public exponent (the INTEGER's content bytes as given). */
function rsaWithExponent(e: Buffer): Buffer {
  const { n } = rsa.publicKey.export({ format: 'jwk' });
  return sequence(
    sequence(objectIdentifier(OID.rsaEncryption), Buffer.from([5, 0])),
    bitString(sequence(tlv(0x02, Buffer.concat([Buffer.from([0]), Buffer.from(n!, 'base64url')])), tlv(0x02, e))),
  );
}

test('hand-built requests: structural and signature defects', () => {
  const cases: [string, Buffer, string, ...string[]][] = [
    [
      'RSA signature labelled as ECDSA',
      buildCsr({ key: rsa, sigOid: OID.ecdsaSha256, sigParams: Buffer.alloc(0) }),
      'bad-csr',
      'ecdsa-with-SHA256 does not match the rsa-2048 public key',
    ],
    ['ECDSA with parameters', buildCsr({ sigParams: Buffer.from([5, 0]) }), 'bad-csr', 'unexpected parameters'],
    ['version 2', buildCsr({ version: 2 }), 'bad-csr', 'version 2'],
    [
      'signature by another key',
      buildCsr({ signWith: (d) => sign('sha256', d, { key: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, dsaEncoding: 'der' }) }),
      'bad-csr',
      'proof of possession failed',
    ],
    ['empty signature', buildCsr({ signWith: () => Buffer.alloc(0) }), 'bad-csr', 'proof of possession failed'],
    ['5-byte iPAddress SAN', buildCsr({ extensions: [san(tlv(0x87, Buffer.from([1, 2, 3, 4, 5])))] }), 'bad-csr', 'iPAddress of 5 bytes'],
    ['empty SAN', buildCsr({ extensions: [san()] }), 'bad-csr', 'subjectAltName extension is empty'],
    [
      'SAN twice',
      buildCsr({ extensions: [san(tlv(0x82, Buffer.from('a.test'))), san(tlv(0x82, Buffer.from('b.test')))] }),
      'bad-csr',
      'requested more than once',
    ],
    ['SAN not GeneralNames', buildCsr({ extensions: [ext('2.5.29.17', Buffer.from('junk'))] }), 'bad-csr', 'subjectAltName extension is malformed'],
    ['directoryName SAN', buildCsr({ extensions: [san(tlv(0xa4, cnName('x')))] }), 'rejected-name', 'directoryName'],
    ['registeredID SAN', buildCsr({ extensions: [san(tlv(0x88, Buffer.from([0x2a, 0x03])))] }), 'rejected-name', 'registeredID'],
    [
      'commonName as INTEGER',
      buildCsr({ subject: sequence(set(sequence(objectIdentifier('2.5.4.3'), smallInteger(5)))) }),
      'bad-csr',
      'commonName is not a string',
    ],
    [
      'commonName with invalid UTF-8',
      buildCsr({ subject: sequence(set(sequence(objectIdentifier('2.5.4.3'), tlv(0x0c, Buffer.from([0xc3, 0x28]))))) }),
      'bad-csr',
      'subject name is malformed',
    ],
    [
      'SPKI that is not a key',
      buildCsr({ spki: sequence(sequence(objectIdentifier(OID.ecPublicKey), objectIdentifier(OID.p256)), bitString(Buffer.from([4, 1, 2, 3]))) }),
      'bad-key',
      'could not be decoded',
    ],
    [
      'X25519 key',
      buildCsr({ spki: generateKeyPairSync('x25519').publicKey.export({ type: 'spki', format: 'der' }) }),
      'bad-key',
      'X25519 keys are not supported',
    ],
    [
      'P-224 key',
      buildCsr({ spki: generateKeyPairSync('ec', { namedCurve: 'P-224' }).publicKey.export({ type: 'spki', format: 'der' }) }),
      'bad-key',
      'ECDSA curve P-224 is not supported',
    ],
    [
      'unknown curve OID',
      buildCsr({ spki: sequence(sequence(objectIdentifier(OID.ecPublicKey), objectIdentifier('1.2.3.4.5')), bitString(Buffer.from([4]))) }),
      'bad-key',
      'curve with OID 1.2.3.4.5',
    ],
    [
      'point at infinity',
      buildCsr({ spki: sequence(sequence(objectIdentifier(OID.ecPublicKey), objectIdentifier(OID.p256)), bitString(Buffer.from([0]))) }),
      'bad-key',
      'ECDSA P-256 public key is the point at infinity',
    ],
    [
      'RSA exponent above 2^31−1',
      buildCsr({ spki: rsaWithExponent(Buffer.from([0x00, 0x80, 0, 0, 1])) }),
      'bad-key',
      'RSA public exponent 2147483649 is too large',
    ],
    [
      'non-DER: critical FALSE spelt out',
      buildCsr({ extensions: [sequence(objectIdentifier('2.5.29.17'), tlv(0x01, Buffer.from([0])), octetString(sequence(tlv(0x82, Buffer.from('a.test')))))] }),
      'bad-csr',
      'encodes critical FALSE explicitly (DER omits a DEFAULT value) at offset',
    ],
  ];
  for (const [label, der, type, ...details] of cases) {
    try {
      throwsProblem(() => parseCsr(der), type, ...details);
    } catch (e) {
      (e as Error).message = `${label}: ${(e as Error).message}`;
      throw e;
    }
  }
});

test('hand-built requests: an RSA key with exponent 1 cannot prove possession', () => {
  // With e = 1 the "signature" is just the padded digest, which anyone can compute.
  const jwk = rsa.publicKey.export({ format: 'jwk' });
  let weak: KeyObject;
  try {
    weak = createPublicKey({ key: { ...jwk, e: 'AQ' }, format: 'jwk' });
  } catch {
    return; // This OpenSSL refuses such keys outright, which is also fine.
  }
  const der = buildCsr({ key: rsa, spki: weak.export({ type: 'spki', format: 'der' }) });
  throwsProblem(() => parseCsr(der), 'bad-key', 'public exponent 1');
});

test('hand-built requests: SAN values are returned as text for the name rules', () => {
  const csr = parseCsr(
    buildCsr({
      extensions: [
        ext('2.5.29.19', sequence()),
        san(
          tlv(0x82, Buffer.from('bücher.example')),
          tlv(0x87, Buffer.from('fe800000000000000000000000000001', 'hex')),
          tlv(0x87, Buffer.from('00000000000000000000ffff0a000001', 'hex')),
        ),
      ],
    }),
  );
  assert.deepEqual(csr.sans, [
    { type: 'dns', value: 'bücher.example' },
    { type: 'ip', value: 'fe80::1' },
    { type: 'ip', value: '::ffff:10.0.0.1' },
  ]);
  assert.deepEqual(csr.requestedExtensions, ['2.5.29.19', '2.5.29.17']);
  throwsProblem(() => validateSan(csr.sans[0]!), 'rejected-name', "'xn--bcher-kva.example'");
  throwsProblem(() => validateSan(csr.sans[2]!), 'rejected-name', 'IPv4-mapped');
});

test('any single corrupted byte yields a parsed request or a SignetError, never another exception', () => {
  for (const file of ['csr-ec-p256.pem', 'csr-ed25519.pem']) {
    const der = derOf(file);
    for (let i = 0; i < der.length; i++) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const bad = Buffer.from(der);
        bad[i]! ^= mask;
        try {
          parseCsr(bad);
        } catch (e) {
          assert.ok(e instanceof SignetError, `${file} byte ${i} ^ ${mask}: ${String(e)}`);
        }
      }
    }
  }
});

test('subject values that need RFC 4514 escaping', () => {
  const dn = (value: string) =>
    parseCsr(buildCsr({ subject: sequence(set(sequence(objectIdentifier('2.5.4.10'), tlv(0x0c, Buffer.from(value))))) })).subject.dn;
  const cases: [string, string][] = [
    ['Acme, Inc.', 'O=Acme\\, Inc.'],
    ['#hash', 'O=\\#hash'],
    [' lead and trail ', 'O=\\ lead and trail\\ '],
    ['back\\slash ', 'O=back\\\\slash\\ '],
    ['a+b;c<d>e"f', 'O=a\\+b\\;c\\<d\\>e\\"f'],
    ['tab\there', 'O=tab\\09here'],
    ['Zürich', 'O=Zürich'],
  ];
  for (const [value, want] of cases) assert.equal(dn(value), want, value);
  // BMPString and PrintableString decode too.
  const bmp = sequence(set(sequence(objectIdentifier('2.5.4.3'), tlv(0x1e, Buffer.from('\u0000a\u0000.\u0000t', 'latin1')))));
  assert.equal(parseCsr(buildCsr({ subject: bmp })).subject.commonName, 'a.t');
  throwsProblem(() => parseCsr('A'.repeat(200_000)), 'bad-csr', 'limit is');
});
