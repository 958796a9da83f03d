/**
 * The DER-walking fast path of parseCsr must give exactly what the full parser gives: the same
 * ParsedCsr for every accepted request, and the same refusal (type and detail) for every other.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { AsnConvert } from '@peculiar/asn1-schema';
import { SignetError } from '../src/errors.js';
import { bitString, booleanTrue, objectIdentifier, octetString, sequence, set, smallInteger, tlv } from '../src/pki/der.js';
import { OID, ownKey, signerFor } from '../src/pki/keys.js';
import { parseCsr, parseCsrFast, parseCsrFull, type ParsedCsr } from '../src/pki/csr.js';
import { basicConstraints, EXT } from '../src/pki/extensions.js';
import { encodeSan } from '../src/pki/leaf-template.js';
import type { SanEntry } from '../src/pki/names.js';

const fixtureDir = new URL('../certs-fixtures/', import.meta.url);

type Outcome = { ok: true; value: unknown } | { ok: false; ctor: string; type?: string; detail?: string; message: string };

const comparable = (r: ParsedCsr) => ({ ...r, publicKey: r.publicKey.export({ format: 'der', type: 'spki' }).toString('hex') });

function run(fn: () => ParsedCsr): Outcome {
  try {
    return { ok: true, value: comparable(fn()) };
  } catch (e) {
    const err = e as Error;
    return e instanceof SignetError
      ? { ok: false, ctor: err.constructor.name, type: e.type, detail: e.detail, message: err.message }
      : { ok: false, ctor: err.constructor.name, message: err.message };
  }
}

/** Both paths agree; returns whether the fast path handled the input by itself. */
function assertSame(input: string | Uint8Array, label: string): boolean {
  const full = run(() => parseCsrFull(input));
  const combined = run(() => parseCsr(input));
  assert.deepEqual(combined, full, label);
  let fast: ParsedCsr | null = null;
  try {
    fast = parseCsrFast(input);
  } catch {
    /* toDer refusals are shared by both paths */
  }
  if (fast) {
    assert.ok(full.ok, `${label}: fast path accepted what the full parser refuses`);
    assert.deepEqual(comparable(fast), full.value, label);
  }
  return fast !== null;
}

// ---------------------------------------------------------------------------------------------
// A flexible CSR builder (the request is signed over exactly the info bytes given).

interface Build {
  key: KeyObject;
  publicKey?: KeyObject;
  /** The SubjectPublicKeyInfo bytes to send, when not the key's own DER export. */
  spki?: Buffer;
  name?: Buffer;
  attributes?: Buffer[] | null;
  version?: number;
  trailing?: Buffer;
}

const extensionRequest = (...exts: Buffer[]) => sequence(objectIdentifier('1.2.840.113549.1.9.14'), set(sequence(...exts)));
const ext = (oid: string, critical: boolean, value: Buffer) =>
  critical ? sequence(objectIdentifier(oid), booleanTrue, octetString(value)) : sequence(objectIdentifier(oid), octetString(value));
const san = (sans: SanEntry[], critical = false) => ext(EXT.subjectAltName, critical, encodeSan(sans));
const rdn = (oid: string, value: string, tag = 0x0c) => set(sequence(objectIdentifier(oid), tlv(tag, Buffer.from(value, tag === 0x1e ? 'utf16le' : 'utf8'))));
const nameOf = (...rdns: Buffer[]) => sequence(...rdns);
const CN = '2.5.4.3';

/**
 * The requester's proof of possession, as a client makes it: node:crypto directly, synchronously
 * (Signet's Signer.sign is asynchronous), with the algorithm signerFor picks for the key.
 */
const HASH_OF: Record<string, string | null> = {
  [OID.ecdsaSha256]: 'sha256',
  [OID.ecdsaSha384]: 'sha384',
  [OID.ecdsaSha512]: 'sha512',
  [OID.sha256WithRSA]: 'sha256',
  [OID.ed25519]: null,
};
function possessionSignature(key: KeyObject, algorithmOid: string, data: Buffer): Buffer {
  return sign(HASH_OF[algorithmOid] ?? null, data, key.asymmetricKeyType === 'ec' ? { key, dsaEncoding: 'der' } : key);
}

function csr(b: Build): Buffer {
  const signer = signerFor(ownKey(b.key));
  const spki = b.spki ?? createPublicKey(b.publicKey ?? b.key).export({ format: 'der', type: 'spki' });
  // version -1 stands for a non-minimal encoding of 0 (02 02 00 00).
  const infoParts = [b.version === -1 ? Buffer.from([2, 2, 0, 0]) : smallInteger(b.version ?? 0), b.name ?? nameOf(rdn(CN, 'www.example.com')), spki];
  if (b.attributes !== null) infoParts.push(tlv(0xa0, ...(b.attributes ?? [])));
  const info = sequence(...infoParts);
  const out = sequence(info, Buffer.from(AsnConvert.serialize(signer.algorithm)), bitString(possessionSignature(b.key, signer.algorithm.algorithm, info)));
  return b.trailing ? Buffer.concat([out, b.trailing]) : out;
}

const keys = {
  p256: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
  p384: generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey,
  p521: generateKeyPairSync('ec', { namedCurve: 'P-521' }).privateKey,
  rsa: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey,
  ed25519: generateKeyPairSync('ed25519').privateKey,
};

const SANS: SanEntry[] = [
  { type: 'dns', value: 'www.example.com' },
  { type: 'dns', value: 'example.com' },
  { type: 'ip', value: '10.0.0.1' },
  { type: 'ip', value: '2001:db8::1' },
  { type: 'email', value: 'ops@example.com' },
  { type: 'uri', value: 'https://www.example.com/' },
];

test('fast and full parsers agree on every fixture', () => {
  const files = readdirSync(fixtureDir).filter((f) => /\.(pem|der|txt)$/.test(f));
  assert.ok(files.length > 20);
  let fast = 0;
  for (const f of files) {
    const bytes = readFileSync(new URL(f, fixtureDir));
    // As text (how the API receives PEM) and as bytes (how DER arrives).
    if (assertSame(bytes, `${f} (bytes)`)) fast++;
    if (!f.endsWith('.der')) assertSame(bytes.toString('latin1'), `${f} (text)`);
  }
  assert.ok(fast >= 5, `the fast path handled only ${fast} fixtures`);
});

test('fast and full parsers agree on freshly generated requests, and the fast path takes the common ones', () => {
  const common: [string, Build][] = [];
  for (const [alg, key] of Object.entries(keys)) {
    common.push(
      [`${alg} CN + SANs`, { key, attributes: [extensionRequest(san(SANS))] }],
      [`${alg} CN only, no attributes`, { key, attributes: [] }],
      [`${alg} CN only, attributes absent`, { key, attributes: null }],
      [`${alg} SANs, empty subject`, { key, name: nameOf(), attributes: [extensionRequest(san([{ type: 'dns', value: 'a.example.com' }], true))] }],
      [`${alg} CA:true requested`, { key, attributes: [extensionRequest(san(SANS.slice(0, 1)), basicConstraints(true))] }],
      [`${alg} IP/email/URI SANs`, { key, attributes: [extensionRequest(san(SANS.slice(2)))] }],
      [
        `${alg} O/OU/C subject`,
        { key, name: nameOf(rdn('2.5.4.6', 'DE', 0x13), rdn('2.5.4.10', 'Acme, Inc.'), rdn('2.5.4.11', '#ops+"x"'), rdn(CN, ' spaced ')), attributes: [] },
      ],
    );
  }
  for (const [label, b] of common) {
    const der = csr(b);
    assert.equal(assertSame(der, label), true, `${label}: expected the fast path to handle it`);
    const pem = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    assertSame(pem, `${label} (PEM)`);
    assertSame(der.toString('base64'), `${label} (base64)`);
  }
});

test('fast and full parsers agree on unusual and refused requests', () => {
  const key = keys.p256;
  const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const cases: [string, Buffer][] = [
    ['trailing byte', csr({ key, trailing: Buffer.from([0]) })],
    ['version 1', csr({ key, version: 1 })],
    ['wrong key signs', csr({ key, publicKey: other })],
    ['two CNs', csr({ key, name: nameOf(rdn(CN, 'a.example.com'), rdn(CN, 'b.example.com')) })],
    [
      'multi-valued RDN',
      csr({
        key,
        name: nameOf(set(sequence(objectIdentifier(CN), tlv(0x0c, Buffer.from('a'))), sequence(objectIdentifier('2.5.4.10'), tlv(0x0c, Buffer.from('o'))))),
      }),
    ],
    ['BMPString CN', csr({ key, name: nameOf(rdn(CN, 'x', 0x1e)) })],
    ['TeletexString O', csr({ key, name: nameOf(rdn('2.5.4.10', 'caf\u00e9', 0x14)) })],
    ['unknown attribute type in subject', csr({ key, name: nameOf(rdn('1.2.3.4', 'v')) })],
    ['challengePassword attribute', csr({ key, attributes: [sequence(objectIdentifier('1.2.840.113549.1.9.7'), set(tlv(0x0c, Buffer.from('pw'))))] })],
    ['two extensionRequests', csr({ key, attributes: [extensionRequest(san(SANS)), extensionRequest(san(SANS))] })],
    ['duplicate extension', csr({ key, attributes: [extensionRequest(san(SANS), san(SANS))] })],
    ['empty SAN', csr({ key, attributes: [extensionRequest(ext(EXT.subjectAltName, false, sequence()))] })],
    [
      'otherName SAN',
      csr({
        key,
        attributes: [extensionRequest(ext(EXT.subjectAltName, false, sequence(tlv(0xa0, objectIdentifier('1.2.3'), tlv(0xa0, tlv(0x0c, Buffer.from('x')))))))],
      }),
    ],
    ['3-byte iPAddress', csr({ key, attributes: [extensionRequest(ext(EXT.subjectAltName, false, sequence(tlv(0x87, Buffer.from([1, 2, 3])))))] })],
    ['non-UTF-8 dNSName', csr({ key, attributes: [extensionRequest(ext(EXT.subjectAltName, false, sequence(tlv(0x82, Buffer.from([0xff, 0xfe])))))] })],
    [
      'SAN with trailing bytes',
      csr({ key, attributes: [extensionRequest(ext(EXT.subjectAltName, false, Buffer.concat([encodeSan(SANS), Buffer.from([0])])))] }),
    ],
    [
      'explicit critical FALSE',
      csr({ key, attributes: [extensionRequest(sequence(objectIdentifier(EXT.subjectAltName), tlv(0x01, Buffer.from([0])), octetString(encodeSan(SANS))))] }),
    ],
    [
      'critical as BOOLEAN 0x01',
      csr({ key, attributes: [extensionRequest(sequence(objectIdentifier(EXT.subjectAltName), tlv(0x01, Buffer.from([1])), octetString(encodeSan(SANS))))] }),
    ],
    ['version as INTEGER 02 02 00 00', csr({ key, version: -1 })],
    ['OID arc padded with 0x80', csr({ key, name: nameOf(set(sequence(tlv(0x06, Buffer.from([0x55, 0x80, 0x04, 0x03])), tlv(0x0c, Buffer.from('a'))))) })],
    ['empty OID in the subject', csr({ key, name: nameOf(set(sequence(tlv(0x06, Buffer.alloc(0)), tlv(0x0c, Buffer.from('a'))))) })],
    [
      'unsorted multi-valued RDN',
      csr({
        key,
        name: nameOf(set(sequence(objectIdentifier('2.5.4.10'), tlv(0x0c, Buffer.from('o'))), sequence(objectIdentifier(CN), tlv(0x0c, Buffer.from('a'))))),
      }),
    ],
  ];
  for (const [label, der] of cases) assertSame(der, label);
  // The DER cases are refused by both paths alike (assertSame) — and refused.
  for (const [label, der] of cases.slice(-6)) {
    assert.throws(
      () => parseCsr(der),
      (e: unknown) => e instanceof SignetError && e.type === 'bad-csr' && /^truncated or malformed DER: .* at offset \d+$/.test(e.detail),
      label,
    );
  }

  // Every single-byte corruption of a small request: both paths still agree.
  const base = csr({ key, attributes: [extensionRequest(san(SANS.slice(0, 3)))] });
  for (let i = 0; i < base.length; i++) {
    for (const delta of [1, 0x80]) {
      const bad = Buffer.from(base);
      bad[i] = (bad[i]! + delta) & 0xff;
      assertSame(bad, `byte ${i} +${delta}`);
    }
  }
  // Truncations.
  for (let n = 1; n < base.length; n += 7) assertSame(base.subarray(0, n), `truncated to ${n}`);
});

test('an extensionRequest attribute with no value or two values is refused, saying which (not "more than one extensionRequest")', () => {
  const key = keys.p256;
  const attr = (...values: Buffer[]) => sequence(objectIdentifier('1.2.840.113549.1.9.14'), set(...values));
  const cases: [string, Buffer, string][] = [
    [
      'an empty SET',
      csr({ key, attributes: [attr()] }),
      'the extensionRequest attribute has no value (an empty SET); it must hold exactly one list of extensions',
    ],
    [
      'two values',
      csr({ key, attributes: [attr(sequence(san(SANS)), sequence(san(SANS)))] }),
      'the extensionRequest attribute has 2 values; it must hold exactly one list of extensions',
    ],
  ];
  for (const [label, der, detail] of cases) {
    assertSame(der, label);
    assert.throws(
      () => parseCsr(der),
      (e: unknown) => e instanceof SignetError && e.type === 'bad-csr' && e.detail === detail,
      label,
    );
  }
});

test('key encodings: the fast JWK import agrees with the DER decoder, and defers what it does not take', () => {
  // A compressed P-256 point: refused by both paths (certificates carrying one fail in BoringSSL
  // and other verifiers), by name.
  const p256 = keys.p256;
  const jwk = createPublicKey(p256).export({ format: 'jwk' });
  const y = Buffer.from(jwk.y!, 'base64url');
  const compressed = Buffer.concat([Buffer.from([0x02 + (y[y.length - 1]! & 1)]), Buffer.from(jwk.x!, 'base64url')]);
  const compressedSpki = sequence(sequence(objectIdentifier('1.2.840.10045.2.1'), objectIdentifier('1.2.840.10045.3.1.7')), bitString(compressed));
  assert.equal(assertSame(csr({ key: p256, spki: compressedSpki }), 'compressed point'), false, 'compressed points go to the full path');
  assert.throws(
    () => parseCsr(csr({ key: p256, spki: compressedSpki })),
    (e: unknown) => e instanceof SignetError && e.type === 'bad-key' && /compressed point/.test(e.detail),
  );
  // The point at infinity (BIT STRING 00 00): refused by both, as a key problem, in this process.
  const infinity = sequence(sequence(objectIdentifier('1.2.840.10045.2.1'), objectIdentifier('1.2.840.10045.3.1.7')), bitString(Buffer.from([0])));
  assertSame(csr({ key: p256, spki: infinity }), 'point at infinity');
  assert.throws(
    () => parseCsr(csr({ key: p256, spki: infinity })),
    (e: unknown) => e instanceof SignetError && e.type === 'bad-key' && /point at infinity/.test(e.detail),
  );
  // A point off the curve, in the form the fast import takes: refused by both, as a key problem.
  const off = Buffer.from(createPublicKey(p256).export({ format: 'der', type: 'spki' }));
  off[off.length - 1] = off[off.length - 1]! ^ 1;
  assertSame(csr({ key: p256, spki: off }), 'point off the curve');
  assert.throws(
    () => parseCsr(csr({ key: p256, spki: off })),
    (e: unknown) => e instanceof SignetError && e.type === 'bad-key',
  );
  // RSA: a non-minimal modulus encoding, a small exponent, a short modulus.
  const rsaSpki = Buffer.from(createPublicKey(keys.rsa).export({ format: 'der', type: 'spki' }));
  const { n, e } = createPublicKey(keys.rsa).export({ format: 'jwk' });
  const rsaKey = (mod: Buffer, exp: Buffer) =>
    sequence(sequence(objectIdentifier('1.2.840.113549.1.1.1'), Buffer.from([0x05, 0x00])), bitString(sequence(tlv(0x02, mod), tlv(0x02, exp))));
  const nBytes = Buffer.from(n!, 'base64url');
  assert.deepEqual(rsaKey(Buffer.concat([Buffer.from([0]), nBytes]), Buffer.from(e!, 'base64url')), rsaSpki, 'the builder reproduces the real SPKI');
  assertSame(
    csr({ key: keys.rsa, spki: rsaKey(Buffer.concat([Buffer.from([0, 0]), nBytes]), Buffer.from(e!, 'base64url')) }),
    'RSA modulus with a redundant zero byte',
  );
  assertSame(csr({ key: keys.rsa, spki: rsaKey(Buffer.concat([Buffer.from([0]), nBytes]), Buffer.from([3])) }), 'RSA exponent 3 (signature cannot verify)');
  const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey;
  assertSame(csr({ key: small }), 'RSA-1024');
  assert.throws(
    () => parseCsr(csr({ key: small })),
    (err: unknown) => err instanceof SignetError && err.type === 'bad-key' && /too weak/.test(err.detail),
  );
  // Every single-byte corruption of the RSA and Ed25519 public keys: both paths agree.
  for (const [label, key] of [
    ['rsa', keys.rsa],
    ['ed25519', keys.ed25519],
  ] as const) {
    const base = csr({ key, attributes: [] });
    const spki = createPublicKey(key).export({ format: 'der', type: 'spki' });
    const at = base.indexOf(spki);
    for (let i = at; i < at + spki.length; i += label === 'rsa' ? 3 : 1) {
      const bad = Buffer.from(base);
      bad[i] = (bad[i]! + 1) & 0xff;
      assertSame(bad, `${label} key byte ${i - at} +1`);
    }
  }
});
