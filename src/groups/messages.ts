/**
 * The DER a key group's members read (the content of the CMS messages service.ts builds):
 *
 *   GroupKeys ::= SEQUENCE {          -- a welcome's content (EnvelopedData to the member)
 *     group UTF8String, epoch INTEGER, leaf INTEGER,
 *     keys SEQUENCE OF NodeKey }      -- the member's path, leaf first, the group key last
 *   NodeKey ::= SEQUENCE { node UTF8String, version INTEGER, key OCTET STRING (32) }
 *
 *   GroupRekey ::= SEQUENCE {         -- a rekey message's content (SignedData by the controller)
 *     group UTF8String, since INTEGER, epoch INTEGER,
 *     updates SEQUENCE OF NodeUpdate } -- in epoch order, bottom-up within an epoch
 *   NodeUpdate ::= SEQUENCE { epoch INTEGER, node UTF8String, version INTEGER,
 *     envelope ContentInfo }          -- EnvelopedData of the new key, one KEK recipient per child key
 *
 * A node is named "level.pos" (key-tree.ts); a key's version is the epoch that made it; a KEK
 * recipient's key identifier is the UTF-8 of "<group>/<node>/<version>" of the key it is wrapped under.
 */
import { octetString, sequence, smallInteger, tlv } from '../pki/der.js';
import { nodeName, type NodeRef } from './key-tree.js';

const utf8 = (s: string): Buffer => tlv(0x0c, Buffer.from(s, 'utf8'));

export interface NodeKey {
  node: NodeRef;
  version: number;
  key: Buffer;
}

/** The key identifier of a node key, as KEK recipients name it. */
export const kekIdOf = (group: string, node: NodeRef, version: number): Buffer => Buffer.from(`${group}/${nodeName(node)}/${version}`, 'utf8');

export function groupKeysDer(group: string, epoch: number, leaf: number, keys: NodeKey[]): Buffer {
  const nodeKeys = keys.map(nodeKeyDer);
  try {
    return groupKeysOfNodeKeys(group, epoch, leaf, nodeKeys);
  } finally {
    for (const b of nodeKeys) b.fill(0);
  }
}

/** One NodeKey's DER (building every welcome encodes each node once: welcome-worker.ts). */
export function nodeKeyDer(k: NodeKey): Buffer {
  const key = octetString(k.key);
  try {
    return sequence(utf8(nodeName(k.node)), smallInteger(k.version), key);
  } finally {
    key.fill(0);
  }
}

/** GroupKeys from the path's NodeKey encodings, leaf first. */
export function groupKeysOfNodeKeys(group: string, epoch: number, leaf: number, nodeKeys: Buffer[]): Buffer {
  const keys = sequence(...nodeKeys);
  try {
    return sequence(utf8(group), smallInteger(epoch), smallInteger(leaf), keys);
  } finally {
    keys.fill(0);
  }
}

/** One NodeUpdate; an epoch's record stores its updates concatenated (rekeyDer wraps them). */
export function nodeUpdateDer(epoch: number, node: NodeRef, version: number, envelope: Buffer): Buffer {
  return sequence(smallInteger(epoch), utf8(nodeName(node)), smallInteger(version), envelope);
}

export function rekeyDer(group: string, since: number, epoch: number, updates: Uint8Array[]): Buffer {
  return sequence(utf8(group), smallInteger(since), smallInteger(epoch), sequence(...updates));
}
