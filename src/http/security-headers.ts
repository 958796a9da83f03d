/**
 * The security headers every response carries (helmet). The bare handlers in front of Express
 * send the same set, captured once from helmet itself so the two cannot drift apart.
 */
import helmet, { type HelmetOptions } from 'helmet';
import type { IncomingMessage, ServerResponse } from 'node:http';

export const HELMET_OPTIONS: HelmetOptions = {
  contentSecurityPolicy: { directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
  crossOriginResourcePolicy: { policy: 'cross-origin' },
};

/** helmet's headers as a plain object (what it sets on a response). */
export function securityHeaders(): Record<string, string> {
  const headers: Record<string, string> = {};
  const res = {
    setHeader(name: string, value: string | number | readonly string[]) {
      headers[name.toLowerCase()] = String(value);
      return res;
    },
    removeHeader() {
      /* helmet removes X-Powered-By; the bare handlers never set it */
    },
  };
  helmet(HELMET_OPTIONS)({} as IncomingMessage, res as unknown as ServerResponse, () => undefined);
  return headers;
}

/**
 * The security headers of a binary protocol answer (an OCSP response): helmet's others govern
 * how a browser treats a document it renders or frames (CSP, frame options, COOP, referrer,
 * XSS filter, prefetch, download and cross-domain policies) and mean nothing on
 * `application/ocsp-response`; HSTS is ignored on plain HTTP, where OCSP is served (RFC 5019 §5).
 * Sending them cost a tenth of an OCSP answer's time (README "Performance"). What stays is the
 * one that applies to any body: no content sniffing. Problem documents from the same handler
 * (404, 413) carry the full set.
 */
export const BINARY_SECURITY_HEADERS: Readonly<Record<string, string>> = { 'x-content-type-options': 'nosniff' };
