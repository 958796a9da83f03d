/**
 * Signet's one subjectAltName reader: the GeneralNames of an extnValue, read straight from the
 * DER with the strict reader (der-strict.ts). asn1-x509 is not used because it turns iPAddress
 * bytes into text. CSR parsing (both paths), the pre-issuance lint and renewal all read SANs
 * here; each decides what an entry it cannot issue means for it (a refusal, a finding, null).
 */
import { readEl, type El } from './der-strict.js';
import { formatIp, type SanEntry } from './names.js';

/** A GeneralName that is not an issuable SAN, and why. */
export type SanProblem =
  /** An rfc822Name, dNSName or URI whose bytes are not UTF-8 text. */
  | { problem: 'text'; form: 'rfc822Name' | 'dNSName' | 'uniformResourceIdentifier' }
  /** An iPAddress that is neither 4 (IPv4) nor 16 (IPv6) bytes. */
  | { problem: 'ip-length'; length: number }
  /** Another GeneralName form (otherName, directoryName, …) or an unknown tag. */
  | { problem: 'form'; tag: number };

export const isSanProblem = (item: SanEntry | SanProblem): item is SanProblem => 'problem' in item;

/** The GeneralName forms Signet does not issue, by their IMPLICIT tags (RFC 5280 §4.2.1.6). */
export const OTHER_GENERAL_NAME_FORMS: Readonly<Record<number, string>> = {
  160: 'otherName',
  163: 'x400Address',
  164: 'directoryName',
  165: 'ediPartyName',
  136: 'registeredID',
};

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The entries of the GeneralNames SEQUENCE that exactly fills buf[start, end), in order.
 * IA5String forms are decoded as UTF-8, so a raw IDN reaches the name checks (which then name
 * the A-label to use) instead of being refused here. Throws a DerError for anything that is not
 * strict DER, and an Error when the bytes are not one GeneralNames SEQUENCE.
 */
export function readSanList(buf: Uint8Array, start = 0, end: number = buf.length): (SanEntry | SanProblem)[] {
  const seq = readEl(buf, start, end);
  if (buf[start] !== 0x30 || seq.end !== end) throw new Error('not a single GeneralNames SEQUENCE');
  const out: (SanEntry | SanProblem)[] = [];
  for (let off = seq.body; off < seq.end; ) {
    const gn = readEl(buf, off, seq.end);
    out.push(readGeneralName(buf, gn));
    off = gn.end;
  }
  return out;
}

function readGeneralName(buf: Uint8Array, gn: El): SanEntry | SanProblem {
  const c = buf.subarray(gn.body, gn.end);
  switch (gn.tag) {
    case 0x81:
      return text(c, 'email', 'rfc822Name');
    case 0x82:
      return text(c, 'dns', 'dNSName');
    case 0x86:
      return text(c, 'uri', 'uniformResourceIdentifier');
    case 0x87:
      return c.length === 4 || c.length === 16 ? { type: 'ip', value: formatIp(c) } : { problem: 'ip-length', length: c.length };
    default:
      return { problem: 'form', tag: gn.tag };
  }
}

function text(c: Uint8Array, type: 'email' | 'dns' | 'uri', form: 'rfc822Name' | 'dNSName' | 'uniformResourceIdentifier'): SanEntry | SanProblem {
  try {
    return { type, value: utf8.decode(c) };
  } catch {
    return { problem: 'text', form };
  }
}
