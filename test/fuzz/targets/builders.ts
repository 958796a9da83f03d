/**
 * The CRL and OCSP response builders (src/pki/crl.ts buildCrl/encodeCrlEntry, src/pki/ocsp.ts
 * encodeSingleResponse/buildBasicOcspResponse). Their input comes from Signet itself (the
 * database, the clock), so the property is about output, not refusal:
 *  - they return, or throw a SignetError for parameters they cannot encode (never another error);
 *  - what they return is canonical DER that the schema parsers (@peculiar/asn1-x509,
 *    @peculiar/asn1-ocsp) read back to the same serials, times, reasons, numbers and nonce, and
 *    whose signature verifies with the signer's key (parse(serialize(x)) = x);
 *  - the bulk CRL path equals the reference encoder entry by entry, with or without a size hint.
 */
import { generateKeyPairSync, verify, type KeyObject } from 'node:crypto';
import fc from 'fast-check';
import { AsnConvert } from '@peculiar/asn1-schema';
import { CertificateList, CRLReason, InvalidityDate, id_ce_cRLReasons, id_ce_cRLNumber, id_ce_invalidityDate } from '@peculiar/asn1-x509';
import { BasicOCSPResponse, OCSPResponse } from '@peculiar/asn1-ocsp';
import { SignetError } from '../../../src/errors.js';
import { buildCrl, encodeCrlEntry, REASON_CODES, REVOCATION_REASONS, type CrlEntry, type RevocationReason } from '../../../src/pki/crl.js';
import { buildBasicOcspResponse, encodeCertId, encodeSingleResponse, type OcspCertStatus } from '../../../src/pki/ocsp.js';
import { ownKey, signerFor, type Signer } from '../../../src/pki/keys.js';
import { corpusSeeds } from '../lib/arbitraries.js';
import { OIDS, oid, seq, set } from '../lib/build.js';
import { derProblem, lenientHeader, tlvBytes as tlv } from '../lib/der-tree.js';
import { assertThat, describeError, jsonCodec, timedAsync, Violation, type Target } from '../lib/target.js';

type KeyKind = 'p256' | 'p384' | 'ed25519' | 'rsa2048';
interface EntryInput {
  serial: Buffer;
  revokedAt: number;
  reason?: RevocationReason;
  invalidityDate?: number;
}
type BuildersInput =
  | { kind: 'crl'; key: KeyKind; number: string; thisUpdate: number; nextUpdate: number; entries: EntryInput[]; dp?: string; hint?: number }
  | {
      kind: 'ocsp';
      key: KeyKind;
      serial: Buffer;
      status: 'good' | 'unknown' | 'revoked';
      revokedAt: number;
      reason?: RevocationReason;
      thisUpdate: number;
      nextUpdate: number;
      producedAt: number;
      nonce?: Buffer;
    };

let signers: Record<KeyKind, { signer: Signer; pub: KeyObject }> | undefined;
function keyset() {
  if (signers) return signers;
  const mk = (k: KeyKind) => {
    const pair =
      k === 'ed25519'
        ? generateKeyPairSync('ed25519')
        : k === 'rsa2048'
          ? generateKeyPairSync('rsa', { modulusLength: 2048 })
          : generateKeyPairSync('ec', { namedCurve: k === 'p256' ? 'P-256' : 'P-384' });
    return { signer: signerFor(ownKey(pair.privateKey)), pub: pair.publicKey };
  };
  signers = { p256: mk('p256'), p384: mk('p384'), ed25519: mk('ed25519'), rsa2048: mk('rsa2048') };
  return signers;
}

const NAME = seq(set(seq(oid(OIDS.cn), tlv(0x13, Buffer.from('Signet Fuzz CA')))));
const strip = (b: Buffer) => {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
};
const seconds = (ms: number) => Math.floor(ms / 1000) * 1000;

/** Runs a builder: its result, or null for a SignetError; any other throw is a violation. */
async function build<R>(what: string, fn: () => R | Promise<R>): Promise<R | null> {
  try {
    return await timedAsync(async () => fn());
  } catch (e) {
    if (e instanceof SignetError) return null;
    throw new Violation(`${what} threw ${describeError(e)} instead of a SignetError`, { cause: e, key: `${what} threw ${(e as Error).name}` });
  }
}

/** The first element inside the SEQUENCE `der`, as encoded (the signed part of a CRL or BasicOCSPResponse). */
function firstChild(der: Buffer): Buffer {
  const outer = lenientHeader(der, 0)!;
  const inner = lenientHeader(der, outer.headerLength)!;
  return der.subarray(inner.start, inner.end);
}

function verifies(pub: KeyObject, tbs: Buffer, sig: Buffer): boolean {
  const hash =
    pub.asymmetricKeyType === 'ed25519' ? null : pub.asymmetricKeyType === 'ec' && pub.asymmetricKeyDetails?.namedCurve === 'secp384r1' ? 'sha384' : 'sha256';
  return verify(hash, tbs, pub.asymmetricKeyType === 'ec' ? { key: pub, dsaEncoding: 'der' } : pub, sig);
}

async function checkCrl(x: Extract<BuildersInput, { kind: 'crl' }>): Promise<void> {
  const { signer, pub } = keyset()[x.key];
  const entries: CrlEntry[] = x.entries.map((e) => ({
    serial: e.serial,
    revokedAt: new Date(e.revokedAt),
    ...(e.reason ? { reason: e.reason } : {}),
    ...(e.invalidityDate !== undefined ? { invalidityDate: new Date(e.invalidityDate) } : {}),
  }));
  const params = {
    issuerNameDer: NAME,
    issuerKeyId: Buffer.alloc(20, 9),
    number: BigInt(x.number),
    thisUpdate: new Date(x.thisUpdate),
    nextUpdate: new Date(x.nextUpdate),
    entries,
    signer,
    ...(x.dp ? { distributionPointUrl: x.dp } : {}),
  };
  const der = await build('buildCrl', () => buildCrl({ ...params, ...(x.hint !== undefined ? { expectedEntries: x.hint } : {}) }));
  const valid =
    params.number >= 0n &&
    params.number < 1n << 159n &&
    x.nextUpdate > x.thisUpdate &&
    (x.dp === undefined || /^[\x21-\x7e]+$/.test(x.dp)) &&
    entries.every((e) => e.serial.length > 0);
  assertThat(der !== null || !valid, 'buildCrl refused valid parameters');
  if (!der) return;
  const problem = derProblem(der);
  assertThat(problem === null, `buildCrl wrote a CRL that is not DER: ${problem}`);
  let crl: CertificateList;
  try {
    crl = AsnConvert.parse(der, CertificateList);
  } catch (e) {
    throw new Violation(`buildCrl wrote a CRL the schema parser cannot read: ${(e as Error).message}`);
  }
  const tbs = crl.tbsCertList;
  assertThat(verifies(pub, firstChild(der), Buffer.from(crl.signature)), 'the CRL signature does not verify');
  assertThat(
    tbs.thisUpdate.getTime().getTime() === seconds(x.thisUpdate) && tbs.nextUpdate?.getTime().getTime() === seconds(x.nextUpdate),
    'CRL thisUpdate/nextUpdate do not read back',
  );
  const num = tbs.crlExtensions?.find((e) => e.extnID === id_ce_cRLNumber);
  const numDer = num ? Buffer.from(num.extnValue.buffer) : Buffer.alloc(0);
  assertThat(
    numDer[0] === 0x02 && BigInt(`0x${numDer.subarray(lenientHeader(numDer, 0)?.headerLength ?? 2).toString('hex') || '0'}`) === params.number,
    `cRLNumber ${x.number} does not read back`,
  );
  const got = tbs.revokedCertificates ?? [];
  assertThat(got.length === entries.length, `${entries.length} entries written, ${got.length} read back`);
  got.forEach((g, i) => {
    const e = entries[i]!;
    assertThat(
      strip(Buffer.from(g.userCertificate)).equals(strip(e.serial)),
      `entry ${i}: serial ${e.serial.toString('hex')} reads back as ${Buffer.from(g.userCertificate).toString('hex')}`,
    );
    assertThat(
      g.revocationDate.getTime().getTime() === seconds(e.revokedAt.getTime()),
      `entry ${i}: revocationDate ${e.revokedAt.toISOString()} reads back as ${g.revocationDate.getTime().toISOString()}`,
    );
    const reasonExt = g.crlEntryExtensions?.find((z) => z.extnID === id_ce_cRLReasons);
    const code = reasonExt ? AsnConvert.parse(reasonExt.extnValue.buffer, CRLReason).reason : 0;
    assertThat(code === REASON_CODES[e.reason ?? 'unspecified'], `entry ${i}: reason ${e.reason} reads back as code ${code}`);
    const inv = g.crlEntryExtensions?.find((z) => z.extnID === id_ce_invalidityDate);
    assertThat((inv === undefined) === (e.invalidityDate === undefined), `entry ${i}: invalidityDate presence differs`);
    if (inv && e.invalidityDate)
      assertThat(
        AsnConvert.parse(inv.extnValue.buffer, InvalidityDate).value.getTime() === seconds(e.invalidityDate.getTime()),
        `entry ${i}: invalidityDate does not read back`,
      );
  });
  // The bulk writer equals the reference encoder.
  const ref = Buffer.concat(entries.map(encodeCrlEntry));
  assertThat(entries.length === 0 || der.includes(ref), 'the CRL entries differ from encodeCrlEntry');
}

async function checkOcsp(x: Extract<BuildersInput, { kind: 'ocsp' }>): Promise<void> {
  const { signer, pub } = keyset()[x.key];
  const certIdDer = encodeCertId({ hashAlgorithm: 'sha1', issuerNameHash: Buffer.alloc(20, 1), issuerKeyHash: Buffer.alloc(20, 2), serial: x.serial });
  const status: OcspCertStatus =
    x.status === 'revoked' ? { kind: 'revoked', revokedAt: new Date(x.revokedAt), ...(x.reason ? { reason: x.reason } : {}) } : { kind: x.status };
  const single = await build('encodeSingleResponse', () =>
    encodeSingleResponse({ certIdDer, status, thisUpdate: new Date(x.thisUpdate), nextUpdate: new Date(x.nextUpdate) }),
  );
  const der =
    single &&
    (await build('buildBasicOcspResponse', () =>
      buildBasicOcspResponse({
        responderKeyHash: Buffer.alloc(20, 3),
        producedAt: new Date(x.producedAt),
        singleResponses: [single],
        signer,
        ...(x.nonce ? { nonce: x.nonce } : {}),
      }),
    ));
  const valid = x.nextUpdate > x.thisUpdate && (x.nonce === undefined || (x.nonce.length >= 1 && x.nonce.length <= 32));
  assertThat(der !== null || !valid, 'the OCSP builders refused valid parameters');
  if (!der) return;
  assertThat(
    derProblem(der, { encapsulated: (_p, tag, c) => tag === 0x04 && c[0] === 0x30 }) === null,
    `buildBasicOcspResponse wrote a response that is not DER: ${derProblem(der)}`,
  );
  let basic: BasicOCSPResponse;
  let resp: OCSPResponse;
  try {
    resp = AsnConvert.parse(der, OCSPResponse);
    basic = AsnConvert.parse(resp.responseBytes!.response.buffer, BasicOCSPResponse);
  } catch (e) {
    throw new Violation(`the OCSP response cannot be read by the schema parser: ${(e as Error).message}`);
  }
  assertThat(
    verifies(pub, firstChild(Buffer.from(resp.responseBytes!.response.buffer)), Buffer.from(basic.signature)),
    'the OCSP response signature does not verify',
  );
  const r = basic.tbsResponseData.responses[0]!;
  assertThat(strip(Buffer.from(r.certID.serialNumber)).equals(strip(x.serial.length ? x.serial : Buffer.from([0]))), 'the CertID serial does not read back');
  assertThat(r.thisUpdate.getTime() === seconds(x.thisUpdate) && r.nextUpdate?.getTime() === seconds(x.nextUpdate), 'thisUpdate/nextUpdate do not read back');
  assertThat(basic.tbsResponseData.producedAt.getTime() === seconds(x.producedAt), 'producedAt does not read back');
  const st = r.certStatus;
  assertThat(
    x.status === 'good'
      ? st.good !== undefined
      : x.status === 'unknown'
        ? st.unknown !== undefined
        : st.revoked?.revocationTime.getTime() === seconds(x.revokedAt),
    `status ${x.status} does not read back`,
  );
}

/**
 * Times Signet can be asked to encode: its clock plus lifetimes, and invalidityDate from a revoke
 * request, which the API limits to four-digit years (zod datetime). Years past 9999 are not
 * reachable; time()/generalizedTime() would write them as invalid 5- or 6-digit years rather than
 * refuse (noted in the fuzzing report, not exercised here). The floor is the year 1000 because
 * the oracle (asn1js) reads GeneralizedTime years below 100 as 19xx.
 */
const YEAR_0 = Date.parse('1000-01-01T00:00:00Z');
const LAST = Date.UTC(9999, 11, 31, 23, 59, 59);
const date = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: Date.UTC(1950, 0, 1), max: LAST }) },
  { weight: 1, arbitrary: fc.integer({ min: YEAR_0, max: LAST }) },
  { weight: 1, arbitrary: fc.constantFrom(Date.UTC(2049, 11, 31, 23, 59, 59), Date.UTC(2050, 0, 1), Date.UTC(1949, 11, 31, 23, 59, 59), -1, 0, YEAR_0) },
);
const serial = fc.oneof(fc.uint8Array({ minLength: 1, maxLength: 20 }), fc.uint8Array({ maxLength: 40 })).map((b) => Buffer.from(b));
const reason = fc.option(fc.constantFrom(...REVOCATION_REASONS), { nil: undefined });
const keyKind = fc.constantFrom<KeyKind>('p256', 'p384', 'ed25519', 'rsa2048');

const crlArb = fc
  .record(
    {
      kind: fc.constant('crl' as const),
      key: keyKind,
      number: fc
        .oneof(fc.bigInt({ min: 0n, max: (1n << 159n) - 1n }), fc.constantFrom(0n, 1n, 127n, 128n, 255n, 256n, (1n << 159n) - 1n, 1n << 159n, -1n))
        .map(String),
      thisUpdate: date,
      nextUpdate: date,
      entries: fc.array(
        fc.record({ serial, revokedAt: date, reason, invalidityDate: fc.option(date, { nil: undefined }) }, { requiredKeys: ['serial', 'revokedAt'] }),
        { maxLength: 40 },
      ),
      dp: fc.option(fc.constantFrom('http://127.0.0.1/pki/x.crl', 'ldap://x', 'http://a b', ''), { nil: undefined }),
      hint: fc.option(fc.oneof(fc.nat(100), fc.constantFrom(-1, 0, 1e9, Number.NaN)), { nil: undefined }),
    },
    { requiredKeys: ['kind', 'key', 'number', 'thisUpdate', 'nextUpdate', 'entries'] },
  )
  .map((x) =>
    x.nextUpdate <= x.thisUpdate && x.entries.length % 2
      ? { ...x, thisUpdate: Math.min(x.thisUpdate, LAST - 86_400_000), nextUpdate: Math.min(x.thisUpdate, LAST - 86_400_000) + 86_400_000 }
      : x,
  );

const ocspArb = fc.record(
  {
    kind: fc.constant('ocsp' as const),
    key: keyKind,
    serial,
    status: fc.constantFrom('good' as const, 'unknown' as const, 'revoked' as const),
    revokedAt: date,
    reason,
    thisUpdate: date,
    nextUpdate: date,
    producedAt: date,
    nonce: fc.option(
      fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)),
      { nil: undefined },
    ),
  },
  { requiredKeys: ['kind', 'key', 'serial', 'status', 'revokedAt', 'thisUpdate', 'nextUpdate', 'producedAt'] },
);

export const target: Target<BuildersInput> = {
  name: 'builders',
  about:
    'buildCrl / encodeCrlEntry / encodeSingleResponse / buildBasicOcspResponse: a SignetError or DER that the schema parsers read back to the same values, signature verifying',
  codec: jsonCodec<BuildersInput>(),
  setup() {
    keyset();
  },
  seeds: () => [
    {
      name: 'inline/crl',
      input: {
        kind: 'crl',
        key: 'p256',
        number: '1',
        thisUpdate: Date.UTC(2025, 0, 1),
        nextUpdate: Date.UTC(2025, 0, 8),
        entries: [{ serial: Buffer.from('00ff', 'hex'), revokedAt: Date.UTC(2024, 5, 1), reason: 'keyCompromise', invalidityDate: Date.UTC(2024, 4, 1) }],
      },
    },
    {
      name: 'inline/crl across 2050',
      input: {
        kind: 'crl',
        key: 'ed25519',
        number: '2',
        thisUpdate: Date.UTC(2049, 11, 31),
        nextUpdate: Date.UTC(2050, 0, 2),
        entries: [{ serial: Buffer.from([1]), revokedAt: Date.UTC(2050, 0, 1) }],
        hint: 1,
      },
    },
    {
      name: 'inline/ocsp',
      input: {
        kind: 'ocsp',
        key: 'rsa2048',
        serial: Buffer.from([1, 2, 3]),
        status: 'revoked',
        revokedAt: Date.UTC(2024, 0, 1),
        reason: 'superseded',
        thisUpdate: Date.UTC(2025, 0, 1),
        nextUpdate: Date.UTC(2025, 0, 2),
        producedAt: Date.UTC(2025, 0, 1),
        nonce: Buffer.alloc(16, 5),
      },
    },
    ...corpusSeeds('builders', jsonCodec<BuildersInput>()),
  ],
  arbitrary: () => fc.oneof(crlArb, ocspArb),
  check: (x) => (x.kind === 'crl' ? checkCrl(x) : checkOcsp(x)),
};
