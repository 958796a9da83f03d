/**
 * The HTTP edge: everything a response owes the operator and the client whichever handler
 * produced it — Express, the bare issuance handler (issue-handler.ts) or the bare OCSP
 * handler (ocsp-handler.ts). One implementation of each piece, so the three cannot drift:
 *
 * - the request id (X-Request-Id when sane, else a UUID) and the request log line
 *   `request completed` with `req {id, method, url}`, `res {statusCode}` and `responseTime`
 *   (ms), at debug below 400, info for 4xx, error for 5xx;
 * - `signet_http_requests_total` / `signet_http_request_duration_seconds` by method and route,
 *   and `signet_refusals_total` by problem type;
 * - the security headers: helmet's on every document (JSON, problems, HTML), captured once
 *   (security-headers.ts); on a binary protocol answer that no browser renders (an OCSP
 *   response), only `X-Content-Type-Options: nosniff` (security-headers.ts says why);
 * - refusals: any error to its problem document (problem.ts), logged once (`request refused`
 *   at info, `request failed` with the stack at error), with WWW-Authenticate on a 401 and
 *   Retry-After on a 429 or 503;
 * - the Authorization header, parsed once per request into the canonical token identity
 *   that rate limits, authentication and audit share.
 *
 * The bare handlers call it directly on node's request and response (begin, send, refusal,
 * sendProblem, aborted), so no Express is in their path; Express uses it through `middleware`
 * and `problemHandler`. Its cost per request, mostly prom-client's two label lookups, is
 * measured by bench/micro/edge.ts.
 */
import type { IncomingMessage, OutgoingHttpHeader, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { ErrorRequestHandler, Request, RequestHandler } from 'express';
import type { Logger } from 'pino';
import type { SignetError } from '../errors.js';
import type { Metrics } from '../observability/metrics.js';
import { hashSecret } from '../ca/tokens.js';
import { isClientAbort, logClientAbort, toSignetError } from './problem.js';
import { BINARY_SECURITY_HEADERS, securityHeaders } from './security-headers.js';

declare module 'express-serve-static-core' {
  interface Request {
    /** The request id (edge.ts), as pino-http used to set it. */
    id: string;
    /** A logger whose lines carry `req {id, method, url}`. */
    log: Logger;
    exchange?: Exchange;
  }
}

// --- the Authorization header ------------------------------------------------------------

/**
 * What an Authorization header presents, parsed once per request and shared by every consumer
 * (rate limits, authentication, audit), so that no spelling of one token counts as another.
 * `identity` is the token's SHA-256 (not the keyed hash the token table stores), never the token.
 */
export type Credentials = { kind: 'none' } | { kind: 'malformed' } | { kind: 'bearer'; token: string; identity: string };

/**
 * RFC 7235 §2.1 / RFC 6750 §2.1: `credentials = auth-scheme 1*SP b64token`, the scheme
 * case-insensitive. Only spaces separate: a tab (or any other whitespace) makes the header
 * malformed rather than another spelling of the same token. Node has already trimmed
 * surrounding whitespace from the field value.
 */
const BEARER = /^([A-Za-z]+) +([A-Za-z0-9\-._~+/]+=*)$/;

export function parseAuthorization(header: string | undefined): Credentials {
  if (header === undefined || header === '') return { kind: 'none' };
  const m = BEARER.exec(header);
  if (!m || m[1]!.toLowerCase() !== 'bearer') return { kind: 'malformed' };
  return { kind: 'bearer', token: m[2]!, identity: hashSecret(m[2]!) };
}

const parsed = new WeakMap<IncomingMessage, Credentials>();

/** The request's credentials, parsed on first use and remembered for the rest of the request. */
export function credentialsOf(req: IncomingMessage): Credentials {
  let c = parsed.get(req);
  if (!c) parsed.set(req, (c = parseAuthorization(req.headers.authorization)));
  return c;
}

/**
 * RFC 7235 §3.1 / RFC 6750 §3: a 401 names the scheme to use, and says the token was bad
 * when one (or something in its place) was presented.
 */
const challenge = (req: IncomingMessage): string =>
  // EST authenticates first enrollments with HTTP Basic (RFC 7030 §3.2.3).
  (req.url ?? '').startsWith('/.well-known/est/')
    ? 'Basic realm="signet-est", charset="UTF-8"'
    : credentialsOf(req).kind === 'none'
      ? 'Bearer realm="signet"'
      : 'Bearer realm="signet", error="invalid_token"';

// --- refusals ----------------------------------------------------------------------------

/** The rate limits' window (rate-limit.ts): a 429 from them says to retry after it. */
export const RATE_WINDOW_SECONDS = 60;
/** How long a client should wait after a 503 (the database away, the audit trail sealed). */
const UNAVAILABLE_RETRY_SECONDS = 5;

export const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8';

/** The headers a problem response carries besides the security headers. */
function problemHeaders(req: IncomingMessage, problem: SignetError): [string, string][] {
  const h: [string, string][] = [['content-type', PROBLEM_CONTENT_TYPE]];
  if (problem.status === 401) h.push(['www-authenticate', challenge(req)]);
  else if (problem.status === 429) h.push(['retry-after', String(RATE_WINDOW_SECONDS)]);
  else if (problem.status === 503) h.push(['retry-after', String(UNAVAILABLE_RETRY_SECONDS)]);
  return h;
}

// --- the exchange: one request and its response ------------------------------------------

/** A sane client-supplied X-Request-Id (so a proxy's id follows the request), else a fresh one. */
function requestId(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && given.length > 0 && given.length < 100 ? given : randomUUID();
}

const levelOf = (status: number): 'error' | 'info' | 'debug' => (status >= 500 ? 'error' : status >= 400 ? 'info' : 'debug');

/**
 * One request as the edge sees it. The id and the request-bound logger are made on first use:
 * a request answered 2xx at the default log level never needs either.
 */
export class Exchange {
  /** performance.now(): a tenth of what two hrtime.bigint() calls cost, and precise enough. */
  readonly started = performance.now();
  readonly method: string;
  /** As received (Express rewrites req.url while routing). */
  readonly url: string;
  private idValue?: string;
  private logValue?: Logger;
  private done = false;

  constructor(
    private readonly edge: Edge,
    readonly req: IncomingMessage,
    public route: string,
  ) {
    this.method = req.method ?? 'GET';
    this.url = req.url ?? '/';
  }

  get id(): string {
    return (this.idValue ??= requestId(this.req));
  }

  get log(): Logger {
    return (this.logValue ??= this.edge.log.child({ req: { id: this.id, method: this.method, url: this.url } }));
  }

  /** Counts and logs the response once it is sent (Express: on 'finish'; the bare handlers: from send). */
  completed(status: number): void {
    if (this.done) return;
    this.done = true;
    const seconds = (performance.now() - this.started) / 1000;
    this.edge.observe(this.method, this.route, status, seconds);
    const level = levelOf(status);
    if (this.edge.log.isLevelEnabled(level)) this.log[level]({ res: { statusCode: status }, responseTime: seconds * 1000 }, 'request completed');
  }
}

export interface EdgeOptions {
  log: Logger;
  metrics: Metrics;
}

export class Edge {
  readonly log: Logger;
  private readonly metrics: Metrics;
  /** The security headers, as [name, value] pairs and flat for writeHead. */
  private readonly security: [string, string][];
  private readonly securityFlat: { document: string[]; binary: string[] };
  /** Labelled metric children, resolved once per label set (prom-client hashes labels per call otherwise). */
  private readonly counters = new Map<string, { inc(): void }>();
  private readonly timers = new Map<string, { observe(v: number): void }>();

  constructor(o: EdgeOptions) {
    this.log = o.log;
    this.metrics = o.metrics;
    this.security = Object.entries(securityHeaders());
    this.securityFlat = { document: this.security.flat(), binary: Object.entries(BINARY_SECURITY_HEADERS).flat() };
  }

  begin(req: IncomingMessage, route: string): Exchange {
    return new Exchange(this, req, route);
  }

  observe(method: string, route: string, status: number, seconds: number): void {
    const timerKey = `${method} ${route}`;
    const counterKey = `${timerKey} ${status}`;
    let counter = this.counters.get(counterKey);
    if (!counter) this.counters.set(counterKey, (counter = this.metrics.httpRequests.labels(method, route, String(status))));
    counter.inc();
    let timer = this.timers.get(timerKey);
    if (!timer) this.timers.set(timerKey, (timer = this.metrics.httpDuration.labels(method, route)));
    timer.observe(seconds);
  }

  /**
   * Sends a whole response from a bare handler: the security headers (`document`: helmet's;
   * `binary`: for a protocol answer no browser renders), `headers` (flat name, value pairs),
   * the length, the body; then counts and logs it.
   */
  send(x: Exchange, res: ServerResponse, status: number, headers: OutgoingHttpHeader[], body: string | Buffer, kind: 'document' | 'binary' = 'document'): void {
    const length = typeof body === 'string' ? Buffer.byteLength(body) : body.length;
    // One flat array: node writes it without building a header map (headers a handler set
    // with setHeader before, such as RateLimit, are merged by node).
    res.writeHead(status, [...this.securityFlat[kind], ...headers, 'content-length', length] as unknown as OutgoingHttpHeader[]);
    res.end(body);
    x.completed(status);
  }

  /**
   * The one account of an error that ends a request: the problem to answer with, logged
   * (`request failed` with the error, or `request refused`) and, if a refusal, counted.
   */
  refusal(x: Exchange, err: unknown): SignetError {
    const problem = toSignetError(err);
    if (problem.status >= 500) x.log.error({ err }, 'request failed');
    else {
      x.log.info({ problem: problem.type, detail: problem.detail }, 'request refused');
      this.metrics.refusals.inc({ type: problem.type });
    }
    return problem;
  }

  /** A client gone mid-request: one info line, no refusal, nobody to answer. */
  aborted(x: Exchange, res: ServerResponse, err: unknown): void {
    logClientAbort(x.log, err);
    res.destroy();
  }

  /** Answers a problem from a bare handler (a response already under way is cut off instead). */
  sendProblem(x: Exchange, res: ServerResponse, problem: SignetError, instance: string): void {
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return;
    }
    this.send(x, res, problem.status, problemHeaders(x.req, problem).flat(), JSON.stringify(problem.toProblem(instance)));
  }

  /** Express: the exchange, the request id and logger, the security headers; counted and logged on 'finish'. */
  middleware(): RequestHandler {
    return (req, res, next) => {
      const x = this.begin(req, 'unmatched');
      req.exchange = x;
      Object.defineProperty(req, 'id', { get: () => x.id, configurable: true });
      Object.defineProperty(req, 'log', { get: () => x.log, configurable: true });
      for (const [k, v] of this.security) res.setHeader(k, v);
      // The route is known only once a route has matched (and is relative to its router, as
      // the bare handlers' labels are).
      res.once('finish', () => {
        x.route = (req.route?.path as string | undefined) ?? 'unmatched';
        x.completed(res.statusCode);
      });
      next();
    };
  }

  /** Express's last error handler: every error becomes a problem document here. */
  problemHandler(): ErrorRequestHandler {
    return (err, req, res, _next) => {
      const x = exchangeOf(this, req);
      if (isClientAbort(err)) {
        this.aborted(x, res, err);
        return;
      }
      const problem = this.refusal(x, err);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      for (const [k, v] of problemHeaders(req, problem)) res.setHeader(k, v);
      const body = JSON.stringify(problem.toProblem(req.originalUrl));
      res.status(problem.status).setHeader('content-length', Buffer.byteLength(body));
      res.end(body);
    };
  }
}

/** The request's exchange; a router used without the edge middleware (a test) gets one on the spot. */
function exchangeOf(edge: Edge, req: Request): Exchange {
  return (req.exchange ??= edge.begin(req, 'unmatched'));
}
