/**
 * Which keyUsage bits a key of each family can honour, for issuance (ca/issuance.ts refuses a
 * profile asking for more) and for lint (the certificate as encoded). Pure.
 *
 * Post-quantum rules: an ML-DSA or SLH-DSA key signs, so digitalSignature, nonRepudiation and,
 * on a CA, keyCertSign and cRLSign; never keyEncipherment, dataEncipherment or keyAgreement
 * (RFC 9881 §5, RFC 9909 §6). An ML-KEM key only encapsulates: keyEncipherment alone (RFC 9935 §5).
 * The classical families keep the rule Signet always had: keyEncipherment for RSA keys only.
 */
import { KeyUsageFlags } from '@peculiar/asn1-x509';
import type { KeyUsageName } from './extensions.js';
import type { KeyFamily } from './public-key.js';

const SIGNING: readonly KeyUsageName[] = ['digitalSignature', 'nonRepudiation', 'keyCertSign', 'cRLSign'];
const ALL: readonly KeyUsageName[] = ['digitalSignature', 'nonRepudiation', 'keyEncipherment', 'dataEncipherment', 'keyAgreement', 'keyCertSign', 'cRLSign'];
const CAN_DO: Record<KeyFamily, readonly KeyUsageName[]> = {
  rsa: ALL,
  ecdsa: ALL.filter((u) => u !== 'keyEncipherment'),
  ed25519: ALL.filter((u) => u !== 'keyEncipherment'),
  'ml-dsa': SIGNING,
  'slh-dsa': SIGNING,
  'ml-kem': ['keyEncipherment'],
};

/** The usages of `usages` a key of `family` cannot honour. */
export const usagesBeyondKey = (family: KeyFamily, usages: readonly KeyUsageName[]): KeyUsageName[] => usages.filter((u) => !CAN_DO[family].includes(u));

/** A leaf's keyUsage when the profile names none: what TLS needs of the key. */
export function defaultKeyUsage(family: KeyFamily): KeyUsageName[] {
  if (family === 'rsa') return ['digitalSignature', 'keyEncipherment']; // TLS 1.2 RSA key exchange
  if (family === 'ml-kem') return ['keyEncipherment'];
  return ['digitalSignature'];
}

/** The names of the keyUsage bits set in `flags` that a key of `family` cannot honour. */
export function flagsBeyondKey(family: KeyFamily, flags: number): KeyUsageName[] {
  return ALL.filter((u) => flags & KeyUsageFlags[u] && !CAN_DO[family].includes(u));
}
