/**
 * Issuance and renewal: the CA's main job. The signing path, in order (after Boulder's ca.go):
 *   1. parse the CSR and prove possession (pki/csr);
 *   2. decide: key policy, names (well-formed, CN among SANs, profile allow-list, token limits,
 *      issuer name constraints), validity — every refusal a 4xx naming the problem;
 *   3. build the TBS from the profile (pki/leaf-template) and lint it (pki/lint); a finding is
 *      a bug: audited, never signed;
 *   4. sign with the cached issuer key;
 *   5. store the certificate and its audit event in one transaction; only then return it.
 * A crash before 5 commits loses a certificate nobody received; serials are 127 random bits
 * and unique in the table, so nothing needs repair on restart.
 */
import { createHash } from 'node:crypto';
import { SignetError } from '../errors.js';
import { inspectCertificate, newSerial, serialHex, signTbs, toPem } from '../pki/certificate.js';
import { parseCsr, type ParsedCsr } from '../pki/csr.js';
import { escapeDnValue } from '../pki/dn.js';
import { describeKey, type TrustedKey } from '../pki/keys.js';
import { buildLeafTbs } from '../pki/leaf-template.js';
import { lintLeafTbs, readSanEntries } from '../pki/lint.js';
import { checkAllowed, checkNameConstraints, validateCommonName, type SanEntry } from '../pki/names.js';
import { BACKDATE_MS } from '../pki/ca-template.js';
import type { KeyUsageName } from '../pki/extensions.js';
import { EXT } from '../pki/extensions.js';
import { appendAudit } from './audit.js';
import { CommitQueue } from './commit-queue.js';
import type { CaContext } from './context.js';
import type { CaEvents } from './events.js';
import type { Issuer, IssuerRegistry } from './issuers.js';
import type { Profile } from './profiles.js';
import type { TokenGrant } from './tokens.js';

export interface Requester { actor: string; grant?: TokenGrant; sourceIp?: string }

export interface IssueRequest {
  csr: string | Uint8Array;
  profile: string;
  validityDays?: number;
  caId?: string;
}

export interface IssuedCertificate {
  serial: string;
  certificate: string;
  chain: string;
  notBefore: Date;
  notAfter: Date;
  profile: string;
  caId: string;
  der: Buffer;
}

const DAY_MS = 86_400_000;

export class Issuance {
  private readonly commits: CommitQueue;

  constructor(private readonly ctx: CaContext, readonly issuers: IssuerRegistry, readonly profiles: Map<string, Profile>, private readonly events?: CaEvents) {
    this.commits = new CommitQueue(ctx.db);
  }

  profile(name: string): Profile {
    const p = this.profiles.get(name);
    if (!p) throw new SignetError('bad-request', `unknown profile ${JSON.stringify(name)}; available: ${[...this.profiles.keys()].join(', ')}`);
    return p;
  }

  async issue(req: IssueRequest, who: Requester): Promise<IssuedCertificate> {
    const profile = this.profile(req.profile);
    const csr = parseCsr(req.csr);
    return this.sign({ profile, csr, spkiDer: csr.spkiDer, publicKey: csr.publicKey, keyAlgorithm: csr.keyAlgorithm, sans: csr.sans, commonName: csr.subject.commonName, validityDays: req.validityDays, caId: req.caId, csrHash: csr.sha256 }, who, 'certificate.issued');
  }

  /** Same names, new serial and validity; with a CSR, also a new key (rekey). */
  async renew(serial: string, newCsr: string | undefined, who: Requester): Promise<IssuedCertificate> {
    const old = await this.ctx.db.prisma.certificate.findUnique({ where: { serial: normalizeSerial(serial) } });
    if (!old) throw new SignetError('not-found', `certificate ${serial} does not exist`);
    if (old.status !== 'good') throw new SignetError('conflict', `certificate ${old.serial} is ${old.status === 'hold' ? 'on hold' : 'revoked'} and cannot be renewed; issue a new one`);
    const profile = this.profile(old.profile);
    const parts = inspectCertificate(old.der);
    const sanExt = parts.parsed.tbsCertificate.extensions?.find((e) => e.extnID === EXT.subjectAltName);
    const sans = sanExt ? (readSanEntries(Buffer.from(sanExt.extnValue.buffer)).filter((s) => typeof s !== 'string') as SanEntry[]) : [];
    let spkiDer = parts.spkiDer;
    let publicKey = parts.publicKey;
    let keyAlgorithm = old.keyAlgorithm;
    let csrHash: string | undefined;
    let csr: ParsedCsr | undefined;
    if (newCsr) {
      csr = parseCsr(newCsr);
      const key = (s: SanEntry) => `${s.type}:${s.value}`;
      const want = new Set(sans.map(key));
      if (csr.sans.length && (csr.sans.length !== want.size || csr.sans.some((s) => !want.has(key(s))))) {
        throw new SignetError('bad-csr', `a rekey keeps the certificate's names (${sans.map((s) => s.value).join(', ')}); the CSR asks for ${csr.sans.map((s) => s.value).join(', ')} — issue a new certificate for different names`);
      }
      spkiDer = csr.spkiDer;
      publicKey = csr.publicKey;
      keyAlgorithm = csr.keyAlgorithm;
      csrHash = csr.sha256;
    }
    return this.sign({
      profile, csr, spkiDer, publicKey, keyAlgorithm, sans, commonName: old.commonName ?? undefined, caId: old.caId, csrHash, predecessor: old.serial,
    }, who, newCsr ? 'certificate.rekeyed' : 'certificate.renewed');
  }

  private async sign(p: {
    profile: Profile; csr?: ParsedCsr; spkiDer: Buffer; publicKey: TrustedKey; keyAlgorithm: string; sans: SanEntry[]; commonName?: string;
    validityDays?: number; caId?: string; csrHash?: string; predecessor?: string;
  }, who: Requester, action: string): Promise<IssuedCertificate> {
    const { profile } = p;
    const grant = who.grant;
    if (grant?.profiles && !grant.profiles.includes(profile.name)) {
      throw new SignetError('forbidden', `this token may not use profile ${profile.name} (allowed: ${grant.profiles.join(', ')})`);
    }
    // Key policy.
    const key = describeKey(p.publicKey);
    if (!profile.keyTypes.includes(key.family)) throw new SignetError('bad-key', `profile ${profile.name} does not accept ${key.name} keys (allowed: ${profile.keyTypes.join(', ')})`);
    if (key.family === 'rsa' && key.bits < profile.minRsaBits) throw new SignetError('bad-key', `RSA key of ${key.bits} bits is below profile ${profile.name}'s minimum of ${profile.minRsaBits}`);
    // Names.
    const sans = p.sans;
    if (profile.requireSan && sans.length === 0) throw new SignetError('rejected-name', `profile ${profile.name} requires at least one subjectAltName; the CSR has none`);
    if (!sans.length && !p.commonName) throw new SignetError('rejected-name', 'the CSR names nothing: it has neither a subjectAltName nor a commonName');
    for (const s of sans) if (!profile.sanTypes.includes(s.type)) throw new SignetError('rejected-name', `profile ${profile.name} does not allow ${s.type} subjectAltNames (allowed: ${profile.sanTypes.join(', ')})`);
    const namedSans = sans.length ? sans : [];
    validateCommonName(p.commonName, namedSans.length ? namedSans : []);
    checkAllowed(sans, { dnsSuffixes: profile.dnsSuffixes, ipRanges: profile.ipRanges, emailDomains: profile.emailDomains });
    if (grant?.nameSuffixes) {
      // A token's own limit: outside it is 403 (the token may not), not 400 (the name is bad).
      try { checkAllowed(sans, { dnsSuffixes: grant.nameSuffixes, ipRanges: [], emailDomains: grant.nameSuffixes }); } catch (e) {
        const bad = sans.find((s) => { try { checkAllowed([s], { dnsSuffixes: grant.nameSuffixes!, ipRanges: [], emailDomains: grant.nameSuffixes! }); return false; } catch { return true; } });
        throw new SignetError('forbidden', `this token may only request names under ${grant.nameSuffixes.join(', ')}${bad ? `; ${bad.type === 'ip' ? 'IP address' : 'name'} '${bad.value}' is outside them` : ''}`, { cause: e });
      }
    }
    // Issuer.
    const issuer = await this.issuers.get(p.caId ?? profile.caId ?? (await this.issuers.defaultCaId()));
    if (issuer.status !== 'active') throw new SignetError('conflict', `CA ${issuer.id} is ${issuer.status} and does not issue`);
    if (!issuer.parts.isCa) throw new SignetError('conflict', `CA ${issuer.id} is not a CA certificate`);
    if (issuer.nameConstraints) checkNameConstraints(sans, issuer.nameConstraints);
    // Validity.
    const now = this.ctx.now();
    const notBefore = new Date(Math.floor((now.getTime() - BACKDATE_MS) / 1000) * 1000);
    if (p.validityDays !== undefined) {
      if (!Number.isInteger(p.validityDays) || p.validityDays < 1) throw new SignetError('bad-request', `validityDays must be a whole number of at least 1 (got ${p.validityDays})`);
      if (p.validityDays > profile.maxValidityDays) throw new SignetError('policy', `validityDays ${p.validityDays} exceeds profile ${profile.name}'s maximum of ${profile.maxValidityDays}`);
    }
    const requested = p.validityDays ?? profile.defaultValidityDays;
    let notAfter = new Date(Math.floor((now.getTime() + requested * DAY_MS) / 1000) * 1000);
    if (notAfter > issuer.parts.notAfter) {
      if (p.validityDays !== undefined) throw new SignetError('policy', `validityDays ${p.validityDays} would end after the issuing CA ${issuer.id} expires (${issuer.parts.notAfter.toISOString()})`);
      notAfter = issuer.parts.notAfter; // the default validity is clamped to the issuer, silently
    }
    if (notAfter.getTime() - now.getTime() < DAY_MS / 24) throw new SignetError('conflict', `the issuing CA ${issuer.id} expires too soon to issue`);
    const usages: KeyUsageName[] = profile.keyUsage ?? (key.family === 'rsa' ? ['digitalSignature', 'keyEncipherment'] : ['digitalSignature']);
    if (key.family !== 'rsa' && usages.includes('keyEncipherment')) throw new SignetError('bad-key', `profile ${profile.name} asks for keyEncipherment, which ${key.name} keys cannot do`);

    const serial = newSerial();
    const tbs = buildLeafTbs(issuer.leaf, {
      serial, notBefore, notAfter, commonName: p.commonName, sans, spkiDer: p.spkiDer, keyUsage: usages, extKeyUsage: profile.extKeyUsage,
    });
    const findings = lintLeafTbs(tbs, {
      issuerNameDer: issuer.parts.subjectNameDer, issuerKeyId: issuer.parts.subjectKeyId, issuerNotBefore: issuer.parts.notBefore,
      issuerNotAfter: issuer.parts.notAfter, signatureAlgorithmDer: issuer.algorithmDer, extKeyUsage: profile.extKeyUsage,
      requireSan: profile.requireSan, maxValidityMs: profile.maxValidityDays * DAY_MS, spkiDer: p.spkiDer,
    });
    if (findings.length) await this.lintFailure(issuer, serialHex(serial), findings, who);
    const der = signTbs(tbs, issuer.signer, issuer.algorithmDer);
    return this.store(der, serial, { issuer, profile, sans, commonName: p.commonName, keyAlgorithm: key.name, notBefore, notAfter, csrHash: p.csrHash, predecessor: p.predecessor }, who, action);
  }

  private async lintFailure(issuer: Issuer, serial: string, findings: string[], who: Requester): Promise<never> {
    await this.ctx.db.transaction((tx) => appendAudit(tx, {
      actor: who.actor, action: 'certificate.lint_failed', target: serial, outcome: 'failure', sourceIp: who.sourceIp, details: { caId: issuer.id, findings },
    }));
    this.ctx.log.error({ caId: issuer.id, serial, findings }, 'pre-issuance lint failed; nothing was signed');
    throw new SignetError('lint-failure', `the certificate failed pre-issuance lint and was not signed (this is a Signet bug; see audit event for serial ${serial}): ${findings.join('; ')}`);
  }

  private async store(der: Buffer, serialBytes: Buffer, m: {
    issuer: Issuer; profile: Profile; sans: SanEntry[]; commonName?: string; keyAlgorithm: string; notBefore: Date; notAfter: Date; csrHash?: string; predecessor?: string;
  }, who: Requester, action: string): Promise<IssuedCertificate> {
    // Everything recorded is what the template encoded (the lint re-read it from the TBS).
    const serial = serialHex(serialBytes);
    const fingerprint = createHash('sha256').update(der).digest('hex');
    await this.commits.commit({
      serial, caId: m.issuer.id, profile: m.profile.name, subject: m.commonName ? `CN=${escapeDnValue(m.commonName)}` : '', commonName: m.commonName ?? null,
      sans: JSON.stringify(m.sans), sanText: m.sans.map((s) => s.value.toLowerCase()).join(' '), keyAlgorithm: m.keyAlgorithm,
      notBefore: m.notBefore, notAfter: m.notAfter, der, fingerprint, csrHash: m.csrHash ?? null,
      tokenId: who.grant?.id ?? null, predecessorSerial: m.predecessor ?? null, createdAt: this.ctx.now(),
    }, {
      actor: who.actor, action, target: serial, sourceIp: who.sourceIp,
      details: { caId: m.issuer.id, profile: m.profile.name, sans: m.sans.map((s) => s.value), fingerprint, predecessor: m.predecessor ?? null },
    });
    this.events?.emit('certificateIssued', { caId: m.issuer.id, profile: m.profile.name });
    return {
      serial, certificate: toPem(der), chain: m.issuer.chainPem, notBefore: m.notBefore, notAfter: m.notAfter,
      profile: m.profile.name, caId: m.issuer.id, der,
    };
  }
}

/** Serials are accepted with or without colons, any case; stored as lower-case hex. */
export function normalizeSerial(serial: string): string {
  const s = serial.replace(/:/g, '').toLowerCase();
  if (!/^[0-9a-f]{1,64}$/.test(s)) throw new SignetError('bad-request', `serial ${JSON.stringify(serial.slice(0, 80))} is not a hexadecimal serial number`);
  return s;
}
