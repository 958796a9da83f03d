import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

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
    refusals: new Counter({ name: 'signet_refusals_total', help: 'Requests refused, by problem type', labelNames: ['type'] as const, registers: [registry] }),
  };
}
export type Metrics = ReturnType<typeof createMetrics>;
