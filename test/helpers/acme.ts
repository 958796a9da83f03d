/**
 * A small ACME client for tests, written with node:crypto (ES256, ES384, RS256, EdDSA account
 * keys), and an ACME "world": a real `signet serve` over HTTPS, the test DNS server that alone
 * resolves *.signet.test, and an http-01 responder on loopback, with the whole order flow
 * (order, http-01, finalize, download) as functions.
 */
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, sign as cryptoSign, X509Certificate, type JsonWebKey, type KeyObject } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { Agent, request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { readFileSync } from 'node:fs';
import { AsnConvert } from '@peculiar/asn1-schema';
import { AuthorityKeyIdentifier, Certificate } from '@peculiar/asn1-x509';
import { freePort, signet, startServer, type RunningServer } from './cli.js';
import { createTestEnv, type TestEnv } from './env.js';
import { openssl, TempDir } from './openssl.js';
import { startDnsServer, type TestDnsServer } from './dns-server.js';
import { derToPem, pemToDer } from '../../src/pki/pem.js';

// ---- a small ACME client ------------------------------------------------------------------------

export type Alg = 'ES256' | 'ES384' | 'RS256' | 'EdDSA';
export interface Key {
  alg: Alg;
  privateKey: KeyObject;
  publicKey: KeyObject;
  jwk: JsonWebKey;
}
export interface Account {
  key: Key;
  url: string;
}
export interface Resp {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  json: any;
}
export interface Jws {
  protected: string;
  payload: string;
  signature: string;
}

export const ERR = 'urn:ietf:params:acme:error:';
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const b64u = (x: Buffer | string) => Buffer.from(x).toString('base64url');

export function newKey(alg: Alg): Key {
  const pair =
    alg === 'ES256'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : alg === 'ES384'
        ? generateKeyPairSync('ec', { namedCurve: 'P-384' })
        : alg === 'RS256'
          ? generateKeyPairSync('rsa', { modulusLength: 2048 })
          : generateKeyPairSync('ed25519');
  return { alg, ...pair, jwk: pair.publicKey.export({ format: 'jwk' }) };
}

export function signWith(alg: Alg, key: KeyObject, input: Buffer): Buffer {
  switch (alg) {
    case 'ES256':
      return cryptoSign('sha256', input, { key, dsaEncoding: 'ieee-p1363' });
    case 'ES384':
      return cryptoSign('sha384', input, { key, dsaEncoding: 'ieee-p1363' });
    case 'RS256':
      return cryptoSign('sha256', input, key);
    case 'EdDSA':
      return cryptoSign(null, input, key);
  }
}

/** RFC 7638 thumbprint: the required members in lexicographic order. */
export function thumbprint(jwk: JsonWebKey): string {
  const members =
    jwk.kty === 'EC'
      ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }
      : jwk.kty === 'RSA'
        ? { e: jwk.e, kty: jwk.kty, n: jwk.n }
        : { crv: jwk.crv, kty: jwk.kty, x: jwk.x };
  return createHash('sha256').update(JSON.stringify(members)).digest('base64url');
}

export function makeJws(header: Record<string, unknown>, payload: unknown, signer: (input: Buffer) => Buffer): Jws {
  const p = b64u(JSON.stringify(header));
  const pl = payload === '' ? '' : b64u(JSON.stringify(payload));
  return { protected: p, payload: pl, signature: b64u(signer(Buffer.from(`${p}.${pl}`, 'ascii'))) };
}

export interface PostOptions {
  /** Use the account URL (kid) — the default when an Account is given — or the jwk. */
  kid?: string | null;
  /** A specific nonce, or null for none at all. */
  nonce?: string | null;
  url?: string;
  alg?: string;
  sign?: (input: Buffer) => Buffer;
  contentType?: string | null;
  /** Replace the serialized body (after signing). */
  rawBody?: string;
  /** More request headers (e.g. X-Forwarded-For behind a trusted proxy). */
  headers?: Record<string, string>;
}

export class AcmeClient {
  readonly nonces: string[] = [];
  dir: Record<string, any> = {};

  constructor(
    readonly base: string,
    private readonly agent: Agent,
  ) {}

  /**
   * One request on the keep-alive agent. A reused socket the server closed as idle just as the
   * request went out fails with ECONNRESET before any answer: retried once, on a new socket, as
   * Node's documentation advises (req.reusedSocket).
   */
  request(method: string, url: string, body?: string, headers: Record<string, string> = {}, retried = false): Promise<Resp> {
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        url,
        { method, agent: this.agent, headers: { ...headers, ...(body !== undefined ? { 'content-length': String(Buffer.byteLength(body)) } : {}) } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let json: any;
            try {
              json = JSON.parse(text);
            } catch {
              json = undefined;
            }
            const nonce = res.headers['replay-nonce'];
            if (typeof nonce === 'string') this.nonces.push(nonce);
            resolve({ status: res.statusCode!, headers: res.headers, text, json });
          });
        },
      );
      req.on('error', (e: NodeJS.ErrnoException) => {
        if (!retried && req.reusedSocket && e.code === 'ECONNRESET') resolve(this.request(method, url, body, headers, true));
        else reject(e);
      });
      req.end(body);
    });
  }

  async directory(path = '/directory'): Promise<Record<string, any>> {
    const r = await this.request('GET', `${this.base}${path}`);
    assert.equal(r.status, 200, r.text);
    if (path === '/directory') this.dir = r.json;
    return r.json;
  }

  async nonce(): Promise<string> {
    const n = this.nonces.shift();
    if (n) return n;
    const r = await this.request('HEAD', this.dir.newNonce);
    assert.equal(r.status, 200);
    return this.nonces.shift()!;
  }

  /** A signed POST; payload '' is POST-as-GET. */
  async post(url: string, payload: unknown, signer: Account | Key, o: PostOptions = {}): Promise<Resp> {
    const key = 'key' in signer ? signer.key : signer;
    const kid = o.kid === undefined ? ('url' in signer ? signer.url : null) : o.kid;
    const nonce = o.nonce === null ? undefined : (o.nonce ?? (await this.nonce()));
    const header = { alg: o.alg ?? key.alg, ...(nonce !== undefined ? { nonce } : {}), url: o.url ?? url, ...(kid ? { kid } : { jwk: key.jwk }) };
    const body = o.rawBody ?? JSON.stringify(makeJws(header, payload, o.sign ?? ((input) => signWith(key.alg, key.privateKey, input))));
    return this.request('POST', url, body, { ...(o.contentType === null ? {} : { 'content-type': o.contentType ?? 'application/jose+json' }), ...o.headers });
  }

  async newAccount(key: Key, payload: Record<string, unknown> = {}, url = this.dir.newAccount as string): Promise<Account> {
    const r = await this.post(url, { termsOfServiceAgreed: true, contact: ['mailto:a@signet.test'], ...payload }, key);
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.status, 'valid');
    assert.ok(r.headers.location, 'newAccount answers with the account URL in Location');
    return { key, url: r.headers.location };
  }
}

export function assertProblem(r: Resp, status: number | number[], type: string | string[]): void {
  const statuses = [status].flat();
  const types = [type].flat().map((t) => ERR + t);
  assert.ok(statuses.includes(r.status), `expected HTTP ${statuses.join('/')}, got ${r.status}: ${r.text}`);
  assert.match(String(r.headers['content-type']), /^application\/problem\+json/);
  assert.ok(types.includes(r.json?.type), `expected problem type ${types.join(' or ')}, got ${r.json?.type}: ${r.text}`);
  assert.equal(typeof r.json.detail, 'string');
}

export async function until<T>(what: string, fn: () => Promise<T>, done: (v: T) => boolean, deadlineMs = 30_000): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const v = await fn();
    if (done(v)) return v;
    if (Date.now() > deadline) assert.fail(`${what}: still not done: ${JSON.stringify(v)}`);
    await sleep(150);
  }
}

/** The RFC 9773 certificate identifier: base64url(AKI keyIdentifier) "." base64url(serial octets). */
export function ariCertId(der: Buffer): string {
  const cert = AsnConvert.parse(der, Certificate);
  const ext = cert.tbsCertificate.extensions!.find((e) => e.extnID === '2.5.29.35')!;
  const aki = AsnConvert.parse(ext.extnValue.buffer, AuthorityKeyIdentifier).keyIdentifier!;
  return `${b64u(Buffer.from(aki.buffer))}.${b64u(Buffer.from(cert.tbsCertificate.serialNumber))}`;
}

// ---- the test environment ------------------------------------------------------------------------

export interface Stack {
  env: TestEnv;
  server: RunningServer;
  tlsPort: number;
  agent: Agent;
  acme: AcmeClient;
  rootPem: string;
  rootId: string;
  intId: string;
}

export async function startStack(extra: Record<string, string>, tlsNames: string): Promise<Stack> {
  const tlsPort = await freePort();
  const env = await createTestEnv({ SIGNET_TLS: 'on', SIGNET_TLS_PORT: String(tlsPort), SIGNET_TLS_NAMES: tlsNames, ...extra });
  const server = await startServer(env.env);
  const list = signet(['ca', 'list', '--json'], env.env);
  assert.equal(list.status, 0, list.stderr);
  const cas = JSON.parse(list.stdout) as { id: string; parentId: string | null }[];
  const rootId = cas.find((c) => c.parentId === null)!.id;
  const intId = cas.find((c) => c.parentId === rootId)!.id;
  const res = await fetch(`${server.url}/pki/${rootId}.crt`);
  assert.equal(res.status, 200);
  const rootPem = derToPem(Buffer.from(await res.arrayBuffer()), 'CERTIFICATE');
  // Only Signet's root is trusted: every request below also checks the HTTPS listener's chain.
  const agent = new Agent({ ca: rootPem, keepAlive: true });
  const acme = new AcmeClient(`https://127.0.0.1:${tlsPort}/acme`, agent);
  await acme.directory();
  return { env, server, tlsPort, agent, acme, rootPem, rootId, intId };
}

export async function stopStack(s: Stack | undefined): Promise<void> {
  if (!s) return;
  s.agent.destroy();
  await s.server.stop();
  await s.env.cleanup();
}

// ---- an ACME world: server, DNS, http-01 responder, and the order flow ------------------------------

export interface World {
  s: Stack;
  acme: AcmeClient;
  dns: TestDnsServer;
  tmp: TempDir;
  /** token → body the http-01 responder serves (absent: 404). */
  http01: Map<string, string>;
  http01Requests: { host: string; path: string }[];
  /** The port the tls-alpn-01 validator connects to (nothing listens unless a test does). */
  alpnPort: number;
  csr(names: string[], withKey?: Key): { der: Buffer; key: KeyObject; publicJwk: JsonWebKey };
  newOrder(acct: Account, names: string[], url?: string): Promise<Resp>;
  authorize(acct: Account, order: Resp): Promise<void>;
  pollOrder(acct: Account, orderUrl: string, status: string): Promise<Resp>;
  issue(
    acct: Account,
    names: string[],
    newOrderUrl?: string,
  ): Promise<{ der: Buffer; pem: string; chain: string; key: KeyObject; publicJwk: JsonWebKey; orderUrl: string; serial: string }>;
  /** Stops the server and starts it again on the same data (and the same HTTPS port). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** The world's default server profile: *.signet.test names, or an IP (the HTTPS name is 127.0.0.1). */
export const WORLD_SERVER_PROFILE = {
  requireSan: true,
  sanTypes: ['dns', 'ip'],
  dnsSuffixes: ['signet.test'],
  defaultValidityDays: 90,
  maxValidityDays: 397,
  extKeyUsage: ['serverAuth'],
};

/**
 * Starts a world. `profiles` is written to SIGNET_PROFILES_FILE; by default the server profile
 * accepts only *.signet.test names (so the HTTPS name is 127.0.0.1, an IP that profile allows).
 */
export async function startWorld(extra: Record<string, string> = {}, profiles: Record<string, unknown> = { server: WORLD_SERVER_PROFILE }): Promise<World> {
  const tmp = new TempDir();
  const dns = await startDnsServer({ zones: ['signet.test'] });
  const http01 = new Map<string, string>();
  const http01Requests: { host: string; path: string }[] = [];
  const httpPort = await freePort();
  const responder: Server = createServer((req, res) => {
    http01Requests.push({ host: String(req.headers.host), path: String(req.url) });
    const token = /^\/\.well-known\/acme-challenge\/([A-Za-z0-9_-]+)$/.exec(req.url ?? '')?.[1];
    const body = token ? http01.get(token) : undefined;
    if (body === undefined) {
      res.writeHead(404).end('no such token');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(body);
  });
  await new Promise<void>((resolve) => responder.listen(httpPort, '127.0.0.1', () => resolve()));
  const alpnPort = await freePort();
  const s = await startStack(
    {
      SIGNET_PROFILES_FILE: tmp.file('profiles.json', JSON.stringify(profiles)),
      SIGNET_ACME_HTTP_PORT: String(httpPort),
      SIGNET_ACME_TLS_PORT: String(alpnPort),
      SIGNET_ACME_DNS_RESOLVER: dns.address,
      SIGNET_ACME_VALIDATION_ATTEMPTS: '1',
      SIGNET_ACME_VALIDATION_TIMEOUT_MS: '3000',
      // Every client of a test world is one address (127.0.0.1): the per-address limits would
      // stop suites that make many accounts. test/acme-address-limits.test.ts sets and tests them.
      SIGNET_ACME_ACCOUNTS_PER_HOUR: '0',
      SIGNET_ACME_ORDERS_PER_ADDRESS_PER_HOUR: '0',
      ...extra,
    },
    '127.0.0.1',
  );
  const acme = s.acme;
  let n = 0;

  const csr: World['csr'] = (names, withKey) => {
    const i = ++n;
    const pair = withKey ?? generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const keyFile = tmp.file(`csr-${i}.key`, pair.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string);
    const out = tmp.file(`csr-${i}.der`);
    const subject = isIP(names[0]!) ? '/O=Signet ACME test' : `/CN=${names[0]}`;
    const r = openssl([
      'req',
      '-new',
      '-key',
      keyFile,
      '-subj',
      subject,
      '-addext',
      `subjectAltName=${names.map((x) => (isIP(x) ? `IP:${x}` : `DNS:${x}`)).join(',')}`,
      '-outform',
      'DER',
      '-out',
      out,
    ]);
    assert.equal(r.status, 0, r.stderr);
    return { der: readFileSync(out), key: pair.privateKey, publicJwk: pair.publicKey.export({ format: 'jwk' }) };
  };
  const newOrder: World['newOrder'] = (acct, names, url = acme.dir.newOrder as string) =>
    acme.post(url, { identifiers: names.map((value) => ({ type: 'dns', value })) }, acct);
  const authorize: World['authorize'] = async (acct, order) => {
    for (const authzUrl of order.json.authorizations as string[]) {
      const a = await acme.post(authzUrl, '', acct);
      assert.equal(a.status, 200, a.text);
      if (a.json.status === 'valid') continue;
      const ch = (a.json.challenges as any[]).find((c) => c.type === 'http-01');
      assert.ok(ch, `no http-01 challenge in ${a.text}`);
      http01.set(ch.token, `${ch.token}.${thumbprint(acct.key.jwk)}`);
      const r = await acme.post(ch.url, {}, acct);
      assert.equal(r.status, 200, r.text);
      const done = await until(
        'authorization',
        () => acme.post(authzUrl, '', acct),
        (x) => x.json.status !== 'pending',
      );
      assert.equal(done.json.status, 'valid', done.text);
    }
  };
  const pollOrder: World['pollOrder'] = async (acct, orderUrl, status) => {
    const r = await until(
      `order ${status}`,
      () => acme.post(orderUrl, '', acct),
      (x) => x.json.status === status || x.json.status === 'invalid',
    );
    assert.equal(r.json.status, status, r.text);
    return r;
  };
  const issue: World['issue'] = async (acct, names, newOrderUrl) => {
    const order = await newOrder(acct, names, newOrderUrl);
    assert.equal(order.status, 201, order.text);
    const orderUrl = order.headers.location!;
    await authorize(acct, order);
    await pollOrder(acct, orderUrl, 'ready');
    const c = csr(names);
    const fin = await acme.post(order.json.finalize, { csr: b64u(c.der) }, acct);
    assert.equal(fin.status, 200, fin.text);
    const valid = await pollOrder(acct, orderUrl, 'valid');
    const dl = await acme.post(valid.json.certificate, '', acct);
    assert.equal(dl.status, 200, dl.text);
    assert.match(String(dl.headers['content-type']), /^application\/pem-certificate-chain/);
    const pems = dl.text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g)!;
    assert.equal(pems.length, 2, 'leaf and issuing CA (the root is not sent)');
    const x = new X509Certificate(pems[0]!);
    for (const name of names) assert.ok(x.checkHost(name), `${name} in ${x.subjectAltName}`);
    assert.ok(x.checkIssued(new X509Certificate(pems[1]!)));
    return {
      der: pemToDer(pems[0]!, ['CERTIFICATE']).der,
      pem: pems[0]!,
      chain: dl.text,
      key: c.key,
      publicJwk: c.publicJwk,
      orderUrl,
      serial: x.serialNumber.toLowerCase(),
    };
  };

  return {
    s,
    acme,
    dns,
    tmp,
    http01,
    http01Requests,
    alpnPort,
    csr,
    newOrder,
    authorize,
    pollOrder,
    issue,
    async restart() {
      await s.server.stop();
      s.server = await startServer(s.env.env);
    },
    async stop() {
      await stopStack(s);
      responder.closeAllConnections();
      await new Promise<void>((r) => responder.close(() => r()));
      await dns.close();
      tmp.remove();
    },
  };
}
