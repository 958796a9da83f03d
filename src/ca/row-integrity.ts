/**
 * MACs over the authorisation state Signet keeps in the database: API token grants, ACME
 * accounts and validated ACME authorizations. Someone who can write to the database but does
 * not hold the master key can read and change these rows, but cannot compute their MACs: a row
 * they inserted or widened (a token's scopes, an account's directory or key, an authorization
 * set valid) does not verify, and Signet treats it as unknown (and logs it at error level: it
 * means tampering). The keys are HKDF secrets of the master key (KeyStore.deriveSecret), one
 * label per kind of row, so a MAC of one kind never verifies as another.
 *
 * Each MAC covers exactly the fields that decide what the row grants, in a fixed order (a JSON
 * array), plus the row's id so a MAC cannot be moved onto another row. Times are covered as
 * epoch milliseconds (both databases store milliseconds). Fields that grant nothing (a token's
 * name and last use, an account's contact) are left out, so changing them needs no new MAC.
 *
 * What a MAC cannot stop is a *rollback*: putting back an earlier state of the same row
 * together with the MAC it had then (e.g. from an old backup). docs/security.md §4 says what
 * guards against that and what does not.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { KeyStore } from '../keystore/key-store.js';

export const TOKEN_MAC_LABEL = 'api token v1';
export const AUTHORIZATION_MAC_LABEL = 'acme authorization v1';
export const ACCOUNT_MAC_LABEL = 'acme account v1';
export const ENROLLMENT_MAC_LABEL = 'enrollment credential v1';

/**
 * How a token's secret was hashed: 'hmac' for every token made by this version, 'sha256' for
 * tokens made before (their secrets cannot be rehashed without the secret itself). The scheme
 * is covered by the grant MAC, so a row cannot claim the other one.
 */
export type SecretScheme = 'hmac' | 'sha256';

/** The fields of an ApiToken row that decide what it grants. */
export interface TokenGrantFields {
  id: string;
  secretHash: string;
  scopes: string;
  profiles: string | null;
  nameSuffixes: string | null;
  expiresAt: Date | null;
  revokedAt: Date | null;
}

/** The fields of an AcmeAuthorization that make it count for an order. */
export interface AuthorizationFields {
  id: string;
  accountId: string;
  identifierType: string;
  identifierValue: string;
  wildcard: boolean;
  status: string;
  expires: Date;
}

/** The fields of an AcmeAccount that decide who it is and where it may act. */
export interface AccountFields {
  id: string;
  profile: string;
  thumbprint: string;
  jwk: string;
  status: string;
}

/** The fields of an EnrollmentCredential row that decide what it grants (and how often). */
export interface EnrollmentGrantFields {
  id: string;
  secretHash: string;
  protocol: string;
  profile: string;
  nameSuffixes: string | null;
  usesAllowed: number;
  usesSpent: number;
  expiresAt: Date | null;
  revokedAt: Date | null;
}

const ms = (d: Date | null) => (d ? d.getTime() : null);

function sameHex(a: string | null | undefined, b: string): boolean {
  if (typeof a !== 'string' || a.length !== b.length) return false;
  return timingSafeEqual(Buffer.from(a), Buffer.from(b));
}

/** SHA-256 of a token secret: the hash of tokens made before keyed hashes (and the rate-limit identity). */
export const sha256Hex = (secret: string): string => createHash('sha256').update(secret).digest('hex');

export class RowIntegrity {
  private readonly tokenKey: Buffer;
  private readonly authorizationKey: Buffer;
  private readonly accountKey: Buffer;
  private readonly enrollmentKey: Buffer;

  constructor(keys: Pick<KeyStore, 'deriveSecret'>) {
    this.tokenKey = keys.deriveSecret(TOKEN_MAC_LABEL);
    this.authorizationKey = keys.deriveSecret(AUTHORIZATION_MAC_LABEL);
    this.accountKey = keys.deriveSecret(ACCOUNT_MAC_LABEL);
    this.enrollmentKey = keys.deriveSecret(ENROLLMENT_MAC_LABEL);
  }

  private static hmac(key: Buffer, domain: string, content: string): string {
    return createHmac('sha256', key).update(domain).update('\n').update(content).digest('hex');
  }

  // ---- API tokens ---------------------------------------------------------------------------

  /** The stored hash of a token secret (what the token table is looked up by). */
  tokenSecretHash(secret: string, scheme: SecretScheme = 'hmac'): string {
    return scheme === 'hmac' ? RowIntegrity.hmac(this.tokenKey, 'signet token secret', secret) : sha256Hex(secret);
  }

  tokenGrantMac(t: TokenGrantFields, scheme: SecretScheme): string {
    return RowIntegrity.hmac(
      this.tokenKey,
      'signet token grant',
      JSON.stringify([scheme, t.id, t.secretHash, t.scopes, t.profiles, t.nameSuffixes, ms(t.expiresAt), ms(t.revokedAt)]),
    );
  }

  /** Whether the row's grant MAC verifies (constant-time comparison). */
  tokenIntact(t: TokenGrantFields & { grantMac: string | null }, scheme: SecretScheme): boolean {
    return sameHex(t.grantMac, this.tokenGrantMac(t, scheme));
  }

  /** The scheme under which the row's MAC verifies, or null (for callers that hold no secret). */
  tokenSchemeOf(t: TokenGrantFields & { grantMac: string | null }): SecretScheme | null {
    if (this.tokenIntact(t, 'hmac')) return 'hmac';
    if (this.tokenIntact(t, 'sha256')) return 'sha256';
    return null;
  }

  // ---- Enrollment credentials (EST, SCEP) --------------------------------------------------

  /** The stored hash of an enrollment secret (what the table is looked up by). */
  enrollmentSecretHash(secret: string): string {
    return RowIntegrity.hmac(this.enrollmentKey, 'signet enrollment secret', secret);
  }

  /**
   * Covers the uses spent too: a database writer cannot hand a one-time credential back its use
   * (a spend rewrites the MAC in the same conditional UPDATE).
   */
  enrollmentGrantMac(e: EnrollmentGrantFields): string {
    return RowIntegrity.hmac(
      this.enrollmentKey,
      'signet enrollment grant',
      JSON.stringify([e.id, e.secretHash, e.protocol, e.profile, e.nameSuffixes, e.usesAllowed, e.usesSpent, ms(e.expiresAt), ms(e.revokedAt)]),
    );
  }

  enrollmentIntact(e: EnrollmentGrantFields & { grantMac: string | null }): boolean {
    return sameHex(e.grantMac, this.enrollmentGrantMac(e));
  }

  // ---- ACME authorizations ------------------------------------------------------------------

  /** The MAC of an authorization validated now: status valid until `a.expires`. */
  authorizationMac(a: Omit<AuthorizationFields, 'status'>): string {
    return RowIntegrity.hmac(
      this.authorizationKey,
      'signet acme authorization',
      JSON.stringify([a.id, a.accountId, a.identifierType, a.identifierValue, a.wildcard, 'valid', ms(a.expires)]),
    );
  }

  /** A valid authorization whose MAC verifies: Signet validated exactly this. */
  authorizationIntact(a: AuthorizationFields & { mac: string | null }): boolean {
    return a.status === 'valid' && sameHex(a.mac, this.authorizationMac(a));
  }

  // ---- ACME accounts ------------------------------------------------------------------------

  accountMac(a: AccountFields): string {
    return RowIntegrity.hmac(this.accountKey, 'signet acme account', JSON.stringify([a.id, a.profile, a.thumbprint, a.jwk, a.status]));
  }

  accountIntact(a: AccountFields & { mac: string | null }): boolean {
    return sameHex(a.mac, this.accountMac(a));
  }
}

const cache = new WeakMap<object, RowIntegrity>();

/** The row MACs under this key store's master key (derived once per key store). */
export function rowIntegrity(keys: Pick<KeyStore, 'deriveSecret'>): RowIntegrity {
  let r = cache.get(keys);
  if (!r) cache.set(keys, (r = new RowIntegrity(keys)));
  return r;
}

/**
 * The id an ACME EAB HMAC key is sealed under (KeyStore.sealSecret binds it into the AES-GCM
 * additional data): the key's id and the directory it registers an account at, so that moving
 * a key to another directory in the database leaves it unable to unseal. Keys made before keys
 * were bound to a directory (profile null) are sealed under their id alone.
 */
export const eabSealId = (kid: string, profile: string): string => `eab ${kid} for ${profile}`;
