/**
 * Micro-benchmark: envelopes per second of cms-recipients.ts envelop(), single thread, one
 * recipient each (a key-group welcome message: a 32-byte node key plus a little framing),
 * for P-256, P-384 and RSA-2048 certificates (prepared once) and an AES-256 KEK; and the cost
 * of preparing a certificate recipient; and the two ways node offers an ephemeral-static ECDH
 * (what keyAgree in cms-recipients.ts chose between). Certificates are made with @peculiar/x509.
 *
 *   nice node --import tsx bench/micro/cms-recipients.ts [iterations]
 */
import 'reflect-metadata';
import { createECDH, diffieHellman, generateKeyPairSync, randomBytes, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { envelop, prepareRecipient, type GroupRecipient, type PreparedRecipient } from '../../src/pki/cms-recipients.js';

const N = Number(process.argv[2] ?? 3000);
x509.cryptoProvider.set(webcrypto as Crypto);

async function selfSigned(alg: EcKeyGenParams | RsaHashedKeyGenParams, signingAlgorithm: Algorithm | EcdsaParams): Promise<Uint8Array> {
  const keys = (await webcrypto.subtle.generateKey(alg, false, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomBytes(8)
      .toString('hex')
      .replace(/^[89a-f]/, '1'),
    name: 'CN=bench',
    notBefore: new Date(),
    notAfter: new Date(Date.now() + 86_400_000),
    keys,
    signingAlgorithm,
  });
  return new Uint8Array(cert.rawData);
}

const certs: Record<string, Uint8Array> = {
  'P-256': await selfSigned({ name: 'ECDSA', namedCurve: 'P-256' }, { name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams),
  'P-384': await selfSigned({ name: 'ECDSA', namedCurve: 'P-384' }, { name: 'ECDSA', hash: 'SHA-384' } as EcdsaParams),
  'RSA-2048': await selfSigned(
    { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
    { name: 'RSASSA-PKCS1-v1_5' },
  ),
};
const content = randomBytes(96);

function rate(name: string, n: number, f: () => unknown): void {
  for (let i = 0; i < Math.min(200, n); i++) f(); // warm-up
  const t = performance.now();
  for (let i = 0; i < n; i++) f();
  const ms = performance.now() - t;
  console.log(`${name.padEnd(36)} ${((n / ms) * 1000).toFixed(0).padStart(7)} /s  ${((ms / n) * 1000).toFixed(1).padStart(7)} µs`);
}

console.log(`node ${process.version}, ${N} iterations, one thread`);
for (const [name, der] of Object.entries(certs)) {
  const prepared: PreparedRecipient = prepareRecipient({ kind: 'certificate', certificateDer: der });
  rate(`envelop, ${name} (prepared)`, name === 'P-384' ? Math.ceil(N / 5) : N, () => envelop(content, [prepared]));
}
const kek: GroupRecipient = { kind: 'kek', keyId: randomBytes(8), key: randomBytes(32) };
const preparedKek = prepareRecipient(kek);
rate('envelop, KEK (prepared)', N, () => envelop(content, [preparedKek]));
rate('envelop, KEK (unprepared)', N, () => envelop(content, [kek]));
rate('envelop, P-256 (unprepared)', N, () => envelop(content, [{ kind: 'certificate', certificateDer: certs['P-256']! }]));
rate('prepareRecipient, P-256 certificate', N, () => prepareRecipient({ kind: 'certificate', certificateDer: certs['P-256']! }));

// The ephemeral-static ECDH alone, the two ways node offers, interleaved in rounds (the machine's
// load shifts over a run): generateKeyPairSync + diffieHellman + JWK point, or createECDH.
for (const [curve, ecdhName] of [
  ['P-256', 'prime256v1'],
  ['P-384', 'secp384r1'],
] as const) {
  const n = curve === 'P-384' ? Math.ceil(N / 100) : Math.ceil(N / 20);
  const peer = generateKeyPairSync('ec', { namedCurve: curve }).publicKey;
  const jwk = peer.export({ format: 'jwk' });
  const point = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
  const ways: [string, () => unknown][] = [
    [
      'KeyObject + diffieHellman',
      () => {
        const eph = generateKeyPairSync('ec', { namedCurve: curve });
        eph.publicKey.export({ format: 'jwk' });
        return diffieHellman({ privateKey: eph.privateKey, publicKey: peer });
      },
    ],
    [
      'createECDH',
      () => {
        const eph = createECDH(ecdhName);
        eph.generateKeys();
        return eph.computeSecret(point);
      },
    ],
  ];
  const total = new Map<string, number>();
  for (let round = 0; round < 20; round++)
    for (const [name, f] of ways) {
      const t = performance.now();
      for (let i = 0; i < n; i++) f();
      total.set(name, (total.get(name) ?? 0) + performance.now() - t);
    }
  for (const [name] of ways) console.log(`ECDH ${curve}: ${name}`.padEnd(36), `${(((total.get(name) ?? 0) / (20 * n)) * 1000).toFixed(1).padStart(16)} µs`);
}
