/**
 * The holder of a certificate, proven by presenting that certificate (mTLS renewal, EST
 * simplereenroll): step-ca's `step ca renew` model. The transport (the TLS handshake) has already
 * proved possession of the certificate's private key (the client's CertificateVerify); this
 * module decides whether the certificate itself is one that may authenticate its holder. It
 * must be, all of:
 *   - an end-entity certificate (never a CA's);
 *   - the certificate Signet stored under its serial, byte for byte: another CA's certificate
 *     with the same serial and subject, or a copy re-signed by anyone, is not it;
 *   - signed by the CA its row names, verified under that CA's key as issuance verifies what it
 *     renews (the CA's record checked against its sealed key by IssuerRegistry), so a row
 *     written into the database by someone without a CA key authenticates nobody;
 *   - within its validity (notBefore <= now < notAfter, as signed), neither revoked nor on hold,
 *     from a CA that is not revoked;
 *   - of a profile that allows renewal by certificate (`renewWithClientCertificate`).
 * Every refusal is 401 naming the reason. One whose presenter holds a certificate Signet
 * stored (the bytes are those of a stored row, and the handshake proved its key) is recorded
 * here as its own `certificate.renew.refused` event — actor `holder:<serial>` once the
 * signature verified, `anonymous` for a row that failed it — and that event is the thrown
 * error's `cause`. Any other refusal (no certificate, not one Signet stored, a CA certificate)
 * is anonymous: anyone can make such certificates, so it costs no write here, and the caller
 * counts it as it counts every anonymous refusal (the HTTP layer: request.refused.summary).
 */
import { createHash } from 'node:crypto';
import { SignetError } from '../errors.js';
import { inspectCertificate, serialHex, type CertificateParts } from '../pki/certificate.js';
import { verifySignature } from '../pki/keys.js';
import { appendAudit } from './audit.js';
import type { Principal } from './authorization.js';
import type { CaContext } from './context.js';
import type { Issuer, IssuerRegistry } from './issuers.js';
import type { Profile } from './profiles.js';

type Holder = Extract<Principal, { kind: 'certificate-holder' }>;

/**
 * What vouches for a presented certificate: the issuance service's issuer index (the one the
 * status bus invalidates when a CA changes, in this process or another) and its profiles.
 */
export interface HolderAuthority {
  issuers: Pick<IssuerRegistry, 'get'>;
  profiles: Map<string, Profile>;
}

/**
 * The holder of `presentedDer` (the TLS client certificate, DER), or a 401 'unauthorized'
 * naming why not; see the module comment for the rules.
 */
export async function authenticateHolder(
  ctx: CaContext,
  authority: HolderAuthority,
  presentedDer: Uint8Array | null,
  opts: { sourceIp?: string } = {},
): Promise<Holder> {
  if (!presentedDer || presentedDer.length === 0)
    throw new SignetError(
      'unauthorized',
      'no client certificate was presented: renewal by certificate authenticates with the certificate being renewed; send the request over TLS with that certificate and its private key (curl --cert cert.pem --key key.pem)',
    );
  const der = Buffer.from(presentedDer);
  const fingerprint = createHash('sha256').update(der).digest('hex');
  /** A refusal of anyone: no row (see the module comment). */
  const anonymous = (detail: string): never => {
    throw new SignetError('unauthorized', detail);
  };
  /** A refusal of the holder of a stored certificate: its own event, the error's cause. */
  const refuse = async (reason: string, detail: string, serial: string, verified: boolean): Promise<never> => {
    const event = await ctx.db.transaction((tx) =>
      appendAudit(tx, {
        actor: verified ? `holder:${serial}` : 'anonymous',
        action: 'certificate.renew.refused',
        target: serial,
        outcome: 'refused',
        sourceIp: opts.sourceIp,
        details: { reason, detail, fingerprint },
      }),
    );
    throw new SignetError('unauthorized', detail, { cause: event });
  };

  let parts: CertificateParts;
  try {
    parts = inspectCertificate(der);
  } catch {
    return anonymous('the client certificate is not a well-formed X.509 certificate');
  }
  const serial = serialHex(parts.serial).slice(0, 128);
  if (parts.isCa) return anonymous(`the client certificate (serial ${serial}) is a CA certificate; only an end-entity certificate Signet issued renews itself`);
  const row = await ctx.stores.certificates.get(serial);
  if (!row) return anonymous(`the client certificate (serial ${serial}) is not a certificate Signet issued`);
  if (!der.equals(Buffer.from(row.der)))
    return anonymous(
      `the client certificate (serial ${serial}) is not the certificate Signet issued with that serial: its bytes differ (another CA's certificate, or a copy signed again)`,
    );
  // The bytes are a stored certificate's, and the handshake proved its key: from here on every
  // refusal is recorded.
  // What the row says is trusted only once the CA it names verifies the stored bytes.
  let issuer: Issuer;
  try {
    issuer = await authority.issuers.get(row.caId);
  } catch (e) {
    if (e instanceof SignetError && e.status < 500)
      return refuse('issuer-unavailable', `the client certificate ${serial} cannot be vouched for by its issuing CA ${row.caId}: ${e.detail}`, serial, false);
    throw e;
  }
  let signed = false;
  try {
    signed =
      parts.issuerNameDer.equals(issuer.parts.subjectNameDer) &&
      verifySignature(parts.parsed.signatureAlgorithm.algorithm, issuer.parts.publicKey, parts.tbs, Buffer.from(parts.parsed.signatureValue));
  } catch {
    signed = false;
  }
  if (!signed) {
    ctx.log.error({ serial, caId: row.caId }, 'stored certificate presented for renewal does not verify under its CA; refused');
    return refuse(
      'bad-signature',
      `the client certificate ${serial} does not verify under the key of CA ${row.caId} (its record was changed in the database; run \`signet audit verify\`)`,
      serial,
      false,
    );
  }
  // From here on it is Signet's certificate: the refusals are its holder's.
  const now = ctx.now();
  if (parts.notAfter.getTime() <= now.getTime())
    return refuse(
      'expired',
      `the client certificate ${serial} expired at ${parts.notAfter.toISOString()}; an expired certificate cannot renew itself, issue a new one`,
      serial,
      true,
    );
  if (parts.notBefore.getTime() > now.getTime())
    return refuse('not-yet-valid', `the client certificate ${serial} is not valid until ${parts.notBefore.toISOString()}`, serial, true);
  if (row.status === 'revoked')
    return refuse('revoked', `the client certificate ${serial} is revoked (${row.revocationReason ?? 'unspecified'}) and cannot renew itself`, serial, true);
  if (row.status === 'hold') return refuse('hold', `the client certificate ${serial} is on hold and cannot renew itself until it is released`, serial, true);
  if (row.status !== 'good') return refuse('status', `the client certificate ${serial} has status ${row.status} and cannot renew itself`, serial, true);
  if (issuer.status === 'revoked')
    return refuse('issuer-revoked', `the client certificate ${serial} was issued by CA ${row.caId}, which is revoked; issue a new certificate`, serial, true);
  const profile = authority.profiles.get(row.profile);
  if (!profile) return refuse('profile-unknown', `the client certificate ${serial} is of profile ${row.profile}, which no longer exists`, serial, true);
  if (!profile.renewWithClientCertificate)
    return refuse(
      'profile-disallows',
      `profile ${row.profile} does not allow renewal with the current certificate (renewWithClientCertificate is false); renew ${serial} with an API token`,
      serial,
      true,
    );
  return { kind: 'certificate-holder', serial };
}
