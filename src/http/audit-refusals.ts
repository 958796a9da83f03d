import type { ErrorRequestHandler } from 'express';
import { isSignetError, type SignetError } from '../errors.js';
import { appendAudit } from '../ca/audit.js';
import type { CaContext } from '../ca/context.js';
import type { Database } from '../storage/database.js';
import { actorOf } from '../ca/authorization.js';

const AUDITED = new Set(['unauthorized', 'forbidden', 'bad-csr', 'bad-key', 'rejected-name', 'policy', 'lint-failure']);

/**
 * Records refused API requests (authentication, authorisation and policy refusals) in the
 * audit trail, then passes the error on to the problem handler. Rate-limited requests are
 * not recorded: the limiter exists precisely so that a flood costs no writes.
 */
export function auditRefusals(ctx: CaContext): ErrorRequestHandler {
  return (err, req, res, next) => {
    // A refusal its guard recorded itself (a presented client certificate: holder-authentication.ts).
    if (res.locals.refusalAudited) return next(err);
    const audited = auditRefusal(ctx, err, {
      actor: req.principal ? actorOf(req.principal) : req.grant ? `token:${req.grant.id}` : 'anonymous',
      target: `${req.method} ${req.baseUrl}${req.path}`,
      sourceIp: req.ip,
    });
    if (!audited) return next(err);
    audited.then(
      () => next(err),
      (e: unknown) => {
        req.log?.error({ err: e }, 'could not audit a refused request');
        next(err);
      },
    );
  };
}

/**
 * Records `err` if it is one of the audited refusals. A request with a valid token (a missing
 * right, a policy refusal) is its own request.refused event, written now (the promise); such
 * requests are bounded by the per-token rate limit. An anonymous one (no token, or one that is
 * unknown, expired or revoked) costs no write: it is counted, and the counts are recorded as
 * one request.refused.summary event per interval (null: nothing to wait for).
 */
export function auditRefusal(ctx: CaContext, err: unknown, req: { actor: string; target: string; sourceIp?: string }): Promise<unknown> | null {
  // A lint failure has its own, richer event (written by the issuance path).
  if (!isSignetError(err) || !AUDITED.has(err.type) || err.type === 'lint-failure') return null;
  if (req.actor === 'anonymous') {
    tallyOf(ctx).add(err, req);
    return null;
  }
  return ctx.db.transaction((tx) =>
    appendAudit(tx, {
      actor: req.actor,
      action: 'request.refused',
      target: req.target.slice(0, 200),
      outcome: 'refused',
      sourceIp: req.sourceIp,
      details: { type: err.type, status: err.status, detail: err.detail.slice(0, 500) },
    }),
  );
}

/** Distinct (source address, reason) pairs counted per interval; beyond, only totals. */
export const MAX_KEYS = 100;
const MAX_TARGETS = 3;

interface Count {
  sourceIp: string | null;
  type: string;
  status: number;
  detail: string;
  count: number;
  first: string;
  last: string;
  targets: string[];
}

/**
 * Anonymous refusals of one process, counted in memory per (source address, reason) and
 * written as one summary event per interval and at close. Memory and rows are bounded whatever
 * the flood: at most MAX_KEYS pairs are itemised, the rest only counted.
 */
class RefusalTally {
  private counts = new Map<string, Count>();
  private total = 0;
  private unitemised = 0;
  private since: Date | null = null;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly ctx: CaContext,
    intervalMs: number,
  ) {
    const timer = setInterval(() => {
      void this.flush();
    }, intervalMs);
    timer.unref();
    ctx.db.beforeClose(() => {
      clearInterval(timer);
      return this.flush();
    });
  }

  add(err: SignetError, req: { target: string; sourceIp?: string }): void {
    const now = this.ctx.now().toISOString();
    this.since ??= this.ctx.now();
    this.total++;
    const detail = err.detail.slice(0, 200);
    const key = `${req.sourceIp ?? ''}\n${err.type}\n${detail}`;
    const c = this.counts.get(key);
    if (c) {
      c.count++;
      c.last = now;
      const target = req.target.slice(0, 200);
      if (c.targets.length < MAX_TARGETS && !c.targets.includes(target)) c.targets.push(target);
    } else if (this.counts.size < MAX_KEYS) {
      this.counts.set(key, {
        sourceIp: req.sourceIp ?? null,
        type: err.type,
        status: err.status,
        detail,
        count: 1,
        first: now,
        last: now,
        targets: [req.target.slice(0, 200)],
      });
    } else {
      this.unitemised++;
    }
  }

  flush(): Promise<void> {
    this.flushing = this.flushing.then(() => this.write());
    return this.flushing;
  }

  private async write(): Promise<void> {
    if (!this.total) return;
    const taken = { counts: [...this.counts.values()], total: this.total, unitemised: this.unitemised, since: this.since! };
    this.counts = new Map();
    this.total = 0;
    this.unitemised = 0;
    this.since = null;
    const to = this.ctx.now();
    try {
      await this.ctx.db.transaction((tx) =>
        appendAudit(tx, {
          actor: 'anonymous',
          action: 'request.refused.summary',
          outcome: 'refused',
          sourceIp: taken.counts.length === 1 ? taken.counts[0]!.sourceIp : null,
          details: {
            from: taken.since.toISOString(),
            to: to.toISOString(),
            total: taken.total,
            refusals: taken.counts.sort((a, b) => b.count - a.count),
            unitemised: taken.unitemised,
          },
        }),
      );
    } catch (e) {
      // Kept for the next interval (still bounded): a refusal is never silently dropped.
      this.ctx.log.error({ err: e, refusals: taken.total }, 'could not record the summary of refused anonymous requests; retrying at the next interval');
      for (const c of taken.counts) {
        const key = `${c.sourceIp ?? ''}\n${c.type}\n${c.detail}`;
        const cur = this.counts.get(key);
        if (cur) {
          cur.count += c.count;
          cur.first = c.first;
        } else if (this.counts.size < MAX_KEYS) this.counts.set(key, c);
        else this.unitemised += c.count;
      }
      this.total += taken.total;
      this.unitemised += taken.unitemised;
      this.since = taken.since;
    }
  }
}

const tallies = new WeakMap<Database, RefusalTally>();

function tallyOf(ctx: CaContext): RefusalTally {
  let t = tallies.get(ctx.db);
  if (!t) tallies.set(ctx.db, (t = new RefusalTally(ctx, (ctx.config.SIGNET_AUDIT_INTERVAL_SECONDS ?? 60) * 1000)));
  return t;
}
