import type { Request, RequestHandler } from 'express';
import { SignetError } from '../errors.js';
import { credentialsOf, parseAuthorization } from './edge.js';
import { authenticate, type TokenGrant } from '../ca/tokens.js';
import { authorize, OPERATIONS, type Operation, type Principal } from '../ca/authorization.js';
import type { Requester } from '../ca/issuance.js';
import type { CaContext } from '../ca/context.js';
import { authenticateHolder, type HolderAuthority } from '../ca/holder-authentication.js';
import { presentedCertificate } from './client-certificate.js';

declare module 'express-serve-static-core' {
  interface Request {
    grant?: TokenGrant;
    principal?: Principal;
  }
}

/** A route's guard, tagged with the operation it authorises (the authorisation matrix test reads the tag). */
export type OperationGuard = RequestHandler & { operation: Operation };

// The Authorization header is parsed at the edge (one parse per request, one token identity
// for every path); re-exported for the routes and tests that have always imported it here.
export { parseAuthorization, credentialsOf, type Credentials } from './edge.js';

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
  const guard: RequestHandler = async (req, _res, next) => {
    try {
      const c = credentialsOf(req);
      if (c.kind === 'none') throw new SignetError('unauthorized', 'missing Authorization: Bearer <token> header');
      if (c.kind === 'malformed') throw new SignetError('unauthorized', 'Authorization header must be "Bearer <token>"');
      const grant = req.grant ?? (await authenticate(ctx, c.token));
      req.grant = grant;
      req.principal = { kind: 'token', grant };
      authorize(req.principal, op);
    } catch (e) {
      // A 401's WWW-Authenticate is added where every problem is rendered (edge.ts).
      return next(e);
    }
    next();
  };
  return Object.assign(guard, { operation: op });
}

/**
 * Authentication by the TLS client certificate being acted on (mTLS renewal): the certificate
 * the client presented to the HTTPS listener must be one Signet issued and may still renew
 * (ca/holder-authentication.ts); the principal is its holder, then authorization.ts decides
 * whether the holder may perform `op` (renewing itself only). No token is read: an
 * Authorization header neither helps nor hurts. 401 without a usable certificate.
 */
export function requireClientCertificate(ctx: CaContext, authority: HolderAuthority, op: Operation): OperationGuard {
  const guard: RequestHandler = async (req, res, next) => {
    let presented: Uint8Array | null = null;
    try {
      presented = presentedCertificate(req);
      const holder = await authenticateHolder(ctx, authority, presented, { sourceIp: req.ip });
      req.principal = holder;
      authorize(holder, op);
    } catch (e) {
      // A refusal authenticateHolder recorded (the holder of a stored certificate) carries its
      // event as the cause; any other is anonymous, counted by auditRefusals.
      if (presented && e instanceof SignetError && e.cause) res.locals.refusalAudited = true;
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
  if (!req.principal) throw new Error('requesterOf on a route without requireAuth or requireClientCertificate');
  return { principal: req.principal, sourceIp: req.ip };
}
