/**
 * Strict DER views for the fast paths (CSR parsing, pre-issuance lint): walk already-encoded
 * bytes without building object trees, and answer null — never throw — on anything that is not
 * plain, minimal DER, so the caller can fall back to the full @peculiar/asn1 parsers.
 */
import { readHeader } from './der.js';

/** A strict DER element view: single-byte tag, minimal definite length. */
export interface El { tag: number; start: number; body: number; end: number }

export function el(buf: Uint8Array, off: number, end: number): El | null {
  if (off + 2 > end) return null;
  const tag = buf[off]!;
  if ((tag & 0x1f) === 0x1f) return null; // high tag numbers: not in any structure read here
  const h = readHeader(buf, off);
  const l1 = buf[off + 1]!;
  if (l1 & 0x80) {
    // Minimal long form only: no leading zero byte, and only for lengths of 128 or more.
    if (buf[off + 2] === 0 || h.length < 0x80) return null;
  }
  const body = off + h.headerLength;
  const stop = body + h.length;
  if (stop > end) return null;
  return { tag, start: off, body, end: stop };
}

/** Children of a constructed element, all strict DER, exactly filling it. */
export function kids(buf: Uint8Array, parent: El): El[] | null {
  const out: El[] = [];
  for (let off = parent.body; off < parent.end;) {
    const c = el(buf, off, parent.end);
    if (!c) return null;
    out.push(c);
    off = c.end;
  }
  return out;
}

/** OID text from a strict encoding (minimal arcs, each below 2^32); null otherwise. */
export function strictOid(buf: Uint8Array, e: El): string | null {
  if (e.tag !== 0x06 || e.end === e.body) return null;
  let out = '';
  let v = 0;
  let first = true;
  let startOfArc = true;
  for (let i = e.body; i < e.end; i++) {
    const b = buf[i]!;
    if (startOfArc && b === 0x80) return null;
    v = v * 128 + (b & 0x7f);
    if (v > 0xffffffff) return null;
    if (b & 0x80) { startOfArc = false; continue; }
    if (first) {
      out = v < 40 ? `0.${v}` : v < 80 ? `1.${v - 40}` : `2.${v - 80}`;
      first = false;
    } else out += `.${v}`;
    v = 0;
    startOfArc = true;
  }
  return startOfArc ? out : null;
}

/** Whether element `e` is exactly these bytes (tag, length and content). */
export const sameBytes = (buf: Uint8Array, e: El, bytes: readonly number[]): boolean =>
  e.end - e.start === bytes.length && bytes.every((b, i) => buf[e.start + i] === b);

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
