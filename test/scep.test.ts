/**
 * SCEP (RFC 8894) against a real `signet serve`, with clients nobody on the project wrote:
 * micromdm's `scepclient` (Debian `scep`) and strongSwan's `pki --scepca` / `pki --scep`
 * (enrollment and renewal); the answers checked with openssl. The refusals the real clients
 * cannot be made to send (a tampered envelope re-signed by its sender, names outside the
 * credential, a renewal by a revoked certificate, GetCert/GetCRL/CertPoll) come from the
 * small client in helpers/scep.ts. Every refusal is a CertRep FAILURE (HTTP 200) with its
 * failInfo, stores no certificate, and is audited.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { api, getUrl, signet, startServer, type RunningServer } from './helpers/cli.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';
import { openssl, TempDir } from './helpers/openssl.js';
import { parseEnvelopedData } from '../src/pki/cms-enveloped.js';
import { identity, issuerAndSerial, issuerAndSubject, pkiMessage, post, readReply } from './helpers/scep.js';
import { requireTool } from './helpers/tools.js';

let env: TestEnv;
let server: RunningServer;
const tmp = new TempDir();
let scepUrl: string;
/** GetCACert, in order: the RA, the issuing CA, the root. */
let ra: Buffer;
let issuing: Buffer;
let root: Buffer;

const pem = (der: Buffer) => `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE-----\n`;

/** A one-time SCEP challenge from the CLI, as an operator makes it. */
function challenge(opts: { profile?: string; names?: string[]; uses?: number } = {}): string {
  const args = ['enroll', 'create', '--protocol', 'scep', '--profile', opts.profile ?? 'client', '--json'];
  if (opts.names) args.push('--names', opts.names.join(','));
  if (opts.uses) args.push('--uses', String(opts.uses));
  const r = signet(args, env.env);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as Record<string, unknown>;
  const secret = out.secret ?? out.password ?? out.challenge;
  assert.equal(typeof secret, 'string', r.stdout);
  return secret as string;
}

async function certificateCount(): Promise<number> {
  const r = await api(server, 'GET', '/api/v1/certificates?limit=500');
  assert.equal(r.status, 200);
  return (r.json.items as unknown[]).length;
}

async function refusals(): Promise<{ target: string; details: Record<string, unknown> }[]> {
  const r = await api(server, 'GET', '/api/v1/audit?action=scep.refused&limit=200');
  assert.equal(r.status, 200);
  return r.json.items as { target: string; details: Record<string, unknown> }[];
}

function run(cmd: string, args: string[], cwd: string): { code: number | null; out: string } {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: `${r.stdout}\n${r.stderr}` };
}

function verifies(certPem: string): void {
  const chain = tmp.file(`chain-${Math.random()}.pem`, pem(issuing));
  const rootFile = tmp.file(`root-${Math.random()}.pem`, pem(root));
  const leaf = tmp.file(`leaf-${Math.random()}.pem`, certPem);
  const r = openssl(['verify', '-CAfile', rootFile, '-untrusted', chain, leaf]);
  assert.equal(r.status, 0, r.stdout + r.stderr);
}

/** Extra profiles: one whose certificates renew only with a token (renewWithClientCertificate false by default). */
const PROFILES = {
  norenew: { requireSan: false, sanTypes: ['dns'], defaultValidityDays: 30, maxValidityDays: 90, extKeyUsage: ['clientAuth'] },
};

before(async () => {
  env = await createTestEnv();
  const profilesFile = join(env.dataDir, 'profiles.json');
  writeFileSync(profilesFile, JSON.stringify(PROFILES));
  env.env.SIGNET_PROFILES_FILE = profilesFile;
  server = await startServer(env.env);
  scepUrl = `${server.url}/scep`;
  const r = await getUrl(`${scepUrl}?operation=GetCACert`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'application/x-x509-ca-ra-cert');
  const p7 = tmp.file('cacert.p7', Buffer.from(await r.arrayBuffer()));
  const printed = openssl(['pkcs7', '-inform', 'DER', '-in', p7, '-print_certs']);
  assert.equal(printed.status, 0, printed.stderr);
  const certs = printed.stdout.split(/(?=-----BEGIN CERTIFICATE-----)/).filter((b) => b.includes('BEGIN CERTIFICATE'));
  const ders = certs.map((c) => Buffer.from(new X509Certificate(c).raw));
  assert.equal(ders.length, 3, printed.stdout);
  [ra, issuing, root] = ders as [Buffer, Buffer, Buffer];
});

after(async () => {
  await server?.stop();
  await env?.cleanup();
  tmp.remove();
});

describe('GetCACaps and GetCACert', () => {
  test('GetCACaps lists what strongSwan needs (SHA-384 with SHA-256) and what Signet does', async () => {
    const r = await getUrl(`${scepUrl}?operation=GetCACaps`);
    assert.equal(r.status, 200);
    const caps = (await r.text()).split('\n');
    for (const c of ['AES', 'SHA-256', 'SHA-384', 'POSTPKIOperation', 'Renewal', 'SCEPStandard']) assert.ok(caps.includes(c), c);
  });

  test('GetCACert: the RSA RA certificate (keyEncipherment, digitalSignature) from the issuing CA, then the CA chain to the root; openssl verifies it', () => {
    assert.ok(ra && issuing && root);
    const raX = new X509Certificate(ra);
    assert.equal(raX.publicKey.asymmetricKeyType, 'rsa');
    assert.equal(raX.ca, false);
    assert.ok(raX.checkIssued(new X509Certificate(issuing)));
    assert.ok(new X509Certificate(root).checkIssued(new X509Certificate(root)));
    const text = openssl(['x509', '-noout', '-ext', 'keyUsage', '-in', tmp.file('ra.pem', pem(ra))]).stdout;
    assert.match(text, /Digital Signature, Key Encipherment/);
    verifies(pem(ra));
  });

  test('an unknown operation or profile is a problem document; a body that is no pkiMessage a 400 problem, audited; the server still serves', async () => {
    const bad = await getUrl(`${scepUrl}?operation=Nope`);
    assert.equal(bad.status, 400);
    assert.match(bad.headers.get('content-type') ?? '', /problem\+json/);
    assert.equal((await getUrl(`${server.url}/scep/no-such-profile?operation=GetCACaps`)).status, 404);
    const garbage = await post(scepUrl, Buffer.from('not a pkiMessage at all'));
    assert.equal(garbage.status, 400);
    assert.match(garbage.type ?? '', /problem\+json/);
    const deep = Buffer.concat([...Array.from({ length: 3000 }, () => Buffer.from([0x30, 0x80])), Buffer.alloc(6000)]);
    assert.equal((await post(scepUrl, deep)).status, 400);
    const huge = await post(scepUrl, Buffer.alloc(2 * 1024 * 1024, 0x30));
    assert.equal(huge.status, 413);
    assert.equal((await getUrl(`${scepUrl}?operation=GetCACaps`)).status, 200);
  });
});

describe('micromdm scepclient', () => {
  before(() => requireTool('scepclient', 'scep'));
  test('enrolls with a one-time challenge; the certificate verifies with openssl; the same challenge again is refused and stores nothing', async () => {
    const secret = challenge();
    const fingerprint = createHash('sha256').update(ra).digest('hex');
    // scepclient keeps its self-signed certificate in self.pem in the working directory: a fresh one each run.
    const dir = mkdtempSync(join(tmpdir(), 'signet-scepclient-'));
    const first = run(
      'scepclient',
      ['-server-url', scepUrl, '-challenge', secret, '-private-key', 'k.pem', '-certificate', 'c.pem', '-cn', 'device-1', '-ca-fingerprint', fingerprint],
      dir,
    );
    assert.equal(first.code, 0, first.out);
    assert.match(first.out, /pkiStatus=SUCCESS/);
    const certPem = readFileSync(join(dir, 'c.pem'), 'utf8');
    verifies(certPem);
    const cert = new X509Certificate(certPem);
    assert.equal(cert.subject, 'CN=device-1');
    assert.match(cert.keyUsage?.join(',') ?? '', /1\.3\.6\.1\.5\.5\.7\.3\.2/);
    const stored = await api(server, 'GET', `/api/v1/certificates/${cert.serialNumber.toLowerCase()}`);
    assert.equal(stored.status, 200);
    assert.equal(stored.json.profile, 'client');

    const count = await certificateCount();
    const dir2 = mkdtempSync(join(tmpdir(), 'signet-scepclient-'));
    const again = run(
      'scepclient',
      ['-server-url', scepUrl, '-challenge', secret, '-private-key', 'k.pem', '-certificate', 'c.pem', '-cn', 'device-2', '-ca-fingerprint', fingerprint],
      dir2,
    );
    assert.notEqual(again.code, 0, again.out);
    assert.match(again.out, /failInfo: badRequest/);
    assert.equal(await certificateCount(), count);
  });
});

describe('strongSwan pki --scepca / --scep', () => {
  before(() => requireTool('pki', 'strongswan-pki libstrongswan-extra-plugins'));
  test('pki --scepca stores root, CA and RA; pki --scep enrolls with a challenge, then renews with --cert/--key (RenewalReq): a new key, linked to its predecessor', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'signet-pki-scep-'));
    const ca = run('pki', ['--scepca', '--url', scepUrl, '--caout', 'ca.der', '--raout', 'ra.der'], dir);
    assert.equal(ca.code, 0, ca.out);
    assert.match(ca.out, /RA cert is trusted/);
    assert.deepEqual(readFileSync(join(dir, 'ra.der')), ra);
    const secret = challenge({ names: ['vpn.example.test'] });
    assert.equal(run('sh', ['-c', 'pki --gen --type rsa --size 2048 > key.der && pki --gen --type rsa --size 2048 > key2.der'], dir).code, 0);
    const common = [
      '--url',
      scepUrl,
      '--dn',
      'CN=gw1.vpn.example.test',
      '--san',
      'gw1.vpn.example.test',
      '--cacert-enc',
      'ra.der',
      '--cacert-sig',
      'ra.der',
      '--cacert',
      'ca.der',
      '--cacert',
      'ca-1.der',
    ];
    const enroll = run('sh', ['-c', `pki --scep --in key.der --password '${secret}' ${common.join(' ')} > cert.der`], dir);
    assert.equal(enroll.code, 0, enroll.out);
    assert.match(enroll.out, /Issued certificate is trusted/);
    const first = new X509Certificate(readFileSync(join(dir, 'cert.der')));
    assert.equal(first.subjectAltName, 'DNS:gw1.vpn.example.test');
    verifies(first.toString());

    const renew = run('sh', ['-c', `pki --scep --in key2.der --cert cert.der --key key.der ${common.join(' ')} > cert2.der`], dir);
    assert.equal(renew.code, 0, renew.out);
    const second = new X509Certificate(readFileSync(join(dir, 'cert2.der')));
    assert.notEqual(second.serialNumber, first.serialNumber);
    assert.equal(second.subjectAltName, 'DNS:gw1.vpn.example.test');
    assert.ok(!second.publicKey.equals(first.publicKey), 'renewed with the new key');
    verifies(second.toString());
    const row = await api(server, 'GET', `/api/v1/certificates/${second.serialNumber.toLowerCase()}`);
    assert.equal(row.json.predecessorSerial, first.serialNumber.toLowerCase());
  });
});

const CERTMONGER = '/usr/sbin/certmonger';

describe('certmonger', () => {
  before(() => {
    requireTool('getcert', 'certmonger');
    requireTool(CERTMONGER, 'certmonger');
    requireTool('dbus-daemon', 'dbus');
  });
  test('getcert add-scep-ca and getcert request (certmonger on a private session bus, its state in a temporary directory) enroll with a challenge', () => {
    const dir = mkdtempSync(join(tmpdir(), 'signet-certmonger-'));
    const state = (name: string) => {
      const d = join(dir, name);
      mkdirSync(d);
      return d;
    };
    writeFileSync(join(dir, 'ra.pem'), pem(ra));
    // The CA that signed the RA and the root: certmonger verifies the CertRep's signer up to a root it trusts.
    writeFileSync(join(dir, 'cas.pem'), pem(issuing) + pem(root));
    const secret = challenge({ names: ['cm.example.test'] });
    writeFileSync(
      join(dir, 'run.sh'),
      [
        `getcert add-scep-ca -s -c Signet -u ${scepUrl} -r ${join(dir, 'ra.pem')} -N ${join(dir, 'cas.pem')}`,
        `getcert request -s -c Signet -f ${join(dir, 'cert.pem')} -k ${join(dir, 'key.pem')} -N CN=host1.cm.example.test -D host1.cm.example.test -L ${secret} -w -v`,
        'getcert list -s',
      ].join('\n'),
    );
    // The daemon is in /usr/sbin, which a CI shell's PATH need not hold.
    const r = spawnSync('dbus-run-session', ['--', CERTMONGER, '-s', '-n', '-c', `sh ${join(dir, 'run.sh')}`], {
      encoding: 'utf8',
      timeout: 120_000,
      env: {
        ...process.env,
        HOME: dir,
        CERTMONGER_CAS_DIR: state('cas'),
        CERTMONGER_REQUESTS_DIR: state('requests'),
        CERTMONGER_LOCAL_CA_DIR: state('local'),
        CERTMONGER_CONFIG_DIR: state('config'),
      },
    });
    const out = `${r.stdout}\n${r.stderr}`;
    assert.match(out, /status: MONITORING/, out);
    const cert = new X509Certificate(readFileSync(join(dir, 'cert.pem')));
    assert.equal(cert.subject, 'CN=host1.cm.example.test');
    verifies(cert.toString());
  });
});

describe('refusals from the small client', () => {
  test('a tampered envelope (re-signed by its sender) and a tampered signed message: CertRep FAILURE badMessageCheck, nothing stored, audited; the challenge is not spent', async () => {
    const secret = challenge();
    const id = identity(tmp, 'tamper', { cn: 'tamper-1', challenge: secret });
    const count = await certificateCount();
    const flipped = await pkiMessage({
      type: 19,
      content: id.csr,
      raCert: ra,
      keyFile: id.keyFile,
      signerCert: id.cert,
      // A flipped byte in the wrapped content-encryption key: the envelope cannot be decrypted (a
      // flip in the CBC ciphertext would only garble the CSR, refused later as a bad request).
      tamper: (env) => {
        const b = Buffer.from(env);
        const wrapped = parseEnvelopedData(env).recipients[0]!.encryptedKey;
        b[b.indexOf(wrapped) + 17]! ^= 0xff;
        return b;
      },
    });
    const r1 = await post(scepUrl, flipped.der);
    assert.equal(r1.status, 200);
    const rep1 = await readReply(r1.body, ra, id.keyFile);
    assert.equal(rep1.status, '2');
    assert.equal(rep1.failInfo, '1');
    assert.equal(rep1.transactionId, flipped.transactionId);

    // A flipped byte in the CBC ciphertext: either the padding breaks (badMessageCheck) or the CSR
    // comes out garbled (badRequest); a refusal either way.
    const garbled = await pkiMessage({
      type: 19,
      content: id.csr,
      raCert: ra,
      keyFile: id.keyFile,
      signerCert: id.cert,
      tamper: (env) => {
        const b = Buffer.from(env);
        b[b.length - 20]! ^= 0xff;
        return b;
      },
    });
    const rep3 = await readReply((await post(scepUrl, garbled.der)).body, ra, id.keyFile);
    assert.equal(rep3.status, '2');
    assert.ok(['1', '2'].includes(rep3.failInfo!), rep3.failInfo);

    const good = await pkiMessage({ type: 19, content: id.csr, raCert: ra, keyFile: id.keyFile, signerCert: id.cert });
    const bad = Buffer.from(good.der);
    bad[bad.length - 300]! ^= 0x01; // inside the signed envelope: the messageDigest no longer matches
    const rep2 = await readReply((await post(scepUrl, bad)).body, ra, id.keyFile);
    assert.equal(rep2.failInfo, '1');
    // Anonymous (nobody proved anything yet): counted into the refusal summary, not an event each.
    assert.equal((await refusals()).filter((a) => a.target === flipped.transactionId).length, 0);
    assert.equal(await certificateCount(), count);

    // The untampered message then enrolls: the refusals spent nothing.
    const ok = await readReply((await post(scepUrl, good.der)).body, ra, id.keyFile);
    assert.equal(ok.status, '0', ok.failInfoText);
    assert.equal(await certificateCount(), count + 1);
    // The same message again (a client that lost the reply): the same certificate, no new one.
    const resend = await readReply((await post(scepUrl, good.der)).body, ra, id.keyFile);
    assert.equal(resend.status, '0');
    assert.deepEqual(resend.certificates[0], ok.certificates[0]);
    assert.equal(await certificateCount(), count + 1);
  });

  test('names outside the credential: FAILURE badRequest, nothing stored, the challenge still good for names inside', async () => {
    const secret = challenge({ names: ['iot.example.test'] });
    const outside = identity(tmp, 'outside', { cn: 'cam1.other.test', sans: ['cam1.other.test'], challenge: secret });
    const count = await certificateCount();
    const m = await pkiMessage({ type: 19, content: outside.csr, raCert: ra, keyFile: outside.keyFile, signerCert: outside.cert });
    const rep = await readReply((await post(scepUrl, m.der)).body, ra, outside.keyFile);
    assert.equal(rep.status, '2');
    assert.equal(rep.failInfo, '2');
    assert.match(rep.failInfoText ?? '', /outside/);
    assert.equal(await certificateCount(), count);
    // The credential was accepted, so the refusal is the credential's own audit event.
    const event = (await refusals()).find((a) => a.target === m.transactionId);
    assert.ok(event);
    assert.equal(event.details.failInfo, 'badRequest');
    const inside = identity(tmp, 'inside', { cn: 'cam1.iot.example.test', sans: ['cam1.iot.example.test'], challenge: secret });
    const m2 = await pkiMessage({ type: 19, content: inside.csr, raCert: ra, keyFile: inside.keyFile, signerCert: inside.cert, cipher: 'aes-128-cbc' });
    // PKIOperation by GET, base64 in ?message=.
    const r = await getUrl(`${scepUrl}?operation=PKIOperation&message=${encodeURIComponent(m2.der.toString('base64'))}`);
    assert.equal(r.status, 200);
    const ok = await readReply(Buffer.from(await r.arrayBuffer()), ra, inside.keyFile);
    assert.equal(ok.status, '0', ok.failInfoText);
    verifies(pem(ok.certificates[0]!));
  });

  test('four devices at once with one one-time challenge: exactly one certificate stored, the others FAILURE badRequest', async () => {
    const secret = challenge();
    const ids = [0, 1, 2, 3].map((i) => identity(tmp, `race-${i}`, { cn: `race-${i}`, challenge: secret }));
    const before = await certificateCount();
    const messages = await Promise.all(ids.map((id) => pkiMessage({ type: 19, content: id.csr, raCert: ra, keyFile: id.keyFile, signerCert: id.cert })));
    const bodies = await Promise.all(messages.map((m) => post(scepUrl, m.der)));
    const replies = await Promise.all(bodies.map((b, i) => readReply(b.body, ra, ids[i]!.keyFile)));
    assert.equal(replies.filter((r) => r.status === '0').length, 1, JSON.stringify(replies.map((r) => r.failInfoText)));
    assert.ok(replies.filter((r) => r.status === '2').every((r) => r.failInfo === '2'));
    // The use is spent just before signing: exactly one certificate stored, none for the others.
    const list = await api(server, 'GET', '/api/v1/certificates?limit=500');
    const fresh = (list.json.items as { serial: string; subject?: string }[]).filter((c) => /race-\d/.test(c.subject ?? ''));
    assert.equal(fresh.length, 1, JSON.stringify(fresh));
    assert.equal(await certificateCount(), before + 1);
  });

  test('no challenge, a wrong challenge, a CSR of another key than the signer: FAILURE badRequest', async () => {
    const none = identity(tmp, 'nochallenge', { cn: 'dev-x' });
    const r1 = await readReply(
      (await post(scepUrl, (await pkiMessage({ type: 19, content: none.csr, raCert: ra, keyFile: none.keyFile, signerCert: none.cert })).der)).body,
      ra,
      none.keyFile,
    );
    assert.equal(r1.failInfo, '2');
    const wrong = identity(tmp, 'wrong', { cn: 'dev-y', challenge: 'not-a-credential' });
    const r2 = await readReply(
      (await post(scepUrl, (await pkiMessage({ type: 19, content: wrong.csr, raCert: ra, keyFile: wrong.keyFile, signerCert: wrong.cert })).der)).body,
      ra,
      wrong.keyFile,
    );
    assert.equal(r2.failInfo, '2');
    const other = identity(tmp, 'otherkey', { cn: 'dev-z', challenge: challenge() });
    const r3 = await readReply(
      (await post(scepUrl, (await pkiMessage({ type: 19, content: other.csr, raCert: ra, keyFile: wrong.keyFile, signerCert: wrong.cert })).der)).body,
      ra,
      wrong.keyFile,
    );
    assert.equal(r3.failInfo, '2');
    assert.match(r3.failInfoText ?? '', /not signed with the key of the certificate request/);
  });

  test('GetCert, GetCRL and CertPoll answer for certificates Signet issued; unknown ones are badCertId; a revoked certificate cannot renew', async () => {
    const id = identity(tmp, 'getcert', { cn: 'dev-get', challenge: challenge() });
    const enrolled = await pkiMessage({ type: 19, content: id.csr, raCert: ra, keyFile: id.keyFile, signerCert: id.cert });
    const rep = await readReply((await post(scepUrl, enrolled.der)).body, ra, id.keyFile);
    assert.equal(rep.status, '0', rep.failInfoText);
    const issued = rep.certificates[0]!;
    const ask = async (type: number, content: Buffer, transactionId?: string, signerCert = id.cert) =>
      readReply(
        (await post(scepUrl, (await pkiMessage({ type, content, raCert: ra, keyFile: id.keyFile, signerCert, transactionId })).der)).body,
        ra,
        id.keyFile,
      );
    // GetCert: only to the certificate's holder, signing with that certificate.
    const got = await ask(21, issuerAndSerial(issued), undefined, issued);
    assert.equal(got.status, '0', got.failInfoText);
    assert.deepEqual(got.certificates[0], issued);
    const crl = await ask(22, issuerAndSerial(issued));
    assert.equal(crl.status, '0', crl.failInfoText);
    assert.equal(crl.crls.length, 1);
    const crlFile = tmp.file('scep.crl', crl.crls[0]!);
    assert.equal(openssl(['crl', '-inform', 'DER', '-in', crlFile, '-noout', '-CAfile', tmp.file('issuing.pem', pem(issuing))]).status, 0);
    const poll = await ask(20, issuerAndSubject(id.cert), enrolled.transactionId);
    assert.equal(poll.status, '0');
    assert.deepEqual(poll.certificates[0], issued);
    assert.equal((await ask(20, issuerAndSubject(id.cert), 'never-seen')).failInfo, '4');
    const unknown = Buffer.from(issued);
    const unknownSerial = issuerAndSerial(unknown);
    unknownSerial[unknownSerial.length - 1]! ^= 0x01;
    const unknownReply = await ask(21, unknownSerial);
    assert.equal(unknownReply.failInfo, '4');
    // Anyone else asking for it (here its own self-signed certificate, the same key): the same answer as an unknown serial.
    const notHolder = await ask(21, issuerAndSerial(issued));
    assert.equal(notHolder.status, '2');
    assert.equal(notHolder.failInfo, '4');
    const serialOf = (b: Buffer) => certificateIdsSerialHex(b);
    assert.equal(notHolder.failInfoText, unknownReply.failInfoText!.replace(serialOf(unknownSerial), serialOf(issuerAndSerial(issued))));

    // CertPoll and a PKCSReq replay by an outsider (another key, no challenge): a used transactionID
    // gets the same answer as one never seen.
    const outsider = identity(tmp, 'outsider', { cn: 'dev-get' });
    const asOutsider = async (type: number, content: Buffer, transactionId: string) =>
      readReply(
        (await post(scepUrl, (await pkiMessage({ type, content, raCert: ra, keyFile: outsider.keyFile, signerCert: outsider.cert, transactionId })).der)).body,
        ra,
        outsider.keyFile,
      );
    for (const type of [20, 19]) {
      const content = type === 20 ? issuerAndSubject(outsider.cert) : outsider.csr;
      const used = await asOutsider(type, content, enrolled.transactionId);
      const unseen = await asOutsider(type, content, 'never-seen-tx');
      assert.equal(used.status, '2');
      assert.equal(used.failInfo, unseen.failInfo, `type ${type}`);
      assert.equal(used.failInfoText, unseen.failInfoText!.replace('never-seen-tx', enrolled.transactionId), `type ${type}`);
    }

    // Renewal signed by the issued certificate: works while good, refused once revoked.
    const serial = new X509Certificate(issued).serialNumber.toLowerCase();
    const fresh = identity(tmp, 'renew-key', { cn: 'dev-get' });
    const renew = async () =>
      readReply(
        (await post(scepUrl, (await pkiMessage({ type: 17, content: fresh.csr, raCert: ra, keyFile: id.keyFile, signerCert: issued })).der)).body,
        ra,
        id.keyFile,
      );
    const rev = await api(server, 'POST', `/api/v1/certificates/${serial}/revoke`, { reason: 'keyCompromise' });
    assert.equal(rev.status, 200);
    const count = await certificateCount();
    const refused = await renew();
    assert.equal(refused.failInfo, '4');
    assert.match(refused.failInfoText ?? '', /revoked/);
    assert.equal(await certificateCount(), count);
  });

  /** Enrolls at /scep/<profile> (or /scep) with a fresh challenge; the certificate and the identity. */
  const enrollAt = async (profile: string | null, name: string, cn: string, sans?: string[]) => {
    const id = identity(tmp, name, { cn, sans, challenge: challenge({ profile: profile ?? 'client' }) });
    const url = profile ? `${scepUrl}/${profile}` : scepUrl;
    const m = await pkiMessage({ type: 19, content: id.csr, raCert: ra, keyFile: id.keyFile, signerCert: id.cert });
    const rep = await readReply((await post(url, m.der)).body, ra, id.keyFile);
    assert.equal(rep.status, '0', rep.failInfoText);
    return { id, cert: rep.certificates[0]!, transactionId: m.transactionId };
  };
  const renewAt = async (url: string, cert: Buffer, keyFile: string, cn: string) => {
    const fresh = identity(tmp, `renew-${Math.random()}`, { cn });
    return readReply((await post(url, (await pkiMessage({ type: 17, content: fresh.csr, raCert: ra, keyFile, signerCert: cert })).der)).body, ra, keyFile);
  };

  test('RenewalReq authenticates its signer as mTLS renewal does: a profile with renewWithClientCertificate false, and a certificate of another profile than the path, are refused (badRequest), nothing stored', async () => {
    const nr = await enrollAt('norenew', 'norenew', 'nr.example.test');
    const count = await certificateCount();
    const r1 = await renewAt(`${scepUrl}/norenew`, nr.cert, nr.id.keyFile, 'nr.example.test');
    assert.equal(r1.status, '2');
    assert.equal(r1.failInfo, '2');
    assert.match(r1.failInfoText ?? '', /renewWithClientCertificate is false/);
    // A server certificate renewed through /scep (the client profile) must not come back as a client certificate.
    const srv = await enrollAt('server', 'srv', 'srv.example.test', ['srv.example.test']);
    const count2 = await certificateCount();
    assert.equal(count2, count + 1);
    const r2 = await renewAt(scepUrl, srv.cert, srv.id.keyFile, 'srv.example.test');
    assert.equal(r2.status, '2');
    assert.equal(r2.failInfo, '2');
    assert.match(r2.failInfoText ?? '', /is of profile server, not client/);
    assert.equal(await certificateCount(), count2);
    // Through its own profile's path it renews.
    const r3 = await renewAt(`${scepUrl}/server`, srv.cert, srv.id.keyFile, 'srv.example.test');
    assert.equal(r3.status, '0', r3.failInfoText);
  });

  test('an ECDSA requester (PKCSReq) gets badAlg before anything is issued: nothing stored, the one-time challenge not spent', async () => {
    const secret = challenge();
    const ec = identity(tmp, 'ecdsa', { cn: 'dev-ec', challenge: secret, ec: true });
    const count = await certificateCount();
    const m = await pkiMessage({ type: 19, content: ec.csr, raCert: ra, keyFile: ec.keyFile, signerCert: ec.cert });
    const rep = await readReply((await post(scepUrl, m.der)).body, ra, ec.keyFile);
    assert.equal(rep.status, '2');
    assert.equal(rep.failInfo, '0');
    assert.match(rep.failInfoText ?? '', /RSA/);
    assert.equal(await certificateCount(), count);
    // The challenge is still good: an RSA requester enrolls with it.
    const rsa = identity(tmp, 'ecdsa-then-rsa', { cn: 'dev-ec', challenge: secret });
    const ok = await readReply(
      (await post(scepUrl, (await pkiMessage({ type: 19, content: rsa.csr, raCert: ra, keyFile: rsa.keyFile, signerCert: rsa.cert })).der)).body,
      ra,
      rsa.keyFile,
    );
    assert.equal(ok.status, '0', ok.failInfoText);
    assert.equal(await certificateCount(), count + 1);
  });
});

describe('GetCACert for a profile whose rules refuse the RA certificate', () => {
  let env2: TestEnv;
  let server2: RunningServer;
  before(async () => {
    env2 = await createTestEnv();
    const file = join(env2.dataDir, 'profiles.json');
    // Its allow-lists refuse the RA certificate (named by the public URL's host, 127.0.0.1).
    writeFileSync(
      file,
      JSON.stringify({
        corp: {
          requireSan: false,
          sanTypes: ['dns', 'ip'],
          dnsSuffixes: ['corp.example'],
          ipRanges: ['10.0.0.0/8'],
          defaultValidityDays: 30,
          maxValidityDays: 90,
          extKeyUsage: ['clientAuth'],
        },
      }),
    );
    env2.env.SIGNET_PROFILES_FILE = file;
    server2 = await startServer(env2.env);
  });
  after(async () => {
    await server2?.stop();
    await env2?.cleanup();
  });

  test('a 409 problem saying SCEP is not available for the profile and what to do, without the allow-lists or the CA; logged once', async () => {
    const cas = JSON.parse(signet(['ca', 'list', '--json'], env2.env).stdout) as { id: string }[];
    for (let i = 0; i < 3; i++) {
      const r = await getUrl(`${server2.url}/scep/corp?operation=GetCACert`);
      assert.equal(r.status, 409);
      assert.match(r.headers.get('content-type') ?? '', /problem\+json/);
      const text = await r.text();
      assert.match(text, /SCEP is not available for profile corp/);
      assert.match(text, /operator should serve SCEP from a profile that accepts it/);
      assert.doesNotMatch(text, /10\.0\.0\.0|corp\.example|ipRanges|dnsSuffixes/);
      for (const ca of cas) assert.ok(!text.includes(ca.id), `the CA id ${ca.id} is not told`);
    }
    const logged = `${server2.stdout()}${server2.stderr()}`.split('\n').filter((l) => l.includes('SCEP is not available for profile corp'));
    assert.equal(logged.length, 1, logged.join('\n'));
    assert.match(logged[0]!, /10\.0\.0\.0|corp\.example/);
    // The default profile still serves SCEP.
    assert.equal((await getUrl(`${server2.url}/scep?operation=GetCACert`)).status, 200);
  });
});

/** The hex serial inside an IssuerAndSerialNumber (as the refusal text names it). */
function certificateIdsSerialHex(issuerAndSerialDer: Buffer): string {
  // SEQUENCE { issuer Name, serial INTEGER }: the INTEGER is the last element.
  const i = issuerAndSerialDer.lastIndexOf(0x02, issuerAndSerialDer.length - 2);
  for (let at = i; at > 0; at = issuerAndSerialDer.lastIndexOf(0x02, at - 1)) {
    const len = issuerAndSerialDer[at + 1]!;
    if (at + 2 + len === issuerAndSerialDer.length) {
      const v = issuerAndSerialDer.subarray(at + 2);
      return Buffer.from(v.length > 1 && v[0] === 0 ? v.subarray(1) : v).toString('hex');
    }
  }
  throw new Error('no serial');
}
