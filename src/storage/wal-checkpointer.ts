/**
 * SQLite WAL checkpoints in a thread of their own. By default the connection whose commit
 * pushes the WAL past 1,000 pages copies it back into the database file and fsyncs it, there
 * and then — on the event loop of whichever request was unlucky, tens of milliseconds under
 * issuance load (the p99 spikes in bench/). The issuance writer turns its auto-checkpoint off
 * and this thread checkpoints every 250 ms instead, in RESTART mode so the WAL file is reused
 * from its start and stays small (PASSIVE alone let it grow past a gigabyte under load). While
 * it holds the write lock the issuance writer retries without blocking (issuance-writer.ts), so
 * its I/O stalls no request's event loop.
 */
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';

const INTERVAL_MS = 250;

// Plain CommonJS for an eval'd worker: no build step, no loader hooks needed in the thread.
const THREAD = `
const { workerData, parentPort } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file);
// No waiting: RESTART takes the write lock and then waits (in the busy handler) for readers
// of older snapshots to finish. A long reader (a backup, a sqlite3 shell) kept it there, lock
// held, every 250 ms: writers starved for the whole read, 503s and a frozen event loop. With no
// busy handler it gives up at once and checkpoints what it can, as PASSIVE does; the WAL is
// reset on a later tick, once no reader holds it.
db.pragma('busy_timeout = 0');
db.pragma('synchronous = ' + workerData.synchronous);
const timer = setInterval(() => {
  try { db.pragma('wal_checkpoint(RESTART)'); } catch (e) { if (e && e.code !== 'SQLITE_BUSY') parentPort.postMessage({ error: String(e && e.message || e) }); }
}, workerData.intervalMs);
parentPort.on('message', (m) => {
  if (m === 'stop') {
    clearInterval(timer);
    try { db.pragma('wal_checkpoint(PASSIVE)'); } catch {}
    db.close();
    parentPort.close();
  }
});
`;

export interface WalCheckpointer {
  stop(): Promise<void>;
}

export function startWalCheckpointer(file: string, synchronous: 'FULL' | 'NORMAL', onError: (message: string) => void = () => undefined): WalCheckpointer {
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(THREAD, { eval: true, workerData: { file, driver, synchronous, intervalMs: INTERVAL_MS } });
  worker.unref();
  worker.on('message', (m: { error?: string }) => {
    if (m.error) onError(m.error);
  });
  worker.on('error', (e) => onError(e.message));
  const exited = new Promise<void>((r) => worker.once('exit', () => r()));
  return {
    async stop() {
      worker.postMessage('stop');
      const t = setTimeout(() => void worker.terminate(), 5_000);
      await exited;
      clearTimeout(t);
    },
  };
}
