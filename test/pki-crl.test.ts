/**
 * CRL encoding against real OpenSSL: a throwaway CA per key algorithm (made by `openssl req
 * -x509`), CRLs built by src/pki/crl.ts with that CA's key, then `openssl crl` and `openssl
 * verify -crl_check` judge them.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createPrivateKey, generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ownKey, signerFor, type Signer } from '../src/pki/keys.js';
import { readElement, readHeader } from '../src/pki/der.js';
import { SignetError } from '../src/errors.js';
import {
  buildCrl,
  encodeCrlEntry,
  isRevocationReason,
  reasonFromCode,
  REASON_CODES,
  REVOCATION_REASONS,
  type CrlEntry,
  type RevocationReason,
} from '../src/pki/crl.js';

// --- helpers ----------------------------------------------------------------------------------

function openssl(cwd: string, args: string[]): { status: number; out: string } {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  if (r.error) throw r.error;
  return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

function opensslOk(cwd: string, args: string[]): string {
  const r = openssl(cwd, args);
  assert.equal(r.status, 0, `openssl ${args.join(' ')} failed:\n${r.out}`);
  return r.out;
}

const CRL_URL = 'http://crl.test/ca.crl';

const CONFIG = `
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[leaf_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:leaf.test
authorityKeyIdentifier = keyid
crlDistributionPoints = URI:${CRL_URL}
`;

const KEYGEN: Record<string, string[]> = {
  'ecdsa-p256': ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'],
  'rsa-2048': ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'],
  ed25519: ['-algorithm', 'ED25519'],
};

interface TestCa {
  dir: string;
  signer: Signer;
  certDer: Buffer;
  nameDer: Buffer;
  keyId: Buffer;
  /** Issues a leaf with the given hex serial; returns its PEM path (relative to dir). */
  leaf(name: string, serialHex: string): string;
}

/** Children of the DER element at offset (content start..end). */
function children(buf: Buffer, offset: number): { offset: number; tag: number; bytes: Buffer }[] {
  const h = readHeader(buf, offset);
  const out = [];
  for (let p = offset + h.headerLength; p < offset + h.headerLength + h.length; ) {
    const el = readElement(buf, p);
    out.push({ offset: p, tag: buf[p]!, bytes: Buffer.from(el) });
    p += el.length;
  }
  return out;
}

function subjectNameDer(certDer: Buffer): Buffer {
  const tbs = children(certDer, 0)[0]!;
  const fields = children(certDer, tbs.offset);
  const rest = fields[0]!.tag === 0xa0 ? fields.slice(1) : fields;
  return rest[4]!.bytes; // serial, signature, issuer, validity, subject
}

function subjectKeyId(certDer: Buffer): Buffer {
  const tbs = children(certDer, 0)[0]!;
  const exts = children(certDer, tbs.offset).find((f) => f.tag === 0xa3)!;
  const list = children(certDer, exts.offset + readHeader(certDer, exts.offset).headerLength);
  for (const ext of list) {
    const parts = children(certDer, ext.offset);
    if (parts[0]!.bytes.equals(Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x0e]))) {
      const value = parts[parts.length - 1]!.bytes; // OCTET STRING { OCTET STRING keyId }
      const inner = value.subarray(readHeader(value).headerLength);
      return inner.subarray(readHeader(inner).headerLength);
    }
  }
  throw new Error('no SKI');
}

function makeCa(alg: string): TestCa {
  const dir = mkdtempSync(join(tmpdir(), `signet-crl-${alg}-`));
  writeFileSync(join(dir, 'openssl.cnf'), CONFIG);
  opensslOk(dir, ['genpkey', ...KEYGEN[alg]!, '-out', 'ca.key']);
  opensslOk(dir, [
    'req',
    '-x509',
    '-config',
    'openssl.cnf',
    '-key',
    'ca.key',
    '-subj',
    `/O=Signet Tests/CN=Test CA ${alg}`,
    '-days',
    '30',
    '-extensions',
    'ca_ext',
    '-out',
    'ca.pem',
  ]);
  opensslOk(dir, ['genpkey', ...KEYGEN['ecdsa-p256']!, '-out', 'leaf.key']);
  opensslOk(dir, ['req', '-new', '-config', 'openssl.cnf', '-key', 'leaf.key', '-subj', '/CN=leaf.test', '-out', 'leaf.csr']);
  const certDer = Buffer.from(new X509Certificate(readFileSync(join(dir, 'ca.pem'))).raw);
  return {
    dir,
    signer: signerFor(ownKey(createPrivateKey(readFileSync(join(dir, 'ca.key'))))),
    certDer,
    nameDer: subjectNameDer(certDer),
    keyId: subjectKeyId(certDer),
    leaf(name, serialHex) {
      opensslOk(dir, [
        'x509',
        '-req',
        '-in',
        'leaf.csr',
        '-CA',
        'ca.pem',
        '-CAkey',
        'ca.key',
        '-set_serial',
        `0x${serialHex}`,
        '-days',
        '10',
        '-extfile',
        'openssl.cnf',
        '-extensions',
        'leaf_ext',
        '-out',
        `${name}.pem`,
      ]);
      return `${name}.pem`;
    },
  };
}

const pem = (der: Buffer, label: string) =>
  `-----BEGIN ${label}-----\n${der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END ${label}-----\n`;

/** [tbs, signatureAlgorithm, signature] and the TBS fields of a CRL. */
function crlParts(crl: Buffer) {
  const top = children(crl, 0);
  assert.equal(top.length, 3);
  assert.equal(readElement(crl, 0).length, crl.length, 'no trailing bytes');
  const tbsFields = children(crl, top[0]!.offset);
  return { tbs: top[0]!.bytes, sigAlg: top[1]!.bytes, tbsFields };
}

/** The concatenated revokedCertificates content, or undefined when the field is absent. */
function revokedContent(crl: Buffer): Buffer | undefined {
  const { tbsFields } = crlParts(crl);
  // version, signature, issuer, thisUpdate, nextUpdate, [revokedCertificates], [0] crlExtensions
  const maybe = tbsFields[5]!;
  if (maybe.tag !== 0x30) return undefined;
  return maybe.bytes.subarray(readHeader(maybe.bytes).headerLength);
}

const HOUR = 3_600_000;
const NOW = new Date(Date.UTC(2025, 0, 15, 12, 0, 0));

// --- pure encoding ----------------------------------------------------------------------------

describe('CRL entry encoding', () => {
  test('reason code map follows RFC 5280 (7 unused)', () => {
    assert.deepEqual(
      REVOCATION_REASONS.map((r) => REASON_CODES[r]),
      [0, 1, 2, 3, 4, 5, 6, 8, 9, 10],
    );
    assert.equal(reasonFromCode(7), undefined);
    assert.equal(reasonFromCode(1), 'keyCompromise');
    assert.ok(isRevocationReason('aACompromise'));
    assert.ok(!isRevocationReason('toString'));
    assert.ok(!isRevocationReason('KeyCompromise'));
  });

  test('encodeCrlEntry: exact bytes for reason + invalidityDate, and unspecified omits the reason', () => {
    const serial = Buffer.from('8001', 'hex');
    const e = encodeCrlEntry({ serial, revokedAt: NOW, reason: 'keyCompromise', invalidityDate: new Date(NOW.getTime() - HOUR) });
    const expected = Buffer.concat([
      Buffer.from('303c', 'hex'), // 5 + 15 + 40
      Buffer.from('0203008001', 'hex'),
      Buffer.from('170d', 'hex'),
      Buffer.from('250115120000Z', 'ascii'),
      Buffer.from('3026', 'hex'),
      Buffer.from('300a0603551d150403' + '0a0101', 'hex'),
      Buffer.from('30180603551d180411180f', 'hex'),
      Buffer.from('20250115110000Z', 'ascii'),
    ]);
    assert.equal(e.toString('hex'), expected.toString('hex'));
    const plain = encodeCrlEntry({ serial: Buffer.from('0001', 'hex'), revokedAt: NOW, reason: 'unspecified' });
    assert.equal(plain.toString('hex'), '3012' + '020101' + '170d' + Buffer.from('250115120000Z').toString('hex'));
  });

  test('the bulk writer produces exactly encodeCrlEntry bytes for odd inputs', async () => {
    const signer = signerFor(ownKey(generateKeyPairSync('ed25519').privateKey));
    const entries: CrlEntry[] = [];
    const serials = [
      Buffer.from([0]),
      Buffer.from([0, 0, 0]),
      Buffer.from([0x7f]),
      Buffer.from([0x80]),
      Buffer.from([0, 0, 0x80]),
      Buffer.from('00ff', 'hex'),
      randomBytes(16),
      randomBytes(20),
      Buffer.concat([Buffer.from([0x81]), randomBytes(199)]),
    ];
    const dates = [
      new Date(Date.UTC(1949, 11, 31, 23, 59, 59)),
      new Date(Date.UTC(1950, 0, 1)),
      new Date(Date.UTC(2049, 11, 31, 23, 59, 59)),
      new Date(Date.UTC(2050, 0, 1)),
      new Date(Date.UTC(2025, 5, 7, 8, 9, 10, 999)),
    ];
    let i = 0;
    for (const serial of serials) {
      for (const revokedAt of dates) {
        const reason = i % 3 === 0 ? undefined : REVOCATION_REASONS[i % REVOCATION_REASONS.length];
        const invalidityDate = i % 2 === 0 ? dates[(i + 1) % dates.length] : undefined;
        entries.push({ serial, revokedAt, ...(reason ? { reason } : {}), ...(invalidityDate ? { invalidityDate } : {}) });
        i++;
      }
    }
    const crl = await buildCrl({
      issuerNameDer: Buffer.from('300f310d300b06035504030c0474657374', 'hex'),
      issuerKeyId: Buffer.from([1, 2, 3]),
      number: 1n,
      thisUpdate: NOW,
      nextUpdate: new Date(NOW.getTime() + HOUR),
      entries,
      signer,
    });
    assert.equal(revokedContent(crl)!.toString('hex'), Buffer.concat(entries.map(encodeCrlEntry)).toString('hex'));
  });

  test('bad parameters are refused with a SignetError', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const base = {
      issuerNameDer: Buffer.from('3000', 'hex'),
      issuerKeyId: Buffer.from([1]),
      number: 1n,
      thisUpdate: NOW,
      nextUpdate: new Date(NOW.getTime() + HOUR),
      entries: [] as CrlEntry[],
      signer: signerFor(ownKey(privateKey)),
    };
    await assert.doesNotReject(buildCrl(base));
    const bad: [string, Partial<typeof base> & { distributionPointUrl?: string; deltaBaseNumber?: bigint; freshestCrlUrl?: string }][] = [
      ['delta base not below the delta number', { deltaBaseNumber: 1n }],
      ['delta CRL with freshestCRL', { number: 2n, deltaBaseNumber: 1n, freshestCrlUrl: 'http://x/d.crl' }],
      ['freshestCRL URL with a space', { freshestCrlUrl: 'http://x/a b' }],
      ['nextUpdate before thisUpdate', { nextUpdate: new Date(NOW.getTime() - 1) }],
      ['negative number', { number: -1n }],
      ['number over 20 octets', { number: 1n << 159n }],
      ['issuer not a Name', { issuerNameDer: Buffer.from('3001', 'hex') }],
      ['empty key id', { issuerKeyId: Buffer.alloc(0) }],
      ['URL with a space', { distributionPointUrl: 'http://x/a b' }],
      ['empty serial', { entries: [{ serial: Buffer.alloc(0), revokedAt: NOW }] }],
      ['invalid date', { entries: [{ serial: Buffer.from([1]), revokedAt: new Date(NaN) }] }],
      ['unknown reason', { entries: [{ serial: Buffer.from([1]), revokedAt: NOW, reason: 'bogus' as RevocationReason }] }],
    ];
    for (const [name, patch] of bad) {
      await assert.rejects(buildCrl({ ...base, ...patch }), (e: unknown) => e instanceof SignetError, name);
    }
    await buildCrl({ ...base, number: (1n << 159n) - 1n }); // the largest 20-octet number is fine
  });
});

// --- against OpenSSL --------------------------------------------------------------------------

for (const alg of ['ecdsa-p256', 'rsa-2048', 'ed25519']) {
  describe(`CRL signed by an ${alg} CA, checked by openssl`, () => {
    let ca: TestCa;
    const revokedSerial = '8f1e2d3c4b5a69788796a5b4c3d2e1f0'; // high bit set: INTEGER needs a 0x00
    const goodSerial = '1234567890abcdef';
    let revokedLeaf: string;
    let goodLeaf: string;

    before(() => {
      ca = makeCa(alg);
      revokedLeaf = ca.leaf('revoked', revokedSerial);
      goodLeaf = ca.leaf('good', goodSerial);
    });
    after(() => rmSync(ca.dir, { recursive: true, force: true }));

    const writeCrl = (crl: Buffer) => {
      writeFileSync(join(ca.dir, 'crl.der'), crl);
      writeFileSync(join(ca.dir, 'crl.pem'), pem(crl, 'X509 CRL'));
    };

    test('entries with reasons, invalidityDate and unspecified; number; IDP; signature; revocation check', async () => {
      const entries: CrlEntry[] = [
        {
          serial: Buffer.from(revokedSerial, 'hex'),
          revokedAt: new Date(NOW.getTime() - 2 * HOUR),
          reason: 'keyCompromise',
          invalidityDate: new Date(NOW.getTime() - 24 * HOUR),
        },
        { serial: Buffer.from('0a0b0c', 'hex'), revokedAt: new Date(NOW.getTime() - 3 * HOUR), reason: 'unspecified' },
        { serial: Buffer.from('00000077', 'hex'), revokedAt: new Date(NOW.getTime() - 4 * HOUR), reason: 'superseded' },
        { serial: Buffer.from('55', 'hex'), revokedAt: new Date(NOW.getTime() - 5 * HOUR), reason: 'cessationOfOperation' },
      ];
      const crl = await buildCrl({
        issuerNameDer: ca.nameDer,
        issuerKeyId: ca.keyId,
        number: 42n,
        thisUpdate: new Date(Date.now() - HOUR),
        nextUpdate: new Date(Date.now() + 24 * HOUR),
        entries,
        distributionPointUrl: CRL_URL,
        signer: ca.signer,
      });
      writeCrl(crl);

      const text = opensslOk(ca.dir, ['crl', '-inform', 'DER', '-in', 'crl.der', '-text', '-noout']);
      assert.match(text, /Version 2 \(0x1\)/);
      assert.match(text, new RegExp(`Issuer: O ?= ?Signet Tests, CN ?= ?Test CA ${alg}`));
      assert.match(text, /X509v3 CRL Number:\s*\n\s*42\b/);
      assert.match(text, /X509v3 Authority Key Identifier:\s*\n\s*(keyid:)?([0-9A-F]{2}:){19}[0-9A-F]{2}/);
      assert.ok(
        text.toUpperCase().includes(
          [...ca.keyId]
            .map((b) => b.toString(16).padStart(2, '0'))
            .join(':')
            .toUpperCase(),
        ),
      );
      assert.match(text, /X509v3 Issuing Distribution Point: critical\s*\n\s*Full Name:\s*\n\s*URI:http:\/\/crl\.test\/ca\.crl/);
      assert.match(
        text,
        new RegExp(
          `Serial Number: ${revokedSerial.toUpperCase()}\\s*\\n\\s*Revocation Date: [^\\n]+\\n\\s*CRL entry extensions:\\s*\\n\\s*X509v3 CRL Reason Code:\\s*\\n\\s*Key Compromise\\s*\\n\\s*Invalidity Date:`,
        ),
      );
      assert.match(text, /Serial Number: 0A0B0C\s*\n\s*Revocation Date: [^\n]+\n\s*Serial Number: 77/, 'unspecified: no entry extensions');
      assert.match(text, /Serial Number: 77\s*\n\s*Revocation Date: [^\n]+\n\s*CRL entry extensions:\s*\n\s*X509v3 CRL Reason Code:\s*\n\s*Superseded/);
      assert.match(text, /Cessation Of Operation/);
      assert.equal(text.match(/CRL Reason Code/g)?.length, 3);

      assert.match(opensslOk(ca.dir, ['crl', '-inform', 'DER', '-in', 'crl.der', '-noout', '-verify', '-CAfile', 'ca.pem']), /verify OK/);

      const revoked = openssl(ca.dir, ['verify', '-crl_check', '-CRLfile', 'crl.pem', '-CAfile', 'ca.pem', revokedLeaf]);
      assert.notEqual(revoked.status, 0, revoked.out);
      assert.match(revoked.out, /certificate revoked/);
      const good = opensslOk(ca.dir, ['verify', '-crl_check', '-CRLfile', 'crl.pem', '-CAfile', 'ca.pem', goodLeaf]);
      assert.match(good, new RegExp(`${goodLeaf}: OK`));
    });

    test('a signature made by another key does not verify', async () => {
      const other = makeCa(alg);
      try {
        const crl = await buildCrl({
          issuerNameDer: ca.nameDer,
          issuerKeyId: ca.keyId,
          number: 1n,
          thisUpdate: new Date(Date.now() - HOUR),
          nextUpdate: new Date(Date.now() + HOUR),
          entries: [],
          signer: other.signer,
        });
        writeCrl(crl);
        const r = openssl(ca.dir, ['crl', '-inform', 'DER', '-in', 'crl.der', '-noout', '-verify', '-CAfile', 'ca.pem']);
        assert.doesNotMatch(r.out, /verify OK/);
      } finally {
        rmSync(other.dir, { recursive: true, force: true });
      }
    });

    test('an empty CRL omits revokedCertificates and still verifies', async () => {
      const crl = await buildCrl({
        issuerNameDer: ca.nameDer,
        issuerKeyId: ca.keyId,
        number: 1n,
        thisUpdate: new Date(Date.now() - HOUR),
        nextUpdate: new Date(Date.now() + HOUR),
        entries: [],
        signer: ca.signer,
      });
      assert.equal(revokedContent(crl), undefined);
      const { tbsFields } = crlParts(crl);
      assert.deepEqual(
        tbsFields.map((f) => f.tag),
        [0x02, 0x30, 0x30, 0x17, 0x17, 0xa0],
      );
      writeCrl(crl);
      const text = opensslOk(ca.dir, ['crl', '-inform', 'DER', '-in', 'crl.der', '-text', '-noout']);
      assert.match(text, /No Revoked Certificates/);
      assert.doesNotMatch(text, /Issuing Distribution Point/);
      assert.match(opensslOk(ca.dir, ['crl', '-inform', 'DER', '-in', 'crl.der', '-noout', '-verify', '-CAfile', 'ca.pem']), /verify OK/);
      // No IDP: the CRL covers the leaf through its issuer name alone.
      assert.match(opensslOk(ca.dir, ['verify', '-crl_check', '-CRLfile', 'crl.pem', '-CAfile', 'ca.pem', revokedLeaf]), /: OK/);
    });

    test('entries from an async generator of batches equal the same entries from an array', async () => {
      const all: CrlEntry[] = Array.from({ length: 2500 }, (_, i) => ({
        serial: Buffer.from(i.toString(16).padStart(8, '0') + 'ab', 'hex'),
        revokedAt: new Date(NOW.getTime() - i * 1000),
        ...(i % 4 === 0 ? {} : { reason: (['keyCompromise', 'superseded', 'affiliationChanged'] as const)[i % 3] }),
      }));
      all.push({ serial: Buffer.from(revokedSerial, 'hex'), revokedAt: NOW, reason: 'caCompromise' });
      async function* batches() {
        for (let i = 0; i < all.length; i += 1000) {
          await new Promise((r) => setImmediate(r));
          yield all.slice(i, i + 1000);
        }
      }
      const common = {
        issuerNameDer: ca.nameDer,
        issuerKeyId: ca.keyId,
        number: 7n,
        thisUpdate: new Date(Date.now() - HOUR),
        nextUpdate: new Date(Date.now() + HOUR),
        distributionPointUrl: CRL_URL,
        signer: ca.signer,
      };
      const fromBatches = await buildCrl({ ...common, entries: batches() });
      const fromArray = await buildCrl({ ...common, entries: all });
      assert.ok(crlParts(fromBatches).tbs.equals(crlParts(fromArray).tbs));
      // A sync generator of single entries, too.
      const fromGenerator = await buildCrl({
        ...common,
        entries: (function* () {
          yield* all;
        })(),
      });
      assert.ok(crlParts(fromGenerator).tbs.equals(crlParts(fromArray).tbs));
      // The expectedEntries hint (written in place) changes nothing in the output, whether it
      // is exact, too high, or too low (falls back to the copy).
      for (const expectedEntries of [all.length, all.length * 10, 10, 1]) {
        const hinted = await buildCrl({ ...common, entries: batches(), expectedEntries });
        assert.ok(crlParts(hinted).tbs.equals(crlParts(fromArray).tbs), `hint ${expectedEntries}`);
        writeCrl(hinted);
        assert.match(opensslOk(ca.dir, ['crl', '-inform', 'DER', '-in', 'crl.der', '-noout', '-verify', '-CAfile', 'ca.pem']), /verify OK/);
      }
      const emptyHinted = await buildCrl({ ...common, entries: [], expectedEntries: 100 });
      assert.equal(revokedContent(emptyHinted), undefined);

      writeCrl(fromBatches);
      assert.match(opensslOk(ca.dir, ['crl', '-inform', 'DER', '-in', 'crl.der', '-noout', '-verify', '-CAfile', 'ca.pem']), /verify OK/);
      const r = openssl(ca.dir, ['verify', '-crl_check', '-CRLfile', 'crl.pem', '-CAfile', 'ca.pem', revokedLeaf]);
      assert.match(r.out, /certificate revoked/);
    });
  });
}

describe('large CRL', () => {
  let ca: TestCa;
  before(() => {
    ca = makeCa('ecdsa-p256');
  });
  after(() => rmSync(ca.dir, { recursive: true, force: true }));

  test('100,000 entries streamed in batches: well-formed, every entry present, openssl verifies it', async () => {
    const count = 100_000;
    const batchSize = 5_000;
    async function* batches() {
      for (let start = 0; start < count; start += batchSize) {
        const batch: CrlEntry[] = [];
        for (let i = start; i < start + batchSize; i++) {
          const serial = Buffer.alloc(16);
          serial.writeUInt32BE(0x80000000 + i, 0); // 16 bytes with the high bit set
          serial.writeUInt32BE(i, 12);
          batch.push({ serial, revokedAt: new Date(NOW.getTime() - i * 1000), ...(i % 2 ? { reason: 'keyCompromise' as const } : {}) });
        }
        yield batch;
      }
    }
    const crl = await buildCrl({
      issuerNameDer: ca.nameDer,
      issuerKeyId: ca.keyId,
      number: 123456789n,
      thisUpdate: new Date(Date.now() - HOUR),
      nextUpdate: new Date(Date.now() + HOUR),
      entries: batches(),
      distributionPointUrl: CRL_URL,
      signer: ca.signer,
      expectedEntries: count,
    });
    const content = revokedContent(crl)!;
    let n = 0;
    for (let p = 0; p < content.length; n++) p += readElement(content, p).length;
    assert.equal(n, count);
    writeFileSync(join(ca.dir, 'big.der'), crl);
    assert.match(opensslOk(ca.dir, ['crl', '-inform', 'DER', '-in', 'big.der', '-noout', '-verify', '-CAfile', 'ca.pem']), /verify OK/);
    assert.match(opensslOk(ca.dir, ['crl', '-inform', 'DER', '-in', 'big.der', '-noout', '-crlnumber']), /crlNumber=0x0?75BCD15\b/);
  });
});
