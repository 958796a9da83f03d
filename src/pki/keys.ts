/**
 * Key algorithms Signet knows, key generation, and signing with node:crypto KeyObjects.
 * Pure: no I/O beyond the CSPRNG inside node:crypto.
 *
 * node:crypto must never inspect a key Signet has not checked itself: asking it for the details
 * of a key such as an EC point at infinity aborts the whole process (an assertion in node's
 * C++, not an exception). So describeKey and signerFor take only a TrustedKey: one Signet
 * generated or unsealed from its own store (ownKey), or one that passed public-key.ts or
 * private-key.ts. The type makes the other kind a compile error.
 */
import { createPublicKey, generateKeyPair as generateKeyPairCb, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { AlgorithmIdentifier } from '@peculiar/asn1-x509';
import { SignetError } from '../errors.js';
import { isPqSignature, PQ_ACCEPTED, PQ_BY_NAME, PQ_SIGNATURE_NAMES, strengthBits, type PqFamily } from './post-quantum.js';

/** Signing key algorithms: what a CA, a responder or a server-generated key may be. */
export const KEY_ALGORITHMS = ['ecdsa-p256', 'ecdsa-p384', 'ecdsa-p521', 'rsa-2048', 'rsa-3072', 'rsa-4096', 'ed25519', ...PQ_SIGNATURE_NAMES] as const;
export type KeyAlgorithm = (typeof KEY_ALGORITHMS)[number];
/**
 * What `signet issue --generate-key` may make: the signing algorithms and ML-KEM-768, which only
 * key-group members hold (it cannot sign, so it is never a CA's or a responder's key: those take
 * KEY_ALGORITHMS, which does not name it).
 */
export const GENERATED_KEY_ALGORITHMS = [...KEY_ALGORITHMS, 'ml-kem-768'] as const;
export type GeneratedKeyAlgorithm = (typeof GENERATED_KEY_ALGORITHMS)[number];

declare const trusted: unique symbol;
/** A KeyObject Signet made or checked itself; see the module comment. */
export type TrustedKey = KeyObject & { readonly [trusted]: true };

/**
 * Marks a key Signet generated, or unsealed from its own key store, as trusted. Never for a key
 * from outside (CSR, JWK, imported CA, key file): those go through public-key.ts (importSpki,
 * importPublicJwk) or private-key.ts (checkPrivateKey).
 */
export const ownKey = (key: KeyObject): TrustedKey => key as TrustedKey;

export const OID = {
  ecPublicKey: '1.2.840.10045.2.1',
  rsaEncryption: '1.2.840.113549.1.1.1',
  ed25519: '1.3.101.112',
  ed448: '1.3.101.113',
  dsa: '1.2.840.10040.4.1',
  p256: '1.2.840.10045.3.1.7',
  p384: '1.3.132.0.34',
  p521: '1.3.132.0.35',
  ecdsaSha256: '1.2.840.10045.4.3.2',
  ecdsaSha384: '1.2.840.10045.4.3.3',
  ecdsaSha512: '1.2.840.10045.4.3.4',
  sha256WithRSA: '1.2.840.113549.1.1.11',
  sha384WithRSA: '1.2.840.113549.1.1.12',
  sha512WithRSA: '1.2.840.113549.1.1.13',
  sha1: '1.3.14.3.2.26',
  sha256: '2.16.840.1.101.3.4.2.1',
} as const;

const DER_NULL = new Uint8Array([0x05, 0x00]).buffer;

export function generateKey(alg: GeneratedKeyAlgorithm): { privateKey: TrustedKey; publicKey: TrustedKey } {
  const { privateKey, publicKey } = generateKeyPair(alg);
  return { privateKey: ownKey(privateKey), publicKey: ownKey(publicKey) };
}

/**
 * generateKey on the thread pool: what a server uses, since an RSA-4096 key takes seconds of
 * CPU that would otherwise stall every request of the process (OCSP, health checks) meanwhile.
 */
export async function generateKeyOffThread(alg: KeyAlgorithm): Promise<{ privateKey: TrustedKey; publicKey: TrustedKey }> {
  const [type, options] = KEY_PARAMETERS[alg];
  const { privateKey, publicKey } = await generateKeyPairAsync(type, options);
  return { privateKey: ownKey(privateKey), publicKey: ownKey(publicKey) };
}

// node's typings overload generateKeyPair per key type; the table below pairs them correctly.
const generateKeyPairAsync = promisify(generateKeyPairCb) as unknown as (
  type: string,
  options: object | undefined,
) => Promise<{ publicKey: KeyObject; privateKey: KeyObject }>;
const KEY_PARAMETERS: Record<KeyAlgorithm, [string, object | undefined]> = {
  'ecdsa-p256': ['ec', { namedCurve: 'P-256' }],
  'ecdsa-p384': ['ec', { namedCurve: 'P-384' }],
  'ecdsa-p521': ['ec', { namedCurve: 'P-521' }],
  'rsa-2048': ['rsa', { modulusLength: 2048 }],
  'rsa-3072': ['rsa', { modulusLength: 3072 }],
  'rsa-4096': ['rsa', { modulusLength: 4096 }],
  ed25519: ['ed25519', undefined],
  'ml-dsa-44': ['ml-dsa-44', undefined],
  'ml-dsa-65': ['ml-dsa-65', undefined],
  'ml-dsa-87': ['ml-dsa-87', undefined],
  'slh-dsa-sha2-128s': ['slh-dsa-sha2-128s', undefined],
};

function generateKeyPair(alg: GeneratedKeyAlgorithm): { privateKey: KeyObject; publicKey: KeyObject } {
  switch (alg) {
    case 'ecdsa-p256':
      return generateKeyPairSync('ec', { namedCurve: 'P-256' });
    case 'ecdsa-p384':
      return generateKeyPairSync('ec', { namedCurve: 'P-384' });
    case 'ecdsa-p521':
      return generateKeyPairSync('ec', { namedCurve: 'P-521' });
    case 'rsa-2048':
      return generateKeyPairSync('rsa', { modulusLength: 2048 });
    case 'rsa-3072':
      return generateKeyPairSync('rsa', { modulusLength: 3072 });
    case 'rsa-4096':
      return generateKeyPairSync('rsa', { modulusLength: 4096 });
    case 'ed25519':
      return generateKeyPairSync('ed25519');
    default:
      // The post-quantum types: node's typings do not name them yet, its OpenSSL 3.5 does.
      return (generateKeyPairSync as unknown as (t: string) => { privateKey: KeyObject; publicKey: KeyObject })(alg);
  }
}

/** Describes a public or private key in Signet's vocabulary, e.g. `ecdsa-p256`, `rsa-3072`. */
export function describeKey(key: TrustedKey): { family: 'ecdsa' | 'rsa' | 'ed25519' | PqFamily; bits: number; name: string } {
  const d = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'ec': {
      const curve = d.namedCurve;
      const map: Record<string, [number, string]> = {
        prime256v1: [256, 'ecdsa-p256'],
        secp384r1: [384, 'ecdsa-p384'],
        secp521r1: [521, 'ecdsa-p521'],
      };
      const hit = curve ? map[curve] : undefined;
      if (!hit) throw new SignetError('bad-key', `ECDSA curve ${curve ?? 'unknown'} is not supported; use P-256, P-384 or P-521`);
      return { family: 'ecdsa', bits: hit[0], name: hit[1] };
    }
    case 'rsa': {
      const bits = d.modulusLength ?? 0;
      return { family: 'rsa', bits, name: `rsa-${bits}` };
    }
    case 'ed25519':
      return { family: 'ed25519', bits: 256, name: 'ed25519' };
    default: {
      const pq = PQ_BY_NAME.get(key.asymmetricKeyType ?? '');
      if (pq && PQ_ACCEPTED.has(pq.name)) return { family: pq.family, bits: strengthBits(pq), name: pq.name };
      throw new SignetError(
        'bad-key',
        `key type ${key.asymmetricKeyType ?? 'unknown'} is not supported; use RSA, ECDSA P-256/P-384/P-521, Ed25519, ML-DSA-44/65/87, SLH-DSA-SHA2-128s or (key groups) ML-KEM-768`,
      );
    }
  }
}

/**
 * A signer bound to one private key: the signature AlgorithmIdentifier, its public key and a
 * sign function. Asynchronous because a key in an HSM or a remote KMS answers later; every
 * signature Signet makes (certificates, CRLs, OCSP responses, its own CSRs) goes through it.
 */
export interface Signer {
  readonly algorithm: AlgorithmIdentifier;
  readonly publicKey: KeyObject;
  /** The signature over `data` (DER for ECDSA). Rejects, never throws. */
  sign(data: Uint8Array): Promise<Uint8Array | Buffer>;
}

export function signerFor(privateKey: TrustedKey): Signer {
  const publicKey = createPublicKey(privateKey);
  const k = describeKey(privateKey);
  let hash: string | null;
  let algorithm: AlgorithmIdentifier;
  if (k.family === 'ecdsa') {
    const [h, oid] = k.bits === 256 ? ['sha256', OID.ecdsaSha256] : k.bits === 384 ? ['sha384', OID.ecdsaSha384] : ['sha512', OID.ecdsaSha512];
    hash = h;
    algorithm = new AlgorithmIdentifier({ algorithm: oid });
  } else if (k.family === 'rsa') {
    hash = 'sha256';
    algorithm = new AlgorithmIdentifier({ algorithm: OID.sha256WithRSA, parameters: DER_NULL });
  } else if (k.family === 'ed25519') {
    hash = null;
    algorithm = new AlgorithmIdentifier({ algorithm: OID.ed25519 });
  } else if (isPqSignature(k.name)) {
    // Pure ML-DSA / SLH-DSA with the empty context: the OID alone, parameters absent (RFC 9881 §2).
    hash = null;
    algorithm = new AlgorithmIdentifier({ algorithm: PQ_BY_NAME.get(k.name)!.oid });
  } else {
    throw new SignetError('bad-key', `a ${k.name} key cannot sign; it is a key-encapsulation key`);
  }
  const opts = k.family === 'ecdsa' ? { key: privateKey, dsaEncoding: 'der' as const } : privateKey;
  return {
    algorithm,
    publicKey,
    // Signs on the calling thread and resolves at once: the hot paths (issuance inside its group
    // commit, OCSP on a cache miss) pay one microtask, not a thread-pool hop. `async` turns a
    // node:crypto exception into a rejection, as a remote signer would report it. SLH-DSA is the
    // exception: one SLH-DSA-SHA2-128s signature is ~0.5 s of CPU, which on the calling thread
    // would stall every request of the process, so it goes to libuv's pool.
    sign: k.family === 'slh-dsa' ? (data) => signOnPool(data, privateKey) : async (data) => sign(hash, data, opts),
  };
}

const signOnPool = (data: Uint8Array, key: KeyObject): Promise<Buffer> =>
  new Promise((resolve, reject) => sign(null, data, key, (err, sig) => (err ? reject(err) : resolve(sig))));

/**
 * The signature algorithms Signet accepts, by OID: the name to show, the digest, and the one node
 * key type (asymmetricKeyType) each belongs to; for ML-DSA and SLH-DSA the OID names the
 * parameter set, so the key type is the algorithm itself. csr.ts reads the same table.
 */
export const SIGNATURE_ALGORITHMS: Readonly<Record<string, { name: string; hash: string | null; keyType: string }>> = {
  [OID.ecdsaSha256]: { name: 'ecdsa-with-SHA256', hash: 'sha256', keyType: 'ec' },
  [OID.ecdsaSha384]: { name: 'ecdsa-with-SHA384', hash: 'sha384', keyType: 'ec' },
  [OID.ecdsaSha512]: { name: 'ecdsa-with-SHA512', hash: 'sha512', keyType: 'ec' },
  [OID.sha256WithRSA]: { name: 'sha256WithRSAEncryption', hash: 'sha256', keyType: 'rsa' },
  [OID.sha384WithRSA]: { name: 'sha384WithRSAEncryption', hash: 'sha384', keyType: 'rsa' },
  [OID.sha512WithRSA]: { name: 'sha512WithRSAEncryption', hash: 'sha512', keyType: 'rsa' },
  [OID.ed25519]: { name: 'Ed25519', hash: null, keyType: 'ed25519' },
  ...Object.fromEntries(PQ_SIGNATURE_NAMES.map((n) => [PQ_BY_NAME.get(n)!.oid, { name: PQ_BY_NAME.get(n)!.label, hash: null, keyType: n }])),
};

/**
 * Verifies a signature made with one of the algorithms Signet accepts. The algorithm must be
 * the key's: node would otherwise verify a pure ML-DSA signature labelled Ed25519 (both take no
 * digest), so a label that names another kind of key verifies nothing.
 */
export function verifySignature(algorithmOid: string, publicKey: TrustedKey, data: Uint8Array, signature: Uint8Array): boolean {
  const alg = SIGNATURE_ALGORITHMS[algorithmOid];
  if (!alg) {
    throw new SignetError(
      'bad-csr',
      `signature algorithm ${algorithmOid} is not supported; use ECDSA with SHA-2, RSA PKCS#1 v1.5 with SHA-2, Ed25519, ML-DSA or SLH-DSA-SHA2-128s`,
    );
  }
  // For ML-DSA the OID also names the parameter set: another level's label is no signature.
  if (publicKey.asymmetricKeyType !== alg.keyType) return false;
  try {
    const key = alg.keyType === 'ec' ? { key: publicKey, dsaEncoding: 'der' as const } : publicKey;
    return verify(alg.hash, data, key, signature);
  } catch {
    return false;
  }
}
