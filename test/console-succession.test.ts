/**
 * The console's Authorities view after real key replacements, in a real browser (Debian's
 * chromium driven by playwright-core) against a real `signet serve`. The state is made by the
 * operations themselves, run in this process against the server's data directory and database
 * (as the CLI does through withSignet): the issuing intermediate renewed (`renewCa`: its old
 * certificate kept as superseded), rotated twice (`rotateCa`), the first predecessor retired
 * (`retireFinished`: it has no certificate left), and a cross-certificate for the root's key
 * signed by openssl with an imported partner root and recorded with insertCaCertificate. The
 * page must show each CA's status (retiring and retired marked in words), its days to expiry,
 * its succession both ways and the lineage oldest → newest, and the cross and superseded
 * certificates with download links that serve those very certificates.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import pino from 'pino';
import type { Browser, Page } from 'playwright-core';
import { launchChromium, openRecordingErrors } from './helpers/browser.js';
import { api, freePort, startServer, type RunningServer } from './helpers/cli.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';
import { csrMaker, openssl, selfSignedCa, serialValue, TempDir } from './helpers/openssl.js';
import { loadConfig } from '../src/config/config.js';
import { openSignet } from '../src/runtime/open.js';
import { listCas } from '../src/ca/hierarchy.js';
import { renewCa, retireFinished, rotateCa } from '../src/ca/succession.js';
import { inspectCertificate, serialHex } from '../src/pki/certificate.js';
import type { CaContext } from '../src/ca/context.js';

const DAY_MS = 86_400_000;

describe('web console: succession and CA certificates', () => {
  let env: TestEnv;
  let server: RunningServer;
  let browser: Browser;
  let ctx: CaContext | undefined;
  const tmp = new TempDir();
  const makeCsr = csrMaker(tmp);
  /** The root, the partner root, and the lineage of the issuing intermediate, oldest first. */
  let rootId = '';
  let partnerId = '';
  let lineage: string[] = [];
  let supersededId = '';
  let supersededSerial = '';
  let crossId = '';
  let crossFingerprint = '';
  let overlapEndsAt: Date;

  before(async () => {
    env = await createTestEnv({ SIGNET_PORT: String(await freePort()) });
    server = await startServer(env.env);
    ctx = await openSignet(loadConfig(env.env), pino({ level: 'silent' }));
    const cas = await listCas(ctx);
    rootId = cas.find((c) => !c.parentId)!.id;
    const first = cas.find((c) => c.parentId === rootId)!.id;

    // The intermediate re-certified (same key), then rotated: its first certificate is kept as superseded.
    const renewed = await renewCa(ctx, first, { actor: 'test' });
    supersededId = renewed.supersededId;
    supersededSerial = (await ctx.stores.cas.caCertificate(supersededId))!.serial;
    const second = (await rotateCa(ctx, first, { actor: 'test' })).successor.id;
    // A certificate from the second keeps it retiring after its own rotation (with an overlap).
    const leaf = await api(server, 'POST', '/api/v1/certificates', { csr: makeCsr('DNS:kept.succession.test'), profile: 'server', caId: second });
    assert.equal(leaf.status, 201, leaf.text);
    assert.equal(leaf.json.caId, second);
    const rotated = await rotateCa(ctx, second, { actor: 'test', overlapDays: 30 });
    overlapEndsAt = rotated.predecessor.overlapEndsAt!;
    lineage = [first, second, rotated.successor.id];
    // The first has no certificate left: the server's hourly pass would retire it; run it now.
    assert.deepEqual(await retireFinished(ctx), [first]);

    // A partner root from outside (openssl), imported; it cross-certifies the root's key.
    const partner = selfSignedCa(tmp, 'partner', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], '/CN=Partner Root');
    const imported = await api(server, 'POST', '/api/v1/cas', {
      certificate: readFileSync(partner.cert, 'utf8'),
      privateKey: readFileSync(partner.key, 'utf8'),
    });
    assert.equal(imported.status, 201, imported.text);
    partnerId = imported.json.id;
    const rootPem = tmp.file('root.pem', (await api(server, 'GET', `/api/v1/cas/${rootId}`)).json.certificate);
    const pub = openssl(['x509', '-in', rootPem, '-noout', '-pubkey', '-out', tmp.file('root-pub.pem')]);
    assert.equal(pub.status, 0, pub.stderr);
    // A request with the root's subject (signed by the partner's key, replaced by -force_pubkey).
    const req = openssl(['x509', '-x509toreq', '-in', rootPem, '-signkey', partner.key, '-out', tmp.file('cross.csr')]);
    assert.equal(req.status, 0, req.stderr);
    tmp.file(
      'cross.cnf',
      '[v3]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n',
    );
    const signed = openssl([
      'x509',
      '-req',
      '-in',
      tmp.file('cross.csr'),
      '-force_pubkey',
      tmp.file('root-pub.pem'),
      '-CA',
      partner.cert,
      '-CAkey',
      partner.key,
      '-set_serial',
      '0x5afe0c055',
      '-days',
      '20',
      '-extfile',
      tmp.file('cross.cnf'),
      '-extensions',
      'v3',
      '-outform',
      'DER',
      '-out',
      tmp.file('cross.der'),
    ]);
    assert.equal(signed.status, 0, signed.stderr);
    const cross = inspectCertificate(readFileSync(tmp.file('cross.der')));
    crossFingerprint = cross.fingerprint;
    crossId = `x-${cross.fingerprint.slice(0, 16)}`;
    const record = {
      id: crossId,
      caId: rootId,
      issuerId: partnerId,
      kind: 'cross' as const,
      certificateDer: cross.der,
      serial: serialHex(cross.serial),
      fingerprint: cross.fingerprint,
      notBefore: cross.notBefore,
      notAfter: cross.notAfter,
    };
    await ctx.db.transaction((tx) => ctx!.stores.cas.insertCaCertificate(record, tx));
    await ctx.db.close();
    ctx = undefined;

    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await ctx?.db.close();
    await server?.stop();
    await env?.cleanup();
    tmp.remove();
  });

  async function openAuthorities(): Promise<{ page: Page; errors: string[] }> {
    const { page, errors } = await openRecordingErrors(browser, `${server.url}/console`);
    await page.fill('#token', server.token);
    await page.click('#sign-in-form button[type=submit]');
    await page.waitForSelector('#nav:not([hidden])');
    await page.click('nav button[data-view=cas]');
    await page.waitForSelector(`#ca-certs tbody tr[data-id="${crossId}"]`, { timeout: 15_000 });
    return { page, errors };
  }

  /** The text of a CA's row's cell, by its column header. */
  async function cell(page: Page, caId: string, header: string): Promise<string> {
    return page.$eval(
      `#ca-table tbody tr[data-ca="${caId}"]`,
      (row, h) => {
        const headers = [...row.closest('table')!.querySelectorAll('thead th')].map((th) => th.textContent?.trim());
        const i = headers.indexOf(h);
        if (i < 0) throw new Error(`no column ${h} in ${headers.join(', ')}`);
        // Each line of a cell is its own element: joined with a space, as they read.
        return [...(row as HTMLTableRowElement).cells[i]!.childNodes]
          .map((n) => n.textContent)
          .join(' ')
          .replace(/\s+/g, ' ')
          .trim();
      },
      header,
    );
  }

  const day = (d: Date | string) => new Date(d).toISOString().slice(0, 10);

  test('each CA shows its status in words, its days to expiry and its succession both ways', async () => {
    const { page, errors } = await openAuthorities();
    const [first, second, third] = lineage as [string, string, string];
    const rows = (await api(server, 'GET', '/api/v1/cas')).json.items as { id: string; status: string; retiringSince: string | null; notAfter: string }[];
    const byId = new Map(rows.map((r) => [r.id, r]));
    assert.deepEqual(
      lineage.map((id) => byId.get(id)!.status),
      ['retired', 'retiring', 'active'],
    );

    assert.match(await cell(page, first, 'Status'), /^retired\b/);
    assert.match(
      await cell(page, second, 'Status'),
      new RegExp(`^retiring since ${day(byId.get(second)!.retiringSince!)}.*overlap ends ${day(overlapEndsAt)}`),
    );
    assert.match(await cell(page, first, 'Status'), /last third of each certificate's life/, 'no overlap given: the default window is named');
    assert.match(await cell(page, third, 'Status'), /^active$/);
    // A distinct look as well as the word: the row and the cell carry the status.
    assert.equal(await page.getAttribute(`#ca-table tr[data-ca="${first}"]`, 'class'), 'ca-retired');
    assert.equal(await page.getAttribute(`#ca-table tr[data-ca="${second}"]`, 'class'), 'ca-retiring');
    assert.notEqual(
      await page.$eval(`#ca-table tr[data-ca="${second}"] .status`, (e) => getComputedStyle(e).color),
      await page.$eval(`#ca-table tr[data-ca="${third}"] .status`, (e) => getComputedStyle(e).color),
    );

    const partnerDays = Math.floor((new Date(byId.get(partnerId)!.notAfter).getTime() - Date.now()) / DAY_MS);
    assert.ok(partnerDays >= 28 && partnerDays <= 30, String(partnerDays));
    assert.match(await cell(page, partnerId, 'Expires in'), new RegExp(`^(${partnerDays}|${partnerDays + 1}|${partnerDays - 1}) days$`));

    assert.equal(await cell(page, first, 'Succession'), `replaced by ${second}`);
    assert.equal(await cell(page, second, 'Succession'), `replaces ${first} replaced by ${third}`);
    assert.equal(await cell(page, third, 'Succession'), `replaces ${second}`);
    assert.equal(await cell(page, rootId, 'Succession'), `cross-certified by ${partnerId}`);
    assert.equal(await page.getAttribute(`#ca-table tr[data-ca="${first}"] a[rel=next]`, 'href'), `#/cas/${second}`);
    assert.equal(await page.getAttribute(`#ca-table tr[data-ca="${third}"] a[rel=prev]`, 'href'), `#/cas/${second}`);

    // The chain of succession, oldest → newest, once.
    const lines = await page.$$eval('#ca-lineages li', (lis) => lis.map((li) => (li.textContent ?? '').replace(/\s+/g, ' ').trim()));
    assert.equal(lines.length, 1, lines.join('\n'));
    assert.match(lines[0]!, new RegExp(`${first} \\(retired\\) → ${second} \\(retiring\\) → ${third} \\(active\\)`));

    // Following "replaced by" lands on the successor's row.
    await page.click(`#ca-table tr[data-ca="${first}"] a[rel=next]`);
    await page.waitForFunction((id) => location.hash === `#/cas/${id}` && document.activeElement?.getAttribute('data-ca') === id, second);
    assert.equal(await page.getAttribute(`#ca-table tr[data-ca="${second}"]`, 'aria-current'), 'true');
    if (process.env.SIGNET_TEST_SCREENSHOT) await page.screenshot({ path: process.env.SIGNET_TEST_SCREENSHOT, fullPage: true });
    assert.deepEqual(errors, [], 'no script error and no CSP violation');
    await page.context().close();
  });

  test('cross and superseded certificates are listed with kind, issuer, validity and status, and download as themselves', async () => {
    const { page, errors } = await openAuthorities();
    const rows = await page.$$eval('#ca-certs tbody tr', (trs) =>
      trs.map((tr) => ({
        id: (tr as HTMLElement).dataset.id,
        cells: [...(tr as HTMLTableRowElement).cells].map((c) => (c.textContent ?? '').replace(/\s+/g, ' ').trim()),
        href: tr.querySelector('a[download]')?.getAttribute('href'),
      })),
    );
    const headers = await page.$$eval('#ca-certs thead th', (ths) => ths.map((th) => th.textContent?.trim()));
    assert.deepEqual(headers, ['Certificate for', 'Kind', 'Issuer', 'Serial', 'Valid from', 'Valid until', 'Status', 'Download']);
    assert.equal(rows.length, 2, 'each listed once, though its CA and its issuer both report it');
    const detail = new Map<string, any>(
      (await Promise.all([rootId, lineage[0]!].map((id) => api(server, 'GET', `/api/v1/cas/${id}`)))).flatMap((r) =>
        r.json.caCertificates.map((c: { id: string }) => [c.id, c]),
      ),
    );

    const cross = rows.find((r) => r.id === crossId)!;
    const x = detail.get(crossId);
    assert.deepEqual(cross.cells.slice(0, 4), [rootId, 'cross', partnerId, x.serial]);
    assert.match(cross.cells[4]!, new RegExp(`^${day(x.notBefore)}`));
    assert.match(cross.cells[5]!, new RegExp(`^${day(x.notAfter)}`));
    assert.equal(cross.cells[6], 'good');
    const sup = rows.find((r) => r.id === supersededId)!;
    assert.deepEqual(sup.cells.slice(0, 4), [lineage[0], 'superseded', rootId, supersededSerial]);
    assert.equal(sup.cells[6], 'good');

    for (const [row, fingerprint, issuer] of [
      [cross, crossFingerprint, 'CN=Partner Root'],
      [sup, detail.get(supersededId).fingerprintSha256, null],
    ] as const) {
      assert.equal(row.href, `${server.url}/pki/${row.id}.crt`);
      const res = await fetch(row.href!);
      assert.equal(res.status, 200);
      const der = Buffer.from(await res.arrayBuffer());
      const text = openssl(['x509', '-inform', 'DER', '-noout', '-fingerprint', '-sha256', '-issuer', '-serial', '-nameopt', 'RFC2253'], der);
      assert.equal(text.status, 0, text.stderr);
      assert.match(text.stdout, new RegExp(`Fingerprint=${fingerprint.toUpperCase().replace(/(..)(?!$)/g, '$1:')}`));
      if (issuer) assert.match(text.stdout, new RegExp(`issuer=${issuer}`));
    }
    // The superseded one is the intermediate's first certificate: its serial is the one renewCa replaced.
    const supText = openssl(['x509', '-inform', 'DER', '-noout', '-serial'], Buffer.from(await (await fetch(sup.href!)).arrayBuffer()));
    assert.equal(serialValue(supText.stdout.trim().replace(/^serial=/, '')), serialValue(supersededSerial));
    assert.notEqual(serialValue(supersededSerial), serialValue((await api(server, 'GET', `/api/v1/cas/${lineage[0]}`)).json.serial), 'not the renewed one');
    // The partner root's own row says what it certified.
    assert.equal(await cell(page, partnerId, 'Succession'), `cross-certified ${rootId}`);
    assert.deepEqual(errors, []);
    await page.context().close();
  });
});
