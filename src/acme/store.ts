/**
 * The storage the ACME server needs, declared here by its consumer and typed as only what it
 * uses (implemented in storage/acme-store.ts). Reads and writes are apart, as Boulder's
 * sa/saro.go and sa/sa.go are; what ACME reads of certificates, CAs and the audit trail —
 * tables it does not own — is a third, small interface.
 *
 * A method that takes a `tx` runs in that transaction (from Database.transaction) and must be
 * given one where the caller counts on it (a limit counted where the row is inserted, a write
 * recorded with its audit event); without one it runs on its own. A `claim` is the
 * (id, processingSince) pair a `processing` row was claimed with: an update under a claim
 * changes the row only while that claim still holds, and says whether it did.
 */
import type { Tx } from '../storage/database.js';
import type {
  AcmeAccountRecord,
  AcmeAuthorizationRecord,
  AcmeAuthorizationWithChallenges,
  AcmeChallengeRecord,
  AcmeChallengeWithAuthorization,
  AcmeEabKeyRecord,
  AcmeOrderRecord,
} from '../model/acme.js';

/** Rows counted per client address (address-limits.ts). */
export type AddressLimited = 'accounts' | 'orders';

/** A processing row's claim: it is still the same claim only while processingSince is unchanged. */
export interface Claim {
  id: string;
  processingSince: Date | null;
}

export type NewAcmeAccount = Pick<AcmeAccountRecord, 'id' | 'thumbprint' | 'jwk' | 'status' | 'profile' | 'contact' | 'eabKeyId' | 'sourceKey' | 'mac'>;
export type AcmeAccountChange = Partial<Pick<AcmeAccountRecord, 'contact' | 'status' | 'thumbprint' | 'jwk' | 'mac'>>;
export type NewAcmeOrder = Pick<
  AcmeOrderRecord,
  'id' | 'accountId' | 'profile' | 'status' | 'expires' | 'identifiers' | 'authorizations' | 'replaces' | 'sourceKey'
>;
export type AcmeOrderChange = Partial<
  Pick<AcmeOrderRecord, 'status' | 'error' | 'processingSince' | 'csrHash' | 'certificateSerial' | 'notBefore' | 'notAfter'>
>;
export type NewAcmeAuthorization = Pick<AcmeAuthorizationRecord, 'id' | 'accountId' | 'identifierType' | 'identifierValue' | 'wildcard' | 'status' | 'expires'>;
export type AcmeAuthorizationChange = Partial<
  Pick<AcmeAuthorizationRecord, 'accountId' | 'identifierType' | 'identifierValue' | 'wildcard' | 'status' | 'expires' | 'mac'>
>;
export type NewAcmeChallenge = Pick<AcmeChallengeRecord, 'id' | 'authorizationId' | 'type' | 'token' | 'status'>;
export type AcmeChallengeChange = Partial<Pick<AcmeChallengeRecord, 'status' | 'processingSince' | 'validated' | 'error'>>;
export type NewAcmeEabKey = Pick<AcmeEabKeyRecord, 'id' | 'sealed' | 'kekId'> & { profile: string };

/** Reads of the ACME tables. */
export interface AcmeReads {
  account(id: string): Promise<AcmeAccountRecord | null>;
  /** The account of this key at this directory (one at most). */
  accountByKey(profile: string, thumbprint: string): Promise<AcmeAccountRecord | null>;
  eabKey(id: string): Promise<AcmeEabKeyRecord | null>;
  /** How many `what` rows `sourceKey` created after `since` (accounts bound by an EAB key are not counted). */
  countCreatedFrom(what: AddressLimited, sourceKey: string, since: Date, tx?: Tx): Promise<number>;
  /** When the oldest of those rows was created. */
  firstCreatedFrom(what: AddressLimited, sourceKey: string, since: Date, tx?: Tx): Promise<Date | null>;

  order(id: string): Promise<AcmeOrderRecord | null>;
  /** The ids of the account's live orders at this directory, newest first (at most 1000). */
  liveOrderIds(accountId: string, profile: string): Promise<{ id: string }[]>;
  /** The first order (oldest) that got this certificate. */
  orderByCertificate(serial: string): Promise<AcmeOrderRecord | null>;
  /** Orders that got this certificate; of one account only if `accountId` is given. */
  countOrdersWithCertificate(serial: string, accountId?: string): Promise<number>;
  countOrdersSince(accountId: string, since: Date): Promise<number>;
  /**
   * The account's orders without a CSR hash for exactly these identifiers that were left
   * processing, recovered already (invalid with the interrupted mark) or not.
   */
  countUnhashedInterruptedOrders(accountId: string, identifiers: string): Promise<number>;
  /** `processing` orders claimed at or before `claimedBefore` (or never timed), at most `limit`. */
  staleOrders(claimedBefore: Date, limit: number): Promise<AcmeOrderRecord[]>;
  /** Ids of orders that never got a certificate and are not processing, expired before `before`. */
  expiredUnissuedOrderIds(before: Date, limit: number): Promise<string[]>;

  authorizationsByIds(ids: string[]): Promise<AcmeAuthorizationRecord[]>;
  authorizationWithChallenges(id: string): Promise<AcmeAuthorizationWithChallenges | null>;
  countPendingAuthorizations(accountId: string, unexpiredAt: Date): Promise<number>;
  /** The account's valid authorizations, unexpired at `now`, for any of these identifier values. */
  validAuthorizations(accountId: string, identifierValues: string[], now: Date): Promise<AcmeAuthorizationRecord[]>;
  /** Valid or pending authorizations of the account for this identifier that last past `expiresAfter`: newest first, at most 10. */
  reusableAuthorizations(
    accountId: string,
    identifierType: string,
    identifierValue: string,
    wildcard: boolean,
    expiresAfter: Date,
    tx?: Tx,
  ): Promise<AcmeAuthorizationRecord[]>;
  /** Ids of authorizations that expired before `before`. */
  expiredAuthorizationIds(before: Date, limit: number): Promise<string[]>;

  challengeWithAuthorization(id: string): Promise<AcmeChallengeWithAuthorization | null>;
  /** The account's challenges that failed since `since`, not counting those the server interrupted. */
  countFailedValidationsSince(accountId: string, since: Date): Promise<number>;
  /** `processing` challenges claimed at or before `claimedBefore` (or never timed), at most `limit`. */
  staleChallenges(claimedBefore: Date, limit: number): Promise<AcmeChallengeRecord[]>;
}

/** Writes to the ACME tables. */
export interface AcmeWrites {
  /** Records a used nonce; false if it was recorded already (a replay). */
  recordUsedNonce(value: string, expiresAt: Date): Promise<boolean>;
  /** Deletes used nonces that expired before `before`; how many. */
  purgeUsedNonces(before: Date): Promise<number>;
  /** Whether an error is a write refused because its unique key exists already (a concurrent twin won). */
  isDuplicate(error: unknown): boolean;

  createAccount(account: NewAcmeAccount, tx?: Tx): Promise<AcmeAccountRecord>;
  updateAccount(id: string, change: AcmeAccountChange, tx?: Tx): Promise<AcmeAccountRecord>;
  /** Binds an unbound EAB key to the account; false if the key is bound already (or unknown). */
  bindEabKey(id: string, accountId: string, tx?: Tx): Promise<boolean>;
  createEabKey(key: NewAcmeEabKey, tx?: Tx): Promise<void>;

  createOrder(order: NewAcmeOrder, tx?: Tx): Promise<AcmeOrderRecord>;
  updateOrder(id: string, change: AcmeOrderChange): Promise<AcmeOrderRecord>;
  /** Sets a `ready` order to `invalid` with this problem; nothing if it is no longer ready. */
  invalidateReadyOrder(id: string, error: string): Promise<void>;
  /** Claims a `ready` order for finalization (status processing); false if another request has it. */
  claimReadyOrder(id: string, since: Date, csrHash: string): Promise<boolean>;
  /** Changes a `processing` order only while `claim` holds; whether it did. */
  updateClaimedOrder(claim: Claim, change: AcmeOrderChange, tx?: Tx): Promise<boolean>;
  /** Deletes these orders if they still have no certificate and are not processing; how many. */
  deleteUnissuedOrders(ids: string[]): Promise<number>;

  createAuthorization(authorization: NewAcmeAuthorization, tx?: Tx): Promise<void>;
  updateAuthorization(id: string, change: AcmeAuthorizationChange, tx?: Tx): Promise<void>;
  /** Every pending or valid authorization of the account becomes deactivated. */
  deactivateAuthorizationsOf(accountId: string, tx?: Tx): Promise<void>;
  /** The authorization becomes invalid if it is still pending. */
  invalidatePendingAuthorization(id: string, tx?: Tx): Promise<void>;
  /** Deletes these authorizations and their challenges, in one transaction; how many of each. */
  deleteAuthorizationsWithChallenges(ids: string[]): Promise<{ authorizations: number; challenges: number }>;

  createChallenge(challenge: NewAcmeChallenge, tx?: Tx): Promise<void>;
  /** Claims a `pending` challenge for validation (status processing); false if it is not pending any more. */
  claimPendingChallenge(id: string, since: Date): Promise<boolean>;
  /** Changes a `processing` challenge only while `claim` holds; whether it did. */
  updateClaimedChallenge(claim: Claim, change: AcmeChallengeChange, tx?: Tx): Promise<boolean>;
}

/** What ACME reads of tables other parts own: certificates, CAs, the audit trail. */
export interface AcmeIssuedReads {
  /** For the certificate chain: its DER and issuer. */
  certificateForChain(serial: string): Promise<{ der: Uint8Array; caId: string } | null>;
  /** For the certificate chain: a CA's certificate and parent (null for a root). */
  caForChain(id: string): Promise<{ certificateDer: Uint8Array; parentId: string | null } | null>;
  /** For revokeCert: the certificate's DER, status, names (JSON) and profile. */
  certificateForRevocation(serial: string): Promise<{ der: Uint8Array; status: string; sans: string; profile: string } | null>;
  /** For renewal information (RFC 9773) and `replaces`. */
  certificateForRenewal(
    serial: string,
  ): Promise<{ serial: string; der: Uint8Array; notBefore: Date; notAfter: Date; status: string; caId: string; profile: string } | null>;
  /** The CA's status and succession, for the renewal window of its certificates. */
  caSuccession(id: string): Promise<{ status: string; retiringSince: Date | null; overlapEndsAt: Date | null } | null>;
  /** Certificates of the profile created since `since` (from this CSR if `csrHash`), oldest first, at most 1000. */
  certificatesCreatedSince(
    profile: string,
    since: Date,
    csrHash: string | null,
  ): Promise<{ serial: string; sans: string; notBefore: Date; notAfter: Date; createdAt: Date }[]>;
  /** Audit events of `action` on `target` by `actor` with a time in [from, to]. */
  countAuditEvents(q: { from: Date; to: Date; action: string; target: string; actor: string }): Promise<number>;
}

export interface AcmeStore extends AcmeReads, AcmeWrites, AcmeIssuedReads {}
