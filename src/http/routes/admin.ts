import { Router } from 'express';
import { z } from 'zod';
import type { CaContext } from '../../ca/context.js';
import { createToken, listTokens, revokeToken, SCOPES } from '../../ca/tokens.js';
import { listAudit } from '../../ca/audit-query.js';
import { checkpointerOf } from '../../ca/audit-checkpoints.js';
import { OPERATIONS } from '../../ca/authorization.js';
import { SignetError } from '../../errors.js';
import { requireAuth } from '../auth.js';
import { parseBody } from '../validate.js';

const isoDate = z.string().datetime({ offset: true, message: 'must be an ISO 8601 date-time' }).transform((s) => new Date(s));

const tokenSchema = z.object({
  name: z.string().min(1).max(100),
  scopes: z.array(z.enum(SCOPES)).min(1, 'must name at least one scope').max(SCOPES.length),
  profiles: z.array(z.string().min(1).max(64)).min(1).max(50).optional(),
  nameSuffixes: z.array(z.string().min(1).max(253)).min(1).max(100).optional(),
  expiresAt: isoDate.optional(),
}).strict();

const auditQuery = z.object({
  action: z.string().max(64).optional(), actor: z.string().max(128).optional(), target: z.string().max(128).optional(),
  since: isoDate.optional(), until: isoDate.optional(), cursor: z.string().max(20).optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(), order: z.enum(['asc', 'desc']).optional(),
}).strict();

const checkpointQuery = z.object({ limit: z.coerce.number().int().min(1).max(1000).optional() }).strict();

/** Token management and the audit trail: admin scope only. */
export function adminRoutes(ctx: CaContext): Router {
  const r = Router();
  r.post('/tokens', requireAuth(ctx, 'admin'), async (req, res) => {
    const b = parseBody(tokenSchema, req.body);
    if (b.expiresAt && b.expiresAt <= ctx.now()) throw new SignetError('bad-request', 'expiresAt must be in the future');
    const t = await createToken(ctx, { ...b, scopes: [...new Set(b.scopes)] }, `token:${req.grant!.id}`, undefined, req.ip);
    res.status(201).set('Cache-Control', 'no-store').json(t);
  });
  r.get('/tokens', requireAuth(ctx, 'admin'), async (_req, res) => {
    res.json({ items: await listTokens(ctx) });
  });
  r.delete('/tokens/:id', requireAuth(ctx, 'admin'), async (req, res) => {
    await revokeToken(ctx, String(req.params.id), `token:${req.grant!.id}`, req.ip);
    res.status(204).end();
  });
  r.get('/audit', requireAuth(ctx, 'admin'), async (req, res) => {
    res.json(await listAudit(ctx, parseBody(auditQuery, req.query, 'query')));
  });
  r.get('/audit/checkpoints', requireAuth(ctx, OPERATIONS['audit.read'].scope), async (req, res) => {
    const { limit } = parseBody(checkpointQuery, req.query, 'query');
    const cp = checkpointerOf(ctx.db);
    if (!cp) throw new SignetError('unavailable', 'this process keeps no audit checkpoints');
    // This process's file only: each host (PostgreSQL replica) keeps its own; copy from each.
    res.set('Cache-Control', 'no-store').json({
      algorithm: 'Ed25519', format: 'JWS compact serialisation (RFC 7515), alg EdDSA (RFC 8037); payload {seq, hash, keyedFrom, time, writer}',
      keyId: cp.key.kid, publicKey: cp.key.publicKeyPem, publicJwk: { ...cp.key.jwk, kid: cp.key.kid },
      writer: cp.writer, items: cp.recent(limit ?? 100),
    });
  });
  return r;
}
