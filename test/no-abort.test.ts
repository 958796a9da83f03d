/**
 * No process-abort path (issue 12, "the class, not only the instance"): a real `signet serve`
 * with SIGNET_WORKERS=2 and HTTPS (so ACME is served) receives every hostile case of issue 12
 * and what the fuzz targets found — the infinity-key CSRs, non-DER and slow CSRs, malformed,
 * huge and deeply nested JSON, `%ff%fe` paths, overflowing cursors, LIKE wildcards, hostile OCSP
 * requests (GET and POST), hostile ACME JWS on new-account, odd Authorization headers, aborted
 * uploads and slow bodies — from one table. For every case: no 5xx, and a 4xx is an
 * application/problem+json (OCSP: an OCSP response or a problem). Throughout: /healthz answers.
 * At the end: the worker processes are the ones that started (same pids, still the primary's
 * children) and the primary never logged 'worker exited; starting a new one'.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { Agent, request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { freePort, signet, startServer, type RunningServer } from './helpers/cli.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';
import { csrMaker, TempDir } from './helpers/openssl.js';
import { derToPem } from '../src/pki/pem.js';
import { ROOT } from './fuzz/lib/paths.js';

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}
interface Ctx {
  token: string;
  nonce(): Promise<string>;
  newAccountUrl: string;
  ocspRequest: Buffer;
  serial: string;
}

type Expect =
  /** 4xx application/problem+json. */
  | 'problem'
  /** The documented success (2xx) or a 4xx problem. */
  | 'success-or-problem'
  /** An OCSP response (any status below 500) or a 4xx problem. */
  | 'ocsp'
  /** The client gives up mid-request: nothing to judge but the server's health afterwards. */
  | 'none';

interface Case {
  name: string;
  /** `api`: the HTTPS listener (API, ACME); `plain`: the HTTP listener (OCSP, /pki, health). */
  via: 'api' | 'plain';
  method: string;
  /** SERIAL stands for the serial of a certificate issued at the start. */
  path: string;
  /** Authorization header: the admin token by default; null for none; or this exact value. */
  auth?: string | null;
  contentType?: string;
  body?: Buffer | string | ((c: Ctx) => Promise<Buffer | string> | Buffer | string);
  /** whole (Content-Length), chunked (no length: Express instead of the bare issue handler), abort (half the declared body, or of a chunked one), slow. */
  send?: 'whole' | 'chunked' | 'abort' | 'abort-chunked' | 'slow';
  expect: Expect;
  /**
   * A body far over the limit: the server answers 413, drains up to 1 MiB, then closes, so the
   * client may see EPIPE/ECONNRESET while still writing instead of the answer. Either is fine.
   */
  cutOff?: boolean;
}

// ---- hostile inputs --------------------------------------------------------------------------

const b64 = (b: Buffer) => b.toString('base64');
const b64u = (x: Buffer | string) => Buffer.from(x).toString('base64url');
const corpus = (dir: string) => {
  const d = join(ROOT, 'test', 'fuzz', 'corpus', dir);
  return existsSync(d)
    ? readdirSync(d)
        .sort()
        .map((f) => ({ name: f, der: readFileSync(join(d, f)) }))
    : [];
};
const fixtures = readdirSync(join(ROOT, 'certs-fixtures'))
  .filter((f) => /^csr-/.test(f))
  .sort()
  .map((f) => ({ name: f, data: readFileSync(join(ROOT, 'certs-fixtures', f)) }));
const INFINITY_P256 = 'MFMwOgIBADAYMRYwFAYDVQQDDA1hLmV4YW1wbGUuY29tMBkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDAgAAoAAwCgYIKoZIzj0EAwIDCQAwBgIBAQIBAQ==';
const csrCases = corpus('csr').filter((c) => c.name.endsWith('.der'));
const csrBody = (der: Buffer | string) => JSON.stringify({ csr: typeof der === 'string' ? der : b64(der), profile: 'server' });
const deep = (n: number, open: string, close: string, inner = '1') => open.repeat(n) + inner + close.repeat(n);

/** An ACME JWS for new-account, signed as given, with a fresh nonce. */
function acmeJws(opts: {
  key?: KeyObject;
  alg?: string;
  jwk?: unknown;
  header?: Record<string, unknown>;
  payload?: string;
  protectedRaw?: string;
  signature?: string;
  extra?: Record<string, unknown>;
}) {
  return async (c: Ctx) => {
    const key = opts.key ?? ES256.privateKey;
    const header = { alg: opts.alg ?? 'ES256', nonce: await c.nonce(), url: c.newAccountUrl, jwk: opts.jwk ?? ES256.jwk, ...opts.header };
    const p = opts.protectedRaw ?? b64u(JSON.stringify(header));
    const pl = opts.payload ?? b64u(JSON.stringify({ termsOfServiceAgreed: true }));
    let sig: string;
    try {
      sig =
        opts.signature ??
        b64u(
          sign(header.alg === 'ES256' ? 'sha256' : null, Buffer.from(`${p}.${pl}`), key.asymmetricKeyType === 'ec' ? { key, dsaEncoding: 'ieee-p1363' } : key),
        );
    } catch {
      sig = 'AA';
    }
    return JSON.stringify({ protected: p, payload: pl, signature: sig, ...opts.extra });
  };
}
const ES256 = (() => {
  const p = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { privateKey: p.privateKey, jwk: p.publicKey.export({ format: 'jwk' }) };
})();
const ED448 = (() => {
  const p = generateKeyPairSync('ed448');
  return { privateKey: p.privateKey, jwk: p.publicKey.export({ format: 'jwk' }) };
})();
const K1 = (() => {
  const p = generateKeyPairSync('ec', { namedCurve: 'secp256k1' });
  return { privateKey: p.privateKey, jwk: p.publicKey.export({ format: 'jwk' }) };
})();

const CASES: Case[] = [
  // Issue 12 #1: the point at infinity, by both issuance paths (bare handler and Express).
  ...csrCases
    .filter((c) => c.name.includes('infinity'))
    .flatMap((c): Case[] => [
      { name: `CSR ${c.name} (bare issue handler)`, via: 'api', method: 'POST', path: '/api/v1/certificates', body: csrBody(c.der), expect: 'problem' },
      {
        name: `CSR ${c.name} (Express, chunked)`,
        via: 'api',
        method: 'POST',
        path: '/api/v1/certificates',
        body: csrBody(c.der),
        send: 'chunked',
        expect: 'problem',
      },
      {
        name: `CSR ${c.name} (renew with a CSR)`,
        via: 'api',
        method: 'POST',
        path: '/api/v1/certificates/SERIAL/renew',
        body: JSON.stringify({ csr: b64(c.der) }),
        expect: 'problem',
      },
    ]),
  {
    name: "CSR the issue's infinity body, as PEM",
    via: 'api',
    method: 'POST',
    path: '/api/v1/certificates',
    body: csrBody(derToPem(Buffer.from(INFINITY_P256, 'base64'), 'CERTIFICATE REQUEST')),
    expect: 'problem',
  },
  // Every other CSR of the fuzz corpus (non-DER, slow, deeply nested) and the fixtures.
  ...csrCases
    .filter((c) => !c.name.includes('infinity'))
    .map(
      (c): Case => ({
        name: `CSR corpus ${c.name}`,
        via: 'api',
        method: 'POST',
        path: '/api/v1/certificates',
        body: csrBody(c.der),
        expect: 'success-or-problem',
      }),
    ),
  ...fixtures.map(
    (f): Case => ({
      name: `CSR fixture ${f.name}`,
      via: 'api',
      method: 'POST',
      path: '/api/v1/certificates',
      body: csrBody(f.name.endsWith('.der') ? f.data : f.data.toString('latin1')),
      expect: 'success-or-problem',
    }),
  ),
  // JSON bodies.
  { name: 'JSON truncated', via: 'api', method: 'POST', path: '/api/v1/certificates', body: '{"csr":', expect: 'problem' },
  { name: 'JSON truncated (chunked)', via: 'api', method: 'POST', path: '/api/v1/certificates', body: '{"csr":', send: 'chunked', expect: 'problem' },
  { name: 'JSON empty body', via: 'api', method: 'POST', path: '/api/v1/certificates', body: '', expect: 'problem' },
  { name: 'JSON null', via: 'api', method: 'POST', path: '/api/v1/certificates', body: 'null', expect: 'problem' },
  { name: 'JSON array', via: 'api', method: 'POST', path: '/api/v1/certificates', body: '[]', expect: 'problem' },
  { name: 'JSON string', via: 'api', method: 'POST', path: '/api/v1/certificates', body: '"x"', expect: 'problem' },
  { name: 'JSON csr is an object', via: 'api', method: 'POST', path: '/api/v1/certificates', body: '{"csr":{"a":1},"profile":"server"}', expect: 'problem' },
  { name: 'JSON csr is an array', via: 'api', method: 'POST', path: '/api/v1/certificates', body: '{"csr":["x"],"profile":["server"]}', expect: 'problem' },
  {
    name: 'JSON __proto__ keys',
    via: 'api',
    method: 'POST',
    path: '/api/v1/certificates',
    body: '{"__proto__":{"admin":true},"constructor":{"prototype":{"x":1}},"csr":"x","profile":"server"}',
    expect: 'problem',
  },
  { name: 'JSON 30,000 nested arrays', via: 'api', method: 'POST', path: '/api/v1/certificates', body: deep(30_000, '[', ']'), expect: 'problem' },
  {
    name: 'JSON 10,000 nested objects in csr',
    via: 'api',
    method: 'POST',
    path: '/api/v1/certificates',
    body: `{"profile":"server","csr":${deep(10_000, '{"a":', '}')}}`,
    expect: 'problem',
  },
  {
    name: 'JSON nested arrays (chunked)',
    via: 'api',
    method: 'POST',
    path: '/api/v1/certificates',
    body: deep(30_000, '[', ']'),
    send: 'chunked',
    expect: 'problem',
  },
  {
    name: 'JSON 200 KB body',
    via: 'api',
    method: 'POST',
    path: '/api/v1/certificates',
    body: JSON.stringify({ csr: 'A'.repeat(200_000), profile: 'server' }),
    expect: 'problem',
  },
  {
    name: 'JSON 2 MB body (chunked)',
    via: 'api',
    method: 'POST',
    path: '/api/v1/certificates',
    body: JSON.stringify({ csr: 'A'.repeat(2_000_000) }),
    send: 'chunked',
    expect: 'problem',
  },
  { name: 'JSON 60 KB base64 garbage CSR', via: 'api', method: 'POST', path: '/api/v1/certificates', body: csrBody('A'.repeat(60_000)), expect: 'problem' },
  {
    name: 'JSON not UTF-8',
    via: 'api',
    method: 'POST',
    path: '/api/v1/certificates',
    body: Buffer.from([0x7b, 0x22, 0x63, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]),
    expect: 'problem',
  },
  {
    name: 'JSON with a BOM',
    via: 'api',
    method: 'POST',
    path: '/api/v1/certificates',
    body: `\ufeff${csrBody(Buffer.from(INFINITY_P256, 'base64'))}`,
    expect: 'problem',
  },
  {
    name: 'wrong content type',
    via: 'api',
    method: 'POST',
    path: '/api/v1/certificates',
    contentType: 'text/plain',
    body: csrBody(Buffer.from(INFINITY_P256, 'base64')),
    expect: 'problem',
  },
  {
    name: 'content type with odd parameters',
    via: 'api',
    method: 'POST',
    path: '/api/v1/certificates',
    contentType: 'application/json; charset=utf-32',
    body: csrBody(Buffer.from(INFINITY_P256, 'base64')),
    expect: 'problem',
  },
  {
    name: 'JSON body on revoke',
    via: 'api',
    method: 'POST',
    path: '/api/v1/certificates/SERIAL/revoke',
    body: '{"reason":{"x":1},"invalidityDate":"+275760-09-13T00:00:00.000Z"}',
    expect: 'problem',
  },
  {
    name: 'token creation with nested junk',
    via: 'api',
    method: 'POST',
    path: '/api/v1/tokens',
    body: `{"name":"x","scopes":${deep(5000, '[', ']', '"read"')}}`,
    expect: 'problem',
  },
  {
    name: 'CA creation with a hostile name constraint',
    via: 'api',
    method: 'POST',
    path: '/api/v1/cas',
    body: JSON.stringify({ parentId: 'x', subject: 'CN=x', nameConstraints: { permittedDns: ['%ff', '*'.repeat(300)], permittedIp: ['1::2::3/999'] } }),
    expect: 'problem',
  },
  // Issue 12 #9 and the class: paths and query parameters.
  { name: 'path %ff%fe', via: 'api', method: 'GET', path: '/api/v1/certificates/%ff%fe', expect: 'problem' },
  { name: 'path %', via: 'api', method: 'GET', path: '/api/v1/certificates/%', expect: 'problem' },
  { name: 'path %ff on renew', via: 'api', method: 'POST', path: '/api/v1/certificates/%ff/renew', body: '{}', expect: 'problem' },
  { name: 'path %ff on status', via: 'api', method: 'GET', path: '/api/v1/certificates/%ff%fe/status', auth: null, expect: 'problem' },
  { name: 'path %ff on cas', via: 'api', method: 'GET', path: '/api/v1/cas/%ff', expect: 'problem' },
  { name: 'path %ff on pki', via: 'plain', method: 'GET', path: '/pki/%ff.crl', expect: 'problem' },
  { name: 'path %ff on acme', via: 'api', method: 'POST', path: '/acme/order/%ff', contentType: 'application/jose+json', body: '{}', expect: 'problem' },
  { name: 'path traversal', via: 'api', method: 'GET', path: '/api/v1/certificates/..%2f..%2f..%2fetc%2fpasswd', expect: 'problem' },
  { name: 'path 6,000 characters', via: 'api', method: 'GET', path: `/api/v1/certificates/${'a'.repeat(6000)}`, expect: 'problem' },
  { name: 'audit cursor overflow', via: 'api', method: 'GET', path: '/api/v1/audit?cursor=99999999999999999999', expect: 'problem' },
  { name: 'audit cursor negative', via: 'api', method: 'GET', path: '/api/v1/audit?cursor=-1', expect: 'success-or-problem' },
  { name: 'audit since not a date', via: 'api', method: 'GET', path: '/api/v1/audit?since=%ff&until=9999999999999999999999', expect: 'problem' },
  { name: 'inventory cursor overflow', via: 'api', method: 'GET', path: '/api/v1/certificates?cursor=99999999999999999999', expect: 'problem' },
  { name: 'inventory cursor garbage', via: 'api', method: 'GET', path: '/api/v1/certificates?cursor=%ff%fe%00', expect: 'problem' },
  { name: 'inventory limit 1e309', via: 'api', method: 'GET', path: '/api/v1/certificates?limit=1e309', expect: 'problem' },
  { name: 'inventory limit overflow', via: 'api', method: 'GET', path: '/api/v1/certificates?limit=99999999999999999999', expect: 'problem' },
  { name: 'inventory san=_ (LIKE wildcard)', via: 'api', method: 'GET', path: '/api/v1/certificates?san=_&limit=1', expect: 'success-or-problem' },
  { name: 'inventory subject=%25 (LIKE wildcard)', via: 'api', method: 'GET', path: '/api/v1/certificates?subject=%25', expect: 'success-or-problem' },
  { name: 'inventory san=\\ and [', via: 'api', method: 'GET', path: '/api/v1/certificates?san=%5C&subject=%5B', expect: 'success-or-problem' },
  {
    name: 'inventory repeated parameters',
    via: 'api',
    method: 'GET',
    path: '/api/v1/certificates?san=a&san=b&status=good&status[]=revoked&limit[x]=1',
    expect: 'success-or-problem',
  },
  { name: 'inventory expiresBefore garbage', via: 'api', method: 'GET', path: '/api/v1/certificates?expiresBefore=%ff', expect: 'problem' },
  { name: 'inventory 4,000-character san', via: 'api', method: 'GET', path: `/api/v1/certificates?san=${'%25_'.repeat(1000)}`, expect: 'success-or-problem' },
  // Odd Authorization headers (issue 12 #8 and the class).
  ...[
    'bearer TOKEN',
    'BEARER TOKEN',
    'Bearer  TOKEN',
    'Bearer\tTOKEN',
    'Bearer TOKEN ',
    'Bearer TOKENx',
    'Bearer',
    'Bearer ',
    'Basic YWRtaW46YWRtaW4=',
    'Token TOKEN',
    `Bearer ${'A'.repeat(8000)}`,
    'Bearer %ff%fe',
    'Bearer TOKEN, Bearer TOKEN',
    'Bearer \u00ff\u00fe',
  ].map(
    (a): Case => ({
      name: `Authorization '${a.length > 40 ? `${a.slice(0, 20)}…(${a.length})` : a}'`,
      via: 'api',
      method: 'GET',
      path: '/api/v1/certificates?limit=1',
      auth: a,
      expect: 'success-or-problem',
    }),
  ),
  // OCSP, GET and POST, on the plain listener.
  {
    name: 'OCSP POST garbage',
    via: 'plain',
    method: 'POST',
    path: '/ocsp',
    contentType: 'application/ocsp-request',
    body: Buffer.from('garbage'),
    expect: 'ocsp',
  },
  { name: 'OCSP POST empty', via: 'plain', method: 'POST', path: '/ocsp', contentType: 'application/ocsp-request', body: Buffer.alloc(0), expect: 'ocsp' },
  {
    name: 'OCSP POST truncated',
    via: 'plain',
    method: 'POST',
    path: '/ocsp',
    contentType: 'application/ocsp-request',
    body: (c) => c.ocspRequest.subarray(0, 30),
    expect: 'ocsp',
  },
  {
    name: 'OCSP POST 9 KB',
    via: 'plain',
    method: 'POST',
    path: '/ocsp',
    contentType: 'application/ocsp-request',
    body: Buffer.alloc(9 * 1024, 0x30),
    expect: 'ocsp',
  },
  {
    name: 'OCSP POST 3 MB (chunked)',
    via: 'plain',
    method: 'POST',
    path: '/ocsp',
    contentType: 'application/ocsp-request',
    body: Buffer.alloc(3 * 1024 * 1024, 0x30),
    send: 'chunked',
    expect: 'ocsp',
    cutOff: true,
  },
  {
    name: 'OCSP POST nested SEQUENCEs',
    via: 'plain',
    method: 'POST',
    path: '/ocsp',
    contentType: 'application/ocsp-request',
    body: Buffer.from('3080'.repeat(4000), 'hex'),
    expect: 'ocsp',
  },
  ...corpus('ocsp-request').flatMap((c): Case[] => [
    { name: `OCSP POST corpus ${c.name}`, via: 'plain', method: 'POST', path: '/ocsp', contentType: 'application/ocsp-request', body: c.der, expect: 'ocsp' },
    { name: `OCSP GET corpus ${c.name}`, via: 'plain', method: 'GET', path: `/ocsp/${encodeURIComponent(b64(c.der))}`, expect: 'ocsp' },
  ]),
  { name: 'OCSP GET garbage base64', via: 'plain', method: 'GET', path: `/ocsp/${encodeURIComponent(b64(Buffer.from('garbage')))}`, expect: 'ocsp' },
  { name: 'OCSP GET %ff', via: 'plain', method: 'GET', path: '/ocsp/%ff%fe', expect: 'ocsp' },
  { name: 'OCSP GET not base64', via: 'plain', method: 'GET', path: '/ocsp/..%2f..%2f', expect: 'ocsp' },
  { name: 'OCSP GET 12,000 characters', via: 'plain', method: 'GET', path: `/ocsp/${'A'.repeat(12_000)}`, expect: 'ocsp' },
  // Longer than the 16 KiB header limit: node's HTTP parser answers before any handler.
  { name: 'OCSP GET 20,000 characters', via: 'plain', method: 'GET', path: `/ocsp/${'A'.repeat(20_000)}`, expect: 'problem' },
  { name: 'a 20,000-byte header', via: 'api', method: 'GET', path: '/api/v1/certificates?limit=1', auth: `Bearer ${'A'.repeat(20_000)}`, expect: 'problem' },
  { name: 'OCSP PUT', via: 'plain', method: 'PUT', path: '/ocsp', body: Buffer.from('x'), expect: 'ocsp' },
  {
    name: 'OCSP over HTTPS, garbage',
    via: 'api',
    method: 'POST',
    path: '/ocsp',
    contentType: 'application/ocsp-request',
    body: Buffer.from([0x30, 0x84, 0xff, 0xff, 0xff, 0xff]),
    expect: 'ocsp',
  },
  // ACME new-account with hostile JWS (issue 12: "any ACME account ... can do it").
  {
    name: 'ACME JWS EC point (0,0)',
    via: 'api',
    method: 'POST',
    path: '/acme/new-account',
    contentType: 'application/jose+json',
    body: acmeJws({ jwk: { kty: 'EC', crv: 'P-256', x: b64u(Buffer.alloc(32)), y: b64u(Buffer.alloc(32)) } }),
    expect: 'problem',
  },
  {
    name: 'ACME JWS EC point of the wrong size',
    via: 'api',
    method: 'POST',
    path: '/acme/new-account',
    contentType: 'application/jose+json',
    body: acmeJws({ jwk: { kty: 'EC', crv: 'P-384', x: b64u(Buffer.alloc(1)), y: b64u(Buffer.alloc(1)) } }),
    expect: 'problem',
  },
  {
    name: 'ACME JWS P-521 JWK with empty coordinates',
    via: 'api',
    method: 'POST',
    path: '/acme/new-account',
    contentType: 'application/jose+json',
    body: acmeJws({ jwk: { kty: 'EC', crv: 'P-521', x: '', y: '' } }),
    expect: 'problem',
  },
  {
    name: 'ACME JWS RSA n=1 e=1',
    via: 'api',
    method: 'POST',
    path: '/acme/new-account',
    contentType: 'application/jose+json',
    body: acmeJws({ alg: 'RS256', jwk: { kty: 'RSA', n: 'AQ', e: 'AQ' } }),
    expect: 'problem',
  },
  {
    name: 'ACME JWS RSA 70,000-bit n',
    via: 'api',
    method: 'POST',
    path: '/acme/new-account',
    contentType: 'application/jose+json',
    body: acmeJws({ alg: 'RS256', jwk: { kty: 'RSA', n: b64u(Buffer.alloc(8750, 0xff)), e: 'AQAB' } }),
    expect: 'problem',
  },
  {
    name: 'ACME JWS secp256k1 key',
    via: 'api',
    method: 'POST',
    path: '/acme/new-account',
    contentType: 'application/jose+json',
    body: acmeJws({ key: K1.privateKey, jwk: K1.jwk, alg: 'ES256' }),
    expect: 'problem',
  },
  {
    name: 'ACME JWS Ed448 key',
    via: 'api',
    method: 'POST',
    path: '/acme/new-account',
    contentType: 'application/jose+json',
    body: acmeJws({ key: ED448.privateKey, jwk: ED448.jwk, alg: 'EdDSA' }),
    expect: 'problem',
  },
  {
    name: 'ACME JWS private key in jwk',
    via: 'api',
    method: 'POST',
    path: '/acme/new-account',
    contentType: 'application/jose+json',
    body: acmeJws({ jwk: { ...ES256.jwk, d: 'AAAA' } }),
    expect: 'problem',
  },
  {
    name: 'ACME JWS oct key',
    via: 'api',
    method: 'POST',
    path: '/acme/new-account',
    contentType: 'application/jose+json',
    body: acmeJws({ alg: 'HS256', jwk: { kty: 'oct', k: 'AAAA' } }),
    expect: 'problem',
  },
  {
    name: 'ACME JWS jwk is a string',
    via: 'api',
    method: 'POST',
    path: '/acme/new-account',
    contentType: 'application/jose+json',
    body: acmeJws({ jwk: 'x' }),
    expect: 'problem',
  },
  {
    name: 'ACME JWS jwk nested 5,000 deep',
    via: 'api',
    method: 'POST',
    path: '/acme/new-account',
    contentType: 'application/jose+json',
    body: acmeJws({ protectedRaw: b64u(`{"alg":"ES256","jwk":${deep(5000, '{"a":', '}')}}`) }),
    expect: 'problem',
  },
  {
    name: 'ACME JWS alg none',
    via: 'api',
    method: 'POST',
    path: '/acme/new-account',
    contentType: 'application/jose+json',
    body: acmeJws({ alg: 'none', signature: '' }),
    expect: 'problem',
  },
  {
    name: 'ACME JWS alg is an object',
    via: 'api',
    method: 'POST',
    path: '/acme/new-account',
    contentType: 'application/jose+json',
    body: acmeJws({ header: { alg: { x: 1 } } }),
    expect: 'problem',
  },
  {
    name: 'ACME JWS kid and jwk',
    via: 'api',
    method: 'POST',
    path: '/acme/new-account',
    contentType: 'application/jose+json',
    body: acmeJws({ header: { kid: 'https://127.0.0.1/acme/acct/1' } }),
    expect: 'problem',
  },
  {
    name: 'ACME JWS protected not base64url',
    via: 'api',
    method: 'POST',
    path: '/acme/new-account',
    contentType: 'application/jose+json',
    body: acmeJws({ protectedRaw: '%%%%' }),
    expect: 'problem',
  },
  {
    name: 'ACME JWS protected not JSON',
    via: 'api',
    method: 'POST',
    path: '/acme/new-account',
    contentType: 'application/jose+json',
    body: acmeJws({ protectedRaw: b64u('\u0000\u00ff') }),
    expect: 'problem',
  },
  {
    name: 'ACME JWS payload not JSON',
    via: 'api',
    method: 'POST',
    path: '/acme/new-account',
    contentType: 'application/jose+json',
    body: acmeJws({ payload: b64u('{"contact":') }),
    expect: 'problem',
  },
  {
    name: 'ACME JWS payload with odd contacts',
    via: 'api',
    method: 'POST',
    path: '/acme/new-account',
    contentType: 'application/jose+json',
    body: acmeJws({
      payload: b64u(JSON.stringify({ termsOfServiceAgreed: true, contact: ['mailto:%ff', { x: 1 }, 'tel:1'], externalAccountBinding: { protected: 1 } })),
    }),
    expect: 'problem',
  },
  {
    name: 'ACME JWS signature too long',
    via: 'api',
    method: 'POST',
    path: '/acme/new-account',
    contentType: 'application/jose+json',
    body: acmeJws({ signature: b64u(Buffer.alloc(5000)) }),
    expect: 'problem',
  },
  {
    name: 'ACME JWS fields are numbers',
    via: 'api',
    method: 'POST',
    path: '/acme/new-account',
    contentType: 'application/jose+json',
    body: '{"protected":1,"payload":2,"signature":3}',
    expect: 'problem',
  },
  {
    name: 'ACME JWS general serialization',
    via: 'api',
    method: 'POST',
    path: '/acme/new-account',
    contentType: 'application/jose+json',
    body: acmeJws({ extra: { signatures: [{}] } }),
    expect: 'problem',
  },
  {
    name: 'ACME JWS unprotected header',
    via: 'api',
    method: 'POST',
    path: '/acme/new-account',
    contentType: 'application/jose+json',
    body: acmeJws({ extra: { header: { alg: 'none' } } }),
    expect: 'problem',
  },
  {
    name: 'ACME body nested arrays',
    via: 'api',
    method: 'POST',
    path: '/acme/new-account',
    contentType: 'application/jose+json',
    body: deep(30_000, '[', ']'),
    expect: 'problem',
  },
  {
    name: 'ACME body not JSON',
    via: 'api',
    method: 'POST',
    path: '/acme/new-account',
    contentType: 'application/jose+json',
    body: 'garbage',
    expect: 'problem',
  },
  {
    name: 'ACME body 100 KB',
    via: 'api',
    method: 'POST',
    path: '/acme/new-account',
    contentType: 'application/jose+json',
    body: JSON.stringify({ protected: 'A'.repeat(100_000), payload: '', signature: '' }),
    expect: 'problem',
  },
  {
    name: 'ACME wrong content type',
    via: 'api',
    method: 'POST',
    path: '/acme/new-account',
    contentType: 'application/json',
    body: acmeJws({}),
    expect: 'problem',
  },
  {
    name: 'ACME finalize of no order with the infinity CSR',
    via: 'api',
    method: 'POST',
    path: '/acme/order/x/finalize',
    contentType: 'application/jose+json',
    body: acmeJws({ payload: b64u(JSON.stringify({ csr: Buffer.from(INFINITY_P256, 'base64').toString('base64url') })) }),
    expect: 'problem',
  },
  // Aborted uploads and slow bodies (within the 30 s request timeout).
  {
    name: 'aborted upload on issuance',
    via: 'api',
    method: 'POST',
    path: '/api/v1/certificates',
    body: csrBody(Buffer.from(INFINITY_P256, 'base64')),
    send: 'abort',
    expect: 'none',
  },
  {
    name: 'aborted upload on issuance (chunked)',
    via: 'api',
    method: 'POST',
    path: '/api/v1/certificates',
    body: csrBody(Buffer.from(INFINITY_P256, 'base64')),
    send: 'abort-chunked',
    expect: 'none',
  },
  {
    name: 'aborted upload on OCSP',
    via: 'plain',
    method: 'POST',
    path: '/ocsp',
    contentType: 'application/ocsp-request',
    body: Buffer.alloc(4000, 0x30),
    send: 'abort',
    expect: 'none',
  },
  {
    name: 'aborted upload on ACME',
    via: 'api',
    method: 'POST',
    path: '/acme/new-account',
    contentType: 'application/jose+json',
    body: acmeJws({}),
    send: 'abort',
    expect: 'none',
  },
  {
    name: 'slow body with the infinity CSR',
    via: 'api',
    method: 'POST',
    path: '/api/v1/certificates',
    body: csrBody(Buffer.from(INFINITY_P256, 'base64')),
    send: 'slow',
    expect: 'problem',
  },
  {
    name: 'slow OCSP body',
    via: 'plain',
    method: 'POST',
    path: '/ocsp',
    contentType: 'application/ocsp-request',
    body: (c) => c.ocspRequest,
    send: 'slow',
    expect: 'ocsp',
  },
];

// ---- a client that can misbehave -------------------------------------------------------------

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function send(base: string, agent: Agent | undefined, c: Case, body: Buffer, auth: string | undefined): Promise<Answer | 'aborted'> {
  return new Promise((resolve, reject) => {
    const url = new URL(base);
    const mode = c.send ?? 'whole';
    const headers: Record<string, string | number> = { connection: 'close' };
    if (auth !== undefined) headers.authorization = auth;
    if (c.method !== 'GET') headers['content-type'] = c.contentType ?? 'application/json';
    // abort: declare the whole length, send half; chunked and slow: no length.
    if (mode === 'whole' || mode === 'abort') headers['content-length'] = body.length;
    const options = { method: c.method, host: url.hostname, port: url.port, path: c.path, headers, agent: agent ?? false, timeout: 60_000 };
    const req = (agent ? httpsRequest : httpRequest)(options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    const aborting = mode === 'abort' || mode === 'abort-chunked';
    req.on('error', (e: NodeJS.ErrnoException) => (aborting || (c.cutOff && (e.code === 'EPIPE' || e.code === 'ECONNRESET')) ? resolve('aborted') : reject(e)));
    req.on('timeout', () => req.destroy(new Error('no answer within 60 s')));
    if (c.method === 'GET') {
      req.end();
      return;
    }
    if (aborting) {
      req.write(body.subarray(0, Math.floor(body.length / 2)), () =>
        setTimeout(() => {
          req.destroy();
          resolve('aborted');
        }, 100),
      );
      return;
    }
    if (mode === 'slow') {
      void (async () => {
        const parts = 5;
        for (let i = 0; i < parts; i++) {
          req.write(body.subarray(Math.floor((i * body.length) / parts), Math.floor(((i + 1) * body.length) / parts)));
          await sleep(500);
        }
        req.end();
      })();
      return;
    }
    if (mode === 'chunked' && body.length > 65_536) {
      for (let i = 0; i < body.length; i += 65_536) req.write(body.subarray(i, i + 65_536));
      req.end();
      return;
    }
    req.end(body);
  });
}

/** The primary's child processes (its workers), from /proc. */
function workerPids(primary: number): number[] {
  const file = `/proc/${primary}/task/${primary}/children`;
  return readFileSync(file, 'utf8')
    .trim()
    .split(/\s+/)
    .filter(Boolean)
    .map(Number)
    .sort((a, b) => a - b);
}

// ---- the test --------------------------------------------------------------------------------

describe('no process-abort path: every hostile case against SIGNET_WORKERS=2', () => {
  let env: TestEnv;
  let server: RunningServer;
  let agent: Agent;
  let api: string;
  let ctx: Ctx;
  let pidsAtStart: number[] = [];
  const health: { at: number; problem: string }[] = [];
  let healthRuns = 0;
  let stopHealth = false;
  let healthLoop: Promise<void> | undefined;
  const tmp = new TempDir();

  before(async () => {
    const tlsPort = await freePort();
    env = await createTestEnv({
      SIGNET_WORKERS: '2',
      SIGNET_TLS: 'on',
      SIGNET_TLS_PORT: String(tlsPort),
      SIGNET_TLS_NAMES: '127.0.0.1',
      SIGNET_RATE_LIMIT_PER_ADDRESS: '0',
      SIGNET_RATE_LIMIT_PER_TOKEN: '0',
    });
    server = await startServer(env.env);
    for (let i = 0; i < 100 && !/with 2 workers/.test(server.stdout()); i++) await sleep(100);
    const list = signet(['ca', 'list', '--json'], env.env);
    assert.equal(list.status, 0, list.stderr);
    const cas = JSON.parse(list.stdout) as { id: string; parentId: string | null }[];
    const rootId = cas.find((c) => c.parentId === null)!.id;
    const root = await fetch(`${server.url}/pki/${rootId}.crt`);
    agent = new Agent({ ca: derToPem(Buffer.from(await root.arrayBuffer()), 'CERTIFICATE'), keepAlive: false });
    api = `https://127.0.0.1:${tlsPort}`;
    const dir = await send(
      api,
      agent,
      { name: 'directory', via: 'api', method: 'GET', path: '/acme/directory', expect: 'success-or-problem' },
      Buffer.alloc(0),
      undefined,
    );
    assert.ok(dir !== 'aborted' && dir.status === 200, 'the ACME directory answers');
    const directory = JSON.parse((dir as Answer).body.toString('utf8')) as { newAccount: string; newNonce: string };
    const nonce = async (): Promise<string> => {
      const r = await send(
        api,
        agent,
        { name: 'nonce', via: 'api', method: 'GET', path: new URL(directory.newNonce).pathname, expect: 'success-or-problem' },
        Buffer.alloc(0),
        undefined,
      );
      const n = r === 'aborted' ? undefined : r.headers['replay-nonce'];
      assert.equal(typeof n, 'string', 'new-nonce gives a Replay-Nonce');
      return n as string;
    };
    // One real certificate, so renew and revoke reach the CSR and body checks.
    const issued = await send(
      api,
      agent,
      { name: 'issue', via: 'api', method: 'POST', path: '/api/v1/certificates', expect: 'success-or-problem' },
      Buffer.from(csrBody(csrMaker(tmp)('DNS:no-abort.example'))),
      `Bearer ${server.token}`,
    );
    assert.ok(issued !== 'aborted' && issued.status === 201, `a valid CSR is issued: ${issued === 'aborted' ? '' : issued.body.toString()}`);
    const serial = (JSON.parse((issued as Answer).body.toString('utf8')) as { serial: string }).serial;
    ctx = {
      token: server.token,
      nonce,
      newAccountUrl: directory.newAccount,
      ocspRequest: corpus('ocsp-request').find((c) => c.name.startsWith('openssl'))!.der,
      serial,
    };
    pidsAtStart = workerPids(server.pid);
    assert.equal(pidsAtStart.length, 2, `two workers at the start (children of ${server.pid}: ${pidsAtStart.join(', ')})`);
    // /healthz throughout, on its own connections (so both workers are asked).
    healthLoop = (async () => {
      while (!stopHealth) {
        const t0 = Date.now();
        try {
          const r = await fetch(`${server.url}/healthz`, { signal: AbortSignal.timeout(10_000), headers: { connection: 'close' } });
          healthRuns++;
          if (r.status !== 200) health.push({ at: t0, problem: `HTTP ${r.status}` });
          await r.arrayBuffer();
        } catch (e) {
          health.push({ at: t0, problem: (e as Error).message });
        }
        await sleep(200);
      }
    })();
  });

  after(async () => {
    stopHealth = true;
    await healthLoop;
    agent?.destroy();
    await server?.stop();
    await env?.cleanup();
    tmp.remove();
  });

  /**
   * Waits until the cluster is whole again (after a case that killed a worker), so each case is
   * judged on its own and not by the damage the one before it did.
   */
  async function whole(): Promise<number[]> {
    const deadline = Date.now() + 90_000;
    for (;;) {
      const pids = workerPids(server.pid);
      const ready = await fetch(`${server.url}/readyz`, { headers: { connection: 'close' } }).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ready && pids.length === 2) {
        const tls = await send(
          api,
          agent,
          { name: 'probe', via: 'api', method: 'GET', path: '/healthz', expect: 'success-or-problem' },
          Buffer.alloc(0),
          undefined,
        ).then(
          (r) => r !== 'aborted' && r.status === 200,
          () => false,
        );
        if (tls) return pids;
      }
      if (Date.now() > deadline) assert.fail(`the cluster did not recover within 90 s (workers: ${pids.join(', ')})`);
      await sleep(250);
    }
  }

  for (const c of CASES) {
    test(c.name, { timeout: 180_000 }, async () => {
      const before = await whole();
      const body = typeof c.body === 'function' ? await c.body(ctx) : (c.body ?? '');
      const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
      const auth = c.auth === null ? undefined : (c.auth ?? 'Bearer TOKEN').replace('TOKEN', ctx.token);
      let r: Answer | 'aborted';
      try {
        r = await send(
          c.via === 'api' ? api : server.url,
          c.via === 'api' ? agent : undefined,
          { ...c, path: c.path.replace('SERIAL', ctx.serial) },
          bytes,
          c.via === 'api' ? auth : undefined,
        );
      } catch (e) {
        await sleep(300);
        const after = workerPids(server.pid);
        assert.deepEqual(
          after,
          before,
          `no answer (${(e as Error).message}) and a worker died: workers ${before.join(', ')} became ${after.join(', ') || 'none'}`,
        );
        throw e;
      }
      if (c.expect === 'none') await sleep(200);
      assert.deepEqual(workerPids(server.pid), before, 'a worker died during this case');
      if (r === 'aborted' || c.expect === 'none') return;
      const text = r.body.toString('utf8').slice(0, 400);
      assert.ok(r.status < 500, `HTTP ${r.status}, a server error: ${text}`);
      const type = String(r.headers['content-type'] ?? '');
      const isProblem = /^application\/problem\+json/.test(type);
      if (isProblem) {
        const p = JSON.parse(r.body.toString('utf8')) as { type?: string; detail?: string; status?: number };
        assert.ok(typeof p.type === 'string' && typeof p.detail === 'string' && p.detail.length > 0, `a problem document with a type and a detail: ${text}`);
        assert.equal(p.status ?? r.status, r.status, 'the problem status is the HTTP status');
      }
      switch (c.expect) {
        case 'problem':
          assert.ok(r.status >= 400 && r.status < 500 && isProblem, `expected a 4xx application/problem+json, got HTTP ${r.status} ${type}: ${text}`);
          break;
        case 'success-or-problem':
          assert.ok(
            (r.status >= 200 && r.status < 300) || (r.status >= 400 && isProblem),
            `expected 2xx or a 4xx problem, got HTTP ${r.status} ${type}: ${text}`,
          );
          break;
        case 'ocsp':
          assert.ok(
            /^application\/ocsp-response/.test(type) || (r.status >= 400 && isProblem),
            `expected an OCSP response or a 4xx problem, got HTTP ${r.status} ${type}: ${text}`,
          );
          break;
      }
    });
  }

  test('/healthz answered throughout', () => {
    assert.ok(healthRuns > 0, '/healthz was asked');
    assert.deepEqual(health, [], `/healthz failed ${health.length} time(s) out of ${healthRuns + health.length}`);
  });

  test('no worker exited or was restarted', async () => {
    await sleep(500); // a worker that just died is logged by the primary within milliseconds
    const log = server.stdout() + server.stderr();
    const restarts = log.split('\n').filter((l) => /worker exited; starting a new one/.test(l));
    const why = log
      .split('\n')
      .filter((l) => /Assertion failed|FATAL ERROR|heap out of memory|^\d+: .*\/(src|dist)\//.test(l))
      .slice(0, 12);
    assert.deepEqual(restarts, [], `the primary restarted workers ${restarts.length} time(s):\n${restarts.slice(0, 6).join('\n')}\n${why.join('\n')}`);
    assert.deepEqual(workerPids(server.pid), pidsAtStart, 'the worker processes are the ones that started');
    const ready = await fetch(`${server.url}/readyz`);
    assert.equal(ready.status, 200, 'the cluster is still ready');
  });
});
