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

// removeFromCRL is an RFC 5280 name: let it through so the service refuses it with a precise reason.
const reason = z
  .string({ required_error: 'Required: one of ' + REVOKE_REASONS.join(', ') })
  .refine((r) => (REVOCATION_REASONS as readonly string[]).includes(r), {
    message: `must be an RFC 5280 reason name: ${REVOKE_REASONS.join(', ')}`,
  });
const revokeSchema = z
  .object({
    reason,
    invalidityDate: isoDate.optional(),
    caId: caId.optional(),
  })
  .strict();
const caPath = z.object({ id: caId }).strict();

export function revocationRoutes(ctx: CaContext, revocation: Revocation): Router {
  const r = Router();
  r.post('/certificates/:serial/revoke', requireAuth(ctx, 'certificate.revoke'), async (req, res) => {
    const p = pathParams(serialPath, req.params);
    queryParams(noQuery, req.query);
    const b = parseBody(revokeSchema, req.body);
    res.json(await revocation.revoke(p.serial, { reason: b.reason as RevocationReason, invalidityDate: b.invalidityDate, caId: b.caId }, requesterOf(req)));
  });
  r.post('/certificates/:serial/unhold', requireAuth(ctx, 'certificate.unhold'), async (req, res) => {
    const p = pathParams(serialPath, req.params);
    queryParams(noQuery, req.query);
    res.json(await revocation.unhold(p.serial, requesterOf(req)));
  });
  r.post('/cas/:id/revoke', requireAuth(ctx, 'ca.revoke'), async (req, res) => {
    const p = pathParams(caPath, req.params);
    queryParams(noQuery, req.query);
    const b = parseBody(z.object({ reason }).strict(), req.body);
    res.json(await revocation.revokeCa(p.id, b.reason as RevocationReason, requesterOf(req)));
  });
  // Public status for relying parties and dashboards: no token, no secrets in it.
  r.get('/certificates/:serial/status', openOperation('certificate.status'), async (req, res) => {
    const p = pathParams(serialPath, req.params);
    queryParams(noQuery, req.query);
    res.set('Cache-Control', 'no-cache').json(await certificateStatus(ctx, p.serial));
  });
  return r;
}
