/**
 * Issue 19 item 3, GET /api/v1/openapi.json: the document is valid OpenAPI 3.1 by a validator
 * nobody on the project wrote (@apidevtools/swagger-parser); it describes exactly the routes
 * Express has mounted under /api/v1, each with the scope its guard really demands; and every
 * documented success response is compared with a real answer of a real `signet serve` (SQLite,
 * or PostgreSQL under SIGNET_TEST_POSTGRES) by a JSON Schema validator (ajv): a route whose
 * answer changes shape — a field added, dropped, renamed or retyped — fails here until its
 * response schema says so. Refusals are checked as RFC 9457 problem documents the same way.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import SwaggerParser from '@apidevtools/swagger-parser';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { api, fetchAfterBlocking, startServer, type RunningServer } from './helpers/cli.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';
import { TempDir, csrMaker } from './helpers/openssl.js';
import { apiRouter } from '../src/http/app.js';
import { documentedRoutes, mountedRoutes, openApiDocument, type RouteKey } from '../src/http/openapi.js';
import { OPERATIONS } from '../src/ca/authorization.js';
import { SCOPES } from '../src/ca/tokens.js';
import type { CaContext } from '../src/ca/context.js';
import type { Issuance } from '../src/ca/issuance.js';
import type { Revocation } from '../src/ca/revocation.js';
import type { GroupService } from '../src/groups/service.js';

type Json = Record<string, any>;

/** The router createApp mounts at /api/v1; building it touches none of its dependencies. */
const router = () =>
  apiRouter({} as CaContext, { bodyLimit: 1024, issuance: {} as Issuance, revocation: {} as Revocation, groups: {} as GroupService }, { middlewares: [] });

const pathOf = (route: string) => route.slice(route.indexOf(' ') + 1).replace(/:(\w+)/g, '{$1}');
const methodOf = (route: string) => route.slice(0, route.indexOf(' ')).toLowerCase();

describe('the OpenAPI document, as generated', () => {
  const mounted = mountedRoutes(router());
  const { document, undocumented } = openApiDocument(router());

  test('is valid OpenAPI 3.1 (swagger-parser)', async () => {
    assert.equal(document.openapi, '3.1.0');
    await SwaggerParser.validate(structuredClone(document) as never);
  });

  test('documents every route mounted under /api/v1, and nothing else', () => {
    assert.ok(mounted.length >= 27, `found the mounted routes: ${mounted.map((r) => r.route).join(', ')}`);
    assert.deepEqual(undocumented, [], 'every mounted route has a documentRoute() entry next to it');
    const keys = mounted.map((r) => r.route);
    for (const route of documentedRoutes().keys()) assert.ok(keys.includes(route), `${route} is documented but not mounted`);
    const inDocument = Object.entries(document.paths as Json).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m} ${path}`));
    assert.deepEqual(inDocument.sort(), keys.map((k) => `${methodOf(k)} ${pathOf(k)}`).sort());
  });

  test("each operation's security is the scope its guard demands (authorization.ts), public ones none", () => {
    for (const { route, operation } of mounted) {
      assert.ok(operation, `${route} names its operation`);
      const op = (document.paths as Json)[pathOf(route)][methodOf(route)];
      assert.equal(op['x-signet-operation'], operation, route);
      const scope = OPERATIONS[operation].scope;
      const want = documentedRoutes().get(route)!.clientCertificate ? [{ clientCertificate: [] }] : scope ? [{ bearerToken: [scope] }] : [];
      assert.deepEqual(op.security, want, route);
      if (scope) assert.ok(op.responses['401'] && op.responses['403'], `${route} documents 401 and 403`);
      // Every path parameter has a parameter object, from the route's own params schema.
      const names = [...route.matchAll(/:(\w+)/g)].map((m) => m[1]);
      assert.deepEqual(
        (op.parameters ?? [])
          .filter((p: Json) => p.in === 'path')
          .map((p: Json) => p.name)
          .sort(), // a params schema may list them in another order (which it names first when both are bad)
        names.sort(),
        `${route}: path parameters`,
      );
    }
  });

  test('request schemas are the ones the routes validate with (a bound the route enforces is in the document)', () => {
    const post = (document.paths as Json)['/certificates'].post;
    const body = post.requestBody.content['application/json'].schema;
    assert.equal(post.requestBody.required, true);
    assert.deepEqual(body.required.sort(), ['csr', 'profile']);
    assert.equal(body.additionalProperties, false, 'strict: an unknown field is refused, and documented as such');
    const list = (document.paths as Json)['/certificates'].get.parameters as Json[];
    assert.deepEqual(list.find((p) => p.name === 'status')!.schema.enum, ['good', 'revoked', 'expired', 'hold']);
    const tokens = (document.paths as Json)['/tokens'].post.requestBody.content['application/json'].schema;
    assert.deepEqual(tokens.properties.scopes.items.enum, [...SCOPES]);
    const rekey = (document.paths as Json)['/groups/{id}/rekey'].get.parameters as Json[];
    assert.equal(rekey.find((p) => p.name === 'since')!.required, true, 'since is required by the route');
  });
});

describe('the OpenAPI document against a real server', { concurrency: false }, () => {
  let env: TestEnv;
  let server: RunningServer;
  let document: Json;
  const tmp = new TempDir();
  const csr = csrMaker(tmp);
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats.default(ajv);
  const ID = 'https://signet.test/openapi.json';
  /** Which documented (route, status) pairs a real answer was checked against. */
  const seen = new Set<string>();

  /** The documented response of `route` for `status` (exact code, else its nXX range). */
  function documented(route: RouteKey, status: number): Json {
    const op = document.paths[pathOf(route)]?.[methodOf(route)];
    assert.ok(op, `${route} is in the served document`);
    const key = String(status) in op.responses ? String(status) : `${String(status)[0]}XX`;
    assert.ok(op.responses[key], `${route} documents status ${status}`);
    return {
      key,
      response: op.responses[key],
      pointer: `#/paths/${pathOf(route).replaceAll('~', '~0').replaceAll('/', '~1')}/${methodOf(route)}/responses/${key}`,
    };
  }

  /** Validates a real answer against the document: status, content type, and the body's schema. */
  function check(route: RouteKey, r: { status: number; headers: Headers; text: string; json: unknown }): void {
    const { key, response, pointer } = documented(route, r.status);
    seen.add(`${route} ${key}`);
    const type = (r.headers.get('content-type') ?? '').split(';')[0]!.trim();
    const content = response.content as Json | undefined;
    if (!content) {
      assert.equal(r.text, '', `${route} ${r.status}: documented without a body`);
      return;
    }
    assert.ok(type in content, `${route} ${r.status}: content type ${type} is documented (${Object.keys(content).join(', ')})`);
    if (!type.endsWith('json')) return;
    const validate = ajv.getSchema(`${ID}${pointer}/content/${type.replace('/', '~1')}/schema`);
    assert.ok(validate, `${route} ${r.status}: schema`);
    assert.ok(validate(r.json), `${route} ${r.status}: the answer fits its documented schema: ${ajv.errorsText(validate.errors)}\n${r.text.slice(0, 600)}`);
  }

  const call = async (route: RouteKey, path: string, body?: unknown, token = server.token) => {
    const r = await api({ url: server.url, token }, route.split(' ')[0]!, `/api/v1${path}`, body);
    check(route, r);
    return r;
  };
  const ok = (r: { status: number; text: string }, status: number) => assert.equal(r.status, status, r.text);

  before(async () => {
    env = await createTestEnv();
    server = await startServer(env.env);
    const res = await fetchAfterBlocking(`${server.url}/api/v1/openapi.json`);
    assert.equal(res.status, 200, 'public: no token');
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    document = (await res.json()) as Json;
    ajv.addSchema({ ...document, $id: ID });
  });
  after(async () => {
    await server?.stop();
    await env?.cleanup();
    tmp.remove();
  });

  test('the served document is the generated one, valid OpenAPI 3.1', async () => {
    assert.deepEqual(document, JSON.parse(JSON.stringify(openApiDocument(router()).document)));
    await SwaggerParser.validate(structuredClone(document) as never);
    const again = await fetchAfterBlocking(`${server.url}/api/v1/openapi.json`, { headers: { authorization: 'Bearer forged' } });
    assert.equal(again.status, 200, 'a bad token does not matter on a public route');
  });

  test('the check can fail: an answer with a field the document does not know is refused', async () => {
    const r = await call('GET /cas', '/cas');
    ok(r, 200);
    const extra = { ...r, json: { items: [{ ...r.json.items[0], surprise: true }] } };
    assert.throws(() => check('GET /cas', extra), /fits its documented schema/);
    const { status: _dropped, ...missing } = r.json.items[0];
    assert.throws(() => check('GET /cas', { ...r, json: { items: [missing] } }), /fits its documented schema/);
    assert.throws(() => check('GET /cas', { ...r, json: { items: [{ ...r.json.items[0], notAfter: 'soon' }] } }), /fits its documented schema/);
  });

  test('every documented answer matches what the server really sends', async () => {
    // CAs
    const cas = (await call('GET /cas', '/cas')).json.items as Json[];
    const root = cas.find((c) => c.parentId === null)!.id as string;
    const issuing = cas.find((c) => c.parentId !== null)!.id as string;
    ok(await call('GET /cas/:id', `/cas/${issuing}`), 200);
    ok(await call('GET /cas/:id', `/cas/${root}`), 200);
    const made = await call('POST /cas', '/cas', { parentId: root, subject: 'CN=OpenAPI CA,O=Signet' });
    ok(made, 201);
    ok(await call('POST /cas/:id/rotate', `/cas/${made.json.id}/rotate`, {}), 201);
    ok(await call('POST /cas/:id/rotate', `/cas/${made.json.id}/rotate`, {}), 200);
    ok(await call('POST /cas/roots', '/cas/roots', { subject: 'CN=OpenAPI PQ Root,O=Signet', keyAlgorithm: 'ml-dsa-44' }), 201);
    const other = await call('POST /cas', '/cas', { parentId: root, subject: 'CN=OpenAPI CA 2,O=Signet', pathLen: 0 });
    ok(await call('POST /cas/:id/renew', `/cas/${other.json.id}/renew`, { validityDays: 30 }), 201);
    ok(await call('GET /cas/:id', `/cas/${other.json.id}`), 200); // with its superseded certificate
    ok(await call('POST /cas/:id/revoke', `/cas/${other.json.id}/revoke`, { reason: 'superseded' }), 200);

    // Certificates (the bare issuance handler, then Express with a content type the bare one leaves alone)
    const issued = await call('POST /certificates', '/certificates', { csr: csr('DNS:openapi.example'), profile: 'server' });
    ok(issued, 201);
    const viaExpress = await api(
      server,
      'POST',
      '/api/v1/certificates',
      { csr: csr('DNS:express.example'), profile: 'server' },
      { 'content-type': 'application/json; x-route=express' },
    );
    check('POST /certificates', viaExpress);
    ok(viaExpress, 201);
    const serial = issued.json.serial as string;
    ok(await call('GET /certificates', '/certificates?limit=5'), 200);
    ok(await call('GET /certificates', '/certificates?atRisk=true'), 200);
    ok(await call('GET /certificates/:serial', `/certificates/${serial}`), 200);
    const renewed = await call('POST /certificates/:serial/renew', `/certificates/${serial}/renew`, {});
    ok(renewed, 201);
    ok(await call('POST /certificates/:serial/revoke', `/certificates/${renewed.json.serial}/revoke`, { reason: 'certificateHold' }), 200);
    ok(await call('GET /certificates/:serial/status', `/certificates/${renewed.json.serial}/status`), 200);
    ok(await call('POST /certificates/:serial/unhold', `/certificates/${renewed.json.serial}/unhold`, {}), 200);
    ok(await call('POST /certificates/:serial/revoke', `/certificates/${serial}/revoke`, { reason: 'keyCompromise' }), 200);
    ok(await call('GET /certificates/:serial/status', `/certificates/${serial}/status`), 200);
    ok(await call('GET /certificates/:serial', `/certificates/${serial}`), 200);
    ok(await call('GET /certificates/:serial/status', `/certificates/${viaExpress.json.serial}/status`), 200);
    ok(await call('GET /profiles', '/profiles'), 200);

    // Tokens, enrollment credentials
    const token = await call('POST /tokens', '/tokens', {
      name: 'openapi',
      scopes: ['read', 'groups'],
      profiles: ['server'],
      expiresAt: '2099-01-01T00:00:00Z',
    });
    ok(token, 201);
    ok(await call('GET /tokens', '/tokens'), 200);
    ok(await call('DELETE /tokens/:id', `/tokens/${token.json.id}`), 204);
    const enrollment = await call('POST /enrollment-credentials', '/enrollment-credentials', { profile: 'server', nameSuffixes: ['openapi.example'], uses: 2 });
    ok(enrollment, 201);
    ok(await call('GET /enrollment-credentials', '/enrollment-credentials'), 200);
    ok(await call('POST /enrollment-credentials/:id/revoke', `/enrollment-credentials/${enrollment.json.id}/revoke`, {}), 200);

    // Key groups (the welcome and the rekey message are DER CMS)
    const group = await call('POST /groups', '/groups', { name: 'openapi' });
    ok(group, 201);
    const member = await api(server, 'POST', '/api/v1/certificates', { csr: csr('DNS:member.openapi.example'), profile: 'group-member' });
    ok(member, 201);
    ok(await call('POST /groups/:id/members', `/groups/${group.json.id}/members`, { serial: member.json.serial }), 201);
    ok(await call('GET /groups', '/groups'), 200);
    ok(await call('GET /groups/:id', `/groups/${group.json.name}`), 200);
    ok(await call('GET /groups/:id/members/:serial/welcome', `/groups/${group.json.id}/members/${member.json.serial}/welcome`), 200);
    ok(await call('GET /groups/:id/rekey', `/groups/${group.json.id}/rekey?since=0`), 200);
    ok(await call('DELETE /groups/:id/members/:serial', `/groups/${group.json.id}/members/${member.json.serial}`), 200);

    // Webhooks (a dead letter's retry: see below)
    const hook = await call('POST /webhooks', '/webhooks', { url: 'http://127.0.0.1:9/openapi-hook', events: ['certificate.revoked'] });
    ok(hook, 201);
    ok(await call('GET /webhooks', '/webhooks'), 200);
    ok(await call('GET /webhooks/:id', `/webhooks/${hook.json.id}`), 200);
    ok(await call('POST /webhooks/:id/deliveries/:delivery/retry', `/webhooks/${hook.json.id}/deliveries/dl_0000000000000000/retry`, {}), 404);
    ok(await call('DELETE /webhooks/:id', `/webhooks/${hook.json.id}`), 200);

    // Audit
    ok(await call('GET /audit', '/audit?limit=50'), 200);
    ok(await call('GET /audit/checkpoints', '/audit/checkpoints?limit=2'), 200);
    ok(await call('GET /openapi.json', '/openapi.json'), 200);

    // Every documented success answer was compared with a real one. The mTLS renewal answers
    // only on the HTTPS listener with a client certificate: test/mtls-renewal.test.ts checks its
    // body against its documented schema (renewedResponse, also POST /certificates/:serial/renew's).
    // A dead letter's retry needs a receiver failing N times: test/webhooks.test.ts makes one,
    // retries it over REST and checks the answer against deliveryResponse.
    const unseen: string[] = [];
    for (const [path, ops] of Object.entries(document.paths as Json))
      for (const [method, op] of Object.entries(ops as Json))
        for (const status of Object.keys(op.responses).filter((s) => s.startsWith('2'))) {
          const route = `${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`;
          const elsewhere = ['POST /certificates/renew', 'POST /webhooks/:id/deliveries/:delivery/retry'];
          if (!seen.has(`${route} ${status}`) && !elsewhere.includes(route)) unseen.push(`${route} ${status}`);
        }
    assert.deepEqual(unseen, [], 'every documented success answer is checked against a real one');
  });

  test('refusals are RFC 9457 problem documents, as documented', async () => {
    const none = { url: server.url, token: '' };
    const r401 = await api(none, 'GET', '/api/v1/cas', undefined, { authorization: '' });
    check('GET /cas', r401);
    ok(r401, 401);
    const readOnly = await api(server, 'POST', '/api/v1/tokens', { name: 'read only', scopes: ['read'] });
    const r403 = await call('POST /tokens', '/tokens', { name: 'x', scopes: ['read'] }, readOnly.json.token);
    ok(r403, 403);
    ok(await call('GET /cas/:id', '/cas/int-doesnotexist'), 404);
    ok(await call('GET /certificates', '/certificates?bogus=1'), 400);
    ok(await call('POST /groups', '/groups', { name: 'openapi-twice' }), 201);
    ok(await call('POST /groups', '/groups', { name: 'openapi-twice' }), 409);
    ok(await call('POST /certificates/:serial/revoke', '/certificates/00ff/revoke', { reason: 'no-such-reason' }), 400);
    const r415 = await api(server, 'POST', '/api/v1/tokens', 'name=x', { 'content-type': 'application/x-www-form-urlencoded' });
    check('POST /tokens', r415);
    ok(r415, 415);
    const renew = await api(server, 'POST', '/api/v1/certificates/renew', {});
    check('POST /certificates/renew', renew);
    ok(renew, 401);
    for (const s of ['400', '401', '403', '404', '409', '415'])
      assert.ok(
        [...seen].some((k) => k.endsWith(` ${s}`)),
        `a ${s} was checked`,
      );
  });
});
