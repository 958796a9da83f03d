/**
 * What a certificate row means to the code. The row is declared once, here, as data: the
 * column names, in table order, with the kind of value each holds. The record types below,
 * the driver's INSERT column lists and positional values (storage/certificate-row.ts) and the
 * backup's date fields are all derived from it, so a new column is one edit here plus the
 * Certificate model of the ORM schema (the models file beside the migrations).
 */

/** The kinds of value a column holds; `?` marks a nullable column. */
export type FieldKind = 'string' | 'string?' | 'int?' | 'date' | 'date?' | 'bytes';

type ValueOf<K extends FieldKind> = K extends 'string'
  ? string
  : K extends 'string?'
    ? string | null
    : K extends 'int?'
      ? number | null
      : K extends 'date'
        ? Date
        : K extends 'date?'
          ? Date | null
          : Uint8Array;

/** A record type from a column declaration. */
export type RecordOf<F extends Record<string, FieldKind>> = { -readonly [C in keyof F]: ValueOf<F[C]> };

/** Columns written when a certificate is issued, in table order. */
export const ISSUED_CERTIFICATE_COLUMNS = {
  serial: 'string',
  caId: 'string',
  profile: 'string',
  subject: 'string',
  commonName: 'string?',
  sans: 'string',
  sanText: 'string',
  keyAlgorithm: 'string',
  notBefore: 'date',
  notAfter: 'date',
  der: 'bytes',
  fingerprint: 'string',
  csrHash: 'string?',
  tokenId: 'string?',
  predecessorSerial: 'string?',
  createdAt: 'date',
  /** The CRL shard chosen at issuance (null: the unsharded CRL); see ca/crl-publisher.ts. */
  crlShard: 'int?',
} as const satisfies Record<string, FieldKind>;

/** Columns of the revocation state: a new certificate takes their defaults (good, no revocation). */
export const CERTIFICATE_STATUS_COLUMNS = {
  status: 'string',
  revokedAt: 'date?',
  revocationReason: 'string?',
  invalidityDate: 'date?',
  statusChangedAt: 'date?',
} as const satisfies Record<string, FieldKind>;

/** A certificate as issuance writes it. `sans` is a JSON array of {type, value}; `sanText` its values, lower-cased, joined by spaces. */
export type NewCertificateRecord = RecordOf<typeof ISSUED_CERTIFICATE_COLUMNS>;

/** good | revoked | hold (expired is derived from notAfter). */
export type StoredStatus = 'good' | 'revoked' | 'hold';

/** A stored certificate with its revocation state. */
export type CertificateRecord = NewCertificateRecord & RecordOf<typeof CERTIFICATE_STATUS_COLUMNS>;

/** A certificate as the inventory lists it: without its DER and the columns only search and replicas use. */
export type CertificateSummary = Omit<CertificateRecord, 'der' | 'sanText' | 'csrHash' | 'statusChangedAt'>;

/** The revocation state a revoke or hold writes. */
export interface RevocationChange {
  status: StoredStatus;
  revokedAt: Date;
  revocationReason: string;
  invalidityDate: Date | null;
  statusChangedAt: Date;
}

/** Public status of one certificate (the hot status read). */
export interface CertificateStatusRecord {
  status: string;
  notAfter: Date;
  revokedAt: Date | null;
  revocationReason: string | null;
}

/** A certificate with this serial, leaf or CA, and the CA that issued it (null: a root). */
export interface IssuedWithSerial {
  kind: 'leaf' | 'ca';
  issuerId: string | null;
  status: string;
  revokedAt: Date | null;
  revocationReason: string | null;
}

/** One entry of a CA's CRL, as read from its revoked and held certificates. */
export interface RevokedEntry {
  serial: string;
  revokedAt: Date | null;
  reason: string | null;
  invalidityDate: Date | null;
}
