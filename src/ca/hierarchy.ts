/**
 * The CA hierarchy: bootstrap of root + issuing intermediate, new intermediates, imported CAs,
 * and taking the root offline. Each change commits with its key and its audit event.
 */
import { isPkcs11Uri, keyUriDetail } from '../keystore/key-store.js';
import { Pkcs11KeyStore } from '../keystore/pkcs11-key-store.js';
import { randomBytes, type KeyObject } from 'node:crypto';
import { chmodSync, writeFileSync } from 'node:fs';
import { SignetError } from '../errors.js';
import { fromPem, inspectCertificate, keyUsageFlagsOf, newSerial, signatureAlgorithmsAgree } from '../pki/certificate.js';
import { flagsBeyondKey } from '../pki/key-usage.js';
import { dnToDer, nameMatchKey, nameToString } from '../pki/dn.js';
import { verifySignature, type KeyAlgorithm, type Signer, type TrustedKey } from '../pki/keys.js';
import { checkPrivateKey } from '../pki/private-key.js';
import { readPrivateKeyPem } from '../pki/encrypted-key.js';
import type { PublicKeyInfo } from '../pki/public-key.js';
import type { Tx } from '../storage/database.js';
import { appendAudit } from './audit.js';
import { caUrls, type CaContext } from './context.js';
import { auditKeyUse, idFor, insertCa, issuerOf, signCaCertificate } from './ca-issuer.js';
import { encodeNameConstraints, type NameConstraints } from '../pki/names.js';
import { extension, EXT } from '../pki/extensions.js';
import { isRootCertificate } from './ca-chain-check.js';
import { hierarchyMixProblem } from './key-policy.js';

export interface CaSummary {
  id: string;
  name: string;
  parentId: string | null;
  subject: string;
  serial: string;
  fingerprint: string;
  keyAlgorithm: string;
  status: string;
  pathLen: number | null;
  notBefore: Date;
  notAfter: Date;
  /** The CA this one replaced, and the one that replaced it (rotation, root rollover). */
  predecessorId: string | null;
  successorId: string | null;
  retiringSince: Date | null;
  overlapEndsAt: Date | null;
  revokedAt: Date | null;
  revocationReason: string | null;
}

export interface NewCaOptions {
  subject: string;
  keyAlgorithm: KeyAlgorithm;
  validityDays: number;
  pathLen?: number;
  nameConstraints?: NameConstraints;
}

/** Creates a self-signed root and, under it, an issuing intermediate, in one transaction. */
export async function createHierarchy(ctx: CaContext, root: NewCaOptions, intermediate: NewCaOptions, actor = 'system') {
  return ctx.db.transaction((tx) => createHierarchyTx(ctx, tx, root, intermediate, actor));
}

export async function createHierarchyTx(ctx: CaContext, tx: Tx, root: NewCaOptions, intermediate: NewCaOptions, actor = 'system') {
  // The policy is checked before any key is made (a PKCS#11 token would keep an orphan object).
  const mix = hierarchyMixProblem(root.keyAlgorithm, intermediate.keyAlgorithm);
  if (mix)
    throw new SignetError(
      'policy',
      `the root key and the intermediate key must both be post-quantum or both classical (SIGNET_ROOT_KEY / --root-key, SIGNET_INTERMEDIATE_KEY / --intermediate-key): ${mix}`,
    );
  const made = await createRootTx(ctx, tx, root, actor);
  const intRow = await signIntermediate(
    ctx,
    tx,
    { id: made.root.id, signer: made.signer, cert: made.cert, keyId: made.keyId, keyAlgorithm: root.keyAlgorithm },
    intermediate,
    actor,
  );
  return { root: made.root, intermediate: intRow };
}

/**
 * `signet ca create-root`: one more self-signed root, independent of the others (say an ML-DSA-87
 * root beside the classical one). It issues nothing itself and is never the default issuing CA
 * (issuers.ts skips roots); an intermediate under it (`create-intermediate --parent`) and a
 * profile naming that intermediate in caIds put it to use.
 */
export async function createRoot(ctx: CaContext, root: NewCaOptions, actor = 'system', sourceIp?: string) {
  // Relying parties build chains by name (RFC 5280 §7.1 matching, not bytes): a second root
  // named like a CA that exists would be taken for that one (or for its rollover successor).
  const key = nameMatchKey(dnToDer(root.subject));
  const namedAlready = async () => {
    for (const c of await ctx.stores.cas.list()) if (nameMatchKey(inspectCertificate(c.certificateDer).subjectNameDer) === key) return c;
    return undefined;
  };
  const refuse = (c: { id: string; subject: string }) =>
    new SignetError('conflict', `CA ${c.id} is named ${c.subject} already (names are compared as RFC 5280 §7.1 does); give the new root a name of its own`);
  // Asked before a key is made (a PKCS#11 token would keep an orphan object), and again inside
  // the transaction once its rows are written: writers are serialised there (SQLite's write
  // lock, PostgreSQL's audit lock), and plain reads see only committed rows, so a root another
  // request committed meanwhile is seen and this one rolls back.
  const early = await namedAlready();
  if (early) throw refuse(early);
  return (
    await ctx.db.transaction(async (tx) => {
      const made = await createRootTx(ctx, tx, root, actor, sourceIp);
      const raced = await namedAlready();
      if (raced) throw refuse(raced);
      return made;
    })
  ).root;
}

/** As the REST schemas cap it: a hundred years, well inside X.509's GeneralizedTime (year 9999). */
const MAX_CA_VALIDITY_DAYS = 36_500;

async function createRootTx(ctx: CaContext, tx: Tx, root: NewCaOptions, actor: string, sourceIp?: string) {
  if (!(root.validityDays <= MAX_CA_VALIDITY_DAYS))
    throw new SignetError('bad-request', `a root's validity is at most ${MAX_CA_VALIDITY_DAYS} days (100 years); ${root.validityDays} was asked`);
  const now = ctx.now();
  const rootKey = await ctx.keys.generate(root.keyAlgorithm, tx);
  const rootSpki = rootKey.publicKey.export({ format: 'der', type: 'spki' });
  const rootDer = await signCaCertificate(
    ctx,
    { serial: newSerial(), subjectNameDer: dnToDer(root.subject), spkiDer: rootSpki, notBefore: now, validityDays: root.validityDays, pathLen: root.pathLen },
    rootKey.signer,
  );
  const cert = inspectCertificate(rootDer);
  const rootId = idFor('root', cert.subjectKeyId);
  const row = await insertCa(ctx, tx, {
    id: rootId,
    name: root.subject,
    parentId: null,
    der: rootDer,
    keyId: rootKey.id,
    keyAlgorithm: root.keyAlgorithm,
    status: 'active',
  });
  await appendAudit(tx, {
    actor,
    action: 'ca.created',
    target: rootId,
    sourceIp,
    details: { subject: row.subject, fingerprint: row.fingerprint, keyAlgorithm: root.keyAlgorithm, role: 'root', ...keyUriDetail(rootKey.id) },
  });
  return { root: row, signer: rootKey.signer, cert, keyId: rootKey.id };
}

/** Post-quantum and classical CA keys do not mix (key-policy.ts): refused before anything is made. */
function mixRefusal(parent: string, parentAlg: string, childAlg: KeyAlgorithm): void {
  const mix = hierarchyMixProblem(parentAlg, childAlg);
  if (mix) throw new SignetError('policy', `${parent}'s policy refuses the new CA key: ${mix}`);
}

async function signIntermediate(
  ctx: CaContext,
  tx: Tx,
  parent: { id: string; signer: Signer; cert: ReturnType<typeof inspectCertificate>; keyId?: string | null; keyAlgorithm: string },
  opts: NewCaOptions,
  actor: string,
  sourceIp?: string,
) {
  mixRefusal(`CA ${parent.id}`, parent.keyAlgorithm, opts.keyAlgorithm);
  const key = await ctx.keys.generate(opts.keyAlgorithm, tx);
  const spki = key.publicKey.export({ format: 'der', type: 'spki' });
  const extra = opts.nameConstraints ? [extension(EXT.nameConstraints, true, encodeNameConstraints(opts.nameConstraints))] : [];
  const der = await signCaCertificate(
    ctx,
    {
      serial: newSerial(),
      subjectNameDer: dnToDer(opts.subject),
      spkiDer: spki,
      notBefore: ctx.now(),
      validityDays: opts.validityDays,
      pathLen: opts.pathLen ?? 0,
      extraExtensions: extra,
      issuer: {
        nameDer: parent.cert.subjectNameDer,
        keyId: parent.cert.subjectKeyId,
        notAfter: parent.cert.notAfter,
        urls: caUrls(ctx.config.publicUrl, parent.id),
      },
    },
    parent.signer,
  );
  const parts = inspectCertificate(der);
  const id = idFor('int', parts.subjectKeyId);
  const row = await insertCa(ctx, tx, { id, name: opts.subject, parentId: parent.id, der, keyId: key.id, keyAlgorithm: opts.keyAlgorithm, status: 'active' });
  await appendAudit(tx, {
    actor,
    action: 'ca.created',
    target: id,
    sourceIp,
    details: {
      subject: row.subject,
      parent: parent.id,
      fingerprint: row.fingerprint,
      keyAlgorithm: opts.keyAlgorithm,
      role: 'intermediate',
      nameConstraints: opts.nameConstraints ?? null,
      ...keyUriDetail(key.id),
    },
  });
  await auditKeyUse(tx, { actor, sourceIp, signerId: parent.id, keyId: parent.keyId, purpose: 'sign intermediate certificate', serial: row.serial });
  return row;
}

export async function createIntermediate(ctx: CaContext, parentId: string, opts: NewCaOptions, actor = 'system', parentKey?: KeyObject, sourceIp?: string) {
  const parent = await issuerOf(ctx, parentId, parentKey);
  const keyAlgorithm = (await ctx.stores.cas.get(parentId))!.keyAlgorithm;
  return ctx.db.transaction((tx) => signIntermediate(ctx, tx, { id: parentId, ...parent, keyAlgorithm }, opts, actor, sourceIp));
}

/** Brings an existing CA (certificate + private key PEM) under Signet's management. */
export async function importCa(ctx: CaContext, certPem: string, keyPem: string, opts: { passphrase?: string; actor?: string; sourceIp?: string } = {}) {
  const [der] = fromPem(certPem);
  if (!der) throw new SignetError('bad-request', 'the certificate file has no PEM CERTIFICATE block');
  let cert;
  try {
    cert = inspectCertificate(der);
  } catch (e) {
    throw new SignetError('bad-request', `the certificate could not be parsed: ${(e as Error).message}`);
  }
  if (!cert.isCa) throw new SignetError('bad-request', 'the certificate is not a CA certificate (basicConstraints CA:TRUE is missing)');
  // Both keys come from outside: each is checked by Signet's own rules (public-key.ts,
  // private-key.ts) before node:crypto is asked anything about it.
  let certKey: PublicKeyInfo;
  try {
    certKey = cert.publicKeyInfo;
  } catch (e) {
    if (e instanceof SignetError) throw new SignetError('bad-key', `the CA certificate's public key is refused: ${e.detail}`);
    throw e;
  }
  let decoded: KeyObject;
  // Its encryption's cost is checked before anything decrypts it (pki/encrypted-key.ts).
  try {
    decoded = await readPrivateKeyPem(keyPem, opts.passphrase || undefined);
  } catch (e) {
    if (e instanceof SignetError) throw e;
    throw new SignetError('bad-key', `the private key could not be read (wrong passphrase or not a PEM private key): ${(e as Error).message.split('\n')[0]}`);
  }
  const key = checkPrivateKey(decoded, { info: certKey, spkiDer: cert.spkiDer });
  // A relabelled certificate (RFC 5280 §4.1.1.2) is refused by every verifier, and a CA whose
  // keyUsage asks what its key cannot do (key-usage.ts) is not one Signet would have made.
  if (!signatureAlgorithmsAgree(cert))
    throw new SignetError('bad-request', "the certificate's signatureAlgorithm differs from the signature named in its TBS (RFC 5280 §4.1.1.2)");
  const beyond = flagsBeyondKey(certKey.family, keyUsageFlagsOf(cert) ?? 0);
  if (beyond.length) throw new SignetError('bad-key', `the CA certificate's keyUsage asks for ${beyond.join(', ')}, which ${certKey.algorithm} keys cannot do`);
  if (await ctx.stores.cas.byFingerprint(cert.fingerprint))
    throw new SignetError('conflict', `this CA (SHA-256 ${cert.fingerprint}) is already managed by Signet`);
  // Find the parent among known CAs by issuer name + signature; a self-signed import has none.
  const signedBy = (k: TrustedKey) => verifySignature(cert.parsed.signatureAlgorithm.algorithm, k, cert.tbs, Buffer.from(cert.parsed.signatureValue));
  const selfIssued = cert.issuerNameDer.equals(cert.subjectNameDer);
  const selfSigned = selfIssued && signedBy(cert.publicKey);
  let parentId: string | null = null;
  let parentCert: ReturnType<typeof inspectCertificate> | null = null;
  let parentAlg: string | null = null;
  if (!selfSigned) {
    const cands = await ctx.stores.cas.list();
    for (const c of cands) {
      const p = inspectCertificate(c.certificateDer);
      if (p.subjectNameDer.equals(cert.issuerNameDer) && signedBy(p.publicKey)) {
        parentId = c.id;
        parentCert = p;
        parentAlg = c.keyAlgorithm;
        break;
      }
    }
  }
  // A certificate that names itself as its issuer is a root to every relying party (nobody
  // checks a trust anchor's self-signature), so it could never be an "external" issuing CA. One
  // whose signature verifies neither with its own key nor with a known CA of that name (a key
  // rollover certificate) is broken or forged: refused rather than trusted as anything.
  if (selfIssued && !selfSigned && !parentId) {
    throw new SignetError(
      'bad-request',
      `the certificate names itself as its issuer (${nameToString(cert.subjectNameDer)}), but its signature does not verify with its own key nor with any known CA of that name; a root whose self-signature is broken is refused`,
    );
  }
  const role = isRootCertificate(cert, parentCert) ? 'root' : parentId ? 'intermediate' : 'external intermediate';
  // The rule every other way of making a CA meets (key-policy.ts): no post-quantum CA under a
  // classical parent or the reverse, SLH-DSA for roots only. Without a known parent only the latter.
  const mix = hierarchyMixProblem(parentAlg ?? certKey.algorithm, certKey.algorithm, { root: role === 'root' });
  if (mix) throw new SignetError('policy', `${parentId ? `CA ${parentId}'s policy refuses the imported CA key` : 'the imported CA key is refused'}: ${mix}`);
  const actor = opts.actor ?? 'cli';
  return ctx.db.transaction(async (tx) => {
    const k = await ctx.keys.importKey(key, tx);
    const id = idFor(role === 'root' ? 'root' : parentId ? 'int' : 'ext', cert.subjectKeyId);
    const row = await insertCa(ctx, tx, {
      id,
      name: nameToString(cert.subjectNameDer),
      parentId,
      der,
      keyId: k.id,
      keyAlgorithm: certKey.algorithm,
      status: 'active',
    });
    await appendAudit(tx, {
      actor,
      action: 'ca.imported',
      target: id,
      sourceIp: opts.sourceIp,
      details: { subject: row.subject, fingerprint: row.fingerprint, parent: parentId, role, ...keyUriDetail(k.id) },
    });
    return row;
  });
}

/** Exports the root key (passphrase-encrypted PKCS#8) to a file and deletes it from the online store. */
export async function takeOffline(ctx: CaContext, caId: string, file: string, passphrase: string, actor = 'cli') {
  const ca = await ctx.stores.cas.get(caId);
  if (!ca) throw new SignetError('not-found', `CA ${caId} does not exist`);
  if (!ca.keyId) throw new SignetError('conflict', `CA ${caId} is already offline`);
  if (passphrase.length < 12) throw new SignetError('bad-request', 'the offline key passphrase must be at least 12 characters');
  const pem = await ctx.keys.exportEncrypted(ca.keyId, passphrase);
  writeFileSync(file, pem, { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
  const keyId = ca.keyId;
  await ctx.db.transaction(async (tx) => {
    await ctx.stores.cas.markOffline(caId, tx);
    await ctx.keys.remove(keyId, tx);
    await appendAudit(tx, { actor, action: 'ca.key.offline', target: caId, details: { file } });
  });
  return { scrubWarning: await ctx.keys.scrubRemoved() };
}

export async function listCas(ctx: Pick<CaContext, 'stores'>): Promise<CaSummary[]> {
  const rows = await ctx.stores.cas.list();
  const successors = new Map(rows.filter((r) => r.predecessorId).map((r) => [r.predecessorId!, r.id]));
  return rows.map(({ certificateDer: _d, crlNumber: _n, createdAt: _c, keyId: _k, ...rest }) => ({ ...rest, successorId: successors.get(rest.id) ?? null }));
}

export const randomPassphrase = () => randomBytes(18).toString('base64url');

/**
 * `signet ca move-key <caId> --to pkcs11`: the CA's sealed key into the PKCS#11 token, as a
 * sensitive, non-extractable object. In one transaction: the key is created in the token and
 * recorded, a test signature made through the token is verified with the CA certificate's public
 * key, and only then the CA points at the token's key, the sealed copy is deleted and the move is
 * audited. If anything fails the database is unchanged and the token objects are destroyed.
 */
export async function moveKeyToToken(
  ctx: CaContext,
  caId: string,
  actor = 'cli',
): Promise<{ caId: string; keyUri: string; scrubWarning: string | null; alreadyMoved: boolean }> {
  const keys = ctx.keys;
  if (!(keys instanceof Pkcs11KeyStore))
    throw new SignetError(
      'configuration',
      'moving a CA key into a token needs SIGNET_KEY_STORE=pkcs11 with SIGNET_PKCS11_MODULE, SIGNET_PKCS11_TOKEN and the PIN of the target token',
    );
  const ca = await ctx.stores.cas.get(caId);
  if (!ca) throw new SignetError('not-found', `CA ${caId} does not exist`);
  if (!ca.keyId) throw new SignetError('conflict', `CA ${caId} is kept offline; import its key with \`signet ca import\` first`);
  // Run again after a move (say one whose scrub could not finish while a server read): nothing
  // to move, the scrub runs again.
  if (isPkcs11Uri(ca.keyId)) return { caId, keyUri: ca.keyId, scrubWarning: await keys.scrubRemoved(), alreadyMoved: true };
  const from = ca.keyId;
  const cert = inspectCertificate(ca.certificateDer);
  const privateKey = await keys.sealed.privateKey(from);
  let created: string | undefined;
  let moved: { caId: string; keyUri: string };
  try {
    moved = await ctx.db.transaction(async (tx) => {
      const stored = await keys.importKey(privateKey, tx);
      created = stored.id;
      const probe = randomBytes(32);
      const sig = await stored.signer.sign(probe);
      if (!verifySignature(stored.signer.algorithm.algorithm, cert.publicKey, probe, sig))
        throw new SignetError('key-store', `the test signature made through the token does not verify with CA ${caId}'s certificate; nothing was moved`);
      await ctx.stores.cas.moveKey(caId, from, stored.id, tx);
      await keys.sealed.remove(from, tx);
      await appendAudit(tx, {
        actor,
        action: 'ca.key.moved',
        target: caId,
        details: { from: 'sealed', to: 'pkcs11', keyUri: stored.id, testSignature: 'verified with the CA certificate' },
      });
      return { caId, keyUri: stored.id };
    });
  } catch (e) {
    if (created) await keys.destroy(created).catch(() => undefined);
    throw e;
  }
  // The sealed copy's bytes out of the database files too, not only out of the table.
  return { ...moved, scrubWarning: await keys.scrubRemoved(), alreadyMoved: false };
}
