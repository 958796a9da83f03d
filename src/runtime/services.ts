import type { Config } from '../config/config.js';
import type { CaContext } from '../ca/context.js';
import { Issuance } from '../ca/issuance.js';
import { IssuerRegistry } from '../ca/issuers.js';
import { loadProfiles } from '../ca/profiles.js';
import { CaEvents } from '../ca/events.js';
import { Revocation } from '../ca/revocation.js';
import { CrlPublisher } from '../ca/crl-publisher.js';
import { OcspService } from '../ca/ocsp-service.js';

/** The authority's services over one opened context; shared by `serve` and the CLI. */
export function createServices(ctx: CaContext, config: Config) {
  const events = new CaEvents();
  const issuers = new IssuerRegistry(ctx);
  events.on('caChanged', (id) => issuers.invalidate(id));
  const issuance = new Issuance(ctx, issuers, loadProfiles(config.SIGNET_PROFILES_FILE));
  const revocation = new Revocation(ctx, events);
  const crls = new CrlPublisher(ctx, events, { validityHours: config.SIGNET_CRL_VALIDITY_HOURS, coalesceMs: config.SIGNET_CRL_COALESCE_MS });
  const ocsp = new OcspService(ctx, events, { validityMinutes: config.SIGNET_OCSP_VALIDITY_MINUTES, responderDays: config.SIGNET_OCSP_RESPONDER_DAYS, pollMs: config.SIGNET_OCSP_POLL_MS });
  return { events, issuers, issuance, revocation, crls, ocsp };
}
export type Services = ReturnType<typeof createServices>;
