/**
 * Configuration: environment variables, optionally mirrored by a JSON file (SIGNET_CONFIG_FILE)
 * whose keys are the same variable names. The environment wins over the file. Validated once
 * with zod at start-up; a bad value stops start-up with one line naming the variable.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { SignetError } from '../errors.js';
import { KEY_ALGORITHMS } from '../pki/keys.js';
import { isIP, isIPv4 } from 'node:net';
import proxyaddr from 'proxy-addr';

const bool = z.enum(['on', 'off', 'true', 'false', '1', '0']).transform((v) => v === 'on' || v === 'true' || v === '1');
const port = z.coerce.number().int().min(1).max(65535);
const positiveInt = z.coerce.number().int().positive();

/**
 * Which peers may report the client's address in X-Forwarded-For: none (false), the nearest N
 * hops, or the proxies at these addresses (the form Express's `trust proxy` and proxy-addr take).
 */
export type TrustProxy = false | number | string[];
const PROXY_NAMES = ['loopback', 'linklocal', 'uniquelocal'];
const trustProxy = z
  .string()
  .trim()
  .transform((v, ctx): TrustProxy => {
    const lower = v.toLowerCase();
    if (['off', 'false', '0'].includes(lower)) return false;
    // One hop: the peer is the proxy, and the address it appended is the client. Trusting every
    // hop (what `on` once meant) let any client name itself in the leftmost entry.
    if (['on', 'true'].includes(lower)) return 1;
    if (/^\d+$/.test(v)) {
      const hops = Number(v);
      if (hops > 10) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'a hop count must be 1 to 10' });
        return z.NEVER;
      }
      return hops;
    }
    const entries = v
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean)
      .map((e) => (PROXY_NAMES.includes(e.toLowerCase()) ? e.toLowerCase() : e));
    try {
      if (entries.length === 0) throw new TypeError('the list is empty');
      for (const e of entries) {
        if (PROXY_NAMES.includes(e)) continue;
        // node's strict parser first: proxy-addr would read 010.0.0.1 as octal (8.0.0.1).
        const [address = '', range, ...rest] = e.split('/');
        const family = isIP(address);
        if (
          !family ||
          rest.length ||
          (range !== undefined && !(/^\d{1,3}$/.test(range) && Number(range) <= (family === 4 ? 32 : 128)) && !(family === 4 && isIPv4(range)))
        ) {
          throw new TypeError(`${e} is not an IP address or CIDR range`);
        }
      }
      proxyaddr.compile(entries);
    } catch (e) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        message: `must be off, on (one proxy hop), a hop count up to 10, or comma-separated proxy addresses/CIDRs (or ${PROXY_NAMES.join(', ')}): ${(e as Error).message}`,
      });
      return z.NEVER;
    }
    return entries;
  });

/** One entry per setting: the schema and the README's description live together. */
const BYTE_LIMIT = /^(\d+)(b|kb|mb)$/i;
/** `64kb` → 65536 (k = 1024, as body-parser counts). */
const byteLimit = (v: string): number => {
  const [, n, unit] = BYTE_LIMIT.exec(v)!;
  return Number(n) * ({ b: 1, kb: 1024, mb: 1024 * 1024 } as const)[unit!.toLowerCase() as 'b' | 'kb' | 'mb'];
};

export const SETTINGS = {
  SIGNET_DATA_DIR: { schema: z.string().min(1).default('./data'), doc: 'Directory for the SQLite database, the master key file and the admin token.' },
  SIGNET_HOST: { schema: z.string().min(1).default('127.0.0.1'), doc: 'Address the HTTP listener binds to.' },
  SIGNET_PORT: { schema: port.default(8080), doc: 'HTTP port for the API and the public PKI endpoints.' },
  SIGNET_PUBLIC_URL: {
    schema: z
      .string()
      .url()
      .regex(/^https?:\/\//, 'must be an http:// or https:// URL')
      .optional(),
    doc: 'Base of the URLs written into certificates (AIA, CRL DP). Default http://127.0.0.1:<port>.',
  },
  SIGNET_MASTER_KEY: {
    schema: z.string().optional(),
    doc: 'Key-encryption key, base64 of 32 bytes. If unset, <data>/master.key (0600) is created on first start and used.',
  },
  SIGNET_KEY_STORE: {
    schema: z.enum(['sealed', 'pkcs11']).default('sealed'),
    doc: 'Where CA keys live: sealed (software keys sealed under the master key, in the database) or pkcs11 (generated in a PKCS#11 token, never extractable; see "CA keys in a hardware security module").',
  },
  SIGNET_PKCS11_MODULE: {
    schema: z.string().min(1).optional(),
    doc: 'With SIGNET_KEY_STORE=pkcs11: path of the PKCS#11 provider library, e.g. /usr/lib/softhsm/libsofthsm2.so.',
  },
  SIGNET_PKCS11_TOKEN: { schema: z.string().min(1).max(32).optional(), doc: 'With SIGNET_KEY_STORE=pkcs11: label of the token that holds the CA keys.' },
  SIGNET_PKCS11_PIN: { schema: z.string().min(1).optional(), doc: "With SIGNET_KEY_STORE=pkcs11: the token's user PIN (or SIGNET_PKCS11_PIN_FILE)." },
  SIGNET_PKCS11_PIN_FILE: {
    schema: z.string().min(1).optional(),
    doc: 'With SIGNET_KEY_STORE=pkcs11: a file (mode 0600) whose first line is the user PIN; instead of SIGNET_PKCS11_PIN.',
  },
  DATABASE_URL: { schema: z.string().optional(), doc: 'postgresql://… for PostgreSQL, or file:<path> for SQLite. Default: SQLite at <data>/signet.db.' },
  SIGNET_SQLITE_SYNCHRONOUS: {
    schema: z.enum(['full', 'normal']).default('full'),
    doc: 'SQLite durability: full syncs every commit to disk (survives power loss); normal survives a process crash (kill -9) but may lose the last commits on power loss, and is much faster.',
  },
  SIGNET_LOG_LEVEL: { schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'), doc: 'pino log level.' },
  SIGNET_ROOT_SUBJECT: { schema: z.string().default('CN=Signet Root CA,O=Signet'), doc: 'Subject DN of the root created on first start.' },
  SIGNET_ROOT_KEY: { schema: z.enum(KEY_ALGORITHMS).default('ecdsa-p384'), doc: `Root key algorithm: ${KEY_ALGORITHMS.join(', ')}.` },
  SIGNET_ROOT_VALIDITY_DAYS: { schema: positiveInt.max(36500).default(3650), doc: 'Root validity in days.' },
  SIGNET_INTERMEDIATE_SUBJECT: {
    schema: z.string().default('CN=Signet Issuing CA 1,O=Signet'),
    doc: 'Subject DN of the issuing intermediate created on first start.',
  },
  SIGNET_INTERMEDIATE_KEY: { schema: z.enum(KEY_ALGORITHMS).default('ecdsa-p256'), doc: 'Intermediate key algorithm.' },
  SIGNET_INTERMEDIATE_VALIDITY_DAYS: { schema: positiveInt.max(36500).default(1825), doc: 'Intermediate validity in days (never beyond the root).' },
  SIGNET_WORKERS: {
    schema: z.coerce.number().int().min(1).max(64).default(1),
    doc: 'HTTP worker processes (node:cluster) sharing the port; 2 uses both cores of a 2-core host. Worker 1 publishes CRLs; status changes are relayed to every worker at once.',
  },
  SIGNET_BODY_LIMIT: {
    schema: z.string().regex(BYTE_LIMIT, 'must look like 64kb or 1mb').default('64kb').transform(byteLimit),
    doc: 'Largest accepted request body.',
  },
  SIGNET_RATE_LIMIT_PER_ADDRESS: {
    schema: z.coerce.number().int().min(0).default(6000),
    doc: 'API requests per minute from one client address (0 = no limit). The public PKI and OCSP endpoints are not limited.',
  },
  SIGNET_RATE_LIMIT_PER_TOKEN: { schema: z.coerce.number().int().min(0).default(3000), doc: 'API requests per minute with one bearer token (0 = no limit).' },
  SIGNET_TRUST_PROXY: {
    schema: trustProxy.default('off'),
    doc: 'Which reverse proxies may name the client in X-Forwarded-For (used for rate limits and audit): off; on (= 1: the peer is the proxy, the address it appended is the client); a hop count; or proxy addresses/CIDRs, comma-separated. The client is the nearest address not trusted.',
  },
  SIGNET_PROFILES_FILE: {
    schema: z.string().optional(),
    doc: 'JSON file of certificate profiles (`{"name": {…}}`) that extend or override the built-ins server, client and peer.',
  },
  SIGNET_CRL_VALIDITY_HOURS: {
    schema: positiveInt.max(24 * 90).default(24),
    doc: 'CRL validity (nextUpdate - thisUpdate). CRLs are re-signed at half-life, and within SIGNET_CRL_COALESCE_MS of a revocation.',
  },
  SIGNET_CRL_COALESCE_MS: { schema: z.coerce.number().int().min(0).max(600_000).default(2000), doc: 'Delay that gathers a burst of revocations into one CRL.' },
  SIGNET_CRL_DELTAS: {
    schema: bool.default('off'),
    doc: 'Publish delta CRLs (RFC 5280 §5.2.4) at /pki/<caId>-delta.crl (one per shard): a revocation re-signs only the delta, within SIGNET_CRL_COALESCE_MS, and the full CRL waits for its half-life. New leaf certificates and full CRLs carry freshestCRL.',
  },
  SIGNET_CRL_SHARDS: {
    schema: positiveInt.max(1024).default(1),
    doc: 'CRL shards per CA: a new leaf certificate is assigned one at issuance and names its CRL (/pki/<caId>.s<k>.crl); 1 = one CRL per CA at /pki/<caId>.crl. Changing it keeps every certificate in the shard it was issued into.',
  },
  SIGNET_OCSP_VALIDITY_MINUTES: {
    schema: positiveInt.max(7 * 24 * 60).default(240),
    doc: 'OCSP response validity (nextUpdate - thisUpdate); cached responses are re-signed at half-life.',
  },
  SIGNET_OCSP_RESPONDER_DAYS: { schema: positiveInt.max(90).default(7), doc: 'Lifetime of the delegated OCSP responder certificate; rotated at half-life.' },
  SIGNET_OCSP_ON_DEMAND_PER_SECOND: {
    schema: z.coerce.number().int().min(1).max(1_000_000).default(100),
    doc: 'OCSP signatures a second, per process, for serials Signet never issued and for requests with several CertIDs (answers for issued certificates are not limited); beyond it the answer is tryLater.',
  },
  SIGNET_OCSP_POLL_MS: {
    schema: z.coerce.number().int().min(100).max(60_000).default(1000),
    doc: 'How often a replica polls the database for status changes made elsewhere (bounds the cross-replica OCSP delay).',
  },
  SIGNET_TLS: {
    schema: bool.default('off'),
    doc: 'Serve the API and ACME over HTTPS on SIGNET_TLS_PORT with a certificate Signet issues to itself (and renews); plain HTTP then serves only the public PKI endpoints, OCSP and health. The HTTPS listener asks for (never requires) a client certificate, for renewal with the current certificate.',
  },
  SIGNET_TLS_PORT: { schema: port.default(8443), doc: 'HTTPS port when SIGNET_TLS is on.' },
  SIGNET_TLS_NAMES: { schema: z.string().min(1).default('localhost,127.0.0.1'), doc: 'Comma-separated DNS names and IPs for the HTTPS certificate.' },
  SIGNET_EST_CLIENT_CAS: {
    schema: z.string().min(1).optional(),
    doc: 'PEM file of CA certificates whose client certificates may enroll over EST without an enrollment credential (a manufacturer or management CA; only certificates it issues directly). Needs SIGNET_EST_CLIENT_PROFILE.',
  },
  SIGNET_EST_CLIENT_PROFILE: {
    schema: z.string().min(1).optional(),
    doc: 'The profile devices enrolling with a certificate from SIGNET_EST_CLIENT_CAS enroll under.',
  },
  SIGNET_EST_CLIENT_NAMES: {
    schema: z.string().min(1).optional(),
    doc: 'Comma-separated name suffixes those devices may request (default: whatever SIGNET_EST_CLIENT_PROFILE allows).',
  },
  SIGNET_ACME_PROFILES: {
    schema: z.string().min(1).default('server'),
    doc: 'Comma-separated profiles with an ACME directory; the first is /acme/directory, the others /acme/<profile>/directory.',
  },
  SIGNET_SCEP_PROFILE: {
    schema: z
      .string()
      .regex(/^[a-z][a-z0-9-]{0,31}$/, 'must be a profile name')
      .default('client'),
    doc: 'Profile served by SCEP at /scep (any profile is also at /scep/<profile>); its issuing CA gets an RSA SCEP RA certificate at first use. micromdm scepclient sends CN-only requests, so the default is client.',
  },
  SIGNET_ACME_EAB_REQUIRED: {
    schema: z.string().default(''),
    doc: 'Profiles whose ACME accounts need External Account Binding (comma-separated, or "all"). Keys: `signet acme eab create`.',
  },
  SIGNET_ACME_HTTP_PORT: { schema: port.default(80), doc: 'Port the http-01 validator connects to.' },
  SIGNET_ACME_TLS_PORT: { schema: port.default(443), doc: 'Port the tls-alpn-01 validator connects to.' },
  SIGNET_ACME_DNS_RESOLVER: {
    schema: z
      .string()
      .regex(/^[0-9a-fA-F:.[\]]+(:\d+)?$/, 'must be host:port of a DNS resolver, e.g. 10.0.0.53:53')
      .optional(),
    doc: 'DNS resolver (ip[:port]) for dns-01 TXT lookups and for resolving names to validate; default: the system resolver.',
  },
  SIGNET_ACME_VALIDATION_TIMEOUT_MS: { schema: z.coerce.number().int().min(100).max(120_000).default(10_000), doc: 'Timeout of one validation attempt.' },
  SIGNET_ACME_VALIDATION_ATTEMPTS: { schema: z.coerce.number().int().min(1).max(10).default(3), doc: 'Validation attempts before a challenge is invalid.' },
  SIGNET_ACME_ORDERS_PER_HOUR: { schema: z.coerce.number().int().min(1).default(300), doc: 'New orders per ACME account per hour (rateLimited beyond).' },
  SIGNET_ACME_PENDING_AUTHZ: { schema: z.coerce.number().int().min(1).default(300), doc: 'Pending authorizations per ACME account.' },
  SIGNET_ACME_FAILED_VALIDATIONS_PER_HOUR: { schema: z.coerce.number().int().min(1).default(60), doc: 'Failed validations per ACME account per hour.' },
  SIGNET_ACME_ACCOUNTS_PER_HOUR: {
    schema: z.coerce.number().int().min(0).default(20),
    doc: 'New ACME accounts per client address (IPv6: per /56) per hour, over all directories (0 = no limit); accounts registered with External Account Binding are not counted. rateLimited with Retry-After beyond.',
  },
  SIGNET_ACME_ORDERS_PER_ADDRESS_PER_HOUR: {
    schema: z.coerce.number().int().min(0).default(300),
    doc: 'New ACME orders per client address (IPv6: per /56) per hour, over all its accounts (0 = no limit).',
  },
  SIGNET_ACME_RETENTION_DAYS: {
    schema: z.coerce.number().int().min(1).max(3650).default(7),
    doc: 'ACME housekeeping deletes orders without a certificate, and authorizations with their challenges, this long after they expired (never before the order lifetime has passed again); orders that led to a certificate are kept.',
  },
  SIGNET_ACME_ORDER_LIFETIME_HOURS: {
    schema: z.coerce
      .number()
      .int()
      .min(1)
      .max(24 * 30)
      .default(168),
    doc: 'How long orders and pending authorizations live.',
  },
  SIGNET_AUDIT_INTERVAL_SECONDS: {
    schema: z.coerce.number().int().min(1).max(3600).default(60),
    doc: 'How often each process appends a signed audit checkpoint to <data>/audit-checkpoints (when the chain head moved; also at start, about a second after each change this process records, and at shutdown), and records the anonymous requests it refused as one summary event.',
  },
  SIGNET_WEBHOOK_RETRY_BASE_MS: {
    schema: z.coerce.number().int().min(10).max(3_600_000).default(5000),
    doc: 'Wait before the second attempt at a webhook event; each further failure doubles it, up to SIGNET_WEBHOOK_RETRY_CAP_MS.',
  },
  SIGNET_WEBHOOK_RETRY_CAP_MS: {
    schema: z.coerce.number().int().min(10).max(86_400_000).default(3_600_000),
    doc: 'Longest wait between attempts at a webhook event.',
  },
  SIGNET_WEBHOOK_MAX_ATTEMPTS: {
    schema: z.coerce.number().int().min(1).max(100).default(16),
    doc: 'Attempts at a webhook event before it is dead-lettered (the defaults keep trying for about 7 hours); dead letters are listed by `signet webhook list` and can be retried.',
  },
  SIGNET_WEBHOOK_TIMEOUT_MS: {
    schema: z.coerce.number().int().min(100).max(120_000).default(10_000),
    doc: 'Time a webhook receiver has to answer one delivery (connect to response).',
  },
  SIGNET_WEBHOOK_POLL_MS: {
    schema: z.coerce.number().int().min(50).max(60_000).default(1000),
    doc: 'How often the delivering process looks for new webhook events (bounds the delay of a delivery after its change commits).',
  },
  SIGNET_WEBHOOK_ALLOW_PRIVATE: {
    schema: bool.default('on'),
    doc: "Whether webhook receivers may be on loopback or private addresses (on: a private CA's receivers usually are); off refuses them at registration and at every delivery.",
  },
  SIGNET_CONFIG_FILE: { schema: z.string().optional(), doc: 'Optional JSON file whose keys are these variable names; the environment wins.' },
} as const;

type Settings = typeof SETTINGS;
export type RawConfig = { [K in keyof Settings]: z.output<Settings[K]['schema']> };

export interface Config extends RawConfig {
  dataDir: string;
  publicUrl: string;
}

const schema = z.object(Object.fromEntries(Object.entries(SETTINGS).map(([k, v]) => [k, v.schema])) as { [K in keyof Settings]: Settings[K]['schema'] });

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  let fileValues: Record<string, unknown> = {};
  if (env.SIGNET_CONFIG_FILE) {
    try {
      fileValues = JSON.parse(readFileSync(env.SIGNET_CONFIG_FILE, 'utf8')) as Record<string, unknown>;
    } catch (e) {
      throw new SignetError('configuration', `SIGNET_CONFIG_FILE ${env.SIGNET_CONFIG_FILE} could not be read as JSON: ${(e as Error).message}`);
    }
    const unknownKeys = Object.keys(fileValues).filter((k) => !(k in SETTINGS));
    if (unknownKeys.length)
      throw new SignetError('configuration', `SIGNET_CONFIG_FILE has unknown setting ${unknownKeys[0]}; known settings are listed in the README`);
  }
  const input: Record<string, unknown> = {};
  for (const key of Object.keys(SETTINGS)) {
    const v = env[key] ?? fileValues[key];
    if (v !== undefined && v !== '') input[key] = typeof v === 'number' || typeof v === 'boolean' ? String(v) : v;
  }
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const name = String(issue.path[0]);
    throw new SignetError('configuration', `${name} is invalid: ${issue.message}`);
  }
  const raw = parsed.data as RawConfig;
  if (raw.SIGNET_MASTER_KEY !== undefined) {
    const bytes = Buffer.from(raw.SIGNET_MASTER_KEY, 'base64');
    if (bytes.length !== 32 || bytes.toString('base64') !== raw.SIGNET_MASTER_KEY.trim()) {
      throw new SignetError('configuration', 'SIGNET_MASTER_KEY is invalid: must be base64 of exactly 32 bytes (generate one with: openssl rand -base64 32)');
    }
  }
  if (raw.SIGNET_KEY_STORE === 'pkcs11') {
    for (const name of ['SIGNET_PKCS11_MODULE', 'SIGNET_PKCS11_TOKEN'] as const)
      if (raw[name] === undefined) throw new SignetError('configuration', `${name} is required with SIGNET_KEY_STORE=pkcs11`);
    if ((raw.SIGNET_PKCS11_PIN === undefined) === (raw.SIGNET_PKCS11_PIN_FILE === undefined))
      throw new SignetError('configuration', 'SIGNET_KEY_STORE=pkcs11 needs exactly one of SIGNET_PKCS11_PIN and SIGNET_PKCS11_PIN_FILE');
  } else {
    const set = (['SIGNET_PKCS11_MODULE', 'SIGNET_PKCS11_TOKEN', 'SIGNET_PKCS11_PIN', 'SIGNET_PKCS11_PIN_FILE'] as const).find((n) => raw[n] !== undefined);
    if (set) throw new SignetError('configuration', `${set} is set but SIGNET_KEY_STORE is sealed: set SIGNET_KEY_STORE=pkcs11 to keep CA keys in the token`);
  }
  // One port cannot be both listeners (the HTTPS one would fail to bind, or, in a cluster, its
  // workers would die in Node's shared-handle code).
  if (raw.SIGNET_TLS && raw.SIGNET_TLS_PORT === raw.SIGNET_PORT)
    throw new SignetError('configuration', `SIGNET_TLS_PORT and SIGNET_PORT are both ${raw.SIGNET_PORT}: the HTTPS listener needs a port of its own`);
  const publicUrl = (raw.SIGNET_PUBLIC_URL ?? `http://127.0.0.1:${raw.SIGNET_PORT}`).replace(/\/+$/, '');
  return { ...raw, dataDir: resolve(raw.SIGNET_DATA_DIR), publicUrl };
}
