/**
 * Envelopes built on worker threads, one per core: every welcome of a large group is one
 * public-key wrap each (an ECDH or RSA operation), CPU-bound work the event loop must not carry
 * alone. Jobs go round-robin; results come back in the order asked for.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

type Waiting = { resolve: (out: Buffer[]) => void; reject: (e: Error) => void };

export class EnvelopePool {
  private readonly workers: Worker[];
  private readonly waiting = new Map<number, Waiting>();
  private nextId = 0;
  private nextWorker = 0;

  constructor(size = availableParallelism()) {
    // The worker's own file: .ts when Signet runs from source (tsx), .js from dist.
    const file = new URL(`./envelope-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);
    this.workers = Array.from({ length: Math.max(1, size) }, () => {
      const w = new Worker(file);
      w.on('message', (m: { id: number; out?: Uint8Array[]; error?: string }) => {
        const p = this.waiting.get(m.id);
        if (!p) return;
        this.waiting.delete(m.id);
        if (m.error !== undefined) p.reject(new Error(m.error));
        else p.resolve(m.out!.map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength)));
      });
      w.on('error', (e) => {
        for (const p of this.waiting.values()) p.reject(e);
        this.waiting.clear();
      });
      return w;
    });
  }

  /** The envelopes of `items`, in their order. The contents are zeroed here once handed over. */
  envelop(items: { content: Buffer; certificateDer: Uint8Array }[]): Promise<Buffer[]> {
    const id = this.nextId++;
    const worker = this.workers[this.nextWorker++ % this.workers.length]!;
    const done = new Promise<Buffer[]>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
    worker.postMessage({ id, items });
    for (const i of items) i.content.fill(0);
    return done;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
