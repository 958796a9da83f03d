/**
 * Named points in multi-step writes (a CA rotation, a root rollover) where the crash tests kill
 * the process: with SIGNET_FAULT_AT=<name> the process sends itself SIGKILL on reaching that
 * point, exactly as `kill -9` from outside would land there. Unset (always, outside the tests),
 * a fault point does nothing. The names are listed so a test can walk every one of them.
 */
export const FAULT_POINTS = [
  'rotate:key-generated',
  'rotate:certificate-signed',
  'rotate:successor-recorded',
  'rotate:handed-over',
  'rotate:committed',
] as const;

export type FaultPoint = (typeof FAULT_POINTS)[number];

export function faultPoint(name: FaultPoint): void {
  if (process.env.SIGNET_FAULT_AT === name) process.kill(process.pid, 'SIGKILL');
}
