import { Router } from 'express';
import { z } from 'zod';
import type { CaContext } from '../../ca/context.js';
import { createToken, listTokens, revokeToken, SCOPES } from '../../ca/tokens.js';
import { listAudit } from '../../ca/audit-query.js';
import { checkpointerOf } from '../../ca/audit-checkpoints.js';
import { SignetError } from '../../errors.js';
import { actorOf } from '../../ca/authorization.js';
import { requireAuth } from '../auth.js';
import { auditCursor, enrollmentId, isoDate, limit, noQuery, pathParams, queryParams, text, tokenId } from '../params.js';
import {
  createEnrollmentCredential,
  ENROLLMENT_PROTOCOLS,
  listEnrollmentCredentials,
  MAX_ENROLLMENT_USES,
  revokeEnrollmentCredential,
} from '../../ca/enrollment-credentials.js';
import { parseBody } from '../validate.js';

const tokenSchema = z
  .object({
    name: z.string().min(1).max(100),
    scopes: z.array(z.enum(SCOPES)).min(1, 'must name at least one scope').max(SCOPES.length),
    profiles: z.array(z.string().min(1).max(64)).min(1).max(50).optional(),
    nameSuffixes: z.array(z.string().min(1).max(253)).min(1).max(100).optional(),
    /** Limits the 'groups' scope to these key groups. */
    groups: z.array(z.string().min(1).max(63)).min(1).max(100).optional(),
    expiresAt: isoDate.optional(),
  })
  .strict();

const enrollmentSchema = z
  .object({
    protocol: z.enum(ENROLLMENT_PROTOCOLS).optional(),
    profile: z.string().min(1).max(64),
    nameSuffixes: z.array(z.string().min(1).max(253)).min(1).max(100).nullable().optional(),
    uses: z.number().int().min(1).max(MAX_ENROLLMENT_USES).optional(),
    expiresAt: isoDate.nullable().optional(),
  })
  .strict();
const enrollmentPath = z.object({ id: enrollmentId }).strict();

const auditQuery = z
  .object({
    action: text(64).optional(),
    actor: text(128).optional(),
    target: text(128).optional(),
    since: isoDate.optional(),
    until: isoDate.optional(),
    cursor: auditCursor.optional(),
    limit: limit(1000).optional(),
    order: z.enum(['asc', 'desc']).optional(),
  })
  .strict();
const tokenPath = z.object({ id: tokenId }).strict();

const checkpointQuery = z.object({ limit: limit(1000).optional() }).strict();

/** Token management and the audit trail: admin scope only. */
export function adminRoutes(ctx: CaContext): Router {
  const r = Router();
  r.post('/tokens', requireAuth(ctx, 'token.create'), async (req, res) => {
    queryParams(noQuery, req.query);
    const b = parseBody(tokenSchema, req.body);
    if (b.expiresAt && b.expiresAt <= ctx.now()) throw new SignetError('bad-request', 'expiresAt must be in the future');
    const t = await createToken(ctx, { ...b, scopes: [...new Set(b.scopes)] }, actorOf(req.principal!), undefined, req.ip);
    res.status(201).set('Cache-Control', 'no-store').json(t);
  });
  r.get('/tokens', requireAuth(ctx, 'token.list'), async (req, res) => {
    queryParams(noQuery, req.query);
    res.json({ items: await listTokens(ctx) });
  });
  r.delete('/tokens/:id', requireAuth(ctx, 'token.revoke'), async (req, res) => {
    const p = pathParams(tokenPath, req.params);
    queryParams(noQuery, req.query);
    await revokeToken(ctx, p.id, actorOf(req.principal!), req.ip);
    res.status(204).end();
  });
  r.post('/enrollment-credentials', requireAuth(ctx, 'enrollment.create'), async (req, res) => {
    queryParams(noQuery, req.query);
    const b = parseBody(enrollmentSchema, req.body);
    const made = await createEnrollmentCredential(
      ctx,
      { protocol: b.protocol ?? 'est', profile: b.profile, nameSuffixes: b.nameSuffixes ?? null, uses: b.uses, expiresAt: b.expiresAt ?? null },
      { actor: actorOf(req.principal!), sourceIp: req.ip },
    );
    res.status(201).set('Cache-Control', 'no-store').json(made);
  });
  r.get('/enrollment-credentials', requireAuth(ctx, 'enrollment.list'), async (req, res) => {
    queryParams(noQuery, req.query);
    res.json({ items: await listEnrollmentCredentials(ctx) });
  });
  r.post('/enrollment-credentials/:id/revoke', requireAuth(ctx, 'enrollment.revoke'), async (req, res) => {
    queryParams(noQuery, req.query);
    const p = pathParams(enrollmentPath, req.params);
    parseBody(z.object({}).strict(), req.body ?? {});
    res.json(await revokeEnrollmentCredential(ctx, p.id, { actor: actorOf(req.principal!), sourceIp: req.ip }));
  });
  r.get('/audit', requireAuth(ctx, 'audit.read'), async (req, res) => {
    res.json(await listAudit(ctx, queryParams(auditQuery, req.query)));
  });
  r.get('/audit/checkpoints', requireAuth(ctx, 'audit.read'), async (req, res) => {
    const q = queryParams(checkpointQuery, req.query);
    const cp = checkpointerOf(ctx.db);
    if (!cp) throw new SignetError('unavailable', 'this process keeps no audit checkpoints');
    // This process's file only: each host (PostgreSQL replica) keeps its own; copy from each.
    res.set('Cache-Control', 'no-store').json({
      algorithm: 'Ed25519',
      format: 'JWS compact serialisation (RFC 7515), alg EdDSA (RFC 8037); payload {seq, hash, keyedFrom, time, writer}',
      keyId: cp.key.kid,
      publicKey: cp.key.publicKeyPem,
      publicJwk: { ...cp.key.jwk, kid: cp.key.kid },
      writer: cp.writer,
      items: cp.recent(q.limit ?? 100),
    });
  });
  return r;
}
