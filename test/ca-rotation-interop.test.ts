/**
 * Issue 16, "How it is checked", first bullet: after `signet ca rotate` (the real CLI, against
 * the data of a running `signet serve`), relying parties see no failure.
 *
 * - A leaf issued before the rotation still verifies: openssl `verify -x509_strict`, Go
 *   crypto/x509, GnuTLS, NSS (helpers/strict.ts) and Java PKIX with revocation on, both by OCSP
 *   and by CRL (helpers/java-pkix.ts); the OCSP responder, asked with the predecessor as issuer,
 *   says good.
 * - A leaf issued after comes from the successor (its AKI is the successor's SKI, the REST chain
 *   is the successor's), also when the request names the old CA and when it renews an old leaf;
 *   it verifies in every verifier.
 * - Revoking a pre-rotation leaf puts it on the predecessor's CRL and OCSP says revoked; Java
 *   rejects it (REVOKED) both ways; the post-rotation leaf stays good.
 * - ACME Renewal Information for pre-rotation certificates: before the rotation the usual 2/3..5/6
 *   of life, after it a window inside [rotation, rotation + overlap] and not all the same.
 * - Each verifier can fail: a leaf of an unrelated CA, and the pre-rotation leaf offered with the
 *   successor (same subject name, other key) as its intermediate, are rejected by every one.
 *
 * Runs on SQLite, or PostgreSQL when SIGNET_TEST_POSTGRES is set. Timing is never asserted: the
 * server picking up a rotation made by another process is polled, bounded.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { api as rawApi, freePort, getUrl, signet, startServer, type RunningServer } from './helpers/cli.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';
import { newKeyCsr, openssl, parseCrlText, selfSignedCa, serialValue, TempDir } from './helpers/openssl.js';
import { assertStrictlyValid, verifiers, type StrictVerifier, type StrictVerifyOptions } from './helpers/strict.js';
import { verifyWithJava, type JavaRevocation } from './helpers/java-pkix.js';
import { ariCertId } from './helpers/acme.js';

const DAY_MS = 86_400_000;
const OVERLAP_DAYS = 30;
const ARI_CERTS = 6;
const POLL_DEADLINE_MS = 30_000;
const JAVA_MODES: JavaRevocation[] = ['ocsp', 'crl'];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The verifiers run synchronously (spawnSync) and may block this process longer than the server's
 * 5 s keep-alive; a turn of the event loop first lets fetch see a connection the server closed
 * meanwhile, instead of sending the next request down it ("other side closed").
 */
const api: typeof rawApi = async (...args) => {
  await sleep(20);
  return rawApi(...args);
};

interface Issued {
  serial: string;
  /** PEM text. */
  pem: string;
  /** PEM file. */
  file: string;
  caId: string;
  chain: string[];
  name: string;
}

interface Window {
  start: number;
  end: number;
}

/** Subject/authority key identifiers of a PEM certificate, lower-case hex. */
function keyIds(pem: string): { ski: string | null; aki: string | null } {
  const text = openssl(['x509', '-noout', '-text'], pem).stdout;
  const ski = /Subject Key Identifier: *\n\s*([0-9A-F:]+)/.exec(text)?.[1];
  const aki = /Authority Key Identifier: *\n\s*(?:keyid:)?([0-9A-F:]+)/.exec(text)?.[1];
  const hex = (s?: string) => (s ? s.replace(/:/g, '').toLowerCase() : null);
  return { ski: hex(ski), aki: hex(aki) };
}

/** The line of a verifier's output that says why it rejected (for the test's diagnostics). */
const why = (output: string): string => {
  const lines = output.split('\n').filter((l) => l.trim() && !l.startsWith('note:'));
  return (lines.find((l) => /ERROR|error|fail|Not verified|invalid|unknown authority/i.test(l)) ?? lines[0] ?? '').trim();
};

const pemsOf = (chain: unknown): string[] =>
  (Array.isArray(chain) ? chain.join('\n') : String(chain ?? '')).match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];

class Fixture {
  env!: TestEnv;
  server!: RunningServer;
  readonly tmp = new TempDir();
  rootId!: string;
  oldId!: string;
  newId!: string;
  rootPem!: string;
  oldPem!: string;
  newPem!: string;
  private n = 0;

  async start(): Promise<void> {
    // The CLI that rotates must have the server's configuration: the successor's AIA and CRL
    // distribution point URLs come from it (SIGNET_PUBLIC_URL, else 127.0.0.1:SIGNET_PORT).
    this.env = await createTestEnv({ SIGNET_CRL_COALESCE_MS: '300', SIGNET_PORT: String(await freePort()) });
    this.server = await startServer(this.env.env);
    const cas = (await api(this.server, 'GET', '/api/v1/cas')).json.items as any[];
    this.rootId = cas.find((c) => c.parentId === null).id;
    this.oldId = cas.find((c) => c.parentId === this.rootId).id;
    this.rootPem = (await this.ca(this.rootId)).certificate;
    this.oldPem = (await this.ca(this.oldId)).certificate;
  }

  async stop(): Promise<void> {
    await this.server?.stop();
    await this.env?.cleanup();
    this.tmp.remove();
  }

  async ca(id: string): Promise<any> {
    const r = await api(this.server, 'GET', `/api/v1/cas/${id}`);
    assert.equal(r.status, 200, r.text);
    return r.json;
  }

  file(name: string, content: string): string {
    return this.tmp.file(name, content);
  }

  csr(name: string): string {
    return newKeyCsr(name, this.tmp.file(`${name}.key`));
  }

  private issued(name: string, json: any): Issued {
    return {
      serial: json.serial,
      pem: json.certificate,
      file: this.file(`${name}-${json.serial}.pem`, json.certificate),
      caId: json.caId,
      chain: pemsOf(json.chain),
      name,
    };
  }

  /** A server-profile leaf for a fresh DNS name, by REST. */
  async issue(opts: { caId?: string; prefix?: string } = {}): Promise<Issued> {
    const name = `${opts.prefix ?? 'leaf'}${++this.n}.rotation.example.test`;
    const r = await api(this.server, 'POST', '/api/v1/certificates', { csr: this.csr(name), profile: 'server', ...(opts.caId ? { caId: opts.caId } : {}) });
    assert.equal(r.status, 201, r.text);
    return this.issued(name, r.json);
  }

  async renew(c: Issued): Promise<Issued> {
    const r = await api(this.server, 'POST', `/api/v1/certificates/${c.serial}/renew`, {});
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.predecessorSerial, c.serial);
    return this.issued(c.name, r.json);
  }

  async revoke(serial: string, reason = 'keyCompromise') {
    const r = await api(this.server, 'POST', `/api/v1/certificates/${serial}/revoke`, { reason });
    assert.equal(r.status, 200, r.text);
    return r.json;
  }

  /** `openssl ocsp` against the server's /ocsp with `issuerPem` as the CertID's issuer; the status word. */
  ocsp(leaf: Issued, issuerPem: string): { status: string; out: string } {
    const issuer = this.file(`ocsp-issuer-${leaf.serial}.pem`, issuerPem);
    const bundle = this.file(`ocsp-bundle-${leaf.serial}.pem`, this.rootPem + issuerPem);
    const r = openssl(['ocsp', '-issuer', issuer, '-cert', leaf.file, '-url', `${this.server.url}/ocsp`, '-CAfile', bundle]);
    const out = r.stdout + r.stderr;
    assert.equal(r.status, 0, out);
    assert.match(out, /Response verify OK/);
    const m = new RegExp(`${leaf.file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: (good|revoked|unknown)\\n`).exec(out);
    assert.ok(m, out);
    return { status: m[1]!, out };
  }

  async crl(caId: string): Promise<{ number: bigint; entries: Map<bigint, string>; text: string; der: Buffer }> {
    await sleep(20);
    const res = await getUrl(`${this.server.url}/pki/${caId}.crl`);
    assert.equal(res.status, 200, `GET /pki/${caId}.crl`);
    const der = Buffer.from(await res.arrayBuffer());
    const out = openssl(['crl', '-inform', 'DER', '-noout', '-text'], der);
    assert.equal(out.status, 0, out.stderr);
    return { ...parseCrlText(out.stdout), text: out.stdout, der };
  }

  async ari(c: Issued): Promise<Window> {
    const id = ariCertId(new X509Certificate(c.pem).raw);
    await sleep(20);
    const res = await getUrl(`${this.server.url}/acme/renewal-info/${id}`);
    const body = await res.text();
    assert.equal(res.status, 200, `GET /acme/renewal-info/${id}: ${body}`);
    const w = JSON.parse(body).suggestedWindow;
    return { start: Date.parse(w.start), end: Date.parse(w.end) };
  }

  /** openssl verify -x509_strict with only `rootPem` trusted and `intermediates` untrusted. */
  opensslVerify(leaf: Issued | string, intermediates: string[]): { ok: boolean; out: string } {
    const file = typeof leaf === 'string' ? leaf : leaf.file;
    const args = ['verify', '-x509_strict', '-purpose', 'sslserver', '-CAfile', this.file('trust-root.pem', this.rootPem)];
    if (intermediates.length) args.push('-untrusted', this.file(`untrusted-${++this.n}.pem`, intermediates.join('\n')));
    const r = openssl([...args, file]);
    const out = r.stdout + r.stderr;
    return { ok: r.status === 0 && /: OK\n/.test(out), out };
  }
}

/** Every verifier, with revocation on for Java (OCSP, and CRL), must accept. */
function assertAccepted(t: import('node:test').TestContext, f: Fixture, leaf: Issued, intermediate: string): void {
  const o = f.opensslVerify(leaf, [intermediate]);
  assert.ok(o.ok, `openssl verify -x509_strict rejected ${leaf.name}:\n${o.out}`);
  const opts: StrictVerifyOptions = { roots: [f.rootPem], intermediates: [intermediate], leaf: leaf.pem, dns: leaf.name };
  assertStrictlyValid(t, opts);
  for (const revocation of JAVA_MODES) {
    const j = verifyWithJava({ roots: [f.rootPem], intermediates: [intermediate], leaf: leaf.pem, revocation });
    assert.ok(j.ok, `Java PKIX (revocation: ${revocation}) rejected ${leaf.name}:\n${j.output}`);
    t.diagnostic(`java (${revocation}): accepted`);
  }
}

describe('CA rotation: relying parties across `signet ca rotate`', () => {
  const f = new Fixture();
  let a: Issued;
  const ariCerts: Issued[] = [];
  const ariBefore = new Map<string, Window>();
  let rotatedFrom = 0;
  let rotatedTo = 0;
  let b: Issued;
  let switchedAfterMs = 0;
  let cliOut: any;

  before(async () => {
    await f.start();
    a = await f.issue({ prefix: 'a' });
    for (let i = 0; i < ARI_CERTS; i++) ariCerts.push(await f.issue({ prefix: 'ari' }));
    for (const c of [a, ...ariCerts]) ariBefore.set(c.serial, await f.ari(c));
    // Pre-rotation: leaf A is the predecessor's and verifies with Java (the harness is sound before anything changes).
    assert.equal(a.caId, f.oldId);
    const j = verifyWithJava({ roots: [f.rootPem], intermediates: [f.oldPem], leaf: a.pem });
    assert.ok(j.ok, `before the rotation Java PKIX rejected leaf A:\n${j.output}`);

    rotatedFrom = Date.now();
    const r = signet(['ca', 'rotate', f.oldId, '--overlap-days', String(OVERLAP_DAYS), '--json'], f.env.env);
    rotatedTo = Date.now();
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    cliOut = out;
    assert.equal(out.alreadyRotated, false, r.stdout);
    assert.equal(out.predecessor.id, f.oldId, r.stdout);
    assert.equal(out.predecessor.status, 'retiring', r.stdout);
    f.newId = out.successor.id;
    assert.ok(f.newId && f.newId !== f.oldId, r.stdout);
    f.newPem = (await f.ca(f.newId)).certificate;

    // The running server has not reloaded its issuer cache (15 s), yet the first certificate it
    // commits after the rotation is the successor's: the commit re-reads the CA's status and a
    // retiring CA's signature is discarded and made again by the successor (ca/commit-queue.ts).
    b = await f.issue({ prefix: 'b' });
    switchedAfterMs = Date.now() - rotatedTo;
    assert.equal(b.caId, f.newId, 'the first leaf after a CLI rotation comes from the successor');
  });
  after(() => f.stop());

  test('the CLI rotated the intermediate: same parent and subject, new key id; the predecessor is retiring with a 30-day overlap', async (t) => {
    t.diagnostic(`the successor's first leaf was answered ${switchedAfterMs} ms after the CLI returned`);
    const oldCa = await f.ca(f.oldId);
    const newCa = await f.ca(f.newId);
    assert.equal(oldCa.status, 'retiring');
    assert.equal(oldCa.successorId, f.newId, 'the CLI and the server agree on the successor');
    assert.equal(newCa.status, 'active');
    assert.equal(newCa.predecessorId, f.oldId);
    assert.equal(newCa.parentId, f.rootId);
    assert.equal(newCa.subject, oldCa.subject);
    assert.equal(newCa.issuer, oldCa.issuer);
    assert.notEqual(newCa.subjectKeyId, oldCa.subjectKeyId);
    assert.equal(newCa.authorityKeyId, oldCa.authorityKeyId);
    const since = Date.parse(oldCa.retiringSince);
    assert.ok(since >= rotatedFrom - 1000 && since <= rotatedTo + 1000, `retiringSince ${oldCa.retiringSince}`);
    // What the CLI printed is what was stored, and the overlap is counted from the rotation.
    assert.equal(cliOut.predecessor.retiringSince, oldCa.retiringSince);
    assert.equal(cliOut.predecessor.overlapEndsAt, oldCa.overlapEndsAt);
    assert.equal(Date.parse(oldCa.overlapEndsAt) - since, OVERLAP_DAYS * DAY_MS);
    // Relying parties find its status where they found the predecessor's (Java, revocation on, follows these).
    const urls = (pem: string) => openssl(['x509', '-noout', '-ext', 'authorityInfoAccess,crlDistributionPoints'], pem).stdout;
    assert.match(urls(f.newPem), new RegExp(`OCSP - URI:${f.server.url}/ocsp`));
    assert.equal(urls(f.newPem), urls(f.oldPem));
    // The successor itself verifies under the root (openssl strict, Go, GnuTLS, NSS as a CA).
    const caFile = f.file('successor.pem', f.newPem);
    const v = openssl(['verify', '-x509_strict', '-CAfile', f.file('trust-root.pem', f.rootPem), caFile]);
    assert.equal(v.status, 0, v.stdout + v.stderr);
    assertStrictlyValid(t, { roots: [f.rootPem], intermediates: [], leaf: f.newPem, eku: 'any' });
  });

  test('leaf A, issued before the rotation, verifies: openssl -x509_strict, Go, GnuTLS, NSS, Java PKIX with OCSP and with CRL', (t) => {
    assert.equal(new X509Certificate(a.chain[0]!).fingerprint256, new X509Certificate(f.oldPem).fingerprint256, 'issued with the predecessor’s chain');
    assertAccepted(t, f, a, f.oldPem);
  });

  test('OCSP for leaf A, with the predecessor as issuer: good', () => {
    const r = f.ocsp(a, f.oldPem);
    assert.equal(r.status, 'good', r.out);
  });

  test('leaf B, issued after the rotation, is the successor’s: AKI, chain, and every verifier', (t) => {
    assert.equal(b.caId, f.newId);
    assert.equal(keyIds(b.pem).aki, keyIds(f.newPem).ski);
    assert.notEqual(keyIds(b.pem).aki, keyIds(f.oldPem).ski);
    assert.ok(b.chain.length >= 1, 'REST returns a chain');
    assert.equal(new X509Certificate(b.chain[0]!).fingerprint256, new X509Certificate(f.newPem).fingerprint256, 'the chain starts with the successor');
    assert.ok(
      !b.chain.some((p) => new X509Certificate(p).fingerprint256 === new X509Certificate(f.oldPem).fingerprint256),
      'the predecessor is not in the chain',
    );
    assertAccepted(t, f, b, f.newPem);
    assert.equal(f.ocsp(b, f.newPem).status, 'good');
  });

  test('a request naming the old CA, and a renewal of leaf A, both come from the successor', async (t) => {
    const named = await f.issue({ caId: f.oldId, prefix: 'named' });
    assert.equal(named.caId, f.newId);
    assert.equal(keyIds(named.pem).aki, keyIds(f.newPem).ski);
    const renewed = await f.renew(a);
    assert.equal(renewed.caId, f.newId);
    assert.equal(keyIds(renewed.pem).aki, keyIds(f.newPem).ski);
    assert.equal(new X509Certificate(renewed.chain[0]!).fingerprint256, new X509Certificate(f.newPem).fingerprint256);
    assertAccepted(t, f, renewed, f.newPem);
  });

  test('ARI: before the rotation 2/3..5/6 of life; after it, inside [rotation, rotation + 30 days] and spread', async (t) => {
    const oldCa = await f.ca(f.oldId);
    const since = Date.parse(oldCa.retiringSince);
    const overlapEnd = Date.parse(oldCa.overlapEndsAt);
    const certs = [a, ...ariCerts];
    const starts = new Set<number>();
    for (const c of certs) {
      const x = new X509Certificate(c.pem);
      const nb = Date.parse(x.validFrom);
      const na = Date.parse(x.validTo);
      const life = na - nb;
      const w0 = ariBefore.get(c.serial)!;
      // The certificate's dates are whole seconds; the window is computed from the stored dates.
      assert.ok(Math.abs(w0.start - (nb + (life * 2) / 3)) <= 2000, `${c.name}: before the rotation the window opens at 2/3 of life`);
      assert.ok(Math.abs(w0.end - (nb + (life * 5) / 6)) <= 2000, `${c.name}: before the rotation the window closes at 5/6 of life`);
      const w = await f.ari(c);
      assert.ok(
        w.start >= since && w.end <= overlapEnd && w.start < w.end,
        `${c.name}: ${new Date(w.start).toISOString()}..${new Date(w.end).toISOString()} outside the overlap`,
      );
      assert.ok(w.end < w0.start, `${c.name}: the window after the rotation is earlier than the usual one`);
      // Asked again, the same window (a client polling ARI is not sent around).
      assert.deepEqual(await f.ari(c), w);
      starts.add(w.start);
      t.diagnostic(`${c.serial}: +${((w.start - since) / DAY_MS).toFixed(2)}d .. +${((w.end - since) / DAY_MS).toFixed(2)}d`);
    }
    // Not all at once: each certificate has its own slice of the overlap (placed by its serial).
    assert.equal(starts.size, certs.length, 'the windows are not all the same');
    // The successor's leaf gets the usual window.
    const wb = await f.ari(b);
    const xb = new X509Certificate(b.pem);
    const nbB = Date.parse(xb.validFrom);
    const lifeB = Date.parse(xb.validTo) - nbB;
    assert.ok(Math.abs(wb.start - (nbB + (lifeB * 2) / 3)) <= 2000, 'a successor leaf gets the usual window');
  });

  test('revoking leaf A after the rotation: on the predecessor’s CRL, OCSP revoked, Java rejects it (REVOKED); leaf B stays good', async () => {
    const before = await f.crl(f.oldId);
    assert.ok(!before.entries.has(serialValue(a.serial)));
    await f.revoke(a.serial, 'keyCompromise');
    // OCSP answers at once.
    const o = f.ocsp(a, f.oldPem);
    assert.equal(o.status, 'revoked', o.out);
    assert.match(o.out, /Reason: keyCompromise/);
    // The predecessor's CRL lists it (published asynchronously: poll, bounded).
    const deadline = Date.now() + POLL_DEADLINE_MS;
    let crl = before;
    while (!crl.entries.has(serialValue(a.serial))) {
      if (Date.now() > deadline) assert.fail(`the CRL of ${f.oldId} never listed ${a.serial}:\n${crl.text}`);
      await sleep(200);
      crl = await f.crl(f.oldId);
    }
    assert.ok(crl.number > before.number);
    assert.match(crl.entries.get(serialValue(a.serial))!, /Key Compromise/);
    assert.equal(/Authority Key Identifier: *\n\s*(?:keyid:)?([0-9A-F:]+)/.exec(crl.text)?.[1]?.replace(/:/g, '').toLowerCase(), keyIds(f.oldPem).ski);
    // Signed by the predecessor's key, not the successor's (same issuer name).
    const crlPem = f.file('old-crl.pem', '');
    assert.equal(openssl(['crl', '-inform', 'DER', '-out', crlPem], crl.der).status, 0);
    // (openssl crl -verify exits 0 either way: read what it says.)
    const byOld = openssl(['crl', '-in', crlPem, '-noout', '-verify', '-CAfile', f.file('old-int.pem', f.oldPem)]);
    assert.match(byOld.stdout + byOld.stderr, /verify OK/);
    const byNew = openssl(['crl', '-in', crlPem, '-noout', '-verify', '-CAfile', f.file('new-int.pem', f.newPem)]);
    assert.match(byNew.stdout + byNew.stderr, /verify failure/);
    // openssl with the CRL rejects A.
    const v = openssl([
      'verify',
      '-x509_strict',
      '-crl_check',
      '-CRLfile',
      crlPem,
      '-CAfile',
      f.file('trust-root.pem', f.rootPem),
      '-untrusted',
      f.file('old-int.pem', f.oldPem),
      a.file,
    ]);
    assert.notEqual(v.status, 0);
    assert.match(v.stdout + v.stderr, /certificate revoked/);
    // Java, by OCSP and by CRL.
    for (const revocation of JAVA_MODES) {
      const j = verifyWithJava({ roots: [f.rootPem], intermediates: [f.oldPem], leaf: a.pem, revocation });
      assert.equal(j.ok, false, `Java (${revocation}) accepted revoked leaf A:\n${j.output}`);
      assert.equal(j.reason, 'REVOKED', `Java (${revocation}): ${j.output}`);
      assert.equal(j.index, 0, j.output);
      // B is unaffected.
      const jb = verifyWithJava({ roots: [f.rootPem], intermediates: [f.newPem], leaf: b.pem, revocation });
      assert.ok(jb.ok, `Java (${revocation}) rejected leaf B:\n${jb.output}`);
    }
    assert.equal(f.ocsp(b, f.newPem).status, 'good');
    assert.ok(!(await f.crl(f.newId)).entries.has(serialValue(a.serial)), 'not on the successor’s CRL');
  });

  describe('each verifier can fail', () => {
    let foreign: { root: string; leaf: Issued };
    let oldLeaf: Issued;

    before(async () => {
      // An unrelated CA made by openssl, and a server leaf it signed.
      const ca = selfSignedCa(f.tmp, 'unrelated', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], '/CN=Unrelated Root');
      const name = 'foreign.rotation.example.test';
      const key = f.tmp.file('foreign-leaf.key');
      const csr = f.tmp.file('foreign-leaf.csr');
      const out = f.tmp.file('foreign-leaf.pem');
      const ext = f.tmp.file(
        'foreign-leaf.ext',
        `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:${name}\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid:always\n`,
      );
      let r = openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-subj', `/CN=${name}`, '-out', csr]);
      assert.equal(r.status, 0, r.stderr);
      r = openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-days', '30', '-extfile', ext, '-out', out]);
      assert.equal(r.status, 0, r.stderr);
      const pem = readFileSync(out, 'utf8');
      foreign = { root: readFileSync(ca.cert, 'utf8'), leaf: { serial: '', pem, file: out, caId: '', chain: [], name } };
      // A leaf of the predecessor that is not revoked.
      oldLeaf = ariCerts[0]!;
      assert.equal(oldLeaf.caId, f.oldId);
    });

    test('the unrelated CA’s leaf verifies with its own root (the case is sound) ', (t) => {
      const o = openssl(['verify', '-x509_strict', '-CAfile', f.file('unrelated-root.pem', foreign.root), foreign.leaf.file]);
      assert.equal(o.status, 0, o.stdout + o.stderr);
      assertStrictlyValid(t, { roots: [foreign.root], intermediates: [], leaf: foreign.leaf.pem, dns: foreign.leaf.name });
      // No AIA or CDP in it: Java can check it only with revocation off.
      const j = verifyWithJava({ roots: [foreign.root], intermediates: [], leaf: foreign.leaf.pem, revocation: 'off' });
      assert.ok(j.ok, j.output);
    });

    const cases: { what: string; leaf: () => Issued; intermediates: () => string[] }[] = [
      { what: 'a leaf signed by an unrelated CA, with Signet’s root trusted', leaf: () => foreign.leaf, intermediates: () => [f.newPem] },
      { what: 'a pre-rotation leaf offered with the successor as intermediate (same name, other key)', leaf: () => oldLeaf, intermediates: () => [f.newPem] },
    ];
    for (const c of cases) {
      test(`${c.what}: openssl, Go, GnuTLS, NSS and Java reject it`, (t) => {
        const leaf = c.leaf();
        const o = f.opensslVerify(leaf, c.intermediates());
        assert.equal(o.ok, false, `openssl accepted:\n${o.out}`);
        const opts: StrictVerifyOptions = { roots: [f.rootPem], intermediates: c.intermediates(), leaf: leaf.pem, dns: leaf.name };
        for (const v of Object.keys(verifiers) as StrictVerifier[]) {
          const r = verifiers[v](opts);
          assert.equal(r.ok, false, `${v} accepted:\n${r.output}`);
          t.diagnostic(`${v}: ${why(r.output)}`);
        }
        for (const revocation of ['off', ...JAVA_MODES] as JavaRevocation[]) {
          const j = verifyWithJava({ roots: [f.rootPem], intermediates: c.intermediates(), leaf: leaf.pem, revocation });
          assert.equal(j.ok, false, `Java (${revocation}) accepted:\n${j.output}`);
          assert.ok(j.reason, j.output);
          assert.notEqual(j.reason, 'UNDETERMINED_REVOCATION_STATUS', `Java (${revocation}) should reject the path itself: ${j.output}`);
          t.diagnostic(`java (${revocation}): ${j.output}`);
        }
      });
    }

    test('Java with revocation on rejects a leaf whose status it cannot learn (no responder)', () => {
      // The unrelated leaf names no OCSP responder: its status cannot be learnt, so it is not valid.
      const offline = verifyWithJava({ roots: [foreign.root], intermediates: [], leaf: foreign.leaf.pem, revocation: 'ocsp' });
      assert.equal(offline.ok, false, offline.output);
      assert.match(offline.output, /does not specify OCSP responder/);
    });
  });
});
