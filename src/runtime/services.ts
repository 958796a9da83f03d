import type { Config } from '../config/config.js';
import type { CaContext } from '../ca/context.js';
import { Issuance } from '../ca/issuance.js';
import { IssuerRegistry } from '../ca/issuers.js';
import { loadProfiles } from '../ca/profiles.js';
import { CaEvents } from '../ca/events.js';
import { StatusBus, StatusPoller } from '../ca/status-bus.js';
import { Revocation } from '../ca/revocation.js';
import { CrlPublisher } from '../ca/crl-publisher.js';
import { OcspService } from '../ca/ocsp-service.js';
import { AcmeService } from '../acme/service.js';
import { loadDeviceTrust } from '../ca/device-certificates.js';
import { EstService } from '../est/service.js';
import { GroupService } from '../groups/service.js';
import { GroupController } from '../groups/controller.js';
import { storageOf } from '../storage/database.js';
import { PrismaGroupStore } from '../storage/group-store.js';
import { SettingStore } from '../storage/setting-store.js';
import { WebhookService } from '../ca/webhooks.js';
import { PrismaWebhookStore } from '../storage/webhook-store.js';

/** The authority's services over one opened context; shared by `serve` and the CLI. */
export function createServices(ctx: CaContext, config: Config) {
  const events = new CaEvents(); // metrics only
  // Status changes: in this process by default; `serve` attaches the cluster relay and starts the poller.
  const statusBus = new StatusBus(ctx.log);
  const statusPoller = new StatusPoller({ source: ctx.stores.ocsp, bus: statusBus, pollMs: config.SIGNET_OCSP_POLL_MS, now: () => ctx.now(), log: ctx.log });
  const issuers = new IssuerRegistry(ctx);
  statusBus.subscribe((d) => {
    if (d.change.kind === 'ca') issuers.invalidate(d.change.caId);
  });
  const profiles = loadProfiles(config.SIGNET_PROFILES_FILE);
  const issuance = new Issuance(ctx, issuers, profiles, events);
  const revocation = new Revocation(ctx, statusBus, events, profiles);
  const crls = new CrlPublisher(ctx, statusBus, {
    validityHours: config.SIGNET_CRL_VALIDITY_HOURS,
    coalesceMs: config.SIGNET_CRL_COALESCE_MS,
    shards: config.SIGNET_CRL_SHARDS,
    deltas: config.SIGNET_CRL_DELTAS,
  });
  const ocsp = new OcspService(ctx, statusBus, {
    validityMinutes: config.SIGNET_OCSP_VALIDITY_MINUTES,
    responderDays: config.SIGNET_OCSP_RESPONDER_DAYS,
    pollMs: config.SIGNET_OCSP_POLL_MS,
    onDemandPerSecond: config.SIGNET_OCSP_ON_DEMAND_PER_SECOND,
  });
  const split = (v: string) =>
    v
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean);
  const acmeProfiles = split(config.SIGNET_ACME_PROFILES);
  for (const p of acmeProfiles) issuance.profile(p); // an unknown ACME profile is a configuration error
  const acme = new AcmeService(ctx, issuance, revocation, {
    profiles: acmeProfiles,
    eabRequired: new Set(config.SIGNET_ACME_EAB_REQUIRED.trim() === 'all' ? acmeProfiles : split(config.SIGNET_ACME_EAB_REQUIRED)),
    validation: {
      httpPort: config.SIGNET_ACME_HTTP_PORT,
      tlsPort: config.SIGNET_ACME_TLS_PORT,
      resolver: config.SIGNET_ACME_DNS_RESOLVER,
      timeoutMs: config.SIGNET_ACME_VALIDATION_TIMEOUT_MS,
    },
    validationAttempts: config.SIGNET_ACME_VALIDATION_ATTEMPTS,
    ordersPerHour: config.SIGNET_ACME_ORDERS_PER_HOUR,
    pendingAuthorizations: config.SIGNET_ACME_PENDING_AUTHZ,
    failedValidationsPerHour: config.SIGNET_ACME_FAILED_VALIDATIONS_PER_HOUR,
    orderLifetimeHours: config.SIGNET_ACME_ORDER_LIFETIME_HOURS,
    accountsPerAddressPerHour: config.SIGNET_ACME_ACCOUNTS_PER_HOUR,
    ordersPerAddressPerHour: config.SIGNET_ACME_ORDERS_PER_ADDRESS_PER_HOUR,
  });
  const devices = loadDeviceTrust(
    { file: config.SIGNET_EST_CLIENT_CAS, profile: config.SIGNET_EST_CLIENT_PROFILE, names: config.SIGNET_EST_CLIENT_NAMES },
    (name) => profiles.has(name),
  );
  const est = new EstService(ctx, issuance, devices);
  const storage = storageOf(ctx.db);
  const groups = new GroupService(
    ctx,
    new PrismaGroupStore(storage),
    ctx.stores.revocations,
    ctx.stores.cas,
    new GroupController(ctx, issuance, new SettingStore(storage)),
    profiles,
  );
  // A revoked or held certificate, or every certificate of a revoked CA, leaves its key groups in the revocation's own transaction.
  revocation.onStatusChange((tx, c) => groups.leaveAll(tx, c.serial, c.status === 'hold' ? 'hold' : 'revocation', c.actor));
  revocation.onCaRevoked((tx, c) => groups.leaveAllIssuedBy(tx, c.caId, c.actor));
  const webhooks = new WebhookService(ctx, new PrismaWebhookStore(storage), {
    retryBaseMs: config.SIGNET_WEBHOOK_RETRY_BASE_MS,
    retryCapMs: config.SIGNET_WEBHOOK_RETRY_CAP_MS,
    maxAttempts: config.SIGNET_WEBHOOK_MAX_ATTEMPTS,
    timeoutMs: config.SIGNET_WEBHOOK_TIMEOUT_MS,
    pollMs: config.SIGNET_WEBHOOK_POLL_MS,
    allowPrivate: config.SIGNET_WEBHOOK_ALLOW_PRIVATE,
  });
  return { events, statusBus, statusPoller, issuers, issuance, revocation, crls, ocsp, acme, est, groups, webhooks };
}
export type Services = ReturnType<typeof createServices>;
