/**
 * Private keys from outside — an imported CA's key, an offline CA key file handed to the CLI —
 * checked against their certificate's (already checked) public key before node:crypto is asked
 * anything about them. Pure.
 *
 * node decodes and decrypts the PEM (the only way to read every encrypted form), but the key is
 * then only re-exported as PKCS#8 DER, which Signet parses with its own DER reader:
 * - ECDSA: the curve is the certificate's, the scalar satisfies 1 ≤ d < n (node imports and even
 *   signs with d = 0, whose public key is the point at infinity), and an embedded public key,
 *   if any, is the certificate's point;
 * - RSA: two-prime, n and e equal the certificate's, p·q = n, 1 < d < n;
 * - Ed25519: a 32-byte seed;
 * - ML-DSA / SLH-DSA: the key's parameter set is the certificate's, and the public key node
 *   derives from it (OpenSSL 3.5 checks a seed against an expanded key when both are present,
 *   RFC 9881 §6) is the certificate's byte for byte;
 * and finally a pairwise-consistency test: a signature made with the private key must verify
 * under the certificate's key, so the key pair is proven to be one (also for Ed25519, whose
 * public key derives from the seed by a hash).
 */
import { createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { SignetError } from '../errors.js';
import { DerError, positiveInteger, readEl, readKids, strictOid, type El } from './der-strict.js';
import { OID, type TrustedKey } from './keys.js';
import { isPqSignature } from './post-quantum.js';
import { bigFromBytes, CURVES, publicKeyMaterial, type PublicKeyInfo } from './public-key.js';

const badKey = (detail: string) => new SignetError('bad-key', detail);
const NODE_TYPE: Record<string, PublicKeyInfo['family']> = { ec: 'ecdsa', rsa: 'rsa', ed25519: 'ed25519' };
const PROBE = Buffer.from('signet: private key pairwise-consistency test');

/**
 * The private key, trusted once it is shown to be the private half of `cert` (a checked
 * certificate key and its SPKI DER); throws SignetError 'bad-key' otherwise.
 */
export function checkPrivateKey(privateKey: KeyObject, cert: { info: PublicKeyInfo; spkiDer: Uint8Array }): TrustedKey {
  if (privateKey.type !== 'private') throw badKey('the key given is not a private key');
  // asymmetricKeyType is a plain type id; node computes nothing about the key to answer it.
  const type = privateKey.asymmetricKeyType ?? '';
  if (isPqSignature(type)) return checkPostQuantumKey(privateKey, type, cert);
  const family = NODE_TYPE[type];
  if (!family)
    throw badKey(`private keys of type ${type || 'unknown'} are not supported; use RSA, ECDSA P-256/P-384/P-521, Ed25519, ML-DSA or SLH-DSA-SHA2-128s`);
  if (family !== cert.info.family)
    throw badKey(`the private key does not match the certificate: it is an ${family} key, the certificate's is ${cert.info.algorithm}`);
  let pkcs8: Buffer;
  try {
    pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
  } catch (e) {
    throw badKey(`the private key could not be re-encoded as PKCS#8: ${(e as Error).message.split('\n')[0]}`);
  }
  try {
    const material = publicKeyMaterial(cert.spkiDer);
    try {
      checkPkcs8(pkcs8, cert.info, material);
    } catch (e) {
      if (e instanceof DerError) throw badKey(`the private key is malformed: ${e.message}`);
      throw e;
    }
  } finally {
    pkcs8.fill(0);
  }
  const trusted = privateKey as TrustedKey;
  let ok = false;
  try {
    const sig = family === 'ecdsa' ? sign('sha256', PROBE, { key: trusted, dsaEncoding: 'der' }) : sign(family === 'rsa' ? 'sha256' : null, PROBE, trusted);
    ok = verify(family === 'ed25519' ? null : 'sha256', PROBE, family === 'ecdsa' ? { key: cert.info.key, dsaEncoding: 'der' } : cert.info.key, sig);
  } catch {
    ok = false;
  }
  if (!ok) throw badKey("the private key does not match the certificate (a signature made with it does not verify under the certificate's key)");
  return trusted;
}

function checkPostQuantumKey(privateKey: KeyObject, type: string, cert: { info: PublicKeyInfo; spkiDer: Uint8Array }): TrustedKey {
  if (type !== cert.info.algorithm)
    throw badKey(`the private key does not match the certificate: it is an ${type} key, the certificate's is ${cert.info.algorithm}`);
  let derived: Buffer;
  try {
    derived = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  } catch (e) {
    throw badKey(`the ${type} private key could not be read: ${(e as Error).message.split('\n')[0]}`);
  }
  if (!derived.equals(cert.spkiDer)) throw badKey("the private key does not match the certificate (its public key is not the certificate's)");
  let ok = false;
  try {
    ok = verify(null, PROBE, cert.info.key, sign(null, PROBE, privateKey));
  } catch {
    ok = false;
  }
  if (!ok) throw badKey("the private key does not match the certificate (a signature made with it does not verify under the certificate's key)");
  return privateKey as TrustedKey;
}

function checkPkcs8(der: Buffer, info: PublicKeyInfo, material: { point?: Uint8Array; n?: Uint8Array; e?: Uint8Array }): void {
  const top = readEl(der, 0, der.length);
  const parts = readKids(der, top);
  if (top.tag !== 0x30 || parts.length < 3 || parts[0]!.tag !== 0x02 || parts[1]!.tag !== 0x30 || parts[2]!.tag !== 0x04)
    throw badKey('the private key is not a PKCS#8 PrivateKeyInfo');
  const alg = readKids(der, parts[1]!);
  const algOid = alg[0] ? strictOid(der, alg[0]) : null;
  const inner = der.subarray(parts[2]!.body, parts[2]!.end);

  if (info.family === 'ecdsa') {
    const curveOid = alg[1] ? strictOid(der, alg[1]) : null;
    if (algOid !== OID.ecPublicKey || curveOid !== info.curveOid)
      throw badKey(`the private key does not match the certificate: it is not on the certificate's curve (${info.algorithm})`);
    const curve = CURVES[curveOid]!;
    const seq = readEl(inner, 0, inner.length);
    const ec = readKids(inner, seq);
    if (seq.tag !== 0x30 || ec.length < 2 || !isInteger(inner, ec[0]!, 1) || ec[1]!.tag !== 0x04)
      throw badKey('the private key is not a SEC1 ECPrivateKey (RFC 5915)');
    const dBytes = inner.subarray(ec[1]!.body, ec[1]!.end);
    if (dBytes.length === 0 || dBytes.length > curve.size)
      throw badKey(`the ECDSA private key is ${dBytes.length} bytes; a ${curve.name} scalar is at most ${curve.size}`);
    const d = bigFromBytes(dBytes);
    if (d === 0n) throw badKey('the ECDSA private key is zero, which is no key (its public key would be the point at infinity)');
    if (d >= curve.n) throw badKey(`the ECDSA private key is not below the order n of ${curve.name}`);
    const pub = ec.find((e) => e.tag === 0xa1);
    if (pub) {
      const bits = readEl(inner, pub.body, pub.end);
      const point = inner.subarray(bits.body + 1, bits.end);
      if (bits.tag !== 0x03 || inner[bits.body] !== 0 || !material.point || !Buffer.from(point).equals(material.point)) {
        throw badKey('the private key does not match the certificate (its embedded public key is another point)');
      }
    }
    return;
  }
  if (info.family === 'rsa') {
    if (algOid !== OID.rsaEncryption) throw badKey('the private key is not an rsaEncryption key');
    const seq = readEl(inner, 0, inner.length);
    const f = readKids(inner, seq);
    if (seq.tag !== 0x30 || f.length !== 9 || !isInteger(inner, f[0]!, 0))
      throw badKey('the RSA private key is not a two-prime RSAPrivateKey (RFC 8017 A.1.2)');
    const [n, e, d, p, q] = f.slice(1, 6).map((x) => positiveInteger(inner, x));
    if (!n || !e || !d || !p || !q) throw badKey('the RSA private key has a field that is not a minimal, positive INTEGER');
    if (!material.n || !Buffer.from(n).equals(material.n) || !material.e || !Buffer.from(e).equals(material.e)) {
      throw badKey('the private key does not match the certificate (another RSA modulus or exponent)');
    }
    const nv = bigFromBytes(n);
    const dv = bigFromBytes(d);
    const pv = bigFromBytes(p);
    const qv = bigFromBytes(q);
    if (pv < 2n || qv < 2n || pv * qv !== nv) throw badKey('the RSA private key is inconsistent: its primes do not multiply to the modulus');
    if (dv < 2n || dv >= nv) throw badKey('the RSA private exponent is out of range');
    return;
  }
  // Ed25519: CurvePrivateKey ::= OCTET STRING, the 32-byte seed (RFC 8410 §7).
  if (algOid !== OID.ed25519 || alg.length !== 1) throw badKey('the private key is not an Ed25519 key without parameters');
  const seed = readEl(inner, 0, inner.length);
  if (seed.tag !== 0x04 || seed.end !== inner.length || seed.end - seed.body !== 32) throw badKey('the Ed25519 private key is not a 32-byte seed');
}

const isInteger = (buf: Uint8Array, e: El, value: number): boolean => e.tag === 0x02 && e.end - e.body === 1 && buf[e.body] === value;
