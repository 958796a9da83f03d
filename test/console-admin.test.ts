/**
 * The console's administration views in a real browser (Debian's chromium, playwright-core)
 * against a real `signet serve` (issue #19): API tokens (the secret shown once, then
 * forgotten; revoked from the table), an intermediate created under the root (its certificate
 * checked with openssl), key groups (created, a refused name showing the server's detail, a
 * member added and removed), webhooks (registered with the secret shown once, a dead letter sent
 * again, removed) and the at-risk list above the inventory. A read-only token is refused each
 * with the server's reason.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { launchChromium, openRecordingErrors } from './helpers/browser.js';
import { api, startServer, type RunningServer } from './helpers/cli.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';
import { newKeyCsr, openssl, TempDir } from './helpers/openssl.js';

describe('web console: administration', () => {
  let env: TestEnv;
  let server: RunningServer;
  let browser: Browser;
  const tmp = new TempDir();
  let readToken = '';

  // A profile whose alert window spans the whole life of a short certificate: at risk at once.
  const PROFILES = {
    alerted: { sanTypes: ['dns'], defaultValidityDays: 2, maxValidityDays: 30, extKeyUsage: ['serverAuth'], alertDays: 29 },
  };
  let receiver: Server;
  let receiverUrl = '';

  before(async () => {
    const profilesFile = join(tmp.path, 'profiles.json');
    writeFileSync(profilesFile, JSON.stringify(PROFILES));
    env = await createTestEnv({
      SIGNET_PROFILES_FILE: profilesFile,
      SIGNET_WEBHOOK_MAX_ATTEMPTS: '2',
      SIGNET_WEBHOOK_RETRY_BASE_MS: '50',
      SIGNET_WEBHOOK_RETRY_CAP_MS: '100',
    });
    server = await startServer(env.env);
    // A receiver that refuses everything (its events become dead letters) until told otherwise.
    let accept = false;
    receiver = createServer((req, res) => {
      req.resume();
      res.statusCode = accept ? 204 : 503;
      res.end();
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    receiverUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hook`;
    setAccepting = (v) => {
      accept = v;
    };
    const t = await api(server, 'POST', '/api/v1/tokens', { name: 'console reader', scopes: ['read'] });
    assert.equal(t.status, 201, t.text);
    readToken = t.json.token;
    browser = await launchChromium();
  });
  let setAccepting: (v: boolean) => void = () => undefined;
  after(async () => {
    receiver?.close();
    await browser?.close();
    await server?.stop();
    await env?.cleanup();
    tmp.remove();
  });

  async function signedIn(token: string, hash: string): Promise<{ page: Page; errors: string[] }> {
    const { page, errors } = await openRecordingErrors(browser, `${server.url}/console`);
    await page.fill('#token', token);
    await page.click('#sign-in-form button[type=submit]');
    await page.waitForSelector('#view-certificates:not([hidden])');
    await page.evaluate((h) => {
      location.hash = h;
    }, hash);
    return { page, errors };
  }

  const message = async (page: Page, pattern: RegExp) => {
    try {
      await page.waitForFunction((src) => new RegExp(src).test(document.getElementById('message')?.textContent ?? ''), pattern.source, { timeout: 10_000 });
    } catch {
      assert.match((await page.textContent('#message')) ?? '', pattern);
    }
    return (await page.textContent('#message')) ?? '';
  };

  test('an operator creates a limited token (shown once, then forgotten), it works, and revoking it from the table stops it', async () => {
    const { page, errors } = await signedIn(server.token, '#/tokens');
    await page.waitForSelector('#view-tokens:not([hidden])');
    await page.fill('#t-name', 'web-01 renewals');
    await page.check('#t-scopes input[value=read]');
    await page.fill('#t-names', 'web.console.test');
    await page.click('#token-form button[type=submit]');
    await page.waitForSelector('#token-made:not([hidden])');
    const secret = await page.inputValue('#token-made-secret');
    const id = (await page.textContent('#token-made-id'))!;
    assert.match(id, /^tok-[0-9a-f]+$/);
    const row = `#token-table tr[data-id="${id}"]`;
    await page.waitForSelector(row);
    assert.match((await page.textContent(row))!, /web-01 renewals.*read.*names under web\.console\.test.*active/s);

    const asIt = await fetch(`${server.url}/api/v1/cas`, { headers: { authorization: `Bearer ${secret}` } });
    assert.equal(asIt.status, 200, 'the secret the page showed is the token');
    const listed = await api(server, 'GET', '/api/v1/tokens');
    const made = listed.json.items.find((t: { id: string }) => t.id === id);
    assert.deepEqual([made.scopes, made.nameSuffixes], [['read'], ['web.console.test']]);
    assert.ok(made.expiresAt, 'the 90-day default expiry is sent');

    await page.click('#token-made-done');
    assert.equal(await page.inputValue('#token-made-secret'), '', 'the secret is forgotten once copied');
    assert.equal(await page.isVisible('#token-made'), false);
    assert.equal((await page.content()).includes(secret), false, 'nowhere in the page any more');

    await page.click(`${row} button[data-revoke]`);
    await message(page, /Revoked tok-/);
    await page.waitForSelector(`${row} td.status-revoked`);
    const after = await fetch(`${server.url}/api/v1/cas`, { headers: { authorization: `Bearer ${secret}` } });
    assert.equal(after.status, 401);

    // No scope ticked: the server's own detail is shown, nothing is made.
    const before = (await api(server, 'GET', '/api/v1/tokens')).json.items.length;
    await page.fill('#t-name', 'nothing');
    await page.click('#token-form button[type=submit]');
    assert.match(await message(page, /\(400\)/), /scopes.*at least one scope/);
    assert.equal((await api(server, 'GET', '/api/v1/tokens')).json.items.length, before);
    assert.deepEqual(
      errors.filter((e) => !/400/.test(e)),
      [],
    );
    await page.context().close();
  });

  test('an operator creates an intermediate under the root; openssl verifies it', async () => {
    const cas = (await api(server, 'GET', '/api/v1/cas')).json.items as { id: string; parentId: string | null }[];
    const root = cas.find((c) => !c.parentId)!;
    const { page, errors } = await signedIn(server.token, '#/cas');
    await page.waitForSelector(`#c-parent option[value="${root.id}"]`, { state: 'attached' });
    await page.selectOption('#c-parent', root.id);
    await page.fill('#c-subject', 'CN=Console Issuing CA,O=Signet test');
    await page.selectOption('#c-key', 'ecdsa-p384');
    await page.fill('#c-days', '400');
    await page.click('#ca-create-form button[type=submit]');
    const said = await message(page, /Created intermediate/);
    const id = /Created intermediate (\S+)/.exec(said)![1]!;
    await page.waitForSelector(`#ca-table tr[data-ca="${id}"]`);
    const ca = (await api(server, 'GET', `/api/v1/cas/${id}`)).json;
    assert.equal(ca.parentId, root.id);
    assert.equal(ca.keyAlgorithm, 'ecdsa-p384');
    const rootPem = (await api(server, 'GET', `/api/v1/cas/${root.id}`)).json.certificate;
    const v = openssl(['verify', '-CAfile', tmp.file('root.pem', rootPem), tmp.file('ca.pem', ca.certificate)]);
    assert.equal(v.status, 0, v.stderr + v.stdout);
    assert.deepEqual(errors, []);
    await page.context().close();
  });

  test('an operator creates a key group, adds a member by serial and removes it; a bad name shows the server detail', async () => {
    const csr = newKeyCsr('m1.console.test');
    const cert = await api(server, 'POST', '/api/v1/certificates', { csr, profile: 'group-member' });
    assert.equal(cert.status, 201, cert.text);

    const { page, errors } = await signedIn(server.token, '#/groups');
    await page.waitForSelector('#view-groups:not([hidden])');
    await page.fill('#g-name', 'Not A Name');
    await page.click('#group-form button[type=submit]');
    assert.match(await message(page, /\(400\)/), /lower-case letters/);
    assert.equal((await api(server, 'GET', '/api/v1/groups')).json.items.length, 0);

    await page.fill('#g-name', 'console-fleet');
    await page.click('#group-form button[type=submit]');
    await message(page, /Created key group console-fleet/);
    await page.click('#group-table a:text("console-fleet")');
    await page.waitForSelector('#view-group:not([hidden])');
    await page.fill('#m-serial', cert.json.serial);
    await page.click('#member-form button[type=submit]');
    await message(page, /Added .* epoch 1/);
    await page.waitForSelector(`#member-table tr[data-serial="${cert.json.serial}"]`);
    let g = (await api(server, 'GET', '/api/v1/groups/console-fleet')).json;
    assert.deepEqual([g.members, g.epoch], [1, 1]);

    await page.click(`#member-table button[data-remove="${cert.json.serial}"]`);
    await message(page, /Removed/);
    await page.waitForSelector('#member-empty:not([hidden])');
    g = (await api(server, 'GET', '/api/v1/groups/console-fleet')).json;
    assert.deepEqual([g.members, g.epoch], [0, 2]);
    assert.deepEqual(
      errors.filter((e) => !/400/.test(e)),
      [],
    );
    await page.context().close();
  });

  test('the inventory opens with what is at risk of expiring; renewing takes it off', async () => {
    const csr = newKeyCsr('risky.console.test');
    const risky = await api(server, 'POST', '/api/v1/certificates', { csr, profile: 'alerted', validityDays: 2 });
    assert.equal(risky.status, 201, risky.text);
    const { page, errors } = await signedIn(server.token, '#/certificates');
    const row = `#risk-table tr[data-risk="${risky.json.serial}"]`;
    await page.waitForSelector(row);
    assert.match((await page.textContent(row))!, /risky\.console\.test.*alerted.*1 day/s);
    assert.equal(await page.isVisible('#risk-empty'), false);
    // The at-risk list comes before the inventory on the page.
    assert.ok(
      await page.evaluate(
        () => document.getElementById('risk-part')!.compareDocumentPosition(document.getElementById('cert-table')!) & Node.DOCUMENT_POSITION_FOLLOWING,
      ),
    );

    const renewed = await api(server, 'POST', `/api/v1/certificates/${risky.json.serial}/renew`, {});
    assert.equal(renewed.status, 201, renewed.text);
    await page.reload();
    await page.waitForSelector('#view-certificates:not([hidden])');
    await page.waitForFunction((sel) => !document.querySelector(sel) && document.querySelectorAll('#risk-table tbody tr').length >= 0, row);
    // The renewal is itself at risk (same profile, same short life): it, not its predecessor, is listed.
    await page.waitForSelector(`#risk-table tr[data-risk="${renewed.json.serial}"]`);
    assert.equal(await page.$(row), null);
    assert.deepEqual(errors, []);
    await page.context().close();
  });

  test('an operator registers a webhook (secret shown once), sends a dead letter again, and removes it', async () => {
    const { page, errors } = await signedIn(server.token, '#/webhooks');
    await page.waitForSelector('#view-webhooks:not([hidden])');
    await page.fill('#w-url', 'ftp://127.0.0.1/hook');
    await page.check('#w-events input[value="certificate.revoked"]');
    await page.click('#webhook-form button[type=submit]');
    assert.match(await message(page, /\(400\)/), /http/);
    assert.equal((await api(server, 'GET', '/api/v1/webhooks')).json.items.length, 0);

    await page.fill('#w-url', receiverUrl);
    await page.click('#webhook-form button[type=submit]');
    await page.waitForSelector('#webhook-made:not([hidden])');
    const id = (await page.textContent('#webhook-made-id'))!;
    const secret = await page.inputValue('#webhook-made-secret');
    assert.match(secret, /^whsec_/);
    await page.click('#webhook-made-done');
    assert.equal((await page.content()).includes(secret), false, 'the secret is forgotten once copied');
    const row = `#webhook-table tr[data-id="${id}"]`;
    await page.waitForSelector(row);

    // A revocation the receiver refuses twice becomes a dead letter.
    const csr = newKeyCsr('hooked.console.test');
    const c = await api(server, 'POST', '/api/v1/certificates', { csr, profile: 'server' });
    assert.equal((await api(server, 'POST', `/api/v1/certificates/${c.json.serial}/revoke`, { reason: 'keyCompromise' })).status, 200);
    const deadline = Date.now() + 20_000;
    while ((await api(server, 'GET', `/api/v1/webhooks/${id}`)).json.deadLetters !== 1) {
      assert.ok(Date.now() < deadline, 'the refused event becomes a dead letter');
      await new Promise((r) => setTimeout(r, 200));
    }
    await page.evaluate(() => {
      location.hash = '#/webhooks/';
    });
    await page.waitForSelector(`${row} button[data-dead]`);
    await page.click(`${row} button[data-dead]`);
    await page.waitForSelector('#dead-part:not([hidden]) #dead-table tbody tr');
    assert.match((await page.textContent('#dead-table tbody tr'))!, /certificate\.revoked.*2.*503/s);
    setAccepting(true);
    await page.click('#dead-table button[data-retry]');
    await message(page, /Sending dl_/);
    while ((await api(server, 'GET', `/api/v1/webhooks/${id}`)).json.deadLetters !== 0) {
      assert.ok(Date.now() < deadline, 'the dead letter is sent again');
      await new Promise((r) => setTimeout(r, 200));
    }
    await page.click(`${row} button[data-remove]`);
    await message(page, /Removed wh_/);
    assert.equal((await api(server, 'GET', '/api/v1/webhooks')).json.items.length, 0);
    assert.deepEqual(
      errors.filter((e) => !/400/.test(e)),
      [],
    );
    await page.context().close();
  });

  test("a read-only token is refused tokens and group changes, with the server's reason", async () => {
    const { page, errors } = await signedIn(readToken, '#/tokens');
    assert.match(await message(page, /\(403\)/), /admin/);
    await page.evaluate(() => {
      location.hash = '#/groups';
    });
    assert.match(await message(page, /\(403\)/), /groups|admin/);
    await page.evaluate(() => {
      location.hash = '#/webhooks';
    });
    await page.waitForSelector('#view-webhooks:not([hidden])');
    assert.match(await message(page, /\(403\)/), /admin/);
    assert.deepEqual(
      errors.filter((e) => !/403/.test(e)),
      [],
    );
    await page.context().close();
  });
});
