/**
 * Signet's one DER reader. Every TLV that Signet reads — CSRs (both parse paths), public and
 * private keys, certificates, extension values — is decoded by `decodeElement` below, which
 * accepts only DER (X.690 §10): definite, minimal lengths; single-byte tags. `checkDer` adds the
 * per-type DER rules over a whole structure (BOOLEAN 0x00/0xFF, minimal INTEGERs, OIDs without
 * 0x80 padding, primitive strings, sorted SET OF, no unused-bit garbage).
 *
 * Two faces over the same decoder: `el`/`kids`/`strictOid` answer null (never throw) for the
 * fast paths, which then defer to a full parser; `readEl`/`readKids`/`checkDer` throw a
 * DerError naming the rule and the offset, for the refusals.
 */

/** A strict DER element view: single-byte tag, minimal definite length. */
export interface El {
  tag: number;
  start: number;
  body: number;
  end: number;
}

/** A DER rule broken at `offset` (from the start of the buffer given to the reader). */
export class DerError extends Error {
  constructor(
    readonly rule: string,
    readonly offset: number,
  ) {
    super(`${rule} at offset ${offset}`);
    this.name = 'DerError';
  }
}

/**
 * The element at `off`, within [off, end): an El (`into`, when given, is filled and returned
 * instead of a new one), or the rule it breaks. Strings are only built on the failure path, so
 * the fast paths pay for none.
 */
function decodeElement(buf: Uint8Array, off: number, end: number, into?: El): El | string {
  if (off + 2 > end) return 'truncated DER: no room for a tag and a length';
  const tag = buf[off]!;
  // Multi-byte tags are valid DER but appear in no structure Signet reads.
  if ((tag & 0x1f) === 0x1f) return `multi-byte tag 0x${tag.toString(16)} is not used in these structures`;
  const l1 = buf[off + 1]!;
  let length = l1;
  let body = off + 2;
  if (l1 & 0x80) {
    const n = l1 & 0x7f;
    if (n === 0) return 'indefinite length (BER; DER requires a definite length)';
    if (n > 4) return `length field of ${n} bytes is too long`;
    if (body + n > end) return 'truncated DER: the length field is cut short';
    if (buf[body] === 0) return 'non-minimal length (a leading zero byte; DER uses the shortest form)';
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + buf[body + i]!;
    if (length < 0x80) return `non-minimal length (long form for ${length} bytes; DER uses the shortest form)`;
    body += n;
  }
  if (body + length > end) return `truncated DER: the element claims ${length} bytes, ${Math.max(0, end - body)} remain`;
  if (!into) return { tag, start: off, body, end: body + length };
  into.tag = tag;
  into.start = off;
  into.body = body;
  into.end = body + length;
  return into;
}

/** The strict element at `off`, or null. */
export function el(buf: Uint8Array, off: number, end: number): El | null {
  const e = decodeElement(buf, off, end);
  return typeof e === 'string' ? null : e;
}

/** The strict element at `off`; throws DerError otherwise. */
export function readEl(buf: Uint8Array, off: number, end: number = buf.length): El {
  const e = decodeElement(buf, off, end);
  if (typeof e === 'string') throw new DerError(e, off);
  return e;
}

/** Children of a constructed element, all strict DER, exactly filling it; null otherwise. */
export function kids(buf: Uint8Array, parent: El): El[] | null {
  const out: El[] = [];
  for (let off = parent.body; off < parent.end; ) {
    const c = el(buf, off, parent.end);
    if (!c) return null;
    out.push(c);
    off = c.end;
  }
  return out;
}

/** Children of a constructed element; throws DerError on the first that is not strict DER. */
export function readKids(buf: Uint8Array, parent: El): El[] {
  const out: El[] = [];
  for (let off = parent.body; off < parent.end; ) {
    const c = readEl(buf, off, parent.end);
    out.push(c);
    off = c.end;
  }
  return out;
}

/**
 * Longest arc accepted, in encoded bytes: 23 × 7 = 161 bits holds the 128-bit UUID arcs of
 * 2.25.… (X.667), the largest in real use. Without a bound, a hostile 64 KB arc costs
 * quadratic BigInt work (found by the fuzzer: 0.3 s for one OID).
 */
const MAX_ARC_BYTES = 23;

/**
 * OID text from a strict encoding (non-empty, no arc padded with 0x80, not truncated, no arc
 * longer than MAX_ARC_BYTES); null otherwise. Arcs above 2^53 are decoded as BigInt.
 */
export function strictOid(buf: Uint8Array, e: El): string | null {
  if (e.tag !== 0x06 || e.end === e.body) return null;
  let out = '';
  let v = 0;
  let big: bigint | null = null;
  let first = true;
  let startOfArc = true;
  let arcStart = e.body;
  for (let i = e.body; i < e.end; i++) {
    const b = buf[i]!;
    if (startOfArc) {
      if (b === 0x80) return null;
      arcStart = i;
    }
    if (i - arcStart >= MAX_ARC_BYTES) return null;
    if (big !== null) big = (big << 7n) | BigInt(b & 0x7f);
    else if (v >= 2 ** 45) big = (BigInt(v) << 7n) | BigInt(b & 0x7f);
    else v = v * 128 + (b & 0x7f);
    if (b & 0x80) {
      startOfArc = false;
      continue;
    }
    const arc: number | bigint = big ?? v;
    if (first) {
      out = arc < 40 ? `0.${arc}` : arc < 80 ? `1.${Number(arc) - 40}` : `2.${typeof arc === 'bigint' ? arc - 80n : arc - 80}`;
      first = false;
    } else out += `.${arc}`;
    v = 0;
    big = null;
    startOfArc = true;
  }
  return startOfArc ? out : null;
}

/** Whether element `e` is exactly these bytes (tag, length and content). */
export const sameBytes = (buf: Uint8Array, e: El, bytes: readonly number[]): boolean =>
  e.end - e.start === bytes.length && bytes.every((b, i) => buf[e.start + i] === b);

/**
 * The magnitude of a minimal, positive DER INTEGER (without the 0x00 sign byte); null for an
 * empty, negative or non-minimal one.
 */
export function positiveInteger(buf: Uint8Array, e: El): Uint8Array | null {
  if (e.tag !== 0x02 || e.end === e.body) return null;
  let from = e.body;
  if (buf[from]! & 0x80) return null;
  if (buf[from] === 0) {
    if (e.end - from === 1 || !(buf[from + 1]! & 0x80)) return null;
    from++;
  }
  return buf.subarray(from, e.end);
}

/**
 * The Extensions SEQUENCE `seq` (RFC 5280 §4.1): each extnID, critical (only an explicit TRUE,
 * since DER omits the default FALSE) and the OCTET STRING holding extnValue; null for anything
 * else.
 */
export function strictExtensions(buf: Uint8Array, seq: El): { id: string; critical: boolean; value: El }[] | null {
  const items = kids(buf, seq);
  if (!items) return null;
  const out: { id: string; critical: boolean; value: El }[] = [];
  for (const e of items) {
    if (e.tag !== 0x30) return null;
    const ep = kids(buf, e);
    if (!ep || ep.length < 2 || ep.length > 3) return null;
    const id = strictOid(buf, ep[0]!);
    if (id === null) return null;
    if (ep.length === 3 && !sameBytes(buf, ep[1]!, [0x01, 0x01, 0xff])) return null;
    const value = ep[ep.length - 1]!;
    if (value.tag !== 0x04) return null;
    out.push({ id, critical: ep.length === 3, value });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Whole-structure DER rules

/** Universal types that DER encodes primitive only: BOOLEAN…OID, REAL, ENUMERATED, RELATIVE-OID, strings, times. */
const PRIMITIVE_ONLY = new Set([
  0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x09, 0x0a, 0x0c, 0x0d, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1e,
]);
const MAX_DEPTH = 64;

/** -1, 0, 1 as a sorts before, equals or after b (X.690 §11.6: SET OF by encoding, shorter first on a common prefix). */
function compareBytes(buf: Uint8Array, a: El, b: El): number {
  const la = a.end - a.start;
  const lb = b.end - b.start;
  for (let i = 0; i < Math.min(la, lb); i++) {
    const d = buf[a.start + i]! - buf[b.start + i]!;
    if (d) return d;
  }
  return la - lb;
}

/** The elements of a SET OF (also an IMPLICIT one) are sorted by their encodings; throws DerError. */
export function checkSetOrder(buf: Uint8Array, set: El): void {
  let prev: El | null = null;
  for (let off = set.body; off < set.end; ) {
    const c = readEl(buf, off, set.end);
    if (prev && compareBytes(buf, prev, c) > 0) throw new DerError('SET OF elements are not sorted by their encodings (DER order)', c.start);
    prev = c;
    off = c.end;
  }
}

/**
 * Checks that [start, end) is a sequence of DER elements obeying every rule X.690 §10–11 sets
 * for the universal types, recursing into constructed ones. Every SET here is a SET OF (as in
 * all X.509/PKCS structures), whose elements must be sorted by their encodings. OCTET STRING
 * and BIT STRING contents are not entered: whether they hold DER is the schema's to say.
 * Throws DerError with the rule and the offset of the offending element.
 */
export function checkDer(buf: Uint8Array, start = 0, end: number = buf.length, depth = 0): void {
  if (depth > MAX_DEPTH) throw new DerError(`nesting deeper than ${MAX_DEPTH} levels`, start);
  // One scratch element per level: this walk runs on every CSR, and allocation is its main cost.
  const e = (SCRATCH[depth] ??= { tag: 0, start: 0, body: 0, end: 0 });
  for (let off = start; off < end; ) {
    const r = decodeElement(buf, off, end, e);
    if (typeof r === 'string') throw new DerError(r, off);
    checkElement(buf, e, depth);
    off = e.end;
  }
}
const SCRATCH: El[] = [];

function fail(e: El, rule: string): never {
  throw new DerError(rule, e.start);
}

function checkElement(buf: Uint8Array, e: El, depth: number): void {
  const constructed = (e.tag & 0x20) !== 0;
  const universal = (e.tag & 0xc0) === 0;
  const number = e.tag & 0x1f;
  const len = e.end - e.body;
  if (!universal) {
    if (constructed) checkDer(buf, e.body, e.end, depth + 1);
    return;
  }
  if (number === 0) fail(e, 'tag 0x00 (end-of-contents) is BER only');
  if (constructed) {
    if (PRIMITIVE_ONLY.has(number)) fail(e, `constructed encoding of universal type ${number} (DER requires the primitive form)`);
    checkDer(buf, e.body, e.end, depth + 1);
    if (number === 0x11) checkSetOrder(buf, e);
    return;
  }
  switch (number) {
    case 0x10:
    case 0x11:
      fail(e, `${number === 0x10 ? 'SEQUENCE' : 'SET'} with the primitive bit (DER requires the constructed form)`);
      break;
    case 0x01:
      if (len !== 1) fail(e, `BOOLEAN of ${len} bytes (DER uses exactly one)`);
      if (buf[e.body] !== 0x00 && buf[e.body] !== 0xff)
        fail(e, `BOOLEAN 0x${buf[e.body]!.toString(16).padStart(2, '0')} (DER encodes TRUE as 0xFF and FALSE as 0x00)`);
      break;
    case 0x02:
    case 0x0a: {
      const what = number === 0x02 ? 'INTEGER' : 'ENUMERATED';
      if (len === 0) fail(e, `empty ${what}`);
      if (len > 1 && ((buf[e.body] === 0x00 && !(buf[e.body + 1]! & 0x80)) || (buf[e.body] === 0xff && buf[e.body + 1]! & 0x80))) {
        fail(e, `non-minimal ${what} (a redundant leading 0x${buf[e.body]!.toString(16).padStart(2, '0')} byte)`);
      }
      break;
    }
    case 0x03: {
      if (len === 0) fail(e, 'BIT STRING without its unused-bits byte');
      const unused = buf[e.body]!;
      if (unused > 7) fail(e, `BIT STRING with ${unused} unused bits (at most 7)`);
      if (len === 1 && unused !== 0) fail(e, 'empty BIT STRING with unused bits');
      if (unused && (buf[e.end - 1]! & ((1 << unused) - 1)) !== 0) fail(e, 'BIT STRING whose unused bits are not zero');
      break;
    }
    case 0x05:
      if (len !== 0) fail(e, `NULL with ${len} content bytes`);
      break;
    case 0x06: {
      if (len === 0) fail(e, 'empty OBJECT IDENTIFIER');
      let startOfArc = true;
      let arcStart = e.body;
      for (let i = e.body; i < e.end; i++) {
        if (startOfArc) {
          if (buf[i] === 0x80) fail(e, 'OBJECT IDENTIFIER arc padded with 0x80 (not minimal)');
          arcStart = i;
        }
        if (i - arcStart >= MAX_ARC_BYTES) fail(e, `OBJECT IDENTIFIER arc longer than ${MAX_ARC_BYTES} bytes (${MAX_ARC_BYTES * 7} bits)`);
        startOfArc = (buf[i]! & 0x80) === 0;
      }
      if (!startOfArc) fail(e, 'truncated OBJECT IDENTIFIER (its last byte has the continuation bit)');
      break;
    }
    case 0x17:
    case 0x18: {
      // X.690 §11.7-11.8: DER times are UTC ('Z'), with seconds, and a fraction only when it is
      // not zero (no trailing zeros); RFC 5280 §4.1.2.5 adds nothing DER does not already say.
      const text = Buffer.from(buf.subarray(e.body, e.end)).toString('latin1');
      const m =
        number === 0x17
          ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text)
          : /^\d{2}(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\.\d*[1-9])?Z$/.exec(text);
      const what = number === 0x17 ? 'UTCTime' : 'GeneralizedTime';
      if (!m) fail(e, `${what} ${JSON.stringify(text.slice(0, 32))} is not in DER form (${number === 0x17 ? 'YYMMDDHHMMSSZ' : 'YYYYMMDDHHMMSS[.f]Z'})`);
      const [month, day, hour, minute, second] = m.slice(2, 7).map(Number) as [number, number, number, number, number];
      if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59)
        fail(e, `${what} ${JSON.stringify(text)} is not a date and time`);
      break;
    }
    default:
      break;
  }
}
