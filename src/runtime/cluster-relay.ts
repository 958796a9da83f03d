/**
 * The status bus across cluster workers (node:cluster): each worker sends the changes it
 * publishes to the primary over IPC; the primary forwards each to every other worker, which
 * delivers it on its own bus as a 'worker' change. So every worker's OCSP cache is refreshed at
 * once (not at its next poll), and the CRL-publishing worker schedules CRLs for changes made on
 * any worker. A change never goes back to the worker that sent it: that worker's subscribers
 * heard it when it was published.
 */
import { z } from 'zod';
import type { Logger } from 'pino';
import type { StatusBus } from '../ca/status-bus.js';

/** The IPC message: a status change one worker published. */
const statusMessage = z
  .object({
    type: z.literal('status'),
    change: z.discriminatedUnion('kind', [
      z.object({ kind: z.literal('certificate'), caId: z.string(), serial: z.string() }).strict(),
      z.object({ kind: z.literal('ca'), caId: z.string() }).strict(),
    ]),
  })
  .strict();
export type StatusMessage = z.infer<typeof statusMessage>;

/** A worker's end of the IPC channel: process itself in a worker, a stand-in in tests. */
export interface WorkerChannel {
  send?(message: unknown): boolean;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  off(event: 'message', listener: (message: unknown) => void): unknown;
}

/**
 * In a worker: attaches the relay to the bus. Call once the subscribers have subscribed (a
 * change relayed before then is not delivered, as before the bus). Returns the detach function.
 */
export function connectWorkerRelay(bus: StatusBus, log: Pick<Logger, 'warn'>, channel: WorkerChannel = process as WorkerChannel): () => void {
  const detach = bus.attach({
    send: (change) => {
      channel.send?.({ type: 'status', change } satisfies StatusMessage);
    },
  });
  const onMessage = (m: unknown) => {
    const parsed = statusMessage.safeParse(m);
    if (!parsed.success) return; // the primary's other messages (clusterReady)
    bus.receive({ origin: 'worker', change: parsed.data.change }).catch((e: unknown) => log.warn({ err: e }, 'a relayed status change failed'));
  };
  channel.on('message', onMessage);
  return () => {
    detach();
    channel.off('message', onMessage);
  };
}

/** The primary's view of a worker: enough to forward a message to it. */
export interface RelayPeer {
  isConnected(): boolean;
  send(message: unknown): unknown;
}

/**
 * In the primary: when `message` is a status change from the worker `from`, forwards it to
 * every other connected worker and returns true; any other message is left to the caller.
 */
export function relayStatus<K>(message: unknown, from: K, workers: ReadonlyMap<K, RelayPeer>): boolean {
  const parsed = statusMessage.safeParse(message);
  if (!parsed.success) return false;
  for (const [key, peer] of workers) if (key !== from && peer.isConnected()) peer.send(parsed.data);
  return true;
}
