/**
 * Issue 12, items 1 and 10: every key from outside is checked by Signet's own rules before
 * node:crypto sees it (a CSR whose EC key is the point at infinity used to abort the whole
 * process), and CSRs must be DER, not BER.
 *
 * Units first (public-key.ts, private-key.ts, the CSR parser, the ACME JWK import), then a
 * real `signet serve` (SQLite, or PostgreSQL under SIGNET_TEST_POSTGRES) sent the hostile
 * requests over HTTP: each is a 400 naming the problem, stores nothing, and the process lives.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type JsonWebKey, type KeyObject } from 'node:crypto';
import { AlgorithmIdentifier } from '@peculiar/asn1-x509';
import { RSAPrivateKey } from '@peculiar/asn1-rsa';
import { AsnConvert } from '@peculiar/asn1-schema';
import { SignetError } from '../src/errors.js';
import { bitString, objectIdentifier, octetString, sequence, set, smallInteger, tlv } from '../src/pki/der.js';
import { OID, type Signer } from '../src/pki/keys.js';
import { parseCsr, parseCsrFast, parseCsrFull } from '../src/pki/csr.js';
import { CURVES, ED25519_SMALL_ORDER_Y, importPublicJwk, importSpki } from '../src/pki/public-key.js';
import { checkPrivateKey } from '../src/pki/private-key.js';
import { buildCaTbs } from '../src/pki/ca-template.js';
import { algorithmDer, newSerial, signTbs } from '../src/pki/certificate.js';
import { dnToDer } from '../src/pki/dn.js';
import { derToPem } from '../src/pki/pem.js';
import { importJwk, verifyEab } from '../src/acme/jws.js';
import { api, ROOT, startServer, type RunningServer } from './helpers/cli.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';
import { openssl } from './helpers/openssl.js';
import { throwsProblem } from './helpers/problems.js';
import { countRows, sql } from './helpers/sql.js';

// ---------------------------------------------------------------------------------------------
// Building blocks: SPKIs, CSRs and certificates around any key bytes

const ALG_EC = sequence(objectIdentifier(OID.ecPublicKey));
const ecSpki = (curveOid: string, point: Uint8Array) => sequence(sequence(objectIdentifier(OID.ecPublicKey), objectIdentifier(curveOid)), bitString(point));
const rsaSpki = (n: Uint8Array, e: Uint8Array) =>
  sequence(sequence(objectIdentifier(OID.rsaEncryption), Buffer.from([5, 0])), bitString(sequence(uint(n), uint(e))));
const edSpki = (raw: Uint8Array) => sequence(sequence(objectIdentifier(OID.ed25519)), bitString(raw));
/** A minimal positive DER INTEGER of unsigned big-endian bytes. */
const uint = (b: Uint8Array) => tlv(0x02, b[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : Buffer.from(b));
const _big = (b: Uint8Array) => BigInt('0x' + Buffer.from(b).toString('hex'));
const bytesOf = (v: bigint, size: number) => Buffer.from(v.toString(16).padStart(size * 2, '0'), 'hex');

const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ed = generateKeyPairSync('ed25519');
const spkiOf = (k: KeyObject) => (k.type === 'public' ? k : createPublicKey(k)).export({ format: 'der', type: 'spki' });
/** An EC key's uncompressed point 04‖X‖Y. */
const pointOf = (k: KeyObject) => {
  const j = (k.type === 'public' ? k : createPublicKey(k)).export({ format: 'jwk' });
  return Buffer.concat([Buffer.from([4]), Buffer.from(j.x!, 'base64url'), Buffer.from(j.y!, 'base64url')]);
};

const EXT_REQ = '1.2.840.113549.1.9.14';
const cnName = (cn: string) => sequence(set(sequence(objectIdentifier('2.5.4.3'), tlv(0x0c, Buffer.from(cn)))));
const sanValue = (dns: string) => sequence(tlv(0x82, Buffer.from(dns)));
const attrs = (...exts: Buffer[]) => tlv(0xa0, sequence(objectIdentifier(EXT_REQ), set(sequence(...exts))));

/** certificationRequestInfo from its parts (each already encoded, so a test can make any of them non-DER). */
const infoOf = (o: { version?: Buffer; name?: Buffer; spki?: Buffer; attributes?: Buffer } = {}) =>
  sequence(
    o.version ?? smallInteger(0),
    o.name ?? cnName('a.example.com'),
    o.spki ?? spkiOf(p256.privateKey),
    o.attributes ?? attrs(sequence(objectIdentifier('2.5.29.17'), octetString(sanValue('a.example.com')))),
  );

/** A CSR over exactly these info bytes, signed by the P-256 key (so only what the test broke is wrong). */
function signedCsr(info: Buffer, key: KeyObject = p256.privateKey): Buffer {
  const sig = sign('sha256', info, { key, dsaEncoding: 'der' });
  return sequence(info, sequence(objectIdentifier(OID.ecdsaSha256)), bitString(sig));
}
const csrWithSpki = (spki: Buffer) => signedCsr(infoOf({ spki }));
const csrB64 = (der: Buffer) => der.toString('base64');

/** The issue's body: a P-256 CSR whose key is BIT STRING 00 00. */
const ISSUE_CSR = 'MFMwOgIBADAYMRYwFAYDVQQDDA1hLmV4YW1wbGUuY29tMBkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDAgAAoAAwCgYIKoZIzj0EAwIDCQAwBgIBAQIBAQ==';
const infinityCsr = (curveOid: string) => {
  const spki = ecSpki(curveOid, Buffer.from([0]));
  // As in the issue: a bogus ECDSA signature; the key is refused before any signature check.
  return sequence(infoOf({ spki, attributes: tlv(0xa0) }), sequence(objectIdentifier(OID.ecdsaSha256)), bitString(Buffer.from('3006020101020101', 'hex')));
};

/** Curve maths for building hostile points (test-only, independent of public-key.ts). */
function modPow(b: bigint, e: bigint, m: bigint): bigint {
  let r = 1n;
  for (b %= m; e > 0n; e >>= 1n) {
    if (e & 1n) r = (r * b) % m;
    b = (b * b) % m;
  }
  return r;
}
/** The first point with a small x on the curve (p ≡ 3 mod 4 for all three, so √a = a^((p+1)/4)). */
function smallXPoint(oid: string): { x: bigint; y: bigint } {
  const c = CURVES[oid]!;
  for (let x = 1n; ; x++) {
    const rhs = ((((x * x - 3n) * x + c.b) % c.p) + c.p) % c.p;
    const y = modPow(rhs, (c.p + 1n) / 4n, c.p);
    if ((y * y) % c.p === rhs) return { x, y };
  }
}

/**
 * The Ed25519 identity point as a key, and a "signature" (R = B, S = 1) that OpenSSL verifies
 * for every message under it: [S]B = R + [h]A holds for any h when A is the identity.
 */
const ED_IDENTITY = Buffer.concat([Buffer.from([1]), Buffer.alloc(31)]);
const ED_FORGERY = Buffer.concat([Buffer.from('5866666666666666666666666666666666666666666666666666666666666666', 'hex'), Buffer.from([1]), Buffer.alloc(31)]);
const forgedEdCsr = () => {
  const info = infoOf({ spki: edSpki(ED_IDENTITY) });
  return sequence(info, sequence(objectIdentifier(OID.ed25519)), bitString(ED_FORGERY));
};

function problemOf(fn: () => unknown, label = ''): { type: string; detail: string } {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof SignetError, `${label}: expected a SignetError, got ${String(e)}`);
    return { type: e.type, detail: e.detail };
  }
  assert.fail(`${label}: expected a refusal`);
}

// ---------------------------------------------------------------------------------------------
// Constants checked against independent sources

test('curve parameters are the ones openssl knows (p, b, order n)', () => {
  for (const [oid, name] of [
    [OID.p256, 'prime256v1'],
    [OID.p384, 'secp384r1'],
    [OID.p521, 'secp521r1'],
  ] as const) {
    const r = openssl(['ecparam', '-name', name, '-param_enc', 'explicit', '-text', '-noout']);
    assert.equal(r.status, 0, r.stderr);
    const field = (label: string) => BigInt('0x' + new RegExp(`^${label}:\\s*\\n((?:\\s+[0-9a-f:]+\\n)+)`, 'm').exec(r.stdout)![1]!.replace(/[\s:]/g, ''));
    const c = CURVES[oid]!;
    assert.equal(c.p, field('Prime'), `${name} p`);
    assert.equal(c.b, field('B'), `${name} b`);
    assert.equal(c.n, field('Order'), `${name} n`);
    assert.equal(field('A'), c.p - 3n, `${name} a = −3`);
  }
});

test('the Ed25519 small-order list is exactly the 8 points of the torsion subgroup', () => {
  const P = 2n ** 255n - 19n;
  const D = (((-121665n * modPow(121666n, P - 2n, P)) % P) + P) % P;
  const inv = (a: bigint) => modPow(((a % P) + P) % P, P - 2n, P);
  const add = ([x1, y1]: bigint[], [x2, y2]: bigint[]) => {
    const t = (((D * x1! * x2!) % P) * ((y1! * y2!) % P)) % P;
    return [(((x1! * y2! + y1! * x2!) % P) * inv(1n + t)) % P, (((((y1! * y2! + x1! * x2!) % P) * inv(1n - t)) % P) + P) % P];
  };
  const sqrtM1 = modPow(2n, (P - 1n) / 4n, P);
  const points: bigint[][] = [];
  for (const y of ED25519_SMALL_ORDER_Y) {
    const x2 = (((((y * y - 1n) % P) + P) % P) * inv(D * y * y + 1n)) % P;
    let x = modPow(x2, (P + 3n) / 8n, P);
    if ((x * x) % P !== x2) x = (x * sqrtM1) % P;
    assert.equal((x * x) % P, x2, `y=${y} is on the curve`);
    for (const px of x === 0n ? [0n] : [x, P - x]) {
      let q = [px, y];
      for (let i = 0; i < 3; i++) q = add(q, q);
      assert.deepEqual(q, [0n, 1n], `8·(x, ${y}) is the identity`);
      points.push([px, y]);
    }
  }
  assert.equal(new Set(points.map((p) => p.join(','))).size, 8);
  // A real key is not among them.
  const raw = spkiOf(ed.privateKey).subarray(-32);
  assert.doesNotThrow(() => importSpki(edSpki(raw)));
});

// ---------------------------------------------------------------------------------------------
// Item 1: the crash, in a child process so that the old code's abort cannot take the suite down

test("the issue's CSR (P-256 point at infinity), and P-384/P-521 ones, are refused and do not abort the process", () => {
  const inputs = [ISSUE_CSR, csrB64(infinityCsr(OID.p384)), csrB64(infinityCsr(OID.p521))];
  const script = `
    const { parseCsr } = await import(${JSON.stringify(new URL('../src/pki/csr.ts', import.meta.url).href)});
    for (const csr of ${JSON.stringify(inputs)}) {
      try { parseCsr(csr); console.log('accepted'); } catch (e) { console.log(e.type + ': ' + e.detail); }
    }`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, `the parser process died (status ${r.status}, signal ${r.signal}):\n${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  assert.deepEqual(
    lines,
    ['P-256', 'P-384', 'P-521'].map((c) => `bad-key: ECDSA ${c} public key is the point at infinity, which no private key corresponds to`),
  );
});

// ---------------------------------------------------------------------------------------------
// Item 1: each key check, through a CSR (both parser paths), the SPKI import and the JWK import

interface KeyCase {
  label: string;
  spki?: Buffer;
  jwk?: JsonWebKey;
  detail: string | RegExp;
}

function keyCases(): KeyCase[] {
  const cases: KeyCase[] = [];
  for (const [oid, key] of [
    [OID.p256, p256.privateKey],
    [OID.p384, generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey],
    [OID.p521, generateKeyPairSync('ec', { namedCurve: 'P-521' }).privateKey],
  ] as const) {
    const c = CURVES[oid]!;
    const jwk = createPublicKey(key).export({ format: 'jwk' });
    const point = pointOf(key);
    const off = Buffer.from(point);
    off[off.length - 1]! ^= 1;
    const sp = smallXPoint(oid);
    const bigX = Buffer.concat([Buffer.from([4]), bytesOf(sp.x + c.p, c.size), bytesOf(sp.y, c.size)]);
    const zero = Buffer.alloc(c.size);
    cases.push(
      { label: `${c.name} point at infinity`, spki: ecSpki(oid, Buffer.from([0])), detail: `ECDSA ${c.name} public key is the point at infinity` },
      {
        label: `${c.name} (0, 0)`,
        spki: ecSpki(oid, Buffer.concat([Buffer.from([4]), zero, zero])),
        jwk: { kty: 'EC', crv: c.name, x: zero.toString('base64url'), y: zero.toString('base64url') },
        detail: `ECDSA ${c.name} public key is not a point on the curve`,
      },
      {
        label: `${c.name} point off the curve`,
        spki: ecSpki(oid, off),
        jwk: { ...jwk, y: off.subarray(1 + c.size).toString('base64url') },
        detail: `ECDSA ${c.name} public key is not a point on the curve`,
      },
      // x + p ≡ x (mod p): on the curve modulo p, so only the range check refuses it.
      {
        label: `${c.name} X ≥ p`,
        spki: ecSpki(oid, bigX),
        jwk: { kty: 'EC', crv: c.name, x: bigX.subarray(1, 1 + c.size).toString('base64url'), y: bigX.subarray(1 + c.size).toString('base64url') },
        detail: `ECDSA ${c.name} public key: coordinate X is not below the field prime p`,
      },
      {
        label: `${c.name} point one byte short`,
        spki: ecSpki(oid, point.subarray(0, point.length - 1)),
        jwk: { ...jwk, y: point.subarray(1 + c.size, point.length - 1).toString('base64url') },
        detail: /could not be decoded: ECDSA P-\d+ public key is \d+ bytes; an uncompressed point is|coordinates must be \d+ bytes each/,
      },
      {
        label: `${c.name} compressed point`,
        spki: ecSpki(oid, Buffer.concat([Buffer.from([2 + (point[point.length - 1]! & 1)]), point.subarray(1, 1 + c.size)])),
        detail: `ECDSA ${c.name} public key is a compressed point; Signet accepts only the uncompressed form`,
      },
    );
  }
  {
    const c = CURVES[OID.p521]!;
    const sp = smallXPoint(OID.p521);
    const bigY = Buffer.concat([Buffer.from([4]), bytesOf(sp.x, c.size), bytesOf(sp.y + c.p, c.size)]);
    cases.push({ label: 'P-521 Y ≥ p', spki: ecSpki(OID.p521, bigY), detail: 'coordinate Y is not below the field prime p' });
  }
  const jr = createPublicKey(rsa.privateKey).export({ format: 'jwk' });
  const n = Buffer.from(jr.n!, 'base64url');
  const e = Buffer.from(jr.e!, 'base64url');
  const even = Buffer.from(n);
  even[even.length - 1]! &= 0xfe;
  const small = createPublicKey(generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey).export({ format: 'jwk' });
  const rsaCase = (label: string, nn: Buffer, ee: Buffer, detail: string): KeyCase => ({
    label,
    spki: rsaSpki(nn, ee),
    jwk: { kty: 'RSA', n: nn.toString('base64url'), e: ee.toString('base64url') },
    detail,
  });
  cases.push(
    rsaCase('RSA-1024', Buffer.from(small.n!, 'base64url'), e, 'RSA key of 1024 bits is too weak; use 2048 to 8192 bits'),
    rsaCase('RSA even modulus', even, e, 'RSA modulus is even'),
    rsaCase('RSA e = 1', n, Buffer.from([1]), 'RSA public exponent 1 is not allowed; use 65537'),
    rsaCase('RSA e = 65536 (even)', n, Buffer.from([1, 0, 0]), 'RSA public exponent 65536 is not allowed; use 65537'),
    rsaCase('RSA e = 2^31 + 1', n, Buffer.from([0x80, 0, 0, 1]), 'RSA public exponent 2147483649 is too large; Signet accepts 3 to 2^31−1'),
    rsaCase('RSA e of 40 bits', n, Buffer.from([1, 0, 0, 0, 1]), 'RSA public exponent of 40 bits is too large'),
    {
      label: 'RSA modulus with a redundant zero byte',
      spki: sequence(
        sequence(objectIdentifier(OID.rsaEncryption), Buffer.from([5, 0])),
        bitString(sequence(tlv(0x02, Buffer.concat([Buffer.from([0, 0]), n])), uint(e))),
      ),
      detail: 'RSA modulus is not a minimal, positive DER INTEGER',
    },
    {
      label: 'RSA without NULL parameters',
      spki: sequence(sequence(objectIdentifier(OID.rsaEncryption)), bitString(sequence(uint(n), uint(e)))),
      detail: 'RSA key algorithm parameters must be NULL',
    },
  );
  const edRaw = spkiOf(ed.privateKey).subarray(-32);
  const P = 2n ** 255n - 19n;
  const le = (v: bigint) => bytesOf(v, 32).reverse();
  // A y for which x² = (y² − 1)/(d·y² + 1) has no root: not a point on the curve.
  const D = (((-121665n * modPow(121666n, P - 2n, P)) % P) + P) % P;
  let undecodable = 2n;
  while (modPow((((undecodable * undecodable - 1n) % P) * ((D * undecodable * undecodable + 1n) % P)) % P, (P - 1n) / 2n, P) === 1n) undecodable++;
  const edCase = (label: string, raw: Buffer, detail: string): KeyCase => ({
    label,
    spki: edSpki(raw),
    jwk: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') },
    detail,
  });
  cases.push(
    edCase('Ed25519 of 31 bytes', edRaw.subarray(1), 'an Ed25519 public key is 32 bytes, found 31'),
    edCase('Ed25519 of 33 bytes', Buffer.concat([edRaw, Buffer.from([0])]), 'an Ed25519 public key is 32 bytes, found 33'),
    edCase('Ed25519 identity (small order)', le(1n), 'Ed25519 public key is a point of small order'),
    edCase('Ed25519 order-8 point', le(ED25519_SMALL_ORDER_Y[3]!), 'Ed25519 public key is a point of small order'),
    edCase('Ed25519 y = p (non-canonical)', le(P), 'Ed25519 public key is not canonically encoded'),
    edCase('Ed25519 not on the curve', le(undecodable), 'Ed25519 public key is not a point on the curve'),
    {
      label: 'Ed25519 with parameters',
      spki: sequence(sequence(objectIdentifier(OID.ed25519), Buffer.from([5, 0])), bitString(edRaw)),
      detail: 'Ed25519 key has algorithm parameters',
    },
  );
  const named = (label: string, spki: Buffer, detail: string, jwk?: JsonWebKey): KeyCase => ({ label, spki, detail, ...(jwk ? { jwk } : {}) });
  const k1 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey;
  cases.push(
    named('DSA', spkiOf(generateKeyPairSync('dsa', { modulusLength: 2048, divisorLength: 256 }).privateKey), 'DSA keys are not supported', {
      kty: 'DSA',
    } as JsonWebKey),
    named('secp256k1', spkiOf(k1), 'ECDSA curve secp256k1 is not supported; use P-256, P-384 or P-521', k1.export({ format: 'jwk' })),
    named('brainpoolP256r1', ecSpki('1.3.36.3.3.2.8.1.1.7', pointOf(p256.privateKey)), 'ECDSA curve brainpoolP256r1 is not supported', {
      kty: 'EC',
      crv: 'brainpoolP256r1',
      x: 'AA',
      y: 'AA',
    }),
    named('X25519', spkiOf(generateKeyPairSync('x25519').privateKey), 'X25519 keys are not supported', {
      kty: 'OKP',
      crv: 'X25519',
      x: edRaw.toString('base64url'),
    }),
    named('EC without a named curve', sequence(ALG_EC, bitString(pointOf(p256.privateKey))), 'ECDSA key without a named curve is not supported'),
  );
  return cases;
}

test('each hostile key is refused by name: through a CSR (both parser paths), importSpki and importPublicJwk', () => {
  let jwks = 0;
  for (const c of keyCases()) {
    const match = (detail: string) =>
      typeof c.detail === 'string'
        ? assert.ok(detail.includes(c.detail), `${c.label}: ${JSON.stringify(detail)} lacks ${JSON.stringify(c.detail)}`)
        : assert.match(detail, c.detail, c.label);
    if (c.spki) {
      const csr = csrWithSpki(c.spki);
      const viaCsr = problemOf(() => parseCsr(csr));
      assert.equal(viaCsr.type, 'bad-key', `${c.label}: ${viaCsr.detail}`);
      match(viaCsr.detail);
      assert.deepEqual(
        problemOf(() => parseCsrFull(csr)),
        viaCsr,
        `${c.label}: the full path says the same`,
      );
      assert.equal(parseCsrFast(csr), null, `${c.label}: the fast path defers`);
      const viaSpki = problemOf(() => importSpki(c.spki!));
      assert.deepEqual(viaSpki, viaCsr, `${c.label}: importSpki says the same`);
    }
    if (c.jwk) {
      jwks++;
      const viaJwk = problemOf(() => importPublicJwk(c.jwk));
      assert.equal(viaJwk.type, 'bad-key', c.label);
      if (!['DSA', 'brainpoolP256r1', 'X25519'].includes(c.label)) match(viaJwk.detail);
      else assert.match(viaJwk.detail, /not supported/, c.label);
    }
  }
  assert.ok(jwks >= 20, `${jwks} JWK cases`);
});

test('a small-order Ed25519 key cannot prove possession, though OpenSSL before 3.5 verifies a forgery under it', () => {
  // OpenSSL 3.0 (Node 20's, Debian 12's openssl) verifies this forgery for any message, and
  // relying parties on it still do; Node 24's OpenSSL 3.5 refuses it. Signet refuses the key
  // itself either way, so a CSR's proof of possession never rests on the verifier's version.
  const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: ED_IDENTITY.toString('base64url') }, format: 'jwk' });
  for (const m of ['a', 'any message at all']) assert.equal(verify(null, Buffer.from(m), key, ED_FORGERY), false, 'OpenSSL 3.5 refuses the forgery');
  throwsProblem(() => parseCsr(forgedEdCsr()), 'bad-key', 'Ed25519 public key is a point of small order');
});

test('good keys of every supported kind import through all three doors and keep their details', () => {
  const kinds: [string, KeyObject, string][] = [
    ['ecdsa-p256', p256.privateKey, 'P-256'],
    ['ecdsa-p384', generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey, 'P-384'],
    ['ecdsa-p521', generateKeyPairSync('ec', { namedCurve: 'P-521' }).privateKey, 'P-521'],
    ['rsa-2048', rsa.privateKey, ''],
    ['rsa-3072', generateKeyPairSync('rsa', { modulusLength: 3072, publicExponent: 3 }).privateKey, ''],
    ['ed25519', ed.privateKey, ''],
  ];
  for (const [name, key] of kinds) {
    const spki = spkiOf(key);
    const a = importSpki(spki);
    assert.equal(a.algorithm, name);
    assert.ok(a.key.export({ format: 'der', type: 'spki' }).equals(spki), `${name}: the imported key is the same key`);
    const b = importPublicJwk(createPublicKey(key).export({ format: 'jwk' }));
    assert.equal(b.algorithm, name);
    assert.ok(b.key.export({ format: 'der', type: 'spki' }).equals(spki));
    const info = sequence(smallInteger(0), cnName('a.example.com'), spki, tlv(0xa0));
    const t = createPublicKey(key).asymmetricKeyType;
    const [sigOid, sig] =
      t === 'ec'
        ? [
            name === 'ecdsa-p256' ? OID.ecdsaSha256 : name === 'ecdsa-p384' ? OID.ecdsaSha384 : OID.ecdsaSha512,
            sign(name === 'ecdsa-p256' ? 'sha256' : name === 'ecdsa-p384' ? 'sha384' : 'sha512', info, { key, dsaEncoding: 'der' }),
          ]
        : t === 'rsa'
          ? [OID.sha256WithRSA, sign('sha256', info, key)]
          : [OID.ed25519, sign(null, info, key)];
    const csr = sequence(info, sequence(objectIdentifier(sigOid), ...(t === 'rsa' ? [Buffer.from([5, 0])] : [])), bitString(sig));
    const parsed = parseCsr(csr);
    assert.equal(parsed.keyAlgorithm, name);
    assert.ok(parsed.spkiDer.equals(spki));
    assert.ok(parseCsrFast(csr), `${name}: the fast path still takes it`);
  }
  // RFC 7518 §2: JWK integers without leading zeros; base64url without padding or stray bits.
  const jr = createPublicKey(rsa.privateKey).export({ format: 'jwk' });
  throwsProblem(
    () => importPublicJwk({ ...jr, n: Buffer.concat([Buffer.from([0]), Buffer.from(jr.n!, 'base64url')]).toString('base64url') }),
    'bad-key',
    'leading zero octet',
  );
  throwsProblem(() => importPublicJwk({ ...jr, e: 'AQAB=' }), 'bad-key', '"e" is not base64url');
  // 32 bytes are 43 base64url characters with 2 spare bits; setting one decodes to the same bytes.
  const x = createPublicKey(ed.privateKey).export({ format: 'jwk' }).x!;
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const stray = x.slice(0, -1) + alphabet[alphabet.indexOf(x.at(-1)!) | 1];
  assert.notEqual(stray, x);
  throwsProblem(() => importPublicJwk({ kty: 'OKP', crv: 'Ed25519', x: stray }), 'bad-key', '"x" is not canonical base64url');
  throwsProblem(() => importPublicJwk({ ...createPublicKey(p256.privateKey).export({ format: 'jwk' }), d: 'AA' }), 'bad-key', 'private member "d"');
  throwsProblem(() => importPublicJwk({ kty: 'oct', k: 'AA' }), 'bad-key', 'private member "k"');
  throwsProblem(() => importPublicJwk('x'), 'bad-key', 'not a JSON object');
});

// ---------------------------------------------------------------------------------------------
// Item 1: private keys for CA import (and offline CA key files)

/** SEC1 ECPrivateKey for P-256 with scalar d, optionally embedding a public point. */
function sec1(d: Buffer, pub?: Buffer): KeyObject {
  const parts = [smallInteger(1), octetString(d), tlv(0xa0, objectIdentifier(OID.p256)), ...(pub ? [tlv(0xa1, bitString(pub))] : [])];
  return createPrivateKey({ key: sequence(...parts), format: 'der', type: 'sec1' });
}
const N256 = CURVES[OID.p256]!.n;
/**
 * `key` with its first prime replaced by the second, built as PKCS#1 DER: node's DER and PEM
 * import still take such a key, while its JWK import refuses it since Node 24 (OpenSSL 3.5).
 */
function rsaWithPrimeSwapped(key: KeyObject): KeyObject {
  const k = AsnConvert.parse(key.export({ format: 'der', type: 'pkcs1' }), RSAPrivateKey);
  k.prime1 = k.prime2;
  return createPrivateKey({ key: Buffer.from(AsnConvert.serialize(k)), format: 'der', type: 'pkcs1' });
}
/** The P-256 generator G as an SPKI: the public key of d = 1 (and of d = n + 1). */
const gSpki = spkiOf(sec1(bytesOf(1n, 32)));

test('private keys are checked against the certificate key before node describes them', () => {
  const certOf = (spki: Buffer) => ({ info: importSpki(spki), spkiDer: spki });
  // The good pairs pass.
  for (const k of [p256.privateKey, rsa.privateKey, ed.privateKey, generateKeyPairSync('ec', { namedCurve: 'P-521' }).privateKey]) {
    assert.doesNotThrow(() => checkPrivateKey(k, certOf(spkiOf(k))));
  }
  assert.doesNotThrow(() => checkPrivateKey(sec1(bytesOf(1n, 32)), certOf(gSpki)), 'd = 1 is a (weak but valid) key for G');
  // node imports all of these, and derives from them a public key that matches the certificate.
  throwsProblem(() => checkPrivateKey(sec1(Buffer.alloc(32)), certOf(spkiOf(p256.privateKey))), 'bad-key', 'the ECDSA private key is zero');
  throwsProblem(() => checkPrivateKey(sec1(bytesOf(N256, 32)), certOf(spkiOf(p256.privateKey))), 'bad-key', 'not below the order n of P-256');
  throwsProblem(() => checkPrivateKey(sec1(bytesOf(N256 + 1n, 32)), certOf(gSpki)), 'bad-key', 'not below the order n of P-256');
  assert.ok(spkiOf(sec1(bytesOf(N256 + 1n, 32))).equals(gSpki), 'node derives G from d = n + 1, so a public-key comparison alone accepts it');
  // A scalar with someone else's embedded public key: node reports the embedded key as the public key.
  const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const d = Buffer.from(p256.privateKey.export({ format: 'jwk' }).d!, 'base64url');
  const mixed = sec1(d, pointOf(other.privateKey));
  assert.ok(spkiOf(mixed).equals(spkiOf(other.privateKey)), 'node believes the embedded key');
  throwsProblem(() => checkPrivateKey(mixed, certOf(spkiOf(other.privateKey))), 'bad-key', 'does not match the certificate', 'does not verify');
  // RSA with inconsistent primes (node imports it and derives the right n and e).
  const badRsa = rsaWithPrimeSwapped(rsa.privateKey);
  throwsProblem(() => checkPrivateKey(badRsa, certOf(spkiOf(rsa.privateKey))), 'bad-key', 'primes do not multiply to the modulus');
  // Another key of the right kind, and a key of another kind.
  throwsProblem(() => checkPrivateKey(other.privateKey, certOf(spkiOf(p256.privateKey))), 'bad-key', 'does not match the certificate');
  throwsProblem(() => checkPrivateKey(ed.privateKey, certOf(spkiOf(p256.privateKey))), 'bad-key', "it is an ed25519 key, the certificate's is ecdsa-p256");
  throwsProblem(
    () => checkPrivateKey(generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey, certOf(spkiOf(p256.privateKey))),
    'bad-key',
    "not on the certificate's curve",
  );
  throwsProblem(() => checkPrivateKey(createPublicKey(p256.privateKey), certOf(spkiOf(p256.privateKey))), 'bad-key', 'not a private key');
  throwsProblem(() => checkPrivateKey(generateKeyPairSync('x25519').privateKey, certOf(spkiOf(p256.privateKey))), 'bad-key', 'type x25519 are not supported');
});

// ---------------------------------------------------------------------------------------------
// Item 1: ACME account keys

test('ACME account JWKs (new-account, key-change, the EAB payload) go through the same checks', () => {
  const off = createPublicKey(p256.privateKey).export({ format: 'jwk' });
  const y = Buffer.from(off.y!, 'base64url');
  y[31]! ^= 1;
  const offJwk = { ...off, y: y.toString('base64url') };
  const zero = { kty: 'EC', crv: 'P-256', x: Buffer.alloc(32).toString('base64url'), y: Buffer.alloc(32).toString('base64url') };
  for (const [label, jwk] of [
    ['off-curve', offJwk],
    ['(0, 0)', zero],
  ] as const) {
    const p = problemOf(() => importJwk(jwk));
    assert.equal(p.type, 'bad-request', label);
    assert.equal(p.detail, 'the account key is refused: ECDSA P-256 public key is not a point on the curve', label);
    try {
      importJwk(jwk);
    } catch (e) {
      assert.equal((e as SignetError).acme, 'badPublicKey');
    }
  }
  throwsProblem(
    () => importJwk(createPublicKey(generateKeyPairSync('ec', { namedCurve: 'P-521' }).privateKey).export({ format: 'jwk' })),
    'bad-request',
    'P-256 or P-384',
  );
  throwsProblem(
    () => importJwk({ kty: 'RSA', n: createPublicKey(rsa.privateKey).export({ format: 'jwk' }).n, e: 'AQ' }),
    'bad-request',
    'RSA public exponent 1 is not allowed',
  );
  assert.equal(importJwk(createPublicKey(ed.privateKey).export({ format: 'jwk' })).asymmetricKeyType, 'ed25519');
  // The EAB payload is a JWK too: an off-curve one is refused before any MAC is looked at.
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const eab = { protected: b64({ alg: 'HS256', kid: 'k1', url: 'https://ca/acme/new-account' }), payload: b64(offJwk), signature: 'AA' };
  throwsProblem(
    () => verifyEab(eab, createPublicKey(p256.privateKey).export({ format: 'jwk' }), 'https://ca/acme/new-account', () => Buffer.alloc(32)),
    'bad-request',
    'not a point on the curve',
  );
});

// ---------------------------------------------------------------------------------------------
// Item 10: non-DER CSRs, each re-encoded and signed so that only the encoding is wrong

interface DerCase {
  label: string;
  info: Buffer;
  csr: Buffer;
  rule: string;
  at: (csr: Buffer) => number;
}

/** The offset of `needle` in the CSR (the element the rule is about). */
const offsetOf = (needle: Buffer) => (csr: Buffer) => {
  const i = csr.indexOf(needle);
  assert.ok(i >= 0);
  return i;
};

function derCases(): DerCase[] {
  const out: DerCase[] = [];
  const cases: [string, Buffer, string, Buffer][] = [];
  // certificationRequestInfo with a 4-byte length (30 84 00 00 00 LL).
  {
    const good = infoOf();
    const content = good.subarray(good[1]! & 0x80 ? 2 + (good[1]! & 0x7f) : 2);
    const head = Buffer.from([0x30, 0x84, 0, 0, 0, content.length]);
    cases.push([
      'non-minimal length (30 84 00 00 00 LL)',
      Buffer.concat([head, content]),
      'non-minimal length (a leading zero byte; DER uses the shortest form)',
      head,
    ]);
  }
  {
    const name = cnName('a.example.com');
    const long = Buffer.concat([Buffer.from([0x30, 0x81, name.length - 2]), name.subarray(2)]);
    cases.push(['long form for a short length (30 81 LL)', infoOf({ name: long }), `non-minimal length (long form for ${name.length - 2} bytes`, long]);
  }
  const version = Buffer.from([0x02, 0x02, 0x00, 0x00]);
  cases.push(['INTEGER 02 02 00 00 as the version', infoOf({ version }), 'non-minimal INTEGER (a redundant leading 0x00 byte)', version]);
  const paddedOid = Buffer.from([0x06, 0x04, 0x55, 0x80, 0x04, 0x03]);
  cases.push([
    'OID arc padded with 0x80',
    infoOf({ name: sequence(set(sequence(paddedOid, tlv(0x0c, Buffer.from('a.example.com'))))) }),
    'OBJECT IDENTIFIER arc padded with 0x80 (not minimal)',
    paddedOid,
  ]);
  const emptyOid = Buffer.from([0x06, 0x00]);
  cases.push([
    'empty OID',
    infoOf({
      name: sequence(set(sequence(emptyOid, tlv(0x0c, Buffer.from('x')))), set(sequence(objectIdentifier('2.5.4.3'), tlv(0x0c, Buffer.from('a.example.com'))))),
    }),
    'empty OBJECT IDENTIFIER',
    emptyOid,
  ]);
  const falseFlag = Buffer.from([0x01, 0x01, 0x00]);
  cases.push([
    'explicit critical FALSE',
    infoOf({ attributes: attrs(sequence(objectIdentifier('2.5.29.17'), falseFlag, octetString(sanValue('a.example.com')))) }),
    'extension 2.5.29.17 encodes critical FALSE explicitly (DER omits a DEFAULT value)',
    falseFlag,
  ]);
  const trueOne = Buffer.from([0x01, 0x01, 0x01]);
  cases.push([
    'BOOLEAN 0x01 as TRUE',
    infoOf({ attributes: attrs(sequence(objectIdentifier('2.5.29.17'), trueOne, octetString(sanValue('a.example.com')))) }),
    'BOOLEAN 0x01 (DER encodes TRUE as 0xFF and FALSE as 0x00)',
    trueOne,
  ]);
  // Beyond the issue's list, the same reader's other rules.
  const o = sequence(objectIdentifier('2.5.4.10'), tlv(0x0c, Buffer.from('o')));
  const cn = sequence(objectIdentifier('2.5.4.3'), tlv(0x0c, Buffer.from('a.example.com')));
  // DER sorts by the whole encoding: o (30 08 …) before cn (30 14 …), whatever the attribute types.
  cases.push([
    'SET OF not in DER order (multi-valued RDN)',
    infoOf({ name: sequence(tlv(0x31, cn, o)) }),
    'SET OF elements are not sorted by their encodings (DER order)',
    o,
  ]);
  const constructed = tlv(0x2c, tlv(0x0c, Buffer.from('a.example.com')));
  cases.push([
    'constructed UTF8String',
    infoOf({ name: sequence(set(sequence(objectIdentifier('2.5.4.3'), constructed))) }),
    'constructed encoding of universal type 12 (DER requires the primitive form)',
    constructed,
  ]);
  const badSan = Buffer.concat([Buffer.from([0x30, 0x81, 0x0f]), tlv(0x82, Buffer.from('a.example.com'))]);
  cases.push([
    'SAN value with a long-form length',
    infoOf({ attributes: attrs(sequence(objectIdentifier('2.5.29.17'), octetString(badSan))) }),
    'subjectAltName extension is malformed: its value is not DER: non-minimal length (long form for 15 bytes',
    badSan,
  ]);
  const extA = sequence(objectIdentifier('1.2.840.113549.1.9.7'), set(tlv(0x0c, Buffer.from('pw'))));
  const extB = sequence(objectIdentifier(EXT_REQ), set(sequence(sequence(objectIdentifier('2.5.29.17'), octetString(sanValue('a.example.com'))))));
  cases.push([
    'attributes not in DER order',
    infoOf({ attributes: tlv(0xa0, extB, extA) }),
    'SET OF elements are not sorted by their encodings (DER order)',
    extA,
  ]);
  for (const [label, info, rule, needle] of cases) out.push({ label, info, csr: signedCsr(info), rule, at: offsetOf(needle) });
  return out;
}

test('non-DER CSRs are refused with the rule and the offset, though their signatures verify', () => {
  for (const c of derCases()) {
    // Only the encoding is wrong: the CSR carries these info bytes, and the signature over them verifies.
    assert.ok(c.csr.includes(c.info), c.label);
    const bits = c.csr.subarray(c.csr.indexOf(c.info) + c.info.length + sequence(objectIdentifier(OID.ecdsaSha256)).length);
    const signature = bits.subarray(bits[1]! & 0x80 ? 4 : 3);
    assert.ok(verify('sha256', c.info, { key: p256.publicKey, dsaEncoding: 'der' }, signature), `${c.label}: the signature verifies`);

    const p = problemOf(() => parseCsr(c.csr), c.label);
    assert.equal(p.type, 'bad-csr', `${c.label}: ${p.detail}`);
    assert.ok(p.detail.includes(c.rule), `${c.label}: ${JSON.stringify(p.detail)} lacks ${JSON.stringify(c.rule)}`);
    assert.ok(p.detail.endsWith(`at offset ${c.at(c.csr)}`), `${c.label}: ${p.detail} should end at offset ${c.at(c.csr)}`);
    assert.deepEqual(
      problemOf(() => parseCsrFull(c.csr)),
      p,
      `${c.label}: both paths refuse alike`,
    );
    assert.equal(parseCsrFast(c.csr), null);
  }
  // The same request, well formed, parses (and takes the fast path).
  assert.ok(parseCsrFast(signedCsr(infoOf())));
  assert.deepEqual(parseCsr(signedCsr(infoOf())).sans, [{ type: 'dns', value: 'a.example.com' }]);
});

test('the DER reader: nesting, truncation and BER forms never escape as anything but a bad-csr', () => {
  const nested = (depth: number): Buffer => {
    let b: Buffer = Buffer.alloc(0);
    for (let i = 0; i < depth; i++) b = sequence(b);
    return b;
  };
  throwsProblem(() => parseCsr(nested(100)), 'bad-csr', 'nesting deeper than 64 levels');
  throwsProblem(
    () => parseCsr(Buffer.from([0x30, 0x80, 0x02, 0x01, 0x00, 0x00, 0x00])),
    'bad-csr',
    'indefinite length (BER; DER requires a definite length) at offset 0',
  );
  throwsProblem(() => parseCsr(Buffer.from([0x30, 0x03, 0x01, 0x01, 0x01])), 'bad-csr', 'BOOLEAN 0x01', 'at offset 2');
  throwsProblem(() => parseCsr(Buffer.from([0x30, 0x04, 0x03, 0x02, 0x01, 0x01])), 'bad-csr', 'BIT STRING whose unused bits are not zero at offset 2');
  throwsProblem(() => parseCsr(Buffer.from([0x30, 0x03, 0x05, 0x01, 0x00])), 'bad-csr', 'NULL with 1 content bytes at offset 2');
  throwsProblem(() => parseCsr(Buffer.from([0x30, 0x03, 0x06, 0x01, 0x81])), 'bad-csr', 'truncated OBJECT IDENTIFIER');
  throwsProblem(() => parseCsr(Buffer.from([0x30, 0x02, 0x00, 0x00])), 'bad-csr', 'tag 0x00 (end-of-contents) is BER only at offset 2');
});

// ---------------------------------------------------------------------------------------------
// Over HTTP: a real server, on SQLite or PostgreSQL

/** A self-signed CA certificate over any SPKI, signed by a raw (possibly hostile) P-256 key. */
async function caCertificate(spkiDer: Buffer, signWith: KeyObject, cn = 'Hostile CA'): Promise<string> {
  const signer: Signer = {
    algorithm: new AlgorithmIdentifier({ algorithm: OID.ecdsaSha256 }),
    publicKey: createPublicKey(signWith),
    sign: async (data) => sign('sha256', data, { key: signWith, dsaEncoding: 'der' }),
  };
  const { tbs } = buildCaTbs({
    serial: newSerial(),
    subjectNameDer: dnToDer(`CN=${cn}`),
    spkiDer,
    notBefore: new Date(),
    validityDays: 30,
    pathLen: 0,
    signatureAlgorithmDer: algorithmDer(signer),
  });
  return derToPem(await signTbs(tbs, signer, algorithmDer(signer)), 'CERTIFICATE');
}
const pem = (k: KeyObject) => k.export({ format: 'pem', type: 'pkcs8' }) as string;

describe('over HTTP: hostile keys and non-DER requests against a running server', () => {
  let env: TestEnv;
  let server: RunningServer;
  let certs = 0;
  let cas = 0;

  before(async () => {
    env = await createTestEnv();
    server = await startServer(env.env);
    certs = await countRows(env, 'Certificate');
    cas = await countRows(env, 'CertificateAuthority');
  });
  after(async () => {
    await server?.stop();
    await env?.cleanup();
  });

  async function assertAliveAndUnchanged(): Promise<void> {
    assert.doesNotThrow(() => process.kill(server.pid, 0), 'the server process is alive');
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200, 'the server still answers /healthz');
    assert.equal(await countRows(env, 'Certificate'), certs, 'no certificate was stored');
    assert.equal(await countRows(env, 'CertificateAuthority'), cas, 'no CA was stored');
  }

  function assertProblem(r: Awaited<ReturnType<typeof api>>, status: number, type: string, detail: string | RegExp): void {
    assert.equal(r.status, status, r.text);
    assert.match(r.headers.get('content-type') ?? '', /^application\/problem\+json/);
    assert.equal(r.json.type, `https://signet.dev/problems/${type}`, r.text);
    if (typeof detail === 'string') assert.ok(r.json.detail.includes(detail), `${JSON.stringify(r.json.detail)} lacks ${JSON.stringify(detail)}`);
    else assert.match(r.json.detail, detail);
  }

  test("the issue's exact body, and its P-384 and P-521 twins: 400 naming the key, the server lives, nothing stored", async () => {
    const bodies: [string, string][] = [
      ['P-256', ISSUE_CSR],
      ['P-384', csrB64(infinityCsr(OID.p384))],
      ['P-521', csrB64(infinityCsr(OID.p521))],
    ];
    for (const [curve, csr] of bodies) {
      const r = await api(server, 'POST', '/api/v1/certificates', { csr, profile: 'server' });
      assertProblem(r, 400, 'bad-key', `ECDSA ${curve} public key is the point at infinity`);
      await assertAliveAndUnchanged();
    }
    // Repeating it is no crash loop either.
    for (let i = 0; i < 5; i++) assert.equal((await api(server, 'POST', '/api/v1/certificates', { csr: ISSUE_CSR, profile: 'server' })).status, 400);
    await assertAliveAndUnchanged();
  });

  test('other hostile CSR keys: 400 naming the key', async () => {
    // Anyone can "sign" for this key, so a certificate for it would be anyone's.
    assertProblem(
      await api(server, 'POST', '/api/v1/certificates', { csr: csrB64(forgedEdCsr()), profile: 'server' }),
      400,
      'bad-key',
      'Ed25519 public key is a point of small order',
    );
    for (const c of keyCases().filter((k) => k.spki && /infinity|off the curve|X ≥ p|compressed|even|e = 1|Ed25519 identity|DSA|secp256k1/.test(k.label))) {
      const r = await api(server, 'POST', '/api/v1/certificates', { csr: csrB64(csrWithSpki(c.spki!)), profile: 'server' });
      assertProblem(r, 400, 'bad-key', c.detail);
    }
    await assertAliveAndUnchanged();
  });

  test('non-DER CSRs: 400 bad-csr naming the rule and the offset; the same request well formed is issued', async () => {
    for (const c of derCases()) {
      const r = await api(server, 'POST', '/api/v1/certificates', { csr: csrB64(c.csr), profile: 'server' });
      assertProblem(r, 400, 'bad-csr', c.rule);
      assert.ok(r.json.detail.endsWith(`at offset ${c.at(c.csr)}`), r.json.detail);
    }
    await assertAliveAndUnchanged();
    const ok = await api(server, 'POST', '/api/v1/certificates', { csr: csrB64(signedCsr(infoOf())), profile: 'server' });
    assert.equal(ok.status, 201, ok.text);
    certs++;
    assert.equal(await countRows(env, 'Certificate'), certs);
  });

  test('CA import of hostile keys: 400, nothing stored', async () => {
    const zeroKey = sec1(Buffer.alloc(32));
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const d = Buffer.from(p256.privateKey.export({ format: 'jwk' }).d!, 'base64url');
    // An RSA CA certificate (signed by a P-256 key: the import refuses the key before any signature matters).
    const rsaCert = await caCertificate(spkiOf(rsa.privateKey), p256.privateKey, 'RSA CA');
    const cases: [string, string, string, string][] = [
      // Self-signed by d = 0 over the infinity key: the signature even verifies (u1·G + u2·∞ = k·G).
      [
        'infinity certificate key, d = 0',
        await caCertificate(ecSpki(OID.p256, Buffer.from([0])), zeroKey),
        pem(zeroKey),
        "the CA certificate's public key is refused: ECDSA P-256 public key is the point at infinity",
      ],
      [
        'off-curve certificate key',
        await caCertificate(ecSpki(OID.p256, Buffer.concat([Buffer.from([4]), Buffer.alloc(64)])), p256.privateKey),
        pem(p256.privateKey),
        'not a point on the curve',
      ],
      [
        'certificate key G, private key d = n + 1',
        await caCertificate(gSpki, sec1(bytesOf(N256 + 1n, 32))),
        pem(sec1(bytesOf(N256 + 1n, 32))),
        'not below the order n of P-256',
      ],
      [
        "a scalar carrying the certificate's public key",
        await caCertificate(spkiOf(other.privateKey), other.privateKey),
        pem(sec1(d, pointOf(other.privateKey))),
        'does not verify under the certificate',
      ],
      ['RSA key with inconsistent primes', rsaCert, pem(rsaWithPrimeSwapped(rsa.privateKey)), 'primes do not multiply to the modulus'],
    ];
    for (const [label, certificate, privateKey, detail] of cases) {
      const r = await api(server, 'POST', '/api/v1/cas', { certificate, privateKey });
      assert.equal(r.status, 400, `${label}: ${r.text}`);
      assertProblem(r, 400, 'bad-key', detail);
    }
    await assertAliveAndUnchanged();
  });

  test('ACME new-account and key-change with an off-curve or (0, 0) JWK: 400 badPublicKey naming the key', async () => {
    const acme = `${server.url}/acme`;
    const nonce = async () => (await fetch(`${acme}/new-nonce`, { method: 'HEAD' })).headers.get('replay-nonce')!;
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const post = async (url: string, header: Record<string, unknown>, payload: unknown, key: KeyObject) => {
      const protectedB64 = b64({ ...header, nonce: await nonce(), url });
      const payloadB64 = b64(payload);
      const signature = sign('sha256', Buffer.from(`${protectedB64}.${payloadB64}`), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url');
      const r = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/jose+json' },
        body: JSON.stringify({ protected: protectedB64, payload: payloadB64, signature }),
      });
      return { status: r.status, json: (await r.json()) as any };
    };
    const good = createPublicKey(p256.privateKey).export({ format: 'jwk' });
    const y = Buffer.from(good.y!, 'base64url');
    y[31]! ^= 1;
    const hostile: [string, JsonWebKey][] = [
      ['off-curve', { ...good, y: y.toString('base64url') }],
      ['(0, 0)', { kty: 'EC', crv: 'P-256', x: Buffer.alloc(32).toString('base64url'), y: Buffer.alloc(32).toString('base64url') }],
    ];
    for (const [label, jwk] of hostile) {
      const r = await post(`${acme}/new-account`, { alg: 'ES256', jwk }, { termsOfServiceAgreed: true }, p256.privateKey);
      assert.equal(r.status, 400, `${label}: ${JSON.stringify(r.json)}`);
      assert.equal(r.json.type, 'urn:ietf:params:acme:error:badPublicKey', label);
      assert.equal(r.json.detail, 'the account key is refused: ECDSA P-256 public key is not a point on the curve', label);
    }
    // An Ed25519 identity key signs every JWS (R = B, S = 1): an account anyone could act for.
    {
      const protectedB64 = b64({
        alg: 'EdDSA',
        jwk: { kty: 'OKP', crv: 'Ed25519', x: ED_IDENTITY.toString('base64url') },
        nonce: await nonce(),
        url: `${acme}/new-account`,
      });
      const payloadB64 = b64({ termsOfServiceAgreed: true });
      const res = await fetch(`${acme}/new-account`, {
        method: 'POST',
        headers: { 'content-type': 'application/jose+json' },
        body: JSON.stringify({ protected: protectedB64, payload: payloadB64, signature: ED_FORGERY.toString('base64url') }),
      });
      const json = (await res.json()) as any;
      assert.equal(res.status, 400, JSON.stringify(json));
      assert.equal(json.type, 'urn:ietf:params:acme:error:badPublicKey');
      assert.match(json.detail, /Ed25519 public key is a point of small order/);
    }
    assert.equal(await countRows(env, 'AcmeAccount'), 0);
    // key-change: a real account, then an inner JWS naming an off-curve new key.
    const created = await post(`${acme}/new-account`, { alg: 'ES256', jwk: good }, { termsOfServiceAgreed: true }, p256.privateKey);
    assert.equal(created.status, 201, JSON.stringify(created.json));
    const [row] = await sql(env, 'SELECT id FROM "AcmeAccount"');
    const accountUrl = `${acme}/account/${row.id}`;
    const inner = {
      protected: b64({ alg: 'ES256', jwk: hostile[0]![1], url: `${acme}/key-change` }),
      payload: b64({ account: accountUrl, oldKey: good }),
      signature: Buffer.alloc(64).toString('base64url'),
    };
    const r = await post(`${acme}/key-change`, { alg: 'ES256', kid: accountUrl }, inner, p256.privateKey);
    assert.equal(r.status, 400, JSON.stringify(r.json));
    assert.equal(r.json.type, 'urn:ietf:params:acme:error:badPublicKey');
    assert.match(r.json.detail, /not a point on the curve/);
    await assertAliveAndUnchanged();
  });
});
