/**
 * Issue #19 items 4 and 5: delta CRLs (SIGNET_CRL_DELTAS) and sharded CRLs (SIGNET_CRL_SHARDS),
 * against a real `signet serve` (SQLite, or PostgreSQL under test:pg). OpenSSL reads every CRL
 * (`openssl crl -text`) and uses full + delta (`openssl verify -crl_check -use_deltas`); Go's
 * crypto/x509 parses every delta and shard CRL and checks its signature (test/interop/crl-parse.go).
 * Timing is never asserted: anything asynchronous is polled, bounded.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { api, getUrl, signet, startServer, type RunningServer } from './helpers/cli.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';
import { newKeyCsr, openssl, parseCrlText, TempDir } from './helpers/openssl.js';
import { sql } from './helpers/sql.js';
import { goProgram } from './helpers/strict.js';

const POLL_DEADLINE_MS = 15_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Issued {
  serial: string;
  pem: string;
  text: string;
}
interface CrlView {
  number: bigint;
  text: string;
  entries: Map<bigint, string>;
  der: Buffer;
  file: string;
}
interface GoCrl {
  number: string;
  base: string | null;
  extensions: Record<string, boolean>;
  serials: string[];
  reasons: Record<string, number>;
  signature: string;
}

const IDP = '2.5.29.28';
const DELTA_INDICATOR = '2.5.29.27';
const FRESHEST = '2.5.29.46';

class Fixture {
  env!: TestEnv;
  server!: RunningServer;
  readonly tmp = new TempDir();
  rootId!: string;
  intId!: string;
  rootPem!: string;
  intPem!: string;
  private n = 0;

  async start(extra: Record<string, string>): Promise<void> {
    this.env = await createTestEnv({ SIGNET_CRL_COALESCE_MS: '200', ...extra });
    await this.boot();
    const cas = (await api(this.server, 'GET', '/api/v1/cas')).json.items as any[];
    this.rootId = cas.find((c) => c.parentId === null).id;
    this.intId = cas.find((c) => c.parentId === this.rootId).id;
    this.rootPem = this.tmp.file('root.pem', (await api(this.server, 'GET', `/api/v1/cas/${this.rootId}`)).json.certificate);
    this.intPem = this.tmp.file('int.pem', (await api(this.server, 'GET', `/api/v1/cas/${this.intId}`)).json.certificate);
  }

  async boot(extra: Record<string, string> = {}): Promise<void> {
    Object.assign(this.env.env, extra);
    this.server = await startServer(this.env.env);
  }

  async stop(): Promise<void> {
    await this.server?.stop();
    await this.env?.cleanup();
    this.tmp.remove();
  }

  async issue(): Promise<Issued> {
    const name = `leaf${++this.n}.example.test`;
    const csr = newKeyCsr(name, this.tmp.file(`${name}.key`));
    const r = await api(this.server, 'POST', '/api/v1/certificates', { csr, profile: 'server' });
    assert.equal(r.status, 201, r.text);
    const pem = this.tmp.file(`${name}.pem`, r.json.certificate);
    return { serial: r.json.serial, pem, text: openssl(['x509', '-in', pem, '-noout', '-text']).stdout };
  }

  async revoke(serial: string, reason = 'keyCompromise'): Promise<void> {
    const r = await api(this.server, 'POST', `/api/v1/certificates/${serial}/revoke`, { reason });
    assert.equal(r.status, 200, r.text);
  }

  async fetchCrl(path: string): Promise<CrlView> {
    const res = await getUrl(`${this.server.url}${path}`);
    const der = Buffer.from(await res.arrayBuffer());
    assert.equal(res.status, 200, `GET ${path}: ${der.toString()}`);
    assert.equal(res.headers.get('content-type'), 'application/pkix-crl');
    const out = openssl(['crl', '-inform', 'DER', '-noout', '-text'], der);
    assert.equal(out.status, 0, out.stderr);
    const file = this.tmp.file(`${path.replace(/\W/g, '_')}-${Date.now()}-${this.n++}.der`, der);
    return { ...parseCrlText(out.stdout), text: out.stdout, der, file };
  }

  async waitForCrl(path: string, ok: (c: CrlView) => boolean, what: string): Promise<CrlView> {
    const deadline = Date.now() + POLL_DEADLINE_MS;
    let last = await this.fetchCrl(path);
    while (!ok(last)) {
      if (Date.now() > deadline) assert.fail(`${path} never showed ${what}; last:\n${last.text}`);
      await sleep(100);
      last = await this.fetchCrl(path);
    }
    return last;
  }

  /** Go's crypto/x509: every CRL parses and is signed by the intermediate. */
  goParse(...files: string[]): GoCrl[] {
    const r = spawnSync(goProgram('crl-parse.go'), [this.intPem, ...files], { encoding: 'utf8' });
    assert.equal(r.status, 0, `Go refused a CRL: ${r.stderr}`);
    return r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as GoCrl);
  }

  /** `openssl verify -crl_check` of a leaf against the chain and the CRL files given. */
  verify(leaf: string, crls: string[], deltas: boolean): { ok: boolean; out: string } {
    const pem = (f: string) => {
      const p = `${f}.pem`;
      if (openssl(['crl', '-inform', 'DER', '-in', f, '-out', p]).status !== 0) assert.fail(`cannot convert ${f}`);
      return p;
    };
    const args = ['verify', '-crl_check', ...(deltas ? ['-use_deltas'] : []), '-CAfile', this.rootPem, '-untrusted', this.intPem];
    for (const c of crls) args.push('-CRLfile', pem(c));
    const r = openssl([...args, leaf]);
    return { ok: r.status === 0, out: r.stdout + r.stderr };
  }
}

const serialKey = (hex: string) => BigInt(`0x${hex}`);
const goSerial = (hex: string) => serialKey(hex).toString(16);
/** The path of the URI in a certificate's (or CRL's) extension, as `openssl -text` prints it. */
function uriAfter(text: string, label: string): string | undefined {
  const m = new RegExp(`${label}[^\\n]*\\n(?:\\s*\\n)*\\s*Full Name:\\s*\\n\\s*URI:(\\S+)`).exec(text);
  return m ? new URL(m[1]!).pathname : undefined;
}

describe('delta CRLs (SIGNET_CRL_DELTAS=on)', () => {
  const f = new Fixture();
  let good: Issued;
  let base: CrlView;

  before(async () => {
    await f.start({ SIGNET_CRL_DELTAS: 'on' });
    good = await f.issue();
  });
  after(() => f.stop());

  test('the full CRL carries freshestCRL, new leaves name both CRLs, the delta names its base', async () => {
    assert.equal(uriAfter(good.text, 'X509v3 CRL Distribution Points:'), `/pki/${f.intId}.crl`);
    assert.equal(uriAfter(good.text, 'X509v3 Freshest CRL:'), `/pki/${f.intId}-delta.crl`);
    base = await f.fetchCrl(`/pki/${f.intId}.crl`);
    assert.match(base.text, /X509v3 Issuing Distribution Point: critical/);
    assert.equal(uriAfter(base.text, 'X509v3 Freshest CRL:'), `/pki/${f.intId}-delta.crl`);
    const delta = await f.fetchCrl(`/pki/${f.intId}-delta.crl`);
    const indicator = /X509v3 Delta CRL Indicator: critical\s*\n\s*(\S+)/.exec(delta.text);
    assert.ok(indicator, delta.text);
    assert.equal(BigInt(indicator[1]!), base.number, 'the delta names the full CRL as its base');
    assert.ok(delta.number > base.number, 'one number sequence: the delta is numbered above its base');
    assert.doesNotMatch(delta.text, /Freshest CRL/);
    // Same scope as the base: the same issuingDistributionPoint.
    assert.equal(uriAfter(delta.text, 'X509v3 Issuing Distribution Point: critical'), `/pki/${f.intId}.crl`);
    const [g1, g2] = f.goParse(base.file, delta.file);
    assert.equal(g1!.base, null);
    assert.equal(g1!.extensions[FRESHEST], false);
    assert.equal(g1!.extensions[IDP], true);
    assert.equal(g2!.base, base.number.toString());
    assert.equal(g2!.extensions[DELTA_INDICATOR], true);
  });

  test('a revocation after the full CRL: only the delta is re-signed; openssl -use_deltas rejects the leaf, accepts a good one', async () => {
    const victim = await f.issue();
    await f.revoke(victim.serial, 'keyCompromise');
    const delta = await f.waitForCrl(`/pki/${f.intId}-delta.crl`, (c) => c.entries.has(serialKey(victim.serial)), 'the revoked leaf');
    assert.match(delta.entries.get(serialKey(victim.serial))!, /Key Compromise/);
    const full = await f.fetchCrl(`/pki/${f.intId}.crl`);
    assert.equal(full.number, base.number, 'the full CRL keeps its interval');
    assert.ok(!full.entries.has(serialKey(victim.serial)));
    // Full CRL alone: the revocation is not in it yet. Full + delta: revoked.
    assert.ok(f.verify(victim.pem, [full.file], false).ok, 'the full CRL alone does not know the revocation');
    const r = f.verify(victim.pem, [full.file, delta.file], true);
    assert.ok(!r.ok, r.out);
    assert.match(r.out, /certificate revoked/);
    const g = f.verify(good.pem, [full.file, delta.file], true);
    assert.ok(g.ok, g.out);
    const [parsed] = f.goParse(delta.file);
    assert.ok(parsed!.serials.includes(goSerial(victim.serial)));
    assert.equal(parsed!.reasons[goSerial(victim.serial)], 1);
  });

  test('a hold released after the full CRL listed it: removeFromCRL in the delta, openssl accepts the leaf again', async () => {
    const held = await f.issue();
    await f.revoke(held.serial, 'certificateHold');
    // A new full CRL (and its delta) now: the hold is in the base.
    const out = signet(['crl', '--ca', f.intId], f.env.env);
    assert.equal(out.status, 0, out.stderr);
    const full = await f.waitForCrl(`/pki/${f.intId}.crl`, (c) => c.entries.has(serialKey(held.serial)), 'the hold');
    assert.match(full.entries.get(serialKey(held.serial))!, /Certificate Hold/);
    assert.ok(!f.verify(held.pem, [full.file], false).ok, 'on hold in the full CRL');
    const r = await api(f.server, 'POST', `/api/v1/certificates/${held.serial}/unhold`, {});
    assert.equal(r.status, 200, r.text);
    const delta = await f.waitForCrl(
      `/pki/${f.intId}-delta.crl`,
      (c) => /Remove From CRL/.test(c.entries.get(serialKey(held.serial)) ?? ''),
      'removeFromCRL for the released hold',
    );
    assert.match(delta.text, new RegExp(`Delta CRL Indicator: critical\\s*\\n\\s*${full.number}\\n`), 'the delta names the new full CRL');
    const v = f.verify(held.pem, [full.file, delta.file], true);
    assert.ok(v.ok, v.out);
    const [parsed] = f.goParse(delta.file);
    assert.equal(parsed!.reasons[goSerial(held.serial)], 8);
  });

  test('removeFromCRL is still refused as a revocation reason, with the way to release a hold', async () => {
    const c = await f.issue();
    const r = await api(f.server, 'POST', `/api/v1/certificates/${c.serial}/revoke`, { reason: 'removeFromCRL' });
    assert.equal(r.status, 400);
    assert.match(r.json.detail, /Signet writes it in delta CRLs itself when a hold is released; to release a hold use the unhold operation/);
  });
});

describe('sharded CRLs (SIGNET_CRL_SHARDS)', () => {
  const f = new Fixture();
  const byShard = new Map<number, Issued[]>();
  const shardOf = new Map<string, number>();

  before(async () => {
    await f.start({ SIGNET_CRL_SHARDS: '3' });
    for (let i = 0; i < 40 && (byShard.size < 3 || [...byShard.values()].some((l) => l.length < 2)); i++) {
      const c = await f.issue();
      const path = uriAfter(c.text, 'X509v3 CRL Distribution Points:');
      const m = new RegExp(`^/pki/${f.intId}\\.s([1-3])\\.crl$`).exec(path ?? '');
      assert.ok(m, `CDP ${path}`);
      const k = Number(m[1]);
      shardOf.set(c.serial, k);
      byShard.set(k, [...(byShard.get(k) ?? []), c]);
    }
    assert.deepEqual([...byShard.keys()].sort(), [1, 2, 3], 'certificates land in every shard');
  });
  after(() => f.stop());

  test('each certificate stores its shard, the one its CRL distribution point names', async () => {
    for (const [serial, k] of shardOf) {
      const [row] = await sql<{ crlShard: number }>(f.env, 'SELECT "crlShard" FROM "Certificate" WHERE serial = ?', [serial]);
      assert.equal(Number(row!.crlShard), k, serial);
    }
  });

  test('every shard CRL has a critical IDP naming its own URL and parses in Go; the unsharded CRL stays', async () => {
    const files: string[] = [];
    for (const k of [1, 2, 3]) {
      const c = await f.fetchCrl(`/pki/${f.intId}.s${k}.crl`);
      assert.equal(uriAfter(c.text, 'X509v3 Issuing Distribution Point: critical'), `/pki/${f.intId}.s${k}.crl`);
      files.push(c.file);
    }
    const unsharded = await f.fetchCrl(`/pki/${f.intId}.crl`);
    assert.equal(uriAfter(unsharded.text, 'X509v3 Issuing Distribution Point: critical'), `/pki/${f.intId}.crl`);
    for (const g of f.goParse(...files, unsharded.file)) {
      assert.equal(g.signature, 'ok');
      assert.equal(g.extensions[IDP], true);
      assert.equal(g.base, null);
    }
    const none = await getUrl(`${f.server.url}/pki/${f.intId}.s4.crl`);
    assert.equal(none.status, 404);
    assert.match((await none.json()).detail, new RegExp(`CA ${f.intId} has no CRL shard 4`));
    const noDelta = await getUrl(`${f.server.url}/pki/${f.intId}-delta.crl`);
    assert.equal(noDelta.status, 404);
    assert.match((await noDelta.json()).detail, /delta CRLs are not published \(SIGNET_CRL_DELTAS is off\)/);
  });

  test('a revocation lands in its shard only, re-signing only that shard; openssl rejects it with that CRL', async () => {
    const before1 = new Map<number, bigint>();
    for (const k of [1, 2, 3]) before1.set(k, (await f.fetchCrl(`/pki/${f.intId}.s${k}.crl`)).number);
    const victim = byShard.get(2)![0]!;
    await f.revoke(victim.serial);
    const s2 = await f.waitForCrl(`/pki/${f.intId}.s2.crl`, (c) => c.entries.has(serialKey(victim.serial)), 'the revoked leaf');
    assert.ok(s2.number > before1.get(2)!);
    await sleep(600); // three coalescing windows: nothing else is re-signed
    for (const k of [1, 3]) {
      const c = await f.fetchCrl(`/pki/${f.intId}.s${k}.crl`);
      assert.ok(!c.entries.has(serialKey(victim.serial)), `shard ${k} does not list it`);
      assert.equal(c.number, before1.get(k), `shard ${k} was not re-signed`);
    }
    assert.ok(!(await f.fetchCrl(`/pki/${f.intId}.crl`)).entries.has(serialKey(victim.serial)));
    const r = f.verify(victim.pem, [s2.file], false);
    assert.ok(!r.ok, r.out);
    assert.match(r.out, /certificate revoked/);
    const goodInShard1 = byShard.get(1)![0]!;
    const s1 = await f.fetchCrl(`/pki/${f.intId}.s1.crl`);
    const g = f.verify(goodInShard1.pem, [s1.file], false);
    assert.ok(g.ok, g.out);
    const [parsed] = f.goParse(s2.file);
    assert.ok(parsed!.serials.includes(goSerial(victim.serial)));
  });

  test('old CRLs are pruned per shard: five kept for a busy shard, the quiet shards keep theirs', async () => {
    const c = byShard.get(1)![1]!;
    for (let i = 0; i < 6; i++) {
      const hold = i % 2 === 0;
      const r = hold
        ? await api(f.server, 'POST', `/api/v1/certificates/${c.serial}/revoke`, { reason: 'certificateHold' })
        : await api(f.server, 'POST', `/api/v1/certificates/${c.serial}/unhold`, {});
      assert.equal(r.status, 200, r.text);
      await f.waitForCrl(`/pki/${f.intId}.s1.crl`, (x) => x.entries.has(serialKey(c.serial)) === hold, hold ? 'the hold' : 'the released hold');
    }
    const rows = await sql<{ shard: number; n: number | string }>(f.env, 'SELECT "shard", COUNT(*) AS n FROM "Crl" WHERE "caId" = ? GROUP BY "shard"', [
      f.intId,
    ]);
    const count = new Map(rows.map((r) => [Number(r.shard), Number(r.n)]));
    assert.equal(count.get(1), 5, 'the busy shard keeps its five newest');
    // The CA's numbers moved on by more than five; a CA-wide cut would have removed these.
    for (const k of [0, 2, 3]) assert.ok((count.get(k) ?? 0) >= 1, `shard ${k} still has its CRL`);
    await f.fetchCrl(`/pki/${f.intId}.s3.crl`);
  });

  test('SIGNET_CRL_SHARDS lowered (with deltas on): certificates keep their shard, its CRL and a delta per shard', async () => {
    await f.server.stop();
    await f.boot({ SIGNET_CRL_SHARDS: '2', SIGNET_CRL_DELTAS: 'on' });
    const old = byShard.get(3)![0]!;
    const s3 = await f.fetchCrl(`/pki/${f.intId}.s3.crl`);
    assert.equal(uriAfter(s3.text, 'X509v3 Freshest CRL:'), `/pki/${f.intId}.s3-delta.crl`);
    await f.revoke(old.serial, 'superseded');
    const d3 = await f.waitForCrl(`/pki/${f.intId}.s3-delta.crl`, (c) => c.entries.has(serialKey(old.serial)), 'the revoked shard-3 leaf');
    assert.match(d3.text, /X509v3 Delta CRL Indicator: critical/);
    assert.equal(uriAfter(d3.text, 'X509v3 Issuing Distribution Point: critical'), `/pki/${f.intId}.s3.crl`);
    const full3 = await f.fetchCrl(`/pki/${f.intId}.s3.crl`);
    const r = f.verify(old.pem, [full3.file, d3.file], true);
    assert.ok(!r.ok, r.out);
    const [g] = f.goParse(d3.file);
    assert.equal(g!.base, full3.number.toString());
    assert.ok(g!.serials.includes(goSerial(old.serial)));
    // Other shards' deltas do not list it.
    for (const k of [1, 2]) assert.ok(!(await f.fetchCrl(`/pki/${f.intId}.s${k}-delta.crl`)).entries.has(serialKey(old.serial)));
    // New certificates go into shards 1..2 only.
    for (let i = 0; i < 6; i++) {
      const c = await f.issue();
      assert.match(uriAfter(c.text, 'X509v3 CRL Distribution Points:') ?? '', new RegExp(`^/pki/${f.intId}\\.s[12]\\.crl$`));
    }
  });

  test('SIGNET_CRL_SHARDS that is not a positive integer is refused at start', () => {
    for (const bad of ['0', '1.5', 'four']) {
      const r = signet(['migrate'], { ...f.env.env, SIGNET_CRL_SHARDS: bad });
      assert.notEqual(r.status, 0, bad);
      assert.match(r.stderr, /SIGNET_CRL_SHARDS is invalid/, bad);
    }
  });
});
