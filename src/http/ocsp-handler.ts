/**
 * OCSP over HTTP (RFC 6960 Appendix A, RFC 5019), served by a bare node:http handler in front
 * of Express: this is the path every TLS client hits, and Express's per-request cost is several
 * times the cost of answering from the cache.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { OcspService } from '../ca/ocsp-service.js';
import { encodeOcspErrorResponse } from '../pki/ocsp.js';
import { SignetError } from '../errors.js';
import { isClientAbort, logClientAbort } from './problem.js';

export const MAX_OCSP_BODY = 8 * 1024;

function problem(res: ServerResponse, err: SignetError): void {
  res.writeHead(err.status, { 'content-type': 'application/problem+json' });
  res.end(JSON.stringify(err.toProblem('/ocsp')));
}

/**
 * The fixed caching headers of a pre-signed response, computed once per response: the same
 * Buffer is served until it is re-signed, and the ETag hash and date strings were most of
 * what a GET cost beyond a POST.
 */
const cachingHeaders = new WeakMap<Buffer, { etag: string; lastModified: string; expires: string }>();

function send(res: ServerResponse, answer: { der: Buffer; httpStatus: number; cacheable?: { thisUpdate: Date; nextUpdate: Date } }, isGet: boolean): void {
  const headers: Record<string, string | number> = { 'content-type': 'application/ocsp-response', 'content-length': answer.der.length };
  if (isGet && answer.cacheable) {
    let fixed = cachingHeaders.get(answer.der);
    if (!fixed) {
      fixed = { etag: `"${createHash('sha1').update(answer.der).digest('hex')}"`, lastModified: answer.cacheable.thisUpdate.toUTCString(), expires: answer.cacheable.nextUpdate.toUTCString() };
      cachingHeaders.set(answer.der, fixed);
    }
    const maxAge = Math.max(0, Math.floor((answer.cacheable.nextUpdate.getTime() - Date.now()) / 1000));
    headers['cache-control'] = `max-age=${maxAge}, public, no-transform, must-revalidate`;
    headers['last-modified'] = fixed.lastModified;
    headers.expires = fixed.expires;
    headers.etag = fixed.etag;
  } else {
    headers['cache-control'] = 'no-store';
  }
  res.writeHead(answer.httpStatus, headers);
  res.end(answer.der);
}

/** Beyond this much of an oversized body, the client is cut off instead of drained. */
const MAX_DISCARD = 1024 * 1024;

/**
 * Drains the rest of an oversized body, so the 413 reaches the client and the keep-alive
 * connection stays usable (a for-await `return` would destroy the request and leave the unread
 * body to be parsed as the next request); a client that keeps sending is cut off.
 */
function discard(req: IncomingMessage): void {
  let dropped = 0;
  req.on('data', (c: Buffer) => { dropped += c.length; if (dropped > MAX_DISCARD) req.destroy(); });
  req.resume();
}

/** The request body, or null (the rest discarded) when it exceeds MAX_OCSP_BODY. */
function readBody(req: IncomingMessage): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer) => {
      size += c.length;
      if (size <= MAX_OCSP_BODY) { chunks.push(c); return; }
      req.off('data', onData);
      req.off('end', onEnd);
      discard(req);
      resolve(null);
    };
    const onEnd = () => resolve(Buffer.concat(chunks));
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', reject);
    // A client gone mid-body (or cut off by the request timeout) may never send 'end'.
    req.once('close', () => { if (!req.complete) reject(Object.assign(new Error('OCSP request body cut short'), { type: 'request.aborted', received: size })); });
  });
}

/** Decodes the GET form: base64 (RFC 6960, URL-encoded) or base64url. */
function decodeGetPath(path: string): Buffer | null {
  let s: string;
  try { s = decodeURIComponent(path); } catch { return null; }
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(s)) return null;
  const der = Buffer.from(s.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  return der.length ? der : null;
}

export function createOcspHandler(ocsp: OcspService, log: Logger) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const url = req.url ?? '/';
    const run = async () => {
      if (req.method === 'GET' && url.startsWith('/ocsp/')) {
        const encoded = url.slice('/ocsp/'.length);
        if (encoded.length > MAX_OCSP_BODY * 2) return problem(res, new SignetError('payload-too-large', `OCSP GET request longer than ${MAX_OCSP_BODY * 2} characters; use POST`));
        const der = decodeGetPath(encoded);
        if (!der) return send(res, { der: encodeOcspErrorResponse('malformedRequest'), httpStatus: 400 }, false);
        return send(res, await ocsp.respond(der), true);
      }
      if (req.method === 'POST' && (url === '/ocsp' || url === '/ocsp/')) {
        const declared = Number(req.headers['content-length'] ?? 0);
        const body = declared > MAX_OCSP_BODY ? (discard(req), null) : await readBody(req);
        if (!body) return problem(res, new SignetError('payload-too-large', `OCSP request body exceeds ${MAX_OCSP_BODY} bytes`));
        return send(res, await ocsp.respond(body), false);
      }
      return problem(res, new SignetError('not-found', 'OCSP is served at POST /ocsp (application/ocsp-request) and GET /ocsp/{base64 request}', { status: req.method === 'GET' || req.method === 'POST' ? 404 : 405 }));
    };
    run().catch((err) => {
      if (isClientAbort(err)) { logClientAbort(log, err, { req: { method: req.method, url: '/ocsp' } }); res.destroy(); return; }
      log.error({ err }, 'OCSP request failed');
      if (!res.headersSent) send(res, { der: encodeOcspErrorResponse('internalError'), httpStatus: 500 }, false);
      else res.destroy();
    });
  };
}
