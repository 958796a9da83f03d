/**
 * PKCS#12 export against real OpenSSL 3.0 (no legacy provider): files from src/pki/pkcs12.ts are
 * opened by `openssl pkcs12`, and the PKCS#12 KDF is checked against published vectors,
 * `openssl kdf PKCS12KDF`, and the MACs of files that `openssl pkcs12 -export` wrote.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac, createPrivateKey, createPublicKey, generateKeyPairSync, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import { AuthenticatedSafe, id_pkcs8ShroudedKeyBag, PFX, SafeContents } from '@peculiar/asn1-pfx';
import { SignetError } from '../src/errors.js';
import { pemBlocks } from '../src/pki/pem.js';
import { buildPkcs12, pkcs12Kdf, pkcs12PasswordBytes, type Pkcs12KdfHash, type Pkcs12KdfId } from '../src/pki/pkcs12.js';
import { openssl, TempDir } from './helpers/openssl.js';

// --- helpers ----------------------------------------------------------------------------------

const dir = new TempDir();
after(() => dir.remove());

let fileCounter = 0;
const fresh = (ext: string): string => dir.file(`f${++fileCounter}.${ext}`);

function ok(args: string[]): { stdout: string; stderr: string; all: string } {
  const r = openssl(args);
  assert.equal(r.status, 0, `openssl ${args.join(' ')} failed:\n${r.stdout}${r.stderr}`);
  return { stdout: r.stdout, stderr: r.stderr, all: `${r.stdout}${r.stderr}` };
}

function writeKey(key: KeyObject): string {
  return dir.file(`key${++fileCounter}.pem`, key.export({ format: 'pem', type: 'pkcs8' }));
}

function writeP12(p12: Buffer): string {
  return dir.file(`out${++fileCounter}.p12`, p12);
}

const count = (text: string, needle: string): number => text.split(needle).length - 1;

/** openssl's rendering of a localKeyID: upper-case hex bytes, each followed by a space. */
const opensslHex = (b: Buffer): string => [...b].map((x) => x.toString(16).toUpperCase().padStart(2, '0')).join(' ');

function throwsProblem(fn: () => unknown, type: string, detail: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof SignetError, `expected SignetError, got ${String(e)}`);
    assert.equal(e.type, type, e.detail);
    assert.match(e.detail, detail);
    return true;
  });
}

/** The DER of the AuthenticatedSafe (the MAC'd bytes) and the parsed PFX. */
function openPfx(p12: Buffer): { pfx: PFX; authSafe: Buffer } {
  const pfx = AsnConvert.parse(p12, PFX);
  const authSafe = Buffer.from(AsnConvert.parse(pfx.authSafe.content, OctetString).buffer);
  return { pfx, authSafe };
}

// --- a CA for the chain -----------------------------------------------------------------------

let caKeyPath = '';
let caPemPath = '';
let caDer: Buffer = Buffer.alloc(0);

before(() => {
  caKeyPath = writeKey(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
  caPemPath = fresh('pem');
  ok([
    'req',
    '-x509',
    '-key',
    caKeyPath,
    '-subj',
    '/CN=Signet PKCS12 Test CA',
    '-days',
    '2',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
    '-out',
    caPemPath,
  ]);
  caDer = new X509Certificate(readFileSync(caPemPath)).raw;
});

/** A leaf for `key`, issued by the test CA with `openssl req -x509 -key … -CA …`. */
function leafFor(key: KeyObject, cn: string): { keyPath: string; der: Buffer } {
  const keyPath = writeKey(key);
  const out = fresh('der');
  ok(['req', '-x509', '-key', keyPath, '-CA', caPemPath, '-CAkey', caKeyPath, '-subj', `/CN=${cn}`, '-days', '2', '-outform', 'DER', '-out', out]);
  return { keyPath, der: readFileSync(out) };
}

// --- openssl opens what buildPkcs12 writes, per key type -------------------------------------

const KEY_TYPES: [string, () => KeyObject][] = [
  ['RSA-2048', () => generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey],
  ['EC P-256', () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey],
  ['EC P-384', () => generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey],
  ['EC P-521', () => generateKeyPairSync('ec', { namedCurve: 'P-521' }).privateKey],
  ['Ed25519', () => generateKeyPairSync('ed25519').privateKey],
];

for (const [label, makeKey] of KEY_TYPES) {
  describe(`PKCS#12 with an ${label} key`, () => {
    const password = 'correct horse battery staple';
    const friendlyName = `signet ${label}`;
    let keyPath = '';
    let leafDer: Buffer = Buffer.alloc(0);
    let p12Path = '';

    before(() => {
      const privateKey = makeKey();
      const leaf = leafFor(privateKey, `leaf ${label}`);
      keyPath = leaf.keyPath;
      leafDer = leaf.der;
      p12Path = writeP12(buildPkcs12({ privateKey, certificates: [leafDer, caDer], password, friendlyName }));
    });

    test('openssl pkcs12 -info verifies the SHA-256 MAC and decrypts everything', () => {
      const r = ok(['pkcs12', '-in', p12Path, '-passin', `pass:${password}`, '-nodes', '-info']);
      assert.match(r.all, /^MAC: sha256, Iteration 2048$/m);
      assert.match(r.all, /^MAC length: 32, salt length: 16$/m);
      assert.match(r.all, /^PKCS7 Encrypted data: PBES2, PBKDF2, AES-256-CBC, Iteration 100000, PRF hmacWithSHA256$/m);
      assert.match(r.all, /^Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration 100000, PRF hmacWithSHA256$/m);
      assert.equal(count(r.all, 'Certificate bag'), 2);
      assert.equal(count(r.stdout, '-----BEGIN CERTIFICATE-----'), 2);
      assert.equal(count(r.stdout, '-----BEGIN PRIVATE KEY-----'), 1);
      // Key bag and leaf cert bag carry the same localKeyID and the friendly name; the CA bag none.
      const keyId = opensslHex(createHash('sha1').update(leafDer).digest());
      assert.equal(count(r.stdout, `localKeyID: ${keyId}`), 2, r.stdout);
      assert.equal(count(r.stdout, `friendlyName: ${friendlyName}`), 2, r.stdout);
      assert.doesNotMatch(r.all, /warning|error/i);
    });

    test('-nokeys gives back exactly the certificates, leaf first', () => {
      const r = ok(['pkcs12', '-in', p12Path, '-passin', `pass:${password}`, '-nokeys']);
      const certs = pemBlocks(r.stdout)
        .filter((b) => b.label === 'CERTIFICATE')
        .map((b) => b.der);
      assert.deepEqual(certs, [leafDer, caDer]);
    });

    test('-nocerts -nodes gives back the private key', () => {
      const r = ok(['pkcs12', '-in', p12Path, '-passin', `pass:${password}`, '-nocerts', '-nodes']);
      const keyPem = pemBlocks(r.stdout).filter((b) => b.label === 'PRIVATE KEY');
      assert.equal(keyPem.length, 1);
      const extracted = dir.file(`extracted${++fileCounter}.pem`, r.stdout);
      const pubOf = (p: string) => ok(['pkey', '-in', p, '-pubout']).stdout;
      assert.equal(pubOf(extracted), pubOf(keyPath));
      assert.match(pubOf(extracted), /-----BEGIN PUBLIC KEY-----/);
    });

    test('a wrong password fails the MAC check', () => {
      const r = openssl(['pkcs12', '-in', p12Path, '-passin', `pass:${password}x`, '-nodes', '-info']);
      assert.notEqual(r.status, 0);
      assert.match(`${r.stdout}${r.stderr}`, /Mac verify error/);
      assert.doesNotMatch(r.stdout, /BEGIN PRIVATE KEY/);
    });
  });
}

// --- passwords, options, structure ------------------------------------------------------------

describe('PKCS#12 passwords and options', () => {
  let privateKey: KeyObject;
  let leafDer: Buffer = Buffer.alloc(0);
  let keyPath = '';

  before(() => {
    privateKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const leaf = leafFor(privateKey, 'leaf passwords');
    leafDer = leaf.der;
    keyPath = leaf.keyPath;
  });

  for (const password of ['pässwörd', 'ключ 🔑 鍵']) {
    test(`non-ASCII password ${JSON.stringify(password)} opens with openssl (no "broken algorithm" fallback)`, () => {
      const p12Path = writeP12(buildPkcs12({ privateKey, certificates: [leafDer, caDer], password, iterations: 1000 }));
      const r = ok(['pkcs12', '-in', p12Path, '-passin', `pass:${password}`, '-nodes', '-info']);
      assert.match(r.all, /^MAC: sha256, Iteration 1000$/m);
      assert.equal(count(r.stdout, '-----BEGIN PRIVATE KEY-----'), 1);
      // openssl retries a failed MAC with a byte-widened (wrong) BMPString and warns if that works.
      assert.doesNotMatch(r.all, /warning|broken/i);
      const extracted = dir.file(`extracted${++fileCounter}.pem`, r.stdout);
      assert.equal(ok(['pkey', '-in', extracted, '-pubout']).stdout, ok(['pkey', '-in', keyPath, '-pubout']).stdout);

      const wrong = openssl(['pkcs12', '-in', p12Path, '-passin', `pass:${password.toUpperCase()}`, '-nodes', '-info']);
      assert.notEqual(wrong.status, 0);
      assert.match(`${wrong.stdout}${wrong.stderr}`, /Mac verify error/);
    });
  }

  test('iterations applies to PBKDF2 and the MAC; no friendlyName when none is given', () => {
    const p12Path = writeP12(buildPkcs12({ privateKey, certificates: [leafDer], password: 'pw', iterations: 1234 }));
    const r = ok(['pkcs12', '-in', p12Path, '-passin', 'pass:pw', '-nodes', '-info']);
    assert.match(r.all, /^MAC: sha256, Iteration 1234$/m);
    assert.equal(count(r.all, 'AES-256-CBC, Iteration 1234, PRF hmacWithSHA256'), 2);
    assert.equal(count(r.all, 'Certificate bag'), 1);
    assert.doesNotMatch(r.stdout, /friendlyName/);
    assert.equal(count(r.stdout, 'localKeyID:'), 2);
  });

  test('structure: DER round trip, sorted bag attributes, key bag decryptable by node:crypto', () => {
    const password = 'pässwörd';
    const p12 = buildPkcs12({ privateKey, certificates: [leafDer, caDer], password, friendlyName: 'a name long enough to sort after the key id' });
    const { pfx, authSafe } = openPfx(p12);
    assert.equal(pfx.version, 3);
    assert.ok(Buffer.from(AsnConvert.serialize(pfx)).equals(p12), 're-encoding the parsed PFX changes it');

    // Recompute the MAC independently of buildPkcs12's own call.
    const macKey = pkcs12Kdf({
      passwordBytes: pkcs12PasswordBytes(password),
      salt: new Uint8Array(pfx.macData.macSalt.buffer),
      id: 3,
      iterations: pfx.macData.iterations,
      length: 32,
      hash: 'sha256',
    });
    assert.equal(pfx.macData.mac.digestAlgorithm.algorithm, '2.16.840.1.101.3.4.2.1');
    assert.deepEqual(Buffer.from(pfx.macData.mac.digest.buffer), createHmac('sha256', macKey).update(authSafe).digest());

    // AuthenticatedSafe: [encryptedData(certificates), data(SafeContents[shrouded key bag])].
    const safes = AsnConvert.parse(authSafe, AuthenticatedSafe);
    assert.deepEqual(
      Array.from(safes, (ci) => ci.contentType),
      ['1.2.840.113549.1.7.6', '1.2.840.113549.1.7.1'],
    );
    const keyBagSafe = AsnConvert.parse(AsnConvert.parse(safes[1]!.content, OctetString), SafeContents);
    assert.equal(keyBagSafe.length, 1);
    const bag = keyBagSafe[0]!;
    assert.equal(bag.bagId, id_pkcs8ShroudedKeyBag);
    const decrypted = createPrivateKey({ key: Buffer.from(bag.bagValue), format: 'der', type: 'pkcs8', passphrase: password });
    assert.deepEqual(createPublicKey(decrypted).export({ format: 'der', type: 'spki' }), createPublicKey(privateKey).export({ format: 'der', type: 'spki' }));
    const attrs = (bag.bagAttributes ?? []).map((a) => Buffer.from(AsnConvert.serialize(a)));
    assert.equal(attrs.length, 2);
    assert.ok(Buffer.compare(attrs[0]!, attrs[1]!) < 0, 'SET OF attributes must be in DER order');
  });

  test('rejects bad input', () => {
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const base = { privateKey, certificates: [leafDer], password: 'pw' };
    throwsProblem(() => buildPkcs12({ ...base, privateKey: other }), 'bad-key', /does not match/);
    throwsProblem(() => buildPkcs12({ ...base, privateKey: createPublicKey(privateKey) }), 'bad-key', /private key/);
    throwsProblem(() => buildPkcs12({ ...base, certificates: [] }), 'bad-request', /leaf certificate/);
    throwsProblem(() => buildPkcs12({ ...base, certificates: [leafDer, Buffer.from('nope')] }), 'bad-request', /certificate 1/);
    throwsProblem(() => buildPkcs12({ ...base, password: '' }), 'bad-request', /empty/);
    throwsProblem(() => buildPkcs12({ ...base, password: 'a\ud800b' }), 'bad-request', /well-formed/);
    throwsProblem(() => buildPkcs12({ ...base, password: 'a\u0000b' }), 'bad-request', /NUL/);
    throwsProblem(() => buildPkcs12({ ...base, friendlyName: '\udc00' }), 'bad-request', /friendly name/);
    for (const iterations of [0, -1, 1.5, Number.NaN, 1e9]) {
      throwsProblem(() => buildPkcs12({ ...base, iterations }), 'bad-request', /iteration/);
    }
  });
});

// --- the PKCS#12 KDF --------------------------------------------------------------------------

describe('PKCS#12 KDF (RFC 7292 Appendix B)', () => {
  test('BMPString password encoding', () => {
    assert.equal(pkcs12PasswordBytes('smeg').toString('hex'), '0073006d006500670000');
    assert.equal(pkcs12PasswordBytes('ä').toString('hex'), '00e40000');
    assert.equal(pkcs12PasswordBytes('🔑').toString('hex'), 'd83ddd110000'); // surrogate pair, like OpenSSL
    assert.equal(pkcs12PasswordBytes('').toString('hex'), '0000');
  });

  test('published known answers', () => {
    // SHA-1 vectors from Dr Stephen Henson's PKCS#12 test set (used by OpenSSL and Bouncy Castle);
    // the SHA-256 one is a MAC key (ID 3, 2048 iterations). All reproduced with `openssl kdf`.
    const vectors: [string, string, Pkcs12KdfId, number, Pkcs12KdfHash, string][] = [
      ['smeg', '0a58cf64530d823f', 1, 1, 'sha1', '8aaae6297b6cb04642ab5b077851284eb7128f1a2a7fbca3'],
      ['smeg', '0a58cf64530d823f', 2, 1, 'sha1', '79993dfe048d3b76'],
      ['queeg', '05dec959acff72f7', 1, 1000, 'sha1', 'ed2034e36328830ff09df1e1a07dd357185dac0d4f9eb3d4'],
      ['123456', 'e241f01650dbeae4', 3, 2048, 'sha256', '721259f14aad70b58839f71566b433da1b8ad08f650f4d02faaa0b9b095bb51d'],
    ];
    for (const [password, salt, id, iterations, hash, expected] of vectors) {
      const got = pkcs12Kdf({
        passwordBytes: pkcs12PasswordBytes(password),
        salt: Buffer.from(salt, 'hex'),
        id,
        iterations,
        length: expected.length / 2,
        hash,
      });
      assert.equal(got.toString('hex'), expected, `${password}/${id}/${hash}`);
    }
  });

  test('matches `openssl kdf PKCS12KDF`, including outputs longer than one hash block', () => {
    const cases: { password: string; salt: string; id: Pkcs12KdfId; iterations: number; length: number; hash: Pkcs12KdfHash }[] = [
      { password: 'pässwörd', salt: '00112233445566778899aabbccddeeff', id: 3, iterations: 1, length: 32, hash: 'sha256' },
      { password: 'pässwörd', salt: '00112233445566778899aabbccddeeff', id: 3, iterations: 3, length: 100, hash: 'sha256' },
      { password: 'ключ 🔑', salt: 'ff'.repeat(64), id: 1, iterations: 2, length: 65, hash: 'sha256' },
      // Password longer than v bytes, salt not a multiple of v: several blocks of I, all updated.
      { password: 'x'.repeat(40), salt: 'a5'.repeat(70), id: 2, iterations: 5, length: 200, hash: 'sha256' },
      { password: 'p', salt: '01', id: 1, iterations: 1, length: 41, hash: 'sha1' },
      { password: 'abcdefghijklmnopqrstuvwxyz0123456789', salt: '02'.repeat(9), id: 3, iterations: 2, length: 150, hash: 'sha512' },
      { password: 'z', salt: '03'.repeat(16), id: 3, iterations: 1, length: 50, hash: 'sha384' },
      { password: '', salt: '04'.repeat(8), id: 3, iterations: 1, length: 33, hash: 'sha256' },
    ];
    const names: Record<Pkcs12KdfHash, string> = { sha1: 'SHA1', sha224: 'SHA224', sha256: 'SHA256', sha384: 'SHA384', sha512: 'SHA512' };
    for (const c of cases) {
      const passwordBytes = pkcs12PasswordBytes(c.password);
      const r = ok([
        'kdf',
        '-keylen',
        String(c.length),
        '-kdfopt',
        `digest:${names[c.hash]}`,
        '-kdfopt',
        `hexpass:${passwordBytes.toString('hex')}`,
        '-kdfopt',
        `hexsalt:${c.salt}`,
        '-kdfopt',
        `id:${c.id}`,
        '-kdfopt',
        `iter:${c.iterations}`,
        'PKCS12KDF',
      ]);
      const expected = r.stdout.trim().replace(/:/g, '').toLowerCase();
      const got = pkcs12Kdf({ ...c, passwordBytes, salt: Buffer.from(c.salt, 'hex') });
      assert.equal(got.toString('hex'), expected, JSON.stringify(c));
    }
  });

  test('recomputes the MAC of files written by `openssl pkcs12 -export -macalg sha256`', () => {
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const leaf = leafFor(key, 'openssl export');
    const leafPem = dir.file(`leaf${++fileCounter}.pem`, new X509Certificate(leaf.der).toString());
    for (const password of ['s3cret', 'pässwörd 🔑']) {
      for (const iterArgs of [['-iter', '1'], []]) {
        const out = fresh('p12');
        ok(['pkcs12', '-export', '-inkey', leaf.keyPath, '-in', leafPem, '-passout', `pass:${password}`, '-macalg', 'sha256', ...iterArgs, '-out', out]);
        const { pfx, authSafe } = openPfx(readFileSync(out));
        assert.equal(pfx.macData.mac.digestAlgorithm.algorithm, '2.16.840.1.101.3.4.2.1');
        assert.equal(pfx.macData.iterations, iterArgs.length ? 1 : 2048);
        const macKey = pkcs12Kdf({
          passwordBytes: pkcs12PasswordBytes(password),
          salt: new Uint8Array(pfx.macData.macSalt.buffer),
          id: 3,
          iterations: pfx.macData.iterations,
          length: 32,
          hash: 'sha256',
        });
        const mac = createHmac('sha256', macKey).update(authSafe).digest();
        assert.equal(mac.toString('hex'), Buffer.from(pfx.macData.mac.digest.buffer).toString('hex'), `${password} ${iterArgs.join(' ')}`);
      }
    }
  });
});
