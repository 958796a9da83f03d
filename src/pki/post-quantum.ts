/**
 * The post-quantum key algorithms Signet knows: ML-DSA (FIPS 204) and SLH-DSA (FIPS 205)
 * signature keys in pure mode, and ML-KEM (FIPS 203) encapsulation keys. Pure: a table.
 *
 * All of them share one shape, which is why one table serves: the AlgorithmIdentifier is the
 * bare OID with the parameters absent (RFC 9881 §2 for ML-DSA, RFC 9909 for SLH-DSA, RFC 9935
 * for ML-KEM), the subjectPublicKey BIT STRING is the raw public key of a fixed length per
 * parameter set, and node (OpenSSL 3.5) imports it as an "AKP" JWK. The same OID names the key
 * and, for the signature schemes, the signature algorithm, so a signature's OID must be the
 * key's exactly (an ML-DSA-44 signature label on an ML-DSA-65 key is refused, not tolerated).
 */

export type PqFamily = 'ml-dsa' | 'slh-dsa' | 'ml-kem';

export interface PqAlgorithm {
  /** Signet's name, also node's asymmetricKeyType and generateKeyPair type. */
  name: PqName;
  family: PqFamily;
  oid: string;
  /** The FIPS name, as in JWK "alg" and in messages. */
  label: string;
  /** Exact length of the raw public key (the subjectPublicKey BIT STRING's content). */
  publicKeyBytes: number;
  /** NIST security category (1, 3, 5): what `bits` means for these keys. */
  category: 1 | 3 | 5;
}

export const PQ_SIGNATURE_NAMES = ['ml-dsa-44', 'ml-dsa-65', 'ml-dsa-87', 'slh-dsa-sha2-128s'] as const;
export const PQ_KEM_NAMES = ['ml-kem-768'] as const;
export type PqSignatureName = (typeof PQ_SIGNATURE_NAMES)[number];
export type PqKemName = (typeof PQ_KEM_NAMES)[number];
export type PqName = PqSignatureName | PqKemName | 'ml-kem-512' | 'ml-kem-1024';

const table: PqAlgorithm[] = [
  { name: 'ml-dsa-44', family: 'ml-dsa', oid: '2.16.840.1.101.3.4.3.17', label: 'ML-DSA-44', publicKeyBytes: 1312, category: 1 },
  { name: 'ml-dsa-65', family: 'ml-dsa', oid: '2.16.840.1.101.3.4.3.18', label: 'ML-DSA-65', publicKeyBytes: 1952, category: 3 },
  { name: 'ml-dsa-87', family: 'ml-dsa', oid: '2.16.840.1.101.3.4.3.19', label: 'ML-DSA-87', publicKeyBytes: 2592, category: 5 },
  { name: 'slh-dsa-sha2-128s', family: 'slh-dsa', oid: '2.16.840.1.101.3.4.3.20', label: 'SLH-DSA-SHA2-128s', publicKeyBytes: 32, category: 1 },
  // ML-KEM-512 and -1024 are known so a refusal can name them; only ML-KEM-768 is accepted.
  { name: 'ml-kem-512', family: 'ml-kem', oid: '2.16.840.1.101.3.4.4.1', label: 'ML-KEM-512', publicKeyBytes: 800, category: 1 },
  { name: 'ml-kem-768', family: 'ml-kem', oid: '2.16.840.1.101.3.4.4.2', label: 'ML-KEM-768', publicKeyBytes: 1184, category: 3 },
  { name: 'ml-kem-1024', family: 'ml-kem', oid: '2.16.840.1.101.3.4.4.3', label: 'ML-KEM-1024', publicKeyBytes: 1568, category: 5 },
];

export const PQ_BY_OID: ReadonlyMap<string, PqAlgorithm> = new Map(table.map((a) => [a.oid, a]));
export const PQ_BY_NAME: ReadonlyMap<string, PqAlgorithm> = new Map(table.map((a) => [a.name, a]));

/** The algorithms Signet accepts (the rest of the table is there to name what it refuses). */
export const PQ_ACCEPTED: ReadonlySet<string> = new Set<string>([...PQ_SIGNATURE_NAMES, ...PQ_KEM_NAMES]);

export const isPqSignature = (name: string): name is PqSignatureName => (PQ_SIGNATURE_NAMES as readonly string[]).includes(name);

/** Whether `name` is an SLH-DSA parameter set (slow to sign: roots only, off the event loop). */
export const isSlhDsa = (name: string): boolean => PQ_BY_NAME.get(name)?.family === 'slh-dsa';

/** A key's `bits` in Signet's vocabulary: the security strength of its NIST category (128, 192, 256). */
export const strengthBits = (a: PqAlgorithm): number => ({ 1: 128, 3: 192, 5: 256 })[a.category];
