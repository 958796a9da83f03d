/**
 * The certificate row's one mapping, derived from its declaration (model/certificate.ts): the
 * columns the driver inserts at issuance and their positional values, the columns a stored
 * certificate is read back with, and its date columns (which a backup decodes as dates).
 */
import {
  CERTIFICATE_STATUS_COLUMNS,
  ISSUED_CERTIFICATE_COLUMNS,
  type CertificateRecord,
  type CertificateSummary,
  type FieldKind,
  type NewCertificateRecord,
} from '../model/certificate.js';

const ALL: Record<keyof CertificateRecord, FieldKind> = { ...ISSUED_CERTIFICATE_COLUMNS, ...CERTIFICATE_STATUS_COLUMNS };

/** What issuance writes, in table order (the rest take their defaults). */
export const ISSUED_COLUMNS = Object.keys(ISSUED_CERTIFICATE_COLUMNS) as (keyof NewCertificateRecord)[];
const ISSUED_KINDS: readonly FieldKind[] = ISSUED_COLUMNS.map((c) => ISSUED_CERTIFICATE_COLUMNS[c]);

/** Every column of a stored certificate. */
export const CERTIFICATE_COLUMNS = Object.keys(ALL) as (keyof CertificateRecord)[];

const isDate = (c: keyof CertificateRecord): boolean => ALL[c] === 'date' || ALL[c] === 'date?';

export const CERTIFICATE_DATE_COLUMNS: readonly string[] = CERTIFICATE_COLUMNS.filter(isDate);

const NOT_SUMMARISED: ReadonlySet<string> = new Set(['der', 'sanText', 'csrHash', 'statusChangedAt'] satisfies Exclude<
  keyof CertificateRecord,
  keyof CertificateSummary
>[]);

/** The columns of a CertificateSummary (the inventory's listing), and which of them are dates. */
export const SUMMARY_COLUMNS = CERTIFICATE_COLUMNS.filter((c) => !NOT_SUMMARISED.has(c)) as (keyof CertificateSummary)[];
export const SUMMARY_DATE_COLUMNS = SUMMARY_COLUMNS.filter(isDate);

/** Prisma's select of a whole certificate: no relation is loaded. */
export const CERTIFICATE_SELECT = Object.fromEntries(CERTIFICATE_COLUMNS.map((c) => [c, true])) as { [C in keyof CertificateRecord]: true };

/**
 * The driver's positional values for one issued certificate, in ISSUED_COLUMNS order. `time`
 * writes a date the way the provider stores it (storage/db-time.ts); bytes go as a Buffer.
 */
export function issuedValues(c: NewCertificateRecord, time: (d: Date) => string): unknown[] {
  return ISSUED_COLUMNS.map((col, i) => {
    const v = c[col];
    if (v === null) return null;
    const kind = ISSUED_KINDS[i];
    if (kind === 'bytes') return Buffer.from(v as Uint8Array);
    if (kind === 'date' || kind === 'date?') return time(v as Date);
    return v;
  });
}
