/**
 * Quantum-safe key groups (issue #20 item 3) against a real `signet serve`: ML-KEM-768 members
 * (certified by `signet issue --generate-key ml-kem-768`, no CSR) next to P-256 and RSA members.
 * Every welcome is opened by code nobody on the project wrote: the classical ones by
 * `openssl cms -decrypt`, the ML-KEM ones by @peculiar/asn1-cms + asn1-schema (structure),
 * @noble/post-quantum (ML-KEM-768 decapsulation, key from the PKCS#8 seed), @noble/hashes (HKDF)
 * and @noble/ciphers (AES key unwrap, AES-256-CBC). All hold one group key; removing an ML-KEM
 * member re-keys (the rest follow with the KEK-wrapped rekey message, via openssl); a changed
 * KEM ciphertext does not open; ML-KEM-512/1024 and malformed ML-KEM certificates are refused.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ContentInfo, EnvelopedData, type IssuerAndSerialNumber, RecipientIdentifier } from '@peculiar/asn1-cms';
import { AsnConvert, AsnProp, AsnPropTypes, AsnType, AsnTypeTypes, OctetString } from '@peculiar/asn1-schema';
import { AlgorithmIdentifier, Certificate, KeyUsage, KeyUsageFlags } from '@peculiar/asn1-x509';
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { aeskw, cbc } from '@noble/ciphers/aes.js';
import { api, fetchAfterBlocking, signet, startServer, type RunningServer } from './helpers/cli.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';
import { int, kids, openWithKek, readGroupKeys, rootOf, str, tlv } from './helpers/group-messages.js';
import { openssl, TempDir } from './helpers/openssl.js';
import { sql } from './helpers/sql.js';

// RFC 9629 §3 / §5, written here from the RFC's ASN.1, not taken from Signet. (The schema is
// declared by calling asn1-schema's decorators by hand: tsx compiles TC39 decorators, not legacy.)
class KEMRecipientInfo {
  version = 0;
  rid = new RecipientIdentifier();
  kem = new AlgorithmIdentifier();
  kemct = new ArrayBuffer(0);
  kdf = new AlgorithmIdentifier();
  kekLength = 0;
  ukm?: ArrayBuffer;
  wrap = new AlgorithmIdentifier();
  encryptedKey = new ArrayBuffer(0);
}
class CMSORIforKEMOtherInfo {
  wrap = new AlgorithmIdentifier();
  kekLength = 0;
  constructor(p: Partial<CMSORIforKEMOtherInfo> = {}) {
    Object.assign(this, p);
  }
}
function schema(cls: new () => object, fields: [string, Parameters<typeof AsnProp>[0]][]): void {
  AsnType({ type: AsnTypeTypes.Sequence })(cls);
  for (const [name, opts] of fields) AsnProp(opts)(cls.prototype, name);
}
schema(KEMRecipientInfo, [
  ['version', { type: AsnPropTypes.Integer }],
  ['rid', { type: RecipientIdentifier }],
  ['kem', { type: AlgorithmIdentifier }],
  ['kemct', { type: AsnPropTypes.OctetString }],
  ['kdf', { type: AlgorithmIdentifier }],
  ['kekLength', { type: AsnPropTypes.Integer }],
  ['ukm', { type: AsnPropTypes.OctetString, context: 0, optional: true }],
  ['wrap', { type: AlgorithmIdentifier }],
  ['encryptedKey', { type: AsnPropTypes.OctetString }],
]);
schema(CMSORIforKEMOtherInfo, [
  ['wrap', { type: AlgorithmIdentifier }],
  ['kekLength', { type: AsnPropTypes.Integer }],
]);
const ID_ORI_KEM = '1.2.840.113549.1.9.16.13.3';
const ML_KEM_768 = '2.16.840.1.101.3.4.4.2';
const HKDF_SHA256 = '1.2.840.113549.1.9.16.3.28';
const AES256_WRAP = '2.16.840.1.101.3.4.1.45';
const AES256_CBC = '2.16.840.1.101.3.4.1.42';

interface Member {
  name: string;
  kind: 'ec' | 'rsa' | 'ml-kem';
  key: string;
  cert: string;
  serial: string;
  keys: Map<string, { version: number; key: Buffer }>;
}

/** The EnvelopedData of a welcome, read with @peculiar/asn1-cms. */
function envelopedOf(der: Buffer): EnvelopedData {
  const ci = AsnConvert.parse(der, ContentInfo);
  assert.equal(ci.contentType, '1.2.840.113549.1.7.3');
  return AsnConvert.parse(ci.content, EnvelopedData);
}

/** An ML-KEM member opens its welcome with the independent stack; throws if it does not open. */
function openKem(der: Buffer, m: Member): Buffer {
  const env = envelopedOf(der);
  assert.equal(env.version, 3, 'EnvelopedData with an ori is version 3 (RFC 5652 §6.1)');
  assert.equal(env.recipientInfos.length, 1);
  const ori = env.recipientInfos[0]!.ori;
  assert.ok(ori, 'the recipient is an OtherRecipientInfo');
  assert.equal(ori.oriType, ID_ORI_KEM);
  const kemri = AsnConvert.parse(ori.oriValue, KEMRecipientInfo);
  assert.equal(kemri.version, 0);
  assert.equal(kemri.kem.algorithm, ML_KEM_768);
  assert.equal(kemri.kem.parameters, undefined, 'kem parameters absent');
  assert.equal(kemri.kdf.algorithm, HKDF_SHA256);
  assert.equal(kemri.kdf.parameters, undefined, 'kdf parameters absent (RFC 8619)');
  assert.equal(kemri.wrap.algorithm, AES256_WRAP);
  assert.equal(kemri.kekLength, 32);
  assert.equal(kemri.ukm, undefined);
  assert.equal(kemri.kemct.byteLength, 1088);
  // rid: the member's certificate, by issuer and serial.
  const cert = AsnConvert.parse(Buffer.from(readFileSync(m.cert, 'utf8').split('-----')[2]!.replace(/\s/g, ''), 'base64'), Certificate);
  const ias = kemri.rid.issuerAndSerialNumber as IssuerAndSerialNumber;
  assert.ok(Buffer.from(ias.serialNumber).equals(Buffer.from(cert.tbsCertificate.serialNumber)));
  assert.ok(Buffer.from(AsnConvert.serialize(ias.issuer)).equals(Buffer.from(AsnConvert.serialize(cert.tbsCertificate.issuer))));
  // The decapsulation key from the 64-byte seed (d ‖ z) of the PKCS#8, checked against the certificate.
  const p8 = createPrivateKey(readFileSync(m.key, 'utf8')).export({ format: 'der', type: 'pkcs8' });
  const seed = p8.subarray(p8.length - 64);
  const { publicKey, secretKey } = ml_kem768.keygen(seed);
  assert.ok(Buffer.from(publicKey).equals(Buffer.from(cert.tbsCertificate.subjectPublicKeyInfo.subjectPublicKey)), 'the seed gives the certified key');
  const ss = ml_kem768.decapsulate(new Uint8Array(kemri.kemct), secretKey);
  const info = AsnConvert.serialize(new CMSORIforKEMOtherInfo({ wrap: kemri.wrap, kekLength: kemri.kekLength }));
  const kek = hkdf(sha256, ss, undefined, new Uint8Array(info), kemri.kekLength);
  const cek = aeskw(kek).decrypt(new Uint8Array(kemri.encryptedKey)); // throws if the wrap's integrity check fails
  const eci = env.encryptedContentInfo;
  assert.equal(eci.contentEncryptionAlgorithm.algorithm, AES256_CBC);
  const iv = AsnConvert.parse(eci.contentEncryptionAlgorithm.parameters!, OctetString);
  return Buffer.from(cbc(cek, new Uint8Array(iv.buffer)).decrypt(new Uint8Array(eci.encryptedContent!.value!.buffer)));
}

/** Replaces a certificate's key with `bytes` zero bytes under `oid` (the signature no longer matters: eligibility reads the stored DER). */
function setKey(c: Certificate, oid: string, bytes: number): void {
  c.tbsCertificate.subjectPublicKeyInfo.algorithm = new AlgorithmIdentifier({ algorithm: oid });
  c.tbsCertificate.subjectPublicKeyInfo.subjectPublicKey = new ArrayBuffer(bytes);
}

const childrenOf = (node: string) => {
  const [l, p] = node.split('.').map(Number) as [number, number];
  return [`${l - 1}.${2 * p}`, `${l - 1}.${2 * p + 1}`];
};

describe('key groups with ML-KEM-768 members', () => {
  let env: TestEnv;
  let server: RunningServer;
  const tmp = new TempDir();
  let n = 0;

  async function classical(kind: 'ec' | 'rsa'): Promise<Member> {
    const name = `c${++n}`;
    const key = tmp.file(`${name}.key`);
    const newkey = kind === 'ec' ? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'] : ['-newkey', 'rsa:2048'];
    const req = openssl(['req', '-new', ...newkey, '-nodes', '-keyout', key, '-subj', `/CN=${name}.pq.test`, '-addext', `subjectAltName=DNS:${name}.pq.test`]);
    assert.equal(req.status, 0, req.stderr);
    const issued = await api(server, 'POST', '/api/v1/certificates', { csr: req.stdout, profile: 'group-member' });
    assert.equal(issued.status, 201, issued.text);
    return { name, kind, key, cert: tmp.file(`${name}.crt`, issued.json.certificate), serial: issued.json.serial, keys: new Map() };
  }

  function mlKem(): Member {
    const name = `k${++n}`;
    const key = join(tmp.path, `${name}.key`);
    const r = signet(
      ['issue', '--generate-key', 'ml-kem-768', '--profile', 'group-member', '--cn', `${name}.pq.test`, '--san', `${name}.pq.test`, '--key-out', key, '--json'],
      env.env,
    );
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    return { name, kind: 'ml-kem', key, cert: tmp.file(`${name}.crt`, out.certificate), serial: out.serial, keys: new Map() };
  }

  async function welcomeDer(group: string, m: Member): Promise<Buffer> {
    const r = await fetchAfterBlocking(`${server.url}/api/v1/groups/${group}/members/${m.serial}/welcome`, {
      headers: { authorization: `Bearer ${server.token}` },
    });
    assert.equal(r.status, 200, await r.clone().text());
    return Buffer.from(await r.arrayBuffer());
  }

  function open(der: Buffer, m: Member): ReturnType<typeof readGroupKeys> {
    if (m.kind === 'ml-kem') return readGroupKeys(openKem(der, m));
    const out = tmp.file(`${m.name}-keys-${++n}.der`);
    const d = openssl(['cms', '-decrypt', '-inform', 'DER', '-in', tmp.file(`${m.name}-w-${n}.der`, der), '-inkey', m.key, '-recip', m.cert, '-out', out]);
    assert.equal(d.status, 0, `${m.name} cannot open its welcome: ${d.stderr}`);
    return readGroupKeys(readFileSync(out));
  }

  const openWith = (envelope: Buffer, keyId: string, key: Buffer) => openWithKek(tmp, envelope, keyId, key);

  before(async () => {
    env = await createTestEnv();
    server = await startServer(env.env);
  });
  after(async () => {
    await server?.stop();
    await env?.cleanup();
    tmp.remove();
  });

  test('P-256, RSA and ML-KEM-768 members hold one group key (ML-KEM opened by noble); bulk welcomes too; removing an ML-KEM member re-keys; a changed KEM ciphertext does not open', async () => {
    // The certificate an ML-KEM member gets: keyEncipherment only, the ML-KEM-768 SPKI, no CSR anywhere.
    const members = [await classical('ec'), mlKem(), await classical('rsa'), mlKem(), await classical('ec')];
    const text = openssl(['x509', '-noout', '-text', '-in', members[1]!.cert]);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /X509v3 Key Usage: critical\s+Key Encipherment\s*\n/);
    assert.match(text.stdout, /Public Key Algorithm: (ML-KEM-768|2\.16\.840\.1\.101\.3\.4\.4\.2)/);

    assert.equal((await api(server, 'POST', '/api/v1/groups', { name: 'pq' })).status, 201);
    for (const m of members) {
      const added = await api(server, 'POST', '/api/v1/groups/pq/members', { serial: m.serial });
      assert.equal(added.status, 201, added.text);
    }
    for (const m of members) {
      const w = open(await welcomeDer('pq', m), m);
      assert.equal(w.group, 'pq');
      assert.equal(w.epoch, 5);
      m.keys = w.keys;
    }
    const groupKey = rootOf(members[0]!.keys).key;
    for (const m of members) assert.ok(rootOf(m.keys).key.equals(groupKey), `${m.name} (${m.kind}) holds the group key`);

    // The worker path: every welcome at once, the ML-KEM ones opened the same way.
    const dir = join(tmp.path, 'all');
    const all = signet(['group', 'welcome', 'pq', '--all-to', dir], env.env);
    assert.equal(all.status, 0, all.stderr);
    for (const m of members) assert.ok(rootOf(open(readFileSync(join(dir, `${m.serial}.der`)), m).keys).key.equals(groupKey), `${m.name}: bulk welcome`);

    // The Debian OpenSSL 3.0 parses the ori but cannot use it: it refuses cleanly, as the README says.
    const kemFile = tmp.file(`kem-welcome-${++n}.der`, await welcomeDer('pq', members[1]!));
    const printed = openssl(['cms', '-cmsout', '-print', '-inform', 'DER', '-in', kemFile]);
    assert.equal(printed.status, 0, printed.stderr);
    assert.match(printed.stdout, /d\.ori:\s+oriType: undefined \(1\.2\.840\.113549\.1\.9\.16\.13\.3\)/);
    const old = openssl(['cms', '-decrypt', '-inform', 'DER', '-in', kemFile, '-inkey', members[1]!.key, '-recip', members[1]!.cert, '-out', '/dev/null']);
    assert.notEqual(old.status, 0, 'OpenSSL 3.0 cannot open a KEMRecipientInfo');

    // A changed byte in the KEM ciphertext: ML-KEM's implicit rejection gives another secret, the unwrap fails.
    const der = await welcomeDer('pq', members[1]!);
    const ct = der.indexOf(Buffer.from([0x04, 0x82, 0x04, 0x40])); // OCTET STRING of 1088 bytes: kemct
    assert.ok(ct > 0);
    const tampered = Buffer.from(der);
    tampered[ct + 4 + 500]! ^= 0x01;
    assert.throws(() => openKem(tampered, members[1]!));

    // Removing an ML-KEM member re-keys: the others follow from the KEK-wrapped rekey message
    // (openssl, with keys they already hold); the leaver's keys open none of it.
    const gone = members[1]!;
    const removed = await api(server, 'DELETE', `/api/v1/groups/pq/members/${gone.serial}`);
    assert.equal(removed.status, 200, removed.text);
    const r = await fetchAfterBlocking(`${server.url}/api/v1/groups/pq/rekey?since=5`, { headers: { authorization: `Bearer ${server.token}` } });
    assert.equal(r.status, 200);
    const signed = tmp.file(`rekey-${++n}.der`, Buffer.from(await r.arrayBuffer()));
    const content = tmp.file(`rekey-${n}.content`);
    assert.equal(openssl(['cms', '-verify', '-noverify', '-inform', 'DER', '-in', signed, '-out', content]).status, 0);
    const [, , epoch, list] = kids(tlv(readFileSync(content)));
    assert.equal(int(epoch!), 6);
    const updates = kids(list!).map((u) => {
      const [, node, version, envelope] = kids(u);
      return { node: str(node!), version: int(version!), envelope: Buffer.from(envelope!.whole) };
    });
    for (const u of updates)
      for (const [node, k] of gone.keys) assert.equal(openWith(u.envelope, `pq/${node}/${k.version}`, k.key), null, `the leaver opens ${u.node}`);
    const rest = members.filter((m) => m !== gone);
    for (const m of rest)
      for (const u of updates)
        for (const child of childrenOf(u.node)) {
          const held = m.keys.get(child);
          const plain = held && openWith(u.envelope, `pq/${child}/${held.version}`, held.key);
          if (plain) {
            m.keys.set(u.node, { version: u.version, key: plain });
            break;
          }
        }
    const newKey = rootOf(rest[0]!.keys);
    assert.equal(newKey.version, 6);
    assert.ok(!newKey.key.equals(groupKey));
    for (const m of rest) assert.ok(rootOf(m.keys).key.equals(newKey.key), `${m.name} (${m.kind}) follows the rekey`);
    const kemLeft = rest.find((m) => m.kind === 'ml-kem')!;
    assert.ok(rootOf(open(await welcomeDer('pq', kemLeft), kemLeft).keys).key.equals(newKey.key), 'a fresh ML-KEM welcome agrees');
  });

  test('refused for membership with the problem named: ML-KEM-512, ML-KEM-1024, a truncated ML-KEM-768 key, parameters present, no keyEncipherment, ML-DSA; a renewed ML-KEM certificate joins; ML-KEM is no CA key, has no PKCS#12, needs a profile that takes it', async () => {
    assert.equal((await api(server, 'POST', '/api/v1/groups', { name: 'bad' })).status, 201);
    // One ML-KEM certificate whose stored DER is replaced in turn (eligibility reads the stored DER).
    const m = mlKem();
    const [row] = await sql<{ der: Uint8Array }>(env, 'SELECT der FROM "Certificate" WHERE serial = ?', [m.serial]);
    const original = Buffer.from(row!.der);
    const withKeyUsage = (c: Certificate, flags: number) => {
      const ku = c.tbsCertificate.extensions!.find((e) => e.extnID === '2.5.29.15')!;
      ku.extnValue = new OctetString(AsnConvert.serialize(new KeyUsage(flags)));
    };
    const cases: [string, (c: Certificate) => void, RegExp][] = [
      ['ML-KEM-512', (c) => setKey(c, '2.16.840.1.101.3.4.4.1', 800), /ML-KEM-512 keys are not supported; use ML-KEM-768/],
      ['ML-KEM-1024', (c) => setKey(c, '2.16.840.1.101.3.4.4.3', 1568), /ML-KEM-1024 keys are not supported; use ML-KEM-768/],
      ['truncated', (c) => setKey(c, ML_KEM_768, 1183), /an ML-KEM-768 public key is 1184 bytes, found 1183/],
      [
        'parameters',
        (c) =>
          (c.tbsCertificate.subjectPublicKeyInfo.algorithm = new AlgorithmIdentifier({ algorithm: ML_KEM_768, parameters: new Uint8Array([5, 0]).buffer })),
        /ML-KEM-768 key has algorithm parameters; they must be absent/,
      ],
      ['keyAgreement', (c) => withKeyUsage(c, KeyUsageFlags.keyAgreement), /keyUsage does not allow keyEncipherment/],
      ['ML-DSA-65', (c) => setKey(c, '2.16.840.1.101.3.4.3.18', 1952), /an ML-DSA-65 key, which only signs/],
    ];
    for (const [what, change, problem] of cases) {
      const cert = AsnConvert.parse(original, Certificate);
      change(cert);
      await sql(env, 'UPDATE "Certificate" SET der = ? WHERE serial = ?', [Buffer.from(AsnConvert.serialize(cert)), m.serial]);
      const r = await api(server, 'POST', '/api/v1/groups/bad/members', { serial: m.serial });
      assert.equal(r.status, 400, `${what}: ${r.text}`);
      assert.match(r.json.detail, new RegExp(`certificate ${m.serial}`), what);
      assert.match(r.json.detail, problem, what);
    }
    await sql(env, 'UPDATE "Certificate" SET der = ? WHERE serial = ?', [original, m.serial]);
    assert.equal((await api(server, 'GET', '/api/v1/groups/bad')).json.members, 0, 'nothing joined');
    // Renewal keeps the key, so needs no CSR: the renewed certificate joins.
    const renewed = signet(['renew', m.serial, '--json'], env.env);
    assert.equal(renewed.status, 0, renewed.stderr);
    const again = await api(server, 'POST', '/api/v1/groups/bad/members', { serial: JSON.parse(renewed.stdout).serial });
    assert.equal(again.status, 201, again.text);

    // A profile that does not take ML-KEM keys (server: RSA, ECDSA, Ed25519) refuses one.
    const server2 = signet(
      ['issue', '--generate-key', 'ml-kem-768', '--profile', 'server', '--san', 'x.pq.test', '--key-out', join(tmp.path, 'x.key')],
      env.env,
    );
    assert.notEqual(server2.status, 0);
    assert.match(server2.stderr, /profile server does not accept ml-kem-768 keys/);
    // Never a CA key, and no PKCS#12.
    const ca = signet(['ca', 'create-intermediate', '--parent', 'x', '--subject', 'CN=x', '--key', 'ml-kem-768'], env.env);
    assert.notEqual(ca.status, 0);
    assert.match(ca.stderr, /'ml-kem-768' is invalid/);
    const root = signet(['ca', 'list'], { ...env.env, SIGNET_ROOT_KEY: 'ml-kem-768' });
    assert.notEqual(root.status, 0);
    assert.match(root.stderr, /SIGNET_ROOT_KEY/);
    const p12 = signet(['issue', '--generate-key', 'ml-kem-768', '--profile', 'group-member', '--san', 'y.pq.test', '--p12', join(tmp.path, 'y.p12')], env.env);
    assert.equal(p12.status, 2);
    assert.match(p12.stderr, /--p12 is not available for ML-KEM keys/);
  });
});
