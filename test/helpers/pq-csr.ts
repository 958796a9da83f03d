/**
 * PKCS#10 requests for post-quantum keys built without Signet's code: the structure with
 * @peculiar/asn1-csr / asn1-x509, the signature with node:crypto's sign(null, …) (pure ML-DSA).
 * The `tamper` hooks make the malformed variants the bad-input tests send.
 */
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import { CertificationRequest, CertificationRequestInfo, Attributes } from '@peculiar/asn1-csr';
import {
  AlgorithmIdentifier,
  Attribute,
  AttributeTypeAndValue,
  AttributeValue,
  Extension,
  Extensions,
  GeneralName,
  Name,
  RelativeDistinguishedName,
  SubjectAlternativeName,
  SubjectPublicKeyInfo,
} from '@peculiar/asn1-x509';

export const ML_DSA_OID = { 'ml-dsa-44': '2.16.840.1.101.3.4.3.17', 'ml-dsa-65': '2.16.840.1.101.3.4.3.18', 'ml-dsa-87': '2.16.840.1.101.3.4.3.19' } as const;
export const ML_KEM_768_OID = '2.16.840.1.101.3.4.4.2';
const NULL = new Uint8Array([0x05, 0x00]).buffer;

export interface PqCsrOptions {
  /** The signing key pair; default a new ML-DSA-65 pair. */
  pair?: { privateKey: KeyObject; publicKey: KeyObject };
  /** Change the SubjectPublicKeyInfo before signing (wrong OID, parameters, truncation, another key). */
  spki?: (spki: SubjectPublicKeyInfo) => void;
  /** The signatureAlgorithm OID (default: the key's). */
  signatureOid?: string;
  /** Put NULL parameters into the signatureAlgorithm. */
  signatureParamsNull?: boolean;
  /** Flip one byte of the signature. */
  flipSignature?: boolean;
}

export function newMlDsa(type: 'ml-dsa-44' | 'ml-dsa-65' | 'ml-dsa-87' = 'ml-dsa-65') {
  return generateKeyPairSync(type as 'ed25519');
}

/** A PEM CSR for `names` (DNS), CN the first, signed with ML-DSA (pure, no context). */
export function pqCsr(names: string[], o: PqCsrOptions = {}): { pem: string; der: Buffer; privateKey: KeyObject; publicKey: KeyObject } {
  const pair = o.pair ?? newMlDsa();
  const type = pair.privateKey.asymmetricKeyType as keyof typeof ML_DSA_OID;
  const spki = AsnConvert.parse(pair.publicKey.export({ format: 'der', type: 'spki' }), SubjectPublicKeyInfo);
  o.spki?.(spki);
  const san = new SubjectAlternativeName(names.map((n) => new GeneralName({ dNSName: n })));
  const extensionRequest = new Attribute({
    type: '1.2.840.113549.1.9.14',
    values: [
      AsnConvert.serialize(new Extensions([new Extension({ extnID: '2.5.29.17', critical: false, extnValue: new OctetString(AsnConvert.serialize(san)) })])),
    ],
  });
  const info = new CertificationRequestInfo({
    version: 0,
    subject: new Name([new RelativeDistinguishedName([new AttributeTypeAndValue({ type: '2.5.4.3', value: new AttributeValue({ utf8String: names[0]! }) })])]),
    subjectPKInfo: spki,
    attributes: new Attributes([extensionRequest]),
  });
  const signature = sign(null, Buffer.from(AsnConvert.serialize(info)), pair.privateKey);
  if (o.flipSignature) signature.writeUInt8(signature[100]! ^ 0x01, 100);
  const csr = new CertificationRequest({
    certificationRequestInfo: info,
    signatureAlgorithm: new AlgorithmIdentifier({ algorithm: o.signatureOid ?? ML_DSA_OID[type], ...(o.signatureParamsNull ? { parameters: NULL } : {}) }),
    signature: new Uint8Array(signature).buffer,
  });
  const der = Buffer.from(AsnConvert.serialize(csr));
  const pem = `-----BEGIN CERTIFICATE REQUEST-----\n${der
    .toString('base64')
    .match(/.{1,64}/g)!
    .join('\n')}\n-----END CERTIFICATE REQUEST-----\n`;
  return { pem, der, privateKey: pair.privateKey, publicKey: pair.publicKey };
}

/** NULL parameters in an AlgorithmIdentifier (RFC 9881 requires them absent). */
export const withNullParameters = (spki: SubjectPublicKeyInfo) => {
  spki.algorithm.parameters = NULL;
};
