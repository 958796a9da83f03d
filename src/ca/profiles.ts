/**
 * Certificate profiles: configuration parsed once into typed values. A profile decides what a
 * certificate may contain; the CSR only proposes a key and names.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { SignetError } from '../errors.js';
import { validateNamePolicy, type NamePolicy } from '../pki/names.js';

const KEY_USAGES = ['digitalSignature', 'nonRepudiation', 'keyEncipherment', 'dataEncipherment', 'keyAgreement'] as const;
const EXT_KEY_USAGES = ['serverAuth', 'clientAuth', 'codeSigning', 'emailProtection'] as const;
const SAN_TYPES = ['dns', 'ip', 'email', 'uri'] as const;
const KEY_FAMILIES = ['rsa', 'ecdsa', 'ed25519', 'ml-dsa', 'slh-dsa', 'ml-kem'] as const;
const CA_ID = z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, 'must be a CA id (lower-case letters, digits and hyphens)');

/** A profile's fields; profileSchema adds the checks across fields. */
export const profileFields = z
  .object({
    description: z.string().max(200).default(''),
    /**
     * Key families accepted in CSRs. Post-quantum families are opt-in: `ml-dsa` (ML-DSA-44/65/87),
     * `slh-dsa` (SLH-DSA-SHA2-128s), `ml-kem` (ML-KEM-768, key groups only: it cannot sign a CSR).
     */
    keyTypes: z.array(z.enum(KEY_FAMILIES)).min(1).default(['rsa', 'ecdsa', 'ed25519']),
    minRsaBits: z.number().int().min(2048).max(8192).default(2048),
    requireSan: z.boolean().default(false),
    sanTypes: z.array(z.enum(SAN_TYPES)).min(1).default(['dns', 'ip']),
    dnsSuffixes: z.array(z.string()).optional(),
    ipRanges: z.array(z.string()).optional(),
    emailDomains: z.array(z.string()).optional(),
    /** URI schemes allowed in URI SANs (absent = any); allowing one exempts nothing from a name limit. */
    uriSchemes: z.array(z.string()).optional(),
    /**
     * The explicit opt-in for URIs without a host (urn:, mailto:, file:/path): only URIs of these
     * schemes pass the profile's DNS/IP allow-lists and a token's name suffixes. Default none.
     */
    hostlessUriSchemes: z.array(z.string()).optional(),
    defaultValidityDays: z.number().int().min(1).max(3650),
    maxValidityDays: z.number().int().min(1).max(3650),
    /** Omitted = digitalSignature, plus keyEncipherment for RSA keys (TLS 1.2 RSA key exchange). */
    keyUsage: z.array(z.enum(KEY_USAGES)).min(1).optional(),
    /** Per key type, instead of keyUsage (group-member: keyAgreement for ECDSA, keyEncipherment for RSA). */
    keyUsageByFamily: z
      .object({
        rsa: z.array(z.enum(KEY_USAGES)).min(1).optional(),
        ecdsa: z.array(z.enum(KEY_USAGES)).min(1).optional(),
        ed25519: z.array(z.enum(KEY_USAGES)).min(1).optional(),
        'ml-dsa': z.array(z.enum(KEY_USAGES)).min(1).optional(),
        'slh-dsa': z.array(z.enum(KEY_USAGES)).min(1).optional(),
        'ml-kem': z.array(z.enum(KEY_USAGES)).min(1).optional(),
      })
      .strict()
      .optional(),
    extKeyUsage: z.array(z.enum(EXT_KEY_USAGES)).min(1),
    /** At most this many subjectAltNames in one certificate. */
    maxSans: z.number().int().min(1).max(1000).default(100),
    /**
     * The CAs that may issue under this profile, the first being the default; a request's caId
     * may only pick among them. Omitted = any issuing CA (the default issuing CA unless the
     * request names one). `caId` is the one-CA shorthand.
     */
    caIds: z
      .array(CA_ID)
      .min(1)
      .max(50)
      .refine((a) => new Set(a).size === a.length, { message: 'must not name a CA twice' })
      .optional(),
    caId: CA_ID.optional(),
    /**
     * Whether the holder of a certificate of this profile may renew it by presenting it as a TLS
     * client certificate (POST /api/v1/certificates/renew on the HTTPS listener; ca/holder-authentication.ts).
     * Default false; the built-in server, client and peer profiles set it. A profiles file that
     * redefines one of those states it again (a redefinition replaces the built-in entirely).
     */
    renewWithClientCertificate: z.boolean().default(false),
    /**
     * Expiry alerts (ca/expiry-alerts.ts): a certificate of this profile is at risk once it has
     * fewer than this many days left (fractions allowed: 0.25 is six hours) and no successor.
     * Omitted: the last third of each certificate's life, where a client renewing on schedule
     * (ARI, certbot, step: at two thirds) has renewed already.
     */
    alertDays: z.number().positive('must be positive').optional(),
  })
  .strict();

export const profileSchema = profileFields
  .refine((p) => p.defaultValidityDays <= p.maxValidityDays, { message: 'defaultValidityDays must not exceed maxValidityDays' })
  .refine((p) => p.alertDays === undefined || p.alertDays < p.maxValidityDays, {
    message: 'alertDays must be less than maxValidityDays (every certificate would be at risk from its first day)',
    path: ['alertDays'],
  })
  .refine((p) => !(p.caId && p.caIds), { message: 'give either caId or caIds, not both' });

/** A parsed profile: `caId` is folded into `caIds`. */
export type Profile = Omit<z.output<typeof profileSchema>, 'caId'> & { name: string };
export type ExtKeyUsageName = (typeof EXT_KEY_USAGES)[number];

export const BUILTIN_PROFILES: Record<string, z.input<typeof profileSchema>> = {
  server: {
    description: 'TLS server: serverAuth, at least one DNS or IP SAN',
    requireSan: true,
    sanTypes: ['dns', 'ip'],
    defaultValidityDays: 90,
    maxValidityDays: 397,
    extKeyUsage: ['serverAuth'],
    renewWithClientCertificate: true,
  },
  client: {
    description: 'TLS client: clientAuth',
    requireSan: false,
    sanTypes: ['dns', 'ip', 'email', 'uri'],
    defaultValidityDays: 90,
    maxValidityDays: 397,
    extKeyUsage: ['clientAuth'],
    renewWithClientCertificate: true,
  },
  peer: {
    description: 'Mutual TLS peer: serverAuth and clientAuth, at least one SAN',
    requireSan: true,
    sanTypes: ['dns', 'ip', 'uri'],
    defaultValidityDays: 90,
    maxValidityDays: 397,
    extKeyUsage: ['serverAuth', 'clientAuth'],
    renewWithClientCertificate: true,
  },
  'group-member': {
    description:
      'Key-group member (src/groups): clientAuth; keyAgreement for ECDSA keys, keyEncipherment for RSA and ML-KEM-768 (what receiving group keys needs; ML-KEM keys by server-side generation only)',
    keyTypes: ['rsa', 'ecdsa', 'ml-kem'],
    requireSan: false,
    sanTypes: ['dns', 'ip', 'email', 'uri'],
    defaultValidityDays: 90,
    maxValidityDays: 397,
    keyUsageByFamily: { rsa: ['digitalSignature', 'keyEncipherment'], ecdsa: ['digitalSignature', 'keyAgreement'], 'ml-kem': ['keyEncipherment'] },
    extKeyUsage: ['clientAuth'],
    renewWithClientCertificate: true,
  },
};

/** The profile's name allow-lists, as the name policy (src/pki/names.ts) reads them. */
export const namePolicyOf = (p: Pick<Profile, 'dnsSuffixes' | 'ipRanges' | 'emailDomains' | 'uriSchemes' | 'hostlessUriSchemes'>): NamePolicy => ({
  dnsSuffixes: p.dnsSuffixes,
  ipRanges: p.ipRanges,
  emailDomains: p.emailDomains,
  uriSchemes: p.uriSchemes,
  hostlessUriSchemes: p.hostlessUriSchemes,
});

/** Built-ins, overridden or extended by a JSON file `{ "<name>": { …profile… } }`. */
export function loadProfiles(file?: string): Map<string, Profile> {
  let custom: Record<string, unknown> = {};
  if (file) {
    try {
      custom = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    } catch (e) {
      throw new SignetError('configuration', `SIGNET_PROFILES_FILE ${file} could not be read as JSON: ${(e as Error).message}`);
    }
  }
  const out = new Map<string, Profile>();
  for (const [name, raw] of Object.entries({ ...BUILTIN_PROFILES, ...custom })) {
    if (!/^[a-z][a-z0-9-]{0,31}$/.test(name))
      throw new SignetError('configuration', `profile name ${JSON.stringify(name)} must be lower-case letters, digits and hyphens`);
    const r = profileSchema.safeParse(raw);
    if (!r.success) {
      const i = r.error.issues[0]!;
      throw new SignetError('configuration', `profile ${name}: ${i.path.join('.') || 'value'}: ${i.message}`);
    }
    try {
      validateNamePolicy(namePolicyOf(r.data));
    } catch (e) {
      throw new SignetError('configuration', `profile ${name}: ${(e as SignetError).detail}`);
    }
    const { caId, ...profile } = r.data;
    out.set(name, { ...profile, caIds: profile.caIds ?? (caId ? [caId] : undefined), name });
  }
  return out;
}

const loaded = new WeakMap<object, Map<string, Profile>>();
/** The profiles a running Signet was configured with, loaded once per context (its config is fixed for its life). */
export function configuredProfiles(ctx: { config: { SIGNET_PROFILES_FILE?: string } }): Map<string, Profile> {
  let m = loaded.get(ctx);
  if (!m) {
    m = loadProfiles(ctx.config.SIGNET_PROFILES_FILE);
    loaded.set(ctx, m);
  }
  return m;
}
