/**
 * `signet audit verify`: the whole trail, checked three ways.
 *   1. The chain: every event links to its predecessor and carries a valid MAC (legacy events,
 *      written before keying, a valid SHA-256 link, and only before the keyed part), ending at
 *      the recorded head.
 *   2. The checkpoints outside the database: each is signed by the checkpoint key, matches the
 *      chain at its sequence number, and agrees on where keying began; the chain reaches the
 *      newest. A checkpoint that no longer matches is accepted only if an operator holding the
 *      master key recorded a recovery after it (audit.recovered, or backup.restored when a
 *      backup older than the checkpoint was restored); it is still listed.
 *   3. The inventory: every stored certificate and CA has the event that created it, and every
 *      such event's certificate is stored.
 *   4. The authorisation state (with the master key's row MACs, row-integrity.ts): every API
 *      token has its token.created event and a grant MAC that verifies, and is revoked if the
 *      trail says so; every ACME account and valid ACME authorization carries a MAC that
 *      verifies; every CA with a ca.revoked event is revoked in its row, and every CA's id is
 *      its certificate's. A token whose creation event was lost before an operator recorded a
 *      recovery (and whose MAC verifies) is listed as accepted, like a checkpoint. Every
 *      enrollment credential has its enrollment.created event and a grant MAC that verifies, is
 *      revoked if the trail says so, and has spent as many uses as it has enrollment.used
 *      events (a use and its event are written in one transaction).
 * Memory is bounded by the chain's pages, the checkpoints (seq → hash) and one serial per
 * certificate.
 */
import type { Database } from '../storage/database.js';
import type { ApiTokenRecord } from '../model/token.js';
import type { EnrollmentCredentialRecord } from '../model/enrollment.js';
import { inspectCertificate } from '../pki/certificate.js';
import { CA_REVOKED_ACTION, idMatchesCertificate } from './issuers.js';
import type { AccountFields, AuthorizationFields, RowIntegrity } from './row-integrity.js';
import {
  canonical,
  GENESIS_HASH,
  HEAD_KEY,
  KEYED_ACTION,
  legacyHash,
  parseHead,
  RECOVERY_ACTIONS,
  type AuditLog,
  type AuditRow,
  type AuditTrail,
} from './audit.js';
import { caParentProblems } from './ca-chain-check.js';
import { parseCheckpoint, readCheckpointLines, type Checkpoint, type CheckpointKey } from './audit-checkpoints.js';

export interface ChainProblem {
  seq: number;
  problem: string;
}
export interface Finding {
  problem: string;
  seq?: number;
  file?: string;
  line?: number;
}

export interface VerifyReport {
  ok: boolean;
  events: number;
  head: { seq: number; hash: string } | null;
  /** The first keyed event (1 for a trail keyed from the start), or null for an unkeyed trail. */
  keyedFrom: number | null;
  /** The first break in the chain itself. */
  problem?: ChainProblem;
  checkpoints: { files: string[]; count: number; newest: Checkpoint | null; problems: Finding[]; acknowledged: Finding[] };
  inventory: { certificates: number; cas: number; tokens: number; enrollmentCredentials: number; problems: Finding[]; acknowledged: Finding[] };
}

const PAGE = 5000;
const ISSUANCE_ACTIONS = new Set(['certificate.issued', 'certificate.renewed', 'certificate.rekeyed']);
const CA_ACTIONS = new Set(['ca.created', 'ca.imported']);
const TOKEN_CREATED = 'token.created';
/** The status each certificate status event leaves a certificate in. */
const STATUS_ACTIONS: Record<string, string> = { 'certificate.revoked': 'revoked', 'certificate.held': 'hold', 'certificate.unheld': 'good' };
const TOKEN_REVOKED = 'token.revoked';
const ENROLLMENT_CREATED = 'enrollment.created';
const ENROLLMENT_REVOKED = 'enrollment.revoked';
const ENROLLMENT_USED = 'enrollment.used';
const SAMPLE = 10;

/** Walks rows in seq order and reports the first break; rows may be streamed in pages. */
export class ChainVerifier {
  private expectedSeq = 1;
  private prevHash = GENESIS_HASH;
  count = 0;
  keyedFrom: number | null = null;

  constructor(private readonly trail: AuditTrail) {}

  check(row: AuditRow): ChainProblem | null {
    this.count++;
    if (row.seq !== this.expectedSeq) {
      // A gap names the first missing event: that is the one deleted.
      return row.seq > this.expectedSeq
        ? { seq: this.expectedSeq, problem: `event ${this.expectedSeq} is missing (deleted?); next is ${row.seq}` }
        : { seq: row.seq, problem: `event ${row.seq} is out of order` };
    }
    if (row.prevHash !== this.prevHash)
      return { seq: row.seq, problem: `event ${row.seq} does not link to event ${row.seq - 1} (inserted, deleted or reordered)` };
    const keyed = this.trail.isKeyed(row);
    if (this.keyedFrom !== null) {
      if (!keyed) {
        return legacyHash(row.prevHash, canonical(row)) === row.hash
          ? {
              seq: row.seq,
              problem: `event ${row.seq} has an unkeyed hash inside the keyed chain (keyed from event ${this.keyedFrom}): it was rewritten by someone without the master key`,
            }
          : { seq: row.seq, problem: `event ${row.seq} was edited: its content does not match its MAC` };
      }
    } else if (keyed) {
      if (row.seq !== 1 && row.action !== KEYED_ACTION)
        return {
          seq: row.seq,
          problem: `event ${row.seq} is keyed, but the keyed chain does not start with an ${KEYED_ACTION} event: the unkeyed events before it were rewritten`,
        };
      this.keyedFrom = row.seq;
    } else if (legacyHash(row.prevHash, canonical(row)) !== row.hash) {
      return { seq: row.seq, problem: `event ${row.seq} was edited: its content does not match its hash` };
    }
    this.prevHash = row.hash;
    this.expectedSeq++;
    return null;
  }
}

interface Pinned {
  cp: Checkpoint;
  file: string;
  line: number;
}

export interface VerifyOptions {
  /** Checkpoint files to hold the chain to (this data directory's, plus copies from other hosts). */
  checkpointFiles: string[];
  checkpointKey: Pick<CheckpointKey, 'publicKey' | 'kid'>;
  /** The master key's row MACs: without them the authorisation rows are checked against their events only. */
  rowIntegrity?: RowIntegrity;
  onProgress?: (done: number, total: number) => void;
}

/** What verify reads: the chain in pages, and the rows it holds against it (storage/*-store.ts). */
export interface VerifyStores {
  audit: {
    /** Events, or those after `afterSeq`, counted. */
    count(afterSeq?: number): Promise<number>;
    /** The next `take` events after `afterSeq`, in chain order. */
    page(afterSeq: number, take: number): Promise<AuditRow[]>;
    recordedHead(): Promise<string | null>;
  };
  tokens: { listById(): Promise<ApiTokenRecord[]> };
  enrollments: { listByCreation(): Promise<EnrollmentCredentialRecord[]> };
  integrity: {
    serialsAfter(after: string, take: number): Promise<string[]>;
    storedSerials(serials: string[]): Promise<string[]>;
    statusesOf(serials: string[]): Promise<{ serial: string; status: string }[]>;
    notGoodAfter(after: string, take: number): Promise<{ serial: string; status: string }[]>;
    caIds(): Promise<string[]>;
    cas(): Promise<{ id: string; status: string; parentId: string | null; certificateDer: Uint8Array }[]>;
    accountsAfter(after: string, take: number): Promise<(AccountFields & { mac: string | null })[]>;
    validAuthorizationsAfter(after: string, take: number): Promise<(AuthorizationFields & { mac: string | null })[]>;
  };
}

export async function verifyAudit(stores: VerifyStores, trail: AuditTrail, opts: VerifyOptions): Promise<VerifyReport> {
  const { audit, tokens: tokenRows, integrity } = stores;
  // 2a. The checkpoints first: the walk compares each as it passes its sequence number.
  const cps = { files: opts.checkpointFiles, count: 0, newest: null as Checkpoint | null, problems: [] as Finding[], acknowledged: [] as Finding[] };
  const pins = new Map<number, Pinned[]>();
  const all: Pinned[] = [];
  for (const file of opts.checkpointFiles) {
    for await (const l of readCheckpointLines(file)) {
      if (!l.text.trim()) continue;
      const p = parseCheckpoint(l.text.trim(), opts.checkpointKey);
      if (!p.ok) {
        // A line a crash cut short is the one way an honest file holds a broken line.
        if (!l.complete) continue;
        cps.problems.push({ file, line: l.line, problem: `checkpoint ${file}:${l.line} ${p.problem}` });
        continue;
      }
      const pin = { cp: p.checkpoint, file, line: l.line };
      all.push(pin);
      const at = pins.get(pin.cp.seq);
      if (at) at.push(pin);
      else pins.set(pin.cp.seq, [pin]);
      cps.count++;
      if (!cps.newest || pin.cp.seq > cps.newest.seq) cps.newest = pin.cp;
    }
  }
  const mismatches: { pin: Pinned; problem: string }[] = [];

  // 1. The chain, in pages; recovery events and the targets of creating events on the way.
  const total = await audit.count();
  const v = new ChainVerifier(trail);
  const recoveries: { seq: number; time: Date; action: string }[] = [];
  const issued = new Set<string>();
  const cas = new Set<string>();
  const tokensCreated = new Set<string>();
  const tokensRevoked = new Set<string>();
  const enrollmentsCreated = new Set<string>();
  const enrollmentsRevoked = new Set<string>();
  /** credential id → its enrollment.used events (one entry per credential that enrolled). */
  const enrollmentUses = new Map<string, number>();
  const casRevoked = new Map<string, number>();
  /** serial → the status its newest status event left it in (memory: one entry per revoked or held certificate). */
  const statuses = new Map<string, string>();
  let last: AuditRow | undefined;
  let problem: ChainProblem | undefined;
  const walk = async (): Promise<boolean> => {
    const rows = await audit.page(last?.seq ?? 0, PAGE);
    for (const row of rows) {
      const p = v.check(row);
      if (p) {
        problem = p;
        return false;
      }
      last = row;
      if (ISSUANCE_ACTIONS.has(row.action) && row.target) issued.add(row.target);
      else if (CA_ACTIONS.has(row.action) && row.target) cas.add(row.target);
      else if (RECOVERY_ACTIONS.includes(row.action)) recoveries.push({ seq: row.seq, time: row.time, action: row.action });
      else if (row.action === TOKEN_CREATED && row.target) tokensCreated.add(row.target);
      else if (row.action === TOKEN_REVOKED && row.target) tokensRevoked.add(row.target);
      else if (row.action === ENROLLMENT_CREATED && row.target) enrollmentsCreated.add(row.target);
      else if (row.action === ENROLLMENT_REVOKED && row.target) enrollmentsRevoked.add(row.target);
      else if (row.action === ENROLLMENT_USED && row.target) enrollmentUses.set(row.target, (enrollmentUses.get(row.target) ?? 0) + 1);
      else if (row.action === CA_REVOKED_ACTION && row.target && !casRevoked.has(row.target)) casRevoked.set(row.target, row.seq);
      else if (row.action in STATUS_ACTIONS && row.target && statuses.get(row.target) !== 'revoked') statuses.set(row.target, STATUS_ACTIONS[row.action]!);
      for (const pin of pins.get(row.seq) ?? []) {
        if (pin.cp.hash !== row.hash)
          mismatches.push({
            pin,
            problem: `checkpoint ${pin.file}:${pin.line} (${pin.cp.time}) says event ${row.seq} is ${pin.cp.hash.slice(0, 16)}…, but it is ${row.hash.slice(0, 16)}…: the chain was rewritten from there`,
          });
      }
    }
    opts.onProgress?.(v.count, Math.max(total, v.count));
    return rows.length === PAGE;
  };
  const report = (): VerifyReport => ({
    ok: false,
    events: v.count,
    head: last ? { seq: last.seq, hash: last.hash } : null,
    keyedFrom: v.keyedFrom,
    checkpoints: cps,
    inventory: { certificates: 0, cas: 0, tokens: 0, enrollmentCredentials: 0, problems: [], acknowledged: [] },
  });

  // Against the recorded head. An append commits its events and the head together, so a recorded
  // head beyond the walked chain means either events appended while we walked (a live server:
  // walk on to them) or deleted newest events; a chain beyond the recorded head means events
  // inserted after it.
  for (;;) {
    while (await walk());
    if (problem) break;
    const recorded = parseHead(await audit.recordedHead());
    const end = last?.seq ?? 0;
    if (recorded && recorded.seq > end) {
      if (await audit.count(end)) continue; // appended meanwhile
      problem = {
        seq: end + 1,
        problem: `the chain ends at event ${end}, but the recorded head is event ${recorded.seq}: event${recorded.seq > end + 1 ? `s ${end + 1}..${recorded.seq} were` : ` ${end + 1} was`} deleted (or the head was altered)`,
      };
    } else if (!recorded) {
      if (last) problem = { seq: last.seq, problem: `the recorded head (setting ${HEAD_KEY}) is missing: it was deleted` };
    } else if (recorded.seq < end) {
      problem = {
        seq: recorded.seq + 1,
        problem: `event ${recorded.seq + 1} comes after the recorded head (event ${recorded.seq}): events ${recorded.seq + 1}..${end} were inserted`,
      };
    } else if (recorded.hash !== last!.hash) {
      problem = {
        seq: end,
        problem: `event ${end} is not the recorded head (hash ${recorded.hash}): the chain was rewritten and rehashed, or the head was altered`,
      };
    }
    break;
  }
  if (!problem && last && v.keyedFrom === null) {
    problem = {
      seq: 1,
      problem: 'no event carries a valid MAC: the trail was rewritten by someone without the master key (or it was never opened by this version of Signet)',
    };
  }

  // 2b. What the walk could not see: checkpoints beyond the chain's end, and where keying began.
  const end = last?.seq ?? 0;
  for (const pin of all) {
    if (pin.cp.seq > end) {
      mismatches.push({
        pin,
        problem: `checkpoint ${pin.file}:${pin.line} (${pin.cp.time}) is at event ${pin.cp.seq}, but the chain ${problem ? 'breaks before it' : `ends at event ${end}`}${problem ? '' : `: events ${end + 1}..${pin.cp.seq} were deleted`}`,
      });
    } else if (!problem && pin.cp.keyedFrom !== null && pin.cp.keyedFrom !== v.keyedFrom) {
      mismatches.push({
        pin,
        problem: `checkpoint ${pin.file}:${pin.line} (${pin.cp.time}) says the chain is keyed from event ${pin.cp.keyedFrom}, but it is keyed from ${v.keyedFrom === null ? 'nowhere' : `event ${v.keyedFrom}`}: it was rewritten`,
      });
    }
  }
  for (const m of mismatches) {
    // Accepted only after an operator with the master key recorded a recovery later than it.
    const ack = recoveries.find((r) => r.time.getTime() > Date.parse(m.pin.cp.time));
    const f = { file: m.pin.file, line: m.pin.line, seq: m.pin.cp.seq, problem: m.problem };
    if (ack) cps.acknowledged.push({ ...f, problem: `${m.problem} (accepted by ${ack.action} at event ${ack.seq})` });
    else cps.problems.push(f);
  }
  if (!cps.count && end > 0) {
    cps.problems.push({
      problem: `no checkpoint in ${opts.checkpointFiles.join(', ') || '(no file given)'}: deleting the newest events could not be detected`,
    });
  }
  if (problem) return { ...report(), problem };

  // 3. The inventory. A certificate is committed with its event, so one stored after the walk
  //    has its event after the walked end: walk on to it before calling it missing.
  const missing: string[] = [];
  let certificates = 0;
  for (let after = ''; ; ) {
    const serials = await integrity.serialsAfter(after, PAGE);
    for (const serial of serials) {
      certificates++;
      if (!issued.delete(serial)) missing.push(serial);
    }
    if (serials.length < PAGE) break;
    after = serials[serials.length - 1]!;
  }
  const caIds = await integrity.caIds();
  let missingCas = caIds.filter((id) => !cas.has(id));
  if (missing.length || missingCas.length) {
    while (await walk());
    if (problem) return { ...report(), problem };
    for (const s of missing.splice(0)) if (!issued.delete(s)) missing.push(s);
    missingCas = missingCas.filter((id) => !cas.has(id));
  }
  const inventory = { certificates, cas: caIds.length, tokens: 0, enrollmentCredentials: 0, problems: [] as Finding[], acknowledged: [] as Finding[] };
  const sample = (xs: string[]) => xs.slice(0, SAMPLE).join(', ') + (xs.length > SAMPLE ? `, … (${xs.length - SAMPLE} more)` : '');
  if (missing.length)
    inventory.problems.push({
      problem: `${missing.length} of ${certificates} stored certificates have no issuance event (certificate.issued/renewed/rekeyed): ${sample(missing)}`,
    });
  if (missingCas.length)
    inventory.problems.push({ problem: `${missingCas.length} of ${caIds.length} CAs have no ca.created or ca.imported event: ${sample(missingCas)}` });
  // Certificates issued after the certificates were read have events but were not looked for.
  const stillIssued = [...issued];
  const gone: string[] = [];
  for (let i = 0; i < stillIssued.length; i += 1000) {
    const chunk = stillIssued.slice(i, i + 1000);
    const present = new Set(await integrity.storedSerials(chunk));
    gone.push(...chunk.filter((s) => !present.has(s)));
  }
  if (gone.length) inventory.problems.push({ problem: `${gone.length} certificates named by issuance events are not stored (deleted?): ${sample(gone)}` });

  // 4. The authorisation state: tokens, ACME accounts and authorizations, CAs.
  const macs = opts.rowIntegrity;
  const tokens = await tokenRows.listById();
  inventory.tokens = tokens.length;
  // A token made while we walked has its event after the walked end: walk on before calling it missing.
  if (tokens.some((t) => !tokensCreated.has(t.id))) {
    while (await walk());
    if (problem) return { ...report(), problem };
  }
  const noEvent: string[] = [];
  const badMac: string[] = [];
  const unrevoked: string[] = [];
  for (const t of tokens) {
    const intact = macs ? macs.tokenSchemeOf(t) !== null : true;
    if (!intact) badMac.push(t.id);
    if (!tokensCreated.has(t.id)) {
      const ack = intact && macs ? recoveries.find((r) => r.time.getTime() > t.createdAt.getTime()) : undefined;
      if (ack)
        inventory.acknowledged.push({
          problem: `API token ${t.id} has no ${TOKEN_CREATED} event (accepted by ${ack.action} at event ${ack.seq}; its MAC verifies)`,
        });
      else noEvent.push(t.id);
    }
    if (tokensRevoked.has(t.id) && !t.revokedAt) unrevoked.push(t.id);
  }
  if (noEvent.length)
    inventory.problems.push({
      problem: `${noEvent.length} of ${tokens.length} API tokens have no ${TOKEN_CREATED} event (inserted in the database?): ${sample(noEvent)}`,
    });
  if (badMac.length)
    inventory.problems.push({
      problem: `${badMac.length} of ${tokens.length} API tokens fail their grant MAC (inserted or changed in the database without the master key; they are refused): ${sample(badMac)}`,
    });
  if (unrevoked.length)
    inventory.problems.push({
      problem: `${unrevoked.length} API tokens were revoked (${TOKEN_REVOKED} event) but their rows say not (rolled back in the database; they are refused): ${sample(unrevoked)}`,
    });
  // Enrollment credentials: as tokens, and their spent uses against their enrollment.used events.
  // A use and its event commit together. Listed after the walk, a row with fewer uses than the
  // walked events was rolled back; one with more has events after the walked end (a live
  // server): walk on, and only then is a use without its event one.
  const credentials = await stores.enrollments.listByCreation();
  inventory.enrollmentCredentials = credentials.length;
  const usesWalked = new Map(credentials.map((c) => [c.id, enrollmentUses.get(c.id) ?? 0]));
  if (credentials.some((c) => !enrollmentsCreated.has(c.id) || c.usesSpent > usesWalked.get(c.id)!)) {
    while (await walk());
    if (problem) return { ...report(), problem };
  }
  const credentialProblems: [what: string, ids: string[]][] = [
    [`have no ${ENROLLMENT_CREATED} event (inserted in the database?)`, []],
    ['fail their grant MAC (inserted or changed in the database without the master key; they are refused)', []],
    [`were revoked (${ENROLLMENT_REVOKED} event) but their rows say not (rolled back in the database; they are refused)`, []],
    [`have fewer uses spent than their ${ENROLLMENT_USED} events (rolled back in the database; the trail's count is enforced)`, []],
    [`have more uses spent than their ${ENROLLMENT_USED} events (a use without its audit event: changed in the database?)`, []],
  ];
  for (const c of credentials) {
    if (!enrollmentsCreated.has(c.id)) credentialProblems[0]![1].push(c.id);
    if (macs && !macs.enrollmentIntact(c)) credentialProblems[1]![1].push(c.id);
    if (enrollmentsRevoked.has(c.id) && !c.revokedAt) credentialProblems[2]![1].push(c.id);
    const walked = usesWalked.get(c.id)!;
    if (walked > c.usesSpent) credentialProblems[3]![1].push(`${c.id} (${c.usesSpent} spent, ${walked} events)`);
    const now = enrollmentUses.get(c.id) ?? 0;
    if (c.usesSpent > now) credentialProblems[4]![1].push(`${c.id} (${c.usesSpent} spent, ${now} events)`);
  }
  for (const [what, ids] of credentialProblems)
    if (ids.length) inventory.problems.push({ problem: `${ids.length} of ${credentials.length} enrollment credentials ${what}: ${sample(ids)}` });
  if (macs) {
    const badAccounts: string[] = [];
    for (let after = ''; ; ) {
      const rows = await integrity.accountsAfter(after, PAGE);
      for (const a of rows) if (!macs.accountIntact(a)) badAccounts.push(a.id);
      if (rows.length < PAGE) break;
      after = rows[rows.length - 1]!.id;
    }
    if (badAccounts.length)
      inventory.problems.push({
        problem: `${badAccounts.length} ACME accounts fail their MAC (inserted or changed in the database without the master key; they are unknown to Signet): ${sample(badAccounts)}`,
      });
    const badAuthz: string[] = [];
    for (let after = ''; ; ) {
      const rows = await integrity.validAuthorizationsAfter(after, PAGE);
      for (const a of rows) if (!macs.authorizationIntact(a)) badAuthz.push(a.id);
      if (rows.length < PAGE) break;
      after = rows[rows.length - 1]!.id;
    }
    if (badAuthz.length)
      inventory.problems.push({
        problem: `${badAuthz.length} valid ACME authorizations fail their MAC (set valid in the database without the master key; no order can use them): ${sample(badAuthz)}`,
      });
  }
  // Certificates whose row says another status than their events: revoked or held ones first,
  // then rows revoked or held without any event (a scan of the few such rows). A status
  // changed while we walked has its event after the walked end: walk on, then check again only
  // the serials found (as for issuance above; rows changed since are the next verify's).
  const driftOf = (c: { serial: string; status: string }): string | null => {
    const expected = statuses.get(c.serial);
    if (expected === undefined) return c.status === 'good' ? null : `${c.serial} (${c.status}, no revocation event)`;
    return c.status === expected ? null : `${c.serial} (${c.status}, its events say ${expected})`;
  };
  const statusDrift = async (serials: string[]): Promise<{ serial: string; text: string }[]> => {
    const out: { serial: string; text: string }[] = [];
    for (let i = 0; i < serials.length; i += 1000) {
      for (const c of await integrity.statusesOf(serials.slice(i, i + 1000))) {
        const text = driftOf(c);
        if (text) out.push({ serial: c.serial, text });
      }
    }
    return out;
  };
  const drift = async (): Promise<{ serial: string; text: string }[]> => {
    const out = await statusDrift([...statuses.keys()]);
    for (let after = ''; ; ) {
      const rows = await integrity.notGoodAfter(after, PAGE);
      for (const c of rows) if (!statuses.has(c.serial)) out.push({ serial: c.serial, text: driftOf(c)! });
      if (rows.length < PAGE) break;
      after = rows[rows.length - 1]!.serial;
    }
    return out;
  };
  let found = await drift();
  if (found.length) {
    while (await walk());
    if (problem) return { ...report(), problem };
    found = await statusDrift(found.map((d) => d.serial));
  }
  const drifted = found.map((d) => d.text);
  if (drifted.length)
    inventory.problems.push({
      problem: `${drifted.length} certificates have a status their revocation events do not give them (changed in the database; OCSP and CRLs follow the row): ${sample(drifted)}`,
    });
  const caRows = await integrity.cas();
  for (const ca of caRows) {
    const revokedAt = casRevoked.get(ca.id);
    if (revokedAt !== undefined && ca.status !== 'revoked')
      inventory.problems.push({
        problem: `CA ${ca.id} was revoked (${CA_REVOKED_ACTION} event ${revokedAt}) but its row says ${ca.status} (changed in the database; it does not sign)`,
      });
    let matches = false;
    try {
      matches = idMatchesCertificate(ca.id, inspectCertificate(ca.certificateDer));
    } catch {
      /* not a certificate: reported below */
    }
    if (!matches) inventory.problems.push({ problem: `CA ${ca.id} is not the CA of the certificate in its row (changed in the database; it does not sign)` });
  }
  for (const p of caParentProblems(caRows)) inventory.problems.push({ problem: p });
  const head = last ? { seq: last.seq, hash: last.hash } : null;
  return { ok: !cps.problems.length && !inventory.problems.length, events: v.count, head, keyedFrom: v.keyedFrom, checkpoints: cps, inventory };
}

/**
 * `signet audit recover`: after an operator has read the verify report, records that they did
 * (an audit.recovered event, keyed, linked after whatever the newest event is) and moves the
 * head to it, so that appends resume. What it accepts: the checkpoints written before it that
 * the chain no longer matches (verify lists them as accepted), and a recorded head that did not
 * match. What it cannot make good: a break inside the chain (an edited, deleted or inserted
 * event) stays reported until the original rows are restored, e.g. from a backup or an export.
 */
export async function recoverAudit(db: Database, log: AuditLog, trail: AuditTrail, report: VerifyReport, reason: string, actor: string): Promise<AuditRow> {
  const problems = [
    ...(report.problem ? [`chain: ${report.problem.problem}`] : []),
    ...report.checkpoints.problems.map((p) => `checkpoint: ${p.problem}`),
    ...report.inventory.problems.map((p) => `inventory: ${p.problem}`),
  ];
  const row = await db.transaction(async (tx) => {
    const head = await log.head(tx);
    const rows = trail.chain(
      head,
      [
        {
          actor,
          action: 'audit.recovered',
          target: null,
          outcome: 'success',
          details: {
            reason,
            recordedHead: head.recorded,
            newest: head.newest ? { seq: head.newest.seq, hash: head.newest.hash } : null,
            problems: problems.slice(0, 50),
            moreProblems: Math.max(0, problems.length - 50),
          },
        },
      ],
      { unchecked: true },
    );
    await log.append(rows, tx);
    return rows[rows.length - 1]!;
  });
  // This process's own hold on the chain is what was just accepted.
  trail.tainted = null;
  trail.pinned = null;
  return row;
}
