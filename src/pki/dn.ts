/**
 * Distinguished names: RFC 4514 strings (as operators type them) to DER and back.
 * Values are UTF8String (RFC 5280 §4.1.2.4 "MUST use UTF8String" for new certificates), except
 * countryName (PrintableString) and domainComponent (IA5String), which their definitions fix.
 */
import { AsnConvert } from '@peculiar/asn1-schema';
import { Name as AsnName } from '@peculiar/asn1-x509';
import { SignetError } from '../errors.js';
import { objectIdentifier, sequence, set, tlv } from './der.js';

const ATTRS: Record<string, string> = {
  CN: '2.5.4.3',
  C: '2.5.4.6',
  L: '2.5.4.7',
  ST: '2.5.4.8',
  O: '2.5.4.10',
  OU: '2.5.4.11',
  SERIALNUMBER: '2.5.4.5',
  DC: '0.9.2342.19200300.100.1.25',
  UID: '0.9.2342.19200300.100.1.1',
};
const NAMES: Record<string, string> = Object.fromEntries(Object.entries(ATTRS).map(([k, v]) => [v, k === 'SERIALNUMBER' ? 'serialNumber' : k]));
NAMES['1.2.840.113549.1.9.1'] = 'emailAddress';

export interface Rdn {
  type: string;
  value: string;
}

/** Parses `CN=foo,O=Bar\, Inc.` into attributes in DER order (RFC 4514 lists the last RDN first). */
export function parseDn(dn: string): Rdn[] {
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < dn.length; i++) {
    const ch = dn[i]!;
    if (ch === '\\') {
      if (i + 1 === dn.length) throw new SignetError('bad-request', `distinguished name "${printable(dn)}" ends in a lone backslash: escape it as \\\\`);
      cur += dn[++i];
      continue;
    }
    // Multi-valued RDNs (RFC 4514 "CN=a+O=b") are not supported: taken as part of the value, a
    // '+' would make the certificate say something other than what the operator typed.
    if (ch === '+')
      throw new SignetError(
        'bad-request',
        `distinguished name "${printable(dn)}" has a multi-valued RDN ("+"), which Signet does not issue; escape a literal plus sign as \\+`,
      );
    if (ch === ',') {
      parts.push(cur);
      cur = '';
      continue;
    }
    cur += ch;
  }
  parts.push(cur);
  const rdns = parts.map((p) => {
    const eq = p.indexOf('=');
    if (eq < 1) throw new SignetError('bad-request', `distinguished name "${printable(dn)}" is malformed: expected TYPE=value pairs separated by commas`);
    const key = p.slice(0, eq).trim().toUpperCase();
    const value = p.slice(eq + 1).trim();
    const type = ATTRS[key];
    if (!type) throw new SignetError('bad-request', `distinguished name attribute ${key} is not supported; use ${Object.keys(ATTRS).join(', ')}`);
    if (!value) throw new SignetError('bad-request', `distinguished name attribute ${key} is empty`);
    if (/[\u0000-\u001f\u007f-\u009f]/.test(value))
      throw new SignetError(
        'bad-request',
        `distinguished name attribute ${key} contains a control character (U+0000–U+001F, U+007F–U+009F), which no certificate should carry`,
      );
    if (value.length > 64 && key !== 'DC') throw new SignetError('bad-request', `distinguished name attribute ${key} is longer than 64 characters`);
    if (key === 'C' && !/^[A-Z]{2}$/.test(value)) throw new SignetError('bad-request', `country (C) must be two upper-case letters, got "${value}"`);
    return { type, value };
  });
  return rdns.reverse();
}

/** The DN as it may appear in a detail: control characters shown as \uXXXX. */
const printable = (dn: string) => dn.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

export function encodeName(rdns: Rdn[]): Buffer {
  return sequence(
    ...rdns.map(({ type, value }) => {
      const tag = type === ATTRS.C ? 0x13 : type === ATTRS.DC ? 0x16 : 0x0c;
      return set(sequence(objectIdentifier(type), tlv(tag, Buffer.from(value, 'utf8'))));
    }),
  );
}

export const dnToDer = (dn: string): Buffer => encodeName(parseDn(dn));

export const escapeDnValue = (v: string): string =>
  v
    .replace(/([,+"\\<>;])/g, '\\$1')
    .replace(/^([ #])/, '\\$1')
    .replace(/ $/, '\\ ');

/** RFC 4514 string of a DER Name (last RDN first), for display and search. */
export function nameToString(der: Uint8Array): string {
  const name = AsnConvert.parse(der, AsnName);
  return [...name]
    .reverse()
    .map((rdn) =>
      [...rdn]
        .map((atv) => {
          const label = NAMES[atv.type] ?? atv.type;
          return `${label}=${escapeDnValue(atv.value.toString())}`;
        })
        .join('+'),
    )
    .join(',');
}

/**
 * A key under which two Names are equal exactly when RFC 5280 §7.1 matches them (simplified
 * RFC 4518 string preparation): the same attribute types RDN by RDN, values compared after
 * NFKC, case folding and insignificant-space handling (leading and trailing spaces dropped,
 * runs of inner spaces counted as one). "CN=signet  root" and "CN=Signet Root" match.
 */
export function nameMatchKey(der: Uint8Array): string {
  const name = AsnConvert.parse(der, AsnName);
  return JSON.stringify(
    [...name].map((rdn) => [...rdn].map((atv) => [atv.type, atv.value.toString().normalize('NFKC').toLowerCase().replace(/\s+/gu, ' ').trim()]).sort()),
  );
}

/** The first commonName in a DER Name, if any. */
export function commonNameOf(der: Uint8Array): string | undefined {
  const name = AsnConvert.parse(der, AsnName);
  for (const rdn of name) for (const atv of rdn) if (atv.type === ATTRS.CN) return atv.value.toString();
  return undefined;
}
