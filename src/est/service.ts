/**
 * EST (RFC 7030, clarified by RFC 8951): enrollment of devices over HTTPS, as a thin protocol
 * layer over the same issuance, profiles, name policy and audit as the REST API.
 *
 * Who may do what is not decided here: an enrollment credential (HTTP Basic) becomes an
 * `enrollment` principal and the current certificate (TLS client certificate) a
 * `certificate-holder` principal, and authorization.ts decides for both — issuance asks it again
 * with the request's profile and names. The EST label (`/.well-known/est/<label>/…`) is a
 * profile name; without one, a credential enrolls under its own profile and a holder renews
 * under its certificate's.
 *
 * Replies: certificates as a base64 certs-only CMS on one line (RFC 8951 §3.1; strongSwan's
 * client cannot read line breaks), server-generated keys as unencrypted PKCS#8 in the same
 * multipart reply (RFC 7030 §4.4.2 allows that when TLS protects it, which it does here: EST is
 * refused on a connection that is not TLS).
 */
import { randomBytes } from 'node:crypto';
import type { CaContext } from '../ca/context.js';
import type { Issuance, IssuedCertificate, Requester } from '../ca/issuance.js';
import type { Principal } from '../ca/authorization.js';
import type { DeviceTrust } from '../ca/device-certificates.js';
import { SignetError } from '../errors.js';
import { certsOnlyCms } from '../pki/cms-certs-only.js';
import { buildCsr } from '../pki/csr-builder.js';
import { parseCsr, type ParsedCsr } from '../pki/csr.js';
import { objectIdentifier, sequence } from '../pki/der.js';
import { pemBlocks } from '../pki/pem.js';
import { generateKeyOffThread, KEY_ALGORITHMS } from '../pki/keys.js';
import { PQ_BY_NAME } from '../pki/post-quantum.js';

export type EnrollmentPrincipal = Extract<Principal, { kind: 'enrollment' }>;
export type HolderPrincipal = Extract<Principal, { kind: 'certificate-holder' }>;

/** A PKCS#10 request arrives base64-encoded (RFC 8951 §3.2.2): whitespace allowed, nothing else. */
export function decodeBase64Body(body: Buffer, what: string): Buffer {
  const text = body.toString('latin1').replace(/[\r\n\t ]+/g, '');
  if (text.length === 0) throw new SignetError('bad-request', `the ${what} body is empty; send the base64 of its DER (RFC 7030 §4.2.1, RFC 8951 §3.2.2)`);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text) || text.length % 4 === 1)
    throw new SignetError('bad-request', `the ${what} body is not base64; EST sends the base64 of the DER request (RFC 8951 §3.2.2), not PEM or binary DER`);
  return Buffer.from(text, 'base64');
}

const OID = {
  extensionRequest: '1.2.840.113549.1.9.14',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  ed25519: '1.3.101.112',
};

export class EstService {
  constructor(
    private readonly ctx: CaContext,
    readonly issuance: Issuance,
    /** The CAs whose device certificates may enroll without a credential (SIGNET_EST_CLIENT_CAS), or null. */
    readonly devices: DeviceTrust | null = null,
  ) {}

  /** The profile a label names; a label that is not a profile is a path that does not exist. */
  profileOf(label: string | undefined): string | undefined {
    if (label === undefined) return undefined;
    if (!this.issuance.profiles.has(label))
      throw new SignetError(
        'not-found',
        `no EST label ${JSON.stringify(label)}: the labels are the profiles (${[...this.issuance.profiles.keys()].join(', ')})`,
      );
    return label;
  }

  /** /cacerts: the CA certificates a device trusts, as a certs-only CMS (DER). */
  async cacerts(label?: string): Promise<Buffer> {
    return certsOnlyCms(await this.issuance.caCertificates(this.profileOf(label)));
  }

  /**
   * /csrattrs (RFC 7030 §4.5, RFC 8951 §3.4): what the label's profile wants in a request —
   * an extensionRequest when it requires names, and the signature algorithms of the key types
   * it accepts. Without a label there is no profile to ask: null (204, "no requirements").
   */
  csrattrs(label?: string): Buffer | null {
    const name = this.profileOf(label);
    if (!name) return null;
    const profile = this.issuance.profile(name);
    const oids: string[] = [];
    if (profile.requireSan) oids.push(OID.extensionRequest);
    if (profile.keyTypes.includes('ecdsa')) oids.push(OID.ecdsaWithSha256);
    if (profile.keyTypes.includes('rsa')) oids.push(OID.sha256WithRsa);
    if (profile.keyTypes.includes('ed25519')) oids.push(OID.ed25519);
    // ML-DSA / SLH-DSA: one OID names key and signature; the strongest ML-DSA first (RFC 9881).
    if (profile.keyTypes.includes('ml-dsa')) for (const n of ['ml-dsa-65', 'ml-dsa-87', 'ml-dsa-44']) oids.push(PQ_BY_NAME.get(n)!.oid);
    if (profile.keyTypes.includes('slh-dsa')) oids.push(PQ_BY_NAME.get('slh-dsa-sha2-128s')!.oid);
    return sequence(...oids.map((o) => objectIdentifier(o)));
  }

  /**
   * /simpleenroll: a new certificate for an enrollment credential. Issuance judges the request
   * (the credential's names and profile through authorization.ts, the profile's rules) before
   * signing, and spends the use only in the certificate's commit: a refused request costs nothing.
   */
  async simpleenroll(csrDer: Buffer, who: EnrollmentPrincipal, sourceIp: string | undefined, label?: string): Promise<IssuedCertificate> {
    return this.enroll(csrDer, this.enrollmentProfile(who, label), who, sourceIp);
  }

  /**
   * /simplereenroll (RFC 7030 §4.2.2): the holder of a current certificate renews it. The
   * request must repeat the certificate's subject and names; a new key in it makes a rekey.
   */
  async simplereenroll(csrDer: Buffer, who: HolderPrincipal, sourceIp: string | undefined, label?: string): Promise<IssuedCertificate> {
    const csr = parseCsr(csrDer);
    const cert = await this.ctx.stores.certificates.get(who.serial);
    if (!cert) throw new SignetError('unauthorized', `certificate ${who.serial} is not a Signet certificate`);
    const profile = this.profileOf(label);
    if (profile && profile !== cert.profile)
      throw new SignetError(
        'forbidden',
        `certificate ${who.serial} was issued under profile ${cert.profile}; re-enroll at /.well-known/est/${cert.profile}/ or without a label`,
      );
    // Signet's certificates carry only the CN of a request's subject, so the CN is what must repeat.
    if ((csr.subject.commonName ?? null) !== (cert.commonName ?? null))
      throw new SignetError(
        'bad-csr',
        `a re-enrollment repeats the certificate's subject (RFC 7030 §4.2.2): the certificate's CN is ${JSON.stringify(cert.commonName)}, the request's ${JSON.stringify(csr.subject.commonName ?? null)}`,
      );
    // issuance.renew checks the request's names against the certificate's (with the same key or
    // a new one) and the certificate's state.
    return this.issuance.renew(who.serial, csrDer.toString('base64'), { principal: who, sourceIp });
  }

  /**
   * /serverkeygen (RFC 7030 §4.4): Signet makes the key — of the request's key type — and
   * issues for it with the request's subject CN and names; the reply carries the key.
   */
  async serverkeygen(
    csrDer: Buffer,
    who: EnrollmentPrincipal,
    sourceIp: string | undefined,
    label?: string,
  ): Promise<{ certificate: IssuedCertificate; pkcs8: Buffer }> {
    const profile = this.enrollmentProfile(who, label);
    const csr = parseCsr(csrDer);
    this.precheck(who, profile, csr);
    const algorithm = KEY_ALGORITHMS.find((a) => a === csr.keyAlgorithm);
    if (!algorithm)
      throw new SignetError(
        'bad-csr',
        `serverkeygen makes a key of the request's type, and ${csr.keyAlgorithm} is not one Signet generates (${KEY_ALGORITHMS.join(', ')})`,
      );
    const { privateKey } = await generateKeyOffThread(algorithm);
    const ours = await buildCsr(privateKey, csr.subject.commonName, csr.sans);
    const certificate = await this.enroll(ours, profile, who, sourceIp);
    return { certificate, pkcs8: privateKey.export({ format: 'der', type: 'pkcs8' }) };
  }

  /** The reply of simpleenroll/simplereenroll: the new certificate, then its chain. */
  certsOnly(issued: IssuedCertificate): Buffer {
    return certsOnlyCms([issued.der, ...pemBlocks(issued.chain).map((b) => b.der)]);
  }

  /** A multipart/mixed boundary that cannot occur in base64 text. */
  static boundary(): string {
    return `est-${randomBytes(12).toString('hex')}`;
  }

  private enrollmentProfile(who: EnrollmentPrincipal, label: string | undefined): string {
    const profile = this.profileOf(label) ?? who.profile;
    if (profile !== who.profile)
      throw new SignetError(
        'forbidden',
        `enrollment credential ${who.credentialId} is for profile ${who.profile}; enroll at /.well-known/est/${who.profile}/ or without a label`,
      );
    return profile;
  }

  /**
   * The credential's limits and the profile's rules, judged on the request before anything is
   * made for it: serverkeygen generates no key for a request the profile would refuse.
   */
  private precheck(who: EnrollmentPrincipal, profile: string, csr: ParsedCsr): void {
    this.issuance.precheck(profile, csr, { principal: who });
  }

  private async enroll(csr: Buffer, profile: string, who: EnrollmentPrincipal, sourceIp: string | undefined): Promise<IssuedCertificate> {
    // A stored credential's use is spent by issuance, in the certificate's commit.
    const requester: Requester = { principal: who, sourceIp };
    return this.issuance.issue({ csr, profile }, requester);
  }
}
