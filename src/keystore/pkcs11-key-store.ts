/**
 * CA keys in a PKCS#11 token (SIGNET_KEY_STORE=pkcs11). Generated on the token with CKA_TOKEN,
 * CKA_PRIVATE, CKA_SENSITIVE true and CKA_EXTRACTABLE false, labelled, with a random CKA_ID;
 * the database keeps the RFC 7512 URI (token, id, object, type=private) as the key's id, the
 * public key, and no secret (KeyRecord with kekId 'pkcs11' and an empty `sealed`).
 *
 * Composes the sealed store rather than replacing it: what is not a CA key stays under the KEK,
 * sealed or derived (the audit MAC key, the ACME nonce key, EAB keys: sealSecret, deriveSecret),
 * and so do the short-lived OCSP responder keys (generate(…, 'responder')), which sign every
 * OCSP response. CA keys still sealed from before are served by the sealed store until
 * `signet ca move-key` moves them into the token.
 *
 * Signatures come out in the X.509 encoding: ECDSA hashes in node and signs with CKM_ECDSA
 * (the raw r||s the token returns becomes a DER Ecdsa-Sig-Value), RSA signs a SHA-256
 * DigestInfo with CKM_RSA_PKCS (RSASSA-PKCS1-v1_5, as the sealed signer; Signet's profiles ask
 * for no PSS), Ed25519 signs the message with CKM_EDDSA where the token has it.
 */
import { createHash, createPublicKey, randomBytes, randomUUID, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { AlgorithmIdentifier } from '@peculiar/asn1-x509';
import { SignetError } from '../errors.js';
import { describeKey, OID, ownKey, type KeyAlgorithm, type Signer, type TrustedKey } from '../pki/keys.js';
import { isPqSignature } from '../pki/post-quantum.js';
import type { Tx } from '../storage/database.js';
import { isPkcs11Uri, type KeyStore, type KeyPurpose, type StoredKey } from './key-store.js';
import type { RsaPadding } from '../pki/cms-enveloped.js';
import { binding, CKR, ckrOf, type Handle, type Pkcs11Token, type Template } from './pkcs11-token.js';
import { PKCS11_KEK_ID } from '../model/key.js';
import type { KeyRecords, SealedKeyStore } from './sealed-key-store.js';

export { isPkcs11Uri };

const CKM_EDDSA = 0x1057;
const CKM_EC_EDWARDS_KEY_PAIR_GEN = 0x1055;
const CKK_EC_EDWARDS = 0x40;

const EC_PARAMS: Record<string, Buffer> = {
  'ecdsa-p256': Buffer.from('06082a8648ce3d030107', 'hex'),
  'ecdsa-p384': Buffer.from('06052b81040022', 'hex'),
  'ecdsa-p521': Buffer.from('06052b81040023', 'hex'),
  ed25519: Buffer.from('06032b6570', 'hex'),
};
const CURVE: Record<string, { crv: string; size: number; hash: string; oid: string }> = {
  'ecdsa-p256': { crv: 'P-256', size: 32, hash: 'sha256', oid: OID.ecdsaSha256 },
  'ecdsa-p384': { crv: 'P-384', size: 48, hash: 'sha384', oid: OID.ecdsaSha384 },
  'ecdsa-p521': { crv: 'P-521', size: 66, hash: 'sha512', oid: OID.ecdsaSha512 },
};
/** How long one /readyz check of the token and its CA keys answers for (health()). */
const HEALTH_TTL_MS = 5_000;
const SHA256_DIGEST_INFO = Buffer.from('3031300d060960864801650304020105000420', 'hex');
const DER_NULL = new Uint8Array([0x05, 0x00]).buffer;

/** RFC 7512 percent-encoding: unreserved characters as they are, every other byte as %XX. */
const pct = (b: Buffer | string): string =>
  [...(typeof b === 'string' ? Buffer.from(b, 'utf8') : b)]
    .map((c) => (/[A-Za-z0-9\-._~]/.test(String.fromCharCode(c)) ? String.fromCharCode(c) : `%${c.toString(16).padStart(2, '0')}`))
    .join('');

export function pkcs11Uri(token: string, id: Buffer, object: string): string {
  return `pkcs11:token=${pct(token)};id=${[...id].map((c) => `%${c.toString(16).padStart(2, '0')}`).join('')};object=${pct(object)};type=private`;
}

/**
 * The token label, CKA_ID and label of a key reference Signet wrote. Only the exact form
 * pkcs11Uri writes is accepted: a reference edited in the database (an extra attribute, a query,
 * another encoding of the same bytes) could otherwise alias another CA's key object.
 */
export function parsePkcs11Uri(uri: string): { token: string; id: Buffer; object: string } {
  if (!isPkcs11Uri(uri)) throw new SignetError('key-store', `${uri.slice(0, 200)} is not a pkcs11: URI`);
  const attrs = new Map<string, string>();
  for (const part of uri.slice('pkcs11:'.length).split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) attrs.set(part.slice(0, eq), part.slice(eq + 1));
  }
  const raw = (v: string | undefined) =>
    Buffer.from(
      (v ?? '').replace(/%([0-9a-fA-F]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))),
      'latin1',
    );
  const id = raw(attrs.get('id'));
  const parsed = { token: raw(attrs.get('token')).toString('utf8'), id, object: raw(attrs.get('object')).toString('utf8') };
  if (!id.length || pkcs11Uri(parsed.token, id, parsed.object) !== uri)
    throw new SignetError(
      'key-store',
      `the CA key reference ${uri.slice(0, 200)} is not a pkcs11: URI Signet wrote (token, id, object, type=private, nothing else): it was changed in the database`,
    );
  return parsed;
}

/** PKCS#11's ECDSA signature (r||s, each the curve's size) as X.509's DER Ecdsa-Sig-Value. */
export function ecdsaRawToDer(raw: Buffer, size: number): Buffer {
  if (raw.length !== 2 * size)
    throw new SignetError(
      'unavailable',
      `the token returned a ${raw.length}-byte ECDSA signature; ${2 * size} expected (the key object is not the recorded key); nothing was signed`,
    );
  const int = (b: Buffer) => {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    let v = b.subarray(i);
    if (v[0]! & 0x80) v = Buffer.concat([Buffer.from([0]), v]);
    return Buffer.concat([Buffer.from([0x02, v.length]), v]);
  };
  const body = Buffer.concat([int(raw.subarray(0, size)), int(raw.subarray(size))]);
  return Buffer.concat([body.length < 0x80 ? Buffer.from([0x30, body.length]) : Buffer.from([0x30, 0x81, body.length]), body]);
}

/** CKA_EC_POINT is a DER OCTET STRING around the point (some tokens give the bare point). */
function ecPoint(v: Buffer): Buffer {
  if (v[0] === 0x04) {
    const [len, hdr] = v[1]! < 0x80 ? [v[1]!, 2] : v[1] === 0x81 ? [v[2]!, 3] : [-1, 0];
    if (len + hdr === v.length) return v.subarray(hdr);
  }
  return v;
}

const b64u = (b: Buffer) => b.toString('base64url');

/** A new key's CKA_ID (16 random bytes) and label. */
const newObjectName = () => ({ id: randomBytes(16), object: `signet-ca-${randomUUID()}` });

/**
 * What every CA key object gets: a token object, labelled, with its CKA_ID; the private half
 * private, sensitive, non-extractable, and able to sign and nothing else.
 */
function baseTemplates(id: Buffer, object: string): { priv: Template; pub: Template } {
  const pk = binding();
  const common = [
    { type: pk.CKA_TOKEN, value: true },
    { type: pk.CKA_LABEL, value: object },
    { type: pk.CKA_ID, value: id },
  ];
  return {
    priv: [
      ...common,
      { type: pk.CKA_CLASS, value: pk.CKO_PRIVATE_KEY },
      { type: pk.CKA_PRIVATE, value: true },
      { type: pk.CKA_SENSITIVE, value: true },
      { type: pk.CKA_EXTRACTABLE, value: false },
      { type: pk.CKA_SIGN, value: true },
      { type: pk.CKA_DECRYPT, value: false },
      { type: pk.CKA_UNWRAP, value: false },
      { type: pk.CKA_DERIVE, value: false },
    ],
    pub: [...common, { type: pk.CKA_CLASS, value: pk.CKO_PUBLIC_KEY }, { type: pk.CKA_VERIFY, value: true }, { type: pk.CKA_PRIVATE, value: false }],
  };
}

export class Pkcs11KeyStore implements KeyStore {
  private readonly cache = new Map<string, Signer>();
  /** URI → private key handle, valid for one token generation. */
  private readonly handles = new Map<string, { handle: Handle; generation: number }>();

  constructor(
    readonly token: Pkcs11Token,
    private readonly records: KeyRecords,
    /** Everything that is not a CA key: secrets, OCSP responder keys, CA keys not moved yet. */
    readonly sealed: SealedKeyStore,
  ) {}

  private get label() {
    return this.token.opts.label;
  }

  async generate(algorithm: KeyAlgorithm, tx?: Tx, purpose: KeyPurpose = 'ca'): Promise<StoredKey> {
    if (purpose === 'responder') return this.sealed.generate(algorithm, tx, purpose);
    refusePostQuantum(algorithm, 'generate');
    const pk = binding();
    const { id, object } = newObjectName();
    let mechanism: number;
    let { priv, pub } = baseTemplates(id, object);
    if (purpose === 'ra') {
      // The SCEP RA key signs CertRep replies and decrypts request envelopes (RSA key transport):
      // the one kind of key object Signet lets decrypt. Still sensitive and never extractable.
      if (!algorithm.startsWith('rsa-')) throw new SignetError('bad-key', 'the SCEP RA key must be RSA (envelopes use RSA key transport)');
      priv = [...priv.filter((a) => a.type !== pk.CKA_DECRYPT), { type: pk.CKA_DECRYPT, value: true }];
    }
    if (algorithm.startsWith('rsa-')) {
      mechanism = pk.CKM_RSA_PKCS_KEY_PAIR_GEN;
      pub = [
        ...pub,
        { type: pk.CKA_KEY_TYPE, value: pk.CKK_RSA },
        { type: pk.CKA_MODULUS_BITS, value: Number(algorithm.slice(4)) },
        { type: pk.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
      ];
      priv = [...priv, { type: pk.CKA_KEY_TYPE, value: pk.CKK_RSA }];
    } else if (algorithm === 'ed25519') {
      await this.requireMechanism(CKM_EDDSA, 'Ed25519 (CKM_EDDSA)');
      mechanism = CKM_EC_EDWARDS_KEY_PAIR_GEN;
      pub = [...pub, { type: pk.CKA_KEY_TYPE, value: CKK_EC_EDWARDS }, { type: pk.CKA_EC_PARAMS, value: EC_PARAMS.ed25519! }];
      priv = [...priv, { type: pk.CKA_KEY_TYPE, value: CKK_EC_EDWARDS }];
    } else {
      mechanism = pk.CKM_EC_KEY_PAIR_GEN;
      pub = [...pub, { type: pk.CKA_KEY_TYPE, value: pk.CKK_EC }, { type: pk.CKA_EC_PARAMS, value: EC_PARAMS[algorithm]! }];
      priv = [...priv, { type: pk.CKA_KEY_TYPE, value: pk.CKK_EC }];
    }
    const publicKey = await this.token.withSession(`generating an ${algorithm} CA key`, async (s) => {
      const pair = await this.token.p.C_GenerateKeyPairAsync(s, { mechanism }, pub, priv);
      return this.readPublicKey(s, pair.publicKey, algorithm);
    });
    return this.record(pkcs11Uri(this.label, id, object), algorithm, publicKey, tx);
  }

  private async record(uri: string, algorithm: KeyAlgorithm, publicKey: KeyObject, tx?: Tx): Promise<StoredKey> {
    await this.records.insert(
      { id: uri, algorithm, kekId: PKCS11_KEK_ID, sealed: new Uint8Array(0), publicKeyDer: publicKey.export({ format: 'der', type: 'spki' }) },
      tx,
    );
    const signer = this.signerOf(uri, algorithm, publicKey);
    this.cache.set(uri, signer);
    return { id: uri, publicKey, signer };
  }

  private async requireMechanism(mechanism: number, name: string): Promise<void> {
    const has = await this.token.withSession('listing its mechanisms', (s) => {
      const slot = this.token.p.C_GetSessionInfo(s).slotID;
      return this.token.p.C_GetMechanismList(slot).includes(mechanism);
    });
    if (!has) throw new SignetError('bad-key', `PKCS#11 token "${this.label}" does not support ${name}; choose an ECDSA or RSA key for a CA kept in it`);
  }

  private readPublicKey(s: Handle, handle: Handle, algorithm: KeyAlgorithm): KeyObject {
    const pk = binding();
    const p = this.token.p;
    if (algorithm.startsWith('rsa-')) {
      const [n, e] = p.C_GetAttributeValue(s, handle, [{ type: pk.CKA_MODULUS }, { type: pk.CKA_PUBLIC_EXPONENT }]).map((a) => a.value as Buffer);
      return createPublicKey({ key: { kty: 'RSA', n: b64u(n!), e: b64u(e!) }, format: 'jwk' });
    }
    const point = ecPoint(p.C_GetAttributeValue(s, handle, [{ type: pk.CKA_EC_POINT }])[0]!.value as Buffer);
    if (algorithm === 'ed25519') return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64u(point) }, format: 'jwk' });
    const c = CURVE[algorithm]!;
    if (point.length !== 1 + 2 * c.size || point[0] !== 4)
      throw new SignetError('key-store', `PKCS#11 token "${this.label}" returned an unexpected ${c.crv} public point`);
    return createPublicKey({ key: { kty: 'EC', crv: c.crv, x: b64u(point.subarray(1, 1 + c.size)), y: b64u(point.subarray(1 + c.size)) }, format: 'jwk' });
  }

  /**
   * An existing private key into the token (CA import, `signet ca move-key`): created with
   * CKA_SENSITIVE true and CKA_EXTRACTABLE false; the token sets CKA_NEVER_EXTRACTABLE false,
   * truthfully, as the key existed outside it.
   */
  async importKey(privateKey: TrustedKey, tx?: Tx): Promise<StoredKey> {
    const pk = binding();
    const algorithm = describeKey(privateKey).name as KeyAlgorithm;
    refusePostQuantum(algorithm, 'import');
    const jwk = privateKey.export({ format: 'jwk' }) as Record<string, string>;
    const buf = (k: string) => Buffer.from(jwk[k]!, 'base64url');
    const { id, object } = newObjectName();
    let { priv, pub } = baseTemplates(id, object);
    const secrets: Buffer[] = [];
    const secret = (k: string) => {
      const b = buf(k);
      secrets.push(b);
      return b;
    };
    if (algorithm.startsWith('rsa-')) {
      pub = [
        ...pub,
        { type: pk.CKA_KEY_TYPE, value: pk.CKK_RSA },
        { type: pk.CKA_MODULUS, value: buf('n') },
        { type: pk.CKA_PUBLIC_EXPONENT, value: buf('e') },
      ];
      priv = [
        ...priv,
        { type: pk.CKA_KEY_TYPE, value: pk.CKK_RSA },
        { type: pk.CKA_MODULUS, value: buf('n') },
        { type: pk.CKA_PUBLIC_EXPONENT, value: buf('e') },
        { type: pk.CKA_PRIVATE_EXPONENT, value: secret('d') },
        { type: pk.CKA_PRIME_1, value: secret('p') },
        { type: pk.CKA_PRIME_2, value: secret('q') },
        { type: pk.CKA_EXPONENT_1, value: secret('dp') },
        { type: pk.CKA_EXPONENT_2, value: secret('dq') },
        { type: pk.CKA_COEFFICIENT, value: secret('qi') },
      ];
    } else if (algorithm === 'ed25519') {
      await this.requireMechanism(CKM_EDDSA, 'Ed25519 (CKM_EDDSA)');
      const point = Buffer.concat([Buffer.from([0x04, 32]), buf('x')]);
      pub = [
        ...pub,
        { type: pk.CKA_KEY_TYPE, value: CKK_EC_EDWARDS },
        { type: pk.CKA_EC_PARAMS, value: EC_PARAMS.ed25519! },
        { type: pk.CKA_EC_POINT, value: point },
      ];
      priv = [
        ...priv,
        { type: pk.CKA_KEY_TYPE, value: CKK_EC_EDWARDS },
        { type: pk.CKA_EC_PARAMS, value: EC_PARAMS.ed25519! },
        { type: pk.CKA_VALUE, value: secret('d') },
      ];
    } else {
      const raw = Buffer.concat([Buffer.from([4]), buf('x'), buf('y')]);
      const point = Buffer.concat([raw.length < 0x80 ? Buffer.from([0x04, raw.length]) : Buffer.from([0x04, 0x81, raw.length]), raw]);
      pub = [
        ...pub,
        { type: pk.CKA_KEY_TYPE, value: pk.CKK_EC },
        { type: pk.CKA_EC_PARAMS, value: EC_PARAMS[algorithm]! },
        { type: pk.CKA_EC_POINT, value: point },
      ];
      priv = [
        ...priv,
        { type: pk.CKA_KEY_TYPE, value: pk.CKK_EC },
        { type: pk.CKA_EC_PARAMS, value: EC_PARAMS[algorithm]! },
        { type: pk.CKA_VALUE, value: secret('d') },
      ];
    }
    try {
      await this.token.withSession(`importing an ${algorithm} CA key`, (s) => {
        const privHandle = this.token.p.C_CreateObject(s, priv);
        try {
          this.token.p.C_CreateObject(s, pub);
        } catch (e) {
          this.token.p.C_DestroyObject(s, privHandle);
          throw e;
        }
      });
    } finally {
      for (const b of secrets) b.fill(0);
    }
    return this.record(pkcs11Uri(this.label, id, object), algorithm, createPublicKey(privateKey), tx);
  }

  /** The private key's handle, found by CKA_ID (and CKA_LABEL) once per token generation. */
  private handle(uri: string, s: Handle, generation: number): Handle {
    const hit = this.handles.get(uri);
    if (hit && hit.generation === generation) return hit.handle;
    const pk = binding();
    let ref: ReturnType<typeof parsePkcs11Uri>;
    try {
      ref = parsePkcs11Uri(uri);
    } catch (e) {
      throw new SignetError('unavailable', `${(e as SignetError).detail}; nothing was signed`);
    }
    const { id, object, token } = ref;
    if (token !== this.label)
      throw new SignetError(
        'unavailable',
        `CA key ${uri} is in PKCS#11 token "${token}", but Signet is configured for token "${this.label}" (SIGNET_PKCS11_TOKEN)`,
      );
    const found = this.token.find(s, [
      { type: pk.CKA_CLASS, value: pk.CKO_PRIVATE_KEY },
      { type: pk.CKA_ID, value: id },
      { type: pk.CKA_LABEL, value: object },
    ]);
    if (found.length !== 1)
      throw new SignetError(
        'unavailable',
        found.length === 0
          ? `CA key ${uri} is not in PKCS#11 token "${this.label}" (deleted, or another token?); nothing was signed`
          : `CA key ${uri} matches ${found.length} objects in PKCS#11 token "${this.label}"; nothing was signed`,
      );
    this.handles.set(uri, { handle: found[0]!, generation });
    return found[0]!;
  }

  private signerOf(uri: string, algorithm: KeyAlgorithm, publicKey: KeyObject): Signer {
    const pk = binding();
    let algorithmId: AlgorithmIdentifier;
    let prepare: (data: Uint8Array) => { mechanism: number; input: Buffer; out: number };
    let finish: (sig: Buffer) => Buffer = (x) => x;
    /** The digest node's verify uses for this key (null: Ed25519 signs the message itself). */
    let digest: string | null = 'sha256';
    if (algorithm.startsWith('rsa-')) {
      const bytes = Math.ceil(Number(algorithm.slice(4)) / 8);
      algorithmId = new AlgorithmIdentifier({ algorithm: OID.sha256WithRSA, parameters: DER_NULL });
      prepare = (data) => ({ mechanism: pk.CKM_RSA_PKCS, input: Buffer.concat([SHA256_DIGEST_INFO, createHash('sha256').update(data).digest()]), out: bytes });
    } else if (algorithm === 'ed25519') {
      algorithmId = new AlgorithmIdentifier({ algorithm: OID.ed25519 });
      prepare = (data) => ({ mechanism: CKM_EDDSA, input: Buffer.from(data), out: 64 });
      digest = null;
    } else {
      const c = CURVE[algorithm]!;
      algorithmId = new AlgorithmIdentifier({ algorithm: c.oid });
      prepare = (data) => ({ mechanism: pk.CKM_ECDSA, input: createHash(c.hash).update(data).digest(), out: 2 * c.size });
      finish = (sig) => ecdsaRawToDer(sig, c.size);
      digest = c.hash;
    }
    return {
      algorithm: algorithmId,
      publicKey,
      sign: async (data) => {
        const { mechanism, input, out } = prepare(data);
        const sig = await this.token.withSession(`signing with CA key ${uri}`, async (s, generation) => {
          const h = this.handle(uri, s, generation);
          try {
            this.token.p.C_SignInit(s, { mechanism }, h);
          } catch (e) {
            const code = ckrOf(e);
            if (code === CKR.KEY_HANDLE_INVALID || code === CKR.OBJECT_HANDLE_INVALID) {
              this.handles.delete(uri);
              throw new SignetError('unavailable', `CA key ${uri} is no longer in PKCS#11 token "${this.label}" (deleted?); nothing was signed`, { cause: e });
            }
            throw e;
          }
          return this.token.p.C_SignAsync(s, input, Buffer.alloc(out));
        });
        const der = finish(Buffer.from(sig));
        // Checked before anything uses it: a private key object swapped behind Signet's back (same
        // CKA_ID and label, another key) or a faulty token would otherwise put invalid signatures
        // into certificates and CRLs, and a faulty RSA-CRT signature can give the key away.
        // node verifies on its thread pool; the event loop does not wait on it.
        const valid = await new Promise<boolean>((resolve) => {
          cryptoVerify(digest, data, publicKey, der, (err, ok) => resolve(!err && ok));
        });
        if (!valid) {
          this.handles.delete(uri);
          throw new SignetError(
            'unavailable',
            `the signature PKCS#11 token "${this.label}" made with CA key ${uri} does not verify with the public key Signet recorded for it (the key object was replaced, or the token is faulty); nothing was signed`,
          );
        }
        return der;
      },
    };
  }

  /**
   * C_Decrypt with CKM_RSA_PKCS or CKM_RSA_PKCS_OAEP (MGF1 with the same hash, no label). A
   * token answers a bad PKCS#1 v1.5 padding with CKR_ENCRYPTED_DATA_INVALID (SoftHSM has no
   * implicit rejection); the caller (decryptEnveloped in cms-enveloped.ts) answers that, a key of
   * the wrong length, and content that does not decrypt or unpad with one error and one text,
   * going on with a random key of the cipher's length, so the SCEP reply does not say which
   * happened.
   */
  async decrypt(id: string, ciphertext: Uint8Array, padding: RsaPadding): Promise<Buffer> {
    if (!isPkcs11Uri(id)) return this.sealed.decrypt(id, ciphertext, padding);
    const pk = binding();
    const rec = await this.records.find(id);
    if (!rec) throw new SignetError('unavailable', `key ${id} has no record in the key store`);
    if (!rec.algorithm.startsWith('rsa-')) throw new SignetError('key-store', `key ${id} is not an RSA key and cannot decrypt`);
    const bytes = Math.ceil(Number(rec.algorithm.slice(4)) / 8);
    const hashes = {
      sha1: [pk.CKM_SHA_1, pk.CKG_MGF1_SHA1],
      sha256: [pk.CKM_SHA256, pk.CKG_MGF1_SHA256],
      sha384: [pk.CKM_SHA384, pk.CKG_MGF1_SHA384],
      sha512: [pk.CKM_SHA512, pk.CKG_MGF1_SHA512],
    } as const;
    const mechanism =
      padding.scheme === 'pkcs1'
        ? { mechanism: pk.CKM_RSA_PKCS }
        : {
            mechanism: pk.CKM_RSA_PKCS_OAEP,
            parameter: { type: pk.CK_PARAMS_RSA_OAEP, hashAlg: hashes[padding.hash][0], mgf: hashes[padding.hash][1], source: 1 /* CKZ_DATA_SPECIFIED */ },
          };
    const out = await this.token.withSession(`decrypting with key ${id}`, async (s, generation) => {
      const h = this.handle(id, s, generation);
      this.token.p.C_DecryptInit(s, mechanism, h);
      return this.token.p.C_DecryptAsync(s, Buffer.from(ciphertext), Buffer.alloc(bytes));
    });
    return Buffer.from(out);
  }

  async signer(id: string): Promise<Signer> {
    if (!isPkcs11Uri(id)) return this.sealed.signer(id);
    const hit = this.cache.get(id);
    if (hit) return hit;
    const rec = await this.records.find(id);
    if (!rec) throw new SignetError('unavailable', `CA key ${id} has no record in the key store (the CA row was changed in the database); nothing was signed`);
    const s = this.signerOf(id, rec.algorithm as KeyAlgorithm, ownKey(createPublicKey({ key: Buffer.from(rec.publicKeyDer), format: 'der', type: 'spki' })));
    this.cache.set(id, s);
    return s;
  }

  /**
   * Checks that the key object is on the token and that its public half is the one recorded
   * (start-up, /readyz). A key deleted behind Signet's back stops start-up here.
   */
  async checkKey(id: string, type: 'key-store' | 'unavailable' = 'key-store'): Promise<void> {
    const rec = await this.records.find(id);
    if (!rec) throw new SignetError(type, `CA key ${id} has no record in the key store`);
    const pk = binding();
    try {
      const { id: ckaId, object } = parsePkcs11Uri(id);
      await this.token.withSession(`looking up CA key ${id}`, (s, generation) => {
        this.handles.delete(id);
        const h = this.handle(id, s, generation);
        const [sensitive, extractable] = this.token.p
          .C_GetAttributeValue(s, h, [{ type: pk.CKA_SENSITIVE }, { type: pk.CKA_EXTRACTABLE }])
          .map((a) => (Buffer.isBuffer(a.value) ? a.value[0] === 1 : Boolean(a.value)));
        if (!sensitive || extractable)
          throw new SignetError(
            type,
            `CA key ${id} in PKCS#11 token "${this.label}" is ${!sensitive ? 'not sensitive' : 'extractable'}: not a key Signet made or imported (those are sensitive and non-extractable); it was replaced in the token`,
          );
        const pubs = this.token.find(s, [
          { type: pk.CKA_CLASS, value: pk.CKO_PUBLIC_KEY },
          { type: pk.CKA_ID, value: ckaId },
          { type: pk.CKA_LABEL, value: object },
        ]);
        if (pubs.length === 1) {
          const spki = this.readPublicKey(s, pubs[0]!, rec.algorithm as KeyAlgorithm).export({ format: 'der', type: 'spki' });
          if (!spki.equals(Buffer.from(rec.publicKeyDer)))
            throw new SignetError(type, `CA key ${id} in PKCS#11 token "${this.label}" is not the key Signet recorded (its public key differs)`);
        }
      });
      // The private object itself: a test signature, verified with the recorded public key by the
      // signer (a private key swapped under the same CKA_ID and label fails here, at start-up and
      // in /readyz, not only at the next issuance).
      await (await this.signer(id)).sign(randomBytes(32));
    } catch (e) {
      if (e instanceof SignetError && e.type !== type) throw new SignetError(type, e.detail, { cause: e });
      throw e;
    }
  }

  async remove(id: string, tx?: Tx): Promise<void> {
    if (!isPkcs11Uri(id)) return this.sealed.remove(id, tx);
    throw new SignetError('conflict', `CA key ${id} is in PKCS#11 token "${this.label}" and cannot leave it; keep the token offline instead`);
  }

  scrubRemoved(): Promise<string | null> {
    return this.sealed.scrubRemoved();
  }

  async exportEncrypted(id: string, passphrase: string): Promise<string> {
    if (!isPkcs11Uri(id)) return this.sealed.exportEncrypted(id, passphrase);
    throw new SignetError(
      'conflict',
      `CA key ${id} is in PKCS#11 token "${this.label}", generated or imported non-extractable: it cannot be exported; to keep a root offline, keep its token offline`,
    );
  }

  /** Destroys a key's objects in the token (a move-key whose test signature failed). */
  async destroy(id: string): Promise<void> {
    const pk = binding();
    const { id: ckaId, object } = parsePkcs11Uri(id);
    this.cache.delete(id);
    this.handles.delete(id);
    await this.token.withSession(`removing CA key ${id}`, (s) => {
      for (const h of this.token.find(s, [
        { type: pk.CKA_ID, value: ckaId },
        { type: pk.CKA_LABEL, value: object },
      ]))
        this.token.p.C_DestroyObject(s, h);
    });
  }

  sealSecret(id: string, secret: Buffer) {
    return this.sealed.sealSecret(id, secret);
  }

  unsealSecret(id: string, sealed: Uint8Array) {
    return this.sealed.unsealSecret(id, sealed);
  }

  deriveSecret(label: string) {
    return this.sealed.deriveSecret(label);
  }

  async verifyAll(): Promise<number> {
    let n = await this.sealed.verifyAll();
    for (const id of await this.records.ids()) {
      if (!isPkcs11Uri(id)) continue;
      await this.checkKey(id, 'key-store');
      n++;
    }
    return n;
  }

  /**
   * /readyz: the token login (checked, and a lost session re-opened, at every call: cheap), then
   * every active CA key (a lookup and a test signature each). /readyz is public, so a passing key
   * check serves every caller for HEALTH_TTL_MS and concurrent callers share the one in flight:
   * a flood of probes costs the token at most one round of test signatures every few seconds,
   * not one per request. A failing check is not kept: the next call looks again.
   */
  async health(ids: string[]): Promise<string> {
    const state = await this.token.probe();
    if (state !== 'logged in') return state;
    const key = `${this.token.generation} ${ids.join(' ')}`;
    let entry = this.keysChecked;
    if (!(entry && entry.key === key && (entry.pending || Date.now() - entry.at < HEALTH_TTL_MS))) {
      const made = {
        key,
        at: 0,
        pending: true,
        done: (async () => {
          for (const id of ids) if (isPkcs11Uri(id)) await this.checkKey(id, 'unavailable');
        })(),
      };
      made.done.then(
        () => {
          made.pending = false;
          made.at = Date.now();
        },
        () => {
          if (this.keysChecked === made) this.keysChecked = undefined;
        },
      );
      this.keysChecked = entry = made;
    }
    await entry.done;
    return state;
  }
  private keysChecked: { key: string; at: number; pending: boolean; done: Promise<void> } | undefined;
}

/**
 * PKCS#11 3.2 names ML-DSA (CKK_ML_DSA, CKM_ML_DSA) but SoftHSM2 2.6, the token these machines
 * have, implements none of it; a post-quantum CA key stays in the sealed store until a token does.
 */
function refusePostQuantum(algorithm: KeyAlgorithm, what: 'generate' | 'import'): void {
  if (isPqSignature(algorithm))
    throw new SignetError(
      'bad-key',
      `cannot ${what} an ${algorithm} CA key in the PKCS#11 token: the token does not implement ML-DSA/SLH-DSA (PKCS#11 3.2); keep post-quantum CA keys in the sealed store (SIGNET_KEY_STORE=sealed)`,
    );
}
