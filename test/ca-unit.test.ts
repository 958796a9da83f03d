/**
 * The authority layer in this process, with no server and no child process: issuance,
 * revocation, the OCSP service and the CRL publisher over the real stores (storage/stores.ts)
 * on a real database in a temp directory (SQLite, or PostgreSQL under SIGNET_TEST_POSTGRES),
 * real keys and real signatures. Time is the injected clock (CaContext.now), so validity,
 * revocation times and a certificate leaving the CRL when it expires are checked exactly.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, verify, X509Certificate } from 'node:crypto';
import pino from 'pino';
import { AsnConvert } from '@peculiar/asn1-schema';
import { BasicOCSPResponse, OCSPResponse } from '@peculiar/asn1-ocsp';
import { CertificateList } from '@peculiar/asn1-x509';
import { loadConfig } from '../src/config/config.js';
import { openSignet } from '../src/runtime/open.js';
import type { CaContext } from '../src/ca/context.js';
import { createHierarchy } from '../src/ca/hierarchy.js';
import { CaEvents } from '../src/ca/events.js';
import { StatusBus } from '../src/ca/status-bus.js';
import { IssuerRegistry } from '../src/ca/issuers.js';
import { Issuance, type Requester } from '../src/ca/issuance.js';
import { Revocation, type RevokeRequest } from '../src/ca/revocation.js';
import { OcspService } from '../src/ca/ocsp-service.js';
import { CrlPublisher } from '../src/ca/crl-publisher.js';
import { loadProfiles } from '../src/ca/profiles.js';
import { isSignetError } from '../src/errors.js';
import { buildCsr } from '../src/pki/csr-builder.js';
import { ownKey } from '../src/pki/keys.js';
import type { SanEntry } from '../src/pki/names.js';
import { encodeCertId, issuerHashes } from '../src/pki/ocsp.js';
import { sequence } from '../src/pki/der.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';

const DAY = 86_400_000;
const operator: Requester = { principal: { kind: 'operator', actor: 'unit-test' } };

/** The error type a call fails with, or 'ok'. */
async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    if (isSignetError(e)) return e.type;
    throw e;
  }
}

function csrFor(commonName: string | undefined, sans: SanEntry[]): Promise<Buffer> {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return buildCsr(ownKey(privateKey), commonName, sans);
}

const dns = (...names: string[]): SanEntry[] => names.map((value) => ({ type: 'dns', value }));

interface World {
  env: TestEnv;
  ctx: CaContext;
  /** The injected clock; tests move it. */
  clock: { now: number };
  issuance: Issuance;
  revocation: Revocation;
  ocsp: OcspService;
  crls: CrlPublisher;
  /** The status bus revocation publishes on; no subscriber unless a test adds one. */
  bus: StatusBus;
  issuingCaId: string;
  issuingCaDer: Buffer;
}

async function openWorld(): Promise<World> {
  const env = await createTestEnv();
  const config = loadConfig(env.env);
  // Whole seconds: CRL and OCSP times are encoded to the second. One clock for the CA and its
  // audit trail (ca/clock.ts).
  const clock = { now: Math.floor(Date.now() / 1000) * 1000 };
  const ctx: CaContext = await openSignet(config, pino({ level: 'silent' }), { now: () => new Date(clock.now) });
  const ca = { keyAlgorithm: 'ecdsa-p256' as const, validityDays: 3650 };
  const { intermediate } = await createHierarchy(ctx, { subject: 'CN=Unit Root', ...ca }, { subject: 'CN=Unit Issuing', ...ca, pathLen: 0 });
  const events = new CaEvents();
  const bus = new StatusBus(ctx.log);
  const profiles = loadProfiles(undefined);
  const issuers = new IssuerRegistry(ctx);
  const issuance = new Issuance(ctx, issuers, profiles, events);
  const revocation = new Revocation(ctx, bus, events, profiles);
  const ocsp = new OcspService(ctx, bus, { validityMinutes: 60, responderDays: 7, pollMs: 60_000 });
  const crls = new CrlPublisher(ctx, bus, { validityHours: 24, coalesceMs: 60_000 });
  await ocsp.loadIssuers();
  return { env, ctx, clock, issuance, revocation, ocsp, crls, bus, issuingCaId: intermediate.id, issuingCaDer: Buffer.from(intermediate.certificateDer) };
}

async function closeWorld(w: World): Promise<void> {
  w.crls.stop();
  await w.ocsp.stop();
  await w.ctx.db.close();
  await w.env.cleanup();
}

describe('issuance (stores on a real database, injected clock)', () => {
  let w: World;
  before(async () => {
    w = await openWorld();
  });
  after(async () => {
    await closeWorld(w);
  });

  const cases: { name: string; profile: string; cn?: string; sans: SanEntry[]; validityDays?: number; expect: string }[] = [
    { name: 'a DNS name', profile: 'server', sans: dns('a.unit.example'), validityDays: 30, expect: 'ok' },
    { name: 'a DNS name and an IP address', profile: 'server', sans: [...dns('b.unit.example'), { type: 'ip', value: '10.1.2.3' }], expect: 'ok' },
    { name: 'a client whose common name is its SAN', profile: 'client', cn: 'g.unit.example', sans: dns('g.unit.example'), expect: 'ok' },
    { name: 'a common name that is not a SAN', profile: 'client', cn: 'unit client', sans: [], expect: 'rejected-name' },
    { name: 'an unknown profile', profile: 'nope', sans: dns('c.unit.example'), expect: 'bad-request' },
    { name: 'a server with no subjectAltName', profile: 'server', cn: 'no names', sans: [], expect: 'rejected-name' },
    { name: 'the same name twice', profile: 'server', sans: dns('e.unit.example', 'E.unit.example'), expect: 'rejected-name' },
    { name: 'a validity of zero days', profile: 'server', sans: dns('f.unit.example'), validityDays: 0, expect: 'bad-request' },
    { name: 'longer than the profile allows', profile: 'server', sans: dns('d.unit.example'), validityDays: 398, expect: 'policy' },
  ];
  for (const c of cases) {
    test(`${c.name}: ${c.expect}`, async () => {
      const req = { csr: await csrFor(c.cn, c.sans), profile: c.profile, validityDays: c.validityDays };
      if (c.expect !== 'ok') {
        assert.equal(await outcome(w.issuance.issue(req, operator)), c.expect);
        return;
      }
      const issued = await w.issuance.issue(req, operator);
      const stored = await w.ctx.stores.certificates.get(issued.serial);
      assert.ok(stored, 'the certificate is stored before issue() returns');
      assert.equal(stored.status, 'good');
      assert.equal(stored.caId, w.issuingCaId);
      assert.equal(stored.profile, c.profile);
      assert.equal(stored.createdAt.getTime(), w.clock.now, 'createdAt is the injected clock');
      const { newest } = await w.ctx.stores.audit.head();
      assert.equal(newest?.target, issued.serial);
      assert.equal(newest?.time.getTime(), w.clock.now, 'the audit event is at the injected clock too');
      assert.deepEqual(JSON.parse(stored.sans), c.sans);
      assert.equal(stored.sanText, c.sans.map((s) => s.value.toLowerCase()).join(' '));
      assert.equal(stored.revokedAt, null);
      const x509 = new X509Certificate(stored.der);
      assert.ok(x509.verify(new X509Certificate(w.issuingCaDer).publicKey), 'signed by the issuing CA');
      assert.equal(new Date(x509.validFrom).getTime(), stored.notBefore.getTime());
      assert.ok(stored.notBefore.getTime() <= w.clock.now, 'notBefore is not after the clock');
      const days = c.validityDays ?? 90;
      assert.equal(stored.notAfter.getTime(), w.clock.now + days * DAY, `valid for ${days} days from the clock`);
      const status = await w.ctx.stores.certificates.status(issued.serial);
      assert.deepEqual(status, { status: 'good', notAfter: stored.notAfter, revokedAt: null, revocationReason: null });
    });
  }
});

describe('revocation (stores on a real database, injected clock)', () => {
  let w: World;
  before(async () => {
    w = await openWorld();
  });
  after(async () => {
    await closeWorld(w);
  });

  type Step = { op: 'revoke'; req: RevokeRequest } | { op: 'unhold' };
  const cases: { name: string; steps: Step[]; expect: string[]; final: string }[] = [
    { name: 'revoke', steps: [{ op: 'revoke', req: { reason: 'keyCompromise' } }], expect: ['ok'], final: 'revoked' },
    {
      name: 'revoke twice',
      steps: [
        { op: 'revoke', req: { reason: 'superseded' } },
        { op: 'revoke', req: { reason: 'keyCompromise' } },
      ],
      expect: ['ok', 'conflict'],
      final: 'revoked',
    },
    { name: 'hold, then release', steps: [{ op: 'revoke', req: { reason: 'certificateHold' } }, { op: 'unhold' }], expect: ['ok', 'ok'], final: 'good' },
    {
      name: 'hold twice',
      steps: [
        { op: 'revoke', req: { reason: 'certificateHold' } },
        { op: 'revoke', req: { reason: 'certificateHold' } },
      ],
      expect: ['ok', 'conflict'],
      final: 'hold',
    },
    {
      name: 'hold, then revoke',
      steps: [
        { op: 'revoke', req: { reason: 'certificateHold' } },
        { op: 'revoke', req: { reason: 'cessationOfOperation' } },
      ],
      expect: ['ok', 'ok'],
      final: 'revoked',
    },
    { name: 'release what is not held', steps: [{ op: 'unhold' }], expect: ['conflict'], final: 'good' },
    { name: 'removeFromCRL', steps: [{ op: 'revoke', req: { reason: 'removeFromCRL' } }], expect: ['bad-request'], final: 'good' },
    {
      name: 'an invalidity date in the future',
      steps: [{ op: 'revoke', req: { reason: 'keyCompromise', invalidityDate: 'future' as unknown as Date } }],
      expect: ['bad-request'],
      final: 'good',
    },
    {
      name: 'a key compromise before the certificate',
      steps: [{ op: 'revoke', req: { reason: 'keyCompromise', invalidityDate: 'before' as unknown as Date } }],
      expect: ['ok'],
      final: 'revoked',
    },
    {
      name: 'superseded before the certificate',
      steps: [{ op: 'revoke', req: { reason: 'superseded', invalidityDate: 'before' as unknown as Date } }],
      expect: ['bad-request'],
      final: 'good',
    },
    {
      name: 'by a CA that did not issue it',
      steps: [{ op: 'revoke', req: { reason: 'superseded', caId: 'int-0000000000' } }],
      expect: ['not-found'],
      final: 'good',
    },
  ];
  for (const c of cases) {
    test(`${c.name}: ${c.expect.join(', ')}`, async () => {
      const { serial } = await w.issuance.issue(
        { csr: await csrFor(undefined, dns(`r${Math.random().toString(36).slice(2)}.unit.example`)), profile: 'server' },
        operator,
      );
      const notBefore = (await w.ctx.stores.certificates.get(serial))!.notBefore;
      const got: string[] = [];
      let last: RevokeRequest | undefined;
      for (const s of c.steps) {
        w.clock.now += 60_000; // each change a minute later, so its time is the clock's, not the last one's
        if (s.op === 'unhold') {
          got.push(await outcome(w.revocation.unhold(serial, operator)));
          continue;
        }
        const when = s.req.invalidityDate as unknown as string | undefined;
        const req = {
          ...s.req,
          invalidityDate: when === 'future' ? new Date(w.clock.now + DAY) : when === 'before' ? new Date(notBefore.getTime() - DAY) : undefined,
        };
        const r = await outcome(w.revocation.revoke(serial, req, operator));
        got.push(r);
        if (r === 'ok') last = req;
      }
      assert.deepEqual(got, c.expect);
      const stored = (await w.ctx.stores.certificates.get(serial))!;
      assert.equal(stored.status, c.final);
      if (c.final === 'good') {
        assert.equal(stored.revokedAt, null);
        assert.equal(stored.revocationReason, null);
      } else {
        const changedAt = w.clock.now - 60_000 * (c.steps.length - 1 - got.lastIndexOf('ok'));
        assert.equal(stored.revokedAt?.getTime(), changedAt, 'revokedAt is the clock at the change');
        assert.equal(stored.statusChangedAt?.getTime(), changedAt);
        assert.equal(stored.revocationReason, last!.reason);
        assert.equal(stored.invalidityDate?.getTime() ?? null, last!.invalidityDate?.getTime() ?? null);
      }
    });
  }

  test('an unknown serial is not found', async () => {
    assert.equal(await outcome(w.revocation.revoke('0badc0ffee', { reason: 'superseded' }, operator)), 'not-found');
    assert.equal(await outcome(w.revocation.unhold('0badc0ffee', operator)), 'not-found');
  });
});

/** OCSPRequest { tbsRequest { requestList { Request { reqCert } } } } for one serial of the CA. */
function ocspRequest(caDer: Buffer, serialHex: string): Buffer {
  const h = issuerHashes(caDer).sha1;
  return sequence(
    sequence(
      sequence(sequence(encodeCertId({ hashAlgorithm: 'sha1', issuerNameHash: h.nameHash, issuerKeyHash: h.keyHash, serial: Buffer.from(serialHex, 'hex') }))),
    ),
  );
}

/** The status in a single-response OCSP answer, checked against its responder's signature. */
function ocspStatus(der: Buffer): { status: 'good' | 'revoked' | 'unknown'; revokedAt?: Date; thisUpdate: Date } {
  const resp = AsnConvert.parse(der, OCSPResponse);
  assert.equal(resp.responseStatus, 0, 'successful');
  const basic = AsnConvert.parse(Buffer.from(resp.responseBytes!.response.buffer), BasicOCSPResponse);
  const responder = new X509Certificate(Buffer.from(AsnConvert.serialize(basic.certs![0]!)));
  const tbs = Buffer.from(AsnConvert.serialize(basic.tbsResponseData));
  assert.ok(verify('sha256', tbs, { key: responder.publicKey, dsaEncoding: 'der' }, Buffer.from(basic.signature)), 'signed by the delegated responder');
  const single = basic.tbsResponseData.responses[0]!;
  const s = single.certStatus;
  const status = s.good !== undefined ? 'good' : s.revoked ? 'revoked' : 'unknown';
  return { status, revokedAt: s.revoked?.revocationTime, thisUpdate: single.thisUpdate };
}

describe('the OCSP service (stores on a real database, injected clock)', () => {
  let w: World;
  before(async () => {
    w = await openWorld();
  });
  after(async () => {
    await closeWorld(w);
  });

  const cases: { name: string; change?: RevokeRequest; expect: 'good' | 'revoked' | 'unknown' }[] = [
    { name: 'an issued certificate', expect: 'good' },
    { name: 'a revoked certificate', change: { reason: 'keyCompromise' }, expect: 'revoked' },
    { name: 'a held certificate', change: { reason: 'certificateHold' }, expect: 'revoked' },
  ];
  for (const c of cases) {
    test(`${c.name}: ${c.expect}`, async () => {
      const { serial } = await w.issuance.issue(
        { csr: await csrFor(undefined, dns(`o${Math.random().toString(36).slice(2)}.unit.example`)), profile: 'server' },
        operator,
      );
      const before = await w.ocsp.respond(ocspRequest(w.issuingCaDer, serial));
      assert.equal(ocspStatus(before.der).status, 'good');
      w.clock.now += 5_000;
      if (c.change) {
        await w.revocation.revoke(serial, c.change, operator);
        await w.ocsp.invalidate(serial, true); // what a status change on the bus does in a serving process
      }
      const a = await w.ocsp.respond(ocspRequest(w.issuingCaDer, serial));
      assert.equal(a.httpStatus, 200);
      const got = ocspStatus(a.der);
      assert.equal(got.status, c.expect);
      if (c.change) {
        assert.equal(got.revokedAt?.getTime(), w.clock.now, 'revoked at the clock');
        assert.equal(got.thisUpdate.getTime(), w.clock.now, 're-signed at the change');
      }
    });
  }

  test('on the status bus: a change made here is signed at once; a polled one only when its answer is cached', async () => {
    const ocsp = new OcspService(w.ctx, w.bus, { validityMinutes: 60, responderDays: 7, pollMs: 60_000 });
    let signed = 0;
    ocsp.observe((o) => {
      if (o === 'signed') signed++;
    });
    await ocsp.start();
    try {
      const issue = async () =>
        (await w.issuance.issue({ csr: await csrFor(undefined, dns(`b${Math.random().toString(36).slice(2)}.unit.example`)), profile: 'server' }, operator))
          .serial;
      const cached = await issue();
      const uncached = await issue();
      await ocsp.respond(ocspRequest(w.issuingCaDer, cached));
      assert.equal(signed, 1);
      w.clock.now += 5_000;
      await w.bus.receive({ origin: 'replica', change: { kind: 'certificate', serial: uncached } });
      assert.equal(signed, 1, 'a polled serial with no cached answer is not signed');
      await w.bus.receive({ origin: 'replica', change: { kind: 'certificate', serial: cached } });
      assert.equal(signed, 2, 'a polled serial with a cached answer is re-signed before the poll goes on');
      const again = await ocsp.respond(ocspRequest(w.issuingCaDer, cached));
      assert.equal(signed, 2, 'and answered from the cache');
      assert.equal(ocspStatus(again.der).thisUpdate.getTime(), w.clock.now);
      w.clock.now += 5_000;
      await w.revocation.revoke(uncached, { reason: 'keyCompromise' }, operator);
      for (let i = 0; i < 250 && signed < 3; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(signed, 3, 'a change made here is signed at once, cached or not');
      const revoked = await ocsp.respond(ocspRequest(w.issuingCaDer, uncached));
      assert.equal(signed, 3, 'and answered from the cache');
      assert.equal(ocspStatus(revoked.der).status, 'revoked');
    } finally {
      await ocsp.stop();
    }
  });

  test('a serial the CA never issued: unknown', async () => {
    assert.equal(ocspStatus((await w.ocsp.respond(ocspRequest(w.issuingCaDer, '7fffffffffffffffffffffffffff0001'))).der).status, 'unknown');
  });

  test('a malformed request: 400, malformedRequest', async () => {
    const a = await w.ocsp.respond(Buffer.from([0x30, 0x03, 0x02, 0x01]));
    assert.equal(a.httpStatus, 400);
    assert.equal(AsnConvert.parse(a.der, OCSPResponse).responseStatus, 1);
  });

  test('the delegated responder is stored for the CA, valid at the clock', async () => {
    const r = await w.ctx.stores.ocsp.currentResponder(w.issuingCaId, w.ctx.now());
    assert.ok(r);
    assert.equal(r.caId, w.issuingCaId);
    assert.ok(r.notBefore.getTime() <= w.clock.now && r.notAfter.getTime() > w.clock.now);
  });
});

/** A serial as a number's hex, whatever leading zeros its encoding has. */
const serialKey = (hex: string): string => BigInt('0x' + hex).toString(16);

/** The CRL's number and entries (serial → reason code or null), checked against the CA's signature. */
function readCrl(der: Buffer, caDer: Buffer): { number: bigint; serials: Map<string, number | null>; thisUpdate: Date } {
  const crl = AsnConvert.parse(der, CertificateList);
  const tbs = Buffer.from(AsnConvert.serialize(crl.tbsCertList));
  assert.ok(verify('sha256', tbs, { key: new X509Certificate(caDer).publicKey, dsaEncoding: 'der' }, Buffer.from(crl.signature)), 'signed by the CA');
  const numberExt = crl.tbsCertList.crlExtensions!.find((e) => e.extnID === '2.5.29.20')!;
  const numberDer = Buffer.from(numberExt.extnValue.buffer);
  const number = BigInt('0x' + numberDer.subarray(2).toString('hex'));
  const serials = new Map<string, number | null>();
  for (const e of crl.tbsCertList.revokedCertificates ?? []) {
    const reason = e.crlEntryExtensions?.find((x) => x.extnID === '2.5.29.21');
    serials.set(serialKey(Buffer.from(e.userCertificate).toString('hex')), reason ? Buffer.from(reason.extnValue.buffer).at(-1)! : null);
  }
  return { number, serials, thisUpdate: crl.tbsCertList.thisUpdate.getTime() };
}

describe('the CRL publisher (stores on a real database, injected clock)', () => {
  let w: World;
  before(async () => {
    w = await openWorld();
  });
  after(async () => {
    await closeWorld(w);
  });

  test('entries follow revocations, holds, releases and expiry; numbers only grow', async () => {
    const issue = async (validityDays: number) =>
      (
        await w.issuance.issue(
          { csr: await csrFor(undefined, dns(`c${Math.random().toString(36).slice(2)}.unit.example`)), profile: 'server', validityDays },
          operator,
        )
      ).serial;
    const short = await issue(2);
    const long = await issue(30);
    const held = await issue(30);
    const steps: { name: string; act: () => Promise<unknown>; advance: number; entries: Record<string, number | null> }[] = [
      { name: 'none revoked', act: async () => undefined, advance: 0, entries: {} },
      {
        name: 'two revoked, one held',
        advance: 60_000,
        entries: { [short]: 1, [long]: 4, [held]: 6 },
        act: async () => {
          await w.revocation.revoke(short, { reason: 'keyCompromise' }, operator);
          await w.revocation.revoke(long, { reason: 'superseded' }, operator);
          await w.revocation.revoke(held, { reason: 'certificateHold' }, operator);
        },
      },
      { name: 'the hold released', advance: 60_000, entries: { [short]: 1, [long]: 4 }, act: () => w.revocation.unhold(held, operator) },
      { name: 'the short certificate expired', advance: 3 * DAY, entries: { [long]: 4 }, act: async () => undefined },
    ];
    let lastNumber = 0n;
    for (const s of steps) {
      w.clock.now += s.advance;
      await s.act();
      const crl = await w.crls.publish(w.issuingCaId);
      const read = readCrl(crl.der, w.issuingCaDer);
      assert.ok(read.number > lastNumber, `${s.name}: the number grows`);
      assert.equal(read.number, crl.number);
      lastNumber = read.number;
      assert.equal(crl.thisUpdate.getTime(), w.clock.now, `${s.name}: thisUpdate is the clock`);
      assert.equal(read.thisUpdate.getTime(), w.clock.now);
      assert.equal(crl.nextUpdate.getTime(), w.clock.now + DAY);
      assert.deepEqual(Object.fromEntries(read.serials), Object.fromEntries(Object.entries(s.entries).map(([k, v]) => [serialKey(k), v])), s.name);
      assert.equal(crl.entries, Object.keys(s.entries).length);
      const served = await w.crls.latest(w.issuingCaId);
      assert.equal(served?.number, crl.number, `${s.name}: the newest CRL is served`);
      assert.ok(served.der.equals(crl.der));
      const head = await w.ctx.stores.crls.head(w.issuingCaId);
      assert.equal(head?.number, crl.number);
    }
  });

  test('refreshDue re-signs past half-life, not before', async () => {
    const before = (await w.ctx.stores.crls.head(w.issuingCaId))!;
    w.clock.now += DAY / 2 - 60_000;
    await w.crls.refreshDue();
    const rootAndIssuing = (await w.ctx.stores.crls.head(w.issuingCaId))!;
    assert.equal(rootAndIssuing.number, before.number, 'before half-life: no new CRL');
    w.clock.now += 120_000;
    await w.crls.refreshDue();
    const after = (await w.ctx.stores.crls.head(w.issuingCaId))!;
    assert.ok(after.number > before.number, 'past half-life: a new CRL');
    assert.equal(after.thisUpdate.getTime(), w.clock.now);
  });
});
