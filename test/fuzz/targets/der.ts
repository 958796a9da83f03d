/**
 * The DER reader and writer (src/pki/der.ts) and the strict DER views (src/pki/der-strict.ts).
 *
 * Properties, for any bytes:
 *  - readHeader / readElement return a header that lies inside the buffer, or throw a DerError
 *    naming the rule and offset (or a RangeError; their contract: callers turn it into a 400). They are the one DER reader of the full CSR
 *    path, so they must refuse what DER forbids: indefinite and non-minimal lengths (issue 12 #10);
 *  - el / kids / strictOid / strictExtensions never throw (their contract: "answer null — never
 *    throw") and accept only canonical DER: whatever they accept, the independent checker in
 *    lib/der-tree.ts accepts too; strictOid's text re-encodes (objectIdentifier) to the same bytes;
 *  - the per-input time bound covers the readers only (timed()): the writer round trips below
 *    encode what Signet itself chooses, never client input;
 *  - round trips from values derived from the input: tlv(tag, content) reads back as (tag,
 *    length); encodeLength is minimal; objectIdentifier(text) reads back through strictOid;
 *    unsignedInteger/smallInteger are minimal positive INTEGERs of the same value.
 */
import fc from 'fast-check';
import { encodeLength, objectIdentifier, readElement, readHeader, smallInteger, tlv, unsignedInteger } from '../../../src/pki/der.js';
import { DerError, el, kids, strictExtensions, strictOid } from '../../../src/pki/der-strict.js';
import { corpusSeeds, mutationSteps } from '../lib/arbitraries.js';
import { mutateWhole } from '../lib/build.js';
import { derProblem, lenientHeader } from '../lib/der-tree.js';
import { assertThat, bytesCodec, timed, Violation, type Target } from '../lib/target.js';

function mustNotThrow<R>(what: string, fn: () => R): R {
  try {
    return timed(fn);
  } catch (e) {
    throw new Violation(`${what} threw ${(e as Error).name}: ${(e as Error).message}; its contract is to answer null, never to throw`, {
      cause: e,
      key: `a der-strict view threw ${(e as Error).name} instead of answering null`,
    });
  }
}

/** Minimal definite length at `off`? (header only) */
function headerProblem(buf: Buffer, off: number): string | null {
  const l = buf[off + 1]!;
  if (l === 0x80) return 'indefinite length';
  if (l & 0x80) {
    const n = l & 0x7f;
    if (buf[off + 2] === 0) return 'non-minimal length (leading zero byte)';
    let v = 0;
    for (let i = 0; i < n; i++) v = v * 256 + buf[off + 2 + i]!;
    if (v < 0x80) return `non-minimal length (long form for ${v})`;
  }
  return null;
}

function checkReader(buf: Buffer, off: number): void {
  let h: ReturnType<typeof readHeader> | undefined;
  try {
    h = timed(() => readHeader(buf, off));
  } catch (e) {
    if (!(e instanceof RangeError || e instanceof DerError))
      throw new Violation(`readHeader threw ${(e as Error).name}, not a DerError or RangeError`, { cause: e });
  }
  if (!h) return;
  assertThat(
    off + h.headerLength + h.length <= buf.length && h.headerLength >= 2,
    `readHeader returned a header that overruns the buffer (${JSON.stringify(h)})`,
  );
  assertThat(
    (buf[off]! & 0x1f) !== 0x1f,
    `readHeader read a high-tag-number element (tag byte 0x${buf[off]!.toString(16)}, more tag bytes follow) as if its tag were one byte`,
  );
  const ref = lenientHeader(buf, off);
  assertThat(
    ref !== null && ref.length === h.length && ref.headerLength === h.headerLength,
    `readHeader and the reference reader disagree at ${off}: ${JSON.stringify(h)} vs ${JSON.stringify(ref)}`,
  );
  const p = headerProblem(buf, off);
  assertThat(p === null, `readHeader accepted a ${p} at offset ${off} (strict DER: the one DER reader must refuse it)`);
  const e = readElement(buf, off);
  assertThat(e.length === h.headerLength + h.length, 'readElement and readHeader disagree');
}

function checkStrict(buf: Buffer): void {
  const top = mustNotThrow('el()', () => el(buf, 0, buf.length));
  if (!top) return;
  const ref = headerProblem(buf, 0);
  assertThat(ref === null, `el() accepted a ${ref}`);
  assertThat(top.end <= buf.length && top.body <= top.end, `el() returned bounds outside the buffer (${JSON.stringify(top)})`);
  if (top.tag === 0x06) {
    const text = mustNotThrow('strictOid()', () => strictOid(buf, top));
    if (text !== null) {
      const problem = derProblem(buf.subarray(top.start, top.end));
      assertThat(problem === null, `strictOid() accepted a non-DER OBJECT IDENTIFIER (${problem}) as ${text}`);
      const again = objectIdentifier(text);
      assertThat(
        again.equals(buf.subarray(top.start, top.end)),
        `strictOid() read ${text}, which objectIdentifier() encodes as ${again.toString('hex')}, not ${buf.subarray(top.start, top.end).toString('hex')}`,
      );
    }
  }
  if (top.tag & 0x20) {
    const children = mustNotThrow('kids()', () => kids(buf, top));
    if (children) {
      for (const c of children) assertThat(headerProblem(buf, c.start) === null, `kids() accepted a child with a ${headerProblem(buf, c.start)}`);
    }
    if (top.tag === 0x30) {
      const exts = mustNotThrow('strictExtensions()', () => strictExtensions(buf, top));
      if (exts) {
        const problem = derProblem(buf.subarray(top.start, top.end));
        assertThat(problem === null, `strictExtensions() accepted non-DER extensions: ${problem}`);
      }
    }
  }
}

function checkWriter(buf: Buffer): void {
  // tlv round trip, with a tag and a content derived from the input.
  const tag = ((buf[0] ?? 0x04) & 0xdf & ~0x1f) | ((buf[0] ?? 4) % 0x1e);
  const content = buf.subarray(1);
  const enc = tlv(tag, content);
  const h = readHeader(enc, 0);
  assertThat(h.tag === tag && h.length === content.length && h.headerLength + h.length === enc.length, 'tlv() does not read back');
  assertThat(headerProblem(enc, 0) === null, `tlv() wrote a ${headerProblem(enc, 0)}`);
  for (const n of [buf.length, buf.length ? buf.readUIntBE(0, Math.min(3, buf.length)) : 0, 127, 128, 255, 256, 65535, 65536]) {
    const l = encodeLength(n);
    const probe = Buffer.concat([Buffer.from([0x04]), l, Buffer.alloc(n > 70_000 ? 0 : n)]);
    if (n <= 70_000)
      assertThat(headerProblem(probe, 0) === null && readHeader(probe, 0).length === n, `encodeLength(${n}) is not minimal or does not read back`);
  }
  // OBJECT IDENTIFIER from arcs derived from the input: first arc 0..2, second < 40 unless the first is 2.
  if (buf.length >= 2) {
    const first = buf[0]! % 3;
    const arcs = [first, first < 2 ? buf[1]! % 40 : buf[1]!];
    for (let i = 2; i + 4 <= buf.length && arcs.length < 12; i += 4) arcs.push(buf.readUInt32BE(i) >>> (buf[i]! % 32));
    const text = arcs.join('.');
    const der = objectIdentifier(text);
    const e = el(der, 0, der.length);
    const back = e ? strictOid(der, e) : null;
    assertThat(back === text, `objectIdentifier('${text}') reads back through strictOid() as ${back}`);
    assertThat(derProblem(der) === null, `objectIdentifier('${text}') is not DER: ${derProblem(der)}`);
  }
  // INTEGERs: minimal, positive, same value.
  const int = unsignedInteger(buf);
  assertThat(derProblem(int) === null, `unsignedInteger(${buf.toString('hex').slice(0, 40)}) is not DER: ${derProblem(int)}`);
  const c = int.subarray(readHeader(int, 0).headerLength);
  assertThat(!(c[0]! & 0x80), 'unsignedInteger() wrote a negative INTEGER');
  assertThat(BigInt(`0x${c.toString('hex') || '0'}`) === BigInt(`0x${buf.toString('hex') || '0'}`), 'unsignedInteger() changed the value');
  const small = BigInt(`0x${buf.subarray(0, 20).toString('hex') || '0'}`);
  const si = smallInteger(small);
  assertThat(
    derProblem(si) === null && BigInt(`0x${si.subarray(2).toString('hex')}`) === small,
    `smallInteger(${small}) is not a minimal INTEGER of that value`,
  );
}

function check(buf: Buffer): void {
  for (const off of new Set([0, 1, 2, Math.floor(buf.length / 2), Math.max(0, buf.length - 2)])) if (off < buf.length) checkReader(buf, off);
  checkStrict(buf);
  // Every element the lenient reference finds, walked with the strict views.
  for (let off = 0, n = 0; off < buf.length && n < 64; n++) {
    const h = lenientHeader(buf, off);
    if (!h) break;
    checkStrict(buf.subarray(off, h.end));
    off = h.tag & 0x20 ? off + h.headerLength : h.end;
  }
  checkWriter(buf);
}

const SEEDS: [string, string][] = [
  ['non-minimal length 81', '048101ff'],
  ['non-minimal length 82 00', '30820003020100'],
  ['length 84 (four bytes)', '048400000001ff'],
  ['length 85 (five bytes)', '04850000000001ff'],
  ['indefinite length', '3080020100 0000'],
  ['huge length', '3084ffffffff'],
  ['padded OID arc', '0603802a03'],
  ['empty OID', '0600'],
  ['OID truncated arc', '06022a86'],
  ['OID arc above 2^32', '060b2a8fffffffffffffffff7f'],
  ['INTEGER 02 02 00 00', '02020000'],
  ['INTEGER ff ff', '0202ffff'],
  ['BOOLEAN 01', '010101'],
  ['explicit critical FALSE', '3010300e0603551d0f010100040403020780'],
  ['extension with BOOLEAN 01', '3010300e0603551d0f010101040403020780'],
  ['high tag number', '1f8101 00'],
  ['truncated header', '30'],
  ['empty', ''],
];

export const target: Target<Buffer> = {
  name: 'der',
  about: 'readHeader/readElement (src/pki/der.ts), el/kids/strictOid/strictExtensions (src/pki/der-strict.ts), and the writer round trips',
  codec: bytesCodec,
  seeds() {
    return [...SEEDS.map(([name, hex]) => ({ name: `inline/${name}`, input: Buffer.from(hex.replace(/\s/g, ''), 'hex') })), ...corpusSeeds('der', bytesCodec)];
  },
  arbitrary(seeds) {
    const pool = seeds.map((s) => s.input).filter((b) => b.length > 1);
    return fc.oneof(
      { weight: 3, arbitrary: fc.tuple(fc.constantFrom(...pool), mutationSteps).map(([s, steps]) => mutateWhole(s, steps)) },
      { weight: 2, arbitrary: fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)) },
      {
        weight: 1,
        arbitrary: fc
          .tuple(
            fc.constantFrom(0x30, 0x31, 0x04, 0x06, 0x02, 0x01, 0xa0),
            fc.constantFrom(0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x7f),
            fc.uint8Array({ maxLength: 40 }),
          )
          .map(([t, l, b]) => Buffer.concat([Buffer.from([t, l]), b])),
      },
    );
  },
  check,
};
