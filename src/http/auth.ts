import type { IncomingMessage } from 'node:http';
import type { Request, RequestHandler } from 'express';
import { SignetError, isSignetError } from '../errors.js';
import { authenticate, hashSecret, type TokenGrant } from '../ca/tokens.js';
import { authorize, OPERATIONS, type Operation, type Principal } from '../ca/authorization.js';
import type { Requester } from '../ca/issuance.js';
import type { CaContext } from '../ca/context.js';

declare module 'express-serve-static-core' {
  interface Request { grant?: TokenGrant; principal?: Principal }
}

/** A route's guard, tagged with the operation it authorises (the authorisation matrix test reads the tag). */
export type OperationGuard = RequestHandler & { operation: Operation };

/**
 * What an Authorization header presents, parsed once per request and shared by every consumer
 * (rate limits, authentication, audit), so that no spelling of one token counts as another.
 * `identity` is the token's SHA-256 (not the keyed hash the token table stores), never the token.
 */
export type Credentials =
  | { kind: 'none' }
  | { kind: 'malformed' }
  | { kind: 'bearer'; token: string; identity: string };

/**
 * RFC 7235 §2.1 / RFC 6750 §2.1: `credentials = auth-scheme 1*SP b64token`, the scheme
 * case-insensitive. Only spaces separate: a tab (or any other whitespace) makes the header
 * malformed rather than another spelling of the same token. Node has already trimmed
 * surrounding whitespace from the field value.
 */
const BEARER = /^([A-Za-z]+) +([A-Za-z0-9\-._~+/]+=*)$/;

export function parseAuthorization(header: string | undefined): Credentials {
  if (header === undefined || header === '') return { kind: 'none' };
  const m = BEARER.exec(header);
  if (!m || m[1]!.toLowerCase() !== 'bearer') return { kind: 'malformed' };
  return { kind: 'bearer', token: m[2]!, identity: hashSecret(m[2]!) };
}

const parsed = new WeakMap<IncomingMessage, Credentials>();

/** The request's credentials, parsed on first use and remembered for the rest of the request. */
export function credentialsOf(req: IncomingMessage): Credentials {
  let c = parsed.get(req);
  if (!c) parsed.set(req, (c = parseAuthorization(req.headers.authorization)));
  return c;
}

/** The token of an `Authorization: Bearer <token>` header, or null. */
export function bearerToken(header: string): string | null {
  const c = parseAuthorization(header);
  return c.kind === 'bearer' ? c.token : null;
}

/**
 * Bearer-token authentication, then authorization.ts decides whether the token may perform
 * `op` at all; 401 without a usable token, 403 without the scope. Limits that depend on the
 * certificate (profiles, name suffixes) are checked by the service on the stored row.
 */
export function requireAuth(ctx: CaContext, op: Operation): OperationGuard {
  if (OPERATIONS[op].scope === null) throw new Error(`operation ${op} is public: use openOperation`);
  const guard: RequestHandler = async (req, res, next) => {
    try {
      const c = credentialsOf(req);
      if (c.kind === 'none') throw new SignetError('unauthorized', 'missing Authorization: Bearer <token> header');
      if (c.kind === 'malformed') throw new SignetError('unauthorized', 'Authorization header must be "Bearer <token>"');
      const grant = req.grant ?? (await authenticate(ctx, c.token));
      req.grant = grant;
      req.principal = { kind: 'token', grant };
      authorize(req.principal, op);
    } catch (e) {
      // RFC 7235 §3.1 / RFC 6750 §3: a 401 names the scheme the client should use.
      if (isSignetError(e) && e.status === 401) res.set('WWW-Authenticate', req.headers.authorization ? 'Bearer realm="signet", error="invalid_token"' : 'Bearer realm="signet"');
      return next(e);
    }
    next();
  };
  return Object.assign(guard, { operation: op });
}

/** The guard of a public operation (no token): it names the operation and lets everyone through. */
export function openOperation(op: Operation): OperationGuard {
  if (OPERATIONS[op].scope !== null) throw new Error(`operation ${op} needs the '${OPERATIONS[op].scope}' scope: use requireAuth`);
  const guard: RequestHandler = (_req, _res, next) => next();
  return Object.assign(guard, { operation: op });
}

/** The authenticated caller of a guarded route, as services take it. */
export function requesterOf(req: Request): Requester {
  if (!req.principal) throw new Error('requesterOf on a route without requireAuth');
  return { principal: req.principal, sourceIp: req.ip };
}
