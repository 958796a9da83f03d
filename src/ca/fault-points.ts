/**
 * Named points in multi-step writes (a CA rotation, a root rollover) where the crash tests kill
 * the process: with SIGNET_FAULT_AT=<name> the process sends itself SIGKILL on reaching that
 * point, exactly as `kill -9` from outside would land there. Unset (always, outside the tests),
 * a fault point does nothing. The names are listed so a test can walk every one of them.
 */
export const FAULT_POINTS = {
  rotate: ['rotate:key-generated', 'successor:certificate-signed', 'rotate:successor-recorded', 'rotate:handed-over', 'rotate:committed'],
  /** After an issuance batch (its certificates, audit events and webhook outbox rows) committed, before anyone is answered or anything delivered. */
  issuance: ['issue:committed'],
  rollover: ['rollover:root-created', 'rollover:cross-certified', 'successor:certificate-signed', 'rollover:handed-over', 'rollover:committed'],
} as const;

export type FaultPoint = (typeof FAULT_POINTS)[keyof typeof FAULT_POINTS][number];

export function faultPoint(name: FaultPoint): void {
  if (process.env.SIGNET_FAULT_AT === name) process.kill(process.pid, 'SIGKILL');
}
