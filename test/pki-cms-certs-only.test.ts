/**
 * The certs-only CMS message EST and SCEP answer with, read back by openssl's PKCS#7 and CMS
 * parsers (not by our own code).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { certsOnlyCms } from '../src/pki/cms-certs-only.js';
import { openssl, selfSignedCa, TempDir } from './helpers/openssl.js';

describe('certs-only CMS (RFC 5652 SignedData without signers)', () => {
  const tmp = new TempDir();
  after(() => tmp.remove());
  const a = selfSignedCa(tmp, 'a', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], '/CN=Certs Only A');
  const b = selfSignedCa(tmp, 'b', ['-newkey', 'rsa:2048'], '/CN=Certs Only B');
  const der = (pem: string) => new X509Certificate(readFileSync(pem)).raw;

  test('openssl pkcs7 -print_certs gives back exactly the certificates, in the order given', () => {
    const file = tmp.file('two.p7', certsOnlyCms([der(b.cert), der(a.cert)]));
    const r = openssl(['pkcs7', '-inform', 'DER', '-in', file, '-print_certs', '-noout']);
    assert.equal(r.status, 0, r.stderr);
    const subjects = [...r.stdout.matchAll(/^subject=(.*)$/gm)].map((m) => m[1]);
    assert.deepEqual(subjects, ['CN = Certs Only B', 'CN = Certs Only A']);
  });

  test('openssl cms reads it as signedData with no signers and the data content type', () => {
    const file = tmp.file('one.p7', certsOnlyCms([der(a.cert)]));
    const r = openssl(['cms', '-cmsout', '-print', '-inform', 'DER', '-in', file]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /contentType: pkcs7-signedData/);
    assert.match(r.stdout, /eContentType: pkcs7-data/);
    assert.match(r.stdout, /signerInfos:\s*<EMPTY>/);
    assert.match(r.stdout, /version: 1/);
  });

  test('an empty list is a programming error, not an empty message', () => {
    assert.throws(() => certsOnlyCms([]), /at least one certificate/);
  });
});
