/**
 * The key-group controller: the service identity (ca/service-identity.ts) that signs rekey
 * messages, one per issuing CA — an ECDSA P-256 key kept like the OCSP responder's (a sealed
 * software key, purpose 'responder'), with a certificate from the CA that issues the group's
 * member profile, recorded as profile `group-controller`, its rows `group.controller.key.<caId>`
 * and `group.controller.cert.<caId>`. A member verifies a rekey message against the same chain
 * its own certificate verifies under.
 */
import type { CaContext } from '../ca/context.js';
import type { Issuance } from '../ca/issuance.js';
import type { Profile } from '../ca/profiles.js';
import { ServiceIdentities, type IdentitySettings, type ServicePurpose } from '../ca/service-identity.js';
import { buildSignedData, CMS_OID } from '../pki/cms-signed.js';

export const CONTROLLER_PROFILE = 'group-controller';

export const GROUP_CONTROLLER: ServicePurpose = {
  settings: 'group.controller',
  profileName: CONTROLLER_PROFILE,
  keyAlgorithm: 'ecdsa-p256',
  keyPurpose: 'responder',
  actor: 'system:group-controller',
  title: 'key-group controller',
  uses: 'key-group controller (signs rekey messages)',
  /**
   * Derived from the members' profile (its name policy, its validity): ECDSA,
   * digitalSignature, EKU emailProtection — the CMS-signing purpose `openssl cms -verify` checks
   * by default (S/MIME signing), as for the SCEP RA.
   */
  profile: (base: Profile, caId: string): Profile => ({
    ...base,
    name: CONTROLLER_PROFILE,
    description: 'key-group controller (Signet itself)',
    keyTypes: ['ecdsa'],
    keyUsage: ['digitalSignature'],
    keyUsageByFamily: undefined,
    extKeyUsage: ['emailProtection'],
    requireSan: false,
    sanTypes: ['dns', 'ip'],
    caIds: [caId],
  }),
  refusedLog: (profile, caId, detail) =>
    `key-group rekey messages cannot be signed for profile ${profile}: the controller certificate for CA ${caId} is issued under that profile, which refuses it (${detail}); it needs a profile that accepts an ECDSA key and the public URL's host (SIGNET_PUBLIC_URL) as a name`,
  refusedAnswer: (profile) =>
    `rekey messages cannot be signed for key groups of profile ${profile}: its rules refuse the group controller's certificate (an ECDSA key named by the server's public host); the operator should change the profile; the server log says why`,
};

export class GroupController extends ServiceIdentities {
  constructor(ctx: CaContext, issuance: Issuance, settings: IdentitySettings) {
    super(ctx, issuance, settings, GROUP_CONTROLLER);
  }

  /** A DER ContentInfo(SignedData) of `content` (id-data) by the controller of the CA that issues `profile`, with its chain. */
  async sign(profile: string, content: Buffer): Promise<Buffer> {
    const id = await this.forProfile(profile);
    return buildSignedData({
      eContentType: CMS_OID.data,
      content,
      certificates: [id.certificate.der, ...id.caChain],
      signer: id.signer,
      issuerNameDer: id.certificate.issuerNameDer,
      serial: id.certificate.serial,
      attributes: [],
      signingTime: new Date(),
    });
  }
}
