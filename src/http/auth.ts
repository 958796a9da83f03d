import type { RequestHandler } from 'express';
import { SignetError, isSignetError } from '../errors.js';
import { authenticate, requireScope, type Scope, type TokenGrant } from '../ca/tokens.js';
import type { CaContext } from '../ca/context.js';

declare module 'express-serve-static-core' {
  interface Request { grant?: TokenGrant }
}

/** The token of an `Authorization: Bearer <token>` header, or null. */
export function bearerToken(header: string): string | null {
  return /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1] ?? null;
}

/** Bearer-token authentication plus a scope check; 401 without a usable token, 403 without the scope. */
export function requireAuth(ctx: CaContext, scope: Scope): RequestHandler {
  return async (req, res, next) => {
    try {
      const header = req.headers.authorization;
      if (!header) throw new SignetError('unauthorized', 'missing Authorization: Bearer <token> header');
      const token = bearerToken(header);
      if (!token) throw new SignetError('unauthorized', 'Authorization header must be "Bearer <token>"');
      const grant = req.grant ?? (await authenticate(ctx, token));
      req.grant = grant;
      requireScope(grant, scope);
    } catch (e) {
      // RFC 7235 §3.1 / RFC 6750 §3: a 401 names the scheme the client should use.
      if (isSignetError(e) && e.status === 401) res.set('WWW-Authenticate', req.headers.authorization ? 'Bearer realm="signet", error="invalid_token"' : 'Bearer realm="signet"');
      return next(e);
    }
    next();
  };
}
