/**
 * Who may do what: every authorisation decision Signet makes, in one place.
 *
 * A caller is first turned into a Principal — an API token's grant, an ACME account together
 * with the directory it belongs to, the holder of a certificate's key (ACME revokeCert), the
 * operator at the CLI on the CA host, or Signet itself — and every operation then asks this
 * module; no route, handler or service decides on its own. Three questions, asked for every
 * operation, not only for issuance:
 *   1. may this principal perform this operation at all (token scopes: OPERATIONS below);
 *   2. may it act on this certificate (a token's profile and name-suffix limits, an ACME
 *      account's directory), for issue, renew, revoke, unhold and read alike;
 *   3. which certificates may it see (lists are narrowed by the same limits).
 *   4. which key groups may it read (a token's group limit, authorizeGroup).
 * A refusal is 403 ('forbidden') naming the limit; ACME refusals carry their ACME error name.
 *
 * ACME directories (one per profile in SIGNET_ACME_PROFILES) are separate ACME servers
 * (RFC 8555 §7.3.4: External Account Binding is decided per directory): an account exists
 * only at the directory that created it, and acts only on that directory's resources.
 */
import { SignetError } from '../errors.js';
import { checkAllowed, uriHost, type NamePolicy, type SanEntry } from '../pki/names.js';
import type { Scope, TokenGrant } from './tokens.js';

export type Principal =
  | { kind: 'token'; grant: TokenGrant }
  /** An ACME account; `directory` is the profile of the directory that created it. */
  | { kind: 'acme'; accountId: string; directory: string }
  /** Whoever signs an ACME revokeCert with a certificate's own private key (RFC 8555 §7.6): that one certificate. */
  | { kind: 'certificate-key'; serial: string }
  /**
   * A device presenting an enrollment credential (EST HTTP Basic, a SCEP challenge password):
   * certificates of `profile` only, for names under `nameSuffixes` (null: the profile's own rules).
   */
  | { kind: 'enrollment'; credentialId: string; protocol: 'est' | 'scep'; profile: string; nameSuffixes: string[] | null }
  /**
   * The holder of a certificate, proven by a TLS client certificate that is that stored,
   * unexpired, unrevoked certificate (mTLS renewal, EST simplereenroll): renews that one only.
   */
  | { kind: 'certificate-holder'; serial: string }
  /** The operator running the CLI on the CA host: it holds the database and the master key. */
  | { kind: 'operator'; actor: string }
  /** Signet itself (bootstrap, its own TLS certificate, scheduled work). */
  | { kind: 'system'; actor?: string };

/**
 * Every operation a principal can ask for, with the token scope it needs (null: anyone, no
 * token). Each /api/v1 route names its operation; the authorisation matrix test checks that
 * every route has one and a row in its table.
 */
export const OPERATIONS = {
  'certificate.issue': { scope: 'issue' },
  'certificate.renew': { scope: 'renew' },
  'certificate.revoke': { scope: 'revoke' },
  'certificate.unhold': { scope: 'revoke' },
  'certificate.read': { scope: 'read' },
  'certificate.list': { scope: 'read' },
  /** The public status of one certificate (relying parties, dashboards): no secrets in it. */
  'certificate.status': { scope: null },
  'profile.list': { scope: 'read' },
  'ca.read': { scope: 'read' },
  'ca.create': { scope: 'admin' },
  'ca.revoke': { scope: 'admin' },
  'ca.rotate': { scope: 'admin' },
  'ca.renew': { scope: 'admin' },
  'enrollment.create': { scope: 'admin' },
  'enrollment.list': { scope: 'admin' },
  'enrollment.revoke': { scope: 'admin' },
  'token.create': { scope: 'admin' },
  'token.list': { scope: 'admin' },
  'token.revoke': { scope: 'admin' },
  'audit.read': { scope: 'admin' },
  'group.create': { scope: 'admin' },
  'group.member.add': { scope: 'admin' },
  'group.member.remove': { scope: 'admin' },
  'group.read': { scope: 'groups' },
  'group.welcome': { scope: 'groups' },
  'group.rekey': { scope: 'groups' },
  /** The OpenAPI description of /api/v1: public, like the software it describes. */
  'api.describe': { scope: null },
  'webhook.create': { scope: 'admin' },
  'webhook.list': { scope: 'admin' },
  'webhook.read': { scope: 'admin' },
  'webhook.delete': { scope: 'admin' },
  'webhook.retry': { scope: 'admin' },
} as const satisfies Record<string, { scope: Scope | null }>;

export type Operation = keyof typeof OPERATIONS;

/** What an ACME account may ask for; anything else is the operator's or a token's. */
const ACME_OPERATIONS: ReadonlySet<Operation> = new Set(['certificate.issue', 'certificate.revoke', 'certificate.status']);

/** The audit actor for a principal. */
export function actorOf(p: Principal): string {
  switch (p.kind) {
    case 'token':
      return `token:${p.grant.id}`;
    case 'acme':
      return `acme:${p.accountId}`;
    case 'certificate-key':
      return `acme:certkey:${p.serial}`;
    case 'enrollment':
      return `enroll:${p.credentialId}`;
    case 'certificate-holder':
      return `holder:${p.serial}`;
    case 'operator':
      return p.actor;
    case 'system':
      return p.actor ?? 'system';
  }
}

/** The token a principal acts with, if any (recorded on the certificates it issues). */
export const tokenIdOf = (p: Principal): string | null => (p.kind === 'token' ? p.grant.id : null);

/** 1. May the principal perform `op` at all? Throws 403 without the scope. */
export function authorize(p: Principal, op: Operation): void {
  const scope = OPERATIONS[op].scope;
  if (scope === null) return;
  switch (p.kind) {
    case 'operator':
    case 'system':
      return;
    case 'acme':
      if (!ACME_OPERATIONS.has(op)) throw new SignetError('forbidden', `an ACME account cannot ${op.replace('.', ' ')}`, { acme: 'unauthorized', status: 403 });
      return;
    case 'certificate-key':
      if (op !== 'certificate.revoke')
        throw new SignetError('forbidden', `a certificate's key only authorises revoking that certificate, not ${op}`, { acme: 'unauthorized', status: 403 });
      return;
    case 'enrollment':
      if (op !== 'certificate.issue') throw new SignetError('forbidden', `an enrollment credential only authorises enrolling, not ${op}`);
      return;
    case 'certificate-holder':
      if (op !== 'certificate.renew') throw new SignetError('forbidden', `a client certificate only authorises renewing itself, not ${op}`);
      return;
    case 'token': {
      const scopes = p.grant.scopes;
      if (!scopes.includes(scope) && !scopes.includes('admin')) {
        throw new SignetError('forbidden', `this token lacks the '${scope}' scope (it has: ${scopes.join(', ') || 'none'})`);
      }
    }
  }
}

/**
 * 4. May the principal perform a key-group operation on the group named `group`? A token whose
 * grant limits it to named groups (`groups`) reads only those; `admin` and an unlimited
 * `groups` scope read every group. (Managing groups is `admin`'s, checked by authorize.)
 */
export function authorizeGroup(p: Principal, op: Operation, group: string): void {
  authorize(p, op);
  if (p.kind !== 'token' || p.grant.scopes.includes('admin') || !p.grant.groups) return;
  if (!p.grant.groups.includes(group)) throw new SignetError('forbidden', `this token may not read key group ${group} (allowed: ${p.grant.groups.join(', ')})`);
}

/**
 * What a certificate offers to the limits: its profile and its names (and, when it exists, its
 * serial). `commonName` matters only without SANs (a `client` certificate may have none): then
 * the CN is the name, and a suffix limit judges it as a DNS name or an email address.
 */
export interface CertificateScope {
  profile: string;
  sans: SanEntry[];
  commonName?: string | null;
  serial?: string;
}

/** The names a limit judges: the SANs, or the CN of a certificate without any. */
function namesOf(cert: CertificateScope): SanEntry[] {
  if (cert.sans.length || !cert.commonName) return cert.sans;
  return [{ type: cert.commonName.includes('@') ? 'email' : 'dns', value: cert.commonName }];
}

/**
 * Whether a URI names a host (https://h/…) rather than none (urn:, mailto:, file:/path), read
 * as every URL parser reads it (names.ts uriHost); a URI Signet would not issue has none.
 */
function hasHost(uri: string): boolean {
  try {
    return uriHost(uri) !== null;
  } catch {
    return false;
  }
}

/**
 * The first name a token's suffix limit refuses, or undefined (a malformed name is refused
 * too: issuance validates names before it asks, so this only meets stored ones — a URI stored
 * before the URI rules tightened, such as 'spiffe:victim-device', is outside every limit).
 * URIs: one with a host is judged by its host; one without (urn:, mailto:, file:/path) cannot be
 * judged by suffixes and passes only if the certificate's profile explicitly opts in to its
 * scheme (`hostlessUriSchemes`; undefined = none). Which URI schemes a profile allows at all
 * (`uriSchemes`) exempts nothing here: that is the profile's own (400) check. Email addresses
 * are judged by their domain.
 */
function outsideSuffixes(sans: SanEntry[], suffixes: string[], hostlessUriSchemes: readonly string[] | undefined): SanEntry | undefined {
  const policy: NamePolicy = {
    dnsSuffixes: suffixes,
    ipRanges: [],
    emailDomains: suffixes,
    hostlessUriSchemes: hostlessUriSchemes ? [...hostlessUriSchemes] : undefined,
  };
  return sans.find((s) => {
    try {
      checkAllowed([s], policy);
      return false;
    } catch {
      return true;
    }
  });
}

const kindOf = (s: SanEntry) => (s.type === 'ip' ? 'IP address' : s.type === 'uri' ? 'URI' : s.type === 'email' ? 'email address' : 'name');

/**
 * 2. May the principal act on a certificate with this profile and these names (an existing one,
 * or one about to be issued)? Token limits: the profile must be among the token's profiles, and
 * every name must be under one of its name suffixes — a name the suffixes cannot judge (an IP
 * address, a URI without a host) is refused unless the profile explicitly opts in to that URI
 * scheme (`hostlessUriSchemes`: the certificate's profile's list). ACME: the certificate's
 * profile must be the account's directory. A certificate key: only its own certificate.
 */
export function authorizeCertificate(p: Principal, op: Operation, cert: CertificateScope, hostlessUriSchemes?: readonly string[]): void {
  authorize(p, op);
  if (p.kind === 'acme') {
    if (cert.profile !== p.directory) {
      throw new SignetError('forbidden', `ACME account ${p.accountId} belongs to the ${p.directory} directory and cannot act on ${cert.profile} certificates`, {
        acme: 'unauthorized',
        status: 403,
      });
    }
    return;
  }
  if (p.kind === 'certificate-key') {
    if (cert.serial !== p.serial)
      throw new SignetError('forbidden', `the key of certificate ${p.serial} does not authorise acting on another certificate`, {
        acme: 'unauthorized',
        status: 403,
      });
    return;
  }
  if (p.kind === 'certificate-holder') {
    if (cert.serial !== p.serial)
      throw new SignetError('forbidden', `the client certificate ${p.serial} authorises renewing itself only, not ${cert.serial ?? 'a new certificate'}`);
    return;
  }
  if (p.kind === 'enrollment') {
    if (cert.profile !== p.profile)
      throw new SignetError('forbidden', `enrollment credential ${p.credentialId} is for profile ${p.profile}, not ${cert.profile}`);
    const bad = p.nameSuffixes ? outsideSuffixes(namesOf(cert), p.nameSuffixes, hostlessUriSchemes) : undefined;
    if (bad)
      throw new SignetError(
        'forbidden',
        `enrollment credential ${p.credentialId} allows names under ${p.nameSuffixes!.join(', ')} only; ${kindOf(bad)} '${bad.value}' is outside them`,
      );
    return;
  }
  if (p.kind !== 'token') return;
  const { grant } = p;
  if (grant.profiles && !grant.profiles.includes(cert.profile)) {
    throw new SignetError('forbidden', `this token may not use profile ${cert.profile} (allowed: ${grant.profiles.join(', ')})`);
  }
  if (grant.nameSuffixes) {
    const bad = outsideSuffixes(namesOf(cert), grant.nameSuffixes, hostlessUriSchemes);
    if (bad) {
      const verb = op === 'certificate.issue' || op === 'certificate.renew' ? 'request' : 'act on';
      const why =
        bad.type === 'uri' && !hasHost(bad.value)
          ? ` (a URI without a host cannot be judged by name suffixes; its profile ${cert.profile} would have to list the scheme in hostlessUriSchemes)`
          : '';
      throw new SignetError(
        'forbidden',
        `this token may only ${verb} names under ${grant.nameSuffixes.join(', ')}; ${kindOf(bad)} '${bad.value}' is outside them${why}`,
      );
    }
  }
}

/** 3. Which certificates the principal may see; null fields mean "no limit". */
export interface Visibility {
  profiles: string[] | null;
  nameSuffixes: string[] | null;
}

export function visibility(p: Principal): Visibility {
  if (p.kind === 'token') return { profiles: p.grant.profiles, nameSuffixes: p.grant.nameSuffixes };
  if (p.kind === 'acme') return { profiles: [p.directory], nameSuffixes: null };
  if (p.kind === 'enrollment') return { profiles: [p.profile], nameSuffixes: p.nameSuffixes };
  // A holder sees nothing through lists; it acts on its own certificate by serial.
  if (p.kind === 'certificate-holder') return { profiles: [], nameSuffixes: null };
  return { profiles: null, nameSuffixes: null };
}

/**
 * Whether a certificate is visible under `v`: the same rule authorizeCertificate applies to
 * tokens (`hostlessUriSchemes`: the certificate's profile's list).
 */
export function isVisible(v: Visibility, cert: CertificateScope, hostlessUriSchemes?: readonly string[]): boolean {
  if (v.profiles && !v.profiles.includes(cert.profile)) return false;
  if (!v.nameSuffixes) return true;
  return outsideSuffixes(namesOf(cert), v.nameSuffixes, hostlessUriSchemes) === undefined;
}

// ---- ACME --------------------------------------------------------------------------------------

export type AcmePrincipal = Extract<Principal, { kind: 'acme' }>;

/**
 * ACME: may this account make a request at `directory` (the profile whose directory URL the
 * request was sent to)? An account of another directory does not exist here: every
 * account-authenticated request (by kid) passes through this check.
 */
export function authorizeAcmeAccount(p: AcmePrincipal, directory: string): void {
  if (p.directory !== directory) {
    throw new SignetError(
      'bad-request',
      `no account exists at the ${directory} ACME directory for this request: account ${p.accountId} belongs to the ${p.directory} directory, and each directory has its own accounts (register at ${directory}'s newAccount)`,
      { acme: 'accountDoesNotExist' },
    );
  }
}

/**
 * An ACME resource and the account it belongs to. `profile` is the directory recorded on the
 * resource (orders, certificates); an account URL, authorizations and challenges belong to
 * their account's directory.
 */
export interface AcmeResource {
  kind: 'account' | 'order' | 'authorization' | 'challenge' | 'certificate';
  id: string;
  accountId: string;
  profile?: string;
}

/** ACME: may this account, at `directory`, act on the resource? Only on its own, of that directory. */
export function authorizeAcmeResource(p: AcmePrincipal, directory: string, r: AcmeResource): void {
  authorizeAcmeAccount(p, directory);
  if (r.accountId !== p.accountId) {
    throw new SignetError(
      'forbidden',
      r.kind === 'account'
        ? `account ${r.id} is not the account that signed this request; an account is read and changed only with its own key`
        : `${r.kind} ${r.id} belongs to another account`,
      { acme: 'unauthorized', status: 403 },
    );
  }
  if (r.profile !== undefined && r.profile !== directory) {
    throw new SignetError('forbidden', `${r.kind} ${r.id} belongs to the ${r.profile} ACME directory, not ${directory}`, { acme: 'unauthorized', status: 403 });
  }
}

/**
 * ACME External Account Binding: an EAB key registers one account, at the directory of the
 * profile it was made for. A key made before keys carried a profile (null) binds to the
 * directory it is first used at; being single-use, it can never serve a second directory.
 */
export function authorizeAcmeEabKey(key: { id: string; profile: string | null; boundAccountId: string | null }, directory: string): void {
  if (key.boundAccountId) throw new SignetError('unauthorized', `external account key ${key.id} was already used`, { acme: 'unauthorized' });
  if (key.profile !== null && key.profile !== directory) {
    throw new SignetError('unauthorized', `external account key ${key.id} is for the ${key.profile} ACME directory, not ${directory}`, {
      acme: 'unauthorized',
    });
  }
}

/**
 * ACME revokeCert (RFC 8555 §7.6), at `directory`: signed by the certificate's own key, or by
 * an account of this directory that ordered the certificate or holds valid authorizations for
 * every name in it. Either way the certificate must be of this directory's profile.
 */
export function authorizeAcmeRevocation(
  by: { certificateKey: true } | { principal: AcmePrincipal; ordered: boolean; authorizedForAllNames: boolean },
  directory: string,
  cert: CertificateScope & { serial: string },
): void {
  if ('certificateKey' in by) {
    if (cert.profile !== directory) {
      throw new SignetError(
        'forbidden',
        `certificate ${cert.serial} was issued under the ${cert.profile} profile; revoke it at that profile's ACME directory`,
        { acme: 'unauthorized', status: 403 },
      );
    }
    return;
  }
  authorizeAcmeAccount(by.principal, directory);
  authorizeCertificate(by.principal, 'certificate.revoke', cert);
  if (!by.ordered && !by.authorizedForAllNames) {
    throw new SignetError('forbidden', 'this account neither ordered the certificate nor holds authorizations for all its names', {
      acme: 'unauthorized',
      status: 403,
    });
  }
}
