/**
 * A worker thread of WelcomePool (welcome-pool.ts), CPU only. For each batch it encodes the
 * NodeKey of every node it was sent once, builds each member's GroupKeys over its path
 * (messages.ts), envelopes it to the member's certificate, and zeroes every buffer that held a
 * key before answering.
 */
import { parentPort } from 'node:worker_threads';
import { envelop } from '../pki/cms-recipients.js';
import { groupKeysOfNodeKeys, nodeKeyDer } from './messages.js';
import type { BuildMessage, BuiltMessage } from './welcome-pool.js';
import { pack } from './welcome-pool.js';

const LEVEL = 2 ** 32; // a node's number: level·2³² + pos (pos < 2³² at any height Signet allows)

function build(job: BuildMessage): BuiltMessage {
  const nodeKeys = new Map<number, Buffer>();
  try {
    for (let j = 0; j < job.level.length; j++) {
      const node = { level: job.level[j]!, pos: job.pos[j]! };
      nodeKeys.set(node.level * LEVEL + node.pos, nodeKeyDer({ node, version: job.version[j]!, key: job.keys.subarray(j * 32, j * 32 + 32) as Buffer }));
    }
    job.keys.fill(0);
    const out: Buffer[] = [];
    const path: Buffer[] = new Array(job.height + 1);
    for (let i = 0; i < job.leaves.length; i++) {
      const leaf = job.leaves[i]!;
      for (let level = 0; level <= job.height; level++) {
        const k = nodeKeys.get(level * LEVEL + Math.floor(leaf / 2 ** level));
        if (!k) throw new Error(`key group ${job.group}: node ${level}.${Math.floor(leaf / 2 ** level)} holds no key`);
        path[level] = k;
      }
      const content = groupKeysOfNodeKeys(job.group, job.epoch, leaf, path);
      try {
        out.push(envelop(content, [{ kind: 'certificate', certificateDer: job.ders.subarray(job.offsets[i], job.offsets[i + 1]) }]));
      } finally {
        content.fill(0);
      }
    }
    const { offsets, bytes } = pack(out);
    return { id: job.id, offsets, out: bytes };
  } finally {
    job.keys.fill(0);
    for (const b of nodeKeys.values()) b.fill(0);
  }
}

parentPort!.on('message', (job: BuildMessage) => {
  let built: BuiltMessage;
  try {
    built = build(job);
  } catch (e) {
    built = { id: job.id, error: (e as Error).message };
  }
  parentPort!.postMessage(built, built.out ? [built.offsets!.buffer, built.out.buffer] : []);
});
