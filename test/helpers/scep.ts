/**
 * A minimal SCEP client for the refusal paths the real clients cannot be made to take (a
 * tampered envelope re-signed by its sender, GetCert, GetCRL, CertPoll, a replayed
 * transactionID). Keys, CSRs and self-signed certificates come from openssl; the messages are
 * built with Signet's CMS builders (the real clients, micromdm scepclient and strongSwan pki,
 * prove those against other implementations).
 */
import assert from 'node:assert/strict';
import { createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { CMS_OID, attribute, buildSignedData, parseSignedData, verifySigner } from '../../src/pki/cms-signed.js';
import { decryptEnveloped, encryptEnveloped, parseEnvelopedData, type ContentCipher } from '../../src/pki/cms-enveloped.js';
import { certificateIds, parsePkiMessage, SCEP_OID } from '../../src/pki/scep-message.js';
import { inspectCertificate } from '../../src/pki/certificate.js';
import { ownKey, signerFor } from '../../src/pki/keys.js';
import { objectIdentifier, octetString, sequence, tlv } from '../../src/pki/der.js';
import { openssl, type TempDir } from './openssl.js';

export interface Identity {
  keyFile: string;
  certFile: string;
  cert: Buffer;
  csr: Buffer;
}

/** An RSA key (P-256 with `ec`), a CSR (CN, SANs, challengePassword) and a self-signed certificate of the same key. */
export function identity(tmp: TempDir, name: string, o: { cn: string; sans?: string[]; challenge?: string; ec?: boolean }): Identity {
  const keyFile = tmp.file(`${name}.key`);
  const certFile = tmp.file(`${name}.self.pem`);
  const lines = [
    '[req]',
    'distinguished_name=dn',
    'prompt=no',
    ...(o.challenge ? ['attributes=attrs'] : []),
    ...(o.sans ? ['req_extensions=ext'] : []),
    '[dn]',
    `CN=${o.cn}`,
  ];
  if (o.challenge) lines.push('[attrs]', `challengePassword=${o.challenge}`);
  if (o.sans) lines.push('[ext]', `subjectAltName=${o.sans.map((s) => `DNS:${s}`).join(',')}`);
  const cnf = tmp.file(`${name}.cnf`, `${lines.join('\n')}\n`);
  const csrFile = tmp.file(`${name}.csr`);
  const newkey = o.ec ? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'] : ['-newkey', 'rsa:2048'];
  let r = openssl(['req', '-new', ...newkey, '-nodes', '-keyout', keyFile, '-config', cnf, '-outform', 'DER', '-out', csrFile]);
  assert.equal(r.status, 0, r.stderr);
  r = openssl(['req', '-x509', '-key', keyFile, '-subj', `/CN=${o.cn}`, '-days', '1', '-out', certFile]);
  assert.equal(r.status, 0, r.stderr);
  return { keyFile, certFile, cert: Buffer.from(new X509Certificate(readFileSync(certFile)).raw), csr: readFileSync(csrFile) };
}

/** A signed pkiMessage of `type` whose envelope holds `content`, encrypted to `raCert` and signed with `signerCert`'s key. */
export async function pkiMessage(o: {
  type: number;
  content: Buffer;
  raCert: Buffer;
  keyFile: string;
  signerCert: Buffer;
  transactionId?: string;
  cipher?: Exclude<ContentCipher, 'des-cbc'>;
  /** Changes the envelope before it is signed (a sender tampering with its own message). */
  tamper?: (envelope: Buffer) => Buffer;
}): Promise<{ der: Buffer; transactionId: string }> {
  const ra = inspectCertificate(o.raCert);
  let envelope = encryptEnveloped(o.content, { issuerNameDer: ra.issuerNameDer, serial: ra.serial, publicKey: ra.publicKey }, o.cipher);
  if (o.tamper) envelope = o.tamper(envelope);
  const signerParts = inspectCertificate(o.signerCert);
  const transactionId = o.transactionId ?? randomBytes(16).toString('hex');
  const printable = (s: string) => tlv(0x13, Buffer.from(s, 'ascii'));
  const der = await buildSignedData({
    eContentType: CMS_OID.data,
    content: envelope,
    certificates: [o.signerCert],
    signer: signerFor(ownKey(createPrivateKey(readFileSync(o.keyFile)))),
    issuerNameDer: signerParts.issuerNameDer,
    serial: signerParts.serial,
    attributes: [
      attribute(SCEP_OID.messageType, printable(String(o.type))),
      attribute(SCEP_OID.transactionID, printable(transactionId)),
      attribute(SCEP_OID.senderNonce, octetString(randomBytes(16))),
    ],
  });
  return { der, transactionId };
}

/** IssuerAndSerialNumber of a certificate (GetCert, GetCRL) or IssuerAndSubject (CertPoll). */
export function issuerAndSerial(cert: Buffer): Buffer {
  const ids = certificateIds(cert);
  return sequence(ids.issuer, tlv(0x02, ids.serial));
}
export function issuerAndSubject(cert: Buffer): Buffer {
  const ids = certificateIds(cert);
  return sequence(ids.issuer, ids.subject);
}

export interface Reply {
  status: string;
  failInfo?: string;
  failInfoText?: string;
  transactionId: string;
  certificates: Buffer[];
  crls: Buffer[];
}

/** Reads a CertRep: checks the RA's signature, decrypts a SUCCESS envelope with the requester's key. */
export async function readReply(der: Buffer, raCert: Buffer, keyFile: string): Promise<Reply> {
  const msg = parsePkiMessage(der);
  assert.equal(msg.messageType, 3, 'a CertRep');
  verifySigner(msg.signed, msg.signer, inspectCertificate(raCert).publicKey);
  const str = (oid: string) => msg.signer.attributes.get(oid)?.[0]?.subarray(2).toString('utf8');
  const out: Reply = {
    status: str(SCEP_OID.pkiStatus)!,
    failInfo: str(SCEP_OID.failInfo),
    failInfoText: str(SCEP_OID.failInfoText),
    transactionId: msg.transactionId,
    certificates: [],
    crls: [],
  };
  if (out.status === '0') {
    const { privateDecrypt, constants } = await import('node:crypto');
    const key = createPrivateKey(readFileSync(keyFile));
    const inner = await decryptEnveloped(
      parseEnvelopedData(msg.envelope!),
      () => true,
      async (k) => privateDecrypt({ key, padding: constants.RSA_PKCS1_PADDING }, k),
    );
    const sd = parseSignedData(inner);
    out.certificates = sd.certificates;
    out.crls = sd.crls;
  }
  return out;
}

/** POSTs a pkiMessage; the HTTP status and body. */
export async function post(url: string, der: Buffer): Promise<{ status: number; type: string | null; body: Buffer }> {
  const send = () =>
    fetch(`${url}?operation=PKIOperation`, { method: 'POST', headers: { 'content-type': 'application/x-pki-message' }, body: new Uint8Array(der) });
  // A keep-alive socket the server closed while this process was blocked in openssl: the request
  // never reached the server, so it is sent once more on a new connection.
  const r = await send().catch((e: unknown) => {
    if (/other side closed|socket hang up|ECONNRESET/.test(`${(e as Error).message} ${((e as Error).cause as Error | undefined)?.message ?? ''}`))
      return send();
    throw e;
  });
  return { status: r.status, type: r.headers.get('content-type'), body: Buffer.from(await r.arrayBuffer()) };
}

export { objectIdentifier };
