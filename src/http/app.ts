/**
 * The Express application: thin routes over the authority layer. Every response that is not a
 * success is a problem document, produced in problem.ts.
 */
import express, { type Express, type Router } from 'express';
import type { RequestListener } from 'node:http';
import proxyaddr from 'proxy-addr';
import type { CaContext } from '../ca/context.js';
import type { TrustProxy } from '../config/config.js';
import type { Metrics } from '../observability/metrics.js';
import { notFound, requireJson } from './problem.js';
import { Edge } from './edge.js';
import { healthRoutes } from './routes/health.js';
import { caRoutes } from './routes/cas.js';
import { pkiRoutes } from './routes/pki.js';
import { certificateRoutes } from './routes/certificates.js';
import type { Issuance } from '../ca/issuance.js';
import type { Revocation } from '../ca/revocation.js';
import type { CrlPublisher } from '../ca/crl-publisher.js';
import { revocationRoutes } from './routes/revocation.js';
import { adminRoutes } from './routes/admin.js';
import { rateLimits, type RateLimits } from './rate-limit.js';
import { createIssueHandler } from './issue-handler.js';
import { createOcspHandler } from './ocsp-handler.js';
import type { OcspService } from '../ca/ocsp-service.js';
import { auditRefusals } from './audit-refusals.js';
import { refuseNulCharacters } from './validate.js';
import type { AcmeService } from '../acme/service.js';
import { acmeRoutes } from '../acme/routes.js';
import { consoleRoutes } from '../console/routes.js';
import { estRoutes } from '../est/routes.js';
import type { EstService } from '../est/service.js';
import { createScepService, scepRoutes } from '../scep/routes.js';
import { groupRoutes } from './routes/groups.js';
import { openapiRoutes } from './routes/openapi.js';
import type { GroupService } from '../groups/service.js';
import { webhookRoutes } from './routes/webhooks.js';
import type { WebhookService } from '../ca/webhooks.js';
import { authenticateEnrollment } from '../ca/enrollment-credentials.js';

export interface AppOptions {
  /** In a cluster worker: whether every worker has started (part of /readyz). */
  clusterReady?: () => boolean;
  /** Bytes. */
  bodyLimit: number;
  trustProxy: TrustProxy;
  rateLimitPerAddress: number;
  rateLimitPerToken: number;
  issuance: Issuance;
  revocation: Revocation;
  crls: CrlPublisher;
  acme: AcmeService;
  est: EstService;
  groups: GroupService;
  webhooks: WebhookService;
  ocsp: OcspService;
}

/**
 * The API's request listener: the bare OCSP handler for /ocsp, the bare issuance handler for
 * plain POST /api/v1/certificates, Express for everything else — all three through one edge
 * (edge.ts: request id and log, metrics, security headers, problems).
 */
export function createHandler(ctx: CaContext, metrics: Metrics, opts: AppOptions): RequestListener {
  const edge = new Edge({ log: ctx.log, metrics });
  const limits = rateLimits(opts.rateLimitPerAddress, opts.rateLimitPerToken);
  const app = createApp(ctx, metrics, opts, limits, edge);
  // The one trust function, compiled by Express from SIGNET_TRUST_PROXY: the bare handler
  // derives the client address exactly as req.ip does.
  const trust = app.get('trust proxy fn') as (addr: string, i: number) => boolean;
  const issue = createIssueHandler({
    ctx,
    edge,
    issuance: opts.issuance,
    limits,
    bodyLimit: opts.bodyLimit,
    clientIp: (req) => proxyaddr(req, trust),
  });
  const ocsp = createOcspHandler(opts.ocsp, edge);
  return (req, res) => {
    if ((req.url ?? '').startsWith('/ocsp')) ocsp(req, res);
    else if (!issue(req, res)) app(req, res);
  };
}

/**
 * Everything under /api/v1. Each route's first handler is its operation's guard (auth.ts), so
 * the authorisation matrix test can enumerate this router and fail on a route without a row.
 */
export function apiRouter(
  ctx: CaContext,
  opts: Pick<AppOptions, 'bodyLimit' | 'issuance' | 'revocation' | 'groups'> & Partial<Pick<AppOptions, 'webhooks'>>,
  limits: Pick<RateLimits, 'middlewares'>,
): Router {
  const api = express.Router();
  for (const limiter of limits.middlewares) api.use(limiter);
  api.use(requireJson);
  api.use(express.json({ limit: opts.bodyLimit, strict: true, type: 'application/json' }));
  api.use(refuseNulCharacters());
  api.use(caRoutes(ctx, (caId) => opts.revocation.caChanged(caId)));
  api.use(revocationRoutes(ctx, opts.revocation));
  api.use(certificateRoutes(ctx, opts.issuance));
  api.use(adminRoutes(ctx));
  api.use(groupRoutes(ctx, opts.groups));
  api.use(openapiRoutes(api));
  api.use(webhookRoutes(ctx, () => webhooksOf(opts)));
  api.use(auditRefusals(ctx));
  return api;
}

/** The webhook service, looked up when a request comes (the authorisation matrix builds the router without one). */
function webhooksOf(opts: Partial<Pick<AppOptions, 'webhooks'>>): WebhookService {
  if (!opts.webhooks) throw new Error('this router was built without the webhook service');
  return opts.webhooks;
}

export function createApp(
  ctx: CaContext,
  metrics: Metrics,
  opts: Omit<AppOptions, 'ocsp'>,
  limits: RateLimits,
  edge = new Edge({ log: ctx.log, metrics }),
): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', opts.trustProxy);
  app.set('etag', false);
  app.use(edge.middleware());
  // /api/v1 and /acme check after parsing their bodies (ACME in its own problem format).
  const refuseNulInUrl = refuseNulCharacters();
  app.use((req, res, next) => (req.path.startsWith('/api/v1/') || req.path.startsWith('/acme/') ? next() : refuseNulInUrl(req, res, next)));
  app.use(healthRoutes(ctx, metrics, opts.clusterReady));
  app.use(pkiRoutes(ctx, opts.crls));
  app.use(consoleRoutes());
  app.use('/api/v1', apiRouter(ctx, opts, limits));
  // The address limit runs inside the ACME router, so its 429 is an ACME rateLimited problem with a nonce.
  app.use('/acme', acmeRoutes(opts.acme, rateLimits(opts.rateLimitPerAddress, 0).middlewares));
  app.use('/.well-known/est', estRoutes(ctx, opts.est, rateLimits(opts.rateLimitPerAddress, 0).middlewares));
  app.use('/scep', scepRoutes(createScepService(ctx, opts, { authenticate: authenticateEnrollment }), rateLimits(opts.rateLimitPerAddress, 0).middlewares));
  app.use(notFound);
  app.use(edge.problemHandler());
  return app;
}
