/**
 * Event webhooks: registration (admin scope) and the dispatcher that delivers the outbox.
 *
 * Events are written to the outbox (WebhookEvent) in the transaction of the change that causes
 * them (webhook-events.ts). Each webhook keeps a cursor into the outbox, set to the newest event
 * when it is registered (so it never gets older ones), and its events are delivered one at a
 * time in outbox order: the order changes committed in, so per certificate and per CA too. An
 * event is handled when the receiver answered 2xx or it was dead-lettered after
 * maxAttempts failures (exponential backoff with a cap); only then does the cursor move. A
 * process killed between a delivery and the cursor's update delivers it again: at least once,
 * the receiver deduplicates by the event id.
 *
 * Several processes (cluster workers: only worker 1 runs the dispatcher; PostgreSQL replicas:
 * each runs one) share the work through a lease on the webhook row (leaseOwner/leaseUntil):
 * one process delivers for a webhook at a time; a lease left by a killed process expires.
 *
 * Receivers: only the URL an admin registered, http or https, no credentials in it, never a
 * redirect (a 3xx is a failure). Loopback and private addresses are allowed by default (a private
 * CA's consumers are usually on private networks); SIGNET_WEBHOOK_ALLOW_PRIVATE=off refuses them
 * at registration and checks every address a receiver's name resolves to at each delivery.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { lookup as dnsLookup } from 'node:dns';
import { lookup as dnsLookupAsync } from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { hostname } from 'node:os';
import { z } from 'zod';
import { SignetError } from '../errors.js';
import type { OutboxEvent, WebhookDeliveryRecord, WebhookRecord } from '../model/webhook.js';
import type { Tx } from '../storage/database.js';
import { appendAudit } from './audit.js';
import { actorOf, authorize } from './authorization.js';
import type { CaContext } from './context.js';
import type { Requester } from './issuance.js';
import { WEBHOOK_EVENTS, subscribed } from './webhook-events.js';

export interface WebhookStore {
  create(w: Omit<WebhookRecord, 'attempts' | 'nextAttemptAt' | 'lastError' | 'leaseOwner' | 'leaseUntil'>, tx: Tx): Promise<void>;
  get(id: string, tx?: Tx): Promise<WebhookRecord | null>;
  byUrlAndEvents(url: string, events: string, tx: Tx): Promise<WebhookRecord | null>;
  list(): Promise<WebhookRecord[]>;
  remove(id: string, tx: Tx): Promise<boolean>;
  /** The newest outbox event's id (0: none), read in the registration's transaction. */
  newestEventId(tx: Tx): Promise<number>;
  /** Takes the webhook's lease if it is free, expired or already ours. */
  claim(id: string, owner: string, now: Date, until: Date): Promise<boolean>;
  /** Changes the row only while `owner` holds the lease; false if it lost it. */
  update(
    id: string,
    owner: string,
    data: Partial<Pick<WebhookRecord, 'cursor' | 'attempts' | 'nextAttemptAt' | 'lastError' | 'leaseOwner' | 'leaseUntil'>>,
  ): Promise<boolean>;
  eventsAfter(cursor: number, take: number): Promise<OutboxEvent[]>;
  addDelivery(d: WebhookDeliveryRecord): Promise<void>;
  updateDelivery(id: string, data: Pick<WebhookDeliveryRecord, 'status' | 'attempts' | 'lastError' | 'updatedAt'>): Promise<void>;
  deliveries(webhookId: string, take: number, status?: string): Promise<WebhookDeliveryRecord[]>;
  deadLetterCounts(): Promise<Map<string, number>>;
  /** Marks a dead letter for another attempt; returns the row as it now is (null: no such delivery). */
  requestRetry(webhookId: string, deliveryId: string, now: Date, tx: Tx): Promise<WebhookDeliveryRecord | null>;
  /** Outbox events after `cursor`. */
  backlog(cursor: number): Promise<number>;
  /** Deletes outbox events every webhook is past, and delivered rows older than `deliveredBefore`. */
  prune(deliveredBefore: Date): Promise<number>;
}

export interface WebhookSettings {
  retryBaseMs: number;
  retryCapMs: number;
  maxAttempts: number;
  timeoutMs: number;
  pollMs: number;
  allowPrivate: boolean;
}

const MAX_URL = 2048;
/** The ids the API takes (checked by the routes and again here, for the CLI). */
export const webhookIdSchema = z.string().regex(/^wh_[0-9a-f]{16}$/, 'must be a webhook id (wh_ and 16 hex digits)');
export const deliveryIdSchema = z.string().regex(/^dl_[0-9a-f]{16}$/, 'must be a delivery id (dl_ and 16 hex digits)');
export const createWebhookSchema = z
  .object({
    url: z.string().min(1).max(MAX_URL),
    events: z
      .array(z.enum(WEBHOOK_EVENTS))
      .min(1)
      .max(WEBHOOK_EVENTS.length)
      .refine((e) => new Set(e).size === e.length, 'must list each event once'),
    secret: z
      .string()
      .regex(/^[\x21-\x7e]{24,256}$/, 'must be 24 to 256 printable ASCII characters without spaces')
      .optional(),
  })
  .strict();
export type CreateWebhook = z.infer<typeof createWebhookSchema>;

/** Addresses that are not on the public internet: loopback, private, link-local, CGNAT, unique-local, unspecified. */
/** Addresses that are not on the public internet (the full list: docs/security.md, "Webhook receivers"). */
const PRIVATE = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.168.0.0', 16],
  ['198.18.0.0', 15], // benchmarking
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, and the broadcast address
] as const)
  PRIVATE.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [
  ['::', 96], // unspecified, loopback and IPv4-compatible (::a.b.c.d)
  ['64:ff9b::', 96], // NAT64 and 6to4 embed an IPv4 address, perhaps a private one: refused whole
  ['64:ff9b:1::', 48],
  ['2002::', 16],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10], // site-local (deprecated, still routed on some networks)
  ['ff00::', 8], // multicast
] as const)
  PRIVATE.addSubnet(net, prefix, 'ipv6');

export function isPrivateAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return PRIVATE.check(mapped[1]!, 'ipv4');
  return PRIVATE.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4');
}

/** The receiver URL, checked for form: http(s), a host, no credentials, no fragment. */
export function receiverUrl(raw: string): URL {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    // Not echoed: what was pasted here may be anything, a secret included, and refusals are logged.
    throw new SignetError('bad-request', 'url: is not an absolute URL; a receiver is http(s)://host[:port]/path');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new SignetError('bad-request', `url: the scheme ${u.protocol.replace(/:$/, '')} is not allowed; a receiver is an http:// or https:// URL`);
  if (u.username || u.password)
    throw new SignetError(
      'bad-request',
      'url: credentials in the URL (user:password@) are not allowed: they would be stored and shown in clear; receivers authenticate Signet by the Signet-Signature header',
    );
  if (u.hash) throw new SignetError('bad-request', 'url: a fragment (#…) is never sent to a server; remove it');
  if (!u.hostname) throw new SignetError('bad-request', 'url: has no host');
  return u;
}

const bareHost = (u: URL) => u.hostname.replace(/^\[|\]$/g, '');

/** Resolves the receiver's host now, so a typo fails at registration, and applies the private-address policy. */
async function checkResolves(u: URL, allowPrivate: boolean): Promise<void> {
  const host = bareHost(u);
  let addresses: string[];
  if (isIP(host)) addresses = [host];
  else {
    try {
      addresses = (await dnsLookupAsync(host, { all: true, verbatim: true })).map((a) => a.address);
    } catch (e) {
      const code = (e as { code?: string }).code ?? 'error';
      throw new SignetError('bad-request', `url: the host ${host} does not resolve (${code}); register a receiver whose name resolves from the Signet host`);
    }
  }
  if (!allowPrivate) {
    const inside = addresses.find(isPrivateAddress);
    if (inside) throw new SignetError('policy', `url: ${host} resolves to ${inside}, a loopback or private address, and SIGNET_WEBHOOK_ALLOW_PRIVATE is off`);
  }
}

const eventsKey = (events: readonly string[]) => JSON.stringify([...new Set(events)].sort());

/** The API's view of a webhook: never its secret. */
export function webhookView(w: WebhookRecord, deadLetters = 0) {
  return {
    id: w.id,
    url: w.url,
    events: JSON.parse(w.events) as string[],
    createdAt: w.createdAt,
    createdBy: w.createdBy,
    cursor: w.cursor,
    attempts: w.attempts,
    nextAttemptAt: w.nextAttemptAt,
    lastError: w.lastError,
    deadLetters,
  };
}

export const deliveryView = (d: WebhookDeliveryRecord) => ({
  id: d.id,
  eventId: d.eventId,
  type: d.type,
  status: d.status,
  attempts: d.attempts,
  lastError: d.lastError,
  createdAt: d.createdAt,
  updatedAt: d.updatedAt,
  event: JSON.parse(d.payload) as unknown,
});

export const parseWebhookId = (id: string): string => {
  const r = webhookIdSchema.safeParse(id);
  if (!r.success) throw new SignetError('bad-request', `id: ${r.error.issues[0]!.message}`);
  return id;
};

export type DeliveryOutcome = 'delivered' | 'failed' | 'dead';

export class WebhookService {
  private observers: ((o: DeliveryOutcome) => void)[] = [];
  private readonly owner = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  private timer: NodeJS.Timeout | undefined;
  private pruneTimer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private busy = new Set<string>();
  private serving = new Set<Promise<void>>();
  /** Only a process that started the dispatcher delivers (not the CLI, whose retry only marks the row). */
  private started = false;
  private stopped = false;

  constructor(
    private readonly ctx: CaContext,
    private readonly store: WebhookStore,
    readonly settings: WebhookSettings,
  ) {}

  async create(input: CreateWebhook, who: Requester) {
    authorize(who.principal, 'webhook.create');
    const u = receiverUrl(input.url);
    await checkResolves(u, this.settings.allowPrivate);
    const url = u.toString();
    const events = eventsKey(input.events);
    const secret = input.secret ?? `whsec_${randomBytes(32).toString('base64url')}`;
    const id = `wh_${randomBytes(8).toString('hex')}`;
    const { sealed, kekId } = this.ctx.keys.sealSecret(webhookSealId(id), Buffer.from(secret, 'utf8'));
    const now = this.ctx.now();
    const actor = actorOf(who.principal);
    await this.ctx.db.transaction(async (tx) => {
      const same = await this.store.byUrlAndEvents(url, events, tx);
      if (same) throw new SignetError('conflict', `webhook ${same.id} already sends ${JSON.parse(events).join(', ')} to ${url}`);
      // In the transaction, under the audit lock every outbox writer holds: no event commits
      // between this read and the row, so the webhook gets exactly the events after it.
      const cursor = await this.store.newestEventId(tx);
      await this.store.create({ id, url, events, sealed, kekId, cursor, createdAt: now, createdBy: actor }, tx);
      await appendAudit(tx, { actor, action: 'webhook.created', target: id, sourceIp: who.sourceIp, details: { url, events: JSON.parse(events) } });
    });
    this.ctx.log.info({ webhook: id, url }, 'webhook registered');
    return { id, url, events: JSON.parse(events) as string[], createdAt: now, secret };
  }

  async list(who: Requester) {
    authorize(who.principal, 'webhook.list');
    const [rows, dead] = await Promise.all([this.store.list(), this.store.deadLetterCounts()]);
    return rows.map((w) => webhookView(w, dead.get(w.id) ?? 0));
  }

  async show(id: string, who: Requester) {
    authorize(who.principal, 'webhook.read');
    const w = await this.store.get(parseWebhookId(id));
    if (!w) throw new SignetError('not-found', `no webhook ${id}`);
    const [deliveries, deadLetters, backlog] = await Promise.all([
      this.store.deliveries(w.id, 50),
      this.store.deliveries(w.id, 1000, 'dead'),
      this.store.backlog(w.cursor),
    ]);
    return { ...webhookView(w, deadLetters.length), backlog, deliveries: deliveries.map(deliveryView), deadLetterList: deadLetters.map(deliveryView) };
  }

  async remove(id: string, who: Requester) {
    authorize(who.principal, 'webhook.delete');
    parseWebhookId(id);
    await this.ctx.db.transaction(async (tx) => {
      const w = await this.store.get(id, tx);
      if (!w || !(await this.store.remove(id, tx))) throw new SignetError('not-found', `no webhook ${id}`);
      await appendAudit(tx, { actor: actorOf(who.principal), action: 'webhook.deleted', target: id, sourceIp: who.sourceIp, details: { url: w.url } });
    });
    return { id, deleted: true };
  }

  /** Sends a dead letter again (once; back to dead if it fails). */
  async retry(id: string, deliveryId: string, who: Requester) {
    authorize(who.principal, 'webhook.retry');
    parseWebhookId(id);
    const checked = deliveryIdSchema.safeParse(deliveryId);
    if (!checked.success) throw new SignetError('bad-request', `delivery: ${checked.error.issues[0]!.message}`);
    const d = await this.ctx.db.transaction(async (tx) => {
      if (!(await this.store.get(id, tx))) throw new SignetError('not-found', `no webhook ${id}`);
      const d = await this.store.requestRetry(id, deliveryId, this.ctx.now(), tx);
      if (!d) throw new SignetError('not-found', `webhook ${id} has no delivery ${deliveryId}`);
      if (d.status !== 'retrying') throw new SignetError('conflict', `delivery ${deliveryId} is ${d.status}, not a dead letter`);
      await appendAudit(tx, {
        actor: actorOf(who.principal),
        action: 'webhook.delivery.retried',
        target: id,
        sourceIp: who.sourceIp,
        details: { delivery: deliveryId },
      });
      return d;
    });
    this.kick();
    return deliveryView(d);
  }

  /** Delivery outcomes, for metrics. */
  observe(fn: (o: DeliveryOutcome) => void): void {
    this.observers.push(fn);
  }

  /** Outbox events each webhook has still to handle, for the backlog gauge. */
  async gauges(): Promise<{ id: string; backlog: number }[]> {
    const rows = await this.store.list();
    return Promise.all(rows.map(async (w) => ({ id: w.id, backlog: await this.store.backlog(w.cursor) })));
  }

  // ---------------------------------------------------------------------------------------------
  // The dispatcher

  /** Delivers in this process (serve: one per host, the CRL publisher; each replica runs one). */
  start(): void {
    this.started = true;
    this.stopped = false;
    this.timer = setInterval(() => this.kick(), this.settings.pollMs);
    this.timer.unref();
    this.pruneTimer = setInterval(() => {
      this.store
        .prune(new Date(this.ctx.now().getTime() - 7 * 86_400_000))
        .catch((e: unknown) => this.ctx.log.warn({ err: e }, 'pruning the webhook outbox failed'));
    }, 60_000);
    this.pruneTimer.unref();
    this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    clearInterval(this.pruneTimer);
    await this.ticking;
    await Promise.all(this.serving);
  }

  /** Runs a pass now unless one is running. */
  kick(): void {
    if (!this.started || this.ticking || this.stopped) return;
    this.ticking = this.tick()
      .catch((e: unknown) => this.ctx.log.warn({ err: e }, 'webhook delivery pass failed; retried at the next poll'))
      .finally(() => {
        this.ticking = undefined;
      });
  }

  /**
   * One pass: every webhook that is due and not already being served starts on its own; the
   * pass does not wait for them, so a slow or hanging receiver holds up only its own events
   * (the next pass starts the others again while it is still busy).
   */
  async tick(): Promise<void> {
    const now = this.ctx.now();
    const due = (await this.store.list()).filter((w) => !this.busy.has(w.id) && (!w.nextAttemptAt || w.nextAttemptAt <= now));
    for (const w of due) {
      const p = this.serve(w);
      this.serving.add(p);
      void p.finally(() => this.serving.delete(p));
    }
  }

  private leaseUntil(): Date {
    return new Date(this.ctx.now().getTime() + this.settings.timeoutMs * 2 + 10_000);
  }

  private async serve(w: WebhookRecord): Promise<void> {
    this.busy.add(w.id);
    try {
      if (!(await this.store.claim(w.id, this.owner, this.ctx.now(), this.leaseUntil()))) return;
      const fresh = await this.store.get(w.id);
      if (!fresh) return;
      try {
        await this.deliverFor(fresh);
      } finally {
        await this.store.update(w.id, this.owner, { leaseOwner: null, leaseUntil: null });
      }
    } catch (e) {
      this.ctx.log.warn({ err: e, webhook: w.id }, 'webhook delivery failed; retried at the next poll');
    } finally {
      this.busy.delete(w.id);
    }
  }

  private async deliverFor(w: WebhookRecord): Promise<void> {
    const secretBytes = this.ctx.keys.unsealSecret(webhookSealId(w.id), w.sealed);
    if (!secretBytes) {
      this.ctx.log.error({ webhook: w.id }, 'webhook secret does not unseal under this master key; nothing is delivered');
      await this.store.update(w.id, this.owner, { lastError: 'the secret does not unseal under this master key' });
      return;
    }
    const secret = secretBytes.toString('utf8');
    const events = JSON.parse(w.events) as string[];
    const now = () => this.ctx.now();
    // Dead letters an operator asked to send again: one attempt each.
    for (const d of await this.store.deliveries(w.id, 20, 'retrying')) {
      const r = await this.send(w.url, secret, d.type, d.payload);
      this.notify(r.ok ? 'delivered' : 'failed');
      await this.store.updateDelivery(d.id, {
        status: r.ok ? 'delivered' : 'dead',
        attempts: d.attempts + 1,
        lastError: r.ok ? null : r.error,
        updatedAt: now(),
      });
    }
    let cursor = w.cursor;
    let attempts = w.attempts;
    const until = Date.now() + Math.max(30_000, this.settings.pollMs);
    passes: while (!this.stopped && Date.now() < until) {
      const batch = await this.store.eventsAfter(cursor, 100);
      if (!batch.length) break;
      for (const ev of batch) {
        // Checked at every event: one webhook's pass ends on time even if its receiver is slow.
        if (this.stopped || Date.now() >= until) break passes;
        if (!subscribed(events, ev.type)) {
          cursor = ev.id;
          continue;
        }
        // Renew the lease, and save the cursor past the events skipped, before a delivery that may take the timeout.
        if (!(await this.store.update(w.id, this.owner, { cursor, leaseUntil: this.leaseUntil() }))) return;
        const r = await this.send(w.url, secret, ev.type, ev.payload);
        if (r.ok) {
          this.notify('delivered');
          await this.store.addDelivery(record(w.id, ev, 'delivered', attempts + 1, null, now()));
          cursor = ev.id;
          attempts = 0;
          await this.store.update(w.id, this.owner, { cursor, attempts: 0, nextAttemptAt: null, lastError: null });
          continue;
        }
        attempts++;
        if (attempts >= this.settings.maxAttempts) {
          this.notify('dead');
          this.ctx.log.warn({ webhook: w.id, event: ev.id, attempts, error: r.error }, 'webhook event dead-lettered');
          await this.store.addDelivery(record(w.id, ev, 'dead', attempts, r.error, now()));
          cursor = ev.id;
          attempts = 0;
          await this.store.update(w.id, this.owner, { cursor, attempts: 0, nextAttemptAt: null, lastError: r.error });
          continue;
        }
        this.notify('failed');
        const wait = backoff(this.settings, attempts);
        await this.store.update(w.id, this.owner, { cursor, attempts, nextAttemptAt: new Date(now().getTime() + wait), lastError: r.error });
        return;
      }
    }
    if (cursor !== w.cursor) await this.store.update(w.id, this.owner, { cursor });
  }

  private notify(o: DeliveryOutcome): void {
    for (const fn of this.observers) fn(o);
  }

  /** One POST. The secret and the body are never logged. */
  private send(url: string, secret: string, type: string, payload: string): Promise<{ ok: true } | { ok: false; error: string }> {
    const t = Math.floor(Date.now() / 1000);
    const id = (JSON.parse(payload) as { id?: string }).id ?? '';
    const headers = {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(payload)),
      'user-agent': 'Signet-Webhooks/1',
      'signet-signature': signatureHeader(secret, t, payload),
      'signet-event-type': type,
      'signet-event-id': id,
    };
    return new Promise((resolve) => {
      let u: URL;
      try {
        u = receiverUrl(url);
      } catch (e) {
        resolve({ ok: false, error: (e as Error).message });
        return;
      }
      if (!this.settings.allowPrivate && isIP(bareHost(u)) && isPrivateAddress(bareHost(u))) {
        resolve({ ok: false, error: `${bareHost(u)} is a private address and SIGNET_WEBHOOK_ALLOW_PRIVATE is off` });
        return;
      }
      const mod = u.protocol === 'https:' ? https : http;
      let settled = false;
      const done = (r: { ok: true } | { ok: false; error: string }) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(r);
      };
      const req = mod.request(u, { method: 'POST', headers, ...(this.settings.allowPrivate ? {} : { lookup: publicOnlyLookup }) }, (res) => {
        const status = res.statusCode ?? 0;
        // Only the status matters: the body is never read, so an endless or trickling one
        // cannot hold a socket (or the CPU) after the answer.
        res.on('error', () => undefined);
        res.destroy();
        if (status >= 200 && status < 300) done({ ok: true });
        else if (status >= 300 && status < 400) done({ ok: false, error: `the receiver answered ${status} (a redirect, which is never followed)` });
        else done({ ok: false, error: `the receiver answered ${status}` });
      });
      const timer = setTimeout(() => {
        req.destroy();
        done({ ok: false, error: `no answer within ${this.settings.timeoutMs} ms` });
      }, this.settings.timeoutMs);
      req.on('error', (e: NodeJS.ErrnoException) => done({ ok: false, error: `${e.code ?? 'error'}: ${e.message}`.slice(0, 500) }));
      req.end(payload);
    });
  }
}

/** The id a webhook's secret is sealed under (sealSecret binds it into the AES-GCM). */
const webhookSealId = (id: string) => `webhook:${id}`;

/** `t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>` (the Stripe convention). */
export function signatureHeader(secret: string, t: number, body: string): string {
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;
}

/** The wait before attempt `failures + 1`: base · 2^(failures-1), at most the cap, with up to 10% jitter. */
export function backoff(s: Pick<WebhookSettings, 'retryBaseMs' | 'retryCapMs'>, failures: number): number {
  const plain = Math.min(s.retryCapMs, s.retryBaseMs * 2 ** Math.min(failures - 1, 40));
  return Math.round(plain * (1 + Math.random() * 0.1));
}

function record(webhookId: string, ev: OutboxEvent, status: string, attempts: number, lastError: string | null, now: Date): WebhookDeliveryRecord {
  return {
    id: `dl_${randomBytes(8).toString('hex')}`,
    webhookId,
    eventId: ev.id,
    type: ev.type,
    payload: ev.payload,
    status,
    attempts,
    lastError,
    createdAt: now,
    updatedAt: now,
  };
}

/** A lookup that refuses private addresses: checked on the addresses actually connected to (no DNS rebinding around the registration check). */
const publicOnlyLookup: LookupFunction = (host, options, callback) => {
  dnsLookup(host, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, '', 0);
    const list = addresses as unknown as { address: string; family: number }[];
    const inside = list.find((a) => isPrivateAddress(a.address));
    if (inside) return callback(Object.assign(new Error(`${host} resolves to ${inside.address}, a private address`), { code: 'EPRIVATE' }), '', 0);
    if (options.all) return (callback as unknown as (e: null, a: typeof list) => void)(null, list);
    callback(null, list[0]!.address, list[0]!.family);
  });
};
