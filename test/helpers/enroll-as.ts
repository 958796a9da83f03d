/**
 * Enrolls certificates as an enrollment principal through the issuance service — the path EST
 * and SCEP take after authenticating — which spends the credential's use in the certificate's
 * commit. One issuance service per context (a context with a shifted clock gets its own).
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { loadConfig } from '../../src/config/config.js';
import type { CaContext } from '../../src/ca/context.js';
import type { EnrollmentPrincipal } from '../../src/ca/enrollment-credentials.js';
import type { IssuedCertificate } from '../../src/ca/issuance.js';
import { buildCsr } from '../../src/pki/csr-builder.js';
import { ownKey } from '../../src/pki/keys.js';
import { createServices } from '../../src/runtime/services.js';

export function enroller(env: Record<string, string>): (ctx: CaContext, who: EnrollmentPrincipal) => Promise<IssuedCertificate> {
  const issuances = new WeakMap<CaContext, ReturnType<typeof createServices>['issuance']>();
  return async (ctx, who) => {
    let issuance = issuances.get(ctx);
    if (!issuance) issuances.set(ctx, (issuance = createServices(ctx, loadConfig(env)).issuance));
    // Under every suffix the tests give their credentials.
    const name = `dev-${randomBytes(6).toString('hex')}.gw.corp.example`;
    const key = ownKey(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
    return issuance.issue({ csr: await buildCsr(key, name, [{ type: 'dns', value: name }]), profile: who.profile }, { principal: who });
  };
}
