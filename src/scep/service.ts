/**
 * SCEP (RFC 8894): the protocol over the authority layer. GetCACaps and GetCACert describe the
 * RA (ra.ts); PKIOperation reads a pkiMessage (pki/scep-message.ts), verifies its signature
 * with the certificate it carries, decrypts its envelope with the RA key through the key store,
 * and answers a CertRep signed by the RA:
 *   - PKCSReq: the CSR's challengePassword is an enrollment credential (protocol 'scep', this
 *     path's profile); the certificate is issued by the issuance service with the enrollment
 *     principal as requester, so the credential's profile and names, the profile, the name
 *     policy, lint, audit and durability apply unchanged; the credential's use is spent by issuance just before it signs.
 *   - RenewalReq: signed by a certificate that authenticates its holder exactly as for mTLS
 *     renewal (ca/holder-authentication.ts) and is of this path's profile; renewed (rekeyed with
 *     the request's key) by the certificate-holder principal.
 *   - CertPoll (GetCertInitial): Signet issues synchronously, so never PENDING; the result
 *     recorded for the transactionID to the same key, or badCertId (one answer for an unknown
 *     transactionID and another key's).
 *   - GetCert: the certificate Signet issued, only to the sender that signs with it (else
 *     badCertId, as for an unknown serial); GetCRL: the current CRL of its issuer.
 * Every refusal that can be answered is a CertRep FAILURE with its failInfo (HTTP 200, RFC 8894
 * §3.3.2.2), audited as `scep.refused`; only a message too broken to carry a transactionID and
 * a senderNonce (so no CertRep can be formed) is a 400 problem document, also audited.
 *
 * Replays: the transactionID of a successful PKCSReq or RenewalReq is recorded (Setting
 * `scep.tx.<hash>` → serial). The same transactionID again with the same public key (a client
 * that lost the reply and resends) gets the certificate already issued, and spends nothing; with
 * another key it is refused (badRequest) once the sender authenticated (a challenge accepted, a
 * holder proven), so an outsider cannot tell a used transactionID from a new one. A replayed message can only ever be answered to the
 * key that signed it, encrypted to that key.
 */
import { createHash, randomBytes, type KeyObject } from 'node:crypto';
import type { CaContext } from '../ca/context.js';
import { appendAudit } from '../ca/audit.js';
import { actorOf, type Principal } from '../ca/authorization.js';
import { authenticateHolder } from '../ca/holder-authentication.js';
import { auditRefusal } from '../http/audit-refusals.js';
import type { CrlPublisher } from '../ca/crl-publisher.js';
import type { Issuance } from '../ca/issuance.js';
import { SignetError, isSignetError } from '../errors.js';
import { certsOnlyCms } from '../pki/cms-certs-only.js';
import { decryptEnveloped, encryptEnveloped, parseEnvelopedData, type ContentCipher, type KeyTransRecipient } from '../pki/cms-enveloped.js';
import { CmsError, verifySigner } from '../pki/cms-signed.js';
import { inspectCertificate, toPem, type CertificateParts } from '../pki/certificate.js';
import {
  buildCertRep,
  certificateIds,
  challengePasswordOf,
  crlsOnlyCms,
  MESSAGE_TYPE,
  parsePkiMessage,
  readIssuerAnd,
  type FailInfo,
  type PkiMessage,
} from '../pki/scep-message.js';
import { readEl, readKids } from '../pki/der-strict.js';
import { ScepRa, type RaIdentity, type RaSettings } from './ra.js';

export type EnrollmentPrincipal = Extract<Principal, { kind: 'enrollment' }>;

/** The enrollment-credential functions (ca/enrollment-credentials.ts), injected. */
export interface EnrollmentCredentials {
  /** The principal for a challenge password; a 401 SignetError (audited there) when refused. */
  authenticate(ctx: CaContext, secret: string, opts: { protocol: 'scep'; profile?: string; sourceIp?: string }): Promise<EnrollmentPrincipal>;
}

export interface ScepOptions {
  /** The profile served at /scep (SIGNET_SCEP_PROFILE). */
  defaultProfile: string;
}

/**
 * GetCACaps (RFC 8894 §3.5.2). strongSwan's `pki --scep` 5.9 reads the list off by one: it
 * accepts SHA-256, AES and Renewal only when SHA-384 is also advertised (client-quirks.md).
 */
export const CA_CAPS = ['AES', 'POSTPKIOperation', 'Renewal', 'SHA-1', 'SHA-256', 'SHA-384', 'SHA-512', 'DES3', 'SCEPStandard'];

/** A refusal answered with CertRep FAILURE. */
class Refusal extends Error {
  constructor(
    readonly failInfo: FailInfo,
    readonly detail: string,
  ) {
    super(detail);
  }
}

/** Who the sender proved to be so far (null: nobody yet), for the audit of a refusal. */
interface Who {
  actor: string | null;
}

const MESSAGE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(MESSAGE_TYPE).map(([k, v]) => [v, k]));

export class ScepService {
  readonly ra: ScepRa;

  constructor(
    private readonly ctx: CaContext,
    private readonly issuance: Issuance,
    private readonly crls: Pick<CrlPublisher, 'current'>,
    private readonly settings: RaSettings,
    private readonly enrollment: EnrollmentCredentials,
    readonly opts: ScepOptions,
  ) {
    this.ra = new ScepRa(ctx, issuance, settings);
  }

  /** The profile a path names (404 for an unknown one). */
  profile(name: string | undefined): string {
    const p = name ?? this.opts.defaultProfile;
    if (!this.issuance.profiles.has(p)) throw new SignetError('not-found', `no SCEP service for profile ${JSON.stringify(p.slice(0, 64))}`);
    return p;
  }

  caps(): string {
    return CA_CAPS.join('\n');
  }

  /**
   * GetCACert: the RA certificate first (clients encrypt to the certificate with
   * keyEncipherment, and some to the first), then the issuing CA and its chain, as certs-only.
   */
  async caCert(profile: string): Promise<{ body: Buffer; contentType: string }> {
    const ra = await this.ra.forProfile(profile);
    return { body: certsOnlyCms([ra.certificate.der, ...ra.caChain]), contentType: 'application/x-x509-ca-ra-cert' };
  }

  /**
   * PKIOperation: the CertRep (DER) to send with HTTP 200, or a 400 SignetError when the message
   * is too broken to answer in SCEP.
   */
  async pkiOperation(profile: string, body: Buffer, sourceIp?: string): Promise<Buffer> {
    let msg: PkiMessage;
    try {
      msg = parsePkiMessage(body);
    } catch (e) {
      if (!(e instanceof CmsError)) throw e;
      await this.audit(null, null, sourceIp, { profile, reason: e.message, failInfo: null });
      throw new SignetError('bad-request', `not a SCEP pkiMessage: ${e.message}`);
    }
    const ra = await this.ra.forProfile(profile);
    const reply = (status: Parameters<typeof buildCertRep>[0]['status']) =>
      buildCertRep({
        transactionId: msg.transactionId,
        recipientNonce: msg.senderNonce,
        senderNonce: randomBytes(16),
        signer: ra.signer,
        signerCertificate: ra.certificate.der,
        // The RA's issuing chain (not the root): OpenSSL-based clients (certmonger) build the
        // signer's path from the message's certificates to the root they trust.
        certificates: ra.caChain.filter((c) => {
          const ids = certificateIds(c);
          return !ids.issuer.equals(ids.subject);
        }),
        status,
        signingTime: this.ctx.now(),
      });
    const who: Who = { actor: null };
    try {
      const envelope = await this.handle(profile, msg, ra, who, sourceIp);
      return await reply({ kind: 'success', envelope });
    } catch (e) {
      let refusal: Refusal;
      if (e instanceof Refusal) refusal = e;
      else if (e instanceof CmsError) refusal = new Refusal(e.reason === 'unsupported' ? 'badAlg' : 'badMessageCheck', e.message);
      else if (isSignetError(e) && e.status < 500) refusal = new Refusal('badRequest', e.detail);
      else throw e;
      this.ctx.log.info({ transactionId: msg.transactionId, profile, failInfo: refusal.failInfo, reason: refusal.detail }, 'SCEP request refused');
      await this.audit(who.actor, msg.transactionId, sourceIp, {
        profile,
        messageType: MESSAGE_NAMES[msg.messageType] ?? msg.messageType,
        failInfo: refusal.failInfo,
        reason: refusal.detail,
      });
      return reply({ kind: 'failure', failInfo: refusal.failInfo, text: refusal.detail });
    }
  }

  /** Handles a parsed message; returns the reply's EnvelopedData, or throws a Refusal/CmsError/SignetError. */
  private async handle(profile: string, msg: PkiMessage, ra: RaIdentity, who: Who, sourceIp?: string): Promise<Buffer> {
    const name = MESSAGE_NAMES[msg.messageType];
    if (!name || name === 'CertRep') throw new Refusal('badRequest', `messageType ${msg.messageType} is not a request Signet answers`);
    if (!msg.signerCertificate) throw new Refusal('badMessageCheck', 'the message does not carry the certificate that signed it');
    let signerCert: CertificateParts;
    let signerKey: KeyObject;
    try {
      signerCert = inspectCertificate(msg.signerCertificate);
      signerKey = signerCert.publicKey;
    } catch (e) {
      throw new Refusal('badMessageCheck', `the signer certificate cannot be read: ${isSignetError(e) ? e.detail : (e as Error).message}`);
    }
    verifySigner(msg.signed, msg.signer, signerKey);
    // The reply can only be encrypted to an RSA key (key transport): refused before anything is
    // decrypted, authenticated, spent, issued or stored.
    if (signerKey.asymmetricKeyType !== 'rsa')
      throw new Refusal(
        'badAlg',
        `the reply can only be encrypted to an RSA certificate (key transport); the requester's key is ${signerKey.asymmetricKeyType}: sign the request with an RSA key`,
      );
    if (!msg.envelope) throw new Refusal('badMessageCheck', 'the message has no envelope');
    const env = parseEnvelopedData(msg.envelope);
    const raIds = certificateIds(ra.certificate.der);
    const ours = (r: KeyTransRecipient) =>
      (r.issuerNameDer !== undefined && r.serial !== undefined && r.issuerNameDer.equals(raIds.issuer) && r.serial.equals(raIds.serial)) ||
      r.subjectKeyId?.equals(ra.certificate.subjectKeyId) === true;
    const content = await decryptEnveloped(env, ours, (key, padding) => this.ctx.keys.decrypt(ra.keyId, key, padding));
    // The reply goes back encrypted as the request came (AES or 3DES), never with single DES.
    const cipher: Exclude<ContentCipher, 'des-cbc'> = env.cipher && env.cipher !== 'des-cbc' ? env.cipher : 'aes-256-cbc';
    const seal = (certsOnly: Buffer) => {
      try {
        return encryptEnveloped(certsOnly, { issuerNameDer: signerCert.issuerNameDer, serial: signerCert.serial, publicKey: signerKey }, cipher);
      } catch (e) {
        if (e instanceof CmsError) throw new Refusal('badAlg', e.message);
        throw e;
      }
    };
    switch (name) {
      case 'PKCSReq':
        return seal(await this.enroll(profile, msg, signerCert, content, who, sourceIp));
      case 'RenewalReq':
        return seal(await this.renew(profile, msg, signerCert, content, who, sourceIp));
      case 'CertPoll':
        return seal(await this.poll(profile, msg, signerCert, content));
      case 'GetCert':
        return seal(await this.getCert(content, signerCert));
      case 'GetCRL':
        return seal(await this.getCrl(content));
      default:
        throw new Refusal('badRequest', `messageType ${msg.messageType} is not a request Signet answers`);
    }
  }

  private txKey(profile: string, transactionId: string): string {
    return `scep.tx.${createHash('sha256').update(`${profile}\0${transactionId}`).digest('hex')}`;
  }

  /**
   * A transactionID seen before: the certificate issued for it when the request's key is that
   * certificate's key (a resend); 'conflict' when it was answered for another key (refused by the
   * caller only once the sender authenticated, so an outsider cannot learn which transactionIDs
   * exist). Null for a new transactionID.
   */
  private async replayed(profile: string, msg: PkiMessage, spkiDer: Buffer): Promise<Buffer | 'conflict' | null> {
    const serial = (await this.settings.get(this.txKey(profile, msg.transactionId)))?.value;
    if (!serial) return null;
    const row = await this.ctx.stores.certificates.get(serial);
    if (!row || !inspectCertificate(row.der).spkiDer.equals(spkiDer)) return 'conflict';
    return this.certsOnly(Buffer.from(row.der), row.caId);
  }

  private async certsOnly(der: Buffer, caId: string): Promise<Buffer> {
    let chain: Buffer[] = [];
    try {
      const issuer = await this.issuance.issuers.get(caId);
      chain = [issuer.parts.der, ...issuer.chainDer.filter((c) => !c.equals(issuer.parts.der))];
    } catch {
      // The certificate alone still answers; the chain is in GetCACert.
    }
    return certsOnlyCms([der, ...chain]);
  }

  private async enroll(profile: string, msg: PkiMessage, signerCert: CertificateParts, csr: Buffer, who: Who, sourceIp?: string): Promise<Buffer> {
    const spki = csrSpki(csr);
    // RFC 8894 §2.3: the self-signed certificate that signs a PKCSReq carries the request's key;
    // the reply is encrypted to it, so only the holder of the CSR's key can read it.
    if (!spki?.equals(signerCert.spkiDer)) throw new Refusal('badRequest', 'the message is not signed with the key of the certificate request');
    const again = await this.replayed(profile, msg, spki);
    if (again && again !== 'conflict') return again;
    const challenge = challengePasswordOf(csr);
    if (!challenge)
      throw new Refusal(
        'badRequest',
        'the certificate request has no challengePassword (an enrollment credential from `signet enroll create --protocol scep`)',
      );
    let principal: EnrollmentPrincipal;
    try {
      principal = await this.enrollment.authenticate(this.ctx, challenge, { protocol: 'scep', profile, sourceIp });
    } catch (e) {
      if (isSignetError(e) && e.status < 500) throw new Refusal('badRequest', `challenge password refused: ${e.detail}`);
      throw e;
    }
    who.actor = actorOf(principal);
    if (again === 'conflict') throw new Refusal('badRequest', `transactionID ${msg.transactionId} was used before for another key`);
    // The use is spent by issuance itself, in the certificate's commit: of concurrent requests with
    // the last use, one is stored, the others refused (401 from the commit → badRequest), and
    // nothing is stored for them.
    // A resend that arrives while the first is still being issued (a client retrying on its own
    // timeout) shares that issuance instead of making a second certificate: one per transaction
    // in this process. (Resends racing on two processes can each get one, each paid with a use.)
    const key = `${this.txKey(profile, msg.transactionId)}\n${spki.toString('hex')}`;
    const running = this.issuing.get(key);
    if (running) return running;
    const issuing = (async () => {
      let issued;
      try {
        issued = await this.issuance.issue({ csr, profile: principal.profile, csrAttributeOrder: 'any' }, { principal, sourceIp });
      } catch (e) {
        if (isSignetError(e) && e.type === 'unauthorized') throw new Refusal('badRequest', `challenge password refused: ${e.detail}`);
        throw e;
      }
      await this.settings.insertIfAbsent(this.txKey(profile, msg.transactionId), issued.serial);
      return this.certsOnly(issued.der, issued.caId);
    })().finally(() => this.issuing.delete(key));
    this.issuing.set(key, issuing);
    return issuing;
  }

  /** PKCSReqs being issued now, by transaction and key (enroll). */
  private readonly issuing = new Map<string, Promise<Buffer>>();

  /**
   * RenewalReq: the certificate that signed the message (its key proven by the signature) must
   * authenticate its holder exactly as mTLS renewal does (ca/holder-authentication.ts: stored
   * byte for byte, verifying under its CA, within its validity, good, from a CA not revoked, of a
   * profile that allows renewal by certificate), and be of this SCEP path's profile.
   */
  private async renew(profile: string, msg: PkiMessage, signerCert: CertificateParts, csr: Buffer, who: Who, sourceIp?: string): Promise<Buffer> {
    let holder: Awaited<ReturnType<typeof authenticateHolder>>;
    try {
      holder = await authenticateHolder(this.ctx, this.issuance, signerCert.der, { sourceIp });
    } catch (e) {
      // A profile that does not allow renewal by certificate (or no longer exists) is a request
      // refused (badRequest); every other refusal is about the certificate itself (badCertId).
      if (isSignetError(e) && e.status === 401)
        throw new Refusal(/renewWithClientCertificate is false|no longer exists/.test(e.detail) ? 'badRequest' : 'badCertId', e.detail);
      throw e;
    }
    const serial = holder.serial;
    who.actor = actorOf(holder);
    const row = await this.ctx.stores.certificates.get(serial);
    if (!row) throw new Refusal('badCertId', `certificate ${serial} is not a certificate Signet issued`);
    if (row.profile !== profile)
      throw new Refusal(
        'badRequest',
        `certificate ${serial} is of profile ${row.profile}, not ${profile}: renew it through the SCEP path of its own profile (/scep/${row.profile})`,
      );
    const spki = csrSpki(csr);
    if (!spki) throw new Refusal('badRequest', 'the RenewalReq content is not a certificate request');
    const again = await this.replayed(profile, msg, spki);
    if (again === 'conflict') throw new Refusal('badRequest', `transactionID ${msg.transactionId} was used before for another key`);
    if (again) return again;
    const renewed = await this.issuance.renew(serial, toPem(csr, 'CERTIFICATE REQUEST'), { principal: holder, sourceIp }, { csrAttributeOrder: 'any' });
    await this.settings.insertIfAbsent(this.txKey(profile, msg.transactionId), renewed.serial);
    return this.certsOnly(renewed.der, renewed.caId);
  }

  private async poll(profile: string, msg: PkiMessage, signerCert: CertificateParts, content: Buffer): Promise<Buffer> {
    readIssuerAnd(content); // IssuerAndSubject: well-formed, though the transactionID decides
    const serial = (await this.settings.get(this.txKey(profile, msg.transactionId)))?.value;
    const row = serial ? await this.ctx.stores.certificates.get(serial) : null;
    // One answer for "no such transaction" and "another key's": an outsider learns nothing.
    if (!row || !inspectCertificate(row.der).spkiDer.equals(signerCert.spkiDer))
      throw new Refusal('badCertId', `no certificate was issued to this key for transactionID ${msg.transactionId} (Signet never answers PENDING)`);
    return this.certsOnly(Buffer.from(row.der), row.caId);
  }

  /** The certificate an IssuerAndSerialNumber names, if Signet issued it. */
  private async named(content: Buffer, signerCert?: CertificateParts): Promise<{ der: Buffer; caId: string; serial: string }> {
    const { issuer, second, secondIsInteger } = readIssuerAnd(content);
    if (!secondIsInteger) throw new Refusal('badRequest', 'GetCert and GetCRL take an IssuerAndSerialNumber');
    const serial = Buffer.from(second.length > 1 && second[0] === 0 ? second.subarray(1) : second).toString('hex');
    const row = /^[0-9a-f]{2,64}$/.test(serial) ? await this.ctx.stores.certificates.get(serial) : null;
    // With `signerCert` (GetCert) the signer must be that certificate itself, a device fetching its
    // own (proven by its signature); otherwise the same answer as a serial that does not exist.
    if (!row || !inspectCertificate(row.der).issuerNameDer.equals(issuer) || (signerCert && !signerCert.der.equals(Buffer.from(row.der))))
      throw new Refusal('badCertId', `no certificate with serial ${serial.slice(0, 64)} from that issuer`);
    return { der: Buffer.from(row.der), caId: row.caId, serial };
  }

  private async getCert(content: Buffer, signerCert: CertificateParts): Promise<Buffer> {
    const c = await this.named(content, signerCert);
    return certsOnlyCms([c.der]);
  }

  private async getCrl(content: Buffer): Promise<Buffer> {
    const c = await this.named(content);
    const crl = await this.crls.current(c.caId);
    if (!crl) throw new Refusal('badCertId', `CA ${c.caId} has no CRL yet`);
    return crlsOnlyCms([crl.der]);
  }

  /**
   * A refusal in the audit trail. Once the sender proved who it is (a challenge accepted, the
   * signature of a certificate Signet issued), a `scep.refused` event of that actor now; before
   * (a bad signature, envelope or challenge: anyone on the network can send those), counted and
   * written with the other anonymous refusals as one summary event per interval
   * (http/audit-refusals.ts), so a flood of garbage costs no write each. A refused challenge is
   * also audited by the enrollment credentials themselves.
   */
  private async audit(actor: string | null, target: string | null, sourceIp: string | undefined, details: Record<string, unknown>): Promise<void> {
    if (!actor) {
      const why = `SCEP ${details.failInfo ?? 'malformed message'}: ${String(details.reason).slice(0, 300)}`;
      await auditRefusal(this.ctx, new SignetError('unauthorized', why), { actor: 'anonymous', target: `SCEP PKIOperation ${details.profile}`, sourceIp });
      return;
    }
    await this.ctx.db.transaction((tx) => appendAudit(tx, { actor, action: 'scep.refused', target, outcome: 'refused', sourceIp, details }));
  }
}

/** The SubjectPublicKeyInfo of a PKCS#10 request, read structurally (csr.ts checks it fully when issuing); null if there is none. */
function csrSpki(csr: Buffer): Buffer | null {
  try {
    const top = readEl(csr, 0, csr.length);
    const [info] = readKids(csr, top);
    if (info?.tag !== 0x30) return null;
    const spki = readKids(csr, info)[2];
    return spki && spki.tag === 0x30 ? csr.subarray(spki.start, spki.end) : null;
  } catch {
    return null;
  }
}
