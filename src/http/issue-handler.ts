/**
 * POST /api/v1/certificates served by a bare node:http handler in front of Express, like OCSP:
 * it is the path mass re-issuance hits, and Express 5 with its middleware costs more per
 * request here (~200 µs: router, body parser, pino-http, helmet, metrics) than signing does.
 *
 * It takes only the plain case — exact path, JSON content type, a declared length within the
 * limit, a Bearer header — and leaves everything else to Express untouched (nothing read), so
 * the unusual requests keep their one implementation. What it takes it serves exactly as the
 * Express route would: same rate-limit buckets, same authentication and scope check, same
 * schema, same refusal audit; request id, log line, metrics, security headers and problem
 * documents come from the edge (edge.ts) that Express uses too.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CaContext } from '../ca/context.js';
import type { Issuance } from '../ca/issuance.js';
import { authenticate, type TokenGrant } from '../ca/tokens.js';
import { authorize, type Principal } from '../ca/authorization.js';
import { auditRefusal } from './audit-refusals.js';
import { credentialsOf, type Edge } from './edge.js';
import { isClientAbort } from './problem.js';
import type { RateLimits } from './rate-limit.js';
import { issueSchema, issuedJson } from './routes/certificates.js';
import { parseBody, refuseNul } from './validate.js';

export const ISSUE_PATH = '/api/v1/certificates';
const ROUTE = '/certificates';

export interface IssueHandlerOptions {
  ctx: CaContext;
  edge: Edge;
  issuance: Issuance;
  limits: RateLimits;
  bodyLimit: number;
  /** The client address as Express computes it (trust proxy applied). */
  clientIp(req: IncomingMessage): string;
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
      if (at + c.length > length) {
        reject(Object.assign(new Error('request body larger than its Content-Length'), { type: 'request.size.invalid', status: 400, expose: true }));
        req.destroy();
        return;
      }
      c.copy(body, at);
      at += c.length;
    });
    // The same shape as body-parser's abort error, so both paths log it alike (problem.ts).
    const aborted = (cause?: unknown) =>
      reject(Object.assign(new Error('request body shorter than its Content-Length'), { type: 'request.aborted', received: at, expected: length, cause }));
    req.once('end', () => (at === length ? resolve(body) : aborted()));
    // A client cut off by the request timeout, or gone, never sends 'end'.
    req.once('close', () => {
      if (!req.complete) aborted();
    });
    // node reports a client gone mid-body as an 'aborted' (ECONNRESET) error on the request.
    req.once('error', (e) => (isClientAbort(e) ? aborted(e) : reject(e)));
  });
}

/** As body-parser's strict JSON parser: an object or array, else a parse failure naming a position. */
function parseJson(body: Buffer): unknown {
  const text = body.toString('utf8');
  const first = /^[\x20\x09\x0a\x0d]*(.)/.exec(text)?.[1];
  if (first !== '{' && first !== '[') throw Object.assign(new SyntaxError('Unexpected token at position 0'), { type: 'entity.parse.failed' });
  try {
    return JSON.parse(text);
  } catch (e) {
    throw Object.assign(new SyntaxError((e as Error).message), { type: 'entity.parse.failed' });
  }
}

/** Returns a handler that answers and returns true, or returns false having touched nothing. */
export function createIssueHandler(o: IssueHandlerOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  const { ctx, edge } = o;
  return (req, res) => {
    if (req.method !== 'POST' || req.url !== ISSUE_PATH) return false;
    const h = req.headers;
    const declared = h['content-length'] === undefined ? NaN : Number(h['content-length']);
    if (h['transfer-encoding'] !== undefined || !(declared >= 0 && declared <= o.bodyLimit) || !isPlainJson(h['content-type'])) return false;
    const credentials = credentialsOf(req);
    if (credentials.kind !== 'bearer') return false;
    const token = credentials.token;

    const x = edge.begin(req, ROUTE);
    const ip = o.clientIp(req);
    let grant: TokenGrant | undefined;

    const run = async () => {
      const limited = await o.limits.check(req, res, ip);
      if (limited) {
        req.resume();
        throw limited;
      }
      const json = parseJson(await readBody(req, declared));
      refuseNul(json, 'the request body');
      grant = await authenticate(ctx, token);
      const principal: Principal = { kind: 'token', grant };
      authorize(principal, 'certificate.issue');
      const body = parseBody(issueSchema, json);
      const cert = await o.issuance.issue(body, { principal, sourceIp: ip });
      edge.send(x, res, 201, ['content-type', 'application/json; charset=utf-8', 'location', `${ISSUE_PATH}/${cert.serial}`], JSON.stringify(issuedJson(cert)));
    };

    run().catch(async (err: unknown) => {
      if (isClientAbort(err)) {
        edge.aborted(x, res, err);
        return;
      }
      const problem = edge.refusal(x, err);
      const audited = auditRefusal(ctx, problem, { actor: grant ? `token:${grant.id}` : 'anonymous', target: `POST ${ISSUE_PATH}`, sourceIp: ip });
      if (audited) await audited.catch((e: unknown) => x.log.error({ err: e }, 'could not audit a refused request'));
      edge.sendProblem(x, res, problem, ISSUE_PATH);
    });
    return true;
  };
}
