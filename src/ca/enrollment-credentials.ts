/**
 * Enrollment credentials: what a device presents to enroll over EST (the HTTP Basic password,
 * with the credential id as user name) or SCEP (the challenge password). A credential enrolls
 * certificates of one profile, optionally only for names under its name suffixes, at most
 * `usesAllowed` times (one by default), until it expires or is revoked. Who may do what with
 * it is decided in authorization.ts (the 'enrollment' principal); this module only creates,
 * lists, revokes and authenticates credentials, and spends their uses.
 *
 * Protected like API tokens (tokens.ts): the secret (192 random bits, base64url, shown once) is
 * stored only as a keyed hash (HMAC-SHA256 under a key derived from the master key), looked up
 * by that hash and compared in constant time; the row carries a MAC (row-integrity.ts) over
 * everything that decides what it grants — id, hash, protocol, profile, name suffixes, uses
 * allowed, uses spent, expiry and revocation — checked at every authentication and every spend,
 * so someone who can write to the database but does not hold the master key can neither insert
 * a credential for a secret of their choosing nor widen, extend, un-revoke or refill one.
 * What a MAC cannot stop, putting back an old row with its old MAC, is stopped by the audit
 * trail: a credential with an `enrollment.revoked` event never authenticates again, and one
 * with as many `enrollment.used` events as it has uses is spent, whatever its row says.
 *
 * Spending a use. A credential's use is spent in the transaction that stores the certificate it
 * pays for (the issuance commit, commit-queue.ts, on the database driver), after every check
 * that can refuse the request: a refused request spends nothing, a stored certificate always
 * spent its use, and a crash at any line leaves both or neither. Authentication
 * (authenticateEnrollment) spends nothing; issuance spends for every principal of a stored
 * credential (spendsCredential), so no adapter can forget to. Under the commit's write lock the
 * row is re-read and its count moved by compare-and-set: of two concurrent enrollments with the
 * last use exactly one is stored, the other gets 401 'already used' and its signature is
 * discarded. Concurrent enrollments share the commit, as concurrent issuances do.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { SignetError } from '../errors.js';
import type { EnrollmentCredentialRecord, NewEnrollmentCredentialRecord } from '../model/enrollment.js';
import { validateNamePolicy } from '../pki/names.js';
import type { Tx } from '../storage/database.js';
import type { CredentialSpends, CredentialSpent } from '../storage/issuance-writer.js';
import { appendAudit, type AuditInput } from './audit.js';
import type { Principal } from './authorization.js';
import type { CaContext } from './context.js';
import { loadProfiles } from './profiles.js';
import { rowIntegrity } from './row-integrity.js';

export const ENROLLMENT_PROTOCOLS = ['est', 'scep'] as const;
export type EnrollmentProtocol = (typeof ENROLLMENT_PROTOCOLS)[number];
export type EnrollmentPrincipal = Extract<Principal, { kind: 'enrollment' }>;

export const ENROLLMENT_ID_PREFIX = 'enr_';
/** An enrollment credential id: enr_ and 16 lower-case hex digits. */
export const ENROLLMENT_ID = /^enr_[0-9a-f]{16}$/;
export const ENROLLMENT_REVOKED_ACTION = 'enrollment.revoked';
export const ENROLLMENT_USED_ACTION = 'enrollment.used';
export const ENROLLMENT_REFUSED_ACTION = 'enrollment.refused';
/** The most uses one credential can carry. */
export const MAX_ENROLLMENT_USES = 1_000_000;

/** The enrollment credential rows this module reads and writes (storage/enrollment-store.ts). */
export interface EnrollmentStore {
  create(r: NewEnrollmentCredentialRecord, tx?: Tx): Promise<void>;
  byHash(secretHash: string): Promise<EnrollmentCredentialRecord | null>;
  get(id: string, tx?: Tx): Promise<EnrollmentCredentialRecord | null>;
  /** Every credential, oldest first. */
  listByCreation(): Promise<EnrollmentCredentialRecord[]>;
  /** Sets revokedAt, and the grant MAC that covers it when one is given. */
  revoke(id: string, revokedAt: Date, grantMac: string | undefined, tx?: Tx): Promise<void>;
}

export type EnrollmentStatus = 'active' | 'used' | 'expired' | 'revoked';

/** A credential as lists show it: never its secret or hash. */
export interface EnrollmentCredentialView {
  id: string;
  protocol: EnrollmentProtocol;
  profile: string;
  nameSuffixes: string[] | null;
  usesAllowed: number;
  usesSpent: number;
  expiresAt: Date | null;
  createdAt: Date;
  createdBy: string;
  revokedAt: Date | null;
  lastUsedAt: Date | null;
  status: EnrollmentStatus;
}

export interface NewEnrollmentCredential {
  protocol: EnrollmentProtocol;
  profile: string;
  nameSuffixes?: string[] | null;
  /** Default 1. */
  uses?: number;
  expiresAt?: Date | null;
}

/** The latest expiry a credential can carry (what every date field of Signet can hold). */
const LATEST_EXPIRY = Date.UTC(9999, 11, 31, 23, 59, 59);

function view(r: EnrollmentCredentialRecord, now: Date): EnrollmentCredentialView {
  const status: EnrollmentStatus = r.revokedAt ? 'revoked' : r.usesSpent >= r.usesAllowed ? 'used' : r.expiresAt && r.expiresAt <= now ? 'expired' : 'active';
  return {
    id: r.id,
    protocol: r.protocol as EnrollmentProtocol,
    profile: r.profile,
    nameSuffixes: r.nameSuffixes ? (JSON.parse(r.nameSuffixes) as string[]) : null,
    usesAllowed: r.usesAllowed,
    usesSpent: r.usesSpent,
    expiresAt: r.expiresAt,
    createdAt: r.createdAt,
    createdBy: r.createdBy,
    revokedAt: r.revokedAt,
    lastUsedAt: r.lastUsedAt,
    status,
  };
}

export async function createEnrollmentCredential(
  ctx: CaContext,
  c: { protocol: EnrollmentProtocol; profile: string; nameSuffixes?: string[] | null; uses?: number; expiresAt?: Date | null },
  actor: { actor: string; sourceIp?: string },
): Promise<{ id: string; secret: string; credential: EnrollmentCredentialView }> {
  if (!(ENROLLMENT_PROTOCOLS as readonly string[]).includes(c.protocol))
    throw new SignetError('bad-request', `protocol must be one of ${ENROLLMENT_PROTOCOLS.join(', ')}, not ${JSON.stringify(c.protocol)}`);
  const configured = [...loadProfiles(ctx.config.SIGNET_PROFILES_FILE).keys()];
  if (!configured.includes(c.profile))
    throw new SignetError('bad-request', `profile ${JSON.stringify(c.profile)} is not a configured profile; configured: ${configured.join(', ')}`);
  const suffixes = c.nameSuffixes ?? null;
  if (suffixes) {
    if (!suffixes.length) throw new SignetError('bad-request', 'nameSuffixes must name at least one suffix (or be null for the profile’s own rules)');
    // A suffix issuance could not apply would turn every enrollment with this credential into a 500.
    try {
      validateNamePolicy({ dnsSuffixes: suffixes, emailDomains: suffixes });
    } catch (e) {
      throw new SignetError('bad-request', `nameSuffixes: ${(e as SignetError).detail.replace(/^name policy /, '')}`);
    }
  }
  const uses = c.uses ?? 1;
  if (!Number.isSafeInteger(uses) || uses < 1 || uses > MAX_ENROLLMENT_USES)
    throw new SignetError('bad-request', `uses must be a whole number from 1 to ${MAX_ENROLLMENT_USES}, not ${uses}`);
  const now = ctx.now();
  if (c.expiresAt) {
    const at = c.expiresAt.getTime();
    if (!Number.isFinite(at) || at > LATEST_EXPIRY) throw new SignetError('bad-request', 'expiresAt must be no later than 9999-12-31T23:59:59Z');
    if (at <= now.getTime()) throw new SignetError('bad-request', 'expiresAt must be in the future');
  }
  const secret = randomBytes(24).toString('base64url'); // 192 bits, 32 printable characters
  const id = ENROLLMENT_ID_PREFIX + randomBytes(8).toString('hex');
  const macs = rowIntegrity(ctx.keys);
  const grant = {
    id,
    secretHash: macs.enrollmentSecretHash(secret),
    protocol: c.protocol,
    profile: c.profile,
    nameSuffixes: suffixes ? JSON.stringify(suffixes) : null,
    usesAllowed: uses,
    usesSpent: 0,
    // Stored with millisecond precision: MAC exactly what is stored.
    expiresAt: c.expiresAt ? new Date(c.expiresAt.getTime()) : null,
    revokedAt: null,
  };
  const record: NewEnrollmentCredentialRecord = {
    id,
    secretHash: grant.secretHash,
    protocol: grant.protocol,
    profile: grant.profile,
    nameSuffixes: grant.nameSuffixes,
    usesAllowed: uses,
    expiresAt: grant.expiresAt,
    grantMac: macs.enrollmentGrantMac(grant),
    createdBy: actor.actor,
  };
  await ctx.db.transaction(async (tx) => {
    await ctx.stores.enrollments.create(record, tx);
    await appendAudit(tx, {
      actor: actor.actor,
      action: 'enrollment.created',
      target: id,
      sourceIp: actor.sourceIp,
      details: { protocol: c.protocol, profile: c.profile, nameSuffixes: suffixes, usesAllowed: uses, expiresAt: grant.expiresAt?.toISOString() ?? null },
    });
  });
  const stored = await ctx.stores.enrollments.get(id);
  if (!stored) throw new SignetError('internal', `enrollment credential ${id} was not found after it was stored`);
  return { id, secret, credential: view(stored, now) };
}

export async function listEnrollmentCredentials(ctx: CaContext): Promise<EnrollmentCredentialView[]> {
  const now = ctx.now();
  return (await ctx.stores.enrollments.listByCreation()).map((r) => view(r, now));
}

// ---- Audit anchors ----------------------------------------------------------------------------

/**
 * Per database, how many events of an action the audit trail holds per target: the revocations
 * and spent uses the rows alone cannot undo. Loaded at first use, then refreshed with the new
 * events only, at most every ANCHOR_REFRESH_MS; revocations made by this process are added at
 * once. A use spent elsewhere less than that long ago is covered by the row's own count (and its
 * MAC); only putting back an old row within that window could get one use more.
 */
const ANCHOR_REFRESH_MS = 5_000;
interface Anchor {
  counts: Map<string, number>;
  afterSeq: number;
  at: number;
  loading?: Promise<void>;
}
const anchors = new WeakMap<object, Map<string, Anchor>>();

function anchorOf(ctx: CaContext, action: string): Anchor {
  let m = anchors.get(ctx.db);
  if (!m) anchors.set(ctx.db, (m = new Map()));
  let a = m.get(action);
  if (!a) m.set(action, (a = { counts: new Map(), afterSeq: 0, at: 0 }));
  return a;
}

/** The counts as last read; starts a refresh in the background when they are older than ANCHOR_REFRESH_MS. */
function auditedNow(ctx: CaContext, action: string): Map<string, number> {
  const a = anchorOf(ctx, action);
  if (ctx.now().getTime() - a.at > ANCHOR_REFRESH_MS)
    refreshAnchor(ctx, a, action).catch((e: unknown) => ctx.log.warn({ err: e, action }, 'could not refresh the audited enrollment events'));
  return a.counts;
}

/** The counts, read first if never read. */
async function audited(ctx: CaContext, action: string): Promise<Map<string, number>> {
  const a = anchorOf(ctx, action);
  if (a.at === 0) await refreshAnchor(ctx, a, action);
  return auditedNow(ctx, action);
}

function refreshAnchor(ctx: CaContext, a: Anchor, action: string): Promise<void> {
  return (a.loading ??= (async () => {
    const rows = await ctx.stores.audit.targetsOf(action, a.afterSeq);
    for (const e of rows) if (e.target) a.counts.set(e.target, (a.counts.get(e.target) ?? 0) + 1);
    if (rows.length) a.afterSeq = rows[rows.length - 1]!.seq;
    a.at = ctx.now().getTime();
  })().finally(() => {
    a.loading = undefined;
  }));
}

// ---- Authentication ---------------------------------------------------------------------------

interface Expect {
  protocol: EnrollmentProtocol;
  /** The id the device named (EST: the HTTP Basic user name). */
  id?: string;
  /** The profile of the EST/SCEP path the device enrolls at. */
  profile?: string;
  sourceIp?: string;
}

const PROTOCOL_NAME: Record<string, string> = { est: 'EST', scep: 'SCEP' };

/**
 * Records a refusal (never the secret) and returns the 401 to throw. A secret that matches no
 * credential names nobody: like an unknown API token it costs no write here — the EST and SCEP
 * routes count it in the per-interval summary of anonymous refusals (http/audit-refusals.ts), so
 * a flood of guesses cannot fill the audit trail.
 */
async function refuse(ctx: CaContext, id: string | null, reason: string, detail: string, expect: Expect): Promise<SignetError> {
  if (id === null) return new SignetError('unauthorized', detail);
  // Whoever once held a secret can repeat a refused request at will: one event per credential and
  // reason a minute, the repeats counted with the anonymous refusals.
  if (!firstRefusalLately(ctx, `${id}\n${reason}`)) return new SignetError('unauthorized', detail);
  try {
    await ctx.db.transaction((tx) =>
      appendAudit(tx, {
        actor: `enroll:${id}`,
        action: ENROLLMENT_REFUSED_ACTION,
        target: id,
        outcome: 'refused',
        sourceIp: expect.sourceIp,
        details: { reason, protocol: expect.protocol, profile: expect.profile ?? null },
      }),
    );
  } catch (e) {
    ctx.log.error({ err: e, credentialId: id, reason }, 'could not audit a refused enrollment');
    return new SignetError('unauthorized', detail);
  }
  // The event is the cause: the protocol adapters then know it was recorded (as holder-authentication.ts does).
  return new SignetError('unauthorized', detail, { cause: { audited: ENROLLMENT_REFUSED_ACTION, credentialId: id } });
}

const REFUSAL_EVENT_INTERVAL_MS = 60_000;
const lastRefusalEvents = new WeakMap<object, Map<string, number>>();

/** Whether no event was written for this credential and reason in the last interval (and note one now). */
function firstRefusalLately(ctx: CaContext, key: string): boolean {
  let m = lastRefusalEvents.get(ctx.db);
  if (!m) lastRefusalEvents.set(ctx.db, (m = new Map()));
  const now = ctx.now().getTime();
  const last = m.get(key);
  if (last !== undefined && now - last < REFUSAL_EVENT_INTERVAL_MS) return false;
  if (m.size >= 10_000) for (const [k, t] of m) if (now - t >= REFUSAL_EVENT_INTERVAL_MS) m.delete(k);
  m.set(key, now);
  return true;
}

/** The row's state as a refusal reason and detail, or null if it may enroll now. */
async function unusable(ctx: CaContext, row: EnrollmentCredentialRecord): Promise<[reason: string, detail: string] | null> {
  await audited(ctx, ENROLLMENT_REVOKED_ACTION);
  await audited(ctx, ENROLLMENT_USED_ACTION);
  return unusableNow(ctx, row);
}

/** As unusable, with the audit trail as last read (at most ANCHOR_REFRESH_MS ago): inside a commit, which cannot wait for a read. */
function unusableNow(ctx: CaContext, row: EnrollmentCredentialRecord): [reason: string, detail: string] | null {
  const id = row.id;
  if (row.revokedAt) return ['revoked', `enrollment credential ${id} was revoked`];
  if (auditedNow(ctx, ENROLLMENT_REVOKED_ACTION).has(id)) {
    ctx.log.error(
      { credentialId: id },
      'enrollment credential row says not revoked, but the audit trail recorded its revocation: the row was rolled back in the database; refused',
    );
    return ['revoked', `enrollment credential ${id} was revoked`];
  }
  const spent = spentOf(ctx, row);
  if (spent > row.usesSpent)
    ctx.log.error(
      { credentialId: id },
      'enrollment credential row has fewer uses spent than the audit trail recorded: the row was rolled back in the database',
    );
  if (spent >= row.usesAllowed)
    return [
      'exhausted',
      row.usesAllowed === 1
        ? `enrollment credential ${id} was already used`
        : `enrollment credential ${id} has no uses left (${row.usesAllowed} of ${row.usesAllowed} used)`,
    ];
  if (row.expiresAt && row.expiresAt <= ctx.now()) return ['expired', `enrollment credential ${id} expired at ${row.expiresAt.toISOString()}`];
  return null;
}

/** Uses spent: the row's count, or the audit trail's if that is higher (a row rolled back). */
const spentOf = (ctx: CaContext, row: EnrollmentCredentialRecord) => Math.max(row.usesSpent, auditedNow(ctx, ENROLLMENT_USED_ACTION).get(row.id) ?? 0);

const UNKNOWN_CREDENTIAL = 'unknown enrollment credential, or wrong secret';

/**
 * Resolves a presented secret to its enrollment principal, or throws 401 (every refusal is
 * audited as enrollment.refused). Spends nothing: issuance spends the use in the certificate's commit.
 */
export async function authenticateEnrollment(
  ctx: CaContext,
  secret: string,
  expect: { protocol: 'est' | 'scep'; id?: string; profile?: string; sourceIp?: string },
): Promise<Extract<Principal, { kind: 'enrollment' }>> {
  // Unknown and wrong-for-this-id answer alike: the answer never tells whether an id exists.
  const unknown = UNKNOWN_CREDENTIAL;
  if (typeof secret !== 'string' || !secret || secret.length > 200) throw await refuse(ctx, null, 'unknown', unknown, expect);
  const macs = rowIntegrity(ctx.keys);
  const hash = macs.enrollmentSecretHash(secret);
  const row = await ctx.stores.enrollments.byHash(hash);
  if (!row || !timingSafeEqual(Buffer.from(row.secretHash, 'hex'), Buffer.from(hash, 'hex'))) throw await refuse(ctx, null, 'unknown', unknown, expect);
  if (!macs.enrollmentIntact(row)) {
    // Only the holder of this secret reaches this line: a row written or changed without the master key.
    ctx.log.error(
      { credentialId: row.id },
      'enrollment credential row failed its integrity check (its grant MAC does not verify): it was inserted or changed in the database without the master key; refused',
    );
    throw await refuse(ctx, row.id, 'integrity', unknown, expect);
  }
  if (expect.id !== undefined) {
    const a = Buffer.from(expect.id);
    const b = Buffer.from(row.id);
    if (a.length !== b.length || !timingSafeEqual(a, b)) throw await refuse(ctx, row.id, 'wrong id', unknown, expect);
  }
  const bad = await unusable(ctx, row);
  if (bad) throw await refuse(ctx, row.id, bad[0], bad[1], expect);
  if (row.protocol !== expect.protocol)
    throw await refuse(
      ctx,
      row.id,
      'wrong protocol',
      `enrollment credential ${row.id} is for ${PROTOCOL_NAME[row.protocol] ?? row.protocol}, not ${PROTOCOL_NAME[expect.protocol] ?? expect.protocol}`,
      expect,
    );
  if (expect.profile !== undefined && row.profile !== expect.profile)
    throw await refuse(ctx, row.id, 'wrong profile', `enrollment credential ${row.id} is for profile ${row.profile}, not ${expect.profile}`, expect);
  return {
    kind: 'enrollment',
    credentialId: row.id,
    protocol: row.protocol as EnrollmentProtocol,
    profile: row.profile,
    nameSuffixes: row.nameSuffixes ? (JSON.parse(row.nameSuffixes) as string[]) : null,
  };
}

// ---- Spending uses -----------------------------------------------------------------------------

/** One certificate paid for with one use of a stored credential. */
export interface CredentialUse {
  credentialId: string;
  serial: string;
}

/** Whether a principal's enrollments spend a stored credential's uses (a device certificate has none). */
export function spendsCredential(p: Principal): p is EnrollmentPrincipal {
  return p.kind === 'enrollment' && p.credentialId.startsWith(ENROLLMENT_ID_PREFIX);
}

/**
 * The uses a batch of certificates pays for, spent in the transaction that stores them
 * (issuance-writer.ts CredentialSpends): under the write lock, each credential's row is read,
 * its MAC and state checked, and its count moved by the uses it has left, in arrival order, by
 * compare-and-set with a new MAC. The certificates it cannot pay for are left out of the batch
 * and refused with the 401 a lone request would get (`refusals`, by serial): the rest of the
 * batch commits, so one device racing its last use delays nobody else's certificate.
 * `audits` receives one enrollment.used event per use spent, naming the certificate, as settle
 * runs: the commit chains them with the certificates' own.
 */
export function credentialSpends(
  ctx: CaContext,
  uses: CredentialUse[],
): { spends: CredentialSpends; audits: AuditInput[]; refusals: Map<string, SignetError> } {
  const macs = rowIntegrity(ctx.keys);
  const serials = new Map<string, string[]>();
  for (const u of uses) serials.set(u.credentialId, [...(serials.get(u.credentialId) ?? []), u.serial]);
  const audits: AuditInput[] = [];
  const refusals = new Map<string, SignetError>();
  const settle = (rows: Map<string, EnrollmentCredentialRecord | null>) => {
    audits.length = 0;
    refusals.clear();
    const at = ctx.now();
    const spent: CredentialSpent[] = [];
    for (const [id, paid] of serials) {
      const row = rows.get(id) ?? null;
      let refusal: string | null = null;
      let granted: string[] = [];
      if (!row || !macs.enrollmentIntact(row)) {
        if (row) ctx.log.error({ credentialId: id }, 'enrollment credential row failed its integrity check at spending; refused');
        refusal = UNKNOWN_CREDENTIAL;
      } else {
        refusal = unusableNow(ctx, row)?.[1] ?? null;
        if (!refusal) {
          granted = paid.slice(0, row.usesAllowed - spentOf(ctx, row));
          const usesSpent = row.usesSpent + granted.length;
          granted.forEach((serial, i) => {
            audits.push({
              actor: `enroll:${id}`,
              action: ENROLLMENT_USED_ACTION,
              target: id,
              details: { protocol: row.protocol, profile: row.profile, use: row.usesSpent + i + 1, usesAllowed: row.usesAllowed, serial },
            });
          });
          if (granted.length) spent.push({ id, from: row.usesSpent, usesSpent, grantMac: macs.enrollmentGrantMac({ ...row, usesSpent }), lastUsedAt: at });
          // Those past the last use get what a lone request would get now.
          if (granted.length < paid.length) refusal = unusableNow(ctx, { ...row, usesSpent })?.[1] ?? `enrollment credential ${id} has no uses left`;
        }
      }
      for (const serial of paid.slice(granted.length)) refusals.set(serial, new SignetError('unauthorized', refusal!));
    }
    return { spent, unpaid: new Set(refusals.keys()) };
  };
  return { spends: { wanted: new Map([...serials].map(([id, paid]) => [id, paid.length])), settle }, audits, refusals };
}

/** Revokes a credential at once (audited, and anchored in the audit trail); returns it as lists show it. */
export async function revokeEnrollmentCredential(ctx: CaContext, id: string, actor: { actor: string; sourceIp?: string }): Promise<EnrollmentCredentialView> {
  const revoked = await ctx.db.transaction(async (tx) => {
    const row = await ctx.stores.enrollments.get(id, tx);
    if (!row) throw new SignetError('not-found', `enrollment credential ${id} does not exist`);
    if (row.revokedAt) throw new SignetError('conflict', `enrollment credential ${id} is already revoked`);
    const revokedAt = ctx.now();
    // A row whose MAC does not verify keeps a MAC that does not verify: revoking must not bless it.
    const macs = rowIntegrity(ctx.keys);
    const mac = macs.enrollmentIntact(row) ? macs.enrollmentGrantMac({ ...row, revokedAt }) : undefined;
    await ctx.stores.enrollments.revoke(id, revokedAt, mac, tx);
    await appendAudit(tx, {
      actor: actor.actor,
      action: ENROLLMENT_REVOKED_ACTION,
      target: id,
      sourceIp: actor.sourceIp,
      details: { protocol: row.protocol, profile: row.profile, usesSpent: row.usesSpent, usesAllowed: row.usesAllowed },
    });
    return { ...row, revokedAt };
  });
  const a = anchorOf(ctx, ENROLLMENT_REVOKED_ACTION);
  a.counts.set(id, (a.counts.get(id) ?? 0) + 1);
  return view(revoked, ctx.now());
}
