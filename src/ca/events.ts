import { EventEmitter } from 'node:events';

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
 * process exports its own counters). Status changes travel on the status bus instead
 * (ca/status-bus.ts), which also reaches other workers and replicas.
 */
export class CaEvents extends EventEmitter<{ certificateIssued: [Issued]; certificateRevoked: [Revoked] }> {}
