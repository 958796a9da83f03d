/**
 * Which keys a CA lets a subordinate CA have: the one rule rotation and root rollover apply to
 * the key of the CA they create (a CA relying parties already trust must not be replaced by a
 * weaker or less widely verifiable one).
 *
 * - Security strength (NIST SP 800-57 Part 1, Table 2) no lower than the parent's, capped at
 *   128 bits: under a P-384 root a P-256, RSA-3072 or stronger intermediate, but not RSA-2048
 *   (112 bits), which only an RSA-2048 parent accepts.
 * - Ed25519 only under an Ed25519 parent: strict verifiers that lack it (NSS, Windows CryptoAPI,
 *   Java before 15) would fail every chain through it, so it is an all-Ed25519 hierarchy's choice.
 * - Post-quantum (ML-DSA, SLH-DSA) and classical keys do not mix: a post-quantum intermediate
 *   under a classical root is no safer than the root, and a classical one under a post-quantum
 *   root throws away what the root bought. The two hierarchies stand side by side instead.
 */
import type { KeyAlgorithm } from '../pki/keys.js';
import { isPqSignature, isSlhDsa } from '../pki/post-quantum.js';

const STRENGTH: Record<KeyAlgorithm, number> = {
  'rsa-2048': 112,
  'rsa-3072': 128,
  'rsa-4096': 152,
  'ecdsa-p256': 128,
  'ecdsa-p384': 192,
  'ecdsa-p521': 256,
  ed25519: 128,
  'ml-dsa-44': 128,
  'ml-dsa-65': 192,
  'ml-dsa-87': 256,
  'slh-dsa-sha2-128s': 128,
};

const strengthOf = (alg: string): number | undefined => STRENGTH[alg as KeyAlgorithm];

/** Why a CA with key `parentAlg` refuses a subordinate CA key `childAlg`, or null. */
export function subordinateKeyProblem(parentAlg: string, childAlg: KeyAlgorithm, role: { root?: boolean } = {}): string | null {
  const parent = strengthOf(parentAlg);
  const child = STRENGTH[childAlg];
  if (childAlg === 'ed25519' && parentAlg !== 'ed25519')
    return `an Ed25519 CA key is allowed only under an Ed25519 parent (this parent's key is ${parentAlg}); NSS, Windows and older Java cannot verify it`;
  const mix = hierarchyMixProblem(parentAlg, childAlg, role);
  if (mix) return mix;
  const floor = Math.min(parent ?? 128, 128);
  if (child < floor)
    return `a ${childAlg} key (${child}-bit security) is weaker than this parent's policy allows (at least ${floor}-bit, as its ${parentAlg} key); use ecdsa-p256, ecdsa-p384 or rsa-3072 or stronger`;
  return null;
}

/**
 * The part of the rule every new CA obeys, created intermediates included (the strength floor
 * and the Ed25519 rule bind only replacements of CAs relying parties already trust).
 */
export function hierarchyMixProblem(parentAlg: string, childAlg: string, role: { root?: boolean } = {}): string | null {
  // SLH-DSA signs in ~0.5 s: fine for a root that signs a few intermediates and a CRL, not for a
  // CA that signs every certificate a client asks for.
  if (!role.root && isSlhDsa(childAlg))
    return `an ${childAlg} key is for roots only (each signature takes about half a second of CPU); give an issuing CA ml-dsa-44, ml-dsa-65 or ml-dsa-87`;
  if (isPqSignature(childAlg) === isPqSignature(parentAlg)) return null;
  return isPqSignature(childAlg)
    ? `a post-quantum CA key (${childAlg}) is allowed only under a post-quantum parent (this parent's key is ${parentAlg}): create an ML-DSA root with \`signet ca create-root --key ml-dsa-87\``
    : `a classical CA key (${childAlg}) is not allowed under a post-quantum parent (${parentAlg}); use ml-dsa-44, ml-dsa-65 or ml-dsa-87`;
}
