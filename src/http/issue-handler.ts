/**
 * POST /api/v1/certificates served by a bare node:http handler in front of Express, like OCSP:
 * it is the path mass re-issuance hits, and Express 5 with its middleware costs more per
 * request here (~200 µs: router, body parser, pino-http, helmet, metrics) than signing does.
 *
 * It takes only the plain case — exact path, JSON content type, a declared length within the
 * limit, a Bearer header — and leaves everything else to Express untouched (nothing read), so
 * the unusual requests keep their one implementation. What it takes it serves exactly as the
 * Express route would: same rate-limit buckets, same authentication and scope check, same
 * schema, same problem documents, refusal audit, security headers, metrics and logs.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { CaContext } from '../ca/context.js';
import type { Issuance } from '../ca/issuance.js';
import { authenticate, type TokenGrant } from '../ca/tokens.js';
import { authorize, type Principal } from '../ca/authorization.js';
import type { Metrics } from '../observability/metrics.js';
import { SignetError } from '../errors.js';
import { auditRefusal } from './audit-refusals.js';
import { credentialsOf } from './auth.js';
import { isClientAbort, logClientAbort, toSignetError } from './problem.js';
import type { RateLimits } from './rate-limit.js';
import { issueSchema, issuedJson } from './routes/certificates.js';
import { parseBody } from './validate.js';

export const ISSUE_PATH = '/api/v1/certificates';
const ROUTE = '/certificates';

export interface IssueHandlerOptions {
  ctx: CaContext;
  issuance: Issuance;
  metrics: Metrics;
  limits: RateLimits;
  bodyLimit: number;
  /** The client address as Express computes it (trust proxy applied). */
  clientIp(req: IncomingMessage): string;
  /** Headers every response carries (security-headers.ts). */
  headers: Record<string, string>;
}

/** application/json, optionally with charset=utf-8: the only body this path reads. */
function isPlainJson(contentType: string | undefined): boolean {
  if (!contentType) return false;
  const [type, ...params] = contentType.split(';');
  if (type!.trim().toLowerCase() !== 'application/json') return false;
  return params.every((p) => /^\s*charset\s*=\s*"?utf-8"?\s*$/i.test(p));
}

function readBody(req: IncomingMessage, length: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const body = Buffer.allocUnsafe(length);
    let at = 0;
    req.on('data', (c: Buffer) => {
      if (at + c.length > length) { reject(Object.assign(new Error('request body larger than its Content-Length'), { type: 'request.size.invalid', status: 400, expose: true })); req.destroy(); return; }
      c.copy(body, at);
      at += c.length;
    });
    // The same shape as body-parser's abort error, so both paths log it alike (problem.ts).
    const aborted = (cause?: unknown) => reject(Object.assign(new Error('request body shorter than its Content-Length'), { type: 'request.aborted', received: at, expected: length, cause }));
    req.once('end', () => (at === length ? resolve(body) : aborted()));
    // A client cut off by the request timeout, or gone, never sends 'end'.
    req.once('close', () => { if (!req.complete) aborted(); });
    // node reports a client gone mid-body as an 'aborted' (ECONNRESET) error on the request.
    req.once('error', (e) => (isClientAbort(e) ? aborted(e) : reject(e)));
  });
}

/** As body-parser's strict JSON parser: an object or array, else a parse failure naming a position. */
function parseJson(body: Buffer): unknown {
  const text = body.toString('utf8');
  const first = /^[\x20\x09\x0a\x0d]*(.)/.exec(text)?.[1];
  if (first !== '{' && first !== '[') throw Object.assign(new SyntaxError('Unexpected token at position 0'), { type: 'entity.parse.failed' });
  try { return JSON.parse(text); } catch (e) {
    throw Object.assign(new SyntaxError((e as Error).message), { type: 'entity.parse.failed' });
  }
}

/** Returns a handler that answers and returns true, or returns false having touched nothing. */
export function createIssueHandler(o: IssueHandlerOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  const { ctx, metrics } = o;
  const log = ctx.log;
  return (req, res) => {
    if (req.method !== 'POST' || req.url !== ISSUE_PATH) return false;
    const h = req.headers;
    const declared = h['content-length'] === undefined ? NaN : Number(h['content-length']);
    if (h['transfer-encoding'] !== undefined || !(declared >= 0 && declared <= o.bodyLimit) || !isPlainJson(h['content-type'])) return false;
    const credentials = credentialsOf(req);
    if (credentials.kind !== 'bearer') return false;
    const token = credentials.token;

    const started = process.hrtime.bigint();
    const endTimer = metrics.httpDuration.startTimer({ method: 'POST', route: ROUTE });
    const id = typeof h['x-request-id'] === 'string' && h['x-request-id'].length < 100 ? h['x-request-id'] : randomUUID();
    const ip = o.clientIp(req);
    let grant: TokenGrant | undefined;

    const finish = (status: number, headers: Record<string, string | number>, body: string) => {
      for (const k in o.headers) res.setHeader(k, o.headers[k]!);
      res.writeHead(status, { ...headers, 'content-length': Buffer.byteLength(body) });
      res.end(body);
      metrics.httpRequests.inc({ method: 'POST', route: ROUTE, status: String(status) });
      endTimer();
      const level = status >= 500 ? 'error' : status >= 400 ? 'info' : 'debug';
      if (log.isLevelEnabled(level)) {
        log[level]({ req: { id, method: 'POST', url: ISSUE_PATH }, res: { statusCode: status }, responseTime: Number(process.hrtime.bigint() - started) / 1e6 }, 'request completed');
      }
    };

    const run = async () => {
      const limited = await o.limits.check(req, res, ip);
      if (limited) { req.resume(); throw limited; }
      const json = parseJson(await readBody(req, declared));
      grant = await authenticate(ctx, token);
      const principal: Principal = { kind: 'token', grant };
      authorize(principal, 'certificate.issue');
      const body = parseBody(issueSchema, json);
      const cert = await o.issuance.issue(body, { principal, sourceIp: ip });
      finish(201, { 'content-type': 'application/json; charset=utf-8', location: `${ISSUE_PATH}/${cert.serial}` }, JSON.stringify(issuedJson(cert)));
    };

    run().catch(async (err: unknown) => {
      if (isClientAbort(err)) { logClientAbort(log, err, { req: { id, method: 'POST', url: ISSUE_PATH } }); res.destroy(); return; }
      const problem = toSignetError(err);
      if (problem.status >= 500) log.error({ err, reqId: id }, 'request failed');
      else {
        log.info({ reqId: id, problem: problem.type, detail: problem.detail }, 'request refused');
        metrics.refusals.inc({ type: problem.type });
      }
      const audited = auditRefusal(ctx, problem, { actor: grant ? `token:${grant.id}` : 'anonymous', target: `POST ${ISSUE_PATH}`, sourceIp: ip });
      if (audited) await audited.catch((e: unknown) => log.error({ err: e, reqId: id }, 'could not audit a refused request'));
      if (res.headersSent || res.destroyed) { res.destroy(); return; }
      const headers: Record<string, string> = { 'content-type': 'application/problem+json; charset=utf-8' };
      if (problem.status === 401) headers['www-authenticate'] = 'Bearer realm="signet", error="invalid_token"';
      if (problem.status === 503) headers['retry-after'] = '5';
      finish(problem.status, headers, JSON.stringify(problem.toProblem(ISSUE_PATH)));
    });
    return true;
  };
}
