/**
 * ACME account contacts (RFC 8555 §7.3): what Signet stores and shows back is a short list of
 * mailto: addresses a mail system could deliver to. A contact is stored in the account row and
 * the audit trail and printed by the CLI, so it is held to RFC 5321's limits (an address of at
 * most 254 octets, a local part of at most 64, a domain of at most 255) and must be text:
 * well-formed UTF-16 (an unpaired surrogate cannot be encoded as UTF-8 and would come back as
 * U+FFFD) with no control characters.
 */

/** RFC 8555 §7.3 leaves the count to the server; ten is more than any operator needs. */
export const MAX_CONTACTS = 10;
/** RFC 5321 §4.5.3.1.1, §4.5.3.1.2 and the path limit (§4.5.3.1.3 less the angle brackets). */
export const MAX_LOCAL_PART_OCTETS = 64;
export const MAX_DOMAIN_OCTETS = 255;
export const MAX_ADDRESS_OCTETS = 254;

export type ContactProblem = { type: 'unsupportedContact' | 'invalidContact'; detail: string };

const octets = (s: string) => Buffer.byteLength(s, 'utf8');
/** A short, safe rendering of what was sent (it may be huge or hold control characters). */
const shown = (s: string) =>
  JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}…` : s).replace(/\p{Cc}/gu, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`); // JSON leaves C1 controls as they are

/** Why one contact is refused, or null. */
export function contactProblem(x: unknown): ContactProblem | null {
  if (typeof x !== 'string') return { type: 'invalidContact', detail: `contact ${JSON.stringify(x)?.slice(0, 80) ?? 'undefined'} is not a string` };
  // With the u flag a lone surrogate is a code point of category Cs: it cannot be encoded.
  if (/\p{Cs}/u.test(x))
    return {
      type: 'invalidContact',
      detail: `contact ${shown(x.replace(/\p{Cs}/gu, '\uFFFD'))} is not well-formed text (it holds an unpaired UTF-16 surrogate)`,
    };
  if (/\p{Cc}/u.test(x)) return { type: 'invalidContact', detail: `contact ${shown(x)} holds a control character` };
  if (!x.startsWith('mailto:')) return { type: 'unsupportedContact', detail: `contact ${shown(x)} is not a mailto: URL; only email contacts are supported` };
  const address = x.slice('mailto:'.length);
  if (!/^[^@\s,?]+@[^@\s,?]+$/.test(address))
    return { type: 'invalidContact', detail: `contact ${shown(x)} is not a single mailto: address (one local part, one @, one domain; no header fields)` };
  const at = address.indexOf('@');
  const local = address.slice(0, at);
  const domain = address.slice(at + 1);
  if (octets(local) > MAX_LOCAL_PART_OCTETS)
    return {
      type: 'invalidContact',
      detail: `contact ${shown(x)}: its local part is ${octets(local)} octets; RFC 5321 allows at most ${MAX_LOCAL_PART_OCTETS}`,
    };
  if (octets(domain) > MAX_DOMAIN_OCTETS)
    return { type: 'invalidContact', detail: `contact ${shown(x)}: its domain is ${octets(domain)} octets; RFC 5321 allows at most ${MAX_DOMAIN_OCTETS}` };
  if (octets(address) > MAX_ADDRESS_OCTETS)
    return { type: 'invalidContact', detail: `contact ${shown(x)}: the address is ${octets(address)} octets; RFC 5321 allows at most ${MAX_ADDRESS_OCTETS}` };
  return null;
}

/** The contact list of a newAccount or account update, or the first problem with it. */
export function checkContacts(c: unknown): { contacts: string[] } | { problem: ContactProblem } {
  if (c === undefined) return { contacts: [] };
  if (!Array.isArray(c) || c.length > MAX_CONTACTS)
    return { problem: { type: 'invalidContact', detail: `contact must be an array of at most ${MAX_CONTACTS} mailto: URLs` } };
  for (const x of c) {
    const p = contactProblem(x);
    if (p) return { problem: p };
  }
  return { contacts: c as string[] };
}
