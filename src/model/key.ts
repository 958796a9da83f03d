/** KeyRecord.kekId of a CA key kept in a PKCS#11 token: its id is the pkcs11: URI, nothing is sealed. */
export const PKCS11_KEK_ID = 'pkcs11';

/** A CA private key as the key store keeps it: PKCS#8 DER sealed under the KEK (never in clear). */
export interface SealedKeyRecord {
  id: string;
  algorithm: string;
  /** Which key-encryption key sealed it (see keystore/kek.ts). */
  kekId: string;
  /** nonce(12) || ciphertext || tag(16). */
  sealed: Uint8Array;
  publicKeyDer: Uint8Array;
}
