/**
 * Rate limits (express-rate-limit, in memory per process): one bucket per client address and
 * one per bearer token, so a flood from one client gets 429s while others keep their share.
 *
 * The buckets are explicit MemoryStores so that the bare issuance handler (issue-handler.ts)
 * counts into the very same buckets as the Express middleware: one client, one budget,
 * whichever path served it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { rateLimit, MemoryStore } from 'express-rate-limit';
import type { RequestHandler } from 'express';
import { SignetError } from '../errors.js';
import { credentialsOf, RATE_WINDOW_SECONDS } from './edge.js';
import { addressKey } from './client-address.js';

const WINDOW_MS = RATE_WINDOW_SECONDS * 1000;

interface Limiter {
  identifier: 'address' | 'token';
  limit: number;
  store: MemoryStore;
  key(req: IncomingMessage, ip: string): string | null;
}

export interface RateLimits {
  /** Express middlewares, in order (address first). */
  middlewares: RequestHandler[];
  /**
   * The same check for a request served outside Express: counts it, sets the draft-7
   * RateLimit headers, and returns the 429 to send or null.
   */
  check(req: IncomingMessage, res: ServerResponse, ip: string): Promise<SignetError | null>;
}

const limitError = (identifier: string, limit: number) =>
  new SignetError('rate-limited', `too many requests from this ${identifier}: at most ${limit} per minute; retry after the Retry-After delay`);

export function rateLimits(perAddress: number, perToken: number): RateLimits {
  const limiters: Limiter[] = [];
  if (perAddress > 0) limiters.push({ identifier: 'address', limit: perAddress, store: new MemoryStore(), key: (_req, ip) => addressKey(ip) });
  if (perToken > 0) {
    limiters.push({
      identifier: 'token',
      limit: perToken,
      store: new MemoryStore(),
      // Keyed by the token's hash from the one parse of the header (auth.ts): every spelling of
      // the scheme shares the token's budget, nothing is looked up before the limit, and no
      // secret is kept in memory. A request without a well-formed Bearer header is refused
      // (401) without database work; the address limit counts it.
      key: (req) => {
        const c = credentialsOf(req);
        return c.kind === 'bearer' ? c.identity : null;
      },
    });
  }
  const middlewares = limiters.map((l) =>
    rateLimit({
      windowMs: WINDOW_MS,
      limit: l.limit,
      standardHeaders: 'draft-7',
      legacyHeaders: false,
      identifier: l.identifier,
      store: l.store,
      skip: (req) => l.key(req, req.ip ?? 'unknown') === null,
      keyGenerator: (req) => l.key(req, req.ip ?? 'unknown')!,
      // The library guesses from keyGenerator's source text that it uses req.ip raw; it does not:
      // the address key goes through addressKey (ipKeyGenerator: IPv6 grouped by /56). Without this the
      // false alarm is printed, unstructured, at every start.
      validate: { keyGeneratorIpFallback: false },
      // A refusal like any other: counted and answered by the edge (edge.ts), which adds
      // Retry-After to every 429. The ACME router renders its own problems, so the header is
      // also set here for it.
      handler: (_req, res, next) => {
        res.setHeader('Retry-After', String(RATE_WINDOW_SECONDS));
        next(limitError(l.identifier, l.limit));
      },
    }),
  );
  return {
    middlewares,
    async check(req, res, ip) {
      for (const l of limiters) {
        const key = l.key(req, ip);
        if (key === null) continue;
        const { totalHits, resetTime } = await l.store.increment(key);
        const remaining = Math.max(0, l.limit - totalHits);
        const reset = resetTime ? Math.max(0, Math.ceil((resetTime.getTime() - Date.now()) / 1000)) : WINDOW_MS / 1000;
        res.setHeader('RateLimit-Policy', `${l.limit};w=${WINDOW_MS / 1000}`);
        res.setHeader('RateLimit', `limit=${l.limit}, remaining=${remaining}, reset=${reset}`);
        if (totalHits > l.limit) return limitError(l.identifier, l.limit);
      }
      return null;
    },
  };
}
