// Proves the strict-verifier harness (test/helpers/strict.ts) both accepts a
// good chain and rejects bad ones, using certificates made by OpenSSL (and one
// by @peculiar/x509, since openssl 3.0 `x509 -req` cannot backdate) so the
// harness is tested independently of Signet's own issuance code.
import 'reflect-metadata';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createPrivateKey, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { openssl, TempDir } from './helpers/openssl.js';
import {
  assertStrictlyValid,
  strictVerifiers,
  verifyWithGnutls,
  verifyWithGo,
  verifyWithNss,
  type StrictVerifyOptions,
  type VerifierResult,
} from './helpers/strict.js';

const HOST = 'www.example.test';

const CONFIG = `
[req]
distinguished_name = dn
[dn]
[root]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[inter]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
# keyCertSign but CA:FALSE: only the basicConstraints bit makes it unfit to issue.
[not_ca]
basicConstraints = critical,CA:FALSE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:${HOST},IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
# No AKI, so a forged leaf is refused for its signature, not a key-id mismatch.
[leaf_no_aki]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:${HOST},IP:127.0.0.1
`;

let dir: TempDir;
let serial = 0x1000;
const pem = { root: '', inter: '', leaf: '', forgedLeaf: '', notCa: '', leafUnderNotCa: '', expiredLeaf: '', negativeSerialLeaf: '' };

function ossl(args: string[]): void {
  const r = openssl(args);
  assert.equal(r.status, 0, `openssl ${args.join(' ')}\n${r.stderr}`);
}

function key(name: string): string {
  ossl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', dir.file(`${name}.key`)]);
  return dir.file(`${name}.key`);
}

function selfSigned(name: string, cn: string): string {
  const out = dir.file(`${name}.pem`);
  ossl([
    'req',
    '-new',
    '-x509',
    '-config',
    dir.file('ext.cnf'),
    '-extensions',
    'root',
    '-key',
    key(name),
    '-subj',
    `/CN=${cn}`,
    '-days',
    '30',
    '-set_serial',
    String(serial++),
    '-out',
    out,
  ]);
  return readFileSync(out, 'utf8');
}

/** Issues `name` (new key, subject CN=cn) from issuer's cert and key with an extension section. */
function issue(name: string, cn: string, issuer: string, section: string, serialArg = String(serial++)): string {
  const csr = dir.file(`${name}.csr`);
  const out = dir.file(`${name}.pem`);
  ossl(['req', '-new', '-config', dir.file('ext.cnf'), '-key', key(name), '-subj', `/CN=${cn}`, '-out', csr]);
  ossl([
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    dir.file(`${issuer}.pem`),
    '-CAkey',
    dir.file(`${issuer}.key`),
    '-set_serial',
    serialArg,
    '-days',
    '30',
    '-extfile',
    dir.file('ext.cnf'),
    '-extensions',
    section,
    '-out',
    out,
  ]);
  return readFileSync(out, 'utf8');
}

/** A leaf under the real intermediate whose validity ended yesterday. */
async function expiredLeaf(): Promise<string> {
  // Typed as the DOM's Crypto, the one @peculiar/x509 takes: Node 24's own CryptoKey type allows
  // key usages (ML-KEM's encapsulateBits, …) that the DOM type does not, so the two no longer match.
  const crypto = webcrypto as unknown as Crypto;
  x509.cryptoProvider.set(crypto);
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const interKey = createPrivateKey(readFileSync(dir.file('inter.key'))).export({ format: 'der', type: 'pkcs8' });
  const signingKey = await crypto.subtle.importKey('pkcs8', interKey, alg, false, ['sign']);
  const leafKeys = (await crypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
  const inter = new x509.X509Certificate(pem.inter);
  const day = 24 * 3600 * 1000;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: '01020304',
    subject: 'CN=expired',
    issuer: inter.subjectName, // exact DER of the intermediate's subject
    notBefore: new Date(Date.now() - 30 * day),
    notAfter: new Date(Date.now() - day),
    signingAlgorithm: alg,
    publicKey: leafKeys.publicKey,
    signingKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([
        { type: 'dns', value: HOST },
        { type: 'ip', value: '127.0.0.1' },
      ]),
      await x509.AuthorityKeyIdentifierExtension.create(inter, false),
    ],
  });
  return cert.toString('pem');
}

before(async () => {
  dir = new TempDir();
  dir.file('ext.cnf', CONFIG);
  pem.root = selfSigned('root', 'Strict Test Root');
  pem.inter = issue('inter', 'Strict Test Intermediate', 'root', 'inter');
  pem.leaf = issue('leaf', 'leaf', 'inter', 'leaf');
  // Unrelated CA that even reuses the real intermediate's name: only the key differs.
  selfSigned('impostor', 'Strict Test Intermediate');
  pem.forgedLeaf = issue('forged', 'forged', 'impostor', 'leaf_no_aki');
  pem.notCa = issue('not_ca', 'Strict Test Not A CA', 'root', 'not_ca');
  pem.leafUnderNotCa = issue('under_not_ca', 'under-not-ca', 'not_ca', 'leaf');
  pem.negativeSerialLeaf = issue('negative', 'negative', 'inter', 'leaf', '-5');
  pem.expiredLeaf = await expiredLeaf();
});

after(() => dir?.remove());

const chain = (leaf: string, extra: Partial<StrictVerifyOptions> = {}): StrictVerifyOptions => ({
  roots: [pem.root],
  intermediates: [pem.inter],
  leaf,
  dns: HOST,
  eku: 'server',
  ...extra,
});

const all = { go: verifyWithGo, gnutls: verifyWithGnutls, nss: verifyWithNss };
type Name = keyof typeof all;

/** Each named verifier must reject, and for the expected reason (so a harness fault can't pass). */
function assertRejects(opts: StrictVerifyOptions, reasons: Partial<Record<Name, RegExp>>): void {
  for (const [name, reason] of Object.entries(reasons) as [Name, RegExp][]) {
    const r: VerifierResult = all[name](opts);
    assert.equal(r.ok, false, `${name} accepted but should reject:\n${r.output}`);
    assert.match(r.output, reason, `${name} rejected for an unexpected reason`);
  }
}

test('all strict verifiers are installed', () => {
  assert.deepEqual(strictVerifiers().sort(), ['gnutls', 'go', 'nss']);
});

test('a missing verifier throws with install instructions instead of skipping', (t) => {
  const path = process.env.PATH;
  process.env.PATH = '';
  try {
    assert.deepEqual(strictVerifiers(), []);
    assert.throws(() => assertStrictlyValid(t, chain(pem.leaf)), /apt-get install golang-go gnutls-bin libnss3-tools/);
  } finally {
    process.env.PATH = path;
  }
});

test('all three accept a good root -> intermediate -> server leaf chain', (t) => {
  assertStrictlyValid(t, chain(pem.leaf));
});

test('IP SAN: Go and GnuTLS accept 127.0.0.1, reject another address', () => {
  for (const verify of [verifyWithGo, verifyWithGnutls]) {
    const r = verify(chain(pem.leaf, { dns: undefined, ip: '127.0.0.1' }));
    assert.ok(r.ok, r.output);
  }
  assertRejects(chain(pem.leaf, { dns: undefined, ip: '127.0.0.2' }), {
    go: /valid for 127\.0\.0\.1, not 127\.0\.0\.2/,
    gnutls: /name in the certificate does not match/,
  });
});

test('an intermediate verifies as a CA against the root (eku any)', (t) => {
  assertStrictlyValid(t, { roots: [pem.root], intermediates: [], leaf: pem.inter, eku: 'any' });
});

test('assertStrictlyValid names each verifier that rejected, with its output', (t) => {
  assert.throws(
    () => assertStrictlyValid(t, chain(pem.forgedLeaf)),
    (e: unknown) => {
      assert.ok(e instanceof assert.AssertionError);
      for (const name of ['go', 'gnutls', 'nss']) assert.match(e.message, new RegExp(`^${name} rejected:\\n.+`, 'm'));
      return true;
    },
  );
});

test('wrong hostname is rejected (Go, GnuTLS; vfychain has no name check)', () => {
  const opts = chain(pem.leaf, { dns: 'wrong.example.test' });
  assertRejects(opts, { go: /valid for www\.example\.test, not wrong\.example\.test/, gnutls: /name in the certificate does not match/ });
  // NSS still checks the chain; the harness says plainly that it did not check the name.
  assert.match(verifyWithNss(opts).output, /vfychain cannot check host names/);
});

test('a leaf signed by an unrelated CA with the same name is rejected', () => {
  assertRejects(chain(pem.forgedLeaf), {
    // NSS's libpkix reports this as -8157 ("extension not found"), so only the verdict is matched.
    go: /unknown authority.*ECDSA verification failure/,
    gnutls: /issuer is unknown/,
    nss: /Chain is bad!/,
  });
});

test('a leaf under an intermediate lacking CA:TRUE is rejected', () => {
  assertRejects(chain(pem.leafUnderNotCa, { intermediates: [pem.notCa] }), {
    go: /parent certificate cannot sign/,
    gnutls: /issuer is not a CA/,
    nss: /-8156: Issuer certificate is invalid/,
  });
});

test('an expired leaf is rejected', () => {
  assertRejects(chain(pem.expiredLeaf), { go: /has expired/, gnutls: /uses expired certificate/, nss: /-8181: Peer's Certificate has expired/ });
});

test('a server-only leaf is rejected for client auth', () => {
  assertRejects(chain(pem.leaf, { eku: 'client' }), {
    go: /incompatible key usage/,
    gnutls: /does not match the intended purpose/,
    nss: /-8101: Certificate type not approved/,
  });
});

test('Go refuses a negative serial number (as Go >= 1.23 does at parse time)', () => {
  assertRejects(chain(pem.negativeSerialLeaf), { go: /negative serial number/ });
});
