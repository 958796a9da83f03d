/**
 * CA rotation and re-certification (ca/succession.ts) in this process, on a real database with
 * real keys and the injected clock: who issues after a rotation (the default, a request or a
 * profile naming the old CA, a renewal), what the predecessor still does (CRL, OCSP, revocation
 * of its certificates), its retirement when its last certificate expires, re-certification of a
 * CA's key, the renewal windows (ARI) of a rotated CA's certificates, and every refusal.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { loadConfig } from '../src/config/config.js';
import { openSignet } from '../src/runtime/open.js';
import type { CaContext } from '../src/ca/context.js';
import { createHierarchy, createIntermediate } from '../src/ca/hierarchy.js';
import { CaEvents } from '../src/ca/events.js';
import { StatusBus } from '../src/ca/status-bus.js';
import { IssuerRegistry } from '../src/ca/issuers.js';
import { Issuance, type Requester } from '../src/ca/issuance.js';
import { Revocation } from '../src/ca/revocation.js';
import { OcspService } from '../src/ca/ocsp-service.js';
import { CrlPublisher } from '../src/ca/crl-publisher.js';
import { loadProfiles } from '../src/ca/profiles.js';
import { renewCa, retireFinished, rotateCa } from '../src/ca/succession.js';
import { rolloverRoot } from '../src/ca/root-rollover.js';
import { renewalWindow } from '../src/ca/renewal-window.js';
import { subordinateKeyProblem } from '../src/ca/key-policy.js';
import { isSignetError } from '../src/errors.js';
import { buildCsr } from '../src/pki/csr-builder.js';
import { ownKey } from '../src/pki/keys.js';
import { inspectCertificate } from '../src/pki/certificate.js';
import { AsnConvert } from '@peculiar/asn1-schema';
import { CertificateList } from '@peculiar/asn1-x509';
import { sequence } from '../src/pki/der.js';
import { encodeCertId, issuerHashes } from '../src/pki/ocsp.js';
import { BasicOCSPResponse, OCSPResponse } from '@peculiar/asn1-ocsp';
import { createTestEnv, type TestEnv } from './helpers/env.js';
import { countRows, sql } from './helpers/sql.js';

const DAY = 86_400_000;
const operator: Requester = { principal: { kind: 'operator', actor: 'rotation-test' } };

async function failure(p: Promise<unknown>): Promise<{ type: string; detail: string }> {
  try {
    await p;
  } catch (e) {
    if (isSignetError(e)) return { type: e.type, detail: e.detail };
    throw e;
  }
  assert.fail('expected a refusal');
}

const csr = () => buildCsr(ownKey(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey), undefined, [{ type: 'dns', value: 'svc.rotation.example' }]);

interface World {
  env: TestEnv;
  ctx: CaContext;
  clock: { now: number };
  issuers: IssuerRegistry;
  issuance: Issuance;
  revocation: Revocation;
  ocsp: OcspService;
  crls: CrlPublisher;
  rootId: string;
  intId: string;
}

async function openWorld(profilesFile?: (w: { rootId: string; intId: string; dir: string }) => string, rootPathLen?: number): Promise<World> {
  const env = await createTestEnv();
  const clock = { now: Math.floor(Date.now() / 1000) * 1000 };
  const ctx: CaContext = await openSignet(loadConfig(env.env), pino({ level: 'silent' }), { now: () => new Date(clock.now) });
  const { root, intermediate } = await createHierarchy(
    ctx,
    { subject: 'CN=Rotation Root', keyAlgorithm: 'ecdsa-p384', validityDays: 3650, pathLen: rootPathLen },
    { subject: 'CN=Rotation Issuing,O=Signet', keyAlgorithm: 'ecdsa-p256', validityDays: 1000, pathLen: 0 },
  );
  const profiles = loadProfiles(profilesFile?.({ rootId: root.id, intId: intermediate.id, dir: env.dataDir }));
  const events = new CaEvents();
  const bus = new StatusBus(ctx.log);
  const issuers = new IssuerRegistry(ctx);
  bus.subscribe((d) => {
    if (d.change.kind === 'ca') issuers.invalidate(d.change.caId);
  });
  const ocsp = new OcspService(ctx, bus, { validityMinutes: 60, responderDays: 7, pollMs: 60_000 });
  await ocsp.start();
  return {
    env,
    ctx,
    clock,
    issuers,
    issuance: new Issuance(ctx, issuers, profiles, events),
    revocation: new Revocation(ctx, bus, events, profiles),
    ocsp,
    crls: new CrlPublisher(ctx, bus, { validityHours: 24, coalesceMs: 60_000 }),
    rootId: root.id,
    intId: intermediate.id,
  };
}

async function closeWorld(w: World): Promise<void> {
  w.crls.stop();
  await w.ocsp.stop();
  await w.ctx.db.close();
  await w.env.cleanup();
}

/** The serials (lower-case hex, no leading zeros) a CRL lists. */
function crlSerials(der: Buffer): string[] {
  const crl = AsnConvert.parse(der, CertificateList);
  return (crl.tbsCertList.revokedCertificates ?? []).map((e) => BigInt('0x' + Buffer.from(e.userCertificate).toString('hex')).toString(16));
}
const serialKey = (hex: string) => BigInt('0x' + hex).toString(16);

/** The newest audit events, oldest first. */
async function lastEvents(w: World, n: number) {
  const rows = await sql<{ action: string; target: string | null; details: string | null }>(
    w.env,
    `SELECT "action", "target", "details" FROM "AuditEvent" ORDER BY "seq" DESC LIMIT ${n}`,
  );
  return rows.reverse();
}

async function issue(w: World, extra: { caId?: string; profile?: string } = {}) {
  return w.issuance.issue({ csr: await csr(), profile: extra.profile ?? 'server', caId: extra.caId, validityDays: 90 }, operator);
}

describe('ca rotate', () => {
  let w: World;
  let before1: Awaited<ReturnType<typeof issue>>;
  let successorId: string;
  before(async () => {
    w = await openWorld(({ intId, dir }) => {
      const file = join(dir, 'profiles.json');
      writeFileSync(file, JSON.stringify({ pinned: { caId: intId, defaultValidityDays: 90, maxValidityDays: 90, extKeyUsage: ['serverAuth'] } }));
      return file;
    });
    before1 = await issue(w);
  });
  after(() => closeWorld(w));

  test('refusals change nothing: a root, an unknown CA, a weaker or Ed25519 key under the policy, an overlap past the CA', async () => {
    const cas = await countRows(w.env, 'CertificateAuthority');
    const keys = await countRows(w.env, 'KeyRecord');
    const events = await countRows(w.env, 'AuditEvent');
    const root = await failure(rotateCa(w.ctx, w.rootId));
    assert.equal(root.type, 'bad-request');
    assert.match(root.detail, /is a root: a root is replaced with `signet ca rollover-root`/);
    assert.equal((await failure(rotateCa(w.ctx, 'int-0000000000'))).type, 'not-found');
    const weak = await failure(rotateCa(w.ctx, w.intId, { keyAlgorithm: 'rsa-2048' }));
    assert.equal(weak.type, 'policy');
    assert.match(weak.detail, /rsa-2048 key \(112-bit security\) is weaker than this parent's policy allows \(at least 128-bit/);
    const ed = await failure(rotateCa(w.ctx, w.intId, { keyAlgorithm: 'ed25519' }));
    assert.equal(ed.type, 'policy');
    assert.match(ed.detail, /Ed25519 CA key is allowed only under an Ed25519 parent/);
    const overlap = await failure(rotateCa(w.ctx, w.intId, { overlapDays: 1001 }));
    assert.equal(overlap.type, 'bad-request');
    assert.match(overlap.detail, /an overlap of 1001 days would end .* after CA int-\w+ itself expires .*; at most (999|1000) days/);
    assert.equal((await failure(rotateCa(w.ctx, w.intId, { overlapDays: 0 }))).type, 'bad-request');
    assert.equal(await countRows(w.env, 'CertificateAuthority'), cas);
    assert.equal(await countRows(w.env, 'KeyRecord'), keys);
    assert.equal(await countRows(w.env, 'AuditEvent'), events);
    assert.equal((await w.ctx.stores.cas.get(w.intId))!.status, 'active');
  });

  test('a successor with the same subject, pathLen and parent and a new key takes over; the predecessor is retiring', async () => {
    w.clock.now += 1000;
    const r = await rotateCa(w.ctx, w.intId, { overlapDays: 30, actor: 'rotation-test' });
    assert.equal(r.alreadyRotated, false);
    successorId = r.successor.id;
    const old = inspectCertificate((await w.ctx.stores.cas.get(w.intId))!.certificateDer);
    const neu = inspectCertificate(r.successor.certificateDer);
    assert.ok(old.subjectNameDer.equals(neu.subjectNameDer), 'same subject');
    assert.ok(old.issuerNameDer.equals(neu.issuerNameDer), 'same parent');
    assert.ok(!old.subjectKeyId.equals(neu.subjectKeyId), 'new subject key id');
    assert.equal(neu.pathLen, 0);
    assert.notEqual(r.successor.serial, old.serial.toString('hex'));
    assert.equal(r.successor.parentId, w.rootId);
    assert.equal(r.successor.predecessorId, w.intId);
    const pred = (await w.ctx.stores.cas.get(w.intId))!;
    assert.equal(pred.status, 'retiring');
    assert.equal(pred.retiringSince!.getTime(), w.clock.now);
    assert.equal(pred.overlapEndsAt!.getTime(), w.clock.now + 30 * DAY);
    assert.equal(
      new X509Certificate(r.successor.certificateDer).verify(new X509Certificate((await w.ctx.stores.cas.get(w.rootId))!.certificateDer).publicKey),
      true,
    );
    // Each step is an audit event, in order.
    const actions = (await lastEvents(w, 5)).map((e) => `${e.action} ${e.target}`);
    assert.deepEqual(actions, [
      `ca.key.generated ${w.intId}`,
      `ca.created ${successorId}`,
      `ca.key.used ${w.rootId}`,
      `ca.status.changed ${w.intId}`,
      `ca.issuance.moved ${w.intId}`,
    ]);
  });

  test('run again, it reports the successor and changes nothing; a second rotation of the retiring CA is not made', async () => {
    const cas = await countRows(w.env, 'CertificateAuthority');
    const r = await rotateCa(w.ctx, w.intId);
    assert.equal(r.alreadyRotated, true);
    assert.equal(r.successor.id, successorId);
    assert.equal(await countRows(w.env, 'CertificateAuthority'), cas);
  });

  test('issuance moves to the successor: by default, when a request names the old CA, under a profile pinned to it, and on renewal', async () => {
    // The issuer index still holds the predecessor as active (as another process's would, for
    // up to 15 s): its signature is discarded at commit and the successor signs.
    assert.equal((await w.issuers.get(w.intId)).status, 'active', 'the index has not heard of the rotation');
    assert.equal((await issue(w)).caId, successorId);
    assert.equal(
      await countRows(w.env, 'Certificate', 'WHERE "caId" = ?', [w.intId]),
      1,
      "only the certificate issued before the rotation is the predecessor's",
    );
    assert.equal((await issue(w, { caId: w.intId })).caId, successorId);
    assert.equal((await issue(w, { profile: 'pinned' })).caId, successorId);
    assert.equal((await issue(w, { profile: 'pinned', caId: successorId })).caId, successorId, 'a profile listing a CA allows its successor');
    const renewed = await w.issuance.renew(before1.serial, undefined, operator);
    assert.equal(renewed.caId, successorId);
    const succ = (await w.ctx.stores.cas.get(successorId))!;
    assert.equal(new X509Certificate(renewed.der).verify(new X509Certificate(succ.certificateDer).publicKey), true, 'signed by the successor');
  });

  test('the predecessor keeps publishing its CRL: a pre-rotation certificate revoked now is on it', async () => {
    w.clock.now += 1000;
    await w.revocation.revoke(before1.serial, { reason: 'keyCompromise' }, operator);
    const crl = await w.crls.publish(w.intId);
    assert.ok(crlSerials(crl.der).includes(serialKey(before1.serial)), 'on the predecessor CRL');
    assert.equal((await w.ctx.stores.crls.publishingCaIds()).includes(w.intId), true);
  });

  test('a retiring CA becomes retired once its last certificate expired, audited, and still publishes its CRL', async () => {
    assert.deepEqual(await retireFinished(w.ctx), [], 'its certificates are still valid');
    w.clock.now += 91 * DAY;
    assert.deepEqual(await retireFinished(w.ctx), [w.intId]);
    assert.equal((await w.ctx.stores.cas.get(w.intId))!.status, 'retired');
    assert.deepEqual(await retireFinished(w.ctx), []);
    const [ev] = await lastEvents(w, 1);
    assert.equal(ev!.action, 'ca.status.changed');
    assert.match(ev!.details ?? '', /"to":"retired"/);
    assert.ok((await w.ctx.stores.crls.publishingCaIds()).includes(w.intId));
    assert.ok(await w.crls.publish(w.intId));
    // The command run again (say after a restart retired it at once) still reports its successor.
    const again = await rotateCa(w.ctx, w.intId, { keyAlgorithm: 'ecdsa-p384' });
    assert.equal(again.alreadyRotated, true);
    assert.equal(again.successor.id, successorId);
    assert.match(again.warnings.join('\n'), /--key ecdsa-p384 was not used: int-\w+ had already been rotated to int-\w+ \(ecdsa-p256\)/);
  });
});

describe('rotation of a revoked CA, and a second rotation down the line', () => {
  let w: World;
  before(async () => {
    w = await openWorld();
  });
  after(() => closeWorld(w));

  test('a revoked CA is not rotated', async () => {
    const other = await createIntermediate(w.ctx, w.rootId, { subject: 'CN=Doomed', keyAlgorithm: 'ecdsa-p256', validityDays: 100 });
    await w.revocation.revokeCa(other.id, 'keyCompromise', operator);
    const r = await failure(rotateCa(w.ctx, other.id));
    assert.equal(r.type, 'conflict');
    assert.match(r.detail, /is revoked: only an active CA is rotated/);
  });

  test('A → B → C: a request naming A is issued by C; the default stays in the line', async () => {
    const b = (await rotateCa(w.ctx, w.intId)).successor;
    const c = (await rotateCa(w.ctx, b.id, { keyAlgorithm: 'ecdsa-p384' })).successor;
    assert.equal(c.keyAlgorithm, 'ecdsa-p384');
    w.issuers.invalidate();
    assert.equal((await issue(w, { caId: w.intId })).caId, c.id);
    assert.equal((await issue(w)).caId, c.id);
  });
});

describe('a CA record changed in the database is neither rotated nor renewed', () => {
  let w: World;
  before(async () => {
    w = await openWorld();
  });
  after(() => closeWorld(w));

  test("another CA's certificate put in the row (to shed name constraints), and a revoked CA flipped back to active", async () => {
    const fenced = await createIntermediate(w.ctx, w.rootId, {
      subject: 'CN=Fenced',
      keyAlgorithm: 'ecdsa-p256',
      validityDays: 100,
      nameConstraints: { permittedDns: ['fenced.example'] },
    });
    const open = await createIntermediate(w.ctx, w.rootId, { subject: 'CN=Open', keyAlgorithm: 'ecdsa-p256', validityDays: 100 });
    await sql(w.env, 'UPDATE "CertificateAuthority" SET "certificateDer" = ? WHERE "id" = ?', [Buffer.from(open.certificateDer), fenced.id]);
    const cas = await countRows(w.env, 'CertificateAuthority');
    for (const attempt of [() => rotateCa(w.ctx, fenced.id), () => renewCa(w.ctx, fenced.id)]) {
      const r = await failure(attempt());
      assert.equal(r.type, 'conflict');
      assert.match(r.detail, new RegExp(`CA ${fenced.id}'s record fails its integrity check \\(.*\\): it was changed in the database`));
    }
    assert.equal(await countRows(w.env, 'CertificateAuthority'), cas);
    await w.revocation.revokeCa(open.id, 'keyCompromise', operator);
    await sql(w.env, `UPDATE "CertificateAuthority" SET "status" = 'active' WHERE "id" = ?`, [open.id]);
    for (const attempt of [() => rotateCa(w.ctx, open.id), () => renewCa(w.ctx, open.id)]) {
      const r = await failure(attempt());
      assert.equal(r.type, 'conflict');
      assert.match(r.detail, /was revoked \(the audit trail records it/);
    }
    assert.equal(await countRows(w.env, 'CertificateAuthority'), cas);
  });
});

/** The status the OCSP service gives a serial issued by the CA with certificate `caDer`. */
async function ocspStatusOf(w: World, caDer: Uint8Array, serial: string): Promise<string> {
  const h = issuerHashes(Buffer.from(caDer)).sha1;
  const req = sequence(
    sequence(
      sequence(sequence(encodeCertId({ hashAlgorithm: 'sha1', issuerNameHash: h.nameHash, issuerKeyHash: h.keyHash, serial: Buffer.from(serial, 'hex') }))),
    ),
  );
  const resp = AsnConvert.parse((await w.ocsp.respond(req)).der, OCSPResponse);
  const basic = AsnConvert.parse(Buffer.from(resp.responseBytes!.response.buffer), BasicOCSPResponse);
  const st = basic.tbsResponseData.responses[0]!.certStatus;
  return st.good !== undefined ? 'good' : st.revoked ? 'revoked' : 'unknown';
}

const pinnedProfile = ({ intId, dir }: { intId: string; dir: string }) => {
  const file = join(dir, 'profiles.json');
  writeFileSync(file, JSON.stringify({ pinned: { caId: intId, defaultValidityDays: 30, maxValidityDays: 90, extKeyUsage: ['serverAuth'] } }));
  return file;
};

describe('what a replaced CA may still do, and where its requests go (attack round 1)', () => {
  let w: World;
  before(async () => {
    w = await openWorld(pinnedProfile);
  });
  after(() => closeWorld(w));

  test('a retiring CA signs no new CA certificate; a child rotated under it goes to its successor', async () => {
    const mid = await createIntermediate(w.ctx, w.rootId, { subject: 'CN=Mid', keyAlgorithm: 'ecdsa-p256', validityDays: 300, pathLen: 1 });
    const child = await createIntermediate(w.ctx, mid.id, { subject: 'CN=Child', keyAlgorithm: 'ecdsa-p256', validityDays: 100 });
    const midNext = (await rotateCa(w.ctx, mid.id)).successor;
    const made = await failure(createIntermediate(w.ctx, mid.id, { subject: 'CN=Late', keyAlgorithm: 'ecdsa-p256', validityDays: 10 }));
    assert.equal(made.type, 'conflict');
    assert.match(made.detail, new RegExp(`CA ${mid.id} is retiring \\(replaced by ${midNext.id}\\): it signs no new CA certificates`));
    assert.equal((await failure(renewCa(w.ctx, child.id))).type, 'conflict');
    const rotated = await rotateCa(w.ctx, child.id);
    assert.equal(rotated.successor.parentId, midNext.id, "signed by the parent's successor");
    assert.equal(new X509Certificate(rotated.successor.certificateDer).verify(new X509Certificate(midNext.certificateDer).publicKey), true);
  });

  test('revoking a renewed CA: OCSP says revoked at once for its superseded certificate too', async () => {
    const ca = await createIntermediate(w.ctx, w.rootId, { subject: 'CN=Renewed then revoked', keyAlgorithm: 'ecdsa-p256', validityDays: 100 });
    const r = await renewCa(w.ctx, ca.id);
    const root = (await w.ctx.stores.cas.get(w.rootId))!;
    const [kept] = await w.ctx.stores.cas.caCertificates({ caId: ca.id });
    await w.ocsp.loadIssuers();
    assert.equal(await ocspStatusOf(w, root.certificateDer, kept!.serial), 'good', 'answered (and cached) before');
    w.clock.now += 1000;
    await w.revocation.revokeCa(ca.id, 'keyCompromise', operator);
    assert.equal(await ocspStatusOf(w, root.certificateDer, kept!.serial), 'revoked');
    assert.equal(await ocspStatusOf(w, root.certificateDer, r.ca.serial), 'revoked');
  });

  test('three renewals at once: one renews, the others are refused (409)', async () => {
    const ca = await createIntermediate(w.ctx, w.rootId, { subject: 'CN=Raced', keyAlgorithm: 'ecdsa-p256', validityDays: 100 });
    const rs = await Promise.allSettled([renewCa(w.ctx, ca.id), renewCa(w.ctx, ca.id), renewCa(w.ctx, ca.id)]);
    assert.equal(rs.filter((r) => r.status === 'fulfilled').length, 1, JSON.stringify(rs.map((r) => r.status)));
    for (const r of rs) if (r.status === 'rejected') assert.equal(isSignetError(r.reason) && r.reason.type, 'conflict', String(r.reason));
    assert.equal((await w.ctx.stores.cas.caCertificates({ caId: ca.id })).length, 1);
  });

  test('a renewal may not end before what the CA already signed', async () => {
    const leaf = await issue(w);
    const r = await failure(renewCa(w.ctx, leaf.caId, { validityDays: 1 }));
    assert.equal(r.type, 'bad-request');
    assert.match(r.detail, /would end .*, before certificates CA int-\w+ already signed \(the last until .*\): give at least 9\d days/);
  });

  test('a revoked predecessor: requests, profiles and renewals naming it go to its successor; once the successor is revoked too, the line has ended', async () => {
    const a = w.intId;
    const aLeaf = await issue(w, { caId: a });
    const b = (await rotateCa(w.ctx, a)).successor;
    await w.revocation.revokeCa(a, 'keyCompromise', operator);
    w.issuers.invalidate();
    assert.equal((await issue(w, { caId: a })).caId, b.id);
    assert.equal((await w.issuance.renew(aLeaf.serial, undefined, operator)).caId, b.id);
    assert.equal((await issue(w, { profile: 'pinned' })).caId, b.id);
    // B revoked too: A's line has ended.
    const bLeaf = await issue(w, { caId: b.id });
    await createIntermediate(w.ctx, w.rootId, { subject: 'CN=Fresh', keyAlgorithm: 'ecdsa-p256', validityDays: 100, pathLen: 0 });
    await w.revocation.revokeCa(b.id, 'keyCompromise', operator);
    w.issuers.invalidate();
    const again = await failure(rotateCa(w.ctx, a));
    assert.equal(again.type, 'conflict');
    assert.match(again.detail, new RegExp(`CA ${a} was rotated and its successor ${b.id} is revoked; .*signet ca create-intermediate`));
    // A revoked CA's certificates are not renewed elsewhere (as without a rotation).
    const renewed = await failure(w.issuance.renew(bLeaf.serial, undefined, operator));
    assert.equal(renewed.type, 'conflict');
    assert.match(renewed.detail, new RegExp(`CA ${b.id} is revoked and does not issue`));
  });
});

describe('a succession link set in the database between unlike CAs is not followed', () => {
  let w: World;
  before(async () => {
    w = await openWorld(pinnedProfile);
  });
  after(() => closeWorld(w));

  test('a profile pinned to a CA does not move to another CA a database writer linked as its successor', async () => {
    const other = await createIntermediate(w.ctx, w.rootId, { subject: 'CN=Other', keyAlgorithm: 'ecdsa-p256', validityDays: 100, pathLen: 0 });
    await sql(w.env, 'UPDATE "CertificateAuthority" SET "predecessorId" = ? WHERE "id" = ?', [w.intId, other.id]);
    await sql(w.env, `UPDATE "CertificateAuthority" SET "status" = 'retiring' WHERE "id" = ?`, [w.intId]);
    w.issuers.invalidate();
    const pinned = await failure(issue(w, { profile: 'pinned' }));
    assert.equal(pinned.type, 'conflict');
    assert.match(pinned.detail, new RegExp(`CA ${w.intId} is retiring and does not issue`));
    const named = await failure(issue(w, { profile: 'pinned', caId: other.id }));
    assert.equal(named.type, 'policy');
    assert.equal(await countRows(w.env, 'Certificate', 'WHERE "caId" = ?', [other.id]), 0);
  });
});

describe('root rollover: what attack round 2 found', () => {
  let w: World;
  before(async () => {
    w = await openWorld(undefined, 2);
  });
  after(() => closeWorld(w));

  test('refused, nothing changed: --root empty, the old subject in other case, a new root ending before the old', async () => {
    const cas = await countRows(w.env, 'CertificateAuthority');
    const empty = await failure(rolloverRoot(w.ctx, { rootId: '' }));
    assert.equal(empty.type, 'bad-request');
    assert.match(empty.detail, /--root needs a CA id/);
    const cased = await failure(rolloverRoot(w.ctx, { subject: 'cn=ROTATION  root' }));
    assert.equal(cased.type, 'bad-request');
    assert.match(cased.detail, /must differ from the old root's/);
    const short = await failure(rolloverRoot(w.ctx, { validityDays: 1 }));
    assert.equal(short.type, 'bad-request');
    assert.match(short.detail, /the new root would end before the old one .*: --validity-days must be at least 36\d\d/);
    assert.equal(await countRows(w.env, 'CertificateAuthority'), cas);
  });

  test('two rollovers under a pathLen 2 root: the chain stops where a path length would break; a retiring root is not re-certified', async () => {
    const first = await rolloverRoot(w.ctx, {});
    const second = await rolloverRoot(w.ctx, { rootId: first.newRoot.id });
    w.issuers.invalidate();
    const leaf = await issue(w);
    assert.equal(leaf.caId, second.newIntermediate!.id);
    const served = leaf.chain.match(/-----BEGIN CERTIFICATE-----/g)!.length;
    assert.equal(served, 2, "the intermediate and R3-by-R2 only: R2-by-R1 would break R1's pathLen 2");
    assert.ok(leaf.chain.includes(new X509Certificate(second.newWithOld.certificateDer).toString().split('\n')[1]!));
    const renew = await failure(renewCa(w.ctx, w.rootId));
    assert.equal(renew.type, 'conflict');
    assert.match(renew.detail, /is retiring: a retiring CA is not re-certified/);
  });

  test("a cross-certificate is revoked on its own: on its issuer's CRL, OCSP revoked, no longer in served chains", async () => {
    const [root2] = await sql<{ id: string }>(
      w.env,
      'SELECT "id" FROM "CertificateAuthority" r WHERE "parentId" IS NULL AND NOT EXISTS (SELECT 1 FROM "CertificateAuthority" s WHERE s."predecessorId" = r."id")',
    );
    const [x] = (await w.ctx.stores.cas.caCertificates({ caId: root2!.id })).filter((c) => c.kind === 'cross' && c.issuerId !== root2!.id);
    w.clock.now += 1000;
    const r = await w.revocation.revokeCa(x!.id, 'keyCompromise', operator);
    assert.equal(r.status, 'revoked');
    const [ev] = await lastEvents(w, 1);
    assert.equal(`${ev!.action} ${ev!.target}`, `ca.certificate.revoked ${x!.id}`);
    assert.equal((await failure(w.revocation.revokeCa(x!.id, 'keyCompromise', operator))).type, 'conflict');
    const issuer = (await w.ctx.stores.cas.get(x!.issuerId))!;
    assert.equal(await ocspStatusOf(w, issuer.certificateDer, x!.serial), 'revoked');
    assert.ok(crlSerials((await w.crls.publish(issuer.id)).der).includes(serialKey(x!.serial)));
    w.issuers.invalidate();
    assert.equal((await issue(w)).chain.match(/-----BEGIN CERTIFICATE-----/g)!.length, 1, 'the revoked cross-certificate is not offered');
  });
});

describe('a long line of rotations', () => {
  let w: World;
  before(async () => {
    w = await openWorld(pinnedProfile);
  });
  after(() => closeWorld(w));

  test('after 25 rotations a profile pinned to the first CA issues from the 26th; so do a request naming it and a renewal', async () => {
    const first = await issue(w, { profile: 'pinned' });
    let id = w.intId;
    for (let i = 0; i < 25; i++) id = (await rotateCa(w.ctx, id)).successor.id;
    assert.equal((await issue(w, { profile: 'pinned' })).caId, id);
    assert.equal((await issue(w, { caId: w.intId })).caId, id);
    assert.equal((await w.issuance.renew(first.serial, undefined, operator)).caId, id);
  });
});

describe('ca renew (re-certification)', () => {
  let w: World;
  before(async () => {
    w = await openWorld();
  });
  after(() => closeWorld(w));

  test('same key, subject and key id, new serial and validity, never beyond the parent; the old certificate stays answered for', async () => {
    const leaf = await issue(w);
    const before = (await w.ctx.stores.cas.get(w.intId))!;
    w.clock.now += 10 * DAY;
    const r = await renewCa(w.ctx, w.intId, { validityDays: 36_000, actor: 'rotation-test' });
    const old = inspectCertificate(before.certificateDer);
    const neu = inspectCertificate(r.ca.certificateDer);
    assert.equal(r.ca.id, w.intId);
    assert.ok(neu.spkiDer.equals(old.spkiDer), 'same key');
    assert.ok(neu.subjectKeyId.equals(old.subjectKeyId), 'same key id');
    assert.ok(neu.subjectNameDer.equals(old.subjectNameDer), 'same subject');
    assert.notEqual(r.ca.serial, before.serial);
    const root = (await w.ctx.stores.cas.get(w.rootId))!;
    assert.equal(neu.notAfter.getTime(), root.notAfter.getTime(), 'clamped to the parent');
    assert.ok(neu.notBefore > old.notBefore);
    // A leaf issued before verifies under the new certificate (same name and key).
    assert.equal(new X509Certificate(leaf.der).verify(new X509Certificate(r.ca.certificateDer).publicKey), true);
    const [kept] = await w.ctx.stores.cas.caCertificates({ caId: w.intId });
    assert.equal(kept!.id, r.supersededId);
    assert.equal(kept!.kind, 'superseded');
    assert.equal(kept!.serial, before.serial);
    assert.equal(kept!.issuerId, w.rootId);
    // Issuance goes on from the same CA, its chain the new certificate.
    w.issuers.invalidate();
    const after = await issue(w);
    assert.equal(after.caId, w.intId);
    assert.ok(after.chain.includes(new X509Certificate(r.ca.certificateDer).toString().trim().split('\n')[1]!));
  });

  test('a root re-signs itself; a revoked CA is not renewed, and its superseded certificate is revoked with it', async () => {
    const root = await renewCa(w.ctx, w.rootId, { validityDays: 4000 });
    const parts = inspectCertificate(root.ca.certificateDer);
    assert.ok(parts.subjectNameDer.equals(parts.issuerNameDer));
    assert.equal(new X509Certificate(root.ca.certificateDer).verify(new X509Certificate(root.ca.certificateDer).publicKey), true);
    w.clock.now += 1000;
    await w.revocation.revokeCa(w.intId, 'keyCompromise', operator);
    const r = await failure(renewCa(w.ctx, w.intId));
    assert.equal(r.type, 'conflict');
    const [kept] = await w.ctx.stores.cas.caCertificates({ caId: w.intId });
    assert.equal(kept!.status, 'revoked');
    const serials = crlSerials((await w.crls.publish(w.rootId)).der);
    assert.ok(serials.includes(serialKey(kept!.serial)), 'the superseded certificate is on the root CRL');
    assert.ok(serials.includes(serialKey((await w.ctx.stores.cas.get(w.intId))!.serial)), 'and the current one');
  });
});

describe('renewal windows (ARI) of a rotated CA', () => {
  const now = new Date('2027-01-01T00:00:00Z');
  const cert = (i: number) => ({
    serial: `7f${i.toString(16).padStart(30, '0')}`,
    notBefore: new Date(now.getTime() - 30 * DAY),
    notAfter: new Date(now.getTime() + 60 * DAY),
    status: 'good',
  });

  test('an active CA: 2/3 to 5/6 of the life; revoked certificate or CA: now', () => {
    const w = renewalWindow(cert(1), { status: 'active', retiringSince: null, overlapEndsAt: null }, now);
    // A 90-day life that began 30 days ago: from day 60 to day 75.
    assert.equal(w.start.getTime(), now.getTime() + 30 * DAY);
    assert.equal(w.end.getTime(), now.getTime() + 45 * DAY);
    const revoked = renewalWindow({ ...cert(1), status: 'revoked' }, null, now);
    assert.ok(revoked.end.getTime() === now.getTime() && revoked.start < now);
    assert.equal(renewalWindow(cert(1), { status: 'revoked', retiringSince: now, overlapEndsAt: null }, now).end.getTime(), now.getTime());
  });

  test('with an overlap: every window inside [rotation, overlap end], an eighth wide, spread, stable', () => {
    const ca = { status: 'retiring', retiringSince: now, overlapEndsAt: new Date(now.getTime() + 20 * DAY) };
    const windows = Array.from({ length: 50 }, (_, i) => renewalWindow(cert(i), ca, now));
    for (const w of windows) {
      assert.ok(w.start >= now && w.end <= ca.overlapEndsAt, `${w.start.toISOString()}..${w.end.toISOString()}`);
      assert.equal(w.end.getTime() - w.start.getTime(), (20 * DAY) / 8);
    }
    const starts = new Set(windows.map((w) => w.start.getTime()));
    assert.ok(starts.size >= 45, `spread: ${starts.size} distinct starts of 50`);
    const sorted = [...starts].sort((a, b) => a - b);
    assert.ok(sorted.at(-1)! - sorted[0]! > 10 * DAY, 'over most of the overlap');
    assert.deepEqual(renewalWindow(cert(7), ca, now), windows[7], 'asking again gives the same window');
  });

  test('without an overlap: the last third of each life, never before the rotation; a certificate about to expire renews now', () => {
    const ca = { status: 'retiring', retiringSince: now, overlapEndsAt: null };
    const c = cert(3);
    const w = renewalWindow(c, ca, now);
    assert.ok(w.start.getTime() >= now.getTime() && w.end <= c.notAfter);
    const late = { status: 'retired', retiringSince: new Date(c.notAfter.getTime() - 1000), overlapEndsAt: null };
    assert.equal(renewalWindow(c, late, now).end.getTime(), now.getTime());
  });
});

describe('key policy', () => {
  test('no weaker than the parent up to 128-bit; Ed25519 only under Ed25519', () => {
    assert.equal(subordinateKeyProblem('ecdsa-p384', 'ecdsa-p256'), null);
    assert.equal(subordinateKeyProblem('rsa-4096', 'rsa-3072'), null);
    assert.equal(subordinateKeyProblem('rsa-2048', 'rsa-2048'), null);
    assert.match(subordinateKeyProblem('rsa-4096', 'rsa-2048')!, /weaker/);
    assert.equal(subordinateKeyProblem('ed25519', 'ed25519'), null);
    assert.equal(subordinateKeyProblem('ed25519', 'ecdsa-p256'), null);
    assert.match(subordinateKeyProblem('ecdsa-p256', 'ed25519')!, /only under an Ed25519 parent/);
  });
});
