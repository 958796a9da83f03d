/**
 * Issue 12, the authorisation matrix: every /api/v1 operation × every token shape × the
 * certificate's profile × its CA, generated from one table (ROWS) and an oracle that derives
 * the expected status from the facts in that table (the OPERATIONS scopes, the token's limits,
 * what an unlimited caller would get). Run against a real `signet serve` (SQLite, or PostgreSQL
 * under SIGNET_TEST_POSTGRES); every refusal must store nothing.
 *
 * The route list is not written here: it is read from the Express router the server mounts at
 * /api/v1 (apiRouter), with the operation each route's guard names, so a new endpoint without
 * a row — or a route whose operation changed — fails this suite.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { api, fetchAfterBlocking, signet, startServer, type RunningServer } from './helpers/cli.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';
import { TempDir, csrMaker } from './helpers/openssl.js';
import { sql } from './helpers/sql.js';
import { authorizeCertificate, OPERATIONS, type Operation, type Principal } from '../src/ca/authorization.js';
import type { CaContext } from '../src/ca/context.js';
import type { Issuance } from '../src/ca/issuance.js';
import type { Revocation } from '../src/ca/revocation.js';
import type { GroupService } from '../src/groups/service.js';
import { SignetError } from '../src/errors.js';

const tmp = new TempDir();
after(() => tmp.remove());
const csrFor = (() => {
  const make = csrMaker(tmp);
  const cache = new Map<string, string>();
  return (names: string[]) => {
    const k = names.join(',');
    if (!cache.has(k)) cache.set(k, make(k));
    return cache.get(k)!;
  };
})();

const PROBLEM = 'application/problem+json; charset=utf-8';
const SUFFIX = 'team-a.corp.example';
const SCOPES = ['issue', 'renew', 'revoke', 'read', 'groups', 'admin'] as const;

// ---------------------------------------------------------------------------------------------
// The /api/v1 routes, read from the router itself

interface RouteInfo {
  route: string;
  operation: Operation | undefined;
}
interface LayerLike {
  route?: { path: string; methods: Record<string, boolean>; stack: { handle: { operation?: Operation } }[] };
  handle?: { stack?: LayerLike[] };
  match(path: string): boolean;
}

async function enumerateApiRoutes(): Promise<RouteInfo[]> {
  const { apiRouter } = await import('../src/http/app.js');
  // Building the router touches none of its dependencies; they are only used when a request comes.
  const router = apiRouter(
    {} as CaContext,
    { bodyLimit: 1024, issuance: {} as Issuance, revocation: {} as Revocation, groups: {} as GroupService },
    { middlewares: [] },
  ) as unknown as {
    stack: LayerLike[];
  };
  const out: RouteInfo[] = [];
  const walk = (stack: LayerLike[]) => {
    for (const layer of stack) {
      if (layer.route) {
        for (const m of Object.keys(layer.route.methods).filter((k) => layer.route!.methods[k] && k !== '_all')) {
          out.push({ route: `${m.toUpperCase()} ${layer.route.path}`, operation: layer.route.stack[0]?.handle.operation });
        }
      } else if (layer.handle?.stack) {
        // A router mounted under a sub-path would need its prefix here: refuse to guess.
        assert.ok(layer.match('/any/path/at/all'), 'a router is mounted under a sub-path of /api/v1; teach enumerateApiRoutes its prefix');
        walk(layer.handle.stack);
      }
    }
  };
  walk(router.stack);
  return out;
}

// ---------------------------------------------------------------------------------------------
// The table

type Shape = 'none' | 'wrong-scope' | 'right-scope' | 'admin' | 'profile-limited' | 'suffix-limited' | 'expired' | 'revoked';
const SHAPES: Shape[] = ['none', 'wrong-scope', 'right-scope', 'admin', 'profile-limited', 'suffix-limited', 'expired', 'revoked'];
/** The limited tokens hold every scope but admin, so only their limits can refuse them. */
const LIMITED_PROFILES = ['internal'];

type CaKey = 'corp' | 'other' | 'default' | 'root';

/** One certificate a row acts on, or asks for. */
interface Cert {
  profile: string;
  /** Issue: the caId the request names (none: the profile decides). Other rows: the CA of the target. */
  ca?: CaKey;
  names: string[];
  /** Whether every name is under SUFFIX, or a host-less URI whose scheme the profile opts in to (hostlessUriSchemes). */
  underSuffix: boolean;
  /** A name that is not well formed: the request's fault (400) whoever asks, before any limit is looked at. */
  malformed?: boolean;
}

interface Variant {
  name: string;
  cert?: Cert;
  /** Status for a caller allowed to perform the operation with no limits (admin). */
  status: number;
  /** On success: the CA that must have signed. */
  signedBy?: CaKey;
  /** For a malformed name: what the 400's detail must say. */
  detail?: RegExp;
  /** A path transport for issuance: the bare handler, or Express (a content type the bare handler leaves alone). */
  via?: 'bare' | 'express';
}

interface Request {
  method: string;
  path: string;
  body?: unknown;
  headers?: Record<string, string>;
}

interface Row {
  route: string;
  op: Operation;
  variants: Variant[];
  /**
   * Authenticated by the TLS client certificate it acts on (mTLS renewal), not by a token: every
   * token shape gets the variant's answer. This server has no HTTPS listener, so that is a 401;
   * the certificate cases are test/mtls-renewal.test.ts's.
   */
  clientCertificate?: true;
  /** Builds the request for one cell; may prepare a fresh target (as admin) first. */
  request(v: Variant, fx: Fixture): Promise<Request>;
}

interface Fixture {
  ids: Record<CaKey, string>;
  /** Shared targets for reads (never changed). */
  shared: Map<string, string>;
  issueAs(token: string, c: Cert): Promise<string>;
  fresh(c: Cert, hold?: boolean): Promise<string>;
  admin(method: string, path: string, body?: unknown): Promise<Awaited<ReturnType<typeof api>>>;
  /** A fresh key group (made as admin) with one member. */
  group(): Promise<{ id: string; name: string; member: string }>;
}

/** A key-group member certificate (the built-in group-member profile). */
const MEMBER: Cert = { profile: 'group-member', names: ['DNS:member.matrix.example'], underSuffix: false };

const key = (c: Cert) => `${c.profile}/${c.ca ?? '-'}/${c.names.join(',')}`;

// Targets for operations on existing certificates: profile × CA × names.
const TARGETS: Cert[] = [
  { profile: 'internal', ca: 'corp', names: [`DNS:x.${SUFFIX}`], underSuffix: true },
  { profile: 'server', ca: 'other', names: ['DNS:b.other.example'], underSuffix: false },
  { profile: 'server', ca: 'default', names: [`DNS:y.${SUFFIX}`], underSuffix: true },
  { profile: 'client', ca: 'default', names: [`URI:urn:uuid:${randomUUID()}`], underSuffix: false },
  { profile: 'devices', ca: 'default', names: [`URI:urn:uuid:${randomUUID()}`], underSuffix: true },
  { profile: 'urns', ca: 'default', names: [`URI:urn:uuid:${randomUUID()}`], underSuffix: false },
  { profile: 'spiffe', ca: 'corp', names: [`URI:spiffe://t.${SUFFIX}/x`], underSuffix: true },
  { profile: 'spiffe', ca: 'corp', names: ['URI:spiffe://t.other.corp.example/x'], underSuffix: false },
];
const onTargets = (status: number): Variant[] => TARGETS.map((cert) => ({ name: key(cert), cert, status }));

// Issuance: profile × requested CA × names. `internal` is pinned to the corp intermediate
// (name-constrained to corp.example); `server` and `client` list no CA (any issuing CA);
// `devices` opts in to host-less urn: URIs; `spiffe` allows spiffe: and https: URIs under
// corp.example, from the corp intermediate, and opts in to no host-less scheme.
const ISSUES: Variant[] = [
  { name: 'internal, its pinned CA by default', cert: { profile: 'internal', names: [`DNS:x.${SUFFIX}`], underSuffix: true }, status: 201, signedBy: 'corp' },
  {
    name: 'internal naming its pinned CA, a name outside its constraints',
    cert: { profile: 'internal', ca: 'corp', names: ['DNS:www.bank.example'], underSuffix: false },
    status: 400,
  },
  {
    name: 'internal naming another intermediate (issue 12 #3)',
    cert: { profile: 'internal', ca: 'other', names: ['DNS:www.bank.example'], underSuffix: false },
    status: 400,
  },
  {
    name: 'internal naming the root (issue 12 #3)',
    cert: { profile: 'internal', ca: 'root', names: ['DNS:www.bank.example'], underSuffix: false },
    status: 400,
  },
  { name: 'server, the default issuing CA', cert: { profile: 'server', names: [`DNS:y.${SUFFIX}`], underSuffix: true }, status: 201, signedBy: 'default' },
  {
    name: 'server naming another intermediate',
    cert: { profile: 'server', ca: 'other', names: ['DNS:b.other.example'], underSuffix: false },
    status: 201,
    signedBy: 'other',
  },
  { name: 'server naming the root', cert: { profile: 'server', ca: 'root', names: [`DNS:y.${SUFFIX}`], underSuffix: true }, status: 400 },
  {
    name: 'client, URI:urn (no host)',
    cert: { profile: 'client', names: [`URI:urn:uuid:${randomUUID()}`], underSuffix: false },
    status: 201,
    signedBy: 'default',
  },
  {
    name: 'client, URI:mailto (no host)',
    cert: { profile: 'client', names: ['URI:mailto:ceo@other.example'], underSuffix: false },
    status: 201,
    signedBy: 'default',
  },
  { name: 'client, URI:file (no host)', cert: { profile: 'client', names: ['URI:file:/etc/passwd'], underSuffix: false }, status: 201, signedBy: 'default' },
  {
    name: 'client, URI:file written with an empty host',
    cert: { profile: 'client', names: ['URI:file:///etc/passwd'], underSuffix: false, malformed: true },
    status: 400,
  },
  {
    name: 'client, URI with a host under the suffix',
    cert: { profile: 'client', names: [`URI:https://svc.${SUFFIX}/api`], underSuffix: true },
    status: 201,
    signedBy: 'default',
  },
  {
    name: 'devices, URI:urn whose scheme the profile lists',
    cert: { profile: 'devices', names: [`URI:urn:uuid:${randomUUID()}`], underSuffix: true },
    status: 201,
    signedBy: 'default',
  },
  {
    name: 'spiffe, a spiffe URI with its host under the suffix',
    cert: { profile: 'spiffe', names: [`URI:spiffe://svc.${SUFFIX}/ns/x`], underSuffix: true },
    status: 201,
    signedBy: 'corp',
  },
  {
    name: 'spiffe, a spiffe URI with a host outside the suffix',
    cert: { profile: 'spiffe', names: ['URI:spiffe://svc.other.corp.example/ns/x'], underSuffix: false },
    status: 201,
    signedBy: 'corp',
  },
  // F5: a scheme that has hosts, spelled without one.
  { name: 'spiffe, URI:spiffe:///x (F5)', cert: { profile: 'spiffe', names: ['URI:spiffe:///x'], underSuffix: false, malformed: true }, status: 400 },
  {
    name: 'spiffe, URI:spiffe:www.bank.example (F5)',
    cert: { profile: 'spiffe', names: ['URI:spiffe:www.bank.example'], underSuffix: false, malformed: true },
    status: 400,
  },
  {
    name: 'spiffe, URI:spiffe:victim-device (F5)',
    cert: { profile: 'spiffe', names: ['URI:spiffe:victim-device'], underSuffix: false, malformed: true },
    status: 400,
  },
  // F4: hosts other parsers read differently.
  // (openssl's -addext reads a doubled backslash as one: the CSR carries a single one before the '@'.)
  {
    name: 'spiffe, a backslash before userinfo (F4)',
    cert: { profile: 'spiffe', names: [`URI:https://x.${SUFFIX}\\\\@www.bank.example/`], underSuffix: false, malformed: true },
    status: 400,
    detail: /contains a backslash/,
  },
  {
    name: 'spiffe, a percent-escaped slash in the host (F4)',
    cert: { profile: 'spiffe', names: [`URI:spiffe://www.bank.example%2F.${SUFFIX}/x`], underSuffix: false, malformed: true },
    status: 400,
    detail: /has a percent-escape in its host/,
  },
  {
    name: 'spiffe, user information (F4)',
    cert: { profile: 'spiffe', names: [`URI:https://www.bank.example@x.${SUFFIX}/`], underSuffix: false, malformed: true },
    status: 400,
    detail: /has user information/,
  },
  // F5: naming a scheme in uriSchemes does not let its host-less URIs past a token's suffixes.
  {
    name: 'urns, URI:urn allowed by uriSchemes but not opted in to',
    cert: { profile: 'urns', names: [`URI:urn:uuid:${randomUUID()}`], underSuffix: false },
    status: 201,
    signedBy: 'default',
  },
];

let madeNo = 0;

/** A webhook made as admin (receiver: the discard port, nothing listens): the shared one for reads, or a fresh one. */
async function matrixWebhook(fx: Fixture, fresh = false): Promise<string> {
  const known = fx.shared.get('webhook');
  if (known && !fresh) return known;
  const made = await fx.admin('POST', '/api/v1/webhooks', { url: `http://127.0.0.1:9/matrix-fixture-${++madeNo}`, events: ['certificate.issued'] });
  assert.equal(made.status, 201, made.text);
  if (!fresh) fx.shared.set('webhook', made.json.id);
  return made.json.id as string;
}
const ROWS: Row[] = [
  {
    route: 'POST /certificates',
    op: 'certificate.issue',
    variants: ISSUES.flatMap((v) => [
      { ...v, via: 'bare' as const },
      { ...v, name: `${v.name} (express)`, via: 'express' as const },
    ]),
    request: async (v, fx) => ({
      method: 'POST',
      path: '/api/v1/certificates',
      body: { csr: csrFor(v.cert!.names), profile: v.cert!.profile, ...(v.cert!.ca ? { caId: fx.ids[v.cert!.ca] } : {}) },
      // The bare handler takes only application/json (optionally charset=utf-8); any other parameter goes to Express.
      headers: v.via === 'express' ? { 'content-type': 'application/json; x-route=express' } : undefined,
    }),
  },
  {
    route: 'GET /certificates',
    op: 'certificate.list',
    variants: [{ name: 'list', status: 200 }],
    request: async () => ({ method: 'GET', path: '/api/v1/certificates?limit=5' }),
  },
  {
    route: 'GET /certificates/:serial',
    op: 'certificate.read',
    variants: onTargets(200),
    request: async (v, fx) => ({ method: 'GET', path: `/api/v1/certificates/${fx.shared.get(key(v.cert!))}` }),
  },
  {
    route: 'POST /certificates/renew',
    op: 'certificate.renew',
    clientCertificate: true,
    variants: [
      {
        name: 'no client certificate: plain HTTP',
        status: 401,
        detail: /^this request authenticates with a TLS client certificate, which plain HTTP cannot carry/,
      },
    ],
    request: async () => ({ method: 'POST', path: '/api/v1/certificates/renew', body: {} }),
  },
  {
    route: 'POST /certificates/:serial/renew',
    op: 'certificate.renew',
    variants: onTargets(201).map((v) => ({ ...v, signedBy: v.cert!.ca })),
    request: async (v, fx) => ({ method: 'POST', path: `/api/v1/certificates/${await fx.fresh(v.cert!)}/renew`, body: {} }),
  },
  {
    route: 'POST /certificates/:serial/revoke',
    op: 'certificate.revoke',
    variants: onTargets(200),
    request: async (v, fx) => ({ method: 'POST', path: `/api/v1/certificates/${await fx.fresh(v.cert!)}/revoke`, body: { reason: 'superseded' } }),
  },
  {
    route: 'POST /certificates/:serial/unhold',
    op: 'certificate.unhold',
    variants: onTargets(200),
    request: async (v, fx) => ({ method: 'POST', path: `/api/v1/certificates/${await fx.fresh(v.cert!, true)}/unhold`, body: {} }),
  },
  {
    route: 'GET /certificates/:serial/status',
    op: 'certificate.status',
    variants: onTargets(200),
    request: async (v, fx) => ({ method: 'GET', path: `/api/v1/certificates/${fx.shared.get(key(v.cert!))}/status` }),
  },
  {
    route: 'GET /profiles',
    op: 'profile.list',
    variants: [{ name: 'profiles', status: 200 }],
    request: async () => ({ method: 'GET', path: '/api/v1/profiles' }),
  },
  { route: 'GET /cas', op: 'ca.read', variants: [{ name: 'all CAs', status: 200 }], request: async () => ({ method: 'GET', path: '/api/v1/cas' }) },
  {
    route: 'GET /cas/:id',
    op: 'ca.read',
    variants: (['corp', 'other', 'root'] as CaKey[]).map((ca) => ({ name: ca, status: 200 })),
    request: async (v, fx) => ({ method: 'GET', path: `/api/v1/cas/${fx.ids[v.name as CaKey]}` }),
  },
  {
    route: 'POST /cas',
    op: 'ca.create',
    variants: [{ name: 'an intermediate under the root', status: 201 }],
    request: async (_v, fx) => ({ method: 'POST', path: '/api/v1/cas', body: { parentId: fx.ids.root, subject: `CN=Matrix CA ${++madeNo},O=Signet` } }),
  },
  {
    route: 'POST /cas/roots',
    op: 'ca.create',
    variants: [{ name: 'a second root', status: 201 }],
    request: async () => ({ method: 'POST', path: '/api/v1/cas/roots', body: { subject: `CN=Matrix Root ${++madeNo},O=Signet`, keyAlgorithm: 'ml-dsa-44' } }),
  },
  {
    route: 'POST /cas/:id/revoke',
    op: 'ca.revoke',
    variants: [{ name: 'a fresh intermediate', status: 200 }],
    request: async (_v, fx) => {
      const made = await fx.admin('POST', '/api/v1/cas', { parentId: fx.ids.root, subject: `CN=Doomed CA ${++madeNo},O=Signet` });
      assert.equal(made.status, 201, made.text);
      return { method: 'POST', path: `/api/v1/cas/${made.json.id}/revoke`, body: { reason: 'superseded' } };
    },
  },
  {
    route: 'POST /cas/:id/rotate',
    op: 'ca.rotate',
    variants: [{ name: 'a fresh intermediate', status: 201 }],
    request: async (_v, fx) => {
      const made = await fx.admin('POST', '/api/v1/cas', { parentId: fx.ids.root, subject: `CN=Rotated CA ${++madeNo},O=Signet` });
      assert.equal(made.status, 201, made.text);
      return { method: 'POST', path: `/api/v1/cas/${made.json.id}/rotate`, body: {} };
    },
  },
  {
    route: 'POST /cas/:id/renew',
    op: 'ca.renew',
    variants: [{ name: 'a fresh intermediate', status: 201 }],
    request: async (_v, fx) => {
      const made = await fx.admin('POST', '/api/v1/cas', { parentId: fx.ids.root, subject: `CN=Renewed CA ${++madeNo},O=Signet` });
      assert.equal(made.status, 201, made.text);
      return { method: 'POST', path: `/api/v1/cas/${made.json.id}/renew`, body: { validityDays: 30 } };
    },
  },
  {
    route: 'POST /tokens',
    op: 'token.create',
    variants: [{ name: 'a read token', status: 201 }],
    request: async () => ({ method: 'POST', path: '/api/v1/tokens', body: { name: 'made by the matrix', scopes: ['read'] } }),
  },
  { route: 'GET /tokens', op: 'token.list', variants: [{ name: 'tokens', status: 200 }], request: async () => ({ method: 'GET', path: '/api/v1/tokens' }) },
  {
    route: 'DELETE /tokens/:id',
    op: 'token.revoke',
    variants: [{ name: 'a fresh token', status: 204 }],
    request: async (_v, fx) => {
      const made = await fx.admin('POST', '/api/v1/tokens', { name: 'to be revoked by the matrix', scopes: ['read'] });
      assert.equal(made.status, 201, made.text);
      return { method: 'DELETE', path: `/api/v1/tokens/${made.json.id}` };
    },
  },
  {
    route: 'POST /enrollment-credentials',
    op: 'enrollment.create',
    variants: [{ name: 'a one-time EST credential', status: 201 }],
    request: async () => ({ method: 'POST', path: '/api/v1/enrollment-credentials', body: { profile: 'server', nameSuffixes: ['matrix.example'] } }),
  },
  {
    route: 'GET /enrollment-credentials',
    op: 'enrollment.list',
    variants: [{ name: 'enrollment credentials', status: 200 }],
    request: async () => ({ method: 'GET', path: '/api/v1/enrollment-credentials' }),
  },
  {
    route: 'POST /enrollment-credentials/:id/revoke',
    op: 'enrollment.revoke',
    variants: [{ name: 'a fresh credential', status: 200 }],
    request: async (_v, fx) => {
      const made = await fx.admin('POST', '/api/v1/enrollment-credentials', { profile: 'server' });
      assert.equal(made.status, 201, made.text);
      return { method: 'POST', path: `/api/v1/enrollment-credentials/${made.json.id}/revoke`, body: {} };
    },
  },
  {
    route: 'POST /groups',
    op: 'group.create',
    variants: [{ name: 'a key group', status: 201 }],
    request: async () => ({ method: 'POST', path: '/api/v1/groups', body: { name: `matrix-${++madeNo}` } }),
  },
  { route: 'GET /groups', op: 'group.read', variants: [{ name: 'key groups', status: 200 }], request: async () => ({ method: 'GET', path: '/api/v1/groups' }) },
  {
    route: 'GET /groups/:id',
    op: 'group.read',
    variants: [{ name: 'a key group with a member', status: 200 }],
    request: async (_v, fx) => ({ method: 'GET', path: `/api/v1/groups/${(await fx.group()).name}` }),
  },
  {
    route: 'POST /groups/:id/members',
    op: 'group.member.add',
    variants: [{ name: 'a group-member certificate', status: 201 }],
    request: async (_v, fx) => {
      const g = await fx.group();
      return { method: 'POST', path: `/api/v1/groups/${g.id}/members`, body: { serial: await fx.fresh(MEMBER) } };
    },
  },
  {
    route: 'DELETE /groups/:id/members/:serial',
    op: 'group.member.remove',
    variants: [{ name: 'a member', status: 200 }],
    request: async (_v, fx) => {
      const g = await fx.group();
      return { method: 'DELETE', path: `/api/v1/groups/${g.id}/members/${g.member}` };
    },
  },
  {
    route: 'GET /groups/:id/members/:serial/welcome',
    op: 'group.welcome',
    variants: [{ name: 'a member', status: 200 }],
    request: async (_v, fx) => {
      const g = await fx.group();
      return { method: 'GET', path: `/api/v1/groups/${g.name}/members/${g.member}/welcome` };
    },
  },
  {
    route: 'GET /groups/:id/rekey',
    op: 'group.rekey',
    variants: [{ name: 'since epoch 0', status: 200 }],
    request: async (_v, fx) => ({ method: 'GET', path: `/api/v1/groups/${(await fx.group()).name}/rekey?since=0` }),
  },
  {
    route: 'POST /webhooks',
    op: 'webhook.create',
    variants: [{ name: 'a webhook', status: 201 }],
    request: async () => ({ method: 'POST', path: '/api/v1/webhooks', body: { url: `http://127.0.0.1:9/matrix-${++madeNo}`, events: ['crl.published'] } }),
  },
  {
    route: 'GET /webhooks',
    op: 'webhook.list',
    variants: [{ name: 'webhooks', status: 200 }],
    request: async () => ({ method: 'GET', path: '/api/v1/webhooks' }),
  },
  {
    route: 'GET /webhooks/:id',
    op: 'webhook.read',
    variants: [{ name: 'a webhook', status: 200 }],
    request: async (_v, fx) => ({ method: 'GET', path: `/api/v1/webhooks/${await matrixWebhook(fx)}` }),
  },
  {
    route: 'DELETE /webhooks/:id',
    op: 'webhook.delete',
    variants: [{ name: 'a fresh webhook', status: 200 }],
    request: async (_v, fx) => ({ method: 'DELETE', path: `/api/v1/webhooks/${await matrixWebhook(fx, true)}` }),
  },
  {
    route: 'POST /webhooks/:id/deliveries/:delivery/retry',
    op: 'webhook.retry',
    variants: [{ name: 'a delivery the webhook does not have', status: 404 }],
    request: async (_v, fx) => ({ method: 'POST', path: `/api/v1/webhooks/${await matrixWebhook(fx)}/deliveries/dl_0000000000000000/retry` }),
  },
  {
    route: 'GET /audit',
    op: 'audit.read',
    variants: [{ name: 'audit', status: 200 }],
    request: async () => ({ method: 'GET', path: '/api/v1/audit?limit=1' }),
  },
  {
    route: 'GET /audit/checkpoints',
    op: 'audit.read',
    variants: [{ name: 'checkpoints', status: 200 }],
    request: async () => ({ method: 'GET', path: '/api/v1/audit/checkpoints?limit=1' }),
  },
  {
    route: 'GET /openapi.json',
    op: 'api.describe',
    variants: [{ name: 'the OpenAPI document (public)', status: 200 }],
    request: async () => ({ method: 'GET', path: '/api/v1/openapi.json' }),
  },
];

/** The expected answer for a token shape on one cell: derived, never listed. */
function expected(shape: Shape, row: Row, v: Variant): { status: number; detail?: RegExp } {
  const scope = OPERATIONS[row.op].scope;
  if (scope === null) return { status: v.status };
  if (row.clientCertificate) return { status: v.status, detail: v.detail };
  if (shape === 'none' || shape === 'expired' || shape === 'revoked') return { status: 401 };
  const scopes: readonly string[] =
    shape === 'wrong-scope'
      ? SCOPES.filter((s) => s !== scope && s !== 'admin')
      : shape === 'right-scope'
        ? [scope]
        : shape === 'admin'
          ? ['admin']
          : SCOPES.filter((s) => s !== 'admin');
  if (!scopes.includes(scope) && !scopes.includes('admin')) return { status: 403, detail: new RegExp(`lacks the '${scope}' scope`) };
  if (v.cert?.malformed) return { status: v.status, detail: v.detail ?? /^URI / };
  if (v.cert && shape === 'profile-limited' && !LIMITED_PROFILES.includes(v.cert.profile))
    return { status: 403, detail: new RegExp(`^this token may not use profile ${v.cert.profile} \\(allowed: internal\\)$`) };
  if (v.cert && shape === 'suffix-limited' && !v.cert.underSuffix)
    return { status: 403, detail: new RegExp(`^this token may only (request|act on) names under ${SUFFIX.replace(/\./g, '\\.')}; `) };
  return { status: v.status };
}

// ---------------------------------------------------------------------------------------------

describe('authorisation matrix: every operation × token shape × profile × CA', { concurrency: false }, () => {
  let env: TestEnv;
  let server: RunningServer;
  const ids = {} as Record<CaKey, string>;
  const tokens = {} as Record<string, string>;
  const shared = new Map<string, string>();
  let expiresAt = 0;

  const as = (token: string) => ({ url: server.url, token });
  /** One request with exactly this token (none: no Authorization header at all). */
  async function call(token: string | undefined, r: Request) {
    const headers: Record<string, string> = {
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      ...(r.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...r.headers,
    };
    const res = await fetchAfterBlocking(server.url + r.path, { method: r.method, headers, body: r.body === undefined ? undefined : JSON.stringify(r.body) });
    const text = await res.text();
    let json: any;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json };
  }
  const admin = (method: string, path: string, body?: unknown) => api(server, method, path, body);

  async function issueAs(token: string, c: Cert): Promise<string> {
    const r = await api(as(token), 'POST', '/api/v1/certificates', {
      csr: csrFor(c.names),
      profile: c.profile,
      ...(c.ca && c.ca !== 'default' ? { caId: ids[c.ca] } : {}),
    });
    assert.equal(r.status, 201, `issue ${key(c)}: ${r.text}`);
    if (c.ca) assert.equal(r.json.caId, ids[c.ca], `issued by ${c.ca}`);
    return r.json.serial as string;
  }
  async function fresh(c: Cert, hold = false): Promise<string> {
    const serial = await issueAs(server.token, c);
    if (hold) assert.equal((await admin('POST', `/api/v1/certificates/${serial}/revoke`, { reason: 'certificateHold' })).status, 200);
    return serial;
  }
  async function group(): Promise<{ id: string; name: string; member: string }> {
    const made = await admin('POST', '/api/v1/groups', { name: `matrix-group-${++madeNo}` });
    assert.equal(made.status, 201, made.text);
    const member = await fresh(MEMBER);
    const added = await admin('POST', `/api/v1/groups/${made.json.id}/members`, { serial: member });
    assert.equal(added.status, 201, added.text);
    return { id: made.json.id, name: made.json.name, member };
  }
  const fixture = (): Fixture => ({ ids, shared, issueAs, fresh, admin, group });

  /**
   * What a refused request must leave unchanged; background work (CRLs, OCSP) and refusal events
   * excluded — among them the summary of anonymous refusals each process writes every interval
   * (a run longer than SIGNET_AUDIT_INTERVAL_SECONDS writes one between two cells).
   */
  async function state() {
    const [r] = await sql(
      env,
      `SELECT
      (SELECT COUNT(*) FROM "Certificate") AS certs,
      (SELECT COUNT(*) FROM "Certificate" WHERE status = 'good') AS good,
      (SELECT COUNT(*) FROM "CertificateAuthority" WHERE status = 'active') AS cas,
      (SELECT COUNT(*) FROM "ApiToken" WHERE "revokedAt" IS NULL) AS tokens,
      (SELECT COUNT(*) FROM "EnrollmentCredential" WHERE "revokedAt" IS NULL) AS enrollments,
      (SELECT COUNT(*) FROM "KeyGroup") AS groups,
      (SELECT COUNT(*) FROM "KeyGroupMember") AS members,
      (SELECT COUNT(*) FROM "AuditEvent" WHERE action NOT IN ('request.refused', 'request.refused.summary', 'crl.signed', 'ocsp.responder.issued', 'ocsp.responses.signed')) AS changes`,
    );
    return Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Number(v)]));
  }

  before(async () => {
    env = await createTestEnv();
    const init = signet(['init', '--json'], env.env);
    assert.equal(init.status, 0, init.stderr);
    ids.root = JSON.parse(init.stdout).rootId;
    const cas = JSON.parse(signet(['ca', 'list', '--json'], env.env).stdout) as { id: string; parentId: string | null }[];
    ids.default = cas.find((c) => c.parentId === ids.root)!.id;
    const make = (subject: string, extra: string[] = []) => {
      const r = signet(['ca', 'create-intermediate', '--parent', ids.root, '--subject', subject, ...extra, '--json'], env.env);
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout).id as string;
    };
    ids.corp = make('CN=Corp Issuing CA,O=Signet', ['--permitted-dns', 'corp.example']);
    ids.other = make('CN=Other Issuing CA,O=Signet');
    // `internal` names no DNS suffixes: the pinned, name-constrained CA is what keeps it inside
    // corp.example — exactly the configuration issue 12 #3 stepped around.
    const profiles = {
      internal: {
        description: 'services under corp.example',
        requireSan: true,
        sanTypes: ['dns', 'ip'],
        defaultValidityDays: 30,
        maxValidityDays: 90,
        extKeyUsage: ['serverAuth'],
        caId: ids.corp,
      },
      devices: {
        description: 'devices named by urn:uuid',
        sanTypes: ['dns', 'uri'],
        uriSchemes: ['urn'],
        hostlessUriSchemes: ['urn'],
        defaultValidityDays: 30,
        maxValidityDays: 90,
        extKeyUsage: ['clientAuth'],
      },
      urns: {
        description: 'urn: URIs allowed, host-less ones not opted in to',
        sanTypes: ['uri'],
        uriSchemes: ['urn'],
        defaultValidityDays: 30,
        maxValidityDays: 90,
        extKeyUsage: ['clientAuth'],
      },
      spiffe: {
        description: 'SPIFFE workloads under corp.example',
        sanTypes: ['dns', 'uri'],
        uriSchemes: ['spiffe', 'https'],
        dnsSuffixes: ['corp.example'],
        defaultValidityDays: 30,
        maxValidityDays: 90,
        extKeyUsage: ['clientAuth', 'serverAuth'],
        caId: ids.corp,
      },
      pair: {
        description: 'two allowed CAs, the first the default',
        defaultValidityDays: 30,
        maxValidityDays: 90,
        extKeyUsage: ['serverAuth'],
        caIds: [ids.other, ids.corp],
      },
      legacy: { description: 'the one-CA shorthand', defaultValidityDays: 30, maxValidityDays: 90, extKeyUsage: ['serverAuth'], caId: ids.other },
      rooted: { description: 'misconfigured: pinned to the root', defaultValidityDays: 30, maxValidityDays: 90, extKeyUsage: ['serverAuth'], caId: ids.root },
    };
    const file = join(env.dataDir, 'profiles.json');
    writeFileSync(file, JSON.stringify(profiles));
    env.env.SIGNET_PROFILES_FILE = file;
    server = await startServer(env.env);

    const newToken = async (body: Record<string, unknown>) => {
      const r = await admin('POST', '/api/v1/tokens', body);
      assert.equal(r.status, 201, r.text);
      return r.json as { id: string; token: string };
    };
    expiresAt = Date.now() + 4_000;
    tokens.expired = (await newToken({ name: 'expires at once', scopes: ['admin'], expiresAt: new Date(expiresAt).toISOString() })).token;
    const doomed = await newToken({ name: 'revoked at once', scopes: ['admin'] });
    assert.equal((await admin('DELETE', `/api/v1/tokens/${doomed.id}`)).status, 204);
    tokens.revoked = doomed.token;
    tokens.admin = server.token;
    for (const s of SCOPES) {
      tokens[`only-${s}`] = (await newToken({ name: `only ${s}`, scopes: [s] })).token;
      tokens[`all-but-${s}`] = (await newToken({ name: `all but ${s}`, scopes: SCOPES.filter((x) => x !== s && x !== 'admin') })).token;
    }
    const limitedScopes = SCOPES.filter((s) => s !== 'admin');
    tokens['profile-limited'] = (await newToken({ name: 'internal only', scopes: limitedScopes, profiles: LIMITED_PROFILES })).token;
    tokens['suffix-limited'] = (await newToken({ name: 'team a only', scopes: limitedScopes, nameSuffixes: [SUFFIX] })).token;
    for (const t of TARGETS) shared.set(key(t), await fresh(t));
  });
  after(async () => {
    await server?.stop();
    await env?.cleanup();
  });

  const tokenFor = (shape: Shape, row: Row): string | undefined => {
    const scope = OPERATIONS[row.op].scope ?? 'read';
    switch (shape) {
      case 'none':
        return undefined;
      case 'wrong-scope':
        return tokens[`all-but-${scope}`];
      case 'right-scope':
        return tokens[`only-${scope}`];
      default:
        return tokens[shape];
    }
  };

  test('every /api/v1 route names its operation and has exactly one row in the table', async () => {
    const routes = await enumerateApiRoutes();
    assert.ok(routes.length >= 16, `found the /api/v1 routes: ${routes.map((r) => r.route).join(', ')}`);
    for (const r of routes) {
      assert.ok(r.operation, `${r.route} has no operation: its first handler must be requireAuth(ctx, op) or openOperation(op)`);
      const rows = ROWS.filter((x) => x.route === r.route);
      assert.equal(rows.length, 1, `${r.route} needs exactly one row in the authorisation matrix (has ${rows.length})`);
      assert.equal(rows[0]!.op, r.operation, `${r.route}: the row's operation is the one the route names`);
    }
    for (const row of ROWS)
      assert.ok(
        routes.some((r) => r.route === row.route),
        `row ${row.route} is a route the server has`,
      );
    // Every operation of the table is reachable over HTTP.
    for (const op of Object.keys(OPERATIONS))
      assert.ok(
        routes.some((r) => r.operation === op),
        `operation ${op} has a route`,
      );
  });

  test('every cell answers as the table says, and a refusal stores nothing', async () => {
    while (Date.now() <= expiresAt + 50) await new Promise((r) => setTimeout(r, 50));
    let cells = 0;
    for (const row of ROWS) {
      for (const v of row.variants) {
        for (const shape of SHAPES) {
          const want = expected(shape, row, v);
          const req = await row.request(v, fixture());
          const before = want.status >= 400 ? await state() : undefined;
          const r = await call(tokenFor(shape, row), req);
          const where = `${row.route} [${v.name}] as ${shape}`;
          assert.equal(r.status, want.status, `${where}: ${r.text.slice(0, 400)}`);
          if (want.status >= 400) {
            assert.equal(r.headers.get('content-type'), PROBLEM, where);
            if (want.detail) assert.match(r.json.detail, want.detail, where);
            assert.deepEqual(await state(), before, `${where}: nothing stored`);
          } else if (v.signedBy) {
            assert.equal(r.json.caId, ids[v.signedBy], `${where}: signed by ${v.signedBy}`);
          }
          cells++;
        }
      }
    }
    assert.ok(cells > 300, `${cells} cells`);
  });

  test('issue 12 #3: a token limited to the pinned profile cannot step around its CA; no leaf is ever signed by a root', async () => {
    const before = await state();
    const t = tokens['profile-limited']!;
    const other = await api(as(t), 'POST', '/api/v1/certificates', { csr: csrFor(['DNS:www.bank.example']), profile: 'internal', caId: ids.other });
    assert.equal(other.status, 400, other.text);
    assert.equal(other.json.detail, `profile internal issues only from CA ${ids.corp}; caId ${ids.other} is not allowed`);
    const root = await api(as(t), 'POST', '/api/v1/certificates', { csr: csrFor(['DNS:www.bank.example']), profile: 'internal', caId: ids.root });
    assert.equal(root.status, 400, root.text);
    assert.match(root.json.detail, new RegExp(`caId ${ids.root} is not allowed`));
    // A profile with no CA list allows any issuing CA, never a root: the detail names the ones it may pick.
    const server = await api(as(tokens.admin!), 'POST', '/api/v1/certificates', { csr: csrFor(['DNS:leaf.example']), profile: 'server', caId: ids.root });
    assert.equal(server.status, 400, server.text);
    assert.match(
      server.json.detail,
      new RegExp(
        `^CA ${ids.root} is a root CA: a root signs only intermediate CAs, never end-entity certificates; profile server may issue from any issuing CA \\(.*${ids.corp}.*\\)$`,
      ),
    );
    assert.ok(
      server.json.detail.includes(ids.default) && server.json.detail.includes(ids.other) && !server.json.detail.includes(`${ids.root},`),
      server.json.detail,
    );
    assert.deepEqual(await state(), before, 'nothing stored');
    // Not even a profile pinned to the root gets a leaf from it: the last check before signing refuses.
    const rooted = await api(as(tokens.admin!), 'POST', '/api/v1/certificates', { csr: csrFor(['DNS:leaf.example']), profile: 'rooted' });
    assert.equal(rooted.status, 409, rooted.text);
    assert.equal(rooted.json.detail, `CA ${ids.root} is a root CA: a root signs only intermediate CAs, never end-entity certificates`);
    assert.deepEqual(await state(), before, 'nothing stored');
    const fromRoot = await sql(env, 'SELECT COUNT(*) AS n FROM "Certificate" WHERE "caId" = ?', [ids.root]);
    assert.equal(Number(fromRoot[0].n), 0, 'no certificate in the inventory was signed by the root');
  });

  test("a profile's CA list: the first is the default, a request picks only among them; caId is the one-CA shorthand", async () => {
    const issue = (profile: string, names: string[], caId?: CaKey) =>
      api(as(tokens.admin!), 'POST', '/api/v1/certificates', { csr: csrFor(names), profile, ...(caId ? { caId: ids[caId] } : {}) });
    assert.equal((await issue('pair', ['DNS:p.example'])).json.caId, ids.other);
    const corp = await issue('pair', ['DNS:p.corp.example'], 'corp');
    assert.equal(corp.status, 201, corp.text);
    assert.equal(corp.json.caId, ids.corp);
    const before = await state();
    const refused = await issue('pair', ['DNS:p.example'], 'default');
    assert.equal(refused.status, 400, refused.text);
    assert.equal(refused.json.detail, `profile pair issues only from CAs ${ids.other}, ${ids.corp}; caId ${ids.default} is not allowed`);
    assert.deepEqual(await state(), before);
    assert.equal((await issue('legacy', ['DNS:l.example'])).json.caId, ids.other);
    const listed = (await api(as(tokens.admin!), 'GET', '/api/v1/profiles')).json.items as { name: string; caIds?: string[]; caId?: string }[];
    assert.deepEqual(listed.find((p) => p.name === 'legacy')!.caIds, [ids.other]);
    assert.ok(!('caId' in listed.find((p) => p.name === 'legacy')!), 'caId is folded into caIds');
    assert.deepEqual(listed.find((p) => p.name === 'pair')!.caIds, [ids.other, ids.corp]);
    assert.equal(listed.find((p) => p.name === 'server')!.caIds, undefined);
  });

  test('issue 12 #4: a suffix-limited token cannot revoke, hold, unhold, renew or read a certificate outside its suffixes (403 naming the limit)', async () => {
    const outside: Cert = { profile: 'server', names: ['DNS:b.other.example'], underSuffix: false };
    const t = tokens['suffix-limited']!;
    const good = await fresh(outside);
    const held = await fresh(outside, true);
    const before = await state();
    for (const [method, path, body] of [
      ['POST', `/api/v1/certificates/${good}/revoke`, { reason: 'keyCompromise' }],
      ['POST', `/api/v1/certificates/${good}/revoke`, { reason: 'certificateHold' }],
      ['POST', `/api/v1/certificates/${held}/unhold`, {}],
      ['POST', `/api/v1/certificates/${good}/renew`, {}],
      ['GET', `/api/v1/certificates/${good}`, undefined],
    ] as const) {
      const r = await api(as(t), method, path, body);
      assert.equal(r.status, 403, `${method} ${path}: ${r.text}`);
      assert.match(r.json.detail, /^this token may only (act on|request) names under team-a\.corp\.example; name 'b\.other\.example' is outside them$/);
    }
    assert.deepEqual(await state(), before, 'nothing changed');
    const rows = await sql(env, 'SELECT serial, status FROM "Certificate" WHERE serial IN (?, ?) ORDER BY serial', [good, held]);
    assert.deepEqual(Object.fromEntries(rows.map((x) => [x.serial, x.status])), { [good]: 'good', [held]: 'hold' });
    // The same token acts on what is inside its suffixes.
    const mine = await fresh({ profile: 'server', names: [`DNS:mine.${SUFFIX}`], underSuffix: true }, true);
    assert.equal((await api(as(t), 'POST', `/api/v1/certificates/${mine}/unhold`, {})).status, 200);
    assert.equal((await api(as(t), 'POST', `/api/v1/certificates/${mine}/revoke`, { reason: 'superseded' })).status, 200);
  });

  test('issue 12 #5: host-less URI SANs are refused to a suffix-limited token unless the profile opts in to the scheme', async () => {
    const t = tokens['suffix-limited']!;
    const urn = await api(as(t), 'POST', '/api/v1/certificates', { csr: csrFor([`URI:urn:uuid:${randomUUID()}`]), profile: 'devices' });
    assert.equal(urn.status, 201, `the devices profile opts in to urn: ${urn.text}`);
    const before = await state();
    for (const [profile, uri] of [
      ['client', `urn:uuid:${randomUUID()}`],
      ['client', 'mailto:ceo@other.example'],
      ['client', 'file:/etc/passwd'],
      ['urns', `urn:uuid:${randomUUID()}`],
    ] as const) {
      const r = await api(as(t), 'POST', '/api/v1/certificates', { csr: csrFor([`URI:${uri}`]), profile });
      assert.equal(r.status, 403, `${uri}: ${r.text}`);
      assert.equal(
        r.json.detail,
        `this token may only request names under ${SUFFIX}; URI '${uri}' is outside them (a URI without a host cannot be judged by name suffixes; its profile ${profile} would have to list the scheme in hostlessUriSchemes)`,
      );
    }
    assert.deepEqual(await state(), before, 'nothing stored');
    const mailto = await api(as(tokens.admin!), 'POST', '/api/v1/certificates', { csr: csrFor(['URI:mailto:ceo@other.example']), profile: 'devices' });
    assert.equal(mailto.status, 400, `a scheme the profile does not list is the profile's refusal: ${mailto.text}`);
  });

  test('F5: listing a scheme that has hosts in uriSchemes lets no host-less spelling through, not even for admin; one stored before is outside every name limit', async () => {
    const before = await state();
    const refusals: [string, RegExp][] = [
      ['spiffe:///x', /^URI 'spiffe:\/\/\/x' is written with '\/\/' but names no host; /],
      ['spiffe:www.bank.example', /^URI 'spiffe:www\.bank\.example': 'spiffe' URIs name a host and must be written 'spiffe:\/\/host\/…'$/],
      ['spiffe:victim-device', /^URI 'spiffe:victim-device': 'spiffe' URIs name a host/],
      ['https:www.bank.example', /'https' URIs name a host/],
    ];
    for (const [uri, detail] of refusals) {
      for (const t of [tokens.admin!, tokens['suffix-limited']!]) {
        const r = await api(as(t), 'POST', '/api/v1/certificates', { csr: csrFor([`URI:${uri}`]), profile: 'spiffe' });
        assert.equal(r.status, 400, `${uri}: ${r.text}`);
        assert.match(r.json.detail, detail);
      }
    }
    assert.deepEqual(await state(), before, 'nothing stored');
    // A certificate stored before the rules tightened (its names as the row records them).
    const serial = await fresh({ profile: 'spiffe', names: [`URI:spiffe://legacy.${SUFFIX}/x`], underSuffix: true });
    await sql(env, 'UPDATE "Certificate" SET sans = ?, "sanText" = ? WHERE serial = ?', [
      JSON.stringify([{ type: 'uri', value: 'spiffe:victim-device' }]),
      'spiffe:victim-device',
      serial,
    ]);
    const t = tokens['suffix-limited']!;
    for (const [method, path, body] of [
      ['GET', `/api/v1/certificates/${serial}`, undefined],
      ['POST', `/api/v1/certificates/${serial}/revoke`, { reason: 'keyCompromise' }],
      ['POST', `/api/v1/certificates/${serial}/renew`, {}],
    ] as const) {
      const r = await api(as(t), method, path, body);
      assert.equal(r.status, 403, `${method} ${path}: ${r.text}`);
      assert.match(r.json.detail, /^this token may only (act on|request) names under team-a\.corp\.example; URI 'spiffe:victim-device' is outside them/);
    }
    const listed = await api(as(t), 'GET', '/api/v1/certificates?limit=500&profile=spiffe');
    assert.equal(listed.status, 200, listed.text);
    assert.ok(!(listed.json.items as { serial: string }[]).some((c) => c.serial === serial), "not in the token's list");
    assert.equal((await api(as(tokens.admin!), 'GET', `/api/v1/certificates/${serial}`)).status, 200, 'admin still sees it');
    const [row] = await sql(env, 'SELECT status FROM "Certificate" WHERE serial = ?', [serial]);
    assert.equal(row.status, 'good');
  });

  test("lists show only what the token may see (needs the inventory's listCertificates(ctx, filter, visibility))", async () => {
    const all = async (token: string, query = '') => {
      const r = await api(as(token), 'GET', `/api/v1/certificates?limit=500${query}`);
      assert.equal(r.status, 200, r.text);
      return r.json.items as { serial: string; profile: string; sans: { type: string; value: string }[] }[];
    };
    const everything = await all(tokens.admin!);
    const byProfile = await all(tokens['profile-limited']!);
    assert.ok(byProfile.length > 0 && byProfile.length < everything.length, `${byProfile.length} of ${everything.length}`);
    assert.deepEqual(
      byProfile.map((c) => c.serial),
      everything.filter((c) => c.profile === 'internal').map((c) => c.serial),
    );
    assert.deepEqual(await all(tokens['profile-limited']!, '&profile=server'), []);
    const bySuffix = await all(tokens['suffix-limited']!);
    const under = (v: string) => v === SUFFIX || v.endsWith(`.${SUFFIX}`);
    // A URI with a host ('scheme://host…', the only spelling with one) by its host; one without only under devices (hostlessUriSchemes urn).
    const uriHostOf = (v: string) => /^[a-z][a-z0-9+.-]*:\/\/([^/?#:]+)/i.exec(v)?.[1]?.toLowerCase();
    const visible = (c: (typeof everything)[number]) =>
      c.sans.every(
        (s) =>
          (s.type === 'dns' && under(s.value)) ||
          (s.type === 'uri' && (uriHostOf(s.value) !== undefined ? under(uriHostOf(s.value)!) : c.profile === 'devices' && s.value.startsWith('urn:'))),
      );
    assert.deepEqual(
      bySuffix.map((c) => c.serial),
      everything.filter(visible).map((c) => c.serial),
    );
    assert.ok(!bySuffix.some((c) => c.sans.some((s) => s.value === 'b.other.example')));
  });

  test('issue 12 #9: client input never makes a 500: bad percent-encoding and out-of-range numbers are 400 problems', async () => {
    const bad = [
      ['GET', '/api/v1/certificates/%ff%fe', /^the request path is not valid percent-encoded UTF-8$/],
      ['GET', '/api/v1/audit?cursor=99999999999999999999', /^cursor is not one this server returned$/],
      ['GET', '/api/v1/audit?cursor=2147483648', /^cursor is not one this server returned$/],
      ['GET', '/api/v1/audit?limit=99999999999999999999', /^limit: must be at most 1000 \(the largest page\)$/],
      ['GET', '/api/v1/certificates?limit=1e400', /^limit: /],
      ['GET', '/pki/%ff%fe.crl', /^the request path is not valid percent-encoded UTF-8$/],
      // Dates: an offset past ±23:59 made `new Date` an Invalid Date, and a RangeError a 500.
      [
        'GET',
        '/api/v1/certificates?expiresBefore=2026-01-01T00:00:00%2B25:00',
        /^expiresBefore: must be an ISO 8601 date-time; the UTC offset \+25:00 is not one \(at most ±23:59\)$/,
      ],
      ['GET', '/api/v1/audit?since=2026-01-01T00:00:00%2B25:00', /^since: must be an ISO 8601 date-time; the UTC offset \+25:00 is not one/],
      ['GET', '/api/v1/audit?until=2026-01-01T00:00:00%2B99:99', /^until: must be an ISO 8601 date-time; the UTC offset \+99:99 is not one/],
      ['GET', '/api/v1/audit?until=2026-01-01T00:00:00-23:60', /^until: must be an ISO 8601 date-time; the UTC offset -23:60 is not one/],
      ['GET', '/api/v1/certificates?expiresBefore=1969-12-31T23:59:59Z', /^expiresBefore: must be between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z$/],
      // Page sizes: decimal digits only.
      ['GET', '/api/v1/certificates?limit=0x10', /^limit: must be a whole number written in decimal digits$/],
      ['GET', '/api/v1/audit?limit=1e2', /^limit: must be a whole number written in decimal digits$/],
      ['GET', '/api/v1/audit/checkpoints?limit=%205', /^limit: must be a whole number written in decimal digits$/],
      ['GET', '/api/v1/certificates?limit=%2B5', /^limit: must be a whole number written in decimal digits$/],
    ] as const;
    for (const [method, path, detail] of bad) {
      const r = await api(server, method, path);
      assert.equal(r.status, 400, `${method} ${path}: ${r.text}`);
      assert.equal(r.headers.get('content-type'), PROBLEM);
      assert.match(r.json.detail, detail, path);
    }
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
  });

  test('the class: every path parameter of every route is validated (bad encoding, bad shape → 400), and so is every query', async () => {
    const wrongShape: Record<string, [string, RegExp]> = {
      serial: ['not-hex', /^serial "not-hex" is not a hexadecimal serial number$/],
      id: ['Not_An_Id!', /^id: must be an? (CA|token|enrollment credential|key group|webhook) id/],
      delivery: ['Not_An_Id!', /^delivery: must be a delivery id/],
    };
    // The other parameters of a route take good values, so that only the one tried can be wrong.
    const goodValue: Record<string, () => string> = { serial: () => shared.get(key(TARGETS[0]!))!, id: () => ids.corp, delivery: () => 'dl_0000000000000000' };
    const withGood = (pattern: string, except: string) => pattern.replace(/:(\w+)/g, (m, name: string) => (name === except ? m : (goodValue[name]?.() ?? m)));
    for (const { route } of await enumerateApiRoutes()) {
      const [method, pattern] = route.split(' ') as [string, string];
      const params = [...pattern.matchAll(/:(\w+)/g)].map((m) => m[1]!);
      const body = method === 'POST' ? {} : undefined;
      for (const p of params) {
        const enc = await api(server, method, `/api/v1${withGood(pattern, p).replace(`:${p}`, '%ff%fe')}`, body);
        assert.equal(enc.status, 400, `${route} with :${p} = %ff%fe: ${enc.text}`);
        const [value, detail] = wrongShape[p] ?? assert.fail(`no bad value for :${p} of ${route}; add one to wrongShape`);
        const shaped = await api(server, method, `/api/v1${withGood(pattern, p).replace(`:${p}`, encodeURIComponent(value))}`, body);
        assert.equal(shaped.status, 400, `${route} with :${p} = ${value}: ${shaped.text}`);
        assert.match(shaped.json.detail, detail, route);
      }
      const path = `/api/v1${pattern.replace(/:serial/, shared.get(key(TARGETS[0]!))!).replace(/:id/, ids.corp)}?bogus=1`;
      const q = await api(server, method, path, body);
      if (ROWS.find((r) => r.route === route)?.clientCertificate) {
        // Authentication comes first, as everywhere; with no HTTPS listener here it cannot pass
        // (the query is checked behind a client certificate in test/mtls-renewal.test.ts).
        assert.equal(q.status, 401, `${route} with an unknown query parameter: ${q.text}`);
        continue;
      }
      assert.equal(q.status, 400, `${route} with an unknown query parameter: ${q.text}`);
      assert.match(q.json.detail, /Unrecognized key\(s\) in object: 'bogus'/, route);
    }
  });
});

describe('authorization.ts decides for ACME accounts and certificate keys too', () => {
  const cert = { profile: 'server', sans: [{ type: 'dns' as const, value: 'a.example' }], serial: 'abc1' };
  const refuses = (p: Principal, op: Operation, acme: string | undefined, detail: RegExp) =>
    assert.throws(
      () => authorizeCertificate(p, op, cert),
      (e: unknown) => {
        assert.ok(e instanceof SignetError);
        assert.equal(e.status, 403);
        assert.equal(e.acme, acme);
        assert.match(e.detail, detail);
        return true;
      },
    );

  test("an ACME account acts only on its directory's certificates, and only issues and revokes", () => {
    authorizeCertificate({ kind: 'acme', accountId: 'a1', directory: 'server' }, 'certificate.revoke', cert);
    refuses({ kind: 'acme', accountId: 'a1', directory: 'peer' }, 'certificate.revoke', 'unauthorized', /belongs to the peer directory/);
    refuses({ kind: 'acme', accountId: 'a1', directory: 'server' }, 'certificate.renew', 'unauthorized', /cannot certificate renew/);
  });

  test("a certificate's key revokes that certificate only", () => {
    authorizeCertificate({ kind: 'certificate-key', serial: 'abc1' }, 'certificate.revoke', cert);
    refuses({ kind: 'certificate-key', serial: 'abc2' }, 'certificate.revoke', 'unauthorized', /does not authorise acting on another certificate/);
    refuses({ kind: 'certificate-key', serial: 'abc1' }, 'certificate.read', 'unauthorized', /only authorises revoking/);
  });

  test('an enrollment credential enrolls under its profile and names only, and does nothing else', () => {
    const est = { kind: 'enrollment', credentialId: 'e1', protocol: 'est', profile: cert.profile, nameSuffixes: null } as const;
    authorizeCertificate(est, 'certificate.issue', cert);
    refuses({ ...est, profile: 'peer' }, 'certificate.issue', undefined, new RegExp(`is for profile peer, not ${cert.profile}`));
    refuses({ ...est, nameSuffixes: ['elsewhere.test'] }, 'certificate.issue', undefined, /allows names under elsewhere\.test only; .* is outside them/);
    for (const op of ['certificate.renew', 'certificate.revoke', 'certificate.read', 'certificate.list', 'enrollment.create', 'token.create'] as Operation[])
      refuses(est, op, undefined, /only authorises enrolling/);
  });

  test('a client certificate renews itself only', () => {
    authorizeCertificate({ kind: 'certificate-holder', serial: 'abc1' }, 'certificate.renew', cert);
    refuses({ kind: 'certificate-holder', serial: 'abc2' }, 'certificate.renew', undefined, /authorises renewing itself only/);
    for (const op of ['certificate.issue', 'certificate.revoke', 'certificate.read', 'ca.rotate'] as Operation[])
      refuses({ kind: 'certificate-holder', serial: 'abc1' }, op, undefined, /only authorises renewing itself/);
  });

  test('the operator and Signet itself have no limits', () => {
    for (const p of [{ kind: 'operator', actor: 'cli:root' }, { kind: 'system' }] as Principal[]) {
      for (const op of Object.keys(OPERATIONS) as Operation[]) authorizeCertificate(p, op, cert);
    }
  });
});
