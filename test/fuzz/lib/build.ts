/**
 * Builders for well-formed inputs that the mutators then break one element at a time: PKCS#10
 * CSRs signed with real keys (so a mutant of the request info, re-signed, gets past the
 * signature check into the name and extension parsing) and OCSP requests. Independent of
 * src/pki (only node:crypto and der-tree.ts).
 */
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { encodeTree, mutate, parseTree, tlvBytes as tlv, type MutationStep } from './der-tree.js';

export const seq = (...p: Uint8Array[]) => tlv(0x30, ...p);
export const set = (...p: Uint8Array[]) => tlv(0x31, ...p);

export function oid(text: string): Buffer {
  const arcs = text.split('.').map((x) => BigInt(x));
  const out: number[] = [];
  for (const arc of [arcs[0]! * 40n + arcs[1]!, ...arcs.slice(2)]) {
    const chunk: number[] = [];
    let v = arc;
    do {
      chunk.unshift(Number(v & 0x7fn));
      v >>= 7n;
    } while (v > 0n);
    for (let i = 0; i < chunk.length - 1; i++) chunk[i]! |= 0x80;
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

export const OIDS = {
  ecPublicKey: '1.2.840.10045.2.1',
  rsa: '1.2.840.113549.1.1.1',
  ed25519: '1.3.101.112',
  p256: '1.2.840.10045.3.1.7',
  p384: '1.3.132.0.34',
  p521: '1.3.132.0.35',
  ecdsaSha256: '1.2.840.10045.4.3.2',
  ecdsaSha384: '1.2.840.10045.4.3.3',
  ecdsaSha512: '1.2.840.10045.4.3.4',
  sha256Rsa: '1.2.840.113549.1.1.11',
  extensionRequest: '1.2.840.113549.1.9.14',
  san: '2.5.29.17',
  cn: '2.5.4.3',
  o: '2.5.4.10',
  ou: '2.5.4.11',
  c: '2.5.4.6',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  sha1: '1.3.14.3.2.26',
  sha256: '2.16.840.1.101.3.4.2.1',
  sha384: '2.16.840.1.101.3.4.2.2',
  sha512: '2.16.840.1.101.3.4.2.3',
  ocspNonce: '1.3.6.1.5.5.7.48.1.2',
} as const;

export type KeyName = 'p256' | 'p384' | 'p521' | 'ed25519' | 'rsa2048' | 'mldsa44';
/** ML-DSA-44: the smallest post-quantum level, one OID for key and signature (RFC 9881). */
export const KEY_NAMES: KeyName[] = ['p256', 'p384', 'p521', 'ed25519', 'rsa2048', 'mldsa44'];
const ML_DSA_44 = '2.16.840.1.101.3.4.3.17';

export interface SigningKey {
  name: KeyName;
  privateKey: KeyObject;
  spki: Buffer;
  sigAlg: Buffer;
  hash: string | null;
}

let keys: Record<KeyName, SigningKey> | undefined;

/** One key of each kind per process (RSA generation is the slow part: ~0.1 s). */
export function signingKeys(): Record<KeyName, SigningKey> {
  if (keys) return keys;
  const make = (name: KeyName): SigningKey => {
    const pair =
      name === 'ed25519' || name === 'mldsa44'
        ? generateKeyPairSync((name === 'mldsa44' ? 'ml-dsa-44' : 'ed25519') as 'ed25519')
        : name === 'rsa2048'
          ? generateKeyPairSync('rsa', { modulusLength: 2048 })
          : generateKeyPairSync('ec', { namedCurve: { p256: 'P-256', p384: 'P-384', p521: 'P-521' }[name] });
    const spki = pair.publicKey.export({ type: 'spki', format: 'der' });
    const [alg, hash] =
      name === 'ed25519'
        ? [seq(oid(OIDS.ed25519)), null]
        : name === 'mldsa44'
          ? [seq(oid(ML_DSA_44)), null]
          : name === 'rsa2048'
            ? [seq(oid(OIDS.sha256Rsa), Buffer.from([5, 0])), 'sha256']
            : name === 'p256'
              ? [seq(oid(OIDS.ecdsaSha256)), 'sha256']
              : name === 'p384'
                ? [seq(oid(OIDS.ecdsaSha384)), 'sha384']
                : [seq(oid(OIDS.ecdsaSha512)), 'sha512'];
    return { name, privateKey: pair.privateKey, spki, sigAlg: alg, hash };
  };
  keys = Object.fromEntries(KEY_NAMES.map((n) => [n, make(n)])) as Record<KeyName, SigningKey>;
  return keys;
}

export function signWith(key: SigningKey, data: Buffer): Buffer {
  return sign(key.hash, data, key.privateKey.asymmetricKeyType === 'ec' ? { key: key.privateKey, dsaEncoding: 'der' } : key.privateKey);
}

export type SanSpec = { type: 'dns' | 'ip' | 'email' | 'uri' | 'raw'; value: string | Buffer; tag?: number };
export interface CsrSpec {
  key: KeyName;
  /** [type OID, string tag, value] per RDN. */
  subject: [string, number, string][];
  sans?: SanSpec[];
  /** Extra extensions: [OID, critical, extnValue DER]. */
  extensions?: [string, boolean, Buffer][];
}

function generalName(s: SanSpec): Buffer {
  const bytes = Buffer.isBuffer(s.value) ? s.value : s.type === 'ip' ? ipBytes(s.value) : Buffer.from(s.value, 'utf8');
  const tag = s.tag ?? { dns: 0x82, ip: 0x87, email: 0x81, uri: 0x86, raw: 0x82 }[s.type];
  return tlv(tag, bytes);
}

function ipBytes(text: string): Buffer {
  if (text.includes(':')) {
    const [l = '', r] = text.split('::');
    const groups = (x: string) => (x ? x.split(':').map((g) => parseInt(g || '0', 16) & 0xffff) : []);
    const left = groups(l);
    const right = r === undefined ? [] : groups(r);
    const all = r === undefined ? left : [...left, ...new Array(Math.max(0, 8 - left.length - right.length)).fill(0), ...right];
    const b = Buffer.alloc(16);
    all.slice(0, 8).forEach((g, i) => {
      b.writeUInt16BE(g, i * 2);
    });
    return b;
  }
  return Buffer.from(
    text
      .split('.')
      .slice(0, 4)
      .map((x) => Number(x) & 0xff),
  );
}

export function csrInfo(spec: CsrSpec): Buffer {
  const key = signingKeys()[spec.key];
  const name = seq(...spec.subject.map(([t, tag, v]) => set(seq(oid(t), tlv(tag, Buffer.from(v, 'utf8'))))));
  const exts: Buffer[] = [];
  if (spec.sans?.length) exts.push(seq(oid(OIDS.san), tlv(0x04, seq(...spec.sans.map(generalName)))));
  for (const [o, critical, value] of spec.extensions ?? []) exts.push(seq(oid(o), ...(critical ? [Buffer.from([1, 1, 0xff])] : []), tlv(0x04, value)));
  const attrs = exts.length ? tlv(0xa0, seq(oid(OIDS.extensionRequest), set(seq(...exts)))) : tlv(0xa0);
  return seq(Buffer.from([2, 1, 0]), name, key.spki, attrs);
}

/** The signed request for `info` (any bytes) under `key`. */
export function signCsr(info: Buffer, keyName: KeyName): Buffer {
  const key = signingKeys()[keyName];
  return seq(info, key.sigAlg, tlv(0x03, Buffer.from([0]), signWith(key, info)));
}

export const buildCsr = (spec: CsrSpec): Buffer => signCsr(csrInfo(spec), spec.key);

/**
 * A CSR with mutations applied to its certificationRequestInfo and, when `resign`, signed again
 * so the signature still verifies over the mutated bytes (the parser then has to judge the
 * mutated element itself, not stop at the signature).
 */
export function mutateCsr(csr: Buffer, keyName: KeyName, steps: MutationStep[], resign: boolean): Buffer {
  const tree = parseTree(csr);
  if (tree?.kids?.length !== 3) return csr;
  let info = tree.kids[0]!;
  for (const s of steps) info = mutate(info, s);
  const infoDer = encodeTree(info);
  if (resign) return signCsr(infoDer, keyName);
  return seq(infoDer, encodeTree(tree.kids[1]!), encodeTree(tree.kids[2]!));
}

export function mutateWhole(der: Buffer, steps: MutationStep[]): Buffer {
  let tree = parseTree(der);
  if (!tree) return der;
  for (const s of steps) tree = mutate(tree, s);
  return encodeTree(tree);
}

// ---------------------------------------------------------------------------------------------
// OCSP requests

export interface CertIdSpec {
  hash: 'sha1' | 'sha256' | 'sha384' | 'sha512' | 'md5';
  nameHash: Buffer;
  keyHash: Buffer;
  serial: Buffer;
  nullParams: boolean;
}
export interface OcspRequestSpec {
  version?: boolean;
  requestorName?: boolean;
  certIds: CertIdSpec[];
  nonce?: Buffer;
  /** Extra request extensions: [OID, critical, value]. */
  extensions?: [string, boolean, Buffer][];
  singleExtensions?: boolean;
  signature?: boolean;
}

const HASH_OID = { sha1: OIDS.sha1, sha256: OIDS.sha256, sha384: OIDS.sha384, sha512: OIDS.sha512, md5: '1.2.840.113549.2.5' };

export function integer(bytes: Buffer): Buffer {
  let b = bytes.length ? bytes : Buffer.from([0]);
  let i = 0;
  while (i < b.length - 1 && b[i] === 0 && !(b[i + 1]! & 0x80)) i++;
  b = b.subarray(i);
  if (b[0]! & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return tlv(0x02, b);
}

export function certId(c: CertIdSpec): Buffer {
  return seq(seq(oid(HASH_OID[c.hash]), ...(c.nullParams ? [Buffer.from([5, 0])] : [])), tlv(0x04, c.nameHash), tlv(0x04, c.keyHash), integer(c.serial));
}

export function ocspRequest(spec: OcspRequestSpec): Buffer {
  const reqs = spec.certIds.map((c) => seq(certId(c), ...(spec.singleExtensions ? [tlv(0xa0, seq(seq(oid('1.3.6.1.5.5.7.48.1.7'), tlv(0x04, seq()))))] : [])));
  const exts: Buffer[] = [];
  if (spec.nonce) exts.push(seq(oid(OIDS.ocspNonce), tlv(0x04, tlv(0x04, spec.nonce))));
  for (const [o, critical, v] of spec.extensions ?? []) exts.push(seq(oid(o), ...(critical ? [Buffer.from([1, 1, 0xff])] : []), tlv(0x04, v)));
  const tbs = seq(
    ...(spec.version ? [tlv(0xa0, Buffer.from([2, 1, 0]))] : []),
    ...(spec.requestorName ? [tlv(0xa1, tlv(0xa4, seq(set(seq(oid(OIDS.cn), tlv(0x0c, Buffer.from('requestor')))))))] : []),
    seq(...reqs),
    ...(exts.length ? [tlv(0xa2, seq(...exts))] : []),
  );
  const sig = spec.signature ? [tlv(0xa0, seq(seq(oid(OIDS.ecdsaSha256)), tlv(0x03, Buffer.from([0, 1, 2, 3]))))] : [];
  return seq(tbs, ...sig);
}
