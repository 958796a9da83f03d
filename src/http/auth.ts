import type { RequestHandler } from 'express';
import { SignetError } from '../errors.js';
import { authenticate, requireScope, type Scope, type TokenGrant } from '../ca/tokens.js';
import type { CaContext } from '../ca/context.js';

declare module 'express-serve-static-core' {
  interface Request { grant?: TokenGrant }
}

/** Bearer-token authentication plus a scope check; 401 without a usable token, 403 without the scope. */
export function requireAuth(ctx: CaContext, scope: Scope): RequestHandler {
  return async (req, _res, next) => {
    const header = req.headers.authorization;
    if (!header) return next(new SignetError('unauthorized', 'missing Authorization: Bearer <token> header'));
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m) return next(new SignetError('unauthorized', 'Authorization header must be "Bearer <token>"'));
    const grant = req.grant ?? (await authenticate(ctx, m[1]!));
    req.grant = grant;
    requireScope(grant, scope);
    next();
  };
}
