/**
 * A minimal DER writer for the hot paths (certificate, CRL and OCSP assembly), where building
 * @peculiar/asn1-schema object trees per item costs more than the signature. Structures are
 * still defined by @peculiar/asn1-* elsewhere; this only concatenates already-encoded parts.
 */
import { readEl } from './der-strict.js';

export function encodeLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function tlv(tag: number, ...content: Uint8Array[]): Buffer {
  const body = content.length === 1 ? Buffer.from(content[0]!) : Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), encodeLength(body.length), body]);
}

export const sequence = (...parts: Uint8Array[]): Buffer => tlv(0x30, ...parts);
export const set = (...parts: Uint8Array[]): Buffer => tlv(0x31, ...parts);
export const octetString = (data: Uint8Array): Buffer => tlv(0x04, data);
export const bitString = (data: Uint8Array): Buffer => tlv(0x03, Buffer.from([0]), data);
export const contextExplicit = (n: number, ...parts: Uint8Array[]): Buffer => tlv(0xa0 + n, ...parts);
export const booleanTrue = Buffer.from([0x01, 0x01, 0xff]);

/** DER INTEGER from unsigned big-endian bytes (adds a 0x00 when the high bit is set). */
export function unsignedInteger(bytes: Uint8Array): Buffer {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0 && (bytes[i + 1]! & 0x80) === 0) i++;
  let b = Buffer.from(bytes.subarray(i));
  if (b.length === 0) b = Buffer.from([0]);
  if (b[0]! & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return tlv(0x02, b);
}

export function smallInteger(n: number | bigint): Buffer {
  let v = BigInt(n);
  if (v < 0n) throw new RangeError('negative integers are not needed here');
  const bytes: number[] = [];
  do {
    bytes.unshift(Number(v & 0xffn));
    v >>= 8n;
  } while (v > 0n);
  return unsignedInteger(Buffer.from(bytes));
}

const oidCache = new Map<string, Buffer>();

/** OBJECT IDENTIFIER; the few OIDs of the hot paths are encoded once (the Buffers are never written to). */
export function objectIdentifier(oid: string): Buffer {
  let der = oidCache.get(oid);
  if (!der) {
    der = encodeOid(oid);
    if (oidCache.size < 1024) oidCache.set(oid, der);
  }
  return der;
}

function encodeOid(oid: string): Buffer {
  const parts = oid.split('.').map((p) => BigInt(p));
  const first = parts[0]! * 40n + parts[1]!;
  const out: number[] = [];
  for (const arc of [first, ...parts.slice(2)]) {
    const chunk: number[] = [];
    let v = arc;
    do {
      chunk.unshift(Number(v & 0x7fn));
      v >>= 7n;
    } while (v > 0n);
    for (let i = 0; i < chunk.length - 1; i++) chunk[i]! |= 0x80;
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** UTCTime before 2050, GeneralizedTime from 2050 on (RFC 5280 §4.1.2.5). Seconds precision, Z. */
export function time(date: Date): Buffer {
  const y = date.getUTCFullYear();
  const rest = pad(date.getUTCMonth() + 1) + pad(date.getUTCDate()) + pad(date.getUTCHours()) + pad(date.getUTCMinutes()) + pad(date.getUTCSeconds()) + 'Z';
  if (y >= 1950 && y < 2050) return tlv(0x17, Buffer.from(pad(y % 100) + rest, 'ascii'));
  return tlv(0x18, Buffer.from(pad(y, 4) + rest, 'ascii'));
}

/** GeneralizedTime always (OCSP and CRL entry extensions use it). */
export function generalizedTime(date: Date): Buffer {
  const rest = pad(date.getUTCMonth() + 1) + pad(date.getUTCDate()) + pad(date.getUTCHours()) + pad(date.getUTCMinutes()) + pad(date.getUTCSeconds()) + 'Z';
  return tlv(0x18, Buffer.from(pad(date.getUTCFullYear(), 4) + rest, 'ascii'));
}

export const enumerated = (n: number): Buffer => tlv(0x0a, Buffer.from([n]));

/**
 * Reads one TLV header at offset: returns tag, header length and content length. Decoded by
 * der-strict.ts (Signet's one DER reader), so non-minimal or indefinite lengths throw a DerError.
 */
export function readHeader(buf: Uint8Array, offset = 0): { tag: number; headerLength: number; length: number } {
  const e = readEl(buf, offset, buf.length);
  return { tag: e.tag, headerLength: e.body - e.start, length: e.end - e.body };
}

/** The complete TLV at offset (header + content), as a view. */
export function readElement(buf: Uint8Array, offset = 0): Uint8Array {
  const e = readEl(buf, offset, buf.length);
  return buf.subarray(e.start, e.end);
}
