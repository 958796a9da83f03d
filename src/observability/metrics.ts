import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** What the CA gauges read at each scrape: every CA's id, status and end of validity. */
export type CaGaugeSource = () => Promise<{ id: string; status: string; notAfter: Date }[]>;

/** What the expiry metrics show: the last expiry sweep (ca/expiry-alerts.ts), with its histogram bounds. */
export interface ExpiryMetricsSnapshot {
  atRisk: { profile: string; ca: string; count: number }[];
  casAtRisk: string[];
  timeLeft: { bounds: number[]; within: number[]; count: number; sumS: number };
}

const CA_STATUS_VALUES = ['active', 'offline', 'retiring', 'retired', 'revoked'] as const;

/** One registry per process; the HTTP adapter exposes it at /metrics. */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    httpRequests: new Counter({
      name: 'signet_http_requests_total',
      help: 'HTTP requests by route and status',
      labelNames: ['method', 'route', 'status'] as const,
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'signet_http_request_duration_seconds',
      help: 'HTTP request latency',
      labelNames: ['method', 'route'] as const,
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers: [registry],
    }),
    certificatesIssued: new Counter({
      name: 'signet_certificates_issued_total',
      help: 'Certificates issued',
      labelNames: ['profile', 'ca'] as const,
      registers: [registry],
    }),
    certificatesRevoked: new Counter({
      name: 'signet_certificates_revoked_total',
      help: 'Certificates revoked',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    ocspResponses: new Counter({
      name: 'signet_ocsp_responses_total',
      help: 'OCSP answers by outcome: cached (pre-signed), signed (a new signature), try-later (beyond the on-demand signing budget)',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    groupRekeySeconds: new Histogram({
      name: 'signet_group_rekey_duration_seconds',
      help: 'Server time of a key-group change (join or leave): new path keys, their wraps, the write',
      labelNames: ['change'] as const,
      buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5],
      registers: [registry],
    }),
    webhookDeliveries: new Counter({
      name: 'signet_webhook_deliveries_total',
      help: 'Webhook delivery attempts by outcome: delivered (2xx), failed (retried later), dead (dead-lettered after the last attempt)',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    refusals: new Counter({ name: 'signet_refusals_total', help: 'Requests refused, by problem type', labelNames: ['type'] as const, registers: [registry] }),
    /**
     * The CAs themselves, read from the database at each scrape (CA rows are few): days until
     * each CA certificate expires, and its status as a 0/1 gauge per status (alert on
     * `signet_ca_expiry_days{status="active"} < 90`, or on a CA that is `retiring` too long).
     */
    watchCas(source: CaGaugeSource, now: () => Date = () => new Date()): void {
      new Gauge({
        name: 'signet_ca_expiry_days',
        help: "Days until the CA's certificate expires (negative: expired)",
        labelNames: ['ca', 'status'] as const,
        registers: [registry],
        async collect() {
          this.reset();
          for (const ca of await source())
            this.set({ ca: ca.id, status: ca.status }, Math.floor(((ca.notAfter.getTime() - now().getTime()) / 86_400_000) * 10) / 10);
        },
      });
      new Gauge({
        name: 'signet_ca_status',
        help: 'The status of each CA: 1 for its status, 0 for the others',
        labelNames: ['ca', 'status'] as const,
        registers: [registry],
        async collect() {
          this.reset();
          for (const ca of await source()) for (const s of CA_STATUS_VALUES) this.set({ ca: ca.id, status: s }, ca.status === s ? 1 : 0);
        },
      });
    },
    /**
     * Expiry alerts (ca/expiry-alerts.ts), as of the last sweep (one process sweeps every minute
     * and saves the result; every process reads it at a scrape, one row): certificates at risk
     * by profile and CA, CAs at risk, and the good, unexpired certificates by time left.
     */
    watchExpiry(source: () => Promise<ExpiryMetricsSnapshot | null>): void {
      new Gauge({
        name: 'signet_certificates_at_risk',
        help: 'Certificates in their alert window with no successor, not revoked (as of the last expiry sweep)',
        labelNames: ['profile', 'ca'] as const,
        registers: [registry],
        async collect() {
          this.reset();
          for (const g of (await source())?.atRisk ?? []) this.set({ profile: g.profile, ca: g.ca }, g.count);
        },
      });
      new Gauge({
        name: 'signet_cas_at_risk',
        help: "CAs within 90 days of their certificate's end that are not replaced (1 each; as of the last expiry sweep)",
        labelNames: ['ca'] as const,
        registers: [registry],
        async collect() {
          this.reset();
          for (const ca of (await source())?.casAtRisk ?? []) this.set({ ca }, 1);
        },
      });
      // A histogram of the current inventory, not of events: its buckets are counts the sweep
      // read from the database, so it is exposed as a collector, not observed one by one.
      const name = 'signet_certificate_expiry_seconds';
      const help = 'Time left of good, unexpired certificates (as of the last expiry sweep)';
      registry.registerMetric({
        name,
        help,
        type: 'histogram',
        aggregator: 'sum',
        async get() {
          const t = (await source())?.timeLeft;
          const values = t
            ? [
                ...t.within.map((n, i) => ({ metricName: `${name}_bucket`, labels: { le: t.bounds[i]! }, value: n })),
                { metricName: `${name}_bucket`, labels: { le: '+Inf' }, value: t.count },
                { metricName: `${name}_sum`, labels: {}, value: t.sumS },
                { metricName: `${name}_count`, labels: {}, value: t.count },
              ]
            : [];
          return { name, help, type: 'histogram', aggregator: 'sum', values };
        },
        reset() {},
      } as unknown as Parameters<Registry['registerMetric']>[0]);
    },
    /** Webhook outbox events not yet handled, per webhook, read at each scrape. */
    watchWebhooks(source: () => Promise<{ id: string; backlog: number }[]>): void {
      new Gauge({
        name: 'signet_webhook_backlog',
        help: 'Outbox events each webhook has still to deliver (or skip); growing means its receiver is down or slow',
        labelNames: ['webhook'] as const,
        registers: [registry],
        async collect() {
          this.reset();
          for (const w of await source()) this.set({ webhook: w.id }, w.backlog);
        },
      });
    },
    /** Key groups, read at each scrape: members and epoch per group. */
    watchGroups(source: () => Promise<{ name: string; members: number; epoch: number }[]>): void {
      new Gauge({
        name: 'signet_group_members',
        help: 'Members of each key group',
        labelNames: ['group'] as const,
        registers: [registry],
        async collect() {
          this.reset();
          for (const g of await source()) this.set({ group: g.name }, g.members);
        },
      });
      new Gauge({
        name: 'signet_group_epoch',
        help: 'The epoch of each key group (one per join or leave)',
        labelNames: ['group'] as const,
        registers: [registry],
        async collect() {
          this.reset();
          for (const g of await source()) this.set({ group: g.name }, g.epoch);
        },
      });
    },
  };
}
export type Metrics = ReturnType<typeof createMetrics>;
