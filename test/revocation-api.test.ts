/**
 * Issue 4, the revocation API end to end: a real `signet serve` (SQLite, or PostgreSQL under
 * test:pg), certificates issued from real OpenSSL CSRs, every RFC 5280 reason, hold and release,
 * the refusals (each leaves the row and the audit trail untouched), the public JSON status, and
 * revoking an intermediate CA onto its parent's CRL. Status is read back through the real
 * relying-party paths: `openssl ocsp` and `openssl crl` on the served CRL.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { api, startServer, type RunningServer } from './helpers/cli.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';
import { newKeyCsr, openssl, parseCrlText, serialValue, TempDir } from './helpers/openssl.js';
import { sql } from './helpers/sql.js';

const REASONS = [
  'unspecified',
  'keyCompromise',
  'caCompromise',
  'affiliationChanged',
  'superseded',
  'cessationOfOperation',
  'certificateHold',
  'privilegeWithdrawn',
  'aACompromise',
] as const;
/** How `openssl crl -text` names each CRLReason (unspecified has no reasonCode extension). */
const OPENSSL_REASON: Record<string, string | null> = {
  unspecified: null,
  keyCompromise: 'Key Compromise',
  caCompromise: 'CA Compromise',
  affiliationChanged: 'Affiliation Changed',
  superseded: 'Superseded',
  cessationOfOperation: 'Cessation Of Operation',
  certificateHold: 'Certificate Hold',
  privilegeWithdrawn: 'Privilege Withdrawn',
  aACompromise: 'AA Compromise',
};
/** Audit events written in the background (CRL and OCSP signing), not by the requests under test. */
const BACKGROUND_ACTIONS = new Set(['crl.signed', 'ocsp.responses.signed', 'ocsp.responder.issued']);
const POLL_DEADLINE_MS = 15_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Issued {
  serial: string;
  certificate: string;
  pem: string;
  caId: string;
}

interface CrlView {
  number: bigint;
  text: string;
  entries: Map<bigint, string>;
  etag: string | null;
}

describe('revocation API', () => {
  let env: TestEnv;
  let server: RunningServer;
  const tmp = new TempDir();
  let rootId: string;
  let intId: string;
  let rootPem: string;
  let bundlePem: string;
  let intPem: string;
  let n = 0;

  async function issue(caId?: string): Promise<Issued> {
    const name = `r${++n}.example.test`;
    const csr = newKeyCsr(name, tmp.file(`${n}.key`));
    const r = await api(server, 'POST', '/api/v1/certificates', { csr: csr, profile: 'server', ...(caId ? { caId } : {}) });
    assert.equal(r.status, 201, r.text);
    return { serial: r.json.serial, certificate: r.json.certificate, pem: tmp.file(`${n}.pem`, r.json.certificate), caId: r.json.caId };
  }

  async function fetchCrl(caId: string): Promise<CrlView> {
    const res = await fetch(`${server.url}/pki/${caId}.crl`);
    assert.equal(res.status, 200, `GET /pki/${caId}.crl`);
    const der = tmp.file(`crl-${caId}-${Date.now()}-${Math.random()}.der`, Buffer.from(await res.arrayBuffer()));
    const out = openssl(['crl', '-inform', 'DER', '-in', der, '-noout', '-text']);
    assert.equal(out.status, 0, out.stderr);
    return { ...parseCrlText(out.stdout), text: out.stdout, etag: res.headers.get('etag') };
  }

  /** Polls the served CRL (bounded) until `ok` holds; never asserts how long it took. */
  async function waitForCrl(caId: string, ok: (c: CrlView) => boolean, what: string): Promise<CrlView> {
    const deadline = Date.now() + POLL_DEADLINE_MS;
    let last = await fetchCrl(caId);
    while (!ok(last)) {
      if (Date.now() > deadline) assert.fail(`CRL of ${caId} never showed ${what}; last one:\n${last.text}`);
      await sleep(100);
      last = await fetchCrl(caId);
    }
    return last;
  }

  function ocsp(certPem: string): string {
    const r = openssl(['ocsp', '-issuer', intPem, '-cert', certPem, '-url', `${server.url}/ocsp`, '-CAfile', bundlePem]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /Response verify OK/);
    return r.stdout;
  }

  async function row(serial: string) {
    const rows = await sql(env, 'SELECT status, "revokedAt", "revocationReason", "invalidityDate", "statusChangedAt" FROM "Certificate" WHERE serial = ?', [
      serial,
    ]);
    assert.equal(rows.length, 1, `certificate ${serial} is in the database`);
    return rows[0];
  }
  async function auditHead(): Promise<number> {
    const [r] = await sql(env, 'SELECT MAX(seq) AS m FROM "AuditEvent"');
    return Number(r.m ?? 0);
  }
  async function auditSince(seq: number): Promise<{ action: string; target: string | null; details: any }[]> {
    const rows = await sql(env, 'SELECT action, target, details FROM "AuditEvent" WHERE seq > ? ORDER BY seq', [seq]);
    return rows
      .filter((r) => !BACKGROUND_ACTIONS.has(r.action))
      .map((r) => ({ action: r.action, target: r.target, details: r.details ? JSON.parse(r.details) : null }));
  }
  async function publicStatus(serial: string) {
    const res = await fetch(`${server.url}/api/v1/certificates/${serial}/status`); // no Authorization header
    const text = await res.text();
    return { status: res.status, contentType: res.headers.get('content-type'), json: JSON.parse(text) };
  }

  before(async () => {
    env = await createTestEnv({ SIGNET_CRL_COALESCE_MS: '300' });
    server = await startServer(env.env);
    const cas = (await api(server, 'GET', '/api/v1/cas')).json.items as any[];
    rootId = cas.find((c) => c.parentId === null).id;
    intId = cas.find((c) => c.parentId === rootId).id;
    rootPem = tmp.file('root.pem', (await api(server, 'GET', `/api/v1/cas/${rootId}`)).json.certificate);
    intPem = tmp.file('int.pem', (await api(server, 'GET', `/api/v1/cas/${intId}`)).json.certificate);
    bundlePem = tmp.file(
      'bundle.pem',
      (await api(server, 'GET', `/api/v1/cas/${rootId}`)).json.certificate + (await api(server, 'GET', `/api/v1/cas/${intId}`)).json.certificate,
    );
  });
  after(async () => {
    await server?.stop();
    await env?.cleanup();
    tmp.remove();
  });

  test('every RFC 5280 reason name is accepted, audited, and lands on the CRL with its reason code', async () => {
    const certs = new Map<string, Issued>();
    for (const reason of REASONS) certs.set(reason, await issue());
    const head = await auditHead();
    const before = await fetchCrl(intId);
    for (const reason of REASONS) {
      const c = certs.get(reason)!;
      const r = await api(server, 'POST', `/api/v1/certificates/${c.serial}/revoke`, { reason });
      assert.equal(r.status, 200, `${reason}: ${r.text}`);
      const expected = reason === 'certificateHold' ? 'hold' : 'revoked';
      assert.equal(r.json.status, expected);
      assert.equal(r.json.reason, reason);
      assert.equal(r.json.serial, c.serial);
      assert.equal(r.json.caId, intId);
      assert.ok(!Number.isNaN(Date.parse(r.json.revokedAt)));
      const s = await publicStatus(c.serial);
      assert.deepEqual(s.json, { serial: c.serial, status: expected, revokedAt: r.json.revokedAt, reason });
      const stored = await row(c.serial);
      assert.equal(stored.status, expected);
      assert.equal(stored.revocationReason, reason);
    }
    // One audit event per change, of the right kind, naming the certificate and the reason.
    const events = await auditSince(head);
    assert.deepEqual(
      events.map((e) => [e.action, e.target]),
      REASONS.map((reason) => [reason === 'certificateHold' ? 'certificate.held' : 'certificate.revoked', certs.get(reason)!.serial]),
    );
    for (const [i, e] of events.entries()) assert.equal(e.details.reason, REASONS[i]);
    // The served CRL lists every one of them with the reason OpenSSL reads back.
    const crl = await waitForCrl(
      intId,
      (c) => c.number > before.number && REASONS.every((r) => c.entries.has(serialValue(certs.get(r)!.serial))),
      'all nine revocations',
    );
    for (const reason of REASONS) {
      const block = crl.entries.get(serialValue(certs.get(reason)!.serial))!;
      const name = OPENSSL_REASON[reason];
      if (name) assert.match(block, new RegExp(`CRL Reason Code:\\s*\\n\\s*${name}(\\n|$)`), `${reason}:\n${block}`);
      else assert.doesNotMatch(block, /CRL Reason Code/, 'unspecified omits the reasonCode extension (RFC 5280 §5.3.1)');
    }
    // And OCSP agrees.
    assert.match(ocsp(certs.get('superseded')!.pem), /: revoked\n[\s\S]*Reason: superseded/);
    assert.match(ocsp(certs.get('certificateHold')!.pem), /: revoked\n[\s\S]*Reason: certificateHold/);
  });

  test('refused requests: precise 4xx problems, the row unchanged, no audit event', async () => {
    const good = await issue();
    const revoked = await issue();
    assert.equal((await api(server, 'POST', `/api/v1/certificates/${revoked.serial}/revoke`, { reason: 'superseded' })).status, 200);
    const future = new Date(Date.now() + 7 * 86_400_000).toISOString();
    const cases: { what: string; serial: string; path?: string; body: unknown; status: number; detail: RegExp }[] = [
      {
        what: 'removeFromCRL',
        serial: good.serial,
        body: { reason: 'removeFromCRL' },
        status: 400,
        detail:
          /removeFromCRL is not a revocation reason: Signet writes it in delta CRLs itself when a hold is released; to release a hold use the unhold operation/,
      },
      { what: 'invalid reason', serial: good.serial, body: { reason: 'compromised' }, status: 400, detail: new RegExp(`reason: .*${REASONS.join(', ')}`) },
      { what: 'reason in the wrong case', serial: good.serial, body: { reason: 'KeyCompromise' }, status: 400, detail: /keyCompromise/ },
      { what: 'missing reason', serial: good.serial, body: {}, status: 400, detail: /reason: .*keyCompromise/ },
      { what: 'reason as a code', serial: good.serial, body: { reason: 1 }, status: 400, detail: /reason/ },
      {
        what: 'future invalidityDate',
        serial: good.serial,
        body: { reason: 'keyCompromise', invalidityDate: future },
        status: 400,
        detail: /invalidityDate .* is in the future/,
      },
      {
        what: 'invalidityDate not a date',
        serial: good.serial,
        body: { reason: 'keyCompromise', invalidityDate: 'yesterday' },
        status: 400,
        detail: /invalidityDate: must be an ISO 8601 date-time/,
      },
      {
        what: 'invalidityDate with a UTC offset of +25:00',
        serial: good.serial,
        body: { reason: 'keyCompromise', invalidityDate: '2026-01-01T00:00:00+25:00' },
        status: 400,
        detail: /^invalidityDate: must be an ISO 8601 date-time; the UTC offset \+25:00 is not one \(at most ±23:59\)$/,
      },
      {
        what: 'invalidityDate in the year 0',
        serial: good.serial,
        body: { reason: 'keyCompromise', invalidityDate: '0000-01-01T00:00:00Z' },
        status: 400,
        detail: /^invalidityDate: must be between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z$/,
      },
      {
        what: 'invalidityDate before the certificate existed, for a reason other than a key compromise',
        serial: good.serial,
        body: { reason: 'superseded', invalidityDate: new Date(Date.now() - 86_400_000).toISOString() },
        status: 400,
        detail:
          /^invalidityDate \S+ is before certificate [0-9a-f]+ became valid \(notBefore \S+\); only a key compromise \(keyCompromise, caCompromise, aACompromise\) can predate the certificate$/,
      },
      { what: 'unknown field', serial: good.serial, body: { reason: 'keyCompromise', force: true }, status: 400, detail: /force/ },
      {
        what: 'serial of another CA',
        serial: good.serial,
        body: { reason: 'keyCompromise', caId: rootId },
        status: 404,
        detail: new RegExp(`was not issued by CA ${rootId}`),
      },
      { what: 'revoke twice', serial: revoked.serial, body: { reason: 'keyCompromise' }, status: 409, detail: /already revoked \(superseded\)/ },
      { what: 'hold a revoked certificate', serial: revoked.serial, body: { reason: 'certificateHold' }, status: 409, detail: /already revoked/ },
      {
        what: 'unhold a good certificate',
        serial: good.serial,
        path: `/api/v1/certificates/${good.serial}/unhold`,
        body: {},
        status: 409,
        detail: /not on hold \(it is good\)/,
      },
      {
        what: 'unhold a revoked certificate',
        serial: revoked.serial,
        path: `/api/v1/certificates/${revoked.serial}/unhold`,
        body: {},
        status: 409,
        detail: /not on hold/,
      },
      {
        what: 'renew a revoked certificate',
        serial: revoked.serial,
        path: `/api/v1/certificates/${revoked.serial}/renew`,
        body: {},
        status: 409,
        detail: /revoked and cannot be renewed/,
      },
    ];
    const certCount = async () => Number((await sql(env, 'SELECT COUNT(*) AS n FROM "Certificate"'))[0].n);
    for (const c of cases) {
      const before = await row(c.serial);
      const head = await auditHead();
      const count = await certCount();
      const r = await api(server, 'POST', c.path ?? `/api/v1/certificates/${c.serial}/revoke`, c.body);
      assert.equal(r.status, c.status, `${c.what}: ${r.text}`);
      assert.equal(r.headers.get('content-type'), 'application/problem+json; charset=utf-8', c.what);
      assert.equal(r.json.status, c.status, c.what);
      assert.ok(r.json.type && r.json.title, c.what);
      assert.match(r.json.detail, c.detail, c.what);
      assert.deepEqual(await row(c.serial), before, `${c.what}: the certificate row is unchanged`);
      assert.deepEqual(await auditSince(head), [], `${c.what}: no audit event`);
      assert.equal(await certCount(), count, `${c.what}: nothing issued`);
    }
    // Serials that do not exist or are not serials at all.
    const head = await auditHead();
    const unknown = await api(server, 'POST', '/api/v1/certificates/0123456789abcdef0123456789abcdef/revoke', { reason: 'keyCompromise' });
    assert.equal(unknown.status, 404, unknown.text);
    assert.match(unknown.json.detail, /certificate 0123456789abcdef0123456789abcdef does not exist/);
    const unknownUnhold = await api(server, 'POST', '/api/v1/certificates/0123456789abcdef/unhold', {});
    assert.equal(unknownUnhold.status, 404, unknownUnhold.text);
    for (const bad of ['not-hex', 'zz12', 'a'.repeat(65)]) {
      const r = await api(server, 'POST', `/api/v1/certificates/${bad}/revoke`, { reason: 'keyCompromise' });
      assert.equal(r.status, 400, `${bad}: ${r.text}`);
      assert.match(r.json.detail, /is not a hexadecimal serial number/);
    }
    assert.deepEqual(await auditSince(head), []);
    // Without a token nothing can be revoked.
    const anon = await fetch(`${server.url}/api/v1/certificates/${good.serial}/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'keyCompromise' }),
    });
    assert.equal(anon.status, 401);
    assert.equal((await row(good.serial)).status, 'good');
    assert.match(ocsp(good.pem), /: good\n/);
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
  });

  test('serial formats: colons and upper case name the same certificate', async () => {
    const c = await issue();
    const colons = c.serial.toUpperCase().match(/../g)!.join(':');
    const r = await api(server, 'POST', `/api/v1/certificates/${colons}/revoke`, { reason: 'cessationOfOperation', caId: intId });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.serial, c.serial);
    assert.equal((await row(c.serial)).status, 'revoked');
  });

  test('a past invalidityDate is stored, shown in the API and carried on the CRL entry', async () => {
    const c = await issue();
    const invalidity = new Date(Date.now() - 3 * 86_400_000);
    invalidity.setUTCMilliseconds(0);
    const before = await fetchCrl(intId);
    const r = await api(server, 'POST', `/api/v1/certificates/${c.serial}/revoke`, { reason: 'keyCompromise', invalidityDate: invalidity.toISOString() });
    assert.equal(r.status, 200, r.text);
    const detail = await api(server, 'GET', `/api/v1/certificates/${c.serial}`);
    assert.equal(detail.json.status, 'revoked');
    assert.equal(detail.json.revocationReason, 'keyCompromise');
    assert.equal(detail.json.invalidityDate, invalidity.toISOString());
    const events = await sql(env, 'SELECT details FROM "AuditEvent" WHERE action = ? AND target = ?', ['certificate.revoked', c.serial]);
    assert.equal(events.length, 1);
    assert.equal(JSON.parse(events[0].details).invalidityDate, invalidity.toISOString());
    const crl = await waitForCrl(intId, (x) => x.number > before.number && x.entries.has(serialValue(c.serial)), `serial ${c.serial}`);
    const block = crl.entries.get(serialValue(c.serial))!;
    assert.match(block, /CRL Reason Code:\s*\n\s*Key Compromise/);
    // openssl prints e.g. "Invalidity Date: \n                Nov 26 09:47:37 2026 GMT"
    const m = /Invalidity Date:\s*\n\s*(.+ GMT)/.exec(block);
    assert.ok(m, block);
    assert.equal(new Date(m[1]!).getTime(), invalidity.getTime(), `invalidity date on the CRL: ${m[1]}`);
  });

  test('certificateHold, then unhold: good again on OCSP, the status API and off the next CRL', async () => {
    const c = await issue();
    const head = await auditHead();
    const crl0 = await fetchCrl(intId);
    const held = await api(server, 'POST', `/api/v1/certificates/${c.serial}/revoke`, { reason: 'certificateHold' });
    assert.equal(held.status, 200, held.text);
    assert.equal(held.json.status, 'hold');
    assert.match(ocsp(c.pem), /: revoked\n[\s\S]*Reason: certificateHold/);
    assert.equal((await publicStatus(c.serial)).json.status, 'hold');
    const onCrl = await waitForCrl(intId, (x) => x.number > crl0.number && x.entries.has(serialValue(c.serial)), 'the held certificate');
    assert.match(onCrl.entries.get(serialValue(c.serial))!, /Certificate Hold/);
    // Holding twice is a conflict.
    const again = await api(server, 'POST', `/api/v1/certificates/${c.serial}/revoke`, { reason: 'certificateHold' });
    assert.equal(again.status, 409, again.text);
    assert.match(again.json.detail, /already on hold/);

    const released = await api(server, 'POST', `/api/v1/certificates/${c.serial}/unhold`);
    assert.equal(released.status, 200, released.text);
    assert.deepEqual(released.json, { serial: c.serial, caId: intId, status: 'good' });
    assert.match(ocsp(c.pem), /: good\n/, 'OCSP says good right after the unhold returns');
    assert.deepEqual((await publicStatus(c.serial)).json, { serial: c.serial, status: 'good' });
    const stored = await row(c.serial);
    assert.equal(stored.status, 'good');
    assert.equal(stored.revokedAt, null);
    assert.equal(stored.revocationReason, null);
    const offCrl = await waitForCrl(intId, (x) => x.number > onCrl.number && !x.entries.has(serialValue(c.serial)), 'the released certificate gone');
    assert.ok(offCrl.number > onCrl.number);
    assert.deepEqual(
      (await auditSince(head)).map((e) => [e.action, e.target]),
      [
        ['certificate.held', c.serial],
        ['certificate.unheld', c.serial],
      ],
    );
    // Released once: a second unhold is a conflict; the certificate can still be renewed.
    const twice = await api(server, 'POST', `/api/v1/certificates/${c.serial}/unhold`);
    assert.equal(twice.status, 409, twice.text);
    const renewed = await api(server, 'POST', `/api/v1/certificates/${c.serial}/renew`, {});
    assert.equal(renewed.status, 201, renewed.text);
  });

  test('on hold, then keyCompromise: revoked for good, and it cannot be released or renewed', async () => {
    const c = await issue();
    const head = await auditHead();
    assert.equal((await api(server, 'POST', `/api/v1/certificates/${c.serial}/revoke`, { reason: 'certificateHold' })).status, 200);
    const heldRenew = await api(server, 'POST', `/api/v1/certificates/${c.serial}/renew`, {});
    assert.equal(heldRenew.status, 409, heldRenew.text);
    assert.match(heldRenew.json.detail, /on hold and cannot be renewed/);
    const r = await api(server, 'POST', `/api/v1/certificates/${c.serial}/revoke`, { reason: 'keyCompromise' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.status, 'revoked');
    assert.equal(r.json.reason, 'keyCompromise');
    assert.match(ocsp(c.pem), /: revoked\n[\s\S]*Reason: keyCompromise/);
    const s = await publicStatus(c.serial);
    assert.equal(s.json.status, 'revoked');
    assert.equal(s.json.reason, 'keyCompromise');
    const unhold = await api(server, 'POST', `/api/v1/certificates/${c.serial}/unhold`);
    assert.equal(unhold.status, 409, unhold.text);
    const renew = await api(server, 'POST', `/api/v1/certificates/${c.serial}/renew`, {});
    assert.equal(renew.status, 409, renew.text);
    assert.match(renew.json.detail, /revoked and cannot be renewed/);
    assert.deepEqual(
      (await auditSince(head)).map((e) => [e.action, e.target, e.details.reason]),
      [
        ['certificate.held', c.serial, 'certificateHold'],
        ['certificate.revoked', c.serial, 'keyCompromise'],
      ],
    );
  });

  test('GET /api/v1/certificates/{serial}/status is public: good, then revoked with time and reason; unknown is 404', async () => {
    const c = await issue();
    const good = await publicStatus(c.serial);
    assert.equal(good.status, 200);
    assert.match(good.contentType ?? '', /^application\/json/);
    assert.deepEqual(good.json, { serial: c.serial, status: 'good' });
    const r = await api(server, 'POST', `/api/v1/certificates/${c.serial}/revoke`, { reason: 'affiliationChanged' });
    assert.equal(r.status, 200, r.text);
    const revoked = await publicStatus(c.serial.toUpperCase());
    assert.equal(revoked.status, 200);
    assert.deepEqual(revoked.json, { serial: c.serial, status: 'revoked', revokedAt: r.json.revokedAt, reason: 'affiliationChanged' });
    const unknown = await publicStatus('0123456789abcdef0123456789abcdef');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.contentType, 'application/problem+json; charset=utf-8');
    assert.match(unknown.json.detail, /does not exist/);
    const bad = await publicStatus('not-a-serial');
    assert.equal(bad.status, 400);
    // Nothing secret in it.
    assert.deepEqual(Object.keys(good.json).sort(), ['serial', 'status']);
  });

  test('revoking an intermediate CA (admin) puts it on the root CRL, and it stops issuing', async () => {
    const created = await api(server, 'POST', '/api/v1/cas', { parentId: rootId, subject: 'CN=Doomed Issuing CA,O=Signet', validityDays: 365 });
    assert.equal(created.status, 201, created.text);
    const doomedId = created.json.id as string;
    const doomedPem = tmp.file('doomed.pem', created.json.certificate);
    const doomed = (await api(server, 'GET', `/api/v1/cas/${doomedId}`)).json;
    const leaf = await issue(doomedId);
    assert.equal(leaf.caId, doomedId);

    // Refusals first: nothing changes.
    const head = await auditHead();
    const hold = await api(server, 'POST', `/api/v1/cas/${doomedId}/revoke`, { reason: 'certificateHold' });
    assert.equal(hold.status, 400, hold.text);
    const bogus = await api(server, 'POST', `/api/v1/cas/${doomedId}/revoke`, { reason: 'bogus' });
    assert.equal(bogus.status, 400, bogus.text);
    const remove = await api(server, 'POST', `/api/v1/cas/${doomedId}/revoke`, { reason: 'removeFromCRL' });
    assert.equal(remove.status, 400, remove.text);
    assert.match(remove.json.detail, /removeFromCRL cannot be used for a CA/);
    const root = await api(server, 'POST', `/api/v1/cas/${rootId}/revoke`, { reason: 'keyCompromise' });
    assert.equal(root.status, 409, root.text);
    assert.match(root.json.detail, /root/);
    const missing = await api(server, 'POST', '/api/v1/cas/int-0000000000/revoke', { reason: 'keyCompromise' });
    assert.equal(missing.status, 404, missing.text);
    assert.deepEqual(await auditSince(head), []);
    assert.equal((await api(server, 'GET', `/api/v1/cas/${doomedId}`)).json.status, 'active');

    const rootCrl0 = await fetchCrl(rootId);
    assert.ok(!rootCrl0.entries.has(serialValue(doomed.serial)));
    const r = await api(server, 'POST', `/api/v1/cas/${doomedId}/revoke`, { reason: 'keyCompromise' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.status, 'revoked');
    assert.equal((await api(server, 'GET', `/api/v1/cas/${doomedId}`)).json.status, 'revoked');
    assert.deepEqual(
      (await auditSince(head)).map((e) => [e.action, e.target]),
      [['ca.revoked', doomedId]],
    );

    // On the root's CRL (a newer one), with its reason.
    const rootCrl = await waitForCrl(
      rootId,
      (c) => c.number > rootCrl0.number && c.entries.has(serialValue(doomed.serial)),
      `the revoked intermediate ${doomed.serial}`,
    );
    assert.match(rootCrl.entries.get(serialValue(doomed.serial))!, /Key Compromise/);
    // A relying party checking the root CRL rejects the intermediate.
    const crlDer = tmp.file('root-crl.der', Buffer.from(await (await fetch(`${server.url}/pki/${rootId}.crl`)).arrayBuffer()));
    const crlPem = tmp.file('root-crl.pem');
    assert.equal(openssl(['crl', '-inform', 'DER', '-in', crlDer, '-out', crlPem]).status, 0);
    const v = openssl(['verify', '-crl_check', '-CRLfile', crlPem, '-CAfile', rootPem, doomedPem]);
    assert.notEqual(v.status, 0);
    assert.match(v.stdout + v.stderr, /certificate revoked/);
    // The root answers OCSP for it: revoked.
    const o = openssl(['ocsp', '-issuer', rootPem, '-cert', doomedPem, '-url', `${server.url}/ocsp`, '-CAfile', rootPem]);
    assert.match(o.stdout + o.stderr, /Response verify OK/);
    assert.match(o.stdout, /doomed\.pem: revoked\n[\s\S]*Reason: keyCompromise/);

    // It no longer issues; revoking it again is a conflict.
    const csr = newKeyCsr('late.example.test', tmp.file('late.key'));
    const count = Number((await sql(env, 'SELECT COUNT(*) AS n FROM "Certificate" WHERE "caId" = ?', [doomedId]))[0].n);
    const refused = await api(server, 'POST', '/api/v1/certificates', { csr: csr, profile: 'server', caId: doomedId });
    assert.equal(refused.status, 409, refused.text);
    assert.match(refused.json.detail, new RegExp(`CA ${doomedId} is revoked`));
    assert.equal(Number((await sql(env, 'SELECT COUNT(*) AS n FROM "Certificate" WHERE "caId" = ?', [doomedId]))[0].n), count);
    const twice = await api(server, 'POST', `/api/v1/cas/${doomedId}/revoke`, { reason: 'keyCompromise' });
    assert.equal(twice.status, 409, twice.text);
    // Renewing a certificate of the revoked CA is refused too.
    const renew = await api(server, 'POST', `/api/v1/certificates/${leaf.serial}/renew`, {});
    assert.equal(renew.status, 409, renew.text);
    // The default intermediate still issues.
    assert.equal((await issue()).caId, intId);
  });
});
