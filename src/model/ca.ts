/** What a certificate-authority row means to the code. */
export interface CaRecord {
  id: string;
  name: string;
  parentId: string | null;
  /** DER of the CA certificate. */
  certificateDer: Uint8Array;
  subject: string;
  serial: string;
  /** SHA-256 of the DER, lower-case hex. */
  fingerprint: string;
  keyAlgorithm: string;
  /** Key store reference; null when the key is kept offline. */
  keyId: string | null;
  /** active | offline | retired | revoked */
  status: string;
  pathLen: number | null;
  notBefore: Date;
  notAfter: Date;
  /** Last CRL number allocated (monotonic across replicas; gaps allowed). */
  crlNumber: bigint;
  revokedAt: Date | null;
  revocationReason: string | null;
  createdAt: Date;
}

/** What creating or importing a CA writes (the rest takes its defaults). */
export type NewCaRecord = Omit<CaRecord, 'crlNumber' | 'revokedAt' | 'revocationReason' | 'createdAt'>;

/** A CA revoked in its parent's CRL, as its row says. */
export interface RevokedChildCa {
  id: string;
  serial: string;
  revokedAt: Date | null;
  revocationReason: string | null;
}

/** A `ca.revoked` audit event, the part that anchors a CA revocation (ca/issuers.ts reads it). */
export interface CaRevocationEvent {
  seq: number;
  time: Date;
  target: string | null;
  details: string | null;
}

/** A delegated OCSP responder certificate. */
export interface OcspResponderRecord {
  id: string;
  caId: string;
  certificateDer: Uint8Array;
  keyId: string;
  notBefore: Date;
  notAfter: Date;
}
