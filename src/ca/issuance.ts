/**
 * Issuance and renewal: the CA's main job. The signing path, in order (after Boulder's ca.go):
 *   1. parse the CSR and prove possession (pki/csr);
 *   2. decide: who may (authorization.ts: the caller's scope, profile and name limits), key
 *      policy, names (well-formed, no duplicates, at most maxSans, CN among SANs, profile
 *      allow-list), the issuing CA (the profile decides; a request only picks among the CAs it
 *      allows), issuer name constraints, validity — every refusal a 4xx naming the problem;
 *   3. build the TBS from the profile (pki/leaf-template) and prepare it (ca/signing: the leaf
 *      lint, pki/lint); a finding is a bug: audited, never signed;
 *   4. sign with the cached issuer key, only if it is an issuing CA (never a root);
 *   5. store the certificate and its audit event in one transaction; only then return it.
 * A crash before 5 commits loses a certificate nobody received; serials are 127 random bits
 * and unique in the table, so nothing needs repair on restart.
 */
import { keyUriDetail } from '../keystore/key-store.js';
import { createHash, createPublicKey } from 'node:crypto';
import { SignetError } from '../errors.js';
import { inspectCertificate, newSerial, serialHex, toPem, type CertificateParts } from '../pki/certificate.js';
import { parseCsr, type ParsedCsr } from '../pki/csr.js';
import { commonNameOf, escapeDnValue } from '../pki/dn.js';
import { defaultKeyUsage, usagesBeyondKey } from '../pki/key-usage.js';
import { describeKey, verifySignature, type TrustedKey } from '../pki/keys.js';
import { buildLeafTbs } from '../pki/leaf-template.js';
import { readSanEntries } from '../pki/lint.js';
import { importSpki } from '../pki/public-key.js';
import { checkAllowed, checkNameConstraints, normalizeIp, validateCommonName, validateSan, type SanEntry } from '../pki/names.js';
import { BACKDATE_MS } from '../pki/ca-template.js';
import type { KeyUsageName } from '../pki/extensions.js';
import { EXT } from '../pki/extensions.js';
import { appendAudit } from './audit.js';
import { CommitQueue, IssuerReplaced } from './commit-queue.js';
import { credentialSpends, spendsCredential } from './enrollment-credentials.js';
import { crlShardFor, type CaContext } from './context.js';
import type { CaEvents } from './events.js';
import { notIssuingReason, type Issuer, type IssuerRegistry } from './issuers.js';
import { walkCaChain } from './ca-chain-check.js';
import { namePolicyOf, type Profile } from './profiles.js';
import { actorOf, authorize, authorizeCertificate, tokenIdOf, type Operation, type Principal } from './authorization.js';
import { normalizeSerial } from './serial.js';
import { prepareCertificate, signPrepared, type PreparedCertificate } from './signing.js';

/** Who asks, for every operation on certificates: authorised by authorization.ts, audited as actorOf(principal). */
export interface Requester {
  principal: Principal;
  sourceIp?: string;
}

export interface IssueRequest {
  csr: string | Uint8Array;
  profile: string;
  validityDays?: number;
  caId?: string;
  /** 'any': the CSR's attributes may come in any order (SCEP clients; pki/csr.ts parseCsr). */
  csrAttributeOrder?: 'der' | 'any';
  /**
   * Signet's own certificates only (the SCEP RA's): a profile derived in code, used instead of
   * the named one. Never from a request: the REST and ACME schemas are strict and build their own.
   */
  asProfile?: Profile;
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

/** What one signing needs: the request, decided and parsed. */
interface SignParams {
  profile: Profile;
  csr?: ParsedCsr;
  spkiDer: Buffer;
  publicKey: TrustedKey;
  keyAlgorithm: string;
  sans: SanEntry[];
  commonName?: string;
  validityDays?: number;
  caId?: string;
  previousCaId?: string;
  csrHash?: string;
  predecessor?: string;
}

export class Issuance {
  private readonly commits: CommitQueue;

  constructor(
    private readonly ctx: CaContext,
    readonly issuers: IssuerRegistry,
    readonly profiles: Map<string, Profile>,
    private readonly events?: CaEvents,
  ) {
    // An enrollment's credential use is spent in its certificate's commit (enrollment-credentials.ts).
    this.commits = new CommitQueue(ctx.db, ctx.stores.certificates, (uses) => credentialSpends(ctx, uses));
  }

  profile(name: string): Profile {
    const p = this.profiles.get(name);
    if (!p) throw new SignetError('bad-request', `unknown profile ${JSON.stringify(name)}; available: ${[...this.profiles.keys()].join(', ')}`);
    return p;
  }

  /**
   * What a device enrolling under `profileName` (or, without one, from the default CA) needs to
   * trust its certificate: the issuing CA, the chain above it (with any rollover
   * cross-certificate) and the root (EST cacerts, RFC 7030 §4.1.3; SCEP GetCACert).
   */
  async caCertificates(profileName?: string): Promise<Buffer[]> {
    const issuer = profileName
      ? await this.issuerFor(this.profile(profileName), undefined, undefined)
      : await this.issuers.current(await this.issuers.defaultCaId());
    const cas = this.ctx.stores.cas;
    const row = await cas.get(issuer.id);
    if (!row) throw new SignetError('not-found', `CA ${issuer.id} does not exist`);
    const { chain } = await walkCaChain(row, (id) => cas.get(id));
    const top = chain.at(-1)?.parentId;
    const root = top ? await cas.get(top) : null;
    return [...issuer.chainDer, ...(root ? [Buffer.from(root.certificateDer)] : [])];
  }

  async issue(req: IssueRequest, who: Requester): Promise<IssuedCertificate> {
    authorize(who.principal, 'certificate.issue');
    const profile = req.asProfile ?? this.profile(req.profile);
    const csr = parseCsr(req.csr, { attributeOrder: req.csrAttributeOrder });
    return this.sign(
      {
        profile,
        csr,
        spkiDer: csr.spkiDer,
        publicKey: csr.publicKey,
        keyAlgorithm: csr.keyAlgorithm,
        sans: csr.sans,
        commonName: csr.subject.commonName,
        validityDays: req.validityDays,
        caId: req.caId,
        csrHash: csr.sha256,
      },
      who,
      'certificate.issue',
      'certificate.issued',
    );
  }

  /**
   * A certificate for a key Signet generated itself, in this process, of a kind that cannot sign
   * a CSR: ML-KEM-768 (`signet issue --generate-key ml-kem-768`). Holding the private key here is
   * the proof of possession, which is why this takes the private key, never a public key: nothing
   * from outside (REST, ACME, EST, SCEP) reaches it, and none of those adapters calls it.
   */
  async issueForGeneratedKey(
    req: { privateKey: TrustedKey; commonName?: string; sans: SanEntry[]; profile: string; validityDays?: number; caId?: string },
    who: Requester,
  ): Promise<IssuedCertificate> {
    authorize(who.principal, 'certificate.issue');
    const profile = this.profile(req.profile);
    const spkiDer = createPublicKey(req.privateKey).export({ type: 'spki', format: 'der' });
    const info = importSpki(spkiDer);
    if (info.family !== 'ml-kem')
      throw new SignetError('bad-request', `a ${info.algorithm} key can sign its own CSR; only ML-KEM keys are certified without one`);
    return this.sign(
      {
        profile,
        spkiDer,
        publicKey: info.key,
        keyAlgorithm: info.algorithm,
        sans: req.sans,
        commonName: req.commonName,
        validityDays: req.validityDays,
        caId: req.caId,
      },
      who,
      'certificate.issue',
      'certificate.issued',
    );
  }

  /** Same names, new serial and validity; with a CSR, also a new key (rekey). */
  async renew(serial: string, newCsr: string | undefined, who: Requester, opts: { csrAttributeOrder?: 'der' | 'any' } = {}): Promise<IssuedCertificate> {
    authorize(who.principal, 'certificate.renew');
    const old = await this.ctx.stores.certificates.get(normalizeSerial(serial));
    if (!old) throw new SignetError('not-found', `certificate ${serial} does not exist`);
    // The caller's limits apply to the certificate as stored, before anything about it is revealed.
    authorizeCertificate(
      who.principal,
      'certificate.renew',
      { profile: old.profile, sans: JSON.parse(old.sans) as SanEntry[], commonName: old.commonName, serial: old.serial },
      this.profiles.get(old.profile)?.hostlessUriSchemes,
    );
    if (old.status !== 'good')
      throw new SignetError('conflict', `certificate ${old.serial} is ${old.status === 'hold' ? 'on hold' : 'revoked'} and cannot be renewed; issue a new one`);
    const profile = this.profile(old.profile);
    // What is renewed is what Signet signed: the names and key are read from the stored DER,
    // once its signature verified under the issuing CA's key.
    const parts = await this.issuedByUs(old);
    const sanExt = parts.parsed.tbsCertificate.extensions?.find((e) => e.extnID === EXT.subjectAltName);
    const sans = sanExt ? (readSanEntries(Buffer.from(sanExt.extnValue.buffer)).filter((s) => typeof s !== 'string') as SanEntry[]) : [];
    const commonName = commonNameOf(parts.subjectNameDer);
    let spkiDer = parts.spkiDer;
    let publicKey = parts.publicKey;
    let keyAlgorithm = old.keyAlgorithm;
    let csrHash: string | undefined;
    let csr: ParsedCsr | undefined;
    if (newCsr) {
      csr = parseCsr(newCsr, { attributeOrder: opts.csrAttributeOrder });
      const key = (s: SanEntry) => `${s.type}:${s.value}`;
      const want = new Set(sans.map(key));
      if (csr.sans.length && (csr.sans.length !== want.size || csr.sans.some((s) => !want.has(key(s))))) {
        throw new SignetError(
          'bad-csr',
          `a rekey keeps the certificate's names (${sans.map((s) => s.value).join(', ')}); the CSR asks for ${csr.sans.map((s) => s.value).join(', ')} — issue a new certificate for different names`,
        );
      }
      spkiDer = csr.spkiDer;
      publicKey = csr.publicKey;
      keyAlgorithm = csr.keyAlgorithm;
      csrHash = csr.sha256;
    }
    return this.sign(
      {
        profile,
        csr,
        spkiDer,
        publicKey,
        keyAlgorithm,
        sans,
        commonName,
        previousCaId: old.caId,
        csrHash,
        predecessor: old.serial,
      },
      who,
      'certificate.renew',
      newCsr ? 'certificate.rekeyed' : 'certificate.renewed',
    );
  }

  /**
   * The stored certificate, parsed, once it proved to be one Signet issued: an end-entity
   * certificate with the row's serial, whose signature verifies under the public key of the CA
   * the row names — that CA's record checked against its sealed key (IssuerRegistry). A row
   * whose DER someone without a CA key wrote (other names, another key) fails here: 409, logged
   * at error level, nothing signed.
   */
  private async issuedByUs(old: { serial: string; caId: string; der: Uint8Array }): Promise<CertificateParts> {
    const refuse = (why: string): never => {
      this.ctx.log.error({ serial: old.serial, caId: old.caId }, `stored certificate failed its integrity check: ${why}; not renewed`);
      throw new SignetError(
        'conflict',
        `certificate ${old.serial} cannot be renewed: ${why} (its record was changed in the database; run \`signet audit verify\`)`,
      );
    };
    let parts: CertificateParts;
    try {
      parts = inspectCertificate(old.der);
    } catch {
      return refuse('its stored DER is not a certificate');
    }
    if (serialHex(parts.serial) !== old.serial) refuse(`its stored DER has serial ${serialHex(parts.serial)}`);
    if (parts.isCa) refuse('its stored DER is a CA certificate');
    let issuer: Issuer;
    try {
      issuer = await this.issuers.get(old.caId);
    } catch (e) {
      // An issuer whose key is offline (or whose own record failed its check) cannot vouch for it.
      if (e instanceof SignetError && e.status < 500)
        throw new SignetError(
          'conflict',
          `certificate ${old.serial} cannot be renewed: its issuing CA cannot vouch for it (${e.detail}); issue a new certificate`,
        );
      throw e;
    }
    const signed =
      parts.issuerNameDer.equals(issuer.parts.subjectNameDer) &&
      verifySignature(parts.parsed.signatureAlgorithm.algorithm, issuer.parts.publicKey, parts.tbs, Buffer.from(parts.parsed.signatureValue));
    if (!signed) refuse(`its stored DER does not verify under CA ${old.caId}'s key`);
    return parts;
  }

  /**
   * Signs and stores; if the CA was replaced by a successor between signing and committing (a
   * rotation in another process), once more: the issuer index reloads that CA and hands the
   * request to its successor.
   */
  private async sign(p: SignParams, requester: Requester, op: Operation, action: string): Promise<IssuedCertificate> {
    try {
      return await this.signOnce(p, requester, op, action);
    } catch (e) {
      if (!(e instanceof IssuerReplaced)) throw e;
      this.issuers.invalidate(e.caId);
      return this.signOnce(p, requester, op, action);
    }
  }

  /**
   * Every rule a request is held to before a CA is chosen: its names' form, who may ask for them
   * (authorization.ts), the profile's key and name rules. Returns the key's description.
   */
  private checkRequest(p: SignParams, who: Requester, op: Operation): ReturnType<typeof describeKey> {
    const { profile, sans } = p;
    for (const s of sans) validateSan(s);
    authorizeCertificate(
      who.principal,
      op,
      { profile: profile.name, sans, commonName: p.commonName, ...(p.predecessor ? { serial: p.predecessor } : {}) },
      profile.hostlessUriSchemes,
    );
    // Key policy.
    const key = describeKey(p.publicKey);
    if (!profile.keyTypes.includes(key.family))
      throw new SignetError('bad-key', `profile ${profile.name} does not accept ${key.name} keys (allowed: ${profile.keyTypes.join(', ')})`);
    if (key.family === 'rsa' && key.bits < profile.minRsaBits)
      throw new SignetError('bad-key', `RSA key of ${key.bits} bits is below profile ${profile.name}'s minimum of ${profile.minRsaBits}`);
    // Names.
    if (profile.requireSan && sans.length === 0)
      throw new SignetError('rejected-name', `profile ${profile.name} requires at least one subjectAltName; the CSR has none`);
    if (!sans.length && !p.commonName) throw new SignetError('rejected-name', 'the CSR names nothing: it has neither a subjectAltName nor a commonName');
    if (sans.length > profile.maxSans)
      throw new SignetError('rejected-name', `the CSR has ${sans.length} subjectAltNames; profile ${profile.name} allows at most ${profile.maxSans}`);
    for (const s of sans)
      if (!profile.sanTypes.includes(s.type))
        throw new SignetError('rejected-name', `profile ${profile.name} does not allow ${s.type} subjectAltNames (allowed: ${profile.sanTypes.join(', ')})`);
    refuseDuplicates(sans);
    if (sans.length === 0 && p.commonName !== undefined && !profile.requireSan) {
      // A certificate named by its CN alone (a device enrolling by SCEP, a client certificate):
      // the CN is its one name, held to the rules of the name it reads as (a DNS name, or an
      // email address), and to the profile's allow-list, as the authorisation limits judge it.
      const asName: SanEntry = { type: p.commonName.includes('@') ? 'email' : 'dns', value: p.commonName };
      try {
        validateSan(asName);
      } catch (e) {
        if (e instanceof SignetError)
          throw new SignetError(
            'rejected-name',
            `subject commonName '${p.commonName.slice(0, 200)}' is the only name and is not a valid ${asName.type === 'dns' ? 'DNS name' : 'email address'}: ${e.detail}`,
          );
        throw e;
      }
      checkAllowed([asName], namePolicyOf(profile));
    } else validateCommonName(p.commonName, sans);
    checkAllowed(sans, namePolicyOf(profile));
    return key;
  }

  /**
   * The profile's rules and the requester's limits, applied to a request before anything is
   * made for it (EST serverkeygen checks before it generates the key the certificate will be for).
   */
  precheck(profileName: string, csr: ParsedCsr, who: Requester): void {
    const profile = this.profile(profileName);
    this.checkRequest(
      { profile, csr, spkiDer: csr.spkiDer, publicKey: csr.publicKey, keyAlgorithm: csr.keyAlgorithm, sans: csr.sans, commonName: csr.subject.commonName },
      who,
      'certificate.issue',
    );
  }

  private async signOnce(p: SignParams, who: Requester, op: Operation, action: string): Promise<IssuedCertificate> {
    const { profile, sans } = p;
    // A malformed name is the request's fault (400) whoever asks; then who may: the caller's
    // profile and name limits (403), before anything else is looked at. A renewal acts on its
    // predecessor: that is the serial a certificate's holder is limited to.
    const key = this.checkRequest(p, who, op);
    // Issuer: the profile decides.
    const issuer = await this.issuerFor(profile, p.caId, p.previousCaId);
    if (issuer.nameConstraints) checkNameConstraints(sans, issuer.nameConstraints);
    // Validity. Backdated a minute for clocks running behind, but never before the issuer's own
    // notBefore: a CA made (or imported) less than a minute ago must still issue.
    const now = this.ctx.now();
    if (issuer.parts.notBefore.getTime() > now.getTime())
      throw new SignetError('conflict', `the issuing CA ${issuer.id} is not valid until ${issuer.parts.notBefore.toISOString()}`);
    const notBefore = new Date(Math.max(Math.floor((now.getTime() - BACKDATE_MS) / 1000) * 1000, issuer.parts.notBefore.getTime()));
    if (p.validityDays !== undefined) {
      if (!Number.isInteger(p.validityDays) || p.validityDays < 1)
        throw new SignetError('bad-request', `validityDays must be a whole number of at least 1 (got ${p.validityDays})`);
      if (p.validityDays > profile.maxValidityDays)
        throw new SignetError('policy', `validityDays ${p.validityDays} exceeds profile ${profile.name}'s maximum of ${profile.maxValidityDays}`);
    }
    const requested = p.validityDays ?? profile.defaultValidityDays;
    let notAfter = new Date(Math.floor((now.getTime() + requested * DAY_MS) / 1000) * 1000);
    if (notAfter > issuer.parts.notAfter) {
      if (p.validityDays !== undefined)
        throw new SignetError(
          'policy',
          `validityDays ${p.validityDays} would end after the issuing CA ${issuer.id} expires (${issuer.parts.notAfter.toISOString()})`,
        );
      notAfter = issuer.parts.notAfter; // the default validity is clamped to the issuer, silently
    }
    if (notAfter.getTime() - now.getTime() < DAY_MS / 24) throw new SignetError('conflict', `the issuing CA ${issuer.id} expires too soon to issue`);
    const usages: KeyUsageName[] = profile.keyUsageByFamily?.[key.family] ?? profile.keyUsage ?? defaultKeyUsage(key.family);
    const beyond = usagesBeyondKey(key.family, usages);
    if (beyond.length) throw new SignetError('bad-key', `profile ${profile.name} asks for ${beyond.join(', ')}, which ${key.name} keys cannot do`);

    const serial = newSerial();
    const crlShard = crlShardFor(serial, this.ctx.config.SIGNET_CRL_SHARDS ?? 1);
    const tbs = buildLeafTbs(issuer.leaf, {
      crlShard,
      serial,
      notBefore,
      notAfter,
      commonName: p.commonName,
      sans,
      spkiDer: p.spkiDer,
      keyUsage: usages,
      extKeyUsage: profile.extKeyUsage,
    });
    const prepared = prepareCertificate(
      tbs,
      {
        kind: 'leaf',
        expect: {
          issuerNameDer: issuer.parts.subjectNameDer,
          issuerKeyId: issuer.parts.subjectKeyId,
          issuerNotBefore: issuer.parts.notBefore,
          issuerNotAfter: issuer.parts.notAfter,
          signatureAlgorithmDer: issuer.algorithmDer,
          extKeyUsage: profile.extKeyUsage,
          requireSan: profile.requireSan,
          maxValidityMs: profile.maxValidityDays * DAY_MS,
          spkiDer: p.spkiDer,
        },
      },
      issuer.signer,
    );
    if (prepared.findings.length) await this.lintFailure(issuer, serialHex(serial), [...prepared.findings], who);
    const der = await signLeaf(issuer, prepared);
    return this.store(
      der,
      serial,
      {
        issuer,
        profile,
        sans,
        commonName: p.commonName,
        keyAlgorithm: key.name,
        notBefore,
        notAfter,
        csrHash: p.csrHash,
        predecessor: p.predecessor,
        crlShard,
      },
      who,
      action,
    );
  }

  /**
   * The CA that signs under `profile`. The profile decides: a request's caId may only pick
   * among the CAs it lists (caIds; the first is the default); a profile without a list allows
   * any issuing CA. A renewal keeps its predecessor's CA while the profile allows it. A CA that
   * was rotated stands for its successor: in the list, in the request and in the renewal.
   */
  private async issuerFor(profile: Profile, requested: string | undefined, previous: string | undefined): Promise<Issuer> {
    const allowed = profile.caIds;
    if (requested !== undefined && allowed && !(await this.issuers.inLineage(requested, allowed))) {
      throw new SignetError(
        'policy',
        `profile ${profile.name} issues only from ${allowed.length === 1 ? 'CA' : 'CAs'} ${allowed.join(', ')}; caId ${requested} is not allowed`,
      );
    }
    // A replaced CA hands the request to the newest CA of its line (succession.ts).
    const byProfile = async () => this.issuers.current(allowed?.[0] ?? (await this.issuers.defaultCaId()));
    let issuer: Issuer;
    if (requested !== undefined) issuer = await this.issuers.current(requested);
    // A renewal stays with its certificate's line of CAs; when that line ended in a revocation
    // it is refused below (a revoked CA's certificates are not renewed elsewhere).
    else if (previous && (!allowed || (await this.issuers.inLineage(previous, allowed)))) issuer = await this.issuers.current(previous);
    else issuer = await byProfile();
    const why = notIssuingReason(issuer);
    if (why) {
      // A root or a non-CA named by the request is the request's fault (400), naming what it may pick;
      // a CA that stopped issuing (revoked, retired) is the state of things (409).
      const structural = issuer.root || !issuer.parts.isCa;
      const choices =
        requested === undefined
          ? ''
          : `; profile ${profile.name} may issue from ${allowed ? allowed.join(', ') : `any issuing CA (${(await this.issuers.issuingCaIds()).join(', ') || 'none now'})`}`;
      throw new SignetError(structural && requested !== undefined ? 'policy' : 'conflict', `${why}${choices}`);
    }
    return issuer;
  }

  private async lintFailure(issuer: Issuer, serial: string, findings: string[], who: Requester): Promise<never> {
    await this.ctx.db.transaction((tx) =>
      appendAudit(tx, {
        actor: actorOf(who.principal),
        action: 'certificate.lint_failed',
        target: serial,
        outcome: 'failure',
        sourceIp: who.sourceIp,
        details: { caId: issuer.id, findings },
      }),
    );
    this.ctx.log.error({ caId: issuer.id, serial, findings }, 'pre-issuance lint failed; nothing was signed');
    throw new SignetError(
      'lint-failure',
      `the certificate failed pre-issuance lint and was not signed (this is a Signet bug; see audit event for serial ${serial}): ${findings.join('; ')}`,
    );
  }

  private async store(
    der: Buffer,
    serialBytes: Buffer,
    m: {
      issuer: Issuer;
      profile: Profile;
      sans: SanEntry[];
      commonName?: string;
      keyAlgorithm: string;
      notBefore: Date;
      notAfter: Date;
      csrHash?: string;
      predecessor?: string;
      crlShard: number | null;
    },
    who: Requester,
    action: string,
  ): Promise<IssuedCertificate> {
    // Everything recorded is what the template encoded (the lint re-read it from the TBS).
    const serial = serialHex(serialBytes);
    const fingerprint = createHash('sha256').update(der).digest('hex');
    await this.commits.commit(
      {
        serial,
        caId: m.issuer.id,
        profile: m.profile.name,
        subject: m.commonName ? `CN=${escapeDnValue(m.commonName)}` : '',
        commonName: m.commonName ?? null,
        sans: JSON.stringify(m.sans),
        sanText: m.sans.map((s) => s.value.toLowerCase()).join(' '),
        keyAlgorithm: m.keyAlgorithm,
        notBefore: m.notBefore,
        notAfter: m.notAfter,
        der,
        fingerprint,
        csrHash: m.csrHash ?? null,
        tokenId: tokenIdOf(who.principal),
        predecessorSerial: m.predecessor ?? null,
        createdAt: this.ctx.now(),
        crlShard: m.crlShard,
      },
      {
        actor: actorOf(who.principal),
        action,
        target: serial,
        sourceIp: who.sourceIp,
        details: {
          caId: m.issuer.id,
          profile: m.profile.name,
          sans: m.sans.map((s) => s.value),
          fingerprint,
          predecessor: m.predecessor ?? null,
          ...keyUriDetail(m.issuer.keyUri),
        },
      },
      spendsCredential(who.principal) ? who.principal.credentialId : undefined,
    );
    this.events?.emit('certificateIssued', { caId: m.issuer.id, profile: m.profile.name });
    return {
      serial,
      certificate: toPem(der),
      chain: m.issuer.chainPem,
      notBefore: m.notBefore,
      notAfter: m.notAfter,
      profile: m.profile.name,
      caId: m.issuer.id,
      der,
    };
  }
}

/** Signs a prepared leaf; the last gate of every issuance path: only an issuing CA signs leaves, never a root. */
async function signLeaf(issuer: Issuer, prepared: PreparedCertificate): Promise<Buffer> {
  const why = notIssuingReason(issuer);
  if (why) throw new SignetError('conflict', why);
  return signPrepared(prepared);
}

/** The same name twice is refused (names already validated): DNS names compared in lower case, IP addresses in canonical form. */
function refuseDuplicates(sans: SanEntry[]): void {
  const seen = new Set<string>();
  for (const s of sans) {
    const canonical =
      s.type === 'dns'
        ? s.value.toLowerCase()
        : s.type === 'ip'
          ? normalizeIp(s.value)
          : s.type === 'email'
            ? s.value.replace(/@[^@]*$/, (d) => d.toLowerCase())
            : s.value;
    const k = `${s.type}:${canonical}`;
    if (seen.has(k))
      throw new SignetError(
        'rejected-name',
        `subjectAltName ${s.type === 'ip' ? 'IP address' : s.type === 'dns' ? 'DNS name' : s.type === 'email' ? 'email address' : 'URI'} '${canonical.slice(0, 200)}' appears more than once; list each name once`,
      );
    seen.add(k);
  }
}
