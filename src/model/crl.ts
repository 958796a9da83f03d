/** A CRL to store: `keep` is how many of the CA's newest CRLs survive (older ones are pruned). */
export interface NewCrlRecord {
  id: string;
  caId: string;
  number: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
  der: Buffer;
  entries: number;
  keep: number;
}

/** A stored CRL, its DER put back together from its pieces when it was stored in chunks. */
export interface CrlRecord {
  caId: string;
  number: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
  der: Buffer;
  entries: number;
}

/** When a CA's newest CRL was signed and expires. */
export interface CrlHead {
  number: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
}
