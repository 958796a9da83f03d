/**
 * First enrollment by a certificate from another PKI (RFC 7030 §3.3.2): a device that already
 * holds a certificate from a CA the operator trusts for this — a manufacturer's IDevID CA, a
 * management system's CA — enrolls over EST with that certificate as its TLS client
 * certificate instead of an enrollment credential.
 *
 * The trust is narrow on purpose: the device certificate must be issued directly by one of the
 * configured CAs (SIGNET_EST_CLIENT_CAS; list an intermediate itself to trust what it issues),
 * be valid now, and allow client authentication; the device then becomes an `enrollment`
 * principal of the configured profile and name suffixes, so authorization.ts judges it exactly
 * as it judges a credential. Signet cannot see that PKI's revocations: removing the CA from the
 * file (and restarting) is how its devices lose the right.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { SignetError } from '../errors.js';
import { pemBlocks } from '../pki/pem.js';
import type { Principal } from './authorization.js';

export type DevicePrincipal = Extract<Principal, { kind: 'enrollment' }>;

/** The CAs whose certificates may enroll, and what their devices may enroll for. */
export interface DeviceTrust {
  anchors: X509Certificate[];
  profile: string;
  nameSuffixes: string[] | null;
}

/** The prefix of a device principal's credentialId: it names the device certificate, not a stored credential. */
export const DEVICE_CREDENTIAL_PREFIX = 'tls:';

/**
 * Reads SIGNET_EST_CLIENT_CAS (PEM certificates) at start-up; a file that holds anything but
 * CA certificates is refused, naming what is wrong.
 */
export function loadDeviceTrust(settings: { file?: string; profile?: string; names?: string }, profileExists: (name: string) => boolean): DeviceTrust | null {
  if (!settings.file) {
    if (settings.profile || settings.names)
      throw new SignetError('configuration', 'SIGNET_EST_CLIENT_PROFILE and SIGNET_EST_CLIENT_NAMES apply to SIGNET_EST_CLIENT_CAS, which is not set');
    return null;
  }
  if (!settings.profile)
    throw new SignetError('configuration', 'SIGNET_EST_CLIENT_CAS needs SIGNET_EST_CLIENT_PROFILE: the profile devices with those certificates enroll under');
  if (!profileExists(settings.profile)) throw new SignetError('configuration', `SIGNET_EST_CLIENT_PROFILE: no profile named ${settings.profile}`);
  let text: string;
  try {
    text = readFileSync(settings.file, 'utf8');
  } catch (e) {
    throw new SignetError('configuration', `SIGNET_EST_CLIENT_CAS ${settings.file} could not be read: ${(e as Error).message}`);
  }
  const blocks = pemBlocks(text, 'configuration');
  if (blocks.length === 0) throw new SignetError('configuration', `SIGNET_EST_CLIENT_CAS ${settings.file} holds no PEM certificate`);
  const anchors = blocks.map((b, i) => {
    if (b.label !== 'CERTIFICATE') throw new SignetError('configuration', `SIGNET_EST_CLIENT_CAS block ${i + 1} is a ${b.label}, not a CERTIFICATE`);
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(b.der);
    } catch (e) {
      throw new SignetError('configuration', `SIGNET_EST_CLIENT_CAS certificate ${i + 1} does not parse: ${(e as Error).message}`);
    }
    if (!cert.ca)
      throw new SignetError('configuration', `SIGNET_EST_CLIENT_CAS certificate ${i + 1} (${cert.subject.replace(/\n/g, ', ')}) is not a CA certificate`);
    return cert;
  });
  const names = settings.names
    ?.split(',')
    .map((n) => n.trim().toLowerCase())
    .filter(Boolean);
  return { anchors, profile: settings.profile, nameSuffixes: names?.length ? names : null };
}

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const ANY_EKU = '2.5.29.37.0';

/**
 * The enrollment principal of a device certificate issued by a trusted CA, or a 401 naming
 * why not. The principal's credentialId is `tls:` and the first 16 hex digits of the
 * certificate's SHA-256, so the audit trail names the device certificate that enrolled.
 */
export function authenticateDevice(trust: DeviceTrust, presentedDer: Uint8Array, now: Date): DevicePrincipal {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(presentedDer);
  } catch {
    throw new SignetError('unauthorized', 'the TLS client certificate does not parse');
  }
  const issuer = trust.anchors.find((a) => a.subject === cert.issuer && cert.checkIssued(a) && cert.verify(a.publicKey));
  if (!issuer)
    throw new SignetError(
      'unauthorized',
      'the TLS client certificate is not a Signet certificate being renewed nor issued by a CA trusted for enrollment (SIGNET_EST_CLIENT_CAS); enroll with an enrollment credential instead',
    );
  const t = now.getTime();
  for (const [c, what] of [
    [cert, 'the TLS client certificate'],
    [issuer, 'its CA'],
  ] as const) {
    if (Date.parse(c.validFrom) > t) throw new SignetError('unauthorized', `${what} is not valid before ${new Date(c.validFrom).toISOString()}`);
    if (Date.parse(c.validTo) <= t) throw new SignetError('unauthorized', `${what} expired at ${new Date(c.validTo).toISOString()}`);
  }
  if (cert.ca) throw new SignetError('unauthorized', 'the TLS client certificate is a CA certificate, not a device certificate');
  const eku = cert.keyUsage;
  if (eku?.length && !eku.includes(CLIENT_AUTH) && !eku.includes(ANY_EKU))
    throw new SignetError('unauthorized', 'the TLS client certificate does not allow client authentication (its extendedKeyUsage lacks clientAuth)');
  const fingerprint = createHash('sha256').update(presentedDer).digest('hex').slice(0, 16);
  return {
    kind: 'enrollment',
    credentialId: `${DEVICE_CREDENTIAL_PREFIX}${fingerprint}`,
    protocol: 'est',
    profile: trust.profile,
    nameSuffixes: trust.nameSuffixes,
  };
}
