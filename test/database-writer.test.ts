/**
 * docs/security.md §4: someone who can write to the database but does not hold the master key
 * must not be able to get a certificate signed, or a grant widened, by changing rows. Each test
 * makes the change an attacker would make, with SQL on a running Signet (SQLite, or PostgreSQL
 * under SIGNET_TEST_POSTGRES), and shows that Signet refuses it and logs it at error level:
 *   - API tokens: a row inserted for a secret of the attacker's choosing, a token widened
 *     (scopes, profiles, name suffixes, expiry, another secret), un-revoked, or rolled back to
 *     the row (and MAC) it had before its revocation;
 *   - a stored certificate whose DER was replaced: renew refuses it;
 *   - CA rows: a revoked CA flipped back to active, a CA pointed at another CA's key, a CA row
 *     given another CA's certificate and key;
 *   - `signet audit verify` names every one of these rows (and a certificate un-revoked in its
 *     row, which OCSP would follow: not prevented, see docs/security.md);
 *   - upgrade: tokens and ACME rows of the version before MACs keep working (sealed once, at the
 *     first start), a row inserted after that never does, not even once the marker is deleted;
 *   - ACME: an authorization set valid, an order set ready, a valid authorization's MAC moved
 *     onto another, an account's key replaced, an account or an EAB key moved to the directory
 *     that requires External Account Binding — none finalizes, registers or acts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac, randomBytes, X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { api, signet, signetAsync, startServer, type RunningServer } from './helpers/cli.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';
import { csrMaker, openssl, parseCrlText, serialValue, TempDir } from './helpers/openssl.js';
import { countRows, sql } from './helpers/sql.js';
import { masterKey, rowMacs } from './helpers/integrity.js';
import { b64u, ERR, makeJws, newKey, thumbprint, startWorld, type Key, type World } from './helpers/acme.js';
import { loadConfig } from '../src/config/config.js';
import { openSignet } from '../src/runtime/open.js';
import { createHierarchy } from '../src/ca/hierarchy.js';
import { createToken, revokeToken } from '../src/ca/tokens.js';
import { kekId } from '../src/keystore/kek.js';
import { SealedKeyStore } from '../src/keystore/sealed-key-store.js';
import { eabSealId } from '../src/ca/row-integrity.js';
import { storageOf } from '../src/storage/database.js';

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const newSecret = () => `sgt_${randomBytes(32).toString('base64url')}`;
const TOKEN_COLUMNS = '"id", "name", "secretHash", "scopes", "profiles", "nameSuffixes", "expiresAt", "revokedAt", "lastUsedAt", "createdAt", "grantMac"';

/** The server's log lines at error level (pino JSON on stderr) that match `re`. */
function errorLogs(server: RunningServer, re: RegExp): { msg: string; [k: string]: unknown }[] {
  return server
    .stderr()
    .split('\n')
    .filter(Boolean)
    .flatMap((l) => {
      try {
        return [JSON.parse(l)];
      } catch {
        return [];
      }
    })
    .filter((l) => l.level >= 50 && re.test(l.msg));
}

/** The log lines matching, once `enough` holds (a line can reach the pipe after the response that follows it). */
async function logged(server: RunningServer, re: RegExp, enough: (lines: { msg: string; [k: string]: unknown }[]) => boolean = (l) => l.length > 0) {
  for (let i = 0; i < 50 && !enough(errorLogs(server, re)); i++) await new Promise((r) => setTimeout(r, 100));
  return errorLogs(server, re);
}

async function as(server: RunningServer, token: string, method: string, path: string, body?: unknown) {
  return api({ url: server.url, token }, method, path, body);
}

describe('a database writer without the master key: API tokens, certificates and CAs', { concurrency: false }, () => {
  const tmp = new TempDir();
  const makeCsr = csrMaker(tmp);
  let env: TestEnv;
  let server: RunningServer;
  let rootId: string;
  let intId: string;
  const admin = (method: string, path: string, body?: unknown) => api(server, method, path, body);
  const newToken = async (body: Record<string, unknown>) => {
    const r = await admin('POST', '/api/v1/tokens', body);
    assert.equal(r.status, 201, r.text);
    return { id: r.json.id as string, token: r.json.token as string };
  };
  const restart = async () => {
    await server.stop();
    server = await startServer(env.env);
  };

  before(async () => {
    env = await createTestEnv();
    server = await startServer(env.env);
    const cas = (await admin('GET', '/api/v1/cas')).json.items as { id: string; parentId: string | null }[];
    rootId = cas.find((c) => c.parentId === null)!.id;
    intId = cas.find((c) => c.parentId === rootId)!.id;
  });
  after(async () => {
    await server?.stop();
    await env?.cleanup();
    tmp.remove();
  });

  test("a token row inserted for a secret of the attacker's choosing: 401 like an unknown token, and an error log line", async () => {
    const [model] = await sql(env, 'SELECT "grantMac" FROM "ApiToken" WHERE name = ?', ['admin (first start)']);
    // The old stored form (SHA-256 of the secret), a keyed-looking hash, each without a MAC or with the admin token's MAC.
    const cases = [
      { id: 'tok-forged01', secret: newSecret(), hash: (s: string) => sha256(s), mac: null },
      { id: 'tok-forged02', secret: newSecret(), hash: (s: string) => sha256(s), mac: model.grantMac },
      { id: 'tok-forged03', secret: newSecret(), hash: (s: string) => sha256(`guess ${s}`), mac: randomBytes(32).toString('hex') },
    ];
    for (const c of cases) {
      await sql(
        env,
        `INSERT INTO "ApiToken" (${TOKEN_COLUMNS}) SELECT ?, 'forged', ?, 'admin', NULL, NULL, NULL, NULL, NULL, "createdAt", ? FROM "ApiToken" WHERE name = 'admin (first start)'`,
        [c.id, c.hash(c.secret), c.mac],
      );
      const r = await as(server, c.secret, 'GET', '/api/v1/tokens');
      if (c.id !== 'tok-forged03') {
        assert.equal(r.status, 401, `${c.id}: ${r.text}`);
        assert.equal(r.json.detail, 'the bearer token is unknown');
        assert.equal(
          (await logged(server, /API token row failed its integrity check/, (l) => l.some((x) => x.tokenId === c.id))).filter((l) => l.tokenId === c.id).length,
          1,
          `${c.id}: one error line naming the row`,
        );
      } else assert.equal(r.status, 401, 'a hash that is not the keyed hash of the secret finds nothing');
      const issued = await as(server, c.secret, 'POST', '/api/v1/certificates', { csr: makeCsr('DNS:forged-token.tamper.test'), profile: 'server' });
      assert.equal(issued.status, 401, issued.text);
    }
    assert.equal(await countRows(env, 'Certificate', 'WHERE "sanText" LIKE ?', ['%forged-token%']), 0, 'nothing issued');
  });

  test('a token widened in the database (scopes, profiles, name suffixes, expiry, another secret): the whole token is refused', async () => {
    const changes: [string, Record<string, unknown>, string, unknown[]][] = [
      ['scopes', { scopes: ['read'] }, `UPDATE "ApiToken" SET scopes = 'read,admin' WHERE id = ?`, []],
      ['profiles', { scopes: ['issue', 'read'], profiles: ['peer'] }, 'UPDATE "ApiToken" SET profiles = NULL WHERE id = ?', []],
      ['nameSuffixes', { scopes: ['issue', 'read'], nameSuffixes: ['narrow.tamper.test'] }, 'UPDATE "ApiToken" SET "nameSuffixes" = NULL WHERE id = ?', []],
      [
        'expiresAt',
        { scopes: ['read'], expiresAt: new Date(Date.now() + 3_600_000).toISOString() },
        'UPDATE "ApiToken" SET "expiresAt" = NULL WHERE id = ?',
        [],
      ],
    ];
    for (const [what, body, update] of changes) {
      const t = await newToken({ name: `widen ${what}`, ...body });
      assert.equal((await as(server, t.token, 'GET', '/api/v1/certificates?limit=1')).status, 200, `${what}: the token works before`);
      await sql(env, update, [t.id]);
      for (const [method, path] of [
        ['GET', '/api/v1/certificates?limit=1'],
        ['GET', '/api/v1/tokens'],
      ]) {
        const r = await as(server, t.token, method!, path!);
        assert.equal(r.status, 401, `${what} widened, ${method} ${path}: ${r.text}`);
      }
      const issued = await as(server, t.token, 'POST', '/api/v1/certificates', { csr: makeCsr('DNS:wide.tamper.test'), profile: 'server' });
      assert.equal(issued.status, 401, `${what}: ${issued.text}`);
      assert.ok(
        (await logged(server, /API token row failed its integrity check/, (l) => l.some((x) => x.tokenId === t.id))).some((l) => l.tokenId === t.id),
        `${what}: logged at error level`,
      );
    }
    // Another secret put on an existing admin token's row.
    const victim = await newToken({ name: 'victim admin', scopes: ['admin'] });
    const mine = newSecret();
    await sql(env, 'UPDATE "ApiToken" SET "secretHash" = ? WHERE id = ?', [sha256(mine), victim.id]);
    assert.equal((await as(server, mine, 'GET', '/api/v1/tokens')).status, 401, "the attacker's secret on the admin token's row");
    assert.equal(await countRows(env, 'Certificate', 'WHERE "sanText" LIKE ?', ['%wide.tamper%']), 0);
  });

  test('a revoked token un-revoked in the database, or rolled back to its row and MAC from before the revocation: 401', async () => {
    const t = await newToken({ name: 'unrevoked', scopes: ['read'] });
    assert.equal((await admin('DELETE', `/api/v1/tokens/${t.id}`)).status, 204);
    await sql(env, 'UPDATE "ApiToken" SET "revokedAt" = NULL WHERE id = ?', [t.id]);
    const r = await as(server, t.token, 'GET', '/api/v1/certificates?limit=1');
    assert.equal(r.status, 401, r.text);
    assert.ok((await logged(server, /API token row failed its integrity check/, (l) => l.some((x) => x.tokenId === t.id))).some((l) => l.tokenId === t.id));

    // The row as it was (its MAC then verified), e.g. from an old backup: the trail remembers.
    const u = await newToken({ name: 'rolled back', scopes: ['read'] });
    const [before] = await sql(env, 'SELECT "grantMac" FROM "ApiToken" WHERE id = ?', [u.id]);
    assert.equal((await admin('DELETE', `/api/v1/tokens/${u.id}`)).status, 204);
    await sql(env, 'UPDATE "ApiToken" SET "revokedAt" = NULL, "grantMac" = ? WHERE id = ?', [before.grantMac, u.id]);
    const back = await as(server, u.token, 'GET', '/api/v1/certificates?limit=1');
    assert.equal(back.status, 401, back.text);
    assert.equal(back.json.detail, 'the bearer token was revoked');
    assert.ok(
      (await logged(server, /the audit trail recorded its revocation: the row was rolled back/, (l) => l.some((x) => x.tokenId === u.id))).some(
        (l) => l.tokenId === u.id,
      ),
    );
    // Also in a process that never saw the revocation happen.
    await restart();
    assert.equal((await as(server, u.token, 'GET', '/api/v1/certificates?limit=1')).status, 401);
  });

  test('renew of a certificate row whose DER was replaced: 409, nothing signed, an error log line', async () => {
    const issued = await admin('POST', '/api/v1/certificates', { csr: makeCsr('DNS:renew-me.tamper.test'), profile: 'server' });
    assert.equal(issued.status, 201, issued.text);
    const serial = issued.json.serial as string;
    // A certificate for a name Signet never issued, with the row's serial, signed by a key of the attacker's.
    const key = tmp.file('forged-leaf.key');
    assert.equal(openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key]).status, 0);
    const out = tmp.file('forged-leaf.der');
    const g = openssl([
      'req',
      '-x509',
      '-key',
      key,
      '-subj',
      '/CN=never-issued.tamper.test',
      '-addext',
      'subjectAltName=DNS:never-issued.tamper.test',
      '-addext',
      'basicConstraints=critical,CA:FALSE',
      '-set_serial',
      `0x${serial}`,
      '-days',
      '30',
      '-outform',
      'DER',
      '-out',
      out,
    ]);
    assert.equal(g.status, 0, g.stderr);
    await sql(env, 'UPDATE "Certificate" SET der = ? WHERE serial = ?', [readFileSync(out), serial]);
    const before = await countRows(env, 'Certificate');
    const r = await admin('POST', `/api/v1/certificates/${serial}/renew`, {});
    assert.equal(r.status, 409, r.text);
    assert.match(
      r.json.detail,
      new RegExp(`^certificate ${serial} cannot be renewed: its stored DER does not verify under CA ${intId}'s key \\(its record was changed in the database`),
    );
    assert.equal(await countRows(env, 'Certificate'), before, 'nothing was signed');
    assert.equal((await logged(server, /stored certificate failed its integrity check/)).length, 1);
    // A rekey of it, with a CSR for the forged name, likewise.
    const rekey = await admin('POST', `/api/v1/certificates/${serial}/renew`, { csr: makeCsr('DNS:never-issued.tamper.test') });
    assert.equal(rekey.status, 409, rekey.text);
    assert.equal(await countRows(env, 'Certificate'), before);
  });

  test("CA rows: a revoked CA flipped back to active, a CA given another CA's key, a CA given another CA's certificate and key: none signs", async () => {
    const create = async (subject: string) => {
      const r = await admin('POST', '/api/v1/cas', { parentId: rootId, subject });
      assert.equal(r.status, 201, r.text);
      return r.json as { id: string; certificate: string };
    };
    const [revoked, borrower, impostor] = [await create('CN=Revoked Issuing'), await create('CN=Borrowing Issuing'), await create('CN=Impostor Issuing')];
    const issueFrom = (caId: string, name: string) =>
      admin('POST', '/api/v1/certificates', { csr: makeCsr(`DNS:${name}.tamper.test`), profile: 'server', caId });
    for (const ca of [revoked, borrower, impostor]) assert.equal((await issueFrom(ca.id, `before-${ca.id}`)).status, 201, `${ca.id} issues before`);
    assert.equal((await admin('POST', `/api/v1/cas/${revoked.id}/revoke`, { reason: 'keyCompromise' })).status, 200);
    assert.equal((await issueFrom(revoked.id, 'after-revoke')).status, 409);

    await sql(env, `UPDATE "CertificateAuthority" SET status = 'active', "revokedAt" = NULL, "revocationReason" = NULL WHERE id = ?`, [revoked.id]);
    const [int] = await sql(env, 'SELECT "keyId", "certificateDer" FROM "CertificateAuthority" WHERE id = ?', [intId]);
    await sql(env, 'UPDATE "CertificateAuthority" SET "keyId" = ? WHERE id = ?', [int.keyId, borrower.id]);
    await sql(env, 'UPDATE "CertificateAuthority" SET "keyId" = ?, "certificateDer" = ? WHERE id = ?', [int.keyId, int.certificateDer, impostor.id]);
    await restart(); // no cached issuer: what the rows say now
    const count = await countRows(env, 'Certificate');
    const flipped = await issueFrom(revoked.id, 'unrevoked-ca');
    assert.equal(flipped.status, 409, flipped.text);
    assert.match(flipped.json.detail, new RegExp(`CA ${revoked.id} is revoked and does not issue`));
    const borrowed = await issueFrom(borrower.id, 'borrowed-key');
    assert.equal(borrowed.status, 409, borrowed.text);
    assert.match(
      borrowed.json.detail,
      new RegExp(`^CA ${borrower.id}'s certificate is not the certificate of its key: its record was changed in the database`),
    );
    const impersonated = await issueFrom(impostor.id, 'impostor');
    assert.equal(impersonated.status, 409, impersonated.text);
    assert.match(impersonated.json.detail, new RegExp(`^CA ${impostor.id} is not the CA of the certificate in its record`));
    assert.equal(await countRows(env, 'Certificate'), count, 'nothing was signed');
    assert.ok(
      (await logged(server, /the audit trail recorded its revocation/, (l) => l.some((x) => x.caId === revoked.id))).some((l) => l.caId === revoked.id),
    );
    for (const ca of [borrower, impostor])
      assert.ok(
        (await logged(server, /CA record failed its integrity check/, (l) => l.some((x) => x.caId === ca.id))).some((l) => l.caId === ca.id),
        `${ca.id} logged`,
      );

    // Relying parties are still told the CA is revoked: the root's next CRL, and OCSP.
    const crlFile = tmp.file('root.crl');
    const c = await signetAsync(['crl', '--ca', rootId, '--out', crlFile], env.env);
    assert.equal(c.status, 0, c.stderr);
    const text = openssl(['crl', '-inform', 'DER', '-in', crlFile, '-noout', '-text']);
    const revokedSerial = new X509Certificate(revoked.certificate).serialNumber.toLowerCase();
    assert.ok(parseCrlText(text.stdout).entries.has(serialValue(revokedSerial)), "the CA is on its parent's CRL");
    const rootPem = tmp.file('root.pem', Buffer.from(await (await fetch(`${server.url}/pki/${rootId}.crt`)).arrayBuffer()));
    const rootPemFile = tmp.file('root-pem.pem', new X509Certificate(readFileSync(rootPem)).toString());
    const o = openssl([
      'ocsp',
      '-issuer',
      rootPemFile,
      '-cert',
      tmp.file('revoked-ca.pem', revoked.certificate),
      '-url',
      `${server.url}/ocsp`,
      '-CAfile',
      rootPemFile,
    ]);
    assert.match(o.stdout, /: revoked/, o.stdout + o.stderr);
  });

  test('`signet audit verify` names every tampered row', async () => {
    // One more: a revoked certificate made good again in its row (OCSP would follow the row).
    const issued = await admin('POST', '/api/v1/certificates', { csr: makeCsr('DNS:unrevoked-cert.tamper.test'), profile: 'server' });
    assert.equal((await admin('POST', `/api/v1/certificates/${issued.json.serial}/revoke`, { reason: 'keyCompromise' })).status, 200);
    await sql(env, `UPDATE "Certificate" SET status = 'good', "revokedAt" = NULL, "revocationReason" = NULL WHERE serial = ?`, [issued.json.serial]);
    const r = await signetAsync(['audit', 'verify', '--json'], env.env);
    assert.equal(r.status, 1, r.stderr);
    const problems = (JSON.parse(r.stdout).inventory.problems as { problem: string }[]).map((p) => p.problem).join('\n');
    assert.match(problems, /^3 of \d+ API tokens have no token\.created event \(inserted in the database\?\): tok-forged01, tok-forged02, tok-forged03$/m);
    assert.match(
      problems,
      /^\d+ of \d+ API tokens fail their grant MAC \(inserted or changed in the database without the master key; they are refused\): .*tok-forged01/m,
    );
    const bad = /API tokens fail their grant MAC[^:]*: (.*)$/m.exec(problems)![1]!;
    for (const name of ['widen scopes', 'widen profiles', 'widen nameSuffixes', 'widen expiresAt', 'victim admin', 'unrevoked']) {
      const [{ id }] = await sql(env, 'SELECT id FROM "ApiToken" WHERE name = ?', [name]);
      assert.ok(bad.includes(id), `${name} (${id}) is named`);
    }
    const ids = (await sql(env, 'SELECT id FROM "ApiToken" WHERE name IN (?, ?) ORDER BY id', ['rolled back', 'unrevoked'])).map((r: any) => r.id);
    assert.match(
      problems,
      new RegExp(
        `^2 API tokens were revoked \\(token\\.revoked event\\) but their rows say not \\(rolled back in the database; they are refused\\): ${ids.join(', ')}$`,
        'm',
      ),
    );
    assert.match(problems, /^CA int-[0-9a-f]{10} was revoked \(ca\.revoked event \d+\) but its row says active/m);
    assert.match(problems, /^CA int-[0-9a-f]{10} is not the CA of the certificate in its row/m);
    assert.match(
      problems,
      new RegExp(
        `^1 certificates have a status their revocation events do not give them \\(changed in the database; OCSP and CRLs follow the row\\): ${issued.json.serial} \\(good, its events say revoked\\)$`,
        'm',
      ),
    );
  });
});

describe('upgrade: rows of the version before MACs are sealed once, at the first start', { concurrency: false }, () => {
  let env: TestEnv;
  let server: RunningServer | undefined;
  const legacy: Record<string, { id: string; token: string }> = {};
  let accountId: string;
  let authzId: string;

  before(async () => {
    env = await createTestEnv();
    // The database as the version before wrote it: a hierarchy, tokens stored under the SHA-256 of
    // their secrets without a MAC (one revoked), an ACME account and a valid authorization without
    // MACs, an EAB key sealed without its directory — and no integrity.sealed event.
    const config = loadConfig(env.env);
    const ctx = await openSignet(config, pino({ level: 'silent' }));
    try {
      const ca = { keyAlgorithm: 'ecdsa-p256' as const, validityDays: 3650 };
      await createHierarchy(ctx, { subject: 'CN=Old Root', ...ca }, { subject: 'CN=Old Issuing', ...ca, pathLen: 0 });
      for (const [name, scopes] of [
        ['admin', ['admin']],
        ['reader', ['read']],
        ['revoked', ['read']],
      ] as const) {
        const t = await createToken(ctx, { name: `old ${name}`, scopes: [...scopes] }, 'system');
        legacy[name] = { id: t.id, token: t.token };
      }
      await revokeToken(ctx, legacy.revoked!.id, 'system');
      const key = newKey('ES256');
      accountId = 'legacyAccount01';
      authzId = 'legacyAuthz0001';
      await storageOf(ctx.db).prisma.acmeAccount.create({
        data: { id: accountId, thumbprint: thumbprint(key.jwk), jwk: JSON.stringify(key.jwk), status: 'valid', profile: 'server' },
      });
      await storageOf(ctx.db).prisma.acmeAuthorization.create({
        data: {
          id: authzId,
          accountId,
          identifierType: 'dns',
          identifierValue: 'old.signet.test',
          status: 'valid',
          expires: new Date(Date.now() + 86_400_000),
        },
      });
      const { sealed, kekId: k } = ctx.keys.sealSecret('eab-legacy01', Buffer.alloc(32, 7));
      await storageOf(ctx.db).prisma.acmeEabKey.create({ data: { id: 'eab-legacy01', sealed: new Uint8Array(sealed), kekId: k, profile: 'server' } });
    } finally {
      await ctx.db.close();
    }
    for (const t of Object.values(legacy)) await sql(env, 'UPDATE "ApiToken" SET "secretHash" = ?, "grantMac" = NULL WHERE id = ?', [sha256(t.token), t.id]);
    await sql(env, 'UPDATE "AcmeAccount" SET mac = NULL');
    assert.equal(await countRows(env, 'AuditEvent', 'WHERE action = ?', ['integrity.sealed']), 0, 'no sealing yet');
    writeFileSync(join(env.dataDir, 'admin-token'), legacy.admin!.token + '\n', { mode: 0o600 });
  });
  after(async () => {
    await server?.stop();
    await env?.cleanup();
  });

  test('the first start seals: tokens made before keep working (revoked ones stay revoked), ACME accounts are sealed, valid authorizations expire, EAB keys are re-sealed to their directory', async () => {
    server = await startServer(env.env);
    assert.equal((await as(server, legacy.admin!.token, 'GET', '/api/v1/tokens')).status, 200, 'the old admin token works');
    assert.equal((await as(server, legacy.reader!.token, 'GET', '/api/v1/certificates?limit=1')).status, 200, 'the old read token works');
    assert.equal((await as(server, legacy.reader!.token, 'GET', '/api/v1/tokens')).status, 403, 'within its scopes');
    assert.equal((await as(server, legacy.revoked!.token, 'GET', '/api/v1/certificates?limit=1')).status, 401, 'a revoked one stays revoked');
    const events = await sql(env, 'SELECT actor, details FROM "AuditEvent" WHERE action = ?', ['integrity.sealed']);
    assert.equal(events.length, 1, 'one audit event');
    const d = JSON.parse(events[0].details);
    assert.deepEqual(
      { ...d, tokens: [...d.tokens].sort() },
      {
        version: 1,
        apiTokens: 3,
        acmeAccounts: 1,
        acmeAuthorizationsExpired: 1,
        eabKeysResealed: 1,
        tokens: Object.values(legacy)
          .map((t) => t.id)
          .sort(),
        moreTokens: 0,
      },
    );
    const macs = rowMacs(env);
    const [acct] = await sql(env, 'SELECT * FROM "AcmeAccount" WHERE id = ?', [accountId]);
    assert.ok(macs.accountIntact(acct), 'the account carries a MAC that verifies');
    const [authz] = await sql(env, 'SELECT status FROM "AcmeAuthorization" WHERE id = ?', [authzId]);
    assert.equal(authz.status, 'expired', 'a valid authorization of the old version must be won again');
    const [eab] = await sql(env, 'SELECT sealed FROM "AcmeEabKey" WHERE id = ?', ['eab-legacy01']);
    const key = masterKey(env);
    const store = new SealedKeyStore(undefined as never, { key, id: kekId(key), source: 'file' });
    assert.deepEqual(store.unsealSecret(eabSealId('eab-legacy01', 'server'), eab.sealed), Buffer.alloc(32, 7), 'sealed with its directory');
    assert.equal(store.unsealSecret('eab-legacy01', eab.sealed), null, 'and no longer without it');
    assert.deepEqual(errorLogs(server, /./), [], 'no error at a clean upgrade');
  });

  test('a row inserted after the upgrade without a MAC never authenticates: not now, not after a restart, not after the sealing event is deleted', async () => {
    const secret = newSecret();
    await sql(
      env,
      `INSERT INTO "ApiToken" (${TOKEN_COLUMNS}) SELECT 'tok-late0001', 'late', ?, 'admin', NULL, NULL, NULL, NULL, NULL, "createdAt", NULL FROM "ApiToken" WHERE id = ?`,
      [sha256(secret), legacy.admin!.id],
    );
    assert.equal((await as(server!, secret, 'GET', '/api/v1/tokens')).status, 401);
    assert.equal((await logged(server!, /API token row failed its integrity check/)).length, 1);
    await server!.stop();
    server = await startServer(env.env);
    assert.equal((await as(server, secret, 'GET', '/api/v1/tokens')).status, 401, 'not sealed by a later start');
    assert.equal((await logged(server, /1 authorisation rows carry no MAC although this database was sealed/)).length, 1, 'the start says so');
    assert.equal((await as(server, legacy.admin!.token, 'GET', '/api/v1/tokens')).status, 200);
    // The attacker deletes the sealing event to have the next start seal their row: the chain breaks, nothing is sealed.
    await server.stop();
    await sql(env, 'DELETE FROM "AuditEvent" WHERE action = ?', ['integrity.sealed']);
    server = await startServer(env.env);
    assert.equal((await as(server, secret, 'GET', '/api/v1/tokens')).status, 401, 'still refused');
    assert.equal((await logged(server, /authorisation rows not sealed: the audit trail does not verify/)).length, 1);
    const [row] = await sql(env, 'SELECT "grantMac" FROM "ApiToken" WHERE id = ?', ['tok-late0001']);
    assert.equal(row.grantMac, null);
  });
});

const idOf = (url: string) => url.slice(url.lastIndexOf('/') + 1);

describe('a database writer without the master key: ACME authorizations, orders and accounts', { concurrency: false }, () => {
  let w: World;

  before(async () => {
    w = await startWorld();
  });
  after(async () => {
    await w?.stop();
  });

  const finalizeRefused = async (acct: Parameters<World['newOrder']>[0], order: { json: any; headers: any }, names: string[]) => {
    const before = await countRows(w.s.env, 'Certificate');
    const fin = await w.acme.post(order.json.finalize, { csr: b64u(w.csr(names).der) }, acct);
    assert.equal(fin.status, 403, fin.text);
    assert.ok([`${ERR}unauthorized`, `${ERR}orderNotReady`].includes(fin.json.type), fin.text);
    const after = await w.acme.post(order.headers.location, '', acct);
    assert.equal(after.json.status, 'invalid', after.text);
    assert.equal(await countRows(w.s.env, 'Certificate'), before, 'no certificate stored');
    return { fin, after };
  };

  test('an authorization set valid in the database (no MAC, or the MAC of another): finalize refused, no certificate', async () => {
    const acct = await w.acme.newAccount(newKey('ES256'));
    // A genuinely validated authorization, whose MAC the attacker copies.
    await w.issue(acct, ['genuine.signet.test']);
    const [genuine] = await sql(w.s.env, 'SELECT mac, expires FROM "AcmeAuthorization" WHERE "identifierValue" = ? AND status = ?', [
      'genuine.signet.test',
      'valid',
    ]);
    for (const [name, mac] of [
      ['set-valid.signet.test', null],
      ['copied-mac.signet.test', genuine.mac],
    ] as const) {
      if (mac !== null) assert.match(mac, /^[0-9a-f]{64}$/, 'a validated authorization carries its MAC');
      const order = await w.newOrder(acct, [name]);
      assert.equal(order.status, 201, order.text);
      const authz = idOf(order.json.authorizations[0]);
      await sql(w.s.env, 'UPDATE "AcmeAuthorization" SET status = ?, mac = ?, expires = ? WHERE id = ?', ['valid', mac, genuine.expires, authz]);
      const { after } = await finalizeRefused(acct, order, [name]);
      assert.match(
        after.json.error.detail,
        new RegExp(`^authorization ${authz} for ${name.replace(/\./g, '\\.')} is marked valid, but Signet did not validate it \\(its MAC does not verify\\)`),
      );
      assert.ok(
        (await logged(w.s.server, /ACME authorization is marked valid but failed its integrity check/, (l) => l.some((x) => x.authorizationId === authz))).some(
          (l) => l.authorizationId === authz,
        ),
        'logged at error level',
      );
      // Nor does a new order reuse it.
      const again = await w.newOrder(acct, [name]);
      assert.notEqual(idOf(again.json.authorizations[0]), authz, 'a forged valid authorization is not reused');
      assert.equal(again.json.status, 'pending');
    }
  });

  test('an order marked ready in the database while its authorization is pending: finalize refused', async () => {
    const acct = await w.acme.newAccount(newKey('ES256'));
    const order = await w.newOrder(acct, ['marked-ready.signet.test']);
    await sql(w.s.env, 'UPDATE "AcmeOrder" SET status = ? WHERE id = ?', ['ready', idOf(order.headers.location!)]);
    await finalizeRefused(acct, order, ['marked-ready.signet.test']);
    assert.ok(
      (await logged(w.s.server, /integrity check/, (l) => l.some((x) => String(x.detail).includes('marked ready while')))).some((l) =>
        String(l.detail).includes('marked ready while an authorization is still pending'),
      ),
    );
  });

  test("an account whose key was replaced in the database: unknown to Signet, so it cannot use the victim's authorizations", async () => {
    const victim = await w.acme.newAccount(newKey('ES256'));
    await w.issue(victim, ['victim.signet.test']);
    const attacker = newKey('ES256');
    await sql(w.s.env, 'UPDATE "AcmeAccount" SET jwk = ?, thumbprint = ? WHERE id = ?', [
      JSON.stringify(attacker.jwk),
      thumbprint(attacker.jwk),
      idOf(victim.url),
    ]);
    const before = await countRows(w.s.env, 'Certificate');
    const r = await w.acme.post(w.acme.dir.newOrder, { identifiers: [{ type: 'dns', value: 'victim.signet.test' }] }, { key: attacker, url: victim.url });
    assert.equal(r.status, 400, r.text);
    assert.equal(r.json.type, `${ERR}accountDoesNotExist`);
    assert.equal(await countRows(w.s.env, 'Certificate'), before);
    assert.ok(
      (await logged(w.s.server, /ACME account row failed its integrity check/, (l) => l.some((x) => x.account === idOf(victim.url)))).some(
        (l) => l.account === idOf(victim.url),
      ),
    );
  });
});

describe('a database writer without the master key: ACME directories and External Account Binding', { concurrency: false }, () => {
  let w: World;
  let peerDir: Record<string, any>;
  const eabKey = (profile: string) => {
    const r = signet(['acme', 'eab', 'create', '--profile', profile, '--json'], w.s.env.env);
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as { kid: string; hmacKey: string };
  };
  const eab = (k: { kid: string; hmacKey: string }, key: Key, url: string) =>
    makeJws({ alg: 'HS256', kid: k.kid, url }, key.jwk, (input) => createHmac('sha256', Buffer.from(k.hmacKey, 'base64url')).update(input).digest());

  before(async () => {
    w = await startWorld({ SIGNET_ACME_PROFILES: 'server,peer', SIGNET_ACME_EAB_REQUIRED: 'peer' });
    peerDir = await w.acme.directory('/peer/directory');
  });
  after(async () => {
    await w?.stop();
  });

  test('an EAB key moved to the directory that requires EAB does not register an account there', async () => {
    const k = eabKey('server');
    await sql(w.s.env, 'UPDATE "AcmeEabKey" SET profile = ? WHERE id = ?', ['peer', k.kid]);
    const key = newKey('ES256');
    const r = await w.acme.post(peerDir.newAccount, { termsOfServiceAgreed: true, externalAccountBinding: eab(k, key, peerDir.newAccount) }, key);
    assert.equal(r.status, 401, r.text);
    assert.equal(r.json.type, `${ERR}unauthorized`);
    assert.equal(await countRows(w.s.env, 'AcmeAccount', 'WHERE profile = ?', ['peer']), 0, 'no account at peer');
    assert.ok(
      (await logged(w.s.server, /ACME EAB key row does not unseal for its directory/, (l) => l.some((x) => x.eabKey === k.kid))).some(
        (l) => l.eabKey === k.kid,
      ),
    );
  });

  test('an account moved to the directory that requires EAB is unknown there', async () => {
    const acct = await w.acme.newAccount(newKey('ES256'));
    await sql(w.s.env, 'UPDATE "AcmeAccount" SET profile = ? WHERE id = ?', ['peer', idOf(acct.url)]);
    const orders = await countRows(w.s.env, 'AcmeOrder');
    const r = await w.acme.post(peerDir.newOrder, { identifiers: [{ type: 'dns', value: 'moved.signet.test' }] }, acct);
    assert.equal(r.status, 400, r.text);
    assert.equal(r.json.type, `${ERR}accountDoesNotExist`);
    assert.equal(await countRows(w.s.env, 'AcmeOrder'), orders, 'no order');
    assert.ok((await logged(w.s.server, /ACME account row failed its integrity check/, (l) => l.some((x) => x.account === idOf(acct.url)))).length > 0);
  });
});
