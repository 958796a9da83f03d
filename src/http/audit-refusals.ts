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
    if (!isSignetError(err) || !AUDITED.has(err.type) || err.type === 'lint-failure') return next(err);
    const actor = req.grant ? `token:${req.grant.id}` : 'anonymous';
    ctx.db.transaction((tx) => appendAudit(tx, {
      actor, action: 'request.refused', target: `${req.method} ${req.baseUrl}${req.path}`.slice(0, 200), outcome: 'refused', sourceIp: req.ip,
      details: { type: err.type, status: err.status, detail: err.detail.slice(0, 500) },
    })).then(() => next(err), (e: unknown) => { req.log?.error({ err: e }, 'could not audit a refused request'); next(err); });
  };
}
