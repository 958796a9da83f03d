/**
 * What an error means to a client: any error — ours, body-parser's, a database driver's, a
 * bug — as the SignetError (RFC 9457 problem) to answer with; unexpected exceptions get a
 * generic detail, so no internals leak. The HTTP edge (edge.ts) logs, counts and renders it.
 */
import type { RequestHandler } from 'express';
import type { Logger } from 'pino';
import { SignetError, isSignetError } from '../errors.js';
import { isDatabaseUnavailable } from '../storage/unavailable.js';

interface BodyParserError {
  type?: string;
  status?: number;
  limit?: number;
  expose?: boolean;
  message: string;
}

/** Any error (ours, a body parser's, a database driver's, a bug) as the SignetError to answer with. */
export function toSignetError(err: unknown): SignetError {
  if (isSignetError(err)) return err;
  if (isDatabaseUnavailable(err)) return new SignetError('unavailable', 'the database is unavailable; nothing was changed; retry later');
  // Express's router decodes path parameters before any route sees them; bad percent-encoding
  // (%ff%fe is no UTF-8) throws there. A backstop for every route: the client's fault, 400.
  if (err instanceof URIError) return new SignetError('bad-request', 'the request path is not valid percent-encoded UTF-8');
  const e = err as BodyParserError;
  switch (e?.type) {
    case 'entity.parse.failed': {
      // The parser's message quotes the body; a body may hold a secret, so only the position is kept.
      const pos = /position (\d+)/.exec(e.message)?.[1];
      return new SignetError('bad-request', `request body is not valid JSON${pos ? ` (error at position ${pos})` : ''}`);
    }
    case 'entity.too.large':
      return new SignetError('payload-too-large', `request body exceeds the ${e.limit ?? ''} byte limit`.replace('  ', ' '));
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new SignetError('unsupported-media-type', e.message);
    case 'request.aborted':
      return new SignetError('bad-request', 'request body was aborted by the client');
    default:
      break;
  }
  if (e && typeof e.status === 'number' && e.status >= 400 && e.status < 500 && e.expose)
    return new SignetError('bad-request', e.message, { status: e.status });
  return new SignetError('internal', 'an unexpected error occurred; it has been logged', { cause: err });
}

/**
 * A request whose client went away (or was cut off by the request timeout) before its body
 * arrived: body-parser's 'request.aborted', or node's own 'aborted' (ECONNRESET) on the
 * request stream. Not a server failure and not a refusal: there is nobody left to answer.
 */
export function isClientAbort(err: unknown): boolean {
  const e = err as { type?: string; code?: string; message?: string } | null;
  return e?.type === 'request.aborted' || (e?.code === 'ECONNRESET' && e.message === 'aborted');
}

/** The one log line for a client abort: info level, no stack, how much of the body came. */
export function logClientAbort(log: Logger | undefined, err: unknown, fields: Record<string, unknown> = {}): void {
  const e = err as { received?: number; expected?: number };
  log?.info(
    { ...fields, ...(typeof e.received === 'number' ? { received: e.received } : {}), ...(typeof e.expected === 'number' ? { expected: e.expected } : {}) },
    'request aborted by the client',
  );
}

export const notFound: RequestHandler = (req, _res, next) => {
  next(new SignetError('not-found', `no route for ${req.method} ${req.path}`));
};

/** POST bodies must be JSON: say so precisely instead of parsing nothing. */
export const requireJson: RequestHandler = (req, _res, next) => {
  if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'DELETE') return next();
  const length = Number(req.headers['content-length'] ?? 0);
  if (!req.is('application/json') && (length > 0 || req.headers['transfer-encoding'])) {
    return next(new SignetError('unsupported-media-type', `Content-Type must be application/json (got ${req.headers['content-type'] ?? 'none'})`));
  }
  next();
};
