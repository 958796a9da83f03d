/**
 * Certificate extensions, each as the DER of one Extension. The CA decides every extension;
 * nothing here reads a CSR.
 */
import { createHash } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  AccessDescription,
  AuthorityInfoAccessSyntax,
  AuthorityKeyIdentifier,
  BasicConstraints,
  CRLDistributionPoints,
  DistributionPoint,
  DistributionPointName,
  ExtendedKeyUsage,
  GeneralName,
  KeyIdentifier,
  KeyUsage,
  KeyUsageFlags,
} from '@peculiar/asn1-x509';
import { booleanTrue, objectIdentifier, octetString, readElement, readHeader, sequence } from './der.js';

export const EXT = {
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  nameConstraints: '2.5.29.30',
  crlDistributionPoints: '2.5.29.31',
  freshestCrl: '2.5.29.46',
  certificatePolicies: '2.5.29.32',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  authorityInfoAccess: '1.3.6.1.5.5.7.1.1',
  ocspNoCheck: '1.3.6.1.5.5.7.48.1.5',
} as const;

export const EKU = {
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  codeSigning: '1.3.6.1.5.5.7.3.3',
  emailProtection: '1.3.6.1.5.5.7.3.4',
  ocspSigning: '1.3.6.1.5.5.7.3.9',
} as const;

export type KeyUsageName = 'digitalSignature' | 'nonRepudiation' | 'keyEncipherment' | 'dataEncipherment' | 'keyAgreement' | 'keyCertSign' | 'cRLSign';

export function extension(oid: string, critical: boolean, value: Uint8Array): Buffer {
  return critical ? sequence(objectIdentifier(oid), booleanTrue, octetString(value)) : sequence(objectIdentifier(oid), octetString(value));
}

const ser = (v: object) => Buffer.from(AsnConvert.serialize(v));

/**
 * Extensions that take a handful of values (basic constraints, key usage, EKU) are encoded once
 * per value: every leaf repeats them, and building the schema objects cost more than hashing
 * the certificate. The cached Buffers are only ever concatenated, never written to.
 */
function memo<A extends unknown[]>(key: (...a: A) => string, build: (...a: A) => Buffer): (...a: A) => Buffer {
  const cache = new Map<string, Buffer>();
  return (...a) => {
    const k = key(...a);
    let v = cache.get(k);
    if (!v) {
      v = build(...a);
      if (cache.size < 256) cache.set(k, v);
    }
    return v;
  };
}

export const basicConstraints: (ca: boolean, pathLen?: number) => Buffer = memo(
  (ca, pathLen) => `${ca}:${pathLen}`,
  (ca, pathLen) =>
    extension(EXT.basicConstraints, true, ser(new BasicConstraints(ca ? { cA: true, ...(pathLen === undefined ? {} : { pathLenConstraint: pathLen }) } : {}))),
);

export function keyUsage(usages: KeyUsageName[]): Buffer {
  let flags = 0;
  for (const u of usages) flags |= KeyUsageFlags[u];
  return keyUsageFlags(flags);
}
const keyUsageFlags = memo(
  (flags: number) => String(flags),
  (flags) => extension(EXT.keyUsage, true, ser(new KeyUsage(flags))),
);

export const extKeyUsage: (oids: string[]) => Buffer = memo(
  (oids) => oids.join(','),
  (oids) => extension(EXT.extKeyUsage, false, ser(new ExtendedKeyUsage(oids))),
);

/** The subjectPublicKey BIT STRING contents of an SPKI (without the unused-bits byte). */
export function subjectPublicKeyBits(spkiDer: Uint8Array): Buffer {
  const outer = readHeader(spkiDer, 0);
  const algEl = readElement(spkiDer, outer.headerLength);
  const bitOffset = outer.headerLength + algEl.length;
  const bit = readHeader(spkiDer, bitOffset);
  return Buffer.from(spkiDer.subarray(bitOffset + bit.headerLength + 1, bitOffset + bit.headerLength + bit.length));
}

/** RFC 7093 §2 method 1: the leftmost 160 bits of SHA-256 of the subjectPublicKey. */
export function keyIdentifier(spkiDer: Uint8Array): Buffer {
  return createHash('sha256').update(subjectPublicKeyBits(spkiDer)).digest().subarray(0, 20);
}

/** SubjectKeyIdentifier ::= KeyIdentifier ::= OCTET STRING (RFC 5280 §4.2.1.2). */
export function subjectKeyIdentifier(keyId: Uint8Array): Buffer {
  return extension(EXT.subjectKeyIdentifier, false, octetString(keyId));
}

export function authorityKeyIdentifier(keyId: Uint8Array): Buffer {
  return extension(EXT.authorityKeyIdentifier, false, ser(new AuthorityKeyIdentifier({ keyIdentifier: new KeyIdentifier(Buffer.from(keyId)) })));
}

export function authorityInfoAccess(opts: { ocspUrl?: string; caIssuersUrl?: string }): Buffer {
  const items: AccessDescription[] = [];
  if (opts.ocspUrl)
    items.push(new AccessDescription({ accessMethod: '1.3.6.1.5.5.7.48.1', accessLocation: new GeneralName({ uniformResourceIdentifier: opts.ocspUrl }) }));
  if (opts.caIssuersUrl)
    items.push(
      new AccessDescription({ accessMethod: '1.3.6.1.5.5.7.48.2', accessLocation: new GeneralName({ uniformResourceIdentifier: opts.caIssuersUrl }) }),
    );
  return extension(EXT.authorityInfoAccess, false, ser(new AuthorityInfoAccessSyntax(items)));
}

export function crlDistributionPoints(url: string): Buffer {
  const dp = new DistributionPoint({ distributionPoint: new DistributionPointName({ fullName: [new GeneralName({ uniformResourceIdentifier: url })] }) });
  return extension(EXT.crlDistributionPoints, false, ser(new CRLDistributionPoints([dp])));
}

/** freshestCRL (RFC 5280 §4.2.1.15): where the delta CRLs are; same syntax as cRLDistributionPoints. */
export function freshestCrl(url: string): Buffer {
  const dp = new DistributionPoint({ distributionPoint: new DistributionPointName({ fullName: [new GeneralName({ uniformResourceIdentifier: url })] }) });
  return extension(EXT.freshestCrl, false, ser(new CRLDistributionPoints([dp])));
}

export function ocspNoCheck(): Buffer {
  return extension(EXT.ocspNoCheck, false, Buffer.from([0x05, 0x00]));
}
