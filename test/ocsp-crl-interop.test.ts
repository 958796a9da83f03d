/**
 * Issue 4 interop: Signet's OCSP responder and CRLs checked by the real OpenSSL client tools
 * against a real `signet serve` (SQLite, or PostgreSQL under test:pg). `openssl ocsp` sends the
 * requests (POST, and the GET form built with -reqout) and verifies the responses against the
 * root+intermediate bundle; `openssl crl` parses and verifies the served DER CRLs; `openssl
 * verify -crl_check` uses them to reject a revoked leaf. Bad requests get precise answers and the
 * service keeps serving. Timing is never asserted: anything asynchronous is polled, bounded.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { api, startServer, type RunningServer } from './helpers/cli.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';
import { newKeyCsr, openssl, parseCrlText, serialValue, TempDir } from './helpers/openssl.js';
import { sql } from './helpers/sql.js';

const POLL_DEADLINE_MS = 15_000;
const OCSP_VALIDITY_MINUTES = 240; // the default
const CRL_VALIDITY_HOURS = 24; // the default
const RESPONDER_DAYS = 7; // the default
const MALFORMED = Buffer.from([0x30, 0x03, 0x0a, 0x01, 0x01]);
const UNAUTHORIZED = Buffer.from([0x30, 0x03, 0x0a, 0x01, 0x06]);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Issued {
  serial: string;
  pem: string;
}
interface CrlView {
  number: bigint;
  text: string;
  entries: Map<bigint, string>;
  der: Buffer;
  headers: Headers;
}

/** A shared fixture: one server, its hierarchy as PEM files, and helpers over them. */
class Fixture {
  env!: TestEnv;
  server!: RunningServer;
  readonly tmp = new TempDir();
  rootId!: string;
  intId!: string;
  rootPem!: string;
  intPem!: string;
  bundlePem!: string;
  intSki!: string;
  intSubject!: string;
  private n = 0;

  async start(extra: Record<string, string> = {}): Promise<void> {
    this.env = await createTestEnv({ SIGNET_CRL_COALESCE_MS: '300', ...extra });
    this.server = await startServer(this.env.env);
    const cas = (await api(this.server, 'GET', '/api/v1/cas')).json.items as any[];
    this.rootId = cas.find((c) => c.parentId === null).id;
    this.intId = cas.find((c) => c.parentId === this.rootId).id;
    const root = (await api(this.server, 'GET', `/api/v1/cas/${this.rootId}`)).json;
    const int = (await api(this.server, 'GET', `/api/v1/cas/${this.intId}`)).json;
    this.rootPem = this.tmp.file('root.pem', root.certificate);
    this.intPem = this.tmp.file('int.pem', int.certificate);
    this.bundlePem = this.tmp.file('bundle.pem', root.certificate + int.certificate);
    this.intSki = int.subjectKeyId;
    this.intSubject = int.subject;
  }

  async stop(): Promise<void> {
    await this.server?.stop();
    await this.env?.cleanup();
    this.tmp.remove();
  }

  csr(name: string): string {
    return newKeyCsr(name, this.tmp.file(`${name}.key`));
  }

  async issue(caId?: string): Promise<Issued> {
    const name = `leaf${++this.n}.example.test`;
    const r = await api(this.server, 'POST', '/api/v1/certificates', { csr: this.csr(name), profile: 'server', ...(caId ? { caId } : {}) });
    assert.equal(r.status, 201, r.text);
    return { serial: r.json.serial, pem: this.tmp.file(`${name}.pem`, r.json.certificate) };
  }

  async revoke(serial: string, body: Record<string, unknown> = { reason: 'keyCompromise' }) {
    const r = await api(this.server, 'POST', `/api/v1/certificates/${serial}/revoke`, body);
    assert.equal(r.status, 200, r.text);
    return r.json;
  }

  /** `openssl ocsp` against our responder; returns stdout+stderr. */
  ocsp(args: string[], issuerPem = this.intPem, caFile = this.bundlePem): { status: number | null; out: string } {
    const r = openssl(['ocsp', '-issuer', issuerPem, ...args, '-url', `${this.server.url}/ocsp`, '-CAfile', caFile]);
    return { status: r.status, out: r.stdout + r.stderr };
  }

  async fetchCrl(caId = this.intId): Promise<CrlView> {
    const res = await fetch(`${this.server.url}/pki/${caId}.crl`);
    assert.equal(res.status, 200, `GET /pki/${caId}.crl`);
    const der = Buffer.from(await res.arrayBuffer());
    const out = openssl(['crl', '-inform', 'DER', '-noout', '-text'], der);
    assert.equal(out.status, 0, out.stderr);
    return { ...parseCrlText(out.stdout), text: out.stdout, der, headers: res.headers };
  }

  async waitForCrl(ok: (c: CrlView) => boolean, what: string, caId = this.intId): Promise<CrlView> {
    const deadline = Date.now() + POLL_DEADLINE_MS;
    let last = await this.fetchCrl(caId);
    while (!ok(last)) {
      if (Date.now() > deadline) assert.fail(`the CRL of ${caId} never showed ${what}; last:\n${last.text}`);
      await sleep(100);
      last = await this.fetchCrl(caId);
    }
    return last;
  }

  async healthy(): Promise<void> {
    const r = await fetch(`${this.server.url}/healthz`);
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), { status: 'ok' });
  }
}

async function postOcsp(url: string, body: Uint8Array, headers: Record<string, string> = {}) {
  const res = await fetch(`${url}/ocsp`, { method: 'POST', headers: { 'content-type': 'application/ocsp-request', ...headers }, body: new Uint8Array(body) });
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
}

async function getOcsp(url: string, encoded: string) {
  const res = await fetch(`${url}/ocsp/${encoded}`);
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
}

describe('OCSP responder interop (openssl ocsp)', () => {
  const f = new Fixture();
  let good: Issued;
  let other: Issued;

  before(async () => {
    await f.start();
    good = await f.issue();
    other = await f.issue();
  });
  after(() => f.stop());

  test('good, verified against the root+intermediate bundle', () => {
    const r = f.ocsp(['-cert', good.pem]);
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /Response verify OK/);
    assert.match(r.out, new RegExp(`${good.pem.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: good\\n`));
    assert.match(r.out, /This Update: .*\n\s*Next Update: /);
  });

  test('revoked, with time and reason, as soon as the revoke call returns', async () => {
    const c = await f.issue();
    // Ask first, so a good answer is cached; the revocation must replace it at once.
    assert.match(f.ocsp(['-cert', c.pem]).out, /: good\n/);
    const revoked = await f.revoke(c.serial, { reason: 'keyCompromise' });
    const r = f.ocsp(['-cert', c.pem]);
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /Response verify OK/);
    assert.match(r.out, /: revoked\n/);
    assert.match(r.out, /Reason: keyCompromise/);
    const time = /Revocation Time: (.+ GMT)/.exec(r.out);
    assert.ok(time, r.out);
    assert.equal(new Date(time[1]!).getTime(), Math.floor(Date.parse(revoked.revokedAt) / 1000) * 1000);
    // Every form of the question gets the same answer: SHA-256 CertID, and the GET form.
    assert.match(f.ocsp(['-sha256', '-cert', c.pem]).out, /: revoked\n[\s\S]*Reason: keyCompromise/);
    const req = f.tmp.file(`req-${c.serial}.der`);
    assert.equal(openssl(['ocsp', '-issuer', f.intPem, '-cert', c.pem, '-no_nonce', '-reqout', req]).status, 0);
    const get = await getOcsp(f.server.url, encodeURIComponent(readFileSync(req).toString('base64')));
    assert.equal(get.status, 200);
    const text = openssl(['ocsp', '-respin', f.tmp.file(`resp-${c.serial}.der`, get.body), '-CAfile', f.bundlePem, '-issuer', f.intPem, '-cert', c.pem]);
    assert.match(text.stdout + text.stderr, /Response verify OK/);
    assert.match(text.stdout, /: revoked\n[\s\S]*Reason: keyCompromise/);
  });

  test('a serial that was never issued is unknown, not good', () => {
    const serial = '0x' + randomBytes(16).toString('hex');
    const r = f.ocsp(['-serial', serial]);
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /Response verify OK/);
    assert.match(r.out, new RegExp(`${serial}: unknown\\n`));
    // The intermediate's own serial, asked of the intermediate (it is the root's child, not its own): unknown too.
    const caSerial = openssl(['x509', '-in', f.intPem, '-noout', '-serial']).stdout.trim().split('=')[1]!;
    assert.match(f.ocsp(['-serial', `0x${caSerial}`]).out, /: unknown\n/);
  });

  test('SHA-256 (and SHA-384) CertIDs are answered and echoed', () => {
    for (const alg of ['-sha256', '-sha384']) {
      const r = openssl(['ocsp', '-issuer', f.intPem, alg, '-cert', good.pem, '-url', `${f.server.url}/ocsp`, '-CAfile', f.bundlePem, '-resp_text']);
      const out = r.stdout + r.stderr;
      assert.equal(r.status, 0, out);
      assert.match(out, /Response verify OK/);
      assert.match(out, new RegExp(`Hash Algorithm: ${alg.slice(1)}`));
      assert.match(out, /: good\n/);
    }
  });

  test('the response is signed by a delegated responder certificate issued by the intermediate', () => {
    const r = openssl(['ocsp', '-issuer', f.intPem, '-cert', good.pem, '-url', `${f.server.url}/ocsp`, '-CAfile', f.bundlePem, '-resp_text']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr + r.stdout, /Response verify OK/);
    const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/.exec(r.stdout);
    assert.ok(pem, 'the response includes the responder certificate');
    const responderPem = f.tmp.file('responder.pem', pem[0]);
    const text = openssl(['x509', '-in', responderPem, '-noout', '-text']).stdout;
    assert.match(text, /X509v3 Extended Key Usage: *\n\s*OCSP Signing\n/);
    assert.match(text, /OCSP No Check/);
    assert.match(text, /Basic Constraints: critical\s*\n\s*CA:FALSE/);
    assert.match(text, /Key Usage: critical\s*\n\s*Digital Signature\n/);
    assert.match(text, /Issuer: O ?= ?Signet, CN ?= ?Signet Issuing CA 1\n/);
    const aki = /Authority Key Identifier: *\n\s*(?:keyid:)?([0-9A-F:]+)/.exec(text);
    assert.ok(aki, text);
    assert.equal(aki[1]!.replace(/:/g, '').toLowerCase(), f.intSki);
    // Issued by the intermediate, for OCSP signing, and short-lived.
    const v = openssl(['verify', '-CAfile', f.rootPem, '-untrusted', f.intPem, '-purpose', 'ocsphelper', responderPem]);
    assert.equal(v.status, 0, v.stdout + v.stderr);
    const dates = openssl(['x509', '-in', responderPem, '-noout', '-startdate', '-enddate']).stdout;
    const nb = Date.parse(/notBefore=(.+)/.exec(dates)![1]!);
    const na = Date.parse(/notAfter=(.+)/.exec(dates)![1]!);
    assert.ok(na - nb <= RESPONDER_DAYS * 86_400_000 + 60_000, `responder certificate lives ${(na - nb) / 86_400_000} days`);
    // It is not the CA key that signs: the responder ID is the responder's key.
    const rid = /Responder Id: ([0-9A-F]+)/.exec(r.stdout);
    assert.ok(rid);
    assert.notEqual(rid[1]!.toLowerCase(), f.intSki);
  });

  test('several CertIDs in one request: one response with both statuses, nonce echoed', async () => {
    const revoked = await f.issue();
    await f.revoke(revoked.serial, { reason: 'superseded' });
    const unknownSerial = '0x' + randomBytes(16).toString('hex');
    const r = openssl([
      'ocsp',
      '-issuer',
      f.intPem,
      '-cert',
      good.pem,
      '-cert',
      revoked.pem,
      '-serial',
      unknownSerial,
      '-url',
      `${f.server.url}/ocsp`,
      '-CAfile',
      f.bundlePem,
      '-resp_text',
    ]);
    const out = r.stdout + r.stderr;
    assert.equal(r.status, 0, out);
    assert.match(out, /Response verify OK/);
    assert.doesNotMatch(out, /WARNING: no nonce/);
    assert.doesNotMatch(out, /Nonce Verify error/);
    assert.match(out, /OCSP Nonce:/);
    assert.match(out, new RegExp(`${good.pem.split('/').pop()!.replace(/\./g, '\\.')}: good\\n`));
    assert.match(out, new RegExp(`${revoked.pem.split('/').pop()!.replace(/\./g, '\\.')}: revoked\\n[\\s\\S]*Reason: superseded`));
    assert.match(out, new RegExp(`${unknownSerial}: unknown\\n`));
    assert.equal(out.match(/Cert Status: /g)?.length, 3, 'three SingleResponses');
  });

  test('GET form: base64 URL-encoded and base64url, with RFC 5019 caching headers', async () => {
    const req = f.tmp.file('get-req.der');
    assert.equal(openssl(['ocsp', '-issuer', f.intPem, '-cert', other.pem, '-no_nonce', '-reqout', req]).status, 0);
    const der = readFileSync(req);
    const b64 = der.toString('base64');
    const forms = {
      'base64, URL-encoded': encodeURIComponent(b64),
      base64url: der.toString('base64url'),
      'base64url with padding': b64.replace(/\+/g, '-').replace(/\//g, '_'),
    };
    const bodies: Buffer[] = [];
    for (const [what, encoded] of Object.entries(forms)) {
      const res = await getOcsp(f.server.url, encoded);
      assert.equal(res.status, 200, what);
      assert.equal(res.headers.get('content-type'), 'application/ocsp-response', what);
      const cc = res.headers.get('cache-control') ?? '';
      const maxAge = Number(/max-age=(\d+)/.exec(cc)?.[1]);
      assert.ok(maxAge > 0 && maxAge <= OCSP_VALIDITY_MINUTES * 60, `${what}: Cache-Control ${cc}`);
      assert.match(cc, /public/);
      const etag = res.headers.get('etag');
      assert.match(etag ?? '', /^"[^"]+"$/, `${what}: ETag ${etag}`);
      const lastModified = Date.parse(res.headers.get('last-modified') ?? '');
      const expires = Date.parse(res.headers.get('expires') ?? '');
      assert.ok(Number.isFinite(lastModified) && Number.isFinite(expires), what);
      assert.equal(expires - lastModified, OCSP_VALIDITY_MINUTES * 60_000, `${what}: Expires is nextUpdate, Last-Modified thisUpdate`);
      const respFile = f.tmp.file(`get-resp-${bodies.length}.der`, res.body);
      const text = openssl(['ocsp', '-respin', respFile, '-CAfile', f.bundlePem, '-issuer', f.intPem, '-cert', other.pem, '-resp_text']);
      assert.equal(text.status, 0, text.stderr);
      assert.match(text.stdout + text.stderr, /Response verify OK/, what);
      assert.match(text.stdout, /: good\n/, what);
      // The HTTP dates are the response's own thisUpdate/nextUpdate.
      const thisUpdate = Date.parse(/This Update: (.+ GMT)/.exec(text.stdout)![1]!);
      const nextUpdate = Date.parse(/Next Update: (.+ GMT)/.exec(text.stdout)![1]!);
      assert.equal(lastModified, thisUpdate, what);
      assert.equal(expires, nextUpdate, what);
      bodies.push(res.body);
    }
    // Pre-signed and cached: every form gets the same bytes (no signature per request).
    assert.ok(
      bodies.every((b) => b.equals(bodies[0]!)),
      'the same cached response for every encoding',
    );
    // POST answers are not for shared caches, but carry the right type.
    const post = await postOcsp(f.server.url, der);
    assert.equal(post.status, 200);
    assert.equal(post.headers.get('content-type'), 'application/ocsp-response');
  });

  test('garbage: POST and GET get an OCSP malformedRequest response', async () => {
    const bodies: [string, Buffer][] = [
      ['random bytes', randomBytes(200)],
      ['empty SEQUENCE', Buffer.from([0x30, 0x00])],
      ['truncated request', readFileSync(f.tmp.file('get-req.der')).subarray(0, 30)],
      ['request with trailing bytes', Buffer.concat([readFileSync(f.tmp.file('get-req.der')), Buffer.from([0])])],
      ['empty body', Buffer.alloc(0)],
    ];
    for (const [what, body] of bodies) {
      const r = await postOcsp(f.server.url, body);
      assert.equal(r.headers.get('content-type'), 'application/ocsp-response', what);
      assert.deepEqual(r.body, MALFORMED, `${what}: ${r.body.toString('hex')}`);
    }
    const respFile = f.tmp.file('malformed.der', MALFORMED);
    const parsed = openssl(['ocsp', '-respin', respFile, '-resp_text']);
    assert.match(parsed.stdout + parsed.stderr, /Responder Error: malformedrequest \(1\)/);
    // GET: base64 of garbage, characters outside base64, percent-encoding garbage.
    for (const encoded of [
      encodeURIComponent(randomBytes(64).toString('base64')),
      randomBytes(48).toString('base64url'),
      '!!!notbase64!!!',
      '%E0%A4%A',
      'aGVsbG8=',
    ]) {
      const r = await getOcsp(f.server.url, encoded);
      assert.equal(r.headers.get('content-type'), 'application/ocsp-response', encoded);
      assert.deepEqual(r.body, MALFORMED, `GET ${encoded}: ${r.body.toString('hex')}`);
      assert.doesNotMatch(r.headers.get('cache-control') ?? '', /max-age=[1-9]/, 'an error is not cacheable');
    }
    // More CertIDs than any client sends (the responder caps a message at 32).
    const many = f.tmp.file('many.der');
    const serials = Array.from({ length: 33 }, (_, i) => ['-serial', String(i + 1)]).flat();
    assert.equal(openssl(['ocsp', '-issuer', f.intPem, ...serials, '-reqout', many]).status, 0);
    assert.deepEqual((await postOcsp(f.server.url, readFileSync(many))).body, MALFORMED);
    await f.healthy();
  });

  test('oversized requests: 413 problem+json, declared or streamed', async () => {
    const big = randomBytes(8 * 1024 + 1);
    const declared = await postOcsp(f.server.url, big);
    assert.equal(declared.status, 413);
    // The same problem rendering as every other endpoint (issue 13: one HTTP edge).
    assert.equal(declared.headers.get('content-type'), 'application/problem+json; charset=utf-8');
    const problem = JSON.parse(declared.body.toString());
    assert.equal(problem.status, 413);
    assert.match(problem.detail, /OCSP request body exceeds 8192 bytes/);
    // Streamed (chunked, no Content-Length) and much larger.
    const chunk = randomBytes(16 * 1024);
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= 64) controller.close();
        else {
          sent++;
          controller.enqueue(chunk);
        }
      },
    });
    const res = await fetch(`${f.server.url}/ocsp`, {
      method: 'POST',
      headers: { 'content-type': 'application/ocsp-request' },
      body: stream,
      duplex: 'half',
    } as RequestInit);
    assert.equal(res.status, 413);
    assert.equal(res.headers.get('content-type'), 'application/problem+json; charset=utf-8');
    assert.match((await res.json()).detail, /exceeds 8192 bytes/);
    // The unread rest of that body must not poison the connection for the requests that follow.
    for (let i = 0; i < 3; i++) await f.healthy();
    assert.equal((await postOcsp(f.server.url, randomBytes(10))).status, 400);
    // A client that keeps sending long after the 413 is cut off; the service is unaffected.
    let endless = 0;
    const flood = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (endless >= 512) controller.close();
        else {
          endless++;
          controller.enqueue(chunk);
        }
      },
    });
    const floodRes = await fetch(`${f.server.url}/ocsp`, { method: 'POST', body: flood, duplex: 'half' } as RequestInit).catch((e: Error) => e);
    if (!(floodRes instanceof Error)) assert.equal(floodRes.status, 413);
    // A GET longer than any real request.
    const longGet = await getOcsp(f.server.url, 'A'.repeat(20_000));
    assert.ok(longGet.status === 413 || longGet.status === 414 || longGet.status === 431, `long GET: ${longGet.status}`);
    await f.healthy();
  });

  test('an issuer we do not hold, or an unknown hash algorithm: unauthorized', async () => {
    const key = f.tmp.file('foreign.key');
    const ca = f.tmp.file('foreign.pem');
    const mk = openssl([
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      key,
      '-subj',
      '/CN=Foreign CA',
      '-days',
      '30',
      '-out',
      ca,
    ]);
    assert.equal(mk.status, 0, mk.stderr);
    const req = f.tmp.file('foreign-req.der');
    assert.equal(openssl(['ocsp', '-issuer', ca, '-serial', '0x01', '-reqout', req]).status, 0);
    const r = await postOcsp(f.server.url, readFileSync(req));
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'application/ocsp-response');
    assert.deepEqual(r.body, UNAUTHORIZED);
    const viaClient = f.ocsp(['-serial', '0x01'], ca, ca);
    assert.match(viaClient.out, /Responder Error: unauthorized \(6\)/);
    // Our own serial, but named under the foreign issuer: still not ours to answer.
    assert.match(f.ocsp(['-cert', good.pem], ca, ca).out, /Responder Error: unauthorized \(6\)/);
    // A well-formed request whose CertID hash we do not compute (MD5) cannot name our issuer.
    const md5 = f.ocsp(['-md5', '-cert', good.pem]);
    assert.match(md5.out, /Responder Error: unauthorized \(6\)/);
    // Mixing one of ours and a foreign CertID in one message is refused as a whole.
    const mixed = f.tmp.file('mixed.der');
    assert.equal(openssl(['ocsp', '-issuer', ca, '-serial', '0x01', '-issuer', f.intPem, '-cert', good.pem, '-reqout', mixed]).status, 0);
    assert.deepEqual((await postOcsp(f.server.url, readFileSync(mixed))).body, UNAUTHORIZED);
    await f.healthy();
  });

  test('a CA created through the API is served at once: OCSP for its certificates and its CRL', async () => {
    const created = await api(f.server, 'POST', '/api/v1/cas', { parentId: f.rootId, subject: 'CN=Fresh Issuing CA,O=Signet', validityDays: 365 });
    assert.equal(created.status, 201, created.text);
    const freshPem = f.tmp.file('fresh.pem', created.json.certificate);
    const bundle = f.tmp.file('fresh-bundle.pem', readFileSync(f.rootPem, 'utf8') + created.json.certificate);
    const leaf = await f.issue(created.json.id);
    const r = f.ocsp(['-cert', leaf.pem], freshPem, bundle);
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /Response verify OK/);
    assert.match(r.out, /: good\n/);
    const crl = await f.fetchCrl(created.json.id);
    assert.equal(crl.entries.size, 0);
    const crlPem = f.tmp.file('fresh-crl.pem');
    assert.equal(openssl(['crl', '-inform', 'DER', '-out', crlPem], crl.der).status, 0);
    const v = openssl(['verify', '-crl_check', '-CRLfile', crlPem, '-CAfile', f.rootPem, '-untrusted', freshPem, leaf.pem]);
    assert.equal(v.status, 0, v.stdout + v.stderr);
  });

  test('after all the bad requests the service still answers', async () => {
    await f.healthy();
    assert.match(f.ocsp(['-cert', good.pem]).out, /: good\n/);
    assert.equal((await fetch(`${f.server.url}/readyz`)).status, 200);
  });
});

describe('CRL interop (openssl crl, openssl verify -crl_check)', () => {
  const f = new Fixture();

  before(() => f.start());
  after(() => f.stop());

  test('served as DER with application/pkix-crl and caching headers; openssl reads a v2 CRL with number, AKI and a critical IDP', async () => {
    const leaf = await f.issue();
    const invalidity = new Date(Date.now() - 2 * 86_400_000);
    invalidity.setUTCMilliseconds(0);
    const before = await f.fetchCrl();
    await f.revoke(leaf.serial, { reason: 'keyCompromise', invalidityDate: invalidity.toISOString() });
    const crl = await f.waitForCrl((c) => c.number > before.number && c.entries.has(serialValue(leaf.serial)), `serial ${leaf.serial}`);

    const res = await fetch(`${f.server.url}/pki/${f.intId}.crl`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/pkix-crl');
    const der = Buffer.from(await res.arrayBuffer());
    assert.equal(der[0], 0x30, 'DER, not PEM');
    const cc = res.headers.get('cache-control') ?? '';
    assert.match(cc, /max-age=\d+/);
    assert.match(cc, /public/);
    assert.match(res.headers.get('etag') ?? '', /^"[^"]+"$/);
    const text = crl.text;
    assert.match(text, /Version 2 \(0x1\)/);
    assert.match(text, /Issuer: O = Signet, CN = Signet Issuing CA 1/);
    const lastUpdate = Date.parse(/Last Update: (.+ GMT)/.exec(text)![1]!);
    const nextUpdate = Date.parse(/Next Update: (.+ GMT)/.exec(text)![1]!);
    assert.equal(nextUpdate - lastUpdate, CRL_VALIDITY_HOURS * 3_600_000);
    if (crl.der.equals(der)) {
      assert.equal(Date.parse(res.headers.get('last-modified')!), lastUpdate, 'Last-Modified is thisUpdate');
      assert.equal(Date.parse(res.headers.get('expires')!), nextUpdate, 'Expires is nextUpdate');
    }
    const aki = /Authority Key Identifier: *\n\s*(?:keyid:)?([0-9A-F:]+)/.exec(text);
    assert.ok(aki, text);
    assert.equal(aki[1]!.replace(/:/g, '').toLowerCase(), f.intSki);
    assert.match(text, /X509v3 CRL Number: *\n\s*\d+/);
    assert.match(text, new RegExp(`X509v3 Issuing Distribution Point: critical\\s*\\n\\s*Full Name:\\s*\\n\\s*URI:${f.server.url}/pki/${f.intId}\\.crl`));
    const entry = crl.entries.get(serialValue(leaf.serial))!;
    assert.match(entry, /CRL Reason Code: *\n\s*Key Compromise/);
    const inv = /Invalidity Date: *\n\s*(.+ GMT)/.exec(entry);
    assert.ok(inv, entry);
    assert.equal(Date.parse(inv[1]!), invalidity.getTime());
    // The CRL signature verifies with the intermediate.
    const crlPem = f.tmp.file('int-crl.pem');
    assert.equal(openssl(['crl', '-inform', 'DER', '-out', crlPem], crl.der).status, 0);
    const v = openssl(['crl', '-in', crlPem, '-noout', '-verify', '-CAfile', f.intPem]);
    assert.equal(v.status, 0, v.stderr);
    assert.match(v.stdout + v.stderr, /verify OK/);
  });

  test('openssl verify -crl_check rejects the revoked leaf and accepts a good one', async () => {
    const good = await f.issue();
    const bad = await f.issue();
    const before = await f.fetchCrl();
    await f.revoke(bad.serial, { reason: 'cessationOfOperation' });
    const crl = await f.waitForCrl((c) => c.number > before.number && c.entries.has(serialValue(bad.serial)), `serial ${bad.serial}`);
    const crlPem = f.tmp.file('check.pem');
    assert.equal(openssl(['crl', '-inform', 'DER', '-out', crlPem], crl.der).status, 0);
    const rejected = openssl(['verify', '-crl_check', '-CRLfile', crlPem, '-CAfile', f.rootPem, '-untrusted', f.intPem, bad.pem]);
    assert.notEqual(rejected.status, 0);
    assert.match(rejected.stdout + rejected.stderr, /certificate revoked/);
    const accepted = openssl(['verify', '-crl_check', '-CRLfile', crlPem, '-CAfile', f.rootPem, '-untrusted', f.intPem, good.pem]);
    assert.equal(accepted.status, 0, accepted.stdout + accepted.stderr);
    assert.match(accepted.stdout, /: OK/);
    // The intermediate itself, checked against the root's CRL (served the same way), is good.
    const rootCrlPem = f.tmp.file('root-crl.pem');
    assert.equal(openssl(['crl', '-inform', 'DER', '-out', rootCrlPem], (await f.fetchCrl(f.rootId)).der).status, 0);
    assert.equal(openssl(['crl', '-in', rootCrlPem, '-noout', '-verify', '-CAfile', f.rootPem]).status, 0);
    const int = openssl(['verify', '-crl_check', '-CRLfile', rootCrlPem, '-CAfile', f.rootPem, f.intPem]);
    assert.equal(int.status, 0, int.stdout + int.stderr);
  });

  test('CRL numbers strictly increase across publications', async () => {
    const numbers: bigint[] = [(await f.fetchCrl()).number];
    const etags = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const c = await f.issue();
      await f.revoke(c.serial, { reason: 'superseded' });
      const crl = await f.waitForCrl((x) => x.number > numbers[numbers.length - 1]! && x.entries.has(serialValue(c.serial)), `serial ${c.serial}`);
      numbers.push(crl.number);
      etags.add(crl.headers.get('etag')!);
    }
    for (let i = 1; i < numbers.length; i++) assert.ok(numbers[i]! > numbers[i - 1]!, `CRL numbers ${numbers.join(', ')}`);
    assert.equal(etags.size, 4, 'each publication has its own ETag');
    // The root's CRL counts independently and is served too.
    const root = await f.fetchCrl(f.rootId);
    assert.ok(root.number >= 1n);
  });

  test('If-None-Match with the current ETag gives 304; a stale one gives the CRL', async () => {
    const first = await fetch(`${f.server.url}/pki/${f.intId}.crl`);
    const etag = first.headers.get('etag')!;
    await first.arrayBuffer();
    const cached = await fetch(`${f.server.url}/pki/${f.intId}.crl`, { headers: { 'if-none-match': etag } });
    // A newer CRL may have been published in between; then a 200 with a new ETag is right.
    if (cached.status === 200) assert.notEqual(cached.headers.get('etag'), etag);
    else {
      assert.equal(cached.status, 304);
      assert.equal((await cached.arrayBuffer()).byteLength, 0);
      assert.equal(cached.headers.get('etag'), etag);
    }
    const stale = await fetch(`${f.server.url}/pki/${f.intId}.crl`, { headers: { 'if-none-match': '"crl-stale-0"' } });
    assert.equal(stale.status, 200);
    assert.equal(stale.headers.get('content-type'), 'application/pkix-crl');
    assert.ok((await stale.arrayBuffer()).byteLength > 0);
    const missing = await fetch(`${f.server.url}/pki/int-0000000000.crl`);
    assert.equal(missing.status, 404);
    assert.equal(missing.headers.get('content-type'), 'application/problem+json; charset=utf-8');
  });
});

describe('CRL coalescing', () => {
  // The production default window: a burst that lands within it must cost one signature, not 20.
  const COALESCE_MS = 2000;
  const f = new Fixture();

  before(() => f.start({ SIGNET_CRL_COALESCE_MS: String(COALESCE_MS) }));
  after(() => f.stop());

  /** Fetches until the CRL number stops moving for longer than the coalescing window. */
  async function quiet(): Promise<CrlView> {
    let last = await f.fetchCrl();
    for (;;) {
      await sleep(COALESCE_MS + 1_000);
      const again = await f.fetchCrl();
      if (again.number === last.number) return last;
      last = again;
    }
  }

  test('a burst of 20 revocations is coalesced into far fewer CRLs', async (t) => {
    const certs: Issued[] = [];
    for (let i = 0; i < 20; i++) certs.push(await f.issue());
    const before = await f.fetchCrl();
    const [{ m: head }] = await sql(f.env, 'SELECT MAX(seq) AS m FROM "AuditEvent"');
    const burstStart = Date.now();
    await Promise.all(certs.map((c) => f.revoke(c.serial, { reason: 'keyCompromise' })));
    // One CRL per coalescing window that the burst spans, plus the one still pending:
    // a burst stretched by a loaded machine may span more windows, never 20.
    const allowed = Math.max(5, Math.ceil((Date.now() - burstStart) / COALESCE_MS) + 2);
    await f.waitForCrl((c) => certs.every((x) => c.entries.has(serialValue(x.serial))), 'all 20 revocations');
    // A publication scheduled by the last revocations may still be pending: count once quiet.
    const last = await quiet();
    assert.ok(certs.every((x) => last.entries.has(serialValue(x.serial))));
    const signed = await sql(f.env, 'SELECT target FROM "AuditEvent" WHERE seq > ? AND action = ?', [Number(head), 'crl.signed']);
    const forInt = signed.filter((s) => s.target === f.intId).length;
    t.diagnostic(`20 revocations → ${forInt} CRL(s)`);
    assert.ok(forInt >= 1, 'at least one CRL was signed');
    assert.ok(forInt <= allowed, `20 revocations produced ${forInt} CRLs (allowed ${allowed})`);
    assert.ok(last.number - before.number <= BigInt(allowed), `CRL number went from ${before.number} to ${last.number}`);
    const revokedEvents = await sql(f.env, 'SELECT COUNT(*) AS n FROM "AuditEvent" WHERE seq > ? AND action = ?', [Number(head), 'certificate.revoked']);
    assert.equal(Number(revokedEvents[0].n), 20);
  });
});
