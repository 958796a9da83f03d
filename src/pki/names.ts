/**
 * Name policy: what a well-formed SAN is, which names a profile allows, and RFC 5280 name
 * constraints. Pure — no I/O, no clock. Every refusal is a 'rejected-name' SignetError whose
 * detail names the offending value and the rule, because the person reading it is usually
 * fixing a CSR by hand.
 */
import { isIP } from 'node:net';
import { domainToASCII, domainToUnicode } from 'node:url';
import { AsnConvert } from '@peculiar/asn1-schema';
import { NameConstraints as AsnNameConstraints, type GeneralName } from '@peculiar/asn1-x509';
import { SignetError, type ProblemType } from '../errors.js';
import { readHeader, sequence, tlv } from './der.js';
import { checkDer } from './der-strict.js';

export type SanType = 'dns' | 'ip' | 'email' | 'uri';
export interface SanEntry {
  type: SanType;
  value: string;
}

const MAX_DNS_NAME = 253;
const MAX_LABEL = 63;

/** Quotes a value for a detail line; control characters are escaped so a detail stays one line. */
const show = (s: string, max = 100): string => {
  const t = s.length > max ? s.slice(0, max) + '…' : s;
  // eslint-disable-next-line no-control-regex
  return `'${t.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)}'`;
};

const rejected = (detail: string): SignetError => new SignetError('rejected-name', detail);

// ---------------------------------------------------------------------------------------------
// DNS names

/**
 * Why a DNS name is not acceptable, or null. `wildcard` says whether a leftmost `*` label may
 * appear (SANs: yes; email domains and constraint bases: no).
 */
function dnsNameProblem(name: string, wildcard: boolean): string | null {
  if (name.length === 0) return 'DNS name is empty';
  const q = show(name);
  if (/[^\x00-\x7f]/.test(name)) {
    const ascii = domainToASCII(name.replace(/\.$/, ''));
    return ascii
      ? `DNS name ${q} contains non-ASCII characters; internationalized names must be written as A-labels: use '${ascii}'`
      : `DNS name ${q} contains non-ASCII characters and is not a valid internationalized domain name`;
  }
  if (isIP(name) || /^\[.*\]$/.test(name)) return `DNS name ${q} is an IP address; put IP addresses in an iPAddress SAN`;
  if (/[A-Z]/.test(name)) return `DNS name ${q} must be lower-case: use '${name.toLowerCase()}'`;
  if (name.endsWith('.') && name.length > 1) {
    return `DNS name ${q} has a trailing dot; write it without one ('${name.replace(/\.+$/, '')}')`;
  }
  if (name.length > MAX_DNS_NAME) return `DNS name ${q} is ${name.length} characters long; the limit is ${MAX_DNS_NAME}`;

  const labels = name.split('.');
  if (labels.some((l) => l.length === 0)) return `DNS name ${q} has an empty label`;

  let rest = labels;
  if (labels[0] === '*') {
    if (!wildcard) return `DNS name ${q}: a wildcard is not allowed here`;
    // '*' or '*.com' would cover a whole top-level domain.
    if (labels.length < 3) return `wildcard DNS name ${q} needs at least two labels after '*.' (e.g. '*.example.com')`;
    rest = labels.slice(1);
  }
  for (const label of rest) {
    const lq = show(label);
    if (label.includes('*')) {
      return `DNS name ${q}: a wildcard is only allowed as the whole leftmost label ('*.example.com'); ${lq} is not allowed`;
    }
    if (label.length > MAX_LABEL) return `label ${show(label, 20)} in DNS name ${q} is ${label.length} characters long; the limit is ${MAX_LABEL}`;
    const bad = /[^a-z0-9-]/.exec(label);
    if (bad) return `label ${lq} in DNS name ${q} contains ${show(bad[0])}; DNS labels may only contain a-z, 0-9 and '-'`;
    if (label.startsWith('-')) return `label ${lq} in DNS name ${q} starts with a hyphen`;
    if (label.endsWith('-')) return `label ${lq} in DNS name ${q} ends with a hyphen`;
    if (label.startsWith('xn--')) {
      const p = aLabelProblem(label);
      if (p) return `label ${lq} in DNS name ${q} ${p}`;
    } else if (label.slice(2, 4) === '--') {
      // RFC 5891 §4.2.3.1 / CA/B BR 7.1.4.2: '??--' labels are reserved for IDN prefixes.
      return `label ${lq} in DNS name ${q} has '--' in positions 3–4, which is reserved (only 'xn--' A-labels may use it)`;
    }
  }
  // WHATWG URL parsers (every browser) read a name whose last label is a number as an IPv4
  // address, e.g. '1.2.3' or 'host.0x7f', so such a name would never be matched as a DNS name.
  const last = labels[labels.length - 1]!;
  if (/^(?:[0-9]+|0x[0-9a-f]*)$/.test(last)) {
    return `DNS name ${q} ends in a numeric label, which URL parsers read as an IPv4 address; put IP addresses in an iPAddress SAN`;
  }
  return null;
}

/** Checks that an `xn--` label is real punycode that round-trips (RFC 5890 A-label). */
function aLabelProblem(label: string): string | null {
  const unicode = domainToUnicode(label);
  // A label that does not decode comes back empty from Node 20's domainToUnicode but unchanged
  // from Node 24's (Ada's WHATWG "domain to Unicode" never fails). A real A-label never decodes to
  // itself: its decoding loses the 'xn--' prefix.
  if (!unicode || unicode === label) return 'is not valid punycode (an A-label must decode to a Unicode label)';
  if (!/[^\x00-\x7f]/.test(unicode)) return `is not a valid A-label (it decodes to the ASCII label '${unicode}')`;
  const back = domainToASCII(unicode);
  if (back !== label) return back ? `is not in canonical A-label form; use '${back}'` : 'is not a valid A-label';
  return null;
}

/** Throws 'rejected-name' unless `name` is an acceptable dNSName SAN. */
export function validateDnsName(name: string): void {
  const p = dnsNameProblem(name, true);
  if (p) throw rejected(p);
}

// ---------------------------------------------------------------------------------------------
// IP addresses

const V4 = /^(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(?:\.(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$/;

function parseV4(s: string): Buffer | null {
  return V4.test(s) ? Buffer.from(s.split('.').map(Number)) : null;
}

function parseV6(s: string): Buffer | null {
  let text = s;
  const tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.slice(lastColon + 1).includes('.')) {
    const v4 = parseV4(text.slice(lastColon + 1));
    if (!v4 || lastColon < 0) return null;
    tail.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
    // Keep a trailing ':' only when it is the second half of '::'.
    text = text.slice(0, lastColon + 1);
    text = text.endsWith('::') ? text : text.slice(0, -1);
  }
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const group = (g: string): number | null => (/^[0-9a-fA-F]{1,4}$/.test(g) ? parseInt(g, 16) : null);
  const parse = (h: string): number[] | null => {
    if (h === '') return [];
    const out: number[] = [];
    for (const g of h.split(':')) {
      const n = group(g);
      if (n === null) return null;
      out.push(n);
    }
    return out;
  };
  const left = parse(halves[0]!);
  const right = halves.length === 2 ? parse(halves[1]!) : [];
  if (!left || !right) return null;
  const explicit = left.length + right.length + tail.length;
  let groups: number[];
  if (halves.length === 2) {
    if (explicit > 7) return null;
    groups = [...left, ...new Array<number>(8 - explicit).fill(0), ...right, ...tail];
  } else {
    if (explicit !== 8) return null;
    groups = [...left, ...tail];
  }
  const buf = Buffer.alloc(16);
  groups.forEach((g, i) => {
    buf.writeUInt16BE(g, i * 2);
  });
  return buf;
}

/** RFC 5952 text for an IPv6 address, dotted quad for IPv4. */
export function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  if (bytes.length !== 16) throw new RangeError(`an IP address has 4 or 16 bytes, not ${bytes.length}`);
  const b = Buffer.from(bytes);
  const groups = Array.from({ length: 8 }, (_, i) => b.readUInt16BE(i * 2));
  // RFC 5952 §5: IPv4-mapped addresses keep the dotted quad.
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) return `::ffff:${Array.from(b.subarray(12)).join('.')}`;
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestLen < 2) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** Parses an IP address SAN value into its 4 or 16 bytes; throws 'rejected-name' with the reason. */
export function validateIp(value: string): Buffer {
  const q = show(value);
  if (value.length === 0) throw rejected('IP address is empty');
  if (value.includes('%')) throw rejected(`IP address ${q} has a zone index; zone indices cannot appear in certificates`);
  if (value.includes('/')) throw rejected(`IP address ${q} is a range; an iPAddress SAN is a single address`);
  const v4 = parseV4(value);
  if (v4) return v4;
  if (/^[0-9]+(?:\.[0-9]+){3}$/.test(value) && value.split('.').every((p) => Number(p) <= 255)) {
    const clean = value.split('.').map(Number).join('.');
    throw rejected(`IPv4 address ${q} has leading zeros, which some parsers read as octal; write '${clean}'`);
  }
  const v6 = value.includes(':') ? parseV6(value) : null;
  if (!v6) throw rejected(`${q} is not an IPv4 or IPv6 address`);
  if (v6.subarray(0, 10).every((x) => x === 0) && v6[10] === 0xff && v6[11] === 0xff) {
    // A mapped address would slip past IPv4 ranges and exclusions, yet clients connect to the IPv4 host.
    throw rejected(`IP address ${q} is an IPv4-mapped IPv6 address; use the IPv4 address '${formatIp(v6.subarray(12))}'`);
  }
  return v6;
}

/** Canonical text of an IP address (RFC 5952 for IPv6); throws like validateIp. */
export const normalizeIp = (value: string): string => formatIp(validateIp(value));

export interface Cidr {
  bytes: Buffer;
  prefix: number;
}

/**
 * Parses 'a.b.c.d/n', 'x::/n' or a bare address (a /32 or /128). Host bits must be zero: a
 * range written as 10.1.2.3/8 is nearly always a typo for something narrower.
 */
export function parseCidr(text: string, errorType: ProblemType = 'bad-request'): Cidr {
  const q = show(text);
  const [addr = '', prefixText, extra] = text.split('/');
  const bytes = addr.includes(':') ? parseV6(addr) : parseV4(addr);
  if (!bytes || extra !== undefined) throw new SignetError(errorType, `${q} is not an IP range in CIDR notation (e.g. 10.0.0.0/8, fd00::/8)`);
  const max = bytes.length * 8;
  if (prefixText !== undefined && !/^(?:0|[1-9][0-9]{0,2})$/.test(prefixText)) {
    throw new SignetError(errorType, `IP range ${q} has an invalid prefix length`);
  }
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (prefix > max) throw new SignetError(errorType, `IP range ${q} has prefix length ${prefix}; the maximum is ${max}`);
  const masked = maskBytes(bytes, prefix);
  if (!masked.equals(bytes)) {
    throw new SignetError(errorType, `IP range ${q} has host bits set; did you mean '${formatIp(masked)}/${prefix}'?`);
  }
  return { bytes, prefix };
}

function maskBytes(bytes: Uint8Array, prefix: number): Buffer {
  const out = Buffer.from(bytes);
  for (let i = 0; i < out.length; i++) {
    const bits = Math.max(0, Math.min(8, prefix - i * 8));
    out[i]! &= (0xff << (8 - bits)) & 0xff;
  }
  return out;
}

const inCidr = (addr: Buffer, c: Cidr): boolean => addr.length === c.bytes.length && maskBytes(addr, c.prefix).equals(c.bytes);

const showCidr = (c: Cidr): string => `${formatIp(c.bytes)}/${c.prefix}`;

// ---------------------------------------------------------------------------------------------
// Email addresses and URIs

const ATEXT = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+$/;

/**
 * Throws 'rejected-name' unless `value` is an ASCII mailbox `local@domain` (rfc822Name). Quoted
 * local parts and SmtpUTF8 mailboxes are refused: few verifiers handle them consistently.
 */
export function validateEmail(value: string): void {
  const q = show(value);
  if (value.length === 0) throw rejected('email address is empty');
  const at = value.lastIndexOf('@');
  const local = at < 0 ? '' : value.slice(0, at);
  const domain = at < 0 ? '' : value.slice(at + 1);
  if (/[^\x00-\x7f]/.test(local)) {
    throw rejected(`email address ${q} has a non-ASCII local part; internationalized mailboxes are not supported`);
  }
  if (/[^\x00-\x7f]/.test(domain)) {
    const ascii = domainToASCII(domain);
    throw rejected(`email address ${q} has a non-ASCII domain; use the A-label form${ascii ? ` '${local}@${ascii}'` : ''}`);
  }
  if (at < 0) throw rejected(`email address ${q} has no '@'`);
  if (local.startsWith('"')) throw rejected(`email address ${q} has a quoted local part, which is not supported`);
  if (local.length === 0) throw rejected(`email address ${q} has an empty local part`);
  if (local.length > 64) throw rejected(`email address ${q} has a local part of ${local.length} characters; the limit is 64`);
  if (value.length > 254) throw rejected(`email address ${q} is ${value.length} characters long; the limit is 254`);
  if (!local.split('.').every((atom) => ATEXT.test(atom))) {
    throw rejected(`email address ${q} has an invalid local part (allowed: letters, digits, !#$%&'*+/=?^_\`{|}~- and single dots between them)`);
  }
  if (domain.startsWith('[')) throw rejected(`email address ${q} uses an address literal; only domain names are supported`);
  const p = dnsNameProblem(domain.toLowerCase(), false);
  if (p) throw rejected(`email address ${q}: ${p}`);
}

/**
 * URI schemes whose URIs always name a host: they must be written `scheme://host…` with a
 * non-empty host. The WHATWG URL standard (browsers, node, most HTTP stacks) finds a host even
 * in 'https:www.bank.example' or 'https:///www.bank.example', where RFC 3986 sees none; and a
 * host-less spelling of a scheme that has hosts ('spiffe:victim-device') is not a name any
 * allow-list can judge.
 */
export const HOST_SCHEMES: readonly string[] = ['http', 'https', 'ws', 'wss', 'ftp', 'spiffe', 'ldap', 'ldaps'];

/** The characters RFC 3986 allows in a URI: unreserved, gen-delims, sub-delims and '%'. */
const RFC3986_CHAR = /^[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=%]$/;

/** A URI split as RFC 3986 reads it; `host` is lower-case, an IPv6 literal without brackets. */
interface UriParts {
  scheme: string;
  /** Present when the URI is written with '//' (it then always has a non-empty host). */
  authority?: { host: string; ip?: Buffer; port?: number };
}

/**
 * Parses a URI SAN by RFC 3986, holding it to the subset every URL parser reads alike, and
 * throws 'rejected-name' naming the first problem. Refused: anything but printable ASCII,
 * characters RFC 3986 does not allow (the backslash above all: WHATWG parsers read it as '/',
 * others as data, so 'https://x.corp.example\@www.bank.example/' has two different hosts),
 * malformed percent-escapes, '[' or ']' outside an IP literal, a second '#'; in the authority:
 * user information (an '@'), an empty host, a host that is not a DNS name, an IPv4 address or a
 * bracketed IPv6 address (percent-escapes, '_', '!', zone ids, IPvFuture …), a port that is not
 * 1–65535 in plain digits; a scheme of HOST_SCHEMES without an authority. Finally the WHATWG
 * parser (node's URL) must read the same host — so a verifier of either kind judges the host
 * Signet judged.
 */
function parseUri(value: string): UriParts {
  const q = show(value);
  if (value.length === 0) throw rejected('URI is empty');
  if (/[^\x21-\x7e]/.test(value)) throw rejected(`URI ${q} must be ASCII without spaces; percent-encode other characters`);
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(value);
  if (!m) throw rejected(`URI ${q} is not an absolute URI (it needs a scheme, e.g. 'https:', 'spiffe:', 'urn:')`);
  const scheme = m[1]!.toLowerCase();
  if (value.includes('\\'))
    throw rejected(`URI ${q} contains a backslash, which WHATWG URL parsers (browsers) read as '/' and others as data; percent-encode it as %5C`);
  for (const c of value) {
    if (!RFC3986_CHAR.test(c)) throw rejected(`URI ${q} contains ${show(c)}, which RFC 3986 does not allow in a URI; percent-encode it`);
  }
  if (/%(?![0-9A-Fa-f]{2})/.test(value)) throw rejected(`URI ${q} has a '%' that does not start a percent-escape (%XX with two hex digits)`);

  let rest = value.slice(m[0].length);
  const hash = rest.indexOf('#');
  if (hash >= 0) {
    if (rest.includes('#', hash + 1)) throw rejected(`URI ${q} has more than one '#'; percent-encode the others as %23`);
    rest = rest.slice(0, hash);
  }
  const qm = rest.indexOf('?');
  const hier = qm >= 0 ? rest.slice(0, qm) : rest;
  const outsideAuthority = (s: string) => /[[\]]/.test(s);
  if (outsideAuthority(value.slice(m[0].length + hier.length))) throw rejected(`URI ${q} has '[' or ']' outside an IPv6 host; percent-encode them`);

  if (!hier.startsWith('//')) {
    if (outsideAuthority(hier)) throw rejected(`URI ${q} has '[' or ']' outside an IPv6 host; percent-encode them`);
    if (HOST_SCHEMES.includes(scheme)) throw rejected(`URI ${q}: '${scheme}' URIs name a host and must be written '${scheme}://host/…'`);
    sameHostForWhatwg(whatwgUrl(value, q, true)!, q, undefined);
    return { scheme };
  }
  const slash = hier.indexOf('/', 2);
  const authority = slash >= 0 ? hier.slice(2, slash) : hier.slice(2);
  if (outsideAuthority(slash >= 0 ? hier.slice(slash) : '')) throw rejected(`URI ${q} has '[' or ']' outside an IPv6 host; percent-encode them`);
  if (authority.includes('@')) {
    throw rejected(`URI ${q} has user information ('…@') before its host; URL parsers disagree on the host of such URIs, so they are refused`);
  }
  let hostText: string;
  let portText: string | undefined;
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    if (close < 0) throw rejected(`URI ${q} has an IPv6 host without its closing ']'`);
    hostText = authority.slice(0, close + 1);
    const after = authority.slice(close + 1);
    if (after !== '' && !after.startsWith(':')) throw rejected(`URI ${q} has ${show(after)} after its IPv6 host; only ':port' may follow it`);
    if (after) portText = after.slice(1);
  } else {
    if (/[[\]]/.test(authority)) throw rejected(`URI ${q} has '[' or ']' outside an IPv6 host; percent-encode them`);
    const colon = authority.indexOf(':');
    hostText = colon >= 0 ? authority.slice(0, colon) : authority;
    if (colon >= 0) portText = authority.slice(colon + 1);
  }
  if (hostText === '') {
    throw rejected(
      `URI ${q} is written with '//' but names no host; write the host (e.g. '${scheme}://example.com/…'), or for a URI without one drop the '//' (e.g. 'urn:…', 'file:/path')`,
    );
  }
  let port: number | undefined;
  if (portText !== undefined) {
    if (!/^[1-9][0-9]{0,4}$/.test(portText) || Number(portText) > 65535) {
      throw rejected(`URI ${q} has port ${show(portText)}; a port is a number from 1 to 65535 in plain digits without leading zeros (or leave out the ':')`);
    }
    port = Number(portText);
  }
  if (hostText.includes('%'))
    throw rejected(`URI ${q} has a percent-escape in its host ${show(hostText)}; URL parsers disagree on decoding hosts, so write the host plainly`);

  const host = hostText.toLowerCase();
  let ip: Buffer | undefined;
  if (host.startsWith('[')) {
    const inner = host.slice(1, -1);
    if (inner.startsWith('v')) throw rejected(`URI ${q} has an IPvFuture host ${show(hostText)}, which Signet does not support`);
    if (!inner.includes(':')) throw rejected(`URI ${q} has ${show(hostText)} in brackets, which is not an IPv6 address`);
    try {
      ip = validateIp(inner);
    } catch (e) {
      throw rejected(`URI ${q} has an IPv6 host that is not acceptable: ${(e as SignetError).detail}`);
    }
  } else {
    ip = parseV4(host) ?? undefined;
  }
  const bare = host.startsWith('[') ? host.slice(1, -1) : host;
  // A disagreement is the most useful thing to say (it names both hosts); a WHATWG refusal the
  // least (it says nothing of why), so the host's own problem is named before it.
  const url = whatwgUrl(value, q, false);
  if (url) sameHostForWhatwg(url, q, { host: bare, ip });
  if (!ip) {
    const p = dnsNameProblem(host, false);
    if (p) throw rejected(`URI ${q} has host ${show(hostText)}, which is not a DNS name, an IPv4 address or a bracketed IPv6 address: ${p}`);
  }
  if (!url) whatwgUrl(value, q, true);
  return { scheme, authority: { host: bare, ...(ip ? { ip } : {}), ...(port !== undefined ? { port } : {}) } };
}

/** The WHATWG reading of a URI (node's URL, as browsers and most HTTP stacks read URLs); a refusal throws when `required`. */
function whatwgUrl(value: string, q: string, required: boolean): URL | undefined {
  try {
    return new URL(value);
  } catch {
    if (required) throw rejected(`URI ${q} is not a URL that WHATWG URL parsers (browsers, node) accept`);
    return undefined;
  }
}

/** The WHATWG reading must find the same host as the RFC 3986 reading, or none where it found none. */
function sameHostForWhatwg(url: URL, q: string, mine: { host: string; ip?: Buffer } | undefined): void {
  if (url.username || url.password) throw rejected(`URI ${q} has user information, which URL parsers read differently`);
  const theirs = url.hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  let same: boolean;
  if (!mine) same = theirs === '';
  else if (mine.ip) {
    const t = theirs.includes(':') ? parseV6(theirs) : parseV4(theirs);
    same = t?.equals(mine.ip) === true;
  } else same = theirs === mine.host;
  if (!same) {
    const read = (h: string) => (h === '' ? 'no host' : `host ${show(h)}`);
    throw rejected(
      `URI ${q} has ${read(mine?.host ?? '')} as RFC 3986 reads it, but ${read(theirs)} as WHATWG URL parsers (browsers, node) read it; write a URI both read alike`,
    );
  }
}

/**
 * Throws 'rejected-name' unless `value` is an absolute URI in ASCII (uniformResourceIdentifier is
 * an IA5String; RFC 5280 §4.2.1.6 requires a scheme) that RFC 3986 and WHATWG URL parsers read
 * alike (see parseUri).
 */
export function validateUri(value: string): void {
  parseUri(value);
}

/**
 * The host of a URI SAN (lower-case; an IPv4 or IPv6 host as its bytes), or null for a URI
 * without one (urn:, mailto:, file:/path). Throws 'rejected-name' for a URI validateUri refuses:
 * a host is only ever judged when every parser reads the same one.
 */
export function uriHost(value: string): { dns?: string; ip?: Buffer } | null {
  const a = parseUri(value).authority;
  if (!a) return null;
  return a.ip ? { ip: a.ip } : { dns: a.host };
}

/** Throws 'rejected-name' unless the SAN is well formed for its type. */
export function validateSan(san: SanEntry): void {
  switch (san.type) {
    case 'dns':
      validateDnsName(san.value);
      return;
    case 'ip':
      validateIp(san.value);
      return;
    case 'email':
      validateEmail(san.value);
      return;
    case 'uri':
      validateUri(san.value);
      return;
    default:
      throw rejected(`SAN type ${show(String((san as { type: unknown }).type))} is not supported`);
  }
}

// ---------------------------------------------------------------------------------------------
// Profile allow-lists

/**
 * A profile's allow-list. An undefined list allows any well-formed name of that kind; an empty
 * list allows none. `dnsSuffixes: ['example.com']` allows example.com and any name under it,
 * '.example.com' only names under it. `emailDomains` works the same on the mailbox's domain,
 * and an entry with '@' allows exactly that mailbox.
 */
export interface NamePolicy {
  dnsSuffixes?: string[];
  ipRanges?: string[];
  emailDomains?: string[];
  /** URI schemes allowed in URI SANs (absent = any). Allowing a scheme exempts nothing from a list. */
  uriSchemes?: string[];
  /**
   * The explicit opt-in for URIs without a host (urn:, mailto:, file:/path), which the DNS and
   * IP lists cannot judge: while either list is set (a profile's, or a token's name suffixes),
   * such a URI passes only if its scheme is named here. Absent = none. A scheme of HOST_SCHEMES
   * cannot be named: its URIs always have a host, and are judged by it.
   */
  hostlessUriSchemes?: string[];
}

/** Checks a policy's own entries; throws 'configuration' naming the bad entry. */
export function validateNamePolicy(policy: NamePolicy): void {
  for (const s of policy.dnsSuffixes ?? []) {
    const p = dnsNameProblem(s.startsWith('.') ? s.slice(1) : s, false);
    if (p) throw new SignetError('configuration', `name policy DNS suffix ${show(s)}: ${p}`);
  }
  for (const r of policy.ipRanges ?? []) parseCidr(r, 'configuration');
  for (const u of policy.uriSchemes ?? []) {
    if (!/^[a-z][a-z0-9+.-]*$/.test(u))
      throw new SignetError('configuration', `name policy URI scheme ${show(u)} must be a lower-case scheme name without ':' (e.g. 'spiffe', 'urn')`);
  }
  for (const u of policy.hostlessUriSchemes ?? []) {
    if (!/^[a-z][a-z0-9+.-]*$/.test(u))
      throw new SignetError('configuration', `name policy host-less URI scheme ${show(u)} must be a lower-case scheme name without ':' (e.g. 'urn')`);
    if (HOST_SCHEMES.includes(u))
      throw new SignetError(
        'configuration',
        `name policy host-less URI scheme '${u}': '${u}' URIs always name a host and are judged by it; it cannot be exempted`,
      );
    if (policy.uriSchemes !== undefined && !policy.uriSchemes.includes(u)) {
      throw new SignetError(
        'configuration',
        `name policy host-less URI scheme '${u}' is not among the allowed URI schemes (${listOf(policy.uriSchemes)}); allow it in uriSchemes too, or remove it`,
      );
    }
  }
  for (const e of policy.emailDomains ?? []) {
    try {
      if (e.includes('@')) validateEmail(e);
      else {
        const p = dnsNameProblem(e.startsWith('.') ? e.slice(1) : e, false);
        if (p) throw rejected(p);
      }
    } catch (err) {
      throw new SignetError('configuration', `name policy email domain ${show(e)}: ${(err as SignetError).detail}`);
    }
  }
}

/** Is `name` (possibly a wildcard) equal to or under `suffix`; a leading '.' means strictly under. */
function underSuffix(name: string, suffix: string): boolean {
  const s = suffix.toLowerCase();
  if (s === '' || s === '.') return true;
  if (s.startsWith('.')) return name.length > s.length && name.endsWith(s);
  return name === s || name.endsWith('.' + s);
}

function emailAllowed(email: string, entry: string): boolean {
  const at = email.lastIndexOf('@');
  const domain = email.slice(at + 1).toLowerCase();
  if (entry.includes('@')) {
    const e = entry.lastIndexOf('@');
    return email.slice(0, at) === entry.slice(0, e) && domain === entry.slice(e + 1).toLowerCase();
  }
  return underSuffix(domain, entry);
}

const listOf = (xs: string[]): string => (xs.length ? xs.join(', ') : '(none)');

/**
 * Throws 'rejected-name' unless every SAN is well formed and allowed by the policy. URI SANs
 * have no list of their own; their host must pass the DNS or IP list instead, so a URI cannot
 * smuggle in a host the profile would refuse as a dNSName.
 */
export function checkAllowed(sans: SanEntry[], policy: NamePolicy): void {
  validateNamePolicy(policy);
  const ranges = policy.ipRanges?.map((r) => parseCidr(r, 'configuration'));
  const dnsOk = (name: string) => policy.dnsSuffixes === undefined || policy.dnsSuffixes.some((s) => underSuffix(name, s));
  const ipOk = (addr: Buffer) => ranges === undefined || ranges.some((r) => inCidr(addr, r));
  for (const san of sans) {
    validateSan(san);
    const q = show(san.value);
    switch (san.type) {
      case 'dns':
        if (!dnsOk(san.value)) throw rejected(`DNS name ${q} is not allowed by this profile; allowed DNS suffixes: ${listOf(policy.dnsSuffixes!)}`);
        break;
      case 'ip':
        if (!ipOk(validateIp(san.value))) throw rejected(`IP address ${q} is not allowed by this profile; allowed IP ranges: ${listOf(policy.ipRanges!)}`);
        break;
      case 'email':
        if (policy.emailDomains !== undefined && !policy.emailDomains.some((e) => emailAllowed(san.value, e))) {
          throw rejected(`email address ${q} is not allowed by this profile; allowed email domains: ${listOf(policy.emailDomains)}`);
        }
        break;
      case 'uri': {
        const host = uriHost(san.value);
        const scheme = san.value.slice(0, san.value.indexOf(':')).toLowerCase();
        if (policy.uriSchemes !== undefined && !policy.uriSchemes.includes(scheme)) {
          throw rejected(`URI ${q} has scheme '${scheme}', which is not allowed by this profile; allowed URI schemes: ${listOf(policy.uriSchemes)}`);
        }
        if (!host && (policy.dnsSuffixes !== undefined || policy.ipRanges !== undefined) && !(policy.hostlessUriSchemes?.includes(scheme) ?? false)) {
          throw rejected(
            `URI ${q} has no host, so the allowed names (${listOf([...(policy.dnsSuffixes ?? []), ...(policy.ipRanges ?? [])])}) cannot judge it; a profile may allow such URIs by naming the scheme '${scheme}' in hostlessUriSchemes`,
          );
        }
        if (host?.dns !== undefined && !dnsOk(host.dns)) {
          throw rejected(`URI ${q} has host ${show(host.dns)}, which is not allowed by this profile; allowed DNS suffixes: ${listOf(policy.dnsSuffixes!)}`);
        }
        if (host?.ip && !ipOk(host.ip)) {
          throw rejected(`URI ${q} has host ${formatIp(host.ip)}, which is not allowed by this profile; allowed IP ranges: ${listOf(policy.ipRanges!)}`);
        }
        break;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Common name

/**
 * The CN, if present, must be exactly one of the SANs (CA/B BR 7.1.4.3, zlint
 * e_subject_common_name_not_exactly_from_san): same case, IPs in canonical text.
 */
export function validateCommonName(cn: string | undefined, sans: SanEntry[]): void {
  if (cn === undefined) return;
  const q = show(cn);
  if (cn.length === 0) throw rejected('subject commonName is empty; omit it or set it to one of the SANs');
  const canonical = (s: SanEntry): string => {
    if (s.type !== 'ip') return s.value;
    try {
      return normalizeIp(s.value);
    } catch {
      return s.value;
    }
  };
  if (sans.some((s) => canonical(s) === cn)) return;
  const hint = sans.find((s) => s.type === 'dns' && s.value.toLowerCase() === cn.toLowerCase());
  if (hint) throw rejected(`subject commonName ${q} differs in case from the SAN '${hint.value}'; the CN must match a SAN exactly`);
  let ip: string | null = null;
  try {
    ip = normalizeIp(cn);
  } catch {
    /* not an IP */
  }
  if (ip !== null && sans.some((s) => s.type === 'ip' && canonical(s) === ip)) {
    throw rejected(`subject commonName ${q} is not in canonical form; write it as '${ip}'`);
  }
  const list = sans.length ? sans.map((s) => canonical(s)).join(', ') : 'none';
  throw rejected(`subject commonName ${q} is not one of the subjectAltNames (${list}); add it as a SAN or omit the CN`);
}

// ---------------------------------------------------------------------------------------------
// Name constraints (RFC 5280 §4.2.1.10)

/**
 * Name constraints for an intermediate. DNS: 'example.com' = that name and everything under it,
 * '.example.com' = only names under it, '' = every name. IP: CIDR ranges. Email: a mailbox
 * ('a@example.com'), a host ('example.com', exactly that domain) or '.example.com' (any
 * subdomain). URI: the host, with the same forms as email hosts. Empty lists are the same as
 * absent ones (RFC 5280 has no way to encode an empty subtree list). `unsupported` lists name
 * forms found in a parsed extension that Signet cannot evaluate (e.g. 'permitted
 * directoryName'); issuance under such a CA is refused.
 */
export interface NameConstraints {
  permittedDns?: string[];
  excludedDns?: string[];
  permittedIp?: string[];
  excludedIp?: string[];
  permittedEmail?: string[];
  excludedEmail?: string[];
  permittedUri?: string[];
  excludedUri?: string[];
  unsupported?: string[];
}

const nonEmpty = (xs: string[] | undefined): xs is string[] => xs !== undefined && xs.length > 0;

/** A wildcard SAN also stands for every name one label below its base, and so meets a subtree rooted there. */
function dnsMeetsSubtree(name: string, base: string): boolean {
  if (underSuffix(name, base)) return true;
  if (!name.startsWith('*.') || base.startsWith('.')) return false;
  const wildBase = name.slice(2);
  const b = base.toLowerCase();
  return b.endsWith('.' + wildBase) && !b.slice(0, -wildBase.length - 1).includes('.');
}

/** RFC 5280 host matching for email and URI constraints. */
function hostMatches(host: string, constraint: string): boolean {
  const c = constraint.toLowerCase();
  if (c.startsWith('.')) return host.length > c.length && host.endsWith(c);
  return host === c;
}

function emailMatches(email: string, constraint: string): boolean {
  const at = email.lastIndexOf('@');
  if (constraint.includes('@')) {
    const c = constraint.lastIndexOf('@');
    return email.slice(0, at) === constraint.slice(0, c) && email.slice(at + 1).toLowerCase() === constraint.slice(c + 1).toLowerCase();
  }
  return hostMatches(email.slice(at + 1).toLowerCase(), constraint);
}

/**
 * Throws 'rejected-name' if any SAN falls outside the permitted subtrees of its type or inside an
 * excluded one. A wildcard is treated as every name it covers: '*.example.com' is refused when
 * 'bad.example.com' is excluded, and is permitted only by a subtree containing all of it.
 */
export function checkNameConstraints(sans: SanEntry[], nc: NameConstraints): void {
  if (nonEmpty(nc.unsupported)) {
    throw new SignetError(
      'policy',
      `the issuing CA's name constraints include ${nc.unsupported.join(', ')} subtrees, which Signet cannot evaluate; refusing to issue under it`,
    );
  }
  const outside = (kind: string, value: string, list: string[]) =>
    rejected(`${kind} ${show(value)} is outside the issuing CA's permitted name constraints (${list.map((x) => (x === '' ? "''" : x)).join(', ')})`);
  const excluded = (kind: string, value: string, hit: string) => rejected(`${kind} ${show(value)} is excluded by the issuing CA's name constraints ('${hit}')`);

  for (const san of sans) {
    validateSan(san);
    switch (san.type) {
      case 'dns': {
        const name = san.value;
        if (nonEmpty(nc.permittedDns) && !nc.permittedDns.some((b) => underSuffix(name, b))) throw outside('DNS name', name, nc.permittedDns);
        const hit = nc.excludedDns?.find((b) => dnsMeetsSubtree(name, b));
        if (hit !== undefined) throw excluded('DNS name', name, hit);
        break;
      }
      case 'ip': {
        const addr = validateIp(san.value);
        const permitted = nc.permittedIp?.map((r) => parseCidr(r));
        if (permitted?.length && !permitted.some((r) => inCidr(addr, r))) throw outside('IP address', san.value, permitted.map(showCidr));
        const hit = nc.excludedIp?.map((r) => parseCidr(r)).find((r) => inCidr(addr, r));
        if (hit) throw excluded('IP address', san.value, showCidr(hit));
        break;
      }
      case 'email': {
        if (nonEmpty(nc.permittedEmail) && !nc.permittedEmail.some((c) => emailMatches(san.value, c)))
          throw outside('email address', san.value, nc.permittedEmail);
        const hit = nc.excludedEmail?.find((c) => emailMatches(san.value, c));
        if (hit !== undefined) throw excluded('email address', san.value, hit);
        break;
      }
      case 'uri': {
        const host = uriHost(san.value);
        // RFC 5280: a URI without a host cannot satisfy a URI constraint. IP hosts are matched
        // as text, which no dNSName-style constraint equals, so they never satisfy one either.
        const h = host?.dns ?? (host?.ip ? formatIp(host.ip) : undefined);
        if (nonEmpty(nc.permittedUri) && (h === undefined || !nc.permittedUri.some((c) => hostMatches(h, c)))) throw outside('URI', san.value, nc.permittedUri);
        const hit = h === undefined ? undefined : nc.excludedUri?.find((c) => hostMatches(h, c));
        if (hit !== undefined) throw excluded('URI', san.value, hit);
        break;
      }
    }
  }
}

const GENERAL_NAME_FORMS: Record<string, string> = {
  otherName: 'otherName',
  x400Address: 'x400Address',
  directoryName: 'directoryName',
  ediPartyName: 'ediPartyName',
  registeredID: 'registeredID',
};

/** The raw iPAddress contents of each subtree, in order; the library's converter drops non-prefix masks. */
function rawIpBases(der: Uint8Array): { permitted: (Buffer | null)[]; excluded: (Buffer | null)[] } {
  const out = { permitted: [] as (Buffer | null)[], excluded: [] as (Buffer | null)[] };
  const outer = readHeader(der, 0);
  let off = outer.headerLength;
  const end = outer.headerLength + outer.length;
  while (off < end) {
    const h = readHeader(der, off);
    const list = h.tag === 0xa0 ? out.permitted : h.tag === 0xa1 ? out.excluded : null;
    let sub = off + h.headerLength;
    while (list && sub < off + h.headerLength + h.length) {
      const st = readHeader(der, sub);
      const base = readHeader(der, sub + st.headerLength);
      const start = sub + st.headerLength + base.headerLength;
      list.push(base.tag === 0x87 ? Buffer.from(der.subarray(start, start + base.length)) : null);
      sub += st.headerLength + st.length;
    }
    off += h.headerLength + h.length;
  }
  return out;
}

function ipConstraintText(raw: Buffer | null): string {
  if (!raw || (raw.length !== 8 && raw.length !== 32)) {
    throw new SignetError(
      'bad-request',
      `name constraints: an iPAddress subtree has ${raw?.length ?? 0} bytes; it must be an address and mask of 8 (IPv4) or 32 (IPv6) bytes`,
    );
  }
  const half = raw.length / 2;
  const mask = raw.subarray(half);
  const bits = Array.from(mask, (b) => b.toString(2).padStart(8, '0')).join('');
  if (!/^1*0*$/.test(bits)) throw new SignetError('bad-request', `name constraints: iPAddress mask ${formatIp(mask)} is not a contiguous prefix`);
  const prefix = bits.indexOf('0') < 0 ? bits.length : bits.indexOf('0');
  return `${formatIp(maskBytes(raw.subarray(0, half), prefix))}/${prefix}`;
}

/** Reads a nameConstraints extnValue (DER) into Signet's form; throws 'bad-request' if malformed. */
const MAX_NAME_CONSTRAINTS_BYTES = 16 * 1024;

export function parseNameConstraintsExtension(extnValueDer: Uint8Array): NameConstraints {
  let parsed: AsnNameConstraints;
  let raw: ReturnType<typeof rawIpBases>;
  try {
    // Far more than any real constraint set (hundreds of subtrees); the schema parser's cost
    // grows faster than the input, so a hostile CA certificate must not reach it unbounded.
    if (extnValueDer.length > MAX_NAME_CONSTRAINTS_BYTES) throw new Error(`it is ${extnValueDer.length} bytes; the limit is ${MAX_NAME_CONSTRAINTS_BYTES}`);
    const total = readHeader(extnValueDer, 0);
    if (total.headerLength + total.length !== extnValueDer.length) throw new Error('trailing bytes after NameConstraints');
    checkDer(extnValueDer);
    parsed = AsnConvert.parse(extnValueDer, AsnNameConstraints);
    raw = rawIpBases(extnValueDer);
  } catch (e) {
    throw new SignetError('bad-request', `name constraints extension is malformed: ${(e as Error).message}`);
  }
  const nc: NameConstraints = {};
  const add = (key: keyof Omit<NameConstraints, 'unsupported'>, v: string) => {
    (nc[key] ??= []).push(v);
  };
  const sides = [
    ['permitted', parsed.permittedSubtrees, raw.permitted],
    ['excluded', parsed.excludedSubtrees, raw.excluded],
  ] as const;
  for (const [side, subtrees, rawIps] of sides) {
    if (!subtrees) continue;
    subtrees.forEach((st, i) => {
      const base: GeneralName = st.base;
      // RFC 5280 requires minimum 0 and no maximum; anything else we cannot honour.
      if (st.minimum !== 0 || st.maximum !== undefined) {
        (nc.unsupported ??= []).push(`${side} subtree with minimum/maximum`);
        return;
      }
      const P = side === 'permitted';
      if (base.dNSName !== undefined) add(P ? 'permittedDns' : 'excludedDns', base.dNSName.toLowerCase());
      else if (base.iPAddress !== undefined) add(P ? 'permittedIp' : 'excludedIp', ipConstraintText(rawIps[i] ?? null));
      else if (base.rfc822Name !== undefined) add(P ? 'permittedEmail' : 'excludedEmail', base.rfc822Name);
      else if (base.uniformResourceIdentifier !== undefined) add(P ? 'permittedUri' : 'excludedUri', base.uniformResourceIdentifier);
      else {
        const form = Object.keys(GENERAL_NAME_FORMS).find((k) => base[k as keyof GeneralName] !== undefined) ?? 'unknown';
        const label = `${side} ${form}`;
        if (!nc.unsupported?.includes(label)) (nc.unsupported ??= []).push(label);
      }
    });
  }
  return nc;
}

/**
 * DER of a nameConstraints extnValue for an intermediate CA certificate (mark it critical,
 * RFC 5280 §4.2.1.10). Entries are validated; throws 'bad-request' naming a bad one.
 */
export function encodeNameConstraints(nc: NameConstraints): Buffer {
  const bad = (what: string, v: string, why: string) => new SignetError('bad-request', `name constraint ${what} ${show(v)}: ${why}`);
  if (nonEmpty(nc.unsupported)) throw new SignetError('bad-request', `name constraints with ${nc.unsupported.join(', ')} cannot be encoded`);
  const ia5 = (tag: number, s: string) => tlv(tag, Buffer.from(s, 'ascii'));
  const dns = (v: string) => {
    const p = v === '' ? null : dnsNameProblem(v.startsWith('.') ? v.slice(1) : v, false);
    if (p) throw bad('DNS', v, p);
    return ia5(0x82, v);
  };
  const ip = (v: string) => {
    const c = parseCidr(v);
    const mask = maskBytes(Buffer.alloc(c.bytes.length, 0xff), c.prefix);
    return tlv(0x87, c.bytes, mask);
  };
  const host = (what: string, v: string) => {
    const p = dnsNameProblem(v.startsWith('.') ? v.slice(1) : v, false);
    if (p) throw bad(what, v, p);
  };
  const email = (v: string) => {
    if (v.includes('@')) {
      try {
        validateEmail(v);
      } catch (e) {
        throw new SignetError('bad-request', `name constraint ${(e as SignetError).detail}`);
      }
    } else host('email', v);
    return ia5(0x81, v);
  };
  const uri = (v: string) => {
    host('URI', v);
    return ia5(0x86, v);
  };
  const subtrees = (d?: string[], i?: string[], e?: string[], u?: string[]): Buffer[] =>
    [...(d ?? []).map(dns), ...(i ?? []).map(ip), ...(e ?? []).map(email), ...(u ?? []).map(uri)].map((gn) => sequence(gn));
  const permitted = subtrees(nc.permittedDns, nc.permittedIp, nc.permittedEmail, nc.permittedUri);
  const excluded = subtrees(nc.excludedDns, nc.excludedIp, nc.excludedEmail, nc.excludedUri);
  if (!permitted.length && !excluded.length) throw new SignetError('bad-request', 'name constraints are empty; give at least one permitted or excluded name');
  return sequence(...(permitted.length ? [tlv(0xa0, ...permitted)] : []), ...(excluded.length ? [tlv(0xa1, ...excluded)] : []));
}
