/** Entry point of a fuzz worker process (see worker.ts); started by supervise.ts. */
import { runWorker } from './worker.js';

runWorker(process.argv.slice(2)).then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`fuzz worker failed: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(3);
  },
);
