/**
 * How client addresses are grouped wherever Signet limits per address: an IPv4 address as it
 * is, an IPv6 address by its /56 (one customer allocation), an IPv4-mapped IPv6 address as the
 * IPv4 one. The request-rate limits (rate-limit.ts) and the ACME per-address limits
 * (acme/address-limits.ts) share it, so one client is one budget everywhere.
 */
import { ipKeyGenerator } from 'express-rate-limit';

/** The address (as req.ip gives it, proxy trust applied) to its limit key; 'unknown' when there is none. */
export const addressKey = (ip: string | undefined): string => (ip ? ipKeyGenerator(ip) : 'unknown');
