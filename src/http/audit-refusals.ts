import type { ErrorRequestHandler } from 'express';
import { isSignetError } from '../errors.js';
import { appendAudit } from '../ca/audit.js';
import type { CaContext } from '../ca/context.js';

const AUDITED = new Set(['unauthorized', 'forbidden', 'bad-csr', 'bad-key', 'rejected-name', 'policy', 'lint-failure']);

/**
 * Records refused API requests (authentication, authorisation and policy refusals) in the
 * audit trail, then passes the error on to the problem handler. Rate-limited requests are
 * not recorded: the limiter exists precisely so that a flood costs no writes.
 */
export function auditRefusals(ctx: CaContext): ErrorRequestHandler {
  return (err, req, _res, next) => {
    const audited = auditRefusal(ctx, err, { actor: req.grant ? `token:${req.grant.id}` : 'anonymous', target: `${req.method} ${req.baseUrl}${req.path}`, sourceIp: req.ip });
    if (!audited) return next(err);
    audited.then(() => next(err), (e: unknown) => { req.log?.error({ err: e }, 'could not audit a refused request'); next(err); });
  };
}

/** Appends the request.refused event for `err` if it is one of the audited refusals; null otherwise. */
export function auditRefusal(ctx: CaContext, err: unknown, req: { actor: string; target: string; sourceIp?: string }): Promise<unknown> | null {
  // A lint failure has its own, richer event (written by the issuance path).
  if (!isSignetError(err) || !AUDITED.has(err.type) || err.type === 'lint-failure') return null;
  return ctx.db.transaction((tx) => appendAudit(tx, {
    actor: req.actor, action: 'request.refused', target: req.target.slice(0, 200), outcome: 'refused', sourceIp: req.sourceIp,
    details: { type: err.type, status: err.status, detail: err.detail.slice(0, 500) },
  }));
}
