/**
 * Several HTTP worker processes on one port (node:cluster), for hosts with more than one core.
 * The primary migrates and bootstraps once, then forks the workers and relays status changes
 * between them (runtime/cluster-relay.ts), so every worker's OCSP cache is refreshed at once
 * (not at its next poll) and only worker 1 publishes CRLs, keeping CRL numbers in publication
 * order on SQLite too.
 */
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import { announceBootstrap, bootstrapIfEmpty, openWhenReachable } from '../runtime/open.js';
import { relayStatus } from '../runtime/cluster-relay.js';

/** The cluster's own messages; status changes travel as runtime/cluster-relay.ts's StatusMessage. */
export type RelayMessage =
  | { type: 'listening' }
  /** From the primary: every worker has started, so this one may report ready. */
  | { type: 'clusterReady' };

export const workerIndex = (): number => Number(process.env.SIGNET_WORKER_INDEX ?? 0);

export async function runPrimary(config: Config, log: Logger): Promise<void> {
  const ctx = await openWhenReachable(config, log, { publicUrl: 'record' });
  announceBootstrap(await bootstrapIfEmpty(ctx, config));
  const publicUrl = ctx.config.publicUrl;
  await ctx.db.close();
  let stopping = false;
  let announced = false;
  const started = new Set<number>();
  const workers = new Map<number, Worker>();
  const fork = (index: number) => {
    const w = cluster.fork({ SIGNET_WORKER_INDEX: String(index) });
    workers.set(index, w);
    started.delete(index);
    w.on('message', (m: RelayMessage) => {
      if (relayStatus(m, index, workers)) return;
      if (m.type === 'listening') {
        // Workers listen early (to answer health while the database is unreachable), so a
        // worker's own readiness is not the cluster's: /readyz says ready only once every
        // worker has started, and a load balancer never sends work to a starting one.
        started.add(index);
        if (started.size === config.SIGNET_WORKERS) {
          for (const other of workers.values()) if (other.isConnected()) other.send({ type: 'clusterReady' } satisfies RelayMessage);
          if (!announced)
            process.stdout.write(
              `Signet is serving on http://${config.SIGNET_HOST}:${config.SIGNET_PORT} with ${config.SIGNET_WORKERS} workers (public URL ${publicUrl})\n  web console: http://${config.SIGNET_HOST}:${config.SIGNET_PORT}/console\n`,
            );
          announced = true;
        }
      }
    });
    w.on('exit', (code, signal) => {
      if (stopping) return;
      log.error({ worker: index + 1, code, signal }, 'worker exited; starting a new one');
      fork(index);
    });
  };
  for (let i = 0; i < config.SIGNET_WORKERS; i++) fork(i);
  const stop = () => {
    stopping = true;
    const exits = [...workers.values()].map(
      (w) =>
        new Promise<void>((r) => {
          if (w.isDead()) r();
          else {
            w.once('exit', () => r());
            w.process.kill('SIGTERM');
          }
        }),
    );
    void Promise.all(exits).then(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
