/**
 * JWS for ACME (RFC 8555 §6.2, RFC 7515 flattened JSON): parse, check the protected header,
 * verify with node:crypto. Algorithms: ES256, ES384, RS256 (RSA ≥ 2048), EdDSA (Ed25519).
 * HS256 only for External Account Binding (§7.3.4). "none" and MAC algorithms on the outer
 * JWS are refused as badSignatureAlgorithm.
 */
import { createHash, createHmac, timingSafeEqual, verify, type JsonWebKey } from 'node:crypto';
import { SignetError } from '../errors.js';
import type { TrustedKey } from '../pki/keys.js';
import { importPublicJwk, type PublicKeyInfo } from '../pki/public-key.js';
import { refuseNul } from '../http/validate.js';

export const JWS_ALGORITHMS = ['ES256', 'ES384', 'RS256', 'EdDSA'] as const;
export type JwsAlgorithm = (typeof JWS_ALGORITHMS)[number];

export interface FlattenedJws {
  protected: string;
  payload: string;
  signature: string;
}
export interface ProtectedHeader {
  alg: string;
  nonce?: string;
  url?: string;
  jwk?: JsonWebKey;
  kid?: string;
  [k: string]: unknown;
}

export interface ParsedJws {
  header: ProtectedHeader;
  /** Empty string for POST-as-GET. */
  payloadText: string;
  signingInput: Buffer;
  signature: Buffer;
  raw: FlattenedJws;
}

const malformed = (detail: string) => new SignetError('bad-request', detail, { acme: 'malformed' });
const b64u = /^[A-Za-z0-9_-]*$/;

export function decodeB64u(s: string, what: string): Buffer {
  if (typeof s !== 'string' || !b64u.test(s)) throw malformed(`${what} is not base64url`);
  return Buffer.from(s, 'base64url');
}

export function parseJws(body: unknown): ParsedJws {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw malformed('request body must be a flattened JWS JSON object');
  const b = body as Record<string, unknown>;
  if ('signatures' in b) throw malformed('only the flattened JWS serialization is accepted (no "signatures")');
  if ('header' in b) throw malformed('unprotected JWS headers are not allowed');
  if (typeof b.protected !== 'string' || typeof b.payload !== 'string' || typeof b.signature !== 'string')
    throw malformed('JWS must have string fields protected, payload and signature');
  let header: ProtectedHeader;
  try {
    header = JSON.parse(decodeB64u(b.protected, 'protected header').toString('utf8')) as ProtectedHeader;
  } catch (e) {
    if (e instanceof SignetError) throw e;
    throw malformed('protected header is not JSON');
  }
  if (!header || typeof header !== 'object' || typeof header.alg !== 'string') throw malformed('protected header must name an "alg"');
  // RFC 7515 §4.1.11: a recipient MUST reject a JWS whose "crit" names what it does not
  // understand; RFC 8555 defines no critical header parameter, so every "crit" is refused.
  if ('crit' in header) throw malformed('protected header has "crit", but no critical header parameter is understood here (RFC 7515 §4.1.11)');
  // The nonce is judged by its MAC (a badNonce the client retries), whatever its bytes.
  const { nonce: _nonce, ...rest } = header;
  refuseNul(rest, 'the JWS protected header', 'malformed');
  const payloadText = decodeB64u(b.payload, 'payload').toString('utf8');
  if (payloadText) {
    let payload: unknown;
    try {
      payload = JSON.parse(payloadText);
    } catch {
      payload = undefined;
    } // judged where the payload is read
    // A contact with a lone surrogate is an invalid contact (RFC 8555 §7.3), as the contact
    // validator said before this edge check existed; a NUL anywhere stays malformed.
    refuseNul(payload, 'the JWS payload', (f) => (f.kind === 'surrogate' && f.at.startsWith('contact') ? 'invalidContact' : 'malformed'));
  }
  return {
    header,
    payloadText,
    signingInput: Buffer.from(`${b.protected}.${b.payload}`, 'ascii'),
    signature: decodeB64u(b.signature, 'signature'),
    raw: { protected: b.protected, payload: b.payload, signature: b.signature },
  };
}

/**
 * A JWK to a KeyObject: every account key (new-account, key-change's new and old key, the EAB
 * payload, a stored account's key) is checked by public-key.ts before node:crypto sees it.
 */
export function importJwk(jwk: unknown): TrustedKey {
  if (!jwk || typeof jwk !== 'object' || Array.isArray(jwk)) throw malformed('jwk must be an object');
  let info: PublicKeyInfo;
  try {
    info = importPublicJwk(jwk);
  } catch (e) {
    if (e instanceof SignetError) throw new SignetError('bad-request', `the account key is refused: ${e.detail}`, { acme: 'badPublicKey' });
    throw e;
  }
  // ES512 is not among the JWS algorithms accepted here, so a P-521 key could sign nothing.
  if (info.algorithm === 'ecdsa-p521') throw new SignetError('bad-request', 'EC account keys must use P-256 or P-384', { acme: 'badPublicKey' });
  return info.key;
}

/** RFC 7638 thumbprint (SHA-256, base64url) of a public JWK's required members. */
export function thumbprint(key: TrustedKey): string {
  const j = key.export({ format: 'jwk' }) as Record<string, string>;
  const members =
    j.kty === 'EC' ? { crv: j.crv, kty: j.kty, x: j.x, y: j.y } : j.kty === 'RSA' ? { e: j.e, kty: j.kty, n: j.n } : { crv: j.crv, kty: j.kty, x: j.x };
  return createHash('sha256').update(JSON.stringify(members)).digest('base64url');
}

export function publicJwk(key: TrustedKey): JsonWebKey {
  return key.export({ format: 'jwk' });
}

/** Verifies the signature with the algorithm the header names, which must fit the key. */
export function verifyJws(jws: ParsedJws, key: TrustedKey): void {
  const alg = jws.header.alg;
  if (!(JWS_ALGORITHMS as readonly string[]).includes(alg)) {
    throw new SignetError('bad-request', `JWS algorithm ${alg} is not supported; use one of ${JWS_ALGORITHMS.join(', ')}`, {
      acme: 'badSignatureAlgorithm',
      extra: { algorithms: [...JWS_ALGORITHMS] },
    });
  }
  const t = key.asymmetricKeyType;
  const curve = key.asymmetricKeyDetails?.namedCurve;
  const fits =
    (alg === 'ES256' && t === 'ec' && curve === 'prime256v1') ||
    (alg === 'ES384' && t === 'ec' && curve === 'secp384r1') ||
    (alg === 'RS256' && t === 'rsa') ||
    (alg === 'EdDSA' && t === 'ed25519');
  if (!fits)
    throw new SignetError('bad-request', `JWS algorithm ${alg} does not match the ${t}${curve ? ` ${curve}` : ''} key`, {
      acme: 'badSignatureAlgorithm',
      extra: { algorithms: [...JWS_ALGORITHMS] },
    });
  let ok = false;
  try {
    if (alg === 'ES256' || alg === 'ES384') {
      const size = alg === 'ES256' ? 64 : 96;
      ok = jws.signature.length === size && verify(alg === 'ES256' ? 'sha256' : 'sha384', jws.signingInput, { key, dsaEncoding: 'ieee-p1363' }, jws.signature);
    } else if (alg === 'RS256') ok = verify('sha256', jws.signingInput, key, jws.signature);
    else ok = verify(null, jws.signingInput, key, jws.signature);
  } catch {
    ok = false;
  }
  if (!ok) throw new SignetError('unauthorized', 'JWS signature does not verify', { acme: 'malformed' });
}

/** External Account Binding: an HS256 JWS over the account JWK, keyed by the EAB key. */
export function verifyEab(eab: unknown, accountJwk: JsonWebKey, url: string, lookup: (kid: string) => Buffer | null): string {
  const jws = parseJws(eab);
  const h = jws.header;
  if (h.alg !== 'HS256') throw new SignetError('bad-request', `externalAccountBinding must use HS256, not ${h.alg}`, { acme: 'malformed' });
  if (typeof h.kid !== 'string' || !h.kid) throw new SignetError('bad-request', 'externalAccountBinding needs a kid', { acme: 'malformed' });
  if ('nonce' in h) throw new SignetError('bad-request', 'externalAccountBinding must not carry a nonce', { acme: 'malformed' });
  if (h.url !== url) throw new SignetError('bad-request', 'externalAccountBinding url must equal the newAccount URL', { acme: 'malformed' });
  let inner: JsonWebKey;
  try {
    inner = JSON.parse(jws.payloadText) as JsonWebKey;
  } catch {
    throw new SignetError('bad-request', 'externalAccountBinding payload must be the account JWK', { acme: 'malformed' });
  }
  if (thumbprint(importJwk(inner)) !== thumbprint(importJwk(accountJwk)))
    throw new SignetError('bad-request', "externalAccountBinding payload is not this account's key", { acme: 'malformed' });
  const key = lookup(h.kid);
  if (!key) throw new SignetError('unauthorized', `external account key ${h.kid} is unknown`, { acme: 'unauthorized' });
  const mac = createHmac('sha256', key).update(jws.signingInput).digest();
  if (mac.length !== jws.signature.length || !timingSafeEqual(mac, jws.signature))
    throw new SignetError('unauthorized', 'externalAccountBinding MAC does not verify', { acme: 'unauthorized' });
  return h.kid;
}
