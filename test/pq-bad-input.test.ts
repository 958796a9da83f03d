/**
 * Bad post-quantum input through REST (issue 20): each malformed ML-DSA request gets a precise
 * 400 problem+json and stores nothing. The installation is post-quantum only (an ML-DSA-87 root,
 * an ML-DSA-65 issuing CA, from SIGNET_ROOT_KEY / SIGNET_INTERMEDIATE_KEY); the CSRs are built
 * with @peculiar/asn1-csr and node:crypto (helpers/pq-csr.ts), not with Signet's csr-builder.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { api, signet, startServer, type RunningServer } from './helpers/cli.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';
import { TempDir } from './helpers/openssl.js';
import { countRows } from './helpers/sql.js';
import { ML_DSA_OID, ML_KEM_768_OID, pqCsr, withNullParameters } from './helpers/pq-csr.js';

const base = { requireSan: true, sanTypes: ['dns'], defaultValidityDays: 30, maxValidityDays: 90, extKeyUsage: ['serverAuth'] };

describe('post-quantum bad input over REST: precise 400s, nothing stored', () => {
  let env: TestEnv;
  let server: RunningServer;
  const tmp = new TempDir();
  let rootId: string;

  before(async () => {
    env = await createTestEnv({
      SIGNET_ROOT_KEY: 'ml-dsa-87',
      SIGNET_INTERMEDIATE_KEY: 'ml-dsa-65',
      SIGNET_PROFILES_FILE: tmp.file(
        'profiles.json',
        JSON.stringify({
          pq: { ...base, keyTypes: ['ml-dsa'] },
          'pq-encipher': { ...base, keyTypes: ['ml-dsa'], keyUsage: ['digitalSignature', 'keyEncipherment'] },
        }),
      ),
    });
    server = await startServer(env.env);
    rootId = JSON.parse(signet(['ca', 'list', '--json'], env.env).stdout).find((c: { parentId: string | null }) => c.parentId === null).id;
  });
  after(async () => {
    await server?.stop();
    await env?.cleanup();
    tmp.remove();
  });

  /** POSTs a CSR and checks the 400 problem and that no certificate (nor CA) was stored. */
  async function refused(csr: string, profile: string, detail: string) {
    const before = { certs: await countRows(env, 'Certificate'), cas: await countRows(env, 'CertificateAuthority') };
    const r = await api(server, 'POST', '/api/v1/certificates', { csr, profile });
    assert.equal(r.status, 400, r.text);
    assert.match(r.headers.get('content-type')!, /^application\/problem\+json/);
    assert.equal(r.json.detail, detail);
    assert.deepEqual({ certs: await countRows(env, 'Certificate'), cas: await countRows(env, 'CertificateAuthority') }, before);
    return r.json;
  }

  test('a well-formed ML-DSA-65 CSR is issued (the baseline every refusal below differs from by one thing)', async () => {
    const r = await api(server, 'POST', '/api/v1/certificates', { csr: pqCsr(['ok.example']).pem, profile: 'pq' });
    assert.equal(r.status, 201, r.text);
  });

  test('the CSR signature does not verify (one byte flipped)', async () => {
    await refused(pqCsr(['flip.example'], { flipSignature: true }).pem, 'pq', 'CSR signature does not verify (proof of possession failed)');
  });

  test('a truncated ML-DSA-65 public key', async () => {
    await refused(
      pqCsr(['short.example'], { spki: (s) => void (s.subjectPublicKey = s.subjectPublicKey.slice(0, 1000)) }).pem,
      'pq',
      'public key could not be decoded: an ML-DSA-65 public key is 1952 bytes, found 1000',
    );
  });

  test('NULL parameters in the SubjectPublicKeyInfo algorithm', async () => {
    await refused(pqCsr(['params.example'], { spki: withNullParameters }).pem, 'pq', 'ML-DSA-65 key has algorithm parameters; they must be absent (RFC 9881)');
  });

  test('NULL parameters in the CSR signature algorithm', async () => {
    await refused(
      pqCsr(['sigparams.example'], { signatureParamsNull: true }).pem,
      'pq',
      'signature algorithm ML-DSA-65 has unexpected parameters; they must be absent',
    );
  });

  test('an ML-DSA-65 key labelled with the ML-DSA-44 OID', async () => {
    await refused(
      pqCsr(['level.example'], { spki: (s) => void (s.algorithm.algorithm = ML_DSA_OID['ml-dsa-44']), signatureOid: ML_DSA_OID['ml-dsa-44'] }).pem,
      'pq',
      'the key is 1952 bytes, an ML-DSA-65 key, but its OID says ML-DSA-44 (1312 bytes)',
    );
  });

  test('an ML-KEM-768 key in a CSR (it cannot sign one: the request is signed by another key)', async () => {
    const kem = generateKeyPairSync('ml-kem-768' as 'ed25519').publicKey.export({ format: 'der', type: 'spki' });
    await refused(
      pqCsr(['kem.example'], {
        spki: (s) => {
          s.algorithm.algorithm = ML_KEM_768_OID;
          s.subjectPublicKey = new Uint8Array(kem.subarray(kem.length - 1184)).buffer;
        },
      }).pem,
      'pq',
      'an ML-KEM key cannot sign, so no CSR can prove its possession; ask for server-side key generation instead',
    );
  });

  test('a profile asking keyEncipherment for an ML-DSA key: issuance refused', async () => {
    await refused(pqCsr(['encipher.example']).pem, 'pq-encipher', 'profile pq-encipher asks for keyEncipherment, which ml-dsa-65 keys cannot do');
  });

  test('a classical intermediate under the ML-DSA root (POST /api/v1/cas): refused by the key policy, no CA made', async () => {
    const before = await countRows(env, 'CertificateAuthority');
    const r = await api(server, 'POST', '/api/v1/cas', { parentId: rootId, subject: 'CN=Classical under PQ', keyAlgorithm: 'ecdsa-p256' });
    assert.equal(r.status, 400, r.text);
    assert.match(r.headers.get('content-type')!, /^application\/problem\+json/);
    assert.equal(
      r.json.detail,
      `CA ${rootId}'s policy refuses the new CA key: a classical CA key (ecdsa-p256) is not allowed under a post-quantum parent (ml-dsa-87); use ml-dsa-44, ml-dsa-65 or ml-dsa-87`,
    );
    assert.equal(await countRows(env, 'CertificateAuthority'), before);
    // The same parent takes an ML-DSA-44 intermediate (NIST category 1 under 5 is the operator's choice, as P-256 under P-384).
    const ok = await api(server, 'POST', '/api/v1/cas', { parentId: rootId, subject: 'CN=PQ Int 2', keyAlgorithm: 'ml-dsa-44' });
    assert.equal(ok.status, 201, ok.text);
  });
});
