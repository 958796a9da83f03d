/**
 * Every welcome of a key group built on worker threads, one per core: each welcome is one
 * public-key wrap (an ECDH or RSA operation), CPU-bound work the event loop must not carry alone,
 * and at 100,000 members the framing around it (each member's path keys as DER, copying
 * certificates between threads) cost the main thread as much as the wraps cost a worker. So a
 * job is a batch of members (leaf and certificate) with the node keys on their paths, packed
 * into a few transferred buffers; the worker encodes each node once, builds every member's
 * GroupKeys, envelopes it, and forgets the keys. Workers hold no key between batches.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { NodeKey } from './messages.js';

/** A batch: member i has leaf leaves[i] and certificate ders[offsets[i], offsets[i+1]); node j is (level[j], pos[j]) at version[j] with key keys[32j, 32j+32). */
export interface BuildMessage {
  id: number;
  group: string;
  epoch: number;
  height: number;
  leaves: Float64Array<ArrayBuffer>;
  offsets: Uint32Array<ArrayBuffer>;
  ders: Uint8Array<ArrayBuffer>;
  level: Uint8Array<ArrayBuffer>;
  pos: Float64Array<ArrayBuffer>;
  version: Float64Array<ArrayBuffer>;
  keys: Uint8Array<ArrayBuffer>;
}
export interface BuiltMessage {
  id: number;
  offsets?: Uint32Array<ArrayBuffer>;
  out?: Uint8Array<ArrayBuffer>;
  error?: string;
}

type Waiting = { resolve: (out: Buffer[]) => void; reject: (e: Error) => void };

/** Many buffers as one (transferable) buffer and the offsets that split it again. */
export function pack(parts: readonly Uint8Array[]): { offsets: Uint32Array<ArrayBuffer>; bytes: Uint8Array<ArrayBuffer> } {
  const offsets = new Uint32Array(parts.length + 1);
  for (let i = 0; i < parts.length; i++) offsets[i + 1] = offsets[i]! + parts[i]!.length;
  const bytes = new Uint8Array(offsets[parts.length]!);
  for (let i = 0; i < parts.length; i++) bytes.set(parts[i]!, offsets[i]!);
  return { offsets, bytes };
}

export class WelcomePool {
  private readonly workers: Worker[];
  private readonly waiting = new Map<number, Waiting>();
  private nextId = 0;
  private nextWorker = 0;
  private failure: Error | undefined;

  constructor(size = availableParallelism()) {
    // The worker's own file: .ts when Signet runs from source (tsx), .js from dist.
    const file = new URL(`./welcome-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);
    this.workers = Array.from({ length: Math.max(1, size) }, () => {
      const w = new Worker(file);
      w.on('message', (m: BuiltMessage) => {
        const p = this.waiting.get(m.id);
        if (!p) return;
        this.waiting.delete(m.id);
        if (m.error !== undefined) return p.reject(new Error(m.error));
        const out = Buffer.from(m.out!.buffer, m.out!.byteOffset, m.out!.byteLength);
        p.resolve(Array.from({ length: m.offsets!.length - 1 }, (_, i) => out.subarray(m.offsets![i], m.offsets![i + 1])));
      });
      w.on('error', (e) => this.fail(e));
      w.on('exit', (code) => code !== 0 && this.fail(new Error(`a welcome worker stopped (exit code ${code})`)));
      return w;
    });
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const p of this.waiting.values()) p.reject(e);
    this.waiting.clear();
  }

  /**
   * The welcomes of `members` (in their order) at `epoch`; `nodes` holds at least every node on
   * their paths. The keys go to the worker by transfer: nothing of them stays on this side.
   */
  build(
    tree: { group: string; epoch: number; height: number },
    members: readonly { leaf: number; certificateDer: Uint8Array }[],
    nodes: readonly NodeKey[],
  ): Promise<Buffer[]> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    const worker = this.workers[this.nextWorker++ % this.workers.length]!;
    const done = new Promise<Buffer[]>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
    const { offsets, bytes } = pack(members.map((m) => m.certificateDer));
    const job: BuildMessage = {
      id,
      ...tree,
      leaves: Float64Array.from(members, (m) => m.leaf),
      offsets,
      ders: bytes,
      level: Uint8Array.from(nodes, (n) => n.node.level),
      pos: Float64Array.from(nodes, (n) => n.node.pos),
      version: Float64Array.from(nodes, (n) => n.version),
      keys: new Uint8Array(nodes.length * 32),
    };
    for (const [i, n] of nodes.entries()) job.keys.set(n.key, i * 32);
    worker.postMessage(job, [job.leaves.buffer, offsets.buffer, bytes.buffer, job.level.buffer, job.pos.buffer, job.version.buffer, job.keys.buffer]);
    return done;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
