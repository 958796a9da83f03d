/**
 * Expiry alerts that are not noise (issue #19).
 *
 * A certificate is *at risk* when all of these hold:
 * - it is good (not revoked, not on hold) and not expired;
 * - it is inside its profile's alert window: the last `alertDays` of its life when the profile
 *   sets them, otherwise the last third of its life — where a client renewing on schedule
 *   (ARI's window opens at two thirds, certbot and step renew there) has renewed already;
 * - nothing has succeeded it: no renewal or rekey names it as predecessor, no valid ACME order
 *   names it in `replaces` (ARI), and no later certificate for exactly the same names ends
 *   after it (an ACME client that simply orders again) — a successor that was revoked, or has
 *   itself expired, does not count.
 * A CA certificate within 90 days of its end is always at risk (kind `ca`), unless the CA is
 * revoked, retired, or retiring (a successor issues in its place).
 *
 * Nothing here scans the certificate table: candidates are one range of the (profile, status, notAfter)
 * index per profile in use (the profiles themselves found by seeks, not a scan), the time-left
 * counts one range of (status, notAfter), and successors are looked up by the candidates'
 * serials and names. The server runs sweepExpiry every minute in one process per host (the CRL
 * publisher's) and keeps its result in the database, where every process's /metrics reads it.
 */
import type { SanEntry } from '../pki/names.js';
import { nameKeys } from '../storage/certificate-names.js';
import type { CaContext } from './context.js';
import type { Tx } from '../storage/database.js';
import { emitCertificateAtRisk } from './webhook-events.js';
import { configuredProfiles, type Profile } from './profiles.js';

const HOUR_S = 3600;
const DAY_MS = 86_400_000;
/** A CA certificate this close to its end is at risk whatever else holds. */
export const CA_ALERT_DAYS = 90;
/** The longest a certificate of a profile no longer configured may have lived (profiles allow at most 3650 days). */
const UNKNOWN_PROFILE_MAX_DAYS = 3650;
/** Reported rows are kept this long after the certificate's end, then forgotten. */
const FORGET_AFTER_MS = 30 * DAY_MS;
/** Upper bounds (seconds) of signet_certificate_expiry_seconds: 1 hour to 1 year. */
export const EXPIRY_BUCKETS_S = [
  HOUR_S,
  6 * HOUR_S,
  24 * HOUR_S,
  3 * 24 * HOUR_S,
  7 * 24 * HOUR_S,
  14 * 24 * HOUR_S,
  30 * 24 * HOUR_S,
  90 * 24 * HOUR_S,
  180 * 24 * HOUR_S,
  365 * 24 * HOUR_S,
];

/** A good certificate that may be in its alert window, as the store reads it. */
export interface ExpiryCandidate {
  serial: string;
  caId: string;
  profile: string;
  subject: string;
  commonName: string | null;
  /** JSON array of {type, value}, as stored. */
  sans: string;
  notBefore: Date;
  notAfter: Date;
  createdAt: Date;
}

/** A certificate that could succeed a candidate. */
export interface SuccessorRow {
  serial: string;
  sans: string;
  notAfter: Date;
  createdAt: Date;
}

/** The reads and writes expiry alerts need (storage/expiry-store.ts). */
export interface ExpiryStore {
  /** The profiles certificates were issued under, found by index seeks. */
  profilesInUse(): Promise<string[]>;
  /** Good certificates of `profile` with notAfter in (from, to]. */
  goodEnding(profile: string, from: Date, to: Date): Promise<ExpiryCandidate[]>;
  /** Of `serials`, those a renewal or rekey that is not revoked and ends after `now` names as predecessor. */
  renewed(serials: string[], now: Date): Promise<Set<string>>;
  /** Of `serials`, those a valid ACME order replaced (ARI `replaces`) with a certificate not revoked and ending after `now`. */
  replacedByAcme(serials: string[], now: Date): Promise<Set<string>>;
  /** Certificates not revoked, ending after `now`, created after `since`, holding one of these name-index keys. */
  withNameKeys(keys: string[], since: Date, now: Date): Promise<SuccessorRow[]>;
  /** Good certificates ending after `now`: how many end within each bound (seconds), all of them, and the sum of their seconds left. */
  goodTimeLeft(now: Date, boundsS: number[]): Promise<{ within: number[]; count: number; sumS: number }>;
  /** Every CA: id, status, subject, serial, validity. */
  cas(): Promise<{ id: string; status: string; subject: string; serial: string; notBefore: Date; notAfter: Date }[]>;
  /** Of these alert ids, those reported already. */
  reported(ids: string[]): Promise<Set<string>>;
  /** Records an alert once (false: another process recorded it first); with `tx`, in that transaction. */
  markReported(a: { id: string; kind: string; caId: string; profile: string | null; notAfter: Date; reportedAt: Date }, tx?: Tx): Promise<boolean>;
  /** Forgets reported alerts of certificates that ended before `before`. */
  forgetReported(before: Date): Promise<void>;
  saveSnapshot(json: string): Promise<void>;
  loadSnapshot(): Promise<string | null>;
}

export interface AtRiskCertificate {
  kind: 'certificate';
  /** The alert's identity: the serial. */
  id: string;
  serial: string;
  caId: string;
  profile: string;
  subject: string;
  commonName: string | null;
  sans: SanEntry[];
  notBefore: Date;
  notAfter: Date;
  /** Where its alert window opened. */
  alertFrom: Date;
  secondsLeft: number;
}

export interface AtRiskCa {
  kind: 'ca';
  /** The alert's identity: "ca:" + CA id + ":" + the CA certificate's serial (a renewed CA certificate is another). */
  id: string;
  caId: string;
  subject: string;
  serial: string;
  status: string;
  notBefore: Date;
  notAfter: Date;
  alertFrom: Date;
  secondsLeft: number;
}

export type AtRisk = AtRiskCertificate | AtRiskCa;

/** Where the alert window of a certificate of `profile` opens (profile undefined: no longer configured, the default window). */
export function alertFrom(c: { notBefore: Date; notAfter: Date }, profile: Pick<Profile, 'alertDays'> | undefined): Date {
  if (profile?.alertDays !== undefined) return new Date(c.notAfter.getTime() - profile.alertDays * DAY_MS);
  const life = c.notAfter.getTime() - c.notBefore.getTime();
  return new Date(c.notBefore.getTime() + Math.floor((life * 2) / 3));
}

/** How far ahead a profile's alert window can reach: the longest window one of its certificates can have. */
function reachMs(profile: Profile | undefined): number {
  if (profile?.alertDays !== undefined) return profile.alertDays * DAY_MS;
  return Math.ceil(((profile?.maxValidityDays ?? UNKNOWN_PROFILE_MAX_DAYS) * DAY_MS) / 3);
}

/** A SAN set as one comparable string (order, duplicates and DNS case do not matter). */
const namesKey = (l: SanEntry[]): string => [...new Set(l.map((s) => `${s.type}:${s.value.toLowerCase()}`))].sort().join('\n');

/** The name-index key that finds certificates holding this SAN set most narrowly (a non-wildcard name's own key). */
function narrowKey(sans: SanEntry[]): string | null {
  const pick = sans.find((s) => !s.value.startsWith('*.')) ?? sans[0];
  if (!pick) return null;
  const keys = nameKeys([pick]);
  return keys.length ? keys.reduce((a, b) => (b.length > a.length ? b : a)) : null;
}

const CHUNK = 500;
async function inChunks<T>(items: T[], fn: (chunk: T[]) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += CHUNK) await fn(items.slice(i, i + CHUNK));
}

/** A candidate with its names parsed once. */
type Named = ExpiryCandidate & { names: SanEntry[] };

/** The certificates of these candidates that no successor has replaced. */
async function withoutSuccessor(store: ExpiryStore, candidates: Named[], now: Date): Promise<Named[]> {
  const succeeded = new Set<string>();
  const serials = candidates.map((c) => c.serial);
  await inChunks(serials, async (chunk) => {
    for (const s of await store.renewed(chunk, now)) succeeded.add(s);
    for (const s of await store.replacedByAcme(chunk, now)) succeeded.add(s);
  });
  // An ACME client that orders again (no ARI) or an operator who issues anew: a later
  // certificate for the same names that ends later is the successor.
  const byKey = new Map<string, Named[]>();
  for (const c of candidates) {
    if (succeeded.has(c.serial)) continue;
    const key = narrowKey(c.names);
    if (!key) continue;
    const list = byKey.get(key);
    if (list) list.push(c);
    else byKey.set(key, [c]);
  }
  await inChunks([...byKey.keys()], async (keys) => {
    const since = new Date(Math.min(...keys.flatMap((k) => byKey.get(k)!.map((c) => c.createdAt.getTime()))));
    const later = (await store.withNameKeys(keys, since, now)).map((l) => ({ ...l, names: namesKey(JSON.parse(l.sans) as SanEntry[]) }));
    for (const k of keys)
      for (const c of byKey.get(k)!) {
        const names = namesKey(c.names);
        if (later.some((l) => l.serial !== c.serial && l.createdAt > c.createdAt && l.notAfter > c.notAfter && l.names === names)) succeeded.add(c.serial);
      }
  });
  return candidates.filter((c) => !succeeded.has(c.serial));
}

/**
 * Everything at risk at `now`, soonest end first: certificates (kind `certificate`), then CA
 * certificates among them by the same order (kind `ca`).
 */
export async function findAtRisk(ctx: CaContext, now: Date = ctx.now(), profiles: Map<string, Profile> = configuredProfiles(ctx)): Promise<AtRisk[]> {
  const store = ctx.stores.expiry;
  const out: AtRisk[] = [];
  for (const name of await store.profilesInUse()) {
    const profile = profiles.get(name);
    // A day beyond the reach: certificates issued before the profile's maxValidityDays was lowered.
    const candidates = (await store.goodEnding(name, now, new Date(now.getTime() + reachMs(profile) + DAY_MS)))
      .filter((c) => alertFrom(c, profile) <= now)
      .map((c) => ({ ...c, names: JSON.parse(c.sans) as SanEntry[] }));
    for (const c of await withoutSuccessor(store, candidates, now))
      out.push({
        kind: 'certificate',
        id: c.serial,
        serial: c.serial,
        caId: c.caId,
        profile: c.profile,
        subject: c.subject,
        commonName: c.commonName,
        sans: c.names,
        notBefore: c.notBefore,
        notAfter: c.notAfter,
        alertFrom: alertFrom(c, profile),
        secondsLeft: Math.floor((c.notAfter.getTime() - now.getTime()) / 1000),
      });
  }
  for (const ca of await store.cas()) {
    if (ca.status === 'revoked' || ca.status === 'retired' || ca.status === 'retiring') continue;
    const from = new Date(ca.notAfter.getTime() - CA_ALERT_DAYS * DAY_MS);
    if (from > now) continue;
    out.push({
      kind: 'ca',
      id: `ca:${ca.id}:${ca.serial}`,
      caId: ca.id,
      subject: ca.subject,
      serial: ca.serial,
      status: ca.status,
      notBefore: ca.notBefore,
      notAfter: ca.notAfter,
      alertFrom: from,
      secondsLeft: Math.floor((ca.notAfter.getTime() - now.getTime()) / 1000),
    });
  }
  return out.sort((a, b) => a.notAfter.getTime() - b.notAfter.getTime() || a.id.localeCompare(b.id));
}

/**
 * The alerts that became at risk since the last call, each reported once (the alert id —
 * serial, or the CA certificate — is recorded in ExpiryAlert; a renewal that later comes at
 * risk is a new certificate, reported again). Safe to call from several processes or replicas
 * at once: the first to record an alert reports it. For `certificate.at_risk` notifications.
 */
export async function takeNewlyAtRisk(ctx: CaContext, atRisk?: AtRisk[], now: Date = ctx.now()): Promise<AtRisk[]> {
  const store = ctx.stores.expiry;
  const items = atRisk ?? (await findAtRisk(ctx, now));
  const fresh: AtRisk[] = [];
  await inChunks(items, async (chunk) => {
    const known = await store.reported(chunk.map((a) => a.id));
    for (const a of chunk) {
      if (known.has(a.id)) continue;
      // The alert is recorded with its audit event and webhook event (certificate.at_risk) in one
      // transaction: a crash between them can neither lose the event nor send it twice.
      const recorded = await ctx.db.transaction(async (tx) => {
        const first = await store.markReported(
          { id: a.id, kind: a.kind, caId: a.caId, profile: a.kind === 'certificate' ? a.profile : null, notAfter: a.notAfter, reportedAt: now },
          tx,
        );
        if (first)
          await emitCertificateAtRisk(
            ctx.db,
            {
              serial: a.serial,
              caId: a.caId,
              reason: a.kind === 'ca' ? 'ca-near-end' : 'no-successor',
              details: {
                kind: a.kind,
                notAfter: a.notAfter.toISOString(),
                alertFrom: a.alertFrom.toISOString(),
                ...(a.kind === 'certificate' ? { profile: a.profile, names: a.sans.map((n) => n.value) } : { subject: a.subject }),
              },
            },
            tx,
          );
        return first;
      });
      if (recorded) fresh.push(a);
    }
  });
  return fresh;
}

/** What /metrics shows, as of the last sweep. */
export interface ExpirySnapshot {
  takenAt: string;
  /** At-risk certificates by profile and issuing CA. */
  atRisk: { profile: string; ca: string; count: number }[];
  /** CAs at risk (1 each). */
  casAtRisk: string[];
  /** Good, unexpired certificates by time left: cumulative counts at each bound (seconds), all, sum of seconds left. */
  timeLeft: { bounds: number[]; within: number[]; count: number; sumS: number };
}

/**
 * One sweep: what is at risk (and records what newly is), the time-left counts, saved for
 * every process's /metrics. Returns the snapshot and the alerts new in this sweep.
 */
export async function sweepExpiry(ctx: CaContext, now: Date = ctx.now()): Promise<{ snapshot: ExpirySnapshot; newlyAtRisk: AtRisk[] }> {
  const store = ctx.stores.expiry;
  const items = await findAtRisk(ctx, now);
  const newlyAtRisk = await takeNewlyAtRisk(ctx, items, now);
  const groups = new Map<string, { profile: string; ca: string; count: number }>();
  for (const a of items) {
    if (a.kind !== 'certificate') continue;
    const k = `${a.profile}\n${a.caId}`;
    const g = groups.get(k) ?? { profile: a.profile, ca: a.caId, count: 0 };
    g.count++;
    groups.set(k, g);
  }
  const snapshot: ExpirySnapshot = {
    takenAt: now.toISOString(),
    atRisk: [...groups.values()],
    casAtRisk: items.flatMap((a) => (a.kind === 'ca' ? [a.caId] : [])),
    timeLeft: { bounds: EXPIRY_BUCKETS_S, ...(await store.goodTimeLeft(now, EXPIRY_BUCKETS_S)) },
  };
  await store.saveSnapshot(JSON.stringify(snapshot));
  await store.forgetReported(new Date(now.getTime() - FORGET_AFTER_MS));
  return { snapshot, newlyAtRisk };
}

/** The last sweep's snapshot (null before the first). */
export async function lastSnapshot(ctx: CaContext): Promise<ExpirySnapshot | null> {
  const raw = await ctx.stores.expiry.loadSnapshot();
  return raw ? (JSON.parse(raw) as ExpirySnapshot) : null;
}

/** lastSnapshot, read at most once per `maxAgeMs` (a scrape's three expiry metrics share one read). */
export function snapshotReader(ctx: CaContext, maxAgeMs = 1000): () => Promise<ExpirySnapshot | null> {
  let last: { at: number; value: Promise<ExpirySnapshot | null> } | undefined;
  return () => {
    const t = Date.now();
    if (!last || t - last.at > maxAgeMs) {
      const value = lastSnapshot(ctx);
      last = { at: t, value };
      // A failed read is not kept: the next scrape tries again.
      value.catch(() => {
        if (last?.value === value) last = undefined;
      });
    }
    return last.value;
  };
}

/**
 * Sweeps now and every `everyMs` (one process per host: the CRL publisher's); `onNewlyAtRisk`
 * gets what each sweep found newly at risk. Returns a stop function.
 */
export function watchExpiry(ctx: CaContext, opts: { everyMs?: number; onNewlyAtRisk?: (a: AtRisk[]) => void } = {}): () => void {
  let running = false;
  const run = () => {
    // A sweep slower than the period (a huge CA on a slow disk) is not started twice.
    if (running) return;
    running = true;
    sweepExpiry(ctx)
      .then(
        ({ newlyAtRisk }) => {
          if (newlyAtRisk.length) {
            ctx.log.info({ atRisk: newlyAtRisk.map((a) => a.id) }, `${newlyAtRisk.length} certificate(s) newly at risk of expiring without a successor`);
            opts.onNewlyAtRisk?.(newlyAtRisk);
          }
        },
        (e: unknown) => ctx.log.warn({ err: e }, 'the expiry sweep failed; it runs again within the minute'),
      )
      .finally(() => {
        running = false;
      });
  };
  run();
  const timer = setInterval(run, opts.everyMs ?? 60_000);
  timer.unref();
  return () => clearInterval(timer);
}
