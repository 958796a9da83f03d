/**
 * ca/authorization.ts without a server: the name rules a token's suffix limit applies, to
 * stored and requested certificates alike (the matrix test covers every route end to end).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { authorizeCertificate, isVisible, type Principal } from '../src/ca/authorization.js';
import type { TokenGrant } from '../src/ca/tokens.js';
import { SignetError } from '../src/errors.js';

const grant = (nameSuffixes: string[] | null, profiles: string[] | null = null): TokenGrant => ({
  id: 'tok-test',
  name: 't',
  scopes: ['admin'],
  profiles,
  groups: null,
  nameSuffixes,
  expiresAt: null,
});
const token = (g: TokenGrant): Principal => ({ kind: 'token', grant: g });
const forbidden = (fn: () => void, detail: RegExp) =>
  assert.throws(fn, (e: unknown) => e instanceof SignetError && e.type === 'forbidden' && detail.test(e.detail));

test('a certificate without SANs is judged by its CN: a suffix limit does not wave it through', () => {
  const g = grant(['team-a.example']);
  const inside = { profile: 'client', sans: [], commonName: 'laptop.team-a.example' };
  const outside = { profile: 'client', sans: [], commonName: 'b.other.example' };
  const mailbox = { profile: 'client', sans: [], commonName: 'ops@team-a.example' };
  const notAName = { profile: 'client', sans: [], commonName: 'Jane Doe' };
  for (const op of ['certificate.issue', 'certificate.read', 'certificate.revoke'] as const) {
    assert.doesNotThrow(() => authorizeCertificate(token(g), op, inside));
    assert.doesNotThrow(() => authorizeCertificate(token(g), op, mailbox));
    forbidden(() => authorizeCertificate(token(g), op, outside), /'b\.other\.example' is outside them/);
    forbidden(() => authorizeCertificate(token(g), op, notAName), /'Jane Doe' is outside them/);
  }
  const v = { profiles: null, nameSuffixes: ['team-a.example'] };
  assert.equal(isVisible(v, inside), true);
  assert.equal(isVisible(v, outside), false);
  assert.equal(isVisible(v, notAName), false);
  // Without a suffix limit, the CN is not the token's business.
  assert.doesNotThrow(() => authorizeCertificate(token(grant(null)), 'certificate.read', notAName));
});

test('with SANs, the SANs are the names (the CN is one of them by the issuance rules)', () => {
  const g = grant(['team-a.example']);
  assert.doesNotThrow(() =>
    authorizeCertificate(token(g), 'certificate.read', {
      profile: 'server',
      sans: [{ type: 'dns', value: 'a.team-a.example' }],
      commonName: 'a.team-a.example',
    }),
  );
  forbidden(
    () =>
      authorizeCertificate(token(g), 'certificate.read', {
        profile: 'server',
        sans: [
          { type: 'dns', value: 'a.team-a.example' },
          { type: 'dns', value: 'x.other.example' },
        ],
      }),
    /x\.other\.example/,
  );
});

test("host-less URIs pass a suffix limit only by the profile's hostlessUriSchemes opt-in; a URI stored before the URI rules tightened is outside every limit", () => {
  const g = grant(['team-a.example']);
  const cert = (value: string, profile = 'spiffe') => ({ profile, sans: [{ type: 'uri' as const, value }] });
  const ops = ['certificate.read', 'certificate.revoke', 'certificate.unhold', 'certificate.renew', 'certificate.issue'] as const;
  // The explicit opt-in: urn: passes with it, and only with it.
  for (const op of ops) {
    assert.doesNotThrow(() => authorizeCertificate(token(g), op, cert('urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66', 'devices'), ['urn']));
    forbidden(
      () => authorizeCertificate(token(g), op, cert('urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66', 'devices')),
      /would have to list the scheme in hostlessUriSchemes/,
    );
    forbidden(() => authorizeCertificate(token(g), op, cert('mailto:ceo@other.example', 'devices'), ['urn']), /'mailto:ceo@other\.example' is outside them/);
  }
  // Judged by its host, as every URL parser reads it.
  assert.doesNotThrow(() => authorizeCertificate(token(g), 'certificate.read', cert('spiffe://svc.team-a.example/x')));
  forbidden(
    () => authorizeCertificate(token(g), 'certificate.read', cert('spiffe://svc.other.example/x')),
    /'spiffe:\/\/svc\.other\.example\/x' is outside them$/,
  );
  // Stored before: a host-less spelling of a scheme with hosts, and hosts parsers read differently (F4, F5).
  const v = { profiles: null, nameSuffixes: ['team-a.example'] };
  for (const value of [
    'spiffe:victim-device',
    'spiffe:///x',
    'spiffe:www.bank.example',
    'https://x.team-a.example\\@www.bank.example/',
    'spiffe://www.bank.example%2F.team-a.example/x',
    'https://www.bank.example@x.team-a.example/',
  ]) {
    for (const op of ops) forbidden(() => authorizeCertificate(token(g), op, cert(value), ['urn']), /is outside them/);
    assert.equal(isVisible(v, cert(value), ['urn']), false, value);
    // No suffix limit: not the token's business (admin still sees and revokes them).
    assert.doesNotThrow(() => authorizeCertificate(token(grant(null)), 'certificate.revoke', cert(value)));
  }
});
