/**
 * The SCEP registration authority (RFC 8894 §2.1.1): a service identity (ca/service-identity.ts)
 * per issuing CA — an RSA key in the key store (purpose 'ra': in the token with
 * SIGNET_KEY_STORE=pkcs11, sealed otherwise) that decrypts request envelopes and signs CertRep
 * replies, with a certificate from the issuing CA it speaks for, recorded as profile `scep-ra`,
 * its rows `scep.ra.key.<caId>` and `scep.ra.cert.<caId>`.
 *
 * Why an RA and not the CA key: strongSwan's `pki --scep` only verifies RSA-signed replies and
 * the envelope needs an RSA key-transport key, whatever the CA's own key is; and a CA key must
 * sign only certificates, CRLs and OCSP, never decrypt.
 */
import type { CaContext } from '../ca/context.js';
import type { Issuance } from '../ca/issuance.js';
import type { Profile } from '../ca/profiles.js';
import { ServiceIdentities, type IdentitySettings, type ServiceIdentity, type ServicePurpose } from '../ca/service-identity.js';

export type RaSettings = IdentitySettings;
export type RaIdentity = ServiceIdentity;

/** The profile name the RA certificates are recorded under (not a profile anyone can ask for). */
export const RA_PROFILE = 'scep-ra';

export const SCEP_RA: ServicePurpose = {
  settings: 'scep.ra',
  profileName: RA_PROFILE,
  keyAlgorithm: 'rsa-2048',
  keyPurpose: 'ra',
  actor: 'system:scep-ra',
  title: 'SCEP RA',
  uses: 'SCEP RA (signs CertRep, decrypts request envelopes)',
  /**
   * Derived from the SCEP profile (its name policy, its validity): RSA only; digitalSignature
   * (CertRep) and keyEncipherment (envelopes); EKU emailProtection, the CMS-signing purpose —
   * OpenSSL-based clients (certmonger) verify the CertRep signer with the S/MIME purpose and
   * refuse an RA certificate whose EKU is only serverAuth or clientAuth.
   */
  profile: (base: Profile, caId: string): Profile => ({
    ...base,
    name: RA_PROFILE,
    description: 'SCEP registration authority (Signet itself)',
    keyTypes: ['rsa'],
    keyUsage: ['digitalSignature', 'keyEncipherment'],
    extKeyUsage: ['emailProtection'],
    requireSan: false,
    sanTypes: ['dns', 'ip'],
    caIds: [caId],
  }),
  refusedLog: (profile, caId, detail) =>
    `SCEP is not available for profile ${profile}: the SCEP RA certificate for CA ${caId} is issued under that profile, which refuses it (${detail}); SCEP needs a profile that accepts an RSA key and the public URL's host (SIGNET_PUBLIC_URL) as a name`,
  refusedAnswer: (profile) =>
    `SCEP is not available for profile ${profile}: its rules refuse the certificate of the SCEP registration authority (an RSA key named by the server's public host). The operator should serve SCEP from a profile that accepts it, or change this profile; the server log says why.`,
};

export class ScepRa extends ServiceIdentities {
  constructor(ctx: CaContext, issuance: Issuance, settings: RaSettings) {
    super(ctx, issuance, settings, SCEP_RA);
  }
}
