/**
 * Large CRLs are stored in pieces: a single multi-megabyte value is copied whole by the driver
 * and again into the database's record while it is written (a 49 MB CRL raised peak memory
 * by ~110 MB); pieces of CRL_CHUNK_BYTES cost that much at a time. The writer
 * (issuance-writer.ts) splits; crlDer puts a stored CRL back together.
 */
import type { Db } from './database.js';

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

/** The DER of a stored CRL row, whole or from its pieces. */
export async function crlDer(db: Db, row: { id: string; der: Uint8Array; chunks: number }): Promise<Buffer> {
  if (row.chunks === 0) return Buffer.from(row.der);
  const parts = await db.crlChunk.findMany({ where: { crlId: row.id }, orderBy: { idx: 'asc' }, select: { data: true } });
  return Buffer.concat(parts.map((c) => c.data));
}
