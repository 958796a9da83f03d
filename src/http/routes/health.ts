import { Router } from 'express';
import type { CaContext } from '../../ca/context.js';
import type { Metrics } from '../../observability/metrics.js';

/** `cluster`, in a worker: whether every worker of the cluster has started. */
export function healthRoutes(ctx: CaContext, metrics: Metrics, cluster?: () => boolean): Router {
  const r = Router();
  r.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  r.get('/readyz', async (_req, res) => {
    const checks: Record<string, string> = {};
    try {
      await ctx.db.ping();
      checks.database = 'ok';
    } catch (e) {
      checks.database = `unreachable: ${(e as Error).message.split('\n')[0]}`;
    }
    let active: { keyId: string | null }[] = [];
    try {
      active = await ctx.stores.cas.onlineActive();
      for (const a of active) await ctx.keys.signer(a.keyId!);
      checks.keys = active.length ? 'unlocked' : 'no online CA key';
    } catch (e) {
      checks.keys = `locked: ${(e as Error).message}`;
    }
    // SIGNET_KEY_STORE=pkcs11: the token's login, and every active CA key still in it.
    if (ctx.keys.health) {
      try {
        checks.token = await ctx.keys.health(active.map((a) => a.keyId!));
      } catch (e) {
        checks.token = (e as Error).message;
      }
    }
    if (cluster) checks.cluster = cluster() ? 'all workers started' : 'other workers still starting';
    const ready =
      checks.database === 'ok' && checks.keys === 'unlocked' && (checks.token === undefined || checks.token === 'logged in') && (!cluster || cluster());
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not ready', checks });
  });
  r.get('/metrics', async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  return r;
}
