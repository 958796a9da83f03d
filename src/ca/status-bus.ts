/**
 * The status flow: one bus that every status change travels on, whatever carried it here.
 *
 * A change committed in this process is published; subscribers (the OCSP cache, the CRL
 * publisher, the issuer registry) learn it together with where it came from:
 *   - 'process' — this process committed it (ca/revocation.ts);
 *   - 'worker'  — another cluster worker on this host committed it, relayed over the primary's
 *                 IPC channel (runtime/cluster-relay.ts);
 *   - 'replica' — a poll of the database found it (StatusPoller below). The poll reads every
 *                 serial whose status changed lately, this host's own changes included, and
 *                 only the serial: a polled change is a hint to refresh what is cached.
 *
 * Transports carry this process's publications to its peers and hand their changes back with
 * receive(); a received change goes to the subscribers only, never out again, so a change is
 * never echoed back to the process that made it and cannot loop between transports.
 */
import type { Logger } from 'pino';
import type { OcspStore } from './ocsp-store.js';

/** What changed: a certificate's status (leaf or CA certificate), or a CA itself. */
export type StatusChange = { kind: 'certificate'; caId: string; serial: string } | { kind: 'ca'; caId: string };

/** What a poll learns: the serial, not the issuing CA (the query reads serials only). */
export interface PolledChange {
  kind: 'certificate';
  serial: string;
}

/** A change as a subscriber receives it; the type says what each origin can know. */
export type StatusDelivery = { origin: 'process' | 'worker'; change: StatusChange } | { origin: 'replica'; change: PolledChange };

export type StatusOrigin = StatusDelivery['origin'];

/**
 * A subscriber. Its promise, if any, is awaited by receive() (the poller re-signs one answer at
 * a time and stops a poll at the first failure, as the OCSP service's own poll did); a
 * publication never waits for it.
 */
export type StatusHandler = (delivery: StatusDelivery) => void | Promise<void>;

/** Carries this process's changes to its peers (cluster workers). */
export interface StatusTransport {
  send(change: StatusChange): void;
}

export class StatusBus {
  private readonly handlers = new Set<StatusHandler>();
  private readonly transports = new Set<StatusTransport>();

  constructor(private readonly log: Pick<Logger, 'error'>) {}

  /** Subscribes once; returns the unsubscribe function. */
  subscribe(handler: StatusHandler): () => void {
    // A wrapper, so that subscribing the same function twice still means two subscriptions.
    const h: StatusHandler = (d) => handler(d);
    this.handlers.add(h);
    return () => {
      this.handlers.delete(h);
    };
  }

  /**
   * A change this process has committed: its subscribers first, then every transport. Called
   * after the commit, so nothing here may fail the caller: a subscriber's failure is logged.
   */
  publish(change: StatusChange): void {
    for (const h of this.handlers) {
      this.guard(() => h({ origin: 'process', change })).catch((e: unknown) => this.log.error({ err: e, change }, 'a status subscriber failed'));
    }
    for (const t of this.transports) {
      try {
        t.send(change);
      } catch (e) {
        this.log.error({ err: e, change }, 'sending a status change to the other workers failed');
      }
    }
  }

  /** For transports: a change from elsewhere, to the subscribers only. Rejects with the first subscriber's failure. */
  async receive(delivery: StatusDelivery): Promise<void> {
    await Promise.all([...this.handlers].map((h) => this.guard(() => h(delivery))));
  }

  /** Connects a transport; returns the function that disconnects it. */
  attach(transport: StatusTransport): () => void {
    this.transports.add(transport);
    return () => {
      this.transports.delete(transport);
    };
  }

  /** A handler's synchronous throw as a rejection, so one subscriber cannot keep the next from hearing. */
  private async guard(run: () => void | Promise<void>): Promise<void> {
    await run();
  }
}

export interface StatusPollerOptions {
  /** The changed-status query (the OCSP store's). */
  source: Pick<OcspStore, 'statusChangedSince'>;
  bus: StatusBus;
  pollMs: number;
  now: () => Date;
  log: Pick<Logger, 'warn'>;
}

/**
 * Other replicas' changes: every pollMs, the serials whose status changed since the last poll
 * (with an overlap for clock skew and commits in flight), delivered one at a time as 'replica'
 * changes. Serving processes only: the OCSP cache is what it refreshes.
 */
export class StatusPoller {
  private lastPoll: Date;
  private timer?: NodeJS.Timeout;

  constructor(private readonly opts: StatusPollerOptions) {
    this.lastPoll = opts.now();
  }

  start(): void {
    this.timer = setInterval(() => {
      this.poll().catch((e: unknown) => this.opts.log.warn({ err: e }, 'OCSP status poll failed'));
    }, this.opts.pollMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** One poll. A subscriber's failure ends it (the rest of the batch is not delivered) and is thrown. */
  async poll(): Promise<void> {
    const since = new Date(this.lastPoll.getTime() - 2_000); // overlap covers clock skew and in-flight commits
    const now = this.opts.now();
    const changed = await this.opts.source.statusChangedSince(since, 10_000);
    this.lastPoll = now;
    for (const serial of changed) await this.opts.bus.receive({ origin: 'replica', change: { kind: 'certificate', serial } });
  }
}
