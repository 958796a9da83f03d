/**
 * Which CA issued which, decided from the CA certificates, never from a row's parentId.
 *
 * A database writer without the master key can set `CertificateAuthority.parentId` to anything
 * (attack round 2, finding A): pointing the root at one of its intermediates made the root an
 * "issuing" CA, and pointing it at an intermediate under it made every chain walk loop forever.
 * So the column is only a hint of where to look: a CA is a root because its certificate says
 * so, and a parent link counts only once the child's certificate names the parent as its issuer
 * (issuer name, authority key identifier) and its signature verifies under the parent's key.
 * Every walk up the hierarchy is bounded: a CA seen twice or a chain deeper than
 * MAX_CHAIN_DEPTH is refused with an error naming it.
 */
import { AsnConvert } from '@peculiar/asn1-schema';
import { AuthorityKeyIdentifier } from '@peculiar/asn1-x509';
import { SignetError } from '../errors.js';
import { inspectCertificate, type CertificateParts } from '../pki/certificate.js';
import { nameToString } from '../pki/dn.js';
import { EXT } from '../pki/extensions.js';
import { verifySignature } from '../pki/keys.js';
import type { CaRecord } from '../model/ca.js';
import type { CaStore } from './ca-store.js';

/**
 * CAs between an issuing CA and its root, at most. Far beyond any hierarchy Signet makes (root,
 * intermediate, perhaps a second tier); it bounds the walk over rows someone may have rewritten.
 */
export const MAX_CHAIN_DEPTH = 16;

/** What a chain walk reads of a CA row. */
export type ChainCa = Pick<CaRecord, 'id' | 'parentId' | 'certificateDer'>;

const selfIssued = (c: Pick<CertificateParts, 'issuerNameDer' | 'subjectNameDer'>) => c.issuerNameDer.equals(c.subjectNameDer);

function authorityKeyIdOf(c: CertificateParts): Buffer | undefined {
  const ext = c.parsed.tbsCertificate.extensions?.find((e) => e.extnID === EXT.authorityKeyIdentifier);
  if (!ext) return undefined;
  try {
    const kid = AsnConvert.parse(ext.extnValue.buffer, AuthorityKeyIdentifier).keyIdentifier;
    return kid ? Buffer.from(kid.buffer) : undefined;
  } catch {
    return Buffer.alloc(0);
  } // unreadable: matches no key id
}

/** Whether `key`'s certificate signed `child` (false for a key node:crypto refuses). */
function signedBy(child: CertificateParts, parent: CertificateParts): boolean {
  try {
    return verifySignature(child.parsed.signatureAlgorithm.algorithm, parent.publicKey, child.tbs, Buffer.from(child.parsed.signatureValue));
  } catch {
    return false;
  }
}

/** Why the CA of `parent` did not issue `child`, or null if it did. */
export function notIssuedByReason(child: CertificateParts, parent: CertificateParts): string | null {
  if (!child.issuerNameDer.equals(parent.subjectNameDer)) {
    return `its certificate was issued by ${JSON.stringify(nameToString(child.issuerNameDer))}, not by ${JSON.stringify(nameToString(parent.subjectNameDer))}`;
  }
  const aki = authorityKeyIdOf(child);
  if (aki && !aki.equals(parent.subjectKeyId)) {
    return `its certificate's authority key identifier ${aki.toString('hex')} is not that CA's subject key identifier ${parent.subjectKeyId.toString('hex')}`;
  }
  if (!signedBy(child, parent)) return "its certificate's signature does not verify under that CA's key";
  return null;
}

/**
 * Whether a CA certificate is a root: it names itself as its issuer — whether or not its
 * self-signature verifies (relying parties do not check a trust anchor's self-signature, so a
 * leaf under a root with a broken one would still verify) — unless `parent`, another key of the
 * same name, signed it (a key-rollover certificate, an intermediate). A row's parentId alone
 * never makes a root an intermediate: the parent must have signed it.
 */
export function isRootCertificate(cert: CertificateParts, parent: CertificateParts | null): boolean {
  if (!selfIssued(cert)) return false;
  return !(parent && !parent.spkiDer.equals(cert.spkiDer) && notIssuedByReason(cert, parent) === null);
}

function parse(ca: ChainCa): CertificateParts {
  try {
    return inspectCertificate(ca.certificateDer);
  } catch (e) {
    throw new SignetError(
      'conflict',
      `CA ${ca.id}'s record holds no readable certificate (${(e as Error).message}): it was changed in the database (run \`signet audit verify\`)`,
    );
  }
}

const changed = 'its record was changed in the database (run `signet audit verify`)';

/**
 * Walks from `start` up to its root, each link proved by the certificates. Returns whether
 * `start` is itself a root, and the CAs from `start` up to, not including, the root (the chain
 * served with its leaves). Stops below a CA whose parent is not stored (an external
 * intermediate's issuer). A parent link the certificates do not prove, a CA met twice, or a
 * chain deeper than MAX_CHAIN_DEPTH: 409 naming the CA.
 */
export async function walkCaChain<T extends ChainCa>(start: T, get: (id: string) => Promise<T | null>): Promise<{ root: boolean; chain: T[] }> {
  const chain: T[] = [];
  const seen = new Set<string>();
  let cur = start;
  let curParts = parse(start);
  for (;;) {
    seen.add(cur.id);
    const parent = cur.parentId ? await get(cur.parentId) : null;
    const parentParts = parent ? parse(parent) : null;
    if (isRootCertificate(curParts, parentParts)) return { root: chain.length === 0, chain };
    chain.push(cur);
    if (!parent || !parentParts) return { root: false, chain };
    const why = notIssuedByReason(curParts, parentParts);
    if (why) throw new SignetError('conflict', `CA ${cur.id}'s record names CA ${parent.id} as its parent, but ${why}: ${changed}`);
    if (seen.has(parent.id))
      throw new SignetError('conflict', `the chain of CA ${start.id} comes back to CA ${parent.id}: a CA cannot be its own ancestor; ${changed}`);
    if (chain.length >= MAX_CHAIN_DEPTH)
      throw new SignetError('conflict', `the chain of CA ${start.id} is more than ${MAX_CHAIN_DEPTH} CAs deep below its root; ${changed}`);
    cur = parent;
    curParts = parentParts;
  }
}

/**
 * For `signet audit verify`: every CA row whose parentId disagrees with its certificate — a
 * parent that did not issue it (issuer name, key identifier, signature), a root given a parent,
 * or a parent that does not exist. One line per CA.
 */
export function caParentProblems(cas: ChainCa[]): string[] {
  const parsed = new Map<string, CertificateParts | null>();
  for (const ca of cas) {
    let parts: CertificateParts | null = null;
    try {
      parts = inspectCertificate(ca.certificateDer);
    } catch {
      /* reported elsewhere: not the CA of its certificate */
    }
    parsed.set(ca.id, parts);
  }
  const out: string[] = [];
  for (const ca of cas) {
    const parts = parsed.get(ca.id);
    if (!parts) continue;
    // No parent: a root, or an external intermediate (its issuer may be imported later: that
    // does not make the row wrong, and such a CA issues with only itself as its chain).
    if (ca.parentId === null) continue;
    const parentParts = parsed.get(ca.parentId);
    if (parentParts === undefined) {
      out.push(`CA ${ca.id}'s row names CA ${ca.parentId} as its parent, which does not exist`);
      continue;
    }
    if (parentParts === null) continue; // the parent's own row is reported
    if (isRootCertificate(parts, parentParts)) {
      out.push(
        `CA ${ca.id}'s row names CA ${ca.parentId} as its parent, but its certificate is a root (self-issued): its parentId was changed in the database; it does not sign leaves`,
      );
      continue;
    }
    const why = notIssuedByReason(parts, parentParts);
    if (why) out.push(`CA ${ca.id}'s row names CA ${ca.parentId} as its parent, but ${why} (its parentId was changed in the database)`);
  }
  return out;
}

/**
 * The cross-certificates served after a chain that ends below a rolled-over root: for the root
 * above the chain's top CA, the NewWithOld certificate its predecessor signed, then that one's
 * predecessor's, and so on (a root rolled over twice still reaches the first one). Only
 * cross-certificates in force (good, within validity), each checked against the certificates —
 * the new root's subject and key, signed by the predecessor — never a row's word alone.
 */
export async function crossChainAbove(
  cas: Pick<CaStore, 'get' | 'caCertificates'>,
  top: Pick<CaRecord, 'id' | 'parentId' | 'certificateDer'> | undefined,
  now: Date,
  /** CA certificates in the chain below (the walked chain's length): a path length constraint counts them. */
  below = 1,
): Promise<Buffer[]> {
  if (!top?.parentId) return [];
  let cur = await cas.get(top.parentId);
  if (!cur) return [];
  let curParts = inspectCertificate(cur.certificateDer);
  if (!isRootCertificate(curParts, null) || notIssuedByReason(inspectCertificate(top.certificateDer), curParts) !== null) return [];
  const out: Buffer[] = [];
  const seen = new Set<string>([cur.id]);
  while (cur.predecessorId && out.length < MAX_CHAIN_DEPTH) {
    const pred = await cas.get(cur.predecessorId);
    if (!pred || seen.has(pred.id)) break;
    const predParts = inspectCertificate(pred.certificateDer);
    const x = (await cas.caCertificates({ caId: cur.id, issuerId: pred.id })).find((c) => {
      if (c.kind !== 'cross' || c.status !== 'good' || c.notBefore > now || c.notAfter <= now) return false;
      const xp = inspectCertificate(c.certificateDer);
      return xp.subjectNameDer.equals(curParts.subjectNameDer) && xp.spkiDer.equals(curParts.spkiDer) && notIssuedByReason(xp, predParts) === null;
    });
    if (!x) break;
    // The cross-certificate and the older root each limit how many CA certificates may follow
    // them (RFC 5280 §4.2.1.9): a chain that breaks either is not offered (attack round 2, R1).
    const underX = below + out.length;
    const xLen = inspectCertificate(x.certificateDer).pathLen;
    if ((xLen !== undefined && underX > xLen) || (predParts.pathLen !== undefined && underX + 1 > predParts.pathLen)) break;
    out.push(Buffer.from(x.certificateDer));
    seen.add(pred.id);
    cur = pred;
    curParts = predParts;
  }
  return out;
}
