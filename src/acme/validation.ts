/**
 * Challenge validation against the requester, for real (RFC 8555 §8, RFC 8737). Names are
 * resolved with the configured resolver (private networks often have their own) or the
 * system's; ports are configurable for test and lab networks. There is deliberately no
 * "always valid" mode.
 */
import { createHash } from 'node:crypto';
import { Resolver, lookup as systemLookup } from 'node:dns';
import { request } from 'node:http';
import { connect } from 'node:tls';
import { isIP } from 'node:net';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate, SubjectAlternativeName } from '@peculiar/asn1-x509';
import { SignetError } from '../errors.js';
import { validateIp } from '../pki/names.js';

export interface ValidationSettings {
  httpPort: number;
  tlsPort: number;
  resolver?: string;
  timeoutMs: number;
}

const ACME_IDENTIFIER_OID = '1.3.6.1.5.5.7.1.31';
const fail = (acme: string, detail: string) => new SignetError('forbidden', detail, { acme, status: 403 });

function resolverFor(s: ValidationSettings): Resolver | null {
  if (!s.resolver) return null;
  const r = new Resolver({ timeout: Math.min(s.timeoutMs, 5000), tries: 2 });
  r.setServers([s.resolver]);
  return r;
}

/** Resolves a name to addresses (A then AAAA) with the configured resolver, or the system's. */
export async function resolveHost(domain: string, s: ValidationSettings): Promise<string[]> {
  if (isIP(domain)) return [domain];
  const r = resolverFor(s);
  if (!r) {
    return new Promise((resolve, reject) =>
      systemLookup(domain, { all: true }, (err, addrs) =>
        err ? reject(fail('dns', `could not resolve ${domain}: ${err.code ?? err.message}`)) : resolve(addrs.map((a) => a.address)),
      ),
    );
  }
  const v4 = await new Promise<string[]>((res) => r.resolve4(domain, (e, a) => res(e ? [] : a)));
  const v6 = v4.length ? [] : await new Promise<string[]>((res) => r.resolve6(domain, (e, a) => res(e ? [] : a)));
  const all = [...v4, ...v6];
  if (!all.length) throw fail('dns', `no A or AAAA record for ${domain} at resolver ${s.resolver}`);
  return all;
}

export const keyAuthorization = (token: string, thumbprint: string) => `${token}.${thumbprint}`;

export async function validateHttp01(domain: string, token: string, keyAuth: string, s: ValidationSettings): Promise<void> {
  const [address] = await resolveHost(domain, s);
  const path = `/.well-known/acme-challenge/${token}`;
  const body = await new Promise<string>((resolve, reject) => {
    const req = request(
      {
        host: address,
        port: s.httpPort,
        path,
        method: 'GET',
        headers: { host: isIP(domain) === 6 ? `[${domain}]` : domain, 'user-agent': 'Signet-ACME-validator' },
        timeout: s.timeoutMs,
      },
      (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          reject(fail('unauthorized', `http-01: GET http://${domain}:${s.httpPort}${path} answered ${res.statusCode}`));
          return;
        }
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          data += c;
          if (data.length > 8192) {
            req.destroy();
            reject(fail('unauthorized', 'http-01: response body is larger than 8 KB'));
          }
        });
        res.on('end', () => resolve(data));
      },
    );
    req.on('timeout', () => req.destroy(fail('connection', `http-01: timed out fetching http://${domain}:${s.httpPort}${path}`)));
    req.on('error', (e) =>
      reject(
        e instanceof SignetError
          ? e
          : fail('connection', `http-01: could not connect to ${domain} (${address}) port ${s.httpPort}: ${(e as NodeJS.ErrnoException).code ?? e.message}`),
      ),
    );
    req.end();
  });
  if (body.trim() !== keyAuth) throw fail('incorrectResponse', `http-01: the response at http://${domain}:${s.httpPort}${path} is not the key authorization`);
}

export async function validateDns01(domain: string, keyAuth: string, s: ValidationSettings): Promise<void> {
  const expected = createHash('sha256').update(keyAuth).digest('base64url');
  const name = `_acme-challenge.${domain.replace(/^\*\./, '')}`;
  const r = resolverFor(s) ?? new Resolver({ timeout: Math.min(s.timeoutMs, 5000), tries: 2 });
  const records = await new Promise<string[][]>((resolve, reject) =>
    r.resolveTxt(name, (e, recs) =>
      e ? reject(fail('dns', `dns-01: no TXT record at ${name}${s.resolver ? ` (resolver ${s.resolver})` : ''}: ${e.code ?? e.message}`)) : resolve(recs),
    ),
  );
  if (!records.some((chunks) => chunks.join('') === expected)) throw fail('unauthorized', `dns-01: no TXT record at ${name} holds the expected digest`);
}

/** RFC 8738 §6: the SNI for an IP identifier is its reverse-DNS name. */
function reverseName(ip: string): string {
  const bytes = validateIp(ip);
  if (bytes.length === 4) return `${[...bytes].reverse().join('.')}.in-addr.arpa`;
  return `${[...bytes.toString('hex')].reverse().join('.')}.ip6.arpa`;
}

export async function validateTlsAlpn01(domain: string, keyAuth: string, s: ValidationSettings): Promise<void> {
  const [address] = await resolveHost(domain, s);
  const expected = createHash('sha256').update(keyAuth).digest();
  const ip = isIP(domain) !== 0;
  const der = await new Promise<Buffer>((resolve, reject) => {
    const sock = connect(
      {
        host: address,
        port: s.tlsPort,
        servername: ip ? reverseName(domain) : domain,
        ALPNProtocols: ['acme-tls/1'],
        rejectUnauthorized: false,
        timeout: s.timeoutMs,
      },
      () => {
        if (sock.alpnProtocol !== 'acme-tls/1') {
          sock.destroy();
          reject(fail('tls', `tls-alpn-01: ${domain} did not negotiate the acme-tls/1 protocol`));
          return;
        }
        const cert = sock.getPeerX509Certificate();
        sock.end();
        if (!cert) {
          reject(fail('tls', 'tls-alpn-01: no certificate presented'));
          return;
        }
        resolve(cert.raw);
      },
    );
    sock.on('timeout', () => sock.destroy(fail('connection', `tls-alpn-01: timed out connecting to ${domain} port ${s.tlsPort}`)));
    sock.on('error', (e) =>
      reject(
        e instanceof SignetError
          ? e
          : fail('connection', `tls-alpn-01: could not connect to ${domain} (${address}) port ${s.tlsPort}: ${(e as NodeJS.ErrnoException).code ?? e.message}`),
      ),
    );
  });
  const cert = AsnConvert.parse(der, Certificate);
  const exts = cert.tbsCertificate.extensions ?? [];
  const san = exts.find((e) => e.extnID === '2.5.29.17');
  const names = san ? AsnConvert.parse(san.extnValue.buffer, SubjectAlternativeName) : [];
  // Exactly one SAN: the dNSName, or for an IP identifier (RFC 8738 §6) the iPAddress.
  const only = names.length === 1 ? names[0]! : undefined;
  const sameIp = (v: string | undefined) => {
    try {
      return v !== undefined && validateIp(v).equals(validateIp(domain));
    } catch {
      return false;
    }
  };
  if (!only || (ip ? !sameIp(only.iPAddress) : only.dNSName?.toLowerCase() !== domain))
    throw fail('unauthorized', `tls-alpn-01: the certificate must carry exactly one SAN, ${domain}`);
  const id = exts.find((e) => e.extnID === ACME_IDENTIFIER_OID);
  if (!id?.critical) throw fail('unauthorized', 'tls-alpn-01: the certificate lacks a critical acmeIdentifier extension');
  const inner = Buffer.from(id.extnValue.buffer);
  // extnValue holds an OCTET STRING (04 20 …) with the 32-byte digest.
  if (inner.length !== 34 || inner[0] !== 0x04 || inner[1] !== 0x20 || !inner.subarray(2).equals(expected))
    throw fail('unauthorized', 'tls-alpn-01: acmeIdentifier does not hold the expected digest');
}
