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
  /** 0: the unsharded CRL; k >= 1: shard k. */
  shard: number;
  /** A delta CRL's base CRL number; null for a full CRL. */
  baseNumber: bigint | null;
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

/** Which CRL of a CA: its shard (0: unsharded) and full or delta. Pruning keeps `keep` per scope. */
export interface CrlScope {
  shard: number;
  delta: boolean;
}

/** When a CA's newest CRL (of one scope) was signed and expires. */
export interface CrlHead {
  number: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
}
