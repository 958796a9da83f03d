/**
 * Search keys of the inventory's name index (the CertificateName table): what `?san=` finds.
 *
 * Operators look certificates up by a name, or by a domain and everything under it, so each
 * certificate gets, from its SANs:
 *   - for a DNS name, an email address's domain and a URI's host: "." + that domain and "." +
 *     every domain above it (www.a.example → .www.a.example, .a.example, .example);
 *   - for an IP address, an email address and a URI: its exact value.
 * Keys are ASCII-lower-cased (SAN values are IA5 strings, so that is all the case there is).
 * A search is then one index seek on (key, createdAt, serial), newest first, at any table size.
 *
 * The migration that created the table derives the same keys in SQL for the certificates that
 * existed before it (prisma/<provider>/migrations/*_certificate_names); test/inventory-search
 * checks both derivations agree. Change one, change both (with a new migration).
 */
import { isIP } from 'node:net';
import { SignetError } from '../errors.js';
import { normalizeIp } from '../pki/names.js';

const asciiLower = (s: string): string => s.replace(/[A-Z]+/g, (m) => m.toLowerCase());

/** "." + the domain and + every domain above it. */
function addDomainKeys(domain: string, keys: Set<string>): void {
  for (let d = domain; d !== ''; ) {
    keys.add(`.${d}`);
    const dot = d.indexOf('.');
    if (dot < 0) break;
    d = d.slice(dot + 1);
  }
}

/**
 * The host a URI's keys are made from, by plain text rules the migration's SQL can follow: the
 * authority after "://" up to the first '/', '?' or '#', without user info (up to the last '@')
 * or port (from the first ':'). None for URIs without "://" (urn:, mailto:), IPv6 literals, and
 * hosts of digits and dots only (IPv4).
 */
export function uriSearchHost(uri: string): string | null {
  const start = uri.indexOf('://');
  if (start < 0) return null;
  let a = uri.slice(start + 3);
  const end = a.search(/[/?#]/);
  if (end >= 0) a = a.slice(0, end);
  a = a.slice(a.lastIndexOf('@') + 1);
  if (a.startsWith('[')) return null;
  const colon = a.indexOf(':');
  if (colon >= 0) a = a.slice(0, colon);
  return a === '' || /^[0-9.]*$/.test(a) ? null : a;
}

/** The search keys of a certificate with these SANs (each once). */
export function nameKeys(sans: readonly { type: string; value: string }[]): string[] {
  const keys = new Set<string>();
  for (const san of sans) {
    const v = asciiLower(san.value);
    switch (san.type) {
      case 'dns':
        addDomainKeys(v, keys);
        break;
      case 'ip':
        keys.add(v);
        break;
      case 'email':
        keys.add(v);
        addDomainKeys(v.slice(v.lastIndexOf('@') + 1), keys);
        break;
      case 'uri': {
        keys.add(v);
        const host = uriSearchHost(v);
        if (host) addDomainKeys(host, keys);
        break;
      }
    }
  }
  return [...keys];
}

/** Keys for a certificate row as stored (`sans` is its JSON array of {type, value}). */
export const nameKeysOfStored = (sansJson: string): string[] => nameKeys(JSON.parse(sansJson) as { type: string; value: string }[]);

/**
 * The key a `?san=` query looks up. An IP address (any spelling; compared in canonical form),
 * an email address or URI (anything with '@' or ':') is matched exactly; anything else is a
 * name: that name and every name under it, also as an email domain or URI host. A leading or
 * trailing '.' is ignored ('.example.com' = 'example.com'); '*.example.com' is the wildcard
 * name itself. Letters are compared without case; nothing else is special (no wildcards).
 */
export function searchKey(query: string): string {
  let q = asciiLower(query.trim());
  if (isIP(q)) {
    try {
      return normalizeIp(q);
    } catch {
      return q;
    } // a spelling no certificate can hold: matches nothing
  }
  if (q.includes('@') || q.includes(':')) return q;
  if (q.startsWith('.')) q = q.slice(1);
  if (q.endsWith('.')) q = q.slice(0, -1);
  if (q === '') throw new SignetError('bad-request', 'san must be a name, a domain, an IP address, an email address or a URI (it is empty)');
  return `.${q}`;
}
