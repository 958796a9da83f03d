/**
 * Where CA private keys live. The software implementation seals keys with AES-256-GCM in the
 * database; the PKCS#11 one (pkcs11-key-store.ts) returns signers backed by an HSM. Callers only ever
 * get a Signer, never key bytes, except through the explicit offline-export path.
 */
import type { KeyObject } from 'node:crypto';
import type { RsaPadding } from '../pki/cms-enveloped.js';
import type { KeyAlgorithm, Signer, TrustedKey } from '../pki/keys.js';
import type { Tx } from '../storage/database.js';

/** A key id that is an RFC 7512 pkcs11: URI: the key is in a PKCS#11 token (pkcs11-key-store.ts). */
export const isPkcs11Uri = (id: string): boolean => id.startsWith('pkcs11:');

/** For audit details: `{ keyUri }` when the key is in a PKCS#11 token (its RFC 7512 URI, never the PIN), else nothing. */
export const keyUriDetail = (keyId: string | null | undefined): { keyUri?: string } => (keyId && isPkcs11Uri(keyId) ? { keyUri: keyId } : {});

/** A key just placed in the store, with a signer usable before its transaction commits. */
export interface StoredKey {
  id: string;
  publicKey: KeyObject;
  signer: Signer;
}

/**
 * What a new key is for: a CA key ('ca') goes into the store's strongest place (the token, with
 * SIGNET_KEY_STORE=pkcs11); a delegated OCSP responder key ('responder') is short-lived and
 * signs every OCSP response, and always stays a sealed software key. The SCEP RA key ('ra', RSA)
 * signs CertRep replies and decrypts request envelopes: in the token with SIGNET_KEY_STORE=pkcs11
 * (the one key object there allowed CKA_DECRYPT), sealed otherwise.
 */
export type KeyPurpose = 'ca' | 'responder' | 'ra';

export interface KeyStore {
  /** Generates a new key pair inside the store (in tx when given, so it commits with its CA). */
  generate(algorithm: KeyAlgorithm, tx?: Tx, purpose?: KeyPurpose): Promise<StoredKey>;
  /** Seals an existing private key (CA import), once private-key.ts has checked it against its certificate. */
  importKey(privateKey: TrustedKey, tx?: Tx): Promise<StoredKey>;
  /** A signer for the key; cached after the first unseal. */
  signer(id: string): Promise<Signer>;
  /**
   * RSA decryption with a stored RSA key (the SCEP RA's: a request envelope's content-encryption
   * key), PKCS#1 v1.5 or RSAES-OAEP; the private key never leaves the store. With PKCS#1 v1.5 a
   * wrong ciphertext may yield random bytes instead of an error (implicit rejection): callers
   * check what they get. Rejects for a key that is not RSA or cannot decrypt.
   */
  decrypt(id: string, ciphertext: Uint8Array, padding: RsaPadding): Promise<Buffer>;
  /** Removes a key from the online store (offline root, a key moved into a token). */
  remove(id: string, tx?: Tx): Promise<void>;
  /**
   * After the transactions that removed keys committed: overwrites what the database files still
   * hold of them (deleted rows, log frames). Returns what it could not do, or null.
   */
  scrubRemoved(): Promise<string | null>;
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
  /** Checks that every stored key unseals under the current KEK (and, in a token, is there). */
  verifyAll(): Promise<number>;
  /** /readyz: the token's login state ('logged in', or why not); absent for the sealed store. */
  health?(keyIds: string[]): Promise<string>;
}
