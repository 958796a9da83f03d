import type { Request, RequestHandler } from 'express';
import { SignetError, isSignetError } from '../errors.js';
import { authenticate, type TokenGrant } from '../ca/tokens.js';
import { authorize, OPERATIONS, type Operation, type Principal } from '../ca/authorization.js';
import type { Requester } from '../ca/issuance.js';
import type { CaContext } from '../ca/context.js';

declare module 'express-serve-static-core' {
  interface Request { grant?: TokenGrant; principal?: Principal }
}

/** A route's guard, tagged with the operation it authorises (the authorisation matrix test reads the tag). */
export type OperationGuard = RequestHandler & { operation: Operation };

/** The token of an `Authorization: Bearer <token>` header, or null. */
export function bearerToken(header: string): string | null {
  return /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1] ?? null;
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
      const header = req.headers.authorization;
      if (!header) throw new SignetError('unauthorized', 'missing Authorization: Bearer <token> header');
      const token = bearerToken(header);
      if (!token) throw new SignetError('unauthorized', 'Authorization header must be "Bearer <token>"');
      const grant = req.grant ?? (await authenticate(ctx, token));
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
