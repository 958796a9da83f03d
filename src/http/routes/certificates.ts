import { Router, type Request } from 'express';
import { z } from 'zod';
import type { CaContext } from '../../ca/context.js';
import type { Issuance, IssuedCertificate, Requester } from '../../ca/issuance.js';
import { getCertificate, listCertificates } from '../../ca/inventory.js';
import { normalizeSerial } from '../../ca/issuance.js';
import { requireAuth } from '../auth.js';
import { visibility } from '../../ca/authorization.js';
import { parseBody } from '../validate.js';
import { MAX_CSR_BYTES } from '../../pki/csr.js';

export const issueSchema = z.object({
  csr: z.string().min(1, 'must not be empty').max(MAX_CSR_BYTES * 2, `must be at most ${MAX_CSR_BYTES * 2} characters`),
  profile: z.string().min(1).max(64),
  validityDays: z.number().optional(),
  caId: z.string().min(1).max(64).optional(),
}).strict();

const renewSchema = z.object({ csr: z.string().min(1).max(MAX_CSR_BYTES * 2).optional() }).strict();

const listSchema = z.object({
  status: z.enum(['good', 'revoked', 'expired', 'hold']).optional(),
  profile: z.string().max(64).optional(),
  subject: z.string().max(256).optional(),
  san: z.string().max(256).optional(),
  caId: z.string().max(64).optional(),
  expiresBefore: z.string().datetime({ offset: true, message: 'must be an ISO 8601 date-time' }).transform((s) => new Date(s)).optional(),
  cursor: z.string().max(512).optional(),
  limit: z.coerce.number().int().min(1).max(500).optional(),
}).strict();

export const requesterOf = (req: Request): Requester => ({ actor: `token:${req.grant!.id}`, grant: req.grant, sourceIp: req.ip });

export const issuedJson = (c: IssuedCertificate) => ({
  serial: c.serial, certificate: c.certificate, chain: c.chain, notBefore: c.notBefore, notAfter: c.notAfter, profile: c.profile, caId: c.caId,
});

export function certificateRoutes(ctx: CaContext, issuance: Issuance): Router {
  const r = Router();
  r.post('/certificates', requireAuth(ctx, 'issue'), async (req, res) => {
    const body = parseBody(issueSchema, req.body);
    const cert = await issuance.issue(body, requesterOf(req));
    res.status(201).location(`/api/v1/certificates/${cert.serial}`).json(issuedJson(cert));
  });
  r.get('/certificates', requireAuth(ctx, 'read'), async (req, res) => {
    res.json(await listCertificates(ctx, parseBody(listSchema, req.query, 'query'), visibility({ kind: 'token', grant: req.grant! })));
  });
  r.get('/certificates/:serial', requireAuth(ctx, 'read'), async (req, res) => {
    res.json(await getCertificate(ctx, String(req.params.serial)));
  });
  r.post('/certificates/:serial/renew', requireAuth(ctx, 'renew'), async (req, res) => {
    const body = parseBody(renewSchema, req.body);
    const cert = await issuance.renew(String(req.params.serial), body.csr, requesterOf(req));
    res.status(201).location(`/api/v1/certificates/${cert.serial}`).json({ ...issuedJson(cert), predecessorSerial: normalizeSerial(String(req.params.serial)) });
  });
  r.get('/profiles', requireAuth(ctx, 'read'), (_req, res) => {
    res.json({ items: [...issuance.profiles.values()] });
  });
  return r;
}
