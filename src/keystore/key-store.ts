/**
 * Where CA private keys live. The software implementation seals keys with AES-256-GCM in the
 * database; a PKCS#11 implementation would return signers backed by the HSM. Callers only ever
 * get a Signer, never key bytes, except through the explicit offline-export path.
 */
import type { KeyObject } from 'node:crypto';
import type { KeyAlgorithm, Signer, TrustedKey } from '../pki/keys.js';
import type { Tx } from '../storage/database.js';

/** A key just placed in the store, with a signer usable before its transaction commits. */
export interface StoredKey {
  id: string;
  publicKey: KeyObject;
  signer: Signer;
}

export interface KeyStore {
  /** Generates a new key pair inside the store (in tx when given, so it commits with its CA). */
  generate(algorithm: KeyAlgorithm, tx?: Tx): Promise<StoredKey>;
  /** Seals an existing private key (CA import), once private-key.ts has checked it against its certificate. */
  importKey(privateKey: TrustedKey, tx?: Tx): Promise<StoredKey>;
  /** A signer for the key; cached after the first unseal. */
  signer(id: string): Promise<Signer>;
  /** Removes a key from the online store (offline root). */
  remove(id: string, tx?: Tx): Promise<void>;
  /** Exports the private key as passphrase-encrypted PKCS#8 PEM (offline root). */
  exportEncrypted(id: string, passphrase: string): Promise<string>;
  /** Seals a small secret (e.g. an ACME EAB HMAC key) under the KEK, bound to `id`. */
  sealSecret(id: string, secret: Buffer): { sealed: Buffer; kekId: string };
  /** Opens a secret sealed by sealSecret; null if it does not unseal. */
  unsealSecret(id: string, sealed: Uint8Array): Buffer | null;
  /**
   * A 32-byte secret derived from the key-encryption key for one purpose (HKDF-SHA256, the label
   * as info): the audit chain's MAC key, the ACME nonce key. Same KEK and label, same secret, in
   * every process and replica; a different label gives an unrelated secret.
   */
  deriveSecret(label: string): Buffer;
  /** Checks that every stored key unseals under the current KEK. */
  verifyAll(): Promise<number>;
}
