/**
 * One PKCS#11 token (an HSM, or SoftHSM2 for a try) through pkcs11js: the module loaded once per
 * process, the token found by label, a user login, and a small pool of sessions.
 *
 * Signing never blocks the event loop for longer than one short token call: C_SignInit and
 * C_FindObjects run on the calling thread (they do no cryptography), C_Sign and
 * C_GenerateKeyPair run on libuv's thread pool (pkcs11js' *Async calls). A session serves one
 * operation at a time (PKCS#11 allows one active signing operation per session), so concurrent
 * signatures take different sessions, up to POOL_SIZE; the module is initialised with
 * CKF_OS_LOCKING_OK so that it locks for those threads itself (without it SoftHSM2 crashed the
 * process when two sessions signed at once).
 *
 * A session lost at run time (CKR_SESSION_HANDLE_INVALID, CKR_DEVICE_REMOVED, ...) fails the
 * operation in flight with 'unavailable' (503) and marks the token for a re-open: the next
 * operation finds the token again by label, opens a session and logs in. Nothing is retried
 * with another key and nothing falls back to software.
 */
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import type * as Pkcs11Types from 'pkcs11js';
import { SignetError } from '../errors.js';

const require = createRequire(import.meta.url);
type Pkcs11Module = typeof Pkcs11Types;
type PKCS11 = Pkcs11Types.PKCS11;
export type Handle = Buffer;
export type Template = Pkcs11Types.Attribute[];

let pkcs11js: Pkcs11Module | undefined;
/** The binding, loaded on first use: a sealed-store installation never loads the native addon. */
export function binding(): Pkcs11Module {
  pkcs11js ??= require('pkcs11js') as Pkcs11Module;
  return pkcs11js;
}

/** PKCS#11 return values Signet reacts to (PKCS#11 v2.40 §3.6). */
export const CKR = {
  DEVICE_ERROR: 0x30,
  DEVICE_MEMORY: 0x31,
  DEVICE_REMOVED: 0x32,
  KEY_HANDLE_INVALID: 0x60,
  OBJECT_HANDLE_INVALID: 0x82,
  PIN_INCORRECT: 0xa0,
  PIN_LOCKED: 0xa4,
  SESSION_CLOSED: 0xb0,
  SESSION_HANDLE_INVALID: 0xb3,
  TOKEN_NOT_PRESENT: 0xe0,
  TOKEN_NOT_RECOGNIZED: 0xe1,
  USER_ALREADY_LOGGED_IN: 0x100,
  USER_NOT_LOGGED_IN: 0x101,
  CRYPTOKI_NOT_INITIALIZED: 0x190,
  CRYPTOKI_ALREADY_INITIALIZED: 0x191,
} as const;

/** The session (or the token behind it) is gone: re-open, the operation in flight fails. */
const SESSION_LOST = new Set<number>([
  CKR.DEVICE_ERROR,
  CKR.DEVICE_REMOVED,
  CKR.SESSION_CLOSED,
  CKR.SESSION_HANDLE_INVALID,
  CKR.TOKEN_NOT_PRESENT,
  CKR.TOKEN_NOT_RECOGNIZED,
  CKR.USER_NOT_LOGGED_IN,
  CKR.CRYPTOKI_NOT_INITIALIZED,
]);

export const ckrOf = (e: unknown): number | undefined => {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
};
const ckrName = (e: unknown): string => {
  const m = /CKR_[A-Z_]+/.exec((e as Error)?.message ?? '');
  return m ? m[0] : `0x${(ckrOf(e) ?? 0).toString(16)}`;
};

export interface TokenOptions {
  module: string;
  label: string;
  pin: string;
}

const MAX_PIN_FILE = 1024;

/** SIGNET_PKCS11_PIN, or the first line of SIGNET_PKCS11_PIN_FILE, which must be mode 0600 (as master.key). */
export function readPin(opts: { pin?: string; pinFile?: string }): string {
  if (opts.pin !== undefined) return opts.pin;
  const file = opts.pinFile!;
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(file);
  } catch (e) {
    throw new SignetError('key-store', `SIGNET_PKCS11_PIN_FILE ${file} cannot be read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  // A regular file of PIN size only: a directory, a FIFO (which would hang start-up) or a large
  // file (read whole and sent as a PIN, using up one of the token's few tries) is refused first.
  if (!st.isFile()) throw new SignetError('key-store', `SIGNET_PKCS11_PIN_FILE ${file} is not a regular file; put the user PIN in a file of its own`);
  if (st.size > MAX_PIN_FILE)
    throw new SignetError(
      'key-store',
      `SIGNET_PKCS11_PIN_FILE ${file} is ${st.size} bytes, too large for a PIN file (at most ${MAX_PIN_FILE}); put the PIN alone on its first line`,
    );
  const mode = st.mode & 0o777;
  if (mode & 0o077) throw new SignetError('key-store', `${file} is readable by other users (mode ${mode.toString(8)}); run chmod 600 ${file}`);
  // Bounded read: a file that reports a size of 0 (/proc/self/environ, a character device
  // behind a symlink was refused above) is not trusted for its size.
  const fd = openSync(file, 'r');
  const buf = Buffer.alloc(MAX_PIN_FILE + 1);
  let n: number;
  try {
    n = readSync(fd, buf, 0, buf.length, 0);
  } finally {
    closeSync(fd);
  }
  if (n > MAX_PIN_FILE)
    throw new SignetError(
      'key-store',
      `SIGNET_PKCS11_PIN_FILE ${file} holds more than ${MAX_PIN_FILE} bytes, too large for a PIN file; put the PIN alone on its first line`,
    );
  const content = buf.subarray(0, n);
  if (content.includes(0)) throw new SignetError('key-store', `SIGNET_PKCS11_PIN_FILE ${file} contains NUL bytes: it is not a PIN file`);
  const pin = content.toString('utf8').split(/\r?\n/)[0] ?? '';
  if (!pin) throw new SignetError('key-store', `SIGNET_PKCS11_PIN_FILE ${file} is empty`);
  return pin;
}

/** One PKCS11 instance per module path and process: C_Initialize once, shared by every store. */
const loaded = new Map<string, PKCS11>();

function loadModule(path: string): PKCS11 {
  const hit = loaded.get(path);
  if (hit) return hit;
  if (!existsSync(path)) throw new SignetError('key-store', `SIGNET_PKCS11_MODULE ${path} does not exist`);
  const pk = binding();
  const p = new pk.PKCS11();
  try {
    p.load(path);
  } catch (e) {
    throw new SignetError('key-store', `SIGNET_PKCS11_MODULE ${path} is not a PKCS#11 library: ${(e as Error).message.split('\n')[0]}`);
  }
  try {
    p.C_Initialize({ flags: pk.CKF_OS_LOCKING_OK });
  } catch (e) {
    if (ckrOf(e) !== CKR.CRYPTOKI_ALREADY_INITIALIZED) {
      throw new SignetError('key-store', `SIGNET_PKCS11_MODULE ${path} failed to initialise (${ckrName(e)})`);
    }
  }
  loaded.set(path, p);
  return p;
}

const POOL_SIZE = 4;
const label = (s: string) => s.replace(/\0/g, '').trim();

export class Pkcs11Token {
  readonly p: PKCS11;
  private slot!: Handle;
  /** Kept open for the life of the token: a login lasts as long as one session of the application is open. */
  private anchor: Handle | null = null;
  private free: Handle[] = [];
  private open = 0;
  private waiters: (() => void)[] = [];
  /** Bumped at each re-open: sessions and object handles of an older generation are dropped. */
  generation = 0;
  private broken: string | null = null;
  private reopening: Promise<void> | null = null;
  /**
   * A re-open refused for the PIN (changed or locked while Signet ran): never tried again
   * by this process, since every further wrong PIN brings the token closer to locking.
   */
  private fatal: string | null = null;

  private constructor(readonly opts: TokenOptions) {
    this.p = loadModule(opts.module);
  }

  /** Loads the module, finds the token, logs in. Throws one precise SignetError('key-store') line. */
  static open(opts: TokenOptions): Pkcs11Token {
    const t = new Pkcs11Token(opts);
    t.connect('key-store');
    return t;
  }

  private connect(type: 'key-store' | 'unavailable'): void {
    const pk = binding();
    let slots: Handle[];
    try {
      slots = this.p.C_GetSlotList(true);
    } catch (e) {
      throw new SignetError(type, `PKCS#11 module ${this.opts.module} could not list its tokens (${ckrName(e)})`);
    }
    const labels: string[] = [];
    const matches: { slot: Handle; serial: string }[] = [];
    for (const s of slots) {
      try {
        const info = this.p.C_GetTokenInfo(s);
        const l = label(info.label);
        labels.push(l);
        if (l === this.opts.label) matches.push({ slot: s, serial: label(info.serialNumber) });
      } catch {
        // A slot whose token went away between the two calls.
      }
    }
    // Two tokens with one label: logging into either could send the PIN to, and make CA keys
    // in, a token nobody meant; refuse rather than pick one.
    if (matches.length > 1)
      throw new SignetError(
        type,
        `${matches.length} PKCS#11 tokens in ${this.opts.module} are labelled "${this.opts.label}" (serial numbers ${matches.map((m) => m.serial).join(', ')}); give the token Signet uses a label of its own and set SIGNET_PKCS11_TOKEN to it`,
      );
    const found = matches[0]?.slot;
    if (!found) {
      throw new SignetError(
        type,
        `no PKCS#11 token labelled "${this.opts.label}" in ${this.opts.module} (tokens present: ${labels.length ? labels.map((l) => `"${l}"`).join(', ') : 'none'}); check SIGNET_PKCS11_TOKEN and that the token is connected`,
      );
    }
    this.slot = found;
    let s: Handle;
    try {
      s = this.p.C_OpenSession(found, pk.CKF_SERIAL_SESSION | pk.CKF_RW_SESSION);
    } catch (e) {
      throw new SignetError(type, `PKCS#11 token "${this.opts.label}" refused a session (${ckrName(e)})`);
    }
    try {
      this.p.C_Login(s, pk.CKU_USER, this.opts.pin);
    } catch (e) {
      const code = ckrOf(e);
      if (code !== CKR.USER_ALREADY_LOGGED_IN) {
        try {
          this.p.C_CloseSession(s);
        } catch {
          /* already gone */
        }
        if (type === 'unavailable' && (code === CKR.PIN_INCORRECT || code === CKR.PIN_LOCKED)) {
          this.fatal = `PKCS#11 token "${this.opts.label}" refused the PIN when Signet logged in again (${ckrName(e)}); Signet does not retry: fix the PIN and restart`;
          throw new SignetError('unavailable', this.fatal);
        }
        if (code === CKR.PIN_INCORRECT)
          throw new SignetError(
            'key-store',
            `the PIN for PKCS#11 token "${this.opts.label}" is wrong (CKR_PIN_INCORRECT); check SIGNET_PKCS11_PIN or SIGNET_PKCS11_PIN_FILE before trying again: tokens lock after a few wrong PINs`,
          );
        if (code === CKR.PIN_LOCKED)
          throw new SignetError(
            'key-store',
            `the user PIN of PKCS#11 token "${this.opts.label}" is locked (CKR_PIN_LOCKED); the token's security officer must unlock it`,
          );
        throw new SignetError(type, `login to PKCS#11 token "${this.opts.label}" failed (${ckrName(e)})`);
      }
    }
    this.anchor = s;
    this.broken = null;
  }

  /** Drops every session of this generation; the next operation re-opens (reason kept for /readyz). */
  private lose(reason: string): void {
    if (this.broken) return;
    this.broken = reason;
    this.generation++;
    // Only this token's own sessions: another store of the same process may share the slot.
    for (const s of [...this.free, ...(this.anchor ? [this.anchor] : [])]) {
      try {
        this.p.C_CloseSession(s);
      } catch {
        /* the token is gone: nothing to close */
      }
    }
    this.free = [];
    this.open = 0;
    this.anchor = null;
    for (const w of this.waiters.splice(0)) w();
  }

  private async ensureOpen(): Promise<void> {
    if (!this.broken && this.anchor) return;
    if (this.fatal) throw new SignetError('unavailable', this.fatal);
    // One re-open for every caller waiting; cleared asynchronously, after the assignment
    // (an async function that connects synchronously would clear it before being stored).
    this.reopening ??= Promise.resolve()
      .then(() => this.connect('unavailable'))
      .finally(() => {
        this.reopening = null;
      });
    await this.reopening;
  }

  /**
   * Runs fn with a session of its own. A PKCS#11 error that means the session or token is gone
   * fails with 'unavailable' (503) and schedules a re-open; other errors pass through.
   */
  async withSession<T>(what: string, fn: (session: Handle, generation: number) => Promise<T> | T): Promise<T> {
    await this.ensureOpen().catch((e: unknown) => {
      throw e instanceof SignetError ? new SignetError('unavailable', e.detail) : e;
    });
    const gen = this.generation;
    let session: Handle;
    for (;;) {
      const f = this.free.pop();
      if (f) {
        session = f;
        break;
      }
      if (this.open < POOL_SIZE) {
        this.open++;
        try {
          session = this.p.C_OpenSession(this.slot, binding().CKF_SERIAL_SESSION | binding().CKF_RW_SESSION);
        } catch (e) {
          this.open--;
          throw this.failure(what, e);
        }
        break;
      }
      await new Promise<void>((r) => this.waiters.push(r));
      if (this.generation !== gen) throw new SignetError('unavailable', `PKCS#11 token "${this.opts.label}" lost its session while ${what}; try again`);
    }
    let ok = false;
    try {
      const r = await fn(session, gen);
      ok = true;
      return r;
    } catch (e) {
      throw this.failure(what, e);
    } finally {
      if (this.generation === gen) {
        if (ok) this.free.push(session);
        else {
          // A failed operation can leave the session busy (a C_Sign refused with
          // CKR_BUFFER_TOO_SMALL keeps its operation active, and every later C_SignInit on that
          // session is CKR_OPERATION_ACTIVE): close it; the pool opens a fresh one when needed.
          this.open--;
          try {
            this.p.C_CloseSession(session);
          } catch {
            /* already gone */
          }
        }
        this.waiters.shift()?.();
      } else {
        // Re-opened meanwhile: this session belongs to the old generation.
        try {
          this.p.C_CloseSession(session);
        } catch {
          /* already gone with its token */
        }
      }
    }
  }

  private failure(what: string, e: unknown): unknown {
    const code = ckrOf(e);
    if (code !== undefined && SESSION_LOST.has(code)) {
      this.lose(ckrName(e));
      return new SignetError(
        'unavailable',
        `PKCS#11 token "${this.opts.label}" lost its session while ${what} (${ckrName(e)}); nothing was signed or written, Signet re-opens the session for the next request`,
        { cause: e },
      );
    }
    if (code === CKR.DEVICE_MEMORY)
      return new SignetError('unavailable', `PKCS#11 token "${this.opts.label}" is full (CKR_DEVICE_MEMORY) while ${what}; nothing was written`, { cause: e });
    // Any other refusal by the token (CKR_FUNCTION_FAILED for a full SoftHSM2 disk,
    // CKR_BUFFER_TOO_SMALL for a key larger than recorded…) is the token's state, not the
    // request's: 503, nothing written. Start-up turns it into its one line.
    if (code !== undefined && !(e instanceof SignetError))
      return new SignetError(
        'unavailable',
        `PKCS#11 token "${this.opts.label}" refused an operation while ${what} (${ckrName(e)}); nothing was signed or written`,
        {
          cause: e,
        },
      );
    return e;
  }

  /** For /readyz: whether the user is logged in on the token, or why not. */
  loginState(): string {
    if (this.fatal) return this.fatal;
    if (this.broken) return `session lost (${this.broken}); re-opened on the next request`;
    if (!this.anchor) return 'not open';
    try {
      const state = this.p.C_GetSessionInfo(this.anchor).state;
      // CKS_RO_USER_FUNCTIONS (1), CKS_RW_USER_FUNCTIONS (3).
      return state === 1 || state === 3 ? 'logged in' : 'not logged in';
    } catch (e) {
      this.lose(ckrName(e));
      return `session lost (${ckrName(e)}); re-opened on the next request`;
    }
  }

  /** Re-opens a lost session now (readyz), so that readiness comes back without waiting for a signature. */
  async probe(): Promise<string> {
    try {
      await this.ensureOpen();
    } catch (e) {
      return e instanceof SignetError ? e.detail : String(e);
    }
    return this.loginState();
  }

  /** The handles of the objects matching template (at most max). */
  find(session: Handle, template: Template, max = 16): Handle[] {
    this.p.C_FindObjectsInit(session, template);
    try {
      return this.p.C_FindObjects(session, max);
    } finally {
      this.p.C_FindObjectsFinal(session);
    }
  }

  close(): void {
    this.lose('closed');
  }
}
