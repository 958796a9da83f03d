/**
 * The name policy (src/pki/names.ts): validateSan, checkAllowed, validateCommonName,
 * checkNameConstraints, parseNameConstraintsExtension / encodeNameConstraints.
 *
 * Properties, for any names:
 *  - each function returns or throws a 4xx SignetError ('configuration' is allowed only for a
 *    policy that validateNamePolicy itself refuses: policies come from the operator, not the client);
 *  - what validateSan accepts, the rest of the world reads the same way: a DNS name is what a
 *    WHATWG URL parser (every browser) takes as that exact host, an IP address is what node:net
 *    calls one, a URI parses and has the same host (or none) for RFC 3986 and WHATWG parsers;
 *  - soundness of the allow-list: an accepted SAN is inside the profile's lists — a DNS name (or a
 *    URI's host) under an allowed suffix, an IP in an allowed range, an email under an allowed
 *    domain, and a URI without a host only when its scheme is in hostlessUriSchemes (issue 12 #5;
 *    allowing a scheme in uriSchemes exempts nothing);
 *  - soundness of name constraints: an accepted SAN is inside a permitted subtree of its kind and
 *    in no excluded one, judged as a relying party would (hosts compared without a trailing dot,
 *    case-insensitively);
 *  - an accepted CN is exactly one of the SANs;
 *  - parseNameConstraintsExtension(encodeNameConstraints(nc)) gives nc back, and mutated bytes
 *    are a 4xx.
 */
import { isIP } from 'node:net';
import fc from 'fast-check';
import {
  checkAllowed,
  checkNameConstraints,
  encodeNameConstraints,
  normalizeIp,
  parseCidr,
  parseNameConstraintsExtension,
  validateCommonName,
  validateNamePolicy,
  validateSan,
  type NameConstraints,
  type NamePolicy,
  type SanEntry,
} from '../../../src/pki/names.js';
import { SignetError } from '../../../src/errors.js';
import { corpusSeeds, dnsish, hostileString, mutationSteps } from '../lib/arbitraries.js';
import { mutateWhole } from '../lib/build.js';
import { assertThat, jsonCodec, outcome, type Target } from '../lib/target.js';

type NamesInput =
  | { op: 'validateSan'; sans: SanEntry[] }
  | { op: 'checkAllowed'; sans: SanEntry[]; policy: NamePolicy }
  | { op: 'validateCommonName'; cn: string; sans: SanEntry[] }
  | { op: 'checkNameConstraints'; sans: SanEntry[]; nc: NameConstraints }
  | { op: 'ncRoundTrip'; nc: NameConstraints }
  | { op: 'parseNc'; der: Buffer };

// ---- an independent reading of the rules ------------------------------------------------------

const rfc3986Host = (uri: string): string | null => {
  const m = /^(([^:/?#]+):)?(\/\/([^/?#]*))?/.exec(uri)!;
  if (m[3] === undefined) return null;
  const a = m[4]!.slice(m[4]!.lastIndexOf('@') + 1);
  if (a.startsWith('[')) return a.slice(1, a.indexOf(']') < 0 ? undefined : a.indexOf(']')).toLowerCase();
  return a.split(':')[0]!.toLowerCase();
};
const hostOf = (uri: string): string | null => {
  try {
    const h = new URL(uri).hostname;
    return h ? h.replace(/^\[|\]$/g, '') : null;
  } catch {
    return null;
  }
};
/** How a relying party compares hosts: case-insensitive, an absolute name's trailing dot dropped. */
const relyingHost = (h: string) => h.toLowerCase().replace(/\.+$/, '');
const under = (name: string, suffix: string) => {
  const n = relyingHost(name);
  const s = suffix.toLowerCase();
  if (s === '' || s === '.') return true;
  if (s.startsWith('.')) return n.endsWith(s) && n.length > s.length;
  return n === s || n.endsWith(`.${s}`);
};
const ipBytes = (ip: string): Buffer | null => {
  const v = isIP(ip);
  if (v === 4) return Buffer.from(ip.split('.').map(Number));
  if (v !== 6) return null;
  const u = new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  const [l = '', r] = u.split('::');
  const g = (x: string) => (x ? x.split(':') : []);
  let groups = r === undefined ? g(l) : [...g(l), ...new Array(8 - g(l).length - g(r).length).fill('0'), ...g(r)];
  const last = groups[groups.length - 1] ?? '';
  if (last.includes('.')) {
    const b = last.split('.').map(Number);
    groups = [...groups.slice(0, -1), ((b[0]! << 8) | b[1]!).toString(16), ((b[2]! << 8) | b[3]!).toString(16)];
  }
  const out = Buffer.alloc(16);
  groups.forEach((x, i) => {
    out.writeUInt16BE(parseInt(x, 16), i * 2);
  });
  return out;
};
const inRange = (ip: Buffer, cidr: string) => {
  const [a = '', p] = cidr.split('/');
  const base = ipBytes(a);
  if (!base || base.length !== ip.length) return false;
  const bits = p === undefined ? base.length * 8 : Number(p);
  for (let i = 0; i < bits; i++) if (((ip[i >> 3]! >> (7 - (i & 7))) & 1) !== ((base[i >> 3]! >> (7 - (i & 7))) & 1)) return false;
  return true;
};

function checkSanReading(s: SanEntry): void {
  switch (s.type) {
    case 'dns': {
      const bare = s.value.startsWith('*.') ? `x${s.value.slice(1)}` : s.value;
      let host: string | null = null;
      try {
        host = new URL(`https://${bare}/`).hostname;
      } catch {
        /* not a host */
      }
      assertThat(
        host === bare,
        `validateSan accepted the DNS name '${s.value}', which a URL parser reads as host ${host === null ? '(none: it does not parse)' : `'${host}'`}`,
      );
      assertThat(!isIP(bare), `validateSan accepted the DNS name '${s.value}', which is an IP address`);
      break;
    }
    case 'ip':
      assertThat(isIP(s.value) !== 0, `validateSan accepted the IP address '${s.value}', which node:net does not call an IP address`);
      break;
    case 'uri': {
      assertThat(URL.canParse(s.value), `validateSan accepted the URI '${s.value}', which does not parse`);
      // RFC 3986 (Appendix B, userinfo up to the last '@', as Python's urlsplit) and WHATWG read one host.
      const rfc = rfc3986Host(s.value);
      const web = hostOf(s.value);
      const same =
        rfc === null
          ? web === null
          : web !== null && (rfc === web.toLowerCase() || (isIP(rfc) !== 0 && ipBytes(rfc)?.equals(ipBytes(web) ?? Buffer.alloc(0)) === true));
      assertThat(same, `validateSan accepted the URI '${s.value}', whose host is ${JSON.stringify(rfc)} to RFC 3986 and ${JSON.stringify(web)} to WHATWG`);
      break;
    }
    case 'email': {
      const at = s.value.lastIndexOf('@');
      assertThat(at > 0 && /^[a-z0-9.-]+$/i.test(s.value.slice(at + 1)), `validateSan accepted the email address '${s.value}' with an odd domain`);
      break;
    }
  }
}

function insidePolicy(s: SanEntry, p: NamePolicy): string | null {
  switch (s.type) {
    case 'dns':
      return p.dnsSuffixes === undefined || p.dnsSuffixes.some((x) => under(s.value, x)) ? null : 'DNS name outside dnsSuffixes';
    case 'ip': {
      const b = ipBytes(s.value);
      return p.ipRanges === undefined || (b && p.ipRanges.some((r) => inRange(b, r))) ? null : 'IP outside ipRanges';
    }
    case 'email': {
      if (p.emailDomains === undefined) return null;
      const at = s.value.lastIndexOf('@');
      return p.emailDomains.some((e) =>
        e.includes('@')
          ? e.toLowerCase() === s.value.toLowerCase() ||
            (e.slice(0, e.lastIndexOf('@')) === s.value.slice(0, at) && e.slice(e.lastIndexOf('@') + 1).toLowerCase() === s.value.slice(at + 1).toLowerCase())
          : under(s.value.slice(at + 1), e),
      )
        ? null
        : 'email outside emailDomains';
    }
    case 'uri': {
      const scheme = s.value.slice(0, s.value.indexOf(':')).toLowerCase();
      if (p.uriSchemes !== undefined && !p.uriSchemes.includes(scheme)) return 'URI scheme not listed';
      const h = hostOf(s.value);
      if (!h)
        return (p.dnsSuffixes !== undefined || p.ipRanges !== undefined) && !p.hostlessUriSchemes?.includes(scheme)
          ? 'host-less URI under a DNS/IP allow-list without its scheme in hostlessUriSchemes'
          : null;
      const b = isIP(h) ? ipBytes(h) : null;
      if (b) return p.ipRanges === undefined || p.ipRanges.some((r) => inRange(b, r)) ? null : 'URI host IP outside ipRanges';
      return p.dnsSuffixes === undefined || p.dnsSuffixes.some((x) => under(h, x)) ? null : 'URI host outside dnsSuffixes';
    }
  }
}

function insideConstraints(s: SanEntry, nc: NameConstraints): string | null {
  const some = (xs?: string[]) => xs !== undefined && xs.length > 0;
  const hostMatch = (h: string, c: string) => (c.startsWith('.') ? relyingHost(h).endsWith(c.toLowerCase()) : relyingHost(h) === c.toLowerCase());
  switch (s.type) {
    case 'dns': {
      const names = s.value.startsWith('*.') ? [s.value.slice(2), s.value] : [s.value];
      if (some(nc.permittedDns) && !nc.permittedDns!.some((b) => under(s.value.replace(/^\*\./, 'x.'), b))) return 'DNS name outside the permitted subtrees';
      const wildBase = s.value.startsWith('*.') ? s.value.slice(2) : null;
      if (
        nc.excludedDns?.some(
          (b) =>
            names.some((n) => under(n.replace(/^\*\./, 'x.'), b)) ||
            (wildBase !== null &&
              under(b.replace(/^\./, ''), wildBase) &&
              relyingHost(b.replace(/^\./, '')).split('.').length === wildBase.split('.').length + 1),
        )
      )
        return 'DNS name in an excluded subtree';
      return null;
    }
    case 'ip': {
      const b = ipBytes(s.value);
      if (!b) return null;
      if (some(nc.permittedIp) && !nc.permittedIp!.some((r) => inRange(b, r))) return 'IP outside the permitted ranges';
      return nc.excludedIp?.some((r) => inRange(b, r)) ? 'IP in an excluded range' : null;
    }
    case 'email': {
      const at = s.value.lastIndexOf('@');
      const m = (c: string) => (c.includes('@') ? c.toLowerCase() === s.value.toLowerCase() : hostMatch(s.value.slice(at + 1), c));
      if (some(nc.permittedEmail) && !nc.permittedEmail!.some(m)) return 'email outside the permitted subtrees';
      return nc.excludedEmail?.some(m) ? 'email in an excluded subtree' : null;
    }
    case 'uri': {
      const h = hostOf(s.value);
      if (some(nc.permittedUri) && (!h || !nc.permittedUri!.some((c) => hostMatch(h, c)))) return 'URI outside the permitted subtrees';
      return h && nc.excludedUri?.some((c) => hostMatch(h, c)) ? 'URI host in an excluded subtree' : null;
    }
  }
}

function normalizedNc(nc: NameConstraints): string {
  const ip = (xs?: string[]) =>
    xs?.map((x) => {
      const c = parseCidr(x);
      return `${normalizeIp(x.split('/')[0]!)}/${c.prefix}`;
    });
  const clean = {
    permittedDns: nc.permittedDns?.map((x) => x.toLowerCase()),
    excludedDns: nc.excludedDns?.map((x) => x.toLowerCase()),
    permittedIp: ip(nc.permittedIp),
    excludedIp: ip(nc.excludedIp),
    permittedEmail: nc.permittedEmail,
    excludedEmail: nc.excludedEmail,
    permittedUri: nc.permittedUri,
    excludedUri: nc.excludedUri,
  };
  return JSON.stringify(Object.fromEntries(Object.entries(clean).filter(([, v]) => v?.length)));
}

function check(input: NamesInput): void {
  switch (input.op) {
    case 'validateSan':
      for (const s of input.sans) if (outcome(`validateSan(${s.type})`, () => validateSan(s)).ok) checkSanReading(s);
      return;
    case 'checkAllowed': {
      let policyOk = true;
      try {
        validateNamePolicy(input.policy);
      } catch (e) {
        policyOk = false;
        assertThat(e instanceof SignetError, 'validateNamePolicy threw a non-SignetError');
      }
      try {
        checkAllowed(input.sans, input.policy);
      } catch (e) {
        if (!policyOk && e instanceof SignetError && e.type === 'configuration') return;
        outcome('checkAllowed', () => {
          throw e;
        });
        return;
      }
      assertThat(policyOk, 'checkAllowed accepted names under a policy that validateNamePolicy refuses');
      for (const s of input.sans) {
        const why = insidePolicy(s, input.policy);
        assertThat(why === null, `checkAllowed accepted ${s.type} '${s.value}' under ${JSON.stringify(input.policy)}: ${why}`);
      }
      return;
    }
    case 'validateCommonName': {
      if (outcome('validateCommonName', () => validateCommonName(input.cn, input.sans)).ok) {
        const canon = (s: SanEntry) => {
          if (s.type !== 'ip') return s.value;
          try {
            return normalizeIp(s.value);
          } catch {
            return s.value;
          }
        };
        assertThat(
          input.sans.some((s) => canon(s) === input.cn),
          `validateCommonName accepted CN '${input.cn}', which is none of the SANs`,
        );
      }
      return;
    }
    case 'checkNameConstraints': {
      if (!outcome('checkNameConstraints', () => checkNameConstraints(input.sans, input.nc)).ok) return;
      for (const s of input.sans) {
        const why = insideConstraints(s, input.nc);
        assertThat(why === null, `checkNameConstraints accepted ${s.type} '${s.value}' under ${JSON.stringify(input.nc)}: ${why}`);
      }
      return;
    }
    case 'ncRoundTrip': {
      const enc = outcome('encodeNameConstraints', () => encodeNameConstraints(input.nc));
      if (!enc.ok) return;
      const back = outcome('parseNameConstraintsExtension', () => parseNameConstraintsExtension(enc.value));
      assertThat(back.ok, `parseNameConstraintsExtension refuses what encodeNameConstraints wrote (${back.ok ? '' : back.error.detail})`);
      assertThat(
        normalizedNc(back.value) === normalizedNc(input.nc),
        `name constraints do not round trip: ${normalizedNc(input.nc)} → ${normalizedNc(back.value)}`,
      );
      return;
    }
    case 'parseNc':
      outcome('parseNameConstraintsExtension', () => parseNameConstraintsExtension(input.der));
      return;
  }
}

// ---- generators ------------------------------------------------------------------------------

const ipish = fc.oneof(
  fc.constantFrom(
    '10.0.0.1',
    '10.1.2.3',
    '192.168.1.1',
    '127.0.0.1',
    '0.0.0.0',
    '255.255.255.255',
    '::1',
    '::',
    'fd00::1',
    '::ffff:10.0.0.1',
    '::10.0.0.1',
    '2001:db8::1',
    '010.0.0.1',
    '10.0.0.1/8',
    'fe80::1%eth0',
    '1::2::3',
    '1:2:3:4:5:6:7:8:9',
    '10.0.0.256',
    '0x7f.0.0.1',
    '1.2.3',
  ),
  fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((x) => x.join('.')),
  hostileString,
);
const emailish = fc.oneof(
  fc.tuple(fc.constantFrom('a', 'ceo', 'a.b', '"q"', '', 'a..b', 'x+y', 'ü'), dnsish).map(([l, d]) => `${l}@${d}`),
  hostileString,
);
const uriish = fc.oneof(
  fc
    .tuple(
      fc.constantFrom(
        'https://',
        'http://',
        'HTTPS://',
        'spiffe://',
        'ldap://',
        'urn:uuid:',
        'mailto:',
        'file:///',
        'file:/',
        'https://user@',
        'https://[',
        'urn:',
        'x:',
        'spiffe:',
        'https:',
        'https:///',
        'https://x.example\\@',
        'spiffe://a%2F.',
        'https://a.example%40',
      ),
      dnsish,
      fc.constantFrom(
        '',
        '/',
        ':443/',
        '/p?q#f',
        '.',
        ']/',
        '%2e/',
        ':0443/',
        ':8a/',
        '\\@evil.example/',
        '%2F.example.com/',
        '#@evil.example',
        '/@evil.example',
      ),
    )
    .map((x) => x.join('')),
  hostileString,
);
const sanArb: fc.Arbitrary<SanEntry> = fc.oneof(
  { weight: 3, arbitrary: dnsish.map((value) => ({ type: 'dns' as const, value })) },
  { weight: 2, arbitrary: ipish.map((value) => ({ type: 'ip' as const, value })) },
  { weight: 2, arbitrary: emailish.map((value) => ({ type: 'email' as const, value })) },
  { weight: 3, arbitrary: uriish.map((value) => ({ type: 'uri' as const, value })) },
);
const sans = fc.array(sanArb, { minLength: 1, maxLength: 3 });
const suffix = fc.constantFrom('example.com', '.example.com', 'corp.example', 'team-a.example', 'a.b.example', 'com', '');
const range = fc.constantFrom('10.0.0.0/8', '10.0.0.0/24', '192.168.0.0/16', 'fd00::/8', '::/0', '0.0.0.0/0', '10.0.0.1', '2001:db8::/32');
const policyArb: fc.Arbitrary<NamePolicy> = fc.record(
  {
    dnsSuffixes: fc.array(suffix, { maxLength: 2 }),
    ipRanges: fc.array(range, { maxLength: 2 }),
    emailDomains: fc.array(fc.oneof(suffix, fc.constantFrom('a@example.com', 'ceo@corp.example')), { maxLength: 2 }),
    uriSchemes: fc.array(fc.constantFrom('https', 'spiffe', 'urn', 'mailto', 'Https', 'ht:tp'), { maxLength: 2 }),
    hostlessUriSchemes: fc.array(fc.constantFrom('urn', 'mailto', 'file', 'spiffe', 'URN'), { maxLength: 2 }),
  },
  { requiredKeys: [] },
);
const ncArb: fc.Arbitrary<NameConstraints> = fc.record(
  {
    permittedDns: fc.array(suffix, { maxLength: 2 }),
    excludedDns: fc.array(fc.oneof(suffix, fc.constantFrom('bad.example.com', '.bad.example.com', 'x.example.com')), { maxLength: 2 }),
    permittedIp: fc.array(range, { maxLength: 2 }),
    excludedIp: fc.array(range, { maxLength: 2 }),
    permittedEmail: fc.array(fc.oneof(suffix, fc.constantFrom('a@example.com')), { maxLength: 2 }),
    excludedEmail: fc.array(fc.oneof(suffix, fc.constantFrom('ceo@example.com')), { maxLength: 2 }),
    permittedUri: fc.array(fc.constantFrom('example.com', '.example.com', 'corp.example'), { maxLength: 2 }),
    excludedUri: fc.array(fc.constantFrom('bad.example.com', '.bad.example.com', '.example.com'), { maxLength: 2 }),
  },
  { requiredKeys: [] },
);

const SEEDS: NamesInput[] = [
  { op: 'checkAllowed', sans: [{ type: 'uri', value: 'urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66' }], policy: { dnsSuffixes: ['team-a.example'] } },
  { op: 'checkAllowed', sans: [{ type: 'uri', value: 'mailto:ceo@other.example' }], policy: { dnsSuffixes: ['team-a.example'] } },
  { op: 'checkAllowed', sans: [{ type: 'uri', value: 'file:///etc/passwd' }], policy: { dnsSuffixes: ['team-a.example'] } },
  // F4/F5: hosts other parsers read differently, host-less spellings of schemes that have hosts.
  { op: 'checkAllowed', sans: [{ type: 'uri', value: 'https://x.corp.example\\@www.bank.example/' }], policy: { dnsSuffixes: ['corp.example'] } },
  { op: 'checkAllowed', sans: [{ type: 'uri', value: 'spiffe://www.bank.example%2F.corp.example/x' }], policy: { dnsSuffixes: ['corp.example'] } },
  { op: 'checkAllowed', sans: [{ type: 'uri', value: 'spiffe:www.bank.example' }], policy: { dnsSuffixes: ['corp.example'], uriSchemes: ['spiffe', 'https'] } },
  { op: 'checkAllowed', sans: [{ type: 'uri', value: 'spiffe:///x' }], policy: { dnsSuffixes: ['corp.example'], uriSchemes: ['spiffe', 'https'] } },
  {
    op: 'checkAllowed',
    sans: [{ type: 'uri', value: 'urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66' }],
    policy: { dnsSuffixes: ['team-a.example'], uriSchemes: ['urn'] },
  },
  { op: 'checkNameConstraints', sans: [{ type: 'uri', value: 'https://bad.example.com./' }], nc: { excludedUri: ['.example.com'] } },
  { op: 'checkNameConstraints', sans: [{ type: 'dns', value: '*.example.com' }], nc: { excludedDns: ['bad.example.com'] } },
  {
    op: 'validateSan',
    sans: [
      { type: 'dns', value: 'a.0x7f' },
      { type: 'dns', value: 'xn--a' },
      { type: 'ip', value: '::ffff:10.0.0.1' },
    ],
  },
  { op: 'validateCommonName', cn: '10.0.0.01', sans: [{ type: 'ip', value: '10.0.0.1' }] },
  {
    op: 'ncRoundTrip',
    nc: { permittedDns: ['corp.example'], excludedIp: ['10.0.0.0/8'], permittedEmail: ['.example.com'], excludedUri: ['.bad.example.com'] },
  },
];

export const target: Target<NamesInput> = {
  name: 'names',
  about:
    'validateSan / checkAllowed / validateCommonName / checkNameConstraints / name-constraints DER (src/pki/names.ts): 4xx or accepted, and accepted ⇒ inside the lists as a relying party reads them',
  codec: jsonCodec<NamesInput>(),
  seeds: () => [...SEEDS.map((input, i) => ({ name: `inline/${i}-${input.op}`, input })), ...corpusSeeds('names', jsonCodec<NamesInput>())],
  arbitrary: () =>
    fc.oneof(
      fc.record({ op: fc.constant('validateSan' as const), sans }),
      fc.record({ op: fc.constant('checkAllowed' as const), sans, policy: policyArb }),
      fc.record({ op: fc.constant('validateCommonName' as const), cn: fc.oneof(dnsish, ipish, hostileString), sans }),
      fc.record({ op: fc.constant('checkNameConstraints' as const), sans, nc: ncArb }),
      fc.record({ op: fc.constant('ncRoundTrip' as const), nc: ncArb }),
      fc.tuple(ncArb, mutationSteps).map(([nc, steps]) => {
        let der: Buffer;
        try {
          der = encodeNameConstraints(nc);
        } catch {
          der = Buffer.from('3000', 'hex');
        }
        return { op: 'parseNc' as const, der: mutateWhole(der, steps) };
      }),
    ),
  check,
};
