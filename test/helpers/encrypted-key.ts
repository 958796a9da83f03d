/**
 * Passphrase-encrypted PKCS#8 keys (EncryptedPrivateKeyInfo, RFC 5958 / RFC 8018) built here,
 * so a test can claim any key-derivation cost without paying it: the ciphertext is made with
 * `actual` iterations (cheap), the parameters say `claimed`. With claimed === actual the key
 * decrypts for real.
 */
import { createCipheriv, pbkdf2Sync, randomBytes, type KeyObject } from 'node:crypto';
import { objectIdentifier, octetString, sequence, smallInteger } from '../../src/pki/der.js';

const PBES2 = '1.2.840.113549.1.5.13';
const PBKDF2 = '1.2.840.113549.1.5.12';
const SCRYPT = '1.3.6.1.4.1.11591.4.11';
const HMAC_SHA256 = '1.2.840.113549.2.9';
const AES256_CBC = '2.16.840.1.101.3.4.1.42';
const NULL = Buffer.from([0x05, 0x00]);

const pem = (der: Buffer) =>
  `-----BEGIN ENCRYPTED PRIVATE KEY-----\n${der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END ENCRYPTED PRIVATE KEY-----\n`;

/** PBES2 / PBKDF2-HMAC-SHA256 / AES-256-CBC, stating `claimed` iterations, encrypted with `actual`. */
export function pbkdf2Key(key: KeyObject, passphrase: string, claimed: number, actual = claimed): string {
  const salt = randomBytes(16);
  const iv = randomBytes(16);
  const plain = key.export({ format: 'der', type: 'pkcs8' });
  const k = pbkdf2Sync(passphrase, salt, actual, 32, 'sha256');
  const c = createCipheriv('aes-256-cbc', k, iv);
  const data = Buffer.concat([c.update(plain), c.final()]);
  const kdf = sequence(objectIdentifier(PBKDF2), sequence(octetString(salt), smallInteger(claimed), sequence(objectIdentifier(HMAC_SHA256), NULL)));
  return pem(sequence(sequence(objectIdentifier(PBES2), sequence(kdf, sequence(objectIdentifier(AES256_CBC), octetString(iv)))), octetString(data)));
}

/** PBES2 / scrypt with these parameters / AES-256-CBC; the data is not a real encryption (never decrypted). */
export function scryptKeyClaiming(N: number, r: number, p: number): string {
  const kdf = sequence(objectIdentifier(SCRYPT), sequence(octetString(randomBytes(16)), smallInteger(N), smallInteger(r), smallInteger(p)));
  return pem(
    sequence(
      sequence(objectIdentifier(PBES2), sequence(kdf, sequence(objectIdentifier(AES256_CBC), octetString(randomBytes(16))))),
      octetString(randomBytes(48)),
    ),
  );
}

/** An EncryptedPrivateKeyInfo under an arbitrary algorithm OID with { salt, iterations } parameters. */
export function keyUnder(algorithmOid: string, iterations: number): string {
  return pem(sequence(sequence(objectIdentifier(algorithmOid), sequence(octetString(randomBytes(8)), smallInteger(iterations))), octetString(randomBytes(48))));
}

/** PBES2 with a key derivation function Signet does not know. */
export function pbes2WithKdf(kdfOid: string): string {
  const kdf = sequence(objectIdentifier(kdfOid), sequence(octetString(randomBytes(16)), smallInteger(1)));
  return pem(
    sequence(
      sequence(objectIdentifier(PBES2), sequence(kdf, sequence(objectIdentifier(AES256_CBC), octetString(randomBytes(16))))),
      octetString(randomBytes(48)),
    ),
  );
}
