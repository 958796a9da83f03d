/**
 * Event webhooks (issue #19 item 2) against a real `signet serve` (SQLite, or PostgreSQL under
 * test:pg) and a real receiver on loopback: the signature checks out with openssl; an event
 * committed just before a kill -9 is delivered after the restart; a receiver that is down gets
 * every event, in order, once it is back; a receiver that never accepts ends in dead letters
 * that `signet webhook list` shows and a retry delivers; bad registrations are refused precisely.
 */
import { deliveryResponse } from '../src/http/routes/webhooks.js';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { api, freePort, signet, startServer, type RunningServer } from './helpers/cli.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';
import { newKeyCsr, openssl } from './helpers/openssl.js';
import { sql } from './helpers/sql.js';
import pino from 'pino';
import { loadConfig } from '../src/config/config.js';
import { openSignet } from '../src/runtime/open.js';
import { emitCertificateAtRisk } from '../src/ca/webhook-events.js';
import { isPrivateAddress } from '../src/ca/webhooks.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Received {
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A receiver on loopback: records every POST; answers 200, or what `answer` says. */
class Receiver {
  got: Received[] = [];
  answer: { status: number; headers?: Record<string, string> } = { status: 200 };
  private server: Server | undefined;
  constructor(readonly port: number) {}
  get url() {
    return `http://127.0.0.1:${this.port}/hook`;
  }
  async start() {
    this.server = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        this.got.push({ headers: req.headers, body });
        res.writeHead(this.answer.status, this.answer.headers).end();
      });
    });
    await new Promise<void>((r) => this.server!.listen(this.port, '127.0.0.1', r));
  }
  async stop() {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    const closed = new Promise<void>((r) => s.close(() => r()));
    s.closeAllConnections();
    await closed;
  }
  events() {
    return this.got.map((g) => JSON.parse(g.body) as { id: string; type: string; auditSeq: number; data: Record<string, unknown> });
  }
  async waitFor(what: string, done: (evs: ReturnType<Receiver['events']>) => boolean, ms = 20_000) {
    const deadline = Date.now() + ms;
    while (!done(this.events())) {
      if (Date.now() > deadline) throw new Error(`receiver: ${what} did not arrive in ${ms} ms; got ${JSON.stringify(this.events().map((e) => e.type))}`);
      await sleep(50);
    }
  }
}

/** Checks Signet-Signature as a receiver would, with openssl: HMAC-SHA256(secret, "<t>.<body>"). */
function verifyWithOpenssl(r: Received, secret: string): void {
  const header = String(r.headers['signet-signature']);
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header);
  assert.ok(m, `Signet-Signature ${header}`);
  const out = openssl(['dgst', '-sha256', '-hmac', secret], `${m[1]}.${r.body}`);
  assert.equal(out.status, 0, out.stderr);
  assert.equal(out.stdout.trim().split(/\s+/).pop(), m[2], 'the HMAC openssl computes is the one Signet sent');
  assert.ok(Math.abs(Number(m[1]) - Date.now() / 1000) < 120, 'the timestamp is now');
}

describe('event webhooks', { concurrency: false }, () => {
  let env: TestEnv;
  let server: RunningServer;
  let receiver: Receiver;
  const others: Receiver[] = [];
  const csr = newKeyCsr('hooks.example.test');
  const fast = { SIGNET_WEBHOOK_POLL_MS: '100', SIGNET_WEBHOOK_RETRY_BASE_MS: '100', SIGNET_WEBHOOK_RETRY_CAP_MS: '400', SIGNET_WEBHOOK_TIMEOUT_MS: '2000' };

  const issue = async () => {
    const r = await api(server, 'POST', '/api/v1/certificates', { csr, profile: 'server' });
    assert.equal(r.status, 201, r.text);
    return r.json.serial as string;
  };
  const register = async (url: string, events: string[], secret?: string) => {
    const r = await api(server, 'POST', '/api/v1/webhooks', { url, events, ...(secret ? { secret } : {}) });
    assert.equal(r.status, 201, r.text);
    return r.json as { id: string; secret: string; events: string[] };
  };
  const restart = async (extra: Record<string, string> = {}) => {
    await server.stop('SIGTERM');
    server = await startServer({ ...env.env, ...extra });
  };

  before(async () => {
    env = await createTestEnv(fast);
    server = await startServer(env.env);
    env.env.SIGNET_PORT = String(server.port);
    receiver = new Receiver(await freePort());
    await receiver.start();
  });
  after(async () => {
    await server?.stop('SIGKILL');
    await receiver?.stop();
    for (const o of others) await o.stop();
    await env?.cleanup();
  });

  test('signed deliveries: issued and revoked, verified with openssl; a webhook never gets events from before it', async () => {
    const before = await issue(); // committed before the webhook exists
    const hook = await register(receiver.url, ['certificate.issued', 'certificate.revoked']);
    assert.match(hook.secret, /^whsec_[A-Za-z0-9_-]{43}$/);
    const serial = await issue();
    assert.equal((await api(server, 'POST', `/api/v1/certificates/${serial}/revoke`, { reason: 'superseded' })).status, 200);
    await receiver.waitFor('issued and revoked', (evs) => evs.some((e) => e.type === 'certificate.revoked' && e.data.serial === serial));
    const evs = receiver.events();
    assert.deepEqual(
      evs.map((e) => [e.type, e.data.serial]),
      [
        ['certificate.issued', serial],
        ['certificate.revoked', serial],
      ],
    );
    assert.ok(!evs.some((e) => e.data.serial === before), 'the certificate issued before registration is not sent');
    assert.equal(evs[1]!.data.reason, 'superseded');
    for (const r of receiver.got) {
      verifyWithOpenssl(r, hook.secret);
      assert.equal(r.headers['content-type'], 'application/json');
      assert.equal(r.headers['signet-event-id'], JSON.parse(r.body).id);
    }
    // Shown once: no other answer carries the secret, and the database holds it only sealed.
    const shown = await api(server, 'GET', `/api/v1/webhooks/${hook.id}`);
    assert.equal(shown.status, 200, shown.text);
    assert.ok(!shown.text.includes(hook.secret));
    assert.equal(shown.json.deliveries.length, 2);
    assert.ok(!(await api(server, 'GET', '/api/v1/webhooks')).text.includes(hook.secret));
    const [row] = await sql(env, 'SELECT sealed FROM "Webhook" WHERE id = ?', [hook.id]);
    assert.ok(!Buffer.from(row.sealed).includes(Buffer.from(hook.secret)));
    assert.ok(!server.stdout().includes(hook.secret) && !server.stderr().includes(hook.secret), 'the secret is never logged');
    assert.equal((await api(server, 'DELETE', `/api/v1/webhooks/${hook.id}`)).status, 200);
    assert.equal((await api(server, 'GET', `/api/v1/webhooks/${hook.id}`)).status, 404);
    receiver.got = [];
  });

  test('certificate.at_risk from emitCertificateAtRisk, committed with its audit event; a webhook gets only what it subscribed to', async () => {
    const hook = await register(receiver.url, ['certificate.at_risk']);
    const serial = await issue(); // certificate.issued: not subscribed to
    const caId = (await api(server, 'GET', `/api/v1/certificates/${serial}`)).json.caId as string;
    const ctx = await openSignet(loadConfig(env.env), pino({ level: 'silent' }));
    try {
      await emitCertificateAtRisk(ctx.db, { serial, caId, reason: 'weak-key', details: { bits: 1024 }, actor: 'detector:test' });
    } finally {
      await ctx.db.close();
    }
    await receiver.waitFor('the at-risk event', (evs) => evs.length >= 1);
    await sleep(300);
    assert.deepEqual(
      receiver.events().map((e) => [e.type, e.data.serial, e.data.caId, e.data.reason, e.data.bits, e.data.actor]),
      [['certificate.at_risk', serial, caId, 'weak-key', 1024, 'detector:test']],
    );
    verifyWithOpenssl(receiver.got[0]!, hook.secret);
    const audit = await sql(env, `SELECT seq FROM "AuditEvent" WHERE action = 'certificate.at_risk' AND target = ?`, [serial]);
    assert.equal(audit.length, 1);
    assert.equal(receiver.events()[0]!.auditSeq, Number(audit[0].seq));
    assert.equal((await api(server, 'DELETE', `/api/v1/webhooks/${hook.id}`)).status, 200);
    receiver.got = [];
  });

  test('kill -9 after the commit, before the delivery: the event arrives after the restart', async () => {
    const secret = 'a-secret-chosen-by-the-operator-0123456789';
    const hook = await register(receiver.url, ['certificate.issued'], secret);
    await receiver.stop(); // nothing can be delivered before the kill
    await restart({ SIGNET_FAULT_AT: 'issue:committed' });
    const r = await api(server, 'POST', '/api/v1/certificates', { csr, profile: 'server' }).catch((e: unknown) => ({ status: 0, error: e }));
    assert.equal(r.status, 0, 'the server died before answering');
    assert.equal(await server.stop('SIGKILL'), null);
    const [stored] = await sql(env, `SELECT serial FROM "Certificate" ORDER BY "createdAt" DESC LIMIT 1`);
    const [pending] = await sql(env, 'SELECT cursor FROM "Webhook" WHERE id = ?', [hook.id]);
    const outbox = await sql(env, 'SELECT id, type FROM "WebhookEvent" WHERE id > ?', [pending.cursor]);
    assert.ok(
      outbox.some((o) => o.type === 'certificate.issued'),
      'the event committed with the certificate',
    );
    await receiver.start();
    server = await startServer(env.env);
    await receiver.waitFor('the certificate committed before the kill', (evs) => evs.some((e) => e.data.serial === stored.serial));
    for (const g of receiver.got) verifyWithOpenssl(g, secret);
    assert.equal((await api(server, 'DELETE', `/api/v1/webhooks/${hook.id}`)).status, 200);
    receiver.got = [];
  });

  test('a receiver down for a while gets every event once it is back, in commit order', async () => {
    const hook = await register(receiver.url, ['certificate.issued', 'certificate.revoked', 'ca.*']);
    await receiver.stop();
    const a = await issue();
    const b = await issue();
    assert.equal((await api(server, 'POST', `/api/v1/certificates/${a}/revoke`, { reason: 'keyCompromise' })).status, 200);
    const c = await issue();
    assert.equal((await api(server, 'POST', `/api/v1/certificates/${b}/revoke`, { reason: 'certificateHold' })).status, 200);
    // It failed a few times meanwhile, and says so.
    let shown;
    for (let i = 0; i < 100; i++) {
      shown = await api(server, 'GET', `/api/v1/webhooks/${hook.id}`);
      if (shown.json.attempts >= 2) break;
      await sleep(100);
    }
    assert.ok(shown!.json.attempts >= 2, JSON.stringify(shown!.json));
    assert.match(shown!.json.lastError, /ECONNREFUSED/);
    assert.equal(shown!.json.backlog >= 5, true);
    await receiver.start();
    await receiver.waitFor('all five', (evs) => evs.length >= 5);
    const got = receiver.events().map((e) => `${e.type} ${e.data.serial}`);
    assert.deepEqual(
      [...new Set(got)],
      [`certificate.issued ${a}`, `certificate.issued ${b}`, `certificate.revoked ${a}`, `certificate.issued ${c}`, `certificate.revoked ${b}`],
    );
    assert.equal(receiver.events().find((e) => e.type === 'certificate.revoked' && e.data.serial === b)!.data.status, 'hold');
    assert.equal((await api(server, 'DELETE', `/api/v1/webhooks/${hook.id}`)).status, 200);
    receiver.got = [];
  });

  test('a receiver that redirects is never followed: dead letters after N attempts, listed by `signet webhook list`, retried on request', async () => {
    await restart({ SIGNET_WEBHOOK_MAX_ATTEMPTS: '3' });
    const elsewhere = new Receiver(await freePort());
    await elsewhere.start();
    others.push(elsewhere);
    receiver.answer = { status: 302, headers: { location: elsewhere.url } };
    const hook = await register(receiver.url, ['certificate.issued']);
    const serial = await issue();
    for (let i = 0; i < 200; i++) {
      if ((await api(server, 'GET', `/api/v1/webhooks/${hook.id}`)).json.deadLetters === 1) break;
      await sleep(50);
    }
    const l = signet(['webhook', 'list'], env.env);
    assert.equal(l.status, 0, l.stderr);
    assert.match(
      l.stdout,
      new RegExp(
        `${hook.id}.*\\n[^]*dead letters:[^]*${hook.id}\\s+dl_[0-9a-f]{16}\\s+\\d+\\s+certificate\\.issued\\s+dead\\s+3\\s+the receiver answered 302 \\(a redirect, which is never followed\\)`,
      ),
    );
    assert.equal(receiver.got.length, 3, 'three attempts, no more');
    assert.equal(elsewhere.got.length, 0, 'the redirect was not followed');
    await elsewhere.stop();
    const shown = await api(server, 'GET', `/api/v1/webhooks/${hook.id}`);
    assert.equal(shown.json.deadLetters, 1);
    const dead = shown.json.deadLetterList[0] as { id: string; status: string; attempts: number; event: { data: { serial: string } } };
    assert.deepEqual([dead.status, dead.attempts, dead.event.data.serial], ['dead', 3, serial]);
    // The next event is not held up by the dead one.
    receiver.answer = { status: 204 };
    const next = await issue();
    await receiver.waitFor('the next event', (evs) => evs.some((e) => e.data.serial === next));
    // Retried over REST (its answer as the OpenAPI document describes it); the CLI's retry below.
    const retried = await api(server, 'POST', `/api/v1/webhooks/${hook.id}/deliveries/${dead.id}/retry`, {});
    assert.equal(retried.status, 200, retried.text);
    assert.equal(deliveryResponse.parse(retried.json).status, 'retrying');
    await receiver.waitFor('the dead letter, retried', (evs) => evs.filter((e) => e.data.serial === serial).length === 4);
    for (const g of receiver.got.slice(-1)) assert.equal(JSON.parse(g.body).data.serial, serial);
    const after = await api(server, 'GET', `/api/v1/webhooks/${hook.id}`);
    assert.equal(after.json.deadLetters, 0);
    assert.equal(after.json.deliveries.find((d: { id: string }) => d.id === dead.id).status, 'delivered');
    // Retrying what is not a dead letter is a conflict, over REST and in the CLI.
    assert.equal((await api(server, 'POST', `/api/v1/webhooks/${hook.id}/deliveries/${dead.id}/retry`)).status, 409);
    const again = signet(['webhook', 'retry', hook.id, dead.id], env.env);
    assert.notEqual(again.status, 0);
    assert.match(again.stderr, /not a dead letter/);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(metrics, /signet_webhook_deliveries_total\{outcome="dead"\} 1/);
    assert.match(metrics, new RegExp(`signet_webhook_backlog\\{webhook="${hook.id}"\\} 0`));
    assert.equal((await api(server, 'DELETE', `/api/v1/webhooks/${hook.id}`)).status, 200);
    receiver.answer = { status: 200 };
    receiver.got = [];
  });

  test('a hold and its release both arrive; a hanging receiver and an endless body hold up only their own webhook', async () => {
    // A receiver whose answer body never ends, and one that never answers at all.
    const endless = createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'text/plain' });
      const drip = setInterval(() => res.write('x'.repeat(1024)), 20);
      res.on('close', () => clearInterval(drip));
    });
    const closed: boolean[] = [];
    endless.on('connection', (sock) => sock.on('close', () => closed.push(true)));
    const hanging = createServer((req) => req.resume());
    await new Promise<void>((r) => endless.listen(0, '127.0.0.1', r));
    await new Promise<void>((r) => hanging.listen(0, '127.0.0.1', r));
    const at = (s: Server, path: string) => `http://127.0.0.1:${(s.address() as { port: number }).port}${path}`;
    try {
      const hung = await register(at(hanging, '/hang'), ['certificate.revoked']);
      const dripping = await register(at(endless, '/drip'), ['certificate.revoked']);
      const hook = await register(receiver.url, ['certificate.revoked']);
      const serial = await issue();
      const t0 = Date.now();
      assert.equal((await api(server, 'POST', `/api/v1/certificates/${serial}/revoke`, { reason: 'certificateHold' })).status, 200);
      assert.equal((await api(server, 'POST', `/api/v1/certificates/${serial}/unhold`)).status, 200);
      await receiver.waitFor('the hold and its release', (evs) => evs.filter((e) => e.data.serial === serial).length === 2);
      // The hanging receiver times out at 2 s per attempt: the good one did not wait for it.
      assert.ok(Date.now() - t0 < 1900, `delivered in ${Date.now() - t0} ms, not behind the hanging receiver`);
      assert.deepEqual(
        receiver.events().map((e) => [e.data.serial, e.data.status, e.data.action]),
        [
          [serial, 'hold', 'certificate.held'],
          [serial, 'good', 'certificate.unheld'],
        ],
      );
      // The endless body: both events delivered, and each connection closed on the status line.
      const deadline = Date.now() + 10_000;
      while ((await api(server, 'GET', `/api/v1/webhooks/${dripping.id}`)).json.deliveries.length < 2) {
        assert.ok(Date.now() < deadline, 'the endless-body receiver got both events');
        await sleep(100);
      }
      await sleep(300);
      assert.equal(closed.length, 2, 'Signet closed each connection once it had the status');
      for (const h of [hung, dripping, hook]) assert.equal((await api(server, 'DELETE', `/api/v1/webhooks/${h.id}`)).status, 200);
    } finally {
      endless.closeAllConnections();
      hanging.closeAllConnections();
      endless.close();
      hanging.close();
    }
    receiver.got = [];
  });

  test('the private-address policy (off) refuses every form that reaches a private, reserved or embedded IPv4 address', () => {
    for (const a of [
      '127.0.0.1',
      '10.1.2.3',
      '169.254.169.254',
      '100.64.0.1',
      '192.0.0.1',
      '198.18.0.1',
      '224.0.0.1',
      '255.255.255.255',
      '::1',
      '::',
      '::7f00:1',
      '::ffff:7f00:1',
      '::ffff:169.254.169.254',
      '64:ff9b::a9fe:a9fe',
      '2002:7f00:1::',
      'fc00::1',
      'fe80::1',
      'fec0::1',
      'ff02::1',
    ])
      assert.equal(isPrivateAddress(a), true, a);
    for (const a of ['8.8.8.8', '1.1.1.1', '2001:4860:4860::8888', '2a00:1450:4001::1']) assert.equal(isPrivateAddress(a), false, a);
  });

  test('bad registrations are refused with a precise problem, and nothing is stored', async () => {
    const count = async () => Number((await sql(env, 'SELECT COUNT(*) AS n FROM "Webhook"'))[0].n);
    const before = await count();
    const refused = async (body: unknown, status: number, detail: RegExp, token = server.token) => {
      const r = await api({ url: server.url, token }, 'POST', '/api/v1/webhooks', body);
      assert.equal(r.status, status, r.text);
      assert.equal(r.headers.get('content-type'), 'application/problem+json; charset=utf-8');
      assert.match(r.json.detail, detail);
    };
    const events = ['certificate.issued'];
    await refused({ url: 'http://user:pass@127.0.0.1:9/hook', events }, 400, /^url: credentials in the URL \(user:password@\) are not allowed/);
    await refused({ url: 'ftp://127.0.0.1/hook', events }, 400, /^url: the scheme ftp is not allowed; a receiver is an http:\/\/ or https:\/\/ URL$/);
    await refused({ url: 'file:///etc/passwd', events }, 400, /^url: the scheme file is not allowed/);
    await refused({ url: 'not a url', events }, 400, /^url: is not an absolute URL; a receiver is http\(s\):\/\/host\[:port\]\/path$/);
    await refused({ url: 'http://no-such-host.invalid/hook', events }, 400, /^url: the host no-such-host\.invalid does not resolve \(ENOTFOUND|EAI_AGAIN\)/);
    await refused({ url: receiver.url, events: ['certificate.exploded'] }, 400, /^events\.0: Invalid enum value\. Expected 'certificate\.issued' \| /);
    await refused({ url: receiver.url, events: [] }, 400, /^events: Array must contain at least 1 element/);
    await refused({ url: receiver.url, events, secret: 'short' }, 400, /^secret: must be 24 to 256 printable ASCII characters/);
    await refused({ url: receiver.url, events, extra: 1 }, 400, /Unrecognized key\(s\) in object: 'extra'/);
    const first = await register(receiver.url, ['certificate.revoked', 'certificate.issued']);
    await refused(
      { url: receiver.url, events: ['certificate.issued', 'certificate.revoked'] },
      409,
      new RegExp(`^webhook ${first.id} already sends certificate\\.issued, certificate\\.revoked to `),
    );
    const made = await api(server, 'POST', '/api/v1/tokens', { name: 'not admin', scopes: ['read', 'issue', 'revoke', 'renew', 'groups'] });
    assert.equal(made.status, 201, made.text);
    const token = made.json.token as string;
    await refused({ url: `${receiver.url}/2`, events }, 403, /lacks the 'admin' scope/, token);
    assert.equal((await api({ url: server.url, token }, 'GET', '/api/v1/webhooks')).status, 403);
    assert.equal(await count(), before + 1);
    // With SIGNET_WEBHOOK_ALLOW_PRIVATE=off, a loopback receiver is refused (the CLI reads the same settings).
    const cli = signet(['webhook', 'add', 'http://127.0.0.1:9/private', '--events', 'crl.published'], { ...env.env, SIGNET_WEBHOOK_ALLOW_PRIVATE: 'off' });
    assert.notEqual(cli.status, 0);
    assert.match(cli.stderr, /url: 127\.0\.0\.1 resolves to 127\.0\.0\.1, a loopback or private address, and SIGNET_WEBHOOK_ALLOW_PRIVATE is off/);
    assert.equal(await count(), before + 1);
    assert.equal((await api(server, 'DELETE', `/api/v1/webhooks/${first.id}`)).status, 200);
  });
});
