/**
 * The ACME JWS layer (src/acme/jws.ts): parseJws, importJwk, verifyJws, verifyEab, thumbprint —
 * what every /acme/* POST body and new-account key goes through before anything else.
 *
 * Properties, for any JSON body:
 *  - each step returns or throws a 4xx SignetError (never a TypeError from a missing field, never
 *    a process abort from a hostile key);
 *  - verifyJws accepts exactly when an independent check does: the header's alg is one of
 *    ES256/ES384/RS256/EdDSA and fits the key, and node:crypto verifies the signature over
 *    `protected.payload` as sent;
 *  - an imported key round-trips: importJwk(publicJwk(key)) has the same thumbprint;
 *  - verifyEab returns a kid only when the HMAC-SHA256 over the EAB's signing input is right,
 *    the alg is HS256, the url matches and the payload is the account key.
 */
import { createHmac, generateKeyPairSync, sign, verify, type JsonWebKey, type KeyObject } from 'node:crypto';
import fc from 'fast-check';
import { importJwk, parseJws, publicJwk, thumbprint, verifyEab, verifyJws } from '../../../src/acme/jws.js';
import { corpusSeeds } from '../lib/arbitraries.js';
import { assertThat, jsonCodec, outcome, type Target } from '../lib/target.js';

interface JwsInput {
  /** The request body, as JSON.parse would give it. */
  body: unknown;
  /** new-account with External Account Binding: the EAB object, the MAC key (hex) and URL. */
  eab?: { jws: unknown; macKeyHex: string; kid: string; url: string };
}

type KeyKind = 'ES256' | 'ES384' | 'RS256' | 'EdDSA' | 'P-521' | 'secp256k1' | 'RSA-1024' | 'Ed448' | 'X25519';
const KINDS: KeyKind[] = ['ES256', 'ES384', 'RS256', 'EdDSA', 'P-521', 'secp256k1', 'RSA-1024', 'Ed448', 'X25519'];
let keys: Record<KeyKind, { privateKey: KeyObject; jwk: JsonWebKey }> | undefined;

function keyset() {
  if (keys) return keys;
  const gen = (k: KeyKind) => {
    switch (k) {
      case 'ES256':
        return generateKeyPairSync('ec', { namedCurve: 'P-256' });
      case 'ES384':
        return generateKeyPairSync('ec', { namedCurve: 'P-384' });
      case 'P-521':
        return generateKeyPairSync('ec', { namedCurve: 'P-521' });
      case 'secp256k1':
        return generateKeyPairSync('ec', { namedCurve: 'secp256k1' });
      case 'RS256':
        return generateKeyPairSync('rsa', { modulusLength: 2048 });
      case 'RSA-1024':
        return generateKeyPairSync('rsa', { modulusLength: 1024 });
      case 'EdDSA':
        return generateKeyPairSync('ed25519');
      case 'Ed448':
        return generateKeyPairSync('ed448');
      case 'X25519':
        return generateKeyPairSync('x25519');
    }
  };
  keys = Object.fromEntries(
    KINDS.map((k) => {
      const p = gen(k);
      return [k, { privateKey: p.privateKey, jwk: p.publicKey.export({ format: 'jwk' }) }];
    }),
  ) as NonNullable<typeof keys>;
  return keys!;
}

function signAs(alg: string, key: KeyObject, input: Buffer): Buffer {
  try {
    if (alg === 'ES256' || alg === 'ES384' || alg === 'ES512')
      return sign({ ES256: 'sha256', ES384: 'sha384', ES512: 'sha512' }[alg], input, { key, dsaEncoding: 'ieee-p1363' });
    if (alg === 'RS256') return sign('sha256', input, key);
    if (alg === 'HS256') return createHmac('sha256', Buffer.from('k')).update(input).digest();
    return sign(null, input, key);
  } catch {
    return Buffer.from('not a signature');
  }
}

const b64u = (x: string | Buffer) => Buffer.from(x).toString('base64url');

/** The verdict an independent reading of RFC 7515/8555 gives for (alg, key, input, signature). */
function expectedVerdict(alg: string, key: KeyObject, input: Buffer, sig: Buffer): boolean {
  const t = key.asymmetricKeyType;
  const curve = t === 'ec' ? (key.export({ format: 'jwk' }) as JsonWebKey).crv : undefined;
  try {
    if (alg === 'ES256') return t === 'ec' && curve === 'P-256' && sig.length === 64 && verify('sha256', input, { key, dsaEncoding: 'ieee-p1363' }, sig);
    if (alg === 'ES384') return t === 'ec' && curve === 'P-384' && sig.length === 96 && verify('sha384', input, { key, dsaEncoding: 'ieee-p1363' }, sig);
    if (alg === 'RS256') return t === 'rsa' && verify('sha256', input, key, sig);
    if (alg === 'EdDSA') return t === 'ed25519' && verify(null, input, key, sig);
  } catch {
    return false;
  }
  return false;
}

function check(input: JwsInput): void {
  const parsed = outcome('parseJws', () => parseJws(input.body));
  if (parsed.ok && parsed.value.header.jwk !== undefined) {
    const key = outcome('importJwk', () => importJwk(parsed.value.header.jwk));
    if (key.ok) {
      const again = outcome('importJwk(publicJwk(key))', () => importJwk(publicJwk(key.value)));
      assertThat(
        again.ok && thumbprint(again.value) === thumbprint(key.value),
        'an imported account key does not survive publicJwk → importJwk with the same thumbprint',
      );
      const v = outcome('verifyJws', () => verifyJws(parsed.value, key.value));
      const expected = expectedVerdict(parsed.value.header.alg, key.value, parsed.value.signingInput, parsed.value.signature);
      assertThat(
        v.ok === expected,
        `verifyJws ${v.ok ? 'accepted' : `refused (${v.ok ? '' : v.error.detail})`} a JWS that an independent check ${expected ? 'accepts' : 'refuses'} (alg ${String(parsed.value.header.alg).slice(0, 20)}, ${key.value.asymmetricKeyType} key)`,
      );
      if (input.eab) {
        const { jws, macKeyHex, kid, url } = input.eab;
        const mac = Buffer.from(macKeyHex, 'hex');
        const r = outcome('verifyEab', () => verifyEab(jws, parsed.value.header.jwk!, url, (k) => (k === kid ? mac : null)));
        if (r.ok) {
          const e = parseJws(jws);
          const right = createHmac('sha256', mac).update(e.signingInput).digest();
          assertThat(
            e.header.alg === 'HS256' && e.header.url === url && e.header.kid === kid && right.equals(e.signature),
            'verifyEab accepted an EAB whose alg, url, kid or MAC is wrong',
          );
          assertThat(thumbprint(importJwk(JSON.parse(e.payloadText))) === thumbprint(key.value), 'verifyEab accepted an EAB over another key');
        }
      }
    }
  } else if (parsed.ok && input.eab) {
    outcome('verifyEab', () => verifyEab(input.eab!.jws, (parsed.value.header as { jwk?: JsonWebKey }).jwk ?? {}, input.eab!.url, () => null));
  }
}

// ---------------------------------------------------------------------------------------------

const json: fc.Arbitrary<unknown> = fc.jsonValue({ maxDepth: 3 });
const b64uString = fc.oneof(
  fc.stringOf(fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'), { maxLength: 90 }),
  fc.constantFrom('', 'AA', 'AAA=', 'A+/=', '%%', '.'),
);
const ALGS = ['ES256', 'ES384', 'RS256', 'EdDSA', 'none', 'HS256', 'ES512', 'RS1', 'PS256', '', 'es256'];

/** A JWK, real or broken one field at a time. */
function brokenJwk(k: KeyKind, how: number, s: string, j: unknown): unknown {
  const jwk: Record<string, unknown> = { ...keyset()[k].jwk };
  switch (how) {
    case 0:
    case 1:
    case 2:
    case 3:
      return jwk;
    case 4:
      jwk.x = s;
      return jwk;
    case 5:
      jwk.y = s;
      return jwk;
    case 6:
      jwk.crv = ['P-256', 'P-384', 'P-521', 'secp256k1', 'Ed25519', 'X25519', 'Ed448', 'P-192', ''][s.length % 9];
      return jwk;
    case 7:
      jwk.n = s;
      jwk.e = ['AQAB', 'AQ', 'Aw', 'AA', ''][s.length % 5];
      jwk.kty = 'RSA';
      return jwk;
    case 8:
      jwk.d = s || 'AA';
      return jwk;
    case 9:
      return { kty: 'oct', k: s };
    case 10:
      jwk.kty = j;
      return jwk;
    case 11:
      return { ...jwk, [String(s).slice(0, 4) || 'kid']: j };
    default:
      return j;
  }
}
const NATIVE_ALG: Partial<Record<KeyKind, string>> = {
  ES256: 'ES256',
  ES384: 'ES384',
  RS256: 'RS256',
  EdDSA: 'EdDSA',
  'P-521': 'ES512',
  'RSA-1024': 'RS256',
  secp256k1: 'ES256K',
  Ed448: 'EdDSA',
};

const often0 = (max: number) => fc.oneof({ weight: 2, arbitrary: fc.constant(0) }, { weight: 3, arbitrary: fc.nat({ max }) });
const jwsArb: fc.Arbitrary<JwsInput> = fc
  .tuple(
    fc.constantFrom(...KINDS),
    fc.constantFrom(...KINDS),
    fc.option(fc.constantFrom(...ALGS), { freq: 2 }),
    often0(12),
    fc.oneof(json, fc.constant('')),
    often0(14),
    b64uString,
    json,
    fc.boolean(),
    fc.boolean(),
  )
  .map(([signer, other, algChoice, jwkHow, payload, how, s, j, withEab, sameKey]) => {
    const alg = algChoice ?? NATIVE_ALG[signer] ?? 'ES256';
    const jwk = brokenJwk(sameKey ? signer : other, jwkHow, s, j);
    const header: Record<string, unknown> = { alg, nonce: 'bm9uY2U', url: 'https://127.0.0.1/acme/new-account', jwk };
    if (how === 1) header.kid = 'https://127.0.0.1/acme/acct/1';
    if (how === 2) delete header.alg;
    if (how === 3) header.alg = j;
    const protectedB64 = how === 4 ? s : how === 5 ? b64u(JSON.stringify(j)) : b64u(JSON.stringify(header));
    const payloadB64 = payload === '' ? '' : b64u(JSON.stringify(payload));
    const key = keyset()[signer].privateKey;
    let signature = b64u(signAs(alg, key, Buffer.from(`${protectedB64}.${payloadB64}`)));
    if (how === 6) signature = s;
    if (how === 7) signature = b64u(Buffer.concat([Buffer.from(signature, 'base64url'), Buffer.from([0])]));
    if (how === 8) signature = signature.slice(0, -2) + (signature.endsWith('AA') ? 'AB' : 'AA');
    let body: unknown = { protected: protectedB64, payload: payloadB64, signature };
    if (how === 9) body = { ...(body as object), signatures: [] };
    if (how === 10) body = { ...(body as object), header: { alg } };
    if (how === 11) body = { ...(body as object), payload: j };
    if (how === 12) body = j;
    if (how === 13) body = [body];
    let eab: JwsInput['eab'];
    if (withEab) {
      const mac = Buffer.from('0123456789abcdef0123456789abcdef');
      const eh = { alg: how === 14 ? 'HS512' : 'HS256', kid: 'kid-1', url: 'https://127.0.0.1/acme/new-account', ...(how === 3 ? { nonce: 'x' } : {}) };
      const p = b64u(JSON.stringify(eh));
      const pl = b64u(JSON.stringify(how === 5 ? keyset().ES384.jwk : jwk));
      const macB = createHmac('sha256', how === 6 ? Buffer.from('wrong') : mac)
        .update(`${p}.${pl}`)
        .digest();
      eab = {
        jws: how === 12 ? j : { protected: p, payload: pl, signature: b64u(macB) },
        macKeyHex: mac.toString('hex'),
        kid: 'kid-1',
        url: 'https://127.0.0.1/acme/new-account',
      };
    }
    return eab ? { body, eab } : { body };
  });

export const target: Target<JwsInput> = {
  name: 'jws',
  about:
    'parseJws / importJwk / verifyJws / verifyEab (src/acme/jws.ts): 4xx or a result; verification agrees with an independent check; EAB MAC, alg, url and key enforced',
  codec: jsonCodec<JwsInput>(),
  setup() {
    keyset();
  },
  seeds() {
    const k = keyset();
    const good = (kind: KeyKind, alg: string): JwsInput => {
      const p = b64u(JSON.stringify({ alg, nonce: 'n', url: 'https://127.0.0.1/acme/new-account', jwk: k[kind].jwk }));
      const pl = b64u(JSON.stringify({ termsOfServiceAgreed: true }));
      return { body: { protected: p, payload: pl, signature: b64u(signAs(alg, k[kind].privateKey, Buffer.from(`${p}.${pl}`))) } };
    };
    return [
      { name: 'generated/ES256', input: good('ES256', 'ES256') },
      { name: 'generated/ES384', input: good('ES384', 'ES384') },
      { name: 'generated/RS256', input: good('RS256', 'RS256') },
      { name: 'generated/EdDSA', input: good('EdDSA', 'EdDSA') },
      { name: 'generated/ES256 alg with a P-384 key', input: good('ES384', 'ES256') },
      { name: 'generated/alg none', input: good('ES256', 'none') },
      { name: 'generated/RSA-1024 key', input: good('RSA-1024', 'RS256') },
      { name: 'generated/P-521 key', input: good('P-521', 'ES512') },
      { name: 'inline/not an object', input: { body: 'x' } },
      { name: 'inline/null', input: { body: null } },
      {
        name: 'inline/jwk with d',
        input: { body: { protected: b64u(JSON.stringify({ alg: 'ES256', jwk: { ...k.ES256.jwk, d: 'AA' } })), payload: '', signature: '' } },
      },
      {
        name: 'inline/EC point (0,0)',
        input: {
          body: {
            protected: b64u(JSON.stringify({ alg: 'ES256', jwk: { kty: 'EC', crv: 'P-256', x: b64u(Buffer.alloc(32)), y: b64u(Buffer.alloc(32)) } })),
            payload: '',
            signature: '',
          },
        },
      },
      {
        name: 'inline/deeply nested header',
        input: { body: { protected: b64u('{"alg":"ES256","x":' + '['.repeat(5000) + ']'.repeat(5000) + '}'), payload: '', signature: '' } },
      },
      ...corpusSeeds('jws', jsonCodec<JwsInput>()),
    ];
  },
  arbitrary: () => jwsArb,
  check,
};
