/**
 * A worker thread of EnvelopePool (envelope-pool.ts): envelopes welcomes, CPU only. It gets the
 * content (a member's path keys) and the member's certificate, and zeroes its copy of the keys
 * once the envelope is made.
 */
import { parentPort } from 'node:worker_threads';
import { envelop } from '../pki/cms-recipients.js';

interface Job {
  id: number;
  items: { content: Uint8Array; certificateDer: Uint8Array }[];
}

parentPort!.on('message', (job: Job) => {
  try {
    const out = job.items.map((i) => envelop(i.content, [{ kind: 'certificate', certificateDer: i.certificateDer }]));
    parentPort!.postMessage({ id: job.id, out });
  } catch (e) {
    parentPort!.postMessage({ id: job.id, error: (e as Error).message });
  } finally {
    for (const i of job.items) i.content.fill(0);
  }
});
