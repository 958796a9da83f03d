/**
 * ACME replay nonces (RFC 8555 §6.5) without a write per nonce.
 *
 * A nonce is stateless: version ‖ issue time (seconds) ‖ 12 random bytes ‖ the first 16 bytes of
 * an HMAC-SHA256 over them, under a key derived from the master key (KeyStore.deriveSecret), so
 * every replica mints and checks the same nonces and handing one out costs no database work.
 * A nonce is good for NONCE_LIFETIME_MS. Only a nonce that has been *used* is recorded, and only
 * once the JWS carrying it has verified: the primary key of AcmeNonce makes the first use win
 * on every replica (both databases), so a replay anywhere is `badNonce`. Only the canonical
 * spelling of a nonce is accepted, and the record is keyed on it, so a nonce has exactly one
 * text that can be spent (and is spent once). Anonymous traffic —
 * HEAD/GET newNonce, 404s, unsigned or badly signed POSTs — never writes.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { SignetError } from '../errors.js';

export const NONCE_LIFETIME_MS = 30 * 60_000;
/** A nonce from a replica whose clock runs ahead by up to this much is still accepted. */
const CLOCK_SKEW_MS = 60_000;
/** Used nonces are kept this long past their expiry, so a replica whose clock lags cannot accept one after it was purged. */
const PURGE_MARGIN_MS = 5 * 60_000;
const PURGE_EVERY_MS = 60_000;
const VERSION = 1;
const RANDOM = 12;
const MAC = 16;
const LENGTH = 1 + 4 + RANDOM + MAC;
/** 33 bytes are exactly 44 base64url characters: no padding, and no spare bits in the last one. */
const CANONICAL = new RegExp(`^[A-Za-z0-9_-]{${Math.ceil((LENGTH * 4) / 3)}}$`);

const badNonce = (detail: string) => new SignetError('bad-request', detail, { acme: 'badNonce' });

/** A nonce check() accepted: its canonical text (the record key) and its expiry. */
export interface CheckedNonce {
  readonly value: string;
  readonly expiresAt: Date;
}

/** The few storage calls nonces need: record a used nonce (false when it was already there), purge old ones. */
export interface UsedNonceStore {
  record(value: string, expiresAt: Date): Promise<boolean>;
  purge(before: Date): Promise<number>;
}

export class Nonces {
  private lastPurge = 0;

  constructor(
    private readonly key: Buffer,
    private readonly store: UsedNonceStore,
    private readonly now: () => Date,
  ) {}

  private mac(body: Buffer): Buffer {
    return createHmac('sha256', this.key).update(body).digest().subarray(0, MAC);
  }

  /** A fresh nonce; no I/O. */
  mint(): string {
    const body = Buffer.alloc(1 + 4 + RANDOM);
    body[0] = VERSION;
    body.writeUInt32BE(Math.floor(this.now().getTime() / 1000), 1);
    randomBytes(RANDOM).copy(body, 5);
    return Buffer.concat([body, this.mac(body)]).toString('base64url');
  }

  /** Checks form, MAC and age; no I/O. Returns the nonce's canonical text and when it stops being good. */
  check(nonce: unknown): CheckedNonce {
    if (typeof nonce !== 'string' || nonce === '') throw badNonce('the JWS protected header has no nonce; get one from newNonce');
    // Only the one spelling mint() produces. node's base64url decoder is lenient (it drops a
    // 45th character, skips padding and stray bytes), and the used-nonce record is keyed on the
    // text, so any other spelling of a used nonce would decode to it and be recorded anew.
    const raw = CANONICAL.test(nonce) ? Buffer.from(nonce, 'base64url') : Buffer.alloc(0);
    if (raw.length !== LENGTH || raw[0] !== VERSION || raw.toString('base64url') !== nonce)
      throw badNonce('the nonce was not issued by this server; get a fresh one from newNonce');
    const body = raw.subarray(0, LENGTH - MAC);
    if (!timingSafeEqual(this.mac(body), raw.subarray(LENGTH - MAC))) throw badNonce('the nonce was not issued by this server; get a fresh one from newNonce');
    const issued = raw.readUInt32BE(1) * 1000;
    const now = this.now().getTime();
    if (issued > now + CLOCK_SKEW_MS) throw badNonce('the nonce is from the future (check the server clocks); get a fresh one from newNonce');
    const expires = issued + NONCE_LIFETIME_MS;
    if (expires <= now) throw badNonce(`the nonce expired (nonces are good for ${NONCE_LIFETIME_MS / 60_000} minutes); get a fresh one from newNonce`);
    return { value: raw.toString('base64url'), expiresAt: new Date(expires) };
  }

  /**
   * Spends a nonce that check() accepted, for a request whose signature verified: records it,
   * refusing a second use on any replica, and now and then purges expired records.
   */
  async spend(nonce: CheckedNonce): Promise<void> {
    // Keyed on the canonical text (re-encoded from the bytes), never on what the client sent.
    if (!(await this.store.record(nonce.value, nonce.expiresAt)))
      throw badNonce('the nonce was already used; get a fresh one from newNonce (every response carries one in Replay-Nonce)');
    const now = this.now().getTime();
    if (now - this.lastPurge >= PURGE_EVERY_MS) {
      this.lastPurge = now;
      await this.store.purge(new Date(now - PURGE_MARGIN_MS));
    }
  }
}
