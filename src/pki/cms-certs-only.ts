/**
 * The "certs-only" CMS message (RFC 5652 §5 SignedData with no signers; RFC 7030 §4.1.3 and
 * RFC 8894 §3.4 call it degenerate): how EST answers cacerts and simpleenroll, and how SCEP
 * answers GetCACert and wraps the certificate of a CertRep.
 *
 *   ContentInfo ::= SEQUENCE { contentType id-signedData, content [0] EXPLICIT SignedData }
 *   SignedData  ::= SEQUENCE { version 1, digestAlgorithms SET {}, encapContentInfo { id-data },
 *                              certificates [0] IMPLICIT SET OF Certificate, signerInfos SET {} }
 *
 * The certificates keep the order they are given (the issued certificate first, then its chain):
 * CMS is BER (RFC 5652 §1), where a SET OF need not be sorted, and some clients take the first
 * certificate as theirs. Written by hand because it is twenty lines of DER; the schema library
 * would cost a dependency for what der.ts already builds.
 */
import { contextExplicit, objectIdentifier, sequence, set, smallInteger, tlv } from './der.js';

const ID_SIGNED_DATA = '1.2.840.113549.1.7.2';
const ID_DATA = '1.2.840.113549.1.7.1';

/** A DER ContentInfo holding a SignedData with only `certificates` (each one DER Certificate). */
export function certsOnlyCms(certificates: Uint8Array[]): Buffer {
  if (certificates.length === 0) throw new Error('a certs-only message needs at least one certificate');
  const signedData = sequence(smallInteger(1), set(), sequence(objectIdentifier(ID_DATA)), tlv(0xa0, ...certificates), set());
  return sequence(objectIdentifier(ID_SIGNED_DATA), contextExplicit(0, signedData));
}
