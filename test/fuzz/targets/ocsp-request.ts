/**
 * The OCSP request parser (src/pki/ocsp.ts parseOcspRequest), the hand-written strict DER walker
 * on the public, unauthenticated /ocsp endpoint.
 *
 * Properties, for any bytes:
 *  - it returns, or throws OcspMalformed (→ malformedRequest) or OcspUnknownHashAlgorithm
 *    (→ unauthorized), its documented refusals; never another exception;
 *  - what it accepts is canonical DER (it claims to be strict), and the schema parser
 *    (@peculiar/asn1-ocsp) reads the same bytes to the same CertIDs, serials and nonce;
 *  - parse(serialize(x)): each CertID it returns, re-encoded with encodeCertId into a fresh
 *    request, parses back to the same fields; the CertID bytes it returns are a slice of the input.
 */
import fc from 'fast-check';
import { AsnConvert } from '@peculiar/asn1-schema';
import { OCSPRequest } from '@peculiar/asn1-ocsp';
import { encodeCertId, OcspMalformed, OcspUnknownHashAlgorithm, parseOcspRequest, type ParsedOcspRequest } from '../../../src/pki/ocsp.js';
import { corpusSeeds, mutationSteps } from '../lib/arbitraries.js';
import { mutateWhole, ocspRequest, OIDS, seq, type CertIdSpec, type OcspRequestSpec } from '../lib/build.js';
import { derProblem, parseTree } from '../lib/der-tree.js';
import { assertThat, bytesCodec, describeError, timed, Violation, type Target } from '../lib/target.js';

const HASH_OIDS: Record<string, string> = { sha1: OIDS.sha1, sha256: OIDS.sha256, sha384: OIDS.sha384, sha512: OIDS.sha512 };
const strip = (b: Buffer) => {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
};

function parse(bytes: Buffer): ParsedOcspRequest | null {
  try {
    return timed(() => parseOcspRequest(bytes));
  } catch (e) {
    if (e instanceof OcspMalformed || e instanceof OcspUnknownHashAlgorithm) return null;
    throw new Violation(`parseOcspRequest threw ${describeError(e)}; only OcspMalformed or OcspUnknownHashAlgorithm are answers`, {
      cause: e,
      key: `parseOcspRequest threw ${(e as Error).name}`,
    });
  }
}

function hasSingleRequestExtensions(bytes: Buffer): boolean {
  const tbs = parseTree(bytes)?.kids?.[0];
  const list = tbs?.kids?.find((k) => k.tag === 0x30);
  return Boolean(list?.kids?.some((req) => (req.kids?.length ?? 0) > 1));
}

function check(bytes: Buffer): void {
  const r = parse(bytes);
  if (!r) return;
  // The nonce's extnValue holds DER (an OCTET STRING); so does every extension's.
  // Extension values are opaque here (the parser checks the nonce's inner OCTET STRING itself).
  const problem = derProblem(bytes);
  assertThat(problem === null, `parseOcspRequest accepted a request that is not DER: ${problem}`);

  // @peculiar/asn1-ocsp 2.6 declares singleRequestExtensions without its [0] EXPLICIT tag, so it
  // cannot read requests that carry them: no schema cross-check for those (a library bug, not ours).
  if (hasSingleRequestExtensions(bytes)) return;
  let schema: OCSPRequest;
  try {
    schema = AsnConvert.parse(bytes, OCSPRequest);
  } catch (e) {
    throw new Violation(`parseOcspRequest accepted a request the schema parser refuses: ${(e as Error).message}`, {
      key: 'parseOcspRequest accepted a request the schema parser refuses',
    });
  }
  const list = schema.tbsRequest.requestList;
  assertThat(list.length === r.requests.length, `${r.requests.length} CertIDs parsed, the schema reads ${list.length}`);
  r.requests.forEach((q, i) => {
    const s = list[i]!.reqCert;
    assertThat(s.hashAlgorithm.algorithm === HASH_OIDS[q.hashAlgorithm], `CertID ${i}: hash ${q.hashAlgorithm}, the schema reads ${s.hashAlgorithm.algorithm}`);
    assertThat(
      Buffer.from(s.issuerNameHash.buffer).equals(q.issuerNameHash) && Buffer.from(s.issuerKeyHash.buffer).equals(q.issuerKeyHash),
      `CertID ${i}: issuer hashes differ from the schema's`,
    );
    assertThat(
      strip(Buffer.from(s.serialNumber)).equals(q.serial),
      `CertID ${i}: serial ${q.serial.toString('hex')}, the schema reads ${Buffer.from(s.serialNumber).toString('hex')}`,
    );
    assertThat(bytes.includes(q.certIdDer), `CertID ${i}: certIdDer is not a slice of the request`);
    // Round trip through the encoder and the parser.
    const again = parse(seq(seq(seq(seq(encodeCertId(q))))));
    assertThat(again !== null && again.requests.length === 1, `CertID ${i}, re-encoded by encodeCertId, does not parse`);
    const a = again.requests[0]!;
    assertThat(
      a.hashAlgorithm === q.hashAlgorithm && a.serial.equals(q.serial) && a.issuerNameHash.equals(q.issuerNameHash) && a.issuerKeyHash.equals(q.issuerKeyHash),
      `CertID ${i} does not survive encodeCertId → parseOcspRequest`,
    );
  });
  const ext = schema.tbsRequest.requestExtensions?.find((e) => e.extnID === OIDS.ocspNonce);
  const schemaNonce = ext ? Buffer.from(ext.extnValue.buffer).subarray(2) : undefined;
  assertThat(
    (r.nonce === undefined) === (schemaNonce === undefined) && (!r.nonce || r.nonce.equals(schemaNonce!)),
    `nonce ${r.nonce?.toString('hex')} differs from the schema's ${schemaNonce?.toString('hex')}`,
  );
}

const certIdSpec: fc.Arbitrary<CertIdSpec> = fc.record({
  hash: fc.constantFrom('sha1', 'sha1', 'sha256', 'sha384', 'sha512', 'md5'),
  nameHash: fc.oneof(fc.constant(20), fc.constant(32), fc.nat({ max: 70 })).map((n) => Buffer.alloc(n, 0x11)),
  keyHash: fc.oneof(fc.constant(20), fc.constant(32), fc.nat({ max: 70 })).map((n) => Buffer.alloc(n, 0x22)),
  serial: fc.uint8Array({ maxLength: 24 }).map((b) => Buffer.from(b)),
  nullParams: fc.boolean(),
});

const requestSpec: fc.Arbitrary<OcspRequestSpec> = fc.record({
  version: fc.boolean(),
  requestorName: fc.boolean(),
  certIds: fc.array(certIdSpec, { minLength: 0, maxLength: 3 }),
  nonce: fc.option(
    fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)),
    { nil: undefined },
  ),
  extensions: fc.array(
    fc.tuple(
      fc.constantFrom('1.3.6.1.5.5.7.48.1.4', '1.2.3.4', OIDS.ocspNonce),
      fc.boolean(),
      fc.constantFrom(Buffer.from('3000', 'hex'), Buffer.from('0400', 'hex'), Buffer.from('0401ff', 'hex')),
    ),
    { maxLength: 2 },
  ),
  singleExtensions: fc.boolean(),
  signature: fc.boolean(),
});

const typical = (hash: CertIdSpec['hash'], n: number, nonce?: Buffer): Buffer =>
  ocspRequest({
    certIds: [
      { hash, nameHash: Buffer.alloc(n, 1), keyHash: Buffer.alloc(n, 2), serial: Buffer.from('0123456789abcdef0123456789abcdef', 'hex'), nullParams: true },
    ],
    ...(nonce ? { nonce } : {}),
  });

export const target: Target<Buffer> = {
  name: 'ocsp-request',
  about:
    'parseOcspRequest (src/pki/ocsp.ts): OcspMalformed/OcspUnknownHashAlgorithm or a result; accepted ⇒ strict DER and equal to the schema parse; encodeCertId round trip',
  codec: bytesCodec,
  seeds() {
    return [
      { name: 'generated/sha1', input: typical('sha1', 20) },
      { name: 'generated/sha256 with nonce', input: typical('sha256', 32, Buffer.alloc(16, 7)) },
      { name: 'generated/33-byte nonce', input: typical('sha1', 20, Buffer.alloc(33, 7)) },
      { name: 'generated/md5 CertID', input: typical('md5', 16) },
      {
        name: 'generated/40 CertIDs',
        input: ocspRequest({
          certIds: Array.from({ length: 40 }, () => ({
            hash: 'sha1' as const,
            nameHash: Buffer.alloc(20),
            keyHash: Buffer.alloc(20),
            serial: Buffer.from([1]),
            nullParams: true,
          })),
        }),
      },
      ...corpusSeeds('ocsp-request', bytesCodec),
    ];
  },
  arbitrary(seeds) {
    const pool = seeds.map((s) => s.input);
    return fc.oneof(
      { weight: 3, arbitrary: requestSpec.map(ocspRequest) },
      {
        weight: 4,
        arbitrary: fc.tuple(fc.oneof(requestSpec.map(ocspRequest), fc.constantFrom(...pool)), mutationSteps).map(([b, steps]) => mutateWhole(b, steps)),
      },
      { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...pool), fc.nat()).map(([b, n]) => b.subarray(0, n % (b.length + 1))) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)) },
    );
  },
  check,
};
