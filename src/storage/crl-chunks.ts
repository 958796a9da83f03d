/**
 * Large CRLs are stored in pieces: a single multi-megabyte value is copied whole by the driver
 * and again into the database's record while it is written (a 49 MB CRL raised peak memory
 * by ~110 MB); pieces of CRL_CHUNK_BYTES cost that much at a time. The writer
 * (issuance-writer.ts) splits; crl-store.ts puts a stored CRL back together.
 */

export const CRL_CHUNK_BYTES = 1024 * 1024;
export const EMPTY = Buffer.alloc(0);
export const chunkId = (crlId: string, idx: number): string => `${crlId}:${String(idx).padStart(6, '0')}`;

/** The pieces to store for `der`, or null when it is stored whole in the Crl row. */
export function crlChunks(der: Buffer): Buffer[] | null {
  if (der.length <= CRL_CHUNK_BYTES) return null;
  const out: Buffer[] = [];
  for (let i = 0; i < der.length; i += CRL_CHUNK_BYTES) out.push(der.subarray(i, i + CRL_CHUNK_BYTES));
  return out;
}
