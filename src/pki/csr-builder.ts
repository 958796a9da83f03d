/**
 * Builds a PKCS#10 request (RFC 2986) for keys Signet generates itself (`signet issue
 * --generate-key`), so server-generated keys go through exactly the same parsing, proof of
 * possession and policy as any client's CSR.
 */
import { createPublicKey } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { bitString, objectIdentifier, octetString, sequence, set, smallInteger, tlv } from './der.js';
import { encodeName } from './dn.js';
import { EXT } from './extensions.js';
import { signerFor, type Signer, type TrustedKey } from './keys.js';
import { encodeSan } from './leaf-template.js';
import type { SanEntry } from './names.js';

export async function buildCsr(privateKey: TrustedKey, commonName: string | undefined, sans: SanEntry[]): Promise<Buffer> {
  return buildCsrWith(signerFor(privateKey), createPublicKey(privateKey).export({ format: 'der', type: 'spki' }), commonName, sans);
}

/** The same for a key that stays in the key store (the SCEP RA key): its Signer and public key. */
export async function buildCsrWith(signer: Signer, spki: Buffer, commonName: string | undefined, sans: SanEntry[]): Promise<Buffer> {
  const attrs: Buffer[] = [];
  if (sans.length) {
    const exts = sequence(sequence(objectIdentifier(EXT.subjectAltName), octetString(encodeSan(sans))));
    attrs.push(sequence(objectIdentifier('1.2.840.113549.1.9.14'), set(exts)));
  }
  const info = sequence(smallInteger(0), encodeName(commonName ? [{ type: '2.5.4.3', value: commonName }] : []), spki, tlv(0xa0, ...attrs));
  return sequence(info, Buffer.from(AsnConvert.serialize(signer.algorithm)), bitString(await signer.sign(info)));
}

/** `dns:x`, `ip:x`, `email:x`, `uri:x`, or a bare value whose form decides the type. */
export function parseSanArg(arg: string): SanEntry {
  const m = /^(dns|ip|email|uri):(.*)$/i.exec(arg);
  if (m) return { type: m[1]!.toLowerCase() as SanEntry['type'], value: m[2]! };
  if (/^[0-9.]+$/.test(arg) || arg.includes(':')) return { type: 'ip', value: arg };
  if (arg.includes('@')) return { type: 'email', value: arg };
  return { type: 'dns', value: arg };
}
