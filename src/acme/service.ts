/**
 * The ACME server (RFC 8555) over Signet's authority: accounts, orders, authorizations,
 * challenges validated for real, finalize through the same issuance path (profile policy and
 * certificate rules) as the REST API, certificate download, revocation, key rollover, External
 * Account Binding, and ACME Renewal Information (RFC 9773). State lives in the database so any
 * replica can answer any request; nonces too.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { SignetError } from '../errors.js';
import { appendAudit } from '../ca/audit.js';
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
import { importJwk, publicJwk, thumbprint, verifyEab, verifyJws, type ParsedJws } from './jws.js';
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
}

type Identifier = { type: 'dns' | 'ip'; value: string };
type AccountRow = { id: string; thumbprint: string; jwk: string; status: string; contact: string; profile: string; createdAt: Date };

const acmeErr = (acme: string, detail: string, status = 400, extra?: Record<string, unknown>) =>
  new SignetError(status === 403 ? 'forbidden' : status === 404 ? 'not-found' : status === 401 ? 'unauthorized' : status === 429 ? 'rate-limited' : status >= 500 ? 'internal' : 'bad-request', detail, { acme, status, extra });

const HOUR = 3_600_000;

export interface AuthenticatedRequest { account?: AccountRow; key: TrustedKey; payload: unknown; jws: ParsedJws }

export class AcmeService {
  private readonly validating = new Set<string>();

  constructor(private readonly ctx: CaContext, private readonly issuance: Issuance, private readonly revocation: Revocation, readonly settings: AcmeSettings) {}

  profileOrThrow(name: string): string {
    if (!this.settings.profiles.includes(name)) throw acmeErr('malformed', `there is no ACME directory for profile ${name}; available: ${this.settings.profiles.join(', ')}`, 404);
    return name;
  }

  // ---- nonces -------------------------------------------------------------------------------

  async newNonce(): Promise<string> {
    const value = randomBytes(16).toString('base64url');
    await this.ctx.db.prisma.acmeNonce.create({ data: { value, expiresAt: new Date(this.ctx.now().getTime() + HOUR) } });
    if (Math.random() < 0.01) await this.ctx.db.prisma.acmeNonce.deleteMany({ where: { expiresAt: { lt: this.ctx.now() } } });
    return value;
  }

  private async consumeNonce(nonce: unknown): Promise<void> {
    if (typeof nonce !== 'string' || !nonce) throw acmeErr('badNonce', 'the JWS protected header has no nonce');
    const r = await this.ctx.db.prisma.acmeNonce.deleteMany({ where: { value: nonce, expiresAt: { gt: this.ctx.now() } } });
    if (r.count !== 1) throw acmeErr('badNonce', 'the nonce is unknown, expired or already used; get a fresh one from newNonce');
  }

  // ---- request authentication -------------------------------------------------------------

  /** Checks nonce, url, key (jwk for newAccount/revocation, kid otherwise) and signature. */
  async authenticate(jws: ParsedJws, url: string, mode: 'jwk' | 'kid' | 'either', accountUrlPrefix: string): Promise<AuthenticatedRequest> {
    const h = jws.header;
    if (h.url !== url) throw acmeErr('unauthorized', `the JWS url header (${String(h.url)}) does not match the request URL ${url}`, 401);
    if (h.jwk && h.kid) throw acmeErr('malformed', 'the JWS must carry either jwk or kid, not both');
    if (mode === 'jwk' && !h.jwk) throw acmeErr('malformed', 'this request must be signed with a jwk, not a kid');
    if (mode === 'kid' && !h.kid) throw acmeErr('malformed', 'this request must be signed with the account URL as kid');
    let account: AccountRow | undefined;
    let key: TrustedKey;
    if (h.jwk) {
      key = importJwk(h.jwk);
      verifyJws(jws, key);
    } else {
      if (typeof h.kid !== 'string' || !h.kid.startsWith(accountUrlPrefix)) throw acmeErr('accountDoesNotExist', 'kid is not an account URL of this server', 400);
      const row = await this.ctx.db.prisma.acmeAccount.findUnique({ where: { id: h.kid.slice(accountUrlPrefix.length) } });
      if (!row) throw acmeErr('accountDoesNotExist', 'no account exists for this kid', 400);
      key = importJwk(JSON.parse(row.jwk));
      verifyJws(jws, key);
      if (row.status !== 'valid') throw acmeErr('unauthorized', `account ${row.id} is ${row.status}`, 401);
      account = row;
    }
    // The nonce is spent only once the signature is known good, so a forged request cannot burn it.
    await this.consumeNonce(h.nonce);
    let payload: unknown = undefined;
    if (jws.payloadText !== '') {
      try { payload = JSON.parse(jws.payloadText); } catch { throw acmeErr('malformed', 'the JWS payload is not JSON'); }
    }
    return { account, key, payload, jws };
  }

  // ---- accounts -----------------------------------------------------------------------------

  async newAccount(profile: string, req: AuthenticatedRequest, url: string, sourceIp?: string): Promise<{ account: AccountRow; created: boolean }> {
    const p = (req.payload ?? {}) as { contact?: unknown; termsOfServiceAgreed?: unknown; onlyReturnExisting?: unknown; externalAccountBinding?: unknown };
    if (typeof p !== 'object') throw acmeErr('malformed', 'newAccount payload must be an object');
    const tp = thumbprint(req.key);
    const existing = await this.ctx.db.prisma.acmeAccount.findUnique({ where: { thumbprint: tp } });
    if (existing) {
      if (existing.status !== 'valid') throw acmeErr('unauthorized', `account ${existing.id} is ${existing.status}`, 401);
      return { account: existing, created: false };
    }
    if (p.onlyReturnExisting === true) throw acmeErr('accountDoesNotExist', 'no account exists for this key', 400);
    const contact = this.validateContact(p.contact);
    let eabKeyId: string | null = null;
    if (p.externalAccountBinding !== undefined || this.settings.eabRequired.has(profile)) {
      if (p.externalAccountBinding === undefined) throw acmeErr('externalAccountRequired', `profile ${profile} requires External Account Binding; ask the CA operator for a key (signet acme eab create)`);
      const keys = new Map<string, Buffer>();
      const rows = await this.ctx.db.prisma.acmeEabKey.findMany({ where: { boundAccountId: null } });
      for (const r of rows) {
        if (r.profile && r.profile !== profile) continue;
        const k = this.ctx.keys.unsealSecret(r.id, r.sealed);
        if (k) keys.set(r.id, k);
      }
      eabKeyId = verifyEab(p.externalAccountBinding, publicJwk(req.key), url, (kid) => keys.get(kid) ?? null);
    }
    const id = randomBytes(12).toString('base64url');
    const account = await this.ctx.db.transaction(async (tx) => {
      if (eabKeyId) {
        const bound = await tx.acmeEabKey.updateMany({ where: { id: eabKeyId, boundAccountId: null }, data: { boundAccountId: id } });
        if (bound.count !== 1) throw acmeErr('unauthorized', `external account key ${eabKeyId} was already used`, 401);
      }
      const row = await tx.acmeAccount.create({ data: { id, thumbprint: tp, jwk: JSON.stringify(publicJwk(req.key)), status: 'valid', contact: JSON.stringify(contact), profile, eabKeyId } });
      await appendAudit(tx, { actor: `acme:${id}`, action: 'acme.account.created', target: id, sourceIp, details: { profile, contact, eabKeyId } });
      return row;
    });
    return { account, created: true };
  }

  private validateContact(c: unknown): string[] {
    if (c === undefined) return [];
    if (!Array.isArray(c) || c.length > 10) throw acmeErr('invalidContact', 'contact must be an array of at most 10 mailto: URLs');
    for (const x of c) {
      if (typeof x !== 'string' || !/^mailto:[^@\s,]+@[^@\s,]+$/.test(x)) throw acmeErr(typeof x === 'string' && !x.startsWith('mailto:') ? 'unsupportedContact' : 'invalidContact', `contact ${JSON.stringify(x)} is not a single mailto: address`);
    }
    return c as string[];
  }

  async updateAccount(req: AuthenticatedRequest, id: string, sourceIp?: string): Promise<AccountRow> {
    if (!req.account || req.account.id !== id) throw acmeErr('unauthorized', 'an account can only be changed with its own key', 401);
    const p = (req.payload ?? {}) as { contact?: unknown; status?: unknown };
    if (req.payload === undefined) return req.account; // POST-as-GET
    const data: { contact?: string; status?: string } = {};
    if (p.contact !== undefined) data.contact = JSON.stringify(this.validateContact(p.contact));
    if (p.status !== undefined) {
      if (p.status !== 'deactivated') throw acmeErr('malformed', 'the only status a client may set is "deactivated"');
      data.status = 'deactivated';
    }
    return this.ctx.db.transaction(async (tx) => {
      const row = await tx.acmeAccount.update({ where: { id }, data });
      if (Object.keys(data).length) await appendAudit(tx, { actor: `acme:${id}`, action: data.status ? 'acme.account.deactivated' : 'acme.account.updated', target: id, sourceIp, details: data.contact ? { contact: JSON.parse(data.contact) } : null });
      if (data.status) await tx.acmeAuthorization.updateMany({ where: { accountId: id, status: { in: ['pending', 'valid'] } }, data: { status: 'deactivated' } });
      return row;
    });
  }

  /** RFC 8555 §7.3.5: the inner JWS, signed by the new key, names the account and its old key. */
  async keyChange(req: AuthenticatedRequest, url: string, accountUrlPrefix: string, parseInner: (v: unknown) => ParsedJws, sourceIp?: string): Promise<AccountRow> {
    const account = req.account!;
    const inner = parseInner(req.payload);
    if (!inner.header.jwk) throw acmeErr('malformed', 'the inner key-change JWS must carry the new key as jwk');
    if (inner.header.url !== url) throw acmeErr('malformed', 'the inner JWS url must equal the keyChange URL');
    if ('nonce' in inner.header) throw acmeErr('malformed', 'the inner JWS must not carry a nonce');
    const newKey = importJwk(inner.header.jwk);
    verifyJws(inner, newKey);
    let p: { account?: unknown; oldKey?: unknown };
    try { p = JSON.parse(inner.payloadText) as typeof p; } catch { throw acmeErr('malformed', 'the inner JWS payload is not JSON'); }
    if (p.account !== `${accountUrlPrefix}${account.id}`) throw acmeErr('malformed', 'the inner payload names another account');
    if (thumbprint(importJwk(p.oldKey)) !== account.thumbprint) throw acmeErr('malformed', 'the inner payload\'s oldKey is not the account\'s current key');
    const tp = thumbprint(newKey);
    const clash = await this.ctx.db.prisma.acmeAccount.findUnique({ where: { thumbprint: tp } });
    if (clash) throw acmeErr('conflict', 'the new key is already used by another account', 409, { location: `${accountUrlPrefix}${clash.id}` });
    return this.ctx.db.transaction(async (tx) => {
      const row = await tx.acmeAccount.update({ where: { id: account.id }, data: { thumbprint: tp, jwk: JSON.stringify(publicJwk(newKey)) } });
      await appendAudit(tx, { actor: `acme:${account.id}`, action: 'acme.account.key_changed', target: account.id, sourceIp, details: { oldThumbprint: account.thumbprint, newThumbprint: tp } });
      return row;
    });
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
        if (i.type === 'dns') { validateDnsName(i.value); id = { type: 'dns', value: i.value }; }
        else if (i.type === 'ip') { validateIp(i.value); id = { type: 'ip', value: normalizeIp(i.value) }; }
        else throw acmeErr('unsupportedIdentifier', `identifier type ${JSON.stringify(i.type)} is not supported; use dns or ip`);
      } catch (e) {
        if (e instanceof SignetError && e.acme) throw e;
        throw acmeErr('rejectedIdentifier', (e as Error).message);
      }
      const key = `${id.type}:${id.value}`;
      if (!seen.has(key)) { seen.add(key); out.push(id); }
    }
    const p = this.issuance.profile(profile);
    const sans: SanEntry[] = out.map((x) => ({ type: x.type, value: x.value }));
    for (const s of sans) if (!p.sanTypes.includes(s.type)) throw acmeErr('rejectedIdentifier', `profile ${profile} does not allow ${s.type} identifiers`);
    try { checkAllowed(sans, { dnsSuffixes: p.dnsSuffixes, ipRanges: p.ipRanges, emailDomains: p.emailDomains }); } catch (e) {
      throw acmeErr('rejectedIdentifier', (e as Error).message);
    }
    return out;
  }

  private async enforceLimits(accountId: string): Promise<void> {
    const now = this.ctx.now();
    const hourAgo = new Date(now.getTime() - HOUR);
    const orders = await this.ctx.db.prisma.acmeOrder.count({ where: { accountId, createdAt: { gt: hourAgo } } });
    if (orders >= this.settings.ordersPerHour) throw acmeErr('rateLimited', `account ${accountId} created ${orders} orders in the last hour (limit ${this.settings.ordersPerHour})`, 429, { retryAfter: 3600 });
    const pending = await this.ctx.db.prisma.acmeAuthorization.count({ where: { accountId, status: 'pending', expires: { gt: now } } });
    if (pending >= this.settings.pendingAuthorizations) throw acmeErr('rateLimited', `account ${accountId} has ${pending} pending authorizations (limit ${this.settings.pendingAuthorizations}); complete or deactivate some`, 429, { retryAfter: 600 });
    const failed = await this.ctx.db.prisma.acmeChallenge.count({ where: { status: 'invalid', createdAt: { gt: hourAgo }, authorization: { accountId } } });
    if (failed >= this.settings.failedValidationsPerHour) throw acmeErr('rateLimited', `account ${accountId} failed ${failed} validations in the last hour (limit ${this.settings.failedValidationsPerHour})`, 429, { retryAfter: 3600 });
  }

  async newOrder(profile: string, req: AuthenticatedRequest, sourceIp?: string) {
    const account = req.account!;
    const p = (req.payload ?? {}) as { identifiers?: unknown; notBefore?: unknown; notAfter?: unknown; replaces?: unknown };
    if (p.notBefore !== undefined || p.notAfter !== undefined) throw acmeErr('malformed', 'notBefore/notAfter are not supported: the profile decides validity');
    const identifiers = this.checkIdentifiers(profile, p.identifiers);
    let replaces: string | null = null;
    if (p.replaces !== undefined) {
      if (typeof p.replaces !== 'string') throw acmeErr('malformed', 'replaces must be an ARI certificate identifier');
      const cert = await this.certByAriId(p.replaces);
      if (!cert) throw acmeErr('malformed', 'replaces names a certificate this server did not issue');
      replaces = cert.serial;
    }
    await this.enforceLimits(account.id);
    const now = this.ctx.now();
    const expires = new Date(now.getTime() + this.settings.orderLifetimeHours * HOUR);
    return this.ctx.db.transaction(async (tx) => {
      const authzIds: string[] = [];
      for (const id of identifiers) {
        const wildcard = id.type === 'dns' && id.value.startsWith('*.');
        const value = wildcard ? id.value.slice(2) : id.value;
        const reuse = await tx.acmeAuthorization.findFirst({ where: { accountId: account.id, identifierType: id.type, identifierValue: value, wildcard, status: { in: ['valid', 'pending'] }, expires: { gt: new Date(now.getTime() + HOUR) } }, orderBy: { createdAt: 'desc' } });
        if (reuse) { authzIds.push(reuse.id); continue; }
        const authzId = randomBytes(12).toString('base64url');
        await tx.acmeAuthorization.create({ data: { id: authzId, accountId: account.id, identifierType: id.type, identifierValue: value, wildcard, status: 'pending', expires } });
        const types = wildcard ? ['dns-01'] : id.type === 'ip' ? ['http-01', 'tls-alpn-01'] : ['http-01', 'dns-01', 'tls-alpn-01'];
        for (const type of types) {
          await tx.acmeChallenge.create({ data: { id: randomBytes(12).toString('base64url'), authorizationId: authzId, type, token: randomBytes(32).toString('base64url'), status: 'pending' } });
        }
        authzIds.push(authzId);
      }
      const order = await tx.acmeOrder.create({ data: { id: randomBytes(12).toString('base64url'), accountId: account.id, profile, status: 'pending', expires, identifiers: JSON.stringify(identifiers), authorizations: JSON.stringify(authzIds), replaces } });
      await appendAudit(tx, { actor: `acme:${account.id}`, action: 'acme.order.created', target: order.id, sourceIp, details: { profile, identifiers: identifiers.map((i) => i.value), replaces } });
      return order;
    });
  }

  async listOrders(accountId: string) {
    return this.ctx.db.prisma.acmeOrder.findMany({ where: { accountId, status: { in: ['pending', 'ready', 'processing', 'valid'] } }, orderBy: { createdAt: 'desc' }, take: 1000, select: { id: true } });
  }

  /** The order with its status brought up to date from its authorizations. */
  async order(id: string, account?: AccountRow) {
    let order = await this.ctx.db.prisma.acmeOrder.findUnique({ where: { id } });
    if (!order || (account && order.accountId !== account.id)) throw acmeErr('malformed', `order ${id} does not exist`, 404);
    const now = this.ctx.now();
    if (order.status === 'pending' || order.status === 'ready') {
      const authz = await this.ctx.db.prisma.acmeAuthorization.findMany({ where: { id: { in: JSON.parse(order.authorizations) as string[] } } });
      let status = order.status;
      if (order.expires <= now || authz.some((a) => a.status === 'invalid' || a.status === 'deactivated' || a.status === 'revoked' || a.expires <= now)) status = 'invalid';
      else if (authz.every((a) => a.status === 'valid')) status = 'ready';
      if (status !== order.status) order = await this.ctx.db.prisma.acmeOrder.update({ where: { id }, data: { status, ...(status === 'invalid' ? { error: JSON.stringify({ type: 'urn:ietf:params:acme:error:unauthorized', detail: 'an authorization failed or expired' }) } : {}) } });
    }
    return order;
  }

  async authorization(id: string, account?: AccountRow) {
    const a = await this.ctx.db.prisma.acmeAuthorization.findUnique({ where: { id }, include: { challenges: true } });
    if (!a || (account && a.accountId !== account.id)) throw acmeErr('malformed', `authorization ${id} does not exist`, 404);
    if (a.status === 'pending' && a.expires <= this.ctx.now()) {
      await this.ctx.db.prisma.acmeAuthorization.update({ where: { id }, data: { status: 'expired' } });
      a.status = 'expired';
    }
    return a;
  }

  async deactivateAuthorization(id: string, account: AccountRow) {
    const a = await this.authorization(id, account);
    if (a.status !== 'pending' && a.status !== 'valid') throw acmeErr('malformed', `authorization ${id} is ${a.status} and cannot be deactivated`);
    await this.ctx.db.prisma.acmeAuthorization.update({ where: { id }, data: { status: 'deactivated' } });
    return this.authorization(id, account);
  }

  async challenge(id: string, account: AccountRow) {
    const ch = await this.ctx.db.prisma.acmeChallenge.findUnique({ where: { id }, include: { authorization: true } });
    if (!ch || ch.authorization.accountId !== account.id) throw acmeErr('malformed', `challenge ${id} does not exist`, 404);
    return ch;
  }

  /** The client says it is ready: validate now (in the background) and answer with the challenge. */
  async respondChallenge(id: string, account: AccountRow, sourceIp?: string) {
    const ch = await this.challenge(id, account);
    if (ch.status !== 'pending') return ch;
    if (ch.authorization.status !== 'pending') throw acmeErr('malformed', `authorization ${ch.authorizationId} is ${ch.authorization.status}`);
    const updated = await this.ctx.db.prisma.acmeChallenge.updateMany({ where: { id, status: 'pending' }, data: { status: 'processing' } });
    if (updated.count === 1) void this.runValidation(id, account, sourceIp);
    return (await this.ctx.db.prisma.acmeChallenge.findUnique({ where: { id }, include: { authorization: true } }))!;
  }

  private async runValidation(id: string, account: AccountRow, sourceIp?: string): Promise<void> {
    if (this.validating.has(id)) return;
    this.validating.add(id);
    try {
      const ch = (await this.ctx.db.prisma.acmeChallenge.findUnique({ where: { id }, include: { authorization: true } }))!;
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
          await tx.acmeChallenge.update({ where: { id }, data: { status: 'invalid', error: JSON.stringify(problem) } });
          await tx.acmeAuthorization.update({ where: { id: ch.authorizationId }, data: { status: 'invalid' } });
        } else {
          await tx.acmeChallenge.update({ where: { id }, data: { status: 'valid', validated: now } });
          await tx.acmeAuthorization.update({ where: { id: ch.authorizationId }, data: { status: 'valid', expires: new Date(now.getTime() + 30 * 24 * HOUR) } });
        }
        await appendAudit(tx, {
          actor: `acme:${account.id}`, action: error ? 'acme.challenge.failed' : 'acme.challenge.validated', target: id, outcome: error ? 'failure' : 'success', sourceIp,
          details: { type: ch.type, identifier: domain, ...(error ? { error: error.detail } : {}) },
        });
      });
    } catch (e) {
      this.ctx.log.error({ err: e, challenge: id }, 'ACME validation crashed');
      await this.ctx.db.prisma.acmeChallenge.update({ where: { id }, data: { status: 'invalid', error: JSON.stringify({ type: 'urn:ietf:params:acme:error:serverInternal', detail: 'validation failed inside the server' }) } }).catch(() => undefined);
    } finally {
      this.validating.delete(id);
    }
  }

  async finalize(id: string, req: AuthenticatedRequest, sourceIp?: string) {
    const account = req.account!;
    const order = await this.order(id, account);
    if (order.status !== 'ready') throw acmeErr('orderNotReady', `order ${id} is ${order.status}; finalize needs every authorization valid (status ready)`, 403);
    const p = (req.payload ?? {}) as { csr?: unknown };
    if (typeof p.csr !== 'string' || !/^[A-Za-z0-9_-]+$/.test(p.csr)) throw acmeErr('badCSR', 'finalize needs a base64url DER csr');
    const der = Buffer.from(p.csr, 'base64url');
    let csr;
    try { csr = parseCsr(der); } catch (e) { throw acmeErr('badCSR', (e as Error).message); }
    // RFC 8555 §11.1: an account key must not also be a certificate key.
    let csrThumbprint: string | undefined;
    try { csrThumbprint = thumbprint(csr.publicKey); } catch { /* a key type ACME accounts cannot have */ }
    if (csrThumbprint === account.thumbprint) throw acmeErr('badCSR', 'the CSR\'s public key is the account key; use a separate key for the certificate');
    const want = new Set((JSON.parse(order.identifiers) as Identifier[]).map((i) => `${i.type}:${i.value}`));
    const got = new Set(csr.sans.map((s) => `${s.type}:${s.type === 'ip' ? normalizeIp(s.value) : s.value}`));
    if (csr.subject.commonName && !csr.sans.some((s) => s.value === csr.subject.commonName)) got.add(`dns:${csr.subject.commonName}`);
    const missing = [...want].filter((x) => !got.has(x));
    const extra = [...got].filter((x) => !want.has(x));
    if (missing.length || extra.length) throw acmeErr('badCSR', `the CSR's names must equal the order's identifiers${missing.length ? `; missing ${missing.join(', ')}` : ''}${extra.length ? `; not in the order: ${extra.join(', ')}` : ''}`);
    const claimed = await this.ctx.db.prisma.acmeOrder.updateMany({ where: { id, status: 'ready' }, data: { status: 'processing' } });
    if (claimed.count !== 1) throw acmeErr('orderNotReady', `order ${id} is already being finalized`, 403);
    try {
      const cert = await this.issuance.issue({ csr: der, profile: order.profile }, { actor: `acme:${account.id}`, sourceIp });
      return await this.ctx.db.prisma.acmeOrder.update({ where: { id }, data: { status: 'valid', certificateSerial: cert.serial, notBefore: cert.notBefore, notAfter: cert.notAfter } });
    } catch (e) {
      // A refused CSR leaves the order ready for another attempt; anything else fails it.
      const refused = e instanceof SignetError && e.status < 500;
      await this.ctx.db.prisma.acmeOrder.update({ where: { id }, data: refused ? { status: 'ready' } : { status: 'invalid', error: JSON.stringify({ type: 'urn:ietf:params:acme:error:serverInternal', detail: 'issuance failed' }) } });
      if (e instanceof SignetError && !e.acme) throw acmeErr(e.type === 'rejected-name' || e.type === 'policy' ? 'rejectedIdentifier' : e.type === 'bad-key' ? 'badCSR' : e.status >= 500 ? 'serverInternal' : 'badCSR', e.detail, e.status >= 500 ? 500 : 400);
      throw e;
    }
  }

  async certificateChain(serial: string, account: AccountRow): Promise<string> {
    const order = await this.ctx.db.prisma.acmeOrder.findFirst({ where: { certificateSerial: serial, accountId: account.id } });
    if (!order) throw acmeErr('malformed', `certificate ${serial} does not exist for this account`, 404);
    const cert = await this.ctx.db.prisma.certificate.findUnique({ where: { serial }, select: { der: true, caId: true } });
    if (!cert) throw acmeErr('malformed', `certificate ${serial} does not exist`, 404);
    const chain: string[] = [toPem(cert.der)];
    let caId: string | null = cert.caId;
    while (caId) {
      const ca: { certificateDer: Uint8Array; parentId: string | null } | null = await this.ctx.db.prisma.certificateAuthority.findUnique({ where: { id: caId }, select: { certificateDer: true, parentId: true } });
      if (!ca || !ca.parentId) break; // the root is not part of the chain
      chain.push(toPem(ca.certificateDer));
      caId = ca.parentId;
    }
    return chain.join('');
  }

  async revokeCert(req: AuthenticatedRequest, sourceIp?: string) {
    const p = (req.payload ?? {}) as { certificate?: unknown; reason?: unknown };
    if (typeof p.certificate !== 'string') throw acmeErr('malformed', 'revokeCert needs a base64url DER certificate');
    let parts;
    try { parts = inspectCertificate(Buffer.from(p.certificate, 'base64url')); } catch { throw acmeErr('malformed', 'certificate is not a DER X.509 certificate'); }
    const serial = serialHex(parts.serial);
    const row = await this.ctx.db.prisma.certificate.findUnique({ where: { serial }, select: { der: true, status: true, sans: true } });
    if (!row || !Buffer.from(row.der).equals(parts.der)) throw acmeErr('malformed', 'this server did not issue that certificate', 404);
    let reason: RevocationReason = 'unspecified';
    if (p.reason !== undefined) {
      const r = typeof p.reason === 'number' ? reasonFromCode(p.reason) : undefined;
      if (!r || r === 'removeFromCRL' || r === 'certificateHold' || !(REVOCATION_REASONS as readonly string[]).includes(r)) throw acmeErr('badRevocationReason', `reason ${String(p.reason)} is not allowed; use an RFC 5280 code other than 6 (hold) and 8`);
      reason = r;
    }
    // Authorised by the certificate's own key, by the account that ordered it, or by an account
    // that holds valid authorizations for every name in it.
    let actor: string;
    if (!req.account) {
      let certKey;
      // The certificate is one this server issued, but its key is still checked before node sees it.
      try { certKey = parts.publicKey; } catch (e) {
        if (e instanceof SignetError) throw acmeErr('badPublicKey', `the certificate's key cannot authorise a revocation: ${e.detail}`);
        throw e;
      }
      if (thumbprint(certKey) !== thumbprint(req.key)) throw acmeErr('unauthorized', 'the request is not signed by the certificate\'s key', 403);
      actor = `acme:certkey:${serial}`;
    } else {
      const owns = await this.ctx.db.prisma.acmeOrder.count({ where: { certificateSerial: serial, accountId: req.account.id } });
      if (!owns) {
        const names = (JSON.parse(row.sans) as SanEntry[]).map((s) => s.value);
        const valid = await this.ctx.db.prisma.acmeAuthorization.findMany({ where: { accountId: req.account.id, status: 'valid', identifierValue: { in: names.map((n) => n.replace(/^\*\./, '')) }, expires: { gt: this.ctx.now() } } });
        const covered = new Set(valid.map((a) => a.identifierValue));
        if (!names.every((n) => covered.has(n.replace(/^\*\./, '')))) throw acmeErr('unauthorized', 'this account neither ordered the certificate nor holds authorizations for all its names', 403);
      }
      actor = `acme:${req.account.id}`;
    }
    if (row.status === 'revoked') throw acmeErr('alreadyRevoked', `certificate ${serial} is already revoked`);
    try {
      await this.revocation.revoke(serial, { reason }, { actor, sourceIp });
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
    const row = await this.ctx.db.prisma.certificate.findUnique({ where: { serial: serialBytes.toString('hex') }, select: { serial: true, der: true, notBefore: true, notAfter: true, status: true, caId: true } });
    if (!row) return null;
    const ext = inspectCertificate(row.der).parsed.tbsCertificate.extensions?.find((e) => e.extnID === EXT.authorityKeyIdentifier);
    const kid = ext ? AsnConvert.parse(ext.extnValue.buffer, AuthorityKeyIdentifier).keyIdentifier : undefined;
    if (!kid || !Buffer.from(kid.buffer).equals(aki)) return null;
    return row;
  }

  async renewalInfo(certId: string): Promise<{ suggestedWindow: { start: string; end: string }; explanationURL?: string }> {
    const row = await this.certByAriId(certId);
    if (!row) throw acmeErr('malformed', 'no certificate with that identifier was issued here', 404);
    const now = this.ctx.now().getTime();
    const ca = await this.ctx.db.prisma.certificateAuthority.findUnique({ where: { id: row.caId }, select: { status: true } });
    // Renew now: the certificate is revoked, or its issuer is revoked or being rotated out.
    if (row.status !== 'good' || (ca && ca.status !== 'active')) {
      return { suggestedWindow: { start: new Date(now - HOUR).toISOString(), end: new Date(now).toISOString() } };
    }
    const nb = row.notBefore.getTime();
    const life = row.notAfter.getTime() - nb;
    return { suggestedWindow: { start: new Date(nb + (life * 2) / 3).toISOString(), end: new Date(nb + (life * 5) / 6).toISOString() } };
  }

  // ---- EAB keys (operator side) ---------------------------------------------------------------

  async createEabKey(profile: string | null, actor: string): Promise<{ kid: string; hmacKey: string }> {
    if (profile) this.profileOrThrow(profile);
    const kid = `eab-${randomUUID().slice(0, 8)}`;
    const key = randomBytes(32);
    const { sealed, kekId } = this.ctx.keys.sealSecret(kid, key);
    await this.ctx.db.transaction(async (tx) => {
      await tx.acmeEabKey.create({ data: { id: kid, sealed: new Uint8Array(sealed), kekId, profile } });
      await appendAudit(tx, { actor, action: 'acme.eab.created', target: kid, details: { profile } });
    });
    return { kid, hmacKey: key.toString('base64url') };
  }
}
