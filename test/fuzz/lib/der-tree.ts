/**
 * An independent DER toolkit for the fuzz targets, written without src/pki/der*.ts so the
 * oracle does not share the bugs of what it checks:
 *  - `derProblem`: why bytes are not canonical DER (minimal definite lengths, BOOLEAN 00/FF,
 *    minimal INTEGER, OID arcs without padding, BIT STRING unused bits, no constructed strings),
 *    or null;
 *  - a tolerant TLV tree (`parseTree` / `encodeTree`) and structure-aware mutations on it, so a
 *    mutant is a valid structure with one element changed rather than random bytes that stop at
 *    the outer SEQUENCE.
 */

export interface Tlv {
  tag: number;
  start: number;
  headerLength: number;
  length: number;
  end: number;
}

/** One TLV header, leniently (any length form), or null when it does not fit in `limit`. */
export function lenientHeader(buf: Uint8Array, off: number, limit = buf.length): Tlv | null {
  if (off + 2 > limit) return null;
  const tag = buf[off]!;
  if ((tag & 0x1f) === 0x1f) return null;
  const l = buf[off + 1]!;
  let length = l;
  let headerLength = 2;
  if (l & 0x80) {
    const n = l & 0x7f;
    if (n === 0 || n > 4 || off + 2 + n > limit) return null;
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + buf[off + 2 + i]!;
    headerLength += n;
  }
  const end = off + headerLength + length;
  if (end > limit) return null;
  return { tag, start: off, headerLength, length, end };
}

/** Why `buf` (exactly one element) is not canonical DER, or null. */
export function derProblem(
  buf: Uint8Array,
  options: {
    encapsulated?: (path: number[], tag: number, content: Uint8Array) => boolean;
    /** Where an Extension can be (the explicit-FALSE rule is the Extension schema's); default: anywhere. */
    extension?: (path: number[]) => boolean;
  } = {},
): string | null {
  // Past this depth the contents are not walked (a deeper walk would overflow the stack); the
  // element's own header is still checked.
  const MAX_DEPTH = 800;
  const walk = (off: number, limit: number, path: number[]): [number, string | null] => {
    if (off + 2 > limit) return [off, `truncated header at ${off}`];
    const tag = buf[off]!;
    if ((tag & 0x1f) === 0x1f) return [off, `high tag number at ${off}`];
    const l1 = buf[off + 1]!;
    let length = l1;
    let hl = 2;
    if (l1 === 0x80) return [off, `indefinite length at ${off}`];
    if (l1 & 0x80) {
      const n = l1 & 0x7f;
      if (n > 4) return [off, `length of ${n} bytes at ${off}`];
      if (off + 2 + n > limit) return [off, `truncated length at ${off}`];
      if (buf[off + 2] === 0) return [off, `non-minimal length (leading zero) at ${off}`];
      length = 0;
      for (let i = 0; i < n; i++) length = length * 256 + buf[off + 2 + i]!;
      if (length < 0x80) return [off, `non-minimal length (long form for ${length}) at ${off}`];
      hl += n;
    }
    const body = off + hl;
    const end = body + length;
    if (end > limit) return [off, `element at ${off} overruns its parent`];
    const c = buf.subarray(body, end);
    const constructed = (tag & 0x20) !== 0;
    const universal = (tag & 0xc0) === 0;
    if (constructed) {
      if (universal && tag !== 0x30 && tag !== 0x31) return [off, `constructed encoding of universal type ${tag & 0x1f} at ${off}`];
      if (path.length > MAX_DEPTH) return [end, null];
      const kids: [number, number][] = [];
      for (let p = body, i = 0; p < end; i++) {
        const [next, problem] = walk(p, end, [...path, i]);
        if (problem) return [next, problem];
        kids.push([p, next]);
        p = next;
      }
      // An Extension with an explicit critical FALSE: DER omits DEFAULT values (X.690 §11.5).
      if (
        tag === 0x30 &&
        (options.extension?.(path) ?? true) &&
        kids.length === 3 &&
        buf[kids[0]![0]] === 0x06 &&
        buf[kids[1]![0]] === 0x01 &&
        buf[kids[2]![0]] === 0x04 &&
        buf[kids[1]![0] + 1] === 1 &&
        buf[kids[1]![0] + 2] === 0
      )
        return [off, `explicit DEFAULT FALSE (critical) at ${kids[1]![0]}`];
      return [end, null];
    }
    if (universal) {
      switch (tag) {
        case 0x01:
          if (c.length !== 1 || (c[0] !== 0 && c[0] !== 0xff)) return [off, `BOOLEAN not 00/FF at ${off}`];
          break;
        case 0x02:
        case 0x0a:
          if (c.length === 0) return [off, `empty INTEGER at ${off}`];
          if (c.length > 1 && ((c[0] === 0 && !(c[1]! & 0x80)) || (c[0] === 0xff && c[1]! & 0x80))) return [off, `non-minimal INTEGER at ${off}`];
          break;
        case 0x05:
          if (c.length !== 0) return [off, `NULL with content at ${off}`];
          break;
        case 0x06: {
          if (c.length === 0) return [off, `empty OBJECT IDENTIFIER at ${off}`];
          if (c[c.length - 1]! & 0x80) return [off, `truncated OBJECT IDENTIFIER at ${off}`];
          for (let i = 0; i < c.length; i++) if (c[i] === 0x80 && (i === 0 || !(c[i - 1]! & 0x80))) return [off, `padded OBJECT IDENTIFIER arc at ${off}`];
          break;
        }
        case 0x03:
          if (c.length === 0) return [off, `empty BIT STRING at ${off}`];
          if (c[0]! > 7 || (c.length === 1 && c[0] !== 0)) return [off, `bad BIT STRING unused-bits byte at ${off}`];
          if (c.length > 1 && c[c.length - 1]! & ((1 << c[0]!) - 1)) return [off, `BIT STRING unused bits not zero at ${off}`];
          break;
      }
    }
    if (options.encapsulated?.(path, tag, c)) {
      const inner = tag === 0x03 ? c.subarray(1) : c;
      const p = derProblem(inner, options.extension ? { ...options, extension: () => false } : options);
      if (p) return [off, `inside the element at ${off}: ${p}`];
    }
    return [end, null];
  };
  if (buf.length === 0) return 'empty input';
  const [end, problem] = walk(0, buf.length, []);
  if (problem) return problem;
  if (end !== buf.length) return `${buf.length - end} trailing bytes`;
  return null;
}

// ---------------------------------------------------------------------------------------------
// A mutable tree

export interface Node {
  tag: number;
  /** Constructed (or an OCTET/BIT STRING that held exactly one DER element): children. */
  kids?: Node[];
  /** For BIT STRING with kids: the unused-bits byte. */
  bitPrefix?: number;
  /** Primitive content (when no kids). */
  content?: Buffer;
  /** Replaces the minimal length encoding when set (a length-corruption mutation). */
  lengthOverride?: Buffer;
  /** Extra bytes after the content inside the header's stated length (when lengthOverride). */
  tail?: Buffer;
  /** The whole element as opaque bytes (after a byte-level mutation); wins over everything else. */
  raw?: Buffer;
}

/** Parses leniently; descends into OCTET/BIT STRINGs that hold exactly one element. Null when not TLV. */
export function parseTree(buf: Uint8Array, depth = 0): Node | null {
  const h = lenientHeader(buf, 0);
  if (!h || h.end !== buf.length || depth > 64) return null;
  return parseAt(buf, h, depth);
}

function parseAt(buf: Uint8Array, h: Tlv, depth: number): Node {
  const content = Buffer.from(buf.subarray(h.start + h.headerLength, h.end));
  if (depth > 64) return { tag: -1, raw: Buffer.from(buf.subarray(h.start, h.end)) };
  if (h.tag & 0x20) {
    const kids: Node[] = [];
    let p = 0;
    while (p < content.length) {
      const k = lenientHeader(content, p);
      if (!k) return { tag: h.tag, content };
      kids.push(parseAt(content, k, depth + 1));
      p = k.end;
    }
    return { tag: h.tag, kids };
  }
  if (depth < 64 && (h.tag === 0x04 || (h.tag === 0x03 && content.length > 1 && content[0] === 0))) {
    const inner = h.tag === 0x03 ? content.subarray(1) : content;
    const first = inner[0];
    // Only structured contents: SEQUENCE/SET (extnValue, an RSA key) or an OCTET STRING (nonce).
    if (first === 0x30 || first === 0x31 || (h.tag === 0x04 && first === 0x04)) {
      const k = parseTree(inner, depth + 1);
      if (k) return h.tag === 0x03 ? { tag: h.tag, kids: [k], bitPrefix: 0 } : { tag: h.tag, kids: [k] };
    }
  }
  return { tag: h.tag, content };
}

export function encodeLen(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function encodeTree(n: Node): Buffer {
  if (n.raw) return n.raw;
  let body: Buffer;
  if (n.kids) {
    body = Buffer.concat(n.kids.map(encodeTree));
    if (n.bitPrefix !== undefined) body = Buffer.concat([Buffer.from([n.bitPrefix]), body]);
  } else body = n.content ?? Buffer.alloc(0);
  if (n.tail) body = Buffer.concat([body, n.tail]);
  return Buffer.concat([Buffer.from([n.tag]), n.lengthOverride ?? encodeLen(body.length), body]);
}

export const tlvBytes = (tag: number, ...parts: Uint8Array[]): Buffer => {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([tag]), encodeLen(body.length), body]);
};

/** Every node in pre-order, with its parent (for removals and duplications). */
export function flatten(root: Node): { node: Node; parent: Node | null; index: number }[] {
  const out: { node: Node; parent: Node | null; index: number }[] = [];
  const stack: { node: Node; parent: Node | null; index: number }[] = [{ node: root, parent: null, index: 0 }];
  while (stack.length) {
    const x = stack.pop()!;
    out.push(x);
    const kids = x.node.kids ?? [];
    for (let i = kids.length - 1; i >= 0; i--) stack.push({ node: kids[i]!, parent: x.node, index: i });
  }
  return out;
}

const clone = (n: Node): Node => ({
  ...n,
  ...(n.raw ? { raw: Buffer.from(n.raw) } : {}),
  ...(n.kids ? { kids: n.kids.map(clone) } : {}),
  ...(n.content ? { content: Buffer.from(n.content) } : {}),
});

/** The mutation kinds, each a small deterministic function of (tree, node choice, a few numbers). */
export const MUTATIONS = [
  'nonMinimalLength',
  'indefiniteLength',
  'lengthPlus',
  'lengthMinus',
  'hugeLength',
  'padOid',
  'emptyContent',
  'nonMinimalInteger',
  'booleanOne',
  'criticalFalse',
  'randomContent',
  'flipBit',
  'setByte',
  'duplicateKid',
  'removeKid',
  'swapKids',
  'changeTag',
  'highTag',
  'nest',
  'huge',
  'bitStringUnused',
  'infinityPoint',
  'truncateContent',
  'zeroContent',
  'appendTrailing',
] as const;
export type Mutation = (typeof MUTATIONS)[number];

export interface MutationStep {
  kind: Mutation;
  at: number;
  a: number;
  b: number;
  bytes: number[];
}

/**
 * Applies one mutation to a copy of `root`: the node is `at` modulo the node count, `a` and `b`
 * are small free parameters, `bytes` random content.
 */
export function mutate(root: Node, step: MutationStep): Node {
  const tree = clone(root);
  const nodes = flatten(tree);
  const { node, parent, index } = nodes[step.at % nodes.length]!;
  const a = step.a;
  const b = step.b;
  const contentLen = () => encodeTree(node).length;
  if (node.raw && !['flipBit', 'setByte', 'truncateContent', 'highTag', 'bitStringUnused'].includes(step.kind)) {
    // A structural mutation of an element that an earlier byte-level one left opaque.
    const raw = node.raw;
    delete node.raw;
    Object.assign(node, parseTree(raw) ?? { tag: raw[0] ?? 0x04, content: raw.subarray(Math.min(2, raw.length)) });
  }
  switch (step.kind) {
    case 'nonMinimalLength': {
      // The same length in a longer form than needed: 81 05, 82 00 05, 83 00 01 00, ...
      const real = bodyLength(node);
      const width = Math.min(4, minBytes(real) + (real < 0x80 ? a % 3 : 1 + (a % 2)));
      const bytes: number[] = [];
      for (let v = real, i = 0; i < width; i++) {
        bytes.unshift(v & 0xff);
        v = Math.floor(v / 256);
      }
      node.lengthOverride = Buffer.from([0x80 | width, ...bytes]);
      break;
    }
    case 'indefiniteLength':
      node.lengthOverride = Buffer.from([0x80]);
      node.tail = Buffer.from([0, 0]);
      break;
    case 'lengthPlus':
      node.lengthOverride = encodeLen(bodyLength(node) + 1 + (a % 4));
      break;
    case 'lengthMinus':
      node.lengthOverride = encodeLen(Math.max(0, bodyLength(node) - 1 - (a % 4)));
      break;
    case 'hugeLength':
      node.lengthOverride = Buffer.from([[0x84, 0x84, 0x83, 0x85][a % 4]!, 0xff, 0xff, 0xff, 0xff].slice(0, 2 + (a % 4)));
      break;
    case 'padOid':
      if (node.tag === 0x06 && node.content && node.content.length) {
        // Insert 0x80 at the start of an arc (the arc boundaries are after bytes without the high bit).
        const starts = [0];
        for (let i = 0; i < node.content.length - 1; i++) if (!(node.content[i]! & 0x80)) starts.push(i + 1);
        const s = starts[a % starts.length]!;
        node.content = Buffer.concat([node.content.subarray(0, s), Buffer.alloc(1 + (b % 2), 0x80), node.content.subarray(s)]);
      } else node.content = Buffer.from([0x80, 0x2a]);
      break;
    case 'emptyContent':
      delete node.kids;
      node.content = Buffer.alloc(0);
      break;
    case 'nonMinimalInteger':
      if (node.kids) break;
      node.content = Buffer.concat([Buffer.from([(node.content?.[0] ?? 0) & 0x80 ? 0xff : 0x00]), node.content ?? Buffer.alloc(0)]);
      if (node.tag !== 0x02 && node.tag !== 0x0a && a % 2) node.tag = 0x02;
      break;
    case 'booleanOne':
      if (node.tag === 0x01) node.content = Buffer.from([[0x01, 0x00, 0x7f, 0xfe][a % 4]!]);
      else if (parent?.kids) parent.kids.splice(index + 1, 0, { tag: 0x01, content: Buffer.from([0x01]) });
      break;
    case 'criticalFalse': {
      // An Extension-shaped SEQUENCE { OID, OCTET STRING }: insert the DEFAULT.
      const ext =
        node.kids && node.kids.length === 2 && node.kids[0]!.tag === 0x06 && node.kids[1]!.tag === 0x04
          ? node
          : nodes.map((x) => x.node).find((x) => x.kids && x.kids.length === 2 && x.kids[0]!.tag === 0x06 && x.kids[1]!.tag === 0x04);
      if (ext) ext.kids!.splice(1, 0, { tag: 0x01, content: Buffer.from([a % 2 ? 0x00 : 0x01]) });
      break;
    }
    case 'randomContent':
      delete node.kids;
      node.content = Buffer.from(step.bytes);
      break;
    case 'flipBit': {
      const enc = encodeTree(node);
      enc[a % enc.length]! ^= 1 << (b % 8);
      replaceWithRaw(node, enc);
      break;
    }
    case 'setByte': {
      const enc = encodeTree(node);
      enc[a % enc.length] = step.bytes[0] ?? b & 0xff;
      replaceWithRaw(node, enc);
      break;
    }
    case 'duplicateKid':
      if (node.kids?.length) node.kids.splice(a % node.kids.length, 0, clone(node.kids[a % node.kids.length]!));
      else if (parent?.kids) parent.kids.splice(index, 0, clone(node));
      break;
    case 'removeKid':
      if (node.kids?.length) node.kids.splice(a % node.kids.length, 1);
      else if (parent?.kids) parent.kids.splice(index, 1);
      break;
    case 'swapKids':
      if (node.kids && node.kids.length > 1) {
        const i = a % node.kids.length;
        const j = b % node.kids.length;
        [node.kids[i], node.kids[j]] = [node.kids[j]!, node.kids[i]!];
      }
      break;
    case 'changeTag':
      node.tag = (step.bytes[0] ?? a) & 0xff;
      if ((node.tag & 0x1f) === 0x1f) node.tag ^= 0x01;
      break;
    case 'highTag':
      // A high-tag-number form: tag byte 0x1f plus one more tag byte, stored as raw bytes.
      replaceWithRaw(node, Buffer.concat([Buffer.from([(node.tag & 0xe0) | 0x1f, 0x80 | (a & 0x7f), b & 0x7f]), encodeTree(node).subarray(1)]));
      break;
    case 'nest': {
      // Wrap in up to 4000 SEQUENCE/SET/[0] headers (deeply nested input), as opaque bytes so
      // that the tree itself stays shallow.
      const depth = 1 + ((a * 97 + b) % 4000);
      const parts: Buffer[] = [];
      let len = encodeTree(node).length;
      for (let i = 0; i < depth; i++) {
        const h = Buffer.concat([Buffer.from([[0x30, 0x31, 0xa0][(i + b) % 3]!]), encodeLen(len)]);
        parts.push(h);
        len += h.length;
      }
      replaceWithRaw(node, Buffer.concat([...parts.reverse(), encodeTree(node)]));
      break;
    }
    case 'huge': {
      const size = [200, 70_000, 1 << 17][a % 3]!;
      delete node.kids;
      node.content = Buffer.alloc(size, step.bytes[0] ?? 0x41);
      break;
    }
    case 'bitStringUnused':
      if (node.tag === 0x03) {
        const enc = encodeTree(node);
        const h = lenientHeader(enc, 0);
        if (h && h.length > 0) {
          enc[h.headerLength] = a % 9;
          replaceWithRaw(node, enc);
        }
      }
      break;
    case 'infinityPoint': {
      // The EC point of an SPKI: BIT STRING 00 00 (the point at infinity), or compressed/odd forms.
      const target = node.tag === 0x03 ? node : nodes.map((x) => x.node).find((x) => x.tag === 0x03);
      if (target) {
        delete target.kids;
        delete target.bitPrefix;
        const forms = [
          [0x00, 0x00],
          [0x00],
          [0x00, 0x04],
          [0x00, 0x02, ...new Array(32).fill(0)],
          [0x00, 0x04, ...new Array(64).fill(0)],
          [0x00, 0x03, ...new Array(48).fill(0xff)],
        ];
        target.content = Buffer.from(forms[a % forms.length]!);
      }
      break;
    }
    case 'truncateContent': {
      const enc = encodeTree(node);
      replaceWithRaw(node, enc.subarray(0, a % Math.max(1, contentLen())));
      break;
    }
    case 'zeroContent':
      delete node.kids;
      node.content = Buffer.alloc(node.content?.length ?? 1 + (a % 8), 0);
      break;
    case 'appendTrailing':
      node.tail = Buffer.from(step.bytes.length ? step.bytes : [0x00]);
      break;
  }
  return tree;
}

const minBytes = (n: number): number => (n < 0x100 ? 1 : n < 0x10000 ? 2 : n < 0x1000000 ? 3 : 4);

/** Content length of a node as encoded (without any length override). */
function bodyLength(node: Node): number {
  const enc = encodeTree({ ...node, lengthOverride: undefined, raw: undefined });
  const h = lenientHeader(enc, 0);
  return h ? h.length : Math.max(0, enc.length - 2);
}

/** Turns a node into opaque bytes spliced in as they are. */
function replaceWithRaw(node: Node, raw: Buffer): void {
  delete node.kids;
  delete node.bitPrefix;
  delete node.tail;
  delete node.content;
  delete node.lengthOverride;
  node.raw = Buffer.from(raw);
}
