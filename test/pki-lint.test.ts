/**
 * Pre-issuance lint: each defect in a to-be-signed leaf yields its finding, a clean TBS yields
 * none, every rule of the one list fires through lintLeafTbs (what issuance calls), and the
 * view the DER walk builds gives the same findings as the schema parser's on every input.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { KeyUsage } from '@peculiar/asn1-x509';
import { algorithmDer, encodeTbs, type TbsParams } from '../src/pki/certificate.js';
import { contextExplicit, objectIdentifier, sequence, smallInteger, time, tlv } from '../src/pki/der.js';
import { encodeName } from '../src/pki/dn.js';
import {
  authorityInfoAccess,
  authorityKeyIdentifier,
  basicConstraints,
  crlDistributionPoints,
  EKU,
  EXT,
  extension,
  extKeyUsage,
  keyIdentifier,
  keyUsage,
  subjectKeyIdentifier,
} from '../src/pki/extensions.js';
import { encodeSan } from '../src/pki/leaf-template.js';
import { ownKey, signerFor } from '../src/pki/keys.js';
import { LEAF_RULES, lintLeafTbs, lintLeafTbsFast, lintLeafTbsFull, type LintExpectations } from '../src/pki/lint.js';
import { readTbsViewFast, readTbsViewFull } from '../src/pki/tbs-view.js';

const DAY = 86_400_000;
const caKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
const caSpki = createPublicKey(caKey).export({ format: 'der', type: 'spki' });
const caKeyId = keyIdentifier(caSpki);
const caName = encodeName([
  { type: '2.5.4.10', value: 'Signet Test' },
  { type: '2.5.4.3', value: 'Signet Test Issuing CA' },
]);
const sigAlg = algorithmDer(signerFor(ownKey(caKey)));
const leafSpki = createPublicKey(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey).export({ format: 'der', type: 'spki' });
const otherSpki = createPublicKey(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey).export({ format: 'der', type: 'spki' });
const mlDsaSpki = createPublicKey(generateKeyPairSync('ml-dsa-65' as 'ed25519').privateKey).export({ format: 'der', type: 'spki' });
const mlKemSpki = createPublicKey(generateKeyPairSync('ml-kem-768' as 'ed25519').privateKey).export({ format: 'der', type: 'spki' });
const ML_DSA_65 = '2.16.840.1.101.3.4.3.18';
const DER_NULL = Buffer.from([0x05, 0x00]);
/** The ML-DSA key again, with NULL parameters in its AlgorithmIdentifier (RFC 9881 says absent). */
const mlDsaSpkiWithNull = sequence(
  sequence(objectIdentifier(ML_DSA_65), DER_NULL),
  tlv(0x03, Buffer.concat([Buffer.from([0]), mlDsaSpki.subarray(mlDsaSpki.length - 1952)])),
);
const mlDsaSigAlgWithNull = sequence(objectIdentifier(ML_DSA_65), DER_NULL);
/** The base TBS with another subject key (and its key identifier), and optionally another keyUsage. */
const withKey = (spkiDer: Buffer, usages?: Parameters<typeof keyUsage>[0]) =>
  tbs({ spkiDer, extensions: withExt({ ski: subjectKeyIdentifier(keyIdentifier(spkiDer)), ...(usages ? { ku: keyUsage(usages) } : {}) }) });
const rsaSigAlg = algorithmDer(signerFor(ownKey(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey)));

const issuerNotBefore = new Date('2025-01-01T00:00:00Z');
const issuerNotAfter = new Date('2035-01-01T00:00:00Z');
const notBefore = new Date('2026-01-01T00:00:00Z');
const notAfter = new Date(notBefore.getTime() + 90 * DAY);

const expectations: LintExpectations = {
  issuerNameDer: caName,
  issuerKeyId: caKeyId,
  issuerNotBefore,
  issuerNotAfter,
  signatureAlgorithmDer: sigAlg,
  extKeyUsage: ['serverAuth'],
  requireSan: true,
  maxValidityMs: 397 * DAY,
  spkiDer: leafSpki,
};

const SANS = encodeSan([
  { type: 'dns', value: 'www.example.com' },
  { type: 'ip', value: '10.0.0.1' },
]);
const ext = {
  bc: basicConstraints(false),
  ku: keyUsage(['digitalSignature']),
  eku: extKeyUsage([EKU.serverAuth]),
  ski: subjectKeyIdentifier(keyIdentifier(leafSpki)),
  aki: authorityKeyIdentifier(caKeyId),
  aia: authorityInfoAccess({ ocspUrl: 'http://ocsp.example.test/', caIssuersUrl: 'http://ca.example.test/ca.cer' }),
  cdp: crlDistributionPoints('http://ca.example.test/ca.crl'),
  san: extension(EXT.subjectAltName, false, SANS),
};
const baseExtensions = Object.values(ext);

const base: TbsParams = {
  serial: Buffer.from('1f0123456789abcdef0123456789abcd', 'hex'),
  signatureAlgorithmDer: sigAlg,
  issuerNameDer: caName,
  notBefore,
  notAfter,
  subjectNameDer: encodeName([{ type: '2.5.4.3', value: 'www.example.com' }]),
  spkiDer: leafSpki,
  extensions: baseExtensions,
};

const tbs = (p: Partial<TbsParams> = {}) => encodeTbs({ ...base, ...p });
const withExt = (replace: Partial<Record<keyof typeof ext, Buffer | null>>, ...extra: Buffer[]): Buffer[] => [
  ...(Object.keys(ext) as (keyof typeof ext)[]).flatMap((k) => (k in replace ? (replace[k] ? [replace[k]!] : []) : [ext[k]])),
  ...extra,
];

/** A TBS with a raw serial INTEGER or another version (encodeTbs writes only positive serials and v3). */
const rawTbs = (serialContent: Buffer, version = 2) =>
  sequence(
    contextExplicit(0, smallInteger(version)),
    tlv(0x02, serialContent),
    sigAlg,
    caName,
    sequence(time(notBefore), time(notAfter)),
    base.subjectNameDer,
    leafSpki,
    contextExplicit(3, sequence(...baseExtensions)),
  );

function assertAgree(input: Buffer, x: LintExpectations, label: string): string[] {
  const full = lintLeafTbsFull(input, x);
  const fast = lintLeafTbsFast(input, x);
  if (fast !== null) assert.deepEqual(fast, full, `${label}: fast path findings`);
  const findings = lintLeafTbs(input, x);
  assert.deepEqual(findings, full, label);
  return findings;
}

test('a clean leaf TBS has no findings, via the fast path', () => {
  const clean = tbs();
  assert.deepEqual(lintLeafTbsFull(clean, expectations), []);
  assert.deepEqual(lintLeafTbsFast(clean, expectations), []);
  assert.deepEqual(lintLeafTbs(clean, expectations), []);
  // Also clean: empty subject with a critical SAN, and a 20-byte serial.
  assert.deepEqual(
    assertAgree(
      tbs({ subjectNameDer: encodeName([]), extensions: withExt({ san: extension(EXT.subjectAltName, true, SANS) }) }),
      expectations,
      'empty subject',
    ),
    [],
  );
  assert.deepEqual(assertAgree(tbs({ serial: Buffer.alloc(20, 0x11) }), expectations, '20-byte serial'), []);
});

const nonCriticalKu = extension(EXT.keyUsage, false, Buffer.from(AsnConvert.serialize(new KeyUsage(1))));

const cases: [string, Buffer, string, Partial<LintExpectations>?][] = [
  ['missing basicConstraints', tbs({ extensions: withExt({ bc: null }) }), 'basicConstraints is missing'],
  [
    'non-critical basicConstraints',
    tbs({ extensions: withExt({ bc: extension(EXT.basicConstraints, false, Buffer.from([0x30, 0x00])) }) }),
    'basicConstraints is not critical',
  ],
  ['CA:TRUE leaf', tbs({ extensions: withExt({ bc: basicConstraints(true) }) }), 'leaf certificate has CA:TRUE'],
  ['CA:TRUE with pathLen', tbs({ extensions: withExt({ bc: basicConstraints(true, 0) }) }), 'leaf certificate has CA:TRUE'],
  ['missing keyUsage', tbs({ extensions: withExt({ ku: null }) }), 'keyUsage is missing'],
  ['non-critical keyUsage', tbs({ extensions: withExt({ ku: nonCriticalKu }) }), 'keyUsage is not critical'],
  [
    'keyCertSign in a leaf',
    tbs({ extensions: withExt({ ku: keyUsage(['digitalSignature', 'keyCertSign']) }) }),
    'leaf keyUsage includes keyCertSign or cRLSign',
  ],
  ['cRLSign in a leaf', tbs({ extensions: withExt({ ku: keyUsage(['cRLSign']) }) }), 'leaf keyUsage includes keyCertSign or cRLSign'],
  ['empty keyUsage', tbs({ extensions: withExt({ ku: keyUsage([]) }) }), 'keyUsage is empty'],
  ['wrong EKU', tbs({ extensions: withExt({ eku: extKeyUsage([EKU.clientAuth]) }) }), `extKeyUsage is ${EKU.clientAuth}, profile requires ${EKU.serverAuth}`],
  [
    'extra EKU',
    tbs({ extensions: withExt({ eku: extKeyUsage([EKU.serverAuth, EKU.clientAuth]) }) }),
    `extKeyUsage is ${EKU.serverAuth},${EKU.clientAuth}, profile requires ${EKU.serverAuth}`,
  ],
  ['missing EKU', tbs({ extensions: withExt({ eku: null }) }), `extKeyUsage is absent, profile requires ${EKU.serverAuth}`],
  ['duplicate extension', tbs({ extensions: withExt({}, ext.ski) }), `extension ${EXT.subjectKeyIdentifier} appears twice`],
  [
    'unknown critical extension',
    tbs({ extensions: withExt({}, extension('1.2.3.4.5', true, Buffer.from([0x05, 0x00]))) }),
    'unknown critical extension 1.2.3.4.5',
  ],
  ['missing subjectKeyIdentifier', tbs({ extensions: withExt({ ski: null }) }), 'subjectKeyIdentifier is missing'],
  ['missing authorityKeyIdentifier', tbs({ extensions: withExt({ aki: null }) }), 'authorityKeyIdentifier is missing'],
  [
    'AKI mismatch',
    tbs({ extensions: withExt({ aki: authorityKeyIdentifier(Buffer.alloc(20, 7)) }) }),
    "authorityKeyIdentifier does not match the issuer's subjectKeyIdentifier",
  ],
  ['missing AIA', tbs({ extensions: withExt({ aia: null }) }), 'authorityInfoAccess is missing'],
  ['missing CDP', tbs({ extensions: withExt({ cdp: null }) }), 'cRLDistributionPoints is missing'],
  ['missing SAN', tbs({ extensions: withExt({ san: null }) }), 'subjectAltName is required by the profile but missing'],
  [
    'empty subject, no SAN',
    tbs({ subjectNameDer: encodeName([]), extensions: withExt({ san: null }) }),
    'subject is empty and there is no subjectAltName',
    { requireSan: false },
  ],
  ['empty-subject SAN not critical', tbs({ subjectNameDer: encodeName([]) }), 'subjectAltName must be critical when the subject is empty'],
  ['empty SAN', tbs({ extensions: withExt({ san: extension(EXT.subjectAltName, false, sequence()) }) }), 'subjectAltName is empty'],
  [
    'otherName SAN',
    tbs({
      extensions: withExt({
        san: extension(EXT.subjectAltName, false, sequence(tlv(0xa0, objectIdentifier('1.2.3'), tlv(0xa0, tlv(0x0c, Buffer.from('x')))))),
      }),
    }),
    'unsupported GeneralName tag 0xa0',
  ],
  [
    '3-byte iPAddress SAN',
    tbs({ extensions: withExt({ san: extension(EXT.subjectAltName, false, sequence(tlv(0x87, Buffer.from([1, 2, 3])))) }) }),
    'iPAddress of 3 bytes',
  ],
  [
    'dNSName not UTF-8',
    tbs({ extensions: withExt({ san: extension(EXT.subjectAltName, false, sequence(tlv(0x82, Buffer.from([0x77, 0xff])))) }) }),
    'subjectAltName entry is malformed: dNSName is not valid IA5String text',
  ],
  [
    'malformed dNSName',
    tbs({ extensions: withExt({ san: extension(EXT.subjectAltName, false, sequence(tlv(0x82, Buffer.from('bad..name')))) }) }),
    'subjectAltName entry is malformed: ',
  ],
  [
    'notAfter past issuer',
    tbs({ notAfter: new Date(issuerNotAfter.getTime() + DAY) }),
    "notAfter is past the issuer's notAfter",
    { maxValidityMs: 10_000 * DAY },
  ],
  [
    'notBefore before issuer',
    tbs({ notBefore: new Date(issuerNotBefore.getTime() - DAY) }),
    "notBefore precedes the issuer's notBefore",
    { maxValidityMs: 10_000 * DAY },
  ],
  ['notBefore after notAfter', tbs({ notBefore: notAfter, notAfter: notBefore }), 'notBefore is not before notAfter'],
  ['validity too long', tbs({ notAfter: new Date(notBefore.getTime() + 400 * DAY) }), 'validity exceeds the profile maximum'],
  [
    'GeneralizedTime notAfter past issuer',
    tbs({ notAfter: new Date('2051-01-01T00:00:00Z') }),
    "notAfter is past the issuer's notAfter",
    { maxValidityMs: 100_000 * DAY },
  ],
  ['version 2', rawTbs(base.serial, 1), 'version is 2, expected 3'],
  ['negative serial', rawTbs(Buffer.alloc(16, 0x80)), 'serial number is negative'],
  ['short serial', tbs({ serial: Buffer.from([1, 2, 3, 4]) }), 'serial number is 4 bytes, fewer than the 64 random bits required'],
  ['long serial', tbs({ serial: Buffer.alloc(21, 0x11) }), 'serial number is 21 bytes, more than 20'],
  [
    'wrong issuer name',
    tbs({ issuerNameDer: encodeName([{ type: '2.5.4.3', value: 'Someone Else' }]) }),
    "issuer name differs from the issuer certificate's subject",
  ],
  ['wrong signature algorithm', tbs({ signatureAlgorithmDer: rsaSigAlg }), "signature algorithm differs from the issuer key's"],
  [
    'ML-DSA key with keyEncipherment',
    withKey(mlDsaSpki, ['digitalSignature', 'keyEncipherment']),
    'keyUsage keyEncipherment is not allowed for ML-DSA-65 keys',
    { spkiDer: mlDsaSpki },
  ],
  [
    'ML-KEM key with digitalSignature',
    withKey(mlKemSpki, ['digitalSignature']),
    'keyUsage digitalSignature is not allowed for ML-KEM-768 keys',
    { spkiDer: mlKemSpki },
  ],
  ['ECDSA key with keyEncipherment', withKey(leafSpki, ['digitalSignature', 'keyEncipherment']), 'keyUsage keyEncipherment is not allowed for ecdsa keys'],
  [
    'ML-DSA key with NULL parameters',
    withKey(mlDsaSpkiWithNull),
    'subject public key algorithm ML-DSA-65 has parameters; they must be absent',
    { spkiDer: mlDsaSpkiWithNull },
  ],
  [
    'ML-DSA signature with NULL parameters',
    tbs({ signatureAlgorithmDer: mlDsaSigAlgWithNull }),
    'signature algorithm ML-DSA-65 has parameters; they must be absent',
    { signatureAlgorithmDer: mlDsaSigAlgWithNull },
  ],
  [
    'spki mismatch',
    tbs({ spkiDer: otherSpki, extensions: withExt({ ski: subjectKeyIdentifier(keyIdentifier(otherSpki)) }) }),
    'subject public key differs from the requested key',
  ],
  ['trailing bytes', Buffer.concat([tbs(), Buffer.from([0])]), 'TBS has trailing bytes'],
];

test('each defect yields its finding, and the fast path agrees with the full lint', () => {
  for (const [label, input, finding, over] of cases) {
    const findings = assertAgree(input, { ...expectations, ...over }, label);
    assert.ok(
      findings.some((f) => f === finding || f.startsWith(finding)),
      `${label}: ${JSON.stringify(findings)} lacks ${JSON.stringify(finding)}`,
    );
  }
});

test('the fast path computes the findings itself for well-formed defective TBSs', () => {
  for (const [label, input, , over] of cases) {
    if (label === 'trailing bytes') continue;
    assert.notEqual(lintLeafTbsFast(input, { ...expectations, ...over }), null, label);
  }
});

/**
 * The defect cases above that each rule of LEAF_RULES must report. A rule added to the list
 * without a crafted TBS here fails the test, and each must fire through lintLeafTbs: with two
 * rule lists, a rule written only into the schema-based lint never ran on real issuance.
 */
const RULE_CASES: Record<string, string[]> = {
  noTrailingBytes: ['trailing bytes'],
  versionIs3: ['version 2'],
  serialIsPositive: ['negative serial'],
  serialAtMost20Bytes: ['long serial'],
  serialHas64RandomBits: ['short serial'],
  signatureAlgorithmIsIssuerKeys: ['wrong signature algorithm'],
  issuerIsIssuerSubject: ['wrong issuer name'],
  notBeforeBeforeNotAfter: ['notBefore after notAfter'],
  notBeforeWithinIssuer: ['notBefore before issuer'],
  notAfterWithinIssuer: ['notAfter past issuer', 'GeneralizedTime notAfter past issuer'],
  validityWithinProfile: ['validity too long'],
  keyIsRequestedKey: ['spki mismatch'],
  extensionsOnceAndKnownIfCritical: ['duplicate extension', 'unknown critical extension'],
  basicConstraintsPresent: ['missing basicConstraints'],
  basicConstraintsCritical: ['non-critical basicConstraints'],
  leafIsNotCa: ['CA:TRUE leaf', 'CA:TRUE with pathLen'],
  keyUsagePresent: ['missing keyUsage'],
  keyUsageCritical: ['non-critical keyUsage'],
  keyUsageNotForCas: ['keyCertSign in a leaf', 'cRLSign in a leaf'],
  keyUsageNotEmpty: ['empty keyUsage'],
  keyUsageSuitsKey: ['ML-DSA key with keyEncipherment', 'ML-KEM key with digitalSignature', 'ECDSA key with keyEncipherment'],
  postQuantumParametersAbsent: ['ML-DSA key with NULL parameters', 'ML-DSA signature with NULL parameters'],
  extKeyUsageIsProfiles: ['wrong EKU', 'extra EKU', 'missing EKU'],
  subjectKeyIdentifierPresent: ['missing subjectKeyIdentifier'],
  authorityKeyIdentifierPresent: ['missing authorityKeyIdentifier'],
  authorityKeyIdentifierIsIssuers: ['AKI mismatch'],
  authorityInfoAccessPresent: ['missing AIA'],
  crlDistributionPointsPresent: ['missing CDP'],
  sanPresentWhenRequired: ['missing SAN'],
  sanPresentWhenSubjectEmpty: ['empty subject, no SAN'],
  sanCriticalWhenSubjectEmpty: ['empty-subject SAN not critical'],
  sanNotEmpty: ['empty SAN'],
  sanEntriesWellFormed: ['otherName SAN', '3-byte iPAddress SAN', 'dNSName not UTF-8', 'malformed dNSName'],
};

test('every rule in LEAF_RULES fires on a crafted TBS through lintLeafTbs, the path issuance uses', () => {
  const names = LEAF_RULES.map((r) => r.name);
  assert.equal(new Set(names).size, names.length, 'rule names are unique');
  assert.deepEqual([...names].sort(), Object.keys(RULE_CASES).sort(), 'each rule in LEAF_RULES has a crafted TBS in RULE_CASES');
  for (const rule of LEAF_RULES) {
    for (const label of RULE_CASES[rule.name]!) {
      const c = cases.find(([l]) => l === label);
      assert.ok(c, `no case ${label}`);
      const [, input, finding, over] = c;
      const x = { ...expectations, ...over };
      // The rule itself reports it, on the view issuance reads (the walk's, or the parser's when
      // the walk cannot read the TBS: only for the trailing bytes here)...
      const view = readTbsViewFast(input) ?? readTbsViewFull(input);
      assert.notEqual(typeof view, 'string', `${rule.name}/${label}: the TBS parses`);
      if (label !== 'trailing bytes') assert.notEqual(readTbsViewFast(input), null, `${rule.name}/${label}: the DER walk reads the TBS`);
      const own: string[] = [];
      rule(view as Exclude<typeof view, string>, x, own);
      assert.ok(
        own.some((f) => f === finding || f.startsWith(finding)),
        `${rule.name}/${label}: the rule reports ${JSON.stringify(own)}, not ${JSON.stringify(finding)}`,
      );
      // ...and lintLeafTbs reports exactly what the rule did, among the others'.
      const all = lintLeafTbs(input, x);
      for (const f of own) assert.ok(all.includes(f), `${rule.name}/${label}: lintLeafTbs reports ${JSON.stringify(all)}, without ${JSON.stringify(f)}`);
    }
  }
});

test('a TBS that does not parse is reported as such', () => {
  const findings = assertAgree(Buffer.from([0x30, 0x03, 0x02, 0x01]), expectations, 'garbage');
  assert.equal(findings.length, 1);
  assert.match(findings[0]!, /^TBS does not parse: /);
  // Every single-byte corruption of a clean TBS: lintLeafTbs behaves exactly like the full lint
  // (same findings, or the same exception), and the fast path never passes what the full lint flags.
  const outcome = (fn: () => string[] | null) => {
    try {
      return { findings: fn() };
    } catch (e) {
      return { error: String(e) };
    }
  };
  const clean = tbs();
  for (let i = 0; i < clean.length; i++) {
    for (const delta of [1, 0x80]) {
      const bad = Buffer.from(clean);
      bad[i] = (bad[i]! + delta) & 0xff;
      const full = outcome(() => lintLeafTbsFull(bad, expectations));
      assert.deepEqual(
        outcome(() => lintLeafTbs(bad, expectations)),
        full,
        `byte ${i} +${delta}`,
      );
      const fast = lintLeafTbsFast(bad, expectations);
      if (fast && fast.length === 0) assert.deepEqual(full, { findings: [] }, `byte ${i} +${delta}: fast path passed it`);
      if (fast?.length && full.findings && !full.findings[0]!.startsWith('TBS does not parse')) assert.deepEqual(fast, full.findings, `byte ${i} +${delta}`);
    }
  }
});
