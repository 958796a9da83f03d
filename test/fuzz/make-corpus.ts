/**
 * Writes the hand-made part of the seed corpus (test/fuzz/corpus/): the hostile cases of issue 12
 * and what fuzzing found, each a valid request with one element made non-DER or hostile and
 * then signed again, so the parser has to judge that element rather than stop at the signature.
 * The keys are thrown away; the requests stay verifiable. Run once, commit the files:
 *
 *   node --import tsx test/fuzz/make-corpus.ts
 *
 * (`npm run fuzz` adds the failing inputs it finds next to these as found-<sha>.der|json.)
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildCsr, csrInfo, oid, OIDS, seq, set, signCsr, signingKeys, type CsrSpec } from './lib/build.js';
import { encodeTree, flatten, parseTree, tlvBytes as tlv } from './lib/der-tree.js';
import { CORPUS_DIR, ROOT } from './lib/paths.js';

const write = (target: string, name: string, data: Buffer | string) => {
  mkdirSync(join(CORPUS_DIR, target), { recursive: true });
  writeFileSync(join(CORPUS_DIR, target, name), data);
};

signingKeys();
const base: CsrSpec = { key: 'p256', subject: [[OIDS.cn, 0x0c, 'a.example.com']], sans: [{ type: 'dns', value: 'a.example.com' }] };
const info = csrInfo(base);
const signed = (i: Buffer) => signCsr(i, 'p256');
/** The request info with the first occurrence of `from` in its content replaced by `to`, re-wrapped and signed again. */
const patched = (from: string, to: string) => {
  const body = info.subarray(info[1]! & 0x80 ? 2 + (info[1]! & 0x7f) : 2);
  const f = Buffer.from(from, 'hex');
  const at = body.indexOf(f);
  if (at < 0) throw new Error(`pattern ${from} not in the request info`);
  return signed(tlv(0x30, Buffer.concat([body.subarray(0, at), Buffer.from(to, 'hex'), body.subarray(at + f.length)])));
};
/** The base request with one more requested extension (after the SAN), signed. */
const withExt = (ext: Buffer) => {
  const san = seq(oid(OIDS.san), tlv(0x04, seq(tlv(0x82, Buffer.from('a.example.com')))));
  const attrs = tlv(0xa0, seq(oid(OIDS.extensionRequest), set(seq(san, ext))));
  return signed(seq(Buffer.from([2, 1, 0]), seq(set(seq(oid(OIDS.cn), tlv(0x0c, Buffer.from('a.example.com'))))), signingKeys().p256.spki, attrs));
};

// ---- csr: issue 12 ------------------------------------------------------------------------------

// #1: the EC point at infinity (BIT STRING 00 00), the issue's own request, and P-384/P-521 forms.
write(
  'csr',
  'issue12-infinity-key-p256.der',
  Buffer.from('MFMwOgIBADAYMRYwFAYDVQQDDA1hLmV4YW1wbGUuY29tMBkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDAgAAoAAwCgYIKoZIzj0EAwIDCQAwBgIBAQIBAQ==', 'base64'),
);
for (const [name, curve, sigAlg] of [
  ['p384', OIDS.p384, OIDS.ecdsaSha384],
  ['p521', OIDS.p521, OIDS.ecdsaSha512],
] as const) {
  const spki = seq(seq(oid(OIDS.ecPublicKey), oid(curve)), Buffer.from([0x03, 0x02, 0x00, 0x00]));
  const i = seq(Buffer.from([2, 1, 0]), seq(set(seq(oid(OIDS.cn), tlv(0x0c, Buffer.from('a.example.com'))))), spki, tlv(0xa0));
  write('csr', `issue12-infinity-key-${name}.der`, seq(i, seq(oid(sigAlg)), tlv(0x03, Buffer.from('003006020101020101', 'hex'))));
}
// #10: non-DER requests that were issued.
const infoBody = info.subarray(info[1]! & 0x80 ? 2 + (info[1]! & 0x7f) : 2);
write(
  'csr',
  'issue12-non-minimal-length-outer.der',
  (() => {
    const s = signed(info);
    const body = s.subarray(s[1]! & 0x80 ? 2 + (s[1]! & 0x7f) : 2);
    return Buffer.concat([Buffer.from([0x30, 0x84]), Buffer.from([0, 0, body.length >> 8, body.length & 0xff]), body]);
  })(),
);
write('csr', 'issue12-non-minimal-length-info.der', signed(Buffer.concat([Buffer.from([0x30, 0x82, infoBody.length >> 8, infoBody.length & 0xff]), infoBody])));
write('csr', 'issue12-integer-version-0000.der', patched('020100', '02020000'));
write(
  'csr',
  'issue12-padded-oid-arc-cn.der',
  (() => {
    // The commonName attribute type 2.5.4.3 with its first arc padded: 06 04 80 55 04 03.
    const tree = parseTree(info)!;
    const cn = flatten(tree).find((x) => x.node.tag === 0x06 && x.node.content?.equals(Buffer.from('550403', 'hex')))!.node;
    cn.content = Buffer.from('80550403', 'hex');
    return signed(encodeTree(tree));
  })(),
);
// Extension { keyUsage, BOOLEAN FALSE, OCTET STRING }: DER omits the DEFAULT.
write('csr', 'issue12-explicit-critical-false.der', withExt(seq(oid(OIDS.keyUsage), Buffer.from([1, 1, 0]), tlv(0x04, Buffer.from('03020780', 'hex')))));
write('csr', 'issue12-boolean-01-critical.der', withExt(seq(oid(OIDS.keyUsage), Buffer.from([1, 1, 1]), tlv(0x04, Buffer.from('03020780', 'hex')))));
write('csr', 'issue12-empty-oid-extension.der', withExt(seq(Buffer.from([6, 0]), tlv(0x04, Buffer.from('0500', 'hex')))));
write(
  'csr',
  'issue12-non-minimal-integer-in-extension.der',
  withExt(seq(oid(OIDS.basicConstraints), tlv(0x04, seq(Buffer.from([1, 1, 0xff]), Buffer.from([2, 2, 0, 0]))))),
);
// The GeneralNames SEQUENCE inside the SAN extnValue with a long-form length for 15.
write(
  'csr',
  'issue12-non-minimal-length-in-san.der',
  (() => {
    const names = tlv(0x82, Buffer.from('a.example.com'));
    const san = seq(oid(OIDS.san), tlv(0x04, Buffer.concat([Buffer.from([0x30, 0x81, names.length]), names])));
    const attrs = tlv(0xa0, seq(oid(OIDS.extensionRequest), set(seq(san))));
    return signed(seq(Buffer.from([2, 1, 0]), seq(set(seq(oid(OIDS.cn), tlv(0x0c, Buffer.from('a.example.com'))))), signingKeys().p256.spki, attrs));
  })(),
);

// ---- csr: found by fuzzing ----------------------------------------------------------------------

// An ignored extension whose value uses an indefinite length / overruns: accepted (BER parse).
write('csr', 'found-indefinite-length-in-extension.der', withExt(seq(oid('1.2.3.4'), tlv(0x04, Buffer.from('3080020100 0000'.replace(/\s/g, ''), 'hex')))));
// A `critical` BOOLEAN of 20,000 bytes: accepted, and asn1js decodes a BOOLEAN in O(n²) time —
// about a second of event-loop time per request here, and the 64 KiB CSR limit allows three times that
// length (time grows with its square).
write(
  'csr',
  'found-slow-20k-boolean-critical.der',
  withExt(seq(oid(OIDS.keyUsage), tlv(0x01, Buffer.alloc(20_000, 0x4c)), tlv(0x04, Buffer.from('03020780', 'hex')))),
);
// 3,000 nested SEQUENCEs in an ignored extension value.
write(
  'csr',
  'found-deep-nesting-in-extension.der',
  (() => {
    let inner: Buffer = Buffer.from([5, 0]);
    for (let k = 0; k < 3000; k++) inner = seq(inner);
    return withExt(seq(oid('1.2.3.4'), tlv(0x04, inner)));
  })(),
);
// A well-formed control: every property must hold for it.
write(
  'csr',
  'valid-p256-all-san-types.der',
  buildCsr({
    ...base,
    sans: [
      { type: 'dns', value: 'a.example.com' },
      { type: 'ip', value: '10.0.0.1' },
      { type: 'email', value: 'a@example.com' },
      { type: 'uri', value: 'https://a.example.com/' },
    ],
  }),
);

// ---- ocsp-request: real OpenSSL requests, and what fuzzing found ------------------------------------

const tmp = mkdtempSync(join(tmpdir(), 'signet-corpus-'));
try {
  const ca = join(ROOT, 'certs-fixtures', 'ca-name-constraints.pem');
  for (const [name, args] of [
    ['openssl-sha1-nonce', ['-serial', '0x0123456789abcdef']],
    ['openssl-sha256-no-nonce', ['-no_nonce', '-sha256', '-serial', '0x0123456789abcdef']],
    ['openssl-two-serials', ['-serial', '0x0123456789abcdef', '-serial', '0x02']],
  ] as const) {
    const out = join(tmp, `${name}.der`);
    execFileSync('openssl', ['ocsp', '-issuer', ca, ...args, '-reqout', out], { stdio: 'ignore' });
    write('ocsp-request', `${name}.der`, readFileSync(out));
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
const certId = seq(seq(oid(OIDS.sha1), Buffer.from([5, 0])), tlv(0x04, Buffer.alloc(20, 1)), tlv(0x04, Buffer.alloc(20, 2)), tlv(0x02, Buffer.from([1])));
write(
  'ocsp-request',
  'found-explicit-critical-false-nonce.der',
  seq(seq(seq(seq(certId)), tlv(0xa2, seq(seq(oid(OIDS.ocspNonce), Buffer.from([1, 1, 0]), tlv(0x04, tlv(0x04, Buffer.alloc(16, 7)))))))),
);
write(
  'ocsp-request',
  'found-padded-oid-arc-extension.der',
  seq(
    seq(seq(seq(certId)), tlv(0xa2, seq(seq(Buffer.from('060a2b8006010505073001 02'.replace(/\s/g, ''), 'hex'), tlv(0x04, tlv(0x04, Buffer.alloc(16, 7))))))),
  ),
);
write('ocsp-request', 'found-empty-requestor-name.der', seq(seq(tlv(0xa1), seq(seq(certId)))));
write(
  'ocsp-request',
  'found-garbage-in-optional-signature.der',
  seq(seq(seq(seq(certId))), tlv(0xa0, Buffer.from('3084ff300a06082a8648ce3d040302030400010203', 'hex'))),
);

// ---- names: the slow BOOLEAN inside a name-constraints extension (an admin's CA import) ---------

const ncBool = seq(tlv(0xa0, seq(tlv(0x82, Buffer.from('corp.example')), tlv(0x01, Buffer.alloc(20_000, 0x4c)))));
write('names', 'found-slow-20k-boolean-in-name-constraints.json', JSON.stringify({ op: 'parseNc', der: { $hex: ncBool.toString('hex') } }));

process.stdout.write(`corpus written under ${CORPUS_DIR}\n`);
