/** Prisma's Bytes fields take a Uint8Array backed by a plain ArrayBuffer; Node Buffers may be pooled. */
export const bytes = (b: Uint8Array): Uint8Array<ArrayBuffer> => new Uint8Array(b);
