/**
 * Rate limits (express-rate-limit, in memory per process): one bucket per client address and
 * one per bearer token, so a flood from one client gets 429s while others keep their share.
 */
import { createHash } from 'node:crypto';
import { rateLimit, ipKeyGenerator } from 'express-rate-limit';
import type { RequestHandler } from 'express';
import { SignetError } from '../errors.js';
import { sendProblem } from './problem.js';

export function rateLimits(perAddress: number, perToken: number): RequestHandler[] {
  const handler: Parameters<typeof rateLimit>[0] extends infer O ? O extends { handler?: infer H } ? H : never : never = (req, res, _next, options) => {
    res.setHeader('Retry-After', String(Math.ceil(options.windowMs / 1000)));
    sendProblem(res, new SignetError('rate-limited', `too many requests from this ${options.identifier ?? 'client'}: at most ${options.limit} per minute; retry after the Retry-After delay`), req.originalUrl);
  };
  const out: RequestHandler[] = [];
  if (perAddress > 0) {
    out.push(rateLimit({
      windowMs: 60_000, limit: perAddress, standardHeaders: 'draft-7', legacyHeaders: false, identifier: 'address',
      keyGenerator: (req) => ipKeyGenerator(req.ip ?? 'unknown'), handler,
    }));
  }
  if (perToken > 0) {
    out.push(rateLimit({
      windowMs: 60_000, limit: perToken, standardHeaders: 'draft-7', legacyHeaders: false, identifier: 'token',
      skip: (req) => !req.headers.authorization,
      // Keyed by a hash of the header: no database lookup before the limit, and no secret kept in memory.
      keyGenerator: (req) => createHash('sha256').update(String(req.headers.authorization)).digest('hex'), handler,
    }));
  }
  return out;
}
