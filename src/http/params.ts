/**
 * Every path and query parameter of /api/v1 and /pki, as one zod schema per kind: a route
 * reads req.params and req.query only through pathParams()/queryParams() with these, so no
 * client text reaches a service, a database query or a number conversion unvalidated.
 * (Malformed percent-encoding in a path never gets this far: Express's router fails to decode
 * it, and problem.ts answers that URIError with a 400.)
 */
import { z } from 'zod';
import { SignetError } from '../errors.js';
import { normalizeSerial } from '../ca/serial.js';

/** Marks an issue whose message is a whole sentence naming the parameter (no "name: " prefix). */
const SENTENCE = { sentence: true } as const;

const sentence = (c: z.RefinementCtx, message: string) => {
  c.addIssue({ code: z.ZodIssueCode.custom, message, params: SENTENCE });
  return z.NEVER;
};

/** A certificate serial: hex, optionally with colons, any case; the output is lower-case hex. */
export const serial = z
  .string()
  .transform((s, c) => {
    try {
      return normalizeSerial(s);
    } catch (e) {
      return sentence(c, (e as SignetError).detail);
    }
  })
  .describe('A certificate serial number in hexadecimal, any case, colons allowed');

const ID = /^[a-z0-9][a-z0-9-]{0,63}$/;
/** A CA id as Signet makes them (root-…, int-…, ext-…). */
export const caId = z.string().regex(ID, 'must be a CA id: lower-case letters, digits and hyphens, at most 64');
/** A public PKI object: `<caId>.crt` (the CA certificate), `<caId>.crl` (its CRL), `<caId>.s<k>.crl` (CRL shard k), with `-delta` before `.crl` for a delta CRL. */
export const pkiFile = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,63}(\.s[1-9][0-9]{0,3}(-delta)?\.crl|\.(crt|crl))$/)
  .transform((f) => {
    // <caId>.s<k>.crl / <caId>.s<k>-delta.crl: shard k (a dot cannot occur in a CA id). Whether
    // <name>-delta.crl is a delta or the CRL of a CA whose id ends in -delta is the route's call.
    const m = /^([a-z0-9-]+)\.s([0-9]+)(-delta)?\.crl$/.exec(f);
    if (m) return { caId: m[1]!, kind: 'crl' as const, shard: Number(m[2]), delta: m[3] !== undefined };
    return { caId: f.slice(0, -4), kind: f.slice(-3) as 'crt' | 'crl', shard: 0, delta: false };
  });

/** An enrollment credential id (enr_ and 16 hex digits). */
export const enrollmentId = z.string().regex(/^enr_[0-9a-f]{16}$/, 'must be an enrollment credential id: enr_ and 16 lower-case hex digits');

/** An API token id (tok-…). */
export const tokenId = z.string().regex(ID, 'must be a token id: lower-case letters, digits and hyphens, at most 64');

const EARLIEST_DATE = Date.UTC(1970, 0, 1);
const LATEST_DATE = Date.UTC(10000, 0, 1) - 1000;

/**
 * An ISO 8601 date-time with an offset (RFC 3339: 'Z' or ±hh:mm, hours at most 23), an instant
 * from 1970 to 9999 — what a certificate, a token or an audit event can carry. zod's datetime
 * alone lets '+25:00' through, which `new Date` turns into Invalid Date (a RangeError later).
 * Used for request bodies too (tokens' expiresAt, revocations' invalidityDate).
 */
export const isoDate = z
  .string()
  .datetime({ offset: true, message: 'must be an ISO 8601 date-time' })
  .transform((s, c) => {
    const issue = (message: string) => {
      c.addIssue({ code: z.ZodIssueCode.custom, message });
      return z.NEVER;
    };
    const offset = /([+-])(\d{2}):?(\d{2})$/.exec(s);
    if (offset && (Number(offset[2]) > 23 || Number(offset[3]) > 59))
      return issue(`must be an ISO 8601 date-time; the UTC offset ${offset[0]} is not one (at most ±23:59)`);
    const d = new Date(s);
    if (!Number.isFinite(d.getTime())) return issue('must be an ISO 8601 date-time');
    if (d.getTime() < EARLIEST_DATE || d.getTime() > LATEST_DATE) return issue('must be between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z');
    return d;
  });

/**
 * A page size from 1 to `max`: decimal digits only (no '0x10', '1e2', ' 5' or '+5'). The
 * refusal names the cap, so a client asking for more learns the largest page it can have.
 */
export const limit = (max: number) =>
  z
    .string()
    .regex(/^[0-9]+$/, 'must be a whole number written in decimal digits')
    .pipe(z.coerce.number().int().min(1, 'must be at least 1').max(max, `must be at most ${max} (the largest page)`));

/** An opaque list cursor as the inventory returns them (URL-safe characters). */
export const listCursor = z
  .string()
  .max(512)
  .regex(/^[A-Za-z0-9_.~-]+$/, 'is not one this server returned');

/** The audit trail's cursor: an event sequence number, which the database stores as a 32-bit integer. */
export const AUDIT_SEQ_MAX = 2_147_483_647;
export const auditCursor = z.string().superRefine((s, c) => {
  if (!/^\d{1,10}$/.test(s) || Number(s) > AUDIT_SEQ_MAX) sentence(c, 'cursor is not one this server returned');
});

/** A free-text search or filter term. */
export const text = (max: number) => z.string().max(max);

/** For routes that take no query parameters at all. */
export const noQuery = z.object({}).strict();

function parse<S extends z.ZodTypeAny>(schema: S, value: unknown, what: string): z.output<S> {
  const r = schema.safeParse(value ?? {});
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  if (issue.code === z.ZodIssueCode.custom && (issue.params as { sentence?: boolean } | undefined)?.sentence)
    throw new SignetError('bad-request', issue.message);
  throw new SignetError('bad-request', `${issue.path.length ? issue.path.join('.') : what}: ${issue.message}`);
}

/** req.params through its schema (a strict object of the kinds above). */
export const pathParams = <S extends z.ZodTypeAny>(schema: S, params: unknown): z.output<S> => parse(schema, params, 'path');
/** req.query through its schema (a strict object of the kinds above). */
export const queryParams = <S extends z.ZodTypeAny>(schema: S, query: unknown): z.output<S> => parse(schema, query, 'query');
