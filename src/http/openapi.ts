/**
 * The OpenAPI 3.1 description of /api/v1 (GET /api/v1/openapi.json), generated from what the
 * server really does: the paths, methods and operations are read from the mounted router (each
 * route's guard names its operation, authorization.ts says which scope that needs), the
 * parameters and request bodies are the zod schemas the routes validate with, and the response
 * bodies are the zod schemas the routes' files declare (checked against real answers in
 * test/openapi.test.ts). What a route adds is one documentRoute() call next to it.
 */
import type { Router } from 'express';
import { z, type ZodTypeAny } from 'zod';
import { zodToJsonSchema } from 'zod-to-json-schema';
import { OPERATIONS, type Operation } from '../ca/authorization.js';
import { SCOPES } from '../ca/tokens.js';
import { PROBLEM_BASE } from '../errors.js';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
/** 'METHOD /path' with Express's :param syntax, relative to /api/v1: as the router knows the route. */
export type RouteKey = `${HttpMethod} /${string}`;

export interface ResponseDoc {
  description: string;
  /** The JSON body; absent for an empty body (204) or a binary one (contentType). */
  schema?: ZodTypeAny;
  /** A body that is not JSON (e.g. application/pkcs7-mime). */
  contentType?: string;
  headers?: Record<string, string>;
}

export interface RouteDoc {
  summary: string;
  description?: string;
  /** req.params' schema: a strict z.object of the path's :params. */
  params?: z.AnyZodObject;
  /** req.query's schema: a strict z.object. */
  query?: z.AnyZodObject;
  /** The JSON body's schema (the one parseBody uses). */
  body?: ZodTypeAny;
  /** Successful answers by status. */
  responses: Record<number, ResponseDoc>;
  /** Refusals particular to this route (404, 409…), with what they mean; the general ones are added. */
  errors?: Record<number, string>;
  /** Authenticated by a TLS client certificate instead of a token (mTLS renewal). */
  clientCertificate?: true;
}

const registry = new Map<RouteKey, RouteDoc>();

/**
 * Describes one /api/v1 route; called next to the route's definition. The same description
 * again is harmless (a router built twice); a different one for the same route is a bug.
 */
export function documentRoute(route: RouteKey, doc: RouteDoc): void {
  const had = registry.get(route);
  if (had && had !== doc && had.summary !== doc.summary) throw new Error(`${route} is documented twice`);
  registry.set(route, doc);
}

/** Every documented route (for the test that compares them with the mounted ones). */
export const documentedRoutes = (): ReadonlyMap<RouteKey, RouteDoc> => registry;

/** RFC 9457 problem details, as every refusal and failure of /api/v1 is answered (errors.ts). */
export const problemSchema = z
  .object({
    type: z.string().url().describe(`${PROBLEM_BASE}<name>: bad-request, not-found, conflict, unauthorized, forbidden, rate-limited, unavailable, internal…`),
    title: z.string(),
    status: z.number().int().min(400).max(599),
    detail: z.string().describe('What exactly was wrong, precise enough to fix the request'),
    instance: z.string().optional().describe('The request path'),
  })
  .passthrough()
  .describe('RFC 9457 problem details (application/problem+json)');

// ---- Shared response pieces ------------------------------------------------------------------

/** A Date as JSON carries it. */
export const dateTime = z.string().datetime();
export const pemCertificate = z.string().startsWith('-----BEGIN CERTIFICATE-----').describe('PEM certificate');
export const hexString = z.string().regex(/^[0-9a-f]+$/);
/** The list envelope most collections use. */
export const itemsOf = <T extends ZodTypeAny>(item: T) => z.object({ items: z.array(item) }).strict();

// ---- The document ------------------------------------------------------------------------------

interface LayerLike {
  route?: { path: string; methods: Record<string, boolean>; stack: { handle: { operation?: Operation } }[] };
  handle?: { stack?: LayerLike[] };
}

export interface MountedRoute {
  route: RouteKey;
  operation: Operation | undefined;
}

/** The routes a router serves, each with the operation its guard (first handler) names. */
export function mountedRoutes(router: Router): MountedRoute[] {
  const out: MountedRoute[] = [];
  const walk = (stack: LayerLike[]) => {
    for (const layer of stack) {
      if (layer.route) {
        for (const m of Object.keys(layer.route.methods).filter((k) => layer.route!.methods[k] && k !== '_all'))
          out.push({ route: `${m.toUpperCase() as HttpMethod} ${layer.route.path as `/${string}`}`, operation: layer.route.stack[0]?.handle.operation });
      } else if (layer.handle?.stack) walk(layer.handle.stack);
    }
  };
  walk((router as unknown as { stack: LayerLike[] }).stack);
  return out;
}

type Json = Record<string, unknown>;

/** JSON Schema (2020-12 compatible, as OpenAPI 3.1 uses) of what a client sends or receives. */
function jsonSchema(schema: ZodTypeAny, side: 'input' | 'output'): Json {
  const s = zodToJsonSchema(schema, {
    target: 'jsonSchema2019-09',
    $refStrategy: 'none',
    // A request is described by what it may be (before transforms); a response by what it is.
    effectStrategy: 'input',
    pipeStrategy: side,
    // 'escape' writes startsWith('-----BEGIN …') as \-\-…, which is no valid pattern under the
    // unicode flag JSON Schema validators use; the literals here have no regex specials.
    patternStrategy: 'preserve',
  }) as Json;
  delete s.$schema;
  return exclusiveBoundsAsNumbers(s);
}

/**
 * zod-to-json-schema writes a strict bound (z.number().positive()) for any target but draft 7 in
 * draft 4's form, `exclusiveMinimum: true` beside `minimum`; since draft 6 (and in 2020-12, what
 * OpenAPI 3.1 uses) the bound is the number itself.
 */
function exclusiveBoundsAsNumbers(node: unknown): Json {
  if (Array.isArray(node)) node.forEach(exclusiveBoundsAsNumbers);
  else if (node && typeof node === 'object') {
    const o = node as Json;
    for (const [flag, bound] of [
      ['exclusiveMinimum', 'minimum'],
      ['exclusiveMaximum', 'maximum'],
    ] as const) {
      if (o[flag] === true && typeof o[bound] === 'number') {
        o[flag] = o[bound];
        delete o[bound];
      } else if (o[flag] === false) delete o[flag];
    }
    for (const v of Object.values(o)) exclusiveBoundsAsNumbers(v);
  }
  return node as Json;
}

const pathOf = (route: RouteKey) => route.slice(route.indexOf(' ') + 1).replace(/:(\w+)/g, '{$1}');
const methodOf = (route: RouteKey) => route.slice(0, route.indexOf(' ')).toLowerCase();
function operationId(route: RouteKey): string {
  const words = route
    .slice(route.indexOf(' ') + 1)
    .split('/')
    .filter(Boolean)
    .map((w) => (w.startsWith(':') ? `by-${w.slice(1)}` : w.replace(/\.json$/, '')));
  return [methodOf(route), ...words.flatMap((w) => w.split('-'))].map((w, i) => (i ? w[0]!.toUpperCase() + w.slice(1) : w)).join('');
}

const problem = (description: string) => ({ description, content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } });

function parameters(doc: RouteDoc): Json[] {
  const out: Json[] = [];
  for (const [where, schema] of [
    ['path', doc.params],
    ['query', doc.query],
  ] as const) {
    if (!schema) continue;
    for (const [name, field] of Object.entries(schema.shape as Record<string, ZodTypeAny>)) {
      // Optionality is the parameter's `required`, not part of its value's schema.
      const s = jsonSchema(field instanceof z.ZodOptional ? field.unwrap() : field, 'input');
      const description = s.description;
      delete s.description;
      out.push({ name, in: where, required: where === 'path' || !field.isOptional(), ...(description ? { description } : {}), schema: s });
    }
  }
  return out;
}

function operationObject(route: RouteKey, operation: Operation | undefined, doc: RouteDoc): Json {
  const scope = operation ? OPERATIONS[operation].scope : null;
  const responses: Json = {};
  for (const [status, r] of Object.entries(doc.responses)) {
    responses[status] = {
      description: r.description,
      ...(r.headers ? { headers: Object.fromEntries(Object.entries(r.headers).map(([h, d]) => [h, { description: d, schema: { type: 'string' } }])) } : {}),
      ...(r.schema
        ? { content: { 'application/json': { schema: jsonSchema(r.schema, 'output') } } }
        : r.contentType
          ? { content: { [r.contentType]: { schema: { type: 'string', contentMediaType: r.contentType } } } }
          : {}),
    };
  }
  responses['400'] = problem(
    'The request is malformed or refused by policy: a path or query parameter or the body fails its schema, or (issuance) the CSR, its key or a name breaks the rules; the detail names which and why',
  );
  if (doc.clientCertificate) responses['401'] = problem('No usable TLS client certificate was presented (plain HTTP cannot carry one)');
  else if (scope) {
    responses['401'] = problem('Missing, malformed, unknown, expired or revoked bearer token (WWW-Authenticate: Bearer)');
    responses['403'] = problem(`The token lacks the '${scope}' scope, or one of its limits (profiles, name suffixes, groups) excludes the target`);
  }
  for (const [status, d] of Object.entries(doc.errors ?? {})) responses[status] = problem(d);
  if (doc.body) {
    responses['413'] = problem('The body exceeds the size limit');
    responses['415'] = problem('The body is not application/json');
  }
  responses['429'] = problem('Rate limit reached (per address, and per token); see Retry-After');
  responses['4XX'] = problem('Any other refusal');
  responses['5XX'] = problem('A server-side failure (503: the database is unavailable; nothing was changed)');
  const needsBody = doc.body !== undefined && !doc.body.safeParse({}).success;
  return {
    operationId: operationId(route),
    summary: doc.summary,
    ...(doc.description ? { description: doc.description } : {}),
    tags: [pathOf(route).split('/')[1]!],
    ...(operation ? { 'x-signet-operation': operation } : {}),
    security: doc.clientCertificate ? [{ clientCertificate: [] }] : scope ? [{ bearerToken: [scope] }] : [],
    ...(doc.params || doc.query ? { parameters: parameters(doc) } : {}),
    ...(doc.body ? { requestBody: { required: needsBody, content: { 'application/json': { schema: jsonSchema(doc.body, 'input') } } } } : {}),
    responses,
  };
}

export interface OpenApiResult {
  document: Json;
  /** Mounted routes without a documentRoute() entry: each is a bug (test/openapi.test.ts). */
  undocumented: RouteKey[];
}

/** The document for the routes `router` serves (mounted at /api/v1). */
export function openApiDocument(router: Router): OpenApiResult {
  const paths: Record<string, Json> = {};
  const undocumented: RouteKey[] = [];
  for (const { route, operation } of mountedRoutes(router)) {
    const doc = registry.get(route);
    if (!doc) {
      undocumented.push(route);
      continue;
    }
    (paths[pathOf(route)] ??= {})[methodOf(route)] = operationObject(route, operation, doc);
  }
  const document = {
    openapi: '3.1.0',
    info: {
      title: 'Signet REST API',
      version: '1',
      description:
        'The REST API of Signet, a private certificate authority. Every refusal and failure is an RFC 9457 problem document (application/problem+json). ' +
        'Generated by the server from the schemas it validates requests with.',
    },
    servers: [{ url: '/api/v1' }],
    paths,
    components: {
      schemas: { Problem: jsonSchema(problemSchema, 'output') },
      securitySchemes: {
        bearerToken: {
          type: 'http',
          scheme: 'bearer',
          description:
            `A Signet API token (sgt_…), created with \`signet token create\` or POST /tokens. Its scopes (${SCOPES.join(', ')}) decide what it may do; ` +
            "each operation's security requirement names the scope it needs, and 'admin' implies every scope. A token may further be limited to profiles, name suffixes or key groups.",
        },
        clientCertificate: {
          type: 'mutualTLS',
          description: 'The TLS client certificate being renewed, presented to the HTTPS listener (profiles with renewWithClientCertificate)',
        },
      },
    },
  };
  return { document, undocumented };
}
