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
import { dateTime, documentRoute, itemsOf } from '../openapi.js';

export const tokenSchema = z
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

export const enrollmentSchema = z
  .object({
    protocol: z.enum(ENROLLMENT_PROTOCOLS).optional(),
    profile: z.string().min(1).max(64),
    nameSuffixes: z.array(z.string().min(1).max(253)).min(1).max(100).nullable().optional(),
    uses: z.number().int().min(1).max(MAX_ENROLLMENT_USES).optional(),
    expiresAt: isoDate.nullable().optional(),
  })
  .strict();
const enrollmentPath = z.object({ id: enrollmentId }).strict();

export const auditQuery = z
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
/** Revoking an enrollment credential takes an empty body (or none). */
const emptyBody = z.object({}).strict();

// ---- Responses (the OpenAPI document's, checked against real answers in test/openapi.test.ts)

const tokenGrant = {
  id: tokenId,
  name: z.string(),
  scopes: z.array(z.enum(SCOPES)),
  profiles: z.array(z.string()).nullable().describe('The profiles it may use (null: any)'),
  nameSuffixes: z.array(z.string()).nullable().describe('The names it may act on (null: any)'),
  groups: z.array(z.string()).nullable().describe("The key groups its 'groups' scope may read (null: every group)"),
  expiresAt: dateTime.nullable(),
};
export const tokenCreatedResponse = z
  .object({ ...tokenGrant, token: z.string().startsWith('sgt_').describe('The bearer token: shown once, stored only as a hash') })
  .strict();
export const tokenResponse = z.object({ ...tokenGrant, revokedAt: dateTime.nullable(), lastUsedAt: dateTime.nullable(), createdAt: dateTime }).strict();
export const enrollmentResponse = z
  .object({
    id: enrollmentId,
    protocol: z.enum(ENROLLMENT_PROTOCOLS),
    profile: z.string(),
    nameSuffixes: z.array(z.string()).nullable(),
    usesAllowed: z.number().int(),
    usesSpent: z.number().int(),
    expiresAt: dateTime.nullable(),
    createdAt: dateTime,
    createdBy: z.string(),
    revokedAt: dateTime.nullable(),
    lastUsedAt: dateTime.nullable(),
    status: z.enum(['active', 'used', 'expired', 'revoked']),
  })
  .strict();
export const enrollmentCreatedResponse = z
  .object({ id: enrollmentId, secret: z.string().describe('The EST password / SCEP challenge: shown once'), credential: enrollmentResponse })
  .strict();
export const auditListResponse = z
  .object({
    items: z.array(
      z
        .object({
          seq: z.number().int(),
          time: dateTime,
          actor: z.string(),
          action: z.string(),
          target: z.string().nullable(),
          outcome: z.enum(['success', 'failure', 'refused']),
          sourceIp: z.string().nullable(),
          details: z.record(z.unknown()).nullable(),
          prevHash: z.string(),
          hash: z.string(),
        })
        .strict(),
    ),
    nextCursor: z.string().nullable().describe('Pass as cursor for the next page; null: the last page'),
  })
  .strict();
export const checkpointsResponse = z
  .object({
    algorithm: z.literal('Ed25519'),
    format: z.string(),
    keyId: z.string(),
    publicKey: z.string().startsWith('-----BEGIN PUBLIC KEY-----'),
    publicJwk: z.object({ kty: z.literal('OKP'), crv: z.literal('Ed25519'), x: z.string(), kid: z.string() }).strict(),
    writer: z.string(),
    items: z.array(
      z
        .object({ seq: z.number().int(), hash: z.string(), keyedFrom: z.number().int().nullable(), time: dateTime, writer: z.string(), jws: z.string() })
        .strict(),
    ),
  })
  .strict();

/** Token management and the audit trail: admin scope only. */
export function adminRoutes(ctx: CaContext): Router {
  const r = Router();
  documentRoute('POST /tokens', {
    summary: 'Create an API token',
    query: noQuery,
    body: tokenSchema,
    responses: { 201: { description: 'The token, with its secret (shown once)', schema: tokenCreatedResponse } },
  });
  r.post('/tokens', requireAuth(ctx, 'token.create'), async (req, res) => {
    queryParams(noQuery, req.query);
    const b = parseBody(tokenSchema, req.body);
    if (b.expiresAt && b.expiresAt <= ctx.now()) throw new SignetError('bad-request', 'expiresAt must be in the future');
    const t = await createToken(ctx, { ...b, scopes: [...new Set(b.scopes)] }, actorOf(req.principal!), undefined, req.ip);
    res.status(201).set('Cache-Control', 'no-store').json(t);
  });
  documentRoute('GET /tokens', {
    summary: 'List the API tokens (never their secrets)',
    query: noQuery,
    responses: { 200: { description: 'Every token', schema: itemsOf(tokenResponse) } },
  });
  r.get('/tokens', requireAuth(ctx, 'token.list'), async (req, res) => {
    queryParams(noQuery, req.query);
    res.json({ items: await listTokens(ctx) });
  });
  documentRoute('DELETE /tokens/:id', {
    summary: 'Revoke an API token (at once, on every process)',
    params: tokenPath,
    query: noQuery,
    responses: { 204: { description: 'Revoked' } },
    errors: { 404: 'The token does not exist', 409: 'Already revoked' },
  });
  r.delete('/tokens/:id', requireAuth(ctx, 'token.revoke'), async (req, res) => {
    const p = pathParams(tokenPath, req.params);
    queryParams(noQuery, req.query);
    await revokeToken(ctx, p.id, actorOf(req.principal!), req.ip);
    res.status(204).end();
  });
  documentRoute('POST /enrollment-credentials', {
    summary: 'Create an EST or SCEP enrollment credential',
    query: noQuery,
    body: enrollmentSchema,
    responses: { 201: { description: 'The credential, with its secret (shown once)', schema: enrollmentCreatedResponse } },
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
  documentRoute('GET /enrollment-credentials', {
    summary: 'List the enrollment credentials (never their secrets)',
    query: noQuery,
    responses: { 200: { description: 'Every credential', schema: itemsOf(enrollmentResponse) } },
  });
  r.get('/enrollment-credentials', requireAuth(ctx, 'enrollment.list'), async (req, res) => {
    queryParams(noQuery, req.query);
    res.json({ items: await listEnrollmentCredentials(ctx) });
  });
  documentRoute('POST /enrollment-credentials/:id/revoke', {
    summary: 'Revoke an enrollment credential',
    params: enrollmentPath,
    query: noQuery,
    body: emptyBody,
    responses: { 200: { description: 'The revoked credential', schema: enrollmentResponse } },
    errors: { 404: 'The credential does not exist', 409: 'Already revoked' },
  });
  r.post('/enrollment-credentials/:id/revoke', requireAuth(ctx, 'enrollment.revoke'), async (req, res) => {
    queryParams(noQuery, req.query);
    const p = pathParams(enrollmentPath, req.params);
    parseBody(emptyBody, req.body ?? {});
    res.json(await revokeEnrollmentCredential(ctx, p.id, { actor: actorOf(req.principal!), sourceIp: req.ip }));
  });
  documentRoute('GET /audit', {
    summary: 'Search the audit trail (hash-chained events), paged',
    query: auditQuery,
    responses: { 200: { description: 'One page', schema: auditListResponse } },
  });
  r.get('/audit', requireAuth(ctx, 'audit.read'), async (req, res) => {
    res.json(await listAudit(ctx, queryParams(auditQuery, req.query)));
  });
  documentRoute('GET /audit/checkpoints', {
    summary: "This process's signed audit checkpoints (JWS), with the key to verify them",
    query: checkpointQuery,
    responses: { 200: { description: 'The newest checkpoints', schema: checkpointsResponse } },
    errors: { 503: 'This process keeps no audit checkpoints' },
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
