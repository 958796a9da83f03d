import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { BlockList, isIP } from 'node:net';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate } from '@peculiar/asn1-x509';
import { sequence, tlv } from '../src/pki/der.js';
import { pemToDer } from '../src/pki/pem.js';
import {
  checkAllowed,
  checkNameConstraints,
  encodeNameConstraints,
  formatIp,
  normalizeIp,
  parseCidr,
  parseNameConstraintsExtension,
  validateCommonName,
  validateDnsName,
  validateEmail,
  validateIp,
  validateNamePolicy,
  validateSan,
  validateUri,
  type NameConstraints,
  type NamePolicy,
  type SanEntry,
} from '../src/pki/names.js';
import { throwsProblem } from './helpers/problems.js';
import { SignetError } from '../src/errors.js';

const fixture = (name: string) => readFileSync(new URL(`../certs-fixtures/${name}`, import.meta.url), 'utf8');

const label63 = 'a'.repeat(63);
// 4 labels of 63 + 3 dots = 255; trim to exactly 253 and 254.
const name253 = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`;
const name254 = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(62)}`;

test('validateDnsName accepts well-formed names', () => {
  const good = [
    'example.com',
    'www.example.com',
    '*.example.com',
    '*.a.b.example.com',
    'localhost',
    'a-b.example',
    '1a.example.com',
    'xn--bcher-kva.example',
    'www.xn--bcher-kva.example',
    `${label63}.example.com`,
    name253,
    'a.b',
    '123.example.com',
    'x1',
  ];
  assert.equal(name253.length, 253);
  for (const name of good) assert.doesNotThrow(() => validateDnsName(name), name);
});

test('validateDnsName refuses every rule with a precise detail', () => {
  assert.equal(name254.length, 254);
  const cases: [string, ...(string | RegExp)[]][] = [
    ['', 'empty'],
    ['*.*.x', "'*.*.x'", 'whole leftmost label'],
    ['a*.example.com', 'whole leftmost label', "'a*'"],
    ['x.*.example.com', 'whole leftmost label'],
    ['www.ex*mple.com', 'whole leftmost label'],
    ['*', 'at least two labels'],
    ['*.com', "'*.com'", 'at least two labels'],
    ['a..b', "'a..b'", 'empty label'],
    ['.example.com', 'empty label'],
    ['-a.x', "label '-a'", 'starts with a hyphen'],
    ['a-.x', "label 'a-'", 'ends with a hyphen'],
    ['example.com.', 'trailing dot', "'example.com'"],
    ['Example.com', 'lower-case', "'example.com'"],
    ['WWW.EXAMPLE.COM', 'lower-case'],
    [`${'a'.repeat(64)}.example.com`, '64 characters', 'limit is 63'],
    [name254, '254 characters', 'limit is 253'],
    ['10.0.0.1', "'10.0.0.1'", 'iPAddress SAN'],
    ['::1', 'iPAddress SAN'],
    ['2001:db8::1', 'iPAddress SAN'],
    ['[::1]', 'iPAddress SAN'],
    ['1.2.3', 'numeric label', 'iPAddress SAN'],
    ['host.0x7f', 'numeric label'],
    ['bücher.example', 'non-ASCII', 'A-label', "'xn--bcher-kva.example'"],
    ['*.bücher.example', "'*.xn--bcher-kva.example'"],
    ['xn--zz.example.com', "label 'xn--zz'", 'not valid punycode'],
    ['xn--zz', 'not valid punycode'],
    // Punycode of an all-ASCII label always ends in '-', so the hyphen rule catches fake A-labels.
    ['xn--abc-.example', 'ends with a hyphen'],
    ['xn--tda9921k.example', 'not valid punycode'], // decodes to a disallowed (fullwidth) code point
    ['a_b.example.com', "'_'", 'a-z, 0-9'],
    ['a b.example.com', 'a-z, 0-9'],
    ['a\u0000b.example.com', '\\x00'],
    ['ab--cd.example.com', 'reserved', "'xn--'"],
  ];
  for (const [name, ...details] of cases) throwsProblem(() => validateDnsName(name), 'rejected-name', ...details);
});

test('validateIp returns 4 or 16 bytes and refuses non-addresses', () => {
  assert.deepEqual([...validateIp('10.0.0.1')], [10, 0, 0, 1]);
  assert.deepEqual([...validateIp('255.255.255.255')], [255, 255, 255, 255]);
  assert.equal(validateIp('2001:DB8::1').toString('hex'), '20010db8000000000000000000000001');
  assert.equal(validateIp('::').length, 16);
  assert.equal(validateIp('1:2:3:4:5:6:7:8').toString('hex'), '00010002000300040005000600070008');
  assert.equal(validateIp('64:ff9b::192.0.2.33').toString('hex'), '0064ff9b0000000000000000c0000221');
  const bad: [string, ...string[]][] = [
    ['', 'empty'],
    ['010.0.0.1', 'leading zeros', "'10.0.0.1'"],
    ['1.2.3', 'not an IPv4 or IPv6 address'],
    ['256.0.0.1', 'not an IPv4 or IPv6 address'],
    ['1.2.3.4.5', 'not an IPv4 or IPv6 address'],
    ['fe80::1%eth0', 'zone index'],
    ['10.0.0.0/8', 'range'],
    ['::ffff:10.0.0.1', 'IPv4-mapped', "'10.0.0.1'"],
    ['1::2::3', 'not an IPv4 or IPv6 address'],
    ['gggg::1', 'not an IPv4 or IPv6 address'],
    ['1:2:3:4:5:6:7:8:9', 'not an IPv4 or IPv6 address'],
    ['1:2:3:4:5:6:7', 'not an IPv4 or IPv6 address'],
    ['12345::1', 'not an IPv4 or IPv6 address'],
    ['example.com', 'not an IPv4 or IPv6 address'],
  ];
  for (const [ip, ...d] of bad) throwsProblem(() => validateIp(ip), 'rejected-name', ...d);
});

test('normalizeIp and formatIp follow RFC 5952', () => {
  const cases: [string, string][] = [
    ['2001:0DB8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:db8:0:1:0:0:0:1', '2001:db8:0:1::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['1:0:1:1:1:1:1:1', '1:0:1:1:1:1:1:1'],
    ['0:0:0:0:0:0:0:0', '::'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['fe80:0:0:0:0:0:0:0', 'fe80::'],
    ['10.0.0.1', '10.0.0.1'],
  ];
  for (const [input, want] of cases) assert.equal(normalizeIp(input), want, input);
  assert.equal(formatIp(Buffer.from('00000000000000000000ffff0a000001', 'hex')), '::ffff:10.0.0.1');
  assert.throws(() => formatIp(Buffer.alloc(5)), RangeError);
});

test('parseCidr reads v4 and v6 ranges and refuses sloppy ones', () => {
  assert.deepEqual(parseCidr('10.0.0.0/8'), { bytes: Buffer.from([10, 0, 0, 0]), prefix: 8 });
  assert.equal(parseCidr('10.0.0.1').prefix, 32);
  assert.equal(parseCidr('2001:db8::/32').prefix, 32);
  assert.equal(parseCidr('::/0').prefix, 0);
  assert.equal(parseCidr('2001:db8::1').prefix, 128);
  throwsProblem(() => parseCidr('10.1.0.0/8'), 'bad-request', 'host bits', "'10.0.0.0/8'");
  throwsProblem(() => parseCidr('2001:db8::1/32'), 'bad-request', 'host bits', "'2001:db8::/32'");
  throwsProblem(() => parseCidr('10.0.0.0/33'), 'bad-request', 'maximum is 32');
  throwsProblem(() => parseCidr('2001:db8::/129'), 'bad-request', 'maximum is 128');
  throwsProblem(() => parseCidr('10.0.0.0/x'), 'bad-request', 'invalid prefix');
  throwsProblem(() => parseCidr('10.0.0.0/08'), 'bad-request', 'invalid prefix');
  throwsProblem(() => parseCidr('example.com/8'), 'bad-request', 'CIDR');
  throwsProblem(() => parseCidr('10.0.0.0/8/8'), 'bad-request', 'CIDR');
  throwsProblem(() => parseCidr('10.1.0.0/8', 'configuration'), 'configuration');
});

test('validateEmail', () => {
  for (const ok of ['ops@example.com', 'first.last+tag@mail.example.com', "o'brien@example.com", 'A@Example.COM']) {
    assert.doesNotThrow(() => validateEmail(ok), ok);
  }
  const bad: [string, ...string[]][] = [
    ['', 'empty'],
    ['example.com', "no '@'"],
    ['@example.com', 'empty local part'],
    ['a..b@example.com', 'invalid local part'],
    ['.a@example.com', 'invalid local part'],
    ['a b@example.com', 'invalid local part'],
    ['"a b"@example.com', 'quoted local part'],
    ['ops@[10.0.0.1]', 'address literal'],
    ['ops@bücher.example', 'non-ASCII domain', "'ops@xn--bcher-kva.example'"],
    ['jörg@example.com', 'non-ASCII local part'],
    ['ops@example..com', 'empty label'],
    ['ops@*.example.com', 'wildcard is not allowed'],
    [`${'a'.repeat(65)}@example.com`, 'limit is 64'],
  ];
  for (const [v, ...d] of bad) throwsProblem(() => validateEmail(v), 'rejected-name', ...d);
});

test('validateUri and validateSan dispatch', () => {
  for (const ok of ['https://www.example.com/', 'spiffe://example.org/ns/prod/sa/web', 'urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6']) {
    assert.doesNotThrow(() => validateUri(ok), ok);
  }
  throwsProblem(() => validateUri(''), 'rejected-name', 'empty');
  throwsProblem(() => validateUri('www.example.com/path'), 'rejected-name', 'absolute URI');
  throwsProblem(() => validateUri('https://bücher.example/'), 'rejected-name', 'ASCII');
  throwsProblem(() => validateUri('https://a b/'), 'rejected-name', 'ASCII');
  // A trailing dot names the same host to a resolver but not to a string comparison (fuzzer:
  // 'https://bad.example.com./' escaped an excluded '.example.com' URI constraint).
  throwsProblem(() => validateUri('https://bad.example.com./'), 'rejected-name', 'trailing dot');
  throwsProblem(() => checkNameConstraints([{ type: 'uri', value: 'https://bad.example.com./' }], { excludedUri: ['.example.com'] }), 'rejected-name');
  throwsProblem(() => validateSan({ type: 'dns', value: 'A.com' }), 'rejected-name', 'lower-case');
  throwsProblem(() => validateSan({ type: 'ip', value: '1.2.3' }), 'rejected-name');
  throwsProblem(() => validateSan({ type: 'email', value: 'x' }), 'rejected-name');
  throwsProblem(() => validateSan({ type: 'uri', value: 'x' }), 'rejected-name');
  throwsProblem(() => validateSan({ type: 'x400' } as unknown as SanEntry), 'rejected-name', 'not supported');
});

const dns = (value: string): SanEntry => ({ type: 'dns', value });
const ip = (value: string): SanEntry => ({ type: 'ip', value });
const email = (value: string): SanEntry => ({ type: 'email', value });
const uri = (value: string): SanEntry => ({ type: 'uri', value });

test('checkAllowed applies profile allow-lists', () => {
  const cases: { policy: NamePolicy; san: SanEntry; ok: boolean; detail?: string[] }[] = [
    // No list: anything well-formed.
    { policy: {}, san: dns('anything.test'), ok: true },
    { policy: {}, san: ip('192.0.2.1'), ok: true },
    { policy: {}, san: dns('Bad.test'), ok: false, detail: ['lower-case'] },
    // DNS suffixes respect label boundaries.
    { policy: { dnsSuffixes: ['example.com'] }, san: dns('example.com'), ok: true },
    { policy: { dnsSuffixes: ['example.com'] }, san: dns('a.example.com'), ok: true },
    { policy: { dnsSuffixes: ['example.com'] }, san: dns('*.example.com'), ok: true },
    { policy: { dnsSuffixes: ['example.com'] }, san: dns('a.b.example.com'), ok: true },
    { policy: { dnsSuffixes: ['example.com'] }, san: dns('badexample.com'), ok: false, detail: ["'badexample.com'", 'allowed DNS suffixes: example.com'] },
    { policy: { dnsSuffixes: ['example.com'] }, san: dns('example.com.evil.net'), ok: false },
    { policy: { dnsSuffixes: ['example.com', 'corp.internal'] }, san: dns('evil.net'), ok: false, detail: ['example.com, corp.internal'] },
    { policy: { dnsSuffixes: ['a.example.com'] }, san: dns('*.example.com'), ok: false },
    { policy: { dnsSuffixes: ['.example.com'] }, san: dns('example.com'), ok: false },
    { policy: { dnsSuffixes: ['.example.com'] }, san: dns('www.example.com'), ok: true },
    { policy: { dnsSuffixes: [] }, san: dns('example.com'), ok: false, detail: ['(none)'] },
    // A DNS list does not constrain IPs and vice versa.
    { policy: { dnsSuffixes: ['example.com'] }, san: ip('192.0.2.1'), ok: true },
    { policy: { ipRanges: ['10.0.0.0/8'] }, san: dns('evil.net'), ok: true },
    // CIDR v4 / v6.
    { policy: { ipRanges: ['10.0.0.0/8'] }, san: ip('10.200.3.4'), ok: true },
    { policy: { ipRanges: ['10.0.0.0/8'] }, san: ip('11.0.0.1'), ok: false, detail: ["'11.0.0.1'", 'allowed IP ranges: 10.0.0.0/8'] },
    { policy: { ipRanges: ['10.0.0.0/8'] }, san: ip('2001:db8::1'), ok: false },
    { policy: { ipRanges: ['192.168.1.0/24'] }, san: ip('192.168.1.255'), ok: true },
    { policy: { ipRanges: ['192.168.1.0/24'] }, san: ip('192.168.2.0'), ok: false },
    { policy: { ipRanges: ['192.168.1.7'] }, san: ip('192.168.1.7'), ok: true },
    { policy: { ipRanges: ['2001:db8::/32'] }, san: ip('2001:db8:ffff::1'), ok: true },
    { policy: { ipRanges: ['2001:db8::/32'] }, san: ip('2001:db9::1'), ok: false },
    { policy: { ipRanges: ['2001:db8::/32'] }, san: ip('10.0.0.1'), ok: false },
    { policy: { ipRanges: ['::/0', '0.0.0.0/0'] }, san: ip('203.0.113.9'), ok: true },
    // Email domains and mailboxes.
    { policy: { emailDomains: ['example.com'] }, san: email('ops@example.com'), ok: true },
    { policy: { emailDomains: ['example.com'] }, san: email('ops@mail.example.com'), ok: true },
    { policy: { emailDomains: ['example.com'] }, san: email('ops@EXAMPLE.com'), ok: true },
    { policy: { emailDomains: ['example.com'] }, san: email('ops@badexample.com'), ok: false, detail: ['allowed email domains: example.com'] },
    { policy: { emailDomains: ['ops@example.com'] }, san: email('ops@example.com'), ok: true },
    { policy: { emailDomains: ['ops@example.com'] }, san: email('root@example.com'), ok: false },
    // URI hosts go through the DNS / IP lists.
    { policy: { dnsSuffixes: ['example.com'] }, san: uri('https://www.example.com/x'), ok: true },
    { policy: { dnsSuffixes: ['example.com'] }, san: uri('https://evil.net/'), ok: false, detail: ["host 'evil.net'"] },
    { policy: { dnsSuffixes: ['example.com'] }, san: uri('HTTPS://WWW.EXAMPLE.COM/'), ok: true },
    { policy: { ipRanges: ['10.0.0.0/8'] }, san: uri('http://0xc0.0.2.1/'), ok: false, detail: ['192.0.2.1'] },
    { policy: { ipRanges: ['10.0.0.0/8'] }, san: uri('http://[2001:db8::1]/'), ok: false },
    // A URI without a host cannot be judged by the DNS/IP lists: refused unless the profile opts in to its scheme.
    { policy: { dnsSuffixes: ['example.com'] }, san: uri('urn:example:thing'), ok: false, detail: ['has no host', "'urn' in hostlessUriSchemes"] },
    { policy: { dnsSuffixes: ['example.com'] }, san: uri('mailto:ceo@other.example'), ok: false, detail: ['has no host'] },
    { policy: { dnsSuffixes: ['example.com'] }, san: uri('file:/etc/passwd'), ok: false, detail: ['has no host'] },
    { policy: { dnsSuffixes: ['example.com'] }, san: uri('file:///etc/passwd'), ok: false, detail: ["is written with '//' but names no host"] },
    { policy: { dnsSuffixes: ['example.com'], hostlessUriSchemes: ['urn'] }, san: uri('urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66'), ok: true },
    {
      policy: { dnsSuffixes: ['example.com'], uriSchemes: ['urn', 'mailto'], hostlessUriSchemes: ['urn'] },
      san: uri('mailto:ceo@other.example'),
      ok: false,
      detail: ["'mailto' in hostlessUriSchemes"],
    },
    {
      policy: { dnsSuffixes: ['example.com'], uriSchemes: ['urn'], hostlessUriSchemes: ['urn'] },
      san: uri('mailto:ceo@other.example'),
      ok: false,
      detail: ["scheme 'mailto'"],
    },
    // Allowing a scheme exempts nothing (the finding F5: uriSchemes used to be the opt-in too).
    {
      policy: { dnsSuffixes: ['example.com'], uriSchemes: ['urn'] },
      san: uri('urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66'),
      ok: false,
      detail: ['has no host', "'urn' in hostlessUriSchemes"],
    },
    // A scheme that has hosts is judged by its host, and must have one.
    { policy: { dnsSuffixes: ['corp.example'], uriSchemes: ['spiffe', 'https'] }, san: uri('spiffe://svc.corp.example/ns/x'), ok: true },
    {
      policy: { dnsSuffixes: ['corp.example'], uriSchemes: ['spiffe', 'https'] },
      san: uri('spiffe:///x'),
      ok: false,
      detail: ["is written with '//' but names no host"],
    },
    {
      policy: { dnsSuffixes: ['corp.example'], uriSchemes: ['spiffe', 'https'] },
      san: uri('spiffe:www.bank.example'),
      ok: false,
      detail: ["'spiffe' URIs name a host and must be written 'spiffe://host/…'"],
    },
    {
      policy: { dnsSuffixes: ['corp.example'], uriSchemes: ['spiffe', 'https'] },
      san: uri('spiffe:victim-device'),
      ok: false,
      detail: ["must be written 'spiffe://host/…'"],
    },
    {
      policy: { dnsSuffixes: ['corp.example'], uriSchemes: ['spiffe', 'https'] },
      san: uri('https:www.bank.example'),
      ok: false,
      detail: ["must be written 'https://host/…'"],
    },
    { policy: { dnsSuffixes: ['corp.example'], uriSchemes: ['spiffe', 'https'] }, san: uri('https:///www.bank.example'), ok: false, detail: ['names no host'] },
    { policy: {}, san: uri('spiffe:victim-device'), ok: false, detail: ["must be written 'spiffe://host/…'"] },
    // F4: hosts that other parsers read differently.
    { policy: { dnsSuffixes: ['corp.example'] }, san: uri('https://x.corp.example\\@www.bank.example/'), ok: false, detail: ['backslash'] },
    { policy: { dnsSuffixes: ['corp.example'] }, san: uri('spiffe://www.bank.example%2F.corp.example/x'), ok: false, detail: ['percent-escape in its host'] },
    { policy: { dnsSuffixes: ['corp.example'] }, san: uri('https://www.bank.example@x.corp.example/'), ok: false, detail: ['user information'] },
    { policy: { uriSchemes: ['spiffe'] }, san: uri('spiffe://example.com/web'), ok: true },
    { policy: { uriSchemes: ['spiffe'] }, san: uri('https://example.com/'), ok: false, detail: ['allowed URI schemes: spiffe'] },
    { policy: {}, san: uri('urn:example:thing'), ok: true },
  ];
  for (const c of cases) {
    const label = `${JSON.stringify(c.policy)} ${c.san.type}:${c.san.value}`;
    if (c.ok) assert.doesNotThrow(() => checkAllowed([c.san], c.policy), label);
    else throwsProblem(() => checkAllowed([c.san], c.policy), 'rejected-name', ...(c.detail ?? []));
  }
});

test('validateNamePolicy refuses bad policy entries as configuration errors', () => {
  const bad: NamePolicy[] = [
    { dnsSuffixes: ['Example.com'] },
    { dnsSuffixes: ['*.example.com'] },
    { ipRanges: ['10.1.0.0/8'] },
    { ipRanges: ['not-a-range'] },
    { emailDomains: ['bad..domain'] },
    { emailDomains: ['"q"@example.com'] },
    { uriSchemes: ['URN'] },
    { uriSchemes: ['urn:'] },
    { hostlessUriSchemes: ['URN'] },
    { hostlessUriSchemes: ['spiffe'] },
    { hostlessUriSchemes: ['https'] },
    { uriSchemes: ['spiffe'], hostlessUriSchemes: ['urn'] },
  ];
  for (const p of bad) throwsProblem(() => validateNamePolicy(p), 'configuration');
  throwsProblem(() => checkAllowed([dns('a.example.com')], { dnsSuffixes: ['Example.com'] }), 'configuration', "'Example.com'");
  throwsProblem(() => validateNamePolicy({ hostlessUriSchemes: ['spiffe'] }), 'configuration', "'spiffe' URIs always name a host");
  throwsProblem(
    () => validateNamePolicy({ uriSchemes: ['spiffe'], hostlessUriSchemes: ['urn'] }),
    'configuration',
    "'urn' is not among the allowed URI schemes (spiffe)",
  );
  assert.doesNotThrow(() => validateNamePolicy({ uriSchemes: ['spiffe', 'urn'], hostlessUriSchemes: ['urn'] }));
  assert.doesNotThrow(() => validateNamePolicy({ dnsSuffixes: ['.example.com', 'corp'], ipRanges: ['fd00::/8'], emailDomains: ['a@b.example'] }));
});

test('validateCommonName: the CN must be exactly one of the SANs', () => {
  const sans = [dns('www.example.com'), ip('2001:db8::1'), ip('10.0.0.1'), email('ops@example.com')];
  for (const cn of [undefined, 'www.example.com', '2001:db8::1', '10.0.0.1', 'ops@example.com']) {
    assert.doesNotThrow(() => validateCommonName(cn, sans), String(cn));
  }
  // SAN IPs given in non-canonical form still match their canonical CN.
  assert.doesNotThrow(() => validateCommonName('2001:db8::1', [ip('2001:DB8:0::1')]));
  throwsProblem(() => validateCommonName('other.example.com', sans), 'rejected-name', "'other.example.com'", 'www.example.com, 2001:db8::1');
  throwsProblem(() => validateCommonName('WWW.example.com', sans), 'rejected-name', 'differs in case');
  throwsProblem(() => validateCommonName('2001:DB8::1', sans), 'rejected-name', 'canonical form', "'2001:db8::1'");
  throwsProblem(() => validateCommonName('', sans), 'rejected-name', 'empty');
  throwsProblem(() => validateCommonName('www.example.com', []), 'rejected-name', '(none)'.slice(1, -1));
});

test('checkNameConstraints: permitted and excluded subtrees per name type', () => {
  const nc: NameConstraints = {
    permittedDns: ['example.com', '.example.net'],
    excludedDns: ['bad.example.com'],
    permittedIp: ['10.0.0.0/8', '2001:db8::/32'],
    excludedIp: ['10.66.0.0/16'],
    permittedEmail: ['.example.com', 'boss@example.org'],
    excludedEmail: ['root@mail.example.com'],
    permittedUri: ['.example.com'],
  };
  const cases: [SanEntry, boolean, ...string[]][] = [
    [dns('example.com'), true],
    [dns('www.example.com'), true],
    [dns('*.example.com'), false, 'excluded', "'bad.example.com'"], // covers bad.example.com
    [dns('*.api.example.com'), true],
    [dns('*.bad.example.com'), false, 'excluded'],
    [dns('x.bad.example.com'), false, 'excluded'],
    [dns('bad.example.com'), false, 'excluded'],
    [dns('notbad.example.com'), true],
    [dns('badexample.com'), false, 'outside', 'example.com, .example.net'],
    [dns('example.org'), false, 'outside'],
    [dns('example.net'), false, 'outside'],
    [dns('www.example.net'), true],
    [ip('10.1.2.3'), true],
    [ip('10.66.1.1'), false, 'excluded', '10.66.0.0/16'],
    [ip('192.168.1.1'), false, 'outside', '10.0.0.0/8, 2001:db8::/32'],
    [ip('2001:db8:1::1'), true],
    [ip('2001:db9::1'), false, 'outside'],
    [email('ops@mail.example.com'), true],
    [email('ops@example.com'), false, 'outside'],
    [email('root@mail.example.com'), false, 'excluded'],
    [email('boss@example.org'), true],
    [email('Boss@example.org'), false, 'outside'],
    [email('boss@EXAMPLE.org'), true],
    [uri('https://www.example.com/'), true],
    [uri('https://example.com/'), false, 'outside'],
    [uri('urn:example:x'), false, 'outside'],
  ];
  for (const [san, ok, ...d] of cases) {
    if (ok) assert.doesNotThrow(() => checkNameConstraints([san], nc), `${san.type}:${san.value}`);
    else throwsProblem(() => checkNameConstraints([san], nc), 'rejected-name', ...d);
  }
  // Types without constraints are unconstrained; an excluded-only list permits everything else.
  assert.doesNotThrow(() => checkNameConstraints([ip('192.0.2.1'), email('a@b.example')], { permittedDns: ['example.com'] }));
  assert.doesNotThrow(() => checkNameConstraints([dns('good.test')], { excludedDns: ['bad.test'] }));
  // '' excludes every DNS name.
  throwsProblem(() => checkNameConstraints([dns('a.test')], { excludedDns: [''] }), 'rejected-name', 'excluded');
  // Constraints that cannot be evaluated stop issuance.
  throwsProblem(
    () => checkNameConstraints([dns('a.example.com')], { permittedDns: ['example.com'], unsupported: ['permitted directoryName'] }),
    'policy',
    'directoryName',
  );
  // Malformed SANs are refused before matching.
  throwsProblem(() => checkNameConstraints([dns('A.example.com')], nc), 'rejected-name', 'lower-case');
});

test('parseNameConstraintsExtension reads an OpenSSL-made extension, and encodeNameConstraints reproduces its bytes', () => {
  const extn = extensionOf('ca-name-constraints.pem', '2.5.29.30');
  const nc = parseNameConstraintsExtension(extn);
  assert.deepEqual(nc, {
    permittedDns: ['example.com', '.example.net'],
    permittedIp: ['10.0.0.0/8', '2001:db8::/32'],
    permittedEmail: ['.example.com'],
    permittedUri: ['.example.com'],
    excludedDns: ['bad.example.com'],
    excludedIp: ['10.66.0.0/16'],
    excludedEmail: ['root@example.com'],
  });
  assert.equal(encodeNameConstraints(nc).toString('hex'), Buffer.from(extn).toString('hex'));
  // And the parsed form is enforceable.
  assert.doesNotThrow(() => checkNameConstraints([dns('www.example.com'), ip('10.1.1.1')], nc));
  throwsProblem(() => checkNameConstraints([dns('bad.example.com')], nc), 'rejected-name', 'excluded');
});

test('parseNameConstraintsExtension flags forms Signet cannot evaluate', () => {
  const nc = parseNameConstraintsExtension(extensionOf('ca-name-constraints-directoryname-unsupported.pem', '2.5.29.30'));
  assert.deepEqual(nc, { permittedDns: ['example.com'], unsupported: ['permitted directoryName'] });
  throwsProblem(() => checkNameConstraints([dns('example.com')], nc), 'policy', 'permitted directoryName');
  // A subtree with a maximum is not RFC 5280 conformant and cannot be honoured.
  const withMax = sequence(tlv(0xa0, sequence(tlv(0x82, Buffer.from('example.com')), tlv(0x81, Buffer.from([2])))));
  assert.deepEqual(parseNameConstraintsExtension(withMax).unsupported, ['permitted subtree with minimum/maximum']);
});

test('parseNameConstraintsExtension refuses malformed input', () => {
  const ipSubtree = (bytes: number[]) => sequence(tlv(0xa1, sequence(tlv(0x87, Buffer.from(bytes)))));
  throwsProblem(() => parseNameConstraintsExtension(ipSubtree([10, 0, 0, 0, 255, 0, 255, 0])), 'bad-request', 'not a contiguous prefix');
  throwsProblem(() => parseNameConstraintsExtension(ipSubtree([10, 0, 0, 1])), 'bad-request', '4 bytes');
  // Host bits under the mask are cleared rather than trusted.
  assert.deepEqual(parseNameConstraintsExtension(ipSubtree([10, 1, 2, 3, 255, 0, 0, 0])).excludedIp, ['10.0.0.0/8']);
  const ok = encodeNameConstraints({ permittedDns: ['example.com'] });
  throwsProblem(() => parseNameConstraintsExtension(Buffer.concat([ok, Buffer.from([0])])), 'bad-request', 'malformed');
  throwsProblem(() => parseNameConstraintsExtension(ok.subarray(0, ok.length - 3)), 'bad-request', 'malformed');
  throwsProblem(() => parseNameConstraintsExtension(Buffer.from('garbage')), 'bad-request', 'malformed');
});

test('encodeNameConstraints validates entries and round-trips', () => {
  const nc: NameConstraints = {
    permittedDns: ['corp.example'],
    excludedDns: ['.dev.corp.example', ''],
    permittedIp: ['fd00::/8', '10.0.0.0/8'],
    excludedIp: ['10.0.0.0/24'],
    permittedEmail: ['corp.example', 'a@b.example'],
    excludedUri: ['.evil.example'],
  };
  const der = encodeNameConstraints(nc);
  const back = parseNameConstraintsExtension(der);
  assert.deepEqual(back, { ...nc, permittedIp: ['fd00::/8', '10.0.0.0/8'] });
  throwsProblem(() => encodeNameConstraints({}), 'bad-request', 'empty');
  throwsProblem(() => encodeNameConstraints({ permittedDns: ['*.example.com'] }), 'bad-request', 'wildcard');
  throwsProblem(() => encodeNameConstraints({ permittedDns: ['Example.com'] }), 'bad-request', 'lower-case');
  throwsProblem(() => encodeNameConstraints({ permittedIp: ['10.1.0.0/8'] }), 'bad-request', 'host bits');
  throwsProblem(() => encodeNameConstraints({ permittedEmail: ['"x"@example.com'] }), 'bad-request', 'quoted');
  throwsProblem(() => encodeNameConstraints({ permittedDns: ['a.com'], unsupported: ['permitted directoryName'] }), 'bad-request');
});

/** The extnValue of one extension of a PEM certificate fixture. */
function extensionOf(file: string, oid: string): Buffer {
  const cert = AsnConvert.parse(pemToDer(fixture(file), ['CERTIFICATE']).der, Certificate);
  const ext = cert.tbsCertificate.extensions?.find((e) => e.extnID === oid);
  assert.ok(ext, `${file} has no ${oid}`);
  return Buffer.from(ext.extnValue.buffer);
}

// ---------------------------------------------------------------------------------------------
// URI SANs: a host is judged only when every parser reads the same one (finding F4)

/**
 * An independent RFC 3986 reading of a URI's host, as a generic parser (Python's urlsplit, Go's
 * url.Parse for what it accepts, most non-browser code) does it: the regular expression of RFC
 * 3986 Appendix B, then authority = [userinfo "@"] host [":" port], userinfo up to the last '@',
 * host up to the ':' of the port (or the ']' of an IP literal). null: no authority.
 */
function rfc3986Host(uri: string): string | null {
  const m = /^(([^:/?#]+):)?(\/\/([^/?#]*))?([^?#]*)(\?([^#]*))?(#(.*))?/.exec(uri)!;
  if (m[3] === undefined) return null;
  let a = m[4]!;
  a = a.slice(a.lastIndexOf('@') + 1);
  if (a.startsWith('[')) return a.slice(1, a.indexOf(']') < 0 ? undefined : a.indexOf(']')).toLowerCase();
  const colon = a.indexOf(':');
  return (colon < 0 ? a : a.slice(0, colon)).toLowerCase();
}

/** The WHATWG reading (node's URL: browsers, fetch, most HTTP stacks); undefined when it refuses the URL. */
function whatwgHost(uri: string): string | null | undefined {
  try {
    const h = new URL(uri).hostname;
    return h === '' ? null : h.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  } catch {
    return undefined;
  }
}

/** Same host: equal text, or the same IP address (compared by node:net, not by either parser). */
function sameHost(a: string, b: string): boolean {
  if (a === b) return true;
  const v = isIP(a);
  if (v === 0 || v !== isIP(b)) return false;
  const list = new BlockList();
  list.addAddress(a, v === 4 ? 'ipv4' : 'ipv6');
  return list.check(b, v === 4 ? 'ipv4' : 'ipv6');
}

/**
 * How the name policy judges a URI: 'host' when an allow-list of exactly `candidate` admits it,
 * 'none' when it is refused for having no host, 'other' otherwise.
 */
function judgedHost(uri: string, candidate: string | null): 'host' | 'none' | 'other' {
  const policy: NamePolicy =
    candidate === null
      ? { dnsSuffixes: [] }
      : isIP(candidate)
        ? { ipRanges: [`${candidate}/${isIP(candidate) === 4 ? 32 : 128}`], dnsSuffixes: [] }
        : { dnsSuffixes: [candidate], ipRanges: [] };
  try {
    checkAllowed([{ type: 'uri', value: uri }], policy);
    return candidate === null ? 'other' : 'host';
  } catch (e) {
    return candidate === null && (e as SignetError).detail.includes('has no host') ? 'none' : 'other';
  }
}

test('URI SANs: the findings and their neighbours, each accepted with the host every parser reads, or refused naming why', () => {
  const accepted: [string, string | null][] = [
    ['https://x.corp.example/', 'x.corp.example'],
    ['HTTPS://X.Corp.Example:8443/a/b?c=d#e', 'x.corp.example'],
    ['spiffe://corp.example/ns/prod/sa/web', 'corp.example'],
    ['spiffe://A.Corp.Example/x', 'a.corp.example'],
    ['https://127.0.0.1/', '127.0.0.1'],
    ['https://[2001:db8::1]:443/', '2001:db8::1'],
    ['ldap://ldap.corp.example/cn=x,dc=corp', 'ldap.corp.example'],
    ['https://x.corp.example/@www.bank.example/', 'x.corp.example'],
    ['https://x.corp.example/%5C@www.bank.example/', 'x.corp.example'],
    ['https://x.corp.example#@www.bank.example', 'x.corp.example'],
    ['https://xn--bcher-kva.example/', 'xn--bcher-kva.example'],
    ['urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66', null],
    ['mailto:ceo@other.example', null],
    ['file:/etc/passwd', null],
    ['file://fileserver.corp.example/share', 'fileserver.corp.example'],
    ['x-custom:opaque/path', null],
  ];
  for (const [u, host] of accepted) {
    assert.doesNotThrow(() => validateUri(u), u);
    assert.equal(rfc3986Host(u), host, `${u}: RFC 3986 host`);
    assert.equal(whatwgHost(u) ?? null, host === null ? null : host, `${u}: WHATWG host`);
    assert.equal(judgedHost(u, host), host === null ? 'none' : 'host', `${u}: judged by its host`);
  }
  const refused: [string, string][] = [
    // F4: what Python reads as www.bank.example, Go refuses and WHATWG reads as x.corp.example.
    ['https://x.corp.example\\@www.bank.example/', 'backslash'],
    ['spiffe://www.bank.example%2F.corp.example/x', 'percent-escape in its host'],
    ['https://%77ww.bank.example/', 'percent-escape in its host'],
    ['https://www.bank.example@x.corp.example/', 'user information'],
    ['https://user:pass@x.corp.example/', 'user information'],
    ['https://x.corp.example:443@www.bank.example/', 'user information'],
    ['https://x.corp.example:8a/', "port '8a'"],
    ['https://x.corp.example:/', "port ''"],
    ['https://x.corp.example:0443/', "port '0443'"],
    ['https://x.corp.example:99999/', "port '99999'"],
    ['https://x.corp.example:1:2/', "port '1:2'"],
    ['spiffe:///x', "is written with '//' but names no host"],
    ['file:///etc/passwd', "is written with '//' but names no host"],
    ['https:///www.bank.example', "is written with '//' but names no host"],
    ['https:www.bank.example', "'https' URIs name a host and must be written 'https://host/…'"],
    ['https:/www.bank.example', "'https' URIs name a host"],
    ['spiffe:www.bank.example', "'spiffe' URIs name a host"],
    ['https://0x7f.1/', "as RFC 3986 reads it, but host '127.0.0.1' as WHATWG URL parsers"],
    ['https://010.0.0.1/', "host '8.0.0.1' as WHATWG"],
    ['https://127.1/', "host '127.0.0.1' as WHATWG"],
    ['https://a_b.corp.example/', "contains '_'"],
    ['https://a!b.corp.example/', "contains '!'"],
    ['spiffe://a*b.corp.example/', 'wildcard'],
    ['https://*.corp.example/', 'a wildcard is not allowed here'],
    ['https://x.corp.example./', 'trailing dot'],
    ['https://a..corp.example/', 'empty label'],
    ['https://[fe80::1%25eth0]/', 'percent-escape in its host'],
    ['https://[v1.x]/', 'IPvFuture'],
    ['https://[::ffff:10.0.0.1]/', 'IPv4-mapped'],
    ['https://[1.2.3.4]/', 'not an IPv6 address'],
    ['https://[::1]x/', 'after its IPv6 host'],
    ['https://x.corp.example/[a]', "'[' or ']' outside an IPv6 host"],
    ['https://x.corp.example/a#b#c', "more than one '#'"],
    ['https://x.corp.example/%zz', 'does not start a percent-escape'],
    ['https://x.corp.example/a|b', "contains '|'"],
    ['https://x.corp.example/a"b', "contains '\"'"],
    ['https://xn--a.corp.example/', 'not valid punycode'],
  ];
  for (const [u, why] of refused) throwsProblem(() => validateUri(u), 'rejected-name', why);
});

test('URI SANs, fuzz-style: every accepted URI has one host for RFC 3986, WHATWG and the name policy; every disagreement is refused', () => {
  // Deterministic pseudo-random combinations of the pieces parsers disagree on.
  let seed = 0x5eed1e55;
  const rnd = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  const pick = <T>(xs: readonly T[]): T => xs[rnd(xs.length)]!;
  const SCHEMES = ['https', 'http', 'HTTPS', 'spiffe', 'ldap', 'ws', 'ftp', 'file', 'urn', 'mailto', 'x-app', 'a'];
  const SEPS = ['://', '://', '://', ':', ':/', ':///', '://\\', ':\\\\', '//', ':////'];
  const USER = ['', '', '', '', 'user@', 'x.corp.example\\@', 'a:b@', '@', 'www.bank.example@', '%40@'];
  const HOSTS = [
    'x.corp.example',
    'www.bank.example',
    'X.Corp.Example',
    'a_b.corp.example',
    'www.bank.example%2F.corp.example',
    '%77ww.bank.example',
    '127.0.0.1',
    '0x7f.1',
    '010.0.0.1',
    '127.1',
    '[::1]',
    '[2001:DB8::1]',
    '[::ffff:10.0.0.1]',
    '[fe80::1%25eth0]',
    '[v1.x]',
    '[1.2.3.4]',
    '',
    'corp.example.',
    'a..b',
    'xn--bcher-kva.example',
    'xn--a.example',
    '1.2.3',
    'host',
    'a!b.example',
    '*.corp.example',
    'x.corp.example\\',
    'www.bank.example#.corp.example',
    'www.bank.example?.corp.example',
    'x.corp.example:80',
    '[::1',
    '::1',
    'a b',
  ];
  const PORTS = ['', '', '', ':443', ':0443', ':', ':99999', ':8a', ':0', ':1:2', ':+1', ':65535'];
  const PATHS = ['', '', '/', '/x', '/@www.bank.example/', '?q=1', '#f', '#a#b', '/[x]', '/%zz', '/\\x', '/..%2f', '/%5C', '/a;b=c', '/a|b'];
  let accepted = 0;
  let refusedDisagreements = 0;
  const seen = new Set<string>();
  for (let i = 0; i < 20_000; i++) {
    const u = pick(SCHEMES) + pick(SEPS) + pick(USER) + pick(HOSTS) + pick(PORTS) + pick(PATHS);
    if (seen.has(u)) continue;
    seen.add(u);
    const rfc = rfc3986Host(u);
    const web = whatwgHost(u);
    const agree = web !== undefined && (rfc === null ? web === null : web !== null && sameHost(rfc, web));
    let ok = false;
    try {
      validateUri(u);
      ok = true;
    } catch (e) {
      assert.ok(e instanceof SignetError && e.type === 'rejected-name', `${u}: ${String(e)}`);
      assert.ok(e.detail.length > 0 && e.detail.length < 1000);
    }
    if (!agree) {
      assert.equal(
        ok,
        false,
        `${JSON.stringify(u)} was accepted although RFC 3986 reads host ${JSON.stringify(rfc)} and WHATWG ${web === undefined ? 'refuses it' : JSON.stringify(web)}`,
      );
      refusedDisagreements++;
      continue;
    }
    if (!ok) continue;
    accepted++;
    assert.equal(judgedHost(u, rfc), rfc === null ? 'none' : 'host', `${JSON.stringify(u)}: the name policy judges host ${JSON.stringify(rfc)}`);
    // The host under a suffix it does not have is refused: the judgement is not vacuous.
    if (rfc !== null && !isIP(rfc))
      throwsProblem(() => checkAllowed([{ type: 'uri', value: u }], { dnsSuffixes: ['elsewhere.invalid'] }), 'rejected-name', 'not allowed by this profile');
    // And name constraints see the same host.
    if (rfc !== null && !isIP(rfc)) {
      assert.doesNotThrow(() => checkNameConstraints([{ type: 'uri', value: u }], { permittedUri: [rfc] }), u);
      throwsProblem(() => checkNameConstraints([{ type: 'uri', value: u }], { excludedUri: [rfc] }), 'rejected-name', 'excluded');
    }
  }
  assert.ok(seen.size > 5_000, `${seen.size} distinct URIs`);
  assert.ok(accepted > 100, `${accepted} accepted`);
  assert.ok(refusedDisagreements > 500, `${refusedDisagreements} disagreements, every one refused`);
});

test('distinguished names typed by an operator: what the certificate would not say as typed is refused', async () => {
  const { parseDn, nameToString, dnToDer } = await import('../src/pki/dn.js');
  // Escapes still work: a literal comma, plus sign and backslash stay in the value.
  assert.deepEqual(parseDn('CN=a\\+b\\, c\\\\d'), [{ type: '2.5.4.3', value: 'a+b, c\\d' }]);
  assert.equal(nameToString(dnToDer('CN=a\\+b,O=Bar\\, Inc.')), 'CN=a\\+b,O=Bar\\, Inc.');
  throwsProblem(() => parseDn('CN=a+O=b'), 'bad-request', /multi-valued RDN \("\+"\), which Signet does not issue; escape a literal plus sign as \\\+/);
  throwsProblem(() => parseDn('CN=a\\'), 'bad-request', /ends in a lone backslash/);
  throwsProblem(() => parseDn('CN=x\u0000y'), 'bad-request', /attribute CN contains a control character/);
  throwsProblem(() => parseDn('CN=x\u0085y'), 'bad-request', /attribute CN contains a control character/);
  throwsProblem(() => parseDn('CN\u0000'), 'bad-request', /distinguished name "CN\\u0000" is malformed/);
});
