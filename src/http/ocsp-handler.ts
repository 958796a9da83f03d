/**
 * OCSP over HTTP (RFC 6960 Appendix A, RFC 5019), served by a bare node:http handler in front
 * of Express: this is the path every TLS client hits, and Express's per-request cost is several
 * times the cost of answering from the cache. Request id and log line, metrics, security
 * headers (the binary set on an OCSP answer) and problem documents come from the edge
 * (edge.ts), as on every other path.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createHash } from 'node:crypto';
import type { OcspService } from '../ca/ocsp-service.js';
import { encodeOcspErrorResponse, MAX_OCSP_REQUEST_BYTES } from '../pki/ocsp.js';
import { SignetError } from '../errors.js';
import { isClientAbort } from './problem.js';
import type { Edge, Exchange } from './edge.js';

export const MAX_OCSP_BODY = MAX_OCSP_REQUEST_BYTES;

/**
 * The fixed caching headers of a pre-signed response, computed once per response: the same
 * Buffer is served until it is re-signed, and the ETag hash and date strings were most of
 * what a GET cost beyond a POST.
 */
const cachingHeaders = new WeakMap<Buffer, { etag: string; lastModified: string; expires: string }>();

type Answer = { der: Buffer; httpStatus: number; cacheable?: { thisUpdate: Date; nextUpdate: Date } };

function send(edge: Edge, x: Exchange, res: ServerResponse, answer: Answer, isGet: boolean): void {
  const headers: (string | number)[] = ['content-type', 'application/ocsp-response'];
  if (isGet && answer.cacheable) {
    let fixed = cachingHeaders.get(answer.der);
    if (!fixed) {
      fixed = {
        etag: `"${createHash('sha1').update(answer.der).digest('hex')}"`,
        lastModified: answer.cacheable.thisUpdate.toUTCString(),
        expires: answer.cacheable.nextUpdate.toUTCString(),
      };
      cachingHeaders.set(answer.der, fixed);
    }
    const maxAge = Math.max(0, Math.floor((answer.cacheable.nextUpdate.getTime() - Date.now()) / 1000));
    headers.push(
      'cache-control',
      `max-age=${maxAge}, public, no-transform, must-revalidate`,
      'last-modified',
      fixed.lastModified,
      'expires',
      fixed.expires,
      'etag',
      fixed.etag,
    );
  } else {
    headers.push('cache-control', 'no-store');
  }
  edge.send(x, res, answer.httpStatus, headers, answer.der, 'binary');
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
  req.on('data', (c: Buffer) => {
    dropped += c.length;
    if (dropped > MAX_DISCARD) req.destroy();
  });
  req.resume();
}

/** The request body, or null (the rest discarded) when it exceeds MAX_OCSP_BODY. */
function readBody(req: IncomingMessage): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer) => {
      size += c.length;
      if (size <= MAX_OCSP_BODY) {
        chunks.push(c);
        return;
      }
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
    req.once('close', () => {
      if (!req.complete) reject(Object.assign(new Error('OCSP request body cut short'), { type: 'request.aborted', received: size }));
    });
  });
}

/** Decodes the GET form: base64 (RFC 6960, URL-encoded) or base64url. */
function decodeGetPath(path: string): Buffer | null {
  let s: string;
  try {
    s = decodeURIComponent(path);
  } catch {
    return null;
  }
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(s)) return null;
  const der = Buffer.from(s.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  return der.length ? der : null;
}

/** Metric route labels, in Express's spelling. */
const ROUTE_POST = '/ocsp';
const ROUTE_GET = '/ocsp/:request';

export function createOcspHandler(ocsp: OcspService, edge: Edge) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    // A query string is no part of an OCSP request (RFC 6960 A.1); caches and proxies add them.
    const url = (req.url ?? '/').split('?', 1)[0]!;
    // HEAD is GET without the body (RFC 9110 §9.3.2); node leaves the body out.
    const isGet = (req.method === 'GET' || req.method === 'HEAD') && url.startsWith('/ocsp/');
    const isPost = req.method === 'POST' && (url === '/ocsp' || url === '/ocsp/');
    const x = edge.begin(req, isGet ? ROUTE_GET : isPost ? ROUTE_POST : 'unmatched');
    const refuse = (err: SignetError) => edge.sendProblem(x, res, edge.refusal(x, err), '/ocsp');
    const run = async () => {
      if (isGet) {
        const encoded = url.slice('/ocsp/'.length);
        if (encoded.length > MAX_OCSP_BODY * 2)
          return refuse(new SignetError('payload-too-large', `OCSP GET request longer than ${MAX_OCSP_BODY * 2} characters; use POST`));
        const der = decodeGetPath(encoded);
        if (!der) return send(edge, x, res, { der: encodeOcspErrorResponse('malformedRequest'), httpStatus: 400 }, false);
        return send(edge, x, res, await ocsp.respond(der), true);
      }
      if (isPost) {
        const declared = Number(req.headers['content-length'] ?? 0);
        let body: Buffer | null = null;
        if (declared > MAX_OCSP_BODY) discard(req);
        else body = await readBody(req);
        if (!body) return refuse(new SignetError('payload-too-large', `OCSP request body exceeds ${MAX_OCSP_BODY} bytes`));
        return send(edge, x, res, await ocsp.respond(body), false);
      }
      // An OCSP resource asked with a method it does not have: 405 naming the ones it has
      // (RFC 9110 §15.5.6). Anything else under /ocsp is not a resource: 404.
      const allow = url === '/ocsp' ? 'POST' : url === '/ocsp/' ? 'GET, HEAD, POST' : url.startsWith('/ocsp/') ? 'GET, HEAD' : null;
      if (allow) res.setHeader('allow', allow);
      return refuse(
        new SignetError('not-found', 'OCSP is served at POST /ocsp (application/ocsp-request) and GET /ocsp/{base64 request}', {
          status: allow ? 405 : 404,
        }),
      );
    };
    run().catch((err: unknown) => {
      if (isClientAbort(err)) {
        edge.aborted(x, res, err);
        return;
      }
      // Logged as every failure is; an OCSP client is answered in OCSP (RFC 6960 §2.3).
      edge.refusal(x, err);
      if (!res.headersSent && !res.destroyed) send(edge, x, res, { der: encodeOcspErrorResponse('internalError'), httpStatus: 500 }, false);
      else res.destroy();
    });
  };
}
