import { EventEmitter } from 'node:events';
import type { AtRisk } from './expiry-alerts.js';

export interface Issued {
  caId: string;
  profile: string;
}
export interface Revoked {
  caId: string;
  reason: string;
}

/**
 * Counts for metrics: every committed issuance and revocation, in this process only (each
 * process exports its own counters). certificatesAtRisk: what an expiry sweep found newly at
 * risk (ca/expiry-alerts.ts), in the one process that sweeps — each alert once, for notifications. Status changes travel on the status bus instead
 * (ca/status-bus.ts), which also reaches other workers and replicas.
 */
export class CaEvents extends EventEmitter<{ certificateIssued: [Issued]; certificateRevoked: [Revoked]; certificatesAtRisk: [AtRisk[]] }> {}
