/**
 * Signing CA certificates, shared by everything that makes one (hierarchy.ts: bootstrap and new
 * intermediates; succession.ts: rotation and re-certification; root-rollover.ts): the parent
 * that signs (its key online, or a key file for an offline root), the one signing path for a CA
 * certificate, and the row that records it.
 */
import type { KeyObject } from 'node:crypto';
import { SignetError } from '../errors.js';
import { buildCaTbs, type CaCertificateParams } from '../pki/ca-template.js';
import { inspectCertificate, serialHex } from '../pki/certificate.js';
import { nameToString } from '../pki/dn.js';
import { keyIdentifier } from '../pki/extensions.js';
import { generateKeyOffThread, signerFor, type KeyAlgorithm, type Signer } from '../pki/keys.js';
import { Pkcs11KeyStore } from '../keystore/pkcs11-key-store.js';
import { keyUriDetail, type StoredKey } from '../keystore/key-store.js';
import { appendAudit } from './audit.js';
import { checkPrivateKey } from '../pki/private-key.js';
import type { CaRecord } from '../model/ca.js';
import type { Tx } from '../storage/database.js';
import type { CaContext } from './context.js';
import { auditedCaRevocation, caIdFor, caRecordProblem } from './issuers.js';
import { lintFailure, prepareCertificate, signerAlgorithmDer, signPrepared } from './signing.js';

export const idFor = caIdFor;

/** A CA that signs another CA's certificate: its key, its parsed certificate, its key id (null: offline, from a file). */
export interface SigningParent {
  signer: Signer;
  cert: ReturnType<typeof inspectCertificate>;
  keyId: string | null;
}

/**
 * The CA `parentId` ready to sign a CA certificate: another CA's, or with `self` its own (a
 * root re-certifying itself). A retiring CA signs no new CA certificate for another CA: it was
 * replaced, and its successor signs from now on.
 */
export async function issuerOf(ctx: CaContext, parentId: string, parentKey?: KeyObject, self = false): Promise<SigningParent> {
  const parent = await ctx.stores.cas.get(parentId);
  if (!parent) throw new SignetError('not-found', `CA ${parentId} does not exist`);
  if (parent.status === 'retiring' && !self) {
    const successor = await ctx.stores.cas.successorOf(parentId);
    throw new SignetError(
      'conflict',
      `CA ${parentId} is retiring${successor ? ` (replaced by ${successor.id})` : ''}: it signs no new CA certificates; use its successor`,
    );
  }
  if (parent.status === 'revoked' || parent.status === 'retired') throw new SignetError('conflict', `CA ${parentId} is ${parent.status} and cannot sign`);
  // The row's status alone is not trusted: a revocation is anchored in the audit trail (issuers.ts).
  if (await auditedCaRevocation(ctx.stores.cas, parentId)) {
    ctx.log.error(
      { caId: parentId },
      'CA row says it is not revoked, but the audit trail recorded its revocation: the row was changed in the database; it does not sign',
    );
    throw new SignetError('conflict', `CA ${parentId} was revoked (the audit trail records it; its record in the database says otherwise) and cannot sign`);
  }
  const cert = inspectCertificate(parent.certificateDer);
  if (!cert.isCa) throw new SignetError('conflict', `CA ${parentId} is not a CA certificate`);
  if (cert.pathLen === 0) throw new SignetError('policy', `CA ${parentId} has pathLen 0 and cannot sign another CA`);
  let signer: Signer;
  if (parent.keyId) {
    signer = await ctx.keys.signer(parent.keyId);
    const tampered = caRecordProblem(parentId, cert, signer);
    if (tampered) {
      ctx.log.error({ caId: parentId }, `CA record failed its integrity check: ${tampered}; it does not sign`);
      throw new SignetError('conflict', `${tampered}; it does not sign (run \`signet audit verify\`)`);
    }
  } else if (parentKey) {
    // A key file from outside: checked against the certificate before node:crypto describes it.
    try {
      signer = signerFor(checkPrivateKey(parentKey, { info: cert.publicKeyInfo, spkiDer: cert.spkiDer }));
    } catch (e) {
      if (e instanceof SignetError && e.type === 'bad-key')
        throw new SignetError('bad-key', `the key given for offline CA ${parentId} does not match its certificate: ${e.detail}`);
      throw e;
    }
  } else
    throw new SignetError(
      'conflict',
      `CA ${parentId} is kept offline: pass its key file (--parent-key) to sign with it (with the CLI on the CA host; its key never travels over HTTP)`,
    );
  return { signer, cert, keyId: parent.keyId };
}

/**
 * A CA certificate through the one signing path (signing.ts): built by ca-template.ts, linted
 * as a CA certificate, signed by `signer` (the parent's key, or for a root its own).
 */
export async function signCaCertificate(ctx: CaContext, p: Omit<CaCertificateParams, 'signatureAlgorithmDer'>, signer: Signer): Promise<Buffer> {
  const signatureAlgorithmDer = signerAlgorithmDer(signer);
  const { tbs, notAfter } = buildCaTbs({ ...p, signatureAlgorithmDer });
  const prepared = prepareCertificate(
    tbs,
    {
      kind: 'ca',
      expect: {
        // A root is its own issuer.
        issuerNameDer: p.issuer?.nameDer ?? p.subjectNameDer,
        issuerKeyId: p.issuer?.keyId ?? keyIdentifier(p.spkiDer),
        issuerNotAfter: p.issuer?.notAfter ?? notAfter,
        signatureAlgorithmDer,
        maxValidityMs: p.validityDays * 86_400_000,
        spkiDer: p.spkiDer,
        subordinate: p.issuer?.urls !== undefined,
      },
    },
    signer,
  );
  if (prepared.findings.length) {
    ctx.log.error({ subject: nameToString(p.subjectNameDer), findings: prepared.findings }, 'pre-issuance lint of a CA certificate failed; nothing was signed');
    throw lintFailure('ca', prepared.findings);
  }
  return signPrepared(prepared);
}

export async function insertCa(
  ctx: CaContext,
  tx: Tx,
  data: {
    id: string;
    name: string;
    parentId: string | null;
    der: Buffer;
    keyId: string | null;
    keyAlgorithm: string;
    status: string;
    predecessorId?: string | null;
  },
): Promise<CaRecord> {
  const c = inspectCertificate(data.der);
  return ctx.stores.cas.insert(
    {
      id: data.id,
      name: data.name,
      parentId: data.parentId,
      certificateDer: c.der,
      subject: nameToString(c.subjectNameDer),
      serial: serialHex(c.serial),
      fingerprint: c.fingerprint,
      keyAlgorithm: data.keyAlgorithm,
      keyId: data.keyId,
      status: data.status,
      pathLen: c.pathLen ?? null,
      notBefore: c.notBefore,
      notAfter: c.notAfter,
      predecessorId: data.predecessorId ?? null,
    },
    tx,
  );
}

/**
 * A new CA key, to be recorded by the returned function inside the transaction. A software key
 * is generated now, before the transaction takes the database's write lock (an RSA-4096 key
 * takes seconds, which every other writer would wait for); a token key can only be made in the
 * token, within the transaction that records it.
 */
export async function newCaKey(ctx: CaContext, algorithm: KeyAlgorithm): Promise<(tx: Tx) => Promise<StoredKey>> {
  const keys = ctx.keys;
  if (keys instanceof Pkcs11KeyStore) return (tx) => keys.generate(algorithm, tx);
  const { privateKey } = await generateKeyOffThread(algorithm);
  return (tx) => keys.importKey(privateKey, tx);
}

/** In `tx`: the audit event for one use of a CA key (`signerId`'s, online or from its file: `keyId` null). */
export async function auditKeyUse(
  tx: Tx,
  u: { actor: string; sourceIp?: string; signerId: string; keyId: string | null | undefined; purpose: string; serial: string },
): Promise<void> {
  await appendAudit(tx, {
    actor: u.actor,
    action: 'ca.key.used',
    target: u.signerId,
    sourceIp: u.sourceIp,
    details: { purpose: u.purpose, serial: u.serial, ...keyUriDetail(u.keyId) },
  });
}

/** Audits a CA key just generated for a successor (rotation, rollover): which CA it replaces, why, and where it lives. */
export async function auditKeyGenerated(
  tx: Tx,
  g: { actor: string; sourceIp?: string; replaces: string; purpose: string; keyAlgorithm: string; keyId: string },
): Promise<void> {
  await appendAudit(tx, {
    actor: g.actor,
    action: 'ca.key.generated',
    target: g.replaces,
    sourceIp: g.sourceIp,
    details: { purpose: g.purpose, keyAlgorithm: g.keyAlgorithm, ...keyUriDetail(g.keyId) },
  });
}

/** A CA certificate's lifetime in whole days (at least 1): the default for its replacement. */
export const lifetimeDays = (ca: Pick<CaRecord, 'notBefore' | 'notAfter'>): number =>
  Math.max(1, Math.round((ca.notAfter.getTime() - ca.notBefore.getTime()) / 86_400_000));

/** A unique index refused the row: another process made the same change first (Prisma P2002). */
export const isUniqueViolation = (e: unknown): boolean => (e as { code?: string } | null)?.code === 'P2002';
