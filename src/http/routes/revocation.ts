import { Router } from 'express';
import { z } from 'zod';
import type { CaContext } from '../../ca/context.js';
import { REVOKE_REASONS, type Revocation } from '../../ca/revocation.js';
import { normalizeSerial } from '../../ca/issuance.js';
import { certificateStatus } from '../../ca/inventory.js';
import { REVOCATION_REASONS, type RevocationReason } from '../../pki/crl.js';
import { requireAuth } from '../auth.js';
import { parseBody } from '../validate.js';
import { requesterOf } from './certificates.js';

// removeFromCRL is an RFC 5280 name: let it through so the service refuses it with a precise reason.
const reason = z.string({ required_error: 'Required: one of ' + REVOKE_REASONS.join(', ') }).refine((r) => (REVOCATION_REASONS as readonly string[]).includes(r), {
  message: `must be an RFC 5280 reason name: ${REVOKE_REASONS.join(', ')}`,
});
const revokeSchema = z.object({
  reason,
  invalidityDate: z.string().datetime({ offset: true, message: 'must be an ISO 8601 date-time' }).transform((s) => new Date(s)).optional(),
  caId: z.string().max(64).optional(),
}).strict();

export function revocationRoutes(ctx: CaContext, revocation: Revocation): Router {
  const r = Router();
  r.post('/certificates/:serial/revoke', requireAuth(ctx, 'revoke'), async (req, res) => {
    const b = parseBody(revokeSchema, req.body);
    res.json(await revocation.revoke(String(req.params.serial), { reason: b.reason as RevocationReason, invalidityDate: b.invalidityDate, caId: b.caId }, requesterOf(req)));
  });
  r.post('/certificates/:serial/unhold', requireAuth(ctx, 'revoke'), async (req, res) => {
    res.json(await revocation.unhold(String(req.params.serial), requesterOf(req)));
  });
  r.post('/cas/:id/revoke', requireAuth(ctx, 'admin'), async (req, res) => {
    const b = parseBody(z.object({ reason }).strict(), req.body);
    res.json(await revocation.revokeCa(String(req.params.id), b.reason as RevocationReason, requesterOf(req)));
  });
  // Public status for relying parties and dashboards: no token, no secrets in it.
  r.get('/certificates/:serial/status', async (req, res) => {
    res.set('Cache-Control', 'no-cache').json(await certificateStatus(ctx, normalizeSerial(String(req.params.serial))));
  });
  return r;
}
