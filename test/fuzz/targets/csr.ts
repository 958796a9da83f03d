/**
 * The CSR parser (src/pki/csr.ts): parseCsr and both of its paths.
 *
 * Properties, for any bytes:
 *  - parseCsr and parseCsrFull return or throw a 4xx SignetError; parseCsrFast returns a result
 *    or null and never throws (its documented contract);
 *  - the two paths agree: when the fast path answers, the full path gives the same result, and
 *    when it does not, parseCsr is exactly the full path (same result, or the same refusal);
 *  - an accepted CSR is canonical DER all the way down, extnValues and the RSA key included
 *    (the README promises strict DER; issue 12 #10);
 *  - what it reports (subject CN, SANs, requested extensions) is what an independent schema
 *    parse (@peculiar/asn1-csr, asn1-x509) of the same bytes says.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { AsnConvert } from '@peculiar/asn1-schema';
import { CertificationRequest } from '@peculiar/asn1-csr';
import { Extensions, SubjectAlternativeName, Name } from '@peculiar/asn1-x509';
import { parseCsr, parseCsrFast, parseCsrFull, type ParsedCsr } from '../../../src/pki/csr.js';
import { mutationSteps } from '../lib/arbitraries.js';
import { buildCsr, KEY_NAMES, mutateCsr, mutateWhole, OIDS, signingKeys, type CsrSpec, type KeyName, type SanSpec } from '../lib/build.js';
import { derProblem, lenientHeader } from '../lib/der-tree.js';
import { ROOT } from '../lib/paths.js';
import { corpusSeeds } from '../lib/arbitraries.js';
import { assertThat, bytesCodec, outcome, timed, Violation, type Seed, type Target } from '../lib/target.js';

const summary = (p: ParsedCsr) =>
  JSON.stringify({
    der: p.der.toString('hex'),
    cn: p.subject.commonName ?? null,
    dn: p.subject.dn,
    name: p.subject.nameDer.toString('hex'),
    sans: p.sans,
    spki: p.spkiDer.toString('hex'),
    keyAlgorithm: p.keyAlgorithm,
    ext: p.requestedExtensions,
    sha256: p.sha256,
    key: p.publicKey.export({ format: 'jwk' }),
  });

/** Encapsulated DER inside a CSR that must be canonical too: every extnValue, and an RSA public key. */
/** Children (start offsets) of the element at `off`, read leniently; [] when it is not readable. */
function lenientKids(der: Buffer, off: number): number[] {
  const h = lenientHeader(der, off);
  if (!h) return [];
  const out: number[] = [];
  for (let p = off + h.headerLength; p < h.end; ) {
    const c = lenientHeader(der, p, h.end);
    if (!c) break;
    out.push(p);
    p = c.end;
  }
  return out;
}

/** Indexes of the attributes that are extensionRequests (only their extnValues are DER Signet reads). */
function extensionRequestAttributes(der: Buffer): Set<number> {
  const EXTENSION_REQUEST = Buffer.from('06092a864886f70d01090e', 'hex');
  const info = lenientKids(der, 0)[0];
  const attrs = info === undefined ? undefined : lenientKids(der, info)[3];
  const out = new Set<number>();
  if (attrs === undefined) return out;
  lenientKids(der, attrs).forEach((a, i) => {
    const oid = lenientKids(der, a)[0];
    const h = oid === undefined ? null : lenientHeader(der, oid);
    if (h && der.subarray(oid, h.end).equals(EXTENSION_REQUEST)) out.add(i);
  });
  return out;
}

function csrEncapsulated(der: Buffer): (path: number[], tag: number) => boolean {
  const extensionRequests = extensionRequestAttributes(der);
  return (path, tag) => {
    // certificationRequestInfo.attributes[i].values[0].extensions[j].extnValue: [0,3,i,1,0,j,last],
    // for an extensionRequest attribute (an unknown attribute's contents are ignored, not read).
    if (tag === 0x04 && path.length === 7 && path[0] === 0 && path[1] === 3) return extensionRequests.has(path[2]!);
    // certificationRequestInfo.subjectPKInfo.subjectPublicKey for rsaEncryption
    if (tag === 0x03 && path.length === 3 && path[0] === 0 && path[1] === 2) return der.includes(Buffer.from('2a864886f70d010101', 'hex'));
    return false;
  };
}

/** A string attribute's text: the schema's decoded string types, else the raw DER string read by its tag. */
function directoryText(v: { anyValue?: ArrayBuffer; toString(): string }): string {
  if (!v.anyValue) return v.toString();
  const raw = Buffer.from(v.anyValue);
  const h = lenientHeader(raw, 0);
  const c = h ? raw.subarray(h.headerLength, h.end) : raw;
  switch (raw[0]) {
    case 0x1e:
      return c.swap16().toString('utf16le');
    case 0x1c: {
      let s = '';
      for (let i = 0; i + 4 <= c.length; i += 4) s += String.fromCodePoint(c.readUInt32BE(i));
      return s;
    }
    case 0x0c:
      return c.toString('utf8');
    default:
      return c.toString('latin1');
  }
}

/** The names an independent schema parse finds in the request. */
function schemaView(der: Buffer): { cn: string[]; sans: { type: string; value: string }[]; ext: string[] } {
  const csr = AsnConvert.parse(der, CertificationRequest);
  const name = AsnConvert.parse(AsnConvert.serialize(csr.certificationRequestInfo.subject), Name);
  const cn: string[] = [];
  for (const rdn of name) for (const atv of rdn) if (atv.type === OIDS.cn) cn.push(directoryText(atv.value));
  const sans: { type: string; value: string }[] = [];
  const ext: string[] = [];
  for (const attr of csr.certificationRequestInfo.attributes) {
    if (attr.type !== OIDS.extensionRequest) continue;
    for (const e of AsnConvert.parse(attr.values[0]!, Extensions)) {
      ext.push(e.extnID);
      if (e.extnID !== OIDS.san) continue;
      for (const gn of AsnConvert.parse(e.extnValue.buffer, SubjectAlternativeName)) {
        if (gn.dNSName !== undefined) sans.push({ type: 'dns', value: gn.dNSName });
        else if (gn.rfc822Name !== undefined) sans.push({ type: 'email', value: gn.rfc822Name });
        else if (gn.uniformResourceIdentifier !== undefined) sans.push({ type: 'uri', value: gn.uniformResourceIdentifier });
        else if (gn.iPAddress !== undefined) sans.push({ type: 'ip', value: gn.iPAddress });
      }
    }
  }
  return { cn, sans, ext };
}

/** Bytes as parseCsr sees them: the DER inside PEM or base64 text, else the bytes themselves. */
function derOf(input: Buffer, parsed: ParsedCsr): Buffer {
  return input[0] === 0x30 ? input : parsed.der;
}

function check(input: Buffer): void {
  let fast: ParsedCsr | null;
  try {
    fast = timed(() => parseCsrFast(input));
  } catch (e) {
    // parseCsrFast shares toDer with the other paths, which refuses non-CSR text with a SignetError.
    const full = outcome('parseCsrFull', () => parseCsrFull(input));
    if (!full.ok && (e as { detail?: string }).detail === full.error.detail) fast = null;
    else
      throw new Violation(
        `parseCsrFast threw (${(e as Error).name}: ${(e as Error).message}); its contract is to return null for anything it does not handle`,
        { cause: e },
      );
  }
  const full = outcome('parseCsrFull', () => parseCsrFull(input));
  const main = outcome('parseCsr', () => parseCsr(input));

  if (fast) {
    assertThat(full.ok, `the fast path accepts a CSR the full path refuses (${full.ok ? '' : full.error.detail})`);
    assertThat(summary(fast) === summary(full.value), 'the fast and full paths parse the same CSR differently');
  }
  if (full.ok) {
    assertThat(main.ok, `parseCsr refuses a CSR the full path accepts (${main.ok ? '' : main.error.detail})`);
    assertThat(summary(main.value) === summary(full.value), 'parseCsr and parseCsrFull disagree on an accepted CSR');
  } else {
    assertThat(!main.ok, 'parseCsr accepts a CSR the full path refuses');
    assertThat(
      main.error.type === full.error.type && main.error.detail === full.error.detail,
      `parseCsr and parseCsrFull refuse differently: '${main.error.detail}' vs '${full.error.detail}'`,
    );
  }
  if (!main.ok) return;

  const der = derOf(input, main.value);
  const extensionRequests = extensionRequestAttributes(der);
  const problem = derProblem(der, {
    encapsulated: csrEncapsulated(der),
    // certificationRequestInfo.attributes[i].values[0].extensions[j], in an extensionRequest.
    extension: (path) => path.length === 6 && path[0] === 0 && path[1] === 3 && extensionRequests.has(path[2]!),
  });
  assertThat(problem === null, `parseCsr accepted a CSR that is not DER: ${problem}`);

  let view: ReturnType<typeof schemaView>;
  try {
    view = schemaView(der);
  } catch (e) {
    throw new Violation(`parseCsr accepted a CSR that the schema parser cannot read: ${(e as Error).message}`);
  }
  const cn = main.value.subject.commonName;
  assertThat(
    view.cn.length === (cn === undefined ? 0 : 1) && (cn === undefined || view.cn[0] === cn),
    `subject CN '${cn}' differs from the schema's [${view.cn.join(', ')}]`,
  );
  // The schema parser reads OID arcs as doubles: past 2^53 (a UUID arc under 2.25 is legal; the
  // second arc of a 2.x OID is encoded plus 80) only Signet's strict reader is exact, so such an
  // id is compared by position alone.
  const exact = (oid: string) => oid.split('.').every((arc) => BigInt(arc) + 80n <= BigInt(Number.MAX_SAFE_INTEGER));
  const ours = main.value.requestedExtensions;
  assertThat(
    view.ext.length === ours.length && ours.every((oid, i) => !exact(oid) || oid === view.ext[i]),
    `requested extensions [${ours}] differ from the schema's [${view.ext}]`,
  );
  // IA5String is ASCII; Signet reads non-ASCII bytes as UTF-8 on purpose (names.ts then names the
  // A-label to use), the schema as Latin-1: only ASCII values can be compared.
  const ascii = (v: string) => /^[\x00-\x7f]*$/.test(v);
  const ourSans = main.value.sans.filter((s) => s.type === 'ip' || ascii(s.value)).map((s) => `${s.type}:${s.value}`);
  const theirs = view.sans.filter((s) => s.type === 'ip' || ascii(s.value)).map((s) => `${s.type}:${s.value}`);
  assertThat(JSON.stringify(ourSans) === JSON.stringify(theirs), `SANs [${ourSans.join(', ')}] differ from the schema's [${theirs.join(', ')}]`);
}

// ---------------------------------------------------------------------------------------------
// Seeds and generators

const FIXTURES = join(ROOT, 'certs-fixtures');

function fixtureSeeds(): Seed<Buffer>[] {
  return readdirSync(FIXTURES)
    .filter((f) => /^csr-.*\.(pem|der|txt)$/.test(f))
    .sort()
    .map((f) => ({ name: `certs-fixtures/${f}`, input: readFileSync(join(FIXTURES, f)) }));
}

const SUBJECT_STRING_TAGS = [0x0c, 0x13, 0x16, 0x14, 0x1e, 0x1c, 0x12, 0x04];

const sanSpec: fc.Arbitrary<SanSpec> = fc.oneof(
  fc.record({
    type: fc.constant('dns' as const),
    value: fc.oneof(
      fc.constantFrom('a.example.com', 'www.corp.example', '*.example.com', 'A.EXAMPLE.COM', 'xn--bcher-kva.example'),
      fc.string({ maxLength: 40 }),
    ),
  }),
  fc.record({ type: fc.constant('ip' as const), value: fc.constantFrom('10.0.0.1', '127.0.0.1', '::1', 'fe80::1', '255.255.255.255') }),
  fc.record({ type: fc.constant('email' as const), value: fc.constantFrom('a@example.com', 'ceo@other.example', 'x@[1.2.3.4]', '"q"@example.com') }),
  fc.record({
    type: fc.constant('uri' as const),
    value: fc.constantFrom('https://a.example.com/', 'urn:uuid:1234', 'mailto:ceo@other.example', 'file:///etc/passwd', 'spiffe://corp/x'),
  }),
  fc.record({
    type: fc.constant('raw' as const),
    value: fc.uint8Array({ maxLength: 24 }).map((b) => Buffer.from(b)),
    tag: fc.constantFrom(0x80, 0x81, 0x82, 0x83, 0x86, 0x87, 0x88, 0xa0, 0xa4, 0x04),
  }),
);

const csrSpec: fc.Arbitrary<CsrSpec> = fc.record({
  key: fc.constantFrom<KeyName>(...KEY_NAMES),
  subject: fc.array(
    fc.tuple(
      fc.constantFrom(OIDS.cn, OIDS.cn, OIDS.o, OIDS.ou, OIDS.c, '2.5.4.5', '1.2.3.4'),
      fc.constantFrom(...SUBJECT_STRING_TAGS),
      fc.oneof(fc.constantFrom('a.example.com', 'x', ''), fc.string({ maxLength: 20 }), fc.fullUnicodeString({ maxLength: 8 })),
    ),
    { maxLength: 3 },
  ),
  sans: fc.array(sanSpec, { maxLength: 4 }),
  extensions: fc.array(
    fc.tuple(
      fc.constantFrom(OIDS.basicConstraints, OIDS.keyUsage, OIDS.san, '1.2.3.4.5'),
      fc.boolean(),
      fc.constantFrom(Buffer.from('3003010100', 'hex'), Buffer.from('30030101ff', 'hex'), Buffer.from('03020780', 'hex'), Buffer.from('3000', 'hex')),
    ),
    { maxLength: 2 },
  ),
});

/** A few well-formed CSRs per key type, built once per process. */
let valid: { key: KeyName; der: Buffer }[] = [];

function textForms(der: Buffer, form: number): Buffer {
  const b64 = der.toString('base64');
  switch (form % 4) {
    case 0:
      return Buffer.from(b64);
    case 1:
      return Buffer.from(`-----BEGIN CERTIFICATE REQUEST-----\n${b64.replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE REQUEST-----\n`);
    case 2:
      return Buffer.from(`-----BEGIN NEW CERTIFICATE REQUEST-----\r\n${b64}\r\n-----END NEW CERTIFICATE REQUEST-----`);
    default:
      return Buffer.from(
        `junk\n-----BEGIN CERTIFICATE REQUEST-----\n${b64}\n-----END CERTIFICATE REQUEST-----\n-----BEGIN CERTIFICATE REQUEST-----\n${b64}\n-----END CERTIFICATE REQUEST-----\n`,
      );
  }
}

export const target: Target<Buffer> = {
  name: 'csr',
  about: 'parseCsr / parseCsrFast / parseCsrFull (src/pki/csr.ts): 4xx or a result, paths agree, accepted ⇒ strict DER, names as the schema parser reads them',
  codec: bytesCodec,
  setup() {
    signingKeys();
    valid = KEY_NAMES.map((key) => ({
      key,
      der: buildCsr({
        key,
        subject: [
          [OIDS.cn, 0x0c, 'a.example.com'],
          [OIDS.o, 0x13, 'Signet'],
        ],
        sans: [
          { type: 'dns', value: 'a.example.com' },
          { type: 'ip', value: '10.0.0.1' },
          { type: 'email', value: 'a@example.com' },
          { type: 'uri', value: 'https://a.example.com/' },
        ],
      }),
    }));
  },
  seeds() {
    return [...fixtureSeeds(), ...corpusSeeds('csr', bytesCodec), ...valid.map((v) => ({ name: `generated/${v.key}`, input: v.der }))];
  },
  arbitrary(seeds) {
    const derSeeds = seeds.map((s) => s.input).filter((b) => b[0] === 0x30);
    return fc.oneof(
      // A valid CSR, one to three elements of its request info mutated, usually re-signed.
      {
        weight: 5,
        arbitrary: fc
          .tuple(fc.nat({ max: valid.length - 1 }), mutationSteps, fc.boolean(), fc.boolean())
          .map(([i, steps, resign, again]) => mutateCsr(valid[i]!.der, valid[i]!.key, steps, resign || again)),
      },
      // A freshly built CSR with odd names and extensions, correctly signed, sometimes then mutated.
      {
        weight: 3,
        arbitrary: fc
          .tuple(csrSpec, fc.array(fc.constant(null), { maxLength: 1 }), mutationSteps)
          .map(([spec, m, steps]) => (m.length ? mutateCsr(buildCsr(spec), spec.key, steps, true) : buildCsr(spec))),
      },
      // Any seed (fixtures, issue cases) with whole-tree mutations, not re-signed.
      { weight: 3, arbitrary: fc.tuple(fc.constantFrom(...derSeeds), mutationSteps).map(([s, steps]) => mutateWhole(s, steps)) },
      // Truncations and text forms.
      { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...derSeeds), fc.nat()).map(([s, n]) => s.subarray(0, n % (s.length + 1))) },
      {
        weight: 1,
        arbitrary: fc
          .tuple(fc.nat({ max: valid.length - 1 }), mutationSteps, fc.nat())
          .map(([i, steps, form]) => textForms(mutateCsr(valid[i]!.der, valid[i]!.key, steps, true), form)),
      },
      // Plain random bytes, occasionally behind a plausible SEQUENCE header.
      {
        weight: 1,
        arbitrary: fc
          .tuple(fc.uint8Array({ maxLength: 300 }), fc.boolean())
          .map(([b, wrap]) => (wrap ? Buffer.concat([Buffer.from([0x30, 0x82, b.length >> 8, b.length & 0xff]), b]) : Buffer.from(b))),
      },
    );
  },
  check,
};
