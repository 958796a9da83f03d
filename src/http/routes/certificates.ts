import { Router } from 'express';
import { z } from 'zod';
import type { CaContext } from '../../ca/context.js';
import type { Issuance, IssuedCertificate } from '../../ca/issuance.js';
import { getCertificate, listAtRisk, listCertificates } from '../../ca/inventory.js';
import { SignetError } from '../../errors.js';
import { authorizeCertificate, visibility } from '../../ca/authorization.js';
import type { SanEntry } from '../../pki/names.js';
import { requireAuth, requireClientCertificate, requesterOf } from '../auth.js';
import { caId, isoDate, limit, listCursor, noQuery, pathParams, queryParams, serial, text } from '../params.js';
import { parseBody } from '../validate.js';
import { MAX_CSR_BYTES } from '../../pki/csr.js';
import { dateTime, documentRoute, hexString, itemsOf, pemCertificate } from '../openapi.js';
import { profileFields } from '../../ca/profiles.js';

export const issueSchema = z
  .object({
    csr: z
      .string()
      .min(1, 'must not be empty')
      .max(MAX_CSR_BYTES * 2, `must be at most ${MAX_CSR_BYTES * 2} characters`),
    profile: z.string().min(1).max(64),
    validityDays: z.number().optional(),
    caId: caId.optional(),
  })
  .strict();

export const renewSchema = z
  .object({
    csr: z
      .string()
      .min(1)
      .max(MAX_CSR_BYTES * 2)
      .optional(),
  })
  .strict();

export const listSchema = z
  .object({
    status: z.enum(['good', 'revoked', 'expired', 'hold']).optional(),
    profile: text(64).optional(),
    subject: text(256).optional(),
    san: text(256).optional(),
    caId: caId.optional(),
    expiresBefore: isoDate.optional(),
    cursor: listCursor.optional(),
    limit: limit(500).optional(),
    /** true: what is at risk of expiring without a successor (ca/expiry-alerts.ts). */
    atRisk: z.enum(['true', 'false']).optional(),
  })
  .strict();

export const serialPath = z.object({ serial }).strict();

// ---- Responses (the OpenAPI document's, checked against real answers in test/openapi.test.ts)

export const issuedResponse = z
  .object({
    serial: hexString,
    certificate: pemCertificate,
    chain: z.string().describe('PEM: the issuing CA and any intermediates up to (not including) the root'),
    notBefore: dateTime,
    notAfter: dateTime,
    profile: z.string(),
    caId,
  })
  .strict();
export const renewedResponse = issuedResponse.extend({ predecessorSerial: hexString }).strict();
const certificateStatus = z.enum(['good', 'revoked', 'expired', 'hold']);
export const certificateResponse = z
  .object({
    serial: hexString,
    caId,
    profile: z.string(),
    subject: z.string(),
    commonName: z.string().nullable(),
    sans: z.array(z.object({ type: z.enum(['dns', 'ip', 'email', 'uri']), value: z.string() }).strict()),
    keyAlgorithm: z.string(),
    notBefore: dateTime,
    notAfter: dateTime,
    fingerprintSha256: hexString,
    status: certificateStatus,
    revokedAt: dateTime.nullable(),
    revocationReason: z.string().nullable(),
    invalidityDate: dateTime.nullable(),
    predecessorSerial: hexString.nullable(),
    createdAt: dateTime,
    tokenId: z.string().nullable().describe('The token that issued it (null: ACME, EST, SCEP, the CLI)'),
  })
  .strict();
const nextCursor = z.string().nullable().describe('Pass as cursor for the next page; null: the last page');
export const certificateListResponse = z.object({ items: z.array(certificateResponse), nextCursor }).strict();
/** ?atRisk=true: certificates (and, for an unlimited caller, CAs) near their end with no successor (ca/expiry-alerts.ts). */
const atRiskWhen = {
  notBefore: dateTime,
  notAfter: dateTime,
  alertFrom: dateTime.describe('Where its alert window opened'),
  secondsLeft: z.number(),
};
export const atRiskListResponse = z
  .object({
    items: z.array(
      z.discriminatedUnion('kind', [
        z
          .object({
            kind: z.literal('certificate'),
            id: z.string(),
            serial: hexString,
            caId,
            profile: z.string(),
            subject: z.string(),
            commonName: z.string().nullable(),
            sans: z.array(z.object({ type: z.enum(['dns', 'ip', 'email', 'uri']), value: z.string() }).strict()),
            ...atRiskWhen,
          })
          .strict(),
        z.object({ kind: z.literal('ca'), id: z.string(), caId, subject: z.string(), serial: hexString, status: z.string(), ...atRiskWhen }).strict(),
      ]),
    ),
    nextCursor,
  })
  .strict();
/** A profile as the server parsed it: defaults applied, caId folded into caIds. */
export const profileResponse = profileFields.omit({ caId: true }).extend({ name: z.string() }).strict();
const NO_CERTIFICATE = { 404: 'The certificate does not exist' };

export const issuedJson = (c: IssuedCertificate) => ({
  serial: c.serial,
  certificate: c.certificate,
  chain: c.chain,
  notBefore: c.notBefore,
  notAfter: c.notAfter,
  profile: c.profile,
  caId: c.caId,
});

export function certificateRoutes(ctx: CaContext, issuance: Issuance): Router {
  const r = Router();
  documentRoute('POST /certificates', {
    summary: 'Issue a certificate from a CSR under a profile',
    query: noQuery,
    body: issueSchema,
    responses: { 201: { description: 'The certificate', schema: issuedResponse, headers: { Location: 'The certificate' } } },
    errors: { 409: 'The CA cannot issue now (revoked, retiring, a root)' },
  });
  r.post('/certificates', requireAuth(ctx, 'certificate.issue'), async (req, res) => {
    queryParams(noQuery, req.query);
    const body = parseBody(issueSchema, req.body);
    const cert = await issuance.issue(body, requesterOf(req));
    res.status(201).location(`/api/v1/certificates/${cert.serial}`).json(issuedJson(cert));
  });
  documentRoute('GET /certificates', {
    summary: 'Search the inventory (only what the token may see), newest first, paged',
    query: listSchema,
    responses: {
      200: {
        description: 'One page; with atRisk=true, of what is at risk of expiring without a successor',
        schema: z.union([certificateListResponse, atRiskListResponse]),
      },
    },
  });
  r.get('/certificates', requireAuth(ctx, 'certificate.list'), async (req, res) => {
    const q = queryParams(listSchema, req.query);
    if (q.atRisk === 'true') {
      const other = (['status', 'subject', 'san', 'expiresBefore'] as const).find((k) => q[k] !== undefined);
      if (other) throw new SignetError('bad-request', `atRisk=true combines with profile, caId, cursor and limit only, not ${other}`);
      res.json(await listAtRisk(ctx, q, visibility(req.principal!)));
      return;
    }
    res.json(await listCertificates(ctx, q, visibility(req.principal!)));
  });
  documentRoute('GET /certificates/:serial', {
    summary: 'One certificate, with its PEM',
    params: serialPath,
    query: noQuery,
    responses: { 200: { description: 'The certificate', schema: certificateResponse.extend({ certificate: pemCertificate }).strict() } },
    errors: NO_CERTIFICATE,
  });
  r.get('/certificates/:serial', requireAuth(ctx, 'certificate.read'), async (req, res) => {
    const p = pathParams(serialPath, req.params);
    queryParams(noQuery, req.query);
    const cert = await getCertificate(ctx, p.serial);
    authorizeCertificate(
      req.principal!,
      'certificate.read',
      { serial: cert.serial, profile: cert.profile, sans: cert.sans as SanEntry[], commonName: cert.commonName },
      issuance.profiles.get(cert.profile)?.hostlessUriSchemes,
    );
    res.json(cert);
  });
  // Renewal by the holder of the certificate, proven by presenting it as the TLS client
  // certificate on the HTTPS listener (no token): the certificate renewed is the one presented.
  documentRoute('POST /certificates/renew', {
    summary: 'Renew the certificate presented as the TLS client certificate (HTTPS listener only; no token)',
    query: noQuery,
    body: renewSchema,
    clientCertificate: true,
    responses: { 201: { description: 'The renewed certificate', schema: renewedResponse, headers: { Location: 'The new certificate' } } },
    errors: { 403: "The certificate's profile does not allow renewal with the client certificate" },
  });
  r.post('/certificates/renew', requireClientCertificate(ctx, issuance, 'certificate.renew'), async (req, res) => {
    queryParams(noQuery, req.query);
    const body = parseBody(renewSchema, req.body);
    const who = requesterOf(req);
    if (who.principal.kind !== 'certificate-holder') throw new Error('POST /certificates/renew is guarded by requireClientCertificate');
    const predecessor = who.principal.serial;
    const cert = await issuance.renew(predecessor, body.csr, who);
    res
      .status(201)
      .location(`/api/v1/certificates/${cert.serial}`)
      .json({ ...issuedJson(cert), predecessorSerial: predecessor });
  });
  documentRoute('POST /certificates/:serial/renew', {
    summary: 'Renew a certificate: same profile and names, a new serial (and the new key of csr, if given)',
    params: serialPath,
    query: noQuery,
    body: renewSchema,
    responses: { 201: { description: 'The renewed certificate', schema: renewedResponse, headers: { Location: 'The new certificate' } } },
    errors: { ...NO_CERTIFICATE, 409: 'The certificate cannot be renewed (revoked, or its CA cannot issue)' },
  });
  r.post('/certificates/:serial/renew', requireAuth(ctx, 'certificate.renew'), async (req, res) => {
    const p = pathParams(serialPath, req.params);
    queryParams(noQuery, req.query);
    const body = parseBody(renewSchema, req.body);
    const cert = await issuance.renew(p.serial, body.csr, requesterOf(req));
    res
      .status(201)
      .location(`/api/v1/certificates/${cert.serial}`)
      .json({ ...issuedJson(cert), predecessorSerial: p.serial });
  });
  documentRoute('GET /profiles', {
    summary: 'The certificate profiles this server issues under',
    query: noQuery,
    responses: { 200: { description: 'Every profile', schema: itemsOf(profileResponse) } },
  });
  r.get('/profiles', requireAuth(ctx, 'profile.list'), (req, res) => {
    queryParams(noQuery, req.query);
    res.json({ items: [...issuance.profiles.values()] });
  });
  return r;
}
