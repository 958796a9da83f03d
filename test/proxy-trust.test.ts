/**
 * SIGNET_TRUST_PROXY: which peers may name the client in X-Forwarded-For. A proxy appends the
 * address it received the request from, so everything left of that entry is whatever the client
 * chose to send. The client address used for rate limits and audit must be the one the trusted
 * proxy appended, whatever the client put in front of it — on `signet serve` (SQLite, or
 * PostgreSQL under SIGNET_TEST_POSTGRES), through Express and through the bare issuance handler.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { api, startServer, type RunningServer } from './helpers/cli.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';
import { TempDir, csrMaker } from './helpers/openssl.js';
import { sql } from './helpers/sql.js';
import { loadConfig } from '../src/config/config.js';

const tmp = new TempDir();
after(() => tmp.remove());
const makeCsr = csrMaker(tmp);

describe('SIGNET_TRUST_PROXY values', () => {
  const trust = (v: string | undefined) => loadConfig({ ...(v === undefined ? {} : { SIGNET_TRUST_PROXY: v }) }).SIGNET_TRUST_PROXY;

  test('off by default; on means one hop (the peer is the proxy), never every hop', () => {
    assert.equal(trust(undefined), false);
    for (const v of ['off', 'false', '0', 'OFF']) assert.equal(trust(v), false, v);
    for (const v of ['on', 'true', 'ON', '1']) assert.equal(trust(v), 1, v);
    assert.equal(trust('2'), 2);
  });

  test('a list of proxy addresses, CIDRs and proxy-addr names', () => {
    assert.deepEqual(trust('10.0.0.1'), ['10.0.0.1']);
    assert.deepEqual(trust(' 127.0.0.1 , 10.0.0.0/8,fd00::/8 '), ['127.0.0.1', '10.0.0.0/8', 'fd00::/8']);
    assert.deepEqual(trust('Loopback,uniquelocal'), ['loopback', 'uniquelocal']);
  });

  test('anything else stops start-up naming the setting', () => {
    for (const v of ['yes', '10.0.0.0/33', '10.0.0.1,proxy.example', '11', '-1', ',', '1.2.3', '010.0.0.1', '10.0.0.0/8/8', '::1/129', 'fd00::/255.0.0.0']) {
      assert.throws(
        () => trust(v),
        (e: any) => e.type === 'configuration' && /^SIGNET_TRUST_PROXY is invalid: /.test(e.detail),
        v,
      );
    }
  });
});

interface Proxied {
  env: TestEnv;
  server: RunningServer;
}

async function start(trustProxy: string): Promise<Proxied> {
  const env = await createTestEnv({ SIGNET_TRUST_PROXY: trustProxy, SIGNET_RATE_LIMIT_PER_ADDRESS: '20' });
  return { env, server: await startServer(env.env) };
}

/**
 * 25 anonymous requests, each with another spoofed leftmost X-Forwarded-For entry before the
 * same real chain: the first 20 are answered (401), the rest refused as one address (429).
 */
async function assertSpoofingDoesNotEscape(p: Proxied, chain: (i: number) => string, budget = 20): Promise<void> {
  const statuses: number[] = [];
  for (let i = 0; i < budget + 5; i++) {
    const r = await fetch(`${p.server.url}/api/v1/cas`, { headers: { 'x-forwarded-for': chain(i) } });
    await r.arrayBuffer();
    statuses.push(r.status);
  }
  assert.deepEqual(statuses, [...Array(budget).fill(401), ...Array(5).fill(429)], `a client escaped the address limit by spoofing: ${statuses.join(',')}`);
}

/** The address audit records for an issuance (bare handler) and a token creation (Express) sent through `chain`. */
async function auditedAddresses(p: Proxied, chain: string): Promise<{ issuance: string; token: string }> {
  const issued = await api(p.server, 'POST', '/api/v1/certificates', JSON.stringify({ csr: makeCsr('DNS:proxied.example.com'), profile: 'server' }), {
    'x-forwarded-for': chain,
  });
  assert.equal(issued.status, 201, issued.text);
  const token = await api(p.server, 'POST', '/api/v1/tokens', { name: `t${Date.now()}`, scopes: ['read'] }, { 'x-forwarded-for': chain });
  assert.equal(token.status, 201, token.text);
  const ip = async (action: string, target: string) =>
    String((await sql(p.env, 'SELECT "sourceIp" FROM "AuditEvent" WHERE action = ? AND target = ?', [action, target]))[0]?.sourceIp);
  return { issuance: await ip('certificate.issued', issued.json.serial), token: await ip('token.created', token.json.id) };
}

describe('the client address behind a proxy, on the server', () => {
  let current: Proxied | undefined;
  after(async () => {
    await current?.server.stop();
    await current?.env.cleanup();
  });
  const use = async (trustProxy: string) => {
    await current?.server.stop();
    await current?.env.cleanup();
    current = await start(trustProxy);
    return current;
  };

  test('on (one hop): the address the proxy appended is the client; what the client sent before it is not', async () => {
    const p = await use('on');
    await assertSpoofingDoesNotEscape(p, (i) => `10.1.${i}.1, 192.0.2.1`);
    assert.deepEqual(await auditedAddresses(p, '203.0.113.66, 198.51.100.4'), { issuance: '198.51.100.4', token: '198.51.100.4' });
    // ACME counts the same address, and its 429 is an ACME problem carrying a nonce.
    const acme: Response[] = [];
    for (let i = 0; i < 21; i++) acme.push(await fetch(`${p.server.url}/acme/directory`, { headers: { 'x-forwarded-for': `10.2.${i}.1, 198.51.100.40` } }));
    assert.deepEqual(
      acme.map((r) => r.status),
      [...Array(20).fill(200), 429],
    );
    const limited = acme[20]!;
    assert.match(String(limited.headers.get('content-type')), /^application\/problem\+json/);
    assert.equal(((await limited.json()) as { type: string }).type, 'urn:ietf:params:acme:error:rateLimited');
    assert.ok(Number(limited.headers.get('retry-after')) > 0);
    assert.match(String(limited.headers.get('replay-nonce')), /^[A-Za-z0-9_-]{44}$/);
  });

  test('a hop count: the client is that many entries from the right', async () => {
    const p = await use('2');
    // The peer is the second proxy; 10.0.0.1 the first one, which appended the client.
    await assertSpoofingDoesNotEscape(p, (i) => `10.1.${i}.1, 192.0.2.1, 10.0.0.1`);
    assert.deepEqual(await auditedAddresses(p, '203.0.113.66, 198.51.100.5, 10.0.0.1'), { issuance: '198.51.100.5', token: '198.51.100.5' });
  });

  test('a list of proxies: the client is the nearest address not in it', async () => {
    const p = await use('127.0.0.1, 10.0.0.0/8');
    await assertSpoofingDoesNotEscape(p, (i) => `192.0.2.${i}, 198.51.100.8, 10.9.9.9`);
    assert.deepEqual(await auditedAddresses(p, '203.0.113.66, 198.51.100.6, 10.20.30.40, 10.0.0.2'), { issuance: '198.51.100.6', token: '198.51.100.6' });
  });

  test('a list the peer is not in: X-Forwarded-For is not believed at all', async () => {
    const p = await use('10.0.0.0/8');
    const seen = await auditedAddresses(p, '198.51.100.7, 10.0.0.1');
    assert.match(seen.issuance, /^(::ffff:)?127\.0\.0\.1$/);
    assert.match(seen.token, /^(::ffff:)?127\.0\.0\.1$/);
    // The two requests above came from the same (real) address.
    await assertSpoofingDoesNotEscape(p, (i) => `10.1.${i}.1, 10.0.0.1`, 18);
  });
});
