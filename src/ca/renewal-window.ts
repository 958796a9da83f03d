/**
 * When a certificate should be renewed (ACME Renewal Information, RFC 9773), decided by the
 * certificate and its CA's succession:
 *
 * - revoked, held, or issued by a revoked CA: now (a window that opened an hour ago and ends now);
 * - issued by an active CA: the usual window, from 2/3 to 5/6 of its life;
 * - issued by a CA that was rotated out (retiring, retired): a window inside the rotation's
 *   overlap — from the rotation to the overlap's end (`--overlap-days`), or without one the last
 *   third of the certificate's life (never before the rotation), cut off at its expiry.
 *   Each certificate gets its own slice of that range, an eighth of it wide, placed by a hash of
 *   its serial, so a fleet renews spread over the overlap instead of all at once, and asking
 *   again gives the same window.
 */
import { createHash } from 'node:crypto';

const HOUR_MS = 3_600_000;
const MIN_WIDTH_MS = 60_000;

export interface RenewalWindow {
  start: Date;
  end: Date;
}

export interface WindowCertificate {
  serial: string;
  notBefore: Date;
  notAfter: Date;
  /** good | revoked | hold */
  status: string;
}

export interface WindowCa {
  status: string;
  retiringSince: Date | null;
  overlapEndsAt: Date | null;
}

/** A number in [0, 1) fixed by the serial. */
const spreadOf = (serial: string): number => createHash('sha256').update(serial).digest().readUInt32BE(0) / 2 ** 32;

export function renewalWindow(cert: WindowCertificate, ca: WindowCa | null, now: Date): RenewalWindow {
  const renewNow = { start: new Date(now.getTime() - HOUR_MS), end: now };
  if (cert.status !== 'good' || ca?.status === 'revoked') return renewNow;
  const nb = cert.notBefore.getTime();
  const na = cert.notAfter.getTime();
  const life = na - nb;
  const rotated = ca && (ca.status === 'retiring' || ca.status === 'retired') && ca.retiringSince;
  if (!rotated) return { start: new Date(nb + (life * 2) / 3), end: new Date(nb + (life * 5) / 6) };
  const since = ca.retiringSince!.getTime();
  const from = ca.overlapEndsAt ? Math.max(since, nb) : Math.max(since, nb + (life * 2) / 3);
  const to = Math.min(ca.overlapEndsAt?.getTime() ?? na, na);
  // The certificate runs out before its slice could open: renew now.
  if (to - from < MIN_WIDTH_MS) return renewNow;
  const span = to - from;
  const width = Math.max(MIN_WIDTH_MS, span / 8);
  const start = from + spreadOf(cert.serial) * (span - width);
  return { start: new Date(Math.floor(start)), end: new Date(Math.floor(start + width)) };
}
