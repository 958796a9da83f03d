/**
 * Public keys from outside — a CSR's SubjectPublicKeyInfo, an ACME account JWK, an imported
 * CA's or a presented certificate's key — checked by Signet's own rules before node:crypto
 * sees them. Pure.
 *
 * Why not let node decide: node:crypto imports keys it cannot describe (an EC point at infinity
 * decodes, and then `asymmetricKeyDetails` or a JWK export aborts the whole process on an
 * assertion), and OpenSSL's own checks differ by version and import path. Here every key is
 * parsed strictly (the one DER reader, der-strict.ts) and checked:
 * - algorithm allow-list: RSA, ECDSA on P-256/P-384/P-521, Ed25519; anything else is named;
 * - ECDSA: uncompressed point 04‖X‖Y of the curve's exact size (compressed and hybrid points
 *   are refused, not decompressed: certificates carrying them fail in BoringSSL/Chrome and
 *   other verifiers), X and Y below p, y² = x³ − 3x + b (mod p), not the point at infinity;
 *   the curves have cofactor 1, so every point on them is in the prime-order group;
 * - RSA: RSAPublicKey of two minimal positive INTEGERs, modulus 2048–8192 bits, a multiple of 8
 *   and odd, exponent odd with 3 ≤ e ≤ 2^31−1 (Go's crypto/x509 refuses larger) and e < n;
 * - Ed25519: exactly 32 bytes, y canonical (below 2^255−19, no negative zero), not one of the 8
 *   points of small order (under which anyone can forge a signature with probability ≥ 1/8,
 *   so a CSR's proof of possession would mean nothing). Whether the point decodes at all costs
 *   ~100 µs in BigInt (a modular square root), so importSpki's fast-path callers may leave it to
 *   the signature check (an undecodable key verifies nothing) and ask for it only to explain a
 *   refusal; every other caller checks it.
 * Only then is the key handed to node, as a JWK (cheaper than node's DER decoder).
 */
import { createPublicKey } from 'node:crypto';
import { SignetError } from '../errors.js';
import { DerError, positiveInteger, readEl, readKids, strictOid, type El } from './der-strict.js';
import { OID, type TrustedKey } from './keys.js';
import { PQ_ACCEPTED, PQ_BY_OID, strengthBits, type PqFamily } from './post-quantum.js';

export type KeyFamily = 'ecdsa' | 'rsa' | 'ed25519' | PqFamily;

/** A checked public key: the KeyObject, Signet's name for it (e.g. `ecdsa-p256`), and its size. */
export interface PublicKeyInfo {
  key: TrustedKey;
  family: KeyFamily;
  /** Curve size, RSA modulus bits, 256 for Ed25519; for post-quantum keys the category's strength (128, 192, 256). */
  bits: number;
  /** `ecdsa-p256`, `rsa-3072`, `ed25519`, … */
  algorithm: string;
  /** For ECDSA the curve OID, for the others the algorithm OID. */
  curveOid?: string;
}

const badKey = (detail: string) => new SignetError('bad-key', detail);
const undecodable = (why: string) => badKey(`public key could not be decoded: ${why}`);

// ---------------------------------------------------------------------------------------------
// Curves

interface Curve {
  name: string;
  oid: string;
  jwk: 'P-256' | 'P-384' | 'P-521';
  size: number;
  bits: number;
  p: bigint;
  b: bigint;
  n: bigint;
}

/** SEC 2 / FIPS 186-4 domain parameters (a = −3 for all three); test/key-validation.test.ts compares them with openssl's. */
export const CURVES: Record<string, Curve> = {
  [OID.p256]: {
    name: 'P-256',
    oid: OID.p256,
    jwk: 'P-256',
    size: 32,
    bits: 256,
    p: 2n ** 256n - 2n ** 224n + 2n ** 192n + 2n ** 96n - 1n,
    b: 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn,
    n: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
  },
  [OID.p384]: {
    name: 'P-384',
    oid: OID.p384,
    jwk: 'P-384',
    size: 48,
    bits: 384,
    p: 2n ** 384n - 2n ** 128n - 2n ** 96n + 2n ** 32n - 1n,
    b: 0xb3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aefn,
    n: 0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
  },
  [OID.p521]: {
    name: 'P-521',
    oid: OID.p521,
    jwk: 'P-521',
    size: 66,
    bits: 521,
    p: 2n ** 521n - 1n,
    b: 0x0051953eb9618e1c9a1f929a21a0b68540eea2da725b99b315f3b8b489918ef109e156193951ec7e937b1652c0bd3bb1bf073573df883d2c34f1ef451fd46b503f00n,
    n: 0x01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409n,
  },
};
const CURVE_BY_JWK: Record<string, Curve> = Object.fromEntries(Object.values(CURVES).map((c) => [c.jwk, c]));

/** Named curves Signet refuses, so the refusal can say which one it was. */
const OTHER_CURVES: Record<string, string> = {
  '1.3.132.0.10': 'secp256k1',
  '1.3.132.0.33': 'P-224',
  '1.2.840.10045.3.1.1': 'P-192',
  '1.3.36.3.3.2.8.1.1.7': 'brainpoolP256r1',
  '1.3.36.3.3.2.8.1.1.11': 'brainpoolP384r1',
  '1.3.36.3.3.2.8.1.1.13': 'brainpoolP512r1',
  '1.2.156.10197.1.301': 'SM2',
};
const USE = 'use RSA 2048–8192, ECDSA P-256/P-384/P-521, Ed25519, ML-DSA-44/65/87 or SLH-DSA-SHA2-128s';
/** JWS (ACME account keys) has no registered ML-DSA algorithm Signet accepts, so a JWK is classical. */
const JWK_USE = 'use RSA 2048–8192, ECDSA P-256/P-384/P-521 or Ed25519';
const OTHER_KEYS: Record<string, string> = {
  [OID.dsa]: 'DSA',
  [OID.ed448]: 'Ed448',
  '1.3.101.110': 'X25519',
  '1.3.101.111': 'X448',
  '1.2.840.113549.1.1.10': 'RSASSA-PSS',
  '1.2.840.10046.2.1': 'Diffie-Hellman (X9.42)',
  '1.2.840.113549.1.3.1': 'Diffie-Hellman (PKCS#3)',
};

const toBig = (bytes: Uint8Array): bigint =>
  bytes.length === 0 ? 0n : BigInt('0x' + Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex'));
const b64u = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');

/** The checks on an EC point given as the SEC1 octets of a BIT STRING (or rebuilt from a JWK). */
function checkEcPoint(curve: Curve, point: Uint8Array): { x: Uint8Array; y: Uint8Array } {
  const what = `ECDSA ${curve.name} public key`;
  const want = 1 + 2 * curve.size;
  if (point.length === 1 && point[0] === 0x00) throw badKey(`${what} is the point at infinity, which no private key corresponds to`);
  if (point.length === 0) throw undecodable(`${what} is empty`);
  const form = point[0];
  if ((form === 0x02 || form === 0x03) && point.length === 1 + curve.size) {
    throw badKey(`${what} is a compressed point; Signet accepts only the uncompressed form (04‖X‖Y, ${want} bytes)`);
  }
  if ((form === 0x06 || form === 0x07) && point.length === want)
    throw badKey(`${what} is a hybrid-form point; Signet accepts only the uncompressed form (04‖X‖Y)`);
  if (form !== 0x04) throw undecodable(`${what} starts with 0x${form!.toString(16).padStart(2, '0')}; an uncompressed point starts with 0x04`);
  if (point.length !== want) throw undecodable(`${what} is ${point.length} bytes; an uncompressed point is ${want} bytes (04‖X‖Y)`);
  const xb = point.subarray(1, 1 + curve.size);
  const yb = point.subarray(1 + curve.size);
  const x = toBig(xb);
  const y = toBig(yb);
  if (x >= curve.p) throw badKey(`${what}: coordinate X is not below the field prime p`);
  if (y >= curve.p) throw badKey(`${what}: coordinate Y is not below the field prime p`);
  // y² = x³ − 3x + b (mod p); the difference is a multiple of p exactly when the point is on the curve.
  if ((y * y - ((x * x - 3n) * x + curve.b)) % curve.p !== 0n) throw badKey(`${what} is not a point on the curve`);
  return { x: xb, y: yb };
}

// ---------------------------------------------------------------------------------------------
// Ed25519

const ED_P = 2n ** 255n - 19n;
const ED_D = 37095705934669439343138083508754565189542113879843219016388785533085940283555n;
/**
 * The y coordinates of the 8 points of small order (the torsion subgroup): y = 0 (two points of
 * order 4), 1 (the identity), p − 1 (order 2), and two pairs of order 8. test/key-validation
 * recomputes that each has order dividing 8 and that together they are 8 points.
 */
export const ED25519_SMALL_ORDER_Y: readonly bigint[] = [
  0n,
  1n,
  ED_P - 1n,
  0x05fc536d880238b13933c6d305acdfd5f098eff289f4c345b027b2c28f95e826n,
  0x7a03ac9277fdc74ec6cc392cfa53202a0f67100d760b3cba4fd84d3d706a17c7n,
];

function modPow(base: bigint, exp: bigint, m: bigint): bigint {
  let r = 1n;
  let b = base % m;
  for (let e = exp; e > 0n; e >>= 1n) {
    if (e & 1n) r = (r * b) % m;
    b = (b * b) % m;
  }
  return r;
}

/** y of a 32-byte Ed25519 encoding (RFC 8032 §5.1.3), and the sign bit of x. */
function ed25519Y(raw: Uint8Array): { y: bigint; sign: number } {
  const le = Buffer.from(raw);
  const sign = le[31]! >> 7;
  le[31] = le[31]! & 0x7f;
  return { y: toBig(le.reverse()), sign };
}

function checkEd25519(raw: Uint8Array, decode: boolean): void {
  if (raw.length !== 32) throw undecodable(`an Ed25519 public key is 32 bytes, found ${raw.length}`);
  const { y, sign } = ed25519Y(raw);
  if (y >= ED_P) throw badKey('Ed25519 public key is not canonically encoded (y is not below 2^255−19)');
  if (ED25519_SMALL_ORDER_Y.includes(y)) throw badKey('Ed25519 public key is a point of small order, under which anyone can make signatures that verify');
  // y = ±1 give x = 0, whose sign bit must be clear; both are small-order points, refused above.
  if (decode && !ed25519Decodes(y, sign)) throw badKey('Ed25519 public key is not a point on the curve');
}

/** Whether x² = (y² − 1) / (d·y² + 1) has a solution mod p (RFC 8032 §5.1.3 step 2–3). */
function ed25519Decodes(y: bigint, sign: number): boolean {
  const y2 = (y * y) % ED_P;
  const u = (y2 - 1n + ED_P) % ED_P;
  const v = (ED_D * y2 + 1n) % ED_P;
  const uv = (u * v) % ED_P;
  if (uv === 0n) return sign === 0; // x = 0
  return modPow(uv, (ED_P - 1n) / 2n, ED_P) === 1n; // Euler's criterion: u/v is a square iff u·v is
}

// ---------------------------------------------------------------------------------------------
// RSA

const MAX_RSA_EXPONENT = 2n ** 31n - 1n;

function checkRsa(n: Uint8Array, e: Uint8Array): number {
  const bits = (n.length - 1) * 8 + (32 - Math.clz32(n[0]!));
  if (bits < 2048) throw badKey(`RSA key of ${bits} bits is too weak; use 2048 to 8192 bits`);
  if (bits > 8192) throw badKey(`RSA key of ${bits} bits is too large; Signet accepts 2048 to 8192 bits`);
  // CA/B BR 6.1.5: the modulus size in bits must be divisible by 8.
  if (bits % 8 !== 0) throw badKey(`RSA key of ${bits} bits is not a multiple of 8 bits; use 2048, 3072 or 4096`);
  if (!(n[n.length - 1]! & 1)) throw badKey('RSA modulus is even, so it is not a product of two large primes');
  if (e.length > 4)
    throw badKey(`RSA public exponent of ${e.length * 8} bits is too large; Signet accepts 3 to 2^31−1 (Go's crypto/x509 refuses larger); use 65537`);
  const ev = toBig(e);
  // e = 1 makes any "signature" verify, so proof of possession would mean nothing.
  if (ev < 3n || ev % 2n === 0n) throw badKey(`RSA public exponent ${ev} is not allowed; use 65537`);
  if (ev > MAX_RSA_EXPONENT) throw badKey(`RSA public exponent ${ev} is too large; Signet accepts 3 to 2^31−1 (Go's crypto/x509 refuses larger); use 65537`);
  // With 2048-bit moduli and e < 2^31 this cannot fail; kept so the rule stands on its own.
  if (ev >= toBig(n)) throw badKey('RSA public exponent is not smaller than the modulus');
  return bits;
}

/** RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER } (RFC 8017 A.1.1), strictly. */
function rsaPublicKey(bits: Uint8Array): { n: Uint8Array; e: Uint8Array } {
  let seq: El;
  let ints: El[];
  try {
    seq = readEl(bits, 0, bits.length);
    if (seq.tag !== 0x30) throw undecodable('RSAPublicKey is not a SEQUENCE');
    if (seq.end !== bits.length) throw undecodable(`${bits.length - seq.end} bytes after the RSAPublicKey`);
    ints = readKids(bits, seq);
  } catch (err) {
    if (err instanceof DerError) throw undecodable(`RSAPublicKey: ${err.message}`);
    throw err;
  }
  if (ints.length !== 2) throw undecodable(`RSAPublicKey has ${ints.length} elements, expected 2 (modulus, exponent)`);
  const n = positiveInteger(bits, ints[0]!);
  if (!n) throw undecodable('RSA modulus is not a minimal, positive DER INTEGER');
  const e = positiveInteger(bits, ints[1]!);
  if (!e) throw undecodable('RSA public exponent is not a minimal, positive DER INTEGER');
  return { n, e };
}

// ---------------------------------------------------------------------------------------------
// SubjectPublicKeyInfo

function named(curveOid: string): Curve {
  const curve = CURVES[curveOid];
  if (!curve) throw badKey(`ECDSA curve ${OTHER_CURVES[curveOid] ?? `with OID ${curveOid}`} is not supported; use P-256, P-384 or P-521`);
  return curve;
}

function jwkImport(jwk: Record<string, string>): TrustedKey {
  try {
    return createPublicKey({ key: jwk, format: 'jwk' }) as TrustedKey;
  } catch (e) {
    // Every check node makes was made above; this would be a disagreement worth reading.
    throw badKey(`public key could not be imported: ${(e as Error).message}`);
  }
}

/**
 * A SubjectPublicKeyInfo (RFC 5280 §4.1.2.7) checked and imported; throws SignetError 'bad-key'
 * naming what is wrong. `decodeEd25519: false` skips only the costly Ed25519 point decoding (see
 * the module comment); the caller must then verify a signature under the key before trusting it.
 */
export function importSpki(der: Uint8Array, opts: { decodeEd25519?: boolean } = {}): PublicKeyInfo {
  const { jwk, ...info } = checkSpki(der, opts);
  return { key: jwkImport(jwk), ...info };
}

type Checked = Omit<PublicKeyInfo, 'key'> & { jwk: Record<string, string> };

/** importSpki's checks alone, without node: the key's JWK form and description (pure; for benchmarks and importSpki). */
export function checkSpki(der: Uint8Array, opts: { decodeEd25519?: boolean } = {}): Checked {
  let alg: El[];
  let bits: El;
  try {
    const spki = readEl(der, 0, der.length);
    if (spki.tag !== 0x30) throw undecodable('SubjectPublicKeyInfo is not a SEQUENCE');
    if (spki.end !== der.length) throw undecodable(`${der.length - spki.end} bytes after the SubjectPublicKeyInfo`);
    const parts = readKids(der, spki);
    if (parts.length !== 2 || parts[0]!.tag !== 0x30 || parts[1]!.tag !== 0x03)
      throw undecodable('SubjectPublicKeyInfo is not SEQUENCE { AlgorithmIdentifier, BIT STRING }');
    alg = readKids(der, parts[0]!);
    bits = parts[1]!;
  } catch (err) {
    if (err instanceof DerError) throw undecodable(err.message);
    throw err;
  }
  if (alg.length < 1 || alg.length > 2) throw undecodable(`AlgorithmIdentifier has ${alg.length} elements`);
  const algOid = strictOid(der, alg[0]!);
  if (algOid === null) throw undecodable('the key algorithm is not a valid OBJECT IDENTIFIER');
  const params = alg[1];
  if (bits.end === bits.body || der[bits.body] !== 0) throw undecodable('subjectPublicKey BIT STRING has unused bits');
  const key = der.subarray(bits.body + 1, bits.end);

  if (algOid === OID.ecPublicKey) {
    if (params?.tag !== 0x06) {
      throw badKey(
        params && params.tag === 0x30
          ? 'ECDSA key with explicit curve parameters is not supported; use the named curve P-256, P-384 or P-521'
          : 'ECDSA key without a named curve is not supported; use P-256, P-384 or P-521',
      );
    }
    const curveOid = strictOid(der, params);
    if (curveOid === null) throw badKey('ECDSA key has a malformed curve identifier');
    const curve = named(curveOid);
    const { x, y } = checkEcPoint(curve, key);
    return { jwk: { kty: 'EC', crv: curve.jwk, x: b64u(x), y: b64u(y) }, family: 'ecdsa', bits: curve.bits, algorithm: `ecdsa-p${curve.bits}`, curveOid };
  }
  if (algOid === OID.ed25519) {
    if (params) throw badKey('Ed25519 key has algorithm parameters, which RFC 8410 forbids');
    checkEd25519(key, opts.decodeEd25519 ?? true);
    return { jwk: { kty: 'OKP', crv: 'Ed25519', x: b64u(key) }, family: 'ed25519', bits: 256, algorithm: 'ed25519', curveOid: OID.ed25519 };
  }
  if (algOid === OID.rsaEncryption) {
    // RFC 3279 §2.3.1 / RFC 4055 §1.2: the parameters MUST be NULL.
    if (params?.tag !== 0x05 || params.end !== params.body) throw badKey('RSA key algorithm parameters must be NULL (RFC 3279)');
    const { n, e } = rsaPublicKey(key);
    const size = checkRsa(n, e);
    return { jwk: { kty: 'RSA', n: b64u(n), e: b64u(e) }, family: 'rsa', bits: size, algorithm: `rsa-${size}`, curveOid: OID.rsaEncryption };
  }
  const pq = PQ_BY_OID.get(algOid);
  if (pq) {
    if (!PQ_ACCEPTED.has(pq.name)) throw badKey(`${pq.label} keys are not supported; ${pq.family === 'ml-kem' ? 'use ML-KEM-768' : USE}`);
    // RFC 9881 §2, RFC 9909, RFC 9935: the parameters MUST be absent (not even NULL).
    if (params)
      throw badKey(
        `${pq.label} key has algorithm parameters; they must be absent (RFC ${pq.family === 'ml-kem' ? '9935' : pq.family === 'ml-dsa' ? '9881' : '9909'})`,
      );
    if (key.length !== pq.publicKeyBytes) {
      // The length names the level: say so when the key is another level's under this OID.
      const other = [...PQ_BY_OID.values()].find((a) => a.family === pq.family && a.publicKeyBytes === key.length);
      throw other
        ? badKey(`the key is ${key.length} bytes, an ${other.label} key, but its OID says ${pq.label} (${pq.publicKeyBytes} bytes)`)
        : undecodable(`an ${pq.label} public key is ${pq.publicKeyBytes} bytes, found ${key.length}`);
    }
    return {
      jwk: { kty: 'AKP', alg: pq.label, pub: b64u(key) },
      family: pq.family,
      bits: strengthBits(pq),
      algorithm: pq.name,
      curveOid: pq.oid,
    };
  }
  throw badKey(`${OTHER_KEYS[algOid] ?? `public key algorithm ${algOid}`} keys are not supported; ${USE}`);
}

/**
 * The raw key material for comparing two checked keys of the same family (private-key.ts):
 * the EC point, the Ed25519 bytes, RSA n and e.
 */
export function publicKeyMaterial(der: Uint8Array): { point?: Uint8Array; n?: Uint8Array; e?: Uint8Array } {
  const spki = readEl(der, 0, der.length);
  const [alg, bits] = readKids(der, spki) as [El, El];
  const key = der.subarray(bits.body + 1, bits.end);
  if (strictOid(der, readKids(der, alg)[0]!) === OID.rsaEncryption) return rsaPublicKey(key);
  return { point: key };
}

// ---------------------------------------------------------------------------------------------
// JWK (RFC 7517/7518/8037)

/** Strict base64url (RFC 7515 §2): the URL alphabet, no padding, no stray bits. */
function b64uField(jwk: Record<string, unknown>, name: string, what: string): Buffer {
  const v = jwk[name];
  if (typeof v !== 'string' || v.length === 0) throw badKey(`${what} JWK lacks the "${name}" member`);
  if (!/^[A-Za-z0-9_-]+$/.test(v) || v.length % 4 === 1) throw badKey(`${what} JWK member "${name}" is not base64url`);
  const bytes = Buffer.from(v, 'base64url');
  if (bytes.toString('base64url') !== v) throw badKey(`${what} JWK member "${name}" is not canonical base64url`);
  return bytes;
}

/** RFC 7518 §2 Base64urlUInt: the minimum number of octets. */
function uintField(jwk: Record<string, unknown>, name: string, what: string): Buffer {
  const bytes = b64uField(jwk, name, what);
  if (bytes.length > 1 && bytes[0] === 0)
    throw badKey(`${what} JWK member "${name}" has a leading zero octet (RFC 7518 §2 asks for the minimum number of octets)`);
  return bytes;
}

/**
 * A public JWK checked and imported; throws SignetError 'bad-key' naming what is wrong. Members
 * other than those defining the key (kid, alg, use…) are ignored; private members are refused.
 */
export function importPublicJwk(input: unknown): PublicKeyInfo {
  if (!input || typeof input !== 'object' || Array.isArray(input)) throw badKey('the JWK is not a JSON object');
  const jwk = input as Record<string, unknown>;
  for (const m of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth']) {
    if (m in jwk) throw badKey(`the JWK has the private member "${m}"; send the public key only`);
  }
  const kty = jwk.kty;
  if (kty === 'EC') {
    const crv = jwk.crv;
    const curve = typeof crv === 'string' ? CURVE_BY_JWK[crv] : undefined;
    if (!curve) throw badKey(`ECDSA curve ${typeof crv === 'string' ? crv : '(none)'} is not supported; use P-256, P-384 or P-521`);
    const what = `ECDSA ${curve.name}`;
    const x = b64uField(jwk, 'x', what);
    const y = b64uField(jwk, 'y', what);
    // RFC 7518 §6.2.1.2: each coordinate is exactly the curve's size, leading zeros kept.
    if (x.length !== curve.size || y.length !== curve.size)
      throw badKey(`${what} JWK coordinates must be ${curve.size} bytes each, found ${x.length} and ${y.length}`);
    checkEcPoint(curve, Buffer.concat([Buffer.from([0x04]), x, y]));
    return {
      key: jwkImport({ kty: 'EC', crv: curve.jwk, x: b64u(x), y: b64u(y) }),
      family: 'ecdsa',
      bits: curve.bits,
      algorithm: `ecdsa-p${curve.bits}`,
      curveOid: curve.oid,
    };
  }
  if (kty === 'RSA') {
    const n = uintField(jwk, 'n', 'RSA');
    const e = uintField(jwk, 'e', 'RSA');
    const size = checkRsa(n, e);
    return { key: jwkImport({ kty: 'RSA', n: b64u(n), e: b64u(e) }), family: 'rsa', bits: size, algorithm: `rsa-${size}`, curveOid: OID.rsaEncryption };
  }
  if (kty === 'OKP') {
    if (jwk.crv !== 'Ed25519') throw badKey(`${typeof jwk.crv === 'string' ? jwk.crv : 'OKP'} keys are not supported; ${JWK_USE}`);
    const x = b64uField(jwk, 'x', 'Ed25519');
    checkEd25519(x, true);
    return { key: jwkImport({ kty: 'OKP', crv: 'Ed25519', x: b64u(x) }), family: 'ed25519', bits: 256, algorithm: 'ed25519', curveOid: OID.ed25519 };
  }
  throw badKey(`JWK key type ${typeof kty === 'string' ? JSON.stringify(kty) : '(none)'} is not supported; ${JWK_USE}`);
}

export { toBig as bigFromBytes };
