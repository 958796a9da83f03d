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

const renewSchema = z
  .object({
    csr: z
      .string()
      .min(1)
      .max(MAX_CSR_BYTES * 2)
      .optional(),
  })
  .strict();

const listSchema = z
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
  r.post('/certificates', requireAuth(ctx, 'certificate.issue'), async (req, res) => {
    queryParams(noQuery, req.query);
    const body = parseBody(issueSchema, req.body);
    const cert = await issuance.issue(body, requesterOf(req));
    res.status(201).location(`/api/v1/certificates/${cert.serial}`).json(issuedJson(cert));
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
  r.get('/profiles', requireAuth(ctx, 'profile.list'), (req, res) => {
    queryParams(noQuery, req.query);
    res.json({ items: [...issuance.profiles.values()] });
  });
  return r;
}
