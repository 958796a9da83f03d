/**
 * The OCSP responder (RFC 6960, RFC 5019 profile). Answers come from a cache of pre-signed
 * responses keyed by the request's exact CertID bytes, so a status query normally costs a map
 * lookup and no signature. A response is signed on a miss, re-signed at half-life in the
 * background while it is being asked for, and re-signed at once when the certificate's status
 * changes (heard on the status bus, ca/status-bus.ts: from this process, another worker, or a
 * poll of statusChangedAt for other replicas).
 *
 * Nonces (RFC 8954): a single-request query is answered from the cache without the nonce, as
 * RFC 5019 allows; several CertIDs in one request are signed on demand and echo the nonce.
 * Responses are signed by a delegated responder certificate per CA, rotated at half-life.
 *
 * Serials Signet never issued cost a signature each, and anyone can ask for new ones: their
 * `unknown` answers live in a bounded LRU of their own (a flood of them never evicts the
 * answers for real certificates), and signing them — like every multi-CertID response — draws
 * on a per-process budget (onDemandPerSecond). Beyond it the answer is the unsigned `tryLater`
 * (RFC 6960 §2.3); answers for issued certificates are never held back by it.
 */
import { keyUriDetail } from '../keystore/key-store.js';
import { performance } from 'node:perf_hooks';
import { randomUUID } from 'node:crypto';
import { SignetError } from '../errors.js';
import { inspectCertificate, newSerial, serialHex } from '../pki/certificate.js';
import { commonNameOf } from '../pki/dn.js';
import {
  buildBasicOcspResponse,
  encodeCertId,
  encodeOcspErrorResponse,
  encodeSingleResponse,
  issuerHashes,
  OcspMalformed,
  OcspUnknownHashAlgorithm,
  parseOcspRequest,
  type OcspCertIdRequest,
  type OcspCertStatus,
} from '../pki/ocsp.js';
import type { RevocationReason } from '../pki/crl.js';
import { buildResponderTbs } from '../pki/responder-template.js';
import type { KeyAlgorithm, Signer } from '../pki/keys.js';
import { appendAudit } from './audit.js';
import { BoundedLru, TokenBucket } from './bounded-lru.js';
import type { CaContext } from './context.js';
import type { StatusBus, StatusDelivery } from './status-bus.js';
import { auditedCaRevocation } from './issuers.js';
import { lintFailure, prepareCertificate, signerAlgorithmDer, signPrepared } from './signing.js';
import { isPqSignature, isSlhDsa } from '../pki/post-quantum.js';

export interface OcspOptions {
  validityMinutes: number;
  responderDays: number;
  pollMs: number;
  maxCached?: number;
  /** Signatures a second for never-issued serials and multi-CertID requests (burst: one second's worth). */
  onDemandPerSecond?: number;
  /** Cached `unknown` answers (LRU). */
  maxUnknownCached?: number;
}

/** How a request was answered: from a cached response, with a new signature, or refused for now. */
export type OcspOutcome = 'cached' | 'signed' | 'try-later';

const TRY_LATER = encodeOcspErrorResponse('tryLater');
/** Least time between two reloads of the issuer index caused by requests naming an unknown issuer. */
const ISSUER_RELOAD_MS = 1000;

interface Responder {
  caId: string;
  certDer: Buffer;
  keyHash: Buffer;
  signer: Signer;
  notBefore: Date;
  notAfter: Date;
}
interface Cached {
  der: Buffer;
  thisUpdate: Date;
  nextUpdate: Date;
  refreshAt: number;
  serial: string;
}
interface IssuerEntry {
  caId: string;
  online: boolean;
}

export interface OcspAnswer {
  der: Buffer;
  cacheable?: { thisUpdate: Date; nextUpdate: Date };
  httpStatus: number;
}

export class OcspService {
  private readonly cache = new Map<string, Cached>();
  private readonly bySerial = new Map<string, Set<string>>();
  /**
   * Signings in flight, by serial. A status change while one is between reading the status and
   * caching its answer marks it stale: it still answers the request that raced the change, but
   * is not cached, or it would serve the old status until the next poll.
   */
  private readonly signing = new Map<string, Set<{ stale: boolean }>>();
  private issuers = new Map<string, IssuerEntry>();
  private readonly responders = new Map<string, Promise<Responder>>();
  private readonly signedCount = new Map<string, number>();
  private issuerReload?: Promise<void>;
  private lastIssuerLoad = 0;
  private timers: NodeJS.Timeout[] = [];
  private unsubscribe?: () => void;
  private readonly maxCached: number;
  /** `unknown` answers, apart from `cache` so that they cannot push out real certificates' answers. */
  private readonly unknown: BoundedLru<string, Cached>;
  private readonly onDemand: TokenBucket;
  private observer?: (outcome: OcspOutcome) => void;

  constructor(
    private readonly ctx: CaContext,
    private readonly bus: StatusBus,
    private readonly opts: OcspOptions,
  ) {
    this.maxCached = opts.maxCached ?? 200_000;
    this.unknown = new BoundedLru(opts.maxUnknownCached ?? 10_000, (key, e) => this.unindex(e.serial, key));
    const rate = opts.onDemandPerSecond ?? 100;
    this.onDemand = new TokenBucket(rate, Math.max(1, rate), () => ctx.now().getTime());
  }

  /** Hears how each request was answered (the signet_ocsp_responses_total metric). */
  observe(fn: (outcome: OcspOutcome) => void): void {
    this.observer = fn;
  }

  /** Serving processes only: the CLI shares the services but must not sign OCSP responses. */
  async start(): Promise<void> {
    this.unsubscribe = this.bus.subscribe((d) => this.onStatusChange(d));
    await this.loadIssuers();
    const flush = setInterval(() => {
      this.flushAudit().catch((e) => this.ctx.log.warn({ err: e }, 'OCSP audit flush failed'));
    }, 10_000);
    const issuers = setInterval(() => {
      this.loadIssuers().catch(() => undefined);
    }, 30_000);
    for (const t of [flush, issuers]) t.unref();
    this.timers = [flush, issuers];
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.unsubscribe?.();
    await this.flushAudit().catch(() => undefined);
  }

  /** Index of (hash algorithm, issuer name hash, issuer key hash) → CA, for every CA we hold. */
  async loadIssuers(): Promise<void> {
    // Monotonic time, not ctx.now(): it paces a real timer (reloadIssuersOnMiss).
    this.lastIssuerLoad = performance.now();
    const rows = await this.ctx.stores.ocsp.issuers();
    const next = new Map<string, IssuerEntry>();
    for (const r of rows) {
      const h = issuerHashes(Buffer.from(r.certificateDer));
      for (const alg of ['sha1', 'sha256', 'sha384', 'sha512'] as const) {
        next.set(`${alg}:${h[alg].nameHash.toString('hex')}:${h[alg].keyHash.toString('hex')}`, { caId: r.id, online: r.keyId !== null });
      }
    }
    this.issuers = next;
  }

  /** Handles one DER request; never throws for bad input (answers with an OCSP error status). */
  async respond(der: Uint8Array): Promise<OcspAnswer> {
    let parsed;
    try {
      parsed = parseOcspRequest(der);
    } catch (e) {
      if (e instanceof OcspUnknownHashAlgorithm) return { der: encodeOcspErrorResponse('unauthorized'), httpStatus: 200 };
      if (e instanceof OcspMalformed) return { der: encodeOcspErrorResponse('malformedRequest'), httpStatus: 400 };
      throw e;
    }
    const reqs = parsed.requests;
    // A CA created since the index was loaded (by the API, the CLI or another replica) is not in it yet.
    if (reqs.some((r) => !this.issuerFor(r))) await this.reloadIssuersOnMiss();
    for (const r of reqs) {
      const issuer = this.issuerFor(r);
      if (!issuer?.online) return { der: encodeOcspErrorResponse('unauthorized'), httpStatus: 200 };
    }
    if (reqs.length === 1) {
      const c = await this.single(reqs[0]!);
      if (!c) return this.tryLater();
      return { der: c.der, cacheable: { thisUpdate: c.thisUpdate, nextUpdate: c.nextUpdate }, httpStatus: 200 };
    }
    // Several CertIDs: one response, signed now, echoing the nonce. All must share an issuer.
    const caIds = new Set(reqs.map((r) => this.issuerFor(r)!.caId));
    if (caIds.size > 1) return { der: encodeOcspErrorResponse('malformedRequest'), httpStatus: 400 };
    if (!this.onDemand.take()) return this.tryLater();
    const caId = [...caIds][0]!;
    const responder = await this.responder(caId);
    const now = this.ctx.now();
    const next = new Date(now.getTime() + this.opts.validityMinutes * 60_000);
    const singles: Buffer[] = [];
    for (const r of reqs)
      singles.push(encodeSingleResponse({ certIdDer: r.certIdDer, status: await this.statusOf(caId, r.serial), thisUpdate: now, nextUpdate: next }));
    const out = await buildBasicOcspResponse({
      responderKeyHash: responder.keyHash,
      producedAt: now,
      singleResponses: singles,
      nonce: parsed.nonce,
      signer: responder.signer,
      responderCertDer: responder.certDer,
    });
    this.count(caId);
    this.observer?.('signed');
    return { der: out, httpStatus: 200 };
  }

  private tryLater(): OcspAnswer {
    this.observer?.('try-later');
    return { der: TRY_LATER, httpStatus: 200 };
  }

  /**
   * A CA created elsewhere (the CLI, another replica) is found by reloading on a miss. Misses
   * share one reload, and reloads are at least ISSUER_RELOAD_MS apart: a flood of made-up
   * issuers costs one query a second, not one per request (a miss waits for the next reload).
   */
  private reloadIssuersOnMiss(): Promise<void> {
    const wait = Math.max(0, this.lastIssuerLoad + ISSUER_RELOAD_MS - performance.now());
    this.issuerReload ??= new Promise((resolve) => setTimeout(resolve, wait))
      .then(() => this.loadIssuers())
      .catch((e) => {
        this.ctx.log.warn({ err: e }, 'OCSP issuer reload failed');
      })
      .finally(() => {
        this.issuerReload = undefined;
      });
    return this.issuerReload;
  }

  private issuerFor(r: OcspCertIdRequest): IssuerEntry | undefined {
    return this.issuers.get(`${r.hashAlgorithm}:${r.issuerNameHash.toString('hex')}:${r.issuerKeyHash.toString('hex')}`);
  }

  /** The answer for one CertID, or null: a never-issued serial beyond the on-demand budget. */
  private async single(r: OcspCertIdRequest): Promise<Cached | null> {
    const key = r.certIdDer.toString('hex');
    const hit = this.cache.get(key);
    const now = this.ctx.now().getTime();
    if (hit && now < hit.nextUpdate.getTime()) {
      if (now >= hit.refreshAt) {
        hit.refreshAt = Infinity;
        void this.sign(key, r).catch(() => undefined);
      }
      this.observer?.('cached');
      return hit;
    }
    const unknown = this.unknown.get(key);
    if (unknown && now < unknown.nextUpdate.getTime()) {
      this.observer?.('cached');
      return unknown;
    }
    return this.sign(key, r);
  }

  private async sign(key: string, r: OcspCertIdRequest): Promise<Cached | null> {
    const serial = serialHex(r.serial);
    const flight = { stale: false };
    let flights = this.signing.get(serial);
    if (!flights) this.signing.set(serial, (flights = new Set()));
    flights.add(flight);
    try {
      const caId = this.issuerFor(r)!.caId;
      const responder = await this.responder(caId);
      const status = await this.statusOf(caId, r.serial);
      // Anyone can name a new never-issued serial: those signatures are budgeted.
      if (status.kind === 'unknown' && !this.onDemand.take()) return null;
      const thisUpdate = new Date(Math.floor(this.ctx.now().getTime() / 1000) * 1000);
      const nextUpdate = new Date(thisUpdate.getTime() + this.opts.validityMinutes * 60_000);
      const single = encodeSingleResponse({ certIdDer: r.certIdDer, status, thisUpdate, nextUpdate });
      const der = await buildBasicOcspResponse({
        responderKeyHash: responder.keyHash,
        producedAt: thisUpdate,
        singleResponses: [single],
        signer: responder.signer,
        responderCertDer: responder.certDer,
      });
      this.count(caId);
      this.observer?.('signed');
      // `unknown` answers are not refreshed ahead of time: asked again after nextUpdate, they are signed again.
      const entry: Cached = {
        der,
        thisUpdate,
        nextUpdate,
        refreshAt: status.kind === 'unknown' ? Infinity : thisUpdate.getTime() + (nextUpdate.getTime() - thisUpdate.getTime()) / 2,
        serial,
      };
      if (flight.stale) return entry;
      if (status.kind === 'unknown') this.unknown.set(key, entry);
      else {
        if (this.cache.size >= this.maxCached) this.evictOldest();
        this.cache.set(key, entry);
      }
      let keys = this.bySerial.get(serial);
      if (!keys) this.bySerial.set(serial, (keys = new Set()));
      keys.add(key);
      return entry;
    } finally {
      flights.delete(flight);
      if (!flights.size && this.signing.get(serial) === flights) this.signing.delete(serial);
    }
  }

  private evictOldest(): void {
    const oldest = this.cache.keys().next();
    if (oldest.done) return;
    const e = this.cache.get(oldest.value)!;
    this.cache.delete(oldest.value);
    this.unindex(e.serial, oldest.value);
  }

  /** Forgets one cached answer's key in the per-serial index (and the serial, once it has none). */
  private unindex(serial: string, key: string): void {
    const keys = this.bySerial.get(serial);
    if (!keys) return;
    keys.delete(key);
    if (!keys.size) this.bySerial.delete(serial);
  }

  /**
   * Status from the database: a leaf certificate, or a child CA certificate, of this CA. One
   * prepared statement on the driver (hot-reads.ts): this is what every never-issued serial
   * costs, so it must stay cheap.
   */
  private async statusOf(caId: string, serialBytes: Buffer): Promise<OcspCertStatus> {
    const rows = (await this.ctx.stores.ocsp.issuedWithSerial(serialHex(serialBytes))).filter((r) => r.issuerId === caId);
    const row = rows.find((r) => r.kind === 'leaf') ?? rows[0];
    // RFC 6960 §2.2: never issued by this CA → unknown (not good).
    if (!row) return { kind: 'unknown' };
    // Leaves are good | revoked | hold (a hold is revoked with reason certificateHold); CAs are revoked or not.
    const revoked = row.kind === 'leaf' ? row.status !== 'good' : row.status === 'revoked';
    if (row.kind === 'ca' && !revoked) {
      // A CA revocation is anchored in the audit trail, whatever the row says (issuers.ts).
      const child = await this.ctx.stores.ocsp.childCaId(caId, serialHex(serialBytes));
      const audited = child ? await auditedCaRevocation(this.ctx.stores.cas, child) : null;
      if (audited) {
        this.ctx.log.error(
          { caId: child, revokedAtEvent: audited.seq },
          'CA row says it is not revoked, but the audit trail recorded its revocation: the row was changed in the database; OCSP answers revoked',
        );
        return { kind: 'revoked', revokedAt: audited.time, reason: (audited.reason ?? undefined) as RevocationReason | undefined };
      }
    }
    return revoked
      ? { kind: 'revoked', revokedAt: row.revokedAt ?? new Date(0), reason: (row.revocationReason ?? undefined) as RevocationReason | undefined }
      : { kind: 'good' };
  }

  /** Drops cached answers for a serial and, when asked, re-signs the SHA-1 CertID form at once. */
  async invalidate(serial: string, presign: boolean): Promise<void> {
    const keys = this.bySerial.get(serial);
    const requests: OcspCertIdRequest[] = [];
    if (keys)
      for (const k of keys) {
        this.cache.delete(k);
        this.unknown.delete(k);
      }
    this.bySerial.delete(serial);
    for (const f of this.signing.get(serial) ?? []) f.stale = true;
    if (!presign) return;
    const caId = await this.ctx.stores.ocsp.issuerOfLeaf(serial);
    const caRow = caId ? await this.ctx.stores.cas.get(caId) : null;
    if (!caId || !caRow?.keyId) return;
    const h = issuerHashes(Buffer.from(caRow.certificateDer)).sha1;
    const serialBytes = Buffer.from(serial, 'hex');
    const certIdDer = encodeCertId({ hashAlgorithm: 'sha1', issuerNameHash: h.nameHash, issuerKeyHash: h.keyHash, serial: serialBytes });
    requests.push({ hashAlgorithm: 'sha1', issuerNameHash: h.nameHash, issuerKeyHash: h.keyHash, serial: serialBytes, certIdDer });
    for (const r of requests) await this.sign(r.certIdDer.toString('hex'), r);
  }

  /**
   * A status change, wherever it was made. A CA change reloads the issuer index. A certificate
   * changed here or by another worker has its answer re-signed at once (cached or not: it is
   * about to be asked for). A polled serial may be any certificate changed lately, this host's
   * own included, so only an answer in the cache is re-signed; the promise makes the poller
   * re-sign one at a time.
   */
  private onStatusChange(d: StatusDelivery): Promise<void> | undefined {
    if (d.origin === 'replica') return this.bySerial.has(d.change.serial) ? this.invalidate(d.change.serial, true) : undefined;
    const { change } = d;
    if (change.kind === 'ca') {
      this.loadIssuers().catch(() => undefined);
      return undefined;
    }
    this.invalidate(change.serial, true).catch((e: unknown) => this.ctx.log.warn({ err: e, serial: change.serial }, 'OCSP re-sign failed'));
    return undefined;
  }

  private async responder(caId: string): Promise<Responder> {
    const hit = this.responders.get(caId);
    if (hit) {
      const r = await hit.catch(() => undefined);
      const now = this.ctx.now().getTime();
      if (r && now < (r.notBefore.getTime() + r.notAfter.getTime()) / 2) return r;
      this.responders.delete(caId);
    }
    const p = this.loadOrIssueResponder(caId);
    this.responders.set(caId, p);
    p.catch(() => this.responders.delete(caId));
    return p;
  }

  private async loadOrIssueResponder(caId: string): Promise<Responder> {
    const now = this.ctx.now();
    const existing = await this.ctx.stores.ocsp.currentResponder(caId, now);
    if (existing && now.getTime() < (existing.notBefore.getTime() + existing.notAfter.getTime()) / 2) {
      return this.asResponder(caId, Buffer.from(existing.certificateDer), await this.ctx.keys.signer(existing.keyId));
    }
    const ca = await this.ctx.stores.cas.get(caId);
    if (!ca?.keyId) throw new SignetError('conflict', `CA ${caId} has no online key to sign an OCSP responder certificate`);
    const caSigner = await this.ctx.keys.signer(ca.keyId);
    const caParts = inspectCertificate(ca.certificateDer);
    return this.ctx.db.transaction(async (tx) => {
      const key = await this.ctx.keys.generate(responderKeyFor(ca.keyAlgorithm), tx, 'responder');
      const notBefore = new Date(Math.floor((now.getTime() - 60_000) / 1000) * 1000);
      let notAfter = new Date(notBefore.getTime() + this.opts.responderDays * 86_400_000);
      if (notAfter > caParts.notAfter) notAfter = caParts.notAfter;
      const serial = newSerial();
      const spkiDer = key.publicKey.export({ format: 'der', type: 'spki' });
      const signatureAlgorithmDer = signerAlgorithmDer(caSigner);
      const tbs = buildResponderTbs({
        serial,
        commonName: `${commonNameOf(caParts.subjectNameDer) ?? caId} OCSP Responder`,
        spkiDer,
        notBefore,
        notAfter,
        issuer: { nameDer: caParts.subjectNameDer, keyId: caParts.subjectKeyId },
        signatureAlgorithmDer,
      });
      // The same prepare → lint → sign as every certificate Signet signs (signing.ts).
      const prepared = prepareCertificate(
        tbs,
        {
          kind: 'ocsp-responder',
          expect: {
            issuerNameDer: caParts.subjectNameDer,
            issuerKeyId: caParts.subjectKeyId,
            issuerNotAfter: caParts.notAfter,
            signatureAlgorithmDer,
            maxValidityMs: this.opts.responderDays * 86_400_000,
            spkiDer,
            extKeyUsage: ['ocspSigning'],
          },
        },
        caSigner,
      );
      if (prepared.findings.length) {
        this.ctx.log.error({ caId, findings: prepared.findings }, 'pre-issuance lint of an OCSP responder certificate failed; nothing was signed');
        throw lintFailure('ocsp-responder', prepared.findings, serialHex(serial));
      }
      const der = await signPrepared(prepared);
      await this.ctx.stores.ocsp.insertResponder({ id: randomUUID(), caId, certificateDer: der, keyId: key.id, notBefore, notAfter }, tx);
      await appendAudit(tx, {
        actor: 'system',
        action: 'ocsp.responder.issued',
        target: caId,
        details: { serial: serialHex(serial), notAfter: notAfter.toISOString(), ...keyUriDetail(ca.keyId) },
      });
      return this.asResponder(caId, der, key.signer);
    });
  }

  private asResponder(caId: string, certDer: Buffer, signer: Signer): Responder {
    const p = inspectCertificate(certDer);
    return { caId, certDer, keyHash: issuerHashes(certDer).sha1.keyHash, signer, notBefore: p.notBefore, notAfter: p.notAfter };
  }

  private count(caId: string): void {
    this.signedCount.set(caId, (this.signedCount.get(caId) ?? 0) + 1);
  }

  /** One audit event per CA per interval for the OCSP responses signed, not one per signature. */
  async flushAudit(): Promise<void> {
    if (!this.signedCount.size) return;
    const counts = [...this.signedCount.entries()];
    this.signedCount.clear();
    await this.ctx.db.transaction(async (tx) => {
      for (const [caId, n] of counts) await appendAudit(tx, { actor: 'system', action: 'ocsp.responses.signed', target: caId, details: { count: n } });
    });
  }
}

/**
 * A post-quantum CA's answers stay post-quantum: its responder key is of the CA's own ML-DSA
 * level (an ECDSA responder would be the weak link a client trusts for status). An SLH-DSA root's
 * responder is ML-DSA-65: an SLH-DSA signature per OCSP answer would let anyone asking about
 * random serials keep the CPU busy.
 */
function responderKeyFor(caAlgorithm: string): KeyAlgorithm {
  if (!isPqSignature(caAlgorithm)) return 'ecdsa-p256';
  return isSlhDsa(caAlgorithm) ? 'ml-dsa-65' : caAlgorithm;
}
