/**
 * Root rollover (RFC 4210 §4.4, "root CA key update"): `signet ca rollover-root`.
 *
 * In ONE database transaction (a process killed anywhere leaves the old state or the new one;
 * running the command again after the new state reports it and changes nothing):
 *   - a new root key and a self-signed new root (its row's predecessorId = the old root);
 *   - two cross-certificates, kept as CaCertificate rows of kind `cross` with ids
 *     `x-<first 16 hex of their SHA-256>` and served at /pki/{id}.crt:
 *       NewWithOld — the new root's subject and key, signed by the old root (AIA and CRL DP of the
 *                    old root, which answers for it by OCSP and CRL), valid until the old root ends;
 *       OldWithNew — the old root's subject and key, signed by the new root (AIA and CRL DP of the
 *                    new root), valid no longer than either root;
 *   - a new issuing intermediate under the new root that succeeds the old root's issuing
 *     intermediate (same subject, path length and name constraints; succession.ts signSuccessor),
 *     which becomes `retiring` while issuance moves to the new one (succession.ts handOver);
 *   - the old root handed over to the new one: an online old root becomes `retiring`, an offline
 *     one stays `offline`, linked by the new root's predecessorId.
 * Every step is an audit event: ca.key.generated, ca.created, ca.key.used, ca.cross-certified,
 * ca.status.changed, ca.issuance.moved.
 *
 * How chains are offered (crossChainAbove, called by issuers.ts): a leaf of an intermediate under
 * a root that has a NewWithOld cross-certificate is served with the chain
 * [intermediate, NewWithOld]. A relying party that trusts only the old root goes
 * leaf → intermediate → NewWithOld → old root; one that trusts the new root stops at the
 * intermediate's issuer, the trusted new root (every verifier tested: openssl, Go, GnuTLS, NSS).
 * The cross-certificate leaves the chain when it expires or is revoked.
 */
import type { KeyObject } from 'node:crypto';
import { SignetError } from '../errors.js';
import { keyUriDetail } from '../keystore/key-store.js';
import type { CaCertificateRecord, CaRecord } from '../model/ca.js';
import { inspectCertificate, newSerial, serialHex, type CertificateParts } from '../pki/certificate.js';
import { commonNameOf, encodeName, nameToString, parseDn, dnToDer } from '../pki/dn.js';
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
import { caUrls, type CaContext } from './context.js';
import { subordinateKeyProblem } from './key-policy.js';
import { handOver, signSuccessor } from './succession.js';
import { faultPoint } from './fault-points.js';

const DAY_MS = 86_400_000;
const CN_OID = '2.5.4.3';

export interface RolloverOptions {
  /** The root to replace; default the one root there is. */
  rootId?: string;
  /** The new root's subject (RFC 4514); default the old one's with its CN's generation bumped (nextGenerationSubject). */
  subject?: string;
  /** The new root's key algorithm; default the old root's. */
  keyAlgorithm?: KeyAlgorithm;
  /** The new root's validity in days; default the old root's lifetime. */
  validityDays?: number;
  /** The new intermediate's key algorithm; default the old intermediate's. */
  intermediateKeyAlgorithm?: KeyAlgorithm;
  /** Days in which the old intermediate's certificates are renewed (ARI); default none (the last third of each one's life). */
  overlapDays?: number;
  /** The old root's key, when it is kept offline. */
  parentKey?: KeyObject;
  actor?: string;
  sourceIp?: string;
}

export interface RolloverResult {
  oldRoot: CaRecord;
  newRoot: CaRecord;
  /** The new root's key certified by the old root. */
  newWithOld: CaCertificateRecord;
  /** The old root's key certified by the new root. */
  oldWithNew: CaCertificateRecord;
  oldIntermediate: CaRecord | null;
  newIntermediate: CaRecord | null;
  /** The rollover had been done before: this run found it and changed nothing. */
  alreadyDone: boolean;
}

/**
 * The default subject of the new root: the old one with its CN's generation bumped — "X" becomes
 * "X R2", "X R<n>" becomes "X R<n+1>". Other attributes unchanged. Null when there is no CN.
 */
export function nextGenerationSubject(subjectDer: Uint8Array): Buffer | null {
  const cn = commonNameOf(subjectDer);
  if (cn === undefined) return null;
  const m = /^(.*) R(\d+)$/.exec(cn);
  const next = m ? `${m[1]} R${Number(m[2]) + 1}` : `${cn} R2`;
  const rdns = parseDn(nameToString(subjectDer));
  const at = rdns.findIndex((r) => r.type === CN_OID);
  rdns[at] = { type: CN_OID, value: next };
  return encodeName(rdns);
}

const parse = (ca: Pick<CaRecord, 'certificateDer'>) => inspectCertificate(ca.certificateDer);

/** Whether a CA row's certificate is a root (by its certificate, as ca-chain-check.ts decides). */
async function isRoot(ctx: CaContext, ca: CaRecord): Promise<boolean> {
  const parent = ca.parentId ? await ctx.stores.cas.get(ca.parentId) : null;
  return isRootCertificate(parse(ca), parent ? parse(parent) : null);
}

/** The root to replace: --root, or the one root; after a rollover without --root, the root that was replaced (to report it). */
async function oldRootOf(ctx: CaContext, rootId: string | undefined): Promise<CaRecord> {
  if (rootId !== undefined) {
    if (!rootId) throw new SignetError('bad-request', '--root needs a CA id (see `signet ca list`)');
    const ca = await ctx.stores.cas.get(rootId);
    if (!ca) throw new SignetError('not-found', `CA ${rootId} does not exist (see \`signet ca list\`)`);
    if (!(await isRoot(ctx, ca)))
      throw new SignetError('bad-request', `CA ${rootId} is not a root: an intermediate is replaced with \`signet ca rotate ${rootId}\``);
    return ca;
  }
  const roots: CaRecord[] = [];
  for (const ca of await ctx.stores.cas.list()) if (ca.status !== 'revoked' && ca.status !== 'retired' && (await isRoot(ctx, ca))) roots.push(ca);
  if (roots.length === 1) return roots[0]!;
  if (roots.length === 0) throw new SignetError('conflict', 'there is no root CA in service to roll over');
  // Right after a rollover there are two: the old root (with a successor) and the new one (without).
  const replaced = roots.filter((r) => roots.some((s) => s.predecessorId === r.id && !roots.some((t) => t.predecessorId === s.id)));
  if (replaced.length === 1) return replaced[0]!;
  throw new SignetError('bad-request', `there are several roots (${roots.map((r) => r.id).join(', ')}): name the one to roll over with --root`);
}

/** The old root's issuing intermediate that the new intermediate succeeds: active, online, under it; one of pathLen 0 first. */
async function issuingIntermediateOf(ctx: CaContext, rootId: string): Promise<CaRecord> {
  const all = await ctx.stores.cas.list();
  const rootParts = parse(all.find((c) => c.id === rootId)!);
  // A row's parentId is only a hint: the root must have signed the intermediate's certificate.
  const under = all.filter(
    (c) => c.parentId === rootId && c.id !== rootId && c.status === 'active' && c.keyId && notIssuedByReason(parse(c), rootParts) === null,
  );
  const pick = under.find((c) => c.pathLen === 0) ?? under[0];
  if (!pick)
    throw new SignetError(
      'conflict',
      `root ${rootId} has no active issuing intermediate with an online key to succeed; create one under it (\`signet ca create-intermediate\`) or roll over by hand`,
    );
  return pick;
}

/** What an earlier rollover of `oldRoot` made, to report it again. */
async function existingRollover(ctx: CaContext, oldRoot: CaRecord, newRoot: CaRecord): Promise<RolloverResult> {
  const [newWithOld] = (await ctx.stores.cas.caCertificates({ caId: newRoot.id, issuerId: oldRoot.id })).filter((c) => c.kind === 'cross');
  const [oldWithNew] = (await ctx.stores.cas.caCertificates({ caId: oldRoot.id, issuerId: newRoot.id })).filter((c) => c.kind === 'cross');
  if (!newWithOld || !oldWithNew)
    throw new SignetError(
      'conflict',
      `root ${oldRoot.id} was replaced by ${newRoot.id}, but not by \`signet ca rollover-root\` (no cross-certificates on record)`,
    );
  const all = await ctx.stores.cas.list();
  const newIntermediate = all.find((c) => c.parentId === newRoot.id && c.id !== newRoot.id && c.predecessorId !== null) ?? null;
  const oldIntermediate = newIntermediate ? (all.find((c) => c.id === newIntermediate.predecessorId) ?? null) : null;
  return { oldRoot, newRoot, newWithOld, oldWithNew, oldIntermediate, newIntermediate, alreadyDone: true };
}

/** `signet ca rollover-root`: see the module comment. */
export async function rolloverRoot(ctx: CaContext, opts: RolloverOptions = {}): Promise<RolloverResult> {
  const actor = opts.actor ?? 'cli';
  const oldRoot = await oldRootOf(ctx, opts.rootId);
  const done = await ctx.stores.cas.successorOf(oldRoot.id);
  if (done) return existingRollover(ctx, oldRoot, done);
  if (oldRoot.status === 'revoked' || oldRoot.status === 'retired')
    throw new SignetError('conflict', `root ${oldRoot.id} is ${oldRoot.status}: it cannot certify a successor`);
  const now = ctx.now();
  const oldParts = parse(oldRoot);
  // Below the old root, a path to the new intermediate has two CAs (NewWithOld and the
  // intermediate): a path length constraint under 2 would make that path fail.
  if (oldParts.pathLen !== undefined && oldParts.pathLen < 2)
    throw new SignetError(
      'conflict',
      `root ${oldRoot.id} has pathLen ${oldParts.pathLen}: a relying party that trusts it could not follow its cross-certificate to the new root's intermediates (that needs pathLen 2 or none)`,
    );
  if (oldRoot.notAfter.getTime() <= now.getTime() + DAY_MS)
    throw new SignetError('conflict', `root ${oldRoot.id} expires ${oldRoot.notAfter.toISOString()}: too late for a cross-certified rollover`);
  if (!oldRoot.keyId && !opts.parentKey)
    throw new SignetError('bad-request', `root ${oldRoot.id} is kept offline: pass its key file (--parent-key) to sign the cross-certificate with it`);

  // The new root.
  const rootAlg = opts.keyAlgorithm ?? (oldRoot.keyAlgorithm as KeyAlgorithm);
  const rootPolicy = subordinateKeyProblem(oldRoot.keyAlgorithm, rootAlg, { root: true });
  if (rootPolicy) throw new SignetError('policy', `root ${oldRoot.id} refuses to certify the new root's key: ${rootPolicy}`);
  let subjectDer: Buffer;
  if (opts.subject !== undefined) {
    if (opts.subject.length > 512) throw new SignetError('bad-request', `the new root's subject is ${opts.subject.length} characters long; at most 512`);
    subjectDer = dnToDer(opts.subject);
  } else {
    const next = nextGenerationSubject(oldParts.subjectNameDer);
    if (!next) throw new SignetError('bad-request', `root ${oldRoot.id}'s subject has no CN to derive the new root's from: pass --subject`);
    const cn = commonNameOf(next)!;
    if (cn.length > 64) throw new SignetError('bad-request', `the new root's CN "${cn}" would be longer than 64 characters: pass --subject`);
    subjectDer = next;
  }
  // Compared as RFC 5280 §7.1 compares names (case and spacing aside), not byte for byte.
  const comparable = (der: Buffer) => nameToString(der).toLowerCase().replace(/\s+/g, ' ');
  if (comparable(subjectDer) === comparable(oldParts.subjectNameDer))
    throw new SignetError(
      'bad-request',
      `the new root's subject must differ from the old root's (${oldRoot.subject}): relying parties tell the two roots apart by name`,
    );
  const validityDays = opts.validityDays ?? lifetimeDays(oldRoot);
  if (!Number.isInteger(validityDays) || validityDays < 1 || validityDays > 36_500)
    throw new SignetError('bad-request', '--validity-days must be a whole number of days from 1 to 36500');
  // A rollover extends trust: a new root that ended before the old one would leave its
  // intermediate, and all issuance, with less time than before.
  const minDays = Math.ceil((oldRoot.notAfter.getTime() - now.getTime()) / DAY_MS);
  if (validityDays < minDays)
    throw new SignetError(
      'bad-request',
      `the new root would end before the old one (${oldRoot.notAfter.toISOString()}): --validity-days must be at least ${minDays}`,
    );

  // The intermediate it succeeds, and the new one's key.
  const oldInt = await issuingIntermediateOf(ctx, oldRoot.id);
  const intAlg = opts.intermediateKeyAlgorithm ?? (oldInt.keyAlgorithm as KeyAlgorithm);
  const intPolicy = subordinateKeyProblem(rootAlg, intAlg);
  if (intPolicy) throw new SignetError('policy', `the new root's policy refuses the new intermediate's key: ${intPolicy}`);
  let overlapEndsAt: Date | null = null;
  if (opts.overlapDays !== undefined) {
    if (!Number.isInteger(opts.overlapDays) || opts.overlapDays < 1)
      throw new SignetError('bad-request', '--overlap-days must be a positive whole number of days');
    overlapEndsAt = new Date(now.getTime() + opts.overlapDays * DAY_MS);
    if (overlapEndsAt > oldInt.notAfter)
      throw new SignetError(
        'bad-request',
        `an overlap of ${opts.overlapDays} days would end ${overlapEndsAt.toISOString()}, after intermediate ${oldInt.id} itself expires (${oldInt.notAfter.toISOString()}); at most ${Math.floor((oldInt.notAfter.getTime() - now.getTime()) / DAY_MS)} days`,
      );
  }
  const oldIntParts = parse(oldInt);
  const nc = oldIntParts.parsed.tbsCertificate.extensions?.find((e) => e.extnID === EXT.nameConstraints);

  // The old root's key: online, or from its file (checked against its certificate).
  const old = { id: oldRoot.id, ...(await issuerOf(ctx, oldRoot.id, opts.parentKey)) };

  const recordRootKey = await newCaKey(ctx, rootAlg);
  const recordIntKey = await newCaKey(ctx, intAlg);
  try {
    const result = await ctx.db.transaction(async (tx) => {
      const rootKey = await recordRootKey(tx);
      await auditKeyGenerated(tx, {
        actor,
        sourceIp: opts.sourceIp,
        replaces: oldRoot.id,
        purpose: 'successor root (rollover)',
        keyAlgorithm: rootAlg,
        keyId: rootKey.id,
      });
      const rootSpki = rootKey.publicKey.export({ format: 'der', type: 'spki' });
      const rootDer = await signCaCertificate(
        ctx,
        { serial: newSerial(), subjectNameDer: subjectDer, spkiDer: rootSpki, notBefore: ctx.now(), validityDays, pathLen: oldParts.pathLen },
        rootKey.signer,
      );
      const rootParts = inspectCertificate(rootDer);
      const newRoot = await insertCa(ctx, tx, {
        id: idFor('root', rootParts.subjectKeyId),
        name: nameToString(subjectDer),
        parentId: null,
        der: rootDer,
        keyId: rootKey.id,
        keyAlgorithm: rootAlg,
        status: 'active',
        predecessorId: oldRoot.id,
      });
      await appendAudit(tx, {
        actor,
        action: 'ca.created',
        target: newRoot.id,
        sourceIp: opts.sourceIp,
        details: {
          subject: newRoot.subject,
          fingerprint: newRoot.fingerprint,
          keyAlgorithm: rootAlg,
          role: 'root',
          predecessor: oldRoot.id,
          ...keyUriDetail(rootKey.id),
        },
      });
      faultPoint('rollover:root-created');
      await auditKeyUse(tx, {
        actor,
        sourceIp: opts.sourceIp,
        signerId: newRoot.id,
        keyId: rootKey.id,
        purpose: 'self-sign root certificate',
        serial: newRoot.serial,
      });
      const newSigning: SigningParent & { id: string } = { id: newRoot.id, signer: rootKey.signer, cert: rootParts, keyId: rootKey.id };

      // NewWithOld: the new root's key under the old root, for relying parties that trust only the old one.
      const newWithOld = await crossCertify(ctx, tx, {
        subject: newRoot,
        subjectParts: rootParts,
        issuer: old,
        notAfter: oldRoot.notAfter,
        actor,
        sourceIp: opts.sourceIp,
      });
      // OldWithNew: the old root's key under the new root, for relying parties that trust only the new one.
      const oldWithNew = await crossCertify(ctx, tx, {
        subject: oldRoot,
        subjectParts: oldParts,
        issuer: newSigning,
        notAfter: new Date(Math.min(oldRoot.notAfter.getTime(), newRoot.notAfter.getTime())),
        actor,
        sourceIp: opts.sourceIp,
      });

      faultPoint('rollover:cross-certified');
      // The new issuing intermediate succeeds the old one; issuance moves to it.
      const intKey = await recordIntKey(tx);
      await auditKeyGenerated(tx, {
        actor,
        sourceIp: opts.sourceIp,
        replaces: oldInt.id,
        purpose: 'successor of the CA under the new root (rollover)',
        keyAlgorithm: intAlg,
        keyId: intKey.id,
      });
      const newInt = await signSuccessor(ctx, tx, {
        parent: newSigning,
        subjectNameDer: oldIntParts.subjectNameDer,
        spkiDer: intKey.publicKey.export({ format: 'der', type: 'spki' }),
        validityDays: lifetimeDays(oldInt),
        pathLen: oldIntParts.pathLen,
        extraExtensions: nc ? [extension(EXT.nameConstraints, true, Buffer.from(nc.extnValue.buffer))] : [],
        keyId: intKey.id,
        keyAlgorithm: intAlg,
        predecessor: oldInt,
        actor,
        sourceIp: opts.sourceIp,
      });
      await handOver(ctx, tx, { predecessor: oldInt, successor: newInt, overlapEndsAt, actor, sourceIp: opts.sourceIp });
      await handOver(ctx, tx, { predecessor: oldRoot, successor: newRoot, overlapEndsAt, actor, sourceIp: opts.sourceIp });
      faultPoint('rollover:handed-over');
      const after = async (id: string) => (await ctx.stores.cas.get(id, tx))!;
      return {
        oldRoot: await after(oldRoot.id),
        newRoot,
        newWithOld,
        oldWithNew,
        oldIntermediate: await after(oldInt.id),
        newIntermediate: newInt,
        alreadyDone: false,
      };
    });
    faultPoint('rollover:committed');
    return result;
  } catch (e) {
    if (isUniqueViolation(e))
      throw new SignetError(
        'conflict',
        `root ${oldRoot.id} or its issuing intermediate was replaced meanwhile by another process (a rollover or a rotation); see \`signet ca list\` and run the command again`,
      );
    throw e;
  }
}

/**
 * In `tx`: a cross-certificate for the key and subject of `subject`, signed by `issuer`, with the
 * issuer's AIA and CRL DP, ending no later than `notAfter`; stored (kind cross) and audited.
 */
async function crossCertify(
  ctx: CaContext,
  tx: Tx,
  p: {
    subject: CaRecord;
    subjectParts: CertificateParts;
    issuer: SigningParent & { id: string };
    notAfter: Date;
    actor: string;
    sourceIp?: string;
  },
): Promise<CaCertificateRecord> {
  const now = ctx.now();
  // Whole days that end no later than notAfter (the template clamps to the issuer's end too).
  const validityDays = Math.max(1, Math.floor((p.notAfter.getTime() - now.getTime()) / DAY_MS));
  const der = await signCaCertificate(
    ctx,
    {
      serial: newSerial(),
      subjectNameDer: p.subjectParts.subjectNameDer,
      spkiDer: p.subjectParts.spkiDer,
      notBefore: now,
      validityDays,
      pathLen: p.subjectParts.pathLen,
      issuer: {
        nameDer: p.issuer.cert.subjectNameDer,
        keyId: p.issuer.cert.subjectKeyId,
        notAfter: new Date(Math.min(p.issuer.cert.notAfter.getTime(), p.notAfter.getTime())),
        urls: caUrls(ctx.config.publicUrl, p.issuer.id),
      },
    },
    p.issuer.signer,
  );
  const parts = inspectCertificate(der);
  const row = await ctx.stores.cas.insertCaCertificate(
    {
      id: `x-${parts.fingerprint.slice(0, 16)}`,
      caId: p.subject.id,
      issuerId: p.issuer.id,
      kind: 'cross',
      certificateDer: der,
      serial: serialHex(parts.serial),
      fingerprint: parts.fingerprint,
      notBefore: parts.notBefore,
      notAfter: parts.notAfter,
    },
    tx,
  );
  await appendAudit(tx, {
    actor: p.actor,
    action: 'ca.cross-certified',
    target: p.subject.id,
    sourceIp: p.sourceIp,
    details: {
      id: row.id,
      issuer: p.issuer.id,
      serial: row.serial,
      fingerprint: row.fingerprint,
      notAfter: row.notAfter.toISOString(),
      url: `${ctx.config.publicUrl}/pki/${row.id}.crt`,
    },
  });
  await auditKeyUse(tx, {
    actor: p.actor,
    sourceIp: p.sourceIp,
    signerId: p.issuer.id,
    keyId: p.issuer.keyId,
    purpose: 'sign cross-certificate',
    serial: row.serial,
  });
  return row;
}
