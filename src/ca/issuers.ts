/**
 * Issuing CAs, parsed once: the certificate's exact DER parts, the signer (a cached KeyObject),
 * the chain to serve, name constraints, and the extensions every leaf of that CA shares.
 * Entries are refreshed after a short time so a CA revoked or retired by another replica stops
 * issuing without a restart.
 *
 * A CA row in the database is not trusted to say which CA it is or whether it may still sign
 * (someone may write to the database without holding the master key). Before a CA signs:
 *   - its sealed key (which only the master key opens, bound to its key id) must be the key of
 *     its certificate — so a row cannot borrow another CA's key, and its certificate is one
 *     that CA's key holder made;
 *   - its id must be the one Signet derives from that certificate (kind + subject key id), so
 *     a profile pinned to a CA id gets that CA and no other row's certificate and key;
 *   - the audit trail must hold no `ca.revoked` event for it: a revocation is anchored in the
 *     trail, which the database alone cannot rewrite, so flipping a revoked CA back to active in
 *     its row does not make it sign again.
 *   - whether it is a root, and the chain served with its leaves, come from the certificates
 *     (ca-chain-check.ts), never from its row's parentId.
 * A row that fails is refused (409) and logged at error level.
 */
import { keyUriDetail } from '../keystore/key-store.js';
import { SignetError } from '../errors.js';
import { algorithmDer, inspectCertificate, toPem, type CertificateParts } from '../pki/certificate.js';
import { authorityInfoAccess, authorityKeyIdentifier, crlDistributionPoints, EXT, freshestCrl } from '../pki/extensions.js';
import type { LeafIssuer } from '../pki/leaf-template.js';
import { parseNameConstraintsExtension, type NameConstraints } from '../pki/names.js';
import type { Signer } from '../pki/keys.js';
import { caUrls, crlUrl, type CaContext } from './context.js';
import type { CaStore } from './ca-store.js';
import type { CaRecord } from '../model/ca.js';
import { crossChainAbove, walkCaChain } from './ca-chain-check.js';

/** The audit action that records a CA's revocation (revocation.ts). */
export const CA_REVOKED_ACTION = 'ca.revoked';

/** The id Signet gives a CA (hierarchy.ts): its kind and the first 5 bytes of its subject key identifier. */
export const caIdFor = (kind: 'root' | 'int' | 'ext', subjectKeyId: Buffer): string => `${kind}-${subjectKeyId.subarray(0, 5).toString('hex')}`;

/** Whether `id` is an id Signet would give the CA of this certificate. */
export function idMatchesCertificate(id: string, parts: Pick<CertificateParts, 'subjectKeyId'>): boolean {
  return (['root', 'int', 'ext'] as const).some((kind) => id === caIdFor(kind, parts.subjectKeyId));
}

export interface AuditedCaRevocation {
  id: string;
  seq: number;
  time: Date;
  parent: string | null;
  reason: string | null;
}

const revocationOf = (e: { seq: number; time: Date; target: string | null; details: string | null }): AuditedCaRevocation => {
  let d: { parent?: unknown; reason?: unknown } = {};
  try {
    d = JSON.parse(e.details ?? '{}') as typeof d;
  } catch {
    /* an unreadable event still revokes */
  }
  return {
    id: e.target ?? '',
    seq: e.seq,
    time: e.time,
    parent: typeof d.parent === 'string' ? d.parent : null,
    reason: typeof d.reason === 'string' ? d.reason : null,
  };
};

/**
 * The audited revocation of a CA (its `ca.revoked` event), whatever its row says; null if none.
 * A forged event could only stop a CA (which a database writer can do anyway), never restart one.
 */
export async function auditedCaRevocation(cas: Pick<CaStore, 'revocationEvents'>, caId: string): Promise<AuditedCaRevocation | null> {
  const [e] = await cas.revocationEvents(CA_REVOKED_ACTION, caId);
  return e ? revocationOf(e) : null;
}

/** Every audited CA revocation (CA revocations are rare: one indexed read). */
export async function auditedCaRevocations(cas: Pick<CaStore, 'revocationEvents'>): Promise<AuditedCaRevocation[]> {
  const events = await cas.revocationEvents(CA_REVOKED_ACTION);
  return events.filter((e) => e.target).map(revocationOf);
}

/**
 * Why a CA row may not be trusted to sign with `signer`, or null: its certificate is not the
 * key's, or its id is not its certificate's (see the module comment). Cheap: a key comparison
 * and a string match.
 */
export function caRecordProblem(id: string, parts: CertificateParts, signer: Signer): string | null {
  if (!signer.publicKey.export({ format: 'der', type: 'spki' }).equals(parts.spkiDer))
    return `CA ${id}'s certificate is not the certificate of its key: its record was changed in the database`;
  if (!idMatchesCertificate(id, parts))
    return `CA ${id} is not the CA of the certificate in its record (subject key id ${parts.subjectKeyId.toString('hex')}): its record was changed in the database`;
  return null;
}

export interface Issuer {
  id: string;
  status: string;
  /** A root by its certificate (ca-chain-check.ts isRootCertificate), which never signs leaves. */
  root: boolean;
  parts: CertificateParts;
  signer: Signer;
  algorithmDer: Buffer;
  leaf: LeafIssuer;
  nameConstraints?: NameConstraints;
  /** Issuer up to, not including, the root (PEM, concatenated), each link proved by the certificates; then any root rollover cross-certificate. */
  chainPem: string;
  chainDer: Buffer[];
  loadedAt: number;
  /** The CA key's pkcs11: URI when it is in a token (recorded with every issuance it signs). */
  keyUri?: string;
  /** The CA this one replaced, and (for a retiring CA) the one that replaced it: issuance moves to it. */
  predecessorId: string | null;
  successorId: string | null;
}

/** Longest line of successors followed; only a loop in tampered rows could reach it. */
const MAX_LINE = 10_000;

/**
 * Whether `successor` can stand for `predecessor` when issuance follows their link: a rotation's
 * successor has the same subject and the same name constraints, so a link a database writer
 * set between unlike CAs (to move a profile pinned to a name-constrained CA onto an
 * unconstrained one) is not followed. The certificates decide, not the row's predecessorId.
 */
export function sameIssuingCa(predecessor: Pick<CaRecord, 'certificateDer'>, successor: Pick<CaRecord, 'certificateDer'>): boolean {
  const a = inspectCertificate(predecessor.certificateDer);
  const b = inspectCertificate(successor.certificateDer);
  const nc = (p: CertificateParts) => {
    const e = p.parsed.tbsCertificate.extensions?.find((x) => x.extnID === EXT.nameConstraints);
    return e ? Buffer.from(e.extnValue.buffer) : Buffer.alloc(0);
  };
  return a.subjectNameDer.equals(b.subjectNameDer) && nc(a).equals(nc(b));
}

/**
 * `ca` or, when it was replaced, the newest CA of its line that is not (the successor's
 * successor…). `issuing`: only through successors that are the same issuing CA (sameIssuingCa);
 * a root's line changes name at each rollover, so the parent of a rotation follows any link.
 */
export async function latestInLine(ctx: Pick<CaContext, 'stores'>, ca: CaRecord, issuing = true): Promise<CaRecord> {
  let cur = ca;
  const seen = new Set([ca.id]);
  while (cur.status !== 'active' && seen.size < MAX_LINE) {
    const next = await ctx.stores.cas.successorOf(cur.id);
    if (!next || seen.has(next.id) || (issuing && !sameIssuingCa(cur, next))) break;
    seen.add(next.id);
    cur = next;
  }
  return cur;
}

const TTL_MS = 15_000;

/**
 * Why this CA may not sign a leaf, or null if it may. An issuing CA is a CA certificate that is
 * not a root (a root signs only CAs, CRLs and OCSP responders), active, with its key online.
 * The one predicate every issuance path checks right before signing.
 */
export function notIssuingReason(i: Pick<Issuer, 'id' | 'status' | 'root' | 'parts' | 'signer'>): string | null {
  if (!i.parts.isCa) return `CA ${i.id} is not a CA certificate`;
  if (i.root) return `CA ${i.id} is a root CA: a root signs only intermediate CAs, never end-entity certificates`;
  if (i.status !== 'active') return `CA ${i.id} is ${i.status} and does not issue`;
  if (!i.signer) return `CA ${i.id} is kept offline and cannot issue certificates`;
  return null;
}

export const isIssuingCa = (i: Issuer): boolean => notIssuingReason(i) === null;

export class IssuerRegistry {
  private readonly cache = new Map<string, Promise<Issuer>>();
  constructor(private readonly ctx: CaContext) {}

  async get(caId: string): Promise<Issuer> {
    const hit = this.cache.get(caId);
    if (hit) {
      const i = await hit.catch(() => undefined);
      if (i && this.ctx.now().getTime() - i.loadedAt < TTL_MS) return i;
    }
    const p = this.load(caId);
    this.cache.set(caId, p);
    p.catch(() => this.cache.delete(caId));
    return p;
  }

  invalidate(caId?: string): void {
    this.defaultCa = undefined;
    this.heads.clear();
    if (caId) this.cache.delete(caId);
    else this.cache.clear();
  }

  /**
   * The CA that issues for `caId` now: itself, or when it is retiring, its successor (and theirs).
   * Rotation moves issuance this way whatever named the old CA: a request, a profile, a renewal.
   */
  async current(caId: string): Promise<Issuer> {
    const first = await this.get(caId);
    if (first.status === 'active' || !first.successorId) return first;
    // Replaced (and maybe revoked since): the newest CA of its line, however long the line.
    const now = this.ctx.now().getTime();
    let head = this.heads.get(caId);
    if (!head || now - head.at >= TTL_MS) {
      const row = await this.ctx.stores.cas.get(caId);
      head = { id: row ? (await latestInLine(this.ctx, row)).id : caId, at: now };
      this.heads.set(caId, head);
    }
    return head.id === caId ? first : this.get(head.id);
  }

  /** caId → the newest CA of its line, as found at `at`. */
  private readonly heads = new Map<string, { id: string; at: number }>();

  /** Whether `caId` is one of `ids` or a successor of one of them (a profile that lists a CA allows its successors). */
  async inLineage(caId: string, ids: readonly string[]): Promise<boolean> {
    if (ids.includes(caId)) return true;
    const seen = new Set<string>([caId]);
    let cur = await this.ctx.stores.cas.get(caId);
    while (cur?.predecessorId && !seen.has(cur.predecessorId) && seen.size < MAX_LINE) {
      const pred = await this.ctx.stores.cas.get(cur.predecessorId);
      if (!pred || !sameIssuingCa(pred, cur)) return false;
      if (ids.includes(pred.id)) return true;
      seen.add(pred.id);
      cur = pred;
    }
    return false;
  }

  /**
   * The CA used when a request or profile names none: among active intermediates with an online
   * key, a leaf issuer (pathLen 0) first, the oldest lineage first — a successor takes its
   * predecessor's place, so a rotation does not hand the default to another CA.
   */
  async defaultCaId(): Promise<string> {
    if (this.defaultCa && this.ctx.now().getTime() - this.defaultCa.at < TTL_MS) return this.defaultCa.id;
    const id = await this.findDefaultCaId();
    this.defaultCa = { id, at: this.ctx.now().getTime() };
    return id;
  }

  private defaultCa?: { id: string; at: number };

  private async findDefaultCaId(): Promise<string> {
    const rows = await this.ctx.stores.cas.onlineActive({ intermediates: true });
    // A row's parentId and pathLen are only hints: a root by its certificate is never the default
    // whatever its row says, and a leaf issuer is one whose certificate has pathLen 0. A CA that
    // fails to load stays a candidate, so that using it fails with its own precise refusal.
    const candidates: { id: string; pathLen: number | null | undefined }[] = [];
    for (const r of rows) {
      const i = await this.get(r.id).catch(() => undefined);
      if (i?.root) continue;
      candidates.push({ id: r.id, pathLen: i ? i.parts.pathLen : r.pathLen });
    }
    const origins = new Map<string, number>();
    for (const r of rows) origins.set(r.id, await this.lineageOrigin(r));
    candidates.sort((a, b) => origins.get(a.id)! - origins.get(b.id)!);
    const pick = candidates.find((c) => c.pathLen === 0) ?? candidates[0];
    if (!pick) throw new SignetError('unavailable', 'no active issuing CA with an online key; create one with `signet ca create-intermediate`');
    return pick.id;
  }

  /** When the first CA of `ca`'s line of predecessors was created. */
  private async lineageOrigin(ca: { createdAt: Date; predecessorId: string | null }): Promise<number> {
    let origin = ca.createdAt.getTime();
    let id = ca.predecessorId;
    const seen = new Set<string>();
    while (id && !seen.has(id) && seen.size < MAX_LINE) {
      seen.add(id);
      const row = await this.ctx.stores.cas.get(id);
      if (!row) break;
      origin = row.createdAt.getTime();
      id = row.predecessorId;
    }
    return origin;
  }

  /** The ids of every CA that may sign leaves now (for refusals that name them). */
  async issuingCaIds(): Promise<string[]> {
    const rows = await this.ctx.stores.cas.onlineActive();
    const out: string[] = [];
    for (const r of rows) {
      const i = await this.get(r.id).catch(() => undefined);
      if (i && isIssuingCa(i)) out.push(r.id);
    }
    return out;
  }

  private async load(caId: string): Promise<Issuer> {
    const row = await this.ctx.stores.cas.get(caId);
    if (!row) throw new SignetError('not-found', `CA ${caId} does not exist`);
    if (!row.keyId) throw new SignetError('conflict', `CA ${caId} is kept offline and cannot issue certificates`);
    const parts = inspectCertificate(row.certificateDer);
    const signer = await this.ctx.keys.signer(row.keyId);
    const tampered = caRecordProblem(caId, parts, signer);
    if (tampered) {
      this.ctx.log.error({ caId }, `CA record failed its integrity check: ${tampered}; it does not sign`);
      throw new SignetError('conflict', `${tampered}; it does not sign (run \`signet audit verify\`)`);
    }
    let status = row.status;
    const revoked = await auditedCaRevocation(this.ctx.stores.cas, caId);
    if (revoked && status !== 'revoked') {
      this.ctx.log.error(
        { caId, status, revokedAtEvent: revoked.seq },
        'CA row says it is not revoked, but the audit trail recorded its revocation: the row was changed in the database; it does not sign',
      );
      status = 'revoked';
    }
    const urls = caUrls(this.ctx.config.publicUrl, caId);
    const ncExt = parts.parsed.tbsCertificate.extensions?.find((e) => e.extnID === EXT.nameConstraints);
    // Root-ness and the chain come from the certificates (bounded, each link verified), never from parentId.
    const { root, chain } = await walkCaChain(row, (id) => this.ctx.stores.cas.get(id));
    // After a root rollover, the cross-certificate(s) that lead to the old root follow (root-rollover.ts).
    const chainDer = [
      ...chain.map((c) => Buffer.from(c.certificateDer)),
      ...(await crossChainAbove(this.ctx.stores.cas, chain.at(-1), this.ctx.now(), chain.length)),
    ];
    const alg = algorithmDer(signer);
    return {
      id: caId,
      status,
      root,
      parts,
      signer,
      algorithmDer: alg,
      leaf: {
        nameDer: parts.subjectNameDer,
        signatureAlgorithmDer: alg,
        fixedExtensions: [authorityKeyIdentifier(parts.subjectKeyId), authorityInfoAccess({ ocspUrl: urls.ocsp, caIssuersUrl: urls.caIssuers })],
        crlExtensions: leafCrlExtensions(this.ctx.config, caId),
      },
      nameConstraints: ncExt ? parseNameConstraintsExtension(Buffer.from(ncExt.extnValue.buffer)) : undefined,
      chainDer,
      chainPem: chainDer.map((d) => toPem(d)).join(''),
      loadedAt: this.ctx.now().getTime(),
      ...keyUriDetail(row.keyId),
      predecessorId: row.predecessorId,
      successorId: status === 'active' ? null : ((await this.ctx.stores.cas.successorOf(caId))?.id ?? null),
    };
  }
}

/** A leaf's CRL extensions for each shard (0: unsharded, then 1..SIGNET_CRL_SHARDS): its shard's
 * CRL distribution point, and with delta CRLs that shard's delta as freshestCRL. */
function leafCrlExtensions(config: CaContext['config'], caId: string): Buffer[][] {
  const shards = config.SIGNET_CRL_SHARDS ?? 1;
  const out: Buffer[][] = [];
  for (let k = 0; k <= (shards > 1 ? shards : 0); k++) {
    const exts = [crlDistributionPoints(crlUrl(config.publicUrl, caId, k))];
    if (config.SIGNET_CRL_DELTAS) exts.push(freshestCrl(crlUrl(config.publicUrl, caId, k, true)));
    out.push(exts);
  }
  return out;
}
