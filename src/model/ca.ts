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
  /** active | offline | retiring | retired | revoked (see CA_STATUSES) */
  status: string;
  pathLen: number | null;
  notBefore: Date;
  notAfter: Date;
  /** Last CRL number allocated (monotonic across replicas; gaps allowed). */
  crlNumber: bigint;
  revokedAt: Date | null;
  revocationReason: string | null;
  /** The CA this one replaced (rotation, root rollover); a CA has at most one successor. */
  predecessorId: string | null;
  /** When a successor took over and this CA stopped issuing. */
  retiringSince: Date | null;
  /** End of the overlap in which its certificates are renewed; null: the last third of each one's life. */
  overlapEndsAt: Date | null;
  createdAt: Date;
}

/**
 * What each status means: `active` signs; `retiring` was replaced by a successor and signs only
 * its CRLs and OCSP answers until its last certificate expires; `retired` has no unexpired
 * certificate left and still publishes its final CRL and answers OCSP; `offline` has its key
 * outside Signet; `revoked` is on its parent's CRL and signs nothing.
 */
export const CA_STATUSES = ['active', 'offline', 'retiring', 'retired', 'revoked'] as const;
/** Statuses whose CA keeps publishing CRLs and answering OCSP with an online key. */
export const PUBLISHING_STATUSES = ['active', 'retiring', 'retired'] as const;
export const isPublishing = (status: string): boolean => (PUBLISHING_STATUSES as readonly string[]).includes(status);

/** What creating or importing a CA writes (the rest takes its defaults). */
export type NewCaRecord = Omit<CaRecord, 'crlNumber' | 'revokedAt' | 'revocationReason' | 'createdAt' | 'predecessorId' | 'retiringSince' | 'overlapEndsAt'> & {
  predecessorId?: string | null;
};

/**
 * A further certificate for a CA's key: a cross-certificate of a root rollover (`kind` cross:
 * the key of `caId` certified by `issuerId`), or a CA certificate replaced by `signet ca renew`
 * (`kind` superseded). Its issuer's CRL and OCSP answer for it.
 */
export interface CaCertificateRecord {
  id: string;
  caId: string;
  issuerId: string;
  kind: 'cross' | 'superseded';
  certificateDer: Uint8Array;
  serial: string;
  fingerprint: string;
  notBefore: Date;
  notAfter: Date;
  status: string;
  revokedAt: Date | null;
  revocationReason: string | null;
  createdAt: Date;
}

export type NewCaCertificateRecord = Omit<CaCertificateRecord, 'status' | 'revokedAt' | 'revocationReason' | 'createdAt'>;

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
