import { Router } from 'express';
import { z } from 'zod';
import type { CaContext } from '../../ca/context.js';
import { REVOKE_REASONS, type Revocation } from '../../ca/revocation.js';
import { certificateStatus } from '../../ca/inventory.js';
import { REVOCATION_REASONS, type RevocationReason } from '../../pki/crl.js';
import { openOperation, requireAuth, requesterOf } from '../auth.js';
import { caId, isoDate, noQuery, pathParams, queryParams } from '../params.js';
import { parseBody } from '../validate.js';
import { serialPath } from './certificates.js';
import { dateTime, documentRoute, hexString } from '../openapi.js';

// removeFromCRL is an RFC 5280 name: let it through so the service refuses it with a precise reason.
const reason = z
  .string({ required_error: 'Required: one of ' + REVOKE_REASONS.join(', ') })
  .refine((r) => (REVOCATION_REASONS as readonly string[]).includes(r), {
    message: `must be an RFC 5280 reason name: ${REVOKE_REASONS.join(', ')}`,
  })
  .describe(`An RFC 5280 reason name: ${REVOKE_REASONS.join(', ')}`);
export const revokeSchema = z
  .object({
    reason,
    invalidityDate: isoDate.optional(),
    caId: caId.optional(),
  })
  .strict();
const caPath = z.object({ id: caId }).strict();
export const revokeCaSchema = z.object({ reason }).strict();

// ---- Responses (the OpenAPI document's, checked against real answers in test/openapi.test.ts)

const reasonName = z.enum(REVOCATION_REASONS);
export const revokedResponse = z
  .object({ serial: hexString, caId, status: z.enum(['revoked', 'hold']), revokedAt: dateTime, reason: reasonName })
  .strict()
  .describe('status hold for reason certificateHold (undone with unhold), else revoked');
export const unheldResponse = z.object({ serial: hexString, caId, status: z.literal('good') }).strict();
export const caRevokedResponse = z.object({ id: caId, status: z.literal('revoked'), revokedAt: dateTime, reason: reasonName }).strict();
export const statusResponse = z
  .object({
    serial: hexString,
    status: z.enum(['good', 'revoked', 'expired', 'hold']),
    revokedAt: dateTime.optional().describe('For revoked and hold'),
    reason: reasonName.optional().describe('For revoked and hold'),
  })
  .strict();
const NO_CERTIFICATE = { 404: 'The certificate does not exist' };

export function revocationRoutes(ctx: CaContext, revocation: Revocation): Router {
  const r = Router();
  documentRoute('POST /certificates/:serial/revoke', {
    summary: 'Revoke a certificate, or put it on hold (reason certificateHold)',
    params: serialPath,
    query: noQuery,
    body: revokeSchema,
    responses: { 200: { description: 'Revoked or on hold', schema: revokedResponse } },
    errors: { ...NO_CERTIFICATE, 409: 'Already revoked (or already on hold)' },
  });
  r.post('/certificates/:serial/revoke', requireAuth(ctx, 'certificate.revoke'), async (req, res) => {
    const p = pathParams(serialPath, req.params);
    queryParams(noQuery, req.query);
    const b = parseBody(revokeSchema, req.body);
    res.json(await revocation.revoke(p.serial, { reason: b.reason as RevocationReason, invalidityDate: b.invalidityDate, caId: b.caId }, requesterOf(req)));
  });
  documentRoute('POST /certificates/:serial/unhold', {
    summary: 'Release a certificate from hold',
    params: serialPath,
    query: noQuery,
    responses: { 200: { description: 'Good again', schema: unheldResponse } },
    errors: { ...NO_CERTIFICATE, 409: 'The certificate is not on hold' },
  });
  r.post('/certificates/:serial/unhold', requireAuth(ctx, 'certificate.unhold'), async (req, res) => {
    const p = pathParams(serialPath, req.params);
    queryParams(noQuery, req.query);
    res.json(await revocation.unhold(p.serial, requesterOf(req)));
  });
  documentRoute('POST /cas/:id/revoke', {
    summary: 'Revoke an intermediate CA (it appears on its parent’s CRL; it issues nothing more)',
    params: caPath,
    query: noQuery,
    body: revokeCaSchema,
    responses: { 200: { description: 'Revoked', schema: caRevokedResponse } },
    errors: { 404: 'The CA does not exist', 409: 'Already revoked, or a root' },
  });
  r.post('/cas/:id/revoke', requireAuth(ctx, 'ca.revoke'), async (req, res) => {
    const p = pathParams(caPath, req.params);
    queryParams(noQuery, req.query);
    const b = parseBody(revokeCaSchema, req.body);
    res.json(await revocation.revokeCa(p.id, b.reason as RevocationReason, requesterOf(req)));
  });
  // Public status for relying parties and dashboards: no token, no secrets in it.
  documentRoute('GET /certificates/:serial/status', {
    summary: 'The public status of one certificate (no token)',
    params: serialPath,
    query: noQuery,
    responses: { 200: { description: 'Its status', schema: statusResponse } },
    errors: NO_CERTIFICATE,
  });
  r.get('/certificates/:serial/status', openOperation('certificate.status'), async (req, res) => {
    const p = pathParams(serialPath, req.params);
    queryParams(noQuery, req.query);
    res.set('Cache-Control', 'no-cache').json(await certificateStatus(ctx, p.serial));
  });
  return r;
}
