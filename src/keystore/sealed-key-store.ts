/**
 * Software key store: PKCS#8 DER sealed with AES-256-GCM under the KEK, in the KeyRecord table.
 * The key id is bound into the GCM additional data, so a sealed blob copied onto another
 * record does not unseal.
 */
import { constants, createCipheriv, createDecipheriv, createPrivateKey, hkdfSync, createPublicKey, privateDecrypt, randomBytes, randomUUID } from 'node:crypto';
import type { RsaPadding } from '../pki/cms-enveloped.js';
import { SignetError } from '../errors.js';
import { describeKey, generateKeyOffThread, ownKey, signerFor, type KeyAlgorithm, type Signer, type TrustedKey } from '../pki/keys.js';
import type { SealedKeyRecord } from '../model/key.js';
import type { Tx } from '../storage/database.js';
import type { Kek } from './kek.js';
import type { KeyPurpose, KeyStore } from './key-store.js';
import { PKCS11_KEK_ID } from '../model/key.js';

const aad = (id: string) => Buffer.from(`signet-key:${id}`);

export function seal(kek: Buffer, id: string, plaintext: Buffer): Buffer {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', kek, nonce);
  cipher.setAAD(aad(id));
  const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([nonce, ct, cipher.getAuthTag()]);
}

export function unseal(kek: Buffer, id: string, sealed: Uint8Array): Buffer {
  const buf = Buffer.from(sealed);
  if (buf.length < 12 + 16 + 1) throw new Error('sealed key is truncated');
  const decipher = createDecipheriv('aes-256-gcm', kek, buf.subarray(0, 12));
  decipher.setAAD(aad(id));
  decipher.setAuthTag(buf.subarray(buf.length - 16));
  return Buffer.concat([decipher.update(buf.subarray(12, buf.length - 16)), decipher.final()]);
}

/** Where the sealed records live (storage/key-record-store.ts): only what this store needs. */
export interface KeyRecords {
  insert(rec: SealedKeyRecord, tx?: Tx): Promise<void>;
  find(id: string): Promise<SealedKeyRecord | null>;
  remove(id: string, tx?: Tx): Promise<void>;
  /** After removals committed: clears what the storage files keep of removed records; returns what it could not, or null. */
  scrub(): Promise<string | null>;
  ids(): Promise<string[]>;
}

export class SealedKeyStore implements KeyStore {
  private readonly cache = new Map<string, Signer>();
  /** RSA keys used by decrypt (the SCEP RA key), unsealed once. */
  private readonly decryptKeys = new Map<string, TrustedKey>();

  constructor(
    private readonly records: KeyRecords,
    private readonly kek: Kek,
  ) {}

  async generate(algorithm: KeyAlgorithm, tx?: Tx, _purpose?: KeyPurpose) {
    const { privateKey } = await generateKeyOffThread(algorithm);
    return this.importKey(privateKey, tx);
  }

  async importKey(privateKey: TrustedKey, tx?: Tx) {
    const algorithm = describeKey(privateKey).name;
    const id = `key-${randomUUID()}`;
    const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
    const publicKey = createPublicKey(privateKey);
    const sealed = seal(this.kek.key, id, pkcs8);
    pkcs8.fill(0);
    await this.records.insert({ id, algorithm, kekId: this.kek.id, sealed, publicKeyDer: publicKey.export({ format: 'der', type: 'spki' }) }, tx);
    const signer = signerFor(privateKey);
    this.cache.set(id, signer);
    return { id, publicKey, signer };
  }

  /** The unsealed key: for signing, the offline export, and `signet ca move-key` into a token. */
  async privateKey(id: string): Promise<TrustedKey> {
    const rec = await this.records.find(id);
    if (!rec) throw new SignetError('key-store', `CA key ${id} is not in the online key store (is it kept offline?)`);
    if (rec.kekId === PKCS11_KEK_ID) {
      throw new SignetError(
        'key-store',
        `CA key ${id} is kept in a PKCS#11 token: start Signet with SIGNET_KEY_STORE=pkcs11 and its SIGNET_PKCS11_MODULE, SIGNET_PKCS11_TOKEN and PIN`,
      );
    }
    if (rec.kekId !== this.kek.id) {
      throw new SignetError(
        'key-store',
        `CA key ${id} was sealed under master key ${rec.kekId}, but the master key in use is ${this.kek.id}: set the SIGNET_MASTER_KEY (or master.key file) that this store was created with`,
      );
    }
    let der: Buffer;
    try {
      der = unseal(this.kek.key, id, rec.sealed);
    } catch {
      throw new SignetError('key-store', `CA key ${id} could not be unsealed: the key store record is corrupted or truncated; restore it from a backup`);
    }
    try {
      // Sealed by this store under the KEK (GCM-authenticated): Signet's own key.
      return ownKey(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }));
    } finally {
      der.fill(0);
    }
  }

  async signer(id: string): Promise<Signer> {
    const hit = this.cache.get(id);
    if (hit) return hit;
    const s = signerFor(await this.privateKey(id));
    this.cache.set(id, s);
    return s;
  }

  /**
   * node:crypto's privateDecrypt. PKCS#1 v1.5 decryption is allowed by Node 24 because its
   * OpenSSL (3.2+) does implicit rejection (Marvin/Bleichenbacher: a bad ciphertext gives
   * deterministic random bytes, no error and no timing difference); on an OpenSSL without it
   * node refuses RSA_PKCS1_PADDING and this rejects.
   */
  async decrypt(id: string, ciphertext: Uint8Array, padding: RsaPadding): Promise<Buffer> {
    let key = this.decryptKeys.get(id);
    if (!key) {
      key = await this.privateKey(id);
      if (key.asymmetricKeyType !== 'rsa') throw new SignetError('key-store', `key ${id} is not an RSA key and cannot decrypt`);
      this.decryptKeys.set(id, key);
    }
    return privateDecrypt(
      padding.scheme === 'pkcs1' ? { key, padding: constants.RSA_PKCS1_PADDING } : { key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: padding.hash },
      ciphertext,
    );
  }

  async remove(id: string, tx?: Tx) {
    this.cache.delete(id);
    this.decryptKeys.delete(id);
    await this.records.remove(id, tx);
  }

  scrubRemoved(): Promise<string | null> {
    return this.records.scrub();
  }

  async exportEncrypted(id: string, passphrase: string): Promise<string> {
    const key = await this.privateKey(id);
    return key.export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase }) as string;
  }

  sealSecret(id: string, secret: Buffer) {
    return { sealed: seal(this.kek.key, `secret:${id}`, secret), kekId: this.kek.id };
  }

  unsealSecret(id: string, sealed: Uint8Array): Buffer | null {
    try {
      return unseal(this.kek.key, `secret:${id}`, sealed);
    } catch {
      return null;
    }
  }

  deriveSecret(label: string): Buffer {
    return Buffer.from(hkdfSync('sha256', this.kek.key, 'signet derived secret v1', label, 32));
  }

  async verifyAll(): Promise<number> {
    const ids = await this.records.ids();
    for (const id of ids) await this.signer(id);
    return ids.length;
  }
}
