/**
 * The ACME server (RFC 8555) over Signet's authority: accounts, orders, authorizations,
 * challenges validated for real, finalize through the same issuance path (profile policy and
 * certificate rules) as the REST API, certificate download, revocation, key rollover, External
 * Account Binding, and ACME Renewal Information (RFC 9773). State lives in the database so any
 * replica can answer any request; nonces are stateless (acme/nonces.ts).
 *
 * Each profile in SIGNET_ACME_PROFILES is its own ACME server (a "directory", with its own
 * URLs): an account belongs to the directory that created it and is unknown at the others, and
 * every request names the directory it was sent to. Who may do what is decided by
 * ca/authorization.ts (authorizeAcmeAccount, authorizeAcmeResource, authorizeAcmeRevocation).
 *
 * The rows that decide what an account may get carry MACs under keys derived from the master
 * key (ca/row-integrity.ts), so that someone who can write to the database but does not hold
 * the master key cannot make Signet issue: an account (its directory, key and status), and an
 * authorization, whose MAC is written in the transaction that records its validated challenge.
 * An order is ready, and finalizes, only if each of its identifiers is covered by a valid
 * authorization of the ordering account whose MAC verifies; an account whose MAC does not
 * verify is unknown. A row that fails its MAC is logged at error level (it means tampering).
 * EAB HMAC keys are sealed with their directory in the additional data (eabSealId).
 */
import { renewalWindow } from '../ca/renewal-window.js';
import { randomBytes, randomUUID } from 'node:crypto';
import {
  authorizeAcmeAccount,
  authorizeAcmeEabKey,
  authorizeAcmeResource,
  authorizeAcmeRevocation,
  type AcmePrincipal,
  type Principal,
} from '../ca/authorization.js';
import { SignetError } from '../errors.js';
import { appendAudit } from '../ca/audit.js';
import { eabSealId, rowIntegrity } from '../ca/row-integrity.js';
import type { CaContext } from '../ca/context.js';
import type { Issuance } from '../ca/issuance.js';
import type { Revocation } from '../ca/revocation.js';
import { inspectCertificate, serialHex, toPem } from '../pki/certificate.js';
import type { TrustedKey } from '../pki/keys.js';
import { parseCsr } from '../pki/csr.js';
import { REVOCATION_REASONS, reasonFromCode, type RevocationReason } from '../pki/crl.js';
import { checkAllowed, validateDnsName, validateIp, normalizeIp, type SanEntry } from '../pki/names.js';
import { EXT } from '../pki/extensions.js';
import { AsnConvert } from '@peculiar/asn1-schema';
import { AuthorityKeyIdentifier } from '@peculiar/asn1-x509';
import { importJwk, parseJws, publicJwk, thumbprint, verifyEab, verifyJws, type ParsedJws } from './jws.js';
import { Nonces } from './nonces.js';
import { enforceAddressLimit } from './address-limits.js';
import { addressKey } from '../http/client-address.js';
import { FINALIZE_STALE_MS, isStale, recoverChallenge, recoverOrder } from './recovery.js';
import type { AcmeStore } from './store.js';
import { checkContacts } from './contact.js';
import { crossChainAbove, walkCaChain } from '../ca/ca-chain-check.js';
import type { AcmeAccountRecord, AcmeAuthorizationRecord, AcmeOrderRecord } from '../model/acme.js';
import { keyAuthorization, validateDns01, validateHttp01, validateTlsAlpn01, type ValidationSettings } from './validation.js';

export interface AcmeSettings {
  profiles: string[];
  eabRequired: Set<string>;
  validation: ValidationSettings;
  validationAttempts: number;
  ordersPerHour: number;
  pendingAuthorizations: number;
  failedValidationsPerHour: number;
  orderLifetimeHours: number;
  /** New accounts (without External Account Binding) per client address per hour; 0: no limit. */
  accountsPerAddressPerHour: number;
  /** New orders per client address per hour, over all its accounts; 0: no limit. */
  ordersPerAddressPerHour: number;
}

/**
 * The directory a request was sent to: its profile, and the account-URL prefixes a kid may
 * carry there (the directory's own, and the shared /acme/account/ that accounts of every
 * directory were given before directories had their own URLs).
 */
export interface AcmeDirectory {
  profile: string;
  accountPrefixes: string[];
}

/** First path segments of the /acme/directory resources: no other ACME profile may be named so. */
export const RESERVED_DIRECTORY_NAMES = [
  'directory',
  'new-nonce',
  'new-account',
  'new-order',
  'account',
  'key-change',
  'order',
  'authz',
  'chall',
  'cert',
  'revoke-cert',
  'renewal-info',
];

type Identifier = { type: 'dns' | 'ip'; value: string };

/** Whether an order's authorizations entitle its account to its identifiers now (see entitlement()). */
interface Entitlement {
  status: 'pending' | 'ready' | 'invalid';
  detail?: string;
  forged?: boolean;
}

const acmeErr = (acme: string, detail: string, status = 400, extra?: Record<string, unknown>) =>
  new SignetError(
    status === 403
      ? 'forbidden'
      : status === 404
        ? 'not-found'
        : status === 401
          ? 'unauthorized'
          : status === 429
            ? 'rate-limited'
            : status >= 500
              ? 'internal'
              : 'bad-request',
    detail,
    { acme, status, extra },
  );

const HOUR = 3_600_000;

export interface AuthenticatedRequest {
  account?: AcmeAccountRecord;
  principal?: AcmePrincipal;
  key: TrustedKey;
  payload: unknown;
  jws: ParsedJws;
}
type AccountRequest = AuthenticatedRequest & { account: AcmeAccountRecord; principal: AcmePrincipal };

export class AcmeService {
  /** Challenges this process is validating, orders it is finalizing: never recovered by it meanwhile. */
  private readonly validating = new Set<string>();
  private readonly finalizing = new Set<string>();
  private nonceStore?: Nonces;
  /** A validation in a live process ends within this; a claim older than it was left by a dead one. */
  private readonly validationStaleMs: number;

  constructor(
    private readonly ctx: CaContext,
    private readonly issuance: Issuance,
    private readonly revocation: Revocation,
    readonly settings: AcmeSettings,
  ) {
    for (const p of settings.profiles.slice(1)) {
      if (RESERVED_DIRECTORY_NAMES.includes(p))
        throw new SignetError(
          'configuration',
          `SIGNET_ACME_PROFILES: profile ${p} cannot have an ACME directory at /acme/${p}/ (the name is one of /acme/directory's own resources); rename the profile or list it first`,
        );
    }
    const a = settings.validationAttempts;
    this.validationStaleMs = a * (4 * settings.validation.timeoutMs + 1000 * a) + 60_000;
  }

  profileOrThrow(name: string): string {
    if (!this.settings.profiles.includes(name))
      throw acmeErr('malformed', `there is no ACME directory for profile ${name}; available: ${this.settings.profiles.join(', ')}`, 404);
    return name;
  }

  // ---- row MACs (ca/row-integrity.ts) ---------------------------------------------------------

  private get macs() {
    return rowIntegrity(this.ctx.keys);
  }

  private get store(): AcmeStore {
    return this.ctx.stores.acme;
  }

  /** An account row that fails its MAC: logged (tampering), then treated as no account at all. */
  private accountIntact(row: AcmeAccountRecord): boolean {
    if (this.macs.accountIntact(row)) return true;
    this.ctx.log.error(
      { account: row.id, directory: row.profile },
      'ACME account row failed its integrity check (its MAC does not verify): it was inserted or changed in the database without the master key; treated as unknown',
    );
    return false;
  }

  // ---- nonces -------------------------------------------------------------------------------

  private get nonces(): Nonces {
    return (this.nonceStore ??= new Nonces(
      this.ctx.keys.deriveSecret('acme nonce v1'),
      {
        record: (value, expiresAt) => this.store.recordUsedNonce(value, expiresAt),
        purge: async (before) => {
          try {
            return await this.store.purgeUsedNonces(before);
          } catch (e) {
            this.ctx.log.warn({ err: e }, 'purging used ACME nonces failed; will retry');
            return 0;
          }
        },
      },
      this.ctx.now,
    ));
  }

  /** A fresh Replay-Nonce: stateless, no database work. */
  newNonce(): string {
    return this.nonces.mint();
  }

  // ---- request authentication -------------------------------------------------------------

  /**
   * Checks url, nonce, key (jwk for newAccount/revocation, kid otherwise) and signature; a kid
   * must name an account of this directory. The nonce is recorded as used only once the
   * signature verified and the account may act here, so forged or refused requests write nothing.
   */
  async authenticate(jws: ParsedJws, url: string, mode: 'jwk' | 'kid' | 'either', dir: AcmeDirectory): Promise<AuthenticatedRequest> {
    const h = jws.header;
    if (h.url !== url) throw acmeErr('unauthorized', `the JWS url header (${String(h.url)}) does not match the request URL ${url}`, 401);
    if (h.jwk && h.kid) throw acmeErr('malformed', 'the JWS must carry either jwk or kid, not both');
    if (mode === 'jwk' && !h.jwk) throw acmeErr('malformed', 'this request must be signed with a jwk, not a kid');
    if (mode === 'kid' && !h.kid) throw acmeErr('malformed', 'this request must be signed with the account URL as kid');
    const nonce = this.nonces.check(h.nonce);
    let account: AcmeAccountRecord | undefined;
    let principal: AcmePrincipal | undefined;
    let key: TrustedKey;
    if (h.jwk) {
      key = importJwk(h.jwk);
      verifyJws(jws, key);
    } else {
      const id = this.accountIdOf(h.kid, dir);
      const row = await this.store.account(id);
      if (!row || !this.accountIntact(row)) throw acmeErr('accountDoesNotExist', 'no account exists for this kid', 400);
      key = importJwk(JSON.parse(row.jwk));
      verifyJws(jws, key);
      if (row.status !== 'valid') throw acmeErr('unauthorized', `account ${row.id} is ${row.status}`, 401);
      principal = { kind: 'acme', accountId: row.id, directory: row.profile };
      authorizeAcmeAccount(principal, dir.profile);
      account = row;
    }
    await this.nonces.spend(nonce);
    let payload: unknown;
    if (jws.payloadText !== '') {
      try {
        payload = JSON.parse(jws.payloadText);
      } catch {
        throw acmeErr('malformed', 'the JWS payload is not JSON');
      }
    }
    return { account, principal, key, payload, jws };
  }

  private accountIdOf(kid: unknown, dir: AcmeDirectory): string {
    if (typeof kid === 'string') {
      for (const prefix of dir.accountPrefixes) {
        if (kid.startsWith(prefix) && /^[A-Za-z0-9_-]{1,64}$/.test(kid.slice(prefix.length))) return kid.slice(prefix.length);
      }
    }
    throw acmeErr('accountDoesNotExist', `kid is not an account URL of this ACME directory (${dir.accountPrefixes[0]}…)`, 400);
  }

  private static signedByAccount(req: AuthenticatedRequest): AccountRequest {
    if (!req.account || !req.principal) throw acmeErr('malformed', 'this request must be signed with the account URL as kid');
    return req as AccountRequest;
  }

  // ---- accounts -----------------------------------------------------------------------------

  private findAccountByKey(profile: string, tp: string) {
    return this.store.accountByKey(profile, tp);
  }

  async newAccount(dir: AcmeDirectory, req: AuthenticatedRequest, url: string, sourceIp?: string): Promise<{ account: AcmeAccountRecord; created: boolean }> {
    const profile = dir.profile;
    const p = (req.payload ?? {}) as { contact?: unknown; termsOfServiceAgreed?: unknown; onlyReturnExisting?: unknown; externalAccountBinding?: unknown };
    if (typeof p !== 'object' || Array.isArray(p)) throw acmeErr('malformed', 'newAccount payload must be an object');
    const tp = thumbprint(req.key);
    // The key's account at THIS directory; an account of the same key at another directory is another account.
    const existing = await this.findAccountByKey(profile, tp);
    if (existing) {
      if (!this.accountIntact(existing))
        throw acmeErr(
          'unauthorized',
          `the account of this key at the ${profile} ACME directory failed Signet's integrity check and cannot be used; ask the CA operator`,
          401,
        );
      if (existing.status !== 'valid') throw acmeErr('unauthorized', `account ${existing.id} is ${existing.status}`, 401);
      return { account: existing, created: false };
    }
    if (p.onlyReturnExisting === true) throw acmeErr('accountDoesNotExist', `no account exists for this key at the ${profile} ACME directory`, 400);
    const contact = this.validateContact(p.contact);
    let eabKeyId: string | null = null;
    if (p.externalAccountBinding !== undefined || this.settings.eabRequired.has(profile)) {
      if (p.externalAccountBinding === undefined)
        throw acmeErr(
          'externalAccountRequired',
          `the ${profile} ACME directory requires External Account Binding; ask the CA operator for a key (signet acme eab create --profile ${profile})`,
        );
      eabKeyId = await this.verifyExternalAccount(p.externalAccountBinding, req.key, url, profile);
    }
    const id = randomBytes(12).toString('base64url');
    try {
      const sourceKey = addressKey(sourceIp);
      const account = await this.ctx.db.transaction(async (tx) => {
        if (eabKeyId) {
          const bound = await this.store.bindEabKey(eabKeyId, id, tx);
          if (!bound) throw acmeErr('unauthorized', `external account key ${eabKeyId} was already used`, 401);
        } else {
          // Without EAB an account costs one request: counted per client address (address-limits.ts).
          await enforceAddressLimit(this.store, 'accounts', sourceKey, this.settings.accountsPerAddressPerHour, this.ctx.now(), tx);
        }
        const fields = { id, thumbprint: tp, jwk: JSON.stringify(publicJwk(req.key)), status: 'valid', profile };
        const row = await this.store.createAccount({ ...fields, contact: JSON.stringify(contact), eabKeyId, sourceKey, mac: this.macs.accountMac(fields) }, tx);
        await appendAudit(tx, { actor: `acme:${id}`, action: 'acme.account.created', target: id, sourceIp, details: { profile, contact, eabKeyId } });
        return row;
      });
      return { account, created: true };
    } catch (e) {
      // The same key registering twice at once: the other request won; this one finds its account.
      const winner = this.store.isDuplicate(e) ? await this.findAccountByKey(profile, tp) : null;
      if (winner && winner.status === 'valid') return { account: winner, created: false };
      throw e;
    }
  }

  /** Verifies an External Account Binding for `directory`; returns the EAB key id. */
  private async verifyExternalAccount(eab: unknown, key: TrustedKey, url: string, directory: string): Promise<string> {
    const kid = parseJws(eab).header.kid;
    const row = typeof kid === 'string' && kid ? await this.store.eabKey(kid) : null;
    // Sealed with its directory as additional data: a row moved to another directory does not
    // unseal. Keys made before keys had a directory (null) bind to the first one they are used at.
    const hmacKey = row ? this.ctx.keys.unsealSecret(row.profile === null ? row.id : eabSealId(row.id, row.profile), row.sealed) : null;
    if (row && !hmacKey)
      this.ctx.log.error(
        { eabKey: row.id, directory: row.profile },
        'ACME EAB key row does not unseal for its directory: it was changed in the database without the master key; refused',
      );
    const id = verifyEab(eab, publicJwk(key), url, (k) => (row && k === row.id ? hmacKey : null));
    // Only the holder of the key gets this far, so the refusals below may be precise.
    authorizeAcmeEabKey(row!, directory);
    return id;
  }

  /** RFC 8555 §7.3 contacts, held to RFC 5321's limits (contact.ts); 400 invalidContact or unsupportedContact. */
  private validateContact(c: unknown): string[] {
    const r = checkContacts(c);
    if ('problem' in r) throw acmeErr(r.problem.type, r.problem.detail);
    return r.contacts;
  }

  async updateAccount(dir: AcmeDirectory, auth: AuthenticatedRequest, id: string, sourceIp?: string): Promise<AcmeAccountRecord> {
    const req = AcmeService.signedByAccount(auth);
    authorizeAcmeResource(req.principal, dir.profile, { kind: 'account', id, accountId: id });
    const p = (req.payload ?? {}) as { contact?: unknown; status?: unknown };
    if (req.payload === undefined) return req.account; // POST-as-GET
    if (typeof p !== 'object' || p === null || Array.isArray(p)) throw acmeErr('malformed', 'the account update payload must be an object');
    const data: { contact?: string; status?: string; mac?: string } = {};
    if (p.contact !== undefined) data.contact = JSON.stringify(this.validateContact(p.contact));
    if (p.status !== undefined) {
      if (p.status !== 'deactivated') throw acmeErr('malformed', 'the only status a client may set is "deactivated"');
      data.status = 'deactivated';
      data.mac = this.macs.accountMac({ ...req.account, status: 'deactivated' });
    }
    return this.ctx.db.transaction(async (tx) => {
      const row = await this.store.updateAccount(id, data, tx);
      if (data.contact || data.status)
        await appendAudit(tx, {
          actor: `acme:${id}`,
          action: data.status ? 'acme.account.deactivated' : 'acme.account.updated',
          target: id,
          sourceIp,
          details: data.contact ? { contact: JSON.parse(data.contact) } : null,
        });
      if (data.status) await this.store.deactivateAuthorizationsOf(id, tx);
      return row;
    });
  }

  /** RFC 8555 §7.3.5: the inner JWS, signed by the new key, names the account and its old key. */
  async keyChange(dir: AcmeDirectory, auth: AuthenticatedRequest, url: string, sourceIp?: string): Promise<AcmeAccountRecord> {
    const { account } = AcmeService.signedByAccount(auth);
    const inner = parseJws(auth.payload);
    if (!inner.header.jwk) throw acmeErr('malformed', 'the inner key-change JWS must carry the new key as jwk');
    if (inner.header.url !== url) throw acmeErr('malformed', 'the inner JWS url must equal the keyChange URL');
    if ('nonce' in inner.header) throw acmeErr('malformed', 'the inner JWS must not carry a nonce');
    const newKey = importJwk(inner.header.jwk);
    verifyJws(inner, newKey);
    let p: { account?: unknown; oldKey?: unknown };
    try {
      p = JSON.parse(inner.payloadText) as typeof p;
    } catch {
      throw acmeErr('malformed', 'the inner JWS payload is not JSON');
    }
    if (!dir.accountPrefixes.some((prefix) => p.account === `${prefix}${account.id}`)) throw acmeErr('malformed', 'the inner payload names another account');
    if (thumbprint(importJwk(p.oldKey)) !== account.thumbprint) throw acmeErr('malformed', "the inner payload's oldKey is not the account's current key");
    const tp = thumbprint(newKey);
    const clash = await this.findAccountByKey(account.profile, tp);
    const conflict = (other: string) =>
      acmeErr('conflict', 'the new key is already used by another account of this directory', 409, { location: `${dir.accountPrefixes[0]}${other}` });
    if (clash) throw conflict(clash.id);
    try {
      return await this.ctx.db.transaction(async (tx) => {
        const jwk = JSON.stringify(publicJwk(newKey));
        const row = await this.store.updateAccount(account.id, { thumbprint: tp, jwk, mac: this.macs.accountMac({ ...account, thumbprint: tp, jwk }) }, tx);
        await appendAudit(tx, {
          actor: `acme:${account.id}`,
          action: 'acme.account.key_changed',
          target: account.id,
          sourceIp,
          details: { oldThumbprint: account.thumbprint, newThumbprint: tp },
        });
        return row;
      });
    } catch (e) {
      const winner = this.store.isDuplicate(e) ? await this.findAccountByKey(account.profile, tp) : null;
      if (winner) throw conflict(winner.id);
      throw e;
    }
  }

  // ---- orders and authorizations ------------------------------------------------------------

  private checkIdentifiers(profile: string, raw: unknown): Identifier[] {
    if (!Array.isArray(raw) || raw.length === 0) throw acmeErr('malformed', 'identifiers must be a non-empty array');
    if (raw.length > 100) throw acmeErr('rejectedIdentifier', 'at most 100 identifiers per order');
    const out: Identifier[] = [];
    const seen = new Set<string>();
    for (const i of raw as { type?: unknown; value?: unknown }[]) {
      if (!i || typeof i.value !== 'string') throw acmeErr('malformed', 'each identifier needs a type and a string value');
      let id: Identifier;
      try {
        if (i.type === 'dns') {
          validateDnsName(i.value);
          id = { type: 'dns', value: i.value };
        } else if (i.type === 'ip') {
          validateIp(i.value);
          id = { type: 'ip', value: normalizeIp(i.value) };
        } else throw acmeErr('unsupportedIdentifier', `identifier type ${JSON.stringify(i.type)} is not supported; use dns or ip`);
      } catch (e) {
        if (e instanceof SignetError && e.acme) throw e;
        throw acmeErr('rejectedIdentifier', (e as Error).message);
      }
      const key = `${id.type}:${id.value}`;
      if (!seen.has(key)) {
        seen.add(key);
        out.push(id);
      }
    }
    const p = this.issuance.profile(profile);
    const sans: SanEntry[] = out.map((x) => ({ type: x.type, value: x.value }));
    for (const s of sans) if (!p.sanTypes.includes(s.type)) throw acmeErr('rejectedIdentifier', `profile ${profile} does not allow ${s.type} identifiers`);
    try {
      checkAllowed(sans, { dnsSuffixes: p.dnsSuffixes, ipRanges: p.ipRanges, emailDomains: p.emailDomains });
    } catch (e) {
      throw acmeErr('rejectedIdentifier', (e as Error).message);
    }
    return out;
  }

  private async enforceLimits(accountId: string): Promise<void> {
    const now = this.ctx.now();
    const hourAgo = new Date(now.getTime() - HOUR);
    const orders = await this.store.countOrdersSince(accountId, hourAgo);
    if (orders >= this.settings.ordersPerHour)
      throw acmeErr('rateLimited', `account ${accountId} created ${orders} orders in the last hour (limit ${this.settings.ordersPerHour})`, 429, {
        retryAfter: 3600,
      });
    const pending = await this.store.countPendingAuthorizations(accountId, now);
    if (pending >= this.settings.pendingAuthorizations)
      throw acmeErr(
        'rateLimited',
        `account ${accountId} has ${pending} pending authorizations (limit ${this.settings.pendingAuthorizations}); complete or deactivate some`,
        429,
        { retryAfter: 600 },
      );
    // A validation the server interrupted (recovery.ts) is not the client's failure: not counted.
    const failed = await this.store.countFailedValidationsSince(accountId, hourAgo);
    if (failed >= this.settings.failedValidationsPerHour)
      throw acmeErr(
        'rateLimited',
        `account ${accountId} failed ${failed} validations in the last hour (limit ${this.settings.failedValidationsPerHour})`,
        429,
        { retryAfter: 3600 },
      );
  }

  async newOrder(dir: AcmeDirectory, auth: AuthenticatedRequest, sourceIp?: string) {
    const { account } = AcmeService.signedByAccount(auth);
    const profile = dir.profile;
    const p = (auth.payload ?? {}) as { identifiers?: unknown; notBefore?: unknown; notAfter?: unknown; replaces?: unknown };
    if (p.notBefore !== undefined || p.notAfter !== undefined) throw acmeErr('malformed', 'notBefore/notAfter are not supported: the profile decides validity');
    const identifiers = this.checkIdentifiers(profile, p.identifiers);
    let replaces: string | null = null;
    if (p.replaces !== undefined) {
      if (typeof p.replaces !== 'string') throw acmeErr('malformed', 'replaces must be an ARI certificate identifier');
      const cert = await this.certByAriId(p.replaces);
      if (!cert) throw acmeErr('malformed', 'replaces names a certificate this server did not issue');
      if (cert.profile !== profile)
        throw acmeErr('malformed', `replaces names a certificate of the ${cert.profile} profile, not of this (${profile}) ACME directory`);
      replaces = cert.serial;
    }
    await this.enforceLimits(account.id);
    const now = this.ctx.now();
    const expires = new Date(now.getTime() + this.settings.orderLifetimeHours * HOUR);
    const sourceKey = addressKey(sourceIp);
    return this.ctx.db.transaction(async (tx) => {
      await enforceAddressLimit(this.store, 'orders', sourceKey, this.settings.ordersPerAddressPerHour, now, tx);
      const authzIds: string[] = [];
      for (const id of identifiers) {
        const wildcard = id.type === 'dns' && id.value.startsWith('*.');
        const value = wildcard ? id.value.slice(2) : id.value;
        // Authorizations are reused only within the account, hence within its directory.
        const candidates = await this.store.reusableAuthorizations(account.id, id.type, value, wildcard, new Date(now.getTime() + HOUR), tx);
        // A valid authorization is reused only if Signet validated it (its MAC verifies).
        const reuse = candidates.find((a) => a.status === 'pending' || this.authorizationIntact(a));
        if (reuse) {
          authzIds.push(reuse.id);
          continue;
        }
        const authzId = randomBytes(12).toString('base64url');
        await this.store.createAuthorization(
          { id: authzId, accountId: account.id, identifierType: id.type, identifierValue: value, wildcard, status: 'pending', expires },
          tx,
        );
        const types = wildcard ? ['dns-01'] : id.type === 'ip' ? ['http-01', 'tls-alpn-01'] : ['http-01', 'dns-01', 'tls-alpn-01'];
        for (const type of types) {
          await this.store.createChallenge(
            { id: randomBytes(12).toString('base64url'), authorizationId: authzId, type, token: randomBytes(32).toString('base64url'), status: 'pending' },
            tx,
          );
        }
        authzIds.push(authzId);
      }
      const order = await this.store.createOrder(
        {
          id: randomBytes(12).toString('base64url'),
          accountId: account.id,
          profile,
          status: 'pending',
          expires,
          identifiers: JSON.stringify(identifiers),
          authorizations: JSON.stringify(authzIds),
          replaces,
          sourceKey,
        },
        tx,
      );
      await appendAudit(tx, {
        actor: `acme:${account.id}`,
        action: 'acme.order.created',
        target: order.id,
        sourceIp,
        details: { profile, identifiers: identifiers.map((i) => i.value), replaces },
      });
      return order;
    });
  }

  async listOrders(dir: AcmeDirectory, auth: AuthenticatedRequest, accountId: string) {
    const { principal } = AcmeService.signedByAccount(auth);
    authorizeAcmeResource(principal, dir.profile, { kind: 'account', id: accountId, accountId });
    return this.store.liveOrderIds(accountId, dir.profile);
  }

  /** The order, if this account may see it here, with its status brought up to date. */
  async order(dir: AcmeDirectory, auth: AuthenticatedRequest, id: string) {
    const { principal } = AcmeService.signedByAccount(auth);
    let order = await this.store.order(id);
    if (!order) throw acmeErr('malformed', `order ${id} does not exist`, 404);
    authorizeAcmeResource(principal, dir.profile, { kind: 'order', id, accountId: order.accountId, profile: order.profile });
    const now = this.ctx.now();
    if (order.status === 'pending' || order.status === 'ready') {
      const e = await this.entitlement(order, now);
      // An order never goes back from ready: one marked ready with an authorization still pending was marked so in the database.
      const status = e.status === 'pending' && order.status === 'ready' ? 'invalid' : e.status;
      if (status !== order.status) {
        const detail =
          e.status === 'pending'
            ? `order ${id} was marked ready while an authorization is still pending: it was changed in the database`
            : e.forged
              ? e.detail!
              : 'an authorization failed or expired';
        if (e.status === 'pending' || e.forged)
          this.ctx.log.error({ order: id, account: order.accountId, detail }, "ACME order refused: its authorization state failed Signet's integrity check");
        order = await this.store.updateOrder(id, {
          status,
          ...(status === 'invalid' ? { error: JSON.stringify({ type: 'urn:ietf:params:acme:error:unauthorized', detail, status: 403 }) } : {}),
        });
      }
    } else if (order.status === 'processing' && !this.finalizing.has(id) && isStale(order.processingSince, now, FINALIZE_STALE_MS)) {
      await recoverOrder(this.ctx, order);
      order = (await this.store.order(id))!;
    }
    return order;
  }

  /** A valid authorization Signet validated (its MAC verifies); one that fails is logged as tampering. */
  private authorizationIntact(a: AcmeAuthorizationRecord): boolean {
    if (this.macs.authorizationIntact(a)) return true;
    if (a.status === 'valid')
      this.ctx.log.error(
        { authorizationId: a.id, account: a.accountId, identifier: a.identifierValue },
        'ACME authorization is marked valid but failed its integrity check (its MAC does not verify): it was set valid in the database without the master key; not used',
      );
    return false;
  }

  /**
   * Whether the order's authorizations, read now, entitle its account to every identifier of the
   * order: each covered by one of the order's authorizations, of the same account, identifier
   * and wildcard, valid, unexpired and with a MAC that verifies. `forged` marks what only a
   * change in the database explains (a refusal to log at error level).
   */
  private async entitlement(order: AcmeOrderRecord, now: Date): Promise<Entitlement> {
    if (order.expires <= now) return { status: 'invalid', detail: `order ${order.id} expired` };
    const ids = JSON.parse(order.authorizations) as string[];
    const authz = await this.store.authorizationsByIds(ids);
    let pending = false;
    for (const i of JSON.parse(order.identifiers) as Identifier[]) {
      const wildcard = i.type === 'dns' && i.value.startsWith('*.');
      const value = wildcard ? i.value.slice(2) : i.value;
      const a = authz.find((x) => x.identifierType === i.type && x.identifierValue === value && x.wildcard === wildcard);
      if (!a) return { status: 'invalid', forged: true, detail: `order ${order.id} has no authorization for ${i.value}: it was changed in the database` };
      if (a.accountId !== order.accountId)
        return {
          status: 'invalid',
          forged: true,
          detail: `authorization ${a.id} for ${i.value} belongs to another account than order ${order.id}: it was changed in the database`,
        };
      if (a.expires <= now || !['pending', 'valid'].includes(a.status))
        return { status: 'invalid', detail: `authorization ${a.id} for ${i.value} is ${a.expires <= now ? 'expired' : a.status}` };
      if (a.status === 'pending') {
        pending = true;
        continue;
      }
      if (!this.authorizationIntact(a))
        return {
          status: 'invalid',
          forged: true,
          detail: `authorization ${a.id} for ${i.value} is marked valid, but Signet did not validate it (its MAC does not verify): it was changed in the database without the master key`,
        };
    }
    return { status: pending ? 'pending' : 'ready' };
  }

  /** Challenges left `processing` by a dead validator become invalid (recovery.ts). */
  private async recoverStaleChallenges(challenges: { id: string; authorizationId: string; status: string; processingSince: Date | null }[]): Promise<boolean> {
    const now = this.ctx.now();
    let changed = false;
    for (const c of challenges) {
      if (c.status === 'processing' && !this.validating.has(c.id) && isStale(c.processingSince, now, this.validationStaleMs))
        changed = (await recoverChallenge(this.ctx, c)) || changed;
    }
    return changed;
  }

  async authorization(dir: AcmeDirectory, auth: AuthenticatedRequest, id: string) {
    const { principal } = AcmeService.signedByAccount(auth);
    const find = () => this.store.authorizationWithChallenges(id);
    let a = await find();
    if (!a) throw acmeErr('malformed', `authorization ${id} does not exist`, 404);
    authorizeAcmeResource(principal, dir.profile, { kind: 'authorization', id, accountId: a.accountId });
    if (await this.recoverStaleChallenges(a.challenges)) a = (await find())!;
    if (a.status === 'pending' && a.expires <= this.ctx.now()) {
      await this.store.updateAuthorization(id, { status: 'expired' });
      a.status = 'expired';
    }
    return a;
  }

  async deactivateAuthorization(dir: AcmeDirectory, auth: AuthenticatedRequest, id: string) {
    const a = await this.authorization(dir, auth, id);
    if (a.status !== 'pending' && a.status !== 'valid') throw acmeErr('malformed', `authorization ${id} is ${a.status} and cannot be deactivated`);
    await this.store.updateAuthorization(id, { status: 'deactivated' });
    return this.authorization(dir, auth, id);
  }

  async challenge(dir: AcmeDirectory, auth: AuthenticatedRequest, id: string) {
    const { principal } = AcmeService.signedByAccount(auth);
    const find = () => this.store.challengeWithAuthorization(id);
    let ch = await find();
    if (!ch) throw acmeErr('malformed', `challenge ${id} does not exist`, 404);
    authorizeAcmeResource(principal, dir.profile, { kind: 'challenge', id, accountId: ch.authorization.accountId });
    if (await this.recoverStaleChallenges([ch])) ch = (await find())!;
    return ch;
  }

  /** The client says it is ready: validate now (in the background) and answer with the challenge. */
  async respondChallenge(dir: AcmeDirectory, auth: AuthenticatedRequest, id: string, sourceIp?: string) {
    const { account } = AcmeService.signedByAccount(auth);
    const ch = await this.challenge(dir, auth, id);
    if (ch.status !== 'pending') return ch;
    if (ch.authorization.status !== 'pending') throw acmeErr('malformed', `authorization ${ch.authorizationId} is ${ch.authorization.status}`);
    const claimedAt = this.ctx.now();
    if (await this.store.claimPendingChallenge(id, claimedAt)) void this.runValidation(id, account, claimedAt, sourceIp);
    return (await this.store.challengeWithAuthorization(id))!;
  }

  private async runValidation(id: string, account: AcmeAccountRecord, claimedAt: Date, sourceIp?: string): Promise<void> {
    if (this.validating.has(id)) return;
    this.validating.add(id);
    // The result is written only while this validation still holds the claim (recovery may have ended it).
    const claim = { id, processingSince: claimedAt };
    try {
      const ch = (await this.store.challengeWithAuthorization(id))!;
      const keyAuth = keyAuthorization(ch.token, account.thumbprint);
      const domain = ch.authorization.identifierValue;
      let error: SignetError | undefined;
      for (let attempt = 1; attempt <= this.settings.validationAttempts; attempt++) {
        try {
          if (ch.type === 'http-01') await validateHttp01(domain, ch.token, keyAuth, this.settings.validation);
          else if (ch.type === 'dns-01') await validateDns01(domain, keyAuth, this.settings.validation);
          else await validateTlsAlpn01(domain, keyAuth, this.settings.validation);
          error = undefined;
          break;
        } catch (e) {
          error = e instanceof SignetError ? e : acmeErr('serverInternal', (e as Error).message, 500);
          if (attempt < this.settings.validationAttempts) await new Promise((r) => setTimeout(r, 1000 * attempt));
        }
      }
      const now = this.ctx.now();
      await this.ctx.db.transaction(async (tx) => {
        if (error) {
          const problem = { type: `urn:ietf:params:acme:error:${error.acme ?? 'unauthorized'}`, detail: error.detail, status: 403 };
          if (!(await this.store.updateClaimedChallenge(claim, { status: 'invalid', processingSince: null, error: JSON.stringify(problem) }, tx))) return;
          await this.store.updateAuthorization(ch.authorizationId, { status: 'invalid' }, tx);
        } else {
          if (!(await this.store.updateClaimedChallenge(claim, { status: 'valid', processingSince: null, validated: now }, tx))) return;
          // The MAC covers what was validated — this account, this identifier — whatever the row says now.
          const a = ch.authorization;
          const valid = {
            id: a.id,
            accountId: account.id,
            identifierType: a.identifierType,
            identifierValue: domain,
            wildcard: a.wildcard,
            expires: new Date(now.getTime() + 30 * 24 * HOUR),
          };
          await this.store.updateAuthorization(ch.authorizationId, { ...valid, status: 'valid', mac: this.macs.authorizationMac(valid) }, tx);
        }
        await appendAudit(tx, {
          actor: `acme:${account.id}`,
          action: error ? 'acme.challenge.failed' : 'acme.challenge.validated',
          target: id,
          outcome: error ? 'failure' : 'success',
          sourceIp,
          details: { type: ch.type, identifier: domain, ...(error ? { error: error.detail } : {}) },
        });
      });
    } catch (e) {
      this.ctx.log.error({ err: e, challenge: id }, 'ACME validation crashed');
      await this.store
        .updateClaimedChallenge(claim, {
          status: 'invalid',
          processingSince: null,
          error: JSON.stringify({ type: 'urn:ietf:params:acme:error:serverInternal', detail: 'validation failed inside the server' }),
        })
        .catch(() => undefined);
    } finally {
      this.validating.delete(id);
    }
  }

  async finalize(dir: AcmeDirectory, id: string, auth: AuthenticatedRequest, sourceIp?: string) {
    const { account } = AcmeService.signedByAccount(auth);
    const order = await this.order(dir, auth, id);
    if (order.status !== 'ready')
      throw acmeErr('orderNotReady', `order ${id} is ${order.status}; finalize needs every authorization valid (status ready)`, 403);
    const p = (auth.payload ?? {}) as { csr?: unknown };
    if (typeof p.csr !== 'string' || !/^[A-Za-z0-9_-]+$/.test(p.csr)) throw acmeErr('badCSR', 'finalize needs a base64url DER csr');
    const der = Buffer.from(p.csr, 'base64url');
    let csr;
    try {
      csr = parseCsr(der);
    } catch (e) {
      throw acmeErr('badCSR', (e as Error).message);
    }
    // RFC 8555 §11.1: an account key must not also be a certificate key.
    let csrThumbprint: string | undefined;
    try {
      csrThumbprint = thumbprint(csr.publicKey);
    } catch {
      /* a key type ACME accounts cannot have */
    }
    if (csrThumbprint === account.thumbprint) throw acmeErr('badCSR', "the CSR's public key is the account key; use a separate key for the certificate");
    const want = new Set((JSON.parse(order.identifiers) as Identifier[]).map((i) => `${i.type}:${i.value}`));
    const got = new Set(csr.sans.map((s) => `${s.type}:${s.type === 'ip' ? normalizeIp(s.value) : s.value}`));
    if (csr.subject.commonName && !csr.sans.some((s) => s.value === csr.subject.commonName)) got.add(`dns:${csr.subject.commonName}`);
    const missing = [...want].filter((x) => !got.has(x));
    const extra = [...got].filter((x) => !want.has(x));
    if (missing.length || extra.length)
      throw acmeErr(
        'badCSR',
        `the CSR's names must equal the order's identifiers${missing.length ? `; missing ${missing.join(', ')}` : ''}${extra.length ? `; not in the order: ${extra.join(', ')}` : ''}`,
      );
    // Every authorization again, right before the claim: only what Signet validated counts.
    const e = await this.entitlement(order, this.ctx.now());
    if (e.status !== 'ready') {
      const detail = e.detail ?? `order ${id} has an authorization that is not valid yet`;
      if (e.forged || e.status === 'pending') {
        this.ctx.log.error(
          { order: id, account: account.id, detail },
          "ACME finalize refused: the order's authorization state failed Signet's integrity check",
        );
        await this.store.invalidateReadyOrder(id, JSON.stringify({ type: 'urn:ietf:params:acme:error:unauthorized', detail, status: 403 }));
        throw acmeErr('unauthorized', detail, 403);
      }
      throw acmeErr('orderNotReady', detail, 403);
    }
    // The claim records when and for which CSR: if this process dies before the order is
    // updated, recovery (recovery.ts) finds a certificate committed for it instead of losing it.
    const claimed = await this.store.claimReadyOrder(id, this.ctx.now(), csr.sha256);
    if (!claimed) throw acmeErr('orderNotReady', `order ${id} is already being finalized`, 403);
    this.finalizing.add(id);
    try {
      const cert = await this.issuance.issue(
        { csr: der, profile: order.profile },
        { principal: { kind: 'acme', accountId: account.id, directory: order.profile }, sourceIp },
      );
      // Unconditional: a certificate that exists is always attached, even if a replica meanwhile judged the claim stale.
      return await this.store.updateOrder(id, {
        status: 'valid',
        processingSince: null,
        certificateSerial: cert.serial,
        notBefore: cert.notBefore,
        notAfter: cert.notAfter,
        error: null,
      });
    } catch (e) {
      // A refused CSR leaves the order ready for another attempt; anything else fails it.
      const refused = e instanceof SignetError && e.status < 500;
      await this.store.updateOrder(
        id,
        refused
          ? { status: 'ready', processingSince: null, csrHash: null }
          : {
              status: 'invalid',
              processingSince: null,
              error: JSON.stringify({ type: 'urn:ietf:params:acme:error:serverInternal', detail: 'issuance failed' }),
            },
      );
      if (e instanceof SignetError && !e.acme)
        throw acmeErr(
          e.type === 'rejected-name' || e.type === 'policy'
            ? 'rejectedIdentifier'
            : e.type === 'bad-key'
              ? 'badCSR'
              : e.status >= 500
                ? 'serverInternal'
                : 'badCSR',
          e.detail,
          e.status >= 500 ? 500 : 400,
        );
      throw e;
    } finally {
      this.finalizing.delete(id);
    }
  }

  async certificateChain(dir: AcmeDirectory, auth: AuthenticatedRequest, serial: string): Promise<string> {
    const { principal } = AcmeService.signedByAccount(auth);
    const order = await this.store.orderByCertificate(serial);
    if (!order) throw acmeErr('malformed', `certificate ${serial} does not exist at this ACME server`, 404);
    authorizeAcmeResource(principal, dir.profile, { kind: 'certificate', id: serial, accountId: order.accountId, profile: order.profile });
    const cert = await this.store.certificateForChain(serial);
    if (!cert) throw acmeErr('malformed', `certificate ${serial} does not exist`, 404);
    const chain: string[] = [toPem(cert.der)];
    // Up to, not including, the root, decided by the certificates and bounded (ca-chain-check.ts):
    // a database writer's parentId cannot make the walk loop or put a root in the chain.
    const caOf = async (id: string) => {
      const ca = await this.store.caForChain(id);
      return ca ? { id, ...ca } : null;
    };
    const issuer = await caOf(cert.caId);
    if (issuer) {
      const walked = (await walkCaChain(issuer, caOf)).chain;
      for (const ca of walked) chain.push(toPem(ca.certificateDer));
      // After a root rollover: the cross-certificate to the old root (root-rollover.ts).
      for (const x of await crossChainAbove(this.ctx.stores.cas, walked.at(-1), this.ctx.now(), walked.length)) chain.push(toPem(x));
    }
    return chain.join('');
  }

  async revokeCert(dir: AcmeDirectory, auth: AuthenticatedRequest, sourceIp?: string) {
    const p = (auth.payload ?? {}) as { certificate?: unknown; reason?: unknown };
    if (typeof p.certificate !== 'string') throw acmeErr('malformed', 'revokeCert needs a base64url DER certificate');
    let parts;
    try {
      parts = inspectCertificate(Buffer.from(p.certificate, 'base64url'));
    } catch {
      throw acmeErr('malformed', 'certificate is not a DER X.509 certificate');
    }
    const serial = serialHex(parts.serial);
    const row = await this.store.certificateForRevocation(serial);
    if (!row || !Buffer.from(row.der).equals(parts.der)) throw acmeErr('malformed', 'this server did not issue that certificate', 404);
    const sans = JSON.parse(row.sans) as SanEntry[];
    const cert = { serial, profile: row.profile, sans };
    let principal: Principal;
    if (!auth.account) {
      let certKey;
      // The certificate is one this server issued, but its key is still checked before node sees it.
      try {
        certKey = parts.publicKey;
      } catch (e) {
        if (e instanceof SignetError) throw acmeErr('badPublicKey', `the certificate's key cannot authorise a revocation: ${e.detail}`);
        throw e;
      }
      if (thumbprint(certKey) !== thumbprint(auth.key)) throw acmeErr('unauthorized', "the request is not signed by the certificate's key", 403);
      authorizeAcmeRevocation({ certificateKey: true }, dir.profile, cert);
      principal = { kind: 'certificate-key', serial };
    } else {
      const { account, principal: acct } = AcmeService.signedByAccount(auth);
      const ordered = (await this.store.countOrdersWithCertificate(serial, account.id)) > 0;
      let authorizedForAllNames = false;
      if (!ordered) {
        const names = sans.map((s) => s.value.replace(/^\*\./, ''));
        const valid = (await this.store.validAuthorizations(account.id, names, this.ctx.now())).filter((a) => this.authorizationIntact(a));
        const covered = new Set(valid.map((a) => a.identifierValue));
        authorizedForAllNames = names.every((n) => covered.has(n));
      }
      authorizeAcmeRevocation({ principal: acct, ordered, authorizedForAllNames }, dir.profile, cert);
      principal = acct;
    }
    // The request itself is judged only once its signer may revoke this certificate: a stranger
    // learns nothing about it (not even which reasons would pass) from the answer.
    let reason: RevocationReason = 'unspecified';
    if (p.reason !== undefined) {
      const r = typeof p.reason === 'number' ? reasonFromCode(p.reason) : undefined;
      if (!r || r === 'removeFromCRL' || r === 'certificateHold' || !(REVOCATION_REASONS as readonly string[]).includes(r))
        throw acmeErr('badRevocationReason', `reason ${String(p.reason)} is not allowed; use an RFC 5280 code other than 6 (hold) and 8`);
      reason = r;
    }
    if (row.status === 'revoked') throw acmeErr('alreadyRevoked', `certificate ${serial} is already revoked`);
    try {
      await this.revocation.revoke(serial, { reason }, { principal, sourceIp });
    } catch (e) {
      if (e instanceof SignetError && e.type === 'conflict') throw acmeErr('alreadyRevoked', e.detail);
      throw e;
    }
  }

  // ---- ACME Renewal Information (RFC 9773) -----------------------------------------------------

  /** certID = base64url(AKI keyIdentifier) "." base64url(serial DER content octets). */
  async certByAriId(certId: string) {
    const m = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/.exec(certId);
    if (!m) throw acmeErr('malformed', 'the renewalInfo certificate identifier must be base64url(AKI).base64url(serial)');
    const aki = Buffer.from(m[1]!, 'base64url');
    let serialBytes = Buffer.from(m[2]!, 'base64url');
    if (serialBytes.length > 1 && serialBytes[0] === 0) serialBytes = serialBytes.subarray(1);
    const row = await this.store.certificateForRenewal(serialBytes.toString('hex'));
    if (!row) return null;
    const ext = inspectCertificate(row.der).parsed.tbsCertificate.extensions?.find((e) => e.extnID === EXT.authorityKeyIdentifier);
    const kid = ext ? AsnConvert.parse(ext.extnValue.buffer, AuthorityKeyIdentifier).keyIdentifier : undefined;
    if (!kid || !Buffer.from(kid.buffer).equals(aki)) return null;
    return row;
  }

  async renewalInfo(dir: AcmeDirectory, certId: string): Promise<{ suggestedWindow: { start: string; end: string }; explanationURL?: string }> {
    const row = await this.certByAriId(certId);
    // Each directory answers for the certificates of its own profile.
    if (!row || row.profile !== dir.profile) throw acmeErr('malformed', 'no certificate with that identifier was issued at this ACME directory', 404);
    // The window follows the certificate's status and its CA's succession (ca/renewal-window.ts).
    const w = renewalWindow(row, await this.store.caSuccession(row.caId), this.ctx.now());
    return { suggestedWindow: { start: w.start.toISOString(), end: w.end.toISOString() } };
  }

  // ---- recovery of work a dead process left (recovery.ts) ------------------------------------

  /**
   * At start-up: orders and challenges left `processing` longer than a live process could take.
   * Each row is recovered by a conditional update, so replicas starting together do it once.
   */
  async recoverInterrupted(): Promise<{ orders: number; challenges: number }> {
    const now = this.ctx.now();
    const claimedBefore = (ms: number) => new Date(now.getTime() - ms);
    let orders = 0;
    let challenges = 0;
    for (;;) {
      const batch = await this.store.staleOrders(claimedBefore(FINALIZE_STALE_MS), 100);
      for (const o of batch) if (!this.finalizing.has(o.id) && (await recoverOrder(this.ctx, o))) orders++;
      if (batch.length < 100) break;
    }
    for (;;) {
      const batch = await this.store.staleChallenges(claimedBefore(this.validationStaleMs), 100);
      for (const c of batch) if (!this.validating.has(c.id) && (await recoverChallenge(this.ctx, c))) challenges++;
      if (batch.length < 100) break;
    }
    return { orders, challenges };
  }

  // ---- EAB keys (operator side) ---------------------------------------------------------------

  /** A one-time EAB key for the directory of `profile` (default: the first, /acme/directory). */
  async createEabKey(profile: string | undefined, actor: string): Promise<{ kid: string; hmacKey: string; profile: string }> {
    const p = this.profileOrThrow(profile ?? this.settings.profiles[0]!);
    const kid = `eab-${randomUUID().slice(0, 8)}`;
    const key = randomBytes(32);
    const { sealed, kekId } = this.ctx.keys.sealSecret(eabSealId(kid, p), key);
    await this.ctx.db.transaction(async (tx) => {
      await this.store.createEabKey({ id: kid, sealed, kekId, profile: p }, tx);
      await appendAudit(tx, { actor, action: 'acme.eab.created', target: kid, details: { profile: p } });
    });
    return { kid, hmacKey: key.toString('base64url'), profile: p };
  }
}
