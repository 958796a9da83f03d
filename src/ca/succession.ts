/**
 * Replacing a CA without an outage: rotation of an intermediate (a new key and certificate under
 * the same parent, with the same subject), re-certification of a CA's key (`ca renew`), and the
 * hand-over both rotation and a root rollover (root-rollover.ts) end with.
 *
 * Each operation is one database transaction: the new key (the sealed store writes it in the
 * transaction), the signed certificate, the new row, the predecessor's status and every audit
 * event commit together or not at all. A process killed at any point leaves the old state or the
 * new one, never a half; running the command again after the old state does the whole thing, and
 * after the new state reports what was done (a CA has at most one successor: predecessorId is
 * unique, and the predecessor moves out of `active` only from `active`).
 *
 * What "moves to the successor" means (issuance.ts, issuers.ts): a retiring CA hands every
 * request to its successor, whether the request, a profile's caIds or a renewal named it; a
 * profile that lists a CA allows its successors; the default CA's place passes to its successor.
 */
import type { KeyObject } from 'node:crypto';
import { SignetError } from '../errors.js';
import { keyUriDetail } from '../keystore/key-store.js';
import type { CaRecord } from '../model/ca.js';
import { inspectCertificate, newSerial, serialHex, type CertificateParts } from '../pki/certificate.js';
import { EXT, extension } from '../pki/extensions.js';
import type { KeyAlgorithm } from '../pki/keys.js';
import type { Tx } from '../storage/database.js';
import { appendAudit } from './audit.js';
import {
  auditKeyGenerated,
  auditKeyUse,
  idFor,
  insertCa,
  isUniqueViolation,
  issuerOf,
  lifetimeDays,
  newCaKey,
  signCaCertificate,
  type SigningParent,
} from './ca-issuer.js';
import { isRootCertificate, notIssuedByReason } from './ca-chain-check.js';
import { auditedCaRevocation, caRecordProblem, idMatchesCertificate, latestInLine } from './issuers.js';
import { caUrls, type CaContext } from './context.js';
import { subordinateKeyProblem } from './key-policy.js';
import { faultPoint } from './fault-points.js';

const DAY_MS = 86_400_000;
/** The longest validity or overlap Signet accepts, in days (as the API's schemas). */
const MAX_DAYS = 36_500;

export interface RotateOptions {
  /** The successor's key algorithm; default the predecessor's. */
  keyAlgorithm?: KeyAlgorithm;
  /** Days from now in which the predecessor's certificates are renewed (ARI); default none: the last third of each one's life. */
  overlapDays?: number;
  /** The successor's validity; default the predecessor's lifetime (clamped to the parent). */
  validityDays?: number;
  /** The parent's key when the parent is kept offline. */
  parentKey?: KeyObject;
  actor?: string;
  sourceIp?: string;
}

export interface RotateResult {
  predecessor: CaRecord;
  successor: CaRecord;
  /** The rotation had been done before (this run found it and changed nothing). */
  alreadyRotated: boolean;
  /** What the operator should look at (the rotation was made). */
  warnings: string[];
}

/**
 * In `tx`, after the successor's row (with predecessorId) is inserted: the predecessor stops
 * issuing and the hand-over is audited (status changed, issuance moved). A predecessor that is
 * not active (an offline root in a rollover) keeps its status; the link alone records the succession.
 */
export async function handOver(
  ctx: CaContext,
  tx: Tx,
  p: { predecessor: CaRecord; successor: CaRecord; overlapEndsAt: Date | null; actor: string; sourceIp?: string; now?: Date },
): Promise<void> {
  // The rotation's own instant, when given: the overlap is counted from it and the caller reports it.
  const now = p.now ?? ctx.now();
  if (p.predecessor.status === 'active') {
    if (!(await ctx.stores.cas.markRetiring(p.predecessor.id, now, p.overlapEndsAt, tx)))
      throw new SignetError('conflict', `CA ${p.predecessor.id} changed status meanwhile; nothing was changed (run the command again)`);
    await appendAudit(tx, {
      actor: p.actor,
      action: 'ca.status.changed',
      target: p.predecessor.id,
      sourceIp: p.sourceIp,
      details: { from: 'active', to: 'retiring', successor: p.successor.id, overlapEndsAt: p.overlapEndsAt?.toISOString() ?? null },
    });
  }
  await appendAudit(tx, {
    actor: p.actor,
    action: 'ca.issuance.moved',
    target: p.predecessor.id,
    sourceIp: p.sourceIp,
    details: { from: p.predecessor.id, to: p.successor.id },
  });
}

/** The certificate of `ca` parsed, and why it may not be rotated, if so (400/409). */
async function rotatable(ctx: CaContext, ca: CaRecord): Promise<{ parentRow: CaRecord }> {
  const parts = inspectCertificate(ca.certificateDer);
  const parentRow = ca.parentId ? await ctx.stores.cas.get(ca.parentId) : null;
  const parentParts = parentRow ? inspectCertificate(parentRow.certificateDer) : null;
  if (isRootCertificate(parts, parentParts))
    throw new SignetError('bad-request', `CA ${ca.id} is a root: a root is replaced with \`signet ca rollover-root\`, not rotated`);
  if (ca.status !== 'active')
    throw new SignetError(
      'conflict',
      `CA ${ca.id} is ${ca.status}: only an active CA is rotated${ca.status === 'retiring' ? ' (it has no successor on record)' : ''}`,
    );
  if (!parentRow) throw new SignetError('conflict', `CA ${ca.id} was not issued by a CA Signet manages: rotate it at its issuer and import the new one`);
  return { parentRow };
}

/**
 * `signet ca rotate <caId>`: a new key and a new intermediate under the same parent, same
 * subject, pathLen and name constraints, new subject key id; issuance moves to it at once and the
 * predecessor becomes `retiring`. Run again after it succeeded: returns the successor, changes nothing.
 */
export async function rotateCa(ctx: CaContext, caId: string, opts: RotateOptions = {}): Promise<RotateResult> {
  const actor = opts.actor ?? 'cli';
  const ca = await ctx.stores.cas.get(caId);
  if (!ca) throw new SignetError('not-found', `CA ${caId} does not exist`);
  // Run again after it was done (its predecessor since retired too): what was done, unchanged.
  const done = ca.status === 'active' ? null : await ctx.stores.cas.successorOf(caId);
  if (done) {
    if (ca.status === 'revoked' && done.status !== 'revoked')
      throw new SignetError('conflict', `CA ${caId} is revoked; it had been rotated to ${done.id}, which issues in its place`);
    if (done.status === 'revoked')
      throw new SignetError(
        'conflict',
        `CA ${caId} was rotated and its successor ${done.id} is revoked; a CA has one successor: make a new issuing CA with \`signet ca create-intermediate\``,
      );
    const ignored =
      opts.keyAlgorithm && opts.keyAlgorithm !== done.keyAlgorithm
        ? [`--key ${opts.keyAlgorithm} was not used: ${caId} had already been rotated to ${done.id} (${done.keyAlgorithm}); rotate ${done.id} for another key`]
        : [];
    return { predecessor: ca, successor: done, alreadyRotated: true, warnings: ignored };
  }
  const { parentRow } = await rotatable(ctx, ca);
  // A parent that was itself replaced: its successor (same subject) signs the new certificate.
  const signingRow = await latestInLine(ctx, parentRow, false);
  const now = ctx.now();
  const keyAlgorithm = opts.keyAlgorithm ?? (ca.keyAlgorithm as KeyAlgorithm);
  const policy = subordinateKeyProblem(signingRow.keyAlgorithm, keyAlgorithm);
  if (policy) throw new SignetError('policy', `CA ${signingRow.id}'s policy refuses the new key of ${caId}: ${policy}`);
  let overlapEndsAt: Date | null = null;
  if (opts.overlapDays !== undefined) {
    if (!Number.isInteger(opts.overlapDays) || opts.overlapDays < 1 || opts.overlapDays > MAX_DAYS)
      throw new SignetError('bad-request', `--overlap-days must be a whole number of days from 1 to ${MAX_DAYS}`);
    overlapEndsAt = new Date(now.getTime() + opts.overlapDays * DAY_MS);
    if (overlapEndsAt > ca.notAfter)
      throw new SignetError(
        'bad-request',
        `an overlap of ${opts.overlapDays} days would end ${overlapEndsAt.toISOString()}, after CA ${caId} itself expires (${ca.notAfter.toISOString()}); at most ${Math.floor((ca.notAfter.getTime() - now.getTime()) / DAY_MS)} days`,
      );
  }
  const validityDays = opts.validityDays ?? lifetimeDays(ca);
  if (!Number.isInteger(validityDays) || validityDays < 1 || validityDays > MAX_DAYS)
    throw new SignetError('bad-request', `--validity-days must be a whole number of days from 1 to ${MAX_DAYS}`);
  const parent = await issuerOf(ctx, signingRow.id, opts.parentKey);
  if (parent.cert.notAfter.getTime() <= now.getTime() + DAY_MS)
    throw new SignetError(
      'conflict',
      `CA ${signingRow.id} expires ${parent.cert.notAfter.toISOString()}: renew it (\`signet ca renew\`) or roll the root over first`,
    );
  const old = inspectCertificate(ca.certificateDer);
  await refuseTampered(ctx, ca, old, inspectCertificate(parentRow.certificateDer));
  // The successor is the same CA to its relying parties: same subject, path length and name constraints.
  const nc = old.parsed.tbsCertificate.extensions?.find((e) => e.extnID === EXT.nameConstraints);
  const extra = nc ? [extension(EXT.nameConstraints, true, Buffer.from(nc.extnValue.buffer))] : [];
  const recordKey = await newCaKey(ctx, keyAlgorithm);
  try {
    const result = await ctx.db.transaction(async (tx) => {
      const key = await recordKey(tx);
      await auditKeyGenerated(tx, { actor, sourceIp: opts.sourceIp, replaces: caId, purpose: 'successor of the CA', keyAlgorithm, keyId: key.id });
      faultPoint('rotate:key-generated');
      const successor = await signSuccessor(ctx, tx, {
        parent: { id: signingRow.id, ...parent },
        subjectNameDer: old.subjectNameDer,
        spkiDer: key.publicKey.export({ format: 'der', type: 'spki' }),
        validityDays,
        pathLen: old.pathLen,
        extraExtensions: extra,
        keyId: key.id,
        keyAlgorithm,
        predecessor: ca,
        actor,
        sourceIp: opts.sourceIp,
      });
      faultPoint('rotate:successor-recorded');
      await handOver(ctx, tx, { predecessor: ca, successor, overlapEndsAt, actor, sourceIp: opts.sourceIp, now });
      faultPoint('rotate:handed-over');
      return {
        predecessor: { ...ca, status: 'retiring', retiringSince: now, overlapEndsAt },
        successor,
        alreadyRotated: false,
        warnings: urlWarnings(ctx, ca, signingRow.id),
      };
    });
    faultPoint('rotate:committed');
    return result;
  } catch (e) {
    // Two rotations at once: the second finds the unique predecessor link taken.
    if (isUniqueViolation(e)) throw new SignetError('conflict', `CA ${caId} was rotated meanwhile by another process; see \`signet ca list\``);
    throw e;
  }
}

/**
 * The successor's AIA and CRL URLs come from this process's SIGNET_PUBLIC_URL. A command run
 * with another one than the server's makes a successor that relying parties that fetch
 * revocation (Java PKIX) cannot check: say so.
 */
function urlWarnings(ctx: CaContext, predecessor: CaRecord, parentId: string): string[] {
  const { caIssuers } = caUrls(ctx.config.publicUrl, parentId);
  if (Buffer.from(predecessor.certificateDer).includes(Buffer.from(caIssuers))) return [];
  return [
    `the successor points relying parties at ${caIssuers} and the CRL and OCSP beside it (SIGNET_PUBLIC_URL ${ctx.config.publicUrl} of this command), but ${predecessor.id}'s certificate names other URLs: if this is not the server's public URL, rotate the successor again with the server's SIGNET_PUBLIC_URL`,
  ];
}

/**
 * What a rotation or renewal copies into a new certificate (subject, name constraints, for a
 * renewal the key itself) comes from the CA's row, which a database writer could change: the
 * row's certificate must be one its issuer signed (`issuer`: the parent, or a root itself), the
 * CA's own (its id derives from the certificate's key id, and its sealed key, when online, is
 * the certificate's), and the CA must not be revoked in the audit trail whatever its row says.
 */
async function refuseTampered(ctx: CaContext, ca: CaRecord, cert: CertificateParts, issuer: CertificateParts): Promise<void> {
  const caId = ca.id;
  const why =
    notIssuedByReason(cert, issuer) ??
    (ca.keyId ? caRecordProblem(caId, cert, await ctx.keys.signer(ca.keyId)) : null) ??
    (idMatchesCertificate(caId, cert) ? null : `the certificate in its record is another CA's`);
  if (why) {
    ctx.log.error({ caId }, `CA record failed its integrity check: ${why}`);
    throw new SignetError('conflict', `CA ${caId}'s record fails its integrity check (${why}): it was changed in the database; run \`signet audit verify\``);
  }
  if (await auditedCaRevocation(ctx.stores.cas, caId))
    throw new SignetError('conflict', `CA ${caId} was revoked (the audit trail records it; its record in the database says otherwise)`);
}

/**
 * In `tx`: signs and records a CA certificate that succeeds `predecessor` under `parent`
 * (audited as created and as a use of the parent's key). Shared with root-rollover.ts.
 */
export async function signSuccessor(
  ctx: CaContext,
  tx: Tx,
  p: {
    parent: SigningParent & { id: string };
    subjectNameDer: Buffer;
    spkiDer: Buffer;
    validityDays: number;
    pathLen: number | undefined;
    extraExtensions?: Buffer[];
    keyId: string;
    keyAlgorithm: string;
    predecessor: CaRecord;
    actor: string;
    sourceIp?: string;
  },
): Promise<CaRecord> {
  const der = await signCaCertificate(
    ctx,
    {
      serial: newSerial(),
      subjectNameDer: p.subjectNameDer,
      spkiDer: p.spkiDer,
      notBefore: ctx.now(),
      validityDays: p.validityDays,
      pathLen: p.pathLen,
      extraExtensions: p.extraExtensions,
      issuer: {
        nameDer: p.parent.cert.subjectNameDer,
        keyId: p.parent.cert.subjectKeyId,
        notAfter: p.parent.cert.notAfter,
        urls: caUrls(ctx.config.publicUrl, p.parent.id),
      },
    },
    p.parent.signer,
  );
  faultPoint('successor:certificate-signed');
  const parts = inspectCertificate(der);
  const id = idFor('int', parts.subjectKeyId);
  const row = await insertCa(ctx, tx, {
    id,
    name: p.predecessor.name,
    parentId: p.parent.id,
    der,
    keyId: p.keyId,
    keyAlgorithm: p.keyAlgorithm,
    status: 'active',
    predecessorId: p.predecessor.id,
  });
  await appendAudit(tx, {
    actor: p.actor,
    action: 'ca.created',
    target: id,
    sourceIp: p.sourceIp,
    details: {
      subject: row.subject,
      parent: p.parent.id,
      predecessor: p.predecessor.id,
      fingerprint: row.fingerprint,
      keyAlgorithm: p.keyAlgorithm,
      role: 'intermediate',
      ...keyUriDetail(p.keyId),
    },
  });
  await auditKeyUse(tx, {
    actor: p.actor,
    sourceIp: p.sourceIp,
    signerId: p.parent.id,
    keyId: p.parent.keyId,
    purpose: 'sign intermediate certificate',
    serial: row.serial,
  });
  return row;
}

export interface RenewResult {
  ca: CaRecord;
  /** Id of the CA certificate it replaced, kept (CaCertificate, kind superseded) and still answered for. */
  supersededId: string;
}

/**
 * `signet ca renew <caId>`: a new certificate for the same key — same subject, same subject key
 * id, new serial and validity, never beyond the parent. The CA keeps its id; the certificate it
 * replaces is kept as `superseded` and its issuer still answers for it (relying parties may hold
 * it in cached chains until they fetch the new one). A root is re-signed by its own key.
 */
export async function renewCa(
  ctx: CaContext,
  caId: string,
  opts: { validityDays?: number; parentKey?: KeyObject; actor?: string; sourceIp?: string } = {},
): Promise<RenewResult> {
  const actor = opts.actor ?? 'cli';
  const ca = await ctx.stores.cas.get(caId);
  if (!ca) throw new SignetError('not-found', `CA ${caId} does not exist`);
  if (ca.status === 'revoked' || ca.status === 'retired' || ca.status === 'retiring')
    throw new SignetError(
      'conflict',
      `CA ${caId} is ${ca.status}: a ${ca.status} CA is not re-certified${ca.status === 'retiring' ? ' (it was replaced; its successor is)' : ''}`,
    );
  const old = inspectCertificate(ca.certificateDer);
  const parentRow = ca.parentId ? await ctx.stores.cas.get(ca.parentId) : null;
  const root = isRootCertificate(old, parentRow ? inspectCertificate(parentRow.certificateDer) : null);
  if (!root && !parentRow) throw new SignetError('conflict', `CA ${caId} was not issued by a CA Signet manages: renew it at its issuer and import the new one`);
  const validityDays = opts.validityDays ?? lifetimeDays(ca);
  if (!Number.isInteger(validityDays) || validityDays < 1 || validityDays > 36_500)
    throw new SignetError('bad-request', '--validity-days must be a whole number of days from 1 to 36500');
  let signer: SigningParent & { id: string };
  if (root) {
    // A root certifies itself: its own key, online or from its file.
    signer = { id: caId, ...(await issuerOf(ctx, caId, opts.parentKey, true)) };
  } else {
    signer = { id: parentRow!.id, ...(await issuerOf(ctx, parentRow!.id, opts.parentKey)) };
    if (signer.cert.notAfter.getTime() <= ctx.now().getTime() + DAY_MS)
      throw new SignetError('conflict', `CA ${parentRow!.id} expires ${signer.cert.notAfter.toISOString()}: renew it or roll the root over first`);
  }
  // Its key and subject come from the row: only from a certificate its issuer really signed.
  await refuseTampered(ctx, ca, old, root ? old : signer.cert);
  // Every extension the CA's certificate carries that this CA decides (name constraints) is kept.
  const nc = old.parsed.tbsCertificate.extensions?.find((e) => e.extnID === EXT.nameConstraints);
  const der = await signCaCertificate(
    ctx,
    {
      serial: newSerial(),
      subjectNameDer: old.subjectNameDer,
      spkiDer: old.spkiDer,
      notBefore: ctx.now(),
      validityDays,
      pathLen: old.pathLen,
      extraExtensions: nc ? [extension(EXT.nameConstraints, true, Buffer.from(nc.extnValue.buffer))] : [],
      issuer: root
        ? undefined
        : {
            nameDer: signer.cert.subjectNameDer,
            keyId: signer.cert.subjectKeyId,
            notAfter: signer.cert.notAfter,
            urls: caUrls(ctx.config.publicUrl, signer.id),
          },
    },
    signer.signer,
  );
  const parts = inspectCertificate(der);
  // A CA certificate that ends before what the CA already signed would cut those certificates'
  // chains short (relying parties fetch the new one from the same /pki URL).
  const signedUntil = await ctx.stores.cas.lastNotAfterSigned(caId);
  if (signedUntil && parts.notAfter < signedUntil)
    throw new SignetError(
      'bad-request',
      `the renewed certificate would end ${parts.notAfter.toISOString()}, before certificates CA ${caId} already signed (the last until ${signedUntil.toISOString()}): give at least ${Math.ceil((signedUntil.getTime() - ctx.now().getTime()) / DAY_MS)} days`,
    );
  const supersededId = `s-${old.fingerprint.slice(0, 16)}`;
  const row = await ctx.db
    .transaction(async (tx) => {
      await ctx.stores.cas.insertCaCertificate(
        {
          id: supersededId,
          caId,
          issuerId: root ? caId : signer.id,
          kind: 'superseded',
          certificateDer: ca.certificateDer,
          serial: ca.serial,
          fingerprint: ca.fingerprint,
          notBefore: ca.notBefore,
          notAfter: ca.notAfter,
        },
        tx,
      );
      await ctx.stores.cas.recertify(
        caId,
        ca.fingerprint,
        { certificateDer: parts.der, serial: serialHex(parts.serial), fingerprint: parts.fingerprint, notBefore: parts.notBefore, notAfter: parts.notAfter },
        tx,
      );
      await appendAudit(tx, {
        actor,
        action: 'ca.renewed',
        target: caId,
        sourceIp: opts.sourceIp,
        details: {
          serial: serialHex(parts.serial),
          fingerprint: parts.fingerprint,
          notAfter: parts.notAfter.toISOString(),
          supersededSerial: ca.serial,
          supersededFingerprint: ca.fingerprint,
        },
      });
      await auditKeyUse(tx, {
        actor,
        sourceIp: opts.sourceIp,
        signerId: signer.id,
        keyId: signer.keyId,
        purpose: root ? 're-sign own root certificate' : 'sign intermediate certificate',
        serial: serialHex(parts.serial),
      });
      return ctx.stores.cas.get(caId, tx);
    })
    .catch((e: unknown) => {
      // Two renewals at once: the second finds the certificate it replaces already kept.
      if (isUniqueViolation(e)) throw new SignetError('conflict', `CA ${caId} was renewed meanwhile by another process; see \`signet ca list\``);
      throw e;
    });
  return { ca: row!, supersededId };
}

/**
 * Retiring CAs whose last certificate has expired become `retired` (audited); they keep
 * publishing a final CRL and answering OCSP. Returns the ids retired. Run by the server hourly.
 */
export async function retireFinished(ctx: CaContext): Promise<string[]> {
  const now = ctx.now();
  const done: string[] = [];
  for (const ca of await ctx.stores.cas.list()) {
    if (ca.status !== 'retiring' || (await ctx.stores.cas.hasUnexpiredCertificates(ca.id, now))) continue;
    const changed = await ctx.db.transaction(async (tx) => {
      if (!(await ctx.stores.cas.markRetired(ca.id, tx))) return false;
      await appendAudit(tx, {
        actor: 'system',
        action: 'ca.status.changed',
        target: ca.id,
        details: { from: 'retiring', to: 'retired', reason: 'its last certificate expired' },
      });
      return true;
    });
    if (changed) done.push(ca.id);
  }
  return done;
}

/** Runs retireFinished now and hourly (one process per host: the CRL publisher's); returns a stop function. */
export function watchRetirements(ctx: CaContext, everyMs = 3_600_000): () => void {
  const run = () =>
    retireFinished(ctx).then(
      (ids) => {
        if (ids.length) ctx.log.info({ caIds: ids }, 'retiring CAs whose last certificate expired are now retired');
      },
      (e: unknown) => ctx.log.warn({ err: e }, 'checking retiring CAs failed; tried again within the hour'),
    );
  void run();
  const timer = setInterval(run, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
