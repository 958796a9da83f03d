/**
 * Signed audit checkpoints, kept outside the database: the chain's head (sequence number and
 * hash) and where keying began, signed with an Ed25519 key derived from the KEK, appended as
 * one line to <data>/audit-checkpoints (0600). Someone who can write to the database but not
 * to this file (nor holds the master key) cannot make `signet audit verify` accept a trail
 * that lost its newest events, or one rewritten from scratch: each checkpoint must still match
 * the chain at its sequence number, and the chain must reach the newest checkpoint.
 *
 * Each line is a JWS compact serialisation (RFC 7515) with alg EdDSA (RFC 8037), so any JOSE
 * library, or `openssl pkeyutl -verify -rawin` over "<header>.<payload>", verifies it with
 * the published public key (GET /api/v1/audit/checkpoints). Payload:
 *   {"seq": 1234, "hash": "<hex>", "keyedFrom": 1 | null, "time": "<ISO 8601>", "writer": "<host>/<pid>"}
 *
 * Every process that opens Signet keeps its own checkpointer: it checks the chain against the
 * newest checkpoint of its file at start, writes a checkpoint then, about a second after it
 * chained events, every interval when the head moved, and at close. Processes that share a data directory (cluster workers, the CLI)
 * append to the same file (one write per line, O_APPEND); PostgreSQL replicas on other hosts
 * each write the file in their own data directory.
 */
import { systemClock, type Clock } from './clock.js';
import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { closeSync, createReadStream, existsSync, fstatSync, openSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Logger } from 'pino';
import { SignetError } from '../errors.js';
import type { KeyStore } from '../keystore/key-store.js';
import type { Database } from '../storage/database.js';
import {
  AUDIT_MAC_LABEL,
  AuditTrail,
  bindAuditTrail,
  KEYED_ACTION,
  legacyHash,
  canonical,
  parseHead,
  RECOVERY_ACTIONS,
  type AuditLog,
  type AuditRow,
} from './audit.js';

export const CHECKPOINT_FILE = 'audit-checkpoints';
/** How long after chaining events this process checkpoints them (after their commit, normally). */
const SOON_AFTER_CHANGE_MS = 1000;
export const CHECKPOINT_SIGNING_LABEL = 'audit checkpoint signing v1';
/** PKCS#8 wrapping of a raw 32-byte Ed25519 seed (RFC 8410). */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export interface Checkpoint {
  seq: number;
  hash: string;
  keyedFrom: number | null;
  time: string;
  writer: string;
}

export interface CheckpointKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  kid: string;
  publicKeyPem: string;
  jwk: { kty: string; crv: string; x: string };
}

const b64u = (b: Buffer | string) => Buffer.from(b).toString('base64url');

function publicParts(publicKey: KeyObject) {
  const spki = publicKey.export({ format: 'der', type: 'spki' });
  return {
    kid: createHash('sha256').update(spki).digest('hex').slice(0, 16),
    publicKeyPem: publicKey.export({ format: 'pem', type: 'spki' }) as string,
    jwk: publicKey.export({ format: 'jwk' }) as { kty: string; crv: string; x: string },
  };
}

/** The checkpoint signing key: Ed25519 from a KEK-derived seed (same in every process and replica). */
export function checkpointKey(keys: KeyStore): CheckpointKey {
  const seed = keys.deriveSecret(CHECKPOINT_SIGNING_LABEL);
  const der = Buffer.concat([ED25519_PKCS8_PREFIX, seed]);
  const privateKey = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  der.fill(0);
  seed.fill(0);
  const publicKey = createPublicKey(privateKey);
  return { privateKey, publicKey, ...publicParts(publicKey) };
}

export function signCheckpoint(key: Pick<CheckpointKey, 'privateKey' | 'kid'>, cp: Checkpoint): string {
  const input = `${b64u(JSON.stringify({ alg: 'EdDSA', kid: key.kid }))}.${b64u(JSON.stringify({ seq: cp.seq, hash: cp.hash, keyedFrom: cp.keyedFrom, time: cp.time, writer: cp.writer }))}`;
  return `${input}.${b64u(sign(null, Buffer.from(input), key.privateKey))}`;
}

export type ParsedCheckpoint = { ok: true; checkpoint: Checkpoint; jws: string; kid: string } | { ok: false; problem: string };

/** Parses one line and checks its signature under `publicKey` (kid must match too). */
export function parseCheckpoint(line: string, key: Pick<CheckpointKey, 'publicKey' | 'kid'>): ParsedCheckpoint {
  const parts = line.split('.');
  if (parts.length !== 3) return { ok: false, problem: 'is not a checkpoint (not a JWS compact serialisation)' };
  let header: { alg?: unknown; kid?: unknown };
  let payload: Partial<Record<keyof Checkpoint, unknown>>;
  try {
    header = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8'));
    payload = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8'));
  } catch {
    return { ok: false, problem: 'is not a checkpoint (its header or payload is not JSON)' };
  }
  if (header.alg !== 'EdDSA') return { ok: false, problem: `is not a checkpoint (alg ${String(header.alg)}, expected EdDSA)` };
  const shaped =
    Number.isSafeInteger(payload.seq) &&
    (payload.seq as number) >= 0 &&
    typeof payload.hash === 'string' &&
    /^[0-9a-f]{64}$/.test(payload.hash) &&
    (payload.keyedFrom === null || Number.isSafeInteger(payload.keyedFrom)) &&
    typeof payload.time === 'string' &&
    !Number.isNaN(Date.parse(payload.time)) &&
    typeof payload.writer === 'string';
  if (!shaped) return { ok: false, problem: 'is not a checkpoint (its payload lacks seq, hash, keyedFrom, time or writer)' };
  if (header.kid !== key.kid)
    return { ok: false, problem: `is signed by another key (kid ${String(header.kid)}; this master key's checkpoint key is ${key.kid})` };
  if (!verify(null, Buffer.from(`${parts[0]}.${parts[1]}`), key.publicKey, Buffer.from(parts[2]!, 'base64url'))) {
    return { ok: false, problem: 'is forged: its signature does not verify under the checkpoint key' };
  }
  return { ok: true, checkpoint: payload as unknown as Checkpoint, jws: line, kid: key.kid };
}

export interface CheckpointLine {
  line: number;
  text: string;
  complete: boolean;
}

/** Every line of a checkpoint file, streamed (a year of minutes is ~100 MB). */
export async function* readCheckpointLines(file: string): AsyncGenerator<CheckpointLine> {
  if (!existsSync(file)) return;
  const rl = createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
  // readline drops the final newline, so a line is known complete only once the next arrives.
  let pending: CheckpointLine | null = null;
  let n = 0;
  for await (const text of rl) {
    if (pending) yield pending;
    pending = { line: ++n, text, complete: true };
  }
  if (pending) {
    const fd = openSync(file, 'r');
    try {
      const size = fstatSync(fd).size;
      const last = Buffer.alloc(1);
      if (size) readSync(fd, last, 0, 1, size - 1);
      pending.complete = last.toString() === '\n';
    } finally {
      closeSync(fd);
    }
    yield pending;
  }
}

/** The last `n` complete lines of a file, newest first, read backwards from its end. */
export function tailLines(file: string, n: number): string[] {
  if (!existsSync(file)) return [];
  const fd = openSync(file, 'r');
  try {
    let pos = fstatSync(fd).size;
    let text = '';
    const chunk = Buffer.alloc(64 * 1024);
    while (pos > 0 && text.split('\n').length <= n + 1) {
      const len = Math.min(chunk.length, pos);
      pos -= len;
      readSync(fd, chunk, 0, len, pos);
      text = chunk.subarray(0, len).toString('latin1') + text;
    }
    const lines = text.split('\n');
    lines.pop(); // the part after the last newline: empty, or a line still being written
    if (pos > 0) lines.shift(); // may be cut
    return lines.filter(Boolean).slice(-n).reverse();
  } finally {
    closeSync(fd);
  }
}

/** The newest well-signed checkpoint in `file`, or null. */
function newestCheckpoint(file: string, key: CheckpointKey): Checkpoint | null {
  for (const line of tailLines(file, 50)) {
    const p = parseCheckpoint(line, key);
    if (p.ok) return p.checkpoint;
  }
  return null;
}

/** What the checkpointer reads of the chain besides its head (storage/audit-store.ts). */
export interface CheckpointedLog extends AuditLog {
  newest(): Promise<AuditRow | null>;
  at(seq: number): Promise<AuditRow | null>;
  hashAt(seq: number): Promise<string | null>;
  /** The recorded head's value (Setting audit.head), or null. */
  recordedHead(): Promise<string | null>;
  /** The first `take` events with `action`, oldest first. */
  withAction(action: string, take: number): Promise<AuditRow[]>;
  /** The newest `take` events with one of `actions` later than `time`, newest first. */
  withActionsSince(actions: readonly string[], time: Date, take: number): Promise<AuditRow[]>;
}

const checkpointers = new WeakMap<Database, Checkpointer>();

export function checkpointerOf(db: Database): Checkpointer | undefined {
  return checkpointers.get(db);
}

/**
 * Writes this process's checkpoints, and holds the chain to them: a chain that falls behind or
 * diverges from a checkpoint (and no recovery event came after it) taints the trail, so that
 * appends are refused until an operator recovers it.
 */
export class Checkpointer {
  private timer?: NodeJS.Timeout;
  private soon?: NodeJS.Timeout;
  private running: Promise<void> = Promise.resolve();
  private last: Checkpoint | null = null;
  private keyedFrom: number | null = null;
  readonly writer = `${hostname()}/${process.pid}`;

  constructor(
    private readonly db: Database,
    private readonly events: CheckpointedLog,
    private readonly trail: AuditTrail,
    readonly key: CheckpointKey,
    readonly file: string,
    private readonly log: Logger,
  ) {}

  /**
   * At start: trust the newest checkpoint of the file (its signature verified) as the point the
   * chain may not fall behind, check the chain against it, key a legacy trail, checkpoint.
   */
  async init(): Promise<void> {
    let newest: Checkpoint | null;
    try {
      newest = newestCheckpoint(this.file, this.key);
    } catch (e) {
      throw new SignetError(
        'configuration',
        `the audit checkpoint file ${this.file} could not be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): it must be readable and writable by this user`,
        { cause: e },
      );
    }
    if (newest) {
      this.last = newest;
      this.trail.pinned = { seq: newest.seq, hash: newest.hash, time: new Date(newest.time) };
      if (newest.keyedFrom !== null) this.trail.keyed = true;
    }
    await this.checkpoint(); // holds the chain to the pinned checkpoint (taints the trail if it fell behind)
    if (this.trail.tainted) return;
    try {
      // The check every append makes, so that a trail that will refuse appends says so at start.
      const { startKeying } = this.trail.next(await this.events.head());
      if (!startKeying) return;
      // A trail written before keying gets its audit.chain.keyed event now, and the checkpoint
      // below pins where keying began, before anyone could rewrite the trail as unkeyed events.
      await this.db.transaction(async (tx) => this.events.append(this.trail.chain(await this.events.head(tx), []), tx));
    } catch (e) {
      this.log.error(
        { err: e },
        'the audit trail failed its integrity check at start-up; changes are refused until an operator runs `signet audit verify` and `signet audit recover`',
      );
      return;
    }
    await this.checkpoint();
  }

  /**
   * Checkpoints every `intervalMs` when the head moved, and about a second after this process
   * chained events: what a database-only attacker could delete undetected is the events of the
   * last second, not of the last interval. The timers never keep the process alive.
   */
  start(intervalMs: number): void {
    this.timer = setInterval(() => {
      void this.checkpoint();
    }, intervalMs);
    this.timer.unref();
    const soonMs = Math.min(SOON_AFTER_CHANGE_MS, intervalMs);
    this.trail.onChained = () => {
      if (this.soon || !this.timer) return;
      this.soon = setTimeout(() => {
        this.soon = undefined;
        void this.checkpoint();
      }, soonMs);
      this.soon.unref();
    };
  }

  /** The last checkpoint, then no more. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    if (this.soon) clearTimeout(this.soon);
    this.timer = this.soon = undefined;
    this.trail.onChained = null;
    await this.checkpoint();
  }

  /** One checkpoint if the head moved (serialised: a slow write never overlaps the next). */
  checkpoint(): Promise<void> {
    this.running = this.running
      .then(() => this.run())
      .catch((e: unknown) => {
        this.log.error({ err: e }, 'audit checkpoint failed');
      });
    return this.running;
  }

  private async run(): Promise<void> {
    let newest = await this.events.newest();
    const pinned = this.trail.pinned;
    if (pinned) {
      const at = await this.events.hashAt(pinned.seq);
      if (at !== pinned.hash) {
        const why =
          at !== null
            ? `event ${pinned.seq} no longer has the hash checkpointed at ${pinned.time.toISOString()}: the chain was rewritten from there`
            : `the chain ends at event ${newest?.seq ?? 0}, before event ${pinned.seq} checkpointed at ${pinned.time.toISOString()}: the newest events were deleted`;
        if (!(await this.recoveredSince(pinned.time))) {
          if (this.trail.tainted === null)
            this.log.error(
              { file: this.file, checkpoint: pinned },
              `audit trail tampered with: ${why}; changes are refused until an operator runs \`signet audit verify\` and \`signet audit recover\``,
            );
          this.trail.tainted = why;
          return;
        }
        this.log.warn(
          { checkpoint: pinned },
          'the audit trail was recovered by an operator after this checkpoint; holding the chain to new checkpoints from here',
        );
        this.trail.pinned = null;
        this.trail.tainted = null;
        this.last = null;
      }
    }
    if (!newest || (this.last && this.last.seq === newest.seq && this.last.hash === newest.hash)) return;
    // Sign only a head that is a genuine, recorded event: never attest what someone without the key wrote.
    // The newest event and the recorded head are two reads; a writer committing between them
    // (another worker, the CLI) makes them differ for a moment, so a mismatch is read again
    // before it is called one.
    let recorded = parseHead(await this.events.recordedHead());
    for (let attempt = 1; attempt < 5 && (!recorded || recorded.seq !== newest.seq || recorded.hash !== newest.hash); attempt++) {
      await new Promise((r) => setTimeout(r, 25 * attempt));
      const again = await this.events.newest();
      if (!again) return;
      newest = again;
      recorded = parseHead(await this.events.recordedHead());
    }
    const keyed = this.trail.isKeyed(newest);
    const legacy = !keyed && !this.trail.keyed && legacyHash(newest.prevHash, canonical(newest)) === newest.hash;
    if ((!keyed && !legacy) || !recorded || recorded.seq !== newest.seq || recorded.hash !== newest.hash) {
      this.log.error(
        { seq: newest.seq },
        'audit head not checkpointed: the newest event carries no valid MAC or is not the recorded head; run `signet audit verify`',
      );
      return;
    }
    const cp: Checkpoint = {
      seq: newest.seq,
      hash: newest.hash,
      keyedFrom: keyed ? await this.findKeyedFrom() : null,
      time: this.trail.now().toISOString(),
      writer: this.writer,
    };
    await appendLine(this.file, signCheckpoint(this.key, cp));
    this.last = cp;
    this.trail.pinned = { seq: cp.seq, hash: cp.hash, time: new Date(cp.time) };
    if (keyed) this.trail.keyed = true;
  }

  /** Whether an operator recorded a recovery (with the key) after `time`. */
  private async recoveredSince(time: Date): Promise<boolean> {
    const events = await this.events.withActionsSince(RECOVERY_ACTIONS, time, 10);
    return events.some((e) => this.trail.isKeyed(e));
  }

  /** The first keyed event: event 1 for a trail keyed from the start, else its audit.chain.keyed event. */
  private async findKeyedFrom(): Promise<number> {
    if (this.keyedFrom !== null) return this.keyedFrom;
    const first = await this.events.at(1);
    if (first && this.trail.isKeyed(first)) return (this.keyedFrom = 1);
    const marks = await this.events.withAction(KEYED_ACTION, 10);
    const mark = marks.find((e) => this.trail.isKeyed(e));
    if (!mark) throw new Error('the chain has keyed events but no keyed audit.chain.keyed event; run `signet audit verify`');
    return (this.keyedFrom = mark.seq);
  }

  /** The newest `n` checkpoints of this process's file, for an external copy. */
  recent(n: number): ({ jws: string } & Checkpoint)[] {
    const out: ({ jws: string } & Checkpoint)[] = [];
    for (const line of tailLines(this.file, n)) {
      const p = parseCheckpoint(line, this.key);
      if (p.ok) out.push({ ...p.checkpoint, jws: p.jws });
    }
    return out;
  }
}

/** Appends one line durably; a line left unterminated by a crash is closed off first. */
async function appendLine(file: string, line: string): Promise<void> {
  const fh = await open(file, 'a+', 0o600);
  try {
    const { size } = await fh.stat();
    let prefix = '';
    if (size > 0) {
      const last = Buffer.alloc(1);
      await fh.read(last, 0, 1, size - 1);
      if (last.toString() !== '\n') prefix = '\n';
    }
    await fh.write(`${prefix}${line}\n`);
    await fh.datasync();
  } finally {
    await fh.close();
  }
}

/**
 * Binds the audit chain's MAC key to `db` and starts this process's checkpointer: what
 * openSignet does once the key store is unlocked.
 */
export async function openAuditTrail(
  db: Database,
  events: CheckpointedLog,
  keys: KeyStore,
  dataDir: string,
  log: Logger,
  intervalMs: number,
  now: Clock = systemClock,
): Promise<Checkpointer> {
  const trail = bindAuditTrail(db, new AuditTrail(keys.deriveSecret(AUDIT_MAC_LABEL), now), events);
  const checkpointer = new Checkpointer(db, events, trail, checkpointKey(keys), join(dataDir, CHECKPOINT_FILE), log);
  checkpointers.set(db, checkpointer);
  await checkpointer.init();
  checkpointer.start(intervalMs);
  db.beforeClose(() => checkpointer.stop());
  return checkpointer;
}
