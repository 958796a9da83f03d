/**
 * What the ACME tables mean to the code (RFC 8555 state: accounts, orders, authorizations,
 * challenges, External Account Binding keys). Storage maps each table's rows to these once
 * (storage/acme-store.ts); the ACME server reads and writes only these.
 *
 * Statuses stay strings: they are what the database holds, and a row someone changed in the
 * database may hold anything; the code compares them with the values it knows.
 * JSON columns stay text too: they are parsed where they are used, as they always were.
 */

/** An ACME account: its key, where it may act, and the MAC that makes it count (ca/row-integrity.ts). */
export interface AcmeAccountRecord {
  id: string;
  /** RFC 7638 thumbprint of the account key; unique per directory (profile). */
  thumbprint: string;
  /** The account public key as a JWK (JSON). */
  jwk: string;
  /** valid | deactivated | revoked */
  status: string;
  /** JSON array of contact URLs. */
  contact: string;
  /** The profile whose directory created the account: the only directory it may use. */
  profile: string;
  eabKeyId: string | null;
  /** The creating client's address as rate limits group it; null on accounts made before it was recorded. */
  sourceKey: string | null;
  createdAt: Date;
  /** Null only on rows from before sealing; an account whose MAC does not verify is unknown. */
  mac: string | null;
}

/** An ACME order: identifiers to certify, its authorizations, and the certificate once issued. */
export interface AcmeOrderRecord {
  id: string;
  accountId: string;
  profile: string;
  /** pending | ready | processing | valid | invalid */
  status: string;
  expires: Date;
  /** JSON array of {type, value}. */
  identifiers: string;
  /** JSON array of authorization ids. */
  authorizations: string;
  notBefore: Date | null;
  notAfter: Date | null;
  /** JSON problem document when invalid. */
  error: string | null;
  certificateSerial: string | null;
  /** ARI: serial of the certificate this order replaces. */
  replaces: string | null;
  /** When finalize claimed the order (status processing); a stale claim is recovered. */
  processingSince: Date | null;
  /** SHA-256 (hex) of the CSR being finalized. */
  csrHash: string | null;
  sourceKey: string | null;
  createdAt: Date;
}

/** An authorization of one identifier for one account. */
export interface AcmeAuthorizationRecord {
  id: string;
  accountId: string;
  identifierType: string;
  identifierValue: string;
  wildcard: boolean;
  /** pending | valid | invalid | deactivated | expired | revoked */
  status: string;
  expires: Date;
  createdAt: Date;
  /** Written with the validated challenge; only a valid authorization whose MAC verifies counts. */
  mac: string | null;
}

/** A challenge (http-01, dns-01, tls-alpn-01) of one authorization. */
export interface AcmeChallengeRecord {
  id: string;
  authorizationId: string;
  type: string;
  token: string;
  /** pending | processing | valid | invalid */
  status: string;
  validated: Date | null;
  /** JSON problem document when invalid. */
  error: string | null;
  /** When a validator claimed the challenge (status processing); a stale claim is recovered. */
  processingSince: Date | null;
  createdAt: Date;
}

export type AcmeAuthorizationWithChallenges = AcmeAuthorizationRecord & { challenges: AcmeChallengeRecord[] };
export type AcmeChallengeWithAuthorization = AcmeChallengeRecord & { authorization: AcmeAuthorizationRecord };

/** An External Account Binding key (RFC 8555 §7.3.4): the HMAC key sealed under the KEK. */
export interface AcmeEabKeyRecord {
  id: string;
  sealed: Uint8Array;
  kekId: string;
  /** The directory the key may register an account at; null on keys made before keys had one. */
  profile: string | null;
  boundAccountId: string | null;
  createdAt: Date;
}

/**
 * In the `error` of an order or challenge: the problem of work the server interrupted
 * (acme/recovery.ts). Such a challenge is not the client's failed validation, and such an
 * order is told apart from others when a certificate is matched to it after a crash.
 */
export const INTERRUPTED_MARK = '"interrupted":true';
