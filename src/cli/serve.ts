import 'reflect-metadata';
import type { Server } from 'node:http';
import { createApp } from '../http/app.js';
import { closeServer, listen } from '../http/server.js';
import { createMetrics } from '../observability/metrics.js';
import { bootstrapIfEmpty, openSignet } from '../runtime/open.js';
import { loadConfig } from '../config/config.js';
import { createLogger } from '../observability/logger.js';
import { createServices } from '../runtime/services.js';
import { createOcspHandler } from '../http/ocsp-handler.js';
import { loadProfiles } from '../ca/profiles.js';

export interface Running { server: Server; port: number; stop(): Promise<void> }

/** Starts the service: migrate, unlock keys, bootstrap on first start, serve. */
export async function serve(): Promise<Running> {
  const config = loadConfig();
  const log = createLogger(config.SIGNET_LOG_LEVEL);
  loadProfiles(config.SIGNET_PROFILES_FILE); // fail on a bad profile file before touching anything
  const ctx = await openSignet(config, log);
  const services = createServices(ctx, config);
  const boot = await bootstrapIfEmpty(ctx, config);
  if (boot.created) {
    // The token itself is never printed: only where it is.
    process.stdout.write(`Signet initialised a new CA hierarchy.\n  root SHA-256 fingerprint: ${boot.rootFingerprint}\n  admin API token written to: ${boot.tokenFile} (mode 0600)\n`);
  }
  const metrics = createMetrics();
  const app = createApp(ctx, metrics, { bodyLimit: config.SIGNET_BODY_LIMIT, trustProxy: config.SIGNET_TRUST_PROXY, rateLimitPerAddress: config.SIGNET_RATE_LIMIT_PER_ADDRESS, rateLimitPerToken: config.SIGNET_RATE_LIMIT_PER_TOKEN, ...services });
  await services.ocsp.start();
  await services.crls.start();
  const ocspHandler = createOcspHandler(services.ocsp, log);
  const server = await listen((req, res) => ((req.url ?? '').startsWith('/ocsp') ? ocspHandler(req, res) : app(req, res)), config.SIGNET_HOST, config.SIGNET_PORT, log);
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.SIGNET_PORT;
  process.stdout.write(`Signet is serving on http://${config.SIGNET_HOST}:${port} (public URL ${config.publicUrl})\n`);
  let stopping: Promise<void> | undefined;
  const stop = () => (stopping ??= (async () => {
    log.info('shutting down');
    await closeServer(server);
    services.crls.stop();
    await services.ocsp.stop();
    await ctx.db.close();
  })());
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.once(sig, () => { void stop().then(() => process.exit(0)); });
  }
  return { server, port, stop };
}
