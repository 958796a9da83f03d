/**
 * The web console in a real browser (Debian's chromium driven by playwright-core) against a
 * real `signet serve`: sign-in with good and bad tokens, the inventory search and the expiry
 * filter, revoking with the two-step confirmation, issuing from a pasted CSR (checked with
 * openssl), the audit trail — where text a client sent is shown as text, never run — and a
 * read-only token refused with the server's own problem detail. The page runs under its CSP
 * with no violation.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { launchChromium, openRecordingErrors } from './helpers/browser.js';
import { api, startServer, type RunningServer } from './helpers/cli.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';
import { csrMaker, openssl, TempDir } from './helpers/openssl.js';

describe('web console', () => {
  let env: TestEnv;
  let server: RunningServer;
  let browser: Browser;
  const tmp = new TempDir();
  const makeCsr = csrMaker(tmp);
  const issued: Record<string, string> = {};
  let readToken = '';

  before(async () => {
    env = await createTestEnv();
    server = await startServer(env.env);
    for (const [name, validityDays] of [
      ['alpha', 90],
      ['beta', 90],
      ['gamma', 10],
    ] as const) {
      const r = await api(server, 'POST', '/api/v1/certificates', { csr: makeCsr(`DNS:${name}.console.test`), profile: 'server', validityDays });
      assert.equal(r.status, 201, r.text);
      issued[name] = r.json.serial;
    }
    const t = await api(server, 'POST', '/api/v1/tokens', { name: 'console reader', scopes: ['read'] });
    assert.equal(t.status, 201, t.text);
    readToken = t.json.token;
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
    await env?.cleanup();
    tmp.remove();
  });

  const open = () => openRecordingErrors(browser, `${server.url}/console`);

  async function signIn(page: Page, token: string) {
    await page.fill('#token', token);
    await page.click('#sign-in-form button[type=submit]');
  }

  /** Waits until the table lists exactly these serials (the previous result stays on screen until the new one lands). */
  async function waitForRows(page: Page, serials: string[]) {
    try {
      await page.waitForFunction(
        (want) => {
          const got = [...document.querySelectorAll<HTMLElement>('#cert-table tbody tr')].map((r) => r.dataset.serial).sort();
          return JSON.stringify(got) === JSON.stringify(want);
        },
        [...serials].sort(),
        { timeout: 10_000 },
      );
    } catch {
      assert.deepEqual(await page.$$eval('#cert-table tbody tr', (rows) => rows.map((r) => (r as HTMLElement).dataset.serial).sort()), [...serials].sort());
    }
  }

  test('the page is served under a CSP that allows only this origin', async () => {
    assert.match(server.stdout(), new RegExp(`web console: ${server.url.replace(/[.]/g, '\\.')}/console`));
    const res = await fetch(`${server.url}/console`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^text\/html/);
    const csp = res.headers.get('content-security-policy')!;
    assert.match(csp, /script-src 'self'/);
    assert.match(csp, /form-action 'none'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    const js = await fetch(`${server.url}/console/console.js`);
    assert.match(js.headers.get('content-type')!, /^text\/javascript/);
    assert.equal((await fetch(`${server.url}/console/secrets.js`)).status, 404);
  });

  test("a wrong token is refused with the server's detail and not kept", async () => {
    const { page, errors } = await open();
    await signIn(page, 'not-a-real-token');
    await page.waitForSelector('#message:not([hidden])');
    assert.match((await page.textContent('#message')) ?? '', /\(401\)/);
    assert.equal(await page.isVisible('#view-sign-in'), true);
    assert.equal(await page.evaluate(() => sessionStorage.length + localStorage.length), 0);
    assert.deepEqual(
      errors.filter((e) => !/401/.test(e)),
      [],
    );
    await page.context().close();
  });

  test('an operator finds certificates, sees what expires, and revokes one in two steps', async () => {
    const { page, errors } = await open();
    await signIn(page, server.token);
    await waitForRows(page, Object.values(issued));

    await page.fill('#f-san', 'beta.console.test');
    await page.click('#search-form button[type=submit]');
    await waitForRows(page, [issued.beta!]);

    await page.fill('#f-san', '');
    await page.click('#expiring-soon');
    await waitForRows(page, [issued.gamma!]); // only the 10-day certificate expires within 30 days

    await page.click(`#cert-table tr[data-serial="${issued.gamma}"]`);
    await page.waitForSelector('#view-certificate:not([hidden])');
    assert.equal(await page.textContent('#d-serial'), issued.gamma);
    assert.match(await page.inputValue('#d-pem'), /^-----BEGIN CERTIFICATE-----/);
    await page.selectOption('#r-reason', 'keyCompromise');
    await page.click('#revoke');
    assert.equal(await page.isVisible('#revoke-confirm'), true);
    assert.equal((await api(server, 'GET', `/api/v1/certificates/${issued.gamma}/status`)).json.status, 'good', 'nothing happens before the confirmation');
    await page.click('#revoke-yes');
    await page.waitForSelector('#d-fields dd.status-revoked');
    const status = (await api(server, 'GET', `/api/v1/certificates/${issued.gamma}/status`)).json;
    assert.equal(status.status, 'revoked');
    assert.equal(status.reason, 'keyCompromise');
    assert.equal(await page.isVisible('#revoke-form'), false, 'a revoked certificate offers no second revocation');
    assert.deepEqual(errors, []);
    await page.context().close();
  });

  test('a certificate issued from a pasted CSR verifies with openssl', async () => {
    const { page, errors } = await open();
    await signIn(page, server.token);
    await page.waitForSelector('#nav:not([hidden])');
    await page.click('nav button[data-view=issue]');
    await page.waitForSelector('#i-profile option[value=server]', { state: 'attached' });
    await page.fill('#i-csr', makeCsr('DNS:pasted.console.test'));
    await page.selectOption('#i-profile', 'server');
    await page.click('#issue-form button[type=submit]');
    await page.waitForSelector('#issued:not([hidden])');
    const pem = await page.inputValue('#issued-pem');
    const serial = await page.textContent('#issued-link');
    const [leaf, ...chain] = pem.split(/(?<=-----END CERTIFICATE-----)\n/).filter((p) => p.trim());
    const roots = await api(server, 'GET', '/api/v1/cas');
    const root = roots.json.items.find((c: { parentId: string | null }) => !c.parentId);
    const rootPem = (await api(server, 'GET', `/api/v1/cas/${root.id}`)).json.certificate;
    const v = openssl([
      'verify',
      '-x509_strict',
      '-CAfile',
      tmp.file('root.pem', rootPem),
      '-untrusted',
      tmp.file('chain.pem', chain.join('\n')),
      tmp.file('leaf.pem', leaf!),
    ]);
    assert.equal(v.status, 0, v.stdout + v.stderr);
    assert.match(openssl(['x509', '-noout', '-ext', 'subjectAltName', '-serial'], leaf).stdout, /DNS:pasted\.console\.test[\s\S]*serial=/i);
    assert.equal((await api(server, 'GET', `/api/v1/certificates/${serial}`)).status, 200);
    assert.deepEqual(errors, []);
    await page.context().close();
  });

  test('the audit trail shows what a client sent as text, never as markup', async () => {
    const hostile = '<img src=x onerror="window.__pwned=1">';
    const key = tmp.file('hostile.key');
    assert.equal(openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key]).status, 0);
    const csr = openssl(['req', '-new', '-key', key, '-subj', `/CN=${hostile}`, '-addext', 'subjectAltName=DNS:ok.console.test']);
    assert.equal(csr.status, 0, csr.stderr);
    const refused = await api(server, 'POST', '/api/v1/certificates', { csr: csr.stdout, profile: 'server' });
    assert.equal(refused.status, 400);

    const { page, errors } = await open();
    await signIn(page, server.token);
    await page.waitForSelector('#nav:not([hidden])');
    await page.click('nav button[data-view=audit]');
    await page.waitForSelector('#audit-table tbody tr');
    const text = await page.textContent('#audit-table');
    assert.ok(text!.includes(JSON.stringify(hostile).slice(1, -1)), "the refused request's detail is listed verbatim");
    assert.ok(text!.includes('certificate.revoked'), "the console's own revocation is in the trail");
    assert.equal(await page.$$eval('#audit-table img', (imgs) => imgs.length), 0);
    assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined);

    await page.fill('#a-action', 'certificate.revoked');
    await page.click('#audit-form button[type=submit]');
    await page.waitForFunction(() =>
      [...document.querySelectorAll('#audit-table tbody tr td:nth-child(4)')].every((td) => td.textContent === 'certificate.revoked'),
    );
    assert.equal(await page.$$eval('#audit-table tbody tr', (rows) => rows.length), 1);
    assert.deepEqual(errors, []);
    await page.context().close();
  });

  test('an operator creates an enrollment credential (its secret shown once, then forgotten) and revokes it', async () => {
    const { page, errors } = await open();
    await signIn(page, server.token);
    await page.waitForSelector('#nav:not([hidden])');
    await page.click('nav button[data-view=enrollment]');
    await page.waitForSelector('#e-profile option[value=client]', { state: 'attached' });
    await page.selectOption('#e-profile', 'client');
    await page.fill('#e-names', 'devices.console.test, lab.console.test');
    await page.fill('#e-uses', '2');
    await page.click('#enroll-form button[type=submit]');
    await page.waitForSelector('#enroll-made:not([hidden])');
    const id = (await page.textContent('#enroll-made-id'))!;
    const secret = await page.inputValue('#enroll-made-secret');
    assert.match(id, /^enr_[0-9a-f]{16}$/);
    assert.equal(await page.textContent('#enroll-made-userpass'), `--userpass ${id}:${secret}`);
    const listed = (await api(server, 'GET', '/api/v1/enrollment-credentials')).json.items.find((c: { id: string }) => c.id === id);
    assert.deepEqual(
      [listed.protocol, listed.profile, listed.nameSuffixes, listed.usesAllowed],
      ['est', 'client', ['devices.console.test', 'lab.console.test'], 2],
    );
    assert.ok(Math.abs(Date.parse(listed.expiresAt) - Date.now() - 7 * 86_400_000) < 120_000, 'expires in 7 days');
    await page.waitForSelector(`#enroll-table tr[data-id="${id}"]`);
    assert.match((await page.textContent(`#enroll-table tr[data-id="${id}"]`))!, /EST.*client.*devices\.console\.test, lab\.console\.test.*0 of 2.*active/);
    assert.ok(!(await page.textContent('#enroll-table'))!.includes(secret), 'the list never shows the secret');
    await page.click('#enroll-made-done');
    assert.equal(await page.inputValue('#enroll-made-secret'), '', 'the secret is forgotten once copied');
    assert.equal(await page.isVisible('#enroll-made'), false);

    // A refusal shows the server's detail.
    await page.fill('#e-names', '-bad-.example');
    await page.click('#enroll-form button[type=submit]');
    await page.waitForFunction(() => /\(400\).*nameSuffixes/.test(document.getElementById('message')!.textContent ?? ''));

    await page.click(`#enroll-table button[data-revoke="${id}"]`);
    await page.waitForFunction((i) => document.querySelector(`#enroll-table tr[data-id="${i}"] .status-revoked`) !== null, id);
    assert.equal(await page.$(`#enroll-table button[data-revoke="${id}"]`), null, 'a revoked credential has no revoke button');
    const after = (await api(server, 'GET', '/api/v1/enrollment-credentials')).json.items.find((c: { id: string }) => c.id === id);
    assert.equal(after.status, 'revoked');
    assert.deepEqual(
      errors.filter((e) => !/400/.test(e)),
      [],
    );
    await page.context().close();
  });

  test("a read-only token browses, and is refused revocation and the audit trail with the server's reason", async () => {
    const { page } = await open();
    await signIn(page, readToken);
    await page.waitForSelector('#cert-table tbody tr');
    await page.click(`#cert-table tr[data-serial="${issued.alpha}"]`);
    await page.waitForSelector('#view-certificate:not([hidden])');
    await page.click('#revoke');
    await page.click('#revoke-yes');
    await page.waitForSelector('#message:not([hidden])');
    assert.match((await page.textContent('#message')) ?? '', /\(403\).*revoke/);
    assert.equal((await api(server, 'GET', `/api/v1/certificates/${issued.alpha}/status`)).json.status, 'good');

    await page.click('nav button[data-view=audit]');
    await page.waitForFunction(() => /\(403\).*admin/.test(document.getElementById('message')!.textContent ?? ''));
    assert.equal(await page.$$eval('#audit-table tbody tr', (rows) => rows.length), 0);

    await page.click('#sign-out');
    assert.equal(await page.isVisible('#view-sign-in'), true);
    assert.equal(await page.evaluate(() => sessionStorage.length + localStorage.length), 0, 'signing out forgets the token');
    await page.context().close();
  });
});
