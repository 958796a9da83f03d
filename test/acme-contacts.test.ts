/**
 * ACME account contacts (attack round 2, finding D) over a real `signet serve`: RFC 8555 §7.3
 * mailto: URLs held to RFC 5321's lengths, well-formed text without control characters;
 * anything else is refused with `invalidContact` at newAccount and at an account update, and
 * nothing is stored.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { assertProblem, newKey, startWorld, type World } from './helpers/acme.js';
import { countRows } from './helpers/sql.js';
import { contactProblem } from '../src/acme/contact.js';

const local64 = 'l'.repeat(64);
const label63 = 'd'.repeat(63);
/** A domain of exactly `octets` octets, in labels of at most 63. */
const domainOf = (octets: number) => {
  const labels: string[] = [];
  let left = octets;
  while (left > 0) {
    const n = Math.min(63, left - (labels.length ? 1 : 0));
    labels.push('d'.repeat(n));
    left -= n + (labels.length > 1 ? 1 : 0);
  }
  return labels.join('.');
};

describe('ACME contacts', { concurrency: false }, () => {
  let w: World;
  before(async () => {
    w = await startWorld();
  });
  after(async () => {
    await w?.stop();
  });

  const refused: [string, string][] = [
    ['an unpaired high surrogate', 'mailto:a\uD800@signet.test'],
    ['an unpaired low surrogate', 'mailto:ops@sig\uDC00net.test'],
    ['a 5,000-character local part', `mailto:${'a'.repeat(5000)}@signet.test`],
    ['a 65-octet local part', `mailto:${local64}x@signet.test`],
    ['a 65-octet local part of 2-octet characters', `mailto:${'é'.repeat(33)}@signet.test`],
    ['a 256-octet domain', `mailto:a@${domainOf(256)}`],
    ['a 255-octet address', `mailto:${local64}@${domainOf(190)}`],
    ['a C0 control (NUL is refused earlier, as malformed)', 'mailto:a\u0001b@signet.test'],
    ['a line feed', 'mailto:a@signet.test\nBcc: x@evil.test'],
    ['a C1 control', 'mailto:a\u0085@signet.test'],
    ['a DEL', 'mailto:a\u007f@signet.test'],
    ['header fields', 'mailto:a@signet.test?subject=hi'],
    ['two addresses', 'mailto:a@signet.test,b@signet.test'],
  ];

  test('the limits themselves are accepted: a 64-octet local part, a 254-octet address', () => {
    assert.equal(contactProblem(`mailto:${local64}@signet.test`), null);
    const at254 = `mailto:${local64}@${domainOf(189)}`;
    assert.equal(Buffer.byteLength(at254) - 'mailto:'.length, 254);
    assert.equal(contactProblem(at254), null);
    assert.equal(contactProblem(`mailto:${label63}@signet.test`), null);
    assert.equal(contactProblem('mailto:δοκιμή@παράδειγμα.test'), null);
  });

  test('newAccount refuses each bad contact with invalidContact and stores nothing', async () => {
    const accounts = await countRows(w.s.env, 'AcmeAccount');
    for (const [name, contact] of refused) {
      const r = await w.acme.post(w.acme.dir.newAccount, { termsOfServiceAgreed: true, contact: [contact] }, newKey('ES256'));
      assertProblem(r, 400, 'invalidContact');
      assert.ok(typeof r.json.detail === 'string' && r.json.detail.length < 400, `${name}: a short detail`);
      assert.ok(!/[\u0000-\u001f\u007f-\u009f]/.test(r.json.detail), `${name}: no control characters echoed`);
    }
    assert.equal(await countRows(w.s.env, 'AcmeAccount'), accounts, 'no account was created');
    assertProblem(
      await w.acme.post(w.acme.dir.newAccount, { termsOfServiceAgreed: true, contact: ['tel:+15551234'] }, newKey('ES256')),
      400,
      'unsupportedContact',
    );
  });

  test('an account update refuses each bad contact and keeps the contacts it had', async () => {
    const acct = await w.acme.newAccount(newKey('ES256'));
    for (const [, contact] of refused) assertProblem(await w.acme.post(acct.url, { contact: [contact] }, acct), 400, 'invalidContact');
    const back = await w.acme.post(acct.url, '', acct);
    assert.deepEqual(back.json.contact, ['mailto:a@signet.test']);
    const ok = await w.acme.post(acct.url, { contact: [`mailto:${local64}@signet.test`] }, acct);
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(ok.json.contact, [`mailto:${local64}@signet.test`]);
  });
});
