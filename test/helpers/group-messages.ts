/**
 * Reads the DER of a key group's messages once openssl has decrypted or verified them
 * (src/groups/messages.ts): a minimal TLV walk, so that the content's reading is the test's
 * own while the cryptography stays openssl's.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { openssl, type TempDir } from './openssl.js';
export interface Tlv {
  tag: number;
  body: Buffer;
  whole: Buffer;
}
export function tlv(buf: Buffer, at = 0): Tlv {
  const tag = buf[at]!;
  let len = buf[at + 1]!;
  let off = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[off + i]!;
    off += n;
  }
  return { tag, body: buf.subarray(off, off + len), whole: buf.subarray(at, off + len) };
}
export function kids(t: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = 0; at < t.body.length; ) {
    const k = tlv(t.body, at);
    out.push(k);
    at += k.whole.length;
  }
  return out;
}
export const int = (t: Tlv) => Number(BigInt('0x' + (t.body.toString('hex') || '0')));
export const str = (t: Tlv) => t.body.toString('utf8');

/** GroupKeys: node "level.pos" → { version, key }. */
export function readGroupKeys(der: Buffer): { group: string; epoch: number; leaf: number; keys: Map<string, { version: number; key: Buffer }> } {
  const [group, epoch, leaf, list] = kids(tlv(der));
  const keys = new Map<string, { version: number; key: Buffer }>();
  for (const k of kids(list!)) {
    const [node, version, key] = kids(k);
    keys.set(str(node!), { version: int(version!), key: Buffer.from(key!.body) });
  }
  return { group: str(group!), epoch: int(epoch!), leaf: int(leaf!), keys };
}

/** The group key of a path: the root's (the highest level's node 0). */
export const rootOf = (keys: Map<string, { version: number; key: Buffer }>) => {
  const top = Math.max(...[...keys.keys()].map((k) => Number(k.split('.')[0])));
  return keys.get(`${top}.0`)!;
};

/** openssl cms -decrypt of a KEKRecipientInfo envelope with one KEK: the plaintext, or null if it does not open. */
export function openWithKek(tmp: TempDir, envelope: Buffer, keyId: string, key: Buffer): Buffer | null {
  const name = `kek-${randomBytes(6).toString('hex')}`;
  const file = tmp.file(`${name}.der`, envelope);
  const out = tmp.file(`${name}.out`);
  const r = openssl([
    'cms',
    '-decrypt',
    '-inform',
    'DER',
    '-in',
    file,
    '-secretkey',
    key.toString('hex'),
    '-secretkeyid',
    Buffer.from(keyId).toString('hex'),
    '-out',
    out,
  ]);
  return r.status === 0 ? readFileSync(out) : null;
}
