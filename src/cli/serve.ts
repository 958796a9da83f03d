import { watchGroupExpiry } from '../groups/service.js';
import { watchRetirements } from '../ca/succession.js';
import { snapshotReader, watchExpiry } from '../ca/expiry-alerts.js';
import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';
import { createHandler } from '../http/app.js';
import { answerClientErrors, closeServer, listen, sendBareProblem } from '../http/server.js';
import { auditRefusal } from '../http/audit-refusals.js';
import { createMetrics } from '../observability/metrics.js';
import { announceBootstrap, bootstrapIfEmpty, openWhenReachable } from '../runtime/open.js';
import { loadConfig } from '../config/config.js';
import { createLogger } from '../observability/logger.js';
import { createServices } from '../runtime/services.js';
import { loadProfiles } from '../ca/profiles.js';
import { SignetError } from '../errors.js';
import type { CaContext } from '../ca/context.js';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { TlsIdentity } from '../runtime/tls-identity.js';
import cluster from 'node:cluster';
import { runPrimary, workerIndex, type RelayMessage } from './cluster.js';
import { connectWorkerRelay } from '../runtime/cluster-relay.js';
import { AcmeHousekeeper } from '../acme/housekeeping.js';

export interface Running {
  server: Server;
  port: number;
  stop(): Promise<void>;
}

/** Answers while the database is not reachable yet: alive, not ready, every API call 503. */
function startingHandler(reason: () => string): RequestListener {
  return (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '/';
    if (url === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'starting' }));
      return;
    }
    if (url === '/readyz') {
      res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'not ready', checks: { database: reason() } }));
      return;
    }
    const err = new SignetError('unavailable', `Signet is starting and cannot serve yet: ${reason()}; retry later`);
    res.writeHead(503, { 'content-type': 'application/problem+json', 'retry-after': '5' }).end(JSON.stringify(err.toProblem(url)));
  };
}

/** Starts the service: listen, open the database (retrying while it is unreachable), unlock keys, bootstrap, serve. */
/** Serves; resolves to the running server, or to undefined in a cluster's primary (it only forks). */
export async function serve(): Promise<Running | undefined> {
  const config = loadConfig();
  const log = createLogger(config.SIGNET_LOG_LEVEL);
  loadProfiles(config.SIGNET_PROFILES_FILE); // fail on a bad profile file before touching anything
  if (config.SIGNET_WORKERS > 1 && cluster.isPrimary) {
    await runPrimary(config, log);
    return undefined;
  }
  const inCluster = cluster.isWorker;
  const publisher = workerIndex() === 0; // the only process that signs CRLs
  let lastError = 'connecting to the database';
  let handler: RequestListener = startingHandler(() => lastError);
  const server = await listen((req, res) => handler(req, res), config.SIGNET_HOST, config.SIGNET_PORT, log);
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.SIGNET_PORT;

  let ctx: CaContext;
  try {
    ctx = await openWhenReachable(config, log, {
      migrate: !inCluster, // in a cluster the primary has migrated before forking; the workers only open
      publicUrl: inCluster ? 'follow' : 'record', // likewise the primary has recorded the public URL
      onUnavailable: (detail, attempt) => {
        lastError = detail;
        if (attempt === 1) process.stderr.write(`signet: waiting for the database: ${detail}\n`);
      },
    });
  } catch (e) {
    await closeServer(server);
    throw e;
  }
  const services = createServices(ctx, config);
  announceBootstrap(await bootstrapIfEmpty(ctx, config));
  // ACME orders and challenges a stopped process left `processing` (acme/recovery.ts).
  await services.acme.recoverInterrupted().then(
    (r) => {
      if (r.orders || r.challenges) log.warn(r, 'recovered ACME orders/challenges left processing by a stopped process');
    },
    (e: unknown) => log.error({ err: e }, 'recovering interrupted ACME work failed; it is retried when the rows are read'),
  );
  const metrics = createMetrics();
  services.events.on('certificateIssued', (e) => metrics.certificatesIssued.inc({ profile: e.profile, ca: e.caId }));
  services.events.on('certificateRevoked', (e) => metrics.certificatesRevoked.inc({ reason: e.reason }));
  const ocspOutcomes = {
    cached: metrics.ocspResponses.labels('cached'),
    signed: metrics.ocspResponses.labels('signed'),
    'try-later': metrics.ocspResponses.labels('try-later'),
  };
  services.ocsp.observe((outcome) => ocspOutcomes[outcome].inc());
  services.groups.observe((e) => metrics.groupRekeySeconds.observe({ change: e.change }, e.seconds));
  metrics.watchGroups(() => services.groups.gauges());
  services.webhooks.observe((outcome) => metrics.webhookDeliveries.inc({ outcome }));
  metrics.watchWebhooks(() => services.webhooks.gauges());
  metrics.watchCas(
    () => ctx.stores.cas.list(),
    () => ctx.now(),
  );
  metrics.watchExpiry(snapshotReader(ctx));
  let clusterReady = false;
  const app = createHandler(ctx, metrics, {
    ...(inCluster ? { clusterReady: () => clusterReady } : {}),
    bodyLimit: config.SIGNET_BODY_LIMIT,
    trustProxy: config.SIGNET_TRUST_PROXY,
    rateLimitPerAddress: config.SIGNET_RATE_LIMIT_PER_ADDRESS,
    rateLimitPerToken: config.SIGNET_RATE_LIMIT_PER_TOKEN,
    ...services,
  });
  await services.ocsp.start();
  // Other replicas' changes reach the bus by polling; only the OCSP cache needs them.
  services.statusPoller.start();
  // start() re-signs any CRL older than a status change, which also covers a publication
  // that was pending when a process died.
  if (publisher) await services.crls.start();
  // Deletes expired ACME orders/authorizations/challenges: one process per host (the CRL
  // publisher), one replica at a time on PostgreSQL (acme/housekeeping.ts).
  const housekeeper = new AcmeHousekeeper(ctx, {
    retentionDays: config.SIGNET_ACME_RETENTION_DAYS,
    orderLifetimeHours: config.SIGNET_ACME_ORDER_LIFETIME_HOURS,
  });
  if (publisher) housekeeper.start();
  // Retiring CAs whose last certificate expired become retired (ca/succession.ts).
  const retirements = publisher ? watchRetirements(ctx) : undefined;
  // Members whose certificates expired leave their key groups (groups/service.ts).
  const groupExpiry = publisher ? watchGroupExpiry(services.groups, log) : undefined;
  // Expiry alerts: every minute, what is at risk and the time-left counts, saved for every
  // process's /metrics; what is newly at risk goes to certificatesAtRisk (ca/expiry-alerts.ts).
  const expirySweep = publisher ? watchExpiry(ctx, { onNewlyAtRisk: (items) => services.events.emit('certificatesAtRisk', items) }) : undefined;
  // Webhook deliveries from the outbox: one process per host (the CRL publisher); replicas
  // share each webhook through its lease (ca/webhooks.ts).
  if (publisher) services.webhooks.start();
  if (inCluster) {
    // Status changes to and from the other workers, once this process's subscribers listen.
    connectWorkerRelay(services.statusBus, log);
    process.on('message', (m: RelayMessage) => {
      if (m.type === 'clusterReady') clusterReady = true;
    });
  }
  const full: RequestListener = app; // OCSP included (http/app.ts)
  let tls: { server: HttpsServer; identity: TlsIdentity } | undefined;
  if (config.SIGNET_TLS) {
    const names = config.SIGNET_TLS_NAMES.split(',')
      .map((n) => n.trim())
      .filter(Boolean);
    const identity = new TlsIdentity(services.issuance, names, log);
    // A client certificate is asked for and never required: renewal by the current certificate
    // (POST /api/v1/certificates/renew, ca/holder-authentication.ts) reads it, everything else
    // (ACME clients, the console in a browser, the token API) goes on without one, or with any
    // other — the handshake does not judge it; Signet does, for that one route. No CA names are
    // sent as certificate_authorities hints (no `ca` option): a stale list would make clients
    // that honour the hints (Go's crypto/tls) withhold a certificate from a CA created or
    // rotated since, and the list would have to follow every CA change.
    const httpsServer = createHttpsServer(
      {
        ...(await identity.issue()),
        requestCert: true,
        rejectUnauthorized: false,
        requestTimeout: 30_000,
        headersTimeout: 10_000,
        maxHeaderSize: 16 * 1024,
      },
      full,
    );
    answerClientErrors(httpsServer, log);
    await new Promise<void>((resolve, reject) => {
      httpsServer.once('error', reject);
      httpsServer.listen(config.SIGNET_TLS_PORT, config.SIGNET_HOST, () => resolve());
    });
    identity.watch((c) => httpsServer.setSecureContext(c));
    tls = { server: httpsServer, identity };
    const httpsUrl = `https://${names[0]}:${config.SIGNET_TLS_PORT}`;
    // Plain HTTP keeps only what relying parties fetch before they can trust TLS.
    handler = (req, res) => {
      const url = req.url ?? '/';
      // An allow-list, matched case-insensitively as Express routes are: only what relying
      // parties fetch before they can trust TLS stays on plain HTTP.
      const path = url.split('?')[0]!.toLowerCase();
      // SCEP (RFC 8894 §4) is protected by its CMS messages and its devices often speak plain HTTP only.
      const scep = path === '/scep' || path.startsWith('/scep/');
      const plainOk = scep || path.startsWith('/pki/') || path === '/ocsp' || path.startsWith('/ocsp/') || ['/healthz', '/readyz', '/metrics'].includes(path);
      if (!plainOk) {
        const err = new SignetError('forbidden', `only the public PKI endpoints, OCSP and health are served over plain HTTP; use ${httpsUrl}${url}`);
        // Counted as every anonymous refusal is (request.refused.summary; no write per request).
        void auditRefusal(ctx, err, { actor: 'anonymous', target: `${req.method ?? ''} ${url.split('?')[0]}`, sourceIp: req.socket.remoteAddress });
        sendBareProblem(res, err, url);
        return;
      }
      full(req, res);
    };
    process.stdout.write(`Signet is serving HTTPS on ${httpsUrl} (API, ACME at ${httpsUrl}/acme/directory)\n`);
  } else {
    handler = full;
  }
  if (inCluster) process.send?.({ type: 'listening' } satisfies RelayMessage);
  else
    process.stdout.write(
      `Signet is serving on http://${config.SIGNET_HOST}:${port} (public URL ${ctx.config.publicUrl})\n  web console: http://${config.SIGNET_HOST}:${port}/console\n`,
    );
  const opened = ctx;
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      log.info('shutting down');
      await closeServer(server);
      if (tls) {
        tls.identity.stop();
        await closeServer(tls.server as unknown as Server);
      }
      services.statusPoller.stop();
      services.crls.stop();
      retirements?.();
      groupExpiry?.();
      expirySweep?.();
      await services.webhooks.stop();
      await housekeeper.stop();
      await services.ocsp.stop();
      await opened.db.close();
    })());
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.once(sig, () => {
      void stop().then(() => process.exit(0));
    });
  }
  return { server, port, stop };
}
