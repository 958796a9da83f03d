/**
 * The one signing path (src/ca/signing.ts): CA and OCSP responder certificates are linted like
 * leaves, each under its own rule list (CA_RULES, RESPONDER_RULES); a clean TBS from the
 * templates has no findings, every rule of those lists fires on a crafted defect, and a prepared
 * certificate is signed only without findings, only once, and only by the signer it was
 * prepared for.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync, verify } from 'node:crypto';
import { isSignetError } from '../src/errors.js';
import { buildCaTbs, type CaCertificateParams } from '../src/pki/ca-template.js';
import { algorithmDer, encodeTbs, inspectCertificate, newSerial } from '../src/pki/certificate.js';
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
  ocspNoCheck,
  subjectKeyIdentifier,
} from '../src/pki/extensions.js';
import { encodeSan } from '../src/pki/leaf-template.js';
import { ownKey, signerFor } from '../src/pki/keys.js';
import {
  CA_RULES,
  LEAF_RULES,
  lintCaTbs,
  lintResponderTbs,
  RESPONDER_RULES,
  type CaLintExpectations,
  type LintRule,
  type ResponderLintExpectations,
} from '../src/pki/lint.js';
import { buildResponderTbs } from '../src/pki/responder-template.js';
import { prepareCertificate, signPrepared } from '../src/ca/signing.js';

const DAY = 86_400_000;
const key = () => ownKey(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
const spkiOf = (k: ReturnType<typeof key>) => createPublicKey(k).export({ format: 'der', type: 'spki' });

const rootKey = key();
const rootSigner = signerFor(rootKey);
const rootAlg = algorithmDer(rootSigner);
const rootSpki = spkiOf(rootKey);
const rootName = encodeName([{ type: '2.5.4.3', value: 'Signing Test Root' }]);
const now = new Date('2026-06-01T00:00:00Z');
const urls = { caIssuers: 'http://ca.test/ca/root.cer', crl: 'http://ca.test/crl/root.crl', ocsp: 'http://ca.test/ocsp' };

const rootParams: CaCertificateParams = {
  serial: newSerial(),
  subjectNameDer: rootName,
  spkiDer: rootSpki,
  notBefore: now,
  validityDays: 3650,
  pathLen: 1,
  signatureAlgorithmDer: rootAlg,
};
const root = buildCaTbs(rootParams);
const rootExpect: CaLintExpectations = {
  issuerNameDer: rootName,
  issuerKeyId: keyIdentifier(rootSpki),
  issuerNotAfter: root.notAfter,
  signatureAlgorithmDer: rootAlg,
  maxValidityMs: 3650 * DAY,
  spkiDer: rootSpki,
  subordinate: false,
};

const intKey = key();
const intSpki = spkiOf(intKey);
const intName = encodeName([{ type: '2.5.4.3', value: 'Signing Test Issuing CA' }]);
const nameConstraints = extension(EXT.nameConstraints, true, Buffer.from('3010a00e300c820a6578616d706c652e636f6d', 'hex'));
const int = buildCaTbs({
  serial: newSerial(),
  subjectNameDer: intName,
  spkiDer: intSpki,
  notBefore: now,
  validityDays: 1825,
  pathLen: 0,
  extraExtensions: [nameConstraints],
  issuer: { nameDer: rootName, keyId: keyIdentifier(rootSpki), notAfter: root.notAfter, urls },
  signatureAlgorithmDer: rootAlg,
});
const intExpect: CaLintExpectations = { ...rootExpect, maxValidityMs: 1825 * DAY, spkiDer: intSpki, subordinate: true };

const responderSpki = spkiOf(key());
const responderNotBefore = new Date(now.getTime() - 60_000);
const responderNotAfter = new Date(responderNotBefore.getTime() + 7 * DAY);
const responderTbs = buildResponderTbs({
  serial: newSerial(),
  commonName: 'Signing Test Root OCSP Responder',
  spkiDer: responderSpki,
  notBefore: responderNotBefore,
  notAfter: responderNotAfter,
  issuer: { nameDer: rootName, keyId: keyIdentifier(rootSpki) },
  signatureAlgorithmDer: rootAlg,
});
const responderExpect: ResponderLintExpectations = {
  issuerNameDer: rootName,
  issuerKeyId: keyIdentifier(rootSpki),
  issuerNotAfter: root.notAfter,
  signatureAlgorithmDer: rootAlg,
  maxValidityMs: 7 * DAY,
  spkiDer: responderSpki,
  extKeyUsage: ['ocspSigning'],
};

test("the templates' CA and responder TBSs pass their lint", () => {
  assert.deepEqual(lintCaTbs(root.tbs, rootExpect), [], 'root');
  assert.deepEqual(lintCaTbs(int.tbs, intExpect), [], 'intermediate with critical nameConstraints');
  assert.deepEqual(lintResponderTbs(responderTbs, responderExpect), [], 'OCSP responder');
});

/** A CA TBS like the root's, with other extensions or fields. */
const caTbs = (extensions: Buffer[], over: { subject?: Buffer; notAfter?: Date } = {}) =>
  encodeTbs({
    serial: rootParams.serial,
    signatureAlgorithmDer: rootAlg,
    issuerNameDer: rootName,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: over.notAfter ?? new Date(now.getTime() + 3650 * DAY),
    subjectNameDer: over.subject ?? rootName,
    spkiDer: rootSpki,
    extensions,
  });
const caExt = {
  bc: basicConstraints(true, 1),
  ku: keyUsage(['digitalSignature', 'keyCertSign', 'cRLSign']),
  ski: subjectKeyIdentifier(keyIdentifier(rootSpki)),
  aki: authorityKeyIdentifier(keyIdentifier(rootSpki)),
};
const responderTbsWith = (extensions: Buffer[], subject = encodeName([{ type: '2.5.4.3', value: 'R' }])) =>
  encodeTbs({
    serial: newSerial(),
    signatureAlgorithmDer: rootAlg,
    issuerNameDer: rootName,
    notBefore: responderNotBefore,
    notAfter: responderNotAfter,
    subjectNameDer: subject,
    spkiDer: responderSpki,
    extensions,
  });
const respExt = {
  bc: basicConstraints(false),
  ku: keyUsage(['digitalSignature']),
  eku: extKeyUsage([EKU.ocspSigning]),
  nocheck: ocspNoCheck(),
  ski: subjectKeyIdentifier(keyIdentifier(responderSpki)),
  aki: authorityKeyIdentifier(keyIdentifier(rootSpki)),
};

/** For each rule that only CA_RULES or RESPONDER_RULES hold: a crafted TBS, the lint that reads it, and its finding. */
const OWN_RULE_CASES: Record<string, [label: string, findings: () => string[], finding: string][]> = {
  caExtensionsOnceAndKnownIfCritical: [
    [
      'unknown critical extension',
      () => lintCaTbs(caTbs([...Object.values(caExt), extension('1.2.3.4', true, Buffer.from([5, 0]))]), rootExpect),
      'unknown critical extension 1.2.3.4',
    ],
    ['duplicate extension', () => lintCaTbs(caTbs([...Object.values(caExt), caExt.ski]), rootExpect), `extension ${EXT.subjectKeyIdentifier} appears twice`],
  ],
  subjectNotEmpty: [
    ['CA with an empty subject', () => lintCaTbs(caTbs(Object.values(caExt), { subject: encodeName([]) }), rootExpect), 'subject is empty'],
    ['responder with an empty subject', () => lintResponderTbs(responderTbsWith(Object.values(respExt), encodeName([])), responderExpect), 'subject is empty'],
  ],
  caIsCa: [['CA:FALSE', () => lintCaTbs(caTbs([basicConstraints(false), caExt.ku, caExt.ski, caExt.aki]), rootExpect), 'CA certificate lacks CA:TRUE']],
  keyUsageSignsCertificatesAndCrls: [
    [
      'no keyCertSign',
      () => lintCaTbs(caTbs([caExt.bc, keyUsage(['digitalSignature', 'cRLSign']), caExt.ski, caExt.aki]), rootExpect),
      'CA keyUsage lacks keyCertSign or cRLSign',
    ],
  ],
  caHasNoExtKeyUsage: [
    ['EKU on a CA', () => lintCaTbs(caTbs([...Object.values(caExt), extKeyUsage([EKU.serverAuth])]), rootExpect), 'CA certificate has extKeyUsage'],
  ],
  issuerPointersWhenSubordinate: [
    [
      'subordinate without AIA',
      () => lintCaTbs(caTbs([...Object.values(caExt), crlDistributionPoints(urls.crl)]), { ...rootExpect, subordinate: true }),
      'authorityInfoAccess is missing',
    ],
    [
      'subordinate without CDP',
      () =>
        lintCaTbs(caTbs([...Object.values(caExt), authorityInfoAccess({ ocspUrl: urls.ocsp, caIssuersUrl: urls.caIssuers })]), {
          ...rootExpect,
          subordinate: true,
        }),
      'cRLDistributionPoints is missing',
    ],
    [
      'root with CDP',
      () => lintCaTbs(caTbs([...Object.values(caExt), crlDistributionPoints(urls.crl)]), rootExpect),
      'self-signed CA certificate carries authorityInfoAccess or cRLDistributionPoints',
    ],
  ],
  noSubjectAltName: [
    [
      'CA with a SAN',
      () => lintCaTbs(caTbs([...Object.values(caExt), extension(EXT.subjectAltName, false, encodeSan([{ type: 'dns', value: 'a.test' }]))]), rootExpect),
      'certificate has a subjectAltName it should not',
    ],
    [
      'responder with a SAN',
      () =>
        lintResponderTbs(
          responderTbsWith([...Object.values(respExt), extension(EXT.subjectAltName, false, encodeSan([{ type: 'dns', value: 'a.test' }]))]),
          responderExpect,
        ),
      'certificate has a subjectAltName it should not',
    ],
  ],
  ocspNoCheckPresent: [
    [
      'responder without ocsp-nocheck',
      () => lintResponderTbs(responderTbsWith([respExt.bc, respExt.ku, respExt.eku, respExt.ski, respExt.aki]), responderExpect),
      'id-pkix-ocsp-nocheck is missing',
    ],
  ],
};

/** Rules both lists share with LEAF_RULES, checked here on CA and responder TBSs (test/pki-lint covers them on leaves). */
const SHARED_RULE_CASES: Record<string, [label: string, findings: () => string[], finding: string][]> = {
  notAfterWithinIssuer: [
    [
      'intermediate past its parent',
      () => lintCaTbs(int.tbs, { ...intExpect, issuerNotAfter: new Date(now.getTime() + DAY) }),
      "notAfter is past the issuer's notAfter",
    ],
  ],
  validityWithinProfile: [
    ['CA longer than asked', () => lintCaTbs(root.tbs, { ...rootExpect, maxValidityMs: 365 * DAY }), 'validity exceeds the profile maximum'],
  ],
  keyIsRequestedKey: [
    [
      'responder for another key',
      () => lintResponderTbs(responderTbs, { ...responderExpect, spkiDer: intSpki }),
      'subject public key differs from the requested key',
    ],
  ],
  leafIsNotCa: [
    [
      'responder with CA:TRUE',
      () => lintResponderTbs(responderTbsWith([basicConstraints(true), respExt.ku, respExt.eku, respExt.nocheck, respExt.ski, respExt.aki]), responderExpect),
      'leaf certificate has CA:TRUE',
    ],
  ],
  extKeyUsageIsProfiles: [
    [
      'responder for serverAuth',
      () =>
        lintResponderTbs(responderTbsWith([respExt.bc, respExt.ku, extKeyUsage([EKU.serverAuth]), respExt.nocheck, respExt.ski, respExt.aki]), responderExpect),
      'extKeyUsage is',
    ],
  ],
  authorityKeyIdentifierIsIssuers: [
    [
      'intermediate naming another parent key',
      () => lintCaTbs(int.tbs, { ...intExpect, issuerKeyId: keyIdentifier(intSpki) }),
      'authorityKeyIdentifier does not match',
    ],
  ],
  signatureAlgorithmIsIssuerKeys: [
    [
      'CA under another algorithm',
      () => lintCaTbs(root.tbs, { ...rootExpect, signatureAlgorithmDer: algorithmDer(signerFor(ownKey(generateKeyPairSync('ed25519').privateKey))) }),
      'signature algorithm differs',
    ],
  ],
};

test('every rule of CA_RULES and RESPONDER_RULES has a crafted defect, and reports it', () => {
  const leaf = new Set(LEAF_RULES.map((r) => r.name));
  const lists: [string, readonly LintRule<never>[]][] = [
    ['CA_RULES', CA_RULES],
    ['RESPONDER_RULES', RESPONDER_RULES],
  ];
  for (const [list, rules] of lists) {
    for (const rule of rules) {
      if (!leaf.has(rule.name)) assert.ok(OWN_RULE_CASES[rule.name], `${list}: ${rule.name} (not a leaf rule) has a crafted TBS in OWN_RULE_CASES`);
    }
  }
  for (const [name, cases] of [...Object.entries(OWN_RULE_CASES), ...Object.entries(SHARED_RULE_CASES)]) {
    assert.ok(CA_RULES.some((r) => r.name === name) || RESPONDER_RULES.some((r) => r.name === name), `${name} is in a list`);
    for (const [label, run, finding] of cases) {
      const findings = run();
      assert.ok(
        findings.some((f) => f.startsWith(finding)),
        `${name}/${label}: ${JSON.stringify(findings)} lacks ${JSON.stringify(finding)}`,
      );
    }
  }
});

const reason = async (p: Promise<unknown>): Promise<string> => {
  try {
    await p;
    return 'resolved';
  } catch (e) {
    return isSignetError(e) ? `${e.type}: ${e.detail}` : String(e);
  }
};

test('a prepared certificate is signed by its signer, over the linted bytes, once', async () => {
  const prepared = prepareCertificate(root.tbs, { kind: 'ca', expect: rootExpect }, rootSigner);
  assert.deepEqual(prepared.findings, []);
  const der = await signPrepared(prepared);
  const parts = inspectCertificate(der);
  assert.ok(parts.tbs.equals(root.tbs), 'the signed TBS is the linted TBS');
  assert.equal(parts.parsed.signatureAlgorithm.algorithm, '1.2.840.10045.4.3.2', "ecdsa-with-SHA256, the root key's");
  assert.ok(
    verify('sha256', root.tbs, { key: rootSpki, format: 'der', type: 'spki', dsaEncoding: 'der' }, Buffer.from(parts.parsed.signatureValue)),
    'the signature verifies under the root key',
  );
  assert.match(await reason(signPrepared(prepared)), /^internal: a prepared CA certificate is signed once/);
});

test('a prepared certificate with findings is never signed; one prepared for another algorithm is refused', async () => {
  const bad = prepareCertificate(int.tbs, { kind: 'ca', expect: { ...intExpect, subordinate: false } }, rootSigner);
  assert.ok(bad.findings.length > 0);
  assert.match(
    await reason(signPrepared(bad)),
    /^lint-failure: the CA certificate failed pre-issuance lint and was not signed \(this is a Signet bug\): self-signed CA certificate carries/,
  );
  const rsa = signerFor(ownKey(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey));
  assert.throws(
    () => prepareCertificate(responderTbs, { kind: 'ocsp-responder', expect: responderExpect }, rsa),
    (e: unknown) => isSignetError(e) && e.type === 'internal' && /another signing algorithm than its signer's/.test(e.detail),
  );
});
