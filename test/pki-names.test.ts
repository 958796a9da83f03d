import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate } from '@peculiar/asn1-x509';
import { sequence, tlv } from '../src/pki/der.js';
import { pemToDer } from '../src/pki/pem.js';
import {
  checkAllowed, checkNameConstraints, encodeNameConstraints, formatIp, normalizeIp, parseCidr,
  parseNameConstraintsExtension, validateCommonName, validateDnsName, validateEmail, validateIp,
  validateNamePolicy, validateSan, validateUri, type NameConstraints, type NamePolicy, type SanEntry,
} from '../src/pki/names.js';
import { throwsProblem } from './helpers/problems.js';

const fixture = (name: string) => readFileSync(new URL(`../certs-fixtures/${name}`, import.meta.url), 'utf8');


const label63 = 'a'.repeat(63);
// 4 labels of 63 + 3 dots = 255; trim to exactly 253 and 254.
const name253 = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`;
const name254 = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(62)}`;

test('validateDnsName accepts well-formed names', () => {
  const good = [
    'example.com', 'www.example.com', '*.example.com', '*.a.b.example.com', 'localhost', 'a-b.example',
    '1a.example.com', 'xn--bcher-kva.example', 'www.xn--bcher-kva.example', `${label63}.example.com`,
    name253, 'a.b', '123.example.com', 'x1',
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
    // A URI without a host cannot be judged by the DNS/IP lists: refused unless its scheme is named.
    { policy: { dnsSuffixes: ['example.com'] }, san: uri('urn:example:thing'), ok: false, detail: ['has no host', "'urn' in uriSchemes"] },
    { policy: { dnsSuffixes: ['example.com'] }, san: uri('mailto:ceo@other.example'), ok: false, detail: ['has no host'] },
    { policy: { dnsSuffixes: ['example.com'] }, san: uri('file:///etc/passwd'), ok: false, detail: ['has no host'] },
    { policy: { dnsSuffixes: ['example.com'], uriSchemes: ['urn'] }, san: uri('urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66'), ok: true },
    { policy: { dnsSuffixes: ['example.com'], uriSchemes: ['urn'] }, san: uri('mailto:ceo@other.example'), ok: false, detail: ["scheme 'mailto'"] },
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
    { dnsSuffixes: ['Example.com'] }, { dnsSuffixes: ['*.example.com'] }, { ipRanges: ['10.1.0.0/8'] },
    { ipRanges: ['not-a-range'] }, { emailDomains: ['bad..domain'] }, { emailDomains: ['"q"@example.com'] },
    { uriSchemes: ['URN'] }, { uriSchemes: ['urn:'] },
  ];
  for (const p of bad) throwsProblem(() => validateNamePolicy(p), 'configuration');
  throwsProblem(() => checkAllowed([dns('a.example.com')], { dnsSuffixes: ['Example.com'] }), 'configuration', "'Example.com'");
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
  throwsProblem(() => validateCommonName('2001:DB8::1', sans), 'rejected-name', "canonical form", "'2001:db8::1'");
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
  throwsProblem(() => checkNameConstraints([dns('a.example.com')], { permittedDns: ['example.com'], unsupported: ['permitted directoryName'] }), 'policy', 'directoryName');
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
    permittedDns: ['corp.example'], excludedDns: ['.dev.corp.example', ''],
    permittedIp: ['fd00::/8', '10.0.0.0/8'], excludedIp: ['10.0.0.0/24'],
    permittedEmail: ['corp.example', 'a@b.example'], excludedUri: ['.evil.example'],
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
